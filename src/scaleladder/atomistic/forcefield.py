"""A general fixed-charge molecular force field (numba): the MM engine of QM/MM couplings.

Energy (ASE units: eV, Å, elementary charges, radians)::

    E = sum_bonds  1/2 k_b (r - r0)^2
      + sum_angles 1/2 k_theta (theta - theta0)^2
      + sum_{i<j not excluded, r_ij < rc} [ k_e q_i q_j c(r_ij) + lj_ij(r_ij) ]
      + sum_{1-4 pairs} [ s_coul k_e q_i q_j / r_ij + s_lj (A_ij / r^12 - B_ij / r^6) ]
      + E_self (damped shifted force only)

with ``k_e = Hartree * Bohr = 14.3996 eV Å`` (ASE's CODATA 2014 set), Lennard-Jones
``lj(r) = A/r^12 - B/r^6``, ``A = 4 eps sigma^12``, ``B = 4 eps sigma^6``, Lorentz-Berthelot
combining ``sigma_ij = (sigma_i + sigma_j) / 2``, ``eps_ij = sqrt(eps_i eps_j)``.  Note the 1/2 in
the harmonic terms (OpenMM, GROMACS, SPC/Fw convention; CHARMM and AMBER write ``K (x - x0)^2``,
i.e. ``k = 2 K``).

Topology
--------
Pairs one bond apart (1-2) and two bonds apart (1-3, from the bond graph and from the angles'
end atoms) are excluded from the nonbonded sum, as are any extra ``exclusions`` given; pairs three
bonds apart (1-4) are taken out of the nonbonded sum and added back as *exceptions* scaled by
``scale14 = (s_coul, s_lj)``, with plain Coulomb and plain LJ whatever the cutoff (the
AMBER/CHARMM/OpenMM convention).  Bonded terms and exceptions use the minimum image along
periodic directions.

Electrostatics and cutoffs (``c(r)`` above)
-------------------------------------------
* ``coulomb="direct"``, ``cutoff=None``: plain Coulomb over all pairs, ``c = 1/r`` (open
  clusters only; a periodic box needs a cutoff).
* ``coulomb="direct"``, ``cutoff=rc``: Coulomb shifted to zero at ``rc``,
  ``c = 1/r - 1/rc`` (force not shifted): OpenMM's ``CutoffNonPeriodic``/``CutoffPeriodic``
  reaction field with ``reactionFieldDielectric = 1``, so :mod:`.openmm_calculator` builds the
  identical model.
* ``coulomb="dsf"``: damped shifted force of Fennell & Gezelter, J. Chem. Phys. 124, 234104
  (2006), eq. 19: ``c = erfc(a r)/r - erfc(a rc)/rc + [erfc(a rc)/rc^2 + 2a/sqrt(pi)
  exp(-a^2 rc^2)/rc] (r - rc)`` (energy and force continuous at ``rc``), plus the self term
  ``E_self = -[erfc(a rc)/(2 rc) + a/sqrt(pi)] k_e sum_i q_i^2`` (as LAMMPS ``coul/dsf``);
  ``a = dsf_alpha`` (default 0.2 Å⁻¹, the paper's choice for rc = 9-12 Å).  For periodic boxes
  without Ewald sums.
* LJ is truncated at ``rc`` and, with ``lj_shift=True`` (default), shifted to zero there.

Periodic boxes need ``rc`` below half the smallest perpendicular width of the cell (minimum
image: every pair interacts through at most one image), as OpenMM requires.

Kernels
-------
Nonbonded pairs come from the project's half Verlet list (:class:`.neighbours.NeighbourList`,
``skin`` Å, rebuilt only when an atom moved more than ``skin / 2``) when there is a cutoff, and
from an all-pairs loop for open clusters without one.  Excluded pairs are skipped inside the
kernel through a per-atom sorted exclusion list with a quick index-window test.  Atom types with
equal ``(epsilon, sigma)`` share LJ tables; pairs with ``A = B = 0`` (water hydrogens) skip the
LJ arithmetic.  ``parallel=True`` splits the atoms in as many chunks as numba threads, each
with private buffers (no atomics), as :mod:`.pair` does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import units
from ase.calculators.calculator import Calculator, all_changes
from numba import get_num_threads, njit, prange

from ..core import validate
from ..core.errors import InputError
from ._calculator import store_results
from .neighbours import _CalculatorList

__all__ = ["FixedChargeForceField", "SubsetReport", "COULOMB_CONSTANT"]

#: Coulomb constant ``1/(4 pi eps0)``, eV Å / e² (ASE's CODATA 2014 ``Hartree * Bohr``).
COULOMB_CONSTANT = units.Hartree * units.Bohr

_DIRECT = 0      # 1/r, no cutoff
_SHIFTED = 1     # 1/r - 1/rc
_DSF = 2         # Fennell-Gezelter damped shifted force

#: Default Verlet skin, Å.
DEFAULT_SKIN = 1.0
#: Default smallest allowed distance between two non-excluded atoms, Å.
DEFAULT_MIN_DISTANCE = 0.5


# --------------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------------

@njit(cache=True, fastmath=False, inline="always")
def _pair_terms(r2, qq, a, b, lsh, mode, cpar):
    """Pair energy and ``(dE/dr) / r`` of Coulomb (``qq = k_e q_i q_j``) plus LJ.

    ``cpar = [rc, alpha, e_shift, f_shift, 2 alpha / sqrt(pi)]``; ``lsh`` is the LJ energy at
    ``rc`` (0 without shift).
    """
    r = math.sqrt(r2)
    ir = 1.0 / r
    ir2 = ir * ir
    e = 0.0
    g = 0.0
    if qq != 0.0:
        if mode == _DSF:
            al = cpar[1]
            ec = math.erfc(al * r)
            e = qq * (ec * ir - cpar[2] + cpar[3] * (r - cpar[0]))
            g = qq * (-ec * ir2 - cpar[4] * math.exp(-al * al * r2) * ir + cpar[3]) * ir
        else:
            e = qq * (ir - cpar[2])
            g = -qq * ir2 * ir
    if a != 0.0 or b != 0.0:
        ir6 = ir2 * ir2 * ir2
        ir12 = ir6 * ir6
        e += a * ir12 - b * ir6 - lsh
        g += (-12.0 * a * ir12 + 6.0 * b * ir6) * ir2
    return e, g


@njit(cache=True, fastmath=False, inline="always")
def _in_list(i, j, xoff, xj):
    """Whether ``j`` is in atom ``i``'s sorted exclusion list ``xj[xoff[i]:xoff[i + 1]]``."""
    for t in range(xoff[i], xoff[i + 1]):
        if xj[t] == j:
            return True
    return False


