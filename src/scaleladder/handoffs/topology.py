"""Persistence diagrams: the birth and death of connected components, rings and cavities along
a filtration, with the filtration's unit."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.codec import register
from ..core.errors import InputError
from ._common import DataclassCodec, check_str, setf, str_dict

__all__ = ["PersistenceDiagram"]


@register("PersistenceDiagram")
@dataclass(frozen=True, eq=False)
class PersistenceDiagram(DataclassCodec):
    """Persistence intervals per homology dimension.

    Parameters
    ----------
    intervals : dict
        ``{dimension: array (k, 2)}`` of (birth, death); ``inf`` deaths are classes alive at the
        end of the filtration (for a periodic structure, the cell's own H1/H2/H3 classes).
    unit : str
        Unit of birth and death (``"Å"`` for the alpha radius of atoms; a field's unit).
    filtration : str
        ``"alpha"`` (radius of the empty ball: the square root of GUDHI's alpha value),
        ``"rips"`` (edge length), ``"cubical"`` (the field's value).
    periodic : bool
        Computed on the torus of the cell (True) or in open space.
    supercell : tuple
        Repetitions of the given cell used (the torus complex is a simplicial complex only when
        the cell is large enough): finite bars count features of the supercell.
    provenance : dict
    """

    intervals: dict
    unit: str
    filtration: str
    periodic: bool = False
    supercell: tuple = (1, 1, 1)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.intervals, dict):
            raise InputError("intervals", type(self.intervals).__name__,
                             "a dict dimension -> (k, 2) array")
        out = {}
        for d, arr in self.intervals.items():
            a = np.asarray(arr, dtype=float).reshape(-1, 2)
            if np.any(np.isnan(a)) or np.any(a[:, 1] < a[:, 0]):
                raise InputError(f"intervals[{d}]", a[:3].tolist(), "births <= deaths, no NaN")
            a = a.copy()
            a.setflags(write=False)
            out[int(d)] = a
        setf(self, "intervals", out)
        check_str("unit", self.unit)
        check_str("filtration", self.filtration, allow_empty=False)
        setf(self, "periodic", bool(self.periodic))
        setf(self, "supercell", tuple(int(k) for k in self.supercell))
        setf(self, "provenance", str_dict("provenance", self.provenance))

    # -- reading -------------------------------------------------------------------------
    @property
    def dimensions(self) -> list[int]:
        return sorted(self.intervals)

    def bars(self, dim: int) -> np.ndarray:
        """All (birth, death) pairs of dimension ``dim`` (empty (0, 2) if none)."""
        return self.intervals.get(int(dim), np.zeros((0, 2)))

    def finite(self, dim: int) -> np.ndarray:
        b = self.bars(dim)
        return b[np.isfinite(b[:, 1])]

    def betti(self, at: float | None = None) -> list[int]:
        """Betti numbers at filtration value ``at`` (default: the end of the filtration)."""
        top = max(self.dimensions, default=-1)
        out = []
        for d in range(top + 1):
            b = self.bars(d)
            if at is None:
                out.append(int(np.sum(~np.isfinite(b[:, 1]))))
            else:
                out.append(int(np.sum((b[:, 0] <= at) & (b[:, 1] > at))))
        return out

    def distance(self, other: "PersistenceDiagram", dim: int, *, kind: str = "bottleneck",
                 order: float = 1.0) -> float:
        """Bottleneck (exact, GUDHI) or Wasserstein-``order`` (Hera, relative error 1e-9)
        distance between the ``dim`` diagrams; infinite bars are matched among themselves."""
        if not isinstance(other, PersistenceDiagram):
            raise InputError("other", type(other).__name__, "a PersistenceDiagram")
        if other.unit != self.unit:
            raise InputError("other.unit", other.unit, f"the same unit as this diagram "
                             f"({self.unit!r})")
        import gudhi
        from gudhi import hera

        a, b = self.bars(dim), other.bars(dim)
        if kind == "bottleneck":
            return float(gudhi.bottleneck_distance(a, b, 0.0))          # exact
        if kind == "wasserstein":
            return float(hera.wasserstein_distance(a, b, order=order, internal_p=np.inf,
                                                   delta=1e-9))
        raise InputError("kind", kind, "'bottleneck' or 'wasserstein'")

    def __str__(self) -> str:
        parts = [f"H{d}: {len(self.bars(d))} bars ({int(np.sum(~np.isfinite(self.bars(d)[:, 1])))}"
                 f" infinite)" for d in self.dimensions]
        return (f"PersistenceDiagram({self.filtration}, {'periodic' if self.periodic else 'open'}"
                f", {self.unit}; " + ", ".join(parts) + ")")
