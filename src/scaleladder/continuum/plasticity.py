"""Small-strain J2 (von Mises) plasticity with linear isotropic hardening, for any (anisotropic)
elasticity: the closest-point projection and its consistent tangent, per voxel (numba).

Yield function ``f(σ, α) = σ_eq(σ) − (σ_y + H α)`` with ``σ_eq = √(3/2 s:s)``, ``s = dev σ``;
associated flow ``ε̇ᵖ = γ̇ n``, ``n = ∂σ_eq/∂σ = (3/2) s/σ_eq``; ``α̇ = γ̇`` (equivalent plastic
strain).  Backward Euler: with ``S = C⁻¹`` and the trial stress ``σ_tr = C(ε − εᵖₙ)``, solve

    R₁ = S σ − (ε − εᵖₙ) + Δγ n(σ) = 0,      R₂ = σ_eq(σ) − σ_y − H(αₙ + Δγ) = 0

by Newton from the trial state (Simo & Hughes 1998, §3.6; for isotropic C it reduces to the
radial return).  The consistent tangent is ``K = Ξ − (Ξn)(Ξn)ᵀ / (H + nᵀΞn)`` with
``Ξ = (S + Δγ ∂n/∂σ)⁻¹`` — symmetric, so the RVE and macro solvers stay symmetric.  Everything in
Mandel notation (GPa).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ..core import validate as _v
from ..core.errors import InputError

__all__ = ["J2Hardening", "j2_update"]

_DEV = np.eye(6) - np.outer([1.0, 1, 1, 0, 0, 0], [1.0, 1, 1, 0, 0, 0]) / 3.0


@dataclass(frozen=True)
class J2Hardening:
    """Yield stress ``σ_y`` and linear hardening modulus ``H`` (GPa) of one phase; ``σ_y = inf``
    keeps the phase elastic."""

    yield_stress: float
    hardening: float = 0.0

    def __post_init__(self):
        y = float(self.yield_stress)
        if not y > 0:
            raise InputError("yield_stress", self.yield_stress, "a yield stress > 0 (GPa)")
        h = _v.finite("hardening", self.hardening)
        if h < 0:
            raise InputError("hardening", h, "a hardening modulus >= 0 (GPa)")
        object.__setattr__(self, "yield_stress", y)
        object.__setattr__(self, "hardening", h)


@njit(cache=True)
def _solve6(a, b):
    return np.linalg.solve(a, b)


@njit(cache=True, parallel=True)
def _j2_kernel(eps, eps_p, alpha, labels, C, S, sy, H, dev, sig, K, eps_p_new, alpha_new,
               tol, max_newton):
    n_vox = eps.shape[1]
    fails = 0
    for v in prange(n_vox):
        lab = labels[v]
        c = C[lab]
        ee = np.empty(6)
        for a in range(6):
            ee[a] = eps[a, v] - eps_p[a, v]
        s_tr = c @ ee
        sdev = dev @ s_tr
        seq = np.sqrt(1.5 * (sdev @ sdev))
        y0 = sy[lab] + H[lab] * alpha[v]
        if seq - y0 <= tol * sy[lab] or not np.isfinite(sy[lab]):
            for a in range(6):
                sig[a, v] = s_tr[a]
                eps_p_new[a, v] = eps_p[a, v]
                for b in range(6):
                    K[v, a, b] = c[a, b]
            alpha_new[v] = alpha[v]
            continue
        s_inv = S[lab]
        sg = s_tr.copy()
        dg = 0.0
        ok = False
        nvec = np.empty(6)
        A = np.empty((6, 6))
        for _ in range(max_newton):
            sdev = dev @ sg
            seq = np.sqrt(1.5 * (sdev @ sdev))
            for a in range(6):
                nvec[a] = 1.5 * sdev[a] / seq
            dn = (1.5 / seq) * (dev - (2.0 / 3.0) * np.outer(nvec, nvec))
            r1 = s_inv @ sg - ee + dg * nvec
            r2 = seq - sy[lab] - H[lab] * (alpha[v] + dg)
            for a in range(6):
                for b in range(6):
                    A[a, b] = s_inv[a, b] + dg * dn[a, b]
            # block elimination: A dσ + n ddg = -r1 ; nᵀ dσ - H ddg = -r2
            xa = _solve6(A, r1)
            xn = _solve6(A, nvec)
            denom = nvec @ xn + H[lab]
            ddg = (r2 - nvec @ xa) / denom
            dsig = -xa - xn * ddg
            sg = sg + dsig
            dg = dg + ddg
            if np.abs(r2) <= tol * sy[lab] and np.sqrt(r1 @ r1) <= tol * 1e-3:
                ok = True
                break
        if not ok:
            fails += 1
        sdev = dev @ sg
        seq = np.sqrt(1.5 * (sdev @ sdev))
        for a in range(6):
            nvec[a] = 1.5 * sdev[a] / seq
        dn = (1.5 / seq) * (dev - (2.0 / 3.0) * np.outer(nvec, nvec))
        for a in range(6):
            for b in range(6):
                A[a, b] = s_inv[a, b] + dg * dn[a, b]
        xi = np.linalg.inv(A)
        xin = xi @ nvec
        den = H[lab] + nvec @ xin
        for a in range(6):
            sig[a, v] = sg[a]
            eps_p_new[a, v] = eps_p[a, v] + dg * nvec[a]
            for b in range(6):
                K[v, a, b] = xi[a, b] - xin[a] * xin[b] / den
        alpha_new[v] = alpha[v] + dg
    return fails


def j2_update(eps, eps_p, alpha, labels, C, sy, H, *, tol: float = 1e-10, max_newton: int = 50):
    """Stress, consistent tangent and updated internal variables of every voxel.

    Parameters
    ----------
    eps, eps_p : (6, N) Mandel total strain and committed plastic strain
    alpha : (N,) committed equivalent plastic strain
    labels : (N,) int label of each voxel
    C : (L, 6, 6) Mandel stiffness of each label (GPa)
    sy, H : (L,) yield stress and hardening modulus of each label (GPa; ``inf`` yield: elastic)

    Returns
    -------
    sig (6, N), K (N, 6, 6), eps_p_new (6, N), alpha_new (N,), failures (int: voxels whose
    return mapping did not converge)
    """
    n = eps.shape[1]
    sig = np.empty((6, n))
    K = np.empty((n, 6, 6))
    eps_p_new = np.empty((6, n))
    alpha_new = np.empty(n)
    S = np.linalg.inv(C)
    fails = _j2_kernel(np.ascontiguousarray(eps), np.ascontiguousarray(eps_p),
                       np.ascontiguousarray(alpha), labels, np.ascontiguousarray(C),
                       np.ascontiguousarray(S), np.asarray(sy, float), np.asarray(H, float),
                       _DEV, sig, K, eps_p_new, alpha_new, tol, max_newton)
    return sig, K, eps_p_new, alpha_new, int(fails)
