"""HMM beside MsFEM for an oscillating coefficient: ``−div(a(x, t) ∇u) = f`` on the unit square,
``u = 0`` on its boundary (2D, scalar: conduction or antiplane shear), on scikit-fem Q1 elements.

* **Fine reference** (:func:`fine_solution`): Q1 on a grid that resolves the oscillation.
* **MsFEM** (Hou & Wu 1997; oversampling Hou, Wu & Cai 1999): on each coarse element ``K`` the
  multiscale basis functions solve ``−div(a∇φ) = 0`` on a sub-grid of ``K`` with bilinear
  boundary values (conforming), or on an oversampled patch ``S ⊃ K`` with the four functions
  ``1, x, y, xy`` as boundary values, restricted to ``K`` and recombined to be nodal at K's
  corners (non-conforming, removes most of the boundary-layer "resonance" error ``O(ε/H)``).
  The basis is computed once, *before* the solve: this is what makes MsFEM fast, and what breaks
  when the coefficient changes in time.
* **HMM** (E & Engquist 2003): a coarse Q1 solve whose coefficient at every macro quadrature point
  is the effective tensor of a micro cell problem of size δ centred there, solved with the
  coefficient *as it is now*: ``A_H(x_q) e_k = ⟨a (e_k + ∇w_k)⟩`` with ``w_k`` periodic on the
  cell.  With δ a multiple of ε and a locally periodic coefficient, this is the homogenised
  tensor at that point.
* **Nonstationary** (:func:`evolving_microstructure`): the microstructure changes in time — it
  migrates by half a period, or its stiff phase is damaged in a band.  HMM recomputes its micro
  problems at each time and stays accurate; MsFEM with the basis precomputed at t = 0 (its
  stiffness integrated with the current coefficient) becomes inconsistent and its error grows.
  (A smooth factor on the coefficient barely changes MsFEM's local harmonic functions: what
  breaks the basis is a change of the micro-pattern.)

Errors are relative, against the fine reference on the same fine grid (L2, and the energy norm of
the fine operator); HMM's coarse solution is compared in L2, where it approximates ``u`` (its
gradient lacks the fine-scale corrector by construction).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.sparse as sp

from ..core import validate as _v
from ..core.errors import InputError

__all__ = ["hou_wu_coefficient", "fine_solution", "cell_tensor", "homogenised_solution",
           "msfem", "hmm", "errors", "evolving_microstructure", "plot_evolution", "FineSolution",
           "CoarseSolution"]

Coefficient = Callable[[np.ndarray, np.ndarray], np.ndarray]


def hou_wu_coefficient(eps: float, P: float = 1.8) -> Coefficient:
    """``a(x, y) = (2 + P sin(2πx/ε)) / (2 + P cos(2πy/ε))`` (Hou & Wu 1997), contrast
    ``(2+P)²/(2−P)²`` (≈ 361 for P = 1.8)."""
    eps = _v.positive("eps", eps)
    P = _v.in_range("P", P, 0.0, 2.0, inclusive=False)

    def a(x, y):
        return (2 + P * np.sin(2 * np.pi * x / eps)) / (2 + P * np.cos(2 * np.pi * y / eps))

    a.eps = eps
    return a


def _forms(coef):
    from skfem import BilinearForm, LinearForm
    from skfem.helpers import dot, grad

    @BilinearForm
    def stiff(u, v, w):
        return coef(w.x[0], w.x[1]) * dot(grad(u), grad(v))

    @BilinearForm
    def mass(u, v, w):
        return u * v

    @LinearForm
    def load(v, w):
        return 1.0 * v

    return stiff, mass, load


def _grid(n: int, x0=0.0, y0=0.0, L=1.0, Ly=None):
    from skfem import MeshQuad

    Ly = L if Ly is None else Ly
    return MeshQuad.init_tensor(np.linspace(x0, x0 + L, n + 1), np.linspace(y0, y0 + Ly, n + 1))


@dataclass
class FineSolution:
    n: int
    u: np.ndarray               # nodal values on the (n+1)² grid, node order of MeshQuad
    K: sp.spmatrix
    M: sp.spmatrix
    mesh: object = field(repr=False, default=None)
    elapsed_s: float = 0.0


def fine_solution(coef: Coefficient, n: int) -> FineSolution:
    """Q1 solution on an ``n x n`` grid of the unit square (resolve ε with >= 8 elements)."""
    from skfem import Basis, ElementQuad1, condense, solve

    n = _v.positive_int("n", n, 4)
    eps = getattr(coef, "eps", None)
    if eps is not None and n * eps < 8:
        raise InputError("n", n, f"a fine grid resolving ε = {eps:g} with >= 8 elements per "
                         f"period (n >= {math.ceil(8 / eps)})")
    t0 = time.perf_counter()
    mesh = _grid(n)
    basis = Basis(mesh, ElementQuad1())
    stiff, mass, load = _forms(coef)
    K = stiff.assemble(basis)
    M = mass.assemble(basis)
    u = solve(*condense(K, load.assemble(basis), D=basis.get_dofs()))
    return FineSolution(n, u, K, M, mesh, time.perf_counter() - t0)


def _nodes_index(mesh, n):
    """Grid index (i, j) of each mesh node of a tensor grid with n cells per side."""
    ij = np.rint(mesh.p * n / (mesh.p.max(axis=1, keepdims=True) -
                               mesh.p.min(axis=1, keepdims=True))).astype(int)
    return ij


def cell_tensor(coef: Coefficient, centre, delta: float, n: int = 16) -> np.ndarray:
    """Effective 2x2 tensor of the cell ``centre ± δ/2`` with periodic fluctuations:
    ``A e_k = ⟨a (e_k + ∇w_k)⟩``, ``−div(a(e_k + ∇w_k)) = 0``, ``w_k`` periodic (Q1, n x n)."""
    from skfem import Basis, ElementQuad1, LinearForm

    cx, cy = float(centre[0]), float(centre[1])
    mesh = _grid(n, cx - delta / 2, cy - delta / 2, delta)
    basis = Basis(mesh, ElementQuad1())
    stiff, _, _ = _forms(coef)
    K = stiff.assemble(basis)
    idx = np.rint((mesh.p - np.array([[cx - delta / 2], [cy - delta / 2]])) * n / delta
                  ).astype(int) % n
    pn = idx[0] + n * idx[1]
    P = sp.csr_matrix((np.ones(mesh.p.shape[1]), (np.arange(mesh.p.shape[1]), pn)),
                      shape=(mesh.p.shape[1], n * n))
    keep = np.arange(1, n * n)
    P = P[:, keep]
    Kp = (P.T @ K @ P).tocsc()
    from scipy.sparse.linalg import splu

    lu = splu(Kp)
    A = np.empty((2, 2))
    vol = delta * delta
    for k in range(2):
        @LinearForm
        def rhs(v, w, k=k):
            return -coef(w.x[0], w.x[1]) * v.grad[k]

        w_k = P @ lu.solve(P.T @ rhs.assemble(basis))
        for j in range(2):
            @LinearForm
            def flux(v, w, j=j, k=k):
                return coef(w.x[0], w.x[1]) * (1.0 if j == k else 0.0) * v

            @LinearForm
            def corr(v, w, j=j):
                return coef(w.x[0], w.x[1]) * v.grad[j]

            A[j, k] = (flux.assemble(basis).sum() + corr.assemble(basis) @ w_k) / vol
    return 0.5 * (A + A.T)


def homogenised_solution(A: np.ndarray, n: int) -> FineSolution:
    """Q1 solution with a constant tensor ``A`` (the homogenised problem) on an ``n x n`` grid."""
    from skfem import Basis, BilinearForm, ElementQuad1, LinearForm, condense, solve

    A = np.asarray(A, dtype=float)
    mesh = _grid(n)
    basis = Basis(mesh, ElementQuad1())

    @BilinearForm
    def stiff(u, v, w):
        g, h = u.grad, v.grad
        return (A[0, 0] * g[0] * h[0] + A[0, 1] * g[1] * h[0] + A[1, 0] * g[0] * h[1]
                + A[1, 1] * g[1] * h[1])

    @LinearForm
    def load(v, w):
        return 1.0 * v

    K = stiff.assemble(basis)
    u = solve(*condense(K, load.assemble(basis), D=basis.get_dofs()))
    return FineSolution(n, u, K, None, mesh)


@dataclass
class CoarseSolution:
    """A coarse (MsFEM or HMM) solution and its reconstruction on the fine grid."""

    method: str
    n_coarse: int
    U: np.ndarray
    fine: np.ndarray            # nodal values on the reference's fine grid (same node order)
    elapsed_s: float
    setup_s: float = 0.0
    basis: dict | None = field(default=None, repr=False)   # MsFEM: per element local bases


def _coarse_dofs(nc):
    """Q1 coarse grid: element (i, j) -> its 4 corner node numbers (x fastest), counter-clockwise
    from the lower left."""
    def node(i, j):
        return i + (nc + 1) * j

    return {(i, j): [node(i, j), node(i + 1, j), node(i + 1, j + 1), node(i, j + 1)]
            for i in range(nc) for j in range(nc)}


def _msfem_local_basis(coef, x0, y0, H, n_sub, oversample):
    """Basis values (4, (n_sub+1)²) at the element's sub-grid nodes, and the sub-grid mesh."""
    from skfem import Basis, ElementQuad1, condense, solve

    stiff, _, _ = _forms(coef)
    if oversample == 0:
        mesh = _grid(n_sub, x0, y0, H)
        basis = Basis(mesh, ElementQuad1())
        K = stiff.assemble(basis)
        xs, ys = (mesh.p[0] - x0) / H, (mesh.p[1] - y0) / H
        bvals = [(1 - xs) * (1 - ys), xs * (1 - ys), xs * ys, (1 - xs) * ys]
        D = basis.get_dofs()
        out = np.empty((4, mesh.p.shape[1]))
        for i, g in enumerate(bvals):
            x = np.where(np.isin(np.arange(mesh.p.shape[1]), D.flatten()), g, 0.0)
            out[i] = solve(*condense(K, np.zeros(mesh.p.shape[1]), x=x, D=D))
        return out, mesh
    # oversampled patch: `oversample` coarse widths on each side (clipped to the domain)
    s = oversample * H
    xa, xb = max(0.0, x0 - s), min(1.0, x0 + H + s)
    ya, yb = max(0.0, y0 - s), min(1.0, y0 + H + s)
    h = H / n_sub
    nx, ny = int(round((xb - xa) / h)), int(round((yb - ya) / h))
    from skfem import MeshQuad

    mesh = MeshQuad.init_tensor(np.linspace(xa, xb, nx + 1), np.linspace(ya, yb, ny + 1))
    basis = Basis(mesh, ElementQuad1())
    K = stiff.assemble(basis)
    D = basis.get_dofs()
    xs, ys = mesh.p[0], mesh.p[1]
    psi = []
    for g in (np.ones_like(xs), xs, ys, xs * ys):
        x = np.where(np.isin(np.arange(mesh.p.shape[1]), D.flatten()), g, 0.0)
        psi.append(solve(*condense(K, np.zeros(mesh.p.shape[1]), x=x, D=D)))
    psi = np.array(psi)                                   # (4, n_patch_nodes)
    # restrict to K's sub-grid nodes
    sub = _grid(n_sub, x0, y0, H)
    ix = np.rint((sub.p[0] - xa) / h).astype(int)
    iy = np.rint((sub.p[1] - ya) / h).astype(int)
    patch_idx = ix + (nx + 1) * iy
    order = np.rint((mesh.p[0] - xa) / h).astype(int) + (nx + 1) * np.rint(
        (mesh.p[1] - ya) / h).astype(int)
    inv = np.empty(order.size, dtype=int)
    inv[order] = np.arange(order.size)
    psi_k = psi[:, inv[patch_idx]]                        # (4, n_sub_nodes)
    corners = [(x0, y0), (x0 + H, y0), (x0 + H, y0 + H), (x0, y0 + H)]
    cidx = [int(np.flatnonzero(np.isclose(sub.p[0], cx) & np.isclose(sub.p[1], cy))[0])
            for cx, cy in corners]
    Mc = psi_k[:, cidx]                                   # psi_j at corner k: (4 psi, 4 corners)
    coeff = np.linalg.solve(Mc.T, np.eye(4))             # phi_i = sum_j coeff[j, i] psi_j
    return coeff.T @ psi_k, sub


