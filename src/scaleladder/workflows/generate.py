"""Reference datasets for any crystal: structure builders, deduplication and resumable execution.

Builders
--------
Each builder takes an ``ase.Atoms`` (any bulk structure from ``ase.build.bulk``, a file, ...) and
returns a list of new ``ase.Atoms`` tagged with ``info["label"]`` (the set: ``"ev"``,
``"strain"``, ``"rattle"``, ``"slab"``, ``"vacancy"``, ``"md"``), ``info["name"]`` (unique,
human-readable, prefixed by the chemical formula or by ``prefix``) and ``info["properties"]`` (what
is worth computing for it).  Random numbers come from ``numpy.random.default_rng(seed)``, so every
builder is deterministic.

* :func:`ev_series` -- isotropic lattice scan (equation of state);
* :func:`strain_set` -- homogeneous Green-Lagrange strains (elastic constants);
* :func:`rattled` -- supercells with Gaussian displacements (forces);
* :func:`slabs` -- surface slabs (``ase.build.surface``);
* :func:`vacancies` -- one vacancy per symmetry-inequivalent site (spglib when importable, else
  ASE's ``SymmetryEquivalenceCheck``);
* :func:`md_snapshots` -- Langevin molecular dynamics with any ASE calculator, snapshots spaced
  further apart than the thermostat's memory.

Deduplication
-------------
:func:`deduplicate` drops structures that are the same up to a permutation of like atoms and a
lattice translation, and optionally up to a rotation or reflection (the crystal's symmetry
operations), behind a pre-filter on composition, volume and sorted neighbour distances.

Execution
---------
:func:`generate_dataset` computes every structure with an engine given as a JSON-able spec
(``{"engine": "pyscf" | "xtb" | "emt" | "ase", "params": {...}}``), each structure one
content-addressed pipeline stage (:mod:`scaleladder.core.pipeline`) in a
:class:`~scaleladder.core.store.Store`: an interrupted generation resumes where it stopped, a
configuration that fails to converge loses nothing else, and the result is a
:class:`~scaleladder.handoffs.ReferenceDataset` (energies eV, forces eV/Å, stresses eV/Å³ Voigt,
ASE sign).  :func:`run_generation` returns the same with a report of what was computed, reused and
failed.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import re
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
from ase import Atoms

from ..core import validate
from ..core.errors import (
    CalculationError,
    ConvergenceError,
    InputError,
    MissingExtraError,
)
from ..core.pipeline import Node, Runner, RunStats, stage
from ..core.store import Store
from ..core.tensors import deformation_green_lagrange
from ..handoffs.dataset import Configuration, ReferenceDataset
from ..handoffs.structure import Structure
from .calculators import ENGINES as _CALC_ENGINES
from .calculators import calculator_spec, make_calculator

__all__ = [
    "ev_series", "strain_set", "rattled", "slabs", "vacancies", "md_snapshots",
    "deduplicate", "DeduplicationReport", "structures_equivalent",
    "engine_spec", "generate_dataset", "run_generation", "GenerationReport", "ENGINES",
    "VOIGT_COMPONENTS",
]

#: Voigt order of strain and stress components (ASE's).
VOIGT_COMPONENTS = ("xx", "yy", "zz", "yz", "xz", "xy")
_PROPERTIES = ("energy", "forces", "stress")


# ==============================================================================================
# helpers shared by the builders
# ==============================================================================================
def _check_atoms(atoms: Any, field_name: str = "atoms", *, bulk: bool = True) -> Atoms:
    """A clean copy of ``atoms`` (no calculator, no constraints, no previous tags)."""
    if not isinstance(atoms, Atoms):
        raise InputError(field_name, type(atoms).__name__, "an ase.Atoms")
    if len(atoms) == 0:
        raise InputError(field_name, "empty Atoms", "at least one atom")
    if not np.all(np.isfinite(atoms.positions)):
        raise InputError(f"{field_name}.positions", "NaN/inf", "finite positions")
    if bulk:
        if not atoms.pbc.all():
            raise InputError(f"{field_name}.pbc", atoms.pbc.tolist(),
                             "a bulk crystal, periodic along all three cell vectors")
        if abs(np.linalg.det(np.asarray(atoms.cell))) < 1e-6:
            raise InputError(f"{field_name}.cell", np.asarray(atoms.cell).tolist(),
                             "a non-singular cell (volume > 0)")
    out = atoms.copy()
    out.calc = None
    out.set_constraint()
    for key in ("label", "name", "properties"):
        out.info.pop(key, None)
    return out


def _prefix(atoms: Atoms, prefix: str | None) -> str:
    if prefix is None:
        return atoms.get_chemical_formula()
    if not isinstance(prefix, str) or not prefix.strip() or re.search(r"\s", prefix):
        raise InputError("prefix", prefix, "None or a non-empty name without spaces")
    return prefix


def _tag(atoms: Atoms, label: str, name: str, properties: Sequence[str], **extra: Any) -> Atoms:
    atoms.info["label"] = label
    atoms.info["name"] = name
    atoms.info["properties"] = tuple(properties)
    atoms.info.update(extra)
    return atoms


def _seed(seed: Any) -> int:
    return validate.positive_int("seed", seed, minimum=0)


# ==============================================================================================
# builders
# ==============================================================================================
def ev_series(atoms: Atoms, n: int = 7, span: float = 0.06, *, prefix: str | None = None
              ) -> list[Atoms]:
    """Isotropic volume scan: the cell scaled by ``s`` in ``[1 - span, 1 + span]``.

    Parameters
    ----------
    atoms : ase.Atoms
        Bulk crystal (periodic in 3D), ideally near its equilibrium lattice parameter.
    n : int, default 7
        Number of scale factors (>= 2; >= 5 for a four-parameter Birch-Murnaghan fit).
    span : float, default 0.06
        Fractional change of the lattice parameter at the ends of the scan (0 < span < 0.3):
        the volume changes by ``(1 ± span)**3``.
    prefix : str, optional
        Name prefix (default: the chemical formula).

    Returns
    -------
    list of ase.Atoms
        ``n`` cells in ascending volume, label ``"ev"``, properties ``("energy", "stress")``;
        ``info["lattice_scale"]`` is ``s``.
    """
    base = _check_atoms(atoms)
    n = validate.positive_int("n", n, minimum=2)
    span = validate.in_range("span", span, 0.0, 0.3, inclusive=False)
    p = _prefix(base, prefix)
    out = []
    for i, s in enumerate(np.linspace(1.0 - span, 1.0 + span, n)):
        at = base.copy()
        at.set_cell(np.asarray(base.cell) * s, scale_atoms=True)
        out.append(_tag(at, "ev", f"ev_{p}_{i}_x{s:.5f}", ("energy", "stress"),
                        lattice_scale=float(s)))
    return out


def strain_set(atoms: Atoms, max_strain: float = 0.01, n_steps: int = 1,
               components: Sequence[str] = VOIGT_COMPONENTS, *, prefix: str | None = None
               ) -> list[Atoms]:
    """Homogeneously strained cells, one strain component at a time, both signs.

    For each component and ``k = 1..n_steps`` the Green-Lagrange strain ``±k·max_strain/n_steps``
    is applied exactly through the rotation-free deformation ``F = sqrt(I + 2E)`` (atoms follow
    the cell: unrelaxed internal coordinates).  Shear components are engineering strains
    (``e_yz = 2 E_yz``), so a stress-strain fit gives the Voigt elastic constants directly.

    Parameters
    ----------
    atoms : ase.Atoms
        Bulk crystal (periodic in 3D), ideally at zero stress.
    max_strain : float, default 0.01
        Largest strain magnitude (0 < max_strain <= 0.1).
    n_steps : int, default 1
        Magnitudes per sign.
    components : sequence of {"xx", "yy", "zz", "yz", "xz", "xy"}
        Components to strain (each at most once).
    prefix : str, optional
        Name prefix (default: the chemical formula).

    Returns
    -------
    list of ase.Atoms
        ``2 · n_steps · len(components)`` cells, label ``"strain"``, properties
        ``("energy", "stress")``; ``info["voigt_strain"]`` is the applied Green-Lagrange strain
        (Voigt, engineering shear) and ``info["strain_measure"] = "green-lagrange"``.
    """
    base = _check_atoms(atoms)
    ms = validate.in_range("max_strain", max_strain, 0.0, 0.1)
    if ms == 0:
        raise InputError("max_strain", max_strain, "a positive strain (<= 0.1)")
    n_steps = validate.positive_int("n_steps", n_steps)
    if isinstance(components, str):
        components = (components,)
    try:
        comps = list(components)
    except TypeError:
        raise InputError("components", components, "a sequence of Voigt components") from None
    if not comps:
        raise InputError("components", components, "at least one of " + ", ".join(VOIGT_COMPONENTS))
    for c in comps:
        validate.one_of("components", c, VOIGT_COMPONENTS)
    if len(set(comps)) != len(comps):
        raise InputError("components", comps, "each component at most once")
    p = _prefix(base, prefix)
    cell0 = np.asarray(base.cell)
    out = []
    for c in comps:
        j = VOIGT_COMPONENTS.index(c)
        for k in range(1, n_steps + 1):
            for sign in (+1, -1):
                value = sign * k * ms / n_steps
                e = np.zeros(6)
                e[j] = value
                F = deformation_green_lagrange(e)
                at = base.copy()
                at.set_cell(cell0 @ F.T, scale_atoms=True)
                out.append(_tag(at, "strain", f"strain_{p}_{c}_{value:+.5f}", ("energy", "stress"),
                                voigt_strain=e.tolist(), strain_measure="green-lagrange"))
    return out


def rattled(atoms: Atoms, supercell: Any = (2, 2, 2), n: int = 4, amplitude: float = 0.05,
            seed: int = 0, *, prefix: str | None = None) -> list[Atoms]:
    """Supercells with independent Gaussian displacements of every atom.

    Parameters
    ----------
    atoms : ase.Atoms
        Bulk crystal (periodic in 3D).
    supercell : int or 3 ints, default (2, 2, 2)
        Repetitions along the cell vectors (``atoms.repeat``).
    n : int, default 4
        Number of rattled structures.
    amplitude : float, default 0.05
        Standard deviation of each Cartesian displacement component in Å (0 < amplitude <= 1).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``.
    prefix : str, optional
        Name prefix (default: the chemical formula of ``atoms``).

    Returns
    -------
    list of ase.Atoms
        label ``"rattle"``, properties ``("energy", "forces", "stress")``; the cell is unchanged.
    """
    base = _check_atoms(atoms)
    sc = validate.kmesh("supercell", supercell)
    n = validate.positive_int("n", n)
    amp = validate.in_range("amplitude", amplitude, 0.0, 1.0)
    if amp == 0:
        raise InputError("amplitude", amplitude, "a positive displacement in Å (<= 1)")
    seed = _seed(seed)
    p = _prefix(base, prefix)
    big = base.repeat(sc)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        at = big.copy()
        at.positions = at.positions + rng.normal(scale=amp, size=at.positions.shape)
        out.append(_tag(at, "rattle", f"rattle_{p}_{sc[0]}x{sc[1]}x{sc[2]}_{amp:.3f}_s{seed}_{i}",
                        _PROPERTIES, rattle_amplitude=amp, supercell=list(sc)))
    return out


def _miller_list(miller: Any) -> list[tuple[int, int, int]]:
    expected = "three integers, e.g. (1, 1, 1), or a list of them"
    try:
        items = list(miller)
    except TypeError:
        raise InputError("miller", miller, expected) from None
    if items and all(np.ndim(m) == 0 for m in items):
        items = [tuple(items)]
    out = []
    for m in items:
        try:
            vals = tuple(m)
        except TypeError:
            raise InputError("miller", miller, expected) from None
        if len(vals) != 3 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                     for v in vals):
            raise InputError("miller", miller, expected)
        if all(v == 0 for v in vals):
            raise InputError("miller", vals, "Miller indices that are not all zero")
        out.append(tuple(int(v) for v in vals))
    if not out:
        raise InputError("miller", miller, "at least one set of Miller indices")
    return out


def slabs(atoms: Atoms, miller: Any = (1, 1, 1), layers: int = 4, vacuum: float = 8.0, *,
          prefix: str | None = None) -> list[Atoms]:
    """Surface slabs cut from a bulk crystal (``ase.build.surface``), one per Miller index.

    Parameters
    ----------
    atoms : ase.Atoms
        Bulk crystal (periodic in 3D).  Miller indices refer to ITS cell vectors, as in ASE: for
        the conventional cubic indices of an fcc/bcc/diamond crystal pass the cubic cell
        (``ase.build.bulk(..., cubic=True)``).
    miller : 3 ints or a sequence of them, default (1, 1, 1)
        Surface plane(s); not all zero.
    layers : int, default 4
        Number of repetitions of the bulk cell along the surface normal (ASE's ``layers``): the
        slab holds ``layers · len(atoms)`` atoms.
    vacuum : float, default 8.0
        Vacuum in Å added on EACH side: periodic images of the slab are ``2·vacuum`` apart.
    prefix : str, optional
        Name prefix (default: the chemical formula of ``atoms``).

    Returns
    -------
    list of ase.Atoms
        label ``"slab"``, properties ``("energy", "forces")``; the surface normal is the third
        cell vector (along z); fully periodic cells (the vacuum separates the images), as
        periodic electronic-structure codes need.
    """
    from ase.build import surface

    base = _check_atoms(atoms)
    mil = _miller_list(miller)
    layers = validate.positive_int("layers", layers)
    vac = validate.positive("vacuum", vacuum)
    p = _prefix(base, prefix)
    out = []
    for hkl in mil:
        slab = surface(base, hkl, layers, vacuum=vac)
        slab.pbc = True
        tag = "".join(str(h) if h >= 0 else f"m{-h}" for h in hkl)
        out.append(_tag(slab, "slab", f"slab_{p}_{tag}_L{layers}", ("energy", "forces"),
                        miller=list(hkl), layers=layers, vacuum_A=vac))
    return out


def _marker_number(numbers: np.ndarray) -> int:
    """An atomic number absent from ``numbers`` (marks one site in equivalence tests)."""
    present = set(int(z) for z in numbers)
    for z in range(118, 0, -1):
        if z not in present:
            return z
    raise InputError("atoms", "all 118 elements present", "a structure with fewer elements")


def _site_classes(atoms: Atoms, tol: float, method: str) -> tuple[list[list[int]], str]:
    """Partition the sites of ``atoms`` into symmetry-equivalence classes.

    ``method`` "spglib": spglib's ``equivalent_atoms`` (space group of the crystal).  "ase": each
    site is marked by a foreign species and the marked crystals are compared with
    :func:`structures_equivalent` (translations, then ASE's SymmetryEquivalenceCheck); two marked
    crystals are equivalent exactly when a symmetry operation of the crystal maps one site onto
    the other.
    """
    n = len(atoms)
    if method == "spglib":
        import spglib

        cell = (np.asarray(atoms.cell), atoms.get_scaled_positions(), atoms.numbers)
        with warnings.catch_warnings():  # spglib 2.x: deprecation of its old error handling
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                ds = spglib.get_symmetry_dataset(cell, symprec=tol)
            except Exception as exc:  # noqa: BLE001 - spglib's new-style SpglibError
                ds, why = None, str(exc)
            else:
                why = "" if ds is not None else str(spglib.get_error_message())
        if ds is None:
            raise CalculationError(f"spglib found no space group for "
                                   f"{atoms.get_chemical_formula()} at symprec={tol} Å: {why}; "
                                   "try equivalence='ase' or another symprec")
        eq = np.asarray(ds["equivalent_atoms"] if isinstance(ds, dict) else ds.equivalent_atoms)
        classes: dict[int, list[int]] = {}
        for i, r in enumerate(eq):
            classes.setdefault(int(r), []).append(i)
        return sorted(classes.values(), key=lambda c: c[0]), "spglib"
    if n == 1:
        return [[0]], "ase.SymmetryEquivalenceCheck"
    marker = _marker_number(atoms.numbers)
    reps: list[tuple[Atoms, list[int]]] = []
    for i in range(n):
        marked = atoms.copy()
        z = marked.numbers.copy()
        z[i] = marker
        marked.numbers = z
        for rep, members in reps:
            if atoms.numbers[members[0]] != atoms.numbers[i]:
                continue
            if structures_equivalent(rep, marked, tolerance=tol, symmetry=True):
                members.append(i)
                break
        else:
            reps.append((marked, [i]))
    return [m for _, m in reps], "ase.SymmetryEquivalenceCheck"


def vacancies(atoms: Atoms, supercell: Any = (2, 2, 2),
              sites: Sequence[int] | Sequence[str] | None = None, *, equivalence: str = "auto",
              symprec: float = 1e-3, prefix: str | None = None
              ) -> list[Atoms]:
    """Supercells with one vacancy, one per symmetry-inequivalent site of the crystal.

    Parameters
    ----------
    atoms : ase.Atoms
        Bulk crystal (periodic in 3D): its space group decides which sites are equivalent.
    supercell : int or 3 ints, default (2, 2, 2)
        Repetitions of ``atoms`` (``atoms.repeat``); the vacancy is cut from the first image.
    sites : None, sequence of str or sequence of int
        ``None``: every inequivalent site; element symbols (e.g. ``["Cl"]``): the inequivalent
        sites of those elements; indices into ``atoms``: exactly these sites, no symmetry
        reduction.
    equivalence : {"auto", "spglib", "ase"}
        How sites are classified: spglib's equivalent atoms (``"auto"`` when spglib is importable,
        it comes with phonopy), or ASE's ``SymmetryEquivalenceCheck`` on crystals with the site
        marked by a foreign species (no extra dependency).  ``info["equivalence_method"]`` says
        which was used.
    symprec : float, default 1e-3
        Position tolerance in Å for the symmetry search.
    prefix : str, optional
        Name prefix (default: the chemical formula of ``atoms``).

    Returns
    -------
    list of ase.Atoms
        label ``"vacancy"``, properties ``("energy", "forces")``,
        ``len(atoms)·prod(supercell) - 1`` atoms each; ``info["vacancy_site"]`` (index in
        ``atoms``), ``info["vacancy_symbol"]``,
        ``info["multiplicity"]`` (equivalent sites per cell of ``atoms``; they sum to
        ``len(atoms)`` over the classes).
    """
    base = _check_atoms(atoms)
    sc = validate.kmesh("supercell", supercell)
    validate.one_of("equivalence", equivalence, ("auto", "spglib", "ase"))
    tol = validate.positive("symprec", symprec)
    p = _prefix(base, prefix)
    n = len(base)
    if int(np.prod(sc)) * n < 2:
        raise InputError("supercell", list(sc),
                         "a supercell with at least 2 atoms (one is removed)")
    symbols = base.get_chemical_symbols()

    chosen: list[tuple[int, int, str]]  # (site, multiplicity, method)
    if sites is not None and not isinstance(sites, str) and len(sites) > 0 and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in sites):
        idx = [int(s) for s in sites]
        for s in idx:
            if not 0 <= s < n:
                raise InputError("sites", s, f"site indices in [0, {n})")
        if len(set(idx)) != len(idx):
            raise InputError("sites", idx, "each site at most once")
        chosen = [(s, 1, "none (sites given)") for s in idx]
    else:
        wanted: set[str] | None = None
        if sites is not None:
            names = [sites] if isinstance(sites, str) else list(sites)
            if not names or not all(isinstance(s, str) for s in names):
                raise InputError("sites", sites, "None, element symbols, or site indices")
            for s in names:
                validate.one_of("sites", s, sorted(set(symbols)))
            wanted = set(names)
        method = equivalence
        if method in ("auto", "spglib"):
            have_spglib = importlib.util.find_spec("spglib") is not None
            if method == "spglib" and not have_spglib:
                raise MissingExtraError(package="spglib", extra="phonons",
                                        purpose="vacancies(equivalence='spglib')")
            method = "spglib" if have_spglib else "ase"
        classes, used = _site_classes(base, tol, method)
        chosen = [(c[0], len(c), used) for c in classes
                  if wanted is None or symbols[c[0]] in wanted]
    big = base.repeat(sc)
    out = []
    for site, mult, used in chosen:
        at = big.copy()
        del at[site]
        out.append(_tag(at, "vacancy", f"vac_{p}_{symbols[site]}{site}_{sc[0]}x{sc[1]}x{sc[2]}",
                        ("energy", "forces"), vacancy_site=site, vacancy_symbol=symbols[site],
                        multiplicity=mult, equivalence_method=used, supercell=list(sc)))
    return out


def md_snapshots(atoms: Atoms, calc: Any, temperature_K: float, n_snapshots: int,
                 interval_steps: int, timestep_fs: float = 1.0, seed: int = 0,
                 equilibration_steps: int | None = None, *, friction_per_fs: float = 0.01,
                 prefix: str | None = None) -> list[Atoms]:
    """Snapshots of Langevin (NVT) molecular dynamics driven by any ASE calculator.

    Velocities start from a Maxwell-Boltzmann distribution at ``temperature_K``; ASE's
    :class:`~ase.md.langevin.Langevin` integrator runs with the centre of mass fixed
    (:class:`~ase.constraints.FixCom`, 3N - 3 degrees of freedom), first ``equilibration_steps``
    steps, then one snapshot every ``interval_steps``.  Successive snapshots are uncorrelated when
    they are further apart than the thermostat's memory ``1/friction``; a ``UserWarning`` says so
    when they are not.

    Parameters
    ----------
    atoms : ase.Atoms
        Starting structure (at least 2 atoms; periodic or not).
    calc : ase Calculator
        Any calculator giving forces (a cheap potential, xTB, ...); it is attached to a copy.
    temperature_K : float
        Target temperature in K (> 0).
    n_snapshots : int
        Number of snapshots (>= 1).
    interval_steps : int
        MD steps between snapshots (>= 1).
    timestep_fs : float, default 1.0
        Time step in fs (0 < timestep_fs <= 10).
    seed : int, default 0
        Seed of the velocities and of the Langevin noise (``numpy.random.default_rng``).
    equilibration_steps : int, optional
        Steps before the first interval; default ``ceil(5 / (friction_per_fs · timestep_fs))``
        (five thermostat relaxation times).
    friction_per_fs : float, default 0.01
        Langevin friction in 1/fs (0 < friction_per_fs <= 1).
    prefix : str, optional
        Name prefix (default: the chemical formula).

    Returns
    -------
    list of ase.Atoms
        ``n_snapshots`` structures (momenta kept, no calculator, no constraint), label ``"md"``,
        properties ``("energy", "forces", "stress")`` (stress dropped later for non-periodic
        cells); ``info["kinetic_temperature_K"]`` (instantaneous, 3N - 3 degrees of freedom),
        ``info["md_time_fs"]`` and ``info["target_temperature_K"]``.

    Raises
    ------
    CalculationError
        If the dynamics produce non-finite positions or energies (time step too large, or the
        calculator failing).
    """
    base = _check_atoms(atoms, bulk=False)
    if len(base) < 2:
        raise InputError("atoms", f"{len(base)} atom",
                         "at least 2 atoms (the centre of mass is fixed)")
    if not callable(getattr(calc, "get_forces", None)):
        raise InputError("calc", type(calc).__name__, "an ASE calculator (with get_forces)")
    temp = validate.positive("temperature_K", temperature_K)
    n_snap = validate.positive_int("n_snapshots", n_snapshots)
    interval = validate.positive_int("interval_steps", interval_steps)
    dt = validate.in_range("timestep_fs", timestep_fs, 0.0, 10.0)
    if dt == 0:
        raise InputError("timestep_fs", timestep_fs, "a positive time step in fs (<= 10)")
    gamma = validate.in_range("friction_per_fs", friction_per_fs, 0.0, 1.0)
    if gamma == 0:
        raise InputError("friction_per_fs", friction_per_fs, "a positive friction in 1/fs (<= 1)")
    if equilibration_steps is None:
        n_eq = int(math.ceil(5.0 / (gamma * dt)))
    else:
        n_eq = validate.positive_int("equilibration_steps", equilibration_steps, minimum=0)
    seed = _seed(seed)
    p = _prefix(base, prefix)
    if interval * dt * gamma < 1.0:
        warnings.warn(f"md_snapshots: snapshots {interval * dt:g} fs apart are closer than the "
                      f"thermostat's memory 1/friction = {1.0 / gamma:g} fs and are correlated; "
                      "increase interval_steps or friction_per_fs", UserWarning, stacklevel=2)

    # the one MD driver: Langevin NVT with the centre of mass fixed, seeded velocities, every
    # step checked; snapshots after the equilibration, one every interval
    from ..atomistic.md import run_md

    start = base.copy()
    start.set_momenta(np.zeros((len(start), 3)))     # thermalised from the seed by run_md
    total = n_eq + n_snap * interval
    try:
        res = run_md(start, calc, steps=total, ensemble="nvt", temperature_K=temp,
                     timestep_fs=dt, friction=gamma, seed=seed, fix_com=True,
                     snapshots=[n_eq + (k + 1) * interval for k in range(n_snap)],
                     checkpoint_every=0, max_force=1e6)
    except CalculationError as exc:
        raise CalculationError(f"md_snapshots: {exc}; reduce timestep_fs") from exc
    out = []
    for k, snap in enumerate(res.snapshots):
        info = dict(snap.info)
        snap.info.clear()
        out.append(_tag(snap, "md", f"md_{p}_T{temp:g}_s{seed}_{k}", _PROPERTIES,
                        target_temperature_K=temp,
                        kinetic_temperature_K=info["kinetic_temperature_K"],
                        md_time_fs=info["time_fs"],
                        md_potential_energy_eV=info["potential_energy_eV"]))
    return out


# ==============================================================================================
# deduplication
# ==============================================================================================
def _heights(cell: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the cell (Å)."""
    v = abs(np.linalg.det(cell))
    return np.array([v / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3]))
                     for i in range(3)])


