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
* an analytic 2D surface with a curved minimum-energy path and a known saddle, and the
  finite-difference local Hessian against its analytic second derivatives;
* Stillinger-Weber silicon: the symmetric (unrelaxed) vacancy has zero forces and a positive
  definite local Hessian (a metastable minimum at 2 eps = 4.3366 eV), the basin search finds the
  relaxed Td vacancy 1.5 eV lower and the Hessian shows it is a minimum; the hop end states are
  one structure mapped by the bond-centre inversion, and the CI-NEB saddle has exactly one
  negative Hessian eigenvalue; with lattice end states the band falls into the deep basin and
  the barrier is refused;
* EMT Cu and Lennard-Jones: the basin search returns exactly the plain relaxation.

Literature values for the SW vacancy (formation ~2.8 eV in older work, e.g. Balamane, Halicioglu &
Tiller, PRB 46, 2250 (1992), who rescaled eps to 2.315 eV; migration via the split vacancy,
Posselt et al.) could not be checked numerically with the sources available here, so the SW
numbers below are golden values measured with this code, labelled as such, backed by
independent physics checks (energy lowering, Hessian signature, symmetry of the hop, finite-size
trend).
"""
from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones as AseLennardJones

from scaleladder.atomistic import (LennardJones, StillingerWeber, lj_fcc_reference,
                                   migration_barrier, vacancy_formation_energy,
                                   vacancy_migration_path)
from scaleladder.atomistic.defects import local_hessian
from scaleladder.core import codec
from scaleladder.core.errors import CalculationError, ConvergenceError, InputError, UnitError
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
    # plain relaxations (the basin search returns the same state for LJ, see
    # test_basin_search_keeps_the_symmetric_minimum; skipped here to keep the 256-atom cell cheap)
    kw = dict(relax=True, fmax=1e-4, basin_search=False, verify_minimum=False)
    r3 = vacancy_formation_energy(fcc, calc, supercell=(3, 3, 3), **kw)
    r4 = vacancy_formation_energy(fcc, calc, supercell=(4, 4, 4), **kw)
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
    with pytest.raises(InputError, match="trial_amplitude"):
        vacancy_formation_energy(fcc, calc, supercell=2, trial_amplitude=0.0)
    with pytest.raises(InputError, match="n_rattles"):
        vacancy_formation_energy(fcc, calc, supercell=2, n_rattles=-1)
    with pytest.raises(InputError, match="basin_search"):
        vacancy_formation_energy(fcc, calc, supercell=2, basin_search="yes")


def test_basin_search_keeps_the_symmetric_minimum(lj):
    """EMT Cu and LJ: the symmetric relaxed vacancy is the minimum, so the basin search (every
    displaced start relaxes back to it) returns exactly the plain relaxation's energy."""
    _, lj_calc, fcc = lj
    cu = bulk("Cu", "fcc", a=3.59, cubic=True)
    for atoms, calc in ((cu, EMT()), (fcc, lj_calc)):
        plain = vacancy_formation_energy(atoms, calc, supercell=2, basin_search=False,
                                         verify_minimum=False)
        full = vacancy_formation_energy(atoms, calc, supercell=2)
        rec = full.provenance["vacancy_relaxation"]
        assert full.value.value == pytest.approx(plain.value.value, abs=1e-12)    # same state
        assert rec["selected_start"] == "symmetric"
        starts = [t["start"] for t in rec["trials"]]
        assert starts == ["symmetric", "breathing_in", "breathing_out", "rattle_0", "rattle_1"]
        # every start ended in the same basin (within relaxation noise)
        for t in rec["trials"]:
            assert t["converged"] and abs(t["formation_energy_eV"] - plain.value.value) < 1e-4
        assert rec["minimum_check"]["is_minimum"]
        assert min(rec["minimum_check"]["lowest_eigenvalues_eV_per_A2"]) > 0.1
    # EMT Cu, 31 atoms: measured 1.2280 eV (plain relaxation, unchanged by the search)
    cu_vf = vacancy_formation_energy(cu, EMT(), supercell=2)
    assert cu_vf.value.value == pytest.approx(1.22798, abs=1e-4)


