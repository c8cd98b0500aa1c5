"""Structured, tip-graded triangle meshes of a centre-cracked plate (a slit on ``|x| < a, y = 0``).

The plate is ``[-W, W] x [-H, H]``.  The mesh is a tensor grid of rectangles, each cut into two
right triangles along the same diagonal (so the mesh is invariant under the 180-degree rotation
``(x, y) -> (-x, -y)`` that maps one tip onto the other).  Grid lines pass through ``x = +-a`` and
``y = 0``.  Along each axis the spacing is *power graded* towards the tips inside a core of size
``rho = min(a, W - a, H)``::

    offset_k = rho * (k / n) ** grading,  k = 0..n

and grows geometrically beyond the core (element size proportional to the distance from the
tip, matched to the last core element).  ``n`` (elements across the core) sets the mesh size
``h = rho / n``; doubling ``n`` halves every element in the parametric sense, which is what a
convergence study needs.  A power grading of 3 resolves the ``r^(1/2)`` crack-tip field well
enough for quadratic elements that the J-integral converges at a high observed rate.

The slit is made by building the upper (``y >= 0``) and lower (``y <= 0``) halves separately and
merging their ``y = 0`` nodes only where ``|x| >= a`` (the tips are shared): the two crack faces
are distinct node sets, so they separate under load and carry no traction.

Everything here is geometry only (no stiffness); the same topology can be remapped to a slightly
different crack length (:func:`remap_crack_length`) for compliance derivatives.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.errors import InputError
from ..core import validate as v

__all__ = ["graded_offsets", "crack_grid_lines", "centre_crack_mesh_arrays", "remap_crack_length",
           "core_size"]


def core_size(half_crack: float, half_width: float, half_height: float) -> float:
    """Size ``rho = min(a, W - a, H)`` of the tip-graded core (also the J-domain length scale)."""
    return float(min(half_crack, half_width - half_crack, half_height))


def graded_offsets(length: float, rho: float, n: int, grading: float = 3.0) -> np.ndarray:
    """Offsets ``0 = s_0 < s_1 < ... = length`` from a tip along one grid line.

    Parameters
    ----------
    length : float
        Length of the segment (m), measured from the tip.
    rho : float
        Core size (m); inside ``[0, min(rho, length)]`` the spacing is power graded.
    n : int
        Number of elements across the core.
    grading : float
        Power-grading exponent (1 = uniform).

    Returns
    -------
    numpy.ndarray
        Increasing offsets, first 0, last ``length``.
    """
    length = v.positive("length", length)
    rho = v.positive("rho", rho)
    n = v.positive_int("n", n)
    grading = v.in_range("grading", grading, 1.0, 6.0)
    core = min(rho, length)
    k = np.arange(n + 1) / n
    s = core * k ** grading
    if length > core * (1.0 + 1e-9):
        # geometric growth: element size proportional to the distance from the tip,
        # matched to the last core element (size ~ grading * core / n)
        m = max(1, int(math.ceil(n * math.log(length / core) / grading)))
        outer = core * (length / core) ** (np.arange(1, m + 1) / m)
        s = np.concatenate([s, outer])
    s[-1] = length
    return s


def crack_grid_lines(half_crack: float, half_width: float, half_height: float, n: int,
                     grading: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Grid lines ``x`` (through ``+-a``) and ``y >= 0`` (from 0) of the tip-graded tensor grid."""
    a, W, H = half_crack, half_width, half_height
    rho = core_size(a, W, H)
    inner = a - graded_offsets(a, rho, n, grading)[::-1]          # 0 .. a, fine at a
    outer = a + graded_offsets(W - a, rho, n, grading)[1:]        # a .. W, fine at a
    right = np.concatenate([inner, outer])                        # 0 .. W
    x = np.concatenate([-right[:0:-1], right])                    # -W .. W, symmetric
    y = graded_offsets(H, rho, n, grading)                        # 0 .. H, fine at 0
    return x, y


