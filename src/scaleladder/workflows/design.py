"""Inverse design: run a model backwards from a target property to the inputs that reach it,
with the probability its error budget allows.

``evaluate(point) -> Estimate`` is any model (a cached ladder run per point: see
:mod:`scaleladder.ladders.study`); ``point`` is a dict of the varied inputs.  A target is
``QUANTITY>=VALUE``, ``QUANTITY<=VALUE`` or ``QUANTITY=VALUE``.  The quantity at a point is taken
as Gaussian with the Estimate's standard deviation (the budget is variance-based; its sources
are independent), so with ``z = Phi^-1(P)``:

- ``Q >= v`` with probability ``P`` means ``mu - z sigma >= v``; the design is the boundary of
  that set (with one varied input: every feasible interval in the range, e.g. every crack
  length up to the largest tolerated one);
- ``Q <= v`` likewise with ``mu + z sigma <= v``;
- ``Q = v`` means ``mu = v``, and the input interval of the design is where the central band
  of probability ``P``, ``mu +- z sigma``, still contains ``v``.

One varied input: a grid over its range (evaluated together, in parallel through ``map_fn``),
then Brent's method (``scipy.optimize.brentq``) on each bracketed sign change, to ``xtol``.
Several: SciPy's SLSQP finds the point of the boundary nearest the centre of the box (in
coordinates scaled to the box), starting from the best grid point of a small Latin-hypercube
design.  Every evaluation is memoised here and, for ladders, stored: a design re-run or extended
reuses them.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from ..core.errors import InputError
from ..core.validate import positive, positive_int
from ..handoffs import Design
from ..uq import Estimate

__all__ = ["Target", "parse_target", "design"]

_TARGET = re.compile(r"^\s*([A-Za-z_][\w.\-\[\]]*)\s*(>=|<=|=)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Target:
    quantity: str
    relation: str
    value: float

    def margin(self, mu: float, sigma: float, z: float) -> float:
        """Positive where the target is met with the probability whose quantile is ``z``."""
        if self.relation == ">=":
            return mu - z * sigma - self.value
        if self.relation == "<=":
            return self.value - mu - z * sigma
        return mu - self.value

    def probability(self, mu: float, sigma: float) -> float:
        from scipy.stats import norm

        if sigma <= 0:
            met = {"<=": mu <= self.value, ">=": mu >= self.value, "=": mu <= self.value}
            return float(met[self.relation])
        p_above = float(norm.sf((self.value - mu) / sigma))
        return p_above if self.relation == ">=" else 1.0 - p_above

    def __str__(self) -> str:
        return f"{self.quantity} {self.relation} {self.value:g}"


def parse_target(text: str | Target) -> Target:
    """``"sigma_c>=50"`` -> Target; a clear error otherwise."""
    if isinstance(text, Target):
        return text
    m = _TARGET.match(str(text))
    if not m:
        raise InputError("target", text, "QUANTITY>=VALUE, QUANTITY<=VALUE or QUANTITY=VALUE "
                         "(e.g. fracture.sigma_c>=50)")
    try:
        value = float(m.group(3))
    except ValueError:
        raise InputError("target", text, "a number after the relation") from None
    if not math.isfinite(value):
        raise InputError("target", text, "a finite target value")
    return Target(m.group(1), m.group(2), value)


def _check_vary(vary: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    if not isinstance(vary, Mapping) or not vary:
        raise InputError("vary", vary, "one or more KEY=(low, high) ranges")
    out = {}
    for k, rng in vary.items():
        try:
            lo, hi = (float(v) for v in rng)
        except (TypeError, ValueError):
            raise InputError(f"vary {k}", rng, "a (low, high) pair of numbers") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise InputError(f"vary {k}", rng, "finite low < high")
        out[str(k)] = (lo, hi)
    return out


class _Memo:
    """Evaluations by point, with the record the Design keeps."""

    def __init__(self, evaluate, names, map_fn, log, evaluate_many=None):
        self.evaluate, self.names, self.map_fn, self.log = evaluate, names, map_fn, log
        self.evaluate_many = evaluate_many
        self.cache: dict[tuple, Estimate] = {}
        self.records: list[dict] = []

    def _one(self, point: dict) -> Any:
        return self.evaluate(point)

    def many(self, xs: list[np.ndarray]) -> list[Estimate]:
        keys = [tuple(float(v) for v in x) for x in xs]
        todo = [k for k in dict.fromkeys(keys) if k not in self.cache]
        if todo:
            pts = [dict(zip(self.names, k)) for k in todo]
            outs = (list(self.evaluate_many(pts)) if self.evaluate_many is not None
                    else list(self.map_fn(self._one, pts)))
            for k, p, out in zip(todo, pts, outs):
                est = out[0] if isinstance(out, tuple) else out
                cached = bool(out[1]) if isinstance(out, tuple) else False
                if not isinstance(est, Estimate) or est.ndim != 0:
                    raise InputError("evaluate", type(est).__name__,
                                     "a scalar Estimate of the target quantity")
                self.cache[k] = est
                self.records.append({"inputs": p, "value": float(est.value),
                                     "std": float(est.std), "cached": cached})
                if self.log is not None:
                    self.log("  " + ", ".join(f"{n} = {v:.6g}" for n, v in p.items())
                             + f": {float(est.value):.6g} ± {float(est.std):.3g} {est.unit}"
                             + (" (from the store)" if cached else ""))
        return [self.cache[k] for k in keys]

    def one(self, x) -> Estimate:
        return self.many([np.atleast_1d(np.asarray(x, float))])[0]


def design(evaluate: Callable[[dict], Estimate], target: str | Target,
           vary: Mapping[str, Any], *, confidence: float = 0.5, n_grid: int = 6,
           xtol: float | None = None, map_fn: Callable = map,
           log: Callable[[str], None] | None = print,
           provenance: Mapping | None = None,
           evaluate_many: Callable[[list], list] | None = None) -> Design:
    """Search ``vary`` (input -> (low, high)) for inputs whose ``evaluate(point)`` meets
    ``target`` with probability ``confidence``.

    Parameters
    ----------
    evaluate
        ``point -> Estimate`` (scalar), or ``(Estimate, cached)``.
    n_grid
        Grid points over the range of one varied input (a Latin-hypercube design of
        ``n_grid * d`` points for ``d`` inputs) before the refinement.
    xtol
        Absolute tolerance of the refined input (default 1e-3 of the range: each step of the
        refinement is a model run).
    map_fn, evaluate_many
        How a batch of points (the grid) is evaluated: ``map_fn(evaluate, points)``, or
        ``evaluate_many(points)`` (a ladder runs the batch as one DAG on its executor).

    Raises
    ------
    InputError
        A target the range cannot reach (the error gives the margin's span over the range), a
        confidence outside (0, 1), a malformed range.
    """
    tgt = parse_target(target)
    rng = _check_vary(vary)
    if not (isinstance(confidence, (int, float)) and 0.0 < float(confidence) < 1.0):
        raise InputError("confidence", confidence, "a probability in (0, 1)")
    n_grid = positive_int("n_grid", n_grid, 2)
    from scipy import optimize
    from scipy.stats import norm

    z = float(norm.ppf(confidence)) if tgt.relation != "=" else 0.0
    z_band = float(norm.ppf(0.5 + 0.5 * confidence))
    names = list(rng)
    lo = np.array([rng[k][0] for k in names])
    hi = np.array([rng[k][1] for k in names])
    memo = _Memo(evaluate, names, map_fn, log, evaluate_many)
    if log is not None:
        log(f"design: {tgt} with P >= {confidence:g}, varying "
            + ", ".join(f"{k} in [{rng[k][0]:g}, {rng[k][1]:g}]" for k in names))

    def g(x, zz=z, tt=tgt):
        e = memo.one(x)
        return tt.margin(float(e.value), float(e.std), zz)

    feasible, interval = [], []
    if len(names) == 1:
        tol = positive("xtol", xtol) if xtol is not None else 1e-3 * float(hi[0] - lo[0])
        xs = np.linspace(lo[0], hi[0], n_grid)
        ests = memo.many([np.array([x]) for x in xs])
        gs = np.array([tgt.margin(float(e.value), float(e.std), z) for e in ests])
        roots = _roots_1d(lambda x: g(np.array([x])), xs, gs, tol, optimize)
        if not roots:
            sign = {">=": -1.0, "<=": 1.0, "=": 0.0}[tgt.relation]
            q = [float(e.value) + sign * z * float(e.std) for e in ests]
            what = ("the nominal value" if tgt.relation == "=" else
                    f"the {confidence:g}-confidence bound")
            raise InputError("target", str(tgt),
                             f"a value the varied range reaches: over {names[0]} in "
                             f"[{lo[0]:g}, {hi[0]:g}] {what} of {tgt.quantity} spans "
                             f"[{min(q):.4g}, {max(q):.4g}] {ests[0].unit}".rstrip())
        x_star = roots[0]
        if len(roots) > 1 and log is not None:
            log(f"  {len(roots)} crossings in the range: {', '.join(f'{r:.6g}' for r in roots)}"
                f" (the design is the first; all are in the Design's feasible intervals)")
        if tgt.relation != "=":
            edges = [lo[0]] + roots + [hi[0]]
            for a, b in zip(edges[:-1], edges[1:]):
                inside = [gv for xv, gv in zip(xs, gs) if a < xv < b]    # grid points known
                sign = inside[0] if inside else g(np.array([0.5 * (a + b)]))
                if sign > 0:
                    feasible.append([a, b])
        else:
            band = []
            for sgn in (-1.0, 1.0):
                def edge(x, s=sgn):
                    e = memo.one(np.array([x]))
                    return float(e.value) + s * z_band * float(e.std) - tgt.value
                band += _roots_1d(edge, xs, np.array([edge(x) for x in xs]), tol, optimize)
            if len(band) == 2:
                interval = sorted(band)
        x = np.array([x_star])
        optimizer = {"method": "grid + scipy.optimize.brentq", "n_grid": n_grid, "xtol": tol}
    else:
        from scipy.stats import qmc

        u0 = qmc.LatinHypercube(d=len(names), seed=0).random(n_grid * len(names))
        ests = memo.many([lo + u * (hi - lo) for u in u0])
        gs = np.array([tgt.margin(float(e.value), float(e.std), z) for e in ests])
        if not (gs.min() <= 0 <= gs.max()):
            raise InputError("target", str(tgt), f"a value the varied box reaches: the margin "
                             f"spans [{gs.min():.4g}, {gs.max():.4g}] over "
                             f"{len(gs)} points of the box (it must change sign)")
        centre = np.full(len(names), 0.5)
        start = u0[int(np.argmin(np.abs(gs)))]
        scale = float(np.max(np.abs(gs))) or 1.0
        res = optimize.minimize(
            lambda u: float(np.sum((u - centre) ** 2)), start, method="SLSQP",
            bounds=[(0.0, 1.0)] * len(names),
            constraints=[{"type": "eq", "fun": lambda u: g(lo + u * (hi - lo)) / scale}],
            options={"ftol": 1e-8, "maxiter": 100, "eps": 1e-4})
        x = lo + res.x * (hi - lo)
        if abs(g(x)) > 1e-3 * scale:
            raise InputError("target", str(tgt), f"a boundary SLSQP can reach ({res.message}; "
                             f"margin {g(x):.3g} at the end)")
        optimizer = {"method": "Latin hypercube + scipy.optimize.minimize(SLSQP)",
                     "n_start": len(u0), "iterations": int(res.nit), "message": str(res.message)}
    est = memo.one(x)
    prob = tgt.probability(float(est.value), float(est.std))
    out = Design(quantity=tgt.quantity, relation=tgt.relation, target=tgt.value,
                 unit=est.unit, confidence=float(confidence),
                 inputs=dict(zip(names, map(float, x))), predicted=est, probability=prob,
                 evaluations=memo.records, optimizer=optimizer, feasible=feasible,
                 input_interval=interval, provenance=dict(provenance or {}))
    if log is not None:
        log(str(out))
    return out


def _roots_1d(fn, xs, gs, tol, optimize) -> list[float]:
    roots = []
    for i in range(len(xs) - 1):
        a, b, ga, gb = xs[i], xs[i + 1], gs[i], gs[i + 1]
        if ga == 0:
            roots.append(float(a))
        elif ga * gb < 0:
            roots.append(float(optimize.brentq(fn, a, b, xtol=tol)))
    if gs[-1] == 0:
        roots.append(float(xs[-1]))
    return sorted(set(roots))
