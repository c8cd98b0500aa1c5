"""Issue 9: every fault a user can hit, as a test (kills, corruption, concurrency, lost workers,
full disks, read-only stores, bad settings, stale caches).

Each test names the numbered item of docs/reliability.md it guards.
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from scaleladder.cli.main import app
from scaleladder.core.errors import (ExecutorError, InputError, StoreFullError, StoreIndexError)
from scaleladder.core.pipeline import Runner, run_context
from scaleladder.core.store import Store

TESTS = str(Path(__file__).parent)
sys.path.insert(0, TESTS)
import _reliability_stages as R  # noqa: E402

cli = CliRunner()
ENV = {**os.environ, "PYTHONPATH": TESTS + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _cli(*args, cwd=None):
    if cwd is None:
        return cli.invoke(app, list(args))
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return cli.invoke(app, list(args))
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def defects_store(tmp_path_factory):
    """A store holding one run of the defects ladder with its defaults (item 1)."""
    root = tmp_path_factory.mktemp("defects") / "store"
    out = _cli("run", "defects", "--store", str(root), "--quiet")
    assert out.exit_code == 0, out.output
    return root


# -------------------------------------------------------------------------------------------------
# 1. defects with its defaults
# -------------------------------------------------------------------------------------------------
def test_defects_ladder_runs_with_its_defaults_and_relaxes_the_neb_end_states(defects_store):
    st = Store(defects_store, readonly=True)
    info = st.get_run("latest")
    assert info["ladder"] == "defects" and info["settings"]["potential"] == "sw"
    vac = st.get(info["targets"]["vacancy"])
    mig = st.get(info["targets"]["migration"])
    # Td-relaxed SW vacancy (module notes of atomistic.defects): 2.836 eV in 63 atoms; the
    # symmetric trap would make the band fall below its end states
    assert vac.value.value == pytest.approx(2.836, abs=0.01)
    assert mig.value.value == pytest.approx(0.517, abs=0.01)
    assert mig.reverse.value == pytest.approx(mig.value.value, abs=1e-3)  # equivalent end states
    assert np.max(mig.path_energies) == pytest.approx(mig.value.value)
    assert min(mig.path_energies) >= -1e-6


# -------------------------------------------------------------------------------------------------
# 2. the cache learns what code made a result
# -------------------------------------------------------------------------------------------------
FPMOD = '''
from scaleladder.core.pipeline import stage

OFFSET = {offset}


def helper(x):
    return x + OFFSET


def unrelated():
    return {unrelated}


@stage("{stage}")
def compute(x):
    """Docstring {doc}."""
    return helper(x) * 2
'''


def _write_module(path: Path, stage: str = "fp.compute", **kw):
    path.write_text(textwrap.dedent(FPMOD.format(stage=stage, **kw)))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))


def test_editing_a_stage_or_its_helpers_recomputes_it_and_nothing_else_does(tmp_path):
    pkg = tmp_path / "fp_pkg"
    pkg.mkdir()
    mod_path = pkg / "fpmod_rel.py"
    _write_module(mod_path, offset=1, unrelated=0, doc="one")
    sys.path.insert(0, str(pkg))
    try:
        mod = importlib.import_module("fpmod_rel")
        store = Store(tmp_path / "store")

        def run():
            m = importlib.reload(mod)
            node = m.compute.bind(x=3)
            r = Runner(store, progress=False)
            return r.run({"y": node})["y"], r.stats, node

        y, stats, node0 = run()
        assert y == 8 and stats.computed == 1
        # unrelated function, docstring, comment: reused
        _write_module(mod_path, offset=1, unrelated=42, doc="two")
        y, stats, node1 = run()
        assert stats.computed == 0 and stats.reused == 1 and node1.key == node0.key
        # a module constant the stage uses through its helper: recomputed, and said why
        _write_module(mod_path, offset=5, unrelated=42, doc="two")
        y, stats, node2 = run()
        assert y == 16 and stats.computed == 1 and node2.key != node0.key
        (label, why), = stats.reasons()
        assert "code changed" in why and "fpmod_rel:OFFSET" in why
        rec = store.record(node2.key)
        assert rec["note"] == why and rec["fingerprint"]["code"] == mod.compute.fingerprint["code"]
        assert rec["identity"] == node0.identity            # same recipe, other code
        # back to the old code: the old result is still there and reused
        _write_module(mod_path, offset=1, unrelated=0, doc="one")
        y, stats, node3 = run()
        assert y == 8 and stats.computed == 0 and node3.key == node0.key
    finally:
        sys.path.remove(str(pkg))
        sys.modules.pop("fpmod_rel", None)


def test_fingerprints_of_ladder_stages_cover_rung_code_and_engines_but_not_cli_or_report():
    from scaleladder.ladders import available_ladders, get_ladder

    seen = 0
    for name in available_ladders():
        spec = get_ladder(name)
        nodes = spec.build(spec.resolve())
        stack = list(nodes.values())
        visited: set = set()
        while stack:
            n = stack.pop()
            if n.key in visited:         # a DAG: shared dependencies are walked once
                continue
            visited.add(n.key)
            stack.extend(n.dependencies())
            fp = n.stage.fingerprint
            mods = fp["modules"]
            assert not any(m.startswith(("scaleladder.cli", "scaleladder.report",
                                         "scaleladder.core.pipeline", "scaleladder.core.store"))
                           for m in mods), (n.stage.name, sorted(mods))
            assert any(m.endswith(":" + n.stage.fn.__name__) for m in mods)
            seen += 1
    assert seen > 20
    from scaleladder.ladders import defects

    fp = defects.vacancy_migration.fingerprint
    assert "scaleladder.atomistic.defects" in fp["modules"]          # where the NEB lives
    assert "numpy" in fp["engines"] and "ase" in fp["engines"]
    assert "scaleladder.ladders.defects:summarize" not in fp["modules"]


def test_a_module_is_followed_into_the_lazy_imports_of_the_functions_used_only():
    """A module enters a fingerprint whole, but the imports inside its functions are followed
    only for the functions reached: with the calculator registry cut to the DFT engine,
    generate.strain_set does not depend on the MD code that generate.md_snapshots imports
    lazily, md_snapshots does (a module cut from the registry is still followed when reached
    another way); the top-level imports of a module reached are always followed."""
    from scaleladder.core.fingerprint import _closure
    from scaleladder.workflows.calculators import ENGINE_TABLE

    cut = {ENGINE_TABLE.module: ENGINE_TABLE.others("pyscf")}
    st, _ = _closure([("scaleladder.workflows.generate", "strain_set")], prune=cut)
    md, _ = _closure([("scaleladder.workflows.generate", "md_snapshots")], prune=cut)
    assert "scaleladder.workflows.generate" in st and "scaleladder.workflows.generate" in md
    assert "scaleladder.atomistic.md" in md and "scaleladder.atomistic.md" not in st
    assert "scaleladder.atomistic.snap" not in st | md.keys()
    assert "scaleladder.handoffs.structure" in st                   # generate's top-level import
    full, _ = _closure([("scaleladder.workflows.generate", "strain_set")])
    assert "scaleladder.atomistic.snap" in full                     # the registry uncut
    whole, _ = _closure([("scaleladder.workflows.generate", None)], prune=cut)
    assert set(st) | set(md) <= set(whole)


def test_a_stage_that_declares_its_engine_depends_on_that_engines_code_only():
    """A DFT label of the active learning (engine 'pyscf', plain spec) depends on the DFT code
    and not on the SNAP, EAM, LAMMPS or MD code the calculator registry can also build; a label
    whose spec is not known when the DAG is built (a node) depends on every engine; the keys
    differ by engine."""
    from scaleladder.core.pipeline import Node
    from scaleladder.workflows.active_learning import al_label, al_select

    dft = {"engine": "pyscf", "params": {"xc": "LDA"}, "file": None, "species": ["Si"]}
    sw = {"engine": "sw", "params": {}, "file": None, "species": ["Si"]}
    sel = R.quick.bind(x=1)
    n_dft = al_label.bind(selection=sel, j=0, engine=dft, iteration=0)
    n_sw = al_label.bind(selection=sel, j=0, engine=sw, iteration=0)
    n_any = al_label.bind(selection=sel, j=0, engine=R.quick.bind(x=2), iteration=0)
    m_dft, m_sw, m_any = (set(n.fingerprint["modules"]) for n in (n_dft, n_sw, n_any))
    others = {"scaleladder.atomistic.snap", "scaleladder.atomistic.eam",
              "scaleladder.atomistic.lammps_md", "scaleladder.atomistic.md",
              "scaleladder.atomistic.tersoff", "scaleladder.electronic.xtb"}
    assert "scaleladder.electronic.pyscf_calculator" in m_dft and not m_dft & others
    assert "scaleladder.atomistic.stillinger_weber" in m_sw and not m_sw & (others - {
        "scaleladder.atomistic.md"})
    assert others <= m_any and "scaleladder.atomistic.stillinger_weber" in m_any
    assert set(n_dft.fingerprint["engines"]) == {"ase", "numpy", "pyscf"}
    assert len({n_dft.key, n_sw.key, n_any.key}) == 3
    assert al_label.engine_of({"engine": dft}) == "pyscf" and al_select.engine_of({}) is None
    assert isinstance(n_any, Node) and al_label.engine_of({"engine": R.quick.bind(x=2)}) is None


def test_the_calculator_registrys_engine_table_names_every_engine_module_it_imports():
    """ENGINE_TABLE must list every project module the registry imports to build an engine
    (a module missing there would be cut from a declared engine's fingerprint unnoticed)."""
    import ast as _ast

    from scaleladder.core.fingerprint import _imports_of
    from scaleladder.workflows import calculators as C

    tree = _ast.parse(Path(C.__file__).read_text())
    imported = set()
    for node in tree.body:
        if isinstance(node, _ast.FunctionDef):
            targets, _, _ = _imports_of(node, C.__name__, False)
            imported |= {m for m, _ in targets}
    listed = {m for ms in C.ENGINE_TABLE.modules.values() for m in ms}
    engines = {m for m in imported if not m.startswith("scaleladder.core.")}
    assert engines == listed, (sorted(engines), sorted(listed))
    assert set(C.ENGINE_TABLE.modules) == set(C.ENGINES)
    with pytest.raises(InputError, match="engine_param"):
        from scaleladder.core.pipeline import stage

        stage("fp.bad", engine_param="nope", engines=C.ENGINE_TABLE)(lambda x: x)
    with pytest.raises(InputError, match="engines"):
        stage("fp.bad2", engine_param="x", engines={"sw": ()})(lambda x: x)


def test_show_prints_the_code_fingerprint_and_engines(defects_store):
    out = _cli("show", "latest:migration", "--store", str(defects_store))
    assert out.exit_code == 0, out.output
    assert "code fingerprint:" in out.output and "engines:" in out.output and "numpy" in out.output


# -------------------------------------------------------------------------------------------------
# 3. potentials know their species
# -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sets, named", [
    (["structure=bulk:Ge:diamond:5.658", "potential=sw"], "Ge"),
    (["structure=bulk:Cu:fcc:3.615", "potential=sw"], "Cu"),
    (["structure=bulk:C:diamond:3.567", "potential=tersoff"], "C"),
])
def test_builtin_potentials_refuse_elements_they_were_not_made_for(tmp_path, sets, named):
    args = ["run", "elastic-constants", "--store", str(tmp_path / "s"), "--quiet"]
    for s in sets:
        args += ["--set", s]
    out = _cli(*args)
    assert out.exit_code == 2
    text = " ".join(out.output.split())
    assert f"structure='{named}'" in text and "made for Si" in text
    assert not (tmp_path / "s").exists()


