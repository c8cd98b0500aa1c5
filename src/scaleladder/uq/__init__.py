"""scaleladder.uq: values with units and named sources of uncertainty, propagation and budgets."""
from .estimate import Estimate, propagate

__all__ = ["Estimate", "propagate"]
