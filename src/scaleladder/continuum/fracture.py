"""Anisotropic plane-strain fracture of a centre-cracked plate: closed forms and a finite-element
model whose energy release rate is measured on the field (domain J-integral).

Units are SI throughout: stiffness in Pa, lengths in m, energy release rate and surface energy in
J/m^2, strain energy per unit thickness in J/m.  Voigt order is ``xx, yy, zz, yz, xz, xy`` with
engineering shear strains; in-plane 3x3 matrices use ``[xx, yy, xy]`` in the same convention.

Crack frame: ``x`` is the propagation direction, ``y`` the crack-plane normal, ``z`` the crack
front.  A rotation matrix has as *rows* these three axes written in crystal coordinates.

Closed forms
------------
* Sih, Paris & Irwin (1965), Int. J. Fract. Mech. 1, 189: for mode I in a rectilinearly
  anisotropic plane-strain solid ``G = -(K_I^2 / 2) b22 Im[(mu1 + mu2) / (mu1 mu2)]`` where the
  ``mu`` are the two roots with positive imaginary part of
  ``b11 mu^4 - 2 b16 mu^3 + (2 b12 + b66) mu^2 - 2 b26 mu + b22 = 0`` (Lekhnitskii) and ``b`` is the
  reduced (plane-strain) compliance.  Isotropic: ``mu1 = mu2 = i`` and ``G = K^2 (1 - nu^2) / E``.
* Tada's (modified Feddersen) finite-width factor for a centre crack ``2a`` in a strip of width
  ``2W``: ``F = (1 - 0.025 l^2 + 0.06 l^4) sqrt(sec(pi l / 2))``, ``l = a / W``; better than 0.1 %
  for every ``a / W`` for an isotropic strip long enough that the loaded ends do not matter
  (``H / W >~ 3``).  For anisotropic strips it is an approximation (exact as ``a / W -> 0``).

Finite-element model
--------------------
:class:`CentreCrackedPlate` meshes the *full* plate ``[-W, W] x [-H, H]`` (no symmetry reduction:
with ``b16, b26 != 0`` the crack plane is no mirror) with a traction-free slit on ``|x| < a``,
uniform traction ``sigma`` on ``y = +-H``, rigid-body motion removed by three minimal constraints
(``u = 0`` at ``(-W, 0)``, ``u_y = 0`` at ``(W, 0)``; the load is self-equilibrated so their
reactions vanish and they bias nothing).  Quadratic triangles on a tip-graded structured mesh
(:mod:`scaleladder.continuum.mesh`).  The energy release rate at each tip is the equivalent-domain
J-integral ``J = int_A (sigma_ij u_i,k e_k - w e_j) q_,j dA`` with ``e`` the propagation direction
of that tip and ``q`` a plateau weight (1 inside ``r_in``, cosine taper to 0 at ``r_out``).
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from ..core import validate as v
from ..core.codec import register
from ..core.errors import ConvergenceError, DomainWarning, InputError, StabilityError
from ..core.tensors import check_rotations, rotate_voigt
from .mesh import centre_crack_mesh_arrays, core_size, remap_crack_length

__all__ = [
    "plane_strain_stiffness", "crack_frame_111", "reduced_compliance", "isotropic_stiffness",
    "sih_paris_irwin_factor", "finite_width_factor", "griffith_critical_stress",
    "griffith_finite_width", "CentreCrackedPlate", "CrackedPlateSolution", "energy_release_rate",
    "compliance_energy_release_rate", "critical_stress", "mesh_convergence", "plot_stress_field",
    "plate_critical_stress", "richardson",
]

_IN_PLANE = (0, 1, 5)            # Voigt rows/cols of xx, yy, xy
_ANTI_PLANE = (3, 4)             # yz, xz
#: elements across the tip core at refinement level 0; level l uses ``_BASE_N * 2**l``
_BASE_N = 4


# --------------------------------------------------------------------------------------------
# stiffness algebra
# --------------------------------------------------------------------------------------------

def _check_symmetric_pd(field_name: str, c: np.ndarray) -> np.ndarray:
    scale = float(np.max(np.abs(c)))
    if scale == 0.0:
        raise StabilityError(field_name, "all-zero matrix", "a positive-definite stiffness (Pa)")
    asym = float(np.max(np.abs(c - c.T))) / scale
    if asym > 1e-6:
        raise InputError(field_name, f"matrix with relative asymmetry {asym:.2e}",
                         "a symmetric stiffness matrix (relative asymmetry <= 1e-6)")
    c = 0.5 * (c + c.T)
    eig = np.linalg.eigvalsh(c)
    if eig[0] <= 1e-12 * scale:
        raise StabilityError(field_name, f"matrix with eigenvalues {np.array2string(eig, precision=4)}",
                             "a positive-definite stiffness (all eigenvalues > 0; Born stability)")
    return c


def _warn_units(field_name: str, c: np.ndarray) -> None:
    scale = float(np.max(np.abs(c)))
    if 1.0 < scale < 1e5:
        warnings.warn(f"{field_name}: largest entry {scale:.4g} looks like GPa; the continuum rung "
                      "works in Pa (use ElasticTensor.to_pa())", DomainWarning, stacklevel=3)


def isotropic_stiffness(youngs_modulus: float, poisson_ratio: float) -> np.ndarray:
    """6x6 Voigt stiffness (Pa) of an isotropic solid.

    Parameters
    ----------
    youngs_modulus : float
        E in Pa (> 0).
    poisson_ratio : float
        nu in (-1, 0.5).
    """
    E = v.positive("youngs_modulus", youngs_modulus)
    nu = v.in_range("poisson_ratio", poisson_ratio, -1.0, 0.5, inclusive=False)
    lam = E * nu / ((1 + nu) * (1 - 2 * nu))
    mu = E / (2 * (1 + nu))
    c = np.zeros((6, 6))
    c[:3, :3] = lam
    c[[0, 1, 2], [0, 1, 2]] = lam + 2 * mu
    c[[3, 4, 5], [3, 4, 5]] = mu
    return c


def plane_strain_stiffness(C_voigt_pa: Any, rotation: Any = None, *,
                           coupling_tol: float = 1e-6) -> np.ndarray:
    """In-plane plane-strain stiffness of a crystal in the crack frame.

    Parameters
    ----------
    C_voigt_pa : ElasticTensor or array_like, shape (6, 6)
        Stiffness in crystal axes: an ``ElasticTensor`` (converted by its own units), or a Voigt
        matrix (order ``xx, yy, zz, yz, xz, xy``) in Pa — a matrix whose entries look like GPa
        raises a ``DomainWarning`` (nothing is converted behind your back).
    rotation : array_like, shape (3, 3), optional
        Rows = crack-frame axes ``x`` (propagation), ``y`` (crack normal), ``z`` (crack front) in
        crystal coordinates; orthonormal.  ``None`` = identity.
    coupling_tol : float
        Largest allowed ``|C'_i4|, |C'_i5|`` (i = 1, 2, 6, rotated frame) relative to ``max |C|``.

    Returns
    -------
    numpy.ndarray, shape (3, 3)
        ``[sigma_xx, sigma_yy, sigma_xy] = C2d @ [eps_xx, eps_yy, gamma_xy]`` for
        ``eps_zz = gamma_xz = gamma_yz = 0`` (Pa).

    Raises
    ------
    InputError
        Non-orthonormal rotation, or in-plane/anti-plane coupling in the crack frame (the
        components are named): plane strain then needs an out-of-plane displacement field.  The
        coupling vanishes when ``z`` is normal to a mirror plane (e.g. ``z = [1-10]`` in a cubic
        crystal).
    StabilityError
        A stiffness that is not positive definite.
    """
    if hasattr(C_voigt_pa, "to_pa") and hasattr(C_voigt_pa, "voigt"):   # an ElasticTensor
        C_voigt_pa = C_voigt_pa.to_pa()   # its own unit conversion (GPa -> Pa), nominal value
    else:
        C_voigt_pa = v.finite_array("C_voigt_pa", C_voigt_pa, (6, 6))
        _warn_units("C_voigt_pa", C_voigt_pa)
    c = v.finite_array("C_voigt_pa", C_voigt_pa, (6, 6))
    c = _check_symmetric_pd("C_voigt_pa", c)
    if rotation is not None:
        c = rotate_voigt(c, check_rotations("rotation", rotation, proper=False,
                                            meaning="rows = the crack-frame axes x, y, z in "
                                                    "crystal coordinates"))
    scale = float(np.max(np.abs(c)))
    bad = [(i, j, c[i, j]) for i in _IN_PLANE for j in _ANTI_PLANE
           if abs(c[i, j]) > coupling_tol * scale]
    if bad:
        names = ", ".join(f"C'{i + 1}{j + 1}={val:.4g} Pa" for i, j, val in bad)
        raise InputError("rotation", "a crack frame with in-plane/anti-plane coupling (" + names + ")",
                         "a frame whose z axis (crack front) is normal to a mirror plane of the "
                         "crystal, so that C'_i4 = C'_i5 = 0 for i = 1, 2, 6",
                         hint="e.g. crack_frame_111() for a cubic crystal")
    c2 = c[np.ix_(_IN_PLANE, _IN_PLANE)]
    return 0.5 * (c2 + c2.T)


def crack_frame_111() -> np.ndarray:
    """Crack frame of a (111) cleavage crack with front along [1-10], propagating along [11-2].

    Returns
    -------
    numpy.ndarray, shape (3, 3)
        Rows ``x = [11-2]/sqrt6``, ``y = [111]/sqrt3``, ``z = [1-10]/sqrt2`` (right-handed).
    """
    R = np.array([[1.0, 1.0, -2.0], [1.0, 1.0, 1.0], [1.0, -1.0, 0.0]])
    return R / np.linalg.norm(R, axis=1)[:, None]


def _check_c2d(field_name: str, stiffness: Any) -> np.ndarray:
    c = v.finite_array(field_name, stiffness, (3, 3))
    c = _check_symmetric_pd(field_name, c)
    return c


def reduced_compliance(C2d: Any) -> np.ndarray:
    """Plane-strain reduced compliance ``b = C2d^-1`` (1/Pa), engineering-shear order ``[xx, yy, xy]``.

    With in-plane/anti-plane decoupling this equals ``b_ij = s_ij - s_i3 s_j3 / s_33``.
    """
    return np.linalg.inv(_check_c2d("C2d", C2d))


def sih_paris_irwin_factor(C2d: Any) -> float:
    """Factor ``f`` with ``G = f K_I^2`` for mode I in an anisotropic plane-strain solid (1/Pa).

    ``f = -(1/2) b22 Im[(mu1 + mu2) / (mu1 mu2)]`` (Sih, Paris & Irwin 1965) with ``mu1, mu2`` the
    roots with positive imaginary part of ``b11 mu^4 - 2 b16 mu^3 + (2 b12 + b66) mu^2 - 2 b26 mu
    + b22 = 0``.  Isotropic: ``(1 - nu^2) / E``; orthotropic (``b16 = b26 = 0``):
    ``sqrt(b11 b22 / 2) sqrt(sqrt(b22 / b11) + (2 b12 + b66) / (2 b11))``.

    Parameters
    ----------
    C2d : array_like, shape (3, 3)
        Plane-strain stiffness (Pa) from :func:`plane_strain_stiffness`.

    Returns
    -------
    float
        ``f`` in 1/Pa.
    """
    b = reduced_compliance(C2d)
    coeffs = [b[0, 0], -2 * b[0, 2], 2 * b[0, 1] + b[2, 2], -2 * b[1, 2], b[1, 1]]
    roots = np.roots(coeffs)
    upper = roots[roots.imag > 0]
    if len(upper) != 2:  # pragma: no cover - impossible for a positive-definite b
        raise StabilityError("C2d", f"characteristic roots {roots}",
                             "two complex-conjugate pairs (positive-definite compliance)")
    mu1, mu2 = upper
    f = -0.5 * b[1, 1] * ((mu1 + mu2) / (mu1 * mu2)).imag
    return float(f)


def finite_width_factor(a_over_w: float) -> float:
    """Tada's finite-width factor ``F(a/W)`` for a centre crack ``2a`` in a strip of width ``2W``.

    ``K_I = sigma sqrt(pi a) F``, ``F = (1 - 0.025 l^2 + 0.06 l^4) sqrt(sec(pi l / 2))``.
    Accuracy 0.1 % for any ``a/W`` (Tada, Paris & Irwin, *The Stress Analysis of Cracks Handbook*)
    for an isotropic strip with ``H / W >~ 3``; for anisotropic strips an approximation that becomes
    exact as ``a / W -> 0``.
    """
    lam = v.in_range("a_over_w", a_over_w, 0.0, 1.0)
    if lam >= 1.0:
        raise InputError("a_over_w", a_over_w, "a value in [0, 1) (crack shorter than the plate)")
    return float((1 - 0.025 * lam ** 2 + 0.06 * lam ** 4) * math.sqrt(1.0 / math.cos(math.pi * lam / 2)))


def griffith_critical_stress(gamma: float, C2d: Any, half_crack: float,
                             half_width: float | None = None) -> float:
    """Griffith stress ``sigma_c = sqrt(2 gamma / (f pi a F^2))`` (Pa), closed form.

    Parameters
    ----------
    gamma : float
        Surface energy (J/m^2); ``2 gamma`` is the work of separation.
    C2d : array_like, shape (3, 3)
        Plane-strain stiffness in the crack frame (Pa).
    half_crack : float
        ``a`` (m).
    half_width : float, optional
        ``W`` (m); ``None`` = infinite plate (``F = 1``).
    """
    g = v.positive("gamma", gamma)
    a = v.positive("half_crack", half_crack)
    F = 1.0
    if half_width is not None:
        W = v.positive("half_width", half_width)
        if a >= W:
            raise InputError("half_crack", half_crack, f"a value < half_width={half_width!r}")
        F = finite_width_factor(a / W)
    f = sih_paris_irwin_factor(C2d)
    return math.sqrt(2 * g / (f * math.pi * a * F ** 2))


#: the name used in docs/architecture.md
griffith_finite_width = griffith_critical_stress


# --------------------------------------------------------------------------------------------
# finite elements
# --------------------------------------------------------------------------------------------

def _elasticity_form(C: np.ndarray):
    from skfem import BilinearForm

    c = np.asarray(C, dtype=float)

    @BilinearForm
    def a(u, w_, w):
        gu, gv = u.grad, w_.grad
        eu = (gu[0, 0], gu[1, 1], gu[0, 1] + gu[1, 0])
        ev = (gv[0, 0], gv[1, 1], gv[0, 1] + gv[1, 0])
        out = 0.0
        for i in range(3):
            out = out + ev[i] * (c[i, 0] * eu[0] + c[i, 1] * eu[1] + c[i, 2] * eu[2])
        return out

    return a


def _j_functional(C: np.ndarray, tip: np.ndarray, direction: float, r_in: float, r_out: float):
    from skfem import Functional

    c = np.asarray(C, dtype=float)
    e0 = float(direction)

    @Functional
    def j(w):
        g = w["u"].grad
        ex, ey, gxy = g[0, 0], g[1, 1], g[0, 1] + g[1, 0]
        sxx = c[0, 0] * ex + c[0, 1] * ey + c[0, 2] * gxy
        syy = c[1, 0] * ex + c[1, 1] * ey + c[1, 2] * gxy
        sxy = c[2, 0] * ex + c[2, 1] * ey + c[2, 2] * gxy
        wdens = 0.5 * (sxx * ex + syy * ey + sxy * gxy)
        dx = w.x[0] - tip[0]
        dy = w.x[1] - tip[1]
        r = np.sqrt(dx * dx + dy * dy)
        s = (r - r_in) / (r_out - r_in)
        inside = (s > 0) & (s < 1)
        dqdr = np.where(inside, -0.5 * np.pi / (r_out - r_in) * np.sin(np.pi * np.clip(s, 0, 1)), 0.0)
        rs = np.where(r > 0, r, 1.0)
        qx, qy = dqdr * dx / rs, dqdr * dy / rs
        # derivative along the propagation direction e = (e0, 0)
        du0, du1 = g[0, 0] * e0, g[1, 0] * e0
        return ((sxx * du0 + sxy * du1) * qx + (sxy * du0 + syy * du1) * qy
                - wdens * e0 * qx)

    return j


class _Discretisation:
    """Mesh, basis, load vector and constraints of one (geometry, level, order): stiffness-free."""

    def __init__(self, p: np.ndarray, t: np.ndarray, arrays: dict, a: float, W: float, H: float,
                 order: int):
        from skfem import (
            Basis,
            ElementTriP1,
            ElementTriP2,
            ElementVector,
            FacetBasis,
            LinearForm,
            MeshTri,
        )

        self.a, self.W, self.H = a, W, H
        self.order = order
        self.h = arrays["h"]
        self.rho = arrays["rho"]
        self.n = arrays["n"]
        self.mesh = MeshTri(p, t)
        self.elem = ElementVector(ElementTriP2() if order == 2 else ElementTriP1())
        self.basis = Basis(self.mesh, self.elem, intorder=2 * order)
        tol = 1e-9 * max(W, H)
        top_bottom = self.mesh.facets_satisfying(lambda x: np.abs(x[1]) > H - tol)
        fb = FacetBasis(self.mesh, self.elem, facets=top_bottom, intorder=2 * order)

        @LinearForm
        def traction(vv, w):  # unit remote stress: t = sigma_yy n_y e_y
            return vv[1] * w.n[1]

        self.unit_load = traction.assemble(fb)
        pts = self.mesh.p
        left = int(np.argmin((pts[0] + W) ** 2 + pts[1] ** 2))
        right = int(np.argmin((pts[0] - W) ** 2 + pts[1] ** 2))
        nd = self.basis.nodal_dofs
        self.fixed = np.array([nd[0, left], nd[1, left], nd[1, right]])
        self.free = np.setdiff1d(np.arange(self.basis.N), self.fixed)
        self.tips = np.array([[-a, 0.0], [a, 0.0]])
        self._jbases: dict = {}
        self._vbasis = None

    def stiffness_matrix(self, C: np.ndarray):
        return _elasticity_form(C).assemble(self.basis)

    def j_basis(self, tip_index: int, r_out: float):
        from skfem import Basis

        key = (tip_index, round(r_out / self.rho, 12))
        if key not in self._jbases:
            mesh = self.mesh
            tip = self.tips[tip_index]
            xc = mesh.p[:, mesh.t].mean(axis=1)                       # (2, nel)
            rad = np.max(np.linalg.norm(mesh.p[:, mesh.t] - xc[:, None, :], axis=0), axis=0)
            dist = np.linalg.norm(xc - tip[:, None], axis=0)
            elems = np.nonzero(dist - rad < r_out)[0]
            self._jbases[key] = Basis(mesh, self.elem, elements=elems, intorder=8,
                                      dofs=self.basis.dofs)
        return self._jbases[key]

    def vertex_basis(self):
        from skfem import Basis

        if self._vbasis is None:
            X = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
            self._vbasis = Basis(self.mesh, self.elem, quadrature=(X, np.full(3, 1 / 6)),
                                 dofs=self.basis.dofs)
        return self._vbasis

    def solve(self, C: np.ndarray, remote_stress: float):
        from scipy.sparse.linalg import norm as sparse_norm
        from scipy.sparse.linalg import splu, spsolve

        K = self.stiffness_matrix(C)
        f = remote_stress * self.unit_load
        u = np.zeros(self.basis.N)
        free = self.free
        Kff = K[free][:, free].tocsc()
        ff = f[free]
        knorm = sparse_norm(Kff, np.inf)

        def backward_error(x: np.ndarray) -> float:
            # normwise backward error: the residual relative to ||f|| alone says little here,
            # the graded mesh makes K badly scaled
            r = np.abs(Kff @ x - ff).max()
            return float(r / (knorm * np.abs(x).max() + np.abs(ff).max() + 1e-300))

        # K_ff is symmetric positive definite: a symmetric-mode LU without pivoting on a
        # minimum-degree ordering of A^T + A is ~2x faster than spsolve's default
        try:
            x = splu(Kff, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                     options={"SymmetricMode": True}).solve(ff)
            res = backward_error(x)
        except RuntimeError:  # pragma: no cover - singular pivot: fall back to pivoting LU
            res = np.inf
        if not (res < 1e-12):  # pragma: no cover
            x = spsolve(Kff, ff)
            res = backward_error(x)
        if not (np.all(np.isfinite(x)) and res < 1e-10):  # pragma: no cover
            raise ConvergenceError("linear solve of the cracked plate",
                                   settings={"n_dofs": len(free), "relative_residual": float(res)},
                                   suggestion="check the stiffness (positive definite, Pa)")
        u[free] = x
        energy = 0.5 * float(f @ u)
        return u, energy

    def j_integral(self, C: np.ndarray, u: np.ndarray, r_in: float, r_out: float) -> np.ndarray:
        out = np.empty(2)
        for k, direction in enumerate((-1.0, 1.0)):
            jb = self.j_basis(k, r_out)
            out[k] = _j_functional(C, self.tips[k], direction, r_in, r_out).assemble(
                jb, u=jb.interpolate(u))
        return out

    def vertex_fields(self, C: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vb = self.vertex_basis()
        g = vb.interpolate(u).grad                                      # (2, 2, nel, 3)
        eps = np.stack([g[0, 0], g[1, 1], g[0, 1] + g[1, 0]])           # (3, nel, 3)
        sig = np.einsum("ij,jeq->ieq", C, eps)
        nv = self.mesh.p.shape[1]
        t = self.mesh.t                                                 # (3, nel)
        acc = np.zeros((3, nv))
        cnt = np.zeros(nv)
        for q in range(3):
            for i in range(3):
                np.add.at(acc[i], t[q], sig[i, :, q])
            np.add.at(cnt, t[q], 1.0)
        stress = (acc / cnt).T
        disp = u[self.basis.nodal_dofs].T
        return disp, stress


@register("CrackedPlateSolution")
@dataclass(frozen=True, eq=False)
class CrackedPlateSolution:
    """Finite-element solution of a centre-cracked plate (SI units).

    Attributes
    ----------
    nodes : ndarray (N, 2)
        Vertex coordinates (m); crack-face vertices appear twice (upper and lower face).
    triangles : ndarray (M, 3)
        Vertex indices of each triangle.
    displacement : ndarray (N, 2)
        Vertex displacements (m).
    stress : ndarray (N, 3)
        Vertex stresses ``[sigma_xx, sigma_yy, sigma_xy]`` (Pa), element values averaged at the
        vertex (unbounded at the tips, as the field is).
    energy_release_rate : ndarray (2,)
        Domain J-integral at the left (``x = -a``) and right tip (J/m^2).
    strain_energy : float
        Stored energy per unit thickness (J/m).
    remote_stress, stiffness, half_crack, half_width, half_height, refine, order, n_dofs, h,
    j_radii, solve_seconds
        The inputs and discretisation: ``h = rho / n`` is the core element size (m), ``j_radii``
        the ``(r_in, r_out)`` of the J-domain (m).
    mesh, basis, dofs
        The scikit-fem mesh and basis and the full DOF vector (not serialised).
    """

    nodes: np.ndarray
    triangles: np.ndarray
    displacement: np.ndarray
    stress: np.ndarray
    energy_release_rate: np.ndarray
    strain_energy: float
    remote_stress: float
    stiffness: np.ndarray
    half_crack: float
    half_width: float
    half_height: float
    refine: int
    order: int
    n_dofs: int
    h: float
    j_radii: tuple
    solve_seconds: float = 0.0
    mesh: Any = field(default=None, repr=False)
    basis: Any = field(default=None, repr=False)
    dofs: Any = field(default=None, repr=False)

    @property
    def G(self) -> float:
        """Energy release rate, mean of the two tips (J/m^2)."""
        return float(np.mean(self.energy_release_rate))

    def stress_intensity_factor(self) -> float:
        """Mode-I ``K_I = sqrt(G / f)`` (Pa m^0.5) with ``f`` the Sih-Paris-Irwin factor."""
        return math.sqrt(self.G / sih_paris_irwin_factor(self.stiffness))

    _ARRAYS = ("nodes", "triangles", "displacement", "stress", "energy_release_rate", "stiffness")
    _SCALARS = ("strain_energy", "remote_stress", "half_crack", "half_width", "half_height",
                "refine", "order", "n_dofs", "h", "j_radii", "solve_seconds")

    def to_state(self) -> dict:
        state = {k: np.asarray(getattr(self, k)) for k in self._ARRAYS}
        state.update({k: getattr(self, k) for k in self._SCALARS})
        return state

    @classmethod
    def from_state(cls, state: dict) -> "CrackedPlateSolution":
        kw = {k: np.asarray(state[k]) for k in cls._ARRAYS}
        kw.update({k: state[k] for k in cls._SCALARS})
        kw["j_radii"] = tuple(kw["j_radii"])
        return cls(**kw)


class CentreCrackedPlate:
    """Plane-strain plate ``[-W, W] x [-H, H]`` with a traction-free centre slit ``|x| < a, y = 0``.

    Parameters
    ----------
    stiffness : array_like, shape (3, 3)
        Plane-strain stiffness in the crack frame (Pa), e.g. from :func:`plane_strain_stiffness`.
    half_crack : float
        ``a`` (m), ``0 < a < W``.
    half_width : float
        ``W`` (m).
    half_height : float
        ``H`` (m); ``H / W >= 3`` makes the loaded ends irrelevant to Tada's ``F``.
    grading : float
        Power-grading exponent of the mesh toward the tips (default 3).
    j_radii : tuple of float
        ``(r_in, r_out)`` of the J-integral weight as fractions of ``rho = min(a, W - a, H)``.

    Notes
    -----
    Geometry-only data (mesh, basis, load, constraints) are cached per ``(refine, order)`` and
    shared by :meth:`with_stiffness`, so an ensemble of stiffness tensors only reassembles and
    re-solves (:meth:`energy_release_rate_for`).  Refinement level ``l`` puts ``4 * 2**l``
    elements across the tip core (``h = rho / (4 * 2**l)``).
    """

    def __init__(self, stiffness: Any, half_crack: float, half_width: float, half_height: float, *,
                 grading: float = 3.0, j_radii: Sequence[float] = (0.1, 0.4)):
        self.stiffness = _check_c2d("stiffness", stiffness)
        _warn_units("stiffness", self.stiffness)
        self.half_crack = v.positive("half_crack", half_crack)
        self.half_width = v.positive("half_width", half_width)
        self.half_height = v.positive("half_height", half_height)
        if self.half_crack >= self.half_width:
            raise InputError("half_crack", half_crack,
                             f"a value < half_width={half_width!r} (the crack must lie in the plate)")
        self.grading = v.in_range("grading", grading, 1.0, 6.0)
        self.j_radii = self._check_j_radii(j_radii)
        self._cache: dict = {}

    @staticmethod
    def _check_j_radii(j_radii: Sequence[float]) -> tuple[float, float]:
        try:
            r_in, r_out = (float(x) for x in j_radii)
        except (TypeError, ValueError):
            raise InputError("j_radii", j_radii, "two fractions (r_in, r_out) of rho") from None
        if not (0.0 < r_in < r_out <= 0.9):
            raise InputError("j_radii", j_radii, "0 < r_in < r_out <= 0.9 (fractions of "
                             "rho = min(a, W - a, H), so the domain stays inside the plate)")
        return r_in, r_out

    # -- geometry ---------------------------------------------------------------------------
    @property
    def rho(self) -> float:
        """Core size ``min(a, W - a, H)`` (m): mesh grading and J-domain length scale."""
        return core_size(self.half_crack, self.half_width, self.half_height)

    def with_stiffness(self, stiffness: Any) -> "CentreCrackedPlate":
        """Same geometry (and shared mesh cache) with another stiffness."""
        new = object.__new__(CentreCrackedPlate)
        new.__dict__.update(self.__dict__)
        new.stiffness = _check_c2d("stiffness", stiffness)
        return new

    def _disc(self, refine: int, order: int, half_crack: float | None = None) -> _Discretisation:
        refine = v.positive_int("refine", refine, minimum=0)
        order = v.one_of("order", order, (1, 2))
        key = (refine, order, half_crack)
        if key not in self._cache:
            n = _BASE_N * 2 ** refine
            a, W, H = self.half_crack, self.half_width, self.half_height
            arr = centre_crack_mesh_arrays(a, W, H, n, self.grading)
            p = arr["p"]
            if half_crack is not None:
                p = remap_crack_length(p, a, half_crack, W)
                a = half_crack
            self._cache[key] = _Discretisation(p, arr["t"], arr, a, W, H, order)
        return self._cache[key]

    def clear_cache(self) -> None:
        """Drop the cached meshes and bases (they are shared with :meth:`with_stiffness` copies)."""
        self._cache.clear()

    # -- solving ----------------------------------------------------------------------------
    def solve(self, remote_stress: float = 1.0, refine: int = 2, order: int = 2,
              j_radii: Sequence[float] | None = None) -> CrackedPlateSolution:
        """Solve the plate and measure the energy release rate on the field.

        Parameters
        ----------
        remote_stress : float
            Traction ``sigma_yy`` on ``y = +-H`` (Pa).
        refine : int
            Refinement level ``>= 0`` (``4 * 2**refine`` elements across the tip core).
        order : int
            1 or 2 (linear or quadratic triangles).
        j_radii : (float, float), optional
            J-domain radii as fractions of :attr:`rho`; default the plate's.

        Returns
        -------
        CrackedPlateSolution
        """
        sigma = v.finite("remote_stress", remote_stress)
        radii = self.j_radii if j_radii is None else self._check_j_radii(j_radii)
        t0 = time.perf_counter()
        d = self._disc(refine, order)
        C = self.stiffness
        u, energy = d.solve(C, sigma)
        r_in, r_out = radii[0] * d.rho, radii[1] * d.rho
        G = d.j_integral(C, u, r_in, r_out)
        disp, stress = d.vertex_fields(C, u)
        elapsed = time.perf_counter() - t0
        return CrackedPlateSolution(
            nodes=d.mesh.p.T.copy(), triangles=d.mesh.t.T.copy(), displacement=disp, stress=stress,
            energy_release_rate=G, strain_energy=energy, remote_stress=sigma, stiffness=C.copy(),
            half_crack=self.half_crack, half_width=self.half_width, half_height=self.half_height,
            refine=int(refine), order=int(order), n_dofs=int(d.basis.N), h=float(d.h),
            j_radii=(r_in, r_out), solve_seconds=elapsed, mesh=d.mesh, basis=d.basis, dofs=u)

    def energy_release_rate(self, remote_stress: float = 1.0, refine: int = 2, order: int = 2,
                            j_radii: Sequence[float] | None = None) -> np.ndarray:
        """Domain J-integral at the (left, right) tip (J/m^2); no vertex post-processing."""
        return self.energy_release_rate_for([self.stiffness], remote_stress, refine, order,
                                            j_radii)[0]

    def energy_release_rate_for(self, stiffnesses: Iterable[Any], remote_stress: float = 1.0,
                                refine: int = 2, order: int = 2,
                                j_radii: Sequence[float] | None = None) -> np.ndarray:
        """J at both tips for many stiffness tensors on one cached mesh.

        Parameters
        ----------
        stiffnesses : iterable of (3, 3) array_like
            Plane-strain stiffnesses in the crack frame (Pa).

        Returns
        -------
        numpy.ndarray, shape (n, 2)
            Energy release rate (J/m^2) at the (left, right) tip for each stiffness.
        """
        sigma = v.finite("remote_stress", remote_stress)
        radii = self.j_radii if j_radii is None else self._check_j_radii(j_radii)
        d = self._disc(refine, order)
        out = []
        for i, c in enumerate(stiffnesses):
            C = _check_c2d(f"stiffnesses[{i}]", c)
            u, _ = d.solve(C, sigma)
            out.append(d.j_integral(C, u, radii[0] * d.rho, radii[1] * d.rho))
        return np.array(out).reshape(-1, 2)

    def strain_energy(self, remote_stress: float = 1.0, refine: int = 2, order: int = 2,
                      half_crack: float | None = None) -> float:
        """Stored energy per unit thickness (J/m), optionally with the tips moved to ``+-half_crack``
        on the same mesh topology."""
        sigma = v.finite("remote_stress", remote_stress)
        if half_crack is not None:
            half_crack = v.positive("half_crack", half_crack)
        d = self._disc(refine, order, half_crack)
        return d.solve(self.stiffness, sigma)[1]

    def compliance_energy_release_rate(self, remote_stress: float = 1.0, refine: int = 2,
                                       order: int = 2, delta: float | None = None) -> float:
        """Energy release rate per tip from the change of stored energy with crack length (J/m^2).

        At fixed load ``G = (1/2) dU/da`` (both tips advance): central difference with the tips
        moved to ``a +- delta`` on the same mesh topology (default ``delta = 0.01 a``).
        """
        a = self.half_crack
        dlt = 0.01 * a if delta is None else v.positive("delta", delta)
        if not (dlt < 0.5 * a and a + dlt < self.half_width):
            raise InputError("delta", delta, f"a step < a/2 = {a / 2!r} keeping a + delta < W")
        up = self.strain_energy(remote_stress, refine, order, a + dlt)
        dn = self.strain_energy(remote_stress, refine, order, a - dlt)
        return 0.5 * (up - dn) / (2 * dlt)

    def closed_form_energy_release_rate(self, remote_stress: float = 1.0,
                                        finite_width: bool = True) -> float:
        """Sih-Paris-Irwin ``G = f K^2`` with ``K = sigma sqrt(pi a) F(a/W)`` (J/m^2)."""
        sigma = v.finite("remote_stress", remote_stress)
        F = finite_width_factor(self.half_crack / self.half_width) if finite_width else 1.0
        K = sigma * math.sqrt(math.pi * self.half_crack) * F
        return sih_paris_irwin_factor(self.stiffness) * K ** 2

    def critical_stress(self, gamma: float, refine: int = 2, order: int = 2) -> float:
        """Remote stress at which the larger tip ``G`` reaches ``2 gamma`` (Pa).

        The problem is linear, ``G = g sigma^2``: one solve at unit stress gives
        ``sigma_c = sqrt(2 gamma / g)``.
        """
        gam = v.positive("gamma", gamma)
        g = float(np.max(self.energy_release_rate(1.0, refine, order)))
        return math.sqrt(2 * gam / g)

    def mesh_convergence(self, levels: Sequence[int] = (0, 1, 2, 3), remote_stress: float = 1.0,
                         order: int = 2) -> dict:
        """Energy release rate on a sequence of refinements, with observed rate and Richardson.

        Returns
        -------
        dict
            ``levels``, ``h`` (m), ``n_dofs``, ``values`` (J/m^2, mean of the tips), ``seconds``,
            ``observed_rate`` (from the three finest levels; ``None`` when the differences do not
            decrease monotonically), ``richardson_extrapolate`` (J/m^2) and ``error_estimate``
            (J/m^2, ``|extrapolate - finest|``, or the last difference when no rate exists).
        """
        lv = [v.positive_int("levels", x, minimum=0) for x in levels]
        if len(lv) < 3 or sorted(set(lv)) != lv:
            raise InputError("levels", levels, "at least three increasing refinement levels")
        values, hs, ndofs, secs = [], [], [], []
        for level in lv:
            t0 = time.perf_counter()
            G = self.energy_release_rate(remote_stress, level, order)
            secs.append(time.perf_counter() - t0)
            d = self._disc(level, order)
            values.append(float(np.mean(G)))
            hs.append(d.h)
            ndofs.append(int(d.basis.N))
        g1, g2, g3 = values[-3:]
        r12, r23 = hs[-3] / hs[-2], hs[-2] / hs[-1]
        d12, d23 = g2 - g1, g3 - g2
        rate = None
        if d12 != 0 and d23 != 0 and np.sign(d12) == np.sign(d23) and abs(d23) < abs(d12):
            if abs(r12 - r23) < 1e-9:
                rate = math.log(d12 / d23) / math.log(r23)
            else:  # non-constant ratio: solve d12/d23 = (r12^p - 1) r23^p / (r23^p - 1) by bisection
                from scipy.optimize import brentq
                fn = lambda p: (r12 ** p - 1) * r23 ** p / (r23 ** p - 1) - d12 / d23  # noqa: E731
                rate = brentq(fn, 1e-3, 20.0)
        if rate is not None:
            extrap = g3 + d23 / (r23 ** rate - 1)
            err = abs(extrap - g3)
        else:
            extrap = g3
            err = abs(d23)
        return {"levels": lv, "h": np.array(hs), "n_dofs": np.array(ndofs),
                "values": np.array(values), "seconds": np.array(secs), "observed_rate": rate,
                "richardson_extrapolate": float(extrap), "error_estimate": float(err)}


# --------------------------------------------------------------------------------------------
# module-level verbs
# --------------------------------------------------------------------------------------------

def energy_release_rate(plate: CentreCrackedPlate, remote_stress: float = 1.0, refine: int = 2,
                        order: int = 2) -> np.ndarray:
    """Domain J-integral at the (left, right) tip of ``plate`` (J/m^2)."""
    return plate.energy_release_rate(remote_stress, refine, order)


def compliance_energy_release_rate(plate: CentreCrackedPlate, remote_stress: float = 1.0,
                                   refine: int = 2, order: int = 2,
                                   delta: float | None = None) -> float:
    """Per-tip energy release rate from ``dU/da`` by central differences (J/m^2)."""
    return plate.compliance_energy_release_rate(remote_stress, refine, order, delta)


def mesh_convergence(plate: CentreCrackedPlate, levels: Sequence[int] = (0, 1, 2, 3),
                     remote_stress: float = 1.0, order: int = 2) -> dict:
    """See :meth:`CentreCrackedPlate.mesh_convergence`."""
    return plate.mesh_convergence(levels, remote_stress, order)


def critical_stress(plate_or_stiffness: Any, gamma: float, refine: int = 2, *,
                    half_crack: float | None = None, half_width: float | None = None,
                    half_height: float | None = None, order: int = 2) -> float:
    """Griffith critical remote stress from the finite-element ``G`` (Pa).

    Parameters
    ----------
    plate_or_stiffness : CentreCrackedPlate or array_like (3, 3)
        A plate, or a plane-strain stiffness (Pa) together with ``half_crack``, ``half_width``
        and ``half_height`` (m).
    gamma : float
        Surface energy (J/m^2); fracture when ``G = 2 gamma``.
    refine : int
        Refinement level.
    """
    if isinstance(plate_or_stiffness, CentreCrackedPlate):
        plate = plate_or_stiffness
    else:
        missing = [n for n, x in (("half_crack", half_crack), ("half_width", half_width),
                                  ("half_height", half_height)) if x is None]
        if missing:
            raise InputError(missing[0], None, "a length in m (needed when a stiffness matrix, "
                             "not a CentreCrackedPlate, is given)")
        plate = CentreCrackedPlate(plate_or_stiffness, half_crack, half_width, half_height)
    return plate.critical_stress(gamma, refine, order)


def richardson(levels: Sequence[int], values: Sequence[float], min_ratio: float = 1.2) -> dict:
    """Observed convergence rate and Richardson extrapolation from successive refinements.

    Each level halves h.  With three values v0, v1, v2 the ratio (v1 − v0)/(v2 − v1) = 2^p gives
    the observed order p; the extrapolation v2 + (v2 − v1)/(2^p − 1) is used only when the sequence
    is clearly converging (ratio above ``min_ratio``).  Otherwise (oscillating, stagnating or
    diverging differences) no extrapolation is trusted and the error estimate is the last
    difference |v2 − v1|.

    Returns
    -------
    dict
        ``observed_rate`` (nan if none), ``extrapolated``, ``error_estimate`` (>= 0),
        ``extrapolation_trusted``.
    """
    vals = np.asarray(values, dtype=float)
    out = {"observed_rate": float("nan"), "extrapolated": float(vals[-1]), "error_estimate": 0.0,
           "extrapolation_trusted": False}
    if len(vals) < 2:
        return out
    d2 = vals[-1] - vals[-2]
    out["error_estimate"] = abs(d2)
    if len(vals) >= 3:
        d1 = vals[-2] - vals[-3]
        if d2 == 0.0:
            out["error_estimate"] = 0.0
            out["extrapolation_trusted"] = True
        elif d1 != 0.0 and d1 / d2 > min_ratio:
            ratio = d1 / d2
            out["observed_rate"] = math.log2(ratio)
            out["extrapolated"] = float(vals[-1] + d2 / (ratio - 1.0))
            out["error_estimate"] = abs(out["extrapolated"] - vals[-1])
            out["extrapolation_trusted"] = True
        elif d1 != 0.0:
            out["observed_rate"] = math.log2(abs(d1 / d2))
    return out


def plate_critical_stress(elastic: Any, surface: Any, *, half_crack: float, half_width: float,
                          half_height: float, rotation: Any = None,
                          levels: Sequence[int] = (0, 1, 2), mesh_source: str = "mesh",
                          field_window: float | None = 3.0):
    """σ_c of a centre-cracked anisotropic plate from handoffs, with its error budget.

    The stiffness comes as an ``ElasticTensor`` (its Estimate's sources: functional, fit,
    transferability, ...), the surface energy as a ``SurfaceEnergy``; units are converted by the
    handoffs themselves.  Every source of both is propagated through the finite-element model at
    the finest mesh; the discretisation error (Richardson extrapolation over ``levels``) is added
    as the ``mesh_source`` source; the closed form (Sih–Paris–Irwin factor with Tada's finite-width
    correction) is propagated beside it.

    Parameters
    ----------
    elastic : ElasticTensor
        Stiffness in crystal axes.
    surface : SurfaceEnergy
        Energy of the cleavage surface; fracture where G = 2γ.
    half_crack, half_width, half_height : float
        ``a``, ``W``, ``H`` in m.
    rotation : array_like (3, 3), optional
        Crack frame in crystal axes (default :func:`crack_frame_111`).
    levels : sequence of int
        Mesh refinement levels (>= 3 for an observed rate), finest last.
    mesh_source : str
        Name of the discretisation source.
    field_window : float or None
        Keep the vertex stresses within this many ``a`` of the centre (for plots); None: none.

    Returns
    -------
    CriticalStress
    """
    from ..handoffs import CriticalStress, ElasticTensor, SurfaceEnergy
    from ..uq import one_sigma_samples, propagate

    if not isinstance(elastic, ElasticTensor):
        raise InputError("elastic", type(elastic).__name__, "an ElasticTensor handoff")
    if not isinstance(surface, SurfaceEnergy):
        raise InputError("surface", type(surface).__name__, "a SurfaceEnergy handoff")
    a = v.positive("half_crack", half_crack)
    W = v.positive("half_width", half_width)
    H = v.positive("half_height", half_height)
    levels = [int(lv) for lv in levels]
    if not levels or levels != sorted(set(levels)) or levels[0] < 0:
        raise InputError("levels", levels, "increasing refinement levels >= 0, finest last")
    R = crack_frame_111() if rotation is None else rotation
    gamma = surface.value.to("J/m^2")
    c_gpa = elastic.voigt.to("GPa")

    def stiffness(voigt_gpa):
        return plane_strain_stiffness(np.asarray(voigt_gpa) * 1e9, R)

    finest = levels[-1]
    plate = CentreCrackedPlate(stiffness(c_gpa.value), a, W, H)
    g_cache: dict = {}

    def g_per_unit_stress(voigt_gpa, level=finest):
        key = (level, np.asarray(voigt_gpa).tobytes())
        if key not in g_cache:
            g_tips = plate.energy_release_rate_for([stiffness(voigt_gpa)], refine=level)[0]
            g_cache[key] = float(np.mean(g_tips))  # both tips agree (180° rotation symmetry)
        return g_cache[key]

    def sigma_c(voigt_gpa, gam):
        return math.sqrt(2.0 * gam / g_per_unit_stress(voigt_gpa)) / 1e6  # MPa

    sig = propagate(sigma_c, c_gpa, gamma, unit="MPa")
    g_levels = [g_per_unit_stress(c_gpa.value, lv) for lv in levels]
    conv = richardson(levels, g_levels)
    s_fine = math.sqrt(2 * gamma.value / g_levels[-1]) / 1e6
    e_sigma = 0.5 * s_fine * conv["error_estimate"] / g_levels[-1]   # σ ∝ G^(-1/2)
    sig = sig.with_source(mesh_source, one_sigma_samples(s_fine, e_sigma))
    F = finite_width_factor(a / W)

    def sigma_closed(voigt_gpa, gam):
        f = sih_paris_irwin_factor(stiffness(voigt_gpa))
        return math.sqrt(2.0 * gam / (f * math.pi * a * F ** 2)) / 1e6

    closed = propagate(sigma_closed, c_gpa, gamma, unit="MPa")
    g_closed = sih_paris_irwin_factor(stiffness(c_gpa.value)) * math.pi * a * F ** 2
    fieldw = {}
    if field_window is not None:
        res = plate.solve(remote_stress=1.0, refine=finest)
        fieldw = _field_window(res, a, field_window)
    return CriticalStress(value=sig, closed_form=closed, g_per_unit_stress_fe=g_levels[-1],
                          g_per_unit_stress_closed=g_closed,
                          mesh={"levels": levels, "G": g_levels, **conv},
                          geometry={"a_m": a, "W_m": W, "H_m": H, "finite_width_factor": F,
                                    "crack": "(111) plane, front [1-10], propagation [11-2]"
                                    if rotation is None else "given crack frame"},
                          field=fieldw)


def _field_window(sol: "CrackedPlateSolution", a: float, window: float = 3.0) -> dict:
    """Vertex stresses of the triangles within ``window``·a of the centre (SI, unit load)."""
    nodes = np.asarray(sol.nodes)
    tri = np.asarray(sol.triangles)
    inside = np.all((np.abs(nodes[tri, 0]) <= window * a)
                    & (np.abs(nodes[tri, 1]) <= window * a / 2), axis=1)
    tri = tri[inside]
    used, inverse = np.unique(tri, return_inverse=True)
    stress = np.asarray(sol.stress)[used]
    return {"nodes": nodes[used], "triangles": inverse.reshape(tri.shape),
            "sxx": stress[:, 0], "syy": stress[:, 1], "sxy": stress[:, 2]}


def plot_stress_field(result: CrackedPlateSolution, ax: Any = None, component: str = "yy", *,
                      window: float = 2.0, log: bool = True):
    """Draw a stress component near the crack (tripcolor of vertex stresses).

    Parameters
    ----------
    result : CrackedPlateSolution
    ax : matplotlib Axes, optional
        Created on a new Agg figure when omitted.
    component : {"xx", "yy", "xy"}
    window : float
        Half-size of the view in units of ``a`` (clipped to the plate).
    log : bool
        Logarithmic colour scale of ``|sigma| / sigma_remote`` (the tip field spans decades).

    Returns
    -------
    matplotlib.axes.Axes
    """
    comp = v.one_of("component", component, ("xx", "yy", "xy"))
    wnd = v.positive("window", window)
    import matplotlib.colors as mcolors
    import matplotlib.tri as mtri

    if ax is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 4.5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(111)
    idx = {"xx": 0, "yy": 1, "xy": 2}[comp]
    scale = result.remote_stress if result.remote_stress != 0 else 1.0
    s = result.stress[:, idx] / scale
    a = result.half_crack
    tri = mtri.Triangulation(result.nodes[:, 0] / a, result.nodes[:, 1] / a, result.triangles)
    if log:
        vals = np.abs(s)
        lo = max(1e-2, float(np.percentile(vals, 1)))
        art = ax.tripcolor(tri, np.maximum(vals, lo), shading="gouraud", cmap="inferno",
                           norm=mcolors.LogNorm(vmin=lo, vmax=float(vals.max())))
        label = rf"$|\sigma_{{{comp}}}| / \sigma$"
    else:
        lim = float(np.percentile(np.abs(s), 99))
        art = ax.tripcolor(tri, s, shading="gouraud", cmap="RdBu_r", vmin=-lim, vmax=lim)
        label = rf"$\sigma_{{{comp}}} / \sigma$"
    ax.plot([-1, 1], [0, 0], color="w", lw=1.0)
    xw = min(wnd, result.half_width / a)
    yw = min(wnd * 0.6, result.half_height / a)
    ax.set_xlim(-xw, xw)
    ax.set_ylim(-yw, yw)
    ax.set_aspect("equal")
    ax.set_xlabel("x / a")
    ax.set_ylabel("y / a")
    ax.figure.colorbar(art, ax=ax, label=label)
    return ax
