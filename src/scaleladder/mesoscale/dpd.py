"""Dissipative particle dynamics (Groot-Warren), with a Shardlow-type splitting integrator.

The model (R. D. Groot & P. B. Warren, J. Chem. Phys. 107, 4423 (1997)): particles ``i, j`` closer
than ``r_c`` interact by the pairwise forces

* conservative soft repulsion ``F^C = a_ij w(r) e_ij`` with ``w(r) = 1 - r / r_c`` (energy
  ``a_ij r_c w^2 / 2``);
* dissipative ``F^D = -gamma w_D(r) (e_ij . v_ij) e_ij`` and random ``F^R = sigma w_R(r) theta_ij
  e_ij / sqrt(dt)`` with ``w_D = w_R^2 = w^2`` and ``sigma^2 = 2 gamma k_B T`` — the
  fluctuation-dissipation theorem, which makes the canonical ensemble stationary (Espanol &
  Warren 1995).  Every force is central and antisymmetric: momentum is conserved pair by pair,
  which is why DPD gives hydrodynamics where a Langevin thermostat does not.

Units are DPD's reduced units: length ``r_c``, mass ``m`` (the bead mass), energy ``k_B T``;
time ``r_c sqrt(m / k_B T)``.  All parameters here are in those units (``a`` in ``k_B T / r_c``).

Integrators (``integrator=``)
-----------------------------
``"vv"``
    Groot-Warren's modified velocity Verlet: positions by Verlet, the forces at the new
    positions evaluated with a predicted velocity ``v + lambda dt F / m``.  ``lambda = 1/2`` is
    plain velocity Verlet (what LAMMPS ``pair_style dpd`` with ``fix nve`` integrates); Groot and
    Warren found ``lambda = 0.65`` best at ``dt = 0.04``-``0.06``.  The velocity-dependent forces
    make it only approximately time reversible: the measured temperature drifts above ``k_B T``
    as ``dt`` grows.  The random numbers are uniform with unit variance, as Groot and Warren used.
``"shardlow"``
    Shardlow's splitting (T. Shardlow, SIAM J. Sci. Comput. 24, 1267 (2003); its accuracy for DPD:
    Nikunen, Karttunen & Vattulainen, Comput. Phys. Commun. 153, 407 (2003)): each step first
    thermalises pair by pair (in pair-list order, each pair's relative velocity along its axis
    updated with the latest velocities), then does a velocity-Verlet step with the conservative
    forces only.  Here each pair's sub-step is solved *exactly*: along ``e_ij`` the relative
    velocity ``u`` is an Ornstein-Uhlenbeck process with rate ``k = gamma w_D / mu`` and
    stationary variance ``k_B T / mu`` (``mu`` the reduced mass), so
    ``u' = u exp(-k dt) + sqrt(k_B T / mu (1 - exp(-2 k dt))) xi`` with ``xi`` standard normal,
    and the pair exchanges momentum ``mu (u' - u) e_ij``.  That sub-step leaves the
    Maxwell-Boltzmann distribution invariant at any ``dt`` and conserves momentum exactly, so the
    only time-step error left is the conservative Verlet step's (cf. Peters, Europhys. Lett. 66,
    311 (2004)).  It costs two pair sweeps per step.  Default.

Stability
---------
:func:`dpd_time_step_limit` is the explicit limit checked before a run: Verlet on the stiffest
conservative pair, ``omega dt < 2`` with ``omega^2 = 2 a_max / (m r_c)``; for ``"vv"`` also the
explicit relaxation of the dissipative force, ``k_D dt < 2`` with ``k_D = 2 gamma rho (4 pi r_c^3 /
30) / m`` (the mean rate at which a pair's relative velocity is damped by all neighbours; the
Shardlow sub-step is exact and has no such limit).  These are necessary conditions; the run also
stops, with the last good state kept, if the kinetic temperature leaves ``[k_B T / 10, 10 k_B T]``.

Mixtures
--------
:func:`repulsion_from_chi` maps a Flory-Huggins ``chi`` to the unlike repulsion:
``a_AB = a_AA + chi / c(rho)`` with Groot and Warren's ``c(3) = 0.286``, ``c(5) = 0.689``
(their fit of simulated coexisting compositions to the Flory-Huggins binodal).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from numba import njit

from ..core.codec import register
from ..core.errors import InputError
from ..core.simulation import SimulationRun, read_simulation_checkpoint, run_simulation
from ..core.timeseries import block_average
from ..core.validate import finite_array, in_range, one_of, positive, positive_int
from ..core.validate import seed as _check_seed
from ._rng import seed_words
from ._rng import uniform as _uniform
from .particles import _HALF_SHELL, _max_displacement2, _pairs, _shardlow_sweep, check_blowup, \
    maxwell_boltzmann, pair_delta, PairList, ParticleState

__all__ = ["DPDSystem", "DPDEngine", "DPDState", "DPDRun", "dpd_box", "run_dpd", "continue_dpd",
           "resume_dpd", "repulsion_from_chi", "dpd_time_step_limit", "composition_profile",
           "unlike_contact_fraction",
           "GROOT_WARREN_CHI_SLOPE"]

_INTEGRATORS = ("shardlow", "vv")

#: Groot & Warren (1997): chi = c(rho) * (a_AB - a_AA), fitted to the Flory-Huggins binodal
GROOT_WARREN_CHI_SLOPE = {3.0: 0.286, 5.0: 0.689}

_SQRT3 = math.sqrt(3.0)


# =============================================================================== kernels
@njit(cache=True)
def _soft_forces(pos, typ, pi, pj, S, A, rc, F):
    """Conservative soft repulsion: fills F, returns (energy, virial sum r.F)."""
    F[:] = 0.0
    U = 0.0
    W = 0.0
    rc2 = rc * rc
    for p in range(pi.size):
        i, j, dx, dy, dz, r2 = pair_delta(pos, pi, pj, S, p)
        if r2 >= rc2 or r2 == 0.0:
            continue
        r = math.sqrt(r2)
        w = 1.0 - r / rc
        a = A[typ[i], typ[j]]
        f = a * w / r
        F[i, 0] += f * dx
        F[i, 1] += f * dy
        F[i, 2] += f * dz
        F[j, 0] -= f * dx
        F[j, 1] -= f * dy
        F[j, 2] -= f * dz
        U += 0.5 * a * rc * w * w
        W += f * r2
    return U, W


@njit(cache=True)
def _gw_forces(pos, vel, typ, pi, pj, S, A, gamma, sig_rt, rc, rng, F):
    """Conservative + dissipative + random forces (uniform unit-variance noise)."""
    F[:] = 0.0
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
        vr = (vel[i, 0] - vel[j, 0]) * ex + (vel[i, 1] - vel[j, 1]) * ey \
            + (vel[i, 2] - vel[j, 2]) * ez
        theta = _SQRT3 * (2.0 * _uniform(rng) - 1.0)
        f = A[typ[i], typ[j]] * w - gamma * w * w * vr + sig_rt * w * theta
        F[i, 0] += f * ex
        F[i, 1] += f * ey
        F[i, 2] += f * ez
        F[j, 0] -= f * ex
        F[j, 1] -= f * ey
        F[j, 2] -= f * ez


@njit(cache=True)
def _advance(pos, vel, F, invm, typ, L, nc, cells, rlist, skin, pi, pj, S, ref, A, gamma, kT,
             rc, dt, lam, shardlow, rng, nsteps, shell):
    """``nsteps`` steps in place; returns the (possibly rebuilt) pair list, its reference
    positions and the number of rebuilds."""
    n = pos.shape[0]
    half_skin2 = (0.5 * skin) ** 2
    sig_rt = math.sqrt(2.0 * gamma * kT / dt)
    vt = np.empty_like(vel)
    builds = 0
    for _ in range(nsteps):
        if shardlow:
            _shardlow_sweep(pos, vel, invm, pi, pj, S, gamma, kT, rc, dt, rng)
        for i in range(n):
            for d in range(3):
                acc = F[i, d] * invm[i]
                pos[i, d] += dt * vel[i, d] + 0.5 * dt * dt * acc
                if not shardlow:
                    vt[i, d] = vel[i, d] + lam * dt * acc
                vel[i, d] += 0.5 * dt * acc
        if _max_displacement2(pos, ref) > half_skin2:
            pi, pj, S = _pairs(pos, L, nc, cells, rlist, shell)
            ref = pos.copy()
            builds += 1
        if shardlow:
            _soft_forces(pos, typ, pi, pj, S, A, rc, F)
        else:
            _gw_forces(pos, vt, typ, pi, pj, S, A, gamma, sig_rt, rc, rng, F)
        for i in range(n):
            for d in range(3):
                vel[i, d] += 0.5 * dt * F[i, d] * invm[i]
    return pi, pj, S, ref, builds


# =============================================================================== state, engine
#: the state of a DPD run (the particle engines' one state type)
DPDState = ParticleState


@dataclass(frozen=True, eq=False)
class DPDSystem:
    """Particles in an orthorhombic periodic box (DPD units).

    ``types`` indexes ``type_names``; ``masses`` is one mass per type (default 1)."""

    box: np.ndarray
    positions: np.ndarray
    types: np.ndarray
    type_names: tuple
    masses: tuple = ()

    @property
    def n(self) -> int:
        return int(self.positions.shape[0])

    @property
    def density(self) -> float:
        return self.n / float(np.prod(self.box))


def dpd_box(box: float | Sequence[float], *, density: float = 3.0,
            composition: Mapping[str, float] | None = None, layered_axis: int | None = None,
            masses: Mapping[str, float] | None = None, seed: int = 0) -> DPDSystem:
    """Random particles in a periodic box.

    Parameters
    ----------
    box : float or 3 floats
        Box lengths (``r_c``).
    density : float
        Particles per ``r_c^3`` (Groot-Warren use 3).
    composition : mapping name -> fraction, optional
        Default one type ``"A"``.  Fractions must be positive and sum to 1.
    layered_axis : int, optional
        Place the types in consecutive slabs along this axis (a demixed start) instead of at random.
    masses : mapping name -> mass, optional
        Default 1 for every type.
    seed : int
    """
    L = np.full(3, positive("box", box)) if np.isscalar(box) else finite_array("box", box, (3,))
    if np.any(L <= 0):
        raise InputError("box", tuple(L), "three positive box lengths")
    rho = positive("density", density)
    composition = {"A": 1.0} if composition is None else dict(composition)
    if not composition:
        raise InputError("composition", composition, "at least one type with a positive fraction")
    fr = np.array([positive(f"composition[{k!r}]", v) for k, v in composition.items()])
    if abs(fr.sum() - 1.0) > 1e-9:
        raise InputError("composition", composition, "fractions summing to 1")
    names = tuple(str(k) for k in composition)
    masses = {} if masses is None else dict(masses)
    for k in masses:
        if k not in names:
            raise InputError("masses", k, "a type of the composition: " + ", ".join(names))
    mass = tuple(positive(f"masses[{k!r}]", masses.get(k, 1.0)) for k in names)
    n = int(round(rho * float(np.prod(L))))
    if n < 2:
        raise InputError("density", density, "a density that puts at least 2 particles in the box")
    gen = np.random.default_rng(_check_seed("seed", seed))
    counts = np.floor(fr * n).astype(int)
    counts[0] += n - counts.sum()
    types = np.repeat(np.arange(len(names)), counts)
    pos = gen.random((n, 3)) * L
    if layered_axis is not None:
        ax = one_of("layered_axis", layered_axis, (0, 1, 2))
        edges = np.concatenate([[0.0], np.cumsum(counts) / n]) * L[ax]
        for t in range(len(names)):
            sel = types == t
            pos[sel, ax] = edges[t] + gen.random(sel.sum()) * (edges[t + 1] - edges[t])
    else:
        gen.shuffle(types)
    return DPDSystem(box=L, positions=pos, types=types.astype(np.int64), type_names=names,
                     masses=mass)


def repulsion_from_chi(chi: float, a_like: float = 25.0, density: float = 3.0) -> float:
    """Groot-Warren unlike repulsion ``a_AB = a_AA + chi / c(rho)`` for a Flory-Huggins ``chi``.

    ``c(3) = 0.286``, ``c(5) = 0.689`` (``GROOT_WARREN_CHI_SLOPE``): the two densities Groot and
    Warren calibrated; no other density is accepted (the slope is not linear in ``rho``).
    """
    chi = in_range("chi", chi, 0.0, math.inf)
    a_like = positive("a_like", a_like)
    rho = float(positive("density", density))
    if rho not in GROOT_WARREN_CHI_SLOPE:
        raise InputError("density", density, "3 or 5 (the densities of Groot and Warren's chi "
                         "calibration)")
    return a_like + chi / GROOT_WARREN_CHI_SLOPE[rho]


def dpd_time_step_limit(a_max: float, gamma: float, density: float, *, mass: float = 1.0,
                        integrator: str = "shardlow", rc: float = 1.0) -> float:
    """The explicit stability limit of the time step (see the module notes)."""
    one_of("integrator", integrator, _INTEGRATORS)
    omega = math.sqrt(2.0 * max(a_max, 1e-300) / (mass * rc))
    limit = 2.0 / omega
    if integrator == "vv":
        k_d = 2.0 * gamma * density * (4.0 * math.pi * rc ** 3 / 30.0) / mass
        limit = min(limit, 2.0 / k_d)
    return limit


@register("DPDEngine")
class DPDEngine:
    """DPD as an engine of the project's one simulation protocol (use :func:`run_dpd`)."""

    kind = "scaleladder.dpd/1"

    def __init__(self, box, types, masses, A, *, gamma: float, kT: float, dt: float,
                 integrator: str, lam: float, skin: float, rc: float = 1.0, type_names=()):
        self.box = np.asarray(box, dtype=float)
        self.types = np.asarray(types, dtype=np.int64)
        self.masses = np.asarray(masses, dtype=float)          # per type
        self.A = np.ascontiguousarray(A, dtype=float)
        self.gamma, self.kT, self.dt = float(gamma), float(kT), float(dt)
        self.integrator, self.lam, self.skin, self.rc = integrator, float(lam), float(skin), float(rc)
        self.type_names = tuple(type_names)
        self.invm = 1.0 / self.masses[self.types]
        self.pairs = PairList(self.box, self.rc, self.skin)
        self.builds = 0

    def to_state(self) -> dict:
        return {"box": self.box, "types": self.types, "masses": self.masses, "A": self.A,
                "gamma": self.gamma, "kT": self.kT, "dt": self.dt, "integrator": self.integrator,
                "lam": self.lam, "skin": self.skin, "rc": self.rc,
                "type_names": list(self.type_names)}

    @classmethod
    def from_state(cls, s: dict) -> "DPDEngine":
        return cls(s["box"], s["types"], s["masses"], s["A"], gamma=s["gamma"], kT=s["kT"],
                   dt=s["dt"], integrator=s["integrator"], lam=s["lam"], skin=s["skin"],
                   rc=s["rc"], type_names=tuple(s["type_names"]))

    @property
    def volume(self) -> float:
        return float(np.prod(self.box))

    def _list(self, ref: np.ndarray) -> PairList:
        if not self.pairs.matches(ref):
            self.pairs.build(ref)
        return self.pairs

    def start(self, positions: np.ndarray, seed: int) -> DPDState:
        """Maxwell-Boltzmann velocities (zero total momentum) and the first forces."""
        rng = seed_words(seed)
        v = maxwell_boltzmann(self.masses[self.types], self.kT, seed)
        pos = np.ascontiguousarray(positions, dtype=float)
        pl = self._list(pos)
        F = np.zeros_like(pos)
        if self.integrator == "shardlow":
            _soft_forces(pos, self.types, pl.i, pl.j, pl.shift, self.A, self.rc, F)
        else:
            _gw_forces(pos, v, self.types, pl.i, pl.j, pl.shift, self.A, self.gamma,
                       math.sqrt(2 * self.gamma * self.kT / self.dt), self.rc, rng, F)
        return ParticleState(positions=pos.copy(), velocities=v, forces=F, ref_positions=pos.copy(),
                        rng=rng, step=0)

    def advance(self, state: DPDState, n: int):
        pos, vel, F = state.positions.copy(), state.velocities.copy(), state.forces.copy()
        rng = state.rng.copy()
        pl = self._list(state.ref_positions)
        pi, pj, S, ref, builds = _advance(pos, vel, F, self.invm, self.types, self.box, pl.nc,
                                          pl.cells, pl.radius, self.skin, pl.i, pl.j, pl.shift,
                                          pl.ref.copy(), self.A, self.gamma, self.kT, self.rc,
                                          self.dt, self.lam, self.integrator == "shardlow", rng,
                                          int(n), _HALF_SHELL)
        if builds:
            pl.i, pl.j, pl.shift, pl.ref = pi, pj, S, ref.copy()
            pl.builds += builds
        return ParticleState(positions=pos, velocities=vel, forces=F, ref_positions=ref.copy(),
                        rng=rng, step=state.step + int(n)), int(n), None

    def observe(self, state: DPDState) -> dict:
        """Kinetic temperature (``3N - 3`` degrees of freedom), pressure (kinetic + conservative
        virial), conservative energy per particle and total momentum per particle."""
        m = self.masses[self.types]
        v = state.velocities
        twice_k = float(np.sum(m[:, None] * v * v))
        n = v.shape[0]
        pl = self._list(state.ref_positions)
        scratch = np.zeros_like(state.positions)
        U, W = _soft_forces(state.positions, self.types, pl.i, pl.j, pl.shift, self.A, self.rc,
                            scratch)
        p = (m[:, None] * v).sum(axis=0)
        return {"temperature": twice_k / (3 * n - 3),
                "pressure": (twice_k + W) / (3.0 * self.volume),
                "potential_energy": U / n,
                "momentum": float(np.linalg.norm(p)) / n}

    def check(self, state: DPDState, history: dict, obs: dict) -> None:
        check_blowup("DPD", state.step, obs["temperature"], self.kT, state.positions,
                     f"dt={self.dt}")


