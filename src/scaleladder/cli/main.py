"""The ``scaleladder`` command: a thin face over the public API (typer + rich).

    scaleladder ladders
    scaleladder run silicon-fracture [--set key=value ...] [--executor tcp://host:port] [--store DIR]
    scaleladder budget <run>
    scaleladder show <artifact>
    scaleladder report <run> [--html out.html] [--png-dir DIR]
    scaleladder store check | rebuild [--store DIR]

Read-only commands (``show``, ``budget``, ``report``) open the store read-only: they work on a
read-only mount and never create a store where there is none.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="scaleladder: multiscale materials modelling with units, provenance and error budgets.")
console = Console()
err_console = Console(stderr=True)

STORE_OPT = typer.Option(".scaleladder", "--store", help="store directory (SQLite index + blobs)")


def _fail(exc: Exception) -> None:
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
    raise typer.Exit(code=2)


store_app = typer.Typer(add_completion=False, no_args_is_help=True,
                        help="inspect and repair a store: check, rebuild")
app.add_typer(store_app, name="store")


@app.command()
def ladders() -> None:
    """List the ready ladders with one line each."""
    from ..ladders import available_ladders

    table = Table(title="ladders", show_header=True)
    table.add_column("name", style="bold")
    table.add_column("what it does")
    for name, desc in available_ladders().items():
        table.add_row(name, desc)
    console.print(table)


@app.command()
def settings(ladder: str = typer.Argument(..., help="ladder name")) -> None:
    """List a ladder's settings (the keys --set accepts), their defaults and meaning."""
    from ..core.errors import ScaleLadderError
    from ..ladders import get_ladder

    try:
        spec = get_ladder(ladder)
    except ScaleLadderError as exc:
        _fail(exc)
    table = Table(title=f"{ladder} settings")
    for col in ("key", "default", "type", "meaning"):
        table.add_column(col)
    for s in spec.settings:
        table.add_row(s.name, repr(s.default), s.type.__name__, s.help)
    console.print(table)


@app.command()
def run(
    ladder: str = typer.Argument(..., help="ladder name (see: scaleladder ladders)"),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="override a setting: key=value"),
    executor: str = typer.Option("local", "--executor",
                                 help="local | process | tcp://scheduler:8786 (Dask distributed)"),
    store: Path = STORE_OPT,
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
    progress_interval: float = typer.Option(30.0, "--progress-interval",
                                            help="seconds between progress lines when the output "
                                                 "is not a terminal"),
    no_workers_timeout: float = typer.Option(60.0, "--no-workers-timeout",
                                             help="Dask: seconds without workers before saying so"),
    no_workers: str = typer.Option("wait", "--no-workers",
                                   help="Dask, no workers for that long: wait | stop"),
    connect_timeout: float = typer.Option(10.0, "--connect-timeout",
                                          help="Dask: seconds to wait for the scheduler"),
) -> None:
    """Run a ladder into the store (re-runs reuse every finished stage) and print its summary."""
    from ..core.errors import ScaleLadderError
    from ..core.pipeline import Runner
    from ..core.store import Store
    from ..ladders import get_ladder, parse_set_options

    t0 = time.perf_counter()
    try:
        spec = get_ladder(ladder)
        settings_ = spec.resolve(strings=parse_set_options(set_))
        targets = spec.build(settings_)
        st = Store(store)
        runner = Runner(st, executor=executor, progress=not quiet,
                        progress_interval_s=progress_interval,
                        connect_timeout_s=connect_timeout,
                        no_workers_timeout_s=no_workers_timeout, on_no_workers=no_workers)
        results = runner.run(targets)
        run_id = st.add_run(ladder, settings_, {k: n.key for k, n in targets.items()})
    except ScaleLadderError as exc:
        _fail(exc)
    elapsed = time.perf_counter() - t0
    if spec.summarize is not None:
        _print_sections(spec.summarize(settings_, results))
    _print_domain_warnings(_domain_warnings_of(results), limit=3)
    stats = runner.stats
    _print_reasons(stats.reasons())
    waited = f" ({stats.waited} computed by another run)" if stats.waited else ""
    console.print(f"run [bold]{run_id}[/] of {ladder}: {elapsed:.1f} s wall; "
                  f"{stats.computed} stages computed, {stats.reused} reused{waited} from {store}")
    console.print(f"next: scaleladder budget {run_id} | scaleladder report {run_id} --html report.html")


