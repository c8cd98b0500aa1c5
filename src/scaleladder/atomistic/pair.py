"""Truncated pair potentials (Lennard-Jones, Morse): numba kernels behind ASE's ``Calculator``.

Both are single-species, central pair potentials truncated at a cutoff ``rc``::

    E = sum_{i<j, r_ij < rc} [phi(r_ij) - shift * phi(rc)]

    Lennard-Jones  phi(r) = 4 epsilon [(sigma/r)^12 - (sigma/r)^6]
    Morse          phi(r) = D0 [exp(-2 alpha (r - r0)) - 2 exp(-alpha (r - r0))]

With ``shift=True`` the pair energy is shifted to zero at ``rc`` (LAMMPS ``pair_modify shift
yes``; ASE's ``LennardJones(smooth=False)``); the forces are the same either way and jump to zero
at ``rc``.  Units are ASE's: eV, Å; stress in eV/Å³, Voigt order ``xx, yy, zz, yz, xz, xy``, ASE
sign (``stress = (1/V) dE/dε``, positive under tension).

Layout
------
* :class:`LennardJones`, :class:`Morse` -- ASE calculators (``energy``, ``free_energy``,
  ``energies``, ``forces``, ``stress``).
* :func:`pair_energy_forces_stress` -- plain-array entry point shared by both.
* :func:`lj_fcc_reference` -- lattice-sum fcc equilibrium (lattice constant, cohesive energy,
  elastic constants) of the truncated Lennard-Jones potential, independent of the calculator.

Neighbours come from the linked-cell machinery of :mod:`.neighbours` (periodic images generated
explicitly, so cells thinner than twice the cutoff work; triclinic cells; any mix of periodic and
open boundaries), in one of two ways, chosen by the calculator's ``skin``:

* ``skin > 0`` (default, for molecular dynamics): a persistent half Verlet list
  (:class:`.neighbours.NeighbourList` with ``half=True``) of radius ``rc + skin``, rebuilt only
  when an atom has moved more than ``skin / 2`` or the cell changed; :func:`_pair_half_serial`
  applies each listed bond to both atoms (Newton's third law).
* ``skin == 0``: the fused kernel (:func:`_pair_fused`) stores no list; it bins the atoms and
  images afresh (:func:`.neighbours._grid`, the stencil scan :func:`.neighbours._stencil_rows`)
  and evaluates each pair of real atoms once, pairs with a periodic image from the real end
  only.  For a single force call this is the fastest path (no list is written); along an MD
  trajectory the skinned list is faster (measured in ``benchmarks/bench_potentials.py``: the
  fused kernel scans ~5 times more candidates than there are pairs at every call).

Threaded paths (``parallel=True``) split the atoms (half list) or the bin columns (fused) in as
many chunks as threads, each with private force/energy/virial buffers summed at the end: one
parallel region, no atomics, no write conflicts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator, Parameters, all_changes
from ase.data import atomic_numbers, chemical_symbols
from numba import get_num_threads, int64, njit, prange, uint64

from ..core import validate
from ._calculator import store_results
from ..core.errors import ConvergenceError, InputError
from .neighbours import (_NDIV, _ZDIV, NeighbourList, _CalculatorList, _complete_cell, _grid,
                         _images, _stencil, _stencil_rows)

__all__ = ["LennardJones", "Morse", "lj_fcc_reference", "LJFccReference",
           "pair_energy_forces_stress"]

#: Kernel selector values.
_LJ = 0
_MORSE = 1

#: Default Verlet skin of the calculators, Å (measured: see ``benchmarks/bench_potentials.py``).
DEFAULT_PAIR_SKIN = 0.5

#: Default smallest allowed interatomic distance, as a fraction of sigma (LJ) or r0 (Morse):
#: closer pairs are treated as overlapping atoms (LJ: phi(0.25 sigma) ~ 7e7 epsilon).
_MIN_DISTANCE_FRACTION = 0.25


# --------------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------------

@njit(cache=True, fastmath=False, inline="always")
def _phi_dphi_over_r(kind, r2, prm):
    """Pair energy ``phi(r) - shift`` and ``phi'(r) / r`` at squared distance ``r2``.

    ``prm`` is ``[epsilon, sigma, rc, shift_energy]`` (LJ) or ``[D0, alpha, r0, rc,
    shift_energy]`` (Morse), see :func:`_kernel_parameters`.
    """
    if kind == _LJ:
        eps4 = 4.0 * prm[0]
        s2 = prm[1] * prm[1] / r2
        s6 = s2 * s2 * s2
        s12 = s6 * s6
        phi = eps4 * (s12 - s6) - prm[3]
        g = -6.0 * eps4 * (2.0 * s12 - s6) / r2
        return phi, g
    r = math.sqrt(r2)
    ex = math.exp(-prm[1] * (r - prm[2]))
    phi = prm[0] * ex * (ex - 2.0) - prm[4]
    g = -2.0 * prm[0] * prm[1] * ex * (ex - 1.0) / r
    return phi, g


@njit(cache=True, fastmath=False, inline="always")
def _pair_half_range(kind, m0, m1, order, offsets, nbr_j, nbr_d, delta, prm, rc2, F, E, vir,
                     best, c):
    """Atoms ``order[m0:m1]`` of a half list: each listed bond applied to both of its atoms.

    The bond vector of ``i -> j`` is ``nbr_d[t] + (delta[j] - delta[i])`` (the Verlet list's
    vectors at its build, moved by the displacements since: bitwise
    :meth:`.neighbours.NeighbourList.update`'s vectors, without writing them out).
    Accumulates into ``F`` (forces), ``E`` (half of each pair energy to each atom) and
    ``vir[c]`` (``sum phi'(r)/r d (x) d``, Voigt); bonds of an atom to its own images, listed in
    both directions, weigh 1/2.  ``best[c] = (r^2, i, j)`` of the closest bond seen; coincident
    atoms (``r^2 < 1e-16``) are recorded there and skipped.
    """
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
            if r2 >= rc2:
                continue
            if r2 < b2:
                b2 = r2
                bi = i
                bj = j
            if r2 < 1e-16:
                continue
            phi, g = _phi_dphi_over_r(kind, r2, prm)
            if j == i:
                g *= 0.5
                phi *= 0.5
            gdx = g * dx
            gdy = g * dy
            gdz = g * dz
            ei += 0.5 * phi
            E[j] += 0.5 * phi
            fx += gdx
            fy += gdy
            fz += gdz
            F[j, 0] -= gdx
            F[j, 1] -= gdy
            F[j, 2] -= gdz
            v0 += gdx * dx
            v1 += gdy * dy
            v2 += gdz * dz
            v3 += gdy * dz
            v4 += gdx * dz
            v5 += gdx * dy
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
def _pair_half_serial(order, offsets, nbr_j, nbr_d, delta, kind, prm, rc):
    """Energies, forces, virial and closest bond ``(r^2, i, j)`` from a half list, one thread."""
    n = order.size
    F = np.zeros((n, 3))
    E = np.zeros(n)
    vir = np.zeros((1, 6))
    best = np.empty((1, 3))
    best[0, 0] = np.inf
    best[0, 1] = -1.0
    best[0, 2] = -1.0
    _pair_half_range(kind, 0, n, order, offsets, nbr_j, nbr_d, delta, prm, rc * rc, F, E, vir,
                     best, 0)
    return E, F, vir[0], best[0]


@njit(cache=True, fastmath=False, parallel=True)
def _pair_half_parallel(order, offsets, nbr_j, nbr_d, delta, kind, prm, rc, bounds):
    """Threaded :func:`_pair_half_serial`: chunk ``c`` takes atoms ``order[bounds[c]:bounds[c +
    1]]`` into its own force/energy/virial buffers, summed at the end (no write conflicts).

    One parallel region only (every extra one is a thread barrier); the buffers are zeroed
    inside it and reduced serially (``O(n * chunks)``, negligible next to the pairs).
    """
    n = order.size
    nchunk = bounds.size - 1
    Ft = np.empty((nchunk, n, 3))
    Et = np.empty((nchunk, n))
    vt = np.empty((nchunk, 6))
    bt = np.empty((nchunk, 3))
    rc2 = rc * rc
    for c in prange(nchunk):
        Fc = Ft[c]
        Ec = Et[c]
        for i in range(n):
            Ec[i] = 0.0
            Fc[i, 0] = 0.0
            Fc[i, 1] = 0.0
            Fc[i, 2] = 0.0
        for k in range(6):
            vt[c, k] = 0.0
        bt[c, 0] = np.inf
        bt[c, 1] = -1.0
        bt[c, 2] = -1.0
        _pair_half_range(kind, bounds[c], bounds[c + 1], order, offsets, nbr_j, nbr_d, delta,
                         prm, rc2, Fc, Ec, vt, bt, c)
    F = Ft[0]
    E = Et[0]
    for c in range(1, nchunk):
        for i in range(n):
            E[i] += Et[c, i]
            F[i, 0] += Ft[c, i, 0]
            F[i, 1] += Ft[c, i, 1]
            F[i, 2] += Ft[c, i, 2]
    vir = np.empty(6)
    best = np.empty(3)
    for k in range(6):
        vir[k] = vt[0, k]
    for k in range(3):
        best[k] = bt[0, k]
    for c in range(1, nchunk):
        for k in range(6):
            vir[k] += vt[c, k]
        if bt[c, 0] < best[0]:
            for k in range(3):
                best[k] = bt[c, k]
    return E, F, vir, best


@njit(cache=True, fastmath=False, inline="always")
def _fused_columns(kind, col0, col1, nb, bin_start, xs, ys, zs, jsrt, img, lo2, iw2, sdx, sdy,
                   srz, prm, rc2, fx, fy, fz, es, r2s, rjs, vir, c):
    """The fused pair loop over bin columns ``col0:col1`` (see :func:`_pair_fused`).

    Accumulates into the sorted-position buffers ``fx, fy, fz`` (forces), ``es`` (energies),
    ``r2s, rjs`` (closest neighbour) and ``vir[c]``; returns 0 or ``1 + atom`` for the first atom
    met that coincides with another atom or image (then it stops).
    """
    ru0 = np.empty(sdx.size, dtype=np.int64)
    ru1 = np.empty(sdx.size, dtype=np.int64)
    cap = 1024
    buf = np.empty(cap, dtype=np.int64)
    v0 = 0.0
    v1 = 0.0
    v2 = 0.0
    v3 = 0.0
    v4 = 0.0
    v5 = 0.0
    status = 0
    for col in range(col0, col1):
        bx = col // nb[1]
        by = col - bx * nb[1]
        cbase = col * nb[2]
        for t in range(bin_start[cbase], bin_start[cbase + nb[2]]):
            if img[t]:
                continue
            xi = xs[t]
            yi = ys[t]
            zi = zs[t]
            nr, tot = _stencil_rows(bx, by, zi, sdx, sdy, srz, lo2, iw2, nb, bin_start, ru0,
                                    ru1)
            if tot + 1 > cap:
                cap = 2 * tot + 1
                buf = np.empty(cap, dtype=np.int64)
            # branch-free compaction: pairs within rc, real partners above t, all images
            tself = uint64(t)
            cu = uint64(0)
            for r in range(nr):
                for k in range(uint64(ru0[r]), uint64(ru1[r])):
                    dx = xs[k] - xi
                    dy = ys[k] - yi
                    dz = zs[k] - zi
                    r2 = dx * dx + dy * dy + dz * dz
                    buf[cu] = k
                    cu += uint64((r2 < rc2) & ((k > tself) | (img[k] != 0)))
            ei = 0.0
            gx = 0.0
            gy = 0.0
            gz = 0.0
            best = r2s[t]
            bj = rjs[t]
            ii = jsrt[t]
            for q in range(int64(cu)):
                u = buf[q]
                dx = xs[u] - xi
                dy = ys[u] - yi
                dz = zs[u] - zi
                r2 = dx * dx + dy * dy + dz * dz
                if r2 < 1e-16:
                    if status == 0:
                        status = ii + 1
                    continue
                phi, g = _phi_dphi_over_r(kind, r2, prm)
                if r2 < best:
                    best = r2
                    bj = jsrt[u]
                gdx = g * dx
                gdy = g * dy
                gdz = g * dz
                ei += phi
                gx += gdx
                gy += gdy
                gz += gdz
                if img[u]:
                    h = 0.5
                else:
                    h = 1.0
                    es[u] += 0.5 * phi
                    fx[u] -= gdx
                    fy[u] -= gdy
                    fz[u] -= gdz
                    if r2 < r2s[u]:
                        r2s[u] = r2
                        rjs[u] = ii
                v0 += h * gdx * dx
                v1 += h * gdy * dy
                v2 += h * gdz * dz
                v3 += h * gdy * dz
                v4 += h * gdx * dz
                v5 += h * gdx * dy
            if status != 0:
                return status
            es[t] += 0.5 * ei
            fx[t] += gx
            fy[t] += gy
            fz[t] += gz
            r2s[t] = best
            rjs[t] = bj
    vir[c, 0] += v0
    vir[c, 1] += v1
    vir[c, 2] += v2
    vir[c, 3] += v3
    vir[c, 4] += v4
    vir[c, 5] += v5
    return status


@njit(cache=True, fastmath=False, inline="always")
def _fused_outputs(n, jsrt, img, es, fx, fy, fz, r2s, rjs):
    """Per-atom arrays (real-atom index order) from the sorted-position buffers."""
    energies = np.zeros(n)
    F = np.zeros((n, 3))
    rmin2 = np.full(n, np.inf)
    rmin_j = np.full(n, -1, dtype=np.int64)
    for t in range(jsrt.size):
        if img[t]:
            continue
        i = jsrt[t]
        energies[i] = es[t]
        F[i, 0] = fx[t]
        F[i, 1] = fy[t]
        F[i, 2] = fz[t]
        rmin2[i] = r2s[t]
        rmin_j[i] = rjs[t]
    return energies, F, rmin2, rmin_j


@njit(cache=True, fastmath=False)
def _pair_fused(P, orig, n, kind, prm, rc, ndiv, zdiv):
    """Energies, forces, virial and closest neighbours without a stored neighbour list.

    The real atoms and images ``P`` (from :func:`.neighbours._images`) are binned and sorted as
    for the neighbour list (:func:`.neighbours._grid`); every real atom scans the same stencil
    slices (:func:`.neighbours._stencil_rows`).  A pair of two real atoms is evaluated once, by
    the atom of the lower sorted position, and applied to both (Newton's third law); a pair of a
    real atom and an image is evaluated by the real atom only and applied to it alone (half
    energy, its force, half virial), its mirror pair being seen from the other end.  The bond
    vectors are the same expressions ``P[u] - P[i]`` as in the neighbour list.

    Returns ``(energies, F, virial, rmin2, rmin_j, status)``: ``virial`` is the summed
    ``sum_pairs phi'(r)/r d (x) d`` (Voigt), ``status`` 0 or ``1 + atom`` for the first atom (in
    the neighbour list's order) that coincides with another atom or image (``r^2 < 1e-16``).
    """
    lo, w, nb, bin_start, xs, ys, zs, jsrt, rank, slack = _grid(P, orig, n, rc, ndiv, zdiv)
    sdx, sdy, srz = _stencil(w, rc, slack)
    ntot = xs.size
    img = np.empty(ntot, dtype=np.uint8)
    for t in range(ntot):
        img[t] = rank[t] < 0
    fx = np.zeros(ntot)
    fy = np.zeros(ntot)
    fz = np.zeros(ntot)
    es = np.zeros(ntot)
    r2s = np.full(ntot, np.inf)
    rjs = np.full(ntot, -1, dtype=np.int64)
    vir = np.zeros((1, 6))
    status = _fused_columns(kind, 0, nb[0] * nb[1], nb, bin_start, xs, ys, zs, jsrt, img, lo[2],
                            1.0 / w[2], sdx, sdy, srz, prm, rc * rc, fx, fy, fz, es, r2s, rjs,
                            vir, 0)
    if status != 0:
        return (np.empty(0), np.empty((0, 3)), vir[0], np.empty(0), np.empty(0, dtype=np.int64),
                status)
    energies, F, rmin2, rmin_j = _fused_outputs(n, jsrt, img, es, fx, fy, fz, r2s, rjs)
    return energies, F, vir[0], rmin2, rmin_j, status


@njit(cache=True, fastmath=False, parallel=True)
def _pair_fused_parallel(P, orig, n, kind, prm, rc, ndiv, zdiv, nchunk):
    """Threaded :func:`_pair_fused`: the bin columns split in ``nchunk`` ranges of about equal
    numbers of real atoms, each range with its own buffers (partners of a pair may lie in
    another range), summed at the end.  One parallel region."""
    lo, w, nb, bin_start, xs, ys, zs, jsrt, rank, slack = _grid(P, orig, n, rc, ndiv, zdiv)
    sdx, sdy, srz = _stencil(w, rc, slack)
    ntot = xs.size
    ncol = nb[0] * nb[1]
    img = np.empty(ntot, dtype=np.uint8)
    for t in range(ntot):
        img[t] = rank[t] < 0
    # column ranges with about n / nchunk real atoms each
    cb = np.empty(nchunk + 1, dtype=np.int64)
    cb[0] = 0
    seen = 0
    k = 1
    for col in range(ncol):
        base = col * nb[2]
        for t in range(bin_start[base], bin_start[base + nb[2]]):
            seen += 1 - img[t]
        while k < nchunk and seen * nchunk >= k * n:
            cb[k] = col + 1
            k += 1
    while k <= nchunk:
        cb[k] = ncol
        k += 1
    bx = np.empty((nchunk, 4, ntot))
    r2t = np.empty((nchunk, ntot))
    rjt = np.empty((nchunk, ntot), dtype=np.int64)
    vir = np.empty((nchunk, 6))
    st = np.empty(nchunk, dtype=np.int64)
    iw2 = 1.0 / w[2]
    rc2 = rc * rc
    for c in prange(nchunk):
        b = bx[c]
        for t in range(ntot):
            b[0, t] = 0.0
            b[1, t] = 0.0
            b[2, t] = 0.0
            b[3, t] = 0.0
            r2t[c, t] = np.inf
            rjt[c, t] = -1
        for q in range(6):
            vir[c, q] = 0.0
        st[c] = _fused_columns(kind, cb[c], cb[c + 1], nb, bin_start, xs, ys, zs, jsrt, img,
                               lo[2], iw2, sdx, sdy, srz, prm, rc2, b[0], b[1], b[2], b[3],
                               r2t[c], rjt[c], vir, c)
    status = 0
    for c in range(nchunk):
        if st[c] != 0:
            status = st[c]
            break
    virial = np.zeros(6)
    if status != 0:
        return (np.empty(0), np.empty((0, 3)), virial, np.empty(0), np.empty(0, dtype=np.int64),
                status)
    fx = bx[0, 0]
    fy = bx[0, 1]
    fz = bx[0, 2]
    es = bx[0, 3]
    r2s = r2t[0]
    rjs = rjt[0]
    for c in range(1, nchunk):
        for t in range(ntot):
            fx[t] += bx[c, 0, t]
            fy[t] += bx[c, 1, t]
            fz[t] += bx[c, 2, t]
            es[t] += bx[c, 3, t]
            if r2t[c, t] < r2s[t]:
                r2s[t] = r2t[c, t]
                rjs[t] = rjt[c, t]
    for c in range(nchunk):
        for q in range(6):
            virial[q] += vir[c, q]
    energies, F, rmin2, rmin_j = _fused_outputs(n, jsrt, img, es, fx, fy, fz, r2s, rjs)
    return energies, F, virial, rmin2, rmin_j, status


# --------------------------------------------------------------------------------------------
# pair functions in plain numpy (reference lattice sums, shift values)
# --------------------------------------------------------------------------------------------

def _lj_phi(r, epsilon, sigma):
    s6 = (sigma / r) ** 6
    return 4.0 * epsilon * (s6 * s6 - s6)


def _lj_derivatives(r, epsilon, sigma):
    """``phi, phi', phi''`` of the (unshifted) Lennard-Jones potential."""
    s6 = (sigma / r) ** 6
    s12 = s6 * s6
    phi = 4.0 * epsilon * (s12 - s6)
    d1 = 4.0 * epsilon * (-12.0 * s12 + 6.0 * s6) / r
    d2 = 4.0 * epsilon * (156.0 * s12 - 42.0 * s6) / (r * r)
    return phi, d1, d2


def _morse_phi(r, D0, alpha, r0):
    ex = np.exp(-alpha * (r - r0))
    return D0 * ex * (ex - 2.0)


def _morse_derivatives(r, D0, alpha, r0):
    """``phi, phi', phi''`` of the (unshifted) Morse potential."""
    ex = np.exp(-alpha * (r - r0))
    return D0 * ex * (ex - 2.0), 2.0 * alpha * D0 * ex * (1.0 - ex), \
        2.0 * alpha * alpha * D0 * ex * (2.0 * ex - 1.0)


def _kernel_parameters(kind: int, p: dict) -> tuple[np.ndarray, float]:
    """``(prm, rc)`` for the kernel from validated parameters."""
    rc = p["rc"]
    if kind == _LJ:
        shift = _lj_phi(rc, p["epsilon"], p["sigma"]) if p["shift"] else 0.0
        prm = np.array([p["epsilon"], p["sigma"], rc, shift])
    else:
        shift = _morse_phi(rc, p["D0"], p["alpha"], p["r0"]) if p["shift"] else 0.0
        prm = np.array([p["D0"], p["alpha"], p["r0"], rc, float(shift)])
    return prm, rc


# --------------------------------------------------------------------------------------------
# plain-array driver
# --------------------------------------------------------------------------------------------

def _coincident_partner(i: int, positions: np.ndarray, cell: np.ndarray,
                        pbc: np.ndarray) -> int:
    """An atom on atom ``i`` (within 1e-7 Å, modulo periodic translations); -1 if none."""
    full = _complete_cell(cell, pbc)
    inv = np.linalg.inv(full)
    d = positions - positions[i]
    s = d @ inv
    s[:, pbc] -= np.round(s[:, pbc])
    dist = np.linalg.norm(s @ full, axis=1)
    dist[i] = np.inf
    j = int(np.argmin(dist)) if len(dist) > 1 else -1
    return j if j >= 0 and dist[j] < 1e-7 else -1


def _overlap_error(i: int, j: int, r: float, rmin: float, what: str) -> InputError:
    pair = f"atoms {i} and {j}" if i != j else f"atom {i} and its own periodic image"
    return InputError("positions", f"{pair} at distance {r:.3g} Å",
                      f"interatomic distances >= {rmin:.3g} Å ({what})",
                      hint="overlapping atoms; check the structure (duplicated atoms, wrong "
                           "units or a collapsed cell)")


def _coincidence_error(i: int, pos, cel, pb, min_distance: float) -> InputError:
    j = _coincident_partner(i, pos, cel, pb)
    return _overlap_error(i, j if j >= 0 else i, 0.0, max(min_distance, 1e-8),
                          "no two atoms closer than 1e-8 Å")


def pair_energy_forces_stress(kind: str, params: dict, numbers, positions, cell, pbc, *,
                              species: str | None = None, min_distance: float = 0.0,
                              parallel: bool = False, neighbours: NeighbourList | None = None):
    """Pair-potential energy, per-atom energies, forces and stress from plain arrays.

    Parameters
    ----------
    kind : {"lj", "morse"}
        Which pair function.
    params : dict
        Validated parameters (as held by :class:`LennardJones` / :class:`Morse` ``.parameters``):
        ``epsilon, sigma`` (LJ) or ``D0, alpha, r0`` (Morse), plus ``rc`` (Å) and ``shift``.
    numbers : array of int, shape (n,), or None
        Atomic numbers (checked against ``species`` when that is given).
    positions : array, shape (n, 3)
        Cartesian positions, Å.
    cell : array, shape (3, 3)
        Cell vectors as rows, Å (rows along open directions may be zero).
    pbc : bool or three bools
        Periodic directions.
    species : str, optional
        The chemical symbol every atom must have; ``None`` accepts any element.
    min_distance : float
        Smallest allowed interatomic distance, Å; closer pairs raise ``InputError``.
    parallel : bool
        Use the threaded (numba ``prange``) kernels: the atoms split in as many chunks as
        threads, each chunk with its own force/energy/virial buffers, summed at the end.
    neighbours : NeighbourList, optional
        A persistent Verlet list built with ``half=True`` (its skin lets molecular dynamics
        reuse it between steps; the kernel applies ``rc`` itself).  ``None``: the fused kernel
        (no stored list; binned afresh, each pair of real atoms evaluated once).

    Returns
    -------
    energy : float
        eV.
    energies : ndarray, shape (n,)
        eV per atom (half of each pair); they sum to ``energy``.
    forces : ndarray, shape (n, 3)
        eV/Å.
    stress : ndarray, shape (6,), or None
        Voigt ``xx, yy, zz, yz, xz, xy``, eV/Å³, ASE sign; ``None`` when the cell has zero
        volume (an open cluster without a box).

    Raises
    ------
    InputError
        On malformed arrays, atoms of the wrong species, or two atoms closer than
        ``max(min_distance, 1e-8 Å)`` (the error names the pair).
    """
    kind_id = {"lj": _LJ, "morse": _MORSE}.get(kind)
    if kind_id is None:
        raise InputError("kind", kind, "'lj' or 'morse'")
    pos = np.ascontiguousarray(validate.finite_array("positions", positions, (None, 3)),
                               dtype=np.float64)
    n = len(pos)
    cel = np.ascontiguousarray(validate.finite_array("cell", cell, (3, 3)), dtype=np.float64)
    pb = np.asarray(pbc, dtype=bool)
    if pb.shape == ():
        pb = np.array([bool(pb)] * 3)
    if pb.shape != (3,):
        raise InputError("pbc", pbc, "a bool or three bools")
    if species is not None and numbers is not None:
        nums = np.asarray(numbers)
        if nums.shape != (n,):
            raise InputError("numbers", f"array of shape {nums.shape}", f"shape ({n},)")
        bad = nums != atomic_numbers[species]
        if np.any(bad):
            k = int(np.argmax(bad))
            z = int(nums[k])
            sym = chemical_symbols[z] if 0 <= z < len(chemical_symbols) else str(z)
            raise InputError(f"atoms.symbols[{k}]", sym, f"only {species!r} (this calculator "
                             "was made for that single species; species=None accepts any)")
    vol = abs(np.linalg.det(cel))
    if n == 0:
        return 0.0, np.zeros(0), np.zeros((0, 3)), (np.zeros(6) if vol > 1e-12 else None)
    prm, rc = _kernel_parameters(kind_id, params)
    if neighbours is None:
        # fused kernel: no stored list, each pair of real atoms evaluated once
        P, orig = _images(pos, cel, pb, rc)
        if parallel:
            energies, forces, virial, rmin2, rmin_j, status = _pair_fused_parallel(
                P, orig, n, kind_id, prm, float(rc), _NDIV, _ZDIV,
                max(1, min(get_num_threads(), n)))
        else:
            energies, forces, virial, rmin2, rmin_j, status = _pair_fused(
                P, orig, n, kind_id, prm, float(rc), _NDIV, _ZDIV)
        if status:
            i = status - 1
            exc = InputError("positions", f"atom {i} at {pos[i].tolist()}",
                             "atoms at distinct positions (no two atoms, nor an atom and a "
                             "periodic image of itself, closer than 1e-8 Å)")
            raise _coincidence_error(i, pos, cel, pb, min_distance) from exc
        i = int(np.argmin(rmin2))
        best = (float(rmin2[i]), i, int(rmin_j[i]))
    else:
        if not isinstance(neighbours, NeighbourList) or not neighbours.half:
            raise InputError("neighbours", type(neighbours).__name__,
                             "a NeighbourList(..., half=True) or None")
        try:
            *lst, delta = neighbours.displaced(pos, cel, pb, cutoff=rc)
            if delta is None:
                delta = np.zeros((n, 3))
        except InputError as exc:
            if exc.field != "positions" or not str(exc.value).startswith("atom "):
                raise
            raise _coincidence_error(int(str(exc.value).split()[1]), pos, cel, pb,
                                     min_distance) from exc
        if parallel:
            nchunk = max(1, min(get_num_threads(), n))
            offsets = lst[1]
            bounds = np.searchsorted(offsets, np.linspace(0, offsets[-1], nchunk + 1))
            bounds[0], bounds[-1] = 0, n
            energies, forces, virial, b = _pair_half_parallel(*lst, delta, kind_id, prm, rc,
                                                              np.maximum.accumulate(bounds))
        else:
            energies, forces, virial, b = _pair_half_serial(*lst, delta, kind_id, prm, rc)
        best = (float(b[0]), int(b[1]), int(b[2]))
        if best[0] < 1e-16:
            exc = InputError("positions", f"atom {best[1]} at {pos[best[1]].tolist()}",
                             "atoms at distinct positions (closer than 1e-8 Å)")
            raise _coincidence_error(best[1], pos, cel, pb, min_distance) from exc
    if min_distance > 0.0 and best[0] < min_distance * min_distance:
        raise _overlap_error(best[1], best[2], math.sqrt(best[0]), min_distance, "min_distance")
    energy = float(np.sum(energies))
    stress = virial / vol if vol > 1e-12 else None
    return energy, energies, forces, stress


# --------------------------------------------------------------------------------------------
# ASE calculators
# --------------------------------------------------------------------------------------------

def _check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(field, value, "True or False")
    return bool(value)


def _check_species(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in atomic_numbers or value == "X":
        raise InputError("species", value, "None (any element) or a chemical symbol such as 'Ar'")
    return value


class _PairCalculator(Calculator):
    """Shared machinery of :class:`LennardJones` and :class:`Morse`."""

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]
    nolabel = True
    _kind = ""
    _names: tuple[str, ...] = ()

    _common = ("rc", "shift", "species", "min_distance", "parallel", "skin")

    def __init__(self, **kwargs):
        own = {k: kwargs.pop(k) for k in list(kwargs) if k in self._names + self._common}
        super().__init__(**kwargs)
        self.parameters = Parameters(self._validated(own))
        self._lists = _CalculatorList()

    # subclasses: own parameters -> validated dict (with rc filled in)
    def _validated(self, p: dict) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _validated_common(self, p: dict, out: dict, length: float) -> dict:
        out["shift"] = _check_bool("shift", p.get("shift", True))
        out["species"] = _check_species(p.get("species"))
        out["parallel"] = _check_bool("parallel", p.get("parallel", False))
        sk = p.get("skin")
        out["skin"] = DEFAULT_PAIR_SKIN if sk is None else validate.nonnegative("skin", sk)
        md = p.get("min_distance")
        out["min_distance"] = (_MIN_DISTANCE_FRACTION * length if md is None
                               else validate.nonnegative("min_distance", md))
        return out

    @property
    def cutoff(self) -> float:
        """Cutoff radius ``rc``, Å."""
        return float(self.parameters["rc"])

    def set(self, **kwargs):
        """Change parameters (validated); results are discarded if anything changed."""
        current = getattr(self, "parameters", None)
        if not current or "rc" not in current:     # called from Calculator.__init__
            return super().set(**kwargs)
        allowed = self._names + self._common
        unknown = [k for k in kwargs if k not in allowed]
        if unknown:
            raise InputError(unknown[0], kwargs[unknown[0]], "one of " + ", ".join(allowed))
        new = dict(self.parameters)
        new.update(kwargs)
        p = self._validated(new)
        changed = {k: v for k, v in p.items() if self.parameters.get(k) != v}
        self.parameters = Parameters(p)
        if changed:
            self.reset()
        return changed

    @property
    def neighbour_builds(self) -> int:
        """How many neighbour searches this calculator has made (list builds, or fused-kernel
        binnings when ``skin == 0``)."""
        return self._lists.builds

    def _neighbours(self) -> NeighbourList | None:
        """The persistent half Verlet list, or ``None`` for the fused kernel (skin 0)."""
        p = self.parameters
        if p["skin"] == 0.0:
            self._lists.count_build()
            return None
        return self._lists.get(p["rc"], p["skin"], p["parallel"], half=True)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Compute energy, per-atom energies, forces and (for a cell of non-zero volume) stress."""
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        p = self.parameters
        energy, energies, forces, stress = pair_energy_forces_stress(
            self._kind, p, a.numbers, a.positions, np.asarray(a.cell), a.pbc,
            species=p["species"], min_distance=p["min_distance"], parallel=p["parallel"],
            neighbours=self._neighbours())
        store_results(self, energy, energies, forces, stress, properties)

    def todict(self) -> dict:
        return dict(self.parameters)

    def pair(self, r) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``φ(r), φ'(r), φ''(r)`` of this calculator's pair function (eV, eV/Å, eV/Å²) at the
        distances ``r`` (Å): truncated at ``rc`` (zero beyond) and shifted as the calculator is —
        the same function its kernels sum, for lattice sums (Cauchy–Born) and chain models."""
        r = np.asarray(r, dtype=float)
        p = self.parameters
        if self._kind == "lj":
            args = (p["epsilon"], p["sigma"])
            f = _lj_derivatives
        else:
            args = (p["D0"], p["alpha"], p["r0"])
            f = _morse_derivatives
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            phi, d1, d2 = f(r, *args)
            shift = f(np.array(p["rc"]), *args)[0] if p["shift"] else 0.0
        inside = r < p["rc"]
        return (np.where(inside, phi - shift, 0.0), np.where(inside, d1, 0.0),
                np.where(inside, d2, 0.0))


class LennardJones(_PairCalculator):
    """Truncated (optionally shifted) Lennard-Jones potential as an ASE calculator (numba).

    ``phi(r) = 4 epsilon [(sigma/r)^12 - (sigma/r)^6] - shift * phi(rc)`` for ``r < rc``.

    Parameters
    ----------
    epsilon : float
        Well depth, eV (> 0).
    sigma : float
        Length scale, Å (> 0); the pair minimum is at ``2^(1/6) sigma``.
    rc : float, optional
        Cutoff, Å (>= sigma); default ``3 sigma`` (ASE's default).
    shift : bool
        Shift the pair energy to zero at ``rc`` (default; LAMMPS ``pair_modify shift yes``, ASE
        ``LennardJones(smooth=False)``).  Forces and stress do not depend on it.
    species : str, optional
        Chemical symbol every atom must have; ``None`` (default) accepts any element.
    min_distance : float, optional
        Pairs closer than this (Å) raise ``InputError`` naming the pair; default
        ``0.25 sigma`` (``phi ~ 7e7 epsilon`` there), ``0`` checks only for coincident atoms
        (1e-8 Å).
    parallel : bool
        Use the threaded numba kernels (threads: ``numba.set_num_threads``).
    skin : float, optional
        Verlet skin, Å (>= 0; default :data:`DEFAULT_PAIR_SKIN`): the calculator keeps a half
        neighbour list of radius ``rc + skin`` and rebuilds it only when an atom has moved more
        than ``skin / 2`` or the cell, periodicity or number of atoms changed, so molecular
        dynamics does not rebuild it every step.  ``0``: the serial path bins afresh every call
        (fused kernel, fastest for single force calls).  ``neighbour_builds`` counts the builds.
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator`.

    Notes
    -----
    Properties: ``energy``, ``free_energy`` (eV), ``energies`` (eV per atom, half of each pair),
    ``forces`` (eV/Å), ``stress`` (eV/Å³, Voigt ``xx, yy, zz, yz, xz, xy``, ASE sign).  Stress
    needs a cell of non-zero volume; for an open cluster it raises
    :class:`~scaleladder.core.errors.PropertyNotImplementedError`.

    Examples
    --------
    >>> from ase.build import bulk
    >>> atoms = bulk("Ar", "fcc", a=5.26)
    >>> atoms.calc = LennardJones(epsilon=0.0104, sigma=3.40, rc=8.5)
    >>> round(atoms.get_potential_energy(), 4)
    -0.0776
    """

    _kind = "lj"
    _names = ("epsilon", "sigma")

    def __init__(self, epsilon: float, sigma: float, rc: float | None = None, shift: bool = True,
                 species: str | None = None, min_distance: float | None = None,
                 parallel: bool = False, skin: float | None = None, **kwargs):
        super().__init__(epsilon=epsilon, sigma=sigma, rc=rc, shift=shift, species=species,
                         min_distance=min_distance, parallel=parallel, skin=skin, **kwargs)

    def _validated(self, p: dict) -> dict:
        eps = validate.positive("epsilon", p.get("epsilon"))
        sig = validate.positive("sigma", p.get("sigma"))
        rc = 3.0 * sig if p.get("rc") is None else validate.positive("rc", p.get("rc"))
        if rc < sig:
            raise InputError("rc", p.get("rc"), f"a cutoff >= sigma = {sig!r} Å",
                             hint="the Lennard-Jones attraction starts beyond sigma")
        return self._validated_common(p, {"epsilon": eps, "sigma": sig, "rc": rc}, sig)


class Morse(_PairCalculator):
    """Truncated (optionally shifted) Morse potential as an ASE calculator (numba).

    ``phi(r) = D0 [exp(-2 alpha (r - r0)) - 2 exp(-alpha (r - r0))] - shift * phi(rc)`` for
    ``r < rc``; the pair minimum is ``-D0`` at ``r0``, with curvature ``2 D0 alpha^2``.

    Parameters
    ----------
    D0 : float
        Well depth, eV (> 0).
    alpha : float
        Inverse width, 1/Å (> 0).  (ASE's ``MorsePotential`` uses ``rho0 = alpha * r0``.)
    r0 : float
        Equilibrium pair distance, Å (> 0).
    rc : float, optional
        Cutoff, Å (> r0); default ``r0 + 8 / alpha`` (pair tail ``~ 2 exp(-8) D0``).
    shift : bool
        Shift the pair energy to zero at ``rc`` (default; LAMMPS ``pair_modify shift yes``).
    species : str, optional
        Chemical symbol every atom must have; ``None`` (default) accepts any element.
    min_distance : float, optional
        Pairs closer than this (Å) raise ``InputError`` naming the pair; default ``0.25 r0``,
        ``0`` checks only for coincident atoms (1e-8 Å).
    parallel : bool
        Use the threaded numba kernels.
    skin : float, optional
        Verlet skin, Å (see :class:`LennardJones`).
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator`.

    Notes
    -----
    Same properties and conventions as :class:`LennardJones`.
    """

    _kind = "morse"
    _names = ("D0", "alpha", "r0")

    def __init__(self, D0: float, alpha: float, r0: float, rc: float | None = None,
                 shift: bool = True, species: str | None = None,
                 min_distance: float | None = None, parallel: bool = False,
                 skin: float | None = None, **kwargs):
        super().__init__(D0=D0, alpha=alpha, r0=r0, rc=rc, shift=shift, species=species,
                         min_distance=min_distance, parallel=parallel, skin=skin, **kwargs)

    def _validated(self, p: dict) -> dict:
        D0 = validate.positive("D0", p.get("D0"))
        alpha = validate.positive("alpha", p.get("alpha"))
        r0 = validate.positive("r0", p.get("r0"))
        rc = r0 + 8.0 / alpha if p.get("rc") is None else validate.positive("rc", p.get("rc"))
        if rc <= r0:
            raise InputError("rc", p.get("rc"), f"a cutoff > r0 = {r0!r} Å",
                             hint="the Morse minimum must lie inside the cutoff")
        return self._validated_common(p, {"D0": D0, "alpha": alpha, "r0": r0, "rc": rc}, r0)


# --------------------------------------------------------------------------------------------
# lattice-sum reference for the fcc Lennard-Jones crystal
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LJFccReference:
    """Static (0 K, clamped lattice) fcc Lennard-Jones crystal from lattice sums.

    Attributes
    ----------
    a0 : float
        Zero-pressure cubic lattice constant, Å.
    energy_per_atom : float
        Energy per atom at ``a0``, eV (negative; the same truncation and shift as the calculator).
    C11, C12, C44 : float
        Elastic constants at ``a0``, eV/Å³ (``C12 == C44``: Cauchy relation of a central pair
        potential in a Bravais lattice at zero stress).
    epsilon, sigma, rc : float
        The potential (eV, Å, Å).
    shift : bool
        Whether the pair energy was shifted to zero at ``rc``.
    n_neighbours : int
        Number of lattice sites within ``rc`` of an atom at ``a0``.
    """

    a0: float
    energy_per_atom: float
    C11: float
    C12: float
    C44: float
    epsilon: float
    sigma: float
    rc: float
    shift: bool
    n_neighbours: int

    @property
    def cohesive_energy(self) -> float:
        """Cohesive energy ``-energy_per_atom``, eV/atom (positive for a bound crystal)."""
        return -self.energy_per_atom

    @property
    def bulk_modulus(self) -> float:
        """``(C11 + 2 C12) / 3``, eV/Å³."""
        return (self.C11 + 2.0 * self.C12) / 3.0

    @property
    def nearest_neighbour_distance(self) -> float:
        """``a0 / sqrt(2)``, Å."""
        return self.a0 / math.sqrt(2.0)

    @property
    def voigt(self) -> np.ndarray:
        """The 6x6 cubic elastic matrix, eV/Å³ (Voigt order ``xx, yy, zz, yz, xz, xy``)."""
        C = np.zeros((6, 6))
        C[:3, :3] = self.C12
        np.fill_diagonal(C[:3, :3], self.C11)
        C[3, 3] = C[4, 4] = C[5, 5] = self.C44
        return C


def _fcc_vectors(nmax: int) -> np.ndarray:
    """fcc lattice vectors in units of ``a/2``: integer triples with even sum, origin excluded."""
    g = np.arange(-nmax, nmax + 1)
    ijk = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
    keep = (ijk.sum(axis=1) % 2 == 0) & np.any(ijk != 0, axis=1)
    return ijk[keep].astype(np.float64)


def lj_fcc_reference(epsilon: float, sigma: float, rc: float,
                     shift: bool = True) -> LJFccReference:
    """Zero-pressure fcc lattice constant, energy and elastic constants of truncated LJ.

    Independent of the calculator (no neighbour list, no numba): the sums run over the fcc
    lattice vectors ``R`` with ``|R| < rc``, the convention of :class:`LennardJones` with the
    same ``rc`` and ``shift``.

    * Energy per atom ``E(a) = 1/2 sum_R [phi(R) - shift * phi(rc)]``.
    * ``a0``: the root of the virial ``sum_R phi'(R) R = 0`` (zero pressure), found by scanning
      outwards from ``a = 0.9 sqrt(2) 2^(1/6) sigma`` for the first sign change from compressed to
      tensile (a true root, not a jump where a shell crosses ``rc``), then Brent's method.
    * Elastic constants (Lagrangian strain ``eta``; at zero stress these are the stress-strain
      coefficients; no internal relaxation in a Bravais lattice)::

          C_ijkl = 1/(2 V0) sum_R [phi''(R) - phi'(R)/R] R_i R_j R_k R_l / R^2,   V0 = a0^3 / 4

      so ``C11 = C_xxxx`` and ``C12 = C_xxyy = C44 = C_xyxy`` (Cauchy relation).

    Parameters
    ----------
    epsilon : float
        eV (> 0).
    sigma : float
        Å (> 0).
    rc : float
        Cutoff, Å (>= sigma).
    shift : bool
        Shift the pair energy to zero at ``rc`` (affects only the energy).

    Returns
    -------
    LJFccReference

    Raises
    ------
    InputError
        On non-positive parameters or ``rc < sigma``.
    ConvergenceError
        When the truncated potential has no zero-pressure fcc lattice (``rc`` too short to
        include the attraction).

    Notes
    -----
    For ``rc -> infinity`` the sums converge to the classic Lennard-Jones & Ingham values
    ``A12 = 12.13188``, ``A6 = 14.45392``: nearest-neighbour distance ``(2 A12/A6)^(1/6) sigma =
    1.09017 sigma`` (``a0 = 1.54174 sigma``), energy ``-A6^2 / (2 A12) epsilon = -8.6102 epsilon``
    per atom; the tail beyond ``rc`` decays as ``rc^-3``.
    """
    from scipy.optimize import brentq

    eps = validate.positive("epsilon", epsilon)
    sig = validate.positive("sigma", sigma)
    rcut = validate.positive("rc", rc)
    if rcut < sig:
        raise InputError("rc", rc, f"a cutoff >= sigma = {sig!r} Å")
    shift = _check_bool("shift", shift)
    a_lo = 0.9 * math.sqrt(2.0) * 2.0 ** (1.0 / 6.0) * sig
    a_hi = math.sqrt(2.0) * rcut        # beyond: not even nearest neighbours interact
    nmax = int(math.ceil(2.0 * rcut / min(a_lo, a_hi))) + 1
    U = _fcc_vectors(nmax)               # units of a/2
    u = np.linalg.norm(U, axis=1)

    def inside(a):
        return 0.5 * a * u < rcut

    def virial(a):
        m = inside(a)
        R = 0.5 * a * u[m]
        _, d1, _ = _lj_derivatives(R, eps, sig)
        return float(np.sum(d1 * R))

    if a_hi <= a_lo:
        raise ConvergenceError("no zero-pressure fcc Lennard-Jones lattice",
                               configuration=f"fcc, rc={rcut!r} Å, sigma={sig!r} Å",
                               suggestion="use rc of at least about 1.2 sigma")
    grid = np.linspace(a_lo, a_hi * (1.0 - 1e-12), 4001)
    vals = np.array([virial(a) for a in grid])
    a0 = None
    for k in range(len(grid) - 1):
        if vals[k] < 0.0 <= vals[k + 1]:
            root = brentq(virial, grid[k], grid[k + 1], xtol=1e-15 * grid[k], rtol=1e-15,
                          maxiter=200)
            scale = float(np.sum(np.abs(_lj_derivatives(0.5 * root * u[inside(root)], eps,
                                                        sig)[1] * 0.5 * root * u[inside(root)])))
            if abs(virial(root)) <= 1e-9 * max(scale, 1e-300):
                a0 = root
                break
    if a0 is None:
        raise ConvergenceError("no zero-pressure fcc Lennard-Jones lattice below the cutoff",
                               configuration=f"fcc, rc={rcut!r} Å, sigma={sig!r} Å",
                               settings={"a_range": (a_lo, a_hi)},
                               suggestion="use a longer cutoff (rc >= 1.2 sigma)")
    m = inside(a0)
    Rv = 0.5 * a0 * U[m]
    R = 0.5 * a0 * u[m]
    phi, d1, d2 = _lj_derivatives(R, eps, sig)
    e_shift = _lj_phi(rcut, eps, sig) if shift else 0.0
    energy = 0.5 * float(np.sum(phi - e_shift))
    w = (d2 - d1 / R) / (R * R)
    V0 = a0 ** 3 / 4.0
    C11 = float(np.sum(w * Rv[:, 0] ** 4)) / (2.0 * V0)
    C12 = float(np.sum(w * Rv[:, 0] ** 2 * Rv[:, 1] ** 2)) / (2.0 * V0)
    return LJFccReference(a0=float(a0), energy_per_atom=energy, C11=C11, C12=C12, C44=C12,
                          epsilon=eps, sigma=sig, rc=rcut, shift=shift,
                          n_neighbours=int(np.count_nonzero(m)))
