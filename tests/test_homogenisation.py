"""Homogenisation (issue 11): RVE solvers (FFT, voxel FEM with three boundary conditions)
against exact solutions, bounds, each other and the Eshelby/Mori-Tanaka estimates."""
from __future__ import annotations

import numpy as np
import pytest

from scaleladder.continuum import (dilute_stiffness, eshelby_tensor, fem_effective_stiffness,
                                   fft_effective_stiffness, fft_solve, hashin_shtrikman_cubic,
                                   hexagonal_fibres, homogenise, isotropic_voigt, laminate,
                                   laminate_stiffness, mori_tanaka, random_inclusions,
                                   random_rotations, refine, voronoi_polycrystal, VoxelFEM)
from scaleladder.core.errors import CalculationError, InputError, StabilityError
from scaleladder.handoffs import ElasticTensor, Microstructure
from scaleladder.uq import Estimate


def iso(E, nu, **kw):
    k = E / (3 * (1 - 2 * nu))
    g = E / (2 * (1 + nu))
    return ElasticTensor.from_voigt(isotropic_voigt(k, g), relaxed_ions=True, **kw)


SOFT, STIFF = iso(10.0, 0.3), iso(100.0, 0.25)
CU = ElasticTensor.from_cubic(168.4, 121.4, 75.4, relaxed_ions=True)   # Cu, GPa (Simmons & Wang)


def _rotated_cubic(seed):
    return CU.rotated(random_rotations(1, seed=seed)[0])


# --------------------------------------------------------------------------------------------
# exact laminates
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_fft_laminate_of_anisotropic_layers_is_exact(axis):
    """Odd grids: the piecewise-constant laminate field is a trigonometric polynomial solution."""
    a, b = _rotated_cubic(1), _rotated_cubic(2)
    m = laminate((9, 7, 5), [4 / 9, 5 / 9] if axis == 0 else [3 / 7, 4 / 7]
                 if axis == 1 else [2 / 5, 3 / 5], axis=axis, phases=(a, b))
    f = m.volume_fractions()
    exact = laminate_stiffness([a.voigt.value, b.voigt.value], f, axis)
    for scheme in ("cg", "basic"):
        c, sols = fft_effective_stiffness(m, scheme=scheme, tol=1e-12, max_iter=5000)
        assert np.abs(c - exact).max() <= 1e-10 * np.abs(exact).max(), scheme
        assert max(s.hill_mandel for s in sols) < 1e-10


@pytest.mark.parametrize("shape", [(10, 4), (8, 3, 2)])
def test_fem_periodic_laminate_is_exact_in_2d_and_3d(shape):
    a, b = _rotated_cubic(3), _rotated_cubic(4)
    m = laminate(shape, [0.5, 0.5], axis=0, phases=(a, b))
    exact = laminate_stiffness([a.voigt.value, b.voigt.value], m.volume_fractions(), 0)
    c, sols = fem_effective_stiffness(m, "periodic")
    assert np.abs(c - exact).max() <= 1e-10 * np.abs(exact).max()


def test_fem_assembly_equals_scikit_fem_assembly():
    """The per-label element matrices assemble the same K as scikit-fem's own assembly."""
    from skfem import BilinearForm

    from scaleladder.continuum._mandel import stiffness_to_mandel
    from scaleladder.continuum.rve import _strain_mandel

    rng = np.random.default_rng(0)
    for shape in [(5, 4), (3, 4, 2)]:
        m = Microstructure(rng.integers(0, 2, shape), tuple(0.3 * np.array(shape) + 0.1),
                           phases=(SOFT, _rotated_cubic(5)))
        fem = VoxelFEM(m)
        nd = len(shape)
        C = np.transpose(stiffness_to_mandel(m.label_stiffness())[fem.el_label], (1, 2, 0))

        @BilinearForm
        def form(u, v, w):
            eu, ev = _strain_mandel(u.grad, nd), _strain_mandel(v.grad, nd)
            return sum(w.C[a, b] * eu[b] * ev[a] for a in range(6) for b in range(6))

        K = form.assemble(fem.basis, C=C[..., None] * np.ones(fem.basis.X.shape[1]))
        assert abs(fem.K - K).max() <= 1e-12 * abs(K).max()


