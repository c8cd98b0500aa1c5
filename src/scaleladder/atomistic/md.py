"""Monitored molecular dynamics on ASE integrators, with checkpoint and resume.

The integrators are ASE's (:class:`ase.md.verlet.VelocityVerlet` for NVE,
:class:`ase.md.langevin.Langevin` for NVT, :class:`ase.md.langevinbaoab.LangevinBAOAB` with a
Langevin-Hoover barostat for NPT); :class:`MDEngine` steps them and checks every step, as an
engine of the project's one simulation protocol, driven by :func:`scaleladder.core.simulation.
run_simulation` (checkpoints, progress, the last good state kept on a blow-up).  The state that a
run needs to continue (positions, momenta, cell, step, time, the reference energy of the drift
check, the random-number state and, for NPT, the barostat's cell momentum) is plain data,
:class:`MDState`, written in the one checkpoint format and read back by :func:`resume_md`.  The
random stream is reproducible by default (``seed=0``).

Why LangevinBAOAB for NPT
-------------------------
ASE 3.29 offers five constant-pressure integrators.  :class:`~ase.md.nptberendsen.NPTBerendsen`
rescales the cell towards the target: it does not sample the isothermal-isobaric ensemble (the
volume fluctuations are wrong), so it cannot give block-averaged errors or fluctuation
properties.  :class:`ase.md.npt.NPT` (Melchionna's Nosé-Hoover/Parrinello-Rahman equations) is
known to sample a slightly wrong volume distribution (Martyna, Tobias & Klein 1994) and needs an
upper-triangular cell.  :class:`~ase.md.nose_hoover_chain.IsotropicMTKNPT` / ``MTKNPT`` sample the
correct ensemble, but deterministic Nosé-Hoover chains are not ergodic for a nearly harmonic
crystal at low temperature, and their chain variables are private attributes (a checkpoint would
depend on ASE internals).  :class:`~ase.md.langevinbaoab.LangevinBAOAB` (Leimkuhler-Matthews
BAOAB splitting for the particles, Quigley-Probert Langevin-Hoover for the cell, an MTK-type
barostat on ``log V``) samples the NPT ensemble, is ergodic at any temperature through the
Langevin noise, uses the same friction as the NVT thermostat here, and its whole state is the
positions, momenta, cell, random-number state and the cell momentum ``p_eps`` (with the cell
force of the last half step), which the checkpoint stores: an NPT resume reproduces the
uninterrupted run.  Its barostat holds the mean stress *including* the kinetic (ideal-gas) term
at the target, so the pressure recorded here includes it too.

Checks at every step (the initial frame included)
-------------------------------------------------
* non-finite positions, momenta, potential energy or forces;
* a force component norm above ``max_force`` (eV/Å);
* NVE only: ``|E_tot(t) - E_tot(0)| / N`` above ``energy_drift_tol`` (eV/atom).
* with ``record_stress`` (always for NPT): a non-finite stress;
* NPT only: a non-finite cell, or a volume that left ``[V0 / max_volume_ratio,
  V0 * max_volume_ratio]`` (``V0`` the volume at the start of the run).

A failed check stops the run with :class:`~scaleladder.core.errors.CalculationError` naming the
step, the quantity, its value and what to change.  The last frame that passed is kept: as the
exception's ``last_good`` attribute (an :class:`ase.Atoms` copy with positions and momenta,
``None`` if the initial frame already failed), as the last frame of the trajectory, and in the
checkpoint.  Frames reach the trajectory only after they pass the checks.

Units: time fs, energies eV (per atom in :class:`MDResult`), temperature K, forces eV/Å,
friction 1/fs, pressure and stress GPa (ASE sign for stress: positive = tensile), volume Å³.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.codec import register
from ..core.errors import CalculationError, InputError
from ..core.units import EV_PER_A3_IN_GPA
from ..core.timeseries import block_average, blocking_curve, integrated_autocorrelation_time
from ._calculator import restart_neighbour_list

__all__ = ["MDState", "MDResult", "run_md", "resume_md", "block_average", "blocking_curve",
           "integrated_autocorrelation_time", "read_checkpoint", "write_checkpoint", "RESPA"]

_ENSEMBLES = ("nve", "nvt", "npt")
_CELL_FLUCTUATIONS = ("isotropic", "full")


# --------------------------------------------------------------------------------------------
# state as data
# --------------------------------------------------------------------------------------------
@register("MDState")
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
        ``numpy.random.Generator.bit_generator.state`` of the Langevin noise (NVT, NPT).
    barostat : dict or None
        NPT only: ``p_eps`` (cell momentum: a float for isotropic, a 3x3 list for full cell
        fluctuations), ``force_eps`` (cell force of the last half step), ``mass`` (barostat mass,
        ASE units) and ``volume0_A3`` (volume at the start of the run, for the volume check).
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
    barostat: dict | None = None

    @classmethod
    def from_atoms(cls, atoms, *, step, time_fs, settings, e0_per_atom, rng_state=None,
                   barostat=None):
        """Snapshot ``atoms`` (arrays copied)."""
        return cls(numbers=atoms.numbers.copy(), positions=atoms.positions.copy(),
                   momenta=atoms.get_momenta().copy(), cell=np.array(atoms.cell[:]),
                   pbc=np.array(atoms.pbc, dtype=bool), masses=atoms.get_masses().copy(),
                   step=int(step), time_fs=float(time_fs), settings=dict(settings),
                   e0_per_atom=float(e0_per_atom),
                   rng_state=None if rng_state is None else json.loads(json.dumps(rng_state)),
                   barostat=None if barostat is None else json.loads(json.dumps(barostat)))

    def to_state(self) -> dict:
        return {"numbers": self.numbers, "positions": self.positions, "momenta": self.momenta,
                "cell": self.cell, "pbc": self.pbc, "masses": self.masses,
                "step": int(self.step), "time_fs": float(self.time_fs),
                "settings": dict(self.settings), "e0_per_atom": float(self.e0_per_atom),
                "rng_state": self.rng_state, "barostat": self.barostat}

    @classmethod
    def from_state(cls, s: dict) -> "MDState":
        return cls(**{k: (np.array(v) if k in ("numbers", "positions", "momenta", "cell", "pbc",
                                                "masses") else v) for k, v in s.items()})

    def to_atoms(self):
        """An :class:`ase.Atoms` with this state's positions, momenta, cell, masses."""
        from ase import Atoms

        atoms = Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell,
                      pbc=self.pbc)
        atoms.set_masses(self.masses)
        atoms.set_momenta(self.momenta)
        return atoms


