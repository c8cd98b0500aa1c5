"""Ladder ``fracture-phasefield``: the flagship's silicon plate, cracked by phase-field fracture.

Stages:

1. The flagship's chain up to ``combined`` (DFT → fitted Stillinger–Weber → ``ElasticTensor`` and
   ``SurfaceEnergy`` of (111) with their functional, fit and transferability sources) and its
   LEFM plate (domain J-integral, Griffith σ_c).  The stages and their settings are the
   flagship's, so a store that has run ``silicon-fracture`` serves them from its cache.
2. ``phasefield``: the same centre-cracked plate (crack on (111), front [1-10]; ``a``, ``W``,
   ``H`` as the flagship's), anisotropic plane-strain stiffness from the ``ElasticTensor``,
   ``G_c = 2γ`` from the ``SurfaceEnergy``, AT1 (default) with the anisotropic
   volumetric–deviatoric split; the crack is a band of ``d = 1``; loaded by the edges until it
   propagates unstably.  The critical remote stress is the peak.  Run three times: nominal
   (ℓ, h), a coarser mesh (ℓ, 2h) for the ``phase-field mesh`` source and a doubled internal
   length (2ℓ, 2h) for the ``internal length`` source (a modelling choice: the regularisation
   converges to LEFM as ℓ → 0, and the difference measures how far this ℓ is from that limit).
3. ``notch``: a plate with a circular hole and no crack, where LEFM has nothing to say: the load
   at which a crack nucleates against the phase-field strength relation.
4. ``critical_stress``: σ_c with every source.  The atomistic sources (functional, fit,
   transferability) are carried by scaling the flagship's σ_c Estimate by the nominal phase-field
   / LEFM ratio: exact for ``γ`` and for an overall scale of ``C`` (the AT energies scale so that
   ``σ_c ∝ √(C G_c)`` at fixed geometry and ℓ), an approximation only for changes of the
   stiffness's anisotropy — the LEFM plate's own mesh source is replaced by the phase field's.

Why AT1 by default: it has an elastic phase (no damage below the strength), so the pre-crack
does not soften the whole plate before the peak, and the nucleation at the notch has a sharp
threshold; AT2 is the option.
"""
from __future__ import annotations

import math

import numpy as np

from ..core import validate as V
from ..core.errors import InputError
from ..core.pipeline import stage
from ..uq import one_sigma_samples
from . import silicon_fracture as sf
from .base import LadderSpec, Setting, draw_budget_bars, pyplot

ELL = "internal length"
PF_MESH = "phase-field mesh"

SOURCE_HANDOFFS = {
    sf.XC: sf.SOURCE_HANDOFFS[sf.XC],
    sf.FIT: sf.SOURCE_HANDOFFS[sf.FIT],
    sf.TRANSFER: sf.SOURCE_HANDOFFS[sf.TRANSFER],
    ELL: "continuum model (phase-field regularisation length ℓ: a modelling choice)",
    PF_MESH: "continuum discretisation (phase-field finite-element mesh)",
}


@stage("continuum.phasefield_plate", version="2")
def phasefield_plate(combined: dict, a: float, width_ratio: float, height_ratio: float,
                     model: str, split: str, ell: float, h: float) -> dict:
    """The centre-cracked (111) plate by phase-field fracture (continuum rung)."""
    from ..continuum import crack_frame_111
    from ..continuum.phase_field import centre_cracked_plate

    W = a * width_ratio
    return centre_cracked_plate(combined["elastic"], combined["surface"], half_crack=a,
                                half_width=W, half_height=W * height_ratio, ell=ell, h=h,
                                model=model, split=split, rotation=crack_frame_111())


@stage("continuum.phasefield_notch", version="2")
def phasefield_notch(combined: dict, radius: float, width_ratio: float, model: str, split: str,
                     ell: float, h: float) -> dict:
    """Nucleation at a circular hole in the (111)-frame plate (continuum rung)."""
    from ..continuum import crack_frame_111
    from ..continuum.phase_field import notched_plate

    return notched_plate(combined["elastic"], combined["surface"], radius=radius,
                         half_width=radius * width_ratio, ell=ell, h=h, model=model, split=split,
                         rotation=crack_frame_111())