@njit(cache=True, fastmath=False)
def _list_range(m0, m1, order, offsets, nbr_j, nbr_d, delta, q, typ, A, B, LS, kc, mode, cpar,
                xlo, xhi, xoff, xj, F, E, vir, best, c):
    """Nonbonded pairs of atoms ``order[m0:m1]`` from a half Verlet list (see :mod:`.pair`).

    Each listed pair ``i -> j`` within ``rc`` and not excluded is applied to both atoms (bond
    vector ``d = nbr_d[t] + delta[j] - delta[i] = r_j - r_i``); accumulates into ``F``, ``E``
    (half of each pair energy to each atom), ``vir[c]`` (``sum (dE/dr)/r d (x) d``, Voigt) and
    ``best[c] = (r^2, i, j)`` of the closest pair.
    """
    rc2 = cpar[0] * cpar[0]
    v0 = 0.0
    v1 = 0.0
    v2 = 0.0
    v3 = 0.0
    v4 = 0.0
    v5 = 0.0
    b2 = best[c, 0]
    bi = best[c, 1]
    bj = best[c, 2]
    for m in range(m0, m1):
        i = order[m]
        ax = delta[i, 0]
        ay = delta[i, 1]
        az = delta[i, 2]
        qi = kc * q[i]
        ti = typ[i]
        lo_i = xlo[i]         # exclusion index window, hoisted out of the pair loop
        hi_i = xhi[i]
        ei = 0.0
        fx = 0.0
        fy = 0.0
        fz = 0.0
        for t in range(offsets[m], offsets[m + 1]):
            j = nbr_j[t]
            dx = nbr_d[t, 0] + (delta[j, 0] - ax)
            dy = nbr_d[t, 1] + (delta[j, 1] - ay)
            dz = nbr_d[t, 2] + (delta[j, 2] - az)
            r2 = dx * dx + dy * dy + dz * dz
            if r2 >= rc2 or j == i:
                continue
            if lo_i <= j <= hi_i and _in_list(i, j, xoff, xj):
                continue
            if r2 < b2:
                b2 = r2
                bi = i
                bj = j
            tj = typ[j]
            e, g = _pair_terms(r2, qi * q[j], A[ti, tj], B[ti, tj], LS[ti, tj], mode, cpar)
            gx = g * dx
            gy = g * dy
            gz = g * dz
            ei += 0.5 * e
            E[j] += 0.5 * e
            fx += gx
            fy += gy
            fz += gz
            F[j, 0] -= gx
            F[j, 1] -= gy
            F[j, 2] -= gz
            v0 += gx * dx
            v1 += gy * dy
            v2 += gz * dz
            v3 += gy * dz
            v4 += gx * dz
            v5 += gx * dy
        E[i] += ei
        F[i, 0] += fx
        F[i, 1] += fy
        F[i, 2] += fz
    vir[c, 0] += v0
    vir[c, 1] += v1
    vir[c, 2] += v2
    vir[c, 3] += v3
    vir[c, 4] += v4
    vir[c, 5] += v5
    best[c, 0] = b2
    best[c, 1] = bi
    best[c, 2] = bj


@njit(cache=True, fastmath=False)
def _allpairs_range(i0, i1, pos, q, typ, A, B, LS, kc, mode, cpar, xlo, xhi, xoff, xj, F, E,
                    vir, best, c):
    """Nonbonded pairs ``(i, j > i)`` for ``i0 <= i < i1`` of an open cluster, no cutoff
    (same accumulation as :func:`_list_range`)."""
    n = pos.shape[0]
    v0 = 0.0
    v1 = 0.0
    v2 = 0.0
    v3 = 0.0
    v4 = 0.0
    v5 = 0.0
    b2 = best[c, 0]
    bi = best[c, 1]
    bj = best[c, 2]
    for i in range(i0, i1):
        xi = pos[i, 0]
        yi = pos[i, 1]
        zi = pos[i, 2]
        qi = kc * q[i]
        ti = typ[i]
        lo_i = xlo[i]         # exclusion index window, hoisted out of the pair loop
        hi_i = xhi[i]
        ei = 0.0
        fx = 0.0
        fy = 0.0
        fz = 0.0
        for j in range(i + 1, n):
            if lo_i <= j <= hi_i and _in_list(i, j, xoff, xj):
                continue
            dx = pos[j, 0] - xi
            dy = pos[j, 1] - yi
            dz = pos[j, 2] - zi
            r2 = dx * dx + dy * dy + dz * dz
            if r2 < b2:
                b2 = r2
                bi = i
                bj = j
            tj = typ[j]
            e, g = _pair_terms(r2, qi * q[j], A[ti, tj], B[ti, tj], LS[ti, tj], mode, cpar)
            gx = g * dx
            gy = g * dy
            gz = g * dz
            ei += 0.5 * e
            E[j] += 0.5 * e
            fx += gx
            fy += gy
            fz += gz
            F[j, 0] -= gx
            F[j, 1] -= gy
            F[j, 2] -= gz
            v0 += gx * dx
            v1 += gy * dy
            v2 += gz * dz
            v3 += gy * dz
            v4 += gx * dz
            v5 += gx * dy
        E[i] += ei
        F[i, 0] += fx
        F[i, 1] += fy
        F[i, 2] += fz
    vir[c, 0] += v0
    vir[c, 1] += v1
    vir[c, 2] += v2
    vir[c, 3] += v3
    vir[c, 4] += v4
    vir[c, 5] += v5
    best[c, 0] = b2
    best[c, 1] = bi
    best[c, 2] = bj


