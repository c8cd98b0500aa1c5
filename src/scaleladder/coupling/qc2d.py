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

__all__ = ["QC2D", "triangular_lattice", "pair_energy"]


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


def pair_energy(y, pair: Any, rc: float | None = None) -> float:
    """Full atomistic energy (eV) ``Σ_{i<j} φ(r_ij)`` of the positions ``y`` (n, d) under a pair
    potential (free boundaries): how QC configurations are scored against the full model."""
    phi, rc = _pair_function(pair, rc)
    y = _v.finite_array("y", y, (None, None))
    i, j = _pairs_within(y, rc)
    return float(np.sum(phi(np.linalg.norm(y[j] - y[i], axis=1))[0])) if i.size else 0.0


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

    dim = 2

    def __init__(self, X, a: float, pair: Any, repatoms, nonlocal_sites=(), *,
                 variant: str = "energy", rc: float | None = None,
                 external: Callable | None = None):
        from scipy.spatial import Delaunay

        d = self.dim
        self.X = _v.finite_array("X", X, (None, d))
        self.a = _v.positive("a", a)
        self.phi, self.rc = _pair_function(pair, rc)
        self.variant = _v.one_of("variant", variant, VARIANTS)
        if d == 3 and self.variant != "force":
            raise InputError("variant", variant, "'force' in 3D (the energy-based weights are the "
                             "2D lattice's; the force-based QC needs none)")
        n = self.X.shape[0]
        rep = np.unique(np.asarray(repatoms))
        if rep.size < d + 1 or not np.issubdtype(rep.dtype, np.integer) or rep[0] < 0 or rep[-1] >= n:
            raise InputError("repatoms", f"{rep.size} indices", f"site indices in [0, {n}), at least {d + 1}")
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
        if d == 2:
            tri = Delaunay(Xr)
        else:
            # a lattice is full of cospherical points (fcc's octahedra), where Delaunay is not
            # unique: triangulate a copy perturbed by 1e-7 a, which is a conforming mesh whose
            # degenerate (flat) tetrahedra are kept below in their limit form
            tri = Delaunay(Xr + 1e-7 * self.a * np.random.default_rng(0).standard_normal(Xr.shape))
        T = tri.simplices.copy()
        edges = (Xr[T[:, 1:]] - Xr[T[:, :1]]).transpose(0, 2, 1)    # (n_el, d, d): columns
        area = np.linalg.det(edges) / math.factorial(d)           # signed area (2D) / volume (3D)
        keep = np.abs(area) > 1e-6 * self.a ** d
        if d == 3:
            pert = tri.points
            ep = (pert[T[:, 1:]] - pert[T[:, :1]]).transpose(0, 2, 1)
            sign = np.sign(np.linalg.det(ep))                      # orientation in the perturbed mesh
            T[sign < 0] = T[sign < 0][:, [0, 2, 1, 3]]
            area = np.linalg.det((Xr[T[:, 1:]] - Xr[T[:, :1]]).transpose(0, 2, 1)) / 6.0
            self._flat_elements(Xr, T[~keep], tri, keep)
        else:
            self.T_flat = np.zeros((0, d + 1), dtype=int)
        T, area = T[keep], area[keep]
        flip = area < 0
        T[flip] = T[flip][:, [0, 2, 1] + list(range(3, d + 1))]
        self.T, self.area = T, np.abs(area)
        # every site inside some element; barycentric interpolation
        simplex = self._locate(tri, keep)
        if np.any(simplex < 0):
            k = int(np.flatnonzero(simplex < 0)[0])
            raise InputError("repatoms", f"site {k} at {self.X[k].round(3).tolist()} outside the mesh",
                             "repatoms whose triangulation covers every site (keep the sample's "
                             "boundary sites as repatoms)")
        Xe = Xr[self.T]                                            # (n_el, d + 1, d)
        M = np.concatenate([np.ones((len(self.T), d + 1, 1)), Xe], axis=2)   # rows [1, x, y(, z)]
        Minv = np.linalg.inv(M)                                    # (n_el, 3, 3)
        lam = np.einsum("sk,skj->sj", np.column_stack([np.ones(n), self.X]), Minv[simplex])
        lam[np.abs(lam) < 1e-12] = 0.0
        rows = np.repeat(np.arange(n), d + 1)
        self.Phi = sp.csr_matrix((lam.ravel(), (rows, self.T[simplex].ravel())), shape=(n, rep.size))
        self.Phi.eliminate_zeros()
        self.G = Minv[:, 1:, :].transpose(0, 2, 1)                 # (n_el, d + 1 vertices, d): ∇N
        # interface elements: lattice triangles; Cauchy–Born weights (2D; in 3D the force-based
        # QC needs only that every site within rc of a nonlocal one is a repatom)
        nl_rep = nl[rep]
        n_nl = nl_rep[self.T].sum(axis=1)
        lat_area = math.sqrt(3.0) / 4.0 * self.a ** 2
        touch = n_nl > 0
        coarse = touch & (np.abs(self.area - lat_area) > 1e-6 * lat_area) & (d == 2)
        if np.any(coarse):
            k = int(np.flatnonzero(coarse)[0])
            raise InputError("repatoms", f"element {k} (area {self.area[k]:.4g} Å²) touches the "
                             "atomistic region", "a mesh refined to lattice triangles where it "
                             "meets the nonlocal sites (refine there)")
        self.w_qce = self.area * (d + 1 - n_nl) / (d + 1.0)
        self._with_local = np.flatnonzero(n_nl < d + 1)
        self.lattice = (PairLattice.triangular(self.a, self.phi, self.rc) if d == 2 else
                        PairLattice.fcc(self.a * math.sqrt(2.0), self.phi, self.rc))
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

    def _flat_elements(self, Xr, Tf, tri, keep) -> None:
        """Flat tetrahedra (four coplanar repatoms) of the perturbed Delaunay mesh: they have no
        volume and no deformation gradient of their own, but they join two splittings of a
        square, and without them the mesh does not conform (the patch test fails at their
        vertices).  Their limit contribution to the nodal forces is ``P·(V∇N_a)`` with
        ``V∇N_a`` the adjugate rows ``(e2×e3, e3×e1, e1×e2)/6`` (finite when V → 0, oriented as
        in the perturbed mesh) and ``P`` taken from the nearest regular element (the
        element sharing a face with it, else one sharing a vertex)."""
        self.T_flat = Tf
        if Tf.shape[0] == 0:
            self.VG_flat = np.zeros((0, 4, 3))
            self.src_flat = np.zeros(0, dtype=int)
            return
        e = Xr[Tf[:, 1:]] - Xr[Tf[:, :1]]                         # (n_f, 3 edges, 3)
        r1 = np.cross(e[:, 1], e[:, 2])
        r2 = np.cross(e[:, 2], e[:, 0])
        r3 = np.cross(e[:, 0], e[:, 1])
        VG = np.stack([-(r1 + r2 + r3), r1, r2, r3], axis=1) / 6.0
        self.VG_flat = VG
        # the regular element whose F stands in: a face neighbour, else one sharing a vertex
        new = -np.ones(len(keep), dtype=int)
        new[keep] = np.arange(int(keep.sum()))
        flat_idx = np.flatnonzero(~keep)
        src = -np.ones(len(flat_idx), dtype=int)
        for k, f in enumerate(flat_idx):
            frontier, seen = [f], {f}
            while frontier and src[k] < 0:
                nxt = []
                for g in frontier:
                    for h in tri.neighbors[g]:
                        if h < 0 or h in seen:
                            continue
                        if keep[h]:
                            src[k] = new[h]
                            break
                        seen.add(h)
                        nxt.append(h)
                    if src[k] >= 0:
                        break
                frontier = nxt
        self.src_flat = src

    def _locate(self, tri, keep):
        """Element (in the kept numbering) containing each site, ``-1`` outside the mesh."""
        s = tri.find_simplex(self.X, tol=1e-9)
        new = -np.ones(len(keep), dtype=int)
        new[keep] = np.arange(int(keep.sum()))
        out = np.where(s >= 0, new[np.maximum(s, 0)], -1)
        # a site Delaunay placed in a dropped sliver: look for it in the kept elements
        Xr = self.X[self.rep]
        P = Xr[self.T]
        D = (P[:, 1:] - P[:, :1]).transpose(0, 2, 1)
        for k in np.flatnonzero(out < 0):
            lam = np.linalg.solve(D, (self.X[k] - P[:, 0])[..., None])[..., 0]
            ok = np.flatnonzero((lam >= -1e-9).all(axis=1) & (lam.sum(axis=1) <= 1 + 1e-9))
            if ok.size:
                out[k] = ok[0]
        return out

    # -- pieces -------------------------------------------------------------------------------
    @property
    def n_dofs(self) -> int:
        return self.dim * int(self.rep.size)

    def _y(self, y_rep) -> np.ndarray:
        return _v.finite_array("y", y_rep, (self.rep.size, self.dim))

    def sites(self, y_rep) -> np.ndarray:
        """Positions of every site (Å)."""
        return self.Phi @ self._y(y_rep)

    def homogeneous(self, F) -> np.ndarray:
        """Repatom positions of ``y = F X``."""
        F = _v.finite_array("F", F, (self.dim, self.dim))
        return self.X[self.rep] @ F.T

    def _local(self, y, w, elements=None):
        """Cauchy–Born energy ``Σ_e w_e W(F_e)`` and its gradient, over ``elements`` (all)."""
        T, G = (self.T, self.G) if elements is None else (self.T[elements], self.G[elements])
        if elements is not None:
            w = w[elements]
        g = np.zeros_like(y)
        if T.shape[0] == 0:
            return 0.0, g
        F = y[T].transpose(0, 2, 1) @ G                           # (n_el, d, d): Σ_a y_a ∇N_a
        W, P = self.lattice.batch(F)
        ge = (G @ (w[:, None, None] * P).transpose(0, 2, 1)).reshape(-1, self.dim)  # dE/dy_a
        Tall = T.ravel()
        if self.T_flat.shape[0]:                                  # flat tetrahedra (3D): no energy
            s = self.src_flat
            Fs = y[self.T[s]].transpose(0, 2, 1) @ self.G[s]
            Ps = self.lattice.batch(Fs)[1]
            gf = (self.VG_flat @ Ps.transpose(0, 2, 1)).reshape(-1, self.dim)
            ge = np.concatenate([ge, gf])
            Tall = np.concatenate([Tall, self.T_flat.ravel()])
        for c in range(self.dim):
            g[:, c] = np.bincount(Tall, weights=ge[:, c], minlength=y.shape[0])
        return float(np.sum(w * W)), g

    def _nonlocal(self, y, full: bool):
        """Pair sums in the cluster: ``full=False`` — the nonlocal site energies (weights
        ½(a_i + a_j)); ``True`` — every pair with weight 1 (atomistic forces on the cluster)."""
        if self.cluster.size == 0:
            return 0.0, np.zeros_like(y), np.zeros((0, self.dim))
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
        for c in range(self.dim):
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

    def ghost_forces(self, F=None) -> np.ndarray:
        """QCE forces (m, d) under the homogeneous deformation ``F`` (default ``I``; eV/Å)."""
        return self._qce(self.homogeneous(np.eye(self.dim) if F is None else F))[1]

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

    def _stiffness_scale(self) -> np.ndarray:
        """Per repatom, how much stiffer its node is than an atom's: a node of a coarse element
        of size h carries stiffness ~ (h/a)^(d−2) (an element's energy is ~ h^d (u/h)²), so
        ``(V_i/V_atom)^((d−2)/d)`` with ``V_i`` its share of the mesh — 1 in 2D, large for
        coarse 3D nodes.  FIRE is run in coordinates scaled by its square root (a diagonal
        preconditioner), or the coarse nodes set its step and the atoms crawl."""
        if self.dim == 2:
            return np.ones(self.rep.size)
        v = np.zeros(self.rep.size)
        for k in range(self.dim + 1):
            v += np.bincount(self.T[:, k], weights=self.area, minlength=self.rep.size)
        v /= self.dim + 1
        v_atom = self.a ** 3 / math.sqrt(2.0)                     # fcc: a_c³/4
        c = np.maximum(v / v_atom, 1.0) ** ((self.dim - 2) / self.dim)
        c[self.nonlocal_[self.rep]] = 1.0
        return c

    def relax(self, y0, fixed, *, fmax: float = 1e-4, steps: int = 20000,
              optimizer: str = "fire") -> np.ndarray:
        """Relax the free repatoms until the largest free force is below ``fmax`` eV/Å;
        ``fixed``: mask or indices of repatoms.  ``optimizer``: ``"fire"`` (ASE's FIRE, forces
        only: every variant) or ``"lbfgs"`` (scipy's L-BFGS-B on the QC energy: the conservative
        variants only — several times faster on a large full atomistic model, whose
        long-wavelength modes FIRE relaxes slowly)."""
        y = self._y(y0).copy()
        hold = np.zeros(self.rep.size, dtype=bool)
        hold[np.asarray(fixed)] = True
        if _v.one_of("optimizer", optimizer, ("fire", "lbfgs")) == "lbfgs":
            return self._relax_lbfgs(y, hold, _v.positive("fmax", fmax),
                                     _v.positive_int("steps", steps))
        from ase.optimize import FIRE

        holder = _Holder(self, y, hold, self._stiffness_scale())
        opt = FIRE(holder, logfile=None, maxstep=0.2 * self.a)
        # elements whose vertices are all held have a fixed energy and push only on held
        # repatoms: left out while relaxing
        saved = self._with_local
        self._with_local = saved[~hold[self.T[saved]].all(axis=1)]
        try:
            ok = opt.run(fmax=_v.positive("fmax", fmax), steps=_v.positive_int("steps", steps))
            if not ok:
                f = np.linalg.norm(self.forces(holder.y)[~hold], axis=1).max()
        finally:
            self._with_local = saved
        if not ok:
            raise ConvergenceError(f"QC relaxation: largest force {f:.3g} eV/Å after {steps} FIRE "
                                   "steps", suggestion="smaller load steps or more steps")
        return holder.y




    def _relax_lbfgs(self, y, hold, fmax, steps):
        from scipy.optimize import minimize

        if self.variant == "force":
            raise InputError("optimizer", "lbfgs", "'fire' for the force-based QC (it has no "
                             "energy to minimise)")
        free = ~hold

        def fg(x):
            y[free] = x.reshape(-1, self.dim)
            return self.energy(y), -self.forces(y)[free].ravel()

        x = y[free].ravel()
        for _ in range(20):          # restarts when the line search stalls above the tolerance
            r = minimize(fg, x, jac=True, method="L-BFGS-B",
                         options={"maxiter": steps, "maxcor": 30, "ftol": 1e-16,
                                  "gtol": fmax / math.sqrt(self.dim)})
            x = r.x
            y[free] = x.reshape(-1, self.dim)
            f = np.linalg.norm(self.forces(y)[free], axis=1).max() if free.any() else 0.0
            if f < fmax:
                return y
        raise ConvergenceError(f"QC relaxation (L-BFGS): largest force {f:.3g} eV/Å ({r.message})",
                               suggestion="smaller load steps, or optimizer='fire'")


