"""An edge dislocation by the quasicontinuum against full atomistics (coupling.dislocation): the
Volterra field, the dislocation staying in the box, errors falling with the nonlocal radius,
the energy bound, the elastic energy's ln R law (slow), bad input."""
import math

import numpy as np
import pytest

from scaleladder.atomistic import Morse
from scaleladder.core.errors import InputError
from scaleladder.coupling.dislocation import edge_dislocation, edge_dislocation_field

A = 2.6
POT = Morse(D0=0.4, alpha=1.3, r0=A, rc=6.0)


def test_volterra_field_has_the_burgers_jump_and_solves_elasticity():
    """The jump of u across the cut is b (and nothing on the other side); away from the core the
    field satisfies Navier's equations, (λ + μ)∇(∇·u) + μ∇²u = 0, checked by finite differences."""
    b, nu = 2.5, 0.25
    xs = np.array([[5.0, 1e-9], [5.0, -1e-9], [-5.0, 1e-9], [-5.0, -1e-9]])
    u = edge_dislocation_field(xs, (0.0, 0.0), b, nu)
    assert u[1, 0] - u[0, 0] == pytest.approx(b, rel=1e-9)
    assert abs(u[3, 0] - u[2, 0]) < 1e-8
    lam = 2 * nu / (1 - 2 * nu)            # μ = 1, ν = λ/2(λ + μ)
    h = 1e-3
    for p in ([-3.0, 2.0], [1.5, -4.0], [-2.0, -0.7]):
        p = np.array(p)

        def U(dx, dy):
            return edge_dislocation_field((p + [dx, dy])[None], (0.0, 0.0), b, nu)[0]

        uxx = (U(h, 0) - 2 * U(0, 0) + U(-h, 0)) / h ** 2
        uyy = (U(0, h) - 2 * U(0, 0) + U(0, -h)) / h ** 2
        uxy = (U(h, h) - U(h, -h) - U(-h, h) + U(-h, -h)) / (4 * h * h)
        grad_div = np.array([uxx[0] + uxy[1], uxy[0] + uyy[1]])
        navier = (lam + 1) * grad_div + (uxx + uyy)
        assert np.abs(navier).max() < 1e-5 * np.abs(uxx + uyy).max() + 1e-6


@pytest.fixture(scope="module")
def runs():
    full = edge_dislocation(32, 28, A, POT, full=True)
    qc = {r: edge_dislocation(32, 28, A, POT, core_radius=r) for r in (6.0, 12.0)}
    return full, qc


def test_the_dislocation_stays_in_the_box(runs):
    """Relaxed full model: the rows either side of the glide plane are offset by b far behind the
    core and not at all ahead of it — the dislocation is still inside, near the centre."""
    full, _ = runs
    X, y = full.X, full.y_sites
    core = full.info["core"]
    ry = full.info["a0"] * math.sqrt(3) / 2
    above = (X[:, 1] > core[1]) & (X[:, 1] < core[1] + ry)
    below = (X[:, 1] < core[1]) & (X[:, 1] > core[1] - ry)

    def offset(x0):
        ia = np.flatnonzero(above)[np.argmin(np.abs(X[above, 0] - x0))]
        ib = np.flatnonzero(below)[np.argmin(np.abs(X[below, 0] - x0))]
        return (y[ia, 0] - X[ia, 0]) - (y[ib, 0] - X[ib, 0])

    b = full.info["a0"]
    assert abs(offset(core[0] + 25.0)) == pytest.approx(b, rel=0.1)
    assert abs(offset(core[0] - 25.0)) < 0.1 * b
    assert full.energy - full.info["perfect_energy"] > 1.0


def test_qc_errors_fall_with_the_nonlocal_radius_and_bound_the_energy(runs):
    """32 x 28 box: with a nonlocal disc of 6 Å and then 12 Å around the core, the QC's largest
    displacement error and its energy error both fall, the energy error is non-negative (the
    QC's configuration is admissible for the full model, whose minimum it cannot beat), and the
    QC has fewer degrees of freedom."""
    full, qc = runs
    e6, e12 = qc[6.0].errors(full), qc[12.0].errors(full)
    assert e12["max_displacement_A"] < 0.5 * e6["max_displacement_A"]
    assert 0 <= e12["energy_eV"] < e6["energy_eV"]
    assert e12["energy_relative"] < 0.01
    assert qc[6.0].dofs < qc[12.0].dofs < full.dofs


def test_bad_input():
    with pytest.raises(InputError, match="core_radius"):
        edge_dislocation(32, 28, A, POT, core_radius=-1.0)
    with pytest.raises(InputError, match="nx"):
        edge_dislocation(16, 16, A, POT, hold=12.0)
    with pytest.raises(InputError, match="nu"):
        edge_dislocation_field(np.zeros((1, 2)), (1.0, 1.0), 1.0, 0.7)


@pytest.mark.slow
def test_dislocation_energy_grows_as_ln_of_the_box():
    """Scaling the clamped box by 2 adds μb²/4π(1−ν) · ln 2 to the dislocation's energy (linear
    elasticity, self-similar domains; the core and the shape's constant cancel)."""
    from scaleladder.coupling.cauchy_born import PairLattice

    small = edge_dislocation(30, 28, A, POT, full=True)
    big = edge_dislocation(60, 56, A, POT, full=True)
    a0 = small.info["a0"]
    C = PairLattice.triangular(a0, POT).elastic_constants()
    mu, nu = C[0, 1, 0, 1], small.info["nu"]
    predicted = mu * a0 ** 2 / (4 * math.pi * (1 - nu)) * math.log(2.0)
    dE = (big.energy - big.info["perfect_energy"]) - (small.energy - small.info["perfect_energy"])
    assert dE == pytest.approx(predicted, rel=0.05)
