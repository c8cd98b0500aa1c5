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

__all__ = ["VoxelFEM", "FEMSolution", "fem_effective_stiffness", "BOUNDARY_CONDITIONS"]

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


class VoxelFEM:
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
        from skfem import Basis, ElementHex1, ElementQuad1, ElementVector, MeshHex, MeshQuad

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
        basis = Basis(mesh, elem, intorder=2)
        self.mesh, self.basis = mesh, basis
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

    # -- pieces -------------------------------------------------------------------------------
    def _load(self, macro_m: np.ndarray) -> np.ndarray:
        """Σ_e V_e B̄ᵀ C_e E (Mandel E): the load of a macroscopic strain on the fluctuation."""
        fe = self.BtC[self.el_label] @ macro_m                                 # (nel, nloc)
        return np.bincount(self.edofs.ravel(), weights=fe.ravel(), minlength=self.n_dofs_full)

    def _stress_load(self, sigma_m: np.ndarray) -> np.ndarray:
        fe = np.broadcast_to((self.Bbar.T @ sigma_m) * self.vol_e,
                             (self.edofs.shape[0], self.edofs.shape[1]))
        return np.bincount(self.edofs.ravel(), weights=fe.ravel(), minlength=self.n_dofs_full)

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

    def _solve(self, A, b, key):
        if self.solver == "direct":
            from scipy.sparse.linalg import factorized

            if key not in self._cache:
                self._cache[key] = factorized(sp.csc_matrix(A))
            return self._cache[key](b), 0
        import pyamg
        from scipy.sparse.linalg import cg

        if key not in self._cache:
            A = sp.csr_matrix(A)
            ml = pyamg.smoothed_aggregation_solver(A, symmetry="symmetric")
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
        we = w[self.edofs]                                                      # (nel, nloc)
        eps_e = macro_m[None, :] + we @ self.Bbar.T                             # (nel, 6) mean
        Ce = self.C[self.el_label]
        sig_e = np.einsum("eab,eb->ea", Ce, eps_e)
        mean_eps = eps_e.mean(axis=0)
        mean_sig = sig_e.mean(axis=0)
        # ⟨σ:ε⟩ exactly: per element V E C E + 2 E·(V Cᵀ B̄ w) + wᵀ K_e w
        Kl = np.einsum("lab,abij->lij", self.C, self.M)
        energy = (self.vol_e * np.einsum("a,eab,b->", macro_m, Ce, macro_m)
                  + 2 * np.einsum("eib,b,ei->", self.BtC[self.el_label], macro_m, we)
                  + np.einsum("ei,eij,ej->", we, Kl[self.el_label], we)) / self.volume
        macro = float(mean_sig @ mean_eps)
        hm = abs(energy - macro) / abs(macro)
        out = FEMSolution(bc=bc, mean_strain=strain_mandel_to_voigt(mean_eps),
                          mean_stress=stress_mandel_to_voigt(mean_sig), hill_mandel=hm,
                          n_dofs=int(n_dofs), solver=self.solver, iterations=int(iters),
                          elapsed_s=time.perf_counter() - t0)
        if fields:
            shape = self.micro.shape
            es = np.zeros((6,) + shape)
            ss = np.zeros((6,) + shape)
            es[(slice(None),) + self.voxel_of_element] = strain_mandel_to_voigt(eps_e).T
            ss[(slice(None),) + self.voxel_of_element] = stress_mandel_to_voigt(sig_e).T
            out.element_strain, out.element_stress = es, ss
            out.displacement = w
        return out

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
            x, it = self._solve(A, P.T @ f, "periodic")
            w = P @ x
            n = A.shape[0]
        else:
            if "free_lin" not in self._cache:
                fixed = self.nodal_dofs[:, self._boundary_nodes()].ravel()
                free = np.setdiff1d(np.arange(self.n_dofs_full), fixed)
                self._cache["free_lin"] = free
            free = self._cache["free_lin"]
            A = self.K[free][:, free]
            x, it = self._solve(A, f[free], "linear")
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
            fixed = list(self.nodal_dofs[:, self._corner()])            # translations
            if self.ndim == 2:
                fixed.append(self.nodal_dofs[1, self._corner(self.micro.shape[0])])  # rot. z
            else:
                nx, ny = self.micro.shape[0], self.micro.shape[1]
                fixed += [self.nodal_dofs[1, self._corner(nx)], self.nodal_dofs[2, self._corner(nx)],
                          self.nodal_dofs[2, self._corner(0, ny)]]
            free = np.setdiff1d(np.arange(self.n_dofs_full), np.array(fixed))
            self._cache["free_trac"] = free
        free = self._cache["free_trac"]
        if self.ndim == 3:
            A = self.K[free][:, free]
            x, it = self._solve(A, f[free], "traction")
            w = np.zeros(self.n_dofs_full)
            w[free] = x
            return self._finish("traction", np.zeros(6), w, free.size, it, t0, fields)
        # 2D: the out-of-plane normal strain E_zz is a macroscopic unknown beside w
        e3 = np.zeros(6)
        e3[2] = 1.0
        kwz = self._load(e3)[free]
        czz = float(np.einsum("l,l->", np.bincount(self.el_label, minlength=self.C.shape[0]),
                              self.C[:, 2, 2])) * self.vol_e
        A = sp.bmat([[self.K[free][:, free], sp.csr_matrix(kwz[:, None])],
                     [sp.csr_matrix(kwz[None, :]), sp.csr_matrix([[czz]])]], format="csr")
        b = np.concatenate([f[free], [self.volume * Sm[2]]])
        x, it = self._solve(A, b, "traction")
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


def fem_effective_stiffness(micro, bc: str = "periodic", *, solver: str = "direct",
                            tol: float = 1e-10) -> tuple[np.ndarray, list]:
    """Apparent stiffness (Voigt 6x6, GPa) of ``micro`` under ``bc`` and the six solves."""
    _v.one_of("bc", bc, BOUNDARY_CONDITIONS)
    return VoxelFEM(micro, solver=solver, tol=tol).effective_stiffness(bc)
