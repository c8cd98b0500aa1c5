"""Bridging-domain coupling in 1D (coupling.bridging): reflection of wave packets at the overlap
for the Lagrange and penalty ties, a coarser mesh, and the damping band; the constraint; bad
input."""
import numpy as np
import pytest

from scaleladder.core.errors import InputError
from scaleladder.coupling.bridging import BridgingDomain1D, bridging_reflection


@pytest.mark.parametrize("q0", [0.2, 1.0, 2.0])
def test_lagrange_ties_with_matched_mesh_do_not_reflect(q0):
    """h = a: blended masses and springs add back to the perfect chain at every tied site, so
    nothing is reflected at any wavelength and all the energy reaches the bar."""
    r = bridging_reflection(q0, ratio=1)
    assert r.reflected < 1e-6         # measured 5e-11, 2e-8, 2e-7: the slowest modes' tail
    assert r.transmitted == pytest.approx(1.0, abs=1e-5)


def test_coarse_mesh_passes_long_waves_and_reflects_short_ones():
    """h = 2a: the bar's cutoff is ω = 1 (q = π/3 on the lattice); below it the packet passes
    (R 2e-5 at q = 0.2), above it everything comes back."""
    lo = bridging_reflection(0.2, ratio=2)
    hi = bridging_reflection(1.5, ratio=2)
    assert lo.reflected < 1e-3 and lo.transmitted > 0.999
    assert hi.reflected > 0.999 and hi.transmitted < 1e-6


def test_penalty_ties_reflect_less_as_the_penalty_grows():
    R = [bridging_reflection(0.2, ratio=1, method="penalty", penalty=p).reflected
         for p in (1.0, 10.0, 100.0)]
    assert R[0] > 1e-5                                     # measured 5.8e-5: never exactly zero
    assert R[0] > R[1] > R[2] >= 0.0


def test_constraint_and_energy_are_kept():
    bd = BridgingDomain1D(200, 2, 10, 120)
    rng = np.random.default_rng(0)
    u = np.zeros(bd.n)
    v = rng.standard_normal(bd.n) * 1e-2
    v = bd.project(v)
    E0 = bd.energy(u, v)
    u1, v1 = bd.run(u, v, 0.05, 2000)
    assert np.abs(bd.G @ u1).max() < 1e-12 and np.abs(bd.G @ v1).max() < 1e-12
    assert bd.energy(u1, v1) == pytest.approx(E0, rel=2e-3)


def test_filtered_damping_band_absorbs_short_waves_and_passes_long_ones():
    """h = 4a: a wave above the mesh's cutoff is reflected entirely without a cure; a damping
    band of (1 − S)²-filtered velocities (γ = 0.3, 80 spacings) absorbs it and lets 91 % of a
    long wave through; plain drag of the same strength absorbs the long wave too."""
    assert bridging_reflection(1.0, ratio=4).reflected > 0.999
    kw = dict(ratio=4, damping=0.3, damping_band=80.0)
    short = bridging_reflection(1.0, **kw)
    long_ = bridging_reflection(0.2, **kw)
    plain = bridging_reflection(0.2, filtered=False, **kw)
    assert short.reflected < 0.01
    assert long_.transmitted > 0.9
    assert plain.transmitted < 0.01


def test_bad_input():
    with pytest.raises(InputError, match="penalty"):
        BridgingDomain1D(100, 1, 8, 40, method="penalty")
    with pytest.raises(InputError, match="penalty"):
        BridgingDomain1D(100, 1, 8, 40, penalty=3.0)
    with pytest.raises(InputError, match="n_overlap"):
        BridgingDomain1D(20, 4, 8, 40)
    with pytest.raises(InputError, match="damping_band"):
        BridgingDomain1D(100, 1, 8, 40, damping=0.5)
    with pytest.raises(InputError, match="method"):
        BridgingDomain1D(100, 1, 8, 40, method="arlequin")
    with pytest.raises(InputError, match="blending.*counted twice"):
        BridgingDomain1D(100, 1, 8, 40, blending=None)


def test_cubic_blending_adds_the_masses_back_at_every_tied_site():
    bd = BridgingDomain1D(100, 1, 8, 40, blending="cubic")
    tied = bd.tied
    # blended masses add back to m at every tied site (atom + node)
    na = bd.na
    node_of = np.searchsorted(bd.x_nodes, bd.x_atoms[tied])
    assert np.allclose(bd.mass[tied] + bd.mass[na + node_of], 1.0)


# --- two dimensions: a triangular lattice and P1 elements, periodic in y ------------------------

def _perfect_lattice_energy(n_cols, n_rows, field):
    """½ Σ_bonds k (n·Δu)² of the full triangular lattice (unit k, a) under ``field``."""
    from scipy.spatial import cKDTree

    ry = np.sqrt(3) / 2
    P = np.vstack([np.column_stack([(np.arange(n_cols) + 0.5 * (j % 2)),
                                    np.full(n_cols, j * ry)]) for j in range(n_rows)])
    P = P[P[:, 0] <= n_cols - 1 + 1e-9]
    Ly = n_rows * ry
    pr = cKDTree(P, boxsize=[3 * n_cols, Ly]).query_pairs(1.0001, output_type="ndarray")
    d = P[pr[:, 1]] - P[pr[:, 0]]
    d[:, 1] -= Ly * np.round(d[:, 1] / Ly)
    n = d / np.linalg.norm(d, axis=1)[:, None]
    U = field(P)
    return 0.5 * np.sum(np.sum((U[pr[:, 1]] - U[pr[:, 0]]) * n, axis=1) ** 2), P.shape[0]


