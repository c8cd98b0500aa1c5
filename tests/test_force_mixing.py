"""Force mixing, energy mixing, ghost forces and the stadium thermostat.

The test system is an fcc Lennard-Jones crystal (argon-like, ``rc = 2.5 sigma``) at the
zero-pressure lattice constant of the truncated potential (:func:`lj_fcc_reference`).  "QM" and
"MM" are the same Lennard-Jones potential with energy scales ``1.1 epsilon`` and ``epsilon``: the
perfect crystal is an equilibrium of both (same lattice, different stiffness), so every force a
coupling puts on it is a ghost force.

What is checked, and against what:

* abrupt force mixing: ghost forces on the perfect crystal non-zero on QM atoms for a thin
  buffer, non-increasing with the buffer and zero to round-off once the buffer reaches the
  cutoff (measured: 1.2e-2 eV/Å at buffer 0, 8.1e-4 at 8 Å, 5e-16 at 8.6 Å);
* energy mixing: forces against central finite differences of its energy (abrupt and smooth
  lambda, incomplete buffer, ghost-force correction on); partition of unity (QM = MM gives the
  MM energy for any lambda); a QM region covering the system gives the QM energy; ghost forces
  non-zero without the correction (measured 5.5e-4 eV/Å) and zero with it;
* NVE (256 atoms, 40 K, 1 ps at 2 fs, complete buffer): energy mixing conserves its energy as
  well as the bare potential does (measured max |dE| 8.1e-5 eV vs 7.9e-5 eV); force mixing does
  not (8.2e-4 eV measured with the energy-mixing Hamiltonian; 10-35 times the energy-mixing
  value over 8 seeds, 5 asserted) and does not conserve momentum;
* stadium thermostat: the shell reaches the bath temperature (measured 39.4 +- 0.2 K for a
  40 K bath); the core evolves by velocity
  Verlet (one step bit-for-bit against ASE's VelocityVerlet; non-interacting core atoms keep
  their velocities exactly);
* errors: bad input names its field.
"""
from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.md.verlet import VelocityVerlet

from scaleladder.atomistic import LennardJones, StillingerWeber, block_average, lj_fcc_reference
from scaleladder.coupling.force_mixing import (EnergyMixing, ForceMixing, ghost_forces,
                                               mixing_regions, region_temperature,
                                               stadium_friction, stadium_langevin)
from scaleladder.core.errors import InputError, PropertyNotImplementedError

EPS, SIG = 0.0104, 3.40
RC = 2.5 * SIG
A0 = lj_fcc_reference(EPS, SIG, RC).a0          # 5.26865 Å; fcc shells at 8.33 and 9.13 Å
COMPLETE = RC + 0.1                              # a buffer that completes every QM environment


def qm_lj():
    return LennardJones(epsilon=1.1 * EPS, sigma=SIG, rc=RC)


def mm_lj():
    return LennardJones(epsilon=EPS, sigma=SIG, rc=RC)


def crystal(n=4):
    return bulk("Ar", "fcc", a=A0, cubic=True).repeat(n)


def central_atom(atoms):
    c = 0.5 * atoms.cell.lengths()
    return int(np.argmin(np.linalg.norm(atoms.positions - c, axis=1)))


def thermalise(atoms, temperature_K, seed):
    rng = np.random.default_rng(seed)
    m = atoms.get_masses()[:, None]
    p = rng.normal(size=(len(atoms), 3)) * np.sqrt(m * units.kB * temperature_K)
    p -= p.sum(axis=0) / len(atoms)
    atoms.set_momenta(p)


# --------------------------------------------------------------------------------------------
# force mixing
# --------------------------------------------------------------------------------------------
def test_force_mixing_ghost_forces_vanish_once_buffer_reaches_cutoff():
    ref = crystal(5)                                       # 500 atoms, 26.3 Å cell
    centre = ref.positions[central_atom(ref)]
    buffers = [0.0, 4.0, 6.0, 7.0, 8.0, COMPLETE]
    ghosts = []
    for b in buffers:
        fm = ForceMixing(qm_lj(), mm_lj(), qm_centre=centre, qm_radius=4.0, buffer_width=b)
        F, worst = ghost_forces(fm, ref)
        qm = fm.regions.qm_mask
        assert qm.sum() == 13                              # an atom and its 12 neighbours
        # MM atoms get the MM forces of the perfect crystal: zero to round-off
        assert np.max(np.abs(F[~qm])) < 1e-12
        assert worst == pytest.approx(np.max(np.linalg.norm(F, axis=1)))
        ghosts.append(worst)
    assert ghosts[0] > 5e-3                                # measured 1.197e-2 eV/Å
    assert all(g1 <= g0 + 1e-12 for g0, g1 in zip(ghosts, ghosts[1:]))
    assert ghosts[-2] > 1e-4                               # 8 Å < rc: still missing a shell
    assert ghosts[-1] < 1e-10                              # measured 5e-16 eV/Å


