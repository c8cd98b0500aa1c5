"""Stillinger-Weber calculator: derivatives, invariances, golden values, errors.

Golden values (labelled as such):
* original SW silicon (Stillinger & Weber, PRB 31, 5262 (1985)): diamond cohesive energy
  -2 epsilon = -4.3366 eV/atom at a = 5.431 Å, which is also the zero-pressure lattice constant.
* clamped-ion elastic constants with the original epsilon = 2.1683 eV: C11 = 151.4, C12 = 76.4,
  C44(unrelaxed) = 109.8 GPa, relaxed C44 = 56.4 GPa (Cowley, PRL 60, 2379 (1988); Balamane,
  Halicioglu & Tiller, PRB 46, 2250 (1992)).  The often-quoted C11 = 161.6, C12 = 81.6,
  C44(unrelaxed) = 117.2 GPa belong to the variant with epsilon rescaled to 2.315 eV (to match the
  experimental cohesive energy 4.63 eV); elastic constants scale linearly with epsilon, and both
  sets are checked.
"""
from __future__ import annotations

import types

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.neighborlist import neighbor_list

from scaleladder.atomistic import SW_SILICON, StillingerWeber
from scaleladder.atomistic.stillinger_weber import (SW_PARAMETER_NAMES, sw_energy_forces_stress,
                                                    clear_neighbour_cache)
from scaleladder.core.errors import InputError, PropertyNotImplementedError
from scaleladder.core.units import EV_PER_A3_IN_GPA
from _skin_checks import md_against_rebuild, rebuild_rules  # noqa: E402

A0 = 5.431
STRAIN = np.array([[1.00, 0.06, 0.03], [0.02, 1.03, -0.05], [0.04, -0.02, 0.97]])


def diamond(a=A0, cubic=True, repeat=1):
    at = bulk("Si", "diamond", a=a, cubic=cubic)
    return at.repeat(repeat) if repeat != 1 else at


def rattled_triclinic(seed=1):
    at = diamond(repeat=2)                        # 64 atoms
    at.set_cell(at.cell @ STRAIN, scale_atoms=True)
    at.rattle(0.08, seed=seed)
    return at


def reference_energy(atoms, p=SW_SILICON):
    """Independent pure-Python SW energy using ASE's neighbour list (no numba)."""
    eps, sig, a, lam, gam = p["epsilon"], p["sigma"], p["a"], p["lambda"], p["gamma"]
    rc = a * sig
    i_idx, j_idx, D = neighbor_list("ijD", atoms, rc)
    e = 0.0
    for d in D:
        r = np.linalg.norm(d)
        e += 0.5 * p["A"] * eps * (p["B"] * (sig / r) ** p["p"] - (sig / r) ** p["q"]) \
            * np.exp(sig / (r - rc))
    for i in range(len(atoms)):
        Di = D[i_idx == i]
        for j in range(len(Di)):
            for k in range(j + 1, len(Di)):
                rj, rk = np.linalg.norm(Di[j]), np.linalg.norm(Di[k])
                c = Di[j] @ Di[k] / (rj * rk)
                e += lam * eps * (c - p["costheta0"]) ** 2 * np.exp(gam * sig / (rj - rc)) \
                    * np.exp(gam * sig / (rk - rc))
    return e


# --------------------------------------------------------------------------------------------
# golden values
# --------------------------------------------------------------------------------------------

def test_cohesive_energy_of_ideal_diamond():
    at = diamond()
    at.calc = StillingerWeber()
    assert at.get_potential_energy() / len(at) == pytest.approx(-4.3366, abs=1e-4)
    assert at.get_potential_energy() / len(at) == pytest.approx(-2 * SW_SILICON["epsilon"], abs=1e-6)


