"""Elastic dipole tensor of a point defect (eV) and what follows from it in linear elasticity.

A point defect (or the saddle point of its jump) in a crystal is, far from its core, a force
dipole: its interaction with a homogeneous strain ε is ``E(ε) = E(0) - P:ε`` to first order,
``P_ij`` the elastic dipole tensor (eV).  With the compliance ``S = C^-1``:

* relaxation volume tensor ``Ω = S:P`` (Å³; the strain the defect imposes on a free crystal of
  volume V is ``Ω / V``) and relaxation volume ``ΔV = tr Ω``;
* the energy of the defect in a supercell at zero stress, from the one at fixed (perfect-crystal)
  cell: ``E(σ = 0) = E(ε = 0) - P:S:P / (2 V)`` -- the homogeneous part of the elastic
  finite-size correction (Varvenne, Bruneval, Marinica and Clouet, Phys. Rev. B 88, 134102
  (2013)).

Sign convention: stresses as ASE returns them (``σ = (1/V) ∂E/∂ε``, tensile positive); the
dipole of a relaxed defect cell at the perfect cell is ``P = -V (σ_defect - σ_perfect)``, so a
defect that expands the lattice has ``tr P > 0`` and is pulled towards tension.  Strains are
small strains, Voigt order ``xx, yy, zz, yz, xz, xy`` with engineering shears
(:mod:`scaleladder.core.tensors`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.codec import register
from ..core.errors import InputError
from ..core.tensors import small_strain_tensor, stress_voigt
from ..core.validate import finite, finite_array, positive_int
from ..uq import Estimate
from ._common import DataclassCodec, check_str, estimate_in, setf, str_dict
from .potential import check_domain_warnings

__all__ = ["ElasticDipole", "GPA_A3_PER_EV"]

#: 1 eV / Å³ in GPa: a compliance in 1/GPa times a dipole in eV is GPA_A3_PER_EV Å³ per unit
GPA_A3_PER_EV = 160.21766208

#: relative asymmetry of P accepted (then symmetrised)
SYMMETRY_ATOL = 1e-6


def _strain(strain: Any) -> np.ndarray:
    s = np.asarray(strain, dtype=float)
    if s.shape == (6,):
        return small_strain_tensor(s)
    s = finite_array("strain", s, (3, 3))
    if not np.allclose(s, s.T, atol=1e-12):
        raise InputError("strain", s.tolist(), "a symmetric 3x3 small strain or a Voigt 6-vector "
                         "with engineering shears")
    return s


def _compliance(elastic: Any) -> np.ndarray:
    """6x6 compliance (1/GPa) of an ElasticTensor handoff or a 6x6 stiffness in GPa."""
    c = elastic.voigt.value if hasattr(elastic, "voigt") else elastic
    c = finite_array("elastic", c, (6, 6))
    try:
        return np.linalg.inv(c)
    except np.linalg.LinAlgError:
        raise InputError("elastic", c.tolist(), "an invertible 6x6 stiffness in GPa") from None


@register("ElasticDipole")
@dataclass(frozen=True, eq=False)
class ElasticDipole(DataclassCodec):
    """Elastic dipole tensor ``P`` of a point defect or a saddle point (eV).

    Parameters
    ----------
    tensor : Estimate
        3x3, an energy unit (stored in eV); symmetric within 1e-6 eV (then symmetrised).
    defect : str
        What it is the dipole of, e.g. ``"H octahedral"``, ``"H O-T saddle"``.
    host : str
        The crystal, e.g. ``"fcc Ni (NiAlH EAM)"``.
    supercell_atoms : int
        Atoms of the perfect supercell it was computed in (>= 1).
    volume_A3 : float
        Volume of that supercell (Å³, positive).
    provenance : dict
        Free-form record (method, relaxation, cell...).
    domain_warnings : tuple of str
        Training-domain warnings of a fitted potential used (``()`` if none).

    Raises
    ------
    InputError
        Wrong shape or unit, non-finite, asymmetric tensor, or a non-positive volume.
    """

    tensor: Estimate
    defect: str = ""
    host: str = ""
    supercell_atoms: int = 1
    volume_A3: float = 1.0
    provenance: dict = field(default_factory=dict)
    domain_warnings: tuple = ()

    def __post_init__(self) -> None:
        t = estimate_in("tensor", self.tensor, "eV", (3, 3))
        p = np.asarray(t.value)
        if not np.all(np.isfinite(p)):
            raise InputError("tensor", p.tolist(), "a finite 3x3 dipole tensor (eV)")
        if np.abs(p - p.T).max() > SYMMETRY_ATOL * max(1.0, np.abs(p).max()):
            raise InputError("tensor", p.tolist(), "a symmetric 3x3 tensor (an elastic dipole "
                             "has no torque)")
        def sym(a):
            a = np.asarray(a, dtype=float)
            return 0.5 * (a + np.swapaxes(a, -1, -2))
        setf(self, "tensor", Estimate(sym(p), "eV",
                                      {k: sym(v) for k, v in t.sources.items()}))
        check_str("defect", self.defect)
        check_str("host", self.host)
        setf(self, "supercell_atoms", positive_int("supercell_atoms", self.supercell_atoms, 1))
        v = finite("volume_A3", self.volume_A3)
        if v <= 0:
            raise InputError("volume_A3", v, "the positive volume of the supercell (Å³)")
        setf(self, "volume_A3", float(v))
        setf(self, "provenance", str_dict("provenance", self.provenance))
        setf(self, "domain_warnings",
             check_domain_warnings("domain_warnings", self.domain_warnings))

    # ------------------------------------------------------------------ derived quantities
    @property
    def voigt(self) -> np.ndarray:
        """Nominal P in Voigt order (tensor components, no factor 2), eV."""
        return stress_voigt(np.asarray(self.tensor.value))

    def _map(self, fn) -> tuple:
        """``fn`` of the nominal P and of every sample of every source (a linear-in-samples
        propagation that keeps the named sources)."""
        t = self.tensor
        nominal = fn(np.asarray(t.value))
        sources = {name: np.array([fn(np.asarray(s)) for s in samples])
                   for name, samples in t.sources.items()}
        return nominal, sources

    def energy_change(self, strain: Any) -> Estimate:
        """First-order change of the defect's energy under a homogeneous strain, ``-P:ε`` (eV);
        ``strain`` a 3x3 small strain or a Voigt 6-vector with engineering shears."""
        e = _strain(strain)
        nom, src = self._map(lambda p: -float(np.sum(p * e)))
        return Estimate(nom, "eV", src)

    def relaxation_volume_tensor(self, elastic: Any) -> Estimate:
        """``Ω = S:P`` (Å³, 3x3) for the host's stiffness (``ElasticTensor`` or 6x6 GPa)."""
        s = _compliance(elastic)

        def omega(p):
            return small_strain_tensor(s @ stress_voigt(p)) * GPA_A3_PER_EV
        nom, src = self._map(omega)
        return Estimate(nom, "Å^3", src)

    def relaxation_volume(self, elastic: Any) -> Estimate:
        """``ΔV = tr(S:P)`` (Å³): the volume change of a free crystal per defect."""
        s = _compliance(elastic)
        nom, src = self._map(lambda p: float(np.trace(small_strain_tensor(s @ stress_voigt(p))))
                             * GPA_A3_PER_EV)
        return Estimate(nom, "Å^3", src)

    def elastic_correction(self, elastic: Any, volume_A3: float | None = None) -> Estimate:
        """``E(σ=0) - E(ε=0) = -P:S:P / (2V)`` (eV) in a supercell of ``volume_A3`` (default:
        the one P was computed in): add it to a fixed-cell energy for the zero-stress one."""
        s = _compliance(elastic)
        v = self.volume_A3 if volume_A3 is None else finite("volume_A3", volume_A3)
        if v <= 0:
            raise InputError("volume_A3", v, "a positive volume (Å³)")

        def corr(p):
            pv = stress_voigt(p)
            return -0.5 * float(pv @ (s @ pv)) * GPA_A3_PER_EV / v
        nom, src = self._map(corr)
        return Estimate(nom, "eV", src)

    def cell_strain(self, elastic: Any) -> float:
        """Largest component of ``Ω / V``: the strain the defect would impose on its supercell
        if the cell were free.  Linear elasticity (and the correction) needs it small."""
        om = np.asarray(self.relaxation_volume_tensor(elastic).value)
        return float(np.abs(om).max() / self.volume_A3)

    def summary(self) -> str:
        p = np.asarray(self.tensor.value)
        return (f"ElasticDipole {self.defect} in {self.host} ({self.supercell_atoms} atoms): "
                f"P = diag({p[0, 0]:.3f}, {p[1, 1]:.3f}, {p[2, 2]:.3f}) eV, "
                f"off-diagonal ({p[1, 2]:.3f}, {p[0, 2]:.3f}, {p[0, 1]:.3f}) eV")