def test_an_eam_file_refuses_elements_it_has_no_tables_for(tmp_path):
    from scaleladder.ladders._atomistic_common import potential_spec

    # a one-element (Cu) setfl file from analytic tables, by the project's own writer
    from scaleladder.atomistic.eam import EAMTables, write_setfl

    r = np.linspace(0, 5.0, 200)
    rho = np.linspace(0, 10.0, 200)
    tab = EAMTables(elements=("Cu",), atomic_numbers=(29,), masses=(63.546,),
                    lattice_constants=(3.615,), lattice_types=("fcc",), nrho=200, drho=rho[1],
                    nr=200, dr=r[1], cutoff=5.0, F=-np.sqrt(rho)[None, :],
                    rho=np.exp(-r)[None, :], rphi=(np.exp(-2 * r) * r)[None, None, :])
    path = tmp_path / "Cu.eam.alloy"
    write_setfl(tab, path)
    settings = {"potential": "eam", "potential_params": "", "potential_file": str(path)}
    potential_spec(settings, ["Cu"])
    with pytest.raises(InputError, match="Ni"):
        potential_spec(settings, ["Ni"])


# -------------------------------------------------------------------------------------------------
# 4. vacancy finite size
# -------------------------------------------------------------------------------------------------
def test_tiny_defect_supercells_are_refused_and_finite_size_is_in_the_budget(tmp_path,
                                                                             defects_store):
    out = _cli("run", "defects", "--set", "supercell=1,1,1", "--store", str(tmp_path / "s"))
    assert out.exit_code == 2 and "supercell" in out.output and "at least 32" in out.output
    st = Store(defects_store, readonly=True)
    vac = st.get(st.get_run("latest")["targets"]["vacancy"])
    fs = vac.provenance["finite_size"]
    assert fs["atoms"] == [64, 216]
    # 1/N extrapolation between 64 and 216 sites; a 511-atom cell gives 2.665 eV (README)
    assert fs["E_inf_eV"] == pytest.approx(2.665, abs=0.05)
    assert vac.value.std == pytest.approx(fs["sigma_eV"], rel=1e-9)
    assert "finite_size_warning" in vac.provenance
    out = _cli("budget", "latest", "--store", str(defects_store))
    assert out.exit_code == 0 and "finite_size" in out.output and "100.0 %" in out.output


