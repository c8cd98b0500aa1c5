"""Persistent homology: the torus complex of periodic atoms (3-torus Betti numbers, the simple
cubic lattice's bars in closed form), open clusters against GUDHI, a circle's single ring,
periodic cubical complexes of fields, diagram distances, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest

from scaleladder.core.codec import decode, encode
from scaleladder.core.errors import InputError
from scaleladder.handoffs import PersistenceDiagram
from scaleladder.topology import alpha_persistence, cubical_persistence

gudhi = pytest.importorskip("gudhi")


def test_random_periodic_points_have_the_betti_numbers_of_the_3_torus():
    gen = np.random.default_rng(0)
    cell = np.array([[10.0, 0, 0], [2.0, 9.0, 0], [1.0, -1.5, 8.0]])      # triclinic
    x = gen.random((60, 3)) @ cell
    d = alpha_persistence(x, cell=cell, pbc=True)
    assert d.betti() == [1, 3, 3, 1]
    assert d.periodic and d.unit == "Å"
    # the same structure, shifted and with atoms wrapped differently: the same diagram
    d2 = alpha_persistence(x + np.array([3.3, -7.1, 2.2]), cell=cell, pbc=True)
    for k in range(4):
        assert np.allclose(np.sort(d.bars(k), axis=0), np.sort(d2.bars(k), axis=0), atol=1e-9)
    # triangulating only a skin of images around the cell gives the complex of all 26 images
    full = alpha_persistence(x, cell=cell, pbc=True, skin=1e9)
    for k in range(4):
        assert np.allclose(np.sort(d.bars(k), axis=0), np.sort(full.bars(k), axis=0))
    # the open cluster of the same points is contractible in the end
    assert alpha_persistence(x).betti()[:1] == [1]
    assert alpha_persistence(x).betti()[1:] in ([0, 0], [0, 0, 0])


def test_simple_cubic_lattice_bars_in_closed_form():
    a = 2.5
    d = alpha_persistence(np.zeros((1, 3)), cell=np.eye(3) * a, pbc=True)
    n = int(np.prod(d.supercell))                     # atoms of the torus complex
    assert d.supercell == (3, 3, 3)
    h = {0: (0.0, a / 2), 1: (a / 2, a / math.sqrt(2)), 2: (a / math.sqrt(2), a * math.sqrt(3) / 2)}
    for k, (b, dth) in h.items():
        fin = d.finite(k)
        assert np.allclose(fin, [b, dth], atol=1e-9)
    # bars: n - 1 components merge; 2n - 2 square rings fill; n - 1 cubic cavities fill
    assert [len(d.finite(k)) for k in range(3)] == [n - 1, 2 * n - 2, n - 1]
    # the torus classes are born when the lattice's edges, squares and cubes appear
    inf = {k: d.bars(k)[~np.isfinite(d.bars(k)[:, 1]), 0] for k in range(4)}
    assert np.allclose(inf[1], a / 2) and np.allclose(inf[2], a / math.sqrt(2))
    assert np.allclose(inf[3], a * math.sqrt(3) / 2)


def test_a_circle_has_one_ring_and_a_cluster_agrees_with_gudhi():
    n, r = 24, 3.0
    t = 2 * np.pi * np.arange(n) / n
    d = alpha_persistence(np.c_[r * np.cos(t), r * np.sin(t)])
    assert len(d.bars(1)) == 1
    assert d.bars(1)[0] == pytest.approx([r * math.sin(math.pi / n), r], rel=1e-9)
    x = np.random.default_rng(3).normal(size=(80, 3)) * 3
    ours = alpha_persistence(x)
    st = gudhi.AlphaComplex(points=x).create_simplex_tree()
    st.compute_persistence(homology_coeff_field=2, persistence_dim_max=True)
    for k in range(3):
        ref = np.sqrt(np.asarray(st.persistence_intervals_in_dimension(k)).reshape(-1, 2))
        assert np.allclose(np.sort(ours.bars(k), axis=0), np.sort(ref, axis=0))


def test_periodic_cubical_complex_of_a_sinusoidal_field_has_the_torus_classes():
    n = 32
    x = np.arange(n) / n
    f = np.sin(2 * np.pi * x)[:, None] * np.sin(2 * np.pi * x)[None, :]
    per = cubical_persistence(f, periodic=True)
    assert per.betti() == [1, 2, 1]
    op = cubical_persistence(f)
    assert op.betti()[0] == 1 and sum(op.betti()[1:]) == 0
    # two minima of depth -1 (sublevel sets): one dies when they merge at the saddle 0
    fin0 = per.finite(0)
    assert len(fin0) == 1 and fin0[0] == pytest.approx([-1.0, 0.0], abs=0.02)


def test_diagram_distances_and_round_trip():
    x = np.random.default_rng(1).random((40, 3)) * 8
    a = alpha_persistence(x)
    dx = np.random.default_rng(2).normal(scale=0.05, size=x.shape)
    b = alpha_persistence(x + dx)
    for kind in ("bottleneck", "wasserstein"):
        assert a.distance(a, 1, kind=kind) == 0.0
        assert a.distance(b, 1, kind=kind) == pytest.approx(b.distance(a, 1, kind=kind))
    # stability (Cohen-Steiner, Edelsbrunner & Harer): the bottleneck distance between the
    # diagrams of the alpha (Cech) radius is at most the largest displacement
    for k in range(3):
        assert 0 < a.distance(b, k) <= np.linalg.norm(dx, axis=1).max() + 1e-12
    back = decode(*encode(a))
    assert isinstance(back, PersistenceDiagram) and np.array_equal(back.bars(1), a.bars(1))


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="cell"):
        alpha_persistence(np.zeros((2, 3)), pbc=True)
    with pytest.raises(InputError, match="degenerate"):
        alpha_persistence(np.zeros((2, 3)), cell=[[1, 0, 0], [2, 0, 0], [0, 0, 1]], pbc=True)
    with pytest.raises(InputError, match="finite"):
        cubical_persistence(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(InputError, match="positions"):
        alpha_persistence(np.zeros((3, 4)))
    with pytest.raises(InputError, match="other.unit"):
        a = alpha_persistence(np.random.default_rng(0).random((10, 3)))
        a.distance(cubical_persistence(np.random.default_rng(0).random((8, 8)), unit="K"), 0)


def test_rips_landscape_and_image():
    from scaleladder.topology import landscape, persistence_image, plot_diagram, rips_persistence
    n, r = 30, 2.0
    t = 2 * np.pi * np.arange(n) / n
    x = np.c_[r * np.cos(t), r * np.sin(t), np.zeros(n)]
    d = rips_persistence(x, max_edge=5.0, max_dimension=2)
    assert len(d.bars(1)) == 1
    b, dth = d.bars(1)[0]
    assert b == pytest.approx(2 * r * math.sin(math.pi / n), rel=1e-9)   # neighbour distance
    # the ring fills when the first triangle spanning it appears: the side of the inscribed
    # equilateral-ish triangle, 2 r sin(pi k / n) for k = n // 3
    assert dth == pytest.approx(2 * r * math.sin(math.pi * (n // 3) / n), rel=1e-9)
    grid = np.linspace(0, 4, 401)
    lam = landscape(d, 1, grid)
    assert lam[0].max() == pytest.approx((dth - b) / 2, abs=0.01)          # tent height
    assert np.all(lam[1] == 0)
    img = persistence_image(d, 1, birth_range=(0, 4), pers_range=(0, 4), sigma=0.1)
    assert img.sum() == pytest.approx((dth - b) / 4, rel=0.02)          # weight p / p_max
    ax = plot_diagram(alpha_persistence(x))
    assert ax.get_xlabel().startswith("birth")


def test_ring_statistics_of_diamond_and_the_cycle_rank_of_its_h1():
    from ase.build import bulk

    from scaleladder.ladders.silicon_topology import ring_statistics
    at = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    rs = ring_statistics(at.positions, at.cell.array)
    assert rs["rings"] == {6: 2 * len(at)} and rs["coordination"] == 4.0
    d = alpha_persistence(at.positions, cell=at.cell.array, pbc=True)
    # H1 counts independent cycles, not rings: the bond graph's cycle rank E - V + 1 = N + 1
    # (4-coordinated: E = 2N), all born with the bonds (half the bond length)
    assert len(d.bars(1)) == len(at) + 1
    assert np.allclose(d.bars(1)[:, 0], 5.431 * math.sqrt(3) / 8, atol=1e-5)


def _periodic_components(mask):
    """Connected components of a 2D mask on the torus, pixels touching at an edge or a corner
    (the cubical complex of the top cells joins both)."""
    ny, nx = mask.shape
    parent = {}

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a
    cells = [(i, j) for i in range(ny) for j in range(nx) if mask[i, j]]
    for c in cells:
        parent[c] = c
    for i, j in cells:
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                q = ((i + di) % ny, (j + dj) % nx)
                if q in parent:
                    parent[find((i, j))] = find(q)
    return len({find(c) for c in cells})


def test_cahn_hilliard_coarsening_as_a_persistence_curve():
    from scaleladder.mesoscale import phasefield as pf
    from scaleladder.topology import persistence_curve
    grid = pf.SpectralGrid((64, 64), 1.0)
    model = pf.CahnHilliard(W=1.0, kappa=2.0, mobility=1.0)
    state = 0.35 + 0.05 * np.random.default_rng(0).standard_normal(grid.shape)
    snaps, done = [], 0
    for s in (400, 800, 1600, 3200):
        res = pf.run_phasefield(model, grid, state, 0.2, s - done, energy_every=100)
        state, done = res.state, s
        snaps.append(res.fields[0].copy())
    cur = persistence_curve(snaps, min_persistence=0.5, superlevel=True)
    n = cur["count"][:, 0]
    assert np.all(np.diff(n) <= 0) and n[0] > n[-1]            # droplets coarsen
    assert np.all(np.diff(cur["total"][:, 0]) < 0)
    # the H0 classes alive at level 1/2 of the superlevel filtration (the diagram of -c at
    # -1/2) are the droplets c > 1/2, labelled on the torus
    for f, d in zip(snaps, cur["diagrams"]):
        assert d.betti(at=-0.5)[0] == _periodic_components(f > 0.5)


def test_a_slab_periodic_in_plane_has_the_betti_numbers_of_the_2_torus():
    gen = np.random.default_rng(0)
    cell = np.array([[10.0, 0, 0], [2.0, 9.0, 0], [0, 0, 30.0]])
    x = (gen.random((60, 3)) * [1, 1, 0.2]) @ cell + [0, 0, 10.0]     # 6 Å thick, vacuum
    slab = alpha_persistence(x, cell=cell, pbc=(True, True, False))
    assert slab.betti() == [1, 2, 1, 0]
    assert slab.supercell[2] == 1                          # never repeated along the open axis
    # the same points periodic in 3D: the 3-torus; as a cluster: contractible
    assert alpha_persistence(x, cell=cell, pbc=True).betti() == [1, 3, 3, 1]
    with pytest.raises(InputError, match="pbc"):
        alpha_persistence(x, cell=cell, pbc=(True, False))


def test_periodic_rips_on_the_torus_keeps_the_cells_cycles():
    from scaleladder.topology import rips_persistence
    a = 1.0
    d = rips_persistence(np.zeros((1, 3)), cell=np.eye(3) * a, pbc=True, max_edge=1.5 * a)
    n = int(np.prod(d.supercell))
    assert min(d.supercell) * a > 3 * 1.5 * a                 # no triangle can wind around
    # squares fill when their diagonals (sqrt 2 a) enter: 2n - 2 finite rings; the torus's
    # three cycles, born with the edges, never die
    assert np.allclose(d.finite(1), [a, math.sqrt(2) * a])
    assert len(d.finite(1)) == 2 * n - 2
    assert d.betti() == [1, 3]
    assert np.allclose(d.bars(1)[~np.isfinite(d.bars(1)[:, 1]), 0], a)
    with pytest.raises(InputError, match="pbc"):
        rips_persistence(np.zeros((1, 3)), cell=np.eye(3), pbc=(True, True, False),
                         max_edge=1.0)
