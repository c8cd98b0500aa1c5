"""FE2 (issue 11): J2 plasticity, the plastic FFT RVE and its consistent tangent, and the macro
plate whose every quadrature point is an RVE."""
from __future__ import annotations

import numpy as np
import pytest

from scaleladder.continuum import fft_effective_stiffness, homogenise, isotropic_voigt, \
    random_inclusions, random_rotations
from scaleladder.continuum._mandel import stiffness_to_mandel
from scaleladder.continuum.fe2 import PlasticRVE, _Dispatcher, fe2_solve, plate_with_hole, \
    single_scale_solve
from scaleladder.continuum.plasticity import J2Hardening, j2_update
from scaleladder.core.errors import InputError
from scaleladder.core.tensors import rotate_voigt
from scaleladder.handoffs import ElasticTensor

DEV = np.eye(6) - np.outer([1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0]) / 3.0


def iso(E, nu):
    return ElasticTensor.from_voigt(isotropic_voigt(E / (3 * (1 - 2 * nu)), E / (2 * (1 + nu))),
                                    relaxed_ions=True)


AL, STEEL = iso(70.0, 0.33), iso(200.0, 0.3)


def _cubic():
    c = np.zeros((6, 6))
    c[:3, :3] = 121.4
    c[[0, 1, 2], [0, 1, 2]] = 168.4
    c[[3, 4, 5], [3, 4, 5]] = 75.4
    return stiffness_to_mandel(rotate_voigt(c, random_rotations(1, seed=3)[0]))


def test_j2_return_mapping_consistency_and_tangent():
    """Isotropic and rotated-cubic elasticity: the returned stress lies on the hardened yield
    surface, plastic flow is isochoric, and the consistent tangent equals finite differences."""
    C = np.array([stiffness_to_mandel(isotropic_voigt(140.0, 48.0)), _cubic()])
    rng = np.random.default_rng(0)
    eps = rng.normal(size=(6, 6)) * 3e-3
    lab = np.array([0, 1, 0, 1, 0, 1])
    sy, H = np.array([0.1, 0.12]), np.array([2.0, 0.0])
    z = (np.zeros((6, 6)), np.zeros(6))
    sig, K, ep, al, fails = j2_update(eps, *z, lab, C, sy, H)
    assert fails == 0 and np.all(al > 0)
    for v in range(6):
        s = DEV @ sig[:, v]
        assert np.sqrt(1.5 * s @ s) == pytest.approx(sy[lab[v]] + H[lab[v]] * al[v], rel=1e-10)
        assert abs(ep[:3, v].sum()) < 1e-12
        h = 1e-7
        fd = np.empty((6, 6))
        for b in range(6):
            e2, e1 = eps.copy(), eps.copy()
            e2[b, v] += h
            e1[b, v] -= h
            fd[:, b] = (j2_update(e2, *z, lab, C, sy, H)[0][:, v]
                        - j2_update(e1, *z, lab, C, sy, H)[0][:, v]) / (2 * h)
        assert np.abs(fd - K[v]).max() < 1e-7 * np.abs(K[v]).max()
        assert np.abs(K[v] - K[v].T).max() < 1e-10 * np.abs(K[v]).max()
    # below yield: elastic, tangent = C
    sig, K, ep, al, _ = j2_update(eps * 1e-3, *z, lab, C, sy, H)
    assert not al.any() and np.allclose(K[1], C[1])


def _micro(n=16, seed=0):
    return random_inclusions((n, n), 1.0, 0.3, 2.5 / n, seed=seed, phases=(AL, STEEL))


def test_elastic_rve_response_is_the_effective_stiffness():
    m = _micro()
    rve = PlasticRVE(m, [None, None])
    c_eff, _ = fft_effective_stiffness(m, tol=1e-10)
    E = np.array([1e-3, -2e-4, 0, 0, 0, 5e-4])
    r = rve.respond(E, rve.initial_state())
    assert np.allclose(r.stress, c_eff @ E, rtol=1e-7, atol=1e-9)
    assert np.abs(r.tangent - c_eff).max() < 1e-6 * np.abs(c_eff).max()
    assert r.hill_mandel < 1e-10


def test_plastic_rve_macro_tangent_is_consistent():
    m = _micro()
    rve = PlasticRVE(m, [J2Hardening(0.12, 1.0), None], tol=1e-11)
    s0 = rve.initial_state()
    E = np.array([3e-3, 5e-4, 0, 0, 0, 1e-3])
    r = rve.respond(E, s0)
    assert r.plastic_fraction > 0.1 and r.hill_mandel < 1e-9
    h = 1e-6
    for k in (0, 1, 5):
        d = np.zeros(6)
        d[k] = h
        fd = (rve.respond(E + d, s0).stress - rve.respond(E - d, s0).stress) / (2 * h)
        assert np.abs(fd - r.tangent[:, k]).max() < 2e-3 * np.abs(r.tangent).max()


