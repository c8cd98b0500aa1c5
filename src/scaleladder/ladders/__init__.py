"""Ready ladders, each a :class:`~scaleladder.ladders.base.LadderSpec` (settings schema + stage DAG)."""
from __future__ import annotations

from ..core.errors import InputError
from .base import LadderSpec, Setting, parse_set_options

_LADDERS = {"silicon-fracture": "scaleladder.ladders.silicon_fracture",
            "elastic-constants": "scaleladder.ladders.elastic_constants",
            "defects": "scaleladder.ladders.defects",
            "qmmm-water": "scaleladder.ladders.qmmm_water",
            "magnet": "scaleladder.ladders.magnet",
            "vacancy-diffusion": "scaleladder.ladders.vacancy_diffusion",
            "polycrystal": "scaleladder.ladders.polycrystal",
            "fracture-phasefield": "scaleladder.ladders.fracture_phasefield",
            "nanoindentation": "scaleladder.ladders.nanoindentation",
            "water-cg": "scaleladder.ladders.water_cg",
            "composite": "scaleladder.ladders.composite",
            "silicon-topology": "scaleladder.ladders.silicon_topology",
            "thermal-conductivity": "scaleladder.ladders.thermal_conductivity",
            "silicon-mlip": "scaleladder.ladders.silicon_mlip",
            "hydrogen-embrittlement": "scaleladder.ladders.hydrogen_embrittlement"}


def available_ladders() -> dict[str, str]:
    """Ladder name -> one-line description."""
    return {name: get_ladder(name).description for name in _LADDERS}


def get_ladder(name: str) -> LadderSpec:
    """The ladder called ``name``; an unknown name lists the ladders there are."""
    import importlib

    if name not in _LADDERS:
        raise InputError("ladder", name, "one of " + ", ".join(sorted(_LADDERS)))
    return importlib.import_module(_LADDERS[name]).LADDER


__all__ = ["LadderSpec", "Setting", "available_ladders", "get_ladder", "parse_set_options"]
