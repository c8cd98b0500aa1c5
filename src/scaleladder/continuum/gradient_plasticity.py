"""Strain-gradient plasticity: the size effect of thin wires in torsion, on scikit-fem.

Model (Fleck & Hutchinson 2001, "A reformulation of strain gradient plasticity", J. Mech. Phys.
Solids 49, 2245, in its deformation-theory form): J2 plasticity with linear hardening in which
the effective plastic strain ``ε_p`` is replaced by the generalised one

    E_p = √(ε_p² + ℓ² |∇ε_p|²),

so that the solution minimises

    Π[γ_p] = ∫ [ ½ G (γ − γ_p)² + σ_0 E_p + ½ h E_p² ] dA          (per unit length)

over the plastic shear strain field ``γ_p ≥ 0`` (``ε_p = γ_p/√3``; ``σ_0`` the tensile yield
stress, ``h`` the tensile hardening modulus; in shear ``τ_0 = σ_0/√3``, ``dτ/dγ_p = h/3``).

Why this one rather than Aifantis's ``∇²ε_p`` in the yield condition: it is variational (one
convex potential, so existence, uniqueness and a stable minimiser come for free), its higher-order
boundary condition is explicit (``"free"``: ``ε_p`` unconstrained at the surface, dislocations
leave; ``"passivated"``: ``ε_p = 0`` there, an oxide or coating keeps them in), and it is the
form with which Fleck and Hutchinson fitted ℓ to the wire-torsion data of Fleck, Muller, Ashby &
Hutchinson (1994, Acta Metall. Mater. 42, 475).  Deformation theory equals the incremental theory
for proportional loading, which torsion at each point is; it is not meant for unloading.

Torsion of a wire of radius ``a`` at twist per unit length ``κ``: ``γ = κ r``, the problem is one-
dimensional in ``r`` with the area element ``2π r dr``; P1 elements on a scikit-fem ``MeshLine``,
the convex (non-smooth at ``E_p = 0``) energy minimised by a projected Newton method on a
smoothed ``E_p`` (``√(E² + η²) − η``) with continuation of ``η`` down to 10⁻⁹ of the yield strain.  The torque is
``T = ∫ τ r dA`` with ``τ = G(γ − γ_p)``.  With ℓ = 0 it is the classical torque
(:func:`classical_torque`); in tension the plastic strain is uniform and there is no size effect
(:func:`wire_tension`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core import validate as _v
from ..core.errors import ConvergenceError, InputError

__all__ = ["TorsionResult", "wire_torsion", "classical_torque", "wire_tension", "fit_material_length",
           "size_effect_curves", "plot_size_effect"]


@dataclass
class TorsionResult:
    """Torque against twist of one wire.

    ``kappa`` (1/m), ``torque`` (N·m), ``normalised_torque`` ``T/a³`` (Pa), ``normalised_twist``
    ``κa``; ``r`` (m) the nodes and ``gamma_p`` the plastic shear strain there at each twist.
    """

    radius: float
    ell: float
    kappa: np.ndarray
    torque: np.ndarray
    r: np.ndarray
    gamma_p: list = field(default_factory=list)
    boundary: str = "free"

    @property
    def normalised_torque(self) -> np.ndarray:
        return self.torque / self.radius ** 3

    @property
    def normalised_twist(self) -> np.ndarray:
        return self.kappa * self.radius


def classical_torque(kappa, radius: float, shear_modulus: float, yield_stress: float,
                     hardening: float = 0.0) -> np.ndarray:
    """The torque (N·m) of a linearly hardening J2 wire (ℓ = 0) at twists ``kappa`` (1/m):
    elastic core ``r < r_y = τ_0/(Gκ)``, ``τ = τ_0 + G_t(γ − γ_y)`` outside it with
    ``G_t = G H_s/(G + H_s)``, ``H_s = h/3``, ``τ_0 = σ_0/√3``."""
    k = np.atleast_1d(np.asarray(kappa, dtype=float))
    a, G = _v.positive("radius", radius), _v.positive("shear_modulus", shear_modulus)
    t0 = _v.positive("yield_stress", yield_stress) / math.sqrt(3.0)
    Hs = _v.nonnegative("hardening", hardening) / 3.0
    Gt = G * Hs / (G + Hs)
    gy = t0 / G
    out = np.empty_like(k)
    for i, kk in enumerate(k):
        ry = gy / kk if kk > 0 else np.inf
        if ry >= a:
            out[i] = 2 * math.pi * G * kk * a ** 4 / 4
        else:
            out[i] = 2 * math.pi * (G * kk * ry ** 4 / 4 + t0 * (a ** 3 - ry ** 3) / 3
                                    + Gt * kk * (a ** 4 - ry ** 4) / 4
                                    - Gt * gy * (a ** 3 - ry ** 3) / 3)
    return out


def _check(radius, shear_modulus, yield_stress, hardening, ell, boundary):
    a = _v.positive("radius", radius)
    G = _v.positive("shear_modulus", shear_modulus)
    s0 = _v.positive("yield_stress", yield_stress)
    h = _v.nonnegative("hardening", hardening)
    ell = _v.finite("ell", ell)
    if ell < 0:
        raise InputError("ell", ell, "a non-negative material length (m); 0 = classical plasticity")
    _v.one_of("boundary", boundary, ("free", "passivated"))
    return a, G, s0, h, ell


class _RadialModel:
    """The generalised-strain potential on a radial P1 mesh (scikit-fem ``MeshLine``).

    Unknown: the nodal plastic strain ``x`` (``γ_p`` in torsion, ``ε_p`` in tension);
    ``e = x/c`` is the effective plastic strain (``c = √3`` in torsion, 1 in tension);
    the elastic part is ``½ M (drive(r) − x)²``.  :meth:`minimise` is a projected Newton method
    (exact Hessian, Armijo backtracking, active set on ``x ≥ 0``) with continuation in the
    smoothing ``η`` of ``E_p`` from 10⁻² to 10⁻⁹ of the yield strain: the energy is convex,
    so each stage starts inside the previous one's basin and needs a few iterations.
    """

    def __init__(self, nodes, modulus, s0, h, ell, c):
        from skfem import Basis, ElementLineP1, MeshLine

        mesh = MeshLine(nodes)
        basis = Basis(mesh, ElementLineP1(), intorder=4)
        self.r_q = basis.mapping.F(basis.X)[0]                     # (nel, nq)
        self.w_q = basis.dx * 2 * math.pi * self.r_q               # area weights
        self.phi = np.stack([np.asarray(basis.basis[i][0]) for i in range(2)])
        self.dphi = np.stack([np.asarray(basis.basis[i][0].grad[0]) for i in range(2)])
        self.dofs = basis.element_dofs
        self.N = basis.N
        self.r = mesh.p[0]
        self.M, self.s0, self.h, self.ell, self.c = modulus, s0, h, ell, c
        r = np.repeat(self.dofs[:, None, :], 2, axis=1)
        self._rows, self._cols = r.ravel(), np.transpose(r, (1, 0, 2)).ravel()

    def fields(self, x):
        xe = x[self.dofs]
        return (np.einsum("ieq,ie->eq", self.phi, xe), np.einsum("ieq,ie->eq", self.dphi, xe))

    def energy(self, x, drive, eta, hessian=False):
        import scipy.sparse as sp

        M, s0, h, ell, c = self.M, self.s0, self.h, self.ell, self.c
        g, dg = self.fields(x)
        e, de = g / c, dg / c
        S = np.sqrt(e ** 2 + (ell * de) ** 2 + eta ** 2)
        E = S - eta
        el = drive - g
        dens = 0.5 * M * el ** 2 + s0 * E + 0.5 * h * E ** 2
        f1 = s0 + h * E                                            # Φ'(E)
        d_g = -M * el + f1 * e / S / c
        d_dg = f1 * ell ** 2 * de / S / c
        w = self.w_q
        ge = np.einsum("ieq,eq->ie", self.phi, d_g * w) + np.einsum("ieq,eq->ie", self.dphi, d_dg * w)
        grad = np.bincount(self.dofs.ravel(), ge.ravel(), minlength=self.N)
        f = float(np.sum(dens * w))
        if not hessian:
            return f, grad
        # Hessian of Φ(E(v)), v = (e, ℓ de): Φ'' ∇E∇Eᵀ + Φ' (I/S − ∇E∇Eᵀ/S)
        u1, u2 = e / S, ell * de / S                               # ∇E in v
        a11 = h * u1 * u1 + f1 * (1 - u1 * u1) / S
        a12 = h * u1 * u2 - f1 * u1 * u2 / S
        a22 = h * u2 * u2 + f1 * (1 - u2 * u2) / S
        c2 = c * c
        Hgg = M + a11 / c2
        Hgd = a12 * ell / c2
        Hdd = a22 * ell ** 2 / c2
        P, D = self.phi, self.dphi
        ke = (np.einsum("ieq,jeq,eq->ije", P, P, Hgg * w) + np.einsum("ieq,jeq,eq->ije", P, D, Hgd * w)
              + np.einsum("ieq,jeq,eq->ije", D, P, Hgd * w) + np.einsum("ieq,jeq,eq->ije", D, D, Hdd * w))
        H = sp.coo_matrix((ke.ravel(), (self._rows, self._cols)), shape=(self.N, self.N)).tocsc()
        return f, grad, H

    def minimise(self, x0, drive, upper, yield_strain):
        from scipy.sparse.linalg import spsolve

        x = np.clip(x0, 0.0, upper)
        for eta in yield_strain * 10.0 ** np.arange(-2, -10, -1.0):
            for it in range(60):
                f, g, H = self.energy(x, drive, eta, hessian=True)
                at_lo = (x <= 0) & (g > 0)
                at_hi = (x >= upper) & (g < 0)
                free = ~(at_lo | at_hi)
                pg = np.where(free, g, 0.0)
                scale = max(float(np.abs(self.M * drive).max()) * float(self.w_q.sum()), 1e-300)
                pgn = float(np.abs(pg).max())
                if pgn <= 1e-12 * scale:
                    break
                p = np.zeros_like(x)
                idx = np.flatnonzero(free)
                p[idx] = spsolve(H[idx][:, idx], -g[idx])
                alpha = 1.0
                for _ in range(60):
                    xn = np.clip(x + alpha * p, 0.0, upper)
                    fn, _ = self.energy(xn, drive, eta)
                    if fn <= f + 1e-4 * float(g @ (xn - x)):
                        break
                    alpha *= 0.5
                step = float(np.abs(xn - x).max())
                x = xn
                if step <= 1e-14 * max(float(np.abs(x).max()), yield_strain):
                    break
            else:
                if pgn > 1e-8 * scale:      # round-off floor of the line search: accept below
                    raise ConvergenceError(f"strain-gradient plasticity: projected Newton did "
                                           f"not converge at η = {eta:.2g} (projected gradient "
                                           f"{pgn / scale:.2g} of the scale)",
                                           suggestion="more elements")
        return x


def wire_torsion(radius: float, kappas, *, shear_modulus: float, yield_stress: float,
                 hardening: float = 0.0, ell: float = 0.0, boundary: str = "free",
                 n: int = 200) -> TorsionResult:
    """Torque–twist of a wire in strain-gradient (Fleck–Hutchinson) torsion.

    Parameters
    ----------
    radius : float
        Wire radius ``a`` (m).
    kappas : array_like
        Twists per unit length (1/m), increasing.
    shear_modulus, yield_stress, hardening : float
        ``G``, tensile ``σ_0`` and tensile linear hardening ``h`` (Pa).
    ell : float
        Material length ℓ (m, ≥ 0); 0 gives classical J2 torsion.
    boundary : {"free", "passivated"}
        Higher-order condition at the surface ``r = a``.
    n : int
        Elements along the radius (refused below ``4·a/ℓ`` when ℓ > 0: the plastic boundary
        layer must be resolved).
    """
    a, G, s0, h, ell = _check(radius, shear_modulus, yield_stress, hardening, ell, boundary)
    n = _v.positive_int("n", n, 8)
    if ell > 0 and a / n > ell / 4:
        raise InputError("n", n, f"at least {math.ceil(4 * a / ell)} elements (h <= ℓ/4 = "
                         f"{ell / 4:.3g} m resolves the plastic boundary layer)")
    k = np.asarray(kappas, dtype=float)
    if k.ndim != 1 or k.size == 0 or np.any(np.diff(k) <= 0) or k[0] <= 0:
        raise InputError("kappas", kappas, "positive, increasing twists per unit length (1/m)")
    # nodes graded towards the surface, where the plastic strain varies fastest
    s = np.linspace(0.0, 1.0, n + 1)
    model = _RadialModel(a * (1 - (1 - s) ** 1.5), G, s0, h, ell, math.sqrt(3.0))
    upper = np.full(model.N, np.inf)
    if boundary == "passivated":
        upper[int(np.argmax(model.r))] = 0.0
    gy = s0 / math.sqrt(3.0) / G
    torques, gps = [], []
    gp = np.zeros(model.N)
    for kappa in k:
        gp = model.minimise(gp, kappa * model.r_q, upper, gy)
        g_q, _ = model.fields(gp)
        tau = G * (kappa * model.r_q - g_q)
        torques.append(float(np.sum(tau * model.r_q * model.w_q)))
        gps.append(gp.copy())
    return TorsionResult(radius=a, ell=ell, kappa=k, torque=np.array(torques), r=model.r,
                         gamma_p=gps, boundary=boundary)


def wire_tension(radius: float, strains, *, youngs_modulus: float, yield_stress: float,
                 hardening: float = 0.0, ell: float = 0.0, n: int = 50) -> np.ndarray:
    """Axial stress (Pa) of a wire in uniaxial tension at the given total strains: the same
    generalised-strain potential (``E_p = √(ε_p² + ℓ²|∇ε_p|²)``) minimised over a radial plastic
    strain field, started from a non-uniform guess.  The strain is uniform, so the minimiser has
    ``∇ε_p = 0`` and the response is the classical one for every radius and ℓ: no size effect in
    tension (Fleck et al. 1994)."""
    a = _v.positive("radius", radius)
    E = _v.positive("youngs_modulus", youngs_modulus)
    s0 = _v.positive("yield_stress", yield_stress)
    h = _v.nonnegative("hardening", hardening)
    ell = _v.nonnegative("ell", ell)
    model = _RadialModel(np.linspace(0, a, _v.positive_int("n", n, 4) + 1), E, s0, h, ell, 1.0)
    area = math.pi * a ** 2
    out = []
    ep = np.linspace(0, 1e-4, model.N)             # not uniform: the minimiser must find it
    for eps in np.asarray(strains, dtype=float):
        ep = model.minimise(ep, np.full_like(model.r_q, eps), np.full(model.N, np.inf), s0 / E)
        e, _ = model.fields(ep)
        out.append(float(np.sum(E * (eps - e) * model.w_q)) / area)
    return np.array(out)


def size_effect_curves(radii, twist_range=(0.005, 0.12), n_twist: int = 12, **kw) -> list:
    """Torsion of several wires over the same range of normalised twist ``κa``: a list of
    :class:`TorsionResult` (for plots of ``T/a³`` against ``κa``)."""
    lo, hi = twist_range
    out = []
    for a in radii:
        ka = np.linspace(lo, hi, n_twist)
        n = max(200, int(math.ceil(4 * a / kw["ell"])) + 1) if kw.get("ell", 0) > 0 else 200
        out.append(wire_torsion(a, ka / a, n=n, **kw))
    return out


def plot_size_effect(curves, ax=None, classical=None):
    """``T/a³`` (MPa) against ``κa`` per wire radius; ``classical``: a curve at ℓ = 0."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4))
    for c in curves:
        ax.plot(c.normalised_twist, c.normalised_torque / 1e6, "o-", ms=3,
                label=f"2a = {2e6 * c.radius:.3g} µm, ℓ = {1e6 * c.ell:.3g} µm")
    if classical is not None:
        ax.plot(classical.normalised_twist, classical.normalised_torque / 1e6, "k--",
                label="classical (ℓ = 0), any radius")
    ax.set_xlabel("normalised twist κa")
    ax.set_ylabel("normalised torque T/a³ (MPa)")
    ax.legend(fontsize=7)
    return ax


