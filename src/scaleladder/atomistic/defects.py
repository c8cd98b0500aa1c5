"""Point defects from any ASE calculator: vacancy formation energies and migration barriers.

* :func:`vacancy_formation_energy` -> :class:`~scaleladder.handoffs.VacancyFormationEnergy` (eV):
  ``E_f = E(N-1) - (N-1)/N E(N)`` in a periodic supercell, relaxed at fixed cell by default;
* :func:`vacancy_migration_path` -> initial and final states of a nearest-neighbour vacancy hop;
* :func:`migration_barrier` -> :class:`~scaleladder.handoffs.MigrationBarrier` (eV): climbing-image
  nudged elastic band with the improved tangent (Henkelman & Jónsson, J. Chem. Phys. 113, 9978
  (2000); Henkelman, Uberuaga & Jónsson, ibid. 9901), run by ASE's :class:`ase.mep.NEB`.

Energies in eV, distances in Å (ASE's units), throughout.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core import validate
from ..core.errors import CalculationError, ConvergenceError, InputError
from .properties import _check_calc, _check_periodic_cell, _nn_distance, _with_calc, relax_positions

__all__ = ["vacancy_formation_energy", "vacancy_migration_path", "migration_barrier"]

_NEB_METHODS = ("improvedtangent", "aseneb", "eb", "spline", "string")
_OPTIMIZERS = ("FIRE", "BFGS")
_INTERPOLATIONS = ("linear", "idpp")


def _max_force(forces: np.ndarray) -> float:
    f = np.asarray(forces, dtype=float).reshape(-1, 3)
    return float(np.sqrt((f ** 2).sum(axis=1)).max()) if len(f) else 0.0


def _atom_index(field: str, value: Any, n: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not -n <= value < n:
        raise InputError(field, value, f"an atom index in [0, {n - 1}]")
    return int(value) % n


# ------------------------------------------------------------------------- formation energy

def vacancy_formation_energy(bulk_atoms, calc, supercell=(3, 3, 3), relax: bool = True,
                             fmax: float = 1e-3, vacancy_index: int = 0, steps: int = 2000,
                             structure: str | None = None):
    """Vacancy formation energy ``E_f = E(N-1) - (N-1)/N · E(N)`` (eV).

    ``bulk_atoms`` is repeated ``supercell`` times (N atoms, energy ``E(N)``); atom
    ``vacancy_index`` is removed and, with ``relax``, the remaining ``N - 1`` atoms are relaxed at
    fixed cell (BFGS to ``fmax``; the perfect supercell is relaxed too, a no-op for a crystal at
    its equilibrium positions).  The cell is that of the perfect crystal (constant-volume
    formation energy); pass a relaxed ``bulk_atoms`` (e.g. via ``relax_lattice_constant``).

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

    Returns
    -------
    VacancyFormationEnergy
        ``value`` an Estimate in eV (no uncertainty sources), ``relaxed`` as requested,
        ``supercell_atoms = N``; provenance holds the unrelaxed and (if computed) relaxed values,
        the relaxation energy, the supercell and the energies.

    Raises
    ------
    InputError
        A supercell with zeros or non-integers, non-positive ``fmax``, a bad ``vacancy_index``,
        a supercell of fewer than 2 atoms, or a bulk that is not a periodic crystal.
    ConvergenceError
        A relaxation that did not reach ``fmax`` within ``steps``.
    """
    from ..handoffs import VacancyFormationEnergy
    from ..uq import Estimate

    _check_periodic_cell("bulk_atoms", bulk_atoms)
    _check_calc(calc)
    sc = validate.kmesh("supercell", supercell)
    fmax = validate.positive("fmax", fmax)
    steps = validate.positive_int("steps", steps)
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
    if relax:
        steps_defect = relax_positions(defect, fmax=fmax, steps=steps,
                                       what=f"vacancy in {sc} supercell, {n - 1} atoms")
        e_rel = float(defect.get_potential_energy())
        ef = e_rel - (n - 1) / n * e_n
    if not np.isfinite(ef):
        raise CalculationError(f"non-finite vacancy formation energy: E(N)={e_n!r}, "
                               f"E(N-1)={e_rel if relax else e_unrel!r}")
    max_disp = 0.0
    if relax:
        ref = np.delete(perfect.positions, iv, axis=0)
        max_disp = float(np.linalg.norm(defect.positions - ref, axis=1).max())
    provenance = {
        "method": "supercell, E(N-1) - (N-1)/N E(N), fixed cell",
        "calculator": type(calc).__name__,
        "supercell": list(sc), "n_atoms_perfect": n, "vacancy_index": iv,
        "cell_A": perfect.cell.array.tolist(),
        "e_perfect_eV": e_n, "e_defect_unrelaxed_eV": e_unrel, "e_defect_relaxed_eV": e_rel,
        "unrelaxed_eV": ef_unrel, "relaxed_eV": ef if relax else None,
        "relaxation_energy_eV": (ef_unrel - ef) if relax else None,
        "max_displacement_A": max_disp if relax else None,
        "fmax_eV_per_A": fmax if relax else None,
        "optimizer": "ase.optimize.BFGS" if relax else None,
        "relaxation_steps": steps_perfect + steps_defect,
    }
    return VacancyFormationEnergy(value=Estimate(float(ef), unit="eV"), relaxed=bool(relax),
                                  structure=structure or bulk_atoms.get_chemical_formula(),
                                  supercell_atoms=n, provenance=provenance)


# ---------------------------------------------------------------------------- hop end states

def vacancy_migration_path(bulk_atoms, supercell=(3, 3, 3), vacancy_index: int = 0,
                           neighbour_index: int | None = None):
    """Initial and final states of a nearest-neighbour vacancy hop.

    Atom ``vacancy_index`` of the perfect supercell is removed (the vacancy); in the final
    state the atom ``neighbour_index`` (a first-shell neighbour of the vacant site) sits on the
    vacant site.  Both states hold the same ``N - 1`` atoms in the same order; the hopping
    atom's final position is its initial one plus the minimum-image hop vector (not wrapped),
    so a linear interpolation follows the straight hop.

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

    Returns
    -------
    initial, final : ase.Atoms
        No calculator attached.  ``initial.info`` / ``final.info`` hold ``hopping_atom`` (its
        index in the defective cells), ``vacancy_site_A`` (the vacant site's position),
        ``hop_distance_A`` and ``supercell``.

    Raises
    ------
    InputError
        A supercell with zeros, bad indices, a ``neighbour_index`` that is not a first-shell
        neighbour, or a supercell so small that the site sees one neighbour twice.
    """
    from ase.neighborlist import neighbor_list

    _check_periodic_cell("bulk_atoms", bulk_atoms)
    sc = validate.kmesh("supercell", supercell)
    perfect = bulk_atoms.repeat(sc)
    n = len(perfect)
    if n < 3:
        raise InputError("supercell", sc, "a supercell of at least 3 atoms")
    iv = _atom_index("vacancy_index", vacancy_index, n)
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


def migration_barrier(initial, final, calc, n_images: int = 7, climb: bool = True,
                      fmax: float = 0.01, method: str = "improvedtangent", steps: int = 1000,
                      optimizer: str = "FIRE", interpolation: str = "linear", k: float = 0.1,
                      relax_endpoints: bool = True, endpoint_fmax: float | None = None):
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

    Returns
    -------
    MigrationBarrier
        ``value`` (forward) and ``reverse`` barriers as Estimates in eV, ``path_energies``
        relative to the relaxed initial state, ``reaction_coordinate`` (cumulative
        minimum-image distance along the band, Å), ``saddle_index`` (the highest image);
        provenance holds the settings, the steps taken, the final NEB force, the climbing image's
        tangential force and the absolute end-state energies.

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
        The highest image lies below an end state (no barrier: the end states are not minima).
    """
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.geometry import find_mic
    from ase.mep import NEB
    from ase.optimize import BFGS, FIRE

    from ..handoffs import MigrationBarrier
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

    neb = NEB(images, k=k, climb=bool(climb), method=method, allow_shared_calculator=True)
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
            "or the end states are not minima")
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
        "reference": "Henkelman & Jonsson, J. Chem. Phys. 113, 9978 (2000); "
                     "Henkelman, Uberuaga & Jonsson, ibid. 9901 (2000)",
    }
    return MigrationBarrier(value=Estimate(forward, unit="eV"), reverse=Estimate(reverse, unit="eV"),
                            path_energies=rel, reaction_coordinate=s, saddle_index=i_max,
                            method=f"{'CI-' if climb else ''}NEB {method}", provenance=provenance)
