"""scaleladder: multiscale materials modelling with units, provenance and error budgets.

``import scaleladder as sl`` is cheap: heavy engines (PySCF, numba kernels, scikit-fem) load only
when first used.  The names below resolve lazily::

    sl.Estimate, sl.propagate                      # uq
    sl.ElasticTensor, sl.SurfaceEnergy, ...        # handoffs
    sl.Store, sl.Runner, sl.stage                  # core
    sl.get_ladder("silicon-fracture")              # ready ladders
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "Estimate": "scaleladder.uq", "propagate": "scaleladder.uq",
    "ReferenceDataset": "scaleladder.handoffs", "Configuration": "scaleladder.handoffs",
    "EquationOfState": "scaleladder.handoffs", "FittedPotential": "scaleladder.handoffs",
    "ElasticTensor": "scaleladder.handoffs", "SurfaceEnergy": "scaleladder.handoffs",
    "Store": "scaleladder.core.store", "Runner": "scaleladder.core.pipeline",
    "stage": "scaleladder.core.pipeline",
    "get_ladder": "scaleladder.ladders", "available_ladders": "scaleladder.ladders",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'scaleladder' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


__all__ = list(_LAZY)
