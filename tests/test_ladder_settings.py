"""Ladder settings schema and the command line's handling of bad input (no DFT is run here)."""
from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from scaleladder.cli.main import app
from scaleladder.core.errors import InputError
from scaleladder.ladders import available_ladders, get_ladder, parse_set_options

runner = CliRunner()


def test_flagship_is_listed():
    assert "silicon-fracture" in available_ladders()
    res = runner.invoke(app, ["ladders"])
    assert res.exit_code == 0
    assert "silicon-fracture" in res.output


def test_unknown_ladder_lists_known():
    with pytest.raises(InputError, match="silicon-fracture"):
        get_ladder("silicon-melting")


def test_unknown_set_key_lists_valid_keys():
    spec = get_ladder("silicon-fracture")
    with pytest.raises(InputError) as exc:
        spec.resolve(strings={"electronic.kpoints": "3"})
    msg = str(exc.value)
    assert "electronic.kpoints" in msg
    for key in ("electronic.kmesh", "atomistic.n_ensemble", "continuum.finest_level"):
        assert key in msg


def test_unknown_set_key_on_command_line(tmp_path):
    res = runner.invoke(app, ["run", "silicon-fracture", "--set", "electronic.kpoints=3",
                              "--store", str(tmp_path / "s"), "--quiet"])
    assert res.exit_code == 2
    assert "electronic.kmesh" in res.output
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").rglob("*.npz"))


@pytest.mark.parametrize("key,value,expected", [
    ("electronic.kmesh", "-2", "electronic.kmesh=-2"),
    ("electronic.kmesh", "0", "electronic.kmesh=0"),
    ("electronic.strain_step", "0", "electronic.strain_step=0.0"),
    ("atomistic.strain_step", "0.0", "atomistic.strain_step=0.0"),
    ("electronic.ke_cutoff", "-10", "electronic.ke_cutoff=-10.0"),
    ("continuum.width_ratio", "0.5", "continuum.width_ratio=0.5"),
    ("atomistic.n_ensemble", "1", "atomistic.n_ensemble=1"),
])
def test_bad_values_name_field_and_value(key, value, expected):
    spec = get_ladder("silicon-fracture")
    with pytest.raises(InputError) as exc:
        spec.resolve(strings={key: value})
    assert expected in str(exc.value)


def test_type_errors_name_field():
    spec = get_ladder("silicon-fracture")
    with pytest.raises(InputError, match="electronic.kmesh='three'"):
        spec.resolve(strings={"electronic.kmesh": "three"})
    with pytest.raises(InputError, match="key=value"):
        parse_set_options(["electronic.kmesh"])


def test_overrides_are_typed_and_applied():
    spec = get_ladder("silicon-fracture")
    s = spec.resolve(strings={"electronic.kmesh": "3", "electronic.ke_cutoff": "30"})
    assert s["electronic.kmesh"] == 3 and isinstance(s["electronic.kmesh"], int)
    assert s["electronic.ke_cutoff"] == 30.0
    assert spec.resolve()["electronic.kmesh"] == spec.defaults["electronic.kmesh"]


def test_import_is_light():
    """``import scaleladder`` (and the CLI module) must not pull in the heavy engines."""
    code = ("import sys, scaleladder, scaleladder.cli.main; "
            "heavy=[m for m in ('pyscf','numba','skfem','dask','distributed','matplotlib') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_functional_and_pseudopotential_must_match():
    spec = get_ladder("silicon-fracture")
    with pytest.raises(InputError, match="electronic.pseudo='gth-pbe'.*gth-pade"):
        spec.resolve(strings={"electronic.xc": "LDA", "electronic.pseudo": "gth-pbe"})
    with pytest.raises(InputError, match="electronic.pseudo_alt='gth-pade'.*gth-pbe"):
        spec.resolve(strings={"electronic.xc_alt": "PBE", "electronic.pseudo_alt": "gth-pade"})
    with pytest.raises(InputError, match="electronic.xc_alt"):
        spec.resolve(strings={"electronic.xc_alt": "LDA", "electronic.pseudo_alt": "gth-pade"})
    s = spec.resolve(strings={"electronic.xc_alt": "BLYP", "electronic.pseudo_alt": "gth-blyp"})
    assert s["electronic.pseudo_alt"] == "gth-blyp"


def test_negative_strain_step_is_rejected_not_flipped():
    spec = get_ladder("silicon-fracture")
    with pytest.raises(InputError, match="electronic.strain_step=-0.01"):
        spec.resolve(strings={"electronic.strain_step": "-0.01"})