def _parse_vary(items: list[str]) -> dict:
    from ..core.errors import InputError

    out = {}
    for item in items:
        key, sep, rng = item.partition("=")
        lo, sep2, hi = rng.partition(":")
        if not (sep and sep2 and key.strip()):
            raise InputError("--vary", item, "KEY=LOW:HIGH")
        try:
            out[key.strip()] = (float(lo), float(hi))
        except ValueError:
            raise InputError("--vary", item, "KEY=LOW:HIGH with numbers") from None
    return out


@app.command()
def design(
    ladder: str = typer.Argument(..., help="ladder name"),
    target: str = typer.Option(..., "--target", help="QUANTITY>=VALUE, QUANTITY<=VALUE or "
                               "QUANTITY=VALUE, e.g. fracture.sigma_c>=10"),
    vary: List[str] = typer.Option(..., "--vary", help="a float setting and its range: "
                                   "KEY=LOW:HIGH (repeatable)"),
    confidence: float = typer.Option(0.5, "--confidence",
                                     help="probability with which the design meets the target"),
    n_grid: int = typer.Option(6, "--grid", help="grid points over one varied setting"),
    xtol: Optional[float] = typer.Option(None, "--xtol", help="tolerance of the varied "
                                         "setting (default 1e-3 of its range)"),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="fix a setting: key=value"),
    executor: str = typer.Option("local", "--executor", help="local | process | tcp://..."),
    store: Path = STORE_OPT,
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
    png: Optional[Path] = typer.Option(None, "--png", help="plot the evaluations, the bands, "
                                       "the target and the design (one varied setting)"),
) -> None:
    """Inverse design: the settings at which a ladder's result meets a target with a given
    probability (every evaluation a cached ladder run; the Design is stored)."""
    from ..core.errors import ScaleLadderError
    from ..ladders import get_ladder, parse_set_options
    from ..ladders.study import LadderQuantity, check_vary, design_key
    from ..workflows.design import design as run_design, parse_target

    t0 = time.perf_counter()
    try:
        spec = get_ladder(ladder)
        tgt = parse_target(target)
        rng = check_vary(spec, _parse_vary(vary))
        if not 0.0 < confidence < 1.0:
            from ..core.errors import InputError
            raise InputError("--confidence", confidence, "a probability in (0, 1)")
        strings = parse_set_options(set_)
        lq = LadderQuantity(spec, tgt.quantity, strings=strings, store=store,
                            executor=executor, progress=not quiet)
        d = run_design(lq, tgt, rng, confidence=confidence, n_grid=n_grid, xtol=xtol,
                       evaluate_many=lq.many, log=console.print)
        d = d.replace(provenance=lq.provenance())
        key = design_key(ladder, str(tgt), rng, confidence, lq.base)
        elapsed = time.perf_counter() - t0
        if not lq.store.has(key):
            lq.store.put(key, d, stage="design", version="1",
                         params={"ladder": ladder, "target": str(tgt), "confidence": confidence,
                                 "vary": {k: list(v) for k, v in rng.items()}},
                         inputs=lq.targets_at(d.inputs), elapsed_s=elapsed)
    except ScaleLadderError as exc:
        _fail(exc)
    n_new = sum(not e["cached"] for e in d.evaluations)
    if png is not None and len(d.inputs) == 1:
        from ..report import plot_design

        plot_design(d, png)
        console.print(f"plot: {png}")
    if d.feasible:
        console.print("feasible: " + "; ".join(f"{next(iter(d.inputs))} in [{a:.6g}, {b:.6g}]"
                                               for a, b in d.feasible))
    if d.input_interval:
        console.print(f"input interval (central {confidence:g}): "
                      f"[{d.input_interval[0]:.6g}, {d.input_interval[1]:.6g}]")
    console.print(f"design {key}: {len(d.evaluations)} evaluations ({n_new} computed, "
                  f"{len(d.evaluations) - n_new} from the store), {elapsed:.1f} s; "
                  f"scaleladder show {key[:16]}")