# -------------------------------------------------------------------------------------------------
# 5. settings validated before the first stage
# -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ladder, setting, field", [
    ("magnet", "mc.seed=-1", "mc.seed"),
    ("vacancy-diffusion", "kmc.seed=-1", "kmc.seed"),
    ("silicon-fracture", "electronic.xc=FOO", "electronic.xc"),
    ("silicon-fracture", "electronic.basis=nonsense", "electronic.basis"),
    ("silicon-fracture", "electronic.pseudo=gth-nonsense", "electronic.pseudo"),
    ("silicon-fracture", "electronic.xc_alt=NOTAFUNCTIONAL", "electronic.xc_alt"),
    ("magnet", "dft.xc=FOO", "dft.xc"),
    ("magnet", "dft.basis=nonsense", "dft.basis"),
    ("magnet", "dft.pseudo=gth-nonsense", "dft.pseudo"),
    ("magnet", "dft.element=Qq", "dft.element"),
    ("qmmm-water", "qm.xc=FOO", "qm.xc"),
    ("qmmm-water", "qm.basis=nonsense", "qm.basis"),
    ("qmmm-water", "system.seed=-3", "system.seed"),
])
def test_bad_settings_are_refused_before_anything_runs(tmp_path, ladder, setting, field):
    store = tmp_path / "s"
    out = _cli("run", ladder, "--set", setting, "--store", str(store))
    assert out.exit_code == 2, out.output
    text = " ".join(out.output.split())
    assert text.startswith("error:") and f"{field}=" in text and "Traceback" not in text
    assert not store.exists()   # nothing ran, not even the store was created


