"""Lattice thermal conductivity through phono3py with the project's calculators: the same
numbers as phono3py driven directly, the 1/T fall of Umklapp-limited conduction, a harmonic
crystal refused (no three-phonon scattering), and bad input."""
from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes

from scaleladder.atomistic import StillingerWeber
from scaleladder.atomistic.thermal_conductivity import lattice_thermal_conductivity
from scaleladder.core.codec import decode, encode
from scaleladder.core.errors import CalculationError, InputError
from scaleladder.handoffs import ThermalConductivity

pytest.importorskip("phono3py")
SI = bulk("Si", "diamond", a=5.431)


def test_rta_equals_phono3py_driven_directly_and_falls_like_one_over_t():
    from ase import Atoms
    from phono3py import Phono3py
    from phonopy.structure.atoms import PhonopyAtoms

    calc = StillingerWeber()
    ours = lattice_thermal_conductivity(SI, calc, temperatures=(300.0, 600.0), mesh=(9, 9, 9))
    assert isinstance(ours, ThermalConductivity) and ours.kappa.unit == "W/m/K"
    # phono3py through its own API, the same settings
    unit = PhonopyAtoms(symbols=["Si", "Si"], cell=SI.cell.array,
                        scaled_positions=SI.get_scaled_positions(), masses=SI.get_masses())
    ph3 = Phono3py(unit, supercell_matrix=np.diag([3, 3, 3]), primitive_matrix="auto",
                   log_level=0)
    ph3.generate_displacements(distance=0.03)
    F = []
    for c in ph3.supercells_with_displacements:
        a = Atoms(c.symbols, cell=c.cell, scaled_positions=c.scaled_positions, pbc=True)
        a.calc = StillingerWeber()
        F.append(a.get_forces())
    ph3.forces = np.array(F)
    ph3.produce_fc3()
    ph3.symmetrize_fc3()
    ph3.produce_fc2()
    ph3.symmetrize_fc2()
    ph3.mesh_numbers = [9, 9, 9]
    ph3.init_phph_interaction()
    ph3.run_thermal_conductivity(temperatures=[300.0, 600.0], write_kappa=False)
    ref = np.asarray(ph3.thermal_conductivity.kappa)[0]
    k = np.asarray(ours.kappa.value)
    assert np.allclose(k[:, 0, 0], ref[:, 0], rtol=1e-10)
    assert np.allclose(k[:, 0, 1], ref[:, 5], rtol=1e-10, atol=1e-8)
    # cubic: isotropic; Umklapp-limited: kappa ~ 1/T (within the departures of a real crystal)
    assert np.allclose(k[0], k[0, 0, 0] * np.eye(3), rtol=1e-6, atol=1e-6)
    ratio = k[1, 0, 0] / k[0, 0, 0]
    assert 0.35 < ratio < 0.6
    assert ours.at(450.0) == pytest.approx(k[0, 0, 0] * (1 / 450 - 1 / 600) / (1 / 300 - 1 / 600)
                                           + k[1, 0, 0] * (1 / 300 - 1 / 450)
                                           / (1 / 300 - 1 / 600), rel=1e-9)
    back = decode(*encode(ours))
    assert np.array_equal(np.asarray(back.kappa.value), k)


class Harmonic(Calculator):
    """Springs between first neighbours of a reference crystal: third derivatives vanish."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, reference, k=5.0, cutoff=2.5):
        super().__init__()
        from ase.neighborlist import neighbor_list
        self.ref = reference.get_positions().copy()
        self.i, self.j, self.S = neighbor_list("ijS", reference, cutoff)
        self.cell0 = reference.cell.array.copy()
        self.k = k
        self.cutoff = cutoff

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        u = atoms.get_positions() - self.ref
        du = u[self.j] - u[self.i]
        self.results["energy"] = 0.25 * self.k * float(np.sum(du ** 2))
        f = np.zeros_like(u)
        np.add.at(f, self.i, self.k * du)
        self.results["forces"] = f


def test_a_harmonic_crystal_is_refused():
    sc = SI.repeat(3)
    calc = Harmonic(sc)

    class OnSupercell(Calculator):
        implemented_properties = ["energy", "forces"]
        cutoff = 2.5

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            # phono3py's supercell orders atoms like ase's repeat of the primitive cell only up
            # to a permutation: match each atom to its reference site
            d = atoms.get_scaled_positions()[:, None, :] - sc.get_scaled_positions()[None]
            d -= np.round(d)
            perm = np.argmin(np.linalg.norm(d @ sc.cell.array, axis=2), axis=1)
            shifted = sc.copy()
            shifted.positions = sc.positions.copy()
            x = sc.positions.copy()
            x[perm] = sc.positions[perm] + (d[np.arange(len(perm)), perm] @ sc.cell.array)
            shifted.positions = x
            calc.calculate(shifted, ["forces"], all_changes)
            self.results["forces"] = calc.results["forces"][perm]
            self.results["energy"] = calc.results["energy"]
    # the springs are real (fc2 = the spring constant), only the third order vanishes
    from scaleladder.atomistic.thermal_conductivity import force_constants_3
    ph3, _ = force_constants_3(SI, OnSupercell())
    assert np.abs(ph3.fc2).max() > 1.0                       # eV/Å², from the springs
    assert np.abs(ph3.fc3).max() < 1e-8
    with pytest.raises(CalculationError, match="diverges"):
        lattice_thermal_conductivity(SI, OnSupercell(), mesh=(5, 5, 5))


def test_bad_input_is_refused():
    calc = StillingerWeber()
    with pytest.raises(InputError, match="supercell"):
        lattice_thermal_conductivity(SI, calc, supercell=(1, 1, 1))       # 3.8 Å < 2 x cutoff
    with pytest.raises(InputError, match="pair_cutoff"):
        lattice_thermal_conductivity(SI, calc, pair_cutoff=8.0)
    with pytest.raises(InputError, match="temperatures"):
        lattice_thermal_conductivity(SI, calc, temperatures=(300.0, -5.0))
    with pytest.raises(InputError, match="method"):
        lattice_thermal_conductivity(SI, calc, method="Green-Kubo")
    with pytest.raises(InputError, match="positive semi-definite"):
        ThermalConductivity([300.0], -np.eye(3)[None], "given")


def test_a_fitted_potential_gives_kappa_with_its_fit_ensemble_as_a_source():
    from scaleladder.atomistic.stillinger_weber import SW_SILICON
    from scaleladder.handoffs import FittedPotential
    from scaleladder.ladders.thermal_conductivity import TEMPERATURES, fitted_kappa

    eps = SW_SILICON["epsilon"]
    fp = FittedPotential(form="StillingerWeber", species=("Si",), parameters=dict(SW_SILICON),
                         fitted=("epsilon",), ensemble=np.array([[eps * 0.97], [eps * 1.03]]),
                         ensemble_method="laplace",
                         training_domain={"volume_per_atom": [19.0, 21.0]},
                         units={"epsilon": "eV", "sigma": "Å"})
    k = fitted_kappa(fp, members=2, supercell=3, mesh=7)
    assert set(k.kappa.sources) == {"q_mesh", "fit ensemble"}
    s = np.asarray(k.scalar().value)
    fe = k.kappa.sources["fit ensemble"][:, :, 0, 0]
    i300 = list(TEMPERATURES).index(300.0)
    # a larger epsilon (every force constant scaled alike) conducts more; the nominal lies
    # between the two members
    assert fe[0, i300] < s[i300] < fe[1, i300]
    with pytest.raises(InputError, match="Stillinger-Weber"):
        fitted_kappa(fp.replace(form="Tersoff"), members=2, supercell=3, mesh=7)
