"""core.tensors: the one Voigt and strain convention module (issue 10, item 5)."""
from __future__ import annotations

import numpy as np
import pytest

from scaleladder.core.errors import InputError
from scaleladder.core.tensors import (deformation_green_lagrange, deformation_small_strain,
                                      green_lagrange_strain, rotate_voigt, small_strain_tensor,
                                      stress_voigt, tensor_to_voigt, voigt_to_tensor)

CUBIC = np.array([[166, 64, 64, 0, 0, 0], [64, 166, 64, 0, 0, 0], [64, 64, 166, 0, 0, 0],
                  [0, 0, 0, 80, 0, 0], [0, 0, 0, 0, 80, 0], [0, 0, 0, 0, 0, 80]], float)


def test_voigt_round_trip_and_minor_symmetries():
    t = voigt_to_tensor(CUBIC)
    assert np.array_equal(tensor_to_voigt(t), CUBIC)
    assert np.array_equal(t, t.transpose(1, 0, 2, 3)) and np.array_equal(t, t.transpose(2, 3, 0, 1))


def test_rotation_keeps_invariants_and_a_cubic_crystal_under_its_symmetry():
    c = 1.0 / np.sqrt(2.0)
    r45 = np.array([[c, c, 0], [-c, c, 0], [0, 0, 1]])
    rot = rotate_voigt(CUBIC, r45)
    # C'11 = (C11 + C12)/2 + C44 for a 45° rotation about z (Voigt shear convention)
    assert rot[0, 0] == pytest.approx((166 + 64) / 2 + 80, rel=1e-12)
    # bulk modulus (Voigt) is rotation-invariant
    kv = lambda m: (m[:3, :3].sum()) / 9.0
    assert kv(rot) == pytest.approx(kv(CUBIC), rel=1e-12)
    r90 = np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]], float)
    assert np.allclose(rotate_voigt(CUBIC, r90), CUBIC, atol=1e-12)


def test_strain_measures_are_named_and_related():
    e = np.array([0.01, -0.004, 0.002, 0.006, -0.002, 0.008])   # engineering shears
    eps = small_strain_tensor(e)
    assert eps[1, 2] == pytest.approx(0.003) and eps[0, 1] == pytest.approx(0.004)
    F = deformation_small_strain(e)
    E = green_lagrange_strain(F)
    # E = ε + ε²/2 for F = I + ε (symmetric ε)
    assert np.allclose(E, eps + 0.5 * eps @ eps, atol=1e-15)
    # the Green-Lagrange deformation realises E exactly and is rotation-free (symmetric)
    G = deformation_green_lagrange(e)
    assert np.allclose(green_lagrange_strain(G), small_strain_tensor(e), atol=1e-15)
    assert np.allclose(G, G.T, atol=1e-15)
    cell = np.eye(3) * 5.43
    assert np.allclose(green_lagrange_strain(ref_cell=cell, cell=cell @ G.T), small_strain_tensor(e))
    with pytest.raises(InputError, match="positive definite"):
        deformation_green_lagrange([-0.6, 0, 0, 0, 0, 0])


def test_stress_voigt_symmetrises():
    s = np.array([[1.0, 2.0, 3.0], [2.2, 4.0, 5.0], [3.0, 5.0, 6.0]])
    assert np.allclose(stress_voigt(s), [1.0, 4.0, 6.0, 5.0, 3.0, 2.1])
