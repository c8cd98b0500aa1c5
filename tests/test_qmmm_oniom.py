"""ONIOM (subtractive) and additive mechanical-embedding QM/MM calculators.

Tolerances
----------
* Against ASE's ``SimpleQMMM`` / ``EIQMMM`` (same calculators, same geometry): both sides sum the
  same terms in a different order, so they agree to rounding, ~1e-15 eV on energies of ~0.2 eV;
  the checks use 1e-10 (eV and eV/Å).
* Forces against central differences of the energy, cheap calculators (EMT, Morse, TIP3P,
  PairInteractions), h = 1e-5 Å: truncation h^2 |E'''| / 6 ~ 1e-9 eV/Å for the ~100 eV/Å^3
  curvatures of bond stretches, rounding ~1e-16 * |E| / h ~ 1e-10; checked to 1e-6 eV/Å on forces
  up to ~10 eV/Å.  A link-atom chain rule off by g or by (1 - g) (g ~ 0.7) moves a force by
  ~0.3 |F_L| ~ 0.1 eV/Å.
* PySCF (HF/sto-3g, conv_tol 1e-11 Ha), h = 1e-3 Å: SCF noise ~1e-11 Ha / 2h ~ 1e-7 eV/Å,
  truncation <= ~3e-5 eV/Å (measured 2.4e-5 on the QM carbon with PBE); checked to 1e-4 eV/Å.
* Whole-system QM region: ONIOM is E_MM + E_QM - E_MM of the same system, exact up to rounding
  of the ~10 eV terms (1e-12); the additive scheme has no MM term (exact).
"""
from __future__ import annotations

from math import cos, pi, sin

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.calculators.emt import EMT
from ase.calculators.qmmm import EIQMMM, LJInteractions, SimpleQMMM
from ase.calculators.tip3p import TIP3P, angleHOH, epsilon0, rOH, sigma0

from scaleladder.atomistic import Morse
from scaleladder.core.errors import InputError, PropertyNotImplementedError
from scaleladder.coupling import (EnergyLedger, MechanicalEmbedding, ONIOM, PairInteractions,
                                  QMRegion)

LJ_OO = {("O", "O"): (epsilon0, sigma0)}


def water_dimer(d: float) -> Atoms:
    """ASE's QM/MM water-dimer test geometry (ase/test/calculator/test_qmmm.py): two rigid
    TIP3P waters (H, H, O order), the second's O on the x axis at distance d from the first's,
    accepting a hydrogen bond from the first water's H at (rOH, 0, 0)."""
    r, a = rOH, angleHOH * pi / 180
    dimer = Atoms("H2OH2O", [(r * cos(a), 0, r * sin(a)), (r, 0, 0), (0, 0, 0),
                             (r * cos(a / 2), r * sin(a / 2), 0),
                             (r * cos(a / 2), -r * sin(a / 2), 0), (0, 0, 0)])
    dimer.positions[3:, 0] += d - dimer.positions[5, 0]
    return dimer


def water_trimer() -> Atoms:
    trimer = water_dimer(2.9)
    third = water_dimer(2.9)[:3]
    third.rotate(100, "z")
    third.positions += [1.2, 3.0, 0.4]
    return trimer + third


def _ef(atoms, calc):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy(), atoms.get_forces().copy(), calc


def _fd_forces(atoms, calc, h=1e-5, components=None):
    atoms = atoms.copy()
    comps = components or [(i, k) for i in range(len(atoms)) for k in range(3)]
    out = {}
    for i, k in comps:
        e = []
        for s in (1, -1):
            b = atoms.copy()
            b.positions[i, k] += s * h
            calc.calculate(b, ["energy"])
            e.append(calc.results["energy"])
        out[(i, k)] = -(e[0] - e[1]) / (2 * h)
    return out


