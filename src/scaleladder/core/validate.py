"""Small input validators shared by every public entry point.

Each raises :class:`~scaleladder.core.errors.InputError` naming the field, the value and the
expectation, so no entry point ever fails with a bare exception or returns NaN for bad input.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import InputError


def finite(field: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(field, value, "a finite real number") from None
    if not math.isfinite(v):
        raise InputError(field, value, "a finite real number")
    return v


def positive(field: str, value: Any) -> float:
    v = finite(field, value)
    if v <= 0:
        raise InputError(field, value, "a positive number (> 0)")
    return v


def nonnegative(field: str, value: Any) -> float:
    v = finite(field, value)
    if v < 0:
        raise InputError(field, value, "a non-negative number (>= 0)")
    return v


def nonzero(field: str, value: Any) -> float:
    v = finite(field, value)
    if v == 0:
        raise InputError(field, value, "a non-zero number")
    return v


def positive_int(field: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InputError(field, value, f"an integer >= {minimum}")
    if value < minimum:
        raise InputError(field, value, f"an integer >= {minimum}")
    return int(value)


def in_range(field: str, value: Any, lo: float, hi: float, *, inclusive: bool = True) -> float:
    v = finite(field, value)
    ok = lo <= v <= hi if inclusive else lo < v < hi
    if not ok:
        br = "[]" if inclusive else "()"
        raise InputError(field, value, f"a number in {br[0]}{lo}, {hi}{br[1]}")
    return v


def one_of(field: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = list(choices)
    if value not in choices:
        raise InputError(field, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def kmesh(field: str, value: Any) -> tuple[int, int, int]:
    """A Monkhorst-Pack mesh: an int n (-> n,n,n) or three positive ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value),) * 3
    try:
        vals = tuple(value)
    except TypeError:
        raise InputError(field, value, "a positive integer or three positive integers") from None
    if len(vals) != 3:
        raise InputError(field, value, "a positive integer or three positive integers")
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise InputError(field, value, "a positive integer or three positive integers")
        out.append(int(v))
    return tuple(out)  # type: ignore[return-value]


def finite_array(field: str, value: Any, shape: Sequence[int | None] | None = None) -> np.ndarray:
    """A finite float array, optionally of a given shape (None = any length on that axis)."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(field, value, "a numeric array") from None
    if shape is not None:
        ok = arr.ndim == len(shape) and all(s is None or s == n for s, n in zip(shape, arr.shape))
        if not ok:
            want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
            raise InputError(field, f"array of shape {arr.shape}", f"shape {want}")
    if not np.all(np.isfinite(arr)):
        raise InputError(field, "array with NaN/inf", "finite values only")
    return arr


__all__ = ["finite", "positive", "nonnegative", "nonzero", "positive_int", "in_range", "one_of",
           "kmesh", "finite_array"]


def seed(field: str, value: Any) -> int:
    """A random seed: an integer in [0, 2**63) (NumPy's SeedSequence refuses negatives)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(field, value, "an integer seed in [0, 2**63)")
    if not 0 <= int(value) < 2 ** 63:
        raise InputError(field, value, "an integer seed in [0, 2**63) (no negative seeds)")
    return int(value)