def test_equilibrium_lattice_constant_is_5431():
    from scipy.optimize import brentq
    calc = StillingerWeber()

    def energy_pressure(a):
        at = diamond(a=a)
        at.calc = calc
        return at.get_potential_energy() / len(at), -at.get_stress()[:3].mean()

    a_zero_p = brentq(lambda a: energy_pressure(a)[1], 5.3, 5.6, xtol=1e-10)
    assert a_zero_p == pytest.approx(A0, abs=1e-3)
    e0 = energy_pressure(a_zero_p)[0]
    assert e0 < energy_pressure(a_zero_p - 0.01)[0] and e0 < energy_pressure(a_zero_p + 0.01)[0]
    # the pressure changes sign across the minimum: compressed pushes out, stretched pulls in
    assert energy_pressure(5.40)[1] > 0 > energy_pressure(5.46)[1]


def test_energy_matches_independent_reference():
    at = rattled_triclinic()
    at.calc = StillingerWeber()
    e = at.get_potential_energy()
    assert e == pytest.approx(reference_energy(at), abs=1e-9 * len(at))
    # and the three-body term contributes (the check is not only of the pair part)
    assert abs(e / len(at) + 4.3366) > 1e-3


@pytest.mark.parametrize("case", ["skewed", "self-images", "slab", "far-cluster"])
def test_neighbour_list_edge_cases_against_reference(case):
    rng = np.random.default_rng(11)
    if case == "skewed":      # strongly sheared cell, plane spacings far below the cutoff
        cell = np.array([[3.0, 0.0, 0.0], [2.7, 2.6, 0.0], [1.2, -1.4, 2.7]])
        at = Atoms("Si3", cell=cell, pbc=True,
                   scaled_positions=[[0, 0, 0], [0.4, 0.3, 0.5], [0.75, 0.8, 0.15]])
    elif case == "self-images":   # one atom that only sees its own periodic images
        at = Atoms("Si", positions=[[0.3, -0.2, 5.0]], cell=np.diag([2.6, 2.7, 2.8]), pbc=True)
    elif case == "slab":      # periodic in one direction only, atoms outside the cell box
        at = Atoms("Si4", positions=rng.normal(scale=1.5, size=(4, 3)) + [0, 0, -20.0],
                   cell=[[2.9, 0.4, 0.0], [0, 0, 0], [0, 0, 0]], pbc=(True, False, False))
    else:                     # two clusters 1e4 Å apart (the bin grid must stay small)
        d = diamond(repeat=1)
        d.pbc = False
        d.rattle(0.05, seed=2)
        at = d.copy()
        far = d.copy()
        far.positions += [1e4, -3e3, 5e3]
        at.extend(far)
        at.pbc = False
        at.cell = np.zeros((3, 3))
    at.calc = StillingerWeber()
    e = at.get_potential_energy()
    assert e == pytest.approx(reference_energy(at), abs=1e-9)
    fd = calculate_numerical_forces(at, eps=1e-5)
    assert np.abs(at.get_forces() - fd).max() < 1e-6
    if case == "far-cluster":
        d.calc = StillingerWeber()
        assert e == pytest.approx(2 * d.get_potential_energy(), abs=1e-9)


def test_empty_and_isolated_atoms():
    calc = StillingerWeber()
    lone = Atoms("Si", positions=[[0, 0, 0]], pbc=False)
    lone.calc = calc
    assert lone.get_potential_energy() == 0.0 and np.all(lone.get_forces() == 0.0)
    e, en, f, s = sw_energy_forces_stress(None, np.zeros((0, 3)), np.eye(3) * 5, True,
                                          [SW_SILICON[k] for k in SW_PARAMETER_NAMES])
    assert e == 0.0 and en.shape == (0,) and f.shape == (0, 3) and np.all(s == 0)


def _elastic_clamped(params, a=A0, h=1e-4):
    """Clamped-ion C (GPa, 6x6) from central differences of the stress of strained 8-atom cells."""
    calc = StillingerWeber(parameters=params)
    pairs = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    C = np.zeros((6, 6))
    for col, (k, l) in enumerate(pairs):
        e = np.zeros((3, 3))
        e[k, l] = e[l, k] = h if k == l else h / 2          # Voigt (engineering) strain h
        s = []
        for sign in (1, -1):
            at = diamond(a=a)
            at.set_cell(at.cell @ (np.eye(3) + sign * e), scale_atoms=True)
            at.calc = calc
            s.append(at.get_stress())
        C[:, col] = (s[0] - s[1]) / (2 * h) * EV_PER_A3_IN_GPA
    return C


