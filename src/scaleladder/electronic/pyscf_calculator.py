"""Periodic Kohn-Sham DFT with PySCF behind ASE's Calculator protocol.

:class:`PySCFCalculator` runs a k-point restricted Kohn-Sham calculation (``pyscf.pbc.dft.KRKS``)
with GTH pseudopotentials and Gaussian basis sets on plane-wave (FFT) density fitting, and returns
energies in eV, forces in eV/Å and the stress tensor in eV/Å³ (ASE Voigt order xx, yy, zz, yz,
xz, xy; ASE sign: ``stress = (1/V) dE/dε``, positive when the cell wants to shrink).

Unit conversions are written out once, here, with the CODATA set of :mod:`scaleladder.core.units`
(identical to ``ase.units``):

* energy  : Hartree -> eV        (``HARTREE_EV``)
* forces  : Hartree/Bohr -> eV/Å (``HARTREE_EV / BOHR_ANGSTROM``)
* stress  : Hartree/Bohr³ -> eV/Å³ (``HARTREE_EV / BOHR_ANGSTROM**3``)

PySCF's own ASE wrapper (``pyscf.pbc.tools.pyscf_ase``) multiplies the stress by Hartree/Bohr
only, so it reports stresses too small by a factor Bohr² (0.28); it is deliberately not used.

:func:`isolated_atom_energy` gives the free-atom energy consistent with the periodic calculation
(same GTH basis and pseudopotential, molecular spin-unrestricted calculation) for cohesive energies.
"""
from __future__ import annotations

import warnings

import time
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from ..core import validate
from ..core.errors import ConvergenceError, InputError, PropertyNotImplementedError
from ..core.units import BOHR_ANGSTROM, HARTREE_EV

#: Hartree/Bohr -> eV/Å
FORCE_AU_TO_EV_PER_A = HARTREE_EV / BOHR_ANGSTROM
#: Hartree/Bohr³ -> eV/Å³
STRESS_AU_TO_EV_PER_A3 = HARTREE_EV / BOHR_ANGSTROM ** 3

_CONVERGENCE_SUGGESTION = ("increase max_cycle, add smearing=0.005 (Hartree, Fermi-Dirac), or "
                           "use a better initial guess (e.g. run the undistorted cell first with "
                           "the same calculator so its density is reused)")


#: PySCF reads xc="LDA" as Slater exchange ONLY (no correlation), a silent trap; "LDA" (any case)
#: is therefore mapped to the Goedecker-Teter-Hutter Pade LDA that the gth-pade pseudopotentials
#: were generated with (libxc LDA_XC_TETER93).  Every other string is passed to PySCF unchanged.
XC_ALIASES = {"LDA": "LDA_XC_TETER93"}


def pyscf_xc(xc: str) -> str:
    """The PySCF/libxc functional string for ``xc`` (maps "LDA" to exchange+correlation)."""
    return XC_ALIASES.get(xc.strip().upper(), xc)


def _voigt_from_3x3(sigma: np.ndarray) -> np.ndarray:
    """Symmetrise a 3x3 stress and return it in Voigt order xx, yy, zz, yz, xz, xy."""
    s = 0.5 * (np.asarray(sigma, dtype=float) + np.asarray(sigma, dtype=float).T)
    return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


