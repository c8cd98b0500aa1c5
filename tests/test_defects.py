"""Point defects: vacancy formation energies and (CI-)NEB migration barriers.

Physics checked:

* pair potentials: the unrelaxed vacancy formation energy is exactly ``-E/N`` (removing an atom
  breaks its bonds, twice its energy share ``e = E/N``: ``E(N-1) = E(N) - 2e``, so
  ``E_f = E(N) - 2e - (N-1) e = -e``), for any supercell longer than the cutoff and any pair
  potential (scaleladder's and ASE's Lennard-Jones);
* relaxation lowers it, and the relaxed value is converged in supercell size;
* a symmetric hop (fcc Cu vacancy, EMT): forward = reverse barrier, the climbing image is the
  highest and sits at the midpoint, and it lies above (and close to) the maximum of a dense
  plain-NEB band;
* an analytic 2D surface with a curved minimum-energy path and a known saddle.
"""
from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones as AseLennardJones

from scaleladder.atomistic import (LennardJones, lj_fcc_reference, migration_barrier,
                                   vacancy_formation_energy, vacancy_migration_path)
from scaleladder.core import codec
from scaleladder.core.errors import ConvergenceError, InputError, UnitError
from scaleladder.handoffs import MigrationBarrier, VacancyFormationEnergy
from scaleladder.uq import Estimate

# argon-like Lennard-Jones, cut at 2.5 sigma (shifted)
EPS, SIG = 0.0104, 3.40
RC = 2.5 * SIG


def _round_trip(obj):
    files = codec.to_files(obj)
    back = codec.from_files(files)
    assert type(back) is type(obj)
    assert codec.to_files(back) == files
    return back


@pytest.fixture(scope="module")
def lj():
    ref = lj_fcc_reference(EPS, SIG, RC)
    return ref, LennardJones(EPS, SIG, rc=RC), bulk("Ar", "fcc", a=ref.a0, cubic=True)


# -- vacancy formation energy ------------------------------------------------------------------

@pytest.mark.parametrize("sc", [(2, 2, 2), (3, 3, 3), (2, 3, 4)])
def test_unrelaxed_pair_potential_is_minus_energy_per_atom(lj, sc):
    ref, calc, fcc = lj
    vf = vacancy_formation_energy(fcc, calc, supercell=sc, relax=False)
    # 2a = 10.5 Å > rc = 8.5 Å: no vacancy-image pair, the identity is exact
    assert vf.value.value == pytest.approx(-ref.energy_per_atom, abs=1e-10)
    assert vf.value.unit == "eV" and not vf.relaxed
    assert vf.supercell_atoms == 4 * int(np.prod(sc))


def test_unrelaxed_identity_with_ase_lennard_jones():
    """The same identity with ASE's own (pure Python) Lennard-Jones, another pair potential."""
    fcc = bulk("Ar", "fcc", a=5.30, cubic=True)          # not at a0: the identity does not care
    calc = AseLennardJones(epsilon=EPS, sigma=SIG, rc=RC, smooth=False)
    vf = vacancy_formation_energy(fcc, calc, supercell=(2, 2, 2), relax=False)
    e_per_atom = vf.provenance["e_perfect_eV"] / vf.supercell_atoms
    assert vf.value.value == pytest.approx(-e_per_atom, abs=1e-10)


def test_relaxed_below_unrelaxed_and_converged_in_size(lj):
    ref, calc, fcc = lj
    r3 = vacancy_formation_energy(fcc, calc, supercell=(3, 3, 3), relax=True, fmax=1e-4)
    r4 = vacancy_formation_energy(fcc, calc, supercell=(4, 4, 4), relax=True, fmax=1e-4)
    for r in (r3, r4):
        assert r.relaxed
        assert r.value.value < r.provenance["unrelaxed_eV"]
        assert r.provenance["unrelaxed_eV"] == pytest.approx(-ref.energy_per_atom, abs=1e-10)
    # The unrelaxed value is exactly size-independent here, so the whole size dependence is the
    # relaxation energy E_R (~0.85 meV, 1.1 % of E_f), which converges as the elastic image
    # interaction ~1/L^3.  Tolerance: 10 % of E_R (about 0.1 % of E_f); measured 1.6e-5 eV (2 %).
    e_relax = r4.provenance["relaxation_energy_eV"]
    assert 0 < e_relax < 0.05 * r4.value.value
    assert abs(r3.value.value - r4.value.value) < 0.1 * e_relax


