"""scaleladder.atomistic: interatomic potentials, MD and the properties computed with them.

Potentials (numba ASE calculators): StillingerWeber, Tersoff, LennardJones, Morse, EAM.
Fitting: fit_potential, fitted_calculator, potential_errors, export_lammps.
Machine-learned: SNAP (fit_snap, SNAPCalculator, snap_uncertainty, export_snap; LAMMPS ML-SNAP).
Properties: elastic_constants (0 K), elastic_constants_md (finite T), relax_lattice_constant,
surface_energy, vacancy_formation_energy, vacancy_migration_path, migration_barrier, phonons,
harmonic_tst_prefactor.
MD: run_md / resume_md (ASE integrators, NVE/NVT/NPT), run_md_lammps (LAMMPS engine), block_average.
"""
from .stillinger_weber import StillingerWeber, SW_SILICON
from .properties import elastic_constants, relax_lattice_constant, surface_energy
from .fitting import export_lammps, fit_potential, fitted_calculator, potential_errors
from .tersoff import Tersoff, TERSOFF_SI
from .pair import LennardJones, Morse, lj_fcc_reference
from .eam import EAM, read_funcfl, read_setfl, write_setfl
from .defects import vacancy_formation_energy, migration_barrier, vacancy_migration_path
from .dipole import dipole_convergence, elastic_dipole
from .interstitial import (dimer_reference, interstitial_diffusion, interstitial_solution,
                           sieverts_site_fraction, solute_frequencies, surface_segregation)
from .md import run_md, resume_md, MDResult, block_average
from .thermoelastic import elastic_constants_md
from .phonons import harmonic_tst_prefactor, phonons
from .lammps_md import run_md_lammps, resume_md_lammps, lammps_pair_commands, LammpsMDResult
from .domain import domain_warnings
from .snap import SNAPCalculator, export_snap, fit_snap, snap_uncertainty
from .forcefield import FixedChargeForceField
