"""scaleladder.electronic: the electronic-structure rung (periodic DFT with PySCF).

Public API
----------
PySCFCalculator
    Periodic Kohn-Sham DFT (GTH pseudopotentials) as an ASE Calculator: energy (eV), forces (eV/Å),
    stress (eV/Å³, Voigt, ASE sign).
fcc_cubic_kpts
    Symmetric k-point sets for primitive fcc/diamond cells (cubic-cell mesh, folded).
isolated_atom_energy
    Free-atom energy consistent with the periodic calculation (cohesive energies).
compute_configuration
    Run one configuration in a fresh calculator and return plain data (one pipeline stage each).
apply_small_strain
    A cell deformed by ``F = I + ε`` (small strain; core.tensors has both strain measures).
XTBCalculator
    GFN1/GFN2/IPEA1-xTB tight binding through tblite (extra ``xtb``): molecules and 3D crystals.
exchange_by_energy_mapping, dimer_exchange
    Exchange constants from collinear spin configurations (-> ExchangeParameters; docs/exchange.md).

Dataset generation for any crystal and the flagship's silicon sets live in the workflows layer
above the rungs (:mod:`scaleladder.workflows`).
"""
from .datasets import apply_small_strain, compute_configuration
from .pyscf_calculator import (
    ATOM_GROUND_STATE_SPIN,
    PySCFCalculator,
    fcc_cubic_kpts,
    isolated_atom_energy,
)
from .xtb import XTBCalculator
from .exchange import DimerExchange, dimer_exchange, exchange_by_energy_mapping

__all__ = [
    "PySCFCalculator", "isolated_atom_energy", "fcc_cubic_kpts", "ATOM_GROUND_STATE_SPIN",
    "compute_configuration", "apply_small_strain",
    "XTBCalculator",
    "exchange_by_energy_mapping", "dimer_exchange", "DimerExchange",
]
