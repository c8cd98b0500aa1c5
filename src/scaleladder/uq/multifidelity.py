"""Multifidelity Monte Carlo: the mean of an expensive quantity from a few expensive samples and
many cheap, correlated ones.

A *hierarchy* is data: one quantity, its unit and its models, the first the high fidelity.  Each
model maps a realisation index ``k`` (an MD snapshot, a microstructure seed — the same ``k`` is
the same random input for every model) to a number; costs are measured, not typed in: a model
returns ``(value, seconds)`` where the seconds are known (a ladder stage's time from the store)
or is timed around the call.

Estimators (all unbiased for the high fidelity's mean, given their coefficients):

- plain Monte Carlo of the high fidelity;
- a control variate with a known low-fidelity mean, ``y_hf - alpha (y_lf - mu_lf)``, whose
  variance is ``(1 - rho^2)`` times plain Monte Carlo's at the same number of samples;
- multifidelity Monte Carlo (Peherstorfer, Willcox & Gunzburger, SIAM J. Sci. Comput. 38 (2016)
  A3163): nested samples, ``m_1 <= m_2 <= ...``, coefficients ``alpha_i = rho_i sigma_1/sigma_i``
  and the optimal allocation of their Theorem 3.4 under a cost budget, with the models chosen
  among the given ones (the subset that minimises the error and satisfies the theorem's
  ordering conditions);
- multilevel Monte Carlo (Giles, Acta Numerica 24 (2015) 259): the telescoping sum over levels
  (models from the cheapest to the high fidelity), ``N_l`` proportional to ``sqrt(V_l / C_l)``.

A run has a pilot phase (every model on the same ``n_pilot`` realisations: standard deviations,
correlations, costs), prints the allocation and the predicted variance reduction, runs the main
phase on fresh realisations (so the coefficients are independent of the samples they weight
and the estimator is unbiased), and reports the achieved reduction from the main phase's own
statistics.  The result is an :class:`~scaleladder.uq.Estimate` with one ``sampling`` source
whose standard deviation is the estimator's standard error.

Libraries evaluated: MXMCPy (NASA) and PyApprox implement MFMC, MLMC and approximate control
variates, but both require PyTorch (about 1 GB) for what is here a closed form and a few lines
of linear algebra; neither knows the project's Estimate, store or stage timings.  The estimators
are therefore written here, in NumPy, and checked against the closed forms of the papers.
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..core.errors import InputError
from ..core.validate import positive, positive_int
from .estimate import Estimate, one_sigma_samples

__all__ = ["Fidelity", "Hierarchy", "PilotStatistics", "pilot", "mfmc_allocation",
           "mfmc_mse_ratio", "mfmc_variance", "mfmc_estimator", "mlmc_allocation",
           "acvmf_variance", "acvmf_allocation", "acvmf_estimator",
           "control_variate", "estimate_mean", "MultifidelityResult", "METHODS"]

METHODS = ("mc", "cv", "mfmc", "acvmf", "mlmc")
#: a low fidelity whose correlation with the high fidelity is below this is not used
MIN_CORRELATION = 0.3
#: fewer high-fidelity samples in the main phase than this: its variance from the pilot's
#: statistics (a standard deviation and correlations from two or three samples mean nothing)
MIN_MAIN_SAMPLES = 10


@dataclass(frozen=True)
class Fidelity:
    """One model of a quantity: ``sample(k)`` for realisation ``k`` returns the value or
    ``(value, seconds)``; ``mean`` is its exact mean where known (a control variate can use it);
    ``sample_many(ks)``, where given, evaluates a batch at once (a ladder runs the batch as one
    DAG, in parallel on its executor) and returns ``(value, seconds)`` pairs."""

    name: str
    sample: Callable[[int], Any]
    mean: float | None = None
    sample_many: Callable[[list], list] | None = None


@dataclass(frozen=True)
class Hierarchy:
    """The fidelities of one quantity, the high fidelity first."""

    quantity: str
    unit: str
    models: tuple

    def __post_init__(self):
        models = tuple(self.models)
        if len(models) < 1 or not all(isinstance(m, Fidelity) for m in models):
            raise InputError("models", [type(m).__name__ for m in models],
                             "one or more Fidelity objects, the high fidelity first")
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise InputError("models", names, "distinct model names")
        object.__setattr__(self, "models", models)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]


def _call(model: Fidelity, k: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    out = model.sample(int(k))
    dt = time.perf_counter() - t0
    if isinstance(out, tuple):
        value, seconds = out
    else:
        value, seconds = out, dt
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"{model.name}({k})", value, "a finite value from the model")
    return value, float(seconds)


def _evaluate(model: Fidelity, indices, map_fn) -> tuple[np.ndarray, np.ndarray]:
    indices = list(indices)
    if model.sample_many is not None and indices:
        out = [(float(v), float(t)) for v, t in model.sample_many(indices)]
        for k, (v, _) in zip(indices, out):
            if not math.isfinite(v):
                raise InputError(f"{model.name}({k})", v, "a finite value from the model")
    else:
        out = list(map_fn(lambda k: _call(model, k), indices))
    if not out:
        return np.zeros(0), np.zeros(0)
    v, s = zip(*out)
    return np.array(v, dtype=float), np.array(s, dtype=float)


@dataclass
class PilotStatistics:
    """What the pilot measured: per model the mean, standard deviation, correlation with the
    high fidelity and cost (seconds per sample), and the full correlation matrix."""

    names: list
    n: int
    values: np.ndarray            # (models, n)
    mean: np.ndarray
    std: np.ndarray
    rho: np.ndarray               # correlation with the high fidelity
    corr: np.ndarray
    cost_s: np.ndarray
    seconds: float                # what the pilot cost

    def table(self) -> str:
        lines = [f"pilot: {self.n} realisations, {self.seconds:.3g} s",
                 f"  {'model':<24}{'mean':>14}{'std':>12}{'rho':>9}{'cost/s':>11}"]
        for i, nm in enumerate(self.names):
            lines.append(f"  {nm:<24}{self.mean[i]:>14.6g}{self.std[i]:>12.4g}"
                         f"{self.rho[i]:>9.4f}{self.cost_s[i]:>11.3g}")
        return "\n".join(lines)


def pilot(hierarchy: Hierarchy, n_pilot: int, *, first: int = 0,
          map_fn: Callable = map) -> PilotStatistics:
    """Every model on realisations ``first .. first + n_pilot - 1``."""
    n_pilot = positive_int("n_pilot", n_pilot, 3)
    vals, secs = [], []
    for m in hierarchy.models:
        v, s = _evaluate(m, range(first, first + n_pilot), map_fn)
        vals.append(v)
        secs.append(s)
    V = np.array(vals)
    S = np.array(secs)
    std = V.std(axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(V) if len(V) > 1 else np.ones((1, 1))
    corr = np.nan_to_num(np.atleast_2d(corr), nan=0.0)
    return PilotStatistics(names=hierarchy.names, n=n_pilot, values=V, mean=V.mean(axis=1),
                           std=std, rho=corr[0].copy(), corr=corr,
                           cost_s=np.maximum(S.mean(axis=1), 1e-9), seconds=float(S.sum()))


# ------------------------------------------------------------------------------------- MFMC
def _mfmc_conditions(rho: np.ndarray, w: np.ndarray) -> bool:
    """Theorem 3.4's conditions on a chosen, ordered set of models (high fidelity first):
    ``|rho_1| > |rho_2| > ...`` and ``w_{i-1}/w_i > (rho_{i-1}^2 - rho_i^2)/(rho_i^2 -
    rho_{i+1}^2)`` with ``rho_{k+1} = 0``."""
    r2 = np.append(rho ** 2, 0.0)
    k = rho.size
    if np.any(np.diff(np.abs(rho)) >= 0):
        return False
    for i in range(1, k):
        if not w[i - 1] / w[i] > (r2[i - 1] - r2[i]) / (r2[i] - r2[i + 1]):
            return False
    return True


def mfmc_mse_ratio(rho: Sequence[float], cost: Sequence[float]) -> float:
    """MSE of MFMC over the MSE of plain Monte Carlo at the same cost (Peherstorfer et al. 2016,
    Corollary 3.5): ``(sum_i sqrt(w_i/w_1 (rho_i^2 - rho_{i+1}^2)))^2``."""
    rho = np.asarray(rho, float)
    w = np.asarray(cost, float)
    r2 = np.append(rho ** 2, 0.0)
    return float(np.sum(np.sqrt(w / w[0] * (r2[:-1] - r2[1:]))) ** 2)


def mfmc_allocation(std: Sequence[float], rho: Sequence[float], cost: Sequence[float],
                    budget: float, *, select: bool = True) -> dict:
    """The optimal MFMC allocation (Peherstorfer et al. 2016, Theorem 3.4).

    Parameters
    ----------
    std, rho, cost
        Per model (high fidelity first): standard deviation, correlation with the high fidelity
        and cost of one sample.
    budget
        Total cost of the main phase (units of ``cost``).
    select
        Choose the subset of low fidelities (the high fidelity always in it) that satisfies the
        theorem's conditions and gives the smallest MSE; else use all, in the given order, and
        refuse if the conditions fail.

    Returns a dict: ``models`` (indices used, in order), ``m_real`` (the optimal real numbers of
    samples), ``m`` (integers: floors, nested, at least one high-fidelity sample), ``alpha``,
    ``mse_ratio`` (the closed form vs plain Monte Carlo at equal cost) and ``variance`` (the
    estimator's variance with the integer allocation).
    """
    std = np.asarray(std, float)
    rho = np.asarray(rho, float)
    w = np.asarray(cost, float)
    budget = positive("budget", budget)
    if budget < w[0]:
        raise InputError("budget", budget, f"at least one high-fidelity sample ({w[0]:.4g})")
    n = rho.size
    candidates = []
    others = [i for i in range(1, n) if abs(rho[i]) >= MIN_CORRELATION]
    subsets = ([tuple(c) for r in range(len(others) + 1)
                for c in itertools.combinations(others, r)] if select else [tuple(range(1, n))])
    for sub in subsets:
        idx = [0] + sorted(sub, key=lambda i: -abs(rho[i]))
        if not _mfmc_conditions(rho[idx], w[idx]):
            continue
        candidates.append((mfmc_mse_ratio(rho[idx], w[idx]), idx))
    if not candidates:
        raise InputError("models", [float(r) for r in rho],
                         "low fidelities whose correlations and costs satisfy MFMC's ordering "
                         "conditions (Peherstorfer et al. 2016, Theorem 3.4)")
    ratio, idx = min(candidates, key=lambda c: c[0])
    r2 = np.append(rho[idx] ** 2, 0.0)
    wi = w[idx]
    if len(idx) == 1:
        r = np.ones(1)
    else:
        r = np.sqrt(wi[0] * (r2[:-1] - r2[1:]) / (wi * (1.0 - r2[1])))
    m1 = budget / float(wi @ r)
    m_real = m1 * r
    m = np.maximum(np.floor(m_real).astype(int), 1)
    m = np.maximum.accumulate(m)
    while float(wi @ m) > budget * (1 + 1e-12) and m[-1] > m[0]:     # nesting may overspend
        m[-1] -= 1
        m = np.maximum.accumulate(np.minimum(m, m[-1]))
    alpha = rho[idx] * std[0] / np.where(std[idx] > 0, std[idx], 1.0)
    return {"models": idx, "m_real": m_real, "m": m, "alpha": alpha, "mse_ratio": ratio,
            "variance": mfmc_variance(std[idx], rho[idx], alpha, m)}


def mfmc_variance(std, rho, alpha, m) -> float:
    """Variance of the MFMC estimator with nested sample sizes ``m`` (Peherstorfer et al. 2016,
    Lemma 3.3): ``s_1^2/m_1 + sum_{i>=2} (1/m_{i-1} - 1/m_i)(a_i^2 s_i^2 - 2 a_i rho_i s_1
    s_i)``."""
    std, rho, alpha = (np.asarray(a, float) for a in (std, rho, alpha))
    m = np.asarray(m, float)
    var = std[0] ** 2 / m[0]
    for i in range(1, m.size):
        var += (1.0 / m[i - 1] - 1.0 / m[i]) * (alpha[i] ** 2 * std[i] ** 2
                                                - 2 * alpha[i] * rho[i] * std[0] * std[i])
    return float(var)


def mfmc_estimator(samples: Sequence[np.ndarray], alpha: Sequence[float]) -> float:
    """``mean(y_1[:m_1]) + sum_i alpha_i (mean(y_i[:m_i]) - mean(y_i[:m_{i-1}]))`` on nested
    samples (``samples[i]`` the values of model i on the first ``m_i`` realisations)."""
    est = float(np.mean(samples[0]))
    for i in range(1, len(samples)):
        prev = len(samples[i - 1])
        est += float(alpha[i]) * (float(np.mean(samples[i])) - float(np.mean(samples[i][:prev])))
    return est


# ------------------------------------------------------------------------------------- MLMC
def mlmc_allocation(level_var: Sequence[float], level_cost: Sequence[float],
                    budget: float) -> dict:
    """Multilevel Monte Carlo's allocation under a cost budget: ``N_l = budget sqrt(V_l/C_l) /
    sum_j sqrt(V_j C_j)`` minimises ``sum V_l/N_l`` at ``sum N_l C_l = budget`` (Giles 2015,
    eq. 1.10); levels from the coarsest (``V_0`` the coarsest model's variance, ``V_l`` the
    variance of the correction ``P_l - P_{l-1}``, ``C_l`` its cost, both models)."""
    V = np.maximum(np.asarray(level_var, float), 0.0)
    C = np.asarray(level_cost, float)
    budget = positive("budget", budget)
    s = float(np.sum(np.sqrt(V * C)))
    N_real = budget * np.sqrt(V / C) / max(s, 1e-300)
    N = np.maximum(np.floor(N_real).astype(int), 1)
    return {"N_real": N_real, "N": N, "variance": float(np.sum(V / N)),
            "variance_optimal": s ** 2 / budget}


# ------------------------------------------------------------------------------------ ACV-MF
def acvmf_variance(cov: np.ndarray, n: np.ndarray) -> tuple[float, np.ndarray]:
    """Variance of the ACV-MF estimator (Gorodetsky, Geraci, Eldred & Jakeman, J. Comput. Phys.
    408 (2020) 109257) with the optimal weights, and those weights.

    ``Q = mean_{Z0} f_0 + sum_a eta_a (mean_{Z0} f_a - mean_{Z_a} f_a)`` with ``Z_a`` the first
    ``n_a >= n_0`` realisations (so ``Z0`` is in every ``Z_a``): for such nested sets
    ``cov(Delta_a, Delta_b) = C_ab (1/n_0 - 1/min(n_a, n_b))`` and
    ``cov(Delta_a, mean f_0) = C_0a (1/n_0 - 1/n_a)``; the optimal ``eta = -G^-1 g`` gives
    ``var = C_00/n_0 - g^T G^-1 g``.  Unlike MFMC, every low fidelity controls the high
    fidelity directly, so as the ``n_a`` grow the variance tends to the optimal control
    variate's ``(1 - R^2) C_00 / n_0`` (R the multiple correlation of f_0 on all the low
    fidelities), not to MFMC's ``(1 - rho_1^2) C_00 / n_0``."""
    cov = np.asarray(cov, float)
    n = np.asarray(n, float)
    n0, na = n[0], n[1:]
    mn = np.minimum.outer(na, na)
    G = cov[1:, 1:] * (1.0 / n0 - 1.0 / mn)
    g = cov[0, 1:] * (1.0 / n0 - 1.0 / na)
    if np.all(np.abs(g) < 1e-300):
        return float(cov[0, 0] / n0), np.zeros(na.size)
    eta = -np.linalg.lstsq(G, g, rcond=None)[0]
    return float(cov[0, 0] / n0 + g @ eta), eta


