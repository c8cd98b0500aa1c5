"""Stress-driven diffusion of an interstitial solute (hydrogen) in a stressed solid (scikit-fem).

The lattice concentration ``c`` (any unit: the solver is linear in it) follows

    dc/dt = div( D grad c - D c V_H / (k_B T) grad sigma_h )

(Sofronis and McMeeking, J. Mech. Phys. Solids 37, 317 (1989)): diffusion plus a drift up the
gradient of the hydrostatic stress ``sigma_h = tr(sigma)/3`` (Pa, tensile positive), ``V_H`` the
partial molar volume per solute atom (m³).  In equilibrium the flux vanishes and

    c = c_0 exp( sigma_h V_H / (k_B T) ),

so hydrogen gathers in the dilated region ahead of a crack tip.

Discretisation: the Slotboom variable ``u = c exp(-phi)``, ``phi = sigma_h V_H / k_B T``, turns the
flux into ``J = -D exp(phi) grad u``; the weak form ``int exp(phi) du/dt v + int D exp(phi)
grad u . grad v = 0`` is symmetric positive definite, the equilibrium ``u = const`` lies in the
finite-element space (the equilibrium concentration is reproduced at the nodes exactly, whatever
the mesh: a Galerkin discretisation of the drift form would instead need a fine mesh where the
stress gradient is steep), and with zero-flux boundaries backward Euler conserves
``int c`` to round-off (the test function 1 is in the space).  The stress enters through
``phi`` at the quadrature points (a callable of the coordinates, or values at the mesh's nodes
interpolated by P1 shape functions), so a stress field from any finite-element solution can be
used.

Units: lengths m, time s, D m²/s, V_H m³ (``partial_molar_volume_A3`` Å³ is converted), stress Pa,
temperature K.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from ..core.errors import InputError
from ..core.units import BOLTZMANN_EV, ELEMENTARY_CHARGE
from ..core.validate import finite, positive, positive_int

__all__ = ["HydrogenField", "solve_hydrogen_diffusion", "equilibrium_concentration"]

_A3_TO_M3 = 1e-30


@dataclass
class HydrogenField:
    """Concentrations at the basis's DOFs at the stored times.

    ``c`` (n_times, N), ``times`` (s), ``basis`` (scikit-fem, P1 or P2), ``phi`` (the
    dimensionless ``sigma_h V_H / k_B T`` at the DOFs), ``total`` (``int c`` at each time,
    concentration times m²: per metre of thickness in 2D)."""

    c: np.ndarray
    times: np.ndarray
    basis: Any
    phi: np.ndarray
    total: np.ndarray

    def at(self, points) -> np.ndarray:
        """The last concentration at ``points`` (2, n) (m)."""
        probe = self.basis.probes(np.asarray(points, float))
        return probe @ self.c[-1]


def _beta(temperature_K: float, partial_molar_volume_A3: float) -> float:
    """V_H / k_B T in 1/Pa."""
    t = positive("temperature_K", temperature_K)
    v = finite("partial_molar_volume_A3", partial_molar_volume_A3)
    kt_j = BOLTZMANN_EV * t * ELEMENTARY_CHARGE
    return v * _A3_TO_M3 / kt_j


def _volume_A3(v: Any) -> float:
    from ..uq import Estimate

    if isinstance(v, Estimate):
        return float(v.to("Å^3").value)
    return finite("partial_molar_volume_A3", v)


def _diffusivity(d: Any) -> float:
    from ..uq import Estimate

    if isinstance(d, Estimate):
        d = d.to("m^2/s").value
    return positive("diffusivity", d)


def _diffusivity_field(d: Any, x_q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(D_xx, D_xy, D_yy) at the quadrature points ``x_q`` (2, nel, nq), m²/s: a number or
    Estimate (isotropic, uniform), or a callable of points returning scalars (...) or in-plane
    tensors (2, 2, ...) that must be symmetric positive definite everywhere."""
    if not callable(d):
        v = _diffusivity(d)
        full = np.full(x_q.shape[1:], v)
        return full, np.zeros_like(full), full
    val = np.asarray(d(x_q), float)
    shp = x_q.shape[1:]
    if val.shape == shp:
        dxx, dxy, dyy = val, np.zeros_like(val), val
    elif val.shape == (2, 2) + shp:
        if np.abs(val[0, 1] - val[1, 0]).max() > 1e-9 * np.abs(val).max():
            raise InputError("diffusivity", "a non-symmetric tensor field",
                             "symmetric in-plane diffusivity tensors (m²/s)")
        dxx, dxy, dyy = val[0, 0], 0.5 * (val[0, 1] + val[1, 0]), val[1, 1]
    else:
        raise InputError("diffusivity", f"a callable returning shape {val.shape}",
                         f"values of shape {shp} (isotropic) or (2, 2, *{shp}) (tensors) at the "
                         "points (2, ...) it is given")
    if not (np.all(np.isfinite(val)) and np.all(dxx > 0) and np.all(dxx * dyy - dxy ** 2 > 0)):
        raise InputError("diffusivity", "a field with non-finite or non-positive-definite values",
                         "positive (definite) diffusivities in m²/s everywhere")
    return dxx, dxy, dyy