def fit_material_length(target_ratio: float, *, thin_radius: float, thick_radius: float,
                        twist: float, shear_modulus: float, yield_stress: float,
                        hardening: float = 0.0, boundary: str = "free",
                        bracket=(1e-7, 1e-4), tol: float = 1e-3) -> float:
    """The ℓ (m) at which the thin wire's ``T/a³`` at normalised twist ``κa = twist`` is
    ``target_ratio`` times the thick wire's (bisection in log ℓ; the ratio grows with ℓ)."""
    target = _v.positive("target_ratio", target_ratio)
    if target <= 1:
        raise InputError("target_ratio", target_ratio, "a ratio > 1 (thin wires are stronger)")
    kw = dict(shear_modulus=shear_modulus, yield_stress=yield_stress, hardening=hardening,
              boundary=boundary)

    def ratio(ell):
        out = []
        for a in (thin_radius, thick_radius):
            n = max(200, int(math.ceil(4 * a / ell)) + 1)
            out.append(wire_torsion(a, np.array([0.5 * twist, twist]) / a, ell=ell, n=n,
                                    **kw).normalised_torque[-1])
        return out[0] / out[1]

    lo, hi = (math.log(b) for b in bracket)
    if ratio(math.exp(hi)) < target:
        raise InputError("target_ratio", target_ratio, f"a ratio reached with ℓ <= {bracket[1]:g} m")
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if ratio(math.exp(mid)) < target:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))