def _fingerprint(atoms: Atoms, k: int = 3) -> dict[int, np.ndarray]:
    """Per species, the sorted distances to each atom's 1st..k-th neighbour (columns sorted apart).

    Invariant under permutation, translation, rotation and the choice of cell; every entry moves
    by at most ~2 × (the largest atomic displacement), so comparing it is a safe pre-filter.
    """
    n = len(atoms)
    z = atoms.numbers
    if atoms.pbc.any():
        from ase.neighborlist import neighbor_list

        cell = np.asarray(atoms.cell)
        vol = abs(np.linalg.det(cell))
        r = 1.5 * (vol / n) ** (1.0 / 3.0) if vol > 0 else 3.0
        for _ in range(8):
            i, d = neighbor_list("id", atoms, r)
            counts = np.bincount(i, minlength=n)
            if counts.min() >= k:
                break
            r *= 1.6
        kk = int(min(k, counts.min()))
        rows = np.full((n, kk), np.inf)
        order = np.lexsort((d, i))
        i, d = i[order], d[order]
        starts = np.searchsorted(i, np.arange(n))
        for a in range(n):
            rows[a] = d[starts[a]:starts[a] + kk]
    else:
        kk = min(k, n - 1)
        if kk == 0:
            rows = np.zeros((n, 0))
        else:
            dm = np.linalg.norm(atoms.positions[:, None] - atoms.positions[None], axis=2)
            np.fill_diagonal(dm, np.inf)
            rows = np.sort(dm, axis=1)[:, :kk]
    return {int(s): np.sort(rows[z == s], axis=0) for s in np.unique(z)}


