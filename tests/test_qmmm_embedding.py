"""Additive QM/MM with electrostatic embedding (PySCF molecule in the MM charges).

Tolerances
----------
* Energy against ``pyscf.qmmm.mm_charge`` built directly: same integrals, same SCF (conv_tol
  1e-11 Ha); the coupling only adds the MM energy, so the check is 1e-8 Ha (measured ~1e-13).
* Forces against central differences of the coupled energy, h = 1e-3 Å, conv_tol 1e-11 Ha: SCF
  noise ~1e-7 eV/Å; truncation h² |E'''| / 6 (measured up to 1.9e-5 eV/Å on the QM carbon with
  PBE); checked to 1e-4 eV/Å on components of 0.1-5 eV/Å.  A midpoint charge whose
  force went to one atom only, a link chain rule off by g, or a dropped point-charge force moves
  a component by >= 0.01 eV/Å.
* Charge bookkeeping (no SCF) is exact arithmetic: 1e-12.
* A QM region equal to the whole system is the same PySCF calculation with no charges: 1e-8 eV
  on the energy, 1e-5 eV/Å on forces (two SCFs from different guesses, measured 5e-7 eV/Å).
* HF/sto-3g (PySCF's RKS with xc="HF": no DFT grid) keeps the many SCFs cheap; the DFT gradient
  with point charges, grid response included, is checked in test_pyscf_point_charges.py.
"""
from __future__ import annotations

from math import cos, pi, sin

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.calculators.emt import EMT
from ase.calculators.tip3p import TIP3P, angleHOH, epsilon0, qH, rOH, sigma0

from scaleladder.core.errors import InputError, PropertyNotImplementedError
from scaleladder.core.units import HARTREE_EV
from scaleladder.coupling.embedding import (BoundaryTopology, ElectrostaticEmbedding,
                                            embedding_charges)
from scaleladder.coupling.interactions import PairInteractions
from scaleladder.coupling.regions import QMRegion
from scaleladder.electronic import PySCFCalculator

QM = dict(xc="HF", basis="sto-3g", conv_tol=1e-11)
LJ_OO = {("O", "O"): (epsilon0, sigma0)}
#: OPLS-AA-like ethanol charges (C_methyl, C_methylene, O, H_O, 2 H_methylene, 3 H_methyl)
ETHANOL_Q = [-0.18, 0.145, -0.683, 0.418, 0.06, 0.06, 0.06, 0.06, 0.06]
METHYL = [0, 6, 7, 8]  # QM region of ethanol: the methyl group, cut C-C bond (0, 1)


def _water(o: np.ndarray, rot_deg: float) -> Atoms:
    """A rigid TIP3P water (O, H, H) with O at ``o``, rotated about z."""
    r, a = rOH, angleHOH * pi / 180
    w = Atoms("OH2", [(0, 0, 0), (r, 0, 0), (r * cos(a), r * sin(a), 0)])
    w.rotate(rot_deg, "z")
    w.positions += o
    return w


def water_trimer() -> Atoms:
    """QM water first, two MM waters hydrogen-bonded to it (O-O ~2.8-3.0 Å), off symmetry."""
    at = (_water(np.zeros(3), 10.0) + _water(np.array([2.85, 0.3, 0.4]), 200.0)
          + _water(np.array([-1.1, 2.7, -0.5]), 290.0))
    at.positions[1] += [0.02, -0.03, 0.01]  # the QM water slightly distorted
    return at


def ethanol() -> Atoms:
    at = molecule("CH3CH2OH")  # C_methyl 0, C_methylene 1, O 2, H_O 3, H 4-5, H_methyl 6-8
    at.rattle(0.02, seed=1)
    at.set_initial_charges(ETHANOL_Q)
    return at


def _energy(calc, atoms) -> float:
    calc.calculate(atoms, ["energy"])
    return calc.results["energy"]


def _fd(calc, atoms, i, j, h=1e-3) -> float:
    e = []
    for s in (+1, -1):
        b = atoms.copy()
        b.positions[i, j] += s * h
        e.append(_energy(calc, b))
    return -(e[0] - e[1]) / (2 * h)


