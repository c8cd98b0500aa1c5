"""Lattice thermal conductivity as a function of temperature."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.codec import register
from ..core.errors import InputError
from ..uq import Estimate
from ._common import DataclassCodec, check_str, setf, str_dict

__all__ = ["ThermalConductivity"]

UNIT = "W/m/K"


@register("ThermalConductivity")
@dataclass(frozen=True, eq=False)
class ThermalConductivity(DataclassCodec):
    """The lattice thermal conductivity tensor at each temperature.

    Parameters
    ----------
    temperatures_K : (n,) array, increasing, > 0
    kappa : Estimate of shape (n, 3, 3), W/(m K), symmetric, positive semi-definite
        (sources: e.g. the q-mesh and supercell convergence, the potential)
    method : str
        ``"RTA"`` or ``"LBTE"`` (phonon Boltzmann transport), ``"given"``...
    provenance : dict
        The force constants' supercell, displacement, pair cutoff; the q-mesh; the calculator;
        phono3py's version.
    """

    temperatures_K: np.ndarray
    kappa: Estimate
    method: str
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        T = np.asarray(self.temperatures_K, dtype=float).reshape(-1)
        if T.size < 1 or np.any(~np.isfinite(T)) or np.any(T <= 0) or np.any(np.diff(T) <= 0):
            raise InputError("temperatures_K", T.tolist()[:8], "increasing temperatures > 0 K")
        T = T.copy()
        T.setflags(write=False)
        setf(self, "temperatures_K", T)
        k = self.kappa
        if not isinstance(k, Estimate):
            k = Estimate(np.asarray(k, dtype=float), UNIT)
        k = k.to(UNIT)
        if k.shape != (T.size, 3, 3):
            raise InputError("kappa", k.shape, f"shape ({T.size}, 3, 3): one tensor per "
                             f"temperature")
        v = np.asarray(k.value)
        if not np.allclose(v, np.swapaxes(v, 1, 2), rtol=1e-6, atol=1e-9 * max(abs(v).max(), 1)):
            raise InputError("kappa", "asymmetric", "symmetric tensors (Onsager)")
        ev = np.linalg.eigvalsh(0.5 * (v + np.swapaxes(v, 1, 2)))
        if np.any(ev < -1e-9 * max(abs(v).max(), 1.0)):
            raise InputError("kappa", float(ev.min()), "positive semi-definite tensors "
                             "(heat flows from hot to cold)")
        setf(self, "kappa", k)
        check_str("method", self.method, allow_empty=False)
        setf(self, "provenance", str_dict("provenance", self.provenance))

    def scalar(self) -> Estimate:
        """The isotropic part, trace/3, per temperature (Estimate, W/(m K))."""
        k = self.kappa
        return (k[:, 0, 0] + k[:, 1, 1] + k[:, 2, 2]) / 3.0

    def at(self, T: float) -> float:
        """The nominal isotropic conductivity at ``T`` (K), interpolated linearly in 1/T
        (kappa ~ 1/T where Umklapp dominates); outside the tabulated range, an error."""
        T = float(T)
        t = self.temperatures_K
        if not t[0] <= T <= t[-1]:
            raise InputError("T", T, f"a temperature in the tabulated range [{t[0]:g}, "
                             f"{t[-1]:g}] K")
        s = np.asarray(self.scalar().value)
        if t.size == 1:
            return float(s[0])
        return float(np.interp(1.0 / T, (1.0 / t)[::-1], s[::-1]))

    def __str__(self) -> str:
        s = self.scalar()
        return (f"ThermalConductivity({self.method}; " + ", ".join(
            f"{T:g} K: {float(v):.4g}" for T, v in zip(self.temperatures_K, s.value))
            + f" {UNIT})")
