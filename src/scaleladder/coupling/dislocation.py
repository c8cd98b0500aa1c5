"""An edge dislocation in a 2D crystal, atom by atom and by the quasicontinuum: the defect
application of the QC with a full atomistic reference (energy and displacement error against
degrees of freedom, and the speed-up).

The sample is a triangular-lattice box (:func:`~scaleladder.coupling.qc2d.triangular_lattice`, at
the potential's zero-stress spacing) whose outer layer, as thick as the cutoff, is held at the
anisotropy-free Volterra field of an edge dislocation (Burgers vector ``b = a x̂``, core between
two close-packed rows at the centre; Hirth & Lothe 1982, eq. 3-45; the cut along +x):

    u_x = b/2π [θ + sin 2θ / 4(1 − ν)]
    u_y = −b/2π [(1 − 2ν)/2(1 − ν) ln r + cos 2θ / 4(1 − ν)]

with ``θ ∈ [0, 2π)`` and ``ν = λ/2(λ + μ)`` from the lattice's Cauchy–Born constants (a pair
potential obeys the Cauchy relation, λ = μ, so ν = 1/4).  Held walls on all four sides are rigid:
the dislocation's images repel it, and it stays at the centre.

The quasicontinuum's mesh: a nonlocal disc of radius ``core_radius`` around the core, the
graded sublattices of :func:`~scaleladder.coupling.indentation.graded_repatoms` beyond it, the
held layer, and the two rows either side of the slipped half-plane (the cut) at lattice
resolution.  Why the last: behind the core the two rows are offset by exactly ``b``, and a
lattice triangle between them is then sheared by a lattice-invariant shear, whose Cauchy–Born
energy is the perfect crystal's (the lattice sum maps onto itself; :class:`PairLattice` takes
the shell out to ``rc/σ_min``, so the sum is complete).  A coarse element across the cut would
smear ``b`` over its height and carry a large spurious energy.

Errors are measured against the relaxed full atomistic model on the same sites: the largest
and the root-mean-square displacement error, and the energy error of the QC's configuration
(every site interpolated from the repatoms) evaluated by the full atomistic model.  That energy
is an upper bound: the QC's configuration is one the full model could take with the same held
atoms, so ``E_QC − E_full ≥ 0`` (tested).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import validate as _v
from ..core.errors import InputError
from .qc2d import QC2D, triangular_lattice

__all__ = ["edge_dislocation_field", "edge_dislocation", "DislocationResult"]


def edge_dislocation_field(X, core, b: float, nu: float) -> np.ndarray:
    """Displacements (n, 2) of the isotropic Volterra edge dislocation (module docstring) at the
    sites ``X`` (Å), core at ``core``, Burgers vector ``b x̂``, cut along +x (``θ ∈ [0, 2π)``)."""
    X = _v.finite_array("X", X, (None, 2))
    nu = _v.in_range("nu", nu, -1.0, 0.5)
    d = X - np.asarray(core, dtype=float)
    r2 = np.maximum((d ** 2).sum(axis=1), 1e-24)
    th = np.mod(np.arctan2(d[:, 1], d[:, 0]), 2.0 * math.pi)
    c = 1.0 / (4.0 * (1.0 - nu))
    ux = b / (2.0 * math.pi) * (th + c * np.sin(2.0 * th))
    uy = -b / (2.0 * math.pi) * ((1.0 - 2.0 * nu) * c * np.log(r2) + c * np.cos(2.0 * th))
    return np.column_stack([ux, uy])


@dataclass
class DislocationResult:
    """One relaxed dislocation (full or QC): the sites' positions and the cost."""

    X: np.ndarray
    y_sites: np.ndarray
    rep: np.ndarray
    nonlocal_sites: np.ndarray
    held: np.ndarray
    energy: float
    seconds: float
    info: dict = field(default_factory=dict)

    @property
    def dofs(self) -> int:
        """Degrees of freedom: 2 per free (not held) repatom."""
        return 2 * int(np.count_nonzero(~self.held[self.rep]))

    def errors(self, reference: "DislocationResult") -> dict:
        """Displacement (Å) and energy (eV) errors against ``reference`` (the full model)."""
        if reference.X.shape != self.X.shape or not np.allclose(reference.X, self.X):
            raise InputError("reference", "a different sample", "the same sites (nx, ny, a)")
        du = np.linalg.norm(self.y_sites - reference.y_sites, axis=1)
        e_def = reference.energy - reference.info["perfect_energy"]
        return {"max_displacement_A": float(du.max()),
                "rms_displacement_A": float(np.sqrt(np.mean(du ** 2))),
                "energy_eV": self.energy - reference.energy,
                "energy_relative": (self.energy - reference.energy) / e_def,
                "dislocation_energy_eV": e_def}