# --------------------------------------------------------------------------------------------
# boundary conditions: Hill-Mandel and ordering
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(12, 12), (6, 6, 6)])
def test_boundary_condition_ordering_and_hill_mandel(shape):
    rng = np.random.default_rng(3)
    m = Microstructure(rng.integers(0, 2, shape), (1.0,) * len(shape), phases=(SOFT, STIFF))
    fem = VoxelFEM(m)
    C = {}
    for bc in ("periodic", "linear", "traction"):
        C[bc], sols = fem.effective_stiffness(bc)
        assert max(s.hill_mandel for s in sols) < 1e-11, bc          # admissible: round-off
    scale = np.abs(C["linear"]).max()
    assert np.linalg.eigvalsh(C["linear"] - C["periodic"]).min() > -1e-10 * scale
    assert np.linalg.eigvalsh(C["periodic"] - C["traction"]).min() > -1e-10 * scale
    # and strictly different on a heterogeneous RVE
    assert np.linalg.eigvalsh(C["linear"] - C["traction"]).max() > 1e-3 * scale


def test_fft_and_fem_converge_to_each_other_at_first_order():
    """One voxel geometry, refined 4x, 8x, 16x: FFT (Galerkin trigonometric) and Q1 FEM both
    converge to the geometry's stiffness; their difference halves with h (rate 1, the rate of a
    discontinuous coefficient)."""
    rng = np.random.default_rng(1)
    base = Microstructure(rng.integers(0, 2, (6, 6)), (1.0, 1.0), phases=(SOFT, STIFF))
    diffs = []
    for k in (4, 8, 16):
        m = refine(base, k)
        cf, _ = fft_effective_stiffness(m, tol=1e-10)
        ce, _ = fem_effective_stiffness(m)
        diffs.append(np.abs(cf - ce).max())
    rates = np.log2(np.array(diffs[:-1]) / np.array(diffs[1:]))
    assert np.all(np.abs(rates - 1.0) < 0.2), rates
    assert diffs[-1] < 0.012 * 30.0          # within ~1 % of C11 at 96 x 96


def test_fft_schemes_agree_and_cg_needs_fewer_iterations_at_high_contrast():
    m = random_inclusions((24, 24), 1.0, 0.3, 0.12, seed=2, phases=(iso(1.0, 0.3), iso(1000.0, 0.3)))
    basic = fft_solve(m, [1, 0, 0, 0, 0, 0], scheme="basic", tol=1e-7, max_iter=20000)
    cg = fft_solve(m, [1, 0, 0, 0, 0, 0], scheme="cg", tol=1e-7)
    assert np.allclose(basic.mean_stress, cg.mean_stress, rtol=1e-5, atol=1e-6)
    assert cg.iterations * 5 < basic.iterations
    assert cg.hill_mandel < 1e-6 and basic.hill_mandel < 1e-6


# --------------------------------------------------------------------------------------------
# bounds and estimates
# --------------------------------------------------------------------------------------------
def test_random_spheres_lie_between_the_hashin_shtrikman_bounds():
    gen = lambda L, seed: random_inclusions((8 * L,) * 3, L, 0.25, 0.5, seed=seed,  # noqa: E731
                                            phases=(SOFT, STIFF))
    h = homogenise(gen, sizes=[2, 3], seeds=[0, 1])
    k, g = h.moduli
    hs = h.bounds["hashin_shtrikman"]
    assert hs.contains(k, g) and h.within_bounds()
    assert set(h.stiffness.voigt.sources) == {"rve_realisation", "rve_size"}
    assert h.hill_mandel < 1e-10


def test_random_fibres_lie_between_the_transverse_bounds():
    h = homogenise([random_inclusions((64, 64), 1.0, 0.35, 0.08, seed=s, phases=(SOFT, STIFF))
                    for s in (0, 1, 2)])
    assert h.bounds["transverse"] and h.within_bounds()
    k, g = h.moduli
    assert h.bounds["hashin_shtrikman"].contains(k, g)


