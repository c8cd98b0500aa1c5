"""Materials properties from any ASE calculator: elastic constants and surface energies.

Both functions take an :class:`ase.Atoms` and an ASE ``Calculator`` (a scaleladder potential, EMT,
DFT, ...) and return a typed handoff artifact in the continuum's units:

* :func:`elastic_constants` -> :class:`~scaleladder.handoffs.ElasticTensor` (GPa), from a
  stress--strain least-squares fit, relaxed-ion (default) or clamped-ion;
* :func:`surface_energy` -> :class:`~scaleladder.handoffs.SurfaceEnergy` (J/m²), from a slab cut in
  the widest interplanar gap (the shuffle plane for diamond (111)), relaxed by default;
* :func:`relax_lattice_constant` -> the zero-pressure lattice constant of a cubic cell.

Conventions: ASE's stress (eV/Å³, Voigt order xx, yy, zz, yz, xz, xy, positive = tensile) and
engineering shear strains (e4 = 2 e_yz), so that sigma_i = C_ij e_j.  Units are converted once, at
the return, with :mod:`scaleladder.core.units`.
"""
from __future__ import annotations

import math
import warnings
from functools import reduce
from math import gcd
from typing import Any

import numpy as np

from ..core import validate
from ..core.errors import CalculationError, ConvergenceError, InputError
from ..core.units import EV_PER_A2_IN_J_PER_M2, EV_PER_A3_IN_GPA
from .domain import DomainLog

# Voigt index -> (i, j) of the symmetric strain matrix


# --------------------------------------------------------------------------------------- helpers

def _check_periodic_cell(field: str, atoms: Any) -> None:
    """Atoms with three periodic directions and a cell of non-zero volume, or InputError."""
    try:
        pbc = np.asarray(atoms.pbc, dtype=bool)
        volume = abs(float(atoms.cell.volume)) if np.any(atoms.cell.array) else 0.0
        n = len(atoms)
    except AttributeError:
        raise InputError(field, type(atoms).__name__, "an ase.Atoms object") from None
    if n == 0:
        raise InputError(field, "Atoms with 0 atoms", "at least one atom")
    if not pbc.all() or volume <= 1e-8:
        raise InputError(field, f"Atoms(pbc={pbc.tolist()}, volume={volume:.4g} Å^3)",
                         "a bulk crystal: periodic in all three directions with a 3D cell",
                         hint="build it with ase.build.bulk(...)")


def _check_calc(calc: Any) -> None:
    if calc is None or not hasattr(calc, "get_property"):
        raise InputError("calc", calc, "an ASE Calculator (energy, forces, stress)")


def _with_calc(atoms, calc):
    a = atoms.copy()
    a.calc = calc
    return a


def relax_positions(atoms, fmax: float = 1e-4, steps: int = 2000, what: str = "structure",
                    energy_floor: float | None = None):
    """Relax the internal coordinates of ``atoms`` (cell fixed) in place, to max force ``fmax``.

    Uses ASE's BFGS (quasi-Newton: the few tight steps needed near a minimum are cheap), checks
    the result and raises :class:`ConvergenceError` naming the structure if it did not converge.

    Parameters
    ----------
    atoms : ase.Atoms
        With a calculator attached; modified in place.
    fmax : float
        Largest force on any atom at convergence (eV/Å).
    steps : int
        Largest number of optimiser steps.
    what : str
        Name of the structure, for the error message.
    energy_floor : float, optional
        A lower bound the physics puts on the energy (eV), e.g. N E_bulk for a slab: the
        relaxation stops with :class:`CalculationError` as soon as the energy falls below it (the
        structure has collapsed under the potential; relaxing on would only take steps until
        ``steps`` runs out: measured 2,000 steps, 22 s, for a collapsing 16-atom SNAP slab).

    Returns
    -------
    int
        The number of optimiser steps taken.
    """
    from ase.optimize import BFGS

    if energy_floor is not None and not math.isfinite(float(energy_floor)):
        raise InputError("energy_floor", energy_floor, "a finite energy in eV, or None")
    if np.sqrt((atoms.get_forces() ** 2).sum(axis=1)).max() < fmax:
        return 0
    opt = BFGS(atoms, logfile=None, maxstep=0.1)
    converged = False
    for converged in opt.irun(fmax=fmax, steps=steps):
        if energy_floor is not None:
            e = float(atoms.get_potential_energy())
            if not e >= energy_floor:
                raise CalculationError(
                    f"{what}: the energy fell to {e:.6g} eV, below its lower bound "
                    f"{float(energy_floor):.6g} eV, after {opt.nsteps} relaxation steps: the "
                    "structure collapses under this calculator (it is outside the potential's "
                    "domain)")
    if not converged:
        fnow = float(np.sqrt((atoms.get_forces() ** 2).sum(axis=1)).max())
        raise ConvergenceError(f"ionic relaxation did not reach fmax={fmax} eV/Å "
                               f"(max force {fnow:.3g} eV/Å after {opt.nsteps} steps)",
                               configuration=what, settings={"fmax": fmax, "steps": steps},
                               suggestion="raise fmax or steps, or check the structure is near a "
                                          "minimum")
    return int(opt.nsteps)


