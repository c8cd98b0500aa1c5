"""The ``magnet`` ladder through the CLI and the store, with tiny Monte Carlo settings.

Physics checks:
* simple-cubic classical Heisenberg ferromagnet, J = 10 meV per bond (unit spins): Binder-crossing
  T_c within 3 % of k_B T_c = 1.4430 J (Chen, Ferrenberg & Landau 1993) = 167.5 K.  Tiny runs
  (L = 4, 6, 8; 1000 Wolff steps) measured T_c = 165.2 K (-1.4 %) with a sampling error of 1.9 K:
  3 % is ~2.5 sigma plus the finite-size drift of such small lattices;
* mean field is exact arithmetic: k_B T_MF = z J / 3 = 2 J (Heisenberg, sc) = 232.09 K, and
  T_c/T_MF = 0.72 within 0.025;
* the same J quoted as double counted (J = 5 meV, H = -sum_{i!=j}) gives the same couplings and so
  the same T_c (same random streams: equal to rounding);
* a TB2J file of the same model gives the same bond couplings and mean field;
* the exchange source is exactly the relative J uncertainty times T_c (T_c linear in J);
* bad settings name the field.
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
from scaleladder.core.units import BOLTZMANN_EV as KB
from scaleladder.ladders import get_ladder
from scaleladder.ladders import magnet

runner = CliRunner()
J = 0.010  # eV per bond
TC_REF = 1.4430 * J / KB  # K, sc classical Heisenberg
TINY = ["mc.sizes=4,6,8", "mc.n_sweeps=1000", "mc.n_thermalize=100", "mc.t_min=0.66",
        "mc.t_max=0.78", "mc.n_temperatures=7", "mc.n_bootstrap=100"]


def _run(store, extra=()):
    args = ["run", "magnet", "--store", str(store), "--quiet"]
    for s in list(TINY) + list(extra):
        args += ["--set", s]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    st = Store(store)
    run = st.get_run("latest")
    return out.output, {k: st.get(v) for k, v in run["targets"].items()}, args


@pytest.fixture(scope="module")
def per_bond(tmp_path_factory):
    store = tmp_path_factory.mktemp("magnet") / "store"
    output, res, args = _run(store)
    return output, res, store, args


def test_tc_of_the_sc_heisenberg_ferromagnet(per_bond):
    _, res, _, _ = per_bond
    cur = res["curie"]
    tc, mf, ratio = cur["tc"], cur["mean_field"], cur["tc_over_mean_field"]
    assert tc.unit == "K"
    assert abs(float(tc.value) / TC_REF - 1) < 0.03
    assert float(mf.value) == pytest.approx(2 * J / KB, rel=1e-12)
    assert abs(float(ratio.value) - 0.7215) < 0.025
    assert float(ratio.value) == pytest.approx(float(tc.value) / float(mf.value), rel=1e-12)
    assert len(res["scan"]["crossings"]) == 2


def test_budget_has_the_three_sources(per_bond):
    output, res, store, args = per_bond
    tc = res["curie"]["tc"]
    assert set(tc.sources) == {"exchange", "finite_size", "sampling"}
    assert sum(tc.budget().values()) == pytest.approx(1.0)
    # T_c linear in J: the exchange sigma is the relative J uncertainty (0.1) times T_c
    assert math.sqrt(tc.variances["exchange"]) == pytest.approx(0.1 * float(tc.value), rel=1e-9)
    assert math.sqrt(res["curie"]["mean_field"].variances["exchange"]) == pytest.approx(
        0.1 * 2 * J / KB, rel=1e-9)
    assert set(res["curie"]["tc_over_mean_field"].sources) == {"finite_size", "sampling"}
    crossings = [c[2] for c in res["scan"]["crossings"]]
    assert tc.variances["finite_size"] == pytest.approx(np.var(crossings, ddof=1), rel=1e-9)
    assert "weakest link" in output and "T_c / T_MF" in output
    again = runner.invoke(app, args)
    assert re.search(r"0 stages computed", again.output), again.output
    bud = runner.invoke(app, ["budget", "latest", "--store", str(store)])
    assert bud.exit_code == 0 and "finite_size" in bud.output and "exchange" in bud.output


def test_double_counted_convention_gives_the_same_tc(per_bond, tmp_path):
    _, res, _, _ = per_bond
    _, dc, _ = _run(tmp_path / "store", ["exchange.J_meV=5",
                                         "exchange.convention=minus,double_counted,unit"])
    assert dc["exchange"].convention.counting == "double_counted"
    np.testing.assert_allclose(dc["exchange"].bond_couplings().J.value,
                               res["exchange"].bond_couplings().J.value, rtol=1e-15)
    assert float(dc["curie"]["tc"].value) == pytest.approx(float(res["curie"]["tc"].value),
                                                           rel=1e-12)
    # and the 'spin' normalisation with S = 2: J_spin = J_unit / S^2
    ex = magnet.exchange_stage.fn("given", {
        "rel_uncertainty": 0.1, "J_meV": "2.5", "convention": "minus,per_bond,spin",
        "spin": 2.0, "structure": "sc", "a": 3.0})
    np.testing.assert_allclose(ex.bond_couplings().J.value, J, rtol=1e-15)


TB2J_SC = """\
==========================================================================================
Cell (Angstrom):
3.00000000  0.00000000  0.00000000
0.00000000  3.00000000  0.00000000
0.00000000  0.00000000  3.00000000

