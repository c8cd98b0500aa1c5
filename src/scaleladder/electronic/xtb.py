"""Extended tight binding (GFN-xTB, via tblite) behind ASE's Calculator protocol.

:class:`XTBCalculator` runs the self-consistent GFN1-xTB, GFN2-xTB or IPEA1-xTB Hamiltonians of
Grimme and co-workers through tblite's Python API (``tblite.interface.Calculator``; the optional
extra ``xtb``).  It returns energies in eV, forces in eV/Å, the stress in eV/Å³ (ASE Voigt order
xx, yy, zz, yz, xz, xy, ASE sign), Mulliken partial charges in e and the dipole moment in e·Å.

What xTB is for, and what it is not
-----------------------------------
GFN-xTB is a semi-empirical, minimal-basis tight-binding model fitted to geometries, vibrational
frequencies and non-covalent interactions of molecules.  A single point costs milliseconds for a
small molecule, so it is the right tool for fast reference datasets (pre-screening, active
learning, smoke tests of a workflow before the expensive DFT run) and for tests of the machinery
(forces and stresses that are exact derivatives of a real quantum-mechanical energy, charged and
open-shell systems, SCF failures).  It is NOT density-functional theory: bulk properties of
solids (lattice constants, elastic constants, surface energies) can be off by several per cent to
tens of per cent, periodic cells are sampled at the Gamma point only, and nothing fitted to it
should be reported as DFT quality.  Use :class:`~scaleladder.electronic.PySCFCalculator` for
numbers that matter.

Units and conventions
---------------------
tblite works in atomic units; they are converted once, here, with the CODATA set of
:mod:`scaleladder.core.units` (identical to ``ase.units``):

* energy  : Hartree -> eV               (``HARTREE_EV``)
* forces  : Hartree/Bohr -> eV/Å        (``-gradient * HARTREE_EV / BOHR_ANGSTROM``)
* lengths : Å -> Bohr on input          (``/ BOHR_ANGSTROM``)
* stress  : ``virial * HARTREE_EV / V`` with V in Å³.  tblite's "virial" is the strain
  derivative of the energy, ``W_ij = dE/de_ij`` (Hartree), NOT minus it: the ASE stress
  ``(1/V) dE/de`` is therefore ``+W/V``.  Verified by central differences of the energy under
  strain (tests/test_xtb.py), which the opposite sign fails by 100 %.
* dipole  : e·Bohr -> e·Å               (``* BOHR_ANGSTROM``)
* electronic temperature : K -> Hartree (``T * BOLTZMANN_EV / HARTREE_EV``)
"""
from __future__ import annotations

import re
import time
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from ..core import validate
from ..core.errors import (
    CalculationError,
    ConvergenceError,
    InputError,
    MissingExtraError,
    PropertyNotImplementedError,
)
from ..core.tensors import stress_voigt
from ..core.units import BOHR_ANGSTROM, BOLTZMANN_EV, HARTREE_EV

#: Hartree/Bohr -> eV/Å
FORCE_AU_TO_EV_PER_A = HARTREE_EV / BOHR_ANGSTROM
#: Kelvin -> Hartree (k_B in Hartree/K)
KELVIN_TO_HARTREE = BOLTZMANN_EV / HARTREE_EV

#: The xTB parametrisations tblite provides, and the heaviest element each one covers.
XTB_METHODS = {"GFN1-xTB": 86, "GFN2-xTB": 86, "IPEA1-xTB": 86}

#: Valence electrons of the neutral atom in GFN1-/GFN2-/IPEA1-xTB, index Z-1 (H..Rn): s+p
#: electrons for main-group elements, d+s for groups 3-11, 2 for Zn/Cd/Hg and 3 for every
#: lanthanide (f in core).  Read from tblite 0.8.0 itself (free-atom electron counts, identical
#: for GFN1 and GFN2) and re-checked against it in tests/test_xtb.py.  Needed BEFORE calling
#: tblite: it corrupts memory (Fortran runtime error or a double free that kills the Python
#: process) when the charge leaves a negative number of valence electrons.
XTB_VALENCE_ELECTRONS = (
    1, 2,
    1, 2, 3, 4, 5, 6, 7, 8,
    1, 2, 3, 4, 5, 6, 7, 8,
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 2, 3, 4, 5, 6, 7, 8,
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 2, 3, 4, 5, 6, 7, 8,
    1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    4, 5, 6, 7, 8, 9, 10, 11, 2, 3, 4, 5, 6, 7, 8,
)