def test_fe2_with_a_linear_micro_material_equals_the_single_scale_solution():
    m = _micro()
    mesh = plate_with_hole(refine=0, n_theta=4, n_radial=3)
    fe2 = fe2_solve(mesh, PlasticRVE(m, [None, None], tol=1e-11), [1e-3, 2e-3])
    single = single_scale_solve(mesh, homogenise(m, tol=1e-11).stiffness, [1e-3, 2e-3])
    assert np.allclose(fe2.force, single.force, rtol=1e-8)
    assert np.abs(fe2.stress - single.stress).max() < 1e-8 * np.abs(single.stress).max()
    assert fe2.hill_mandel < 1e-9 and fe2.first_yield_step is None
    assert single.stress_concentration > 1.5       # centroid stresses of a coarse mesh


def test_plastic_fe2_yields_softens_and_runs_the_same_on_a_process_pool():
    m = _micro(12)
    mesh = plate_with_hole(refine=0, n_theta=3, n_radial=2)
    rve = PlasticRVE(m, [J2Hardening(0.15, 2.0), None])
    steps = [5e-4, 1.5e-3, 3e-3]
    serial = fe2_solve(mesh, rve, steps)
    assert serial.first_yield_step is not None
    secant = np.array(serial.force) / np.array(steps)
    assert secant[-1] < 0.95 * secant[0]                 # plastic softening of the response
    assert serial.hill_mandel < 1e-7                      # per RVE, every solve
    pooled = fe2_solve(mesh, rve, steps, executor="process", workers=2)
    assert np.allclose(pooled.force, serial.force, rtol=1e-12)


def test_rve_solves_are_cached_by_their_input():
    rve = PlasticRVE(_micro(12), [None, None])
    d = _Dispatcher(rve)
    s = rve.initial_state()
    E = np.array([1e-3, 0, 0, 0, 0, 0])
    out = d([E, E.copy(), 2 * E], [s, s, s])
    assert d.solves == 2 and d.hits == 1
    assert np.allclose(out[2].stress, 2 * out[0].stress)


def test_fe2_bad_input():
    m = _micro(12)
    with pytest.raises(InputError, match="one J2Hardening or None per phase"):
        PlasticRVE(m, [None])
    with pytest.raises(InputError, match="yield_stress"):
        J2Hardening(-1.0)
    with pytest.raises(InputError, match="radius"):
        plate_with_hole(radius=2.0)


def test_fe2_rve_solves_run_on_a_dask_cluster():
    distributed = pytest.importorskip("distributed")
    m = _micro(12)
    mesh = plate_with_hole(refine=0, n_theta=3, n_radial=2)
    rve = PlasticRVE(m, [J2Hardening(0.15, 2.0), None])
    serial = fe2_solve(mesh, rve, [5e-4, 1.5e-3])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        spread = fe2_solve(mesh, rve, [5e-4, 1.5e-3], executor=client)
    assert np.allclose(spread.force, serial.force, rtol=1e-12)


def test_fe2_on_another_geometry_and_boundary_conditions():
    """A plain bar (no hole): uniaxial plane-strain tension gives the exact modulus
    C22 - C12²/C11 of the homogenised tensor; a bar clamped at its base (custom conditions)
    gives FE2 == single scale."""
    from skfem import MeshTri

    from scaleladder.continuum import laminate

    m = laminate((12, 12), [0.5, 0.5], axis=0, phases=(AL, STEEL))    # orthotropic: C16 = 0
    rve = PlasticRVE(m, [None, None], tol=1e-11)
    c = homogenise(m, tol=1e-11).stiffness
    C = np.asarray(c.voigt.value)
    assert abs(C[0, 5]) < 1e-9 * C[0, 0]
    bar = MeshTri.init_tensor(np.linspace(0, 1, 4), np.linspace(0, 2, 5))
    r = single_scale_solve(bar, c, [1e-3])
    # free lateral contraction in x, plane strain in z: sigma_yy / eps_yy with sigma_xx = 0
    e_ps = C[1, 1] - C[0, 1] ** 2 / C[0, 0]
    assert r.nominal_stress[0] / (1e-3 / 2.0) == pytest.approx(e_ps, rel=1e-10)

    def clamped(mesh, basis):
        p = mesh.p
        base = np.flatnonzero(np.isclose(p[1], 0.0))
        top = np.flatnonzero(np.isclose(p[1], p[1].max()))
        return basis.nodal_dofs[:, base].ravel(), basis.nodal_dofs[1, top], 1.0

    fe2 = fe2_solve(bar, rve, [1e-3], conditions=clamped)
    single = single_scale_solve(bar, c, [1e-3], conditions=clamped)
    assert np.allclose(fe2.force, single.force, rtol=1e-8)
    assert fe2.force[0] > r.force[0]           # the clamped base stiffens the bar
