"""Ladder ``nanoindentation``: a cylinder pressed into a 2D crystal, atom by atom and by the
adaptive quasicontinuum.

Stages:

1. ``reference``: the full atomistic model (every atom a degree of freedom) of a
   ``lattice.nx × lattice.ny`` triangular Morse crystal (the project's ``Morse`` pair potential;
   the lattice at its zero-stress spacing), close-packed surface up, bottom and sides held in
   layers as thick as the cutoff, a
   Kelchner cylinder of radius ``indenter.radius`` pressed in steps of ``indenter.step`` to
   ``indenter.depth`` (depth from the relaxed surface), each step relaxed with FIRE.
2. ``qc``: the same problem by the adaptive force-based quasicontinuum
   (:func:`~scaleladder.coupling.indentation.indent`): graded mesh, the surface layer and the
   contact region nonlocal, the nonlocal region grown by the Cauchy–Born indicator.
3. ``qc_large``: the QC on ``large.nx × large.ny``, a size the reference is not run at.
4. ``load``: the first dislocation nucleation (the first load drop of more than 5 %) of each
   run, and the large sample's load just before it as an Estimate (eV/Å per unit thickness of
   the 2D model) with the source ``QC coupling``: the relative difference between the QC's and
   the reference's nucleation loads at the common size (or, where one of them does not
   nucleate, the QC's largest error on the elastic branch).  Without nucleation in the large
   sample the headline is its load at the deepest step, and the summary says so.  The error is
   measured at the common size and carried over to the large one.

Plots: the large QC mesh with its nonlocal atoms, the displacement field under the indenter,
load–depth of the three runs.
"""
from __future__ import annotations

import numpy as np

from ..core import validate as V
from ..core.errors import InputError
from ..core.pipeline import stage
from ..uq import Estimate, one_sigma_samples
from .base import LadderSpec, Setting, pyplot

QC = "QC coupling"
SOURCE_HANDOFFS = {QC: "concurrent coupling (adaptive quasicontinuum against full atomistics)"}


def _pair(D0, alpha, r0, rc):
    from ..atomistic import Morse

    return Morse(D0=D0, alpha=alpha, r0=r0, rc=rc)


def _run(nx, ny, potential, radius, depth, step, full, tol, fine_radius=50.0):
    import os

    from ..core.pipeline import checkpoint_dir
    from ..coupling.indentation import indent

    depths = np.arange(step, depth + 1e-9, step)
    ck = checkpoint_dir()           # every depth step checkpointed: a killed run resumes
    r = indent(nx, ny, potential["r0"], _pair(**potential), radius=radius, depths=depths,
               full=full, tol=tol, nonlocal_depth=20.0, fine_radius=fine_radius,
               checkpoint=None if ck is None else os.path.join(ck, "indent.npz"))
    drop = r.first_drop()
    return {"depth": r.depth, "load": r.load, "repatoms": r.repatoms,
            "nonlocal": r.nonlocal_atoms, "seconds": r.seconds, "dofs": r.dofs,
            "first_drop": drop, "X": r.X, "y": r.y_sites, "rep": r.final_rep,
            "nonlocal_sites": r.final_nonlocal, "triangles": r.final_triangles,
            "info": r.info, "sites": int(r.X.shape[0])}


@stage("coupling.indent_reference", version="3")
def reference(nx: int, ny: int, potential: dict, radius: float, depth: float, step: float) -> dict:
    """Full atomistic indentation (coupling layer)."""
    return _run(nx, ny, potential, radius, depth, step, True, 0.02)


@stage("coupling.indent_qc", version="3")
def quasicontinuum(nx: int, ny: int, potential: dict, radius: float, depth: float, step: float,
                   tol: float, fine_radius: float) -> dict:
    """Adaptive force-based QC indentation (coupling layer)."""
    return _run(nx, ny, potential, radius, depth, step, False, tol, fine_radius)


def _free_sites(run: dict) -> int:
    """Sites that are not held (each 2 DOFs in a full atomistic model)."""
    return int(run["sites"] - run["info"]["held_sites"])


