"""Point-defect energetics: vacancy formation energies and migration barriers (eV).

Both artifacts carry their energies as :class:`~scaleladder.uq.Estimate` in eV, are frozen,
validated when built (``InputError`` naming the field and the value) and codec-registered.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.codec import register
from ..core.errors import InputError
from ..core.validate import finite_array, positive_int
from ..uq import Estimate
from ._common import (DataclassCodec, check_bool, check_str, estimate_in, ro_array, setf,
                      str_dict)
from .potential import check_domain_warnings

__all__ = ["VacancyFormationEnergy", "MigrationBarrier"]

#: Tolerance (eV) of the consistency checks between a barrier and its band energies.
ENERGY_ATOL = 1e-6


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


@register("VacancyFormationEnergy")
@dataclass(frozen=True, eq=False)
class VacancyFormationEnergy(DataclassCodec):
    """Formation energy of a vacancy, ``E_f = E(N-1) - (N-1)/N E(N)``.

    Parameters
    ----------
    value : Estimate
        Scalar formation energy, unit convertible to eV (stored in eV).  Must be finite and
        positive: a negative value means the perfect crystal is not the ground state (or the
        bulk reference is wrong).
    relaxed : bool
        True if the atoms around the vacancy were relaxed (at fixed cell).
    structure : str
        Bulk structure or formula, e.g. ``"fcc Cu"``.
    supercell_atoms : int
        Number of atoms ``N`` of the perfect supercell (>= 2); the defective cell has ``N - 1``.
    provenance : dict
        Free-form record of how it was obtained.
    domain_warnings : tuple of str, optional
        Where the configurations lay outside the training domain of the fitted potential used
        (``()``: none, or not a fitted potential).  Older records decode with ``()``.

    Raises
    ------
    InputError
        Non-scalar, non-finite or non-positive ``value``, a unit that is not an energy, or
        ``supercell_atoms`` < 2.
    """

    value: Estimate
    relaxed: bool = True
    structure: str = ""
    supercell_atoms: int = 2
    provenance: dict = field(default_factory=dict)
    domain_warnings: tuple = ()

    def __post_init__(self) -> None:
        val = estimate_in("value", self.value, "eV", (), allow_plain=False)
        if not np.isfinite(val.value):
            raise InputError("value", str(val), "a finite vacancy formation energy (eV)")
        if val.value <= 0:
            raise InputError("value", str(val), "a positive vacancy formation energy (eV)",
                             hint="a negative formation energy means the crystal is unstable "
                                  "against vacancies, or the bulk reference energy is wrong")
        setf(self, "value", val)
        check_bool("relaxed", self.relaxed)
        setf(self, "relaxed", bool(self.relaxed))
        check_str("structure", self.structure)
        setf(self, "supercell_atoms", positive_int("supercell_atoms", self.supercell_atoms, 2))
        setf(self, "provenance", str_dict("provenance", self.provenance))
        setf(self, "domain_warnings", check_domain_warnings("domain_warnings", self.domain_warnings))

    def __str__(self) -> str:
        kind = "relaxed" if self.relaxed else "unrelaxed"
        return (f"VacancyFormationEnergy({self.structure or 'unknown structure'}, {kind}, "
                f"N={self.supercell_atoms}): {self.value}")


@register("MigrationBarrier")
@dataclass(frozen=True, eq=False)
class MigrationBarrier(DataclassCodec):
    """A minimum-energy path between two states and its barriers (eV).

    Parameters
    ----------
    value : Estimate
        Forward barrier ``E_saddle - E_initial`` (unit convertible to eV; stored in eV), >= 0.
    reverse : Estimate
        Reverse barrier ``E_saddle - E_final`` (stored in eV), >= 0.
    path_energies : array_like, shape (m,)
        Energies of the images along the band, initial and final states included (m >= 3), in
        eV relative to the initial state (so ``path_energies[0] == 0``).
    reaction_coordinate : array_like, shape (m,)
        Cumulative distance along the band (Å), starting at 0 and non-decreasing.
    saddle_index : int
        Index of the saddle image in ``path_energies`` (an interior image, 1..m-2), the highest
        one.
    method : str
        How the path was found, e.g. ``"CI-NEB improvedtangent"``.
    provenance : dict
        Free-form record of how it was obtained.
    domain_warnings : tuple of str, optional
        Where the images of the band lay outside the training domain of the fitted potential
        used (``()``: none, or not a fitted potential).  Older records decode with ``()``.

    Raises
    ------
    InputError
        A barrier below zero or non-finite (names the field and value), arrays of the wrong
        shape or with NaN/inf, ``path_energies[0]`` not 0, a reaction coordinate that does not
        start at 0 or decreases, a ``saddle_index`` that is not the highest interior image, or
        barriers inconsistent with ``path_energies`` (beyond ``ENERGY_ATOL`` = 1e-6 eV).
    """

    value: Estimate
    reverse: Estimate
    path_energies: np.ndarray
    reaction_coordinate: np.ndarray
    saddle_index: int
    method: str = ""
    provenance: dict = field(default_factory=dict)
    domain_warnings: tuple = ()

    def __post_init__(self) -> None:
        for name in ("value", "reverse"):
            val = estimate_in(name, getattr(self, name), "eV", (), allow_plain=False)
            if not np.isfinite(val.value):
                raise InputError(name, str(val), "a finite barrier (eV)")
            if val.value < 0:
                raise InputError(name, str(val), "a barrier >= 0 eV",
                                 hint="the saddle lies below an end state: the end states are "
                                      "not minima or the band is not converged")
            setf(self, name, val)
        e = finite_array("path_energies", self.path_energies, (None,))
        s = finite_array("reaction_coordinate", self.reaction_coordinate, (None,))
        if len(e) < 3:
            raise InputError("path_energies", f"{len(e)} values",
                             "at least 3 images (initial, one interior image, final)")
        if len(s) != len(e):
            raise InputError("reaction_coordinate", f"{len(s)} values",
                             f"one value per image ({len(e)}, as path_energies)")
        if abs(e[0]) > ENERGY_ATOL:
            raise InputError("path_energies", f"path_energies[0]={e[0]:.6g}",
                             "energies relative to the initial state (first value 0)")
        if abs(s[0]) > 1e-9 or np.any(np.diff(s) < 0):
            raise InputError("reaction_coordinate", s.tolist(),
                             "a cumulative distance starting at 0 and non-decreasing (Å)")
        k = self.saddle_index
        if not _is_int(k) or not 1 <= k <= len(e) - 2:
            raise InputError("saddle_index", k, f"an interior image index in [1, {len(e) - 2}]")
        k = int(k)
        if e[k] < e[1:-1].max() - ENERGY_ATOL:
            raise InputError("saddle_index", k, "the highest interior image "
                             f"(image {int(np.argmax(e[1:-1])) + 1})",
                             hint=f"E[{k}]={e[k]:.6g} eV < max {e[1:-1].max():.6g} eV")
        if abs(self.value.value - e[k]) > ENERGY_ATOL:
            raise InputError("value", str(self.value),
                             f"the forward barrier path_energies[{k}] = {e[k]:.6g} eV")
        if abs(self.reverse.value - (e[k] - e[-1])) > ENERGY_ATOL:
            raise InputError("reverse", str(self.reverse),
                             f"the reverse barrier path_energies[{k}] - path_energies[-1] = "
                             f"{e[k] - e[-1]:.6g} eV")
        setf(self, "path_energies", ro_array(e))
        setf(self, "reaction_coordinate", ro_array(s))
        setf(self, "saddle_index", k)
        check_str("method", self.method)
        setf(self, "provenance", str_dict("provenance", self.provenance))
        setf(self, "domain_warnings", check_domain_warnings("domain_warnings", self.domain_warnings))

    @property
    def forward(self) -> Estimate:
        """Alias of ``value``: the forward barrier (eV)."""
        return self.value

    def with_barriers(self, forward: Any, reverse: Any) -> "MigrationBarrier":
        """The same path with other barriers (Estimates in an energy unit) — e.g. one sample of an
        uncertainty source: the interior images scaled with the forward barrier, the saddle at
        ``forward`` and the final state at ``forward - reverse``, so the path stays consistent."""
        fwd = estimate_in("forward", forward, "eV", ())
        rev = estimate_in("reverse", reverse, "eV", ())
        e = np.array(self.path_energies, float)
        k = self.saddle_index
        if e[k] != 0:
            e[1:-1] *= float(fwd.value) / e[k]
        e[k], e[-1] = float(fwd.value), float(fwd.value) - float(rev.value)
        return self.replace(value=fwd, reverse=rev, path_energies=e)

    @property
    def reaction_energy(self) -> float:
        """``E_final - E_initial`` (eV, nominal)."""
        return float(self.path_energies[-1])

    @property
    def n_images(self) -> int:
        """Number of interior images of the band."""
        return len(self.path_energies) - 2

    def __str__(self) -> str:
        return (f"MigrationBarrier({self.method or 'unknown method'}, {self.n_images} images): "
                f"forward {self.value}, reverse {self.reverse}")