# -- Stillinger-Weber silicon vacancy ----------------------------------------------------------

A_SI = 5.431          # Å; SW's own a0 is 5.4309: forces at the symmetric vacancy ~1e-4 eV/Å


@pytest.fixture(scope="module")
def sw_si():
    return StillingerWeber(), bulk("Si", "diamond", a=A_SI, cubic=True)


def test_sw_symmetric_vacancy_is_a_metastable_minimum(sw_si):
    """Diagnosis of the old failure: removing an atom leaves (near-)zero forces and a positive
    definite Hessian around the site, so gradient relaxation cannot leave the symmetric state."""
    calc, si = sw_si
    cell = si.repeat(2)
    site = cell.positions[0].copy()
    del cell[0]
    cell.calc = calc
    assert np.abs(cell.get_forces()).max() < 1e-3
    idx, w, _ = local_hessian(cell, site, 4.0)
    assert len(idx) == 16                                     # first (4) and second (12) shells
    assert w[0] > 3.0                                         # measured 3.44 eV/Å² (triplet)
    # and the plain relaxation stays there: E_f = 2 eps to 1e-6 (the trap)
    plain = vacancy_formation_energy(si, calc, supercell=2, basin_search=False)
    assert plain.value.value == pytest.approx(4.3366, abs=1e-4)
    assert plain.provenance["relaxation_energy_eV"] < 1e-6


@pytest.fixture(scope="module")
def sw_vacancy_2(sw_si):
    calc, si = sw_si
    return vacancy_formation_energy(si, calc, supercell=2)


def test_sw_relaxed_vacancy_formation_energy(sw_vacancy_2):
    vf = sw_vacancy_2
    rec = vf.provenance["vacancy_relaxation"]
    assert vf.relaxed and vf.supercell_atoms == 64
    assert vf.provenance["unrelaxed_eV"] == pytest.approx(4.3366, abs=1e-4)
    assert vf.provenance["symmetric_relaxed_eV"] == pytest.approx(4.3366, abs=1e-4)
    # the basin search leaves the trap: 1.5 eV lower, reached from the inward start
    assert vf.value.value < vf.provenance["unrelaxed_eV"] - 1.0
    assert rec["selected_start"] == "breathing_in"
    # golden value, measured with this code (64-site cell): 2.8359 eV; 215 atoms: 2.6948 eV,
    # 511 atoms: 2.6652 eV (finite-size trend ~1/L^3, see the slow test)
    assert vf.value.value == pytest.approx(2.8359, abs=2e-3)
    # the result is a minimum: all local Hessian eigenvalues positive (measured lowest 3.31)
    mc = rec["minimum_check"]
    assert mc["is_minimum"] and mc["n_atoms"] == 16
    assert min(mc["lowest_eigenvalues_eV_per_A2"]) > 1.0
    # provenance says what was tried, reproducibly
    assert rec["seed"] == 0 and rec["trial_amplitude_A"] == 0.4 and len(rec["trials"]) == 5
    _round_trip(vf)


def test_sw_relaxation_is_reproducible(sw_si, sw_vacancy_2):
    calc, si = sw_si
    again = vacancy_formation_energy(si, calc, supercell=2)
    assert again.value.value == sw_vacancy_2.value.value
    assert again.provenance == sw_vacancy_2.provenance


