"""Particles in a periodic orthorhombic box: the pair machinery of DPD and CG MD (numba).

A :class:`PairList` is a Verlet list (cutoff + skin) built from a cell list (cells at least as
wide as the list radius, half-shell stencil of 13 neighbour cells, so each pair appears once), or
from all pairs when the box holds fewer than three cells along an axis.  Positions are kept
*unwrapped* (so mean-square displacements need no image bookkeeping); the list stores, with each
pair, the lattice vector that makes ``x_i - x_j - shift`` the minimum image when it was built
(exact while every box length exceeds twice the list radius, checked).  Unwrapped positions move
continuously, so that image stays right until the list is rebuilt and the kernels need no
rounding (a floor per component would double the cost of a force sweep).

The list is rebuilt when some particle has moved more than half the skin since the last build.
For bit-for-bit resumable runs the engines keep the positions of the last build in their state:
a resumed run rebuilds the same list from them (the pair order, and hence the order in which a
Shardlow sweep visits pairs and draws random numbers, is a function of those positions only).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..core.codec import register
from ..core.errors import CalculationError, InputError
from ._rng import normal as _normal

__all__ = ["PairList", "ParticleState", "minimum_image", "pair_delta", "maxwell_boltzmann", "check_blowup",
           "baoab_drift"]

# the 13 cell offsets of a half shell (lexicographically positive), self-cell handled separately
_HALF_SHELL = np.array([(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)
                        if (dx, dy, dz) > (0, 0, 0)], dtype=np.int64)


@njit(cache=True, inline="always")
def minimum_image(d, L):
    """``d - L * round(d / L)`` (one component)."""
    return d - L * np.floor(d / L + 0.5)


@njit(cache=True, inline="always")
def pair_delta(pos, pi, pj, S, p):
    """Pair ``p`` of a list: ``(i, j, dx, dy, dz, r^2)`` with ``d = x_i - x_j - S_p`` (the image
    stored with the pair)."""
    i = pi[p]
    j = pj[p]
    dx = pos[i, 0] - pos[j, 0] - S[p, 0]
    dy = pos[i, 1] - pos[j, 1] - S[p, 1]
    dz = pos[i, 2] - pos[j, 2] - S[p, 2]
    return i, j, dx, dy, dz, dx * dx + dy * dy + dz * dz


@njit(cache=True)
def _cell_pairs_into(pos, L, nc, rlist, shell, cap, S):
    n = pos.shape[0]
    ncell = nc[0] * nc[1] * nc[2]
    cell = np.empty(n, dtype=np.int64)
    count = np.zeros(ncell + 1, dtype=np.int64)
    w = np.empty((n, 3))
    for i in range(n):
        c0 = 0
        for d in range(3):
            x = pos[i, d] - L[d] * np.floor(pos[i, d] / L[d])
            w[i, d] = x
            k = int(x / L[d] * nc[d])
            if k >= nc[d]:
                k = nc[d] - 1
            c0 = c0 * nc[d] + k
        cell[i] = c0
        count[c0 + 1] += 1
    start = np.cumsum(count)
    fill = start[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[fill[cell[i]]] = i
        fill[cell[i]] += 1
    sx = np.empty((n, 3))          # wrapped coordinates in cell order
    for a in range(n):
        for d in range(3):
            sx[a, d] = w[order[a], d]
    r2max = rlist * rlist
    pi = np.empty(cap, dtype=np.int64)
    pj = np.empty(cap, dtype=np.int64)
    m = 0
    for cx in range(nc[0]):
        for cy in range(nc[1]):
            for cz in range(nc[2]):
                c = (cx * nc[1] + cy) * nc[2] + cz
                for s in range(-1, shell.shape[0]):
                    shx = 0.0
                    shy = 0.0
                    shz = 0.0
                    if s < 0:
                        o = c
                    else:
                        ox = cx + shell[s, 0]
                        oy = cy + shell[s, 1]
                        oz = cz + shell[s, 2]
                        # the periodic image of the neighbour cell next to this one
                        if ox < 0:
                            ox += nc[0]
                            shx = -L[0]
                        elif ox >= nc[0]:
                            ox -= nc[0]
                            shx = L[0]
                        if oy < 0:
                            oy += nc[1]
                            shy = -L[1]
                        elif oy >= nc[1]:
                            oy -= nc[1]
                            shy = L[1]
                        if oz < 0:
                            oz += nc[2]
                            shz = -L[2]
                        elif oz >= nc[2]:
                            oz -= nc[2]
                            shz = L[2]
                        o = (ox * nc[1] + oy) * nc[2] + oz
                    for a in range(start[c], start[c + 1]):
                        xa = sx[a, 0]
                        ya = sx[a, 1]
                        za = sx[a, 2]
                        b0 = a + 1 if s < 0 else start[o]
                        for b in range(b0, start[o + 1]):
                            dx = xa - sx[b, 0] - shx
                            dy = ya - sx[b, 1] - shy
                            dz = za - sx[b, 2] - shz
                            if dx * dx + dy * dy + dz * dz < r2max:
                                if m < cap:
                                    i = order[a]
                                    j = order[b]
                                    pi[m] = i
                                    pj[m] = j
                                    S[m, 0] = pos[i, 0] - pos[j, 0] - dx
                                    S[m, 1] = pos[i, 1] - pos[j, 1] - dy
                                    S[m, 2] = pos[i, 2] - pos[j, 2] - dz
                                m += 1
    return pi, pj, m


@njit(cache=True)
def _all_pairs_into(pos, L, rlist, cap, S):
    n = pos.shape[0]
    r2max = rlist * rlist
    pi = np.empty(cap, dtype=np.int64)
    pj = np.empty(cap, dtype=np.int64)
    m = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx = minimum_image(pos[i, 0] - pos[j, 0], L[0])
            dy = minimum_image(pos[i, 1] - pos[j, 1], L[1])
            dz = minimum_image(pos[i, 2] - pos[j, 2], L[2])
            if dx * dx + dy * dy + dz * dz < r2max:
                if m < cap:
                    pi[m] = i
                    pj[m] = j
                    S[m, 0] = pos[i, 0] - pos[j, 0] - dx
                    S[m, 1] = pos[i, 1] - pos[j, 1] - dy
                    S[m, 2] = pos[i, 2] - pos[j, 2] - dz
                m += 1
    return pi, pj, m


@njit(cache=True)
def _pairs(pos, L, nc, cells, rlist, shell):
    """All pairs closer than ``rlist`` (each once): ``(i, j, shift)``, where ``shift`` (m, 3) is
    the lattice vector with ``pos[i] - pos[j] - shift`` the minimum image at the build; with
    unwrapped positions it stays the right image for as long as the list is valid.  The buffers are
    sized from the mean density and, in the rare case that is too small, sized exactly and filled
    again (growing a buffer inside the search loop makes numba's loop many times slower)."""
    n = pos.shape[0]
    vol = L[0] * L[1] * L[2]
    cap = int(1.3 * 0.5 * n * n / vol * 4.18879 * rlist ** 3) + 4 * n + 64
    for _ in range(2):
        S = np.empty((cap, 3))
        if cells:
            pi, pj, m = _cell_pairs_into(pos, L, nc, rlist, shell, cap, S)
        else:
            pi, pj, m = _all_pairs_into(pos, L, rlist, cap, S)
        if m <= cap:
            break
        cap = m
    return pi[:m].copy(), pj[:m].copy(), S[:m].copy()


@njit(cache=True)
def _max_displacement2(pos, ref):
    out = 0.0
    for i in range(pos.shape[0]):
        r2 = 0.0
        for d in range(3):
            dd = pos[i, d] - ref[i, d]
            r2 += dd * dd
        if r2 > out:
            out = r2
    return out


class PairList:
    """A Verlet pair list for an orthorhombic periodic box.

    Parameters
    ----------
    box : 3 floats
        Box lengths (the engine's length unit).
    cutoff : float
        Interaction range.
    skin : float
        Extra list radius; the list is valid until a particle has moved ``skin / 2``.
    """

    def __init__(self, box, cutoff: float, skin: float):
        self.box = np.asarray(box, dtype=float)
        self.cutoff, self.skin = float(cutoff), float(skin)
        self.radius = self.cutoff + self.skin
        if np.any(self.box <= 2.0 * self.radius):
            raise InputError("box", tuple(float(x) for x in self.box),
                             f"every box length > 2 (cutoff + skin) = {2 * self.radius:.6g} "
                             "(the minimum-image convention)",
                             hint="use a bigger box or a smaller skin")
        self.nc = np.floor(self.box / self.radius).astype(np.int64)
        self.cells = bool(np.all(self.nc >= 3))
        self.ref: np.ndarray | None = None
        self.i = self.j = np.zeros(0, dtype=np.int64)
        self.shift = np.zeros((0, 3))
        self.builds = 0

    def build(self, ref: np.ndarray) -> None:
        """Build the list from the positions ``ref`` (kept as the list's reference)."""
        ref = np.ascontiguousarray(ref, dtype=float)
        self.i, self.j, self.shift = _pairs(ref, self.box, self.nc, self.cells, self.radius,
                                            _HALF_SHELL)
        self.ref = ref.copy()
        self.builds += 1

    def matches(self, ref: np.ndarray) -> bool:
        """Whether the list was built from exactly these positions."""
        return self.ref is not None and self.ref.shape == ref.shape and np.array_equal(self.ref, ref)

    def stale(self, pos: np.ndarray) -> bool:
        """Whether a particle moved more than half the skin since the build."""
        return _max_displacement2(pos, self.ref) > (0.5 * self.skin) ** 2


@register("ParticleState")
@dataclass(frozen=True, eq=False)
class ParticleState:
    """Everything a particle run (DPD, CG MD) needs to continue (plain data).

    ``positions`` are unwrapped; ``forces`` are those of the last step (conservative only for the
    Shardlow integrator and Langevin, with the pair noise for DPD's ``"vv"``),
    ``ref_positions`` those the pair list was last built from, ``rng`` the xoshiro256** words, ``step`` the steps done, ``box`` the box when it
    changes during the run (constant pressure; ``None``: the engine's)."""

    positions: np.ndarray
    velocities: np.ndarray
    forces: np.ndarray
    ref_positions: np.ndarray
    rng: np.ndarray
    step: int = 0
    box: np.ndarray | None = None

    def to_state(self) -> dict:
        out = {"positions": self.positions, "velocities": self.velocities, "forces": self.forces,
               "ref_positions": self.ref_positions, "rng": self.rng, "step": int(self.step)}
        if self.box is not None:
            out["box"] = self.box
        return out

    @classmethod
    def from_state(cls, s: dict) -> "ParticleState":
        return cls(positions=np.array(s["positions"], dtype=float),
                   velocities=np.array(s["velocities"], dtype=float),
                   forces=np.array(s["forces"], dtype=float),
                   ref_positions=np.array(s["ref_positions"], dtype=float),
                   rng=np.array(s["rng"], dtype=np.uint64), step=int(s["step"]),
                   box=None if s.get("box") is None else np.array(s["box"], dtype=float))


@njit(cache=True)
def _shardlow_sweep(pos, vel, invm, pi, pj, S, gamma, kT, rc, dt, rng):
    """DPD's pair thermostat, Shardlow-split: the exact Ornstein-Uhlenbeck update of every
    pair's relative velocity along its axis, pair by pair (weight ``(1 - r/rc)^2``, friction
    ``gamma``; see :mod:`scaleladder.mesoscale.dpd`)."""
    rc2 = rc * rc
    for p in range(pi.size):
        i, j, dx, dy, dz, r2 = pair_delta(pos, pi, pj, S, p)
        if r2 >= rc2 or r2 == 0.0:
            continue
        r = math.sqrt(r2)
        ex = dx / r
        ey = dy / r
        ez = dz / r
        w = 1.0 - r / rc
        mu = 1.0 / (invm[i] + invm[j])
        u = (vel[i, 0] - vel[j, 0]) * ex + (vel[i, 1] - vel[j, 1]) * ey \
            + (vel[i, 2] - vel[j, 2]) * ez
        c = math.exp(-gamma * w * w / mu * dt)
        un = u * c + math.sqrt(kT / mu * (1.0 - c * c)) * _normal(rng)
        dp = mu * (un - u)
        vel[i, 0] += dp * invm[i] * ex
        vel[i, 1] += dp * invm[i] * ey
        vel[i, 2] += dp * invm[i] * ez
        vel[j, 0] -= dp * invm[j] * ex
        vel[j, 1] -= dp * invm[j] * ey
        vel[j, 2] -= dp * invm[j] * ez


def maxwell_boltzmann(masses: np.ndarray, kT: float, seed: int) -> np.ndarray:
    """Velocities from the Maxwell-Boltzmann distribution at ``kT`` (the engine's units), the
    total momentum removed; drawn from ``SeedSequence(seed, spawn_key=(1,))``."""
    m = np.asarray(masses, dtype=float)
    gen = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    v = gen.standard_normal((m.size, 3)) * np.sqrt(kT / m)[:, None]
    return v - (m[:, None] * v).sum(axis=0) / m.sum()


def check_blowup(what: str, step: int, temperature: float, target: float, positions: np.ndarray,
                 time_step: str) -> None:
    """The particle engines' blow-up check: non-finite positions, or a kinetic temperature off
    the target by more than a factor 10 (``CalculationError`` naming the step and time step)."""
    if not (np.isfinite(temperature) and np.all(np.isfinite(positions))):
        raise CalculationError(f"{what} step {step}: non-finite positions or velocities; reduce "
                               f"the time step {time_step}")
    if not target / 10 <= temperature <= 10 * target:
        raise CalculationError(f"{what} step {step}: kinetic temperature {temperature:.4g} left "
                               f"[{target / 10:.4g}, {10 * target:.4g}]: the integration is "
                               f"unstable at {time_step}; reduce it (or the potential is too "
                               f"steep)")


@njit(cache=True, inline="always")
def baoab_drift(pos, vel, F, invm, dt, c, s_ou, kT, rng):
    """The first part of a BAOAB Langevin step (Leimkuhler & Matthews): half kick B, half drift
    A, the exact Ornstein-Uhlenbeck O (``c = exp(-friction dt)``, ``s_ou = sqrt(1 - c^2)``), half
    drift A.  The closing B needs the new forces."""
    for i in range(pos.shape[0]):
        sd = s_ou * math.sqrt(kT * invm[i])
        for d in range(3):
            vel[i, d] += 0.5 * dt * F[i, d] * invm[i]
            pos[i, d] += 0.5 * dt * vel[i, d]
            vel[i, d] = c * vel[i, d] + sd * _normal(rng)
            pos[i, d] += 0.5 * dt * vel[i, d]