def test_vacancy_formation_energy_bad_input(lj):
    _, calc, fcc = lj
    with pytest.raises(InputError, match="supercell"):
        vacancy_formation_energy(fcc, calc, supercell=(3, 0, 3))
    with pytest.raises(InputError, match="supercell"):
        vacancy_formation_energy(fcc, calc, supercell=(2, 2))
    with pytest.raises(InputError, match="fmax"):
        vacancy_formation_energy(fcc, calc, supercell=2, fmax=0.0)
    with pytest.raises(InputError, match="vacancy_index"):
        vacancy_formation_energy(fcc, calc, supercell=2, vacancy_index=32)
    with pytest.raises(InputError, match="bulk_atoms"):
        vacancy_formation_energy(Atoms("Ar", positions=[[0, 0, 0]]), calc)
    with pytest.raises(InputError, match="calc"):
        vacancy_formation_energy(fcc, None)


# -- migration path end states ---------------------------------------------------------------

def test_vacancy_migration_path():
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    ini, fin = vacancy_migration_path(cu, (2, 2, 2))
    assert len(ini) == len(fin) == 31
    h = ini.info["hopping_atom"]
    assert ini.info["hop_distance_A"] == pytest.approx(3.6 / np.sqrt(2), rel=1e-12)
    moved = np.linalg.norm(fin.positions - ini.positions, axis=1)
    assert np.count_nonzero(moved > 1e-12) == 1 and moved[h] == pytest.approx(3.6 / np.sqrt(2))
    # the final position is the vacant site, modulo a lattice vector
    frac = np.linalg.solve(fin.cell.array.T, fin.positions[h] - ini.info["vacancy_site_A"])
    assert np.allclose(frac, np.round(frac), atol=1e-12)
    with pytest.raises(InputError, match="neighbour_index"):
        vacancy_migration_path(cu, (2, 2, 2), neighbour_index=0)       # the vacancy itself
    with pytest.raises(InputError, match="supercell"):
        vacancy_migration_path(cu, (0, 2, 2))


# -- NEB on a symmetric hop: fcc Cu vacancy, EMT ---------------------------------------------

@pytest.fixture(scope="module")
def cu_hop():
    cu = bulk("Cu", "fcc", a=3.59, cubic=True)
    ini, fin = vacancy_migration_path(cu, (2, 2, 2))
    ci = migration_barrier(ini, fin, EMT(), n_images=7, climb=True, fmax=0.01)
    plain = migration_barrier(ini, fin, EMT(), n_images=12, climb=False, fmax=0.01)
    return ci, plain


def test_ci_neb_symmetric_hop(cu_hop):
    ci, _ = cu_hop
    e, s = ci.path_energies, ci.reaction_coordinate
    assert ci.method == "CI-NEB improvedtangent"
    assert ci.value.unit == "eV" and ci.reverse.unit == "eV"
    # symmetry of the hop: forward = reverse, equivalent end states
    assert abs(ci.value.value - ci.reverse.value) < 1e-3
    assert abs(ci.reaction_energy) < 1e-3
    # the climbing image is the maximum and sits at the midpoint of the path
    assert ci.saddle_index == int(np.argmax(e)) == (len(e) - 1) // 2 == 4
    assert s[ci.saddle_index] == pytest.approx(s[-1] / 2, abs=1e-3)
    assert np.allclose(e, e[::-1], atol=1e-3)
    # converged: true force along the climbing image's tangent ~ 0
    assert abs(ci.provenance["climbing_image_tangent_force_eV_per_A"]) <= 0.01
    assert ci.provenance["max_neb_force_eV_per_A"] <= 0.01
    # EMT Cu: a sane vacancy migration barrier (experiment ~0.7 eV); measured 0.791 eV
    assert 0.5 < ci.value.value < 1.1


