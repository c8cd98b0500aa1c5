"""QM regions and link atoms, the classical QM–MM pair interaction and the energy ledger.

Tolerances
----------
* Link-atom chain rule: ``distribute_forces`` is the transpose of the Jacobian of the map from
  real-atom positions to (QM atom, link atom) positions, an exact linear identity: checked as
  ``f · J δ == D(f) · δ`` for random f and δ to 1e-12 (rounding only).
* PairInteractions forces against central differences of its energy, step h = 1e-5 Å: the
  truncation error h^2 |E'''| / 6 is < 1e-8 eV/Å for the pair distances used (>= 1.6 Å, charges
  <= 0.8 e, LJ epsilon <= 0.05 eV) and rounding ~1e-16 * |E| / h ~ 1e-10; the check is 1e-7 eV/Å
  on forces of 0.01-3 eV/Å, so a wrong sign, a missing factor or a missed pair fails.
* Analytic values (Coulomb of two point charges with k_e = Hartree * Bohr, the LJ minimum
  -epsilon at 2^(1/6) sigma) to 1e-12 relative.
"""
from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk, molecule
from ase.data import covalent_radii

from scaleladder.core.errors import CalculationError, InputError
from scaleladder.coupling import (COULOMB_EV_A, EnergyLedger, LinkAtom, PairInteractions,
                                  QMRegion, default_link_fraction)


def _ethane():
    at = molecule("C2H6")  # C0, C1; H2-H4 on C0, H5-H7 on C1
    at.rattle(0.02, seed=1)
    return at


# ------------------------------------------------------------------------------ link atoms
def test_default_link_fraction_from_covalent_radii():
    g = default_link_fraction("C", "C", "H")
    assert g == pytest.approx((covalent_radii[6] + covalent_radii[1]) / (2 * covalent_radii[6]))
    assert 0.70 < g < 0.71
    # Si-Si cut capped with H: (1.11 + 0.31) / 2.22
    assert default_link_fraction("Si", "Si") == pytest.approx(1.42 / 2.22, rel=1e-12)
    with pytest.raises(InputError) as err:
        default_link_fraction("C", "Xx")
    assert err.value.field == "mm_symbol"


def test_region_finds_cut_bond_and_places_link_on_it():
    at = _ethane()
    reg = QMRegion(at, [4, 0, 2, 3])
    assert reg.qm_indices.tolist() == [0, 2, 3, 4]
    assert reg.mm_indices.tolist() == [1, 5, 6, 7]
    assert reg.cut_bonds == [(0, 1)]
    (lk,) = reg.links
    assert (lk.qm_index, lk.mm_index, lk.element) == (0, 1, "H")
    assert lk.g == pytest.approx(default_link_fraction("C", "C"))
    model = reg.qm_atoms(at)
    assert model.get_chemical_symbols() == ["C", "H", "H", "H", "H"]
    assert model.get_chemical_formula() == "CH4"
    d_cc = at.get_distance(0, 1)
    # on the C-C axis, at g times the C-C distance from the QM carbon
    r_l = model.positions[-1]
    np.testing.assert_allclose(r_l, at.positions[0] + lk.g * (at.positions[1] - at.positions[0]),
                               atol=1e-14)
    assert np.linalg.norm(r_l - at.positions[0]) == pytest.approx(lk.g * d_cc, rel=1e-12)
    assert 1.05 < lk.g * d_cc < 1.10  # a C-H bond length
    assert reg.electrons == 10
    assert "CH4" in reg.describe() and "H(0-1)" in reg.describe()


def test_whole_molecule_selection_cuts_nothing():
    at = _ethane()
    reg = QMRegion(at, range(len(at)), links=None)
    assert reg.cut_bonds == [] and reg.links == () and reg.mm_indices.size == 0


