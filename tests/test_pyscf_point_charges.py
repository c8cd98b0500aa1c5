"""Electrostatic embedding of a PySCF molecule in external point charges (``pyscf.qmmm``).

Tolerances
----------
* Energies against a run built directly with ``pyscf.qmmm.mm_charge``: same integrals, same SCF,
  conv_tol 1e-11 Ha, so the check is 1e-8 Ha (measured: ~1e-14 Ha).
* Forces against central differences of the energy, h = 1e-3 Å, conv_tol 1e-11 Ha: noise
  ~1e-7 eV/Å, truncation h² |E'''| / 6 <= ~2e-5 eV/Å; checked to 1e-4 eV/Å (as the molecule tests
  in test_pyscf_molecule.py) on components of 0.01-1 eV/Å.  A missing nuclei-charge term, a wrong
  sign or a Bohr/Å slip is orders of magnitude outside.
* Gaussian charges of width w differ from point charges by q π w² ρ(r_k) + O(w⁴) (the potential of
  the Gaussian differs from q/r by -q erfc(r/w)/r, whose integral is -q π w²): the ratio to
  that leading term is checked to approach 1 (1 % at w = 0.02 Å, 5 % at 0.05 Å; measured 0.4 %
  and 2.4 %), monotonically.
"""
from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from scaleladder.core.errors import InputError, PropertyNotImplementedError
from scaleladder.core.units import BOHR_ANGSTROM, HARTREE_EV
from scaleladder.electronic import PySCFCalculator

TIGHT = dict(xc="PBE", basis="sto-3g", conv_tol=1e-11)

#: three charges around water: a (TIP3P-like) neighbour's O and H's, 2-3 Å away
MM_POS = np.array([[0.3, 0.2, 2.9], [1.0, -0.5, 2.5], [-2.0, 0.3, -1.0]])
MM_Q = np.array([-0.834, 0.417, 0.417])


def _water():
    at = molecule("H2O")
    at.positions[0, 0] += 0.05  # off-equilibrium and non-symmetric
    at.positions[1, 2] += 0.03
    return at


def _pyscf_direct(atoms, positions, charges, radii=None, basis="sto-3g", spin=0):
    """Energy (Hartree) from pyscf.qmmm.mm_charge, built without the calculator."""
    from pyscf import dft, gto, qmmm

    mol = gto.M(atom=[(s, tuple(r)) for s, r in zip(atoms.get_chemical_symbols(),
                                                    atoms.positions)],
                basis=basis, unit="Angstrom", spin=spin, verbose=0)
    mf = dft.RKS(mol) if spin == 0 else dft.UKS(mol)
    mf.xc = "PBE"
    mf.conv_tol = 1e-11
    mf = qmmm.mm_charge(mf, positions, charges, radii=radii, unit="Angstrom")
    e = mf.kernel()
    assert mf.converged
    return float(e), mf


def _energy(calc, atoms, positions=None):
    if positions is not None:
        pc = calc.point_charges
        calc.set_point_charges(positions, pc.charges, pc.widths)
    calc.calculate(atoms, ["energy"])
    return calc.results["energy"]


def _fd_qm(calc, atoms, i, j, h=1e-3):
    e = []
    for s in (+1, -1):
        b = atoms.copy()
        b.positions[i, j] += s * h
        e.append(_energy(calc, b))
    return -(e[0] - e[1]) / (2 * h)


def _fd_charge(calc, atoms, k, j, h=1e-3):
    base = np.array(calc.point_charges.positions)
    e = []
    for s in (+1, -1):
        p = base.copy()
        p[k, j] += s * h
        e.append(_energy(calc, atoms, p))
    calc.set_point_charges(base, calc.point_charges.charges, calc.point_charges.widths)
    return -(e[0] - e[1]) / (2 * h)


# ---------------------------------------------------------------------------- energies
@pytest.mark.parametrize("widths", [None, np.array([0.5, 0.3, 0.3])])
def test_energy_equals_pyscf_qmmm_directly(widths):
    at = _water()
    calc = PySCFCalculator(**TIGHT)
    calc.set_point_charges(MM_POS, MM_Q, widths)
    e = _energy(calc, at) / HARTREE_EV
    ref, _mf = _pyscf_direct(at, MM_POS, MM_Q, radii=widths)
    assert e == pytest.approx(ref, abs=1e-8)
    bare = PySCFCalculator(**TIGHT)
    assert abs(e - _energy(bare, at) / HARTREE_EV) > 1e-2  # the embedding does something


