"""Kinetic Monte Carlo (mesoscale/kmc.py) and the EventCatalog handoff (handoffs/events.py).

Physics checks: the uncorrelated walk's <r^2> = 2 d D t (d = 1, 2, 3) within its standard
error, vacancy-mediated tracer correlation factors against Compaan & Haven / Manning values,
an Arrhenius fit that recovers the barrier and prefactor of the catalog, conservation of the
displacement sum at every exchange, and bitwise-identical resumes from checkpoints.
"""
import math

import numpy as np
import pytest
from ase import Atoms

from scaleladder.core import codec
from scaleladder.core.errors import InputError
from scaleladder.core.units import BOLTZMANN_EV
from scaleladder.handoffs.events import EventCatalog, EventType
from scaleladder.handoffs.phonons import HarmonicTSTPrefactor
from scaleladder.mesoscale import kmc
from scaleladder.uq import Estimate


def unit_rate_catalog(rate_per_s=1.0, shell=1, hop_vectors=None):
    """One event with barrier 0: the rate is the prefactor (given in THz)."""
    kw = {} if hop_vectors is None else {"hop_vectors": hop_vectors}
    return EventCatalog((EventType("hop", Estimate(0.0, "eV"), Estimate(rate_per_s * 1e-12, "1/ps"),
                                   shell=shell, **kw),))


# ------------------------------------------------------------------------------------------
# the handoff
# ------------------------------------------------------------------------------------------
def test_catalog_rates_arrhenius_and_uncertainty():
    e1 = EventType("nn", Estimate(0.7, "eV", {"neb": [0.68, 0.72]}), Estimate(5.0, "1/ps"))
    e2 = EventType("nnn", Estimate(1.0, "eV"),
                   Estimate(2e12, "1/s"), shell=2)
    cat = EventCatalog((e1, e2), provenance={"potential": "test"})
    r = cat.rates(900.0)
    kt = BOLTZMANN_EV * 900.0
    expect = np.array([5e12 * math.exp(-0.7 / kt), 2e12 * math.exp(-1.0 / kt)])
    assert r.unit == "1/s"
    np.testing.assert_allclose(r.value, expect, rtol=1e-12)
    np.testing.assert_allclose(cat.rate_values(900.0), expect, rtol=1e-12)
    assert e2.prefactor.unit == "1/ps" and float(e2.prefactor.value) == pytest.approx(2.0)
    # the barrier source propagates: d ln k / dE = -1/kT
    lo, hi = r.sources["neb"][:, 0]
    assert math.log(lo / hi) == pytest.approx(0.04 / kt, rel=1e-10)
    assert cat.shells == (1, 2) and cat.names == ("nn", "nnn")
    back = codec.from_files(codec.to_files(cat))
    np.testing.assert_allclose(back.rates(900.0).value, r.value, rtol=1e-14)
    assert back.event("nnn").shell == 2


def test_prefactor_from_harmonic_tst():
    fmin, fsad = np.array([4.0, 6.0]), np.array([3.0])
    tst = HarmonicTSTPrefactor(Estimate(8.0, "1/ps"), fmin, fsad, 2.5, n_zero_modes=1, n_atoms=1,
                               domain_warnings=("saddle outside",))
    ev = EventType("vac", Estimate(0.5, "eV"), tst)
    assert float(ev.prefactor.value) == pytest.approx(8.0)
    assert "prefactor_from" in ev.provenance and ev.domain_warnings == ("saddle outside",)
    expect = 8e12 * math.exp(-0.5 / (BOLTZMANN_EV * 500))
    assert float(ev.rate(500.0).value) == pytest.approx(expect)


def test_catalog_bad_input():
    with pytest.raises(InputError) as err:
        EventType("bad", Estimate(-0.1, "eV"), Estimate(1.0, "1/ps"))
    assert err.value.field == "barrier" and "bad" in str(err.value)
    with pytest.raises(InputError):
        EventType("p", Estimate(0.1, "eV"), Estimate(-1.0, "1/ps"))
    with pytest.raises(InputError):
        EventType("u", Estimate(0.1, "GPa"), Estimate(1.0, "1/ps"))
    with pytest.raises(InputError):
        EventType("s", Estimate(0.1, "eV"), Estimate(1.0, "1/ps"), shell=0)
    with pytest.raises(InputError) as err:
        EventCatalog(())
    assert err.value.field == "events"
    ev = EventType("a", Estimate(0.1, "eV"), Estimate(1.0, "1/ps"))
    with pytest.raises(InputError):
        EventCatalog((ev, ev))
    cat = EventCatalog((ev,))
    for t in (0.0, -10.0, float("nan")):
        with pytest.raises(InputError) as err:
            cat.rates(t)
        assert err.value.field == "temperature_K"
    with pytest.raises(InputError):
        kmc.KMCModel.build(kmc.build_lattice("sc", 1.0, 4), cat, 0.0)