# =============================================================================== runs
@dataclass
class DPDRun:
    """A DPD run: the engine, the final state and the observation history (arrays)."""

    engine: DPDEngine
    state: DPDState
    history: dict
    elapsed_s: float
    steps: int
    checkpoint: str | None = None

    def series(self, name: str) -> np.ndarray:
        if name not in self.history:
            raise InputError("name", name, "one of " + ", ".join(k for k in self.history))
        return np.asarray(self.history[name], dtype=float)

    def average(self, name: str, *, discard: float = 0.2, n_blocks: int = 10) -> tuple[float, float]:
        """Mean and block-averaged standard error of an observable, the first ``discard``
        fraction of the records dropped (equilibration)."""
        x = self.series(name)
        discard = in_range("discard", discard, 0.0, 0.9)
        x = x[int(discard * x.size):]
        return block_average(x, n_blocks)

    @property
    def particle_steps_per_second(self) -> float:
        return self.state.positions.shape[0] * self.steps / max(self.elapsed_s, 1e-12)


def _repulsion_matrix(a: Any, names: tuple) -> np.ndarray:
    k = len(names)
    if np.isscalar(a):
        return np.full((k, k), float(in_range("a", a, 0.0, math.inf)))
    if not isinstance(a, Mapping):
        raise InputError("a", a, "a number or a mapping {(type, type): a_ij}")
    A = np.full((k, k), np.nan)
    for key, val in a.items():
        if not (isinstance(key, tuple) and len(key) == 2 and all(t in names for t in key)):
            raise InputError("a", key, "keys that are pairs of type names from " + ", ".join(names))
        x, y = names.index(key[0]), names.index(key[1])
        v = in_range(f"a[{key!r}]", val, 0.0, math.inf)
        if np.isfinite(A[x, y]) and A[x, y] != v:
            raise InputError("a", key, "one value per pair (a_ij = a_ji)")
        A[x, y] = A[y, x] = v
    missing = [(names[x], names[y]) for x in range(k) for y in range(x, k) if not np.isfinite(A[x, y])]
    if missing:
        raise InputError("a", a, "a value for every pair of types", hint=f"missing {missing}")
    return A


