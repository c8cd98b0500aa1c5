"""scaleladder.continuum: finite elements and fracture mechanics (SI units: Pa, m, J/m^2).

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

__all__ = [
    "CentreCrackedPlate", "CrackedPlateSolution", "compliance_energy_release_rate",
    "crack_frame_111", "critical_stress", "energy_release_rate", "finite_width_factor",
    "griffith_critical_stress", "griffith_finite_width", "isotropic_stiffness", "mesh_convergence",
    "plane_strain_stiffness", "plot_stress_field", "reduced_compliance", "sih_paris_irwin_factor",
    "plate_critical_stress", "richardson",
]
