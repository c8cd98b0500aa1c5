"""Periodic Kohn-Sham DFT with PySCF behind ASE's Calculator protocol.

:class:`PySCFCalculator` runs a k-point restricted Kohn-Sham calculation (``pyscf.pbc.dft.KRKS``),
or a spin-polarised one (``pyscf.pbc.dft.KUKS``, fixed or free magnetisation, broken-symmetry
guesses from ASE's initial magnetic moments), with GTH pseudopotentials and Gaussian basis sets
on plane-wave (FFT) density fitting, and returns
energies in eV, forces in eV/Å and the stress tensor in eV/Å³ (ASE Voigt order xx, yy, zz, yz,
xz, xy; ASE sign: ``stress = (1/V) dE/dε``, positive when the cell wants to shrink).

Unit conversions are written out once, here, with the CODATA set of :mod:`scaleladder.core.units`
(identical to ``ase.units``):

* energy  : Hartree -> eV        (``HARTREE_EV``)
* forces  : Hartree/Bohr -> eV/Å (``HARTREE_EV / BOHR_ANGSTROM``)
* stress  : Hartree/Bohr³ -> eV/Å³ (``HARTREE_EV / BOHR_ANGSTROM**3``)

PySCF's own ASE wrapper (``pyscf.pbc.tools.pyscf_ase``) multiplies the stress by Hartree/Bohr
only, so it reports stresses too small by a factor Bohr² (0.28); it is deliberately not used.

Converged density matrices can be kept on disk (``scf_checkpoint``) so that a fresh calculator in
another process starts the next configuration of a series from them.

Molecules can be embedded in external point charges (electrostatic QM/MM embedding,
:meth:`PySCFCalculator.set_point_charges`) through PySCF's own ``pyscf.qmmm`` module; the forces on
the charges are returned as ``results["point_charge_forces"]``.

:func:`isolated_atom_energy` gives the free-atom energy consistent with the periodic calculation
(same GTH basis and pseudopotential, molecular spin-unrestricted calculation) for cohesive energies.
"""
from __future__ import annotations

import hashlib
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from ..core import validate
from ..core.errors import ConvergenceError, InputError, PropertyNotImplementedError
from ..core.tensors import stress_voigt
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


def _fast_local_pp_gradient(grad) -> None:
    """Give a restricted k-point gradient object the local-pseudopotential term traced on the
    density (:mod:`._pyscf_grad`: PySCF's numbers, half the time on 8-atom cells); any other
    gradient object is left as it is."""
    import types

    from pyscf.pbc.grad import krks

    if isinstance(grad, krks.Gradients):
        from ._pyscf_grad import restricted_grad_elec

        grad.grad_elec = types.MethodType(restricted_grad_elec, grad)


def pyscf_xc(xc: str) -> str:
    """The PySCF/libxc functional string for ``xc`` (maps "LDA" to exchange+correlation)."""
    return XC_ALIASES.get(xc.strip().upper(), xc)


def kmesh_for_cell(atoms, kspacing: float) -> tuple[int, int, int]:
    """Monkhorst-Pack mesh of one k-point density for any cell: ``n_i = ceil(|b_i| / kspacing)``
    with ``|b_i|`` the reciprocal vector lengths (2π included, Å⁻¹), 1 along non-periodic axes.

    With ``kspacing = 0.6`` a diamond-Si cubic cell (a = 5.43 Å) gets 2x2x2 (shifted: the
    flagship's ``fcc_cubic_kpts(2)`` sampling), a (111) 1x1 slab 4x4x1 (a vacuum direction over
    10.5 Å long gets one point), a 2x1x1 supercell 1x2x2: cells of any shape share one density,
    so their energies per atom carry the same k-point error.
    """
    from ..core import validate as _v

    ks = _v.positive("kspacing", kspacing)
    cell = np.asarray(atoms.cell, dtype=float)
    b = 2 * np.pi * np.linalg.inv(cell).T
    n = [max(1, int(np.ceil(np.linalg.norm(b[i]) / ks - 1e-9))) if atoms.pbc[i] else 1
         for i in range(3)]
    return tuple(n)


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
    if out["spinpol"] is not None and not isinstance(out["spinpol"], (bool, np.bool_)):
        raise InputError("spinpol", out["spinpol"], "None, True or False")
    out["spinpol"] = None if out["spinpol"] is None else bool(out["spinpol"])
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
    out["smearing_method"] = validate.one_of("smearing_method", out["smearing_method"],
                                             ("fermi", "gaussian"))
    out["conv_tol"] = validate.positive("conv_tol", out["conv_tol"])
    out["max_cycle"] = validate.positive_int("max_cycle", out["max_cycle"])
    out["symmetry"] = bool(out["symmetry"])
    out["gamma_centered"] = bool(out["gamma_centered"])
    out["density_fit"] = bool(out["density_fit"])
    out["initial_guess"] = validate.one_of("initial_guess", out["initial_guess"],
                                           ("reuse", "minao", "atom"))
    ckpt = out["scf_checkpoint"]
    if ckpt is not None:
        if not isinstance(ckpt, (str, os.PathLike)) or not str(os.fspath(ckpt)).strip():
            raise InputError("scf_checkpoint", ckpt, "None or a directory path (str or "
                             "os.PathLike)")
        out["scf_checkpoint"] = os.fspath(ckpt)
    return out


# ---------------------------------------------------------------------------- spin polarisation
#: initial magnetic moments below this (μB) count as zero
_MOMENT_TOL = 1e-8


@dataclass(frozen=True)
class _SpinSetup:
    """How the spin of one calculation is treated (resolved from ``spin``, ``spinpol``,
    ``smearing`` and the atoms' initial magnetic moments).

    restricted : True for RKS/KRKS (alpha = beta density).
    spin : fixed n_alpha - n_beta per cell (molecule) in electrons; None = free (smearing with a
        common Fermi level for both spins).
    moments : per-atom initial moments (μB) used to build a broken-symmetry guess, or None.
    """

    restricted: bool
    spin: int | None
    moments: tuple[float, ...] | None
    #: True when alpha and beta were swapped to make a negative fixed spin positive (PySCF's
    #: KUHF occupies every alpha orbital when n_alpha = 0); reported moments are flipped back
    flipped: bool = False

    def key(self) -> tuple:
        return (self.restricted, self.spin, self.moments)

    def nonnegative(self) -> "_SpinSetup":
        """The same state with alpha and beta swapped if the fixed spin is negative."""
        if self.spin is None or self.spin >= 0:
            return self
        moments = None if self.moments is None else tuple(-m for m in self.moments)
        return _SpinSetup(self.restricted, -self.spin, moments, flipped=True)