def test_distribute_forces_is_the_transpose_of_the_link_jacobian():
    at = molecule("C3H8")
    qm = [i for i in range(len(at)) if i == 0 or at.get_distance(0, i) < 1.2]  # central CH2
    reg = QMRegion(at, qm)
    assert reg.n_links == 2 and reg.qm_atoms(at).get_chemical_formula() == "CH4"
    rng = np.random.default_rng(4)
    f_model = rng.normal(size=(reg.n_qm + reg.n_links, 3))
    delta = rng.normal(size=(len(at), 3))
    # model-system displacement produced by delta (the link position is linear in r_Q, r_M)
    pos = at.positions
    d_link = reg.link_positions(pos + delta) - reg.link_positions(pos)
    d_model = np.vstack([delta[reg.qm_indices], d_link])
    lhs = float((f_model * d_model).sum())
    rhs = float((reg.distribute_forces(f_model, len(at)) * delta).sum())
    assert lhs == pytest.approx(rhs, abs=1e-12)
    # total force conserved: (1 - g) + g = 1
    np.testing.assert_allclose(reg.distribute_forces(f_model).sum(0), f_model.sum(0), atol=1e-13)


def test_periodic_links_use_the_minimum_image():
    si = bulk("Si", "diamond", a=5.431, cubic=True)  # 8 atoms; atom 0's bonds cross the cell
    reg = QMRegion(si, [0])
    assert len(reg.cut_bonds) == 4 and reg.n_links == 4
    bond = np.sqrt(3) / 4 * 5.431
    d = np.linalg.norm(reg.link_positions(si.positions) - si.positions[0], axis=1)
    np.testing.assert_allclose(d, reg.links[0].g * bond, rtol=1e-12)
    model = reg.qm_atoms(si)
    assert model.get_chemical_formula() == "H4Si" and model.pbc.all()


def test_explicit_links_and_their_validation():
    at = _ethane()
    reg = QMRegion(at, [0, 2, 3, 4], links=[LinkAtom(0, 1, g=0.7)])
    assert reg.links[0].g == 0.7
    reg = QMRegion(at, [0, 2, 3, 4], links=[LinkAtom(0, 1, element="F")])  # g from radii
    assert reg.links[0].g == pytest.approx(default_link_fraction("C", "C", "F"))
    with pytest.raises(InputError) as err:
        QMRegion(at, [0, 2, 3, 4], links=[LinkAtom(1, 0)])  # qm_index in MM
    assert err.value.field == "links"
    with pytest.raises(InputError) as err:
        QMRegion(at, [0, 2, 3, 4], links=[])  # cut bond without a link
    assert err.value.field == "links" and "0-1" in str(err.value)
    with pytest.raises(InputError) as err:
        LinkAtom(0, 1, g=1.5)
    assert err.value.field == "g"
    with pytest.raises(InputError) as err:
        LinkAtom(0, 0)
    assert err.value.field == "mm_index"


@pytest.mark.parametrize("qm, hint", [([], "empty"), ([0, 8], "out of range"),
                                      ([0, 2, 2], "duplicated"), ([0.5], "integer")])
def test_bad_qm_selections_name_qm_indices(qm, hint):
    with pytest.raises(InputError) as err:
        QMRegion(_ethane(), qm)
    assert err.value.field == "qm_indices"


def test_cut_bond_without_links_is_refused_with_the_bonds_listed():
    with pytest.raises(InputError) as err:
        QMRegion(_ethane(), [0, 2, 3, 4], links=None)
    assert err.value.field == "qm_indices"
    assert "cuts a bond without link-atom information" in str(err.value)
    assert "0-1" in str(err.value)


def test_overlapping_selection_and_wrong_system():
    at = _ethane()
    reg = QMRegion(at, [0, 2, 3, 4])
    reg.check_disjoint([1, 5, 6, 7])
    with pytest.raises(InputError) as err:
        reg.check_disjoint([1, 2, 5])
    assert err.value.field == "mm_indices" and "[2]" in str(err.value)
    with pytest.raises(InputError) as err:
        reg.qm_atoms(molecule("H2O"))
    assert err.value.field == "atoms"
    with pytest.raises(InputError) as err:
        reg.distribute_forces(np.zeros((4, 3)))
    assert err.value.field == "f_qm_plus_links"


