"""scaleladder.atomistic."""
from .stillinger_weber import StillingerWeber, SW_SILICON
from .properties import elastic_constants, relax_lattice_constant, surface_energy
from .fitting import export_lammps, fit_potential, potential_errors
from .tersoff import Tersoff, TERSOFF_SI
from .pair import LennardJones, Morse, lj_fcc_reference
from .eam import EAM, read_funcfl, read_setfl, write_setfl
from .defects import vacancy_formation_energy, migration_barrier, vacancy_migration_path
from .md import run_md, resume_md, MDResult, block_average
from .phonons import phonons
