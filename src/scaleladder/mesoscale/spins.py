"""Classical spin Monte Carlo (Ising and Heisenberg) on any lattice, from :class:`ExchangeParameters`.

The model is ``H = -sum_bonds K_b e_i.e_j`` with unit vectors ``e`` (Heisenberg) or ``e = ±1``
(Ising), each bond once, ``K = factor * J`` in eV from the handoff's convention
(:meth:`ExchangeParameters.bond_couplings`).  Temperatures are in kelvin (``k_B`` from
:data:`scaleladder.core.units.BOLTZMANN_EV`).

Pieces (state as data, steps as functions):

* :func:`build_lattice` -- the periodic ``L1 x L2 x L3`` supercell as CSR neighbour arrays.
* :class:`SpinState` -- spins, the xoshiro256** random-number state and the sweep counter: plain
  arrays, so a checkpoint (``.npz``, temp file + ``os.replace``) resumes bit for bit.
* :func:`run_spin_mc` -- thermalise, then measure energy and magnetisation after each step; one
  step is a Metropolis sweep or a fixed number of Wolff clusters (about N spins), followed (Heisenberg) by
  over-relaxation sweeps.  Numba kernels.
* :class:`SpinMCResult` -- ``<e>``, ``<|m|>``, χ, C, Binder ``U4 = 1 - <m^4>/(3<m^2>^2)`` with
  jackknife errors over blocks.
* :func:`critical_temperature` -- Binder-cumulant crossings across sizes, with a bootstrap error,
  beside the mean-field estimate (:func:`mean_field_temperature`).

Order parameter: the uniform magnetisation, so ``critical_temperature`` is meant for ferro- (or
ferri-) magnets; antiferromagnets need a staggered order parameter (not provided).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from numba import njit

from ..core.codec import register
from ..core.errors import CalculationError, InputError
from ..core.units import BOLTZMANN_EV
from ..core.validate import finite_array, one_of, positive, positive_int
from ..handoffs.magnetism import ExchangeParameters
from ..uq import Estimate
from ._rng import seed_words
from ._rng import uniform as _uniform

__all__ = ["SpinLattice", "SpinState", "SpinMCResult", "CriticalTemperatureResult",
           "build_lattice", "init_state", "run_spin_mc", "critical_temperature",
           "mean_field_temperature", "lattice_energy", "lattice_magnetisation"]

log = logging.getLogger(__name__)

_MODELS = ("ising", "heisenberg")
_ALGORITHMS = ("metropolis", "wolff")


# ============================================================================ random numbers
# xoshiro256** from mesoscale._rng


@njit(cache=True, inline="always")
def _unit_vector(s, out):
    z = 2.0 * _uniform(s) - 1.0
    phi = 2.0 * math.pi * _uniform(s)
    r = math.sqrt(max(0.0, 1.0 - z * z))
    out[0] = r * math.cos(phi)
    out[1] = r * math.sin(phi)
    out[2] = z


def _seed_state(seed: int) -> np.ndarray:
    """The xoshiro256** words of ``seed`` (the project's SeedSequence convention,
    :func:`scaleladder.mesoscale._rng.seed_words`)."""
    return seed_words(seed)


# ============================================================================ numba kernels
@njit(cache=True, nogil=True)
def _ising_metropolis(spins, offs, nbr, cpl, beta, rng):
    """N single-flip attempts at random sites.

    Random (not sequential) sites: a sequential sweep that always accepts dE = 0 flips is not
    ergodic (on a chain it cycles deterministically through zero-energy states).
    """
    n = spins.shape[0]
    acc = 0
    for _ in range(n):
        i = int(_uniform(rng) * n)
        h = 0.0
        for k in range(offs[i], offs[i + 1]):
            h += cpl[k] * spins[nbr[k]]
        de = 2.0 * spins[i] * h
        if de <= 0.0 or _uniform(rng) < math.exp(-beta * de):
            spins[i] = -spins[i]
            acc += 1
    return acc


@njit(cache=True, nogil=True)
def _heis_metropolis(spins, offs, nbr, cpl, beta, rng):
    n = spins.shape[0]
    acc = 0
    new = np.empty(3)
    for i in range(n):
        hx = 0.0
        hy = 0.0
        hz = 0.0
        for k in range(offs[i], offs[i + 1]):
            j = nbr[k]
            c = cpl[k]
            hx += c * spins[j, 0]
            hy += c * spins[j, 1]
            hz += c * spins[j, 2]
        _unit_vector(rng, new)
        de = -((new[0] - spins[i, 0]) * hx + (new[1] - spins[i, 1]) * hy
               + (new[2] - spins[i, 2]) * hz)
        if de <= 0.0 or _uniform(rng) < math.exp(-beta * de):
            spins[i, 0] = new[0]
            spins[i, 1] = new[1]
            spins[i, 2] = new[2]
            acc += 1
    return acc


@njit(cache=True, nogil=True)
def _heis_overrelax(spins, offs, nbr, cpl):
    """Reflect every spin about its local field (energy conserving, deterministic)."""
    n = spins.shape[0]
    for i in range(n):
        hx = 0.0
        hy = 0.0
        hz = 0.0
        for k in range(offs[i], offs[i + 1]):
            j = nbr[k]
            c = cpl[k]
            hx += c * spins[j, 0]
            hy += c * spins[j, 1]
            hz += c * spins[j, 2]
        h2 = hx * hx + hy * hy + hz * hz
        if h2 > 0.0:
            f = 2.0 * (spins[i, 0] * hx + spins[i, 1] * hy + spins[i, 2] * hz) / h2
            spins[i, 0] = f * hx - spins[i, 0]
            spins[i, 1] = f * hy - spins[i, 1]
            spins[i, 2] = f * hz - spins[i, 2]
            # renormalise against drift
            nn = math.sqrt(spins[i, 0] ** 2 + spins[i, 1] ** 2 + spins[i, 2] ** 2)
            spins[i, 0] /= nn
            spins[i, 1] /= nn
            spins[i, 2] /= nn


@njit(cache=True, nogil=True)
def _ising_wolff(spins, offs, nbr, cpl, beta, rng, n_clusters, mark, stack, tag):
    """``n_clusters`` Wolff clusters; bond probability ``1 - exp(-2 beta K s_i s_j)`` (K s_i s_j > 0)."""
    n = spins.shape[0]
    flipped = 0
    clusters = 0
    for _c in range(n_clusters):
        tag += 1
        seed = int(_uniform(rng) * n)
        mark[seed] = tag
        stack[0] = seed
        top = 1
        spins[seed] = -spins[seed]
        size = 1
        while top > 0:
            top -= 1
            i = stack[top]
            si = -spins[i]  # value before the flip
            for k in range(offs[i], offs[i + 1]):
                j = nbr[k]
                if mark[j] == tag:
                    continue
                x = cpl[k] * si * spins[j]
                if x > 0.0 and _uniform(rng) < 1.0 - math.exp(-2.0 * beta * x):
                    mark[j] = tag
                    spins[j] = -spins[j]
                    stack[top] = j
                    top += 1
                    size += 1
        flipped += size
        clusters += 1
    return flipped, clusters, tag


@njit(cache=True, nogil=True)
def _heis_wolff(spins, offs, nbr, cpl, beta, rng, n_clusters, mark, stack, tag):
    """``n_clusters`` Wolff-embedding clusters: reflect about a random plane (normal r)."""
    n = spins.shape[0]
    flipped = 0
    clusters = 0
    r = np.empty(3)
    for _c in range(n_clusters):
        tag += 1
        _unit_vector(rng, r)
        seed = int(_uniform(rng) * n)
        mark[seed] = tag
        p = spins[seed, 0] * r[0] + spins[seed, 1] * r[1] + spins[seed, 2] * r[2]
        for a in range(3):
            spins[seed, a] -= 2.0 * p * r[a]
        stack[0] = seed
        top = 1
        size = 1
        while top > 0:
            top -= 1
            i = stack[top]
            si = -(spins[i, 0] * r[0] + spins[i, 1] * r[1] + spins[i, 2] * r[2])
            for k in range(offs[i], offs[i + 1]):
                j = nbr[k]
                if mark[j] == tag:
                    continue
                sj = spins[j, 0] * r[0] + spins[j, 1] * r[1] + spins[j, 2] * r[2]
                x = cpl[k] * si * sj
                if x > 0.0 and _uniform(rng) < 1.0 - math.exp(-2.0 * beta * x):
                    mark[j] = tag
                    for a in range(3):
                        spins[j, a] -= 2.0 * sj * r[a]
                    stack[top] = j
                    top += 1
                    size += 1
        flipped += size
        clusters += 1
    return flipped, clusters, tag


@njit(cache=True, nogil=True)
def _energy_ising(spins, offs, nbr, cpl):
    e = 0.0
    for i in range(spins.shape[0]):
        h = 0.0
        for k in range(offs[i], offs[i + 1]):
            h += cpl[k] * spins[nbr[k]]
        e -= 0.5 * spins[i] * h
    return e


@njit(cache=True, nogil=True)
def _energy_heis(spins, offs, nbr, cpl):
    e = 0.0
    for i in range(spins.shape[0]):
        for k in range(offs[i], offs[i + 1]):
            j = nbr[k]
            e -= 0.5 * cpl[k] * (spins[i, 0] * spins[j, 0] + spins[i, 1] * spins[j, 1]
                                 + spins[i, 2] * spins[j, 2])
    return e


@njit(cache=True, nogil=True)
def _run_ising(spins, offs, nbr, cpl, beta, rng, n_steps, algorithm, n_clusters, mark, stack, tag,
               e_out, m_out, measure):
    """``n_steps`` Ising MC steps; if ``measure``, record E and |M| (totals) after each."""
    n = offs.shape[0] - 1
    acc = 0
    flipped = 0
    clusters = 0
    for s in range(n_steps):
        if algorithm == 0:
            acc += _ising_metropolis(spins, offs, nbr, cpl, beta, rng)
        else:
            f, c, tag = _ising_wolff(spins, offs, nbr, cpl, beta, rng, n_clusters, mark, stack,
                                        tag)
            flipped += f
            clusters += c
        if measure:
            e_out[s] = _energy_ising(spins, offs, nbr, cpl)
            m = 0.0
            for i in range(n):
                m += spins[i]
            m_out[s] = abs(m)
    return acc, flipped, clusters, tag


@njit(cache=True, nogil=True)
def _run_heis(spins, offs, nbr, cpl, beta, rng, n_steps, algorithm, n_clusters, n_over, mark,
              stack, tag, e_out, m_out, measure):
    """``n_steps`` Heisenberg MC steps (+ ``n_over`` over-relaxation sweeps each)."""
    n = offs.shape[0] - 1
    acc = 0
    flipped = 0
    clusters = 0
    for s in range(n_steps):
        if algorithm == 0:
            acc += _heis_metropolis(spins, offs, nbr, cpl, beta, rng)
        else:
            f, c, tag = _heis_wolff(spins, offs, nbr, cpl, beta, rng, n_clusters, mark, stack,
                                       tag)
            flipped += f
            clusters += c
        for _ in range(n_over):
            _heis_overrelax(spins, offs, nbr, cpl)
        if measure:
            e_out[s] = _energy_heis(spins, offs, nbr, cpl)
            mx = 0.0
            my = 0.0
            mz = 0.0
            for i in range(n):
                mx += spins[i, 0]
                my += spins[i, 1]
                mz += spins[i, 2]
            m_out[s] = math.sqrt(mx * mx + my * my + mz * mz)
    return acc, flipped, clusters, tag


# ============================================================================ lattice
@dataclass(frozen=True, eq=False)
class SpinLattice:
    """A periodic supercell of an exchange model as CSR neighbour arrays.

    Attributes
    ----------
    size : tuple of 3 int
        Supercell repetitions ``(L1, L2, L3)``.
    n_sites : int
        ``L1 L2 L3 n_basis``; site ``((n1 L2 + n2) L3 + n3) n_basis + b``.
    offsets, neighbours, couplings : ndarray
        Neighbours of site i are ``neighbours[offsets[i]:offsets[i+1]]`` with bond couplings
        ``K`` (eV; ``H = -sum_bonds K e_i.e_j``, each bond once, both directions listed here).
    """

    size: tuple
    n_sites: int
    offsets: np.ndarray
    neighbours: np.ndarray
    couplings: np.ndarray
    n_basis: int


def build_lattice(params: ExchangeParameters, size: int | Sequence[int]) -> SpinLattice:
    """The periodic supercell of ``params`` with its neighbour arrays.

    Parameters
    ----------
    params : ExchangeParameters
        Sites, bonds and convention (converted here to bond couplings K in eV).
    size : int or 3 ints
        Repetitions along the lattice vectors; an int ``L`` means ``L`` along every periodic axis
        and 1 along non-periodic ones.

    Raises
    ------
    InputError
        ``size`` not positive, > 1 along a non-periodic axis, or too small for the bonds
        (``L_a <= 2 max|R_a|``: a bond would meet its own periodic image).
    """
    if not isinstance(params, ExchangeParameters):
        raise InputError("params", type(params).__name__, "an ExchangeParameters handoff")
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = tuple(int(size) if p else 1 for p in params.pbc)
    try:
        size = tuple(positive_int("size", s) for s in size)  # type: ignore[union-attr]
    except TypeError:
        raise InputError("size", size, "an int or three positive ints") from None
    if len(size) != 3:
        raise InputError("size", size, "three positive ints")
    for a in range(3):
        if not params.pbc[a] and size[a] != 1:
            raise InputError("size", size, f"1 along the non-periodic axis {a}")
    bonds = params.bond_couplings()
    K = np.asarray(bonds.J.value, dtype=float)
    R = bonds.translation
    for a in range(3):
        if params.pbc[a] and len(R) and size[a] <= 2 * int(np.abs(R[:, a]).max()):
            raise InputError("size", size, f"L[{a}] > {2 * int(np.abs(R[:, a]).max())} (twice "
                             "the longest bond translation along that axis)")
    nb = params.n_sites
    L1, L2, L3 = size
    cells = np.array(np.meshgrid(np.arange(L1), np.arange(L2), np.arange(L3),
                                 indexing="ij")).reshape(3, -1).T
    n_cells = len(cells)
    n = n_cells * nb
    L = np.array(size)

    def index(c: np.ndarray, b: np.ndarray) -> np.ndarray:
        c = np.mod(c, L)
        return ((c[:, 0] * L2 + c[:, 1]) * L3 + c[:, 2]) * nb + b

    src, dst, kk = [], [], []
    for bi, bj, r, k in zip(bonds.i, bonds.j, R, K):
        a = index(cells, np.full(n_cells, bi))
        b = index(cells + r, np.full(n_cells, bj))
        src += [a, b]
        dst += [b, a]
        kk += [np.full(n_cells, k)] * 2
    src_a = np.concatenate(src) if src else np.zeros(0, np.int64)
    dst_a = np.concatenate(dst) if dst else np.zeros(0, np.int64)
    k_a = np.concatenate(kk) if kk else np.zeros(0)
    order = np.argsort(src_a, kind="stable")
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src_a, minlength=n), out=offsets[1:])
    return SpinLattice(size=size, n_sites=n, offsets=offsets,
                       neighbours=dst_a[order].astype(np.int64),
                       couplings=k_a[order].astype(float), n_basis=nb)


# ============================================================================ state
@dataclass(eq=False)
class SpinState:
    """Plain-data state of a run: spins, RNG words and the step counter.

    ``spins`` is ``(N,)`` of ±1.0 (Ising) or ``(N, 3)`` unit vectors (Heisenberg); ``rng`` is the
    xoshiro256** state (4 uint64); ``step`` counts MC steps done (thermalisation included);
    ``tag`` the cluster-marker counter; ``clusters_per_step`` the Wolff clusters per step (adapted
    during thermalisation to flip about N spins per step, then fixed).
    """

    spins: np.ndarray
    rng: np.ndarray
    step: int = 0
    tag: int = 0
    clusters_per_step: int = 1

    @property
    def model(self) -> str:
        return "ising" if self.spins.ndim == 1 else "heisenberg"


def init_state(lattice: SpinLattice, model: str, seed: int = 0, start: str = "random") -> SpinState:
    """A starting state: ``start="random"`` (infinite T) or ``"ordered"`` (all along +z)."""
    one_of("model", model, _MODELS)
    one_of("start", start, ("random", "ordered"))
    rng = _seed_state(seed)
    gen = np.random.default_rng(seed)
    n = lattice.n_sites
    if model == "ising":
        spins = np.ones(n) if start == "ordered" else gen.choice([-1.0, 1.0], size=n)
    else:
        if start == "ordered":
            spins = np.zeros((n, 3))
            spins[:, 2] = 1.0
        else:
            v = gen.normal(size=(n, 3))
            spins = v / np.linalg.norm(v, axis=1)[:, None]
    return SpinState(spins=np.ascontiguousarray(spins, dtype=float), rng=rng)


def lattice_energy(lattice: SpinLattice, spins: np.ndarray) -> float:
    """Total energy ``-sum_bonds K e_i.e_j`` (eV) of a spin configuration."""
    s = np.ascontiguousarray(spins, dtype=float)
    f = _energy_ising if s.ndim == 1 else _energy_heis
    return float(f(s, lattice.offsets, lattice.neighbours, lattice.couplings))


def lattice_magnetisation(spins: np.ndarray) -> float:
    """``|sum_i e_i|`` (total, not per site)."""
    return float(np.linalg.norm(np.sum(spins, axis=0)))


# ============================================================================ observables
@dataclass(frozen=True, eq=False)
class SpinMCResult:
    """Observables of one run at one temperature, with jackknife errors over ``n_blocks`` blocks.

    Attributes
    ----------
    temperature_K : float
    model, algorithm : str
    n_sites : int
    energy, energy_err : float
        ``<E>/N`` (eV per site).
    magnetisation, magnetisation_err : float
        ``<|M|>/N`` (dimensionless, unit spins).
    susceptibility, susceptibility_err : float
        ``chi = N (<m^2> - <|m|>^2) / (k_B T)`` (1/eV per site).
    specific_heat, specific_heat_err : float
        ``C/k_B = N (<e^2> - <e>^2) / (k_B T)^2`` per site (dimensionless).
    binder, binder_err : float
        ``U4 = 1 - <m^4> / (3 <m^2>^2)``.
    energies, magnetisations : ndarray
        Time series of ``E/N`` and ``|M|/N`` after each measured step.
    binder_blocks : ndarray
        Jackknife (leave-one-block-out) values of U4, for bootstrap/resampling downstream.
    acceptance : float
        Metropolis acceptance ratio, or mean cluster size / N for Wolff.
    elapsed_s : float
    """

    temperature_K: float
    model: str
    algorithm: str
    n_sites: int
    energy: float
    energy_err: float
    magnetisation: float
    magnetisation_err: float
    susceptibility: float
    susceptibility_err: float
    specific_heat: float
    specific_heat_err: float
    binder: float
    binder_err: float
    energies: np.ndarray = field(repr=False)
    magnetisations: np.ndarray = field(repr=False)
    binder_blocks: np.ndarray = field(repr=False)
    acceptance: float = float("nan")
    elapsed_s: float = 0.0


def _observables(e: np.ndarray, m: np.ndarray, n: int, kT: float) -> np.ndarray:
    m2 = np.mean(m ** 2)
    return np.array([
        np.mean(e),
        np.mean(m),
        n * (m2 - np.mean(m) ** 2) / kT,
        n * (np.mean(e ** 2) - np.mean(e) ** 2) / kT ** 2,
        1.0 - np.mean(m ** 4) / (3.0 * m2 ** 2),
    ])


def _jackknife(e: np.ndarray, m: np.ndarray, n: int, kT: float, n_blocks: int):
    full = _observables(e, m, n, kT)
    nb = min(n_blocks, len(e))
    edges = np.linspace(0, len(e), nb + 1).astype(int)
    jk = np.array([_observables(np.concatenate([e[:edges[b]], e[edges[b + 1]:]]),
                                np.concatenate([m[:edges[b]], m[edges[b + 1]:]]), n, kT)
                   for b in range(nb)])
    err = np.sqrt((nb - 1) / nb * np.sum((jk - jk.mean(axis=0)) ** 2, axis=0))
    return full, err, jk


# ============================================================================ checkpoint
def _settings_key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


# ============================================================================ driver
@register("SpinMCState")
@dataclass(frozen=True, eq=False)
class SpinMCState:
    """Everything a spin Monte Carlo run needs to continue: the spins, the xoshiro256** words, the
    step, the cluster tag and clusters per step, the measured series so far, the acceptance
    counters ``(accepted, flipped, clusters)`` and the key of the run's settings."""

    spins: np.ndarray
    rng: np.ndarray
    step: int
    tag: int
    clusters_per_step: int
    energies: np.ndarray
    magnetisations: np.ndarray
    counters: tuple
    key: str

    def to_state(self) -> dict:
        return {"spins": self.spins, "rng": self.rng, "step": int(self.step), "tag": int(self.tag),
                "clusters_per_step": int(self.clusters_per_step), "energies": self.energies,
                "magnetisations": self.magnetisations,
                "counters": [int(x) for x in self.counters], "key": self.key}

    @classmethod
    def from_state(cls, s: dict) -> "SpinMCState":
        return cls(spins=np.array(s["spins"]), rng=np.array(s["rng"]), step=int(s["step"]),
                   tag=int(s["tag"]), clusters_per_step=int(s["clusters_per_step"]),
                   energies=np.array(s["energies"]), magnetisations=np.array(s["magnetisations"]),
                   counters=tuple(int(x) for x in s["counters"]), key=str(s["key"]))


