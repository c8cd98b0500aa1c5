"""HMM beside MsFEM on the Hou-Wu oscillating coefficient (issue 11): the cell tensor against
its exact value, convergence rates against the coarse mesh size, and the nonstationary case in
which MsFEM's precomputed basis goes stale and HMM stays accurate."""
from __future__ import annotations

import numpy as np
import pytest

from scaleladder.continuum.multiscale_fem import (cell_tensor, errors, evolving_microstructure,
                                                  fine_solution, hmm, homogenised_solution,
                                                  hou_wu_coefficient, msfem)
from scaleladder.core.errors import InputError

EPS = 1 / 8


def test_cell_tensor_converges_to_the_exact_homogenised_tensor():
    """a = g(x)/h(y) is separable: A11 = <1/h> <1/g>^-1 = 1 and A22 = <g> <h>^-1 = 1 exactly
    (both means of 1/(2 + P sin) equal 1/sqrt(4 - P²))."""
    a = hou_wu_coefficient(EPS)
    errs = [np.abs(cell_tensor(a, (0.3, 0.7), EPS, n) - np.eye(2)).max() for n in (16, 32, 64)]
    rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert errs[-1] < 2e-3 and np.all(np.abs(rates - 2.0) < 0.2), (errs, rates)
    # a cell moved by whole periods sees the same coefficient: the same tensor
    assert np.abs(cell_tensor(a, (0.3, 0.7), EPS, 16)
                  - cell_tensor(a, (0.3 + 2 * EPS, 0.7 - 3 * EPS), EPS, 16)).max() < 1e-10


def test_hmm_converges_to_the_homogenised_solution_at_second_order():
    a = hou_wu_coefficient(EPS)
    u0 = homogenised_solution(cell_tensor(a, (0.5, 0.5), EPS, 16), 128)
    errs = []
    for nc in (2, 4, 8):
        h = hmm(a, nc, delta=EPS, n_micro=16, ref=u0)
        e = h.fine - u0.u
        errs.append(np.sqrt(np.mean(e ** 2) / np.mean(u0.u ** 2)))
    rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(np.abs(rates - 2.0) < 0.3), rates                 # Q1 in L2


def test_msfem_oversampling_removes_the_resonance_error_and_converges():
    a = hou_wu_coefficient(EPS)
    ref = fine_solution(a, 128)
    plain, over = [], []
    for nc in (4, 8):
        plain.append(errors(ref, msfem(a, nc, 128 // nc, ref=ref).fine)["l2"])
        over.append(errors(ref, msfem(a, nc, 128 // nc, ref=ref, oversample=1).fine)["l2"])
    # without oversampling the boundary-layer (resonance) error grows as H approaches eps;
    # with it, the error falls faster than first order in H
    assert plain[1] > plain[0] and over[1] < over[0] / 2.5
    assert all(o < p / 1.8 for o, p in zip(over, plain))


@pytest.mark.slow
def test_migrating_microstructure_makes_the_msfem_basis_stale_while_hmm_stays():
    out = evolving_microstructure("migration", eps=EPS, n_coarse=8, n_sub=16, times=(0.0, 0.5))
    hmm_e, stale, fresh = out["hmm_l2"], out["msfem_l2"], out["msfem_fresh_l2"]
    assert stale[1] > 10 * stale[0]                     # the t = 0 basis no longer fits
    assert fresh[1] < 1.5 * fresh[0]                    # a recomputed basis would
    assert abs(hmm_e[1] - hmm_e[0]) < 0.2 * hmm_e[0]    # HMM: the same homogenisation error
    assert hmm_e[1] < stale[1] / 3


def test_bad_input():
    a = hou_wu_coefficient(EPS)
    with pytest.raises(InputError, match="resolving"):
        fine_solution(a, 32)
    ref = fine_solution(a, 64)
    with pytest.raises(InputError, match="fine reference"):
        msfem(a, 4, 8, ref=ref)
    with pytest.raises(InputError, match="P"):
        hou_wu_coefficient(EPS, P=2.5)
    with pytest.raises(InputError, match="kind"):
        evolving_microstructure("melting")


def test_hmm_error_against_the_fine_solution_falls_with_epsilon():
    """At fixed H, HMM's error against the fine solution is the homogenisation error: O(ε)."""
    e = []
    for eps in (1 / 4, 1 / 8):
        a = hou_wu_coefficient(eps)
        ref = fine_solution(a, 128)
        e.append(errors(ref, hmm(a, 8, delta=eps, n_micro=16, ref=ref).fine)["l2"])
    assert e[1] < 0.6 * e[0]                                # measured 0.192 -> 0.101