def _strain_matrix(j: int, e: float) -> np.ndarray:
    """Symmetric small-strain matrix of Voigt component j with engineering amplitude e."""
    from ..core.tensors import small_strain_tensor

    voigt = np.zeros(6)
    voigt[j] = e
    return small_strain_tensor(voigt)


def _stress_gpa(atoms) -> np.ndarray:
    s = np.asarray(atoms.get_stress(voigt=True), dtype=float)
    if s.shape != (6,) or not np.all(np.isfinite(s)):
        raise CalculationError(f"the calculator returned a stress of shape {s.shape} "
                               f"with values {s!r}; need 6 finite Voigt components")
    return s * EV_PER_A3_IN_GPA


# --------------------------------------------------------------------------------- lattice const

def relax_lattice_constant(atoms, calc, relax_ions: bool = False, bracket: float = 0.05,
                           tol: float = 1e-10, fmax: float = 1e-5) -> float:
    """Zero-pressure lattice constant of a cubic cell (isotropic scaling, Brent's method on p).

    Parameters
    ----------
    atoms : ase.Atoms
        A periodic cell with three orthogonal axes of equal length (e.g.
        ``ase.build.bulk("Si", "diamond", a=5.43, cubic=True)``).
    calc : ase Calculator
        Provides the stress.
    relax_ions : bool
        Relax internal coordinates at each trial scale (not needed for high-symmetry crystals
        such as diamond or fcc, where isotropic scaling leaves no force).
    bracket : float
        Relative half-width of the largest search interval around the current lattice constant;
        the search widens outwards from ±0.5 % and takes the first sign change of the pressure
        (the zero-pressure state nearest the start).
    tol : float
        Absolute tolerance on the lattice constant (Å).
    fmax : float
        Force tolerance (eV/Å) when ``relax_ions``.

    Returns
    -------
    float
        a0 in Å; apply it with ``atoms.set_cell(atoms.cell * a0 / a, scale_atoms=True)``.

    Warns
    -----
    DomainWarning
        ``calc`` carries a fitted potential (``calc.fitted_potential``) and the cell at ``a0``
        lies outside its training domain.  Only the result is checked: the probes (at most ±5 %
        in a by default) only give the sign of the pressure.
    """
    from scipy.optimize import brentq

    _check_periodic_cell("atoms", atoms)
    _check_calc(calc)
    cell = atoms.cell.array
    lengths = np.linalg.norm(cell, axis=1)
    if not (np.allclose(lengths, lengths[0], rtol=1e-8)
            and np.allclose(cell @ cell.T, np.diag(lengths ** 2), atol=1e-8 * lengths[0] ** 2)):
        raise InputError("atoms", f"cell lengths/angles {atoms.cell.cellpar().round(4).tolist()}",
                         "a cubic cell (three orthogonal axes of equal length)",
                         hint="use ase.build.bulk(..., cubic=True)")
    bracket = validate.in_range("bracket", bracket, 1e-4, 0.5)
    a_now = float(lengths[0])
    work = _with_calc(atoms, calc)

    def pressure(a):
        work.set_cell(cell * (a / a_now), scale_atoms=True)
        if relax_ions:
            relax_positions(work, fmax=fmax, what=f"cubic cell at a={a:.6f} Å")
        return -float(np.mean(work.get_stress(voigt=True)[:3]))

    # the root nearest the start: probe outwards (±0.5 %, ±1 %, ±2 %, ... up to ±bracket) and
    # stop at the first sign change, so that a fitted potential's behaviour far from the
    # training data (a committee member whose pressure turns over at -5 %) is never consulted
    # when a root lies close by
    widths = [w for w in (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32) if w < bracket] + [bracket]
    a_in, p_in = a_now, pressure(a_now)
    if p_in == 0.0:
        return a_now
    inner = {-1: (a_in, p_in), 1: (a_in, p_in)}
    found = None
    for w in widths:
        for side in (-1, 1):
            a_w = a_now * (1 + side * w)
            p_w = pressure(a_w)
            a_i, p_i = inner[side]
            if p_i * p_w <= 0:
                found = (min(a_i, a_w), max(a_i, a_w))
                break
            inner[side] = (a_w, p_w)
        if found:
            break
    if found is None:
        lo, hi = a_now * (1 - bracket), a_now * (1 + bracket)
        raise ConvergenceError("no zero-pressure lattice constant inside the bracket",
                               configuration=atoms.get_chemical_formula(),
                               settings={"a_range_A": (lo, hi),
                                         "pressure_eV_A3": (inner[-1][1], inner[1][1])},
                               suggestion="start from a closer lattice constant or widen bracket")
    a0 = float(brentq(pressure, *found, xtol=tol, rtol=1e-14))
    log = DomainLog(calc)
    if log.active:
        pressure(a0)
        log.check(work, f"cubic cell at a0={a0:.6f} Å")
        log.finish("relax_lattice_constant")
    return a0


