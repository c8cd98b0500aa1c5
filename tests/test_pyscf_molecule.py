"""Molecules (atoms.pbc all False) in PySCFCalculator: RKS/UKS energy and forces.

Tolerances
----------
Forces are checked against central differences of the energy, step h = 1e-3 Å, conv_tol 1e-11 Ha.
Energy noise ~1e-11 Ha ~ 3e-10 eV gives ~1e-7 eV/Å after dividing by 2h; truncation
h^2 |d3E/dx3| / 6 is <= ~2e-5 eV/Å for bond-stretch curvatures of ~100 eV/Å^3.  Measured
disagreement: 5e-6 eV/Å (H2O, RKS) and 5e-5 eV/Å (OH, UKS).  The checks use 1e-4 (RKS) and
2e-4 eV/Å (UKS) on forces of 0.5-6 eV/Å; a missing grid response (~1e-3 eV/Å), a wrong unit
(factor 1.9 for Bohr vs Å, 27 for Ha vs eV) or a wrong sign is far outside.

Density fitting changes the energy by the fitting error of the auxiliary basis: measured 2.5e-5 Ha
for H2O/6-31g/PBE; the check is |E_DF - E_exact| < 1e-3 Ha (0.027 eV), while any real error (a
wrong functional, wrong basis, unconverged SCF) costs far more than 1e-3 Ha.
"""
from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase import units as ase_units
from ase.build import molecule

from scaleladder.core.errors import ConvergenceError, InputError, PropertyNotImplementedError
from scaleladder.core.units import HARTREE_EV
from scaleladder.electronic import PySCFCalculator

TIGHT = dict(xc="PBE", conv_tol=1e-11)


def _water():
    at = molecule("H2O")
    at.positions[0, 0] += 0.05  # off-equilibrium and non-symmetric: every force is non-trivial
    at.positions[1, 2] += 0.03
    return at


def _fd_force(calc, atoms, i, j, h=1e-3):
    e = []
    for s in (+1, -1):
        b = atoms.copy()
        b.positions[i, j] += s * h
        calc.calculate(b, ["energy"])
        e.append(calc.results["energy"])
    return -(e[0] - e[1]) / (2 * h)


def test_rks_forces_match_central_finite_differences():
    at = _water()
    calc = PySCFCalculator(basis="sto-3g", **TIGHT)
    calc.calculate(at, ["energy", "forces"])
    f = calc.results["forces"].copy()
    assert f.shape == (3, 3)
    for i, j in [(0, 0), (1, 2)]:
        assert abs(f[i, j]) > 0.1
        assert f[i, j] == pytest.approx(_fd_force(calc, at, i, j), abs=1e-4)
    np.testing.assert_allclose(f.sum(axis=0), 0.0, atol=1e-4)  # no cell, no egg-box
    # density-matrix reuse: the displaced geometries start from the previous density
    calc.calculate(at, ["energy"])
    warm = calc.results["scf_cycles"]
    cold = PySCFCalculator(basis="sto-3g", initial_guess="minao", **TIGHT)
    cold.calculate(at, ["energy"])
    assert warm < cold.results["scf_cycles"]
    assert calc.results["energy"] == pytest.approx(cold.results["energy"], abs=1e-8)


def test_uks_radical_forces_match_central_finite_differences():
    oh = Atoms("OH", positions=[[0.0, 0.0, 0.0], [0.05, 0.0, 0.99]])
    calc = PySCFCalculator(basis="6-31g", spin=1, **TIGHT)
    calc.calculate(oh, ["energy", "forces"])
    f = calc.results["forces"].copy()
    assert abs(f[1, 2]) > 0.3
    assert f[1, 2] == pytest.approx(_fd_force(calc, oh, 1, 2), abs=2e-4)


def test_density_fitting_energy_close_to_exact_integrals():
    at = _water()
    exact = PySCFCalculator(basis="6-31g", xc="PBE", conv_tol=1e-10)
    df = PySCFCalculator(basis="6-31g", xc="PBE", conv_tol=1e-10, density_fit=True)
    exact.calculate(at, ["energy"])
    df.calculate(at, ["energy", "forces"])
    diff_ha = (df.results["energy"] - exact.results["energy"]) / HARTREE_EV
    assert diff_ha != 0.0  # it really ran with density fitting
    assert abs(diff_ha) < 1e-3
    assert df.results["forces"].shape == (3, 3)