def msfem(coef: Coefficient, n_coarse: int, n_sub: int, *, oversample: int = 0,
          ref: FineSolution | None = None, stiffness_coef: Coefficient | None = None,
          basis: dict | None = None) -> CoarseSolution:
    """Multiscale FEM on an ``n_coarse²`` Q1 grid, ``n_sub²`` fine elements per coarse one.

    ``basis``: a precomputed basis (from an earlier call's ``.basis``) to reuse;
    ``stiffness_coef``: the coefficient the coarse stiffness is integrated with (default
    ``coef``) — with a reused basis this is the nonstationary MsFEM whose basis is stale."""
    from skfem import Basis, ElementQuad1

    nc = _v.positive_int("n_coarse", n_coarse, 2)
    n_sub = _v.positive_int("n_sub", n_sub, 2)
    oversample = int(oversample)
    H = 1.0 / nc
    t0 = time.perf_counter()
    dofs = _coarse_dofs(nc)
    if basis is None:
        basis = {key: _msfem_local_basis(coef, key[0] * H, key[1] * H, H, n_sub, oversample)
                 for key in dofs}
    t_setup = time.perf_counter() - t0
    stiff, _, load = _forms(stiffness_coef or coef)
    nn = (nc + 1) ** 2
    rows, cols, vals = [], [], []
    F = np.zeros(nn)
    for key, nodes in dofs.items():
        phi, sub = basis[key]
        b = Basis(sub, ElementQuad1())
        Ks = stiff.assemble(b)
        fs = load.assemble(b)
        Ke = phi @ (Ks @ phi.T)
        for a_ in range(4):
            F[nodes[a_]] += phi[a_] @ fs
            for b_ in range(4):
                rows.append(nodes[a_])
                cols.append(nodes[b_])
                vals.append(Ke[a_, b_])
    K = sp.csr_matrix((vals, (rows, cols)), shape=(nn, nn))
    ij = np.array([(i, j) for j in range(nc + 1) for i in range(nc + 1)])
    bnd = np.flatnonzero((ij[:, 0] == 0) | (ij[:, 0] == nc) | (ij[:, 1] == 0) | (ij[:, 1] == nc))
    free = np.setdiff1d(np.arange(nn), bnd)
    U = np.zeros(nn)
    from scipy.sparse.linalg import spsolve

    U[free] = spsolve(K[free][:, free].tocsc(), F[free])
    fine = None
    if ref is not None:
        fine = _reconstruct(ref, nc, n_sub, dofs, basis, U)
    return CoarseSolution("MsFEM" + (f" (oversampling {oversample})" if oversample else ""),
                          nc, U, fine, time.perf_counter() - t0, t_setup, basis)


