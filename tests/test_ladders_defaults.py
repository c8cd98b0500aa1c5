"""Every ladder runs with its own default settings (issue 9, item 1).

A ladder that fails with its defaults is the worst first impression a user can get, so each one is
run here exactly as ``scaleladder run <ladder>`` runs it, and its headline numbers are checked
against the physics they must reproduce.  The cheap ones are in the default suite; the flagship
and fracture-phasefield, which reuses the flagship's stages from its store
(tests/test_flagship_slow.py), qmmm-water (PBE0/def2-svp DFT), nanoindentation (three
indentations, one fully atomistic) water-cg (60 ps of atomistic water) and silicon-mlip (active learning with LDA DFT on 8-atom
cells) and hydrogen-embrittlement (KMC cells in every self-consistent iteration, ~2 min)
are in the slow suite (its quick variant runs in tests/test_hydrogen_ladder.py).  The
defects ladder's defaults run in tests/test_reliability.py.
"""
from __future__ import annotations

import math

import numpy as np

import pytest
from typer.testing import CliRunner

from scaleladder.cli.main import app
from scaleladder.core.store import Store
from scaleladder.ladders import available_ladders

runner = CliRunner()
KB = 8.617333262e-5


def _run_defaults(tmp_path, ladder):
    store = tmp_path / "store"
    out = runner.invoke(app, ["run", ladder, "--store", str(store), "--quiet"])
    assert out.exit_code == 0, out.output
    st = Store(store, readonly=True)
    run = st.get_run("latest")
    assert run["ladder"] == ladder
    from scaleladder.ladders import get_ladder

    assert run["settings"] == get_ladder(ladder).defaults
    return {k: st.get(v) for k, v in run["targets"].items()}


def test_every_ladder_is_covered_by_a_defaults_run():
    covered = {"silicon-fracture", "defects", "elastic-constants", "vacancy-diffusion", "magnet",
               "qmmm-water", "polycrystal", "fracture-phasefield", "nanoindentation", "water-cg",
               "composite", "silicon-topology", "thermal-conductivity", "silicon-mlip",
               "hydrogen-embrittlement"}
    assert set(available_ladders()) == covered


@pytest.mark.slow
def test_hydrogen_embrittlement_defaults(tmp_path):
    """About 2 min: H in Ni (NiAlH EAM) -> the crack tip with a 10 s hold and KMC cells ->
    σ_c sequential and two-way, budget, verdict and the pressure scan at 300 K."""
    res = _run_defaults(tmp_path, "hydrogen-embrittlement")
    h = res["hydrogen"]
    assert h["solution"].ground_site == "oct"
    assert 0.4 < float(h["diffusion"].barrier.value.value) < 0.55       # classical, exp 0.41
    c = res["critical"]
    seq, two = float(c["sigma_c_sequential"].value), float(c["sigma_c"].value)
    assert two <= seq * (1 + 1e-9) < c["sigma_c_hydrogen_free"]
    # 1 bar, 300 K: the faces are saturated, so one pass is enough; at 1e-3..10 Pa it is not
    assert c["sequential_enough"] and abs(c["relative_difference"]) < 0.02
    sc = res["scan"]
    d = (np.asarray(sc["two_way"]) - sc["sequential"]) / sc["two_way"]
    assert d.min() < -0.05 and abs(d[-1]) < 0.01
    assert np.all(np.diff(sc["sequential"]) < 0)           # more hydrogen, lower σ_c
    # the KMC ran (a finite hold with strained barriers) and the two-way loop converged
    assert c["two_way"]["converged"] and c["two_way"]["iterations"] >= 3
    assert set(c["sigma_c"].sources) == {"supercell size", "kmc sampling", "mesh",
                                         "process zone", "coupling"}