def _fingerprints_close(fa: dict, fb: dict, tol: float) -> bool:
    if fa.keys() != fb.keys():
        return False
    for s in fa:
        a, b = fa[s], fb[s]
        k = min(a.shape[1], b.shape[1])
        if a.shape[0] != b.shape[0] or (k and np.max(np.abs(a[:, :k] - b[:, :k])) > tol):
            return False
    return True


def _same_lattice(a: Atoms, b: Atoms, tol: float) -> bool:
    """Cells spanning the same lattice (vectors within ``tol`` Å after an integer basis change)."""
    ca, cb = np.asarray(a.cell), np.asarray(b.cell)
    if not a.pbc.all():  # slabs / wires: the cells themselves must agree
        return bool(np.max(np.linalg.norm(ca - cb, axis=1)) <= tol)
    M = np.rint(cb @ np.linalg.inv(ca))
    if abs(abs(np.linalg.det(M)) - 1.0) > 1e-6:
        return False
    return bool(np.max(np.linalg.norm(cb - M @ ca, axis=1)) <= tol)


def _translation_match(a: Atoms, b: Atoms, tol: float) -> float | None:
    """Largest atomic mismatch (Å) if ``b`` is ``a`` translated and permuted, else ``None``."""
    if len(a) != len(b) or not np.array_equal(np.sort(a.numbers), np.sort(b.numbers)):
        return None
    if not np.array_equal(a.pbc, b.pbc):
        return None
    pbc = np.asarray(a.pbc, dtype=bool)
    periodic = bool(pbc.any())
    cell = np.asarray(a.cell)
    if periodic:
        if abs(np.linalg.det(cell)) < 1e-8 or not _same_lattice(a, b, tol):
            return None
        inv = np.linalg.inv(cell)
    za, zb = a.numbers, b.numbers
    species, counts = np.unique(za, return_counts=True)
    s0 = species[np.argmin(counts)]
    pa, pb = a.positions, b.positions
    i0 = int(np.flatnonzero(za == s0)[0])
    groups = [(pa[za == s], pb[zb == s]) for s in species]
    for j in np.flatnonzero(zb == s0):
        t = pb[j] - pa[i0]
        worst = 0.0
        for A, B in groups:
            d = B[None, :, :] - (A + t)[:, None, :]
            if periodic:
                f = d @ inv
                f[..., pbc] -= np.rint(f[..., pbc])
                d = f @ cell
            dist = np.linalg.norm(d, axis=2)
            nearest = np.argmin(dist, axis=1)
            dmin = dist[np.arange(len(A)), nearest]
            if dmin.max() > tol or np.unique(nearest).size != nearest.size:
                break
            worst = max(worst, float(dmin.max()))
        else:
            return worst
    return None