# ------------------------------------------------------------------------------ interactions
def _two_clusters(seed=0, pbc=False):
    rng = np.random.default_rng(seed)
    qm = Atoms("OHH", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    mm = Atoms("OHHNa", positions=[[2.9, 0.1, 0.2], [3.3, 0.9, 0.1], [3.3, -0.7, 0.4],
                                   [-1.0, -2.2, 0.5]])
    qm.positions += rng.normal(scale=0.05, size=(3, 3))
    mm.positions += rng.normal(scale=0.05, size=(4, 3))
    if pbc:
        for a in (qm, mm):
            a.cell = [[9.0, 0, 0], [1.0, 8.5, 0], [0.5, 0.3, 9.5]]
            a.pbc = True
        mm.positions[3] += [9.0, 0, 0]  # the Na sits one cell away: only its image is close
    return qm, np.array([-0.8, 0.4, 0.4]), mm, np.array([-0.834, 0.417, 0.417, 0.6])


def _fd(inter, qm, qq, mm, qmm, h=1e-5):
    f_qm = np.zeros((len(qm), 3))
    f_mm = np.zeros((len(mm), 3))
    for sys, out in ((qm, f_qm), (mm, f_mm)):
        for i in range(len(sys)):
            for k in range(3):
                e = []
                for s in (1, -1):
                    sys.positions[i, k] += s * h
                    e.append(inter.calculate(qm, qq, mm, qmm)[0])
                    sys.positions[i, k] -= s * h
                out[i, k] = -(e[0] - e[1]) / (2 * h)
    return f_qm, f_mm


@pytest.mark.parametrize("cutoff, pbc", [(None, False), (4.0, False), (4.0, True)])
def test_pair_interaction_forces_match_finite_differences(cutoff, pbc):
    qm, qq, mm, qmm = _two_clusters(pbc=pbc)
    inter = PairInteractions({("O", "O"): (0.0066, 3.15), ("H", "Na"): (0.01, 2.0),
                              ("Na", "O"): (0.05, 2.6)}, cutoff=cutoff)
    e, f_qm, f_mm = inter.calculate(qm, qq, mm, qmm)
    assert np.isfinite(e) and abs(e) > 0.05
    fd_qm, fd_mm = _fd(inter, qm, qq, mm, qmm)
    assert np.abs(f_mm).max() > 0.01
    np.testing.assert_allclose(f_qm, fd_qm, atol=1e-7)
    np.testing.assert_allclose(f_mm, fd_mm, atol=1e-7)
    np.testing.assert_allclose(f_qm.sum(0) + f_mm.sum(0), 0.0, atol=1e-12)  # Newton III


def test_pair_interaction_minimum_image_equals_unwrapped_positions():
    qm, qq, mm, qmm = _two_clusters(pbc=True)
    inter = PairInteractions({("Na", "O"): (0.05, 2.6)}, cutoff=4.0)
    e_pbc, f_qm, f_mm = inter.calculate(qm, qq, mm, qmm)
    qm2, _, mm2, _ = _two_clusters(pbc=False)  # same atoms, Na not shifted, no cell
    e_open, g_qm, g_mm = inter.calculate(qm2, qq, mm2, qmm)
    assert e_pbc == pytest.approx(e_open, abs=1e-12)
    np.testing.assert_allclose(f_mm, g_mm, atol=1e-12)


def test_pair_interaction_analytic_values_and_symmetric_lookup():
    k_e = units.Hartree * units.Bohr
    assert COULOMB_EV_A == pytest.approx(14.39964, rel=1e-6)
    a = Atoms("O", positions=[[0, 0, 0]])
    b = Atoms("H", positions=[[0, 0, 2.5]])
    e, fa, fb = PairInteractions().calculate(a, [0.5], b, [-0.3])
    assert e == pytest.approx(k_e * 0.5 * -0.3 / 2.5, rel=1e-13)
    assert fb[0, 2] == pytest.approx(-k_e * 0.5 * -0.3 / 2.5 ** 2 * -1, rel=1e-13)  # attracted
    assert fb[0, 2] < 0
    eps, sig = 0.02, 3.0
    b.positions[0, 2] = 2 ** (1 / 6) * sig
    inter = PairInteractions({("H", "O"): (eps, sig)}, coulomb=False)  # looked up as (O, H)
    e, fa, fb = inter.calculate(a, [0.5], b, [-0.3])
    assert e == pytest.approx(-eps, rel=1e-12)
    np.testing.assert_allclose(fb, 0.0, atol=1e-13)
    # with a cutoff the pair energy is shifted to zero there
    inter = PairInteractions({("H", "O"): (eps, sig)}, coulomb=False, cutoff=6.0)
    e_c = inter.calculate(a, [0.5], b, [-0.3])[0]
    assert e_c == pytest.approx(-eps - 4 * eps * ((sig / 6) ** 12 - (sig / 6) ** 6), rel=1e-12)
    b.positions[0, 2] = 6.5
    assert inter.calculate(a, [0.5], b, [-0.3])[0] == 0.0


def test_pair_interaction_bad_input():
    qm, qq, mm, qmm = _two_clusters(pbc=True)
    with pytest.raises(InputError) as err:
        PairInteractions().calculate(qm, qq, mm, qmm)  # periodic without cutoff
    assert err.value.field == "cutoff"
    with pytest.raises(InputError) as err:
        PairInteractions(cutoff=4.5).calculate(qm, qq, mm, qmm)  # >= half the smallest width
    assert err.value.field == "cutoff"
    with pytest.raises(InputError) as err:
        PairInteractions().calculate(qm, qq[:2], mm, qmm)
    assert err.value.field == "qm_charges"
    with pytest.raises(InputError) as err:
        PairInteractions({("O", "O"): (-0.1, 3.0)})
    assert "epsilon" in err.value.field
    with pytest.raises(InputError) as err:
        PairInteractions({("O", "H"): (0.1, 3.0), ("H", "O"): (0.2, 3.0)})
    assert err.value.field == "lj"


# ------------------------------------------------------------------------------ ledger
def _oniom_like_ledger():
    led = EnergyLedger("ONIOM")
    led.add("E_MM(all)", -3.0, +1, {"QM-QM": 1, "QM-MM": 1, "MM-MM": 1})
    led.add("E_QM(QM+links)", -10.0, +1, {"QM-QM": 1})
    led.add("E_MM(QM+links)", -1.0, -1, {"QM-QM": 1})
    return led


def test_ledger_total_counts_and_table():
    led = _oniom_like_ledger()
    led.check()
    assert led.total == pytest.approx(-12.0)
    assert led.counts() == {"QM-QM": 1, "QM-MM": 1, "MM-MM": 1}
    text = str(led)
    for name in ("E_MM(all)", "E_QM(QM+links)", "E_MM(QM+links)", "total", "-12.0000000000"):
        assert name in text
    assert led.as_dict()["total"] == led.total


def test_ledger_catches_double_and_missing_counts():
    led = _oniom_like_ledger()
    led.add("E_QM-MM(Coulomb+LJ)", -0.2, +1, {"QM-MM": 1})  # QM-MM already in E_MM(all)
    with pytest.raises(CalculationError, match="QM-MM counted 2 times"):
        led.check()
    missing = EnergyLedger("additive, no coupling term")
    missing.add("E_QM", -10.0, +1, {"QM-QM": 1})
    missing.add("E_MM(MM)", -2.0, +1, {"MM-MM": 1})
    with pytest.raises(CalculationError, match="QM-MM counted 0 times"):
        missing.check()


def test_ledger_term_validation():
    led = EnergyLedger()
    with pytest.raises(InputError) as err:
        led.add("x", 1.0, +1, {"QM-XX": 1})
    assert err.value.field == "covers"
    with pytest.raises(InputError) as err:
        led.add("x", 1.0, 2, {"QM-QM": 1})
    assert err.value.field == "sign"
    with pytest.raises(InputError) as err:
        led.add("x", float("nan"))
    assert err.value.field == "energy"