def fcc_cubic_kpts(n: int = 2) -> np.ndarray:
    """Shifted n x n x n Monkhorst-Pack grid of the cubic cell, folded into the primitive fcc zone.

    Fractional coordinates with respect to the reciprocal vectors of ASE's primitive fcc/diamond
    cell (``ase.build.bulk(..., cubic=False)``: a1 = (0, a/2, a/2), a2 = (a/2, 0, a/2),
    a3 = (a/2, a/2, 0)), 4 n^3 points.  Unlike a shifted mesh of the primitive cell, this set is
    invariant under the cubic point group, so an unstrained crystal has no spurious shear stress
    (measured: a shifted 2x2x2 primitive mesh gives 6.8 GPa of shear stress in perfect Si).
    It is the k-sampling of the 8-atom cubic cell with an n^3 shifted mesh.

    Parameters
    ----------
    n : int, default 2

    Returns
    -------
    numpy.ndarray
        (4 n^3, 3) fractional k-points in [0, 1).
    """
    n = validate.positive_int("n", n)
    u = (2 * np.arange(n) - n + 1) / (2.0 * n)  # shifted MP coordinates of the cubic cell
    cosets = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    A = 0.5 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=float)  # a_i in units of a
    pts = []
    for g in cosets:
        for u1 in u:
            for u2 in u:
                for u3 in u:
                    kc = np.array([u1, u2, u3]) + g  # Cartesian k in units of 2*pi/a
                    pts.append(np.mod(A @ kc, 1.0))
    pts = np.round(np.array(pts), 12) % 1.0
    uniq = np.unique(pts, axis=0)
    if len(uniq) != 4 * n ** 3:  # pragma: no cover - a construction error
        raise RuntimeError("fcc_cubic_kpts: folding produced duplicate k-points")
    return uniq


def _check_params(p: dict) -> dict:
    """Validate calculator parameters; return a normalised copy."""
    out = dict(p)
    for key in ("xc", "basis", "pseudo"):
        if not isinstance(out[key], str) or not out[key].strip():
            raise InputError(key, out[key], "a non-empty string")
    if out["ecp"] is not None and (not isinstance(out["ecp"], str) or not out["ecp"].strip()):
        raise InputError("ecp", out["ecp"], "None or a non-empty string (e.g. 'def2-svp')")
    if isinstance(out["charge"], bool) or not isinstance(out["charge"], (int, np.integer)):
        if isinstance(out["charge"], float) and out["charge"].is_integer():
            out["charge"] = int(out["charge"])
        else:
            raise InputError("charge", out["charge"], "an integer (net charge in units of e)")
    out["charge"] = int(out["charge"])
    out["spin"] = (None if out["spin"] is None
                   else validate.positive_int("spin", out["spin"], minimum=0))
    out["kpts"] = validate.kmesh("kpts", out["kpts"])
    if out["kpts_scaled"] is not None:
        ks = validate.finite_array("kpts_scaled", out["kpts_scaled"], (None, 3))
        if len(ks) == 0:
            raise InputError("kpts_scaled", out["kpts_scaled"], "at least one k-point")
        out["kpts_scaled"] = tuple(tuple(float(x) for x in row) for row in ks)
    out["ke_cutoff"] = (None if out["ke_cutoff"] is None
                        else validate.positive("ke_cutoff", out["ke_cutoff"]))
    out["smearing"] = (None if out["smearing"] in (None, 0, 0.0)
                       else validate.positive("smearing", out["smearing"]))
    out["conv_tol"] = validate.positive("conv_tol", out["conv_tol"])
    out["max_cycle"] = validate.positive_int("max_cycle", out["max_cycle"])
    out["symmetry"] = bool(out["symmetry"])
    out["gamma_centered"] = bool(out["gamma_centered"])
    out["density_fit"] = bool(out["density_fit"])
    out["initial_guess"] = validate.one_of("initial_guess", out["initial_guess"],
                                           ("reuse", "minao", "atom"))
    return out


