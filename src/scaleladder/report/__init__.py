"""Reports a person would rather look at than read: plots (PNG) and one self-contained HTML page.

``build_report(run_info, results, html=..., png_dir=...)`` draws the plots the run's ladder declares
(``LadderSpec.plots``; the flagship's E-V fits, fit parity, stress field, mesh convergence and
budget) or, for a ladder that declares none, the budget bars of every quantity with an error
budget; the HTML page adds the ladder's summary sections and the run's settings.  The report knows
no ladder by name.  Only the public API is used; matplotlib runs with the Agg backend.
"""
from __future__ import annotations

import base64
import html as _html
import io
from pathlib import Path


def _plt():
    from ..ladders.base import pyplot

    return pyplot()


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
    from ..ladders.base import draw_budget_bars

    return draw_budget_bars(ax, qois)


def plot_design(design, path: Path | None = None, ax=None):
    """An inverse design over one setting: every evaluation's nominal value with its
    one-sigma and confidence bands, the target, and the design point; written to ``path`` (PNG)
    when given."""
    import numpy as np
    from scipy.stats import norm

    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 4))
    (key, x_star), = list(design.inputs.items())[:1] or [("", 0.0)]
    pts = sorted((e["inputs"][key], e["value"], e["std"]) for e in design.evaluations)
    x, mu, sd = (np.array(v) for v in zip(*pts))
    z = norm.ppf(design.confidence) if design.relation != "=" \
        else norm.ppf(0.5 + 0.5 * design.confidence)
    ax.fill_between(x, mu - z * sd, mu + z * sd, alpha=0.2, color="C0",
                    label=f"± {z:.3g} σ (P = {design.confidence:g})")
    ax.fill_between(x, mu - sd, mu + sd, alpha=0.35, color="C0", label="± 1 σ")
    ax.plot(x, mu, "o-", color="C0", ms=3, label=f"{design.quantity} (evaluations)")
    ax.axhline(design.target, color="k", ls="--", lw=1,
               label=f"target {design.relation} {design.target:g}")
    ax.axvline(x_star, color="C3", lw=1.2, label=f"design {key} = {x_star:.4g}")
    for a, b in design.feasible:
        ax.axvspan(a, b, color="C2", alpha=0.08)
    ax.set_xlabel(key)
    ax.set_ylabel(f"{design.quantity} ({design.unit})")
    ax.legend(fontsize=7)
    if fig is not None:
        fig.tight_layout()
        if path is not None:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110)
            _atomic_write(Path(path), buf.getvalue())
        plt.close(fig)
    return ax


def _figure_png(fn, results, size, n_axes: int = 1) -> bytes:
    plt = _plt()
    if n_axes > 1:
        fig, axes = plt.subplots(1, n_axes, figsize=size)
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
    spec = get_ladder(run_info["ladder"])
    plots = spec.plots or (("budget", plot_generic_budget, (7.5, 3.5), 1),)
    pngs = {name: _figure_png(fn, results, size, n) for name, fn, size, n in plots}
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


__all__ = ["build_report", "plot_generic_budget", "plot_design"]