def run_dpd(system: DPDSystem, steps: int, *, a: float | Mapping = 25.0, gamma: float = 4.5,
            kT: float = 1.0, dt: float = 0.04, integrator: str = "shardlow", lam: float = 0.5,
            skin: float = 0.3, seed: int = 0, observe_every: int = 10,
            checkpoint: str | os.PathLike | None = None,
            checkpoint_every: int | None = None) -> DPDRun:
    """Run Groot-Warren DPD from ``system`` for ``steps`` steps.

    Parameters
    ----------
    system : DPDSystem
        From :func:`dpd_box` (positions, types, masses, box; DPD units).
    steps : int
    a : float or mapping {(type, type): a_ij}
        Conservative repulsion (``k_B T / r_c``); a number for every pair or one value per pair
        of types (see :func:`repulsion_from_chi`).  Groot-Warren water: 25 at density 3.
    gamma : float
        Friction; ``sigma = sqrt(2 gamma kT)``.  4.5 (Groot-Warren).
    kT : float
        Temperature (energy unit; 1 in reduced units).
    dt : float
        Time step; checked against :func:`dpd_time_step_limit`.
    integrator : {"shardlow", "vv"}
    lam : float
        Groot-Warren's lambda for ``"vv"`` (0.5 = velocity Verlet; 0.65 their choice).
    skin : float
        Verlet-list skin.
    seed : int
        Seeds velocities and the random stream (runs are reproducible bit for bit).
    observe_every : int
        Steps between recorded observations (temperature, pressure, energy, momentum).
    checkpoint : path, optional
        The one checkpoint format; :func:`resume_dpd` continues from it.

    Raises
    ------
    InputError
        Any bad setting, named, before any work; a time step at or above the stability limit.
    CalculationError
        The run blew up (last good state in the checkpoint and on the error).
    """
    if not isinstance(system, DPDSystem):
        raise InputError("system", type(system).__name__, "a DPDSystem (see dpd_box)")
    steps = positive_int("steps", steps)
    one_of("integrator", integrator, _INTEGRATORS)
    gamma = positive("gamma", gamma)
    kT = positive("kT", kT)
    dt = positive("dt", dt)
    lam = in_range("lam", lam, 0.0, 1.0)
    skin = in_range("skin", skin, 0.0, 2.0)
    seed = _check_seed("seed", seed)
    observe_every = positive_int("observe_every", observe_every)
    A = _repulsion_matrix(a, system.type_names)
    masses = np.asarray(system.masses or (1.0,) * len(system.type_names), dtype=float)
    limit = dpd_time_step_limit(float(A.max()), gamma, system.density, mass=float(masses.min()),
                                integrator=integrator)
    if dt >= limit:
        raise InputError("dt", dt, f"a time step below the {integrator} stability limit "
                         f"{limit:.4g} (a_max={A.max():.4g}, gamma={gamma:.4g}, "
                         f"density={system.density:.4g})", hint="Groot-Warren use 0.04-0.06")
    engine = DPDEngine(system.box, system.types, masses, A, gamma=gamma, kT=kT, dt=dt,
                       integrator=integrator, lam=lam, skin=skin, type_names=system.type_names)
    state = engine.start(system.positions, seed)
    return _drive(engine, state, steps, None, observe_every, checkpoint, checkpoint_every)


