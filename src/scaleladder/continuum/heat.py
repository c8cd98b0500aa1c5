"""Heat conduction with a temperature-dependent conductivity (scikit-fem).

Steady: ``-div(k(T) grad T) = q`` in the domain, ``T = T_D`` on Dirichlet facets and
``-k dT/dn = g`` (an outward heat flux, W/m², positive leaving) on flux facets; transient:
``rho c dT/dt - div(k(T) grad T) = q`` by backward Euler.  The nonlinearity is solved by
Newton's method with the exact Jacobian ``int k(T) grad(dT).grad(v) + k'(T) dT grad(T).grad(v)``
(``k'`` by a central difference of ``k`` when not given), P1 or P2 triangles, SI units
throughout (m, K, W/(m K), W/m³).

``conductivity_of(handoff)`` turns a :class:`~scaleladder.handoffs.ThermalConductivity` into
``k(T)`` (the isotropic part, interpolated linearly in 1/T between the tabulated temperatures);
a temperature outside the table is an error naming it, not an extrapolation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from ..core.errors import CalculationError, InputError
from ..core.validate import positive, positive_int

__all__ = ["HeatSolution", "solve_heat", "solve_heat_transient", "conductivity_of"]


@dataclass
class HeatSolution:
    """Temperatures (K) at the basis's DOFs, the basis, Newton's iterations and residual."""

    T: np.ndarray
    basis: Any
    iterations: int
    residual: float

    def max_temperature(self) -> float:
        return float(np.max(self.T))


def conductivity_of(handoff) -> Callable[[np.ndarray], np.ndarray]:
    """``k(T)`` (W/(m K)) from a ThermalConductivity handoff: its isotropic part, linear in 1/T
    between the tabulated temperatures; outside them a CalculationError naming the
    temperature."""
    from ..handoffs import ThermalConductivity

    if not isinstance(handoff, ThermalConductivity):
        raise InputError("conductivity", type(handoff).__name__, "a ThermalConductivity")
    t = np.asarray(handoff.temperatures_K, dtype=float)
    s = np.asarray(handoff.scalar().value, dtype=float)
    if t.size == 1:
        return lambda T: np.full_like(np.asarray(T, dtype=float), s[0])
    inv_t, vals = (1.0 / t)[::-1], s[::-1]

    def k(T):
        T = np.asarray(T, dtype=float)
        lo, hi = float(np.min(T)), float(np.max(T))
        if lo < t[0] * (1 - 1e-9) or hi > t[-1] * (1 + 1e-9):
            raise CalculationError(f"a temperature of {lo if lo < t[0] else hi:.4g} K is outside "
                                   f"the conductivity's table [{t[0]:g}, {t[-1]:g}] K: extend "
                                   f"the thermal-conductivity temperatures")
        return np.interp(1.0 / T, inv_t, vals)
    return k


def _derivative(k, dk):
    if dk is not None:
        return dk

    def num(T):
        h = 1e-4 * np.maximum(np.abs(T), 1.0)
        return (k(T + h) - k(T - h)) / (2 * h)
    return num


def _setup(mesh, element, dirichlet, flux):
    from skfem import Basis, ElementTriP1, ElementTriP2, FacetBasis, MeshTri

    if not isinstance(mesh, MeshTri):
        raise InputError("mesh", type(mesh).__name__, "a skfem.MeshTri (m)")
    el = {"P1": ElementTriP1, "P2": ElementTriP2}.get(element)
    if el is None:
        raise InputError("element", element, "'P1' or 'P2'")
    basis = Basis(mesh, el())
    if not isinstance(dirichlet, Mapping) or not dirichlet:
        raise InputError("dirichlet", dirichlet, "at least one boundary name -> temperature "
                         "(K) (a pure-flux problem has no unique temperature)")
    bnames = set(mesh.boundaries or {})
    for name in list(dirichlet) + list(flux or {}):
        if name not in bnames:
            raise InputError("boundary", name, f"one of the mesh's boundaries: "
                             f"{', '.join(sorted(bnames)) or '(none tagged)'}")
    D_parts, T_D = [], np.zeros(basis.N)
    for name, val in dirichlet.items():
        dofs = basis.get_dofs(name).all()
        xd = basis.doflocs[:, dofs]
        v = np.asarray(val(xd) if callable(val) else np.full(dofs.size, float(val)), float)
        if np.any(~np.isfinite(v)) or np.any(v <= 0):
            raise InputError(f"dirichlet[{name}]", float(np.min(v)), "temperatures > 0 K")
        T_D[dofs] = v
        D_parts.append(dofs)
    D = np.unique(np.concatenate(D_parts))
    fbases = {name: (FacetBasis(mesh, el(), facets=mesh.boundaries[name]), g)
              for name, g in (flux or {}).items()}
    return basis, D, T_D, fbases


def _newton(basis, D, T, k, dk, rhs_extra, mass_over_dt=None, T_old=None, tol=1e-10,
            max_iter=50):
    from skfem import BilinearForm, LinearForm, condense, solve
    from skfem.helpers import dot, grad

    @BilinearForm
    def jac(u, v, w):
        out = w["kT"] * dot(grad(u), grad(v)) + w["dkT"] * u * dot(grad(w["T"]), grad(v))
        if mass_over_dt is not None:
            out = out + w["m"] * u * v
        return out

    @LinearForm
    def res(v, w):
        out = w["kT"] * dot(grad(w["T"]), grad(v))
        if mass_over_dt is not None:
            out = out + w["m"] * (w["T"] - w["Told"]) * v
        return out

    r0 = None
    for it in range(1, max_iter + 1):
        Ti = basis.interpolate(T)
        tq = np.asarray(Ti)
        kT = k(tq)
        # the first iterations are Picard steps (no k' term): robust far from the solution
        fields = {"T": Ti, "kT": kT, "dkT": dk(tq) if it > 2 else 0.0 * tq}
        if mass_over_dt is not None:
            fields["m"] = mass_over_dt
            fields["Told"] = basis.interpolate(T_old)
        R = res.assemble(basis, **fields) - rhs_extra
        J = jac.assemble(basis, **fields)
        free = np.setdiff1d(np.arange(basis.N), D)
        rn = float(np.linalg.norm(R[free]))
        r0 = rn if r0 is None else r0
        dT = solve(*condense(J, -R, D=D, x=np.zeros(basis.N)))
        # damped: halve the step while it leaves k's domain (a table's range, T > 0)
        alpha = 1.0
        for _ in range(30):
            trial = T + alpha * dT
            try:
                k(np.asarray(basis.interpolate(trial)))
                break
            except CalculationError:
                alpha *= 0.5
        dT = alpha * dT
        T = T + dT
        if not np.all(np.isfinite(T)):
            raise CalculationError("Newton's method diverged (non-finite temperature)")
        if np.linalg.norm(dT) <= tol * max(np.linalg.norm(T), 1.0):
            return T, it, rn
    raise CalculationError(f"Newton's method did not converge in {max_iter} iterations "
                           f"(residual {rn:.3g}, first {r0:.3g})")


def _rhs(basis, fbases, source):
    from skfem import LinearForm

    rhs = np.zeros(basis.N)
    if source is not None:
        @LinearForm
        def q(v, w):
            x = w.x
            val = source(x) if callable(source) else float(source) + 0.0 * x[0]
            return val * v
        rhs += q.assemble(basis)
    for name, (fb, g) in fbases.items():
        @LinearForm
        def flux(v, w, g=g):
            val = g(w.x) if callable(g) else float(g) + 0.0 * w.x[0]
            return -val * v                          # outward flux g leaves the body
        rhs += flux.assemble(fb)
    return rhs


def solve_heat(mesh, conductivity, *, dirichlet: Mapping, flux: Mapping | None = None,
               source=None, element: str = "P2", dconductivity=None, T0: float | None = None,
               tol: float = 1e-10, max_iter: int = 50) -> HeatSolution:
    """Steady conduction with ``k(T)`` (a callable of K returning W/(m K), a number, or a
    ThermalConductivity handoff).

    ``dirichlet``: boundary name -> K (number or callable of the points (2, n)); ``flux``:
    boundary name -> outward W/m²; ``source``: W/m³ (number or callable of points); ``T0``:
    the initial guess (default the mean Dirichlet value).
    """
    k = _as_conductivity(conductivity)
    dk = _derivative(k, dconductivity)
    basis, D, T_D, fbases = _setup(mesh, element, dirichlet, flux)
    rhs = _rhs(basis, fbases, source)
    T = np.full(basis.N, float(np.mean(T_D[D])) if T0 is None else positive("T0", T0))
    T[D] = T_D[D]
    T, it, r = _newton(basis, D, T, k, dk, rhs, tol=tol, max_iter=positive_int("max_iter",
                                                                               max_iter))
    return HeatSolution(T=T, basis=basis, iterations=it, residual=r)


def solve_heat_transient(mesh, conductivity, *, density_heat_capacity: float, T_initial,
                         dt: float, steps: int, dirichlet: Mapping,
                         flux: Mapping | None = None, source=None, element: str = "P2",
                         dconductivity=None, tol: float = 1e-10, max_iter: int = 50,
                         every: int = 1) -> list[HeatSolution]:
    """Backward-Euler transient conduction: ``rho c`` (J/(m³ K)), ``T_initial`` (K: number or
    callable of points), ``dt`` (s), ``steps``; returns the solutions every ``every`` steps
    (and the last)."""
    k = _as_conductivity(conductivity)
    dk = _derivative(k, dconductivity)
    rc = positive("density_heat_capacity", density_heat_capacity)
    dt = positive("dt", dt)
    steps = positive_int("steps", steps)
    basis, D, T_D, fbases = _setup(mesh, element, dirichlet, flux)
    rhs = _rhs(basis, fbases, source)
    x = basis.doflocs
    T = np.asarray(T_initial(x) if callable(T_initial) else np.full(basis.N, float(T_initial)),
                   dtype=float)
    out = []
    for n in range(1, steps + 1):
        T_old = T.copy()
        T[D] = T_D[D]
        T, it, r = _newton(basis, D, T, k, dk, rhs, mass_over_dt=rc / dt, T_old=T_old, tol=tol,
                           max_iter=max_iter)
        if n % every == 0 or n == steps:
            out.append(HeatSolution(T=T.copy(), basis=basis, iterations=it, residual=r))
    return out


def _as_conductivity(c) -> Callable:
    from ..handoffs import ThermalConductivity

    if isinstance(c, ThermalConductivity):
        return conductivity_of(c)
    if callable(c):
        return c
    try:
        v = positive("conductivity", c)
    except InputError:
        raise InputError("conductivity", c, "W/(m K): a number > 0, a callable k(T) or a "
                         "ThermalConductivity") from None
    return lambda T: np.full_like(np.asarray(T, dtype=float), v)