def _initial_moments(atoms) -> np.ndarray:
    """Collinear initial magnetic moments (μB) of ``atoms``, one per atom (zeros if unset)."""
    m = np.asarray(atoms.get_initial_magnetic_moments(), dtype=float)
    if m.ndim != 1:
        raise InputError("initial_magnetic_moments", m.tolist(),
                         "collinear moments, one number per atom (μB)",
                         "non-collinear (n, 3) moments need a generalised (GKS) calculation, "
                         "which this calculator does not run")
    if not np.all(np.isfinite(m)):
        raise InputError("initial_magnetic_moments", m.tolist(), "finite numbers (μB)")
    return m


def _resolve_spin(p: dict, moments: np.ndarray, nelectron: int, nk: int,
                  free_allowed: bool) -> _SpinSetup:
    """Restricted or unrestricted, and with which spin (see :class:`PySCFCalculator`).

    ``nelectron`` is the electron count per cell (molecule), ``nk`` the number of k-points of the
    full mesh (1 for a molecule); ``free_allowed`` is True where smearing lets the magnetisation
    float (periodic cells with ``smearing``).
    """
    has_moments = bool(np.any(np.abs(moments) > _MOMENT_TOL))
    spin, spinpol = p["spin"], p["spinpol"]
    if spinpol is False and ((spin or 0) > 0 or has_moments):
        raise InputError("spinpol", False, "True or None when spin > 0 or initial magnetic "
                         "moments are set",
                         f"spin={spin}, initial magnetic moments {moments.tolist()}: a "
                         "spin-restricted calculation cannot hold a magnetisation")
    polarised = spinpol if spinpol is not None else ((spin or 0) > 0 or has_moments)
    if not polarised:
        return _SpinSetup(restricted=True, spin=0, moments=None)
    field = "spin"
    if spin is None and not free_allowed:
        # no smearing: the magnetisation must be fixed; take the nearest integer to the sum of
        # the initial moments (0 for an antiferromagnetic guess)
        spin = int(round(float(moments.sum())))
        field = "initial_magnetic_moments"
    if spin is not None and ((nelectron - spin) * nk % 2 or abs(spin) > nelectron):
        shown = spin if field == "spin" else moments.tolist()
        raise InputError(field, shown,
                         f"a spin 2S = n_alpha - n_beta with |2S| <= {nelectron} electrons per "
                         f"cell and (N - 2S) x n_k even (N = {nelectron}, n_k = {nk})",
                         "give spin explicitly, or use smearing to let the magnetisation float"
                         if field != "spin" else None)
    mom = tuple(round(float(x), 8) for x in moments) if has_moments else None
    return _SpinSetup(restricted=False, spin=spin, moments=mom)


def _atom_populations(dm: np.ndarray, s1e: np.ndarray, aoslices) -> np.ndarray:
    """Mulliken electron population per atom (per cell) of a density matrix (nk, nao, nao)."""
    diag = np.einsum("kij,kji->i", dm, s1e).real / dm.shape[0]
    return np.array([diag[p0:p1].sum() for _b0, _b1, p0, p1 in aoslices])


def _mulliken_spin(dm: np.ndarray, s1e: np.ndarray, aoslices) -> np.ndarray:
    """Per-atom Mulliken spin populations n_alpha - n_beta (μB) of dm (2, nk, nao, nao)."""
    return (_atom_populations(dm[0], s1e, aoslices) - _atom_populations(dm[1], s1e, aoslices))


def _moment_guess(dm: np.ndarray, s1e: np.ndarray, aoslices, moments, nelec) -> np.ndarray:
    """Broken-symmetry alpha/beta guess (2, nk, nao, nao) with per-atom moments.

    Starts from the spin-symmetric total density D = D_alpha + D_beta of PySCF's guess (minao or
    atom, without PySCF's own ``breaksym``), and polarises each atom A by its fraction
    x_A = m_A / N_A (N_A: Mulliken electrons of A in D, x clipped to [-1, 1]):
    D_sigma = F_sigma (D / 2) F_sigma with F_alpha = diag(sqrt(1 + x_A)), F_beta =
    diag(sqrt(1 - x_A)) on A's AOs -- a congruence, so each channel stays Hermitian and
    positive semidefinite; the diagonal atomic blocks carry (1 +- x_A) N_A / 2 electrons.
    Each channel is then scaled to its electron count ``nelec`` (totals over the k-mesh).
    """
    total = dm[0] + dm[1]
    pops = _atom_populations(total, s1e, aoslices)
    nao = total.shape[-1]
    fa, fb = np.ones(nao), np.ones(nao)
    for (_b0, _b1, p0, p1), m, n in zip(aoslices, moments, pops):
        x = float(np.clip(m / n, -1.0, 1.0)) if n > 1e-8 else 0.0
        fa[p0:p1] = np.sqrt(1.0 + x)
        fb[p0:p1] = np.sqrt(1.0 - x)
    out = np.empty((2,) + total.shape, dtype=total.dtype)
    n_total = np.einsum("kij,kji->", total, s1e).real
    for s, f in enumerate((fa, fb)):
        out[s] = 0.5 * f[None, :, None] * total * f[None, None, :]
        n_s = np.einsum("kij,kji->", out[s], s1e).real
        target = float(nelec[s])
        if target <= 0:
            out[s] = 0.0
        elif n_s > 1e-6 * target:
            out[s] *= target / n_s
        else:  # moments emptied a channel that must hold electrons: start it unpolarised
            out[s] = total * (target / n_total)
    return out


# ---------------------------------------------------------------------------- SCF checkpoints
_CHECKPOINT_FORMAT = "scaleladder-scf-checkpoint"
_CHECKPOINT_VERSION = 1


def _checkpoint_path(directory: str, atoms, settings: dict) -> tuple[str, str]:
    """(file path, settings hash) of the checkpoint of ``atoms``' composition and settings.

    The hash covers the settings that make a density matrix a valid guess (basis, k-mesh, spin
    treatment, ...) and the ordered atomic numbers; the file name starts with the chemical
    formula so that one directory can hold several compositions.
    """
    from ..core.codec import canonical_json

    payload = canonical_json({"settings": settings,
                              "numbers": [int(z) for z in atoms.numbers]})
    digest = hashlib.sha256(payload.encode()).hexdigest()
    return os.path.join(directory, f"{atoms.get_chemical_formula()}_{digest[:24]}.npz"), digest


def _write_checkpoint(path: str, dm: np.ndarray, meta: dict) -> None:
    """dm + metadata in the project's one checkpoint format (kind ``"scf-density"``: atomic,
    fsynced, hashed, no pickle); a failure to write only warns (the checkpoint is a hint)."""
    from ..core.checkpoint import write_checkpoint
    from ..core.errors import StoreError

    try:
        write_checkpoint(path, {"dm": np.asarray(dm), "meta": meta}, kind="scf-density")
    except (OSError, StoreError) as exc:  # never fail the result for a hint
        warnings.warn(f"SCF checkpoint {path} could not be written ({exc}); the calculation "
                      "result is unaffected", RuntimeWarning, stacklevel=3)


