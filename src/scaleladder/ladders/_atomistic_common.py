"""Shared pieces of the atomistic ladders (``elastic-constants``, ``defects``).

Settings common to both, the structure and potential specifications that enter stage parameters
(file contents are read here, in ``build``, and passed on: stages never read the user's files),
the calculator factory (a helper, not a stage) and the lattice-relaxation stage.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.pipeline import stage
from .base import Setting

#: potentials the ladders know, with what they need
POTENTIALS = {
    "sw": "Stillinger-Weber (original Si parameters unless potential_params)",
    "tersoff": "Tersoff (built-in Si parameters, or a LAMMPS .tersoff potential_file)",
    "lj": "Lennard-Jones (potential_params: epsilon, sigma[, rc])",
    "morse": "Morse (potential_params: D0, alpha, r0[, rc])",
    "eam": "embedded-atom method (potential_file: LAMMPS funcfl .eam or setfl .eam.alloy)",
    "emt": "ASE's effective-medium theory (Al, Cu, Ag, Au, Ni, Pd, Pt; no parameters)",
}


#: the element the built-in parameter sets were made for (sw, tersoff); any other element
#: needs a complete parameter set or a file of its own
BUILTIN_ELEMENT = {"sw": "Si", "tersoff": "Si"}


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
    if value and not Path(value).expanduser().is_file():
        raise InputError(field, value, f"an existing potential file (no such file: "
                         f"{str(Path(value).expanduser())!r}) or '' for built-in parameters")
    return value


def _check_params(field: str, value: str) -> str:
    parse_params(field, value)
    return value.strip()


def parse_params(field: str, text: str) -> dict:
    """``potential_params`` JSON -> dict of floats (empty string -> {})."""
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
        Setting("potential_file", "", "EAM / Tersoff file; '' = built-in parameters", str,
                _check_potential_file),
        Setting("potential_params", "", "JSON parameters for lj/morse (or sw/tersoff overrides)",
                str, _check_params),
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
def potential_spec(settings: dict, symbols: list[str]) -> dict:
    """Calculator description for stage parameters; the potential file's text and sha256 in it."""
    name = settings["potential"]
    params = parse_params("potential_params", settings["potential_params"])
    path = settings["potential_file"]
    file = None
    if path:
        p = Path(path).expanduser()
        try:
            text = p.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError("potential_file", path, "a readable text potential file",
                             hint=str(exc)) from None
        file = {"name": p.name, "sha256": hashlib.sha256(text.encode()).hexdigest(), "text": text}
    spec = {"potential": name, "params": params, "file": file, "species": sorted(set(symbols))}
    make_calculator(spec)  # validate now: errors name the setting before anything runs
    return spec


