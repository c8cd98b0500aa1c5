"""A many-body CG energy term on local-environment descriptors (numba kernels).

Each bead ``i`` has a descriptor ``G_i`` of ``K`` radial symmetry functions (Behler's G2)

    G_ik = sum_{j != i} exp(-eta (r_ij - mu_k)^2) f_c(r_ij),   f_c = (cos(pi r / r_c) + 1) / 2,

scaled by ``1 / s_k``; the energy is a kernel expansion over ``M`` centres ``C_m`` in descriptor
space (a sparse Gaussian-kernel regression, Nyström centres):

    E = sum_i sum_m c_m exp(-|G_i / s - C_m|^2 / (2 l^2)).

Forces are exact derivatives: ``dE/dG_i`` per bead, then through ``dG_ik / dr_ij`` pair by pair.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .particles import pair_delta


@njit(cache=True, inline="always")
def _radial(r, mu, eta, rc):
    fc = 0.5 * (math.cos(math.pi * r / rc) + 1.0)
    dfc = -0.5 * math.pi / rc * math.sin(math.pi * r / rc)
    x = r - mu
    gauss = math.exp(-eta * x * x)
    return gauss * fc, gauss * (dfc - 2.0 * eta * x * fc)


@njit(cache=True)
def descriptors(pos, pi, pj, S, mu, eta, rc, scale):
    """``G (n, K)`` scaled descriptors of every bead."""
    n = pos.shape[0]
    K = mu.size
    G = np.zeros((n, K))
    rc2 = rc * rc
    for p in range(pi.size):
        i, j, dx, dy, dz, r2 = pair_delta(pos, pi, pj, S, p)
        if r2 >= rc2 or r2 == 0.0:
            continue
        r = math.sqrt(r2)
        for k in range(K):
            g, _ = _radial(r, mu[k], eta, rc)
            G[i, k] += g / scale[k]
            G[j, k] += g / scale[k]
    return G


@njit(cache=True)
def energy_and_dG(G, centres, coef, ell):
    """Total energy and ``dE/dG (n, K)`` of the kernel expansion."""
    n, K = G.shape
    M = centres.shape[0]
    dG = np.zeros((n, K))
    E = 0.0
    inv = 1.0 / (ell * ell)
    for i in range(n):
        for m in range(M):
            d2 = 0.0
            for k in range(K):
                x = G[i, k] - centres[m, k]
                d2 += x * x
            w = coef[m] * math.exp(-0.5 * d2 * inv)
            E += w
            for k in range(K):
                dG[i, k] -= w * (G[i, k] - centres[m, k]) * inv
    return E, dG


@njit(cache=True)
def pair_forces_from_dG(pos, pi, pj, S, dG, mu, eta, rc, scale, F):
    """Adds ``-dE/dx`` to ``F`` given ``dE/dG`` per bead; returns the virial sum r.F."""
    rc2 = rc * rc
    K = mu.size
    W = 0.0
    for p in range(pi.size):
        i, j, dx, dy, dz, r2 = pair_delta(pos, pi, pj, S, p)
        if r2 >= rc2 or r2 == 0.0:
            continue
        r = math.sqrt(r2)
        dEdr = 0.0
        for k in range(K):
            _, dg = _radial(r, mu[k], eta, rc)
            dEdr += (dG[i, k] + dG[j, k]) * dg / scale[k]
        f = -dEdr / r                    # force on i along (x_i - x_j)
        F[i, 0] += f * dx
        F[i, 1] += f * dy
        F[i, 2] += f * dz
        F[j, 0] -= f * dx
        F[j, 1] -= f * dy
        F[j, 2] -= f * dz
        W += -dEdr * r
    return W


@njit(cache=True)
def design_columns(pos, pi, pj, S, G, centres, ell, mu, eta, rc, scale, out):
    """``out (3n, M)``: the force on every bead coordinate from each kernel centre with unit
    coefficient (the force matching design matrix of one frame)."""
    n, K = G.shape
    M = centres.shape[0]
    inv = 1.0 / (ell * ell)
    # dphi_m / dG_i for every bead and centre
    dphi = np.zeros((n, M, K))
    for i in range(n):
        for m in range(M):
            d2 = 0.0
            for k in range(K):
                x = G[i, k] - centres[m, k]
                d2 += x * x
            w = math.exp(-0.5 * d2 * inv)
            for k in range(K):
                dphi[i, m, k] = -w * (G[i, k] - centres[m, k]) * inv
    rc2 = rc * rc
    out[:, :] = 0.0
    dg = np.zeros(K)
    for p in range(pi.size):
        i, j, dx, dy, dz, r2 = pair_delta(pos, pi, pj, S, p)
        if r2 >= rc2 or r2 == 0.0:
            continue
        r = math.sqrt(r2)
        for k in range(K):
            _, d = _radial(r, mu[k], eta, rc)
            dg[k] = d / scale[k]
        for m in range(M):
            dEdr = 0.0
            for k in range(K):
                dEdr += (dphi[i, m, k] + dphi[j, m, k]) * dg[k]
            f = -dEdr / r
            out[3 * i, m] += f * dx
            out[3 * i + 1, m] += f * dy
            out[3 * i + 2, m] += f * dz
            out[3 * j, m] -= f * dx
            out[3 * j + 1, m] -= f * dy
            out[3 * j + 2, m] -= f * dz
