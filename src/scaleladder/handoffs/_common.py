"""Helpers shared by the handoff artifacts (internal)."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..core import units as _units
from ..core.errors import InputError, UnitError
from ..uq import Estimate


class DataclassCodec:
    """Mixin: ``to_state``/``from_state`` for frozen dataclasses (every field, by name)."""

    def to_state(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_state(cls, state: dict):
        return cls(**state)

    def replace(self, **changes: Any):
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def setf(obj: Any, name: str, value: Any) -> None:
    """Set a field of a frozen dataclass from ``__post_init__``."""
    object.__setattr__(obj, name, value)


def ro_array(a: Any, dtype: Any = float) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


def str_dict(field: str, value: Any) -> dict:
    """A shallow copy of a dict with string keys (``None`` -> ``{}``)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise InputError(field, value, "a dict with string keys")
    return dict(value)


def check_str(field: str, value: Any, allow_empty: bool = True) -> str:
    if not isinstance(value, str) or (not allow_empty and not value):
        raise InputError(field, value, "a string" if allow_empty else "a non-empty string")
    return value


def check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(field, value, "True or False")
    return bool(value)


def estimate_in(field: str, value: Any, unit: str, shape: tuple | None = None,
                allow_plain: bool = False) -> Estimate:
    """``value`` as an Estimate converted to ``unit`` (plain numbers allowed if ``allow_plain``)."""
    if not isinstance(value, Estimate):
        if allow_plain:
            try:
                value = Estimate(value, unit)
            except InputError:
                raise InputError(field, value, f"an Estimate or a finite number in {unit}") from None
        else:
            raise InputError(field, value, f"an Estimate in a unit convertible to {unit!r}",
                             hint="wrap the number: scaleladder.uq.Estimate(value, unit, sources)")
    if not _units.same_dimension(value.unit, unit):
        raise UnitError(f"{field}.unit", value.unit, f"a unit convertible to {unit!r}")
    if value.unit != unit:
        value = value.to(unit)
    if shape is not None and value.shape != tuple(shape):
        raise InputError(field, f"Estimate of shape {value.shape}", f"shape {tuple(shape)}")
    return value