@pytest.mark.slow
def test_sw_vacancy_larger_cells(sw_si, sw_vacancy_2):
    """215- and 511-atom cells: the same relaxed Td basin, E_f lower and converging (the
    elastic image interaction falls as 1/L^3).  Measured 2.6948 and 2.6652 eV."""
    calc, si = sw_si
    e2 = sw_vacancy_2.value.value
    e3 = vacancy_formation_energy(si, calc, supercell=3).value.value
    e4 = vacancy_formation_energy(si, calc, supercell=4).value.value
    assert e3 == pytest.approx(2.6948, abs=2e-3) and e4 == pytest.approx(2.6652, abs=2e-3)
    assert e2 > e3 > e4
    # 1/L^3 fit through L = 3, 4 predicts the L = 2 value to 30 meV (measured 20 meV)
    c = (e3 - e4) / (1 / 27 - 1 / 64)
    assert abs(e4 - c / 64 + c / 8 - e2) < 0.03


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


def test_local_hessian_analytic():
    """Finite-difference Hessian against the analytic one of the curved valley: at the minimum
    (1, 0, 0) it is [[8 + 16c^2, 8c], [8c, 4]] (+ 2 for z); at the saddle (0, c, 0)
    diag(-4, 4, 2)."""
    calc = _CurvedValley()
    at = Atoms("H", positions=[[1.0, 0.0, 0.0]])
    at.calc = calc
    idx, w, v = local_hessian(at, [1.0, 0.0, 0.0], 0.5)
    h = np.array([[8 + 16 * C_MEP ** 2, 8 * C_MEP], [8 * C_MEP, 4.0]])
    exact = np.sort(np.concatenate([np.linalg.eigvalsh(h), [2.0]]))
    assert list(idx) == [0]
    assert np.allclose(w, exact, atol=1e-5)
    assert np.allclose(at.positions, [[1.0, 0.0, 0.0]])            # positions restored
    at.positions = [[0.0, C_MEP, 0.0]]
    _, w, v = local_hessian(at, [0.0, 0.0, 0.0], 1.0)
    assert np.allclose(w, [-4.0, 2.0, 4.0], atol=1e-5)
    assert abs(v[0, 0]) == pytest.approx(1.0, abs=1e-6)            # unstable mode along x
    with pytest.raises(InputError, match="radius"):
        local_hessian(at, [5.0, 5.0, 5.0], 0.5)


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


# -- NEB: Stillinger-Weber silicon vacancy hop ----------------------------------------------

@pytest.fixture(scope="module")
def sw_hop(sw_si):
    calc, si = sw_si
    ini, fin = vacancy_migration_path(si, 2, calc=calc)
    mb = migration_barrier(ini, fin, calc, n_images=7, climb=True, fmax=0.01,
                           saddle_check_radius=4.0)
    return ini, fin, mb


def test_sw_hop_end_states_are_one_structure(sw_hop, sw_vacancy_2):
    ini, fin, _ = sw_hop
    assert ini.calc is None and fin.calc is None
    assert ini.info["final_state"] == "inversion through the hop-bond midpoint"
    # equivalent end states: equal energies, the relaxed vacancy's energy
    assert ini.info["e_final_eV"] == pytest.approx(ini.info["e_initial_eV"], abs=1e-9)
    e_def = sw_vacancy_2.provenance["e_defect_relaxed_eV"]
    assert ini.info["e_initial_eV"] == pytest.approx(e_def, abs=1e-6)
    # the Td relaxed vacancy: four neighbours 1.79 Å from the vacant site (2.35 Å in the lattice)
    site = np.array(ini.info["vacancy_site_A"])
    r = np.linalg.norm(_mic(ini, ini.positions - site), axis=1)
    shell = np.sort(r)[:4]
    assert np.ptp(shell) < 1e-3 and shell[0] == pytest.approx(1.792, abs=5e-3)
    # in the final state the vacancy sits on the hopping atom's lattice site, with the same shell
    h = ini.info["hopping_atom"]
    site_f = site - (fin.positions[h] - ini.positions[h]) / np.linalg.norm(
        fin.positions[h] - ini.positions[h]) * ini.info["hop_distance_A"]
    r_f = np.sort(np.linalg.norm(_mic(fin, fin.positions - site_f), axis=1))[:4]
    assert np.allclose(r_f, shell, atol=1e-6)
    # the hop atom moves along the bond by 2.35 - 2 x 0.56 Å
    assert np.linalg.norm(fin.positions[h] - ini.positions[h]) == pytest.approx(
        ini.info["hop_distance_A"] - 2 * (ini.info["hop_distance_A"] - shell[0]), abs=1e-3)