#: tblite's codes for the initial guess of a fresh SCF.
_TBLITE_GUESS = {"sad": 0, "eeq": 1}

_CONVERGENCE_SUGGESTION = (
    "increase max_iterations, raise electronic_temperature (e.g. 1000-5000 K) to smear "
    "near-degenerate levels, lower mixer_damping (e.g. 0.2), or converge a nearby geometry "
    "first with the same calculator so that initial_guess='reuse' restarts from its wavefunction")

# one row of tblite's SCF table: "  cycle  total energy  energy error  density error"
_SCF_ROW = re.compile(r"^\s*(\d+)\s+-?\d+\.\d+\s+-?\d\.\d+E[+-]\d+\s+-?\d\.\d+E[+-]\d+\s*$")
_NOT_CONVERGED = re.compile(r"SCF not converged", re.IGNORECASE)
_TOO_CLOSE = re.compile(r"too close", re.IGNORECASE)


def _import_tblite():
    """tblite's Python API, imported lazily; MissingExtraError names the extra."""
    try:
        from tblite import interface
        from tblite.exceptions import TBLiteRuntimeError, TBLiteValueError
    except ImportError:
        raise MissingExtraError("tblite", "xtb",
                                "GFN-xTB tight-binding calculations (XTBCalculator)") from None
    return interface, (TBLiteRuntimeError, TBLiteValueError)


def _check_params(p: dict) -> dict:
    """Validate calculator parameters; return a normalised copy."""
    out = dict(p)
    method = out["method"]
    names = {m.upper(): m for m in XTB_METHODS}
    if not isinstance(method, str) or method.strip().upper() not in names:
        raise InputError("method", method, "one of " + ", ".join(repr(m) for m in XTB_METHODS),
                         "the xTB parametrisations tblite provides")
    out["method"] = names[method.strip().upper()]
    if isinstance(out["charge"], bool) or not isinstance(out["charge"], (int, np.integer)):
        if isinstance(out["charge"], float) and out["charge"].is_integer():
            out["charge"] = int(out["charge"])
        else:
            raise InputError("charge", out["charge"], "an integer (net charge in units of e)")
    out["charge"] = int(out["charge"])
    out["spin"] = (None if out["spin"] is None
                   else validate.positive_int("spin", out["spin"], minimum=0))
    out["electronic_temperature"] = validate.positive("electronic_temperature",
                                                      out["electronic_temperature"])
    out["accuracy"] = validate.positive("accuracy", out["accuracy"])
    out["max_iterations"] = validate.positive_int("max_iterations", out["max_iterations"])
    if out["mixer_damping"] is not None:
        d = validate.finite("mixer_damping", out["mixer_damping"])
        if not 0.0 < d <= 1.0:
            raise InputError("mixer_damping", out["mixer_damping"],
                             "None (tblite's default, 0.4) or a number in (0, 1]")
        out["mixer_damping"] = d
    out["initial_guess"] = validate.one_of("initial_guess", out["initial_guess"],
                                           ("reuse", "sad", "eeq"))
    out["verbosity"] = validate.positive_int("verbosity", out["verbosity"], minimum=0)
    return out


