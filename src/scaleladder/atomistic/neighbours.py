"""Linked-cell neighbour lists shared by the atomistic calculators (numba kernels).

Every calculator of :mod:`scaleladder.atomistic` (Stillinger-Weber, Tersoff, Lennard-Jones, Morse,
EAM) consumes the same *full* neighbour list, in CSR form::

    order, offsets, nbr_j, nbr_d = _neighbour_list(positions, cell, pbc, rc, parallel)

The neighbours of atom ``order[m]`` are ``nbr_j[offsets[m]:offsets[m + 1]]`` (real-atom indices,
an atom may appear several times through different periodic images, and may be its own neighbour
through an image) at bond vectors ``nbr_d[...] = r_j + shift - r_i`` with ``|d| < rc``.  Every
pair appears in both directions.  Atoms come in spatial (bin) order, for memory locality; no
caller relies on the order of the atoms nor on the order inside an atom's segment.

Algorithm
---------
1. :func:`_make_images` wraps the atoms into the cell along periodic directions and appends
   explicit periodic images out to the cutoff (as many as needed, so cells thinner than the
   cutoff work); general triclinic cells and any mix of periodic/open directions.
2. :func:`_grid` bins the atoms and their images on the Cartesian bounding box: x and y bins at
   least ``rc / ndiv`` wide, z bins ``rc / zdiv`` (finer); a counting sort puts the atoms in bin
   order, bins adjacent along z being contiguous, with the coordinates as three contiguous
   arrays.  A precomputed stencil lists the (x, y) bin columns within reach of a bin together
   with the largest z separation a neighbour in that column can have; per atom, the z range of
   each column is trimmed to ``z_i +- rz``, one contiguous slice of the sorted arrays.
3. Serial: one branch-free pass per atom compacts the sorted positions of its neighbours into a
   growing index buffer, then exactly sized outputs are written (no over-allocated views, no
   copies when a caller caches them).  Threaded: a branch-free counting pass and a fill pass,
   both ``prange`` over bin columns; the output is the same as the serial one.

Displacement vectors are computed as ``P[u] - P[i]`` from the same wrapped/imaged coordinates as
before the move to this module, so they are bitwise the same vectors; only the order of the
atoms and of the neighbours inside a segment changed (results of the kernels agree to round-off).

:class:`NeighbourList` adds a Verlet skin on top, for molecular dynamics: every calculator of
:mod:`scaleladder.atomistic` keeps one between calls (its ``skin`` parameter; ``neighbour_builds``
counts the builds), full for the many-body potentials, half (each bond once,
:func:`_half_of_full`) for the pair potentials.  The per-atom stencil scan
(:func:`_stencil_rows`) is shared with the fused pair kernel of :mod:`.pair`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import int64, njit, prange, uint64

from ..core.errors import InputError

__all__ = ["NeighbourList", "neighbour_list"]

#: x/y bins are at least ``rc / _NDIV`` wide, z bins ``rc / _ZDIV`` (tuned on fcc LJ at
#: rc = 2.5 sigma and diamond Si with Stillinger-Weber).
_NDIV = 1
_ZDIV = 4


# --------------------------------------------------------------------------------------------
# periodic images
# --------------------------------------------------------------------------------------------

@njit(cache=True, fastmath=False)
def _make_images(pos, cell, inv, pbc, nimg, pad):
    """Wrap atoms into the cell along periodic directions and append periodic images.

    Parameters
    ----------
    pos : ndarray, shape (n, 3)
        Cartesian positions.
    cell : ndarray, shape (3, 3)
        Completed (invertible) cell, rows are vectors.
    inv : ndarray, shape (3, 3)
        ``inv(cell)``.
    pbc : ndarray of bool, shape (3,)
        Periodic directions.
    nimg : ndarray of int, shape (3,)
        Largest image index along each direction (0 along open directions).
    pad : ndarray, shape (3,)
        Fractional padding: images are kept while their fractional coordinate along each
        periodic direction lies in ``[-pad_k, 1 + pad_k]``.

    Returns
    -------
    P : ndarray, shape (n + n_images, 3)
        The first ``n`` rows are the (wrapped) real atoms, the rest their images.
    orig : ndarray of int64, shape (n + n_images,)
        The real atom of every row.
    """
    n = pos.shape[0]
    s = np.empty((n, 3))
    wrapped = np.empty((n, 3))
    for i in range(n):
        for k in range(3):
            s[i, k] = pos[i, 0] * inv[0, k] + pos[i, 1] * inv[1, k] + pos[i, 2] * inv[2, k]
        for c in range(3):
            wrapped[i, c] = pos[i, c]
        for k in range(3):
            if pbc[k]:
                f = math.floor(s[i, k])
                if f != 0.0:
                    s[i, k] -= f
                    for c in range(3):
                        wrapped[i, c] -= f * cell[k, c]
    # count images
    count = 0
    for i in range(n):
        for a in range(-nimg[0], nimg[0] + 1):
            fa = s[i, 0] + a
            if pbc[0] and (fa < -pad[0] or fa > 1.0 + pad[0]):
                continue
            for b in range(-nimg[1], nimg[1] + 1):
                fb = s[i, 1] + b
                if pbc[1] and (fb < -pad[1] or fb > 1.0 + pad[1]):
                    continue
                for c in range(-nimg[2], nimg[2] + 1):
                    fc = s[i, 2] + c
                    if pbc[2] and (fc < -pad[2] or fc > 1.0 + pad[2]):
                        continue
                    if a == 0 and b == 0 and c == 0:
                        continue
                    count += 1
    P = np.empty((n + count, 3))
    orig = np.empty(n + count, dtype=np.int64)
    for i in range(n):
        for c in range(3):
            P[i, c] = wrapped[i, c]
        orig[i] = i
    m = n
    for i in range(n):
        for a in range(-nimg[0], nimg[0] + 1):
            fa = s[i, 0] + a
            if pbc[0] and (fa < -pad[0] or fa > 1.0 + pad[0]):
                continue
            for b in range(-nimg[1], nimg[1] + 1):
                fb = s[i, 1] + b
                if pbc[1] and (fb < -pad[1] or fb > 1.0 + pad[1]):
                    continue
                for c in range(-nimg[2], nimg[2] + 1):
                    fc = s[i, 2] + c
                    if pbc[2] and (fc < -pad[2] or fc > 1.0 + pad[2]):
                        continue
                    if a == 0 and b == 0 and c == 0:
                        continue
                    for d in range(3):
                        P[m, d] = wrapped[i, d] + a * cell[0, d] + b * cell[1, d] + c * cell[2, d]
                    orig[m] = i
                    m += 1
    return P, orig


# --------------------------------------------------------------------------------------------
# bins, sorted coordinates, stencil
# --------------------------------------------------------------------------------------------

@njit(cache=True, fastmath=False)
def _grid(P, orig, n, rc, ndiv, zdiv):
    """Bin the rows of ``P`` on their bounding box and sort them by bin (counting sort).

    Parameters
    ----------
    P : ndarray, shape (ntot, 3)
        Real atoms (first ``n`` rows) and images.
    orig : ndarray of int64, shape (ntot,)
        Real atom of every row.
    n : int
        Number of real atoms.
    rc : float
        Cutoff.
    ndiv, zdiv : int
        Target bin widths ``rc / ndiv`` along x and y, ``rc / zdiv`` along z.

    Returns
    -------
    lo : ndarray, shape (3,)
        Lower corner of the grid.
    w : ndarray, shape (3,)
        Bin widths (``>=`` the targets).
    nb : ndarray of int64, shape (3,)
        Bins per direction; bin ``(ix, iy, iz)`` has index ``(ix * nb[1] + iy) * nb[2] + iz``.
    bin_start : ndarray of int64, shape (nbins + 1,)
        The rows of bin ``b`` are sorted positions ``bin_start[b]:bin_start[b + 1]``.
    xs, ys, zs : ndarray, shape (ntot,)
        Sorted coordinates.
    jsrt : ndarray of int64, shape (ntot,)
        Real atom of each sorted position.
    rank : ndarray of int64, shape (ntot,)
        For a sorted position holding a real atom, its place ``m`` in the output order
        (real atoms in sorted order); -1 for images.
    slack : float
        Absolute length margin for the floating-point-safe stencil and range tests.
    """
    ntot = P.shape[0]
    lo = np.empty(3)
    hi = np.empty(3)
    for k in range(3):
        lo[k] = P[0, k]
        hi[k] = P[0, k]
    for i in range(ntot):
        for k in range(3):
            v = P[i, k]
            if v < lo[k]:
                lo[k] = v
            if v > hi[k]:
                hi[k] = v
    target = np.empty(3)
    target[0] = rc / ndiv
    target[1] = rc / ndiv
    target[2] = rc / zdiv
    nb = np.empty(3, dtype=np.int64)
    for k in range(3):
        nb[k] = max(1, int(min((hi[k] - lo[k]) / target[k], 1e15)))
    # cap the grid (an open cluster with far-flung atoms must not allocate a huge grid)
    limit = max(64, 8 * ntot)
    while nb[0] * nb[1] * nb[2] > limit:
        k = 0
        for q in range(1, 3):
            if nb[q] > nb[k]:
                k = q
        nb[k] = max(1, nb[k] // 2)
    w = np.empty(3)
    for k in range(3):
        w[k] = max((hi[k] - lo[k]) / nb[k], target[k])
    scale = rc
    for k in range(3):
        scale = max(scale, abs(lo[k]), abs(hi[k]))
    slack = 1e-10 * scale
    nbins = nb[0] * nb[1] * nb[2]
    which = np.empty(ntot, dtype=np.int64)
    bin_start = np.zeros(nbins + 1, dtype=np.int64)
    for i in range(ntot):
        ix = min(int((P[i, 0] - lo[0]) / w[0]), nb[0] - 1)
        iy = min(int((P[i, 1] - lo[1]) / w[1]), nb[1] - 1)
        iz = min(int((P[i, 2] - lo[2]) / w[2]), nb[2] - 1)
        b = (ix * nb[1] + iy) * nb[2] + iz
        which[i] = b
        bin_start[b + 1] += 1
    for b in range(nbins):
        bin_start[b + 1] += bin_start[b]
    fill = bin_start[:-1].copy()
    xs = np.empty(ntot)
    ys = np.empty(ntot)
    zs = np.empty(ntot)
    jsrt = np.empty(ntot, dtype=np.int64)
    real = np.zeros(ntot, dtype=np.bool_)
    for i in range(ntot):
        b = which[i]
        t = fill[b]
        xs[t] = P[i, 0]
        ys[t] = P[i, 1]
        zs[t] = P[i, 2]
        jsrt[t] = orig[i]
        real[t] = i < n
        fill[b] += 1
    rank = np.empty(ntot, dtype=np.int64)
    m = 0
    for t in range(ntot):
        if real[t]:
            rank[t] = m
            m += 1
        else:
            rank[t] = -1
    return lo, w, nb, bin_start, xs, ys, zs, jsrt, rank, slack


@njit(cache=True, fastmath=False)
def _stencil(w, rc, slack):
    """Bin columns ``(dx, dy)`` that can hold neighbours, with the largest z separation in each.

    Returns ``(sdx, sdy, srz)``: a neighbour of an atom in column ``(bx, by)`` lies in some column
    ``(bx + sdx[s], by + sdy[s])`` at ``|z_j - z_i| < srz[s]`` (bin-level gaps; conservative by
    ``slack``).
    """
    r0 = int(math.ceil(rc / w[0]))
    r1 = int(math.ceil(rc / w[1]))
    cap = (2 * r0 + 1) * (2 * r1 + 1)
    sdx = np.empty(cap, dtype=np.int64)
    sdy = np.empty(cap, dtype=np.int64)
    srz = np.empty(cap)
    rc2 = rc * rc
    ns = 0
    for dx in range(-r0, r0 + 1):
        gx = max(0.0, (abs(dx) - 1) * w[0] - slack)
        for dy in range(-r1, r1 + 1):
            gy = max(0.0, (abs(dy) - 1) * w[1] - slack)
            rem = rc2 - gx * gx - gy * gy
            if rem > 0.0:
                sdx[ns] = dx
                sdy[ns] = dy
                srz[ns] = math.sqrt(rem) + slack
                ns += 1
    return sdx[:ns], sdy[:ns], srz[:ns]


# --------------------------------------------------------------------------------------------
# per-atom scans
# --------------------------------------------------------------------------------------------

@njit(cache=True, fastmath=False, inline="always")
def _z_slice(base, zi, rz, lo2, iw2, nb2, bin_start):
    """Sorted-position range of column ``base`` covering ``z`` in ``[zi - rz, zi + rz]``
    (``iw2``: inverse z bin width; ``rz`` carries a slack far above the rounding error)."""
    zl = (zi - rz - lo2) * iw2
    zh = (zi + rz - lo2) * iw2
    kl = min(int(zl), nb2 - 1) if zl > 0.0 else 0
    kh = min(int(zh), nb2 - 1) if zh > 0.0 else 0
    return bin_start[base + kl], bin_start[base + kh + 1]


@njit(cache=True, fastmath=False, inline="always")
def _stencil_rows(bx, by, zi, sdx, sdy, srz, lo2, iw2, nb, bin_start, ru0, ru1):
    """The sorted-position rows an atom in column ``(bx, by)`` at height ``zi`` must scan.

    Fills ``ru0[:nr]``, ``ru1[:nr]`` with one slice ``ru0[r]:ru1[r]`` per stencil column inside
    the grid (trimmed to ``z`` in ``zi +- srz``, see :func:`_z_slice`; ``iw2``: inverse z bin
    width) and returns ``(nr, tot)``, ``tot`` being the number of candidates in all of them.
    Shared by the serial list builder and the fused pair kernel of :mod:`.pair`.
    """
    nr = 0
    tot = 0
    for s in range(sdx.size):
        cx = bx + sdx[s]
        cy = by + sdy[s]
        if cx < 0 or cx >= nb[0] or cy < 0 or cy >= nb[1]:
            continue
        u0, u1 = _z_slice((cx * nb[1] + cy) * nb[2], zi, srz[s], lo2, iw2, nb[2], bin_start)
        ru0[nr] = u0
        ru1[nr] = u1
        tot += u1 - u0
        nr += 1
    return nr, tot


@njit(cache=True, fastmath=False, inline="always")
def _count_atom(t, bx, by, xs, ys, zs, lo, w, nb, bin_start, sdx, sdy, srz, rc2):
    """Atoms within the cutoff of sorted atom ``t`` (itself included), and of those, how many
    sit on it (``r^2 < 1e-16``; 1 unless atoms coincide).  Branch-free inner loop."""
    xi = xs[t]
    yi = ys[t]
    zi = zs[t]
    cnt = 0
    nz = 0
    for s in range(sdx.size):
        cx = bx + sdx[s]
        cy = by + sdy[s]
        if cx < 0 or cx >= nb[0] or cy < 0 or cy >= nb[1]:
            continue
        u0, u1 = _z_slice((cx * nb[1] + cy) * nb[2], zi, srz[s], lo[2], 1.0 / w[2], nb[2], bin_start)
        # unsigned indices (no negative-index wraparound) and local counters: LLVM vectorises
        c = 0
        z = 0
        for k in range(uint64(u0), uint64(u1)):
            dx = xs[k] - xi
            dy = ys[k] - yi
            dz = zs[k] - zi
            r2 = dx * dx + dy * dy + dz * dz
            c += r2 < rc2
            z += r2 < 1e-16
        cnt += c
        nz += z
    return cnt, nz


@njit(cache=True, fastmath=False, inline="always")
def _fill_atom(t, bx, by, xs, ys, zs, jsrt, lo, w, nb, bin_start, sdx, sdy, srz, rc2, p,
               nbr_j, nbr_d, tu):
    """Write the neighbours of sorted atom ``t`` from pair slot ``p`` on; returns their number.

    Candidates are compacted branch-free into the scratch array ``tu`` (at least one longer than
    the count), then copied out.
    """
    xi = xs[t]
    yi = ys[t]
    zi = zs[t]
    tself = uint64(t)
    c = 0
    for s in range(sdx.size):
        cx = bx + sdx[s]
        cy = by + sdy[s]
        if cx < 0 or cx >= nb[0] or cy < 0 or cy >= nb[1]:
            continue
        u0, u1 = _z_slice((cx * nb[1] + cy) * nb[2], zi, srz[s], lo[2], 1.0 / w[2], nb[2], bin_start)
        for k in range(uint64(u0), uint64(u1)):
            dx = xs[k] - xi
            dy = ys[k] - yi
            dz = zs[k] - zi
            r2 = dx * dx + dy * dy + dz * dz
            tu[c] = k
            c += (r2 < rc2) & (k != tself)
    for q in range(c):
        u = tu[q]
        nbr_j[p + q] = jsrt[u]
        # the same expressions as above: bitwise the same vectors
        nbr_d[p + q, 0] = xs[u] - xi
        nbr_d[p + q, 1] = ys[u] - yi
        nbr_d[p + q, 2] = zs[u] - zi
    return c


@njit(cache=True, fastmath=False, inline="always")
def _count_column(col, n, xs, ys, zs, rank, lo, w, nb, bin_start, sdx, sdy, srz, rc2, counts,
                  bad):
    bx = col // nb[1]
    by = col - bx * nb[1]
    base = col * nb[2]
    for t in range(bin_start[base], bin_start[base + nb[2]]):
        m = rank[t]
        if m < 0:
            continue
        cnt, nz = _count_atom(t, bx, by, xs, ys, zs, lo, w, nb, bin_start, sdx, sdy, srz, rc2)
        counts[m] = cnt - 1
        bad[m] = nz > 1


@njit(cache=True, fastmath=False, inline="always")
def _fill_column(col, xs, ys, zs, jsrt, rank, lo, w, nb, bin_start, sdx, sdy, srz, rc2, order,
                 offsets, nbr_j, nbr_d, tu):
    bx = col // nb[1]
    by = col - bx * nb[1]
    base = col * nb[2]
    for t in range(bin_start[base], bin_start[base + nb[2]]):
        m = rank[t]
        if m < 0:
            continue
        order[m] = jsrt[t]
        _fill_atom(t, bx, by, xs, ys, zs, jsrt, lo, w, nb, bin_start, sdx, sdy, srz, rc2,
                   offsets[m], nbr_j, nbr_d, tu)


@njit(cache=True, fastmath=False)
def _offsets_from_counts(counts, bad):
    """Prefix sum; returns ``(offsets, maxcount, status)`` (``status``: 0, or 1 + the place
    ``m`` of the first atom that coincides with another atom or image)."""
    n = counts.size
    offsets = np.zeros(n + 1, dtype=np.int64)
    mx = 0
    for m in range(n):
        if bad[m]:
            return offsets, 0, m + 1
        c = counts[m]
        offsets[m + 1] = offsets[m] + c
        if c > mx:
            mx = c
    return offsets, mx, 0


@njit(cache=True, fastmath=False)
def _scan_rows(buf, c, ru0, ru1, nr, xs, ys, zs, xi, yi, zi, rc2, tself):
    """Append to ``buf`` from slot ``c`` the sorted positions, in rows ``ru0[r]:ru1[r]``, within
    ``sqrt(rc2)`` of ``(xi, yi, zi)`` other than ``tself`` (branch-free); returns the new end.
    ``buf`` must have room for every candidate plus one."""
    for r in range(nr):
        for k in range(uint64(ru0[r]), uint64(ru1[r])):
            dx = xs[k] - xi
            dy = ys[k] - yi
            dz = zs[k] - zi
            r2 = dx * dx + dy * dy + dz * dz
            buf[c] = k
            c += uint64((r2 < rc2) & (k != tself))
    return int64(c)


@njit(cache=True, fastmath=False)
def _coincident(buf, c0, c1, xs, ys, zs, xi, yi, zi):
    """Whether any listed neighbour ``buf[c0:c1]`` sits on ``(xi, yi, zi)`` (``r^2 < 1e-16``)."""
    for q in range(c0, c1):
        u = buf[q]
        dx = xs[u] - xi
        dy = ys[u] - yi
        dz = zs[u] - zi
        if dx * dx + dy * dy + dz * dz < 1e-16:
            return True
    return False


@njit(cache=True, fastmath=False)
def _neighbours_serial(P, orig, n, rc, ndiv, zdiv):
    """Full neighbour list of the ``n`` real atoms (rows ``0..n-1`` of ``P``), one thread.

    One pass: candidates are compacted branch-free into a growing buffer of sorted positions,
    then the exactly sized outputs are written.  Returns ``(order, offsets, nbr_j, nbr_d,
    status)`` (see the module docstring); ``status`` is 0, or ``1 + atom`` for an atom that
    coincides with another (or with its own image), in which case the list is empty.
    """
    lo, w, nb, bin_start, xs, ys, zs, jsrt, rank, slack = _grid(P, orig, n, rc, ndiv, zdiv)
    sdx, sdy, srz = _stencil(w, rc, slack)
    rc2 = rc * rc
    iw2 = 1.0 / w[2]
    order = np.empty(n, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    centre = np.empty(n, dtype=np.int64)
    cap = max(1024, 8 * P.shape[0])
    buf = np.empty(cap, dtype=np.int64)
    ru0 = np.empty(sdx.size, dtype=np.int64)
    ru1 = np.empty(sdx.size, dtype=np.int64)
    c = 0
    for col in range(nb[0] * nb[1]):
        bx = col // nb[1]
        by = col - bx * nb[1]
        cbase = col * nb[2]
        for t in range(bin_start[cbase], bin_start[cbase + nb[2]]):
            m = rank[t]
            if m < 0:
                continue
            order[m] = jsrt[t]
            centre[m] = t
            xi = xs[t]
            yi = ys[t]
            zi = zs[t]
            tself = uint64(t)
            # the row slices of this atom, then one growth check, then the branch-free scan
            nr, tot = _stencil_rows(bx, by, zi, sdx, sdy, srz, lo[2], iw2, nb, bin_start, ru0,
                                    ru1)
            if c + tot >= cap:
                cap = 2 * cap + tot
                nbuf = np.empty(cap, dtype=np.int64)
                nbuf[:c] = buf[:c]
                buf = nbuf
            cu = _scan_rows(buf, uint64(c), ru0, ru1, nr, xs, ys, zs, xi, yi, zi, rc2, tself)
            nz = _coincident(buf, c, cu, xs, ys, zs, xi, yi, zi)
            c = cu
            if nz:
                return (order, offsets, np.empty(0, dtype=np.int64), np.empty((0, 3)),
                        jsrt[t] + 1)
            offsets[m + 1] = c
    nbr_j = np.empty(c, dtype=np.int64)
    nbr_d = np.empty((c, 3))
    for m in range(n):
        t = centre[m]
        xi = xs[t]
        yi = ys[t]
        zi = zs[t]
        for q in range(offsets[m], offsets[m + 1]):
            u = buf[q]
            nbr_j[q] = jsrt[u]
            nbr_d[q, 0] = xs[u] - xi
            nbr_d[q, 1] = ys[u] - yi
            nbr_d[q, 2] = zs[u] - zi
    return order, offsets, nbr_j, nbr_d, 0


@njit(cache=True, fastmath=False, parallel=True)
def _neighbours_parallel(P, orig, n, rc, ndiv, zdiv):
    """Threaded variant of :func:`_neighbours_serial` (``prange`` over bin columns; same output)."""
    lo, w, nb, bin_start, xs, ys, zs, jsrt, rank, slack = _grid(P, orig, n, rc, ndiv, zdiv)
    sdx, sdy, srz = _stencil(w, rc, slack)
    rc2 = rc * rc
    ncol = nb[0] * nb[1]
    counts = np.empty(n, dtype=np.int64)
    bad = np.empty(n, dtype=np.bool_)
    for col in prange(ncol):
        _count_column(col, n, xs, ys, zs, rank, lo, w, nb, bin_start, sdx, sdy, srz, rc2, counts,
                      bad)
    offsets, mx, status = _offsets_from_counts(counts, bad)
    order = np.empty(n, dtype=np.int64)
    if status:
        for t in range(rank.size):
            if rank[t] == status - 1:
                status = jsrt[t] + 1
                break
        return order, offsets, np.empty(0, dtype=np.int64), np.empty((0, 3)), status
    npair = offsets[n]
    nbr_j = np.empty(npair, dtype=np.int64)
    nbr_d = np.empty((npair, 3))
    for col in prange(ncol):
        tu = np.empty(mx + 1, dtype=np.int64)
        _fill_column(col, xs, ys, zs, jsrt, rank, lo, w, nb, bin_start, sdx, sdy, srz, rc2,
                     order, offsets, nbr_j, nbr_d, tu)
    return order, offsets, nbr_j, nbr_d, 0


# --------------------------------------------------------------------------------------------
# Python-level driver
# --------------------------------------------------------------------------------------------

def _complete_cell(cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """The cell with open-boundary directions replaced by unit vectors normal to the periodic ones.

    Only the periodic vectors matter for images; the completed cell is invertible whenever the
    periodic vectors are linearly independent.

    Parameters
    ----------
    cell : ndarray, shape (3, 3)
        Cell vectors as rows (rows along open directions may be zero).
    pbc : ndarray of bool, shape (3,)
        Periodic directions.

    Returns
    -------
    ndarray, shape (3, 3)
        The completed cell.
    """
    per = [cell[k] for k in range(3) if pbc[k]]
    basis: list[np.ndarray] = []
    for v in per:   # Gram-Schmidt of the periodic vectors, to find the orthogonal complement
        w = v - sum(np.dot(v, b) * b for b in basis)
        nw = np.linalg.norm(w)
        if nw > 0:
            basis.append(w / nw)
    comp: list[np.ndarray] = []
    for e in np.eye(3):
        w = e - sum(np.dot(e, b) * b for b in basis + comp)
        nw = np.linalg.norm(w)
        if nw > 1e-8:
            comp.append(w / nw)
    full = np.array(cell, dtype=np.float64, copy=True)
    ci = 0
    for k in range(3):
        if not pbc[k]:
            full[k] = comp[ci] if ci < len(comp) else np.eye(3)[k]
            ci += 1
    return full


def _images(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, rc: float):
    """Validate the cell and return ``(P, orig)`` from :func:`_make_images`."""
    pbc = np.asarray(pbc, dtype=np.bool_)
    for k in range(3):
        if pbc[k] and not np.linalg.norm(cell[k]) > 0:
            raise InputError(f"cell[{k}]", cell[k].tolist(), "a non-zero cell vector along a "
                             "periodic direction")
    full = _complete_cell(cell, pbc)
    det = abs(np.linalg.det(full))
    scale = np.prod([max(np.linalg.norm(full[k]), 1e-300) for k in range(3)])
    if not det > 1e-10 * scale:
        raise InputError("cell", cell.tolist(), "linearly independent cell vectors along the "
                         "periodic directions")
    inv = np.linalg.inv(full)
    spacing = 1.0 / np.linalg.norm(inv, axis=0)    # distance between lattice planes
    pad = np.where(pbc, rc / spacing, 0.0)
    nimg = np.where(pbc, np.ceil(pad), 0.0).astype(np.int64)
    if np.prod(2 * nimg + 1) * len(positions) > 2e8:
        raise InputError("cell", cell.tolist(), "lattice-plane spacings not much smaller than "
                         f"the cutoff {rc:.3f} Å", hint=f"plane spacings {spacing.tolist()} Å "
                         "would need too many periodic images")
    return _make_images(positions, full, inv, pbc, nimg, pad)


def _neighbour_list(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, rc: float,
                    parallel: bool):
    """Full neighbour list ``(order, offsets, nbr_j, nbr_d)`` of all atoms within ``rc``.

    Parameters
    ----------
    positions : ndarray, shape (n, 3), float64, C-contiguous
        Cartesian positions (``n >= 1``).
    cell : ndarray, shape (3, 3)
        Cell vectors as rows (rows along open directions may be zero).
    pbc : ndarray of bool, shape (3,)
        Periodic directions.
    rc : float
        Cutoff (pairs with ``|d| < rc``).
    parallel : bool
        Use the threaded builder.

    Returns
    -------
    order : ndarray of int64, shape (n,)
        Atom of each segment.
    offsets : ndarray of int64, shape (n + 1,)
        Segment ``m`` is ``offsets[m]:offsets[m + 1]``.
    nbr_j : ndarray of int64, shape (npairs,)
        Neighbour (real-atom index).
    nbr_d : ndarray, shape (npairs, 3)
        Bond vector ``r_j + shift - r_i``.

    Raises
    ------
    InputError
        On a zero or linearly dependent periodic cell vector, a cell too thin for the cutoff
        (more than ~2e8 images), or two atoms (or an atom and its own image) closer than 1e-8.
    """
    P, orig = _images(positions, cell, pbc, rc)
    nb_fn = _neighbours_parallel if parallel else _neighbours_serial
    order, offsets, nbr_j, nbr_d, status = nb_fn(P, orig, len(positions), float(rc),
                                                 _NDIV, _ZDIV)
    if status:
        i = status - 1
        raise InputError("positions", f"atom {i} at {positions[i].tolist()}",
                         "atoms at distinct positions (no two atoms, nor an atom and a periodic "
                         "image of itself, closer than 1e-8 Å)")
    return order, offsets, nbr_j, nbr_d


def _as_inputs(positions, cell, pbc):
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise InputError("positions", f"array of shape {pos.shape}", "shape (n, 3)")
    if not np.all(np.isfinite(pos)):
        raise InputError("positions", "non-finite values", "finite positions")
    cel = np.ascontiguousarray(cell, dtype=np.float64)
    if cel.shape != (3, 3) or not np.all(np.isfinite(cel)):
        raise InputError("cell", cel.tolist(), "a finite (3, 3) array")
    pb = np.asarray(pbc, dtype=bool)
    if pb.shape == ():
        pb = np.array([bool(pb)] * 3)
    if pb.shape != (3,):
        raise InputError("pbc", pbc, "a bool or three bools")
    return pos, cel, pb


def neighbour_list(positions, cell, pbc, cutoff: float, parallel: bool = False):
    """Full neighbour list of all atoms within ``cutoff`` (public, validated entry point).

    Parameters
    ----------
    positions : array, shape (n, 3)
        Cartesian positions.
    cell : array, shape (3, 3)
        Cell vectors as rows (rows along open directions may be zero).
    pbc : bool or three bools
        Periodic directions.
    cutoff : float
        Pairs with ``|d| < cutoff`` are listed (> 0).
    parallel : bool
        Use the threaded builder.

    Returns
    -------
    order, offsets, nbr_j, nbr_d : ndarray
        CSR list: the neighbours of atom ``order[m]`` are ``nbr_j[offsets[m]:offsets[m + 1]]``
        at bond vectors ``nbr_d[...] = r_j + shift - r_i``; every pair is listed in both
        directions, once per periodic image within the cutoff.
    """
    pos, cel, pb = _as_inputs(positions, cell, pbc)
    rc = float(cutoff)
    if not rc > 0 or not math.isfinite(rc):
        raise InputError("cutoff", cutoff, "a finite positive number")
    if len(pos) == 0:
        return (np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64),
                np.zeros(0, dtype=np.int64), np.zeros((0, 3)))
    return _neighbour_list(pos, cel, pb, rc, bool(parallel))


# --------------------------------------------------------------------------------------------
# Verlet skin
# --------------------------------------------------------------------------------------------

@njit(cache=True, fastmath=False, inline="always")
def _shift_atom(m, order, offsets, nbr_j, d0, delta, out):
    i = order[m]
    ax = delta[i, 0]
    ay = delta[i, 1]
    az = delta[i, 2]
    for t in range(offsets[m], offsets[m + 1]):
        j = nbr_j[t]
        out[t, 0] = d0[t, 0] + (delta[j, 0] - ax)
        out[t, 1] = d0[t, 1] + (delta[j, 1] - ay)
        out[t, 2] = d0[t, 2] + (delta[j, 2] - az)


@njit(cache=True, fastmath=False)
def _shift_bonds(order, offsets, nbr_j, d0, delta, out):
    """``out = d0 + delta[j] - delta[i]`` for every listed bond ``i -> j``."""
    for m in range(order.size):
        _shift_atom(m, order, offsets, nbr_j, d0, delta, out)


@njit(cache=True, fastmath=False, parallel=True)
def _shift_bonds_parallel(order, offsets, nbr_j, d0, delta, out):
    """Threaded :func:`_shift_bonds` (same result)."""
    for m in prange(order.size):
        _shift_atom(m, order, offsets, nbr_j, d0, delta, out)


@njit(cache=True, fastmath=False)
def _max_disp2(pos, ref):
    mx = 0.0
    for i in range(pos.shape[0]):
        dx = pos[i, 0] - ref[i, 0]
        dy = pos[i, 1] - ref[i, 1]
        dz = pos[i, 2] - ref[i, 2]
        r2 = dx * dx + dy * dy + dz * dz
        if r2 > mx:
            mx = r2
    return mx


@njit(cache=True, fastmath=False)
def _half_of_full(order, offsets, nbr_j, nbr_d):
    """Half list from a full one: bond ``i -> j`` kept when ``j > i`` or ``j == i``.

    Every bond between two different atoms is kept once (from its lower-index end); bonds of an
    atom to its own periodic images are kept in both directions (consumers weight them by 1/2).
    Same CSR layout and atom order as the input.
    """
    n = order.size
    keep = 0
    for m in range(n):
        i = order[m]
        for t in range(offsets[m], offsets[m + 1]):
            keep += nbr_j[t] >= i
    h_off = np.empty(n + 1, dtype=np.int64)
    h_j = np.empty(keep, dtype=np.int64)
    h_d = np.empty((keep, 3))
    h_off[0] = 0
    c = 0
    for m in range(n):
        i = order[m]
        for t in range(offsets[m], offsets[m + 1]):
            j = nbr_j[t]
            if j >= i:
                h_j[c] = j
                h_d[c, 0] = nbr_d[t, 0]
                h_d[c, 1] = nbr_d[t, 1]
                h_d[c, 2] = nbr_d[t, 2]
                c += 1
        h_off[m + 1] = c
    return order.copy(), h_off, h_j, h_d


class NeighbourList:
    """Verlet neighbour list: built with ``cutoff + skin``, reused while atoms move little.

    The list is rebuilt when the number of atoms, the cell or the periodicity changes, or when
    some atom has moved more than ``skin / 2`` since the last build; otherwise the stored bond
    vectors are moved with the atoms (``d = d_0 + (r_j - r_j^0) - (r_i - r_i^0)``).  Between
    rebuilds the list therefore holds every pair closer than ``cutoff`` (plus some farther ones,
    up to ``cutoff + skin``): consumers must apply their own cutoff test, as all kernels of
    :mod:`scaleladder.atomistic` do.  A cell change (NPT, an applied strain) always rebuilds:
    the stored periodic-image shifts belong to the old cell.

    Parameters
    ----------
    cutoff : float
        Interaction cutoff, same length unit as the positions (> 0).
    skin : float
        Verlet skin (>= 0).  ``0`` rebuilds whenever any position changes.
    parallel : bool
        Use the threaded builder.
    half : bool
        Store a half list (:func:`_half_of_full`: each bond between two different atoms once,
        from its lower-index end; bonds of an atom to its own images in both directions), for
        pair potentials that apply Newton's third law.  Default: the full list.

    Attributes
    ----------
    builds : int
        How many times the list has been built.
    rebuilt : bool
        Whether the last :meth:`update` rebuilt the list.
    radius : float
        Cutoff of the last build (``cutoff + skin``, or more after a larger ``cutoff`` request),
        0 before the first.

    Examples
    --------
    >>> from ase.build import bulk
    >>> atoms = bulk("Ar", "fcc", a=5.26, cubic=True) * (3, 3, 3)
    >>> nl = NeighbourList(cutoff=8.5, skin=0.5)
    >>> order, offsets, nbr_j, nbr_d = nl.update(atoms.positions, atoms.cell, atoms.pbc)
    >>> atoms.positions[0] += 0.1
    >>> _ = nl.update(atoms.positions, atoms.cell, atoms.pbc)
    >>> nl.builds, nl.rebuilt
    (1, False)
    """

    def __init__(self, cutoff: float, skin: float = 0.3, parallel: bool = False,
                 half: bool = False):
        rc = float(cutoff)
        if not rc > 0 or not math.isfinite(rc):
            raise InputError("cutoff", cutoff, "a finite positive number")
        sk = float(skin)
        if not sk >= 0 or not math.isfinite(sk):
            raise InputError("skin", skin, "a finite number >= 0")
        self.cutoff = rc
        self.skin = sk
        self.parallel = bool(parallel)
        self.half = bool(half)
        self.builds = 0
        self.rebuilt = False
        self.radius = 0.0
        self._ref_pos: np.ndarray | None = None
        self._cell: np.ndarray | None = None
        self._pbc: np.ndarray | None = None
        self._list: tuple | None = None
        self._d: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        """Memory held by the stored list, bytes."""
        arrays = list(self._list or ()) + [a for a in (self._d, self._ref_pos) if a is not None]
        return int(sum(a.nbytes for a in arrays))

    def needs_rebuild(self, positions, cell, pbc, cutoff: float | None = None) -> bool:
        """Whether :meth:`update` with these arguments would rebuild the list."""
        pos, cel, pb = _as_inputs(positions, cell, pbc)
        return self._needs_rebuild(pos, cel, pb, self._request(cutoff))

    def _request(self, cutoff) -> float:
        if cutoff is None:
            return self.cutoff
        rc = float(cutoff)
        if not rc > 0 or not math.isfinite(rc):
            raise InputError("cutoff", cutoff, "a finite positive number")
        return rc

    def _needs_rebuild(self, pos, cel, pb, rc) -> bool:
        if self._list is None or pos.shape != self._ref_pos.shape:
            return True
        if not (np.array_equal(cel, self._cell) and np.array_equal(pb, self._pbc)):
            return True
        if rc > self.radius:
            return True
        if len(pos) == 0:
            return False
        # every pair now within rc was within rc + 2 max|displacement| at the build
        half = 0.5 * (self.radius - rc)
        return bool(_max_disp2(pos, self._ref_pos) > half * half)

    def update(self, positions, cell, pbc, cutoff: float | None = None):
        """The neighbour list for these positions (rebuilt only when needed).

        Parameters
        ----------
        positions : array, shape (n, 3)
            Cartesian positions.
        cell : array, shape (3, 3)
            Cell vectors as rows.
        pbc : bool or three bools
            Periodic directions.
        cutoff : float, optional
            Serve this cutoff instead of ``cutoff`` (e.g. a fit that changes the potential's
            range): the stored list is reused while ``cutoff + 2 max|displacement|`` stays within
            the radius of the last build; a rebuild uses ``cutoff + skin``.

        Returns
        -------
        order, offsets, nbr_j, nbr_d : ndarray
            As :func:`neighbour_list` with the radius of the last build (the half list when
            ``half``), the bond vectors ``nbr_d`` brought up to date with ``positions``.  The
            arrays are owned by this object and must not be modified; ``nbr_d`` is overwritten
            by the next call.
        """
        order, offsets, nbr_j, d0, delta = self.displaced(positions, cell, pbc, cutoff)
        if delta is None:
            return order, offsets, nbr_j, d0
        if self._d is None:
            self._d = np.empty_like(d0)
        shift = _shift_bonds_parallel if self.parallel else _shift_bonds
        shift(order, offsets, nbr_j, d0, delta, self._d)
        return order, offsets, nbr_j, self._d

    def displaced(self, positions, cell, pbc, cutoff: float | None = None):
        """Like :meth:`update`, but the bond vectors are left for the consumer to move.

        Returns
        -------
        order, offsets, nbr_j, d0 : ndarray
            The list as built (bond vectors ``d0`` at the build positions).
        delta : ndarray, shape (n, 3), or None
            Displacements since the build, ``None`` when there are none (just built, or the
            positions unchanged): the current bond vector is ``d0[t] + (delta[j] - delta[i])``,
            bitwise what :meth:`update` returns, without writing it out.
        """
        pos, cel, pb = _as_inputs(positions, cell, pbc)
        rc = self._request(cutoff)
        if self._needs_rebuild(pos, cel, pb, rc):
            radius = rc + self.skin
            lst = neighbour_list(pos, cel, pb, radius, self.parallel)
            if self.half:
                lst = _half_of_full(*lst)
            self._list = lst
            self.radius = radius
            self._ref_pos = pos.copy()
            self._cell = cel.copy()
            self._pbc = pb.copy()
            self._d = None
            self.builds += 1
            self.rebuilt = True
            return (*lst, None)
        self.rebuilt = False
        if np.array_equal(pos, self._ref_pos):
            return (*self._list, None)
        return (*self._list, pos - self._ref_pos)


class _CalculatorList:
    """The Verlet list a calculator keeps between calls, and the count of all its builds.

    :meth:`get` returns the stored :class:`NeighbourList` while the calculator's cutoff, skin and
    threading stay the same, and a new one when any of them changed (a parameter change).
    :attr:`builds` adds up the builds of every list this calculator has had, plus
    :meth:`count_build` calls (a kernel that bins the atoms itself).
    """

    def __init__(self):
        self._nl: NeighbourList | None = None
        self._before = 0

    @property
    def builds(self) -> int:
        """Neighbour searches so far."""
        return self._before + (self._nl.builds if self._nl is not None else 0)

    def get(self, cutoff: float, skin: float, parallel: bool, half: bool = False) -> NeighbourList:
        """The persistent list for these settings."""
        nl = self._nl
        if nl is None or (nl.cutoff, nl.skin, nl.parallel, nl.half) != (
                float(cutoff), float(skin), bool(parallel), bool(half)):
            self.drop()
            self._nl = nl = NeighbourList(cutoff, skin=skin, parallel=parallel, half=half)
        return nl

    def count_build(self) -> None:
        """Record a neighbour search made without the stored list (it is dropped)."""
        self.drop()
        self._before += 1

    def drop(self) -> None:
        """Forget the stored list (its builds stay counted)."""
        if self._nl is not None:
            self._before += self._nl.builds
            self._nl = None
