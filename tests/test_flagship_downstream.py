"""The flagship's atomistic and continuum stages on a synthetic 'DFT' dataset (no PySCF).

The reference data come from Stillinger-Weber itself with known, perturbed parameters (one set per
'functional'), so the fitted potential, the elastic constants, the surface energy and the critical
stress have known answers, and every source of the budget can be checked for what it must be.
"""
from __future__ import annotations


import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from scaleladder.atomistic import StillingerWeber, SW_SILICON
from scaleladder.workflows.silicon import (silicon_ev_set, silicon_heldout_set, silicon_rattle_set,
                                          silicon_strain_set)
from scaleladder.handoffs import ReferenceDataset
from scaleladder.continuum import richardson
from scaleladder.ladders import silicon_fracture as sf


def _synthetic_dataset(scale_eps: float, scale_lambda: float, xc: str, noise: bool = True):
    """SW data with known parameters plus seeded Gaussian noise (2 meV/atom, 0.02 eV/Å, 0.05 GPa),
    so the fit has a real posterior width and the ensemble source is not empty."""
    from scaleladder.core.units import EV_PER_A3_IN_GPA

    rng = np.random.default_rng(7)
    params = dict(SW_SILICON)
    params["epsilon"] *= scale_eps
    params["lambda"] *= scale_lambda
    calc = StillingerWeber(params)
    atoms_list, labels, names = [], [], []
    biax = silicon_strain_set(5.43, strain_step=0.01, patterns=("biaxial_xy",))
    for at in biax:
        at.info["label"], at.info["name"] = "strain_heldout", "heldout_" + at.info["name"]
    sets = [silicon_ev_set(5.43, n=7, span=0.06),
            silicon_strain_set(5.43, strain_step=0.01, patterns=("uniaxial_xx", "shear_yz")),
            biax, silicon_rattle_set(5.43, n=3, amplitude=0.05, seed=0), silicon_heldout_set(5.43, seed=1)]
    for s in sets:
        for at in s:
            at.calc = calc
            e, f, st = at.get_potential_energy(), at.get_forces(), at.get_stress()
            if noise:
                e = e + 0.002 * len(at) * rng.standard_normal()
                f = f + 0.02 * rng.standard_normal(f.shape)
                st = st + 0.05 / EV_PER_A3_IN_GPA * rng.standard_normal(6)
            at.calc = SinglePointCalculator(at, energy=e, forces=f, stress=st)
            atoms_list.append(at)
            labels.append(at.info["label"])
            names.append(at.info["name"])
    return ReferenceDataset.from_atoms(atoms_list, method={"code": "synthetic-SW", "xc": xc,
                                                           "atom_energy_eV": 0.0},
                                       labels=labels, names=names), params


@pytest.fixture(scope="module")
def chain():
    ds_main, p_main = _synthetic_dataset(1.03, 1.05, "main")
    ds_alt, p_alt = _synthetic_dataset(0.98, 1.00, "alt")
    out = {"p_main": p_main, "p_alt": p_alt}
    for tag, ds, ens in (("main", ds_main, True), ("alt", ds_alt, False)):
        fp = sf.fit_stillinger_weber(ds, n_ensemble=4, seed=0)
        out[f"fit_{tag}"] = fp
        out[f"el_{tag}"] = sf.sw_elastic_constants(fp, strain_step=0.005, ensemble=ens)
        out[f"su_{tag}"] = sf.sw_surface_energy(fp, layers=4, ensemble=ens)
    out["a0"] = sf.sw_lattice_constant(out["fit_main"])
    out["ds_main"] = ds_main
    out["transfer"] = sf.sw_transferability(out["fit_main"], ds_main)
    out["comb"] = sf.combine_sources(out["el_main"], out["el_alt"], out["su_main"], out["su_alt"],
                                     out["transfer"], out["a0"])
    out["fe"] = sf.fe_critical_stress(out["comb"], a=1e-3, width_ratio=5.0, height_ratio=3.0,
                                      levels=(0, 1, 2))
    return out


