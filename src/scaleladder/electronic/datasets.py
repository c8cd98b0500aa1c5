"""One-configuration DFT runs for pipeline stages, and the small-strain deformation of a cell.

:func:`compute_configuration` runs one configuration in a fresh :class:`PySCFCalculator` and returns
plain data, so the pipeline can make each configuration its own stage (a crash loses only the
configuration in progress; stages distribute over Dask workers).  The flagship's silicon
configuration sets live in the workflows layer (:mod:`scaleladder.workflows.silicon`).
"""
from __future__ import annotations

import os
import time
from typing import Sequence

import numpy as np
from ase import Atoms

from ..core import validate
from ..core.errors import InputError

def apply_small_strain(atoms: Atoms, voigt: Sequence[float]) -> Atoms:
    """Copy of ``atoms`` homogeneously deformed by ``F = I + ε`` (small strain ε in Voigt form,
    engineering shears; atoms scaled with the cell).  The Green–Lagrange counterpart is
    :func:`scaleladder.core.tensors.deformation_green_lagrange` (used by ``strain_set``)."""
    from ..core.tensors import deformation_small_strain

    out = atoms.copy()
    F = deformation_small_strain(voigt)
    out.set_cell(np.asarray(atoms.cell) @ F.T, scale_atoms=True)
    return out


_ALL_PROPERTIES = ("energy", "forces", "stress")


#: Name of the store's scratch folder of SCF checkpoints that :func:`compute_configuration` uses
#: when no ``scf_checkpoint`` is passed and it runs under a pipeline Runner
#: (``<store>/scratch/scf-checkpoints``): the initial guess only, never part of a stage's key.
SCF_CHECKPOINT_SCRATCH = "scf-checkpoints"


def compute_configuration(atoms: Atoms, calc_params: dict,
                          properties: Sequence[str] | None = None,
                          scf_checkpoint: str | None = None) -> dict:
    """Run ONE configuration in a fresh :class:`PySCFCalculator`; return plain data.

    Parameters
    ----------
    atoms : ase.Atoms
        The configuration (its ``info["label"]`` and ``info["name"]`` are passed through).
    calc_params : dict
        Keyword arguments of :class:`PySCFCalculator` (xc, basis, pseudo, kpts, ke_cutoff, ...).
    properties : sequence of str, optional
        What to compute; default ``atoms.info["properties"]`` if set (see
        :func:`silicon_configurations`), else ("energy", "forces", "stress").  ``("energy",)``
        alone takes the symmetry-reduced k-point path when ``symmetry=True``; forces and stress
        are then ``None``.
    scf_checkpoint : str, optional
        Directory of converged densities (``PySCFCalculator(scf_checkpoint=...)``): the SCF
        starts from the density of the last configuration with the same atoms and settings
        instead of from scratch (a strain series saves about one SCF cycle in five; measured in
        docs/electronic_settings.md).  It changes the initial guess only, so results agree
        within ``conv_tol`` and it is not recorded in ``calc_params``.  Default: under a
        pipeline Runner, the store's scratch folder ``scf-checkpoints``
        (:func:`scaleladder.core.pipeline.scratch_dir`; it reaches Dask workers with the task,
        not through the environment), else none.

    Returns
    -------
    dict
        ``numbers`` (list[int]), ``positions`` (n x 3, Å), ``cell`` (3 x 3, Å), ``pbc`` (3 bool),
        ``energy`` (eV), ``free_energy`` (eV), ``forces`` (n x 3 eV/Å or None), ``stress`` (6,
        eV/Å³ Voigt xx,yy,zz,yz,xz,xy, ASE sign, or None), ``elapsed_s``, ``scf_cycles``,
        ``initial_guess`` (where the SCF started: memory, checkpoint, minao, atom), ``label``,
        ``name``, ``calc_params``.  Lists and floats only (JSON-friendly).

    Raises
    ------
    ConvergenceError
        When the SCF does not converge (nothing partial is returned).
    """
    from .pyscf_calculator import PySCFCalculator

    if not isinstance(atoms, Atoms):
        raise InputError("atoms", type(atoms).__name__, "an ase.Atoms")
    if not isinstance(calc_params, dict):
        raise InputError("calc_params", calc_params, "a dict of PySCFCalculator parameters")
    if properties is None:
        properties = tuple(atoms.info.get("properties", _ALL_PROPERTIES))
    for prop in properties:
        validate.one_of("properties", prop, _ALL_PROPERTIES + ("free_energy",))
    name = str(atoms.info.get("name", atoms.get_chemical_formula()))
    label = str(atoms.info.get("label", ""))
    at = atoms.copy()
    t0 = time.perf_counter()
    if scf_checkpoint is None:
        from ..core.pipeline import scratch_dir

        d = scratch_dir(SCF_CHECKPOINT_SCRATCH)
        scf_checkpoint = None if d is None else os.fspath(d)
    extra = {} if scf_checkpoint is None or "scf_checkpoint" in calc_params else \
        {"scf_checkpoint": scf_checkpoint}
    calc = PySCFCalculator(label=name, **calc_params, **extra)
    calc.calculate(at, list(properties))
    elapsed = time.perf_counter() - t0
    r = calc.results
    return {
        "numbers": [int(z) for z in at.numbers],
        "positions": np.asarray(at.positions, dtype=float).tolist(),
        "cell": np.asarray(at.cell, dtype=float).tolist(),
        "pbc": [bool(x) for x in at.pbc],
        "energy": float(r["energy"]),
        "free_energy": float(r["free_energy"]),
        "forces": np.asarray(r["forces"]).tolist() if "forces" in r else None,
        "stress": np.asarray(r["stress"]).tolist() if "stress" in r else None,
        "elapsed_s": float(elapsed),
        "scf_cycles": int(r["scf_cycles"]),
        "initial_guess": str(r.get("initial_guess", "")),
        "label": label,
        "name": name,
        "calc_params": dict(calc_params),
    }


__all__ = ["apply_small_strain", "compute_configuration", "SCF_CHECKPOINT_SCRATCH"]