def _drive(engine, state, steps, history, observe_every, checkpoint, checkpoint_every) -> DPDRun:
    r: SimulationRun = run_simulation(engine, state, steps, observe_every=observe_every,
                                      checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                                      history=history, label="dpd")
    return DPDRun(engine=engine, state=r.state, history={k: list(v) for k, v in r.history.items()},
                  elapsed_s=r.elapsed_s, steps=r.steps, checkpoint=r.checkpoint)


def continue_dpd(run: DPDRun, steps: int, *, observe_every: int = 10,
                 checkpoint: str | os.PathLike | None = None) -> DPDRun:
    """Go on from the end of ``run`` (same engine, history continued)."""
    if not isinstance(run, DPDRun):
        raise InputError("run", type(run).__name__, "a DPDRun")
    return _drive(run.engine, run.state, positive_int("steps", steps), run.history,
                  positive_int("observe_every", observe_every), checkpoint, None)


def resume_dpd(checkpoint: str | os.PathLike, steps: int, *, observe_every: int = 10,
               checkpoint_every: int | None = None) -> DPDRun:
    """Continue the run stored in ``checkpoint`` (written by :func:`run_dpd`) for ``steps`` more
    steps; checkpoints go on to the same file.  The result is the uninterrupted run's, bit for
    bit."""
    engine, state, history = read_simulation_checkpoint(checkpoint, kind=DPDEngine.kind)
    return _drive(engine, state, positive_int("steps", steps), history,
                  positive_int("observe_every", observe_every), checkpoint, checkpoint_every)