def _mic(atoms, d):
    from ase.geometry import find_mic
    return find_mic(d, atoms.cell, atoms.pbc)[0]


def test_sw_ci_neb_vacancy_hop(sw_hop):
    _, _, mb = sw_hop
    e = mb.path_energies
    p = mb.provenance
    # converged climbing image: band forces and true tangential force below fmax
    assert p["max_neb_force_eV_per_A"] <= 0.01
    assert abs(p["climbing_image_tangent_force_eV_per_A"]) <= 0.01
    # a barrier: the highest image above both end states, no image below them
    assert mb.value.value > 0.3 and mb.reverse.value > 0.3
    assert e[mb.saddle_index] == e.max() and np.all(e[1:-1] > min(e[0], e[-1]))
    # symmetric hop: forward = reverse, saddle at the midpoint (the split vacancy)
    assert abs(mb.value.value - mb.reverse.value) < 1e-3
    assert mb.saddle_index == 4
    assert np.allclose(e, e[::-1], atol=1e-3)
    # a first-order saddle: exactly one negative eigenvalue of the local Hessian (measured -3.16)
    assert p["saddle_check"]["n_negative"] == 1
    assert p["saddle_check"]["lowest_eigenvalues_eV_per_A2"][1] > 0.5
    assert p["endpoint_preparation"]["final_state"] == "inversion through the hop-bond midpoint"
    # golden value measured with this code, 63 atoms: 0.5173 eV (215 atoms: 0.5123 eV, slow test)
    assert mb.value.value == pytest.approx(0.5173, abs=3e-3)


def test_sw_lattice_end_states_are_refused(sw_si):
    """The old failure: unrelaxed (metastable) end states; the band falls 1.5 eV below them
    and a 'barrier' of 0.245 eV came out.  Now refused."""
    calc, si = sw_si
    ini, fin = vacancy_migration_path(si, 2)
    with pytest.raises(CalculationError, match="deeper basin"):
        migration_barrier(ini, fin, calc, n_images=7, fmax=0.01)


@pytest.mark.slow
def test_sw_ci_neb_vacancy_hop_215_atoms(sw_si):
    calc, si = sw_si
    ini, fin = vacancy_migration_path(si, 3, calc=calc)
    mb = migration_barrier(ini, fin, calc, n_images=7, fmax=0.01, saddle_check_radius=4.0)
    assert mb.value.value == pytest.approx(0.5123, abs=3e-3)          # measured 0.5123 eV
    assert abs(mb.value.value - mb.reverse.value) < 1e-3
    assert mb.provenance["saddle_check"]["n_negative"] == 1


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


def test_migration_barrier_with_other_barriers_keeps_its_path_consistent():
    """``with_barriers`` (one sample of an uncertainty source): the saddle at the new forward
    barrier, the final state at forward - reverse, the interior images scaled with the saddle
    (still the highest); a negative barrier is refused by the artifact's own checks, a bare
    number by the unit check."""
    mb = _barrier()
    s = mb.with_barriers(Estimate(0.63, "eV"), Estimate(580.0, "meV"))
    assert s.value.value == pytest.approx(0.63) and s.reverse.value == pytest.approx(0.58)
    np.testing.assert_allclose(s.path_energies, [0.0, 0.27, 0.63, 0.36, 0.05])
    assert s.saddle_index == 2 and s.method == mb.method
    with pytest.raises(InputError, match="reverse"):
        mb.with_barriers(Estimate(0.7, "eV"), Estimate(-0.1, "eV"))
    with pytest.raises(InputError, match="forward"):
        mb.with_barriers(0.63, Estimate(0.58, "eV"))                   # a bare number


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