class SpinMCEngine:
    """Metropolis / Wolff (and over-relaxation) sweeps as an engine of the project's one simulation
    protocol (:mod:`scaleladder.core.simulation`).

    ``advance(state, n)`` does ``n`` Monte Carlo steps.  During thermalisation the Wolff clusters
    per step are adapted every ``adapt_every`` steps counted from step 0 (and at the end of the
    thermalisation) — at absolute boundaries, so ``advance(n)`` equals ``n`` single steps however
    the driver chunks them; during measurement the energy and magnetisation of every step go into
    the state's series.
    """

    kind = "scaleladder.spins/3"

    def __init__(self, lat: "SpinLattice", *, heis: bool, beta: float, algorithm: str,
                 overrelax: int, n_thermalize: int, n_sweeps: int, adapt_every: int, key: str):
        self.lat, self.heis, self.beta = lat, heis, beta
        self.alg = 0 if algorithm == "metropolis" else 1
        self.overrelax, self.n_thermalize, self.n_sweeps = overrelax, n_thermalize, n_sweeps
        self.adapt_every, self.key = int(adapt_every), key
        n = lat.n_sites
        self.mark = np.zeros(n, dtype=np.int64)
        self.stack = np.zeros(n, dtype=np.int64)
        self._since = (0, 0)    # (flipped, clusters) since the last adaptation boundary

    def advance(self, state: SpinMCState, n: int):
        lat, total = self.lat, self.n_thermalize + self.n_sweeps
        spins, rng = state.spins.copy(), state.rng.copy()
        e_series, m_series = state.energies.copy(), state.magnetisations.copy()
        acc, flipped, clusters = state.counters
        step, tag, cps = state.step, state.tag, state.clusters_per_step
        goal = min(total, step + int(n))
        if step % self.adapt_every == 0 or step == self.n_thermalize:
            self._since = (0, 0)
        while step < goal:
            measuring = step >= self.n_thermalize
            if measuring:
                stop = goal
            else:
                stop = min(goal, self.n_thermalize,
                           (step // self.adapt_every + 1) * self.adapt_every)
            k = stop - step
            off = step - self.n_thermalize if measuring else 0
            eo = e_series[off:off + k] if measuring else np.zeros(0)
            mo = m_series[off:off + k] if measuring else np.zeros(0)
            if self.heis:
                a, f, c, tag = _run_heis(spins, lat.offsets, lat.neighbours, lat.couplings,
                                         self.beta, rng, k, self.alg, cps, self.overrelax,
                                         self.mark, self.stack, tag, eo, mo, measuring)
            else:
                a, f, c, tag = _run_ising(spins, lat.offsets, lat.neighbours, lat.couplings,
                                          self.beta, rng, k, self.alg, cps, self.mark, self.stack,
                                          tag, eo, mo, measuring)
            tag = int(tag)
            if measuring:
                acc, flipped, clusters = acc + a, flipped + f, clusters + c
            else:
                sf, sc = self._since[0] + f, self._since[1] + c
                self._since = (sf, sc)
                if stop % self.adapt_every == 0 or stop == self.n_thermalize:
                    # adapt the (then frozen) clusters per step so that a step flips about N
                    # spins.  A stopping rule that depends on the cluster sizes themselves ("until
                    # N spins flipped") would bias the measured states.
                    if self.alg == 1 and sf > 0:
                        cps = max(1, int(round(lat.n_sites * sc / sf)))
                    self._since = (0, 0)
            step = stop
        new = SpinMCState(spins=spins, rng=rng, step=step, tag=tag, clusters_per_step=cps,
                          energies=e_series, magnetisations=m_series,
                          counters=(int(acc), int(flipped), int(clusters)), key=state.key)
        return new, step - state.step, None


def run_spin_mc(params: ExchangeParameters | SpinLattice, size: int | Sequence[int] | None = None, *,
                temperature_K: float, model: str, n_sweeps: int = 10000, n_thermalize: int = 1000,
                algorithm: str = "wolff", overrelax: int | None = None, seed: int = 0,
                start: str = "random", n_blocks: int = 20, checkpoint: str | None = None,
                checkpoint_every: int = 10000, progress: bool = False) -> SpinMCResult:
    """Classical Monte Carlo of the exchange model at one temperature.

    Parameters
    ----------
    params : ExchangeParameters or SpinLattice
        The model (a lattice is built with ``size``) or an already built lattice.
    size : int or 3 ints
        Supercell size (see :func:`build_lattice`); ignored for a SpinLattice.
    temperature_K : float
        Temperature (K), > 0.
    model : {"ising", "heisenberg"}
    n_sweeps, n_thermalize : int
        Measured and discarded MC steps.  A step is one Metropolis sweep (N attempts) or a fixed
        number of Wolff clusters (set during thermalisation so that a step flips about N spins),
        then ``overrelax`` over-relaxation sweeps.
    algorithm : {"wolff", "metropolis"}
    overrelax : int, optional
        Over-relaxation sweeps per step (Heisenberg only); default 2 with Metropolis, 1 with Wolff.
    seed : int
        Seeds the spins and the xoshiro256** stream (runs are reproducible bit for bit).
    n_blocks : int
        Blocks of the jackknife error estimate (>= 2).
    checkpoint : str, optional
        ``.npz`` path: written atomically every ``checkpoint_every`` steps and at the end; if it
        exists with the same settings the run resumes from it (same numbers as uninterrupted).
    progress : bool
        Log progress at INFO level (logger ``scaleladder.mesoscale.spins``).

    Returns
    -------
    SpinMCResult

    Raises
    ------
    InputError
        A non-positive temperature, an unknown model/algorithm, over-relaxation for Ising, a
        checkpoint written with other settings.
    """
    T = positive("temperature_K", temperature_K)
    one_of("model", model, _MODELS)
    one_of("algorithm", algorithm, _ALGORITHMS)
    n_sweeps = positive_int("n_sweeps", n_sweeps, 2)
    n_thermalize = positive_int("n_thermalize", n_thermalize, 0)
    n_blocks = positive_int("n_blocks", n_blocks, 2)
    checkpoint_every = positive_int("checkpoint_every", checkpoint_every, 1)
    heis = model == "heisenberg"
    if overrelax is None:
        overrelax = (2 if algorithm == "metropolis" else 1) if heis else 0
    overrelax = positive_int("overrelax", overrelax, 0)
    if overrelax and not heis:
        raise InputError("overrelax", overrelax, "0 for the Ising model (no continuous spins)")
    lat = params if isinstance(params, SpinLattice) else build_lattice(params, size)  # type: ignore[arg-type]
    n = lat.n_sites
    kT = BOLTZMANN_EV * T
    beta = 1.0 / kT
    settings = {"T": T, "model": model, "algorithm": algorithm, "overrelax": overrelax,
                "seed": int(seed), "n_sweeps": n_sweeps, "n_thermalize": n_thermalize,
                "n_sites": n, "couplings": hashlib.sha256(lat.couplings.tobytes()
                                                          + lat.neighbours.tobytes()).hexdigest()}
    key = _settings_key(settings)
    total = n_thermalize + n_sweeps
    chunk = max(1, min(checkpoint_every, max(1, total // 10)))
    engine = SpinMCEngine(lat, heis=heis, beta=beta, algorithm=algorithm, overrelax=overrelax,
                          n_thermalize=n_thermalize, n_sweeps=n_sweeps,
                          adapt_every=min(chunk, 10), key=key)
    run_state = None
    if checkpoint is not None and os.path.exists(checkpoint):
        from ..core.simulation import read_simulation_checkpoint

        _, run_state, _ = read_simulation_checkpoint(checkpoint, kind=engine.kind, engine=engine)
        if not isinstance(run_state, SpinMCState) or run_state.key != key:
            raise InputError("checkpoint", checkpoint, "a checkpoint of a run with the same "
                             "settings", hint="delete it or choose another path")
        log.info("resumed %s at step %d/%d", checkpoint, run_state.step, total)
    if run_state is None:
        s0 = init_state(lat, model, seed=seed, start=start)
        run_state = SpinMCState(spins=s0.spins, rng=s0.rng, step=0, tag=s0.tag,
                                clusters_per_step=s0.clusters_per_step,
                                energies=np.zeros(n_sweeps), magnetisations=np.zeros(n_sweeps),
                                counters=(0, 0, 0), key=key)
    t0 = time.perf_counter()
    if run_state.step < total:
        from ..core.simulation import run_simulation

        run_state = run_simulation(engine, run_state, total - run_state.step, observe_every=chunk,
                                   checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                                   history={"step": [run_state.step]}, store_engine=False,
                                   log_every=chunk if progress else 2 ** 62,
                                   label=f"spin MC T={T:.4g} K N={n}").state
    e_series, m_series = run_state.energies, run_state.magnetisations
    acc, flipped, clusters = run_state.counters
    if not np.all(np.isfinite(e_series)):
        raise CalculationError(f"non-finite energies in the spin MC at T={T} K")
    e = e_series / n
    m = m_series / n
    full, err, jk = _jackknife(e, m, n, kT, n_blocks)
    if engine.alg == 0:
        accept = acc / (n * n_sweeps)
    else:
        accept = (flipped / max(clusters, 1)) / n
    return SpinMCResult(temperature_K=T, model=model, algorithm=algorithm, n_sites=n,
                        energy=full[0], energy_err=err[0], magnetisation=full[1],
                        magnetisation_err=err[1], susceptibility=full[2],
                        susceptibility_err=err[2], specific_heat=full[3],
                        specific_heat_err=err[3], binder=full[4], binder_err=err[4],
                        energies=e, magnetisations=m, binder_blocks=jk[:, 4],
                        acceptance=float(accept), elapsed_s=time.perf_counter() - t0)


# ============================================================================ mean field
def mean_field_temperature(params: ExchangeParameters, model: str, quantum: bool = False) -> float:
    """Mean-field ordering temperature (K) of the uniform (q = 0) order.

    Classical unit vectors (what :func:`run_spin_mc` simulates):
    ``k_B T_MF = lambda_max(K(0)) / 3`` (Heisenberg) or ``lambda_max(K(0))`` (Ising), where
    ``K_ab(0) = sum_R K_ab(R)`` is the sublattice matrix of bond couplings (one sublattice:
    ``sum_j K_0j``).  With ``quantum=True`` (Heisenberg) the quantum-spin Weiss result
    ``k_B T_MF = S(S+1)/3 lambda_max(J_spin(0))`` with J in the per-bond, |S| = S convention
    (= ``(S+1)/S`` times the classical value).

    Raises
    ------
    InputError
        An unknown model; ``quantum`` with Ising; a model with no ferromagnetic q = 0 instability
        (``lambda_max <= 0``).
    """
    one_of("model", model, _MODELS)
    if quantum and model == "ising":
        raise InputError("quantum", quantum, "False for the Ising model")
    b = params.bond_couplings()
    nb = params.n_sites
    M = np.zeros((nb, nb))
    for i, j, k in zip(b.i, b.j, np.asarray(b.J.value)):
        M[i, j] += k
        M[j, i] += k
    lam = float(np.linalg.eigvalsh(M).max())
    if lam <= 0:
        raise InputError("params", str(params), "a model with a ferromagnetic (q = 0) instability",
                         hint=f"largest eigenvalue of K(q=0) = {lam:.4g} eV <= 0")
    kT = lam if model == "ising" else lam / 3.0
    if quantum:
        kT *= (params.spin + 1.0) / params.spin
    return kT / BOLTZMANN_EV


# ============================================================================ Binder crossings
@dataclass(frozen=True, eq=False)
class CriticalTemperatureResult:
    """Binder-cumulant crossings across sizes.

    Attributes
    ----------
    tc : Estimate
        Critical temperature (K): mean of the crossings of successive sizes; sources
        ``"sampling"`` (bootstrap over the Monte Carlo errors of U4) and ``"finite_size"`` (the
        crossings of the size pairs; absent with a single pair).
    crossings : dict
        ``(L_a, L_b) -> (T_cross, bootstrap std)`` in K.
    temperatures_K : ndarray
    binder, binder_err : dict
        ``L -> ndarray`` of U4 and its error at ``temperatures_K``.
    mean_field_K : float
        Classical mean-field estimate (:func:`mean_field_temperature`).
    results : dict
        ``L -> list of SpinMCResult``.
    """

    tc: Estimate
    crossings: dict
    temperatures_K: np.ndarray
    binder: dict
    binder_err: dict
    mean_field_K: float
    results: dict = field(repr=False)

    @property
    def tc_K(self) -> float:
        return float(self.tc.value)

    @property
    def tc_err_K(self) -> float:
        return float(self.tc.std)


def _crossing(T: np.ndarray, ua: np.ndarray, ub: np.ndarray, w: np.ndarray) -> float:
    """Root of a weighted fit of D = ua - ub around its sign change (nan: no sign change).

    Up to 7 grid points centred on the sign change; a quadratic with 5 or more points, a straight
    line otherwise; the root nearest the bracket, or linear interpolation of the bracket if the fit
    has none inside the fitted range.
    """
    d = ua - ub
    s = np.nonzero(np.sign(d[:-1]) != np.sign(d[1:]))[0]
    if len(s) == 0:
        return float("nan")
    k = int(s[np.argmin(np.abs(d[s]) + np.abs(d[s + 1]))])
    lo, hi = max(0, k - 2), min(len(T), k + 4)
    x0 = 0.5 * (T[k] + T[k + 1])
    scale = T[k + 1] - T[k]
    x = (T[lo:hi] - x0) / scale
    deg = 2 if hi - lo >= 5 else 1
    coef = np.polyfit(x, d[lo:hi], deg, w=w[lo:hi])
    roots = np.roots(coef)
    roots = roots[np.isreal(roots)].real
    roots = roots[(roots >= x[0]) & (roots <= x[-1])]
    if len(roots):
        return float(x0 + scale * roots[np.argmin(np.abs(roots))])
    return float(T[k] - d[k] * (T[k + 1] - T[k]) / (d[k + 1] - d[k]))


def critical_temperature(params: ExchangeParameters, *, model: str, sizes: Sequence[int] = (8, 16, 32),
                         temperatures: Sequence[float] | None = None, n_sweeps: int = 20000,
                         n_thermalize: int = 2000, algorithm: str = "wolff",
                         overrelax: int | None = None, n_bootstrap: int = 400, seed: int = 0,
                         n_blocks: int = 20, checkpoint_dir: str | None = None,
                         progress: bool = False) -> CriticalTemperatureResult:
    """Critical temperature from Binder-cumulant crossings across system sizes.

    For every size ``L`` and temperature a run of :func:`run_spin_mc` gives ``U4(T, L)``; the
    crossing of each successive pair of sizes is the root of a weighted low-order polynomial fit
    of ``U4(L_a) - U4(L_b)`` over the (up to 7) grid points around its sign change.  The statistical error comes
    from a parametric bootstrap (U4 resampled with its jackknife errors, ``n_bootstrap`` times).

    Parameters
    ----------
    params : ExchangeParameters
    model : {"ising", "heisenberg"}
    sizes : ints
        At least two linear sizes (increasing).
    temperatures : floats, optional
        Temperature grid (K, > 0, increasing) bracketing the crossings; default
        ``linspace(0.4, 1.0, 13) * T_MF`` -- a coarse scan to refine.
    n_sweeps, n_thermalize, algorithm, overrelax, n_blocks : see :func:`run_spin_mc`.
    seed : int
        Each run gets its own stream derived from ``seed``, L and the temperature index.
    checkpoint_dir : str, optional
        One checkpoint per run (``L{L}_T{k}.npz``): an interrupted scan resumes.
    progress : bool
        Log each run at INFO level.

    Returns
    -------
    CriticalTemperatureResult

    Raises
    ------
    InputError
        Fewer than two sizes, a non-positive temperature, a grid that brackets no crossing.
    """
    one_of("model", model, _MODELS)
    sizes = [positive_int("sizes", s, 2) for s in sizes]
    if len(sizes) < 2 or sorted(set(sizes)) != sizes:
        raise InputError("sizes", sizes, "at least two increasing system sizes")
    t_mf = mean_field_temperature(params, model)
    if temperatures is None:
        temperatures = np.linspace(0.4, 1.0, 13) * t_mf
    T = finite_array("temperatures", temperatures, (None,))
    if len(T) < 2 or np.any(T <= 0) or np.any(np.diff(T) <= 0):
        raise InputError("temperatures", T.tolist(), "at least two increasing temperatures > 0 K")
    n_bootstrap = positive_int("n_bootstrap", n_bootstrap, 2)
    results: dict[int, list[SpinMCResult]] = {}
    U, dU = {}, {}
    for L in sizes:
        lat = build_lattice(params, L)
        res = []
        for k, t in enumerate(T):
            ck = None if checkpoint_dir is None else os.path.join(checkpoint_dir, f"L{L}_T{k}.npz")
            r = run_spin_mc(lat, temperature_K=float(t), model=model, n_sweeps=n_sweeps,
                            n_thermalize=n_thermalize, algorithm=algorithm, overrelax=overrelax,
                            seed=int(seed) * 1_000_003 + L * 1009 + k, n_blocks=n_blocks,
                            checkpoint=ck)
            res.append(r)
            if progress:
                log.info("L=%d T=%.4g K: U4=%.4f±%.4f |m|=%.4f (%.1f s)", L, t, r.binder,
                         r.binder_err, r.magnetisation, r.elapsed_s)
        results[L] = res
        U[L] = np.array([r.binder for r in res])
        dU[L] = np.maximum(np.array([r.binder_err for r in res]), 1e-12)
    gen = np.random.default_rng(seed + 7)
    crossings = {}
    nominal, boots = [], []
    for La, Lb in zip(sizes[:-1], sizes[1:]):
        w = 1.0 / np.sqrt(dU[La] ** 2 + dU[Lb] ** 2)
        tc0 = _crossing(T, U[La], U[Lb], w)
        if not np.isfinite(tc0):
            raise InputError("temperatures", [float(T[0]), float(T[-1])],
                             f"a grid on which U4(L={La}) and U4(L={Lb}) cross",
                             hint="widen or shift the grid (the mean-field estimate "
                                  f"is {t_mf:.4g} K, an upper bound)")
        bs = np.array([_crossing(T, U[La] + gen.normal(size=len(T)) * dU[La],
                                 U[Lb] + gen.normal(size=len(T)) * dU[Lb], w)
                       for _ in range(n_bootstrap)])
        bs = np.where(np.isfinite(bs), bs, tc0)
        crossings[(La, Lb)] = (tc0, float(np.std(bs, ddof=1)))
        nominal.append(tc0)
        boots.append(bs)
    tc = float(np.mean(nominal))
    sources = {"sampling": np.mean(np.array(boots), axis=0)}
    if len(nominal) > 1:
        sources["finite_size"] = np.array(nominal)
    return CriticalTemperatureResult(tc=Estimate(tc, "K", sources), crossings=crossings,
                                     temperatures_K=T, binder=U, binder_err=dU, mean_field_K=t_mf,
                                     results=results)
