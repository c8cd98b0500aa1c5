"""Tests of scaleladder.atomistic.md: conservation, ensemble statistics, blow-up, resume."""
import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.io import read

from scaleladder.atomistic import StillingerWeber, block_average, resume_md, run_md
from scaleladder.core.errors import CalculationError, InputError


@pytest.fixture(scope="module")
def si64():
    return bulk("Si", "diamond", a=5.431, cubic=True) * (2, 2, 2)


def test_nve_conserves_energy_and_error_scales_as_dt2(si64):
    r = run_md(si64, StillingerWeber(), steps=200, temperature_K=300, timestep_fs=1.0, seed=1)
    assert len(r.time_fs) == 201 and r.time_fs[-1] == pytest.approx(200.0)
    # measured ~1.4e-5 eV/atom/ps; bound 1e-3 eV/atom/ps
    assert abs(r.drift) < 1e-3
    assert r.energy_error < 5e-4  # measured ~4.7e-5 eV/atom
    assert np.allclose(r.total_energy, r.potential_energy + r.kinetic_energy)
    # same 100 fs of physical time at 0.5 fs and 2 fs: velocity-Verlet error ~ dt^2 (ratio 16)
    fine = run_md(si64, StillingerWeber(), steps=200, temperature_K=300, timestep_fs=0.5, seed=1)
    coarse = run_md(si64, StillingerWeber(), steps=50, temperature_K=300, timestep_fs=2.0, seed=1)
    ratio = coarse.energy_error / fine.energy_error
    assert fine.energy_error < coarse.energy_error
    assert 8.0 < ratio < 32.0  # measured ~16


def test_langevin_reaches_target_temperature(si64):
    target = 300.0
    r = run_md(si64, StillingerWeber(), steps=3000, ensemble="nvt", temperature_K=target,
               timestep_fs=2.0, friction=0.05, seed=2)
    assert np.isnan(r.drift)
    # discard 1 ps of equilibration (20 relaxation times of 1/friction = 20 fs)
    mean, sem = block_average(r.temperature_K[500:], 10)
    assert 0.0 < sem < 10.0
    assert abs(mean - target) < 4.0 * sem + 2.0  # measured 297.0 +- 1.2 K


def test_block_average_of_white_noise():
    x = np.random.default_rng(0).normal(5.0, 2.0, 10000)
    mean, sem = block_average(x, 20)
    assert sem == pytest.approx(2.0 / 100.0, rel=0.5)
    assert abs(mean - 5.0) < 4 * sem
    with pytest.raises(InputError, match="n_blocks"):
        block_average(x, 1)


def test_absurd_timestep_raises_and_keeps_last_good_frame(si64, tmp_path):
    traj = tmp_path / "md.traj"
    with pytest.raises(CalculationError, match=r"step 1 .*timestep_fs") as info:
        run_md(si64, StillingerWeber(), steps=100, temperature_K=300, timestep_fs=50.0, seed=1,
               trajectory=traj)
    err = info.value
    assert err.step == 1 and err.last_good_step == 0
    assert np.all(np.isfinite(err.last_good.positions))
    assert np.all(np.isfinite(err.last_good.get_velocities()))
    frames = read(traj, ":")
    assert len(frames) == 1
    assert np.allclose(frames[-1].positions, err.last_good.positions)
    assert (tmp_path / "md.traj.ckpt.npz").is_file()


def test_colliding_atoms_raise_with_step_and_last_good(si64, tmp_path):
    atoms = si64.copy()
    u = atoms.positions[1] - atoms.positions[0]
    u /= np.linalg.norm(u)
    v = np.zeros((len(atoms), 3))
    v[1] = -0.5 * u / units.fs  # 0.5 Å/fs head-on towards its neighbour
    atoms.set_velocities(v)
    traj = tmp_path / "hit.traj"
    with pytest.raises(CalculationError, match=r"step \d+.*max force") as info:
        run_md(atoms, StillingerWeber(), steps=100, timestep_fs=1.0, trajectory=traj)
    err = info.value
    assert err.step >= 2 and err.last_good_step == err.step - 1
    assert np.all(np.isfinite(err.last_good.positions))
    frames = read(traj, ":")
    assert len(frames) == err.last_good_step + 1
    assert np.allclose(frames[-1].positions, err.last_good.positions)
    assert np.allclose(frames[-1].get_momenta(), err.last_good.get_momenta())


def test_overlapping_atoms_fail_at_step_zero(si64):
    atoms = si64.copy()
    atoms.positions[1] = atoms.positions[0] + [0.9, 0.0, 0.0]
    with pytest.raises(CalculationError, match="step 0.*overlapping") as info:
        run_md(atoms, StillingerWeber(), steps=10, temperature_K=300, seed=1)
    assert info.value.last_good is None


@pytest.mark.parametrize("ensemble", ["nve", "nvt"])
def test_checkpoint_resume_matches_uninterrupted_run(si64, tmp_path, ensemble):
    kw = dict(ensemble=ensemble, temperature_K=300, timestep_fs=1.0, seed=3)
    full = run_md(si64, StillingerWeber(), steps=60, **kw)
    ckpt = tmp_path / "run.ckpt.npz"
    traj = tmp_path / "run.traj"
    run_md(si64, StillingerWeber(), steps=25, trajectory=traj, checkpoint=ckpt,
           checkpoint_every=10, **kw)
    rest = resume_md(ckpt, StillingerWeber(), 35, trajectory=traj)
    assert rest.time_fs[0] == pytest.approx(25.0) and rest.time_fs[-1] == pytest.approx(60.0)
    assert np.abs(rest.atoms.positions - full.atoms.positions).max() < 1e-10
    assert np.abs(rest.atoms.get_momenta() - full.atoms.get_momenta()).max() < 1e-10
    assert np.allclose(rest.total_energy, full.total_energy[25:], atol=1e-10)
    assert len(read(traj, ":")) == 61


@pytest.mark.parametrize("field,kwargs", [
    ("timestep_fs", dict(timestep_fs=0.0)),
    ("timestep_fs", dict(timestep_fs=-1.0)),
    ("steps", dict(steps=0)),
    ("steps", dict(steps=-5)),
    ("temperature_K", dict(temperature_K=-10.0)),
    ("temperature_K", dict(ensemble="nvt", temperature_K=None)),
    ("ensemble", dict(ensemble="nph")),
    ("friction", dict(ensemble="nvt", friction=0.0)),
    ("max_force", dict(max_force=float("nan"))),
])
def test_bad_input_names_field_and_value(si64, field, kwargs):
    args = dict(steps=10, temperature_K=300.0)
    args.update(kwargs)
    with pytest.raises(InputError, match=field) as info:
        run_md(si64, StillingerWeber(), **args)
    assert info.value.field == field


def test_resume_missing_checkpoint(tmp_path):
    with pytest.raises(InputError, match="checkpoint_path"):
        resume_md(tmp_path / "nope.npz", StillingerWeber(), 5)