@app.command()
def sensitivity(
    ladder: str = typer.Argument(..., help="ladder name"),
    quantity: str = typer.Option(..., "--quantity", help="a result, e.g. moduli.E_T"),
    vary: List[str] = typer.Option(..., "--vary", help="a float setting and its (uniform) "
                                   "range: KEY=LOW:HIGH (two or more)"),
    n: int = typer.Option(16, "--n", help="Sobol' base points (a power of two); "
                          "n (d + 2) ladder runs"),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="fix a setting: key=value"),
    executor: str = typer.Option("local", "--executor", help="local | process | tcp://..."),
    store: Path = STORE_OPT,
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
) -> None:
    """Sobol' first-order and total indices of a ladder result over some of its settings (which
    knob matters); every point a cached ladder run."""
    from ..core.errors import InputError, ScaleLadderError
    from ..ladders import get_ladder, parse_set_options
    from ..ladders.study import LadderQuantity, check_vary
    from ..uq.sensitivity import sobol

    try:
        spec = get_ladder(ladder)
        rng = check_vary(spec, _parse_vary(vary))
        if len(rng) < 2:
            raise InputError("--vary", list(rng), "two or more settings")
        lq = LadderQuantity(spec, quantity, strings=parse_set_options(set_), store=store,
                            executor=executor, progress=not quiet)
        s = sobol(None, rng, n=n, fn_many=lambda pts: [float(e.value) for e, _ in
                                                        lq.many(pts)])
    except ScaleLadderError as exc:
        _fail(exc)
    console.print(s.table())


@app.command()
def multifidelity(
    ladder: str = typer.Argument(..., help="a ladder that declares fidelities (composite, ...)"),
    budget_s: float = typer.Option(..., "--budget", help="seconds of model time for the main "
                                   "phase (the pilot's come on top)"),
    method: str = typer.Option("mfmc", "--method", help="mfmc | mlmc | cv | mc"),
    n_pilot: int = typer.Option(10, "--pilot", help="pilot realisations (every model)"),
    compare: bool = typer.Option(False, "--compare", help="also run plain Monte Carlo of the "
                                 "high fidelity at the same budget, on fresh realisations"),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="fix a setting: key=value"),
    executor: str = typer.Option("local", "--executor", help="local | process | tcp://..."),
    store: Path = STORE_OPT,
) -> None:
    """Multifidelity Monte Carlo estimate of a ladder's declared quantity: pilot, allocation,
    main phase, achieved variance reduction (costs are the stage times in the store)."""
    from ..core.errors import ScaleLadderError
    from ..ladders import parse_set_options
    from ..ladders.study import ladder_hierarchy
    from ..uq.multifidelity import estimate_mean

    try:
        h = ladder_hierarchy(ladder, strings=parse_set_options(set_), store=store,
                             executor=executor)
        res = estimate_mean(h, budget_s, method=method, n_pilot=n_pilot, log=console.print)
        if compare:
            mc = estimate_mean(h, budget_s, method="mc", log=None, pilot_stats=res.pilot,
                               main_first=res.next_index)
            console.print(f"plain Monte Carlo at the same budget: {mc.estimate.value:.6g} ± "
                          f"{mc.estimate.std:.3g} {h.unit} ({mc.samples}); variance ratio "
                          f"{(mc.estimate.std / res.estimate.std) ** 2:.3g}x")
    except ScaleLadderError as exc:
        _fail(exc)


def _print_reasons(pairs: list) -> None:
    """Why stages were recomputed although an earlier result of theirs existed."""
    from rich.markup import escape

    if not pairs:
        return
    console.print("[bold]recomputed[/] (an earlier result existed):")
    for label, why in pairs:
        console.print(f"  {escape(label)}: {escape(why)}")


def _print_sections(sections) -> None:
    for title, rows in sections:
        table = Table(title=title, title_justify="left", show_header=True)
        table.add_column("quantity", style="bold")
        table.add_column("value", justify="right")
        table.add_column("unit")
        table.add_column("note", style="dim")
        for row in rows:
            table.add_row(*[str(x) for x in row])
        console.print(table)


def _load_run(store: Path, ref: str):
    from ..core.store import Store

    st = Store(store, readonly=True)
    info = st.get_run(ref)
    return st, info


