"""Neighbour lists (scaleladder.atomistic.neighbours) against a brute-force O(N^2) reference."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from ase.build import bulk

from scaleladder.atomistic.neighbours import NeighbourList, _complete_cell, neighbour_list
from scaleladder.atomistic.pair import LennardJones, pair_energy_forces_stress
from scaleladder.core.errors import InputError


def brute_force(positions, cell, pbc, rc):
    """Sorted rows ``(i, j, dx, dy, dz)`` of all pairs within ``rc``, explicit images."""
    pbc = np.asarray(pbc, dtype=bool)
    full = _complete_cell(np.asarray(cell, float), pbc)
    spacing = 1.0 / np.linalg.norm(np.linalg.inv(full), axis=0)
    # generous image range (positions need not be wrapped)
    s = positions @ np.linalg.inv(full)
    span = np.ptp(s, axis=0) if len(s) > 1 else np.zeros(3)
    reach = [int(np.ceil(rc / spacing[k] + span[k])) + 1 if pbc[k] else 0 for k in range(3)]
    rows = []
    for a, b, c in itertools.product(*[range(-r, r + 1) for r in reach]):
        shift = a * full[0] + b * full[1] + c * full[2]
        d = positions[None, :, :] + shift - positions[:, None, :]
        r = np.linalg.norm(d, axis=2)
        ii, jj = np.nonzero((r < rc) & ~((a, b, c) == (0, 0, 0) and np.eye(len(positions), dtype=bool)))
        for i, j in zip(ii, jj):
            rows.append((i, j, *d[i, j]))
    return sorted(rows)


def listed(nl):
    order, offsets, nbr_j, nbr_d = nl
    assert sorted(order.tolist()) == list(range(len(order)))
    i = np.repeat(order, np.diff(offsets))
    return sorted(zip(i.tolist(), nbr_j.tolist(), *nbr_d.T.tolist()))


def assert_same(got, ref):
    assert len(got) == len(ref)
    g = np.array(got, dtype=float).reshape(-1, 5)
    r = np.array(ref, dtype=float).reshape(-1, 5)
    assert np.array_equal(g[:, :2], r[:, :2])
    assert np.allclose(g[:, 2:], r[:, 2:], rtol=0, atol=1e-9)


def random_case(rng, pbc, thin=False, n=None):
    n = n or int(rng.integers(1, 25))
    cell = np.diag(rng.uniform(4.0, 7.0, 3)) + rng.uniform(-2.0, 2.0, (3, 3)) * (1 - np.eye(3))
    if thin:
        cell[int(rng.integers(3))] *= 0.3          # plane spacing far below the cutoff
    for k in range(3):                              # open directions: sometimes a zero vector
        if not pbc[k] and rng.random() < 0.5:
            cell[k] = 0.0
    s = rng.uniform(-0.3, 1.3, (n, 3))              # atoms partly outside the cell
    full = _complete_cell(cell, np.asarray(pbc))
    pos = s @ full
    # keep atoms apart (the builder rejects coincident atoms)
    return pos, cell


PBCS = [(True, True, True), (True, False, True), (False, True, False), (False, False, False),
        (True, True, False)]


@pytest.mark.parametrize("pbc", PBCS)
@pytest.mark.parametrize("thin", [False, True])
def test_matches_brute_force(pbc, thin):
    rng = np.random.default_rng(hash((pbc, thin)) % 2**32)
    for _ in range(4):
        pos, cell = random_case(rng, pbc, thin)
        rc = float(rng.uniform(2.0, 5.0))
        ref = brute_force(pos, cell, pbc, rc)
        for parallel in (False, True):
            assert_same(listed(neighbour_list(pos, cell, pbc, rc, parallel=parallel)), ref)


def test_serial_and_parallel_give_identical_arrays():
    at = bulk("Cu", "fcc", a=3.6, cubic=True) * (4, 3, 5)
    at.rattle(0.1, seed=3)
    at.set_cell(at.cell[:] + [[0, 0, 0], [0.7, 0, 0], [0.3, -0.5, 0]], scale_atoms=False)
    a = neighbour_list(at.positions, at.cell[:], at.pbc, 5.1)
    b = neighbour_list(at.positions, at.cell[:], at.pbc, 5.1, parallel=True)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert_same(listed(a), brute_force(at.positions, at.cell[:], at.pbc, 5.1))


def test_far_apart_clusters_and_flat_systems():
    rng = np.random.default_rng(5)
    a = rng.uniform(0, 4, (10, 3))
    pos = np.vstack([a, a + [1e4, -3e3, 5e3]])
    assert_same(listed(neighbour_list(pos, np.zeros((3, 3)), False, 2.5)),
                brute_force(pos, np.zeros((3, 3)), (False,) * 3, 2.5))
    flat = np.column_stack([rng.uniform(0, 10, (30, 2)), np.zeros(30)])   # zero z extent
    cell = np.diag([10.0, 10.0, 0.0])
    pbc = (True, True, False)
    assert_same(listed(neighbour_list(flat, cell, pbc, 3.0)), brute_force(flat, cell, pbc, 3.0))


def test_single_atom_sees_its_images_and_coincident_atoms_raise():
    cell = np.diag([2.6, 2.7, 2.8])
    pos = np.array([[0.3, -0.2, 5.0]])
    assert_same(listed(neighbour_list(pos, cell, True, 3.77)),
                brute_force(pos, cell, (True,) * 3, 3.77))
    with pytest.raises(InputError):
        neighbour_list(np.array([[0.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0]]), np.eye(3) * 5, False, 2.0)
    with pytest.raises(InputError):      # an atom on the periodic image of another
        neighbour_list(np.array([[0.0, 0, 0], [5.0, 0, 0]]), np.eye(3) * 5, True, 2.0)


def within(nl_arrays, rc):
    """Listed pairs closer than ``rc`` (the consumer's own cutoff test)."""
    rows = [r for r in listed(nl_arrays) if r[2] ** 2 + r[3] ** 2 + r[4] ** 2 < rc * rc]
    return rows


def test_verlet_skin_reuse_matches_rebuild():
    at = bulk("Ar", "fcc", a=5.26, cubic=True) * (3, 3, 3)
    at.rattle(0.05, seed=1)
    rc, skin = 8.5, 0.6
    prm = dict(epsilon=0.0104, sigma=3.4, rc=rc, shift=True)
    nl = NeighbourList(rc, skin=skin, half=True)
    full = NeighbourList(rc, skin=skin)
    rng = np.random.default_rng(7)
    pos = at.positions.copy()
    cell = at.cell[:]
    from scaleladder.atomistic.pair import _LJ, _kernel_parameters, _pair_half_serial
    kprm, krc = _kernel_parameters(_LJ, prm)
    reused = 0
    for step in range(12):
        pos = pos + rng.normal(scale=0.04, size=pos.shape)
        lst = nl.update(pos, cell, at.pbc)
        reused += not nl.rebuilt
        e_skin, f_skin, v_skin = _pair_half_serial(*lst, np.zeros_like(pos), _LJ, kprm, krc)[:3]
        e, _, f, s = pair_energy_forces_stress("lj", prm, None, pos, cell, at.pbc)
        assert abs(e_skin.sum() - e) < 1e-10 * abs(e)
        assert np.abs(f_skin - f).max() < 1e-10
        assert np.allclose(v_skin / at.get_volume(), s, rtol=0, atol=1e-12)
        # the moved full list holds exactly the pairs of a fresh list within rc
        assert_same(within(full.update(pos, cell, at.pbc), rc),
                    listed(neighbour_list(pos, cell, at.pbc, rc)))
    assert reused >= 3 and nl.builds >= 2        # both paths exercised
    assert full.builds == nl.builds
    # displaced(): the same list, vectors moved by the consumer -- bitwise update()'s vectors
    order, offsets, nbr_j, d0, delta = nl.displaced(pos, cell, at.pbc)
    assert delta is None or not nl.rebuilt
    moved = nl.update(pos, cell, at.pbc)[3]
    if delta is not None:
        i = np.repeat(order, np.diff(offsets))
        assert np.array_equal(d0 + (delta[nbr_j] - delta[i]), moved)
    # a wrapped (jumping) atom triggers a rebuild
    pos[0] += cell[0]
    nl.update(pos, cell, at.pbc)
    assert nl.rebuilt


def test_half_list_has_each_pair_once():
    """Half list: every bond between two different atoms once, self-image bonds both ways."""
    rng = np.random.default_rng(11)
    for pbc, thin in (((True, True, True), True), ((True, False, True), False)):
        pos, cell = random_case(rng, pbc, thin, n=6)
        rc = 4.0
        ref = brute_force(pos, cell, pbc, rc)
        half = NeighbourList(rc, skin=0.0, half=True).update(pos, cell, pbc)
        assert_same(listed(half), [r for r in ref if r[1] >= r[0]])
        assert any(r[0] == r[1] for r in ref) or not thin     # self-images in the thin cell


def test_larger_cutoff_request_and_displacement_rule():
    at = bulk("Ar", "fcc", a=5.26, cubic=True) * 2
    nl = NeighbourList(6.0, skin=1.0)
    nl.update(at.positions, at.cell, at.pbc)
    assert nl.radius == 7.0
    # a shorter or equal cutoff with small moves: reused; 2 max|u| + rc <= radius
    pos = at.positions.copy()
    pos[3] += [0.24, 0.0, 0.0]
    assert not nl.needs_rebuild(pos, at.cell, at.pbc, cutoff=6.5)
    assert nl.needs_rebuild(pos, at.cell, at.pbc, cutoff=6.6)
    assert not nl.needs_rebuild(pos, at.cell, at.pbc)
    pos[3] += [0.27, 0.0, 0.0]               # 0.51 > skin / 2
    assert nl.needs_rebuild(pos, at.cell, at.pbc)
    nl.update(at.positions, at.cell, at.pbc, cutoff=7.5)     # beyond the radius: rebuilt
    assert nl.rebuilt and nl.radius == 8.5
    assert_same(within(nl.update(at.positions, at.cell, at.pbc, cutoff=7.5), 7.5),
                listed(neighbour_list(at.positions, at.cell, at.pbc, 7.5)))


def test_skin_zero_and_cell_change_rebuild():
    at = bulk("Ar", "fcc", a=5.26, cubic=True) * 2
    nl = NeighbourList(6.0, skin=0.0)
    nl.update(at.positions, at.cell, at.pbc)
    nl.update(at.positions, at.cell, at.pbc)
    assert nl.builds == 1 and not nl.rebuilt
    at.positions[0] += 1e-9
    nl.update(at.positions, at.cell, at.pbc)
    assert nl.builds == 2
    nl.update(at.positions, at.cell[:] * 1.01, at.pbc)
    assert nl.builds == 3
    with pytest.raises(InputError):
        NeighbourList(-1.0)
    with pytest.raises(InputError):
        NeighbourList(1.0, skin=-0.1)


def test_calculators_unchanged_to_round_off():
    at = bulk("Ar", "fcc", a=5.26, cubic=True) * (3, 3, 3)
    at.rattle(0.05, seed=4)
    at.calc = LennardJones(epsilon=0.0104, sigma=3.4, rc=8.5)
    f = at.get_forces()
    assert np.abs(f.sum(axis=0)).max() < 1e-12
