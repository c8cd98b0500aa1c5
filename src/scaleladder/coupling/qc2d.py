"""The quasicontinuum method in two dimensions: a triangular lattice of atoms, representative
atoms meshed by linear triangles, Cauchy–Born elements and a nonlocal (atomistic) region — the
same three variants as the chain (:mod:`scaleladder.coupling.quasicontinuum`).

Sites ``X`` (Å) of a 2D lattice with nearest-neighbour distance ``a`` and a pair potential.  The
representative atoms (repatoms) are triangulated (Delaunay on their reference positions); every
site follows by linear interpolation inside its triangle.  Nonlocal sites are atomistic; every
element that has a nonlocal vertex must be a lattice triangle (edges ``a``): the mesh is fully
refined at the interface, so the Voronoi cell of a nonlocal site is exactly a third of each of
its six triangles, and the Cauchy–Born energy of an interface element is weighted by the share
of its local vertices, ``w_e = |e| · n_local/3`` (``|e|`` elsewhere).

* ``energy`` (QCE): ``Σ_{i∈A} E_i + Σ_e w_e W(F_e)`` — the site energies of nonlocal atoms
  (with interpolated neighbours) plus the Cauchy–Born energy; conservative, ghost forces at the
  interface.
* ``gfc``: QCE plus dead-load corrections ``g = f_QCF(ŷ) − f_QCE(ŷ)`` at a reference ``ŷ``.
* ``force`` (QCF): atomistic forces on nonlocal repatoms, Cauchy–Born forces of the fully local
  model on the others; no energy (``energy()`` raises; the relaxation's log shows NaN).

:meth:`QC2D.relax` minimises (QCE, GFC) or zeroes the forces (QCF) with ASE's FIRE; an external
potential (an indenter) acts on the repatoms.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from ..core import validate as _v
from ..core.errors import ConvergenceError, InputError, PropertyNotImplementedError
from .cauchy_born import PairLattice
from .quasicontinuum import VARIANTS, _pair_function

__all__ = ["QC2D", "triangular_lattice"]


def triangular_lattice(nx: int, ny: int, a: float) -> np.ndarray:
    """Sites (n, 2) of an ``nx × ny`` patch of the triangular lattice (nearest-neighbour distance
    ``a``, Å): rows ``y = j a√3/2``, odd rows shifted by ``a/2``; close-packed rows along x."""
    nx = _v.positive_int("nx", nx, minimum=2)
    ny = _v.positive_int("ny", ny, minimum=2)
    a = _v.positive("a", a)
    i, j = np.meshgrid(np.arange(nx), np.arange(ny))
    x = a * (i + 0.5 * (j % 2))
    y = a * j * math.sqrt(3.0) / 2.0
    return np.column_stack([x.ravel(), y.ravel()])


def _pairs_within(y: np.ndarray, rc: float):
    from scipy.spatial import cKDTree

    p = cKDTree(y).query_pairs(rc, output_type="ndarray")
    if p.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    return p[:, 0], p[:, 1]


class QC2D:
    """2D quasicontinuum on a triangular lattice (module docstring).

    Parameters
    ----------
    X : array (n, 2)
        Reference sites (Å): a perfect triangular lattice patch (:func:`triangular_lattice`).
    a : float
        Nearest-neighbour distance (Å) of the reference lattice.
    pair : pair calculator or callable
        The potential (``rc`` from the calculator).
    repatoms : array of int
        Site indices of the representative atoms; their triangulation must cover every site.
    nonlocal_sites : array of int or mask
        The atomistic region (all repatoms; interface elements lattice triangles).
    variant : {"energy", "gfc", "force"}
    external : callable, optional
        ``y_rep (m, 2) -> (energy eV, forces (m, 2) eV/Å)`` acting on the repatoms (an indenter).
    """

    def __init__(self, X, a: float, pair: Any, repatoms, nonlocal_sites=(), *,
                 variant: str = "energy", rc: float | None = None,
                 external: Callable | None = None):
        from scipy.spatial import Delaunay

        self.X = _v.finite_array("X", X, (None, 2))
        self.a = _v.positive("a", a)
        self.phi, self.rc = _pair_function(pair, rc)
        self.variant = _v.one_of("variant", variant, VARIANTS)
        n = self.X.shape[0]
        rep = np.unique(np.asarray(repatoms))
        if rep.size < 3 or not np.issubdtype(rep.dtype, np.integer) or rep[0] < 0 or rep[-1] >= n:
            raise InputError("repatoms", f"{rep.size} indices", f"site indices in [0, {n}), at least 3")
        self.rep = rep
        nl = np.zeros(n, dtype=bool)
        nls = np.asarray(nonlocal_sites)
        if nls.dtype == bool:
            if nls.shape != (n,):
                raise InputError("nonlocal_sites", f"a mask of shape {nls.shape}", f"a mask over {n} sites")
            nl = nls.copy()
        elif nls.size:
            nl[nls.astype(int)] = True
        is_rep = np.zeros(n, dtype=bool)
        is_rep[rep] = True
        bad = np.flatnonzero(nl & ~is_rep)
        if bad.size:
            raise InputError("nonlocal_sites", f"site {int(bad[0])} (and {bad.size - 1} more) not a "
                             "repatom", "nonlocal (atomistic) sites that are all repatoms: the mesh "
                             "must conform to the atomistic region")
        self.nonlocal_ = nl
        self.external = external
        # mesh of the repatoms
        Xr = self.X[rep]
        tri = Delaunay(Xr)
        T = tri.simplices
        e1, e2 = Xr[T[:, 1]] - Xr[T[:, 0]], Xr[T[:, 2]] - Xr[T[:, 0]]
        area = 0.5 * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
        keep = np.abs(area) > 1e-6 * self.a ** 2
        T, area = T[keep], area[keep]
        flip = area < 0
        T[flip] = T[flip][:, [0, 2, 1]]
        self.T, self.area = T, np.abs(area)
        # every site inside some element; barycentric interpolation
        simplex = self._locate(tri, keep)
        if np.any(simplex < 0):
            k = int(np.flatnonzero(simplex < 0)[0])
            raise InputError("repatoms", f"site {k} at {self.X[k].round(3).tolist()} outside the mesh",
                             "repatoms whose triangulation covers every site (keep the sample's "
                             "boundary sites as repatoms)")
        Xe = Xr[self.T]                                            # (n_el, 3, 2)
        M = np.concatenate([np.ones((len(self.T), 3, 1)), Xe], axis=2)   # rows [1, x, y]
        Minv = np.linalg.inv(M)                                    # (n_el, 3, 3)
        lam = np.einsum("sk,skj->sj", np.column_stack([np.ones(n), self.X]), Minv[simplex])
        lam[np.abs(lam) < 1e-12] = 0.0
        rows = np.repeat(np.arange(n), 3)
        self.Phi = sp.csr_matrix((lam.ravel(), (rows, self.T[simplex].ravel())), shape=(n, rep.size))
        self.Phi.eliminate_zeros()
        self.G = Minv[:, 1:, :].transpose(0, 2, 1)                 # (n_el, 3 vertices, 2): ∇N
        # interface elements: lattice triangles; Cauchy–Born weights
        nl_rep = nl[rep]
        n_nl = nl_rep[self.T].sum(axis=1)
        lat_area = math.sqrt(3.0) / 4.0 * self.a ** 2
        touch = n_nl > 0
        coarse = touch & (np.abs(self.area - lat_area) > 1e-6 * lat_area)
        if np.any(coarse):
            k = int(np.flatnonzero(coarse)[0])
            raise InputError("repatoms", f"element {k} (area {self.area[k]:.4g} Å²) touches the "
                             "atomistic region", "a mesh refined to lattice triangles where it "
                             "meets the nonlocal sites (refine there)")
        self.w_qce = self.area * (3 - n_nl) / 3.0
        self._with_local = np.flatnonzero(n_nl < 3)
        self.lattice = PairLattice.triangular(self.a, self.phi, self.rc)
        # the cluster: nonlocal sites and every site that may come within rc of one
        from scipy.spatial import cKDTree

        reach = self.rc + 2.0 * self.a
        if nl.any():
            near = cKDTree(self.X).query_ball_point(self.X[nl], reach)
            cl = np.unique(np.concatenate([np.asarray(c, dtype=int) for c in near]))
        else:
            cl = np.zeros(0, dtype=int)
        self.cluster = cl
        self.Phi_c = self.Phi[cl]
        self.nl_c = nl[cl].astype(float)
        self.rep_pos = -np.ones(n, dtype=int)
        self.rep_pos[rep] = np.arange(rep.size)
        self._ghost = None
        # interior repatoms: farther than rc + a from the bounding box of the sample
        lo, hi = self.X.min(axis=0), self.X.max(axis=0)
        d = np.minimum(Xr - lo, hi - Xr).min(axis=1)
        self.interior = d > self.rc + self.a

    def _locate(self, tri, keep):
        """Element (in the kept numbering) containing each site, ``-1`` outside the mesh."""
        s = tri.find_simplex(self.X, tol=1e-9)
        new = -np.ones(len(keep), dtype=int)
        new[keep] = np.arange(int(keep.sum()))
        out = np.where(s >= 0, new[np.maximum(s, 0)], -1)
        # a site Delaunay placed in a dropped sliver: look for it in the kept elements
        Xr = self.X[self.rep]
        P = Xr[self.T]
        d = np.stack([P[:, 1] - P[:, 0], P[:, 2] - P[:, 0]], axis=2)
        for k in np.flatnonzero(out < 0):
            lam = np.linalg.solve(d, (self.X[k] - P[:, 0])[..., None])[..., 0]
            ok = np.flatnonzero((lam >= -1e-9).all(axis=1) & (lam.sum(axis=1) <= 1 + 1e-9))
            if ok.size:
                out[k] = ok[0]
        return out

    # -- pieces -------------------------------------------------------------------------------
    @property
    def n_dofs(self) -> int:
        return 2 * int(self.rep.size)

    def _y(self, y_rep) -> np.ndarray:
        return _v.finite_array("y", y_rep, (self.rep.size, 2))

    def sites(self, y_rep) -> np.ndarray:
        """Positions of every site (Å)."""
        return self.Phi @ self._y(y_rep)

    def homogeneous(self, F) -> np.ndarray:
        """Repatom positions of ``y = F X``."""
        F = _v.finite_array("F", F, (2, 2))
        return self.X[self.rep] @ F.T

    def _local(self, y, w, elements=None):
        """Cauchy–Born energy ``Σ_e w_e W(F_e)`` and its gradient, over ``elements`` (all)."""
        T, G = (self.T, self.G) if elements is None else (self.T[elements], self.G[elements])
        if elements is not None:
            w = w[elements]
        g = np.zeros_like(y)
        if T.shape[0] == 0:
            return 0.0, g
        F = y[T].transpose(0, 2, 1) @ G                           # (n_el, 2, 2): Σ_a y_a ∇N_a
        W, P = self.lattice.batch(F)
        ge = (G @ (w[:, None, None] * P).transpose(0, 2, 1)).reshape(-1, 2)  # dE/dy_a per element
        for c in range(2):
            g[:, c] = np.bincount(T.ravel(), weights=ge[:, c], minlength=y.shape[0])
        return float(np.sum(w * W)), g

    def _nonlocal(self, y, full: bool):
        """Pair sums in the cluster: ``full=False`` — the nonlocal site energies (weights
        ½(a_i + a_j)); ``True`` — every pair with weight 1 (atomistic forces on the cluster)."""
        if self.cluster.size == 0:
            return 0.0, np.zeros_like(y), np.zeros((0, 2))
        yc = self.Phi_c @ y
        i, j = _pairs_within(yc, self.rc)
        w = 0.5 * (self.nl_c[i] + self.nl_c[j])
        if not full:
            m = w > 0
            i, j, w = i[m], j[m], w[m]
        else:
            w = np.ones_like(w)
        d = yc[j] - yc[i]
        r = np.linalg.norm(d, axis=1)
        e, d1, _ = self.phi(r)
        fij = (w * d1 / r)[:, None] * d                            # force on i from j
        fc = np.zeros_like(yc)
        for c in range(2):
            fc[:, c] = np.bincount(i, weights=fij[:, c], minlength=yc.shape[0]) - \
                np.bincount(j, weights=fij[:, c], minlength=yc.shape[0])
        return float(np.sum(w * e)), self.Phi_c.T @ fc, fc

    def _qce(self, y):
        e_nl, f_nl, _ = self._nonlocal(y, full=False)
        e_l, g_l = self._local(y, self.w_qce, self._with_local)     # w = 0 on the others
        return e_nl + e_l, f_nl - g_l

    def _qcf(self, y):
        # the local forces are wanted on local repatoms only: elements with a local vertex
        _, g_l = self._local(y, self.area, self._with_local)
        f = -g_l
        if self.cluster.size:
            _, _, fc = self._nonlocal(y, full=True)
            nl_sites = self.cluster[self.nl_c > 0]
            f[self.rep_pos[nl_sites]] = fc[self.nl_c > 0]
        return f

    # -- public -------------------------------------------------------------------------------
    def set_reference(self, y_rep) -> None:
        """Reference configuration of the ``gfc`` variant's dead-load correction."""
        y = self._y(y_rep)
        self._ghost = self._qce(y)[1] - self._qcf(y)

    def ghost_forces(self, F=np.eye(2)) -> np.ndarray:
        """QCE forces (m, 2) under the homogeneous deformation ``F`` (eV/Å)."""
        return self._qce(self.homogeneous(F))[1]

    def energy(self, y_rep) -> float:
        """QC energy (eV) plus the external potential's; QCF raises."""
        y = self._y(y_rep)
        if self.variant == "force":
            raise PropertyNotImplementedError(
                "the force-based quasicontinuum (QCF) is not conservative: it has no energy")
        e = self._qce(y)[0]
        if self.variant == "gfc":
            if self._ghost is None:
                self.set_reference(y)
            e += float(np.sum(self._ghost * y))
        if self.external is not None:
            e += float(self.external(y)[0])
        return e

    def forces(self, y_rep) -> np.ndarray:
        """Forces on the repatoms (m, 2), eV/Å."""
        y = self._y(y_rep)
        if self.variant == "force":
            f = self._qcf(y)
        else:
            f = self._qce(y)[1]
            if self.variant == "gfc":
                if self._ghost is None:
                    self.set_reference(y)
                f = f - self._ghost
        if self.external is not None:
            f = f + self.external(y)[1]
        return f

    def patch_test(self, F) -> float:
        """Largest force (eV/Å) on an interior repatom under ``y = F X`` (external potential off)."""
        y = self.homogeneous(F)
        ext, self.external = self.external, None
        try:
            if self.variant == "gfc":
                self.set_reference(y)
            return float(np.abs(self.forces(y)[self.interior]).max())
        finally:
            self.external = ext

    def relax(self, y0, fixed, *, fmax: float = 1e-4, steps: int = 20000) -> np.ndarray:
        """Relax the free repatoms with ASE's FIRE (forces only: works for every variant) until
        the largest free force is below ``fmax`` eV/Å; ``fixed``: mask or indices of repatoms."""
        from ase.optimize import FIRE

        y = self._y(y0).copy()
        hold = np.zeros(self.rep.size, dtype=bool)
        hold[np.asarray(fixed)] = True
        holder = _Holder(self, y, hold)
        opt = FIRE(holder, logfile=None, maxstep=0.2 * self.a)
        if not opt.run(fmax=_v.positive("fmax", fmax), steps=_v.positive_int("steps", steps)):
            f = np.linalg.norm(self.forces(holder.y)[~hold], axis=1).max()
            raise ConvergenceError(f"QC relaxation: largest force {f:.3g} eV/Å after {steps} FIRE "
                                   "steps", suggestion="smaller load steps or more steps")
        return holder.y