def test_force_mixing_has_no_energy_and_reports_diagnostics():
    at = crystal(4)
    at.rattle(0.05, seed=1)
    i0 = central_atom(at)
    fm = ForceMixing(qm_lj(), mm_lj(), qm_indices=[i0], buffer_width=4.0, blend="smooth",
                     transition_width=5.0)
    at.calc = fm
    F = at.get_forces()
    with pytest.raises(PropertyNotImplementedError, match="not conservative"):
        at.get_potential_energy()
    with pytest.raises(PropertyNotImplementedError):
        at.get_stress()
    r = fm.regions
    lam = fm.results["lambda"]
    assert lam[i0] == 1.0 and np.count_nonzero(lam == 1.0) == 1
    ramp = (r.distance > 0) & (r.distance < 5.0)
    assert np.allclose(lam[ramp], 0.5 * (1 + np.cos(np.pi * r.distance[ramp] / 5.0)), atol=1e-9)
    assert np.all(lam[r.distance >= 5.0] == 0.0)
    assert fm.results["qm_cluster_size"] == np.count_nonzero(r.cluster_mask)
    assert np.count_nonzero(r.buffer_mask) > 0
    assert np.allclose(fm.results["net_force"], F.sum(axis=0))
    # the mix, rebuilt from the two models' own forces
    f_mm = mm_lj().get_forces(at.copy())
    sub = at[r.cluster_indices]
    f_qm = qm_lj().get_forces(sub)
    expect = (1 - lam[:, None]) * f_mm
    expect[r.cluster_indices] += lam[r.cluster_indices, None] * f_qm
    assert np.allclose(F, expect, atol=1e-13)
    # a 1.1-stiffer QM side breaks Newton's third law across the boundary
    assert np.linalg.norm(fm.results["net_force"]) > 1e-4


@pytest.mark.parametrize("blend, radius, width", [("abrupt", 4.0, None), ("smooth", 1.0, 3.0)])
def test_force_mixing_of_one_model_with_complete_buffer_is_that_model(blend, radius, width):
    """QM = MM and a complete buffer: the mix is the model's own forces (any lambda), for a
    carved and for an open cluster wrapped across the periodic boundary."""
    at = crystal(5)
    at.rattle(0.05, seed=2)
    exact = mm_lj().get_forces(at.copy())
    corner = at.positions[0]                       # the cluster wraps around the cell edges
    for cluster in ("carve", "open"):
        fm = ForceMixing(mm_lj(), mm_lj(), qm_centre=corner, qm_radius=radius,
                         buffer_width=COMPLETE, blend=blend, transition_width=width,
                         cluster=cluster)
        at.calc = fm
        assert np.allclose(at.get_forces(), exact, atol=1e-13)
        assert np.linalg.norm(fm.results["net_force"]) < 1e-12
        assert 0 < fm.results["qm_cluster_size"] < len(at)
    # a cell too small to hold the unwrapped cluster: refused, not silently wrong
    small = crystal(4)
    fm = ForceMixing(mm_lj(), mm_lj(), qm_centre=small.positions[0], qm_radius=4.0,
                     buffer_width=COMPLETE, cluster="open")
    with pytest.raises(InputError) as exc:
        fm.get_forces(small)
    assert exc.value.field == "cluster"


# --------------------------------------------------------------------------------------------
# energy mixing
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("blend, width", [("abrupt", None), ("smooth", 3.0)])
def test_energy_mixing_forces_are_minus_gradient(blend, width):
    ref = crystal(5)
    i0 = central_atom(ref)
    em = EnergyMixing(qm_lj(), mm_lj(), qm_centre=ref.positions[i0], qm_radius=4.0,
                      buffer_width=4.0, blend=blend, transition_width=width,
                      ghost_force_correction=True, reference_atoms=ref)
    at = ref.copy()
    at.rattle(0.05, seed=3)
    at.calc = em
    F = at.get_forces()
    E = at.get_potential_energy()
    assert at.get_potential_energies().sum() == pytest.approx(E, abs=1e-12)
    r = em.regions
    assert len(r.levels) == (1 if blend == "abrupt" else 3)
    # one atom from each region: QM centre, ramp/boundary, buffer, MM
    picks = [i0, int(np.flatnonzero(r.qm_mask & (r.distance == 0))[-1]),
             int(np.flatnonzero(r.buffer_mask)[0]), int(np.flatnonzero(~r.cluster_mask)[0])]
    if blend == "smooth":
        picks.append(int(np.flatnonzero(r.transition_mask)[0]))
    h = 1e-4
    for i in picks:
        for k in range(3):
            p = at.positions.copy()
            p[i, k] += h
            at.positions = p
            ep = at.get_potential_energy()
            p[i, k] -= 2 * h
            at.positions = p
            em_ = at.get_potential_energy()
            p[i, k] += h
            at.positions = p
            fd = -(ep - em_) / (2 * h)
            assert fd == pytest.approx(F[i, k], abs=2e-8), (i, k)
    assert np.linalg.norm(F.sum(axis=0)) < 1e-12            # translation invariance