def _forces(calc, atoms):
    calc.calculate(atoms, ["energy", "forces"])
    return calc.results["energy"], calc.results["forces"].copy()


# ---------------------------------------------------------------------------- energies
def test_embedding_energy_equals_pyscf_qmmm_plus_mm_energy():
    from pyscf import dft, gto, qmmm

    at = water_trimer()
    region = QMRegion(at, [0, 1, 2], links=None)
    calc = ElectrostaticEmbedding(PySCFCalculator(**QM), TIP3P(), region, charge_scheme="rcd")
    e = _energy(calc, at)
    mol = gto.M(atom=[(s, tuple(r)) for s, r in zip(at.get_chemical_symbols()[:3],
                                                    at.positions[:3])],
                basis="sto-3g", unit="Angstrom", verbose=0)
    mf = qmmm.mm_charge(dft.RKS(mol, xc=QM["xc"]), at.positions[3:],
                        np.tile([-2 * qH, qH, qH], 2), unit="Angstrom")
    mf.conv_tol = 1e-11
    e_ref = mf.kernel()
    mm = at[3:]
    mm.calc = TIP3P()
    e_mm = mm.get_potential_energy()
    assert abs(e_mm) > 1e-3  # the MM term is not an empty check (measured -2.0e-3 eV)
    assert (e - e_mm) / HARTREE_EV == pytest.approx(e_ref, abs=1e-8)
    ledger = calc.results["ledger"]
    assert ledger.total == e and ledger.counts() == {"QM-QM": 1, "QM-MM": 1, "MM-MM": 1}
    assert calc.results["n_point_charges"] == 6


def test_qm_region_equal_to_the_whole_system_is_pure_qm():
    at = water_trimer()[:3]
    region = QMRegion(at, [0, 1, 2])
    calc = ElectrostaticEmbedding(PySCFCalculator(**QM), TIP3P(), region,
                                  PairInteractions(LJ_OO))
    e, f = _forces(calc, at)
    pure = PySCFCalculator(**QM)
    pure.calculate(at, ["energy", "forces"])
    assert e == pytest.approx(pure.results["energy"], abs=1e-8)
    # two SCFs converged to 1e-11 Ha from different guesses: densities agree to ~sqrt(1e-11),
    # forces to ~1e-6 eV/Å (measured 5e-7)
    np.testing.assert_allclose(f, pure.results["forces"], atol=1e-5)
    assert calc.results["n_point_charges"] == 0


# ---------------------------------------------------------------------------- forces
def test_water_forces_on_qm_and_mm_atoms_match_finite_differences():
    at = water_trimer()
    region = QMRegion(at, [0, 1, 2], links=None)
    calc = ElectrostaticEmbedding(PySCFCalculator(**QM), TIP3P(), region,
                                  PairInteractions(LJ_OO))
    e, f = _forces(calc, at)
    assert abs(calc.results["lj_energy"]) > 1e-3
    for i, j in [(0, 0), (1, 1), (3, 0), (4, 2), (8, 1)]:  # QM O, QM H, MM O, MM H's
        assert abs(f[i, j]) > 0.01
        assert f[i, j] == pytest.approx(_fd(calc, at, i, j), abs=1e-4)
    # the MM waters feel the QM density: their forces differ from mechanical TIP3P ones
    mm = at[3:]
    mm.calc = TIP3P()
    assert np.abs(f[3:] - mm.get_forces()).max() > 0.05


@pytest.mark.parametrize("scheme", ["none", "z1", "z2", "rcd"])
def test_cut_bond_forces_match_finite_differences(scheme):
    """Methyl of ethanol in QM (CH4 with the link H), CH2OH in MM (EMT + charges): QM atoms,
    the M1 carbon (link atom + its charge), M2 atoms (midpoint charges) and the far H_O."""
    at = ethanol()
    region = QMRegion(at, METHYL)
    assert region.cut_bonds == [(0, 1)]
    calc = ElectrostaticEmbedding(PySCFCalculator(**QM), EMT(), region, charge_scheme=scheme)
    e, f = _forces(calc, at)
    comps = [(0, 0), (6, 1), (1, 0), (1, 1), (2, 1), (3, 0), (4, 2)]
    if scheme in ("z1", "z2"):  # the same code paths as "none" and "rcd": fewer components
        comps = [(0, 0), (1, 1), (2, 1), (4, 2)]
    for i, j in comps:
        assert f[i, j] == pytest.approx(_fd(calc, at, i, j), abs=1e-4)


