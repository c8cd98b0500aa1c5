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

__all__ = ["BridgingDomain1D", "bridging_reflection", "BridgingReflection", "METHODS"]

METHODS = ("lagrange", "penalty")


class BridgingDomain1D:
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
        h = self.ratio * self.a
        x_atoms = self.a * np.arange(self.na)
        Xb = x_atoms[-1]
        Xa = Xb - self.no * h
        if Xa <= 0:
            raise InputError("n_overlap", n_overlap, f"an overlap shorter than the chain "
                             f"({self.no} elements of {h:g} > {Xb:g})")
        x_nodes = Xa + h * np.arange(self.ne + 1)
        self.x_atoms, self.x_nodes, self.Xa, self.Xb, self.h = x_atoms, x_nodes, Xa, Xb, h

        if blending is None:
            raise InputError("blending", None, "a blending function ('linear' or 'cubic'): "
                             "without one the overlap's energy and mass are counted twice")
        self.blending = _v.one_of("blending", blending, ("linear", "cubic"))

        def alpha(x):
            t = np.clip((Xb - x) / (Xb - Xa), 0.0, 1.0)
            return t if self.blending == "linear" else t * t * (3.0 - 2.0 * t)

        self.alpha = alpha
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
        self.live = live
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
        self._Minv = np.where(live, 1.0 / np.where(live, mass, 1.0), 0.0)
        if self.method == "penalty":
            self.K = (self.K + self.p * (self.G.T @ self.G)).tocsr()
        elif self.G.shape[0]:
            from scipy.sparse.linalg import splu

            self._lu = splu((self.G @ sp.diags(self._Minv) @ self.G.T).tocsc())

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
                        width: float = 30.0) -> BridgingReflection:
    """Send a right-going packet (carrier ``q0`` per lattice spacing) from the atoms through the
    overlap into the bar (unit m, k, a) and measure where its energy ends up."""
    q0 = _v.in_range("q0", q0, 1e-3, math.pi - 1e-3)
    n_pure = int(12 * width)
    h = ratio
    n_atoms = n_pure + n_overlap * h
    n_el = n_overlap + int(math.ceil(14 * width / h)) + 4
    bd = BridgingDomain1D(n_atoms, ratio, n_overlap, n_el, method=method, penalty=penalty,
                          damping=damping, damping_band=damping_band, filtered=filtered)
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
