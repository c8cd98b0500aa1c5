"""scaleladder.atomistic."""
from .stillinger_weber import StillingerWeber, SW_SILICON
from .properties import elastic_constants, surface_energy
from .fitting import fit_potential