def _reconstruct(ref: FineSolution, nc, n_sub, dofs, basis, U):
    if ref.n != nc * n_sub:
        raise InputError("ref", ref.n, f"a fine reference on the {nc * n_sub}² grid of the "
                         f"coarse elements' sub-grids")
    n = ref.n
    h = 1.0 / n
    gidx = np.rint(ref.mesh.p / h).astype(int)
    g_of = np.empty((n + 1) ** 2, dtype=int)
    g_of[gidx[0] + (n + 1) * gidx[1]] = np.arange(gidx.shape[1])
    acc = np.zeros((n + 1) ** 2)
    cnt = np.zeros((n + 1) ** 2)
    for key, nodes in dofs.items():
        phi, sub = basis[key]
        vals = U[nodes] @ phi
        si = np.rint(sub.p / h).astype(int)
        gi = g_of[si[0] + (n + 1) * si[1]]
        np.add.at(acc, gi, vals)
        np.add.at(cnt, gi, 1.0)
    return acc / np.maximum(cnt, 1.0)


def hmm(coef: Coefficient, n_coarse: int, *, delta: float, n_micro: int = 16,
        ref: FineSolution | None = None) -> CoarseSolution:
    """Heterogeneous multiscale method: coarse Q1 (2x2 Gauss points), each point's tensor from
    :func:`cell_tensor` on a cell of size ``delta`` with ``n_micro²`` elements."""
    from skfem import Basis, BilinearForm, ElementQuad1, LinearForm, condense, solve

    nc = _v.positive_int("n_coarse", n_coarse, 2)
    delta = _v.positive("delta", delta)
    t0 = time.perf_counter()
    mesh = _grid(nc)
    basis = Basis(mesh, ElementQuad1())
    X = basis.mapping.F(basis.X)                          # (2, nel, nqp) quadrature points
    A = np.empty((2, 2) + X.shape[1:])
    for e in range(X.shape[1]):
        for q in range(X.shape[2]):
            A[:, :, e, q] = cell_tensor(coef, X[:, e, q], delta, n_micro)
    t_setup = time.perf_counter() - t0

    @BilinearForm
    def stiff(u, v, w):
        g, h = u.grad, v.grad
        return (w.A00 * g[0] * h[0] + w.A01 * g[1] * h[0] + w.A01 * g[0] * h[1]
                + w.A11 * g[1] * h[1])

    @LinearForm
    def load(v, w):
        return 1.0 * v

    K = stiff.assemble(basis, A00=A[0, 0], A01=A[0, 1], A11=A[1, 1])
    U = solve(*condense(K, load.assemble(basis), D=basis.get_dofs()))
    fine = None
    if ref is not None:
        # coarse Q1 interpolation at the fine nodes
        fine = _bilinear(mesh, U, nc, ref)
    return CoarseSolution("HMM", nc, U, fine, time.perf_counter() - t0, t_setup)


