"""Variational phase-field fracture in two dimensions (plane strain), on scikit-fem.

The energy of a plane-strain body with displacement ``u`` and damage ``d ∈ [0, 1]`` is

    ℰ(u, d) = ∫ [g(d) ψ⁺(ε) + ψ⁻(ε)] dA + (G_c / c_w) ∫ (w(d)/ℓ + ℓ |∇d|²) dA,

``g(d) = (1 − d)² + k`` (``k`` a small residual stiffness), AT2: ``w = d²``, ``c_w = 2``; AT1:
``w = d``, ``c_w = 8/3`` (Bourdin, Francfort & Marigo 2000; Pham et al. 2011).  SI units: stiffness
in Pa, lengths in m, ``G_c`` in J/m², energies per unit thickness in J/m, forces in N/m.

Splits of the elastic energy (``split=``), so that a crack does not grow under compression:

* ``"none"``: ``ψ⁺ = ψ``; the stiffness is any anisotropic plane-strain ``C`` (3x3, from an
  ``ElasticTensor`` through :func:`~scaleladder.continuum.plane_strain_stiffness`).
* ``"voldev"`` — a volumetric–deviatoric split that is valid for **anisotropic** stiffness:
  ``ψ⁻ = ½ K_R ⟨tr ε⟩₋²``, ``ψ⁺ = ψ − ψ⁻`` with ``K_R = 1/(m·C⁻¹·m)``, ``m = [1, 1, 0]``, the
  in-plane Reuss bulk modulus.  ``K_R`` is the largest ``K`` with ``ψ(ε) ≥ ½ K (tr ε)²`` for every
  strain (the minimum of ψ at fixed ``tr ε`` is ``½ K_R (tr ε)²``), so ``ψ⁺ ≥ 0`` always; for an
  isotropic solid it is Amor, Marigo & Maurini's (2009) split with the plane-strain bulk modulus
  ``λ + μ``.  (Their split written with the Voigt bulk modulus would give a negative ``ψ⁺`` for
  an anisotropic crystal.)
* ``"spectral"`` — Miehe, Welschinger & Hofacker (2010): ``ψ⁺ = ½ λ ⟨tr ε⟩₊² + μ Σ ⟨εᵢ⟩₊²``;
  defined for isotropic stiffness only (refused otherwise).

Solution: alternate minimisation.  ``u`` at fixed ``d``: Newton on the (piecewise quadratic)
elastic energy with its consistent tangent.  ``d`` at fixed ``u``: the quadratic program
``min ½ dᵀA d − bᵀd`` subject to ``d_prev ≤ d ≤ 1`` — irreversibility as **bounds**, solved by a
primal–dual active-set (semismooth Newton) method.  Bounds rather than a history field: the
history field (Miehe et al. 2010) is not the variational irreversibility condition and cannot keep
AT1's damage non-negative; the bounds are exact for both models.  The iterations stop when the
damage changes by less than ``tol`` (max norm).  The load is a displacement factor ``δ`` scaling a
prescribed boundary displacement, stepped adaptively (:meth:`PhaseFieldFracture.run`): a step whose
damage grows by more than ``max_damage_increment`` is redone with half the step, down to
``min_step`` (brutal propagation is accepted there), and steps grow again where nothing happens.

Discretisation: P1 triangles for both fields.  A P1 crack band over-dissipates: a crack aligned
with the mesh costs ``G_c (1 + h/(c_w ℓ))`` per unit length (Bourdin, Francfort & Marigo 2008),
``G_c^eff`` in :func:`effective_toughness`; the tests and ladder compare with it.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from ..core import validate as _v
from ..core.codec import register
from ..core.errors import ConvergenceError, DomainWarning, InputError
from .damage import alternate_minimisation

__all__ = ["PhaseFieldFracture", "PhaseFieldResult", "effective_toughness", "band_mesh",
           "elastic_split", "SPLITS", "reuss_bulk_modulus", "rve_scale_separation", "cracked_cell",
           "RVE_SEPARATION"]

SPLITS = ("none", "voldev", "spectral")
MODELS = ("AT1", "AT2")
_CW = {"AT1": 8.0 / 3.0, "AT2": 2.0}
_M = np.array([1.0, 1.0, 0.0])
_S = np.array([1.0, 1.0, 1.0 / math.sqrt(2.0)])       # Voigt (engineering shear) <-> Mandel


def effective_toughness(Gc: float, h: float, ell: float, model: str) -> float:
    """``G_c (1 + h/(c_w ℓ))``: the energy per unit length a P1 crack band of element size ``h``
    dissipates (Bourdin, Francfort & Marigo 2008)."""
    _v.one_of("model", model, MODELS)
    return float(Gc) * (1.0 + float(h) / (_CW[model] * float(ell)))


RVE_SEPARATION = 10.0      # L_RVE / ℓ below which a softening RVE is warned about


def rve_scale_separation(ell: float, size: float, model: str = "AT2", *,
                         ratio: float = RVE_SEPARATION) -> dict:
    """The rule ``ℓ ≪ L_RVE`` for a damage model inside a (periodic) RVE of side ``size``.

    A crack band of a periodic cell interacts with its images: the AT2 band across a cell of
    height ``L`` is ``cosh((y − L/2)/ℓ)/cosh(L/2ℓ)`` and dissipates ``G_c tanh(L/2ℓ)`` per unit
    length instead of ``G_c`` (``2e^{−L/ℓ}`` too little); AT1's band has the compact support
    ``|y| ≤ 2ℓ`` and is exact once ``L ≥ 4ℓ``.  A cell that cannot hold the band (``L < 4ℓ``)
    is refused (``InputError`` naming ``ell``); ``L < ratio · ℓ`` gives a ``DomainWarning`` with
    the band's share of the cell and the energy bias.  Beyond this rule, no RVE exists for the
    softening branch at all (Gitman, Askes & Sluys 2007): once a band has formed, the dissipated
    energy per unit volume is ``G_c/L`` — it scales with the cell, not with the material.

    Returns ``{"ell_over_L", "band_fraction", "band_energy_factor"}`` (the last: dissipation of
    a band across the cell per ``G_c`` and unit length).
    """
    ell = _v.positive("ell", ell)
    L = _v.positive("size", size)
    model = _v.one_of("model", model, MODELS)
    ratio = _v.in_range("ratio", ratio, 4.0, 1e6)
    factor = math.tanh(L / (2 * ell)) if model == "AT2" else 1.0
    band = 4.0 * ell if model == "AT1" else 2.0 * ell * math.log(100.0)   # AT2: to d = 1 %
    out = {"ell_over_L": ell / L, "band_fraction": min(1.0, band / L), "band_energy_factor": factor}
    if L < 4.0 * ell:
        raise InputError("ell", ell, f"an internal length much smaller than the RVE (L = {L:.4g} m: "
                         f"ell <= L/4 = {L / 4:.4g} m at the very least, ell <= L/{ratio:g} for a "
                         "representative cell); the crack band does not fit in the cell",
                         hint="a larger RVE or a smaller ell")
    if L < ratio * ell:
        warnings.warn(f"ell = {ell:.4g} m is not small against the RVE (L = {L:.4g} m = "
                      f"{L / ell:.3g} ell < {ratio:g} ell): a crack band fills "
                      f"{100 * out['band_fraction']:.0f} % of the cell and dissipates "
                      f"{100 * (1 - factor):.2g} % too little", DomainWarning, stacklevel=3)
    return out


def reuss_bulk_modulus(C2d: np.ndarray) -> float:
    """In-plane Reuss bulk modulus ``1/(m·C⁻¹·m)``, ``m = [1, 1, 0]`` (Pa): the minimum over
    strains of ``2ψ/(tr ε)²``."""
    return float(1.0 / (_M @ np.linalg.solve(C2d, _M)))


def _isotropic_lame(C2d: np.ndarray, field_name: str = "stiffness") -> tuple[float, float]:
    c11, c22, c12, c66 = C2d[0, 0], C2d[1, 1], C2d[0, 1], C2d[2, 2]
    scale = abs(c11)
    off = max(abs(C2d[0, 2]), abs(C2d[1, 2]))
    if abs(c11 - c22) > 1e-6 * scale or abs(c66 - 0.5 * (c11 - c12)) > 1e-6 * scale or off > 1e-6 * scale:
        raise InputError("split", "spectral", "'voldev' or 'none' for an anisotropic stiffness (the "
                         f"spectral split is defined for isotropic solids; {field_name} has C11={c11:.4g}, "
                         f"C22={c22:.4g}, C12={c12:.4g}, C66={c66:.4g} Pa)")
    return float(c12), float(c66)


def elastic_split(eps: np.ndarray, C2d: np.ndarray, split: str):
    """Energy split at a stack of plane-strain Voigt strains ``eps`` (..., 3).

    Returns ``(psi_plus, psi_minus, sig_plus, sig_minus, D_plus, D_minus)``: energies (...),
    stresses (..., 3) and tangents (..., 3, 3) of the two parts, Voigt order ``[xx, yy, xy]`` with
    engineering shear, so that ``σ = g σ⁺ + σ⁻`` and the tangent is ``g D⁺ + D⁻``.
    """
    _v.one_of("split", split, SPLITS)
    eps = np.asarray(eps, dtype=float)
    sig = eps @ C2d.T
    psi = 0.5 * np.einsum("...i,...i->...", eps, sig)
    Dfull = np.broadcast_to(C2d, eps.shape[:-1] + (3, 3))
    if split == "none":
        z = np.zeros_like(psi)
        return psi, z, sig, np.zeros_like(sig), Dfull, np.zeros_like(Dfull)
    tr = eps[..., 0] + eps[..., 1]
    if split == "voldev":
        K = reuss_bulk_modulus(C2d)
        neg = np.minimum(tr, 0.0)
        psi_m = 0.5 * K * neg ** 2
        sig_m = K * neg[..., None] * _M
        D_m = K * (tr < 0)[..., None, None] * np.outer(_M, _M)
        return psi - psi_m, psi_m, sig - sig_m, sig_m, Dfull - D_m, D_m
    lam, mu = _isotropic_lame(C2d)
    c = 0.5 * tr
    a = 0.5 * (eps[..., 0] - eps[..., 1])
    b = 0.5 * eps[..., 2]
    r = np.hypot(a, b)
    e1, e2 = c + r, c - r
    th = 0.5 * np.arctan2(b, a)
    ct, st = np.cos(th), np.sin(th)
    n1 = np.stack([ct, st], -1)
    n2 = np.stack([-st, ct], -1)

    def mandel_proj(n, m):
        return np.stack([n[..., 0] * m[..., 0], n[..., 1] * m[..., 1],
                         (n[..., 0] * m[..., 1] + n[..., 1] * m[..., 0]) / math.sqrt(2.0)], -1)

    p1, p2, q = mandel_proj(n1, n1), mandel_proj(n2, n2), mandel_proj(n1, n2)
    out = []
    for sign in (1.0, -1.0):
        fp = lambda x: np.maximum(sign * x, 0.0) * sign            # ⟨x⟩₊ or ⟨x⟩₋
        # Heaviside with H(0) on the tensile side, so that D⁺ + D⁻ = C at zero strain too
        hp = lambda x: ((sign * x > 0) | ((x == 0) & (sign > 0))).astype(float)
        psi_s = 0.5 * lam * fp(tr) ** 2 + mu * (fp(e1) ** 2 + fp(e2) ** 2)
        sig_mandel = (lam * fp(tr)[..., None] * np.array([1.0, 1.0, 0.0])
                      + 2 * mu * (fp(e1)[..., None] * p1 + fp(e2)[..., None] * p2))
        de = e1 - e2
        coef = np.where(np.abs(de) > 1e-14 * (np.abs(e1) + np.abs(e2) + 1e-300),
                        (fp(e1) - fp(e2)) / np.where(de == 0, 1.0, de), hp(e1))
        Dm = (lam * hp(tr)[..., None, None] * np.outer(_M, _M)
              + 2 * mu * (hp(e1)[..., None, None] * p1[..., :, None] * p1[..., None, :]
                          + hp(e2)[..., None, None] * p2[..., :, None] * p2[..., None, :]
                          + 2 * coef[..., None, None] * q[..., :, None] * q[..., None, :]))
        out.append((psi_s, sig_mandel * _S, Dm * _S[:, None] * _S[None, :]))
    (pp, sp_, Dp), (pm, sm, Dm_) = out
    return pp, pm, sp_, sm, Dp, Dm_


def _geometric(length: float, h0: float, growth: float, hmax: float) -> np.ndarray:
    """Offsets ``0 < s_1 < ... = length`` growing geometrically from ``h0`` (capped at ``hmax``)."""
    s, h, out = 0.0, h0, []
    while s + h < length * (1 - 1e-9):
        s += h
        out.append(s)
        h = min(h * growth, hmax)
    if out and length - out[-1] < 0.5 * h:
        out[-1] = length
    else:
        out.append(length)
    return np.array(out)


def band_mesh(half_width: float, half_height: float, h: float, *, fine_half_width: float | None = None,
              band_half_height: float | None = None, growth: float = 1.2, x0: float = 0.0):
    """A structured triangle mesh of ``[x0 − W, x0 + W] × [−H, H]`` with element size ``h`` in the
    box ``|x − x0| ≤ fine_half_width``, ``|y| ≤ band_half_height`` (where a crack will run) and
    geometric growth (factor ``growth``) outside it; grid lines through ``y = 0`` and ``x = x0``.
    Returns a scikit-fem ``MeshTri``."""
    from skfem import MeshTri

    W = _v.positive("half_width", half_width)
    H = _v.positive("half_height", half_height)
    h = _v.positive("h", h)
    fx = W if fine_half_width is None else min(_v.positive("fine_half_width", fine_half_width), W)
    fy = H if band_half_height is None else min(_v.positive("band_half_height", band_half_height), H)
    growth = _v.in_range("growth", growth, 1.0, 2.0)

    def axis(total, fine):
        nf = max(1, int(round(fine / h)))
        inner = np.linspace(0.0, fine, nf + 1)[1:]
        if total - fine > 1e-12 * total:
            outer = fine + _geometric(total - fine, h * growth, growth, max(total / 8, h))
            inner = np.concatenate([inner, outer])
        return np.concatenate([-inner[::-1], [0.0], inner])

    return MeshTri.init_tensor(x0 + axis(W, fx), axis(H, fy))


@register("PhaseFieldResult")
@dataclass
class PhaseFieldResult:
    """One loading history of :class:`PhaseFieldFracture`.

    Per accepted step: ``displacement`` (load factor δ, m), ``force`` (reaction conjugate to δ, N/m
    per unit thickness), ``elastic_energy`` and ``surface_energy`` (J/m), ``iterations`` (alternate
    minimisation), ``max_damage``, ``seconds`` (wall time of the step).  ``snapshots`` maps a step
    index to the nodal damage there (the steps named by ``snapshot_steps``, the peak and the last);
    ``nodes`` are the mesh vertices (2, n) and ``triangles`` (3, m), for plots.  ``rejected``
    counts steps redone with a smaller increment.
    """

    displacement: list = field(default_factory=list)
    force: list = field(default_factory=list)
    elastic_energy: list = field(default_factory=list)
    surface_energy: list = field(default_factory=list)
    iterations: list = field(default_factory=list)
    max_damage: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    snapshots: dict = field(default_factory=dict)
    nodes: Any = None
    triangles: Any = None
    rejected: int = 0
    info: dict = field(default_factory=dict)

    @property
    def peak_index(self) -> int:
        return int(np.argmax(self.force)) if self.force else -1

    @property
    def peak_force(self) -> float:
        return float(self.force[self.peak_index])

    @property
    def dissipated(self) -> float:
        return float(self.surface_energy[-1]) if self.surface_energy else 0.0

    def external_work(self) -> float:
        """``∫ F dδ`` along the path (trapezoid rule, from δ = 0, F = 0)."""
        x = np.concatenate([[0.0], self.displacement])
        f = np.concatenate([[0.0], self.force])
        return float(np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(x)))

    def to_state(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_state(cls, state: dict) -> "PhaseFieldResult":
        s = dict(state)
        s["snapshots"] = {int(k): np.asarray(v) for k, v in s.get("snapshots", {}).items()}
        return cls(**s)


class PhaseFieldFracture:
    """Plane-strain phase-field fracture (AT1/AT2) on a scikit-fem triangle mesh.

    Parameters
    ----------
    mesh : skfem.MeshTri
        Coordinates in m.
    stiffness : ElasticTensor or array_like
        An ``ElasticTensor`` (rotated into the model's frame by ``rotation``, made plane strain),
        a 6x6 Voigt matrix in Pa (same), or an in-plane plane-strain 3x3 matrix ``[xx, yy, xy]`` in Pa.
    Gc : float, SurfaceEnergy or Estimate
        Critical energy release rate in J/m²; a ``SurfaceEnergy`` (or an Estimate of γ) gives
        ``G_c = 2γ`` with its unit checked (:func:`~scaleladder.continuum.damage.critical_energy_release_rate`).
    ell : float
        Internal length ℓ (m, > 0); at least two of the smallest elements (refused otherwise),
        and a ``DomainWarning`` when damage reaches elements larger than ``ℓ/2``.
    model : {"AT1", "AT2"}
    split : {"voldev", "spectral", "none"}
    fixed : dict
        ``{"x"|"y": boolean function of (x, y) arrays}``: vertices where that displacement is 0.
    loaded : dict
        ``{"x"|"y": (boolean function of (x, y), sign)}``: vertices where that displacement equals
        ``sign * δ``; the reported force is ``Σ sign · reaction`` over them, conjugate to δ.
    macro_strain : array_like of 3, optional
        Periodic boundary conditions instead of ``fixed``/``loaded``: the mesh is a periodic cell
        (a box with matching vertices on opposite sides) under the macroscopic strain
        ``δ · E`` (``E`` in Voigt ``[xx, yy, γ_xy]``); displacement fluctuation and damage are
        periodic, and the force conjugate to δ is ``|Ω| Σ : E`` (``Σ`` the volume-averaged
        stress).  The scale-separation rule ℓ ≪ L of a softening RVE is checked
        (:func:`rve_scale_separation`).
    initial_crack : callable, optional
        Boolean function of vertex coordinates: vertices with ``d = 1`` from the start (a crack of
        damage; its optimal profile develops in the first step).
    solver : {"direct", "amg"}
        Sparse linear solver: SuperLU, or pyamg smoothed-aggregation-preconditioned CG.
    tol : float
        Alternate minimisation stops when ``max |Δd| < tol``.
    residual_stiffness : float
        ``k`` in ``g(d) = (1 − d)² + k``.
    """

    def __init__(self, mesh, stiffness: Any, Gc: Any, ell: float, *, model: str = "AT2",
                 split: str = "voldev", fixed: dict | None = None, loaded: dict | None = None,
                 initial_crack: Callable | None = None, rotation: Any = None,
                 macro_strain: Any = None, solver: str = "direct", tol: float = 1e-4, max_iter: int = 300,
                 residual_stiffness: float = 1e-6, newton_tol: float = 1e-8):
        from skfem import Basis, ElementTriP1, ElementVector, MeshTri

        if not isinstance(mesh, MeshTri):
            raise InputError("mesh", type(mesh).__name__, "a scikit-fem MeshTri (coordinates in m)")
        self.model = _v.one_of("model", model, MODELS)
        self.split = _v.one_of("split", split, SPLITS)
        self.solver = _v.one_of("solver", solver, ("direct", "amg"))
        self.C = _plane_stiffness(stiffness, rotation)
        if self.split == "spectral":
            _isotropic_lame(self.C)
        self.Gc = _toughness(Gc)
        ell = _v.finite("ell", ell)
        if ell <= 0:
            raise InputError("ell", ell, "a positive internal length (m)")
        self.mesh = mesh
        area = mesh_areas(mesh)
        self.h_el = np.sqrt(2.0 * area)
        hmin = float(self.h_el.min())
        if ell < 2 * hmin:
            raise InputError("ell", ell, f"an internal length of at least two elements (smallest "
                             f"h = {hmin:.4g} m: ell >= {2 * hmin:.4g} m); the damage band would not "
                             "be resolved", hint="refine the mesh or raise ell")
        self.ell = ell
        self.tol = _v.positive("tol", tol)
        self.max_iter = _v.positive_int("max_iter", max_iter)
        self.k = _v.in_range("residual_stiffness", residual_stiffness, 0.0, 1e-2)
        self.newton_tol = _v.positive("newton_tol", newton_tol)
        self.ub = Basis(mesh, ElementVector(ElementTriP1()), intorder=2)
        self.db = Basis(mesh, ElementTriP1(), intorder=2)
        self._precompute()
        self._Pu = self._Pd = None
        if macro_strain is None:
            self._boundary(fixed or {}, loaded or {})
        else:
            if fixed or loaded:
                raise InputError("macro_strain", macro_strain, "either periodic loading by a "
                                 "macroscopic strain or fixed/loaded boundaries, not both")
            self._periodic(macro_strain)
        self.u = np.zeros(self.ub.N)
        self._u_at = 0.0                    # the δ at which self.u was computed
        self.d = np.zeros(self.db.N)
        if initial_crack is not None:
            x, y = mesh.p
            self.d[np.asarray(initial_crack(x, y), dtype=bool)] = 1.0
            if self._Pd is not None:        # a periodic crack: damage on one image is on all
                self.d = np.asarray(self._Pd @ (self._Pd.T @ self.d > 0), dtype=float)
        self.d_floor = self.d.copy()        # irreversibility bound (committed damage)
        self.delta = 0.0
        self.irreversible = True

    # -- set-up -------------------------------------------------------------------------------
    def _precompute(self):
        from skfem import BilinearForm, LinearForm
        from skfem.helpers import dot, grad

        from ._p1 import block_pattern, strain_operator

        ub, db = self.ub, self.db
        self.B, self.area = strain_operator(ub)       # P1 gradients are constant per element
        self.wq = ub.dx                               # (nel, nq) quadrature weights
        self.phi_q = np.stack([np.asarray(db.basis[i][0]) for i in range(db.Nbfun)])   # (3, nel, nq)
        self.u_dofs = ub.element_dofs                 # (6, nel)
        self.d_dofs = db.element_dofs                 # (3, nel)
        self._urows, self._ucols = block_pattern(self.u_dofs, self.u_dofs)
        self._drows, self._dcols = block_pattern(self.d_dofs, self.d_dofs)

        @BilinearForm
        def lap(u, v, w):
            return dot(grad(u), grad(v))

        @LinearForm
        def one(v, w):
            return v

        self.K_lap = lap.assemble(db).tocsr()
        self.f_one = one.assemble(db)

    def _boundary(self, fixed: dict, loaded: dict):
        x, y = self.mesh.p
        comp = {"x": 0, "y": 1}
        dofs, vals = [], []
        for key, fn in fixed.items():
            c = comp.get(key)
            if c is None:
                raise InputError("fixed", key, "'x' or 'y'")
            nodes = np.flatnonzero(np.asarray(fn(x, y), dtype=bool))
            dofs.append(self.ub.nodal_dofs[c, nodes])
            vals.append(np.zeros(nodes.size))
        for key, spec in loaded.items():
            c = comp.get(key)
            if c is None:
                raise InputError("loaded", key, "'x' or 'y'")
            fn, sign = spec
            nodes = np.flatnonzero(np.asarray(fn(x, y), dtype=bool))
            dofs.append(self.ub.nodal_dofs[c, nodes])
            vals.append(np.full(nodes.size, float(sign)))
        if not dofs:
            raise InputError("loaded", loaded, "prescribed displacements (fixed and loaded vertices)")
        D = np.concatenate(dofs)
        unit = np.concatenate(vals)
        D, idx = np.unique(D, return_index=True)
        self.D, self.unit = D, unit[idx]
        if not np.any(self.unit):
            raise InputError("loaded", loaded, "at least one loaded vertex (a function selecting "
                             "boundary vertices and a sign)")
        self.free = np.setdiff1d(np.arange(self.ub.N), D)
        # rigid-body modes (two translations, the rotation) on the free dofs: AMG's near-nullspace
        rbm = np.zeros((self.ub.N, 3))
        rbm[self.ub.nodal_dofs[0], 0] = 1.0
        rbm[self.ub.nodal_dofs[1], 1] = 1.0
        span = float(max(np.ptp(x), np.ptp(y)))
        rbm[self.ub.nodal_dofs[0], 2] = -(y - y.mean()) / span
        rbm[self.ub.nodal_dofs[1], 2] = (x - x.mean()) / span
        self._rbm = rbm[self.free]

    def _periodic(self, macro_strain):
        """Periodic cell under ``δ·E``: ``u = δ g + P w`` with ``g = E·x`` and ``w`` the periodic
        fluctuation (one vertex class held, which removes the rigid translations); ``d = P_d d_r``."""
        from .rve import periodic_node_map

        E = _v.finite_array("macro_strain", macro_strain, (3,))
        if not np.any(E):
            raise InputError("macro_strain", macro_strain,
                             "a non-zero Voigt strain direction [xx, yy, γ_xy] (3 numbers)")
        p = self.mesh.p
        lo, hi = p.min(axis=1), p.max(axis=1)
        span = hi - lo
        bnodes = self.mesh.boundary_nodes()
        on_side = np.zeros(bnodes.size, dtype=bool)
        for k in range(2):
            x = p[k, bnodes]
            on_side |= (np.abs(x - lo[k]) <= 1e-9 * span[k]) | (np.abs(x - hi[k]) <= 1e-9 * span[k])
        if not on_side.all():
            j = int(bnodes[np.flatnonzero(~on_side)[0]])
            raise InputError("mesh", f"boundary vertex {j} at {p[:, j].tolist()}",
                             "a periodic cell: a rectangle without holes cut through its sides "
                             "(every boundary vertex on a side)")
        pnode, n_cls = periodic_node_map(p, lo, hi, tol=1e-8 * float(span.max()))
        n = p.shape[1]
        self.cell = (float(span[0]), float(span[1]))
        self.macro_strain = E
        rve_scale_separation(self.ell, min(self.cell), self.model)
        self._Pd = sp.csr_matrix((np.ones(n), (np.arange(n), pnode)), shape=(n, n_cls))
        self._rep = np.zeros(n_cls, dtype=int)                  # a vertex of each class
        self._rep[pnode] = np.arange(n)
        keep = np.flatnonzero(np.arange(n_cls) != pnode[0])     # hold vertex 0's class
        col = -np.ones(n_cls, dtype=int)
        col[keep] = np.arange(keep.size)
        rows = self.ub.nodal_dofs.T.ravel()
        cols = (2 * col[pnode][:, None] + np.arange(2)[None, :]).ravel()
        ok = np.repeat(col[pnode] >= 0, 2)
        self._Pu = sp.csr_matrix((np.ones(int(ok.sum())), (rows[ok], cols[ok])),
                                 shape=(self.ub.N, 2 * keep.size))
        x, y = p - lo[:, None]
        g = np.zeros(self.ub.N)
        g[self.ub.nodal_dofs[0]] = E[0] * x + 0.5 * E[2] * y
        g[self.ub.nodal_dofs[1]] = 0.5 * E[2] * x + E[1] * y
        self._g = g
        # the two translations: AMG's near-nullspace of the fluctuation (held at one vertex only)
        self._rbm = np.zeros((self._Pu.shape[1], 2))
        self._rbm[0::2, 0] = 1.0
        self._rbm[1::2, 1] = 1.0

    # -- fields -------------------------------------------------------------------------------
    def strains(self, u: np.ndarray | None = None) -> np.ndarray:
        """Element strains (nel, 3), Voigt ``[xx, yy, γ_xy]``."""
        u = self.u if u is None else u
        return np.einsum("aie,ie->ea", self.B, u[self.u_dofs])

    def _dq(self, d=None):
        d = self.d if d is None else d
        return np.einsum("ieq,ie->eq", self.phi_q, d[self.d_dofs])

    def _gbar(self, d=None):
        """Vertex-quadrature degradation per element, ``Σ_vertices g(d)/3`` (see ``_d_matrices``)."""
        d = self.d if d is None else d
        return ((1.0 - d[self.d_dofs]) ** 2 + self.k).mean(axis=0)

    def _solve(self, A, b, near_null=None):
        """SPD solve: SuperLU, or pyamg SA-AMG + CG (``near_null``: the near-nullspace vectors
        of the aggregation — the rigid-body modes for the displacement problem)."""
        if self.solver == "direct" or A.shape[0] < 200:
            from scipy.sparse.linalg import splu

            # symmetric-mode SuperLU with a minimum-degree ordering of A + Aᵀ: ~1.7x faster
            # than the default COLAMD on these SPD systems
            return splu(A.tocsc(), permc_spec="MMD_AT_PLUS_A",
                        options={"SymmetricMode": True}).solve(b)
        import pyamg

        ml = pyamg.smoothed_aggregation_solver(A.tocsr(), B=near_null)
        x = ml.solve(b, tol=1e-10, accel="cg", maxiter=500)
        return x

    # -- the two sub-problems -----------------------------------------------------------------
    def _u_step(self, delta: float) -> int:
        gbar = self._gbar()
        if self._Pu is None:
            u = self.u.copy()
            u[self.D] = delta * self.unit
        else:
            u = self.u + (delta - self._u_at) * self._g
        for it in range(1, 31):
            eps = self.strains(u)
            _, _, sp_, sm, Dp, Dm = elastic_split(eps, self.C, self.split)
            sig = gbar[:, None] * sp_ + sm
            Dt = gbar[:, None, None] * Dp + Dm
            fe = np.einsum("aie,ea,e->ie", self.B, sig, self.area)
            R = np.bincount(self.u_dofs.ravel(), fe.ravel(), minlength=self.ub.N)
            Rf = R[self.free] if self._Pu is None else self._Pu.T @ R
            scale = max(float(np.abs(fe).max()), 1e-300)       # element force scale
            if it > 1 and (np.abs(Rf).max() <= self.newton_tol * scale or np.abs(Rf).max() == 0):
                break
            DB = np.einsum("eab,bje->aje", Dt * self.area[:, None, None], self.B)
            ke = np.einsum("aie,aje->ije", self.B, DB)
            K = sp.coo_matrix((ke.ravel(), (self._urows, self._ucols)),
                              shape=(self.ub.N, self.ub.N)).tocsr()
            if self._Pu is None:
                du = self._solve(K[self.free][:, self.free], -Rf, near_null=self._rbm)
                u[self.free] += du      # (linear for split "none": the next pass finds R = 0)
            else:
                Kr = (self._Pu.T @ K @ self._Pu).tocsr()
                u += self._Pu @ self._solve(Kr, -Rf, near_null=self._rbm)
        else:
            raise ConvergenceError(f"displacement Newton: residual {np.abs(Rf).max():.3g} after 30 "
                                   f"iterations at δ = {delta:g}", suggestion="smaller load steps")
        self.u = u
        self._u_at = delta
        self._reaction = R
        return it

    def _psi_plus(self):
        eps = self.strains()
        pp, *_ = elastic_split(eps, self.C, self.split)
        return pp

    def _d_matrices(self):
        """``A``, ``b`` of the damage energy at fixed u.  The local terms (``g(d) ψ⁺`` and AT2's
        ``d²``) are integrated with the vertex rule (lumped mass): ``A`` is then the P1 Laplacian
        plus a non-negative diagonal, an M-matrix on a non-obtuse mesh, for which the active-set
        iteration converges monotonically and AT2's damage obeys a discrete maximum principle.
        The displacement step integrates ``g(d) ψ⁺`` with the same rule, so both sub-problems
        minimise one discrete energy."""
        cw = _CW[self.model]
        Gc, ell = self.Gc, self.ell
        pp = self._psi_plus()
        q = np.bincount(self.d_dofs.ravel(), np.tile(2.0 * pp * self.area / 3.0, 3),
                        minlength=self.db.N)
        diag = q.copy()
        b = q.copy()
        if self.model == "AT2":
            diag += (2.0 * Gc / (cw * ell)) * self.f_one
        else:
            b -= (Gc / (cw * ell)) * self.f_one
        A = (2.0 * Gc * ell / cw) * self.K_lap + sp.diags(diag)
        return A.tocsr(), b

    def _d_step(self, lower: np.ndarray) -> np.ndarray:
        """``min ½dᵀAd − bᵀd`` on ``lower ≤ d ≤ 1``: primal–dual active set (for a periodic
        cell, on the periodic damage ``d = P_d d_r``)."""
        A, b = self._d_matrices()
        if self._Pd is None:
            return self._bounded_qp(A, b, self.d, lower)
        P = self._Pd
        dr = self._bounded_qp((P.T @ A @ P).tocsr(), P.T @ b, self.d[self._rep], lower[self._rep])
        return P @ dr

    def _bounded_qp(self, A, b, d0, lower):
        upper = np.ones_like(lower)
        pinned = lower >= upper       # fully broken: d = 1 is the only admissible value
        d = np.clip(d0, lower, upper)
        lam = A @ d - b
        c = 1.0
        act_lo = act_hi = None
        for _ in range(60):
            lo = (lam - c * (d - lower) > 0) & ~pinned            # gradient pushes below the bound
            hi = ((lam + c * (upper - d) < 0) | pinned) & ~lo
            if act_lo is not None and np.array_equal(lo, act_lo) and np.array_equal(hi, act_hi):
                break
            act_lo, act_hi = lo, hi
            d = np.where(lo, lower, np.where(hi, upper, d))
            inact = np.flatnonzero(~(lo | hi))
            fixed = np.flatnonzero(lo | hi)
            if inact.size:
                rhs = b[inact] - A[inact][:, fixed] @ d[fixed]
                d[inact] = self._solve(A[inact][:, inact], rhs)
            lam = A @ d - b
            lam[inact] = 0.0
        else:
            return self._d_step_lbfgsb(A, b, d0, lower, upper)
        return np.clip(d, lower, upper)

    def _d_step_lbfgsb(self, A, b, d0, lower, upper):
        """Fallback when the active set cycles (a mesh with obtuse triangles): L-BFGS-B."""
        from scipy.optimize import minimize

        def fun(d):
            Ad = A @ d
            return 0.5 * d @ Ad - b @ d, Ad - b

        res = minimize(fun, np.clip(d0, lower, upper), jac=True, method="L-BFGS-B",
                       bounds=np.stack([lower, upper], axis=1),
                       options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 20000})
        return np.clip(res.x, lower, upper)

    # -- energies -----------------------------------------------------------------------------
    def energies(self) -> tuple[float, float]:
        """(elastic, surface) energy of the current state (J/m per unit thickness)."""
        eps = self.strains()
        pp, pm, *_ = elastic_split(eps, self.C, self.split)
        el = float(np.sum((self._gbar() * pp + pm) * self.area))
        cw = _CW[self.model]
        wd = float(self.f_one @ (self.d ** 2 if self.model == "AT2" else self.d))   # lumped
        su = self.Gc / cw * (wd / self.ell + self.ell * float(self.d @ (self.K_lap @ self.d)))
        return el, float(su)

    def force(self) -> float:
        """The reaction conjugate to δ (N/m): ``Σ sign · R`` over the loaded dofs; for a periodic
        cell ``R · ∂u/∂δ = |Ω| Σ : E`` (``Σ`` the average stress, Pa; ``|Ω|`` the cell area)."""
        if self._Pu is not None:
            return float(self._reaction @ self._g)
        return float(self._reaction[self.D] @ self.unit)

    def macro_stress(self) -> np.ndarray:
        """Volume-averaged stress ``Σ`` (Pa, Voigt ``[xx, yy, xy]``) of the current state — for a
        periodic cell the homogenised stress (Hill–Mandel: ``Σ : δE = δℰ/|Ω|``)."""
        eps = self.strains()
        _, _, sp_, sm, _, _ = elastic_split(eps, self.C, self.split)
        sig = self._gbar()[:, None] * sp_ + sm
        return (sig * self.area[:, None]).sum(axis=0) / float(self.area.sum())

    # -- one load step ------------------------------------------------------------------------
    def step(self, delta: float, abort_growth: float | None = None) -> int:
        """Alternate minimisation at load factor ``delta``; returns the iterations, or ``-1`` when
        ``abort_growth`` is given and the damage has already grown by more than that somewhere
        (the caller will redo the step smaller; no point converging it)."""
        delta = float(delta)
        if not self.irreversible and abs(delta) < abs(self.delta) and np.any(self.d > 0):
            raise InputError("irreversible", False, "True when unloading a damaged body (without "
                             "irreversibility the damage would heal on unloading)")
        lower = self.d_floor if self.irreversible else np.zeros_like(self.d)
        it = alternate_minimisation(self, delta, lower, abort_growth=abort_growth)
        if it < 0:
            return -1
        self._u_step(delta)
        self.delta = delta
        if self.irreversible:
            self.d_floor = self.d.copy()
        return it

    def _state(self):
        return self.u.copy(), self.d.copy(), self.d_floor.copy(), self.delta

    def _restore(self, s):
        self.u, self.d, self.d_floor, self.delta = (s[0].copy(), s[1].copy(), s[2].copy(), s[3])
        self._u_at = self.delta

    def run(self, delta_max: float, n_steps: int = 20, *, irreversible: bool = True,
            max_damage_increment: float = 0.2, min_step: float | None = None,
            stop_force_fraction: float | None = None, stop_at_instability: bool = False,
            snapshot_steps=(), progress: bool = False, schedule=None) -> PhaseFieldResult:
        """Load from the current δ to ``delta_max`` in steps of ``delta_max / n_steps``, adapted.

        A step whose damage grows somewhere by more than ``max_damage_increment`` is redone with
        half the increment, down to ``min_step`` (default ``delta_max / (n_steps · 64)``), where it
        is accepted (brutal propagation); after an easy step the increment grows by 1.5 (capped at
        the initial one).  ``stop_force_fraction``: stop once the force has fallen below this
        fraction of the peak (the crack has run).  ``stop_at_instability``: stop when the damage
        still jumps at the smallest increment (unstable propagation under displacement control:
        the last converged step is the peak; the jump is not converged, ``info["unstable_at"]``
        records its δ) — what a critical load needs, at a fraction of the cost of running the
        crack through.  ``schedule``: an explicit sequence of δ instead (no adaptation; may unload).
        """
        self.irreversible = bool(irreversible)
        res = PhaseFieldResult(nodes=self.mesh.p.copy(), triangles=self.mesh.t.copy())
        res.info = {"model": self.model, "split": self.split, "ell_m": self.ell, "Gc_J_per_m2": self.Gc,
                    "h_min_m": float(self.h_el.min()), "nodes": int(self.mesh.p.shape[1]),
                    "solver": self.solver}
        snaps = {int(s) for s in snapshot_steps}
        if self.delta == 0.0 and np.any(self.d > 0):
            # develop the initial crack's optimal profile at zero load
            self.step(0.0)

        def record(it, t0):
            el, su = self.energies()
            res.displacement.append(self.delta)
            res.force.append(self.force())
            res.elastic_energy.append(el)
            res.surface_energy.append(su)
            res.iterations.append(it)
            res.max_damage.append(float(self.d.max()))
            res.seconds.append(time.perf_counter() - t0)
            k = len(res.force) - 1
            if k in snaps:
                res.snapshots[k] = self.d.copy()
            if progress:
                print(f"  step {k:3d}  δ = {self.delta:.4e}  F = {res.force[-1]:.4e}  "
                      f"iters {it:3d}  max d {res.max_damage[-1]:.3f}", flush=True)

        if schedule is not None:
            for delta in schedule:
                t0 = time.perf_counter()
                it = self.step(float(delta))
                record(it, t0)
        else:
            dmax = _v.finite("delta_max", delta_max)
            n_steps = _v.positive_int("n_steps", n_steps)
            if abs(dmax) <= abs(self.delta):
                raise InputError("delta_max", delta_max, f"a load beyond the current δ = {self.delta:g}")
            d0 = (dmax - self.delta) / n_steps
            hmin = abs(d0) / 64 if min_step is None else _v.positive("min_step", min_step)
            inc = d0
            peak = 0.0
            while (dmax - self.delta) * np.sign(d0) > 1e-12 * abs(dmax):
                inc_now = inc if abs(inc) < abs(dmax - self.delta) else dmax - self.delta
                saved = self._state()
                t0 = time.perf_counter()
                can_halve = abs(inc_now) > hmin * 1.0001
                it = self.step(self.delta + inc_now,
                               abort_growth=max_damage_increment
                               if (can_halve or stop_at_instability) else None)
                grow = float(np.max(self.d - saved[1]))
                if (stop_at_instability and not can_halve and grow > max_damage_increment):
                    # the damage jumps at the smallest increment: unstable propagation; the peak
                    # is the last converged step, and the jump itself is not converged
                    self._restore(saved)
                    res.info["unstable_at"] = float(saved[3] + inc_now)
                    break
                if it < 0 or (grow > max_damage_increment and can_halve):
                    self._restore(saved)
                    inc = inc_now / 2
                    res.rejected += 1
                    continue
                record(it, t0)
                if grow < 0.25 * max_damage_increment and it < 10:
                    inc = np.sign(d0) * min(abs(inc) * 1.5, abs(d0))
                peak = max(peak, res.force[-1])
                if stop_force_fraction is not None and res.force[-1] < stop_force_fraction * peak:
                    break
        k = res.peak_index
        res.info["peak_step"] = k
        res.snapshots[len(res.force) - 1] = self.d.copy()
        self._check_resolution()
        return res

    def _check_resolution(self):
        de = self.d[self.mesh.t].max(axis=0)
        coarse = (de > 0.5) & (self.h_el > 0.5 * self.ell * 1.01)
        if np.any(coarse):
            warnings.warn(f"ell = {self.ell:.4g} m: damage reached {int(coarse.sum())} elements larger "
                          f"than ell/2 (up to {self.h_el[coarse].max():.4g} m); the band is not "
                          "resolved there — refine the mesh where the crack runs", DomainWarning,
                          stacklevel=3)


def mesh_areas(mesh) -> np.ndarray:
    p, t = mesh.p, mesh.t
    a = p[:, t[1]] - p[:, t[0]]
    b = p[:, t[2]] - p[:, t[0]]
    return 0.5 * np.abs(a[0] * b[1] - a[1] * b[0])


def _plane_stiffness(stiffness: Any, rotation: Any) -> np.ndarray:
    from .fracture import _check_c2d, plane_strain_stiffness

    if hasattr(stiffness, "to_pa") and hasattr(stiffness, "voigt"):
        return plane_strain_stiffness(stiffness, rotation)
    arr = np.asarray(stiffness, dtype=float)
    if arr.shape == (6, 6):
        return plane_strain_stiffness(arr, rotation)
    if arr.shape == (3, 3):
        if rotation is not None:
            raise InputError("rotation", "given with a 3x3 stiffness",
                             "no rotation (a 3x3 plane-strain stiffness is already in the model frame)")
        c = _check_c2d("stiffness", arr)
        if float(np.max(np.abs(c))) < 1e5:
            warnings.warn(f"stiffness: largest entry {np.max(np.abs(c)):.4g} looks like GPa; the "
                          "phase-field model works in Pa", DomainWarning, stacklevel=3)
        return c
    raise InputError("stiffness", f"array of shape {arr.shape}",
                     "an ElasticTensor, a 6x6 Voigt stiffness or a 3x3 plane-strain stiffness (Pa)")


def _toughness(Gc: Any) -> float:
    from ..handoffs import SurfaceEnergy
    from ..uq import Estimate
    from .damage import critical_energy_release_rate

    if isinstance(Gc, SurfaceEnergy):
        return float(critical_energy_release_rate(Gc).value)
    if isinstance(Gc, Estimate):
        return _gc_estimate(Gc)
    return _v.positive("Gc", Gc)


def _gc_estimate(est) -> float:
    from ..core import units as _units
    from ..core.errors import UnitError

    if not _units.same_dimension(est.unit, "J/m^2"):
        raise UnitError("Gc.unit", est.unit, "an energy per area (J/m^2): a critical energy release "
                        "rate (pass a SurfaceEnergy for G_c = 2γ)")
    return float(est.to("J/m^2").value)


# --------------------------------------------------------------------------------------------
# specimens
# --------------------------------------------------------------------------------------------
def _homogeneous_critical_energy(model: str, Gc: float, ell: float) -> float:
    """Undamaged energy density ``ψ_c`` of the homogeneous solution at AT1's elastic limit
    (``3G_c/(16ℓ)``: damage starts where ``2ψ`` exceeds the well's slope ``3G_c/(8ℓ)``) or at
    AT2's peak stress (``G_c/(6ℓ)``): the phase-field strength in energy form, valid for any
    stiffness (under uniaxial stress ``σ_c = √(2 E_dir ψ_c)``: ``√(3EG_c/(8ℓ))`` and
    ``(9/16)√(EG_c/(3ℓ))`` at the peak's undamaged strain)."""
    return 3.0 * Gc / (16.0 * ell) if model == "AT1" else Gc / (6.0 * ell)


def centre_cracked_plate(stiffness: Any, Gc: Any, *, half_crack: float, half_width: float,
                         half_height: float, ell: float, h: float, model: str = "AT1",
                         split: str = "voldev", rotation: Any = None, n_steps: int = 40,
                         solver: str = "direct",
                         progress: bool = False) -> dict:
    """A centre-cracked plate ``[-W, W] × [-H, H]`` pulled by its edges ``y = ±H`` (rigid grips),
    the crack ``|x| ≤ a`` on ``y = 0`` given as damage ``d = 1``; loaded until it propagates
    unstably (``stop_at_instability``: the peak is the last converged step).  The initial crack is ``d = 1`` on the
    vertices within ``h`` of the crack line, so that two rows of elements are fully broken: with
    ``d = 1`` on one row of vertices only, every P1 element across the crack keeps a vertex with
    ``d < 1`` and bridges the faces (it stiffened this plate's crack by a factor of ~6 in
    compliance and put the peak stress 2.5x above LEFM).  Element size ``h`` in the box
    ``|x| ≤ 1.6a``, ``|y| ≤ 3ℓ``.

    Returns a dict: ``sigma_peak`` (remote stress at the peak force, Pa), ``result``
    (:class:`PhaseFieldResult`), ``Gc``, ``Gc_eff`` (:func:`effective_toughness`), ``ell``, ``h``,
    ``geometry``, ``profile`` (damage across the crack at ``x = 0`` after the initial profile
    formed: ``y``, ``d``).
    """
    a = _v.positive("half_crack", half_crack)
    W = _v.positive("half_width", half_width)
    H = _v.positive("half_height", half_height)
    if a >= W:
        raise InputError("half_crack", a, f"a crack shorter than the plate (a < W = {W:g} m)")
    ell = _v.positive("ell", ell)
    h = _v.positive("h", h)
    mesh = band_mesh(W, H, h, fine_half_width=min(1.6 * a, W), band_half_height=min(3 * ell, H),
                     growth=1.25)
    tol = 1e-9 * W
    pf = PhaseFieldFracture(
        mesh, stiffness, Gc, ell, model=model, split=split, rotation=rotation, solver=solver,
        fixed={"y": lambda x, y: y < -H + tol, "x": lambda x, y: (y < -H + tol) & (np.abs(x) < tol)},
        loaded={"y": (lambda x, y: y > H - tol, 1.0)},
        initial_crack=lambda x, y: (np.abs(y) <= 1.01 * h) & (np.abs(x) <= a + tol), tol=1e-3,
        max_iter=5000)
    pf.step(0.0)                                   # the crack's optimal profile at zero load
    on_axis = np.flatnonzero(np.abs(mesh.p[0]) < tol)
    order = np.argsort(mesh.p[1, on_axis])
    profile = {"y": mesh.p[1, on_axis][order], "d": pf.d[on_axis][order]}
    # load range: the strain at which an uncracked plate would reach the phase-field strength
    Ed = 1.0 / np.linalg.inv(pf.C)[1, 1]
    eps_s = math.sqrt(2.0 * _homogeneous_critical_energy(model, pf.Gc, ell) / Ed)
    res = pf.run(2 * H * eps_s, n_steps, stop_at_instability=True, progress=progress)
    return {"sigma_peak": res.peak_force / (2 * W), "result": res, "Gc": pf.Gc,
            "Gc_eff": effective_toughness(pf.Gc, h, ell, model), "ell": ell, "h": h,
            "model": model, "split": split, "profile": profile,
            "geometry": {"a_m": a, "W_m": W, "H_m": H, "nodes": int(mesh.p.shape[1])}}


def holed_plate_mesh(half_width: float, radius: float, h: float, *, ring: float,
                     n_outer: int = 20):
    """An O-grid triangle mesh of the square ``[-W, W]²`` with a central hole of ``radius``:
    element size ``h`` (radially) and ``≈ h`` (around) in the ring ``R ≤ r ≤ R + ring``, graded
    towards the outer edges beyond it."""
    from skfem import MeshTri

    W = _v.positive("half_width", half_width)
    R = _v.positive("radius", radius)
    h = _v.positive("h", h)
    ring = _v.positive("ring", ring)
    if R + ring >= 0.8 * W:
        raise InputError("radius", R, f"a hole whose refined ring ends well inside the plate "
                         f"(R + ring < {0.8 * W:g} m)")
    nt = int(math.ceil(2 * math.pi * R / h / 8.0)) * 8
    th = 2 * math.pi * np.arange(nt) / nt - math.pi / 2       # a ray at -90°: (0, -W)
    nr = max(1, int(round(ring / h)))
    r_in = R + ring * np.arange(nr + 1) / nr
    span = W - (R + ring)
    p_exp = math.log(1.5 * h / span) / math.log(1.0 / n_outer)
    q = (np.arange(1, n_outer + 1) / n_outer) ** max(p_exp, 1.0)
    c, s = np.cos(th), np.sin(th)
    far = W / np.maximum(np.abs(c), np.abs(s))
    rr = np.concatenate([np.repeat(r_in[:, None], nt, axis=1),
                         (R + ring) + (far[None, :] - (R + ring)) * q[:, None]])   # (nrad, nt)
    x, y = rr * c[None, :], rr * s[None, :]
    nrad = rr.shape[0]
    idx = np.arange(nrad * nt).reshape(nrad, nt)
    a_ = idx[:-1, :]
    b_ = np.roll(idx[:-1, :], -1, axis=1)
    c_ = np.roll(idx[1:, :], -1, axis=1)
    d_ = idx[1:, :]
    tri = np.concatenate([np.stack([a_, b_, c_]).reshape(3, -1),
                          np.stack([a_, c_, d_]).reshape(3, -1)], axis=1)
    return MeshTri(np.stack([x.ravel(), y.ravel()]), tri)


def notched_plate(stiffness: Any, Gc: Any, *, radius: float, half_width: float, ell: float,
                  h: float, model: str = "AT1", split: str = "voldev", rotation: Any = None,
                  n_steps: int = 30, solver: str = "direct",
                  progress: bool = False) -> dict:
    """Crack nucleation at a circular hole (no pre-crack: LEFM has nothing to say) in the plate
    ``[-W, W]²`` pulled by its edges ``y = ±W``.

    The phase-field strength relation predicts nucleation where the elastic energy density at
    the hole's edge reaches the homogeneous critical value ``ψ_c`` (AT1 ``3G_c/(16ℓ)``, AT2
    ``G_c/(6ℓ)``): ``σ_strength = σ(1)·√(ψ_c/ψ_max(1))`` from the undamaged elastic solution
    at unit load.  Returns ``sigma_peak`` and ``sigma_strength`` (remote stresses, Pa), their
    ratio, the stress concentration ``kt`` (hole-edge σ_yy over remote, elastic), the result.
    """
    pf, info = notch_model(stiffness, Gc, radius=radius, half_width=half_width, ell=ell, h=h,
                           model=model, split=split, rotation=rotation, solver=solver)
    R, W = info["R_m"], info["W_m"]
    sig_strength, kt, delta_strength = info["sigma_strength"], info["kt"], info["delta_strength"]
    res = pf.run(2.0 * delta_strength, n_steps, stop_at_instability=True, progress=progress)
    sp_ = res.peak_force / (2 * W)
    return {"sigma_peak": sp_, "sigma_strength": sig_strength, "ratio": sp_ / sig_strength,
            "kt": kt, "result": res, "Gc": pf.Gc, "ell": ell, "h": h, "model": model,
            "geometry": {"R_m": R, "W_m": W, "nodes": int(pf.mesh.p.shape[1])}}


def notch_model(stiffness: Any, Gc: Any, *, radius: float, half_width: float, ell: float,
                h: float, model: str = "AT1", split: str = "voldev", rotation: Any = None,
                solver: str = "direct"):
    """The holed plate of :func:`notched_plate` and its strength prediction, unloaded:
    ``(PhaseFieldFracture, info)`` with ``info`` = ``sigma_strength`` (Pa), ``delta_strength``
    (the grip displacement there, m), ``kt``, ``R_m``, ``W_m``."""
    R = _v.positive("radius", radius)
    W = _v.positive("half_width", half_width)
    ell = _v.positive("ell", ell)
    mesh = holed_plate_mesh(W, R, h, ring=min(4 * ell, 0.5 * R + 2 * ell))
    tol = 1e-9 * W
    pf = PhaseFieldFracture(
        mesh, stiffness, Gc, ell, model=model, split=split, rotation=rotation, solver=solver,
        fixed={"y": lambda x, y: y < -W + tol, "x": lambda x, y: (y < -W + tol) & (np.abs(x) < tol)},
        loaded={"y": (lambda x, y: y > W - tol, 1.0)}, tol=1e-3, max_iter=5000)
    # the elastic solution at unit δ (d = 0): remote stress and the largest energy density
    pf._u_step(1.0)
    s1 = pf.force() / (2 * W)
    # the discrete threshold: AT1's damage starts at a vertex where the area-weighted mean of ψ⁺
    # over its elements (the lumped driving force) reaches ψ_c
    pp = pf._psi_plus()
    nodal = np.bincount(pf.d_dofs.ravel(), np.tile(pp * pf.area / 3.0, 3), minlength=pf.db.N)
    pmax = float(np.max(nodal / pf.f_one))
    psi_c = _homogeneous_critical_energy(pf.model, pf.Gc, ell)
    delta_strength = math.sqrt(psi_c / pmax)
    kt = float((pf.strains() @ pf.C.T)[:, 1].max()) / s1
    pf.u[:] = 0.0
    return pf, {"sigma_strength": s1 * delta_strength, "delta_strength": delta_strength,
                "kt": kt, "R_m": R, "W_m": W}


def cracked_cell(stiffness: Any, Gc: Any, *, size: float, half_crack: float, ell: float, h: float,
                 model: str = "AT2", split: str = "voldev", rotation: Any = None,
                 n_steps: int = 30, solver: str = "direct", stop_force_fraction: float = 0.02,
                 progress: bool = False) -> dict:
    """A square periodic cell ``L × L`` with a centre crack ``|x| ≤ a`` on ``y = 0`` (damage
    ``d = 1`` within ``h`` of the line, as in :func:`centre_cracked_plate`), pulled by the
    macroscopic strain ``δ·e_yy`` until the crack has run through the cell (force below
    ``stop_force_fraction`` of the peak): a softening RVE.  Element size ``h`` in the band
    ``|y| ≤ 3ℓ`` (all of ``x``), geometric growth outside.

    Returns a dict: ``result`` (:class:`PhaseFieldResult`; its force is ``L² Σ_yy`` in N/m),
    ``stress`` and ``strain`` (the homogenised ``Σ_yy`` in Pa against ``δ``), ``peak_stress``,
    ``dissipation_per_area`` (J/m³: the surface energy gained from the start, per cell area),
    ``band_energy`` (surface energy of the final state per unit crack length, J/m²), ``Gc_eff``
    (:func:`effective_toughness`), ``separation`` (:func:`rve_scale_separation`), ``size``.
    """
    L = _v.positive("size", size)
    a = _v.positive("half_crack", half_crack)
    if a >= L / 2:
        raise InputError("half_crack", a, f"a crack shorter than the cell (a < L/2 = {L / 2:g} m)")
    ell = _v.positive("ell", ell)
    h = _v.positive("h", h)
    fraction = _v.in_range("stop_force_fraction", stop_force_fraction, 0.0, 0.5)
    W = L / 2
    mesh = band_mesh(W, W, h, band_half_height=min(3 * ell, W), growth=1.25)
    tol = 1e-9 * L
    pf = PhaseFieldFracture(mesh, stiffness, Gc, ell, model=model, split=split, rotation=rotation,
                            solver=solver, macro_strain=[0.0, 1.0, 0.0],
                            initial_crack=lambda x, y: (np.abs(y) <= 1.01 * h) & (np.abs(x) <= a + tol),
                            tol=1e-3, max_iter=5000)
    pf.step(0.0)
    _, s0 = pf.energies()
    Ed = 1.0 / np.linalg.inv(pf.C)[1, 1]
    eps_s = math.sqrt(2.0 * _homogeneous_critical_energy(model, pf.Gc, ell) / Ed)
    res = pf.run(2.0 * eps_s, n_steps, stop_force_fraction=fraction, progress=progress)
    area = L * L
    stress = np.asarray(res.force) / area
    if stress[-1] > fraction * stress.max() * 1.0001:
        raise ConvergenceError(f"cracked cell: the crack has not run through the cell by δ = "
                               f"{res.displacement[-1]:.4g} (stress still {stress[-1]:.4g} Pa)",
                               suggestion="a larger load range")
    _, s1 = pf.energies()
    return {"result": res, "strain": np.asarray(res.displacement), "stress": stress,
            "peak_stress": float(stress.max()), "dissipation_per_area": (s1 - s0) / area,
            "band_energy": s1 / L, "Gc": pf.Gc, "Gc_eff": effective_toughness(pf.Gc, h, ell, model),
            "separation": rve_scale_separation(ell, L, model, ratio=4.0), "size": L, "ell": ell,
            "h": h, "model": model, "nodes": int(mesh.p.shape[1])}