# -------------------------------------------------------------------------------------------------
# 6. Dask: absent scheduler, no workers, lost scheduler, a stage that kills its workers
# -------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 30.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def _dask(*args, env=None):
    exe = shutil.which("dask") or pytest.skip("the dask command is not installed")
    return subprocess.Popen([exe, *args], env=env or ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    p.wait(10)


@pytest.fixture
def scheduler():
    pytest.importorskip("distributed")
    port = _free_port()
    p = _dask("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
    _wait_port(port)
    yield f"tcp://127.0.0.1:{port}", p
    _stop(p)


def _worker(address: str, env=None) -> subprocess.Popen:
    return _dask("worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                 "--host", "127.0.0.1", env=env)


def _wait_workers(address: str, n: int = 1, timeout: float = 60.0) -> None:
    import distributed

    with distributed.Client(address, timeout=30) as c:
        c.wait_for_workers(n, timeout=timeout)


def test_dask_absent_scheduler_is_one_clear_error(tmp_path):
    pytest.importorskip("distributed")
    addr = f"tcp://127.0.0.1:{_free_port()}"
    runner = Runner(Store(tmp_path / "s"), executor=addr, progress=False, connect_timeout_s=2)
    t0 = time.monotonic()
    with pytest.raises(ExecutorError, match="no Dask scheduler answered") as e:
        runner.run({"q": R.quick.bind(x=1.0)})
    assert time.monotonic() - t0 < 20 and "dask scheduler" in str(e.value)


def test_dask_no_workers_is_reported_then_stops_or_waits(tmp_path, scheduler, capfd):
    addr, _ = scheduler
    store = Store(tmp_path / "s")
    done = R.quick.bind(x=2.0)
    Runner(store, progress=False).run({"d": done})  # something finished before
    runner = Runner(store, executor=addr, progress=False, no_workers_timeout_s=1.5,
                    on_no_workers="stop")
    with pytest.raises(ExecutorError, match="no Dask worker has been connected"):
        runner.run({"d": done, "q": R.quick.bind(x=3.0)})
    assert store.has(done.key)
    # "wait": says so, keeps waiting, and finishes once a worker arrives
    runner = Runner(store, executor=addr, progress=False, no_workers_timeout_s=1.0)
    import threading

    w = []
    threading.Timer(4.0, lambda: w.append(_worker(addr))).start()
    try:
        out = runner.run({"q": R.quick.bind(x=4.0)})
    finally:
        time.sleep(0.1)
        for p in w:
            _stop(p)
    assert out["q"]["sq"] == 16.0
    assert "still waiting" in capfd.readouterr().err


def test_dask_lost_scheduler_is_one_clear_error_and_keeps_finished_stages(tmp_path, scheduler):
    addr, sched = scheduler
    w = _worker(addr)
    try:
        _wait_workers(addr)
        store = Store(tmp_path / "s")
        first = R.quick.bind(x=5.0)
        slow = R.slow.bind(x=1.0, seconds=30.0)
        import threading

        def kill_when_running():
            time.sleep(4.0)
            _stop(sched)

        threading.Thread(target=kill_when_running, daemon=True).start()
        runner = Runner(store, executor=addr, progress=False)
        t0 = time.monotonic()
        with pytest.raises(ExecutorError, match="lost the Dask scheduler") as e:
            runner.run({"a": first, "b": slow})
        assert time.monotonic() - t0 < 28 and "rel.slow" in str(e.value)
        assert store.has(first.key) and not store.has(slow.key)
    finally:
        _stop(w)


def test_dask_stage_that_kills_its_workers_is_one_clear_error(tmp_path, scheduler):
    addr, _ = scheduler
    env = {**ENV, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    sched2_port = _free_port()
    s2 = _dask("scheduler", "--host", "127.0.0.1", "--port", str(sched2_port), "--no-dashboard",
               env=env)
    addr2 = f"tcp://127.0.0.1:{sched2_port}"
    _wait_port(sched2_port)
    w = _worker(addr2)
    try:
        _wait_workers(addr2)
        runner = Runner(Store(tmp_path / "s"), executor=addr2, progress=False)
        with pytest.raises(ExecutorError, match="killed every Dask worker") as e:
            runner.run({"k": R.kill_own_process.bind()})
        assert "rel.kill_own_process" in str(e.value)
    finally:
        _stop(w)
        _stop(s2)


# -------------------------------------------------------------------------------------------------
# 7. full disk and read-only store
# -------------------------------------------------------------------------------------------------
def _mount(*args) -> bool:
    try:
        return subprocess.run(["mount", *args], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=20)


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)):
        pytest.skip("cannot mount a 2 MiB tmpfs here (needs mount privileges)")
    yield mnt
    _umount(mnt)


def test_full_disk_is_one_clear_error_and_keeps_finished_stages(small_disk):
    store = Store(small_disk / "store")
    a = R.array.bind(n=1000, seed=1)
    Runner(store, progress=False).run({"a": a})
    big = R.array.bind(n=600_000, seed=2)   # 4.8 MB: more than the disk
    with pytest.raises(StoreFullError, match="disk is full") as e:
        Runner(store, progress=False).run({"big": big})
    assert "rel.array" in " ".join([str(e.value), *getattr(e.value, "__notes__", [])])
    assert store.verify(a.key) and not store.has(big.key)
    assert list((small_disk / "store" / "tmp").iterdir()) == []   # no half-written staging
    assert Store(small_disk / "store").check()["corrupt"] == {}


def test_full_disk_through_the_cli_says_so(small_disk):
    # fill the disk, then run a ladder: a clear message, no traceback
    Store(small_disk / "store")
    with open(small_disk / "filler", "wb") as fh:
        try:
            fh.write(b"\0" * (4 << 20))
        except OSError:
            pass
    out = _cli("run", "defects", "--store", str(small_disk / "store"), "--quiet",
               "--set", "miller=", "--set", "finite_size=false")
    assert out.exit_code == 2, out.output
    assert "disk is full" in " ".join(out.output.split()) and "Traceback" not in out.output


@pytest.fixture
def readonly_copy(tmp_path, defects_store):
    """A read-only mount (or, for a non-root user, a read-only folder) holding a copy of a store."""
    src = tmp_path / "rw"
    shutil.copytree(defects_store, src / "store")
    ro = tmp_path / "ro"
    ro.mkdir()
    if _mount("--bind", str(src), str(ro)) and _mount("-o", "remount,ro,bind", str(ro)):
        yield ro / "store"
        _umount(ro)
    elif os.geteuid() != 0:
        for p in sorted((src).rglob("*"), reverse=True):
            p.chmod(0o555 if p.is_dir() else 0o444)
        src.chmod(0o555)
        yield src / "store"
        for p in src.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        src.chmod(0o755)
    else:
        pytest.skip("cannot make a read-only mount here and root ignores folder permissions")


def test_read_only_store_can_be_inspected_but_not_run_into(readonly_copy, tmp_path):
    before = sorted(p.name for p in readonly_copy.rglob("*"))
    for args in (["show", "latest:vacancy"], ["budget", "latest"],
                 ["report", "latest", "--html", str(tmp_path / "r.html")], ["store", "check"]):
        out = _cli(*args, "--store", str(readonly_copy))
        assert out.exit_code == 0, (args, out.output)
    assert (tmp_path / "r.html").stat().st_size > 1000
    out = _cli("run", "defects", "--store", str(readonly_copy), "--quiet")
    assert out.exit_code == 2 and "read-only" in out.output and "Traceback" not in out.output
    assert sorted(p.name for p in readonly_copy.rglob("*")) == before


def test_read_only_commands_never_create_a_store(tmp_path):
    for args in (["show", "abc"], ["budget", "latest"], ["report", "latest"], ["ladders"],
                 ["store", "check"]):
        out = _cli(*args, cwd=tmp_path)
        assert "Traceback" not in out.output
    assert not (tmp_path / ".scaleladder").exists()
    out = _cli("budget", "latest", cwd=tmp_path)
    assert out.exit_code == 2 and "no store at" in out.output


# -------------------------------------------------------------------------------------------------
# 8. report output
# -------------------------------------------------------------------------------------------------
def test_report_png_dir_that_is_a_file_and_html_permissions(defects_store, tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    out = _cli("report", "latest", "--png-dir", str(f), "--store", str(defects_store))
    assert out.exit_code == 2 and "--png-dir" in out.output and "Traceback" not in out.output
    old = os.umask(0o022)
    try:
        out = _cli("report", "latest", "--html", str(tmp_path / "r.html"), "--store",
                   str(defects_store))
    finally:
        os.umask(old)
    assert out.exit_code == 0
    assert (tmp_path / "r.html").stat().st_mode & 0o777 == 0o644


# -------------------------------------------------------------------------------------------------
# 9. lost or damaged index; corrupt blobs
# -------------------------------------------------------------------------------------------------
def test_deleted_index_is_refused_then_rebuilt_from_the_blobs(tmp_path, defects_store):
    root = tmp_path / "store"
    shutil.copytree(defects_store, root)
    keys = Store(root).keys()
    runs = Store(root).list_runs()
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(root / "index.sqlite") + suffix)
        if p.exists():
            p.unlink()
    with pytest.raises(StoreIndexError, match="store rebuild"):
        Store(root)
    out = _cli("run", "defects", "--store", str(root), "--quiet")
    assert out.exit_code == 2 and "store rebuild" in " ".join(out.output.split())
    with pytest.raises(StoreIndexError):   # still refused: the failed run started nothing
        Store(root)
    out = _cli("store", "rebuild", "--store", str(root))
    assert out.exit_code == 0 and f"{len(keys)} artifacts, 1 runs" in " ".join(out.output.split())
    st = Store(root)
    assert sorted(st.keys()) == sorted(keys)
    assert [r["run_id"] for r in st.list_runs()] == [r["run_id"] for r in runs]
    assert st.check()["corrupt"] == {}
    out = _cli("run", "defects", "--store", str(root), "--quiet")
    assert out.exit_code == 0 and "0 stages computed" in " ".join(out.output.split())


def test_empty_or_malformed_index_gives_advice_not_a_new_store(tmp_path, defects_store):
    root = tmp_path / "store"
    shutil.copytree(defects_store, root)
    (root / "index.sqlite").write_bytes(b"")          # emptied
    for suffix in ("-wal", "-shm"):
        Path(str(root / "index.sqlite") + suffix).unlink(missing_ok=True)
    with pytest.raises(StoreIndexError, match="missing or empty"):
        Store(root)
    (root / "index.sqlite").write_bytes(b"this is not sqlite" * 100)   # malformed
    with pytest.raises(StoreIndexError) as e:
        Store(root)
    assert "store rebuild" in str(e.value) and "do not delete" in str(e.value)
    out = _cli("show", "latest", "--store", str(root))
    assert out.exit_code == 2 and "store rebuild" in " ".join(out.output.split())
    assert Store.rebuild(root)["runs"] == 1
    assert list(root.glob("index.sqlite.damaged-*"))


def test_a_corrupt_blob_is_recomputed_and_said_so(tmp_path, capfd):
    store = Store(tmp_path / "s")
    a = R.quick.bind(x=7.0)
    Runner(store, progress=False).run({"a": a})
    arrays = store.blob_dir(a.key) / "meta.json"
    arrays.write_bytes(arrays.read_bytes().replace(b"49", b"50"))
    assert store.check()["corrupt"]
    r = Runner(store, progress=False)
    assert r.run({"a": a})["a"]["sq"] == 49.0
    assert r.stats.computed == 1
    (label, why), = r.stats.reasons()
    assert "corrupt" in why
    assert "corrupt" in capfd.readouterr().err
    assert store.verify(a.key)


# -------------------------------------------------------------------------------------------------
# 10. two runs on one store compute each stage once
# -------------------------------------------------------------------------------------------------
def _run_graph_subprocess(root: Path, log: Path, seconds: float, out: Path) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {TESTS!r})
        import _reliability_stages as R
        from scaleladder.core.pipeline import Runner
        from scaleladder.core.store import Store
        s = R.slow.bind(x=1.0, seconds={seconds}, log={str(log)!r})
        r = Runner(Store({str(root)!r}), progress=False)
        res = r.run({{"a": R.after.bind(a=s, log={str(log)!r})}})
        json.dump({{"res": res, "computed": r.stats.computed, "waited": r.stats.waited}},
                  open({str(out)!r}, "w"))
        """)
    return subprocess.Popen([sys.executable, "-c", code], env=ENV)


def test_two_runs_on_one_store_compute_each_stage_once(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    root = tmp_path / "store"
    Store(root)
    p1 = _run_graph_subprocess(root, log, 4.0, tmp_path / "o1.json")
    time.sleep(1.5)
    p2 = _run_graph_subprocess(root, log, 4.0, tmp_path / "o2.json")
    assert p1.wait(60) == 0 and p2.wait(60) == 0
    o1 = json.loads((tmp_path / "o1.json").read_text())
    o2 = json.loads((tmp_path / "o2.json").read_text())
    assert o1["res"] == o2["res"]
    assert R.count(log, "slow") == 1 and R.count(log, "after") == 1
    assert o1["computed"] + o2["computed"] == 2 and o1["waited"] + o2["waited"] >= 1


def test_a_lease_of_a_dead_run_is_taken_over(tmp_path):
    store = Store(tmp_path / "s")
    q = R.quick.bind(x=9.0)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with store._tx() as c:   # a lease left by a run whose process is gone
        c.execute("INSERT INTO leases (key, owner, host, pid, label, acquired, heartbeat) "
                  "VALUES (?,?,?,?,?,?,?)", (q.key, "dead-run", socket.gethostname(), dead.pid,
                                              "x", time.time(), time.time()))
    r = Runner(store, progress=False)
    assert r.run({"q": q})["q"]["sq"] == 81.0 and r.stats.computed == 1
    assert store.lease_of(q.key) is None


# -------------------------------------------------------------------------------------------------
# 11. SIGKILLed driver: process-pool workers exit
# -------------------------------------------------------------------------------------------------
def _parent_of(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().split(")")[-1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def test_process_pool_workers_exit_when_the_driver_is_killed(tmp_path):
    pidfile = tmp_path / "worker.pid"
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {TESTS!r})
        import _reliability_stages as R
        from scaleladder.core.pipeline import Runner
        from scaleladder.core.store import Store
        Runner(Store({str(tmp_path / 'store')!r}), executor="process", progress=False).run(
            {{"p": R.pid_then_sleep.bind(pidfile={str(pidfile)!r}, seconds=120.0)}})
        """)
    driver = subprocess.Popen([sys.executable, "-c", code], env=ENV)
    t0 = time.monotonic()
    while not pidfile.exists() and time.monotonic() - t0 < 60:
        time.sleep(0.2)
    assert pidfile.exists()
    worker = int(pidfile.read_text())
    children = [p.name for p in Path("/proc").iterdir() if p.name.isdigit()
                and _parent_of(p) == driver.pid]
    assert str(worker) in children          # the pool worker (and the resource tracker) are its
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    t0 = time.monotonic()
    alive = lambda pid: Path(f"/proc/{pid}").exists() and \
        Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    while time.monotonic() - t0 < 15 and (alive(worker) or any(alive(int(c)) for c in children)):
        time.sleep(0.2)
    assert not alive(worker), "the pool worker outlived its driver"
    assert not any(alive(int(c)) for c in children), "a child of the driver outlived it"


