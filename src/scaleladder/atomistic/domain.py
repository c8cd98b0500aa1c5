"""Out-of-training-domain flagging for calculators built from a fitted potential.

A :class:`~scaleladder.handoffs.FittedPotential` records the domain it was trained on (volume
per atom, nearest-neighbour distances, largest strain) and can say where a configuration lies
outside it (:meth:`~scaleladder.handoffs.FittedPotential.check_domain`).  This module connects
that check to the property calculators:

* a calculator *remembers* the fitted potential it was built from in the attribute
  ``fitted_potential`` (:func:`attach_fitted_potential`; ``fitting.fitted_calculator`` builds and
  attaches in one call).  The attribute is read, never used for numerics, so the calculator
  computes exactly what it computed before; calculators without it (EMT, DFT, the published SW
  parameters) are never flagged;
* :func:`domain_warnings` returns the violations of a set of configurations, each message
  prefixed with the configuration's label;
* :func:`warn_domain` issues one :class:`~scaleladder.core.errors.DomainWarning` for a whole
  property calculation, so a user sees one warning per call, not one per strained cell;
* :class:`DomainLog` collects the messages while a property loops over its configurations.

Property functions (``elastic_constants``, ``surface_energy``, ``relax_lattice_constant``,
``vacancy_formation_energy``, ``migration_barrier``, ``harmonic_tst_prefactor``) store the
messages in the ``domain_warnings`` field of the handoff they return.
"""
from __future__ import annotations

import warnings
from typing import Any, Iterable, Sequence

from ..core.errors import InputError, DomainWarning

__all__ = ["attach_fitted_potential", "fitted_potential_of", "domain_warnings", "warn_domain",
           "DomainLog"]

#: Messages shown in a DomainWarning before "... and k more".
_SHOWN = 3


def fitted_potential_of(calc: Any):
    """The :class:`~scaleladder.handoffs.FittedPotential` a calculator was built from, or None.

    Looks up the attribute ``fitted_potential``; anything without ``check_domain`` counts as
    none.
    """
    fp = getattr(calc, "fitted_potential", None)
    return fp if fp is not None and callable(getattr(fp, "check_domain", None)) else None


def attach_fitted_potential(calc: Any, potential: Any):
    """Let ``calc`` remember the fitted potential it evaluates; returns ``calc``.

    Sets ``calc.fitted_potential = potential``.  Nothing of the calculator's numerics changes:
    the attribute is only read by :func:`domain_warnings`.

    Raises
    ------
    InputError
        ``potential`` has no ``check_domain`` method (not a FittedPotential), or ``calc`` does
        not accept attributes.
    """
    if not callable(getattr(potential, "check_domain", None)):
        raise InputError("potential", type(potential).__name__,
                         "a FittedPotential (with a training domain and check_domain)")
    try:
        calc.fitted_potential = potential
    except AttributeError:
        raise InputError("calc", type(calc).__name__, "a calculator object that accepts the "
                         "attribute fitted_potential") from None
    return calc


def domain_warnings(calc: Any, atoms_iterable: Iterable[Any], reference_cell: Any = None,
                    labels: Sequence[str] | None = None) -> tuple[str, ...]:
    """Where the configurations lie outside the training domain of ``calc``'s fitted potential.

    Parameters
    ----------
    calc : ase Calculator
        If it carries no ``fitted_potential`` (see :func:`attach_fitted_potential`) the answer
        is ``()`` and the configurations are not even looked at.
    atoms_iterable : iterable of ase.Atoms
        The configurations evaluated.
    reference_cell : array_like (3, 3), optional
        Undeformed cell (rows, Å); when given, each configuration's Green-Lagrange strain
        relative to it is checked against the training ``max_abs_strain``.
    labels : sequence of str, optional
        One label per configuration for the messages; default ``"configuration k"``.

    Returns
    -------
    tuple of str
        ``"<label>: <violation>"``, in order, duplicates removed; ``()`` inside the domain.
    """
    fp = fitted_potential_of(calc)
    if fp is None:
        return ()
    out: list[str] = []
    for k, atoms in enumerate(atoms_iterable):
        label = labels[k] if labels is not None else f"configuration {k}"
        for msg in fp.check_domain(atoms, reference_cell):
            out.append(f"{label}: {msg}")
    return tuple(dict.fromkeys(out))


def warn_domain(messages: Sequence[str], where: str, stacklevel: int = 3) -> tuple[str, ...]:
    """Issue one DomainWarning summarising ``messages`` (nothing if empty); returns them."""
    msgs = tuple(messages)
    if msgs:
        shown = "; ".join(msgs[:_SHOWN])
        more = f"; ... and {len(msgs) - _SHOWN} more" if len(msgs) > _SHOWN else ""
        warnings.warn(f"{where}: {len(msgs)} configuration(s)/check(s) outside the training domain "
                      f"of the fitted potential ({shown}{more}); the result is an "
                      "extrapolation (see the handoff's domain_warnings)", DomainWarning,
                      stacklevel=stacklevel)
    return msgs


class DomainLog:
    """Collects the domain violations of the configurations a property evaluates.

    Parameters
    ----------
    calc : ase Calculator
        The calculator of the property; without a ``fitted_potential`` every ``check`` is a
        no-op (no neighbour lists are built).
    reference_cell : array_like (3, 3), optional
        Default reference cell for the strain check.
    """

    def __init__(self, calc: Any, reference_cell: Any = None):
        self.calc = calc
        self.active = fitted_potential_of(calc) is not None
        self.reference_cell = reference_cell
        self._messages: list[str] = []

    def check(self, atoms: Any, label: str, reference_cell: Any = None) -> None:
        """Check one configuration (``reference_cell`` overrides the default one)."""
        if not self.active:
            return
        ref = self.reference_cell if reference_cell is None else reference_cell
        self._messages.extend(domain_warnings(self.calc, [atoms], ref, labels=[label]))

    @property
    def messages(self) -> tuple[str, ...]:
        """The messages so far, in order, duplicates removed."""
        return tuple(dict.fromkeys(self._messages))

    def finish(self, where: str) -> tuple[str, ...]:
        """Warn once (if anything was found) and return the messages for the handoff."""
        return warn_domain(self.messages, where, stacklevel=4)