@pytest.mark.slow
def test_thermal_conductivity_defaults(tmp_path):
    """About 40 s: SW (3³ and 4³ supercells) and Tersoff kappa(T) by phono3py RTA, the heat
    spreader."""
    res = _run_defaults(tmp_path, "thermal-conductivity")
    ka = np.asarray(res["kappa_alt"].scalar().value)
    assert 150 < ka[3] < 400            # Tersoff T3 at 300 K: O(10^2) like MD studies report
    k = res["kappa"]
    s = np.asarray(k.scalar().value)
    T = k.temperatures_K
    assert np.all(np.diff(s) < 0)                                  # Umklapp: falls with T
    kT = s * T
    assert np.ptp(kT[T >= 300]) / kT[T >= 300].mean() < 0.3       # ~1/T at high T
    assert set(k.kappa.sources) == {"q_mesh", "supercell"}
    # the 4x4x4 supercell changes kappa(300 K) by a few per cent only
    sc = k.kappa.sources["supercell"][:, 3, 0, 0]
    assert abs(sc[0] - sc[1]) / np.sqrt(2) < 0.05 * s[3]
    sp = res["spreader"]
    assert set(sp["T_peak"].sources) == {"q_mesh", "mesh", "potential", "supercell"}
    assert sp["T_peak_alt_potential"] > sp["T_peak"].value     # Tersoff T3: lower kappa
    assert sp["rise_K"] > 0
    # k falls with T, so the rise exceeds that of a constant k taken at the sink temperature
    from scaleladder.continuum.heat import solve_heat
    from scaleladder.ladders.thermal_conductivity import _spreader_mesh
    m = _spreader_mesh(10e-3, 0.5e-3, 1e-3, 2)
    const = solve_heat(m, k.at(300.0), dirichlet={"sink": 300.0}, flux={"hotspot": -1e7})
    assert sp["T_peak"].value > const.max_temperature() > 300.0
    assert sp["T_peak"].value - const.max_temperature() < 0.2 * sp["rise_K"]


@pytest.mark.slow
def test_silicon_topology_defaults(tmp_path):
    """About 55 s: the melt-quench MD dominates."""
    t = _run_defaults(tmp_path, "silicon-topology")["topology"]
    c, g = t["crystal"], t["glass"]
    assert c["betti_end"] == [1, 3, 3, 1] and g["betti_end"] == [1, 3, 3, 1]
    assert c["rings"] == {6: 2 * 216} and c["coordination"] == 4.0
    # the glass: a spread of H1 deaths and of ring sizes, 5- and 7-rings as common as 6
    assert g["h1_death_std"] > 0.1 > c["h1_death_std"]
    assert set(g["rings"]) >= {5, 6, 7}
    assert g["rings"][5] + g["rings"][7] > g["rings"][6]
    assert 3.9 < g["coordination"] < 4.6
    assert t["bottleneck_H1"] > 0.1


def test_composite_defaults_give_moduli_inside_the_bounds(tmp_path):
    r = _run_defaults(tmp_path, "composite")["moduli"]
    f = r["fraction_voxel"]
    assert f == pytest.approx(0.4, abs=0.01)
    # aligned continuous fibres: E_L is the rule of mixtures up to the small Poisson-mismatch
    # term (Hill 1964: E_L >= rule of mixtures)
    rom = f * 72.0 + (1 - f) * 3.5
    assert rom <= r["E_L"].value < 1.01 * rom
    lo, hi = r["hashin_shtrikman_G_T"]
    assert lo <= r["G_T"].value <= hi
    klo, khi = r["hashin_shtrikman_k_T"]
    assert klo <= r["k_T"].value <= khi
    # stiffer than Mori-Tanaka (= the lower HS bound for stiff fibres in a soft matrix)
    assert r["G_T"].value > r["mori_tanaka"]["G_T"]
    assert r["mori_tanaka"]["G_T"] == pytest.approx(lo, rel=1e-6)
    for q in ("E_T", "k_T", "G_T", "E_L"):
        assert set(r[q].sources) == {"realisations", "discretisation"} and r[q].unit == "GPa"


def test_elastic_constants_defaults(tmp_path):
    res = _run_defaults(tmp_path, "elastic-constants")
    C = res["elastic"]
    # Stillinger-Weber silicon, relaxed ions (Stillinger & Weber 1985; Cowley 1988):
    # C11 151.4, C12 76.4, C44 56.4 GPa
    assert float(C.voigt.value[0, 0]) == pytest.approx(151.4, rel=0.01)
    assert float(C.voigt.value[0, 1]) == pytest.approx(76.4, rel=0.01)
    assert float(C.voigt.value[3, 3]) == pytest.approx(56.4, rel=0.02)


def test_vacancy_diffusion_defaults(tmp_path):
    res = _run_defaults(tmp_path, "vacancy-diffusion")
    d = res["diffusion"]
    ef, em = float(res["vacancy"].value.value), float(res["migration"].value.value)
    Q = d["Q"]
    sig = math.sqrt(Q.variances["kmc_sampling"])
    assert abs(float(Q.value) - (ef + em)) < 3 * sig + 1e-9   # Arrhenius Q = E_f + E_m
    assert 1.0 < ef < 1.5 and 0.5 < em < 0.9                   # EAM Cu (Mishin-type range)


