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
