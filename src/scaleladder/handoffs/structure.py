"""``Structure``: an atomic structure as it crosses stages (Å; codec-registered).

Stages exchange structures as this type rather than as dicts, so there is one conversion to and
from ASE's ``Atoms`` (:meth:`Structure.from_atoms`, :meth:`Structure.to_atoms`), one validation
(shapes, finite coordinates, known atomic numbers) and one serialisation (plain JSON + NumPy, read
back bit for bit; floats are never rounded, so a stage key and a computed number do not change
when a structure crosses a stage boundary).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.codec import register
from ..core.errors import InputError
from ._common import DataclassCodec, ro_array, setf

__all__ = ["Structure"]


@register("Structure")
@dataclass(frozen=True, eq=False)
class Structure(DataclassCodec):
    """Atoms in a cell: what a stage hands to the next.

    Parameters
    ----------
    numbers : array_like of int, shape (n,)
        Atomic numbers (1-118), n >= 1.
    positions : array_like, shape (n, 3)
        Cartesian positions in Å.
    cell : array_like, shape (3, 3), optional
        Cell vectors (rows) in Å; zeros for a molecule.
    pbc : sequence of 3 bool, optional
        Periodicity along each cell vector.
    info : dict, optional
        Plain JSON-able extras (``name``, ``label``, ``properties``, ``source``, ``sha256``, ...),
        copied to ``Atoms.info`` by :meth:`to_atoms`.

    Raises
    ------
    InputError
        Wrong shapes, non-finite coordinates, unknown atomic numbers, a periodic direction with a
        zero cell vector, or non-JSON ``info``.
    """

    numbers: Any
    positions: Any
    cell: Any = None
    pbc: Any = (False, False, False)
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            numbers = np.asarray(self.numbers, dtype=np.int64).reshape(-1)
            positions = np.asarray(self.positions, dtype=float)
            cell = np.zeros((3, 3)) if self.cell is None else np.asarray(self.cell, dtype=float)
        except (TypeError, ValueError):
            raise InputError("structure", type(self.positions).__name__,
                             "numbers, positions (n, 3) Å and a (3, 3) cell in Å") from None
        n = len(numbers)
        if n < 1 or np.any(numbers < 1) or np.any(numbers > 118):
            raise InputError("numbers", numbers.tolist()[:10], "at least one atomic number in 1..118")
        if positions.shape != (n, 3) or not np.all(np.isfinite(positions)):
            raise InputError("positions", f"array of shape {positions.shape}",
                             f"finite Cartesian positions of shape ({n}, 3) in Å")
        if cell.shape != (3, 3) or not np.all(np.isfinite(cell)):
            raise InputError("cell", f"array of shape {cell.shape}", "a finite (3, 3) cell in Å")
        pbc = tuple(bool(p) for p in np.asarray(self.pbc, dtype=bool).reshape(-1))
        if len(pbc) != 3:
            raise InputError("pbc", self.pbc, "three booleans")
        for k in range(3):
            if pbc[k] and not np.linalg.norm(cell[k]) > 0:
                raise InputError("cell", cell.tolist(), f"a non-zero cell vector {k} (periodic)")
        info = dict(self.info or {})
        try:
            info = json.loads(json.dumps(info))
        except (TypeError, ValueError):
            raise InputError("info", repr(self.info)[:80], "plain JSON-able values") from None
        setf(self, "numbers", ro_array(numbers, np.int64))
        setf(self, "positions", ro_array(positions))
        setf(self, "cell", ro_array(cell))
        setf(self, "pbc", pbc)
        setf(self, "info", info)

    # -- conversions -----------------------------------------------------------------------------
    @classmethod
    def from_atoms(cls, atoms, **info: Any) -> "Structure":
        """From ASE ``Atoms`` (positions and cell as they are, in Å); ``info`` adds extras."""
        from ase import Atoms

        if not isinstance(atoms, Atoms):
            raise InputError("atoms", type(atoms).__name__, "an ase.Atoms")
        return cls(numbers=atoms.numbers, positions=atoms.positions, cell=np.asarray(atoms.cell),
                   pbc=tuple(atoms.pbc), info=info)

    def to_atoms(self):
        """A new ASE ``Atoms`` (no calculator), ``info`` copied to ``Atoms.info``."""
        from ase import Atoms

        atoms = Atoms(numbers=np.array(self.numbers), positions=np.array(self.positions),
                      cell=np.array(self.cell), pbc=self.pbc)
        atoms.info.update(json.loads(json.dumps(self.info)))
        return atoms

    def with_positions(self, positions, **info: Any) -> "Structure":
        """The same atoms and cell at other positions (Å), ``info`` updated."""
        return Structure(self.numbers, positions, self.cell, self.pbc, {**self.info, **info})

    # -- derived -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.numbers)

    @property
    def formula(self) -> str:
        """Chemical formula (ASE's Hill-like order)."""
        return self.to_atoms().get_chemical_formula()

    @property
    def symbols(self) -> list[str]:
        from ase.data import chemical_symbols

        return [chemical_symbols[int(z)] for z in self.numbers]

    def __str__(self) -> str:
        kind = "periodic " + "".join("xyz"[k] for k in range(3) if self.pbc[k]) if any(self.pbc) \
            else "open"
        return f"Structure({self.formula}, {len(self)} atoms, {kind})"