@app.command()
def budget(run_ref: str = typer.Argument("latest", metavar="RUN", help="run id, ladder name or 'latest'"),
           store: Path = STORE_OPT) -> None:
    """The error budget of a run: each source's share and the weakest handoff."""
    from ..core.errors import ScaleLadderError
    from ..ladders import get_ladder

    try:
        st, info = _load_run(store, run_ref)
        spec = get_ladder(info["ladder"])
        handoffs = dict(spec.source_handoffs)
        results = {k: st.get(v) for k, v in info["targets"].items()}
    except ScaleLadderError as exc:
        _fail(exc)
    from ..ladders.study import scalar_estimates

    qois = [(label, est) for label, est in scalar_estimates(results).items()
            if len(est.sources) >= 1]
    # one table per quantity, the final result first
    qois.sort(key=lambda q: (q[0].split(".")[0] not in spec.headline, q[0]))
    seen = set()
    qois = [q for q in qois if not (q[0] in seen or seen.add(q[0]))]
    outside = _domain_warnings_of(results)
    if not qois:
        console.print("no quantity with an error budget in this run")
        _print_domain_warnings(outside)
        raise typer.Exit(1)
    for label, est in qois:
        table = Table(title=f"{label} = {float(est.value):.4g} ± {float(est.std):.2g} {est.unit}",
                      title_justify="left")
        table.add_column("source", style="bold")
        table.add_column("σ", justify="right")
        table.add_column("share", justify="right")
        table.add_column("bar")
        table.add_column("handoff", style="dim")
        shares = est.budget()
        for src in sorted(shares, key=shares.get, reverse=True):
            bar = "█" * int(round(20 * shares[src]))
            table.add_row(src, f"{est.variances[src] ** 0.5:.3g} {est.unit}", f"{100 * shares[src]:.1f} %",
                          bar, handoffs.get(src, ""))
        console.print(table)
        weakest = max(shares, key=shares.get)
        console.print(f"weakest handoff for {label}: [bold]{weakest}[/] — {handoffs.get(weakest, '')}\n")
    _print_domain_warnings(outside)


def _domain_warnings_of(results: dict) -> list:
    """(label, messages) of every artifact of a run (or its dict entries) with domain warnings."""
    out = []
    for name, value in results.items():
        items = value.items() if isinstance(value, dict) else [("", value)]
        for k, v in items:
            msgs = tuple(getattr(v, "domain_warnings", ()) or ())
            if msgs:
                out.append((f"{name}.{k}" if k else name, msgs))
    return out


def _print_domain_warnings(pairs: list, limit: int = 10) -> None:
    """One block "outside the training domain:", at most ``limit`` messages per artifact."""
    from rich.markup import escape

    if not pairs:
        return
    console.print("[bold yellow]outside the training domain:[/] (the potential extrapolates "
                  "for these results)")
    for label, msgs in pairs:
        for m in msgs[:limit]:
            console.print(f"  {escape(label)}: {escape(m)}")
        if len(msgs) > limit:
            console.print(f"  {escape(label)}: ... and {len(msgs) - limit} more")


@app.command()
def show(artifact: str = typer.Argument(..., help="key (or unique prefix), or RUN:target e.g. latest:elastic"),
         store: Path = STORE_OPT) -> None:
    """An artifact: its value with units, and the chain of stages and parameters that produced it."""
    from ..core.errors import ScaleLadderError

    try:
        from ..core.store import Store

        st = Store(store, readonly=True)
        if ":" in artifact:
            ref, target = artifact.split(":", 1)
            info = st.get_run(ref)
            if target not in info["targets"]:
                from ..core.errors import InputError

                raise InputError("target", target, "one of " + ", ".join(info["targets"]))
            key = info["targets"][target]
        else:
            key = st.find(artifact)
        value = st.get(key)
        chain = st.provenance(key)
    except ScaleLadderError as exc:
        _fail(exc)
    console.rule(f"[bold]{key[:16]}[/]")
    console.print(_describe(value))
    _print_domain_warnings(_domain_warnings_of({"artifact": value}))
    table = Table(title="provenance (this artifact first, then its inputs)", title_justify="left")
    for col in ("key", "stage", "version", "parameters", "elapsed"):
        table.add_column(col)
    for rec in chain:
        params = {k: v for k, v in (rec.get("params") or {}).items() if k not in ("structure",)}
        ptxt = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
        table.add_row(rec["key"][:12], rec["stage"], str(rec["version"]), ptxt[:120],
                      f"{rec.get('elapsed_s', 0):.2f} s")
    console.print(table)
    _print_code(chain[0])


def _print_code(rec: dict) -> None:
    """The code fingerprint of a record: digest, engines, the pieces of code it covers."""
    from rich.markup import escape

    fp = rec.get("fingerprint")
    if not fp:
        console.print("code fingerprint: none recorded (stored before fingerprints existed)")
        return
    console.print(f"code fingerprint: [bold]{fp['code'][:16]}[/] over {len(fp['modules'])} "
                  "pieces of code")
    if fp.get("engines"):
        console.print("engines: " + ", ".join(f"{k} {v}" for k, v in fp["engines"].items()))
    console.print("code: " + escape(", ".join(fp["modules"])), style="dim")
    if rec.get("note"):
        console.print(f"computed because: {escape(rec['note'])}")


