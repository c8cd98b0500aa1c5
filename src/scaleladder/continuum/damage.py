"""Softening and its cures, in one dimension first: variational phase-field fracture (AT1, AT2)
and the local strain-softening damage model whose mesh dependence is the pathology.

Phase field (Bourdin, Francfort & Marigo 2000; Pham, Amor, Marigo & Maurini 2011): the energy of
a bar of Young's modulus ``E`` (cross-section 1) with damage ``d`` in [0, 1] is

    ℰ(u, d) = ∫ ½ (1 − d)² E u'² dx + (G_c / c_w) ∫ (w(d)/ℓ + ℓ d'²) dx,

AT2: ``w = d²``, ``c_w = 2``; AT1: ``w = d``, ``c_w = 8/3``.  It is minimised by alternate
minimisation: ``u`` at fixed ``d`` (a linear solve), then ``d`` at fixed ``u`` — a
*bound-constrained* quadratic program ``d_prev ≤ d ≤ 1`` (irreversibility).  Bounds rather than a
history field: the history field (Miehe et al. 2010) is a heuristic for AT2 that is not the
variational irreversibility and cannot keep AT1's damage non-negative; the bounds are exact for
both.  The iterations stop when the damage changes by less than ``tol`` (max norm).

Closed forms (Tanné, Li, Bourdin, Marigo & Maurini 2018), used by the tests: homogeneous peak
stress ``σ_c = (9/16)√(E G_c/(3ℓ))`` (AT2) and ``√(3 E G_c/(8ℓ))`` (AT1, the elastic limit);
the optimal 1D crack profiles ``exp(−|x|/ℓ)`` (AT2) and ``(1 − |x|/(2ℓ))²`` on ``|x| ≤ 2ℓ``
(AT1), each dissipating exactly ``G_c`` (Γ-convergence).

Implicit gradient damage (Peerlings, de Borst, Brekelmans & de Vree 1996): the same local
softening law driven by a nonlocal equivalent strain ``ē − ℓ² ē'' = ε`` spreads the band over a
width set by ℓ, so band width and dissipation converge with h (:func:`gradient_damage_bar`); the
integral nonlocal model (Pijaudier-Cabot & Bažant 1987) does the same with a Gaussian average
(:func:`nonlocal_damage_bar`).

Local damage (the pathology): ``σ = (1 − D(κ)) E ε`` with linear softening from the strength
``f_t`` at ``ε₀ = f_t/E`` to zero stress at ``ε_f``; a bar loaded in tension localises into the
weakest element, so the softening band is one element wide and the dissipated energy
``h f_t ε_f / 2`` vanishes with the element size ``h``.  Solved with the band's own strain as
the control (the bar's elongation snaps back once ``h`` is small).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core import validate as _v
from ..core.errors import ConvergenceError, InputError
from ._p1 import block_pattern, strain_operator

__all__ = ["PhaseFieldBar", "BarResult", "homogeneous_response", "peak_stress",
           "critical_energy_release_rate", "internal_length",
           "optimal_profile", "local_damage_bar", "LocalDamageResult", "gradient_damage_bar",
           "nonlocal_damage_bar", "GradientDamageResult", "MODELS", "local_damage_strip",
           "LocalDamage2DResult", "acoustic_determinant", "gradient_damage_strip"]

MODELS = ("AT1", "AT2")
_CW = {"AT1": 8.0 / 3.0, "AT2": 2.0}


def critical_energy_release_rate(surface):
    """``G_c = 2γ`` (J/m², an Estimate with γ's sources) from a ``SurfaceEnergy`` handoff or an
    Estimate of γ in any energy-per-area unit (eV/Å², J/m², ...); anything else is refused."""
    from ..core import units as _units
    from ..core.errors import UnitError
    from ..handoffs import SurfaceEnergy
    from ..uq import Estimate

    gamma = surface.value if isinstance(surface, SurfaceEnergy) else surface
    if not isinstance(gamma, Estimate):
        raise InputError("surface", type(surface).__name__,
                         "a SurfaceEnergy handoff or an Estimate of the surface energy")
    if not _units.same_dimension(gamma.unit, "J/m^2"):
        raise UnitError("surface.unit", gamma.unit, "an energy per area (J/m^2, eV/Å^2, ...): "
                        "G_c = 2γ is an energy release rate")
    return 2.0 * gamma.to("J/m^2")


def internal_length(E: float, Gc: float, strength: float, model: str = "AT1") -> float:
    """The internal length that gives a homogeneous bar the strength ``σ_c`` (consistent units):
    AT1 ``ℓ = 3 E G_c / (8 σ_c²)``, AT2 ``ℓ = 27 E G_c / (256 σ_c²)``."""
    _v.one_of("model", model, MODELS)
    E, Gc, strength = (_v.positive(k, v) for k, v in (("E", E), ("Gc", Gc),
                                                      ("strength", strength)))
    return (3.0 / 8.0 if model == "AT1" else 27.0 / 256.0) * E * Gc / strength ** 2


def homogeneous_response(model: str, E: float, Gc: float, ell: float, strain) -> tuple:
    """Closed-form homogeneous damage and stress of the bar at the given strains."""
    _v.one_of("model", model, MODELS)
    eps = np.asarray(strain, dtype=float)
    if model == "AT2":
        x = E * eps ** 2 * ell / Gc
        d = x / (1 + x)
    else:
        d = np.clip(1.0 - 3.0 * Gc / (8.0 * ell * E * np.maximum(eps ** 2, 1e-300)), 0.0, 1.0)
    return d, (1 - d) ** 2 * E * eps


def peak_stress(model: str, E: float, Gc: float, ell: float) -> float:
    """Homogeneous peak (AT2) or elastic-limit (AT1) stress."""
    _v.one_of("model", model, MODELS)
    if model == "AT2":
        return 9.0 / 16.0 * math.sqrt(E * Gc / (3.0 * ell))
    return math.sqrt(3.0 * E * Gc / (8.0 * ell))


def optimal_profile(model: str, x, ell: float) -> np.ndarray:
    """The optimal damage profile of a 1D crack at x = 0."""
    _v.one_of("model", model, MODELS)
    r = np.abs(np.asarray(x, dtype=float))
    if model == "AT2":
        return np.exp(-r / ell)
    return np.where(r <= 2 * ell, (1 - r / (2 * ell)) ** 2, 0.0)


def _strip_supports(ub, x, y, length):
    """The 2D strips' supports: ``u_x = 0`` on the left edge, ``u_y = 0`` at its bottom corner,
    ``u_x`` prescribed on the right edge.  Returns ``(fixed dofs, loaded dofs, free dofs)``."""
    left = np.flatnonzero(x < 1e-9 * length)
    right = np.flatnonzero(x > length * (1 - 1e-9))
    corner = np.flatnonzero((x < 1e-9 * length) & (y < 1e-9 * length))
    D_fix = np.concatenate([ub.nodal_dofs[0, left], ub.nodal_dofs[1, corner]])
    D_load = ub.nodal_dofs[0, right]
    return D_fix, D_load, np.setdiff1d(np.arange(ub.N), np.concatenate([D_fix, D_load]))


def alternate_minimisation(model, delta: float, lower: np.ndarray, *,
                           abort_growth: float | None = None) -> int:
    """The staggered scheme of the phase-field models (1D bar and 2D): ``model._u_step(delta)``
    (displacement at fixed damage) then ``model._d_step(lower)`` (damage at fixed displacement,
    bounded below by ``lower``), until the damage changes by less than ``model.tol`` (max norm).
    Returns the iterations, or ``-1`` as soon as the damage has grown by more than
    ``abort_growth`` above ``lower`` somewhere (the caller redoes the step smaller)."""
    for it in range(1, model.max_iter + 1):
        model._u_step(delta)
        d_new = model._d_step(lower)
        change = float(np.abs(d_new - model.d).max())
        model.d = d_new
        if change < model.tol:
            return it
        if abort_growth is not None and float(np.max(model.d - lower)) > abort_growth:
            return -1
    raise ConvergenceError(f"alternate minimisation: damage still changing by {change:.3g} after "
                           f"{model.max_iter} iterations at load {delta:g}",
                           suggestion="smaller steps or a larger max_iter")


@dataclass
class BarResult:
    """A loading history of the phase-field bar.

    Attributes
    ----------
    displacement, force : list of float
        Prescribed end displacement and the reaction (stress x unit section) per step.
    elastic_energy, surface_energy : list of float
        Energies at each converged step.
    iterations : list of int
        Alternate-minimisation iterations per step.
    d : numpy.ndarray
        Damage at the nodes after the last step; ``x`` the node coordinates.
    history : list of numpy.ndarray
        Damage after every step (for irreversibility checks and plots).
    """

    displacement: list = field(default_factory=list)
    force: list = field(default_factory=list)
    elastic_energy: list = field(default_factory=list)
    surface_energy: list = field(default_factory=list)
    iterations: list = field(default_factory=list)
    d: np.ndarray | None = None
    x: np.ndarray | None = None
    history: list = field(default_factory=list)

    @property
    def dissipated(self) -> float:
        return float(self.surface_energy[-1]) if self.surface_energy else 0.0


class PhaseFieldBar:
    """A 1D phase-field bar ``[0, L]`` on P1 elements (scikit-fem), clamped at x = 0 and pulled
    at x = L, damage free at both ends.

    Parameters
    ----------
    model : {"AT1", "AT2"}
    E : float
        Young's modulus (any consistent unit; GPa with Gc in GPa·length gives stresses in GPa).
    Gc : float
        Critical energy release rate (energy per area, same units).
    ell : float
        Internal length (> 0, at least 2 elements: refused otherwise).
    length : float
    n : int
        Elements.
    weak : float
        Relative reduction of the middle element's ``Gc``, to place the crack (0: a perfectly
        homogeneous bar).
    """

    def __init__(self, model: str, E: float, Gc: float, ell: float, length: float = 1.0,
                 n: int = 200, weak: float = 0.0, tol: float = 1e-8, max_iter: int = 2000):
        from skfem import Basis, ElementLineP1, MeshLine

        _v.one_of("model", model, MODELS)
        self.model = model
        self.E = _v.positive("E", E)
        self.Gc = _v.positive("Gc", Gc)
        ell = _v.finite("ell", ell)
        if ell <= 0:
            raise InputError("ell", ell, "a positive internal length")
        self.L = _v.positive("length", length)
        self.n = _v.positive_int("n", n, 4)
        h = self.L / self.n
        if ell < 2 * h:
            raise InputError("ell", ell, f"an internal length of at least two elements "
                             f"(h = {h:.4g}: ell >= {2 * h:.4g}); the band would not be resolved",
                             hint="refine the mesh (n) or raise ell")
        self.ell = ell
        self.tol = _v.positive("tol", tol)
        self.max_iter = _v.positive_int("max_iter", max_iter)
        self.mesh = MeshLine(np.linspace(0.0, self.L, self.n + 1))
        self.basis = Basis(self.mesh, ElementLineP1())
        self.x = self.mesh.p[0]
        # element-wise Gc (a weakened middle element places the crack)
        gc = np.full(self.n, self.Gc)
        if weak:
            gc[self.n // 2] *= 1.0 - float(weak)
        self.gc_el = gc
        self.d = np.zeros(self.basis.N)
        self.u = np.zeros(self.basis.N)
        self._delta = 0.0                       # the last prescribed end displacement
        self._assemble_static()

    def _assemble_static(self):
        from skfem import BilinearForm, LinearForm

        cw = _CW[self.model]
        gc_q = self.gc_el[:, None] * np.ones(self.basis.X.shape[1])

        @BilinearForm
        def grad_term(d, v, w):
            return 2.0 * w.gc / cw * self.ell * d.grad[0] * v.grad[0]

        @BilinearForm
        def well2(d, v, w):                       # AT2: w(d) = d², its Hessian 2/ℓ
            return 2.0 * w.gc / cw / self.ell * d * v

        @LinearForm
        def well1(v, w):                          # AT1: w(d) = d, a constant force
            return w.gc / cw / self.ell * v

        self.K_grad = grad_term.assemble(self.basis, gc=gc_q)
        self.K_well = well2.assemble(self.basis, gc=gc_q) if self.model == "AT2" else None
        self.f_well = well1.assemble(self.basis, gc=gc_q) if self.model == "AT1" else None

    # -- the two sub-problems ------------------------------------------------------------------
    def _u_step(self, delta):
        from skfem import BilinearForm, condense, solve

        dq = self.basis.interpolate(self.d)
        E = self.E

        @BilinearForm
        def stiff(u, v, w):
            return ((1 - w.dq) ** 2 + 1e-10) * E * u.grad[0] * v.grad[0]

        K = stiff.assemble(self.basis, dq=dq)
        x = np.zeros(self.basis.N)
        x[-1] = delta
        D = np.array([0, self.basis.N - 1])
        self.u = solve(*condense(K, np.zeros(self.basis.N), x=x, D=D))
        return K

    def _d_step(self, lower):
        """The bound-constrained damage problem at fixed u."""
        from scipy.optimize import minimize
        from skfem import BilinearForm, LinearForm

        eq = self.basis.interpolate(self.u).grad[0]
        E = self.E

        @BilinearForm
        def drive(d, v, w):
            return E * w.e ** 2 * d * v

        @LinearForm
        def rhs(v, w):
            return E * w.e ** 2 * v

        A = drive.assemble(self.basis, e=eq) + self.K_grad
        if self.K_well is not None:
            A = A + self.K_well
        b = rhs.assemble(self.basis, e=eq)
        if self.f_well is not None:
            b = b - self.f_well
        A = A.tocsr()

        def fun(d):
            Ad = A @ d
            return 0.5 * d @ Ad - b @ d, Ad - b

        res = minimize(fun, np.clip(self.d, lower, 1.0), jac=True, method="L-BFGS-B",
                       bounds=list(zip(lower, np.ones_like(lower))),
                       options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
        return np.clip(res.x, lower, 1.0)

    def energies(self) -> tuple[float, float]:
        """(elastic, surface) energy of the current state."""
        from skfem import Functional

        cw = _CW[self.model]
        ell = self.ell
        E = self.E
        at2 = self.model == "AT2"

        @Functional
        def el(w):
            return 0.5 * (1 - w.d) ** 2 * E * w.ug ** 2

        @Functional
        def surf(w):
            wd = w.d ** 2 if at2 else w.d
            return w.gc / cw * (wd / ell + ell * w.dg ** 2)

        di = self.basis.interpolate(self.d)
        ui = self.basis.interpolate(self.u)
        gc_q = self.gc_el[:, None] * np.ones(self.basis.X.shape[1])
        return (float(el.assemble(self.basis, d=di, ug=ui.grad[0])),
                float(surf.assemble(self.basis, d=di, dg=di.grad[0], gc=gc_q)))

    def crack_profile(self) -> tuple[np.ndarray, float]:
        """The optimal damage profile of a crack at the middle node: the surface energy
        minimised with ``d = 1`` there and no load.  Returns ``(d, surface energy)``; the energy
        tends to ``Gc`` (AT1 exactly once ``L/2 > 2ℓ``; AT2 ``Gc tanh(L/(2ℓ))`` with the free
        ends) as ``h/ℓ → 0``."""
        lower = np.zeros(self.basis.N)
        mid = int(np.argmin(np.abs(self.x - self.L / 2)))
        lower[mid] = 1.0
        self.u = np.zeros(self.basis.N)
        self.d = self._d_step(lower)
        return self.d.copy(), self.energies()[1]

    def load(self, displacements, *, irreversible: bool = True) -> BarResult:
        """Alternate minimisation at each prescribed end displacement (in order)."""
        res = BarResult(x=self.x)
        prev_delta = self._delta
        for delta in displacements:
            delta = float(delta)
            if not irreversible and delta < prev_delta and np.any(self.d > 0):
                raise InputError("irreversible", False, "True when unloading a damaged bar "
                                 "(without irreversibility the damage would heal)")
            lower = self.d.copy() if irreversible else np.zeros_like(self.d)
            it = alternate_minimisation(self, delta, lower)
            K = self._u_step(delta)
            force = float((K @ self.u)[-1])
            el, su = self.energies()
            res.displacement.append(delta)
            res.force.append(force)
            res.elastic_energy.append(el)
            res.surface_energy.append(su)
            res.iterations.append(it)
            res.history.append(self.d.copy())
            prev_delta = self._delta = delta
        res.d = self.d.copy()
        return res


# --------------------------------------------------------------------------------------------
# the local model
# --------------------------------------------------------------------------------------------
@dataclass
class LocalDamageResult:
    """One run of :func:`local_damage_bar` to full separation.

    Attributes
    ----------
    h : float
        Element size.
    band_width : float
        Length of the elements that damaged (D > 0) at the end.
    dissipated : float
        External work per unit section over the whole path (∮ F du at the end), = the energy
        dissipated once the bar is separated (no elastic energy is left).
    elongation, force : list of float
        The equilibrium path (force per unit section = stress); it snaps back for small h.
    snapback : bool
    ellipticity_lost : list of int
        Per step, the elements whose tangent modulus (the 1D acoustic tensor) is <= 0.
    newton : list of int
    """

    h: float
    band_width: float
    dissipated: float
    elongation: list
    force: list
    snapback: bool
    ellipticity_lost: list
    newton: list


def _softening(kappa, eps0, eps_f):
    """Linear softening: D(κ) and dD/dκ (stress falls linearly from f_t at ε₀ to 0 at ε_f)."""
    k = np.maximum(kappa, eps0)
    D = np.where(kappa <= eps0, 0.0,
                 np.minimum(1.0, (eps_f / k) * (k - eps0) / (eps_f - eps0)))
    dD = np.where((kappa > eps0) & (kappa < eps_f), eps_f * eps0 / (k ** 2 * (eps_f - eps0)), 0.0)
    return D, dD


def local_damage_bar(n: int, *, E: float = 30e3, ft: float = 3.0, eps_f: float = 2e-3,
                     length: float = 100.0, weak: float = 0.01, steps: int = 80,
                     tol: float = 1e-10) -> LocalDamageResult:
    """A bar of ``n`` P1 elements (scikit-fem mesh), clamped at x = 0, an end force at x = L,
    with *local* linear-softening damage ``σ = (1 − D(κ)) E ε`` (κ the largest strain so far),
    loaded to full separation (units e.g. MPa and mm: a concrete-like E 30 GPa, f_t 3 MPa,
    ε_f 2e-3).  The middle element is ``weak`` weaker.

    Path following: indirect displacement control (de Borst 1987) — the middle element's strain
    is prescribed and the load factor is an unknown of the Newton iteration, so the path is
    followed through its snap-back.  Returns the measured band width, the dissipated energy
    (external work around the path) and the elements that lost ellipticity at each step.
    """
    from skfem import MeshLine

    n = _v.positive_int("n", n, 3)
    E, ft, eps_f, length = (_v.positive(k, v) for k, v in (("E", E), ("ft", ft),
                                                           ("eps_f", eps_f), ("length", length)))
    eps0 = ft / E
    if eps_f <= eps0:
        raise InputError("eps_f", eps_f, f"a failure strain above ε₀ = f_t/E = {eps0:.3g}")
    mesh = MeshLine(np.linspace(0.0, length, n + 1))
    t = mesh.t                                            # (2, n) element nodes
    h = np.diff(mesh.p[0, t], axis=0)[0]                  # element lengths
    e0 = np.full(n, eps0)
    m = n // 2
    e0[m] *= 1.0 - weak
    nn = mesh.p.shape[1]
    u = np.zeros(nn)
    lam = 0.0
    kappa = np.zeros(n)
    path_u, path_f, lost, newton = [0.0], [0.0], [], []
    free = np.arange(1, nn)                               # u_0 = 0
    # the first point is the peak of the weak element (the rest of the bar below its strength),
    # then its softening branch: every other element unloads
    for target in np.linspace(e0[m], eps_f, steps + 1):
        # predictor: the band at its target strain, every other element unloading along its
        # secant at the band's stress (Newton from a uniform strain would find the trivial
        # branch on which the whole bar softens together)
        Dk, _ = _softening(np.maximum(kappa, np.where(np.arange(n) == m, target, 0.0)), e0, eps_f)
        sig_band = (1 - Dk[m]) * E * target
        eps_pred = np.where(np.arange(n) == m, target, sig_band / ((1 - Dk) * E + 1e-300))
        u[1:] = np.cumsum(eps_pred * h)
        lam = sig_band
        for it in range(60):
            eps = (u[t[1]] - u[t[0]]) / h
            kap = np.maximum(kappa, eps)
            D, dD = _softening(kap, e0, eps_f)
            sig = (1 - D) * E * eps
            loading = eps >= kappa
            Et = (1 - D) * E - np.where(loading, dD * E * eps, 0.0)
            fint = np.zeros(nn)
            np.add.at(fint, t[0], -sig)
            np.add.at(fint, t[1], sig)
            fext = np.zeros(nn)
            fext[-1] = 1.0
            r = fint - lam * fext
            g = eps[m] - target
            if np.abs(r[free]).max() <= tol * ft and abs(g) <= tol * eps_f:
                break
            K = np.zeros((nn, nn))
            for a in range(2):
                for b in range(2):
                    np.add.at(K, (t[a], t[b]), (1 if a == b else -1) * Et / h)
            # bordered system: [K  -fext; c^T 0] [du; dlam] = [-r; -g]
            A = np.zeros((free.size + 1, free.size + 1))
            A[:-1, :-1] = K[np.ix_(free, free)]
            A[:-1, -1] = -fext[free]
            c = np.zeros(nn)
            c[t[1, m]], c[t[0, m]] = 1.0 / h[m], -1.0 / h[m]
            A[-1, :-1] = c[free]
            sol = np.linalg.solve(A, -np.concatenate([r[free], [g]]))
            u[free] += sol[:-1]
            lam += sol[-1]
        else:
            raise ConvergenceError(f"local damage bar: Newton did not converge at band strain "
                                   f"{target:.4g}", suggestion="more steps")
        kappa = np.maximum(kappa, (u[t[1]] - u[t[0]]) / h)
        newton.append(it)
        path_u.append(float(u[-1]))
        path_f.append(float(lam))
        lost.append([int(k) for k in np.flatnonzero(Et <= 0)])
    pu, pf = np.array(path_u), np.array(path_f)
    work = float(np.sum(0.5 * (pf[1:] + pf[:-1]) * np.diff(pu)))
    D_end, _ = _softening(kappa, e0, eps_f)
    return LocalDamageResult(h=float(h[m]), band_width=float(h[D_end > 0].sum()),
                             dissipated=work, elongation=path_u, force=path_f,
                             snapback=bool(np.any(np.diff(pu) < 0)), ellipticity_lost=lost,
                             newton=newton)


# --------------------------------------------------------------------------------------------
# implicit gradient-enhanced damage (Peerlings et al. 1996)
# --------------------------------------------------------------------------------------------
@dataclass
class GradientDamageResult:
    """One run of :func:`gradient_damage_bar`.

    Attributes
    ----------
    h : float
    band_width : float
        Length over which the damage exceeds ``band_threshold`` at the end.
    dissipated : float
        External work around the path up to the end (the residual stress ``stop_stress`` x
        ``f_t`` is not zero, so a little elastic energy is left: it is subtracted).
    elongation, force : list of float
    damage : numpy.ndarray
        Damage at the quadrature points at the end; ``xq`` their positions.
    newton : list of int
    """

    h: float
    band_width: float
    dissipated: float
    elongation: list
    force: list
    damage: np.ndarray
    xq: np.ndarray
    newton: list


def _exp_softening(kappa, k0, alpha, beta):
    """Exponential softening (Peerlings et al. 1998): D = 1 − (κ₀/κ)(1 − α + α e^{−β(κ−κ₀)})."""
    k = np.maximum(kappa, k0)
    e = np.exp(-beta * (k - k0))
    D = np.where(kappa <= k0, 0.0, 1.0 - (k0 / k) * (1.0 - alpha + alpha * e))
    dD = np.where(kappa <= k0, 0.0, (k0 / k ** 2) * (1.0 - alpha + alpha * e)
                  + (k0 / k) * alpha * beta * e)
    return D, dD


class _OpeningControl:
    """The path of the regularised damage models under indirect displacement control: openings
    in strides of ``d_open0`` (longer, up to 50x, once the force is past 90 % of its peak), the
    recorded path, and the stop once the force has fallen below ``stop_stress`` of its peak."""

    def __init__(self, d_open0: float, stop_stress: float, max_steps: int):
        self.d_open0 = self.d_open = d_open0
        self.stop_stress = stop_stress
        self.max_steps = max_steps
        self.opening = 0.0
        self.peak = 0.0
        self.path_u, self.path_f, self.newton = [0.0], [0.0], []

    def __iter__(self):
        for _ in range(self.max_steps):
            self.opening += self.d_open
            yield self.opening

    def record(self, elongation: float, force: float, newton: int) -> bool:
        """Add a converged point; True when the run is done."""
        if self.peak > 0 and force < 0.9 * self.peak:
            self.d_open = min(self.d_open * 1.05, 50 * self.d_open0)
        self.newton.append(newton)
        self.path_u.append(float(elongation))
        self.path_f.append(float(force))
        self.peak = max(self.peak, force)
        return bool(self.peak > 0 and force < self.stop_stress * self.peak
                    and force < self.path_f[-2])

    def not_reached(self, what: str) -> ConvergenceError:
        return ConvergenceError(f"{what}: the force did not fall below {self.stop_stress:g} of "
                                f"its peak", suggestion="more steps or a larger stop_stress")


def _regularised_bar(n, ell, E, ft, length, weak):
    """Validated settings and the P1 mesh of the regularised bars; the middle 10 % is ``weak``
    weaker (its κ₀), to place the band."""
    from skfem import MeshLine

    n = _v.positive_int("n", n, 8)
    ell = _v.finite("ell", ell)
    if ell <= 0:
        raise InputError("ell", ell, "a positive internal length")
    E, ft, length = (_v.positive(k, v) for k, v in (("E", E), ("ft", ft), ("length", length)))
    h = length / n
    if ell < 2 * h:
        raise InputError("ell", ell, f"an internal length of at least two elements (h = {h:.4g})")
    mesh = MeshLine(np.linspace(0.0, length, n + 1))
    t = mesh.t
    x = mesh.p[0]
    xq = 0.5 * (x[t[0]] + x[t[1]])                         # one point per element (midpoint)
    k0 = np.full(n, ft / E)
    k0[np.abs(xq - length / 2) < 0.05 * length] *= 1.0 - weak
    return n, ell, E, ft, length, h, t, x, xq, k0


def _bar_result(kappa, k0, alpha, beta, u, t, h, E, path_u, path_f, band_threshold, xq, newton):
    """Band width, and the dissipated energy = external work around the path minus the elastic
    energy still stored at the end."""
    D_end, _ = _exp_softening(kappa, k0, alpha, beta)
    pu, pf = np.array(path_u), np.array(path_f)
    work = float(np.sum(0.5 * (pf[1:] + pf[:-1]) * np.diff(pu)))
    eps = (u[t[1]] - u[t[0]]) / h
    elastic_left = float(np.sum(0.5 * (1 - D_end) * E * eps ** 2 * h))
    return GradientDamageResult(h=h, band_width=float(h * np.count_nonzero(D_end > band_threshold)),
                                dissipated=work - elastic_left, elongation=path_u, force=path_f,
                                damage=D_end, xq=xq, newton=newton)


def gradient_damage_bar(n: int, *, ell: float = 2.0, E: float = 30e3, ft: float = 3.0,
                        alpha: float = 0.99, beta: float = 300.0, length: float = 100.0,
                        weak: float = 0.1, control_half: float | None = None,
                        steps: int = 120, stop_stress: float = 0.05, band_threshold: float = 0.05,
                        tol: float = 1e-9, max_newton: int = 40) -> GradientDamageResult:
    """Implicit gradient-enhanced damage on a bar of ``n`` P1 elements (scikit-fem mesh): the
    damage is driven by a nonlocal equivalent strain ``ē − ℓ² ē'' = ε`` (natural boundary
    conditions), with exponential softening.  The internal length ℓ spreads the band over
    several elements, so band width and dissipated energy converge as h → 0 (asserted on
    three meshes) instead of vanishing as in :func:`local_damage_bar`.

    A weak zone (``weak`` lower κ₀ over the middle 10 % of the bar) places the band; the path is
    followed by indirect displacement control on the opening ``u(x_c + a) − u(x_c − a)`` over
    ``a = control_half`` (default ``3 ℓ``), which grows monotonically through the snap-back.
    The run stops when the stress falls below ``stop_stress`` of the peak.
    """
    n, ell, E, ft, length, h, t, x, xq, k0 = _regularised_bar(n, ell, E, ft, length, weak)
    c = ell * ell
    nn = x.size
    # unknowns: u (nn) then ē (nn); u_0 = 0; load factor λ (end force) extra
    u = np.zeros(nn)
    eb = np.zeros(nn)
    lam = 0.0
    kappa = np.zeros(n)
    a = 3 * ell if control_half is None else _v.positive("control_half", control_half)
    iL = int(np.argmin(np.abs(x - (length / 2 - a))))
    iR = int(np.argmin(np.abs(x - (length / 2 + a))))
    free_u = np.arange(1, nn)
    # element matrices (P1, length h): stiffness-like (1/h)[[1,-1],[-1,1]], mass (h/6)[[2,1],[1,2]]
    Ks = np.array([[1.0, -1.0], [-1.0, 1.0]]) / h
    Ms = np.array([[2.0, 1.0], [1.0, 2.0]]) * h / 6.0
    Bv = np.array([-1.0, 1.0]) / h
    # the ē equation does not depend on damage: assemble once
    Aee = np.zeros((nn, nn))
    for i in range(2):
        for j in range(2):
            np.add.at(Aee, (t[i], t[j]), Ms[i, j] + c * Ks[i, j])
    ctl = _OpeningControl(2 * a * ft / E / 10.0, stop_stress, steps * 20)  # peak opening / 10
    for opening in ctl:
        for it in range(max_newton + 1):
            eps = (u[t[1]] - u[t[0]]) / h
            ebq = 0.5 * (eb[t[0]] + eb[t[1]])
            kap = np.maximum(kappa, ebq)
            D, dD = _exp_softening(kap, k0, alpha, beta)
            loading = ebq >= kappa
            sig = (1 - D) * E * eps
            fu = np.zeros(nn)
            np.add.at(fu, t[0], -sig)
            np.add.at(fu, t[1], sig)
            fu[-1] -= lam
            fe = Aee @ eb
            np.add.at(fe, t[0], -eps * h / 2)
            np.add.at(fe, t[1], -eps * h / 2)
            g = (u[iR] - u[iL]) - opening
            scale_u = max(abs(lam), 1e-3 * ft)
            if (np.abs(fu[free_u]).max() <= tol * scale_u and np.abs(fe).max() <= tol * ft / E * h
                    and abs(g) <= tol * max(opening, 1e-12)):
                break
            if it == max_newton:
                raise ConvergenceError(f"gradient damage bar: Newton did not converge at opening "
                                       f"{opening:.4g}", suggestion="smaller increments")
            # Jacobian of [fu; fe; g] w.r.t. [u (free), ē, λ]
            J = np.zeros((2 * nn + 1, 2 * nn + 1))
            for e_ in range(n):
                iu = t[:, e_]
                ie = nn + t[:, e_]
                J[np.ix_(iu, iu)] += (1 - D[e_]) * E * Ks
                if loading[e_] and dD[e_] > 0:
                    # σ depends on ē through D(κ = ē_q), ē_q = (ē_i + ē_j)/2
                    J[np.ix_(iu, ie)] += np.outer(Bv * h, -dD[e_] * E * eps[e_] * 0.5 * np.ones(2))
                J[np.ix_(ie, ie)] += Ms + c * Ks
                J[np.ix_(ie, iu)] += np.outer(-0.5 * h * np.ones(2), Bv)
            J[nn - 1, -1] = -1.0                               # fu[-1] -= λ
            J[-1, iR] += 1.0
            J[-1, iL] -= 1.0
            keep = np.concatenate([free_u, nn + np.arange(nn), [2 * nn]])
            rhs = -np.concatenate([fu, fe, [g]])
            sol = np.linalg.solve(J[np.ix_(keep, keep)], rhs[keep])
            u[free_u] += sol[:free_u.size]
            eb += sol[free_u.size:free_u.size + nn]
            lam += sol[-1]
        kappa = np.maximum(kappa, 0.5 * (eb[t[0]] + eb[t[1]]))
        if ctl.record(u[-1], lam, it):
            break
    else:
        raise ctl.not_reached("gradient damage bar")
    return _bar_result(kappa, k0, alpha, beta, u, t, h, E, ctl.path_u, ctl.path_f,
                       band_threshold, xq, ctl.newton)


def nonlocal_damage_bar(n: int, *, ell: float = 4.0, E: float = 30e3, ft: float = 3.0,
                        alpha: float = 0.99, beta: float = 300.0, length: float = 100.0,
                        weak: float = 0.1, control_half: float | None = None,
                        steps: int = 120, stop_stress: float = 0.05, band_threshold: float = 0.05,
                        tol: float = 1e-9, max_newton: int = 40) -> GradientDamageResult:
    """Integral nonlocal damage (Pijaudier-Cabot & Bažant 1987): the damage of each element is
    driven by the Gaussian-weighted average ``ē(x) = ∫ α(x, s) ε(s) ds / ∫ α(x, s) ds``,
    ``α = exp(−(x − s)²/(2ℓ²))``, renormalised near the bar's ends; otherwise as
    :func:`gradient_damage_bar` (exponential softening, indirect displacement control).  The
    averaging matrix is dense: a 1D tool for comparing the cures, not for large meshes."""
    n, ell, E, ft, length, h, t, x, xq, k0 = _regularised_bar(n, ell, E, ft, length, weak)
    W = np.exp(-((xq[:, None] - xq[None, :]) ** 2) / (2 * ell * ell))
    W /= W.sum(axis=1, keepdims=True)                      # ē = W ε (element midpoints)
    nn = x.size
    u = np.zeros(nn)
    lam = 0.0
    kappa = np.zeros(n)
    a = 3 * ell if control_half is None else _v.positive("control_half", control_half)
    iL = int(np.argmin(np.abs(x - (length / 2 - a))))
    iR = int(np.argmin(np.abs(x - (length / 2 + a))))
    free = np.arange(1, nn)
    B = np.zeros((n, nn))                                  # ε = B u
    B[np.arange(n), t[0]] = -1.0 / h
    B[np.arange(n), t[1]] = 1.0 / h
    ctl = _OpeningControl(2 * a * ft / E / 10.0, stop_stress, steps * 20)
    for opening in ctl:
        for it in range(max_newton + 1):
            eps = B @ u
            eb = W @ eps
            kap = np.maximum(kappa, eb)
            D, dD = _exp_softening(kap, k0, alpha, beta)
            loading = eb >= kappa
            sig = (1 - D) * E * eps
            fu = h * (B.T @ sig)
            fu[-1] -= lam
            g = (u[iR] - u[iL]) - opening
            if (np.abs(fu[free]).max() <= tol * max(abs(lam), 1e-3 * ft)
                    and abs(g) <= tol * max(opening, 1e-12)):
                break
            if it == max_newton:
                raise ConvergenceError(f"nonlocal damage bar: Newton did not converge at opening "
                                       f"{opening:.4g}", suggestion="smaller increments")
            # dσ/du = (1 − D) E B − E ε dD W B (loading elements)
            dsig = ((1 - D) * E)[:, None] * B - (np.where(loading, dD, 0.0) * E * eps)[:, None] \
                * (W @ B)
            K = h * (B.T @ dsig)
            m = free.size
            J = np.zeros((m + 1, m + 1))
            J[:m, :m] = K[np.ix_(free, free)]
            J[m - 1, m] = -1.0                                 # the last free dof is the end
            J[m, iR - 1] += 1.0
            J[m, iL - 1] -= 1.0
            sol = np.linalg.solve(J, -np.concatenate([fu[free], [g]]))
            u[free] += sol[:m]
            lam += sol[m]
        kappa = np.maximum(kappa, W @ (B @ u))
        if ctl.record(u[-1], lam, it):
            break
    else:
        raise ctl.not_reached("nonlocal damage bar")
    return _bar_result(kappa, k0, alpha, beta, u, t, h, E, ctl.path_u, ctl.path_f,
                       band_threshold, xq, ctl.newton)


# --------------------------------------------------------------------------------------------
# the local model in two dimensions, with the acoustic-tensor check
# --------------------------------------------------------------------------------------------
@dataclass
class LocalDamage2DResult:
    """One run of :func:`local_damage_strip` to full separation.

    Attributes
    ----------
    h : float
        Element size (the squares' edge; each square is two P1 triangles).
    band_width : float
        Extent along the strip of the elements that damaged (D > 0) at the end.
    dissipated : float
        External work per unit thickness around the whole path (J/m if SI).
    elongation, force : list of float
        The equilibrium path (end displacement, end force per unit thickness).
    snapback : bool
    ellipticity : dict
        ``first_step`` (index into the path, 1-based like it), ``elements`` (indices where
        ``min_n det Q(n) ≤ 0`` first), ``angle_deg`` (the critical band normal's angle from x),
        ``peak_step`` (where the force peaked), ``min_det`` (per step, min over elements and
        directions of ``det Q(n)`` normalised by ``det Q`` of the undamaged solid).
    """

    h: float
    band_width: float
    dissipated: float
    elongation: list
    force: list
    snapback: bool
    ellipticity: dict
    newton: list


def acoustic_determinant(D, n_angles: int = 180):
    """``min_n det Q(n)`` and its angle for stacks of 2D tangents ``D`` (..., 3, 3) in Voigt
    ``[xx, yy, xy]`` with engineering shear: ``Q_jk(n) = n_i D_ijkl n_l``, i.e. ``Nᵀ D N`` with
    ``N = [[n_x, 0], [0, n_y], [n_y, n_x]]`` (the strain of the jump ``sym(n ⊗ m)``).  Loss of
    strong ellipticity (a band with normal ``n`` can form) where it is ≤ 0 (Rice 1976)."""
    th = np.linspace(0.0, np.pi, n_angles, endpoint=False)
    c, s = np.cos(th), np.sin(th)
    N = np.zeros((n_angles, 3, 2))
    N[:, 0, 0], N[:, 1, 1], N[:, 2, 0], N[:, 2, 1] = c, s, s, c
    Q = np.einsum("aik,...ij,ajl->...akl", N, np.asarray(D), N)
    det = Q[..., 0, 0] * Q[..., 1, 1] - Q[..., 0, 1] * Q[..., 1, 0]
    k = np.argmin(det, axis=-1)
    return np.take_along_axis(det, k[..., None], -1)[..., 0], np.degrees(th[k])


def local_damage_strip(nx: int, *, E: float = 30e3, nu: float = 0.2, ft: float = 3.0,
                       eps_f: float = 2e-3, length: float = 100.0, width_ratio: float = 0.25,
                       weak: float = 0.01, steps: int = 60, tol: float = 1e-9) -> LocalDamage2DResult:
    """A plane-stress strip ``[0, L] × [0, L·width_ratio]`` of ``nx`` × ``nx·width_ratio`` squares
    (two P1 triangles each, scikit-fem), pulled along x, with *local* isotropic damage
    ``σ = (1 − D(κ)) C ε``: κ the largest equivalent strain so far, ``ε_eq = √(ε·C·ε / E)``
    (equal to the axial strain in uniaxial stress), linear softening from ``f_t`` to zero stress at
    ``ε_f`` (units e.g. MPa and mm).  The middle column of squares is ``weak`` weaker.

    Path following by indirect displacement control (the weak column's mean axial strain is
    prescribed, the end displacement is an unknown: the path is followed through its snap-back).
    At every converged step the acoustic tensor of every element's tangent
    ``D_t = (1 − D) C − D'(κ) (Cε)⊗(Cε)/(E ε_eq)`` is scanned over band normals
    (:func:`acoustic_determinant`): the first step and place where ``det Q(n) ≤ 0`` is recorded.
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve
    from skfem import Basis, ElementTriP1, ElementVector, MeshTri

    nx = _v.positive_int("nx", nx, 4)
    E, ft, eps_f, length = (_v.positive(k, v) for k, v in (("E", E), ("ft", ft),
                                                           ("eps_f", eps_f), ("length", length)))
    nu = _v.in_range("nu", nu, -0.99, 0.49)
    wr = _v.in_range("width_ratio", width_ratio, 0.05, 1.0)
    eps0 = ft / E
    if eps_f <= eps0:
        raise InputError("eps_f", eps_f, f"a failure strain above ε₀ = f_t/E = {eps0:.3g}")
    ny = max(1, int(round(nx * wr)))
    h = length / nx
    mesh = MeshTri.init_tensor(np.linspace(0, length, nx + 1), np.linspace(0, ny * h, ny + 1))
    ub = Basis(mesh, ElementVector(ElementTriP1()), intorder=1)
    nel = mesh.t.shape[1]
    C = E / (1 - nu ** 2) * np.array([[1, nu, 0], [nu, 1, 0], [0, 0, (1 - nu) / 2]])
    B, area = strain_operator(ub)
    dofs = ub.element_dofs
    rows, cols = block_pattern(dofs, dofs)
    xc = mesh.p[0, mesh.t].mean(axis=0)
    col = np.floor(xc / h).astype(int)
    band = col == nx // 2
    e0 = np.full(nel, eps0)
    e0[band] *= 1.0 - weak
    x, y = mesh.p
    D_fix, D_load, free = _strip_supports(ub, x, y, length)
    # the constraint: mean ε_xx over the weak column (area weighted) = target
    cvec = np.zeros(ub.N)
    np.add.at(cvec, dofs[:, band].ravel(), (B[0][:, band] * (area[band] / area[band].sum())).ravel())
    det0, _ = acoustic_determinant(C)
    u = np.zeros(ub.N)
    lam = 0.0
    kappa = np.zeros(nel)
    path_u, path_f, newton, min_det = [0.0], [0.0], [], []
    first = None
    def bordered(Dmat):
        ke = np.einsum("aie,eab,bje,e->ije", B, Dmat, B, area)
        K = sp.coo_matrix((ke.ravel(), (rows, cols)), shape=(ub.N, ub.N)).tocsr()
        kfl = np.asarray(K[free][:, D_load].sum(axis=1)).ravel()       # d R_f / d λ
        return sp.bmat([[K[free][:, free], sp.csr_matrix(kfl[:, None])],
                        [sp.csr_matrix(cvec[free][None, :]),
                         sp.csr_matrix([[cvec[D_load].sum()]])]]).tocsc()

    for target in np.linspace(float(e0[band][0]), eps_f, steps + 1):
        # predictor: the weak column at its target (secant damage there), everything else
        # unloading along its secant — one linear solve; Newton from the previous state would
        # head for the branch on which the whole strip softens together
        Dsec, _ = _softening(np.maximum(kappa, np.where(band, target, 0.0)), e0, eps_f)
        sol = spsolve(bordered((1 - Dsec)[:, None, None] * C),
                      np.concatenate([np.zeros(free.size), [target]]))
        u[free], lam = sol[:-1], sol[-1]
        for it in range(60):
            u[D_load] = lam
            eps = np.einsum("aie,ie->ea", B, u[dofs])
            Ce = eps @ C
            eeq = np.sqrt(np.maximum(np.einsum("ea,ea->e", eps, Ce), 0.0) / E)
            kap = np.maximum(kappa, eeq)
            Dm, dD = _softening(kap, e0, eps_f)
            sig = (1 - Dm)[:, None] * Ce
            loading = (eeq >= kappa) & (eeq > 0)
            coef = np.where(loading, dD / (E * np.maximum(eeq, 1e-300)), 0.0)
            Dt = (1 - Dm)[:, None, None] * C - coef[:, None, None] * Ce[:, :, None] * Ce[:, None, :]
            fe = np.einsum("aie,ea,e->ie", B, sig, area)
            R = np.bincount(dofs.ravel(), fe.ravel(), minlength=ub.N)
            g = float(cvec @ u) - target
            if it > 0 and np.abs(R[free]).max() <= tol * ft * h and abs(g) <= tol * eps_f:
                break
            sol = spsolve(bordered(Dt), -np.concatenate([R[free], [g]]))
            u[free] += sol[:-1]
            lam += sol[-1]
        else:
            raise ConvergenceError(f"local damage strip: Newton did not converge at band strain "
                                   f"{target:.4g}", suggestion="more steps")
        kappa = kap.copy()
        newton.append(it)
        path_u.append(float(lam))
        path_f.append(float(R[D_load].sum()))
        det, ang = acoustic_determinant(Dt)
        min_det.append(float(det.min() / det0))
        if first is None and np.any(det <= 0):
            bad = np.flatnonzero(det <= 0)
            first = {"first_step": len(path_u) - 1, "elements": [int(b) for b in bad],
                     "angle_deg": float(ang[bad[0]]), "in_weak_column": bool(np.all(band[bad]))}
    pu, pf = np.array(path_u), np.array(path_f)
    work = float(np.sum(0.5 * (pf[1:] + pf[:-1]) * np.diff(pu)))
    D_end, _ = _softening(kappa, e0, eps_f)
    cols_damaged = np.unique(col[D_end > 0])
    ell = dict(first or {"first_step": None, "elements": [], "angle_deg": None,
                         "in_weak_column": False})
    ell["peak_step"] = int(np.argmax(pf))
    ell["min_det"] = min_det
    return LocalDamage2DResult(h=h, band_width=float(cols_damaged.size * h), dissipated=work,
                               elongation=path_u, force=path_f,
                               snapback=bool(np.any(np.diff(pu) < 0)), ellipticity=ell,
                               newton=newton)


def gradient_damage_strip(nx: int, *, ell: float = 4.0, E: float = 30e3, nu: float = 0.2,
                          ft: float = 3.0, alpha: float = 0.99, beta: float = 300.0,
                          length: float = 200.0, width: float = 10.0, weak: float = 0.1,
                          control_half: float | None = None, stop_stress: float = 0.05,
                          band_threshold: float = 0.05, tol: float = 1e-9,
                          max_newton: int = 40) -> GradientDamageResult:
    """Implicit gradient-enhanced damage (Peerlings et al. 1996) on a plane-stress strip
    ``[0, L] × [0, width]`` of ``nx`` squares along it (two P1 triangles each, scikit-fem): the
    damage is driven by a nonlocal equivalent strain ``ē − ℓ²∇²ē = ε_eq`` (natural boundary
    conditions), ``ε_eq = √(ε·C·ε/E)``, with the exponential softening of the 1D bar.  u and ē
    are P1, Newton on the coupled system with its full Jacobian, indirect displacement control
    on the mean opening ``u_x(x_c + a) − u_x(x_c − a)`` (``a = control_half``, default 3ℓ); the
    middle 10 % of the strip is ``weak`` weaker.  Returns the band width (extent along x of the
    elements with D above ``band_threshold``) and the dissipated energy (external work minus the
    elastic energy left), per unit thickness."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve
    from skfem import Basis, BilinearForm, ElementTriP1, ElementVector, MeshTri
    from skfem.helpers import dot, grad

    nx = _v.positive_int("nx", nx, 8)
    ell = _v.finite("ell", ell)
    if ell <= 0:
        raise InputError("ell", ell, "a positive internal length")
    E, ft, length, width = (_v.positive(k, v) for k, v in (("E", E), ("ft", ft),
                                                           ("length", length), ("width", width)))
    nu = _v.in_range("nu", nu, -0.99, 0.49)
    h = length / nx
    if ell < 2 * h:
        raise InputError("ell", ell, f"an internal length of at least two elements (h = {h:.4g})")
    ny = max(1, int(round(width / h)))
    mesh = MeshTri.init_tensor(np.linspace(0, length, nx + 1), np.linspace(0, ny * h, ny + 1))
    ub = Basis(mesh, ElementVector(ElementTriP1()), intorder=1)
    sb = Basis(mesh, ElementTriP1(), intorder=2)
    nel = mesh.t.shape[1]
    Nn = sb.N
    C = E / (1 - nu ** 2) * np.array([[1, nu, 0], [nu, 1, 0], [0, 0, (1 - nu) / 2]])
    B, area = strain_operator(ub)
    udofs, sdofs = ub.element_dofs, sb.element_dofs

    @BilinearForm
    def helm(e, v, w):
        return e * v + ell ** 2 * dot(grad(e), grad(v))

    Aee = helm.assemble(sb).tocsr()
    x, y = mesh.p
    xc_el = x[mesh.t].mean(axis=0)
    k0 = np.full(nel, ft / E)
    k0[np.abs(xc_el - length / 2) < 0.05 * length] *= 1.0 - weak
    D_fix, D_load, free = _strip_supports(ub, x, y, length)
    a = 3 * ell if control_half is None else _v.positive("control_half", control_half)
    xs = np.unique(x)
    xl = xs[np.argmin(np.abs(xs - (length / 2 - a)))]
    xr = xs[np.argmin(np.abs(xs - (length / 2 + a)))]
    cvec = np.zeros(ub.N)
    on_l, on_r = np.flatnonzero(np.abs(x - xl) < 1e-9 * length), np.flatnonzero(np.abs(x - xr) < 1e-9 * length)
    cvec[ub.nodal_dofs[0, on_r]] += 1.0 / on_r.size
    cvec[ub.nodal_dofs[0, on_l]] -= 1.0 / on_l.size
    # sparsity patterns of the element blocks
    uu_r, uu_c = block_pattern(udofs, udofs)
    ue_r, ue_c = block_pattern(udofs, sdofs)
    eu_r, eu_c = block_pattern(sdofs, udofs)
    u = np.zeros(ub.N)
    eb = np.zeros(Nn)
    lam = 0.0
    kappa = np.zeros(nel)
    ctl = _OpeningControl(2 * a * ft / E / 10.0, stop_stress, 4000)
    for opening in ctl:
        for it in range(max_newton + 1):
            u[D_load] = lam
            eps = np.einsum("aie,ie->ea", B, u[udofs])
            Ce = eps @ C
            eeq = np.sqrt(np.maximum(np.einsum("ea,ea->e", eps, Ce), 0.0) / E)
            ebq = eb[sdofs].mean(axis=0)
            kap = np.maximum(kappa, ebq)
            Dm, dD = _exp_softening(kap, k0, alpha, beta)
            loading = (ebq >= kappa) & (dD > 0)
            sig = (1 - Dm)[:, None] * Ce
            Ru = np.bincount(udofs.ravel(), np.einsum("aie,ea,e->ie", B, sig, area).ravel(),
                             minlength=ub.N)
            Re = Aee @ eb - np.bincount(sdofs.ravel(), np.tile(eeq * area / 3.0, 3), minlength=Nn)
            g = float(cvec @ u) - opening
            scale = max(abs(float(Ru[D_load].sum())), 1e-3 * ft * width)
            if (it > 0 and np.abs(Ru[free]).max() <= tol * scale
                    and np.abs(Re).max() <= tol * ft / E * h * h and abs(g) <= tol * opening):
                break
            if it == max_newton:
                raise ConvergenceError(f"gradient damage strip: Newton did not converge at "
                                       f"opening {opening:.4g}", suggestion="smaller increments")
            kuu = np.einsum("aie,eab,bje,e->ije", B, (1 - Dm)[:, None, None] * C, B, area)
            Kuu = sp.coo_matrix((kuu.ravel(), (uu_r, uu_c)), shape=(ub.N, ub.N)).tocsr()
            # σ depends on ē through D(κ = mean of the element's ē)
            kue = np.einsum("aie,ea,e->ie", B, -(dD * loading)[:, None] * Ce, area)[:, None, :] \
                * np.full((1, 3, 1), 1.0 / 3.0)
            Kue = sp.coo_matrix((kue.ravel(), (ue_r, ue_c)), shape=(ub.N, Nn)).tocsr()
            deq = np.where(eeq > 1e-14, 1.0, 0.0)[:, None] * Ce / (E * np.maximum(eeq, 1e-300))[:, None]
            keu = -np.full((3, 1, 1), 1.0 / 3.0) * (np.einsum("ea,aje->je", deq, B) * area)[None, :, :]
            Keu = sp.coo_matrix((keu.ravel(), (eu_r, eu_c)), shape=(Nn, ub.N)).tocsr()
            kul = np.asarray(Kuu[:, D_load].sum(axis=1)).ravel()
            kel = np.asarray(Keu[:, D_load].sum(axis=1)).ravel()
            J = sp.bmat([[Kuu[free][:, free], Kue[free], sp.csr_matrix(kul[free][:, None])],
                         [Keu[:, free], Aee, sp.csr_matrix(kel[:, None])],
                         [sp.csr_matrix(cvec[free][None, :]), None,
                          sp.csr_matrix([[cvec[D_load].sum()]])]]).tocsc()
            sol = spsolve(J, -np.concatenate([Ru[free], Re, [g]]))
            u[free] += sol[:free.size]
            eb += sol[free.size:free.size + Nn]
            lam += sol[-1]
        kappa = np.maximum(kappa, eb[sdofs].mean(axis=0))
        if ctl.record(lam, float(Ru[D_load].sum()), it):
            break
    else:
        raise ctl.not_reached("gradient damage strip")
    D_end, _ = _exp_softening(kappa, k0, alpha, beta)
    pu, pf = np.array(ctl.path_u), np.array(ctl.path_f)
    work = float(np.sum(0.5 * (pf[1:] + pf[:-1]) * np.diff(pu)))
    eps = np.einsum("aie,ie->ea", B, u[udofs])
    elastic_left = float(np.sum(0.5 * (1 - D_end) * np.einsum("ea,ab,eb->e", eps, C, eps) * area))
    dam = D_end > band_threshold
    bw = float(xc_el[dam].max() - xc_el[dam].min() + h) if np.any(dam) else 0.0
    return GradientDamageResult(h=h, band_width=bw, dissipated=work - elastic_left,
                                elongation=ctl.path_u, force=ctl.path_f, damage=D_end,
                                xq=xc_el, newton=ctl.newton)
