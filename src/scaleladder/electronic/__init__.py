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
silicon_ev_set, silicon_strain_set, silicon_rattle_set, silicon_heldout_set
    Deterministic configuration builders for the flagship silicon dataset.
silicon_configurations, FLAGSHIP_CALC_PARAMS
    The recommended flagship configuration list and PySCF settings per functional.
compute_configuration
    Run one configuration in a fresh calculator and return plain data (one pipeline stage each).
XTBCalculator
    GFN1/GFN2/IPEA1-xTB tight binding through tblite (extra ``xtb``): molecules and 3D crystals.
ev_series, strain_set, rattled, slabs, vacancies, md_snapshots
    Configuration builders for any crystal (docs/datasets.md).
deduplicate
    Drop configurations equal up to permutation, lattice translation and (optionally) symmetry.
generate_dataset, run_generation
    Compute a configuration list into a ReferenceDataset as resumable pipeline stages.
exchange_by_energy_mapping, dimer_exchange
    Exchange constants from collinear spin configurations (-> ExchangeParameters; docs/exchange.md).
"""
from .datasets import (
    FLAGSHIP_CALC_PARAMS,
    STRAIN_PATTERNS,
    apply_small_strain,
    compute_configuration,
    silicon_ev_set,
    silicon_heldout_set,
    silicon_rattle_set,
    silicon_configurations,
    silicon_strain_set,
)
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
    "silicon_ev_set", "silicon_strain_set", "silicon_rattle_set", "silicon_heldout_set",
    "silicon_configurations", "FLAGSHIP_CALC_PARAMS",
    "compute_configuration", "apply_small_strain", "STRAIN_PATTERNS",
    "XTBCalculator",
    "exchange_by_energy_mapping", "dimer_exchange", "DimerExchange",
]
