"""The composite ladder (random fibre RVEs -> transverse moduli with their budget), inverse
design over it, its multifidelity hierarchy through the store, and the command line."""
from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from scaleladder.cli.main import app
from scaleladder.core.errors import InputError
from scaleladder.core.store import Store
from scaleladder.ladders import get_ladder
from scaleladder.ladders.study import LadderQuantity, check_vary, ladder_hierarchy
from scaleladder.uq.multifidelity import estimate_mean
from scaleladder.workflows.design import design

SMALL = {"rve.resolution": 42, "rve.realisations": 2, "composite.fibre_radius": 0.1,
         "mf.coarse_resolution": 22, "mf.fft_resolution": 22}


def test_bad_settings_are_refused_before_any_solve():
    spec = get_ladder("composite")
    with pytest.raises(InputError, match="composite.fraction"):
        spec.resolve({"composite.fraction": 0.6})
    with pytest.raises(InputError, match="rve.resolution"):
        spec.resolve({"rve.resolution": 24, "composite.fibre_radius": 0.1})
    with pytest.raises(InputError, match="mf.fft_resolution"):
        spec.resolve({"mf.fft_resolution": 16})
    with pytest.raises(InputError, match="numeric"):
        check_vary(spec, {"rve.resolution": (32, 64)})
    with pytest.raises(InputError, match="composite.fraction"):
        check_vary(spec, {"composite.fraction": (0.1, 0.7)})
    with pytest.raises(InputError, match="settings"):
        check_vary(spec, {"composite.volume": (0.1, 0.3)})
    with pytest.raises(InputError, match="quantity"):
        LadderQuantity(spec, "stiffness.E_T", settings=SMALL, store=":memory-unused")


def test_design_finds_the_fraction_of_a_target_stiffness_and_reuses_the_store(tmp_path):
    st = Store(tmp_path / "st")
    lq = LadderQuantity("composite", "moduli.E_T", settings=SMALL, store=st)
    d = design(lq, "moduli.E_T=7", {"composite.fraction": (0.2, 0.45)}, n_grid=4,
               evaluate_many=lq.many, log=None, xtol=1e-4)
    f = d.inputs["composite.fraction"]
    assert 0.2 < f < 0.45
    assert d.predicted.value == pytest.approx(7.0, abs=0.02)
    assert len(d.input_interval) == 2 and d.input_interval[0] < f < d.input_interval[1]
    assert not all(e["cached"] for e in d.evaluations)
    # the same design again: every evaluation from the store
    lq2 = LadderQuantity("composite", "moduli.E_T", settings=SMALL, store=st)
    d2 = design(lq2, "moduli.E_T=7", {"composite.fraction": (0.2, 0.45)}, n_grid=4,
                evaluate_many=lq2.many, log=None, xtol=1e-4)
    assert d2.inputs == d.inputs and all(e["cached"] for e in d2.evaluations)
    with pytest.raises(InputError, match="reaches"):
        design(lq, "moduli.E_T=40", {"composite.fraction": (0.2, 0.45)}, n_grid=3,
               evaluate_many=lq.many, log=None)


def test_multifidelity_hierarchy_runs_through_the_store_with_measured_costs(tmp_path):
    st = Store(tmp_path / "st")
    h = ladder_hierarchy("composite", settings=SMALL, store=st)
    assert h.names == ["FEM 42²", "FEM 22²", "FFT 22²", "Mori-Tanaka"]
    res = estimate_mean(h, 3.0, n_pilot=6, log=None)
    # costs are measured wall-clock seconds per evaluation (no ordering asserted: timing on
    # a loaded CI machine is not a physics fact); every level has a positive, finite cost
    assert np.all(np.isfinite(res.pilot.cost_s)) and np.all(res.pilot.cost_s > 0)
    assert res.pilot.rho[1] > 0.5
    assert res.estimate.unit == "GPa" and 5 < res.estimate.value < 10
    # a second pilot on the same realisations is loaded, costs as recorded
    again = ladder_hierarchy("composite", settings=SMALL, store=st)
    from scaleladder.uq.multifidelity import pilot
    p2 = pilot(again, 6)
    assert np.allclose(p2.values, res.pilot.values)
    assert np.allclose(p2.cost_s, res.pilot.cost_s)


@pytest.mark.slow
def test_command_line_design_and_multifidelity(tmp_path):
    runner = CliRunner()
    store = str(tmp_path / "st")
    sets = [a for k, v in SMALL.items() for a in ("--set", f"{k}={v}")]
    out = runner.invoke(app, ["design", "composite", "--target", "moduli.E_T=7", "--vary",
                              "composite.fraction=0.2:0.45", "--grid", "3", "--quiet",
                              "--store", store, "--png", str(tmp_path / "d.png"), *sets])
    assert out.exit_code == 0, out.output
    assert "design design-" in out.output and "input interval" in out.output
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    bad = runner.invoke(app, ["design", "composite", "--target", "moduli.E_T=7", "--vary",
                              "rve.resolution=20:40", "--store", store])
    assert bad.exit_code == 2 and "numeric" in bad.output
    bad = runner.invoke(app, ["design", "composite", "--target", "moduli.E_T~7", "--vary",
                              "composite.fraction=0.2:0.45", "--store", store])
    assert bad.exit_code == 2 and "QUANTITY>=VALUE" in bad.output
    # the budget is in measured seconds: ample room above one high-fidelity sample (0.2-0.3 s
    # idle, more on a loaded machine) so that the test does not depend on the machine's load
    mf = runner.invoke(app, ["multifidelity", "composite", "--budget", "1.5", "--pilot", "4",
                             "--compare", "--store", store, *sets])
    assert mf.exit_code == 0, mf.output
    assert "allocation" in mf.output and "plain Monte Carlo at the same budget" in mf.output
    bad = runner.invoke(app, ["multifidelity", "silicon-fracture", "--budget", "2",
                              "--store", store])
    assert bad.exit_code == 2 and "fidelities" in bad.output


def test_design_batches_run_on_a_process_pool_with_the_same_results(tmp_path):
    pts = [{"composite.fraction": 0.3}, {"composite.fraction": 0.35}]
    local = LadderQuantity("composite", "moduli.E_T", settings=SMALL,
                           store=Store(tmp_path / "a")).many(pts)
    pool = LadderQuantity("composite", "moduli.E_T", settings=SMALL,
                          store=Store(tmp_path / "b"), executor="process").many(pts)
    for (e1, c1), (e2, c2) in zip(local, pool):
        assert not c1 and not c2
        assert e1.value == pytest.approx(e2.value, rel=1e-12)
        assert e1.std == pytest.approx(e2.std, rel=1e-12)