def _read_checkpoint(path: str, expected: dict, shape: tuple) -> np.ndarray | None:
    """The density matrix stored at ``path`` if it is readable and matches ``expected``.

    A missing file returns None silently; a corrupt, unreadable or incompatible one returns None
    with a :class:`RuntimeWarning` naming the file (a checkpoint is a hint, never a failure).
    """
    if not os.path.isfile(path):
        return None
    from ..core.checkpoint import read_checkpoint

    try:
        data = read_checkpoint(path, kind="scf-density", field="scf_checkpoint")
        meta, dm = dict(data["meta"]), np.array(data["dm"])
    except Exception as exc:  # noqa: BLE001 - any failure to read (truncated, corrupt, another
        # kind, missing entry) only means "no guess"
        warnings.warn(f"SCF checkpoint {path} is unreadable and was ignored "
                      f"({type(exc).__name__}: {exc})", RuntimeWarning, stacklevel=3)
        return None
    problems = []
    if meta.get("format") != _CHECKPOINT_FORMAT or meta.get("version") != _CHECKPOINT_VERSION:
        problems.append("unknown format")
    for key, want in expected.items():
        if meta.get(key) != want:
            problems.append(f"{key}={meta.get(key)!r} (expected {want!r})")
    if dm.shape != tuple(shape):
        problems.append(f"density matrix shape {dm.shape} (expected {tuple(shape)})")
    elif not np.issubdtype(dm.dtype, np.number) or not np.all(np.isfinite(dm)):
        problems.append("non-finite or non-numeric density matrix")
    if problems:
        warnings.warn(f"SCF checkpoint {path} is incompatible with this configuration and was "
                      "ignored: " + "; ".join(problems[:4]), RuntimeWarning, stacklevel=3)
        return None
    return dm


# ---------------------------------------------------------------------------- point charges
#: a point charge closer than this (Å) to a QM nucleus is rejected: the nucleus-charge energy
#: diverges (point charge) or its gradient is 0/0 (Gaussian charge), and no physical embedding
#: puts a charge there (the closest legitimate case, an MM charge next to a link atom with the
#: "none" scheme, is ~0.4 Å away)
POINT_CHARGE_MIN_DISTANCE = 0.05


@dataclass(frozen=True)
class PointCharges:
    """External charges a molecular calculation is embedded in (validated, read-only copies).

    positions : (m, 3) Å.
    charges : (m,) in units of e.
    widths : (m,) Å Gaussian widths (charge density ``q (π w²)^(-3/2) exp(-r²/w²)``), or None
        for point charges.
    """

    positions: np.ndarray
    charges: np.ndarray
    widths: np.ndarray | None

    def __post_init__(self):
        for name in ("positions", "charges", "widths"):
            arr = getattr(self, name)
            if arr is not None:
                arr.setflags(write=False)

    def __len__(self) -> int:
        return len(self.charges)

    @property
    def model(self) -> str:
        """"point" or "gaussian" (PySCF's ``mm_mol.charge_model``)."""
        return "point" if self.widths is None else "gaussian"


def _check_point_charges(positions, charges, widths) -> PointCharges | None:
    """Validate point-charge input; None for zero charges."""
    pos = validate.finite_array("positions", positions, (None, 3))
    m = len(pos)
    q = validate.finite_array("charges", charges, (m,))
    w = None
    if widths is not None:
        w = np.asarray(validate.finite_array("widths", widths), dtype=float)
        if w.ndim == 0:
            w = np.full(m, float(w))
        if w.shape != (m,):
            raise InputError("widths", f"array of shape {w.shape}",
                             f"None, a number or shape ({m},): one Gaussian width (Å) per charge")
        if np.any(w <= 0):
            raise InputError("widths", w.tolist(), "positive Gaussian widths in Å",
                             "use widths=None for point charges")
    if m == 0:
        return None
    return PointCharges(pos.copy(), q.copy(), None if w is None else w.copy())


