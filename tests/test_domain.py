"""Out-of-training-domain flagging: fitted calculators, the property functions, the handoffs'
``domain_warnings`` field (codec, old records) and the CLI.

The fitted potential is built directly (the published SW silicon parameters, a narrow training
domain around the SW equilibrium a = 5.431 Å: volume 20.02 Å³/atom, nearest neighbours
2.352 Å), so the domain boundaries are known exactly.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from ase.build import bulk
from typer.testing import CliRunner

from scaleladder.atomistic import StillingerWeber, elastic_constants, relax_lattice_constant, \
    surface_energy
from scaleladder.atomistic.domain import (DomainLog, attach_fitted_potential, domain_warnings,
                                          fitted_potential_of)
from scaleladder.atomistic.fitting import fitted_calculator
from scaleladder.atomistic.stillinger_weber import SW_SILICON
from scaleladder.core import codec
from scaleladder.core.errors import DomainWarning, InputError
from scaleladder.handoffs import (ElasticTensor, FittedPotential, MigrationBarrier,
                                  SurfaceEnergy, VacancyFormationEnergy)
from scaleladder.uq import Estimate

A0 = 5.431                         # SW silicon zero-pressure lattice constant (Å)
DOMAIN = {"volume_per_atom": [19.0, 21.0], "neighbour_distance": [2.30, 2.42],
          "max_abs_strain": 0.03}


def _fp(**domain) -> FittedPotential:
    dom = dict(DOMAIN, **domain)
    ens = np.array([[SW_SILICON["epsilon"] * 0.99], [SW_SILICON["epsilon"] * 1.01]])
    return FittedPotential(form="StillingerWeber", species=("Si",), parameters=dict(SW_SILICON),
                           fitted=("epsilon",), ensemble=ens, ensemble_method="laplace",
                           training_domain=dom, units={"epsilon": "eV", "sigma": "Å"})


def _domain_warnings_raised(record) -> list:
    return [w for w in record if issubclass(w.category, DomainWarning)]


# -- the calculator remembers its potential, numerics unchanged ------------------------------

def test_fitted_calculator_remembers_and_computes_the_same():
    fp = _fp()
    calc = fitted_calculator(fp, member=1)
    assert fitted_potential_of(calc) is fp
    from_fitted = StillingerWeber.from_fitted(fp, member=1)
    assert fitted_potential_of(from_fitted) is fp        # from_fitted remembers it too
    plain = StillingerWeber(fp.member(1))                 # same numbers, no memory
    assert fitted_potential_of(plain) is None
    atoms = bulk("Si", "diamond", a=A0, cubic=True)
    atoms.rattle(0.05, seed=3)
    a1, a2 = atoms.copy(), atoms.copy()
    a1.calc, a2.calc = calc, plain
    assert a1.get_potential_energy() == a2.get_potential_energy()
    assert np.array_equal(a1.get_forces(), a2.get_forces())
    assert np.array_equal(a1.get_stress(), a2.get_stress())
    with pytest.raises(InputError, match="potential"):
        attach_fitted_potential(StillingerWeber(), {"not": "a potential"})


def test_domain_warnings_helper():
    fp = _fp()
    calc = fitted_calculator(fp)
    inside = bulk("Si", "diamond", a=A0)
    squeezed = bulk("Si", "diamond", a=A0 * 0.95)      # 17.2 Å³/atom, nn 2.234 Å
    assert domain_warnings(calc, [inside]) == ()
    msgs = domain_warnings(calc, [inside, squeezed, squeezed], labels=["a", "b", "c"])
    assert any(m.startswith("b: volume per atom") for m in msgs)
    assert any(m.startswith("b: nearest-neighbour distance") and "below" in m for m in msgs)
    assert len([m for m in msgs if m.startswith("c:")]) == 2
    assert not any(m.startswith("a:") for m in msgs)
    # the strain check needs the reference cell
    sheared = inside.copy()
    sheared.set_cell(inside.cell.array @ (np.eye(3) + [[0, 0.05, 0], [0.05, 0, 0], [0, 0, 0]]).T,
                     scale_atoms=True)
    assert not any("strain" in m for m in domain_warnings(calc, [sheared]))
    assert any("strain" in m for m in domain_warnings(calc, [sheared], inside.cell.array))
    # calculators without a fitted potential are never flagged
    assert domain_warnings(StillingerWeber(), [squeezed]) == ()
    assert not DomainLog(StillingerWeber()).active


# -- the property functions --------------------------------------------------------------------

def test_elastic_constants_inside_domain_no_warning():
    calc = fitted_calculator(_fp())
    with warnings.catch_warnings():
        warnings.simplefilter("error", DomainWarning)
        C = elastic_constants(bulk("Si", "diamond", a=A0), calc, relax_ions=False)
    assert C.domain_warnings == ()


def test_elastic_constants_outside_volume_range_warns_once_and_records():
    calc = fitted_calculator(_fp())
    expanded = bulk("Si", "diamond", a=A0 * 1.04)      # 22.5 Å³/atom > 21, nn 2.446 > 2.42 Å
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        C = elastic_constants(expanded, calc, relax_ions=False)
    dw = _domain_warnings_raised(rec)
    assert len(dw) == 1, [str(w.message) for w in dw]
    assert "elastic_constants" in str(dw[0].message) and "outside the training domain" in str(dw[0].message)
    msgs = C.domain_warnings
    assert any(m.startswith("unstrained reference cell: volume per atom") for m in msgs)
    assert any(m.startswith("Voigt strain e1=+0.005: nearest-neighbour distance") for m in msgs)
    # 13 configurations, each outside in volume and distance (the shear strains keep the volume)
    assert len(msgs) >= 13
    back = codec.from_files(codec.to_files(C))
    assert back.domain_warnings == msgs
    # the rotated tensor keeps them
    assert C.rotated(np.eye(3)).domain_warnings == msgs


def test_elastic_constants_strain_beyond_training_strain():
    calc = fitted_calculator(_fp(max_abs_strain=0.004))
    with pytest.warns(DomainWarning, match="strain"):
        C = elastic_constants(bulk("Si", "diamond", a=A0), calc, relax_ions=False,
                              strain_step=0.005, n_strains=1)
    assert all("strain" in m and "above the training maximum 0.004" in m for m in C.domain_warnings)
    assert any(m.startswith("Voigt strain e1=-0.005") for m in C.domain_warnings)
    # engineering shear e4 = 0.005 is a tensor (Green-Lagrange) strain of 0.0025 < 0.004
    assert not any(m.startswith("Voigt strain e4") for m in C.domain_warnings)
    assert not any(m.startswith("unstrained") for m in C.domain_warnings)


def test_surface_energy_slab_not_flagged_for_its_vacuum_but_compressed_bulk_is():
    calc = fitted_calculator(_fp())
    si = bulk("Si", "diamond", a=A0, cubic=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DomainWarning)
        g = surface_energy(si, calc, (1, 1, 1), layers=2, relax=False)
    assert g.domain_warnings == ()
    squeezed = bulk("Si", "diamond", a=A0 * 0.96, cubic=True)
    with pytest.warns(DomainWarning, match="surface_energy"):
        g2 = surface_energy(squeezed, calc, (1, 1, 1), layers=2, relax=False)
    labels = {m.split(":")[0] for m in g2.domain_warnings}
    assert labels == {"bulk", "unrelaxed slab"}
    assert not any(m.startswith("unrelaxed slab: volume") for m in g2.domain_warnings)
    back = codec.from_files(codec.to_files(g2))
    assert back.domain_warnings == g2.domain_warnings


def test_relax_lattice_constant_warns_when_result_outside():
    si = bulk("Si", "diamond", a=5.40, cubic=True)
    a_plain = relax_lattice_constant(si, StillingerWeber())
    with warnings.catch_warnings():
        warnings.simplefilter("error", DomainWarning)
        assert relax_lattice_constant(si, fitted_calculator(_fp())) == a_plain
    calc = fitted_calculator(_fp(volume_per_atom=[15.0, 18.0]))
    with pytest.warns(DomainWarning, match="volume per atom 20.0"):
        a0 = relax_lattice_constant(si, calc)
    assert a0 == a_plain


# -- the handoff field: validation, codec, old records ------------------------------------------

def _handoffs():
    e = Estimate(0.7, "eV")
    return [
        ElasticTensor.from_cubic(166.0, 64.0, 80.0, relaxed_ions=True, structure="Si"),
        SurfaceEnergy((1, 1, 1), Estimate(1.4, "J/m^2")),
        VacancyFormationEnergy(Estimate(1.2, "eV"), structure="fcc Cu", supercell_atoms=32),
        MigrationBarrier(e, e, [0.0, 0.7, 0.0], [0.0, 1.0, 2.0], 1, method="CI-NEB"),
    ]


@pytest.mark.parametrize("obj", _handoffs(), ids=lambda o: type(o).__name__)
def test_handoff_field_round_trip_and_old_records(obj):
    assert obj.domain_warnings == ()
    flagged = obj.replace(domain_warnings=["bulk: volume per atom 25 Å³ outside [19, 21] Å³"])
    assert flagged.domain_warnings == ("bulk: volume per atom 25 Å³ outside [19, 21] Å³",)
    files = codec.to_files(flagged)
    back = codec.from_files(files)
    assert back.domain_warnings == flagged.domain_warnings
    assert codec.to_files(back) == files
    # a record written before the field existed: same JSON without the key
    meta = json.loads(files["meta.json"].decode())
    del meta["data"]["state"]["__dict__"]["domain_warnings"]
    old = dict(files, **{"meta.json": json.dumps(meta).encode()})
    assert codec.from_files(old).domain_warnings == ()
    with pytest.raises(InputError, match="domain_warnings"):
        obj.replace(domain_warnings=[1.5])


# -- the CLI ---------------------------------------------------------------------------------

def test_cli_budget_and_show_print_domain_warnings(tmp_path):
    from scaleladder.cli.main import app
    from scaleladder.core.store import Store

    c = np.diag([166.0, 166.0, 166.0, 80.0, 80.0, 80.0])
    c[:3, :3] += 64.0 * (1 - np.eye(3))
    rng = np.random.default_rng(0)
    src = {name: c + rng.normal(0.0, s, (4, 6, 6)) * np.eye(6)
           for name, s in (("fit ensemble", 2.0), ("dft", 1.0))}
    msg = "unstrained reference cell: volume per atom 22.5 Å³ outside the training range [19, 21] Å³"
    tensor = ElasticTensor(Estimate(c, "GPa", src), relaxed_ions=True, structure="Si",
                           domain_warnings=(msg,))
    st = Store(tmp_path / "store")
    key = st.put("k" * 64, tensor, stage="elastic", version="1", params={}, inputs={},
                 elapsed_s=0.0)
    st.add_run("elastic-constants", {}, {"elastic": key})
    runner = CliRunner()
    res = runner.invoke(app, ["budget", "latest", "--store", str(tmp_path / "store")])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())         # rich wraps long lines
    assert "outside the training domain" in out
    assert "elastic: " + msg in out
    res = runner.invoke(app, ["show", "latest:elastic", "--store", str(tmp_path / "store")])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "outside the training domain" in out and msg in out
    # nothing printed for a run without warnings
    st.put("m" * 64, tensor.replace(domain_warnings=()), stage="elastic", version="1", params={},
           inputs={}, elapsed_s=0.0)
    st.add_run("elastic-constants", {}, {"elastic": "m" * 64})
    res = runner.invoke(app, ["budget", "latest", "--store", str(tmp_path / "store")])
    assert res.exit_code == 0, res.output
    assert "outside the training domain" not in res.output


def test_vacancy_formation_energy_flags_the_relaxed_vacancy_core():
    """The relaxed SW vacancy pulls its four neighbours 0.56 Å inwards: bonds far outside a
    bulk-trained neighbour-distance range are flagged; the unrelaxed vacancy stays inside."""
    from scaleladder.atomistic import vacancy_formation_energy

    si = bulk("Si", "diamond", a=A0, cubic=True)
    calc = fitted_calculator(_fp())
    with warnings.catch_warnings():
        warnings.simplefilter("error", DomainWarning)
        unrelaxed = vacancy_formation_energy(si, calc, supercell=(2, 2, 2), relax=False)
    assert unrelaxed.domain_warnings == ()
    with pytest.warns(DomainWarning, match="vacancy_formation_energy"):
        relaxed = vacancy_formation_energy(si, calc, supercell=(2, 2, 2), relax=True)
    assert relaxed.domain_warnings
    assert all(m.startswith("vacancy supercell (relaxed)") for m in relaxed.domain_warnings)
    assert any("neighbour" in m for m in relaxed.domain_warnings)
    assert relaxed.value.value < unrelaxed.value.value - 1.0


def test_training_domain_records_coordination_and_surfaces_and_vacancies_leave_it():
    """Bulk training cells are all 4-coordinated: the atoms of a (111) slab and the neighbours
    of a vacancy are 3-coordinated and flagged even where distances and volume look bulk-like."""
    from scaleladder.atomistic import vacancy_formation_energy
    from scaleladder.atomistic.fitting import training_domain
    from scaleladder.handoffs import Configuration

    confs = []
    for a in (5.38, 5.431, 5.48):
        at = bulk("Si", "diamond", a=a, cubic=True)
        at.rattle(0.03, seed=1)
        at.calc = StillingerWeber()
        at.get_potential_energy()
        at.get_stress()
        confs.append(Configuration.from_atoms(at, label="ev"))
    dom = training_domain(confs, [c.energy_per_atom for c in confs])
    assert dom["coordination"] == [4, 4]
    assert 2.8 < dom["coordination_cutoff"] < 3.84 * 0.9  # between the first and second shells
    calc = fitted_calculator(_fp(coordination=dom["coordination"],
                                 coordination_cutoff=dom["coordination_cutoff"]))
    si = bulk("Si", "diamond", a=A0, cubic=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DomainWarning)
        elastic_constants(si, calc, relax_ions=False)  # strained bulk: still 4-coordinated
    with pytest.warns(DomainWarning):
        g = surface_energy(si, calc, (1, 1, 1), layers=2, relax=False)
    assert any("coordination [3]" in m and m.startswith("unrelaxed slab") for m in g.domain_warnings)
    with pytest.warns(DomainWarning):
        v = vacancy_formation_energy(si, calc, supercell=(2, 2, 2), relax=False)
    assert any(m.startswith("vacancy supercell: 4 atom(s)") and "coordination [3]" in m
               for m in v.domain_warnings)
    with pytest.raises(InputError, match="coordination_cutoff"):
        _fp(coordination=[4, 4], coordination_cutoff=-1.0)
