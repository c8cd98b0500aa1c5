"""``CriticalStress``: the remote stress at which a cracked part fractures, with its budget."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.codec import register
from ..core.errors import InputError
from ..uq import Estimate
from ._common import DataclassCodec, estimate_in, setf, str_dict

__all__ = ["CriticalStress"]


@register("CriticalStress")
@dataclass(frozen=True, eq=False)
class CriticalStress(DataclassCodec):
    """Critical remote stress of a cracked plate (Griffith: fracture where G = 2γ).

    Parameters
    ----------
    value : Estimate
        σ_c from the finite-element energy release rate, unit convertible to MPa (stored in MPa),
        with every source of its inputs propagated and the discretisation error as ``mesh``.
    closed_form : Estimate
        The closed-form σ_c (anisotropic Griffith with the finite-width correction), same sources
        but ``mesh``, in MPa.
    g_per_unit_stress_fe, g_per_unit_stress_closed : float
        ``G / σ²`` (m/Pa = J m⁻² Pa⁻²) from the FE J-integral at the finest mesh and in closed form.
    mesh : dict
        ``levels``, ``G`` per level, ``observed_rate``, ``extrapolated``, ``error_estimate``,
        ``extrapolation_trusted``.
    geometry : dict
        ``a_m``, ``W_m``, ``H_m``, ``finite_width_factor`` and a description of the crack.
    field : dict
        Vertex stresses near the crack at unit remote stress (for plots; SI), may be empty.
    """

    value: Estimate
    closed_form: Estimate
    g_per_unit_stress_fe: float
    g_per_unit_stress_closed: float
    mesh: dict = field(default_factory=dict)
    geometry: dict = field(default_factory=dict)
    field: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("value", "closed_form"):
            est = estimate_in(name, getattr(self, name), "MPa", (), allow_plain=False)
            if not est.value > 0:
                raise InputError(name, str(est), "a positive critical stress")
            setf(self, name, est)
        for name in ("g_per_unit_stress_fe", "g_per_unit_stress_closed"):
            g = getattr(self, name)
            try:
                g = float(g)
            except (TypeError, ValueError):
                raise InputError(name, g, "a positive number (m/Pa)") from None
            if not g > 0:
                raise InputError(name, g, "a positive number (m/Pa)")
            setf(self, name, g)
        for name in ("mesh", "geometry", "field"):
            setf(self, name, str_dict(name, getattr(self, name)))

    @property
    def fe_vs_closed_rel(self) -> float:
        """``G_FE / G_closed - 1`` at the finest mesh."""
        return self.g_per_unit_stress_fe / self.g_per_unit_stress_closed - 1.0

    def __str__(self) -> str:
        return (f"CriticalStress: σ_c = {self.value} (closed form {self.closed_form}; "
                f"G_FE/G_closed - 1 = {self.fe_vs_closed_rel:+.2e})")
