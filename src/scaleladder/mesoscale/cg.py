"""Bottom-up coarse-graining: mapping, structure, a CG MD engine, IBI and force matching.

Units are the atomistic rung's: Å, eV, amu, fs, K, pressures in bar.  Trajectories arrive and
potentials leave as handoffs (:class:`~scaleladder.handoffs.CGTrajectory`,
:class:`~scaleladder.handoffs.CGPotential`).

Mapping
    :func:`map_trajectory` turns atomistic frames (ASE ``Atoms`` with forces, from the project's
    MD, LAMMPS, OpenMM or any ASE-readable file) into beads: each bead the mass-weighted (or
    geometric) centre of its atoms, made whole across the periodic boundary, and the force on it the
    sum of the forces on its atoms (the mapped force that force matching fits).  Mappings come
    from :func:`one_bead_per_molecule` and :func:`chain_mapping` (MARTINI-like, a bead per
    ``atoms_per_bead`` consecutive heavy atoms with their hydrogens) or are given; every atom must
    belong to exactly one bead.
Structure
    :func:`rdf` (per pair of bead types, bonded pairs optionally excluded).
Engine
    :func:`run_cg_md`: tabulated pair potentials on the project's Verlet lists, Langevin (BAOAB;
    Leimkuhler & Matthews 2013) or DPD's momentum-conserving pair thermostat (exact pair
    Ornstein-Uhlenbeck sub-steps, Shardlow-split), as an engine of the one simulation protocol.
Methods
    :func:`iterative_boltzmann_inversion` (Reith, Pütz & Müller-Plathe 2003, with their linear
    pressure correction) and :func:`force_match` (multiscale coarse-graining: Izvekov & Voth
    2005; Noid et al. 2008 — linear least squares on a cubic B-spline basis, smoothness
    regularised, the uncertainty from independent blocks of frames).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numba import njit

from ..core.codec import register
from ..core.errors import InputError
from ..core.simulation import run_simulation
from ..core.units import BOLTZMANN_EV
from ..core.validate import in_range, one_of, positive, positive_int
from ..core.validate import seed as _check_seed
from ..handoffs.coarse_grained import CGPotential, CGTrajectory, pair_key
from . import _manybody as _mb
from ._rng import uniform as _uniform
from ._rng import seed_words
from .particles import _HALF_SHELL, PairList, ParticleState, _max_displacement2, _pairs, \
    _shardlow_sweep, baoab_drift, check_blowup, maxwell_boltzmann, minimum_image, pair_delta

__all__ = ["cg_lattice", "map_trajectory", "one_bead_per_molecule", "chain_mapping", "rdf", "tabulate_pair",
           "run_cg_md", "CGEngine", "CGRun", "iterative_boltzmann_inversion", "IBIResult",
           "force_match", "bond_boltzmann_inversion", "angle_boltzmann_inversion",
           "relative_entropy", "relative_entropy_gradient", "inverse_monte_carlo",
           "NewtonCGResult", "cg_time_step_limit_fs", "diffusion_coefficient", "coordination_number",
           "first_minimum",
           "EV_PER_A3_IN_BAR"]

logger = logging.getLogger(__name__)

#: 1 eV/Å^3 in bar
EV_PER_A3_IN_BAR = 1.602176634e-19 / 1e-30 / 1e5
def _ase_fs() -> float:
    """1 fs in ASE's time unit (Å sqrt(amu / eV))."""
    from ase import units
    return float(units.fs)


# =============================================================================== mapping
def one_bead_per_molecule(n_atoms: int, atoms_per_molecule: int) -> list[list[int]]:
    """Beads = consecutive molecules of ``atoms_per_molecule`` atoms (e.g. 3 for water O, H, H)."""
    n_atoms = positive_int("n_atoms", n_atoms)
    k = positive_int("atoms_per_molecule", atoms_per_molecule)
    if n_atoms % k:
        raise InputError("atoms_per_molecule", k, f"a divisor of the {n_atoms} atoms")
    return [list(range(i, i + k)) for i in range(0, n_atoms, k)]


def chain_mapping(symbols: Sequence[str], chain_length: int, atoms_per_bead: int = 4,
                  bonds: Sequence[tuple[int, int]] | None = None) -> list[list[int]]:
    """A MARTINI-like mapping of linear chains: each run of ``atoms_per_bead`` consecutive heavy
    atoms (non-H) of a chain and the hydrogens bonded to them (``bonds``; without bonds, each H
    goes with the heavy atom just before it) form one bead.  Chains are ``chain_length``
    consecutive atoms; a remainder of fewer heavy atoms closes the chain as a smaller bead."""
    symbols = [str(s) for s in symbols]
    chain_length = positive_int("chain_length", chain_length)
    per = positive_int("atoms_per_bead", atoms_per_bead)
    n = len(symbols)
    if n % chain_length:
        raise InputError("chain_length", chain_length, f"a divisor of the {n} atoms")
    owner = {}
    if bonds is not None:
        for i, j in bonds:
            i, j = int(i), int(j)
            if symbols[i] == "H" and symbols[j] != "H":
                owner[i] = j
            elif symbols[j] == "H" and symbols[i] != "H":
                owner[j] = i
    beads: list[list[int]] = []
    for c0 in range(0, n, chain_length):
        idx = range(c0, c0 + chain_length)
        heavy = [i for i in idx if symbols[i] != "H"]
        if not heavy:
            raise InputError("symbols", symbols[c0:c0 + chain_length], "chains with heavy atoms")
        group_of = {}
        for g, k in enumerate(range(0, len(heavy), per)):
            for i in heavy[k:k + per]:
                group_of[i] = len(beads) + g
        n_groups = (len(heavy) + per - 1) // per
        members: list[list[int]] = [[] for _ in range(n_groups)]
        last_heavy = heavy[0]
        for i in idx:
            if symbols[i] != "H":
                last_heavy = i
                members[group_of[i] - len(beads)].append(i)
            else:
                h = owner.get(i, last_heavy)
                if h not in group_of:
                    raise InputError("bonds", (i, h), "hydrogens bonded to heavy atoms of their chain")
                members[group_of[h] - len(beads)].append(i)
        beads.extend(sorted(m) for m in members)
    return beads


def _check_mapping(mapping, n_atoms: int) -> list[np.ndarray]:
    if not isinstance(mapping, (list, tuple)) or not mapping:
        raise InputError("mapping", type(mapping).__name__, "a list of atom-index lists, one per bead")
    seen = np.zeros(n_atoms, dtype=int)
    out = []
    for b, atoms in enumerate(mapping):
        idx = np.asarray(list(atoms), dtype=np.int64)
        if idx.size == 0:
            raise InputError(f"mapping[{b}]", list(atoms), "at least one atom per bead")
        if idx.min() < 0 or idx.max() >= n_atoms:
            raise InputError(f"mapping[{b}]", idx.tolist(), f"atom indices in [0, {n_atoms})")
        np.add.at(seen, idx, 1)
        out.append(idx)
    twice = np.flatnonzero(seen > 1)
    if twice.size:
        raise InputError("mapping", f"atoms {twice[:10].tolist()} in more than one bead",
                         "each atom in exactly one bead")
    missing = np.flatnonzero(seen == 0)
    if missing.size:
        raise InputError("mapping", f"atoms {missing[:10].tolist()} in no bead "
                         f"({missing.size} unassigned)", "each atom in exactly one bead")
    return out


def map_trajectory(frames: Sequence[Any], mapping, *, temperature_K: float,
                   bead_types: Sequence[str] | None = None, weights: str = "mass",
                   forces: bool | None = None, bonds: Sequence[tuple[int, int]] | None = None,
                   frame_interval_fs: float = 0.0, info: dict | None = None,
                   angles: Sequence[tuple[int, int, int]] | None = None) -> CGTrajectory:
    """Map atomistic frames onto beads.

    Parameters
    ----------
    frames : sequence of ase.Atoms
        An orthorhombic periodic box (constant).  Forces are read from ``atoms.arrays["forces"]``
        or the attached calculator's results when present.
    mapping : list of atom-index lists
        One list per bead; every atom in exactly one bead.
    temperature_K : float
        The ensemble's temperature.
    bead_types : sequence of str, optional
        Type name per bead (default: all ``"B"``).
    weights : {"mass", "geometry"}
        Centre of mass or of geometry.
    forces : bool, optional
        Require (True) or skip (False) forces; default: map them when every frame has them.
    bonds : pairs of bead indices, optional
    angles : triples of bead indices (angle at the middle one), optional
    frame_interval_fs : float
        Time between frames.

    Raises
    ------
    InputError
        Unassigned or doubly assigned atoms, a non-orthorhombic or changing box, frames of
        different sizes, forces required but missing.
    """
    from ase import Atoms
    if not isinstance(frames, (list, tuple)) or not frames or \
            not all(isinstance(a, Atoms) for a in frames):
        raise InputError("frames", type(frames).__name__, "a non-empty list of ase.Atoms")
    n_atoms = len(frames[0])
    groups = _check_mapping(mapping, n_atoms)
    one_of("weights", weights, ("mass", "geometry"))
    cell = np.asarray(frames[0].cell)
    if not np.all(frames[0].pbc) or np.any(np.abs(cell - np.diag(np.diag(cell))) > 1e-9):
        raise InputError("frames", "cell " + str(np.round(cell, 4).tolist()),
                         "a periodic orthorhombic box (diagonal cell)")
    box = np.diag(cell).copy()
    nb = len(groups)
    names = ["B"] if bead_types is None else list(dict.fromkeys(str(t) for t in bead_types))
    if bead_types is not None and len(bead_types) != nb:
        raise InputError("bead_types", len(bead_types), f"one type per bead ({nb})")
    types = np.zeros(nb, dtype=np.int64) if bead_types is None else \
        np.array([names.index(str(t)) for t in bead_types], dtype=np.int64)
    m_atoms = frames[0].get_masses()
    w = [m_atoms[g] if weights == "mass" else np.ones(g.size) for g in groups]
    bead_mass = np.array([m_atoms[g].sum() for g in groups])
    masses = np.zeros(len(names))
    for t in range(len(names)):
        mt = bead_mass[types == t]
        if not np.allclose(mt, mt[0], rtol=1e-9):
            raise InputError("bead_types", names[t], "beads of one type with one mass")
        masses[t] = mt[0]

    def frame_forces(a):
        if "forces" in a.arrays:
            return np.asarray(a.arrays["forces"])
        calc = a.calc
        if calc is not None and "forces" in getattr(calc, "results", {}):
            return np.asarray(calc.results["forces"])
        return None

    have = [frame_forces(a) for a in frames]
    if forces is None:
        forces = all(f is not None for f in have)
    elif forces and any(f is None for f in have):
        k = next(i for i, f in enumerate(have) if f is None)
        raise InputError("frames", f"frame {k} without forces", "forces on every frame "
                         "(atoms.arrays['forces'] or a calculator's results)")
    P = np.empty((len(frames), nb, 3))
    Fb = np.empty((len(frames), nb, 3)) if forces else None
    bead_of = np.empty(n_atoms, dtype=np.int64)
    watom = np.empty(n_atoms)
    for b, g in enumerate(groups):
        bead_of[g] = b
        watom[g] = w[b]
    first = np.array([g[0] for g in groups])
    wsum = np.bincount(bead_of, weights=watom, minlength=nb)
    for f, a in enumerate(frames):
        if len(a) != n_atoms:
            raise InputError("frames", f"frame {f} has {len(a)} atoms", f"{n_atoms} atoms in every frame")
        if not np.allclose(np.diag(np.asarray(a.cell)), box, rtol=1e-9):
            raise InputError("frames", f"frame {f} box {np.diag(np.asarray(a.cell)).tolist()}",
                             "one constant box (NVT frames)")
        x = a.positions
        d = x - x[first[bead_of]]
        d -= box * np.round(d / box)                     # make every bead whole
        for k in range(3):
            P[f, :, k] = x[first, k] + np.bincount(bead_of, weights=watom * d[:, k],
                                                     minlength=nb) / wsum
            if forces:
                Fb[f, :, k] = np.bincount(bead_of, weights=have[f][:, k], minlength=nb)
    return CGTrajectory(P, box, types, names, masses, temperature_K, Fb,
                        None if bonds is None else np.asarray(bonds, dtype=np.int64),
                        frame_interval_fs, dict(info or {}, mapping_beads=nb, weights=weights),
                        None if angles is None else np.asarray(angles, dtype=np.int64))