@pytest.mark.slow
def test_magnet_defaults(tmp_path):
    res = _run_defaults(tmp_path, "magnet")
    tc = res["curie"]["tc"]
    # classical sc Heisenberg: k_B T_c = 1.443 J (Chen, Ferrenberg & Landau 1993), J = 10 meV
    ref = 1.443 * 0.010 / KB
    assert tc.unit == "K" and abs(float(tc.value) / ref - 1) < 0.03
    assert set(tc.sources) == {"exchange", "sampling", "finite_size"}


@pytest.mark.slow
def test_qmmm_water_defaults(tmp_path):
    res = _run_defaults(tmp_path, "qmmm-water")
    ie = res["ie"]
    assert ie.unit == "eV" and set(ie.sources) >= {"qm_region"}
    # PBE0/def2-svp vertical IE of an isolated water: experiment 12.62 eV, PBE0 about 0.3 low
    assert 11.8 < res["gas"] < 12.8
    # mechanical embedding leaves a one-molecule QM region's IE at the isolated molecule's
    assert res["ie_mechanical_1"]["ie_eV"] == pytest.approx(res["gas"], abs=1e-6)
    # electrostatic embedding in the cluster lowers it towards the liquid's (exp. ~11.2 eV)
    assert ie.value < res["gas"]


def test_the_report_knows_no_ladder_by_name():
    """Each ladder declares its report plots, budget sources and headline (LadderSpec); the
    report package names none of them."""
    from pathlib import Path

    import scaleladder.report as report
    from scaleladder.ladders import get_ladder

    text = "".join(p.read_text() for p in Path(report.__file__).parent.rglob("*.py"))
    for name in available_ladders():
        assert name not in text and name.replace("-", "_") not in text, name
        spec = get_ladder(name)
        assert all(len(p) == 4 and callable(p[1]) for p in spec.plots)
    assert get_ladder("silicon-fracture").plots and get_ladder("silicon-fracture").headline


@pytest.mark.slow
def test_polycrystal_defaults(tmp_path):
    """Cu from the EAM constants to a plate with a hole (issue 11): the homogenised moduli lie
    within the bounds and near experiment, the budget names its sources, the part's SCF is the
    finite-width Kirsch value, FE2 yields and keeps Hill-Mandel."""
    import numpy as np

    from scaleladder.continuum import hashin_shtrikman_cubic, isotropic_moduli
    from scaleladder.ladders.polycrystal import CU_EXPERIMENT

    res = _run_defaults(tmp_path, "polycrystal")
    c = np.asarray(res["single_crystal"].voigt.value)
    # Foiles-Baskes-Daw Cu_u3 (fitted to experiment): C11 167, C12 124, C44 76 GPa
    assert c[0, 0] == pytest.approx(167.0, abs=1.5) and c[3, 3] == pytest.approx(76.4, abs=1.0)
    hs = hashin_shtrikman_cubic(c[0, 0], c[0, 1], c[3, 3])
    for which in ("t1", "t2"):
        h = res[f"homogenised_{which}"]
        k, g = isotropic_moduli(np.asarray(h.voigt.value))
        assert k == pytest.approx((c[0, 0] + 2 * c[0, 1]) / 3, rel=1e-3)
        assert hs.shear[0] * 0.99 <= g <= hs.shear[1] * 1.01
        assert g == pytest.approx(CU_EXPERIMENT["shear_GPa"], rel=0.04)
        e = 9 * k * g / (3 * k + g)
        assert e == pytest.approx(CU_EXPERIMENT["youngs_GPa"], rel=0.04)
        assert {"potential", "rve_realisation", "rve_size"} <= set(h.voigt.sources)
        assert h.provenance["hill_mandel_max"] < 1e-10
    p = res["part"]
    assert 2.9 < float(p["scf"].value) < 3.5                # Kirsch 3, finite width raises it
    assert "mesh" in p["scf"].sources and "potential" in p["scf"].sources
    f = res["fe2"]
    assert f["first_yield_step"] is not None and f["hill_mandel_max"] < 1e-6
    assert f["nominal_MPa"] == sorted(f["nominal_MPa"])


