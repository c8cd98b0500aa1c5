"""The one calculator registry (scaleladder.workflows.calculators), used by the ladders and by
dataset generation alike (issue 10, item 4)."""
from __future__ import annotations

import pytest
from ase.build import bulk

from scaleladder.core.errors import InputError
from scaleladder.workflows import generate as G
from scaleladder.workflows.calculators import ENGINES, calculator_spec, make_calculator


def test_every_engine_of_the_registry_builds_from_plain_data():
    cheap = {"sw": {}, "tersoff": {}, "lj": {"epsilon": 0.0104, "sigma": 3.4},
             "morse": {"D0": 0.3, "alpha": 1.3, "r0": 2.9}, "emt": {},
             "pyscf": {"xc": "LDA", "basis": "gth-szv"},
             "ase": {}}
    for engine in ENGINES:
        if engine in ("eam", "xtb", "snap"):
            continue            # eam and snap need a file (tests/test_eam.py, test_snap.py), xtb an extra
        extra = {"calculator": "ase.calculators.emt:EMT"} if engine == "ase" else {}
        spec = calculator_spec(engine, cheap[engine], species=["Cu"] if engine in ("emt", "ase")
                               else ["Si"] if engine in ("sw", "tersoff") else [], **extra)
        calc = make_calculator(spec)
        assert hasattr(calc, "calculate"), engine


def test_errors_name_the_callers_fields():
    with pytest.raises(InputError, match=r"^calculator\['engine'\]"):
        calculator_spec("vasp")
    with pytest.raises(InputError, match=r"^potential="):
        calculator_spec("vasp", fields={"engine": "potential"})
    with pytest.raises(InputError, match=r"^structure='Ge'.*made for Si"):
        calculator_spec("sw", species=["Ge"], fields={"species": "structure"})
    with pytest.raises(InputError, match="EMT parameters"):
        calculator_spec("emt", {"nonsense": 1})


def test_dataset_generation_uses_the_same_registry_as_the_ladders():
    structs = G.ev_series(bulk("Si", "diamond", a=5.431), n=3)
    ds = G.generate_dataset(structs, {"engine": "sw"}, progress=False)
    e = [c.energy / len(c.numbers) for c in ds]
    assert min(e) == pytest.approx(-4.3366, abs=2e-3)   # SW Si cohesive energy near a0
    with pytest.raises(InputError, match="species"):
        G.generate_dataset(structs, {"engine": "sw", "species": ["Ge"]}, progress=False)
