"""Thermally activated lattice events for kinetic Monte Carlo: barriers, attempt frequencies and
the neighbour shells / hop vectors they apply to.

An :class:`EventType` is one kind of jump (e.g. "a vacancy exchanges with a nearest neighbour")
with its barrier ``E_b`` (Estimate, eV) and its attempt frequency ``ν`` (Estimate in THz =
``"1/ps"``, given, or taken from a :class:`~scaleladder.handoffs.phonons.HarmonicTSTPrefactor`);
an :class:`EventCatalog` is the set of event types of a model.  Its Arrhenius rates
``k = ν exp(-E_b / k_B T)`` come in 1/s with the uncertainty sources of barriers and prefactors
propagated (:meth:`EventCatalog.rates`).

Both artifacts are frozen, validated when built (``InputError`` naming the field, the value and
the expectation) and codec-registered.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.codec import register
from ..core.errors import InputError
from ..core.units import BOLTZMANN_EV
from ..core.validate import finite, finite_array, positive_int
from ..uq import Estimate, propagate
from ._common import DataclassCodec, check_str, estimate_in, ro_array, setf, str_dict
from .defects import MigrationBarrier
from .phonons import THZ, HarmonicTSTPrefactor
from .potential import check_domain_warnings

__all__ = ["EventType", "EventCatalog"]


@register("EventType")
@dataclass(frozen=True, eq=False)
class EventType(DataclassCodec):
    """One kind of thermally activated lattice jump.

    Parameters
    ----------
    name : str
        Non-empty label, unique within a catalog (e.g. ``"vacancy-nn"``).
    barrier : Estimate or MigrationBarrier
        Scalar barrier ``E_saddle - E_initial``, unit convertible to eV (stored in eV), >= 0.
        A :class:`~scaleladder.handoffs.defects.MigrationBarrier` gives its forward barrier (and
        its ``domain_warnings``).
    prefactor : Estimate or HarmonicTSTPrefactor
        Attempt frequency ν, a frequency unit (stored in THz = ``"1/ps"``), > 0.  A
        :class:`~scaleladder.handoffs.phonons.HarmonicTSTPrefactor` gives its Vineyard ν*
        (recorded in ``provenance["prefactor_from"]``, its domain warnings kept).
    shell : int, optional
        Neighbour shell the jump goes to (1 = nearest neighbours, 2 = second, ...).
    hop_vectors : array_like, shape (k, 3), optional
        The jump vectors (Å, from the initial to the final site) of the shell this event applies
        to; empty (default) means every vector of the shell.
    provenance : dict, optional
        Free-form record of where the numbers come from.
    domain_warnings : tuple of str, optional
        Where the inputs were computed outside the training domain of a fitted potential
        (merged with those of a MigrationBarrier / HarmonicTSTPrefactor given as input).

    Raises
    ------
    InputError
        An empty name, a negative or non-finite barrier (the error names ``barrier`` and the
        event), a non-positive prefactor, units that are not an energy / a frequency, a shell
        < 1, hop vectors that are not finite (k, 3) and non-zero.
    """

    name: str
    barrier: Estimate
    prefactor: Estimate
    shell: int = 1
    hop_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    provenance: dict = field(default_factory=dict)
    domain_warnings: tuple = ()

    def __post_init__(self) -> None:
        check_str("name", self.name, allow_empty=False)
        prov = str_dict("provenance", self.provenance)
        warn = list(check_domain_warnings("domain_warnings", self.domain_warnings))
        eb = self.barrier
        if isinstance(eb, MigrationBarrier):
            warn += [w for w in eb.domain_warnings if w not in warn]
            prov.setdefault("barrier_from", f"MigrationBarrier ({eb.method or 'unknown method'})")
            eb = eb.value
        eb = estimate_in("barrier", eb, "eV", (), allow_plain=False)
        if not np.isfinite(eb.value):
            raise InputError("barrier", str(eb), f"a finite barrier in eV (event {self.name!r})")
        if eb.value < 0:
            raise InputError("barrier", str(eb), f"a barrier >= 0 eV (event {self.name!r})",
                             hint="a saddle below the initial state: the initial state is not a "
                                  "minimum or the path is not converged")
        setf(self, "barrier", eb)
        pre = self.prefactor
        if isinstance(pre, HarmonicTSTPrefactor):
            warn += [w for w in pre.domain_warnings if w not in warn]
            prov.setdefault("prefactor_from", "HarmonicTSTPrefactor (Vineyard)")
            pre = pre.prefactor
        pre = estimate_in("prefactor", pre, THZ, (), allow_plain=False)
        if not (np.isfinite(pre.value) and pre.value > 0):
            raise InputError("prefactor", str(pre),
                             f"a positive attempt frequency in THz (event {self.name!r})")
        setf(self, "prefactor", pre)
        setf(self, "shell", positive_int("shell", self.shell))
        hv = finite_array("hop_vectors", self.hop_vectors if self.hop_vectors is not None
                          else np.zeros((0, 3)), (None, 3))
        if len(hv) and np.any(np.linalg.norm(hv, axis=1) < 1e-9):
            raise InputError("hop_vectors", hv.tolist(), "non-zero jump vectors (Å)")
        setf(self, "hop_vectors", ro_array(hv))
        setf(self, "provenance", prov)
        setf(self, "domain_warnings", tuple(warn))

    def rate(self, temperature_K: float) -> Estimate:
        """Arrhenius rate ``ν exp(-E_b / k_B T)`` in 1/s (sources propagated).

        Raises
        ------
        InputError
            ``temperature_K`` not finite or <= 0.
        """
        kt = BOLTZMANN_EV * _temperature(temperature_K)
        return propagate(lambda nu, e: nu * 1e12 * np.exp(-e / kt), self.prefactor, self.barrier,
                         unit="1/s")

    def __str__(self) -> str:
        where = f"shell {self.shell}" + (f", {len(self.hop_vectors)} hop vectors"
                                         if len(self.hop_vectors) else "")
        return (f"EventType({self.name!r}, {where}): barrier {self.barrier}, "
                f"prefactor {self.prefactor} THz")


def _temperature(temperature_K) -> float:
    t = finite("temperature_K", temperature_K)
    if t <= 0:
        raise InputError("temperature_K", temperature_K, "a temperature > 0 K")
    return t


@register("EventCatalog")
@dataclass(frozen=True, eq=False)
class EventCatalog(DataclassCodec):
    """The event types of a lattice kinetic Monte Carlo model.

    Parameters
    ----------
    events : sequence of EventType
        At least one; names unique.  Two events may share a shell (their rates add on the hops
        both apply to).
    provenance : dict, optional
        Free-form record (which potential, which NEB settings, ...).

    Raises
    ------
    InputError
        An empty catalog, an element that is not an :class:`EventType`, duplicate names.

    Examples
    --------
    >>> from scaleladder.uq import Estimate
    >>> cat = EventCatalog((EventType("vac", Estimate(0.7, "eV"), Estimate(5.0, "1/ps")),))
    >>> round(float(cat.rates(1000.0).value[0]) / 1e9, 3)   # 5e12 exp(-0.7 / kT), in 1e9/s
    1.483
    """

    events: tuple
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.events, EventType):
            raise InputError("events", str(self.events),
                             "a sequence of EventType (wrap it in a tuple)")
        try:
            events = tuple(self.events)
        except TypeError:
            raise InputError("events", self.events, "a sequence of EventType") from None
        if not events:
            raise InputError("events", "()", "at least one EventType",
                             hint="an empty catalog has no events: nothing could ever happen")
        for i, e in enumerate(events):
            if not isinstance(e, EventType):
                raise InputError(f"events[{i}]", repr(e), "an EventType")
        names = [e.name for e in events]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InputError("events", f"duplicate names {dup}", "unique event names")
        setf(self, "events", events)
        setf(self, "provenance", str_dict("provenance", self.provenance))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.events)

    @property
    def shells(self) -> tuple[int, ...]:
        """The neighbour shells the events use (sorted, distinct)."""
        return tuple(sorted({e.shell for e in self.events}))

    @property
    def domain_warnings(self) -> tuple[str, ...]:
        out: list[str] = []
        for e in self.events:
            out += [w for w in e.domain_warnings if w not in out]
        return tuple(out)

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self):
        return iter(self.events)

    def event(self, name: str) -> EventType:
        """The event called ``name`` (``InputError`` if there is none)."""
        for e in self.events:
            if e.name == name:
                return e
        raise InputError("name", name, "one of " + ", ".join(repr(n) for n in self.names))

    def rates(self, temperature_K: float) -> Estimate:
        """Arrhenius rates ``k_i = ν_i exp(-E_b,i / k_B T)`` of every event, in 1/s.

        Parameters
        ----------
        temperature_K : float
            Temperature (K), > 0.

        Returns
        -------
        Estimate
            Shape ``(len(self),)``, unit ``"1/s"``, in the order of ``events``; the sources of
            every barrier and prefactor propagated (shared sources stay correlated).

        Raises
        ------
        InputError
            ``temperature_K`` not finite or <= 0.
        """
        kt = BOLTZMANN_EV * _temperature(temperature_K)
        n = len(self.events)

        def fn(*args):
            nu = np.array(args[:n], dtype=float)
            eb = np.array(args[n:], dtype=float)
            return nu * 1e12 * np.exp(-eb / kt)

        return propagate(fn, *[e.prefactor for e in self.events],
                         *[e.barrier for e in self.events], unit="1/s")

    def rate_values(self, temperature_K: float) -> np.ndarray:
        """Nominal rates (1/s) of every event at ``temperature_K`` (no propagation)."""
        kt = BOLTZMANN_EV * _temperature(temperature_K)
        return np.array([float(e.prefactor.value) * 1e12 * np.exp(-float(e.barrier.value) / kt)
                         for e in self.events])

    def __str__(self) -> str:
        return f"EventCatalog({len(self.events)} events: " + ", ".join(self.names) + ")"