def _symmetry_match(a: Atoms, b: Atoms, tol: float) -> bool:
    """ASE's SymmetryEquivalenceCheck (rotations, reflections, translations, permutations).

    Its relative tolerances are set from ``tol`` (Å) so that it tells apart what differs by more
    than ``tol``.  Only for cells with volume (it works on Niggli-reduced periodic cells).
    """
    from ase.utils.structure_comparator import SymmetryEquivalenceCheck

    ca, cb = np.asarray(a.cell), np.asarray(b.cell)
    if abs(np.linalg.det(ca)) < 1e-8 or abs(np.linalg.det(cb)) < 1e-8:
        return False
    n = len(a)
    vol = a.get_volume()
    lmin = float(min(a.cell.lengths().min(), b.cell.lengths().min()))
    rel = 2.0 * tol / lmin
    comp = SymmetryEquivalenceCheck(angle_tol=math.degrees(2.0 * rel), ltol=n * rel,
                                    stol=tol / (vol / n) ** (1.0 / 3.0),
                                    vol_tol=vol * float(np.sum(2.0 * tol / _heights(ca))),
                                    scale_volume=False, to_primitive=False)
    x, y = a.copy(), b.copy()  # the comparator moves the atoms of its arguments
    x.pbc = y.pbc = True
    return bool(comp.compare(x, y))


