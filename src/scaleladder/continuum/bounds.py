"""Analytic bounds and estimates of effective elastic stiffness, beside every RVE result.

* :func:`voigt_bound`, :func:`reuss_bound`: ``⟨C⟩`` and ``⟨C⁻¹⟩⁻¹`` over a microstructure's
  labels (rotated phases, volume weighted): bounds for any microstructure.
* :func:`hashin_shtrikman_isotropic`: the Hashin–Shtrikman–Walpole bounds on the bulk and shear
  moduli of a statistically isotropic mixture of isotropic phases (3D), and the Hashin (1965)
  bounds on the transverse (plane-strain) bulk and shear moduli of a transversely isotropic
  columnar (2D) mixture.
* :func:`hashin_shtrikman_cubic`: bounds on the shear modulus of an untextured polycrystal of a
  cubic crystal (Hashin & Shtrikman 1962); its bulk modulus is exact, ``(C11 + 2 C12) / 3``.
* :func:`eshelby_tensor`: the Eshelby tensor of a sphere or a spheroid (axis ``z``, aspect
  ratio ``c/a``) in an isotropic matrix (Mura 1987, eq. 11.22); :func:`dilute_stiffness` and
  :func:`mori_tanaka`: the dilute and Mori–Tanaka (Benveniste 1987) estimates built on it.
* :func:`laminate_stiffness`: the exact effective stiffness of a laminate of anisotropic layers.

Stiffnesses are Voigt 6x6 (GPa unless said); inside, Mandel notation keeps the algebra plain.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import InputError
from ._mandel import stiffness_to_mandel, stiffness_to_voigt

__all__ = ["voigt_bound", "reuss_bound", "isotropic_moduli", "isotropic_voigt",
           "IsotropicBounds", "hashin_shtrikman_isotropic", "hashin_shtrikman_cubic",
           "eshelby_tensor", "dilute_stiffness", "mori_tanaka", "laminate_stiffness",
           "transverse_moduli"]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def isotropic_voigt(bulk: float, shear: float) -> np.ndarray:
    """Voigt stiffness of an isotropic solid from its bulk and shear moduli."""
    lam = bulk - 2.0 * shear / 3.0
    c = np.zeros((6, 6))
    c[:3, :3] = lam
    c[[0, 1, 2], [0, 1, 2]] = lam + 2 * shear
    c[[3, 4, 5], [3, 4, 5]] = shear
    return c


def isotropic_moduli(c_voigt) -> tuple[float, float]:
    """Bulk and shear modulus of the isotropic projection of a Voigt stiffness (the Voigt-type
    averages, exact for an isotropic tensor)."""
    c = np.asarray(c_voigt, dtype=float)
    k = (c[0, 0] + c[1, 1] + c[2, 2] + 2 * (c[0, 1] + c[0, 2] + c[1, 2])) / 9.0
    g = (c[0, 0] + c[1, 1] + c[2, 2] - (c[0, 1] + c[0, 2] + c[1, 2])
         + 3 * (c[3, 3] + c[4, 4] + c[5, 5])) / 15.0
    return float(k), float(g)


def transverse_moduli(c_voigt) -> tuple[float, float]:
    """Transverse (x-y plane) plane-strain bulk modulus ``k_T = (C11 + C22 + 2 C12) / 4`` and
    shear modulus ``G_T = ((C11 + C22 - 2 C12) / 4 + C66) / 2`` of a Voigt stiffness (exact
    for a transversely isotropic tensor with axis z)."""
    c = np.asarray(c_voigt, dtype=float)
    k = (c[0, 0] + c[1, 1] + 2 * c[0, 1]) / 4.0
    g = 0.5 * ((c[0, 0] + c[1, 1] - 2 * c[0, 1]) / 4.0 + c[5, 5])
    return float(k), float(g)


def _phase_weights(micro):
    """(stiffness of each label (GPa), volume fraction of each label)."""
    micro.require_phases("bounds")
    frac = np.bincount(micro.labels.ravel(), minlength=micro.n_labels) / micro.labels.size
    return micro.label_stiffness("GPa"), frac


def voigt_bound(micro) -> np.ndarray:
    """``⟨C⟩``: the Voigt (uniform strain) upper bound, GPa."""
    c, f = _phase_weights(micro)
    return np.einsum("l,lab->ab", f, c)


def reuss_bound(micro) -> np.ndarray:
    """``⟨C⁻¹⟩⁻¹``: the Reuss (uniform stress) lower bound, GPa."""
    c, f = _phase_weights(micro)
    s = np.einsum("l,lab->ab", f, np.linalg.inv(c))
    return np.linalg.inv(s)


def _isotropic_phase_moduli(micro):
    out = []
    for i, p in enumerate(micro.phases):
        c = np.asarray(p.voigt.value, dtype=float)
        k, g = isotropic_moduli(c)
        if np.abs(c - isotropic_voigt(k, g)).max() > 1e-6 * np.abs(c).max():
            raise InputError(f"phases[{i}]", micro.phase_names[i],
                             "an isotropic phase (Hashin-Shtrikman bounds of this form need "
                             "isotropic phases; use hashin_shtrikman_cubic for cubic "
                             "polycrystals, or voigt_bound/reuss_bound)")
        out.append((k, g))
    return np.array(out)


@dataclass(frozen=True)
class IsotropicBounds:
    """Lower and upper bounds on two moduli (GPa): ``bulk`` and ``shear`` (3D) or the
    transverse plane-strain ``bulk`` and ``shear`` (columnar 2D maps: ``transverse=True``)."""

    bulk: tuple
    shear: tuple
    transverse: bool = False
    kind: str = "Hashin-Shtrikman"

    def contains(self, bulk: float, shear: float, rtol: float = 0.0) -> bool:
        lo_k, hi_k = self.bulk
        lo_g, hi_g = self.shear
        return (lo_k * (1 - rtol) <= bulk <= hi_k * (1 + rtol)
                and lo_g * (1 - rtol) <= shear <= hi_g * (1 + rtol))


def hashin_shtrikman_isotropic(fractions, bulk, shear, *, transverse: bool = False
                               ) -> IsotropicBounds:
    """Hashin–Shtrikman–Walpole bounds for a mixture of isotropic phases.

    Parameters
    ----------
    fractions, bulk, shear : sequences
        Volume fraction, bulk and shear modulus of each phase.
    transverse : bool
        False: 3D statistically isotropic mixture, bounds on ``K`` and ``G``.  True: columnar
        (transversely isotropic) mixture, bounds on the transverse plane-strain bulk modulus
        ``k_T = K + G/3`` and the transverse shear modulus (Hashin 1965).
    """
    f = np.asarray(fractions, dtype=float)
    K = np.asarray(bulk, dtype=float)
    G = np.asarray(shear, dtype=float)
    if not (f.shape == K.shape == G.shape) or f.ndim != 1 or np.any(f < 0) or \
            abs(f.sum() - 1) > 1e-9:
        raise InputError("fractions", fractions, "volume fractions >= 0 summing to 1, one per "
                         "phase")

    def avg_inv(x, z):
        return 1.0 / np.sum(f / (x + z)) - z

    if not transverse:
        kb = (avg_inv(K, 4 * G.min() / 3), avg_inv(K, 4 * G.max() / 3))

        def zeta(k, g):
            return g / 6.0 * (9 * k + 8 * g) / (k + 2 * g)

        gb = (avg_inv(G, zeta(K.min(), G.min())), avg_inv(G, zeta(K.max(), G.max())))
        return IsotropicBounds(bulk=kb, shear=gb, transverse=False)
    k = K + G / 3.0                               # plane-strain bulk modulus of each phase
    kb = (avg_inv(k, G.min()), avg_inv(k, G.max()))

    def zeta2(kk, g):
        return kk * g / (kk + 2 * g)

    gb = (avg_inv(G, zeta2(k.min(), G.min())), avg_inv(G, zeta2(k.max(), G.max())))
    return IsotropicBounds(bulk=kb, shear=gb, transverse=True)


def hashin_shtrikman_cubic(c11: float, c12: float, c44: float) -> IsotropicBounds:
    """Hashin–Shtrikman (1962) bounds on the moduli of an untextured polycrystal of a cubic
    crystal (GPa in, GPa out): ``K = (C11 + 2 C12)/3`` exactly; the shear modulus between the
    bounds built on ``G1 = (C11 − C12)/2`` and ``G2 = C44``."""
    K = (c11 + 2 * c12) / 3.0
    g1, g2 = (c11 - c12) / 2.0, c44
    if min(g1, g2) <= 0 or K <= 0:
        raise InputError("cubic constants", (c11, c12, c44), "Born-stable cubic constants")
    if abs(g1 - g2) < 1e-12 * max(g1, g2):
        return IsotropicBounds(bulk=(K, K), shear=(g1, g1), kind="Hashin-Shtrikman (cubic)")
    b1 = -3 * (K + 2 * g1) / (5 * g1 * (3 * K + 4 * g1))
    b2 = -3 * (K + 2 * g2) / (5 * g2 * (3 * K + 4 * g2))
    a = g1 + 3.0 / (5.0 / (g2 - g1) - 4 * b1)
    b = g2 + 2.0 / (5.0 / (g1 - g2) - 6 * b2)
    return IsotropicBounds(bulk=(K, K), shear=(min(a, b), max(a, b)),
                           kind="Hashin-Shtrikman (cubic)")


# --------------------------------------------------------------------------------------------
# Eshelby, dilute, Mori–Tanaka
# --------------------------------------------------------------------------------------------
def eshelby_tensor(poisson_ratio: float, aspect_ratio: float = 1.0) -> np.ndarray:
    """Eshelby tensor of a spheroid ``x²/a² + y²/a² + z²/c² ≤ 1`` (``aspect_ratio = c/a``; 1: a
    sphere, large: a fibre along z, small: a disc) in an isotropic matrix, as a 6x6 *Mandel*
    matrix (strain → strain).  Mura (1987), eqs. 11.21–11.22; the sphere in closed form."""
    nu = float(poisson_ratio)
    if not -1.0 < nu < 0.5:
        raise InputError("poisson_ratio", nu, "a Poisson ratio in (-1, 0.5)")
    a = float(aspect_ratio)
    if not np.isfinite(a) or a <= 0:
        raise InputError("aspect_ratio", aspect_ratio, "a positive aspect ratio c/a")
    S = np.zeros((3, 3, 3, 3))
    d = np.eye(3)
    if abs(a - 1.0) < 1e-6:
        c1 = (5 * nu - 1) / (15 * (1 - nu))
        c2 = (4 - 5 * nu) / (15 * (1 - nu))
        S = (c1 * np.einsum("ij,kl->ijkl", d, d)
             + c2 * (np.einsum("ik,jl->ijkl", d, d) + np.einsum("il,jk->ijkl", d, d)))
    else:
        a2 = a * a
        if a > 1:
            g = a / (a2 - 1) ** 1.5 * (a * np.sqrt(a2 - 1) - np.arccosh(a))
        else:
            g = a / (1 - a2) ** 1.5 * (np.arccos(a) - a * np.sqrt(1 - a2))
        q = 1.0 / (1 - nu)
        m = a2 - 1
        s1111 = 3 * q / 8 * a2 / m + q / 4 * (1 - 2 * nu - 9 / (4 * m)) * g
        s3333 = q / 2 * (1 - 2 * nu + (3 * a2 - 1) / m - (1 - 2 * nu + 3 * a2 / m) * g)
        s1122 = q / 4 * (a2 / (2 * m) - (1 - 2 * nu + 3 / (4 * m)) * g)
        s1133 = q / 2 * (-a2 / m + 0.5 * (3 * a2 / m - (1 - 2 * nu)) * g)
        s3311 = q / 2 * (-(1 - 2 * nu) - 1 / m + (1 - 2 * nu + 3 / (2 * m)) * g)
        s1212 = q / 4 * (a2 / (2 * m) + (1 - 2 * nu - 3 / (4 * m)) * g)
        s1313 = q / 4 * (1 - 2 * nu - (a2 + 1) / m
                         - 0.5 * (1 - 2 * nu - 3 * (a2 + 1) / m) * g)
        vals = {(0, 0, 0, 0): s1111, (1, 1, 1, 1): s1111, (2, 2, 2, 2): s3333,
                (0, 0, 1, 1): s1122, (1, 1, 0, 0): s1122,
                (0, 0, 2, 2): s1133, (1, 1, 2, 2): s1133,
                (2, 2, 0, 0): s3311, (2, 2, 1, 1): s3311}
        for (i, j, k, m_), v in vals.items():
            S[i, j, k, m_] = v
        for (i, j), v in (((0, 1), s1212), ((0, 2), s1313), ((1, 2), s1313)):
            for p, q_ in ((i, j), (j, i)):
                for r, s in ((i, j), (j, i)):
                    S[p, q_, r, s] = v
    from ._mandel import PAIRS, W

    out = np.empty((6, 6))
    for A, (i, j) in enumerate(PAIRS):
        for B, (k, m_) in enumerate(PAIRS):
            out[A, B] = S[i, j, k, m_] * W[A] * W[B]
    return out


def _dilute_concentration(c_matrix, c_inclusion, eshelby_m):
    cm = stiffness_to_mandel(np.asarray(c_matrix, float))
    ci = stiffness_to_mandel(np.asarray(c_inclusion, float))
    return cm, ci, np.linalg.inv(np.eye(6) + eshelby_m @ np.linalg.solve(cm, ci - cm))


def _matrix_poisson(c_matrix) -> float:
    k, g = isotropic_moduli(c_matrix)
    c = np.asarray(c_matrix, float)
    if np.abs(c - isotropic_voigt(k, g)).max() > 1e-6 * np.abs(c).max():
        raise InputError("c_matrix", "anisotropic", "an isotropic matrix (the Eshelby tensor "
                         "here is that of an isotropic matrix)")
    return (3 * k - 2 * g) / (2 * (3 * k + g))


def dilute_stiffness(c_matrix, c_inclusion, fraction: float, aspect_ratio: float = 1.0
                     ) -> np.ndarray:
    """Dilute estimate ``C_m + f (C_i − C_m) A_dil`` (aligned spheroids along z), Voigt."""
    S = eshelby_tensor(_matrix_poisson(c_matrix), aspect_ratio)
    cm, ci, A = _dilute_concentration(c_matrix, c_inclusion, S)
    return stiffness_to_voigt(cm + fraction * (ci - cm) @ A)


def mori_tanaka(c_matrix, c_inclusion, fraction: float, aspect_ratio: float = 1.0
                ) -> np.ndarray:
    """Mori–Tanaka estimate (Benveniste 1987) for aligned spheroidal inclusions (axis z) in an
    isotropic matrix, Voigt: ``C_m + f (C_i − C_m) A [(1 − f) I + f A]⁻¹``."""
    f = float(fraction)
    if not 0 <= f < 1:
        raise InputError("fraction", fraction, "an inclusion volume fraction in [0, 1)")
    S = eshelby_tensor(_matrix_poisson(c_matrix), aspect_ratio)
    cm, ci, A = _dilute_concentration(c_matrix, c_inclusion, S)
    c = cm + f * (ci - cm) @ A @ np.linalg.inv((1 - f) * np.eye(6) + f * A)
    c = 0.5 * (c + c.T)
    return stiffness_to_voigt(c)


# --------------------------------------------------------------------------------------------
# laminates
# --------------------------------------------------------------------------------------------
_NORMAL_SETS = {0: [0, 4, 5], 1: [1, 3, 5], 2: [2, 3, 4]}


def laminate_stiffness(stiffnesses, fractions, normal_axis: int = 0) -> np.ndarray:
    """Exact effective stiffness (Voigt) of a laminate of (any anisotropic) layers stacked along
    ``normal_axis``: the in-plane strains and the tractions on the layer planes are uniform."""
    C = [stiffness_to_mandel(np.asarray(c, float)) for c in stiffnesses]
    f = np.asarray(fractions, dtype=float)
    if len(C) != len(f) or np.any(f < 0) or abs(f.sum() - 1) > 1e-9:
        raise InputError("fractions", fractions, "one volume fraction per layer, summing to 1")
    if normal_axis not in _NORMAL_SETS:
        raise InputError("normal_axis", normal_axis, "0, 1 or 2")
    n = _NORMAL_SETS[normal_axis]
    t = [k for k in range(6) if k not in n]
    inv_nn = sum(fi * np.linalg.inv(c[np.ix_(n, n)]) for fi, c in zip(f, C))
    inv_nn_nt = sum(fi * np.linalg.solve(c[np.ix_(n, n)], c[np.ix_(n, t)]) for fi, c in zip(f, C))
    tn_inv = sum(fi * c[np.ix_(t, n)] @ np.linalg.inv(c[np.ix_(n, n)]) for fi, c in zip(f, C))
    schur = sum(fi * (c[np.ix_(t, t)] - c[np.ix_(t, n)] @ np.linalg.solve(c[np.ix_(n, n)],
                                                                            c[np.ix_(n, t)]))
                for fi, c in zip(f, C))
    A = np.linalg.inv(inv_nn)                       # Σ_n = A (E_n + B E_t)
    B = inv_nn_nt
    out = np.zeros((6, 6))
    out[np.ix_(n, n)] = A
    out[np.ix_(n, t)] = A @ B
    out[np.ix_(t, n)] = tn_inv @ A
    out[np.ix_(t, t)] = tn_inv @ A @ B + schur
    out = 0.5 * (out + out.T)
    return stiffness_to_voigt(out)