# ------------------------------------------------------------------------------------------
# lattices
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, z, d", [("chain", (2, 2), 1), ("square", (4, 4), 2),
                                        ("triangular", (6, 6), 2), ("honeycomb", (3, 6), 2),
                                        ("sc", (6, 12), 3), ("bcc", (8, 6), 3),
                                        ("fcc", (12, 6), 3)])
def test_lattice_shells_geometry(name, z, d):
    lat = kmc.build_lattice(name, a=2.5, size=5 if name != "chain" else 12, n_shells=2)
    assert lat.coordination == z and lat.dimensionality == d
    pos = lat.site_positions()
    cell = lat.cell * np.array(lat.size)[:, None]
    inv = np.linalg.inv(cell)
    nb = lat.n_basis
    for s, (nbr, vec) in enumerate(zip(lat.neighbours, lat.vectors)):
        assert nbr.dtype == np.int32 and nbr.shape == (lat.n_sites, z[s])
        # every jump vector is the minimum-image separation of the sites, of the shell length
        dv = pos[nbr] - pos[:, None, :]
        frac = dv @ inv
        frac[..., ~lat.pbc] = 0.0
        dv = dv - np.round(frac) @ cell
        np.testing.assert_allclose(dv, vec[np.arange(lat.n_sites) % nb], atol=1e-9)
        np.testing.assert_allclose(np.linalg.norm(vec, axis=-1), lat.shell_distances[s])
        # the neighbour relation is symmetric
        for i in (0, lat.n_sites // 2, lat.n_sites - 1):
            for j in nbr[i]:
                assert i in nbr[j]


def test_lattice_order_matches_ase_repeat_and_custom():
    atoms = Atoms("H2", positions=[[0, 0, 0], [1.0, 0.5, 0.3]], cell=np.diag([2.0, 2.2, 2.4]),
                  pbc=True)
    lat = kmc.Lattice.from_atoms(atoms, size=(3, 4, 2), n_shells=2)
    np.testing.assert_allclose(lat.site_positions(), atoms.repeat((3, 4, 2)).positions)
    assert lat.n_sites == 48 and lat.n_basis == 2


def test_lattice_bad_input():
    with pytest.raises(InputError) as err:   # an isolated atom: no neighbours at all
        kmc.Lattice.from_atoms(Atoms("H", positions=[[0, 0, 0]], cell=[5, 5, 5], pbc=False))
    assert err.value.field == "atoms"
    with pytest.raises(InputError) as err:   # a 2x2x2 sc cell cannot hold 6 distinct neighbours
        kmc.build_lattice("sc", 1.0, 2)
    assert err.value.field == "size"
    with pytest.raises(InputError):
        kmc.build_lattice("hcp-ish", 1.0, 4)
    with pytest.raises(InputError):
        kmc.build_lattice("sc", -1.0, 4)
    lat = kmc.build_lattice("sc", 1.0, 4)
    with pytest.raises(InputError):          # shell 2 asked of a one-shell lattice
        kmc.KMCModel.build(lat, unit_rate_catalog(shell=2), 300.0)
    with pytest.raises(InputError) as err:   # a hop vector that is not a jump of the shell
        kmc.KMCModel.build(lat, unit_rate_catalog(hop_vectors=[[0.5, 0, 0]]), 300.0)
    assert err.value.field == "hop_vectors"
    model = kmc.KMCModel.build(lat, unit_rate_catalog(), 300.0)
    with pytest.raises(InputError):
        kmc.run_kmc(kmc.init_vacancies(lat), model)


# ------------------------------------------------------------------------------------------
# uncorrelated walks: <r^2> = 2 d D t
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, d, shells", [("chain", 1, 1), ("square", 2, 1), ("sc", 3, 1),
                                             ("bcc", 3, 2)])
def test_uncorrelated_walk_msd(name, d, shells):
    lat = kmc.build_lattice(name, a=1.5, size=40 if name == "chain" else 8, n_shells=shells)
    events = [EventType("first", Estimate(0.0, "eV"), Estimate(2e-12, "1/ps"), shell=1)]
    if shells == 2:
        events.append(EventType("second", Estimate(0.0, "eV"), Estimate(0.5e-12, "1/ps"), shell=2))
    model = kmc.KMCModel.build(lat, EventCatalog(tuple(events)), 300.0)
    D = model.random_walk_diffusivity()     # Å^2/s
    a_nn = lat.shell_distances
    z = lat.coordination
    second = 0.5 * z[1] * a_nn[1] ** 2 if shells == 2 else 0.0
    expect = (2.0 * z[0] * a_nn[0] ** 2 + second) / (2 * d)
    assert D == pytest.approx(expect, rel=1e-12)
    times = np.array([2.0, 5.0, 10.0, 20.0, 40.0])
    walk = kmc.simulate_random_walk(model, 3000, times, seed=3)
    assert walk.dimensionality == d
    z_scores = (walk.msd - 2 * d * D * times) / walk.msd_sem
    assert np.all(np.abs(z_scores) < 4.0), z_scores
    assert abs(float(walk.D.value) - walk.D_expected) < 4 * float(walk.D.std)
    assert walk.D_expected == pytest.approx(D * 1e-20)


