"""Point defects from any ASE calculator: vacancy formation energies and migration barriers.

* :func:`vacancy_formation_energy` -> :class:`~scaleladder.handoffs.VacancyFormationEnergy` (eV):
  ``E_f = E(N-1) - (N-1)/N E(N)`` in a periodic supercell, relaxed at fixed cell by default, with
  a basin search around the vacancy and a Hessian check that the result is a minimum;
* :func:`vacancy_migration_path` -> initial and final states of a nearest-neighbour vacancy hop,
  optionally relaxed by the same procedure, the final state being the relaxed initial one mapped
  by the hop's point symmetry;
* :func:`migration_barrier` -> :class:`~scaleladder.handoffs.MigrationBarrier` (eV): climbing-image
  nudged elastic band with the improved tangent (Henkelman & Jónsson, J. Chem. Phys. 113, 9978
  (2000); Henkelman, Uberuaga & Jónsson, ibid. 9901), run by ASE's :class:`ase.mep.NEB`;
* :func:`local_hessian` -> finite-difference Hessian of a neighbourhood (eV/Å²), used to tell
  minima from saddles.

Why a basin search.  Removing an atom from a crystal leaves a configuration of high symmetry in
which the forces may vanish exactly, so a gradient relaxation started there never leaves it.
Stillinger-Weber silicon is the case in point: at the SW equilibrium every remaining pair sits at
the minimum of the pair term and every angle is tetrahedral, so the unrelaxed vacancy has zero
forces, and its local Hessian is positive definite (lowest eigenvalue of the first two neighbour
shells 3.4 eV/Å², measured): it is a *metastable minimum* at ``E_f = 2ε = 4.34 eV``, not a
saddle, and no small rattle leaves it (0.01-0.2 Å rattles of the first shell relax back).  The
four dangling-bond neighbours sit 3.84 Å apart, just beyond the SW cutoff ``aσ = 3.77 Å``; moved
~0.3 Å or more towards the site they bond to each other and the cell relaxes into a much deeper
basin (``E_f = 2.836 eV`` in a 63-atom cell, 2.695 eV in 215 atoms, 2.665 eV in 511 atoms;
measured) in which the four neighbours keep the Td symmetry, 1.79 Å from the site and 2.92 Å from
each other.  (SW has no electronic Jahn-Teller term; the D2d pairing of DFT is not a minimum of
SW: pairing and trigonal starts relax back to the Td state, and the lowest of 64 seeded rattles
of the first two shells is that state.)  :func:`vacancy_formation_energy` therefore relaxes the
symmetric start and then a fixed, seeded set of displaced starts, keeps the lowest energy, and
checks the local Hessian.

The SW vacancy hop between two relaxed Td vacancies (end states mapped onto each other by the
bond-centre inversion, see :func:`vacancy_migration_path`) has its saddle at the midpoint, the
split vacancy (the hopping atom at the bond centre), with exactly one negative local Hessian
eigenvalue (-3.2 eV/Å²); CI-NEB barrier 0.517 eV in 63 atoms, 0.512 eV in 215 atoms (measured).
Posselt et al. (MD with SW and Tersoff) describe SW vacancy migration as tetrahedral <-> split
vacancy transformations, consistent with this path; DFT gives 0.40 eV for the neutral vacancy
hop (El-Mellouhi, Mousseau & Ordejón, PRB 70, 205202 (2004)).  No SW-specific barrier value
could be verified here.

Energies in eV, distances in Å (ASE's units), throughout.
"""
from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from ..core import validate
from ..core.errors import CalculationError, ConvergenceError, InputError
from .domain import DomainLog
from .properties import _check_calc, _check_periodic_cell, _nn_distance, _with_calc, relax_positions

__all__ = ["vacancy_formation_energy", "vacancy_migration_path", "migration_barrier",
           "local_hessian"]

_NEB_METHODS = ("improvedtangent", "aseneb", "eb", "spline", "string")
_OPTIMIZERS = ("FIRE", "BFGS")
_INTERPOLATIONS = ("linear", "idpp")
#: two relaxed states closer than this in energy (eV) are taken as the same basin (relaxations
#: stopped at fmax ~1e-3 eV/Å differ by ~1e-6 eV; distinct SW vacancy basins by > 0.01 eV)
_ENERGY_TIE_EV = 1e-4
#: neighbourhood of the Hessian check, in nearest-neighbour distances: first and second shells of
#: diamond (1.633 d_nn) and fcc (1.414 d_nn), not the third shell of fcc (1.732 d_nn)
_HESSIAN_RADIUS_NN = 1.7
#: an interior band image this far (eV) below both end states means they are not minima
_BAND_DIP_EV = 1e-3
#: rounds of negative-mode following before giving up on reaching a minimum
_MODE_FOLLOW_ROUNDS = 3


def _max_force(forces: np.ndarray) -> float:
    f = np.asarray(forces, dtype=float).reshape(-1, 3)
    return float(np.sqrt((f ** 2).sum(axis=1)).max()) if len(f) else 0.0