def test_fit_recovers_the_generating_parameters_within_its_error_bars(chain):
    fp = chain["fit_main"]
    pe = fp.parameter_estimate()
    for i, name in enumerate(fp.fitted):
        sd = float(np.std(fp.ensemble[:, i], ddof=1))
        assert sd > 0
        assert abs(fp.parameters[name] - chain["p_main"][name]) < 5 * sd + 1e-9, name
        assert pe[i].value == fp.parameters[name]


def test_elastic_constants_are_those_of_the_fitted_parameters(chain):
    """The stage's nominal C equals a direct calculation with the fitted parameters, and it is close
    to the generating parameters' C (the fit is good to its noise)."""
    from ase.build import bulk

    from scaleladder.atomistic import elastic_constants
    from scaleladder.atomistic.properties import relax_lattice_constant

    def direct(params):
        calc = StillingerWeber(params)
        at = bulk("Si", "diamond", a=5.43, cubic=True)
        a0 = relax_lattice_constant(at, calc)
        at = bulk("Si", "diamond", a=a0, cubic=True)
        return elastic_constants(at, calc, relax_ions=True).voigt.value

    got = chain["el_main"].voigt.value
    np.testing.assert_allclose(got, direct(dict(chain["fit_main"].parameters)), rtol=1e-6, atol=1e-6)
    assert "fit ensemble" in chain["el_main"].voigt.sources
    sd = np.asarray(chain["el_main"].voigt.std)
    assert sd[0, 0] > 0
    # the truth lies within the fit ensemble's error bars (5 σ: 16 members estimate σ to ~20 %)
    true = direct(chain["p_main"])
    for idx in ((0, 0), (0, 1), (3, 3)):
        assert abs(got[idx] - true[idx]) < 5 * sd[idx], (idx, got[idx], true[idx], sd[idx])


def test_budget_sources_have_their_stated_sizes(chain):
    """Each source's standard deviation is what its construction says: transferability σ_C = r·C and
    σ_γ = δE/A_s; mesh σ = ½·σ_c·(error of G)/G; the functional's two samples are the two chains."""
    from scaleladder.core.units import EV_PER_A2_IN_J_PER_M2

    sig = chain["fe"]["sigma_c"]
    assert set(sig.sources) == {sf.XC, sf.FIT, sf.TRANSFER, sf.MESH}
    assert sig.unit == "MPa"
    tr = chain["transfer"]
    C = chain["comb"]["elastic"].voigt
    r = tr["elastic"]["stress_rel_rmse"]
    np.testing.assert_allclose(np.sqrt(C.variances[sf.TRANSFER]), r * np.abs(C.value), rtol=1e-10, atol=1e-12)
    g = chain["comb"]["surface"].value
    area = chain["a0"] ** 2 * np.sqrt(3) / 4
    assert np.sqrt(g.variances[sf.TRANSFER]) == pytest.approx(
        tr["distorted"]["energy_rmse"] / area * EV_PER_A2_IN_J_PER_M2, rel=1e-10)
    mesh = chain["fe"]["mesh"]
    assert np.sqrt(sig.variances[sf.MESH]) == pytest.approx(
        0.5 * sig.value * mesh["error_estimate"] / mesh["G"][-1], rel=1e-10)
    # the fit ensemble's share is non-zero: the noisy data give the fit a real posterior
    assert sig.variances[sf.FIT] > 0


def test_functional_source_is_the_alternative_chain(chain):
    """The functional samples are the two chains' nominal σ_c: σ ∝ sqrt(γ/g(C))."""
    sig = chain["fe"]["sigma_c"]
    samples = sig.sources[sf.XC]
    assert samples[0] == pytest.approx(sig.value, rel=1e-12)
    # the alternative chain has a smaller ε: weaker bonds, lower γ, lower σ_c
    assert samples[1] < samples[0]
    g_ratio = chain["su_alt"].value.value / chain["su_main"].value.value
    assert g_ratio == pytest.approx(0.98 / 1.03, rel=2e-2)


def test_fe_matches_closed_form_and_converges(chain):
    fe = chain["fe"]
    assert abs(fe["fe_vs_closed_rel"]) < 0.02
    assert fe["sigma_c"].value == pytest.approx(fe["sigma_c_closed_form"].value, rel=0.01)
    assert fe["mesh"]["observed_rate"] > 1.0
    assert fe["mesh"]["error_estimate"] / fe["mesh"]["G"][-1] < 1e-2