@njit(cache=True, fastmath=False, parallel=True)
def _nonbonded_chunks(use_list, bounds, order, offsets, nbr_j, nbr_d, delta, pos, q, typ, A, B,
                      LS, kc, mode, cpar, xlo, xhi, xoff, xj):
    """Nonbonded energies, forces, virial, closest pair: chunk ``c`` takes rows
    ``bounds[c]:bounds[c + 1]`` into private buffers, summed at the end (one parallel region)."""
    n = q.size
    nchunk = bounds.size - 1
    Ft = np.zeros((nchunk, n, 3))
    Et = np.zeros((nchunk, n))
    vt = np.zeros((nchunk, 6))
    bt = np.empty((nchunk, 3))
    for c in prange(nchunk):
        bt[c, 0] = np.inf
        bt[c, 1] = -1.0
        bt[c, 2] = -1.0
        if use_list:
            _list_range(bounds[c], bounds[c + 1], order, offsets, nbr_j, nbr_d, delta, q, typ,
                        A, B, LS, kc, mode, cpar, xlo, xhi, xoff, xj, Ft[c], Et[c], vt, bt, c)
        else:
            _allpairs_range(bounds[c], bounds[c + 1], pos, q, typ, A, B, LS, kc, mode, cpar,
                            xlo, xhi, xoff, xj, Ft[c], Et[c], vt, bt, c)
    return _reduce(Ft, Et, vt, bt)


@njit(cache=True, fastmath=False)
def _nonbonded_serial(use_list, order, offsets, nbr_j, nbr_d, delta, pos, q, typ, A, B, LS, kc,
                      mode, cpar, xlo, xhi, xoff, xj):
    """One-thread :func:`_nonbonded_chunks`."""
    n = q.size
    F = np.zeros((1, n, 3))
    E = np.zeros((1, n))
    vir = np.zeros((1, 6))
    best = np.empty((1, 3))
    best[0, 0] = np.inf
    best[0, 1] = -1.0
    best[0, 2] = -1.0
    if use_list:
        _list_range(0, order.size, order, offsets, nbr_j, nbr_d, delta, q, typ, A, B, LS, kc,
                    mode, cpar, xlo, xhi, xoff, xj, F[0], E[0], vir, best, 0)
    else:
        _allpairs_range(0, n, pos, q, typ, A, B, LS, kc, mode, cpar, xlo, xhi, xoff, xj, F[0],
                        E[0], vir, best, 0)
    return E[0], F[0], vir[0], best[0]


@njit(cache=True, fastmath=False)
def _reduce(Ft, Et, vt, bt):
    F = Ft[0].copy()
    E = Et[0].copy()
    vir = vt[0].copy()
    best = bt[0].copy()
    for c in range(1, Ft.shape[0]):
        F += Ft[c]
        E += Et[c]
        vir += vt[c]
        if bt[c, 0] < best[0]:
            best[:] = bt[c]
    return E, F, vir, best


@njit(cache=True, fastmath=False, inline="always")
def _min_image(d, cell, inv, pbc):
    """Minimum-image vector of ``d`` along periodic directions (fractional rounding)."""
    if pbc[0] or pbc[1] or pbc[2]:
        f0 = d[0] * inv[0, 0] + d[1] * inv[1, 0] + d[2] * inv[2, 0]
        f1 = d[0] * inv[0, 1] + d[1] * inv[1, 1] + d[2] * inv[2, 1]
        f2 = d[0] * inv[0, 2] + d[1] * inv[1, 2] + d[2] * inv[2, 2]
        s0 = np.round(f0) if pbc[0] else 0.0
        s1 = np.round(f1) if pbc[1] else 0.0
        s2 = np.round(f2) if pbc[2] else 0.0
        for k in range(3):
            d[k] -= s0 * cell[0, k] + s1 * cell[1, k] + s2 * cell[2, k]