class PySCFCalculator(Calculator):
    """Periodic Kohn-Sham DFT (PySCF KRKS, GTH pseudopotentials) as an ASE Calculator.

    Parameters
    ----------
    xc : str, default "PBE"
        Exchange-correlation functional as PySCF reads it ("PBE", "LDA,PW", ...), except that
        "LDA" means the Pade LDA (exchange AND correlation, ``LDA_XC_TETER93``, the functional of
        the gth-pade pseudopotentials): PySCF itself would read "LDA" as exchange only.
    basis : str, default "gth-dzvp"
        Gaussian basis set matching the pseudopotential family.
    pseudo : str, default "gth-pbe"
        GTH pseudopotential ("gth-pbe" for PBE, "gth-pade" for LDA).
    kpts : int or tuple of 3 int, default (4, 4, 4)
        Monkhorst-Pack mesh.  Validated: anything but positive integers raises
        :class:`~scaleladder.core.errors.InputError` naming ``kpts``.
    kpts_scaled : array-like (n, 3) or None, default None
        Explicit k-points in fractional coordinates of the cell's reciprocal vectors (equal
        weights); overrides ``kpts``.  They move with the cell under strain (as PySCF's stress
        code assumes).  Use :func:`fcc_cubic_kpts` for primitive fcc/diamond cells: a
        Monkhorst-Pack grid of the cubic cell folded into the primitive zone keeps the cubic
        symmetry, which shifted meshes of the primitive cell break.
    gamma_centered : bool, default True
        True: Gamma-centred grid (PySCF's default; keeps the full lattice symmetry).  False: the
        original Monkhorst-Pack offset for even meshes, which converges total energies faster
        but, for a primitive fcc/diamond cell, breaks the cubic symmetry: measured spurious shear
        stress in perfect Si of 6.8 GPa (2x2x2) and 1.1 GPa (4x4x4).  Do not use it for
        stresses or forces; prefer ``kpts_scaled=fcc_cubic_kpts(2)``.
    ke_cutoff : float or None, default 25.0
        Kinetic-energy cutoff of the FFT grid in Hartree (None: PySCF's precision-based default,
        which is much finer and slower).
    smearing : float or None, default None
        Fermi-Dirac smearing width in Hartree; None for integer occupations (insulators).
    conv_tol : float, default 1e-8
        SCF energy convergence threshold in Hartree.
    max_cycle : int, default 60
        Maximum number of SCF cycles; an SCF that does not converge raises
        :class:`~scaleladder.core.errors.ConvergenceError`.
    symmetry : bool, default True
        Use space-group-symmetry-reduced k-points when only the energy is requested.  Forces and
        stress always use the full mesh (PySCF has no gradients for symmetry-adapted k-points); the
        irreducible-wedge density is then unfolded and used as the initial guess, so the full-mesh
        SCF converges in a few cycles.
    density_fit : bool, default False
        Use Gaussian density fitting (GDF) instead of FFT density fitting.  FFTDF is faster for
        small cells with a 25 Ha cutoff (measured, see docs/electronic_settings.md) and is required
        by PySCF's stress code; GDF is therefore energy/forces only.
    verbose : int, default 0
        PySCF verbosity.
    initial_guess : {"reuse", "minao", "atom"}, default "reuse"
        "reuse": the previous converged density matrix of this calculator is the initial guess of
        the next configuration when the number of atoms, atomic numbers, basis size and k-mesh
        match (a strain series does not start from scratch); otherwise PySCF's "minao" guess.
    max_memory : int, default 4000
        PySCF memory limit in MB.
    charge : int, default 0
        Net charge (molecules only; a periodic cell must be neutral).
    spin : int or None, default None
        Number of unpaired electrons 2S (molecules only).  None: 0 for an even electron count;
        an odd electron count without ``spin`` raises :class:`InputError` naming ``spin``.
        ``spin == 0`` runs RKS, ``spin > 0`` UKS.
    ecp : str or None, default None
        Effective core potential of a molecular calculation (e.g. "def2-svp" for heavy atoms).
    label : str, optional
        Name of the configuration, used in error messages (ASE's ``label``).

    Molecules
    ---------
    When ``atoms.pbc`` is all False the calculator builds a molecular ``pyscf.gto.Mole``
    (Å coordinates, any PySCF basis such as "def2-svp" or "6-31g*") and runs ``pyscf.dft.RKS``
    (spin 0) or ``pyscf.dft.UKS`` (spin > 0), with ``.density_fit()`` when ``density_fit=True``.
    Energy (eV) and forces (eV/Å, analytic nuclear gradient including the DFT-grid response, so
    they are the exact derivative of the reported energy) are available; the stress raises
    :class:`~scaleladder.core.errors.PropertyNotImplementedError` (there is no cell).  ``kpts``,
    ``ke_cutoff``, ``smearing`` and ``symmetry`` do not apply.  ``pseudo`` (GTH) is applied only
    with a GTH basis ("gth-...", which requires it); any other basis (e.g. "6-31g") is
    all-electron, with ``ecp`` for effective core potentials.  Mixed periodicity (e.g. a slab with
    ``pbc=(True, True, False)``) raises :class:`InputError`: only fully periodic or fully open
    structures are supported.

    Notes
    -----
    ``results`` after a calculation also holds ``scf_cycles`` (total SCF iterations, both stages
    when the symmetric energy is followed by a full-mesh gradient SCF) and ``elapsed_s``.
    With smearing, ``free_energy`` is the Mermin free energy ``E - sigma*S`` (PySCF's ``e_free``,
    to which forces and stress are consistent) and ``energy`` the zero-width extrapolation
    ``E - sigma*S/2`` (``e_zero``); without smearing both are the same number.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]
    default_parameters: dict[str, Any] = dict(
        xc="PBE", basis="gth-dzvp", pseudo="gth-pbe", kpts=(4, 4, 4), ke_cutoff=25.0,
        smearing=None, conv_tol=1e-8, gamma_centered=True, kpts_scaled=None, max_cycle=60,
        symmetry=True, density_fit=False, verbose=0, initial_guess="reuse", max_memory=4000,
        charge=0, spin=None, ecp=None,
    )

    def __init__(self, label: str | None = None, atoms=None, **kwargs):
        unknown = set(kwargs) - set(self.default_parameters)
        if unknown:
            raise InputError("parameters", sorted(unknown),
                             "known parameters: " + ", ".join(sorted(self.default_parameters)))
        params = dict(self.default_parameters)
        params.update(kwargs)
        _check_params(params)  # fail early with InputError
        self._config_label = label
        self._guess: dict | None = None
        self._last_full_mf: tuple | None = None
        Calculator.__init__(self, atoms=atoms, **kwargs)

    # ------------------------------------------------------------------ helpers
    def set(self, **kwargs):
        """Set parameters (validated); a changed parameter resets results and the stored guess."""
        changed = Calculator.set(self, **kwargs)
        if changed:
            _check_params({**self.default_parameters, **self.parameters})
            self._guess = None
            self._last_full_mf = None
        return changed

    def _settings(self) -> dict:
        p = _check_params({**self.default_parameters, **self.parameters})
        return {k: p[k] for k in ("xc", "basis", "pseudo", "kpts", "kpts_scaled",
                                  "gamma_centered", "ke_cutoff",
                                  "smearing",
                                  "conv_tol", "max_cycle", "symmetry", "density_fit")}

    def _describe(self, atoms) -> str:
        if not any(atoms.pbc):
            name = self._config_label or atoms.info.get("name") or ""
            head = f"{name} " if name else ""
            return f"{head}{atoms.get_chemical_formula()} ({len(atoms)} atoms, molecule)"
        cell = np.asarray(atoms.cell)
        lengths = ", ".join(f"{x:.4f}" for x in atoms.cell.lengths())
        name = self._config_label or atoms.info.get("name") or ""
        head = f"{name} " if name else ""
        return (f"{head}{atoms.get_chemical_formula()} ({len(atoms)} atoms, cell lengths "
                f"[{lengths}] Å, volume {abs(np.linalg.det(cell)):.4f} Å^3)")

    def _build_cell(self, atoms, p: dict, symmetry: bool):
        from pyscf.pbc import gto

        if not all(atoms.pbc):
            raise InputError("atoms.pbc", tuple(bool(x) for x in atoms.pbc),
                             "(True, True, True) or (False, False, False)",
                             "only fully periodic (3D) or fully open (molecular) structures are "
                             "supported")
        if p["charge"] != 0 or p["spin"] not in (None, 0):
            raise InputError("charge/spin", (p["charge"], p["spin"]), "(0, None or 0) for a "
                             "periodic cell", "the periodic calculation is neutral and "
                             "spin-restricted (KRKS); charge and spin apply to molecules")
        cell = gto.Cell()
        cell.atom = [(s, tuple(r)) for s, r in zip(atoms.get_chemical_symbols(), atoms.positions)]
        cell.a = np.asarray(atoms.cell, dtype=float)
        cell.unit = "Angstrom"
        cell.basis = p["basis"]
        cell.pseudo = p["pseudo"]
        if p["ke_cutoff"] is not None:
            cell.ke_cutoff = p["ke_cutoff"]
        cell.verbose = p["verbose"]
        cell.max_memory = p["max_memory"]
        if symmetry:
            cell.space_group_symmetry = True
            cell.symmorphic = False
        cell.build()
        return cell

    def _make_mf(self, cell, p: dict, symmetry: bool):
        from pyscf.pbc import dft

        if p["kpts_scaled"] is not None:
            kabs = cell.get_abs_kpts(np.asarray(p["kpts_scaled"], dtype=float))
            if symmetry:
                from pyscf.pbc.lib import kpts as libkpts

                kpts = libkpts.make_kpts(cell, kabs, space_group_symmetry=True,
                                         time_reversal_symmetry=True)
            else:
                kpts = kabs
        elif symmetry:
            kpts = cell.make_kpts(p["kpts"], with_gamma_point=p["gamma_centered"],
                                  space_group_symmetry=True, time_reversal_symmetry=True)
        else:
            kpts = cell.make_kpts(p["kpts"], with_gamma_point=p["gamma_centered"])
        mf = dft.KRKS(cell, kpts=kpts)
        mf.xc = pyscf_xc(p["xc"])
        mf.conv_tol = p["conv_tol"]
        mf.max_cycle = p["max_cycle"]
        mf.verbose = p["verbose"]
        if p["density_fit"]:
            mf = mf.density_fit()
        if p["smearing"] is not None:
            mf = mf.smearing(sigma=p["smearing"], method="fermi")
        return mf, kpts

    def _guess_full(self, atoms, cell, p: dict) -> np.ndarray | None:
        """Previous converged full-mesh density matrix, if it fits this configuration."""
        g = self._guess
        if g is None or self.parameters.get("initial_guess", "reuse") != "reuse":
            return None
        if (g["natoms"] != len(atoms) or g["nao"] != cell.nao_nr()
                or g["kmesh"] != (p["kpts"], p["gamma_centered"], p["kpts_scaled"])
                or not np.array_equal(g["numbers"], atoms.numbers)):
            return None
        return g["dm"]

    def _run_scf(self, mf, dm0, atoms, p: dict, settings: dict) -> int:
        if dm0 is None and p["initial_guess"] in ("minao", "atom"):
            mf.init_guess = p["initial_guess"]
        mf.kernel(dm0=dm0)
        cycles = int(getattr(mf, "cycles", -1))
        if not mf.converged:
            raise ConvergenceError(
                what=f"SCF did not converge in {p['max_cycle']} cycles",
                configuration=self._describe(atoms),
                settings=settings,
                suggestion=_CONVERGENCE_SUGGESTION,
            )
        return cycles

    # ------------------------------------------------------------------ main
    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Run the SCF (and gradients) for ``atoms``; fill ``self.results`` in ASE units.

        Parameters
        ----------
        atoms : ase.Atoms
            Periodic configuration (pbc all True) or molecule (pbc all False).
        properties : sequence of str
            Any of "energy", "free_energy", "forces", "stress".
        system_changes : list of str
            As in ASE.

        Raises
        ------
        ConvergenceError
            When the SCF does not converge within ``max_cycle``.
        InputError
            For invalid parameters or a non-periodic ``atoms``.
        """
        t_start = time.perf_counter()
        Calculator.calculate(self, atoms, properties, system_changes)
        atoms = self.atoms
        p = _check_params({**self.default_parameters, **self.parameters})
        if not any(atoms.pbc):
            self._calculate_molecule(atoms, properties, p, t_start)
            return
        settings = self._settings()
        want_grad = "forces" in properties or "stress" in properties
        if want_grad and p["density_fit"] and "stress" in properties:
            raise InputError("density_fit", True, "False when the stress is requested",
                             "PySCF's stress code needs FFT density fitting (FFTDF)")

        cycles = 0
        timings: dict[str, float] = {}
        nk = len(p["kpts_scaled"]) if p["kpts_scaled"] is not None else int(np.prod(p["kpts"]))
        use_sym = p["symmetry"] and not want_grad and nk > 1
        last = self._last_full_mf
        self._last_full_mf = None
        if want_grad and not system_changes and last is not None:
            # same atoms, same parameters, full-mesh SCF already converged (e.g. ASE asked for
            # forces, then for the stress): reuse it instead of repeating the SCF
            mf, cell, dm_full = last
        elif use_sym:
            cell = self._build_cell(atoms, p, symmetry=True)
            dm_full_guess = self._guess_full(atoms, cell, p)
            mf, kpts = self._make_mf(cell, p, symmetry=True)
            dm0 = None if dm_full_guess is None else dm_full_guess[kpts.ibz2bz]
            cycles += self._run_scf(mf, dm0, atoms, p, settings)
            dm_full = np.asarray(kpts.transform_dm(mf.make_rdm1()))
        else:
            cell = self._build_cell(atoms, p, symmetry=False)
            dm_full_guess = self._guess_full(atoms, cell, p)
            mf, kpts = self._make_mf(cell, p, symmetry=False)
            cycles += self._run_scf(mf, dm_full_guess, atoms, p, settings)
            dm_full = np.asarray(mf.make_rdm1())

        timings["scf_s"] = time.perf_counter() - t_start
        e_free = e_zero = float(mf.e_tot)
        if p["smearing"] is not None:
            # PySCF's e_tot with smearing is E (no entropy term); the Mermin free energy, to which
            # forces and stress are consistent, is e_free = E - sigma*S; e_zero = E - sigma*S/2.
            e_free = float(mf.e_free)
            e_zero = float(mf.e_zero)
        self.results["free_energy"] = e_free * HARTREE_EV
        self.results["energy"] = e_zero * HARTREE_EV

        if want_grad:
            g = mf.nuc_grad_method()
            if "forces" in properties:  # as expensive as the stress: only when asked for
                t1 = time.perf_counter()
                grad = np.asarray(g.kernel(), dtype=float)  # Hartree/Bohr, dE/dR
                self.results["forces"] = -grad * FORCE_AU_TO_EV_PER_A
                timings["forces_s"] = time.perf_counter() - t1
            if "stress" in properties:
                from pyscf.pbc.grad import krks_stress

                t1 = time.perf_counter()
                sigma = np.asarray(krks_stress.kernel(g), dtype=float)  # Hartree/Bohr^3
                self.results["stress"] = _voigt_from_3x3(sigma) * STRESS_AU_TO_EV_PER_A3
                timings["stress_s"] = time.perf_counter() - t1

        self._guess = {"natoms": len(atoms), "numbers": atoms.numbers.copy(),
                       "nao": cell.nao_nr(),
                       "kmesh": (p["kpts"], p["gamma_centered"], p["kpts_scaled"]),
                       "dm": dm_full}
        if not use_sym:
            self._last_full_mf = (mf, cell, dm_full)
        self.results["scf_cycles"] = cycles
        self.results["timings"] = timings
        self.results["elapsed_s"] = time.perf_counter() - t_start


    # ------------------------------------------------------------------ molecules
    def _molecule_settings(self, p: dict, pseudo: str | None) -> dict:
        return {"xc": p["xc"], "basis": p["basis"], "pseudo": pseudo, "ecp": p["ecp"],
                "charge": p["charge"], "spin": p["spin"], "conv_tol": p["conv_tol"],
                "max_cycle": p["max_cycle"], "density_fit": p["density_fit"]}

    def _build_mole(self, atoms, p: dict):
        """The molecular ``pyscf.gto.Mole`` for ``atoms`` (Å); spin resolved from ``p``."""
        from pyscf import gto

        # GTH pseudopotentials only go with GTH basis sets; any other basis is all-electron
        # (plus ``ecp`` if given).  ASE stores the defaults in self.parameters, so "was pseudo
        # given explicitly" cannot be told apart from the periodic default "gth-pbe".
        use_pseudo = p["basis"].strip().lower().startswith("gth")
        pseudo = p["pseudo"] if use_pseudo else None
        mol = gto.Mole()
        mol.atom = [(s, tuple(r)) for s, r in zip(atoms.get_chemical_symbols(), atoms.positions)]
        mol.unit = "Angstrom"
        mol.basis = p["basis"]
        if pseudo is not None:
            mol.pseudo = pseudo
        if p["ecp"] is not None:
            mol.ecp = p["ecp"]
        mol.charge = p["charge"]
        mol.spin = None  # PySCF: the parity of the electron count; checked below
        mol.verbose = p["verbose"]
        mol.max_memory = p["max_memory"]
        mol.build()
        nelec = int(mol.nelectron)
        if p["spin"] is None:
            if nelec % 2:
                raise InputError("spin", None, "the number of unpaired electrons 2S (e.g. 1 for a "
                                 "doublet radical)",
                                 f"{atoms.get_chemical_formula()} with charge {p['charge']} has "
                                 f"an odd number of electrons ({nelec})")
            spin = 0
        else:
            spin = p["spin"]
            if (nelec - spin) % 2 or spin > nelec:
                raise InputError("spin", spin, f"an integer 2S <= {nelec} with the parity of the "
                                 f"electron count ({nelec})")
        mol.spin = spin
        mol.build()
        return mol, pseudo

    def _calculate_molecule(self, atoms, properties, p: dict, t_start: float) -> None:
        """Molecular RKS/UKS energy and forces (no stress: there is no cell)."""
        from pyscf import dft

        if "stress" in properties:
            raise PropertyNotImplementedError(
                "stress is not defined for a molecule (atoms.pbc all False: no cell); "
                "request energy and forces only")
        mol, pseudo = self._build_mole(atoms, p)
        settings = self._molecule_settings(p, pseudo)
        settings["spin"] = mol.spin
        mf = dft.RKS(mol) if mol.spin == 0 else dft.UKS(mol)
        mf.xc = pyscf_xc(p["xc"])
        mf.conv_tol = p["conv_tol"]
        mf.max_cycle = p["max_cycle"]
        mf.verbose = p["verbose"]
        if p["density_fit"]:
            mf = mf.density_fit()
        key = ("molecule", mol.spin, mol.charge, p["basis"], pseudo, p["ecp"])
        g = self._guess
        dm0 = None
        if (g is not None and p["initial_guess"] == "reuse" and g["kmesh"] == key
                and g["natoms"] == len(atoms) and g["nao"] == mol.nao_nr()
                and np.array_equal(g["numbers"], atoms.numbers)):
            dm0 = g["dm"]
        timings: dict[str, float] = {}
        self._last_full_mf = None
        cycles = self._run_scf(mf, dm0, atoms, p, settings)
        timings["scf_s"] = time.perf_counter() - t_start
        e = float(mf.e_tot)
        self.results["energy"] = e * HARTREE_EV
        self.results["free_energy"] = e * HARTREE_EV
        if "forces" in properties:
            t1 = time.perf_counter()
            grad_method = mf.nuc_grad_method()
            # the integration grid moves with the atoms; its response makes the forces the exact
            # derivative of the reported energy (without it: errors ~1e-4 Ha/Bohr)
            grad_method.grid_response = True
            grad_method.verbose = p["verbose"]
            grad = np.asarray(grad_method.kernel(), dtype=float)  # Hartree/Bohr, dE/dR
            self.results["forces"] = -grad * FORCE_AU_TO_EV_PER_A
            timings["forces_s"] = time.perf_counter() - t1
        self._guess = {"natoms": len(atoms), "numbers": atoms.numbers.copy(),
                       "nao": mol.nao_nr(), "kmesh": key, "dm": np.asarray(mf.make_rdm1())}
        self.results["scf_cycles"] = cycles
        self.results["timings"] = timings
        self.results["elapsed_s"] = time.perf_counter() - t_start


