"""The one calculator registry: every engine the ladders and workflows build, from a JSON spec.

A *calculator spec* is plain data (it enters stage keys)::

    {"engine": "sw", "params": {...}, "file": None | {"name", "sha256", "text"},
     "species": ["Si"], "calculator": "package.module:Class"  # engine "ase" only}

:func:`calculator_spec` validates and normalises one (reading a potential file here, in the driver:
stages never read the user's files; the text and its sha256 travel in the spec) and builds the
calculator once so that a bad spec fails before any stage runs; :func:`make_calculator` builds a
fresh ASE calculator from a spec (inside a stage, on any worker).  Engines: DFT (``pyscf``), tight
binding (``xtb``), the project's interatomic potentials (``sw``, ``tersoff``, ``lj``, ``morse``,
``eam``), ASE's ``emt``, and any importable ASE calculator (``ase``).  A potential applied to
elements it was not made for is refused (built-in Si parameters for Ge, an EAM file without the
element's tables).  Error messages name the caller's own fields (``fields=``), e.g. the ladders'
``potential``/``potential_params``/``potential_file``/``structure``.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Mapping

from ..core.errors import InputError, MissingExtraError
from ..core.fingerprint import EngineTable

__all__ = ["ENGINES", "calculator_spec", "make_calculator", "BUILTIN_ELEMENT", "DEFAULT_FIELDS",
           "ENGINE_TABLE"]

#: engine -> one line of what it is
ENGINES = {
    "pyscf": "PySCF DFT (PySCFCalculator keyword arguments in params)",
    "xtb": "GFN-xTB tight binding via tblite (XTBCalculator keyword arguments; extra 'xtb')",
    "sw": "Stillinger-Weber (original Si parameters unless params)",
    "tersoff": "Tersoff (built-in Si parameters, or a LAMMPS .tersoff file)",
    "lj": "Lennard-Jones (params: epsilon, sigma[, rc])",
    "morse": "Morse (params: D0, alpha, r0[, rc])",
    "eam": "embedded-atom method (file: LAMMPS funcfl .eam or setfl .eam.alloy)",
    "emt": "ASE's effective-medium theory (Al, Cu, Ag, Au, Ni, Pd, Pt; no parameters)",
    "snap": "a trained SNAP machine-learned potential (file: saved with scaleladder.core.codec.save, "
            "or 'store:KEY' / 'store:STORE_DIR:KEY'; params: optional committee 'member')",
    "ase": "any ASE calculator importable as 'package.module:Class' (calculator), built with params",
}

#: the project modules this registry imports to build each engine (a stage that declares its
#: engine parameter depends on its own engine's code only; tests keep the table complete)
ENGINE_TABLE = EngineTable(__name__, {
    "pyscf": ("scaleladder.electronic.pyscf_calculator",),
    "xtb": ("scaleladder.electronic.xtb",),
    "sw": ("scaleladder.atomistic.stillinger_weber",),
    "tersoff": ("scaleladder.atomistic.tersoff",),
    "lj": ("scaleladder.atomistic.pair",),
    "morse": ("scaleladder.atomistic.pair",),
    "eam": ("scaleladder.atomistic.eam",),
    "emt": (),
    "snap": ("scaleladder.atomistic.snap",),
    "ase": (),
})

#: the element the built-in parameter sets were made for (sw, tersoff); any other element
#: needs a complete parameter set or a file of its own
BUILTIN_ELEMENT = {"sw": "Si", "tersoff": "Si"}

#: field names used in error messages unless the caller gives its own
DEFAULT_FIELDS = {"engine": "calculator['engine']", "params": "calculator['params']",
                  "file": "calculator['file']", "species": "species",
                  "calculator": "calculator['calculator']"}

_POTENTIALS = ("sw", "tersoff", "lj", "morse", "eam", "emt", "snap")


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON-able")


def calculator_spec(engine: str, params: Mapping[str, Any] | None = None, *,
                    file: str | os.PathLike | dict | None = None, species=(),
                    calculator: str | None = None, fields: Mapping[str, str] | None = None,
                    check: bool = True) -> dict:
    """A validated, JSON-normalised calculator spec (see the module notes).

    Parameters
    ----------
    engine : str
        One of :data:`ENGINES`.
    params : dict, optional
        Keyword arguments / parameters of the engine (JSON-able).
    file : path or dict, optional
        A potential file (read here; its text and sha256 go into the spec) or an already read
        ``{"name", "sha256", "text"}``.
    species : sequence of str
        The elements the calculator will see (checked against what it was made for).
    calculator : str, optional
        ``"package.module:Class"`` for engine ``"ase"``.
    fields : dict, optional
        Field names for error messages (keys engine, params, file, species, calculator).
    check : bool, default True
        Build the calculator once now (errors before any stage runs).
    """
    F = {**DEFAULT_FIELDS, **(fields or {})}
    if engine not in ENGINES:
        raise InputError(F["engine"], engine, "one of " + ", ".join(ENGINES))
    params = dict(params or {})
    if not all(isinstance(k, str) for k in params):
        raise InputError(F["params"], params, "a dict of keyword arguments")
    try:
        params = json.loads(json.dumps(params, default=_json_default, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InputError(F["params"], params, "JSON-able values (numbers, strings, lists, dicts, "
                         "None)", hint=str(exc)) from None
    if isinstance(file, str) and file.startswith("store:"):
        file = _artifact_from_store(file, F["file"])
    if file is not None and not isinstance(file, dict):
        p = Path(file).expanduser()
        try:
            text = p.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(F["file"], str(file), "a readable text potential file",
                             hint=str(exc)) from None
        file = {"name": p.name, "sha256": hashlib.sha256(text.encode()).hexdigest(), "text": text}
    spec: dict[str, Any] = {"engine": engine, "params": params, "file": file,
                            "species": sorted({str(s) for s in species})}
    if engine == "ase":
        if not isinstance(calculator, str) or not re.fullmatch(r"[\w.]+[:.][\w.]+", calculator):
            raise InputError(F["calculator"], calculator,
                             "an import path 'package.module:Class' of an ASE calculator")
        spec["calculator"] = calculator
    elif calculator is not None:
        raise InputError(F["calculator"], calculator, "no 'calculator' unless engine is 'ase'")
    if check:
        make_calculator(spec, fields=F)
    return spec


def make_calculator(spec: Mapping[str, Any], *, fields: Mapping[str, str] | None = None):
    """A fresh ASE calculator from a spec of :func:`calculator_spec` (helper, not a stage).

    Raises
    ------
    InputError
        Naming the field (``fields``) that is wrong.
    MissingExtraError
        The engine's optional package is not installed.
    """
    F = {**DEFAULT_FIELDS, **(fields or {})}
    spec = {"file": None, "species": [], "params": {}, **dict(spec)}
    engine = spec["engine"]
    if engine in _POTENTIALS:
        return _build_potential(spec, F)
    params = dict(spec["params"])
    if spec["file"] is not None:
        raise InputError(F["file"], spec["file"]["name"], f"no file for engine {engine!r}")
    if engine == "pyscf":
        from ..electronic.pyscf_calculator import PySCFCalculator as factory
    elif engine == "xtb":
        try:
            from ..electronic.xtb import XTBCalculator as factory
        except ImportError as exc:
            raise MissingExtraError(package="tblite", extra="xtb",
                                    purpose=f"the 'xtb' engine ({exc})") from None
    elif engine == "ase":
        factory = _import_path(spec.get("calculator"), F)
    else:
        raise InputError(F["engine"], engine, "one of " + ", ".join(ENGINES))
    try:
        return factory(**params)
    except TypeError as exc:
        raise InputError(F["params"], params,
                         f"keyword arguments accepted by {getattr(factory, '__name__', factory)}",
                         hint=str(exc)) from None


def _artifact_from_store(ref: str, field: str) -> dict:
    """``store:KEY`` (the store of ``$SCALELADDER_STORE`` or ``./.scaleladder``) or
    ``store:STORE_DIR:KEY`` -> a file entry holding the artifact's single-file JSON."""
    from ..core.codec import dumps
    from ..core.errors import StoreError
    from ..core.store import Store

    body = ref[len("store:"):]
    root, _, key = body.rpartition(":")
    root = root or os.environ.get("SCALELADDER_STORE", ".scaleladder")
    if not Path(root).expanduser().is_dir():
        raise InputError(field, ref, "'store:KEY' or 'store:STORE_DIR:KEY' of an existing store",
                         hint=f"no store at {root!r}")
    try:
        st = Store(Path(root).expanduser(), readonly=True)
        full = st.find(key)
        obj = st.get(full)
    except (InputError, StoreError) as exc:
        raise InputError(field, ref, "the key (or a unique prefix) of a stored artifact",
                         hint=str(exc)) from None
    if isinstance(obj, dict) and "potential" in obj:
        obj = obj["potential"]
    text = dumps(obj)
    return {"name": f"store:{full[:16]}", "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "text": text}


def _import_path(path: Any, F: Mapping[str, str]) -> Any:
    if not isinstance(path, str):
        raise InputError(F["calculator"], path, "an import path 'package.module:Class'")
    if ":" in path:
        module, qual = path.split(":", 1)
    else:
        module, qual = path.rsplit(".", 1)
    try:
        obj: Any = importlib.import_module(module)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InputError(F["calculator"], path,
                         "an importable calculator class or factory", hint=str(exc)) from None
    if not callable(obj):
        raise InputError(F["calculator"], path, "a callable returning an ASE calculator")
    return obj


def _build_potential(spec: dict, F: dict):
    """The interatomic potentials (sw, tersoff, lj, morse, eam, emt) of a spec."""
    name, params, file, species = spec["engine"], dict(spec["params"]), spec["file"], spec["species"]
    if name in ("lj", "morse", "emt") and file is not None:
        raise InputError(F["file"], file["name"], f"'' (potential {name!r} takes no file)")
    if name == "eam" and params:
        raise InputError(F["params"], json.dumps(params), f"'' (potential {name!r} has none)")
    if name == "snap":
        return _build_snap(file, params, species, F)
    if name in ("sw", "tersoff"):
        if len(species) > 1:
            raise InputError(F["species"], "+".join(species),
                             f"a single-element structure for {name}")
        species = list(species) or [BUILTIN_ELEMENT[name]]
    try:
        if name == "emt":
            from ase.calculators.emt import EMT, parameters as emt_parameters

            bad = [s for s in species if s not in emt_parameters]
            if bad:
                raise InputError(F["engine"], name, "a potential for " + ", ".join(bad),
                                 hint="EMT knows " + ", ".join(sorted(emt_parameters)))
            unknown = sorted(set(params) - set(EMT.default_parameters))
            if unknown:  # ASE calculators keep unknown keywords silently
                raise InputError(F["params"], unknown,
                                 "EMT parameters: " + ", ".join(sorted(EMT.default_parameters)))
            return EMT(**params)
        if name in ("lj", "morse"):
            from ..atomistic import LennardJones, Morse

            cls = LennardJones if name == "lj" else Morse
            need = ("epsilon", "sigma") if name == "lj" else ("D0", "alpha", "r0")
            missing = [k for k in need if k not in params]
            extra = [k for k in params if k not in need + ("rc",)]
            if missing or extra:
                raise InputError(F["params"], json.dumps(params),
                                 f"a JSON object with {', '.join(need)} (and optionally rc) for {name}")
            return cls(**params)
        if name == "sw":
            from ..atomistic import StillingerWeber

            if file is not None:
                raise InputError(F["file"], file["name"], f"'' (sw takes {F['params']})")
            from ..atomistic import SW_SILICON
            from ..atomistic.stillinger_weber import SW_PARAMETER_NAMES

            _check_builtin_element("sw", species, params, F, SW_PARAMETER_NAMES,
                                   f"a complete parameter set in {F['params']} ("
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
                    raise InputError(F["species"], "+".join(species),
                                     f"a {made_for} structure for the Tersoff file "
                                     f"{file['name']} (its entry describes {made_for})")
                return calc
            _check_builtin_element("tersoff", species, params, F, tuple(TERSOFF_SI),
                                   f"a LAMMPS .tersoff {F['file']} with its entry, or a "
                                   f"complete parameter set in {F['params']}")
            return Tersoff({**TERSOFF_SI, **params} if params else None, species=species[0])
        if name == "eam":
            from ..atomistic import EAM

            if file is None:
                raise InputError(F["file"], "", "an EAM file (.eam funcfl or .eam.alloy "
                                 "setfl): eam has no built-in parameters")
            with _temp_file(file) as path:
                calc = EAM.from_file(path)
            made_for = tuple(calc.tables.elements)
            bad = [x for x in species if x not in made_for]
            if bad:
                raise InputError(F["species"], "+".join(species),
                                 "elements of the EAM file " + file["name"] + " ("
                                 + ", ".join(made_for) + ")",
                                 hint="no parameters for " + ", ".join(bad)
                                      + " in it: the potential was not made for them")
            return calc
    except InputError as exc:
        if exc.field in (F["engine"], F["file"], F["params"], F["species"]):
            raise
        field = F["file"] if file is not None else F["params"]
        raise InputError(field, file["name"] if file else json.dumps(params),
                         f"valid input for potential {name!r}", hint=str(exc)) from None
    except (TypeError, ValueError, KeyError, OSError) as exc:
        field = F["file"] if file is not None else F["params"]
        raise InputError(field, file["name"] if file else json.dumps(params),
                         f"valid input for potential {name!r}", hint=str(exc)) from None
    raise InputError(F["engine"], name, "one of " + ", ".join(ENGINES))


def _build_snap(file, params: dict, species, F: Mapping[str, str]):
    """A SNAPCalculator from a saved FittedPotential (its JSON text in ``file``)."""
    from ..core.codec import loads
    from ..core.errors import StoreError

    if file is None:
        raise InputError(F["file"], "", "a trained SNAP potential: a file written by "
                         "scaleladder.core.codec.save, or 'store:KEY' of a stored one")
    try:
        fp = loads(file["text"])
    except StoreError as exc:
        raise InputError(F["file"], file["name"], "a SNAP potential saved by "
                         "scaleladder.core.codec.save", hint=str(exc)) from None
    if getattr(fp, "form", None) != "SNAP":
        raise InputError(F["file"], file["name"], "a SNAP FittedPotential",
                         hint=f"it holds a {getattr(fp, 'form', type(fp).__name__)!r}")
    bad = [x for x in species if x not in fp.species]
    if bad:
        raise InputError(F["species"], "+".join(species),
                         f"elements the SNAP potential was trained for ({', '.join(fp.species)})",
                         hint="no model for " + ", ".join(bad))
    extra = sorted(set(params) - {"member"})
    if extra:
        raise InputError(F["params"], json.dumps(params), "'' or {\"member\": i} for snap")
    member = params.get("member")
    if member is not None and (not isinstance(member, int) or not 0 <= member < fp.n_members):
        raise InputError(F["params"], json.dumps(params),
                         f"a committee member in [0, {fp.n_members}) for snap")
    from ..atomistic.snap import SNAPCalculator

    return SNAPCalculator(fp, member=member)


def _check_builtin_element(name: str, species: list[str], params: dict, F: Mapping[str, str],
                           names, remedy: str) -> None:
    """Refuse a structure of another element than the built-in parameters of ``name`` were made
    for, unless ``params`` is a complete parameter set (the user's own potential)."""
    made_for = BUILTIN_ELEMENT[name]
    if species and species[0] != made_for and not all(k in params for k in names):
        raise InputError(F["species"], "+".join(species),
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
