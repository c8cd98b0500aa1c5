"""Shared checks of the Verlet-skin neighbour lists of the numba potentials (used by the
potential test modules: test_pair, test_eam, test_stillinger_weber, test_tersoff)."""
from __future__ import annotations

import numpy as np
import pytest


def md_against_rebuild(atoms, skinned, reference, steps=50, dt_fs=1.0, temperature_K=300.0,
                       seed=0):
    """NVE velocity Verlet driven by ``skinned[0]``; at every step each calculator of
    ``skinned`` is compared with ``reference`` (skin 0: list rebuilt every call) on the same
    positions.  Returns ``(worst relative energy, force and stress differences, builds of
    skinned[0] during the run)``."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    rng = np.random.default_rng(seed)
    m = atoms.get_masses()[:, None]
    p = rng.normal(size=(len(atoms), 3)) * np.sqrt(m * units.kB * temperature_K)
    atoms.set_momenta(p - p.mean(axis=0) * m / m.mean())
    atoms.calc = skinned[0]
    worst = np.zeros(3)

    def compare():
        ref = atoms.copy()
        ref.calc = reference
        e0, f0, s0 = ref.get_potential_energy(), ref.get_forces(), ref.get_stress()
        for k, calc in enumerate(skinned):
            at = atoms if k == 0 else atoms.copy()
            at.calc = calc
            e, f, s = at.get_potential_energy(), at.get_forces(), at.get_stress()
            worst[0] = max(worst[0], abs(e - e0) / abs(e0))
            worst[1] = max(worst[1], np.abs(f - f0).max() / np.abs(f0).max())
            worst[2] = max(worst[2], np.abs(s - s0).max() / np.abs(s0).max())

    dyn = VelocityVerlet(atoms, dt_fs * units.fs)
    dyn.attach(compare, interval=1)
    b0 = skinned[0].neighbour_builds
    dyn.run(steps)
    return worst, skinned[0].neighbour_builds - b0


def rebuild_rules(atoms, calc, fresh, skin):
    """The list of ``calc`` is reused for moves below ``skin / 2`` and rebuilt after a larger
    move, a cell change (strain) and a pbc change; results always equal those of ``fresh``
    (skin 0)."""
    atoms = atoms.copy()
    atoms.calc = calc
    history = []

    def check():
        e = atoms.get_potential_energy()
        ref = atoms.copy()
        ref.calc = fresh
        assert e == pytest.approx(ref.get_potential_energy(), rel=1e-12)
        assert np.abs(atoms.get_forces() - ref.get_forces()).max() < 1e-12 * np.abs(
            ref.get_forces()).max()
        history.append(calc.neighbour_builds)

    check()
    atoms.positions[5] += [0.4 * skin, 0.0, 0.0]          # below skin / 2: reused
    check()
    atoms.positions[5] += [0.2 * skin, 0.0, 0.0]          # 0.6 skin from the build: rebuilt
    check()
    atoms.positions += 0.01 * skin                         # rigid-ish small move: reused
    check()
    atoms.set_cell(atoms.cell[:] * 1.002, scale_atoms=True)  # strain (as NPT): rebuilt
    check()
    atoms.pbc = (True, True, False)                        # periodicity changed: rebuilt
    check()
    assert np.diff(history).tolist() == [0, 1, 0, 1, 1]
