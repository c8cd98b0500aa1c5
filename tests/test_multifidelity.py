"""Multifidelity estimators on analytic hierarchies with known means and correlations:
unbiasedness over many repetitions, the control variate's 1 - rho^2, the MFMC allocation of
Peherstorfer, Willcox & Gunzburger (2016) against their closed form and a numerical optimum,
MLMC's telescoping sum, and the driver's pilot, allocation, fallbacks and refusals."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize

from scaleladder.core.errors import InputError
from scaleladder.uq.multifidelity import (Fidelity, Hierarchy, acvmf_allocation, acvmf_estimator,
                                          acvmf_variance, control_variate, estimate_mean,
                                          mfmc_allocation, mfmc_estimator, mfmc_mse_ratio,
                                          mfmc_variance, mlmc_allocation)

# the exponential / Taylor hierarchy: f1 = e^z, f_i its Taylor polynomials about 0, z ~ U[0, 5]
DEGREES = (None, 4, 2)          # None: the exponential itself
COST = np.array([1.0, 0.05, 0.001])
A, B = 0.0, 5.0


def _f(deg, z):
    if deg is None:
        return np.exp(z)
    return sum(z ** j / math.factorial(j) for j in range(deg + 1))


def _exact_stats():
    """Means, standard deviations and correlations with f1 by quadrature."""
    def E(g):
        return integrate.quad(g, A, B, limit=200)[0] / (B - A)
    mean = np.array([E(lambda z, d=d: _f(d, z)) for d in DEGREES])
    cov = np.array([[E(lambda z, a=a, b=b: _f(a, z) * _f(b, z)) for b in DEGREES]
                    for a in DEGREES]) - np.outer(mean, mean)
    std = np.sqrt(np.diag(cov))
    return mean, std, cov[0] / (std[0] * std)


def test_exact_means_of_the_hierarchy():
    mean, std, rho = _exact_stats()
    assert mean[0] == pytest.approx((math.exp(5) - 1) / 5, rel=1e-10)
    assert mean[2] == pytest.approx(1 + 2.5 + 25 / 6, rel=1e-10)       # 1 + E z + E z^2 / 2
    assert 1 > rho[1] > rho[2] > 0.8


def test_mfmc_allocation_matches_the_closed_form_and_is_optimal():
    mean, std, rho = _exact_stats()
    p = 1000.0
    al = mfmc_allocation(std, rho, COST, p, select=False)
    m = al["m_real"]
    assert float(COST @ m) == pytest.approx(p, rel=1e-12)                # spends the budget
    assert np.all(np.diff(m) > 0)                                        # nested, m1 < m2 < m3
    # Lemma 3.3's variance at the optimal real allocation equals Corollary 3.5's closed form
    var = mfmc_variance(std, rho, al["alpha"], m)
    assert var == pytest.approx(std[0] ** 2 * COST[0] / p * mfmc_mse_ratio(rho, COST), rel=1e-10)

    # ... and no other allocation at the same cost does better (numerical optimum)
    def f(x):
        mm = np.exp(x)
        mm = mm * p / float(COST @ mm)
        return mfmc_variance(std, rho, al["alpha"], mm) if np.all(np.diff(mm) >= 0) else 1e30
    best = optimize.minimize(f, np.log(m * [1.3, 0.8, 1.1]), method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000})
    assert best.fun >= var * (1 - 1e-6)
    assert best.fun == pytest.approx(var, rel=1e-4)
    # the ratio is a real gain here
    assert mfmc_mse_ratio(rho, COST) < 0.1


def test_mfmc_is_unbiased_and_achieves_the_predicted_mse():
    mean, std, rho = _exact_stats()
    p = 200.0
    al = mfmc_allocation(std, rho, COST, p)
    m, alpha, idx = al["m"], al["alpha"], al["models"]
    gen = np.random.default_rng(1)
    R = 3000
    est = np.empty(R)
    mc = np.empty(R)
    n_mc = int(p // COST[0])
    for r in range(R):
        z = gen.uniform(A, B, size=int(m[-1]))
        ys = [_f(DEGREES[i], z[: int(k)]) for i, k in zip(idx, m)]
        est[r] = mfmc_estimator(ys, alpha)
        mc[r] = np.exp(gen.uniform(A, B, size=n_mc)).mean()
    se = est.std(ddof=1) / math.sqrt(R)
    assert abs(est.mean() - mean[0]) < 4 * se                           # unbiased
    mse = np.mean((est - mean[0]) ** 2)
    assert mse == pytest.approx(al["variance"], rel=0.1)                 # Lemma 3.3, integers
    mse_mc = np.mean((mc - mean[0]) ** 2)
    assert mse / mse_mc == pytest.approx(al["variance"] / (std[0] ** 2 / n_mc), rel=0.12)
    assert mse / mse_mc < 0.2


def test_control_variate_reduces_the_variance_by_one_minus_rho_squared():
    rho, n, R = 0.9, 50, 4000
    gen = np.random.default_rng(2)
    cov = [[4.0, rho * 2 * 3], [rho * 2 * 3, 9.0]]
    cv = np.empty(R)
    mc = np.empty(R)
    for r in range(R):
        y = gen.multivariate_normal([1.0, -2.0], cov, size=n)
        cv[r] = control_variate(y[:, 0], y[:, 1], -2.0, alpha=rho * 2 / 3)[0]
        mc[r] = y[:, 0].mean()
    assert abs(cv.mean() - 1.0) < 4 * cv.std() / math.sqrt(R)
    ratio = cv.var(ddof=1) / mc.var(ddof=1)
    assert ratio == pytest.approx(1 - rho ** 2, rel=0.1)
    # the returned variance is the estimator's
    est, var, a = control_variate(y[:, 0], y[:, 1], -2.0)
    assert var == pytest.approx((1 - np.corrcoef(y.T)[0, 1] ** 2) * y[:, 0].var(ddof=1) / n,
                                rel=1e-9)


def test_mlmc_telescoping_sum_is_unbiased_with_giles_allocation():
    mean, std, rho = _exact_stats()
    # levels: Taylor 2 -> Taylor 4 -> exp
    gen = np.random.default_rng(3)
    z = gen.uniform(A, B, 200_000)
    lev = [_f(2, z), _f(4, z) - _f(2, z), np.exp(z) - _f(4, z)]
    V = [np.var(x) for x in lev]
    C = [COST[2], COST[1] + COST[2], COST[0] + COST[1]]
    al = mlmc_allocation(V, C, 100.0)
    assert float(np.dot(al["N_real"], C)) == pytest.approx(100.0, rel=1e-12)
    # N_l ~ sqrt(V_l / C_l)
    assert al["N_real"][0] / al["N_real"][2] == pytest.approx(
        math.sqrt(V[0] / C[0]) / math.sqrt(V[2] / C[2]), rel=1e-12)
    R = 2000
    est = np.empty(R)
    for r in range(R):
        tot = 0.0
        for lvl, N in enumerate(al["N"]):
            zz = gen.uniform(A, B, int(N))
            tot += float(np.mean([_f(2, zz), _f(4, zz) - _f(2, zz),
                                  np.exp(zz) - _f(4, zz)][lvl]))
        est[r] = tot
    assert abs(est.mean() - mean[0]) < 4 * est.std(ddof=1) / math.sqrt(R)
    assert est.var(ddof=1) == pytest.approx(al["variance"], rel=0.12)


def _exact_cov():
    mean, std, rho = _exact_stats()
    def E(g):
        return integrate.quad(g, A, B, limit=200)[0] / (B - A)
    return np.array([[E(lambda z, a=a, b=b: _f(a, z) * _f(b, z)) for b in DEGREES]
                     for a in DEGREES]) - np.outer(mean, mean)


def test_acvmf_variance_formula_unbiasedness_and_its_optimal_cv_limit():
    mean, std, rho = _exact_stats()
    cov = _exact_cov()
    al = acvmf_allocation(cov, COST, 200.0)
    n, eta = al["n"], al["eta"]
    assert float(COST @ al["n_real"]) == pytest.approx(200.0, rel=1e-9)
    gen = np.random.default_rng(5)
    R = 3000
    est = np.empty(R)
    for r in range(R):
        z = gen.uniform(A, B, size=int(n.max()))
        est[r] = acvmf_estimator([_f(DEGREES[i], z[: int(k)]) for i, k in enumerate(n)], eta)
    assert abs(est.mean() - mean[0]) < 4 * est.std(ddof=1) / math.sqrt(R)
    assert est.var(ddof=1) == pytest.approx(al["variance"], rel=0.1)
    # as the low fidelities' samples grow at fixed n0 the variance tends to the optimal
    # control variate with *known* LF means: (1 - R^2) C00 / n0, R^2 the multiple correlation
    r2 = cov[0, 1:] @ np.linalg.solve(cov[1:, 1:], cov[0, 1:]) / cov[0, 0]
    v_inf, _ = acvmf_variance(cov, np.array([10.0, 1e9, 1e9]))
    assert v_inf == pytest.approx((1 - r2) * cov[0, 0] / 10.0, rel=1e-5)
    # ... and it beats MFMC's limit (1 - rho_1^2) C00 / n0 there
    assert 1 - r2 < 1 - rho[1] ** 2


def _hierarchy(lf_noise=0.0, seed=7):
    """Analytic models as Fidelities with fixed costs (returned with the value)."""
    def model(i):
        def sample(k):
            z = np.random.default_rng([seed, k]).uniform(A, B)
            v = _f(DEGREES[i], z)
            if i > 0 and lf_noise:
                v = np.random.default_rng([seed, k, i]).normal() * lf_noise
            return float(v), float(COST[i])
        return sample
    mean, _, _ = _exact_stats()
    return Hierarchy("f", "", tuple(Fidelity(f"f{i}", model(i), mean=float(mean[i]))
                                     for i in range(3)))


@pytest.mark.parametrize("method", ["mfmc", "acvmf", "mlmc", "cv", "mc"])
def test_driver_estimates_the_mean_within_its_error(method):
    mean, _, _ = _exact_stats()
    lines = []
    res = estimate_mean(_hierarchy(), 300.0, method=method, n_pilot=20, log=lines.append)
    assert res.method == method
    assert abs(res.estimate.value - mean[0]) < 4 * res.estimate.std
    assert res.estimate.std > 0 and "sampling" in res.estimate.sources
    assert res.spent_s <= 300.0 * 1.05
    assert any(line.startswith("allocation") for line in lines)          # printed before
    if method in ("mfmc", "acvmf", "mlmc", "cv"):
        assert res.predicted_reduction > 1.5 and res.achieved_reduction > 1.5
        # the achieved reduction is within a factor of the pilot's prediction
        assert 0.3 < res.achieved_reduction / res.predicted_reduction < 3.0


def test_uncorrelated_low_fidelities_fall_back_to_monte_carlo():
    res = estimate_mean(_hierarchy(lf_noise=1.0), 50.0, method="mfmc", n_pilot=20, log=None)
    assert res.method == "mc"
    assert any("plain Monte Carlo" in m for m in res.messages)
    assert any("not used" in m for m in res.messages)


def test_bad_input_is_refused():
    h = _hierarchy()
    with pytest.raises(InputError, match="budget_s"):
        estimate_mean(h, 0.5, n_pilot=5, log=None)                       # < one HF sample
    with pytest.raises(InputError, match="method"):
        estimate_mean(h, 10.0, method="magic", log=None)
    with pytest.raises(InputError, match="models"):
        Hierarchy("q", "", (Fidelity("a", lambda k: 1.0), Fidelity("a", lambda k: 2.0)))
    with pytest.raises(InputError, match="budget"):
        mfmc_allocation([1, 1], [1, 0.9], [1, 0.1], 0.5)
