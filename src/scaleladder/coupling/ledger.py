"""The energy ledger of a coupling: its total energy term by term, with a double-counting check.

Each term of a coupled energy (an MM energy of the whole system, a QM energy of the model
system, a QM–MM interaction, ...) records which classes of pairwise interaction it contains and
how often: ``covers = {"QM-QM": 1, "QM-MM": 1, "MM-MM": 1}`` for an MM energy of everything,
``{"QM-QM": 1}`` for a QM (or MM) energy of the QM region alone, and so on.  A coupled energy
counts every pairwise interaction exactly once when, for each class,

    sum over terms of sign * multiplicity == 1.

The ONIOM ledger ``+E_MM(all) + E_QM(QM) - E_MM(QM)`` nets to 1 for each class; an additive
ledger ``E_QM(QM) + E_MM(MM) + E_QM-MM`` does too.  :meth:`EnergyLedger.check` raises
:class:`~scaleladder.core.errors.CalculationError` when a class is counted zero or twice.

Energies in eV.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..core import validate
from ..core.errors import CalculationError, InputError

__all__ = ["EnergyLedger", "LedgerTerm", "PAIR_CLASSES"]

#: The pair classes a ledger accounts for.
PAIR_CLASSES = ("QM-QM", "QM-MM", "MM-MM")


@dataclass(frozen=True)
class LedgerTerm:
    """One term of a ledger.

    Attributes
    ----------
    name : str
        What the term is (e.g. ``"E_MM(all)"``).
    energy : float
        Its energy in eV, before the sign.
    sign : int
        +1 (added) or -1 (subtracted).
    covers : dict
        Pair class (one of :data:`PAIR_CLASSES`) -> multiplicity (non-negative int): how many
        times the term contains each pairwise interaction of that class.
    note : str
        Free text (e.g. what the link atoms contribute).
    """

    name: str
    energy: float
    sign: int = 1
    covers: Mapping[str, int] = field(default_factory=dict)
    note: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise InputError("name", self.name, "a non-empty string")
        object.__setattr__(self, "energy", validate.finite("energy", self.energy))
        if isinstance(self.sign, bool) or self.sign not in (1, -1):
            raise InputError("sign", self.sign, "+1 or -1")
        object.__setattr__(self, "sign", int(self.sign))
        if not isinstance(self.covers, Mapping):
            raise InputError("covers", self.covers, "a dict pair class -> multiplicity")
        cov = {}
        for k, v in self.covers.items():
            validate.one_of("covers", k, PAIR_CLASSES)
            cov[k] = validate.positive_int(f"covers[{k!r}]", v, minimum=0)
        object.__setattr__(self, "covers", cov)

    @property
    def signed_energy(self) -> float:
        """``sign * energy`` in eV: what the term adds to the total."""
        return self.sign * self.energy


class EnergyLedger:
    """Ordered terms of a coupled energy, their total and the count of each pair class.

    Parameters
    ----------
    scheme : str
        Name of the coupling scheme (shown in the table).
    terms : iterable of LedgerTerm, optional
        Initial terms.
    """

    def __init__(self, scheme: str = "", terms: Any = ()):
        self.scheme = str(scheme)
        self._terms: list[LedgerTerm] = []
        for t in terms:
            if not isinstance(t, LedgerTerm):
                raise InputError("terms", t, "LedgerTerm instances")
            self._terms.append(t)

    def add(self, name: str, energy: float, sign: int = 1, covers: Mapping[str, int] | None = None,
            note: str = "") -> LedgerTerm:
        """Append a term and return it (see :class:`LedgerTerm` for the arguments)."""
        term = LedgerTerm(name, energy, sign, dict(covers or {}), note)
        self._terms.append(term)
        return term

    @property
    def terms(self) -> tuple[LedgerTerm, ...]:
        return tuple(self._terms)

    @property
    def total(self) -> float:
        """Sum of ``sign * energy`` over the terms, eV."""
        return float(sum(t.signed_energy for t in self._terms))

    def counts(self) -> dict[str, int]:
        """Net count ``sum(sign * multiplicity)`` of each pair class."""
        return {c: sum(t.sign * t.covers.get(c, 0) for t in self._terms) for c in PAIR_CLASSES}

    def check(self) -> None:
        """Raise :class:`CalculationError` unless every pair class is counted exactly once net."""
        bad = {c: n for c, n in self.counts().items() if n != 1}
        if bad:
            what = ", ".join(f"{c} counted {n} times" for c, n in bad.items())
            raise CalculationError(
                f"energy ledger{' of ' + self.scheme if self.scheme else ''} does not count every "
                f"pairwise interaction exactly once: {what}\n{self}")

    def as_dict(self) -> dict:
        """Plain-data form: scheme, terms (name, energy, sign, covers, note), total, counts."""
        return {"scheme": self.scheme,
                "terms": [{"name": t.name, "energy": t.energy, "sign": t.sign,
                           "covers": dict(t.covers), "note": t.note} for t in self._terms],
                "total": self.total, "counts": self.counts()}

    def __len__(self) -> int:
        return len(self._terms)

    def __iter__(self):
        return iter(self._terms)

    def __str__(self) -> str:
        width = max([len(t.name) for t in self._terms] + [len("total")])
        head = f"Energy ledger{' (' + self.scheme + ')' if self.scheme else ''}, eV"
        cols = "  ".join(f"{c:>5s}" for c in PAIR_CLASSES)
        lines = [head, f"  {'term':<{width}s}  {'':1s} {'energy':>18s}  {cols}"]
        for t in self._terms:
            cov = "  ".join(f"{t.sign * t.covers.get(c, 0):>+5d}" if t.covers.get(c, 0) else
                            f"{'.':>5s}" for c in PAIR_CLASSES)
            note = f"  {t.note}" if t.note else ""
            lines.append(f"  {t.name:<{width}s}  {'+' if t.sign > 0 else '-'} "
                         f"{t.energy:18.10f}  {cov}{note}")
        counts = self.counts()
        net = "  ".join(f"{counts[c]:>5d}" for c in PAIR_CLASSES)
        lines.append(f"  {'total':<{width}s}  = {self.total:18.10f}  {net}"
                     + ("" if all(n == 1 for n in counts.values()) else "  <- not 1: double/missing count"))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"EnergyLedger(scheme={self.scheme!r}, terms={len(self._terms)}, total={self.total!r})"
