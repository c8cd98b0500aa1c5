"""Spin Monte Carlo (mesoscale/spins.py) and the ExchangeParameters handoff (handoffs/magnetism.py).

Physics checks: exact enumeration of a 4x4 Ising lattice, the classical 1D Ising and Heisenberg
chains (exact ``<e> = -K tanh(K/kT)`` and ``-K L(K/kT)``, Langevin ``L``), Onsager's 2D Ising
``T_c`` from Binder crossings, the 3D classical Heisenberg ``T_c = 1.443 J/k_B`` (Peczak,
Ferrenberg & Landau 1991, slow), mean-field closed forms, and convention converters.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from scaleladder.core.codec import decode, encode
from scaleladder.core.errors import InputError
from scaleladder.core.units import BOLTZMANN_EV as KB
from scaleladder.handoffs.magnetism import (TB2J_CONVENTION, ExchangeParameters,
                                            HamiltonianConvention, read_tb2j)
from scaleladder.mesoscale import spins as sp
from scaleladder.uq import Estimate

J = 0.01  # eV
ONSAGER = 2 * J / (KB * math.log(1 + math.sqrt(2)))
PER_BOND = HamiltonianConvention("minus", "per_bond", "unit")
ALL_CONVENTIONS = [HamiltonianConvention(*c) for c in itertools.product(
    ("minus", "plus"), ("per_bond", "double_counted"), ("unit", "spin"))]


def square(j=J, convention=PER_BOND, spin=1.0):
    return ExchangeParameters(cell=np.diag([3.0, 3.0, 10.0]), positions=[[0, 0, 0]],
                              species=["Fe"], J=Estimate([j], "eV"), convention=convention,
                              spin=spin, shells=[3.0], pbc=(True, True, False))


def chain(j=J):
    return ExchangeParameters(cell=np.diag([2.0, 10.0, 10.0]), positions=[[0, 0, 0]],
                              species=["Fe"], J=Estimate([j], "eV"), convention=PER_BOND,
                              spin=1.0, pair_list=[[0, 0, 1, 0, 0]], pbc=(True, False, False))


def simple_cubic(j=J):
    return ExchangeParameters(cell=np.eye(3) * 2.5, positions=[[0, 0, 0]], species=["Fe"],
                              J=Estimate([j], "eV"), convention=PER_BOND, spin=1.0, shells=[2.5])


# ---------------------------------------------------------------- handoff and conventions
def test_missing_convention_is_an_input_error():
    with pytest.raises(InputError) as err:
        ExchangeParameters(cell=np.eye(3), positions=[[0, 0, 0]], species=["Fe"],
                           J=Estimate([J], "eV"), spin=1.0, shells=[1.0])
    assert err.value.field == "convention"
    with pytest.raises(InputError) as err:
        square(convention={"sign": "minus", "counting": "per_bond", "normalisation": "half"})
    assert err.value.field == "convention.normalisation"


def test_other_bad_handoff_input():
    with pytest.raises(InputError):  # no spin
        ExchangeParameters(cell=np.eye(3), positions=[[0, 0, 0]], species=["Fe"],
                           J=Estimate([J], "eV"), convention=PER_BOND, shells=[1.0])
    with pytest.raises(InputError):  # self bond
        ExchangeParameters(cell=np.eye(3), positions=[[0, 0, 0]], species=["Fe"],
                           J=Estimate([J], "eV"), convention=PER_BOND, spin=1,
                           pair_list=[[0, 0, 0, 0, 0]])
    with pytest.raises(InputError):  # a bond and its reverse with different J
        ExchangeParameters(cell=np.eye(3), positions=[[0, 0, 0]], species=["Fe"],
                           J=Estimate([J, 2 * J], "eV"), convention=PER_BOND, spin=1,
                           pair_list=[[0, 0, 1, 0, 0], [0, 0, -1, 0, 0]])
    with pytest.raises(InputError):  # both shells and pairs
        ExchangeParameters(cell=np.eye(3), positions=[[0, 0, 0]], species=["Fe"],
                           J=Estimate([J], "eV"), convention=PER_BOND, spin=1, shells=[1.0],
                           pair_list=[[0, 0, 1, 0, 0]])
    with pytest.raises(InputError):  # a shell that matches no bond
        square().replace(shells=[2.0]).pairs()


@pytest.mark.parametrize("spin", [0.5, 1.0, 2.0])
def test_converters_round_trip_exactly(spin):
    rng = np.random.default_rng(0)
    Jv = rng.normal(size=3) * 1e-2
    base = ExchangeParameters(cell=np.eye(3) * 2.5, positions=[[0, 0, 0]], species=["Fe"],
                              J=Estimate(Jv, "eV", {"dft": Jv * (1 + 0.01 * rng.normal(size=(8, 3)))}),
                              convention=PER_BOND, spin=spin,
                              shells=[2.5, 2.5 * math.sqrt(2), 2.5 * math.sqrt(3)])
    for a, b in itertools.product(ALL_CONVENTIONS, ALL_CONVENTIONS):
        pa = base.to_convention(a)
        back = pa.to_convention(b).to_convention(a)
        np.testing.assert_array_equal(back.J.value, pa.J.value)  # S^2 a power of two: exact
        np.testing.assert_array_equal(back.J.sources["dft"], pa.J.sources["dft"])
        # the physics (bond couplings) never changes
        np.testing.assert_allclose(pa.bond_couplings().J.value, base.bond_couplings().J.value,
                                   rtol=1e-15)


def test_converter_factors():
    p = square(spin=2.5)
    np.testing.assert_allclose(p.to_convention(counting="double_counted").J.value, [J / 2])
    np.testing.assert_allclose(p.to_convention(normalisation="spin").J.value, [J / 6.25])
    np.testing.assert_allclose(p.to_convention(sign="plus").J.value, [-J])
    q = p.to_convention(("plus", "double_counted", "spin"))
    np.testing.assert_allclose(q.to_convention(PER_BOND).J.value, [J], rtol=2e-16)
    tb = p.to_convention(TB2J_CONVENTION)
    assert tb.convention == TB2J_CONVENTION
    np.testing.assert_allclose(tb.J.value, [J / 2])


def test_codec_round_trip():
    p = square().to_convention(counting="double_counted")
    q = decode(*encode(p))
    assert q.convention == p.convention
    np.testing.assert_array_equal(q.J.value, p.J.value)
    np.testing.assert_array_equal(q.shells, p.shells)


@pytest.mark.parametrize("cell,basis,shell,z", [
    (np.eye(3) * 2.0, [[0, 0, 0]], 2.0, 6),                                   # sc
    (np.eye(3) * 2.0, [[0, 0, 0], [1, 1, 1]], math.sqrt(3), 8),               # bcc, cubic cell
    ((np.ones((3, 3)) - np.eye(3)) * 1.0, [[0, 0, 0]], math.sqrt(2), 12),     # fcc, primitive
])
def test_shell_expansion_coordination(cell, basis, shell, z):
    p = ExchangeParameters(cell=cell, positions=basis, species=["Fe"] * len(basis),
                           J=Estimate([J], "eV"), convention=PER_BOND, spin=1.0, shells=[shell])
    bonds = p.pairs()
    assert len(bonds.i) == z * len(basis) // 2       # each bond once
    np.testing.assert_allclose(bonds.distance, shell, atol=1e-9)
    lat = sp.build_lattice(p, 4)
    assert np.all(np.diff(lat.offsets) == z)
    # ordered state: E = -(z/2) K N
    up = np.ones(lat.n_sites)
    assert sp.lattice_energy(lat, up) == pytest.approx(-z / 2 * J * lat.n_sites, rel=1e-12)


def test_lattice_energy_against_a_direct_bond_sum():
    """Two shells on a 2-site basis: neighbour arrays vs. a plain loop over cells and bonds."""
    p = ExchangeParameters(cell=np.eye(3) * 2.0, positions=[[0, 0, 0], [1, 1, 1]],
                           species=["Fe", "Co"], J=Estimate([J, -0.3 * J], "eV"),
                           convention=HamiltonianConvention("plus", "double_counted", "spin"),
                           spin=1.5, shells=[math.sqrt(3), 2.0])
    L = (5, 4, 6)
    lat = sp.build_lattice(p, L)
    rng = np.random.default_rng(3)
    s = rng.normal(size=(lat.n_sites, 3))
    s /= np.linalg.norm(s, axis=1)[:, None]
    b = p.pairs()
    K = b.J.value * p.bond_factor
    assert p.bond_factor == -2 * 1.5 ** 2
    e = 0.0
    for c in itertools.product(range(L[0]), range(L[1]), range(L[2])):
        for i, j, r, k in zip(b.i, b.j, b.translation, K):
            a = ((c[0] * L[1] + c[1]) * L[2] + c[2]) * 2 + i
            d = np.mod(np.array(c) + r, L)
            bb = ((d[0] * L[1] + d[1]) * L[2] + d[2]) * 2 + j
            e -= k * s[a] @ s[bb]
    assert sp.lattice_energy(lat, s) == pytest.approx(e, rel=1e-12)


def test_mean_field_closed_forms():
    assert sp.mean_field_temperature(square(), "ising") == pytest.approx(4 * J / KB)
    assert sp.mean_field_temperature(simple_cubic(), "heisenberg") == pytest.approx(2 * J / KB)
    # bcc as one site (primitive) or two sublattices (cubic cell): same q = 0 mean field
    bcc1 = ExchangeParameters(cell=(np.ones((3, 3)) - 2 * np.eye(3)) * -1.0, positions=[[0, 0, 0]],
                              species=["Fe"], J=Estimate([J], "eV"), convention=PER_BOND,
                              spin=1.0, shells=[math.sqrt(3)])
    bcc2 = ExchangeParameters(cell=np.eye(3) * 2.0, positions=[[0, 0, 0], [1, 1, 1]],
                              species=["Fe"] * 2, J=Estimate([J], "eV"), convention=PER_BOND,
                              spin=1.0, shells=[math.sqrt(3)])
    t1 = sp.mean_field_temperature(bcc1, "heisenberg")
    assert t1 == pytest.approx(8 * J / 3 / KB)
    assert sp.mean_field_temperature(bcc2, "heisenberg") == pytest.approx(t1)
    # quantum Weiss: S(S+1)/3 sum J_spin; with J_spin = J_unit / S^2 -> (S+1)/S * classical
    s = 2.5
    p = simple_cubic().replace(spin=s)
    assert sp.mean_field_temperature(p, "heisenberg", quantum=True) == pytest.approx(
        s * (s + 1) / 3 * 6 * (J / s ** 2) / KB)


# ---------------------------------------------------------------- Monte Carlo vs exact results
def _exact_4x4_ising(beta):
    n = 4
    states = np.array(list(itertools.product([-1, 1], repeat=n * n)), dtype=float)
    g = states.reshape(-1, n, n)
    e = -J * (np.sum(g * np.roll(g, 1, axis=1), axis=(1, 2))
              + np.sum(g * np.roll(g, 1, axis=2), axis=(1, 2)))
    m = np.abs(states.sum(axis=1))
    w = np.exp(-beta * (e - e.min()))
    w /= w.sum()
    return (w @ e) / 16, (w @ m) / 16, 1 - (w @ m ** 4) / (3 * (w @ m ** 2) ** 2)


@pytest.mark.parametrize("algorithm", ["metropolis", "wolff"])
def test_ising_4x4_against_exact_enumeration(algorithm):
    T = 1.1 * ONSAGER
    e_ex, m_ex, u_ex = _exact_4x4_ising(1 / (KB * T))
    r = sp.run_spin_mc(square(), 4, temperature_K=T, model="ising", n_sweeps=40000,
                       n_thermalize=1000, algorithm=algorithm, seed=6)
    assert abs(r.energy - e_ex) < 4 * r.energy_err + 1e-12
    assert abs(r.magnetisation - m_ex) < 4 * r.magnetisation_err
    assert abs(r.binder - u_ex) < 4 * r.binder_err
    assert r.energy_err < 0.01 * abs(e_ex)  # the test has teeth


@pytest.mark.parametrize("model,algorithm", [("ising", "metropolis"), ("ising", "wolff"),
                                              ("heisenberg", "metropolis"),
                                              ("heisenberg", "wolff")])
def test_chain_energy_against_exact(model, algorithm):
    T = 0.8 * J / KB
    x = J / (KB * T)
    exact = -J * (math.tanh(x) if model == "ising" else 1 / math.tanh(x) - 1 / x)
    r = sp.run_spin_mc(chain(), 200, temperature_K=T, model=model, n_sweeps=3000,
                       n_thermalize=300, algorithm=algorithm, seed=11)
    assert abs(r.energy - exact) < 4 * r.energy_err + 2e-4 * J
    assert r.energy_err < 0.01 * J


def test_overrelaxation_conserves_energy():
    p = simple_cubic()
    lat = sp.build_lattice(p, 6)
    st = sp.init_state(lat, "heisenberg", seed=2)
    e0 = sp.lattice_energy(lat, st.spins)
    s0 = st.spins.copy()
    sp._heis_overrelax(st.spins, lat.offsets, lat.neighbours, lat.couplings)
    assert sp.lattice_energy(lat, st.spins) == pytest.approx(e0, rel=1e-10)
    assert not np.allclose(st.spins, s0)
    np.testing.assert_allclose(np.linalg.norm(st.spins, axis=1), 1.0, atol=1e-12)


def test_bad_temperature_and_sizes():
    with pytest.raises(InputError) as err:
        sp.run_spin_mc(square(), 8, temperature_K=0.0, model="ising")
    assert err.value.field == "temperature_K"
    with pytest.raises(InputError):
        sp.run_spin_mc(square(), 8, temperature_K=-5.0, model="ising")
    with pytest.raises(InputError) as err:
        sp.critical_temperature(square(), model="ising", sizes=(4, 8), temperatures=[-1.0, 100.0])
    assert err.value.field == "temperatures"
    with pytest.raises(InputError):
        sp.build_lattice(square(), 2)  # L must exceed twice the bond range
    with pytest.raises(InputError):
        sp.run_spin_mc(square(), 8, temperature_K=100.0, model="ising", overrelax=1)


def test_checkpoint_resume_reproduces_the_uninterrupted_run(tmp_path, monkeypatch):
    kw = dict(temperature_K=1.2 * J / KB, model="heisenberg", n_sweeps=300, n_thermalize=100,
              algorithm="wolff", seed=4)
    ref = sp.run_spin_mc(simple_cubic(), 4, **kw)
    ck = tmp_path / "run.npz"
    import scaleladder.core.simulation as simulation

    real = simulation._save
    calls = []

    def interrupt(path, engine, state, history, *, store_engine):
        out = real(path, engine, state, history, store_engine=store_engine)
        calls.append(int(state.step))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(simulation, "_save", interrupt)
    with pytest.raises(KeyboardInterrupt):
        sp.run_spin_mc(simple_cubic(), 4, checkpoint=str(ck), checkpoint_every=80, **kw)
    monkeypatch.setattr(simulation, "_save", real)
    assert calls == [80, 160]
    res = sp.run_spin_mc(simple_cubic(), 4, checkpoint=str(ck), checkpoint_every=80, **kw)
    np.testing.assert_array_equal(res.energies, ref.energies)
    np.testing.assert_array_equal(res.magnetisations, ref.magnetisations)
    with pytest.raises(InputError):  # other settings refuse the checkpoint
        sp.run_spin_mc(simple_cubic(), 4, checkpoint=str(ck), **{**kw, "seed": 5})


# ---------------------------------------------------------------- critical temperatures
def test_onsager_tc_from_binder_crossings():
    res = sp.critical_temperature(square(), model="ising", sizes=(8, 16, 32),
                                  temperatures=ONSAGER * np.linspace(0.97, 1.03, 7),
                                  n_sweeps=5000, n_thermalize=500, seed=1)
    assert abs(res.tc_K / ONSAGER - 1) < 0.005
    assert 0 < res.tc_err_K < 0.01 * ONSAGER
    assert set(res.tc.sources) == {"sampling", "finite_size"}
    assert res.mean_field_K == pytest.approx(4 * J / KB)


def test_double_counted_exchange_gives_the_same_tc():
    per_bond = square()
    double = square(j=J / 2, convention=HamiltonianConvention("minus", "double_counted", "unit"))
    np.testing.assert_array_equal(per_bond.to_convention(double.convention).J.value,
                                  double.J.value)
    kw = dict(model="ising", sizes=(6, 12), temperatures=ONSAGER * np.linspace(0.9, 1.1, 5),
              n_sweeps=600, n_thermalize=100, seed=3)
    a = sp.critical_temperature(per_bond, **kw)
    b = sp.critical_temperature(double, **kw)
    c = sp.critical_temperature(double.to_convention(PER_BOND), **kw)
    assert a.tc_K == b.tc_K == c.tc_K
    assert abs(a.tc_K / ONSAGER - 1) < 0.05
    # a double-counted J read as if per bond would be a different magnet: Tc halves
    wrong = square(j=J / 2)
    assert sp.mean_field_temperature(wrong, "ising") == pytest.approx(a.mean_field_K / 2)


@pytest.mark.slow
def test_onsager_tc_tight():
    res = sp.critical_temperature(square(), model="ising", sizes=(16, 32, 64),
                                  temperatures=ONSAGER * np.linspace(0.985, 1.015, 7),
                                  n_sweeps=20000, n_thermalize=1000, seed=2)
    assert abs(res.tc_K / ONSAGER - 1) < 0.0025


@pytest.mark.slow
def test_heisenberg_simple_cubic_tc():
    """Peczak, Ferrenberg & Landau, PRB 43, 6087 (1991): k_B T_c / J = 1.4430(2)."""
    tc_ref = 1.443 * J / KB
    res = sp.critical_temperature(simple_cubic(), model="heisenberg", sizes=(8, 12, 16),
                                  temperatures=tc_ref * np.linspace(0.97, 1.03, 9),
                                  n_sweeps=4000, n_thermalize=400, seed=1)
    assert abs(res.tc_K / tc_ref - 1) < 0.007


# ---------------------------------------------------------------- TB2J reader
TB2J_TEXT = """\
==========================================================================================
Information:
Exchange parameters generated by TB2J (hand-written test file).

