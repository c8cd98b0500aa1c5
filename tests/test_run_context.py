"""Per-run settings that are not physics travel with each task (issue 10, item 3).

A Dask worker started in another working directory, with none of the driver's environment
variables, gets the store's checkpoint and scratch folders through the run context of the task.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scaleladder.core.pipeline import Runner, checkpoint_dir, run_context, scratch_dir
from scaleladder.core.store import Store

TESTS = str(Path(__file__).parent)
sys.path.insert(0, TESTS)
import _reliability_stages as R  # noqa: E402


def test_outside_a_run_there_are_no_folders_and_inside_there_are(tmp_path):
    assert checkpoint_dir() is None and scratch_dir("x") is None
    with run_context(store_root=str(tmp_path / "s"), checkpoint=str(tmp_path / "ck")):
        assert Path(checkpoint_dir()) == tmp_path / "ck" and (tmp_path / "ck").is_dir()
        assert Path(scratch_dir("scf")) == tmp_path / "s" / "scratch" / "scf"
    assert checkpoint_dir() is None
    with pytest.raises(Exception, match="plain folder name"):
        with run_context(store_root=str(tmp_path)):
            scratch_dir("../escape")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dask_worker_in_another_directory_gets_the_run_context(tmp_path):
    pytest.importorskip("distributed")
    exe = shutil.which("dask") or pytest.skip("the dask command is not installed")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALELADDER_")}
    env["PYTHONPATH"] = TESTS + os.pathsep + env.get("PYTHONPATH", "")
    port = _free_port()
    procs = [subprocess.Popen([exe, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], cwd=elsewhere, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    try:
        addr = f"tcp://127.0.0.1:{port}"
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        procs.append(subprocess.Popen([exe, "worker", addr, "--nworkers", "1", "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1"], cwd=elsewhere,
                                      env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True))
        root = tmp_path / "driver" / "store"
        node = R.resumable.bind(n_steps=3, dt=0.01)
        out = Runner(Store(root), executor=addr, progress=False).run({"r": node})["r"]
        # the worker checkpointed under the driver's store, not in its own working directory
        assert out["checkpoint"] == str(root / "checkpoints" / node.key)
        assert out["done"] == [0, 1, 2]
        assert not (elsewhere / "checkpoints").exists() and not (elsewhere / ".scaleladder").exists()
        assert not (root / "checkpoints" / node.key).exists()   # removed once stored
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(10)