# ------------------------------------------------------------------------------ elastic tensor

def elastic_constants(atoms, calc, relax_ions: bool = True, strain_step: float = 0.005,
                      n_strains: int = 2, fmax: float = 1e-4, structure: str | None = None,
                      temperature_K: float = 0.0):
    """Elastic constants (GPa) from a stress--strain least-squares fit.

    Each of the six Voigt strains is applied at amplitudes ±k·``strain_step`` (k = 1..n_strains,
    engineering shear strains) to the cell as given (it should be relaxed to zero stress: the
    fit is the tangent stiffness at that state, so a residual stress is reported and warned
    about).  With ``relax_ions`` the internal coordinates are relaxed at every strain (BFGS to
    ``fmax``), which gives the relaxed-ion tensor the continuum needs; otherwise atoms follow
    the homogeneous strain (clamped-ion).  Column j of C is the least-squares slope of the six
    stresses against e_j (with an intercept); the symmetric part is returned.

    Parameters
    ----------
    atoms : ase.Atoms
        A relaxed, fully periodic crystal (a primitive cell is enough and the fastest).
    calc : ase Calculator
        Provides energy, forces and stress.
    relax_ions : bool
        Relaxed-ion (True, default) or clamped-ion (False) constants.
    strain_step : float
        Strain increment, in (0, 0.05].  0.005 keeps nonlinearity below ~0.1 GPa for Si.
    n_strains : int
        Number of positive (and as many negative) amplitudes per strain component.
    fmax : float
        Force tolerance of the internal relaxation (eV/Å); 1e-4 converges C44 of Si to ~0.01 GPa.
    structure : str, optional
        Label stored on the tensor; the chemical formula by default.
    temperature_K : float
        Temperature the tensor refers to (0 K for static calculations).

    Returns
    -------
    ElasticTensor
        Voigt 6x6 in GPa (symmetrised), ``relaxed_ions`` as requested; provenance holds the
        strains, the fit residual (GPa), the asymmetry before symmetrisation (GPa) and the
        reference stress (GPa).  ``domain_warnings`` lists where the reference or a strained
        cell (strain measured from the reference cell) lies outside the training domain of
        ``calc.fitted_potential``, if the calculator carries one.

    Raises
    ------
    InputError
        ``strain_step`` not in (0, 0.05], ``n_strains`` < 1, ``fmax`` <= 0, or atoms that are
        not a periodic 3D crystal.
    ConvergenceError
        An internal relaxation that did not converge.
    StabilityError
        The fitted tensor is not Born-stable (raised by ``ElasticTensor.from_voigt``).

    Warns
    -----
    DomainWarning
        Once per call, if any evaluated configuration lies outside the training domain of a
        fitted potential (see :mod:`scaleladder.atomistic.domain`).
    """
    from ..handoffs import ElasticTensor

    _check_periodic_cell("atoms", atoms)
    _check_calc(calc)
    h = validate.finite("strain_step", strain_step)
    if not (0.0 < h <= 0.05):
        raise InputError("strain_step", strain_step, "a strain increment in (0, 0.05]",
                         hint="0.005 is a good default; large strains add nonlinearity")
    n_strains = validate.positive_int("n_strains", n_strains)
    fmax = validate.positive("fmax", fmax)
    if h * n_strains > 0.1:
        raise InputError("n_strains", n_strains, f"n_strains*strain_step <= 0.1 "
                         f"(got largest strain {h * n_strains:g})")

    ref = _with_calc(atoms, calc)
    if relax_ions:
        relax_positions(ref, fmax=fmax, what="unstrained reference cell")
    sigma0 = _stress_gpa(ref)
    cell0 = ref.cell.array.copy()
    pos0 = ref.positions.copy()
    log = DomainLog(calc, reference_cell=cell0)
    log.check(ref, "unstrained reference cell")

    amps = np.array([s * k * h for k in range(1, n_strains + 1) for s in (-1.0, 1.0)])
    C = np.zeros((6, 6))
    resid_sq = 0.0
    n_pts = 0
    steps = 0
    work = ref.copy()
    work.calc = calc
    for j in range(6):
        stresses = np.empty((len(amps), 6))
        for m, e in enumerate(amps):
            F = np.eye(3) + _strain_matrix(j, e)
            work.set_cell(cell0 @ F.T, scale_atoms=False)
            work.positions = pos0 @ F.T
            if relax_ions:
                steps += relax_positions(work, fmax=fmax, what=f"Voigt strain e{j + 1}={e:+g}")
            stresses[m] = _stress_gpa(work)
            log.check(work, f"Voigt strain e{j + 1}={e:+g}")
        X = np.column_stack([np.ones_like(amps), amps])
        coef, *_ = np.linalg.lstsq(X, stresses, rcond=None)
        C[:, j] = coef[1]
        resid_sq += float(((stresses - X @ coef) ** 2).sum())
        n_pts += stresses.size
    asym = float(np.abs(C - C.T).max() / 2)
    C_sym = 0.5 * (C + C.T)
    fit_rms = math.sqrt(resid_sq / n_pts)
    s0 = float(np.abs(sigma0).max())
    if s0 > 0.1:
        warnings.warn(f"elastic_constants: the reference cell carries a stress of up to {s0:.3g} "
                      "GPa; the constants are the tangent stiffness of that stressed state "
                      "(relax the cell first, e.g. relax_lattice_constant)", UserWarning,
                      stacklevel=2)
    provenance = {
        "method": "stress-strain least squares",
        "calculator": type(calc).__name__,
        "strain_step": h, "n_strains": n_strains, "strains": amps.tolist(),
        "strain_convention": "engineering shear strain (e4 = 2 e_yz), linear strain",
        "relax_ions": bool(relax_ions), "fmax_eV_per_A": fmax if relax_ions else None,
        "optimizer": "ase.optimize.BFGS" if relax_ions else None,
        "relaxation_steps": steps,
        "fit_residual_rms_GPa": fit_rms,
        "asymmetry_max_GPa": asym,
        "reference_stress_GPa": sigma0.tolist(),
        "n_atoms": len(atoms),
        "cell_A": cell0.tolist(),
    }
    return ElasticTensor.from_voigt(C_sym, unit="GPa", relaxed_ions=bool(relax_ions),
                                    temperature_K=float(temperature_K),
                                    structure=structure or ref.get_chemical_formula(),
                                    provenance=provenance,
                                    domain_warnings=log.finish("elastic_constants"))