def acvmf_allocation(cov, cost, budget: float) -> dict:
    """ACV-MF's sample numbers minimising :func:`acvmf_variance` at ``sum n_i w_i = budget``
    (``scipy.optimize.minimize``, SLSQP over ``n_0`` and the ratios ``n_a / n_0 >= 1``); the
    integers are floors with at least one high-fidelity sample."""
    from scipy import optimize

    cov = np.asarray(cov, float)
    w = np.asarray(cost, float)
    budget = positive("budget", budget)
    if budget < w[0]:
        raise InputError("budget", budget, f"at least one high-fidelity sample ({w[0]:.4g})")
    k = w.size - 1

    def counts(x):
        r = 1.0 + np.exp(x)                       # ratios > 1
        n0 = budget / (w[0] + w[1:] @ r)
        return np.concatenate([[n0], n0 * r])

    def f(x):
        return acvmf_variance(cov, counts(x))[0]
    best = None
    for start in (np.zeros(k), np.full(k, 2.0), np.full(k, 4.0)):
        res = optimize.minimize(f, start, method="Nelder-Mead",
                                options={"xatol": 1e-8, "fatol": 1e-14, "maxiter": 4000})
        if best is None or res.fun < best.fun:
            best = res
    n_real = counts(best.x)
    n = np.maximum(np.floor(n_real).astype(int), 1)
    n[1:] = np.maximum(n[1:], n[0] + 1)
    var, eta = acvmf_variance(cov, n)
    return {"n_real": n_real, "n": n, "eta": eta, "variance": var,
            "variance_real": float(best.fun)}


