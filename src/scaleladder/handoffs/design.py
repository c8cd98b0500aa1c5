"""The result of an inverse design: the inputs that meet a target property with a stated
probability, and how they were found."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.codec import register
from ..core.errors import InputError
from ..uq import Estimate
from ._common import DataclassCodec, check_str, setf, str_dict

__all__ = ["Design"]

RELATIONS = (">=", "<=", "=")


@register("Design")
@dataclass(frozen=True, eq=False)
class Design(DataclassCodec):
    """Inputs found by :func:`scaleladder.workflows.design.design`.

    Parameters
    ----------
    quantity, relation, target, unit
        The target: ``quantity relation target`` (``>=``, ``<=`` or ``=``) in ``unit``.
    confidence
        For ``>=``/``<=``: the probability with which the design meets the target given its
        budget (the quantity taken as Gaussian with the Estimate's standard deviation); for
        ``=``: the central probability of the input interval (inputs whose band of that
        probability contains the target).
    inputs
        The design point: varied input -> value (the boundary of the feasible set for an
        inequality).
    feasible
        For one varied input and an inequality: the feasible intervals ``[[lo, hi], ...]``
        found in the searched range; else empty.
    input_interval
        For one varied input and ``=``: ``[lo, hi]`` of the inputs whose central band contains
        the target (empty where the band's edges leave the searched range).
    predicted
        The quantity (an Estimate) at the design point.
    probability
        For an inequality, the probability that the design point meets it; for ``=``, that the
        quantity lies below the target there (0.5 where the nominal value hits it).
    evaluations
        Every evaluation: ``{"inputs": {...}, "value": nominal, "std": ..., "cached": bool}``.
    optimizer, provenance
        How the search ran (method, tolerance, bracket) and what was evaluated (ladder, store
        keys, settings).
    """

    quantity: str
    relation: str
    target: float
    unit: str
    confidence: float
    inputs: dict
    predicted: Estimate
    probability: float
    evaluations: list
    optimizer: dict
    feasible: list = field(default_factory=list)
    input_interval: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_str("quantity", self.quantity, allow_empty=False)
        if self.relation not in RELATIONS:
            raise InputError("relation", self.relation, f"one of {', '.join(RELATIONS)}")
        if not 0.0 < float(self.confidence) < 1.0:
            raise InputError("confidence", self.confidence, "a probability in (0, 1)")
        if not isinstance(self.predicted, Estimate):
            raise InputError("predicted", type(self.predicted).__name__, "an Estimate")
        setf(self, "inputs", {str(k): float(v) for k, v in str_dict("inputs",
                                                                    self.inputs).items()})
        setf(self, "target", float(self.target))
        setf(self, "confidence", float(self.confidence))
        setf(self, "probability", float(self.probability))
        setf(self, "optimizer", str_dict("optimizer", self.optimizer))
        setf(self, "provenance", str_dict("provenance", self.provenance))
        setf(self, "evaluations", list(self.evaluations))
        setf(self, "feasible", [list(map(float, iv)) for iv in self.feasible])
        setf(self, "input_interval", list(map(float, self.input_interval)))

    def __str__(self) -> str:
        pts = ", ".join(f"{k} = {v:.6g}" for k, v in self.inputs.items())
        return (f"Design({self.quantity} {self.relation} {self.target:g} {self.unit} with "
                f"P >= {self.confidence:g}: {pts}; {self.quantity} there = {self.predicted}, "
                f"P = {self.probability:.3f}; {len(self.evaluations)} evaluations)")