def test_nuclei_charge_energy_is_included():
    """A far charge sees a neutral molecule: E - E_bare -> q mu.r/r^3 (dipole), not -q N_e/r."""
    at = _water()
    bare = PySCFCalculator(**TIGHT)
    e0 = _energy(bare, at) / HARTREE_EV
    r_k = np.array([0.0, 0.0, 100.0])  # Å, along the dipole axis
    q = 1.0
    calc = PySCFCalculator(**TIGHT)
    calc.set_point_charges([r_k], [q])
    de = _energy(calc, at) / HARTREE_EV - e0
    _e, mf = _pyscf_direct(at, np.zeros((1, 3)) + 1e3, [0.0])  # bare density, zero charge
    mu = mf.dip_moment(unit="AU", verbose=0)  # e Bohr, with the nuclei
    d = (r_k - at.get_center_of_mass()) / BOHR_ANGSTROM
    dipole_term = q * float(mu @ d) / np.linalg.norm(d) ** 3
    assert abs(dipole_term) > 1e-5
    # without the nuclei-charge energy de would be ~ -10 q/r = -0.05 Ha
    assert de == pytest.approx(dipole_term, rel=0.05)


def test_clear_restores_bare_energy_and_results_are_not_mixed(tmp_path):
    at = _water()
    calc = PySCFCalculator(scf_checkpoint=tmp_path, **TIGHT)
    e_bare = calc.get_potential_energy(at)
    calc.set_point_charges(MM_POS, MM_Q)
    e_emb = calc.get_potential_energy(at)  # same atoms: must not return the cached bare energy
    assert calc.results["initial_guess"] == "memory"  # the bare density is only the guess
    assert abs(e_emb - e_bare) > 0.1
    assert e_emb == pytest.approx(_pyscf_direct(at, MM_POS, MM_Q)[0] * HARTREE_EV, abs=1e-7)
    calc.clear_point_charges()
    assert calc.get_potential_energy(at) == pytest.approx(e_bare, abs=1e-7)
    files = sorted(p.name for p in tmp_path.glob("*.npz"))
    assert len(files) == 2  # the embedded and the bare density are kept apart
    fresh = PySCFCalculator(scf_checkpoint=tmp_path, **TIGHT)
    assert fresh.get_potential_energy(at) == pytest.approx(e_bare, abs=1e-7)
    assert fresh.results["initial_guess"] == "checkpoint"
    assert fresh.results["scf_cycles"] <= 3


def test_gaussian_charges_tend_to_point_charges_as_width_squared():
    """E(w) - E(point) -> q π w² ρ(r_k): the Gaussian's potential differs from q/r by
    -q erfc(r/w)/r, whose integral is -q π w²; ρ is the electron density at the charge."""
    from pyscf.dft import numint

    at = _water()
    pos = np.array([[0.2, 0.3, 1.9]])  # close to the density: the smearing matters
    q = np.array([-0.8])
    calc = PySCFCalculator(**TIGHT)
    calc.set_point_charges(pos, q)
    e_point = _energy(calc, at) / HARTREE_EV
    _e, mf = _pyscf_direct(at, pos, q)
    ao = numint.eval_ao(mf.mol, pos / BOHR_ANGSTROM)
    rho = float(numint.eval_rho(mf.mol, ao, mf.make_rdm1())[0])  # electrons / Bohr^3
    ratios = []
    for w in (0.1, 0.05, 0.02):
        calc.set_point_charges(pos, q, widths=w)
        diff = _energy(calc, at) / HARTREE_EV - e_point
        ratios.append(diff / (q[0] * np.pi * (w / BOHR_ANGSTROM) ** 2 * rho))
    # measured 1.099, 1.024, 1.0038: the leading term is exact, the rest falls like w^2
    assert abs(ratios[2] - 1.0) < 0.01
    assert abs(ratios[1] - 1.0) < 0.05
    assert abs(ratios[0] - 1.0) > abs(ratios[1] - 1.0) > abs(ratios[2] - 1.0)


