"""Ladders' declared fidelities: the qmmm-water MD snapshots and hierarchy, and (slow) a QM/MM
pilot through the store and the Sobol' command over the composite ladder."""
from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from scaleladder.core.errors import InputError
from scaleladder.core.store import Store
from scaleladder.ladders import get_ladder
from scaleladder.ladders.qmmm_water import md_snapshots, water_cluster_stage
from scaleladder.ladders.study import ladder_hierarchy


def test_qmmm_hierarchy_is_declared_as_data():
    spec = get_ladder("qmmm-water")
    h = spec.fidelities(spec.resolve({"mf.snapshots": 20}))
    assert h["quantity"] == "IE" and h["unit"] == "eV"
    names = [m[0] for m in h["models"]]
    assert names == ["PBE0/def2-qzvp", "PBE0/def2-svp", "PBE/def2-svp"]
    # a low fidelity equal to the high one is not declared twice
    same = spec.fidelities(spec.resolve({"mf.hf_basis": "def2-svp", "mf.snapshots": 20}))
    assert [m[0] for m in same["models"]] == ["PBE0/def2-svp", "PBE/def2-svp"]
    node = h["models"][0][1](3)
    assert node.stage.name == "qmmm.vertical_ie"
    with pytest.raises(InputError, match="mf.snapshots"):
        h["models"][0][1](20)
    with pytest.raises(InputError, match="mf.temperature"):
        spec.resolve({"mf.temperature": 1000.0})


def test_md_snapshots_are_distinct_configurations_of_a_bound_cluster():
    c = water_cluster_stage(8, 0, "spc/fw", 0.05)
    snaps = md_snapshots(c, 300.0, 4, 20.0, 0, equilibration_fs=2000.0)
    assert len(snaps) == 4
    x = [s.positions for s in snaps]
    assert all(np.abs(a - b).max() > 0.05 for a, b in zip(x[:-1], x[1:]))
    for s in x:
        o = s[0::3]
        assert np.linalg.norm(o - o.mean(axis=0), axis=1).max() < 9.0   # nothing evaporated
        d = np.linalg.norm(s[1::3] - s[0::3], axis=1)                    # O-H bonds intact
        assert np.all((d > 0.85) & (d < 1.2))


@pytest.mark.slow
def test_qmmm_pilot_through_the_store(tmp_path):
    from scaleladder.uq.multifidelity import pilot
    st = Store(tmp_path / "st")
    small = {"system.n_waters": 6, "qm.sizes": (1, 2), "mf.snapshots": 10,
             "mf.hf_basis": "def2-svp", "qm.basis": "sto-3g"}
    h = ladder_hierarchy("qmmm-water", settings=small, store=st)
    p = pilot(h, 3)
    assert np.all(np.isfinite(p.cost_s)) and np.all(p.cost_s > 0)    # measured, not ordered
    assert p.rho[1] > 0.5 and p.corr[1, 2] > 0.9     # same molecule, basis or functional
    assert 10.0 < p.mean[0] < 14.0                   # one embedded molecule: ~12-13 eV
    again = pilot(ladder_hierarchy("qmmm-water", settings=small, store=st), 3)
    assert np.allclose(again.values, p.values) and np.allclose(again.cost_s, p.cost_s)


@pytest.mark.slow
def test_sobol_command_over_a_ladder(tmp_path):
    from scaleladder.cli.main import app
    out = CliRunner().invoke(app, [
        "sensitivity", "composite", "--quantity", "moduli.E_L", "--vary",
        "composite.fraction=0.3:0.4", "--vary", "fibre.E=60:80", "--n", "8", "--quiet",
        "--store", str(tmp_path / "st"), "--set", "rve.resolution=42", "--set",
        "rve.realisations=2", "--set", "composite.fibre_radius=0.1"])
    assert out.exit_code == 0, out.output
    # E_L is the rule of mixtures f E_f + (1 - f) E_m: both inputs matter, and nearly
    # additively; over these ranges fibre.E's share is
    # var(f) mean(E_f)^2 : var(E_f) mean(f)^2 = (0.1^2 70^2) : (20^2 0.35^2) = 0.5 : 0.5
    rows = {line.split()[0]: line for line in out.output.splitlines() if "±" in line}
    assert set(rows) == {"composite.fraction", "fibre.E"}
    bad = CliRunner().invoke(app, ["sensitivity", "composite", "--quantity", "moduli.E_T",
                                   "--vary", "composite.fraction=0.3:0.4", "--store",
                                   str(tmp_path / "st")])
    assert bad.exit_code == 2 and "two or more" in bad.output