def acvmf_estimator(samples: Sequence[np.ndarray], eta: Sequence[float]) -> float:
    """``mean(y_0) + sum_a eta_a (mean(y_a[:n_0]) - mean(y_a))`` (``samples[a]`` the values of
    model a on its first ``n_a`` realisations)."""
    n0 = len(samples[0])
    est = float(np.mean(samples[0]))
    for a in range(1, len(samples)):
        est += float(eta[a - 1]) * (float(np.mean(samples[a][:n0])) - float(np.mean(samples[a])))
    return est


# ---------------------------------------------------------------------------- control variate
def control_variate(y_hf: np.ndarray, y_lf: np.ndarray, lf_mean: float,
                    alpha: float | None = None) -> tuple[float, float, float]:
    """The control-variate estimate ``mean(y_hf) - alpha (mean(y_lf) - lf_mean)`` with the low
    fidelity's exact mean.  ``alpha`` defaults to ``cov/var`` from the same samples (then the
    estimator has an O(1/n) bias; pass a pilot's ``alpha`` for an unbiased one).  Returns
    ``(estimate, its variance, alpha)``; the variance is ``(1 - rho^2) var(y_hf)/n`` at the
    optimal ``alpha``."""
    y_hf = np.asarray(y_hf, float)
    y_lf = np.asarray(y_lf, float)
    if y_hf.shape != y_lf.shape or y_hf.size < 2:
        raise InputError("y_lf", y_lf.shape, f"paired samples of shape {y_hf.shape} (n >= 2)")
    c = np.cov(y_hf, y_lf, ddof=1)
    if alpha is None:
        alpha = c[0, 1] / c[1, 1] if c[1, 1] > 0 else 0.0
    est = float(y_hf.mean() - alpha * (y_lf.mean() - lf_mean))
    var = float((c[0, 0] - 2 * alpha * c[0, 1] + alpha ** 2 * c[1, 1]) / y_hf.size)
    return est, var, float(alpha)


