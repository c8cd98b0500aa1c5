"""Ladder specifications: a validated settings schema plus a function that builds the stage DAG.

A ladder is data: its settings (each with a type, a default, a validator and a line of help) and a
``build(settings) -> dict[str, Node]`` that wires stages from the rungs through handoffs.  The CLI's
``--set key=value`` goes through :meth:`LadderSpec.resolve`, so an unknown key lists the valid ones
and a bad value names the field, the value and what was expected.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from ..core.errors import InputError


@dataclasses.dataclass(frozen=True)
class Setting:
    """One ladder setting: dotted name, default, type and validator."""

    name: str
    default: Any
    help: str
    type: type = float
    validate: Callable[[str, Any], Any] | None = None

    def parse(self, text: str) -> Any:
        """Parse a command-line string into this setting's type (then validate)."""
        raw = text.strip()
        try:
            if self.type is bool:
                low = raw.lower()
                if low not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value: Any = low in ("true", "1", "yes")
            elif self.type is tuple:
                value = tuple(int(v) for v in raw.strip("()[] ").split(",") if v.strip())
            elif self.type is int:
                value = int(raw)
            elif self.type is float:
                value = float(raw)
            else:
                value = raw
        except ValueError:
            raise InputError(self.name, text, f"a value of type {self.type.__name__}") from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.type is tuple and isinstance(value, list):
            value = tuple(value)
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise InputError(self.name, value, f"a value of type {self.type.__name__}")
        if self.validate is not None:
            out = self.validate(self.name, value)
            if out is not None:
                value = self.type(out) if self.type in (int, float) else out
        return value


@dataclasses.dataclass(frozen=True)
class LadderSpec:
    """A ready ladder: name, one-line description, settings schema, DAG builder, summariser."""

    name: str
    description: str
    settings: tuple[Setting, ...]
    build: Callable[[dict[str, Any]], dict]
    summarize: Callable[[dict[str, Any], dict[str, Any]], dict] | None = None
    #: cross-field validation of resolved settings (raises InputError); runs in :meth:`resolve`
    check: Callable[[dict[str, Any]], None] | None = None
    #: the report's plots: (name, function(results, ax or axes), figure size, number of axes);
    #: empty = the budget bars of every quantity with an error budget
    plots: tuple = ()
    #: uncertainty source -> the handoff it measures (for ``scaleladder budget``)
    source_handoffs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: result targets whose budgets ``scaleladder budget`` shows first (the ladder's headline)
    headline: tuple = ()
    #: the ladder's multifidelity hierarchy (``scaleladder multifidelity``): settings ->
    #: ``{"quantity", "unit", "models": [(name, node_of_realisation(k), value_of_result)]}``,
    #: the high fidelity first
    fidelities: Callable[[dict[str, Any]], dict] | None = None

    @property
    def defaults(self) -> dict[str, Any]:
        return {s.name: s.default for s in self.settings}

    def setting(self, key: str) -> Setting:
        for s in self.settings:
            if s.name == key:
                return s
        valid = ", ".join(s.name for s in self.settings)
        raise InputError("--set", key, f"one of the {self.name} settings: {valid}")

    def resolve(self, overrides: Mapping[str, Any] | None = None,
                strings: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Defaults updated with typed ``overrides`` and/or command-line ``strings``; all validated."""
        out = self.defaults
        for key, value in (overrides or {}).items():
            out[key] = self.setting(key).check(value)
        for key, text in (strings or {}).items():
            out[key] = self.setting(key).parse(text)
        for s in self.settings:
            out[s.name] = s.check(out[s.name])
        if self.check is not None:
            self.check(out)
        return out


def pyplot():
    """matplotlib.pyplot on the Agg backend (no screen needed), imported lazily."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def draw_budget_bars(ax, qois: Mapping[str, Any]):
    """Stacked horizontal bars: each quantity's variance shares by source (Estimates)."""
    import numpy as np

    sources: list = []
    for est in qois.values():
        for src in est.sources:
            if src not in sources:
                sources.append(src)
    names = list(qois)
    left = np.zeros(len(names))
    for src in sources:
        shares = np.array([qois[q].budget().get(src, 0.0) for q in names])
        ax.barh(names, shares, left=left, label=src)
        left += shares
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share of variance")
    ax.set_title("error budget")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def parse_set_options(items: list[str] | None) -> dict[str, str]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": "1", "c": "x"}``; malformed items raise InputError."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise InputError("--set", item, "key=value")
        k, v = item.split("=", 1)
        if not k.strip():
            raise InputError("--set", item, "key=value with a non-empty key")
        out[k.strip()] = v
    return out


__all__ = ["Setting", "LadderSpec", "parse_set_options", "pyplot", "draw_budget_bars"]