class XTBCalculator(Calculator):
    """GFN-xTB tight binding (tblite) as an ASE Calculator.

    Good for fast reference datasets and for tests: a real, self-consistent quantum-mechanical
    energy whose forces and stress are its exact derivatives, at milliseconds per small
    molecule.  Not DFT accuracy: see the module docstring.

    Parameters
    ----------
    label : str, optional
        Name of the configuration, used in error messages (ASE's ``label``).
    atoms : ase.Atoms, optional
        Structure to attach the calculator to.
    method : {"GFN2-xTB", "GFN1-xTB", "IPEA1-xTB"}, default "GFN2-xTB"
        xTB parametrisation (case-insensitive).  All three cover H to Rn (Z = 1-86); any other
        element raises :class:`~scaleladder.core.errors.InputError` naming ``element``.
    charge : int, default 0
        Net charge in e, at most the xTB valence electron count (:data:`XTB_VALENCE_ELECTRONS`)
        and at least what fills the minimal basis; otherwise :class:`InputError` naming
        ``charge``.  A charged periodic cell is passed to tblite as it is; how tblite's Ewald
        sums treat a net cell charge is not checked here, so prefer neutral cells.
    spin : int or None, default None
        Number of unpaired electrons 2S (tblite's ``uhf``).  None: 0, and an odd electron count
        raises :class:`InputError` naming ``spin``.  The electron count is xTB's valence count
        (:data:`XTB_VALENCE_ELECTRONS`), so a doublet needs ``spin=1``; a spin of the wrong
        parity, larger than the electron count, or needing more alpha orbitals than the minimal
        basis has raises :class:`InputError` naming ``spin`` (tblite itself would silently drop
        the surplus electrons).  No spin-polarisation term is added (the standard GFN-xTB
        Hamiltonian): open shells differ only in the alpha/beta occupations.
    electronic_temperature : float, default 300.0
        Fermi-smearing temperature of the orbital occupations in K.
    accuracy : float, default 1.0
        tblite's numerical accuracy: scales the SCF convergence thresholds and integral cutoffs
        (smaller is tighter; 0.01 is a good value for finite-difference tests).
    max_iterations : int, default 250
        Maximum number of SCF iterations; an SCF that does not converge raises
        :class:`~scaleladder.core.errors.ConvergenceError`.
    mixer_damping : float or None, default None
        Damping of tblite's Broyden mixer in (0, 1]; None keeps tblite's default (0.4).
    initial_guess : {"reuse", "sad", "eeq"}, default "reuse"
        "reuse": the converged wavefunction of this calculator's previous calculation restarts
        the next SCF when the atomic numbers (hence the number of atoms), the periodicity, the
        method, the charge and the spin are unchanged, so a strain or displacement series does
        not start from scratch (measured on a periodic water box under 0.4 % strain steps: 3
        SCF iterations per step instead of 8, same energies to 1e-9 eV); otherwise a
        superposition of atomic densities.  "sad" / "eeq": always start afresh from a
        superposition of atomic densities / from electronegativity-equilibration charges.
    verbosity : int, default 0
        tblite's printout level (0: silent; 1: SCF table; 2: more).

    Properties
    ----------
    energy, free_energy : float, eV
        tblite's total energy.  With Fermi smearing it is the Mermin free energy
        ``F = E - T S_el`` (the electronic entropy term is included: its forces and stress are
        derivatives of it, checked by finite differences at 20000 K, and F decreases with T as
        ``dF/dT = -S_el`` requires).  ASE's ``energy`` and ``free_energy`` are both this number;
        no zero-temperature extrapolation is made (at the default 300 K, T S_el is negligible
        for a system with a gap).
    energies : (n,) ndarray, eV
        tblite's atom-partitioned energies; they sum to ``energy``.
    forces : (n, 3) ndarray, eV/Å
        ``-dF/dR``, analytic.
    stress : (6,) ndarray, eV/Å³
        Fully periodic cells only: ``(1/V) dF/de``, Voigt xx, yy, zz, yz, xz, xy, ASE sign
        (positive = tensile: the cell wants to shrink).  A molecule raises
        :class:`~scaleladder.core.errors.PropertyNotImplementedError`.
    charges : (n,) ndarray, e
        Mulliken partial charges (positive = electron-deficient); they sum to ``charge``.
    dipole : (3,) ndarray, e·Å
        Molecules only (about the origin of the coordinates; origin-dependent when charged).
        A periodic cell raises :class:`PropertyNotImplementedError` (the dipole of a periodic
        charge density is not defined by its cell contents).

    ``results`` also holds ``scf_iterations`` (SCF cycles of the last calculation, read from
    tblite's log) and ``elapsed_s`` (wall time of the calculation).

    Periodicity
    -----------
    ``atoms.pbc`` must be all True (3D periodic, Gamma point only: converge the supercell size)
    or all False (molecule).  tblite silently treats a partly periodic structure as fully
    periodic, so mixed periodicity (a slab with ``pbc=(True, True, False)``) raises
    :class:`InputError` naming ``atoms.pbc``; give a slab a vacuum gap and ``pbc=True``.

    Notes
    -----
    ``atoms.get_initial_charges()`` and initial magnetic moments are ignored: the net charge and
    spin are the parameters ``charge`` and ``spin``.

    tblite is parallelised with OpenMP.  On a machine whose cores are busy with other work,
    OpenMP threads waiting for each other can make it several times slower than one thread
    (measured on 2 shared cores at load ~8: the finite-difference test of a 2-atom Si cell,
    13 energies, took 23 s with the default threads and 4 s with ``OMP_NUM_THREADS=1``); set
    ``OMP_NUM_THREADS`` before the first calculation.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "charges",
                              "dipole"]
    default_parameters: dict[str, Any] = dict(
        method="GFN2-xTB", charge=0, spin=None, electronic_temperature=300.0, accuracy=1.0,
        max_iterations=250, mixer_damping=None, initial_guess="reuse", verbosity=0,
    )
    #: parameter changes that invalidate the stored wavefunction (different basis or electrons)
    _RESTART_KEYS = ("method", "charge", "spin")

    def __init__(self, label: str | None = None, atoms=None, method: str = "GFN2-xTB",
                 charge: int = 0, spin: int | None = None, electronic_temperature: float = 300.0,
                 accuracy: float = 1.0, max_iterations: int = 250,
                 mixer_damping: float | None = None, initial_guess: str = "reuse",
                 verbosity: int = 0):
        kwargs = dict(method=method, charge=charge, spin=spin,
                      electronic_temperature=electronic_temperature, accuracy=accuracy,
                      max_iterations=max_iterations, mixer_damping=mixer_damping,
                      initial_guess=initial_guess, verbosity=verbosity)
        _check_params(kwargs)  # fail early with InputError
        _import_tblite()  # fail early with MissingExtraError
        self._config_label = label
        self._restart = None  # tblite Result of the last converged calculation
        self._restart_key: tuple | None = None
        Calculator.__init__(self, atoms=atoms, **kwargs)

    # ------------------------------------------------------------------ helpers
    def set(self, **kwargs):
        """Set parameters (validated); changing method, charge or spin drops the wavefunction."""
        unknown = set(kwargs) - set(self.default_parameters)
        if unknown:
            raise InputError("parameters", sorted(unknown),
                             "known parameters: " + ", ".join(sorted(self.default_parameters)))
        base = {**self.default_parameters, **(self.parameters or {})}
        _check_params({**base, **kwargs})
        changed = Calculator.set(self, **kwargs)
        if set(changed) - {"verbosity"}:
            self.reset()  # ASE keeps old results on a parameter change unless told otherwise
        if any(k in changed for k in self._RESTART_KEYS):
            self._restart = None
            self._restart_key = None
        return changed

    def _params(self) -> dict:
        return _check_params({**self.default_parameters, **self.parameters})

    def _describe(self, atoms) -> str:
        name = self._config_label or atoms.info.get("name") or ""
        head = f"{name} " if name else ""
        if not any(atoms.pbc):
            return f"{head}{atoms.get_chemical_formula()} ({len(atoms)} atoms, molecule)"
        lengths = ", ".join(f"{x:.4f}" for x in atoms.cell.lengths())
        return (f"{head}{atoms.get_chemical_formula()} ({len(atoms)} atoms, cell lengths "
                f"[{lengths}] Å, volume {abs(atoms.get_volume()):.4f} Å^3)")

    @staticmethod
    def _settings(p: dict) -> dict:
        return {k: p[k] for k in ("method", "charge", "spin", "electronic_temperature",
                                  "accuracy", "max_iterations", "mixer_damping",
                                  "initial_guess")}

    def _check_structure(self, atoms, p: dict, properties) -> bool:
        """Validate the structure; return True when it is periodic."""
        pbc = tuple(bool(x) for x in atoms.pbc)
        if any(pbc) and not all(pbc):
            raise InputError("atoms.pbc", pbc, "(True, True, True) or (False, False, False)",
                             "tblite would silently treat a partly periodic structure as 3D "
                             "periodic; give a slab or wire a vacuum gap and pbc=True")
        periodic = all(pbc)
        if len(atoms) == 0:
            raise InputError("atoms", "0 atoms", "at least one atom")
        zmax = XTB_METHODS[p["method"]]
        for z, sym in zip(atoms.numbers, atoms.get_chemical_symbols()):
            if not 1 <= z <= zmax:
                raise InputError("element", sym, f"an element from H to Rn (Z = 1-{zmax})",
                                 f"{p['method']} has no parameters for {sym} (Z={int(z)})")
        validate.finite_array("atoms.positions", atoms.positions, (len(atoms), 3))
        if periodic:
            cell = validate.finite_array("atoms.cell", np.asarray(atoms.cell), (3, 3))
            if abs(np.linalg.det(cell)) < 1e-6:
                raise InputError("atoms.cell", cell.tolist(), "three linearly independent "
                                 "lattice vectors (non-zero volume) for a periodic structure")
        if not periodic and "stress" in properties:
            raise PropertyNotImplementedError(
                "stress is not defined for a molecule (atoms.pbc all False: no cell); "
                "request energy, forces, charges or dipole")
        if periodic and "dipole" in properties:
            raise PropertyNotImplementedError(
                "the dipole moment of a periodic cell is not defined by the cell contents; "
                "use a molecule (atoms.pbc all False)")
        return periodic

    def _translate_error(self, exc: Exception, atoms, p: dict):
        """Map a tblite error onto scaleladder's hierarchy (electron counts are checked before)."""
        msg = str(exc)
        if _NOT_CONVERGED.search(msg):
            return ConvergenceError(
                what=f"xTB SCF did not converge in {p['max_iterations']} iterations ({msg})",
                configuration=self._describe(atoms), settings=self._settings(p),
                suggestion=_CONVERGENCE_SUGGESTION)
        if _TOO_CLOSE.search(msg):
            from ase.geometry import get_distances

            d = get_distances(atoms.positions, cell=atoms.cell, pbc=atoms.pbc)[1]
            d = d + np.diag(np.full(len(atoms), np.inf))
            dmin = float(d.min()) if len(atoms) > 1 else float("nan")
            return InputError("atoms.positions", f"{self._describe(atoms)}, shortest "
                              f"interatomic distance {dmin:.4f} Å",
                              "atoms not on top of each other", msg)
        return CalculationError(f"tblite failed for {self._describe(atoms)}: {msg} "
                                f"(settings: {self._settings(p)})")

    @staticmethod
    def _electrons(atoms, p: dict) -> tuple[int, int]:
        """xTB valence electron count and unpaired electrons (tblite's uhf), validated."""
        formula = atoms.get_chemical_formula()
        nval = int(sum(XTB_VALENCE_ELECTRONS[int(z) - 1] for z in atoms.numbers))
        nel = nval - p["charge"]
        if nel < 0:
            raise InputError("charge", p["charge"], f"at most {nval}, the number of xTB valence "
                             f"electrons of {formula}")
        if p["spin"] is None:
            if nel % 2:
                raise InputError("spin", None, "the number of unpaired electrons 2S (e.g. 1 for "
                                 "a doublet radical)", f"{formula} with charge {p['charge']} has "
                                 f"an odd number of xTB valence electrons ({nel})")
            return nel, 0
        if p["spin"] > nel or (nel - p["spin"]) % 2:
            raise InputError("spin", p["spin"], f"an integer 2S <= {nel} with the parity of the "
                             f"xTB valence electron count ({nel}) of {formula} with charge "
                             f"{p['charge']}")
        return nel, p["spin"]

    # ------------------------------------------------------------------ calculation
    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Run a tblite single point; fill ``self.results`` in ASE units (see class docstring)."""
        t_start = time.perf_counter()
        properties = list(properties) if properties else ["energy"]
        Calculator.calculate(self, atoms, properties, system_changes)
        atoms = self.atoms
        p = self._params()
        periodic = self._check_structure(atoms, p, properties)
        nel, uhf = self._electrons(atoms, p)
        interface, tblite_errors = _import_tblite()

        log: list[str] = []

        def logger(line: str) -> None:
            log.append(line)
            if p["verbosity"] > 0:
                print(line)

        try:
            calc = interface.Calculator(
                p["method"], np.asarray(atoms.numbers, dtype=int),
                np.asarray(atoms.positions, dtype=float) / BOHR_ANGSTROM,
                float(p["charge"]), uhf,
                np.asarray(atoms.cell, dtype=float) / BOHR_ANGSTROM if periodic else None,
                np.array([periodic] * 3) if periodic else None,
                color=False, logger=logger)
            # verbosity >= 1 is needed for the SCF table the iteration count is read from;
            # the logger forwards it to stdout only when the user asked for it
            calc.set("verbosity", max(1, p["verbosity"]))
            calc.set("accuracy", p["accuracy"])
            calc.set("temperature", p["electronic_temperature"] * KELVIN_TO_HARTREE)
            calc.set("max-iter", p["max_iterations"])
            if p["mixer_damping"] is not None:
                calc.set("mixer-damping", p["mixer_damping"])
            norb = len(calc.get("orbital-map"))
            if (nel + uhf) // 2 > norb:  # tblite would silently drop the surplus electrons
                raise InputError("spin" if uhf else "charge", p["spin"] if uhf else p["charge"],
                                 f"at most {norb} electrons of one spin: {nel} valence electrons "
                                 f"with {uhf} unpaired need {(nel + uhf) // 2} orbitals, "
                                 f"{atoms.get_chemical_formula()} has {norb} in {p['method']}")
            key = (p["method"], tuple(int(z) for z in atoms.numbers), periodic, p["charge"], uhf)
            restart = None
            if p["initial_guess"] == "reuse":
                calc.set("guess", _TBLITE_GUESS["sad"])
                if self._restart is not None and self._restart_key == key:
                    restart = self._restart
            else:
                calc.set("guess", _TBLITE_GUESS[p["initial_guess"]])
            # copy=True: a failed SCF leaves the stored wavefunction of the last success intact
            res = calc.singlepoint(restart, copy=True)
        except tblite_errors as exc:
            raise self._translate_error(exc, atoms, p) from exc

        charges = np.asarray(res.get("charges"), dtype=float)
        if abs(float(charges.sum()) - p["charge"]) > 1e-6:  # pragma: no cover - a safety net
            raise CalculationError(
                f"tblite's Mulliken charges of {self._describe(atoms)} sum to "
                f"{charges.sum():.6f}, not to the net charge {p['charge']}: electrons were lost "
                f"(settings: {self._settings(p)})")

        energy = float(res.get("energy")) * HARTREE_EV
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["energies"] = np.asarray(res.get("energies"), dtype=float) * HARTREE_EV
        self.results["forces"] = (-np.asarray(res.get("gradient"), dtype=float)
                                  * FORCE_AU_TO_EV_PER_A)
        self.results["charges"] = charges
        if periodic:
            virial = np.asarray(res.get("virial"), dtype=float)  # dE/d(strain), Hartree
            self.results["stress"] = stress_voigt(virial * HARTREE_EV / atoms.get_volume())
        else:
            self.results["dipole"] = np.asarray(res.get("dipole"), dtype=float) * BOHR_ANGSTROM
        cycles = [int(m.group(1)) for m in map(_SCF_ROW.match, log) if m]
        if cycles:
            self.results["scf_iterations"] = max(cycles)
        if p["initial_guess"] == "reuse":
            self._restart = res
            self._restart_key = key
        self.results["elapsed_s"] = time.perf_counter() - t_start


__all__ = ["XTBCalculator", "XTB_METHODS", "XTB_VALENCE_ELECTRONS", "FORCE_AU_TO_EV_PER_A",
           "KELVIN_TO_HARTREE"]