# ------------------------------------------------------------------------ against ASE
@pytest.mark.parametrize("selection", [[0, 1, 2], [3, 4, 5]])
@pytest.mark.parametrize("d", [2.5, 2.74, 3.1, 3.5])
def test_oniom_matches_ase_simpleqmmm_on_the_water_dimer(d, selection):
    dimer = water_dimer(d)
    e_ase, f_ase, _ = _ef(dimer, SimpleQMMM(selection, TIP3P(), TIP3P(), TIP3P()))
    region = QMRegion(dimer, selection, links=None)
    e, f, calc = _ef(dimer, ONIOM(TIP3P(), TIP3P(), region))
    assert e == pytest.approx(e_ase, abs=1e-10)
    np.testing.assert_allclose(f, f_ase, atol=1e-10)
    assert e < -0.1  # a hydrogen-bonded dimer, not an empty comparison
    assert calc.results["ledger"] is calc.ledger
    assert calc.ledger.total == e


@pytest.mark.parametrize("selection", [[0, 1, 2], [3, 4, 5]])
@pytest.mark.parametrize("d", [2.5, 2.74, 3.1, 3.5])
def test_mechanical_embedding_matches_ase_eiqmmm_on_the_water_dimer(d, selection):
    dimer = water_dimer(d)
    e_ase, f_ase, _ = _ef(dimer, EIQMMM(selection, TIP3P(), TIP3P(), LJInteractions(LJ_OO)))
    region = QMRegion(dimer, selection, links=None)
    e, f, calc = _ef(dimer, MechanicalEmbedding(TIP3P(), TIP3P(), region, PairInteractions(LJ_OO)))
    assert e == pytest.approx(e_ase, abs=1e-10)
    np.testing.assert_allclose(f, f_ase, atol=1e-10)
    e_tip3p, f_tip3p, _ = _ef(dimer, TIP3P())  # TIP3P everywhere: the plain TIP3P dimer
    assert e == pytest.approx(e_tip3p, abs=1e-10)
    terms = {t.name: t.energy for t in calc.ledger}
    assert terms["E_QM-MM(Coulomb+LJ)"] == pytest.approx(e_tip3p, abs=1e-10)


def test_schemes_match_ase_with_a_different_qm_level():
    """QM = TIP3P with a short Coulomb switching (rc 3.2 Å): E_QM(QM) != E_MM(QM), so the
    subtractive correction and the QM energy are non-trivial in both comparisons."""
    trimer = water_trimer()
    sel = [0, 1, 2, 3, 4, 5]
    e_ase, f_ase, _ = _ef(trimer, SimpleQMMM(sel, TIP3P(rc=3.2), TIP3P(), TIP3P()))
    region = QMRegion(trimer, sel, links=None)
    e, f, calc = _ef(trimer, ONIOM(TIP3P(rc=3.2), TIP3P(), region))
    terms = {t.name: t.energy for t in calc.ledger}
    assert abs(terms["E_QM(QM+links)"] - terms["E_MM(QM+links)"]) > 1e-2
    assert e == pytest.approx(e_ase, abs=1e-10)
    np.testing.assert_allclose(f, f_ase, atol=1e-10)
    e_ase, f_ase, _ = _ef(trimer, EIQMMM(sel, TIP3P(rc=3.2), TIP3P(), LJInteractions(LJ_OO)))
    e, f, calc = _ef(trimer, MechanicalEmbedding(TIP3P(rc=3.2), TIP3P(), region,
                                                 PairInteractions(LJ_OO)))
    assert e == pytest.approx(e_ase, abs=1e-10)
    np.testing.assert_allclose(f, f_ase, atol=1e-10)


# ------------------------------------------------------------------------ forces = -grad E
def _propane():
    at = molecule("C3H8")  # C0 central; C1, C2 methyls
    at.rattle(0.03, seed=7)
    charges = np.where(at.numbers == 6, -0.18, 0.06)
    charges[0] = -0.12
    at.set_initial_charges(charges)
    return at