def test_cubic_polycrystal_between_hashin_shtrikman_bounds_and_near_experiment():
    """Untextured Cu: K exact (C11 + 2 C12)/3; G within the HS bounds and near the measured
    polycrystalline shear modulus, 48.3 GPa (Ledbetter, J. Phys. Chem. Ref. Data 1977)."""
    hs = hashin_shtrikman_cubic(168.4, 121.4, 75.4)
    assert hs.shear == pytest.approx((45.96, 49.45), abs=0.02)
    h = homogenise(lambda n, s: voronoi_polycrystal((20,) * 3, 1.0, n, seed=s, phase=CU),
                   sizes=[20], seeds=[0, 1])
    k, g = h.moduli
    assert k == pytest.approx((168.4 + 2 * 121.4) / 3, rel=2e-3)
    assert hs.shear[0] <= g <= hs.shear[1]
    assert g == pytest.approx(48.3, abs=1.5)


def test_eshelby_tensor_limits():
    nu = 0.3
    sphere = eshelby_tensor(nu, 1.0)
    assert np.abs(eshelby_tensor(nu, 1.001) - sphere).max() < 1e-3
    assert np.abs(eshelby_tensor(nu, 0.999) - sphere).max() < 1e-3
    assert sphere[0, 0] == pytest.approx((7 - 5 * nu) / (15 * (1 - nu)))
    fibre = eshelby_tensor(nu, 1e6)            # circular cylinder along z
    assert fibre[0, 0] == pytest.approx((5 - 4 * nu) / (8 * (1 - nu)), rel=1e-5)
    assert fibre[0, 1] == pytest.approx((4 * nu - 1) / (8 * (1 - nu)), rel=1e-4)
    assert fibre[0, 2] == pytest.approx(nu / (2 * (1 - nu)), rel=1e-5)
    assert abs(fibre[2, 2]) < 1e-5 and fibre[4, 4] == pytest.approx(0.5, rel=1e-5)


def test_dilute_sphere_matches_mori_tanaka():
    r, n = 5.0, 32
    m = random_inclusions((n,) * 3, float(n), 0.99 * (4 / 3 * np.pi * r ** 3) / n ** 3, r,
                          seed=0, phases=(SOFT, STIFF))
    c, _ = fft_effective_stiffness(m, tol=1e-9)
    f = m.volume_fractions()[1]
    cm = np.asarray(SOFT.voigt.value)
    mt = mori_tanaka(cm, STIFF.voigt.value, f)
    di = dilute_stiffness(cm, STIFF.voigt.value, f)
    for i in (0, 3):
        assert (c - cm)[i, i] == pytest.approx((mt - cm)[i, i], rel=0.06)
        assert (mt - cm)[i, i] == pytest.approx((di - cm)[i, i], rel=0.05)   # dilute regime


def test_hexagonal_fibre_array_is_transversely_isotropic():
    c, _ = fft_effective_stiffness(hexagonal_fibres(64, 0.4, phases=(SOFT, STIFF)), tol=1e-10)
    assert abs(c[0, 0] - c[1, 1]) < 5e-3 * c[0, 0]
    assert abs(c[5, 5] - (c[0, 0] - c[0, 1]) / 2) < 5e-3 * c[5, 5]
    assert abs(c[3, 3] - c[4, 4]) < 5e-3 * c[3, 3]


# --------------------------------------------------------------------------------------------
# the budget
# --------------------------------------------------------------------------------------------
def test_phase_sources_propagate_exactly_through_a_linear_homogenisation():
    """Scaling every phase by (1 + d) scales C_eff by (1 + d): a source that does so comes out
    with samples mean * (1 + d)."""
    d = np.array([0.02, -0.03])
    soft = ElasticTensor.from_voigt(Estimate(SOFT.voigt.value, "GPa",
                                             {"xc": [SOFT.voigt.value * (1 + x) for x in d]}),
                                    relaxed_ions=True)
    stiff = ElasticTensor.from_voigt(Estimate(STIFF.voigt.value, "GPa",
                                              {"xc": [STIFF.voigt.value * (1 + x) for x in d]}),
                                     relaxed_ions=True)
    m = random_inclusions((32, 32), 1.0, 0.3, 0.1, seed=1, phases=(soft, stiff))
    h = homogenise(m)
    c = np.asarray(h.stiffness.voigt.value)
    s = h.stiffness.voigt.sources["xc"]
    for x, sample in zip(d, s):
        assert np.abs(sample - c * (1 + x)).max() < 1e-6 * np.abs(c).max()


