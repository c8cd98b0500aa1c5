"""Tests of scaleladder.uq: Estimate and propagate."""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from scaleladder.core import codec
from scaleladder.core.errors import InputError, UnitError
from scaleladder.core.units import ELEMENTARY_CHARGE
from scaleladder.uq import Estimate, propagate


def _same_sources(a: Estimate, b: Estimate) -> bool:
    return (list(a.sources) == list(b.sources)
            and all(np.array_equal(a.sources[k], b.sources[k]) for k in a.sources))


# -- construction and basic statistics ----------------------------------------------------------

def test_variances_std_and_budget():
    rng = np.random.default_rng(1)
    s1, s2 = rng.normal(2.0, 0.1, 7), rng.normal(2.0, 0.3, 5)
    e = Estimate(2.0, "eV", {"a": s1, "b": s2})
    assert e.variances["a"] == pytest.approx(np.var(s1, ddof=1), rel=1e-14)
    assert e.variances["b"] == pytest.approx(np.var(s2, ddof=1), rel=1e-14)
    tot = np.var(s1, ddof=1) + np.var(s2, ddof=1)
    assert e.std == pytest.approx(math.sqrt(tot), rel=1e-14)
    b = e.budget()
    assert sum(b.values()) == pytest.approx(1.0, abs=1e-14)
    assert b["a"] == pytest.approx(np.var(s1, ddof=1) / tot, rel=1e-13)
    assert b["b"] == pytest.approx(np.var(s2, ddof=1) / tot, rel=1e-13)
    assert isinstance(e.value, float) and e.shape == () and e.ndim == 0
    assert float(e) == 2.0


def test_array_budget_is_elementwise():
    rng = np.random.default_rng(2)
    e = Estimate([1.0, 2.0], "m", {"a": rng.normal(size=(4, 2)), "b": rng.normal(size=(6, 2))})
    b = e.budget()
    assert b["a"].shape == (2,)
    np.testing.assert_allclose(b["a"] + b["b"], 1.0, atol=1e-14)
    np.testing.assert_allclose(e.std ** 2, e.variances["a"] + e.variances["b"], rtol=1e-14)


def test_source_needs_two_samples_and_matching_shape():
    with pytest.raises(InputError, match="lonely"):
        Estimate(1.0, "", {"lonely": [1.0]})
    with pytest.raises(InputError, match="wrong"):
        Estimate([1.0, 2.0], "", {"wrong": np.zeros((3, 3))})
    with pytest.raises(InputError):
        Estimate(float("nan"))
    with pytest.raises(UnitError):
        Estimate(1.0, "furlong")


def test_frozen():
    e = Estimate([1.0, 2.0], "m", {"a": [[1.0, 2.0], [1.1, 2.1]]})
    with pytest.raises(AttributeError):
        e.unit = "cm"  # type: ignore[misc]
    with pytest.raises(ValueError):
        e.value[0] = 5.0
    with pytest.raises(ValueError):
        e.sources["a"][0, 0] = 5.0
    # the dict returned is a copy
    e.sources["b"] = np.zeros((2, 2))
    assert "b" not in e.sources


def test_to_with_source_getitem():
    e = Estimate(2.0, "eV", {"a": [1.9, 2.1, 2.0]})
    j = e.to("J")
    assert j.value == pytest.approx(2.0 * ELEMENTARY_CHARGE, rel=1e-15)
    np.testing.assert_allclose(j.sources["a"], np.array([1.9, 2.1, 2.0]) * ELEMENTARY_CHARGE,
                               rtol=1e-15)
    assert j.std == pytest.approx(e.std * ELEMENTARY_CHARGE, rel=1e-14)
    with pytest.raises(UnitError):
        e.to("m")
    e2 = e.with_source("b", [2.2, 1.8])
    assert set(e2.sources) == {"a", "b"} and set(e.sources) == {"a"}
    with pytest.raises(InputError):
        e.with_source("a", [1.0, 2.0])
    v = Estimate(np.arange(6.0).reshape(2, 3), "m", {"s": np.arange(24.0).reshape(4, 2, 3)})
    el = v[1, 2]
    assert el.value == 5.0 and np.array_equal(el.sources["s"], np.arange(24.0).reshape(4, 2, 3)[:, 1, 2])
    row = v[0]
    assert row.shape == (3,) and row.sources["s"].shape == (4, 3)