def test_energy_mixing_partition_of_unity_and_full_qm_region():
    at = crystal(5)
    at.rattle(0.05, seed=4)
    i0 = central_atom(at)
    e_mm = mm_lj().get_potential_energy(at.copy())
    f_mm = mm_lj().get_forces(at.copy())
    same = EnergyMixing(mm_lj(), mm_lj(), qm_indices=[i0], buffer_width=COMPLETE,
                        blend="smooth", transition_width=5.0, ghost_force_correction=False)
    assert same.get_potential_energy(at) == pytest.approx(e_mm, abs=1e-11)
    assert np.allclose(same.get_forces(at), f_mm, atol=1e-12)
    assert len(same.regions.levels) > 1 and same.results["qm_cluster_size"] < len(at)
    # a buffer short of the cutoff: the QM per-atom energies of the weighted atoms are cut
    short = EnergyMixing(mm_lj(), mm_lj(), qm_indices=[i0], buffer_width=4.0, blend="smooth",
                         transition_width=5.0, ghost_force_correction=False)
    assert abs(short.get_potential_energy(at) - e_mm) > 1e-3
    everything = EnergyMixing(qm_lj(), mm_lj(), qm_centre=[0, 0, 0], qm_radius=100.0,
                              ghost_force_correction=False)
    assert everything.get_potential_energy(at) == pytest.approx(
        qm_lj().get_potential_energy(at.copy()), abs=1e-11)


@pytest.mark.parametrize("blend, width", [("abrupt", None), ("smooth", 4.0)])
def test_energy_mixing_ghost_forces_and_their_correction(blend, width):
    ref = crystal(4)
    centre = ref.positions[central_atom(ref)]
    kw = dict(qm_centre=centre, qm_radius=4.0, buffer_width=COMPLETE, blend=blend,
              transition_width=width)
    plain = EnergyMixing(qm_lj(), mm_lj(), ghost_force_correction=False, **kw)
    g, worst = ghost_forces(plain, ref)
    assert worst > 1e-4                                    # measured 5.5e-4 eV/Å (abrupt)
    corrected = EnergyMixing(qm_lj(), mm_lj(), ghost_force_correction=True, **kw)
    g0, worst0 = ghost_forces(corrected, ref)
    assert worst0 < 1e-10
    # away from the reference: the dead load is exactly the reference's ghost force
    at = ref.copy()
    at.rattle(0.03, seed=5)
    assert np.allclose(corrected.get_forces(at), plain.get_forces(at) - g, atol=1e-13)
    u = at.positions - ref.positions
    assert corrected.get_potential_energy(at) == pytest.approx(
        plain.get_potential_energy(at) + np.sum(g * u), abs=1e-12)


def test_nve_energy_mixing_conserves_energy_force_mixing_does_not():
    ref = crystal(4)
    centre = ref.positions[central_atom(ref)]
    kw = dict(qm_centre=centre, qm_radius=4.0, buffer_width=COMPLETE)

    def run(calc, hamiltonian):
        at = ref.copy()
        thermalise(at, 40.0, seed=7)
        at.calc = calc
        h = ref.copy()
        h.calc = hamiltonian
        energy, momentum = [], []

        def record():
            h.positions = at.positions
            energy.append(h.get_potential_energy() + at.get_kinetic_energy())
            momentum.append(np.linalg.norm(at.get_momenta().sum(axis=0)))

        dyn = VelocityVerlet(at, timestep=2.0 * units.fs)
        dyn.attach(record, interval=1)
        dyn.run(500)                                     # 1 ps
        e = np.asarray(energy)
        return np.max(np.abs(e - e[0])), max(momentum)

    bare, _ = run(mm_lj(), mm_lj())
    em = EnergyMixing(qm_lj(), mm_lj(), ghost_force_correction=True, reference_atoms=ref, **kw)
    em_drift, em_p = run(em, em)
    fm_drift, fm_p = run(ForceMixing(qm_lj(), mm_lj(), **kw),
                         EnergyMixing(qm_lj(), mm_lj(), ghost_force_correction=False, **kw))
    # measured: bare 7.9e-5 eV, energy mixing 8.1e-5 eV, force mixing 8.2e-4 eV
    assert em_drift < 1.5 * bare + 1e-6
    assert fm_drift > 5.0 * em_drift
    assert em_p < 1e-10 and fm_p > 1e-3                  # amu Å/fs-scale momenta (ASE units)