def test_hill_mandel_violation_is_named():
    """A basic-scheme iterate stopped early is not in equilibrium: <σ:ε> != <σ>:<ε>, and the
    report names the condition violated.  (Conjugate-gradient iterates satisfy Hill-Mandel at
    every iteration: their residual is orthogonal to the fluctuation, a Galerkin property.)"""
    m = random_inclusions((32, 32), 1.0, 0.3, 0.1, seed=1, phases=(SOFT, iso(1e4, 0.3)))
    assert fft_solve(m, [1, 0, 0, 0, 0, 0], scheme="cg", tol=0.3).hill_mandel < 1e-10
    with pytest.warns(UserWarning, match="periodic boundary condition .* violates the "
                                         "Hill-Mandel condition"):
        h = homogenise(m, scheme="basic", tol=0.3, hill_mandel_tol=1e-6)
    assert h.warnings and h.hill_mandel > 1e-3


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
def test_bad_microstructures_are_refused_with_their_names():
    lab = np.zeros((4, 4), int)
    lab[0, 0] = 1
    with pytest.raises(InputError, match="unknown phase"):
        Microstructure(lab, (1, 1), phases=(SOFT,))
    with pytest.raises(InputError, match="label 1 absent"):
        Microstructure(np.where(lab == 1, 2, 0), (1, 1))
    with pytest.raises(InputError, match="size"):
        Microstructure(lab, (1, -1))
    with pytest.raises(InputError, match="length unit"):
        Microstructure(lab, (1, 1), unit="GPa")
    with pytest.raises(InputError, match="smaller than its largest inclusion"):
        random_inclusions((32, 32), 1.0, 0.2, 0.6)
    with pytest.raises(StabilityError, match="voigt"):
        ElasticTensor.from_voigt(isotropic_voigt(-1.0, 10.0), relaxed_ions=True)
    with pytest.raises(InputError, match="'periodic' with method='fft'"):
        homogenise(Microstructure(lab, (1, 1), phases=(SOFT, STIFF)), bc="linear")
    with pytest.raises(InputError, match="stiffness of each phase"):
        fft_effective_stiffness(Microstructure(lab, (1, 1)))
    with pytest.raises(CalculationError, match="jammed"):
        random_inclusions((40, 40), 1.0, 0.7, 0.06, max_attempts=20000)


# --------------------------------------------------------------------------------------------
# microstructures from the mesoscale rung (through the handoff)
# --------------------------------------------------------------------------------------------
def test_grain_growth_and_cahn_hilliard_fields_become_microstructures():
    from scaleladder.mesoscale import phasefield as pf

    grid = pf.SpectralGrid((48, 48), 1e-8)
    gg = pf.run_phasefield(pf.GrainGrowth(6, 0.5, 1e-16, 1.0), grid,
                           pf.voronoi_grains(grid, 16, 6, seed=2), 0.2, 40)
    m = pf.grain_microstructure(gg.state, grid)
    assert m.kind == "grains" and m.n_labels == pf.count_grains(gg.fields)
    assert m.size == pytest.approx((0.48, 0.48)) and m.unit == "um"
    with pytest.raises(InputError, match="stiffness of each phase"):
        homogenise(m)
    h = homogenise(m.with_phases([CU], orientations=random_rotations(m.n_labels, seed=0)))
    assert h.within_bounds() and h.hill_mandel < 1e-10

    rng = np.random.default_rng(0)
    ch = pf.run_phasefield(pf.CahnHilliard(0.5, 1e-16, 1e-16), grid,
                           0.5 + 0.05 * rng.standard_normal(grid.shape), 0.05, 200)
    two = pf.phase_microstructure(ch.state, grid).with_phases([SOFT, STIFF])
    assert 0.3 < two.volume_fractions()[1] < 0.7
    h2 = homogenise(two)
    k, g = h2.moduli
    assert h2.bounds["hashin_shtrikman"].contains(k, g)
    with pytest.raises(InputError, match="threshold"):
        pf.phase_microstructure(ch.state, grid, threshold=5.0)


