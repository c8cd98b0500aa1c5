"""1D quasicontinuum (coupling.quasicontinuum): patch test of the three variants, the ghost
forces against their hand derivation, energy consistency, the fully refined limit, bad input."""
import numpy as np
import pytest

from scaleladder.atomistic import Morse
from scaleladder.core.errors import InputError, PropertyNotImplementedError
from scaleladder.coupling.quasicontinuum import QCChain, chain_energy_forces

A = 2.5
POT = Morse(D0=0.5, alpha=1.2, r0=A, rc=6.0)     # nearest and next-nearest neighbours at a
N = 61


def _coarse(variant, nl_end=31, step=4):
    rep = np.unique(np.concatenate([np.arange(0, nl_end + 2), np.arange(nl_end + 2, N, step),
                                    [N - 1]]))
    return QCChain(N, A, POT, rep, np.arange(nl_end), variant=variant)


@pytest.mark.parametrize("variant,passes", [("energy", False), ("gfc", True), ("force", True)])
@pytest.mark.parametrize("coarse", [False, True])
def test_patch_test(variant, passes, coarse):
    """A homogeneous deformation must give zero forces away from the free ends: QCF and
    ghost-force-corrected QCE pass to round-off, plain QCE does not (its ghost forces)."""
    qc = _coarse(variant) if coarse else QCChain(N, A, POT, np.arange(N), np.arange(31),
                                                  variant=variant)
    for F in (0.98, 1.0, 1.03):
        err = qc.patch_test(F)
        if passes:
            assert err < 1e-12
        else:
            assert err > 1e-3


def test_ghost_forces_equal_the_hand_derivation():
    """Atomistic sites i ≤ 30, Cauchy–Born sites above, every site a repatom, nearest and
    next-nearest neighbours: under y = F X the QCE forces on sites 29, 30, 31, 32 are
    φ'(2Fa)/2 · (−1, +1, +1, −1) and zero elsewhere in the interior (docs/quasicontinuum.md)."""
    qc = QCChain(N, A, POT, np.arange(N), np.arange(31))
    for F in (0.97, 1.0, 1.05):
        g = qc.ghost_forces(F)
        half = 0.5 * POT.pair(2 * F * A)[1]
        expect = np.zeros(N)
        expect[29:33] = half * np.array([-1.0, 1.0, 1.0, -1.0])
        inner = qc.interior
        assert np.allclose(g[inner], expect[inner], atol=1e-13)
        assert abs(half) > 1e-3
        # the ghost forces sum to zero (translation invariance of the QCE energy)
        assert abs(g[inner].sum()) < 1e-12


def test_energy_based_forces_are_the_energy_gradient():
    for variant in ("energy", "gfc"):
        qc = _coarse(variant)
        y = qc.homogeneous(1.01) + 0.05 * np.random.default_rng(1).standard_normal(qc.n_dofs)
        f = qc.forces(y)
        h = 1e-6
        eye = np.eye(qc.n_dofs)
        fd = np.array([-(qc.energy(y + h * eye[k]) - qc.energy(y - h * eye[k])) / (2 * h)
                       for k in range(qc.n_dofs)])
        assert np.allclose(f, fd, atol=1e-7)


def _loop_work(qc, y0, i, j, h=0.02, n=20):
    """Work of the forces around the square loop y_i += h, y_j += h, y_i −= h, y_j −= h
    (midpoint rule)."""
    y, work = y0.copy(), 0.0
    for k, s in ((i, 1), (j, 1), (i, -1), (j, -1)):
        for _ in range(n):
            mid = y.copy()
            mid[k] += 0.5 * s * h / n
            work += qc.forces(mid)[k] * s * h / n
            y[k] += s * h / n
    return work


def test_force_based_qc_has_no_energy_and_is_not_conservative():
    qc = _coarse("force")
    with pytest.raises(PropertyNotImplementedError, match="not conservative"):
        qc.energy(qc.homogeneous(1.0))
    # the work of its forces around a closed loop is not zero: no energy exists
    y0 = qc.homogeneous(1.0)
    i, j = 30, 32          # next-nearest neighbours across the interface (atomistic, local)
    work = _loop_work(qc, y0, i, j)
    work_e = _loop_work(_coarse("energy"), y0, i, j)
    assert abs(work_e) < 1e-9                    # conservative: midpoint rule exact to O(h³)
    assert abs(work) > 1e3 * abs(work_e) + 1e-8


def test_fully_refined_qc_is_the_atomistic_chain():
    y = A * np.arange(N) + 0.05 * np.random.default_rng(2).standard_normal(N)
    e_ref, f_ref = chain_energy_forces(y, POT)
    for variant in ("energy", "force"):
        qc = QCChain(N, A, POT, np.arange(N), np.arange(N), variant=variant)
        assert np.allclose(qc.forces(y), f_ref, atol=1e-14)
    assert QCChain(N, A, POT, np.arange(N), np.arange(N)).energy(y) == pytest.approx(e_ref, rel=1e-14)
    # with nearest neighbours only, the local region is exact too (Cauchy–Born is exact for a
    # nearest-neighbour chain resolved atom by atom)
    nn = Morse(D0=0.5, alpha=1.2, r0=A, rc=1.5 * A)
    qc = QCChain(N, A, nn, np.arange(N), np.arange(20))
    yh = 1.01 * A * np.arange(N) + 0.02 * np.random.default_rng(4).standard_normal(N)
    assert qc.energy(yh) == pytest.approx(chain_energy_forces(yh, nn)[0], rel=1e-13)


def test_relax_a_stretched_chain_with_qcf_and_qce():
    """A chain held at its ends at 2 % stretch relaxes to the homogeneous state under QCF and GFC
    (no spurious interface relaxation); QCE's ghost forces displace the interface atoms."""
    out = {}
    for variant in ("energy", "gfc", "force"):
        qc = _coarse(variant)
        y0 = qc.homogeneous(1.02)
        K = 3
        fixed = np.concatenate([np.arange(K), np.arange(qc.n_dofs - K, qc.n_dofs)])
        if variant == "gfc":
            qc.set_reference(y0)
        y = qc.relax(y0, fixed)
        out[variant] = np.abs(y - y0)[qc.interior].max()
    assert out["force"] < 1e-9 and out["gfc"] < 1e-9
    assert out["energy"] > 1e-4


def test_bad_input():
    with pytest.raises(InputError, match="conform"):
        QCChain(N, A, POT, np.arange(0, N, 2), np.arange(31))
    with pytest.raises(InputError, match="repatoms"):
        QCChain(N, A, POT, np.arange(1, N), np.arange(3))
    with pytest.raises(InputError, match="variant"):
        QCChain(N, A, POT, np.arange(N), np.arange(3), variant="ghost")
    qc = QCChain(N, A, POT, np.arange(N), np.arange(3))
    y = qc.homogeneous(1.0)
    y[[10, 11]] = y[[11, 10]]
    with pytest.raises(InputError, match="in order"):
        qc.forces(y)