==========================================================================================
Cell (Angstrom):
2.83000000  0.00000000  0.00000000
0.00000000  2.83000000  0.00000000
0.00000000  0.00000000  2.83000000

==========================================================================================
Atoms:
(Note: charge and magmoms only count the wannier functions.)
Atom number        x             y             z       w_charge  w_magmom
Fe1             0.00000000    0.00000000    0.00000000    7.8000    2.2000
Fe2             1.41500000    1.41500000    1.41500000    7.8000    2.2000
O1              0.00000000    1.41500000    1.41500000    6.0000    0.0000
Total                                                    21.6000    4.4000

==========================================================================================
Exchange:
    i      j          R        J_iso(meV)          vector          distance(A)
----------------------------------------------------------------------------------------
   Fe1   Fe2   (  0,   0,   0) 19.5000   ( 1.415,  1.415,  1.415)  2.451
J_iso: 19.5000
----------------------------------------------------------------------------------------
   Fe2   Fe1   (  0,   0,   0) 19.5000   (-1.415, -1.415, -1.415)  2.451
J_iso: 19.5000
[Testing!] DMI: ( 0.0000  0.0000  0.0000)
----------------------------------------------------------------------------------------
   Fe1   Fe1   (  1,   0,   0) 11.0000   ( 2.830,  0.000,  0.000)  2.830
