"""The ``qmmm-water`` ladder: a tiny cluster at HF/sto-3g through the CLI and the store.

Physics checks that do not depend on the level of theory:
* mechanical embedding does not polarise the QM density and its fixed-charge QM-MM Coulomb is the
  same for the neutral and the cation, so its IE with one QM molecule equals the isolated
  solute's IE exactly;
* electrostatic embedding shifts the IE away from the gas-phase value (the environment's field);
* point and Gaussian-smeared charges agree closely for one QM molecule (the charges sit > 1.5 Å
  from the QM nuclei);
* the result's sources are the two documented ones and the budget sums to 1.
"""
from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from scaleladder.cli.main import app
from scaleladder.core.errors import InputError
from scaleladder.core.store import Store
from scaleladder.ladders import get_ladder

runner = CliRunner()
TINY = ["system.n_waters=4", "qm.sizes=1,2", "qm.basis=sto-3g", "qm.xc=HF", "qm.conv_tol=1e-10"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    store = tmp_path_factory.mktemp("qmmm") / "store"
    args = ["run", "qmmm-water", "--store", str(store), "--quiet"]
    for s in TINY:
        args += ["--set", s]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    st = Store(store)
    run = st.get_run("latest")
    results = {k: st.get(v) for k, v in run["targets"].items()}
    return out.output, results, store, args


def test_mechanical_embedding_ie_equals_the_isolated_molecule(tiny_run):
    _, res, _, _ = tiny_run
    assert res["ie_mechanical_1"]["ie_eV"] == pytest.approx(res["gas"], abs=1e-6)


def test_electrostatic_embedding_shifts_the_ie_and_smearing_barely_matters(tiny_run):
    _, res, _, _ = tiny_run
    ee, sm = res["ie_electrostatic_1"]["ie_eV"], res["ie_electrostatic-smeared_1"]["ie_eV"]
    assert abs(ee - res["gas"]) > 0.05
    assert abs(ee - sm) < 0.2 * abs(ee - res["gas"])
    assert res["ie_electrostatic_1"]["hole_on_solute"] == pytest.approx(1.0, abs=1e-6)


def test_estimate_sources_budget_and_summary(tiny_run):
    output, res, store, args = tiny_run
    ie = res["ie"]
    assert ie.unit == "eV" and set(ie.sources) == {"qm_region", "embedding"}
    assert float(ie.value) == res["ie_electrostatic_2"]["ie_eV"]
    sigma_region = abs(res["ie_electrostatic_2"]["ie_eV"] - res["ie_electrostatic_1"]["ie_eV"])
    assert ie.variances["qm_region"] == pytest.approx(sigma_region ** 2, rel=1e-9)
    assert sum(ie.budget().values()) == pytest.approx(1.0)
    assert "weakest link" in output and "Vertical ionisation energy" in output
    again = runner.invoke(app, args)
    assert re.search(r"0 stages computed", again.output), again.output
    bud = runner.invoke(app, ["budget", "latest", "--store", str(store)])
    assert bud.exit_code == 0 and "qm_region" in bud.output


@pytest.mark.parametrize("key, value, match", [
    ("qm.sizes", (2, 1), "increasing"),
    ("qm.sizes", (1,), "at least two"),
    ("system.n_waters", 1, "n_waters"),
    ("qm.charge_width", 5.0, "charge_width"),
    ("mm.model", "tip5p", "mm.model"),
])
def test_bad_settings_name_the_field(key, value, match):
    with pytest.raises(InputError, match=match):
        get_ladder("qmmm-water").resolve(overrides={key: value})


def test_qm_region_must_leave_an_environment():
    with pytest.raises(InputError, match="qm.sizes"):
        get_ladder("qmmm-water").resolve(overrides={"system.n_waters": 4, "qm.sizes": (1, 4)})


def test_report_of_a_non_flagship_ladder_has_its_budget(tiny_run, tmp_path):
    _, _, store, _ = tiny_run
    out = runner.invoke(app, ["report", "latest", "--store", str(store), "--html",
                              str(tmp_path / "r.html"), "--png-dir", str(tmp_path / "png")])
    assert out.exit_code == 0, out.output
    page = (tmp_path / "r.html").read_text()
    assert "Vertical ionisation energy" in page and "data:image/png;base64" in page
    assert (tmp_path / "png" / "budget.png").stat().st_size > 1000


def test_run_passes_configuration_with_the_task_not_through_the_environment(tiny_run):
    """`scaleladder run` sets no environment variable (a Dask worker elsewhere never sees one):
    folders reach the stages through the run context of each task."""
    import os

    assert not [k for k in os.environ if k.startswith("SCALELADDER_")]