@pytest.mark.parametrize("blending", ["linear", "cubic"])
def test_2d_matched_mesh_is_the_perfect_lattice(blending):
    """ratio 1: any displacement field that the ties allow has the perfect lattice's energy,
    and the tied masses add back to one per site — for the linear blending exactly; the cubic
    one is not linear across a bond's two triangles, so it misses by a little."""
    from scaleladder.coupling.bridging import BridgingDomain2D

    bd = BridgingDomain2D(30, 4, 1, 6, 20, blending=blending)
    x_end = bd.nodes[:, 0].max()

    def field(P):        # smooth, and zero near the mesh's right edge (its half-bonds)
        w = np.clip((x_end - 4 - P[:, 0]) / 6, 0, 1) ** 3
        return w[:, None] * np.column_stack(
            [np.sin(0.7 * P[:, 0]) + 0.3 * np.cos(1.3 * P[:, 0] + P[:, 1]),
             0.5 * np.cos(0.9 * P[:, 0]) * np.sin(2 * np.pi * P[:, 1] / bd.Ly)])

    u = np.concatenate([field(bd.atoms).ravel(), field(bd.nodes).ravel()])
    assert np.abs(bd.G @ u).max() < 1e-12
    E, _ = _perfect_lattice_energy(int(round(x_end)) + 1, 4, field)
    diff = abs(0.5 * u @ (bd.K @ u) - E) / E
    # masses: one per site, the tied atom's share and its node's together
    ma, mn = bd.mass[:2 * bd.na:2], bd.mass[2 * bd.na::2]
    from scipy.spatial import cKDTree
    node_of = cKDTree(bd.nodes).query(bd.atoms[bd.tied])[1]
    tied_mass = ma[bd.tied] + mn[node_of]
    inner_atoms = ma[(bd.atoms[:, 0] > 1.1) & (bd.atoms[:, 0] < bd.Xa - 1e-9)]
    inner_nodes = mn[(bd.nodes[:, 0] > bd.Xb + 1e-9) & (bd.nodes[:, 0] < x_end - 1.1)]
    assert np.allclose(inner_atoms, 1.0) and np.allclose(inner_nodes, 1.0)
    if blending == "linear":
        assert diff < 1e-12
        assert np.abs(tied_mass - 1).max() < 1e-12
    else:
        assert 1e-6 < diff < 1e-2
        assert 1e-6 < np.abs(tied_mass - 1).max() < 0.05


@pytest.mark.parametrize("polarisation", ["longitudinal", "transverse"])
def test_2d_lagrange_ties_with_matched_mesh_do_not_reflect(polarisation):
    for q0 in (0.3, 1.5, 2.5):
        r = bridging_reflection(q0, dim=2, polarisation=polarisation, width=12.0)
        assert r.reflected < 1e-4 and r.transmitted > 0.9999       # measured ≤ 1e-5 (Verlet's dt)


def test_2d_coarse_mesh_reflects_what_it_cannot_carry():
    """ratio 2 (h = 2a): the mesh's longitudinal branch along x tops out at ω_max(lattice)/2;
    a packet below it passes, one above it (q = 2, ω = 1.81 > 1.12) is reflected whole.  The
    transverse packet at q = 2 (ω = 1.18) lies under the mesh's transverse top along x
    (√6/2 = 1.22) and mostly passes."""
    from scaleladder.coupling.waves import triangular_frequency

    assert triangular_frequency(2.0, 1, 1) > triangular_frequency(np.linspace(0, 2 * np.pi, 400), 1, 1).max() / 2
    long_ = bridging_reflection(0.3, dim=2, ratio=2, width=12.0)
    short = bridging_reflection(2.0, dim=2, ratio=2, width=12.0)
    tr = bridging_reflection(2.0, dim=2, ratio=2, width=12.0, polarisation="transverse")
    assert long_.reflected < 1e-3 and short.reflected > 0.99
    assert 0.01 < tr.reflected < 0.5


def test_2d_penalty_reflects_less_as_the_penalty_grows():
    R = [bridging_reflection(0.5, dim=2, method="penalty", penalty=p, width=12.0).reflected
         for p in (0.1, 1.0, 10.0)]
    assert R[0] > R[1] > R[2] > 0.0
    assert R[1] > 1e-6                                    # measured 3.4e-5: never exactly zero


def test_2d_dynamics_keep_the_ties_and_the_energy():
    from scaleladder.coupling.bridging import BridgingDomain2D

    bd = BridgingDomain2D(40, 8, 2, 5, 20)
    rng = np.random.default_rng(1)
    v = bd.project(rng.standard_normal(bd.n) * 1e-2 * bd.live)
    u = np.zeros(bd.n)
    E0 = bd.energy(u, v)
    u, v = bd.run(u, v, 0.05 * bd.stable_step(), 2000)
    assert np.abs(bd.G @ u).max() < 1e-12 and np.abs(bd.G @ v).max() < 1e-12
    assert abs(bd.energy(u, v) / E0 - 1) < 1e-3


def test_2d_bad_input():
    from scaleladder.coupling.bridging import BridgingDomain2D

    with pytest.raises(InputError, match="n_rows"):
        BridgingDomain2D(40, 6, 2, 4, 20)
    with pytest.raises(InputError, match="blending"):
        BridgingDomain2D(40, 4, 1, 4, 20, blending=None)
    with pytest.raises(InputError, match="penalty"):
        BridgingDomain2D(40, 4, 1, 4, 20, method="penalty")
    with pytest.raises(InputError, match="polarisation"):
        bridging_reflection(0.5, dim=2, polarisation="shear")
    with pytest.raises(InputError, match="damping"):
        bridging_reflection(0.5, dim=2, damping=0.3, damping_band=5)