def test_format_and_summary():
    e = Estimate(5.47, "Å", {"fit": [5.458, 5.482], "xc": [5.47, 5.4705]})
    assert f"{e}" == "5.470 ± 0.017 Å"
    assert format(e, ".2f") == "5.47 ± 0.02 Å"
    assert "Estimate(5.470 ± 0.017 Å" in repr(e)
    text = e.summary()
    assert "fit" in text and "xc" in text and "%" in text


# -- propagation --------------------------------------------------------------------------------

def test_linear_map_is_exact():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(4, 3))
    x = Estimate(rng.normal(size=3), "m", {"s1": rng.normal(size=(5, 3)), "s2": rng.normal(size=(3, 3))})
    y = propagate(lambda v: a @ v, x, unit="m")
    np.testing.assert_array_equal(y.value, a @ x.value)
    for k, s in x.sources.items():
        np.testing.assert_array_equal(y.sources[k], np.stack([a @ row for row in s]))
    # the matmul operator gives the same thing
    z = a @ x
    np.testing.assert_array_equal(z.value, y.value)
    assert _same_sources(z, y) and z.unit == "m"
    # variances of a linear map: diag(A Cov A^T) per source
    for k, s in x.sources.items():
        cov = np.cov(s.T, ddof=1)
        np.testing.assert_allclose(y.variances[k], np.diag(a @ cov @ a.T), rtol=1e-12)


def test_affine_scalar_variance():
    e = Estimate(3.0, "GPa", {"a": [2.5, 3.4, 3.1, 2.9], "b": [3.0, 3.2]})
    y = -2.5 * e + 7.0
    for k in e.sources:
        assert y.variances[k] == pytest.approx(6.25 * e.variances[k], rel=1e-12)
    assert y.value == pytest.approx(-0.5)
    assert y.unit == "GPa"


def test_nonlinear_correlated_matches_monte_carlo():
    """f(x, y) = x exp(y) / y with x and y sharing the source "B" (correlated inputs).

    Each source's samples are draws of an independent standard normal variable; brute-force Monte
    Carlo draws all of them jointly.  With small relative uncertainties the interaction terms
    (second order) are negligible, so the propagated std must agree within the statistical error of
    the two std estimates (relative standard error of a sample std ~ 1/sqrt(2(n-1))).
    """
    rng = np.random.default_rng(42)
    n = 4000  # samples per source
    x0, y0 = 1.0, 2.0
    ax, bx, by, cy = 0.02, 0.02, 0.02, 0.01
    uA, uB, uC = rng.standard_normal(n), rng.standard_normal(n), rng.standard_normal(n)
    x = Estimate(x0, "", {"A": x0 + ax * uA, "B": x0 + bx * uB})
    y = Estimate(y0, "", {"B": y0 + by * uB, "C": y0 + cy * uC})

    def f(a, b):
        return a * np.exp(b) / b

    prop = propagate(f, x, y)
    N = 400_000
    U = rng.standard_normal((3, N))
    fm = f(x0 + ax * U[0] + bx * U[1], y0 + by * U[1] + cy * U[2])
    std_mc = np.std(fm, ddof=1)
    se = math.sqrt((prop.std ** 2) / (2 * (n - 1)) + std_mc ** 2 / (2 * (N - 1)))
    assert abs(prop.std - std_mc) < 4 * se, (prop.std, std_mc, se)
    # the correlation matters: treating the shared source as two independent ones is clearly wrong
    y_indep = Estimate(y0, "", {"B2": y0 + by * uB, "C": y0 + cy * uC})
    wrong = propagate(f, x, y_indep)
    assert abs(wrong.std - std_mc) > 10 * se
    # arithmetic on Estimates is the same propagation
    arith = x * np.exp(y) / y
    assert arith.value == pytest.approx(prop.value, rel=1e-14)
    for k in prop.sources:
        np.testing.assert_allclose(arith.sources[k], prop.sources[k], rtol=1e-13)


def test_shared_source_count_mismatch():
    x = Estimate(1.0, "", {"s": [1.0, 1.1, 0.9]})
    y = Estimate(2.0, "", {"s": [2.0, 2.1]})
    with pytest.raises(InputError, match="'s'"):
        propagate(lambda a, b: a + b, x, y)
    with pytest.raises(InputError, match="'s'"):
        x + y