def make_calculator(spec: dict):
    """An ASE calculator from a potential spec (helper, not a stage).

    Raises
    ------
    InputError
        Naming ``potential``, ``potential_file`` or ``potential_params``.
    """
    name, params, file, species = spec["potential"], dict(spec["params"]), spec["file"], spec["species"]
    if name in ("lj", "morse", "emt") and file is not None:
        raise InputError("potential_file", file["name"], f"'' (potential {name!r} takes no file)")
    if name in ("eam", "emt") and params:
        raise InputError("potential_params", json.dumps(params), f"'' (potential {name!r} has none)")
    if name in ("sw", "tersoff") and len(species) != 1:
        raise InputError("structure", "+".join(species), f"a single-element structure for {name}")
    try:
        if name == "emt":
            from ase.calculators.emt import EMT, parameters as emt_parameters

            bad = [s for s in species if s not in emt_parameters]
            if bad:
                raise InputError("potential", name, "a potential for " + ", ".join(bad),
                                 hint="EMT knows " + ", ".join(sorted(emt_parameters)))
            return EMT()
        if name in ("lj", "morse"):
            from ..atomistic import LennardJones, Morse

            cls = LennardJones if name == "lj" else Morse
            need = ("epsilon", "sigma") if name == "lj" else ("D0", "alpha", "r0")
            missing = [k for k in need if k not in params]
            extra = [k for k in params if k not in need + ("rc",)]
            if missing or extra:
                raise InputError("potential_params", json.dumps(params),
                                 f"a JSON object with {', '.join(need)} (and optionally rc) for {name}")
            return cls(**params)
        if name == "sw":
            from ..atomistic import StillingerWeber

            if file is not None:
                raise InputError("potential_file", file["name"], "'' (sw takes potential_params)")
            from ..atomistic import SW_SILICON
            from ..atomistic.stillinger_weber import SW_PARAMETER_NAMES

            _check_builtin_element("sw", species, params, SW_PARAMETER_NAMES,
                                   "a complete parameter set in potential_params ("
                                   + ", ".join(SW_PARAMETER_NAMES) + ")")
            base = {**SW_SILICON, **params} if params else None
            return StillingerWeber(base, species=species[0])
        if name == "tersoff":
            from ..atomistic import TERSOFF_SI, Tersoff

            if file is not None:
                with _temp_file(file) as path:
                    try:
                        calc = Tersoff.from_lammps_file(path)
                    except InputError as exc:
                        if exc.field != "element":
                            raise
                        calc = Tersoff.from_lammps_file(path, element=species[0])
                made_for = calc.parameters["species"]
                if made_for != species[0]:
                    raise InputError("structure", "+".join(species),
                                     f"a {made_for} structure for the Tersoff file "
                                     f"{file['name']} (its entry describes {made_for})")
                return calc
            _check_builtin_element("tersoff", species, params, tuple(TERSOFF_SI),
                                   "a LAMMPS .tersoff potential_file with its entry, or a "
                                   "complete parameter set in potential_params")
            return Tersoff({**TERSOFF_SI, **params} if params else None, species=species[0])
        if name == "eam":
            from ..atomistic import EAM

            if file is None:
                raise InputError("potential_file", "", "an EAM file (.eam funcfl or .eam.alloy "
                                 "setfl): eam has no built-in parameters")
            with _temp_file(file) as path:
                calc = EAM.from_file(path)
            made_for = tuple(calc.tables.elements)
            bad = [x for x in species if x not in made_for]
            if bad:
                raise InputError("structure", "+".join(species),
                                 "elements of the EAM file " + file["name"] + " ("
                                 + ", ".join(made_for) + ")",
                                 hint="no parameters for " + ", ".join(bad)
                                      + " in it: the potential was not made for them")
            return calc
    except InputError as exc:
        if exc.field in ("potential", "potential_file", "potential_params", "structure"):
            raise
        field = "potential_file" if file is not None else "potential_params"
        raise InputError(field, file["name"] if file else json.dumps(params),
                         f"valid input for potential {name!r}", hint=str(exc)) from None
    except (TypeError, ValueError, KeyError, OSError) as exc:
        field = "potential_file" if file is not None else "potential_params"
        raise InputError(field, file["name"] if file else json.dumps(params),
                         f"valid input for potential {name!r}", hint=str(exc)) from None
    raise InputError("potential", name, "one of " + ", ".join(POTENTIALS))


def _check_builtin_element(name: str, species: list[str], params: dict, names, remedy: str) -> None:
    """Refuse a structure of another element than the built-in parameters of ``name`` were made
    for, unless ``params`` is a complete parameter set (the user's own potential)."""
    made_for = BUILTIN_ELEMENT[name]
    if species[0] != made_for and not all(k in params for k in names):
        raise InputError("structure", "+".join(species),
                         f"a {made_for} structure for {name}'s built-in ({made_for}) parameters",
                         hint=f"the potential was made for {made_for} only; for {species[0]} "
                              f"give {remedy}")


class _temp_file:
    """Context manager: the passed file text written to a private temporary file (same name)."""

    def __init__(self, file: dict):
        self.file = file

    def __enter__(self) -> str:
        self.dir = tempfile.TemporaryDirectory(prefix="scaleladder-pot-")
        path = os.path.join(self.dir.name, self.file["name"])
        with open(path, "w") as fh:
            fh.write(self.file["text"])
        return path

    def __exit__(self, *exc) -> None:
        self.dir.cleanup()


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
    if spec["file"] is not None:
        return f"{spec['potential']} from {spec['file']['name']} (sha256 {spec['file']['sha256'][:12]})"
    if spec["params"]:
        return f"{spec['potential']} {json.dumps(spec['params'], sort_keys=True)}"
    return f"{spec['potential']} (built-in parameters)"