# -------------------------------------------------------------------------------------------------
# 12. long stages checkpoint under the store and resume after a kill
# -------------------------------------------------------------------------------------------------
def test_a_killed_stage_resumes_from_its_checkpoint_under_the_store(tmp_path):
    root = tmp_path / "store"
    log = tmp_path / "log"
    log.mkdir()
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {TESTS!r})
        import _reliability_stages as R
        from scaleladder.core.pipeline import Runner
        from scaleladder.core.store import Store
        r = Runner(Store({str(root)!r}), progress=False)
        print(r.run({{"r": R.resumable.bind(n_steps=40, dt=0.1, log={str(log)!r})}}))
        """)
    p = subprocess.Popen([sys.executable, "-c", code], env=ENV)
    node = R.resumable.bind(n_steps=40, dt=0.1, log=str(log))
    state = root / "checkpoints" / node.key / "state.json"
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        if state.exists() and json.loads(state.read_text())["next"] >= 10:
            break
        time.sleep(0.1)
    p.send_signal(signal.SIGKILL)
    p.wait()
    r = Runner(Store(root), progress=False)
    out = r.run({"r": node})["r"]
    assert out["resumed_at"] >= 10 and out["done"] == list(range(40))
    assert not (root / "checkpoints" / node.key).exists()   # cleaned once the result is stored


def test_magnet_scan_checkpoints_without_any_environment_variable(tmp_path):
    from scaleladder.ladders import get_ladder

    assert not [k for k in os.environ if k.startswith("SCALELADDER_")]
    spec = get_ladder("magnet")
    settings = spec.resolve(strings={"mc.sizes": "3,4,5", "mc.n_temperatures": "3",
                                     "mc.n_sweeps": "300", "mc.n_thermalize": "30",
                                     "mc.n_bootstrap": "10"})
    nodes = spec.build(settings)
    scan = [n for n in _walk(nodes.values()) if n.stage.name == "magnet.binder_scan"][0]
    deps = {arg: Runner(Store(tmp_path / "s"), progress=False).run({"d": d})["d"]
            for arg, d in scan.deps.items()}
    with run_context(store_root=str(tmp_path / "s"), checkpoint=str(tmp_path / "ck")):
        first = scan.stage.fn(**scan.params, **deps)
    files = list((tmp_path / "ck").rglob("*.npz"))
    assert len(files) >= 9          # one per size and temperature
    with run_context(store_root=str(tmp_path / "s"), checkpoint=str(tmp_path / "ck")):
        again = scan.stage.fn(**scan.params, **deps)       # resumes from the checkpoints
    assert again["binder"] == first["binder"]


def _walk(nodes):
    stack, seen = list(nodes), set()
    while stack:
        n = stack.pop()
        if n.key in seen:
            continue
        seen.add(n.key)
        yield n
        stack.extend(n.dependencies())


# -------------------------------------------------------------------------------------------------
# 13. progress in a log file
# -------------------------------------------------------------------------------------------------
def test_progress_prints_plain_lines_while_running_when_not_a_terminal(tmp_path):
    log = tmp_path / "run.log"
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {TESTS!r})
        import _reliability_stages as R
        from scaleladder.core.pipeline import Runner
        from scaleladder.core.store import Store
        Runner(Store({str(tmp_path / 'store')!r}), progress=True, progress_interval_s=0.5).run(
            {{"s": R.slow.bind(x=1.0, seconds=3.0)}})
        """)
    with open(log, "w") as fh:
        p = subprocess.Popen([sys.executable, "-c", code], env=ENV, stderr=fh, stdout=fh)
        t0 = time.monotonic()
        # while the stage still runs, the log already shows it
        while time.monotonic() - t0 < 30 and "running: rel.slow" not in log.read_text():
            time.sleep(0.2)
        running_seen = "running: rel.slow" in log.read_text()
        assert p.wait(60) == 0
    text = log.read_text()
    assert running_seen and "started: rel.slow" in text and "finished: rel.slow" in text
    assert "\x1b[" not in text       # no terminal control codes in a log