# --------------------------------------------------------------------------------------------
# stadium thermostat
# --------------------------------------------------------------------------------------------
def test_stadium_shell_reaches_bath_temperature():
    at = crystal(4)
    d = np.linalg.norm(at.positions - 0.5 * at.cell.lengths(), axis=1)
    shell = d > 7.0                                       # 213 of 256 atoms
    target = 40.0
    dyn = stadium_langevin(at, mm_lj(), timestep_fs=5.0, temperature_K=target,
                           friction_per_fs=0.02, shell=shell, rng=np.random.default_rng(0))
    assert np.all(dyn.friction_per_fs[~shell] == 0.0)
    t_shell = []
    dyn.attach(lambda: t_shell.append(region_temperature(at, shell)), interval=2)
    dyn.run(1000)                                         # 5 ps from a cold crystal
    mean, sem = block_average(np.asarray(t_shell[250:]), 10)
    # measured 39.4 +- 0.2 K; the cold core keeps drawing a little heat from the shell
    assert abs(mean - target) < 4.0 * sem + 1.5
    assert region_temperature(at, ~shell) > 5.0           # heat reached the core by conduction


def test_stadium_core_is_plain_velocity_verlet():
    # one step with a force-mixing calculator, thermostat on its hand-shake shell
    ref = crystal(4)
    at = ref.copy()
    thermalise(at, 40.0, seed=11)
    fm = ForceMixing(qm_lj(), mm_lj(), qm_centre=ref.positions[central_atom(ref)],
                     qm_radius=4.0, buffer_width=4.0)
    shell = fm.select_regions(ref).handshake_mask
    assert 0 < shell.sum() < len(at)
    vv = at.copy()
    vv.calc = ForceMixing(qm_lj(), mm_lj(), qm_centre=ref.positions[central_atom(ref)],
                          qm_radius=4.0, buffer_width=4.0)
    VelocityVerlet(vv, timestep=5.0 * units.fs).run(1)
    stadium_langevin(at, fm, timestep_fs=5.0, temperature_K=300.0, friction_per_fs=0.1,
                     shell=shell, rng=np.random.default_rng(1)).run(1)
    core = ~shell
    assert np.allclose(at.positions[core], vv.positions[core], rtol=0, atol=1e-12)
    assert np.max(np.abs(at.positions[shell] - vv.positions[shell])) > 1e-4

    # non-interacting atoms (spacing 20 Å > rc = sigma): core velocities never change
    g = np.arange(6) * 20.0
    gas = Atoms("Ar216", positions=np.array(np.meshgrid(g, g, g)).reshape(3, -1).T,
                cell=[120.0] * 3, pbc=True)
    thermalise(gas, 10.0, seed=12)
    v0 = gas.get_velocities()
    shell = np.zeros(len(gas), dtype=bool)
    shell[::2] = True
    dyn = stadium_langevin(gas, LennardJones(epsilon=EPS, sigma=SIG, rc=SIG), timestep_fs=5.0,
                           temperature_K=40.0, friction_per_fs=0.05, shell=shell,
                           rng=np.random.default_rng(2))
    temps = []
    dyn.attach(lambda: temps.append(region_temperature(gas, shell)), interval=5)
    dyn.run(1000)
    # ASE recomputes v from the position update ((x + dt v) - x) / dt: round-off only
    assert np.allclose(gas.get_velocities()[~shell], v0[~shell], rtol=0, atol=1e-11)
    assert np.max(np.abs(gas.get_velocities()[shell] - v0[shell])) > 1e-3
    mean, sem = block_average(np.asarray(temps[50:]), 10)
    assert abs(mean - 40.0) < 4.0 * sem + 0.5             # ideal gas: no heat leaks


