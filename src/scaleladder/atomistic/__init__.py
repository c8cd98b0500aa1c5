"""scaleladder.atomistic."""
from .stillinger_weber import StillingerWeber, SW_SILICON
from .properties import elastic_constants, relax_lattice_constant, surface_energy
from .fitting import fit_potential, potential_errors
