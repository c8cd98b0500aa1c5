"""Stage functions for tests/test_reliability.py (importable by worker processes and Dask).

Stages that take ``log`` append a line per call to ``<log>/<name>.count`` so tests can count how
often a stage really ran, across processes and runs.
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np

from scaleladder.core.pipeline import checkpoint_dir, stage

from _pipeline_stages import _tick as tick  # noqa: E402  one tick helper for both modules
from _pipeline_stages import count  # noqa: E402,F401


@stage("rel.quick")
def quick(x: float, log: str | None = None):
    tick(log, "quick")
    return {"x": float(x), "sq": float(x) ** 2}


@stage("rel.slow")
def slow(x: float, seconds: float, log: str | None = None, tag: str = ""):
    tick(log, "slow")
    time.sleep(seconds)
    return {"x": float(x), "tag": tag, "pid": os.getpid()}


@stage("rel.after")
def after(a, log: str | None = None):
    tick(log, "after")
    return {"x2": 2 * a["x"]}


@stage("rel.pid_then_sleep")
def pid_then_sleep(pidfile: str, seconds: float):
    Path(pidfile).write_text(str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()


@stage("rel.resumable")
def resumable(n_steps: int, dt: float, log: str | None = None):
    """Counts to ``n_steps``, checkpointing each step in the stage's checkpoint folder."""
    tick(log, "resumable")
    ck = checkpoint_dir()
    start, done = 0, []
    if ck is not None and (Path(ck) / "state.json").exists():
        state = json.loads((Path(ck) / "state.json").read_text())
        start, done = state["next"], state["done"]
    first = start
    for i in range(start, n_steps):
        time.sleep(dt)
        done.append(i)
        if ck is not None:
            tmp = Path(ck) / "state.json.tmp"
            tmp.write_text(json.dumps({"next": i + 1, "done": done}))
            os.replace(tmp, Path(ck) / "state.json")
    return {"done": done, "resumed_at": first, "checkpoint": None if ck is None else str(ck)}


@stage("rel.kill_own_process")
def kill_own_process():
    os.kill(os.getpid(), signal.SIGKILL)
    return None


@stage("rel.array")
def array(n: int, seed: int = 0):
    return np.random.default_rng(seed).standard_normal(n)