def equilibrium_concentration(c0: float, hydrostatic_stress_Pa, partial_molar_volume_A3,
                              temperature_K: float):
    """``c0 exp(sigma_h V_H / k_B T)``: the concentration in equilibrium with ``c0`` at zero
    stress (Oriani's equilibrium for lattice sites, dilute)."""
    b = _beta(temperature_K, _volume_A3(partial_molar_volume_A3))
    return c0 * np.exp(np.asarray(hydrostatic_stress_Pa, float) * b)


def _stress_at(stress, basis) -> tuple[np.ndarray, np.ndarray]:
    """sigma_h (Pa) at the quadrature points (nel, nq) and at the DOFs (N,) of ``basis``: a
    callable of points, or values at the mesh's nodes (interpolated by P1 shape functions)."""
    mesh = basis.mesh
    if callable(stress):
        return (np.asarray(stress(np.asarray(basis.global_coordinates())), float),
                np.asarray(stress(basis.doflocs), float))
    s = np.asarray(stress, float)
    if s.ndim != 1 or s.size != mesh.p.shape[1] or not np.all(np.isfinite(s)):
        raise InputError("hydrostatic_stress", f"array of shape {s.shape}",
                         f"a callable of points (2, n) -> Pa, or finite values at the mesh's "
                         f"{mesh.p.shape[1]} nodes")
    from skfem import Basis, ElementTriP1

    b1 = Basis(mesh, ElementTriP1(), quadrature=basis.quadrature)
    at_q = np.asarray(b1.interpolate(s))
    at_dofs = np.empty(basis.N)
    at_dofs[basis.nodal_dofs[0]] = s
    if basis.facet_dofs.size:                   # P2: the edge midpoints
        at_dofs[basis.facet_dofs[0]] = s[mesh.facets].mean(axis=0)
    return at_q, at_dofs