def cg_lattice(n_beads: int, density_per_A3: float, *, mass_amu: float, temperature_K: float,
               type_name: str = "B", seed: int = 0) -> CGTrajectory:
    """A one-frame start: ``n_beads`` beads of one type on a simple cubic lattice (slightly
    jittered) in a cubic box at ``density_per_A3``."""
    n = positive_int("n_beads", n_beads, 2)
    rho = positive("density_per_A3", density_per_A3)
    L = (n / rho) ** (1.0 / 3.0)
    k = int(math.ceil(n ** (1.0 / 3.0)))
    g = (np.stack(np.meshgrid(*[np.arange(k)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n] + 0.5)
    gen = np.random.default_rng(_check_seed("seed", seed))
    pos = g * (L / k) + gen.normal(scale=0.02 * L / k, size=(n, 3))
    return CGTrajectory(pos[None], np.full(3, L), np.zeros(n, dtype=np.int64), [type_name],
                        [positive("mass_amu", mass_amu)], temperature_K,
                        info={"source": "cg_lattice"})


# =============================================================================== structure
def _bonded_set(bonds: np.ndarray) -> set:
    return {(min(int(i), int(j)), max(int(i), int(j))) for i, j in bonds}


def rdf(traj: CGTrajectory, a: str | None = None, b: str | None = None, *, r_max: float,
        bin_width: float = 0.05, exclude_bonded: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Radial distribution function g_ab(r) averaged over the frames.

    Returns ``(r, g)``: bin centres (Å) and g, normalised by the ideal-gas count of the ``b``
    beads around each ``a`` bead (``N_b - [a == b]`` partners in the box volume).  ``r_max``
    must be below half the shortest box length."""
    if not isinstance(traj, CGTrajectory):
        raise InputError("traj", type(traj).__name__, "a CGTrajectory")
    names = traj.type_names
    a = names[0] if a is None else one_of("a", a, names)
    b = a if b is None else one_of("b", b, names)
    r_max = positive("r_max", r_max)
    bin_width = positive("bin_width", bin_width)
    if r_max >= 0.5 * traj.box.min():
        raise InputError("r_max", r_max, f"less than half the shortest box length "
                         f"({0.5 * traj.box.min():.4g} Å)")
    if bin_width > 0.5 * r_max:
        raise InputError("bin_width", bin_width, f"a bin width well below r_max = {r_max:g} Å")
    nbins = int(round(r_max / bin_width))
    edges = np.linspace(0.0, nbins * bin_width, nbins + 1)
    ta, tb = names.index(a), names.index(b)
    ia = np.flatnonzero(traj.types == ta)
    ib = np.flatnonzero(traj.types == tb)
    excl = _bonded_set(traj.bonds) if exclude_bonded else set()
    hist = np.zeros(nbins)
    pl = PairList(traj.box, edges[-1], 0.0)
    n_excluded = 0
    for f in range(traj.n_frames):
        pl.build(traj.positions[f])
        i, j = pl.i, pl.j
        ti, tj = traj.types[i], traj.types[j]
        sel = ((ti == ta) & (tj == tb)) | ((ti == tb) & (tj == ta))
        i, j = i[sel], j[sel]
        d = traj.positions[f][i] - traj.positions[f][j] - pl.shift[sel]
        r = np.sqrt(np.einsum("ij,ij->i", d, d))
        if excl:
            keep = np.array([(min(x, y), max(x, y)) not in excl for x, y in zip(i, j)], dtype=bool)
            n_excluded += int((~keep).sum())
            r = r[keep]
        h, _ = np.histogram(r, bins=edges)
        hist += h if ta != tb else 2.0 * h          # ordered pairs around each a
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    partners = ib.size - (1 if ta == tb else 0)
    norm = traj.n_frames * ia.size * partners / traj.volume_A3 * shell
    g = hist / norm
    return 0.5 * (edges[1:] + edges[:-1]), g


# =============================================================================== tables
def tabulate_pair(fn, r_A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(energy, force)`` tables of a pair energy function ``fn(r) -> eV`` on ``r_A``, shifted to
    zero at the last point; the force by central differences of the analytic function."""
    r = np.asarray(r_A, dtype=float)
    h = 1e-5
    e = np.asarray(fn(r), dtype=float)
    f = -(np.asarray(fn(r + h)) - np.asarray(fn(r - h))) / (2 * h)
    return e - e[-1], f


def _energy_from_force(r: np.ndarray, f: np.ndarray) -> np.ndarray:
    """U(r) = integral_r^rc f dr' (trapezoid), zero at the cutoff."""
    seg = 0.5 * (f[1:] + f[:-1]) * np.diff(r)
    return np.concatenate([np.cumsum(seg[::-1])[::-1], [0.0]])


def _force_from_energy(r: np.ndarray, u: np.ndarray) -> np.ndarray:
    return -np.gradient(u, r)


def _tables(pot: CGPotential, names: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k = len(names)
    index = np.zeros((k, k), dtype=np.int64)
    keys = pot.pairs
    for x in range(k):
        for y in range(k):
            index[x, y] = keys.index(pair_key(names[x], names[y]))
    E = np.array([pot.pair_energy_eV[key] for key in keys])
    F = np.array([pot.pair_force_eV_per_A[key] for key in keys])
    return index, E, F


@njit(cache=True, inline="always")
def _pair_table(r, t, r0, dr, E, Ft):
    """Force, energy and whether ``r`` is inside table ``t``: the force linearly interpolated
    (below the grid its first value), the energy the integral of the interpolated force within
    the segment, so that the forces are exactly minus its gradient (energy conservation; LAMMPS's
    linear tables interpolate the two separately, inconsistent at O(dr^2 f''))."""
    x = (r - r0) / dr
    if x <= 0.0:
        return Ft[t, 0], E[t, 0], True
    k = int(x)
    if k >= E.shape[1] - 1:
        return 0.0, 0.0, False
    w = x - k
    f = (1.0 - w) * Ft[t, k] + w * Ft[t, k + 1]
    return f, E[t, k] - dr * (Ft[t, k] * w + 0.5 * (Ft[t, k + 1] - Ft[t, k]) * w * w), True


@njit(cache=True)
def _table_forces(pos, typ, pi, pj, S, index, r0, dr, E, Ft, rc, F):
    """Tabulated pair forces (linear interpolation of the force, the energy its integral from the
    grid point below; below the grid the first values): fills F, returns (energy, virial r.F)."""
    F[:] = 0.0
    U = 0.0
    W = 0.0
    rc2 = rc * rc
    for p in range(pi.size):
        i, j, dx, dy, dz, r2 = pair_delta(pos, pi, pj, S, p)
        if r2 >= rc2 or r2 == 0.0:
            continue
        r = math.sqrt(r2)
        f, e, inside = _pair_table(r, index[typ[i], typ[j]], r0, dr, E, Ft)
        if not inside:
            continue
        s = f / r
        F[i, 0] += s * dx
        F[i, 1] += s * dy
        F[i, 2] += s * dz
        F[j, 0] -= s * dx
        F[j, 1] -= s * dy
        F[j, 2] -= s * dz
        U += e
        W += f * r
    return U, W


@njit(cache=True, inline="always")
def _lin_table(x0, dx, E, Fo, x):
    """Force and energy (integral of the force) of a uniform table at ``x``; outside it the force
    continues linearly from the end segment."""
    m = Fo.size
    t = (x - x0) / dx
    if t <= 0.0:
        k = 0
    elif t >= m - 1:
        k = m - 2
    else:
        k = int(t)
    w = t - k
    f = (1.0 - w) * Fo[k] + w * Fo[k + 1]
    e = E[k] - dx * (Fo[k] * w + 0.5 * (Fo[k + 1] - Fo[k]) * w * w)
    return f, e


@njit(cache=True)
def _bonded_forces(pos, L, bonds, b0, bdx, bE, bF, angles, aE, aT, excl, typ, index, r0, dr, E,
                   Ft, rc, F):
    """Bonds, angles, and the removal of the excluded pairs' nonbonded terms: adds to F, returns
    (energy, virial)."""
    U = 0.0
    W = 0.0
    for b in range(bonds.shape[0]):
        i = bonds[b, 0]
        j = bonds[b, 1]
        d0 = minimum_image(pos[i, 0] - pos[j, 0], L[0])
        d1 = minimum_image(pos[i, 1] - pos[j, 1], L[1])
        d2 = minimum_image(pos[i, 2] - pos[j, 2], L[2])
        r = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
        f, e = _lin_table(b0, bdx, bE, bF, r)
        s = f / r
        F[i, 0] += s * d0
        F[i, 1] += s * d1
        F[i, 2] += s * d2
        F[j, 0] -= s * d0
        F[j, 1] -= s * d1
        F[j, 2] -= s * d2
        U += e
        W += f * r
    m = aT.size
    dth = math.pi / (m - 1)
    for q in range(angles.shape[0]):
        i = angles[q, 0]
        j = angles[q, 1]
        k = angles[q, 2]
        a0 = minimum_image(pos[i, 0] - pos[j, 0], L[0])
        a1 = minimum_image(pos[i, 1] - pos[j, 1], L[1])
        a2 = minimum_image(pos[i, 2] - pos[j, 2], L[2])
        c0 = minimum_image(pos[k, 0] - pos[j, 0], L[0])
        c1 = minimum_image(pos[k, 1] - pos[j, 1], L[1])
        c2 = minimum_image(pos[k, 2] - pos[j, 2], L[2])
        la = math.sqrt(a0 * a0 + a1 * a1 + a2 * a2)
        lc = math.sqrt(c0 * c0 + c1 * c1 + c2 * c2)
        cs = (a0 * c0 + a1 * c1 + a2 * c2) / (la * lc)
        cs = min(1.0, max(-1.0, cs))
        th = math.acos(cs)
        sn = max(math.sqrt(1.0 - cs * cs), 1e-8)
        tq, e = _lin_table(0.0, dth, aE, aT, th)
        # F_i = tau dtheta/dx_i, dtheta/dx_i = -(c_hat - cos a_hat) / (|a| sin)
        g = -tq / sn
        fi0 = g * (c0 / lc - cs * a0 / la) / la
        fi1 = g * (c1 / lc - cs * a1 / la) / la
        fi2 = g * (c2 / lc - cs * a2 / la) / la
        fk0 = g * (a0 / la - cs * c0 / lc) / lc
        fk1 = g * (a1 / la - cs * c1 / lc) / lc
        fk2 = g * (a2 / la - cs * c2 / lc) / lc
        F[i, 0] += fi0
        F[i, 1] += fi1
        F[i, 2] += fi2
        F[k, 0] += fk0
        F[k, 1] += fk1
        F[k, 2] += fk2
        F[j, 0] -= fi0 + fk0
        F[j, 1] -= fi1 + fk1
        F[j, 2] -= fi2 + fk2
        U += e
        W += a0 * fi0 + a1 * fi1 + a2 * fi2 + c0 * fk0 + c1 * fk1 + c2 * fk2
    rc2 = rc * rc
    for p in range(excl.shape[0]):
        i = excl[p, 0]
        j = excl[p, 1]
        d0 = minimum_image(pos[i, 0] - pos[j, 0], L[0])
        d1 = minimum_image(pos[i, 1] - pos[j, 1], L[1])
        d2 = minimum_image(pos[i, 2] - pos[j, 2], L[2])
        r2 = d0 * d0 + d1 * d1 + d2 * d2
        if r2 >= rc2 or r2 == 0.0:
            continue
        r = math.sqrt(r2)
        f, e, inside = _pair_table(r, index[typ[i], typ[j]], r0, dr, E, Ft)
        if not inside:
            continue
        s = f / r                      # remove what the pair loop added
        F[i, 0] -= s * d0
        F[i, 1] -= s * d1
        F[i, 2] -= s * d2
        F[j, 0] += s * d0
        F[j, 1] += s * d1
        F[j, 2] += s * d2
        U -= e
        W -= f * r
    return U, W


@njit(cache=True)
def _all_forces(pos, typ, pi, pj, S, index, r0, dr, E, Ft, rc, mb, mu, eta, rcm, scale, centres,
                coef, ell, bonded, L, bonds, b0, bdx, bE, bF, angles, aE, aT, excl, F):
    """Pair tables, with ``mb`` the many-body kernel term, with ``bonded`` bonds, angles and the
    exclusions: fills F, returns (U, W)."""
    U, W = _table_forces(pos, typ, pi, pj, S, index, r0, dr, E, Ft, rc, F)
    if bonded:
        Ub, Wb = _bonded_forces(pos, L, bonds, b0, bdx, bE, bF, angles, aE, aT, excl, typ, index,
                                r0, dr, E, Ft, rc, F)
        U += Ub
        W += Wb
    if mb:
        G = _mb.descriptors(pos, pi, pj, S, mu, eta, rcm, scale)
        Emb, dG = _mb.energy_and_dG(G, centres, coef, ell)
        W += _mb.pair_forces_from_dG(pos, pi, pj, S, dG, mu, eta, rcm, scale, F)
        U += Emb
    return U, W


@njit(cache=True)
def _advance_cg(pos, vel, F, invm, typ, L, nc, cells, rlist, skin, pi, pj, S, ref, index, r0,
                dr, E, Ft, rc, dt, kT, friction, dpd, pair_gamma, rng, nsteps, shell, mb, mu,
                eta, rcm, scale, centres, coef, ell, bonded, Lb, bonds, b0, bdx, bE, bF, angles,
                aE, aT, excl):
    n = pos.shape[0]
    half_skin2 = (0.5 * skin) ** 2
    c = math.exp(-friction * dt)
    s_ou = math.sqrt(1.0 - c * c)
    builds = 0
    for _ in range(nsteps):
        if dpd:
            _shardlow_sweep(pos, vel, invm, pi, pj, S, pair_gamma, kT, rc, dt, rng)
            for i in range(n):
                for d in range(3):
                    vel[i, d] += 0.5 * dt * F[i, d] * invm[i]
                    pos[i, d] += dt * vel[i, d]
        else:                                   # BAOAB
            baoab_drift(pos, vel, F, invm, dt, c, s_ou, kT, rng)
        if _max_displacement2(pos, ref) > half_skin2:
            pi, pj, S = _pairs(pos, L, nc, cells, rlist, shell)
            ref = pos.copy()
            builds += 1
        _all_forces(pos, typ, pi, pj, S, index, r0, dr, E, Ft, rc, mb, mu, eta, rcm, scale,
                    centres, coef, ell, bonded, Lb, bonds, b0, bdx, bE, bF, angles, aE, aT, excl,
                    F)
        for i in range(n):
            for d in range(3):
                vel[i, d] += 0.5 * dt * F[i, d] * invm[i]
    return pi, pj, S, ref, builds


# =============================================================================== engine
@njit(cache=True)
def _two_uniforms(rng):
    return _uniform(rng), _uniform(rng)


def _bonded_args(potential: CGPotential, bonds: np.ndarray, angles: np.ndarray,
                 box: np.ndarray) -> tuple:
    """The numba arguments of the bonded terms (uniform tables), or inert ones."""
    L = np.asarray(box, dtype=float)
    if not bonds.size and not angles.size:
        z = np.zeros(2)
        return (False, L, np.zeros((0, 2), np.int64), 0.0, 1.0, z, z, np.zeros((0, 3), np.int64),
                z, z, np.zeros((0, 2), np.int64))
    if bonds.size and not potential.bond:
        raise InputError("potential.bond", None, "a bond table for a system with bonds")
    if angles.size and not potential.angle:
        raise InputError("potential.angle", None, "an angle table for a system with angles")
    z = np.zeros(2)
    b0, bdx, bE, bF = 0.0, 1.0, z, z
    if potential.bond:
        rb = np.asarray(potential.bond["r_A"])
        grid = np.linspace(rb[0], rb[-1], max(rb.size, 200))
        bE = np.interp(grid, rb, potential.bond["energy_eV"])
        bF = np.interp(grid, rb, potential.bond["force_eV_per_A"])
        b0, bdx = float(grid[0]), float(grid[1] - grid[0])
    aE, aT = z, z
    if potential.angle:
        aE = np.asarray(potential.angle["energy_eV"], dtype=float)
        aT = np.asarray(potential.angle["torque_eV_per_rad"], dtype=float)
    excl = np.concatenate([bonds, angles[:, [0, 2]]]) if angles.size else bonds
    excl = np.unique(np.sort(excl, axis=1), axis=0) if excl.size else np.zeros((0, 2), np.int64)
    return (True, L, np.ascontiguousarray(bonds), b0, bdx, bE, bF, np.ascontiguousarray(angles),
            aE, aT, np.ascontiguousarray(excl, dtype=np.int64))


@register("CGEngine")
class CGEngine:
    """CG molecular dynamics with tabulated pair potentials, as an engine of the one simulation
    protocol (use :func:`run_cg_md`).  Internal units: Å, eV, amu and ASE's time unit."""

    kind = "scaleladder.cg-md/1"

    def __init__(self, potential: CGPotential, box, types, *, temperature_K: float, dt_fs: float,
                 thermostat: str, friction_per_fs: float, skin: float = 1.0, bonds=None,
                 angles=None, pressure_bar: float | None = None, barostat_every: int = 10,
                 max_dlnv: float = 0.01):
        self.pressure_bar = None if pressure_bar is None else float(pressure_bar)
        self.barostat_every, self.max_dlnv = int(barostat_every), float(max_dlnv)
        self.potential = potential
        self.box = np.asarray(box, dtype=float)
        self.types = np.asarray(types, dtype=np.int64)
        self.temperature_K, self.dt_fs = float(temperature_K), float(dt_fs)
        self.thermostat, self.friction_per_fs, self.skin = thermostat, float(friction_per_fs), float(skin)
        self._skin0 = self.skin
        fs = _ase_fs()
        self.dt = self.dt_fs * fs
        self.friction = self.friction_per_fs / fs
        self.kT = BOLTZMANN_EV * self.temperature_K
        self.invm = 1.0 / np.asarray(potential.masses)[self.types]
        self.index, self.E, self.F = _tables(potential, potential.type_names)
        r = potential.r_A
        self.r0, self.dr, self.rc = float(r[0]), float(r[1] - r[0]), float(r[-1])
        # DPD pair friction with the same single-particle damping rate as the Langevin friction
        # would give in a dense fluid: gamma_pair = friction * m (per unit weight)
        self.pair_gamma = self.friction * float(np.mean(1.0 / self.invm))
        self.pairs = PairList(self.box, self.rc, self.skin)
        mbd = potential.many_body
        self.mb = bool(mbd)
        if self.mb:
            self.mb_args = (True, np.asarray(mbd["mu_A"], dtype=float), float(mbd["eta_per_A2"]),
                            float(mbd["r_cut_A"]), np.asarray(mbd["scale"], dtype=float),
                            np.ascontiguousarray(mbd["centres"], dtype=float),
                            np.asarray(mbd["coefficients_eV"], dtype=float),
                            float(mbd["length_scale"]))
        else:
            self.mb_args = (False, np.zeros(1), 1.0, 1.0, np.ones(1), np.zeros((1, 1)),
                            np.zeros(1), 1.0)

        self.bonds = np.zeros((0, 2), np.int64) if bonds is None else np.asarray(bonds, np.int64)
        self.angles = np.zeros((0, 3), np.int64) if angles is None else np.asarray(angles, np.int64)
        self.bonded_args = _bonded_args(potential, self.bonds, self.angles, self.box)

    def _forces_into(self, pos, pl, F):
        return _all_forces(pos, self.types, pl.i, pl.j, pl.shift, self.index, self.r0, self.dr,
                           self.E, self.F, self.rc, *self.mb_args, *self.bonded_args, F)

    def to_state(self) -> dict:
        return {"potential": self.potential, "box": self.box, "types": self.types,
                "temperature_K": self.temperature_K, "dt_fs": self.dt_fs,
                "thermostat": self.thermostat, "friction_per_fs": self.friction_per_fs,
                "skin": self.skin, "bonds": self.bonds, "angles": self.angles,
                "pressure_bar": self.pressure_bar, "barostat_every": self.barostat_every,
                "max_dlnv": self.max_dlnv}

    @classmethod
    def from_state(cls, s: dict) -> "CGEngine":
        return cls(s["potential"], s["box"], s["types"], temperature_K=s["temperature_K"],
                   dt_fs=s["dt_fs"], thermostat=s["thermostat"],
                   friction_per_fs=s["friction_per_fs"], skin=s["skin"], bonds=s["bonds"],
                   angles=s["angles"], pressure_bar=s.get("pressure_bar"),
                   barostat_every=s.get("barostat_every", 10), max_dlnv=s.get("max_dlnv", 0.01))

    @property
    def volume(self) -> float:
        return float(np.prod(self.box))

    def _set_box(self, box) -> None:
        """Point the engine's caches (pair list, bonded minimum images) at ``box``."""
        box = np.asarray(box, dtype=float)
        if np.array_equal(box, self.box):
            return
        self.box = box.copy()
        # the requested skin, or what the minimum-image convention leaves in this box
        self.skin = max(0.0, min(self._skin0, 0.9 * (0.5 * float(self.box.min()) - self.rc)))
        self.pairs = PairList(self.box, self.rc, self.skin)
        self.bonded_args = (self.bonded_args[0], self.box) + tuple(self.bonded_args[2:])

    def _list(self, ref: np.ndarray) -> PairList:
        if not self.pairs.matches(ref):
            self.pairs.build(ref)
        return self.pairs

    def _energy(self, pos: np.ndarray, box: np.ndarray) -> float:
        self._set_box(box)
        pl = PairList(self.box, self.rc, 0.0)
        pl.build(pos)
        return float(self._forces_into(pos, pl, np.zeros_like(pos))[0])

    def _volume_move(self, state: ParticleState) -> ParticleState:
        """One Metropolis move of ln V (isotropic, positions scaled with the box):
        accept with min(1, exp(-beta (dU + P dV) + (N + 1) ln(V'/V)))."""
        box = self.box if state.box is None else state.box
        rng = state.rng.copy()
        u1, u2 = _two_uniforms(rng)
        dlnv = self.max_dlnv * (2.0 * u1 - 1.0)
        s = math.exp(dlnv / 3.0)
        v0 = float(np.prod(box))
        u_old = self._energy(state.positions, box)
        new_pos = state.positions * s
        new_box = box * s
        if 0.5 * float(new_box.min()) <= self.rc + 0.05:
            self._set_box(box)
            return ParticleState(state.positions, state.velocities, state.forces,
                                 state.ref_positions, rng, state.step, box.copy())
        u_new = self._energy(new_pos, new_box)
        p = self.pressure_bar / EV_PER_A3_IN_BAR
        n = state.positions.shape[0]
        arg = -(u_new - u_old + p * v0 * (s ** 3 - 1.0)) / self.kT + (n + 1) * dlnv
        if arg >= 0.0 or u2 < math.exp(arg):
            self._set_box(new_box)
            pl = self._list(new_pos)
            F = np.zeros_like(new_pos)
            self._forces_into(new_pos, pl, F)
            return ParticleState(new_pos, state.velocities, F, new_pos.copy(), rng, state.step,
                                 new_box.copy())
        self._set_box(box)
        return ParticleState(state.positions, state.velocities, state.forces, state.ref_positions,
                             rng, state.step, box.copy())

    def forces(self, positions: np.ndarray) -> tuple[np.ndarray, float, float]:
        """``(forces eV/Å, energy eV, virial eV)`` of a configuration."""
        pos = np.ascontiguousarray(positions, dtype=float)
        pl = PairList(self.box, self.rc, 0.0)
        pl.build(pos)
        F = np.zeros_like(pos)
        U, W = self._forces_into(pos, pl, F)
        return F, U, W

    def start(self, positions: np.ndarray, seed: int) -> ParticleState:
        rng = seed_words(seed)
        v = maxwell_boltzmann(1.0 / self.invm, self.kT, seed)
        pos = np.ascontiguousarray(positions, dtype=float)
        pl = self._list(pos)
        F = np.zeros_like(pos)
        self._forces_into(pos, pl, F)
        return ParticleState(positions=pos.copy(), velocities=v, forces=F,
                             ref_positions=pos.copy(), rng=rng, step=0)

    def advance(self, state: ParticleState, n: int):
        if self.pressure_bar is None:
            return self._advance_md(state, int(n))
        # constant pressure: MD between volume moves at absolute multiples of barostat_every
        goal = state.step + int(n)
        while state.step < goal:
            k = min(goal - state.step, self.barostat_every - state.step % self.barostat_every)
            state, _, _ = self._advance_md(state, k)
            if state.step % self.barostat_every == 0:
                state = self._volume_move(state)
        return state, int(n), None

    def _advance_md(self, state: ParticleState, n: int):
        if state.box is not None:
            self._set_box(state.box)
        pos, vel, F = state.positions.copy(), state.velocities.copy(), state.forces.copy()
        rng = state.rng.copy()
        pl = self._list(state.ref_positions)
        pi, pj, S, ref, builds = _advance_cg(
            pos, vel, F, self.invm, self.types, self.box, pl.nc, pl.cells, pl.radius, self.skin,
            pl.i, pl.j, pl.shift, pl.ref.copy(), self.index, self.r0, self.dr, self.E, self.F,
            self.rc, self.dt, self.kT, self.friction, self.thermostat == "dpd", self.pair_gamma,
            rng, int(n), _HALF_SHELL, *self.mb_args, *self.bonded_args)
        if builds:
            pl.i, pl.j, pl.shift, pl.ref = pi, pj, S, ref.copy()
            pl.builds += builds
        return ParticleState(positions=pos, velocities=vel, forces=F, ref_positions=ref.copy(),
                             rng=rng, step=state.step + int(n), box=state.box), int(n), None

    def observe(self, state: ParticleState) -> dict:
        """Kinetic temperature (K), pressure (bar; kinetic + pair virial), pair energy per bead
        (eV); at constant pressure also the volume (Å³) and the mass density (g/cm³)."""
        if state.box is not None:
            self._set_box(state.box)
        m = 1.0 / self.invm
        v = state.velocities
        twice_k = float(np.sum(m[:, None] * v * v))
        n = v.shape[0]
        pl = self._list(state.ref_positions)
        scratch = np.zeros_like(state.positions)
        U, W = self._forces_into(state.positions, pl, scratch)
        dof = 3 * n - (3 if self.thermostat == "dpd" else 0)
        out = {"temperature_K": twice_k / dof / BOLTZMANN_EV,
               "pressure_bar": (twice_k + W) / (3.0 * self.volume) * EV_PER_A3_IN_BAR,
               "potential_energy_eV": U / n}
        if self.pressure_bar is not None:
            out["volume_A3"] = self.volume
            out["density_g_cm3"] = float(m.sum()) / 6.02214076e23 / (self.volume * 1e-24)
        return out

    def check(self, state: ParticleState, history: dict, obs: dict) -> None:
        check_blowup("CG MD", state.step, obs["temperature_K"], self.temperature_K,
                     state.positions, f"dt_fs={self.dt_fs}")


@dataclass
class CGRun:
    """A CG MD run: the engine, final state, history (lists) and the sampled frames."""

    engine: CGEngine
    state: ParticleState
    history: dict
    trajectory: CGTrajectory | None
    elapsed_s: float
    steps: int
    flags: list
    checkpoint: str | None = None

    def average(self, name: str, *, discard: float = 0.2, n_blocks: int = 10) -> tuple[float, float]:
        from ..core.timeseries import block_average
        if name not in self.history:
            raise InputError("name", name, "one of " + ", ".join(self.history))
        x = np.asarray(self.history[name], dtype=float)
        x = x[int(in_range("discard", discard, 0.0, 0.9) * x.size):]
        return block_average(x, n_blocks)

    @property
    def bead_steps_per_second(self) -> float:
        return self.state.positions.shape[0] * self.steps / max(self.elapsed_s, 1e-12)


class _Frames:
    """An engine wrapper that records frames every ``every`` steps (the driver observes)."""

    def __init__(self, engine: CGEngine, every: int, forces: bool):
        self.engine, self.every, self.with_forces = engine, every, forces
        self.kind = engine.kind
        self.frames: list[np.ndarray] = []
        self.forces: list[np.ndarray] = []

    def advance(self, state, n):
        done = 0
        while done < n:
            k = min(n - done, self.every - state.step % self.every)
            state, _, _ = self.engine.advance(state, k)
            done += k
            if state.step % self.every == 0:
                self.frames.append(state.positions.copy())
                if self.with_forces:
                    self.forces.append(state.forces.copy())
        return state, n, None

    def observe(self, state):
        return self.engine.observe(state)

    def check(self, state, history, obs):
        return self.engine.check(state, history, obs)


def cg_time_step_limit_fs(potential: CGPotential, temperature_K: float) -> float:
    """``1 / omega`` (fs) with ``omega^2 = 2 k / m_min``, ``k`` the largest curvature
    ``-dF/dr`` of any pair table where its energy is below 5 kT (the distances a thermal pair
    reaches): Verlet is unstable from ``dt omega = 2``, and accurate well below 1."""
    from ase import units
    kT = BOLTZMANN_EV * float(temperature_K)
    r = potential.r_A
    k = 0.0
    for key in potential.pairs:
        e = np.asarray(potential.pair_energy_eV[key])
        f = np.asarray(potential.pair_force_eV_per_A[key])
        ok = e < 5.0 * kT
        if ok.sum() > 2:
            k = max(k, float(np.max(-np.gradient(f, r)[ok])))
    if potential.bond:
        rb = np.asarray(potential.bond["r_A"])
        eb = np.asarray(potential.bond["energy_eV"])
        fb = np.asarray(potential.bond["force_eV_per_A"])
        ok = eb < 5.0 * kT
        if ok.sum() > 2:
            k = max(k, float(np.max(-np.gradient(fb, rb)[ok])))
    if k <= 0.0:
        return math.inf
    omega = math.sqrt(2.0 * k / float(np.min(potential.masses)))   # per ASE time unit
    return 1.0 / omega / units.fs


def run_cg_md(potential: CGPotential, start: CGTrajectory, steps: int, *,
              temperature_K: float | None = None, dt_fs: float = 5.0,
              thermostat: str = "langevin", friction_per_fs: float = 0.01, seed: int = 0,
              frame_every: int = 0, frame_forces: bool = False, observe_every: int = 50,
              equilibration: int = 0, skin: float | None = None,
              pressure_bar: float | None = None, barostat_every: int = 10,
              max_dlnv: float = 0.01) -> CGRun:
    """Run CG MD with ``potential`` from the last frame of ``start`` (its box, types and masses).

    Parameters
    ----------
    potential : CGPotential
    start : CGTrajectory
        The beads to start from (its last frame); its type names must be the potential's.
    steps : int
        Production steps (observed; frames recorded every ``frame_every`` if > 0).
    temperature_K : float, optional
        Default: the potential's state point.  A run away from it is flagged (``CGRun.flags``
        and a log warning): the potential was not fitted there.
    dt_fs : float
        Time step (fs).  CG potentials are soft: 2-10 fs is usual for one-bead water.
    thermostat : {"langevin", "dpd"}
        Langevin (BAOAB; friction rate ``friction_per_fs``) or DPD's momentum-conserving pair
        thermostat (pair friction ``friction_per_fs * m``, weight ``(1 - r/r_c)^2``).  Dynamics
        (diffusion) depend on the friction: a CG time scale must be calibrated, not assumed.
    equilibration : int
        Steps run (unobserved) before production.
    skin : float, optional
        Verlet-list skin (Å); default 1 Å or less where the box is small.
    pressure_bar : float, optional
        Constant pressure: every ``barostat_every`` steps a Metropolis move of ln V (isotropic,
        positions scaled, up to ``max_dlnv``), exact for the NPT ensemble together with the
        thermostat; the history then holds ``volume_A3`` and ``density_g_cm3``.  No frames are
        stored at constant pressure (a CGTrajectory has one box).
    """
    if not isinstance(potential, CGPotential):
        raise InputError("potential", type(potential).__name__, "a CGPotential")
    if not isinstance(start, CGTrajectory):
        raise InputError("start", type(start).__name__, "a CGTrajectory (the beads to start from)")
    if tuple(start.type_names) != tuple(potential.type_names):
        raise InputError("start.type_names", start.type_names,
                         f"the potential's types {potential.type_names}")
    steps = positive_int("steps", steps)
    T = potential.temperature_K if temperature_K is None else positive("temperature_K", temperature_K)
    dt_fs = positive("dt_fs", dt_fs)
    one_of("thermostat", thermostat, ("langevin", "dpd"))
    friction_per_fs = positive("friction_per_fs", friction_per_fs)
    seed = _check_seed("seed", seed)
    frame_every = positive_int("frame_every", frame_every, 0)
    observe_every = positive_int("observe_every", observe_every)
    equilibration = positive_int("equilibration", equilibration, 0)
    if skin is None:        # 1 Å, or what the minimum-image convention leaves in a small box
        room = 0.5 * float(np.min(start.box)) - potential.cutoff_A
        if room <= 0.02:
            raise InputError("start.box", tuple(float(x) for x in start.box),
                             f"a box longer than twice the potential's cutoff "
                             f"{potential.cutoff_A:g} Å")
        skin = min(1.0, 0.9 * room)
    skin = in_range("skin", skin, 0.0, 5.0)
    if pressure_bar is not None:
        pressure_bar = float(in_range("pressure_bar", pressure_bar, -1e5, 1e6))
        barostat_every = positive_int("barostat_every", barostat_every)
        max_dlnv = in_range("max_dlnv", max_dlnv, 1e-6, 0.5)
        if frame_every:
            raise InputError("frame_every", frame_every, "0 at constant pressure (the frames of "
                             "a constant-pressure run have different boxes)")
    if friction_per_fs * dt_fs > 1.0:
        raise InputError("friction_per_fs", friction_per_fs,
                         f"a friction with friction * dt < 1 (dt = {dt_fs} fs)")
    limit = cg_time_step_limit_fs(potential, T)
    if dt_fs >= limit:
        raise InputError("dt_fs", dt_fs, f"a time step below {limit:.3g} fs, 1/omega of the "
                         f"stiffest thermally accessible pair (energy < 5 kT at {T:g} K)",
                         hint="a smaller time step, or a softer potential")
    flags = potential.state_point_flags(T, start.density_per_A3)
    for fl in flags:
        logger.warning("CG potential used away from its state point: %s", fl)
    engine = CGEngine(potential, start.box, start.types, temperature_K=T, dt_fs=dt_fs,
                      thermostat=thermostat, friction_per_fs=friction_per_fs, skin=skin,
                      bonds=start.bonds, angles=start.angles, pressure_bar=pressure_bar,
                      barostat_every=barostat_every, max_dlnv=max_dlnv)
    state = engine.start(start.positions[-1], seed)
    if equilibration:
        state, _, _ = engine.advance(state, equilibration)
        engine.check(state, {}, engine.observe(state))
        state = ParticleState(state.positions, state.velocities, state.forces,
                              state.ref_positions, state.rng, 0, state.box)
    rec = _Frames(engine, frame_every, frame_forces) if frame_every else engine
    r = run_simulation(rec, state, steps, observe_every=observe_every, label="cg-md")
    traj = None
    if frame_every and rec.frames:
        traj = CGTrajectory(np.array(rec.frames), start.box, start.types, start.type_names,
                            potential.masses, T, np.array(rec.forces) if frame_forces else None,
                            start.bonds, frame_every * dt_fs,
                            {"source": f"run_cg_md ({potential.method} potential)"},
                            start.angles)
    return CGRun(engine=engine, state=r.state, history={k: list(v) for k, v in r.history.items()},
                 trajectory=traj, elapsed_s=r.elapsed_s, steps=r.steps, flags=flags)


# =============================================================================== shared helpers
def _wall(r: np.ndarray, u: np.ndarray, lo: int, kT: float) -> np.ndarray:
    """Continue ``u`` below index ``lo`` (no data there) by a linear repulsive wall whose slope is
    the larger of the slope at ``lo`` and 20 kT/Å."""
    u = u.copy()
    if lo <= 0:
        return u
    dr = r[1] - r[0]
    slope = (u[lo] - u[min(lo + 2, r.size - 1)]) / (2 * dr) if lo + 2 < r.size else 0.0
    slope = max(slope, 20.0 * kT)
    u[:lo] = u[lo] + slope * (r[lo] - r[:lo])
    return u


def _smooth3(x: np.ndarray) -> np.ndarray:
    y = x.copy()
    y[1:-1] = 0.25 * x[:-2] + 0.5 * x[1:-1] + 0.25 * x[2:]
    return y


def _pair_keys(names: tuple) -> list[tuple[str, str, str]]:
    return [(pair_key(a, b), a, b) for i, a in enumerate(names) for b in names[i:]]


# =============================================================================== IBI
@dataclass
class IBIResult:
    """The potential of the last iteration and the history of the iterations.

    ``rdf_error[k]``: RMS of g_k - g_target over the fitted range before update k (the last entry
    is the returned potential's, after its final run); ``pressure_bar[k]`` the CG pressure of run
    k; ``r``, ``target`` and ``last`` the RDFs (per pair key) of the target and the last run."""

    potential: CGPotential
    rdf_error: list
    pressure_bar: list
    r: np.ndarray
    target: dict
    last: dict


def iterative_boltzmann_inversion(reference: CGTrajectory, *, r_max: float,
                                  bin_width: float = 0.1, iterations: int = 10,
                                  steps: int = 2000, equilibration: int = 500,
                                  frame_every: int = 20, dt_fs: float = 5.0,
                                  friction_per_fs: float = 0.01, damping: float = 1.0,
                                  target_pressure_bar: float | None = None,
                                  pressure_factor_per_bar: float = 3e-4,
                                  initial: CGPotential | None = None, seed: int = 0,
                                  g_min: float = 1e-3) -> IBIResult:
    """Iterative Boltzmann inversion (Reith, Pütz & Müller-Plathe, J. Comput. Chem. 24, 1624
    (2003)) of every pair of bead types, with their linear pressure correction.

    Starts from the potential of mean force ``U_0 = -kT ln g_target`` (or ``initial``); each
    iteration runs CG MD at the reference's temperature, box and bead count, measures g and sets
    ``U <- U + damping kT ln(g / g_target)`` where both exceed ``g_min`` (the update smoothed over
    three bins), then, with ``target_pressure_bar``, adds ``A (1 - r / r_max)`` with
    ``A = -0.1 kT sign(dP) min(1, pressure_factor_per_bar |dP|)``.  Below the smallest distance
    the target samples, the potential is a linear repulsive wall.  The RDF determines the pair
    potential uniquely (Henderson 1974): converged IBI recovers it up to sampling noise — and the
    pressure correction trades a little RDF accuracy for the pressure.
    """
    if not isinstance(reference, CGTrajectory):
        raise InputError("reference", type(reference).__name__, "a CGTrajectory (the mapped target)")
    r_max = positive("r_max", r_max)
    bin_width = positive("bin_width", bin_width)
    if bin_width >= 0.5 * r_max:
        raise InputError("bin_width", bin_width, f"a bin width well below the potential's range "
                         f"r_max = {r_max:g} Å")
    iterations = positive_int("iterations", iterations, 0)
    steps = positive_int("steps", steps)
    frame_every = positive_int("frame_every", frame_every)
    if steps < 5 * frame_every:
        raise InputError("steps", steps, f"at least 5 frames per run (frame_every={frame_every})")
    damping = in_range("damping", damping, 0.0, 1.0)
    if damping == 0.0:
        raise InputError("damping", damping, "a number in (0, 1]")
    if target_pressure_bar is not None:
        target_pressure_bar = float(in_range("target_pressure_bar", target_pressure_bar,
                                             -1e6, 1e6))
    g_min = in_range("g_min", g_min, 0.0, 0.5)
    T = reference.temperature_K
    kT = BOLTZMANN_EV * T
    names = reference.type_names
    keys = _pair_keys(names)
    target = {}
    for key, a, b in keys:
        rr, g = rdf(reference, a, b, r_max=r_max, bin_width=bin_width)
        target[key] = g
    r_tab = np.linspace(0.0, r_max, int(round(r_max / (0.5 * bin_width))) + 1)

    def on_grid(y):
        return np.interp(r_tab, rr, y)

    def first_sampled(g):
        ok = np.flatnonzero(g > g_min)
        return int(ok[0]) if ok.size else 0

    lo = {k: np.searchsorted(r_tab, rr[first_sampled(target[k])]) for k, _, _ in keys}
    if initial is None:
        U = {}
        for key, _, _ in keys:
            g = np.maximum(target[key], g_min)
            u = on_grid(-kT * np.log(g))
            u -= u[-1]
            U[key] = _wall(r_tab, u, lo[key], kT)
    else:
        if not isinstance(initial, CGPotential) or tuple(initial.type_names) != tuple(names):
            raise InputError("initial", type(initial).__name__,
                             f"a CGPotential for the types {names}")
        U = {key: initial.energy(a, b, r_tab) for key, a, b in keys}

    def potential(U, it):
        return CGPotential(names, reference.masses, r_tab, {k: U[k] - U[k][-1] for k in U},
                           {k: _force_from_energy(r_tab, U[k]) for k in U}, "ibi", T,
                           reference.density_per_A3,
                           fitted_range_A={k: (float(r_tab[lo[k]]), r_max) for k in U},
                           info={"iterations": it, "bin_width_A": bin_width,
                                 "target_pressure_bar": target_pressure_bar,
                                 "damping": damping})

    errors, pressures = [], []
    sel = {k: (target[k] > g_min) for k in target}
    last = {}
    for it in range(iterations + 1):
        pot = potential(U, it)
        run = run_cg_md(pot, reference, steps, dt_fs=dt_fs, friction_per_fs=friction_per_fs,
                        seed=seed + it, frame_every=frame_every, observe_every=frame_every,
                        equilibration=equilibration)
        p = run.average("pressure_bar", discard=0.0, n_blocks=5)[0]
        pressures.append(float(p))
        err = 0.0
        for key, a, b in keys:
            _, g = rdf(run.trajectory, a, b, r_max=r_max, bin_width=bin_width)
            last[key] = g
            err += float(np.sqrt(np.mean((g[sel[key]] - target[key][sel[key]]) ** 2)))
        errors.append(err / len(keys))
        logger.info("IBI iteration %d: RDF error %.4g, pressure %.4g bar", it, errors[-1], p)
        if it == iterations:
            break
        for key, _, _ in keys:
            g, gt = last[key], target[key]
            both = (g > g_min) & (gt > g_min)
            d = np.zeros_like(g)
            d[both] = damping * kT * np.log(g[both] / gt[both])
            d = _smooth3(d)
            u = U[key] + on_grid(d)
            if target_pressure_bar is not None:
                dP = p - target_pressure_bar
                A = -0.1 * kT * math.copysign(min(1.0, pressure_factor_per_bar * abs(dP)), dP)
                u = u + A * (1.0 - r_tab / r_max)
            u -= u[-1]
            U[key] = _wall(r_tab, u, lo[key], kT)
    return IBIResult(potential=potential(U, iterations), rdf_error=errors, pressure_bar=pressures,
                     r=rr, target=target, last=last)


# =============================================================================== force matching
def force_match(traj: CGTrajectory, *, r_max: float, knot_spacing: float = 0.2,
                regularisation: float = 1e-4, n_blocks: int = 5, exclude_bonded: bool = True,
                table_spacing: float = 0.01, pairs: bool = True,
                angle_knot_deg: float = 5.0) -> CGPotential:
    """Multiscale coarse-graining by force matching (Izvekov & Voth, J. Phys. Chem. B 109, 2469
    (2005); Noid et al., J. Chem. Phys. 128, 244114 (2008)).

    The pair force of every pair of bead types (and, when the trajectory has bonds, the bond
    force) is a cubic B-spline on uniform knots (``knot_spacing``) over the sampled range (pairs:
    from the smallest sampled distance to ``r_max``; bonds: the sampled bond lengths); the
    coefficients minimise ``sum |F_mapped - F_CG|^2`` over all beads and frames plus
    ``lambda |D2 c|^2`` (second differences of the coefficients; ``lambda = regularisation *
    trace(G) / n``), solved from the accumulated normal equations.  The uncertainty is the
    standard error of the force over fits to ``n_blocks`` consecutive blocks of frames.  Below the
    sampled range a pair force continues as a linear repulsive wall; the energy is the integral of
    the force from ``r_max`` (zero there).  ``pairs=False`` fits the bonds alone (a chain without
    nonbonded forces).  With angles in the trajectory the angle potential ``U(theta)`` is a cubic
    B-spline too (knots every ``angle_knot_deg`` over the sampled angles), entering through
    ``-dU/dtheta dtheta/dx``: still linear in its coefficients.

    Returns a ``CGPotential`` (method ``"force-matching"``) with
    ``pair_force_uncertainty_eV_per_A`` (and ``info["bond_force_uncertainty_eV_per_A"]``).
    When the mapped forces come from a pair potential the fit returns that pair force (up to the
    basis and the sampling).
    """
    from scipy.interpolate import BSpline
    from scipy.sparse import coo_matrix

    if not isinstance(traj, CGTrajectory):
        raise InputError("traj", type(traj).__name__, "a CGTrajectory")
    if not traj.has_forces:
        raise InputError("traj.forces", None, "a trajectory with mapped forces (force matching "
                         "fits them)", hint="map frames that carry forces: map_trajectory(..., "
                         "forces=True)")
    r_max = positive("r_max", r_max)
    if r_max >= 0.5 * traj.box.min():
        raise InputError("r_max", r_max, f"less than half the shortest box length "
                         f"({0.5 * traj.box.min():.4g} Å)")
    knot_spacing = positive("knot_spacing", knot_spacing)
    if knot_spacing > 0.25 * r_max:
        raise InputError("knot_spacing", knot_spacing, f"at most r_max / 4 = {r_max / 4:g} Å")
    regularisation = in_range("regularisation", regularisation, 0.0, 1.0)
    n_blocks = positive_int("n_blocks", n_blocks, 2)
    if traj.n_frames < n_blocks:
        raise InputError("n_blocks", n_blocks, f"at most the {traj.n_frames} frames")
    table_spacing = positive("table_spacing", table_spacing)
    has_bonds = traj.bonds.shape[0] > 0
    has_angles = traj.angles.shape[0] > 0
    if not pairs and not has_bonds and not has_angles:
        raise InputError("pairs", pairs, "True for a trajectory without bonds (nothing to fit)")
    angle_knot = math.radians(positive("angle_knot_deg", angle_knot_deg))
    names = traj.type_names
    keys = _pair_keys(names) if pairs else []
    nq = len(keys) + (1 if has_bonds else 0)      # interactions: pair types, then the bond
    qb = len(keys)
    kidx = {k: q for q, (k, _, _) in enumerate(keys)}
    ntypes = len(names)
    pair_of = np.zeros((ntypes, ntypes), dtype=np.int64)
    if pairs:
        for x in range(ntypes):
            for y in range(ntypes):
                pair_of[x, y] = kidx[pair_key(names[x], names[y])]
    excl = {tuple(p) for p in traj.excluded_pairs.tolist()} if exclude_bonded else set()
    pl = PairList(traj.box, r_max, 0.0) if pairs else None
    r_lo = np.full(nq, np.inf)
    r_hi = np.full(nq, r_max)
    cache = []
    bi, bj = (traj.bonds[:, 0], traj.bonds[:, 1]) if has_bonds else (None, None)
    for f in range(traj.n_frames):
        x = traj.positions[f]
        parts = []
        if pairs:
            pl.build(x)
            d = x[pl.i] - x[pl.j] - pl.shift
            r = np.sqrt(np.einsum("ij,ij->i", d, d))
            keep = r < r_max
            if excl:
                keep &= np.array([(min(a, b), max(a, b)) not in excl
                                  for a, b in zip(pl.i, pl.j)], dtype=bool)
            i, j, d, r = pl.i[keep], pl.j[keep], d[keep], r[keep]
            q = pair_of[traj.types[i], traj.types[j]]
            np.minimum.at(r_lo, q, r)
            parts.append((i, j, d, r, q))
        if has_bonds:
            d = x[bi] - x[bj]
            d -= traj.box * np.round(d / traj.box)
            r = np.sqrt(np.einsum("ij,ij->i", d, d))
            r_lo[qb] = min(r_lo[qb], r.min())
            r_hi[qb] = r.max() if f == 0 else max(r_hi[qb], r.max())
            parts.append((bi, bj, d, r, np.full(r.size, qb)))
        if not parts:                                  # angles only
            z = np.zeros(0, dtype=np.int64)
            cache.append((z, z, np.zeros((0, 3)), np.zeros(0), z))
            continue
        i, j, d, r, q = (np.concatenate(z) for z in zip(*parts))
        cache.append((i, j, d / r[:, None], r, q))
    if not np.all(np.isfinite(r_lo)):
        missing = [keys[q][0] for q in np.flatnonzero(~np.isfinite(r_lo))]
        raise InputError("r_max", r_max, f"a range in which every pair type is sampled "
                         f"(no {missing} pairs closer than r_max)")
    kdeg = 3
    knots, nbasis = [], []
    for q in range(nq):
        lo_q = math.floor(r_lo[q] / knot_spacing) * knot_spacing
        hi_q = r_max if q < qb else math.ceil(r_hi[q] / knot_spacing) * knot_spacing
        inner = np.arange(lo_q, hi_q + 0.5 * knot_spacing, knot_spacing)
        inner[-1] = hi_q
        if inner.size < 2:
            inner = np.array([lo_q, lo_q + knot_spacing])
        t = np.concatenate([[inner[0]] * kdeg, inner, [inner[-1]] * kdeg])
        knots.append(t)
        nbasis.append(len(t) - kdeg - 1)
    offset = np.concatenate([[0], np.cumsum(nbasis)])
    if has_angles:
        th_all = [_angles_of(traj, traj.positions[f]) for f in range(traj.n_frames)]
        th_lo = min(float(a[0].min()) for a in th_all)
        th_hi = max(float(a[0].max()) for a in th_all)
        lo_a = max(0.0, math.floor(th_lo / angle_knot) * angle_knot)
        hi_a = min(math.pi, math.ceil(th_hi / angle_knot) * angle_knot)
        inner = np.linspace(lo_a, hi_a, max(2, int(round((hi_a - lo_a) / angle_knot)) + 1))
        ta = np.concatenate([[inner[0]] * kdeg, inner, [inner[-1]] * kdeg])
        na = len(ta) - kdeg - 1
        knots.append(ta)
        nbasis.append(na)
        offset = np.concatenate([[0], np.cumsum(nbasis)])
        with np.errstate(divide="ignore", invalid="ignore"):
            dk1 = np.where(ta[kdeg:kdeg + na] - ta[:na] > 0,
                           kdeg / (ta[kdeg:kdeg + na] - ta[:na]), 0.0)
            dk2 = np.where(ta[kdeg + 1:kdeg + 1 + na] - ta[1:1 + na] > 0,
                           kdeg / (ta[kdeg + 1:kdeg + 1 + na] - ta[1:1 + na]), 0.0)

        def dbasis(x):
            D = BSpline.design_matrix(np.clip(x, ta[0], ta[-1] - 1e-12), ta, kdeg - 1).toarray()
            return D[:, :na] * dk1 - D[:, 1:na + 1] * dk2
    ncol = int(offset[-1])
    G = np.zeros((n_blocks, ncol, ncol))
    h = np.zeros((n_blocks, ncol))
    bounds = np.linspace(0, traj.n_frames, n_blocks + 1).astype(int)
    n = traj.n_beads
    for f, (i, j, e, r, q) in enumerate(cache):
        blk = int(np.searchsorted(bounds, f, side="right") - 1)
        rows, cols, vals = [], [], []
        if has_angles:
            th, av, cv, la, lc, cs = th_all[f]
            sn = np.maximum(np.sqrt(1.0 - cs * cs), 1e-8)
            gi = (cv / lc[:, None] - cs[:, None] * av / la[:, None]) / (la * sn)[:, None]
            gk = (av / la[:, None] - cs[:, None] * cv / lc[:, None]) / (lc * sn)[:, None]
            Bp = dbasis(th)                                   # (n_angles, na)
            ai, aj, ak = traj.angles[:, 0], traj.angles[:, 1], traj.angles[:, 2]
            colsa = offset[-2] + np.arange(na)
            for dim in range(3):
                for bead, g in ((ai, gi[:, dim]), (ak, gk[:, dim]),
                                (aj, -(gi[:, dim] + gk[:, dim]))):
                    rows.append(np.repeat(3 * bead + dim, na))
                    cols.append(np.tile(colsa, bead.size))
                    vals.append((Bp * g[:, None]).ravel())
        for qq in range(nq):
            s = q == qq
            if not s.any():
                continue
            B = BSpline.design_matrix(np.clip(r[s], knots[qq][0], knots[qq][-1] - 1e-12),
                                      knots[qq], kdeg).tocoo()
            pi_, pj_, ee = i[s][B.row], j[s][B.row], e[s][B.row]
            c = B.col + offset[qq]
            for dim in range(3):
                rows += [3 * pi_ + dim, 3 * pj_ + dim]
                cols += [c, c]
                vals += [B.data * ee[:, dim], -B.data * ee[:, dim]]
        A = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                       shape=(3 * n, ncol)).tocsr()
        G[blk] += (A.T @ A).toarray()
        h[blk] += A.T @ traj.forces[f].reshape(-1)
    D = np.zeros((0, ncol))
    for q in range(len(nbasis)):
        m = nbasis[q]
        Dq = np.zeros((max(m - 2, 0), ncol))
        for k in range(m - 2):
            Dq[k, offset[q] + k:offset[q] + k + 3] = (1.0, -2.0, 1.0)
        D = np.vstack([D, Dq])
    R = D.T @ D

    def solve(Gm, hm):
        lam = regularisation * np.trace(Gm) / ncol
        return np.linalg.lstsq(Gm + lam * R, hm, rcond=None)[0]

    coef = solve(G.sum(0), h.sum(0))
    block_coef = [solve(G[b] * n_blocks, h[b] * n_blocks) for b in range(n_blocks)]
    kT = BOLTZMANN_EV * traj.temperature_K

    def table(q, grid, wall):
        t = knots[q]
        spl = BSpline(t, coef[offset[q]:offset[q + 1]], kdeg)
        inside = (grid >= t[0]) & (grid <= t[-1])
        f = np.zeros_like(grid)
        f[inside] = spl(grid[inside])
        lo_i = int(np.argmax(inside))
        if wall and lo_i > 0:                           # linear repulsive wall below the data
            slope = max(-spl.derivative()(t[0]), 20.0 * kT)
            f[:lo_i] = f[lo_i] + slope * (grid[lo_i] - grid[:lo_i])
        fb = np.array([np.where(inside, BSpline(t, bc[offset[q]:offset[q + 1]], kdeg)(
            np.clip(grid, t[0], t[-1])), 0.0) for bc in block_coef])
        return f, fb.std(axis=0, ddof=1) / math.sqrt(n_blocks)

    r_tab = np.arange(0.0, r_max + 0.5 * table_spacing, table_spacing)
    r_tab[-1] = r_max
    energy, force, unc, fitted = {}, {}, {}, {}
    for q, (key, _, _) in enumerate(keys):
        f, sd = table(q, r_tab, True)
        force[key], unc[key] = f, sd
        energy[key] = _energy_from_force(r_tab, f)
        fitted[key] = (float(r_lo[q]), r_max)
    if not pairs:                                     # a potential needs pair tables: zero ones
        for key, _, _ in _pair_keys(names):
            force[key] = np.zeros_like(r_tab)
            energy[key] = np.zeros_like(r_tab)
    info = {"knot_spacing_A": knot_spacing, "regularisation": regularisation,
            "n_blocks": n_blocks, "frames": traj.n_frames, "pairs_fitted": bool(pairs)}
    bond = {}
    if has_bonds:
        rb = np.arange(knots[qb][0], knots[qb][-1] + 0.5 * table_spacing, table_spacing)
        fbnd, sdb = table(qb, rb, False)
        ub = _energy_from_force(rb, fbnd)
        bond = {"r_A": rb, "energy_eV": ub - ub.min(), "force_eV_per_A": fbnd}
        info["bond_force_uncertainty_eV_per_A"] = sdb.tolist()
        info["bond_fitted_range_A"] = [float(r_lo[qb]), float(r_hi[qb])]
    angle = {}
    if has_angles:
        grid = np.linspace(0.0, math.pi, 361)
        inside = (grid >= ta[0]) & (grid <= ta[-1])

        def angle_table(cf):
            u = np.zeros_like(grid)
            tq = np.zeros_like(grid)
            spl = BSpline(ta, cf[offset[-2]:offset[-1]], kdeg)
            u[inside] = spl(grid[inside])
            tq[inside] = -spl.derivative()(grid[inside])
            for side in (grid < ta[0], grid > ta[-1]):     # constant torque outside
                if side.any():
                    edge = ta[0] if side[0] else ta[-1]
                    t_e = -float(spl.derivative()(edge))
                    tq[side] = t_e
                    u[side] = float(spl(edge)) - t_e * (grid[side] - edge)
            return u, tq

        u, tq = angle_table(coef)
        angle = {"theta_rad": grid, "energy_eV": u - u.min(), "torque_eV_per_rad": tq}
        tb = np.array([angle_table(bc)[1] for bc in block_coef])
        info["angle_torque_uncertainty_eV_per_rad"] = (tb.std(axis=0, ddof=1)
                                                       / math.sqrt(n_blocks)).tolist()
        info["angle_fitted_range_rad"] = [th_lo, th_hi]
    return CGPotential(names, traj.masses, r_tab, energy, force, "force-matching",
                       traj.temperature_K, traj.density_per_A3, fitted_range_A=fitted,
                       pair_force_uncertainty_eV_per_A=unc, bond=bond, info=info, angle=angle)


def _angles_of(traj: CGTrajectory, x: np.ndarray):
    """Angles (rad) at the middle bead of every angle triple of one frame, with the vectors."""
    a = x[traj.angles[:, 0]] - x[traj.angles[:, 1]]
    c = x[traj.angles[:, 2]] - x[traj.angles[:, 1]]
    a -= traj.box * np.round(a / traj.box)
    c -= traj.box * np.round(c / traj.box)
    la = np.linalg.norm(a, axis=1)
    lc = np.linalg.norm(c, axis=1)
    cs = np.clip(np.einsum("ij,ij->i", a, c) / (la * lc), -1.0, 1.0)
    return np.arccos(cs), a, c, la, lc, cs


def bond_boltzmann_inversion(traj: CGTrajectory, *, bin_width: float = 0.05,
                             min_count: int = 20) -> tuple[dict, np.ndarray]:
    """The bond potential of mean force ``U(r) = -kT ln(P(r) / r^2)`` from the bond-length
    histogram (the r^2 Jacobian removes the volume of the spherical shell), the first iteration
    of IBI for bonds — and its last, when bonds are independent of everything else (an ideal
    chain).  Returns ``(table, counts)``: the ``CGPotential.bond`` table over the bins holding at
    least ``min_count`` bonds (zero energy at the minimum; the engine continues the force
    linearly beyond its ends) and those bins' counts."""
    if not isinstance(traj, CGTrajectory):
        raise InputError("traj", type(traj).__name__, "a CGTrajectory")
    if traj.bonds.shape[0] == 0:
        raise InputError("traj.bonds", None, "a trajectory with bonds")
    bin_width = positive("bin_width", bin_width)
    min_count = positive_int("min_count", min_count)
    x = traj.positions
    d = x[:, traj.bonds[:, 0]] - x[:, traj.bonds[:, 1]]
    d -= traj.box * np.round(d / traj.box)
    r = np.sqrt(np.einsum("fbi,fbi->fb", d, d)).ravel()
    if bin_width > 0.5 * (r.max() - r.min()):
        raise InputError("bin_width", bin_width, f"bins narrower than half the sampled range of "
                         f"bond lengths ({r.min():.3g}-{r.max():.3g} Å)")
    edges = np.arange(math.floor(r.min() / bin_width) * bin_width, r.max() + bin_width, bin_width)
    cnt, _ = np.histogram(r, bins=edges)
    c = 0.5 * (edges[1:] + edges[:-1])
    ok = cnt >= min_count
    if ok.sum() < 4:
        raise InputError("min_count", min_count, "a count that leaves at least 4 bins")
    kT = BOLTZMANN_EV * traj.temperature_K
    u = -kT * np.log(cnt[ok] / (cnt.sum() * bin_width) / c[ok] ** 2)
    u -= u.min()
    return {"r_A": c[ok], "energy_eV": u, "force_eV_per_A": -np.gradient(u, c[ok])}, cnt[ok]


def angle_boltzmann_inversion(traj: CGTrajectory, *, bin_width_deg: float = 2.0,
                              min_count: int = 20) -> tuple[dict, np.ndarray]:
    """The angle potential of mean force ``U(theta) = -kT ln(P(theta) / sin(theta))`` (the
    sin Jacobian of the solid angle removed).  Returns ``(table, counts)``: a
    ``CGPotential.angle`` table on a uniform grid over [0, pi] — measured where bins hold at
    least ``min_count`` angles, continued linearly (constant torque) outside — and the counts of
    the measured bins."""
    if not isinstance(traj, CGTrajectory):
        raise InputError("traj", type(traj).__name__, "a CGTrajectory")
    if traj.angles.shape[0] == 0:
        raise InputError("traj.angles", None, "a trajectory with angles")
    w = math.radians(positive("bin_width_deg", bin_width_deg))
    n_bins = int(round(math.pi / w))
    if n_bins < 8:
        raise InputError("bin_width_deg", bin_width_deg, "at most 22.5 degrees")
    min_count = positive_int("min_count", min_count)
    th = np.concatenate([_angles_of(traj, traj.positions[f])[0] for f in range(traj.n_frames)])
    edges = np.linspace(0.0, math.pi, n_bins + 1)
    cnt, _ = np.histogram(th, bins=edges)
    c = 0.5 * (edges[1:] + edges[:-1])
    ok = cnt >= min_count
    if ok.sum() < 4:
        raise InputError("min_count", min_count, "a count that leaves at least 4 bins")
    kT = BOLTZMANN_EV * traj.temperature_K
    u = -kT * np.log(cnt[ok] / np.sin(c[ok]))
    grid = edges
    cm = c[ok]
    slope_lo = (u[1] - u[0]) / (cm[1] - cm[0])
    slope_hi = (u[-1] - u[-2]) / (cm[-1] - cm[-2])
    ug = np.interp(grid, cm, u)
    lo, hi = grid < cm[0], grid > cm[-1]
    ug[lo] = u[0] + slope_lo * (grid[lo] - cm[0])
    ug[hi] = u[-1] + slope_hi * (grid[hi] - cm[-1])
    ug -= u.min()
    return {"theta_rad": grid, "energy_eV": ug, "torque_eV_per_rad": -np.gradient(ug, grid)}, \
        cnt[ok]


# =============================================================================== Newton methods
def _basis_statistics(traj: CGTrajectory, basis, keys, pair_of, r_max: float,
                      exclude_bonded: bool) -> np.ndarray:
    """Per frame, ``Phi_k = sum over pairs of phi_k(r_ij)`` (frames x n_basis) for the basis
    ``basis(q, r) -> (rows, cols, values)`` of pair type ``q``."""
    excl = _bonded_set(traj.bonds) if exclude_bonded else set()
    pl = PairList(traj.box, r_max, 0.0)
    out = []
    for f in range(traj.n_frames):
        pl.build(traj.positions[f])
        d = traj.positions[f][pl.i] - traj.positions[f][pl.j] - pl.shift
        r = np.sqrt(np.einsum("ij,ij->i", d, d))
        keep = r < r_max
        if excl:
            keep &= np.array([(min(a, b), max(a, b)) not in excl for a, b in zip(pl.i, pl.j)],
                             dtype=bool)
        q = pair_of[traj.types[pl.i[keep]], traj.types[pl.j[keep]]]
        out.append(basis(q, r[keep]))
    return np.array(out)


@dataclass
class NewtonCGResult:
    """A Newton-type structural fit (IMC or relative entropy): the potential, and per iteration
    the RDF error, the pressure and the norm of the gradient ``beta (<Phi>_ref - <Phi>_CG)``
    (relative entropy: exactly its gradient; IMC: the bin-count mismatch times beta)."""

    potential: CGPotential
    rdf_error: list
    pressure_bar: list
    gradient_norm: list
    r: np.ndarray
    target: dict
    last: dict


def _newton_fit(reference: CGTrajectory, *, method: str, r_max: float, resolution: float,
                iterations: int, steps: int, equilibration: int, frame_every: int, dt_fs: float,
                friction_per_fs: float, initial: CGPotential | None, seed: int,
                max_change_kT: float, regularisation: float, rdf_bin: float) -> NewtonCGResult:
    from scipy.interpolate import BSpline

    names = reference.type_names
    keys = _pair_keys(names)
    kidx = {k: q for q, (k, _, _) in enumerate(keys)}
    nt = len(names)
    pair_of = np.zeros((nt, nt), dtype=np.int64)
    for x in range(nt):
        for y in range(nt):
            pair_of[x, y] = kidx[pair_key(names[x], names[y])]
    T = reference.temperature_K
    kT = BOLTZMANN_EV * T
    beta = 1.0 / kT
    # the sampled range of each pair type sets where the basis lives
    target, rr = {}, None
    r_lo = np.zeros(len(keys))
    for q, (key, a, b) in enumerate(keys):
        rr, g = rdf(reference, a, b, r_max=r_max, bin_width=rdf_bin)
        target[key] = g
        ok = np.flatnonzero(g > 1e-3)
        if not ok.size:
            raise InputError("r_max", r_max, f"a range in which {key} pairs are sampled")
        r_lo[q] = max(rr[ok[0]] - 0.5 * rdf_bin, 0.0)
    kdeg = 3 if method == "relative-entropy" else 0
    knots, nbasis = [], []
    for q in range(len(keys)):
        lo_q = math.floor(r_lo[q] / resolution) * resolution
        inner = np.arange(lo_q, r_max + 0.5 * resolution, resolution)
        inner[-1] = r_max
        t = np.concatenate([[inner[0]] * kdeg, inner, [inner[-1]] * kdeg]) if kdeg else inner
        knots.append(t)
        nbasis.append(len(t) - kdeg - 1)
    offset = np.concatenate([[0], np.cumsum(nbasis)])
    ncol = int(offset[-1])

    def phi(q_arr, r):
        """Phi per basis function (summed over pairs) of one frame."""
        out = np.zeros(ncol)
        for q in range(len(keys)):
            s = q_arr == q
            if not s.any():
                continue
            t = knots[q]
            rq = r[s]
            rq = rq[rq >= t[0]]
            if kdeg:
                B = BSpline.design_matrix(np.clip(rq, t[0], t[-1] - 1e-12), t, kdeg)
                out[offset[q]:offset[q + 1]] += np.asarray(B.sum(axis=0)).ravel()
            else:
                h = np.histogram(rq, bins=t)[0]
                out[offset[q]:offset[q + 1]] += h
        return out

    r_tab = np.linspace(0.0, r_max, int(round(r_max / 0.01)) + 1)

    def tabulate(c):
        E, F, rng = {}, {}, {}
        for q, (key, _, _) in enumerate(keys):
            t = knots[q]
            cq = c[offset[q]:offset[q + 1]]
            inside = r_tab >= t[0]
            u = np.zeros_like(r_tab)
            if kdeg:
                u[inside] = BSpline(t, cq, kdeg)(np.clip(r_tab[inside], t[0], t[-1]))
            else:
                centres = 0.5 * (t[1:] + t[:-1])
                u[inside] = np.interp(r_tab[inside], centres, cq)
            lo = int(np.argmax(inside))
            u = _wall(r_tab, u, lo, kT)
            u -= u[-1]
            E[key] = u
            F[key] = _force_from_energy(r_tab, u)
            rng[key] = (float(t[0]), r_max)
        return E, F, rng

    # the starting parameters: from `initial`, else the potential of mean force -kT ln g
    c = np.zeros(ncol)
    for q, (key, a, b) in enumerate(keys):
        t = knots[q]
        pts = 0.5 * (t[kdeg:-kdeg - 1] + t[kdeg + 1:len(t) - kdeg]) if kdeg else 0.5 * (t[1:] + t[:-1])
        if initial is not None:
            u = initial.energy(a, b, pts)
        else:
            u = np.interp(pts, rr, -kT * np.log(np.maximum(target[key], 1e-3)))
        if kdeg:           # least-squares spline through the values (Greville-like points)
            from scipy.interpolate import make_lsq_spline
            xs = np.linspace(t[0], t[-1], 4 * len(pts))
            us = np.interp(xs, pts, u)
            c[offset[q]:offset[q + 1]] = make_lsq_spline(xs, us, t, kdeg).c
        else:
            c[offset[q]:offset[q + 1]] = u
        c[offset[q + 1] - 1] = 0.0        # U(r_max) = 0
    fixed = np.array([offset[q + 1] - 1 for q in range(len(keys))])
    free = np.setdiff1d(np.arange(ncol), fixed)

    def stats_of(traj):
        return _basis_statistics(traj, phi, keys, pair_of, r_max, True)

    phi_ref = stats_of(reference).mean(axis=0)
    errors, pressures, gnorms = [], [], []
    last = {}
    scale = 1.0
    for it in range(iterations + 1):
        E, F, rng = tabulate(c)
        pot = CGPotential(names, reference.masses, r_tab, E, F, method, T,
                          reference.density_per_A3, fitted_range_A=rng,
                          info={"iterations": it, "resolution_A": resolution,
                                "regularisation": regularisation})
        run = run_cg_md(pot, reference, steps, dt_fs=dt_fs, friction_per_fs=friction_per_fs,
                        seed=seed + it, frame_every=frame_every, observe_every=frame_every,
                        equilibration=equilibration)
        pressures.append(float(run.average("pressure_bar", discard=0.0, n_blocks=5)[0]))
        err = 0.0
        for key, a, b in keys:
            _, g = rdf(run.trajectory, a, b, r_max=r_max, bin_width=rdf_bin)
            last[key] = g
            sel = target[key] > 1e-3
            err += float(np.sqrt(np.mean((g[sel] - target[key][sel]) ** 2)))
        errors.append(err / len(keys))
        S = stats_of(run.trajectory)
        grad = beta * (phi_ref - S.mean(axis=0))
        gnorms.append(float(np.linalg.norm(grad[free])))
        logger.info("%s iteration %d: RDF error %.4g, |gradient| %.4g, pressure %.4g bar",
                    method, it, errors[-1], gnorms[-1], pressures[-1])
        if it == iterations:
            break
        # trust region: shrink when the (noisy) gradient grew, grow back when it falls
        if len(gnorms) > 1:
            scale = max(0.125, 0.5 * scale) if gnorms[-1] > 1.2 * gnorms[-2] \
                else min(1.0, 1.5 * scale)
        cov = np.cov(S[:, free], rowvar=False)
        H = beta * beta * np.atleast_2d(cov)
        lam = regularisation * np.trace(H) / max(free.size, 1)
        step = -np.linalg.solve(H + lam * np.eye(free.size), grad[free])
        big = np.max(np.abs(step)) / kT
        limit = scale * max_change_kT
        if big > limit:                                # no parameter moves more than the region
            step *= limit / big
        c[free] += step
    return NewtonCGResult(potential=pot, rdf_error=errors, pressure_bar=pressures,
                          gradient_norm=gnorms, r=rr, target=target, last=last)


def relative_entropy(reference: CGTrajectory, *, r_max: float, knot_spacing: float = 0.4,
                     iterations: int = 10, steps: int = 2000, equilibration: int = 500,
                     frame_every: int = 20, dt_fs: float = 5.0, friction_per_fs: float = 0.01,
                     initial: CGPotential | None = None, seed: int = 0,
                     max_change_kT: float = 0.5, regularisation: float = 1e-3,
                     rdf_bin: float = 0.1) -> NewtonCGResult:
    """Relative-entropy minimisation (Shell, J. Chem. Phys. 129, 144108 (2008); Chaimovich &
    Shell 2011) of a cubic B-spline pair potential ``U(r) = sum_k c_k B_k(r)`` (knots every
    ``knot_spacing`` over the sampled range, ``U(r_max) = 0``).

    ``S_rel = <ln p_ref / p_CG>_ref``; for parameters entering linearly its gradient is
    ``beta (<Phi>_ref - <Phi>_CG)`` and its Hessian ``beta^2 Cov_CG(Phi)`` with
    ``Phi_k = sum over pairs of B_k(r_ij)``: each iteration runs CG MD, measures both and takes a
    (regularised, trust-region limited) Newton step.  The minimiser reproduces ``<Phi>_ref``:
    the reference's pair structure projected on the basis.  See :func:`relative_entropy_gradient`
    for the gradient on its own (tested against finite differences)."""
    return _newton_fit(reference, method="relative-entropy",
                       r_max=_checked_range(reference, r_max),
                       resolution=positive("knot_spacing", knot_spacing),
                       iterations=positive_int("iterations", iterations, 0),
                       steps=positive_int("steps", steps),
                       equilibration=positive_int("equilibration", equilibration, 0),
                       frame_every=positive_int("frame_every", frame_every),
                       dt_fs=positive("dt_fs", dt_fs),
                       friction_per_fs=positive("friction_per_fs", friction_per_fs),
                       initial=initial, seed=_check_seed("seed", seed),
                       max_change_kT=positive("max_change_kT", max_change_kT),
                       regularisation=in_range("regularisation", regularisation, 0.0, 10.0),
                       rdf_bin=positive("rdf_bin", rdf_bin))


def inverse_monte_carlo(reference: CGTrajectory, *, r_max: float, bin_width: float = 0.2,
                        iterations: int = 6, steps: int = 2000, equilibration: int = 500,
                        frame_every: int = 10, dt_fs: float = 5.0, friction_per_fs: float = 0.01,
                        initial: CGPotential | None = None, seed: int = 0,
                        max_change_kT: float = 0.3, regularisation: float = 0.1) -> NewtonCGResult:
    """Inverse Monte Carlo (Lyubartsev & Laaksonen, Phys. Rev. E 52, 3730 (1995)): the Newton
    version of IBI.  With the potential tabulated per RDF bin, the pair count ``S_a`` of bin ``a``
    responds to a change of the potential as ``d<S_a>/dU_b = -beta (<S_a S_b> - <S_a><S_b>)``;
    each iteration solves that (Tikhonov-regularised, the cross-correlations from the CG run) for
    the change that brings ``<S>`` to the reference's.  It is the relative-entropy Newton step in
    a histogram basis — one code path serves both.  Converges in far fewer iterations than IBI
    where the cross-correlations matter (dense liquids) and needs more sampling per iteration:
    the covariance of ~40 bin counts estimated from a few hundred frames is noisy, hence the
    regularisation (0.1 of the mean Hessian diagonal) and the 0.3 kT trust region by default
    (with 0.1 Å bins and 100 frames the iteration did not converge on the LJ test liquid).
    Like IBI it pins the RDF, not the potential's long-range tail (see docs/coarse_graining.md)."""
    bin_width = positive("bin_width", bin_width)
    r_max = _checked_range(reference, r_max)
    if bin_width >= 0.5 * r_max:
        raise InputError("bin_width", bin_width, f"a bin width well below the potential's range "
                         f"r_max = {r_max:g} Å")
    return _newton_fit(reference, method="imc", r_max=r_max, resolution=bin_width,
                       iterations=positive_int("iterations", iterations, 0),
                       steps=positive_int("steps", steps),
                       equilibration=positive_int("equilibration", equilibration, 0),
                       frame_every=positive_int("frame_every", frame_every),
                       dt_fs=positive("dt_fs", dt_fs),
                       friction_per_fs=positive("friction_per_fs", friction_per_fs),
                       initial=initial, seed=_check_seed("seed", seed),
                       max_change_kT=positive("max_change_kT", max_change_kT),
                       regularisation=in_range("regularisation", regularisation, 0.0, 10.0),
                       rdf_bin=bin_width)


def _checked_range(reference, r_max) -> float:
    if not isinstance(reference, CGTrajectory):
        raise InputError("reference", type(reference).__name__, "a CGTrajectory (the mapped target)")
    r_max = positive("r_max", r_max)
    if r_max >= 0.5 * reference.box.min():
        raise InputError("r_max", r_max, f"less than half the shortest box length "
                         f"({0.5 * reference.box.min():.4g} Å)")
    return r_max


def relative_entropy_gradient(reference: CGTrajectory, model: CGTrajectory, basis_values,
                              *, r_max: float) -> np.ndarray:
    """``dS_rel/dc_k = beta (<Phi_k>_ref - <Phi_k>_model)`` for a linear pair potential
    ``U = sum_k c_k phi_k(r)``; ``basis_values(r) -> (n_pairs, n_basis)`` evaluates the basis
    (one pair type), ``model`` samples the CG model at the current parameters (same state)."""
    r_max = _checked_range(reference, r_max)
    beta = 1.0 / (BOLTZMANN_EV * reference.temperature_K)
    pair_of = np.zeros((1, 1), dtype=np.int64)

    def phi(q, r):
        return np.asarray(basis_values(r)).sum(axis=0)

    a = _basis_statistics(reference, phi, None, pair_of, r_max, True).mean(axis=0)
    b = _basis_statistics(model, phi, None, pair_of, r_max, True).mean(axis=0)
    return beta * (a - b)


# =============================================================================== analysis
def diffusion_coefficient(traj: CGTrajectory, *, fit_from: float = 0.2,
                          fit_to: float = 0.6) -> tuple[float, float]:
    """Self-diffusion coefficient (Å²/fs) from the beads' mean-square displacement (positions
    must be unwrapped; the system's centre-of-mass drift is removed): ``D = slope / 6`` of the
    MSD over lag times between ``fit_from`` and ``fit_to`` of the run, averaged over time
    origins.  Returns ``(D, standard error)``, the error from fits to the two halves of the beads.
    1 Å²/fs = 0.1 cm²/s.  No finite-size (Yeh-Hummer) correction: compare runs in one box."""
    if not isinstance(traj, CGTrajectory):
        raise InputError("traj", type(traj).__name__, "a CGTrajectory")
    if traj.n_frames < 10 or traj.frame_interval_fs <= 0:
        raise InputError("traj", f"{traj.n_frames} frames, interval {traj.frame_interval_fs} fs",
                         "at least 10 frames with a frame interval > 0")
    if not 0.0 <= fit_from < fit_to <= 1.0:
        raise InputError("fit_from, fit_to", (fit_from, fit_to), "0 <= fit_from < fit_to <= 1")
    m = traj.masses[traj.types]
    x = traj.positions - ((m[None, :, None] * traj.positions).sum(1) / m.sum())[:, None, :]
    nf = traj.n_frames
    lags = np.arange(max(1, int(fit_from * nf)), max(int(fit_from * nf) + 2, int(fit_to * nf)))
    halves = (slice(0, traj.n_beads // 2), slice(traj.n_beads // 2, None))
    ds = []
    for h in (slice(None),) + halves:
        msd = np.array([np.mean(np.sum((x[k:, h] - x[:-k, h]) ** 2, axis=2)) for k in lags])
        slope = np.polyfit(lags * traj.frame_interval_fs, msd, 1)[0]
        ds.append(slope / 6.0)
    return float(ds[0]), float(abs(ds[1] - ds[2]) / 2.0)


def coordination_number(r: np.ndarray, g: np.ndarray, density_per_A3: float,
                        r_cut: float) -> float:
    """``4 pi rho int_0^r_cut g(r) r^2 dr`` (the first shell when ``r_cut`` is g's first
    minimum)."""
    r = np.asarray(r, dtype=float)
    g = np.asarray(g, dtype=float)
    sel = r <= r_cut
    dr = r[1] - r[0]
    return float(4 * np.pi * positive("density_per_A3", density_per_A3)
                 * np.sum(g[sel] * r[sel] ** 2) * dr)


def first_minimum(r: np.ndarray, g: np.ndarray) -> float:
    """The position of g's first local minimum after its main peak (g smoothed over 5 bins so
    that noise makes no minimum)."""
    r = np.asarray(r, dtype=float)
    gs = np.convolve(np.asarray(g, dtype=float), np.ones(5) / 5.0, mode="same")
    k = int(np.argmax(gs))
    for j in range(k + 1, gs.size - 1):
        if gs[j] <= gs[j - 1] and gs[j] < gs[j + 1]:
            return float(r[j])
    raise InputError("g", "no minimum after the main peak", "an RDF with a first shell")
