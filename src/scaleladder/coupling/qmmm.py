"""QM/MM as ASE calculators that wrap calculators: subtractive ONIOM and additive mechanical
embedding, with link atoms and an energy ledger.

Both schemes take a QM calculator, an MM calculator and a :class:`~.regions.QMRegion`; the QM
model system is the QM atoms plus the link atoms of the cut covalent bonds
(:meth:`~.regions.QMRegion.qm_atoms`), and forces on the link atoms are distributed to the real
atoms by the chain rule, so the forces are the exact negative gradient of the energy.

* :class:`ONIOM` (subtractive; Svensson, Humbel, Froese, Matsubara, Sieber and Morokuma,
  J. Phys. Chem. 100, 19357 (1996))::

      E = E_MM(all) + E_QM(QM + links) - E_MM(QM + links)

  The low-level model system uses the same link atoms as the high-level one, so the link-atom
  artefacts cancel to the extent the two levels agree on them.
* :class:`MechanicalEmbedding` (additive)::

      E = E_QM(QM + links) + E_MM(MM) + E_QM-MM

  ``E_QM-MM`` is classical (:class:`~.interactions.PairInteractions`: point-charge Coulomb with
  the MM model's charges of the QM atoms, plus Lennard-Jones), over the real QM atoms and the MM
  atoms; link atoms carry no charge and take no part in it.

Every calculation stores an :class:`~.ledger.EnergyLedger` in ``results["ledger"]`` (and as
``.ledger``), checked to count each pair class (QM–QM, QM–MM, MM–MM) exactly once.  Energies in
eV, forces in eV/Å.  Stress is not implemented (it would need the link-atom and sub-cell
virials); asking for it raises :class:`~scaleladder.core.errors.PropertyNotImplementedError`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from ..core import validate
from ..core.errors import CalculationError, InputError, PropertyNotImplementedError
from .interactions import PairInteractions
from .ledger import EnergyLedger
from .regions import QMRegion

__all__ = ["ONIOM", "MechanicalEmbedding", "mm_charges"]

_ALL = {"QM-QM": 1, "QM-MM": 1, "MM-MM": 1}


def _check_calc(field: str, calc: Any) -> Any:
    if not (hasattr(calc, "get_potential_energy") and hasattr(calc, "get_forces")):
        raise InputError(field, type(calc).__name__, "an ASE calculator (get_potential_energy, "
                         "get_forces)")
    return calc


def _plain(atoms: Atoms) -> Atoms:
    """A copy without calculator and constraints (what a sub-calculator sees)."""
    out = atoms.copy()
    out.constraints = []
    out.calc = None
    return out


def mm_charges(mm_calc: Any, atoms: Atoms) -> np.ndarray:
    """Point charges (e) of every atom of ``atoms`` in the MM model.

    ``mm_calc.get_virtual_charges(atoms)`` where the MM calculator has it (ASE's TIP3P, the
    scaleladder fixed-charge force field), else ``atoms.get_initial_charges()``.  Models with
    virtual sites (more charges than atoms, e.g. TIP4P) are refused: their charges do not sit on
    the atoms.
    """
    getter = getattr(mm_calc, "get_virtual_charges", None)
    q = np.asarray(getter(atoms) if callable(getter) else atoms.get_initial_charges(), dtype=float)
    if q.shape != (len(atoms),):
        raise InputError("mm_calc", type(mm_calc).__name__,
                         f"an MM model with one charge per atom ({len(atoms)}), got {q.shape}",
                         hint="virtual-site models (TIP4P) are not supported by this embedding")
    return validate.finite_array("mm charges", q, (len(atoms),))


class _QMMMCalculator(Calculator):
    """What ONIOM and MechanicalEmbedding share: checks, sub-calculator calls, results."""

    implemented_properties = ["energy", "free_energy", "forces"]
    scheme = ""

    def __init__(self, qm_calc: Any, mm_calc: Any, region: QMRegion, mm_indices: Any = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.qm_calc = _check_calc("qm_calc", qm_calc)
        self.mm_calc = _check_calc("mm_calc", mm_calc)
        if not isinstance(region, QMRegion):
            raise InputError("region", type(region).__name__, "a scaleladder.coupling.QMRegion")
        self.region = region
        if mm_indices is not None:
            region.check_disjoint(mm_indices, field="mm_indices")
            given = np.unique(np.asarray(list(mm_indices), dtype=int))
            if not np.array_equal(given, region.mm_indices):
                missing = np.setdiff1d(region.mm_indices, given).tolist()
                raise InputError("mm_indices", given.tolist(), "the atoms outside the QM region "
                                 f"({region.mm_indices.size} atoms)",
                                 hint=f"atoms in neither selection: {missing}" if missing else
                                 "indices outside the system")
        self.ledger: EnergyLedger | None = None

    # -------------------------------------------------------------- sub-calculations
    def _run(self, calc: Any, atoms: Atoms) -> tuple[float, np.ndarray]:
        e = float(calc.get_potential_energy(atoms))
        if not getattr(self, "_want_forces", True):   # energy-only call: no gradients
            return e, np.zeros((len(atoms), 3))
        f = np.array(calc.get_forces(atoms), dtype=float)
        return e, f

    def _run_named(self, calc: Any, atoms: Atoms, where: str) -> tuple[float, np.ndarray]:
        """A sub-calculation whose errors say where they happened (``where``)."""
        try:
            return self._run(calc, atoms)
        except InputError as err:
            hint = f"{err.hint}; {where}" if err.hint else where
            raise type(err)(err.field, err.value, err.expected, hint=hint) from err
        except Exception as err:  # noqa: BLE001 - re-raised with the region named
            err.add_note(where)
            raise

    def _run_qm(self, qm_system: Atoms) -> tuple[float, np.ndarray]:
        """The QM calculation of the model system; its errors name the QM region."""
        return self._run_named(self.qm_calc, qm_system,
                               f"in the QM calculation of {self.region.describe()}")

    @staticmethod
    def _subset(calc: Any, indices: np.ndarray) -> Any:
        """``calc.subset(indices)`` for a calculator bound to one topology (scaleladder's
        FixedChargeForceField), else None."""
        sub = getattr(calc, "subset", None)
        return sub([int(i) for i in indices]) if callable(sub) else None

    # -------------------------------------------------------------- ASE protocol
    def calculate(self, atoms: Atoms | None = None, properties=("energy",),
                  system_changes=all_changes) -> None:
        if "stress" in properties:
            raise PropertyNotImplementedError(
                f"{self.scheme}: stress is not implemented (the link-atom and subsystem virials "
                "are not assembled); use energies and forces")
        super().calculate(atoms, properties, system_changes)
        self.region.check_atoms(self.atoms)
        self._want_forces = "forces" in properties
        energy, forces, ledger = self._energy_forces(_plain(self.atoms))
        ledger.check()
        if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
            raise CalculationError(f"{self.scheme}: non-finite energy or forces\n{ledger}")
        self.ledger = ledger
        self.results = {"energy": energy, "free_energy": energy, "ledger": ledger}
        if self._want_forces:
            self.results["forces"] = forces

    def _energy_forces(self, atoms: Atoms) -> tuple[float, np.ndarray, EnergyLedger]:
        raise NotImplementedError


class ONIOM(_QMMMCalculator):
    """Subtractive two-layer ONIOM: ``E = E_MM(all) + E_QM(QM + links) - E_MM(QM + links)``.

    Parameters
    ----------
    qm_calc : ASE calculator
        High level, evaluated on the QM model system (QM atoms + link atoms).
    mm_calc : ASE calculator
        Low level, evaluated on the whole system.
    region : QMRegion
        QM atoms and link atoms.
    mm_calc_qm : ASE calculator, optional
        Low level for the model system, e.g. a force field set up for the capped fragment.
        Default ``mm_calc``; where ``mm_calc`` is bound to one topology (it has a
        ``subset(indices)`` method, as scaleladder's ``FixedChargeForceField``), its subset of
        the QM atoms, which needs a region without link atoms (else :class:`InputError` naming
        ``mm_calc_qm``).
    mm_indices : sequence of int, optional
        Explicit MM selection, checked against the region: it must not overlap the QM atoms
        (:class:`InputError` naming ``mm_indices``) and must be all the other atoms.

    Notes
    -----
    Forces: ``F = F_MM(all) + D (F_QM(model) - F_MM(model))`` with ``D`` the link-atom chain rule
    (:meth:`QMRegion.distribute_forces`).  Ledger: ``+E_MM(all)`` covers QM–QM, QM–MM, MM–MM;
    ``+E_QM(model)`` and ``-E_MM(model)`` cover QM–QM.  Without link atoms and with the same
    calculators this is ASE's ``SimpleQMMM`` (``vacuum=None``).
    """

    scheme = "ONIOM (subtractive)"

    def __init__(self, qm_calc: Any, mm_calc: Any, region: QMRegion, mm_calc_qm: Any = None,
                 mm_indices: Any = None, **kwargs):
        super().__init__(qm_calc, mm_calc, region, mm_indices, **kwargs)
        if mm_calc_qm is None and callable(getattr(self.mm_calc, "subset", None)):
            if region.n_links:
                raise InputError("mm_calc_qm", None, "a low-level calculator for the model system "
                                 "(QM atoms + link atoms)",
                                 hint=f"mm_calc is bound to the topology of the full system "
                                      f"(it has subset()), which has no link atoms; "
                                      f"{region.describe()}")
            mm_calc_qm = self._subset(self.mm_calc, region.qm_indices)
        self.mm_calc_qm = self.mm_calc if mm_calc_qm is None else _check_calc("mm_calc_qm", mm_calc_qm)

    def _energy_forces(self, atoms: Atoms) -> tuple[float, np.ndarray, EnergyLedger]:
        reg = self.region
        model = reg.qm_atoms(atoms)
        e_all, f_all = self._run(self.mm_calc, atoms)
        e_qm, f_qm = self._run_qm(model)
        e_low, f_low = self._run_named(self.mm_calc_qm, model.copy(), "in the low-level "
                                       f"(mm_calc_qm) calculation of {reg.describe()}")
        links = f"{reg.n_links} link atom(s)" if reg.n_links else ""
        ledger = EnergyLedger(self.scheme)
        ledger.add("E_MM(all)", e_all, +1, _ALL)
        ledger.add("E_QM(QM+links)", e_qm, +1, {"QM-QM": 1}, note=links)
        ledger.add("E_MM(QM+links)", e_low, -1, {"QM-QM": 1}, note=links)
        forces = f_all + reg.distribute_forces(f_qm - f_low, len(atoms))
        return ledger.total, forces, ledger


class MechanicalEmbedding(_QMMMCalculator):
    """Additive QM/MM with mechanical embedding: ``E = E_QM(QM + links) + E_MM(MM) + E_QM-MM``.

    Parameters
    ----------
    qm_calc : ASE calculator
        Evaluated on the QM model system (QM atoms + link atoms), in vacuum: no MM charges
        polarise it (that is electrostatic embedding).
    mm_calc : ASE calculator
        Evaluated on the MM atoms alone; where it is bound to the full system's topology (a
        ``subset(indices)`` method, as scaleladder's ``FixedChargeForceField``), through
        ``mm_calc.subset(region.mm_indices)`` (built once).
    region : QMRegion
        QM atoms and link atoms.
    interaction : PairInteractions
        The classical QM–MM term (Coulomb + Lennard-Jones) between the real QM atoms and the
        MM atoms; any object with the same ``calculate(qm_atoms, qm_charges, mm_atoms,
        mm_charges)`` works.
    qm_charges : array (n_qm,), optional
        Charges (e) of the QM atoms in the QM–MM Coulomb term, in ``region.qm_indices`` order.
        Default: the MM model's charges, ``mm_calc.get_virtual_charges(atoms)`` if the MM
        calculator has it (ASE's TIP3P does), else ``atoms.get_initial_charges()``; the MM
        atoms always carry the MM model's charges.
    mm_indices : sequence of int, optional
        Explicit MM selection, checked as in :class:`ONIOM`.

    Notes
    -----
    Charges are fixed (not functions of the positions), as in a fixed-charge force field, so
    the forces of the Coulomb term are its exact gradient.  Link atoms carry no charge and no LJ
    site.  What the boundary bonds themselves contribute (the Q–M stretch and the angles and
    torsions across the cut) is in none of the three terms unless ``interaction`` supplies it:
    an additive scheme with a black-box MM calculator has no access to those bonded terms, so
    prefer :class:`ONIOM` where bonds are cut.  With TIP3P for both levels, ``lj={('O', 'O'):
    (epsilon0, sigma0)}`` and no cut bonds this is ASE's ``EIQMMM`` with its default embedding.
    Ledger: ``E_QM`` covers QM–QM, ``E_MM(MM)`` MM–MM and ``E_QM-MM`` QM–MM.
    """

    scheme = "additive QM/MM, mechanical embedding"

    def __init__(self, qm_calc: Any, mm_calc: Any, region: QMRegion,
                 interaction: PairInteractions, qm_charges: Any = None, mm_indices: Any = None,
                 **kwargs):
        super().__init__(qm_calc, mm_calc, region, mm_indices, **kwargs)
        if not callable(getattr(interaction, "calculate", None)):
            raise InputError("interaction", type(interaction).__name__,
                             "a PairInteractions (an object with calculate(qm_atoms, qm_charges, "
                             "mm_atoms, mm_charges))")
        self.interaction = interaction
        self.qm_charges = (None if qm_charges is None else
                           validate.finite_array("qm_charges", qm_charges, (region.n_qm,)).copy())
        # A force field bound to the full system's topology evaluates the MM atoms through its
        # subset (its charges still come from the full system); any other calculator is
        # evaluated on the MM atoms directly.
        self.mm_calc_mm = (self._subset(self.mm_calc, region.mm_indices)
                           if region.mm_indices.size else None) or self.mm_calc

    def charges(self, atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
        """Charges (e) of the QM atoms and of the MM atoms used in the QM–MM Coulomb term."""
        reg = self.region
        try:
            q = mm_charges(self.mm_calc, atoms)
        except InputError as err:
            if self.qm_charges is None:
                raise InputError("qm_charges", None, "the charges (e) of the QM atoms",
                                 hint=f"mm_calc gives no charges for the full system ({err})"
                                 ) from err
            return self.qm_charges, mm_charges(self.mm_calc_mm, atoms[reg.mm_indices])
        q_qm = q[reg.qm_indices] if self.qm_charges is None else self.qm_charges
        return q_qm, q[reg.mm_indices]

    def _energy_forces(self, atoms: Atoms) -> tuple[float, np.ndarray, EnergyLedger]:
        reg = self.region
        model = reg.qm_atoms(atoms)
        e_qm, f_qm = self._run_qm(model)
        forces = reg.distribute_forces(f_qm, len(atoms))
        mm_sys = atoms[reg.mm_indices]
        if len(mm_sys):
            e_mm, f_mm = self._run_named(self.mm_calc_mm, mm_sys, "in the MM calculation of "
                                         f"the {len(mm_sys)} atoms outside {reg.describe()}")
            forces[reg.mm_indices] += f_mm
        else:
            e_mm = 0.0
        q_qm, q_mm = self.charges(atoms)
        e_int, fi_qm, fi_mm = self.interaction.calculate(atoms[reg.qm_indices], q_qm, mm_sys, q_mm)
        forces[reg.qm_indices] += fi_qm
        forces[reg.mm_indices] += fi_mm
        ledger = EnergyLedger(self.scheme)
        ledger.add("E_QM(QM+links)", e_qm, +1, {"QM-QM": 1},
                   note=f"{reg.n_links} link atom(s)" if reg.n_links else "")
        ledger.add("E_MM(MM)", e_mm, +1, {"MM-MM": 1})
        ledger.add("E_QM-MM(Coulomb+LJ)", float(e_int), +1, {"QM-MM": 1},
                   note="classical, link atoms excluded")
        return ledger.total, forces, ledger
