"""Generators of periodic voxel microstructures (:class:`~scaleladder.handoffs.Microstructure`).

* :func:`random_inclusions`: spheres (3D) or fibres (2D: discs of a columnar map) of one radius,
  placed by random sequential addition (RSA) with periodic images and an optional gap, up to a
  target volume fraction (RSA jams near 38 % in 3D and 55 % in 2D; asked for more, it says so);
* :func:`hexagonal_fibres`: the hexagonal fibre array in its rectangular periodic cell (aspect
  √3, two fibres), transversely isotropic in the x-y plane;
* :func:`laminate`: layers normal to one axis;
* :func:`voronoi_polycrystal`: a periodic Voronoi tessellation with uniformly random grain
  orientations (Haar measure), one phase.

Every generator takes a ``seed`` (the project's convention: reproducible by default) and
records itself in ``provenance``; phases may be given now or attached later with
``Microstructure.with_phases``.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..core import validate as _v
from ..core.errors import CalculationError, InputError
from ..handoffs import Microstructure

__all__ = ["random_inclusions", "hexagonal_fibres", "laminate", "voronoi_polycrystal",
           "random_rotations", "refine"]


def _shape(field: str, shape, ndim=None) -> tuple:
    try:
        t = tuple(int(n) for n in shape)
    except TypeError:
        raise InputError(field, shape, "a tuple of 2 or 3 voxel counts") from None
    if len(t) not in (2, 3) or min(t) < 1 or (ndim is not None and len(t) != ndim):
        raise InputError(field, shape, "2 or 3 positive voxel counts")
    return t


def _size(field: str, size, n: int) -> tuple:
    s = np.atleast_1d(np.asarray(size, dtype=float))
    if s.size == 1:
        s = np.repeat(s, n)
    if s.shape != (n,) or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise InputError(field, size, f"{n} positive edge lengths (or one for a cube)")
    return tuple(float(x) for x in s)


def _voxel_centres(shape, size):
    axes = [(np.arange(n) + 0.5) * (L / n) for n, L in zip(shape, size)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)     # (*shape, d)


def random_inclusions(shape, size, fraction: float, radius: float, *, gap: float = 0.0,
                      seed: int = 0, unit: str = "um", phases: Sequence = (),
                      max_attempts: int = 200_000) -> Microstructure:
    """Spheres (3D) or fibres along z (2D) of ``radius`` by random sequential addition.

    Parameters
    ----------
    shape : tuple of int
        Voxels per axis (2 or 3 numbers).
    size : float or tuple
        Box edge lengths (``unit``).
    fraction : float
        Target inclusion volume fraction of the *geometry* (the voxelised fraction, which
        differs by the voxelisation error, is in ``provenance`` and ``volume_fractions()``).
    radius : float
        Inclusion radius (``unit``); ``2 radius`` must fit in the smallest box edge.
    gap : float
        Smallest surface-to-surface distance between inclusions (``unit``).
    phases : (matrix, inclusion) ElasticTensors, optional

    Raises
    ------
    InputError
        Bad shape/size/fraction, an inclusion larger than the RVE (``2 r > min L``: the RVE is
        smaller than its largest inclusion), fewer than ~2 voxels across a radius.
    CalculationError
        RSA could not reach ``fraction`` within ``max_attempts`` (jamming).
    """
    shape = _shape("shape", shape)
    d = len(shape)
    size = _size("size", size, d)
    f = _v.in_range("fraction", fraction, 0.0, 1.0, inclusive=False)
    r = _v.positive("radius", radius)
    gap = _v.finite("gap", gap)
    if gap < 0:
        raise InputError("gap", gap, "a distance >= 0")
    if 2 * r + gap > min(size):
        raise InputError("radius", r, f"inclusions that fit in the RVE (2 r + gap <= smallest "
                         f"edge {min(size):g} {unit})",
                         hint="the RVE is smaller than its largest inclusion: enlarge size")
    h = min(L / n for L, n in zip(size, shape))
    if r < 2 * h:
        raise InputError("radius", r, f"at least 2 voxels across a radius (voxel {h:g} {unit})",
                         hint="raise the resolution (shape) or the radius")
    vol = float(np.prod(size))
    v1 = (4.0 / 3.0) * math.pi * r ** 3 if d == 3 else math.pi * r * r
    n_target = int(round(f * vol / v1))
    if n_target < 1:
        raise InputError("fraction", f, f"at least one inclusion's worth ({v1 / vol:.3g})")
    rng = np.random.default_rng(_v.seed("seed", seed))
    L = np.asarray(size)
    centres = np.empty((0, d))
    dmin = 2 * r + gap
    attempts = 0
    while len(centres) < n_target:
        if attempts >= max_attempts:
            raise CalculationError(
                f"random sequential addition jammed at {len(centres)} of {n_target} inclusions "
                f"(fraction {len(centres) * v1 / vol:.3f} of the {f:.3f} asked) after "
                f"{attempts} attempts: RSA of equal {'spheres' if d == 3 else 'discs'} jams near "
                f"{0.38 if d == 3 else 0.547:.3f}; ask for less, or lower the gap")
        attempts += 1
        c = rng.random(d) * L
        if len(centres):
            dx = centres - c
            dx -= L * np.round(dx / L)
            if np.min((dx ** 2).sum(axis=1)) < dmin * dmin:
                continue
        centres = np.vstack([centres, c])
    X = _voxel_centres(shape, size)
    lab = np.zeros(shape, dtype=np.int64)
    for c in centres:
        dx = X - c
        dx -= L * np.round(dx / L)
        lab[(dx ** 2).sum(axis=-1) <= r * r] = 1
    m = Microstructure(lab, size, unit, phases=tuple(phases),
                       phase_names=("matrix", "inclusion"),
                       provenance={"generator": "random_inclusions (RSA)", "seed": int(seed),
                                   "radius": r, "gap": gap, "target_fraction": f,
                                   "n_inclusions": int(len(centres)),
                                   "geometric_fraction": float(len(centres) * v1 / vol),
                                   "shape": "spheres" if d == 3 else "fibres along z",
                                   "centres": centres.tolist()})
    return m


def hexagonal_fibres(n: int, fraction: float, *, width: float = 1.0, unit: str = "um",
                     phases: Sequence = ()) -> Microstructure:
    """The hexagonal array of fibres (along z) in its rectangular periodic cell
    ``width x √3 width`` with ``n x round(√3 n)`` pixels (two fibres: corner and centre)."""
    n = _v.positive_int("n", n, 8)
    f = _v.in_range("fraction", fraction, 0.0, math.pi / (2 * math.sqrt(3)), inclusive=False)
    a = float(width)
    b = math.sqrt(3.0) * a
    ny = int(round(math.sqrt(3.0) * n))
    r = math.sqrt(f * a * b / (2 * math.pi))
    X = _voxel_centres((n, ny), (a, b))
    lab = np.zeros((n, ny), dtype=np.int64)
    L = np.array([a, b])
    for c in (np.array([0.0, 0.0]), np.array([a / 2, b / 2])):
        dx = X - c
        dx -= L * np.round(dx / L)
        lab[(dx ** 2).sum(axis=-1) <= r * r] = 1
    return Microstructure(lab, (a, b), unit, phases=tuple(phases),
                          phase_names=("matrix", "fibre"),
                          provenance={"generator": "hexagonal_fibres", "fraction": f,
                                      "radius": r})


def laminate(shape, fractions, *, axis: int = 0, size=1.0, unit: str = "um",
             phases: Sequence = ()) -> Microstructure:
    """Layers normal to ``axis`` with the given volume fractions (rounded to whole voxels;
    the realised fractions are in ``volume_fractions()``)."""
    shape = _shape("shape", shape)
    size = _size("size", size, len(shape))
    fr = np.asarray(fractions, dtype=float)
    if fr.ndim != 1 or fr.size < 2 or np.any(fr <= 0) or abs(fr.sum() - 1) > 1e-9:
        raise InputError("fractions", fractions, "two or more positive fractions summing to 1")
    if axis not in range(len(shape)):
        raise InputError("axis", axis, f"an axis of the map (0..{len(shape) - 1})")
    n = shape[axis]
    edges = np.rint(np.cumsum(fr) * n).astype(int)
    if np.any(np.diff(np.concatenate([[0], edges])) < 1):
        raise InputError("shape", shape, f"enough voxels along axis {axis} for every layer")
    layer = np.searchsorted(edges, np.arange(n), side="right")
    lab = np.broadcast_to(layer.reshape([-1 if k == axis else 1 for k in range(len(shape))]),
                          shape).copy()
    return Microstructure(lab, size, unit, phases=tuple(phases),
                          provenance={"generator": "laminate", "axis": axis,
                                      "fractions": fr.tolist()})


def random_rotations(n: int, seed: int = 0) -> np.ndarray:
    """``n`` rotation matrices uniformly distributed over SO(3) (scipy's Haar sampling)."""
    from scipy.spatial.transform import Rotation

    n = _v.positive_int("n", n)
    return Rotation.random(n, random_state=_v.seed("seed", seed)).as_matrix()


def voronoi_polycrystal(shape, size, n_grains: int, *, seed: int = 0, unit: str = "um",
                        phase=None, orientations=None) -> Microstructure:
    """A periodic Voronoi polycrystal: ``n_grains`` uniformly random seeds, each voxel in the
    grain of its nearest seed (periodic distance), random orientations unless given.

    ``phase``: the single crystal's ElasticTensor (optional; attach later with
    ``with_phases``).  A 2D map is a columnar polycrystal (grains invariant along z, each
    rotated in 3D).
    """
    from scipy.spatial import cKDTree

    shape = _shape("shape", shape)
    d = len(shape)
    size = _size("size", size, d)
    n_grains = _v.positive_int("n_grains", n_grains)
    if n_grains > int(np.prod(shape)) // 8:
        raise InputError("n_grains", n_grains, f"at most one grain per 8 voxels "
                         f"({int(np.prod(shape)) // 8} here)", hint="raise the resolution")
    rng = np.random.default_rng(_v.seed("seed", seed))
    L = np.asarray(size)
    seeds = rng.random((n_grains, d)) * L
    tree = cKDTree(seeds, boxsize=L)
    X = _voxel_centres(shape, size).reshape(-1, d)
    X = np.minimum(X, np.nextafter(L, 0))
    _, idx = tree.query(X)
    lab = idx.reshape(shape).astype(np.int64)
    uniq, lab = np.unique(lab, return_inverse=True)     # a grain with no voxel is dropped
    lab = lab.reshape(shape)
    rot = random_rotations(n_grains, seed=int(rng.integers(2 ** 31))) if orientations is None \
        else np.asarray(orientations, dtype=float)
    if rot.shape != (n_grains, 3, 3):
        raise InputError("orientations", f"shape {rot.shape}", f"({n_grains}, 3, 3) rotations")
    return Microstructure(lab, size, unit, phases=() if phase is None else (phase,),
                          label_phase=np.zeros(len(uniq), dtype=np.int64),
                          orientations=rot[uniq], kind="grains",
                          phase_names=("crystal",),
                          provenance={"generator": "voronoi_polycrystal (periodic)",
                                      "seed": int(seed), "n_grains": int(len(uniq))})


def refine(micro: Microstructure, factor: int) -> Microstructure:
    """The same geometry on a ``factor``-times finer grid (each voxel split into factor^d):
    for measuring the discretisation error of an RVE solver on a fixed voxel geometry."""
    k = _v.positive_int("factor", factor)
    lab = micro.labels
    for ax in range(micro.ndim):
        lab = np.repeat(lab, k, axis=ax)
    return micro.replace(labels=lab, provenance={**micro.provenance, "refined": k})