def test_ci_neb_against_dense_plain_band(cu_hop):
    """Independent check: a 12-image plain NEB has no image on the (midpoint) saddle, so its
    maximum is a lower bound; the CI-NEB saddle must lie above it and close (measured 0.010
    eV above: a quadratic barrier top sampled 0.1 Å off the saddle)."""
    ci, plain = cu_hop
    assert plain.method == "NEB improvedtangent"
    top = plain.path_energies.max()
    assert ci.value.value >= top - 1e-6
    assert ci.value.value - top < 0.02
    assert plain.provenance["climbing_image_tangent_force_eV_per_A"] is None


# -- NEB on an analytic 2D surface -----------------------------------------------------------

C_MEP = 0.5


class _CurvedValley(Calculator):
    """``V = (x^2 - 1)^2 + 2 (y - c (1 - x^2))^2 + z^2`` (eV, Å): minima at (±1, 0, 0), a curved
    minimum-energy path ``y = c (1 - x^2)`` and its saddle at (0, c, 0) with V = 1 eV."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        x, y, z = self.atoms.positions[0]
        u = y - C_MEP * (1 - x * x)
        self.results["energy"] = (x * x - 1) ** 2 + 2 * u * u + z * z
        fx = -(4 * x * (x * x - 1) + 4 * u * 2 * C_MEP * x)
        self.results["forces"] = np.array([[fx, -4 * u, -2 * z]])


def _valley_ends():
    return (Atoms("H", positions=[[-1.0, 0.0, 0.0]]), Atoms("H", positions=[[1.0, 0.0, 0.0]]))


def test_ci_neb_analytic_saddle():
    ini, fin = _valley_ends()
    mb = migration_barrier(ini, fin, _CurvedValley(), n_images=5, fmax=1e-3)
    # the straight initial band (y = 0) is off the curved path: the climbing image must find it
    assert mb.value.value == pytest.approx(1.0, abs=1e-6)          # measured 1 + 3e-9 eV
    assert mb.reverse.value == pytest.approx(1.0, abs=1e-6)
    assert mb.saddle_index == 3
    assert mb.provenance["max_neb_force_eV_per_A"] <= 1e-3


def test_neb_not_converged_raises():
    ini, fin = _valley_ends()
    with pytest.raises(ConvergenceError, match=r"5 images.*fmax=1e-06"):
        migration_barrier(ini, fin, _CurvedValley(), n_images=5, fmax=1e-6, steps=3)


def test_migration_barrier_bad_input():
    ini, fin = _valley_ends()
    calc = _CurvedValley()
    with pytest.raises(InputError, match="n_images"):
        migration_barrier(ini, fin, calc, n_images=2)
    with pytest.raises(InputError, match="final"):
        migration_barrier(ini, Atoms("H2", positions=[[1, 0, 0], [3, 0, 0]]), calc)
    with pytest.raises(InputError, match="final"):
        migration_barrier(ini, Atoms("He", positions=[[1, 0, 0]]), calc)
    with pytest.raises(InputError, match="method"):
        migration_barrier(ini, fin, calc, method="nudged")
    with pytest.raises(InputError, match="fmax"):
        migration_barrier(ini, fin, calc, fmax=-0.1)


# -- the artifacts -----------------------------------------------------------------------------

def _barrier(**over):
    e = np.array([0.0, 0.3, 0.7, 0.4, 0.1])
    kw = dict(value=Estimate(0.7, "eV", {"potential": [0.68, 0.72, 0.70]}),
              reverse=Estimate(0.6, "eV"), path_energies=e,
              reaction_coordinate=np.linspace(0, 2.5, 5), saddle_index=2,
              method="CI-NEB improvedtangent", provenance={"calculator": "EMT"})
    kw.update(over)
    return MigrationBarrier(**kw)


def test_migration_barrier_artifact():
    mb = _barrier()
    back = _round_trip(mb)
    assert back.value.identical(mb.value) and back.reverse.identical(mb.reverse)
    assert np.array_equal(back.path_energies, mb.path_energies)
    assert np.array_equal(back.reaction_coordinate, mb.reaction_coordinate)
    assert back.saddle_index == 2 and back.method == mb.method and back.n_images == 3
    assert back.reaction_energy == pytest.approx(0.1)
    assert not mb.path_energies.flags.writeable
    # unit conversion at the boundary
    mev = _barrier(value=Estimate(700.0, "meV"))
    assert mev.value.unit == "eV" and mev.value.value == pytest.approx(0.7, rel=1e-12)


def test_migration_barrier_artifact_validation():
    with pytest.raises(InputError, match=r"value=.*-0\.1.*>= 0"):
        _barrier(value=Estimate(-0.1, "eV"))
    with pytest.raises(InputError, match="reverse"):
        _barrier(reverse=Estimate(-0.6, "eV"))
    with pytest.raises(InputError, match="value"):
        _barrier(value=0.7)                                             # a bare number
    with pytest.raises(UnitError):
        _barrier(value=Estimate(0.7, "GPa"))
    with pytest.raises(InputError, match="path_energies"):
        _barrier(path_energies=np.array([0.0, 0.3, np.nan, 0.4, 0.1]))
    with pytest.raises(InputError, match="path_energies"):
        _barrier(path_energies=np.array([0.1, 0.3, 0.7, 0.4, 0.1]))     # not relative to E[0]
    with pytest.raises(InputError, match="reaction_coordinate"):
        _barrier(reaction_coordinate=np.array([0.0, 1.0, 0.5, 2.0, 2.5]))
    with pytest.raises(InputError, match="reaction_coordinate"):
        _barrier(reaction_coordinate=np.linspace(0, 1, 4))
    with pytest.raises(InputError, match="saddle_index"):
        _barrier(saddle_index=1)                                        # not the highest image
    with pytest.raises(InputError, match="saddle_index"):
        _barrier(saddle_index=0)
    with pytest.raises(InputError, match="value"):
        _barrier(value=Estimate(0.9, "eV"))                             # inconsistent with band
    with pytest.raises(InputError):
        Estimate(float("nan"), "eV")                                    # non-finite never gets in


def test_vacancy_formation_energy_artifact():
    vf = VacancyFormationEnergy(Estimate(1.28, "eV", {"fit": [1.25, 1.30, 1.29]}), relaxed=True,
                                structure="fcc Cu", supercell_atoms=108,
                                provenance={"calculator": "EMT"})
    back = _round_trip(vf)
    assert back.value.identical(vf.value) and back.supercell_atoms == 108
    assert back.relaxed and back.structure == "fcc Cu"
    with pytest.raises(InputError, match=r"value=.*-0\.2"):
        VacancyFormationEnergy(Estimate(-0.2, "eV"))
    with pytest.raises(UnitError):
        VacancyFormationEnergy(Estimate(1.0, "J/m^2"))
    with pytest.raises(InputError, match="supercell_atoms"):
        VacancyFormationEnergy(Estimate(1.0, "eV"), supercell_atoms=1)
    with pytest.raises(InputError, match="relaxed"):
        VacancyFormationEnergy(Estimate(1.0, "eV"), relaxed="yes")


def test_computed_artifacts_round_trip(lj, cu_hop):
    _, calc, fcc = lj
    vf = vacancy_formation_energy(fcc, calc, supercell=2, relax=False)
    back = _round_trip(vf)
    assert back.value.value == vf.value.value and back.provenance == vf.provenance
    ci, _ = cu_hop
    back = _round_trip(ci)
    assert back.value.value == ci.value.value
    assert np.array_equal(back.path_energies, ci.path_energies)
