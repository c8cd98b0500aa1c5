"""Monitored molecular dynamics on ASE integrators, with checkpoint and resume.

The integrators are ASE's (:class:`ase.md.verlet.VelocityVerlet` for NVE,
:class:`ase.md.langevin.Langevin` for NVT); this module only drives them one step at a time and
checks every step.  The state that a run needs to continue (positions, momenta, cell, step,
time, the reference energy of the drift check and the random-number state) is plain data,
:class:`MDState`, written atomically to a checkpoint (``.npz``, temp file + ``os.replace``)
and read back by :func:`resume_md`.

Checks at every step (the initial frame included)
-------------------------------------------------
* non-finite positions, momenta, potential energy or forces;
* a force component norm above ``max_force`` (eV/Å);
* NVE only: ``|E_tot(t) - E_tot(0)| / N`` above ``energy_drift_tol`` (eV/atom).

A failed check stops the run with :class:`~scaleladder.core.errors.CalculationError` naming the
step, the quantity, its value and what to change.  The last frame that passed is kept: as the
exception's ``last_good`` attribute (an :class:`ase.Atoms` copy with positions and momenta,
``None`` if the initial frame already failed), as the last frame of the trajectory, and in the
checkpoint.  Frames reach the trajectory only after they pass the checks.

Units: time fs, energies eV (per atom in :class:`MDResult`), temperature K, forces eV/Å,
friction 1/fs.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import CalculationError, InputError

__all__ = ["MDState", "MDResult", "run_md", "resume_md", "block_average",
           "read_checkpoint", "write_checkpoint"]

_ENSEMBLES = ("nve", "nvt")
_CKPT_FORMAT = "scaleladder.md.checkpoint/1"


# --------------------------------------------------------------------------------------------
# state as data
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MDState:
    """Everything needed to continue an MD run (plain data; see :func:`write_checkpoint`).

    Attributes
    ----------
    numbers, positions, momenta, cell, pbc, masses : numpy.ndarray
        The configuration (Å, amu·Å/fs in ASE units for momenta as ASE stores them).
    step : int
        Steps done since the start of the run (counting over resumes).
    time_fs : float
        Simulated time since the start of the run.
    settings : dict
        ``ensemble, temperature_K, timestep_fs, friction, seed, energy_drift_tol, max_force,
        checkpoint_every, trajectory_every`` as given to :func:`run_md`.
    e0_per_atom : float
        Total energy per atom of the initial frame (reference of the NVE drift check).
    rng_state : dict or None
        ``numpy.random.Generator.bit_generator.state`` of the Langevin noise (NVT).
    """

    numbers: np.ndarray
    positions: np.ndarray
    momenta: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    masses: np.ndarray
    step: int
    time_fs: float
    settings: dict
    e0_per_atom: float
    rng_state: dict | None = None

    @classmethod
    def from_atoms(cls, atoms, *, step, time_fs, settings, e0_per_atom, rng_state=None):
        """Snapshot ``atoms`` (arrays copied)."""
        return cls(numbers=atoms.numbers.copy(), positions=atoms.positions.copy(),
                   momenta=atoms.get_momenta().copy(), cell=np.array(atoms.cell[:]),
                   pbc=np.array(atoms.pbc, dtype=bool), masses=atoms.get_masses().copy(),
                   step=int(step), time_fs=float(time_fs), settings=dict(settings),
                   e0_per_atom=float(e0_per_atom),
                   rng_state=None if rng_state is None else json.loads(json.dumps(rng_state)))

    def to_atoms(self):
        """An :class:`ase.Atoms` with this state's positions, momenta, cell, masses."""
        from ase import Atoms

        atoms = Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell,
                      pbc=self.pbc)
        atoms.set_masses(self.masses)
        atoms.set_momenta(self.momenta)
        return atoms