def test_a_worker_with_other_code_refuses_to_compute():
    """A worker (process pool, Dask) that imports other code or engines than the driver would
    store its result under the driver's fingerprint: it refuses, naming what differs."""
    from scaleladder.core.pipeline import _execute

    fp = dict(R.quick.fingerprint)
    other = {**fp, "code": "0" * 64, "engines": {**fp["engines"], "numpy": "0.0.1"}}
    with pytest.raises(ExecutorError, match="runs other code than the driver") as e:
        _execute(R.quick, {"x": 1.0}, {"code": other})
    assert "numpy 0.0.1 ->" in str(e.value)
    value, _ = _execute(R.quick, {"x": 2.0}, {"code": fp})
    assert value["sq"] == 4.0


def test_builtin_silicon_calculators_refuse_another_species_through_the_api():
    from scaleladder.atomistic import SW_SILICON, StillingerWeber, Tersoff

    for cls in (StillingerWeber, Tersoff):
        with pytest.raises(InputError, match="made for silicon only"):
            cls(species="Ge")
    StillingerWeber(dict(SW_SILICON), species="Ge")   # explicit parameters: the user's choice


def test_a_file_edited_behind_a_running_process_does_not_relabel_its_code(tmp_path):
    """Results are labelled with the code in memory: editing a file without reloading it keeps
    the fingerprint (the process still runs the old code); reloading changes it."""
    pkg = tmp_path / "fp_pkg2"
    pkg.mkdir()
    mod_path = pkg / "fpmod_rel2.py"
    _write_module(mod_path, stage="fp.compute2", offset=1, unrelated=0, doc="one")
    sys.path.insert(0, str(pkg))
    try:
        mod = importlib.import_module("fpmod_rel2")
        before = mod.compute.fingerprint["code"]
        _write_module(mod_path, stage="fp.compute2", offset=9, unrelated=0, doc="one")  # edited
        assert mod.compute.fingerprint["code"] == before
        assert mod.compute(1) == 4                                     # old code still runs
        mod = importlib.reload(mod)
        assert mod.compute.fingerprint["code"] != before and mod.compute(1) == 20
    finally:
        sys.path.remove(str(pkg))
        sys.modules.pop("fpmod_rel2", None)


def test_vacancy_diffusion_refuses_tiny_defect_supercells_too(tmp_path):
    out = _cli("run", "vacancy-diffusion", "--set", "supercell=1,1,1", "--store",
               str(tmp_path / "s"))
    assert out.exit_code == 2 and "at least 32" in " ".join(out.output.split())
    assert not (tmp_path / "s").exists()
