"""The ``water-cg`` ladder on a tiny box through the CLI and the store (the defaults run in the
slow suite: tests/test_ladders_defaults.py)."""
from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from scaleladder.cli.main import app
from scaleladder.core.errors import InputError
from scaleladder.core.store import Store
from scaleladder.handoffs import CGPotential, CGTrajectory
from scaleladder.ladders import get_ladder

runner = CliRunner()
TINY = ["system.n_molecules=64", "aa.cutoff=6.0", "cg.r_max=6.0", "aa.equilibration_ps=0.2",
        "aa.production_ps=0.8", "aa.frame_every_fs=20", "cg.iterations=2", "cg.steps=500",
        "cg.production_steps=1000"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    store = tmp_path_factory.mktemp("wcg") / "store"
    args = ["run", "water-cg", "--store", str(store), "--quiet"]
    for s in TINY:
        args += ["--set", s]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    st = Store(store)
    run = st.get_run("latest")
    res = {k: st.get(v) for k, v in run["targets"].items()}
    res["_store"] = store
    return res


@pytest.mark.slow
def test_handoffs_cross_as_typed_objects_with_their_state_point(tiny):
    aa = tiny["aa_300"]
    traj = aa["trajectory"]
    assert isinstance(traj, CGTrajectory) and traj.has_forces
    assert traj.n_beads == 64 and traj.temperature_K == 300.0
    # mapped forces sum to ~zero over the box (Newton's third law survives the mapping)
    assert np.max(np.abs(traj.forces.sum(axis=1))) < 1e-6 * np.abs(traj.forces).max() * 64
    for m in ("ibi", "fm", "re"):
        pot = tiny[f"fit_{m}"]["potential"]
        assert isinstance(pot, CGPotential) and pot.temperature_K == 300.0
        assert pot.density_per_A3 == pytest.approx(traj.density_per_A3)
    # runs away from 300 K are flagged, the fit temperature's are not
    assert tiny["check_ibi_300"]["flags"] == []
    assert tiny["check_ibi_360"]["flags"] and "temperature" in tiny["check_ibi_360"]["flags"][0]


@pytest.mark.slow
def test_prediction_budget_has_the_documented_sources(tiny):
    pred = tiny["prediction"]
    assert set(pred) == {"280", "360"}
    for T, p in pred.items():
        other = "360" if T == "280" else "280"
        for name in ("nc", "density"):
            est = p[name]
            assert set(est.sources) == {"cg_method", "transferability", "sampling"}
            assert sum(est.budget().values()) == pytest.approx(1.0)
        # the transferability sigma at 280 K is the error measured at 360 K, and vice versa
        errs = [tiny[f"check_{m}_{other}"]["nc_cg"] - tiny[f"check_{m}_{other}"]["nc_aa"]
                for m in ("ibi", "fm", "re")]
        assert p["nc_sigma_transfer"] == pytest.approx(np.sqrt(np.mean(np.square(errs))))
        derr = [tiny[f"density_{m}_{other}"]["density_g_cm3"] - 0.997 for m in ("ibi", "fm", "re")]
        assert p["density_sigma_transfer"] == pytest.approx(np.sqrt(np.mean(np.square(derr))))
        assert p["density"].unit == "g/cm^3" and p["density_aa"] == 0.997
        # the NPT runs held the atomistic pressure: a density, not the box's by construction
        d = tiny[f"density_ibi_{T}"]
        assert d["beads"] == 8 * 64 and d["density_err_g_cm3"] > 0


@pytest.mark.slow
def test_budget_command_finds_the_nested_predictions(tiny):
    out = runner.invoke(app, ["budget", "latest", "--store", str(tiny["_store"])])
    assert out.exit_code == 0, out.output
    for T in ("280", "360"):
        assert f"prediction.{T}.density" in out.output and f"prediction.{T}.nc" in out.output
    assert "transferability" in out.output


def test_settings_are_validated_before_any_work():
    lad = get_ladder("water-cg")
    with pytest.raises(InputError, match="cg.r_max"):
        lad.resolve({"system.n_molecules": 64, "cg.r_max": 9.0})      # box 12.4 Å
    with pytest.raises(InputError, match="state.test_K"):
        lad.resolve({"state.test_K": (300, 360)})
    with pytest.raises(InputError, match="state.test_K"):
        lad.resolve({"state.test_K": (100,)})
    with pytest.raises(InputError, match="aa.frame_every_fs"):
        lad.resolve({"aa.production_ps": 0.5, "aa.frame_every_fs": 100.0})