class PySCFCalculator(Calculator):
    """Periodic Kohn-Sham DFT (PySCF KRKS/KUKS, GTH pseudopotentials) as an ASE Calculator.

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
        Smearing width in Hartree; None for integer occupations (insulators).
    smearing_method : {"fermi", "gaussian"}, default "fermi"
        Occupation function of the smearing.  Gaussian occupations decay as exp(-x^2) instead of
        exp(-x): a width that makes a metallic surface's SCF converge leaves the gap of a
        semiconductor untouched (at sigma = 0.01 Ha Fermi-Dirac still puts 0.3 electrons into a
        state 0.5 eV above the Fermi level; Gaussian 0.005).
    conv_tol : float, default 1e-8
        SCF energy convergence threshold in Hartree.
    max_cycle : int, default 60
        Maximum number of SCF cycles; an SCF that does not converge raises
        :class:`~scaleladder.core.errors.ConvergenceError`.
    symmetry : bool, default True
        Use space-group-symmetry-reduced k-points when only the energy is requested.  Forces and
        stress always use the full mesh (PySCF has no gradients for symmetry-adapted k-points); the
        irreducible-wedge density is then unfolded and used as the initial guess, so the full-mesh
        SCF converges in a few cycles.  Spin-restricted (KRKS) only: a spin-polarised (KUKS) run
        always uses the full mesh (see Spin polarisation).
    density_fit : bool, default False
        Use Gaussian density fitting (GDF) instead of FFT density fitting.  FFTDF is faster for
        small cells with a 25 Ha cutoff (measured, see docs/electronic_settings.md) and is required
        by PySCF's stress code; GDF is therefore energy/forces only.
    verbose : int, default 0
        PySCF verbosity.
    initial_guess : {"reuse", "minao", "atom"}, default "reuse"
        "reuse": the previous converged density matrix of this calculator is the initial guess of
        the next configuration when the number of atoms, atomic numbers, basis size, k-mesh and
        spin treatment (restricted/unrestricted, spin, initial magnetic moments) match (a strain
        series does not start from scratch); failing that, a compatible ``scf_checkpoint`` file;
        otherwise PySCF's "minao" guess.  "minao"/"atom": always PySCF's guess of that name.
    max_memory : int, default 4000
        PySCF memory limit in MB.
    charge : int, default 0
        Net charge (molecules only; a periodic cell must be neutral: InputError naming
        ``charge``).
    spin : int or None, default None
        Number of unpaired electrons 2S = n_alpha - n_beta, fixed; for a periodic cell PER CELL
        (so the magnetisation is ``spin`` μB per cell at every k-point count).  Molecules: None
        means 0 for an even electron count; an odd electron count without ``spin`` raises
        :class:`InputError` naming ``spin``.  ``spin > 0`` runs UKS/KUKS.
    spinpol : bool or None, default None
        Spin-polarised (UKS/KUKS) or not.  None: polarised when ``spin > 0`` or any of
        ``atoms.get_initial_magnetic_moments()`` is non-zero (as GPAW's ``spinpol``).  True:
        always unrestricted, even with spin 0 and no moments (then the guess is spin-symmetric
        and, unless the SCF finds a lower broken-symmetry state, the result equals RKS).
        False: restricted; an InputError if ``spin > 0`` or moments are set.
    ecp : str or None, default None
        Effective core potential of a molecular calculation (e.g. "def2-svp" for heavy atoms).
    scf_checkpoint : str, os.PathLike or None, default None
        Directory for on-disk SCF checkpoints (created when first written).  After every converged
        SCF the full-mesh density matrix and its metadata are written there atomically (temp file
        + ``os.replace``) as ``<formula>_<hash>.npz`` (no pickle), one file per composition and
        settings, overwritten by the latest configuration.  With ``initial_guess="reuse"`` and
        no compatible in-memory guess (a fresh calculator, as the pipeline makes one per
        configuration) a compatible checkpoint is the initial guess.  A corrupt, unreadable or
        incompatible file is ignored with a :class:`RuntimeWarning` naming it.  Several
        processes may share one directory (readers see either the old or the new file).
    label : str, optional
        Name of the configuration, used in error messages (ASE's ``label``).

    Spin polarisation
    -----------------
    Periodic cells with ``spin > 0``, ``spinpol=True`` or non-zero initial magnetic moments run
    ``pyscf.pbc.dft.KUKS`` on the full k-mesh.

    * Fixed spin: n_alpha - n_beta = ``spin`` electrons per cell, imposed through PySCF's
      ``mf.nelec`` summed over the k-mesh.  (PySCF's KUHF reads ``cell.spin`` as the spin of the
      whole k-point supercell, so ``cell.spin = spin`` would give ``spin / n_k`` per cell.)
      Without smearing and without ``spin``, the spin is the nearest integer to the sum of the
      initial moments (0 for an antiferromagnetic guess; a negative sum runs as the spin-flipped
      state and is reported with the moments' sign).  Allowed when (N - 2S) x n_k is even and
      |2S| <= N (N valence electrons per cell), else :class:`InputError` naming ``spin`` (or
      ``initial_magnetic_moments`` where the spin came from them).
    * Smearing with KUKS: ``spin`` given -> ``fix_spin=True`` (separate Fermi levels for alpha and
      beta, electron counts fixed as above); ``spin=None`` -> PySCF's default ``fix_spin=False``:
      one Fermi level for both channels, so the magnetisation floats and is set by the SCF (the
      initial moments only seed it; it may come out non-integer).
    * Broken-symmetry guess: PySCF's spin-symmetric minao (or atom) density D, the AOs of each
      atom A re-weighted by sqrt(1 + m_A/N_A) in the alpha and sqrt(1 - m_A/N_A) in the beta
      channel (m_A its initial moment, N_A its Mulliken electron count in D), each channel then
      normalised to its electron count.  PySCF's own
      ``breaksym`` (which only drops the inter-atomic blocks of the beta guess) is switched off:
      spin symmetry is broken by the moments alone, so ``spinpol=True`` without moments starts
      from, and for a non-magnetic solid converges to, the KRKS density.
    * The symmetry-reduced k-point path is off for KUKS: PySCF symmetrises the density with the
      space group of the atoms, which ignores the magnetic order and would average an
      antiferromagnetic density over operations that swap the up and down atoms.
    * Forces: ``pyscf.pbc.grad.kuks``; stress: ``pyscf.pbc.grad.kuks_stress`` (FFTDF, non-hybrid).
    * ``results["magmom"]`` (μB per cell, n_alpha - n_beta, from the density matrix) and
      ``results["magmoms"]`` (per-atom Mulliken spin populations, summing to ``magmom``);
      zeros for a restricted run.  The in-memory and checkpoint guesses keep both spin channels
      (shape (2, n_k, nao, nao)).

    Molecules
    ---------
    When ``atoms.pbc`` is all False the calculator builds a molecular ``pyscf.gto.Mole``
    (Å coordinates, any PySCF basis such as "def2-svp" or "6-31g*") and runs ``pyscf.dft.RKS``
    (spin 0) or ``pyscf.dft.UKS`` (spin > 0, ``spinpol=True`` or initial magnetic moments, with
    the same broken-symmetry guess), with ``.density_fit()`` when ``density_fit=True``.
    Energy (eV) and forces (eV/Å, analytic nuclear gradient including the DFT-grid response, so
    they are the exact derivative of the reported energy) are available; the stress raises
    :class:`~scaleladder.core.errors.PropertyNotImplementedError` (there is no cell).  ``kpts``,
    ``ke_cutoff``, ``smearing`` and ``symmetry`` do not apply.  ``pseudo`` (GTH) is applied only
    with a GTH basis ("gth-...", which requires it); any other basis (e.g. "6-31g") is
    all-electron, with ``ecp`` for effective core potentials.  Mixed periodicity (e.g. a slab with
    ``pbc=(True, True, False)``) raises :class:`InputError`: only fully periodic or fully open
    structures are supported.

    Point charges (electrostatic embedding)
    ---------------------------------------
    :meth:`set_point_charges` embeds a MOLECULE in external charges q_k at r_k (point charges, or
    Gaussian charges of width w_k), added to the Hamiltonian by PySCF's own ``pyscf.qmmm``
    (``qmmm.mm_charge``: one-electron integrals ``int1e_grids`` / ``int3c2e`` in the core
    Hamiltonian), so the SCF density is polarised by them.  Then

    * ``energy`` = E_QM[ρ polarised] + ∫ρ_e(r) v_q(r) dr + Σ_A Σ_k Z_A q_k f(|R_A - r_k|), with
      f(r) = 1/r (point) or erf(r/w_k)/r (Gaussian) and Z_A the (pseudo-)nuclear charges: the
      nuclei-charge energy IS included (PySCF's ``QMMMSCF.energy_nuc`` adds it to
      ``mol.energy_nuc()``; checked against a direct PySCF run in the tests).  The Coulomb
      energy of the charges among themselves is NOT included (it belongs to the MM model).
    * ``forces`` on the QM atoms include the force of the charges on the electrons and nuclei
      (PySCF's ``QMMMGrad``);
    * ``point_charge_forces`` (m, 3) eV/Å are the forces ON the charges exerted by the QM
      electrons and nuclei, -dE/dr_k (``grad_hcore_mm + grad_nuc_mm``), so that the forces of the
      QM atoms and the charges together sum to zero.  Filled whenever forces are computed
      (an (0, 3) array without charges).

    A charge closer than :data:`POINT_CHARGE_MIN_DISTANCE` (0.05 Å) to a QM nucleus raises
    :class:`InputError`; a periodic cell with point charges raises :class:`InputError` (PySCF's
    periodic ``qmmm.pbc`` with Ewald-summed charges is not wired in).  Setting or clearing the
    charges discards the cached results.  The previous density matrix (embedded or not) is still
    the initial guess of the next SCF (a guess only: the SCF converges to the state of the
    current charges); ``scf_checkpoint`` files of embedded runs are kept apart from those of
    bare molecules (the charge model is part of the settings hash; the charge positions are
    not, so an MD series shares one file).

    Notes
    -----
    ``results`` after a calculation also holds ``scf_cycles`` (total SCF iterations, both stages
    when the symmetric energy is followed by a full-mesh gradient SCF), ``elapsed_s``,
    ``magmom``/``magmoms`` and ``initial_guess``: "memory" (this calculator's previous density,
    or the same converged SCF reused), "checkpoint" (a file of ``scf_checkpoint``), "minao" or
    "atom" (PySCF's guess, with moments applied for a broken-symmetry run).
    With smearing, ``free_energy`` is the Mermin free energy ``E - sigma*S`` (PySCF's ``e_free``,
    to which forces and stress are consistent) and ``energy`` the zero-width extrapolation
    ``E - sigma*S/2`` (``e_zero``); without smearing both are the same number.
    Restricted periodic forces are PySCF's ``pyscf.pbc.grad.krks`` gradient with the local
    pseudopotential term traced on the density instead of through one AO matrix per atom and
    k-point (:mod:`scaleladder.electronic._pyscf_grad`): the same numbers to round-off, half the
    time on an 8-atom cell (measured 45.7 -> 22.2 s, 2x2x2 k-points, 2 cores).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "magmom", "magmoms",
                              "point_charge_forces"]
    default_parameters: dict[str, Any] = dict(
        xc="PBE", basis="gth-dzvp", pseudo="gth-pbe", kpts=(4, 4, 4), ke_cutoff=25.0,
        smearing=None, smearing_method="fermi", conv_tol=1e-8, gamma_centered=True,
        kpts_scaled=None, max_cycle=60,
        symmetry=True, density_fit=False, verbose=0, initial_guess="reuse", max_memory=4000,
        charge=0, spin=None, spinpol=None, ecp=None, scf_checkpoint=None,
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
        self._point_charges: PointCharges | None = None
        Calculator.__init__(self, atoms=atoms, **kwargs)

    # ------------------------------------------------------------------ point charges
    def set_point_charges(self, positions, charges, widths=None) -> None:
        """Embed the molecule in external charges (electrostatic embedding, molecules only).

        Parameters
        ----------
        positions : array-like (m, 3)
            Charge positions in Å (same frame as the atoms).
        charges : array-like (m,)
            Charges in units of e.
        widths : float, array-like (m,) or None, default None
            Gaussian widths w in Å (charge density ``q (π w²)^(-3/2) exp(-|r - r_k|²/w²)``,
            PySCF's ``radii``); None for point charges.  A Gaussian charge removes the
            singularity of the potential next to the QM density.

        Raises
        ------
        InputError
            Wrong shapes, non-finite values or non-positive widths.

        Notes
        -----
        Zero charges (m = 0) is the same as :meth:`clear_point_charges`.  The cached results are
        discarded (the next property request runs a new SCF); the previous density matrix stays
        the initial guess.
        """
        self._point_charges = _check_point_charges(positions, charges, widths)
        self.reset()

    def clear_point_charges(self) -> None:
        """Remove the external charges (the cached results are discarded)."""
        self._point_charges = None
        self.reset()

    @property
    def point_charges(self) -> PointCharges | None:
        """The current external charges (read-only arrays), or None."""
        return self._point_charges

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
                                  "smearing", "smearing_method", "spin", "spinpol",
                                  "conv_tol", "max_cycle", "symmetry", "density_fit")}

    def _describe(self, atoms) -> str:
        if not any(atoms.pbc):
            name = self._config_label or atoms.info.get("name") or ""
            head = f"{name} " if name else ""
            pc = self._point_charges
            emb = "" if pc is None else f", in {len(pc)} {pc.model} charges"
            return f"{head}{atoms.get_chemical_formula()} ({len(atoms)} atoms, molecule{emb})"
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
        if p["charge"] != 0:
            raise InputError("charge", p["charge"], "0 for a periodic cell",
                             "a charged periodic cell needs a compensating background, which "
                             "this calculator does not apply; charge applies to molecules")
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
        # cell.spin keeps PySCF's default (parity of the electron count): the spin of a KUKS run
        # is imposed per cell through mf.nelec in _make_mf (PySCF reads cell.spin per supercell)
        cell.build()
        return cell

    @staticmethod
    def _kmesh_key(p: dict) -> tuple:
        return (p["kpts"], p["gamma_centered"], p["kpts_scaled"])

    @staticmethod
    def _n_kpoints(p: dict) -> int:
        return len(p["kpts_scaled"]) if p["kpts_scaled"] is not None else int(np.prod(p["kpts"]))

    def _make_mf(self, cell, p: dict, symmetry: bool, spin: _SpinSetup):
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
        if spin.restricted:
            mf = dft.KRKS(cell, kpts=kpts)
        else:
            mf = dft.KUKS(cell, kpts=kpts)
            mf.init_guess_breaksym = False  # spin symmetry is broken by the moments alone
        mf.xc = pyscf_xc(p["xc"])
        mf.conv_tol = p["conv_tol"]
        mf.max_cycle = p["max_cycle"]
        mf.verbose = p["verbose"]
        if p["density_fit"]:
            mf = mf.density_fit()
        if p["smearing"] is not None:
            mf = mf.smearing(sigma=p["smearing"], method=p["smearing_method"],
                             fix_spin=not spin.restricted and spin.spin is not None)
        if not spin.restricted and spin.spin is not None:
            nk = len(kpts)
            n = int(cell.nelectron)
            mf.nelec = ((n + spin.spin) * nk // 2, (n - spin.spin) * nk // 2)
        # the grid AOs once per SCF, not three times per cycle (PySCF's arrays, reused; up to
        # half the memory budget): electronic/_pyscf_aocache.py
        from ._pyscf_aocache import cache_grid_aos

        df_numint = getattr(getattr(mf, "with_df", None), "_numint", None)
        numints = [mf._numint] + ([df_numint] if df_numint not in (None, mf._numint) else [])
        cache_grid_aos(numints, max_bytes=0.5 * float(p["max_memory"]) * 1e6)
        return mf, kpts

    # ------------------------------------------------------------------ guesses
    def _memory_guess(self, atoms, nao: int, key: tuple) -> np.ndarray | None:
        """This calculator's previous converged density matrix, if it fits."""
        g = self._guess
        if g is None or self.parameters.get("initial_guess", "reuse") != "reuse":
            return None
        if (g["key"] != key or g["natoms"] != len(atoms) or g["nao"] != nao
                or not np.array_equal(g["numbers"], atoms.numbers)):
            return None
        return g["dm"]

    def _checkpoint_settings(self, p: dict, kind: str, spin: _SpinSetup,
                             pseudo: str | None, nk: int) -> dict:
        """The settings that decide whether a stored density matrix is a valid guess."""
        out = {"kind": kind, "xc": p["xc"], "basis": p["basis"], "pseudo": pseudo,
               "restricted": spin.restricted, "spin": spin.spin,
               "initial_magnetic_moments": list(spin.moments) if spin.moments else None,
               "density_fit": p["density_fit"]}
        if kind == "periodic":
            out.update(kpts=list(p["kpts"]), gamma_centered=p["gamma_centered"],
                       kpts_scaled=None if p["kpts_scaled"] is None
                       else [list(k) for k in p["kpts_scaled"]],
                       ke_cutoff=p["ke_cutoff"], smearing=p["smearing"], nk=nk)
            if p["smearing"] is not None and p["smearing_method"] != "fermi":
                out["smearing_method"] = p["smearing_method"]  # Fermi-Dirac hashes unchanged
        else:
            out.update(ecp=p["ecp"], charge=p["charge"])
            if self._point_charges is not None:  # only when embedded: bare hashes unchanged
                out["point_charges"] = self._point_charges.model
        return out

    def _checkpoint_target(self, atoms, p: dict, settings: dict, nao: int, shape: tuple):
        """(path, expected metadata, expected dm shape) or None without ``scf_checkpoint``."""
        if p["scf_checkpoint"] is None:
            return None
        path, digest = _checkpoint_path(p["scf_checkpoint"], atoms, settings)
        expected = {"settings_hash": digest, "natoms": len(atoms),
                    "numbers": [int(z) for z in atoms.numbers], "nao": int(nao)}
        return path, expected, shape

    def _find_guess(self, atoms, p: dict, nao: int, key: tuple, target):
        """(dm or None, source): in-memory guess, else a compatible checkpoint."""
        if p["initial_guess"] != "reuse":
            return None, None
        dm = self._memory_guess(atoms, nao, key)
        if dm is not None:
            return dm, "memory"
        if target is not None:
            dm = _read_checkpoint(*target)
            if dm is not None:
                return dm, "checkpoint"
        return None, None

    @staticmethod
    def _save_checkpoint(target, dm: np.ndarray, settings: dict, spin: _SpinSetup,
                         atoms, energy_hartree: float) -> None:
        if target is None:
            return
        path, expected, _shape = target
        meta = {"format": _CHECKPOINT_FORMAT, "version": _CHECKPOINT_VERSION,
                **expected, "formula": atoms.get_chemical_formula(),
                "kmesh": settings.get("kpts_scaled") or [settings.get("kpts"),
                                                         settings.get("gamma_centered")],
                "basis": settings["basis"], "pseudo": settings["pseudo"], "xc": settings["xc"],
                "spin": spin.spin, "restricted": spin.restricted,
                "energy_hartree": float(energy_hartree), "settings": settings}
        _write_checkpoint(path, dm, meta)

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

    def _run_scf_or_restart(self, mf, dm0, atoms, p: dict, settings: dict,
                            source: str) -> tuple[int, str]:
        """:meth:`_run_scf` from ``dm0``; when a reused density (``source`` "memory" or
        "checkpoint") does not converge, once more from PySCF's own guess.  A guess is a hint,
        never a failure: measured, the (111) slab of silicon started from the density of a
        rattled slab (a checkpoint of the same composition and settings) charge-sloshed past
        120 cycles (> 12 min), from "minao" it converges in 15 (118 s).  Returns
        ``(cycles of both attempts, source)``."""
        try:
            return self._run_scf(mf, dm0, atoms, p, settings), source
        except ConvergenceError:
            if dm0 is None or source not in ("memory", "checkpoint"):
                raise
        name = self._pyscf_guess_name(p)
        warnings.warn(f"PySCF: the SCF of {self._describe(atoms)} started from the {source} "
                      f"density did not converge in {p['max_cycle']} cycles; restarting from "
                      f"'{name}'", RuntimeWarning, stacklevel=3)
        mf.init_guess = name
        return (p["max_cycle"] + self._run_scf(mf, None, atoms, p, settings),
                f"{name} (after the {source} guess failed)")

    def _run_molecular_scf(self, mf, dm0, atoms, p: dict, settings: dict):
        """DIIS SCF; if it has not converged in ``max_cycle`` cycles, a second-order (Newton,
        co-iterative augmented Hessian) SCF started from the last DIIS density.

        Open-shell cations of hydrogen-bonded clusters (a hole that can sit on either molecule)
        are the typical case: DIIS oscillates between the localisations, the Newton solver
        converges in a few macro-iterations (PySCF's ``mf.newton()``, which keeps the point
        charges and density fitting of ``mf``).  Returns ``(mf, cycles, solver)`` with
        ``solver`` "diis" or "diis+newton"; raises ConvergenceError if both fail.
        """
        try:
            return mf, self._run_scf(mf, dm0, atoms, p, settings), "diis"
        except ConvergenceError:
            pass
        mf2 = mf.newton()
        mf2.max_cycle = p["max_cycle"]   # the same budget of (macro-)iterations
        mf2.conv_tol = p["conv_tol"]
        mf2.verbose = p["verbose"]
        mf2.kernel(dm0=mf.make_rdm1())
        cycles = p["max_cycle"] + int(getattr(mf2, "cycles", 0) or 0)
        if not mf2.converged:
            raise ConvergenceError(
                what=f"SCF did not converge in {p['max_cycle']} DIIS cycles nor in "
                     f"{mf2.max_cycle} second-order (Newton) iterations after them",
                configuration=self._describe(atoms), settings=settings,
                suggestion=_CONVERGENCE_SUGGESTION)
        return mf2, cycles, "diis+newton"

    @staticmethod
    def _pyscf_guess_name(p: dict) -> str:
        return p["initial_guess"] if p["initial_guess"] in ("minao", "atom") else "minao"

    # ------------------------------------------------------------------ main
    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Run the SCF (and gradients) for ``atoms``; fill ``self.results`` in ASE units.

        Parameters
        ----------
        atoms : ase.Atoms
            Periodic configuration (pbc all True) or molecule (pbc all False).
        properties : sequence of str
            Any of "energy", "free_energy", "forces", "stress", "magmom", "magmoms",
            "point_charge_forces" (molecules in point charges).
        system_changes : list of str
            As in ASE.

        Raises
        ------
        ConvergenceError
            When the SCF does not converge within ``max_cycle``.
        InputError
            For invalid parameters, a non-periodic ``atoms``, a charged cell or an impossible
            spin; point charges with a periodic cell or on top of a QM nucleus.
        """
        t_start = time.perf_counter()
        Calculator.calculate(self, atoms, properties, system_changes)
        atoms = self.atoms
        p = _check_params({**self.default_parameters, **self.parameters})
        if not any(atoms.pbc):
            self._calculate_molecule(atoms, properties, p, t_start)
            return
        if self._point_charges is not None:
            raise InputError("point_charges", f"{len(self._point_charges)} charges",
                             "a molecule (atoms.pbc all False) when point charges are set: "
                             "not a periodic cell",
                             "electrostatic embedding is implemented for molecules only; call "
                             "clear_point_charges() or use an open (non-periodic) QM region")
        if "point_charge_forces" in properties:
            raise PropertyNotImplementedError(
                "point_charge_forces exist only for a molecule embedded in point charges")
        settings = self._settings()
        want_grad = "forces" in properties or "stress" in properties
        if want_grad and p["density_fit"] and "stress" in properties:
            raise InputError("density_fit", True, "False when the stress is requested",
                             "PySCF's stress code needs FFT density fitting (FFTDF)")

        cycles = 0
        timings: dict[str, float] = {}
        nk = self._n_kpoints(p)
        moments = _initial_moments(atoms)
        last = self._last_full_mf
        self._last_full_mf = None
        if want_grad and not system_changes and last is not None:
            # same atoms, same parameters, full-mesh SCF already converged (e.g. ASE asked for
            # forces, then for the stress): reuse it instead of repeating the SCF
            mf, cell, dm_full, spin = last
            source, use_sym = "memory", False
        else:
            maybe_sym = p["symmetry"] and not want_grad and nk > 1
            cell = self._build_cell(atoms, p, symmetry=maybe_sym)
            spin = _resolve_spin(p, moments, int(cell.nelectron), nk,
                                 free_allowed=p["smearing"] is not None).nonnegative()
            # KUKS always runs on the full mesh (see the class docstring: the space group of the
            # atoms does not know the magnetic order)
            use_sym = maybe_sym and spin.restricted
            if maybe_sym and not use_sym:
                cell = self._build_cell(atoms, p, symmetry=False)
            nao = cell.nao_nr()
            key = ("periodic", self._kmesh_key(p)) + spin.key()
            shape = (nk, nao, nao) if spin.restricted else (2, nk, nao, nao)
            ck_settings = self._checkpoint_settings(p, "periodic", spin, p["pseudo"], nk)
            target = self._checkpoint_target(atoms, p, ck_settings, nao, shape)
            dm_full_guess, source = self._find_guess(atoms, p, nao, key, target)
            mf, kpts = self._make_mf(cell, p, symmetry=use_sym, spin=spin)
            if dm_full_guess is None and spin.moments is not None:
                dm_full_guess = self._broken_symmetry_guess(mf, cell, p, spin)
            if source is None:
                source = self._pyscf_guess_name(p)
            if use_sym:
                dm0 = None if dm_full_guess is None else dm_full_guess[kpts.ibz2bz]
                n, source = self._run_scf_or_restart(mf, dm0, atoms, p, settings, source)
                cycles += n
                dm_full = np.asarray(kpts.transform_dm(mf.make_rdm1()))
            else:
                n, source = self._run_scf_or_restart(mf, dm_full_guess, atoms, p, settings,
                                                     source)
                cycles += n
                dm_full = np.asarray(mf.make_rdm1())
            self._guess = {"key": key, "natoms": len(atoms), "numbers": atoms.numbers.copy(),
                           "nao": nao, "dm": dm_full}
            self._save_checkpoint(target, dm_full, ck_settings, spin, atoms, float(mf.e_tot))

        timings["scf_s"] = time.perf_counter() - t_start
        e_free = e_zero = float(mf.e_tot)
        if p["smearing"] is not None:
            # PySCF's e_tot with smearing is E (no entropy term); the Mermin free energy, to which
            # forces and stress are consistent, is e_free = E - sigma*S; e_zero = E - sigma*S/2.
            e_free = float(mf.e_free)
            e_zero = float(mf.e_zero)
        self.results["free_energy"] = e_free * HARTREE_EV
        self.results["energy"] = e_zero * HARTREE_EV
        if spin.restricted:
            self.results["magmoms"] = np.zeros(len(atoms))
            self.results["magmom"] = 0.0
        else:
            s1e = np.asarray(mf.get_ovlp())
            sign = -1.0 if spin.flipped else 1.0
            self.results["magmoms"] = sign * _mulliken_spin(dm_full, s1e, cell.aoslice_by_atom())
            self.results["magmom"] = float(self.results["magmoms"].sum())

        if want_grad:
            g = mf.nuc_grad_method()
            _fast_local_pp_gradient(g)
            if "forces" in properties:  # as expensive as the stress: only when asked for
                t1 = time.perf_counter()
                grad = np.asarray(g.kernel(), dtype=float)  # Hartree/Bohr, dE/dR
                self.results["forces"] = -grad * FORCE_AU_TO_EV_PER_A
                timings["forces_s"] = time.perf_counter() - t1
            if "stress" in properties:
                if spin.restricted:
                    from pyscf.pbc.grad import krks_stress as stress_mod
                else:
                    from pyscf.pbc.grad import kuks_stress as stress_mod

                t1 = time.perf_counter()
                sigma = np.asarray(stress_mod.kernel(g), dtype=float)  # Hartree/Bohr^3
                self.results["stress"] = stress_voigt(sigma) * STRESS_AU_TO_EV_PER_A3
                timings["stress_s"] = time.perf_counter() - t1

        cache = getattr(mf._numint, "_scaleladder_ao_cache", None)
        if cache is not None:  # the grid AOs served the SCF and the gradient: free them
            cache.clear()      # (one cache shared by both integrators)
        if not use_sym:
            self._last_full_mf = (mf, cell, dm_full, spin)
        self.results["scf_cycles"] = cycles
        self.results["initial_guess"] = source
        self.results["timings"] = timings
        self.results["elapsed_s"] = time.perf_counter() - t_start

    def _broken_symmetry_guess(self, mf, cell, p: dict, spin: _SpinSetup) -> np.ndarray:
        """Full-mesh (2, nk, nao, nao) guess of an unrestricted run with initial moments."""
        nk = len(mf.kpts)
        dm = np.asarray(mf.get_init_guess(cell, key=self._pyscf_guess_name(p)))
        s1e = np.asarray(mf.get_ovlp(cell))
        n = int(cell.nelectron)
        if spin.spin is not None:
            nelec = ((n + spin.spin) * nk / 2, (n - spin.spin) * nk / 2)
        else:  # free magnetisation (smearing): seed it with the sum of the moments
            m = float(np.clip(sum(spin.moments), -n, n))
            nelec = ((n + m) * nk / 2, (n - m) * nk / 2)
        return _moment_guess(dm, s1e, cell.aoslice_by_atom(), spin.moments, nelec)

    # ------------------------------------------------------------------ molecules
    def _molecule_settings(self, p: dict, pseudo: str | None) -> dict:
        return {"xc": p["xc"], "basis": p["basis"], "pseudo": pseudo, "ecp": p["ecp"],
                "charge": p["charge"], "spin": p["spin"], "spinpol": p["spinpol"],
                "conv_tol": p["conv_tol"], "max_cycle": p["max_cycle"],
                "density_fit": p["density_fit"]}

    def _build_mole(self, atoms, p: dict, moments: np.ndarray):
        """The molecular ``pyscf.gto.Mole`` for ``atoms`` (Å) and its :class:`_SpinSetup`."""
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
        has_moments = bool(np.any(np.abs(moments) > _MOMENT_TOL))
        if p["spin"] is None and not has_moments and nelec % 2:
            raise InputError("spin", None, "the number of unpaired electrons 2S (e.g. 1 for a "
                             "doublet radical)",
                             f"{atoms.get_chemical_formula()} with charge {p['charge']} has "
                             f"an odd number of electrons ({nelec})")
        if p["spin"] is not None and ((nelec - p["spin"]) % 2 or p["spin"] > nelec):
            raise InputError("spin", p["spin"], f"an integer 2S <= {nelec} with the parity of "
                             f"the electron count ({nelec})")
        spin = _resolve_spin(p, moments, nelec, 1, free_allowed=False)
        mol.spin = spin.spin
        mol.build()
        return mol, pseudo, spin

    @staticmethod
    def _check_charge_distances(atoms, pc: PointCharges) -> None:
        """InputError if a charge sits within POINT_CHARGE_MIN_DISTANCE of a QM nucleus."""
        d = np.linalg.norm(atoms.positions[:, None, :] - pc.positions[None, :, :], axis=-1)
        i, k = np.unravel_index(int(np.argmin(d)), d.shape)
        if d[i, k] < POINT_CHARGE_MIN_DISTANCE:
            raise InputError("point_charges.positions",
                             f"charge {k} ({pc.charges[k]:+.4g} e) at "
                             f"{np.round(pc.positions[k], 4).tolist()} Å, {d[i, k]:.3g} Å from "
                             f"QM atom {i} ({atoms.get_chemical_symbols()[i]})",
                             f"every charge at least {POINT_CHARGE_MIN_DISTANCE} Å from every QM "
                             "nucleus",
                             "an MM atom that is also in the QM region? check the QM/MM selection")

    def _calculate_molecule(self, atoms, properties, p: dict, t_start: float) -> None:
        """Molecular RKS/UKS energy and forces (no stress: there is no cell)."""
        from pyscf import dft

        if "stress" in properties:
            raise PropertyNotImplementedError(
                "stress is not defined for a molecule (atoms.pbc all False: no cell); "
                "request energy and forces only")
        moments = _initial_moments(atoms)
        mol, pseudo, spin = self._build_mole(atoms, p, moments)
        settings = self._molecule_settings(p, pseudo)
        settings["spin"] = mol.spin
        if spin.restricted:
            mf = dft.RKS(mol)
        else:
            mf = dft.UKS(mol)
            mf.init_guess_breaksym = False  # spin symmetry is broken by the moments alone
        mf.xc = pyscf_xc(p["xc"])
        mf.conv_tol = p["conv_tol"]
        mf.max_cycle = p["max_cycle"]
        mf.verbose = p["verbose"]
        if p["density_fit"]:
            mf = mf.density_fit()
        pc = self._point_charges
        if pc is not None:
            from pyscf import qmmm

            self._check_charge_distances(atoms, pc)
            # PySCF converts Å -> Bohr itself (positions and radii) with unit="Angstrom"
            mf = qmmm.mm_charge(mf, np.asarray(pc.positions), np.asarray(pc.charges),
                                radii=None if pc.widths is None else np.asarray(pc.widths),
                                unit="Angstrom")
        nao = mol.nao_nr()
        key = ("molecule", p["charge"], p["basis"], pseudo, p["ecp"]) + spin.key()
        shape = (nao, nao) if spin.restricted else (2, nao, nao)
        ck_settings = self._checkpoint_settings(p, "molecule", spin, pseudo, 1)
        target = self._checkpoint_target(atoms, p, ck_settings, nao, shape)
        dm0, source = self._find_guess(atoms, p, nao, key, target)
        if dm0 is None and spin.moments is not None:
            guess = np.asarray(mf.get_init_guess(mol, key=self._pyscf_guess_name(p)))
            s1e = np.asarray(mf.get_ovlp())[None]
            nelec = (mol.nelec[0], mol.nelec[1])
            dm0 = _moment_guess(guess[:, None], s1e, mol.aoslice_by_atom(), spin.moments,
                                nelec)[:, 0]
        if source is None:
            source = self._pyscf_guess_name(p)
        timings: dict[str, float] = {}
        self._last_full_mf = None
        mf, cycles, solver = self._run_molecular_scf(mf, dm0, atoms, p, settings)
        self.results["scf_solver"] = solver
        timings["scf_s"] = time.perf_counter() - t_start
        e = float(mf.e_tot)
        self.results["energy"] = e * HARTREE_EV
        self.results["free_energy"] = e * HARTREE_EV
        dm = np.asarray(mf.make_rdm1())
        if spin.restricted:
            self.results["magmoms"] = np.zeros(len(atoms))
            self.results["magmom"] = 0.0
        else:
            s1e = np.asarray(mf.get_ovlp())[None]
            self.results["magmoms"] = _mulliken_spin(dm[:, None], s1e, mol.aoslice_by_atom())
            self.results["magmom"] = float(self.results["magmoms"].sum())
        if "forces" in properties or "point_charge_forces" in properties:
            t1 = time.perf_counter()
            grad_method = mf.nuc_grad_method()
            # the integration grid moves with the atoms; its response makes the forces the exact
            # derivative of the reported energy (without it: errors ~1e-4 Ha/Bohr)
            # (pure Hartree-Fock has no grid; PySCF's density-fitted UKS gradient then fails
            # on the grid-response printout, so it is only switched on for a functional)
            if pyscf_xc(p["xc"]).strip().upper() != "HF":
                grad_method.grid_response = True
            grad_method.verbose = p["verbose"]
            grad = np.asarray(grad_method.kernel(), dtype=float)  # Hartree/Bohr, dE/dR
            self.results["forces"] = -grad * FORCE_AU_TO_EV_PER_A
            if pc is None:
                self.results["point_charge_forces"] = np.zeros((0, 3))
            else:
                # dE/dr_k = <dh/dr_k> (electrons, total density) + nuclei-charge term
                dm_total = dm if spin.restricted else dm[0] + dm[1]
                g_pc = (np.asarray(grad_method.grad_hcore_mm(dm_total), dtype=float)
                        + np.asarray(grad_method.grad_nuc_mm(), dtype=float))
                self.results["point_charge_forces"] = -g_pc * FORCE_AU_TO_EV_PER_A
            timings["forces_s"] = time.perf_counter() - t1
        self._guess = {"key": key, "natoms": len(atoms), "numbers": atoms.numbers.copy(),
                       "nao": nao, "dm": dm}
        self._save_checkpoint(target, dm, ck_settings, spin, atoms, e)
        self.results["scf_cycles"] = cycles
        self.results["initial_guess"] = source
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
