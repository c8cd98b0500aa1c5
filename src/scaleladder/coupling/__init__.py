"""scaleladder.coupling: concurrent multiscale couplings, as ASE calculators that wrap calculators.

The only layer allowed to import two rungs.

Regions and bookkeeping: :class:`QMRegion` (QM selection, cut covalent bonds, :class:`LinkAtom`
capping), :class:`PairInteractions` (classical QM–MM Coulomb + Lennard-Jones),
:class:`EnergyLedger` (the coupled energy term by term, checked against double counting).
QM/MM schemes: :class:`ONIOM` (subtractive), :class:`MechanicalEmbedding` (additive, classical
QM–MM term).
"""
from .regions import LinkAtom, QMRegion, default_link_fraction
from .interactions import COULOMB_EV_A, PairInteractions
from .ledger import PAIR_CLASSES, EnergyLedger, LedgerTerm
from .qmmm import MechanicalEmbedding, ONIOM, mm_charges

__all__ = ["LinkAtom", "QMRegion", "default_link_fraction", "PairInteractions", "COULOMB_EV_A",
           "EnergyLedger", "LedgerTerm", "PAIR_CLASSES", "ONIOM", "MechanicalEmbedding", "mm_charges"]