def test_sigma_c_against_an_independent_closed_form(chain):
    """σ_c from the FE stage vs Griffith–Sih–Paris–Irwin built independently from the same C and γ
    through the continuum API (only the FE discretisation and Tada's isotropic F differ: < 1 %)."""
    from scaleladder.continuum import crack_frame_111, griffith_critical_stress, plane_strain_stiffness

    C = chain["comb"]["elastic"].to_pa()
    C2d = plane_strain_stiffness(C, crack_frame_111())
    gam = chain["comb"]["surface"].value.value
    ref = griffith_critical_stress(gam, C2d, 1e-3, half_width=5e-3) / 1e6
    assert chain["fe"]["sigma_c"].value == pytest.approx(ref, rel=0.01)
    assert chain["fe"]["sigma_c_closed_form"].value == pytest.approx(ref, rel=1e-9)


def test_richardson_extrapolation():
    """Pure power law v = 1 + c h^p: rate p and the exact limit; diverging or oscillating sequences
    are not extrapolated and report the last difference as the error."""
    h = np.array([1.0, 0.5, 0.25])
    out = richardson((0, 1, 2), 1.0 + 0.3 * h ** 3)
    assert out["observed_rate"] == pytest.approx(3.0, rel=1e-10)
    assert out["extrapolated"] == pytest.approx(1.0, rel=1e-12)
    assert out["extrapolation_trusted"]
    grow = richardson((0, 1, 2), [1.0, 1.10, 1.22])
    assert not grow["extrapolation_trusted"]
    assert grow["extrapolated"] == 1.22 and grow["error_estimate"] == pytest.approx(0.12)
    osc = richardson((0, 1, 2), [1.0, 1.1, 1.05])
    assert not osc["extrapolation_trusted"] and osc["error_estimate"] == pytest.approx(0.05)


def test_cli_budget_show_report_on_a_stored_run(chain, tmp_path):
    """budget / show / report work on a run in a store (here the synthetic chain, stored by hand)."""
    import hashlib

    from typer.testing import CliRunner

    from scaleladder.cli.main import app
    from scaleladder.core.store import Store
    from scaleladder.handoffs import EquationOfState

    ds_main, _ = _synthetic_dataset(1.03, 1.05, "main")
    ds_alt, _ = _synthetic_dataset(0.98, 1.00, "alt")

    def eos(ds):
        ev = ds.select("ev")
        return EquationOfState.fit(ev.volumes_per_atom, ev.energies_per_atom, structure="diamond")

    results = {"dataset": ds_main, "dataset_alt": ds_alt, "eos": eos(ds_main), "eos_alt": eos(ds_alt),
               "potential": chain["fit_main"], "potential_alt": chain["fit_alt"],
               "elastic": chain["el_main"], "surface": chain["su_main"], "a0_potential": chain["a0"],
               "transferability": chain["transfer"],
               "combined": chain["comb"], "fracture": chain["fe"]}
    store = Store(tmp_path / "store")
    targets = {}
    for name, value in results.items():
        key = hashlib.sha256(name.encode()).hexdigest()
        store.put(key, value, stage=f"test.{name}", version="1", params={}, inputs={}, elapsed_s=0.0)
        targets[name] = key
    spec = sf.LADDER
    run_id = store.add_run("silicon-fracture", spec.resolve(), targets)
    runner = CliRunner()
    res = runner.invoke(app, ["budget", run_id, "--store", str(tmp_path / "store")])
    assert res.exit_code == 0, res.output
    assert "weakest handoff" in res.output and "sigma_c" in res.output
    res = runner.invoke(app, ["show", "latest:elastic", "--store", str(tmp_path / "store")])
    assert res.exit_code == 0, res.output
    assert "GPa" in res.output and "test.elastic" in res.output
    html = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "latest", "--html", str(html), "--png-dir", str(tmp_path / "png"),
                              "--store", str(tmp_path / "store")])
    assert res.exit_code == 0, res.output
    text = html.read_text()
    assert "data:image/png;base64" in text and "Error budget" in text
    assert {p.name for p in (tmp_path / "png").iterdir()} >= {"equation_of_state.png", "fit_parity.png",
                                                               "stress_field.png", "budget.png"}
    res = runner.invoke(app, ["budget", "nonexistent-run", "--store", str(tmp_path / "store")])
    assert res.exit_code == 2 and run_id in res.output