@njit(cache=True, fastmath=False)
def _bonded(pos, cell, inv, pbc, bi, bk, br0, ai, ak, at0, pi, pqq, pa, pb, E, F, vir):
    """Bonds, angles and 1-4 exceptions, added to ``E, F, vir``; returns the shortest bonded
    distance (to catch coincident atoms)."""
    rmin = np.inf
    d = np.empty(3)
    d2 = np.empty(3)
    for t in range(bi.shape[0]):
        i = bi[t, 0]
        j = bi[t, 1]
        for k in range(3):
            d[k] = pos[j, k] - pos[i, k]
        _min_image(d, cell, inv, pbc)
        r = math.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
        rmin = min(rmin, r)
        if r < 1e-8:
            continue
        x = r - br0[t]
        e = 0.5 * bk[t] * x * x
        g = bk[t] * x / r
        E[i] += 0.5 * e
        E[j] += 0.5 * e
        for k in range(3):
            F[i, k] += g * d[k]
            F[j, k] -= g * d[k]
        vir[0] += g * d[0] * d[0]
        vir[1] += g * d[1] * d[1]
        vir[2] += g * d[2] * d[2]
        vir[3] += g * d[1] * d[2]
        vir[4] += g * d[0] * d[2]
        vir[5] += g * d[0] * d[1]
    for t in range(ai.shape[0]):
        i = ai[t, 0]
        j = ai[t, 1]
        l = ai[t, 2]
        for k in range(3):
            d[k] = pos[i, k] - pos[j, k]
            d2[k] = pos[l, k] - pos[j, k]
        _min_image(d, cell, inv, pbc)
        _min_image(d2, cell, inv, pbc)
        r1 = math.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
        r2 = math.sqrt(d2[0] * d2[0] + d2[1] * d2[1] + d2[2] * d2[2])
        if r1 < 1e-8 or r2 < 1e-8:
            rmin = 0.0
            continue
        cs = (d[0] * d2[0] + d[1] * d2[1] + d[2] * d2[2]) / (r1 * r2)
        cs = min(1.0, max(-1.0, cs))
        th = math.acos(cs)
        sn = max(math.sqrt(1.0 - cs * cs), 1e-12)
        x = th - at0[t]
        e = 0.5 * ak[t] * x * x
        # dE/dd1 = k x dtheta/dd1, dtheta/dd1 = -(d2/(r1 r2) - cos d1/r1^2) / sin
        pre = -ak[t] * x / sn
        gi = np.empty(3)
        gl = np.empty(3)
        for k in range(3):
            gi[k] = pre * (d2[k] / (r1 * r2) - cs * d[k] / (r1 * r1))
            gl[k] = pre * (d[k] / (r1 * r2) - cs * d2[k] / (r2 * r2))
        E[i] += e / 3.0
        E[j] += e / 3.0
        E[l] += e / 3.0
        for k in range(3):
            F[i, k] -= gi[k]
            F[l, k] -= gl[k]
            F[j, k] += gi[k] + gl[k]
        vir[0] += gi[0] * d[0] + gl[0] * d2[0]
        vir[1] += gi[1] * d[1] + gl[1] * d2[1]
        vir[2] += gi[2] * d[2] + gl[2] * d2[2]
        vir[3] += gi[1] * d[2] + gl[1] * d2[2]
        vir[4] += gi[0] * d[2] + gl[0] * d2[2]
        vir[5] += gi[0] * d[1] + gl[0] * d2[1]
    for t in range(pi.shape[0]):
        i = pi[t, 0]
        j = pi[t, 1]
        for k in range(3):
            d[k] = pos[j, k] - pos[i, k]
        _min_image(d, cell, inv, pbc)
        r2s = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
        rmin = min(rmin, math.sqrt(r2s))
        if r2s < 1e-16:
            continue
        ir = 1.0 / math.sqrt(r2s)
        ir2 = ir * ir
        ir6 = ir2 * ir2 * ir2
        e = pqq[t] * ir + pa[t] * ir6 * ir6 - pb[t] * ir6
        g = (-pqq[t] * ir - 12.0 * pa[t] * ir6 * ir6 + 6.0 * pb[t] * ir6) * ir2
        E[i] += 0.5 * e
        E[j] += 0.5 * e
        for k in range(3):
            F[i, k] += g * d[k]
            F[j, k] -= g * d[k]
        vir[0] += g * d[0] * d[0]
        vir[1] += g * d[1] * d[1]
        vir[2] += g * d[2] * d[2]
        vir[3] += g * d[1] * d[2]
        vir[4] += g * d[0] * d[2]
        vir[5] += g * d[0] * d[1]
    return rmin


# --------------------------------------------------------------------------------------------
# topology
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SubsetReport:
    """What :meth:`FixedChargeForceField.subset` kept and dropped.

    Attributes
    ----------
    indices : tuple of int
        Atoms of the subsystem, in the parent's numbering (subsystem atom ``a`` is parent atom
        ``indices[a]``).
    dropped_bonds : tuple
        Parent bonds ``(i, j, k, r0)`` that cross the cut: one atom inside the subsystem, one
        outside (parent numbering).
    dropped_angles : tuple
        Parent angles ``(i, j, k, k_theta, theta0)`` with atoms both inside and outside.
    """

    indices: tuple
    dropped_bonds: tuple = ()
    dropped_angles: tuple = ()

    @property
    def cuts_bonds(self) -> bool:
        """Whether any bonded term crossed the cut."""
        return bool(self.dropped_bonds or self.dropped_angles)


def _pairs_key(pairs) -> set:
    return {(min(a, b), max(a, b)) for a, b in pairs}


def _graph_pairs(n: int, bonds: np.ndarray, angles: np.ndarray):
    """1-2, 1-3 and 1-4 pairs (sets of ``(i < j)``) from the bond graph and the angles."""
    adj: list[set] = [set() for _ in range(n)]
    for i, j in bonds:
        adj[i].add(j)
        adj[j].add(i)
    p12 = _pairs_key(bonds.tolist())
    p13 = set()
    for j in range(n):
        nb = sorted(adj[j])
        for a in range(len(nb)):
            for b in range(a + 1, len(nb)):
                p13.add((nb[a], nb[b]))
    p13 |= _pairs_key((a, c) for a, _, c in angles.tolist())
    p13 -= p12
    p14 = set()
    for i, j in p12:                      # dihedral paths a - i - j - b
        for a in adj[i] - {j}:
            for b in adj[j] - {i}:
                if a != b:
                    p14.add((min(a, b), max(a, b)))
    p14 -= p12 | p13
    return p12, p13, p14


