"""Harmonic phonons and the harmonic free energy of a crystal, through phonopy.

:func:`phonons` takes an :class:`ase.Atoms` (the unit cell, ideally relaxed) and any ASE
calculator, builds finite-displacement supercells with phonopy, computes the forces with the
calculator, and returns a :class:`~scaleladder.handoffs.PhononProperties`: frequencies on a
Γ-centred q-mesh (THz), the total DOS, and the harmonic free energy (eV/atom), entropy and heat
capacity (eV/K/atom).

:func:`harmonic_tst_prefactor` takes a minimum and a saddle point of the same (super)cell and
returns the harmonic transition-state-theory prefactor of Vineyard (J. Phys. Chem. Solids 3, 121
(1957)) as a :class:`~scaleladder.handoffs.HarmonicTSTPrefactor`; :func:`harmonic_rate` turns it
and a barrier into a rate (1/s).

phonopy is an optional dependency (``pip install 'scaleladder[phonons]'``).  Its thermal
properties are per unit cell in kJ/mol and J/K/mol; they are converted once, here, with the
constants of :mod:`scaleladder.core.units`.
"""
from __future__ import annotations

from typing import Any

import math

import numpy as np

from ..core import validate
from ..core.errors import CalculationError, InputError, MissingExtraError
from ..core.units import AVOGADRO, ELEMENTARY_CHARGE, conversion_factor
from ..handoffs.phonons import (IMAGINARY_TOL_THZ, THZ, HarmonicTSTPrefactor, PhononProperties,
                                harmonic_rate)
from ..uq import Estimate
from .domain import DomainLog
from .properties import _check_calc, _check_periodic_cell

__all__ = ["phonons", "phonon_displacements", "phonons_from_forces", "attempt_frequency",
           "harmonic_tst_prefactor", "harmonic_rate"]

#: 1 eV per particle in J/mol
_EV_IN_J_PER_MOL = ELEMENTARY_CHARGE * AVOGADRO

#: sqrt(eigenvalue in eV/(Å² amu)) -> ordinary frequency in THz (15.6333 THz; ASE's CODATA set)
_SQRT_EV_A2_AMU_IN_THZ = math.sqrt(conversion_factor("eV*Å^-2*amu^-1", "s^-2")) / (2 * math.pi) / 1e12

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
    qmesh, temps, tol = _check_thermal(mesh, temperatures, imaginary_tolerance_THz)

    plan, structures = phonon_displacements(atoms, sm, disp)

    forces = [displaced_forces(st.to_atoms(), calc) for st in structures]
    return phonons_from_forces(plan, forces, mesh=qmesh, temperatures=temps,
                               symmetrize=symmetrize, imaginary_tolerance_THz=tol,
                               calculator=type(calc).__name__)


def _check_thermal(mesh, temperatures, imaginary_tolerance_THz):
    """(q-mesh, temperatures, imaginary tolerance), validated (before any force is computed)."""
    qmesh = validate.kmesh("mesh", mesh)
    temps = validate.finite_array("temperatures", temperatures, (None,))
    if len(temps) == 0 or np.any(temps < 0) or np.any(np.diff(temps) <= 0):
        raise InputError("temperatures", list(np.atleast_1d(temperatures)),
                         "temperatures >= 0 K, increasing")
    return qmesh, temps, validate.nonnegative("imaginary_tolerance_THz", imaginary_tolerance_THz)


def displaced_forces(atoms, calc, what: str = "supercell") -> np.ndarray:
    """Forces (eV/Å) of one displaced configuration; a calculator failure or a non-finite force
    is a :class:`CalculationError` naming ``what``."""
    atoms.calc = calc
    try:
        f = np.asarray(atoms.get_forces(), dtype=float)
    except Exception as exc:  # noqa: BLE001 -- any calculator failure
        raise CalculationError(f"forces of a displaced {what} failed: {exc}") from exc
    if not np.all(np.isfinite(f)):
        raise CalculationError(f"forces of a displaced {what} are not finite")
    return f