class _Holder:
    """What ASE's optimisers need: an object with ``__ase_optimizable__`` (the free repatoms'
    coordinates as one flat vector; the value is the QC energy, NaN for the force-based variant)."""

    def __init__(self, qc: QC2D, y: np.ndarray, hold: np.ndarray, scale=None):
        self.qc, self.y, self.hold = qc, y, hold
        self._cache = None
        c = np.ones(y.shape[0]) if scale is None else np.asarray(scale, dtype=float)
        self.s = np.repeat(np.sqrt(c[~hold]), qc.dim)            # x = s·y on the free DOFs

    def __ase_optimizable__(self):
        from ase.optimize.optimize import Optimizable

        holder = self

        class _Opt(Optimizable):
            def get_x(self):
                return holder.y[~holder.hold].ravel() * holder.s

            def set_x(self, x):
                holder.y[~holder.hold] = (x / holder.s).reshape(-1, holder.qc.dim)

            def get_gradient(self):
                # ASE asks for the gradient up to three times per step at the same positions
                if holder._cache is None or not np.array_equal(holder._cache[0], holder.y):
                    holder._cache = (holder.y.copy(), -holder.qc.forces(holder.y)[~holder.hold].ravel())
                return holder._cache[1] / holder.s

            def get_value(self):
                if holder.qc.variant == "force":
                    return float("nan")
                return holder.qc.energy(holder.y)

            def iterimages(self):
                return iter(())

            def ndofs(self):
                return int(holder.qc.dim * (~holder.hold).sum())

            def gradient_norm(self, gradient):          # of the real forces, unscaled
                g = (gradient * holder.s).reshape(-1, holder.qc.dim)
                return float(np.sqrt((g ** 2).sum(axis=1)).max()) if gradient.size else 0.0

            def converged(self, gradient, fmax):
                return self.gradient_norm(gradient) < fmax

        return _Opt()
