"""Phonons as pipeline stages: each displaced supercell's forces is a stage, so any executor
(process pool, Dask cluster) spreads them over workers and a crash loses only the displacements in
progress.  The result equals :func:`scaleladder.atomistic.phonons` computed in one process.

    node = phonon_nodes(atoms, calculator_spec("emt", species=["Cu"]), supercell=(2, 2, 2))
    props = Runner(store, executor="process").run({"phonons": node})["phonons"]
"""
from __future__ import annotations


import numpy as np

from ..core.errors import InputError
from ..core.pipeline import Node, stage
from ..handoffs import PhononProperties, Structure
from .calculators import make_calculator

__all__ = ["phonon_nodes", "displaced_forces", "phonon_properties"]


@stage("workflows.phonons.forces", version="1")
def displaced_forces(structure: Structure, calculator: dict) -> np.ndarray:
    """Forces (eV/Å) of one (displaced) supercell with a fresh calculator from its spec."""
    from ..atomistic.phonons import displaced_forces as forces

    return forces(structure.to_atoms(), make_calculator(calculator))


@stage("workflows.phonons.properties", version="1")
def phonon_properties(plan: dict, forces: list, mesh: list, temperatures: list, symmetrize: bool,
                      calculator: dict) -> PhononProperties:
    """``PhononProperties`` from the plan and the forces of every supercell."""
    from ..atomistic.phonons import phonons_from_forces

    return phonons_from_forces(plan, forces, mesh=mesh, temperatures=temperatures,
                               symmetrize=symmetrize, calculator=calculator["engine"])


def phonon_nodes(atoms, calculator: dict, supercell=(2, 2, 2), displacement: float = 0.01,
                 mesh=(12, 12, 12), temperatures=None, symmetrize: bool = True) -> Node:
    """The stage DAG of a phonon calculation: one force stage per supercell, one gathering stage.

    Parameters
    ----------
    atoms : ase.Atoms
        The unit cell at equilibrium.
    calculator : dict
        A spec of the one registry (:func:`scaleladder.workflows.calculators.calculator_spec`).
    supercell, displacement, mesh, temperatures, symmetrize
        As :func:`scaleladder.atomistic.phonons`.

    Returns
    -------
    Node
        Its value is a ``PhononProperties``.
    """
    from ..atomistic.phonons import DEFAULT_TEMPERATURES, phonon_displacements
    from ..core import validate

    if not isinstance(calculator, dict) or "engine" not in calculator:
        raise InputError("calculator", calculator, "a calculator spec (calculator_spec(...))")
    plan, structures = phonon_displacements(atoms, supercell, displacement)
    temps = np.asarray(DEFAULT_TEMPERATURES if temperatures is None else temperatures, float)
    forces = [displaced_forces.bind(structure=s, calculator=calculator).with_label(
        "phonon forces, " + ("perfect supercell" if i == 0 else f"displacement {i}"))
        for i, s in enumerate(structures)]
    return phonon_properties.bind(plan=plan, forces=forces,
                                  mesh=list(validate.kmesh("mesh", mesh)),
                                  temperatures=temps.tolist(), symmetrize=bool(symmetrize),
                                  calculator=calculator).with_label("phonons (phonopy)")