@stage("ladder.phasefield_critical_stress", version="1")
def critical_stress(lefm: dict, nominal: dict, coarse: dict, wide: dict) -> dict:
    """σ_c (MPa) with the flagship's atomistic sources, the internal length and the mesh."""
    s_lefm = lefm["sigma_c"]
    s_nom = nominal["sigma_peak"] / 1e6
    ratio = s_nom / float(s_lefm.value)
    est = s_lefm.without_source(sf.MESH) * ratio
    d_mesh = abs(s_nom - coarse["sigma_peak"] / 1e6)
    d_ell = abs(s_nom - wide["sigma_peak"] / 1e6)
    est = est.with_source(PF_MESH, one_sigma_samples(s_nom, d_mesh))
    est = est.with_source(ELL, one_sigma_samples(s_nom, d_ell))
    eff = math.sqrt(nominal["Gc_eff"] / nominal["Gc"])
    return {"sigma_c": est, "sigma_lefm": s_lefm, "ratio_to_lefm": ratio,
            "ratio_to_lefm_effective": ratio / eff,
            "runs": {name: {"sigma_MPa": r["sigma_peak"] / 1e6, "ell_m": r["ell"], "h_m": r["h"],
                            "nodes": r["geometry"]["nodes"]}
                     for name, r in (("nominal", nominal), ("coarse mesh", coarse),
                                     ("2 ell", wide))}}


def build(settings: dict) -> dict:
    flag = {k: settings[k] for k in sf.LADDER.defaults}
    chain = sf.build(flag)
    a = settings["continuum.crack_half_length"]
    ell = settings["phasefield.ell_ratio"] * a
    h = ell / settings["phasefield.resolution"]
    common = dict(combined=chain["combined"], a=a, width_ratio=settings["continuum.width_ratio"],
                  height_ratio=settings["continuum.height_ratio"],
                  model=settings["phasefield.model"], split=settings["phasefield.split"])
    nominal = phasefield_plate.bind(ell=ell, h=h, **common).with_label("phase-field plate (ℓ, h)")
    coarse = phasefield_plate.bind(ell=ell, h=2 * h, **common).with_label("phase-field plate (ℓ, 2h)")
    wide = phasefield_plate.bind(ell=2 * ell, h=2 * h, **common).with_label("phase-field plate (2ℓ, 2h)")
    notch = phasefield_notch.bind(combined=chain["combined"],
                                  radius=settings["phasefield.notch_radius_ratio"] * ell,
                                  width_ratio=settings["phasefield.notch_width_ratio"],
                                  model=settings["phasefield.model"],
                                  split=settings["phasefield.split"], ell=ell, h=h
                                  ).with_label("phase-field notch (nucleation)")
    cs = critical_stress.bind(lefm=chain["fracture"], nominal=nominal, coarse=coarse, wide=wide)
    return {"combined": chain["combined"], "fracture": chain["fracture"], "phasefield": nominal,
            "phasefield_coarse": coarse, "phasefield_wide": wide, "notch": notch,
            "critical_stress": cs}


def _check_resolution(name, value):
    v = V.positive(name, value)
    if v < 4:
        raise InputError(name, value, "ℓ/h >= 4 (the mesh source's run uses 2h, which must "
                         "still put two elements across ℓ)")
    return v


def _check_ell_ratio(name, value):
    return V.in_range(name, value, 1e-3, 0.25)


def _check_notch(name, value):
    v = V.positive(name, value)
    if v < 2:
        raise InputError(name, value, "a hole radius of at least 2ℓ (a smaller hole is a defect "
                         "the band cannot resolve)")
    return v


