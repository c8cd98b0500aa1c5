"""Nanoindentation of a 2D crystal (coupling.indentation): the indenter's forces and load against
its energy, force balance of the relaxed crystal, the Cauchy–Born indicator, adaptive QC against
full atomistics (slow), bad input."""
import numpy as np
import pytest

from scaleladder.atomistic import Morse
from scaleladder.core.errors import InputError
from scaleladder.coupling.indentation import (CylindricalIndenter, cauchy_born_indicator, indent,
                                              indentation_sample)
from scaleladder.coupling.qc2d import QC2D

A = 2.6
POT = Morse(D0=0.4, alpha=1.3, r0=A, rc=6.0)


def test_indenter_forces_and_load_are_energy_derivatives():
    ind = CylindricalIndenter(8.0, 10.0, 5.0, K=10.0)
    ind.depth = 1.5
    rng = np.random.default_rng(0)
    y = np.column_stack([rng.uniform(2, 18, 60), rng.uniform(2, 5.5, 60)])
    e, f = ind(y)
    assert e > 0 and np.count_nonzero(np.linalg.norm(f, axis=1)) > 3
    h = 1e-6
    for k in np.flatnonzero(np.linalg.norm(f, axis=1))[:5]:
        for c in (0, 1):
            yp, ym = y.copy(), y.copy()
            yp[k, c] += h
            ym[k, c] -= h
            assert f[k, c] == pytest.approx(-(ind(yp)[0] - ind(ym)[0]) / (2 * h), rel=1e-4, abs=1e-7)
    # the load is the work conjugate of the depth: dE/d(depth) at fixed atoms
    ind.depth = 1.5 + h
    ep = ind(y)[0]
    ind.depth = 1.5 - h
    em = ind(y)[0]
    ind.depth = 1.5
    assert ind.load(y) == pytest.approx((ep - em) / (2 * h), rel=1e-6)


def test_relaxed_crystal_balances_the_indenter_load():
    """Full atomistic model relaxed under the indenter: the free atoms carry no force, the
    interatomic forces sum to zero, so the held atoms' reaction balances the load."""
    X, top, fixed = indentation_sample(16, 10, 2.4417)
    xc = X[top][np.argmin(np.abs(X[top, 0] - X[:, 0].mean())), 0]
    ind = CylindricalIndenter(6.0, xc, X[:, 1].max())
    ind.depth = 0.8
    n = X.shape[0]
    qc = QC2D(X, 2.4417, POT, np.arange(n), np.arange(n), external=ind)
    y = qc.relax(X.copy(), fixed, fmax=1e-6)
    internal = qc.forces(y) - ind(y)[1]
    load = ind.load(y)
    assert load > 0.1
    assert np.abs(internal.sum(axis=0)).max() < 1e-10
    assert -internal[fixed, 1].sum() == pytest.approx(load, rel=1e-4)   # the support reaction


def test_cauchy_born_indicator():
    X, _, _ = indentation_sample(20, 12, 2.4417)
    n = X.shape[0]
    qc = QC2D(X, 2.4417, POT, np.arange(n), [])
    F = np.array([[1.02, 0.03], [-0.01, 0.98]])
    assert cauchy_born_indicator(qc, qc.homogeneous(F)).max() < 1e-12
    y = X.copy()
    y[X[:, 1] > X[:, 1].mean(), 0] += 0.8               # a slip step across the middle
    eta = cauchy_born_indicator(qc, y)
    hot = qc.X[qc.rep][eta > 0.05]
    assert hot.size and np.all(np.abs(hot[:, 1] - X[:, 1].mean()) < 3.5)    # ≤ 1.5 rows away


def test_coarsening_returns_quiet_nonlocal_atoms_to_the_continuum():
    """A nonlocal disc in a homogeneously strained crystal is quiet: everything outside the kept
    region goes back; with a slip step through part of it, the atoms near the step stay."""
    from scaleladder.coupling.indentation import coarsen_nonlocal

    X, _, _ = indentation_sample(30, 20, 2.4417)
    n = X.shape[0]
    c = X.mean(axis=0)
    d = np.linalg.norm(X - c, axis=1)
    nl = d < 15.0
    keep = d < 5.0
    qc = QC2D(X, 2.4417, POT, np.arange(n), nl)
    F = np.array([[1.01, 0.02], [0.0, 0.99]])
    out = coarsen_nonlocal(qc, qc.homogeneous(F), nl, keep, 0.02, reach=8.0)
    assert np.array_equal(out, keep)
    y = X.copy()
    y[(X[:, 1] > c[1]) & (X[:, 0] > c[0]), 0] += 1.2          # a step on the right half
    out = coarsen_nonlocal(qc, y, nl, keep, 0.02, reach=8.0)
    right = nl & (X[:, 0] > c[0] + 6) & (np.abs(X[:, 1] - c[1]) < 3)
    left = nl & (X[:, 0] < c[0] - 14) & (np.abs(X[:, 1] - c[1]) < 3)
    assert out[right].all() and not out[left].any()