def _bilinear(mesh, U, nc, ref):
    H = 1.0 / nc
    x, y = ref.mesh.p
    i = np.minimum((x / H).astype(int), nc - 1)
    j = np.minimum((y / H).astype(int), nc - 1)
    sx, sy = x / H - i, y / H - j
    idx = np.rint(mesh.p / H).astype(int)
    node = np.empty((nc + 1) ** 2, dtype=int)
    node[idx[0] + (nc + 1) * idx[1]] = np.arange(idx.shape[1])

    def Uat(a, b):
        return U[node[a + (nc + 1) * b]]

    return ((1 - sx) * (1 - sy) * Uat(i, j) + sx * (1 - sy) * Uat(i + 1, j)
            + sx * sy * Uat(i + 1, j + 1) + (1 - sx) * sy * Uat(i, j + 1))


def errors(ref: FineSolution, u_fine: np.ndarray) -> dict:
    """Relative L2 and energy-norm errors of a fine-grid nodal field against the reference."""
    e = u_fine - ref.u
    l2 = math.sqrt(float(e @ (ref.M @ e)) / float(ref.u @ (ref.M @ ref.u)))
    en = math.sqrt(float(e @ (ref.K @ e)) / float(ref.u @ (ref.K @ ref.u)))
    return {"l2": l2, "energy": en}