def test_amg_preconditioned_cg_equals_the_direct_solve_in_3d():
    m = random_inclusions((12, 12, 12), 1.0, 0.2, 0.2, seed=3, phases=(SOFT, STIFF))
    direct, _ = fem_effective_stiffness(m, "periodic")
    amg, sols = fem_effective_stiffness(m, "periodic", solver="cg", tol=1e-10)
    assert np.abs(amg - direct).max() < 1e-7 * np.abs(direct).max()
    assert all(0 < s.iterations < 200 for s in sols)      # AMG keeps CG short


# --------------------------------------------------------------------------------------------
# RVEs on a user's mesh
# --------------------------------------------------------------------------------------------
def test_mesh_rve_equals_the_voxel_model_and_the_exact_laminate():
    from skfem import MeshHex, MeshQuad, MeshTri

    from scaleladder.continuum import MeshRVE

    rng = np.random.default_rng(4)
    lab = rng.integers(0, 2, (6, 5))
    micro = Microstructure(lab, (1.2, 1.0), phases=(SOFT, _rotated_cubic(6)))
    mesh = MeshQuad.init_tensor(np.linspace(0, 1.2, 7), np.linspace(0, 1.0, 6))
    cent = mesh.p[:, mesh.t].mean(axis=1)
    el_lab = lab[np.floor(cent[0] / 0.2).astype(int), np.floor(cent[1] / 0.2).astype(int)]
    rve = MeshRVE(mesh, el_lab, micro.phases)
    vox = VoxelFEM(micro)
    for bc in ("periodic", "linear", "traction"):
        c_mesh, sols = rve.effective_stiffness(bc)
        c_vox, _ = vox.effective_stiffness(bc)
        assert np.abs(c_mesh - c_vox).max() < 1e-10 * np.abs(c_vox).max(), bc
        assert max(s.hill_mandel for s in sols) < 1e-11
    # triangles and hexahedra: a laminate with its interface on mesh lines is exact
    a, b = _rotated_cubic(7), _rotated_cubic(8)
    exact = laminate_stiffness([a.voigt.value, b.voigt.value], [0.4, 0.6], 0)
    tri = MeshTri.init_tensor(np.linspace(0, 1, 11), np.linspace(0, 1, 4))
    t_lab = (tri.p[0, tri.t].mean(axis=0) > 0.4).astype(int)
    hexm = MeshHex.init_tensor(np.linspace(0, 1, 6), np.linspace(0, 1, 3), np.linspace(0, 1, 3))
    h_lab = (hexm.p[0, hexm.t].mean(axis=0) > 0.4).astype(int)
    for mesh_, lab_ in ((tri, t_lab), (hexm, h_lab)):
        c, _ = MeshRVE(mesh_, lab_, (a, b)).effective_stiffness("periodic")
        assert np.abs(c - exact).max() < 1e-10 * np.abs(exact).max()


def test_a_non_periodic_mesh_is_refused_for_periodic_conditions():
    from skfem import MeshTri

    from scaleladder.continuum import MeshRVE

    mesh = MeshTri.init_tensor(np.linspace(0, 1, 5), np.linspace(0, 1, 5))
    p = mesh.p.copy()
    j = int(np.flatnonzero(np.isclose(p[0], 1.0) & np.isclose(p[1], 0.5))[0])
    p[1, j] = 0.55                       # a node of the x = 1 face slides along it
    bad = MeshTri(p, mesh.t)
    rve = MeshRVE(bad, np.zeros(bad.t.shape[1], dtype=int), (SOFT,))
    with pytest.raises(InputError, match="periodic mesh"):
        rve.effective_stiffness("periodic")
    rve.effective_stiffness("linear")     # the other conditions do not need periodicity
    with pytest.raises(InputError, match="one integer label per element"):
        MeshRVE(mesh, np.zeros(3, dtype=int), (SOFT,))
    with pytest.raises(InputError, match="unknown phase"):
        MeshRVE(mesh, np.ones(mesh.t.shape[1], dtype=int), (SOFT,))
