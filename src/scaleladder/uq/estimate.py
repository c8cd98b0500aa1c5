"""Values with a unit and named sources of uncertainty, and black-box propagation.

An :class:`Estimate` holds a nominal value (a float or an array), its unit (a string understood by
:mod:`scaleladder.core.units`) and, for every named *source* of uncertainty, the samples the value
takes when only that source varies: ``sources[name]`` has shape ``(n_samples, *value.shape)``.

The variance due to one source is the sample variance (``ddof=1``) of its samples; sources are
independent by construction, so the total variance is the sum over sources.  A function applied to
Estimates (:func:`propagate`) is applied to the nominal values and, for each source in the union of
the arguments' sources, to each sample of that source (the other arguments held at their nominal
value, or at their own sample *i* of the same source when they share it -- that is how correlations
between inputs are kept).  Arithmetic and NumPy ufuncs on Estimates use the same mechanism.

Examples
--------
>>> import numpy as np
>>> a = Estimate(5.47, "Å", {"xc": [5.45, 5.49], "fit": [5.46, 5.48, 5.47]})
>>> v = a ** 3 / 8                                   # Å^3 per atom for diamond
>>> sorted(v.budget())
['fit', 'xc']
"""
from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..core import units as _units
from ..core.codec import register
from ..core.errors import InputError, UnitError

__all__ = ["Estimate", "propagate", "one_sigma_samples"]

_ArrayLike = Any


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float, copy=True)
    a.setflags(write=False)
    return a


def _unit_str(unit: Any, field: str = "unit") -> str:
    if unit is None:
        unit = ""
    if not isinstance(unit, str):
        raise UnitError(field, unit, "a unit string such as 'GPa', 'eV/Å^3' or '' (dimensionless)")
    _units.parse_unit(unit)  # raises UnitError if unknown
    return unit


