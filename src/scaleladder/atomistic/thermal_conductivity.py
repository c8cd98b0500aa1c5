"""Lattice thermal conductivity from the phonon Boltzmann equation, with phono3py.

Second- and third-order force constants by finite displacements (phono3py's symmetry-reduced
displacement sets; ``pair_cutoff`` limits the third-order pairs), the forces computed by any of
the project's calculators — each displaced supercell one call, spread over the cluster by
:func:`scaleladder.core.pipeline.parallel_map` when run inside a stage on Dask — then the
relaxation-time approximation (``"RTA"``) or the direct solution of the linearised BTE
(``"LBTE"``) on a q-mesh.  The result is a
:class:`~scaleladder.handoffs.ThermalConductivity` (W/(m K)); with ``convergence=True`` the
q-mesh's share enters its budget as the ``q_mesh`` source (the change from a coarser mesh,
a one-sigma error).

A crystal without three-phonon scattering (harmonic force field: vanishing third-order force
constants) has no intrinsic resistance and an infinite conductivity in this theory: that is
refused with a message, not returned as a large number.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import CalculationError, InputError
from ..core.validate import positive

__all__ = ["lattice_thermal_conductivity", "force_constants_3"]

METHODS = ("RTA", "LBTE")
_VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]


def _phono3py():
    try:
        from phono3py import Phono3py
        from phonopy.structure.atoms import PhonopyAtoms
    except ImportError:  # pragma: no cover - installed by the test command
        raise InputError("phono3py", None, "the thermal extra: pip install "
                         "'scaleladder[thermal]'") from None
    return Phono3py, PhonopyAtoms


def _mesh(field, value) -> tuple:
    try:
        m = tuple(int(v) for v in (value if np.ndim(value) else (value,) * 3))
    except (TypeError, ValueError):
        raise InputError(field, value, "three positive integers") from None
    if len(m) != 3 or min(m) < 1:
        raise InputError(field, value, "three positive integers")
    return m


def _supercell_widths(cell) -> np.ndarray:
    c = np.asarray(cell, dtype=float)
    vol = abs(np.linalg.det(c))
    return np.array([vol / np.linalg.norm(np.cross(c[(i + 1) % 3], c[(i + 2) % 3]))
                     for i in range(3)])


def force_constants_3(atoms, calc, *, supercell=(3, 3, 3), displacement: float = 0.03,
                      pair_cutoff: float | None = None, log=None):
    """A phono3py object with fc2 and fc3 of ``atoms`` (the unit cell) from ``calc``'s forces
    on the displaced supercells.  Returns ``(phono3py, n_force_calls)``."""
    from ase import Atoms

    from ..core.pipeline import parallel_map

    Phono3py, PhonopyAtoms = _phono3py()
    sc = np.diag(_mesh("supercell", supercell))
    displacement = positive("displacement", displacement)
    if not all(atoms.pbc):
        raise InputError("atoms.pbc", tuple(atoms.pbc), "a periodic crystal (pbc in x, y, z)")
    unit = PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=atoms.cell.array,
                        scaled_positions=atoms.get_scaled_positions(),
                        masses=atoms.get_masses())
    widths = _supercell_widths(sc @ atoms.cell.array)
    rc = getattr(calc, "cutoff", None)
    if callable(rc):
        rc = None
    if rc is not None and float(rc) >= 0.5 * widths.min():
        raise InputError("supercell", tuple(np.diag(sc)), f"a supercell wider than twice the "
                         f"potential's cutoff {float(rc):.3g} Å (its narrowest width is "
                         f"{widths.min():.3g} Å): force constants would see an atom's own image")
    if pair_cutoff is not None:
        pair_cutoff = positive("pair_cutoff", pair_cutoff)
        if pair_cutoff >= 0.5 * widths.min():
            raise InputError("pair_cutoff", pair_cutoff, f"less than half the supercell's "
                             f"narrowest width ({0.5 * widths.min():.3g} Å)")
    ph3 = Phono3py(unit, supercell_matrix=sc, primitive_matrix="auto", log_level=0)
    ph3.generate_displacements(distance=displacement, cutoff_pair_distance=pair_cutoff)
    cells = ph3.supercells_with_displacements
    todo = [i for i, c in enumerate(cells) if c is not None]

    def forces(i):
        c = cells[i]
        a = Atoms(c.symbols, cell=c.cell, scaled_positions=c.scaled_positions, pbc=True)
        a.calc = calc
        f = np.asarray(a.get_forces(), dtype=float)
        if not np.all(np.isfinite(f)):
            raise CalculationError(f"forces of displaced supercell {i} are not finite")
        return f
    got, _ = parallel_map(forces, todo)
    n_atoms = len(ph3.supercell)
    F = np.zeros((len(cells), n_atoms, 3))
    for i, f in zip(todo, got):
        F[i] = f
    ph3.forces = F
    ph3.produce_fc3()
    ph3.symmetrize_fc3()
    ph3.produce_fc2()
    ph3.symmetrize_fc2()
    return ph3, len(todo)


def _kappa(ph3, mesh, temperatures, method, isotope):
    ph3.mesh_numbers = list(mesh)
    ph3.init_phph_interaction()
    ph3.run_thermal_conductivity(temperatures=list(temperatures), is_LBTE=(method == "LBTE"),
                                 is_isotope=bool(isotope), write_kappa=False)
    k = np.asarray(ph3.thermal_conductivity.kappa, dtype=float)[0]      # (n_T, 6), W/(m K)
    out = np.zeros((len(temperatures), 3, 3))
    for v, (i, j) in enumerate(_VOIGT):
        out[:, i, j] = out[:, j, i] = k[:, v]
    return out


def lattice_thermal_conductivity(atoms, calc, *, temperatures=(300.0,), supercell=(3, 3, 3),
                                 displacement: float = 0.03, pair_cutoff: float | None = None,
                                 mesh=(11, 11, 11), method: str = "RTA", isotope: bool = False,
                                 convergence: bool = False, supercell_convergence: bool = False):
    """κ(T) of a crystal (``atoms``: its unit cell, relaxed) with ``calc``.

    Parameters
    ----------
    temperatures : sequence of K (> 0, increasing)
    supercell : 3 ints
        Supercell of the force constants (wider than twice the potential's cutoff).
    displacement : Å
    pair_cutoff : Å, optional
        Third-order pairs beyond this are not displaced (fewer force calls; phono3py's
        ``cutoff_pair_distance``).
    mesh : 3 ints
        q-mesh of the BTE.
    method : "RTA" or "LBTE"
    isotope : bool
        Isotope scattering (natural abundances).
    convergence : bool
        Also solve on a coarser mesh (about 2/3 of ``mesh``, odd) and enter the change as the
        ``q_mesh`` source.
    supercell_convergence : bool
        Also compute the force constants in a supercell one cell larger per axis and enter the
        change of kappa as the ``supercell`` source (the interactions the smaller supercell
        truncates).
    """
    from ..handoffs import ThermalConductivity
    from ..uq import Estimate, one_sigma_samples

    T = np.asarray(temperatures, dtype=float).reshape(-1)
    if T.size < 1 or np.any(~np.isfinite(T)) or np.any(T <= 0) or np.any(np.diff(T) <= 0):
        raise InputError("temperatures", T.tolist()[:8], "increasing temperatures > 0 K")
    if method not in METHODS:
        raise InputError("method", method, f"one of {', '.join(METHODS)}")
    mesh = _mesh("mesh", mesh)
    ph3, n_calls = force_constants_3(atoms, calc, supercell=supercell, displacement=displacement,
                                     pair_cutoff=pair_cutoff)
    fc3 = np.asarray(ph3.fc3)
    fc2 = np.asarray(ph3.fc2)
    if np.abs(fc3).max() < 1e-8 * max(np.abs(fc2).max(), 1e-30):
        raise CalculationError(
            "the third-order force constants vanish (a harmonic crystal): without three-phonon "
            "scattering the lattice thermal conductivity diverges in the Boltzmann equation "
            "(no Umklapp resistance); use an anharmonic potential")
    k = _kappa(ph3, mesh, T, method, isotope)
    if not np.all(np.isfinite(k)):
        raise CalculationError("phono3py returned a non-finite conductivity (check for "
                               "imaginary modes: is the structure relaxed?)")
    sources = {}
    prov = {"supercell": list(_mesh("supercell", supercell)), "displacement_A": displacement,
            "pair_cutoff_A": pair_cutoff, "mesh": list(mesh), "isotope": bool(isotope),
            "force_calls": int(n_calls), "calculator": type(calc).__name__}
    if convergence:
        coarse = tuple(max(3, int(round(2 * m / 3)) | 1) for m in mesh)
        kc = _kappa(ph3, coarse, T, method, isotope)
        sources["q_mesh"] = one_sigma_samples(k, np.abs(k - kc))
        prov["mesh_coarse"] = list(coarse)
    if supercell_convergence:
        bigger = tuple(n + 1 for n in _mesh("supercell", supercell))
        ph3b, n_b = force_constants_3(atoms, calc, supercell=bigger, displacement=displacement,
                                      pair_cutoff=pair_cutoff)
        kb = _kappa(ph3b, mesh, T, method, isotope)
        sources["supercell"] = one_sigma_samples(k, np.abs(kb - k))
        prov["supercell_check"] = list(bigger)
        prov["force_calls"] = int(n_calls + n_b)
    try:
        import phono3py

        prov["phono3py"] = phono3py.__version__
    except Exception:  # noqa: BLE001
        pass
    est = Estimate(k, "W/m/K", sources)
    return ThermalConductivity(T, est, method, provenance=prov)