#: checkpoint kind of MD runs (:class:`MDEngine`)
_MD_KIND = "scaleladder.md/3"


def write_checkpoint(path: str | os.PathLike, state: MDState) -> Path:
    """Write ``state`` as the one simulation driver does (the one checkpoint format: atomic,
    fsynced, hashed, no pickle; the calculator is not stored)."""
    from ..core.simulation import write_simulation_checkpoint

    return write_simulation_checkpoint(path, _MD_KIND, state, {"step": [state.step]})


def read_checkpoint(path: str | os.PathLike) -> MDState:
    """The state in a checkpoint of :func:`run_md` / :func:`write_checkpoint`.

    Raises
    ------
    CheckpointError
        (an ``InputError`` naming ``checkpoint_path``) for a missing, unreadable, corrupt or
        foreign file.
    """
    from ..core.checkpoint import CheckpointError
    from ..core.simulation import read_simulation_checkpoint

    try:
        _, state, _ = read_simulation_checkpoint(path, kind=_MD_KIND, require_engine=False)
    except CheckpointError as exc:
        raise CheckpointError("checkpoint_path", exc.value, exc.expected, hint=exc.hint) from None
    except InputError as exc:
        raise InputError("checkpoint_path", str(path), "an MD checkpoint",
                         hint=str(exc)) from None
    if not isinstance(state, MDState):
        raise InputError("checkpoint_path", str(path), "an MD checkpoint")
    return state


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
    volume_A3 : numpy.ndarray or None
        Cell volume per frame, Å³ (the whole cell; constant unless NPT).
    cell_A : numpy.ndarray or None
        Cell vectors per frame, shape ``(n_frames, 3, 3)``, Å (rows are the cell vectors).
    stress_GPa : numpy.ndarray or None
        Instantaneous stress per frame, shape ``(n_frames, 6)``, GPa, Voigt ``xx, yy, zz, yz,
        xz, xy``, ASE sign (positive = tensile), *including* the kinetic (ideal-gas) term
        ``-sum_i p_i p_i^T / (m_i V)`` (ASE ``get_stress(include_ideal_gas=True)``); recorded
        when ``record_stress`` (always for NPT), else ``None``.
    pressure_GPa : numpy.ndarray or None
        ``-trace(stress) / 3`` per frame, GPa (kinetic term included), when the stress is
        recorded.
    snapshots : tuple of ase.Atoms
        Copies of the frames at the steps asked for with ``snapshots=`` (momenta kept, no
        calculator, no constraint; ``info``: ``step``, ``time_fs``, ``potential_energy_eV``,
        ``kinetic_temperature_K``; ``arrays["forces"]``: the forces, eV/Å).
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
    volume_A3: np.ndarray | None = None
    cell_A: np.ndarray | None = None
    stress_GPa: np.ndarray | None = None
    pressure_GPa: np.ndarray | None = None
    snapshots: tuple = ()

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


def _check_friction(friction, ensemble):
    """A Langevin friction (1/fs): one number > 0, or (NVT) one value >= 0 per atom — the stadium
    thermostat, friction on a shell and none (plain velocity Verlet) in the core."""
    if np.ndim(friction) == 0:
        return _positive_float("friction", friction)
    if ensemble != "nvt":
        raise InputError("friction", "an array", "one number unless ensemble='nvt' (the per-atom "
                         "stadium friction is an NVT thermostat)")
    arr = np.asarray(friction, dtype=float)
    if arr.ndim != 1 or not np.all(np.isfinite(arr)) or np.any(arr < 0) or not np.any(arr > 0):
        raise InputError("friction", f"array of shape {arr.shape}",
                         "per-atom frictions >= 0 (1/fs), not all zero, one per atom")
    return arr.tolist()


