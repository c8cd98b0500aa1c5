"""Equation of state: E(V) data per atom and the fitted a0, B0, E0."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..core.codec import register
from ..core.errors import InputError
from ..core.units import EV_PER_A3_IN_GPA
from ..core.validate import finite_array, one_of
from ..uq import Estimate
from ._common import DataclassCodec, check_str, estimate_in, ro_array, setf, str_dict

__all__ = ["EquationOfState", "ATOMS_PER_CONVENTIONAL_CELL"]

#: atoms in the cubic conventional cell, used for a0 = (n V0)^(1/3)
ATOMS_PER_CONVENTIONAL_CELL = {"diamond": 8, "zincblende": 8, "fcc": 4, "bcc": 2, "sc": 1,
                               "rocksalt": 8}
_FORMS = ("birchmurnaghan",)
_MIN_POINTS = 5


def _fit_bm(volumes: np.ndarray, energies: np.ndarray) -> np.ndarray:
    """Birch-Murnaghan fit with ASE: returns [V0 Å³, E0 eV, B0 GPa, B0']."""
    from ase.eos import EquationOfState as AseEOS

    eos = AseEOS(volumes, energies, eos="birchmurnaghan")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v0, e0, b = eos.fit(warn=False)
    except Exception as exc:  # noqa: BLE001 - scipy curve_fit failures
        raise InputError("energies_per_atom", "E(V) data", "data a Birch-Murnaghan form can fit",
                         hint=f"the fit failed ({exc}); check the data has one smooth minimum") from None
    bp = float(eos.eos_parameters[2])
    return np.array([float(v0), float(e0), float(b) * EV_PER_A3_IN_GPA, bp])


@register("EquationOfState")
@dataclass(frozen=True, eq=False)
class EquationOfState(DataclassCodec):
    """An energy-volume curve and its fitted parameters.

    Parameters
    ----------
    volumes : array_like, shape (m,)
        Volumes per atom in Å³ (m >= 5).
    energies : array_like, shape (m,)
        Energies per atom in eV.
    a0 : Estimate
        Equilibrium cubic lattice constant (unit convertible to Å; stored in Å).
    bulk_modulus : Estimate
        B0 (unit convertible to GPa; stored in GPa).
    e0 : Estimate
        Minimum energy per atom (stored in eV).
    form : str
        ``"birchmurnaghan"``.
    structure : str
        ``"diamond"``, ``"fcc"``, ``"bcc"``, ...
    method : dict
        Method record of the data (as in :class:`ReferenceDataset`).
    bulk_modulus_derivative : Estimate, optional
        B0' (dimensionless).
    """

    volumes: np.ndarray
    energies: np.ndarray
    a0: Estimate
    bulk_modulus: Estimate
    e0: Estimate
    form: str = "birchmurnaghan"
    structure: str = "diamond"
    method: dict = field(default_factory=dict)
    bulk_modulus_derivative: Estimate | None = None

    def __post_init__(self) -> None:
        v = finite_array("volumes", self.volumes, (None,))
        e = finite_array("energies", self.energies, (None,))
        if v.size < _MIN_POINTS:
            raise InputError("volumes", f"{v.size} points", f"at least {_MIN_POINTS} E(V) points")
        if e.size != v.size:
            raise InputError("energies", f"{e.size} values", f"{v.size} values (one per volume)")
        if np.any(v <= 0):
            raise InputError("volumes", v.tolist(), "positive volumes per atom (Å³)")
        setf(self, "volumes", ro_array(v))
        setf(self, "energies", ro_array(e))
        setf(self, "a0", estimate_in("a0", self.a0, "Å", ()))
        if self.a0.value <= 0:
            raise InputError("a0", self.a0.value, "a positive lattice constant (Å)")
        setf(self, "bulk_modulus", estimate_in("bulk_modulus", self.bulk_modulus, "GPa", ()))
        if self.bulk_modulus.value <= 0:
            raise InputError("bulk_modulus", self.bulk_modulus.value,
                             "a positive bulk modulus (GPa)", hint="the E(V) curve must be convex")
        setf(self, "e0", estimate_in("e0", self.e0, "eV", ()))
        one_of("form", self.form, _FORMS)
        check_str("structure", self.structure, allow_empty=False)
        setf(self, "method", str_dict("method", self.method))
        if self.bulk_modulus_derivative is not None:
            setf(self, "bulk_modulus_derivative",
                 estimate_in("bulk_modulus_derivative", self.bulk_modulus_derivative, "", ()))

    @property
    def v0(self) -> Estimate:
        """Equilibrium volume per atom (Å³), from a0 and the structure's atoms per cubic cell."""
        n = ATOMS_PER_CONVENTIONAL_CELL.get(self.structure)
        if n is None:
            raise InputError("structure", self.structure,
                             "one of " + ", ".join(ATOMS_PER_CONVENTIONAL_CELL))
        return self.a0 ** 3 / n

    def energy(self, volume_per_atom: Any) -> np.ndarray:
        """The fitted Birch-Murnaghan energy per atom (eV) at the given volumes (nominal)."""
        from ase.eos import birchmurnaghan

        v0 = float(self.v0.value)
        b = self.bulk_modulus.value / EV_PER_A3_IN_GPA
        bp = 4.0 if self.bulk_modulus_derivative is None else self.bulk_modulus_derivative.value
        return birchmurnaghan(np.asarray(volume_per_atom, float), self.e0.value, b, bp, v0)

    @classmethod
    def fit(cls, volumes_per_atom: Any, energies_per_atom: Any, structure: str = "diamond",
            method: dict | None = None,
            sources: Mapping[str, Any] | None = None) -> "EquationOfState":
        """Fit a Birch-Murnaghan equation of state (with ASE) to E(V) per atom.

        Parameters
        ----------
        volumes_per_atom : array_like, shape (m,)
            Å³ per atom, m >= 5; the energy minimum must lie inside the sampled range.
        energies_per_atom : array_like, shape (m,)
            eV per atom.
        structure : str
            Sets the atoms per cubic cell for ``a0 = (n V0)^(1/3)`` (diamond: 8).
        method : dict, optional
            Method record of the data.
        sources : dict, optional
            Sources of uncertainty of the data: ``name -> samples`` where samples is either an
            array ``(n, m)`` of alternative energies at the same volumes, or ``(n, 2, m)`` of
            alternative ``(volumes, energies)`` pairs.  Each sample is fitted in turn, giving the
            samples of a0, B0, E0 and B0' for that source.

        Returns
        -------
        EquationOfState
        """
        v = finite_array("volumes_per_atom", volumes_per_atom, (None,))
        e = finite_array("energies_per_atom", energies_per_atom, (None,))
        natoms = ATOMS_PER_CONVENTIONAL_CELL.get(structure)
        if natoms is None:
            raise InputError("structure", structure,
                             "one of " + ", ".join(ATOMS_PER_CONVENTIONAL_CELL),
                             hint="a0 needs the number of atoms in the cubic cell")
        _check_bracketed("volumes_per_atom", v, e)
        nominal = _fit_bm(v, e)
        _check_fit_inside("volumes_per_atom", v, nominal[0])
        srcs: dict[str, np.ndarray] = {}
        for name, samples in (sources or {}).items():
            arr = np.asarray(samples, dtype=float)
            if arr.ndim == 2 and arr.shape[1] == v.size:
                pairs = [(v, row) for row in arr]
            elif arr.ndim == 3 and arr.shape[1:] == (2, v.size):
                pairs = [(row[0], row[1]) for row in arr]
            else:
                raise InputError(f"sources[{name!r}]", f"array of shape {arr.shape}",
                                 f"shape (n, {v.size}) energies or (n, 2, {v.size}) "
                                 "(volumes, energies) pairs")
            fits = []
            for i, (vv, ee) in enumerate(pairs):
                field_name = f"sources[{name!r}][{i}]"
                _check_bracketed(field_name, vv, ee)
                fi = _fit_bm(vv, ee)
                _check_fit_inside(field_name, vv, fi[0])
                fits.append(fi)
            srcs[name] = np.array(fits)

        def pick(k: int) -> dict[str, np.ndarray]:
            return {n: s[:, k] for n, s in srcs.items()}

        a0_s = {n: (natoms * s[:, 0]) ** (1.0 / 3.0) for n, s in srcs.items()}
        return cls(volumes=v, energies=e,
                   a0=Estimate((natoms * nominal[0]) ** (1.0 / 3.0), "Å", a0_s),
                   bulk_modulus=Estimate(nominal[2], "GPa", pick(2)),
                   e0=Estimate(nominal[1], "eV", pick(1)),
                   form="birchmurnaghan", structure=structure, method=dict(method or {}),
                   bulk_modulus_derivative=Estimate(nominal[3], "", pick(3)))


def _check_bracketed(field_name: str, v: np.ndarray, e: np.ndarray) -> None:
    if v.size < _MIN_POINTS:
        raise InputError(field_name, f"{v.size} points", f"at least {_MIN_POINTS} E(V) points")
    if e.size != v.size:
        raise InputError("energies_per_atom", f"{e.size} values", f"{v.size} values (one per volume)")
    if np.any(v <= 0):
        raise InputError(field_name, v.tolist(), "positive volumes per atom (Å³)")
    order = np.argsort(v)
    i = int(np.argmin(e[order]))
    if i == 0 or i == v.size - 1:
        side = "smallest" if i == 0 else "largest"
        raise InputError(field_name, f"[{v.min():.4g}, {v.max():.4g}] Å³/atom",
                         "a volume range with the energy minimum inside it",
                         hint=f"the lowest energy is at the {side} volume; widen the volume range "
                              f"towards {'smaller' if i == 0 else 'larger'} volumes")


def _check_fit_inside(field_name: str, v: np.ndarray, v0: float) -> None:
    if not (v.min() < v0 < v.max()):
        raise InputError(field_name, f"[{v.min():.4g}, {v.max():.4g}] Å³/atom",
                         "a volume range containing the fitted minimum",
                         hint=f"the fitted V0 = {v0:.4g} Å³/atom lies outside; widen the volume range")
