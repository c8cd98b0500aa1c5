"""Reports a person would rather look at than read: plots (PNG) and one self-contained HTML page.

``build_report(run_info, results, html=..., png_dir=...)`` draws, for a silicon-fracture run:

* the DFT E-V series of both functionals with their Birch-Murnaghan fits;
* the fit parity of the Stillinger-Weber potential against DFT (energies, forces, stresses), training
  and held-out configurations separately;
* the σ_yy field of the finite-element plate around the crack;
* the mesh convergence of the energy release rate;
* the error budget bars of σ_c and of the quantities handed to the continuum.

Only the public API is used; matplotlib runs with the Agg backend.
"""
from __future__ import annotations

import base64
import html as _html
import io
from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_equation_of_state(results: dict, ax=None):
    """E(V) per atom of each functional's E-V series with its Birch-Murnaghan fit."""
    from ase.eos import EquationOfState as AseEOS

    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    for key, marker in (("dataset", "o"), ("dataset_alt", "s")):
        ds = results[key]
        ev = ds.select("ev")
        v = np.asarray(ev.volumes_per_atom)
        e = np.array([c.energy / len(c.numbers) for c in ev.configurations])
        e_ref = e.min()
        eos = AseEOS(v, e, eos="birchmurnaghan")
        eos.fit()
        vv = np.linspace(v.min(), v.max(), 200)
        label = ds.method.get("xc", key)
        line = ax.plot(v, 1e3 * (e - e_ref), marker, label=f"{label} DFT")[0]
        ax.plot(vv, 1e3 * (eos.func(vv, *eos.eos_parameters) - e_ref), "-", color=line.get_color(),
                label=f"{label} Birch-Murnaghan")
    ax.set_xlabel("volume per atom (Å³)")
    ax.set_ylabel("E − E_min (meV/atom)")
    ax.set_title("DFT equation of state, diamond Si")
    ax.legend(fontsize=8)
    return ax


def plot_fit_parity(results: dict, axes=None):
    """Stillinger-Weber vs DFT: cohesive energy per atom, force and stress components."""
    from ..atomistic import StillingerWeber
    from ..core.units import EV_PER_A3_IN_GPA

    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(13, 4))
    ds, fp = results["dataset"], results["potential"]
    calc = StillingerWeber.from_fitted(fp)
    e_atom = ds.method.get("atom_energy_eV", 0.0)
    data = {"train": ([], [], [], [], [], []), "heldout": ([], [], [], [], [], [])}
    from ..ladders.silicon_fracture import HELDOUT_LABELS

    for i, conf in enumerate(ds.configurations):
        split = "heldout" if conf.label in HELDOUT_LABELS else "train"
        atoms = ds.to_atoms(i)
        atoms.calc = calc
        n = len(atoms)
        d = data[split]
        d[0].append(conf.energy / n - e_atom)
        d[1].append(atoms.get_potential_energy() / n)
        if conf.forces is not None:
            d[2].extend(np.ravel(conf.forces))
            d[3].extend(np.ravel(atoms.get_forces()))
        if conf.stress is not None:
            d[4].extend(np.ravel(conf.stress) * EV_PER_A3_IN_GPA)
            d[5].extend(np.ravel(atoms.get_stress()) * EV_PER_A3_IN_GPA)
    titles = ("cohesive energy (eV/atom)", "force components (eV/Å)", "stress components (GPa)")
    for k, ax in enumerate(axes):
        for split, style, color in (("train", "o", "C0"), ("heldout", "x", "C1")):
            x, y = data[split][2 * k], data[split][2 * k + 1]
            if len(x):
                ax.plot(x, y, style, color=color, ms=4, alpha=0.7, label=split)
        lims = ax.get_xlim()
        ax.plot(lims, lims, "k-", lw=0.8)
        ax.set_xlabel("DFT")
        ax.set_ylabel("Stillinger-Weber")
        ax.set_title(titles[k], fontsize=10)
        ax.legend(fontsize=8)
    return axes


