"""The bridging-domain method in one dimension (Xiao & Belytschko 2004): an atomistic chain and a
finite-element bar that overlap, their energies blended, their displacements tied in the overlap
by Lagrange multipliers or by a penalty; explicit dynamics; the waves it reflects measured.

Geometry: atoms (mass ``m``, bond stiffness ``k``, spacing ``a``) on ``[0, X_b]``; linear
elements (size ``h = ratio · a``, the same material: ``EA = k a``, ``ρA = m/a``) on
``[X_a, L]``; the overlap ``[X_a, X_b]`` holds ``n_overlap`` elements.  The blending function
``α`` falls linearly from 1 at ``X_a`` to 0 at ``X_b``: every bond's energy is scaled by ``α`` at
its midpoint and every element's by ``1 − α`` at its centre, and each bond's and element's
lumped mass with it (half to each end).  The overlap's atoms are tied
to the bar, ``g_i = u_i − Σ_I N_I(x_i) u_I = 0``:

* ``"lagrange"`` — the constraints are linear, so after every velocity update the velocities are
  projected onto ``G v = 0`` with the mass-weighted projector
  ``v ← v − M⁻¹Gᵀ (G M⁻¹ Gᵀ)⁻¹ G v``; positions updated with them keep ``G u = 0`` exactly.
  This is the explicit Lagrange-multiplier algorithm of the method (the multipliers are the
  impulses ``(G M⁻¹ Gᵀ)⁻¹ G v``).
* ``"penalty"`` — an energy ``½ p Σ g_i²`` instead; it lets the two sides drift apart by
  ``~f/p`` and reflects part of every wave.

With ``h = a`` and the Lagrange ties, the coupled system is the perfect chain (blended masses and
springs add back to ``m`` and ``k`` at every tied site): no reflection at any wavelength, tested.
With a coarser mesh, waves the mesh can carry pass and shorter ones are reflected.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..core import validate as _v
from ..core.errors import InputError
from .waves import right_going_packet

__all__ = ["BridgingDomain1D", "BridgingDomain2D", "bridging_reflection", "BridgingReflection",
           "METHODS"]

METHODS = ("lagrange", "penalty")


class _Bridged:
    """What the 1D and 2D bridging-domain models share once assembled: the blended stiffness
    ``K`` and lumped masses ``mass`` of all DOFs (atoms first, then nodes), the tie matrix ``G``
    (``G u = 0``), the method, and the damping rates ``gamma`` (with the optional high-pass
    filter ``_hp``).  Dead DOFs (zero mass: every term around them weighted 0) stay at rest."""

    method: str
    filtered: bool = False

    def _settings(self, ratio, n_overlap, n_elements, m, k, a, method, penalty, blending) -> None:
        """The settings both models share, validated."""
        self.ratio = _v.positive_int("ratio", ratio)
        self.no = _v.positive_int("n_overlap", n_overlap)
        self.ne = _v.positive_int("n_elements", n_elements, minimum=self.no + 1)
        self.m, self.k, self.a = (_v.positive(n, v) for n, v in (("m", m), ("k", k), ("a", a)))
        self.method = _v.one_of("method", method, METHODS)
        if self.method == "penalty":
            if penalty is None:
                raise InputError("penalty", None, "a penalty stiffness p > 0 for method='penalty'")
            self.p = _v.positive("penalty", penalty)
        elif penalty is not None:
            raise InputError("penalty", penalty, "None unless method='penalty'")
        if blending is None:
            raise InputError("blending", None, "a blending function ('linear' or 'cubic'): "
                             "without one the overlap's energy and mass are counted twice")
        self.blending = _v.one_of("blending", blending, ("linear", "cubic"))

    def _finish(self, live: np.ndarray) -> None:
        self.live = live
        self._Minv = np.where(live, 1.0 / np.where(live, self.mass, 1.0), 0.0)
        if self.method == "penalty":
            self.K = (self.K + self.p * (self.G.T @ self.G)).tocsr()
        elif self.G.shape[0]:
            from scipy.sparse.linalg import splu

            self._lu = splu((self.G @ sp.diags(self._Minv) @ self.G.T).tocsc())

    def alpha(self, x):
        """The blending function: 1 at ``X_a`` falling to 0 at ``X_b`` (linear, or the cubic
        ``3s² − 2s³`` with zero slope at both ends)."""
        t = np.clip((self.Xb - np.asarray(x, dtype=float)) / (self.Xb - self.Xa), 0.0, 1.0)
        return t if self.blending == "linear" else t * t * (3.0 - 2.0 * t)

    def project(self, v: np.ndarray) -> np.ndarray:
        """``v − M⁻¹Gᵀ(GM⁻¹Gᵀ)⁻¹Gv`` (Lagrange), or ``v`` (penalty)."""
        if self.method != "lagrange" or self.G.shape[0] == 0:
            return v
        lam = self._lu.solve(self.G @ v)
        return v - self._Minv * (self.G.T @ lam)

    def energy(self, u, v, dofs=None) -> float:
        """Blended kinetic + strain energy (+ penalty) of the DOFs ``dofs`` (mask; terms with
        all their DOFs inside)."""
        if dofs is None:
            return float(0.5 * v @ (self.mass * v) + 0.5 * u @ (self.K @ u))
        Kc = self.K.tocoo()
        inside = dofs[Kc.row] & dofs[Kc.col]
        pot = 0.5 * float(np.sum(Kc.data[inside] * u[Kc.row[inside]] * u[Kc.col[inside]]))
        return float(0.5 * np.sum(self.mass[dofs] * v[dofs] ** 2)) + pot

    def stable_step(self) -> float:
        """A bound below Verlet's stability limit ``2/ω_max``: Gershgorin's bound on the largest
        eigenvalue of ``M⁻¹K`` over the live DOFs."""
        rowsum = np.asarray(abs(self.K).sum(axis=1)).ravel()
        return float(2.0 / math.sqrt(max(np.max(rowsum * self._Minv), 1e-300)))

    def run(self, u, v, dt: float, n_steps: int):
        """Velocity Verlet with the constraint projection after every velocity update (and the
        band's drag, ``−γ v``, taken half-implicitly in each half kick)."""
        u, v = np.array(u, dtype=float), self.project(np.array(v, dtype=float))
        Minv = self._Minv
        acc = -(self.K @ u) * Minv
        n_steps = _v.positive_int("n_steps", n_steps)
        if self.filtered and self.gamma.any():
            g, hp = self.gamma, self._hp
            for _ in range(n_steps):        # the filtered drag explicitly (γ dt ≪ 1)
                v = self.project(v + 0.5 * dt * (acc - g * (hp @ v)))
                u = u + dt * v
                acc = -(self.K @ u) * Minv
                v = self.project(v + 0.5 * dt * (acc - g * (hp @ v)))
            return u, v
        c = 0.5 * dt * self.gamma
        for _ in range(n_steps):
            v = self.project((v * (1 - c) + 0.5 * dt * acc) / (1 + c))
            u = u + dt * v
            acc = -(self.K @ u) * Minv
            v = self.project((v * (1 - c) + 0.5 * dt * acc) / (1 + c))
        return u, v


class BridgingDomain1D(_Bridged):
    """A bridging-domain model (module docstring).

    Parameters
    ----------
    n_atoms : int
        Atoms on ``[0, X_b]`` (site ``i`` at ``i a``).
    ratio : int
        Element size in lattice spacings (``h = ratio a``).
    n_overlap : int
        Elements in the overlap.
    n_elements : int
        Elements of the bar in all (from ``X_a``).
    m, k, a : float
        Atomic mass, bond stiffness, spacing (any consistent units).
    method : {"lagrange", "penalty"}
    penalty : float
        ``p`` for the penalty method (force per length, like ``k``).
    blending : {"linear", "cubic"}
        ``α`` across the overlap: linear, or the cubic ``3s² − 2s³`` (zero slope at both ends).
        ``None`` is refused: overlapping regions without a blending function count the
        overlap's energy twice.
    damping : float
        Largest viscous damping rate (1/time) of the atoms in a band that ends at ``X_b``: the
        cure for the short waves the mesh cannot carry (they are absorbed instead of reflected).
        Zero: none.
    damping_band : float
        Width of that band, in lattice spacings; the rate rises as ``((x − x₀)/w)²`` across it.
    filtered : bool
        Damp only the part of the atoms' velocity the mesh cannot carry, ``(1 − S)² v`` with
        ``S`` the moving average over one element (``2·ratio + 1`` atoms): long waves pass the
        band nearly untouched, short ones are absorbed.  ``False``: plain viscous drag on the whole velocity,
        which absorbs the long waves as well.
    """

    def __init__(self, n_atoms: int, ratio: int, n_overlap: int, n_elements: int, *,
                 m: float = 1.0, k: float = 1.0, a: float = 1.0, method: str = "lagrange",
                 penalty: float | None = None, blending: str | None = "linear",
                 damping: float = 0.0, damping_band: float = 0.0, filtered: bool = True):
        self.na = _v.positive_int("n_atoms", n_atoms, minimum=4)
        self._settings(ratio, n_overlap, n_elements, m, k, a, method, penalty, blending)
        h = self.ratio * self.a
        x_atoms = self.a * np.arange(self.na)
        Xb = x_atoms[-1]
        Xa = Xb - self.no * h
        if Xa <= 0:
            raise InputError("n_overlap", n_overlap, f"an overlap shorter than the chain "
                             f"({self.no} elements of {h:g} > {Xb:g})")
        x_nodes = Xa + h * np.arange(self.ne + 1)
        self.x_atoms, self.x_nodes, self.Xa, self.Xb, self.h = x_atoms, x_nodes, Xa, Xb, h

        alpha = self.alpha
        na, nn = self.na, self.ne + 1
        self.n = na + nn
        # stiffness and lumped mass of bonds and elements, both scaled by the same weights
        # (α at a bond's midpoint, 1 − α at an element's centre): with h = a the tied chain is the
        # perfect chain, masses included, at every site and at both ends of the overlap
        rows, cols, vals = [], [], []
        mass = np.zeros(self.n)

        def spring(i, j, kk, mm):
            rows.extend([i, i, j, j])
            cols.extend([i, j, i, j])
            vals.extend([kk, -kk, -kk, kk])
            mass[i] += 0.5 * mm
            mass[j] += 0.5 * mm

        for i in range(na - 1):
            w = float(alpha(0.5 * (x_atoms[i] + x_atoms[i + 1])))
            if w > 0:
                spring(i, i + 1, w * self.k, w * self.m)
        ke, me = self.k * self.a / h, self.m / self.a * h
        for e in range(self.ne):
            w = 1.0 - float(alpha(0.5 * (x_nodes[e] + x_nodes[e + 1])))
            if w > 0:
                spring(na + e, na + e + 1, w * ke, w * me)
        self.K = sp.csr_matrix((vals, (rows, cols)), shape=(self.n, self.n))
        self.mass = mass
        live = mass > 0
        gamma = np.zeros(self.n)
        g_max = _v.nonnegative("damping", damping)
        width = _v.nonnegative("damping_band", damping_band) * self.a
        if g_max > 0:
            if width <= 0:
                raise InputError("damping_band", damping_band, "a band width > 0 lattice spacings")
            x0 = Xb - width
            gamma[:na] = g_max * np.clip((x_atoms - x0) / width, 0.0, 1.0) ** 2
        self.gamma = gamma
        self.filtered = bool(filtered)
        if self.filtered and g_max > 0:
            r = self.ratio
            band = np.flatnonzero(gamma[:na] > 0)
            rr, cc, vv = [], [], []
            for i in band:
                js = np.arange(max(0, i - r), min(na, i + r + 1))
                rr += [i] * js.size
                cc += js.tolist()
                vv += [1.0 / js.size] * js.size
            S = sp.csr_matrix((vv, (rr, cc)), shape=(self.n, self.n))
            sel = sp.diags((gamma > 0).astype(float))
            hp = (sel - S).tocsr()               # v ↦ (v − S v) on the band, 0 elsewhere
            # applied twice: the transfer (1 − S(q))² is 0.016 at q = 0.2 for ratio 4 (long waves
            # pass) and ~0.9 above the mesh's cutoff (short waves are damped)
            self._hp = (hp @ hp).tocsr()
        # constraints: the live atoms in the overlap tied to the bar
        tied = np.flatnonzero((x_atoms >= Xa - 1e-12) & (x_atoms <= Xb + 1e-12) & live[:na])
        g_rows, g_cols, g_vals = [], [], []
        for c, i in enumerate(tied):
            e = min(int((x_atoms[i] - Xa) // h), self.ne - 1)
            t = (x_atoms[i] - x_nodes[e]) / h
            g_rows += [c, c, c]
            g_cols += [i, na + e, na + e + 1]
            g_vals += [1.0, -(1.0 - t), -t]
        self.G = sp.csr_matrix((g_vals, (g_rows, g_cols)), shape=(tied.size, self.n))
        self.tied = tied
        self._finish(live)


@dataclass
class BridgingReflection:
    """Energy fractions after a packet has crossed the overlap: reflected into the pure atomistic
    region, transmitted into the pure continuum, and the rest (kept in the overlap, or absorbed
    by a damping band)."""

    reflected: float
    transmitted: float
    residual: float
    q0: float


def bridging_reflection(q0: float, *, ratio: int = 1, n_overlap: int = 8, method: str = "lagrange",
                        penalty: float | None = None, damping: float = 0.0,
                        damping_band: float = 0.0, filtered: bool = True,
                        width: float = 30.0, dim: int = 1,
                        polarisation: str = "longitudinal",
                        blending: str = "linear") -> BridgingReflection:
    """Send a right-going packet (carrier ``q0`` per lattice spacing) from the atoms through the
    overlap into the continuum (unit m, k, a) and measure where its energy ends up.
    ``dim=2``: a plane-wave packet along x of the given ``polarisation`` (``"longitudinal"`` or
    ``"transverse"``) through :class:`BridgingDomain2D` (a strip ``max(4, 2·ratio)`` rows high,
    periodic in y; damping bands are a 1D option)."""
    q0 = _v.in_range("q0", q0, 1e-3, math.pi - 1e-3)
    if _v.one_of("dim", dim, (1, 2)) == 2:
        if damping:
            raise InputError("damping", damping, "0 for dim=2 (the damping band is 1D only)")
        return _reflection_2d(q0, ratio, n_overlap, method, penalty, width, polarisation,
                              blending)
    n_pure = int(12 * width)
    h = ratio
    n_atoms = n_pure + n_overlap * h
    n_el = n_overlap + int(math.ceil(14 * width / h)) + 4
    bd = BridgingDomain1D(n_atoms, ratio, n_overlap, n_el, method=method, penalty=penalty,
                          damping=damping, damping_band=damping_band, filtered=filtered,
                          blending=blending)
    u = np.zeros(bd.n)
    v = np.zeros(bd.n)
    u[:n_pure], v[:n_pure], *_ = right_going_packet(n_pure, 1.0, 1.0, q0, width,
                                                    centre=n_pure / 2.0)
    v = bd.project(v)
    E0 = bd.energy(u, v)
    vg = math.cos(q0 / 2)
    T = (n_pure / 2 + n_overlap * h + 6 * width) / max(vg, 1e-3)
    kmax = max(1.0, (penalty or 0.0))
    dt = 0.1 / math.sqrt(kmax * 4)
    u, v = bd.run(u, v, dt, int(math.ceil(T / dt)))
    left = np.zeros(bd.n, dtype=bool)
    left[:bd.na] = bd.x_atoms < bd.Xa - 1e-12
    right = np.zeros(bd.n, dtype=bool)
    right[bd.na:] = bd.x_nodes > bd.Xb + 1e-12
    El, Er = bd.energy(u, v, left), bd.energy(u, v, right)
    return BridgingReflection(reflected=El / E0, transmitted=Er / E0,
                              residual=1.0 - (El + Er) / E0, q0=q0)


class BridgingDomain2D(_Bridged):
    """The bridging-domain method in two dimensions: a triangular lattice of atoms (mass ``m``,
    nearest-neighbour harmonic bonds ``k``, spacing ``a``, close-packed rows along x) on
    ``x ≤ X_b``, and linear triangular elements (P1, scikit-fem) on a triangular grid of spacing
    ``h = ratio · a`` from ``X_a`` on, with the lattice's Cauchy–Born elasticity (plane,
    isotropic, ``λ = μ = √3k/4`` per unit area, density ``ρ = 2m/(√3a²)``); the strip is periodic
    in y (``n_rows`` atom rows, a multiple of ``2·ratio``), so plane waves along x are its test.

    The blending ``α(x)`` falls from 1 at ``X_a`` to 0 at ``X_b`` (linear or cubic): every bond's
    stiffness and mass (``m/6`` to each end) is scaled by ``α`` at its midpoint, every element's
    stiffness and lumped mass by ``1 − α`` at its centroid.  The atoms of the overlap that lie
    in the mesh are tied to it, ``u_i = Σ_I N_I(x_i) u_I`` (both components), by Lagrange
    multipliers (the velocity projection of :class:`BridgingDomain1D`) or by a penalty.

    With ``ratio = 1`` the elements are the lattice's own triangles: the P1 energy of a triangle
    is exactly its three half-bonds, a linear ``α`` at the midpoint of an edge is the mean of
    the two centroids' (for the 60° bonds the centroids sit ``a/4`` either side of it in x;
    the kinks of ``α`` at ``X_a`` and ``X_b`` fall on lattice columns, where this still holds),
    and the tied masses add back to ``m`` — the coupled model is the perfect lattice, and
    nothing is reflected (tested).  Coarser meshes reflect the waves they cannot carry.
    """

    def __init__(self, n_cols: int, n_rows: int, ratio: int, n_overlap: int, n_elements: int, *,
                 m: float = 1.0, k: float = 1.0, a: float = 1.0, method: str = "lagrange",
                 penalty: float | None = None, blending: str | None = "linear"):
        from scipy.spatial import cKDTree
        from skfem import Basis, BilinearForm, ElementTriP1, ElementVector, MeshTri
        from skfem.helpers import ddot, div, dot, sym_grad

        from ..continuum.rve import periodic_node_map

        self.nc = _v.positive_int("n_cols", n_cols, minimum=4)
        self.nr = _v.positive_int("n_rows", n_rows, minimum=4)   # below 4 a bond and its periodic image join the same pair
        if self.nr % (2 * _v.positive_int("ratio", ratio)):
            raise InputError("n_rows", n_rows, f"a multiple of 2·ratio = {2 * ratio} (the "
                             "mesh's rows must repeat with the strip's period)")
        self._settings(ratio, n_overlap, n_elements, m, k, a, method, penalty, blending)
        a, h = self.a, self.ratio * self.a
        ry = 0.5 * math.sqrt(3.0)
        Ly = self.nr * ry * a
        Xb = (self.nc - 1) * a
        Xa = Xb - self.no * h
        if Xa <= 0:
            raise InputError("n_overlap", n_overlap, f"an overlap shorter than the lattice "
                             f"({self.no} elements of {h:g} > {Xb:g})")
        self.Xa, self.Xb, self.h, self.Ly = Xa, Xb, h, Ly
        alpha = self.alpha
        # atoms: row j at y = j·ry·a, shifted by a/2 on odd rows, x ≤ X_b
        xs, ys = [], []
        for j in range(self.nr):
            x = (np.arange(self.nc) + 0.5 * (j % 2)) * a
            x = x[x <= Xb + 1e-9]
            xs.append(x)
            ys.append(np.full(x.size, j * ry * a))
        P = np.column_stack([np.concatenate(xs), np.concatenate(ys)])
        na = P.shape[0]
        self.atoms = P
        tree = cKDTree(P, boxsize=[Xb + 4 * a, Ly])
        pairs = tree.query_pairs(1.0001 * a, output_type="ndarray")
        d = P[pairs[:, 1]] - P[pairs[:, 0]]
        d[:, 1] -= Ly * np.round(d[:, 1] / Ly)             # the periodic image in y
        n = d / np.linalg.norm(d, axis=1)[:, None]
        mid = P[pairs[:, 0], 0] + 0.5 * d[:, 0]
        wb = alpha(mid)
        blocks = wb[:, None, None] * self.k * np.einsum("bi,bj->bij", n, n)
        rows, cols, vals = [], [], []
        for s1, s2, sign in ((0, 0, 1.0), (1, 1, 1.0), (0, 1, -1.0), (1, 0, -1.0)):
            I, J = pairs[:, s1], pairs[:, s2]
            for c1 in range(2):
                for c2 in range(2):
                    rows.append(2 * I + c1)
                    cols.append(2 * J + c2)
                    vals.append(sign * blocks[:, c1, c2])
        Ka = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                           shape=(2 * na, 2 * na))
        ma = np.zeros(na)
        np.add.at(ma, pairs[:, 0], wb * self.m / 6.0)
        np.add.at(ma, pairs[:, 1], wb * self.m / 6.0)
        # nodes: a triangular grid of spacing h from X_a, rows J = 0 .. n_rows/ratio (the last is
        # the periodic image of the first), shifted by h/2 on odd rows; triangles built row by row
        nJ = self.nr // self.ratio
        nI = self.ne + 1
        node = {}
        pts = []
        for J in range(nJ + 1):
            for I in range(nI):
                node[I, J] = len(pts)
                pts.append((Xa + (I + 0.5 * (J % 2)) * h, J * ry * h))
        tris = []
        for J in range(nJ):
            for I in range(nI - 1):
                if J % 2 == 0:
                    tris += [(node[I, J], node[I + 1, J], node[I, J + 1]),
                             (node[I, J + 1], node[I + 1, J], node[I + 1, J + 1])]
                else:
                    tris += [(node[I, J], node[I + 1, J], node[I + 1, J + 1]),
                             (node[I, J], node[I + 1, J + 1], node[I, J + 1])]
        mesh = MeshTri(np.ascontiguousarray(np.array(pts).T), np.ascontiguousarray(np.array(tris).T))
        self.mesh = mesh
        basis = Basis(mesh, ElementVector(ElementTriP1()), intorder=2)
        centroid = mesh.p[:, mesh.t].mean(axis=1)
        we = 1.0 - alpha(centroid[0])
        wq = np.repeat(we[:, None], basis.X.shape[1], axis=1)
        lam = mu = math.sqrt(3.0) * self.k / 4.0
        rho = self.m / (ry * a * a)

        @BilinearForm
        def stiffness(u, v, w):
            return w["wt"] * (lam * div(u) * div(v) + 2.0 * mu * ddot(sym_grad(u), sym_grad(v)))

        @BilinearForm
        def inertia(u, v, w):
            return w["wt"] * rho * dot(u, v)

        Kn = stiffness.assemble(basis, wt=wq)
        mn = np.asarray(inertia.assemble(basis, wt=wq).sum(axis=1)).ravel()   # P1: exact lumping
        # fold the periodic image row onto the first: DOF (node, c) -> (class, c)
        pnode, nu = periodic_node_map(mesh.p, [Xa, 0.0], [Xa, Ly], tol=1e-6 * a, axes=(1,))
        dof = basis.nodal_dofs                                            # (2, nodes)
        fold = sp.csr_matrix((np.ones(dof.size), (dof.T.ravel(), (2 * pnode[:, None] + np.arange(2)).ravel())),
                             shape=(basis.N, 2 * nu))
        Kn = (fold.T @ Kn @ fold).tocsr()
        mn = fold.T @ mn
        self.nodes = np.zeros((nu, 2))
        self.nodes[pnode[::-1]] = mesh.p.T[::-1]           # the first row's coordinates
        self.na, self.nn = na, nu
        self.n = 2 * (na + nu)
        self.K = sp.block_diag([Ka, Kn]).tocsr()
        self.mass = np.concatenate([np.repeat(ma, 2), mn])
        self.gamma = np.zeros(self.n)
        # ties: the overlap's atoms inside the mesh, u_i − Σ_I N_I(x_i) u_I = 0
        cand = np.flatnonzero((P[:, 0] >= Xa - 1e-9) & (ma > 0))
        tri_p = mesh.p[:, mesh.t]                                      # (2, 3, nt)
        ctree = cKDTree(centroid.T)
        g_rows, g_cols, g_vals = [], [], []
        tied = []
        for i in cand:
            for e in ctree.query(P[i], k=min(8, mesh.t.shape[1]))[1]:
                (x1, x2, x3), (y1, y2, y3) = tri_p[0, :, e], tri_p[1, :, e]
                det = (x2 - x1) * (y3 - y1) - (x3 - x1) * (y2 - y1)
                l2 = ((P[i, 0] - x1) * (y3 - y1) - (x3 - x1) * (P[i, 1] - y1)) / det
                l3 = ((x2 - x1) * (P[i, 1] - y1) - (P[i, 0] - x1) * (y2 - y1)) / det
                lam_ = np.array([1.0 - l2 - l3, l2, l3])
                if lam_.min() >= -1e-9:
                    break
            else:
                continue                   # outside the mesh's jagged left edge: not tied
            lam_ = np.clip(lam_, 0.0, 1.0)
            for c in range(2):
                r = 2 * len(tied) + c
                g_rows.append(r)
                g_cols.append(2 * i + c)
                g_vals.append(1.0)
                for wgt, nd in zip(lam_, mesh.t[:, e]):
                    if wgt > 1e-12:
                        g_rows.append(r)
                        g_cols.append(2 * na + 2 * pnode[nd] + c)
                        g_vals.append(-wgt)
            tied.append(i)
        self.tied = np.array(tied, dtype=int)
        self.G = sp.csr_matrix((g_vals, (g_rows, g_cols)), shape=(2 * len(tied), self.n))
        self._finish(self.mass > 0)

    def atom_dofs(self) -> np.ndarray:
        """Mask of the atoms' DOFs (x, y interleaved, atoms first)."""
        m = np.zeros(self.n, dtype=bool)
        m[:2 * self.na] = True
        return m


def _reflection_2d(q0, ratio, n_overlap, method, penalty, width, polarisation, blending):
    from .waves import triangular_frequency

    pol = _v.one_of("polarisation", polarisation, ("longitudinal", "transverse"))
    n_pure = int(12 * width)
    n_cols = n_pure + n_overlap * ratio + 1
    n_el = n_overlap + int(math.ceil(14 * width / ratio)) + 4
    bd = BridgingDomain2D(n_cols, max(4, 2 * ratio), ratio, n_overlap, n_el, method=method,
                          penalty=penalty, blending=blending)
    freq = (lambda q: triangular_frequency(q, 1.0, 1.0, pol))
    x = bd.atoms[:, 0]
    us, vs, *_ = right_going_packet(bd.na, 1.0, 1.0, q0, width, centre=n_pure / 2.0, x=x,
                                    frequency=freq)
    pure = x < bd.Xa - 1e-9
    c = 0 if pol == "longitudinal" else 1
    u = np.zeros(bd.n)
    v = np.zeros(bd.n)
    u[2 * np.flatnonzero(pure) + c] = us[pure]
    v[2 * np.flatnonzero(pure) + c] = vs[pure]
    v = bd.project(v)
    E0 = bd.energy(u, v)
    vg = float((freq(q0 + 1e-5) - freq(q0 - 1e-5)) / 2e-5)
    T = (n_pure / 2 + n_overlap * ratio + 6 * width) / max(vg, 1e-3)
    dt = min(0.1, 0.5 * bd.stable_step())
    u, v = bd.run(u, v, dt, int(math.ceil(T / dt)))
    left = np.zeros(bd.n, dtype=bool)
    left[:2 * bd.na] = np.repeat(pure, 2)
    right = np.zeros(bd.n, dtype=bool)
    right[2 * bd.na:] = np.repeat(bd.nodes[:, 0] > bd.Xb + 1e-9, 2)
    El, Er = bd.energy(u, v, left), bd.energy(u, v, right)
    return BridgingReflection(reflected=El / E0, transmitted=Er / E0,
                              residual=1.0 - (El + Er) / E0, q0=q0)