def _central_ch2(at):
    return [i for i in range(len(at)) if i == 0 or at.get_distance(0, i) < 1.2]


def _assert_fd(atoms, calc, f, tol):
    fd = _fd_forces(atoms, calc)
    num = np.array([[fd[(i, k)] for k in range(3)] for i in range(len(atoms))])
    np.testing.assert_allclose(f, num, atol=tol)


def test_oniom_forces_with_link_atoms_match_finite_differences():
    at = _propane()
    region = QMRegion(at, _central_ch2(at))
    assert region.n_links == 2 and region.cut_bonds == [(0, 1), (0, 2)]
    mm = Morse(D0=0.3, alpha=1.5, r0=1.4, rc=5.0)
    mm_model = Morse(D0=0.25, alpha=1.6, r0=1.3, rc=5.0)  # a separate low level for the model
    for calc in (ONIOM(EMT(), mm, region), ONIOM(EMT(), mm, region, mm_calc_qm=mm_model)):
        e, f, calc = _ef(at, calc)
        link_force = f[1] - _ef(at, mm)[1][1]  # what the QM correction puts on an M atom
        assert np.abs(link_force).max() > 0.1  # the link atoms matter
        _assert_fd(at, calc, f, 1e-6)


def test_mechanical_embedding_forces_with_link_atoms_match_finite_differences():
    at = _propane()
    region = QMRegion(at, _central_ch2(at))
    inter = PairInteractions({("C", "C"): (0.003, 1.2), ("H", "C"): (0.002, 1.0),
                              ("H", "H"): (0.001, 1.0)})
    calc = MechanicalEmbedding(EMT(), Morse(D0=0.3, alpha=1.5, r0=1.4, rc=5.0), region, inter)
    e, f, calc = _ef(at, calc)
    terms = {t.name: t.energy for t in calc.ledger}
    assert abs(terms["E_QM-MM(Coulomb+LJ)"]) > 1e-2
    q_qm, q_mm = calc.charges(at)  # no get_virtual_charges on Morse: initial charges
    np.testing.assert_allclose(q_qm, at.get_initial_charges()[region.qm_indices])
    _assert_fd(at, calc, f, 1e-6)
    # explicit QM charges replace the MM model's ones (and change the energy)
    calc2 = MechanicalEmbedding(EMT(), Morse(D0=0.3, alpha=1.5, r0=1.4, rc=5.0), region, inter,
                                qm_charges=np.zeros(region.n_qm))
    e2, f2, _ = _ef(at, calc2)
    assert abs(e2 - e) > 1e-3
    _assert_fd(at, calc2, f2, 1e-6)


def test_link_atoms_carry_no_charge_in_the_qmmm_term():
    at = _propane()
    region = QMRegion(at, _central_ch2(at))
    calc = MechanicalEmbedding(EMT(), EMT(), region, PairInteractions())
    _ef(at, calc)
    e_int = {t.name: t.energy for t in calc.ledger}["E_QM-MM(Coulomb+LJ)"]
    q = at.get_initial_charges()
    qm_only, _, _ = PairInteractions().calculate(at[region.qm_indices], q[region.qm_indices],
                                                 at[region.mm_indices], q[region.mm_indices])
    assert e_int == pytest.approx(qm_only, abs=1e-12)


@pytest.mark.parametrize("scheme", ["oniom", "additive"])
def test_qm_region_equal_to_whole_system_is_pure_qm(scheme):
    at = _propane()
    region = QMRegion(at, range(len(at)), links=None)
    mm = Morse(D0=0.3, alpha=1.5, r0=1.4, rc=5.0)
    calc = (ONIOM(EMT(), mm, region) if scheme == "oniom"
            else MechanicalEmbedding(EMT(), mm, region, PairInteractions()))
    e, f, calc = _ef(at, calc)
    e_qm, f_qm, _ = _ef(at, EMT())
    assert e == pytest.approx(e_qm, abs=1e-12)
    np.testing.assert_allclose(f, f_qm, atol=1e-12)
    calc.ledger.check()


