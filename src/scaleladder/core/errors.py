"""One error hierarchy for scaleladder.

Every error a user can meet derives from :class:`ScaleLadderError`.  Input errors name the
field, the value and what was expected; failed calculations say what failed and what to change.
"""
from __future__ import annotations

from typing import Any


class ScaleLadderError(Exception):
    """Base class of every scaleladder error."""


class InputError(ScaleLadderError, ValueError):
    """Bad input: names the field, the value given and what was expected."""

    def __init__(self, field: str, value: Any, expected: str, hint: str | None = None):
        self.field = field
        self.value = value
        self.expected = expected
        self.hint = hint
        msg = f"{field}={value!r}: expected {expected}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class UnitError(InputError):
    """A unit that is unknown or incompatible with what was expected."""


class StabilityError(InputError):
    """A tensor or structure that violates a physical stability condition (e.g. Born)."""


class ConvergenceError(ScaleLadderError, RuntimeError):
    """A calculation that did not converge (SCF, relaxation, fit).

    Says which configuration failed, which settings were tried and what to change.
    """

    def __init__(self, what: str, configuration: str = "", settings: dict | None = None,
                 suggestion: str = ""):
        self.what = what
        self.configuration = configuration
        self.settings = dict(settings or {})
        self.suggestion = suggestion
        parts = [what]
        if configuration:
            parts.append(f"configuration: {configuration}")
        if self.settings:
            parts.append("settings tried: " + ", ".join(f"{k}={v!r}" for k, v in self.settings.items()))
        if suggestion:
            parts.append(f"what to change: {suggestion}")
        super().__init__("; ".join(parts))


class CalculationError(ScaleLadderError, RuntimeError):
    """A calculation that failed for a reason other than convergence (e.g. an MD run that blew up)."""


class PropertyNotImplementedError(ScaleLadderError, NotImplementedError):
    """A property a model cannot provide (e.g. the energy of a non-conservative coupling)."""


class StoreError(ScaleLadderError, RuntimeError):
    """A problem with the artifact store."""


class StoreCorruptionError(StoreError):
    """A stored blob whose content no longer matches its recorded hash."""


class StoreFullError(StoreError):
    """The disk (or quota) that holds the store is full: nothing was half-written."""


class StoreReadOnlyError(StoreError):
    """The store is on a read-only file system or folder and a write was needed."""


class StoreIndexError(StoreError):
    """The store's index is missing under existing blobs, or damaged: rebuild it from the blobs."""


class ExecutorError(ScaleLadderError, RuntimeError):
    """The executor (process pool, Dask cluster) failed: names the stage, what happened, what to do."""


class MissingExtraError(ScaleLadderError, ImportError):
    """An optional dependency is missing; names the extra that installs it."""

    def __init__(self, package: str, extra: str, purpose: str = ""):
        self.package = package
        self.extra = extra
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(f"{package} is not installed{what}: pip install 'scaleladder[{extra}]'")


class DomainWarning(UserWarning):
    """A model used outside the domain it was trained or validated on."""


__all__ = [
    "ScaleLadderError", "InputError", "UnitError", "StabilityError", "ConvergenceError",
    "CalculationError", "PropertyNotImplementedError", "StoreError", "StoreCorruptionError",
    "StoreFullError", "StoreReadOnlyError", "StoreIndexError", "ExecutorError",
    "MissingExtraError", "DomainWarning",
]