def test_hop_vectors_restrict_the_walk_to_a_line():
    lat = kmc.build_lattice("sc", 1.0, 6)
    model = kmc.KMCModel.build(lat, unit_rate_catalog(hop_vectors=[[1, 0, 0], [-1, 0, 0]]), 300.0)
    assert model.dimensionality == 1 and model.random_walk_diffusivity() == pytest.approx(1.0)
    run = kmc.run_kmc(kmc.init_walkers(lat, 50, seed=1), model, n_events=5000, progress=False)
    assert np.all(run.state.mover_displacement[:, 1:] == 0.0)
    assert np.any(run.state.mover_displacement[:, 0] != 0.0)


# ------------------------------------------------------------------------------------------
# vacancy-mediated tracer diffusion
# ------------------------------------------------------------------------------------------
def _f(name, size, n_traj, n_events, seed):
    lat = kmc.build_lattice(name, 1.0, size)
    model = kmc.KMCModel.build(lat, unit_rate_catalog(), 300.0)
    return kmc.simulate_vacancy_diffusion(model, n_traj, n_events, seed=seed, progress=False)


@pytest.mark.parametrize("name", ["sc", "bcc", "fcc"])
def test_tracer_correlation_factor(name):
    # a lattice larger than the trajectory: each atom jumps a few times at most, so the
    # error of f falls as 1/sqrt(total jumps)
    res = _f(name, 40, 12, 250_000, seed=11)
    f = res.correlation_factor
    ref = kmc.TRACER_CORRELATION_FACTORS[name]
    assert float(f.std) < 0.0013
    assert abs(float(f.value) - ref) < 0.003, (float(f.value), float(f.std), ref)
    # D_tracer = f c_v D_vacancy (the vacancy walk is uncorrelated), same trajectories
    dv = res.D_vacancy
    ratio = float(res.D_tracer.value) / (float(dv.value) * res.vacancy_fraction)
    rel = math.hypot(float(dv.std) / float(dv.value), float(res.D_tracer.std / res.D_tracer.value))
    assert abs(ratio - float(f.value)) < 4 * rel * ratio


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sc", "bcc", "fcc", "square"])
def test_tracer_correlation_factor_tight(name):
    size = 40 if name != "square" else 300
    res = _f(name, size, 40, 250_000, seed=5)
    f = res.correlation_factor
    ref = kmc.TRACER_CORRELATION_FACTORS[name]
    tol = 0.0015 if name != "square" else 0.006   # 2D: log-slow approach to the limit
    assert abs(float(f.value) - ref) < tol, (float(f.value), float(f.std), ref)


def test_displacement_conservation_with_several_vacancies():
    lat = kmc.build_lattice("bcc", 1.0, 6)
    model = kmc.KMCModel.build(lat, unit_rate_catalog(), 300.0)
    st = kmc.init_vacancies(lat, (0, 1, 50, 77), seed=2)
    s = kmc.run_kmc(st, model, n_events=20_000, progress=False).state
    # every exchange moves an atom by -b and a vacancy by +b
    np.testing.assert_allclose(s.atom_displacement.sum(0), -s.mover_displacement.sum(0), atol=1e-8)
    assert s.atom_jumps.sum() == s.n_events == 20_000
    occ = s.site_state
    assert sorted(occ[occ >= 0]) == list(range(lat.n_sites - 4))
    assert sorted(-1 - occ[occ < 0]) == [0, 1, 2, 3]
    assert np.all(occ[s.mover_site] == -1 - np.arange(4))
    # the atoms sit where their displacement says (minimum image on the periodic cell)
    pos = lat.site_positions()
    atom_site = np.empty(lat.n_sites - 4, dtype=int)
    atom_site[occ[occ >= 0]] = np.nonzero(occ >= 0)[0]
    start = np.nonzero(st.site_state >= 0)[0]
    cell = lat.cell * np.array(lat.size)[:, None]
    diff = pos[atom_site] - pos[start] - s.atom_displacement
    frac = diff @ np.linalg.inv(cell)
    np.testing.assert_allclose(frac, np.round(frac), atol=1e-8)


