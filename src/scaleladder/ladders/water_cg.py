"""Ladder ``water-cg``: atomistic water -> one-bead CG water by three methods -> transferability.

A sequential atomistic -> mesoscale ladder through the coarse-graining handoffs:

1. atomistic: flexible water (SPC/Fw, the project's fixed-charge force field, damped-shifted-force
   electrostatics) in a periodic box at 0.997 g/cm^3, NVT MD at the fit temperature and at the
   test temperatures; every frame mapped to one bead per molecule at its centre of mass, with the
   summed forces (:class:`~scaleladder.handoffs.CGTrajectory`);
2. mesoscale: three CG pair potentials fitted at the fit temperature
   (:class:`~scaleladder.handoffs.CGPotential`): iterative Boltzmann inversion with the pressure
   correction towards the atomistic pressure, force matching, relative entropy;
3. checks: each CG model run at every temperature (its potential is the fit temperature's: the
   handoff flags the use away from it) against the atomistic run there: RDF error, first-shell
   coordination number, pressure, diffusion coefficient (and the CG time-scale factor
   D_CG / D_AA, Langevin dynamics of the CG model being artificial), and the speed-up in simulated
   time per wall second.

The result: the first-shell coordination number predicted by CG at each test temperature, an
:class:`~scaleladder.uq.Estimate` with sources

``cg_method``
    the three methods' predictions (the model-form spread of coarse-graining);
``transferability``
    the cross-validated transfer error: for a prediction at one test temperature, the error of
    the same CG models against atomistics at the *other* test temperature(s) (their RMS over
    methods), as a one-sigma source;
``sampling``
    the block standard error of the CG prediction.

and its check against the atomistic value at that temperature.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..core import validate as V
from ..core.errors import InputError
from ..core.pipeline import stage
from ..uq import Estimate, one_sigma_samples
from .base import LadderSpec, Setting

CG_METHOD = "cg_method"
TRANSFERABILITY = "transferability"
SAMPLING = "sampling"

SOURCE_HANDOFFS = {
    CG_METHOD: "atomistic -> CG handoff: the coarse-graining method (IBI / force matching / "
               "relative entropy)",
    TRANSFERABILITY: "CGPotential used away from its fitted state point (cross-validated on the "
                     "other test temperatures)",
    SAMPLING: "finite CG sampling (block standard error)",
}

METHODS = ("ibi", "fm", "re")
METHOD_NAMES = {"ibi": "IBI (pressure-corrected)", "fm": "force matching",
                "re": "relative entropy"}

#: g/cm^3 of liquid water at 25 C
WATER_DENSITY = 0.997


def _box_length(n: int) -> float:
    from ase import Atoms
    m = float(Atoms("OH2").get_masses().sum()) / 6.02214076e23      # g per molecule
    return (n * m / WATER_DENSITY) ** (1.0 / 3.0) * 1e8


def _temps(field: str, value: tuple) -> tuple:
    if not value or any(not 200 <= t <= 450 for t in value) or len(set(value)) != len(value):
        raise InputError(field, ",".join(str(t) for t in value),
                         "distinct test temperatures in [200, 450] K such as '280,360'")
    return value


def _check_model(field: str, value: str) -> str:
    from ..atomistic.water import WATER_MODELS

    if value not in WATER_MODELS:
        raise InputError(field, value, "one of " + ", ".join(sorted(WATER_MODELS)))
    return value


SETTINGS = (
    Setting("system.n_molecules", 216, "water molecules in the periodic box (0.997 g/cm³)", int,
            lambda f, v: V.positive_int(f, v, 64)),
    Setting("system.seed", 0, "seed of the starting box and of the dynamics", int, V.seed),
    Setting("aa.model", "spc/fw", "flexible water model (spc/fw, tip3p-flex)", str, _check_model),
    Setting("aa.cutoff", 9.0, "cutoff (Å) of the damped-shifted-force electrostatics and LJ", float,
            lambda f, v: V.in_range(f, v, 6.0, 15.0)),
    Setting("aa.timestep_fs", 0.5, "atomistic MD time step (fs; flexible O-H bonds)", float,
            lambda f, v: V.in_range(f, v, 0.1, 1.0)),
    Setting("aa.friction_per_fs", 0.002, "Langevin friction of the atomistic NVT runs (1/fs)",
            float, lambda f, v: V.in_range(f, v, 1e-4, 0.1)),
    Setting("aa.equilibration_ps", 4.0, "atomistic equilibration per temperature (ps)", float,
            lambda f, v: V.in_range(f, v, 0.1, 1000.0)),
    Setting("aa.production_ps", 16.0, "atomistic production per temperature (ps)", float,
            lambda f, v: V.in_range(f, v, 0.2, 10000.0)),
    Setting("aa.frame_every_fs", 40.0, "time between mapped frames (fs)", float,
            lambda f, v: V.in_range(f, v, 1.0, 1000.0)),
    Setting("state.fit_K", 300.0, "temperature the CG potentials are fitted at (K)", float,
            lambda f, v: V.in_range(f, v, 200.0, 450.0)),
    Setting("state.test_K", (280, 360), "test temperatures (K) of the transferability check",
            tuple, _temps),
    Setting("cg.r_max", 9.0, "range of the CG pair potentials (Å)", float,
            lambda f, v: V.in_range(f, v, 4.0, 20.0)),
    Setting("cg.iterations", 12, "iterations of IBI and of relative entropy", int,
            lambda f, v: V.positive_int(f, v, 1)),
    Setting("cg.steps", 3000, "CG MD steps per iteration", int,
            lambda f, v: V.positive_int(f, v, 200)),
    Setting("cg.dt_fs", 4.0, "CG MD time step (fs)", float, lambda f, v: V.in_range(f, v, 0.5, 20.0)),
    Setting("cg.production_steps", 10000, "CG MD steps of each check run", int,
            lambda f, v: V.positive_int(f, v, 500)),
    Setting("cg.density_steps", 10000, "constant-pressure CG MD steps of each density run "
            "(8 copies of the box)", int, lambda f, v: V.positive_int(f, v, 500)),
)


def _check(settings: dict) -> None:
    L = _box_length(settings["system.n_molecules"])
    for key in ("cg.r_max", "aa.cutoff"):
        if settings[key] >= 0.5 * L - 0.1:
            raise InputError(key, settings[key], f"less than half the box length "
                             f"({0.5 * L:.3g} Å for {settings['system.n_molecules']} molecules)",
                             hint="more molecules or a shorter range")
    if settings["state.fit_K"] in [float(t) for t in settings["state.test_K"]]:
        raise InputError("state.test_K", settings["state.test_K"],
                         f"test temperatures other than the fit temperature {settings['state.fit_K']}")
    frames = settings["aa.production_ps"] * 1000.0 / settings["aa.frame_every_fs"]
    if frames < 20:
        raise InputError("aa.frame_every_fs", settings["aa.frame_every_fs"],
                         f"at least 20 mapped frames in the production ({frames:.0f})")
    if settings["aa.frame_every_fs"] < settings["aa.timestep_fs"]:
        raise InputError("aa.frame_every_fs", settings["aa.frame_every_fs"],
                         "at least one time step between frames")


# --------------------------------------------------------------------------- stages
@stage("water_cg.atomistic", version="1")
def atomistic_water(n_molecules: int, seed: int, model: str, cutoff: float, timestep_fs: float,
                    friction_per_fs: float, equilibration_ps: float, production_ps: float,
                    frame_every_fs: float, temperature_K: float) -> dict:
    """NVT MD of the water box at ``temperature_K``, mapped to one bead per molecule."""
    from ..atomistic.md import run_md
    from ..atomistic.water import water_box, water_forcefield
    from ..mesoscale.cg import map_trajectory, one_bead_per_molecule

    atoms = water_box(n_molecules, density_g_cm3=WATER_DENSITY, seed=seed, model=model)
    calc = water_forcefield(atoms, model=model, coulomb="dsf", cutoff=cutoff)
    n_eq = max(1, int(round(equilibration_ps * 1000.0 / timestep_fs)))
    every = max(1, int(round(frame_every_fs / timestep_fs)))
    n_prod = max(every, int(round(production_ps * 1000.0 / timestep_fs)) // every * every)
    t0 = time.perf_counter()
    eq = run_md(atoms, calc, steps=n_eq, ensemble="nvt", temperature_K=temperature_K,
                timestep_fs=timestep_fs, friction=friction_per_fs, seed=seed)
    prod = run_md(eq.atoms, calc, steps=n_prod, ensemble="nvt", temperature_K=temperature_K,
                  timestep_fs=timestep_fs, friction=friction_per_fs, seed=seed + 1,
                  snapshots=range(0, n_prod + 1, every), record_stress=True)
    wall = time.perf_counter() - t0
    frames = list(prod.snapshots)
    traj = map_trajectory(frames, one_bead_per_molecule(len(frames[0]), 3),
                          temperature_K=temperature_K, bead_types=["W"] * n_molecules,
                          frame_interval_fs=every * timestep_fs,
                          info={"source": f"{model} NVT MD, DSF {cutoff} Å", "model": model})
    from ..core.timeseries import block_average
    p_mean, p_err = block_average(np.asarray(prod.pressure_GPa) * 1e4, 10)
    t_mean, _ = block_average(np.asarray(prod.temperature_K), 10)
    return {"trajectory": traj, "pressure_bar": float(p_mean), "pressure_err_bar": float(p_err),
            "temperature_K": float(t_mean), "wall_s": float(wall),
            "simulated_ps": float((n_eq + n_prod) * timestep_fs / 1000.0)}


@stage("water_cg.fit", version="1")
def fit_cg(method: str, reference: dict, r_max: float, iterations: int, steps: int,
           dt_fs: float, seed: int) -> dict:
    """One CG potential fitted to the reference (fit-temperature) mapped trajectory."""
    from ..mesoscale.cg import force_match, iterative_boltzmann_inversion, relative_entropy

    traj = reference["trajectory"]
    t0 = time.perf_counter()
    if method == "ibi":
        res = iterative_boltzmann_inversion(traj, r_max=r_max, bin_width=0.1,
                                            iterations=iterations, steps=steps, dt_fs=dt_fs,
                                            target_pressure_bar=reference["pressure_bar"],
                                            seed=seed)
        out = {"potential": res.potential, "rdf_error": res.rdf_error,
               "pressure_bar": res.pressure_bar}
    elif method == "re":
        res = relative_entropy(traj, r_max=r_max, knot_spacing=0.4, iterations=iterations,
                               steps=steps, dt_fs=dt_fs, seed=seed)
        out = {"potential": res.potential, "rdf_error": res.rdf_error,
               "pressure_bar": res.pressure_bar}
    elif method == "fm":
        out = {"potential": force_match(traj, r_max=r_max, knot_spacing=0.25),
               "rdf_error": [], "pressure_bar": []}
    else:
        raise InputError("method", method, "one of " + ", ".join(METHODS))
    out["wall_s"] = float(time.perf_counter() - t0)
    return out


@stage("water_cg.check", version="1")
def check_cg(fit: dict, reference: dict, fit_reference: dict, steps: int, dt_fs: float,
             seed: int) -> dict:
    """Run the CG model at the reference's temperature and compare with the atomistic run."""
    from ..mesoscale.cg import (coordination_number, diffusion_coefficient, first_minimum, rdf,
                                run_cg_md)

    traj = reference["trajectory"]
    T = traj.temperature_K
    pot = fit["potential"]
    every = max(1, steps // 400)
    run = run_cg_md(pot, traj, steps, temperature_K=T, dt_fs=dt_fs, frame_every=every,
                    observe_every=every, equilibration=max(500, steps // 10), seed=seed)
    r_max = min(pot.cutoff_A, 0.5 * float(traj.box.min()) - 0.05)
    r, g_aa = rdf(traj, r_max=r_max, bin_width=0.05)
    _, g_cg = rdf(run.trajectory, r_max=r_max, bin_width=0.05)
    r_fit, g_fit = rdf(fit_reference["trajectory"], r_max=r_max, bin_width=0.05)
    r_shell = first_minimum(r_fit, g_fit)        # one shell definition for every run
    rho = traj.density_per_A3
    nc_aa = coordination_number(r, g_aa, rho, r_shell)
    nc_cg = coordination_number(r, g_cg, rho, r_shell)
    # block error of the CG coordination number
    nb = 5
    cg_traj = run.trajectory
    edges = np.linspace(0, cg_traj.n_frames, nb + 1).astype(int)
    blocks = []
    for k in range(nb):
        _, gk = rdf(cg_traj.frames(edges[k], edges[k + 1]), r_max=r_max, bin_width=0.05)
        blocks.append(coordination_number(r, gk, rho, r_shell))
    d_aa, _ = diffusion_coefficient(traj)
    d_cg, _ = diffusion_coefficient(cg_traj)
    sim_ps = (steps + max(500, steps // 10)) * dt_fs / 1000.0
    return {"temperature_K": T, "r": r, "g_aa": g_aa, "g_cg": g_cg,
            "rdf_error": float(np.sqrt(np.mean((g_cg - g_aa) ** 2))), "r_shell_A": r_shell,
            "nc_aa": nc_aa, "nc_cg": nc_cg,
            "nc_cg_err": float(np.std(blocks, ddof=1) / math.sqrt(nb)),
            "pressure_aa_bar": reference["pressure_bar"],
            "pressure_cg_bar": float(run.average("pressure_bar")[0]),
            "d_aa_A2_per_fs": d_aa, "d_cg_A2_per_fs": d_cg,
            "speedup": float((sim_ps / run.elapsed_s) /
                             (reference["simulated_ps"] / reference["wall_s"])),
            "flags": list(run.flags)}


@stage("water_cg.density", version="1")
def density_cg(fit: dict, reference: dict, steps: int, dt_fs: float, seed: int) -> dict:
    """The CG model's density (g/cm³) at the atomistic pressure and temperature: constant-pressure
    CG MD (Metropolis ln V moves) of the reference's last frame replicated 2 x 2 x 2.  The
    atomistic density at that pressure is the box's, 0.997 g/cm³, by construction."""
    from ..core.timeseries import block_average
    from ..handoffs import CGTrajectory
    from ..mesoscale.cg import run_cg_md

    traj = reference["trajectory"]
    x = traj.positions[-1]
    shifts = np.array([(i, j, k) for i in range(2) for j in range(2) for k in range(2)], float)
    big = np.concatenate([x + s * traj.box for s in shifts])
    start = CGTrajectory(big[None], 2 * traj.box, np.tile(traj.types, 8), traj.type_names,
                         traj.masses, traj.temperature_K)
    run = run_cg_md(fit["potential"], start, steps, temperature_K=traj.temperature_K,
                    dt_fs=dt_fs, observe_every=20, equilibration=max(1000, steps // 5),
                    pressure_bar=reference["pressure_bar"], seed=seed)
    rho = np.asarray(run.history["density_g_cm3"])
    mean, err = block_average(rho[len(rho) // 5:], 10)
    return {"density_g_cm3": float(mean), "density_err_g_cm3": float(err),
            "pressure_bar": reference["pressure_bar"], "beads": int(big.shape[0])}


@stage("water_cg.predict", version="2")
def predict(checks: list, keys: list, densities: list, test_temps: tuple) -> dict:
    """Per test temperature, two CG predictions as Estimates with the method, the
    cross-validated transferability and the sampling as sources, beside the atomistic values:
    the first-shell coordination number ``nc`` and the density at the atomistic pressure
    ``density`` (g/cm³; atomistic 0.997 by construction).  ``checks[k]`` and ``densities[k]``
    belong to ``keys[k]`` (``"<method>_<T>"``)."""
    checks = dict(zip(keys, checks))
    dens = dict(zip(keys, densities))
    out = {}
    for T in test_temps:
        others = [t for t in test_temps if t != T]
        entry = {}
        for name, table, value, err, truth in (
                ("nc", checks, "nc_cg", "nc_cg_err", lambda key: checks[key]["nc_aa"]),
                ("density", dens, "density_g_cm3", "density_err_g_cm3",
                 lambda key: WATER_DENSITY)):
            nominal = float(table[f"ibi_{T}"][value])
            sources = {CG_METHOD: np.array([float(table[f"{m}_{T}"][value]) for m in METHODS]),
                       SAMPLING: one_sigma_samples(nominal, float(table[f"ibi_{T}"][err]))}
            sigma_transfer = 0.0
            if others:
                errs = [table[f"{m}_{t}"][value] - truth(f"{m}_{t}") for m in METHODS
                        for t in others]
                sigma_transfer = float(np.sqrt(np.mean(np.square(errs))))
                sources[TRANSFERABILITY] = one_sigma_samples(nominal, sigma_transfer)
            unit = "" if name == "nc" else "g/cm^3"
            entry[name] = Estimate(nominal, unit, sources=sources)
            entry[f"{name}_aa"] = float(truth(f"ibi_{T}"))
            entry[f"{name}_sigma_transfer"] = sigma_transfer
        out[str(T)] = entry
    return out


# --------------------------------------------------------------------------- DAG
def build(settings: dict) -> dict:
    aa_common = dict(n_molecules=settings["system.n_molecules"], seed=settings["system.seed"],
                     model=settings["aa.model"], cutoff=settings["aa.cutoff"],
                     timestep_fs=settings["aa.timestep_fs"],
                     friction_per_fs=settings["aa.friction_per_fs"],
                     equilibration_ps=settings["aa.equilibration_ps"],
                     production_ps=settings["aa.production_ps"],
                     frame_every_fs=settings["aa.frame_every_fs"])
    fit_T = float(settings["state.fit_K"])
    temps = [fit_T] + [float(t) for t in settings["state.test_K"]]
    nodes: dict[str, Any] = {}
    for T in temps:
        nodes[f"aa_{T:g}"] = atomistic_water.bind(temperature_K=T, **aa_common).with_label(
            f"atomistic water, {T:g} K")
    ref = nodes[f"aa_{fit_T:g}"]
    for m in METHODS:
        nodes[f"fit_{m}"] = fit_cg.bind(method=m, reference=ref, r_max=settings["cg.r_max"],
                                        iterations=settings["cg.iterations"],
                                        steps=settings["cg.steps"], dt_fs=settings["cg.dt_fs"],
                                        seed=settings["system.seed"]).with_label(
            f"CG fit: {METHOD_NAMES[m]}")
    checks = {}
    for m in METHODS:
        for T in temps:
            key = f"{m}_{T:g}"
            nodes[f"check_{key}"] = checks[key] = check_cg.bind(
                fit=nodes[f"fit_{m}"], reference=nodes[f"aa_{T:g}"], fit_reference=ref,
                steps=settings["cg.production_steps"], dt_fs=settings["cg.dt_fs"],
                seed=settings["system.seed"]).with_label(f"CG check: {METHOD_NAMES[m]}, {T:g} K")
    densities = {}
    for m in METHODS:
        for T in temps:
            key = f"{m}_{T:g}"
            nodes[f"density_{key}"] = densities[key] = density_cg.bind(
                fit=nodes[f"fit_{m}"], reference=nodes[f"aa_{T:g}"],
                steps=settings["cg.density_steps"], dt_fs=settings["cg.dt_fs"],
                seed=settings["system.seed"]).with_label(
                f"CG density at the atomistic pressure: {METHOD_NAMES[m]}, {T:g} K")
    nodes["prediction"] = predict.bind(
        checks=list(checks.values()), keys=list(checks),
        densities=[densities[k] for k in checks], test_temps=tuple(f"{float(t):g}" for t in settings["state.test_K"])
    ).with_label("CG prediction with its budget")
    return nodes


def summarize(settings: dict, results: dict) -> list:
    fit_T = float(settings["state.fit_K"])
    temps = [fit_T] + [float(t) for t in settings["state.test_K"]]
    sections = []
    rows = []
    for T in temps:
        aa = results[f"aa_{T:g}"]
        rows.append((f"atomistic {T:g} K", f"{aa['pressure_bar']:.0f} ± {aa['pressure_err_bar']:.0f}",
                     "bar", f"{settings['aa.model']}, {settings['system.n_molecules']} molecules, "
                     f"{aa['trajectory'].n_frames} frames, T = {aa['temperature_K']:.1f} K, "
                     f"{aa['simulated_ps'] / aa['wall_s'] * 1000:.1f} fs/s"))
    sections.append(("Atomistic reference (pressure)", rows))
    rows = []
    for m in METHODS:
        for T in temps:
            c = results[f"check_{m}_{T:g}"]
            tau = c["d_cg_A2_per_fs"] / c["d_aa_A2_per_fs"] if c["d_aa_A2_per_fs"] > 0 else math.nan
            rows.append((f"{METHOD_NAMES[m]}, {T:g} K",
                         f"n = {c['nc_cg']:.3f} (AA {c['nc_aa']:.3f})", "",
                         f"RDF error {c['rdf_error']:.3f}; P {c['pressure_cg_bar']:.0f} bar (AA "
                         f"{c['pressure_aa_bar']:.0f}); D_CG/D_AA {tau:.2f}; speed-up "
                         f"{c['speedup']:.0f}x" + ("; off its state point" if c["flags"] else "")))
    sections.append(("CG models against atomistics (first-shell coordination number n)", rows))
    rows = []
    for m in METHODS:
        vals = []
        for T in temps:
            d = results[f"density_{m}_{T:g}"]
            vals.append(f"{d['density_g_cm3']:.3f}")
        rows.append((METHOD_NAMES[m], " / ".join(vals), "g/cm³",
                     "at " + " / ".join(f"{T:g} K" for T in temps) + f"; atomistic {WATER_DENSITY} "
                     "(the box's) at the atomistic pressure"))
    sections.append(("CG density at the atomistic pressure (NPT, 8 boxes)", rows))
    rows = []
    for T, p in results["prediction"].items():
        for name, label, fmt in (("nc", "n", "{:.3f}"), ("density", "density", "{:.3f}")):
            est = p[name]
            shares = est.budget()
            weakest = max(shares, key=shares.get) if shares else ""
            rows.append((f"{label} at {T} K (CG)",
                         f"{fmt.format(float(est.value))} ± {fmt.format(float(est.std))}",
                         est.unit, f"atomistic {fmt.format(p[name + '_aa'])}; weakest: {weakest}; "
                         + ", ".join(f"{k} {100 * v:.0f} %" for k, v in
                                     sorted(shares.items(), key=lambda kv: -kv[1]))))
    sections.append(("Prediction and error budget", rows))
    return sections


LADDER = LadderSpec(
    name="water-cg",
    description="atomistic SPC/Fw water -> one-bead CG water (IBI, force matching, relative "
                "entropy) -> transferability in T",
    settings=SETTINGS,
    build=build,
    summarize=summarize,
    check=_check,
    source_handoffs=SOURCE_HANDOFFS,
    headline=("prediction",),
)

__all__ = ["LADDER", "SOURCE_HANDOFFS", "build", "summarize", "atomistic_water", "fit_cg",
           "check_cg", "predict"]
