"""Heat conduction with k(T): manufactured solutions at the theoretical rates (P1: 2, P2: 3 in
L2), the Kirchhoff-exact profile of k = a/T from a ThermalConductivity handoff, a flux
boundary, backward Euler's first order in time, and bad input."""
from __future__ import annotations

import numpy as np
import pytest
from skfem import Functional, MeshTri

from scaleladder.continuum.heat import solve_heat, solve_heat_transient
from scaleladder.core.errors import CalculationError, InputError
from scaleladder.handoffs import ThermalConductivity

K0, BETA = 2.0, 0.5
SIDES = ("left", "right", "top", "bottom")


def k_lin(T):
    return K0 * (1 + BETA * T)


def T_exact(x):
    return 1 + 0.5 * np.sin(np.pi * x[0]) * np.sin(np.pi * x[1]) + 0.3 * x[0]


def source(x):
    X, Y = x[0], x[1]
    Tx = 0.5 * np.pi * np.cos(np.pi * X) * np.sin(np.pi * Y) + 0.3
    Ty = 0.5 * np.pi * np.sin(np.pi * X) * np.cos(np.pi * Y)
    lap = -np.pi ** 2 * np.sin(np.pi * X) * np.sin(np.pi * Y)
    return -(k_lin(T_exact(x)) * lap + K0 * BETA * (Tx ** 2 + Ty ** 2))


@Functional
def _l2(w):
    return (w["u"] - w["ref"]) ** 2


def _error(sol, exact):
    b = sol.basis
    return float(np.sqrt(_l2.assemble(b, u=b.interpolate(sol.T), ref=exact(np.asarray(b.global_coordinates())))))


@pytest.mark.parametrize("element,rate", [("P1", 2.0), ("P2", 3.0)])
def test_manufactured_solution_converges_at_the_theoretical_rate(element, rate):
    errs = []
    for n in (2, 3, 4):
        m = MeshTri().refined(n).with_defaults()
        s = solve_heat(m, k_lin, dirichlet={b: T_exact for b in SIDES}, source=source,
                       element=element)
        assert s.iterations <= 8                               # Newton, exact Jacobian
        errs.append(_error(s, T_exact))
    rates = np.diff(np.log(errs)) / np.log(0.5)
    assert abs(rates[-1] - rate) < 0.15


def test_kirchhoff_exact_profile_of_a_one_over_t_conductivity_from_the_handoff():
    # k = a / T tabulated at 200..1000 K (exactly 1/T: the handoff interpolates in 1/T)
    T = np.array([200.0, 400.0, 600.0, 1000.0])
    a = 3.0e4
    kap = ThermalConductivity(T, np.array([np.eye(3) * a / t for t in T]), "given")
    m = MeshTri().refined(4).with_defaults()
    TL, TR = 300.0, 900.0
    s = solve_heat(m, kap, dirichlet={"left": TL, "right": TR}, element="P2")
    # Kirchhoff: a ln T is harmonic -> T = TL (TR/TL)^x, independent of y (top/bottom: no flux)
    exact = lambda x: TL * (TR / TL) ** x[0]                  # noqa: E731
    assert _error(s, exact) < 1e-3 * TL
    # outside the table: refused, naming the temperature
    with pytest.raises(CalculationError, match="outside"):
        solve_heat(m, kap, dirichlet={"left": 150.0, "right": 900.0})


def test_a_flux_boundary_gives_the_linear_profile():
    m = MeshTri().refined(3).with_defaults()
    k, g, TL = 40.0, 2000.0, 300.0                   # W/(m K), W/m^2 leaving at the right
    s = solve_heat(m, k, dirichlet={"left": TL}, flux={"right": g}, element="P1")
    exact = lambda x: TL - g * x[0] / k                       # noqa: E731
    assert _error(s, exact) < 1e-10 * TL
    # heat put in by a source leaves through the flux boundary: q L = g
    s2 = solve_heat(m, k, dirichlet={"left": TL}, flux={"right": -1000.0}, source=0.0)
    assert s2.max_temperature() == pytest.approx(TL + 1000.0 / k, rel=1e-9)


def test_backward_euler_is_first_order_in_time():
    m = MeshTri().refined(4).with_defaults()
    k, rc, t_end = 1.0, 1.0, 0.02

    def exact(x, t):
        return 1.0 + np.exp(-2 * np.pi ** 2 * k * t / rc) * np.sin(np.pi * x[0]) * \
            np.sin(np.pi * x[1])
    errs = []
    for steps in (4, 8, 16):
        out = solve_heat_transient(m, k, density_heat_capacity=rc,
                                   T_initial=lambda x: exact(x, 0.0), dt=t_end / steps,
                                   steps=steps, dirichlet={b: 1.0 for b in SIDES}, element="P2")
        errs.append(_error(out[-1], lambda x: exact(x, t_end)))
    rate = np.log(errs[-2] / errs[-1]) / np.log(2.0)
    assert abs(rate - 1.0) < 0.15


def test_bad_input_is_refused():
    m = MeshTri().refined(2).with_defaults()
    with pytest.raises(InputError, match="dirichlet"):
        solve_heat(m, 1.0, dirichlet={})
    with pytest.raises(InputError, match="boundary"):
        solve_heat(m, 1.0, dirichlet={"west": 300.0})
    with pytest.raises(InputError, match="element"):
        solve_heat(m, 1.0, dirichlet={"left": 300.0}, element="Q9")
    with pytest.raises(InputError, match="conductivity"):
        solve_heat(m, -3.0, dirichlet={"left": 300.0})
    with pytest.raises(InputError, match="temperatures > 0"):
        solve_heat(m, 1.0, dirichlet={"left": -5.0})
