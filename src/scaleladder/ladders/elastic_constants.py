"""Ladder ``elastic-constants``: the elastic tensor of any crystal with any supported potential.

Stages: the structure (a file's content or a builtin spec) is relaxed to zero pressure when its
cell is cubic (kept as given otherwise), then the stress-strain fit gives the ``ElasticTensor``
(GPa), relaxed-ion or clamped-ion per ``relax_ions``.  No quantity carries several uncertainty
sources, so ``scaleladder budget`` has nothing to split and says so.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.pipeline import stage
from ._atomistic_common import (atoms_from, common_settings, make_calculator, potential_spec,
                                relax_rows, relax_structure, structure_spec)
from .base import LadderSpec

if TYPE_CHECKING:  # the handoff types the stages take and give
    from ..handoffs import ElasticTensor

#: no multi-source error budget: ``scaleladder budget`` reports that there is none
SOURCE_HANDOFFS: dict[str, str] = {}


@stage("atomistic.elastic_tensor", version="1")
def elastic_tensor(relaxed: dict, potential: dict, relax_ions: bool,
                   strain_step: float) -> ElasticTensor:
    """Elastic constants (GPa) of the relaxed structure -> ``ElasticTensor``.

    Parameters
    ----------
    relaxed : dict
        Output of the relaxation stage (its ``structure`` is used).
    potential : dict
        Potential spec.
    relax_ions : bool
        Relaxed-ion (True) or clamped-ion tensor.
    strain_step : float
        Strain amplitude of the stress-strain fit.
    """
    from ..atomistic import elastic_constants

    s = relaxed["structure"]
    return elastic_constants(atoms_from(s), make_calculator(potential), relax_ions=relax_ions,
                             strain_step=strain_step,
                             structure=f"{s.info['formula']} ({s.info['source']})")


def build(settings: dict) -> dict:
    """Stage DAG for validated ``settings``: ``relaxed`` and ``elastic``."""
    struct = structure_spec("structure", settings["structure"])
    pot = potential_spec(settings, sorted(set(struct.symbols)))
    relaxed = relax_structure.bind(structure=struct, potential=pot,
                                   relax_ions=settings["relax_ions"]).with_label("relax lattice")
    el = elastic_tensor.bind(relaxed=relaxed, potential=pot, relax_ions=settings["relax_ions"],
                             strain_step=settings["strain_step"]).with_label("elastic constants")
    return {"relaxed": relaxed, "elastic": el}


def _num(e) -> str:
    return f"{float(e.value):.4f}"


def summarize(settings: dict, results: dict) -> list:
    """Sections: structure and potential; C11, C12, C44, B_VRH, G_VRH (GPa)."""
    C = results["elastic"]
    rows = relax_rows(results["relaxed"])
    rows.append(("potential", settings["potential"], "", settings["potential_file"]
                 or settings["potential_params"] or "built-in parameters"))
    sections = [("Structure and potential", rows)]
    ion = "relaxed ions" if C.relaxed_ions else "clamped ions"
    rows = [(name, _num(C.voigt[idx]), "GPa", ion) for name, idx in
            (("C11", (0, 0)), ("C12", (0, 1)), ("C44", (3, 3)))]
    rows.append(("B_VRH", _num(C.bulk_modulus_vrh), "GPa", "Voigt-Reuss-Hill bulk modulus"))
    rows.append(("G_VRH", _num(C.shear_modulus_vrh), "GPa", "Voigt-Reuss-Hill shear modulus"))
    sections.append((f"Elastic constants (strain step {settings['strain_step']:g})", rows))
    return sections


LADDER = LadderSpec(
    name="elastic-constants",
    description="elastic constants (C, B/G VRH) of any structure with SW/Tersoff/LJ/Morse/EAM/EMT",
    settings=common_settings(),
    build=build,
    summarize=summarize,
    source_handoffs=SOURCE_HANDOFFS,
)

__all__ = ["LADDER", "build", "summarize", "elastic_tensor", "relax_structure"]
