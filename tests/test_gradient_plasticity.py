"""Strain-gradient (Fleck-Hutchinson) plasticity in wire torsion: the classical limit against the
analytic torque, the size effect and its absence in tension, the higher-order boundary
condition, bad input."""
import math

import numpy as np
import pytest

from scaleladder.continuum.gradient_plasticity import (classical_torque, fit_material_length,
                                                       wire_tension, wire_torsion)
from scaleladder.core.errors import InputError

G, S0, H = 42e9, 50e6, 600e6          # copper-like: shear modulus, tensile yield, hardening
KA = np.linspace(0.002, 0.1, 8)       # normalised twist κa (yield at κa = τ0/G ≈ 6.9e-4)


@pytest.mark.parametrize("h", [0.0, H])
def test_classical_limit_equals_the_analytic_torque(h):
    a = 10e-6
    errs = []
    for n in (50, 100, 200):
        r = wire_torsion(a, KA / a, shear_modulus=G, yield_stress=S0, hardening=h, ell=0.0, n=n)
        errs.append(np.max(np.abs(r.torque / classical_torque(KA / a, a, G, S0, h) - 1)))
    assert errs[-1] < 1e-5
    assert errs[2] < errs[0]
    # elastic twist: T = G J κ with J = π a⁴ / 2
    r = wire_torsion(a, [1e-4 / a], shear_modulus=G, yield_stress=S0, hardening=h, n=50)
    assert r.torque[0] == pytest.approx(G * math.pi * a ** 4 / 2 * 1e-4 / a, rel=1e-9)


def test_perfectly_plastic_torque_tends_to_the_fully_plastic_limit():
    a = 10e-6
    r = wire_torsion(a, [2.0 / a], shear_modulus=G, yield_stress=S0, hardening=0.0, n=200)
    # T_p = 2π a³ τ0 / 3 (Nadai); at κa = 2 the elastic core holds (r_y/a)³/4 of it less
    ry = S0 / math.sqrt(3) / G / 2.0
    tp = 2 * math.pi * a ** 3 * S0 / math.sqrt(3) / 3
    assert r.torque[0] == pytest.approx(tp * (1 - ry ** 3 / 4), rel=1e-6)


def test_size_effect_in_torsion_and_none_without_a_length():
    radii = (6e-6, 15e-6, 85e-6)
    with_ell, without = [], []
    for a in radii:
        kw = dict(shear_modulus=G, yield_stress=S0, hardening=H)
        with_ell.append(wire_torsion(a, KA / a, ell=4e-6, n=max(200, int(4 * a / 4e-6) + 1),
                                     **kw).normalised_torque)
        without.append(wire_torsion(a, KA / a, ell=0.0, **kw).normalised_torque)
    # ℓ = 0: T/a³ against κa is the same curve for every radius (no length in the theory)
    assert np.allclose(without[0], without[2], rtol=1e-6)
    # ℓ > 0: thinner is stronger, and the thick wire tends to the classical curve
    tail = slice(2, None)
    assert np.all(with_ell[0][tail] > with_ell[1][tail]) and np.all(with_ell[1][tail] > with_ell[2][tail])
    assert np.all(with_ell[2] >= without[2] * (1 - 1e-9))
    assert np.max(with_ell[2] / without[2]) < 1.02
    assert with_ell[0][-1] / without[0][-1] > 1.3


def test_passivated_surface_strengthens_more_than_a_free_one():
    a = 6e-6
    kw = dict(shear_modulus=G, yield_stress=S0, hardening=H, ell=4e-6, n=200)
    free = wire_torsion(a, KA / a, boundary="free", **kw)
    pas = wire_torsion(a, KA / a, boundary="passivated", **kw)
    assert np.all(pas.torque[2:] > 2 * free.torque[2:])
    assert np.all(pas.gamma_p[-1][-1] == 0.0)                    # ε_p = 0 at the surface
    assert free.gamma_p[-1][-1] > 0.0


def test_no_size_effect_in_tension():
    eps = np.array([2e-4, 1e-3, 5e-3, 2e-2])
    E = 110e9
    classical = np.where(eps * E <= S0, E * eps, S0 + E * H / (E + H) * (eps - S0 / E))
    for a in (6e-6, 85e-6):
        s = wire_tension(a, eps, youngs_modulus=E, yield_stress=S0, hardening=H, ell=4e-6)
        assert np.allclose(s, classical, rtol=1e-7)


def test_fitted_length_reproduces_a_target_ratio():
    """Fleck et al. (1994): the 12 µm Cu wires carry about three times the normalised torque of
    the 170 µm ones; this theory (plastic-strain gradients, free surface) needs ℓ ≈ 10 µm."""
    kw = dict(thin_radius=6e-6, thick_radius=85e-6, twist=0.1, shear_modulus=G, yield_stress=S0,
              hardening=H)
    ell = fit_material_length(3.0, **kw, tol=0.02)
    assert 8e-6 < ell < 13e-6
    thin = wire_torsion(6e-6, [0.05 / 6e-6, 0.1 / 6e-6], ell=ell, n=400, shear_modulus=G,
                        yield_stress=S0, hardening=H).normalised_torque[-1]
    thick = wire_torsion(85e-6, [0.05 / 85e-6, 0.1 / 85e-6], ell=ell, n=400, shear_modulus=G,
                         yield_stress=S0, hardening=H).normalised_torque[-1]
    assert thin / thick == pytest.approx(3.0, rel=0.03)


def test_bad_input():
    kw = dict(shear_modulus=G, yield_stress=S0, hardening=H)
    with pytest.raises(InputError, match="ell"):
        wire_torsion(6e-6, [1e3], ell=-1e-6, **kw)
    with pytest.raises(InputError, match="n"):
        wire_torsion(85e-6, [1e3], ell=1e-6, n=100, **kw)
    with pytest.raises(InputError, match="kappas"):
        wire_torsion(6e-6, [2e3, 1e3], **kw)
    with pytest.raises(InputError, match="boundary"):
        wire_torsion(6e-6, [1e3], boundary="clamped", **kw)
    with pytest.raises(InputError, match="target_ratio"):
        fit_material_length(0.5, thin_radius=6e-6, thick_radius=85e-6, twist=0.1, **kw)
