"""Stress-driven hydrogen diffusion (continuum.hydrogen): a closed body conserves hydrogen and
reaches c0 exp(sigma_h V_H / k_B T); a held boundary with a stress gradient gives the same
profile in the steady state; with no stress a Fourier mode decays as exp(-D k^2 t); the handoffs'
Estimates are accepted in their units; bad input is refused."""
from __future__ import annotations

import numpy as np
import pytest

from scaleladder.continuum.hydrogen import equilibrium_concentration, solve_hydrogen_diffusion
from scaleladder.core.errors import InputError
from scaleladder.uq import Estimate

L = 1e-3          # m
D = 1e-9          # m²/s
V_H = 3.4         # Å³ (H in Ni, NiAlH EAM)


def _mesh(n=33):
    from skfem import MeshTri

    return MeshTri.init_tensor(np.linspace(0, L, n), np.linspace(0, L, n)).with_boundaries(
        {"left": lambda x: np.isclose(x[0], 0.0), "right": lambda x: np.isclose(x[0], L)})


def _bump(x):
    return 1.5e9 * np.exp(-((x[0] - 0.3 * L) ** 2 + (x[1] - 0.6 * L) ** 2) / (0.15 * L) ** 2)


def test_closed_body_conserves_hydrogen_and_reaches_the_stress_equilibrium():
    m = _mesh()
    r = solve_hydrogen_diffusion(m, diffusivity=D, partial_molar_volume_A3=V_H,
                                 temperature_K=300.0, hydrostatic_stress=_bump, c_initial=1.0,
                                 dt=0.05 * L ** 2 / D, steps=200, every=20)
    assert np.abs(r.total / r.total[0] - 1).max() < 1e-10        # conserved, every stored step
    assert r.total[0] == pytest.approx(L * L, rel=1e-12)          # int 1 dA
    ceq = equilibrium_concentration(1.0, _bump(r.basis.doflocs), V_H, 300.0)
    ratio = r.c[-1] / ceq
    assert np.ptp(ratio) / ratio.mean() < 1e-8                   # c ∝ exp(sigma_h V_H / kT)
    # the units: 1 GPa x 3.4 Å^3 at 300 K is 0.8209 k_B T (SI constants written out here)
    s = _bump(r.basis.doflocs)
    peak = r.c[-1].max() / r.c[-1].min()
    assert peak == pytest.approx(np.exp(np.ptp(s) * 3.4e-30 / (1.380649e-23 * 300.0)), rel=1e-6)
    # and, before equilibrium, hydrogen flows into the bump: its concentration rises
    early = solve_hydrogen_diffusion(m, diffusivity=D, partial_molar_volume_A3=V_H,
                                     temperature_K=300.0, hydrostatic_stress=_bump,
                                     c_initial=1.0, dt=0.001 * L ** 2 / D, steps=3)
    assert 1.0 < early.c[-1].max() < r.c[-1].max()


def test_held_boundary_and_stress_gradient_give_the_equilibrium_profile():
    m = _mesh(17)
    stress = lambda x: 2e9 * x[0] / L                       # noqa: E731  Pa, rising with x
    r = solve_hydrogen_diffusion(m, diffusivity=Estimate(D, "m^2/s"),
                                 partial_molar_volume_A3=Estimate(V_H, "Å^3"),
                                 temperature_K=400.0, hydrostatic_stress=stress, c_initial=0.0,
                                 dt=L ** 2 / D, steps=40, dirichlet={"left": 2.0}, element="P2")
    exact = equilibrium_concentration(2.0, stress(r.basis.doflocs), V_H, 400.0)
    np.testing.assert_allclose(r.c[-1], exact, rtol=1e-9)
    # nodal stress values (P1 interpolation) instead of a callable: the same
    r2 = solve_hydrogen_diffusion(m, diffusivity=D, partial_molar_volume_A3=V_H,
                                  temperature_K=400.0, hydrostatic_stress=stress(m.p),
                                  c_initial=0.0, dt=L ** 2 / D, steps=40, dirichlet={"left": 2.0})
    np.testing.assert_allclose(r2.c[-1], equilibrium_concentration(2.0, stress(m.p), V_H, 400.0),
                               rtol=1e-9)