@pytest.mark.parametrize("epsilon,c11,c12,c44", [
    (2.1683, 151.4, 76.4, 109.8),    # original SW
    (2.315, 161.6, 81.6, 117.2),     # epsilon rescaled to the experimental cohesive energy
])
def test_clamped_ion_elastic_constants(epsilon, c11, c12, c44):
    C = _elastic_clamped(dict(SW_SILICON, epsilon=epsilon))
    assert np.allclose(C, C.T, atol=1e-3)
    assert np.allclose(np.diag(C)[:3], c11, atol=1.0)
    assert np.allclose(C[[0, 0, 1], [1, 2, 2]], c12, atol=1.0)
    assert np.allclose(np.diag(C)[3:], c44, atol=1.0)
    assert np.abs(C[:3, 3:]).max() < 1e-3 and np.abs(C[3:, 3:] - np.diag(np.diag(C)[3:])).max() < 1e-3


def test_relaxed_c44():
    from ase.optimize import BFGS
    calc = StillingerWeber()
    h = 2e-3
    s = []
    for sign in (1, -1):
        at = diamond()
        e = np.zeros((3, 3))
        e[1, 2] = e[2, 1] = sign * h / 2
        at.set_cell(at.cell @ (np.eye(3) + e), scale_atoms=True)
        at.calc = calc
        BFGS(at, logfile=None).run(fmax=1e-7, steps=200)
        assert np.abs(at.get_forces()).max() < 1e-6
        s.append(at.get_stress()[3])
    c44 = (s[0] - s[1]) / (2 * h) * EV_PER_A3_IN_GPA
    assert c44 == pytest.approx(56.4, abs=1.0)


# --------------------------------------------------------------------------------------------
# derivatives
# --------------------------------------------------------------------------------------------

def _check_forces(at, tol=1e-6):
    at.calc = StillingerWeber()
    f = at.get_forces()
    fd = calculate_numerical_forces(at, eps=1e-5)
    assert np.abs(f).max() > 0.1        # a real test, not zeros against zeros
    assert np.abs(f - fd).max() < tol


def test_forces_rattled_64_atom_diamond():
    at = diamond(repeat=2)
    at.rattle(0.1, seed=3)
    _check_forces(at)


def test_forces_triclinic_sheared_cell():
    _check_forces(rattled_triclinic(seed=4))


def test_forces_open_cluster():
    at = diamond(repeat=2)
    at.rattle(0.05, seed=5)
    centre = at.positions.mean(axis=0)
    keep = np.linalg.norm(at.positions - centre, axis=1) < 6.0
    cluster = Atoms("Si" * int(keep.sum()), positions=at.positions[keep], pbc=False)
    assert len(cluster) > 20
    _check_forces(cluster)
    with pytest.raises(PropertyNotImplementedError):
        cluster.get_stress()


def test_forces_slab_mixed_boundaries_and_small_primitive_cell():
    slab = diamond(repeat=(2, 2, 1))
    slab.pbc = (True, True, False)
    slab.center(vacuum=5.0, axis=2)
    slab.rattle(0.05, seed=6)
    _check_forces(slab)
    prim = diamond(cubic=False)                 # 2 atoms, plane spacing 3.14 Å < cutoff 3.77 Å
    prim.set_cell(prim.cell @ STRAIN, scale_atoms=True)
    prim.positions[1] += [0.05, -0.03, 0.02]
    _check_forces(prim)


def test_stress_matches_finite_difference_strain_derivative():
    at = rattled_triclinic(seed=7)
    at.calc = StillingerWeber()
    s = at.get_stress()
    sn = calculate_numerical_stress(at, eps=1e-6)
    assert np.abs(s).max() > 1e-3
    assert np.abs(s - sn).max() < 1e-7
    # sign: a stretched crystal is under tension (positive ASE stress)
    st = diamond(a=5.50)
    st.calc = StillingerWeber()
    assert np.all(st.get_stress()[:3] > 0)


