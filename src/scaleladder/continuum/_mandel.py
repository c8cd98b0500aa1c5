"""Mandel notation for the RVE solvers (internal).

Strains and stresses as 6-vectors ``(11, 22, 33, √2·23, √2·13, √2·12)`` and stiffnesses as 6x6
matrices in the same basis: the double contraction is the dot product, a stiffness is a symmetric
matrix whose eigenvalues are the Kelvin moduli, and rotations are orthogonal.  The project's public
convention stays Voigt (:mod:`scaleladder.core.tensors`): conversions happen here, at the solver
boundary.
"""
from __future__ import annotations

import numpy as np

SQ2 = np.sqrt(2.0)
#: Voigt stiffness -> Mandel stiffness: ``C_M = W C_V W``
W = np.array([1.0, 1.0, 1.0, SQ2, SQ2, SQ2])
#: (i, j) of each component, Voigt/Mandel order
PAIRS = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def stiffness_to_mandel(c_voigt: np.ndarray) -> np.ndarray:
    return c_voigt * W[..., :, None] * W[..., None, :]


def stiffness_to_voigt(c_mandel: np.ndarray) -> np.ndarray:
    return c_mandel / (W[..., :, None] * W[..., None, :])


def strain_voigt_to_mandel(e_voigt: np.ndarray) -> np.ndarray:
    """Engineering-shear Voigt strain (γ = 2ε) -> Mandel."""
    e = np.array(e_voigt, dtype=float)
    e[..., 3:] /= SQ2
    return e


def strain_mandel_to_voigt(e_mandel: np.ndarray) -> np.ndarray:
    e = np.array(e_mandel, dtype=float)
    e[..., 3:] *= SQ2
    return e


def stress_mandel_to_voigt(s_mandel: np.ndarray) -> np.ndarray:
    s = np.array(s_mandel, dtype=float)
    s[..., 3:] /= SQ2
    return s


def stress_voigt_to_mandel(s_voigt: np.ndarray) -> np.ndarray:
    s = np.array(s_voigt, dtype=float)
    s[..., 3:] *= SQ2
    return s
