"""Elastic stiffness tensor (Voigt 6x6, GPa) with its uncertainty.

Voigt order ``xx, yy, zz, yz, xz, xy`` (1..6).  The stiffness maps engineering strain
``(e_xx, e_yy, e_zz, 2e_yz, 2e_xz, 2e_xy)`` to stress, so the fourth-rank tensor is
``C_ijkl = C[v(ij), v(kl)]`` with no extra factors (factors of 2 belong to the compliance).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ..core import units as _units
from ..core.codec import register
from ..core.tensors import check_rotations, rotate_voigt
from ..core.errors import InputError, StabilityError
from ..core.validate import finite, finite_array
from ..uq import Estimate, propagate
from ._common import DataclassCodec, check_bool, check_str, estimate_in, setf, str_dict
from .potential import check_domain_warnings

__all__ = ["ElasticTensor"]

SYMMETRY_RTOL = 1e-6


def _vrh(c: np.ndarray) -> np.ndarray:
    """[B_V, B_R, B_H, G_V, G_R, G_H, E_H, nu_H] of a Voigt stiffness (GPa)."""
    s = np.linalg.inv(c)
    bv = (c[0, 0] + c[1, 1] + c[2, 2] + 2 * (c[0, 1] + c[0, 2] + c[1, 2])) / 9
    gv = (c[0, 0] + c[1, 1] + c[2, 2] - (c[0, 1] + c[0, 2] + c[1, 2])
          + 3 * (c[3, 3] + c[4, 4] + c[5, 5])) / 15
    br = 1.0 / (s[0, 0] + s[1, 1] + s[2, 2] + 2 * (s[0, 1] + s[0, 2] + s[1, 2]))
    gr = 15.0 / (4 * (s[0, 0] + s[1, 1] + s[2, 2]) - 4 * (s[0, 1] + s[0, 2] + s[1, 2])
                 + 3 * (s[3, 3] + s[4, 4] + s[5, 5]))
    bh, gh = 0.5 * (bv + br), 0.5 * (gv + gr)
    e = 9 * bh * gh / (3 * bh + gh)
    nu = (3 * bh - 2 * gh) / (2 * (3 * bh + gh))
    return np.array([bv, br, bh, gv, gr, gh, e, nu])


@register("ElasticTensor")
@dataclass(frozen=True, eq=False)
class ElasticTensor(DataclassCodec):
    """A symmetric, Born-stable elastic stiffness tensor in GPa (Voigt 6x6 Estimate).

    Parameters
    ----------
    voigt : Estimate
        6x6, any pressure unit (stored converted to GPa).  Symmetric within a relative tolerance of
        1e-6 (then symmetrised exactly, samples too) and positive definite (Born stability).
    relaxed_ions : bool
        True for relaxed-ion (internal relaxation) constants, False for clamped-ion.
    temperature_K : float
        Temperature the constants refer to (0 for static lattice).
    structure : str
        Crystal structure / orientation note, e.g. ``"diamond"``.
    provenance : dict
        Free-form record of how it was obtained.
    domain_warnings : tuple of str, optional
        Where the configurations it was computed from lay outside the training domain of the
        fitted potential used (``()``: none, or not a fitted potential).  Records written
        before this field existed decode with ``()``.

    Raises
    ------
    InputError
        Wrong shape or unit, asymmetric matrix (names the largest asymmetry and its indices).
    StabilityError
        Not positive definite (names the eigenvalues).

    Notes
    -----
    Only the nominal tensor is checked for Born stability; ensemble samples are not.
    """

    voigt: Estimate
    relaxed_ions: bool
    temperature_K: float = 0.0
    structure: str = ""
    provenance: dict = field(default_factory=dict)
    domain_warnings: tuple = ()

    def __post_init__(self) -> None:
        v = estimate_in("voigt", self.voigt, "GPa", (6, 6))
        c = np.asarray(v.value)
        scale = float(np.abs(c).max())
        if scale == 0.0:
            raise StabilityError("voigt", "all-zero matrix", "a positive definite 6x6 stiffness")
        _check_symmetric("voigt", c, scale)
        for name, s in v.sources.items():
            asym = np.abs(s - np.swapaxes(s, 1, 2)).max(axis=(1, 2))
            k = int(np.argmax(asym))
            if asym[k] > SYMMETRY_RTOL * scale:
                _check_symmetric(f"voigt.sources[{name!r}][{k}]", s[k], scale)
        sym = Estimate(0.5 * (c + c.T), "GPa",
                       {n: 0.5 * (s + np.swapaxes(s, 1, 2)) for n, s in v.sources.items()})
        eig = np.linalg.eigvalsh(np.asarray(sym.value))
        if np.any(eig <= 0):
            raise StabilityError("voigt", "eigenvalues " + ", ".join(f"{x:.6g}" for x in eig) + " GPa",
                                 "a positive definite stiffness (all eigenvalues > 0: Born stability)",
                                 hint="the structure is mechanically unstable, or the constants are "
                                      "wrong (sign convention, units, unrelaxed ions)")
        setf(self, "voigt", sym)
        check_bool("relaxed_ions", self.relaxed_ions)
        setf(self, "relaxed_ions", bool(self.relaxed_ions))
        t = finite("temperature_K", self.temperature_K)
        if t < 0:
            raise InputError("temperature_K", t, "a temperature >= 0 K")
        setf(self, "temperature_K", t)
        check_str("structure", self.structure)
        setf(self, "provenance", str_dict("provenance", self.provenance))
        setf(self, "domain_warnings", check_domain_warnings("domain_warnings", self.domain_warnings))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_voigt(cls, matrix: Any, unit: str = "GPa", *, relaxed_ions: bool,
                   temperature_K: float = 0.0, structure: str = "",
                   provenance: dict | None = None,
                   domain_warnings: tuple = ()) -> "ElasticTensor":
        """Build from a 6x6 matrix or Estimate in ``unit`` (converted to GPa).

        If ``matrix`` is an Estimate its own unit is used (``unit`` must then be compatible).
        """
        if isinstance(matrix, Estimate):
            if not _units.same_dimension(matrix.unit, unit):
                raise InputError("unit", unit, f"a unit compatible with the Estimate's {matrix.unit!r}")
            est = matrix
        else:
            arr = finite_array("matrix", matrix, (6, 6))
            est = Estimate(arr, unit)
        if not _units.same_dimension(est.unit, "GPa"):
            raise InputError("unit", est.unit, "a pressure unit (GPa, Pa, eV/Å^3, ...)")
        return cls(est.to("GPa"), relaxed_ions=relaxed_ions, temperature_K=temperature_K,
                   structure=structure, provenance=dict(provenance or {}),
                   domain_warnings=domain_warnings)

    @classmethod
    def from_cubic(cls, c11: Any, c12: Any, c44: Any, unit: str = "GPa", **meta: Any) -> "ElasticTensor":
        """Build a cubic tensor from C11, C12, C44 (numbers in ``unit`` or Estimates)."""
        def build(a, b, d):
            c = np.zeros((6, 6))
            c[:3, :3] = b
            c[[0, 1, 2], [0, 1, 2]] = a
            c[[3, 4, 5], [3, 4, 5]] = d
            return c

        args = [x.to(unit) if isinstance(x, Estimate) else x for x in (c11, c12, c44)]
        return cls.from_voigt(propagate(build, *args, unit=unit), unit, **meta)

    # -- components ---------------------------------------------------------------------------
    @property
    def C11(self) -> Estimate:
        """``C[0,0]`` (GPa)."""
        return self.voigt[0, 0]

    @property
    def C12(self) -> Estimate:
        """``C[0,1]`` (GPa)."""
        return self.voigt[0, 1]

    @property
    def C44(self) -> Estimate:
        """``C[3,3]`` (GPa)."""
        return self.voigt[3, 3]

    def cubic_averaged(self) -> tuple[Estimate, Estimate, Estimate]:
        """C11, C12, C44 averaged over their cubic-symmetry-equivalent elements (GPa)."""
        def avg(c):
            return np.array([(c[0, 0] + c[1, 1] + c[2, 2]) / 3,
                             (c[0, 1] + c[0, 2] + c[1, 2]) / 3,
                             (c[3, 3] + c[4, 4] + c[5, 5]) / 3])

        e = propagate(avg, self.voigt, unit="GPa")
        return e[0], e[1], e[2]

    # -- moduli -------------------------------------------------------------------------------
    @cached_property
    def _moduli(self) -> Estimate:
        return propagate(_vrh, self.voigt, unit="GPa")

    def _mod(self, i: int, unit: str = "GPa") -> Estimate:
        e = self._moduli[i]
        return e if unit == "GPa" else Estimate(e.value, unit, e.sources)

    @property
    def bulk_modulus_voigt(self) -> Estimate:
        return self._mod(0)

    @property
    def bulk_modulus_reuss(self) -> Estimate:
        return self._mod(1)

    @property
    def bulk_modulus_vrh(self) -> Estimate:
        """Voigt-Reuss-Hill bulk modulus (GPa)."""
        return self._mod(2)

    @property
    def shear_modulus_voigt(self) -> Estimate:
        return self._mod(3)

    @property
    def shear_modulus_reuss(self) -> Estimate:
        return self._mod(4)

    @property
    def shear_modulus_vrh(self) -> Estimate:
        """Voigt-Reuss-Hill shear modulus (GPa)."""
        return self._mod(5)

    @property
    def youngs_modulus_vrh(self) -> Estimate:
        """Isotropic Young's modulus from the Hill averages, ``9BG/(3B+G)`` (GPa)."""
        return self._mod(6)

    @property
    def poisson_ratio_vrh(self) -> Estimate:
        """Isotropic Poisson ratio from the Hill averages, ``(3B-2G)/(2(3B+G))``."""
        return self._mod(7, "")

    @property
    def compliance(self) -> Estimate:
        """Voigt compliance ``S = C^-1`` (1/GPa; engineering shear strains)."""
        return propagate(np.linalg.inv, self.voigt, unit="1/GPa")

    # -- transforms ---------------------------------------------------------------------------
    def rotated(self, R: Any) -> "ElasticTensor":
        """The tensor in a rotated frame (``R``: rows = new axes in the old frame, det +1)."""
        r = check_rotations("R", R)
        prov = dict(self.provenance)
        prov["rotated_by"] = r.tolist() if "rotated_by" not in prov else \
            (r @ np.asarray(prov["rotated_by"])).tolist()
        return ElasticTensor(propagate(rotate_voigt, self.voigt, r, unit="GPa"),
                             relaxed_ions=self.relaxed_ions, temperature_K=self.temperature_K,
                             structure=self.structure, provenance=prov,
                             domain_warnings=self.domain_warnings)

    def to_pa(self) -> np.ndarray:
        """Nominal Voigt stiffness in Pa (a new writable array)."""
        return np.asarray(self.voigt.value) * 1e9

    def __str__(self) -> str:
        c11, c12, c44 = self.C11, self.C12, self.C44
        kind = "relaxed-ion" if self.relaxed_ions else "clamped-ion"
        return (f"ElasticTensor({self.structure or 'unknown structure'}, {kind}, "
                f"{self.temperature_K:g} K): C11 = {c11}, C12 = {c12}, C44 = {c44}, "
                f"B_VRH = {self.bulk_modulus_vrh}, G_VRH = {self.shear_modulus_vrh}")


def _check_symmetric(field_name: str, c: np.ndarray, scale: float) -> None:
    d = np.abs(c - c.T)
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    if d[i, j] > SYMMETRY_RTOL * scale:
        raise InputError(field_name, f"C[{i},{j}]={c[i, j]:.6g} vs C[{j},{i}]={c[j, i]:.6g}",
                         f"a symmetric matrix (max asymmetry {d[i, j]:.3g} at indices ({i}, {j}) "
                         f"exceeds {SYMMETRY_RTOL:g} x max|C| = {SYMMETRY_RTOL * scale:.3g})")