#: Ground-state spin (2S = number of unpaired electrons) of free atoms, for cohesive energies.
ATOM_GROUND_STATE_SPIN = {"H": 1, "He": 0, "Li": 1, "Be": 0, "B": 1, "C": 2, "N": 3, "O": 2,
                          "F": 1, "Ne": 0, "Na": 1, "Mg": 0, "Al": 1, "Si": 2, "P": 3, "S": 2,
                          "Cl": 1, "Ar": 0, "Ga": 1, "Ge": 2, "As": 3}


def isolated_atom_energy(symbol: str, xc: str = "PBE", basis: str = "gth-dzvp",
                         pseudo: str = "gth-pbe", spin: int | None = None,
                         conv_tol: float = 1e-9, max_cycle: int = 100, verbose: int = 0) -> float:
    """Energy (eV) of the free atom, consistent with the periodic GTH calculation.

    A molecular spin-unrestricted Kohn-Sham calculation (``pyscf.dft.UKS``) with the SAME GTH
    basis and pseudopotential as the periodic cell, so that
    ``E_coh = E_atom - E_bulk/N`` cancels the pseudopotential's reference energy.  Integer
    occupations are allowed to break spherical symmetry (the standard choice for cohesive
    energies; for Si the 3P ground state is p_x^1 p_y^1).  The offset between this molecular energy
    and the same atom computed periodically in a large box with FFT density fitting at the
    calculator's ``ke_cutoff`` was measured (docs/electronic_settings.md) and is far below the
    accuracy of a cohesive energy.

    Parameters
    ----------
    symbol : str
        Element symbol.
    xc, basis, pseudo : str
        As in :class:`PySCFCalculator`; use the same values as the periodic calculation.
    spin : int, optional
        Number of unpaired electrons (2S); default from :data:`ATOM_GROUND_STATE_SPIN`.
    conv_tol : float, default 1e-9
        SCF threshold in Hartree.
    max_cycle : int, default 100
    verbose : int, default 0

    Returns
    -------
    float
        Total energy in eV.

    Raises
    ------
    ConvergenceError
        When the atomic SCF does not converge.
    InputError
        Unknown symbol, or no default spin for it and none given.
    """
    from ase.data import atomic_numbers
    from pyscf import dft, gto

    if symbol not in atomic_numbers:
        raise InputError("symbol", symbol, "a chemical element symbol such as 'Si'")
    if spin is None:
        if symbol not in ATOM_GROUND_STATE_SPIN:
            raise InputError("spin", spin, "the number of unpaired electrons of the free atom",
                             f"no default known for {symbol}")
        spin = ATOM_GROUND_STATE_SPIN[symbol]
    spin = validate.positive_int("spin", spin, minimum=0)
    mol = gto.Mole()
    mol.atom = [(symbol, (0.0, 0.0, 0.0))]
    mol.basis = basis
    mol.pseudo = pseudo
    mol.spin = spin
    mol.verbose = verbose
    mol.build()
    mf = dft.UKS(mol)
    mf.xc = pyscf_xc(xc)
    mf.conv_tol = validate.positive("conv_tol", conv_tol)
    mf.max_cycle = validate.positive_int("max_cycle", max_cycle)
    mf.grids.level = 5
    with warnings.catch_warnings():
        # PySCF's GTH-pseudopotential molecules lack one r² integral used only for a printout
        warnings.filterwarnings("ignore", message="Function int1e_r2_origi", category=UserWarning)
        mf.kernel()
        if not mf.converged:
            mf = mf.newton()
            mf.kernel()
    if not mf.converged:
        raise ConvergenceError(
            what=f"atomic SCF did not converge in {max_cycle} cycles",
            configuration=f"isolated {symbol} atom (spin={spin})",
            settings=dict(xc=xc, basis=basis, pseudo=pseudo, spin=spin, conv_tol=conv_tol),
            suggestion="increase max_cycle or check the spin state")
    return float(mf.e_tot) * HARTREE_EV
