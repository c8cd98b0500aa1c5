"""Harmonic phonons and the harmonic free energy of a crystal, through phonopy.

:func:`phonons` takes an :class:`ase.Atoms` (the unit cell, ideally relaxed) and any ASE
calculator, builds finite-displacement supercells with phonopy, computes the forces with the
calculator, and returns a :class:`~scaleladder.handoffs.PhononProperties`: frequencies on a
Γ-centred q-mesh (THz), the total DOS, and the harmonic free energy (eV/atom), entropy and heat
capacity (eV/K/atom).

phonopy is an optional dependency (``pip install 'scaleladder[phonons]'``).  Its thermal
properties are per unit cell in kJ/mol and J/K/mol; they are converted once, here, with the
constants of :mod:`scaleladder.core.units`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core import validate
from ..core.errors import CalculationError, InputError, MissingExtraError
from ..core.units import AVOGADRO, ELEMENTARY_CHARGE
from ..handoffs.phonons import IMAGINARY_TOL_THZ, PhononProperties
from ..uq import Estimate
from .properties import _check_calc, _check_periodic_cell

__all__ = ["phonons", "attempt_frequency"]

#: 1 eV per particle in J/mol
_EV_IN_J_PER_MOL = ELEMENTARY_CHARGE * AVOGADRO

DEFAULT_TEMPERATURES = (0.0, 100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 800.0, 1000.0)


def _import_phonopy():
    try:
        from phonopy import Phonopy
        from phonopy.structure.atoms import PhonopyAtoms
    except ImportError:
        raise MissingExtraError("phonopy", "phonons", "phonon calculations") from None
    return Phonopy, PhonopyAtoms


def _supercell_matrix(value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value)
        num = arr.astype(float)
    except (TypeError, ValueError):
        raise InputError("supercell", value, "three positive integers or a 3x3 integer matrix") from None
    if arr.shape == (3,):
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value) \
                or np.any(num < 1):
            raise InputError("supercell", tuple(value), "three positive integers, e.g. (2, 2, 2)",
                             hint="a zero or negative repetition gives no supercell")
        return np.diag(num.astype(int))
    if arr.shape != (3, 3) or not np.all(np.isfinite(num)) or not np.allclose(num, np.round(num)):
        raise InputError("supercell", value, "three positive integers or a 3x3 integer matrix")
    if round(np.linalg.det(num)) < 1:
        raise InputError("supercell", num.tolist(), "an integer matrix with positive determinant")
    return np.round(num).astype(int)


def phonons(atoms, calc, supercell=(2, 2, 2), displacement: float = 0.01, mesh=(12, 12, 12),
            temperatures=DEFAULT_TEMPERATURES, symmetrize: bool = True,
            imaginary_tolerance_THz: float = IMAGINARY_TOL_THZ) -> PhononProperties:
    """Harmonic phonons of ``atoms`` with ``calc`` by finite displacements (phonopy).

    Parameters
    ----------
    atoms : ase.Atoms
        The unit cell (periodic in 3D), at its equilibrium; it is not relaxed here.  Thermal
        properties are normalised by ``len(atoms)``.
    calc : ase Calculator
        Provides the forces (eV/Å).
    supercell : 3 ints or 3x3 int matrix, default (2, 2, 2)
        Supercell of the force constants (in multiples of ``atoms.cell``).
    displacement : float, default 0.01
        Finite displacement (Å), > 0.
    mesh : int or 3 ints, default (12, 12, 12)
        Γ-centred q-mesh for the DOS and the thermal properties.
    temperatures : sequence of float
        Temperatures (K), >= 0, increasing.
    symmetrize : bool, default True
        Symmetrise the force constants (also imposes the acoustic sum rule).
    imaginary_tolerance_THz : float
        Negative frequencies smaller than this in magnitude are treated as noise.

    Returns
    -------
    PhononProperties

    Raises
    ------
    InputError
        Non-periodic atoms, no calculator, a supercell with a zero/negative repetition, a
        displacement <= 0, a bad mesh or temperatures.
    MissingExtraError
        phonopy is not installed.
    """
    _check_periodic_cell("atoms", atoms)
    _check_calc(calc)
    sm = _supercell_matrix(supercell)
    disp = validate.finite("displacement", displacement)
    if disp <= 0:
        raise InputError("displacement", displacement, "a positive displacement (Å)",
                         hint="typical values 0.005-0.03 Å")
    qmesh = validate.kmesh("mesh", mesh)
    temps = validate.finite_array("temperatures", temperatures, (None,))
    if len(temps) == 0 or np.any(temps < 0) or np.any(np.diff(temps) <= 0):
        raise InputError("temperatures", list(np.atleast_1d(temperatures)),
                         "temperatures >= 0 K, increasing")
    tol = validate.nonnegative("imaginary_tolerance_THz", imaginary_tolerance_THz)

    Phonopy, PhonopyAtoms = _import_phonopy()
    from ase import Atoms

    unit = PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=np.asarray(atoms.cell),
                        scaled_positions=atoms.get_scaled_positions(), masses=atoms.get_masses())
    ph = Phonopy(unit, supercell_matrix=sm, primitive_matrix=None)
    ph.generate_displacements(distance=disp)

    def forces_of(sc) -> np.ndarray:
        a = Atoms(symbols=sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions,
                  masses=sc.masses, pbc=True)
        a.calc = calc
        try:
            f = np.asarray(a.get_forces(), dtype=float)
        except Exception as exc:  # noqa: BLE001 -- any calculator failure
            raise CalculationError(f"forces of a displaced supercell failed: {exc}") from exc
        if not np.all(np.isfinite(f)):
            raise CalculationError("forces of a displaced supercell are not finite")
        return f

    f0 = forces_of(ph.supercell)
    scs = ph.supercells_with_displacements
    ph.forces = [forces_of(sc) - f0 for sc in scs]
    ph.produce_force_constants(show_drift=False)
    if symmetrize:
        ph.symmetrize_force_constants(show_drift=False)

    ph.run_mesh(list(qmesh), is_gamma_center=True)
    mesh_res = ph.mesh
    qpoints, weights = np.asarray(mesh_res.qpoints), np.asarray(mesh_res.weights)
    freqs = np.asarray(mesh_res.frequencies, dtype=float)
    ph.run_total_dos()
    dos_f, dos = np.asarray(ph.total_dos.frequency_points), np.asarray(ph.total_dos.dos)
    ph.run_thermal_properties(temperatures=temps, cutoff_frequency=tol)
    tp = ph.thermal_properties
    td = {"free_energy": tp.free_energy, "entropy": tp.entropy, "heat_capacity": tp.heat_capacity}
    ph.run_qpoints([[0.0, 0.0, 0.0]])
    gamma = np.sort(np.asarray(ph.qpoints.frequencies, dtype=float)[0])

    n = len(atoms)
    # phonopy: per unit cell, kJ/mol and J/K/mol -> eV/atom, eV/K/atom
    fe = np.asarray(td["free_energy"], dtype=float) * 1e3 / _EV_IN_J_PER_MOL / n
    s = np.asarray(td["entropy"], dtype=float) / _EV_IN_J_PER_MOL / n
    cv = np.asarray(td["heat_capacity"], dtype=float) / _EV_IN_J_PER_MOL / n
    prov = {"method": "finite displacements (phonopy)", "phonopy_version": _phonopy_version(),
            "calculator": type(calc).__name__, "displacement_A": disp,
            "n_displacements": len(scs), "symmetrized": bool(symmetrize),
            "residual_force_max_eV_per_A": float(np.abs(f0).max()),
            "formula": atoms.get_chemical_formula()}
    return PhononProperties(
        supercell_matrix=sm, mesh=qmesh, qpoints=qpoints, weights=weights,
        frequencies_THz=freqs, dos_frequencies_THz=dos_f, dos=dos, temperatures_K=temps, free_energy=Estimate(fe, "eV"),
        entropy=Estimate(s, "eV/K"), heat_capacity=Estimate(np.maximum(cv, 0.0), "eV/K"),
        gamma_frequencies_THz=gamma, n_atoms=n, imaginary_tolerance_THz=tol, provenance=prov)


def _phonopy_version() -> str:
    try:
        import phonopy
        return str(phonopy.__version__)
    except Exception:  # noqa: BLE001
        return "unknown"


def attempt_frequency(props: PhononProperties) -> float:
    """A mesh-averaged phonon frequency (THz): the mean of the real frequencies, weights included.

    A rough attempt frequency for rate prefactors (harmonic TST uses the ratio of products of
    frequencies instead); imaginary modes and the acoustic zero modes at Γ are excluded.
    """
    f = props.frequencies_THz
    w = np.repeat(props.weights[:, None], f.shape[1], axis=1).astype(float)
    ok = f > props.imaginary_tolerance_THz
    if not ok.any():
        raise InputError("props", str(props), "at least one real, non-zero frequency")
    return float((f * w)[ok].sum() / w[ok].sum())