def _phonopy_of(plan: dict):
    Phonopy, PhonopyAtoms = _import_phonopy()
    unit = PhonopyAtoms(symbols=list(plan["symbols"]), cell=np.asarray(plan["cell"]),
                        scaled_positions=np.asarray(plan["scaled_positions"]),
                        masses=np.asarray(plan["masses"]))
    return Phonopy(unit, supercell_matrix=np.asarray(plan["supercell_matrix"]),
                   primitive_matrix=np.eye(3))


def phonon_displacements(atoms, supercell=(2, 2, 2), displacement: float = 0.01):
    """The finite-displacement plan of :func:`phonons`, for computing forces anywhere.

    Returns
    -------
    plan : dict
        Plain data (unit cell, supercell matrix, displacement, phonopy's displacement dataset):
        what :func:`phonons_from_forces` needs besides the forces.
    structures : list of Structure
        The perfect supercell first, then each displaced supercell (Å): compute the forces of
        each (in-process, or as pipeline stages on any executor:
        :func:`scaleladder.workflows.phonons.phonon_nodes`).
    """
    from ..handoffs import Structure

    _check_periodic_cell("atoms", atoms)
    sm = _supercell_matrix(supercell)
    disp = validate.finite("displacement", displacement)
    if disp <= 0:
        raise InputError("displacement", displacement, "a positive displacement (Å)",
                         hint="typical values 0.005-0.03 Å")
    plan = {"symbols": list(atoms.get_chemical_symbols()), "cell": np.asarray(atoms.cell).tolist(),
            "scaled_positions": atoms.get_scaled_positions(),
            "masses": np.asarray(atoms.get_masses(), dtype=float), "supercell_matrix": sm,
            "displacement_A": float(disp), "n_atoms": len(atoms),
            "formula": atoms.get_chemical_formula()}
    ph = _phonopy_of(plan)
    ph.generate_displacements(distance=disp)
    plan["dataset"] = ph.dataset

    def structure(sc) -> Structure:
        from ase import Atoms

        a = Atoms(symbols=sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions,
                  masses=sc.masses, pbc=True)
        return Structure.from_atoms(a)

    return plan, [structure(ph.supercell)] + [structure(sc) for sc in
                                               ph.supercells_with_displacements]


def phonons_from_forces(plan: dict, forces, mesh=(12, 12, 12), temperatures=DEFAULT_TEMPERATURES,
                        symmetrize: bool = True, imaginary_tolerance_THz: float = IMAGINARY_TOL_THZ,
                        calculator: str = "") -> PhononProperties:
    """Phonons from the forces (eV/Å) of the structures of :func:`phonon_displacements` (the
    perfect supercell first); the same result as :func:`phonons` computed in one process."""
    qmesh, temps, tol = _check_thermal(mesh, temperatures, imaginary_tolerance_THz)
    ph = _phonopy_of(plan)
    ph.dataset = plan["dataset"]
    forces = [np.asarray(f, dtype=float) for f in forces]
    n_disp = len(ph.supercells_with_displacements)
    if len(forces) != n_disp + 1:
        raise InputError("forces", f"{len(forces)} force arrays",
                         f"{n_disp + 1}: the perfect supercell first, then each displacement")
    f0 = forces[0]
    ph.forces = [f - f0 for f in forces[1:]]
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

    n = int(plan["n_atoms"])
    # phonopy: per unit cell, kJ/mol and J/K/mol -> eV/atom, eV/K/atom
    fe = np.asarray(td["free_energy"], dtype=float) * 1e3 / _EV_IN_J_PER_MOL / n
    s = np.asarray(td["entropy"], dtype=float) / _EV_IN_J_PER_MOL / n
    cv = np.asarray(td["heat_capacity"], dtype=float) / _EV_IN_J_PER_MOL / n
    prov = {"method": "finite displacements (phonopy)", "phonopy_version": _phonopy_version(),
            "calculator": calculator, "displacement_A": float(plan["displacement_A"]),
            "n_displacements": n_disp, "symmetrized": bool(symmetrize),
            "residual_force_max_eV_per_A": float(np.abs(f0).max()),
            "formula": plan["formula"]}
    return PhononProperties(
        supercell_matrix=np.asarray(plan["supercell_matrix"]), mesh=qmesh, qpoints=qpoints,
        weights=weights, frequencies_THz=freqs, dos_frequencies_THz=dos_f, dos=dos,
        temperatures_K=temps, free_energy=Estimate(fe, "eV"),
        entropy=Estimate(s, "eV/K"), heat_capacity=Estimate(np.maximum(cv, 0.0), "eV/K"),
        gamma_frequencies_THz=gamma, n_atoms=n, imaginary_tolerance_THz=tol, provenance=prov,
        force_constants=_full_force_constants(ph))


