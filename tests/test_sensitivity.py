"""Sobol' indices: the Ishigami function's analytic values, and agreement with an Estimate's
budget shares where both apply (a linear model of independent Gaussian inputs)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from scaleladder.core.errors import InputError
from scaleladder.uq import Estimate
from scaleladder.uq.sensitivity import sobol

A, B = 7.0, 0.1


def ishigami(p):
    x1, x2, x3 = p["x1"], p["x2"], p["x3"]
    return math.sin(x1) + A * math.sin(x2) ** 2 + B * x3 ** 4 * math.sin(x1)


def test_ishigami_indices_match_their_analytic_values():
    V1 = 0.5 * (1 + B * math.pi ** 4 / 5) ** 2
    V2 = A ** 2 / 8
    V13 = 8 * B ** 2 * math.pi ** 8 / 225
    V = V1 + V2 + V13
    rng = (-math.pi, math.pi)
    s = sobol(ishigami, {"x1": rng, "x2": rng, "x3": rng}, n=4096, seed=1)
    exact_first = np.array([V1, V2, 0.0]) / V
    exact_total = np.array([V1 + V13, V2, V13]) / V
    assert exact_first == pytest.approx([0.3139, 0.4424, 0.0], abs=1e-4)
    assert np.all(np.abs(s.first - exact_first) < np.maximum(4 * s.first_se, 0.02))
    assert np.all(np.abs(s.total - exact_total) < np.maximum(4 * s.total_se, 0.02))
    assert s.n_evaluations == 4096 * 5
    assert "x3" in s.table()


def test_first_order_indices_equal_the_budget_shares_of_a_linear_model():
    c = {"a": 2.0, "b": -1.0, "c": 0.5}
    sd = {"a": 0.3, "b": 1.0, "c": 0.8}
    s = sobol(lambda p: sum(c[k] * p[k] for k in c),
              {k: stats.norm(loc=1.0, scale=sd[k]) for k in c}, n=2048, seed=2)
    # the same model as an Estimate with one source per input
    gen = np.random.default_rng(0)
    srcs = {k: 1.0 + sd[k] * gen.standard_normal(20000) for k in c}
    x = {k: Estimate(1.0, "", {k: v}) for k, v in srcs.items()}
    y = sum(c[k] * x[k] for k in c)
    shares = y.budget()
    exact = np.array([(c[k] * sd[k]) ** 2 for k in c])
    exact /= exact.sum()
    assert np.array([shares[k] for k in c]) == pytest.approx(exact, abs=0.02)
    assert s.first == pytest.approx([shares[k] for k in c], abs=0.03)
    assert s.total == pytest.approx(s.first, abs=0.03)                 # additive: no interactions


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="power of two"):
        sobol(ishigami, {"x1": (0, 1)}, n=100)
    with pytest.raises(InputError, match="x1"):
        sobol(ishigami, {"x1": (1, 0)})