def _validate_settings(ensemble, temperature_K, timestep_fs, friction, seed, energy_drift_tol,
                       max_force, checkpoint_every, trajectory_every, pressure_GPa=None,
                       pressure_tau_fs=1000.0, cell_fluctuations="isotropic", record_stress=None,
                       max_volume_ratio=2.0):
    if ensemble not in _ENSEMBLES:
        raise InputError("ensemble", ensemble, f"one of {_ENSEMBLES}")
    if temperature_K is not None:
        temperature_K = _positive_float("temperature_K", temperature_K)
    elif ensemble in ("nvt", "npt"):
        raise InputError("temperature_K", None,
                         f"a temperature > 0 K for the {ensemble.upper()} thermostat")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or seed < 0):
        raise InputError("seed", seed, "a non-negative integer or None")
    npt = {}
    if ensemble == "npt":
        p = 0.0 if pressure_GPa is None else pressure_GPa
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) \
                or not np.isfinite(p):
            raise InputError("pressure_GPa", pressure_GPa, "a finite pressure in GPa")
        if cell_fluctuations not in _CELL_FLUCTUATIONS:
            raise InputError("cell_fluctuations", cell_fluctuations,
                             f"one of {_CELL_FLUCTUATIONS}")
        ratio = _positive_float("max_volume_ratio", max_volume_ratio)
        if ratio <= 1.0:
            raise InputError("max_volume_ratio", max_volume_ratio, "a number > 1")
        if record_stress is False:
            raise InputError("record_stress", record_stress, "True or None for NPT",
                             hint="the barostat needs the stress at every step anyway")
        npt = {"pressure_GPa": float(p),
               "pressure_tau_fs": _positive_float("pressure_tau_fs", pressure_tau_fs),
               "cell_fluctuations": cell_fluctuations, "max_volume_ratio": ratio}
        record_stress = True
    elif pressure_GPa is not None:
        raise InputError("pressure_GPa", pressure_GPa, "None unless ensemble='npt'",
                         hint=f"ensemble={ensemble!r} keeps the cell fixed")
    if record_stress is not None and not isinstance(record_stress, (bool, np.bool_)):
        raise InputError("record_stress", record_stress, "True, False or None")
    return {
        "ensemble": ensemble,
        "temperature_K": temperature_K,
        "timestep_fs": _positive_float("timestep_fs", timestep_fs),
        "friction": _check_friction(friction, ensemble),
        "seed": None if seed is None else int(seed),
        "energy_drift_tol": _positive_float("energy_drift_tol", energy_drift_tol),
        "max_force": _positive_float("max_force", max_force),
        "checkpoint_every": _positive_int("checkpoint_every", checkpoint_every, allow_zero=True),
        "trajectory_every": _positive_int("trajectory_every", trajectory_every),
        "record_stress": bool(record_stress),
        **npt,
    }


# --------------------------------------------------------------------------------------------
# steps as functions
# --------------------------------------------------------------------------------------------
def _no_energy_errors() -> tuple:
    from ase.calculators.calculator import PropertyNotImplementedError as AsePNI

    from ..core.errors import PropertyNotImplementedError as OurPNI

    return (AsePNI, OurPNI)


_NO_ENERGY = _no_energy_errors()


def _frame_problem(atoms, settings, e0_per_atom, volume0=None):
    """Evaluate and check the current frame.

    Returns ``(problem, observables)``; ``problem`` is ``None`` or ``(quantity, value, advice)``;
    ``observables`` is ``(scalars, cell, stress)``: ``scalars`` = (epot/N, ekin/N, etot/N, T,
    volume), ``cell`` 3x3 Å, ``stress`` Voigt GPa (kinetic term included) or ``None``.
    """
    n = len(atoms)
    dt = settings["timestep_fs"]
    smaller = f"use a smaller timestep_fs (now {dt:g})"
    if not np.all(np.isfinite(atoms.positions)):
        return ("positions", "non-finite", smaller), None
    p = atoms.get_momenta()
    if not np.all(np.isfinite(p)):
        return ("velocities", "non-finite", smaller), None
    cell = np.array(atoms.cell[:], dtype=float)
    volume = abs(float(np.linalg.det(cell)))
    if settings["ensemble"] == "npt":
        smaller_p = (f"{smaller}, use a longer pressure_tau_fs (now "
                     f"{settings['pressure_tau_fs']:g}), or check the target pressure and "
                     "temperature (melting, vaporising)")
        if not np.all(np.isfinite(cell)) or volume <= 0.0:
            return ("cell", "non-finite or degenerate", smaller_p), None
        ratio = volume / volume0
        r_max = settings["max_volume_ratio"]
        if not (1.0 / r_max <= ratio <= r_max):
            return ("volume ratio V/V0", ratio,
                    f"{smaller_p}, or raise max_volume_ratio (now {r_max:g}) if such a volume "
                    "change is physical"), None
    try:
        epot = float(atoms.get_potential_energy())
        has_energy = True
    except _NO_ENERGY:
        # a non-conservative model (force mixing) has no energy: the frame records NaN and
        # the energy checks are skipped; forces are still checked
        epot, has_energy = float("nan"), False
    forces = atoms.get_forces()
    if has_energy and not np.isfinite(epot):
        return ("potential energy", epot, smaller + " or check for overlapping atoms"), None
    if not np.all(np.isfinite(forces)):
        return ("forces", "non-finite", smaller + " or check for overlapping atoms"), None
    fmax = float(np.sqrt((forces ** 2).sum(axis=1)).max()) if n else 0.0
    if fmax > settings["max_force"]:
        return ("max force (eV/Å)", fmax,
                f"check for overlapping atoms, {smaller}, or raise max_force "
                f"(now {settings['max_force']:g}) if such forces are physical"), None
    stress = None
    if settings.get("record_stress", False):
        stress = np.asarray(atoms.get_stress(voigt=True, include_ideal_gas=True),
                            dtype=float) * EV_PER_A3_IN_GPA
        if stress.shape != (6,) or not np.all(np.isfinite(stress)):
            return ("stress", "non-finite", smaller + " or check for overlapping atoms"), None
    ekin = float(atoms.get_kinetic_energy())
    obs = (epot / n, ekin / n, (epot + ekin) / n, float(atoms.get_temperature()), volume)
    if settings["ensemble"] == "nve" and has_energy and e0_per_atom is not None:
        dE = abs(obs[2] - e0_per_atom)
        if dE > settings["energy_drift_tol"]:
            return ("total-energy change (eV/atom)", dE,
                    f"{smaller}, or raise energy_drift_tol (now "
                    f"{settings['energy_drift_tol']:g} eV/atom)"), None
    return None, (obs, cell, stress)