def evolving_microstructure(kind: str = "migration", *, eps: float = 1 / 8, n_coarse: int = 8,
                            n_sub: int = 16, times=(0.0, 0.25, 0.5, 1.0), d_max: float = 0.9,
                            n_micro: int = 16, oversample: int = 1) -> dict:
    """The nonstationary comparison: the microstructure changes with time ``t`` in [0, 1] and,
    at each time, the fine reference, HMM (micro problems with the current coefficient) and
    MsFEM with the basis computed at t = 0 (its stiffness integrated with the current
    coefficient; ``oversample`` as :func:`msfem`) are solved.

    ``kind``:

    * ``"migration"``: the pattern moves by half a period, ``a(x, t) = a₀(x/ε + t/2)`` (a
      migrating lamellar or transformation microstructure): the old basis is aligned with
      the old pattern;
    * ``"damage"``: the stiff phase loses up to ``d_max`` of its stiffness in a band across the
      middle, ``a₀ (1 − d_max t s(a₀)² χ(x))`` (``s``: the stiff-phase indicator).

    Returns ``times`` and the L2 errors per time: ``hmm_l2``, ``msfem_l2`` (stale basis) and
    ``msfem_fresh_l2`` (basis recomputed, for reference)."""
    _v.one_of("kind", kind, ("migration", "damage"))
    P = 1.8
    a0 = hou_wu_coefficient(eps, P)
    a_lo, a_hi = (2 - P) / (2 + P), (2 + P) / (2 - P)
    out = {"kind": kind, "times": [float(t) for t in times], "hmm_l2": [], "msfem_l2": [],
           "msfem_fresh_l2": []}
    basis0 = None
    for t in times:
        if kind == "migration":
            def coef(x, y, t=t):
                return a0(x + 0.5 * t * eps, y + 0.5 * t * eps)
        else:
            def coef(x, y, t=t):
                a = a0(x, y)
                stiff = np.clip((np.log(a) - np.log(a_lo)) / (np.log(a_hi) - np.log(a_lo)), 0, 1)
                band = np.exp(-((x - 0.5) / 0.2) ** 2)
                return a * (1.0 - d_max * t * stiff ** 2 * band)

        coef.eps = eps
        ref = fine_solution(coef, n_coarse * n_sub)
        h = hmm(coef, n_coarse, delta=eps, n_micro=n_micro, ref=ref)
        if basis0 is None:
            basis0 = msfem(coef, n_coarse, n_sub, ref=ref, oversample=oversample).basis
        m_stale = msfem(coef, n_coarse, n_sub, ref=ref, basis=basis0, oversample=oversample)
        m_fresh = msfem(coef, n_coarse, n_sub, ref=ref, oversample=oversample)
        out["hmm_l2"].append(errors(ref, h.fine)["l2"])
        out["msfem_l2"].append(errors(ref, m_stale.fine)["l2"])
        out["msfem_fresh_l2"].append(errors(ref, m_fresh.fine)["l2"])
    return out


def plot_evolution(result: dict, ax=None):
    """L2 error against time: HMM, MsFEM with its t = 0 basis, MsFEM recomputed."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    t = result["times"]
    ax.plot(t, result["hmm_l2"], "o-", label="HMM (micro problems at each t)")
    ax.plot(t, result["msfem_l2"], "s-", label="MsFEM, basis of t = 0")
    ax.plot(t, result["msfem_fresh_l2"], "^--", label="MsFEM, basis recomputed")
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("relative L2 error vs fine")
    ax.set_title(f"evolving microstructure ({result['kind']})")
    ax.legend(fontsize=8)
    return ax