def _atom_index(field: str, value: Any, n: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not -n <= value < n:
        raise InputError(field, value, f"an atom index in [0, {n - 1}]")
    return int(value) % n


def _mic(vectors: np.ndarray, atoms) -> np.ndarray:
    from ase.geometry import find_mic

    v = np.asarray(vectors, dtype=float)
    if not np.any(atoms.pbc):
        return v
    return find_mic(v.reshape(-1, 3), atoms.cell, atoms.pbc)[0].reshape(v.shape)


# ----------------------------------------------------------------------------- local Hessian

def local_hessian(atoms, centre, radius: float, step: float = 1e-3):
    """Finite-difference Hessian of the atoms within ``radius`` of ``centre``, the others fixed.

    ``H[3a+i, 3b+j] = d²E / dx_{a,i} dx_{b,j}`` from central differences of the forces,
    ``H = -(F(x + h e) - F(x - h e)) / 2h``, symmetrised.  Holding the rest of the cell fixed
    removes the zero-frequency translations of a periodic cell, so a minimum has only positive
    eigenvalues here.  The restriction is a principal submatrix of the full Hessian: a negative
    eigenvalue proves a saddle (or maximum); all-positive eigenvalues show there is no downhill
    direction among the atoms checked (a necessary condition for a minimum, cheap where the
    full Hessian is not).

    Parameters
    ----------
    atoms : ase.Atoms
        With a calculator that provides forces; its positions are restored on return.
    centre : array-like of 3 float
        Centre of the neighbourhood (Å), e.g. a vacant site; minimum-image distances.
    radius : float
        Atoms closer than this to ``centre`` (Å) are displaced.
    step : float
        Finite-difference displacement (Å).

    Returns
    -------
    indices : ndarray of int
        The atoms displaced, ``m`` of them.
    eigenvalues : ndarray (3m,)
        Ascending (eV/Å²).
    eigenvectors : ndarray (3m, 3m)
        Columns, normalised; component ``3a+i`` is atom ``indices[a]``, Cartesian ``i``.

    Raises
    ------
    InputError
        A non-positive ``radius`` or ``step``, a bad ``centre``, or no atom within ``radius``.
    """
    radius = validate.positive("radius", radius)
    step = validate.positive("step", step)
    c = validate.finite_array("centre", centre, (3,))
    d = _mic(atoms.positions - c, atoms)
    idx = np.flatnonzero(np.linalg.norm(d, axis=1) < radius)
    if len(idx) == 0:
        raise InputError("radius", radius, f"a radius that holds at least one atom around {c}")
    x0 = atoms.get_positions()
    m = 3 * len(idx)
    h = np.empty((m, m))
    try:
        for a, ia in enumerate(idx):
            for i in range(3):
                x = x0.copy()
                x[ia, i] += step
                atoms.positions = x
                fp = atoms.get_forces()[idx].ravel()
                x[ia, i] -= 2 * step
                atoms.positions = x
                fm = atoms.get_forces()[idx].ravel()
                h[3 * a + i] = -(fp - fm) / (2 * step)
    finally:
        atoms.positions = x0
    w, v = np.linalg.eigh(0.5 * (h + h.T))
    return idx, w, v


# ----------------------------------------------------------------------- vacancy relaxation

def _check_search_settings(trial_amplitude, n_rattles, seed, hessian_tol):
    amp = validate.positive("trial_amplitude", trial_amplitude)
    nr = validate.positive_int("n_rattles", n_rattles, 0)
    sd = validate.positive_int("seed", seed, 0)
    tol = validate.positive("hessian_tol", hessian_tol)
    return amp, nr, sd, tol


def _relax_vacancy(defect, calc, site, d_nn: float, *, fmax: float, steps: int, what: str,
                   basin_search: bool, trial_amplitude: float, n_rattles: int, seed: int,
                   verify_minimum: bool, hessian_tol: float):
    """Relax a cell holding one vacancy at ``site`` into its lowest basin found; see
    :func:`vacancy_formation_energy`.  Returns ``(relaxed atoms, record, optimiser steps)``."""
    s0 = _with_calc(defect, calc)
    n_steps = relax_positions(s0, fmax=fmax, steps=steps, what=f"{what} (symmetric start)")
    e0 = float(s0.get_potential_energy())
    radius = _HESSIAN_RADIUS_NN * d_nn
    trials = [{"start": "symmetric", "energy_eV": e0, "steps": n_steps, "converged": True}]
    best, best_e, best_name = s0, e0, "symmetric"
    record: dict = {"basin_search": bool(basin_search)}
    if basin_search:
        # first neighbour shell of the vacant site, in the unrelaxed cell
        r = _mic(defect.positions - site, defect)
        dist = np.linalg.norm(r, axis=1)
        shell = np.flatnonzero(dist < 1.2 * d_nn)
        inward = -r[shell] / dist[shell, None]
        starts = [("breathing_in", trial_amplitude * inward),
                  ("breathing_out", -trial_amplitude * inward)]
        rng = np.random.default_rng(seed)
        for k in range(n_rattles):
            v = rng.normal(size=(len(shell), 3))
            v /= np.linalg.norm(v, axis=1)[:, None]
            starts.append((f"rattle_{k}", trial_amplitude * v))
        moves = [(name, shell, disp) for name, disp in starts]
        # a symmetric start that is a saddle: follow its negative modes both ways
        idx, w, vec = local_hessian(s0, site, radius)
        record["symmetric_start_lowest_eigenvalues_eV_per_A2"] = [float(x) for x in w[:4]]
        if w[0] < -hessian_tol:
            mode = vec[:, 0].reshape(-1, 3)
            mode = trial_amplitude * mode / np.linalg.norm(mode, axis=1).max()
            moves += [("softest_mode_plus", idx, mode), ("softest_mode_minus", idx, -mode)]
        for name, atoms_idx, disp in moves:
            t = s0.copy()
            t.calc = calc
            t.positions[atoms_idx] += disp
            try:
                st = relax_positions(t, fmax=fmax, steps=steps, what=f"{what} ({name} start)")
            except ConvergenceError:
                trials.append({"start": name, "energy_eV": None, "steps": steps,
                               "converged": False})
                n_steps += steps
                continue
            n_steps += st
            e = float(t.get_potential_energy())
            trials.append({"start": name, "energy_eV": e, "steps": st, "converged": True})
            if e < best_e - _ENERGY_TIE_EV:
                best, best_e, best_name = t, e, name
        record.update({"trial_amplitude_A": trial_amplitude, "n_rattles": n_rattles,
                       "seed": seed, "first_shell_atoms": [int(i) for i in shell]})
    record["trials"] = trials
    if verify_minimum:
        for _ in range(_MODE_FOLLOW_ROUNDS + 1):
            idx, w, vec = local_hessian(best, site, radius)
            if w[0] >= -hessian_tol:
                break
            # a saddle: step down its softest mode both ways and keep the lower relaxed state
            mode = vec[:, 0].reshape(-1, 3)
            mode = 0.25 * trial_amplitude * mode / np.linalg.norm(mode, axis=1).max()
            lower = None
            for sign in (1.0, -1.0):
                t = best.copy()
                t.calc = calc
                t.positions[idx] += sign * mode
                n_steps += relax_positions(t, fmax=fmax, steps=steps,
                                           what=f"{what} (negative-mode following)")
                e = float(t.get_potential_energy())
                if e < best_e - _ENERGY_TIE_EV and (lower is None or e < lower[1]):
                    lower = (t, e)
            if lower is None:
                break
            best, best_e = lower
            best_name += "+mode_following"
        if w[0] < -hessian_tol:
            raise ConvergenceError(
                f"the relaxed vacancy is not a minimum: the local Hessian has eigenvalue "
                f"{w[0]:.4g} eV/Å² < -{hessian_tol} eV/Å² after negative-mode following",
                configuration=what, settings={"fmax": fmax, "hessian_tol": hessian_tol},
                suggestion="tighten fmax, or raise hessian_tol if the calculator's forces are "
                           "noisy")
        record["minimum_check"] = {
            "radius_A": float(radius), "n_atoms": int(len(idx)), "step_A": 1e-3,
            "lowest_eigenvalues_eV_per_A2": [float(x) for x in w[:4]],
            "tolerance_eV_per_A2": hessian_tol, "is_minimum": True}
    record["selected_start"] = best_name
    return best, record, n_steps


# ------------------------------------------------------------------------- formation energy

def vacancy_formation_energy(bulk_atoms, calc, supercell=(3, 3, 3), relax: bool = True,
                             fmax: float = 1e-3, vacancy_index: int = 0, steps: int = 2000,
                             structure: str | None = None, basin_search: bool = True,
                             trial_amplitude: float = 0.4, n_rattles: int = 2, seed: int = 0,
                             verify_minimum: bool = True, hessian_tol: float = 0.01):
    """Vacancy formation energy ``E_f = E(N-1) - (N-1)/N · E(N)`` (eV).

    ``bulk_atoms`` is repeated ``supercell`` times (N atoms, energy ``E(N)``); atom
    ``vacancy_index`` is removed and, with ``relax``, the remaining ``N - 1`` atoms are relaxed at
    fixed cell (BFGS to ``fmax``; the perfect supercell is relaxed too, a no-op for a crystal at
    its equilibrium positions).  The cell is that of the perfect crystal (constant-volume
    formation energy); pass a relaxed ``bulk_atoms`` (e.g. via ``relax_lattice_constant``).

    The relaxation is a small, reproducible basin search (``basin_search``, default on):

    1. relax the symmetric start (the crystal with one atom removed);
    2. relax from displaced copies of that state, in which the first neighbour shell of the
       vacant site (atoms closer than 1.2 nearest-neighbour distances) is moved by
       ``trial_amplitude`` (Å per atom): inwards towards the site, outwards, and along
       ``n_rattles`` random directions drawn from ``numpy.random.default_rng(seed)``; plus,
       if the symmetric state is a saddle (a local Hessian eigenvalue below ``-hessian_tol``),
       both ways along its softest mode;
    3. keep the lowest energy (the symmetric state wins ties within 1e-4 eV, so a potential whose
       symmetric vacancy is already the lowest minimum, e.g. EMT Cu or Lennard-Jones, returns
       exactly the energy of a plain relaxation);
    4. with ``verify_minimum``, compute the finite-difference Hessian of the first and second
       neighbour shells (atoms within 1.7 nearest-neighbour distances of the site, the rest held,
       see :func:`local_hessian`); a negative eigenvalue is followed downhill (up to 3 times).

    Why: for Stillinger-Weber silicon the symmetric vacancy has exactly zero forces and is a
    metastable local minimum at the unrelaxed ``2ε = 4.34 eV``; the inward start reaches the
    relaxed vacancy (2.84 eV in 63 atoms, see the module notes).  The search is a set of local
    relaxations, not a global optimisation: it finds the lowest of the basins its starts lead to.

    For a pair potential the unrelaxed value is exactly ``-E(N)/N`` (removing an atom breaks
    its bonds, twice its energy share, and ``N - 1`` atoms keep theirs) whenever the supercell
    is longer than the cutoff; relaxation only lowers it.

    Parameters
    ----------
    bulk_atoms : ase.Atoms
        The periodic bulk crystal (any cell: primitive or conventional).
    calc : ase Calculator
        Provides energies (and forces when relaxing).
    supercell : int or tuple of 3 int
        Repeats of ``bulk_atoms`` along its cell vectors (each >= 1).  Make it longer than the
        calculator's cutoff and large enough that the vacancy's periodic images do not interact.
    relax : bool
        Relax the defective cell (default) or return the unrelaxed value.
    fmax : float
        Force tolerance of the relaxations (eV/Å).
    vacancy_index : int
        Index (in the supercell) of the atom removed.
    steps : int
        Largest number of optimiser steps per relaxation.
    structure : str, optional
        Label stored on the result; the bulk's chemical formula by default.
    basin_search : bool
        Relax the displaced starts of step 2 too (default), or only the symmetric start.
    trial_amplitude : float
        Displacement of each first-shell atom in the displaced starts (Å).  0.4 Å reaches the
        relaxed SW silicon vacancy (starts of 0.2 Å or less fall back to the symmetric one).
    n_rattles : int
        Number of seeded random starts (>= 0).
    seed : int
        Seed of the random starts (>= 0).
    verify_minimum : bool
        Check the final state with the local Hessian (default).
    hessian_tol : float
        Eigenvalues below ``-hessian_tol`` (eV/Å²) count as negative.

    Returns
    -------
    VacancyFormationEnergy
        ``value`` an Estimate in eV (no uncertainty sources), ``relaxed`` as requested,
        ``supercell_atoms = N``; provenance holds the unrelaxed and (if computed) relaxed values,
        the relaxation energy, the supercell and the energies, the formation energy of the
        relaxed symmetric start (``symmetric_relaxed_eV``), every start tried with its energy
        and steps (``vacancy_relaxation.trials``), the start selected, and the Hessian check
        (``vacancy_relaxation.minimum_check``: radius, atoms, lowest eigenvalues).

    Raises
    ------
    InputError
        A supercell with zeros or non-integers, non-positive ``fmax``, ``trial_amplitude`` or
        ``hessian_tol``, a bad ``vacancy_index``, negative ``n_rattles`` or ``seed``, a supercell
        of fewer than 2 atoms, or a bulk that is not a periodic crystal.
    ConvergenceError
        The relaxation of the perfect cell or of the symmetric start did not reach ``fmax``
        within ``steps`` (a displaced start that does not converge is recorded and skipped), or
        the final state still has a negative Hessian eigenvalue after mode following.
    """
    from ..handoffs import VacancyFormationEnergy
    from ..uq import Estimate

    _check_periodic_cell("bulk_atoms", bulk_atoms)
    _check_calc(calc)
    sc = validate.kmesh("supercell", supercell)
    fmax = validate.positive("fmax", fmax)
    steps = validate.positive_int("steps", steps)
    amp, n_rattles, seed, hessian_tol = _check_search_settings(trial_amplitude, n_rattles, seed,
                                                               hessian_tol)
    for name, flag in (("relax", relax), ("basin_search", basin_search),
                       ("verify_minimum", verify_minimum)):
        if not isinstance(flag, (bool, np.bool_)):
            raise InputError(name, flag, "True or False")
    n = len(bulk_atoms) * int(np.prod(sc))
    if n < 2:
        raise InputError("supercell", sc, "a supercell of at least 2 atoms")
    iv = _atom_index("vacancy_index", vacancy_index, n)

    perfect = _with_calc(bulk_atoms.repeat(sc), calc)
    steps_perfect = relax_positions(perfect, fmax=fmax, steps=steps,
                                    what=f"perfect {sc} supercell, {n} atoms") if relax else 0
    e_n = float(perfect.get_potential_energy())

    defect = perfect.copy()
    del defect[iv]
    defect.calc = calc
    e_unrel = float(defect.get_potential_energy())
    ef_unrel = e_unrel - (n - 1) / n * e_n
    ef = ef_unrel
    steps_defect = 0
    e_rel = None
    vac_record = None
    if relax:
        site = perfect.positions[iv].copy()
        defect, vac_record, steps_defect = _relax_vacancy(
            defect, calc, site, _nn_distance(perfect), fmax=fmax, steps=steps,
            what=f"vacancy in {sc} supercell, {n - 1} atoms", basin_search=bool(basin_search),
            trial_amplitude=amp, n_rattles=n_rattles, seed=seed,
            verify_minimum=bool(verify_minimum), hessian_tol=hessian_tol)
        e_rel = float(defect.get_potential_energy())
        ef = e_rel - (n - 1) / n * e_n
        for t in vac_record["trials"]:
            t["formation_energy_eV"] = (None if t["energy_eV"] is None
                                        else t["energy_eV"] - (n - 1) / n * e_n)
    if not np.isfinite(ef):
        raise CalculationError(f"non-finite vacancy formation energy: E(N)={e_n!r}, "
                               f"E(N-1)={e_rel if relax else e_unrel!r}")
    max_disp = 0.0
    if relax:
        ref = np.delete(perfect.positions, iv, axis=0)
        max_disp = float(np.linalg.norm(_mic(defect.positions - ref, defect), axis=1).max())
    provenance = {
        "method": "supercell, E(N-1) - (N-1)/N E(N), fixed cell",
        "calculator": type(calc).__name__,
        "supercell": list(sc), "n_atoms_perfect": n, "vacancy_index": iv,
        "cell_A": perfect.cell.array.tolist(),
        "e_perfect_eV": e_n, "e_defect_unrelaxed_eV": e_unrel, "e_defect_relaxed_eV": e_rel,
        "unrelaxed_eV": ef_unrel, "relaxed_eV": ef if relax else None,
        "relaxation_energy_eV": (ef_unrel - ef) if relax else None,
        "symmetric_relaxed_eV": (vac_record["trials"][0]["formation_energy_eV"]
                                 if relax else None),
        "max_displacement_A": max_disp if relax else None,
        "fmax_eV_per_A": fmax if relax else None,
        "optimizer": "ase.optimize.BFGS" if relax else None,
        "relaxation_steps": steps_perfect + steps_defect,
        "vacancy_relaxation": vac_record,
    }
    log = DomainLog(calc)
    log.check(perfect, "perfect supercell")
    log.check(defect, "vacancy supercell" + (" (relaxed)" if relax else ""))
    return VacancyFormationEnergy(value=Estimate(float(ef), unit="eV"), relaxed=bool(relax),
                                  structure=structure or bulk_atoms.get_chemical_formula(),
                                  supercell_atoms=n, provenance=provenance,
                                  domain_warnings=log.finish("vacancy_formation_energy"))


# ---------------------------------------------------------------------------- hop end states

def _hop_inversion(perfect, mid: np.ndarray, tol: float = 1e-5):
    """The permutation of the perfect supercell's sites under the inversion ``x -> 2 mid - x``,
    or None if that inversion is not a symmetry of the supercell (sites or species)."""
    cell = perfect.cell.array
    inv_cell = np.linalg.inv(cell)
    frac = perfect.positions @ inv_cell
    target = (2 * mid - perfect.positions) @ inv_cell
    perm = np.empty(len(perfect), dtype=int)
    for lo in range(0, len(perfect), 256):                  # bounded memory for large cells
        d = target[lo:lo + 256, None, :] - frac[None, :, :]
        d -= np.round(d)
        dist = np.linalg.norm(d @ cell, axis=2)
        j = np.argmin(dist, axis=1)
        if np.any(dist[np.arange(len(j)), j] > tol):
            return None
        perm[lo:lo + 256] = j
    if len(set(perm.tolist())) != len(perm) or np.any(perfect.numbers[perm] != perfect.numbers):
        return None
    return perm


def vacancy_migration_path(bulk_atoms, supercell=(3, 3, 3), vacancy_index: int = 0,
                           neighbour_index: int | None = None, calc=None, fmax: float = 1e-3,
                           steps: int = 2000, basin_search: bool = True,
                           trial_amplitude: float = 0.4, n_rattles: int = 2, seed: int = 0,
                           verify_minimum: bool = True, hessian_tol: float = 0.01):
    """Initial and final states of a nearest-neighbour vacancy hop.

    Atom ``vacancy_index`` of the perfect supercell is removed (the vacancy); in the final
    state the atom ``neighbour_index`` (a first-shell neighbour of the vacant site) sits on the
    vacant site.  Both states hold the same ``N - 1`` atoms in the same order; the hopping
    atom's final position is its initial one plus the minimum-image hop vector (not wrapped),
    so a linear interpolation follows the straight hop.

    Without ``calc`` the two states are the unrelaxed lattice ones.  With ``calc`` the initial
    state is relaxed by the procedure of :func:`vacancy_formation_energy` (basin search and
    Hessian check, same settings), and the final state is *the same defect structure mapped by
    the hop*: the inversion through the midpoint of the hop bond, ``x -> 2m - x``, is a symmetry
    of the diamond and fcc lattices that exchanges the vacant site and the hopping atom's site,
    so the final state puts on every site ``t`` the inverted relaxation displacement ``-u`` of
    the site it maps from.  End states are then exactly equivalent (equal energies, forces
    mapped), whatever variant of a degenerate relaxed vacancy the basin search picked, and the
    path is well defined.  If the inversion is not a symmetry of the supercell the final state
    is relaxed independently by the same procedure (``info["final_state"]`` says which).

    The relaxed Stillinger-Weber silicon vacancy is Td-symmetric (module notes), so it has a
    single variant per site and the hop between two of them is unambiguous.

    Parameters
    ----------
    bulk_atoms : ase.Atoms
        The periodic bulk crystal.
    supercell : int or tuple of 3 int
        Repeats of ``bulk_atoms`` (each >= 1).
    vacancy_index : int
        Index, in the perfect supercell, of the vacant site.
    neighbour_index : int, optional
        Index, in the perfect supercell, of the atom that hops into the vacancy; it must be a
        first-shell neighbour of the vacant site.  Default: the first-shell neighbour with the
        lowest index.
    calc : ase Calculator, optional
        Relax the end states with it (see above); None (default) returns lattice positions.
    fmax, steps, basin_search, trial_amplitude, n_rattles, seed, verify_minimum, hessian_tol
        Settings of the relaxation, as in :func:`vacancy_formation_energy` (used with
        ``calc`` only).

    Returns
    -------
    initial, final : ase.Atoms
        No calculator attached.  ``initial.info`` / ``final.info`` hold ``hopping_atom`` (its
        index in the defective cells), ``vacancy_site_A`` (the vacant site's position),
        ``hop_distance_A`` and ``supercell``; with ``calc`` also ``relaxed`` (True),
        ``final_state`` (``"inversion through the hop-bond midpoint"`` or ``"independent
        relaxation"``), ``e_initial_eV``, ``e_final_eV`` and ``vacancy_relaxation`` (the record
        of the basin search and Hessian check of the initial state).

    Raises
    ------
    InputError
        A supercell with zeros, bad indices, a ``neighbour_index`` that is not a first-shell
        neighbour, a supercell so small that the site sees one neighbour twice, or bad
        relaxation settings.
    ConvergenceError
        As :func:`vacancy_formation_energy`, for either end state.
    """
    from ase.neighborlist import neighbor_list

    _check_periodic_cell("bulk_atoms", bulk_atoms)
    sc = validate.kmesh("supercell", supercell)
    perfect = bulk_atoms.repeat(sc)
    n = len(perfect)
    if n < 3:
        raise InputError("supercell", sc, "a supercell of at least 3 atoms")
    iv = _atom_index("vacancy_index", vacancy_index, n)
    if calc is not None:
        _check_calc(calc)
        fmax = validate.positive("fmax", fmax)
        steps = validate.positive_int("steps", steps)
        amp, n_rattles, seed, hessian_tol = _check_search_settings(trial_amplitude, n_rattles,
                                                                   seed, hessian_tol)
    d_nn = _nn_distance(perfect)
    i, j, d, D = neighbor_list("ijdD", perfect, d_nn * 1.02)
    shell = (i == iv) & (d < d_nn * 1.02)
    js, Ds = j[shell], D[shell]
    if len(set(js.tolist())) != len(js) or iv in js:
        raise InputError("supercell", sc, "a supercell in which every first-shell neighbour of "
                         "the vacant site is a distinct atom", hint="repeat the cell more times")
    if neighbour_index is None:
        k = int(np.argmin(js))
    else:
        jn = _atom_index("neighbour_index", neighbour_index, n)
        hits = np.flatnonzero(js == jn)
        if len(hits) == 0:
            raise InputError("neighbour_index", neighbour_index,
                             f"a first-shell neighbour of atom {iv} (one of {sorted(js.tolist())})")
        k = int(hits[0])
    hop_atom, hop_vec = int(js[k]), -Ds[k]          # D points from the site to the neighbour
    initial = perfect.copy()
    del initial[iv]
    hop_new = hop_atom - 1 if hop_atom > iv else hop_atom
    final = initial.copy()
    final.positions[hop_new] = initial.positions[hop_new] + hop_vec
    info = {"hopping_atom": hop_new, "vacancy_site_A": perfect.positions[iv].tolist(),
            "hop_distance_A": float(np.linalg.norm(hop_vec)), "supercell": list(sc)}
    if calc is not None:
        settings = dict(fmax=fmax, steps=steps, basin_search=bool(basin_search),
                        trial_amplitude=amp, n_rattles=n_rattles, seed=seed,
                        verify_minimum=bool(verify_minimum), hessian_tol=hessian_tol)
        site_v = perfect.positions[iv].copy()
        ini, record, _ = _relax_vacancy(initial, calc, site_v, d_nn,
                                        what=f"initial state of the hop, {n - 1} atoms",
                                        **settings)
        sites = np.delete(np.arange(n), iv)                 # site of each defect-cell atom
        mid = perfect.positions[hop_atom] + 0.5 * hop_vec
        perm = _hop_inversion(perfect, mid)
        if perm is not None:
            u = _mic(ini.positions - perfect.positions[sites], ini)       # displacements
            ref = ini.positions - u                                       # unwrapped sites
            ref[hop_new] += hop_vec
            atom_of_site = np.full(n, -1)
            atom_of_site[sites] = np.arange(n - 1)
            final_sites = sites.copy()
            final_sites[hop_new] = iv
            src = atom_of_site[perm[final_sites]]
            if np.any(src < 0):                             # cannot happen for a true hop
                raise CalculationError("the hop inversion maps an occupied site onto the "
                                       "vacancy; the end states cannot be built")
            fin = ini.copy()
            fin.positions = ref - u[src]
            how = "inversion through the hop-bond midpoint"
        else:
            site_j = perfect.positions[hop_atom].copy()
            fin, _, _ = _relax_vacancy(final, calc, site_j, d_nn,
                                       what=f"final state of the hop, {n - 1} atoms", **settings)
            how = "independent relaxation"
        fin.calc = calc
        e_i, e_f = float(ini.get_potential_energy()), float(fin.get_potential_energy())
        initial, final = ini.copy(), fin.copy()             # copies carry no calculator
        info.update({"relaxed": True, "final_state": how, "e_initial_eV": e_i,
                     "e_final_eV": e_f, "vacancy_relaxation": record})
    initial.info.update(info)
    final.info.update(info)
    return initial, final


# ------------------------------------------------------------------------------------- NEB

def _check_endpoints(initial, final) -> None:
    for name, a in (("initial", initial), ("final", final)):
        if not hasattr(a, "get_positions") or not hasattr(a, "numbers"):
            raise InputError(name, type(a).__name__, "an ase.Atoms object")
        if len(a) == 0:
            raise InputError(name, "Atoms with 0 atoms", "at least one atom")
    if len(initial) != len(final):
        raise InputError("final", f"{len(final)} atoms",
                         f"the same number of atoms as initial ({len(initial)})")
    if not np.array_equal(initial.numbers, final.numbers):
        k = int(np.flatnonzero(initial.numbers != final.numbers)[0])
        raise InputError("final", f"atom {k} is {final.get_chemical_symbols()[k]}",
                         f"the same species in the same order as initial "
                         f"({initial.get_chemical_symbols()[k]})")
    if not np.array_equal(np.asarray(initial.pbc), np.asarray(final.pbc)):
        raise InputError("final", f"pbc={np.asarray(final.pbc).tolist()}",
                         f"the periodicity of initial ({np.asarray(initial.pbc).tolist()})")
    if not np.allclose(initial.cell.array, final.cell.array, atol=1e-8):
        raise InputError("final", f"cell {final.cell.array.round(6).tolist()}",
                         f"the cell of initial ({initial.cell.array.round(6).tolist()}); "
                         "variable-cell paths are not supported")


def _climbing_tangent_force(neb) -> tuple[int, float]:
    """Index of the highest image and the true force along its (improved) tangent (eV/Å)."""
    from ase.mep.neb import NEBState

    state = NEBState(neb, neb.images, neb.energies)
    i = int(state.imax)
    t = neb.neb_method.get_tangent(state, state.spring(i - 1), state.spring(i), i)
    return i, float(np.vdot(neb.real_forces[i], t))


def _image_energy_forces(calc, atoms):
    """Energy, forces and the process id of one band image with its own calculator (the unit
    of work :func:`migration_barrier` hands to an ``image_map``)."""
    import copy

    atoms = atoms.copy()
    atoms.calc = copy.deepcopy(calc)
    return (float(atoms.get_potential_energy()), np.array(atoms.get_forces()), os.getpid())


def _mapped_neb_class():
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.mep import NEB

    class MappedNEB(NEB):
        """ASE's NEB whose interior images are evaluated together through ``image_map``
        before each force call (the results are attached as single-point calculators)."""

        def __init__(self, images, calc, image_map, **kwargs):
            super().__init__(images, **kwargs)
            self._calc, self._map = calc, image_map
            self.evaluated = {"where": "serial", "processes": set()}

        def get_forces(self):
            interior = self.images[1:-1]
            stale = [i for i, im in enumerate(interior)
                     if not isinstance(im.calc, SinglePointCalculator)
                     or im.calc.check_state(im)]
            if stale:
                bare = []
                for i in stale:
                    a = interior[i].copy()
                    a.calc = None
                    bare.append(a)
                results, where = self._map(functools.partial(_image_energy_forces, self._calc),
                                           bare)
                self.evaluated["where"] = where
                for i, (e, f, pid) in zip(stale, results):
                    im = interior[i]
                    im.calc = SinglePointCalculator(im, energy=e, forces=f)
                    self.evaluated["processes"].add(pid)
            return super().get_forces()

    return MappedNEB


def _MappedNEB(images, calc, image_map, **kwargs):
    return _mapped_neb_class()(images, calc, image_map, **kwargs)


def migration_barrier(initial, final, calc, n_images: int = 7, climb: bool = True,
                      fmax: float = 0.01, method: str = "improvedtangent", steps: int = 1000,
                      optimizer: str = "FIRE", interpolation: str = "linear", k: float = 0.1,
                      relax_endpoints: bool = True, endpoint_fmax: float | None = None,
                      saddle_check_radius: float | None = None, image_map=None):
    """Minimum-energy path and barrier by the (climbing-image) nudged elastic band.

    The end states are relaxed first (BFGS to ``endpoint_fmax``, fixed cell) and their results
    frozen; ``n_images`` interior images are interpolated between them (linearly with the
    minimum-image convention, or by IDPP) and the band is relaxed by ASE's :class:`ase.mep.NEB`
    (``method``, default the improved tangent of Henkelman & Jónsson 2000, with a climbing image
    if ``climb``) and optimiser, until the largest NEB force on any atom is below ``fmax``.
    With ``climb`` the climbing image must also feel a true force along its tangent
    ``|F·τ| <= fmax``; the optimiser is run with a tighter ``fmax`` (within the same ``steps``
    budget) if the band converged first.

    Parameters
    ----------
    initial, final : ase.Atoms
        End states: the same atoms (species and order), the same cell and periodicity.
    calc : ase Calculator
        Provides energies and forces; one instance is shared by all images (serial).
    n_images : int
        Number of interior images (>= 3).  Odd numbers put an image on the midpoint of a
        symmetric path.
    climb : bool
        Climbing image (default): the highest image climbs to the saddle, so ``value`` is the
        saddle energy rather than the highest point of a discrete band.
    fmax : float
        NEB force tolerance (eV/Å).
    method : str
        ASE NEB method: ``"improvedtangent"`` (default), ``"aseneb"``, ``"eb"``, ``"spline"``,
        ``"string"``.
    steps : int
        Largest number of optimiser steps of the band.
    optimizer : str
        ``"FIRE"`` (default, robust for bands) or ``"BFGS"``.
    interpolation : str
        ``"linear"`` (default) or ``"idpp"`` (image-dependent pair potential).
    k : float
        Spring constant (eV/Å²).
    relax_endpoints : bool
        Relax the end states before the band (default).
    endpoint_fmax : float, optional
        Force tolerance of the end-state relaxations; default ``fmax / 10``.
    saddle_check_radius : float, optional
        With ``climb``, also compute the :func:`local_hessian` of the climbing image for the
        atoms within this radius (Å) of the atom that moves most between the end states, and
        record its lowest eigenvalues and the number below -0.01 eV/Å² (one at a first-order
        saddle) in provenance (``saddle_check``).  Off by default (it costs ``6 m`` force
        calls for ``m`` atoms).
    image_map : callable, optional
        ``image_map(fn, images) -> (results, where)`` evaluates the interior images of each band
        iteration (energy and forces, each with its own copy of ``calc``) instead of one after
        the other with the shared ``calc``; :func:`scaleladder.core.pipeline.parallel_map`
        spreads them over the Dask cluster the calling stage runs on.  ``calc`` must then be
        picklable.  The band is the same to round-off (each image's calculator builds its own
        neighbour list); provenance records ``image_evaluation`` (where, and how many
        processes evaluated images).

    For vacancy hops, build the end states with :func:`vacancy_migration_path` and ``calc``:
    they are then relaxed into the lowest basin found and mapped onto each other by the hop.
    End states relaxed only by the plain BFGS of ``relax_endpoints`` can be metastable (the
    symmetric Stillinger-Weber silicon vacancy is, 1.5 eV above the relaxed one): the band then
    falls below them and this function raises :class:`CalculationError`.

    Returns
    -------
    MigrationBarrier
        ``value`` (forward) and ``reverse`` barriers as Estimates in eV, ``path_energies``
        relative to the relaxed initial state, ``reaction_coordinate`` (cumulative
        minimum-image distance along the band, Å), ``saddle_index`` (the highest image);
        provenance holds the settings, the steps taken, the final NEB force, the climbing image's
        tangential force, the absolute end-state energies, how the end states were prepared
        (``endpoint_preparation``, from ``initial.info`` as written by
        :func:`vacancy_migration_path`), if asked, the saddle check, and ``configurations``:
        ``numbers``, ``cell``, ``pbc`` and the ``initial``, ``saddle`` (climbing image) and
        ``final`` positions (Å, lists), enough to rebuild the stationary points, e.g. for
        :func:`~scaleladder.atomistic.phonons.harmonic_tst_prefactor`.

    Raises
    ------
    InputError
        ``n_images`` < 3, non-positive ``fmax``/``k``/``steps``, unknown ``method``,
        ``optimizer`` or ``interpolation``, or end states with different atoms, cells or
        periodicity.
    ConvergenceError
        The band (or an end-state relaxation) did not converge within ``steps``; names the
        number of images and ``fmax``.
    CalculationError
        The highest image lies below an end state, or an interior image lies more than 1 meV
        below both end states (the band fell into a deeper basin: the end states are not the
        relevant minima; this is what lattice end states of Stillinger-Weber silicon do).
    """
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.geometry import find_mic
    from ase.mep import NEB
    from ase.optimize import BFGS, FIRE

    from ..handoffs import MigrationBarrier, Structure
    from ..uq import Estimate

    _check_endpoints(initial, final)
    _check_calc(calc)
    n_images = validate.positive_int("n_images", n_images, 3)
    fmax = validate.positive("fmax", fmax)
    steps = validate.positive_int("steps", steps)
    k = validate.positive("k", k)
    validate.one_of("method", method, _NEB_METHODS)
    validate.one_of("optimizer", optimizer, _OPTIMIZERS)
    validate.one_of("interpolation", interpolation, _INTERPOLATIONS)
    if not isinstance(climb, (bool, np.bool_)):
        raise InputError("climb", climb, "True or False")
    if saddle_check_radius is not None:
        saddle_check_radius = validate.positive("saddle_check_radius", saddle_check_radius)
    efmax = fmax / 10 if endpoint_fmax is None else validate.positive("endpoint_fmax",
                                                                      endpoint_fmax)

    ends, end_steps = [], 0
    for name, a in (("initial", initial), ("final", final)):
        w = _with_calc(a, calc)
        if relax_endpoints:
            end_steps += relax_positions(w, fmax=efmax, steps=steps, what=f"{name} state of the NEB")
        e, f = float(w.get_potential_energy()), np.array(w.get_forces())
        w.calc = SinglePointCalculator(w, energy=e, forces=f)
        ends.append(w)
    # two end states that relaxed into one configuration have no hop between them: a "barrier"
    # of 0 would be a fake result
    d = ends[1].get_positions() - ends[0].get_positions()
    if bool(np.all(ends[0].pbc)):
        from ase.geometry import find_mic

        d, _ = find_mic(d, ends[0].cell, ends[0].pbc)
    if float(np.abs(d).max()) < 0.05:
        raise CalculationError(
            "the initial and final states relaxed into the same configuration (largest "
            f"displacement between them {float(np.abs(d).max()):.3g} Å): there is no hop to compute")
    images = [ends[0]]
    for _ in range(n_images):
        img = ends[0].copy()
        img.calc = calc
        images.append(img)
    images.append(ends[1])

    if image_map is None:
        neb = NEB(images, k=k, climb=bool(climb), method=method, allow_shared_calculator=True)
        evaluated = {"where": "serial", "processes": 1}
    else:
        if not callable(image_map):
            raise InputError("image_map", image_map, "a callable image_map(fn, images) -> "
                             "(results, where), e.g. scaleladder.core.pipeline.parallel_map")
        neb = _MappedNEB(images, calc, image_map, k=k, climb=bool(climb), method=method,
                         allow_shared_calculator=True)
        evaluated = neb.evaluated
    neb.interpolate(method=interpolation, mic=True)
    opt_cls = FIRE if optimizer == "FIRE" else BFGS
    opt = opt_cls(neb, logfile=None)
    label = f"{'CI-' if climb else ''}NEB, {n_images} images, method={method}"
    settings = {"n_images": n_images, "fmax": fmax, "steps": steps, "climb": bool(climb),
                "method": method, "optimizer": optimizer, "k": k}

    target, f_par, i_max, tightenings = fmax, 0.0, 1, 0
    while True:
        converged = bool(opt.run(fmax=target, steps=steps - opt.nsteps))
        # one more evaluation: energies, imax and true forces of the final band
        f_band = _max_force(neb.get_forces())
        if climb:
            i_max, f_par = _climbing_tangent_force(neb)
        else:
            i_max = 1 + int(np.argmax(neb.energies[1:-1]))
        where = f"{len(initial)} atoms, {n_images + 2} images incl. end states"
        if f_band > fmax:
            raise ConvergenceError(
                f"the {label} did not converge to fmax={fmax} eV/Å within {steps} steps "
                f"(largest NEB force {f_band:.3g} eV/Å)", configuration=where, settings=settings,
                suggestion="raise steps, use more images or a smaller spring constant, try "
                           "interpolation='idpp', or check the end states are minima")
        if not climb or abs(f_par) <= fmax:
            break
        if not converged or tightenings >= 4 or opt.nsteps >= steps:
            raise ConvergenceError(
                f"the climbing image {i_max} of the {label} feels a force {f_par:.3g} eV/Å "
                f"along the tangent (> fmax={fmax} eV/Å) after {opt.nsteps} steps",
                configuration=where, settings=settings, suggestion="raise steps or lower fmax")
        target /= 2.0
        tightenings += 1

    energies = np.asarray(neb.energies, dtype=float)
    rel = energies - energies[0]
    pos = [im.get_positions() for im in images]
    seg = [float(np.linalg.norm(find_mic(b - a, images[0].cell, images[0].pbc)[0]))
           for a, b in zip(pos[:-1], pos[1:])]
    s = np.concatenate([[0.0], np.cumsum(seg)])
    forward, reverse = float(rel[i_max]), float(rel[i_max] - rel[-1])
    if forward < 0 or reverse < 0:
        raise CalculationError(
            f"the highest image ({i_max}) of the {label} lies below an end state "
            f"(forward {forward:.6g} eV, reverse {reverse:.6g} eV): there is no barrier, "
            "or the end states are not minima (for a vacancy hop, build them with "
            "vacancy_migration_path(..., calc=calc), which searches for the relaxed basin)")
    dip = float(rel[1:-1].min() - min(rel[0], rel[-1]))
    if dip < -_BAND_DIP_EV:
        k_low = 1 + int(np.argmin(rel[1:-1]))
        raise CalculationError(
            f"image {k_low} of the {label} lies {-dip:.6g} eV below the lower end state: the "
            "band found a deeper basin between the end states, which are therefore not the "
            "relevant minima (a single-hop barrier from them would be meaningless); for a "
            "vacancy hop, build them with vacancy_migration_path(..., calc=calc), which "
            "searches for the relaxed basin")
    saddle = None
    if climb and saddle_check_radius is not None:
        hop = int(np.argmax(np.linalg.norm(d, axis=1)))
        img = images[i_max].copy()
        img.calc = calc
        idx, w, _ = local_hessian(img, img.positions[hop], saddle_check_radius)
        saddle = {"radius_A": saddle_check_radius, "centre_atom": hop, "n_atoms": int(len(idx)),
                  "lowest_eigenvalues_eV_per_A2": [float(x) for x in w[:4]],
                  "n_negative": int(np.count_nonzero(w < -0.01))}
    prep_keys = ("final_state", "relaxed", "e_initial_eV", "e_final_eV", "hopping_atom",
                 "vacancy_relaxation")
    prep = {key: initial.info[key] for key in prep_keys if key in initial.info} or None
    provenance = {
        "method": label, "calculator": type(calc).__name__,
        "n_atoms": len(initial), "n_images": n_images, "climb": bool(climb),
        "neb_method": method, "optimizer": f"ase.optimize.{optimizer}",
        "interpolation": interpolation, "spring_constant_eV_per_A2": k,
        "fmax_eV_per_A": fmax, "final_fmax_target_eV_per_A": target,
        "steps": int(opt.nsteps), "max_neb_force_eV_per_A": f_band,
        "climbing_image_tangent_force_eV_per_A": f_par if climb else None,
        "endpoints_relaxed": bool(relax_endpoints),
        "endpoint_fmax_eV_per_A": efmax if relax_endpoints else None,
        "endpoint_relaxation_steps": end_steps,
        "e_initial_eV": float(energies[0]), "e_final_eV": float(energies[-1]),
        "endpoint_preparation": prep, "saddle_check": saddle,
        "image_evaluation": {"where": evaluated["where"],
                             "processes": int(evaluated["processes"]) if isinstance(
                                 evaluated["processes"], int) else len(evaluated["processes"])},
        # the stationary points themselves, so that a later stage (harmonic-TST prefactor, a
        # dimer refinement) can start from them without redoing the band
        "configurations": {
            "initial": Structure.from_atoms(images[0], role="initial state"),
            "saddle": Structure.from_atoms(images[i_max], role="saddle", image=int(i_max)),
            "final": Structure.from_atoms(images[-1], role="final state"),
            "saddle_image": int(i_max)},
        "reference": "Henkelman & Jonsson, J. Chem. Phys. 113, 9978 (2000); "
                     "Henkelman, Uberuaga & Jonsson, ibid. 9901 (2000)",
    }
    log = DomainLog(calc)
    log.check(images[0], "initial state")
    log.check(images[i_max], f"highest image {i_max}")
    log.check(images[-1], "final state")
    return MigrationBarrier(value=Estimate(forward, unit="eV"), reverse=Estimate(reverse, unit="eV"),
                            path_energies=rel, reaction_coordinate=s, saddle_index=i_max,
                            method=f"{'CI-' if climb else ''}NEB {method}", provenance=provenance,
                            domain_warnings=log.finish("migration_barrier"))
