"""r-RESPA multiple time stepping (atomistic.md.RESPA through run_md): velocity Verlet when the
steps are equal, drift ∝ Δt², the resonances where the linear analysis puts them, the Langevin
variant's temperature, bit-for-bit resume, bad input."""
import math

import numpy as np
import pytest
from ase import Atoms, units

from scaleladder.atomistic.forcefield import FixedChargeForceField
from scaleladder.atomistic.md import resume_md, run_md
from scaleladder.core.errors import InputError

KF, KS, R0 = 40.0, 2.0, 1.2          # fast and slow springs on one bond (eV/Å²), Å


def _ff(bonds, n=2, eps=0.0, sigma=0.0, cutoff=None):
    return FixedChargeForceField(np.zeros(n), np.full(n, eps), np.full(n, sigma), bonds=bonds,
                                 cutoff=cutoff)


def _dimer():
    at = Atoms("N2", positions=[[0, 0, 0], [0, 0, R0 + 0.05]])
    mu = at.get_masses()[0] / 2
    w = math.sqrt(KF / mu)                                       # rad per ASE time unit
    return at, _ff([(0, 1, KF, R0)]), _ff([(0, 1, KF, R0), (0, 1, KS, R0)]), mu, w


def _trace(dt_fs, mu, w):
    """Trace of the impulse method's one-step matrix for x'' = −(KF + KS)/μ x, fast part exact:
    2 cos(ωΔt) − (KS/μ) Δt sin(ωΔt)/ω; |trace| > 2 is an instability (Garcia-Archilla,
    Sanz-Serna & Skeel 1998)."""
    dt = dt_fs * units.fs
    return 2 * math.cos(w * dt) - (KS / mu) * dt * math.sin(w * dt) / w


def _dimers(n_mol=27, L=12.0, seed=0):
    rng = np.random.default_rng(seed)
    g = (np.arange(3) + 0.5) * L / 3
    pos, bonds = [], []
    for k, c in enumerate(np.array([[x, y, z] for x in g for y in g for z in g])[:n_mol]):
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        pos += [c - 0.5 * R0 * u, c + 0.5 * R0 * u]
        bonds.append((2 * k, 2 * k + 1, KF, R0))
    at = Atoms(f"N{2 * n_mol}", positions=pos, cell=[L] * 3, pbc=True)
    n = len(at)
    fast = _ff(bonds, n, cutoff=5.0)
    total = _ff(bonds, n, eps=0.02, sigma=3.3, cutoff=5.0)
    return at, fast, total


def test_equal_inner_and_outer_steps_is_velocity_verlet():
    at, fast, total = _dimers()
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    thermalize_momenta(at, 300.0, rng=np.random.default_rng(1))
    Stationary(at)
    vv = run_md(at, total, steps=50, timestep_fs=1.0)
    mts = run_md(at, total, steps=50, timestep_fs=1.0, fast_calc=fast, inner_timestep_fs=1.0)
    assert np.allclose(mts.atoms.positions, vv.atoms.positions, atol=1e-10)
    assert np.allclose(mts.total_energy, vv.total_energy, atol=1e-10)


def test_energy_error_scales_as_the_outer_step_squared():
    at, fast, total, mu, w = _dimer()
    T = 2 * math.pi / w / units.fs
    dev = []
    for frac in (1 / 8, 1 / 16):
        dt = frac * T
        r = run_md(at, total, steps=int(16 / frac), timestep_fs=dt, fast_calc=fast,
                   inner_timestep_fs=dt / round(200 * frac))
        dev.append(np.abs(r.total_energy - r.total_energy[0]).max())
    assert dev[0] / dev[1] == pytest.approx(4.0, rel=0.15)          # measured 3.8


def test_resonances_sit_where_the_linear_analysis_puts_them():
    """Outer steps near T/2 and T (T the fast period): the energy explodes exactly where the
    impulse method's trace leaves [−2, 2], and stays bounded just outside."""
    at, fast, total, mu, w = _dimer()
    T = 2 * math.pi / w / units.fs
    for frac in (0.45, 0.49, 0.51, 0.97):
        dt = frac * T
        r = run_md(at, total, steps=300, timestep_fs=dt, fast_calc=fast,
                   inner_timestep_fs=dt / round(40 * frac), energy_drift_tol=1e9, max_force=1e9)
        growth = np.abs(r.total_energy - r.total_energy[0]).max()
        unstable = abs(_trace(dt, mu, w)) > 2
        assert unstable == (frac in (0.49, 0.97))
        assert (growth > 1.0) if unstable else (growth < 0.1)      # E0 = 0.05 eV


def test_langevin_respa_holds_the_temperature():
    at, fast, total = _dimers()
    r = run_md(at, total, steps=1500, ensemble="nvt", temperature_K=300.0, friction=0.02,
               timestep_fs=2.0, fast_calc=fast, inner_timestep_fs=0.5, seed=3)
    from scaleladder.atomistic.md import block_average

    T, dT = block_average(r.temperature_K[300:], 10)
    assert abs(T - 300.0) < max(4 * dT, 15.0)


def test_resume_is_bit_for_bit(tmp_path):
    at, fast, total = _dimers()
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    thermalize_momenta(at, 300.0, rng=np.random.default_rng(2))
    Stationary(at)
    kw = dict(timestep_fs=2.0, fast_calc=fast, inner_timestep_fs=0.5, checkpoint_every=10)
    whole = run_md(at, total, steps=40, **kw)
    ck = tmp_path / "run.ckpt.npz"
    run_md(at, total, steps=20, checkpoint=ck, **kw)
    rest = resume_md(ck, total, 20, fast_calc=fast)
    assert np.array_equal(rest.atoms.positions, whole.atoms.positions)
    with pytest.raises(InputError, match="fast_calc"):
        resume_md(ck, total, 5)


def test_bad_input():
    at, fast, total = _dimers()
    with pytest.raises(InputError, match="inner_timestep_fs"):
        run_md(at, total, steps=2, timestep_fs=2.0, fast_calc=fast, inner_timestep_fs=0.7)
    with pytest.raises(InputError, match="inner_timestep_fs"):
        run_md(at, total, steps=2, timestep_fs=2.0, fast_calc=fast)
    with pytest.raises(InputError, match="fast_calc"):
        run_md(at, total, steps=2, timestep_fs=2.0, inner_timestep_fs=0.5)