def _barostat_mass(atoms, settings):
    """Barostat mass W (ASE units) that gives volume oscillations of period ``pressure_tau_fs``.

    Linearising the Langevin-Hoover cell equations about equilibrium (``d ln V/dt = 3 p/W``,
    ``dp/dt = 3 V (P - P_ext)``, ``dP = -B d ln V``) gives ``omega^2 = 9 V B / W`` for isotropic
    fluctuations and ``3 V B / W`` for the full cell, so ``W = 9 V B (tau / 2 pi)^2`` (resp. 3).
    ``B`` is the affine (unrelaxed) bulk modulus of the starting configuration from the virial
    pressure at volume strains of ±0.3 %, floored at the ideal-gas value ``N k T / V`` (gases,
    unstable starts).  ASE's own default mass is an empirical fit for aluminium, which would make
    the volume of a soft crystal such as argon oscillate several times slower than asked.
    """
    from ase import units

    work = atoms.copy()
    work.calc = atoms.calc
    cell = np.array(atoms.cell[:])
    h = 1e-3
    p = []
    for s in (1.0 - h, 1.0 + h):
        work.set_cell(cell * s, scale_atoms=True)
        p.append(-float(np.trace(work.get_stress(voigt=False))) / 3.0)
    volume = abs(float(np.linalg.det(cell)))
    b_affine = -(p[1] - p[0]) / (3.0 * np.log((1.0 + h) / (1.0 - h)))
    b_gas = len(atoms) * units.kB * settings["temperature_K"] / volume
    b = b_affine if np.isfinite(b_affine) and b_affine > b_gas else b_gas
    factor = 9.0 if settings["cell_fluctuations"] == "isotropic" else 3.0
    tau = settings["pressure_tau_fs"] * units.fs
    return float(factor * volume * b * (tau / (2.0 * np.pi)) ** 2)


class RESPA:
    """r-RESPA (impulse) multiple time stepping (Tuckerman, Berne & Martyna 1992): the forces
    split into a fast part (``fast``, an ASE calculator) and the slow rest (the atoms'
    calculator minus ``fast``).  One outer step ``Δt``: a half kick of the slow force, ``n``
    velocity-Verlet steps of ``δt = Δt/n`` under the fast force, a half kick of the slow force
    at the new positions.  With ``n = 1`` it is velocity Verlet on the total force.  With a
    ``friction`` (1/fs) and ``temperature_K`` it is the Langevin variant: an exact
    Ornstein–Uhlenbeck half step on the momenta right after the first slow kick and right
    before the last (``O B [A…] B O`` around the inner loop, symmetric), drawing from ``rng``.

    The slow force is recomputed from the positions (total − fast), so the integrator carries
    no state beyond positions and momenta: a checkpointed run resumes bit for bit.
    """

    def __init__(self, atoms, timestep, fast, n_inner: int, *, temperature_K=None, friction=None,
                 rng=None):
        self.atoms = atoms
        self.dt = float(timestep)
        self.fast = fast
        self.n = int(n_inner)
        self.friction = friction
        self.temperature_K = temperature_K
        self.rng = rng
        self._ff = None
        self._fs = None
        self.nsteps = 0

    def _fast_forces(self):
        return np.asarray(self.fast.get_forces(self.atoms), dtype=float)

    def _ou(self, p, m, half_dt):
        from ase import units

        g = np.asarray(self.friction, dtype=float) / units.fs
        g = g[:, None] if np.ndim(g) == 1 else g
        c1 = np.exp(-g * half_dt)
        kT = units.kB * self.temperature_K
        xi = self.rng.standard_normal(p.shape)
        return c1 * p + np.sqrt((1.0 - c1 ** 2) * m * kT) * xi

    def step(self):
        atoms = self.atoms
        m = atoms.get_masses()[:, None]
        if self._fs is None:
            self._ff = self._fast_forces()
            self._fs = np.asarray(atoms.get_forces(), dtype=float) - self._ff
        dt, dti = self.dt, self.dt / self.n
        p = atoms.get_momenta() + 0.5 * dt * self._fs
        if self.friction is not None:
            p = self._ou(p, m, 0.5 * dt)
        ff = self._ff
        for _ in range(self.n):
            p = p + 0.5 * dti * ff
            atoms.set_momenta(p)
            atoms.set_positions(atoms.get_positions() + dti * atoms.get_momenta() / m)
            p = atoms.get_momenta()
            ff = self._fast_forces()
            p = p + 0.5 * dti * ff
        ftot = np.asarray(atoms.get_forces(), dtype=float)
        self._ff, self._fs = ff, ftot - ff
        p = p + 0.5 * dt * self._fs
        if self.friction is not None:
            p = self._ou(p, m, 0.5 * dt)
        atoms.set_momenta(p)
        self.nsteps += 1
        return ftot