SETTINGS = sf.SETTINGS + (
    Setting("phasefield.model", "AT1", "AT1 (elastic phase, default) or AT2", str,
            lambda n, v: V.one_of(n, v, ("AT1", "AT2"))),
    Setting("phasefield.split", "voldev", "energy split: voldev (anisotropic Reuss-bulk), none; "
            "spectral needs an isotropic stiffness", str,
            lambda n, v: V.one_of(n, v, ("voldev", "none", "spectral"))),
    Setting("phasefield.ell_ratio", 0.05, "internal length ℓ / half crack length a", float,
            _check_ell_ratio),
    Setting("phasefield.resolution", 4.0, "ℓ / h (elements across the internal length; >= 4)",
            float, _check_resolution),
    Setting("phasefield.notch_radius_ratio", 10.0, "hole radius / ℓ of the notched specimen",
            float, _check_notch),
    Setting("phasefield.notch_width_ratio", 6.0, "notched plate half-width / hole radius", float,
            lambda n, v: V.in_range(n, v, 2.5, 50.0)),
)


def check_settings(settings: dict) -> None:
    sf.check_settings({k: settings[k] for k in sf.LADDER.defaults})
    if settings["phasefield.split"] == "spectral":
        raise InputError("phasefield.split", "spectral", "'voldev' or 'none': silicon's (111) "
                         "plane-strain stiffness is anisotropic and the spectral split is "
                         "defined for isotropic solids")


def summarize(settings: dict, results: dict) -> list:
    cs = results["critical_stress"]
    sig = cs["sigma_c"]
    notch = results["notch"]
    rows = [
        ("σ_c phase field", sf._fmt(sig), "MPa", f"{settings['phasefield.model']}, "
         f"ℓ = {results['phasefield']['ell'] * 1e3:.3g} mm, h = ℓ/{settings['phasefield.resolution']:g}"),
        ("σ_c LEFM (flagship)", sf._fmt(cs["sigma_lefm"]), "MPa", "J-integral, G = 2γ"),
        ("phase field / LEFM", f"{cs['ratio_to_lefm']:.3f}", "", "→ 1 as ℓ → 0 and h/ℓ → 0"),
        ("phase field / LEFM with G_c^eff", f"{cs['ratio_to_lefm_effective']:.3f}", "",
         "G_c^eff = G_c(1 + h/(c_w ℓ)), the P1 band's over-dissipation"),
    ]
    for name, r in cs["runs"].items():
        rows.append((f"run: {name}", f"{r['sigma_MPa']:.4g}", "MPa", f"{r['nodes']} nodes"))
    rows += [
        ("notch: nucleation stress", f"{notch['sigma_peak'] / 1e6:.4g}", "MPa",
         f"hole R = {notch['geometry']['R_m'] * 1e3:.3g} mm, no pre-crack"),
        ("notch: strength relation", f"{notch['sigma_strength'] / 1e6:.4g}", "MPa",
         "ψ at the hole edge = homogeneous critical ψ_c"),
        ("notch: ratio", f"{notch['ratio']:.3f}", "", f"elastic K_t = {notch['kt']:.3f}"),
    ]
    sections = [("Phase-field fracture of the (111) plate", rows)]
    budget = sig.budget()
    rows = []
    for src in sorted(budget, key=budget.get, reverse=True):
        rows.append((src, f"{100 * budget[src]:.1f} %", "", SOURCE_HANDOFFS.get(src, "")))
    weakest = max(budget, key=budget.get)
    rows.append(("weakest handoff", weakest, "", SOURCE_HANDOFFS.get(weakest, "")))
    sections.append(("Error budget of σ_c (variance shares)", rows))
    return sections


# --------------------------------------------------------------------------- plots
def _tripcolor(ax, res, d, window=None, title=""):
    import matplotlib.tri as mtri

    p, t = np.asarray(res.nodes), np.asarray(res.triangles)
    tri = mtri.Triangulation(p[0] * 1e3, p[1] * 1e3, t.T)
    pc = ax.tripcolor(tri, d, shading="gouraud", cmap="inferno_r", vmin=0, vmax=1)
    if window is not None:
        ax.set_xlim(-window[0] * 1e3, window[0] * 1e3)
        ax.set_ylim(-window[1] * 1e3, window[1] * 1e3)
    ax.set_aspect("equal")
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    ax.set_title(title, fontsize=9)
    return pc