def test_inconsistent_data_give_a_clear_fit_error():
    """Every configuration carrying the SAME energy and stress (a classic bookkeeping slip: one
    calculator shared by all Atoms) cannot be fitted; the error says so instead of crashing inside
    the potential."""
    from scaleladder.atomistic import fit_potential
    from scaleladder.core.errors import ConvergenceError

    params = dict(SW_SILICON, epsilon=SW_SILICON["epsilon"] * 1.03, **{"lambda": SW_SILICON["lambda"] * 1.05})
    calc = StillingerWeber(params)
    atoms_list = (silicon_ev_set(5.43, n=7, span=0.06) + silicon_strain_set(5.43, strain_step=0.01)
                  + silicon_rattle_set(5.43, n=3, amplitude=0.05, seed=0) + silicon_heldout_set(5.43, seed=1))
    for at in atoms_list:
        at.calc = calc
        at.get_potential_energy(), at.get_forces(), at.get_stress()
    ds = ReferenceDataset.from_atoms(atoms_list, method={"atom_energy_eV": 0.0},
                                     labels=[a.info["label"] for a in atoms_list],
                                     names=[a.info["name"] for a in atoms_list])
    with pytest.raises(ConvergenceError, match="bound|determine"):
        fit_potential(ds, n_ensemble=4, heldout_labels=("heldout",))


def test_transferability_groups_agree_with_the_fit_s_own_errors(chain):
    """potential_errors (calculator path) reproduces the fit's held-out errors (fitting path) when
    given the same configurations: two implementations of one quantity."""
    from scaleladder.atomistic import potential_errors

    fp = chain["fit_main"]
    both = potential_errors(fp, chain["ds_main"], sf.HELDOUT_LABELS)
    for key in ("energy_rmse", "force_rmse", "stress_rmse", "stress_rel_rmse"):
        assert both[key] == pytest.approx(fp.errors["heldout"][key], rel=1e-8), key
    # noise-level errors on held-out strains (the synthetic data are SW itself plus 0.05 GPa noise)
    assert chain["transfer"]["elastic"]["stress_rmse"] < 0.2


def test_dask_executor_gives_the_local_results_on_the_flagship_stages(tmp_path):
    """The flagship's own stages (fit -> C, γ -> budget -> FE σ_c) through a Dask LocalCluster
    give bit-identical results to the in-process runner."""
    distributed = pytest.importorskip("distributed")
    from scaleladder.core.pipeline import Runner
    from scaleladder.core.store import Store

    ds_main, _ = _synthetic_dataset(1.03, 1.05, "main")
    ds_alt, _ = _synthetic_dataset(0.98, 1.00, "alt")

    def dag():
        fits = {t: sf.fit_stillinger_weber.bind(dataset=d, n_ensemble=3, seed=0)
                for t, d in (("main", ds_main), ("alt", ds_alt))}
        el = {t: sf.sw_elastic_constants.bind(potential=f, strain_step=0.005, ensemble=(t == "main"))
              for t, f in fits.items()}
        su = {t: sf.sw_surface_energy.bind(potential=f, layers=4, ensemble=(t == "main"))
              for t, f in fits.items()}
        comb = sf.combine_sources.bind(c_main=el["main"], c_alt=el["alt"], g_main=su["main"],
                                       g_alt=su["alt"],
                                       transferability=sf.sw_transferability.bind(potential=fits["main"],
                                                                                  dataset=ds_main),
                                       a0=sf.sw_lattice_constant.bind(potential=fits["main"]))
        return {"fe": sf.fe_critical_stress.bind(combined=comb, a=1e-3, width_ratio=5.0,
                                                 height_ratio=3.0, levels=(0, 1))}

    local = Runner(Store(tmp_path / "local"), progress=False).run(dag())["fe"]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        remote = Runner(Store(tmp_path / "dask"), executor=client, progress=False).run(dag())["fe"]
    assert remote["sigma_c"].identical(local["sigma_c"])
    np.testing.assert_equal(remote["mesh"], local["mesh"])  # NaN rate (two levels) compares equal