def structures_equivalent(a: Atoms, b: Atoms, tolerance: float = 1e-3, symmetry: bool = False
                          ) -> bool:
    """True if ``b`` is ``a`` up to a permutation of like atoms and a (lattice) translation.

    Parameters
    ----------
    a, b : ase.Atoms
    tolerance : float, default 1e-3
        Largest displacement in Å of any atom (and of any cell vector) between equivalent
        structures.
    symmetry : bool, default False
        Also accept a rotation or reflection of the whole structure (the symmetry operations of
        the crystal; ASE's ``SymmetryEquivalenceCheck``).
    """
    tol = validate.positive("tolerance", tolerance)
    if _translation_match(a, b, tol) is not None:
        return True
    if symmetry and len(a) == len(b) and np.array_equal(np.sort(a.numbers), np.sort(b.numbers)):
        return _symmetry_match(a, b, tol)
    return False


@dataclass(frozen=True)
class DeduplicationReport:
    """What :func:`deduplicate` kept and dropped, and why.

    Attributes
    ----------
    kept : tuple of int
        Indices (into the input) of the structures kept, in input order.
    dropped : tuple of dict
        One per dropped structure: ``index``, ``name``, ``duplicate_of`` (index of the kept
        structure it repeats), ``duplicate_of_name``, ``reason`` (``"translation"``: same up to a
        lattice translation and a permutation of like atoms; ``"symmetry"``: same up to a rotation
        or reflection as well), ``max_displacement_A`` (largest atomic mismatch, translation
        matches only, else None).
    tolerance : float
        Tolerance used (Å).
    symmetry : bool
        Whether rotations/reflections were allowed.
    n_compared : int
        Pairs that passed the pre-filter and were compared atom by atom.
    n_prefiltered : int
        Pairs told apart by the pre-filter (composition, volume, neighbour distances).
    """

    kept: tuple
    dropped: tuple
    tolerance: float
    symmetry: bool
    n_compared: int = 0
    n_prefiltered: int = 0

    def summary(self) -> str:
        """One line per dropped structure."""
        lines = [f"kept {len(self.kept)}, dropped {len(self.dropped)} (tolerance "
                 f"{self.tolerance:g} Å, symmetry {'on' if self.symmetry else 'off'})"]
        for d in self.dropped:
            lines.append(f"  {d['name']} = {d['duplicate_of_name']} ({d['reason']})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def deduplicate(structures: Any, tolerance: float = 1e-3, symmetry: bool = False
                ) -> tuple[Any, DeduplicationReport]:
    """Drop structures equivalent to an earlier one; the first of each group is kept.

    Equivalent means: the same up to a permutation of like atoms and a translation (with the
    lattice: cells spanning the same lattice within ``tolerance``, positions compared modulo
    lattice vectors along periodic directions), and, with ``symmetry=True``, up to a rotation or
    reflection too (ASE's :class:`~ase.utils.structure_comparator.SymmetryEquivalenceCheck`, so
    e.g. a vacancy at either of two symmetry-equivalent sites, or a cubic crystal strained along x
    or along y).  Pairs are first told apart cheaply by composition, volume per atom and the sorted
    distances to each atom's nearest neighbours; only pairs passing that are compared atom by atom.

    Parameters
    ----------
    structures : sequence of ase.Atoms, or ReferenceDataset
        What to deduplicate (names from ``info["name"]`` or the configuration names).
    tolerance : float, default 1e-3
        Largest displacement in Å of any atom or cell vector between structures taken as equal;
        keep it well below the smallest deliberate difference (rattle amplitudes, strain x cell
        length).
    symmetry : bool, default False
        Also drop copies related by a rotation or reflection.

    Returns
    -------
    kept : list of ase.Atoms, or ReferenceDataset
        The same objects (not copies) in input order; a ReferenceDataset (same method) if one was
        given.
    report : DeduplicationReport
    """
    tol = validate.positive("tolerance", tolerance)
    if not isinstance(symmetry, (bool, np.bool_)):
        raise InputError("symmetry", symmetry, "True or False")
    dataset = structures if isinstance(structures, ReferenceDataset) else None
    if dataset is not None:
        atoms_list = [c.to_atoms() for c in dataset.configurations]
        names = list(dataset.names)
    else:
        if isinstance(structures, Atoms):
            raise InputError("structures", "a single Atoms",
                             "a sequence of ase.Atoms or a ReferenceDataset")
        try:
            atoms_list = list(structures)
        except TypeError:
            raise InputError("structures", structures,
                             "a sequence of ase.Atoms or a ReferenceDataset") from None
        for i, a in enumerate(atoms_list):
            if not isinstance(a, Atoms) or len(a) == 0:
                raise InputError(f"structures[{i}]", type(a).__name__, "a non-empty ase.Atoms")
        names = [str(a.info.get("name", f"#{i}")) for i, a in enumerate(atoms_list)]

    fps = [_fingerprint(a) for a in atoms_list]
    comps = [tuple(np.sort(a.numbers)) for a in atoms_list]
    vols = [abs(float(np.linalg.det(np.asarray(a.cell)))) if a.pbc.all() else None
            for a in atoms_list]
    kept: list[int] = []
    dropped: list[dict] = []
    n_compared = n_pre = 0
    for i, a in enumerate(atoms_list):
        match = None
        for j in kept:
            b = atoms_list[j]
            if comps[i] != comps[j] or not np.array_equal(a.pbc, b.pbc):
                n_pre += 1
                continue
            if vols[i] is not None:
                vtol = vols[j] * float(np.sum(2.0 * tol / _heights(np.asarray(b.cell)))) + 1e-9
                if abs(vols[i] - vols[j]) > vtol:
                    n_pre += 1
                    continue
            if not _fingerprints_close(fps[i], fps[j], 4.0 * tol + 1e-9):
                n_pre += 1
                continue
            n_compared += 1
            worst = _translation_match(b, a, tol)
            if worst is not None:
                match = (j, "translation", worst)
                break
            if symmetry and _symmetry_match(b, a, tol):
                match = (j, "symmetry", None)
                break
        if match is None:
            kept.append(i)
        else:
            j, reason, worst = match
            dropped.append({"index": i, "name": names[i], "duplicate_of": j,
                            "duplicate_of_name": names[j], "reason": reason,
                            "max_displacement_A": worst})
    report = DeduplicationReport(kept=tuple(kept), dropped=tuple(dropped), tolerance=tol,
                                 symmetry=bool(symmetry), n_compared=n_compared,
                                 n_prefiltered=n_pre)
    if dataset is not None:
        confs = tuple(dataset.configurations[i] for i in kept)
        return ReferenceDataset(confs, dict(dataset.method)), report
    return [atoms_list[i] for i in kept], report


