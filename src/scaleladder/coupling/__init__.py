"""scaleladder.coupling: concurrent multiscale couplings, as ASE calculators that wrap calculators.

The only layer allowed to import two rungs.

Regions and bookkeeping: :class:`QMRegion` (QM selection, cut covalent bonds, :class:`LinkAtom`
capping), :class:`PairInteractions` (classical QM–MM Coulomb + Lennard-Jones),
:class:`EnergyLedger` (the coupled energy term by term, checked against double counting).
QM/MM schemes: :class:`ONIOM` (subtractive), :class:`MechanicalEmbedding` (additive, classical
QM–MM term), :class:`ElectrostaticEmbedding` (additive, MM charges in the QM Hamiltonian).
Hand-shake schemes: :class:`ForceMixing` (forces only, abrupt or smooth λ, buffer),
:class:`EnergyMixing` (conservative, optional ghost-force correction), :func:`ghost_forces`,
:func:`stadium_langevin` (Langevin friction on the hand-shake shell only).
Atoms and continuum: :class:`CauchyBorn` (W(F) of any calculator's crystal, internal relaxation of
the basis), :class:`PairLattice` (closed-form lattice sums, 1D–3D), :class:`QCChain` (1D
quasicontinuum: energy-based, ghost-force-corrected and force-based); in submodules:
``qc2d.QC2D`` and ``qc3d.QC3D`` (2D triangular and 3D fcc quasicontinuum), ``indentation``,
``dislocation`` and ``qc3d.vacancy`` (applications against full atomistics), ``bridging`` (1D and
2D bridging domain), ``waves`` (reflection at interfaces).
"""
from .regions import LinkAtom, QMRegion, default_link_fraction
from .interactions import COULOMB_EV_A, PairInteractions
from .ledger import PAIR_CLASSES, EnergyLedger, LedgerTerm
from .qmmm import MechanicalEmbedding, ONIOM, mm_charges
from .embedding import ElectrostaticEmbedding
from .cauchy_born import CauchyBorn, PairLattice, acoustic_tensor
from .quasicontinuum import QCChain
from .force_mixing import (EnergyMixing, ForceMixing, MixingRegions, ghost_forces, mixing_regions,
                           region_temperature, stadium_friction, stadium_langevin)

__all__ = ["LinkAtom", "QMRegion", "default_link_fraction", "PairInteractions", "COULOMB_EV_A",
           "EnergyLedger", "LedgerTerm", "PAIR_CLASSES", "ONIOM", "MechanicalEmbedding", "mm_charges",
           "ElectrostaticEmbedding", "ForceMixing", "EnergyMixing", "MixingRegions", "mixing_regions",
           "ghost_forces", "stadium_langevin", "stadium_friction", "region_temperature",
           "CauchyBorn", "PairLattice", "acoustic_tensor", "QCChain"]
