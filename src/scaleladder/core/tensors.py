"""Voigt notation, tensor rotations and strain measures, written once for the whole project.

Voigt order everywhere: ``xx, yy, zz, yz, xz, xy`` (ASE's).  Strains in Voigt form carry
*engineering* shears (``e4 = 2 eps_yz``); stresses carry the tensor components.  Two strain
measures exist in the project and their names say which is meant:

* **small (infinitesimal) strain** ε: :func:`small_strain_tensor`, and the deformation
  ``F = I + ε`` of :func:`deformation_small_strain` (elastic constants by finite differences of
  stress; strained DFT cells);
* **Green–Lagrange strain** ``E = (FᵀF - I)/2``: :func:`green_lagrange_strain` and the
  rotation-free deformation ``F = sqrt(I + 2E)`` of :func:`deformation_green_lagrange` that realises
  it exactly (dataset generation; training-domain families).

At the 1 % strains of elastic-constant fits the two differ at second order (``E = ε + ε²/2`` for
``F = I + ε``).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import validate
from .errors import InputError

__all__ = ["VOIGT_PAIRS", "voigt_to_tensor", "tensor_to_voigt", "rotate_voigt", "check_rotations",
           "stress_voigt",
           "small_strain_tensor", "deformation_small_strain", "green_lagrange_strain",
           "deformation_green_lagrange"]

#: tensor index pairs of the six Voigt components, in order xx, yy, zz, yz, xz, xy
VOIGT_PAIRS = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
_IDX = np.empty((3, 3), dtype=int)
for _a, (_i, _j) in enumerate(VOIGT_PAIRS):
    _IDX[_i, _j] = _IDX[_j, _i] = _a


def voigt_to_tensor(c: Any) -> np.ndarray:
    """6x6 Voigt stiffness -> 3x3x3x3 tensor, ``C_ijkl = C[v(ij), v(kl)]``."""
    c = np.asarray(c, float)
    return c[_IDX[:, :, None, None], _IDX[None, None, :, :]]


def tensor_to_voigt(t: Any) -> np.ndarray:
    """3x3x3x3 stiffness tensor -> 6x6 Voigt matrix."""
    t = np.asarray(t, float)
    out = np.empty((6, 6))
    for a, (i, j) in enumerate(VOIGT_PAIRS):
        for b, (k, m) in enumerate(VOIGT_PAIRS):
            out[a, b] = t[i, j, k, m]
    return out


def check_rotations(field: str, value: Any, n: int | None = None, *, proper: bool = True,
                    meaning: str = "rows = the new axes in the old frame") -> np.ndarray:
    """A 3x3 rotation (``n`` is None) or ``n`` of them, ``(n, 3, 3)``, checked: finite,
    orthonormal to 1e-8 and, if ``proper``, of determinant +1.  The error names the field (and
    the index of the first bad matrix) and what was expected."""
    shape = (3, 3) if n is None else (int(n), 3, 3)
    r = validate.finite_array(field, value, shape)
    stack = r.reshape(-1, 3, 3)
    orth = np.abs(np.einsum("nij,nkj->nik", stack, stack) - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(stack)
    for k in range(stack.shape[0]):
        name = field if n is None else f"{field}[{k}]"
        if orth[k] > 1e-8:
            raise InputError(name, stack[k].tolist(), f"an orthonormal 3x3 matrix ({meaning})",
                             hint=f"max |R R^T - I| = {orth[k]:.3g}; normalise the rows")
        if proper and abs(det[k] - 1.0) > 1e-8:
            raise InputError(name, stack[k].tolist(), "a proper rotation with det(R) = +1",
                             hint=f"det(R) = {det[k]:.6g}; a stiffness is invariant under "
                                  "inversion, so -R gives the same result")
    return r


def rotate_voigt(c: Any, r: Any) -> np.ndarray:
    """Rotate a Voigt stiffness: ``C'_ijkl = R_ia R_jb R_kc R_ld C_abcd``.

    ``r`` has the new axes as rows, expressed in the old frame.
    """
    r = np.asarray(r, float)
    t = np.einsum("ia,jb,kc,ld,abcd->ijkl", r, r, r, r, voigt_to_tensor(c), optimize=True)
    return tensor_to_voigt(t)


def stress_voigt(sigma: Any) -> np.ndarray:
    """A 3x3 stress, symmetrised, in Voigt order (tensor components, no factor 2)."""
    s = np.asarray(sigma, dtype=float)
    s = 0.5 * (s + s.T)
    return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


def small_strain_tensor(voigt: Sequence[float], field: str = "strain") -> np.ndarray:
    """Symmetric 3x3 small-strain tensor ε from a Voigt strain with engineering shears."""
    e = validate.finite_array(field, voigt, (6,))
    return np.array([[e[0], e[5] / 2, e[4] / 2],
                     [e[5] / 2, e[1], e[3] / 2],
                     [e[4] / 2, e[3] / 2, e[2]]])


def deformation_small_strain(voigt: Sequence[float], field: str = "strain") -> np.ndarray:
    """``F = I + ε`` for a small strain ε given in Voigt form (engineering shears)."""
    return np.eye(3) + small_strain_tensor(voigt, field)


def green_lagrange_strain(F: Any = None, *, ref_cell: Any = None, cell: Any = None) -> np.ndarray:
    """``E = (FᵀF - I)/2`` of a deformation gradient, or of the deformation taking the cell
    ``ref_cell`` to ``cell`` (rows = cell vectors: ``cell = ref_cell @ Fᵀ``)."""
    if F is None:
        if ref_cell is None or cell is None:
            raise InputError("F", None, "a deformation gradient, or ref_cell and cell")
        F = np.linalg.solve(np.asarray(ref_cell, float), np.asarray(cell, float)).T
    F = np.asarray(F, float)
    return 0.5 * (F.T @ F - np.eye(3))


def deformation_green_lagrange(voigt: Sequence[float], field: str = "strain") -> np.ndarray:
    """Rotation-free ``F = sqrt(I + 2E)`` realising a Green–Lagrange strain ``E`` (Voigt form,
    engineering shears) exactly: ``(FᵀF - I)/2 = E``."""
    E = small_strain_tensor(voigt, field)
    w, v = np.linalg.eigh(np.eye(3) + 2.0 * E)
    if np.any(w <= 0):
        raise InputError(field, list(np.asarray(voigt, float)),
                         "a Green-Lagrange strain with I + 2E positive definite")
    return (v * np.sqrt(w)) @ v.T