# --------------------------------------------------------------------------------------------
# invariances and consistency
# --------------------------------------------------------------------------------------------

def test_translation_and_rotation_invariance():
    at = rattled_triclinic(seed=8)
    at.calc = StillingerWeber()
    e, f, s = at.get_potential_energy(), at.get_forces(), at.get_stress(voigt=False)
    assert np.abs(f.sum(axis=0)).max() < 1e-10
    moved = at.copy()
    moved.positions += [1.3, -7.7, 22.1]        # also exercises wrapping into the cell
    moved.calc = StillingerWeber()
    assert moved.get_potential_energy() == pytest.approx(e, abs=1e-9)
    assert np.allclose(moved.get_forces(), f, atol=1e-9)
    # rotate positions and cell: energy unchanged, forces and stress rotate
    th = 0.7
    axis = np.array([1.0, 2.0, -0.5]) / np.linalg.norm([1.0, 2.0, -0.5])
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    R = np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K
    rot = at.copy()
    rot.positions = at.positions @ R.T
    rot.cell = np.asarray(at.cell) @ R.T
    rot.calc = StillingerWeber()
    assert rot.get_potential_energy() == pytest.approx(e, abs=1e-9)
    assert np.allclose(rot.get_forces(), f @ R.T, atol=1e-9)
    assert np.allclose(rot.get_stress(voigt=False), R @ s @ R.T, atol=1e-10)


def test_per_atom_energies_sum_to_total():
    at = rattled_triclinic(seed=9)
    at.calc = StillingerWeber()
    en = at.get_potential_energies()
    assert en.shape == (len(at),)
    assert en.sum() == pytest.approx(at.get_potential_energy(), abs=1e-10)
    assert np.ptp(en) > 1e-3


def test_primitive_and_conventional_cells_agree():
    for a in (5.0, A0, 5.6):       # at 5.0 second neighbours fall inside the cutoff
        prim, conv = diamond(a=a, cubic=False), diamond(a=a)
        for at in (prim, conv):
            at.set_cell(at.cell @ STRAIN, scale_atoms=True)
            at.calc = StillingerWeber()
        ep = prim.get_potential_energy() / len(prim)
        ec = conv.get_potential_energy() / len(conv)
        assert ep == pytest.approx(ec, abs=1e-10)
        assert np.allclose(prim.get_stress(), conv.get_stress(), atol=1e-10)


def test_low_level_function_parallel_and_cache():
    at = rattled_triclinic(seed=10)
    at.calc = StillingerWeber()
    p = np.array([SW_SILICON[n] for n in SW_PARAMETER_NAMES])
    clear_neighbour_cache()
    for kw in (dict(use_cache=True), dict(use_cache=True), dict(use_cache=False),
               dict(parallel=True)):
        e, en, f, s = sw_energy_forces_stress(at.numbers, at.positions, at.cell, at.pbc, p, **kw)
        assert e == pytest.approx(at.get_potential_energy(), abs=1e-9)
        assert np.allclose(f, at.get_forces(), atol=1e-10)
        assert np.allclose(s, at.get_stress(), atol=1e-12)
    # a cached list built for one cutoff serves a slightly smaller or larger one correctly
    for scale in (0.97, 1.05):
        q = p.copy()
        q[1] *= scale
        e1 = sw_energy_forces_stress(None, at.positions, at.cell, at.pbc, q)[0]
        e2 = sw_energy_forces_stress(None, at.positions, at.cell, at.pbc, q, use_cache=False)[0]
        assert e1 == pytest.approx(e2, abs=1e-10)
    calc = StillingerWeber(parallel=True)
    at2 = at.copy()
    at2.calc = calc
    assert np.allclose(at2.get_forces(), at.get_forces(), atol=1e-10)