@pytest.mark.slow
def test_nanoindentation_defaults(tmp_path):
    """Full atomistics, the adaptive QC at the same size and a larger QC, indented to 7 Å: the
    QC's load within 1 % of the reference's on the elastic branch, every run nucleates a
    dislocation (a load drop), the QC at the reference's depth and load (measured 4.5 Å, 4.652
    against 4.659 eV/Å), the nucleation load carried with the QC error as its one source, the
    large sample at fewer DOFs than atoms."""
    import numpy as np

    res = _run_defaults(tmp_path, "nanoindentation")
    ld = res["load"]
    assert ld["elastic_error"] < 0.01
    nuc = ld["nucleation"]
    assert all(nuc[k] is not None for k in ("reference", "qc", "qc_large"))
    assert nuc["qc"]["depth"] == nuc["reference"]["depth"]
    assert ld["nucleation_error"] < 0.01
    assert ld["quantity"].startswith("load at the first dislocation nucleation")
    assert set(ld["load"].sources) == {"QC coupling"} and ld["load"].unit == "eV/Å"
    assert float(ld["load"].value) == pytest.approx(nuc["qc_large"]["load_before"])
    assert ld["large_dof_ratio"] > 3.0
    assert np.all(np.asarray(res["qc_large"]["load"]) > 0)


@pytest.mark.slow
def test_water_cg_defaults(tmp_path):
    res = _run_defaults(tmp_path, "water-cg")
    aa = res["aa_300"]
    # SPC/Fw at 300 K: liquid structure, first shell of about 4.5 neighbours
    chk = res["check_ibi_300"]
    assert 2.7 < chk["r"][np.argmax(chk["g_aa"])] < 2.9
    assert 4.0 < chk["nc_aa"] < 5.0
    assert abs(aa["temperature_K"] - 300.0) < 3.0
    # every CG model reproduces the fit temperature's structure; IBI and RE closely
    for m in ("ibi", "re"):
        assert res[f"check_{m}_300"]["rdf_error"] < 0.08
    assert res["check_fm_300"]["rdf_error"] < 0.2
    # the prediction's budget is honest: the atomistic value lies within 3 sigma of the CG one
    for T, p in res["prediction"].items():
        for name in ("nc", "density"):
            est = p[name]
            assert abs(float(est.value) - p[f"{name}_aa"]) < 3 * float(est.std) + 0.02
            assert set(est.sources) == {"cg_method", "transferability", "sampling"}
    # IBI is pressure-corrected at 300 K: its density at the atomistic pressure is within 15 %
    # (measured 1.089: its EOS is far too compressible); force matching and relative entropy,
    # not pressure-matched, do not hold a liquid there (measured 0.15-0.48 g/cm³)
    assert abs(res["density_ibi_300"]["density_g_cm3"] - 0.997) < 0.15
    assert res["density_fm_300"]["density_g_cm3"] < 0.8
    # the CG model is far faster in simulated time per wall second
    assert res["check_ibi_300"]["speedup"] > 20


@pytest.mark.slow
def test_silicon_mlip_defaults(tmp_path):
    """The SNAP chain (cold: the flagship's DFT, the extra DFT cells and the active-learning
    rounds, about 21 minutes on 2 cores) against its own DFT: clamped-ion C11, C12, C44 on the
    DFT strained cells within 10 %, the relaxed-ion C44 within 10 % of DFT's Kleinman value,
    the (111) surface energy on the DFT slab within 10 %; a warm rerun computes nothing."""
    res = _run_defaults(tmp_path, "silicon-mlip")
    dc, dg, nom = res["dft_elastic"], res["dft_surface"], res["properties"]["nominal"]
    for k in ("C11", "C12", "C44"):
        assert abs(nom[f"{k}_clamped_dft_cells"] / dc["clamped"][k] - 1) < 0.10, k
    assert abs(nom["C44"] / dc["relaxed"]["C44"] - 1) < 0.10
    assert abs(nom["gamma111_dft_slab"] / dg["gamma111_unrelaxed"] - 1) < 0.10
    h = res["history"]
    assert h["stopped"] in ("converged", "budget", "max_iterations")
    sig = res["fracture"]["sigma_c"]
    assert {"committee", "transferability", "xc functional", "model form (SW vs SNAP)",
            "MD sampling", "mesh"} <= set(sig.sources)
    out = runner.invoke(app, ["run", "silicon-mlip", "--store", str(tmp_path / "store"),
                              "--quiet"])
    assert out.exit_code == 0 and " 0 stages computed" in out.output, out.output  # warm rerun