def _full_force_constants(ph) -> np.ndarray:
    """phonopy's force constants (eV/Å² with eV/Å forces and Å displacements) as the full
    (N, N, 3, 3) supercell array, whatever form phonopy produced."""
    fc = np.asarray(ph.force_constants, dtype=float)
    if fc.shape[0] != fc.shape[1]:   # compact form: rows are the primitive cell's atoms
        from phonopy.harmonic.force_constants import compact_fc_to_full_fc

        fc = np.asarray(compact_fc_to_full_fc(ph.primitive, fc), dtype=float)
    return fc


def _phonopy_version() -> str:
    try:
        import phonopy
        return str(phonopy.__version__)
    except Exception:  # noqa: BLE001
        return "unknown"


def attempt_frequency(props: PhononProperties) -> float:
    """A mesh-averaged phonon frequency (THz): the mean of the real frequencies, weights included.

    A rough order-of-magnitude attempt frequency of a perfect crystal.  It is **not** the
    Vineyard prefactor of a transition: that is the ratio of the products of the normal-mode
    frequencies at the minimum and at the saddle of that transition
    (:func:`harmonic_tst_prefactor`), and can differ from this mean by a factor of several.
    Imaginary modes and the acoustic zero modes at Γ are excluded.
    """
    f = props.frequencies_THz
    w = np.repeat(props.weights[:, None], f.shape[1], axis=1).astype(float)
    ok = f > props.imaginary_tolerance_THz
    if not ok.any():
        raise InputError("props", str(props), "at least one real, non-zero frequency")
    return float((f * w)[ok].sum() / w[ok].sum())


# ------------------------------------------------------------------ harmonic TST (Vineyard)

def _check_state(field: str, atoms: Any) -> None:
    """A fully periodic cell with atoms, or InputError (open systems are refused)."""
    try:
        pbc = np.asarray(atoms.pbc, dtype=bool)
        n = len(atoms)
        volume = abs(float(atoms.cell.volume)) if np.any(atoms.cell.array) else 0.0
    except AttributeError:
        raise InputError(field, type(atoms).__name__, "an ase.Atoms object") from None
    if n < 2:
        raise InputError(field, f"Atoms with {n} atom(s)", "at least 2 atoms")
    if not pbc.all() or volume <= 1e-8:
        raise InputError(field, f"Atoms(pbc={pbc.tolist()}, volume={volume:.4g} Å^3)",
                         "a periodic cell (pbc True in all three directions, 3D cell)",
                         hint="open or partly periodic systems also have rotational zero modes, "
                              "which are not removed here; model the defect in a periodic "
                              "supercell")