@stage("ladder.indent_load", version="3")
def load(reference: dict, qc: dict, qc_large: dict) -> dict:
    """The large sample's nucleation load (or, without nucleation, its deepest load) with the QC
    coupling error measured at the common size; nucleation of each run."""
    ref, q = np.asarray(reference["load"]), np.asarray(qc["load"])
    rel = q / ref - 1.0
    nuc = {k: (None if r["first_drop"] is None else
               {"depth": r["depth"][r["first_drop"]],
                "load_before": r["load"][r["first_drop"] - 1]})
           for k, r in (("reference", reference), ("qc", qc), ("qc_large", qc_large))}
    # the QC's error on the elastic branch (before the reference's first nucleation) ...
    n_el = len(ref) if reference["first_drop"] is None else reference["first_drop"]
    err_elastic = float(np.abs(rel[:n_el]).max())
    # ... and on the nucleation load itself, where both nucleate
    err_nuc = (abs(nuc["qc"]["load_before"] / nuc["reference"]["load_before"] - 1.0)
               if nuc["qc"] and nuc["reference"] else None)
    if nuc["qc_large"] is not None:
        quantity = "load at the first dislocation nucleation, large sample"
        L = float(nuc["qc_large"]["load_before"])
        err = err_nuc if err_nuc is not None else err_elastic
    else:
        quantity = "load at the deepest step, large sample (no nucleation within the depth range)"
        L = float(qc_large["load"][-1])
        err = err_elastic
    est = Estimate(L, "eV/Å", sources={QC: one_sigma_samples(L, max(err, 1e-12) * L)})
    return {"load": est, "quantity": quantity, "relative_error": rel.tolist(),
            "elastic_error": err_elastic, "nucleation_error": err_nuc,
            "dof_ratio": reference["dofs"] / qc["dofs"],
            "time_ratio": float(np.sum(reference["seconds"]) / np.sum(qc["seconds"])),
            "large_dof_ratio": 2 * _free_sites(qc_large) / qc_large["dofs"],
            "nucleation": nuc}


def build(settings: dict) -> dict:
    pot = {"D0": settings["potential.D0"], "alpha": settings["potential.alpha"],
           "r0": settings["potential.r0"], "rc": settings["potential.rc"]}
    common = dict(potential=pot, radius=settings["indenter.radius"],
                  depth=settings["indenter.depth"], step=settings["indenter.step"])
    ref = reference.bind(nx=settings["lattice.nx"], ny=settings["lattice.ny"], **common
                         ).with_label("full atomistic indentation")
    qc = quasicontinuum.bind(nx=settings["lattice.nx"], ny=settings["lattice.ny"],
                             tol=settings["qc.tol"], fine_radius=settings["qc.fine_radius"],
                             **common).with_label("QC indentation")
    big = quasicontinuum.bind(nx=settings["large.nx"], ny=settings["large.ny"],
                              tol=settings["qc.tol"], fine_radius=settings["qc.fine_radius"],
                              **common).with_label("QC, large sample")
    return {"reference": ref, "qc": qc, "qc_large": big,
            "load": load.bind(reference=ref, qc=qc, qc_large=big)}


def _size(name, value):
    v = V.positive_int(name, value, minimum=16)
    return v


def check_settings(settings: dict) -> None:
    if settings["large.nx"] < settings["lattice.nx"] or settings["large.ny"] < settings["lattice.ny"]:
        raise InputError("large.nx", (settings["large.nx"], settings["large.ny"]),
                         f"a large sample at least the reference's size ({settings['lattice.nx']} x "
                         f"{settings['lattice.ny']})")
    if settings["indenter.step"] > settings["indenter.depth"]:
        raise InputError("indenter.step", settings["indenter.step"],
                         f"a step no larger than indenter.depth = {settings['indenter.depth']:g} Å")
    if settings["potential.rc"] <= settings["potential.r0"]:
        raise InputError("potential.rc", settings["potential.rc"],
                         f"a cutoff beyond r0 = {settings['potential.r0']:g} Å")
    R = settings["indenter.radius"]
    width = settings["lattice.nx"] * settings["potential.r0"]
    if 2 * R > 0.5 * width:
        raise InputError("indenter.radius", R, f"a cylinder narrower than a quarter of the sample "
                         f"(≤ {0.25 * width:.3g} Å for lattice.nx = {settings['lattice.nx']})")


SETTINGS = (
    Setting("potential.D0", 0.4, "Morse well depth (eV)", float, V.positive),
    Setting("potential.alpha", 1.3, "Morse inverse width (1/Å)", float, V.positive),
    Setting("potential.r0", 2.6, "Morse equilibrium distance (Å)", float, V.positive),
    Setting("potential.rc", 6.0, "cutoff (Å): three neighbour shells", float, V.positive),
    Setting("lattice.nx", 50, "reference sample: atoms per row", int, _size),
    Setting("lattice.ny", 30, "reference sample: rows", int, _size),
    Setting("large.nx", 120, "large QC sample: atoms per row", int, _size),
    Setting("large.ny", 72, "large QC sample: rows", int, _size),
    Setting("indenter.radius", 15.0, "cylinder radius (Å)", float, V.positive),
    Setting("indenter.depth", 7.0, "deepest indentation (Å): past the first nucleation (4.5 Å on "
            "the 50 × 30 reference, 5.5 Å on 100 × 60)", float, V.positive),
    Setting("indenter.step", 0.5, "depth step (Å)", float, V.positive),
    Setting("qc.tol", 0.02, "Cauchy–Born indicator threshold (spread of FᵀF)", float, V.positive),
    Setting("qc.fine_radius", 50.0, "radius (Å) of the fully resolved mesh around the contact "
            "(the benchmark's load error: −3 % at 25 Å, ≤ 0.4 % at 50 Å)", float, V.positive),
)