def _csr_exclusions(n: int, pairs: set):
    """Sorted per-atom exclusion lists (both directions) and index windows for the kernel."""
    lists: list[list] = [[] for _ in range(n)]
    for i, j in pairs:
        lists[i].append(j)
        lists[j].append(i)
    off = np.zeros(n + 1, dtype=np.int64)
    off[1:] = np.cumsum([len(x) for x in lists])
    xj = np.array([j for x in lists for j in sorted(x)], dtype=np.int64)
    lo = np.array([min(x) if x else n for x in lists], dtype=np.int64)
    hi = np.array([max(x) if x else -1 for x in lists], dtype=np.int64)
    return lo, hi, off, xj


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(name, value, "True or False")
    return bool(value)


def _index(name: str, value: Any, n: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InputError(name, value, f"an atom index (integer in [0, {n - 1}])")
    if not 0 <= value < n:
        raise InputError(name, value, f"an atom index in [0, {n - 1}] ({n} atoms)")
    return int(value)


def _terms(name: str, items, n: int, n_atoms: int, positive_names: tuple[str, ...]):
    """Validate a list of ``(idx..., params...)`` tuples; returns (int array, float array)."""
    idx = []
    prm = []
    for t, item in enumerate(items):
        try:
            item = tuple(item)
        except TypeError:
            raise InputError(f"{name}[{t}]", item, f"a tuple of {n} atom indices and "
                             f"{', '.join(positive_names)}") from None
        if len(item) != n + len(positive_names):
            raise InputError(f"{name}[{t}]", item, f"a tuple of {n} atom indices and "
                             f"{', '.join(positive_names)}")
        ii = [_index(f"{name}[{t}][{k}]", item[k], n_atoms) for k in range(n)]
        if len(set(ii)) != n:
            raise InputError(f"{name}[{t}]", item, f"{n} distinct atom indices")
        pp = [validate.nonnegative(f"{name}[{t}].{positive_names[k]}", item[n + k])
              for k in range(len(positive_names))]
        idx.append(ii)
        prm.append(pp)
    return (np.array(idx, dtype=np.int64).reshape(-1, n),
            np.array(prm, dtype=float).reshape(-1, len(positive_names)))


# --------------------------------------------------------------------------------------------
# the calculator
# --------------------------------------------------------------------------------------------

class FixedChargeForceField(Calculator):
    """Fixed-charge force field (harmonic bonds and angles, Coulomb, Lennard-Jones), numba.

    The model and its conventions are in the module docstring; units eV, Å, e, rad.

    Parameters
    ----------
    charges : array, shape (n,)
        Partial charges, e.
    lj_epsilon : array, shape (n,)
        Lennard-Jones well depths, eV (>= 0; 0 switches LJ off for that atom).
    lj_sigma : array, shape (n,)
        Lennard-Jones diameters, Å (>= 0; atoms with ``epsilon = 0`` may have ``sigma = 0``).
    bonds : sequence of (i, j, k, r0)
        Harmonic bonds ``1/2 k (r - r0)^2``: k in eV/Å², r0 in Å.
    angles : sequence of (i, j, k, k_theta, theta0)
        Harmonic angles at vertex ``j``: ``1/2 k_theta (theta - theta0)^2``, k_theta in
        eV/rad², theta0 in rad.
    exclusions : sequence of (i, j), optional
        Extra pairs left out of the nonbonded sum (1-2 and 1-3 pairs always are).
    scale14 : (float, float)
        ``(coulomb, lj)`` factors of the 1-4 exceptions (pairs three bonds apart): e.g.
        ``(1/1.2, 0.5)`` AMBER, ``(0.5, 0.5)`` OPLS, ``(0, 0)`` excludes them.
    cutoff : float, optional
        Nonbonded cutoff ``rc``, Å.  ``None``: all pairs, plain Coulomb (open clusters only).
    coulomb : {"direct", "dsf"}
        Electrostatics (module docstring): ``"direct"`` is plain Coulomb without a cutoff and
        Coulomb shifted to zero at ``rc`` with one; ``"dsf"`` the damped shifted force (needs a
        cutoff).
    dsf_alpha : float
        DSF damping parameter, Å⁻¹ (> 0).
    lj_shift : bool
        Shift the truncated LJ to zero at ``rc`` (no effect without a cutoff).
    combining : {"lorentz-berthelot"}
        Combining rule for unlike LJ pairs.
    min_distance : float
        Two non-excluded atoms closer than this (Å) raise ``InputError`` naming them.
    skin : float
        Verlet skin of the neighbour list, Å (cutoff only; 0 rebuilds every call).
    parallel : bool
        Use the threaded numba kernel (threads: ``numba.set_num_threads``).

    Notes
    -----
    Properties: ``energy``, ``free_energy``, ``energies`` (per atom: half of each pair, bond and
    exception, a third of each angle, the self term of the atom), ``forces`` (eV/Å) and, for a
    cell of non-zero volume, ``stress`` (eV/Å³, Voigt ``xx, yy, zz, yz, xz, xy``, ASE sign).
    :meth:`get_virtual_charges`, :meth:`add_virtual_sites` and :meth:`redistribute_forces` are
    the protocol ASE's ``EIQMMM`` uses to read an MM model's point charges (no virtual sites
    here).

    Examples
    --------
    >>> from scaleladder.atomistic.water import water_cluster, water_forcefield
    >>> atoms = water_cluster(4, seed=0)
    >>> atoms.calc = water_forcefield(atoms, model="spc/fw")
    >>> e = atoms.get_potential_energy()          # eV
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]
    nolabel = True

    def __init__(self, charges, lj_epsilon, lj_sigma, bonds=(), angles=(), exclusions=None,
                 scale14=(0.5, 0.5), cutoff: float | None = None, coulomb: str = "direct",
                 dsf_alpha: float = 0.2, lj_shift: bool = True,
                 combining: str = "lorentz-berthelot", min_distance: float = DEFAULT_MIN_DISTANCE,
                 skin: float = DEFAULT_SKIN, parallel: bool = False, **kwargs):
        super().__init__(**kwargs)
        q = validate.finite_array("charges", charges, (None,))
        n = q.size
        eps = validate.finite_array("lj_epsilon", lj_epsilon, (n,))
        sig = validate.finite_array("lj_sigma", lj_sigma, (n,))
        if np.any(eps < 0):
            k = int(np.argmax(eps < 0))
            raise InputError(f"lj_epsilon[{k}]", float(eps[k]), "a well depth >= 0 eV")
        if np.any(sig < 0):
            k = int(np.argmax(sig < 0))
            raise InputError(f"lj_sigma[{k}]", float(sig[k]), "a diameter >= 0 Å")
        bad = (eps > 0) & (sig == 0)
        if np.any(bad):
            k = int(np.argmax(bad))
            raise InputError(f"lj_sigma[{k}]", 0.0, "a diameter > 0 Å where lj_epsilon > 0")
        self.charges = q
        self.lj_epsilon = eps
        self.lj_sigma = sig
        b_idx, b_prm = _terms("bonds", bonds, 2, n, ("k", "r0"))
        a_idx, a_prm = _terms("angles", angles, 3, n, ("k_theta", "theta0"))
        if np.any(a_prm[:, 1] > math.pi):
            k = int(np.argmax(a_prm[:, 1] > math.pi))
            raise InputError(f"angles[{k}].theta0", float(a_prm[k, 1]), "an angle in [0, pi] rad")
        self.bonds = [(int(i), int(j), float(k), float(r0))
                      for (i, j), (k, r0) in zip(b_idx, b_prm)]
        self.angles = [(int(i), int(j), int(k), float(kt), float(t0))
                       for (i, j, k), (kt, t0) in zip(a_idx, a_prm)]
        extra = []
        for t, pair in enumerate(exclusions or ()):
            try:
                a, b = pair
            except (TypeError, ValueError):
                raise InputError(f"exclusions[{t}]", pair, "a pair of atom indices") from None
            a = _index(f"exclusions[{t}][0]", a, n)
            b = _index(f"exclusions[{t}][1]", b, n)
            if a == b:
                raise InputError(f"exclusions[{t}]", pair, "two different atoms")
            extra.append((a, b))
        try:
            s14 = tuple(scale14)
        except TypeError:
            s14 = ()
        if len(s14) != 2:
            raise InputError("scale14", scale14, "a pair (coulomb, lj) of factors in [0, 1]")
        self.scale14 = (validate.in_range("scale14[0]", s14[0], 0.0, 1.0),
                        validate.in_range("scale14[1]", s14[1], 0.0, 1.0))
        self.coulomb = validate.one_of("coulomb", coulomb, ("direct", "dsf"))
        self.combining = validate.one_of("combining", combining, ("lorentz-berthelot",))
        self.cutoff = None if cutoff is None else validate.positive("cutoff", cutoff)
        if self.coulomb == "dsf" and self.cutoff is None:
            raise InputError("cutoff", None, "a cutoff (Å) for coulomb='dsf'",
                             hint="the damped shifted force is defined up to a cutoff")
        self.dsf_alpha = validate.positive("dsf_alpha", dsf_alpha)
        self.lj_shift = _check_bool("lj_shift", lj_shift)
        self.min_distance = validate.nonnegative("min_distance", min_distance)
        self.skin = validate.nonnegative("skin", skin)
        self.parallel = _check_bool("parallel", parallel)
        p12, p13, p14 = _graph_pairs(n, b_idx, a_idx)
        self._set_topology(p12 | p13 | _pairs_key(extra), p14)
        self._lists = _CalculatorList()

    # ---- topology and tables ------------------------------------------------------------------
    def _set_topology(self, excluded: set, pairs14: set) -> None:
        n = self.charges.size
        pairs14 = set(pairs14) - set(excluded)
        self.excluded_pairs = frozenset(excluded)
        self.pairs14 = frozenset(pairs14)
        self._x = _csr_exclusions(n, set(excluded) | pairs14)
        # LJ type tables (unique (eps, sigma) combinations)
        keys = np.stack([self.lj_epsilon, self.lj_sigma], axis=1)
        uniq, typ = np.unique(keys, axis=0, return_inverse=True)
        self._typ = np.ascontiguousarray(typ.reshape(-1), dtype=np.int64)
        e_ij = np.sqrt(np.outer(uniq[:, 0], uniq[:, 0]))
        s_ij = 0.5 * (uniq[:, 1][:, None] + uniq[:, 1][None, :])
        self._A = np.ascontiguousarray(4.0 * e_ij * s_ij ** 12)
        self._B = np.ascontiguousarray(4.0 * e_ij * s_ij ** 6)
        if self.lj_shift and self.cutoff is not None:
            self._LS = self._A / self.cutoff ** 12 - self._B / self.cutoff ** 6
        else:
            self._LS = np.zeros_like(self._A)
        # 1-4 exceptions
        p = np.array(sorted(pairs14), dtype=np.int64).reshape(-1, 2)
        sc, sl = self.scale14
        q = self.charges
        ti, tj = self._typ[p[:, 0]], self._typ[p[:, 1]]
        self._p14 = (p, sc * COULOMB_CONSTANT * q[p[:, 0]] * q[p[:, 1]],
                     sl * self._A[ti, tj], sl * self._B[ti, tj])
        # bonded arrays
        self._b = (np.array([b[:2] for b in self.bonds], dtype=np.int64).reshape(-1, 2),
                   np.array([b[2] for b in self.bonds], dtype=float),
                   np.array([b[3] for b in self.bonds], dtype=float))
        self._a = (np.array([a[:3] for a in self.angles], dtype=np.int64).reshape(-1, 3),
                   np.array([a[3] for a in self.angles], dtype=float),
                   np.array([a[4] for a in self.angles], dtype=float))

    @property
    def n_atoms(self) -> int:
        """Number of atoms the force field describes."""
        return int(self.charges.size)

    @property
    def self_energy(self) -> float:
        """DSF self term ``-[erfc(a rc)/(2 rc) + a/sqrt(pi)] k_e sum q_i^2``, eV (0 otherwise)."""
        return float(np.sum(self._self_energies()))

    def _self_energies(self) -> np.ndarray:
        if self.coulomb != "dsf":
            return np.zeros(self.n_atoms)
        a, rc = self.dsf_alpha, self.cutoff
        return -(math.erfc(a * rc) / (2 * rc) + a / math.sqrt(math.pi)) * COULOMB_CONSTANT * \
            self.charges ** 2

    def _cpar(self) -> tuple[int, np.ndarray]:
        rc = self.cutoff
        if rc is None:
            return _DIRECT, np.array([np.inf, 0.0, 0.0, 0.0, 0.0])
        if self.coulomb == "direct":
            return _SHIFTED, np.array([rc, 0.0, 1.0 / rc, 0.0, 0.0])
        a = self.dsf_alpha
        c2 = 2.0 * a / math.sqrt(math.pi)
        fsh = math.erfc(a * rc) / rc ** 2 + c2 * math.exp(-a * a * rc * rc) / rc
        return _DSF, np.array([rc, a, math.erfc(a * rc) / rc, fsh, c2])

    # ---- the QM/MM protocol -------------------------------------------------------------------
    def get_virtual_charges(self, atoms) -> np.ndarray:
        """Per-atom point charges, e (ASE ``EIQMMM`` protocol; no virtual sites)."""
        if len(atoms) != self.n_atoms:
            raise InputError("atoms", f"{len(atoms)} atoms",
                             f"the {self.n_atoms} atoms this force field describes")
        return self.charges.copy()

    def add_virtual_sites(self, positions):
        """Positions of real atoms and virtual sites: no virtual sites here, returned as is."""
        return positions

    def redistribute_forces(self, forces):
        """Forces on virtual sites moved to real atoms: no virtual sites here, returned as is."""
        return forces

    def subset(self, indices) -> "FixedChargeForceField":
        """The force field of a subsystem, for ``E_MM(QM region)`` / ``E_MM(environment)``.

        Parameters
        ----------
        indices : sequence of int
            Parent atoms of the subsystem (distinct), in the order the subsystem's atoms have.

        Returns
        -------
        FixedChargeForceField
            Same settings; charges and LJ of the chosen atoms; the bonds, angles, exclusions and
            1-4 exceptions whose atoms all lie in the subsystem (exclusions are kept as in the
            parent, even where the bond path that made them runs outside the subsystem, so that
            ``E(parent) = E(sub) + E(rest) + interactions``).  Its ``subset_report``
            (:class:`SubsetReport`) lists the bonded terms that crossed the cut and were dropped.
        """
        n = self.n_atoms
        try:
            idx = [_index(f"indices[{t}]", v, n) for t, v in enumerate(indices)]
        except TypeError:
            raise InputError("indices", indices, "a sequence of atom indices") from None
        if len(set(idx)) != len(idx):
            raise InputError("indices", list(indices), "distinct atom indices")
        new = {old: a for a, old in enumerate(idx)}
        def inside(term, k):
            return sum(x in new for x in term[:k])
        keep_b = [b for b in self.bonds if inside(b, 2) == 2]
        drop_b = tuple(b for b in self.bonds if inside(b, 2) == 1)
        keep_a = [a for a in self.angles if inside(a, 3) == 3]
        drop_a = tuple(a for a in self.angles if 0 < inside(a, 3) < 3)
        sel = np.array(idx, dtype=np.int64)
        sub = FixedChargeForceField(
            self.charges[sel], self.lj_epsilon[sel], self.lj_sigma[sel],
            bonds=[(new[i], new[j], k, r0) for i, j, k, r0 in keep_b],
            angles=[(new[i], new[j], new[k], kt, t0) for i, j, k, kt, t0 in keep_a],
            scale14=self.scale14, cutoff=self.cutoff, coulomb=self.coulomb,
            dsf_alpha=self.dsf_alpha, lj_shift=self.lj_shift, combining=self.combining,
            min_distance=self.min_distance, skin=self.skin, parallel=self.parallel)

        def mapped(pairs):
            return {(min(new[a], new[b]), max(new[a], new[b])) for a, b in pairs
                    if a in new and b in new}
        sub._set_topology(mapped(self.excluded_pairs), mapped(self.pairs14))
        sub.subset_report = SubsetReport(tuple(idx), drop_b, drop_a)
        return sub

    # ---- evaluation ---------------------------------------------------------------------------
    @property
    def neighbour_builds(self) -> int:
        """Neighbour-list builds so far."""
        return self._lists.builds

    def _check_geometry(self, cell, pbc) -> None:
        if not np.any(pbc):
            return
        if self.cutoff is None:
            raise InputError("cutoff", None, "a cutoff (Å) for a periodic system",
                             hint="plain Coulomb over all periodic images needs an Ewald sum; "
                                  "use cutoff=... with coulomb='dsf' or 'direct'")
        vol = abs(np.linalg.det(cell))
        for k in range(3):
            if pbc[k]:
                width = vol / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) \
                    if vol > 1e-12 else 0.0
                if self.cutoff >= 0.5 * width:
                    raise InputError("cutoff", self.cutoff,
                                     f"a cutoff below half the cell width along periodic "
                                     f"direction {k} ({0.5 * width:.4g} Å)",
                                     hint="minimum image: use a larger box or a smaller cutoff")

    def compute(self, positions, cell, pbc):
        """Energy, per-atom energies, forces and stress (or None) from plain arrays.

        Parameters
        ----------
        positions : array, shape (n, 3)
            Å.
        cell : array, shape (3, 3)
            Cell vectors as rows, Å.
        pbc : three bools
            Periodic directions.

        Returns
        -------
        energy : float
            eV.
        energies : ndarray, shape (n,)
            eV per atom.
        forces : ndarray, shape (n, 3)
            eV/Å.
        stress : ndarray, shape (6,), or None
            eV/Å³ (Voigt, ASE sign); ``None`` without a cell volume.
        """
        n = self.n_atoms
        pos = np.ascontiguousarray(validate.finite_array("positions", positions, (n, 3)))
        cel = np.ascontiguousarray(validate.finite_array("cell", cell, (3, 3)))
        pb = np.asarray(pbc, dtype=bool).reshape(-1)
        if pb.size == 1:
            pb = np.repeat(pb, 3)
        if pb.shape != (3,):
            raise InputError("pbc", pbc, "a bool or three bools")
        self._check_geometry(cel, pb)
        vol = abs(np.linalg.det(cel))
        mode, cpar = self._cpar()
        q, typ = self.charges, self._typ
        lo, hi, off, xj = self._x
        if self.cutoff is None:
            use_list = False
            lst = (np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int64),
                   np.zeros((0, 3)))
            delta = np.zeros((0, 3))
            rows = n
        else:
            use_list = True
            nl = self._lists.get(self.cutoff, self.skin, self.parallel, half=True)
            *lst, delta = nl.displaced(pos, cel, pb, cutoff=self.cutoff)
            if delta is None:
                delta = np.zeros((n, 3))
            rows = n
        if self.parallel and n > 1:
            nchunk = max(1, min(get_num_threads(), n))
            if use_list:
                offsets = lst[1]
                bounds = np.searchsorted(offsets, np.linspace(0, offsets[-1], nchunk + 1))
            else:   # equal numbers of pairs (i, j > i)
                cum = np.cumsum(np.arange(n - 1, -1, -1))
                bounds = np.searchsorted(cum, np.linspace(0, cum[-1], nchunk + 1))
            bounds[0], bounds[-1] = 0, rows
            bounds = np.maximum.accumulate(bounds).astype(np.int64)
            energies, forces, virial, best = _nonbonded_chunks(
                use_list, bounds, *lst, delta, pos, q, typ, self._A, self._B, self._LS,
                COULOMB_CONSTANT, mode, cpar, lo, hi, off, xj)
        else:
            energies, forces, virial, best = _nonbonded_serial(
                use_list, *lst, delta, pos, q, typ, self._A, self._B, self._LS,
                COULOMB_CONSTANT, mode, cpar, lo, hi, off, xj)
        if best[0] < self.min_distance ** 2 or best[0] < 1e-16:
            i, j = int(best[1]), int(best[2])
            raise InputError("positions", f"atoms {i} and {j} at distance "
                             f"{math.sqrt(best[0]):.3g} Å",
                             f"non-excluded atoms at least min_distance = "
                             f"{self.min_distance:g} Å apart",
                             hint="overlapping atoms; check the structure or the units")
        inv = np.linalg.inv(cel) if vol > 1e-12 else np.zeros((3, 3))
        (bi, bk, br0), (ai, ak, at0), (pi, pqq, pa, pbb) = self._b, self._a, self._p14
        rmin = _bonded(pos, cel, inv, pb, bi, bk, br0, ai, ak, at0, pi, pqq, pa, pbb, energies,
                       forces, virial)
        if rmin < 1e-8:
            raise InputError("positions", "two bonded atoms at the same position",
                             "distinct positions for atoms joined by a bond, angle or 1-4 term")
        energies = energies + self._self_energies()
        energy = float(np.sum(energies))
        stress = virial / vol if vol > 1e-12 else None
        return energy, energies, forces, stress

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Compute energy, per-atom energies, forces and (with a cell volume) stress."""
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        if len(a) != self.n_atoms:
            raise InputError("atoms", f"{len(a)} atoms",
                             f"the {self.n_atoms} atoms this force field describes")
        energy, energies, forces, stress = self.compute(a.positions, np.asarray(a.cell), a.pbc)
        store_results(self, energy, energies, forces, stress, properties)

    def todict(self) -> dict:
        return {"n_atoms": self.n_atoms, "cutoff": self.cutoff, "coulomb": self.coulomb,
                "dsf_alpha": self.dsf_alpha, "lj_shift": self.lj_shift,
                "scale14": list(self.scale14), "n_bonds": len(self.bonds),
                "n_angles": len(self.angles)}