# ------------------------------------------------------------------------------- surface energy

def _check_miller(miller: Any) -> tuple[int, int, int]:
    try:
        vals = tuple(miller)
    except TypeError:
        raise InputError("miller", miller, "three integers (h, k, l), not all zero") from None
    if len(vals) != 3:
        raise InputError("miller", miller, "three integers (h, k, l), not all zero")
    out = []
    for v in vals:
        if isinstance(v, bool):
            raise InputError("miller", miller, "three integers (h, k, l), not all zero")
        if isinstance(v, (int, np.integer)):
            out.append(int(v))
        elif isinstance(v, (float, np.floating)) and float(v).is_integer():
            out.append(int(v))
        else:
            raise InputError("miller", miller, "three integers (h, k, l), not all zero")
    if not any(out):
        raise InputError("miller", miller, "three integers (h, k, l), not all zero")
    g = reduce(gcd, (abs(v) for v in out))
    return tuple(v // g for v in out)  # type: ignore[return-value]


def _conventional(bulk_atoms):
    """The conventional cubic cell of an fcc-lattice primitive cell (60° angles), else a copy."""
    from ase.build import make_supercell

    par = bulk_atoms.cell.cellpar()
    if np.allclose(par[:3], par[0], rtol=1e-6) and np.allclose(par[3:], 60.0, atol=1e-4):
        P = np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]])
        conv = make_supercell(bulk_atoms, P)
        # orient the cube along x, y, z
        a = float(np.linalg.norm(conv.cell[0]))
        conv.set_cell(np.eye(3) * a, scale_atoms=True)
        conv.wrap()
        return conv, "converted from the fcc-lattice primitive cell"
    return bulk_atoms.copy(), "as given"


