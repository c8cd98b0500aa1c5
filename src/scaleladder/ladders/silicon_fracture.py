"""The flagship ladder: silicon, from electrons to a cracked plate.

Stages (each cached in the store, each a plain module-level function so that process pools and Dask
workers can run it):

1. electronic: periodic DFT (PySCF, GTH pseudopotentials, k-points) on an E-V series, strained and
   rattled cells and held-out configurations, for the main functional and for a second functional
   with its matching pseudopotential; one stage per configuration so a crash loses only the one in
   progress.  -> ``ReferenceDataset``, ``EquationOfState`` (a0, B0).
2. atomistic: Stillinger-Weber fitted to each dataset with a Laplace ensemble (``FittedPotential``);
   relaxed-ion elastic constants (``ElasticTensor``) and the relaxed (111) shuffle surface energy
   (``SurfaceEnergy``), both propagated over the ensemble.
3. combination: the functional's share (second functional's chain), the potential's transferability
   (held-out errors) and the fit ensemble become named sources of one Estimate per quantity.
4. continuum: anisotropic plane-strain FE plate with a centre crack on (111), front [1-10]; energy
   release rate by the domain J-integral; critical stress where G = 2γ, propagated over every source,
   mesh refinement as the fourth source; the closed form (Griffith with the Sih-Paris-Irwin factor and
   the finite-width correction) beside it.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core import validate as V
from ..core.errors import ConvergenceError, InputError
from ..core.pipeline import stage
from ..core.units import EV_PER_A2_IN_J_PER_M2
from ..uq import Estimate, one_sigma_samples, propagate
from .base import LadderSpec, Setting

if TYPE_CHECKING:  # the handoff types the stages take and give
    from ..handoffs import ElasticTensor, EquationOfState, FittedPotential, ReferenceDataset, Structure, SurfaceEnergy

# --------------------------------------------------------------------------- source names
#: configurations never trained on: homogeneous strains outside the training patterns (elastic
#: transferability) and rattled / strained+rattled cells (distorted bonds, as at a surface)
HELDOUT_ELASTIC = ("strain_heldout",)
HELDOUT_DISTORTED = ("rattle", "heldout")
HELDOUT_LABELS = HELDOUT_ELASTIC + HELDOUT_DISTORTED

XC = "xc functional"
FIT = "fit ensemble"
TRANSFER = "transferability"
MESH = "mesh"

#: which handoff each source of the critical stress's budget belongs to
SOURCE_HANDOFFS = {
    XC: "electronic -> atomistic (ReferenceDataset: DFT functional)",
    FIT: "atomistic fit (FittedPotential: parameter uncertainty)",
    TRANSFER: "atomistic -> continuum (ElasticTensor, SurfaceEnergy: potential transferability)",
    MESH: "continuum discretisation (finite-element mesh)",
}


# --------------------------------------------------------------------------- stages: electronic
@stage("electronic.configuration", version="1")
def dft_configuration(structure: Structure, calc: dict) -> dict:
    """One DFT single point (energy, forces, stress) of one configuration (a ``Structure``
    whose info holds its ``name`` and the ``properties`` to compute)."""
    from ..electronic import compute_configuration

    atoms = structure.to_atoms()
    return compute_configuration(atoms, calc, properties=tuple(structure.info["properties"]))


@stage("electronic.isolated_atom", version="1")
def dft_isolated_atom(symbol: str, calc: dict) -> float:
    """Energy of the free atom (eV) consistent with the periodic calculation, for cohesive energies."""
    from ..electronic import isolated_atom_energy

    return float(isolated_atom_energy(symbol, xc=calc["xc"], basis=calc["basis"],
                                      pseudo=calc["pseudo"]))


@stage("electronic.dataset", version="1")
def dft_dataset(method: dict, labels: list, names: list, atom_energy: float,
                **configs) -> ReferenceDataset:
    """Gather single points into a ``ReferenceDataset`` (energies eV, forces eV/Å, stress eV/Å³)."""
    from ..handoffs import Configuration, ReferenceDataset

    confs = []
    for i, (label, name) in enumerate(zip(labels, names)):
        r = configs[f"c{i:03d}"]
        confs.append(Configuration(numbers=np.asarray(r["numbers"]), positions=np.asarray(r["positions"]),
                                   cell=np.asarray(r["cell"]), pbc=np.asarray(r["pbc"]),
                                   energy=float(r["energy"]),
                                   forces=None if r["forces"] is None else np.asarray(r["forces"]),
                                   stress=None if r["stress"] is None else np.asarray(r["stress"]),
                                   label=label, name=name))
    meth = dict(method)
    meth["atom_energy_eV"] = float(atom_energy)
    return ReferenceDataset(configurations=tuple(confs), method=meth)


@stage("electronic.equation_of_state", version="1")
def dft_equation_of_state(dataset: ReferenceDataset) -> EquationOfState:
    """Birch-Murnaghan fit of the E-V series -> ``EquationOfState`` (a0 in Å, B0 in GPa)."""
    from ..handoffs import EquationOfState

    ev = dataset.select("ev")
    v = np.asarray(ev.volumes_per_atom)
    e = np.array([c.energy / len(c.numbers) for c in ev.configurations])
    return EquationOfState.fit(v, e, structure="diamond", method=dict(dataset.method))


# --------------------------------------------------------------------------- stages: atomistic
@stage("atomistic.fit", version="2")
def fit_stillinger_weber(dataset: ReferenceDataset, n_ensemble: int, seed: int,
                         heldout_labels: tuple = HELDOUT_LABELS) -> Any:
    """Stillinger-Weber fitted to the dataset with a Laplace ensemble -> ``FittedPotential``.

    Configurations whose label is in ``heldout_labels`` are not trained on (their errors are the
    potential's held-out errors); labels absent from the dataset are simply not there.
    """
    from ..atomistic import fit_potential

    return fit_potential(dataset, form="StillingerWeber", heldout_labels=tuple(heldout_labels),
                         n_ensemble=n_ensemble, seed=seed)


@stage("atomistic.transferability", version="1")
def sw_transferability(potential: FittedPotential, dataset: ReferenceDataset,
                       distorted_labels: tuple = HELDOUT_DISTORTED) -> dict:
    """The potential's errors on each held-out group of DFT configurations.

    ``elastic``: homogeneous strains it was not fitted to (relative stress error -> elastic
    constants); ``distorted``: rattled and strained+rattled cells (energy error per atom in
    environments with distorted bonds -> surface energy).
    """
    from ..atomistic import potential_errors

    return {"elastic": potential_errors(potential, dataset, HELDOUT_ELASTIC),
            "distorted": potential_errors(potential, dataset, tuple(distorted_labels))}


def _sw_bulk(params: dict):
    """Relaxed diamond Si for a parameter set: (atoms with calculator, lattice constant Å)."""
    from ase.build import bulk

    from ..atomistic import StillingerWeber
    from ..atomistic.properties import relax_lattice_constant

    calc = StillingerWeber(params)
    # SW lengths scale with σ: the original parameters' 5.431 Å rescaled is the natural first guess
    atoms = bulk("Si", "diamond", a=5.431 * params["sigma"] / 2.0951, cubic=True)
    atoms.calc = calc
    try:
        a0 = relax_lattice_constant(atoms, calc)
    except ConvergenceError as exc:
        raise ConvergenceError(
            "the fitted Stillinger-Weber potential has no zero-pressure diamond lattice near its "
            "training volumes", configuration=f"parameters {params}",
            settings={"bracket": exc.settings},
            suggestion="the fit cannot describe diamond Si: look at its training errors "
                       "(scaleladder show <run>:potential); training on rattled cells "
                       "(atomistic.train_on_rattled) is the usual cause") from exc
    atoms = bulk("Si", "diamond", a=a0, cubic=True)
    atoms.calc = calc
    return atoms, a0


def _params_for(fp: Any, vector: np.ndarray) -> dict:
    p = dict(fp.parameters)
    for name, val in zip(fp.fitted, np.atleast_1d(vector)):
        p[name] = float(val)
    return p


def _over_ensemble(potential: Any, compute, extract, ensemble: bool, unit: str):
    """``extract(compute(atoms))`` over the potential's ensemble (or its nominal parameters only)
    -> ``(Estimate, domain warnings of the nominal run)``.

    The nominal parameter set runs once, with a calculator that remembers the fitted potential
    (``atomistic.domain``), so the property function checks every configuration it evaluates
    against the training domain; ensemble members differ only by the fit's uncertainty and are
    not checked.
    """
    import warnings

    from ..atomistic.domain import attach_fitted_potential
    from ..core.errors import DomainWarning

    pe = potential.parameter_estimate()
    nominal = np.atleast_1d(np.asarray(pe.value, dtype=float))
    found: dict = {}

    def value(vector):
        atoms, _ = _sw_bulk(_params_for(potential, vector))
        if "warnings" not in found and np.array_equal(np.atleast_1d(vector), nominal):
            attach_fitted_potential(atoms.calc, potential)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DomainWarning)  # recorded in the handoff
                handoff = compute(atoms)
            found["warnings"] = tuple(handoff.domain_warnings)
            return extract(handoff)
        return extract(compute(atoms))

    est = propagate(value, pe, unit=unit) if ensemble else Estimate(value(pe.value), unit=unit)
    return est, found.get("warnings", ())


@stage("atomistic.elastic_constants", version="2")
def sw_elastic_constants(potential: FittedPotential, strain_step: float,
                         ensemble: bool) -> ElasticTensor:
    """Relaxed-ion C (GPa) of diamond Si from the fitted potential, over its ensemble if asked.

    The handoff's ``domain_warnings`` list the strained cells that lie outside the potential's
    training domain (checked for the nominal parameters).
    """
    from ..atomistic import elastic_constants
    from ..handoffs import ElasticTensor

    est, outside = _over_ensemble(
        potential,
        lambda atoms: elastic_constants(atoms, atoms.calc, relax_ions=True,
                                        strain_step=strain_step),
        lambda c: np.asarray(c.voigt.value), ensemble, "GPa")
    return ElasticTensor.from_voigt(est, unit="GPa", relaxed_ions=True, structure="diamond Si",
                                    provenance={"potential": potential.form, "strain_step": strain_step},
                                    domain_warnings=outside)


@stage("atomistic.surface_energy", version="2")
def sw_surface_energy(potential: FittedPotential, layers: int, ensemble: bool) -> SurfaceEnergy:
    """Relaxed (111) shuffle-plane surface energy (J/m²) from the fitted potential.

    A potential trained on bulk cells only extrapolates at a surface: ``domain_warnings`` says
    where (the transferability source of the budget is what prices it).
    """
    from ..atomistic import surface_energy
    from ..handoffs import SurfaceEnergy

    est, outside = _over_ensemble(
        potential,
        lambda atoms: surface_energy(atoms, atoms.calc, miller=(1, 1, 1), layers=layers,
                                     relax=True),
        lambda g: float(g.value.value), ensemble, "J/m^2")
    return SurfaceEnergy(miller=(1, 1, 1), value=est, relaxed=True, structure="diamond Si",
                         provenance={"potential": potential.form, "layers": layers},
                         domain_warnings=outside)


@stage("atomistic.lattice_constant", version="1")
def sw_lattice_constant(potential: FittedPotential) -> float:
    """Zero-pressure lattice constant (Å) of the nominal fitted potential."""
    return float(_sw_bulk(dict(potential.parameters))[1])


# --------------------------------------------------------------------------- stage: combination
@stage("ladder.combine_sources", version="1")
def combine_sources(c_main: ElasticTensor, c_alt: ElasticTensor, g_main: SurfaceEnergy,
                    g_alt: SurfaceEnergy, transferability: dict,
                    a0: float) -> dict:
    """Attach the functional and transferability sources to C and γ.

    * functional: the two samples are the main and second functional's chains (nominal values), so
      this source's standard deviation is |Δ|/√2 (the two functionals as two draws of the model);
    * transferability (a one-sigma model-form error, as samples value ± σ/√2): σ_C = r·C with r the
      relative stress RMSE on held-out homogeneous strains; σ_γ = δE/A_s with δE the energy RMSE per
      atom on held-out distorted cells and A_s the (111) area per surface atom (each surface atom
      sits in an environment the potential was not trained on).  This maps bulk held-out errors
      onto a surface property: an assumption, stated in the report, not a DFT surface calculation.
    Samples share their index across C and γ: the errors of one potential are taken as fully
    correlated (the conservative choice for σ_c ∝ sqrt(γ·C)).
    """
    from ..handoffs import ElasticTensor, SurfaceEnergy

    cm, ca = c_main.voigt, c_alt.voigt
    gm, ga = g_main.value, g_alt.value
    r = float(transferability["elastic"]["stress_rel_rmse"])
    de = float(transferability["distorted"]["energy_rmse"])  # eV/atom
    area_per_surface_atom = a0 ** 2 * math.sqrt(3.0) / 4.0  # Å^2, (111) shuffle plane
    dgamma = de / area_per_surface_atom * EV_PER_A2_IN_J_PER_M2

    if not 0.0 <= r < 0.5:
        raise InputError("transferability['elastic']['stress_rel_rmse']", r,
                         "a relative error below 0.5 (the potential does not describe the held-out "
                         "stresses at all: refit or change the functional form)")
    if not 0.0 <= dgamma < 0.5 * gm.value:
        raise InputError("transferability['distorted']['energy_rmse']", de,
                         f"an error that moves γ by less than half its value ({gm.value:.3g} J/m²)")
    c = cm.with_source(XC, np.stack([cm.value, ca.value]))
    c = c.with_source(TRANSFER, one_sigma_samples(cm.value, r * cm.value))
    g = gm.with_source(XC, np.array([gm.value, ga.value]))
    g = g.with_source(TRANSFER, one_sigma_samples(gm.value, dgamma))
    return {
        "elastic": ElasticTensor.from_voigt(c, unit="GPa", relaxed_ions=True, structure="diamond Si",
                                            provenance=dict(c_main.provenance)),
        "surface": SurfaceEnergy(miller=(1, 1, 1), value=g, relaxed=True, structure="diamond Si",
                                 provenance=dict(g_main.provenance)),
        "transferability": {"stress_rel_rmse": r, "energy_rmse_eV_per_atom": de,
                            "dgamma_J_per_m2": dgamma},
    }


# --------------------------------------------------------------------------- stage: continuum
@stage("continuum.critical_stress", version="1")
def fe_critical_stress(combined: dict, a: float, width_ratio: float, height_ratio: float,
                       levels: tuple) -> dict:
    """σ_c of the centre-cracked (111) plate from the FE J-integral with every source propagated
    (the continuum rung's :func:`~scaleladder.continuum.plate_critical_stress` on the combined
    ``ElasticTensor`` and ``SurfaceEnergy`` handoffs; a ``CriticalStress`` under ``handoff``)."""
    from ..continuum import plate_critical_stress

    W = a * width_ratio
    cs = plate_critical_stress(combined["elastic"], combined["surface"], half_crack=a,
                               half_width=W, half_height=W * height_ratio,
                               levels=[int(lv) for lv in levels], mesh_source=MESH)
    return {
        "sigma_c": cs.value, "sigma_c_closed_form": cs.closed_form,
        "G_per_unit_stress_fe": cs.g_per_unit_stress_fe,
        "G_per_unit_stress_closed": cs.g_per_unit_stress_closed,
        "fe_vs_closed_rel": cs.fe_vs_closed_rel, "mesh": cs.mesh, "geometry": cs.geometry,
        "field": cs.field,
    }


# --------------------------------------------------------------------------- the DAG
def _calc_params(settings: dict, which: str) -> dict:
    """PySCFCalculator parameters of one functional (plain lists: they hash canonically)."""
    from ..electronic import fcc_cubic_kpts

    alt = which == "alt"
    return {
        "xc": settings["electronic.xc_alt" if alt else "electronic.xc"],
        "pseudo": settings["electronic.pseudo_alt" if alt else "electronic.pseudo"],
        "basis": settings["electronic.basis"],
        "kpts_scaled": fcc_cubic_kpts(settings["electronic.kmesh"]).tolist(),
        "ke_cutoff": settings["electronic.ke_cutoff"],
        "conv_tol": settings["electronic.conv_tol"],
        "max_cycle": settings["electronic.max_cycle"],
        "symmetry": True,
    }


def _structures(settings: dict, which: str) -> list[tuple[str, str, Any]]:
    """(label, name, structure) for every DFT configuration of one functional, deterministic.

    Both functionals are trained on the same kinds of data: the E-V series and the uniaxial and
    shear strains (energies and stresses).  The main functional also gets the held-out sets:
    biaxial strains (``strain_heldout``), rattled cells and strained+rattled cells, the costly ones
    with forces.
    """
    from ..workflows.silicon import silicon_configurations

    alt = which == "alt"
    atoms_list = silicon_configurations(
        settings["electronic.a0_guess_alt" if alt else "electronic.a0_guess"],
        n_ev=settings["electronic.n_ev"], ev_span=settings["electronic.ev_span"],
        strain_step=settings["electronic.strain_step"],
        n_rattle=0 if alt else settings["electronic.n_rattle"],
        rattle_amplitude=settings["electronic.rattle_amplitude"],
        n_heldout=0 if alt else settings["electronic.n_heldout"], seed=settings["seed"])
    if not alt:
        from ..workflows.silicon import silicon_strain_set

        extra = silicon_strain_set(settings["electronic.a0_guess"],
                                   strain_step=settings["electronic.strain_step"], n_steps=1,
                                   patterns=("biaxial_xy",))
        for atoms in extra:
            atoms.info["label"] = HELDOUT_ELASTIC[0]
            atoms.info["name"] = "heldout_" + atoms.info["name"]
            atoms.info["properties"] = ("energy", "stress")
        atoms_list = list(atoms_list) + list(extra)
    from ..handoffs import Structure

    return [(atoms.info["label"], atoms.info["name"],
             Structure.from_atoms(atoms, name=atoms.info["name"],
                                  properties=list(atoms.info["properties"])))
            for atoms in atoms_list]


def build(settings: dict) -> dict:
    """The stage DAG of the flagship for validated ``settings``."""
    chains = {}
    for which in ("main", "alt"):
        structures = _structures(settings, which)
        calc = _calc_params(settings, which)
        configs = {f"c{i:03d}": dft_configuration.bind(structure=s, calc=calc).with_label(
            f"DFT {calc['xc']} {name}") for i, (_, name, s) in enumerate(structures)}
        atom = dft_isolated_atom.bind(symbol="Si", calc=calc).with_label(f"DFT {calc['xc']} free atom")
        method = {"code": "pyscf", **calc}
        ds = dft_dataset.bind(method=method, labels=[s[0] for s in structures],
                              names=[s[1] for s in structures], atom_energy=atom, **configs)
        eos = dft_equation_of_state.bind(dataset=ds)
        train_rattled = settings["atomistic.train_on_rattled"]
        heldout = tuple(lab for lab in HELDOUT_LABELS if not (train_rattled and lab == "rattle"))
        distorted = tuple(lab for lab in HELDOUT_DISTORTED if lab in heldout)
        fit = fit_stillinger_weber.bind(dataset=ds, n_ensemble=settings["atomistic.n_ensemble"],
                                        seed=settings["seed"], heldout_labels=heldout
                                        ).with_label(f"fit SW to {calc['xc']}")
        ens = which == "main"
        el = sw_elastic_constants.bind(potential=fit, strain_step=settings["atomistic.strain_step"],
                                       ensemble=ens).with_label(f"elastic constants ({calc['xc']})")
        su = sw_surface_energy.bind(potential=fit, layers=settings["atomistic.slab_layers"],
                                    ensemble=ens).with_label(f"(111) surface energy ({calc['xc']})")
        a0 = sw_lattice_constant.bind(potential=fit)
        if which == "main":
            transfer = sw_transferability.bind(potential=fit, dataset=ds, distorted_labels=distorted)
        chains[which] = {"dataset": ds, "eos": eos, "fit": fit, "elastic": el, "surface": su, "a0": a0}
    comb = combine_sources.bind(c_main=chains["main"]["elastic"], c_alt=chains["alt"]["elastic"],
                                g_main=chains["main"]["surface"], g_alt=chains["alt"]["surface"],
                                transferability=transfer, a0=chains["main"]["a0"])
    finest, n_levels = settings["continuum.finest_level"], settings["continuum.n_levels"]
    if n_levels > finest + 1:
        from ..core.errors import InputError

        raise InputError("continuum.n_levels", n_levels,
                         f"at most continuum.finest_level + 1 = {finest + 1} (levels start at 0)")
    levels = tuple(range(finest - n_levels + 1, finest + 1))
    fe = fe_critical_stress.bind(combined=comb, a=settings["continuum.crack_half_length"],
                                 width_ratio=settings["continuum.width_ratio"],
                                 height_ratio=settings["continuum.height_ratio"],
                                 levels=levels).with_label("FE plate: J-integral, critical stress")
    return {
        "dataset": chains["main"]["dataset"], "dataset_alt": chains["alt"]["dataset"],
        "eos": chains["main"]["eos"], "eos_alt": chains["alt"]["eos"],
        "potential": chains["main"]["fit"], "potential_alt": chains["alt"]["fit"],
        "elastic": chains["main"]["elastic"], "surface": chains["main"]["surface"],
        "elastic_alt": chains["alt"]["elastic"], "surface_alt": chains["alt"]["surface"],
        "a0_potential": chains["main"]["a0"], "transferability": transfer, "combined": comb,
        "fracture": fe,
    }


def _kmesh_validator(name, value):
    return V.positive_int(name, value)


def _ratio_gt1(name, value):
    v = V.positive(name, value)
    if v <= 1.0:
        from ..core.errors import InputError
        raise InputError(name, value, "a ratio > 1")
    return v


def _checks():
    from ..electronic import checks

    return checks


SETTINGS = (
    Setting("electronic.xc", "LDA", "main exchange-correlation functional (LDA = Padé/Teter93)", str,
            lambda f, v: _checks().check_xc(f, v)),
    Setting("electronic.pseudo", "gth-pade", "GTH pseudopotential matching electronic.xc", str,
            lambda f, v: _checks().check_pseudo(f, v, ["Si"])),
    Setting("electronic.xc_alt", "PBE", "second functional, for the functional's share of the budget", str,
            lambda f, v: _checks().check_xc(f, v)),
    Setting("electronic.pseudo_alt", "gth-pbe", "GTH pseudopotential matching electronic.xc_alt", str,
            lambda f, v: _checks().check_pseudo(f, v, ["Si"])),
    Setting("electronic.basis", "gth-dzvp", "Gaussian basis (GTH-adapted)", str,
            lambda f, v: _checks().check_basis(f, v, ["Si"])),
    Setting("electronic.kmesh", 2, "k-mesh: shifted n×n×n mesh of the cubic cell folded into the primitive "
            "zone (4n³ points; n=2 ≈ Γ-centred 4×4×4 quality, keeps cubic symmetry)", int, _kmesh_validator),
    Setting("electronic.ke_cutoff", 20.0, "plane-wave cutoff of the density (Hartree)", float, V.positive),
    Setting("electronic.conv_tol", 1e-8, "SCF energy convergence (Hartree)", float, V.positive),
    Setting("electronic.max_cycle", 60, "SCF iterations before a ConvergenceError", int, V.positive_int),
    Setting("electronic.a0_guess", 5.44, "lattice constant the main functional's configurations are built around (Å)",
            float, V.positive),
    Setting("electronic.a0_guess_alt", 5.516, "lattice constant the second functional's configurations are built around (Å)",
            float, V.positive),
    Setting("electronic.n_ev", 7, "points of the E-V series", int, lambda n, v: V.positive_int(n, v, 5)),
    Setting("electronic.ev_span", 0.06, "relative volume span of the E-V series (±)", float,
            lambda n, v: V.in_range(n, v, 1e-3, 0.3)),
    Setting("electronic.strain_step", 0.01, "strain of the strained cells", float,
            lambda n, v: V.in_range(n, v, 1e-4, 0.1)),
    Setting("electronic.n_rattle", 2, "rattled cells (energy, forces, stress)", int, lambda n, v: V.positive_int(n, v, 0)),
    Setting("electronic.rattle_amplitude", 0.08, "rattle amplitude (Å, std of displacements)", float, V.positive),
    Setting("electronic.n_heldout", 1, "held-out cells (3 % strain + 0.12 Å rattle) for transferability", int,
            lambda n, v: V.positive_int(n, v, 1)),
    Setting("atomistic.n_ensemble", 16, "parameter sets in the fit ensemble", int, lambda n, v: V.positive_int(n, v, 2)),
    Setting("atomistic.train_on_rattled", False, "also train on the rattled cells (forces); off by default: "
            "SW then trades C12 for the optical-mode forces (README)", bool),
    Setting("atomistic.strain_step", 0.005, "strain step of the stress-strain elastic constants", float,
            lambda n, v: V.in_range(n, v, 1e-5, 0.05)),
    Setting("atomistic.slab_layers", 12, "(111) double layers in the surface slab", int,
            lambda n, v: V.positive_int(n, v, 4)),
    Setting("continuum.crack_half_length", 1e-3, "half crack length a (m)", float, V.positive),
    Setting("continuum.width_ratio", 5.0, "plate half-width / a", float, _ratio_gt1),
    Setting("continuum.height_ratio", 3.0, "plate half-height / half-width", float, V.positive),
    Setting("continuum.finest_level", 2, "finest mesh refinement level (h = ρ/(4·2^level))", int,
            lambda n, v: int(V.in_range(n, V.positive_int(n, v, 0), 0, 5))),
    Setting("continuum.n_levels", 3, "refinement levels for the mesh source (>= 3 for a rate)", int,
            lambda n, v: V.positive_int(n, v, 2)),
    Setting("seed", 0, "random seed (rattles, ensemble)", int, lambda n, v: V.positive_int(n, v, 0)),
)

LADDER = LadderSpec(
    name="silicon-fracture",
    description="Si: PySCF DFT (LDA; PBE for the functional's share) -> fitted Stillinger-Weber "
                "(C_ij, γ111) -> FE cracked (111) plate σ_c, with its error budget",
    settings=SETTINGS,
    build=build,
)

__all__ = ["LADDER", "SOURCE_HANDOFFS", "build"]


# --------------------------------------------------------------------------- summary
EXPERIMENT = {"a0": 5.431, "C11": 166.0, "C12": 64.0, "C44": 80.0}


def _fmt(est, digits=4) -> str:
    v = float(est.value)
    s = float(est.std) if est.sources else 0.0
    return f"{v:.{digits}g} ± {s:#.2g}" if s else f"{v:.{digits}g}"


def summarize(settings: dict, results: dict) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """Sections of (quantity, value, unit, note) rows for the end-of-run table."""
    eos, eos_alt = results["eos"], results["eos_alt"]
    fp = results["potential"]
    comb = results["combined"]
    fr = results["fracture"]
    C = comb["elastic"]
    xc, xc2 = settings["electronic.xc"], settings["electronic.xc_alt"]
    sections = []
    a0 = eos.a0
    rows = [
        ("a0 " + xc, f"{float(a0.value):.4f}", "Å",
         f"{100 * (float(a0.value) / EXPERIMENT['a0'] - 1):+.2f} % vs exp 5.431"),
        ("a0 " + xc2, f"{float(eos_alt.a0.value):.4f}", "Å",
         f"{100 * (float(eos_alt.a0.value) / EXPERIMENT['a0'] - 1):+.2f} % vs exp 5.431"),
        ("B0 " + xc, f"{float(eos.bulk_modulus.value):.1f}", "GPa", "exp 97.8"),
        ("B0 " + xc2, f"{float(eos_alt.bulk_modulus.value):.1f}", "GPa", "exp 97.8"),
        ("configurations", f"{len(results['dataset'])} + {len(results['dataset_alt'])}", "",
         f"{xc} (E-V, strains, held-out strains, rattled) + {xc2} (E-V, strains)"),
    ]
    n = settings["electronic.kmesh"]
    sections.append(("Electronic: PySCF periodic DFT, " + settings["electronic.basis"]
                     + f", {4 * n ** 3} k-points (cubic {n}×{n}×{n} shifted, folded), "
                     + f"{settings['electronic.ke_cutoff']:g} Ha", rows))
    pe = fp.parameter_estimate()
    rows = []
    for i, name in enumerate(fp.fitted):
        rows.append((name, _fmt(pe[i], 5), fp.units.get(name, "") if hasattr(fp, "units") else "",
                     "fitted (Laplace ensemble of %d)" % len(fp.ensemble)))
    def _err_row(name, err, note):
        parts = [f"E {err['energy_rmse'] * 1000:.1f} meV/atom"]
        if err.get("force_rmse") is not None:
            parts.append(f"F {err['force_rmse']:.3f} eV/Å")
        if err.get("stress_rmse") is not None:
            parts.append(f"σ {err['stress_rmse']:.2f} GPa ({100 * err['stress_rel_rmse']:.1f} %)")
        return (name, ", ".join(parts), "", note)

    rows.append(_err_row("training RMSE", fp.errors["train"], "E-V series, uniaxial and shear strains"))
    tr = results["transferability"]
    rows.append(_err_row("held-out: strains", tr["elastic"], "biaxial strains -> σ_C in the budget"))
    rows.append(_err_row("held-out: distorted", tr["distorted"],
                         "rattled, strained+rattled cells -> σ_γ in the budget"))
    rows.append(("a0 (potential)", f"{results['a0_potential']:.4f}", "Å", ""))
    sections.append((f"Atomistic: Stillinger-Weber fitted to {xc}", rows))
    rows = []
    for name, idx in (("C11", (0, 0)), ("C12", (0, 1)), ("C44", (3, 3))):
        e = C.voigt[idx]
        dev = 100 * (float(e.value) / EXPERIMENT[name] - 1)
        rows.append((name + " (relaxed ions)", _fmt(e), "GPa", f"{dev:+.1f} % vs exp {EXPERIMENT[name]:g}"))
    g = comb["surface"].value
    rows.append(("γ(111) shuffle, relaxed", _fmt(g), "J/m²", "exp (cleavage) ≈ 1.14–1.24"))
    sections.append(("Atomistic properties (all sources)", rows))
    sig, closed = fr["sigma_c"], fr["sigma_c_closed_form"]
    geo = fr["geometry"]
    mesh = fr["mesh"]
    rows = [
        ("σ_c (FE J-integral)", _fmt(sig), "MPa", f"2a = {2e3 * geo['a_m']:g} mm, 2W = {2e3 * geo['W_m']:g} mm"),
        ("σ_c closed form", _fmt(closed), "MPa", "Griffith + Sih-Paris-Irwin + finite width"),
        ("G_FE / G_closed − 1", f"{100 * fr['fe_vs_closed_rel']:+.2f}", "%", "same C, same γ"),
        ("mesh convergence rate", f"{mesh['observed_rate']:.2f}", "", "observed order in h of G"),
    ]
    sections.append(("Continuum: centre-cracked plate, " + geo["crack"], rows))
    rows = []
    budget = sig.budget()
    var = sig.variances
    weakest = max(budget, key=budget.get)
    for src in sorted(budget, key=budget.get, reverse=True):
        rows.append((src, f"{100 * budget[src]:.1f} %", "", f"σ = {var[src] ** 0.5:.3g} MPa; "
                     + SOURCE_HANDOFFS.get(src, "")))
    rows.append(("weakest handoff", weakest, "", SOURCE_HANDOFFS.get(weakest, "")))
    sections.append(("Error budget of σ_c (variance shares)", rows))
    return sections


#: GTH pseudopotential families made for each functional (PySCF names)
_PSEUDO_FOR_XC = {"pbe": "gth-pbe", "lda": "gth-pade", "blyp": "gth-blyp", "bp": "gth-bp",
                  "hcth120": "gth-hcth120", "hcth407": "gth-hcth407", "pbesol": "gth-pbesol"}


def check_settings(settings: dict) -> None:
    """Cross-field checks: each functional with its matching pseudopotential; distinct functionals."""
    for xc_key, pp_key in (("electronic.xc", "electronic.pseudo"),
                           ("electronic.xc_alt", "electronic.pseudo_alt")):
        xc = settings[xc_key].lower().replace(" ", "")
        want = _PSEUDO_FOR_XC.get(xc.split(",")[0] if xc.startswith("lda") else xc)
        if want is not None and settings[pp_key].lower() != want:
            raise InputError(pp_key, settings[pp_key],
                             f"the GTH pseudopotential made for {settings[xc_key]} ({want!r})")
    if settings["electronic.xc"].lower() == settings["electronic.xc_alt"].lower():
        raise InputError("electronic.xc_alt", settings["electronic.xc_alt"],
                         "a functional different from electronic.xc (it measures the functional's share)")


from .silicon_fracture_plots import PLOTS  # noqa: E402  (the report's plots of this ladder)

LADDER = LadderSpec(
    name=LADDER.name, description=LADDER.description, settings=LADDER.settings, build=build,
    plots=PLOTS, source_handoffs=SOURCE_HANDOFFS, headline=("fracture",),
    summarize=summarize, check=check_settings,
)