def summarize(settings: dict, results: dict) -> list:
    ld = results["load"]
    ref, qc, big = results["reference"], results["qc"], results["qc_large"]
    L = ld["load"]
    rows = [
        (ld["quantity"], f"{float(L.value):.4f} ± {float(L.std):.4f}",
         "eV/Å", f"{big['sites']} sites, {big['dofs']} DOFs at the deepest step"),
        ("QC error against full atomistics", ", ".join(f"{100 * e:+.2f}%" for e in ld["relative_error"]),
         "", "per depth step, common size"),
        ("DOFs: full / QC (common size)", f"{ref['dofs']} / {qc['dofs']}", "",
         f"{ld['dof_ratio']:.2f}x fewer"),
        ("DOFs: large sample, all atoms / QC", f"{2 * _free_sites(big)} / {big['dofs']}", "",
         f"{ld['large_dof_ratio']:.2f}x fewer"),
        ("wall time: full / QC (common size)", f"{np.sum(ref['seconds']):.1f} / {np.sum(qc['seconds']):.1f}",
         "s", f"{ld['time_ratio']:.2f}x"),
    ]
    for k, v in ld["nucleation"].items():
        rows.append((f"first dislocation nucleation ({k})",
                     "none within the depth range" if v is None else f"{v['depth']:g} Å",
                     "", "" if v is None else f"load before the drop {v['load_before']:.4f} eV/Å"))
    sections = [("Nanoindentation of a 2D Morse crystal", rows)]
    sections.append(("Error budget of the load (variance shares)",
                     [(QC, "100.0 %", "", SOURCE_HANDOFFS[QC]),
                      ("weakest handoff", QC, "", SOURCE_HANDOFFS[QC])]))
    return sections


def plot_mesh(results: dict, ax=None):
    """The large sample's final QC mesh and its nonlocal atoms."""
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    r = results["qc_large"]
    X, rep = np.asarray(r["X"]), np.asarray(r["rep"])
    Xr = X[rep]
    ax.triplot(Xr[:, 0], Xr[:, 1], np.asarray(r["triangles"]), lw=0.3, color="0.4")
    nl = X[np.asarray(r["nonlocal_sites"], dtype=int)]
    ax.plot(nl[:, 0], nl[:, 1], ".", ms=1.5, color="C3", label="nonlocal atoms")
    ax.set_aspect("equal")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"adaptive QC mesh: {len(rep)} repatoms of {len(X)} sites", fontsize=9)


def plot_displacement(results: dict, ax=None):
    """Displacement magnitude of every site of the reference run at the deepest step."""
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    r = results["reference"]
    X, y = np.asarray(r["X"]), np.asarray(r["y"])
    u = np.linalg.norm(y - X, axis=1)
    sc = ax.scatter(X[:, 0], X[:, 1], c=u, s=4, cmap="viridis")
    plt.colorbar(sc, ax=ax, label="|u| (Å)")
    ax.set_aspect("equal")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.set_title(f"displacement, full atomistics, depth {r['depth'][-1]:g} Å", fontsize=9)


def plot_load_depth(results: dict, ax=None):
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4))
    for key, label, style in (("reference", "full atomistics", "ko-"), ("qc", "adaptive QC", "C0s--"),
                              ("qc_large", "adaptive QC, large sample", "C1^-")):
        r = results[key]
        ax.plot(r["depth"], r["load"], style, ms=4, label=label)
    ax.set_xlabel("depth (Å)")
    ax.set_ylabel("load (eV/Å per unit thickness)")
    ax.legend(fontsize=8)
    ax.set_title("load–depth", fontsize=9)


PLOTS = (
    ("mesh", plot_mesh, (9, 5), 1),
    ("displacement", plot_displacement, (7, 4), 1),
    ("load_depth", plot_load_depth, (5.5, 4), 1),
)

LADDER = LadderSpec(
    name="nanoindentation",
    description="2D Morse crystal under a cylindrical indenter: full atomistics beside the "
                "adaptive quasicontinuum (QC error as a budget source)",
    settings=SETTINGS, build=build, summarize=summarize, check=check_settings, plots=PLOTS,
    source_handoffs=SOURCE_HANDOFFS, headline=("load",),
)

__all__ = ["LADDER", "build", "summarize", "reference", "quasicontinuum", "load"]