def solve_hydrogen_diffusion(mesh, *, diffusivity: Any, partial_molar_volume_A3: Any,
                             temperature_K: float, hydrostatic_stress: Any,
                             c_initial: Any, dt: float, steps: int,
                             dirichlet: Mapping[str, Any] | None = None, element: str = "P1",
                             every: int = 1, progress: Callable[[int, int], None] | None = None
                             ) -> HydrogenField:
    """Backward-Euler stress-driven diffusion on a scikit-fem triangle mesh.

    Parameters
    ----------
    mesh : skfem.MeshTri
        The body (m); its named ``boundaries`` may carry Dirichlet values.
    diffusivity : float, Estimate or callable
        Lattice diffusivity D (m²/s), e.g. ``InterstitialDiffusion.diffusivity(T)``; or a
        callable of points (2, ...) returning D at each point (...) or the in-plane tensor
        (2, 2, ...) there (a strain-dependent, anisotropic diffusivity, e.g. from KMC).
    partial_molar_volume_A3 : float or Estimate
        V_H per solute atom (Å³), e.g. ``InterstitialSolution.partial_molar_volume``.
    temperature_K : float
    hydrostatic_stress : callable or array
        sigma_h (Pa, tensile positive): a callable of points (2, ...) or the values at the
        mesh's nodes.
    c_initial : float or callable
        Initial concentration (number, or callable of points (2, n) at the DOFs).
    dt, steps : float, int
        Time step (s) and number of steps.
    dirichlet : dict, optional
        Boundary name -> concentration held there (number or callable of points); elsewhere the
        boundary is closed (zero flux).  ``None``: a closed body (the total is conserved).
    element : "P1" or "P2"
    every : int
        Keep every ``every``-th step (and the last).
    progress : callable, optional
        ``progress(step, steps)`` after each step.

    Returns
    -------
    HydrogenField
    """
    from scipy.sparse.linalg import splu
    from skfem import Basis, BilinearForm, ElementTriP1, ElementTriP2, Functional, MeshTri
    from skfem.helpers import grad

    if not isinstance(mesh, MeshTri):
        raise InputError("mesh", type(mesh).__name__, "a skfem.MeshTri (m)")
    el = {"P1": ElementTriP1, "P2": ElementTriP2}.get(element)
    if el is None:
        raise InputError("element", element, "'P1' or 'P2'")
    b = _beta(temperature_K, _volume_A3(partial_molar_volume_A3))
    dt = positive("dt", dt)
    steps = positive_int("steps", steps)
    every = positive_int("every", every)
    basis = Basis(mesh, el())
    d11, d12, d22 = _diffusivity_field(diffusivity, np.asarray(basis.global_coordinates()))
    s_q, s_n = _stress_at(hydrostatic_stress, basis)
    phi_q, phi_n = s_q * b, s_n * b
    if not (np.all(np.isfinite(phi_q)) and np.abs(phi_q).max() < 700):
        raise InputError("hydrostatic_stress", f"sigma_h V_H / k_B T up to "
                         f"{np.abs(phi_q).max():.3g}", "a stress whose exp(sigma_h V_H/kT) "
                         "is finite (|.| < 700)")
    x = basis.doflocs
    c0 = np.asarray(c_initial(x) if callable(c_initial) else np.full(basis.N, float(c_initial)),
                    float)
    if c0.shape != (basis.N,) or not np.all(np.isfinite(c0)) or np.any(c0 < 0):
        raise InputError("c_initial", f"shape {c0.shape}, min {np.nanmin(c0):.3g}",
                         "finite, non-negative concentrations")
    bnames = set(mesh.boundaries or {})
    D_dofs, u_D = np.array([], int), np.zeros(basis.N)
    for name, val in (dirichlet or {}).items():
        if name not in bnames:
            raise InputError("dirichlet", name, "one of the mesh's boundaries: "
                             + (", ".join(sorted(bnames)) or "(none tagged)"))
        dofs = basis.get_dofs(name).all()
        v = np.asarray(val(x[:, dofs]) if callable(val) else np.full(dofs.size, float(val)))
        if np.any(~np.isfinite(v)) or np.any(v < 0):
            raise InputError(f"dirichlet[{name!r}]", float(np.min(v)), "concentrations >= 0")
        u_D[dofs] = v * np.exp(-phi_n[dofs])
        D_dofs = np.union1d(D_dofs, dofs)
    w = np.exp(phi_q)

    @BilinearForm
    def mass(u, v, p):
        return p["w"] * u * v

    @BilinearForm
    def stiff(u, v, p):
        gu, gv = grad(u), grad(v)
        return p["w"] * (p["d11"] * gu[0] * gv[0] + p["d12"] * (gu[0] * gv[1] + gu[1] * gv[0])
                         + p["d22"] * gu[1] * gv[1])

    M = mass.assemble(basis, w=w)
    K = stiff.assemble(basis, w=w, d11=d11, d12=d12, d22=d22)
    A = (M + dt * K).tocsc()
    free = np.setdiff1d(np.arange(basis.N), D_dofs)

    @Functional
    def integral(p):
        return p["c"]

    # the conserved quantity is int c = int w u: the L2 projection of c onto the weighted
    # space gives the initial u (exact when c0 is itself an equilibrium profile)
    @BilinearForm
    def plain_mass(u, v, p):
        return u * v

    M0 = plain_mass.assemble(basis)
    rhs0 = M0 @ c0
    u = np.zeros(basis.N)
    u[free] = splu(M[free][:, free].tocsc()).solve(rhs0[free] - M[free][:, D_dofs] @ u_D[D_dofs]) \
        if D_dofs.size else splu(M.tocsc()).solve(rhs0)
    u[D_dofs] = u_D[D_dofs]
    lu = splu(A[free][:, free].tocsc())
    keep_c, keep_t, totals = [], [], []

    def total(uv):
        return float(integral.assemble(basis, c=np.asarray(basis.interpolate(uv)) * w))

    for n in range(1, steps + 1):
        r = M @ u
        u_new = u.copy()
        u_new[D_dofs] = u_D[D_dofs]
        u_new[free] = lu.solve(r[free] - (A[free][:, D_dofs] @ u_D[D_dofs] if D_dofs.size
                                          else 0.0))
        u = u_new
        if n % every == 0 or n == steps:
            keep_c.append(u * np.exp(phi_n))
            keep_t.append(n * dt)
            totals.append(total(u))
        if progress is not None:
            progress(n, steps)
    return HydrogenField(c=np.array(keep_c), times=np.array(keep_t), basis=basis, phi=phi_n,
                         total=np.array(totals))