# ==============================================================================================
# execution: engines, stages, runner
# ==============================================================================================
#: Engines of :func:`generate_dataset`.
#: engines generate_dataset accepts: every engine of the one calculator registry
ENGINES = tuple(_CALC_ENGINES)
_SPEC_KEYS = {"engine", "params", "calculator", "file", "species"}


def engine_spec(calculator: Any) -> dict:
    """Validate and normalise an engine spec (the JSON round trip makes equal settings hash equal).

    Parameters
    ----------
    calculator : dict
        A spec of the one calculator registry (:mod:`scaleladder.workflows.calculators`):
        ``{"engine": "pyscf", "params": {...PySCFCalculator keyword arguments}}``,
        ``{"engine": "xtb", "params": {...}}``, ``{"engine": "emt"}`` (ASE's EMT; fast tests),
        an interatomic potential (``"sw"``, ``"tersoff"``, ``"lj"``, ``"morse"``, ``"eam"`` with
        ``"file"``), or ``{"engine": "ase", "calculator": "package.module:Class", "params": {...}}``:
        any ASE calculator (or factory returning one) importable by that path.

    Returns
    -------
    dict
        The normalised spec (plain JSON types).
    """
    expected = 'a dict such as {"engine": "pyscf", "params": {...}}; engines: ' + ", ".join(ENGINES)
    if not isinstance(calculator, dict):
        raise InputError("calculator", calculator, expected)
    unknown = set(calculator) - _SPEC_KEYS
    if unknown:
        raise InputError("calculator", sorted(unknown), "keys among " + ", ".join(sorted(_SPEC_KEYS)))
    params = calculator.get("params") or {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise InputError("calculator['params']", params, "a dict of keyword arguments")
    return calculator_spec(calculator.get("engine"), params, file=calculator.get("file"),
                           species=calculator.get("species") or (),
                           calculator=calculator.get("calculator"), check=False)


def _check_engine(spec: dict) -> None:
    """Fail early (in the driver) on an engine that cannot be built with these parameters."""
    make_calculator(spec)


@stage("workflows.generate.single_point", version="1")
def single_point(structure: Structure, engine: dict) -> dict:
    """One single point of one structure with a fresh calculator; plain data (JSON types).

    Parameters
    ----------
    structure : Structure
        The configuration; ``info["properties"]`` says what to compute.
    engine : dict
        A spec from :func:`engine_spec`.

    Returns
    -------
    dict
        ``numbers``, ``positions``, ``cell``, ``pbc``, ``energy`` (eV), ``free_energy`` (eV, or
        None if the calculator gives none), ``forces`` (eV/Å or None), ``stress`` (eV/Å³ Voigt,
        ASE sign, or None), ``elapsed_s``, ``engine``, and ``scf_cycles`` for PySCF.

    Raises
    ------
    ConvergenceError
        The calculator did not converge (passed through).
    CalculationError
        The calculator failed (ASE's ``CalculationFailed``) or returned non-finite values.
    """
    from ase.calculators.calculator import CalculationFailed

    atoms = structure.to_atoms()
    props = tuple(structure.info["properties"])
    formula = atoms.get_chemical_formula()
    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    if engine["engine"] == "pyscf":
        from ..electronic.datasets import compute_configuration

        atoms.info["name"] = formula
        r = compute_configuration(atoms, dict(engine["params"]), properties=props)
        energy, forces, stress = r["energy"], r["forces"], r["stress"]
        extra["scf_cycles"] = r["scf_cycles"]
        extra["free_energy"] = r["free_energy"]
    else:
        atoms.calc = make_calculator(engine)
        try:
            energy = float(atoms.get_potential_energy())
            forces = np.asarray(atoms.get_forces()).tolist() if "forces" in props else None
            stress = (np.asarray(atoms.get_stress(voigt=True)).tolist() if "stress" in props
                      else None)
        except CalculationFailed as exc:
            raise CalculationError(f"{engine['engine']} failed on {formula}: {exc}") from exc
        free = atoms.calc.results.get("free_energy")
        extra["free_energy"] = None if free is None else float(free)
    for what, value in (("energy", energy), ("forces", forces), ("stress", stress)):
        if value is not None and not np.all(np.isfinite(np.asarray(value, dtype=float))):
            raise CalculationError(f"{engine['engine']} returned a non-finite {what} for {formula}")
    return {
        "numbers": [int(z) for z in structure.numbers],
        "positions": np.asarray(structure.positions).tolist(),
        "cell": np.asarray(structure.cell).tolist(), "pbc": list(structure.pbc),
        "energy": float(energy), "forces": forces, "stress": stress,
        "elapsed_s": float(time.perf_counter() - t0), "engine": engine["engine"], **extra,
    }


@stage("workflows.generate.dataset", version="1")
def gather_dataset(results: list, labels: list, names: list, method: dict) -> ReferenceDataset:
    """Single points -> :class:`ReferenceDataset` (energies eV, forces eV/Å, stress eV/Å³)."""
    confs = [configuration_from_result(r, label, name)
             for r, label, name in zip(results, labels, names)]
    return ReferenceDataset(tuple(confs), dict(method))


def configuration_from_result(r: dict, label: str, name: str) -> Configuration:
    """A :class:`Configuration` from a single point's plain-data result (:func:`single_point`,
    :func:`~scaleladder.electronic.compute_configuration`)."""
    return Configuration(numbers=np.asarray(r["numbers"]), positions=np.asarray(r["positions"]),
                         cell=np.asarray(r["cell"]), pbc=np.asarray(r["pbc"]),
                         energy=float(r["energy"]),
                         forces=None if r["forces"] is None else np.asarray(r["forces"]),
                         stress=None if r["stress"] is None else np.asarray(r["stress"]),
                         label=label, name=name)


def _properties(value: Any, field_name: str) -> list[str]:
    if isinstance(value, str):
        value = (value,)
    try:
        props = list(value)
    except TypeError:
        raise InputError(field_name, value, "a sequence among " + ", ".join(_PROPERTIES)) from None
    for p in props:
        validate.one_of(field_name, p, _PROPERTIES)
    return [p for p in _PROPERTIES if p in props or p == "energy"]


def _structure_items(structures: Any, properties: Any) -> list[tuple[str, str, Any]]:
    """(label, name, Structure) per structure, validated; names unique."""
    if isinstance(structures, Atoms):
        structures = [structures]
    try:
        structures = list(structures)
    except TypeError:
        raise InputError("structures", structures, "a sequence of ase.Atoms") from None
    if not structures:
        raise InputError("structures", structures, "at least one structure")
    fixed = None if properties is None else _properties(properties, "properties")
    out = []
    for i, at in enumerate(structures):
        if not isinstance(at, Atoms) or len(at) == 0:
            raise InputError(f"structures[{i}]", type(at).__name__, "a non-empty ase.Atoms")
        label = str(at.info.get("label", ""))
        name = str(at.info.get("name") or f"{label or 'config'}-{i}")
        props = fixed if fixed is not None else _properties(at.info.get("properties", _PROPERTIES),
                                                            f"structures[{i}].info['properties']")
        if not at.pbc.all():
            props = [p for p in props if p != "stress"]  # no stress without a 3D-periodic cell
        cell = np.asarray(at.cell, dtype=float)
        if at.pbc.any() and abs(np.linalg.det(cell)) < 1e-8:
            raise InputError(f"structures[{i}].cell", cell.tolist(),
                             "a non-singular cell for a periodic structure")
        if not np.all(np.isfinite(at.positions)):
            raise InputError(f"structures[{i}].positions", "NaN/inf", "finite positions")
        out.append((label, name, Structure(at.numbers, np.asarray(at.positions, dtype=float),
                                           cell, tuple(bool(x) for x in at.pbc),
                                           {"properties": list(props)})))
    names = [o[1] for o in out]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError("structures", f"duplicate names {dup}",
                         "unique info['name'] per structure")
    return out


def _method(spec: dict) -> dict:
    method = {k: v for k, v in spec["params"].items() if k not in ("code", "engine", "params")}
    method.update({"code": spec["engine"], "engine": spec["engine"],
                   "params": dict(spec["params"])})
    if "calculator" in spec:
        method["calculator"] = spec["calculator"]
    return method


@contextlib.contextmanager
def _open_store(store: Any) -> Iterator[Store]:
    if store is None:
        with tempfile.TemporaryDirectory(prefix="scaleladder-generate-") as tmp:
            st = Store(tmp)
            try:
                yield st
            finally:
                st.close()
    elif isinstance(store, Store):
        yield store
    elif isinstance(store, (str, bytes)) or hasattr(store, "__fspath__"):
        st = Store(store)
        try:
            yield st
        finally:
            st.close()
    else:
        raise InputError("store", store, "None, a scaleladder Store, or a store folder path")


@contextlib.contextmanager
def _shared_executor(executor: Any) -> Iterator[Any]:
    """One process pool for every runner pass (a pass per failed configuration), not one each."""
    if isinstance(executor, str) and executor == "process":
        import concurrent.futures as cf
        import multiprocessing

        pool = cf.ProcessPoolExecutor(max_workers=2,
                                      mp_context=multiprocessing.get_context("spawn"))
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        yield executor


_KEY_NOTE = re.compile(r"\(([0-9a-f]{12})\)\s*$")


def _failed_keys(exc: BaseException) -> list[str]:
    """Key prefixes of the stage named in the runner's note on ``exc``."""
    out = []
    for note in getattr(exc, "__notes__", []) or []:
        m = _KEY_NOTE.search(note)
        if m and note.startswith("in stage "):
            out.append(m.group(1))
    return out


@dataclass(frozen=True)
class GenerationReport:
    """Outcome of :func:`run_generation`.

    Attributes
    ----------
    dataset : ReferenceDataset or None
        The configurations that were computed or reused (None if every one failed).
    computed, reused : tuple of str
        Names of the configurations computed in this call / loaded from the store.
    failed : dict
        Name -> ``"ErrorType: message"`` of configurations whose calculation failed
        (``ConvergenceError``, ``CalculationError``); nothing of them is stored.
    stats : RunStats
        The single-point stages of this call, over all runner passes: ``computed``, ``reused``
        (each node counted once, at its first status), ``nodes``, ``wall_s``.
    keys : dict
        Name -> store key of each configuration's single point.
    dataset_key : str or None
        Store key of the gathered dataset.
    failure_types : dict
        Name -> exception class name of each failed configuration.
    """

    dataset: ReferenceDataset | None
    computed: tuple
    reused: tuple
    failed: dict
    stats: RunStats
    keys: dict = field(default_factory=dict)
    dataset_key: str | None = None
    failure_types: dict = field(default_factory=dict)


def run_generation(structures: Sequence[Atoms], calculator: dict, *, store: Any = None,
                   executor: Any = None, properties: Sequence[str] | None = None,
                   progress: bool = True) -> GenerationReport:
    """Compute every structure as its own pipeline stage; report what was computed, reused, failed.

    Parameters
    ----------
    structures : sequence of ase.Atoms
        With ``info["name"]`` (unique; default ``"{label}-{i}"``), ``info["label"]`` and optionally
        ``info["properties"]`` (the builders of this module set all three).
    calculator : dict
        Engine spec, see :func:`engine_spec`.
    store : Store, path or None
        Where single points are stored and looked up.  With ``None`` a temporary store is used
        and nothing survives the call (no resuming).
    executor : None, "local", "process", "dask://host:port", Executor or Client
        See :class:`~scaleladder.core.pipeline.Runner`.
    properties : sequence of {"energy", "forces", "stress"}, optional
        Computed for every structure (overrides ``info["properties"]``); the energy is always
        computed, the stress only for cells periodic in 3D.
    progress : bool, default True
        Rich progress bar on stderr.

    Returns
    -------
    GenerationReport

    Notes
    -----
    A stage's key is the hash of the structure (numbers, positions, cell, pbc, properties) and the
    normalised engine spec, not of its name or label: renaming reuses results, and identical
    structures are computed once.  When a configuration fails with ``ConvergenceError`` or
    ``CalculationError``, the runner stores whatever else finished, the failure is recorded and
    the remaining configurations run in a further pass (finished ones are reused).  Any other
    exception (a bug, ``KeyboardInterrupt``) propagates at once; what finished is in the store,
    and the same call resumes from there.
    """
    spec = engine_spec(calculator)
    items = _structure_items(structures, properties)
    if not isinstance(progress, (bool, np.bool_)):
        raise InputError("progress", progress, "True or False")
    _check_engine(spec)
    nodes: dict[str, Node] = {
        name: single_point.bind(structure=s, engine=spec).with_label(f"{spec['engine']} {name}")
        for _, name, s in items}
    labels = {name: label for label, name, _ in items}
    first: dict[str, dict] = {}  # key -> first stats entry
    failed: dict[str, str] = {}
    failure_types: dict[str, str] = {}
    wall = 0.0
    with _open_store(store) as st, _shared_executor(executor) as ex:
        pending = dict(nodes)
        while pending:
            runner = Runner(st, executor=ex, progress=bool(progress))
            try:
                runner.run(pending)
            except (ConvergenceError, CalculationError) as exc:
                prefixes = _failed_keys(exc)
                bad = [n for n, node in pending.items()
                       if any(node.key.startswith(p) for p in prefixes)]
                if not bad:
                    raise
                for n in bad:
                    failed[n] = f"{type(exc).__name__}: {exc}"
                    failure_types[n] = type(exc).__name__
                    del pending[n]
                continue
            finally:
                wall += runner.stats.wall_s
                for entry in runner.stats.nodes:
                    first.setdefault(entry["key"], entry)
            break
        ok = [name for name in nodes if name not in failed]
        dataset, dataset_key = None, None
        if ok:
            gnode = gather_dataset.bind(results=[nodes[n] for n in ok],
                                        labels=[labels[n] for n in ok], names=ok,
                                        method=_method(spec)).with_label("dataset")
            gather = Runner(st, executor="local", progress=False)
            dataset = gather.run({"dataset": gnode})["dataset"]
            dataset_key = gnode.key
    status = {k: e["status"] for k, e in first.items()}
    stats = RunStats(computed=sum(1 for s in status.values() if s == "computed"),
                     reused=sum(1 for s in status.values() if s == "reused"),
                     nodes=list(first.values()), targets={n: nodes[n].key for n in ok}, wall_s=wall)
    return GenerationReport(
        dataset=dataset,
        computed=tuple(n for n in ok if status.get(nodes[n].key) == "computed"),
        reused=tuple(n for n in ok if status.get(nodes[n].key) == "reused"),
        failed=failed, stats=stats, keys={n: node.key for n, node in nodes.items()},
        dataset_key=dataset_key, failure_types=failure_types)


def _short_settings(spec: dict) -> dict:
    """The engine and its short parameters (long k-point lists left out of messages)."""
    out = {"engine": spec["engine"]}
    out.update({k: v for k, v in spec["params"].items() if len(repr(v)) <= 60})
    return out


def generate_dataset(structures: Sequence[Atoms], calculator: dict, *, store: Any = None,
                     executor: Any = None, properties: Sequence[str] | None = None,
                     progress: bool = True, on_failure: str = "raise") -> ReferenceDataset:
    """Compute a :class:`ReferenceDataset` from structures, one resumable pipeline stage each.

    Parameters
    ----------
    structures : sequence of ase.Atoms
        E.g. the concatenated output of the builders of this module (names must be unique).
    calculator : dict
        Engine spec (JSON-able): ``{"engine": "pyscf", "params": {...}}``, ``{"engine": "xtb",
        "params": {...}}``, ``{"engine": "emt"}`` or ``{"engine": "ase", "calculator":
        "module:Class", "params": {...}}``; see :func:`engine_spec`.
    store : Store, path or None
        Content-addressed store; pass one to make the generation resumable (``None``: temporary).
    executor : None, "local", "process", "dask://host:port", Executor or Client
        Where single points run (see :class:`~scaleladder.core.pipeline.Runner`).
    properties : sequence of str, optional
        Overrides each structure's ``info["properties"]``.
    progress : bool, default True
    on_failure : {"raise", "skip"}
        When configurations fail (``ConvergenceError``/``CalculationError``): ``"raise"`` a
        ``ConvergenceError`` naming them after everything else has finished and been stored;
        ``"skip"``: warn and return the dataset without them.

    Returns
    -------
    ReferenceDataset
        ``method`` records ``engine``, ``params`` (and the params flattened, e.g. ``xc``, for
        existing readers) and ``code``.

    Raises
    ------
    ConvergenceError
        With ``on_failure="raise"``, if any configuration failed (rerun with the same store to
        compute only those).
    """
    validate.one_of("on_failure", on_failure, ("raise", "skip"))
    rep = run_generation(structures, calculator, store=store, executor=executor,
                         properties=properties, progress=progress)
    if rep.failed:
        n_ok = len(rep.computed) + len(rep.reused)
        names = ", ".join(rep.failed)
        if on_failure == "raise" or rep.dataset is None:
            first = next(iter(rep.failed.values()))
            raise ConvergenceError(
                f"{len(rep.failed)} of {len(rep.keys)} configurations failed (first: {first})",
                configuration=names, settings=_short_settings(engine_spec(calculator)),
                suggestion=(f"the {n_ok} finished configurations are stored: change the settings "
                            "or the failed structures and run again with the same store (only "
                            "the failed ones are computed), or pass on_failure='skip'"
                            if store is not None else
                            "pass a store to keep the finished configurations, or "
                            "on_failure='skip'"))
        warnings.warn(f"generate_dataset: {len(rep.failed)} configuration(s) failed and are left "
                      f"out: {names}", UserWarning, stacklevel=2)
    return rep.dataset