# ------------------------------------------------------------------------------------ driver
@dataclass
class MultifidelityResult:
    """A multifidelity estimate of a mean, what it cost and what it gained."""

    estimate: Estimate
    method: str
    hierarchy: list
    pilot: PilotStatistics
    models_used: list
    samples: dict                 # model -> number of main-phase realisations
    budget_s: float
    spent_s: float
    predicted_reduction: float    # plain-MC variance / estimator variance at equal cost (pilot)
    achieved_reduction: float     # the same from the main phase's own statistics
    mc_std_equal_cost: float      # plain MC's standard error at the same cost (main phase)
    messages: list = field(default_factory=list)
    next_index: int = 0           # the first realisation the main phase did not use

    def summary(self) -> str:
        e = self.estimate
        lines = [f"{self.method.upper()} estimate of the mean: {e.value:.6g} ± {e.std:.3g} "
                 f"{e.unit}".rstrip(),
                 f"  models used: {', '.join(self.models_used)}; main-phase realisations: "
                 + ", ".join(f"{k} {v}" for k, v in self.samples.items()),
                 f"  cost: {self.spent_s:.3g} s of {self.budget_s:.3g} s (main phase); pilot "
                 f"{self.pilot.seconds:.3g} s",
                 f"  variance reduction vs plain MC at equal cost: predicted "
                 f"{self.predicted_reduction:.3g}x (pilot), achieved "
                 f"{self.achieved_reduction:.3g}x (main phase); plain MC's standard error "
                 f"{self.mc_std_equal_cost:.3g}"]
        lines += [f"  note: {m}" for m in self.messages]
        return "\n".join(lines)