J_iso: 11.0000
----------------------------------------------------------------------------------------
   Fe1   Fe1   ( -1,   0,   0) 11.0000   (-2.830,  0.000,  0.000)  2.830
J_iso: 11.0000
----------------------------------------------------------------------------------------
   Fe2   Fe2   (  0,  -1,   0) -1.2500   ( 0.000, -2.830,  0.000)  2.830
J_iso: -1.2500
"""


def test_read_tb2j(tmp_path):
    f = tmp_path / "exchange.out"
    f.write_text(TB2J_TEXT)
    p = read_tb2j(f)
    assert p.convention == TB2J_CONVENTION
    assert p.species == ("Fe", "Fe") and p.n_sites == 2
    assert p.spin == pytest.approx(1.1)
    np.testing.assert_allclose(p.positions[1], [1.415] * 3)
    b = p.pairs()
    assert len(b.i) == 3  # reverse duplicates merged
    got = sorted(zip(b.i.tolist(), b.j.tolist(), map(tuple, b.translation.tolist()),
                     np.round(b.J.value, 8).tolist()))
    assert got == [(0, 0, (1, 0, 0), 0.011), (0, 1, (0, 0, 0), 0.0195),
                   (1, 1, (0, 1, 0), -0.00125)]
    # TB2J double counts: per-bond couplings are twice the printed J
    np.testing.assert_allclose(sorted(p.bond_couplings().J.value), [-0.0025, 0.022, 0.039])
    bad = TB2J_TEXT.replace("( 2.830,  0.000,  0.000)", "( 0.000,  2.830,  0.000)")
    f.write_text(bad)
    with pytest.raises(InputError):
        read_tb2j(f)
    f.write_text("nothing here\n")
    with pytest.raises(InputError):
        read_tb2j(f)