def centre_crack_mesh_arrays(half_crack: float, half_width: float, half_height: float, n: int,
                             grading: float = 3.0) -> dict:
    """Vertices and triangles of the slit plate.

    Returns
    -------
    dict
        ``p`` (2, N) vertex coordinates, ``t`` (3, M) triangles (counter-clockwise),
        ``upper_face`` / ``lower_face`` vertex indices on the two crack faces (tips excluded),
        ``tips`` (2,) vertex indices of the left and right tip, ``x``, ``y`` grid lines,
        ``h`` = ``rho / n`` (m), ``rho`` (m), ``n``.
    """
    a, W, H = half_crack, half_width, half_height
    if not a < W:
        raise InputError("half_crack", a, f"a value < half_width={W!r}")
    x, y_up = crack_grid_lines(a, W, H, n, grading)
    nx, ny = len(x), len(y_up)
    # upper half: rows j = 0..ny-1 at y_up[j]; lower half: rows at -y_up[j]
    X, Y = np.meshgrid(x, y_up, indexing="ij")                    # (nx, ny)
    up_id = np.arange(nx * ny).reshape(nx, ny)
    n_up = nx * ny
    # lower half: new nodes for j >= 1; on y = 0 only the crack-face nodes (|x| < a) are new
    on_face = np.abs(x) < a * (1.0 - 1e-12)
    face_cols = np.nonzero(on_face)[0]
    low_id = np.empty((nx, ny), dtype=np.int64)
    low_id[:, 0] = up_id[:, 0]
    low_id[face_cols, 0] = n_up + np.arange(len(face_cols))
    n_face = len(face_cols)
    low_id[:, 1:] = n_up + n_face + np.arange(nx * (ny - 1)).reshape(nx, ny - 1)
    p_up = np.vstack([X.ravel(), Y.ravel()])
    p_face = np.vstack([x[face_cols], np.zeros(n_face)])
    p_low = np.vstack([X[:, 1:].ravel(), -Y[:, 1:].ravel()])
    p = np.hstack([p_up, p_face, p_low])

    def tris(ids: np.ndarray, flip: bool) -> np.ndarray:
        # quad (i, j) with corners a=(i,j), b=(i+1,j), c=(i+1,j+1), d=(i,j+1) in index space;
        # the diagonal a-c is used in physical space for both halves, so the whole mesh is
        # invariant under (x, y) -> (-x, -y).
        A = ids[:-1, :-1].ravel()
        B = ids[1:, :-1].ravel()
        C = ids[1:, 1:].ravel()
        D = ids[:-1, 1:].ravel()
        if not flip:
            return np.hstack([np.vstack([A, B, C]), np.vstack([A, C, D])])
        # lower half: index j grows downwards (y = -y_up[j]); physical corners are
        # (x_i, -y_j) ... use the diagonal (x_i, y=-y_{j+1})-(x_{i+1}, y=-y_j), i.e. D-B,
        # which is the image of the upper diagonal under the 180-degree rotation.
        return np.hstack([np.vstack([A, D, B]), np.vstack([B, D, C])])

    t = np.hstack([tris(up_id, False), tris(low_id, True)])
    # counter-clockwise orientation
    e1 = p[:, t[1]] - p[:, t[0]]
    e2 = p[:, t[2]] - p[:, t[0]]
    det = e1[0] * e2[1] - e1[1] * e2[0]
    neg = det < 0
    t[1, neg], t[2, neg] = t[2, neg].copy(), t[1, neg].copy()
    tip_cols = [int(np.argmin(np.abs(x + a))), int(np.argmin(np.abs(x - a)))]
    rho = core_size(a, W, H)
    return {
        "p": p, "t": t.astype(np.int64),
        "upper_face": up_id[face_cols, 0], "lower_face": low_id[face_cols, 0],
        "tips": np.array([up_id[c, 0] for c in tip_cols]),
        "x": x, "y": y_up, "h": rho / n, "rho": rho, "n": int(n),
    }


def remap_crack_length(p: np.ndarray, half_crack: float, new_half_crack: float,
                       half_width: float) -> np.ndarray:
    """Move the tips from ``x = +-a`` to ``+-a'`` by a piecewise-linear stretch in ``|x|``.

    ``[0, a] -> [0, a']`` and ``[a, W] -> [a', W]``; ``y`` is unchanged.  The topology (and the
    slit) is kept, so two meshes for nearby crack lengths differ smoothly: the discretisation
    error nearly cancels in a finite difference of the energy.
    """
    a, a2, W = half_crack, new_half_crack, half_width
    if not (0 < a2 < W):
        raise InputError("new_half_crack", a2, f"a value in (0, half_width={W!r})")
    x = p[0]
    ax = np.abs(x)
    new = np.where(ax <= a, ax * (a2 / a), a2 + (ax - a) * (W - a2) / (W - a))
    q = p.copy()
    q[0] = np.sign(x) * new
    return q
