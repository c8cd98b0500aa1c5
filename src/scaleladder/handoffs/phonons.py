"""Harmonic phonons of a crystal (frequencies on a q-mesh, DOS, thermal properties) and harmonic
transition-state-theory prefactors and rates.

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

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..core.codec import register
from ..core.errors import DomainWarning, InputError
from ..core.units import BOLTZMANN_EV
from ..core.validate import finite, finite_array, kmesh, nonnegative, positive
from ..uq import Estimate, propagate
from ._common import DataclassCodec, estimate_in, ro_array, setf, str_dict
from .potential import check_domain_warnings

__all__ = ["PhononProperties", "HarmonicTSTPrefactor", "harmonic_rate"]

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
    force_constants : array_like, shape (N, N, 3, 3), optional
        Real-space harmonic force constants of the supercell in eV/Å²,
        ``Φ[i, j, a, b] = ∂²E / ∂u_ia ∂u_jb`` (N = supercell atoms, phonopy's order); None in
        records written before this field existed.

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
    force_constants: np.ndarray | None = None

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
        if self.force_constants is not None:
            fc = finite_array("force_constants", self.force_constants)
            n_sc = int(round(abs(np.linalg.det(sm)))) * n_atoms
            if fc.shape != (n_sc, n_sc, 3, 3):
                raise InputError("force_constants", f"array of shape {fc.shape}",
                                 f"shape ({n_sc}, {n_sc}, 3, 3) (supercell atoms), eV/Å^2")
            setf(self, "force_constants", ro_array(fc))

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


#: Unit string of a frequency in THz (cycles per picosecond; core.units has no "Hz").
THZ = "1/ps"

#: Relative tolerance of the check prefactor == prod(minimum) / prod(saddle).
_PREFACTOR_RTOL = 1e-8


@register("HarmonicTSTPrefactor")
@dataclass(frozen=True, eq=False)
class HarmonicTSTPrefactor(DataclassCodec):
    """The harmonic transition-state-theory (Vineyard 1957) prefactor of one transition.

    ``ν* = Π_{i=1}^{3N-z} ν_i(minimum) / Π_{i=1}^{3N-z-1} ν_i(saddle)``, with ``z`` the zero
    modes removed (3 rigid translations of a periodic cell), so that the rate is
    ``k = ν* exp(-E_b / k_B T)`` (:func:`harmonic_rate`).  Frequencies are ordinary (cycles per
    second), not angular, in THz.

    Parameters
    ----------
    prefactor : Estimate
        Scalar ν*, unit convertible to THz (``"1/ps"``, stored so; ``"1/s"`` is converted).
        Must equal the ratio of the products of the stored frequencies (relative 1e-8).
    minimum_frequencies_THz : array_like, shape (3N - z,)
        The real normal-mode frequencies at the minimum, zero modes removed, all > 0 (THz).
    saddle_frequencies_THz : array_like, shape (3N - z - 1,)
        The real normal-mode frequencies at the saddle, zero modes and the unstable mode
        removed, all > 0 (THz).
    imaginary_frequency_THz : float
        Magnitude of the saddle's single imaginary frequency (THz, > 0): the curvature of the
        barrier top, ``|ν| = sqrt(|λ|)/2π`` with ``λ < 0`` the eigenvalue of the mass-weighted
        Hessian.
    n_zero_modes : int
        Zero modes removed (3 for a periodic cell: the rigid translations).
    n_atoms : int
        Atoms N of the (super)cell, the same at the minimum and the saddle.
    provenance : dict
        Free-form record of how it was obtained.
    domain_warnings : tuple of str, optional
        Where the minimum or the saddle lay outside the training domain of the fitted
        potential used (``()``: none).

    Raises
    ------
    InputError
        Lengths that do not agree with ``3 n_atoms - n_zero_modes``, non-positive or
        non-finite frequencies, a non-positive imaginary frequency, a prefactor whose unit is
        not a frequency or that disagrees with the frequencies.
    """

    prefactor: Estimate
    minimum_frequencies_THz: np.ndarray
    saddle_frequencies_THz: np.ndarray
    imaginary_frequency_THz: float
    n_zero_modes: int
    n_atoms: int
    provenance: dict = field(default_factory=dict)
    domain_warnings: tuple = ()

    def __post_init__(self) -> None:
        for name in ("n_atoms", "n_zero_modes"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (1 if name == "n_atoms" else 0):
                raise InputError(name, v, "a positive integer" if name == "n_atoms"
                                 else "a non-negative integer")
            setf(self, name, int(v))
        n_real = 3 * self.n_atoms - self.n_zero_modes
        if n_real < 2:
            raise InputError("n_zero_modes", self.n_zero_modes,
                             f"at most 3 n_atoms - 2 = {3 * self.n_atoms - 2} zero modes")
        fmin = finite_array("minimum_frequencies_THz", self.minimum_frequencies_THz, (n_real,))
        fsad = finite_array("saddle_frequencies_THz", self.saddle_frequencies_THz, (n_real - 1,))
        for name, f in (("minimum_frequencies_THz", fmin), ("saddle_frequencies_THz", fsad)):
            if np.any(f <= 0):
                raise InputError(name, f"min {f.min():.6g} THz", "real, non-zero frequencies "
                                 "(THz > 0); zero and imaginary modes are removed before")
        setf(self, "minimum_frequencies_THz", ro_array(np.sort(fmin)))
        setf(self, "saddle_frequencies_THz", ro_array(np.sort(fsad)))
        setf(self, "imaginary_frequency_THz",
             positive("imaginary_frequency_THz", self.imaginary_frequency_THz))
        pre = estimate_in("prefactor", self.prefactor, THZ, (), allow_plain=False)
        expect = math.exp(float(np.log(fmin).sum() - np.log(fsad).sum()))
        if not np.isfinite(pre.value) or abs(float(pre.value) - expect) > _PREFACTOR_RTOL * expect:
            raise InputError("prefactor", str(pre), f"the Vineyard ratio of the stored "
                             f"frequencies, {expect:.8g} THz")
        setf(self, "prefactor", pre)
        setf(self, "provenance", str_dict("provenance", self.provenance))
        setf(self, "domain_warnings", check_domain_warnings("domain_warnings", self.domain_warnings))

    @property
    def prefactor_THz(self) -> float:
        """Nominal ν* in THz."""
        return float(self.prefactor.value)

    @property
    def log_prefactor_THz(self) -> float:
        """``ln(ν* / 1 THz)``, from the frequencies (no overflow for any cell size)."""
        return float(np.log(self.minimum_frequencies_THz).sum()
                     - np.log(self.saddle_frequencies_THz).sum())

    def rate(self, barrier: Estimate, temperature_K: float) -> Estimate:
        """``ν* exp(-E_b / k_B T)`` in 1/s (see :func:`harmonic_rate`)."""
        return harmonic_rate(self, barrier, temperature_K)

    def __str__(self) -> str:
        return (f"HarmonicTSTPrefactor({self.n_atoms} atoms, {self.n_zero_modes} zero modes "
                f"removed): nu* = {self.prefactor} (THz), imaginary mode "
                f"{self.imaginary_frequency_THz:.4g}i THz")


def harmonic_rate(prefactor, barrier: Estimate, temperature_K: float) -> Estimate:
    """Harmonic transition-state-theory rate ``k = ν* exp(-E_b / (k_B T))`` in 1/s.

    Parameters
    ----------
    prefactor : HarmonicTSTPrefactor or Estimate
        ν*; an Estimate must have a frequency unit (``"1/ps"`` = THz, ``"1/s"``, ...).
    barrier : Estimate or MigrationBarrier
        Scalar barrier ``E_saddle - E_minimum``, unit convertible to eV, >= 0 (a
        ``MigrationBarrier`` gives its forward barrier).
    temperature_K : float
        Temperature (K), > 0.

    Returns
    -------
    Estimate
        Scalar rate in ``"1/s"`` (jumps per second), the uncertainty sources of ν* and of the
        barrier propagated (shared sources stay correlated, see :func:`scaleladder.uq.propagate`).

    Raises
    ------
    InputError
        A plain number (units unknown), a unit that is not a frequency / an energy, a negative
        barrier or a non-positive or non-finite temperature.
    """
    if isinstance(prefactor, HarmonicTSTPrefactor):
        pre = prefactor.prefactor
    else:
        pre = prefactor
    pre = estimate_in("prefactor", pre, "1/s", (), allow_plain=False)
    if not pre.value > 0:
        raise InputError("prefactor", str(pre), "a positive attempt frequency")
    eb = barrier.value if isinstance(getattr(barrier, "value", None), Estimate) else barrier
    eb = estimate_in("barrier", eb, "eV", (), allow_plain=False)
    if eb.value < 0:
        raise InputError("barrier", str(eb), "a barrier >= 0 eV")
    t = finite("temperature_K", temperature_K)
    if t <= 0:
        raise InputError("temperature_K", temperature_K, "a temperature > 0 K")
    kt = BOLTZMANN_EV * t

    def rate(nu, e):
        return nu * np.exp(-e / kt)

    return propagate(rate, pre, eb, unit="1/s")
