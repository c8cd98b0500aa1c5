"""scaleladder.uq: values with units and named sources of uncertainty, propagation and budgets."""
from .estimate import Estimate, one_sigma_samples, propagate

__all__ = ["Estimate", "propagate", "one_sigma_samples"]
