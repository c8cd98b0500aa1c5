"""Tests of the content-addressed store (scaleladder.core.store)."""
from __future__ import annotations

import hashlib
import math
import multiprocessing as mp
import pickle
import traceback
from pathlib import Path

import numpy as np
import pytest

import scaleladder.core.store as store_mod
from scaleladder.core.errors import InputError, StoreCorruptionError, StoreError
from scaleladder.core.store import Store

KEY = "ab" + "0" * 62
META = dict(stage="demo", version="1", params={}, inputs={}, elapsed_s=0.25)


def k(i: int | str) -> str:
    """A valid sha256-like key."""
    return hashlib.sha256(str(i).encode()).hexdigest()


def assert_identical(a, b, path="obj"):
    """Deep equality that also checks container types, dtypes, shapes and key types."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        assert a.tobytes() == b.tobytes(), f"{path}: array bytes differ"
    elif isinstance(a, dict):
        # (the codec writes str-keyed dicts with sorted keys: order is not part of the contract)
        assert set(a) == set(b), f"{path}: keys {list(a)} != {list(b)}"
        for key in a:
            assert type(key) is type(next(x for x in b if x == key))
            assert_identical(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or a == b, f"{path}: {a!r} != {b!r}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def nested():
    rng = np.random.default_rng(7)
    return {
        "arrays": [rng.standard_normal((3, 4)), np.arange(5, dtype=np.int32),
                   np.array([True, False]), rng.standard_normal(3).astype(np.float32),
                   np.array(2.5), np.array([1 + 2j, -3j])],
        "floats": [0.1, -0.0, float("inf"), float("-inf"), float("nan"), 1e-300],
        "tuple": (1, "two", (3.0, None), [4]),
        "int_keys": {1: "one", 2: np.array([[1.0, 2.0]]), -5: {"deep": (np.zeros(0),)}},
        "flags": {"ok": True, "none": None, "text": "Å ü"},
    }


# ----------------------------------------------------------------------------------------------
def test_round_trip_nested_object_survives_a_new_store_instance(tmp_path):
    obj = nested()
    s = Store(tmp_path / "st")
    params = {"kmesh": (4, 4, 4), "cutoff": 25.0, "weights": np.array([0.5, 1.5]), 3: "int key"}
    inputs = {"dataset": k("in")}
    assert s.put(KEY, obj, stage="fit", version="2", params=params, inputs=inputs, elapsed_s=1.5) == KEY
    assert s.has(KEY) and KEY in s
    assert_identical(s.get(KEY), obj)
    s.close()

    s2 = Store(tmp_path / "st")
    got = s2.get(KEY)
    assert_identical(got, obj)
    rec = s2.record(KEY)
    assert rec["stage"] == "fit" and rec["version"] == "2" and rec["key"] == KEY
    assert_identical(rec["params"], params)
    assert rec["inputs"] == inputs
    assert rec["elapsed_s"] == 1.5
    assert rec["created"].endswith("+00:00") and "T" in rec["created"]
    # the recorded hashes are those of the files on disk
    blob = tmp_path / "st" / "blobs" / KEY[:2] / KEY
    assert sorted(rec["files"]) == ["arrays.npz", "meta.json"]
    for name, h in rec["files"].items():
        assert hashlib.sha256((blob / name).read_bytes()).hexdigest() == h
    assert s2.keys() == [KEY] and s2.keys(stage="fit") == [KEY] and s2.keys(stage="other") == []
    assert len(s2) == 1


def test_put_is_idempotent_first_write_wins(tmp_path):
    s = Store(tmp_path)
    s.put(KEY, {"v": 1}, **META)
    s.put(KEY, {"v": 2}, **META)
    assert s.get(KEY) == {"v": 1}
    assert s.keys() == [KEY]


@pytest.mark.parametrize("name", ["arrays.npz", "meta.json"])
def test_flipped_byte_is_detected_as_corruption(tmp_path, name):
    s = Store(tmp_path)
    s.put(KEY, {"a": np.arange(100.0), "x": 1.0}, **META)
    path = tmp_path / "blobs" / KEY[:2] / KEY / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptionError) as ei:
        Store(tmp_path).get(KEY)
    assert KEY in str(ei.value) and name in str(ei.value)


def test_missing_blob_is_corruption_and_put_repairs_it(tmp_path):
    s = Store(tmp_path)
    s.put(KEY, [1.0, 2.0], **META)
    blob = tmp_path / "blobs" / KEY[:2] / KEY
    (blob / "arrays.npz").unlink()
    with pytest.raises(StoreCorruptionError, match="arrays.npz"):
        s.get(KEY)
    import shutil
    shutil.rmtree(blob)
    assert not s.has(KEY)
    with pytest.raises(StoreCorruptionError, match=KEY):
        s.get(KEY)
    s.put(KEY, [1.0, 2.0], **META)  # rewrites the blob and the row's hashes
    assert s.has(KEY) and s.get(KEY) == [1.0, 2.0]


def test_orphan_blob_without_index_row_is_ignored_then_overwritten(tmp_path):
    s = Store(tmp_path)
    orphan = tmp_path / "blobs" / KEY[:2] / KEY
    orphan.mkdir(parents=True)
    (orphan / "meta.json").write_text("half written garbage")
    assert not s.has(KEY)
    with pytest.raises(InputError, match="stored artifact"):
        s.get(KEY)
    s.put(KEY, {"ok": np.ones(3)}, **META)
    assert np.array_equal(s.get(KEY)["ok"], np.ones(3))


def test_crash_before_rename_leaves_nothing(tmp_path, monkeypatch):
    s = Store(tmp_path)

    def fail(*a, **kw):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(store_mod.os, "replace", fail)
    with pytest.raises(OSError, match="simulated"):
        s.put(KEY, {"x": 1}, **META)
    monkeypatch.undo()
    assert not s.has(KEY) and s.keys() == []
    assert not (tmp_path / "blobs" / KEY[:2] / KEY).exists()
    assert list((tmp_path / "tmp").iterdir()) == []  # staging cleaned up
    s.put(KEY, {"x": 1}, **META)
    assert s.get(KEY) == {"x": 1}


def test_crash_between_rename_and_index_leaves_an_orphan_that_is_overwritten(tmp_path, monkeypatch):
    s = Store(tmp_path)

    calls = []
    real = store_mod._fsync_dir

    def fail(path):
        calls.append(path)
        if len(calls) == 2:  # the first call syncs the staging folder, the second follows the rename
            raise RuntimeError("simulated crash after the rename")
        real(path)

    monkeypatch.setattr(store_mod, "_fsync_dir", fail)
    with pytest.raises(RuntimeError, match="simulated"):
        s.put(KEY, {"x": 1}, **META)
    monkeypatch.undo()
    assert (tmp_path / "blobs" / KEY[:2] / KEY).is_dir()  # the orphan blob
    assert not s.has(KEY) and s.keys() == []                # ... is not an entry
    s.put(KEY, {"x": 2}, **META)
    assert s.get(KEY) == {"x": 2}


def test_bad_keys_and_arguments_are_refused(tmp_path):
    s = Store(tmp_path)
    for bad in ["../../etc", "a", "", "a/b", 123, "x" * 129]:
        with pytest.raises(InputError):
            s.put(bad, 1, **META)
    with pytest.raises(InputError, match="inputs"):
        s.put(KEY, 1, stage="s", version="1", params={}, inputs={"a": 3}, elapsed_s=0.0)
    with pytest.raises(StoreError, match="cannot encode"):
        s.put(KEY, object(), **META)
    assert s.keys() == []


def test_find_unique_prefix_ambiguous_and_unknown(tmp_path):
    s = Store(tmp_path)
    ka, kb, kc = "aa11" + "0" * 60, "aa22" + "0" * 60, "bb33" + "0" * 60
    for key in (ka, kb, kc):
        s.put(key, key, **META)
    assert s.find("aa1") == ka and s.find("b") == kc and s.find(kb) == kb
    with pytest.raises(InputError) as ei:
        s.find("aa")
    assert "ambiguous" in str(ei.value) and ka[:16] in str(ei.value) and kb[:16] in str(ei.value)
    with pytest.raises(InputError, match="no match among the 3 artifacts"):
        s.find("cc")
    with pytest.raises(InputError):
        s.find("a*")


def test_provenance_is_depth_first_each_once(tmp_path):
    s = Store(tmp_path)
    leaf, left, right, top = k("leaf"), k("left"), k("right"), k("top")
    s.put(leaf, 0, stage="leaf", version="1", params={"p": 1}, inputs={}, elapsed_s=0.1)
    s.put(left, 1, stage="left", version="1", params={}, inputs={"x": leaf}, elapsed_s=0.1)
    s.put(right, 2, stage="right", version="1", params={}, inputs={"x": leaf}, elapsed_s=0.1)
    s.put(top, 3, stage="top", version="1", params={}, inputs={"a": left, "b": right}, elapsed_s=0.1)
    chain = s.provenance(top)
    assert [r["key"] for r in chain] == [top, left, leaf, right]
    assert [r["stage"] for r in chain] == ["top", "left", "leaf", "right"]
    assert chain[2]["params"] == {"p": 1}
    # an input that is not stored shows up as missing instead of breaking the chain
    lone = k("lone")
    s.put(lone, 4, stage="lone", version="1", params={}, inputs={"x": k("gone")}, elapsed_s=0.0)
    assert s.provenance(lone)[1] == {"key": k("gone"), "missing": True}


def test_runs_add_get_list_and_refs(tmp_path):
    s = Store(tmp_path)
    s.put(KEY, 1.0, **META)
    r1 = s.add_run("silicon-fracture", {"kmesh": (4, 4, 4), "xc": "PBE"}, {"sigma_c": KEY})
    r2 = s.add_run("vacancy", {"T": np.array([300.0, 600.0])}, {"D": KEY}, name="hot")
    r3 = s.add_run("silicon-fracture", {"kmesh": (3, 3, 3)}, {"sigma_c": KEY})
    assert len({r1, r2, r3}) == 3
    assert [r["run_id"] for r in s.list_runs()] == [r1, r2, r3]
    assert s.get_run("latest")["run_id"] == r3
    assert s.get_run("silicon-fracture")["run_id"] == r3
    assert s.get_run("vacancy")["run_id"] == r2 and s.get_run("hot")["run_id"] == r2
    got = s.get_run(r1)
    assert got["ladder"] == "silicon-fracture" and got["targets"] == {"sigma_c": KEY}
    assert got["settings"] == {"kmesh": (4, 4, 4), "xc": "PBE"}
    assert np.array_equal(s.get_run(r2)["settings"]["T"], [300.0, 600.0])
    # unique prefix: the id ends in 6 hex digits of a hash; the full id minus its last char is unique
    assert s.get_run(r2[:-1])["run_id"] == r2
    # a new Store instance sees the same runs
    assert [r["run_id"] for r in Store(tmp_path).list_runs()] == [r1, r2, r3]


def test_unknown_run_ref_lists_known_runs(tmp_path):
    s = Store(tmp_path)
    with pytest.raises(InputError, match="no runs are recorded"):
        s.get_run("latest")
    s.put(KEY, 1.0, **META)
    r1 = s.add_run("ladder-a", {}, {"x": KEY})
    r2 = s.add_run("ladder-b", {}, {"x": KEY})
    with pytest.raises(InputError) as ei:
        s.get_run("no-such-run")
    msg = str(ei.value)
    assert "no-such-run" in msg and r1 in msg and r2 in msg and "ladder-a" in msg
    with pytest.raises(InputError, match="ambiguous"):
        s.get_run(r1[:2])  # both ids start with the same year
    with pytest.raises(InputError, match="targets"):
        s.add_run("ladder-a", {}, {"x": k("never stored")})


def test_store_pickles_as_its_root(tmp_path):
    s = Store(tmp_path)
    s.put(KEY, {"v": 3}, **META)
    s2 = pickle.loads(pickle.dumps(s))
    assert s2.root == s.root and s2.get(KEY) == {"v": 3}


def test_index_that_is_not_sqlite_is_reported(tmp_path):
    (tmp_path / "index.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        Store(tmp_path)


# -- two processes writing at once ---------------------------------------------------------------
N_UNIQUE, N_SHARED, N_RUNS = 40, 20, 5


def _writer(root: str, tag: str, barrier, err_path: str) -> None:
    try:
        s = Store(root)
        barrier.wait(timeout=60)
        for i in range(N_UNIQUE):
            key = k(f"{tag}-{i}")
            s.put(key, {"tag": tag, "i": i, "a": np.full(50, i, dtype=np.float64)},
                  stage=f"w{tag}", version="1", params={"i": i}, inputs={}, elapsed_s=0.0)
            if i % 2 == 0:
                assert s.get(key)["i"] == i
            if i < N_SHARED:  # the same key written by both processes
                s.put(k(f"shared-{i}"), {"i": i, "a": np.arange(float(i))}, stage="shared",
                      version="1", params={"i": i}, inputs={}, elapsed_s=0.0)
            if i % (N_UNIQUE // N_RUNS) == 0:
                s.add_run(f"ladder-{tag}", {"i": i}, {"x": key})
    except BaseException:
        Path(err_path).write_text(traceback.format_exc())
        raise


def test_two_processes_write_concurrently(tmp_path):
    root = str(tmp_path / "store")
    Store(root)  # create the schema first (also exercised concurrently by the writers)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(root, tag, barrier, str(tmp_path / f"err-{tag}")))
             for tag in ("A", "B")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    errs = [f.read_text() for f in tmp_path.glob("err-*")]
    assert not errs, "\n".join(errs)
    assert [p.exitcode for p in procs] == [0, 0]

    s = Store(root)
    assert len(s) == 2 * N_UNIQUE + N_SHARED
    for tag in ("A", "B"):
        assert len(s.keys(stage=f"w{tag}")) == N_UNIQUE
        for i in range(N_UNIQUE):
            v = s.get(k(f"{tag}-{i}"))  # verifies every hash
            assert v["tag"] == tag and v["i"] == i and np.all(v["a"] == i)
    for i in range(N_SHARED):
        v = s.get(k(f"shared-{i}"))
        assert v["i"] == i and np.array_equal(v["a"], np.arange(float(i)))
    runs = s.list_runs()
    assert len(runs) == 2 * N_RUNS and len({r["run_id"] for r in runs}) == 2 * N_RUNS
    assert list((Path(root) / "tmp").iterdir()) == []


def test_a_registered_type_decodes_in_a_fresh_process(tmp_path):
    """The defining module is recorded with the type, so a process that never imported it can
    read the artifact back (``scaleladder show`` on a fresh interpreter)."""
    import subprocess
    import sys

    from scaleladder.uq import Estimate

    st = Store(tmp_path / "s")
    key = "ab" * 32
    st.put(key, {"e": Estimate(2.0, "GPa", {"fit": [1.0, 3.0]})}, stage="x", version="1", params={},
           inputs={}, elapsed_s=0.0)
    code = (f"from scaleladder.core.store import Store; v = Store({str(tmp_path / 's')!r}).get({key!r})['e'];"
            "print(type(v).__name__, v.unit, v.std)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["Estimate", "GPa", str(2.0 ** 0.5)]
