"""Wave reflection at interfaces (coupling.waves): simulation against the exact discrete junction
formula, and the discrete formula against the continuum limits."""
import math

import numpy as np
import pytest

from scaleladder.core.errors import InputError
from scaleladder.coupling.waves import (Chain1D, chain_frequency, impedance_reflection,
                                        junction_reflection, measure_reflection, spring_reflection)


@pytest.mark.parametrize("case", [
    dict(m2=4.0, k2=1.0, kJ=1.0),                        # impedance mismatch Z2 = 2 Z1
    dict(m2=1.0, k2=1.0, kJ=0.3),                        # a soft spring joining identical chains
    dict(m2=1.0, k2=1.0, kJ=0.3, mL=0.5, mR=0.5),        # penalty tie of two FE bars (half masses)
    dict(m2=4.0, k2=0.25, kJ=0.4),                       # atoms → a mesh 4x coarser, same Z
])
@pytest.mark.parametrize("q0", [0.3, 1.0])
def test_measured_reflection_equals_the_exact_discrete_result(case, q0):
    r = measure_reflection(1.0, 1.0, **case, q0=q0)
    assert r.measured == pytest.approx(r.predicted, abs=1e-3)
    assert r.measured + r.transmitted == pytest.approx(1.0, abs=1e-3)     # energy conserved


def test_matched_chains_do_not_reflect():
    r = measure_reflection(1.0, 1.0, 1.0, 1.0, 1.0, q0=0.8)
    assert r.measured < 1e-6 and r.predicted < 1e-20


def test_short_waves_are_reflected_by_a_coarse_mesh():
    """A mesh 4x coarser than the lattice (lumped FE bar, same impedance): waves above its cutoff
    ω = 2√(k₂/m₂) = ω_max/4 cannot enter it and come back entirely; long waves pass."""
    hi = measure_reflection(1.0, 1.0, 4.0, 0.25, 0.4, q0=1.2, width=30)
    lo = measure_reflection(1.0, 1.0, 4.0, 0.25, 0.4, q0=0.15, width=60)
    assert hi.measured == pytest.approx(1.0, abs=1e-3)
    assert lo.measured < 0.01


def test_discrete_formula_tends_to_the_continuum_results():
    q = np.array([1e-3, 4e-3])
    # perfect joint of Z1 = 1, Z2 = 2 (kJ: two half springs in series)
    R = junction_reflection(q, 1.0, 1.0, 4.0, 1.0, 2.0 / (1 + 1))
    assert np.allclose(R.real, impedance_reflection(1.0, 2.0), atol=1e-3)
    # a penalty spring K between two bars of impedance Z = √(km) = 1 (half masses at the tie)
    w = chain_frequency(q, 1.0, 1.0)
    for K in (0.01, 0.1, 1.0, 10.0):
        Rd = junction_reflection(q, 1.0, 1.0, 1.0, 1.0, K, mL=0.5, mR=0.5)
        assert np.allclose(np.abs(Rd), np.abs(spring_reflection(w, 1.0, K)), rtol=1e-3, atol=1e-9)
    # |R| > 0 for every finite K and → 0 as K → ∞
    Ks = np.array([0.1, 1.0, 10.0, 100.0])
    Rk = [abs(junction_reflection(0.5, 1, 1, 1, 1, K, mL=0.5, mR=0.5)[0]) for K in Ks]
    assert all(r > 0 for r in Rk) and np.all(np.diff(Rk) < 0) and Rk[-1] < 0.01


def test_verlet_chain_conserves_energy_and_bad_input():
    ch = Chain1D(np.ones(50), np.ones(49))
    u = np.sin(np.linspace(0, 3 * math.pi, 50))
    v = np.zeros(50)
    E0 = ch.energy(u, v)
    u1, v1 = ch.run(u, v, 0.05, 2000)
    assert ch.energy(u1, v1) == pytest.approx(E0, rel=2e-3)
    with pytest.raises(InputError, match="dt"):
        ch.run(u, v, 1.5, 10)
    with pytest.raises(InputError, match="springs"):
        Chain1D(np.ones(5), np.ones(5))
    with pytest.raises(InputError, match="q"):
        junction_reflection(4.0, 1, 1, 1, 1, 1)
    with pytest.raises(InputError, match="kJ"):
        junction_reflection(0.5, 1, 1, 1, 1, -1.0)