def write_checkpoint(path: str | os.PathLike, state: MDState) -> Path:
    """Write ``state`` to ``path`` (``.npz``) atomically: temp file in the same folder, then
    ``os.replace``.  A reader never sees a half-written checkpoint."""
    path = Path(path)
    meta = {"format": _CKPT_FORMAT, "step": state.step, "time_fs": state.time_fs,
            "settings": state.settings, "e0_per_atom": state.e0_per_atom,
            "rng_state": state.rng_state}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, numbers=state.numbers, positions=state.positions,
                     momenta=state.momenta, cell=state.cell, pbc=state.pbc, masses=state.masses,
                     meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_checkpoint(path: str | os.PathLike) -> MDState:
    """Read a checkpoint written by :func:`write_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint_path", str(path), "an existing MD checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            arrays = {k: np.array(z[k]) for k in
                      ("numbers", "positions", "momenta", "cell", "pbc", "masses")}
    except (OSError, ValueError, KeyError) as exc:
        raise InputError("checkpoint_path", str(path), "a readable MD checkpoint (.npz)",
                         hint=str(exc)) from exc
    if meta.get("format") != _CKPT_FORMAT:
        raise InputError("checkpoint_path", str(path), f"format {_CKPT_FORMAT!r}",
                         hint=f"found {meta.get('format')!r}")
    return MDState(**arrays, step=int(meta["step"]), time_fs=float(meta["time_fs"]),
                   settings=meta["settings"], e0_per_atom=float(meta["e0_per_atom"]),
                   rng_state=meta["rng_state"])


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MDResult:
    """What an MD run returns.

    Attributes
    ----------
    atoms : ase.Atoms
        Final configuration (positions, momenta), without calculator.
    time_fs : numpy.ndarray
        Time of each recorded frame (the starting frame included), fs.
    potential_energy, kinetic_energy, total_energy : numpy.ndarray
        Per frame, eV/atom.
    temperature_K : numpy.ndarray
        Instantaneous kinetic temperature per frame (ASE convention, 3N degrees of freedom).
    ensemble : str
    timestep_fs : float
    steps : int
        Steps done in this call.
    checkpoint : str or None
        Path of the last checkpoint written.
    """

    atoms: Any
    time_fs: np.ndarray
    potential_energy: np.ndarray
    kinetic_energy: np.ndarray
    total_energy: np.ndarray
    temperature_K: np.ndarray
    ensemble: str
    timestep_fs: float
    steps: int
    checkpoint: str | None = None

    @property
    def drift(self) -> float:
        """NVE energy drift, eV/atom/ps: slope of a linear fit of the total energy per atom
        against time.  ``nan`` for other ensembles or fewer than three frames."""
        if self.ensemble != "nve" or len(self.time_fs) < 3:
            return float("nan")
        slope_per_fs = np.polyfit(self.time_fs, self.total_energy, 1)[0]
        return float(slope_per_fs * 1000.0)

    @property
    def energy_error(self) -> float:
        """NVE: largest ``|E_tot(t) - E_tot(t_0)|`` over the run, eV/atom (the integration error,
        O(dt²) for velocity Verlet).  ``nan`` for other ensembles."""
        if self.ensemble != "nve":
            return float("nan")
        return float(np.max(np.abs(self.total_energy - self.total_energy[0])))


def block_average(series, n_blocks: int = 10) -> tuple[float, float]:
    """Mean and standard error of a correlated time series by block averaging.

    The series is cut into ``n_blocks`` equal consecutive blocks (a remainder at the start is
    dropped); the standard error is ``std(block means, ddof=1) / sqrt(n_blocks)``.  Blocks must
    be longer than the correlation time for the error to be honest.

    Parameters
    ----------
    series : array-like, 1-D
    n_blocks : int
        At least 2, at most ``len(series)``.

    Returns
    -------
    mean, stderr : float
    """
    x = np.asarray(series, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise InputError("series", f"shape {x.shape}", "a 1-D series of at least 2 values")
    if not np.all(np.isfinite(x)):
        raise InputError("series", "non-finite values", "a finite series")
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)) \
            or not 2 <= n_blocks <= x.size:
        raise InputError("n_blocks", n_blocks, f"an integer in [2, {x.size}]")
    m = x.size // n_blocks
    blocks = x[x.size - m * n_blocks:].reshape(n_blocks, m).mean(axis=1)
    return float(blocks.mean()), float(blocks.std(ddof=1) / np.sqrt(n_blocks))


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
def _positive_float(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value <= 0:
        raise InputError(name, value, "a finite number > 0")
    return float(value)


def _positive_int(name, value, allow_zero=False):
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < (0 if allow_zero else 1):
        raise InputError(name, value, "an integer >= 0" if allow_zero else "an integer >= 1")
    return int(value)


def _validate_settings(ensemble, temperature_K, timestep_fs, friction, seed, energy_drift_tol,
                       max_force, checkpoint_every, trajectory_every):
    if ensemble not in _ENSEMBLES:
        raise InputError("ensemble", ensemble, f"one of {_ENSEMBLES}",
                         hint="NPT is not implemented yet" if ensemble == "npt" else None)
    if temperature_K is not None:
        temperature_K = _positive_float("temperature_K", temperature_K)
    elif ensemble == "nvt":
        raise InputError("temperature_K", None, "a temperature > 0 K for the NVT thermostat")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or seed < 0):
        raise InputError("seed", seed, "a non-negative integer or None")
    return {
        "ensemble": ensemble,
        "temperature_K": temperature_K,
        "timestep_fs": _positive_float("timestep_fs", timestep_fs),
        "friction": _positive_float("friction", friction),
        "seed": None if seed is None else int(seed),
        "energy_drift_tol": _positive_float("energy_drift_tol", energy_drift_tol),
        "max_force": _positive_float("max_force", max_force),
        "checkpoint_every": _positive_int("checkpoint_every", checkpoint_every, allow_zero=True),
        "trajectory_every": _positive_int("trajectory_every", trajectory_every),
    }


# --------------------------------------------------------------------------------------------
# steps as functions
# --------------------------------------------------------------------------------------------
def _frame_problem(atoms, settings, e0_per_atom):
    """Evaluate and check the current frame.

    Returns ``(problem, observables)``; ``problem`` is ``None`` or ``(quantity, value, advice)``.
    """
    n = len(atoms)
    dt = settings["timestep_fs"]
    smaller = f"use a smaller timestep_fs (now {dt:g})"
    if not np.all(np.isfinite(atoms.positions)):
        return ("positions", "non-finite", smaller), None
    p = atoms.get_momenta()
    if not np.all(np.isfinite(p)):
        return ("velocities", "non-finite", smaller), None
    epot = float(atoms.get_potential_energy())
    forces = atoms.get_forces()
    if not np.isfinite(epot):
        return ("potential energy", epot, smaller + " or check for overlapping atoms"), None
    if not np.all(np.isfinite(forces)):
        return ("forces", "non-finite", smaller + " or check for overlapping atoms"), None
    fmax = float(np.sqrt((forces ** 2).sum(axis=1)).max()) if n else 0.0
    if fmax > settings["max_force"]:
        return ("max force (eV/Å)", fmax,
                f"check for overlapping atoms, {smaller}, or raise max_force "
                f"(now {settings['max_force']:g}) if such forces are physical"), None
    ekin = float(atoms.get_kinetic_energy())
    obs = (epot / n, ekin / n, (epot + ekin) / n, float(atoms.get_temperature()))
    if settings["ensemble"] == "nve" and e0_per_atom is not None:
        dE = abs(obs[2] - e0_per_atom)
        if dE > settings["energy_drift_tol"]:
            return ("total-energy change (eV/atom)", dE,
                    f"{smaller}, or raise energy_drift_tol (now "
                    f"{settings['energy_drift_tol']:g} eV/atom)"), None
    return None, obs


def _make_integrator(atoms, settings, rng):
    from ase import units

    dt = settings["timestep_fs"] * units.fs
    if settings["ensemble"] == "nve":
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, timestep=dt)
    from ase.md.langevin import Langevin

    return Langevin(atoms, timestep=dt, temperature_K=settings["temperature_K"],
                    friction=settings["friction"] / units.fs, fixcm=False, rng=rng)


def _snapshot(atoms):
    from ase import Atoms

    a = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    a.set_masses(atoms.get_masses())
    a.set_momenta(atoms.get_momenta())
    return a


def _drive(atoms, calc, steps, settings, *, step0, time0, e0_per_atom, rng, trajectory,
           checkpoint, append):
    """Run ``steps`` monitored steps from ``atoms`` (already carrying momenta)."""
    from ase.io.trajectory import Trajectory

    atoms.calc = calc
    dt = settings["timestep_fs"]
    traj = None
    if trajectory is not None:
        traj = Trajectory(str(trajectory), "a" if append else "w", atoms)
    rows = []
    last_written = None
    last_good = None
    last_ckpt = None

    def state_of(a, step, t):
        return MDState.from_atoms(a, step=step, time_fs=t, settings=settings,
                                  e0_per_atom=e0_per_atom,
                                  rng_state=None if rng is None else rng.bit_generator.state)

    def fail(step, problem, cause=None):
        quantity, value, advice = problem
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        where = "no good frame" if last_good is None else f"last good frame: step {last_good[1]}"
        err = CalculationError(
            f"MD ({settings['ensemble']}) failed at step {step} (t = {time0 + (step - step0) * dt:g}"
            f" fs): {quantity} = {shown}; what to change: {advice}; {where}")
        err.step = step
        err.quantity = quantity
        err.value = value
        err.last_good = None if last_good is None else last_good[0]
        err.last_good_step = None if last_good is None else last_good[1]
        err.checkpoint = last_ckpt
        raise err from cause

    try:
        for k in range(steps + 1):
            step = step0 + k
            t = time0 + k * dt
            if k > 0:
                try:
                    dyn.step()
                except (ArithmeticError, ValueError, FloatingPointError, MemoryError) as exc:
                    fail(step, ("calculator", f"{type(exc).__name__}: {exc}",
                                f"use a smaller timestep_fs (now {dt:g}) or check the "
                                "structure"), exc)
            try:
                problem, obs = _frame_problem(atoms, settings, e0_per_atom)
            except (ArithmeticError, ValueError, FloatingPointError, MemoryError) as exc:
                problem, obs = ("calculator", f"{type(exc).__name__}: {exc}",
                                f"use a smaller timestep_fs (now {dt:g}) or check the "
                                "structure"), None
            if problem is not None:
                if traj is not None and last_good is not None and last_written != last_good[1]:
                    traj.write(last_good[0])
                    last_written = last_good[1]
                if checkpoint is not None and last_good is not None:
                    write_checkpoint(checkpoint, last_good[2])
                    last_ckpt = str(checkpoint)
                fail(step, problem)
            if e0_per_atom is None:
                e0_per_atom = obs[2]
            if k == 0:
                # integrator built after the first check: the rng state saved with the first
                # frame is the one the first step will use
                dyn = _make_integrator(atoms, settings, rng)
            rows.append((t,) + obs)
            good = _snapshot(atoms)
            last_good = (good, step, state_of(atoms, step, t))
            if traj is not None and not (append and k == 0) and \
                    ((step % settings["trajectory_every"]) == 0 or k == steps):
                traj.write(atoms)
                last_written = step
            if checkpoint is not None and k > 0 and (
                    (settings["checkpoint_every"] and step % settings["checkpoint_every"] == 0)
                    or k == steps):
                write_checkpoint(checkpoint, last_good[2])
                last_ckpt = str(checkpoint)
    finally:
        if traj is not None:
            traj.close()

    arr = np.array(rows, dtype=float)
    final = last_good[0]
    return MDResult(atoms=final, time_fs=arr[:, 0], potential_energy=arr[:, 1],
                    kinetic_energy=arr[:, 2], total_energy=arr[:, 3], temperature_K=arr[:, 4],
                    ensemble=settings["ensemble"], timestep_fs=dt, steps=steps,
                    checkpoint=last_ckpt)


def _default_checkpoint(trajectory, checkpoint):
    if checkpoint is not None:
        return Path(checkpoint)
    if trajectory is not None:
        return Path(str(trajectory) + ".ckpt.npz")
    return None


def run_md(atoms, calc, *, steps: int, ensemble: str = "nve", temperature_K: float | None = None,
           timestep_fs: float = 1.0, friction: float = 0.01, seed: int | None = None,
           trajectory: str | os.PathLike | None = None, trajectory_every: int = 1,
           checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 100,
           energy_drift_tol: float = 0.05, max_force: float = 50.0) -> MDResult:
    """Run monitored molecular dynamics with an ASE integrator.

    Parameters
    ----------
    atoms : ase.Atoms
        Starting configuration; not modified (a copy is integrated).  If ``temperature_K`` is
        given and the atoms carry no momenta (all zero), velocities are drawn from the
        Maxwell-Boltzmann distribution at ``temperature_K`` (seeded by ``seed``) and the
        centre-of-mass momentum is removed; momenta the atoms already carry are used as they are.
    calc : ase.calculators.calculator.Calculator
        Energy model (any ASE calculator: StillingerWeber, Tersoff, EAM, ...).
    steps : int
        Number of steps (>= 1).
    ensemble : {"nve", "nvt"}
        ``"nve"``: :class:`ase.md.verlet.VelocityVerlet`; ``"nvt"``: :class:`ase.md.langevin.
        Langevin` at ``temperature_K`` with ``friction`` (1/fs) and no centre-of-mass constraint.
    temperature_K : float, optional
        Thermostat target (required for NVT) and temperature of the initial velocities.
    timestep_fs : float
        Timestep, fs.
    friction : float
        Langevin friction, 1/fs (0.01/fs: relaxation time 100 fs).
    seed : int, optional
        Seeds the initial velocities and the Langevin noise (a ``numpy.random.Generator``
        whose state is checkpointed, so NVT resumes reproduce the uninterrupted run).
    trajectory : path, optional
        ASE ``.traj`` file written incrementally, one frame per ``trajectory_every`` steps (the
        first and last frames always), each frame only after it passed the checks.  After a
        failure the file ends at the last good frame.
    checkpoint : path, optional
        Checkpoint file (default ``<trajectory>.ckpt.npz`` when ``trajectory`` is set, else no
        checkpoint).  Written atomically every ``checkpoint_every`` steps (0: only at the end),
        at the end, and on failure (holding the last good frame).
    energy_drift_tol : float
        NVE: largest allowed ``|E_tot(t) - E_tot(0)|`` per atom, eV/atom.
    max_force : float
        Largest allowed force on an atom, eV/Å.

    Returns
    -------
    MDResult

    Raises
    ------
    InputError
        Bad settings (names field and value).
    CalculationError
        A check failed.  Attributes: ``step``, ``quantity``, ``value``, ``last_good`` (ase.Atoms
        or None), ``last_good_step``, ``checkpoint``.
    """
    from ase import Atoms
    from ase.md import velocitydistribution as vd

    if not isinstance(atoms, Atoms) or len(atoms) == 0:
        raise InputError("atoms", type(atoms).__name__, "a non-empty ase.Atoms")
    steps = _positive_int("steps", steps)
    settings = _validate_settings(ensemble, temperature_K, timestep_fs, friction, seed,
                                  energy_drift_tol, max_force, checkpoint_every, trajectory_every)
    work = _snapshot(atoms)
    rng = np.random.default_rng(settings["seed"])
    if settings["temperature_K"] is not None and not np.any(work.get_momenta()):
        if hasattr(vd, "thermalize_momenta"):  # ASE >= 3.29
            vd.thermalize_momenta(work, settings["temperature_K"], rng=rng)
        else:
            vd.MaxwellBoltzmannDistribution(work, temperature_K=settings["temperature_K"], rng=rng)
        vd.Stationary(work)
    return _drive(work, calc, steps, settings, step0=0, time0=0.0, e0_per_atom=None,
                  rng=rng if settings["ensemble"] == "nvt" else None,
                  trajectory=trajectory, checkpoint=_default_checkpoint(trajectory, checkpoint),
                  append=False)


def resume_md(checkpoint_path: str | os.PathLike, calc, steps: int, *,
              trajectory: str | os.PathLike | None = None) -> MDResult:
    """Continue a run from a checkpoint written by :func:`run_md`.

    Parameters
    ----------
    checkpoint_path : path
        Checkpoint file; it is updated as the continued run proceeds.
    calc : ase.calculators.calculator.Calculator
        The same energy model as the original run.
    steps : int
        Further steps.
    trajectory : path, optional
        Trajectory to append to (typically the original run's; the checkpointed frame is not
        written again).

    Returns
    -------
    MDResult
        Its series start at the checkpointed frame (time counted from the original start).  The
        NVE drift check keeps the original run's reference energy.
    """
    steps = _positive_int("steps", steps)
    state = read_checkpoint(checkpoint_path)
    settings = dict(state.settings)
    rng = None
    if settings["ensemble"] == "nvt":
        rng = np.random.default_rng()
        rng.bit_generator.state = state.rng_state
    append = trajectory is not None and Path(trajectory).exists()
    return _drive(state.to_atoms(), calc, steps, settings, step0=state.step, time0=state.time_fs,
                  e0_per_atom=state.e0_per_atom, rng=rng, trajectory=trajectory,
                  checkpoint=Path(checkpoint_path), append=append)