def test_without_stress_a_fourier_mode_decays_at_the_diffusion_rate():
    """c = 1 + 0.1 cos(pi x / L): amplitude exp(-D (pi/L)^2 t); backward Euler with
    lambda dt = 0.005 and 33 nodes: measured error 0.3 %."""
    m = _mesh()
    lam = D * (np.pi / L) ** 2
    dt, steps = 0.005 / lam, 200
    r = solve_hydrogen_diffusion(m, diffusivity=D, partial_molar_volume_A3=V_H,
                                 temperature_K=300.0, hydrostatic_stress=lambda x: 0 * x[0],
                                 c_initial=lambda x: 1 + 0.1 * np.cos(np.pi * x[0] / L),
                                 dt=dt, steps=steps)
    amp = (r.at(np.array([[0.0], [0.5 * L]]))[0] - r.at(np.array([[L], [0.5 * L]]))[0]) / 2
    assert amp / 0.1 == pytest.approx(np.exp(-lam * dt * steps), rel=0.01)
    assert r.total[-1] == pytest.approx(L * L, rel=1e-10)


def test_a_tensor_diffusivity_field_decays_each_mode_at_its_own_rate():
    """An in-plane tensor D (a callable of points, as the crack-tip KMC cells give it): the
    mode cos(pi x/L) decays with D_xx, cos(pi y/L) with D_yy — the off-diagonal D_xy couples
    neither (each is an eigenfunction of div(D grad) with Neumann edges only when D_xy = 0,
    so D_xy is zero here and the anisotropy is the check); a non-positive-definite field is
    refused."""
    m = _mesh()
    dxx, dyy = 2 * D, 0.5 * D

    def tensor(x):
        out = np.zeros((2, 2) + x.shape[1:])
        out[0, 0], out[1, 1] = dxx, dyy
        return out

    lam = (np.pi / L) ** 2
    dt, steps = 0.0025 / (lam * dxx), 200
    for axis, d in ((0, dxx), (1, dyy)):
        r = solve_hydrogen_diffusion(m, diffusivity=tensor, partial_molar_volume_A3=V_H,
                                     temperature_K=300.0, hydrostatic_stress=lambda x: 0 * x[0],
                                     c_initial=lambda x, a=axis: 1 + 0.1 * np.cos(np.pi * x[a] / L),
                                     dt=dt, steps=steps)
        lo, hi = np.array([[0.5 * L], [0.5 * L]]), np.array([[0.5 * L], [0.5 * L]])
        lo[axis], hi[axis] = 0.0, L
        amp = (r.at(lo)[0] - r.at(hi)[0]) / 2
        assert amp / 0.1 == pytest.approx(np.exp(-lam * d * dt * steps), rel=0.01), axis
    # a scalar field (callable returning one value per point) is isotropic
    r = solve_hydrogen_diffusion(m, diffusivity=lambda x: np.full(x.shape[1:], D),
                                 partial_molar_volume_A3=V_H, temperature_K=300.0,
                                 hydrostatic_stress=lambda x: 0 * x[0],
                                 c_initial=lambda x: 1 + 0.1 * np.cos(np.pi * x[1] / L),
                                 dt=0.005 / (lam * D), steps=200)
    amp = (r.at(np.array([[0.5 * L], [0.0]]))[0] - r.at(np.array([[0.5 * L], [L]]))[0]) / 2
    assert amp / 0.1 == pytest.approx(np.exp(-lam * D * 0.005 / (lam * D) * 200), rel=0.01)

    def indefinite(x):
        out = tensor(x)
        out[0, 1] = out[1, 0] = 2 * D
        return out

    with pytest.raises(InputError, match="diffusivity"):
        solve_hydrogen_diffusion(m, diffusivity=indefinite, partial_molar_volume_A3=V_H,
                                 temperature_K=300.0, hydrostatic_stress=lambda x: 0 * x[0],
                                 c_initial=1.0, dt=1.0, steps=1)


def test_bad_input_is_refused():
    m = _mesh(5)
    kw = dict(diffusivity=D, partial_molar_volume_A3=V_H, temperature_K=300.0,
              hydrostatic_stress=_bump, c_initial=1.0, dt=1.0, steps=1)
    with pytest.raises(InputError, match="temperature_K"):
        solve_hydrogen_diffusion(m, **{**kw, "temperature_K": -10.0})
    with pytest.raises(InputError, match="diffusivity"):
        solve_hydrogen_diffusion(m, **{**kw, "diffusivity": 0.0})
    with pytest.raises(InputError, match="dirichlet"):
        solve_hydrogen_diffusion(m, **kw, dirichlet={"top": 1.0})
    with pytest.raises(InputError, match="c_initial"):
        solve_hydrogen_diffusion(m, **{**kw, "c_initial": -1.0})
    with pytest.raises(InputError, match="hydrostatic_stress"):
        solve_hydrogen_diffusion(m, **{**kw, "hydrostatic_stress": np.ones(3)})
    with pytest.raises(InputError, match="mesh"):
        solve_hydrogen_diffusion("mesh", **kw)