def plot_stress_field(results: dict, ax=None):
    """σ_yy of the FE plate at unit remote stress, near the crack (log colour scale)."""
    from matplotlib.colors import LogNorm

    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    fr = results["fracture"]
    f = fr["field"]
    a = fr["geometry"]["a_m"]
    xy = np.asarray(f["nodes"]) / a
    syy = np.asarray(f["syy"])
    tri = np.asarray(f["triangles"])
    val = np.clip(np.abs(syy), 1e-2, None)
    tpc = ax.tripcolor(xy[:, 0], xy[:, 1], tri, val, shading="gouraud", norm=LogNorm(vmin=0.3, vmax=30))
    plt.colorbar(tpc, ax=ax, label="|σ_yy| / σ_remote")
    ax.plot([-1, 1], [0, 0], "w-", lw=2)
    ax.set_xlim(-2.0, 2.0)
    ax.set_ylim(-1.0, 1.0)
    ax.set_aspect("equal")
    ax.set_xlabel("x / a  (along [11-2])")
    ax.set_ylabel("y / a  (along [111])")
    ax.set_title("FE stress field around the (111) crack")
    return ax


def plot_mesh_convergence(results: dict, ax=None):
    """Energy release rate per unit stress² against refinement level, with its extrapolation."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    m = results["fracture"]["mesh"]
    g = np.asarray(m["G"])
    err = np.abs(g - m["extrapolated"]) / abs(m["extrapolated"])
    ax.semilogy(m["levels"], np.clip(err, 1e-12, None), "o-")
    ax.set_xlabel("refinement level (h halves per level)")
    ax.set_ylabel("|G − G_extrapolated| / G")
    ax.set_title(f"mesh convergence, observed rate {m['observed_rate']:.2f}")
    return ax


def plot_budget(results: dict, ax=None):
    """Variance shares of each source for σ_c and for C11, C12, C44 and γ."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    comb = results["combined"]
    C = comb["elastic"].voigt
    qois = {"σ_c": results["fracture"]["sigma_c"], "C11": C[0, 0], "C12": C[0, 1], "C44": C[3, 3],
            "γ(111)": comb["surface"].value}
    sources = []
    for est in qois.values():
        for s in est.sources:
            if s not in sources:
                sources.append(s)
    left = np.zeros(len(qois))
    names = list(qois)
    for s in sources:
        shares = np.array([qois[q].budget().get(s, 0.0) for q in names])
        ax.barh(names, shares, left=left, label=s)
        left += shares
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share of variance")
    ax.set_title("error budget")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


_PLOTS = (
    ("equation_of_state", plot_equation_of_state, (5.5, 4)),
    ("fit_parity", plot_fit_parity, (13, 4)),
    ("stress_field", plot_stress_field, (7, 4)),
    ("mesh_convergence", plot_mesh_convergence, (5.5, 4)),
    ("budget", plot_budget, (7.5, 3.5)),
)


def _budget_quantities(results: dict) -> dict:
    """Scalar Estimates with at least two sources anywhere in a run's results (top level, dict
    entries, or a handoff's ``value``), by label."""
    from ..uq import Estimate

    out: dict = {}

    def visit(label, v):
        if isinstance(v, Estimate):
            if v.ndim == 0 and len(v.sources) >= 2:
                out[label] = v
        elif isinstance(v, dict):
            for k, x in v.items():
                visit(f"{label}.{k}", x)
        elif isinstance(getattr(v, "value", None), Estimate):
            visit(label, v.value)

    for k, v in results.items():
        visit(k, v)
    return out