def test_ledgers_of_both_schemes_count_each_pair_class_once():
    dimer = water_dimer(2.9)
    region = QMRegion(dimer, [0, 1, 2], links=None)
    for calc in (ONIOM(TIP3P(), TIP3P(), region),
                 MechanicalEmbedding(TIP3P(), TIP3P(), region, PairInteractions(LJ_OO))):
        e, _, calc = _ef(dimer, calc)
        assert isinstance(calc.ledger, EnergyLedger)
        assert calc.ledger.counts() == {"QM-QM": 1, "QM-MM": 1, "MM-MM": 1}
        assert calc.ledger.total == pytest.approx(e, abs=1e-14)
        assert "total" in str(calc.ledger)


def test_stress_is_not_implemented():
    dimer = water_dimer(2.9)
    dimer.calc = ONIOM(TIP3P(), TIP3P(), QMRegion(dimer, [0, 1, 2], links=None))
    with pytest.raises(NotImplementedError):
        dimer.get_stress()
    with pytest.raises(PropertyNotImplementedError):
        dimer.calc.calculate(dimer, ["energy", "stress"])


# ------------------------------------------------------------------------ bad input
def test_bad_input_names_the_field():
    dimer = water_dimer(2.9)
    region = QMRegion(dimer, [0, 1, 2], links=None)
    with pytest.raises(InputError) as err:
        ONIOM(TIP3P(), TIP3P(), region, mm_indices=[2, 3, 4, 5])  # overlapping selections
    assert err.value.field == "mm_indices" and "overlapping" in str(err.value)
    with pytest.raises(InputError) as err:
        MechanicalEmbedding(TIP3P(), TIP3P(), region, PairInteractions(), mm_indices=[3, 4])
    assert err.value.field == "mm_indices"  # atom 5 in neither selection
    ONIOM(TIP3P(), TIP3P(), region, mm_indices=[5, 3, 4])  # the complement is fine
    with pytest.raises(InputError) as err:
        ONIOM(TIP3P(), TIP3P(), [0, 1, 2])
    assert err.value.field == "region"
    with pytest.raises(InputError) as err:
        ONIOM(TIP3P(), "tip3p", region)
    assert err.value.field == "mm_calc"
    with pytest.raises(InputError) as err:
        MechanicalEmbedding(TIP3P(), TIP3P(), region, LJInteractions(LJ_OO).parameters)
    assert err.value.field == "interaction"
    with pytest.raises(InputError) as err:
        MechanicalEmbedding(TIP3P(), TIP3P(), region, PairInteractions(), qm_charges=[0.1, 0.2])
    assert err.value.field == "qm_charges"
    trimer = water_trimer()
    trimer.calc = ONIOM(TIP3P(), TIP3P(), region)  # region built for the dimer
    with pytest.raises(InputError) as err:
        trimer.get_potential_energy()
    assert err.value.field == "atoms"


# ------------------------------------------------------------------------ PySCF
def test_pyscf_oniom_ethane_cut_at_cc_forces_match_finite_differences():
    pytest.importorskip("pyscf")
    from scaleladder.electronic import PySCFCalculator

    at = molecule("C2H6")
    at.rattle(0.02, seed=1)
    region = QMRegion(at, [0, 2, 3, 4])  # CH3 | CH3, capped: CH4 at HF/sto-3g
    calc = ONIOM(PySCFCalculator(basis="sto-3g", xc="HF", conv_tol=1e-11),
                 Morse(D0=0.3, alpha=1.5, r0=1.4, rc=5.0), region)
    e, f, calc = _ef(at, calc)
    assert {t.name: t.energy for t in calc.ledger}["E_QM(QM+links)"] < -1000.0  # CH4, eV
    fd = _fd_forces(at, calc, h=1e-3, components=[(0, 2), (1, 2)])  # Q and M of the cut bond
    for (i, k), val in fd.items():
        assert abs(f[i, k]) > 0.1
        assert f[i, k] == pytest.approx(val, abs=1e-4)


