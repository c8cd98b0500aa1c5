"""AdResS: force interpolation, Newton's third law, and the thermodynamic force flattening the
density across the hybrid layers."""
from __future__ import annotations

import numpy as np
import pytest

from scaleladder.core.errors import InputError
from scaleladder.handoffs import CGPotential, CGTrajectory
from scaleladder.mesoscale.adress import _forces, resolution, run_adress
from scaleladder.mesoscale.cg import tabulate_pair
from scaleladder.mesoscale.particles import PairList

from test_cg import MASS, SIG, T_STAR1, _lj, lj_potential


def _models():
    fine = lj_potential()
    E, F = tabulate_pair(lambda x: 0.8 * _lj(x), fine.r_A)     # weaker attraction: higher p
    coarse = CGPotential(["Ar"], [MASS], fine.r_A, {"Ar-Ar": E}, {"Ar-Ar": F}, "given", T_STAR1,
                         0.8 / SIG ** 3)
    return fine, coarse


def _slab(seed=0):
    L = np.array([64.0, 20.0, 20.0])
    n = int(0.8 / SIG ** 3 * L.prod())
    g = np.stack(np.meshgrid(np.arange(20), np.arange(6), np.arange(6), indexing="ij"),
                 -1).reshape(-1, 3)
    pos = (g[:n] + 0.5) * L / np.array([20, 6, 6])
    pos += np.random.default_rng(seed).normal(scale=0.05, size=pos.shape)
    return CGTrajectory(pos[None], L, np.zeros(n, int), ["Ar"], [MASS], T_STAR1)


def test_resolution_function_and_force_interpolation():
    fine, coarse = _models()
    start = _slab()
    x = start.positions[0]
    L = start.box
    w = resolution(np.array([32.0, 40.0, 43.0, 46.0, 50.0, 0.0]), centre=32.0, box_x=64.0,
                   d_at=8.0, d_hy=6.0)
    assert np.allclose(w, [1.0, 1.0, 0.5, 0.0, 0.0, 0.0])
    pl = PairList(L, fine.cutoff_A, 0.0)
    pl.build(x)
    args = (x, pl.i, pl.j, pl.shift, float(fine.r_A[0]), float(fine.r_A[1] - fine.r_A[0]),
            np.asarray(fine.pair_force_eV_per_A["Ar-Ar"]),
            np.asarray(coarse.pair_force_eV_per_A["Ar-Ar"]), fine.cutoff_A, 32.0, 64.0)
    F = np.zeros_like(x)
    _forces(*args, 8.0, 6.0, 8.0, 0.15, np.zeros(41), F)
    assert np.allclose(F.sum(axis=0), 0.0, atol=1e-12)          # pairwise antisymmetric
    # a slab covering the box is the fine model everywhere; a vanishing one the coarse model
    Ff, Fc = np.zeros_like(x), np.zeros_like(x)
    _forces(*args, 40.0, 1.0, 40.0, 0.025, np.zeros(41), Ff)
    _forces(*args, 1e-9, 1e-9, 1e-9, 1e-10, np.zeros(41), Fc)
    wi = resolution(x[:, 0], centre=32.0, box_x=64.0, d_at=8.0, d_hy=6.0)
    assert not np.allclose(Ff, Fc)
    # in a wide fine slab, beads whose whole neighbourhood is fine feel exactly the fine forces
    Fw = np.zeros_like(x)
    _forces(*args, 25.0, 1.0, 25.0, 0.025, np.zeros(41), Fw)
    inner = np.flatnonzero(np.abs(x[:, 0] - 32.0) < 25.0 - fine.cutoff_A - 0.1)
    assert inner.size > 10
    assert np.allclose(Fw[inner], Ff[inner], atol=1e-12)
    coarse_beads = np.flatnonzero(np.abs(((x[:, 0] - 32.0 + 32.0) % 64.0) - 32.0) > 14.0
                                  + fine.cutoff_A)
    assert coarse_beads.size > 10
    assert np.allclose(F[coarse_beads], Fc[coarse_beads], atol=1e-12)
    # the thermodynamic force acts along x in the hybrid layers only, pushing outwards if > 0
    Fth = np.full(41, 0.01)
    G = np.zeros_like(x)
    _forces(*args, 8.0, 6.0, 8.0, 0.15, Fth, G)
    d = G - F
    hyb = (wi > 0) & (wi < 1)
    assert np.allclose(d[~hyb], 0.0, atol=1e-12) and np.allclose(d[hyb][:, 1:], 0.0, atol=1e-12)
    assert np.allclose(np.abs(d[hyb][:, 0]), 0.01)
    assert np.all(np.sign(d[hyb][:, 0]) == np.sign(x[hyb, 0] - 32.0))


def test_bad_geometry_is_refused():
    fine, coarse = _models()
    with pytest.raises(InputError, match="d_at"):
        run_adress(fine, coarse, _slab(), d_at=20.0, d_hy=6.0, steps=10)


@pytest.mark.slow
def test_thermodynamic_force_flattens_the_density_profile():
    """Without F_th the weaker-attraction coarse model (higher pressure at the same density)
    pushes beads into the fine slab: the hybrid and coarse regions deviate by ~30 % from the mean
    density.  Six updates of F_th bring that to the noise (~5-8 %)."""
    fine, coarse = _models()
    res = run_adress(fine, coarse, _slab(), d_at=8.0, d_hy=6.0, steps=8000, iterations=6,
                     equilibration=2000)
    assert res.deviation[0] > 0.2
    assert min(res.deviation[-2:]) < 0.1
    assert np.all(res.f_th[: len(res.f_th) // 2] > 0)   # pushes outwards near the fine slab