def _make_integrator(atoms, settings, rng, barostat=None, fast=None):
    from ase import units

    dt = settings["timestep_fs"] * units.fs
    n_inner = settings.get("inner_steps", 1)
    if fast is not None:
        langevin = settings["ensemble"] == "nvt"
        return RESPA(atoms, dt, fast, n_inner,
                     temperature_K=settings["temperature_K"] if langevin else None,
                     friction=settings["friction"] if langevin else None,
                     rng=rng if langevin else None)
    if settings["ensemble"] == "nve":
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, timestep=dt)
    if settings["ensemble"] == "npt":
        from ase.md.langevinbaoab import LangevinBAOAB

        mass = _barostat_mass(atoms, settings) if barostat is None else barostat["mass"]
        dyn = LangevinBAOAB(atoms, timestep=dt, temperature_K=settings["temperature_K"],
                            externalstress=-settings["pressure_GPa"] / EV_PER_A3_IN_GPA,
                            hydrostatic=settings["cell_fluctuations"] == "isotropic",
                            T_tau=1.0 / (settings["friction"] / units.fs),
                            P_tau=settings["pressure_tau_fs"] * units.fs, P_mass=mass, rng=rng)
        if barostat is not None:
            dyn.p_eps = _from_jsonable(barostat["p_eps"])
            dyn.force_eps = _from_jsonable(barostat["force_eps"])
        return dyn
    from ase.md.langevin import Langevin

    friction = settings["friction"]
    if np.ndim(friction) == 1:   # the stadium thermostat: per-atom friction, shape (n, 1)
        friction = np.asarray(friction, dtype=float)[:, None]
    return Langevin(atoms, timestep=dt, temperature_K=settings["temperature_K"],
                    friction=friction / units.fs, fixcm=False, rng=rng)


def _from_jsonable(x):
    return float(x) if np.ndim(x) == 0 else np.array(x, dtype=float)


def _barostat_state(dyn, volume0):
    """The NPT integrator's state beyond positions, momenta, cell and rng (plain data)."""
    return {"p_eps": np.asarray(dyn.p_eps, dtype=float).tolist(),
            "force_eps": np.asarray(dyn.force_eps, dtype=float).tolist(),
            "mass": float(dyn.barostat_mass), "volume0_A3": float(volume0)}


def _snapshot(atoms):
    from ase import Atoms

    a = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    a.set_masses(atoms.get_masses())
    a.set_momenta(atoms.get_momenta())
    return a


def md_failure(what: str, step: int, t: float, quantity: str, value, advice: str,
               last_good) -> CalculationError:
    """The error of an MD run that blew up (both MD engines): the message and the attributes
    ``step, quantity, value, last_good`` (Atoms or None), ``last_good_step``, ``checkpoint``
    (None; the driver fills it in).  ``last_good`` is ``(Atoms, step, state)`` or None."""
    shown = f"{value:.6g}" if isinstance(value, float) else str(value)
    where = "no good frame" if last_good is None else f"last good frame: step {last_good[1]}"
    err = CalculationError(f"{what} failed at step {step} (t = {t:g} fs): {quantity} = {shown}; "
                           f"what to change: {advice}; {where}")
    err.step, err.quantity, err.value = step, quantity, value
    err.last_good = None if last_good is None else last_good[0]
    err.last_good_step = None if last_good is None else last_good[1]
    err.checkpoint = None
    return err


