"""FixedChargeForceField and the water models: derivatives, analytic limits, topology, MD.

Physics checked: forces and stress are central finite differences of the energy (open clusters,
periodic boxes, every electrostatics scheme, 1-4 exceptions); the water molecule at the model's
r0/theta0 has zero energy and forces; two point charges give ``k_e q1 q2 / r``; subsystem
energies add up to the whole with the cross terms computed independently here; NVE MD
conserves energy.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError as AsePNIE

from scaleladder.atomistic.forcefield import COULOMB_CONSTANT, FixedChargeForceField
from scaleladder.atomistic.md import run_md
from scaleladder.atomistic.water import (WATER_MODELS, water_box, water_cluster,
                                         water_forcefield, water_molecule)
from scaleladder.core.errors import InputError, PropertyNotImplementedError


def _fd_forces(atoms, h=1e-5):
    """``-dE/dx`` by central differences."""
    f = np.zeros((len(atoms), 3))
    for a in range(len(atoms)):
        for i in range(3):
            x0 = atoms.positions[a, i]
            e = []
            for s in (h, -h):
                p = atoms.positions.copy()
                p[a, i] = x0 + s
                atoms.positions = p
                e.append(atoms.get_potential_energy())
            p = atoms.positions.copy()
            p[a, i] = x0
            atoms.positions = p
            f[a, i] = -(e[0] - e[1]) / (2 * h)
    return f


def _fd_stress(atoms, h=1e-6):
    """``(1/V) dE/d eps`` by central differences of the energy under a symmetric strain."""
    cell0 = atoms.cell.array.copy()
    pos0 = atoms.positions.copy()
    vol = atoms.get_volume()
    out = np.zeros(6)
    for v, (a, b) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
        e = []
        for s in (h, -h):
            eps = np.eye(3)
            eps[a, b] += s if a == b else s / 2
            eps[b, a] += 0 if a == b else s / 2
            atoms.set_cell(cell0 @ eps, scale_atoms=False)
            atoms.positions = pos0 @ eps
            e.append(atoms.get_potential_energy())
        out[v] = (e[0] - e[1]) / (2 * h) / vol
    atoms.set_cell(cell0)
    atoms.positions = pos0
    return out


def _chain():
    """A bent five-atom chain (1-4 pairs 0-3 and 1-4) plus a separate ion pair."""
    pos = np.array([[0.0, 0.0, 0.0], [1.5, 0.1, 0.0], [2.1, 1.4, 0.2], [3.6, 1.5, -0.3],
                    [4.1, 2.9, 0.1], [0.5, 4.0, 1.0], [2.5, 4.6, 2.8]])
    atoms = Atoms("CCCCHNaCl", positions=pos)
    ff = FixedChargeForceField(
        charges=[0.3, -0.2, 0.1, -0.4, 0.2, 0.7, -0.7],
        lj_epsilon=[0.004, 0.003, 0.004, 0.003, 0.0, 0.005, 0.006],
        lj_sigma=[3.4, 3.3, 3.4, 3.3, 0.0, 2.4, 3.9],
        bonds=[(0, 1, 20.0, 1.52), (1, 2, 22.0, 1.50), (2, 3, 20.0, 1.53), (3, 4, 30.0, 1.09)],
        angles=[(0, 1, 2, 5.0, 1.9), (1, 2, 3, 5.5, 1.95), (2, 3, 4, 4.0, 1.91)],
        scale14=(0.5, 0.4))
    return atoms, ff


# ---------------------------------------------------------------------------------------------
# analytic limits
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", sorted(WATER_MODELS))
def test_water_molecule_equilibrium(model):
    m = WATER_MODELS[model]
    atoms = water_molecule(model)
    d1 = atoms.get_distance(0, 1)
    d2 = atoms.get_distance(0, 2)
    ang = math.radians(atoms.get_angle(1, 0, 2))
    assert d1 == pytest.approx(m.r0, abs=1e-12) and d2 == pytest.approx(m.r0, abs=1e-12)
    assert ang == pytest.approx(m.theta0, abs=1e-10)
    atoms.calc = water_forcefield(atoms, model=model)
    assert abs(atoms.get_potential_energy()) < 1e-20
    assert np.abs(atoms.get_forces()).max() < 1e-10
    # the harmonic curvatures: stretch one bond by 0.01 Å, open the angle by 0.02 rad
    a = atoms.copy()
    a.calc = atoms.calc
    a.positions[1] = a.positions[0] + (m.r0 + 0.01) * (a.positions[1] - a.positions[0]) / m.r0
    assert a.get_potential_energy() == pytest.approx(0.5 * m.k_bond * 0.01 ** 2, rel=1e-10)
    a = water_molecule(model)
    a.calc = atoms.calc
    a.set_angle(1, 0, 2, math.degrees(m.theta0 + 0.02))
    assert a.get_potential_energy() == pytest.approx(0.5 * m.k_angle * 0.02 ** 2, rel=1e-8)


def test_spcfw_parameters_are_the_published_ones():
    m = WATER_MODELS["spc/fw"]
    kcal = 0.0433641043                                     # eV per kcal/mol
    assert (m.q_O, m.q_H) == (-0.82, 0.41)
    assert m.epsilon_O == pytest.approx(0.1554253 * kcal, rel=1e-6)
    assert m.k_bond == pytest.approx(1059.162 * kcal, rel=1e-6)
    assert m.k_angle == pytest.approx(75.90 * kcal, rel=1e-6)
    assert math.degrees(m.theta0) == pytest.approx(113.24)
    assert m.r0 == 1.012 and m.sigma_O == 3.165492


def test_two_charges_and_lj_pair_analytic():
    atoms = Atoms("NaCl", positions=[[0, 0, 0], [2.8, 0, 0]])
    ff = FixedChargeForceField([1.0, -1.0], [0.01, 0.02], [2.5, 3.5])
    atoms.calc = ff
    eps, sig, r = math.sqrt(0.01 * 0.02), 3.0, 2.8
    lj = 4 * eps * ((sig / r) ** 12 - (sig / r) ** 6)
    assert atoms.get_potential_energy() == pytest.approx(-COULOMB_CONSTANT / r + lj, rel=1e-13)
    assert COULOMB_CONSTANT == pytest.approx(14.399645, rel=1e-7)
    # shifted Coulomb with a cutoff, LJ shifted too
    ff2 = FixedChargeForceField([1.0, -1.0], [0.01, 0.02], [2.5, 3.5], cutoff=6.0)
    lj_rc = 4 * eps * ((sig / 6.0) ** 12 - (sig / 6.0) ** 6)
    assert ff2.get_potential_energy(atoms) == pytest.approx(
        -COULOMB_CONSTANT * (1 / r - 1 / 6.0) + lj - lj_rc, rel=1e-13)
    atoms.positions[1, 0] = 6.5                               # beyond the cutoff: nothing
    assert ff2.get_potential_energy(atoms) == 0.0
    assert np.all(ff2.get_forces(atoms) == 0.0)


def test_dsf_energy_and_force_vanish_at_cutoff():
    rc, alpha = 9.0, 0.2
    ff = FixedChargeForceField([1.0, -1.0], [0.0, 0.0], [0.0, 0.0], cutoff=rc, coulomb="dsf",
                               dsf_alpha=alpha)
    atoms = Atoms("NaCl", positions=[[0, 0, 0], [rc - 1e-7, 0, 0]])
    e_pair = ff.get_potential_energy(atoms) - ff.self_energy
    assert abs(e_pair) < 1e-12
    assert np.abs(ff.get_forces(atoms)).max() < 1e-7
    expected_self = -(math.erfc(alpha * rc) / (2 * rc) + alpha / math.sqrt(math.pi)) * \
        COULOMB_CONSTANT * 2
    assert ff.self_energy == pytest.approx(expected_self, rel=1e-14)
    # at short range DSF tends to screened Coulomb: erfc(a r)/r dominates
    atoms.positions[1, 0] = 1.0
    e_pair = ff.get_potential_energy(atoms) - ff.self_energy
    c = math.erfc(alpha) - math.erfc(alpha * rc) / rc + (
        math.erfc(alpha * rc) / rc ** 2
        + 2 * alpha / math.sqrt(math.pi) * math.exp(-alpha ** 2 * rc ** 2) / rc) * (1.0 - rc)
    assert e_pair == pytest.approx(-COULOMB_CONSTANT * c, rel=1e-13)


# ---------------------------------------------------------------------------------------------
# derivatives
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [{}, {"cutoff": 6.0}, {"cutoff": 6.0, "coulomb": "dsf"},
                                    {"cutoff": 6.0, "lj_shift": False, "parallel": True}])
def test_cluster_forces_match_finite_differences(kwargs):
    atoms = water_cluster(6, seed=3)
    atoms.rattle(0.05, seed=1)
    atoms.calc = water_forcefield(atoms, **kwargs)
    f = atoms.get_forces()
    fd = _fd_forces(atoms)
    assert np.abs(f - fd).max() < 1e-6 * max(1.0, np.abs(f).max())
    assert np.abs(f.sum(axis=0)).max() < 1e-10                      # Newton's third law
    assert atoms.get_potential_energies().sum() == pytest.approx(
        atoms.get_potential_energy(), abs=1e-12)
    with pytest.raises((PropertyNotImplementedError, AsePNIE)):
        atoms.get_stress()


def test_chain_with_14_exceptions_forces_and_energy():
    atoms, ff = _chain()
    atoms.calc = ff
    assert ff.pairs14 == {(0, 3), (1, 4)}
    assert {(0, 2), (1, 3), (2, 4)} <= ff.excluded_pairs
    f = atoms.get_forces()
    assert np.abs(f - _fd_forces(atoms)).max() < 1e-7 * np.abs(f).max()
    # independent energy: every pair by hand
    q, eps, sig = ff.charges, ff.lj_epsilon, ff.lj_sigma
    e = 0.0
    for i, j, k, r0 in ff.bonds:
        e += 0.5 * k * (atoms.get_distance(i, j) - r0) ** 2
    for i, j, k, kt, t0 in ff.angles:
        e += 0.5 * kt * (math.radians(atoms.get_angle(i, j, k)) - t0) ** 2
    for i in range(len(atoms)):
        for j in range(i + 1, len(atoms)):
            if (i, j) in ff.excluded_pairs:
                continue
            s = ff.scale14 if (i, j) in ff.pairs14 else (1.0, 1.0)
            r = atoms.get_distance(i, j)
            sg, ep = 0.5 * (sig[i] + sig[j]), math.sqrt(eps[i] * eps[j])
            e += s[0] * COULOMB_CONSTANT * q[i] * q[j] / r
            e += s[1] * 4 * ep * ((sg / r) ** 12 - (sg / r) ** 6)
    assert atoms.get_potential_energy() == pytest.approx(e, rel=1e-12)


@pytest.mark.parametrize("kwargs", [{"cutoff": 4.5}, {"cutoff": 4.5, "coulomb": "dsf"}])
def test_periodic_box_forces_and_stress_match_finite_differences(kwargs):
    atoms = water_box(27, seed=2)                 # 9.3 Å box
    atoms.rattle(0.03, seed=4)
    atoms.calc = water_forcefield(atoms, skin=0.3, **kwargs)
    f = atoms.get_forces()
    assert np.abs(f - _fd_forces(atoms)).max() < 1e-6 * np.abs(f).max()
    s = atoms.get_stress()
    fd = _fd_stress(atoms)
    assert np.abs(s - fd).max() < 1e-6 * np.abs(s).max()
    # molecules wrapped across the boundary: same energy (minimum image in the bonded terms)
    e = atoms.get_potential_energy()
    w = atoms.copy()
    w.positions += [4.0, -3.0, 2.0]
    w.wrap()
    w.calc = water_forcefield(w, **kwargs)
    assert w.get_potential_energy() == pytest.approx(e, abs=1e-10)


def test_parallel_equals_serial_on_a_box():
    atoms = water_box(64, seed=5)
    e = []
    f = []
    for par in (False, True):
        atoms.calc = water_forcefield(atoms, cutoff=6.0, coulomb="dsf", parallel=par)
        e.append(atoms.get_potential_energy())
        f.append(atoms.get_forces())
    assert e[0] == pytest.approx(e[1], abs=1e-10)
    assert np.abs(f[0] - f[1]).max() < 1e-10


# ---------------------------------------------------------------------------------------------
# QM/MM protocol: charges and subsystems
# ---------------------------------------------------------------------------------------------

def test_virtual_charges_protocol():
    atoms = water_cluster(3, seed=0)
    ff = water_forcefield(atoms, model="tip3p-flex")
    q = ff.get_virtual_charges(atoms)
    assert np.allclose(q, [-0.834, 0.417, 0.417] * 3)
    q[0] = 9.0                                            # a copy
    assert ff.charges[0] == -0.834
    assert ff.add_virtual_sites(atoms.positions) is atoms.positions
    with pytest.raises(InputError, match="atoms"):
        ff.get_virtual_charges(atoms[:3])


def _cross_energy(atoms, ff, a_idx, b_idx):
    """Nonbonded pairs between two sets plus the bonded terms crossing between them."""
    q, eps, sig = ff.charges, ff.lj_epsilon, ff.lj_sigma
    e = 0.0
    for i in a_idx:
        for j in b_idx:
            key = (min(i, j), max(i, j))
            if key in ff.excluded_pairs:
                continue
            s = ff.scale14 if key in ff.pairs14 else (1.0, 1.0)
            r = atoms.get_distance(i, j)
            sg, ep = 0.5 * (sig[i] + sig[j]), math.sqrt(eps[i] * eps[j])
            e += s[0] * COULOMB_CONSTANT * q[i] * q[j] / r
            e += s[1] * 4 * ep * ((sg / r) ** 12 - (sg / r) ** 6)
    return e


def test_subset_energies_add_up_whole_molecules_and_cut_bonds():
    atoms = water_cluster(5, seed=7)
    atoms.rattle(0.05, seed=2)
    ff = water_forcefield(atoms)
    e_all = ff.get_potential_energy(atoms)
    # whole molecules: nothing dropped
    a_idx = [0, 1, 2, 6, 7, 8]
    b_idx = [i for i in range(len(atoms)) if i not in a_idx]
    sa, sb = ff.subset(a_idx), ff.subset(b_idx)
    assert not sa.subset_report.cuts_bonds and not sb.subset_report.cuts_bonds
    e_a = sa.get_potential_energy(atoms[a_idx])
    e_b = sb.get_potential_energy(atoms[b_idx])
    assert e_all == pytest.approx(e_a + e_b + _cross_energy(atoms, ff, a_idx, b_idx), abs=1e-11)
    # cut through molecule 1 (atoms 3, 4, 5): one O-H bond and the angle dropped and reported
    a_idx = [0, 1, 2, 3, 4]
    b_idx = [i for i in range(len(atoms)) if i not in a_idx]
    sa, sb = ff.subset(a_idx), ff.subset(b_idx)
    rep = sa.subset_report
    assert rep.dropped_bonds == ((3, 5, ff.bonds[3][2], ff.bonds[3][3]),)
    assert len(rep.dropped_angles) == 1 and rep.dropped_angles[0][:3] == (4, 3, 5)
    dropped = sum(0.5 * k * (atoms.get_distance(i, j) - r0) ** 2
                  for i, j, k, r0 in rep.dropped_bonds)
    dropped += sum(0.5 * kt * (math.radians(atoms.get_angle(i, j, k)) - t0) ** 2
                   for i, j, k, kt, t0 in rep.dropped_angles)
    e_a = sa.get_potential_energy(atoms[a_idx])
    e_b = sb.get_potential_energy(atoms[b_idx])
    cross = _cross_energy(atoms, ff, a_idx, b_idx)
    assert e_all == pytest.approx(e_a + e_b + cross + dropped, abs=1e-11)


def test_subset_keeps_parent_exclusions_and_14_of_chain():
    atoms, ff = _chain()
    sub = ff.subset([0, 1, 3, 4])           # atom 2 removed: 0-3 and 1-4 stay 1-4 pairs
    assert sub.pairs14 == {(0, 2), (1, 3)}
    assert (1, 2) in sub.excluded_pairs      # parent 1-3 pair (1, 3)
    e_all = ff.get_potential_energy(atoms)
    rest = ff.subset([2, 5, 6])
    rep = sub.subset_report
    dropped = sum(0.5 * k * (atoms.get_distance(i, j) - r0) ** 2
                  for i, j, k, r0 in rep.dropped_bonds)
    dropped += sum(0.5 * kt * (math.radians(atoms.get_angle(i, j, k)) - t0) ** 2
                   for i, j, k, kt, t0 in rep.dropped_angles)
    total = (sub.get_potential_energy(atoms[[0, 1, 3, 4]])
             + rest.get_potential_energy(atoms[[2, 5, 6]])
             + _cross_energy(atoms, ff, [0, 1, 3, 4], [2, 5, 6]) + dropped)
    assert e_all == pytest.approx(total, abs=1e-11)


# ---------------------------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------------------------

def test_builders_are_deterministic_and_non_overlapping():
    c1, c2 = water_cluster(20, seed=4), water_cluster(20, seed=4)
    assert np.array_equal(c1.positions, c2.positions)
    assert not np.array_equal(c1.positions, water_cluster(20, seed=5).positions)
    d = c1.get_all_distances()
    mol = np.arange(60) // 3
    inter = mol[:, None] != mol[None, :]
    assert d[inter].min() >= 1.6
    rg = np.sqrt(((c1.positions - c1.positions.mean(0)) ** 2).sum(1).mean())
    assert rg < 6.0                                      # compact, ~spherical
    box = water_box(1000, seed=0)
    assert len(box) == 3000 and box.pbc.all()
    rho = box.get_masses().sum() / box.get_volume() * 1.66053906660   # amu/Å³ -> g/cm³
    assert rho == pytest.approx(0.997, rel=1e-7)     # CODATA 2014 vs 2018 amu
    assert box.cell.lengths()[0] == pytest.approx(31.07, abs=0.01)
    small = water_box(27, seed=1)
    d = small.get_all_distances(mic=True)
    mol = np.arange(81) // 3
    assert d[mol[:, None] != mol[None, :]].min() >= 1.6


# ---------------------------------------------------------------------------------------------
# molecular dynamics
# ---------------------------------------------------------------------------------------------

def test_nve_md_of_flexible_water_cluster_conserves_energy():
    atoms = water_cluster(8, seed=1)
    calc = water_forcefield(atoms)
    res = run_md(atoms, calc, steps=2000, ensemble="nve", temperature_K=150.0,
                 timestep_fs=0.25, seed=3)
    drift = abs(res.drift)                                   # eV/atom/ps over 0.5 ps
    print(f"SPC/Fw 8-molecule cluster, dt = 0.25 fs, 0.5 ps: drift {drift:.2e} eV/atom/ps, "
          f"max |dE| {res.energy_error:.2e} eV/atom")
    assert drift < 2e-5                                      # measured 3e-7
    assert res.energy_error < 1e-4                           # measured 3e-5 (O(dt^2) wobble)
    assert res.temperature_K[1:].mean() > 20.0              # it really moved


def test_neighbour_list_reused_along_md():
    atoms = water_box(27, seed=2)
    calc = water_forcefield(atoms, cutoff=4.5, skin=0.5)
    run_md(atoms, calc, steps=20, ensemble="nve", temperature_K=100.0, timestep_fs=0.25,
           seed=1)
    assert 1 <= calc.neighbour_builds < 5


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

def test_bad_inputs_name_the_field():
    q3 = [0.0, 0.0, 0.0]
    with pytest.raises(InputError, match="lj_epsilon"):
        FixedChargeForceField(q3, [0.0, 0.0], [1.0, 1.0, 1.0])
    with pytest.raises(InputError, match=r"lj_sigma\[1\]"):
        FixedChargeForceField(q3, [0.0] * 3, [1.0, -1.0, 1.0])
    with pytest.raises(InputError, match=r"lj_epsilon\[2\]"):
        FixedChargeForceField(q3, [0.0, 0.0, -0.1], [1.0] * 3)
    with pytest.raises(InputError, match=r"bonds\[0\]\[1\]"):
        FixedChargeForceField(q3, [0.0] * 3, [1.0] * 3, bonds=[(0, 3, 1.0, 1.0)])
    with pytest.raises(InputError, match=r"angles\[0\]"):
        FixedChargeForceField(q3, [0.0] * 3, [1.0] * 3, angles=[(0, 1, 1, 1.0, 1.0)])
    with pytest.raises(InputError, match="charges"):
        FixedChargeForceField([[0.0, 1.0]], [0.0], [1.0])
    with pytest.raises(InputError, match="cutoff"):
        FixedChargeForceField(q3, [0.0] * 3, [1.0] * 3, coulomb="dsf")
    with pytest.raises(InputError, match="coulomb"):
        FixedChargeForceField(q3, [0.0] * 3, [1.0] * 3, coulomb="ewald")
    with pytest.raises(InputError, match="scale14"):
        FixedChargeForceField(q3, [0.0] * 3, [1.0] * 3, scale14=(1.5, 0.5))
    # overlapping atoms of two molecules
    atoms = water_cluster(2, seed=0)
    atoms.positions[3] = atoms.positions[0] + [0.2, 0.0, 0.0]
    atoms.calc = water_forcefield(atoms)
    with pytest.raises(InputError, match="positions") as exc:
        atoms.get_potential_energy()
    assert "atoms 0 and 3" in str(exc.value)
    # periodic box: a cutoff is needed and must respect the minimum image
    box = water_box(27, seed=1)
    with pytest.raises(InputError, match="cutoff"):
        water_forcefield(box).get_potential_energy(box)
    with pytest.raises(InputError, match="cutoff"):
        water_forcefield(box, cutoff=5.0).get_potential_energy(box)
    # water ordering and model names
    with pytest.raises(InputError, match="symbols"):
        water_forcefield(Atoms("HOH", positions=np.eye(3)))
    with pytest.raises(InputError, match="model"):
        water_molecule("tip4p")
    with pytest.raises(InputError, match="atoms"):
        water_forcefield(atoms).get_potential_energy(atoms[:3])
    with pytest.raises(InputError, match="indices"):
        water_forcefield(atoms).subset([0, 0, 1])