@register("Estimate")
class Estimate:
    """A value with a unit and named sources of uncertainty.

    Parameters
    ----------
    value : float or array_like
        Nominal value (finite).
    unit : str, optional
        Unit string (see :mod:`scaleladder.core.units`); ``""`` means dimensionless.
    sources : dict of str to array_like, optional
        ``sources[name]`` is an array of shape ``(n, *value.shape)`` with ``n >= 2``: the values
        this quantity takes when only that source of uncertainty varies.

    Notes
    -----
    Estimates are immutable: attributes cannot be set and every array they expose is read-only.
    ``value`` is a Python ``float`` for scalar estimates and a read-only ``ndarray`` otherwise.

    Arithmetic (``+ - * / ** neg abs``, ``@``) and NumPy ufuncs (``np.sqrt``, ``np.exp``, ...) work
    with Estimates and plain numbers.  A plain number added to or subtracted from an Estimate is
    taken to be in the Estimate's unit; in products it is dimensionless.  ``+``/``-`` between
    Estimates need compatible units (the right operand is converted into the left one's unit).
    Transcendental functions need a dimensionless argument (``UnitError`` otherwise).

    ``np.asarray(estimate)`` raises ``TypeError`` on purpose (it would silently drop the
    uncertainty): use ``estimate.value``.
    """

    __slots__ = ("_value", "_unit", "_sources")
    __array_priority__ = 1000

    def __init__(self, value: _ArrayLike, unit: str = "", sources: Mapping[str, _ArrayLike] | None = None):
        if isinstance(value, Estimate):
            raise InputError("value", value, "a number or an array (not an Estimate)",
                             hint="use Estimate.with_source or .to to derive a new Estimate")
        try:
            v = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise InputError("value", value, "a finite number or numeric array") from None
        if not np.all(np.isfinite(v)):
            raise InputError("value", value, "finite values only (no NaN/inf)")
        unit = _unit_str(unit)
        srcs: dict[str, np.ndarray] = {}
        if sources is not None:
            if not isinstance(sources, Mapping):
                raise InputError("sources", sources, "a dict mapping source names to sample arrays")
            for name, samples in sources.items():
                srcs[str(name)] = _check_samples(name, samples, v.shape)
        object.__setattr__(self, "_value", _readonly(v))
        object.__setattr__(self, "_unit", unit)
        object.__setattr__(self, "_sources", srcs)

    # -- immutability -------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Estimate is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Estimate is immutable: cannot delete {name!r}")

    def __reduce__(self):
        return (_rebuild, (self._value, self._unit, tuple(self._sources.items())))

    @classmethod
    def _trusted(cls, value: np.ndarray, unit: str, sources: dict[str, np.ndarray]) -> "Estimate":
        """Build from already validated, read-only parts (internal)."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "_value", value)
        object.__setattr__(obj, "_unit", unit)
        object.__setattr__(obj, "_sources", sources)
        return obj

    # -- basic properties ---------------------------------------------------------------------
    @property
    def value(self) -> float | np.ndarray:
        """Nominal value: a float for scalars, a read-only array otherwise."""
        return float(self._value) if self._value.ndim == 0 else self._value

    @property
    def nominal(self) -> float | np.ndarray:
        """Alias of :attr:`value`."""
        return self.value

    @property
    def unit(self) -> str:
        """Unit string."""
        return self._unit

    @property
    def sources(self) -> dict[str, np.ndarray]:
        """A new dict ``name -> samples`` (read-only arrays of shape ``(n, *shape)``)."""
        return dict(self._sources)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.shape

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def size(self) -> int:
        return self._value.size

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a scalar Estimate")
        return self.shape[0]

    def __float__(self) -> float:
        if self.ndim != 0 and self.size != 1:
            raise TypeError(f"only scalar Estimates convert to float (shape {self.shape})")
        return float(self._value.reshape(()))

    def __array__(self, dtype=None, copy=None):
        raise TypeError("an Estimate does not convert to a plain array (that would drop its "
                        "uncertainty): use .value for the nominal value")

    # -- statistics ---------------------------------------------------------------------------
    @property
    def variances(self) -> dict[str, float | np.ndarray]:
        """Per-source variance (sample variance with ``ddof=1``); arrays for array estimates."""
        out: dict[str, float | np.ndarray] = {}
        for name, s in self._sources.items():
            var = np.var(s, axis=0, ddof=1)
            out[name] = float(var) if var.ndim == 0 else var
        return out

    @property
    def variance(self) -> float | np.ndarray:
        """Total variance: the sum of the per-source variances (0 without sources)."""
        tot = np.zeros(self.shape)
        for var in self.variances.values():
            tot = tot + var
        return float(tot) if tot.ndim == 0 else tot

    @property
    def std(self) -> float | np.ndarray:
        """Standard uncertainty: ``sqrt`` of the sum of the per-source variances."""
        v = np.sqrt(self.variance)
        return float(v) if np.ndim(v) == 0 else v

    @property
    def n_samples(self) -> dict[str, int]:
        """Number of samples of each source."""
        return {k: int(s.shape[0]) for k, s in self._sources.items()}

    def budget(self) -> dict[str, float | np.ndarray]:
        """Each source's share of the total variance.

        Returns
        -------
        dict
            ``name -> var_name / sum(var)``.  Shares sum to 1.  For an array-valued Estimate every
            share is an array of the value's shape (element-wise shares).  Where the total variance
            is exactly zero (every source constant) the shares are 0: there is nothing to apportion.
            An Estimate without sources has an empty budget.
        """
        variances = self.variances
        if not variances:
            return {}
        total = np.zeros(self.shape)
        for var in variances.values():
            total = total + var
        out: dict[str, float | np.ndarray] = {}
        safe = np.where(total > 0, total, 1.0)
        for name, var in variances.items():
            share = np.where(total > 0, np.asarray(var) / safe, 0.0)
            out[name] = float(share) if share.ndim == 0 else share
        return out

    def weakest(self) -> str | None:
        """Name of the source with the largest share of the variance (summed over elements)."""
        if not self._sources:
            return None
        return max(self.variances, key=lambda k: float(np.sum(self.variances[k])))

    # -- derived estimates --------------------------------------------------------------------
    def to(self, unit: str) -> "Estimate":
        """The same quantity in another (compatible) unit; samples are converted too."""
        unit = _unit_str(unit)
        f = _units.conversion_factor(self._unit, unit)
        if f == 1.0:
            return Estimate._trusted(self._value, unit, dict(self._sources))
        return Estimate._trusted(_readonly(self._value * f), unit,
                                 {k: _readonly(s * f) for k, s in self._sources.items()})

    def with_source(self, name: str, samples: _ArrayLike, *, replace: bool = False) -> "Estimate":
        """A new Estimate with one more source of uncertainty.

        Parameters
        ----------
        name : str
            Source name.
        samples : array_like
            Shape ``(n, *self.shape)``, ``n >= 2``, in this Estimate's unit.
        replace : bool, optional
            Allow replacing an existing source of that name (otherwise ``InputError``).
        """
        name = str(name)
        if name in self._sources and not replace:
            raise InputError("name", name, "a source name not already present",
                             hint="pass replace=True to replace it")
        srcs = dict(self._sources)
        srcs[name] = _check_samples(name, samples, self.shape)
        return Estimate._trusted(self._value, self._unit, srcs)

    def without_source(self, name: str) -> "Estimate":
        """A new Estimate without the named source."""
        if name not in self._sources:
            raise InputError("name", name, "one of " + ", ".join(map(repr, self._sources)))
        return Estimate._trusted(self._value, self._unit,
                                 {k: s for k, s in self._sources.items() if k != name})

    def __getitem__(self, idx: Any) -> "Estimate":
        if self.ndim == 0:
            raise TypeError("a scalar Estimate cannot be indexed")
        if isinstance(idx, Estimate):
            raise TypeError("cannot index with an Estimate")
        sidx = (slice(None),) + (idx if isinstance(idx, tuple) else (idx,))
        v = self._value[idx]
        return Estimate._trusted(_readonly(v), self._unit,
                                 {k: _readonly(s[sidx]) for k, s in self._sources.items()})

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    @property
    def T(self) -> "Estimate":
        """Transpose (samples transposed alike)."""
        return propagate(np.transpose, self, unit=self._unit)

    def sum(self, axis: int | None = None) -> "Estimate":
        """Sum over an axis (or all elements)."""
        return propagate(functools.partial(np.sum, axis=axis), self, unit=self._unit)

    def mean(self, axis: int | None = None) -> "Estimate":
        """Mean over an axis (or all elements)."""
        return propagate(functools.partial(np.mean, axis=axis), self, unit=self._unit)

    def identical(self, other: Any) -> bool:
        """True if ``other`` has bit-identical value, unit and sources (in the same order)."""
        if not isinstance(other, Estimate) or self._unit != other._unit:
            return False
        if self._value.shape != other._value.shape or self._value.tobytes() != other._value.tobytes():
            return False
        if list(self._sources) != list(other._sources):
            return False
        return all(s.shape == other._sources[k].shape and s.tobytes() == other._sources[k].tobytes()
                   for k, s in self._sources.items())

    # -- codec --------------------------------------------------------------------------------
    def to_state(self) -> dict:
        # a scalar goes to JSON as a float (exact repr round trip; the codec stores arrays >= 1-D)
        value = float(self._value) if self._value.ndim == 0 else np.array(self._value)
        return {"value": value, "unit": self._unit,
                "source_names": list(self._sources),
                "source_samples": [np.array(s) for s in self._sources.values()]}

    @classmethod
    def from_state(cls, state: dict) -> "Estimate":
        return cls(state["value"], state["unit"],
                   dict(zip(state["source_names"], state["source_samples"])))

    # -- arithmetic ---------------------------------------------------------------------------
    def __add__(self, other):
        return _apply_ufunc(np.add, (self, other))

    def __radd__(self, other):
        return _apply_ufunc(np.add, (other, self))

    def __sub__(self, other):
        return _apply_ufunc(np.subtract, (self, other))

    def __rsub__(self, other):
        return _apply_ufunc(np.subtract, (other, self))

    def __mul__(self, other):
        return _apply_ufunc(np.multiply, (self, other))

    def __rmul__(self, other):
        return _apply_ufunc(np.multiply, (other, self))

    def __truediv__(self, other):
        return _apply_ufunc(np.true_divide, (self, other))

    def __rtruediv__(self, other):
        return _apply_ufunc(np.true_divide, (other, self))

    def __pow__(self, other):
        return _apply_ufunc(np.power, (self, other))

    def __rpow__(self, other):
        return _apply_ufunc(np.power, (other, self))

    def __matmul__(self, other):
        return _apply_ufunc(np.matmul, (self, other))

    def __rmatmul__(self, other):
        return _apply_ufunc(np.matmul, (other, self))

    def __neg__(self):
        return _apply_ufunc(np.negative, (self,))

    def __pos__(self):
        return self

    def __abs__(self):
        return _apply_ufunc(np.absolute, (self,))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or kwargs.get("out") is not None:
            return NotImplemented
        if set(kwargs) - {"out"}:
            return NotImplemented
        if ufunc not in _UFUNC_UNITS:
            return NotImplemented
        return _apply_ufunc(ufunc, inputs)

    # comparisons are deliberately not defined element-wise: compare .value explicitly.
    def __bool__(self):
        raise TypeError("the truth value of an Estimate is ambiguous: compare .value explicitly")

    # -- text ---------------------------------------------------------------------------------
    def __format__(self, spec: str) -> str:
        u = f" {self._unit}" if self._unit else ""
        if self.ndim == 0:
            v, s = float(self._value), self.std
            if not self._sources:  # no source of uncertainty: say nothing rather than "± 0"
                return f"{format(v, spec or '.6g')}{u}"
            if spec:
                return f"{format(v, spec)} ± {format(s, spec)}{u}"
            return f"{_pm(v, s)}{u}"
        with np.printoptions(precision=4, suppress=True):
            return f"{np.array2string(np.asarray(self._value))} ± " \
                   f"{np.array2string(np.asarray(self.std))}{u}"

    def __str__(self) -> str:
        return format(self, "")

    def __repr__(self) -> str:
        src = ", ".join(f"{k}[{s.shape[0]}]" for k, s in self._sources.items())
        return f"Estimate({format(self, '')}; sources: {src or 'none'})"

    def summary(self, title: str | None = None) -> str:
        """A text table of the sources with their standard deviation and variance share.

        For array-valued Estimates the std column shows the largest element std of each source and
        the share column that source's share of the variance summed over all elements.
        """
        u = f" {self._unit}" if self._unit else ""
        lines = []
        head = title or "estimate"
        lines.append(f"{head}: {format(self, '')}")
        if not self._sources:
            lines.append("  (no sources of uncertainty)")
            return "\n".join(lines)
        variances = self.variances
        total = sum(float(np.sum(v)) for v in variances.values())
        w = max(12, max(len(k) for k in variances))
        lines.append(f"  {'source':<{w}}  {'n':>5}  {'std':>12}  {'share':>7}")
        for k, var in sorted(variances.items(), key=lambda kv: -float(np.sum(kv[1]))):
            std = float(np.max(np.sqrt(var)))
            share = float(np.sum(var)) / total if total > 0 else 0.0
            lines.append(f"  {k:<{w}}  {self._sources[k].shape[0]:>5d}  {std:>12.4g}  "
                         f"{100 * share:>6.1f}%{'' if k != self.weakest() else '  <- largest'}")
        tot_std = float(np.max(np.sqrt(np.asarray(self.variance))))
        lines.append(f"  {'total':<{w}}  {'':>5}  {tot_std:>12.4g}  {100.0 if total > 0 else 0.0:>6.1f}%")
        if u:
            lines.append(f"  (std in{u})")
        return "\n".join(lines)


def _rebuild(value, unit, items):
    return Estimate._trusted(value, unit, dict(items))


def _pm(v: float, s: float) -> str:
    """Format ``v ± s`` with two significant digits of ``s``; ``(a ± b)e±XX`` for tiny/huge values."""
    ref = abs(v) if v != 0 else s
    if ref > 0 and math.isfinite(ref):
        ex = int(math.floor(math.log10(ref)))
        if ex < -3 or ex > 5:
            scale = 10.0 ** ex
            return f"({_pm(v / scale, s / scale)})e{ex:+03d}"
    if s > 0 and math.isfinite(s):
        dec = max(0, 1 - int(math.floor(math.log10(s))))
        if dec > 12:
            return f"{v:.6g} ± {s:.2g}"
        return f"{v:.{dec}f} ± {s:.{dec}f}"
    return f"{v:.6g} ± 0"


def _check_samples(name: Any, samples: Any, shape: tuple[int, ...]) -> np.ndarray:
    field = f"sources[{name!r}]"
    if not isinstance(name, str) or not name:
        raise InputError("sources", name, "non-empty string source names")
    if isinstance(samples, Estimate):
        raise InputError(field, samples, "an array of samples, not an Estimate")
    try:
        s = np.asarray(samples, dtype=float)
    except (TypeError, ValueError):
        raise InputError(field, samples, "a numeric array of samples") from None
    if s.shape[1:] != tuple(shape) or s.ndim != len(shape) + 1:
        raise InputError(field, f"array of shape {s.shape}",
                         f"shape (n_samples, {', '.join(map(str, shape))}) matching the value"
                         if shape else "shape (n_samples,) for a scalar value")
    if s.shape[0] < 2:
        raise InputError(field, f"{s.shape[0]} sample(s)", "at least 2 samples per source",
                         hint="a source needs a spread to have a variance; drop it or add samples")
    if not np.all(np.isfinite(s)):
        raise InputError(field, "samples with NaN/inf", "finite samples only",
                         hint="the function may be undefined for some samples of this source")
    return _readonly(s)


# ---------------------------------------------------------------------------------------------
# propagation

def _call(fn: Callable, args: tuple, kwargs: dict) -> Any:
    return fn(*args, **kwargs)


def _call_packed(packed: tuple) -> Any:
    fn, args, kwargs = packed
    return fn(*args, **kwargs)


def _nominal_of(x: Any) -> Any:
    return x.value if isinstance(x, Estimate) else x


def _sample_of(x: Any, name: str, i: int) -> Any:
    if isinstance(x, Estimate) and name in x._sources:
        s = x._sources[name][i]
        return float(s) if s.ndim == 0 else s
    return _nominal_of(x)


def _source_counts(args: Iterable[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pos, a in args:
        if not isinstance(a, Estimate):
            continue
        for name, s in a._sources.items():
            n = int(s.shape[0])
            if name in counts and counts[name] != n:
                raise InputError(f"sources[{name!r}]", f"{n} samples in argument {pos}",
                                 f"{counts[name]} samples, as in the other arguments sharing this "
                                 "source", hint="a shared source is combined sample by sample, "
                                 "so every argument needs the same number of samples")
            counts.setdefault(name, n)
    return counts


def _as_result(r: Any, what: str) -> np.ndarray:
    if isinstance(r, Estimate):
        raise InputError("fn", what, "a function returning a number or an array, not an Estimate",
                         hint="propagate applies fn to plain values")
    try:
        return np.asarray(r, dtype=float)
    except (TypeError, ValueError):
        raise InputError("fn", what, "a function returning a number or a numeric array") from None


def propagate(fn: Callable[..., Any], *args: Any, unit: str = "", executor: Any = None,
              **kwargs: Any) -> Estimate:
    """Propagate the sources of uncertainty of Estimate arguments through a black-box function.

    Parameters
    ----------
    fn : callable
        Called with plain values (floats or arrays, each in its argument's own unit); returns a
        float or an array.
    *args, **kwargs
        Arguments of ``fn``; any of them may be Estimates.
    unit : str, optional
        Unit of the result.
    executor : concurrent.futures.Executor, optional
        If given, the sample calls are mapped with ``executor.map`` (``fn`` must then be picklable
        for a process pool).

    Returns
    -------
    Estimate
        Nominal value ``fn(nominals)``.  For every source in the union of the arguments' sources
        and every sample ``i``, ``fn`` is called with each Estimate argument's ``i``-th sample of
        that source (its nominal value where the argument lacks the source).

    Raises
    ------
    InputError
        A source shared by several arguments with different sample counts; ``fn`` returning
        arrays of inconsistent shape or non-finite values.
    """
    unit = _unit_str(unit)
    items = [(i, a) for i, a in enumerate(args)] + [(k, v) for k, v in kwargs.items()]
    counts = _source_counts(items)
    nom_args = tuple(_nominal_of(a) for a in args)
    nom_kwargs = {k: _nominal_of(v) for k, v in kwargs.items()}
    nominal = _as_result(fn(*nom_args, **nom_kwargs), "nominal call")
    calls: list[tuple] = []
    index: list[tuple[str, int]] = []
    for name, n in counts.items():
        for i in range(n):
            calls.append((fn, tuple(_sample_of(a, name, i) for a in args),
                          {k: _sample_of(v, name, i) for k, v in kwargs.items()}))
            index.append((name, i))
    if executor is not None and calls:
        results = list(executor.map(_call_packed, calls))
    else:
        results = [_call(*c) for c in calls]
    sources: dict[str, list[np.ndarray]] = {name: [] for name in counts}
    for (name, i), r in zip(index, results):
        r = _as_result(r, f"sample {i} of source {name!r}")
        if r.shape != nominal.shape:
            raise InputError("fn", f"result of shape {r.shape} for sample {i} of source {name!r}",
                             f"the nominal result's shape {nominal.shape}")
        sources[name].append(r)
    if not np.all(np.isfinite(nominal)):
        raise InputError("fn", "non-finite nominal result", "a finite result at the nominal inputs")
    return Estimate(nominal, unit, {k: np.stack(v) for k, v in sources.items()})


def _propagate_elementwise(ufunc: Callable, args: tuple, unit: str) -> Estimate:
    """:func:`propagate` for a broadcasting element-wise function, vectorised over samples.

    Gives the same result as ``propagate(ufunc, *args)`` (same sample pairing, same nominal
    substitution) with one call per source instead of one call per sample.
    """
    items = list(enumerate(args))
    counts = _source_counts(items)
    nom = [np.asarray(_nominal_of(a), dtype=float) for a in args]
    with np.errstate(all="ignore"):
        nominal = np.asarray(ufunc(*nom), dtype=float)
    if not np.all(np.isfinite(nominal)):
        raise InputError(getattr(ufunc, "__name__", "fn"), "non-finite nominal result",
                         "arguments inside the function's domain")
    r = nominal.ndim
    sources: dict[str, np.ndarray] = {}
    for name in counts:
        sargs = []
        for a, v in zip(args, nom):
            if isinstance(a, Estimate) and name in a._sources:
                s = a._sources[name]
                sargs.append(s.reshape((s.shape[0],) + (1,) * (r - a.ndim) + a.shape))
            else:
                sargs.append(v)
        with np.errstate(all="ignore"):
            out = np.asarray(ufunc(*sargs), dtype=float)
        sources[name] = np.broadcast_to(out, (counts[name],) + nominal.shape)
    return Estimate(nominal, unit, sources)


# ---------------------------------------------------------------------------------------------
# unit rules for ufuncs

_SAME = "same"          # unary, unit unchanged
_DIMLESS = "dimless"    # unary, argument must be dimensionless, result dimensionless
_ADD = "add"            # binary, compatible units, result in the left unit
_MUL = "mul"
_DIV = "div"
_POW = "pow"
_MATMUL = "matmul"
_ATAN2 = "atan2"

_UFUNC_UNITS: dict[Any, Any] = {
    np.add: _ADD, np.subtract: _ADD, np.multiply: _MUL, np.true_divide: _DIV,
    np.power: _POW, np.matmul: _MATMUL, np.arctan2: _ATAN2,
    np.negative: _SAME, np.positive: _SAME, np.absolute: _SAME,
    np.sqrt: 0.5, np.square: 2.0, np.cbrt: 1.0 / 3.0,
    np.reciprocal: -1.0,
}
for _f in (np.exp, np.expm1, np.exp2, np.log, np.log2, np.log10, np.log1p, np.sin, np.cos,
           np.tan, np.arcsin, np.arccos, np.arctan, np.sinh, np.cosh, np.tanh, np.arcsinh,
           np.arccosh, np.arctanh):
    _UFUNC_UNITS[_f] = _DIMLESS


def _unit_of(x: Any) -> str:
    return x._unit if isinstance(x, Estimate) else ""


def _to_dimensionless(x: Any, fname: str) -> Any:
    if not isinstance(x, Estimate):
        return x
    u = _units.parse_unit(x._unit)
    if not u.dimensionless:
        raise UnitError(f"{fname} argument unit", x._unit, "a dimensionless quantity")
    return x.to("") if x._unit else x


def _checked_power_unit(u: str, p: float) -> str:
    """``units.power`` with a check that the string it writes is exact."""
    if not u or u == "1" or p == 1:
        return "" if u == "1" else u
    out = _units.power(u, p)
    a, b = _units.parse_unit(u), _units.parse_unit(out)
    want = np.asarray(a.dims) * p
    if not (np.allclose(b.dims, want, rtol=0.0, atol=1e-12) and math.isclose(b.factor, a.factor ** p, rel_tol=1e-12)):
        raise UnitError("unit", u, f"a unit whose power {p!r} can be written exactly",
                        hint="convert to a dimensionless quantity first or use a power that "
                             "gives integer or short decimal exponents")
    return out


def _scalar_exponent(p: Any) -> float | None:
    if isinstance(p, Estimate):
        if p._sources or p.ndim != 0:
            return None
        return float(p._value)
    arr = np.asarray(p, dtype=float)
    if arr.ndim == 0:
        return float(arr)
    if arr.size and np.all(arr == arr.flat[0]):
        return float(arr.flat[0])
    return None


def _apply_ufunc(ufunc: Any, inputs: tuple) -> Estimate:
    rule = _UFUNC_UNITS.get(ufunc)
    fname = getattr(ufunc, "__name__", str(ufunc))
    for x in inputs:
        if not isinstance(x, (Estimate, numbers.Number, np.ndarray, list, tuple, np.generic)):
            return NotImplemented  # type: ignore[return-value]
    if rule is None:
        return NotImplemented  # type: ignore[return-value]
    if rule == _SAME:
        (x,) = inputs
        return _propagate_elementwise(ufunc, (x,), x._unit)
    if isinstance(rule, float):
        (x,) = inputs
        return _propagate_elementwise(ufunc, (x,), _checked_power_unit(x._unit, rule))
    if rule == _DIMLESS:
        (x,) = inputs
        return _propagate_elementwise(ufunc, (_to_dimensionless(x, fname),), "")
    a, b = inputs
    if rule == _ADD or rule == _ATAN2:
        ua = _unit_of(a) if isinstance(a, Estimate) else _unit_of(b)
        ub = _unit_of(b) if isinstance(b, Estimate) else ua
        if isinstance(a, Estimate) and isinstance(b, Estimate):
            if not _units.same_dimension(ua, ub):
                raise UnitError(f"{fname} operand unit", ub, f"a unit compatible with {ua!r}")
            b = b.to(ua) if ub != ua else b
        return _propagate_elementwise(ufunc, (a, b), ua if rule == _ADD else "")
    if rule == _MUL:
        return _propagate_elementwise(ufunc, (a, b), _units.multiply(_unit_of(a), _unit_of(b)))
    if rule == _DIV:
        return _propagate_elementwise(ufunc, (a, b), _units.divide(_unit_of(a), _unit_of(b)))
    if rule == _MATMUL:
        return propagate(np.matmul, a, b, unit=_units.multiply(_unit_of(a), _unit_of(b)))
    if rule == _POW:
        if isinstance(b, Estimate):
            b = _to_dimensionless(b, "power exponent")
        ua = _unit_of(a)
        if not ua or (_units.parse_unit(ua).dimensionless):
            a = _to_dimensionless(a, "power base")
            return _propagate_elementwise(ufunc, (a, b), "")
        p = _scalar_exponent(b)
        if p is None:
            raise UnitError("power base unit", ua, "a dimensionless base when the exponent is "
                            "uncertain or varies element-wise")
        return _propagate_elementwise(ufunc, (a, b), _checked_power_unit(ua, p))
    return NotImplemented  # type: ignore[return-value]


def one_sigma_samples(value: _ArrayLike, sigma: _ArrayLike) -> np.ndarray:
    """The samples of a source known as a one-sigma error: ``value ± σ/√2``.

    Their sample standard deviation (ddof = 1, the Estimate's convention) is exactly ``σ``, so a
    one-sigma error (a finite-size correction, a discretisation error from Richardson
    extrapolation, a standard error of a mean) enters a budget on the same footing as a source
    given by alternatives.  Returns an array of shape ``(2, *shape)``.
    """
    value = np.asarray(value, dtype=float)
    d = np.asarray(sigma, dtype=float) / math.sqrt(2.0)
    if not (np.all(np.isfinite(value)) and np.all(np.isfinite(d))):
        from ..core.errors import InputError

        raise InputError("sigma", np.asarray(sigma).tolist(), "finite errors (the sign of an "
                         "entry only orders its two samples)")
    return np.stack([value + d, value - d])
