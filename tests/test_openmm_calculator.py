"""OpenMMCalculator and openmm_system_from_forcefield: the same model in two engines.

The force field rebuilt as an OpenMM System must give FixedChargeForceField's energy and forces:
to round-off on OpenMM's double-precision Reference platform (every electrostatics scheme, open
and periodic), and to the CPU platform's single precision on the CPU platform.  Unit conversion
is checked on an analytic case (two charges 1 nm apart) and the calculator's forces against
finite differences of its energy.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
from ase import Atoms

openmm = pytest.importorskip("openmm")

from scaleladder.atomistic.forcefield import COULOMB_CONSTANT  # noqa: E402
from scaleladder.atomistic.openmm_calculator import (KJ_MOL_IN_EV, OpenMMCalculator,  # noqa: E402
                                                     openmm_system_from_forcefield)
from scaleladder.atomistic.water import water_box, water_cluster, water_forcefield  # noqa: E402
from scaleladder.core.errors import InputError, MissingExtraError  # noqa: E402


def _both(atoms, ff, platform):
    atoms.calc = ff
    e1, f1 = atoms.get_potential_energy(), atoms.get_forces()
    calc = OpenMMCalculator(openmm_system_from_forcefield(ff, atoms), platform=platform)
    return e1, f1, calc.get_potential_energy(atoms), calc.get_forces(atoms)


@pytest.mark.parametrize("kwargs", [{}, {"cutoff": 8.0}, {"cutoff": 8.0, "coulomb": "dsf"}])
def test_cluster_matches_reference_platform_to_round_off(kwargs):
    atoms = water_cluster(30, seed=2)
    atoms.rattle(0.05, seed=3)
    e1, f1, e2, f2 = _both(atoms, water_forcefield(atoms, **kwargs), "Reference")
    scale = np.abs(water_forcefield(atoms, **kwargs).get_potential_energies(atoms)).sum()
    assert abs(e1 - e2) < 1e-12 * scale
    assert np.abs(f1 - f2).max() < 1e-11 * np.abs(f1).max()


def test_cluster_no_cutoff_matches_cpu_platform():
    """CPU platform: single-precision nonbonded forces, so agreement to ~1e-6 relative."""
    atoms = water_cluster(30, seed=2)
    atoms.rattle(0.05, seed=3)
    ff = water_forcefield(atoms)
    e1, f1, e2, f2 = _both(atoms, ff, "CPU")
    # the total is a sum of terms of either sign: measure the error against their magnitude
    scale = np.abs(ff.get_potential_energies(atoms)).sum()
    assert abs(e1 - e2) < 1e-6 * scale
    assert np.abs(f1 - f2).max() < 5e-6 * np.abs(f1).max()


@pytest.mark.parametrize("kwargs", [{"cutoff": 6.0, "lj_shift": False}, {"cutoff": 6.0},
                                    {"cutoff": 6.0, "coulomb": "dsf"}])
def test_periodic_box_matches_reference_platform(kwargs):
    atoms = water_box(64, seed=1)                     # 12.4 Å box
    atoms.rattle(0.05, seed=1)
    e1, f1, e2, f2 = _both(atoms, water_forcefield(atoms, **kwargs), "Reference")
    assert e1 == pytest.approx(e2, rel=1e-11, abs=1e-11)
    assert np.abs(f1 - f2).max() < 1e-11 * np.abs(f1).max()


def test_units_two_charges_one_nanometre():
    system = openmm.System()
    for _ in range(2):
        system.addParticle(1.0)
    nb = openmm.NonbondedForce()
    nb.addParticle(1.0, 0.1, 0.0)
    nb.addParticle(-1.0, 0.1, 0.0)
    system.addForce(nb)
    atoms = Atoms("NaCl", positions=[[0, 0, 0], [10.0, 0, 0]])
    calc = OpenMMCalculator(system, platform="Reference")
    e = calc.get_potential_energy(atoms)
    assert e == pytest.approx(-138.93545764438198 * KJ_MOL_IN_EV, rel=1e-14)
    assert e == pytest.approx(-COULOMB_CONSTANT / 10.0, rel=1e-8)     # CODATA 2014 vs 2018
    f = calc.get_forces(atoms)
    assert f[0, 0] == pytest.approx(-e / 10.0, rel=1e-12)          # attraction along +x, eV/Å


def test_openmm_forces_are_minus_the_energy_gradient():
    atoms = water_cluster(3, seed=1)
    ff = water_forcefield(atoms, cutoff=7.0, coulomb="dsf")
    calc = OpenMMCalculator(openmm_system_from_forcefield(ff, atoms), platform="Reference")
    f = calc.get_forces(atoms)
    h = 1e-5
    for a in (0, 4, 8):
        for i in range(3):
            e = []
            for s in (h, -h):
                p = atoms.copy()
                p.positions[a, i] += s
                e.append(calc.get_potential_energy(p))
            assert f[a, i] == pytest.approx(-(e[0] - e[1]) / (2 * h), abs=1e-7)


def test_bad_inputs():
    atoms = water_cluster(2, seed=0)
    ff = water_forcefield(atoms)
    system = openmm_system_from_forcefield(ff, atoms)
    with pytest.raises(InputError, match="system"):
        OpenMMCalculator("not a system")
    with pytest.raises(InputError, match="platform"):
        OpenMMCalculator(system, platform="Abacus")
    with pytest.raises(InputError, match="atoms"):
        OpenMMCalculator(system, platform="Reference").get_potential_energy(atoms[:3])
    with pytest.raises(InputError, match="atoms"):
        openmm_system_from_forcefield(ff, atoms[:3])
    box = water_box(64, seed=1)
    with pytest.raises(InputError, match="cutoff"):
        openmm_system_from_forcefield(water_forcefield(box), box)
    psys = openmm_system_from_forcefield(water_forcefield(box, cutoff=6.0), box)
    skew = box.copy()
    skew.set_cell(np.array([[12.43, 0, 0], [0, 12.43, 0], [9.0, 0, 12.43]]), scale_atoms=True)
    with pytest.raises(InputError, match="cell"):
        OpenMMCalculator(psys, platform="Reference").get_potential_energy(skew)


def test_missing_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "openmm", None)
    with pytest.raises(MissingExtraError, match=r"scaleladder\[openmm\]"):
        OpenMMCalculator(None)


def test_openmm_engine_in_qmmm_equals_the_numba_force_field():
    """OpenMM as the MM engine of ONIOM and of the additive mechanical embedding (through
    from_forcefield: subset() and charges): same energy and forces as FixedChargeForceField."""
    from scaleladder.atomistic.openmm_calculator import OpenMMCalculator
    from scaleladder.atomistic.water import WATER_MODELS, water_cluster, water_forcefield
    from scaleladder.coupling import ONIOM, MechanicalEmbedding, PairInteractions, QMRegion

    atoms = water_cluster(4, seed=3)
    m = WATER_MODELS["spc/fw"]
    lj = PairInteractions(lj={("O", "O"): (m.epsilon_O, m.sigma_O)})
    region = QMRegion(atoms, [0, 1, 2], links=None)
    qm = water_forcefield(atoms).subset([0, 1, 2])       # a stand-in "QM" engine
    for make in (lambda mm: ONIOM(qm, mm, region),
                 lambda mm: MechanicalEmbedding(qm, mm, region, interaction=lj)):
        ref, omm = atoms.copy(), atoms.copy()
        ref.calc = make(water_forcefield(atoms))
        omm.calc = make(OpenMMCalculator.from_forcefield(water_forcefield(atoms), atoms,
                                                         platform="Reference"))
        assert omm.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-8)
        np.testing.assert_allclose(omm.get_forces(), ref.get_forces(), atol=1e-7)
    bare = OpenMMCalculator(OpenMMCalculator.from_forcefield(water_forcefield(atoms), atoms).system)
    with pytest.raises(InputError, match="from_forcefield"):
        bare.subset([0, 1, 2])
