"""Variance-based global sensitivity: Sobol' first-order and total indices of an output with
respect to independent inputs, so a designer knows which knob matters.

The estimator is SciPy's (``scipy.stats.sobol_indices``: Saltelli 2010's first-order and
Jansen's total-effect formulas on a scrambled Sobol' design, with a bootstrap for the confidence
intervals); this module names the inputs, takes their ranges or distributions, evaluates the
model point by point through any map (a cached ladder run per point, a Dask executor's map) and
returns the indices with their bootstrap errors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from ..core.errors import InputError
from ..core.validate import positive_int

__all__ = ["SobolIndices", "sobol"]


@dataclass
class SobolIndices:
    """First-order (``first``) and total (``total``) indices per input, with the bootstrap's
    standard errors; ``n_evaluations`` the model evaluations used."""

    names: list
    first: np.ndarray
    total: np.ndarray
    first_se: np.ndarray
    total_se: np.ndarray
    n_evaluations: int

    def as_dict(self) -> dict:
        return {nm: {"first": float(f), "total": float(t), "first_se": float(fs),
                     "total_se": float(ts)}
                for nm, f, t, fs, ts in zip(self.names, self.first, self.total, self.first_se,
                                            self.total_se)}

    def table(self) -> str:
        lines = [f"Sobol' indices ({self.n_evaluations} evaluations)",
                 f"  {'input':<28}{'first':>14}{'total':>14}"]
        for nm, f, t, fs, ts in zip(self.names, self.first, self.total, self.first_se,
                                    self.total_se):
            lines.append(f"  {nm:<28}{f:>8.3f}±{fs:<5.3f}{t:>8.3f}±{ts:<5.3f}")
        return "\n".join(lines)


def _dist(name: str, spec: Any):
    from scipy import stats

    if hasattr(spec, "ppf"):
        return spec
    try:
        lo, hi = (float(v) for v in spec)
    except (TypeError, ValueError):
        raise InputError(name, spec, "a (low, high) range or a scipy.stats distribution") \
            from None
    if not hi > lo:
        raise InputError(name, spec, "a range with high > low")
    return stats.uniform(loc=lo, scale=hi - lo)


def sobol(fn: Callable[[dict], float] | None, inputs: Mapping[str, Any], *, n: int = 256,
          seed: int = 0, map_fn: Callable = map, n_bootstrap: int = 200,
          fn_many: Callable[[list], list] | None = None) -> SobolIndices:
    """Sobol' indices of ``fn(point) -> float`` (``point`` a dict input name -> value) over
    independent ``inputs`` (name -> (low, high), uniform, or a scipy.stats distribution).

    ``n`` (a power of two) base points: ``n (d + 2)`` evaluations, all in one batch:
    ``fn_many(points) -> values`` where given (a ladder runs them as one DAG), else
    ``map_fn(fn, points)``.
    """
    if not isinstance(inputs, Mapping) or not inputs:
        raise InputError("inputs", inputs, "a dict of input name -> (low, high) or distribution")
    n = positive_int("n", n, 8)
    if n & (n - 1):
        raise InputError("n", n, "a power of two (Sobol' sequences)")
    from scipy import stats

    names = list(inputs)
    dists = [_dist(k, v) for k, v in inputs.items()]

    def vectorised(x):
        pts = [dict(zip(names, map(float, col))) for col in np.asarray(x).T]
        vals = fn_many(pts) if fn_many is not None else list(map_fn(fn, pts))
        return np.asarray(vals, dtype=float)[None, :]

    res = stats.sobol_indices(func=vectorised, n=n, dists=dists,
                              rng=np.random.default_rng(seed))
    boot = res.bootstrap(n_resamples=n_bootstrap)
    first = np.asarray(res.first_order, float).reshape(-1)
    total = np.asarray(res.total_order, float).reshape(-1)
    return SobolIndices(names=names, first=first, total=total,
                        first_se=np.asarray(boot.first_order.standard_error,
                                            float).reshape(-1),
                        total_se=np.asarray(boot.total_order.standard_error,
                                            float).reshape(-1),
                        n_evaluations=n * (len(names) + 2))