def _check_same_atoms(minimum, saddle) -> None:
    if len(saddle) != len(minimum):
        raise InputError("saddle", f"{len(saddle)} atoms",
                         f"the same atoms as minimum ({len(minimum)})")
    if not np.array_equal(minimum.numbers, saddle.numbers):
        k = int(np.flatnonzero(minimum.numbers != saddle.numbers)[0])
        raise InputError("saddle", f"atom {k} is {saddle.get_chemical_symbols()[k]}",
                         f"the same species in the same order as minimum "
                         f"({minimum.get_chemical_symbols()[k]})")
    if not np.allclose(minimum.get_masses(), saddle.get_masses(), rtol=1e-12, atol=0):
        raise InputError("saddle", "different atomic masses", "the masses of minimum")
    if not np.allclose(minimum.cell.array, saddle.cell.array, atol=1e-8):
        raise InputError("saddle", f"cell {saddle.cell.array.round(6).tolist()}",
                         f"the cell of minimum ({minimum.cell.array.round(6).tolist()}): the "
                         "prefactor compares two states of one cell")


def _gamma_hessian(atoms, calc, disp: float, symmetrize: bool, use_symmetry: bool, what: str):
    """Mass-weighted Γ-point dynamical matrix (eV/(Å² amu), 3N x 3N) of the cell, via phonopy.

    phonopy with the identity supercell matrix: finite displacements of every atom of the given
    cell, forces from ``calc`` (periodic), force constants, the dynamical matrix at Γ.
    Returns (D, residual max force eV/Å, phonopy's Γ frequencies THz, number of displacements).
    """
    Phonopy, PhonopyAtoms = _import_phonopy()
    from ase import Atoms

    cell = PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=np.asarray(atoms.cell),
                        scaled_positions=atoms.get_scaled_positions(wrap=False),
                        masses=atoms.get_masses())
    ph = Phonopy(cell, supercell_matrix=np.eye(3, dtype=int), primitive_matrix=np.eye(3),
                 is_symmetry=bool(use_symmetry))
    ph.generate_displacements(distance=disp, is_plusminus=True if not use_symmetry else "auto")

    def forces_of(sc) -> np.ndarray:
        return displaced_forces(Atoms(symbols=sc.symbols, cell=sc.cell,
                                      scaled_positions=sc.scaled_positions, masses=sc.masses,
                                      pbc=True), calc, what)

    f0 = forces_of(ph.supercell)
    scs = ph.supercells_with_displacements
    ph.forces = [forces_of(sc) - f0 for sc in scs]
    ph.produce_force_constants(show_drift=False)
    if symmetrize:
        ph.symmetrize_force_constants(show_drift=False)
    ph.dynamical_matrix.run([0.0, 0.0, 0.0])
    dm = np.asarray(ph.dynamical_matrix.dynamical_matrix)
    imag = float(np.abs(dm.imag).max()) if np.iscomplexobj(dm) else 0.0
    dm = np.real(dm)
    if imag > 1e-8 * max(float(np.abs(dm).max()), 1e-300):
        raise CalculationError(f"the Γ dynamical matrix of the {what} is not real "
                               f"(max |Im| {imag:.3g} eV/(Å² amu))")
    ph.run_qpoints([[0.0, 0.0, 0.0]])
    freqs = np.sort(np.asarray(ph.qpoints.frequencies, dtype=float)[0])
    f_res = float(np.sqrt((f0 ** 2).sum(axis=1)).max())
    return 0.5 * (dm + dm.T), f_res, freqs, len(scs)