def test_odd_electron_count_without_spin_is_an_input_error_naming_spin():
    oh = Atoms("OH", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 0.97]])
    calc = PySCFCalculator(basis="sto-3g", xc="PBE")
    with pytest.raises(InputError) as exc:
        calc.calculate(oh, ["energy"])
    assert exc.value.field == "spin"
    assert "odd" in str(exc.value)
    with pytest.raises(InputError) as exc:  # wrong parity given explicitly
        PySCFCalculator(basis="sto-3g", spin=2).calculate(oh, ["energy"])
    assert exc.value.field == "spin"
    with pytest.raises(InputError) as exc:
        PySCFCalculator(spin=-1)
    assert exc.value.field == "spin"


def test_stress_of_a_molecule_is_not_implemented():
    at = _water()
    at.calc = PySCFCalculator(basis="sto-3g", xc="PBE")
    with pytest.raises(PropertyNotImplementedError):
        at.get_stress()
    assert "stress" not in at.calc.results


def test_energy_is_pyscf_e_tot_times_hartree():
    from pyscf import dft, gto

    at = _water()
    calc = PySCFCalculator(basis="sto-3g", xc="PBE", conv_tol=1e-12)
    calc.calculate(at, ["energy"])
    mol = gto.M(atom=[(s, tuple(r)) for s, r in zip(at.get_chemical_symbols(), at.positions)],
                basis="sto-3g", unit="Angstrom", verbose=0)
    mf = dft.RKS(mol)
    mf.xc = "PBE"
    mf.conv_tol = 1e-12
    mf.kernel()
    # all-electron H2O: about -75.2 Ha = -2047 eV (a value in Hartree fails)
    assert -2100 < calc.results["energy"] < -2000
    # core.units takes Hartree from ase.units: one constant set, so the conversion is exact
    assert HARTREE_EV == ase_units.Hartree
    assert calc.results["energy"] == pytest.approx(mf.e_tot * ase_units.Hartree, abs=1e-8)  # two SCF runs
    assert calc.results["free_energy"] == calc.results["energy"]


def test_unconverged_molecular_scf_raises_convergence_error():
    at = _water()
    calc = PySCFCalculator(basis="sto-3g", xc="PBE", max_cycle=1, label="water_test")
    with pytest.raises(ConvergenceError) as exc:
        calc.calculate(at, ["energy"])
    assert "water_test" in exc.value.configuration and "H2O" in exc.value.configuration
    assert exc.value.settings["max_cycle"] == 1
    assert "energy" not in calc.results


def test_mixed_periodicity_is_an_input_error():
    at = _water()
    at.cell = [10.0, 10.0, 10.0]
    at.pbc = (True, True, False)
    with pytest.raises(InputError) as exc:
        PySCFCalculator(basis="sto-3g").calculate(at, ["energy"])
    assert "fully periodic" in str(exc.value) and "fully open" in str(exc.value)


def test_open_shell_cluster_cation_falls_back_to_the_newton_solver():
    """(H2O)2+ : DIIS oscillates between the two hole localisations and does not converge in
    100 cycles; the calculator continues with PySCF's second-order solver from the last DIIS
    density and reaches the same state as a second-order SCF run directly with PySCF."""
    from pyscf import dft, gto

    from scaleladder.atomistic.water import water_cluster
    from scaleladder.ladders.qmmm_water import qm_molecules

    cluster = water_cluster(6)
    idx = sorted(3 * k + j for k in qm_molecules(cluster, 2) for j in range(3))
    dimer = cluster[idx]
    calc = PySCFCalculator(xc="PBE", basis="sto-3g", charge=1, spin=1, density_fit=True,
                           conv_tol=1e-9, max_cycle=100)
    dimer.calc = calc
    e = dimer.get_potential_energy()
    assert calc.results["scf_solver"] == "diis+newton"
    mol = gto.M(atom=[(s, tuple(r)) for s, r in zip(dimer.get_chemical_symbols(), dimer.positions)],
                basis="sto-3g", charge=1, spin=1, verbose=0)
    ref = dft.UKS(mol).density_fit()
    ref.xc = "PBE"
    ref = ref.newton()
    ref.conv_tol = 1e-10
    ref.kernel()
    assert ref.converged
    # same state (the other hole localisation / a broken-symmetry state lies > 0.1 eV away);
    # the two second-order runs stop at slightly different residual gradients (measured 3e-5 eV)
    assert e == pytest.approx(ref.e_tot * HARTREE_EV, abs=1e-4)
    with pytest.raises(ConvergenceError, match="Newton"):
        PySCFCalculator(xc="PBE", basis="sto-3g", charge=1, spin=1, density_fit=True,
                        conv_tol=1e-9, max_cycle=2).get_potential_energy(dimer.copy())