@pytest.mark.slow
def test_adaptive_qc_matches_full_atomistics_in_the_load():
    """50 x 30 lattice, cylinder R = 15 Å, loaded in steps of 0.5 Å to 3 Å, walls held as thick
    as the cutoff in both models, relaxed to 1e-6 eV/Å: the adaptive force-based QC's load is
    within 0.2 % of the full atomistic model's at every step (measured +0.02 … +0.08 %); its
    nonlocal region grows under the indenter; it has fewer degrees of freedom."""
    depths = np.arange(0.5, 3.01, 0.5)
    kw = dict(radius=15.0, depths=depths, nonlocal_depth=20.0, fine_radius=25.0)
    full = indent(50, 30, A, POT, full=True, **kw)
    qc = indent(50, 30, A, POT, **kw)
    err = np.abs(np.array(qc.load) / np.array(full.load) - 1)
    assert np.all(err < 0.002)
    assert np.all(np.diff(qc.nonlocal_atoms) >= 0) and qc.nonlocal_atoms[-1] > qc.nonlocal_atoms[0]
    assert qc.dofs < full.dofs and full.dofs == 2 * (full.info["sites"] - full.info["held_sites"])


def test_bad_input():
    with pytest.raises(InputError, match="depths"):
        indent(20, 12, A, POT, radius=8.0, depths=[1.0, 0.5])
    with pytest.raises(InputError, match="radius"):
        CylindricalIndenter(-1.0, 0.0, 0.0)


def test_a_support_thicker_than_the_cutoff_removes_the_spurious_bottom_surface():
    """Held bottom and side layers of one row leave a second free surface whose stress bows the
    full atomistic sample (its surface rises 0.14 Å mid-span against 0.07 Å in the QC); held
    layers as thick as the cutoff make the two relaxed surfaces agree."""
    X, _, thin = indentation_sample(24, 14, 2.4417)
    _, _, thick = indentation_sample(24, 14, 2.4417, hold=POT.cutoff)
    assert thick.sum() > 2 * thin.sum()
    kw = dict(radius=6.0, depths=[0.02], nonlocal_depth=8.0, fine_radius=10.0, adaptive=False)
    rel = {}
    for hold in (0.8 * A, POT.cutoff):                # one row / column, then the default (rc)
        rel[hold] = [indent(24, 14, A, POT, full=full, hold=hold, **kw).info["surface_relaxation_A"]
                     for full in (True, False)]
    full_t, qc_t = rel[POT.cutoff]
    assert abs(full_t - qc_t) < 0.1 * abs(qc_t)
    assert abs(rel[0.8 * A][0] - rel[0.8 * A][1]) > abs(full_t - qc_t)


def test_a_killed_indentation_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """The run is killed during its third depth step; rerun with the same checkpoint it resumes
    after the second and ends with the uninterrupted run's loads, bit for bit.  A checkpoint of
    another run is refused, naming what differs."""
    from scaleladder.core.checkpoint import CheckpointError
    from scaleladder.coupling import qc2d

    kw = dict(radius=6.0, depths=[0.2, 0.4, 0.6], nonlocal_depth=8.0, fine_radius=10.0,
              adaptive=False)
    ck = tmp_path / "indent.npz"
    relax = qc2d.QC2D.relax
    calls = {"n": 0}

    def dying(self, *a, **k):
        calls["n"] += 1
        if calls["n"] > 3:              # the free surface and two depth steps, then the kill
            raise KeyboardInterrupt("killed")
        return relax(self, *a, **k)

    monkeypatch.setattr(qc2d.QC2D, "relax", dying)
    with pytest.raises(KeyboardInterrupt):
        indent(24, 14, A, POT, checkpoint=ck, **kw)
    monkeypatch.setattr(qc2d.QC2D, "relax", relax)
    assert ck.is_file()
    again = indent(24, 14, A, POT, checkpoint=ck, **kw)
    assert again.info["resumed_steps"] == 2
    straight = indent(24, 14, A, POT, **kw)
    assert again.load == straight.load and len(again.load) == 3
    with pytest.raises(CheckpointError, match="radius"):
        indent(24, 14, A, POT, checkpoint=ck, **dict(kw, radius=7.0))


def test_lbfgs_and_fire_reach_the_same_full_atomistic_state():
    """The full model relaxed by L-BFGS (on its energy) and by FIRE (on its forces), both to
    1e-6 eV/Å: the same loads; the force-based QC has no energy, and L-BFGS is refused for it."""
    kw = dict(radius=6.0, depths=[0.3, 0.6], full=True)
    fire = indent(24, 14, A, POT, **kw)
    lbfgs = indent(24, 14, A, POT, optimizer="lbfgs", **kw)
    assert np.allclose(lbfgs.load, fire.load, rtol=1e-4)          # measured 2e-5 apart
    assert lbfgs.energy[-1] <= fire.energy[-1] + 1e-8               # L-BFGS minimises it
    with pytest.raises(InputError, match="optimizer"):
        indent(24, 14, A, POT, radius=6.0, depths=[0.3], nonlocal_depth=8.0, fine_radius=10.0,
               optimizer="lbfgs")
