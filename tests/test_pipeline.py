"""Tests of stages, nodes and the runner (scaleladder.core.pipeline)."""
from __future__ import annotations

import concurrent.futures as cf
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:  # stage functions must be importable by worker processes
    sys.path.insert(0, TESTS)

import _pipeline_stages as S  # noqa: E402

from scaleladder.core import codec, pipeline  # noqa: E402
from scaleladder.core.errors import InputError, MissingExtraError, StoreError  # noqa: E402
from scaleladder.core.pipeline import Node, Runner, Stage, report_progress, stage  # noqa: E402
from scaleladder.core.store import Store  # noqa: E402


def assert_identical(a, b, path="value"):
    """Bitwise deep equality (container types, dtypes, shapes, bytes)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert a.tobytes() == b.tobytes(), f"{path}: array bytes differ"
    elif isinstance(a, dict):
        assert set(a) == set(b), path
        for key in a:
            assert_identical(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == b or (math.isnan(a) and math.isnan(b)), f"{path}: {a!r} != {b!r}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def counts(log) -> dict[str, int]:
    return {n: S.count(log, n) for n in ("base", "scale", "shift", "combine")}


# -- keys ------------------------------------------------------------------------------------------
def test_node_keys_hash_name_version_params_and_dependency_keys():
    b1, s1, h1, c1 = S.diamond(seed=1)
    b2, s2, h2, c2 = S.diamond(seed=1)
    assert [n.key for n in (b1, s1, h1, c1)] == [n.key for n in (b2, s2, h2, c2)]
    assert len({b1.key, s1.key, h1.key, c1.key}) == 4
    assert all(len(n.key) == 64 and int(n.key, 16) >= 0 for n in (b1, s1, h1, c1))
    # a parameter changes its node and everything downstream, nothing upstream or beside
    _, s3, h3, c3 = S.diamond(seed=1, factor=3.0)
    assert s3.key != s1.key and c3.key != c1.key and h3.key == h1.key
    # the upstream seed changes everything
    assert {n.key for n in S.diamond(seed=2)}.isdisjoint({b1.key, s1.key, h1.key, c1.key})
    # a version changes the key; the label does not
    shift_v2 = Stage(S.shift.fn, "t.shift", "2")
    _, _, h4, c4 = S.diamond(seed=1, shift_stage=shift_v2)
    assert h4.key != h1.key and c4.key != c1.key
    assert h1.with_label("other label").key == h1.key
    # the name of the argument a dependency is bound to is part of the key
    swapped = S.combine.bind(s=s1, h=h1)
    assert swapped.key != S.combine.bind(s=h1, h=s1).key
    # parameter order does not matter, parameter type does
    assert S.base.bind(seed=1, n=6).key == S.base.bind(n=6, seed=1).key
    assert S.base.bind(seed=1, n=6).key != S.base.bind(seed=1, n=(6,)).key


def test_stage_is_callable_as_the_plain_function_and_nodes_are_immutable():
    assert S.gather([{"norm": 1}, {"norm": 2.5}]) == (1.0, 2.5)
    assert isinstance(S.base, Stage) and S.base.name == "t.base" and S.base.version == "1"
    node = S.base.bind(seed=3)
    assert node.stage is S.base and node.params == {"seed": 3} and node.deps == {}
    assert node.label == "t.base"
    with pytest.raises(AttributeError):
        node.key = "0" * 64
    with pytest.raises(AttributeError):
        node.deps = {"self": node}  # a node cannot be made to depend on itself: no cycles


def test_bind_errors_are_clear():
    with pytest.raises(InputError, match="unexpected keyword"):
        S.base.bind(seed=1, nope=2)
    with pytest.raises(InputError, match="missing a required"):
        S.scale.bind(factor=2.0)
    with pytest.raises(InputError, match="t.base.seed"):
        S.base.bind(seed=object())
    b = S.base.bind(seed=1)
    with pytest.raises(InputError, match="only Nodes"):
        S.gather.bind(parts=[b, 3.0])
    with pytest.raises(InputError, match="@stage"):
        stage(lambda x: x)


# -- running -----------------------------------------------------------------------------------------
def test_diamond_computes_each_node_once_and_a_rerun_reuses_everything(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    store = Store(tmp_path / "store")
    b, s, h, c = S.diamond(seed=1, log=str(log))
    runner = Runner(store, progress=False)
    out = runner.run({"combine": c, "scale": s})
    assert counts(log) == {"base": 1, "scale": 1, "shift": 1, "combine": 1}
    assert runner.stats.computed == 4 and runner.stats.reused == 0
    assert set(runner.stats.by_stage()) == {"t.base", "t.scale", "t.shift", "t.combine"}
    assert runner.stats.targets == {"combine": c.key, "scale": s.key}
    direct = S.combine.fn(S.scale.fn(S.base.fn(1)), S.shift.fn(S.base.fn(1)))
    # the runner returns the stored form (what a later run would load): np.float64 -> float
    assert type(direct["pair"][1]) is np.float64 and type(out["combine"]["pair"][1]) is float
    assert_identical(out["combine"], codec.from_files(codec.to_files(direct)))
    # the store records provenance of the whole diamond
    rec = store.record(c.key)
    assert rec["stage"] == "t.combine" and rec["inputs"] == {"s": s.key, "h": h.key}
    assert rec["params"] == {"log": str(log)} and rec["elapsed_s"] >= 0
    assert [r["key"] for r in store.provenance(c.key)] == [c.key, s.key, b.key, h.key]

    # second run, new runner and new store instance: nothing recomputed, same values bitwise
    runner2 = Runner(Store(tmp_path / "store"), progress=False)
    out2 = runner2.run({"b": b, "s": s, "h": h, "c": c})
    assert counts(log) == {"base": 1, "scale": 1, "shift": 1, "combine": 1}
    assert runner2.stats.computed == 0 and runner2.stats.reused == 4
    assert_identical(out2["c"], out["combine"])
    # a stored target is loaded without visiting what lies upstream of it
    runner2.run({"c": c})
    assert runner2.stats.reused == 1 and runner2.stats.computed == 0

    # a changed parameter recomputes that node and what is downstream, nothing else
    _, s3, _, c3 = S.diamond(seed=1, factor=3.0, log=str(log))
    out3 = runner2.run({"c": c3})
    assert counts(log) == {"base": 1, "scale": 2, "shift": 1, "combine": 2}
    assert runner2.stats.computed == 2 and runner2.stats.reused == 2
    assert not np.array_equal(out3["c"]["solution"], out["combine"]["solution"])
    # a changed version likewise
    shift_v2 = Stage(S.shift.fn, "t.shift", "2")
    _, _, h4, c4 = S.diamond(seed=1, log=str(log), shift_stage=shift_v2)
    runner2.run({"c": c4})
    assert counts(log) == {"base": 1, "scale": 2, "shift": 2, "combine": 3}
    assert store.record(h4.key)["version"] == "2"


def test_same_node_under_two_names_and_duplicate_names(tmp_path):
    log = tmp_path
    store = Store(tmp_path / "store")
    b = S.base.bind(seed=5, log=str(log))
    out = Runner(store, progress=False).run({"first": b, "second": b.with_label("again")})
    assert S.count(log, "base") == 1
    assert_identical(out["first"], out["second"])
    with pytest.raises(InputError, match="same name is given twice"):
        Runner(store, progress=False).run([("x", b), ("x", S.base.bind(seed=6))])
    with pytest.raises(InputError, match="wrap a single node"):
        Runner(store, progress=False).run(b)
    with pytest.raises(InputError):
        Runner(store, progress=False).run({})
    with pytest.raises(InputError, match="Node"):
        Runner(store, progress=False).run({"x": 3})


def test_dependency_groups(tmp_path):
    store = Store(tmp_path / "store")
    ends = [S.diamond(seed=i)[3] for i in (1, 2, 3)]
    g = S.gather.bind(parts=ends)
    out = Runner(store, progress=False).run({"g": g})["g"]
    direct = tuple(Runner(store, progress=False).run({"c": e})["c"]["norm"] for e in ends)
    assert out == direct and len(set(out)) == 3
    assert store.record(g.key)["inputs"] == {f"parts[{i}]": e.key for i, e in enumerate(ends)}
    assert S.gather.bind(parts=ends[::-1]).key != g.key


def test_failure_keeps_finished_stages_and_reraises_with_a_note(tmp_path):
    log = tmp_path
    store = Store(tmp_path / "store")
    b = S.base.bind(seed=1, log=str(log)).with_label("the base")
    bad = S.boom.bind(x=b, log=str(log)).with_label("exploding stage")
    with pytest.raises(ValueError, match="deliberate") as ei:
        Runner(store, progress=False).run({"bad": bad})
    notes = getattr(ei.value, "__notes__", [])
    assert notes == [f"in stage exploding stage ({bad.key[:12]})"]
    assert store.has(b.key) and not store.has(bad.key)
    # rerun: base is reused, the failing stage runs again
    with pytest.raises(ValueError):
        Runner(store, progress=False).run({"bad": bad})
    assert S.count(log, "base") == 1 and S.count(log, "boom") == 2

    # with a concurrent executor, a sibling still running when the failure arrives is stored
    ok = S.slow_ok.bind(x=b, delay=0.3, log=str(log))
    with cf.ThreadPoolExecutor(2) as pool, pytest.raises(ValueError):
        Runner(store, executor=pool, progress=False).run({"bad": bad, "ok": ok})
    assert store.has(ok.key) and store.get(ok.key) == 2


def test_unencodable_result_fails_with_the_stage_named(tmp_path):
    store = Store(tmp_path)
    node = S.opaque.bind()
    with pytest.raises(StoreError, match="cannot encode") as ei:
        Runner(store, progress=False).run({"x": node})
    assert any("t.opaque" in n for n in ei.value.__notes__)
    assert store.keys() == []


def test_independent_nodes_run_concurrently(tmp_path):
    # each stage only finishes if the other one is running at the same time
    a = S.rendezvous.bind(me="a", other="b", workdir=str(tmp_path))
    b = S.rendezvous.bind(me="b", other="a", workdir=str(tmp_path))
    with cf.ThreadPoolExecutor(2) as pool:
        out = Runner(Store(tmp_path / "s"), executor=pool, progress=False).run({"a": a, "b": b})
    assert out == {"a": "a", "b": "b"}
    # the local executor is serial: the same graph cannot finish there
    for f in ("a", "b"):
        (tmp_path / f).unlink()
    a2 = S.rendezvous.bind(me="a", other="b", workdir=str(tmp_path), timeout=0.2)
    with pytest.raises(TimeoutError):
        Runner(Store(tmp_path / "s2"), progress=False).run({"a": a2, "b": b})


def test_progress_bar_and_report_progress(tmp_path, monkeypatch):
    report_progress(0.5, "outside a runner: a no-op")
    seen: list[tuple[float, str]] = []
    orig = pipeline._Progress.stage_hook

    def spy(self, fraction, message):
        seen.append((fraction, message))
        orig(self, fraction, message)

    monkeypatch.setattr(pipeline._Progress, "stage_hook", spy)
    store = Store(tmp_path)
    b = S.base.bind(seed=1)
    out = Runner(store, progress=True).run({"p": S.with_progress.bind(steps=4), "b": b})
    assert out["p"] == 4
    assert seen == [(0.25, "step 1/4"), (0.5, "step 2/4"), (0.75, "step 3/4"), (1.0, "step 4/4")]
    seen.clear()
    Runner(store, progress=False).run({"p": S.with_progress.bind(steps=3)})
    assert seen == []


def test_executor_argument_errors(tmp_path, monkeypatch):
    store = Store(tmp_path)
    for bad in ("bogus", "http://x:1", 42):
        with pytest.raises(InputError, match="executor"):
            Runner(store, executor=bad)
    with pytest.raises(InputError, match="store"):
        Runner(str(tmp_path))
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    with pytest.raises(MissingExtraError, match=r"scaleladder\[dask\]"):
        Runner(store, executor="tcp://127.0.0.1:9", progress=False).run({"b": S.base.bind(seed=9)})

    @stage("t.local_only")
    def local_only(n: int = 0):
        return n

    assert Runner(store, progress=False).run({"x": local_only.bind()}) == {"x": 0}
    with pytest.raises(InputError, match="module level"):
        Runner(store, executor="process", progress=False).run({"x": local_only.bind(n=1)})


# -- other executors give identical results ---------------------------------------------------------
def small_graph() -> dict[str, Node]:
    ends = {f"c{seed}": S.diamond(seed=seed, n=8)[3] for seed in (11, 12)}
    return {**ends, "g": S.gather.bind(parts=list(ends.values())),
            "eig": S.diamond(seed=11, n=8)[1]}


def test_process_and_dask_executors_match_local_bitwise(tmp_path):
    distributed = pytest.importorskip("distributed")
    local = Runner(Store(tmp_path / "local"), progress=False).run(small_graph())

    runner = Runner(Store(tmp_path / "process"), executor="process", progress=False)
    proc = runner.run(small_graph())
    assert runner.stats.computed == 9  # 2 diamonds x 4 + gather
    assert_identical(proc, local)

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None, protocol="tcp") as cluster:
        with distributed.Client(cluster) as client:
            dask_out = Runner(Store(tmp_path / "dask"), executor=client, progress=False).run(
                small_graph())
        assert_identical(dask_out, local)
        # an address string connects (and closes) a client of its own
        addr = cluster.scheduler_address
        assert addr.startswith("tcp://")
        runner = Runner(Store(tmp_path / "dask2"), executor=addr, progress=False)
        assert_identical(runner.run(small_graph()), local)
        assert runner.stats.computed == 9  # 2 diamonds x 4 + gather
    # what the process run stored reads back identically with the local runner
    reused = Runner(Store(tmp_path / "process"), progress=False)
    assert_identical(reused.run(small_graph()), local)
    assert reused.stats.computed == 0


# -- SIGKILL in the middle of a chain ---------------------------------------------------------------
def _chain_subprocess(root: Path, work: Path) -> subprocess.Popen:
    code = (f"import sys; sys.path.insert(0, {TESTS!r}); import _pipeline_stages as S; "
            f"print(S.run_chain({str(root)!r}, {str(work)!r}))")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_chain_keeps_the_store_consistent(tmp_path):
    root, work = tmp_path / "store", tmp_path / "work"
    work.mkdir()
    (work / "block").write_text("stage 2 blocks while this file exists")
    proc = _chain_subprocess(root, work)
    deadline = time.monotonic() + 60
    while not (work / "started").exists():
        if proc.poll() is not None:
            pytest.fail(f"chain exited early: {proc.communicate()}")
        assert time.monotonic() < deadline, "stage 2 never started"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    n1 = S.k1.bind(workdir=str(work))
    n2 = S.k2.bind(x=n1, workdir=str(work))
    n3 = S.k3.bind(y=n2, workdir=str(work))
    store = Store(root)
    assert store.keys() == [n1.key]
    assert np.array_equal(store.get(n1.key), np.linspace(0.0, 1.0, 11))
    assert not store.has(n2.key) and not store.has(n3.key)
    assert S.count(work, "k1") == 1 and S.count(work, "k2") == 1 and S.count(work, "k3") == 0

    # rerun (in another process again) with stage 2 free to finish: stage 1 is not recomputed
    (work / "block").unlink()
    proc = _chain_subprocess(root, work)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert float(out.strip()) == pytest.approx(11.0, abs=1e-12)
    assert S.count(work, "k1") == 1 and S.count(work, "k2") == 2 and S.count(work, "k3") == 1
    store = Store(root)
    assert set(store.keys()) == {n1.key, n2.key, n3.key}
    assert [r["key"] for r in store.provenance(n3.key)] == [n3.key, n2.key, n1.key]
    assert store.get(n3.key) == pytest.approx(11.0, abs=1e-12)


def test_a_corrupt_stored_stage_is_recomputed_not_fatal(tmp_path):
    """A blob corrupted on disk is detected when the DAG is visited and recomputed (repairing the
    entry); nothing else is recomputed and the result is the original one."""
    log = tmp_path / "log"
    log.mkdir()
    store = Store(tmp_path / "store")
    b, s, h, c = S.diamond(seed=1, log=str(log))
    out = Runner(store, progress=False).run({"c": c})
    npz = store.blob_dir(s.key) / "arrays.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    assert not store.verify(s.key) and store.verify(b.key)
    runner = Runner(Store(tmp_path / "store"), progress=False)
    out2 = runner.run({"c": c, "s": s})
    assert counts(log)["scale"] == 2 and counts(log)["base"] == 1
    assert runner.stats.computed == 1
    assert store.verify(s.key)
    assert_identical(out2["c"], out["c"])
