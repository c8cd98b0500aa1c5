"""What every numba calculator of the atomistic rung shares once its kernel has run."""
from __future__ import annotations

from ..core.errors import PropertyNotImplementedError

_NO_STRESS = ("stress needs a cell of non-zero volume (this structure has none: an open cluster); "
              "set atoms.cell to a box to get the virial stress over its volume")


def store_results(calc, energy, energies, forces, stress, properties, **extra) -> None:
    """Fill ``calc.results`` (energy = free energy, per-atom energies, forces, stress if any).

    A structure without a volume has no stress: asking for it raises
    :class:`~scaleladder.core.errors.PropertyNotImplementedError` rather than returning a fake one.
    """
    calc.results = {"energy": energy, "free_energy": energy, "energies": energies, "forces": forces,
                    **extra}
    if stress is not None:
        calc.results["stress"] = stress
    elif "stress" in properties:
        raise PropertyNotImplementedError(_NO_STRESS)
