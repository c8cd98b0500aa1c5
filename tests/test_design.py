"""The inverse-design driver on Griffith's relation, whose inverse is known in closed form:
the critical flaw size, its confidence level when the toughness carries a Gaussian uncertainty,
the input interval of an equality target, several varied inputs, and bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from scaleladder.core.codec import decode, encode
from scaleladder.core.errors import InputError
from scaleladder.handoffs import Design
from scaleladder.uq import Estimate, one_sigma_samples
from scaleladder.workflows.design import design, parse_target

K0, SK = 1.0, 0.1            # fracture toughness, MPa m^0.5, and its standard deviation
SIGMA_S = 20.0               # service stress, MPa


def griffith(point):
    K = Estimate(K0, "MPa", {"toughness": one_sigma_samples(K0, SK)})
    return K / math.sqrt(math.pi * point["a"])


def test_critical_flaw_size_is_the_analytic_inverse_at_the_nominal_value():
    d = design(griffith, f"sigma_c>={SIGMA_S}", {"a": (1e-4, 5e-3)}, log=None, xtol=1e-12)
    a_exact = K0 ** 2 / (math.pi * SIGMA_S ** 2)
    assert d.inputs["a"] == pytest.approx(a_exact, rel=1e-5)
    assert d.probability == pytest.approx(0.5, abs=1e-4)
    # feasible: every crack up to the critical one
    assert d.feasible == [[pytest.approx(1e-4), pytest.approx(a_exact, rel=1e-5)]]


def test_design_at_95_percent_confidence_and_its_probability():
    d = design(griffith, f"sigma_c>={SIGMA_S}", {"a": (1e-4, 5e-3)}, confidence=0.95,
               log=None, xtol=1e-12)
    z = norm.ppf(0.95)
    a95 = (K0 - z * SK) ** 2 / (math.pi * SIGMA_S ** 2)
    assert d.inputs["a"] == pytest.approx(a95, rel=1e-5)
    assert d.probability == pytest.approx(0.95, abs=1e-4)
    # the same probability by sampling the toughness itself
    K = np.random.default_rng(0).normal(K0, SK, 400_000)
    p = np.mean(K / math.sqrt(math.pi * d.inputs["a"]) >= SIGMA_S)
    assert p == pytest.approx(0.95, abs=0.002)
    assert d.inputs["a"] < K0 ** 2 / (math.pi * SIGMA_S ** 2)       # smaller than nominal
    # the record: every evaluation, the optimiser, round trip through the codec
    assert len(d.evaluations) >= 6 and d.optimizer["method"].endswith("brentq")
    back = decode(*encode(d))
    assert isinstance(back, Design) and back.inputs == d.inputs


def test_upper_bound_target_and_equality_with_its_input_interval():
    # sigma_c <= 30 MPa with 90 %: cracks at least this long
    d = design(griffith, "sigma_c<=30", {"a": (1e-4, 5e-3)}, confidence=0.9, log=None,
               xtol=1e-12)
    z = norm.ppf(0.9)
    assert d.inputs["a"] == pytest.approx((K0 + z * SK) ** 2 / (math.pi * 900), rel=1e-5)
    assert d.feasible[0][1] == pytest.approx(5e-3)
    e = design(griffith, "sigma_c=25", {"a": (1e-4, 5e-3)}, confidence=0.9, log=None,
               xtol=1e-12)
    assert e.inputs["a"] == pytest.approx(K0 ** 2 / (math.pi * 625), rel=1e-5)
    zb = norm.ppf(0.95)
    assert e.input_interval == pytest.approx([(K0 - zb * SK) ** 2 / (math.pi * 625),
                                              (K0 + zb * SK) ** 2 / (math.pi * 625)], rel=1e-5)


def test_two_varied_inputs_land_on_the_boundary():
    def model(p):
        K = Estimate(p["K"], "MPa", {"toughness": one_sigma_samples(p["K"], SK)})
        return K / math.sqrt(math.pi * p["a"])
    d = design(model, f"sigma_c>={SIGMA_S}", {"a": (1e-4, 5e-3), "K": (0.5, 2.0)},
               confidence=0.95, log=None)
    a, K = d.inputs["a"], d.inputs["K"]
    assert (K - norm.ppf(0.95) * SK) / math.sqrt(math.pi * a) == pytest.approx(SIGMA_S,
                                                                               rel=1e-3)
    assert d.probability == pytest.approx(0.95, abs=2e-3)


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="reaches"):
        design(griffith, "sigma_c>=1000", {"a": (1e-4, 5e-3)}, log=None)
    with pytest.raises(InputError, match="confidence"):
        design(griffith, "sigma_c>=20", {"a": (1e-4, 5e-3)}, confidence=1.5, log=None)
    with pytest.raises(InputError, match="target"):
        parse_target("sigma_c ~ 20")
    with pytest.raises(InputError, match="vary a"):
        design(griffith, "sigma_c>=20", {"a": (5e-3, 1e-4)}, log=None)
