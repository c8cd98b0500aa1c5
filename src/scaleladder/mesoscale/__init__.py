"""scaleladder.mesoscale: the rung between atoms and continua.

Modules (each with its own guide in docs/):

kmc
    Rejection-free kinetic Monte Carlo on lattices from ASE structures, driven by an
    :class:`~scaleladder.handoffs.EventCatalog`: random walks, vacancy-mediated tracer diffusion,
    correlation factors, Arrhenius fits, checkpoint/resume (docs/kmc.md).
phasefield
    Allen-Cahn, Cahn-Hilliard and multi-order grain growth, semi-implicit Fourier-spectral in 2D
    and 3D, parameters from interface energies/widths and diffusion coefficients
    (docs/phasefield.md).
cg
    Bottom-up coarse-graining: mapping atomistic frames to beads, RDFs, a CG MD engine with
    tabulated potentials, IBI (pressure-corrected), inverse Monte Carlo, force matching and
    relative entropy, producing CGPotential handoffs (docs/coarse_graining.md).
adress
    Adaptive resolution: a fine and a coarse pair model in one box with force interpolation and
    the thermodynamic force iterated to a flat density (docs/coarse_graining.md).
cg_ml
    A machine-learned many-body correction over a CG pair potential (sparse Gaussian-kernel
    force matching on radial symmetry-function descriptors).
dpd
    Groot-Warren dissipative particle dynamics (modified velocity Verlet and an exact-pair Shardlow
    splitting), numba Verlet lists, mixtures through the Flory-Huggins chi (docs/dpd.md).
spins
    Classical Heisenberg and Ising Monte Carlo (Metropolis, over-relaxation, Wolff) from an
    :class:`~scaleladder.handoffs.ExchangeParameters`, Curie temperatures from Binder-cumulant
    crossings (docs/spins.md).
"""
from . import adress, cg, cg_ml, dpd, kmc, phasefield, spins
from .cg import (force_match, inverse_monte_carlo, iterative_boltzmann_inversion, map_trajectory,
                 rdf, relative_entropy, run_cg_md)
from .dpd import dpd_box, repulsion_from_chi, resume_dpd, run_dpd
from .interstitial_kmc import (renewal_diffusivity, simulate_interstitial_diffusion,
                               strained_interstitial_model)
from .kmc import fit_arrhenius, simulate_random_walk, simulate_vacancy_diffusion
from .phasefield import AllenCahn, CahnHilliard, GrainGrowth, SpectralGrid, run_phasefield
from .spins import critical_temperature, mean_field_temperature, run_spin_mc

__all__ = ["strained_interstitial_model", "renewal_diffusivity",
           "simulate_interstitial_diffusion", "adress", "cg", "cg_ml", "map_trajectory", "rdf", "run_cg_md", "iterative_boltzmann_inversion",
           "inverse_monte_carlo", "force_match", "relative_entropy", "dpd", "dpd_box", "run_dpd",
           "resume_dpd", "repulsion_from_chi", "kmc", "phasefield",
           "spins", "simulate_vacancy_diffusion", "simulate_random_walk",
           "fit_arrhenius", "SpectralGrid", "AllenCahn", "CahnHilliard", "GrainGrowth",
           "run_phasefield", "run_spin_mc", "critical_temperature", "mean_field_temperature"]