class MDEngine:
    """ASE's integrators (velocity Verlet, Langevin, Langevin–BAOAB NPT) with the per-frame checks
    of :func:`run_md`, as an engine of the project's one simulation protocol
    (:mod:`scaleladder.core.simulation`): ``advance(state, n)`` steps the integrator (kept alive
    between calls, rebuilt from an ``MDState`` on resume: positions, momenta, cell, the Langevin
    random stream and the barostat), ``observe`` evaluates the frame, ``check`` refuses a frame
    that blew up (keeping the last good one: trajectory, checkpoint, error attributes) and records
    the good ones.  The calculator is not stored in checkpoints: resume with :func:`resume_md`.
    """

    kind = _MD_KIND

    def __init__(self, atoms, calc, settings, *, step0, time0, e0_per_atom, rng, steps,
                 trajectory=None, append=False, barostat=None, snapshots=frozenset(), fast=None):
        from ase.io.trajectory import Trajectory

        self.fast = fast
        self.atoms = atoms
        atoms.calc = calc
        self.settings = settings
        self.dt = settings["timestep_fs"]
        self.npt = settings["ensemble"] == "npt"
        self.volume0 = None
        if self.npt:
            self.volume0 = (barostat["volume0_A3"] if barostat is not None
                            else abs(float(np.linalg.det(atoms.cell[:]))))
        self.rng, self.barostat, self.e0 = rng, barostat, e0_per_atom
        self.step0, self.time0, self.steps = step0, time0, steps
        self.append = append
        self.traj = Trajectory(str(trajectory), "a" if append else "w", atoms) \
            if trajectory is not None else None
        self.every = int(settings.get("checkpoint_every") or 0)
        self.snapshot_steps = frozenset(snapshots)
        self.snapshots: list = []
        self.rows: list = []
        self.cells: list = []
        self.stresses: list = []
        self.last_written = None
        self.last_good = None          # (Atoms snapshot, step, MDState)
        self.dyn = None
        self._pending = None
        self._current = None           # the state self.atoms is in

    # -- helpers ---------------------------------------------------------------------------------
    def _state(self, step: int, t: float) -> MDState:
        return MDState.from_atoms(
            self.atoms, step=step, time_fs=t, settings=self.settings, e0_per_atom=self.e0,
            rng_state=None if self.rng is None else self.rng.bit_generator.state,
            barostat=_barostat_state(self.dyn, self.volume0) if self.npt else None)

    def _fail(self, step: int, problem, cause=None):
        quantity, value, advice = problem
        if self.traj is not None and self.last_good is not None \
                and self.last_written != self.last_good[1]:
            self.traj.write(self.last_good[0])
            self.last_written = self.last_good[1]
        t = self.time0 + (step - self.step0) * self.dt
        raise md_failure(f"MD ({self.settings['ensemble']})", step, t, quantity, value, advice,
                         self.last_good) from cause

    def _evaluate(self, step: int):
        try:
            return _frame_problem(self.atoms, self.settings, self.e0, self.volume0)
        except (ArithmeticError, ValueError, FloatingPointError, MemoryError) as exc:
            return ("calculator", f"{type(exc).__name__}: {exc}",
                    f"use a smaller timestep_fs (now {self.dt:g}) or check the structure"), None

    def _accept(self, step: int, obs, state_fn) -> MDState:
        """Record a frame that passed the checks; return its state."""
        scalars, cell, stress = obs
        if self.e0 is None:
            self.e0 = scalars[2]
        k = step - self.step0
        if self.dyn is None:
            # built after the first check: the rng state saved with the first frame is the one
            # the first step will use
            self.dyn = _make_integrator(self.atoms, self.settings, self.rng, self.barostat,
                                        fast=self.fast)
        self.rows.append((self.time0 + k * self.dt,) + scalars)
        self.cells.append(cell)
        if stress is not None:
            self.stresses.append(stress)
        state = state_fn()
        self.last_good = (_snapshot(self.atoms), step, state)
        if k in self.snapshot_steps:
            snap = _snapshot(self.atoms)
            snap.info.update(step=int(step), time_fs=float(self.rows[-1][0]),
                             potential_energy_eV=float(self.atoms.get_potential_energy()),
                             kinetic_temperature_K=float(self.atoms.get_temperature()))
            # the forces of this frame (already computed): what force matching fits
            snap.arrays["forces"] = np.array(self.atoms.get_forces(apply_constraint=False))
            self.snapshots.append(snap)
        if self.traj is not None and not (self.append and k == 0) and \
                ((step % self.settings["trajectory_every"]) == 0 or k == self.steps):
            self.traj.write(self.atoms)
            self.last_written = step
        return state

    # -- the protocol ----------------------------------------------------------------------------
    def start(self) -> MDState:
        """Check and record the first frame; the state the driver starts from."""
        problem, obs = self._evaluate(self.step0)
        if problem is not None:
            self._fail(self.step0, problem)
        state = self._accept(self.step0, obs, lambda: self._state(self.step0, self.time0))
        self._current = state
        return state

    def advance(self, state: MDState, n: int):
        """``n`` steps, each checked as run_md always did (a frame that blew up raises with the
        last good one kept); returns the last frame's state."""
        if state is not self._current:
            raise CalculationError("MDEngine.advance: not the state this engine holds; resume "
                                   "a checkpoint with resume_md")
        step = state.step
        for _ in range(int(n)):
            step += 1
            try:
                self.dyn.step()
            except (ArithmeticError, ValueError, FloatingPointError, MemoryError) as exc:
                self._fail(step, ("calculator", f"{type(exc).__name__}: {exc}",
                                  f"use a smaller timestep_fs (now {self.dt:g}) or check the "
                                  "structure"), exc)
            problem, obs = self._evaluate(step)
            if problem is not None:
                self._fail(step, problem)
            t = self.time0 + (step - self.step0) * self.dt
            self._current = self._accept(step, obs, lambda: self._state(step, t))
            if self.every and step % self.every == 0:
                # a checkpoint step: the run resumed from here builds its neighbour list here,
                # so this run does too (same pairs, same order: resumes are bit for bit)
                restart_neighbour_list(self.atoms.calc)
                if isinstance(self.dyn, RESPA):          # and the fast/slow forces afresh
                    restart_neighbour_list(self.fast)
                    self.dyn._fs = None
        return self._current, int(n), None

    def close(self) -> None:
        if self.traj is not None:
            self.traj.close()

    def result(self, steps: int, checkpoint: str | None) -> "MDResult":
        arr = np.array(self.rows, dtype=float)
        stress_arr = np.array(self.stresses, dtype=float) if self.stresses else None
        return MDResult(atoms=self.last_good[0], time_fs=arr[:, 0], potential_energy=arr[:, 1],
                        kinetic_energy=arr[:, 2], total_energy=arr[:, 3],
                        temperature_K=arr[:, 4], ensemble=self.settings["ensemble"],
                        timestep_fs=self.dt, steps=steps, checkpoint=checkpoint,
                        volume_A3=arr[:, 5], cell_A=np.array(self.cells),
                        stress_GPa=stress_arr,
                        pressure_GPa=None if stress_arr is None
                        else -stress_arr[:, :3].mean(axis=1), snapshots=tuple(self.snapshots))


def _check_respa(settings: dict, fast_calc, inner_timestep_fs) -> int:
    """Inner steps per outer step of a multiple-time-step run (1 without one)."""
    if fast_calc is None and inner_timestep_fs is None:
        return 1
    if fast_calc is None or not hasattr(fast_calc, "get_forces"):
        raise InputError("fast_calc", fast_calc, "an ASE calculator for the fast forces, given "
                         "with inner_timestep_fs")
    if settings["ensemble"] == "npt":
        raise InputError("ensemble", "npt", "'nve' or 'nvt' with multiple time stepping")
    if inner_timestep_fs is None:
        raise InputError("inner_timestep_fs", None, "the inner step (fs) of the fast forces")
    inner = _positive_float("inner_timestep_fs", inner_timestep_fs)
    ratio = settings["timestep_fs"] / inner
    n = int(round(ratio))
    if n < 1 or abs(ratio - n) > 1e-9 * ratio:
        raise InputError("inner_timestep_fs", inner_timestep_fs,
                         f"a step that divides the outer timestep_fs = {settings['timestep_fs']:g} "
                         f"fs a whole number of times (ratio {ratio:.6g})")
    return n


def _check_snapshot_steps(snapshots, steps: int) -> frozenset:
    if snapshots is None:
        return frozenset()
    try:
        out = frozenset(int(k) for k in snapshots)
    except (TypeError, ValueError):
        raise InputError("snapshots", snapshots, "a sequence of step numbers") from None
    if any(k < 0 or k > steps for k in out):
        raise InputError("snapshots", sorted(out)[:10], f"steps in [0, {steps}]")
    return out


