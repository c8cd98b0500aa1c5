"""2D quasicontinuum (coupling.qc2d) on a triangular Morse lattice: patch test of the three
variants on a graded mesh, QCE forces against finite differences of its energy, the fully refined
limit against the atomistic lattice, relaxation, bad input."""
import numpy as np
import pytest

from scaleladder.atomistic import Morse
from scaleladder.core.errors import InputError, PropertyNotImplementedError
from scaleladder.coupling.qc2d import QC2D, _pairs_within, triangular_lattice

A = 2.6
POT = Morse(D0=0.4, alpha=1.3, r0=A, rc=6.0)     # three neighbour shells (a, √3a, 2a)
NX = NY = 30
X = triangular_lattice(NX, NY, A)
C = X.mean(axis=0)
F_PATCH = np.array([[1.01, 0.02], [0.0, 0.99]])


def _graded(variant="energy", r_nl=12.0, r_fine=16.0, step=4, **kw):
    d = np.linalg.norm(X - C, axis=1)
    i, j = np.meshgrid(np.arange(NX), np.arange(NY))
    i, j = i.ravel(), j.ravel()
    lo, hi = X.min(axis=0), X.max(axis=0)
    boundary = (X[:, 0] < lo[0] + A) | (X[:, 0] > hi[0] - A) | (X[:, 1] < lo[1] + 1e-9) | \
        (X[:, 1] > hi[1] - 1e-9)
    rep = np.flatnonzero((d < r_fine) | boundary | ((i % step == 0) & (j % step == 0)))
    return QC2D(X, A, POT, rep, np.flatnonzero(d < r_nl), variant=variant, **kw)


@pytest.mark.parametrize("variant,passes", [("energy", False), ("gfc", True), ("force", True)])
def test_patch_test_on_a_graded_mesh(variant, passes):
    qc = _graded(variant)
    assert qc.T.shape[0] < 2 * X.shape[0] / 3          # coarse: far fewer elements than atoms
    for F in (np.eye(2), F_PATCH):
        err = qc.patch_test(F)
        assert (err < 1e-11) if passes else (err > 1e-2)   # measured 6e-13; QCE 0.12 eV/Å


def test_qce_ghost_forces_live_at_the_interface_only():
    """Ghost forces sit within the reach of the interface: none deep in the atoms, none in the
    continuum beyond the fine padding (sites within rc of a nonlocal atom must be repatoms, or
    the coarse elements that interpolate them carry ghost forces too)."""
    Xb = triangular_lattice(44, 50, A)
    c = Xb.mean(axis=0)
    d = np.linalg.norm(Xb - c, axis=1)
    reach = POT.cutoff + A
    i, j = np.meshgrid(np.arange(44), np.arange(50))
    i, j = i.ravel(), j.ravel()
    lo, hi = Xb.min(axis=0), Xb.max(axis=0)
    boundary = (Xb[:, 0] < lo[0] + A) | (Xb[:, 0] > hi[0] - A) | (Xb[:, 1] < lo[1] + 1e-9) | \
        (Xb[:, 1] > hi[1] - 1e-9)
    rep = np.flatnonzero((d < 12 + reach) | boundary | ((i % 4 == 0) & (j % 4 == 0)))
    qc = QC2D(Xb, A, POT, rep, np.flatnonzero(d < 12))
    gv = qc.ghost_forces(F_PATCH)
    g = np.linalg.norm(gv, axis=1)
    r = np.linalg.norm(qc.X[qc.rep] - c, axis=1)
    inner = qc.interior
    deep_atoms, deep_cont = inner & (r < 12 - reach), inner & (r > 12 + reach + 5 * A)
    assert deep_atoms.sum() >= 3 and deep_cont.sum() > 5
    assert g[deep_atoms].max() < 1e-11 and g[deep_cont].max() < 1e-11
    assert g[inner].max() > 1e-2
    assert np.abs(gv[inner].sum(axis=0)).max() < 1e-9      # no net force (translation invariance)


def test_energy_based_forces_are_the_energy_gradient():
    qc = _graded("energy")
    y = qc.homogeneous(np.eye(2)) + 0.02 * np.random.default_rng(0).standard_normal((qc.rep.size, 2))
    f = qc.forces(y)
    r = np.linalg.norm(qc.X[qc.rep] - C, axis=1)
    h = 1e-5
    for k in np.argsort(np.abs(r - 12.0))[:4].tolist() + [int(np.argmax(r * qc.interior))]:
        for comp in (0, 1):
            yp, ym = y.copy(), y.copy()
            yp[k, comp] += h
            ym[k, comp] -= h
            assert f[k, comp] == pytest.approx(-(qc.energy(yp) - qc.energy(ym)) / (2 * h), abs=2e-6)


def test_fully_refined_qc_is_the_atomistic_lattice():
    n = X.shape[0]
    y = X + 0.02 * np.random.default_rng(1).standard_normal(X.shape)
    i, j = _pairs_within(y, POT.cutoff)
    d = y[j] - y[i]
    r = np.linalg.norm(d, axis=1)
    e, d1, _ = POT.pair(r)
    f = np.zeros_like(y)
    np.add.at(f, i, (d1 / r)[:, None] * d)
    np.add.at(f, j, -(d1 / r)[:, None] * d)
    for variant in ("energy", "force"):
        qc = QC2D(X, A, POT, np.arange(n), np.arange(n), variant=variant)
        assert np.allclose(qc.forces(y), f, atol=1e-12)
    assert QC2D(X, A, POT, np.arange(n), np.arange(n)).energy(y) == pytest.approx(e.sum(), rel=1e-13)


def test_relaxation_under_a_homogeneous_boundary_and_no_energy_for_qcf():
    """Boundary repatoms held at y = F X: QCF and GFC relax to the homogeneous state (nothing to
    do), QCE's ghost forces move the interface atoms."""
    moved = {}
    for variant in ("energy", "gfc", "force"):
        qc = _graded(variant)
        y0 = qc.homogeneous(F_PATCH)
        if variant == "gfc":
            qc.set_reference(y0)
        y = qc.relax(y0, ~qc.interior, fmax=1e-6)
        moved[variant] = np.abs(y - y0).max()
    assert moved["gfc"] < 1e-9 and moved["force"] < 1e-9
    assert moved["energy"] > 1e-3
    with pytest.raises(PropertyNotImplementedError, match="no energy"):
        _graded("force").energy(_graded("force").homogeneous(np.eye(2)))


def test_bad_input():
    d = np.linalg.norm(X - C, axis=1)
    rep = np.flatnonzero(d < 16)
    with pytest.raises(InputError, match="outside the mesh"):
        QC2D(X, A, POT, rep, np.flatnonzero(d < 12))
    with pytest.raises(InputError, match="conform"):
        QC2D(X, A, POT, np.arange(0, X.shape[0], 2), [0, 1])
    with pytest.raises(InputError, match="refined to lattice triangles"):
        _graded(r_nl=15.0, r_fine=15.5)
    with pytest.raises(InputError, match="variant"):
        _graded("qc")