def test_gaussian_charges_forces_match_finite_differences():
    at = ethanol()
    region = QMRegion(at, METHYL)
    calc = ElectrostaticEmbedding(PySCFCalculator(**QM), EMT(), region, charge_scheme="rcd",
                                  gaussian_width=0.4)
    e, f = _forces(calc, at)
    point = ElectrostaticEmbedding(PySCFCalculator(**QM), EMT(), region, charge_scheme="rcd")
    assert abs(_energy(point, at) - e) > 1e-4  # the smearing is felt
    for i, j in [(1, 0), (2, 1), (4, 2)]:
        assert f[i, j] == pytest.approx(_fd(calc, at, i, j), abs=1e-4)


def test_schemes_differ_next_to_the_link_atom():
    """Keeping q(M1) 0.45 Å behind the link H ("none") over-polarises the QM density."""
    at = ethanol()
    region = QMRegion(at, METHYL)
    e = {}
    for scheme in ("none", "z1", "rcd"):
        calc = ElectrostaticEmbedding(PySCFCalculator(**QM), EMT(), region, charge_scheme=scheme)
        e[scheme] = _energy(calc, at)
    # measured (HF/sto-3g): none - rcd = +0.85 eV, z1 - rcd = -0.32 eV (q(M1) = +0.145 e)
    assert abs(e["none"] - e["rcd"]) > 0.3
    assert abs(e["none"] - e["rcd"]) > abs(e["z1"] - e["rcd"])


# ---------------------------------------------------------------------------- charge schemes
def _charges(scheme):
    at = ethanol()
    region = QMRegion(at, METHYL)
    topo = BoundaryTopology.from_atoms(at, region)
    return at, region, topo, embedding_charges(at.positions, region, at.get_initial_charges(),
                                               scheme, topo)


def test_boundary_topology_of_ethanol():
    _at, _region, topo, _emb = _charges("none")
    assert topo.m1 == (1,)
    assert topo.m2 == ((2, 4, 5),)  # O and the two methylene H's


def test_charge_conservation_of_each_scheme():
    q = np.array(ETHANOL_Q)
    q_mm = q[[1, 2, 3, 4, 5]].sum()
    expected = {"none": q_mm, "rcd": q_mm, "z1": q_mm - q[1],
                "z2": q_mm - q[1] - q[2] - q[4] - q[5]}
    for scheme, total in expected.items():
        assert _charges(scheme)[3].total_charge == pytest.approx(total, abs=1e-12)
    at, _region, _topo, none = _charges("none")
    _at, _region, _topo, rcd = _charges("rcd")
    # RCD keeps the dipole of the MM charges, about any origin (the total is conserved too)
    for origin in (np.zeros(3), at.positions[1], np.array([3.0, -2.0, 1.0])):
        np.testing.assert_allclose(rcd.dipole(origin), none.dipole(origin), atol=1e-12)
    q0 = q[1] / 3
    mid = rcd.site_atoms[:, 0] != rcd.site_atoms[:, 1]
    assert sorted(map(tuple, rcd.site_atoms[mid])) == [(1, 2), (1, 4), (1, 5)]
    np.testing.assert_allclose(rcd.charges[mid], 2 * q0, atol=1e-12)
    np.testing.assert_allclose(rcd.positions[mid],
                               0.5 * (at.positions[1] + at.positions[[2, 4, 5]]), atol=1e-12)
    on_atom = dict(zip(rcd.site_atoms[~mid, 0].tolist(), rcd.charges[~mid]))
    assert 1 not in on_atom  # no charge left on M1
    assert on_atom[2] == pytest.approx(q[2] - q0, abs=1e-12)
    assert on_atom[3] == pytest.approx(q[3], abs=1e-12)