def _plane_heights(atoms, normal_g: np.ndarray):
    """Heights of the atoms along the unit normal, modulo the plane-family period 1/|G|."""
    d = 1.0 / np.linalg.norm(normal_g)
    nhat = normal_g * d
    z = np.mod(atoms.positions @ nhat, d)
    return z, d, nhat


def _widest_gap_shift(z: np.ndarray, d: float, tol: float = 1e-3):
    """Height of the middle of the widest gap between atomic planes (periodic with period d)."""
    planes = np.sort(z)
    uniq = [planes[0]]
    for v in planes[1:]:
        if v - uniq[-1] > tol:
            uniq.append(v)
    if len(uniq) > 1 and uniq[0] + d - uniq[-1] < tol:
        uniq.pop()
    uniq = np.array(uniq)
    gaps = np.diff(np.append(uniq, uniq[0] + d))
    k = int(np.argmax(gaps))
    return float(uniq[k] + gaps[k] / 2), gaps


def _coordination(atoms, cutoff: float) -> np.ndarray:
    from ase.neighborlist import neighbor_list

    i = neighbor_list("i", atoms, cutoff)
    return np.bincount(i, minlength=len(atoms))


def _first_shell_cutoff(atoms) -> float:
    """A radius between the first and second neighbour shells of a bulk crystal."""
    from ase.neighborlist import neighbor_list

    d = np.sort(neighbor_list("d", atoms, 1.8 * _nn_distance(atoms)))
    d1 = d[0]
    beyond = d[d > d1 * 1.05]
    d2 = beyond[0] if len(beyond) else 1.5 * d1
    return float(0.5 * (d1 + d2))


def _nn_distance(atoms) -> float:
    from ase.neighborlist import neighbor_list

    r = 2.0
    while True:
        d = neighbor_list("d", atoms, r)
        if len(d):
            return float(d.min())
        r *= 1.5


