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


def restart_neighbour_list(calc) -> bool:
    """Make ``calc`` (one of this rung's numba calculators) build its Verlet list afresh at the
    next call and forget its cached results; False (and nothing done) for other calculators.

    The MD engine calls it at every checkpoint step, so that an uninterrupted run and a run
    resumed from that checkpoint (whose new calculator builds its list there) sum the same
    pairs in the same order from the same positions: bit for bit the same trajectory.
    """
    lists = getattr(calc, "_lists", None)
    if lists is None or not hasattr(lists, "drop"):
        return False
    lists.drop()
    calc.results = {}
    return True