def test_midpoint_force_distribution_is_the_chain_rule():
    """Virtual work: sum_k f_k . dr_k = sum_atoms F_a . dr_a for any displacement."""
    at, _region, _topo, rcd = _charges("rcd")
    rng = np.random.default_rng(3)
    f = rng.normal(size=(len(rcd), 3))
    F = rcd.distribute_forces(f, len(at))
    dr = rng.normal(size=(len(at), 3))
    dr_sites = (rcd.site_weights[:, 0, None] * dr[rcd.site_atoms[:, 0]]
                + rcd.site_weights[:, 1, None] * dr[rcd.site_atoms[:, 1]])
    assert (f * dr_sites).sum() == pytest.approx((F * dr).sum(), abs=1e-12)
    np.testing.assert_allclose(F.sum(axis=0), f.sum(axis=0), atol=1e-12)


# ---------------------------------------------------------------------------- bad input
def test_bad_input_raises_clear_errors():
    at = ethanol()
    region = QMRegion(at, METHYL)
    with pytest.raises(InputError, match="qm_calc"):
        ElectrostaticEmbedding(EMT(), EMT(), region)
    with pytest.raises(InputError, match="charge_scheme"):
        ElectrostaticEmbedding(PySCFCalculator(**QM), EMT(), region, charge_scheme="z3")
    with pytest.raises(InputError, match="gaussian_width"):
        ElectrostaticEmbedding(PySCFCalculator(**QM), EMT(), region, gaussian_width=-0.1)
    calc = ElectrostaticEmbedding(PySCFCalculator(**QM), EMT(), region)
    with pytest.raises(PropertyNotImplementedError):
        calc.calculate(at, ["energy", "stress"])
    periodic = at.copy()
    periodic.cell = [12.0, 12.0, 12.0]
    periodic.pbc = True
    with pytest.raises(InputError, match="pbc"):
        calc.calculate(periodic, ["energy"])
    with pytest.raises(InputError, match="atoms"):
        calc.calculate(at[:5], ["energy"])
    # an M1 with no MM neighbour cannot take part in RCD: QM = O + one H of a water
    w = water_trimer()
    cut = QMRegion(w, [0, 1, 3, 4, 5, 6, 7, 8])  # cuts O0-H2: M1 = H2, alone
    with pytest.raises(InputError, match="charge_scheme"):
        ElectrostaticEmbedding(PySCFCalculator(**QM), TIP3P(), cut).charges(w)


def test_topology_bound_force_field_is_evaluated_through_its_subset():
    """FixedChargeForceField describes the whole cluster: E_MM(MM) must come from its subset,
    and then the electrostatic embedding's MM part equals the mechanical embedding's."""
    from scaleladder.atomistic.water import WATER_MODELS, water_cluster, water_forcefield
    from scaleladder.coupling import MechanicalEmbedding, PairInteractions, QMRegion
    from scaleladder.coupling.embedding import ElectrostaticEmbedding
    from scaleladder.electronic import PySCFCalculator

    atoms = water_cluster(3, seed=1)
    m = WATER_MODELS["spc/fw"]
    lj = PairInteractions(lj={("O", "O"): (m.epsilon_O, m.sigma_O)})
    region = QMRegion(atoms, [0, 1, 2], links=None)
    ee = ElectrostaticEmbedding(PySCFCalculator(xc="HF", basis="sto-3g"), water_forcefield(atoms),
                                region, interaction=lj, charge_scheme="none")
    a = atoms.copy()
    a.calc = ee
    a.get_potential_energy()
    ff = water_forcefield(atoms)
    e_mm_direct = ff.subset(list(range(3, 9))).get_potential_energy(atoms[3:9])
    assert ee.results["mm_energy"] == pytest.approx(e_mm_direct, abs=1e-12)
    me = MechanicalEmbedding(PySCFCalculator(xc="HF", basis="sto-3g"), water_forcefield(atoms),
                             region, interaction=lj)
    b = atoms.copy()
    b.calc = me
    b.get_potential_energy()
    assert b.calc.ledger is not None
    assert ee.results["lj_energy"] != 0.0
