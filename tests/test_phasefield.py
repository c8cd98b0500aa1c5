"""Phase field (mesoscale/phasefield.py): analytic interfaces, curvature flow, conservation,
energy decrease, grain growth, 3D, checkpoint/resume, output files and bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest

from scaleladder.core.errors import CalculationError, InputError
from scaleladder.mesoscale import phasefield as pf
from scaleladder.uq import Estimate


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _slab(grid: pf.SpectralGrid) -> np.ndarray:
    """φ = 1 on the middle half along x (two flat interfaces), sharp."""
    x = grid.coordinates()[0] * np.ones(grid.shape)
    L = grid.lengths[0]
    return ((x >= L / 4) & (x < 3 * L / 4)).astype(float)


def _interface_position_and_slope(profile: np.ndarray, dx: float, lo: int, hi: int):
    """Fourier-interpolated crossing of 0.5 in [lo, hi) and |dφ/dx| there (exact for a
    band-limited periodic profile)."""
    n = profile.size
    k = 2 * np.pi * np.fft.fftfreq(n, dx)
    c = np.fft.fft(profile) / n

    def val(x):
        return float(np.real(np.sum(c * np.exp(1j * k * x))))

    def der(x):
        return float(np.real(np.sum(1j * k * c * np.exp(1j * k * x))))

    i = lo + int(np.argmin(np.abs(profile[lo:hi] - 0.5)))
    x = i * dx
    for _ in range(30):  # Newton on φ(x) = 1/2
        x -= (val(x) - 0.5) / der(x)
    return x, abs(der(x))


# --------------------------------------------------------------------------------------------
# conversions
# --------------------------------------------------------------------------------------------
def test_conversions_closed_forms_and_round_trip():
    W, kappa = pf.double_well_from_interface(0.5, 1e-9)
    assert W == pytest.approx(12 * 0.5 / 1e-9, rel=1e-14)          # 6e9 J/m^3
    assert kappa == pytest.approx(1.5 * 0.5 * 1e-9, rel=1e-14)      # 7.5e-10 J/m
    sigma, width = pf.interface_from_double_well(W, kappa)
    assert sigma == pytest.approx(0.5, rel=1e-14)
    assert width == pytest.approx(1e-9, rel=1e-14)
    # sigma = sqrt(kappa W) / (3 sqrt 2)
    assert sigma == pytest.approx(math.sqrt(kappa * W) / (3 * math.sqrt(2)), rel=1e-14)
    # the 10-90 width: phi(±l/2) of the equilibrium profile is 0.9 / 0.1
    W2, k2 = pf.double_well_from_interface(0.5, 1e-9, width_definition="10-90")
    delta = math.sqrt(k2 / (2 * W2))
    assert 0.5 * (1 + math.tanh(0.5e-9 / (2 * delta))) == pytest.approx(0.9, rel=1e-12)
    assert pf.interface_from_double_well(W2, k2, width_definition="10-90")[1] == \
        pytest.approx(1e-9, rel=1e-14)
    # mobilities
    L = pf.allen_cahn_mobility(2e-10, W, kappa)
    assert L == pytest.approx(2e-10 * 0.5 / kappa, rel=1e-14)        # mu sigma / kappa
    assert L == pytest.approx(2 * 2e-10 / (3 * 1e-9), rel=1e-14)    # 2 mu / (3 l)
    assert pf.cahn_hilliard_mobility(1e-15, W, 0.0) == pytest.approx(1e-15 / (2 * W))
    assert pf.cahn_hilliard_mobility(1e-15, W, 0.1) == pytest.approx(
        1e-15 / (W * (2 - 1.2 + 0.12)))
    gg = pf.grain_growth_parameters(0.5, 1e-9, 3e-10)
    assert gg["m"] == pytest.approx(3e9) and gg["kappa"] == pytest.approx(3.75e-10)
    assert gg["mobility"] == pytest.approx(4 * 3e-10 / 3e-9)


def test_conversions_accept_estimates_and_handoffs():
    sig = Estimate(0.5, "J/m^2", {"dft": [0.45, 0.5, 0.55]})
    ell = Estimate(1.0, "nm", {"md": [0.9, 1.1]})
    W, kappa = pf.double_well_from_interface(sig, ell)
    assert isinstance(W, Estimate) and W.unit == "J/m^3"
    assert float(W) == pytest.approx(6e9, rel=1e-12)                 # nm converted to m
    assert float(kappa) == pytest.approx(7.5e-10, rel=1e-12)
    assert set(W.budget()) == {"dft", "md"}
    # W = 12 sigma / l: the dft source alone gives 12 * std(sigma) / l
    assert math.sqrt(W.variances["dft"]) == pytest.approx(12 * np.std([0.45, 0.5, 0.55], ddof=1)
                                                          / 1e-9, rel=1e-12)

    class _Handoff:  # anything with an Estimate .value, e.g. handoffs.SurfaceEnergy
        value = Estimate(0.5, "J/m^2")

    W3, _ = pf.double_well_from_interface(_Handoff(), 1e-9)
    assert float(W3) == pytest.approx(6e9)
    model = pf.AllenCahn(W=W, kappa=kappa, mobility=Estimate(1.0, "m^3/J/s"))
    assert model.W == pytest.approx(6e9) and isinstance(model.W, float)
    with pytest.raises(InputError) as exc:
        pf.double_well_from_interface(Estimate(1.0, "GPa"), 1e-9)
    assert exc.value.field == "sigma"


# --------------------------------------------------------------------------------------------
# flat interfaces against the analytic tanh solution (SI units)
# --------------------------------------------------------------------------------------------
def test_flat_interface_profile_width_and_energy():
    sigma, ell = 0.5, 1e-9                      # J/m^2, m (tangent width)
    W, kappa = pf.double_well_from_interface(sigma, ell)
    L = pf.allen_cahn_mobility(1e-10, W, kappa)
    dx = ell / 8
    grid = pf.SpectralGrid((256, 4), dx)
    model = pf.AllenCahn(W, kappa, L)
    res = pf.run_phasefield(model, grid, _slab(grid), 0.2 / (L * W), 2000, energy_every=20)
    assert np.all(np.diff(res.energies) <= 1e-12 * abs(res.energies[0]))
    phi = res.fields[0][:, 0]
    x0, slope = _interface_position_and_slope(phi, dx, 32, 96)
    x = np.arange(256) * dx
    analytic = pf.tanh_profile(x[:128] - x0, ell)
    assert np.max(np.abs(phi[:128] - analytic)) < 1e-6
    assert 1.0 / slope == pytest.approx(ell, rel=1e-5)               # tangent width
    # interface energy: the excess free energy per area of the two interfaces
    sigma_num = res.energies[-1] / (2 * grid.lengths[1])
    assert sigma_num == pytest.approx(sigma, rel=1e-6)
    assert model.interface_energy == pytest.approx(sigma, rel=1e-14)


def test_flat_grain_boundary_matches_moelans_conversions():
    p = pf.grain_growth_parameters(0.5, 1.0)     # reduced units: sigma_gb = 0.5, l_gb = 1
    model = pf.GrainGrowth(2, p["m"], p["kappa"], mobility=1.0)
    dx = 1 / 16
    grid = pf.SpectralGrid((256, 4), dx)
    a = _slab(grid)
    res = pf.run_phasefield(model, grid, np.stack([a, 1 - a]), 0.1 / model.m, 3000,
                            energy_every=50)
    assert res.energies[-1] / (2 * grid.lengths[1]) == pytest.approx(0.5, rel=1e-5)
    _, slope = _interface_position_and_slope(res.fields[0][:, 0], dx, 32, 96)
    assert 1.0 / slope == pytest.approx(1.0, rel=1e-4)


# --------------------------------------------------------------------------------------------
# curvature flow, conservation, decay rate
# --------------------------------------------------------------------------------------------
def test_allen_cahn_shrinking_circle_law():
    # reduced units; l = 4 grid points; R0 = 30 l/4; dt L W = 0.025 (the scheme's first-order
    # time error in the velocity is about -0.37 dt L W: -0.9 % here)
    kappa, L, ell = 1.0, 1.0, 4.0
    W = 8 * kappa / ell ** 2
    grid = pf.SpectralGrid((96, 96), 1.0)
    model = pf.AllenCahn(W, kappa, L)
    dt = 0.025 / (L * W)
    stepper = pf.PhaseFieldStepper(model, grid, dt)
    state = stepper.init(pf.circle(grid, 30.0, ell))
    a0 = math.pi * 30.0 ** 2
    times, areas = [], []
    while True:
        area = float(state.fields.sum()) * grid.cell_volume
        if area < 0.35 * a0:
            break
        if area < 0.9 * a0:
            times.append(state.time)
            areas.append(area)
        for _ in range(50):
            state = stepper.step(state)
    slope = np.polyfit(times, areas, 1)[0]
    assert slope == pytest.approx(-2 * math.pi * L * kappa, rel=0.02)


def test_cahn_hilliard_mass_conservation_and_energy_decrease():
    grid = pf.SpectralGrid((64, 64), 1.0)
    model = pf.CahnHilliard(W=1.0, kappa=2.0, mobility=1.0)    # l = 4 points
    rng = np.random.default_rng(3)
    c0 = 0.5 + 0.05 * rng.standard_normal(grid.shape)
    res = pf.run_phasefield(model, grid, c0, 0.1, 3000, energy_every=25)
    assert abs(res.fields.mean() - c0.mean()) < 1e-13                # round-off
    assert np.all(np.diff(res.energies) <= 1e-12 * res.energies[0])
    assert res.energies[-1] < 0.5 * res.energies[0]                   # spinodal decomposition
    assert res.fields.min() < 0.1 and res.fields.max() > 0.9          # phases separated


def test_cahn_hilliard_mobility_gives_fick_decay():
    """A small composition wave about c0 decays at D k^2 (1 + kappa k^2 / (W f''(c0)))."""
    W, kappa, D, c0 = 1.0, 2.0, 1.0, 0.05
    M = pf.cahn_hilliard_mobility(D, W, c0)
    grid = pf.SpectralGrid((64, 64), 1.0)
    k = 2 * np.pi * 2 / 64
    x = grid.coordinates()[0]
    eps = 1e-6
    c = c0 + eps * np.cos(k * x) * np.ones(grid.shape)
    rate = M * k ** 2 * (W * pf.double_well_curvature(c0) + kappa * k ** 2)
    assert rate == pytest.approx(D * k ** 2 * (1 + kappa * k ** 2 / (W * (2 - 0.6 + 0.03))))
    dt = 1e-3 / rate
    steps = 400
    res = pf.run_phasefield(pf.CahnHilliard(W, kappa, M), grid, c, dt, steps, energy_every=50)
    amp = np.abs(np.fft.rfftn(res.fields[0] - c0)).max() / (grid.size / 2)
    measured = -math.log(amp / eps) / res.state.time
    assert measured == pytest.approx(rate, rel=2e-3)                  # time error ~ dt*rate/2


# --------------------------------------------------------------------------------------------
# grain growth, 3D
# --------------------------------------------------------------------------------------------
def test_grain_growth_coarsens_and_energy_decreases():
    grid = pf.SpectralGrid((96, 96), 1.0)
    model = pf.GrainGrowth(8, m=0.5, kappa=1.0, mobility=1.0)        # l_gb = 4 points
    phi0 = pf.voronoi_grains(grid, 40, 8, seed=2)
    n0 = pf.count_grains(phi0)
    assert n0 == 40                       # no two neighbouring grains share an order parameter
    res = pf.run_phasefield(model, grid, phi0, 0.1, 1500, energy_every=25)
    n1 = pf.count_grains(res.fields, min_size=4)
    assert n1 < n0
    assert np.all(np.diff(res.energies) <= 1e-12 * res.energies[0])
    assert res.energies[-1] < 0.85 * res.energies[1]    # beyond the initial profile relaxation


def test_3d_smoke_sphere_shrinks_and_energy_decreases():
    grid = pf.SpectralGrid((32, 32, 32), 1.0)
    model = pf.AllenCahn(W=0.5, kappa=1.0, mobility=1.0)             # l = 4 points
    phi0 = pf.circle(grid, 12.0, model.interface_width)
    res = pf.run_phasefield(model, grid, phi0, 0.1, 100, energy_every=10)
    assert np.all(np.diff(res.energies) < 0)
    # mean-curvature flow of a sphere: R^2 = R0^2 - 4 L kappa t
    lost = phi0.sum() - res.fields.sum()
    analytic = 4 / 3 * math.pi * (12.0 ** 3 - (12.0 ** 2 - 4 * res.state.time) ** 1.5)
    assert lost == pytest.approx(analytic, rel=0.03)
    ch = pf.CahnHilliard(W=0.5, kappa=1.0, mobility=1.0)
    c0 = 0.5 + 0.05 * np.random.default_rng(0).standard_normal(grid.shape)
    res = pf.run_phasefield(ch, grid, c0, 0.2, 200, energy_every=20)
    assert abs(res.fields.mean() - c0.mean()) < 1e-13
    assert res.energies[-1] < res.energies[0]


# --------------------------------------------------------------------------------------------
# energy monitor, checkpoints, output
# --------------------------------------------------------------------------------------------
def test_energy_increase_names_step_and_dt():
    grid = pf.SpectralGrid((64, 64), 1.0)
    model = pf.AllenCahn(W=0.5, kappa=1.0, mobility=1.0)
    phi0 = pf.circle(grid, 20.0, 4.0) + 0.05 * np.random.default_rng(0).standard_normal(
        grid.shape)
    with pytest.raises(CalculationError, match=r"step \d+.*dt = 10"):
        pf.run_phasefield(model, grid, phi0, 10.0, 200, energy_every=1)   # dt L W = 5
    # the stabilised scheme (S = W) takes the same dt with a non-increasing energy
    stab = pf.AllenCahn(W=0.5, kappa=1.0, mobility=1.0, stabilization=1.0)
    res = pf.run_phasefield(stab, grid, phi0, 10.0, 100, energy_every=1)
    assert np.all(np.diff(res.energies) <= 1e-12 * res.energies[0])


@pytest.mark.parametrize("kind", ["allen-cahn", "cahn-hilliard", "grain-growth"])
def test_checkpoint_resume_is_identical(tmp_path, kind):
    grid = pf.SpectralGrid((32, 32), 1.0)
    rng = np.random.default_rng(5)
    if kind == "allen-cahn":
        model, init = pf.AllenCahn(0.5, 1.0, 1.0), pf.circle(grid, 10.0, 4.0)
    elif kind == "cahn-hilliard":
        model, init = pf.CahnHilliard(0.5, 1.0, 1.0), 0.5 + 0.05 * rng.standard_normal(grid.shape)
    else:
        model, init = pf.GrainGrowth(4, 0.5, 1.0, 1.0), pf.voronoi_grains(grid, 8, 4, seed=1)
    full = pf.run_phasefield(model, grid, init, 0.1, 60, energy_every=5)
    ck = tmp_path / "run.npz"
    pf.run_phasefield(model, grid, init, 0.1, 30, energy_every=5, checkpoint=ck)
    assert not list(tmp_path.glob("*.tmp"))
    resumed = pf.resume_phasefield(ck, 30, energy_every=5)
    assert resumed.state.step == 60 and resumed.state.time == pytest.approx(full.state.time)
    np.testing.assert_array_equal(resumed.fields, full.fields)
    np.testing.assert_array_equal(resumed.energies, full.energies)
    np.testing.assert_array_equal(resumed.steps, full.steps)
    assert resumed.model == model and resumed.grid == grid


def test_png_and_vtk_output(tmp_path):
    grid = pf.SpectralGrid((16, 12, 8), (1e-9, 2e-9, 3e-9))
    phi = pf.voronoi_grains(grid, 5, 3, seed=0) * 0.75
    vtk = pf.write_vtk(tmp_path / "f.vtk", phi, grid)
    raw = vtk.read_bytes()
    header_end = raw.index(b"LOOKUP_TABLE default\n") + len(b"LOOKUP_TABLE default\n")
    header = raw[:header_end].decode()
    assert "DIMENSIONS 16 12 8" in header and "SPACING 1e-09 2e-09 3e-09" in header
    assert "POINT_DATA 1536" in header and "SCALARS phi_0 float 1" in header
    first = np.frombuffer(raw[header_end:header_end + 4 * 1536], dtype=">f4")
    # VTK order: x fastest
    np.testing.assert_array_equal(first.reshape(8, 12, 16).transpose(2, 1, 0), phi[0])
    assert raw.count(b"SCALARS") == 3
    png = pf.write_png(tmp_path / "f.png", phi, grid, title="grains")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    g2 = pf.SpectralGrid((16, 16), 1.0)
    png2 = pf.write_png(tmp_path / "g.png", pf.circle(g2, 5.0, 4.0))
    assert png2.stat().st_size > 1000
    assert "DIMENSIONS 16 16 1" in pf.write_vtk(tmp_path / "g.vtk", pf.circle(g2, 5.0, 4.0),
                                                  g2).read_bytes()[:300].decode("ascii", "ignore")


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
def test_bad_input():
    model = pf.AllenCahn(W=0.5, kappa=1.0, mobility=1.0)             # l = 4
    fine = pf.SpectralGrid((32, 32), 1.0)
    coarse = pf.SpectralGrid((32, 32), 1.5)                          # 2.7 points across
    with pytest.raises(InputError) as exc:
        pf.run_phasefield(model, coarse, np.zeros(coarse.shape), 0.1, 10)
    assert exc.value.field == "grid.spacing" and exc.value.value == 1.5
    assert "3" in str(exc.value)
    with pytest.raises(InputError) as exc:
        pf.PhaseFieldStepper(model, fine, 0.0)
    assert exc.value.field == "dt"
    with pytest.raises(InputError) as exc:
        pf.run_phasefield(model, fine, np.zeros(fine.shape), -1.0, 10)
    assert exc.value.field == "dt"
    for kw in ({"mobility": -1.0}, {"W": 0.0}, {"kappa": float("nan")}, {"stabilization": -1}):
        args = {"W": 0.5, "kappa": 1.0, "mobility": 1.0, **kw}
        with pytest.raises(InputError) as exc:
            pf.AllenCahn(**args)
        assert exc.value.field == next(iter(kw))
    with pytest.raises(InputError) as exc:
        pf.CahnHilliard(W=1.0, kappa=1.0, mobility=-2.0)
    assert exc.value.field == "mobility"
    with pytest.raises(InputError) as exc:
        pf.GrainGrowth(4, m=1.0, kappa=1.0, mobility=1.0, gamma=0.4)
    assert exc.value.field == "gamma"
    with pytest.raises(InputError) as exc:
        pf.cahn_hilliard_mobility(1e-15, 1e9, 0.5)                    # inside the spinodal
    assert exc.value.field == "composition"
    with pytest.raises(InputError) as exc:
        pf.allen_cahn_mobility(-1.0, 1.0, 1.0)
    assert exc.value.field == "kinetic_coefficient"
    with pytest.raises(InputError) as exc:
        pf.double_well_from_interface(0.5, 0.0)
    assert exc.value.field == "width"
    with pytest.raises(InputError):
        pf.double_well_from_interface(0.5, 1e-9, width_definition="fwhm")
    with pytest.raises(InputError) as exc:
        pf.SpectralGrid((64,), 1.0)
    assert exc.value.field == "shape"
    with pytest.raises(InputError) as exc:
        pf.SpectralGrid((64, 64), (1.0, 1.0, 1.0))
    assert exc.value.field == "spacing"
    with pytest.raises(InputError) as exc:
        pf.run_phasefield(model, fine, np.zeros((16, 16)), 0.1, 10)
    assert exc.value.field == "fields"
    with pytest.raises(InputError) as exc:
        pf.run_phasefield(model, fine, np.full(fine.shape, np.nan), 0.1, 10)
    assert exc.value.field == "fields"
    with pytest.raises(InputError) as exc:
        pf.run_phasefield(model, fine, np.zeros(fine.shape), 0.1, 0)
    assert exc.value.field == "steps"
    with pytest.raises(InputError) as exc:
        pf.resume_phasefield("/nonexistent/ck.npz", 10)
    assert exc.value.field == "checkpoint"
