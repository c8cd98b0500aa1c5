"""Finite-element RVE solvers on voxel maps (scikit-fem elements, one element per voxel).

The cell problem is solved for the displacement fluctuation ``w``: the strain is ``E + ε(w)``
with ``E`` the macroscopic strain.  Trilinear (3D) or bilinear (2D) elements carry three
displacement components; on a 2D map they depend on ``x, y`` only (generalised plane strain of a
columnar microstructure), so all six macroscopic strains apply in 2D and 3D alike.  Boundary
conditions (Hill 1967; Kanit et al. 2003):

* ``"periodic"``: ``w`` periodic (opposite nodes share their degrees of freedom);
* ``"linear"`` (kinematic uniform, KUBC): ``w = 0`` on the boundary, i.e. ``u = E·x``;
* ``"traction"`` (static uniform, SUBC): ``t = Σ·n`` on the boundary, ``Σ`` prescribed; the
  effective compliance comes from the mean strain of six unit stresses (rigid-body motions are
  removed by a statically determinate support, which the self-equilibrated load leaves free of
  reactions).

All three satisfy the Hill–Mandel condition ``⟨σ:ε⟩ = ⟨σ⟩:⟨ε⟩`` exactly; every solve measures it
and reports the residual.  For the same RVE, ``C_traction ≤ C_periodic ≤ C_linear`` (as quadratic
forms), and all three converge to the effective stiffness as the RVE grows.

Element matrices: the element stiffness is linear in the (per-voxel constant) stiffness,
``K_e = Σ_ab C_ab M_ab`` with ``M_ab = ∫ B_aᵀ B_b``; the 36 ``M_ab`` (and ``∫B``) are
integrated once by scikit-fem on one voxel and combined per label, so assembly costs one gather.
Linear solves: a sparse direct solve (``solver="direct"``) or conjugate gradients preconditioned
by pyamg's smoothed-aggregation AMG (``solver="cg"``, for large 3D RVEs).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..core import validate as _v
from ..core.errors import ConvergenceError, InputError
from ._mandel import (SQ2, stiffness_to_mandel, strain_mandel_to_voigt, stress_mandel_to_voigt,
                      stress_voigt_to_mandel, strain_voigt_to_mandel)

__all__ = ["VoxelFEM", "MeshRVE", "FEMSolution", "fem_effective_stiffness", "BOUNDARY_CONDITIONS"]

BOUNDARY_CONDITIONS = ("periodic", "linear", "traction")
_SOLVERS = ("direct", "cg")


def _strain_mandel(grad, ndim):
    """Mandel strain (6, ...) of a 3-component displacement gradient ``grad[i, j] = ∂u_i/∂x_j``
    (j over the mesh's ``ndim`` directions; ∂/∂z = 0 in 2D)."""
    def g(i, j):
        return grad[i, j] if j < ndim else 0.0 * grad[0, 0]

    return [g(0, 0), g(1, 1), g(2, 2), (g(1, 2) + g(2, 1)) / SQ2, (g(0, 2) + g(2, 0)) / SQ2,
            (g(0, 1) + g(1, 0)) / SQ2]


def _reference_matrices(ndim: int, h: tuple):
    """``M[a, b]`` (6, 6, nloc, nloc) and ``Bbar`` (6, nloc) of one voxel of edges ``h``."""
    from skfem import Basis, BilinearForm, ElementHex1, ElementQuad1, ElementVector, \
        LinearForm, MeshHex, MeshQuad

    if ndim == 2:
        mesh = MeshQuad.init_tensor(np.array([0.0, h[0]]), np.array([0.0, h[1]]))
        elem = ElementVector(ElementQuad1(), dim=3)
    else:
        mesh = MeshHex.init_tensor(np.array([0.0, h[0]]), np.array([0.0, h[1]]),
                                   np.array([0.0, h[2]]))
        elem = ElementVector(ElementHex1(), dim=3)
    basis = Basis(mesh, elem)
    nloc = basis.Nbfun
    loc = basis.element_dofs[:, 0]          # global numbering of the voxel -> local order
    M = np.empty((6, 6, nloc, nloc))
    for a in range(6):
        for b in range(6):
            @BilinearForm
            def form(u, v, w, a=a, b=b):
                return _strain_mandel(u.grad, ndim)[b] * _strain_mandel(v.grad, ndim)[a]

            M[a, b] = form.assemble(basis).toarray()[np.ix_(loc, loc)]
    vol = float(np.prod(h))
    Bbar = np.empty((6, nloc))
    for a in range(6):
        @LinearForm
        def lin(v, w, a=a):
            return _strain_mandel(v.grad, ndim)[a]

        Bbar[a] = lin.assemble(basis)[loc] / vol
    return M, Bbar


@dataclass
class FEMSolution:
    """One FEM cell solve.

    Attributes
    ----------
    mean_strain, mean_stress : numpy.ndarray
        Volume averages (Voigt with engineering shears; GPa).
    hill_mandel : float
        ``|⟨σ:ε⟩ − ⟨σ⟩:⟨ε⟩| / |⟨σ⟩:⟨ε⟩|``.
    element_strain, element_stress : numpy.ndarray or None
        Voxel averages (Voigt, ``(6, *grid)``), kept when asked (``fields=True``).
    """

    bc: str
    mean_strain: np.ndarray
    mean_stress: np.ndarray
    hill_mandel: float
    n_dofs: int
    solver: str
    iterations: int = 0
    elapsed_s: float = 0.0
    element_strain: np.ndarray | None = None
    element_stress: np.ndarray | None = None
    displacement: np.ndarray | None = field(default=None, repr=False)


class _RVEModel:
    """What every FEM RVE shares: the three boundary conditions, the solvers and the averages.

    A subclass sets ``ndim``, ``K`` (the fluctuation stiffness), ``L`` (``n_dofs x 6``:
    ``∫ ε(v)·C e_k``, the load of a unit Mandel macro strain), ``Bsum`` (``6 x n_dofs``:
    ``∫ ε_a(v)``), ``Cint`` (``∫ C``, 6x6), ``volume``, ``nodal_dofs`` (3 x nodes),
    ``n_dofs_full``, ``solver``, ``tol``, ``_cache``, and implements ``_periodic_map``,
    ``_boundary_nodes`` and ``_support_dofs``.
    """

    def _load(self, macro_m: np.ndarray) -> np.ndarray:
        """∫ Bᵀ C E: the load of a macroscopic (Mandel) strain on the fluctuation."""
        return self.L @ macro_m

    def _stress_load(self, sigma_m: np.ndarray) -> np.ndarray:
        """∫ Bᵀ Σ: uniform tractions Σ·n on the boundary, in volume form."""
        return self.Bsum.T @ sigma_m

    def _components(self) -> np.ndarray:
        """Displacement component (0, 1, 2) of every dof."""
        if "comp" not in self._cache:
            comp = np.empty(self.n_dofs_full, dtype=np.int64)
            for c in range(3):
                comp[self.nodal_dofs[c]] = c
            self._cache["comp"] = comp
        return self._cache["comp"]

    def _solve(self, A, b, key, comps=None):
        if self.solver == "direct":
            from scipy.sparse.linalg import factorized

            if key not in self._cache:
                self._cache[key] = factorized(sp.csc_matrix(A))
            return self._cache[key](b), 0
        import pyamg
        from scipy.sparse.linalg import cg

        if key not in self._cache:
            A = sp.csr_matrix(A)
            B = None
            if comps is not None:
                # near-nullspace: the three translations (rotations are not periodic, and the
                # other conditions fix the boundary), one block per displacement component —
                # the default (one constant vector) treats the components as one scalar field
                B = np.zeros((A.shape[0], 3))
                B[np.arange(comps.size), comps] = 1.0
            ml = pyamg.smoothed_aggregation_solver(A, B=B, symmetry="symmetric")
            self._cache[key] = (A, ml.aspreconditioner(cycle="V"))
        A, M = self._cache[key]
        count = [0]

        def cb(_):
            count[0] += 1

        x, info = cg(A, b, rtol=self.tol, atol=0.0, maxiter=2000, M=M, callback=cb)
        if info != 0:
            raise ConvergenceError(f"AMG-preconditioned CG did not converge ({info}) on the "
                                   f"{A.shape[0]}-dof RVE system",
                                   suggestion="use solver='direct' or loosen tol")
        return x, count[0]

    def _finish(self, bc, macro_m, w, n_dofs, iters, t0, fields):
        V = self.volume
        Lw = self.L.T @ w                                                       # ∫ C ε(w), (6,)
        mean_eps = macro_m + (self.Bsum @ w) / V
        mean_sig = (self.Cint @ macro_m + Lw) / V
        # ⟨σ:ε⟩ exactly: E·∫C·E + 2 E·∫C ε(w) + wᵀ K w
        energy = (macro_m @ self.Cint @ macro_m + 2 * macro_m @ Lw + w @ (self.K @ w)) / V
        macro = float(mean_sig @ mean_eps)
        hm = abs(energy - macro) / abs(macro)
        out = FEMSolution(bc=bc, mean_strain=strain_mandel_to_voigt(mean_eps),
                          mean_stress=stress_mandel_to_voigt(mean_sig), hill_mandel=hm,
                          n_dofs=int(n_dofs), solver=self.solver, iterations=int(iters),
                          elapsed_s=time.perf_counter() - t0)
        if fields:
            self._fields(out, macro_m, w)
            out.displacement = w
        return out

    def _fields(self, out, macro_m, w) -> None:
        """Element fields for ``fields=True`` (the voxel model fills voxel maps)."""

    # -- the three boundary conditions ---------------------------------------------------------
    def solve_strain(self, strain, bc: str = "periodic", *, fields: bool = False) -> FEMSolution:
        """Solve under the macroscopic ``strain`` (Voigt, engineering shears) with ``bc`` in
        ``"periodic"`` or ``"linear"``."""
        _v.one_of("bc", bc, ("periodic", "linear"))
        E = np.asarray(strain, dtype=float)
        if E.shape != (6,) or not np.all(np.isfinite(E)):
            raise InputError("strain", strain, "6 finite Voigt strain components")
        t0 = time.perf_counter()
        Em = strain_voigt_to_mandel(E)
        f = -self._load(Em)
        if bc == "periodic":
            if "P" not in self._cache:
                P = self._periodic_map()
                keep = np.arange(3, P.shape[1])                 # node 0 fixed: no translation
                self._cache["P"] = P[:, keep]
            P = self._cache["P"]
            A = (P.T @ self.K @ P)
            comps = np.asarray(P.T @ self._components() / np.maximum(
                np.asarray(P.sum(axis=0)).ravel(), 1)).astype(np.int64)
            x, it = self._solve(A, P.T @ f, "periodic", comps)
            w = P @ x
            n = A.shape[0]
        else:
            if "free_lin" not in self._cache:
                fixed = self.nodal_dofs[:, self._boundary_nodes()].ravel()
                free = np.setdiff1d(np.arange(self.n_dofs_full), fixed)
                self._cache["free_lin"] = free
            free = self._cache["free_lin"]
            A = self.K[free][:, free]
            x, it = self._solve(A, f[free], "linear", self._components()[free])
            w = np.zeros(self.n_dofs_full)
            w[free] = x
            n = free.size
        return self._finish(bc, Em, w, n, it, t0, fields)

    def solve_stress(self, stress, *, fields: bool = False) -> FEMSolution:
        """Solve under uniform boundary tractions ``t = Σ·n`` (``stress`` Voigt, GPa)."""
        S = np.asarray(stress, dtype=float)
        if S.shape != (6,) or not np.all(np.isfinite(S)):
            raise InputError("stress", stress, "6 finite Voigt stress components (GPa)")
        t0 = time.perf_counter()
        Sm = stress_voigt_to_mandel(S)
        f = self._stress_load(Sm)
        if "free_trac" not in self._cache:
            free = np.setdiff1d(np.arange(self.n_dofs_full), self._support_dofs())
            self._cache["free_trac"] = free
        free = self._cache["free_trac"]
        if self.ndim == 3:
            A = self.K[free][:, free]
            x, it = self._solve(A, f[free], "traction", self._components()[free])
            w = np.zeros(self.n_dofs_full)
            w[free] = x
            return self._finish("traction", np.zeros(6), w, free.size, it, t0, fields)
        # 2D: the out-of-plane normal strain E_zz is a macroscopic unknown beside w
        e3 = np.zeros(6)
        e3[2] = 1.0
        kwz = self._load(e3)[free]
        czz = float(self.Cint[2, 2])
        A = sp.bmat([[self.K[free][:, free], sp.csr_matrix(kwz[:, None])],
                     [sp.csr_matrix(kwz[None, :]), sp.csr_matrix([[czz]])]], format="csr")
        b = np.concatenate([f[free], [self.volume * Sm[2]]])
        x, it = self._solve(A, b, "traction",
                            np.concatenate([self._components()[free], [2]]))
        w = np.zeros(self.n_dofs_full)
        w[free] = x[:-1]
        macro = np.zeros(6)
        macro[2] = x[-1]
        return self._finish("traction", macro, w, A.shape[0], it, t0, fields)

    def effective_stiffness(self, bc: str = "periodic") -> tuple[np.ndarray, list]:
        """Apparent stiffness (Voigt, GPa) under ``bc`` from six unit loads, and the solves."""
        _v.one_of("bc", bc, BOUNDARY_CONDITIONS)
        sols = []
        for k in range(6):
            unit = np.zeros(6)
            unit[k] = 1.0
            sols.append(self.solve_stress(unit) if bc == "traction"
                        else self.solve_strain(unit, bc))
        if bc == "traction":
            S = np.array([s.mean_strain for s in sols]).T      # columns: strain of unit stress
            S = 0.5 * (S + S.T)
            c = np.linalg.inv(S)
        else:
            c = np.array([s.mean_stress for s in sols]).T
        return 0.5 * (c + c.T), sols




class VoxelFEM(_RVEModel):
    """The voxel finite-element model of a microstructure (one element per voxel).

    Parameters
    ----------
    micro : Microstructure
        With its phases.
    solver : {"direct", "cg"}
        Sparse direct solve, or AMG-preconditioned conjugate gradients (pyamg).
    tol : float
        Relative residual of the CG solves.
    """

    def __init__(self, micro, *, solver: str = "direct", tol: float = 1e-10):
        from skfem import ElementHex1, ElementQuad1, ElementVector, MeshHex, MeshQuad
        from skfem.assembly import Dofs

        from ..handoffs import Microstructure

        if not isinstance(micro, Microstructure):
            raise InputError("microstructure", type(micro).__name__, "a Microstructure handoff")
        micro.require_phases("an FEM RVE solve")
        _v.one_of("solver", solver, _SOLVERS)
        self.tol = _v.positive("tol", tol)
        self.micro, self.solver = micro, solver
        nd = micro.ndim
        self.ndim = nd
        shape = micro.shape
        L = micro.size
        h = tuple(l / n for l, n in zip(L, shape))
        axes = [np.linspace(0.0, l, n + 1) for l, n in zip(L, shape)]
        if nd == 2:
            mesh = MeshQuad.init_tensor(*axes)
            elem = ElementVector(ElementQuad1(), dim=3)
        else:
            mesh = MeshHex.init_tensor(*axes)
            elem = ElementVector(ElementHex1(), dim=3)
        # the dofs only: a Basis would precompute every element's basis gradients (gigabytes
        # for a 10⁶-dof RVE); the element matrices come from one reference voxel instead
        basis = Dofs(mesh, elem)
        self.mesh, self._elem, self._basis = mesh, elem, None
        self.M, self.Bbar = _reference_matrices(nd, h)
        edofs = basis.element_dofs                         # (nloc, nel)
        # local ordering check: the first element's dofs, relative to its first node, must
        # follow the reference voxel's (init_tensor builds every element alike)
        self.edofs = np.ascontiguousarray(edofs.T)         # (nel, nloc)
        centroids = mesh.p[:, mesh.t].mean(axis=1)         # (nd, nel)
        idx = tuple(np.clip(np.floor(centroids[k] / h[k]).astype(int), 0, shape[k] - 1)
                    for k in range(nd))
        self.voxel_of_element = idx
        self.el_label = micro.labels[idx]
        self.vol_e = float(np.prod(h))
        self.volume = float(np.prod(L))
        self.C = stiffness_to_mandel(micro.label_stiffness("GPa"))     # (nlab, 6, 6)
        self.n_dofs_full = basis.N
        Kl = np.einsum("lab,abij->lij", self.C, self.M)
        nloc = self.edofs.shape[1]
        # assembled in chunks of elements with 32-bit indices: the unsummed COO triplets of a
        # 10⁶-dof voxel mesh would need ~5 GB at once, the summed CSR about 1 GB
        edofs32 = self.edofs.astype(np.int32)
        nel = edofs32.shape[0]
        chunk = max(1, 20_000_000 // (nloc * nloc))
        K = None
        for a in range(0, nel, chunk):
            e = edofs32[a:a + chunk]
            rows = np.repeat(e, nloc, axis=1).ravel()
            cols = np.tile(e, (1, nloc)).ravel()
            data = Kl[self.el_label[a:a + chunk]].reshape(-1)
            part = sp.csr_matrix((data, (rows, cols)), shape=(basis.N, basis.N))
            part.sum_duplicates()
            K = part if K is None else K + part
        self.K = K
        # ∫ Bᵀ C e_k for each unit Mandel strain (per label), for loads and macro couplings
        self.BtC = np.einsum("ai,lab->lib", self.Bbar, self.C) * self.vol_e   # (nlab, nloc, 6)
        nodes = np.rint(mesh.p / np.array(h)[:, None]).astype(np.int64)       # (nd, nnodes)
        self.node_index = nodes
        self.nodal_dofs = basis.nodal_dofs                                     # (3, nnodes)
        self._cache: dict = {}
        # the generic operators of _RVEModel, gathered per label
        nd_full = self.n_dofs_full
        flat = self.edofs.ravel()
        bt = self.BtC[self.el_label]                                   # (nel, nloc, 6)
        self.L = np.stack([np.bincount(flat, weights=bt[:, :, k].ravel(), minlength=nd_full)
                           for k in range(6)], axis=1)
        self.Bsum = np.stack([np.bincount(flat, weights=np.broadcast_to(
            self.Bbar[a] * self.vol_e, self.edofs.shape).ravel(), minlength=nd_full)
            for a in range(6)])
        counts = np.bincount(self.el_label, minlength=self.C.shape[0])
        self.Cint = np.einsum("l,lab->ab", counts, self.C) * self.vol_e

    @property
    def basis(self):
        """A scikit-fem ``Basis`` on the RVE mesh (built on first use; for post-processing and
        checks — the solver itself needs only the dofs)."""
        if self._basis is None:
            from skfem import Basis

            self._basis = Basis(self.mesh, self._elem, intorder=2)
        return self._basis

    # -- pieces -------------------------------------------------------------------------------
    def _periodic_map(self):
        shape = self.micro.shape
        idx = [self.node_index[k] % shape[k] for k in range(self.ndim)]
        pnode = np.ravel_multi_index(idx, shape)
        nn = int(np.prod(shape))
        P = sp.lil_matrix((self.n_dofs_full, 3 * nn))
        dofs = self.nodal_dofs                                                 # (3, nnodes)
        rows = dofs.T.ravel()
        cols = (3 * pnode[:, None] + np.arange(3)[None, :]).ravel()
        P = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(self.n_dofs_full, 3 * nn))
        return P

    def _boundary_nodes(self):
        shape = self.micro.shape
        on = np.zeros(self.node_index.shape[1], dtype=bool)
        for k in range(self.ndim):
            on |= (self.node_index[k] == 0) | (self.node_index[k] == shape[k])
        return np.flatnonzero(on)

    def _corner(self, *where):
        """The node at grid index ``where`` (missing axes 0)."""
        target = np.zeros(self.ndim, dtype=np.int64)
        for k, v in enumerate(where):
            target[k] = v
        hit = np.flatnonzero(np.all(self.node_index == target[:, None], axis=0))
        return int(hit[0])

    def _fields(self, out, macro_m, w) -> None:
        we = w[self.edofs]
        eps_e = macro_m[None, :] + we @ self.Bbar.T                             # voxel means
        sig_e = np.einsum("eab,eb->ea", self.C[self.el_label], eps_e)
        shape = self.micro.shape
        es = np.zeros((6,) + shape)
        ss = np.zeros((6,) + shape)
        es[(slice(None),) + self.voxel_of_element] = strain_mandel_to_voigt(eps_e).T
        ss[(slice(None),) + self.voxel_of_element] = stress_mandel_to_voigt(sig_e).T
        out.element_strain, out.element_stress = es, ss

    def _support_dofs(self) -> np.ndarray:
        """A statically determinate support against rigid motions (traction BC)."""
        fixed = list(self.nodal_dofs[:, self._corner()])                # translations
        if self.ndim == 2:
            fixed.append(self.nodal_dofs[1, self._corner(self.micro.shape[0])])   # rotation z
        else:
            nx, ny = self.micro.shape[0], self.micro.shape[1]
            fixed += [self.nodal_dofs[1, self._corner(nx)], self.nodal_dofs[2, self._corner(nx)],
                      self.nodal_dofs[2, self._corner(0, ny)]]
        return np.array(fixed)


class MeshRVE(_RVEModel):
    """An RVE on a scikit-fem mesh of a box (from gmsh, meshio or scikit-fem): linear elements
    (triangles/quadrilaterals: a columnar 2D RVE; tetrahedra/hexahedra: 3D), one label per
    element, the phases and orientations as a :class:`~scaleladder.handoffs.Microstructure`
    would carry them.  The same three boundary conditions and checks as :class:`VoxelFEM`.

    Parameters
    ----------
    mesh : skfem Mesh
        ``MeshTri``, ``MeshQuad``, ``MeshTet`` or ``MeshHex`` (first order) filling a box.
    labels : array of int, one per element
    phases : sequence of ElasticTensor
    label_phase, orientations : optional, as in ``Microstructure``
    periodic_tol : float
        Relative tolerance (of the box size) when matching nodes of opposite faces.

    Raises
    ------
    InputError
        Not a box, labels of the wrong length or an unknown phase; and, for periodic boundary
        conditions, a mesh whose opposite faces do not carry matching nodes (names the first
        node without a partner).
    """

    def __init__(self, mesh, labels, phases, *, label_phase=None, orientations=None,
                 solver: str = "direct", tol: float = 1e-10, periodic_tol: float = 1e-8):
        from skfem import (Basis, BilinearForm, ElementHex1, ElementQuad1, ElementTetP1,
                           ElementTriP1, ElementVector, LinearForm, MeshHex, MeshQuad, MeshTet,
                           MeshTri)

        from ..handoffs import Microstructure

        kinds = {MeshTri: ElementTriP1, MeshQuad: ElementQuad1, MeshTet: ElementTetP1,
                 MeshHex: ElementHex1}
        elem_cls = next((e for m, e in kinds.items() if type(mesh) is m), None)
        if elem_cls is None:
            raise InputError("mesh", type(mesh).__name__,
                             "a first-order MeshTri, MeshQuad, MeshTet or MeshHex")
        _v.one_of("solver", solver, _SOLVERS)
        self.solver, self.tol = solver, _v.positive("tol", tol)
        self.periodic_tol = _v.positive("periodic_tol", periodic_tol)
        nd = mesh.p.shape[0]
        self.ndim = nd
        lab = np.asarray(labels)
        if lab.shape != (mesh.t.shape[1],) or not np.issubdtype(lab.dtype, np.integer):
            raise InputError("labels", f"array of shape {lab.shape}",
                             f"one integer label per element ({mesh.t.shape[1]})")
        lo, hi = mesh.p.min(axis=1), mesh.p.max(axis=1)
        self.lo, self.hi = lo, hi
        bnodes = mesh.boundary_nodes()
        on_face = np.zeros(bnodes.size, dtype=bool)
        span = hi - lo
        for k in range(nd):
            x = mesh.p[k, bnodes]
            on_face |= (np.abs(x - lo[k]) <= 1e-9 * span[k]) | (np.abs(x - hi[k]) <= 1e-9 * span[k])
        if not on_face.all():
            j = int(bnodes[np.flatnonzero(~on_face)[0]])
            raise InputError("mesh", f"boundary node {j} at {mesh.p[:, j].tolist()}",
                             "a mesh of a box (every boundary node on a face of the bounding box)")
        # the phases and rotations, validated as a Microstructure would validate them
        n_lab = int(lab.max()) + 1
        carrier = Microstructure(np.arange(n_lab).reshape(1, -1), (1.0, 1.0),
                                 phases=tuple(phases), label_phase=label_phase,
                                 orientations=orientations)
        C = stiffness_to_mandel(carrier.label_stiffness("GPa"))[lab]          # (nel, 6, 6)
        self.mesh = mesh
        self.C = C
        basis = Basis(mesh, ElementVector(elem_cls(), dim=3))
        self.basis = basis
        nq = basis.X.shape[1]
        Cq = np.transpose(C, (1, 2, 0))[..., None] * np.ones(nq)             # (6, 6, nel, nq)

        @BilinearForm
        def stiff(u, v, w):
            eu, ev = _strain_mandel(u.grad, nd), _strain_mandel(v.grad, nd)
            return sum(w.C[a, b] * eu[b] * ev[a] for a in range(6) for b in range(6))

        self.K = stiff.assemble(basis, C=Cq).tocsr()
        self.L = np.empty((basis.N, 6))
        self.Bsum = np.empty((6, basis.N))
        for k in range(6):
            @LinearForm
            def lk(v, w, k=k):
                ev = _strain_mandel(v.grad, nd)
                return sum(ev[a] * w.C[a, k] for a in range(6))

            @LinearForm
            def bk(v, w, k=k):
                return _strain_mandel(v.grad, nd)[k]

            self.L[:, k] = lk.assemble(basis, C=Cq)
            self.Bsum[k] = bk.assemble(basis)
        vol_e = basis.dx.sum(axis=1)                                          # element volumes
        self.volume = float(vol_e.sum())
        if abs(self.volume - float(np.prod(span))) > 1e-8 * float(np.prod(span)):
            raise InputError("mesh", f"volume {self.volume:.6g}",
                             f"a mesh filling its bounding box (volume {float(np.prod(span)):.6g})")
        self.Cint = np.einsum("e,eab->ab", vol_e, C)
        self.nodal_dofs = basis.nodal_dofs
        self.n_dofs_full = basis.N
        self._cache: dict = {}

    def _periodic_map(self):
        """Node equivalences across opposite faces, as a dof map (full → periodic dofs)."""
        pnode, n_unique = periodic_node_map(self.mesh.p, self.lo, self.hi,
                                            tol=self.periodic_tol * float((self.hi - self.lo).max()))
        rows = self.nodal_dofs.T.ravel()
        cols = (3 * pnode[:, None] + np.arange(3)[None, :]).ravel()
        return sp.csr_matrix((np.ones(rows.size), (rows, cols)),
                             shape=(self.n_dofs_full, 3 * n_unique))

    def _boundary_nodes(self):
        return self.mesh.boundary_nodes()

    def _node_at(self, where):
        d = np.linalg.norm(self.mesh.p - np.asarray(where, dtype=float)[:, None], axis=0)
        j = int(np.argmin(d))
        if d[j] > 1e-8 * float((self.hi - self.lo).max()):
            raise InputError("mesh", f"no node at the box corner {list(where)}",
                             "a box mesh with nodes at its corners (traction BC support)")
        return j

    def _support_dofs(self) -> np.ndarray:
        lo, hi = self.lo, self.hi
        c0 = self._node_at(lo)
        fixed = list(self.nodal_dofs[:, c0])
        cx = self._node_at([hi[0]] + list(lo[1:]))
        if self.ndim == 2:
            fixed.append(self.nodal_dofs[1, cx])
        else:
            cy = self._node_at([lo[0], hi[1], lo[2]])
            fixed += [self.nodal_dofs[1, cx], self.nodal_dofs[2, cx], self.nodal_dofs[2, cy]]
        return np.array(fixed)


def periodic_node_map(p: np.ndarray, lo, hi, *, tol: float, axes=None) -> tuple[np.ndarray, int]:
    """Equivalence classes of the nodes ``p`` (ndim, n) of a box mesh under periodicity: nodes on
    opposite faces ``x_k = lo_k`` and ``x_k = hi_k`` with the same other coordinates (within
    ``tol``, a length) are one node; union-find over the axes, so the corners collapse to one.
    ``axes``: the periodic axes (default all; e.g. ``(1,)`` for a strip periodic in y only).
    Returns ``(pnode, n_unique)``: the class of every node, numbered ``0 .. n_unique − 1``.
    Raises an ``InputError`` naming the first node without a partner on the opposite face."""
    from scipy.spatial import cKDTree

    p = np.asarray(p, dtype=float)
    ndim, n = p.shape
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    parent = np.arange(n)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for k in (range(ndim) if axes is None else axes):
        lo_nodes = np.flatnonzero(np.abs(p[k] - lo[k]) <= tol)
        hi_nodes = np.flatnonzero(np.abs(p[k] - hi[k]) <= tol)
        other = [j for j in range(ndim) if j != k]
        if lo_nodes.size != hi_nodes.size:
            raise InputError("mesh", f"{lo_nodes.size} nodes on the face x{k} = min and "
                             f"{hi_nodes.size} on x{k} = max",
                             "a periodic mesh (matching nodes on opposite faces) for "
                             "periodic boundary conditions")
        tree = cKDTree(p[np.ix_(other, hi_nodes)].T)
        d, idx = tree.query(p[np.ix_(other, lo_nodes)].T)
        bad = np.flatnonzero(d > tol)
        if bad.size:
            j = int(lo_nodes[bad[0]])
            raise InputError("mesh", f"node {j} at {p[:, j].tolist()} has no partner on the "
                             f"opposite face (nearest {d[bad[0]]:.3g} away)",
                             "a periodic mesh (matching nodes on opposite faces) for "
                             "periodic boundary conditions")
        for a, b in zip(lo_nodes, hi_nodes[idx]):
            ra, rb = find(int(a)), find(int(b))
            if ra != rb:
                parent[rb] = ra
    roots = np.array([find(i) for i in range(n)])
    uniq, pnode = np.unique(roots, return_inverse=True)
    return pnode, int(uniq.size)


def fem_effective_stiffness(micro, bc: str = "periodic", *, solver: str = "direct",
                            tol: float = 1e-10) -> tuple[np.ndarray, list]:
    """Apparent stiffness (Voigt 6x6, GPa) of ``micro`` under ``bc`` and the six solves."""
    _v.one_of("bc", bc, BOUNDARY_CONDITIONS)
    return VoxelFEM(micro, solver=solver, tol=tol).effective_stiffness(bc)