def test_stadium_friction_profile():
    d = np.array([0.0, 5.0, 7.5, 10.0, 12.0])
    g = stadium_friction(d, 5.0, 10.0, 0.04)
    assert np.allclose(g, [0.0, 0.0, 0.02, 0.04, 0.04])
    at = crystal(2)
    dyn = stadium_langevin(at, mm_lj(), timestep_fs=2.0, temperature_K=10.0,
                           friction_per_fs=stadium_friction(
                               np.linalg.norm(at.positions, axis=1), 3.0, 6.0, 0.04))
    assert dyn.fr.shape == (len(at), 1)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, field", [
    (dict(qm_indices=[0], transition_width=-1.0, blend="smooth"), "transition_width"),
    (dict(qm_indices=[0], blend="smooth"), "transition_width"),
    (dict(qm_indices=[0], blend="abrupt", transition_width=2.0), "transition_width"),
    (dict(qm_indices=[]), "qm_indices"),
    (dict(qm_indices=[3, 4, 3]), "qm_indices"),
    (dict(qm_indices=[0], qm_centre=[0, 0, 0], qm_radius=2.0), "qm_centre"),
    (dict(qm_indices=[0], buffer_width=-0.5), "buffer_width"),
    (dict(qm_indices=[0], blend="linear"), "blend"),
    (dict(qm_indices=[0], cluster="hydrogen"), "cluster"),
    (dict(), "qm_indices"),
])
def test_bad_input_names_the_field(kwargs, field):
    for cls in (ForceMixing, EnergyMixing):
        with pytest.raises(InputError) as exc:
            cls(qm_lj(), mm_lj(), **kwargs)
        assert exc.value.field == field


def test_bad_input_found_on_the_system():
    at = crystal(2)
    with pytest.raises(InputError) as exc:                 # no atom within 0.5 Å
        mixing_regions(at, qm_centre=[1.3, 1.3, 1.3], qm_radius=0.5)
    assert exc.value.field == "qm_radius"
    fm = ForceMixing(qm_lj(), mm_lj(), qm_indices=[len(at)])
    with pytest.raises(InputError) as exc:
        fm.get_forces(at)
    assert exc.value.field == "qm_indices"
    rattled = at.copy()
    rattled.rattle(0.05, seed=1)
    with pytest.raises(InputError) as exc:
        ghost_forces(ForceMixing(qm_lj(), mm_lj(), qm_indices=[0]), rattled)
    assert exc.value.field == "reference_atoms"
    with pytest.raises(InputError) as exc:                 # forces only: no per-atom energies
        EnergyMixing(ForceMixing(qm_lj(), mm_lj(), qm_indices=[0]), mm_lj(), qm_indices=[0])
    assert exc.value.field == "qm_calc"
    with pytest.raises(InputError) as exc:
        stadium_langevin(at, mm_lj(), timestep_fs=1.0, temperature_K=10.0,
                         friction_per_fs=0.01, shell=np.ones(3, dtype=bool))
    assert exc.value.field == "shell"


def test_energy_mixing_refuses_many_body_potential():
    si = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    si.rattle(0.02, seed=1)
    em = EnergyMixing(StillingerWeber(), StillingerWeber(), qm_indices=[0, 1],
                      buffer_width=4.0, ghost_force_correction=False)
    with pytest.raises(InputError, match="pairwise") as exc:
        em.get_forces(si)
    assert exc.value.field == "qm_calc"


def test_force_mixing_md_through_run_md_records_no_energy_but_checks_forces():
    """run_md drives a model without an energy: potential and total energies are NaN (not a
    made-up number), the temperature is recorded, the force checks still stop a blow-up."""
    from scaleladder.atomistic.md import run_md
    from scaleladder.core.errors import CalculationError

    at = crystal(3)
    fm = ForceMixing(qm_lj(), mm_lj(), qm_centre=at.positions[central_atom(at)], qm_radius=4.0,
                     buffer_width=4.0)
    res = run_md(at, fm, steps=20, ensemble="nvt", temperature_K=30.0, timestep_fs=2.0, seed=1)
    assert np.all(np.isnan(res.potential_energy)) and np.all(np.isnan(res.total_energy))
    assert np.all(np.isfinite(res.temperature_K)) and res.temperature_K[-1] > 0
    squeezed = crystal(3)
    squeezed.positions[1] = squeezed.positions[0] + [0.3, 0.0, 0.0]
    with pytest.raises(CalculationError):
        run_md(squeezed, ForceMixing(qm_lj(), mm_lj(), qm_indices=[0], buffer_width=4.0),
               steps=5, ensemble="nve", temperature_K=10.0, timestep_fs=1.0, seed=1)