def _nested(hierarchy, models, counts, start, map_fn) -> tuple[list, float]:
    """Model ``models[j]`` on the first ``counts[j]`` realisations from ``start`` (nested
    sample sets); the values and the seconds they cost."""
    ys, spent = [], 0.0
    for i, k in zip(models, counts):
        y, sec = _evaluate(hierarchy.models[i], range(start, start + int(k)), map_fn)
        ys.append(y)
        spent += float(sec.sum())
    return ys, spent


def _say(log, text):
    if log is not None:
        log(text)


def estimate_mean(hierarchy: Hierarchy, budget_s: float, *, method: str = "mfmc",
                  n_pilot: int = 10, first: int = 0, map_fn: Callable = map,
                  log: Callable[[str], None] | None = print,
                  pilot_stats: PilotStatistics | None = None,
                  main_first: int | None = None) -> MultifidelityResult:
    """Estimate the high fidelity's mean of ``hierarchy`` with ``budget_s`` seconds for the main
    phase.

    ``method``: ``"mc"`` (the high fidelity alone), ``"cv"`` (the best-correlated low fidelity
    with a known ``mean`` as control variate), ``"mfmc"`` or ``"mlmc"`` (models as levels, the
    cheapest coarsest).  Realisations ``first .. first + n_pilot - 1`` are the pilot's, the main
    phase's follow.  A low fidelity correlated below :data:`MIN_CORRELATION` is not used, and
    where no low fidelity would reduce the error the run falls back to plain Monte Carlo and
    says so.  ``log`` receives the pilot table, the allocation before the main phase and the
    summary after it (None: silent).  ``pilot_stats`` reuses a pilot; ``main_first`` sets the
    main phase's first realisation (default: right after the pilot's); the result's
    ``next_index`` is the first realisation it did not use.
    """
    if not isinstance(hierarchy, Hierarchy):
        raise InputError("hierarchy", type(hierarchy).__name__, "a Hierarchy")
    if method not in METHODS:
        raise InputError("method", method, f"one of {', '.join(METHODS)}")
    budget_s = positive("budget_s", budget_s)
    ps = pilot_stats if pilot_stats is not None else pilot(hierarchy, n_pilot, first=first,
                                                            map_fn=map_fn)
    _say(log, ps.table())
    w, s, rho = ps.cost_s, ps.std, ps.rho
    names = hierarchy.names
    if budget_s < w[0]:
        raise InputError("budget_s", budget_s, f"at least one high-fidelity sample "
                         f"({w[0]:.3g} s measured in the pilot)")
    messages = []
    weak = [names[i] for i in range(1, len(names)) if abs(rho[i]) < MIN_CORRELATION]
    if weak:
        messages.append(f"not used (|rho| < {MIN_CORRELATION} with the high fidelity): "
                        + ", ".join(f"{names[names.index(n)]} (rho = "
                                    f"{rho[names.index(n)]:.2f})" for n in weak))
    start = first + ps.n if main_first is None else int(main_first)
    mc_var_pilot = s[0] ** 2 * w[0] / budget_s
    chosen = method
    if method == "mfmc":
        try:
            alloc = mfmc_allocation(s, rho, w, budget_s)
        except InputError:
            alloc = None
        if alloc is None or len(alloc["models"]) == 1:
            messages.append("no low fidelity reduces the error: plain Monte Carlo of the high "
                            "fidelity")
            chosen = "mc"
        elif alloc["variance"] >= s[0] ** 2 / max(int(budget_s // w[0]), 1):
            messages.append(f"the budget buys too few samples for MFMC's allocation to pay off "
                            f"(integer allocation {', '.join(map(str, alloc['m']))}): plain "
                            f"Monte Carlo of the high fidelity")
            chosen = "mc"
    elif method == "cv":
        cands = [i for i in range(1, len(names)) if hierarchy.models[i].mean is not None
                 and abs(rho[i]) >= MIN_CORRELATION]
        if not cands:
            messages.append("no low fidelity with a known mean correlates with the high "
                             "fidelity: plain Monte Carlo")
            chosen = "mc"
    elif method == "acvmf":
        keep = [0] + [i for i in range(1, len(names)) if abs(rho[i]) >= MIN_CORRELATION]
        if len(keep) == 1:
            messages.append("no low fidelity correlates with the high fidelity: plain Monte "
                            "Carlo")
            chosen = "mc"
        else:
            cov_p = np.cov(ps.values[keep], ddof=1)
            acv = acvmf_allocation(cov_p, w[keep], budget_s)
            if acv["variance"] >= s[0] ** 2 / max(int(budget_s // w[0]), 1):
                messages.append("the budget buys too few samples for ACV-MF to pay off: plain "
                                "Monte Carlo of the high fidelity")
                chosen = "mc"
    elif method == "mlmc":
        if len(names) < 2:
            chosen = "mc"
            messages.append("one model: plain Monte Carlo")
    if chosen == "mc":
        n = max(int(budget_s // w[0]), 1)
        _say(log, f"allocation (plain MC): {names[0]} x {n}; predicted variance "
                  f"{mc_var_pilot:.3g}")
        y, sec = _evaluate(hierarchy.models[0], range(start, start + n), map_fn)
        var = y.var(ddof=1) / n if n > 1 else s[0] ** 2
        value, used, samples = float(y.mean()), [names[0]], {names[0]: n}
        nxt = start + n
        spent = float(sec.sum())
        pred, ach, mc_std = 1.0, 1.0, math.sqrt(var)
    elif chosen == "cv":
        i = max(cands, key=lambda j: abs(rho[j]))
        alpha = rho[i] * s[0] / s[i]
        n = max(int(budget_s // (w[0] + w[i])), 2)
        pred = 1.0 / ((1 - rho[i] ** 2) * (w[0] + w[i]) / w[0])
        _say(log, f"allocation (control variate {names[i]}, known mean "
                  f"{hierarchy.models[i].mean:.6g}, alpha {alpha:.4g}): both models x {n}; "
                  f"predicted variance reduction {pred:.3g}x at equal cost")
        y0, c0 = _evaluate(hierarchy.models[0], range(start, start + n), map_fn)
        y1, c1 = _evaluate(hierarchy.models[i], range(start, start + n), map_fn)
        value, var, _ = control_variate(y0, y1, hierarchy.models[i].mean, alpha)
        spent = float(c0.sum() + c1.sum())
        mc_var = y0.var(ddof=1) * w[0] / spent
        mc_std, ach = math.sqrt(mc_var), mc_var / var
        used, samples = [names[0], names[i]], {names[0]: n, names[i]: n}
        nxt = start + n
    elif chosen == "mfmc":
        idx, m, alpha = alloc["models"], alloc["m"], alloc["alpha"]
        pred = mc_var_pilot / alloc["variance"]
        _say(log, "allocation (MFMC): " + ", ".join(f"{names[i]} x {k}" for i, k in zip(idx, m))
             + f"; alpha = {np.array2string(alpha, precision=4)}; predicted variance "
             f"reduction {pred:.3g}x at equal cost (closed form {1 / alloc['mse_ratio']:.3g}x)")
        ys, spent = _nested(hierarchy, idx, m, start, map_fn)
        value = mfmc_estimator(ys, alpha)
        # the main phase's own statistics, on the realisations every model saw
        k0 = int(m[0])
        if k0 >= MIN_MAIN_SAMPLES:
            s_main = np.array([y[:k0].std(ddof=1) for y in ys])
            r_main = np.nan_to_num(np.array([np.corrcoef(ys[0], y[:k0])[0, 1] for y in ys]),
                                   nan=0.0)
        else:
            s_main, r_main = s[idx], rho[idx]
            messages.append(f"{k0} high-fidelity samples in the main phase: its variance uses "
                            f"the pilot's statistics")
        var = mfmc_variance(s_main, r_main, alpha, m)
        w_main = np.array([w[i] for i in idx])
        mc_var = s_main[0] ** 2 * w_main[0] / max(spent, w_main[0])
        mc_std, ach = math.sqrt(mc_var), mc_var / var if var > 0 else float("inf")
        used = [names[i] for i in idx]
        samples = {names[i]: int(k) for i, k in zip(idx, m)}
        nxt = start + int(m[-1])
    elif chosen == "acvmf":
        n_alloc, eta = acv["n"], acv["eta"]
        pred = mc_var_pilot / acv["variance"]
        _say(log, "allocation (ACV-MF): " + ", ".join(f"{names[i]} x {k}"
                                                      for i, k in zip(keep, n_alloc))
             + f"; eta = {np.array2string(eta, precision=4)}; predicted variance reduction "
             f"{pred:.3g}x at equal cost")
        ys, spent = _nested(hierarchy, keep, n_alloc, start, map_fn)
        value = acvmf_estimator(ys, eta)
        k0 = int(n_alloc[0])
        if k0 >= MIN_MAIN_SAMPLES:
            cov_m = np.cov(np.array([y[:k0] for y in ys]), ddof=1)
        else:
            cov_m = np.cov(ps.values[keep], ddof=1)
            messages.append(f"{k0} high-fidelity samples in the main phase: its variance uses "
                            f"the pilot's statistics")
        # the main phase's variance at the weights used (not re-optimised)
        na = n_alloc[1:].astype(float)
        G = cov_m[1:, 1:] * (1.0 / k0 - 1.0 / np.minimum.outer(na, na))
        g = cov_m[0, 1:] * (1.0 / k0 - 1.0 / na)
        var = float(cov_m[0, 0] / k0 + 2 * g @ eta + eta @ G @ eta)
        mc_var = cov_m[0, 0] * w[0] / max(spent, w[0])
        mc_std, ach = math.sqrt(mc_var), mc_var / var if var > 0 else float("inf")
        used = [names[i] for i in keep]
        samples = {names[i]: int(k) for i, k in zip(keep, n_alloc)}
        nxt = start + int(max(n_alloc))
    else:                                            # mlmc: levels from the cheapest model
        order = list(np.argsort(w))
        if order[-1] != 0:
            raise InputError("models", names, "the high fidelity the most expensive model "
                             "(the finest level of MLMC)")
        V, C, corr_vals = [], [], ps.values
        for lvl, i in enumerate(order):
            if lvl == 0:
                V.append(s[i] ** 2)
                C.append(w[i])
            else:
                V.append(np.var(corr_vals[i] - corr_vals[order[lvl - 1]], ddof=1))
                C.append(w[i] + w[order[lvl - 1]])
        al = mlmc_allocation(V, C, budget_s)
        pred = mc_var_pilot / al["variance"]
        _say(log, "allocation (MLMC, coarsest first): "
             + ", ".join(f"{names[i]}{'' if l == 0 else ' - ' + names[order[l - 1]]} x {N}"
                         for l, (i, N) in enumerate(zip(order, al["N"])))
             + f"; predicted variance reduction {pred:.3g}x at equal cost")
        value, var, spent, nxt = 0.0, 0.0, 0.0, start
        samples = {}
        hf_y = None
        for lvl, (i, N) in enumerate(zip(order, al["N"])):
            rng_k = range(nxt, nxt + int(N))
            nxt += int(N)
            yf, cf = _evaluate(hierarchy.models[i], rng_k, map_fn)
            spent += float(cf.sum())
            if lvl == 0:
                d = yf
            else:
                yc, cc = _evaluate(hierarchy.models[order[lvl - 1]], rng_k, map_fn)
                spent += float(cc.sum())
                d = yf - yc
            value += float(d.mean())
            var += float(d.var(ddof=1) / N) if N > 1 else float(V[lvl])
            samples[names[i]] = samples.get(names[i], 0) + int(N)
            if i == 0:
                hf_y = yf
        s_hf = hf_y.std(ddof=1) if hf_y is not None and hf_y.size > 1 else s[0]
        mc_var = s_hf ** 2 * w[0] / spent
        mc_std, ach = math.sqrt(mc_var), mc_var / var if var > 0 else float("inf")
        used = [names[i] for i in order]
    est = Estimate(value, hierarchy.unit, {"sampling": one_sigma_samples(value, math.sqrt(var))})
    res = MultifidelityResult(estimate=est, method=chosen, hierarchy=names, pilot=ps,
                              models_used=used, samples=samples, budget_s=budget_s,
                              spent_s=spent, predicted_reduction=float(pred),
                              achieved_reduction=float(ach), mc_std_equal_cost=float(mc_std),
                              messages=messages, next_index=int(nxt))
    _say(log, res.summary())
    return res