def _translation_complement(masses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal mass-weighted rigid translations T (3N x 3) and a basis Q of their complement."""
    n = len(masses)
    t = np.zeros((3 * n, 3))
    for a in range(3):
        t[a::3, a] = np.sqrt(masses)
    t /= np.linalg.norm(t, axis=0)
    u, _, _ = np.linalg.svd(t, full_matrices=True)
    return t, u[:, 3:]


def _frequencies(lam: np.ndarray) -> np.ndarray:
    """Eigenvalues (eV/(Å² amu)) -> frequencies (THz), negative = imaginary."""
    return np.sign(lam) * np.sqrt(np.abs(lam)) * _SQRT_EV_A2_AMU_IN_THZ


def harmonic_tst_prefactor(minimum, saddle, calc, displacement: float = 0.01,
                           symmetrize: bool = True, use_symmetry: bool = False,
                           imaginary_tolerance_THz: float = IMAGINARY_TOL_THZ,
                           max_residual_force: float = 0.05) -> HarmonicTSTPrefactor:
    """Harmonic transition-state-theory prefactor of Vineyard (1957), through phonopy.

    ``ν* = Π_{i=1}^{3N-3} ν_i(minimum) / Π_{i=1}^{3N-4} ν_i(saddle)`` (THz), the normal-mode
    frequencies of the Γ-point dynamical matrix of the given periodic cell (phonopy with the
    identity supercell matrix, forces from ``calc``), with the three rigid translations
    projected out (in mass-weighted coordinates) and, at the saddle, the one imaginary mode
    left out.  The rate is then ``ν* exp(-E_b / k_B T)`` (:func:`harmonic_rate`).  The products
    are formed as sums of logarithms, so no cell is too large.

    Parameters
    ----------
    minimum, saddle : ase.Atoms
        The initial minimum and the first-order saddle point of the transition: the same atoms
        (species, order, masses) in the same periodic cell, each relaxed (max force below
        ``max_residual_force``; for the saddle e.g. the climbing image of a converged NEB).
    calc : ase Calculator
        Provides the forces (eV/Å); it must be invariant under rigid translations.
    displacement : float
        Finite displacement (Å), > 0.  Every atom is displaced by ± this along x, y, z
        (central differences; 6N force evaluations per state unless ``use_symmetry``).
    symmetrize : bool
        Symmetrise the force constants (index permutation and translational invariance).
    use_symmetry : bool
        Let phonopy use the space-group symmetry of each structure to reduce the displacements.
        Off by default: a relaxed saddle is only approximately symmetric, and a model potential
        need not share the symmetry of the atoms' arrangement.
    imaginary_tolerance_THz : float
        Frequencies with ``|ν|`` below this count as zero (numerical noise), >= 0.
    max_residual_force : float
        Largest force (eV/Å) allowed on an atom of either state, > 0: the harmonic expansion
        is about stationary points.

    Returns
    -------
    HarmonicTSTPrefactor
        ``prefactor`` an Estimate in THz (unit string ``"1/ps"``) without uncertainty sources;
        the real frequencies at the minimum (3N-3) and at the saddle (3N-4), the magnitude of
        the saddle's imaginary frequency, ``n_zero_modes`` = 3; provenance records the
        settings, the residual forces, the size of the removed translational block and the
        number of force evaluations; ``domain_warnings`` where either state lies outside the
        training domain of ``calc.fitted_potential``.

    Raises
    ------
    InputError
        States that are not periodic cells (open and partly periodic systems are refused: they
        also have rotational zero modes), differ in atoms, masses or cell, carry a force above
        ``max_residual_force``; bad ``displacement`` or tolerances; no calculator.
    CalculationError
        An imaginary or (beyond the three translations) zero mode at the minimum; a saddle
        whose number of imaginary modes is not exactly one, or with a zero mode (the message
        gives the count and the frequencies); failed or non-finite forces.
    MissingExtraError
        phonopy is not installed.
    """
    _check_state("minimum", minimum)
    _check_state("saddle", saddle)
    _check_same_atoms(minimum, saddle)
    _check_calc(calc)
    disp = validate.finite("displacement", displacement)
    if disp <= 0:
        raise InputError("displacement", displacement, "a positive displacement (Å)",
                         hint="typical values 0.005-0.03 Å")
    tol = validate.nonnegative("imaginary_tolerance_THz", imaginary_tolerance_THz)
    fres_max = validate.positive("max_residual_force", max_residual_force)
    for name, flag in (("symmetrize", symmetrize), ("use_symmetry", use_symmetry)):
        if not isinstance(flag, (bool, np.bool_)):
            raise InputError(name, flag, "True or False")

    masses = minimum.get_masses()
    t, q = _translation_complement(masses)
    results = {}
    for name, atoms in (("minimum", minimum), ("saddle", saddle)):
        d, f_res, ph_freqs, n_disp = _gamma_hessian(atoms, calc, disp, bool(symmetrize),
                                                    bool(use_symmetry), name)
        if f_res > fres_max:
            raise InputError(name, f"a configuration with a residual force of {f_res:.3g} eV/Å",
                             f"a stationary point (max force <= max_residual_force = "
                             f"{fres_max:g} eV/Å)",
                             hint="relax the minimum; converge the saddle (climbing-image NEB, "
                                  "dimer) to a smaller force")
        scale = float(np.abs(d).max()) or 1.0
        leak = float(np.abs(d @ t).max()) / scale
        nu = np.sort(_frequencies(np.linalg.eigvalsh(q.T @ d @ q)))
        results[name] = (nu, f_res, ph_freqs, n_disp, leak)

    nu_min = results["minimum"][0]
    bad = nu_min[nu_min < -tol]
    if len(bad):
        raise CalculationError(
            f"the minimum has {len(bad)} imaginary mode(s) beyond -{tol:g} THz "
            f"({', '.join(f'{x:.4g}' for x in bad)} THz): it is not a minimum; relax it")
    soft = nu_min[np.abs(nu_min) <= tol]
    if len(soft):
        raise CalculationError(
            f"the minimum has {len(soft)} zero mode(s) (|ν| <= {tol:g} THz) besides the 3 rigid "
            "translations: the harmonic prefactor diverges (a free rotation, a flat direction)")
    nu_sad = results["saddle"][0]
    imag = nu_sad[nu_sad < -tol]
    if len(imag) != 1:
        listed = ", ".join(f"{x:.4g}" for x in imag) if len(imag) else "none"
        raise CalculationError(
            f"the saddle has {len(imag)} imaginary mode(s) beyond -{tol:g} THz ({listed} THz); "
            "harmonic TST needs a first-order saddle with exactly one: "
            + ("it is a minimum (or the NEB did not climb)" if len(imag) == 0 else
               "it is a higher-order saddle (converge the climbing image, or use a dimer search)"))
    soft = nu_sad[np.abs(nu_sad) <= tol]
    if len(soft):
        raise CalculationError(
            f"the saddle has {len(soft)} zero mode(s) (|ν| <= {tol:g} THz) besides the 3 rigid "
            "translations: the harmonic prefactor is undefined")
    real_sad = nu_sad[nu_sad > tol]
    log_nu = float(np.log(nu_min).sum() - np.log(real_sad).sum())

    log = DomainLog(calc)
    log.check(minimum, "minimum")
    log.check(saddle, "saddle")
    provenance = {
        "method": "harmonic TST, Vineyard (1957): prod nu(minimum) / prod nu(saddle, real)",
        "reference": "G. H. Vineyard, J. Phys. Chem. Solids 3, 121 (1957)",
        "force_constants": "finite displacements (phonopy), identity supercell, Γ point",
        "phonopy_version": _phonopy_version(), "calculator": type(calc).__name__,
        "displacement_A": disp, "symmetrized": bool(symmetrize),
        "use_symmetry": bool(use_symmetry), "imaginary_tolerance_THz": tol,
        "zero_modes": "3 rigid translations projected out (mass-weighted)",
        "n_displacements": {k: int(v[3]) for k, v in results.items()},
        "residual_force_max_eV_per_A": {k: v[1] for k, v in results.items()},
        "translation_leakage_rel": {k: v[4] for k, v in results.items()},
        "phonopy_gamma_lowest_THz": {k: [float(x) for x in v[2][:4]] for k, v in results.items()},
        "log_prefactor_THz": log_nu,
        "formula": minimum.get_chemical_formula(),
    }
    return HarmonicTSTPrefactor(
        prefactor=Estimate(math.exp(log_nu), THZ), minimum_frequencies_THz=nu_min,
        saddle_frequencies_THz=real_sad, imaginary_frequency_THz=float(-imag[0]),
        n_zero_modes=3, n_atoms=len(minimum), provenance=provenance,
        domain_warnings=log.finish("harmonic_tst_prefactor"))
