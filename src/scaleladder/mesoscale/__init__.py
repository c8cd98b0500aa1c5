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
spins
    Classical Heisenberg and Ising Monte Carlo (Metropolis, over-relaxation, Wolff) from an
    :class:`~scaleladder.handoffs.ExchangeParameters`, Curie temperatures from Binder-cumulant
    crossings (docs/spins.md).
"""
from . import kmc, phasefield, spins
from .kmc import fit_arrhenius, simulate_random_walk, simulate_vacancy_diffusion
from .phasefield import AllenCahn, CahnHilliard, GrainGrowth, SpectralGrid, run_phasefield
from .spins import critical_temperature, mean_field_temperature, run_spin_mc

__all__ = ["kmc", "phasefield", "spins", "simulate_vacancy_diffusion", "simulate_random_walk",
           "fit_arrhenius", "SpectralGrid", "AllenCahn", "CahnHilliard", "GrainGrowth",
           "run_phasefield", "run_spin_mc", "critical_temperature", "mean_field_temperature"]