def edge_dislocation(nx: int, ny: int, a: float, pair: Any, *, full: bool = False,
                     core_radius: float = 10.0, variant: str = "force",
                     hold: float | None = None, fmax: float = 1e-6,
                     atomistic=None) -> DislocationResult:
    """Relax an edge dislocation in an ``nx × ny`` box (module docstring), atom by atom
    (``full=True``) or by the quasicontinuum (``variant``, nonlocal disc of ``core_radius`` Å).
    ``hold``: thickness of the held walls (Å, default the cutoff).  ``atomistic``: a full
    :class:`QC2D` of the same sites to evaluate energies with (built when not given; pass one
    to share it across runs).  ``energy`` of the result is the full atomistic energy of the
    relaxed sites."""
    from .cauchy_born import PairLattice
    from .indentation import _pad, graded_repatoms

    nx = _v.positive_int("nx", nx, minimum=16)
    ny = _v.positive_int("ny", ny, minimum=16)
    a = _v.positive("a", a)
    fmax = _v.positive("fmax", fmax)
    rc = float(pair.cutoff) if hasattr(pair, "cutoff") else None
    if rc is None:
        raise InputError("pair", type(pair).__name__, "a pair calculator with a cutoff")
    hold = rc if hold is None else _v.positive("hold", hold)
    lat = PairLattice.triangular(a, pair)
    a = a * lat.zero_stress_scale()
    lat = PairLattice.triangular(a, pair)
    C = lat.elastic_constants()
    lam, mu = float(C[0, 0, 1, 1]), float(C[0, 1, 0, 1])
    nu = lam / (2.0 * (lam + mu))
    X = triangular_lattice(nx, ny, a)
    lo, hi = X.min(axis=0), X.max(axis=0)
    if min(hi - lo) < 4 * hold + 4 * a:
        raise InputError("nx", (nx, ny), f"a box wider than twice the held walls ({hold:g} Å) "
                         "and a core")
    held = ((X - lo) < hold + 1e-9).any(axis=1) | ((hi - X) < hold + 1e-9).any(axis=1)
    ry = a * math.sqrt(3.0) / 2.0
    j0 = ny // 2 - 1
    i0 = nx // 2
    core = np.array([(i0 + 0.5 * (j0 % 2) + 0.25) * a, (j0 + 0.5) * ry])
    y0 = X + edge_dislocation_field(X, core, a, nu)
    n = X.shape[0]
    if atomistic is None:
        atomistic = QC2D(X, a, pair, np.arange(n), np.arange(n))
    e_perfect = atomistic.energy(X)
    if full:
        rep = np.ones(n, dtype=bool)
        nl = rep.copy()
        qc = atomistic
    else:
        r0 = _v.positive("core_radius", core_radius)
        reach = rc + 2.0 * a
        nl = np.linalg.norm(X - core, axis=1) <= r0
        cut = (np.abs(X[:, 1] - core[1]) < ry) & (X[:, 0] > core[0] - a)   # the two rows at the cut
        rep = graded_repatoms(X, nx, ny, a, core, r0 + reach) | held | cut | _pad(X, nl, reach)
        qc = QC2D(X, a, pair, np.flatnonzero(rep), nl, variant=variant)
    t0 = time.perf_counter()
    y = qc.relax(y0[qc.rep], held[qc.rep], fmax=fmax)
    seconds = time.perf_counter() - t0
    ys = qc.Phi @ y
    return DislocationResult(
        X=X, y_sites=ys, rep=qc.rep.copy(), nonlocal_sites=np.flatnonzero(qc.nonlocal_),
        held=held, energy=float(atomistic.energy(ys)), seconds=seconds,
        info={"a0": a, "nu": nu, "core": core, "perfect_energy": float(e_perfect),
              "full": full, "core_radius": None if full else core_radius, "variant": variant,
              "sites": n, "held_sites": int(held.sum())})
