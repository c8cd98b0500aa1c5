"""The quasicontinuum method on a 1D chain: representative atoms, Cauchy–Born (local) elements
and a nonlocal (atomistic) region, in the three classic variants, with their ghost forces
measured.

The chain has ``N`` sites at ``X_i = i a`` and a pair potential (any project pair calculator,
or a function ``r -> (φ, φ', φ'')``).  The degrees of freedom are the deformed positions of the
*representative atoms* (repatoms): a sorted subset of sites that includes both ends; every other
site follows by linear interpolation between its two repatoms (the finite elements).  The
*nonlocal* sites are the atomistic region: each must be a repatom (the mesh conforms to the
atomistic region; refused otherwise).

Variants (``variant=``):

* ``"energy"`` — QCE (Tadmor, Ortiz & Phillips 1996): ``E = Σ_{i∈A} E_i + ∫_{Ω_C} W(y') dX``,
  the atomistic site energies ``E_i = ½ Σ_j φ(|y_j − y_i|)`` of the nonlocal sites (their
  neighbours' positions interpolated where they are not repatoms) plus the Cauchy–Born energy
  over the Voronoi cells of the local sites.  Conservative, but the interface is not
  consistent: under a homogeneous deformation the atoms next to the interface feel **ghost
  forces** (for nearest and next-nearest neighbours ``φ'(2r)/2 · (−1, +1, +1, −1)`` on the two
  sites either side; derived in ``docs/quasicontinuum.md`` and tested).
* ``"gfc"`` — ghost-force-corrected QCE (Shenoy et al. 1999): the QCE forces plus correction
  forces held as dead loads, ``g = f_QCF(ŷ) − f_QCE(ŷ)`` at a reference configuration ``ŷ``
  (:meth:`QCChain.set_reference`; by default the first configuration asked for; a relaxation
  refreshes it between cycles).  At ``ŷ`` the forces are QCF's, so it passes the patch test;
  its energy is QCE's plus the dead-load potential ``−Σ g·y``.
* ``"force"`` — QCF (force-based; Dobson & Luskin 2008): atomistic forces (with interpolated
  neighbours) on the nonlocal repatoms, Cauchy–Born forces of the fully local model on the
  local ones.  No ghost forces, but the forces are not the gradient of any energy: asking for
  its energy raises ``PropertyNotImplementedError`` rather than returning a wrong one.

Units: eV, Å; forces eV/Å.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..core import validate as _v
from ..core.errors import ConvergenceError, InputError, PropertyNotImplementedError
from .cauchy_born import PairLattice

__all__ = ["QCChain", "VARIANTS", "chain_energy_forces"]

VARIANTS = ("energy", "gfc", "force")


def _pair_function(pair: Any, rc: float | None):
    if hasattr(pair, "pair") and hasattr(pair, "cutoff"):
        return pair.pair, float(pair.cutoff if rc is None else rc)
    if callable(pair):
        if rc is None:
            raise InputError("rc", None, "the pair function's cutoff (Å)")
        return pair, _v.positive("rc", rc)
    raise InputError("pair", type(pair).__name__,
                     "a pair calculator (LennardJones, Morse) or a function r -> (φ, φ', φ'')")


def _pairs(y: np.ndarray, rc: float):
    """Index pairs ``i < j`` of a chain whose distance may be below ``rc`` (by index offset up to
    ``rc`` over the shortest bond), and their distances ``y_j − y_i``."""
    bonds = np.diff(y)
    if bonds.min() <= 0:
        k = int(np.argmin(bonds))
        raise InputError("positions", f"sites {k} and {k + 1} at {y[k]:.6g}, {y[k + 1]:.6g} Å",
                         "a chain in order (every bond length positive)")
    K = min(len(y) - 1, int(math.ceil(rc / bonds.min())))
    i = np.concatenate([np.arange(len(y) - k) for k in range(1, K + 1)])
    j = np.concatenate([np.arange(k, len(y)) for k in range(1, K + 1)])
    return i, j, y[j] - y[i]


def chain_energy_forces(y, pair: Any, rc: float | None = None, weights=None):
    """Energy (eV) and forces (eV/Å) of a chain of atoms at positions ``y`` (Å, in order):
    ``Σ_{i<j} w_ij φ(y_j − y_i)`` with ``w_ij = 1`` (the full atomistic model) or
    ``w_ij = ½(w_i + w_j)`` for per-site weights ``weights`` (site energies of the sites with
    weight 1)."""
    phi, rc = _pair_function(pair, rc)
    y = np.asarray(y, dtype=float)
    i, j, r = _pairs(y, rc)
    e, d1, _ = phi(r)
    w = 1.0 if weights is None else 0.5 * (weights[i] + weights[j])
    f = np.zeros_like(y)
    np.add.at(f, i, w * d1)
    np.add.at(f, j, -w * d1)
    return float(np.sum(w * e)), f


class QCChain:
    """Quasicontinuum model of a 1D chain (see the module docstring).

    Parameters
    ----------
    n_sites : int
        Lattice sites ``0 .. N−1`` at ``X_i = i a``.
    a : float
        Lattice spacing (Å).
    pair : pair calculator or callable
        The potential; ``rc`` from the calculator.
    repatoms : array of int
        Site indices of the representative atoms (sorted, unique, with 0 and N−1).
    nonlocal_sites : array of int or bool mask
        The atomistic region; every nonlocal site must be a repatom.
    variant : {"energy", "gfc", "force"}
    rc : float, optional
        Cutoff, for a pair function given as a callable.
    """

    def __init__(self, n_sites: int, a: float, pair: Any, repatoms, nonlocal_sites=(),
                 variant: str = "energy", rc: float | None = None):
        self.N = _v.positive_int("n_sites", n_sites, minimum=2)
        self.a = _v.positive("a", a)
        self.phi, self.rc = _pair_function(pair, rc)
        self.variant = _v.one_of("variant", variant, VARIANTS)
        rep = np.asarray(repatoms)
        if rep.ndim != 1 or rep.size < 2 or not np.issubdtype(rep.dtype, np.integer):
            raise InputError("repatoms", repatoms, "site indices (integers) of at least two atoms")
        if np.any(np.diff(rep) <= 0) or rep[0] != 0 or rep[-1] != self.N - 1:
            raise InputError("repatoms", rep.tolist() if rep.size < 20 else f"{rep.size} indices",
                             f"sorted unique site indices from 0 to n_sites − 1 = {self.N - 1}")
        self.rep = rep
        nl = np.zeros(self.N, dtype=bool)
        nls = np.asarray(nonlocal_sites)
        if nls.dtype == bool:
            if nls.shape != (self.N,):
                raise InputError("nonlocal_sites", f"a mask of shape {nls.shape}",
                                 f"a boolean mask over the {self.N} sites or site indices")
            nl = nls.copy()
        elif nls.size:
            if not np.issubdtype(nls.dtype, np.integer) or nls.min() < 0 or nls.max() >= self.N:
                raise InputError("nonlocal_sites", nonlocal_sites, f"site indices in [0, {self.N})")
            nl[nls] = True
        is_rep = np.zeros(self.N, dtype=bool)
        is_rep[rep] = True
        bad = np.flatnonzero(nl & ~is_rep)
        if bad.size:
            raise InputError("nonlocal_sites", f"site {int(bad[0])} (and {bad.size - 1} more)",
                             "nonlocal (atomistic) sites that are all repatoms: the mesh must "
                             "conform to the atomistic region (refine it down to those atoms)")
        self.nonlocal_ = nl
        self.lattice = PairLattice.chain(self.a, self.phi, self.rc)
        self.X = self.a * np.arange(self.N)
        # interpolation: sites from repatoms
        e = np.searchsorted(rep, np.arange(self.N), side="right") - 1
        e = np.minimum(e, rep.size - 2)
        t = (np.arange(self.N) - rep[e]) / (rep[e + 1] - rep[e])
        rows = np.concatenate([np.arange(self.N)] * 2)
        cols = np.concatenate([e, e + 1])
        self.Phi = sp.csr_matrix((np.concatenate([1 - t, t]), (rows, cols)),
                                 shape=(self.N, rep.size))
        # element weights: reference length of the local sites' Voronoi cells in each element
        p, q = rep[:-1], rep[1:]
        self.elem_len = (q - p) * self.a
        self.elem_w = self.a * ((q - p - 1) + 0.5 * ~nl[p] + 0.5 * ~nl[q])
        self._ghost = None

    # -- the pieces -------------------------------------------------------------------------------
    @property
    def n_dofs(self) -> int:
        return int(self.rep.size)

    def sites(self, y_rep) -> np.ndarray:
        """Positions of every site (Å) from the repatom positions."""
        y = _v.finite_array("y", y_rep, (self.n_dofs,))
        return self.Phi @ y

    def _local(self, y, weights):
        """Cauchy–Born energy ``Σ_e W(F_e) w_e`` and its gradient on the repatoms."""
        L = self.elem_len
        F = np.diff(y) / L
        W = np.array([self.lattice.energy_density(f) for f in F])
        P = np.array([self.lattice.stress(f)[0, 0] for f in F])
        g = np.zeros_like(y)
        g[:-1] -= P * weights / L
        g[1:] += P * weights / L
        return float(np.sum(W * weights)), g

    def _qce(self, y):
        ys = self.Phi @ y
        w = self.nonlocal_.astype(float)
        e_nl, f_sites = chain_energy_forces(ys, self.phi, self.rc, weights=w)
        e_l, g_l = self._local(y, self.elem_w)
        return e_nl + e_l, self.Phi.T @ f_sites - g_l

    def homogeneous(self, F: float) -> np.ndarray:
        """Repatom positions of the homogeneous deformation ``y = F X``."""
        return _v.positive("F", F) * self.X[self.rep]

    def ghost_forces(self, F: float = 1.0) -> np.ndarray:
        """QCE forces on the repatoms under the homogeneous deformation ``F`` (eV/Å).  Away from
        the chain's free ends these are the ghost forces (zero for a consistent method)."""
        return self._qce(self.homogeneous(F))[1]

    def set_reference(self, y_rep) -> None:
        """The configuration whose ghost forces the ``gfc`` variant subtracts (dead loads)."""
        y = _v.finite_array("y", y_rep, (self.n_dofs,))
        self._ghost = self._qce(y)[1] - self._qcf(y)

    def _qcf(self, y):
        ys = self.Phi @ y
        _, f_atom = chain_energy_forces(ys, self.phi, self.rc)
        _, g_l = self._local(y, self.elem_len)
        f = -g_l
        nl_rep = self.nonlocal_[self.rep]
        f[nl_rep] = f_atom[self.rep[nl_rep]]
        return f

    # -- public -----------------------------------------------------------------------------------
    def energy(self, y_rep) -> float:
        """QC energy (eV).  ``gfc``: QCE's plus the dead-load potential ``Σ g·y``; ``force``:
        raises ``PropertyNotImplementedError`` (the force-based QC has no energy)."""
        y = _v.finite_array("y", y_rep, (self.n_dofs,))
        if self.variant == "force":
            raise PropertyNotImplementedError(
                "the force-based quasicontinuum (QCF) is not conservative: its forces are not the "
                "gradient of any energy, so it has none to report (use variant='energy' or 'gfc')")
        e, _ = self._qce(y)
        if self.variant == "gfc":
            e += float(self._ghost_for(y) @ y)      # self._ghost = −g: forces f_QCE − self._ghost
        return e

    def _ghost_for(self, y):
        if self._ghost is None:
            self.set_reference(y)
        return self._ghost

    def forces(self, y_rep) -> np.ndarray:
        """Forces on the repatoms (eV/Å)."""
        y = _v.finite_array("y", y_rep, (self.n_dofs,))
        if self.variant == "force":
            return self._qcf(y)
        f = self._qce(y)[1]
        if self.variant == "gfc":
            f = f - self._ghost_for(y)
        return f

    @property
    def interior(self) -> np.ndarray:
        """Mask of the repatoms farther than the cutoff from both free ends (where a homogeneous
        deformation of the full atomistic chain has zero force)."""
        K = int(math.ceil(self.rc / self.a))
        x = self.rep
        return (x >= K + 1) & (x <= self.N - 2 - K)

    def patch_test(self, F: float = 1.01) -> float:
        """Largest force (eV/Å) on an interior repatom under the homogeneous deformation ``F``:
        zero (to round-off) for a consistent method."""
        y = self.homogeneous(F)
        if self.variant == "gfc":
            self.set_reference(y)
        return float(np.abs(self.forces(y)[self.interior]).max())

    def relax(self, y0, fixed, *, tol: float = 1e-9, max_iter: int = 100) -> np.ndarray:
        """Equilibrium repatom positions with the repatoms in ``fixed`` (mask or indices) held:
        Newton on the forces with a central-difference Jacobian (any variant; QCF has no energy
        to minimise).  Converged when the largest free force is below ``tol`` eV/Å."""
        y = _v.finite_array("y0", y0, (self.n_dofs,)).copy()
        hold = np.zeros(self.n_dofs, dtype=bool)
        hold[np.asarray(fixed)] = True
        free = np.flatnonzero(~hold)
        h = 1e-6 * self.a
        for _ in range(max_iter):
            f = self.forces(y)[free]
            if np.abs(f).max() < tol:
                return y
            J = np.empty((free.size, free.size))
            for c, k in enumerate(free):
                yp, ym = y.copy(), y.copy()
                yp[k] += h
                ym[k] -= h
                J[:, c] = (self.forces(yp)[free] - self.forces(ym)[free]) / (2 * h)
            y[free] += np.linalg.solve(J, -f)
        raise ConvergenceError(f"QC relaxation: force {np.abs(f).max():.3g} eV/Å after {max_iter} "
                               "Newton iterations", suggestion="a smaller load step")
