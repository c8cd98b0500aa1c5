"""Phase field: Allen–Cahn, Cahn–Hilliard and multi-order-parameter grain growth.

Semi-implicit Fourier-spectral time stepping on periodic 2D and 3D grids (real FFTs from
:mod:`scipy.fft` with ``workers=-1``): the stiff linear gradient term is implicit, the nonlinear
bulk term explicit.  Conversions from handoff quantities (interface energy and width, interface
kinetic coefficient, diffusion coefficient) to the model coefficients are written once, here.

Conventions
-----------
Units are SI throughout: lengths m, time s, energy densities J/m³, gradient coefficients J/m,
free energies J (3D) or J/m (2D: per metre of depth).  The steppers only need a consistent unit
system, so reduced units (``spacing=1``, ``W=1`` ...) work as well.

Free energy of the conserved and non-conserved scalar models::

    F[φ] = ∫ [ W f(φ) + κ/2 |∇φ|² ] dV,        f(φ) = φ² (1 - φ)²

(minima φ = 0 and φ = 1, barrier height ``W f(1/2) = W/16``).  The flat equilibrium interface
between the two minima is ``φ(x) = ½ [1 + tanh(x / (2δ))]`` with ``δ = √(κ / (2W))``, whose

* interface energy (excess free energy per area) is ``σ = √(2κW)/6 = √(κW)/(3√2)``;
* **width** is defined here as the *tangent width* ``ℓ = 1 / max|dφ/dx| = 4δ = √(8κ/W)`` (the
  distance over which the tangent at the centre goes from 0 to 1).  ``width_definition="10-90"``
  selects the distance between φ = 0.1 and φ = 0.9 instead, ``ℓ = 2 ln(9) δ ≈ 4.394 δ``.

Hence ``W = 3σ/δ`` and ``κ = 6σδ``; for the tangent width ``W = 12σ/ℓ`` and ``κ = 3σℓ/2``.

* Allen–Cahn (non-conserved): ``∂φ/∂t = -L δF/δφ = -L [W f'(φ) - κ∇²φ]`` with L in m³/(J·s).
  A curved interface moves with normal velocity ``v = Lκ K`` (K the mean curvature, sum of the
  principal curvatures), so a circle's area shrinks as ``dA/dt = -2πLκ``.  The sharp-interface law
  ``v = μ σ K`` (μ the interface kinetic coefficient, m⁴/(J·s)) gives ``L = μσ/κ = μ/(6δ)``
  (``2μ/(3ℓ)`` for the tangent width): :func:`allen_cahn_mobility`.
* Cahn–Hilliard (conserved): ``∂c/∂t = ∇·M∇ δF/δc`` with M in m⁵/(J·s).  Linearised about a
  composition ``c0``, it is Fick's law with ``D = M W f''(c0)``, ``f''(c) = 2 - 12c + 12c²``, so
  ``M = D / (W f''(c0))`` (``D/(2W)`` at the equilibrium compositions 0 and 1; undefined inside
  the spinodal, where f'' < 0): :func:`cahn_hilliard_mobility`.
* Grain growth (Fan–Chen / Moelans), order parameters ``φ_1..φ_p``::

      F = ∫ m [ Σ_i (φ_i⁴/4 - φ_i²/2) + γ Σ_{i<j} φ_i² φ_j² + 1/4 ] + κ/2 Σ_i |∇φ_i|² dV,
      ∂φ_i/∂t = -L δF/δφ_i.

  For γ = 3/2 (Moelans, Blanpain & Wollants, Phys. Rev. B 78, 024113 (2008)) a flat grain boundary
  has ``σ_gb = (√2/3) √(κm)`` and tangent width ``ℓ_gb = √(8κ/m)``, so ``m = 6σ_gb/ℓ_gb``,
  ``κ = 3σ_gb ℓ_gb/4`` and ``L = 4μ_gb/(3ℓ_gb)``: :func:`grain_growth_parameters`.

Time stepping (first-order IMEX, Chen & Shen, Comput. Phys. Commun. 108, 147 (1998)), with an
optional stabilisation ``S`` (J/m³, Shen & Yang, DCDS-A 28, 1669 (2010)) that damps the explicit
part: for Allen–Cahn ``φ̂ⁿ⁺¹ = FFT[φⁿ(1 + ΔtLS) - ΔtL W f'(φⁿ)] / (1 + ΔtL(S + κk²))``; for
Cahn–Hilliard ``ĉⁿ⁺¹ = [ĉⁿ(1 + ΔtMSk²) - ΔtMk² FFT[W f'(cⁿ)]] / (1 + ΔtMk²(S + κk²))``.  A step
costs one forward and one inverse real FFT per field; the Cahn–Hilliard state keeps ĉ, so the
k = 0 mode (the mass) is never changed.  With ``S = 0`` the scheme is energy-stable for roughly
``Δt L W ≲ 1`` (Allen–Cahn) and linearly stable near the wells for ``Δt ≤ 2κ/(M W²)``
(Cahn–Hilliard); ``S ≥ W`` makes it unconditionally energy-stable.  The first-order time error
slows a curved Allen–Cahn interface by about ``0.37 Δt L W`` (measured): keep ``Δt L W ≤ 0.03``
for 1 % velocities; stabilisation adds to this error.

Checks
------
The free energy (with the spectral gradient term, the energy the scheme dissipates) is evaluated
every ``energy_every`` steps; a rise above round-off -- or a non-finite field -- stops the run
with :class:`~scaleladder.core.errors.CalculationError` naming the step and Δt.  A grid with
fewer than 3 points across the interface width raises :class:`~scaleladder.core.errors.InputError`
naming the grid spacing.

State, checkpoints, output
--------------------------
:class:`PhaseFieldState` is plain data (fields, step, time, the spectral Cahn–Hilliard state);
:func:`run_phasefield` writes it atomically (``.npz``, temp file + ``os.replace``, no pickle)
with the model, grid, Δt and the energy history, and :func:`resume_phasefield` continues the run
bit for bit.  :func:`write_png` (matplotlib, Agg) and :func:`write_vtk` (legacy VTK structured
points, binary) write fields for viewing.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from numba import njit

from ..core import validate as _v
from ..core.codec import register
from ..core.errors import CalculationError, InputError

__all__ = [
    "SpectralGrid", "AllenCahn", "CahnHilliard", "GrainGrowth", "PhaseFieldState",
    "PhaseFieldStepper", "PhaseFieldResult", "run_phasefield", "resume_phasefield",
    "write_checkpoint", "read_checkpoint", "write_png", "write_vtk",
    "double_well_from_interface", "interface_from_double_well", "allen_cahn_mobility",
    "cahn_hilliard_mobility", "grain_growth_parameters", "double_well", "double_well_curvature",
    "tanh_profile", "circle", "voronoi_grains", "count_grains", "check_resolution",
    "periodic_components", "grain_microstructure", "phase_microstructure",
]

logger = logging.getLogger(__name__)

_WIDTH_FACTORS = {"tangent": 4.0, "10-90": 2.0 * math.log(9.0)}  # ℓ / δ, δ = √(κ/2W)
_MIN_POINTS_ACROSS = 3.0


# --------------------------------------------------------------------------------------------
# the double well and the conversions from handoff quantities (written once)
# --------------------------------------------------------------------------------------------
def double_well(phi):
    """``f(φ) = φ²(1 - φ)²`` (dimensionless; minima at 0 and 1, ``f(1/2) = 1/16``)."""
    phi = np.asarray(phi, dtype=float)
    return phi * phi * (1.0 - phi) ** 2


def double_well_curvature(phi):
    """``f''(φ) = 2 - 12φ + 12φ²`` (dimensionless)."""
    phi = np.asarray(phi, dtype=float)
    return 2.0 - 12.0 * phi + 12.0 * phi * phi


def _si(field_name: str, value: Any, unit: str):
    """A float (taken as SI), an Estimate (converted to ``unit``) or a handoff with an Estimate
    ``.value`` (e.g. :class:`~scaleladder.handoffs.SurfaceEnergy`) -> float or Estimate in SI."""
    from ..uq import Estimate

    if not isinstance(value, Estimate) and isinstance(getattr(value, "value", None), Estimate):
        value = value.value
    if isinstance(value, Estimate):
        if value.ndim != 0:
            raise InputError(field_name, value, "a scalar Estimate")
        try:
            out = value.to(unit)
        except InputError as exc:
            raise InputError(field_name, f"Estimate in {value.unit!r}",
                             f"a quantity convertible to {unit!r}", hint=str(exc)) from exc
        _v.finite(field_name, out.value)
        return out
    return _v.finite(field_name, value)


def _nominal(field_name: str, value: Any, unit: str) -> float:
    v = _si(field_name, value, unit)
    return float(v) if not isinstance(v, float) else v


def _apply(fn, args: Sequence[tuple[str, Any, str]], unit: str):
    """Evaluate ``fn`` on SI values; with any Estimate argument the result is an Estimate
    (uncertainty propagated with :func:`scaleladder.uq.propagate`)."""
    from ..uq import Estimate, propagate

    vals = [_si(name, val, u) for name, val, u in args]
    if any(isinstance(x, Estimate) for x in vals):
        return propagate(fn, *vals, unit=unit)
    return float(fn(*vals))


def _width_factor(width_definition: str) -> float:
    _v.one_of("width_definition", width_definition, _WIDTH_FACTORS)
    return _WIDTH_FACTORS[width_definition]


def double_well_from_interface(sigma, width, *, width_definition: str = "tangent"):
    """Double-well height W and gradient coefficient κ from interface energy and width.

    Parameters
    ----------
    sigma : float, Estimate or handoff with an Estimate ``.value``
        Interface energy σ (J/m²; Estimates are converted from their unit).
    width : float or Estimate
        Interface width ℓ (m) in the sense of ``width_definition``.
    width_definition : {"tangent", "10-90"}
        ``"tangent"``: ``ℓ = 1/max|dφ/dx| = 4δ``; ``"10-90"``: distance between φ = 0.1 and 0.9,
        ``2 ln 9 δ``; δ = √(κ/2W).

    Returns
    -------
    (W, kappa)
        W in J/m³ (``3σ/δ``, = ``12σ/ℓ`` for the tangent width) and κ in J/m (``6σδ``,
        = ``3σℓ/2``); Estimates when an input is one.
    """
    r = _width_factor(width_definition)
    args = [("sigma", sigma, "J/m^2"), ("width", width, "m")]
    s0, l0 = (_nominal(n, v, u) for n, v, u in args)
    _v.positive("sigma", s0)
    _v.positive("width", l0)
    W = _apply(lambda s, ell: 3.0 * s * r / ell, args, "J/m^3")
    kappa = _apply(lambda s, ell: 6.0 * s * ell / r, args, "J/m")
    return W, kappa


def interface_from_double_well(W, kappa, *, width_definition: str = "tangent"):
    """Interface energy σ (J/m²) and width ℓ (m) of ``W f(φ) + κ/2|∇φ|²`` (inverse of
    :func:`double_well_from_interface`): ``σ = √(2κW)/6``, ``ℓ = r √(κ/2W)`` with r = 4
    (tangent) or 2 ln 9 (10-90)."""
    r = _width_factor(width_definition)
    args = [("W", W, "J/m^3"), ("kappa", kappa, "J/m")]
    _v.positive("W", _nominal(*args[0]))
    _v.positive("kappa", _nominal(*args[1]))
    sigma = _apply(lambda w, k: math.sqrt(2.0 * k * w) / 6.0 if np.ndim(w) == 0
                   else np.sqrt(2.0 * k * w) / 6.0, args, "J/m^2")
    width = _apply(lambda w, k: r * np.sqrt(k / (2.0 * w)), args, "m")
    return sigma, width


def allen_cahn_mobility(kinetic_coefficient, W, kappa):
    """Allen–Cahn mobility ``L = μσ/κ = μ √(2W/κ)/6`` (m³/(J·s)).

    Matches the phase-field interface velocity ``v = LκK`` to the sharp-interface law
    ``v = μσK`` (μ: interface kinetic coefficient, velocity per driving pressure, m⁴/(J·s);
    K: mean curvature).  For the tangent width this is ``2μ/(3ℓ)``.
    """
    args = [("kinetic_coefficient", kinetic_coefficient, "m^4/J/s"), ("W", W, "J/m^3"),
            ("kappa", kappa, "J/m")]
    _v.positive("kinetic_coefficient", _nominal(*args[0]))
    _v.positive("W", _nominal(*args[1]))
    _v.positive("kappa", _nominal(*args[2]))
    return _apply(lambda mu, w, k: mu * np.sqrt(2.0 * w / k) / 6.0, args, "m^3/J/s")


def cahn_hilliard_mobility(diffusion_coefficient, W, composition):
    """Cahn–Hilliard mobility ``M = D / (W f''(c0))`` (m⁵/(J·s)) at composition ``c0``.

    Linearised about ``c0`` the Cahn–Hilliard equation is Fick's law with ``D = M W f''(c0)``;
    ``f''(c) = 2 - 12c + 12c²`` (= 2 at the equilibrium compositions 0 and 1).  Inside the
    spinodal (``0.211 < c0 < 0.789``, f'' <= 0) there is no such D: InputError.
    """
    c0 = _v.finite("composition", composition)
    fpp = float(double_well_curvature(c0))
    if fpp <= 0.0:
        raise InputError("composition", composition,
                         "a composition outside the spinodal, c < 0.2113 or c > 0.7887",
                         hint=f"f''({c0:g}) = {fpp:.4g} <= 0: no diffusion coefficient there")
    args = [("diffusion_coefficient", diffusion_coefficient, "m^2/s"), ("W", W, "J/m^3")]
    _v.positive("diffusion_coefficient", _nominal(*args[0]))
    _v.positive("W", _nominal(*args[1]))
    return _apply(lambda d, w: d / (w * fpp), args, "m^5/J/s")


def grain_growth_parameters(sigma_gb, width, kinetic_coefficient=None):
    """Grain-growth coefficients for γ = 3/2 (Moelans et al. 2008), tangent width.

    Parameters
    ----------
    sigma_gb : float or Estimate
        Grain-boundary energy (J/m²).
    width : float or Estimate
        Grain-boundary width ℓ = 1/max|∇φ| (m).
    kinetic_coefficient : float or Estimate, optional
        Grain-boundary mobility μ (m⁴/(J·s)).

    Returns
    -------
    dict
        ``m = 6σ/ℓ`` (J/m³), ``kappa = 3σℓ/4`` (J/m), ``gamma = 1.5`` and, with μ,
        ``mobility = 4μ/(3ℓ)`` (m³/(J·s)).
    """
    args = [("sigma_gb", sigma_gb, "J/m^2"), ("width", width, "m")]
    _v.positive("sigma_gb", _nominal(*args[0]))
    _v.positive("width", _nominal(*args[1]))
    out = {"m": _apply(lambda s, ell: 6.0 * s / ell, args, "J/m^3"),
           "kappa": _apply(lambda s, ell: 0.75 * s * ell, args, "J/m"), "gamma": 1.5}
    if kinetic_coefficient is not None:
        a2 = [("kinetic_coefficient", kinetic_coefficient, "m^4/J/s"), args[1]]
        _v.positive("kinetic_coefficient", _nominal(*a2[0]))
        out["mobility"] = _apply(lambda mu, ell: 4.0 * mu / (3.0 * ell), a2, "m^3/J/s")
    return out


# --------------------------------------------------------------------------------------------
# grid and models (plain, validated, frozen data)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpectralGrid:
    """A periodic 2D or 3D grid.

    Parameters
    ----------
    shape : tuple of int
        Points per axis (2 or 3 axes, each >= 4; even sizes are fastest for FFTs).
    spacing : float or tuple of float
        Grid spacing per axis (m); a scalar applies to every axis.
    """

    shape: tuple
    spacing: tuple

    def __post_init__(self):
        try:
            shape = tuple(self.shape)
        except TypeError:
            raise InputError("shape", self.shape, "a tuple of 2 or 3 integers >= 4") from None
        if len(shape) not in (2, 3):
            raise InputError("shape", self.shape, "a tuple of 2 or 3 integers >= 4 (2D or 3D)")
        shape = tuple(_v.positive_int("shape", n, minimum=4) for n in shape)
        sp = self.spacing
        if np.ndim(sp) == 0:
            sp = (sp,) * len(shape)
        sp = tuple(sp)
        if len(sp) != len(shape):
            raise InputError("spacing", self.spacing, f"a number or {len(shape)} numbers (m)")
        sp = tuple(_v.positive("spacing", s) for s in sp)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "spacing", sp)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def cell_volume(self) -> float:
        """Volume (3D, m³) or area (2D, m²) of one grid cell."""
        return float(np.prod(self.spacing))

    @property
    def volume(self) -> float:
        """Volume (3D, m³) or area (2D, m²) of the periodic box."""
        return self.cell_volume * self.size

    @property
    def lengths(self) -> tuple:
        """Box lengths (m)."""
        return tuple(n * d for n, d in zip(self.shape, self.spacing))

    def coordinates(self) -> list:
        """Open-mesh coordinate arrays (m), ``x_i = i * spacing``, broadcastable to ``shape``."""
        return list(np.meshgrid(*[np.arange(n) * d for n, d in zip(self.shape, self.spacing)],
                                indexing="ij", sparse=True))

    def wavenumber_squared(self) -> np.ndarray:
        """``|k|²`` (1/m²) on the half spectrum of :func:`scipy.fft.rfftn` (last axis halved)."""
        ks = [2.0 * np.pi * np.fft.fftfreq(n, d) for n, d in zip(self.shape[:-1],
                                                                 self.spacing[:-1])]
        ks.append(2.0 * np.pi * np.fft.rfftfreq(self.shape[-1], self.spacing[-1]))
        grids = np.meshgrid(*ks, indexing="ij", sparse=True)
        k2 = np.zeros(tuple(len(k) for k in ks))
        for g in grids:
            k2 = k2 + g * g
        return k2

    def half_spectrum_weights(self) -> np.ndarray:
        """Multiplicity of each half-spectrum mode in the full spectrum (1 or 2), shape of the
        last axis of the real-FFT output, for Parseval sums."""
        n = self.shape[-1]
        w = np.full(n // 2 + 1, 2.0)
        w[0] = 1.0
        if n % 2 == 0:
            w[-1] = 1.0
        return w

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "spacing": list(self.spacing)}


@dataclass(frozen=True)
class AllenCahn:
    """Allen–Cahn model ``∂φ/∂t = -L [W f'(φ) - κ∇²φ]``, ``f = φ²(1-φ)²``.

    Parameters
    ----------
    W : float or Estimate
        Double-well height (J/m³); see :func:`double_well_from_interface`.
    kappa : float or Estimate
        Gradient coefficient κ (J/m).
    mobility : float or Estimate
        L (m³/(J·s)); see :func:`allen_cahn_mobility`.
    stabilization : float
        S (J/m³) >= 0 of the stabilised semi-implicit scheme (0: plain semi-implicit).

    Estimates are converted to SI and their nominal value used.
    """

    W: float
    kappa: float
    mobility: float
    stabilization: float = 0.0
    kind = "allen-cahn"
    n_fields = 1

    def __post_init__(self):
        _scalar_model_init(self, "m^3/J/s")

    @property
    def interface_width(self) -> float:
        """Tangent width ``√(8κ/W)`` (m)."""
        return math.sqrt(8.0 * self.kappa / self.W)

    @property
    def interface_energy(self) -> float:
        """``σ = √(2κW)/6`` (J/m²)."""
        return math.sqrt(2.0 * self.kappa * self.W) / 6.0

    def to_dict(self) -> dict:
        return {"kind": self.kind, "W": self.W, "kappa": self.kappa, "mobility": self.mobility,
                "stabilization": self.stabilization}


@dataclass(frozen=True)
class CahnHilliard:
    """Cahn–Hilliard model ``∂c/∂t = ∇·M∇[W f'(c) - κ∇²c]``, ``f = c²(1-c)²``.

    Parameters
    ----------
    W, kappa : float or Estimate
        Double-well height (J/m³) and gradient coefficient (J/m).
    mobility : float or Estimate
        M (m⁵/(J·s)), constant; see :func:`cahn_hilliard_mobility`.
    stabilization : float
        S (J/m³) >= 0 of the stabilised scheme (0: plain semi-implicit).
    """

    W: float
    kappa: float
    mobility: float
    stabilization: float = 0.0
    kind = "cahn-hilliard"
    n_fields = 1

    def __post_init__(self):
        _scalar_model_init(self, "m^5/J/s")

    @property
    def interface_width(self) -> float:
        """Tangent width ``√(8κ/W)`` (m)."""
        return math.sqrt(8.0 * self.kappa / self.W)

    @property
    def interface_energy(self) -> float:
        """``σ = √(2κW)/6`` (J/m²)."""
        return math.sqrt(2.0 * self.kappa * self.W) / 6.0

    def to_dict(self) -> dict:
        return {"kind": self.kind, "W": self.W, "kappa": self.kappa, "mobility": self.mobility,
                "stabilization": self.stabilization}


def _scalar_model_init(model, mobility_unit: str) -> None:
    object.__setattr__(model, "W", _v.positive("W", _nominal("W", model.W, "J/m^3")))
    object.__setattr__(model, "kappa", _v.positive("kappa", _nominal("kappa", model.kappa, "J/m")))
    object.__setattr__(model, "mobility", _v.positive(
        "mobility", _nominal("mobility", model.mobility, mobility_unit)))
    object.__setattr__(model, "stabilization", _v.nonnegative(
        "stabilization", _nominal("stabilization", model.stabilization, "J/m^3")))


@dataclass(frozen=True)
class GrainGrowth:
    """Multi-order-parameter grain growth (Fan–Chen free energy, Moelans' form).

    ``F = ∫ m[Σ(φ_i⁴/4 - φ_i²/2) + γ Σ_{i<j} φ_i²φ_j² + 1/4] + κ/2 Σ|∇φ_i|² dV``,
    ``∂φ_i/∂t = -L δF/δφ_i``.

    Parameters
    ----------
    n_order_parameters : int
        Number of order parameters p >= 2 (grains sharing one are merged on contact).
    m : float or Estimate
        Energy-density scale (J/m³); see :func:`grain_growth_parameters`.
    kappa : float or Estimate
        Gradient coefficient (J/m).
    mobility : float or Estimate
        L (m³/(J·s)).
    gamma : float
        Cross-term coefficient γ > 1/2 (1.5: symmetric boundaries, the conversions' value).
    stabilization : float
        S (J/m³) >= 0.
    """

    n_order_parameters: int
    m: float
    kappa: float
    mobility: float
    gamma: float = 1.5
    stabilization: float = 0.0
    kind = "grain-growth"

    def __post_init__(self):
        object.__setattr__(self, "n_order_parameters",
                           _v.positive_int("n_order_parameters", self.n_order_parameters, 2))
        object.__setattr__(self, "m", _v.positive("m", _nominal("m", self.m, "J/m^3")))
        object.__setattr__(self, "kappa",
                           _v.positive("kappa", _nominal("kappa", self.kappa, "J/m")))
        object.__setattr__(self, "mobility", _v.positive(
            "mobility", _nominal("mobility", self.mobility, "m^3/J/s")))
        g = _v.finite("gamma", self.gamma)
        if g <= 0.5:
            raise InputError("gamma", self.gamma, "a number > 0.5 (stable grain interiors)")
        object.__setattr__(self, "gamma", g)
        object.__setattr__(self, "stabilization", _v.nonnegative(
            "stabilization", _nominal("stabilization", self.stabilization, "J/m^3")))

    @property
    def n_fields(self) -> int:
        return self.n_order_parameters

    @property
    def W(self) -> float:
        """The energy-density scale (alias of ``m``; used for tolerances)."""
        return self.m

    @property
    def interface_width(self) -> float:
        """Grain-boundary tangent width ``√(8κ/m)`` (m; exact for γ = 3/2)."""
        return math.sqrt(8.0 * self.kappa / self.m)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "n_order_parameters": self.n_order_parameters, "m": self.m,
                "kappa": self.kappa, "mobility": self.mobility, "gamma": self.gamma,
                "stabilization": self.stabilization}


_MODELS = {"allen-cahn": AllenCahn, "cahn-hilliard": CahnHilliard, "grain-growth": GrainGrowth}


def _model_from_dict(d: dict):
    d = dict(d)
    kind = d.pop("kind")
    return _MODELS[kind](**d)


@register("PhaseFieldState")
@dataclass(frozen=True)
class PhaseFieldState:
    """Everything a run needs to continue (plain data).

    Attributes
    ----------
    fields : numpy.ndarray
        ``(n_fields, *grid.shape)`` (φ, c or the order parameters).
    step : int
        Steps taken since the start of the run.
    time : float
        Simulated time (s).
    spectral : numpy.ndarray or None
        Cahn–Hilliard only: the real FFT of ``fields`` that the scheme carries (so the mass mode
        is never recomputed); ``None`` otherwise.
    """

    fields: np.ndarray
    step: int = 0
    time: float = 0.0
    spectral: np.ndarray | None = field(default=None, repr=False)

    def to_state(self) -> dict:
        return {"fields": self.fields, "step": int(self.step), "time": float(self.time),
                "spectral": self.spectral}

    @classmethod
    def from_state(cls, s: dict) -> "PhaseFieldState":
        return cls(fields=np.array(s["fields"]), step=int(s["step"]), time=float(s["time"]),
                   spectral=None if s["spectral"] is None else np.array(s["spectral"]))


# --------------------------------------------------------------------------------------------
# numba kernels (flat arrays)
# --------------------------------------------------------------------------------------------
@njit(cache=True, fastmath=False)
def _ac_rhs(phi, a, b, out):
    """out = a φ - b f'(φ),  f'(φ) = 2φ(1-φ)(1-2φ)."""
    for i in range(phi.size):
        p = phi[i]
        out[i] = a * p - b * (2.0 * p * (1.0 - p) * (1.0 - 2.0 * p))


@njit(cache=True, fastmath=False)
def _dw_force(c, w, out):
    """out = W f'(c)."""
    for i in range(c.size):
        p = c[i]
        out[i] = w * (2.0 * p * (1.0 - p) * (1.0 - 2.0 * p))


@njit(cache=True, fastmath=False)
def _ch_update(chat, ghat, p, q, out):
    """out = p ĉ - q ĝ (complex half spectrum, real multipliers)."""
    for i in range(chat.size):
        out[i] = p[i] * chat[i] - q[i] * ghat[i]


@njit(cache=True, fastmath=False)
def _gg_rhs(phi, a, b, m, gamma, out):
    """out_i = a φ_i - b m(-φ_i + φ_i³ + 2γ φ_i Σ_{j≠i} φ_j²); phi, out: (p, npts)."""
    nf, npts = phi.shape
    for x in range(npts):
        s2 = 0.0
        for i in range(nf):
            s2 += phi[i, x] * phi[i, x]
        for i in range(nf):
            q = phi[i, x]
            g = m * (-q + q * q * q + 2.0 * gamma * q * (s2 - q * q))
            out[i, x] = a * q - b * g


@njit(cache=True, fastmath=False)
def _dw_energy_sum(phi):
    s = 0.0
    for i in range(phi.size):
        p = phi[i]
        s += p * p * (1.0 - p) * (1.0 - p)
    return s


@njit(cache=True, fastmath=False)
def _gg_energy_sum(phi, gamma):
    nf, npts = phi.shape
    s = 0.0
    for x in range(npts):
        s2 = 0.0
        s4 = 0.0
        for i in range(nf):
            q2 = phi[i, x] * phi[i, x]
            s2 += q2
            s4 += q2 * q2
        s += 0.25 * s4 - 0.5 * s2 + gamma * 0.5 * (s2 * s2 - s4) + 0.25
    return s


@njit(cache=True, fastmath=False)
def _weighted_power(zhat, wk2):
    s = 0.0
    for i in range(zhat.size):
        z = zhat[i]
        s += wk2[i] * (z.real * z.real + z.imag * z.imag)
    return s


# --------------------------------------------------------------------------------------------
# the stepper (init/step over plain state)
# --------------------------------------------------------------------------------------------
@register("PhaseFieldStepper")
class PhaseFieldStepper:
    """Semi-implicit Fourier-spectral stepper of one model on one grid with one Δt.

    ``init(fields) -> PhaseFieldState`` and ``step(state) -> PhaseFieldState`` (new arrays; the
    input state is not modified); ``free_energy(state)`` in J (3D) or J/m (2D).  It is a
    simulation engine of the project's one protocol (:mod:`scaleladder.core.simulation`):
    ``advance(state, n)``, ``observe`` (time and free energy) and ``check`` (non-finite fields, a
    free energy that rises by more than ``energy_rtol`` relative plus round-off).

    Raises
    ------
    InputError
        Non-positive ``dt``; a grid spacing larger than a third of the interface width.
    """

    kind = "scaleladder.phasefield/2"

    def __init__(self, model, grid: SpectralGrid, dt: float, energy_rtol: float = 1e-10):
        if not isinstance(model, (AllenCahn, CahnHilliard, GrainGrowth)):
            raise InputError("model", type(model).__name__,
                             "an AllenCahn, CahnHilliard or GrainGrowth model")
        if not isinstance(grid, SpectralGrid):
            raise InputError("grid", type(grid).__name__, "a SpectralGrid")
        self.model = model
        self.grid = grid
        self.dt = _v.positive("dt", dt)
        self.energy_rtol = _v.nonnegative("energy_rtol", energy_rtol)
        check_resolution(model, grid)
        self.axes = tuple(range(-grid.ndim, 0))
        k2 = grid.wavenumber_squared()
        self._k2 = k2
        w = grid.half_spectrum_weights()
        self._wk2 = np.ascontiguousarray((k2 * w).ravel())
        self._norm = grid.cell_volume / grid.size  # Parseval: Σ|∇φ|²dV = dV/N Σ_k k²|φ̂|²
        L, S, kap, dt = model.mobility, model.stabilization, model.kappa, self.dt
        if isinstance(model, CahnHilliard):
            den = 1.0 + dt * L * k2 * (S + kap * k2)
            self._p = np.ascontiguousarray(((1.0 + dt * L * S * k2) / den).ravel())
            self._q = np.ascontiguousarray((dt * L * k2 / den).ravel())
        else:
            self._a = 1.0 + dt * L * S
            self._b = dt * L
            self._inv_den = 1.0 / (1.0 + dt * L * (S + kap * k2))

    # ---- FFT helpers --------------------------------------------------------------------
    def _rfft(self, x: np.ndarray) -> np.ndarray:
        import scipy.fft as sfft

        return sfft.rfftn(x, axes=self.axes, workers=-1, overwrite_x=True)

    def _irfft(self, z: np.ndarray, overwrite: bool = True) -> np.ndarray:
        import scipy.fft as sfft

        return sfft.irfftn(z, s=self.grid.shape, axes=self.axes, workers=-1,
                           overwrite_x=overwrite)

    # ---- init / step --------------------------------------------------------------------
    def init(self, fields, *, step: int = 0, time: float = 0.0) -> PhaseFieldState:
        """A state from initial fields (``grid.shape`` for one-field models or
        ``(n_fields, *grid.shape)``)."""
        arr = np.asarray(fields, dtype=float)
        nf = self.model.n_fields
        if arr.shape == self.grid.shape and nf == 1:
            arr = arr[None]
        _v.finite_array("fields", arr, (nf,) + self.grid.shape)
        arr = np.ascontiguousarray(arr, dtype=float).copy()
        spectral = None
        if isinstance(self.model, CahnHilliard):
            spectral = self._rfft(arr[0].copy())
        return PhaseFieldState(fields=arr, step=int(step), time=float(time), spectral=spectral)

    def step(self, state: PhaseFieldState) -> PhaseFieldState:
        """One semi-implicit step (one forward and one inverse real FFT per field)."""
        model = self.model
        phi = state.fields
        if isinstance(model, CahnHilliard):
            c = phi[0]
            g = np.empty_like(c)
            _dw_force(c.ravel(), model.W, g.ravel())
            ghat = self._rfft(g)
            chat_new = np.empty_like(ghat)
            _ch_update(state.spectral.ravel(), ghat.ravel(), self._p, self._q, chat_new.ravel())
            c_new = self._irfft(chat_new, overwrite=False)
            return PhaseFieldState(fields=c_new[None], step=state.step + 1,
                                   time=state.time + self.dt, spectral=chat_new)
        rhs = np.empty_like(phi)
        if isinstance(model, AllenCahn):
            _ac_rhs(phi.ravel(), self._a, self._b * model.W, rhs.ravel())
        else:
            _gg_rhs(phi.reshape(phi.shape[0], -1), self._a, self._b, model.m, model.gamma,
                    rhs.reshape(phi.shape[0], -1))
        zhat = self._rfft(rhs)
        zhat *= self._inv_den
        new = self._irfft(zhat)
        return PhaseFieldState(fields=new, step=state.step + 1, time=state.time + self.dt)

    # ---- the simulation protocol --------------------------------------------------------
    def advance(self, state: PhaseFieldState, n: int) -> tuple[PhaseFieldState, int, None]:
        """``n`` steps (the protocol's ``advance``)."""
        for _ in range(int(n)):
            state = self.step(state)
        return state, int(n), None

    def observe(self, state: PhaseFieldState) -> dict:
        """Time (s) and free energy (J, or J/m in 2D) of ``state``."""
        return {"time": float(state.time), "free_energy": float(self.free_energy(state))}

    def check(self, state: PhaseFieldState, history: dict, obs: dict) -> None:
        """Refuse non-finite fields and a free energy that rises beyond round-off."""
        e, dt = obs["free_energy"], self.dt
        if not (np.isfinite(e) and np.all(np.isfinite(state.fields))):
            raise CalculationError(
                f"phase field became non-finite at step {state.step} (t = {state.time:.6g} s) "
                f"with dt = {dt:.6g} s: dt too large for the explicit part; reduce dt or raise "
                f"the model's stabilization")
        energies = history.get("free_energy") or []
        if energies:
            e_old = energies[-1]
            tol = (self.energy_rtol * max(abs(e_old), abs(e))
                   + 1e-12 * self.model.W * self.grid.volume)
            if e - e_old > tol:
                raise CalculationError(
                    f"free energy increased between step {history['step'][-1]} and step "
                    f"{state.step} (from {e_old:.12g} to {e:.12g}, by {e - e_old:.3g} > tolerance "
                    f"{tol:.3g}) with dt = {dt:.6g} s: dt too large for this gradient flow; "
                    f"reduce dt or raise the model's stabilization")

    def to_state(self) -> dict:
        return {"model": self.model.to_dict(), "grid": self.grid.to_dict(), "dt": float(self.dt),
                "energy_rtol": float(self.energy_rtol)}

    @classmethod
    def from_state(cls, s: dict) -> "PhaseFieldStepper":
        grid = SpectralGrid(tuple(s["grid"]["shape"]), tuple(s["grid"]["spacing"]))
        return cls(_model_from_dict(s["model"]), grid, float(s["dt"]),
                   float(s.get("energy_rtol", 1e-10)))

    # ---- energy ---------------------------------------------------------------------------
    def free_energy(self, state: PhaseFieldState) -> float:
        """Free energy (J in 3D, J/m in 2D) with the spectral gradient term."""
        model = self.model
        phi = state.fields
        nf = phi.shape[0]
        if isinstance(model, GrainGrowth):
            bulk = model.m * _gg_energy_sum(phi.reshape(nf, -1), model.gamma)
        else:
            bulk = model.W * _dw_energy_sum(phi.ravel())
        grad = 0.0
        if state.spectral is not None:
            grad = _weighted_power(state.spectral.ravel(), self._wk2)
        else:
            zhat = self._rfft(phi.copy())
            for i in range(nf):
                grad += _weighted_power(zhat[i].ravel(), self._wk2)
        return self.grid.cell_volume * bulk + 0.5 * model.kappa * self._norm * grad


def check_resolution(model, grid: SpectralGrid) -> None:
    """InputError naming ``grid.spacing`` when fewer than 3 grid points lie across the
    model's interface width."""
    ell = model.interface_width
    dx = max(grid.spacing)
    if ell / dx < _MIN_POINTS_ACROSS:
        raise InputError("grid.spacing", grid.spacing if len(set(grid.spacing)) > 1 else dx,
                         f"at most {ell / _MIN_POINTS_ACROSS:.4g} (interface width / 3)",
                         hint=f"the interface width {ell:.4g} (tangent, √(8κ/W)) spans only "
                              f"{ell / dx:.2f} grid points; resolve it with at least 3")


# --------------------------------------------------------------------------------------------
# runs, checkpoints
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhaseFieldResult:
    """The outcome of :func:`run_phasefield`.

    Attributes
    ----------
    state : PhaseFieldState
        Final state.
    steps, times, energies : numpy.ndarray
        Where the free energy was monitored (the first entry is the run's start; a resumed
        run's history includes the original run's), time in s, energy in J (3D) or J/m (2D).
    model, grid, dt
        What was run.
    elapsed_s : float
        Wall time of this call.
    """

    state: PhaseFieldState
    steps: np.ndarray
    times: np.ndarray
    energies: np.ndarray
    model: Any
    grid: SpectralGrid
    dt: float
    elapsed_s: float = 0.0

    @property
    def fields(self) -> np.ndarray:
        return self.state.fields


def _to_driver_history(history: dict | None) -> dict:
    h = history or {"steps": [], "times": [], "energies": []}
    return {"step": [int(x) for x in h["steps"]], "time": [float(x) for x in h["times"]],
            "free_energy": [float(x) for x in h["energies"]]}


def write_checkpoint(path, state: PhaseFieldState, model, grid: SpectralGrid, dt: float,
                     history: dict | None = None) -> Path:
    """Write a run's state as the one simulation driver does (the one checkpoint format:
    atomic, fsynced, hashed, no pickle; :func:`resume_phasefield` continues it)."""
    from ..core.simulation import write_simulation_checkpoint

    return write_simulation_checkpoint(path, PhaseFieldStepper(model, grid, dt), state,
                                       _to_driver_history(history))


def read_checkpoint(path) -> tuple:
    """Read a checkpoint: ``(state, model, grid, dt, history)``.

    Raises
    ------
    InputError
        (a ``CheckpointError``) a missing, unreadable, corrupt or foreign file.
    """
    from ..core.simulation import read_simulation_checkpoint

    engine, state, h = read_simulation_checkpoint(path, kind=PhaseFieldStepper.kind)
    history = {"steps": list(h["step"]), "times": list(h.get("time", [])),
               "energies": list(h.get("free_energy", []))}
    return state, engine.model, engine.grid, float(engine.dt), history


def run_phasefield(model, grid: SpectralGrid, initial, dt: float, steps: int, *,
                   energy_every: int = 10, energy_rtol: float = 1e-10,
                   checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
                   log_every: int | None = None) -> PhaseFieldResult:
    """Run a phase-field model for ``steps`` steps, monitoring the free energy.

    Parameters
    ----------
    model : AllenCahn, CahnHilliard or GrainGrowth
    grid : SpectralGrid
    initial : numpy.ndarray or PhaseFieldState
        Initial fields (``grid.shape`` or ``(n_fields, *grid.shape)``) or a state.
    dt : float
        Time step (s), > 0.
    steps : int
        Steps to take, >= 1.
    energy_every : int
        Evaluate the free energy every this many steps (and at the end).  Each evaluation costs
        one extra forward FFT per field (none for Cahn–Hilliard).
    energy_rtol : float
        A free energy that rises by more than ``energy_rtol * max(|F_old|, |F_new|)`` plus
        round-off of the energy scale (``1e-12 W V``) between two evaluations stops the run.
    checkpoint : path, optional
        ``.npz`` written atomically every ``checkpoint_every`` steps (default: every
        ``energy_every * 100`` steps) and at the end.
    log_every : int, optional
        Log progress (``logging.INFO``, logger ``scaleladder.mesoscale.phasefield``) every this
        many steps (default: about 10 messages per run).

    Returns
    -------
    PhaseFieldResult

    Raises
    ------
    InputError
        Bad ``dt``, ``steps``, grid too coarse for the interface, fields of the wrong shape.
    CalculationError
        The free energy increased beyond round-off or a field became non-finite: names the step
        and Δt (too large; reduce it or set the model's ``stabilization``).
    """
    stepper = PhaseFieldStepper(model, grid, dt, energy_rtol=energy_rtol)
    state = initial if isinstance(initial, PhaseFieldState) else stepper.init(initial)
    if isinstance(initial, PhaseFieldState):
        _v.finite_array("initial.fields", state.fields, (model.n_fields,) + grid.shape)
        if isinstance(model, CahnHilliard) and state.spectral is None:
            state = stepper.init(state.fields, step=state.step, time=state.time)
    return _drive(stepper, state, steps, None, energy_every=energy_every, checkpoint=checkpoint,
                  checkpoint_every=checkpoint_every, log_every=log_every)


def resume_phasefield(checkpoint: str | os.PathLike, steps: int, *, energy_every: int = 10,
                      energy_rtol: float = 1e-10, checkpoint_every: int | None = None,
                      log_every: int | None = None) -> PhaseFieldResult:
    """Continue a run from a checkpoint written by :func:`run_phasefield` for ``steps`` further
    steps (the checkpoint keeps being updated).  With the same ``energy_every`` the result --
    fields and energy history -- is that of the uninterrupted run, bit for bit."""
    from ..core.simulation import read_simulation_checkpoint

    engine, state, history = read_simulation_checkpoint(checkpoint, kind=PhaseFieldStepper.kind)
    engine.energy_rtol = _v.nonnegative("energy_rtol", energy_rtol)
    _v.finite_array("checkpoint fields", state.fields,
                    (engine.model.n_fields,) + engine.grid.shape)
    return _drive(engine, state, steps, history, energy_every=energy_every,
                  checkpoint=checkpoint, checkpoint_every=checkpoint_every, log_every=log_every)


def _drive(stepper: PhaseFieldStepper, state: PhaseFieldState, steps, history, *, energy_every,
           checkpoint, checkpoint_every, log_every) -> PhaseFieldResult:
    """Run through the one simulation driver and shape its history as a PhaseFieldResult."""
    from ..core.simulation import run_simulation

    energy_every = _v.positive_int("energy_every", energy_every)
    if checkpoint_every is None:
        checkpoint_every = energy_every * 100
    model, grid = stepper.model, stepper.grid
    run = run_simulation(stepper, state, steps, observe_every=energy_every,
                         checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                         history=history, log_every=log_every,
                         label=f"phase field {model.kind} on {'x'.join(map(str, grid.shape))}")
    h = run.history
    return PhaseFieldResult(state=run.state, steps=np.asarray(h["step"], dtype=np.int64),
                            times=np.asarray(h["time"]),
                            energies=np.asarray(h["free_energy"]), model=model, grid=grid,
                            dt=stepper.dt, elapsed_s=run.elapsed_s)


# --------------------------------------------------------------------------------------------
# initial conditions and analysis
# --------------------------------------------------------------------------------------------
def tanh_profile(distance, width: float):
    """Equilibrium profile ``½[1 + tanh(d / (2δ))]`` with ``δ = width/4`` (tangent width ℓ);
    ``distance`` signed (m), positive inside the φ = 1 phase."""
    width = _v.positive("width", width)
    return 0.5 * (1.0 + np.tanh(np.asarray(distance, dtype=float) * 2.0 / width))


def circle(grid: SpectralGrid, radius: float, width: float, centre=None) -> np.ndarray:
    """A disc (2D) or ball (3D) of φ = 1 in φ = 0 with the tanh profile of tangent width
    ``width``, centred in the box unless ``centre`` (m) is given (distances not wrapped)."""
    radius = _v.positive("radius", radius)
    if centre is None:
        centre = [0.5 * L for L in grid.lengths]
    centre = _v.finite_array("centre", centre, (grid.ndim,))
    r2 = 0.0
    for x, c0 in zip(grid.coordinates(), centre):
        r2 = r2 + (x - c0) ** 2
    return tanh_profile(radius - np.sqrt(r2), width) * np.ones(grid.shape)


def voronoi_grains(grid: SpectralGrid, n_grains: int, n_order_parameters: int,
                   seed: int | None = 0) -> np.ndarray:
    """Sharp Voronoi grains (periodic distances, random seeds) for :class:`GrainGrowth`.

    Each grain gets one order parameter set to 1 (0 elsewhere), chosen greedily so that
    neighbouring grains -- and, where ``n_order_parameters`` allows, neighbours of neighbours --
    do not share one (grains sharing an order parameter merge on contact).  Returns
    ``(n_order_parameters, *grid.shape)``.
    """
    n_grains = _v.positive_int("n_grains", n_grains)
    p = _v.positive_int("n_order_parameters", n_order_parameters, 2)
    rng = np.random.default_rng(seed)
    seeds = rng.random((n_grains, grid.ndim)) * np.asarray(grid.lengths)
    coords = grid.coordinates()
    best = np.full(grid.shape, np.inf)
    owner = np.zeros(grid.shape, dtype=np.int64)
    for g, s in enumerate(seeds):
        d2 = np.zeros(grid.shape)
        for ax, (x, L) in enumerate(zip(coords, grid.lengths)):
            dx = np.abs(x - s[ax])
            dx = np.minimum(dx, L - dx)
            d2 = d2 + dx * dx
        closer = d2 < best
        best[closer] = d2[closer]
        owner[closer] = g
    neighbours = [set() for _ in range(n_grains)]
    for ax in range(grid.ndim):
        a, b = owner.ravel(), np.roll(owner, 1, axis=ax).ravel()
        for i, j in set(zip(a[a != b].tolist(), b[a != b].tolist())):
            neighbours[i].add(j)
            neighbours[j].add(i)
    colour = np.full(n_grains, -1)
    for g in sorted(range(n_grains), key=lambda i: -len(neighbours[i])):
        first = {int(colour[j]) for j in neighbours[g] if colour[j] >= 0}
        second = {int(colour[k]) for j in neighbours[g] for k in neighbours[j]
                  if k != g and colour[k] >= 0}
        for avoid in (first | second, first):
            free = [c for c in range(p) if c not in avoid]
            if free:
                colour[g] = free[int(rng.integers(len(free)))]
                break
        else:
            colour[g] = int(rng.integers(p))
    out = np.zeros((p,) + grid.shape)
    for i in range(p):
        out[i][colour[owner] == i] = 1.0
    return out


def periodic_components(mask) -> tuple[np.ndarray, int]:
    """Connected regions (face neighbours) of a boolean map on the periodic grid: labels
    ``1..n`` (0 outside the mask) and ``n``; regions that touch across a periodic boundary are
    one region."""
    from scipy import ndimage

    labels, n = ndimage.label(np.asarray(mask, dtype=bool))
    if n == 0:
        return labels, 0
    parent = np.arange(n + 1)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for ax in range(labels.ndim):
        first = np.take(labels, 0, axis=ax)
        last = np.take(labels, -1, axis=ax)
        for a, b in zip(first.ravel(), last.ravel()):
            if a and b:
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[ra] = rb
    roots = np.array([find(i) for i in range(n + 1)])
    uniq, new = np.unique(roots, return_inverse=True)     # root 0 (background) stays 0
    return new[labels.ravel()].reshape(labels.shape), int(len(uniq) - 1)


def count_grains(fields, threshold: float = 0.5, min_size: int = 1) -> int:
    """Number of grains: periodic connected regions (face neighbours) where an order parameter
    exceeds ``threshold``, with at least ``min_size`` grid points."""
    total = 0
    for phi in np.asarray(fields, dtype=float):
        labels, n = periodic_components(phi > threshold)
        if n:
            sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
            total += int(np.count_nonzero(sizes >= min_size))
    return total


def _grid_size_um(grid: "SpectralGrid") -> tuple:
    return tuple(n * h * 1e6 for n, h in zip(grid.shape, grid.spacing))


def grain_microstructure(state_or_fields, grid: "SpectralGrid", *, min_size: int = 1):
    """The grain map of a grain-growth state as a :class:`~scaleladder.handoffs.Microstructure`
    (geometry only; lengths in µm from the grid's metres).

    Each grid point belongs to the order parameter that is largest there; each periodic
    connected region of one order parameter is a grain (grains of one order parameter that do
    not touch are distinct).  Regions smaller than ``min_size`` points join the neighbouring
    grain they share most faces with.  The continuum attaches the crystal's stiffness and
    orientations (``with_phases``): the mesoscale knows no elastic constants.
    """
    from ..handoffs import Microstructure

    fields = _fields_of(state_or_fields)
    if fields.ndim != len(grid.shape) + 1 or fields.shape[1:] != tuple(grid.shape):
        raise InputError("fields", f"shape {fields.shape}",
                         f"(n_order_parameters, *{tuple(grid.shape)})")
    owner = np.argmax(fields, axis=0)
    lab = np.zeros(grid.shape, dtype=np.int64)
    n_total = 0
    for i in range(fields.shape[0]):
        comp, n = periodic_components(owner == i)
        lab[comp > 0] = comp[comp > 0] - 1 + n_total
        n_total += n
    min_size = _v.positive_int("min_size", min_size)
    if min_size > 1:
        for _ in range(4):
            sizes = np.bincount(lab.ravel(), minlength=n_total)
            small = np.flatnonzero((sizes > 0) & (sizes < min_size))
            if not small.size:
                break
            for g in small:
                mask = lab == g
                nb = np.concatenate([np.roll(lab, sh, axis=ax)[mask]
                                     for ax in range(lab.ndim) for sh in (1, -1)])
                nb = nb[nb != g]
                if nb.size:
                    lab[mask] = np.bincount(nb).argmax()
    uniq, lab = np.unique(lab, return_inverse=True)
    lab = lab.reshape(grid.shape)
    return Microstructure(lab, _grid_size_um(grid), "um", kind="grains",
                          label_phase=np.zeros(len(uniq), dtype=np.int64),
                          phase_names=("crystal",),
                          provenance={"generator": "phase-field grain growth (mesoscale)",
                                      "n_order_parameters": int(fields.shape[0]),
                                      "n_grains": int(len(uniq))})


def phase_microstructure(state_or_field, grid: "SpectralGrid", *, threshold: float = 0.5):
    """A two-phase map (``c <= threshold``: phase 0, above: phase 1) of a Cahn–Hilliard
    composition field as a :class:`~scaleladder.handoffs.Microstructure` (geometry only;
    lengths in µm)."""
    from ..handoffs import Microstructure

    c = _fields_of(state_or_field)
    if c.ndim == len(grid.shape) + 1 and c.shape[0] == 1:
        c = c[0]
    if c.shape != tuple(grid.shape):
        raise InputError("field", f"shape {c.shape}", f"one field of shape {tuple(grid.shape)}")
    lab = (c > _v.finite("threshold", threshold)).astype(np.int64)
    if lab.min() == lab.max():
        raise InputError("threshold", threshold, "a value between the field's two phases "
                         f"(the field spans {float(c.min()):.3g}..{float(c.max()):.3g})")
    return Microstructure(lab, _grid_size_um(grid), "um", kind="phases",
                          phase_names=("low", "high"),
                          provenance={"generator": "phase-field Cahn-Hilliard (mesoscale)",
                                      "threshold": float(threshold)})


def _fields_of(state_or_fields) -> np.ndarray:
    """The fields of a PhaseFieldState / PhaseFieldResult, or the array given."""
    return np.asarray(getattr(state_or_fields, "fields", state_or_fields), dtype=float)


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------
def _display_field(state_or_fields, grid) -> np.ndarray:
    arr = _fields_of(state_or_fields)
    if arr.ndim == 2 or (grid is not None and arr.shape == grid.shape):  # a bare field
        return arr
    if arr.shape[0] == 1:
        return arr[0]
    return np.sum(arr * arr, axis=0)  # grain growth: Σφ² (boundaries dark)


def write_png(path, state_or_fields, grid: SpectralGrid | None = None, *, title: str = "",
              cmap: str = "viridis") -> Path:
    """A PNG image of a field (matplotlib Agg, no pyplot state).

    One-field models show φ or c; grain growth shows ``Σφ_i²`` (1 in grains, lower at
    boundaries).  3D fields show the mid-plane normal to the last axis.  Axes in m when ``grid``
    is given, else grid points."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    f = _display_field(state_or_fields, grid)
    if f.ndim == 3:
        f = f[:, :, f.shape[2] // 2]
    if f.ndim != 2:
        raise InputError("state_or_fields", f"array of shape {f.shape}", "a 2D or 3D field")
    extent = None
    if grid is not None:
        extent = [0.0, grid.lengths[0], 0.0, grid.lengths[1]]
    fig = Figure(figsize=(5, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    im = ax.imshow(f.T, origin="lower", extent=extent, cmap=cmap, interpolation="nearest")
    fig.colorbar(im, ax=ax)
    unit = " (m)" if grid is not None else " (grid points)"
    ax.set_xlabel("x" + unit)
    ax.set_ylabel("y" + unit)
    if title:
        ax.set_title(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def write_vtk(path, state_or_fields, grid: SpectralGrid, *, names: Sequence[str] | None = None,
              title: str = "scaleladder phase field") -> Path:
    """Write every field to a legacy VTK structured-points file (binary, big-endian float32;
    2D grids get one point along z).  Readable by ParaView, VisIt and meshio."""
    arr = state_or_fields.fields if isinstance(state_or_fields, PhaseFieldState) else \
        np.asarray(state_or_fields, dtype=float)
    if arr.shape == grid.shape:
        arr = arr[None]
    _v.finite_array("fields", arr, (None,) + grid.shape)
    if names is None:
        names = ["phi"] if arr.shape[0] == 1 else [f"phi_{i}" for i in range(arr.shape[0])]
    if len(names) != arr.shape[0]:
        raise InputError("names", names, f"{arr.shape[0]} names, one per field")
    dims = list(grid.shape) + [1] * (3 - grid.ndim)
    sp = list(grid.spacing) + [grid.spacing[0]] * (3 - grid.ndim)
    header = (f"# vtk DataFile Version 3.0\n{title[:255]}\nBINARY\nDATASET STRUCTURED_POINTS\n"
              f"DIMENSIONS {dims[0]} {dims[1]} {dims[2]}\nORIGIN 0 0 0\n"
              f"SPACING {sp[0]:.10g} {sp[1]:.10g} {sp[2]:.10g}\nPOINT_DATA {grid.size}\n")
    from ..core.fsio import atomic_write

    body = [header.encode("ascii")]
    for name, f in zip(names, arr):
        body.append(f"SCALARS {name} float 1\nLOOKUP_TABLE default\n".encode("ascii"))
        body.append(np.asarray(f, dtype=">f4").ravel(order="F").tobytes())
        body.append(b"\n")
    return atomic_write(path, b"".join(body))