def plot_generic_budget(results: dict, ax=None):
    """Variance shares of each source for every quantity of the run that has a budget."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    qois = _budget_quantities(results)
    if not qois:
        ax.text(0.5, 0.5, "no quantity with an error budget in this run", ha="center")
        ax.set_axis_off()
        return ax
    sources: list = []
    for est in qois.values():
        for src in est.sources:
            if src not in sources:
                sources.append(src)
    names = list(qois)
    left = np.zeros(len(names))
    for src in sources:
        shares = np.array([qois[q].budget().get(src, 0.0) for q in names])
        ax.barh(names, shares, left=left, label=src)
        left += shares
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share of variance")
    ax.set_title("error budget")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def _figure_png(fn, results, size) -> bytes:
    plt = _plt()
    if fn is plot_fit_parity:
        fig, axes = plt.subplots(1, 3, figsize=size)
        fn(results, axes)
    else:
        fig, ax = plt.subplots(figsize=size)
        fn(results, ax)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def build_report(run_info: dict, results: dict, html: Path | None = None,
                 png_dir: Path | None = None) -> list[Path]:
    """Write the plots (PNG files and/or one HTML page with them embedded); returns the paths."""
    from ..core.errors import InputError
    from ..ladders import get_ladder

    if png_dir is not None:
        png_dir = Path(png_dir)
        if png_dir.exists() and not png_dir.is_dir():
            raise InputError("--png-dir", str(png_dir), "a folder (it is an existing file; give "
                             "a folder to write the PNG files into, created if missing)")
        if any(parent.exists() and not parent.is_dir() for parent in png_dir.parents):
            raise InputError("--png-dir", str(png_dir), "a folder path whose parents are folders")
    if html is not None:
        html = Path(html)
        if html.is_dir():
            raise InputError("--html", str(html), "a file path (it is an existing folder)")
        if html.parent.exists() and not html.parent.is_dir():
            raise InputError("--html", str(html), "a file in an existing folder")
    # the flagship's plots need its results; every other ladder gets its budget bars
    plots = (_PLOTS if run_info["ladder"] == "silicon-fracture"
             else (("budget", plot_generic_budget, (7.5, 3.5)),))
    pngs = {name: _figure_png(fn, results, size) for name, fn, size in plots}
    written: list[Path] = []
    if png_dir is not None:
        try:
            png_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError("--png-dir", str(png_dir), "a folder that can be created",
                             hint=str(e)) from None
        for name, data in pngs.items():
            p = png_dir / f"{name}.png"
            _atomic_write(p, data)
            written.append(p)
    if html is not None:
        spec = get_ladder(run_info["ladder"])
        sections = spec.summarize(run_info["settings"], results) if spec.summarize else []
        parts = [f"<h1>scaleladder run {_html.escape(run_info['run_id'])}: "
                 f"{_html.escape(run_info['ladder'])}</h1>",
                 f"<p>created {_html.escape(str(run_info.get('created', '')))}</p>"]
        for title, rows in sections:
            parts.append(f"<h2>{_html.escape(title)}</h2><table><tr><th>quantity</th><th>value</th>"
                         "<th>unit</th><th>note</th></tr>")
            for row in rows:
                parts.append("<tr>" + "".join(f"<td>{_html.escape(str(c))}</td>" for c in row) + "</tr>")
            parts.append("</table>")
        for name, data in pngs.items():
            b64 = base64.b64encode(data).decode()
            parts.append(f"<h2>{name.replace('_', ' ')}</h2><img alt='{name}' src='data:image/png;base64,{b64}'/>")
        parts.append("<h2>settings</h2><table>" + "".join(
            f"<tr><td>{_html.escape(k)}</td><td>{_html.escape(repr(v))}</td></tr>"
            for k, v in run_info["settings"].items()) + "</table>")
        page = ("<!doctype html><html><head><meta charset='utf-8'><title>scaleladder report</title>"
                "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
                "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
                "img{max-width:100%}</style></head><body>" + "\n".join(parts) + "</body></html>")
        _atomic_write(Path(html), page.encode())
        written.append(Path(html))
    return written


def _atomic_write(path: Path, data: bytes) -> None:
    from ..core.fsio import atomic_write

    atomic_write(path, data)  # the project's one atomic write: mode 0o666 less the umask


__all__ = ["build_report", "plot_equation_of_state", "plot_fit_parity", "plot_stress_field",
           "plot_mesh_convergence", "plot_budget"]
