"""Studies over ladders: a ladder's quantity as a function of its settings (for inverse design
and sensitivity), and a ladder's declared fidelities as a multifidelity hierarchy.

Every evaluation is a ladder run through the :class:`~scaleladder.core.pipeline.Runner` into the
store: a point evaluated before is loaded, not recomputed (a design re-run or extended reuses
every finished stage, and a change of a continuum setting re-runs only the continuum stages); a
batch of points is one DAG, so the runner's executor (a process pool, a Dask cluster) runs the
points side by side.  Costs of a multifidelity model are the compute times the store recorded
for its stages.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from ..core.errors import InputError
from .base import LadderSpec

__all__ = ["scalar_estimates", "LadderQuantity", "ladder_hierarchy", "check_vary"]


def _estimates_of(value):
    """(suffix, scalar Estimate) pairs found in a value: Estimates, an ElasticTensor's cubic
    constants, a SurfaceEnergy's value, a CriticalStress's value."""
    from ..uq import Estimate

    if isinstance(value, Estimate):
        return [("", value)]
    voigt = getattr(value, "voigt", None)
    if isinstance(voigt, Estimate):
        return [(".C11", voigt[0, 0]), (".C12", voigt[0, 1]), (".C44", voigt[3, 3])]
    inner = getattr(value, "value", None)
    if isinstance(inner, Estimate):
        return [(".gamma" if hasattr(value, "miller") else "", inner)]
    return []


def scalar_estimates(results: Mapping[str, Any], depth: int = 3) -> dict:
    """Every scalar Estimate in a ladder's results, by dotted label (``fracture.sigma_c``,
    ``elastic.C11``, ``moduli.moduli.E_T``), in the order found."""
    out: dict = {}

    def walk(label, value, d):
        if isinstance(value, dict) and d < depth:
            for k, v in value.items():
                walk(f"{label}.{k}", v, d + 1)
            return
        for sub, est in _estimates_of(value):
            if est.ndim == 0:
                out.setdefault(label + sub, est)
    for name, value in results.items():
        walk(name, value, 0)
    return out


def check_vary(spec: LadderSpec, vary: Mapping[str, Any]) -> dict:
    """``vary`` (setting -> (low, high)) checked against the ladder's settings: each key a
    float setting, both ends valid values of it."""
    out = {}
    for key, rng in vary.items():
        s = spec.setting(key)                 # an unknown key lists the valid ones
        if s.type is not float:
            raise InputError("--vary", key, f"a numeric (float) setting of {spec.name}; "
                             f"{key} is {s.type.__name__}"
                             + (" (integer settings are not searched continuously)"
                                if s.type is int else ""))
        try:
            lo, hi = (float(v) for v in rng)
        except (TypeError, ValueError):
            raise InputError(f"--vary {key}", rng, "LOW:HIGH numbers") from None
        s.check(lo)
        s.check(hi)
        if not hi > lo:
            raise InputError(f"--vary {key}", rng, "LOW < HIGH")
        out[key] = (lo, hi)
    return out


def _open_store(store):
    from ..core.store import Store

    return store if isinstance(store, Store) else Store(store)


class LadderQuantity:
    """``quantity`` of ``ladder`` as a function of some of its settings.

    ``lq(point)`` -> ``(Estimate, cached)``; ``lq.many(points)`` runs the points as one DAG.
    ``quantity`` is a dotted label of :func:`scalar_estimates` (its first part, a target of the
    ladder, is checked before anything runs; the rest on the first result).
    """

    def __init__(self, ladder: str | LadderSpec, quantity: str, *, settings: Mapping | None = None,
                 strings: Mapping[str, str] | None = None, store=".scaleladder",
                 executor: Any = None, progress: bool = False):
        from . import get_ladder

        self.spec = ladder if isinstance(ladder, LadderSpec) else get_ladder(ladder)
        self.base = self.spec.resolve(settings, strings)
        self.quantity = str(quantity)
        targets = self.spec.build(self.base)
        head = self.quantity.split(".")[0]
        if head not in targets:
            raise InputError("quantity", quantity, f"a quantity of {self.spec.name} starting "
                             f"with one of its results: {', '.join(targets)}")
        self.store = _open_store(store)
        self.executor = executor
        self.progress = progress
        self.runs: list[dict] = []

    def settings_at(self, point: Mapping[str, float]) -> dict:
        return self.spec.resolve({**self.base, **point})

    def many(self, points: list[Mapping[str, float]]) -> list[tuple]:
        from ..core.pipeline import Runner

        all_targets, per_point = {}, []
        for i, p in enumerate(points):
            t = self.spec.build(self.settings_at(p))
            per_point.append(t)
            for name, node in t.items():
                all_targets[f"{i}:{name}"] = node
        runner = Runner(self.store, executor=self.executor, progress=self.progress)
        results = runner.run(all_targets)
        computed = {n["key"] for n in runner.stats.nodes if n["status"] == "computed"}
        out = []
        for i, (p, t) in enumerate(zip(points, per_point)):
            res = {name: results[f"{i}:{name}"] for name in t}
            ests = scalar_estimates(res)
            if self.quantity not in ests:
                raise InputError("quantity", self.quantity,
                                 f"one of the scalar results of {self.spec.name}: "
                                 + ", ".join(ests))
            keys = {name: node.key for name, node in t.items()}
            cached = not any(k in computed for k in keys.values())
            self.runs.append({"inputs": dict(p), "targets": keys})
            out.append((ests[self.quantity], cached))
        return out

    def __call__(self, point: Mapping[str, float]) -> tuple:
        return self.many([point])[0]

    def targets_at(self, point: Mapping[str, float]) -> dict:
        """Store keys of the ladder's results at an evaluated ``point`` (the design point's
        provenance); empty if it was not evaluated."""
        for run in reversed(self.runs):
            if run["inputs"] == dict(point):
                return dict(run["targets"])
        return {}

    def provenance(self) -> dict:
        return {"ladder": self.spec.name, "quantity": self.quantity,
                "settings": {k: v for k, v in self.base.items()
                             if isinstance(v, (int, float, str, bool))},
                "runs": self.runs}


def design_key(ladder: str, target: str, vary: Mapping, confidence: float,
               settings: Mapping) -> str:
    """The store key of a design: a hash of what defines it."""
    text = json.dumps({"ladder": ladder, "target": target, "vary": {k: list(v) for k, v in
                                                                   vary.items()},
                       "confidence": confidence,
                       "settings": {k: v for k, v in settings.items()
                                    if isinstance(v, (int, float, str, bool))}},
                      sort_keys=True, default=str)
    return "design-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def ladder_hierarchy(ladder: str | LadderSpec, *, settings: Mapping | None = None,
                     strings: Mapping[str, str] | None = None, store=".scaleladder",
                     executor: Any = None, progress: bool = False):
    """The ladder's declared fidelities as a :class:`~scaleladder.uq.multifidelity.Hierarchy`
    whose models run their stages through the store (cost: the stage times it recorded)."""
    from ..core.pipeline import Runner
    from ..uq.multifidelity import Fidelity, Hierarchy
    from . import get_ladder

    spec = ladder if isinstance(ladder, LadderSpec) else get_ladder(ladder)
    if spec.fidelities is None:
        raise InputError("ladder", spec.name, "a ladder that declares fidelities (composite, "
                         "qmmm-water)")
    s = spec.resolve(settings, strings)
    h = spec.fidelities(s)
    st = _open_store(store)

    def model(node_of, value_of):
        def sample_many(ks):
            nodes = {str(k): node_of(k) for k in ks}
            runner = Runner(st, executor=executor, progress=progress)
            res = runner.run(nodes)
            # compute seconds of each node: measured now, or recorded when it was computed
            secs = {n["key"]: float(n["elapsed_s"]) for n in runner.stats.nodes}
            return [(float(value_of(res[str(k)])), secs.get(nodes[str(k)].key, 0.0))
                    for k in ks]
        return sample_many

    models = []
    for name, node_of, value_of in h["models"]:
        sm = model(node_of, value_of)
        models.append(Fidelity(name, lambda k, sm=sm: sm([k])[0], sample_many=sm))
    return Hierarchy(h["quantity"], h["unit"], tuple(models))