==========================================================================================
Atoms:
Atom number        x             y             z       w_charge  w_magmom
Fe1             0.00000000    0.00000000    0.00000000    7.8000    2.0000
Total                                                     7.8000    2.0000

==========================================================================================
Exchange:
    i      j          R        J_iso(meV)          vector          distance(A)
----------------------------------------------------------------------------------------
"""


def _tb2j_file(path, j_mev):
    lines = [TB2J_SC]
    for r in [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]:
        v = tuple(3.0 * x for x in r)
        lines.append(f"   Fe1   Fe1   ({r[0]:3d}, {r[1]:3d}, {r[2]:3d}) {j_mev:.4f}   "
                     f"({v[0]:6.3f}, {v[1]:6.3f}, {v[2]:6.3f})  3.000\n"
                     f"J_iso: {j_mev:.4f}\n" + "-" * 88 + "\n")
    path.write_text("".join(lines))
    return path


def test_tb2j_source_matches_the_given_model(per_bond, tmp_path):
    _, res, _, _ = per_bond
    f = _tb2j_file(tmp_path / "exchange.out", 5.0)  # TB2J double counts: K = 2 x 5 meV
    spec = get_ladder("magnet")
    settings = spec.resolve(overrides={"exchange.source": "tb2j", "exchange.tb2j_file": str(f)})
    nodes = spec.build(settings)
    from scaleladder.core.pipeline import Runner

    out = Runner(Store(tmp_path / "s"), progress=False).run({"exchange": nodes["exchange"]})
    ex = out["exchange"]
    assert ex.convention.counting == "double_counted"
    np.testing.assert_allclose(np.sort(ex.bond_couplings().J.value),
                               np.sort(res["exchange"].bond_couplings().J.value), rtol=1e-12)
    from scaleladder.mesoscale.spins import mean_field_temperature

    assert mean_field_temperature(ex, "heisenberg") == pytest.approx(2 * J / KB, rel=1e-12)
    assert set(ex.J.sources) == {"exchange"}


def test_shell_distances_and_sites():
    np.testing.assert_allclose(magnet.shell_distances("sc", 3.0, 3), [3.0, 3 * 2 ** 0.5,
                                                                     3 * 3 ** 0.5])
    np.testing.assert_allclose(magnet.shell_distances("bcc", 2.0, 2), [3 ** 0.5, 2.0])
    np.testing.assert_allclose(magnet.shell_distances("fcc", 4.0, 2), [8 ** 0.5, 4.0])
    assert len(magnet.cubic_sites("fcc", 4.0)[1]) == 4


@pytest.mark.parametrize("key, value, match", [
    ("exchange.source", "vasp", "exchange.source"),
    ("mc.sizes", (4, 8), "mc.sizes"),
    ("mc.sizes", (8, 6, 12), "mc.sizes"),
    ("mc.model", "xy", "mc.model"),
    ("exchange.J_meV", "ten", "exchange.J_meV"),
    ("exchange.J_meV", "-10", "exchange.J_meV"),
    ("exchange.convention", "minus,bogus,unit", "exchange.convention"),
    ("exchange.convention", "minus,per_bond", "exchange.convention"),
    ("exchange.rel_uncertainty", -0.1, "exchange.rel_uncertainty"),
    ("mc.t_min", 0.9, "mc.t_min"),
    ("lattice.a", 0.0, "lattice.a"),
    ("lattice.structure", "hcp", "lattice.structure"),
])
def test_bad_settings_name_the_field(key, value, match):
    with pytest.raises(InputError, match=match):
        get_ladder("magnet").resolve(overrides={key: value})


def test_tb2j_without_a_file_names_the_field(tmp_path):
    with pytest.raises(InputError, match="exchange.tb2j_file"):
        get_ladder("magnet").resolve(overrides={"exchange.source": "tb2j"})
    out = runner.invoke(app, ["run", "magnet", "--store", str(tmp_path / "s"), "--quiet",
                              "--set", "exchange.source=tb2j", "--set",
                              f"exchange.tb2j_file={tmp_path / 'missing.out'}"])
    assert out.exit_code == 2 and "exchange.tb2j_file" in out.output


def test_antiferromagnetic_exchange_is_refused_before_any_monte_carlo():
    """An AFM J (as the DFT mapping gives for an H lattice) has no uniform-magnetisation T_c."""
    ex = magnet.exchange_stage.fn("given", {
        "rel_uncertainty": 0.1, "J_meV": "10", "convention": "plus,per_bond,unit",
        "spin": 1.0, "structure": "sc", "a": 3.0})
    with pytest.raises(InputError, match="ferromagnet"):
        magnet.binder_scan.fn(ex, "heisenberg", [4, 6, 8], [0.7, 0.8], 20, 0, "wolff", 10, 0)