def _short(v) -> str:
    s = repr(v)
    return s if len(s) < 40 else s[:37] + "..."


def _describe(value) -> str:
    import numpy as np

    from ..uq import Estimate

    if isinstance(value, dict):
        lines = []
        for k, v in value.items():
            if isinstance(v, (dict, list)) or (isinstance(v, np.ndarray) and v.size > 9):
                lines.append(f"{k}: <{type(v).__name__}{getattr(v, 'shape', '')}>")
            else:
                lines.append(f"{k}: {v!r}" if not isinstance(v, Estimate) else f"{k}: {v}")
        return "\n".join(lines)
    if hasattr(value, "configurations") and hasattr(value, "method"):  # a ReferenceDataset
        from collections import Counter

        counts = Counter(c.label for c in value.configurations)
        meth = ", ".join(f"{k}={v!r}" for k, v in value.method.items() if k != "kpts_scaled")
        return (f"{type(value).__name__}: {len(value)} configurations "
                f"({', '.join(f'{n} {lab}' for lab, n in counts.items())}); energies eV, forces eV/Å, "
                f"stress eV/Å³ (Voigt, ASE sign)\nmethod: {meth}")
    if hasattr(value, "a0") and hasattr(value, "bulk_modulus"):  # an EquationOfState
        return (f"{type(value).__name__} ({value.form}, {value.structure}, {len(value.volumes)} points): "
                f"a0 = {value.a0}, B0 = {value.bulk_modulus}, E0 = {value.e0} per atom\n"
                f"method: " + ", ".join(f"{k}={v!r}" for k, v in value.method.items() if k != "kpts_scaled"))
    text = str(value)
    return text if len(text) < 4000 else text[:4000] + " ..."


@app.command()
def report(run_ref: str = typer.Argument("latest", metavar="RUN"),
           html: Optional[Path] = typer.Option(None, "--html", help="write one self-contained HTML file"),
           png_dir: Optional[Path] = typer.Option(None, "--png-dir", help="write the plots as PNG files"),
           store: Path = STORE_OPT) -> None:
    """A readable summary with plots: E-V fit, fit parity, stress field, budget bars."""
    from ..core.errors import ScaleLadderError
    from ..report import build_report

    if html is None and png_dir is None:
        html = Path("report.html")
    try:
        st, info = _load_run(store, run_ref)
        results = {k: st.get(v) for k, v in info["targets"].items()}
        out = build_report(info, results, html=html, png_dir=png_dir)
    except ScaleLadderError as exc:
        _fail(exc)
    for path in out:
        console.print(f"wrote {path}")


@store_app.command("check")
def store_check(store: Path = STORE_OPT) -> None:
    """Verify every artifact against its recorded hashes and every blob against the index."""
    from ..core.errors import ScaleLadderError
    from ..core.store import Store

    try:
        res = Store(store, readonly=True).check()
    except ScaleLadderError as exc:
        _fail(exc)
    console.print(f"{len(res['ok'])} artifacts intact, {len(res['corrupt'])} corrupt, "
                  f"{len(res['unindexed'])} blobs not in the index, {len(res['orphans'])} "
                  f"undescribed blob folders; {res['runs']} runs")
    for k, why in res["corrupt"].items():
        console.print(f"  corrupt {k[:16]}: {why} (the next run recomputes it)")
    if res["unindexed"]:
        console.print(f"  blobs not in the index can be added with: scaleladder store rebuild "
                      f"--store {store}")
    if res["corrupt"]:
        raise typer.Exit(1)


@store_app.command("rebuild")
def store_rebuild(store: Path = STORE_OPT) -> None:
    """Rebuild a lost or damaged index from the self-describing blobs and run records."""
    from ..core.errors import ScaleLadderError
    from ..core.store import Store

    try:
        res = Store.rebuild(store)
    except ScaleLadderError as exc:
        _fail(exc)
    console.print(f"rebuilt the index of {store}: {res['artifacts']} artifacts, {res['runs']} runs")
    for k, why in res["skipped"].items():
        console.print(f"  left out blob {k[:16]}: {why}")
    for r, why in res["runs_skipped"].items():
        console.print(f"  left out run {r}: {why}")


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