class _Holder:
    """What ASE's optimisers need: an object with ``__ase_optimizable__`` (the free repatoms as
    3D positions with z = 0; the value is the QC energy, NaN for the force-based variant)."""

    def __init__(self, qc: QC2D, y: np.ndarray, hold: np.ndarray):
        self.qc, self.y, self.hold = qc, y, hold
        self._cache = None

    def __ase_optimizable__(self):
        from ase.optimize.optimize import Optimizable

        holder = self

        class _Opt(Optimizable):
            def get_x(self):
                return holder.y[~holder.hold].ravel().copy()

            def set_x(self, x):
                holder.y[~holder.hold] = x.reshape(-1, 2)

            def get_gradient(self):
                # ASE asks for the gradient up to three times per step at the same positions
                if holder._cache is None or not np.array_equal(holder._cache[0], holder.y):
                    holder._cache = (holder.y.copy(), -holder.qc.forces(holder.y)[~holder.hold].ravel())
                return holder._cache[1].copy()

            def get_value(self):
                if holder.qc.variant == "force":
                    return float("nan")
                return holder.qc.energy(holder.y)

            def iterimages(self):
                return iter(())

            def ndofs(self):
                return int(2 * (~holder.hold).sum())

            def gradient_norm(self, gradient):
                return float(np.sqrt((gradient.reshape(-1, 2) ** 2).sum(axis=1)).max()) \
                    if gradient.size else 0.0

            def converged(self, gradient, fmax):
                return self.gradient_norm(gradient) < fmax

        return _Opt()