# ---------------------------------------------------------------------------- forces
def test_forces_on_atoms_and_charges_match_finite_differences():
    at = _water()
    calc = PySCFCalculator(**TIGHT)
    calc.set_point_charges(MM_POS, MM_Q)
    calc.calculate(at, ["energy", "forces"])
    f = calc.results["forces"].copy()
    f_pc = calc.results["point_charge_forces"].copy()
    assert f_pc.shape == (3, 3)
    # no external field: the charges and the QM atoms together feel no net force
    np.testing.assert_allclose(f.sum(axis=0) + f_pc.sum(axis=0), 0.0, atol=1e-5)
    for i, j in [(0, 2), (2, 1)]:
        assert f[i, j] == pytest.approx(_fd_qm(calc, at, i, j), abs=1e-4)
    for k, j in [(0, 2), (1, 0), (2, 2)]:
        assert abs(f_pc[k, j]) > 1e-2
        assert f_pc[k, j] == pytest.approx(_fd_charge(calc, at, k, j), abs=1e-4)


def test_gaussian_charge_forces_match_finite_differences():
    at = _water()
    calc = PySCFCalculator(**TIGHT)
    calc.set_point_charges(MM_POS, MM_Q, widths=[0.6, 0.4, 0.4])
    calc.calculate(at, ["energy", "forces"])
    f = calc.results["forces"].copy()
    f_pc = calc.results["point_charge_forces"].copy()
    assert f[0, 2] == pytest.approx(_fd_qm(calc, at, 0, 2), abs=1e-4)
    assert f_pc[0, 2] == pytest.approx(_fd_charge(calc, at, 0, 2), abs=1e-4)


def test_uks_point_charge_forces_use_both_spin_densities():
    oh = Atoms("OH", positions=[[0.0, 0.0, 0.0], [0.05, 0.0, 0.99]])
    calc = PySCFCalculator(spin=1, **{**TIGHT, "basis": "6-31g"})  # sto-3g OH: SCF oscillates
    calc.set_point_charges([[0.4, 0.1, 3.2]], [0.5])
    e = _energy(calc, oh) / HARTREE_EV
    ref = _pyscf_direct(oh, [[0.4, 0.1, 3.2]], [0.5], basis="6-31g", spin=1)[0]
    assert e == pytest.approx(ref, abs=1e-8)
    calc.calculate(oh, ["energy", "forces"])
    f_pc = calc.results["point_charge_forces"].copy()
    assert f_pc[0, 2] == pytest.approx(_fd_charge(calc, oh, 0, 2), abs=1e-4)


def test_point_charge_forces_property_and_bare_molecule():
    at = _water()
    calc = PySCFCalculator(**TIGHT)
    calc.calculate(at, ["energy", "forces"])
    assert calc.results["point_charge_forces"].shape == (0, 3)
    calc.set_point_charges(MM_POS, MM_Q)
    f_pc = calc.get_property("point_charge_forces", at)
    assert f_pc.shape == (3, 3) and np.all(np.isfinite(f_pc))


# ---------------------------------------------------------------------------- bad input
def test_bad_point_charge_input_raises_input_error():
    calc = PySCFCalculator(**TIGHT)
    with pytest.raises(InputError, match="positions"):
        calc.set_point_charges([[0.0, 0.0]], [1.0])
    with pytest.raises(InputError, match="charges"):
        calc.set_point_charges(MM_POS, [1.0, 2.0])
    with pytest.raises(InputError, match="positions"):
        calc.set_point_charges([[0.0, np.nan, 1.0]], [1.0])
    with pytest.raises(InputError, match="charges"):
        calc.set_point_charges([[0.0, 0.0, 1.0]], [np.inf])
    with pytest.raises(InputError, match="widths"):
        calc.set_point_charges(MM_POS, MM_Q, widths=[0.1, -0.2, 0.3])
    with pytest.raises(InputError, match="widths"):
        calc.set_point_charges(MM_POS, MM_Q, widths=[0.1, 0.2])
    assert calc.point_charges is None  # nothing half-set
    calc.set_point_charges(np.zeros((0, 3)), [])
    assert calc.point_charges is None


def test_charge_on_a_qm_nucleus_raises_input_error():
    at = _water()
    calc = PySCFCalculator(**TIGHT)
    calc.set_point_charges([at.positions[1] + [0.0, 0.01, 0.0]], [0.4])
    with pytest.raises(InputError, match=r"QM atom 1 \(H\)"):
        calc.get_potential_energy(at)


def test_periodic_cell_with_point_charges_raises_clear_error():
    si = bulk("Si", "diamond", a=5.43)
    calc = PySCFCalculator(kpts=(1, 1, 1))
    calc.set_point_charges([[1.0, 1.0, 1.0]], [0.5])
    with pytest.raises(InputError, match="periodic"):
        calc.get_potential_energy(si)
    calc.clear_point_charges()
    with pytest.raises(PropertyNotImplementedError):
        calc.calculate(si, ["point_charge_forces"])
