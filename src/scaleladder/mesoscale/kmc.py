"""Lattice kinetic Monte Carlo: rejection-free residence-time algorithm (BKL / Gillespie), numba.

Lattices
    :class:`Lattice` holds the sites of a supercell of any ASE structure (``Lattice.from_atoms``;
    :func:`build_lattice` for sc, bcc, fcc, chain, square, triangular, honeycomb) and its
    neighbour shells, found geometrically with periodic images and stored as int arrays
    ``neighbours[s]`` of shape ``(n_sites, z_s)`` (``-1`` pads sites with fewer neighbours).  Site
    ``i`` is atom ``i`` of ``atoms.repeat(size)``; its kind (basis atom) is ``i % n_basis`` and
    the jump vector of its slot ``k`` in shell ``s`` is ``vectors[s][kind, k]`` (Å).

Models and state
    :class:`KMCModel` = a lattice + an :class:`~scaleladder.handoffs.events.EventCatalog` at one
    temperature: a rate per (site kind, neighbour slot), in 1/s.  :class:`KMCState` is plain data
    (NumPy arrays: occupancy, displacements, jump counts, the random generator's 4 words, the
    time); :func:`run_kmc` advances a copy of it.  Two systems:

    * ``"walkers"`` (:func:`init_walkers`): independent random walkers, each hopping to the sites
      its events allow -- an uncorrelated walk, ``<r^2> = 2 d D t`` with
      :meth:`KMCModel.random_walk_diffusivity`.
    * ``"vacancy"`` (:func:`init_vacancies`): a lattice full of tagged atoms with one (or a few)
      vacancies; a vacancy exchanges with a neighbouring atom at the catalog's rate.  Atom
      displacements give tracer diffusion and the tracer correlation factor.

Algorithm
    The total rate of every *leaf* (a site for the vacancy system, a walker for the walkers) is
    kept in a binary sum tree (``2 L`` floats, ``L`` the next power of two): an event is selected
    by one descent from the root with ``u R_tot`` (O(log N)), the residual picks the neighbour
    slot, the time advances by ``-ln(u') / R_tot`` and only the leaves whose rates changed are
    reset, each parent recomputed as the sum of its two children (so the tree never drifts: it is
    the same whether built from scratch or updated).  Random numbers come from xoshiro256** whose
    state lives in :class:`KMCState`, so a run resumed from a checkpoint is bitwise identical to
    an uninterrupted one for the same seed (also across a ``t_max_s`` stop: the draws of the event
    that would cross it are given back).

Observables
    :func:`simulate_vacancy_diffusion` (independent trajectories: vacancy and tracer diffusion
    coefficients ``D = <r^2> / (2 d t)``, the tracer correlation factor
    ``f = <sum_i R_i^2> / (n_jumps a^2)``, each with its standard error from the scatter between
    trajectories, jackknife), :func:`simulate_random_walk` (MSD vs time with standard errors) and
    :func:`fit_arrhenius` (weighted least squares on ``ln D`` against ``1 / k_B T``).

Units: lengths in Å, times in s, rates in 1/s, energies in eV, temperatures in K; diffusion
coefficients are returned as Estimates in ``"m^2/s"``.

Long runs log progress (``logging``, logger ``scaleladder.mesoscale.kmc``) and write checkpoints
atomically (``.npz`` through a temp file and ``os.replace``; :func:`write_checkpoint`,
:func:`read_checkpoint`).
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from numba import njit

from ..core.codec import register
from ..core.errors import CalculationError, InputError
from ..core.units import BOLTZMANN_EV
from ..core.validate import finite, finite_array, one_of, positive, positive_int
from ..handoffs.events import EventCatalog
from ..uq import Estimate, one_sigma_samples
from ._rng import uniform as _uniform

__all__ = ["Lattice", "build_lattice", "KMCModel", "KMCState", "KMCRun", "init_walkers",
           "init_vacancies", "run_kmc", "write_checkpoint", "read_checkpoint",
           "VacancyDiffusion", "simulate_vacancy_diffusion", "RandomWalk", "simulate_random_walk",
           "ArrheniusFit", "fit_arrhenius", "TRACER_CORRELATION_FACTORS"]

logger = logging.getLogger(__name__)

#: Literature tracer correlation factors of vacancy diffusion (single vacancy, dilute limit):
#: Compaan & Haven (1956, 1958), Manning (1968), Montet (1973).
TRACER_CORRELATION_FACTORS = {"honeycomb": 1.0 / 3.0, "square": 0.46694, "triangular": 0.56006,
                              "sc": 0.65311, "bcc": 0.72722, "fcc": 0.78146}

_A2_PER_S_IN_M2_PER_S = 1e-20
_SYSTEMS = ("walkers", "vacancy")


# ============================================================================================
# lattices
# ============================================================================================
def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


@register("KMCLattice")
@dataclass(frozen=True, eq=False)
class Lattice:
    """Sites of a periodic supercell and their neighbour shells (build with
    :meth:`from_atoms` or :func:`build_lattice`).

    Attributes
    ----------
    cell : numpy.ndarray, shape (3, 3)
        The unit cell that is repeated (Å, rows are the cell vectors).
    pbc : numpy.ndarray of bool, shape (3,)
        Periodic directions (``size`` is 1 along the others).
    basis : numpy.ndarray, shape (n_basis, 3)
        Cartesian positions of the sites of the unit cell (Å).
    size : tuple of 3 int
        Repetitions of the unit cell; ``n_sites = n_basis * prod(size)``.
    shell_distances : numpy.ndarray, shape (n_shells,)
        Distance of each neighbour shell (Å), increasing.
    neighbours : tuple of numpy.ndarray
        ``neighbours[s]``: int32 array ``(n_sites, z_s)``, the sites of shell ``s + 1`` of every
        site (``-1`` pads kinds with fewer neighbours in that shell).
    vectors : tuple of numpy.ndarray
        ``vectors[s]``: ``(n_basis, z_s, 3)`` jump vectors (Å) of the slots of shell ``s + 1``
        for each site kind (zeros where padded).
    name : str
        Label (``"fcc"``, ``"custom"``, ...).
    """

    cell: np.ndarray
    pbc: np.ndarray
    basis: np.ndarray
    size: tuple
    shell_distances: np.ndarray
    neighbours: tuple
    vectors: tuple
    name: str = "custom"

    def to_state(self) -> dict:
        return {"cell": self.cell, "pbc": self.pbc, "basis": self.basis,
                "size": [int(k) for k in self.size], "shell_distances": self.shell_distances,
                "neighbours": list(self.neighbours), "vectors": list(self.vectors),
                "name": self.name}

    @classmethod
    def from_state(cls, s: dict) -> "Lattice":
        return cls(cell=np.asarray(s["cell"], dtype=float), pbc=np.asarray(s["pbc"], dtype=bool),
                   basis=np.asarray(s["basis"], dtype=float), size=tuple(s["size"]),
                   shell_distances=np.asarray(s["shell_distances"], dtype=float),
                   neighbours=tuple(np.ascontiguousarray(a, dtype=np.int32)
                                    for a in s["neighbours"]),
                   vectors=tuple(np.asarray(a, dtype=float) for a in s["vectors"]),
                   name=s["name"])

    # ---------------------------------------------------------------------------------------
    @classmethod
    def from_atoms(cls, atoms, size=(1, 1, 1), n_shells: int = 1, tolerance: float = 1e-4,
                   name: str = "custom") -> "Lattice":
        """The lattice of the sites of ``atoms.repeat(size)``, with ``n_shells`` neighbour shells.

        Parameters
        ----------
        atoms : ase.Atoms
            Unit cell; every atom is a site (the species is ignored).  Directions with
            ``pbc=False`` are not periodic (``size`` must be 1 there).
        size : int or tuple of 3 int
            Repetitions of the cell.  It must be large enough that the neighbours of a site in
            the shells asked for are distinct sites (else ``InputError``).
        n_shells : int
            Number of neighbour shells to find (1 = nearest neighbours).
        tolerance : float
            Distances within ``tolerance`` (Å) belong to the same shell.

        Raises
        ------
        InputError
            No atoms, a singular cell, a bad ``size``, a structure whose sites have fewer than
            ``n_shells`` shells of neighbours (e.g. isolated atoms), a supercell too small.
        """
        if not hasattr(atoms, "get_positions") or len(atoms) == 0:
            raise InputError("atoms", repr(atoms), "an ase.Atoms with at least one atom")
        n_shells = positive_int("n_shells", n_shells)
        tol = positive("tolerance", tolerance)
        pbc = np.array(atoms.pbc, dtype=bool)
        cell = np.array(atoms.cell[:], dtype=float)
        if _is_int(size):
            size = tuple(int(size) if p else 1 for p in pbc)
        try:
            size = tuple(int(s) for s in size)
            ok = len(size) == 3 and all(_is_int(s) or float(s).is_integer() for s in size)
        except (TypeError, ValueError):
            ok = False
        if not ok or any(s < 1 for s in size):
            raise InputError("size", size, "an int or 3 positive ints (repetitions of the cell)")
        for ax in range(3):
            if not pbc[ax] and size[ax] != 1:
                raise InputError("size", size, f"1 along the non-periodic axis {ax}")
        # complete a cell with zero vectors along non-periodic axes, for the geometry only
        if abs(np.linalg.det(cell)) < 1e-12:
            if np.any(pbc & (np.linalg.norm(cell, axis=1) < 1e-12)):
                raise InputError("atoms.cell", cell.tolist(), "a non-singular cell along the "
                                 "periodic directions")
            cell = _complete_cell(cell, pbc)
        basis = np.array(atoms.get_positions(), dtype=float)
        nb = len(basis)

        # ---- search radius and image box that covers it ------------------------------------
        heights = abs(np.linalg.det(cell)) / np.linalg.norm(
            np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
        spread = float(np.max(np.linalg.norm(basis[:, None] - basis[None], axis=-1)))
        radius = float(np.min(heights[pbc])) if pbc.any() else spread
        radius = max(radius, spread, 1e-6)
        for _attempt in range(12):
            dists, rel = _images(cell, pbc, basis, radius + spread)
            d_all = np.sort(dists[(dists > tol) & (dists <= radius)])
            shells = _distinct(d_all, tol)
            if len(shells) >= n_shells:
                break
            if not pbc.any():
                break
            radius *= 1.6
        shells = shells[:n_shells]
        if len(shells) < n_shells:
            raise InputError("atoms", f"{nb} site(s), pbc={pbc.tolist()}",
                             f"a structure whose sites have at least {n_shells} neighbour "
                             f"shell(s) (found {len(shells)})",
                             hint="a lattice without neighbours has no events")
        dists, rel = _images(cell, pbc, basis, shells[-1] + tol + spread)
        # rel: (nb, m, 5) rows [b', n0, n1, n2] + vec; dists (nb, m)
        reps = np.array(size)
        n_sites = nb * int(np.prod(reps))
        tiles = np.arange(n_sites // nb, dtype=np.int64)
        t0 = tiles // (reps[1] * reps[2])
        t1 = (tiles // reps[2]) % reps[1]
        t2 = tiles % reps[2]
        nbrs, vecs = [], []
        for s, d in enumerate(shells):
            per_kind = []
            for b in range(nb):
                sel = np.abs(dists[b] - d) <= tol
                items = rel[b][sel]
                order = np.lexsort((items[:, 6], items[:, 5], items[:, 4], items[:, 0]))
                per_kind.append(items[order])
            z = max(len(p) for p in per_kind)
            nbr = np.full((n_sites, z), -1, dtype=np.int32)
            vec = np.zeros((nb, z, 3))
            for b, items in enumerate(per_kind):
                targets = set()
                for k, row in enumerate(items):
                    bp, n = int(row[0]), row[1:4].astype(np.int64)
                    vec[b, k] = row[4:7]
                    key = (bp, *(int(x) for x in np.mod(n, reps)))
                    if key in targets or key == (b, 0, 0, 0):
                        raise InputError("size", size, "a supercell large enough that the "
                                         f"{len(items)} neighbours of shell {s + 1} "
                                         f"(d = {d:.4g} Å) are distinct sites",
                                         hint="repeat the cell more")
                    targets.add(key)
                    j = (((t0 + n[0]) % reps[0]) * reps[1] + (t1 + n[1]) % reps[1]) * reps[2] \
                        + (t2 + n[2]) % reps[2]
                    nbr[b::nb, k] = (j * nb + bp).astype(np.int32)
            nbrs.append(nbr)
            vecs.append(vec)
        # earlier shells must not reach the same sites as later ones (checked per kind)
        for b in range(nb):
            seen = np.concatenate([n[b][n[b] >= 0] for n in nbrs])
            if len(np.unique(seen)) != len(seen) or np.any(seen == b):
                raise InputError("size", size, "a supercell large enough that the neighbour "
                                 "shells hold distinct sites", hint="repeat the cell more")
        lat = cls(cell=cell, pbc=pbc, basis=basis, size=tuple(int(s) for s in size),
                  shell_distances=np.array(shells), neighbours=tuple(nbrs), vectors=tuple(vecs),
                  name=str(name))
        for arr in (lat.cell, lat.pbc, lat.basis, lat.shell_distances, *lat.neighbours,
                    *lat.vectors):
            arr.setflags(write=False)
        return lat

    # ---------------------------------------------------------------------------------------
    @property
    def n_basis(self) -> int:
        return len(self.basis)

    @property
    def n_sites(self) -> int:
        return self.n_basis * int(np.prod(self.size))

    @property
    def n_shells(self) -> int:
        return len(self.shell_distances)

    @property
    def coordination(self) -> tuple[int, ...]:
        """Neighbours per shell (largest over site kinds)."""
        return tuple(n.shape[1] for n in self.neighbours)

    @property
    def dimensionality(self) -> int:
        """Rank of the jump vectors of all shells (1, 2 or 3): the ``d`` of ``<r^2> = 2 d D t``."""
        v = np.concatenate([v.reshape(-1, 3) for v in self.vectors])
        return int(np.linalg.matrix_rank(v, tol=1e-8 * max(1.0, float(np.abs(v).max()))))

    def site_positions(self) -> np.ndarray:
        """Cartesian positions (Å) of all sites, shape ``(n_sites, 3)`` (same order as
        ``atoms.repeat(size)``)."""
        n = np.indices(self.size).reshape(3, -1).T @ self.cell
        return (n[:, None, :] + self.basis[None]).reshape(-1, 3)

    def __str__(self) -> str:
        return (f"Lattice({self.name}, {self.n_sites} sites, size {self.size}, shells "
                + ", ".join(f"{d:.4g} Å x{z}" for d, z in zip(self.shell_distances,
                                                             self.coordination)) + ")")


def _complete_cell(cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    cell = cell.copy()
    for ax in range(3):
        if np.linalg.norm(cell[ax]) < 1e-12:
            others = [cell[i] for i in range(3) if i != ax and np.linalg.norm(cell[i]) > 1e-12]
            if len(others) == 2:
                v = np.cross(others[0], others[1])
            else:
                trial = np.eye(3)
                v = trial[int(np.argmin([abs(np.dot(t, others[0])) for t in trial]))] \
                    if others else trial[ax]
            cell[ax] = v / np.linalg.norm(v)
    if abs(np.linalg.det(cell)) < 1e-12:
        cell = cell + np.eye(3) * 1e-3
    return cell


def _images(cell, pbc, basis, radius):
    """All vectors from each basis site to the sites (b', n) within ``radius`` (Å)."""
    heights = abs(np.linalg.det(cell)) / np.linalg.norm(
        np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    m = [int(math.ceil(radius / h)) + 1 if p else 0 for h, p in zip(heights, pbc)]
    grid = np.stack(np.meshgrid(*[np.arange(-mi, mi + 1) for mi in m], indexing="ij"),
                    -1).reshape(-1, 3)
    nb = len(basis)
    rows = []
    for b in range(nb):
        vec = (basis[None, :, :] + (grid @ cell)[:, None, :] - basis[b]).reshape(-1, 3)
        bp = np.tile(np.arange(nb), len(grid))
        n = np.repeat(grid, nb, axis=0)
        rows.append(np.column_stack([bp, n, np.round(vec, 10)]))
    rel = np.stack(rows)
    dists = np.linalg.norm(rel[:, :, 4:7], axis=-1)
    return dists, rel


def _distinct(sorted_d: np.ndarray, tol: float) -> list[float]:
    out: list[float] = []
    for d in sorted_d:
        if not out or d - out[-1] > tol:
            out.append(float(d))
    return out


_BUILDERS = ("sc", "bcc", "fcc", "chain", "square", "triangular", "honeycomb")


def build_lattice(name: str, a: float = 1.0, size=10, n_shells: int = 1) -> Lattice:
    """A standard lattice of the sites of a supercell.

    Parameters
    ----------
    name : str
        ``"sc"``, ``"bcc"``, ``"fcc"`` (primitive cells of ``ase.build.bulk``, so ``size**3``
        sites), ``"chain"`` (1D), ``"square"``, ``"triangular"`` or ``"honeycomb"`` (2D, in the
        xy plane, not periodic along z).
    a : float
        Lattice parameter (Å): the cubic edge for sc/bcc/fcc, the site spacing for chain,
        square and triangular, the nearest-neighbour distance for honeycomb.
    size : int or tuple of 3 int
        Repetitions of the primitive cell (an int: along every periodic direction).
    n_shells : int
        Neighbour shells to find.

    Returns
    -------
    Lattice

    Raises
    ------
    InputError
        An unknown name, ``a <= 0``, a bad size or one too small for the shells asked for.
    """
    from ase import Atoms
    from ase.build import bulk

    one_of("name", name, _BUILDERS)
    a = positive("a", a)
    if name in ("sc", "bcc", "fcc"):
        atoms = bulk("Cu", name, a=a)
    elif name == "chain":
        atoms = Atoms("H", positions=[[0, 0, 0]], cell=[a, 0, 0], pbc=(True, False, False))
    elif name == "square":
        atoms = Atoms("H", positions=[[0, 0, 0]], cell=[[a, 0, 0], [0, a, 0], [0, 0, 0]],
                      pbc=(True, True, False))
    elif name == "triangular":
        atoms = Atoms("H", positions=[[0, 0, 0]],
                      cell=[[a, 0, 0], [a / 2, a * math.sqrt(3) / 2, 0], [0, 0, 0]],
                      pbc=(True, True, False))
    else:  # honeycomb: graphene-like, nearest-neighbour distance a
        c = a * math.sqrt(3)
        atoms = Atoms("HH", positions=[[0, 0, 0], [0, a, 0]],
                      cell=[[c, 0, 0], [c / 2, 1.5 * a, 0], [0, 0, 0]], pbc=(True, True, False))
    return Lattice.from_atoms(atoms, size=size, n_shells=n_shells, name=name)


# ============================================================================================
# numba kernels: sum tree, events (random numbers: mesoscale._rng)
# ============================================================================================
@njit(cache=True, inline="always")
def _tree_set(tree, L, i, rate):
    k = L + i
    tree[k] = rate
    k //= 2
    while k >= 1:
        tree[k] = tree[2 * k] + tree[2 * k + 1]
        k //= 2


@njit(cache=True, inline="always")
def _tree_set2(tree, L, i, rate_i, j, rate_j):
    """Set two leaves; their common ancestors are recomputed once."""
    a = L + i
    b = L + j
    tree[a] = rate_i
    tree[b] = rate_j
    while a != b:
        a //= 2
        b //= 2
        tree[a] = tree[2 * a] + tree[2 * a + 1]
        if b != a:
            tree[b] = tree[2 * b] + tree[2 * b + 1]
    a //= 2
    while a >= 1:
        tree[a] = tree[2 * a] + tree[2 * a + 1]
        a //= 2


@njit(cache=True, inline="always")
def _tree_find(tree, L, x):
    """Leaf whose cumulative-rate interval holds ``x`` (0 <= x < tree[1]) and the residual."""
    k = 1
    while k < L:
        left = 2 * k
        if x < tree[left] or tree[left + 1] <= 0.0:
            k = left
        else:
            x -= tree[left]
            k = left + 1
    return k - L, x


@njit(cache=True)
def _tree_fill(tree, L):
    for k in range(L - 1, 0, -1):
        tree[k] = tree[2 * k] + tree[2 * k + 1]


@njit(cache=True, inline="always")
def _pick_slot(nbr, i, rates, x, occupied_only, site_state):
    """Slot of site ``i`` whose cumulative-rate interval holds ``x`` (last usable if roundoff)."""
    z = nbr.shape[1]
    last = -1
    acc = 0.0
    for k in range(z):
        j = nbr[i, k]
        if j < 0 or rates[k] <= 0.0:
            continue
        if occupied_only and site_state[j] < 0:
            continue
        last = k
        acc += rates[k]
        if x < acc:
            return k
    return last


@njit(cache=True, inline="always")
def _vacancy_rate(i, nbr, slot_rate, nb, site_state):
    kind = i % nb
    r = 0.0
    for k in range(nbr.shape[1]):
        j = nbr[i, k]
        if j >= 0 and site_state[j] >= 0:
            r += slot_rate[kind, k]
    return r


@njit(cache=True)
def _vacancy_init_tree(tree, L, nbr, slot_rate, nb, site_state, mover_site):
    tree[:] = 0.0
    for v in range(mover_site.shape[0]):
        i = mover_site[v]
        tree[L + i] = _vacancy_rate(i, nbr, slot_rate, nb, site_state)
    _tree_fill(tree, L)


@njit(cache=True)
def _run_vacancy(nbr, slot_rate, vec, nb, site_state, mover_site, mover_disp, atom_disp,
                 atom_jumps, tree, L, rng, scal, max_events, t_stop, sample_t, sample_idx,
                 out_mover_r2, out_atom_r2):
    """Advance the vacancy system by up to ``max_events`` exchanges or until ``t_stop``.

    ``scal`` = [time (s), events, sum |b|^2 of the jumps (Å^2), sum_i R_i^2 of the atoms
    (Å^2, running)].  Returns (events done, stopped by time).
    """
    n_mov = mover_site.shape[0]
    save = np.empty(4, dtype=np.uint64)
    done = 0
    while done < max_events:
        total = tree[1]
        if not total > 0.0:
            return done, 2
        save[:] = rng[:]
        i, x = _tree_find(tree, L, _uniform(rng) * total)
        kind = i % nb
        k = _pick_slot(nbr, i, slot_rate[kind], x, True, site_state)
        dt = -math.log(1.0 - _uniform(rng)) / total
        t_new = scal[0] + dt
        while (sample_idx[0] < sample_t.shape[0] and sample_t[sample_idx[0]] < t_new
               and sample_t[sample_idx[0]] <= t_stop):
            m = sample_idx[0]
            for v in range(n_mov):
                out_mover_r2[m, v] = (mover_disp[v, 0] ** 2 + mover_disp[v, 1] ** 2
                                      + mover_disp[v, 2] ** 2)
            out_atom_r2[m] = scal[3]
            sample_idx[0] += 1
        if t_new > t_stop:
            rng[:] = save[:]       # give the draws back: a continuation redraws this event
            return done, 1
        j = nbr[i, k]
        a = site_state[j]
        v = -1 - site_state[i]
        bx = vec[kind, k, 0]
        by = vec[kind, k, 1]
        bz = vec[kind, k, 2]
        site_state[i] = a
        site_state[j] = -1 - v
        mover_site[v] = j
        mover_disp[v, 0] += bx
        mover_disp[v, 1] += by
        mover_disp[v, 2] += bz
        r2_old = atom_disp[a, 0] ** 2 + atom_disp[a, 1] ** 2 + atom_disp[a, 2] ** 2
        atom_disp[a, 0] -= bx
        atom_disp[a, 1] -= by
        atom_disp[a, 2] -= bz
        atom_jumps[a] += 1
        scal[3] += atom_disp[a, 0] ** 2 + atom_disp[a, 1] ** 2 + atom_disp[a, 2] ** 2 - r2_old
        scal[2] += bx * bx + by * by + bz * bz
        scal[0] = t_new
        scal[1] += 1.0
        done += 1
        _tree_set2(tree, L, i, 0.0, np.int64(j), _vacancy_rate(j, nbr, slot_rate, nb, site_state))
        if n_mov > 1:   # other vacancies next to i or j see a changed neighbourhood
            for cc in range(2):
                c = i if cc == 0 else np.int64(j)
                for kk in range(nbr.shape[1]):
                    m2 = nbr[c, kk]
                    if m2 >= 0 and m2 != j and site_state[m2] < 0:
                        _tree_set(tree, L, m2, _vacancy_rate(m2, nbr, slot_rate, nb, site_state))
    return done, 0


@njit(cache=True)
def _run_walkers(nbr, slot_rate, kind_rate, vec, nb, mover_site, mover_disp, tree, L, rng, scal,
                 max_events, t_stop, sample_t, sample_idx, out_mover_r2):
    """Independent walkers: leaf w = walker w with the total rate of its site's kind."""
    n_mov = mover_site.shape[0]
    dummy = np.zeros(1, dtype=np.int64)
    save = np.empty(4, dtype=np.uint64)
    done = 0
    while done < max_events:
        total = tree[1]
        if not total > 0.0:
            return done, 2
        save[:] = rng[:]
        w, x = _tree_find(tree, L, _uniform(rng) * total)
        i = mover_site[w]
        kind = i % nb
        k = _pick_slot(nbr, i, slot_rate[kind], x, False, dummy)
        dt = -math.log(1.0 - _uniform(rng)) / total
        t_new = scal[0] + dt
        while (sample_idx[0] < sample_t.shape[0] and sample_t[sample_idx[0]] < t_new
               and sample_t[sample_idx[0]] <= t_stop):
            m = sample_idx[0]
            for v in range(n_mov):
                out_mover_r2[m, v] = (mover_disp[v, 0] ** 2 + mover_disp[v, 1] ** 2
                                      + mover_disp[v, 2] ** 2)
            sample_idx[0] += 1
        if t_new > t_stop:
            rng[:] = save[:]
            return done, 1
        j = nbr[i, k]
        mover_site[w] = j
        mover_disp[w, 0] += vec[kind, k, 0]
        mover_disp[w, 1] += vec[kind, k, 1]
        mover_disp[w, 2] += vec[kind, k, 2]
        scal[2] += vec[kind, k, 0] ** 2 + vec[kind, k, 1] ** 2 + vec[kind, k, 2] ** 2
        scal[0] = t_new
        scal[1] += 1.0
        done += 1
        nk = j % nb
        if nk != kind:
            _tree_set(tree, L, w, kind_rate[nk])
    return done, 0


# ============================================================================================
# model and state
# ============================================================================================
@register("KMCModel")
@dataclass(frozen=True, eq=False)
class KMCModel:
    """A lattice with the rates of an event catalog at one temperature (build with
    :meth:`build`).

    Attributes
    ----------
    lattice : Lattice
    catalog : EventCatalog
    temperature_K : float
    neighbours : numpy.ndarray, int32 (n_sites, Z)
        The neighbour slots of the shells the catalog uses, concatenated.
    slot_rates : numpy.ndarray (n_basis, Z)
        Rate (1/s) of a jump through each slot for each site kind (0: no event applies).
    slot_vectors : numpy.ndarray (n_basis, Z, 3)
        Jump vectors (Å).
    event_rates : numpy.ndarray (n_events,)
        Nominal rate of each catalog event (1/s).
    """

    lattice: Lattice
    catalog: EventCatalog
    temperature_K: float
    neighbours: np.ndarray
    slot_rates: np.ndarray
    slot_vectors: np.ndarray
    event_rates: np.ndarray

    @classmethod
    def build(cls, lattice: Lattice, catalog: EventCatalog, temperature_K: float,
              vector_tolerance: float = 1e-3) -> "KMCModel":
        """Assign the catalog's Arrhenius rates to the neighbour slots of ``lattice``.

        An event of shell ``s`` applies to every slot of that shell, or only to the slots whose
        jump vector matches one of its ``hop_vectors`` (within ``vector_tolerance`` Å).

        Raises
        ------
        InputError
            Not a Lattice / EventCatalog, ``temperature_K <= 0``, an event shell beyond the
            lattice's shells, hop vectors that match no jump of their shell, a lattice whose
            slots all have zero rate.
        """
        if not isinstance(lattice, Lattice):
            raise InputError("lattice", repr(lattice), "a Lattice (build_lattice or "
                             "Lattice.from_atoms)")
        if not isinstance(catalog, EventCatalog):
            raise InputError("catalog", repr(catalog), "an EventCatalog")
        rates = catalog.rate_values(temperature_K)     # validates T
        shells = catalog.shells
        if shells[-1] > lattice.n_shells:
            raise InputError("catalog", f"event shell {shells[-1]}",
                             f"shells the lattice has (1..{lattice.n_shells})",
                             hint="build the lattice with more n_shells")
        if len(shells) == 1:
            nbr = lattice.neighbours[shells[0] - 1]
        else:
            nbr = np.ascontiguousarray(np.concatenate([lattice.neighbours[s - 1] for s in shells],
                                                      axis=1))
        vec = np.concatenate([lattice.vectors[s - 1] for s in shells], axis=1)
        offsets = np.cumsum([0] + [lattice.neighbours[s - 1].shape[1] for s in shells])
        nb = lattice.n_basis
        valid = np.zeros(vec.shape[:2], dtype=bool)
        for b in range(nb):
            valid[b] = nbr[b] >= 0
        slot_rate = np.zeros(vec.shape[:2])
        for e, r in zip(catalog.events, rates):
            s = shells.index(e.shell)
            lo, hi = offsets[s], offsets[s + 1]
            mask = valid[:, lo:hi].copy()
            if len(e.hop_vectors):
                d = np.linalg.norm(vec[:, lo:hi, None, :] - e.hop_vectors[None, None], axis=-1)
                hit = d <= vector_tolerance
                mask &= hit.any(axis=-1)
                unmatched = ~hit.reshape(-1, len(e.hop_vectors)).any(axis=0)
                if unmatched.any():
                    raise InputError("hop_vectors", e.hop_vectors[unmatched].tolist(),
                                     f"jump vectors of shell {e.shell} of the lattice "
                                     f"(event {e.name!r})")
            slot_rate[:, lo:hi] += np.where(mask, r, 0.0)
        if not np.any(slot_rate > 0):
            raise InputError("catalog", str(catalog), "events with a positive rate on the "
                             "lattice's neighbour slots")
        for a in (slot_rate, vec, rates):
            a.setflags(write=False)
        return cls(lattice=lattice, catalog=catalog, temperature_K=float(temperature_K),
                   neighbours=nbr, slot_rates=slot_rate, slot_vectors=vec, event_rates=rates)

    def to_state(self) -> dict:
        return {"lattice": self.lattice, "catalog": self.catalog,
                "temperature_K": self.temperature_K, "neighbours": self.neighbours,
                "slot_rates": self.slot_rates, "slot_vectors": self.slot_vectors,
                "event_rates": self.event_rates}

    @classmethod
    def from_state(cls, s: dict) -> "KMCModel":
        arrays = {k: np.array(s[k], dtype=float) for k in ("slot_rates", "slot_vectors",
                                                            "event_rates")}
        for a in arrays.values():
            a.setflags(write=False)
        return cls(lattice=s["lattice"], catalog=s["catalog"],
                   temperature_K=float(s["temperature_K"]),
                   neighbours=np.ascontiguousarray(s["neighbours"], dtype=np.int32), **arrays)

    @property
    def dimensionality(self) -> int:
        """Rank of the jump vectors that carry a rate (the ``d`` of ``<r^2> = 2 d D t``)."""
        v = self.slot_vectors[self.slot_rates > 0]
        return int(np.linalg.matrix_rank(v, tol=1e-8 * max(1.0, float(np.abs(v).max()))))

    def random_walk_diffusivity(self) -> float:
        """Diffusion coefficient (Å^2/s) of one uncorrelated walker,
        ``D = <sum_k Γ_k |b_k|^2> / (2 d)`` averaged over site kinds (exact when the mean jump
        out of every kind is zero, as on Bravais lattices and the honeycomb lattice)."""
        b2 = np.sum(self.slot_vectors ** 2, axis=-1)
        return float(np.mean(np.sum(self.slot_rates * b2, axis=1)) / (2 * self.dimensionality))

    def __str__(self) -> str:
        return (f"KMCModel({self.lattice}, {self.catalog}, T = {self.temperature_K:g} K, rates "
                + ", ".join(f"{r:.4g}" for r in self.event_rates) + " 1/s)")


_KMC_ARRAYS = ("site_state", "mover_site", "mover_displacement", "atom_displacement",
               "atom_jumps", "rng")


@register("KMCState")
@dataclass(frozen=True, eq=False)
class KMCState:
    """Everything a KMC run needs to continue (plain arrays; :func:`write_checkpoint`).

    Attributes
    ----------
    system : str
        ``"walkers"`` or ``"vacancy"``.
    n_sites : int
        Sites of the lattice it belongs to.
    site_state : numpy.ndarray, int64 (n_sites,) or (0,)
        Vacancy system: the tag of the atom on each site, ``-1 - v`` for vacancy ``v``.
    mover_site : numpy.ndarray, int64 (M,)
        Site of each walker / vacancy.
    mover_displacement : numpy.ndarray (M, 3)
        Unwrapped displacement of each walker / vacancy since the start (Å).
    atom_displacement : numpy.ndarray (n_atoms, 3)
        Vacancy system: unwrapped displacement of each tagged atom (Å); ``(0, 3)`` for walkers.
    atom_jumps : numpy.ndarray, int64 (n_atoms,)
        Jumps made by each tagged atom.
    rng : numpy.ndarray, uint64 (4,)
        xoshiro256** state.
    time_s : float
        Time of the last event (s).
    n_events : int
        Events done since the start.
    jump_b2_sum : float
        Sum of ``|b|^2`` over all jumps made (Å^2).
    seed : int or list
        The seed the run started from (record only).
    """

    system: str
    n_sites: int
    site_state: np.ndarray
    mover_site: np.ndarray
    mover_displacement: np.ndarray
    atom_displacement: np.ndarray
    atom_jumps: np.ndarray
    rng: np.ndarray
    time_s: float = 0.0
    n_events: int = 0
    jump_b2_sum: float = 0.0
    seed: object = 0

    def to_state(self) -> dict:
        return {"system": self.system, "n_sites": int(self.n_sites),
                **{k: getattr(self, k) for k in _KMC_ARRAYS},
                "time_s": float(self.time_s), "n_events": int(self.n_events),
                "jump_b2_sum": float(self.jump_b2_sum), "seed": self.seed}

    @classmethod
    def from_state(cls, s: dict) -> "KMCState":
        seed = s["seed"]
        return cls(system=s["system"], n_sites=int(s["n_sites"]),
                   **{k: np.array(s[k]) for k in _KMC_ARRAYS}, time_s=float(s["time_s"]),
                   n_events=int(s["n_events"]), jump_b2_sum=float(s["jump_b2_sum"]),
                   seed=tuple(seed) if isinstance(seed, (list, tuple)) else seed)

    def copy(self) -> "KMCState":
        return dataclasses.replace(self, **{f.name: np.array(getattr(self, f.name), copy=True)
                                            for f in dataclasses.fields(self)
                                            if isinstance(getattr(self, f.name), np.ndarray)})

    @property
    def n_movers(self) -> int:
        return len(self.mover_site)

    def tracer_r2_sum(self) -> float:
        """``sum_i |R_i|^2`` over the tagged atoms (Å^2)."""
        return float(np.sum(self.atom_displacement ** 2))


def _rng_words(seed) -> np.ndarray:
    if isinstance(seed, (list, tuple)):
        ints = [positive_int("seed", s, 0) for s in seed]
    else:
        ints = [positive_int("seed", seed, 0)]
    words = np.random.SeedSequence(ints).generate_state(4, np.uint64)
    if not words.any():
        words[0] = np.uint64(1)
    return words


def init_walkers(lattice: Lattice, n_walkers: int, seed=0, sites=None) -> KMCState:
    """``n_walkers`` independent walkers at random sites (or at ``sites``), no displacement.

    Raises
    ------
    InputError
        ``n_walkers < 1``, sites out of range or of the wrong length.
    """
    n = positive_int("n_walkers", n_walkers)
    rng_words = _rng_words(seed)
    if sites is None:
        sites = np.random.default_rng(np.random.SeedSequence(
            [int(w) for w in rng_words])).integers(0, lattice.n_sites, n)
    sites = np.asarray(sites, dtype=np.int64)
    if sites.shape != (n,) or np.any(sites < 0) or np.any(sites >= lattice.n_sites):
        raise InputError("sites", sites.tolist() if sites.size < 20 else f"shape {sites.shape}",
                         f"{n} site indices in [0, {lattice.n_sites})")
    return KMCState(system="walkers", n_sites=lattice.n_sites,
                    site_state=np.zeros(0, dtype=np.int64), mover_site=sites.copy(),
                    mover_displacement=np.zeros((n, 3)), atom_displacement=np.zeros((0, 3)),
                    atom_jumps=np.zeros(0, dtype=np.int64), rng=rng_words, seed=seed)


def init_vacancies(lattice: Lattice, vacancy_sites=(0,), seed=0) -> KMCState:
    """A lattice full of tagged atoms with vacancies at ``vacancy_sites``.

    Atoms are tagged ``0..n_sites - n_vac - 1`` in site order.

    Raises
    ------
    InputError
        No vacancy, repeated or out-of-range sites, a lattice without atoms left.
    """
    vs = np.asarray(vacancy_sites, dtype=np.int64).reshape(-1)
    n = lattice.n_sites
    if vs.size == 0 or np.any(vs < 0) or np.any(vs >= n) or len(np.unique(vs)) != len(vs):
        raise InputError("vacancy_sites", vs.tolist(), f"distinct site indices in [0, {n})")
    if len(vs) >= n:
        raise InputError("vacancy_sites", f"{len(vs)} vacancies", f"fewer than {n} (sites)")
    occ = np.ones(n, dtype=bool)
    occ[vs] = False
    site_state = np.empty(n, dtype=np.int64)
    site_state[occ] = np.arange(n - len(vs), dtype=np.int64)
    site_state[vs] = -1 - np.arange(len(vs), dtype=np.int64)
    n_atoms = n - len(vs)
    return KMCState(system="vacancy", n_sites=n, site_state=site_state, mover_site=vs.copy(),
                    mover_displacement=np.zeros((len(vs), 3)),
                    atom_displacement=np.zeros((n_atoms, 3)),
                    atom_jumps=np.zeros(n_atoms, dtype=np.int64), rng=_rng_words(seed),
                    seed=seed)


# ============================================================================================
# running, checkpoints
# ============================================================================================
@dataclass(frozen=True, eq=False)
class KMCRun:
    """What :func:`run_kmc` returns.

    Attributes
    ----------
    state : KMCState
        The state after the run (continue from it, or checkpoint it).
    sample_times_s : numpy.ndarray (n_s,)
        Times asked for that the run reached.
    mover_r2 : numpy.ndarray (n_s, M)
        ``|r|^2`` (Å^2) of each walker / vacancy at the sample times.
    atom_r2_sum : numpy.ndarray (n_s,)
        Vacancy system: ``sum_i |R_i|^2`` (Å^2) of the tagged atoms at the sample times.
    events : int
        Events done in this call.
    elapsed_s : float
        Wall time in the event loop (s).
    stopped : str
        ``"events"``, ``"time"`` or ``"no events"`` (total rate zero).
    checkpoint : str or None
        The last checkpoint written.
    """

    state: KMCState
    sample_times_s: np.ndarray
    mover_r2: np.ndarray
    atom_r2_sum: np.ndarray
    events: int
    elapsed_s: float
    stopped: str
    checkpoint: str | None = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else float("nan")


def _tree_size(n_leaves: int) -> int:
    return 1 << max(0, int(n_leaves - 1).bit_length())


def run_kmc(state: KMCState, model: KMCModel, *, n_events: int | None = None,
            t_max_s: float | None = None, sample_times_s=None, checkpoint=None,
            checkpoint_every: int = 10_000_000, progress: bool = True,
            store_model: bool = True) -> KMCRun:
    """Advance a copy of ``state`` by residence-time KMC.

    Parameters
    ----------
    state : KMCState
        From :func:`init_walkers`, :func:`init_vacancies`, an earlier run or a checkpoint.
    model : KMCModel
        Lattice and rates (its lattice must have ``state.n_sites`` sites).
    n_events : int, optional
        Events to do in this call (at least one of ``n_events`` / ``t_max_s``).
    t_max_s : float, optional
        Stop before the first event later than this absolute time (s).  The state stays that of
        the last event (``time_s`` its time); the draws of the crossing event are given back, so
        a continuation is identical to a longer run.
    sample_times_s : array_like, optional
        Increasing absolute times (s) at which to record ``|r|^2`` of the movers and the tracer
        sum (the state between events is that of the last event).
    checkpoint : str or path, optional
        Write the state there (atomically) every ``checkpoint_every`` events and at the end.
    checkpoint_every : int
        Events per chunk (also the progress-report interval).
    progress : bool
        Log progress (INFO) after each chunk.
    store_model : bool, default True
        Store the engine (model, time limit, sample times) in the checkpoint, so that
        :func:`scaleladder.core.simulation.resume_simulation` continues it from the file alone;
        False stores the state only (resume with ``run_kmc(read_checkpoint(path), model)``).

    Returns
    -------
    KMCRun

    Raises
    ------
    InputError
        A state that does not belong to the model's lattice, neither ``n_events`` nor
        ``t_max_s``, bad values, unsorted sample times.
    CalculationError
        A total rate of zero at the start (nothing can happen; e.g. walkers on sites without
        events).
    """
    from ..core.simulation import run_simulation

    if not isinstance(state, KMCState):
        raise InputError("state", repr(state), "a KMCState (init_walkers, init_vacancies, ...)")
    if n_events is None and t_max_s is None:
        raise InputError("n_events", None, "a number of events or a t_max_s")
    n_target = positive_int("n_events", n_events, 0) if n_events is not None else 2 ** 62
    every = positive_int("checkpoint_every", checkpoint_every)
    engine = KMCEngine(model, t_max_s=t_max_s, sample_times_s=sample_times_s)
    engine.start(state)
    if n_target == 0:
        return engine.result(state, 0, 0.0, "events", None)
    run = run_simulation(engine, state, n_target, observe_every=every, checkpoint=checkpoint,
                         checkpoint_every=every, store_engine=bool(store_model),
                         log_every=every if progress else 2 ** 62,
                         label=f"kmc ({state.system})")
    stopped = "events" if run.stopped == "steps" else run.stopped
    return engine.result(run.state, run.steps, run.elapsed_s, stopped, run.checkpoint)


@register("KMCEngine")
class KMCEngine:
    """Residence-time KMC of one model as an engine of the project's one simulation protocol
    (:mod:`scaleladder.core.simulation`): ``advance(state, n)`` does ``n`` events (fewer when the
    time limit is reached or no event can happen), ``observe`` records the time.

    Run-scoped sampling (``sample_times_s``: ``|r|^2`` of the movers and the tracer sum at given
    times) is kept by the engine, not in the state.  The engine (its :class:`KMCModel`, time
    limit and sample times) is codec-encodable: ``run_kmc(..., store_model=True)`` stores it in
    the checkpoint, and ``resume_simulation(path, n)`` then goes on from the file alone
    (``run_kmc(read_checkpoint(path), model, ...)`` resumes any KMC checkpoint with a model).
    """

    kind = "scaleladder.kmc/2"

    def __init__(self, model: KMCModel, *, t_max_s: float | None = None, sample_times_s=None):
        if not isinstance(model, KMCModel):
            raise InputError("model", repr(model), "a KMCModel (KMCModel.build)")
        self.model = model
        self.t_stop = finite("t_max_s", t_max_s) if t_max_s is not None else math.inf
        st = np.array([] if sample_times_s is None else sample_times_s, dtype=float).reshape(-1)
        if not np.all(np.isfinite(st)) or np.any(np.diff(st) <= 0):
            raise InputError("sample_times_s", st.tolist()[:10], "finite, increasing times (s)")
        self.st = st
        self.t_max_s = t_max_s
        self._tree = None       # (state it belongs to, tree, L, kind_rate)
        self._started = False

    def to_state(self) -> dict:
        return {"model": self.model, "t_max_s": self.t_max_s, "sample_times_s": self.st}

    def progress_fraction(self, state: KMCState) -> float | None:
        """The simulated time reached over ``t_max_s`` (the run's real measure of progress
        when it stops on time); None for a run to a number of events."""
        if self.t_max_s is None or not self.t_stop > 0:
            return None
        return float(min(1.0, max(0.0, state.time_s / self.t_stop)))

    @classmethod
    def from_state(cls, s: dict) -> "KMCEngine":
        return cls(s["model"], t_max_s=s["t_max_s"], sample_times_s=s["sample_times_s"])

    def start(self, state: KMCState) -> None:
        """Prepare the sampling buffers and the rate tree for ``state`` (checks it fits)."""
        model = self.model
        if state.n_sites != model.lattice.n_sites:
            raise InputError("state", f"{state.n_sites} sites",
                             f"a state of the model's lattice ({model.lattice.n_sites} sites)")
        self.out_r2 = np.zeros((len(self.st), state.n_movers))
        self.out_atoms = np.zeros(len(self.st))
        self.idx = np.zeros(1, dtype=np.int64)
        # samples at times before the current state's time are not observable any more
        self.idx[0] = int(np.searchsorted(self.st, state.time_s, side="left"))
        self.first_sample = int(self.idx[0])
        self._tree = (state, *self._build_tree(state))
        self._started = True
        if not self._tree[1][1] > 0:
            raise CalculationError(f"run_kmc: the total rate is zero: no event can happen in "
                                   f"this {state.system} state (check the catalog's shells and "
                                   "hop vectors)")

    def _build_tree(self, state: KMCState):
        model, nb = self.model, self.model.lattice.n_basis
        if state.system == "vacancy":
            L = _tree_size(state.n_sites)
            tree = np.empty(2 * L)
            _vacancy_init_tree(tree, L, model.neighbours, model.slot_rates, nb, state.site_state,
                               state.mover_site)
            return tree, L, None
        valid = np.stack([model.neighbours[b] >= 0 for b in range(nb)])
        kind_rate = np.sum(np.where(valid, model.slot_rates, 0.0), axis=1)
        L = _tree_size(state.n_movers)
        tree = np.zeros(2 * L)
        tree[L:L + state.n_movers] = kind_rate[state.mover_site % nb]
        _tree_fill(tree, L)
        return tree, L, kind_rate

    def advance(self, state: KMCState, n: int) -> tuple[KMCState, int, str | None]:
        if not self._started:           # a resumed engine (resume_simulation)
            self.start(state)
        if self._tree is None or self._tree[0] is not state:
            self._tree = (state, *self._build_tree(state))
        _, tree, L, kind_rate = self._tree
        model, nb = self.model, self.model.lattice.n_basis
        new = state.copy()
        scal = np.array([new.time_s, float(new.n_events), new.jump_b2_sum,
                         new.tracer_r2_sum()])
        if new.system == "vacancy":
            done, flag = _run_vacancy(model.neighbours, model.slot_rates, model.slot_vectors, nb,
                                      new.site_state, new.mover_site, new.mover_displacement,
                                      new.atom_displacement, new.atom_jumps, tree, L, new.rng,
                                      scal, int(n), self.t_stop, self.st, self.idx, self.out_r2,
                                      self.out_atoms)
        else:
            done, flag = _run_walkers(model.neighbours, model.slot_rates, kind_rate,
                                      model.slot_vectors, nb, new.mover_site,
                                      new.mover_displacement, tree, L, new.rng, scal, int(n),
                                      self.t_stop, self.st, self.idx, self.out_r2)
        new = dataclasses.replace(new, time_s=float(scal[0]), n_events=int(round(scal[1])),
                                  jump_b2_sum=float(scal[2]))
        self._tree = (new, tree, L, kind_rate)
        return new, int(done), {0: None, 1: "time", 2: "no events"}[int(flag)]

    def observe(self, state: KMCState) -> dict:
        return {"time_s": float(state.time_s)}

    def result(self, state: KMCState, events: int, elapsed: float, stopped: str,
               checkpoint: str | None) -> KMCRun:
        n_rec = int(self.idx[0])
        a = self.first_sample
        return KMCRun(state=state, sample_times_s=self.st[a:n_rec], mover_r2=self.out_r2[a:n_rec],
                      atom_r2_sum=self.out_atoms[a:n_rec], events=events, elapsed_s=elapsed,
                      stopped=stopped, checkpoint=checkpoint)


def write_checkpoint(path, state: KMCState) -> Path:
    """Write ``state`` as the one simulation driver does (the one checkpoint format: atomic,
    fsynced, hashed, no pickle; the model is not stored)."""
    from ..core.simulation import write_simulation_checkpoint

    return write_simulation_checkpoint(path, KMCEngine.kind, state)


def read_checkpoint(path) -> KMCState:
    """The state in a checkpoint written by :func:`write_checkpoint` or ``run_kmc(checkpoint=)``.

    Raises
    ------
    InputError
        (a ``CheckpointError``) a missing, unreadable, corrupt or foreign file.
    """
    from ..core.simulation import read_simulation_checkpoint

    _, state, _ = read_simulation_checkpoint(path, kind=KMCEngine.kind, require_engine=False)
    if not isinstance(state, KMCState):
        raise InputError("checkpoint", str(path), "a KMC checkpoint")
    return state


# ============================================================================================
# observables
# ============================================================================================
def _sem_estimate(value: float, sem: float, unit: str, source: str = "kmc_sampling") -> Estimate:
    """A scalar Estimate whose source has two samples ``value ± sem / sqrt(2)``: sample variance
    (ddof=1) = ``sem**2``."""
    return Estimate(value, unit, {source: one_sigma_samples(value, sem)})


def _ratio_jackknife(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """``sum(num) / sum(den)`` and its jackknife standard error over the trajectories."""
    n = len(num)
    r = float(num.sum() / den.sum())
    if n < 2:
        return r, float("nan")
    loo = (num.sum() - num) / (den.sum() - den)
    return r, float(math.sqrt((n - 1) / n * np.sum((loo - loo.mean()) ** 2)))


@dataclass(frozen=True, eq=False)
class VacancyDiffusion:
    """Result of :func:`simulate_vacancy_diffusion` (errors: jackknife over trajectories).

    Attributes
    ----------
    D_vacancy : Estimate
        Vacancy diffusion coefficient ``<R_v^2> / (2 d t)`` (m^2/s), from blocks.
    D_tracer : Estimate
        Tracer diffusion coefficient per atom ``sum_i <R_i^2> / (n_atoms 2 d t)`` (m^2/s), at
        the vacancy site fraction ``vacancy_fraction``.
    correlation_factor : Estimate
        ``f = sum_i R_i^2 / (sum_jumps |b|^2)`` (dimensionless).
    vacancy_fraction : float
        Vacancies per site.
    n_trajectories, n_events : int
        Independent trajectories and events per trajectory.
    dimensionality : int
    per_trajectory : dict
        ``time_s, vacancy_r2, tracer_r2_sum, jump_b2_sum`` arrays (s, Å^2), and
        ``block_vacancy_r2, block_time_s`` (n_trajectories, n_blocks).
    temperature_K : float
    events_per_s : float
        Event rate of the KMC loop (wall clock).
    """

    D_vacancy: Estimate
    D_tracer: Estimate
    correlation_factor: Estimate
    vacancy_fraction: float
    n_trajectories: int
    n_events: int
    dimensionality: int
    per_trajectory: dict
    temperature_K: float
    events_per_s: float


def simulate_vacancy_diffusion(model: KMCModel, n_trajectories: int = 16,
                               n_events: int = 100_000, seed: int = 0, n_vacancies: int = 1,
                               n_blocks: int = 50, progress: bool = True) -> VacancyDiffusion:
    """Vacancy-mediated tracer diffusion from independent KMC trajectories.

    Each trajectory starts from a perfect lattice with ``n_vacancies`` vacancies at random sites
    (trajectory ``k`` seeded with ``(seed, k)``) and runs ``n_events`` exchanges.

    Parameters
    ----------
    model : KMCModel
    n_trajectories : int
        >= 2 (the errors come from their scatter).
    n_events : int
        Vacancy jumps per trajectory: long enough that the truncated correlations at the end
        (O(1 / n_events)) do not matter.
    seed : int
    n_vacancies : int
        Vacancies per trajectory (1 = the dilute limit of the literature's ``f``).
    n_blocks : int
        Each trajectory is cut into this many blocks of events; ``D_vacancy`` comes from the
        vacancy displacements over the blocks (independent increments of a Markov walk), which
        gives a far smaller error than one end-to-end displacement per trajectory.  The tracer
        sums and ``f`` use whole trajectories (atom jumps are correlated across blocks).
    progress : bool
        Log each trajectory (INFO).

    Returns
    -------
    VacancyDiffusion
    """
    n_traj = positive_int("n_trajectories", n_trajectories, 2)
    n_ev = positive_int("n_events", n_events)
    n_vac = positive_int("n_vacancies", n_vacancies)
    lat = model.lattice
    if n_vac >= lat.n_sites:
        raise InputError("n_vacancies", n_vac, f"fewer than the {lat.n_sites} sites")
    n_blk = min(positive_int("n_blocks", n_blocks), n_ev)
    bounds = np.linspace(0, n_ev, n_blk + 1).round().astype(int)
    t = np.empty(n_traj)
    rv2 = np.empty(n_traj)
    ra2 = np.empty(n_traj)
    b2 = np.empty(n_traj)
    blk_r2 = np.empty((n_traj, n_blk))
    blk_t = np.empty((n_traj, n_blk))
    events, wall = 0, 0.0
    for k in range(n_traj):
        sites = np.random.default_rng([seed, k, 7]).choice(lat.n_sites, n_vac, replace=False)
        s = init_vacancies(lat, sites, seed=(seed, k))
        for m in range(n_blk):
            r0, t0 = s.mover_displacement.copy(), s.time_s
            run = run_kmc(s, model, n_events=int(bounds[m + 1] - bounds[m]), progress=False)
            s = run.state
            blk_r2[k, m] = float(np.sum((s.mover_displacement - r0) ** 2)) / n_vac
            blk_t[k, m] = s.time_s - t0
            events += run.events
            wall += run.elapsed_s
        t[k] = s.time_s
        rv2[k] = float(np.sum(s.mover_displacement ** 2)) / n_vac
        ra2[k] = s.tracer_r2_sum()
        b2[k] = s.jump_b2_sum
        if progress:
            logger.info("simulate_vacancy_diffusion: trajectory %d/%d, f = %.4f", k + 1, n_traj,
                        ra2[k] / b2[k])
    d = model.dimensionality
    n_atoms = lat.n_sites - n_vac
    dv, dv_e = _ratio_jackknife(blk_r2.ravel(), 2 * d * blk_t.ravel())
    dt_, dt_e = _ratio_jackknife(ra2 / n_atoms, 2 * d * t)
    f, f_e = _ratio_jackknife(ra2, b2)
    cv = _A2_PER_S_IN_M2_PER_S
    return VacancyDiffusion(
        D_vacancy=_sem_estimate(dv * cv, dv_e * cv, "m^2/s"),
        D_tracer=_sem_estimate(dt_ * cv, dt_e * cv, "m^2/s"),
        correlation_factor=_sem_estimate(f, f_e, ""),
        vacancy_fraction=n_vac / lat.n_sites, n_trajectories=n_traj, n_events=n_ev,
        dimensionality=d,
        per_trajectory={"time_s": t, "vacancy_r2": rv2, "tracer_r2_sum": ra2, "jump_b2_sum": b2,
                        "block_vacancy_r2": blk_r2, "block_time_s": blk_t},
        temperature_K=model.temperature_K, events_per_s=events / wall if wall > 0 else math.nan)


@dataclass(frozen=True, eq=False)
class RandomWalk:
    """Result of :func:`simulate_random_walk`.

    Attributes
    ----------
    times_s : numpy.ndarray (n_s,)
    msd : numpy.ndarray (n_s,)
        Mean ``|r|^2`` over the walkers (Å^2).
    msd_sem : numpy.ndarray (n_s,)
        Its standard error (walkers are independent).
    D : Estimate
        ``msd / (2 d t)`` at the last time (m^2/s) with its standard error.
    D_expected : float
        :meth:`KMCModel.random_walk_diffusivity` (m^2/s).
    dimensionality : int
    """

    times_s: np.ndarray
    msd: np.ndarray
    msd_sem: np.ndarray
    D: Estimate
    D_expected: float
    dimensionality: int


def simulate_random_walk(model: KMCModel, n_walkers: int, times_s, seed: int = 0) -> RandomWalk:
    """Mean-square displacement of ``n_walkers`` independent walkers at ``times_s``.

    Raises
    ------
    InputError
        ``n_walkers < 2``, times not positive and increasing.
    """
    n = positive_int("n_walkers", n_walkers, 2)
    ts = finite_array("times_s", times_s, (None,))
    if len(ts) == 0 or ts[0] <= 0 or np.any(np.diff(ts) <= 0):
        raise InputError("times_s", ts.tolist()[:10], "positive, increasing times (s)")
    st = init_walkers(model.lattice, n, seed=seed)
    run = run_kmc(st, model, t_max_s=float(ts[-1]), sample_times_s=ts, progress=False)
    if len(run.sample_times_s) != len(ts):
        raise CalculationError("simulate_random_walk: the walkers stopped before the last time")
    msd = run.mover_r2.mean(axis=1)
    sem = run.mover_r2.std(axis=1, ddof=1) / math.sqrt(n)
    d = model.dimensionality
    cv = _A2_PER_S_IN_M2_PER_S
    D = _sem_estimate(msd[-1] / (2 * d * ts[-1]) * cv, sem[-1] / (2 * d * ts[-1]) * cv, "m^2/s")
    return RandomWalk(times_s=ts, msd=msd, msd_sem=sem, D=D,
                      D_expected=model.random_walk_diffusivity() * cv, dimensionality=d)


@dataclass(frozen=True, eq=False)
class ArrheniusFit:
    """``D(T) = D0 exp(-Ea / k_B T)`` fitted by weighted least squares on ``ln D``.

    Attributes
    ----------
    D0 : Estimate
        Prefactor, in the unit of the input D.
    Ea : Estimate
        Activation energy (eV).
    covariance : numpy.ndarray (2, 2)
        Covariance of ``(ln D0, Ea)``.
    chi2 : float
        Weighted sum of squared residuals of ``ln D``.
    dof : int
        Points minus 2.
    temperatures_K, D, D_err : numpy.ndarray
        The data fitted (D and its standard errors in ``unit``).
    unit : str
    """

    D0: Estimate
    Ea: Estimate
    covariance: np.ndarray
    chi2: float
    dof: int
    temperatures_K: np.ndarray
    D: np.ndarray
    D_err: np.ndarray
    unit: str

    def predict(self, temperature_K) -> np.ndarray:
        """Nominal ``D0 exp(-Ea / k_B T)`` (in ``unit``)."""
        t = np.asarray(temperature_K, dtype=float)
        return float(self.D0.value) * np.exp(-float(self.Ea.value) / (BOLTZMANN_EV * t))


def fit_arrhenius(temperatures_K: Sequence[float], D, D_err=None, unit: str = "m^2/s"
                  ) -> ArrheniusFit:
    """Fit ``ln D = ln D0 - Ea / (k_B T)``, weights ``1 / σ(ln D)^2 = (D / σ_D)^2``.

    Parameters
    ----------
    temperatures_K : sequence of float
        Temperatures (K), > 0, at least 2 distinct (3 to estimate errors without ``D_err``).
    D : sequence of Estimate or float
        Diffusion coefficients (> 0).  Estimates give their ``std`` as errors and their unit
        (converted to ``unit``).
    D_err : sequence of float, optional
        Standard errors of plain ``D`` values.  Without any error the fit is unweighted and the
        covariance is scaled by the residual variance.
    unit : str
        Unit of plain ``D`` values (and of ``D0``).

    Returns
    -------
    ArrheniusFit
        ``D0`` and ``Ea`` as Estimates sharing the source ``"arrhenius_fit"`` (4 samples along
        the eigenvectors of the covariance, so their correlation is kept).

    Raises
    ------
    InputError
        Fewer than 2 points, lengths that differ, ``T <= 0``, ``D <= 0``, errors <= 0, all
        temperatures equal.
    """
    t = finite_array("temperatures_K", temperatures_K, (None,))
    if len(t) < 2:
        raise InputError("temperatures_K", t.tolist(), "at least 2 temperatures")
    if np.any(t <= 0):
        raise InputError("temperatures_K", t.tolist(), "temperatures > 0 K")
    if np.ptp(t) <= 0:
        raise InputError("temperatures_K", t.tolist(), "at least 2 different temperatures")
    D = list(D)
    if len(D) != len(t):
        raise InputError("D", f"{len(D)} values", f"one per temperature ({len(t)})")
    vals, errs = np.empty(len(t)), np.zeros(len(t))
    for i, d in enumerate(D):
        if isinstance(d, Estimate):
            d = d.to(unit)
            vals[i], errs[i] = float(d.value), float(d.std)
        else:
            vals[i] = finite(f"D[{i}]", d)
    if D_err is not None:
        de = finite_array("D_err", D_err, (len(t),))
        errs = np.where(errs > 0, errs, de)
    if np.any(vals <= 0):
        raise InputError("D", vals.tolist(), "positive diffusion coefficients")
    weighted = bool(np.any(errs > 0))
    if weighted and np.any(errs <= 0):
        raise InputError("D_err", errs.tolist(), "a positive error for every point (or none)")
    x = 1.0 / (BOLTZMANN_EV * t)
    y = np.log(vals)
    w = (vals / errs) ** 2 if weighted else np.ones(len(t))
    A = np.column_stack([np.ones_like(x), -x])
    AtW = A.T * w
    cov = np.linalg.inv(AtW @ A)
    p = cov @ (AtW @ y)
    res = y - A @ p
    chi2 = float(np.sum(w * res ** 2))
    dof = len(t) - 2
    if not weighted:
        if dof < 1:
            raise InputError("D_err", None, "errors of D (or at least 3 temperatures)")
        cov = cov * chi2 / dof
    lam, U = np.linalg.eigh(cov)
    c = math.sqrt(3.0 / 2.0)           # 4 samples ±c sqrt(λ) u: sample covariance = cov
    samples = np.array([p + sgn * c * math.sqrt(max(l_, 0.0)) * U[:, k]
                        for k, l_ in enumerate(lam) for sgn in (1.0, -1.0)])
    D0 = Estimate(float(np.exp(p[0])), unit, {"arrhenius_fit": np.exp(samples[:, 0])})
    Ea = Estimate(float(p[1]), "eV", {"arrhenius_fit": samples[:, 1]})
    return ArrheniusFit(D0=D0, Ea=Ea, covariance=cov, chi2=chi2, dof=dof, temperatures_K=t,
                        D=vals, D_err=errs, unit=unit)
