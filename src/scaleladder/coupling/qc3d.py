"""The quasicontinuum in three dimensions: an fcc crystal, representative atoms meshed by
tetrahedra (Delaunay), Cauchy–Born elements and a nonlocal region — the force-based variant
(:class:`QC3D`, the same machinery as :class:`~scaleladder.coupling.qc2d.QC2D`), and a point
defect with a full atomistic reference (:func:`vacancy`).

Only the force-based QC is offered in 3D: its local forces come from the fully local
Cauchy–Born model and its nonlocal ones from the atoms, so it needs no energy weights; the 2D
energy-based variant's weights rest on the Voronoi cell of a triangular-lattice site being a third
of its six triangles, which has no counterpart in a Delaunay mesh of fcc (its octahedra split into
tetrahedra in no canonical way).

:func:`vacancy` relaxes a vacancy at the centre of an ``n × n × n`` (conventional cells) fcc box
whose outer layer, as thick as the cutoff, is held at the perfect lattice, atom by atom or by the
QC with a nonlocal sphere of ``core_radius`` around the vacancy, every site within reach of it a
repatom, and a cubic sublattice of spacing ``coarse`` cells beyond.  The vacancy formation energy
``E_f = E_vac − E_perfect + ε`` (ε the perfect crystal's energy per atom: the removed atom joins a
bulk reservoir) is evaluated with the full atomistic energy of each configuration (the QC's sites
interpolated), so the QC's ``E_f`` is an upper bound on the full model's (tested).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import validate as _v
from ..core.errors import InputError
from .qc2d import QC2D, pair_energy

__all__ = ["QC3D", "fcc_sites", "vacancy", "VacancyResult"]


class QC3D(QC2D):
    """Force-based quasicontinuum of an fcc crystal (module docstring).  ``X``: sites (n, 3) of a
    perfect fcc patch (:func:`fcc_sites`), ``a``: its nearest-neighbour distance (Å); the other
    arguments as :class:`~scaleladder.coupling.qc2d.QC2D` (``variant`` must be ``"force"``)."""

    dim = 3

    def __init__(self, X, a: float, pair: Any, repatoms, nonlocal_sites=(), *,
                 variant: str = "force", rc: float | None = None, external=None):
        super().__init__(X, a, pair, repatoms, nonlocal_sites, variant=variant, rc=rc,
                         external=external)


def fcc_sites(n1: int, n2: int, n3: int, a: float) -> np.ndarray:
    """Sites (4 n1 n2 n3, 3) of ``n1 × n2 × n3`` conventional fcc cells of nearest-neighbour
    distance ``a`` (Å; cubic constant ``a√2``), the cubic axes along x, y, z."""
    n1, n2, n3 = (_v.positive_int(k, v) for k, v in (("n1", n1), ("n2", n2), ("n3", n3)))
    c = _v.positive("a", a) * math.sqrt(2.0)
    basis = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    cells = np.stack(np.meshgrid(np.arange(n1), np.arange(n2), np.arange(n3), indexing="ij"),
                     axis=-1).reshape(-1, 3)
    return c * (cells[:, None, :] + basis[None, :, :]).reshape(-1, 3)


@dataclass
class VacancyResult:
    """One relaxed vacancy (full or QC)."""

    X: np.ndarray
    y_sites: np.ndarray
    rep: np.ndarray
    held: np.ndarray
    formation_energy: float
    seconds: float
    info: dict = field(default_factory=dict)

    @property
    def dofs(self) -> int:
        """Degrees of freedom: 3 per free (not held) repatom."""
        return 3 * int(np.count_nonzero(~self.held[self.rep]))

    def errors(self, reference: "VacancyResult") -> dict:
        """Displacement (Å) and formation-energy (eV) errors against ``reference``."""
        if reference.X.shape != self.X.shape or not np.allclose(reference.X, self.X):
            raise InputError("reference", "a different sample", "the same sites (n, a)")
        du = np.linalg.norm(self.y_sites - reference.y_sites, axis=1)
        return {"max_displacement_A": float(du.max()),
                "rms_displacement_A": float(np.sqrt(np.mean(du ** 2))),
                "formation_energy_eV": self.formation_energy - reference.formation_energy}


def vacancy(n: int, a: float, pair: Any, *, full: bool = False, core_radius: float = 6.0,
            coarse: int = 2, hold: float | None = None, fmax: float = 1e-6,
            jitter: float = 0.01, seed: int = 0) -> VacancyResult:
    """Relax a vacancy at the centre of an ``n³``-cell fcc box (module docstring); ``a`` is a
    first guess of the nearest-neighbour distance, scaled to the potential's zero-stress lattice.
    ``jitter`` (Å): the free sites start displaced by that much at random (``seed``; the same
    displacements in every run) — the symmetric relaxation of a vacancy is not its minimum with
    this potential (it lies 0.4 meV higher on the 9³ box), and a perfectly symmetric start
    would stay on it."""
    from scipy.spatial import cKDTree

    from .cauchy_born import PairLattice
    from .indentation import _pad

    n = _v.positive_int("n", n, minimum=4)
    coarse = _v.positive_int("coarse", coarse)
    rc = float(pair.cutoff) if hasattr(pair, "cutoff") else None
    if rc is None:
        raise InputError("pair", type(pair).__name__, "a pair calculator with a cutoff")
    hold = rc if hold is None else _v.positive("hold", hold)
    a = _v.positive("a", a)
    a = a * PairLattice.fcc(a * math.sqrt(2.0), pair).zero_stress_scale()
    lat = PairLattice.fcc(a * math.sqrt(2.0), pair)
    X0 = fcc_sites(n, n, n, a)
    lo, hi = X0.min(axis=0), X0.max(axis=0)
    if (hi - lo).min() < 2 * hold + 2 * rc:
        raise InputError("n", n, f"a box wider than the held walls ({hold:g} Å) and the "
                         "vacancy's neighbourhood on both sides")
    centre = 0.5 * (lo + hi)
    v = int(cKDTree(X0).query(centre)[1])
    X = np.delete(X0, v, axis=0)
    m = X.shape[0]
    held = ((X - lo) < hold + 1e-9).any(axis=1) | ((hi - X) < hold + 1e-9).any(axis=1)
    eps = lat.site_energy(np.eye(3))
    e_perfect = pair_energy(X0, pair)
    if full:
        qc = QC3D(X, a, pair, np.arange(m), np.arange(m))
    else:
        r0 = _v.positive("core_radius", core_radius)
        reach = rc + 2.0 * a
        xv = X0[v]
        nl = np.linalg.norm(X - xv, axis=1) <= r0
        cell = a * math.sqrt(2.0)
        idx = np.rint((X - lo) / cell * 2).astype(int)       # half-cell indices of the sites
        corner = np.all(idx % (2 * coarse) == 0, axis=1)       # a cubic sublattice of spacing `coarse`
        edge = np.isclose(X, lo).any(axis=1) | np.isclose(X, hi).any(axis=1)
        rep = nl | _pad(X, nl, reach) | held | corner | edge
        qc = QC3D(X, a, pair, np.flatnonzero(rep), nl)
    rng = np.random.default_rng(_v.seed("seed", seed))
    start = X + _v.nonnegative("jitter", jitter) * rng.standard_normal(X.shape) * (~held)[:, None]
    t0 = time.perf_counter()
    y = qc.relax(start[qc.rep], held[qc.rep], fmax=_v.positive("fmax", fmax))
    seconds = time.perf_counter() - t0
    ys = qc.Phi @ y
    e_vac = pair_energy(ys, pair)
    return VacancyResult(X=X, y_sites=ys, rep=qc.rep.copy(), held=held,
                         formation_energy=float(e_vac - e_perfect + eps), seconds=seconds,
                         info={"a0": a, "cohesive_energy": float(eps), "sites": m,
                               "held_sites": int(held.sum()), "full": full,
                               "core_radius": None if full else core_radius,
                               "unrelaxed_formation_energy":
                                   float(pair_energy(X, pair) - e_perfect + eps)})
