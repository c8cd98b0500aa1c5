"""The one simulation protocol and driver (issue 10, item 1).

For each engine on the driver: a run of 2N steps equals, bit for bit, a run of N steps whose
process is then SIGKILLed, resumed from its checkpoint and run N more.  Blow-up checks keep the
last good state; corrupt checkpoints are refused (tests/test_checkpoint.py).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from scaleladder.core.errors import CalculationError, InputError
from scaleladder.core.simulation import (read_simulation_checkpoint, resume_simulation,
                                         run_simulation, seeded_rng_state)

TESTS = str(Path(__file__).parent)
sys.path.insert(0, TESTS)
import _simulation_engines as E  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": TESTS + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _run_then_get_killed(code: str, ckpt: Path, tmp_path: Path) -> None:
    """Run ``code`` (which does N steps with checkpoints, then waits) in a child, SIGKILL it."""
    flag = tmp_path / "done.flag"
    full = textwrap.dedent(code) + f"\nopen({str(flag)!r}, 'w').close()\nimport time\ntime.sleep(600)\n"
    p = subprocess.Popen([sys.executable, "-c", full], env=ENV)
    t0 = time.monotonic()
    while not flag.exists() and time.monotonic() - t0 < 120:
        if p.poll() is not None:
            raise AssertionError(f"the child exited with {p.returncode}")
        time.sleep(0.05)
    assert flag.exists() and ckpt.exists()
    p.send_signal(signal.SIGKILL)
    p.wait()


def test_toy_engine_2n_equals_n_killed_resumed_n(tmp_path):
    n = 60
    state0 = E.OUState(x=np.zeros(5), rng=seeded_rng_state(7))
    full = run_simulation(E.OU(), state0, 2 * n, observe_every=7)
    ck = tmp_path / "ou.npz"
    _run_then_get_killed(f"""
        import sys; sys.path.insert(0, {TESTS!r})
        import numpy as np, _simulation_engines as E
        from scaleladder.core.simulation import run_simulation, seeded_rng_state
        run_simulation(E.OU(), E.OUState(x=np.zeros(5), rng=seeded_rng_state(7)), {n},
                       observe_every=7, checkpoint={str(ck)!r}, checkpoint_every=11)
        """, ck, tmp_path)
    resumed = resume_simulation(ck, n, observe_every=7)
    assert resumed.state.step == 2 * n
    assert resumed.state.x.tobytes() == full.state.x.tobytes()
    assert resumed.state.rng == full.state.rng
    # observations every 7 steps of each call: the resumed history is the first run's plus the
    # second call's, and agrees with the full run wherever both observed the same step
    both = sorted(set(full.history["step"]) & set(resumed.history["step"]))
    f = dict(zip(full.history["step"], full.history["mean_x2"]))
    r = dict(zip(resumed.history["step"], resumed.history["mean_x2"]))
    assert len(both) >= 10 and all(f[k] == r[k] for k in both)


def test_phase_field_2n_equals_n_killed_resumed_n(tmp_path):
    from scaleladder.mesoscale import phasefield as pf

    grid = pf.SpectralGrid((32, 32), 1.0)
    rng = np.random.default_rng(2)
    init = 0.5 + 0.05 * rng.standard_normal(grid.shape)
    np.save(tmp_path / "init.npy", init)
    model = pf.CahnHilliard(0.5, 1.0, 1.0)
    full = pf.run_phasefield(model, grid, init, 0.1, 80, energy_every=5)
    ck = tmp_path / "pf.npz"
    _run_then_get_killed(f"""
        import numpy as np
        from scaleladder.mesoscale import phasefield as pf
        grid = pf.SpectralGrid((32, 32), 1.0)
        pf.run_phasefield(pf.CahnHilliard(0.5, 1.0, 1.0), grid,
                          np.load({str(tmp_path / 'init.npy')!r}), 0.1, 40, energy_every=5,
                          checkpoint={str(ck)!r}, checkpoint_every=10)
        """, ck, tmp_path)
    resumed = pf.resume_phasefield(ck, 40, energy_every=5)
    assert resumed.state.step == 80
    assert resumed.fields.tobytes() == full.fields.tobytes()
    np.testing.assert_array_equal(resumed.energies, full.energies)


def test_kmc_2n_equals_n_killed_resumed_n(tmp_path):
    from scaleladder.mesoscale import kmc

    code_model = """
        from scaleladder.handoffs import EventCatalog, EventType
        from scaleladder.mesoscale import kmc
        from scaleladder.uq import Estimate
        lat = kmc.build_lattice("fcc", 3.6, 4)
        cat = EventCatalog((EventType("hop", Estimate(0.7, "eV"), Estimate(5.0, "1/ps")),))
        model = kmc.KMCModel.build(lat, cat, 900.0)
        """
    ns: dict = {}
    exec(textwrap.dedent(code_model), ns)
    model = ns["model"]
    state0 = kmc.init_vacancies(model.lattice, vacancy_sites=(0, 17), seed=3)
    full = kmc.run_kmc(state0, model, n_events=4000, checkpoint_every=500, progress=False)
    ck = tmp_path / "kmc.npz"
    _run_then_get_killed(textwrap.dedent(code_model) + textwrap.dedent(f"""
        state0 = kmc.init_vacancies(model.lattice, vacancy_sites=(0, 17), seed=3)
        kmc.run_kmc(state0, model, n_events=2000, checkpoint={str(ck)!r}, checkpoint_every=500,
                    progress=False)
        """), ck, tmp_path)
    import shutil
    ck2 = tmp_path / "kmc2.npz"
    shutil.copy(ck, ck2)
    resumed = kmc.run_kmc(kmc.read_checkpoint(ck), model, n_events=2000, checkpoint_every=500,
                          progress=False)
    # the checkpoint stores the engine (model, limits), so the file alone is enough too
    alone = resume_simulation(ck2, 2000, observe_every=500)
    for a in (resumed.state, alone.state):
        b = full.state
        assert a.n_events == b.n_events == 4000 and a.time_s == b.time_s
        for name in ("site_state", "mover_site", "mover_displacement", "atom_displacement",
                     "atom_jumps", "rng"):
            assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name


def test_blow_up_keeps_the_last_good_state(tmp_path):
    ck = tmp_path / "ou.npz"
    state0 = E.OUState(x=np.zeros(3), rng=seeded_rng_state(1))
    with pytest.raises(CalculationError, match="blow-up at step 30") as e:
        run_simulation(E.OU(blow_up_at=30), state0, 100, observe_every=10, checkpoint=ck,
                       checkpoint_every=50)
    assert e.value.last_good.step == 20
    _, state, history = read_simulation_checkpoint(ck)
    assert state.step == 20 and history["step"] == [0, 10, 20]
    assert any("last good state (step 20)" in n for n in e.value.__notes__)


def test_random_streams_are_reproducible_by_default_and_distinct_by_seed():
    assert seeded_rng_state() == seeded_rng_state(0)
    assert seeded_rng_state(1) != seeded_rng_state(2)
    assert seeded_rng_state(1, spawn_key=(0,)) != seeded_rng_state(1, spawn_key=(1,))
    with pytest.raises(InputError, match="seed"):
        seeded_rng_state(-1)


def test_engines_that_do_not_follow_the_protocol_are_refused(tmp_path):
    with pytest.raises(InputError, match="engine"):
        run_simulation(object(), None, 10)
    ck = tmp_path / "x.npz"
    run_simulation(E.OU(), E.OUState(x=np.zeros(2), rng=seeded_rng_state(0)), 5, checkpoint=ck,
                   store_engine=False)
    with pytest.raises(InputError, match="engine"):
        resume_simulation(ck, 5)                     # no engine stored, none given
    out = resume_simulation(ck, 5, engine=E.OU())
    assert out.state.step == 10
    json.dumps(out.history)                          # plain data


def test_the_architecture_docs_engine_example_runs():
    import re

    doc = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert any("run_simulation" in b for b in blocks)
    for code in blocks:
        exec(compile(code, "docs/architecture.md", "exec"), {})  # noqa: S102 - our own docs


@pytest.mark.parametrize("ensemble", ["nvt", "npt"])
def test_md_2n_equals_n_killed_resumed_n(tmp_path, ensemble):
    """MD through the one driver (MDEngine): the Langevin stream and the barostat are in the
    checkpointed state, so a killed and resumed run is the uninterrupted one, bit for bit."""
    from ase.build import bulk

    from scaleladder.atomistic import LennardJones, resume_md, run_md

    kw = dict(ensemble=ensemble, temperature_K=40.0, timestep_fs=5.0, seed=3)
    if ensemble == "npt":
        kw.update(pressure_GPa=0.0, pressure_tau_fs=500.0)
    lj = "LennardJones(epsilon=0.0104, sigma=3.4, rc=8.0)"
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(2)
    full = run_md(atoms, LennardJones(epsilon=0.0104, sigma=3.4, rc=8.0), steps=40,
                  checkpoint_every=10, **kw)
    ck = tmp_path / "md.npz"
    _run_then_get_killed(f"""
        from ase.build import bulk
        from scaleladder.atomistic import LennardJones, run_md
        run_md(bulk("Ar", "fcc", a=5.26, cubic=True).repeat(2), {lj}, steps=20,
               checkpoint={str(ck)!r}, checkpoint_every=10, **{kw!r})
        """, ck, tmp_path)
    rest = resume_md(ck, LennardJones(epsilon=0.0104, sigma=3.4, rc=8.0), 20)
    # NPT: the cell moves every step, so the list is rebuilt every step in both runs; NVT: the
    # engine rebuilds the list at every checkpoint step, where the resumed calculator builds
    # its own, so both runs sum the same pairs in the same order: bit for bit either way
    assert rest.atoms.positions.tobytes() == full.atoms.positions.tobytes()
    assert rest.atoms.get_momenta().tobytes() == full.atoms.get_momenta().tobytes()
    np.testing.assert_array_equal(rest.total_energy, full.total_energy[20:])


@pytest.mark.parametrize("calc_name", ["StillingerWeber", "Tersoff"])
def test_nvt_md_with_many_body_potentials_resumes_bit_for_bit(tmp_path, calc_name):
    """Three-body potentials too: 60 NVT steps == 30 + checkpoint + resume + 30, bit for bit,
    across neighbour-list rebuilds (hot Si, small skin, so the list is rebuilt in between)."""
    from ase.build import bulk

    from scaleladder import atomistic
    from scaleladder.atomistic import resume_md, run_md

    def calc():
        return getattr(atomistic, calc_name)(skin=0.4)

    si = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    kw = dict(ensemble="nvt", temperature_K=1500.0, timestep_fs=1.0, seed=11,
              checkpoint_every=15)
    c = calc()
    full = run_md(si, c, steps=60, **kw)
    assert c.neighbour_builds > 5                  # rebuilt by motion, not only at checkpoints
    run_md(si, calc(), steps=30, checkpoint=tmp_path / "a.npz", **kw)
    rest = resume_md(tmp_path / "a.npz", calc(), 30)
    assert rest.atoms.positions.tobytes() == full.atoms.positions.tobytes()
    assert rest.atoms.get_momenta().tobytes() == full.atoms.get_momenta().tobytes()


def test_spin_mc_2n_equals_n_killed_resumed_n(tmp_path):
    """The spin Monte Carlo engine through the driver: Wolff thermalisation (with its absolute
    adaptation boundaries) and measurement, 2N == N + SIGKILL + resume + N, bit for bit."""
    from scaleladder.core.simulation import run_simulation

    code = f"""
        import sys; sys.path.insert(0, {TESTS!r})
        import numpy as np
        from test_spins import simple_cubic
        from scaleladder.core.units import BOLTZMANN_EV
        from scaleladder.mesoscale import spins as sp
        lat = sp.build_lattice(simple_cubic(), 4)
        engine = sp.SpinMCEngine(lat, heis=True, beta=1 / (BOLTZMANN_EV * 140.0),
                                 algorithm="wolff", overrelax=1, n_thermalize=30, n_sweeps=50,
                                 adapt_every=10, key="k")
        s0 = sp.init_state(lat, "heisenberg", seed=5)
        state0 = sp.SpinMCState(s0.spins, s0.rng, 0, s0.tag, s0.clusters_per_step,
                                np.zeros(50), np.zeros(50), (0, 0, 0), "k")
        """
    ns: dict = {}
    exec(textwrap.dedent(code), ns)
    full = run_simulation(ns["engine"], ns["state0"], 80).state
    ck = tmp_path / "spins.npz"
    _run_then_get_killed(code + f"""
        from scaleladder.core.simulation import run_simulation
        run_simulation(engine, state0, 40, checkpoint={str(ck)!r}, checkpoint_every=20,
                       store_engine=False)
        """, ck, tmp_path)
    rest = resume_simulation(ck, 40, engine=ns["engine"]).state
    assert rest.step == 80
    assert rest.spins.tobytes() == full.spins.tobytes() and rest.rng.tobytes() == full.rng.tobytes()
    assert rest.energies.tobytes() == full.energies.tobytes()
