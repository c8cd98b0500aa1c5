"""P1 triangle kernels shared by the 2D damage and phase-field models (scikit-fem bases).

One place for the strain–displacement operator of a vector P1 basis and the COO sparsity
pattern of element blocks, so the models assemble their (state-dependent) tangents with numpy
instead of re-deriving them.
"""
from __future__ import annotations

import numpy as np


def strain_operator(ub) -> tuple[np.ndarray, np.ndarray]:
    """``(B, area)`` of a vector P1 scikit-fem basis: ``B`` (3, 6, nel) maps the element dofs to
    the constant Voigt strain ``[xx, yy, γ_xy]`` (engineering shear); ``area`` (nel,)."""
    nel = ub.mesh.t.shape[1]
    B = np.zeros((3, ub.Nbfun, nel))
    for i in range(ub.Nbfun):
        g = np.asarray(ub.basis[i][0].grad)[:, :, :, 0]       # (component, derivative, nel)
        B[0, i], B[1, i], B[2, i] = g[0, 0], g[1, 1], g[0, 1] + g[1, 0]
    return B, ub.dx.sum(axis=1)


def block_pattern(rows_dofs: np.ndarray, cols_dofs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the element blocks ``k[i, j, e]`` (i over ``rows_dofs``' local
    dofs, j over ``cols_dofs``'), raveled in C order, for ``scipy.sparse.coo_matrix``."""
    ni, nj = rows_dofs.shape[0], cols_dofs.shape[0]
    r = np.broadcast_to(rows_dofs[:, None, :], (ni, nj, rows_dofs.shape[1]))
    c = np.broadcast_to(cols_dofs[None, :, :], (ni, nj, cols_dofs.shape[1]))
    return r.ravel(), c.ravel()