def test_odd_electron_qm_region_error_names_the_region():
    pytest.importorskip("pyscf")
    from scaleladder.electronic import PySCFCalculator

    system = Atoms("HOH2", positions=[[0, 0, 0], [4, 0, 0], [4.96, 0, 0], [3.76, 0.93, 0]])
    region = QMRegion(system, [0], links=None)  # a lone H atom: 1 electron, no spin given
    system.calc = ONIOM(PySCFCalculator(basis="sto-3g", xc="HF"), EMT(), region)
    with pytest.raises(InputError) as err:
        system.get_potential_energy()
    assert err.value.field == "spin"
    assert "QM region H (atoms [0]" in str(err.value) and "1 electrons" in str(err.value)


# ------------------------------------------------------------------------ topology-bound MM
def test_schemes_with_a_topology_bound_force_field():
    """scaleladder's FixedChargeForceField knows one topology: the schemes evaluate its subsets.

    With the same force field at both levels, ONIOM must give the force-field energy of the
    whole system, and the additive scheme with the force field's own Coulomb + LJ between QM and
    MM waters (whole molecules: no bonded term crosses the boundary) must as well.
    """
    water = pytest.importorskip("scaleladder.atomistic.water")
    at = water.water_cluster(3, seed=0)
    ff = water.water_forcefield(at)
    e_ff, f_ff, _ = _ef(at, ff)
    region = QMRegion(at, [0, 1, 2], links=None)
    e, f, calc = _ef(at, ONIOM(ff.subset([0, 1, 2]), ff, region))  # mm_calc_qm from subset
    assert e == pytest.approx(e_ff, abs=1e-10)
    np.testing.assert_allclose(f, f_ff, atol=1e-10)
    o, h = ff.charges[0], ff.charges[1]
    assert ff.lj_epsilon[1] == 0.0  # SPC/Fw: LJ on O only
    lj = {("O", "O"): (float(ff.lj_epsilon[0]), float(ff.lj_sigma[0]))}
    calc = MechanicalEmbedding(ff.subset([0, 1, 2]), ff, region, PairInteractions(lj))
    e, f, calc = _ef(at, calc)
    assert calc.charges(at)[0].tolist() == [o, h, h]
    assert e == pytest.approx(e_ff, abs=1e-10)
    np.testing.assert_allclose(f, f_ff, atol=1e-10)
    cut = QMRegion(at, [0, 1])  # cuts the O0-H2 bond: a link atom the force field has no site for
    with pytest.raises(InputError) as err:
        ONIOM(EMT(), ff, cut)
    assert err.value.field == "mm_calc_qm"


def test_energy_only_calls_skip_the_gradients():
    """An energy-only request computes no QM or MM forces (a QM gradient costs as much as the
    SCF); asking for forces afterwards computes them."""
    from ase.calculators.emt import EMT
    from ase.build import molecule as _molecule

    class Counting(EMT):
        grads = 0

        def get_forces(self, atoms=None):
            Counting.grads += 1
            return super().get_forces(atoms)

    from scaleladder.coupling import ONIOM, QMRegion

    atoms = _molecule("CH3CH2OH")
    atoms.center(vacuum=4.0)
    carbons = [i for i, z in enumerate(atoms.numbers) if z == 6]
    region = QMRegion(atoms, [carbons[0]] + [i for i in range(len(atoms))
                      if atoms.numbers[i] == 1 and atoms.get_distance(i, carbons[0]) < 1.2],
                      links="auto")
    calc = ONIOM(Counting(), Counting(), region)
    atoms.calc = calc
    atoms.get_potential_energy()
    assert Counting.grads == 0 and "forces" not in calc.results
    atoms.get_forces()
    assert Counting.grads > 0
