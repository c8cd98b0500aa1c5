"""The ``elastic-constants`` and ``defects`` ladders through the CLI (typer CliRunner)."""
from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from scaleladder.cli.main import app
from scaleladder.core.store import Store

runner = CliRunner()


def _run(store, ladder, *sets):
    args = ["run", ladder, "--store", str(store), "--quiet"]
    for s in sets:
        args += ["--set", s]
    return runner.invoke(app, args)


def _value(output: str, name: str) -> float:
    m = re.search(r"│\s*" + re.escape(name) + r"\s*│\s*([-0-9.]+)\s*│", output)
    assert m, f"{name} not in output:\n{output}"
    return float(m.group(1))


def _computed(output: str) -> int:
    m = re.search(r"(\d+) stages computed", output)
    assert m, output
    return int(m.group(1))


def _relaxed_bulk(atoms, calc):
    from scaleladder.atomistic import relax_lattice_constant

    a_in = atoms.cell.lengths()[0]
    a0 = relax_lattice_constant(atoms, calc, relax_ions=True)
    atoms.set_cell(atoms.cell * a0 / a_in, scale_atoms=True)
    return atoms


def test_elastic_sw_silicon_matches_api_and_reuses(tmp_path):
    from ase.build import bulk

    from scaleladder.atomistic import StillingerWeber, elastic_constants

    store = tmp_path / "store"
    res = _run(store, "elastic-constants", "potential=sw", "structure=bulk:Si:diamond:5.431")
    assert res.exit_code == 0, res.output
    calc = StillingerWeber()
    atoms = _relaxed_bulk(bulk("Si", "diamond", a=5.431, cubic=True), calc)
    C = elastic_constants(atoms, calc, relax_ions=True, strain_step=0.005)
    for name, e in (("C11", C.voigt[0, 0]), ("C12", C.voigt[0, 1]), ("C44", C.voigt[3, 3]),
                    ("B_VRH", C.bulk_modulus_vrh), ("G_VRH", C.shear_modulus_vrh)):
        assert _value(res.output, name) == pytest.approx(float(e.value), abs=2e-4), name
    again = _run(store, "elastic-constants", "potential=sw", "structure=bulk:Si:diamond:5.431")
    assert again.exit_code == 0, again.output
    assert _computed(again.output) == 0
    assert "2 reused" in again.output
    # no multi-source quantity: budget says so and exits non-zero without a traceback
    bud = runner.invoke(app, ["budget", "latest", "--store", str(store)])
    assert bud.exit_code == 1, bud.output
    assert "no quantity with an error budget" in bud.output
    assert bud.exception is None or isinstance(bud.exception, SystemExit)


def test_structure_file_and_key_changes(tmp_path):
    from ase.build import bulk
    from ase.io import write

    store = tmp_path / "store"
    path = tmp_path / "cu.extxyz"
    write(str(path), bulk("Cu", "fcc", a=3.615, cubic=True), format="extxyz")
    res = _run(store, "elastic-constants", "potential=emt", f"structure={path}")
    assert res.exit_code == 0, res.output
    assert _value(res.output, "C11") > 0
    key1 = Store(store).get_run("latest")["targets"]["elastic"]
    write(str(path), bulk("Cu", "fcc", a=3.60, cubic=True), format="extxyz")
    res = _run(store, "elastic-constants", "potential=emt", f"structure={path}")
    assert res.exit_code == 0, res.output
    key2 = Store(store).get_run("latest")["targets"]["elastic"]
    assert key1 != key2
    assert _computed(res.output) == 2


def test_defects_emt_copper_matches_api_and_reuses(tmp_path):
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from scaleladder.atomistic import (migration_barrier, surface_energy, vacancy_formation_energy,
                                       vacancy_migration_path)

    store = tmp_path / "store"
    sets = ("potential=emt", "structure=bulk:Cu:fcc:3.615", "supercell=2,2,2", "miller=1,1,1",
            "n_images=3", "fmax=0.02")
    res = _run(store, "defects", *sets)
    assert res.exit_code == 0, res.output
    calc = EMT()
    atoms = _relaxed_bulk(bulk("Cu", "fcc", a=3.615, cubic=True), calc)
    ef = vacancy_formation_energy(atoms, calc, supercell=(2, 2, 2), relax=True, fmax=0.02)
    ini, fin = vacancy_migration_path(atoms, supercell=(2, 2, 2))
    mb = migration_barrier(ini, fin, calc, n_images=3, fmax=0.02)
    g = surface_energy(atoms, calc, miller=(1, 1, 1), relax=True, fmax=0.02)
    assert _value(res.output, "E_f vacancy") == pytest.approx(float(ef.value.value), abs=2e-4)
    assert _value(res.output, "E_m forward") == pytest.approx(float(mb.value.value), abs=2e-4)
    assert _value(res.output, "E_m reverse") == pytest.approx(float(mb.reverse.value), abs=2e-4)
    assert _value(res.output, "γ(111)") == pytest.approx(float(g.value.value), abs=2e-4)
    assert np.isfinite(_value(res.output, "a0"))
    again = _run(store, "defects", *sets)
    assert again.exit_code == 0, again.output
    assert _computed(again.output) == 0


@pytest.mark.parametrize("ladder,setting,words", [
    ("elastic-constants", "potential=foo", ["potential", "'foo'", "sw", "tersoff", "lj", "morse",
                                            "eam", "emt"]),
    ("elastic-constants", "structure=/nonexistent/dir/x.xyz", ["structure", "/nonexistent/dir/x.xyz"]),
    ("defects", "supercell=0,3,3", ["supercell", "0,3,3"]),
    ("elastic-constants", "potential_params={bad json", ["potential_params", "{bad json"]),
])
def test_bad_input_exit_2(tmp_path, ladder, setting, words):
    res = _run(tmp_path / "store", ladder, setting)
    assert res.exit_code == 2, res.output
    flat = " ".join(res.output.split())
    for w in words:
        assert w in flat, (w, res.output)


def test_lj_params_and_missing_eam_file(tmp_path):
    res = _run(tmp_path / "store", "elastic-constants", "potential=lj",
               'potential_params={"epsilon": 0.0104}', "structure=bulk:Ar:fcc:5.26")
    assert res.exit_code == 2 and "potential_params" in res.output
    res = _run(tmp_path / "store", "elastic-constants", "potential=eam",
               "structure=bulk:Cu:fcc:3.615")
    assert res.exit_code == 2 and "potential_file" in res.output
