"""Stage functions for tests/test_pipeline.py.

They live in an importable module (not in the test file) so that worker processes (the "process"
executor, Dask) can import them by name.  Stages that take ``log`` append one line per call to
``<log>/<stage>.count``, so tests can count how often each stage really ran, across processes.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from scaleladder.core.pipeline import Runner, report_progress, stage
from scaleladder.core.store import Store


def _tick(log: str | None, name: str) -> None:
    if log:
        with open(Path(log) / f"{name}.count", "a") as fh:
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            os.fsync(fh.fileno())


def count(log: str | os.PathLike, name: str) -> int:
    p = Path(log) / f"{name}.count"
    return len(p.read_text().splitlines()) if p.exists() else 0


# -- a diamond: base -> (scale, shift) -> combine ----------------------------------------------
@stage("t.base")
def base(seed: int, n: int = 6, log: str | None = None):
    _tick(log, "base")
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, n))
    return {"matrix": m, "spd": m @ m.T + n * np.eye(n), "seed": seed}


@stage("t.scale")
def scale(b, factor: float = 2.0, log: str | None = None):
    _tick(log, "scale")
    return {"eig": np.linalg.eigvalsh(b["spd"] * factor), "factor": factor}


@stage("t.shift")
def shift(b, offset: float = 1.0, log: str | None = None):
    _tick(log, "shift")
    return np.exp(np.sin(b["matrix"]) + offset)


@stage("t.combine")
def combine(s, h, log: str | None = None):
    _tick(log, "combine")
    sol = np.linalg.solve(np.eye(h.shape[0]) * 10 + h, s["eig"])
    return {"solution": sol, "norm": float(np.linalg.norm(sol)), "pair": (s["factor"], h.sum())}


@stage("t.gather")
def gather(parts, log: str | None = None):
    _tick(log, "gather")
    return tuple(float(p["norm"]) for p in parts)


def diamond(seed: int = 1, factor: float = 2.0, offset: float = 1.0, log: str | None = None,
            shift_stage=None, n: int = 6):
    """The diamond DAG: returns the four nodes (base, scale, shift, combine)."""
    shift_stage = shift_stage or shift
    b = base.bind(seed=seed, n=n, log=log).with_label("base")
    s = scale.bind(b=b, factor=factor, log=log).with_label("scale")
    h = shift_stage.bind(b=b, offset=offset, log=log).with_label("shift")
    c = combine.bind(s=s, h=h, log=log).with_label("combine")
    return b, s, h, c


# -- failure and progress ----------------------------------------------------------------------
@stage("t.boom")
def boom(x, log: str | None = None):
    _tick(log, "boom")
    raise ValueError("boom: deliberate failure")


@stage("t.slow_ok")
def slow_ok(x, delay: float = 0.3, log: str | None = None):
    time.sleep(delay)
    _tick(log, "slow_ok")
    return x["seed"] + 1


@stage("t.progress")
def with_progress(steps: int = 4):
    for i in range(steps):
        report_progress((i + 1) / steps, f"step {i + 1}/{steps}")
    return steps


@stage("t.opaque")
def opaque():
    return object()  # not encodable: the store must refuse it


# -- the chain used by the SIGKILL test --------------------------------------------------------
@stage("t.k1")
def k1(workdir: str):
    _tick(workdir, "k1")
    return np.linspace(0.0, 1.0, 11)


@stage("t.k2")
def k2(x, workdir: str):
    _tick(workdir, "k2")
    Path(workdir, "started").write_text("started")
    deadline = time.monotonic() + 60.0
    while Path(workdir, "block").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("k2 was never killed")
        time.sleep(0.05)
    return 2.0 * x


@stage("t.k3")
def k3(y, workdir: str):
    _tick(workdir, "k3")
    return float(y.sum())


def run_chain(store_root: str, workdir: str) -> float:
    """Run k1 -> k2 -> k3 into the store at ``store_root``; used in a subprocess."""
    n1 = k1.bind(workdir=workdir)
    n2 = k2.bind(x=n1, workdir=workdir)
    n3 = k3.bind(y=n2, workdir=workdir)
    return Runner(Store(store_root), progress=False).run({"total": n3})["total"]


@stage("t.rendezvous")
def rendezvous(me: str, other: str, workdir: str, timeout: float = 10.0):
    """Finishes only if the stage named ``other`` runs at the same time (concurrency probe)."""
    Path(workdir, me).write_text(me)
    deadline = time.monotonic() + timeout
    while not Path(workdir, other).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{me}: {other} never started while {me} was running")
        time.sleep(0.01)
    return me
