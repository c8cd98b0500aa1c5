"""Harmonic phonons of a crystal: frequencies on a q-mesh, DOS and thermal properties.

The artifact is frozen, validated when built (``InputError`` naming the field and the value) and
codec-registered.  Units are explicit in the field names or in the Estimates: frequencies in THz
(cycles per second, not angular), temperatures in K, the free energy in eV per atom and the
entropy and heat capacity in eV/K per atom.

Imaginary modes (stored, as phonopy does, as negative frequencies) beyond
``imaginary_tolerance_THz`` at q-points other than Γ mean a dynamically unstable structure (or a
badly relaxed one); they are kept, counted in ``provenance["imaginary_modes"]`` and raise a
:class:`~scaleladder.core.errors.DomainWarning` -- never silently dropped.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..core.codec import register
from ..core.errors import DomainWarning, InputError
from ..core.validate import finite_array, kmesh, nonnegative
from ..uq import Estimate
from ._common import DataclassCodec, estimate_in, ro_array, setf, str_dict

__all__ = ["PhononProperties"]

#: Default tolerance (THz) below which a negative frequency counts as numerical noise.
IMAGINARY_TOL_THZ = 0.05


@register("PhononProperties")
@dataclass(frozen=True, eq=False)
class PhononProperties(DataclassCodec):
    """Harmonic phonons of a crystal and its harmonic thermal properties.

    Parameters
    ----------
    supercell_matrix : array_like, shape (3, 3)
        Integer matrix of the supercell used for the force constants (non-singular).
    mesh : tuple of 3 int
        The q-point mesh.
    qpoints : array_like, shape (n_q, 3)
        The (irreducible) q-points of the mesh, reduced coordinates.
    weights : array_like, shape (n_q,)
        Integer multiplicities of ``qpoints`` (sum = number of mesh points).
    frequencies_THz : array_like, shape (n_q, n_modes)
        Frequencies at ``qpoints`` in THz (negative = imaginary); ``n_modes = 3 n_atoms``.
    dos_frequencies_THz, dos : array_like, shape (n_f,)
        Total phonon density of states (states/THz per cell) on a frequency grid (THz).
    temperatures_K : array_like, shape (n_T,)
        Temperatures (K), >= 0 and increasing.
    free_energy : Estimate, shape (n_T,)
        Harmonic Helmholtz free energy (zero-point included) per atom, unit convertible to eV.
    entropy : Estimate, shape (n_T,)
        Vibrational entropy per atom, unit convertible to eV/K.
    heat_capacity : Estimate, shape (n_T,)
        Constant-volume heat capacity per atom, unit convertible to eV/K (>= 0).
    gamma_frequencies_THz : array_like, shape (n_modes,)
        Frequencies at Γ (THz), ascending.
    n_atoms : int
        Atoms in the unit cell the phonons were computed for (``n_modes / 3``).
    imaginary_tolerance_THz : float
        Negative frequencies smaller in magnitude than this are numerical noise (>= 0).
    provenance : dict
        Free-form record; ``"imaginary_modes"`` (count at non-Γ q-points beyond the tolerance)
        and ``"min_frequency_THz"`` are set on validation.

    Raises
    ------
    InputError
        Shapes that do not agree, non-finite values, units that are not eV / eV/K, temperatures
        that are negative or not increasing, a negative heat capacity, a singular supercell matrix.

    Warns
    -----
    DomainWarning
        Imaginary modes beyond the tolerance at q-points other than Γ.
    """

    supercell_matrix: np.ndarray
    mesh: tuple
    qpoints: np.ndarray
    weights: np.ndarray
    frequencies_THz: np.ndarray
    dos_frequencies_THz: np.ndarray
    dos: np.ndarray
    temperatures_K: np.ndarray
    free_energy: Estimate
    entropy: Estimate
    heat_capacity: Estimate
    gamma_frequencies_THz: np.ndarray
    n_atoms: int
    imaginary_tolerance_THz: float = IMAGINARY_TOL_THZ
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        sm = finite_array("supercell_matrix", self.supercell_matrix)
        if sm.shape == (3,):
            sm = np.diag(sm)
        if sm.shape != (3, 3) or not np.allclose(sm, np.round(sm)):
            raise InputError("supercell_matrix", sm.tolist(), "a 3x3 integer matrix (or 3 integers)")
        if abs(np.linalg.det(sm)) < 0.5:
            raise InputError("supercell_matrix", sm.tolist(), "a non-singular matrix")
        setf(self, "supercell_matrix", ro_array(np.round(sm), dtype=np.int64))
        setf(self, "mesh", kmesh("mesh", self.mesh))
        n_atoms = self.n_atoms
        if isinstance(n_atoms, bool) or not isinstance(n_atoms, (int, np.integer)) or n_atoms < 1:
            raise InputError("n_atoms", n_atoms, "a positive integer")
        n_atoms = int(n_atoms)
        setf(self, "n_atoms", n_atoms)
        n_modes = 3 * n_atoms

        q = finite_array("qpoints", self.qpoints, (None, 3))
        n_q = len(q)
        if n_q == 0:
            raise InputError("qpoints", "0 q-points", "at least one q-point")
        w = finite_array("weights", self.weights, (n_q,))
        if np.any(w < 1) or not np.allclose(w, np.round(w)):
            raise InputError("weights", w.tolist(), "positive integer multiplicities, one per q-point")
        if int(round(w.sum())) != int(np.prod(self.mesh)):
            raise InputError("weights", f"sum {int(round(w.sum()))}",
                             f"the number of mesh points {int(np.prod(self.mesh))}")
        f = finite_array("frequencies_THz", self.frequencies_THz, (n_q, n_modes))
        fd = finite_array("dos_frequencies_THz", self.dos_frequencies_THz, (None,))
        d = finite_array("dos", self.dos, (len(fd),))
        g = finite_array("gamma_frequencies_THz", self.gamma_frequencies_THz, (n_modes,))
        t = finite_array("temperatures_K", self.temperatures_K, (None,))
        if len(t) == 0 or np.any(t < 0) or np.any(np.diff(t) <= 0):
            raise InputError("temperatures_K", t.tolist(), "temperatures >= 0 K, increasing")
        n_t = len(t)
        for name, unit in (("free_energy", "eV"), ("entropy", "eV/K"), ("heat_capacity", "eV/K")):
            est = estimate_in(name, getattr(self, name), unit, (n_t,), allow_plain=False)
            if not np.all(np.isfinite(est.value)):
                raise InputError(name, str(est), "finite values")
            setf(self, name, est)
        if np.any(self.heat_capacity.value < -1e-12):
            raise InputError("heat_capacity", self.heat_capacity.value.tolist(),
                             "a non-negative heat capacity (eV/K per atom)")
        tol = nonnegative("imaginary_tolerance_THz", self.imaginary_tolerance_THz)

        setf(self, "qpoints", ro_array(q))
        setf(self, "weights", ro_array(np.round(w), dtype=np.int64))
        setf(self, "frequencies_THz", ro_array(f))
        setf(self, "dos_frequencies_THz", ro_array(fd))
        setf(self, "dos", ro_array(d))
        setf(self, "gamma_frequencies_THz", ro_array(g))
        setf(self, "temperatures_K", ro_array(t))
        setf(self, "imaginary_tolerance_THz", tol)

        prov = str_dict("provenance", self.provenance)
        is_gamma = np.all(np.abs(q - np.round(q)) < 1e-8, axis=1)
        bad = f[~is_gamma] < -tol
        n_bad = int(bad.sum())
        prov["imaginary_modes"] = n_bad
        prov["min_frequency_THz"] = float(f.min())
        setf(self, "provenance", prov)
        if n_bad:
            warnings.warn(f"PhononProperties: {n_bad} imaginary mode(s) below -{tol:g} THz at "
                          f"q-points other than Γ (min {f.min():.4g} THz): the structure is "
                          "dynamically unstable or not relaxed; its thermal properties exclude "
                          "those modes", DomainWarning, stacklevel=3)

    @property
    def n_modes(self) -> int:
        return 3 * self.n_atoms

    @property
    def max_frequency_THz(self) -> float:
        return float(self.frequencies_THz.max())

    def __str__(self) -> str:
        m = "x".join(str(x) for x in self.mesh)
        return (f"PhononProperties({self.n_atoms} atoms, mesh {m}, "
                f"{len(self.temperatures_K)} temperatures, "
                f"max {self.max_frequency_THz:.3f} THz)")