def build_slab(bulk_atoms, miller=(1, 1, 1), layers: int = 4, vacuum: float = 8.0,
               surface_cell: str = "conventional"):
    """A slab cut in the widest gap between atomic planes (the shuffle plane for diamond (111)).

    The conventional cell (an fcc-lattice primitive cell is converted to it) is translated
    along the surface normal so that the middle of the widest interplanar gap sits on the
    cutting plane, then handed to :func:`ase.build.surface`.  Cutting the widest gap breaks the
    fewest, longest bonds: for diamond (111) it is the shuffle plane between double layers
    (one dangling bond per surface atom), not the glide plane inside a double layer (three).

    Parameters
    ----------
    bulk_atoms : ase.Atoms
        The bulk crystal; Miller indices refer to its conventional cell.
    miller : tuple of int
        Surface orientation (reduced by their greatest common divisor).
    layers : int
        Number of repeats of the oriented bulk unit along the normal (for diamond (111) from the
        cubic cell, one repeat = one double layer, a/√3 thick).
    vacuum : float
        Vacuum on each side (Å); the slab stays periodic in z with a gap of 2·vacuum.
    surface_cell : {"conventional", "primitive"}
        ``"primitive"``: the smallest surface cell, cut from ``bulk_atoms`` as given (Miller
        indices still refer to the conventional cell; for diamond (111) from the 2-atom cell
        this is the 1x1 cell, 2 atoms per double layer -- the slab DFT can afford), instead of
        the surface cell of the conventional cube (2x2 for (111), 8 atoms per double layer).

    Returns
    -------
    ase.Atoms
        The slab (pbc True in all directions), and its ``info`` holds ``period_A`` (thickness
        of one repeat) and ``gaps_A`` (the interplanar gaps of one period).
    """
    from ase.build import surface

    hkl = _check_miller(miller)
    layers = validate.positive_int("layers", layers)
    vacuum = validate.positive("vacuum", vacuum)
    if surface_cell not in ("conventional", "primitive"):
        raise InputError("surface_cell", surface_cell, "'conventional' or 'primitive'")
    conv, how = _conventional(bulk_atoms)
    G = np.array(hkl, dtype=float) @ conv.cell.reciprocal()
    z, d, nhat = _plane_heights(conv, G)
    z_cut, gaps = _widest_gap_shift(z, d)
    base, h_cut = conv, hkl
    if surface_cell == "primitive":
        base = bulk_atoms
        hp = np.asarray(bulk_atoms.cell) @ G          # Miller indices in the given cell's basis
        hp = np.rint(hp / np.abs(hp[np.abs(hp) > 1e-8]).min()).astype(int)
        h_cut = tuple(int(x) for x in hp // np.gcd.reduce(np.abs(hp)))
        how = "as given (primitive surface cell)"
    shifted = base.copy()
    shifted.positions = shifted.positions - z_cut * nhat
    shifted.wrap()
    slab = surface(shifted, h_cut, layers, vacuum=vacuum)
    slab.pbc = True
    slab.info.update({"period_A": float(d), "gaps_A": gaps.tolist(), "miller": hkl,
                      "conventional_cell": how})
    return slab


def surface_energy(bulk_atoms, calc, miller=(1, 1, 1), layers: int = 6, vacuum: float = 8.0,
                   relax: bool = True, fmax: float = 1e-3, structure: str | None = None):
    """Surface energy γ = (E_slab − N·E_bulk) / (2A) in J/m².

    The slab is built by :func:`build_slab` (cut in the widest interplanar gap: the shuffle
    plane for diamond (111)), both faces equivalent.  ``E_bulk`` is the energy per atom of
    ``bulk_atoms`` with the same calculator (so ``bulk_atoms`` should be relaxed).  With
    ``relax`` the slab's atoms are relaxed at fixed cell (BFGS to ``fmax``); the unrelaxed value
    is kept in provenance either way, along with the number of dangling bonds per surface atom
    (bulk first-shell coordination minus the surface atoms' coordination).

    The relaxation starts from the ideal termination and keeps its symmetry: it finds no
    reconstruction (e.g. the (100) 2x1 dimers of silicon).  For Stillinger-Weber silicon the
    ideal (111) and (100) surfaces carry (almost) no force (bond lengths at the pair minimum,
    tetrahedral angles), so relaxed and unrelaxed values agree to ~1e-8 J/m².

    Parameters
    ----------
    bulk_atoms : ase.Atoms
        The relaxed bulk crystal, conventional cubic cell (an fcc-lattice primitive cell is
        converted).  Miller indices refer to this cell.
    calc : ase Calculator
        Provides energies (and forces when relaxing).
    miller : tuple of int
        Surface orientation (h, k, l), integers not all zero.
    layers : int
        Slab thickness in repeats of the oriented bulk unit (see :func:`build_slab`).
    vacuum : float
        Vacuum on each side (Å); must exceed the interaction range.
    relax : bool
        Relax the slab (default) or return the unrelaxed, ideal-termination value.
    fmax : float
        Force tolerance of the relaxation (eV/Å).
    structure : str, optional
        Label stored on the result; the bulk's chemical formula by default.

    Returns
    -------
    SurfaceEnergy
        ``value`` an Estimate in J/m², ``relaxed`` as requested; provenance holds both the
        unrelaxed and (if computed) relaxed values, the area, the atom count, the termination
        and the dangling bonds per surface atom.  ``domain_warnings`` lists where the bulk or
        the (unrelaxed, relaxed) slab lies outside the training domain of
        ``calc.fitted_potential``, if the calculator carries one.  The slab is checked as open
        along its normal: its volume per atom counts the vacuum and is not compared with the
        training range (nearest-neighbour distances are).  A training set of bulk cells has
        no surfaces, which this check cannot see: a surface energy from such a potential is
        always a transfer beyond its training data.

    Raises
    ------
    InputError
        Bad Miller indices ((0, 0, 0), non-integers), non-positive layers/vacuum/fmax, or a bulk
        that is not a periodic crystal.
    CalculationError
        The relaxed slab's energy falls below that of the same atoms in the bulk (a negative
        surface energy: the slab collapses under this calculator); raised as soon as it
        happens, not after the relaxation's last step.
    ConvergenceError
        The relaxation did not reach ``fmax``.

    Warns
    -----
    DomainWarning
        Once per call, if the bulk or a slab lies outside the training domain of a fitted
        potential.
    """
    from ..handoffs import SurfaceEnergy
    from ..uq import Estimate

    _check_periodic_cell("bulk_atoms", bulk_atoms)
    _check_calc(calc)
    hkl = _check_miller(miller)
    layers = validate.positive_int("layers", layers)
    vacuum = validate.positive("vacuum", vacuum)
    fmax = validate.positive("fmax", fmax)

    bulk = _with_calc(bulk_atoms, calc)
    e_bulk = float(bulk.get_potential_energy()) / len(bulk)
    log = DomainLog(calc)
    log.check(bulk, "bulk")
    bulk_stress = float(np.abs(bulk.get_stress(voigt=True)).max() * EV_PER_A3_IN_GPA)

    slab = build_slab(bulk_atoms, hkl, layers=layers, vacuum=vacuum)
    slab.calc = calc
    cell = slab.cell.array
    area = float(np.linalg.norm(np.cross(cell[0], cell[1])))
    n = len(slab)

    # dangling bonds per surface atom (first-shell counting)
    conv, _ = _conventional(bulk_atoms)
    rc = _first_shell_cutoff(conv)
    z_bulk = int(np.bincount(_coordination(conv, rc)).argmax())
    coord = _coordination(slab, rc)
    missing = z_bulk - coord
    surf_atoms = missing > 0
    broken_per_area = float(missing.sum()) / (2.0 * area)
    dangling = (float(missing[surf_atoms].mean()) if surf_atoms.any() else 0.0)

    e_unrel = float(slab.get_potential_energy())
    log.check(_open_along_normal(slab), "unrelaxed slab")
    g_unrel = (e_unrel - n * e_bulk) / (2.0 * area) * EV_PER_A2_IN_J_PER_M2
    steps = 0
    g = g_unrel
    if relax:
        # a slab below its bulk energy (a negative surface energy) has collapsed: stop there
        steps = relax_positions(slab, fmax=fmax, what=f"{hkl} slab, {n} atoms",
                                energy_floor=n * e_bulk)
        e_rel = float(slab.get_potential_energy())
        log.check(_open_along_normal(slab), "relaxed slab")
        g = (e_rel - n * e_bulk) / (2.0 * area) * EV_PER_A2_IN_J_PER_M2
    if not np.isfinite(g):
        raise CalculationError(f"non-finite surface energy for {hkl}: E_slab/E_bulk not finite")
    provenance = {
        "method": "slab, (E_slab - N E_bulk) / 2A",
        "calculator": type(calc).__name__,
        "layers": layers, "vacuum_A": vacuum, "n_atoms": n, "area_A2": area,
        "slab_thickness_A": layers * slab.info["period_A"],
        "termination": "cut in the widest interplanar gap (shuffle plane for diamond (111))",
        "interplanar_gaps_A": slab.info["gaps_A"],
        "bulk_coordination": z_bulk,
        "dangling_bonds_per_surface_atom": dangling,
        "broken_bonds_per_A2_per_face": broken_per_area,
        "e_bulk_eV_per_atom": e_bulk,
        "bulk_max_stress_GPa": bulk_stress,
        "unrelaxed_J_per_m2": g_unrel,
        "relaxed_J_per_m2": g if relax else None,
        "fmax_eV_per_A": fmax if relax else None,
        "relaxation_steps": steps,
        "conventional_cell": slab.info["conventional_cell"],
    }
    return SurfaceEnergy(miller=hkl, value=Estimate(float(g), unit="J/m^2"), relaxed=bool(relax),
                         structure=structure or bulk.get_chemical_formula(),
                         provenance=provenance, domain_warnings=log.finish("surface_energy"))


def _open_along_normal(slab):
    """A copy of a slab (vacuum along its third cell vector) that is open along that vector.

    For the domain check only: the volume per atom of a periodic slab counts the vacuum.
    """
    view = slab.copy()
    view.pbc = (True, True, False)
    return view


__all__ = ["elastic_constants", "surface_energy", "relax_lattice_constant", "relax_positions",
           "build_slab"]