def test_arrhenius_fit_recovers_barrier_and_prefactor():
    a, ea, nu = 3.6, 0.5, 5.0                 # Å, eV, THz
    lat = kmc.build_lattice("fcc", a, 8)
    cat = EventCatalog((EventType("vac-nn", Estimate(ea, "eV"), Estimate(nu, "1/ps")),))
    temps = [500.0, 700.0, 900.0, 1100.0]
    Ds = []
    for k, t in enumerate(temps):
        res = kmc.simulate_vacancy_diffusion(kmc.KMCModel.build(lat, cat, t), 8, 20_000,
                                             seed=k, progress=False)
        Ds.append(res.D_vacancy)
    fit = kmc.fit_arrhenius(temps, Ds)
    # the vacancy walk is uncorrelated: D_v = z nu a_nn^2 / 6 exp(-Ea / kT)
    d0 = 12 * nu * 1e12 * (a / math.sqrt(2)) ** 2 / 6 * 1e-20     # m^2/s
    assert abs(float(fit.Ea.value) - ea) < 4 * float(fit.Ea.std) and float(fit.Ea.std) < 0.01
    assert abs(float(fit.D0.value) - d0) < 4 * float(fit.D0.std)
    assert fit.dof == 2 and fit.chi2 < 20
    np.testing.assert_allclose(fit.predict(temps), fit.D, rtol=0.05)
    # unweighted fit of exact values: exact parameters
    exact = kmc.fit_arrhenius(temps, d0 * np.exp(-ea / (BOLTZMANN_EV * np.array(temps))))
    assert float(exact.Ea.value) == pytest.approx(ea, rel=1e-10)
    with pytest.raises(InputError):
        kmc.fit_arrhenius([500.0, -1.0], [1e-9, 1e-9], D_err=[1e-10, 1e-10])
    with pytest.raises(InputError):
        kmc.fit_arrhenius([500.0, 600.0], [1e-9, -1e-9], D_err=[1e-10, 1e-10])


# ------------------------------------------------------------------------------------------
# state as data: checkpoint and resume
# ------------------------------------------------------------------------------------------
def _same(s1, s2):
    for name in ("site_state", "mover_site", "mover_displacement", "atom_displacement",
                 "atom_jumps", "rng"):
        np.testing.assert_array_equal(getattr(s1, name), getattr(s2, name), err_msg=name)
    assert s1.time_s == s2.time_s and s1.n_events == s2.n_events
    assert s1.jump_b2_sum == s2.jump_b2_sum


def test_checkpoint_resume_is_identical(tmp_path):
    lat = kmc.build_lattice("fcc", 1.0, 6, n_shells=2)
    cat = EventCatalog((EventType("nn", Estimate(0.3, "eV"), Estimate(3.0, "1/ps")),
                        EventType("nnn", Estimate(0.5, "eV"), Estimate(3.0, "1/ps"), shell=2)))
    model = kmc.KMCModel.build(lat, cat, 800.0)
    st = kmc.init_vacancies(lat, (3, 100), seed=42)
    straight = kmc.run_kmc(st, model, n_events=30_000, progress=False).state
    ck = tmp_path / "kmc.npz"
    first = kmc.run_kmc(st, model, n_events=17_000, checkpoint=ck, checkpoint_every=5_000,
                        progress=False)
    assert first.checkpoint == str(ck) and not list(tmp_path.glob("*.tmp"))
    resumed = kmc.run_kmc(kmc.read_checkpoint(ck), model, n_events=13_000, progress=False).state
    _same(straight, resumed)
    # a time-limited run continued to a later time equals one run to that time
    t1, t2 = straight.time_s * 0.3, straight.time_s * 0.8
    one = kmc.run_kmc(st, model, t_max_s=t2, progress=False)
    part = kmc.run_kmc(st, model, t_max_s=t1, progress=False)
    assert part.stopped == "time" and part.state.time_s <= t1
    two = kmc.run_kmc(part.state, model, t_max_s=t2, progress=False)
    _same(one.state, two.state)
    # walkers too
    w = kmc.init_walkers(lat, 30, seed=9)
    a = kmc.run_kmc(w, model, n_events=4000, progress=False).state
    b = kmc.run_kmc(kmc.run_kmc(w, model, n_events=1500, progress=False).state, model,
                    n_events=2500, progress=False).state
    _same(a, b)
    with pytest.raises(InputError):
        kmc.read_checkpoint(tmp_path / "missing.npz")


def test_samples_follow_the_state():
    lat = kmc.build_lattice("square", 1.0, 10)
    model = kmc.KMCModel.build(lat, unit_rate_catalog(), 300.0)
    w = kmc.init_walkers(lat, 20, seed=4)
    times = np.linspace(0.5, 5.0, 10)
    run = kmc.run_kmc(w, model, t_max_s=5.0, sample_times_s=times, progress=False)
    assert len(run.sample_times_s) == 10 and run.stopped == "time"
    np.testing.assert_allclose(run.mover_r2[-1], np.sum(run.state.mover_displacement ** 2, 1))
