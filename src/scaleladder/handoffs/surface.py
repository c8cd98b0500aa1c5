"""Surface energy of a crystal facet."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.codec import register
from ..core.errors import InputError
from ..uq import Estimate
from ._common import DataclassCodec, check_bool, check_str, estimate_in, setf, str_dict
from .potential import check_domain_warnings

__all__ = ["SurfaceEnergy"]


@register("SurfaceEnergy")
@dataclass(frozen=True, eq=False)
class SurfaceEnergy(DataclassCodec):
    """Energy per area of a crystal surface.

    Parameters
    ----------
    miller : tuple of 3 int
        Miller indices of the facet (not all zero).
    value : Estimate
        Scalar surface energy, unit convertible to J/m^2 (e.g. ``"eV/Å^2"``); stored in J/m^2.
        Must be positive.
    relaxed : bool
        True if the surface atoms were relaxed.
    structure : str
        Bulk structure, e.g. ``"diamond"``.
    provenance : dict
        Free-form record of how it was obtained.
    domain_warnings : tuple of str, optional
        Where the bulk or slab configurations lay outside the training domain of the fitted
        potential used (``()``: none, or not a fitted potential).  Records written before this
        field existed decode with ``()``.
    """

    miller: tuple
    value: Estimate
    relaxed: bool = True
    structure: str = ""
    provenance: dict = field(default_factory=dict)
    domain_warnings: tuple = ()

    def __post_init__(self) -> None:
        try:
            m = tuple(self.miller)
        except TypeError:
            m = None
        if (m is None or len(m) != 3
                or not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in m)):
            raise InputError("miller", self.miller, "three integers, e.g. (1, 1, 1)")
        if all(x == 0 for x in m):
            raise InputError("miller", self.miller, "Miller indices that are not all zero")
        setf(self, "miller", tuple(int(x) for x in m))
        val = estimate_in("value", self.value, "J/m^2", (), allow_plain=False)
        if val.value <= 0:
            raise InputError("value", str(val), "a positive surface energy (J/m^2)",
                             hint="a negative surface energy means the slab or the bulk "
                                  "reference is wrong")
        setf(self, "value", val)
        check_bool("relaxed", self.relaxed)
        setf(self, "relaxed", bool(self.relaxed))
        check_str("structure", self.structure)
        setf(self, "provenance", str_dict("provenance", self.provenance))
        setf(self, "domain_warnings", check_domain_warnings("domain_warnings", self.domain_warnings))

    @property
    def gamma(self) -> Estimate:
        """Alias of ``value`` (J/m^2)."""
        return self.value

    def __str__(self) -> str:
        h, k, l = self.miller
        return f"SurfaceEnergy(({h}{k}{l}), {'relaxed' if self.relaxed else 'unrelaxed'}): {self.value}"