def test_from_fitted_nominal_and_members():
    nominal = dict(SW_SILICON)
    fp = types.SimpleNamespace(form="StillingerWeber", species=("Si",), parameters=nominal,
                               fitted=("epsilon", "lambda"),
                               ensemble=np.array([[2.0, 20.0], [2.3, 22.0]]))
    c0 = StillingerWeber.from_fitted(fp)
    assert c0.sw_parameters == pytest.approx(nominal)
    c1 = StillingerWeber.from_fitted(fp, member=1)
    assert c1.sw_parameters["epsilon"] == 2.3 and c1.sw_parameters["lambda"] == 22.0
    assert c1.sw_parameters["sigma"] == nominal["sigma"]
    at = diamond()
    at.calc = c1
    assert at.get_potential_energy() / len(at) == pytest.approx(-2 * 2.3, abs=1e-5)
    with pytest.raises(InputError, match="member"):
        StillingerWeber.from_fitted(fp, member=5)
    with pytest.raises(InputError, match="form"):
        StillingerWeber.from_fitted(types.SimpleNamespace(**dict(vars(fp), form="EAM")))


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------

def test_bad_parameters_raise_input_error_naming_field():
    with pytest.raises(InputError, match="bogus"):
        StillingerWeber(parameters=dict(SW_SILICON, bogus=1.0))
    missing = dict(SW_SILICON)
    del missing["gamma"]
    with pytest.raises(InputError, match="gamma"):
        StillingerWeber(parameters=missing)
    with pytest.raises(InputError, match="epsilon.*nan"):
        StillingerWeber(parameters=dict(SW_SILICON, epsilon=float("nan")))
    with pytest.raises(InputError, match="sigma.*-2"):
        StillingerWeber(parameters=dict(SW_SILICON, sigma=-2.0))
    with pytest.raises(InputError, match="costheta0"):
        StillingerWeber(parameters=dict(SW_SILICON, costheta0=1.5))
    alias = dict(SW_SILICON)
    alias["lambda_"] = alias.pop("lambda")
    assert StillingerWeber(parameters=alias).sw_parameters["lambda"] == 21.0
    with pytest.raises(InputError, match="params_array"):
        sw_energy_forces_stress(None, np.zeros((1, 3)), np.eye(3) * 10, True, np.ones(9))
    with pytest.raises(InputError, match="a"):
        StillingerWeber().set(a=0.0)


def test_bad_atoms_raise_input_error():
    at = diamond()
    at[3].symbol = "C"
    at.calc = StillingerWeber()
    with pytest.raises(InputError, match="'C'"):
        at.get_potential_energy()
    overlap = Atoms("Si2", positions=[[0, 0, 0], [0, 0, 0]], pbc=False)
    overlap.calc = StillingerWeber()
    with pytest.raises(InputError, match="positions"):
        overlap.get_potential_energy()
    nanpos = diamond()
    nanpos.positions[0, 0] = np.nan
    nanpos.calc = StillingerWeber()
    with pytest.raises(InputError, match="positions"):
        nanpos.get_forces()


# --------------------------------------------------------------------------------------------
# Verlet skin: molecular dynamics with a reused neighbour list
# --------------------------------------------------------------------------------------------





def test_md_with_skin_matches_rebuild_every_step():
    """60 NVE steps of hot diamond Si: the Verlet list (skin 0.2 Å, serial and threaded) gives
    the energies, forces and stress of a list rebuilt at every step to 1e-12 relative."""
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=2)
    serial, threaded = StillingerWeber(skin=0.2), StillingerWeber(skin=0.2, parallel=True)
    worst, builds = md_against_rebuild(atoms, [serial, threaded], StillingerWeber(skin=0.0),
                                       steps=60, temperature_K=1500.0)
    assert worst.max() < 1e-12, worst
    assert 2 <= builds <= 20, builds


def test_skin_rebuild_rules_and_counter():
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=3)
    rebuild_rules(atoms, StillingerWeber(skin=0.5), StillingerWeber(skin=0.0), 0.5)
    c = StillingerWeber(skin=0.0)
    a = atoms.copy()
    a.calc = c
    for _ in range(3):
        a.positions[0, 0] += 1e-4
        a.get_forces()
    assert c.neighbour_builds == 3
    with pytest.raises(InputError, match="skin"):
        StillingerWeber(skin=-1.0)