def plot_damage(results: dict, axes=None):
    """Damage at the peak load: the plate's crack tip region and the notch."""
    plt = pyplot()
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4))
    pf = results["phasefield"]
    res = pf["result"]
    last = max(res.snapshots)
    a = pf["geometry"]["a_m"]
    pc = _tripcolor(axes[0], res, res.snapshots[last], (1.6 * a, 0.5 * a),
                    f"plate at the peak (σ = {pf['sigma_peak'] / 1e6:.3g} MPa)")
    nt = results["notch"]
    r2 = nt["result"]
    R = nt["geometry"]["R_m"]
    _tripcolor(axes[1], r2, r2.snapshots[max(r2.snapshots)], (2.5 * R, 2.5 * R),
               f"hole at the peak (σ = {nt['sigma_peak'] / 1e6:.3g} MPa)")
    plt.colorbar(pc, ax=list(axes), label="damage d", shrink=0.8)


def plot_force_displacement(results: dict, ax=None):
    """Remote stress against grip displacement of the three plate runs and the notch."""
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4))
    for key, label in (("phasefield", "plate (ℓ, h)"), ("phasefield_coarse", "plate (ℓ, 2h)"),
                       ("phasefield_wide", "plate (2ℓ, 2h)")):
        r = results[key]
        W = r["geometry"]["W_m"]
        ax.plot(np.array(r["result"].displacement) * 1e6, np.array(r["result"].force) / (2 * W) / 1e6,
                ".-", label=label)
    s = float(results["critical_stress"]["sigma_lefm"].value)
    ax.axhline(s, color="k", ls="--", lw=1, label="LEFM σ_c (flagship)")
    ax.set_xlabel("grip displacement δ (µm)")
    ax.set_ylabel("remote stress (MPa)")
    ax.legend(fontsize=8)
    ax.set_title("phase-field plate up to unstable propagation", fontsize=9)


def plot_band_profile(results: dict, ax=None):
    """Damage across the initial crack at its centre for the runs, against AT's optimal profile."""
    from ..continuum.damage import optimal_profile

    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4))
    for key in ("phasefield", "phasefield_coarse", "phasefield_wide"):
        r = results[key]
        pr = r["profile"]
        ax.plot(pr["y"] / r["ell"], pr["d"], "o-", ms=3,
                label=f"ℓ = {r['ell'] * 1e3:.3g} mm, h = ℓ/{r['ell'] / r['h']:.3g}")
    y = np.linspace(-6, 6, 400)
    nom = results["phasefield"]
    model, shift = nom["model"], nom["h"] / nom["ell"]
    # the initial crack band is d = 1 on |y| <= h: the optimal profile shifted by h
    ax.plot(y, optimal_profile(model, np.maximum(np.abs(y) - shift, 0), 1.0), "k--",
            lw=1, label=f"{model} optimal profile (shifted by h = ℓ/{1 / shift:.3g})")
    ax.set_xlim(-6, 6)
    ax.set_xlabel("y / ℓ")
    ax.set_ylabel("d")
    ax.legend(fontsize=7)
    ax.set_title("crack band profile against the mesh", fontsize=9)


def plot_budget(results: dict, ax=None):
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 3.5))
    draw_budget_bars(ax, {"σ_c phase field": results["critical_stress"]["sigma_c"]})


PLOTS = (
    ("damage", plot_damage, (11, 4), 2),
    ("force_displacement", plot_force_displacement, (5.5, 4), 1),
    ("band_profile", plot_band_profile, (5.5, 4), 1),
    ("budget", plot_budget, (7.5, 3.5), 1),
)

LADDER = LadderSpec(
    name="fracture-phasefield",
    description="Si (111) plate cracked by phase-field fracture (AT1, anisotropic, G_c = 2γ) from "
                "the flagship's C_ij and γ, beside LEFM; nucleation at a notch",
    settings=SETTINGS, build=build, summarize=summarize, check=check_settings, plots=PLOTS,
    source_handoffs=SOURCE_HANDOFFS, headline=("critical_stress",),
)

__all__ = ["LADDER", "build", "summarize", "phasefield_plate", "phasefield_notch",
           "critical_stress"]
