"""J2 return mapping against the analytic uniaxial-stress response, and the quadratic convergence
that its consistent tangent gives a Newton iteration (issue 12's plasticity checks, on the
continuum.plasticity model that FE2 uses)."""
from __future__ import annotations

import numpy as np

from scaleladder.continuum._mandel import stiffness_to_mandel
from scaleladder.continuum.bounds import isotropic_voigt
from scaleladder.continuum.plasticity import j2_update

E, NU, SY, H = 200.0, 0.3, 0.25, 2.0          # GPa


def _uniaxial(eps11_path, c_voigt=None):
    """Uniaxial stress (every stress component but σ11 zero) by Newton on the other five strain
    components with the consistent tangent; returns σ11 per step and each step's residuals."""
    if c_voigt is None:
        c_voigt = isotropic_voigt(E / (3 * (1 - 2 * NU)), E / (2 * (1 + NU)))
    C = np.array([stiffness_to_mandel(c_voigt)])
    lab = np.zeros(1, dtype=np.int64)
    ep, al = np.zeros((6, 1)), np.zeros(1)
    eps = np.zeros(6)
    out, residuals = [], []
    for e11 in eps11_path:
        eps[0] = e11
        hist = []
        for _ in range(20):
            sig, K, ep_new, al_new, fails = j2_update(eps[:, None], ep, al, lab, C,
                                                      np.array([SY]), np.array([H]))
            assert fails == 0
            r = sig[1:, 0]
            hist.append(float(np.abs(r).max()))
            if hist[-1] < 1e-13:
                break
            eps[1:] -= np.linalg.solve(K[0][1:, 1:], r)
        ep, al = ep_new, al_new
        out.append(float(sig[0, 0]))
        residuals.append(hist)
    return np.array(out), residuals


def test_uniaxial_stress_matches_the_analytic_hardening_line():
    path = np.linspace(0.0, 0.01, 41)[1:]
    sig, _ = _uniaxial(path)
    ey = SY / E
    analytic = np.where(path <= ey, E * path, (path + SY / H) / (1 / E + 1 / H))
    assert np.abs(sig - analytic).max() < 1e-9


def test_consistent_tangent_gives_quadratic_newton_convergence():
    """With a rotated cubic (Cu-like) elasticity the uniaxial problem is nonlinear in the lateral
    strains; Newton with the consistent tangent converges quadratically (the number of correct
    digits doubles) in a few iterations."""
    from scaleladder.continuum import random_rotations
    from scaleladder.core.tensors import rotate_voigt

    c = np.zeros((6, 6))
    c[:3, :3] = 121.4
    c[[0, 1, 2], [0, 1, 2]] = 168.4
    c[[3, 4, 5], [3, 4, 5]] = 75.4
    _, residuals = _uniaxial([0.002, 0.004, 0.008], rotate_voigt(c, random_rotations(1, 5)[0]))
    n_checked = 0
    for hist in residuals:
        assert len(hist) <= 8
        h = [x for x in hist if x > 1e-11]
        for a, b in zip(h[1:-1], h[2:]):              # from the second iterate on: quadratic
            assert b <= 10 * a * a / h[0] + 1e-12, hist
            n_checked += 1
    assert n_checked >= 2                                # there were iterations to check
