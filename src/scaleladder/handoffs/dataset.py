"""Reference data from a finer rung: configurations with energies, forces and stresses.

Units and conventions (ASE's): positions and cell in Å, energy in eV (the whole cell), forces in
eV/Å, stress in eV/Å³ as a Voigt 6-vector ``xx, yy, zz, yz, xz, xy`` with ASE's sign (positive =
tensile).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from ..core.codec import register
from ..core.errors import InputError
from ..core.tensors import VOIGT_PAIRS
from ..core.validate import finite, finite_array
from ._common import DataclassCodec, check_str, ro_array, setf, str_dict

__all__ = ["Configuration", "ReferenceDataset"]



def _stress_voigt(field_name: str, stress: Any) -> np.ndarray:
    s = np.asarray(stress, dtype=float)
    if s.shape == (3, 3):
        if not np.allclose(s, s.T, rtol=1e-8, atol=1e-12):
            raise InputError(field_name, "asymmetric 3x3 stress", "a symmetric stress tensor")
        s = np.array([s[i, j] for i, j in VOIGT_PAIRS])
    return finite_array(field_name, s, (6,))


@register("Configuration")
@dataclass(frozen=True, eq=False)
class Configuration(DataclassCodec):
    """One atomic configuration with reference energy, forces and stress.

    Parameters
    ----------
    numbers : array_like of int, shape (n,)
        Atomic numbers (1..118).
    positions : array_like, shape (n, 3)
        Cartesian positions in Å.
    cell : array_like, shape (3, 3)
        Cell vectors as rows, in Å.
    pbc : array_like of bool, shape (3,)
        Periodicity along each cell vector.
    energy : float
        Total energy of the cell in eV.
    forces : array_like, shape (n, 3), optional
        Forces in eV/Å.
    stress : array_like, shape (6,) or (3, 3), optional
        Stress in eV/Å³, Voigt ``xx, yy, zz, yz, xz, xy``, ASE sign (positive = tensile).
    label : str
        Kind of configuration (``"ev"``, ``"strain"``, ``"rattle"``, ...).
    name : str
        Unique name within a dataset.
    """

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    energy: float
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    label: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        try:
            num = np.asarray(self.numbers)
            ok = num.ndim == 1 and num.size > 0 and np.all(np.equal(np.mod(num, 1), 0))
        except TypeError:
            ok = False
        if not ok or np.any(num < 1) or np.any(num > 118):
            raise InputError("numbers", self.numbers, "a non-empty 1-D array of atomic numbers 1..118")
        n = num.size
        setf(self, "numbers", ro_array(num, np.int64))
        setf(self, "positions", ro_array(finite_array("positions", self.positions, (n, 3))))
        cell = finite_array("cell", self.cell, (3, 3))
        pbc = np.asarray(self.pbc)
        if pbc.shape == ():
            pbc = np.repeat(pbc, 3)
        if pbc.shape != (3,) or pbc.dtype.kind not in "bi":
            raise InputError("pbc", self.pbc, "three booleans")
        pbc = pbc.astype(bool)
        if pbc.all() and abs(np.linalg.det(cell)) < 1e-8:
            raise InputError("cell", cell.tolist(), "a non-singular cell for a periodic configuration")
        setf(self, "cell", ro_array(cell))
        setf(self, "pbc", ro_array(pbc, bool))
        setf(self, "energy", finite("energy", self.energy))
        if self.forces is not None:
            setf(self, "forces", ro_array(finite_array("forces", self.forces, (n, 3))))
        if self.stress is not None:
            setf(self, "stress", ro_array(_stress_voigt("stress", self.stress)))
        check_str("label", self.label)
        check_str("name", self.name)

    def __len__(self) -> int:
        return int(self.numbers.size)

    @property
    def natoms(self) -> int:
        return int(self.numbers.size)

    @property
    def volume(self) -> float:
        """Cell volume in Å³."""
        return float(abs(np.linalg.det(self.cell)))

    @property
    def volume_per_atom(self) -> float:
        """Cell volume per atom in Å³."""
        return self.volume / self.natoms

    @property
    def energy_per_atom(self) -> float:
        """Energy per atom in eV."""
        return self.energy / self.natoms

    def to_atoms(self):
        """An ``ase.Atoms`` with a ``SinglePointCalculator`` carrying energy, forces and stress."""
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator

        atoms = Atoms(numbers=np.array(self.numbers), positions=np.array(self.positions),
                      cell=np.array(self.cell), pbc=np.array(self.pbc))
        res: dict[str, Any] = {"energy": self.energy}
        if self.forces is not None:
            res["forces"] = np.array(self.forces)
        if self.stress is not None:
            res["stress"] = np.array(self.stress)
        atoms.calc = SinglePointCalculator(atoms, **res)
        atoms.info["label"] = self.label
        atoms.info["name"] = self.name
        return atoms

    @classmethod
    def from_atoms(cls, atoms: Any, label: str = "", name: str = "") -> "Configuration":
        """Read a configuration from an ``ase.Atoms`` with calculator results.

        The energy is taken from ``atoms.calc.results["energy"]`` (else
        ``atoms.get_potential_energy()``); forces and stress from ``atoms.calc.results`` when
        present (no new calculation is triggered for them).
        """
        calc = getattr(atoms, "calc", None)
        if calc is None:
            raise InputError(f"atoms[{name or label}].calc", None,
                             "an Atoms object with a calculator holding results")
        results = getattr(calc, "results", {}) or {}
        if "energy" in results:
            energy = results["energy"]
        else:
            try:
                energy = atoms.get_potential_energy()
            except Exception as exc:  # noqa: BLE001 - any calculator failure
                raise InputError(f"atoms[{name or label}].energy", None,
                                 "a calculator that provides the energy", hint=str(exc)) from None
        forces = results.get("forces")
        stress = results.get("stress")
        return cls(numbers=atoms.get_atomic_numbers(), positions=atoms.get_positions(),
                   cell=np.array(atoms.get_cell()), pbc=atoms.get_pbc(), energy=float(energy),
                   forces=None if forces is None else np.array(forces),
                   stress=None if stress is None else np.array(stress), label=label, name=name)


@register("ReferenceDataset")
@dataclass(frozen=True, eq=False)
class ReferenceDataset(DataclassCodec):
    """A set of reference configurations computed with one method.

    Parameters
    ----------
    configurations : sequence of Configuration
        The configurations (stored as a tuple); names must be unique.
    method : dict
        How they were computed: ``code``, ``xc``, ``basis``, ``pseudo``, ``kmesh``, ``ke_cutoff``,
        ``smearing`` ...; optionally ``atom_energy_eV``, the isolated-atom reference energy (eV)
        used for cohesive energies.
    """

    configurations: tuple
    method: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        confs = self.configurations
        if isinstance(confs, Configuration) or not isinstance(confs, (list, tuple)):
            raise InputError("configurations", confs, "a sequence of Configuration objects")
        confs = tuple(confs)
        for i, c in enumerate(confs):
            if not isinstance(c, Configuration):
                raise InputError(f"configurations[{i}]", c, "a Configuration")
        names = [c.name for c in confs]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise InputError("configurations", f"duplicate names {dup}", "unique configuration names")
        setf(self, "configurations", confs)
        method = str_dict("method", self.method)
        if "atom_energy_eV" in method and method["atom_energy_eV"] is not None:
            method["atom_energy_eV"] = finite("method['atom_energy_eV']", method["atom_energy_eV"])
        setf(self, "method", method)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_atoms(cls, atoms_list: Sequence[Any], method: dict | None = None,
                   labels: str | Sequence[str] = "", names: Sequence[str] | None = None
                   ) -> "ReferenceDataset":
        """Build a dataset from ASE Atoms objects carrying calculator results.

        Parameters
        ----------
        atoms_list : sequence of ase.Atoms
            Each with ``atoms.calc.results`` (energy; forces and stress when available).
        method : dict, optional
            See the class docstring.
        labels : str or sequence of str
            One label for all, or one per configuration.
        names : sequence of str, optional
            One unique name per configuration (default ``"{label}-{i}"``).
        """
        atoms_list = list(atoms_list)
        m = len(atoms_list)
        if isinstance(labels, str):
            labels = [labels] * m
        labels = list(labels)
        if len(labels) != m:
            raise InputError("labels", f"{len(labels)} labels", f"one label or {m} labels")
        if names is None:
            names = [f"{lab or 'config'}-{i}" for i, lab in enumerate(labels)]
        names = list(names)
        if len(names) != m:
            raise InputError("names", f"{len(names)} names", f"{m} names (one per configuration)")
        confs = tuple(Configuration.from_atoms(a, label=lab, name=nm)
                      for a, lab, nm in zip(atoms_list, labels, names))
        return cls(confs, dict(method or {}))

    # -- access -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.configurations)

    def __iter__(self) -> Iterator[Configuration]:
        return iter(self.configurations)

    def __getitem__(self, i: int) -> Configuration:
        return self.configurations[i]

    def to_atoms(self, i: int):
        """Configuration ``i`` as ``ase.Atoms`` with a SinglePointCalculator."""
        if not isinstance(i, (int, np.integer)) or not -len(self) <= i < len(self):
            raise InputError("i", i, f"an index in [0, {len(self)})")
        return self.configurations[i].to_atoms()

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(c.label for c in self.configurations)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.configurations)

    @property
    def volumes_per_atom(self) -> np.ndarray:
        """Volume per atom of each configuration (Å³)."""
        return np.array([c.volume_per_atom for c in self.configurations])

    @property
    def energies_per_atom(self) -> np.ndarray:
        """Energy per atom of each configuration (eV)."""
        return np.array([c.energy_per_atom for c in self.configurations])

    @property
    def cohesive_energies_per_atom(self) -> np.ndarray:
        """``atom_energy_eV - E/N`` per configuration (eV, positive when bound)."""
        ea = self.method.get("atom_energy_eV")
        if ea is None:
            raise InputError("method['atom_energy_eV']", None,
                             "the isolated-atom energy recorded in the dataset's method")
        return ea - self.energies_per_atom

    def select(self, *labels: str | Sequence[str]) -> "ReferenceDataset":
        """The configurations whose label is one of ``labels`` (strings or sequences of them)."""
        want: set[str] = set()
        for lab in labels:
            if isinstance(lab, str):
                want.add(lab)
            else:
                want.update(lab)
        confs = tuple(c for c in self.configurations if c.label in want)
        if not confs:
            raise InputError("labels", sorted(want),
                             "labels present in the dataset: " + ", ".join(sorted(set(self.labels))))
        return ReferenceDataset(confs, dict(self.method))

    def split(self, heldout_fraction: float = 0.2, seed: int = 0, *,
              heldout_labels: Sequence[str] | None = None
              ) -> tuple["ReferenceDataset", "ReferenceDataset"]:
        """Split into ``(train, heldout)``.

        Either the configurations with a label in ``heldout_labels`` are held out, or, per label, a
        random ``heldout_fraction`` (deterministic for a ``seed``; every label keeps at least one
        training configuration).
        """
        if heldout_labels is not None:
            hl = {heldout_labels} if isinstance(heldout_labels, str) else set(heldout_labels)
            mask = np.array([c.label in hl for c in self.configurations], dtype=bool)
        else:
            f = finite("heldout_fraction", heldout_fraction)
            if not 0.0 < f < 1.0:
                raise InputError("heldout_fraction", heldout_fraction, "a number in (0, 1)")
            rng = np.random.default_rng(seed)
            mask = np.zeros(len(self), dtype=bool)
            labels = np.array(self.labels, dtype=object)
            for lab in dict.fromkeys(self.labels):
                idx = np.flatnonzero(labels == lab)
                k = min(int(round(f * idx.size)), idx.size - 1)
                if k > 0:
                    mask[rng.choice(idx, size=k, replace=False)] = True
        if not mask.any() or mask.all():
            raise InputError("split", f"{int(mask.sum())} of {len(self)} held out",
                             "a split leaving both sets non-empty")
        confs = self.configurations
        return (ReferenceDataset(tuple(c for c, m in zip(confs, mask) if not m), dict(self.method)),
                ReferenceDataset(tuple(c for c, m in zip(confs, mask) if m), dict(self.method)))