def _drive(atoms, calc, steps, settings, *, step0, time0, e0_per_atom, rng, trajectory,
           checkpoint, append, barostat=None, snapshots=frozenset(), fast=None):
    """Run ``steps`` monitored steps from ``atoms`` through the one simulation driver."""
    from ..core.simulation import run_simulation

    engine = MDEngine(atoms, calc, settings, step0=step0, time0=time0, e0_per_atom=e0_per_atom,
                      rng=rng, steps=steps, trajectory=trajectory, append=append,
                      barostat=barostat, snapshots=snapshots, fast=fast)
    try:
        state0 = engine.start()
        every = settings["checkpoint_every"] or steps
        run = run_simulation(engine, state0, steps, observe_every=1, checkpoint=checkpoint,
                             checkpoint_every=every, history={"step": [state0.step]},
                             store_engine=False, label=f"MD ({settings['ensemble']})")
    finally:
        engine.close()
    return engine.result(steps, run.checkpoint)


def _default_checkpoint(trajectory, checkpoint):
    if checkpoint is not None:
        return Path(checkpoint)
    if trajectory is not None:
        return Path(str(trajectory) + ".ckpt.npz")
    return None


def run_md(atoms, calc, *, steps: int, ensemble: str = "nve", temperature_K: float | None = None,
           timestep_fs: float = 1.0, friction: float = 0.01, seed: int | None = 0,
           pressure_GPa: float | None = None, pressure_tau_fs: float = 1000.0,
           cell_fluctuations: str = "isotropic", record_stress: bool | None = None,
           max_volume_ratio: float = 2.0,
           trajectory: str | os.PathLike | None = None, trajectory_every: int = 1,
           checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 100,
           energy_drift_tol: float = 0.05, max_force: float = 50.0, fix_com: bool = False,
           snapshots=None, fast_calc=None, inner_timestep_fs: float | None = None) -> MDResult:
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
    ensemble : {"nve", "nvt", "npt"}
        ``"nve"``: :class:`ase.md.verlet.VelocityVerlet`; ``"nvt"``: :class:`ase.md.langevin.
        Langevin` at ``temperature_K`` with ``friction`` (1/fs) and no centre-of-mass constraint;
        ``"npt"``: :class:`ase.md.langevinbaoab.LangevinBAOAB` at ``temperature_K`` (particle
        friction ``friction``) and ``pressure_GPa`` (Langevin-Hoover barostat, cell friction
        ``1 / pressure_tau_fs``); see the module notes for why this integrator.  NPT needs a
        fully periodic cell and a calculator with stress.
    temperature_K : float, optional
        Thermostat target (required for NVT and NPT) and temperature of the initial velocities.
    timestep_fs : float
        Timestep, fs.
    friction : float or array of shape (n,)
        Langevin friction, 1/fs (0.01/fs: relaxation time 100 fs).  NVT also takes one value
        per atom (>= 0): the stadium thermostat (e.g.
        :func:`scaleladder.coupling.stadium_friction`), friction on a shell and plain velocity
        Verlet where it is zero, so a force-mixing or QM/MM core evolves with Newton's
        equations while the shell exchanges energy with the bath.
    seed : int or None, default 0
        Seeds the initial velocities and the Langevin noise (a ``numpy.random.Generator``
        whose state is checkpointed, so NVT and NPT resumes reproduce the uninterrupted run).
        Reproducible by default (the project's convention); ``None`` asks for fresh OS entropy.
    pressure_GPa : float, optional
        NPT target pressure, GPa (default 0); the barostat holds the mean pressure *including*
        the kinetic term at it.  Must be ``None`` for NVE and NVT.
    pressure_tau_fs : float
        NPT: period of the volume oscillations the barostat mass is chosen for (fs), and the
        barostat's Langevin relaxation time.  The mass is ``W = 9 V B (tau / 2 pi)^2`` with the
        affine bulk modulus ``B`` of the starting configuration (``3 V B ...`` for a full cell).
        A few hundred timesteps is a good choice.
    cell_fluctuations : {"isotropic", "full"}
        NPT: scale the cell uniformly (shape kept: cubic crystals, liquids) or let all six cell
        strains fluctuate (any crystal symmetry; the barostat then holds every stress component
        at ``-pressure_GPa``).  The cell momentum is symmetric, so the cell does not rotate to
        first order; successive updates leave a second-order rotation (~1e-4 rad per ps).
    record_stress : bool, optional
        Record the stress (kinetic term included) every frame in :attr:`MDResult.stress_GPa`
        and :attr:`MDResult.pressure_GPa`.  Default: True for NPT (which needs it anyway),
        False otherwise.
    max_volume_ratio : float
        NPT: stop with :class:`CalculationError` if the volume leaves ``[V0 / ratio, V0 * ratio]``.
    trajectory : path, optional
        ASE ``.traj`` file written incrementally, one frame per ``trajectory_every`` steps (the
        first and last frames always), each frame only after it passed the checks.  After a
        failure the file ends at the last good frame.
    checkpoint : path, optional
        Checkpoint file (default ``<trajectory>.ckpt.npz`` when ``trajectory`` is set, else no
        checkpoint).  Written atomically every ``checkpoint_every`` steps (0: only at the end),
        at the end, and on failure (holding the last good frame).  For NPT it holds the cell, the
        barostat momentum, its last cell force and its mass, so nothing is reset on resume.
    energy_drift_tol : float
        NVE: largest allowed ``|E_tot(t) - E_tot(0)|`` per atom, eV/atom.
    max_force : float
        Largest allowed force on an atom, eV/Å.
    fix_com : bool, default False
        Keep the centre of mass fixed (ASE's ``FixCom``; 3N - 3 degrees of freedom in the
        temperature).  Kept on resume.
    snapshots : sequence of int, optional
        Steps whose frames are copied into ``MDResult.snapshots``.
    fast_calc : ase Calculator, optional
        Multiple time stepping (:class:`RESPA`, NVE or NVT): the fast part of ``calc``'s forces
        (e.g. the bonded terms, or the MM part of a QM/MM calculator), integrated every inner
        step; the slow rest (``calc`` − ``fast_calc``) every outer step ``timestep_fs``.
    inner_timestep_fs : float
        The inner step (fs); ``timestep_fs`` must be a whole multiple of it (refused otherwise).
        Required with ``fast_calc``.

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

    Examples
    --------
    Argon at 10 K and zero pressure (Lennard-Jones, 108 atoms)::

        r = run_md(bulk("Ar", "fcc", a=5.27, cubic=True) * 3, LennardJones(0.0104, 3.40, 8.5),
                   steps=2000, ensemble="npt", temperature_K=10.0, pressure_GPa=0.0,
                   timestep_fs=5.0, pressure_tau_fs=1000.0, seed=1)
        a = (r.volume_A3[500:] / 27) ** (1 / 3)          # lattice constant per frame, Å
        p, dp = block_average(r.pressure_GPa[500:], 10)   # mean pressure and its error, GPa
    """
    from ase import Atoms
    from ase.md import velocitydistribution as vd

    if not isinstance(atoms, Atoms) or len(atoms) == 0:
        raise InputError("atoms", type(atoms).__name__, "a non-empty ase.Atoms")
    steps = _positive_int("steps", steps)
    settings = _validate_settings(ensemble, temperature_K, timestep_fs, friction, seed,
                                  energy_drift_tol, max_force, checkpoint_every, trajectory_every,
                                  pressure_GPa=pressure_GPa, pressure_tau_fs=pressure_tau_fs,
                                  cell_fluctuations=cell_fluctuations,
                                  record_stress=record_stress, max_volume_ratio=max_volume_ratio)
    if np.ndim(settings["friction"]) == 1 and len(settings["friction"]) != len(atoms):
        raise InputError("friction", f"{len(settings['friction'])} values",
                         f"one friction per atom ({len(atoms)})")
    if settings["ensemble"] == "npt":
        volume = abs(float(np.linalg.det(atoms.cell[:])))
        if not np.all(atoms.pbc) or volume <= 1e-8:
            raise InputError("atoms", f"Atoms(pbc={np.asarray(atoms.pbc).tolist()}, "
                             f"volume={volume:.4g} Å^3)",
                             "a fully periodic cell of non-zero volume for NPT")
    fix_com = bool(fix_com)
    settings["fix_com"] = fix_com
    settings["inner_steps"] = _check_respa(settings, fast_calc, inner_timestep_fs)
    snap_steps = _check_snapshot_steps(snapshots, steps)
    work = _snapshot(atoms)
    if fix_com:
        from ase.constraints import FixCom

        work.set_constraint(FixCom())
    rng = np.random.default_rng(settings["seed"])
    if settings["temperature_K"] is not None and not np.any(work.get_momenta()):
        if hasattr(vd, "thermalize_momenta"):  # ASE >= 3.29
            vd.thermalize_momenta(work, settings["temperature_K"], rng=rng)
        else:
            vd.MaxwellBoltzmannDistribution(work, temperature_K=settings["temperature_K"], rng=rng)
        vd.Stationary(work)
    return _drive(work, calc, steps, settings, step0=0, time0=0.0, e0_per_atom=None,
                  rng=rng if settings["ensemble"] in ("nvt", "npt") else None,
                  trajectory=trajectory, checkpoint=_default_checkpoint(trajectory, checkpoint),
                  append=False, snapshots=snap_steps, fast=fast_calc)


def resume_md(checkpoint_path: str | os.PathLike, calc, steps: int, *,
              trajectory: str | os.PathLike | None = None, fast_calc=None) -> MDResult:
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
    fast_calc : ase Calculator, optional
        The fast part again, for a run that used multiple time stepping (required then).

    Returns
    -------
    MDResult
        Its series start at the checkpointed frame (time counted from the original start).  The
        NVE drift check keeps the original run's reference energy; NPT keeps the barostat
        momentum, its last cell force, its mass and the reference volume of the volume check,
        so the continued run is the uninterrupted one.
    """
    steps = _positive_int("steps", steps)
    state = read_checkpoint(checkpoint_path)
    settings = dict(state.settings)
    rng = None
    if settings["ensemble"] in ("nvt", "npt"):
        rng = np.random.default_rng()
        rng.bit_generator.state = state.rng_state
    if settings["ensemble"] == "npt" and state.barostat is None:
        raise InputError("checkpoint_path", str(checkpoint_path),
                         "an NPT checkpoint holding the barostat state")
    append = trajectory is not None and Path(trajectory).exists()
    atoms = state.to_atoms()
    if settings.get("fix_com"):
        from ase.constraints import FixCom

        atoms.set_constraint(FixCom())
    if settings.get("inner_steps", 1) > 1 and fast_calc is None:
        raise InputError("fast_calc", None, "the fast part of the forces: this checkpoint is of a "
                         f"multiple-time-step run ({settings['inner_steps']} inner steps)")
    return _drive(atoms, calc, steps, settings, step0=state.step, time0=state.time_fs,
                  e0_per_atom=state.e0_per_atom, rng=rng, trajectory=trajectory,
                  checkpoint=Path(checkpoint_path), append=append, barostat=state.barostat,
                  fast=fast_calc if settings.get("inner_steps", 1) > 1 else None)