def composition_profile(run: DPDRun, *, axis: int = 2, bins: int = 20,
                        species: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of ``species`` (default the first type) in ``bins`` slabs along ``axis`` of the
    final state: ``(slab centres, fractions)`` — the order parameter of demixing."""
    if not isinstance(run, DPDRun):
        raise InputError("run", type(run).__name__, "a DPDRun")
    axis = one_of("axis", axis, (0, 1, 2))
    bins = positive_int("bins", bins, 2)
    names = run.engine.type_names
    t = 0 if species is None else names.index(one_of("species", species, names))
    L = run.engine.box[axis]
    x = np.mod(run.state.positions[:, axis], L)
    k = np.minimum((x / L * bins).astype(int), bins - 1)
    total = np.bincount(k, minlength=bins).astype(float)
    mine = np.bincount(k[run.engine.types == t], minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(total > 0, mine / np.maximum(total, 1), np.nan)
    return (np.arange(bins) + 0.5) * L / bins, frac


def unlike_contact_fraction(run: DPDRun) -> float:
    """Fraction of the interacting pairs (``r < r_c``) of the final state that join unlike types.

    The order parameter of demixing from a random start (no direction assumed): a random binary
    mixture of mole fractions ``x, 1 - x`` has ``2 x (1 - x)``; a demixed one only its interfaces.
    """
    if not isinstance(run, DPDRun):
        raise InputError("run", type(run).__name__, "a DPDRun")
    e = run.engine
    pl = PairList(e.box, e.rc, 0.0)
    pl.build(run.state.positions)
    d = run.state.positions[pl.i] - run.state.positions[pl.j] - pl.shift
    inside = np.einsum("ij,ij->i", d, d) < e.rc ** 2
    if not inside.any():
        return float("nan")
    return float(np.mean(e.types[pl.i[inside]] != e.types[pl.j[inside]]))