def test_arithmetic_equals_propagate_and_one_sided_sources():
    x = Estimate([1.0, 2.0], "m", {"s": [[1.1, 2.0], [0.9, 2.2]], "only_x": [[1.0, 2.1], [1.2, 1.9]]})
    y = Estimate(3.0, "m", {"s": [3.1, 2.8], "only_y": [3.3, 2.9, 3.05]})
    for op in (np.add, np.subtract, np.multiply, np.true_divide):
        got = op(x, y)
        ref = propagate(op, x, y)
        np.testing.assert_array_equal(got.value, ref.value)
        assert _same_sources(got, ref)
    # one-sided: the other argument is held at its nominal value
    d = x - y
    np.testing.assert_array_equal(d.sources["only_y"], x.value[None, :] - np.array([3.3, 2.9, 3.05])[:, None])
    np.testing.assert_array_equal(d.sources["only_x"], x.sources["only_x"] - 3.0)


def test_propagate_executor_and_kwargs():
    x = Estimate(2.0, "", {"s": np.linspace(1.9, 2.1, 9)})
    ref = propagate(lambda a, k=1.0: k * a ** 2, x, k=3.0)
    with ThreadPoolExecutor(2) as ex:
        got = propagate(lambda a, k=1.0: k * a ** 2, x, k=3.0, executor=ex)
    assert got.value == ref.value == 12.0
    assert _same_sources(got, ref)
    # Estimate keyword arguments propagate too
    kw = propagate(lambda a, k=1.0: k * a, 2.0, k=x)
    np.testing.assert_array_equal(kw.sources["s"], 2.0 * x.sources["s"])


# -- units --------------------------------------------------------------------------------------

def test_unit_algebra():
    p = Estimate(2.0, "GPa", {"a": [1.9, 2.1]})
    L = Estimate(3.0, "m", {"b": [2.9, 3.1]})
    f = p * L
    assert f.unit == "GPa*m"
    assert f.to("Pa*m").value == pytest.approx(6e9)
    assert (p / L).unit == "GPa/m"
    assert (p ** 2).unit == "GPa^2"
    assert (L ** 3).to("Å^3").value == pytest.approx(27e30)
    assert np.sqrt(p).unit == "GPa^0.5"
    assert np.sqrt(p).to("Pa^0.5").value == pytest.approx(math.sqrt(2e9))
    e = Estimate(1.0, "eV", {"c": [0.9, 1.1]})
    j = Estimate(1e-19, "J", {"d": [0.8e-19, 1.2e-19]})
    s = e + j
    assert s.unit == "eV"
    assert s.value == pytest.approx(1.0 + 1e-19 / ELEMENTARY_CHARGE, rel=1e-14)
    assert s.variances["d"] == pytest.approx(j.variances["d"] / ELEMENTARY_CHARGE ** 2, rel=1e-12)
    with pytest.raises(UnitError):
        e + L
    with pytest.raises(UnitError):
        np.exp(p)
    with pytest.raises(UnitError):
        np.log(L)
    ratio = Estimate(2.0, "mm/m", {"r": [1.0, 3.0]})
    assert np.exp(ratio).value == pytest.approx(math.exp(0.002))
    assert np.exp(ratio).unit == ""
    assert (e + 1.0).value == 2.0 and (e + 1.0).unit == "eV"  # a plain number is in e's unit
    assert (2.0 / e).unit == "1/eV"


# -- codec --------------------------------------------------------------------------------------

def test_codec_round_trip_bit_identical():
    rng = np.random.default_rng(7)
    scalar = Estimate(0.1 + 0.2, "eV/Å^3", {"zeta": rng.normal(size=3), "alpha": rng.normal(size=4)})
    arr = Estimate(rng.normal(size=(6, 6)), "GPa", {"fit ensemble": rng.normal(size=(5, 6, 6))})
    plain = Estimate(1.5, "m")
    for obj in (scalar, arr, plain, {"x": scalar, "y": [arr, plain]}):
        files = codec.to_files(obj)
        back = codec.from_files(files)
        assert codec.to_files(back) == files
    back = codec.from_files(codec.to_files(scalar))
    assert back.identical(scalar) and list(back.sources) == ["zeta", "alpha"]
