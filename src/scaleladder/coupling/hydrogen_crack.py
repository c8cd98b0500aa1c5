"""Hydrogen at a loaded crack tip: the continuum stress field, stress-driven diffusion, lattice
KMC with strain-dependent barriers in the tip region, and the critical load with hydrogen —
sequential (one pass) or two-way (iterated to self-consistency).

The chain, for a centre-cracked plane-strain plate of a cubic crystal (the continuum rung's
:class:`~scaleladder.continuum.fracture.CentreCrackedPlate`):

1. :func:`crack_tip_field` solves the plate once at unit remote stress (the field is linear in
   the load): the energy release rate per unit stress², the vertex stresses, the plane strains
   and the hydrostatic stress ``σ_h = (σ_xx + σ_yy + σ_zz)/3`` with ``σ_zz`` of plane strain from
   the crystal's rotated 6x6 stiffness.  The elastic field is unbounded at the tip; a
   *process-zone* length ``r_c`` caps it: everywhere ``|σ_h| ≤ σ_h(a + r_c, 0)``, the value
   at ``r_c`` straight ahead (the strains are scaled by the same factor).  ``r_c`` stands for what
   the elastic model leaves out (the cohesive zone of an atomically sharp crack, blunting); the
   ladder prices it as a model-form source.
2. :func:`tip_hydrogen` puts hydrogen in that field at remote stress ``σ``: the lattice occupancy
   ``r = x/(1-x)`` (x the site fraction; the dilute concentration) starts uniform at the bulk
   value of the gas (``x_b``, Sieverts) and diffuses for the hold time with the outer boundary in
   equilibrium with the gas (``r = r_b exp(σ_h V_H / k_BT)``) and the crack faces closed
   (:func:`~scaleladder.continuum.solve_hydrogen_diffusion`).  Its equilibrium
   ``r = r_b exp(σ_h V_H/k_BT)`` is Fermi–Dirac exact in x; ``hold_time_s=None`` takes it
   directly.  The diffusivity: with ``barriers="strained"`` the tip region (``r < r_kmc``,
   polar cells around each tip) takes the tensor ``<r rᵀ>/2t`` of lattice KMC on the
   octahedral-tetrahedral network whose every barrier follows the cell's strain through the
   saddle and site dipoles (:mod:`scaleladder.mesoscale.interstitial_kmc`), rerun whenever the
   load changes; outside it the handoff's first-order hydrostatic formula; with
   ``"unstrained"`` the handoff's D(T) everywhere.
3. :func:`hydrogen_critical_stress`: the work of separation with the crack faces' coverage
   ``θ`` (Langmuir–McLean/Fowler from the local lattice site fraction in the process zone,
   :meth:`~scaleladder.handoffs.SurfaceSegregation.equilibrium_coverage`) at fixed coverage
   (fast separation, Hirth–Rice: ``W(θ) = 2(γ₀ + n_s θ Ē(θ))``), and Griffith for the plate:
   ``σ_c = (W / g)^{1/2}`` with ``g`` the finite-element energy release rate per unit stress².
   *Sequential*: ``x_tip = x_b`` (bulk, unstrained, one pass).  *Two-way*: ``σ → σ_h, ε(x) →
   {KMC D(x)} → x(t_hold) → θ → W → σ``, the root of ``σ − (W(σ)/g)^{1/2}`` (monotone: more
   load, more hydrogen, less cohesion) found by Brent's method; every evaluation is one
   self-consistent iteration of the chain and is kept in the history.

The model of the tip (Oriani; Serebrinsky, Carter and Ortiz, J. Mech. Phys. Solids 52, 2403
(2004)): the coverage of the decohering faces is in equilibrium with the *local* lattice
hydrogen ahead of the tip, which the hydrostatic stress enriches, while the segregation energy
is the unstressed one — the decohering sites are taken to feel the same stress as the lattice
around them.  Were the surface sites stress-free, the stress would cancel out of the coverage in
full equilibrium (the chemical potential is uniform) and the two couplings would agree; the
docs say so (docs/hydrogen.md).

Units: lengths m, stresses Pa, temperature K, time s, diffusivities m²/s; energies eV.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..core import validate as v
from ..core.errors import CalculationError, ConvergenceError, InputError
from ..core.units import BOLTZMANN_EV, ELEMENTARY_CHARGE

__all__ = ["CrackTipField", "crack_tip_field", "tip_element_size", "KMCRegion", "tip_hydrogen",
           "hydrogen_critical_stress", "COUPLINGS", "BARRIERS"]

COUPLINGS = ("sequential", "two-way")
#: power grading of the plate's mesh toward the tips (the plate's default), shared by the
#: solve and by the mesh-only pre-check :func:`tip_element_size`
_GRADING = 3.0
BARRIERS = ("strained", "unstrained")
_A3_TO_M3 = 1e-30


# --------------------------------------------------------------------------- the tip field
@dataclass(frozen=True, eq=False)
class CrackTipField:
    """The plate's field at unit remote stress (SI).

    Attributes
    ----------
    nodes (N, 2), triangles (M, 3)
        The finite-element mesh (m); crack-face vertices appear twice.
    stress (N, 3)
        ``[σ_xx, σ_yy, σ_xy]`` per unit remote stress (vertex averages).
    strain (N, 3, 3)
        Plane strain in the crack frame per unit remote stress (1/Pa).
    sigma_h (N,)
        Hydrostatic stress per unit remote stress, capped at ``sigma_h_cap``.
    sigma_h_cap
        ``σ_h`` per unit stress at ``r_c`` straight ahead of the tip.
    capped (N,) bool
        Vertices whose field was capped (inside the process zone).
    g_unit
        Energy release rate per unit stress² (m/Pa: J/m² per Pa²), J-integral.
    k_unit
        Mode-I stress intensity per unit stress (m^0.5).
    rotation (3, 3)
        Rows: the crack frame's x (propagation), y (normal), z (front) in crystal axes.
    half_crack, half_width, half_height, cutoff_length, refine
    tip_element_size
        The largest edge of the triangles within ``2 r_c`` of a tip (m).
    """

    nodes: np.ndarray
    triangles: np.ndarray
    stress: np.ndarray
    strain: np.ndarray
    sigma_h: np.ndarray
    sigma_h_cap: float
    capped: np.ndarray
    g_unit: float
    k_unit: float
    rotation: np.ndarray
    half_crack: float
    half_width: float
    half_height: float
    cutoff_length: float
    refine: int
    tip_element_size: float
    solve_seconds: float = 0.0
    _cache: dict = field(default_factory=dict, repr=False)

    # -- mesh and probes (rebuilt lazily: arrays are what a store keeps) ----------------------
    def mesh(self):
        """scikit-fem ``MeshTri`` with the boundary ``"outer"`` (the plate's edges)."""
        if "mesh" not in self._cache:
            from skfem import MeshTri

            W, H = self.half_width, self.half_height
            tol = 1e-9 * max(W, H)
            m = MeshTri(np.ascontiguousarray(self.nodes.T), np.ascontiguousarray(self.triangles.T))
            self._cache["mesh"] = m.with_boundaries({
                "outer": lambda x: (np.abs(np.abs(x[0]) - W) < tol) | (np.abs(np.abs(x[1]) - H)
                                                                        < tol)})
        return self._cache["mesh"]

    def interpolate(self, nodal: np.ndarray, points: np.ndarray) -> np.ndarray:
        """P1 interpolation of vertex values (N, ...) at ``points`` (2, n)."""
        from skfem import Basis, ElementTriP1

        if "p1" not in self._cache:
            self._cache["p1"] = Basis(self.mesh(), ElementTriP1())
        P = self._cache["p1"].probes(np.asarray(points, float))
        vals = np.asarray(nodal, float)
        return np.asarray(P @ vals.reshape(vals.shape[0], -1)).reshape((-1,) + vals.shape[1:])

    def tip_point(self, distance: float) -> np.ndarray:
        """The point ``distance`` ahead of the right tip, (2, 1)."""
        return np.array([[self.half_crack + distance], [0.0]])

    def to_state(self) -> dict:
        return {k: getattr(self, k) for k in (
            "nodes", "triangles", "stress", "strain", "sigma_h", "sigma_h_cap", "capped", "g_unit",
            "k_unit", "rotation", "half_crack", "half_width", "half_height", "cutoff_length",
            "refine", "tip_element_size", "solve_seconds")}

    @classmethod
    def from_state(cls, state: dict) -> "CrackTipField":
        return cls(**state)


def _tip_size(nodes: np.ndarray, tri: np.ndarray, a: float, rc: float) -> float:
    """The largest edge of the triangles whose centroid lies within ``2 rc`` of a tip (m)."""
    tips = np.array([[-a, 0.0], [a, 0.0]])
    cen = nodes[tri].mean(axis=1)
    near = np.min(np.linalg.norm(cen[:, None, :] - tips[None], axis=2), axis=1) < 2 * rc
    edges = np.linalg.norm(nodes[tri] - nodes[np.roll(tri, 1, axis=1)], axis=2).max(axis=1)
    return float(edges[near].max()) if near.any() else float(edges.max())


def tip_element_size(half_crack: float, half_width: float, half_height: float, refine: int,
                     length: float) -> float:
    """The plate mesh's element size within ``2·length`` of the tips at ``refine`` (m), from
    the mesh alone (no solve): what :func:`crack_tip_field` checks against its cut-off."""
    from ..continuum.fracture import _BASE_N
    from ..continuum.mesh import centre_crack_mesh_arrays

    arr = centre_crack_mesh_arrays(half_crack, half_width, half_height,
                                   _BASE_N * 2 ** int(refine), _GRADING)
    return _tip_size(arr["p"].T, arr["t"].T, half_crack, length)


def _voigt_pa(elastic: Any) -> np.ndarray:
    from ..handoffs import ElasticTensor

    if isinstance(elastic, ElasticTensor):
        return elastic.to_pa()
    c = v.finite_array("elastic", elastic, (6, 6))
    if np.abs(c).max() < 1e6:
        raise InputError("elastic", f"a 6x6 matrix with entries up to {np.abs(c).max():.3g}",
                         "an ElasticTensor handoff or a Voigt stiffness in Pa")
    return c


def crack_tip_field(elastic: Any, *, half_crack: float, half_width: float, half_height: float,
                    cutoff_length: float, rotation: Any = None, refine: int = 3,
                    resolution: float = 1.0) -> CrackTipField:
    """Solve the centre-cracked plate of a crystal at unit remote stress and build its
    hydrostatic-stress and strain fields (see the module notes).

    Parameters
    ----------
    elastic : ElasticTensor or array (6, 6) in Pa
        Stiffness in crystal axes.
    half_crack, half_width, half_height : float
        ``a``, ``W``, ``H`` (m).
    cutoff_length : float
        Process-zone length ``r_c`` (m): the field is capped at its value ``r_c`` ahead of the
        tip.  The mesh must resolve it (the tip elements no larger than ``r_c``).
    rotation : (3, 3), optional
        Crack frame in crystal axes (default (111)[1-10] cleavage,
        :func:`~scaleladder.continuum.crack_frame_111`).
    refine : int
        Mesh level of the plate (``4·2^refine`` graded elements across the tip core).
    resolution : float
        The tip elements (within ``2 r_c``) may be up to ``resolution · r_c`` (1: resolved; a
        deliberately coarse mesh for a discretisation estimate may pass 2).

    Raises
    ------
    InputError
        A bad geometry, a cut-off that the mesh does not resolve or that reaches beyond the
        tip core.
    """
    from ..continuum import CentreCrackedPlate, crack_frame_111, plane_strain_stiffness
    from ..core.tensors import rotate_voigt

    a = v.positive("half_crack", half_crack)
    W = v.positive("half_width", half_width)
    H = v.positive("half_height", half_height)
    rc = v.positive("cutoff_length", cutoff_length)
    refine = v.positive_int("refine", refine, 0)
    c6 = _voigt_pa(elastic)
    R = np.asarray(crack_frame_111() if rotation is None else rotation, float)
    rho = min(a, W - a, H) if a < W else a
    if rc >= 0.25 * rho:
        raise InputError("cutoff_length", rc, f"a process zone well inside the tip core: < "
                         f"{0.25 * rho:.3g} m (a quarter of min(a, W - a, H))")
    c2 = plane_strain_stiffness(c6, R)
    c6r = rotate_voigt(c6, R)
    t0 = time.perf_counter()
    sol = CentreCrackedPlate(c2, a, W, H, grading=_GRADING).solve(remote_stress=1.0,
                                                                  refine=refine)
    nodes, tri = np.asarray(sol.nodes), np.asarray(sol.triangles)
    h_tip = _tip_size(nodes, tri, a, rc)
    if h_tip > v.positive("resolution", resolution) * rc:
        raise InputError("cutoff_length", rc, f"a length the mesh resolves: the elements within "
                         f"2 r_c of the tip are up to {h_tip:.3g} m at refine={refine}",
                         hint="raise refine or cutoff_length")
    stress = np.asarray(sol.stress, float)                           # [xx, yy, xy]
    eps2 = stress @ np.linalg.inv(c2).T                              # [exx, eyy, gxy]
    szz = eps2 @ c6r[2, [0, 1, 5]]
    sh = (stress[:, 0] + stress[:, 1] + szz) / 3.0
    strain = np.zeros((len(nodes), 3, 3))
    strain[:, 0, 0], strain[:, 1, 1] = eps2[:, 0], eps2[:, 1]
    strain[:, 0, 1] = strain[:, 1, 0] = 0.5 * eps2[:, 2]
    raw = CrackTipField(nodes=nodes, triangles=tri, stress=stress, strain=strain, sigma_h=sh,
                        sigma_h_cap=np.inf, capped=np.zeros(len(nodes), bool), g_unit=sol.G,
                        k_unit=sol.stress_intensity_factor(), rotation=R, half_crack=a,
                        half_width=W, half_height=H, cutoff_length=rc, refine=refine,
                        tip_element_size=h_tip)
    cap = float(raw.interpolate(sh, raw.tip_point(rc))[0])
    if not cap > 0:  # pragma: no cover - mode I opens the tip
        raise CalculationError(f"the hydrostatic stress {rc:g} m ahead of the tip is {cap:g} "
                               "per unit load (expected tension)")
    # two-sided: the vertex averages next to the singular tip also overshoot in compression
    # (crack-face vertices a fraction of a nanometre from it), which elasticity does not
    # resolve either
    big = np.abs(sh) > cap
    scale = np.where(big, cap / np.where(big, np.abs(sh), 1.0), 1.0)
    return CrackTipField(nodes=nodes, triangles=tri, stress=stress * scale[:, None],
                         strain=strain * scale[:, None, None], sigma_h=sh * scale,
                         sigma_h_cap=cap, capped=sh > cap, g_unit=float(sol.G),
                         k_unit=float(sol.stress_intensity_factor()), rotation=R, half_crack=a,
                         half_width=W, half_height=H, cutoff_length=rc, refine=int(refine),
                         tip_element_size=h_tip, solve_seconds=time.perf_counter() - t0)


# --------------------------------------------------------------------------- KMC region
@dataclass(frozen=True)
class KMCRegion:
    """Polar cells around each tip where lattice KMC supplies the diffusivity.

    ``rings`` rings with outer radii ``r_c·2^k`` (k = 0 .. rings−1; the first is the disc
    inside the process zone) times ``sectors`` angular sectors (centred off the crack line);
    ``walkers`` independent walkers per cell for ``jumps`` octahedral residence times on a
    periodic lattice of ``size``³ cubic cells; ``seed`` the first cell's seed (cell ``i`` uses
    ``seed + i``)."""

    rings: int = 5
    sectors: int = 8
    walkers: int = 500
    jumps: int = 100
    size: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        v.positive_int("kmc.rings", self.rings, 1)
        v.positive_int("kmc.sectors", self.sectors, 2)
        v.positive_int("kmc.walkers", self.walkers, 2)
        v.positive_int("kmc.jumps", self.jumps, 1)
        v.positive_int("kmc.size", self.size, 2)
        v.seed("kmc.seed", self.seed)

    def radius(self, rc: float) -> float:
        return rc * 2.0 ** (self.rings - 1)

    def cells(self, rc: float) -> tuple[np.ndarray, np.ndarray]:
        """Representative radii and angles (flattened, ring-major) of the right tip's cells:
        the ring's geometric middle (``r_c`` for the inner disc), the sector's centre."""
        outer = rc * 2.0 ** np.arange(self.rings)
        mid = np.concatenate([[rc], np.sqrt(outer[1:] * outer[:-1])])
        ang = -np.pi + (np.arange(self.sectors) + 0.5) * 2 * np.pi / self.sectors
        r, t = np.meshgrid(mid, ang, indexing="ij")
        return r.ravel(), t.ravel()

    def classify(self, points: np.ndarray, a: float, rc: float) -> np.ndarray:
        """Cell index of each point (2, ...) by its nearest tip (the left tip's cells are the
        right tip's turned by 180°, a symmetry of mode I in a crystal with a two-fold axis
        along the front), −1 outside the region."""
        x, y = points[0], points[1]
        sgn = np.where(x >= 0, 1.0, -1.0)
        dx, dy = sgn * (x - sgn * a), sgn * y
        r = np.hypot(dx, dy)
        theta = np.arctan2(dy, dx)
        ring = np.where(r <= rc, 0, np.ceil(np.log2(np.maximum(r, rc) / rc) - 1e-12).astype(int))
        sector = np.clip(((theta + np.pi) / (2 * np.pi) * self.sectors).astype(int), 0,
                         self.sectors - 1)
        idx = ring * self.sectors + sector
        return np.where(ring < self.rings, idx, -1)


def _kmc_cells(fld: CrackTipField, remote_stress: float, diffusion: Any, temperature_K: float,
               region: KMCRegion) -> dict:
    """KMC diffusivity tensors (crack frame, in-plane) of every cell at ``remote_stress``."""
    from ..mesoscale.interstitial_kmc import (simulate_interstitial_diffusion,
                                              strained_interstitial_model)

    rc = fld.cutoff_length
    r, t = region.cells(rc)
    pts = np.vstack([fld.half_crack + r * np.cos(t), r * np.sin(t)])
    eps_unit = fld.interpolate(fld.strain, pts)                    # (n, 3, 3), already capped
    R = fld.rotation
    n = len(r)
    D = np.zeros((n, 2, 2))
    sem = np.zeros((n, 2, 2))
    pred = np.zeros((n, 2, 2))
    events = 0
    t0 = time.perf_counter()
    for i in range(n):
        eps_c = R.T @ (remote_stress * eps_unit[i]) @ R             # crystal axes
        model = strained_interstitial_model(diffusion, temperature_K, 0.5 * (eps_c + eps_c.T),
                                            size=region.size)
        res = simulate_interstitial_diffusion(model, n_walkers=region.walkers,
                                              n_jumps=region.jumps, seed=region.seed + i)
        D[i] = (R @ res["D"] @ R.T)[:2, :2]
        sem[i] = np.sqrt(np.abs(R ** 2 @ res["D_sem"] ** 2 @ (R ** 2).T))[:2, :2]
        pred[i] = (R @ res["D_predicted"] @ R.T)[:2, :2]
        events += int(res["events"])
    D = 0.5 * (D + np.transpose(D, (0, 2, 1)))
    # a cell whose sampled tensor is not positive definite (too few walkers) is an error
    det = D[:, 0, 0] * D[:, 1, 1] - D[:, 0, 1] ** 2
    if np.any(D[:, 0, 0] <= 0) or np.any(det <= 0):
        raise CalculationError("a KMC cell's sampled diffusivity tensor is not positive "
                               "definite: raise kmc.walkers")
    return {"D": D, "D_sem": sem, "D_renewal": pred, "radius": r, "angle": t,
            "strain": eps_unit * remote_stress, "events": events,
            "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------- hydrogen
def _node_lookup(fld: CrackTipField) -> Callable[[np.ndarray], np.ndarray]:
    """Vertex index of each given point (2, n) that is a vertex (the P1 DOF locations)."""
    from scipy.spatial import cKDTree

    tree = fld._cache.get("tree")
    if tree is None:
        tree = fld._cache["tree"] = cKDTree(fld.nodes)

    def lookup(pts):
        d, i = tree.query(np.asarray(pts, float).T)
        if d.max() > 1e-9 * fld.half_width:  # pragma: no cover - P1 DOFs are vertices
            raise CalculationError("boundary values asked off the mesh's vertices")
        return i
    return lookup


def _beta(temperature_K: float, v_h_A3: float) -> float:
    return v_h_A3 * _A3_TO_M3 / (BOLTZMANN_EV * temperature_K * ELEMENTARY_CHARGE)


def _check_handoffs(solution: Any, diffusion: Any, segregation: Any = None) -> None:
    from ..handoffs import InterstitialDiffusion, InterstitialSolution, SurfaceSegregation

    if not isinstance(solution, InterstitialSolution):
        raise InputError("solution", type(solution).__name__, "an InterstitialSolution handoff")
    if not isinstance(diffusion, InterstitialDiffusion):
        raise InputError("diffusion", type(diffusion).__name__, "an InterstitialDiffusion handoff")
    if segregation is not None and not isinstance(segregation, SurfaceSegregation):
        raise InputError("segregation", type(segregation).__name__,
                         "a SurfaceSegregation handoff")
    names = {solution.element, diffusion.element} | ({segregation.element} if segregation
                                                     else set())
    if len(names) != 1:
        raise InputError("handoffs", sorted(names), "handoffs of one solute element")


def tip_hydrogen(fld: CrackTipField, remote_stress: float, *, solution: Any, diffusion: Any,
                 temperature_K: float, bulk_site_fraction: float, hold_time_s: float | None,
                 barriers: str = "strained", steps: int = 40,
                 kmc: KMCRegion | None = None) -> dict:
    """The hydrogen around the tip after holding ``remote_stress`` (Pa) for ``hold_time_s``
    (``None``: equilibrium), starting from the bulk site fraction of the gas everywhere.

    Returns
    -------
    dict
        ``x`` (site fraction at the vertices), ``x_tip`` (the mean over the process zone's
        vertices, where the field is capped: in equilibrium all equal ``x_tip_equilibrium``),
        ``x_tip_equilibrium``, ``phi_tip`` (``σ_h V_H / k_BT`` there), ``kmc`` (the cells'
        tensors, or None), ``seconds``.
    """
    _check_handoffs(solution, diffusion)
    if not isinstance(fld, CrackTipField):
        raise InputError("field", type(fld).__name__, "a CrackTipField")
    sigma = v.finite("remote_stress", remote_stress)
    T = v.positive("temperature_K", temperature_K)
    xb = v.finite("bulk_site_fraction", bulk_site_fraction)
    if not 0 < xb < 1:
        raise InputError("bulk_site_fraction", xb, "a site fraction in (0, 1)")
    barriers = v.one_of("barriers", barriers, BARRIERS)
    t0 = time.perf_counter()
    vh = float(solution.partial_molar_volume.to("Å^3").value)
    beta = _beta(T, vh)
    rb = xb / (1 - xb)
    sh = sigma * fld.sigma_h                                         # Pa at the vertices
    phi_tip = sigma * fld.sigma_h_cap * beta
    r_eq = rb * math.exp(phi_tip)
    out = {"x_tip_equilibrium": r_eq / (1 + r_eq), "phi_tip": phi_tip, "kmc": None,
           "remote_stress": sigma, "hold_time_s": hold_time_s, "barriers": barriers}
    if hold_time_s is None:
        r = rb * np.exp(beta * sh)
        out.update(x=r / (1 + r), x_tip=out["x_tip_equilibrium"],
                   seconds=time.perf_counter() - t0)
        return out
    th = v.positive("hold_time_s", hold_time_s)
    steps = v.positive_int("steps", steps)
    from ..continuum import solve_hydrogen_diffusion

    kt = BOLTZMANN_EV * T
    d_plain = float(diffusion.diffusivity(T).to("m^2/s").value)
    if barriers == "unstrained":
        dfield: Any = d_plain
    else:
        region = kmc or KMCRegion()
        cells = _kmc_cells(fld, sigma, diffusion, T, region)
        out["kmc"] = cells
        # outside the KMC region: the handoff's first-order hydrostatic formula
        de_dh = float(diffusion.barrier_change(1e-4 * np.eye(3)).value) / 1e-4
        a = fld.half_crack
        rc = fld.cutoff_length

        # per element: the cell of its centroid, the mean strain of its vertices
        eps_el = fld.strain[fld.triangles].mean(axis=1) * sigma          # (nel, 3, 3)
        eh = np.trace(eps_el, axis1=1, axis2=2) / 3
        d_el = np.zeros((len(eps_el), 2, 2))
        iso = d_plain * (1 + eh) ** 2 * np.exp(-de_dh * eh / kt)
        d_el[:, 0, 0] = d_el[:, 1, 1] = iso
        idx = region.classify(fld.nodes[fld.triangles].mean(axis=1).T, a, rc)
        inside = idx >= 0
        d_el[inside] = cells["D"][idx[inside]]
        out["element_diffusivity"] = d_el

        def dfield(xq):
            if xq.shape[1] != len(d_el):  # pragma: no cover - the basis is on fld.mesh()
                raise CalculationError("diffusivity field asked on another mesh")
            return np.broadcast_to(np.transpose(d_el, (1, 2, 0))[..., None],
                                   (2, 2) + xq.shape[1:]).copy()

    node_of = _node_lookup(fld)

    def dirichlet(pts):                 # the gas's equilibrium at the stressed outer edges
        return rb * np.exp(beta * sh[node_of(pts)])

    res = solve_hydrogen_diffusion(fld.mesh(), diffusivity=dfield, partial_molar_volume_A3=vh,
                                   temperature_K=T, hydrostatic_stress=sh, c_initial=rb,
                                   dt=th / steps, steps=steps, dirichlet={"outer": dirichlet},
                                   every=steps)
    r = np.asarray(res.c[-1])
    r_tip = float(np.mean(r[fld.capped]))          # the process zone (its vertices)
    out.update(x=r / (1 + r), x_tip=r_tip / (1 + r_tip), seconds=time.perf_counter() - t0)
    return out


# --------------------------------------------------------------------------- critical stress
def hydrogen_critical_stress(fld: CrackTipField, *, solution: Any, diffusion: Any,
                             segregation: Any, temperature_K: float, bulk_site_fraction: float,
                             coupling: str = "two-way", hold_time_s: float | None = None,
                             barriers: str = "strained", steps: int = 40,
                             kmc: KMCRegion | None = None, rtol: float = 1e-4,
                             max_iterations: int = 40,
                             progress: Callable[[dict], None] | None = None) -> dict:
    """The critical remote stress of the plate with hydrogen (see the module notes).

    Parameters
    ----------
    fld : CrackTipField
    solution, diffusion, segregation : InterstitialSolution, InterstitialDiffusion,
        SurfaceSegregation
        One solute in one host.
    temperature_K, bulk_site_fraction : float
        The bulk site fraction of the charged metal (e.g. Sieverts' law at the gas pressure).
    coupling : "sequential" or "two-way"
    hold_time_s : float or None
        How long the load is held before fracture (s); None: the hydrogen reaches
        equilibrium with the load.
    barriers : "strained" or "unstrained"
        Whether the diffusivity follows the local strain (KMC in the tip region).
    steps, kmc
        Diffusion steps per hold; the KMC region.
    rtol : float
        Relative tolerance on σ_c of the self-consistent iteration.

    Returns
    -------
    dict
        ``sigma_c`` (Pa), ``K_IC`` (Pa m^0.5), ``x_tip``, ``coverage``, ``work_of_separation``
        (J/m²), ``iterations`` (one per evaluation of the chain), ``history`` (σ, x_tip, θ, W,
        σ_next per iteration), ``converged``, ``seconds``, and the ``tip`` state at σ_c
        (:func:`tip_hydrogen`; None for the sequential coupling).

    Raises
    ------
    ConvergenceError
        The self-consistent iteration did not reach ``rtol`` in ``max_iterations``.
    """
    from scipy.optimize import brentq

    _check_handoffs(solution, diffusion, segregation)
    if not isinstance(fld, CrackTipField):
        raise InputError("field", type(fld).__name__, "a CrackTipField")
    coupling = v.one_of("coupling", coupling, COUPLINGS)
    T = v.positive("temperature_K", temperature_K)
    xb = v.finite("bulk_site_fraction", bulk_site_fraction)
    if not 0 < xb < 1:
        raise InputError("bulk_site_fraction", xb, "a site fraction in (0, 1)")
    if hold_time_s is not None:
        v.positive("hold_time_s", hold_time_s)
    rtol = v.positive("rtol", rtol)
    max_iterations = v.positive_int("max_iterations", max_iterations, 2)
    t0 = time.perf_counter()
    g = fld.g_unit

    def cohesion(x_tip: float) -> tuple[float, float]:
        th = segregation.equilibrium_coverage(min(x_tip, 1 - 1e-15), T)
        w = segregation.work_of_separation(th)
        if not w > 0:
            raise CalculationError(f"the work of separation at coverage {th:.3f} is {w:.3g} "
                                   "J/m² (spontaneous decohesion)")
        return th, w

    history: list[dict] = []
    tips: dict[float, dict] = {}

    def chain(sigma: float) -> float:
        tip = tip_hydrogen(fld, sigma, solution=solution, diffusion=diffusion, temperature_K=T,
                           bulk_site_fraction=xb, hold_time_s=hold_time_s, barriers=barriers,
                           steps=steps, kmc=kmc)
        th, w = cohesion(tip["x_tip"])
        s_next = math.sqrt(w / g)
        row = {"sigma": sigma, "x_tip": tip["x_tip"], "coverage": th, "W": w,
               "sigma_next": s_next, "seconds": tip["seconds"]}
        history.append(row)
        tips[sigma] = tip
        if progress is not None:
            progress(row)
        return sigma - s_next

    th_b, w_b = cohesion(xb)
    s_seq = math.sqrt(w_b / g)
    result = {"coupling": coupling, "temperature_K": T, "bulk_site_fraction": xb,
              "hold_time_s": hold_time_s, "barriers": barriers, "g_unit": g,
              "sigma_c_sequential": s_seq}
    if coupling == "sequential":
        sigma, x_tip, th, w, n_it, ok = s_seq, xb, th_b, w_b, 1, True
        history.append({"sigma": 0.0, "x_tip": xb, "coverage": th_b, "W": w_b,
                        "sigma_next": s_seq, "seconds": 0.0})
    else:
        f_hi = chain(s_seq)
        if f_hi <= rtol * s_seq:             # the load does not change the tip (e.g. saturated)
            sigma, ok = s_seq, True
        else:
            w_min = min(segregation.work_of_separation(t) for t in np.linspace(0, 1, 101))
            s_lo = math.sqrt(max(w_min, 1e-12) / g) * (1 - 1e-9)
            f_lo = chain(s_lo)
            if f_lo >= 0:
                sigma, ok = s_lo, True
            else:
                sigma, info = brentq(chain, s_lo, s_seq, xtol=rtol * s_lo, rtol=1e-12,
                                     maxiter=max_iterations, full_output=True, disp=False)
                ok = bool(info.converged)
                if not ok:
                    raise ConvergenceError(
                        "the two-way critical stress (self-consistent load, tip hydrogen and "
                        "cohesion)", settings={"max_iterations": max_iterations, "rtol": rtol,
                                               "bracket_Pa": (s_lo, s_seq)},
                        suggestion="raise max_iterations or rtol")
        row = min(history, key=lambda h: abs(h["sigma"] - sigma))
        if abs(row["sigma"] - sigma) > 0:
            chain(sigma)
            row = history[-1]
        x_tip, th, w, n_it = row["x_tip"], row["coverage"], row["W"], len(history)
        sigma = float(sigma)
    result.update(sigma_c=float(sigma), K_IC=float(sigma * fld.k_unit), x_tip=float(x_tip),
                  coverage=float(th), work_of_separation=float(w), coverage_bulk=th_b,
                  work_of_separation_bulk=w_b, iterations=n_it, history=history,
                  converged=ok, seconds=time.perf_counter() - t0, tip=tips.get(sigma))
    return result
