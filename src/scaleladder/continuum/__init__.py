"""scaleladder.continuum: finite elements, fracture mechanics and homogenisation.

Fracture: SI units (Pa, m, J/m^2).  Homogenisation (:mod:`.homogenisation`, :mod:`.fft`,
:mod:`.rve`, :mod:`.bounds`, :mod:`.microstructures`): ``Microstructure`` handoffs in (lengths in
their own unit), ``ElasticTensor`` (GPa) out, with the RVE realisation and size in its budget.

Handoffs in, handoffs out: :func:`plate_critical_stress` takes an ``ElasticTensor`` and a
``SurfaceEnergy`` (units converted by the handoffs) and returns a ``CriticalStress`` whose
Estimate carries every source of its inputs plus the mesh's.
"""
from .fracture import (
    CentreCrackedPlate,
    CrackedPlateSolution,
    compliance_energy_release_rate,
    crack_frame_111,
    critical_stress,
    energy_release_rate,
    finite_width_factor,
    griffith_critical_stress,
    griffith_finite_width,
    isotropic_stiffness,
    mesh_convergence,
    plane_strain_stiffness,
    plate_critical_stress,
    plot_stress_field,
    reduced_compliance,
    richardson,
    sih_paris_irwin_factor,
)

from .bounds import (
    IsotropicBounds,
    dilute_stiffness,
    eshelby_tensor,
    hashin_shtrikman_cubic,
    hashin_shtrikman_isotropic,
    isotropic_moduli,
    isotropic_voigt,
    laminate_stiffness,
    mori_tanaka,
    reuss_bound,
    transverse_moduli,
    voigt_bound,
)
from .damage import PhaseFieldBar, local_damage_bar
from .fe2 import (FE2Result, PlasticRVE, fe2_solve, plate_with_hole, single_scale_solve,
                  tension_symmetry_conditions)
from .fft import FFTSolution, fft_effective_stiffness, fft_solve
from .homogenisation import Homogenisation, apparent_stiffness, homogenise
from .hydrogen import HydrogenField, equilibrium_concentration, solve_hydrogen_diffusion
from .microstructures import (
    hexagonal_fibres,
    laminate,
    random_inclusions,
    random_rotations,
    refine,
    voronoi_polycrystal,
)
from .multiscale_fem import evolving_microstructure, hmm, hou_wu_coefficient, msfem
from .plasticity import J2Hardening
from .rve import FEMSolution, MeshRVE, VoxelFEM, fem_effective_stiffness

__all__ = [
    "IsotropicBounds", "dilute_stiffness", "eshelby_tensor", "hashin_shtrikman_cubic",
    "hashin_shtrikman_isotropic", "isotropic_moduli", "isotropic_voigt", "laminate_stiffness",
    "mori_tanaka", "reuss_bound", "transverse_moduli", "voigt_bound", "FFTSolution",
    "fft_effective_stiffness", "fft_solve", "Homogenisation", "apparent_stiffness", "homogenise",
    "hexagonal_fibres", "laminate", "random_inclusions", "random_rotations", "refine",
    "voronoi_polycrystal", "FEMSolution", "VoxelFEM", "MeshRVE", "fem_effective_stiffness",
    "FE2Result",
    "PlasticRVE", "fe2_solve", "plate_with_hole", "single_scale_solve", "J2Hardening",
    "tension_symmetry_conditions", "PhaseFieldBar", "local_damage_bar",
    "evolving_microstructure", "hmm", "hou_wu_coefficient", "msfem",
    "CentreCrackedPlate", "CrackedPlateSolution", "compliance_energy_release_rate",
    "crack_frame_111", "critical_stress", "energy_release_rate", "finite_width_factor",
    "griffith_critical_stress", "griffith_finite_width", "isotropic_stiffness", "mesh_convergence",
    "plane_strain_stiffness", "plot_stress_field", "reduced_compliance", "sih_paris_irwin_factor",
    "plate_critical_stress", "richardson", "HydrogenField", "equilibrium_concentration",
    "solve_hydrogen_diffusion",
]
