"""Harmonic phonons through phonopy: Stillinger-Weber diamond Si (issue 3)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from ase.build import bulk

pytest.importorskip("phonopy")

from scaleladder.atomistic import StillingerWeber, phonons  # noqa: E402
from scaleladder.atomistic.phonons import attempt_frequency  # noqa: E402
from scaleladder.core import codec  # noqa: E402
from scaleladder.core.errors import DomainWarning, InputError, UnitError  # noqa: E402
from scaleladder.core.units import BOLTZMANN_EV, ELEMENTARY_CHARGE  # noqa: E402
from scaleladder.uq import Estimate  # noqa: E402

A_SI = 5.431  # SW's zero-pressure lattice constant (Å)
HBAR_EV_S = 6.582119514e-16  # eV s (CODATA 2014, as ase.units)
AMU_KG = 1.66053904e-27
TEMPS = (0.0, 300.0, 600.0, 1000.0, 3000.0, 6000.0)


@pytest.fixture(scope="module")
def si():
    return bulk("Si", "diamond", a=A_SI)


@pytest.fixture(scope="module")
def props(si):
    return phonons(si, StillingerWeber(), supercell=(2, 2, 2), displacement=0.01,
                   mesh=(12, 12, 12), temperatures=TEMPS)


def _round_trip(obj):
    files = codec.to_files(obj)
    back = codec.from_files(files)
    assert type(back) is type(obj)
    assert codec.to_files(back) == files
    return back


def _gamma_optical_fd(si, delta=1e-3) -> float:
    """Γ optical frequency (THz) from the two sublattices displaced against each other."""
    calc = StillingerWeber()
    f = []
    for s in (+1, -1):
        a = si.copy()
        pos = a.get_positions()
        pos[0, 0] += s * delta
        pos[1, 0] -= s * delta
        a.set_positions(pos)
        a.calc = calc
        f.append(a.get_forces()[0, 0])
    k = -(f[0] - f[1]) / (2 * delta)  # eV/Å^2: F0 = -k delta
    m = si.get_masses()[0]
    omega = math.sqrt(k * ELEMENTARY_CHARGE / 1e-20 / (m * AMU_KG))  # rad/s, omega^2 = k/m
    return omega / (2 * math.pi) / 1e12


def test_acoustic_sum_rule_at_gamma(si, props):
    g = props.gamma_frequencies_THz
    assert g.shape == (6,)
    assert np.all(np.abs(g[:3]) < 1e-3), g
    # also without symmetrisation (the raw finite-difference force constants)
    raw = phonons(si, StillingerWeber(), mesh=(4, 4, 4), temperatures=(300.0,), symmetrize=False)
    assert np.all(np.abs(raw.gamma_frequencies_THz[:3]) < 1e-3), raw.gamma_frequencies_THz
    assert raw.provenance["imaginary_modes"] == 0


def test_gamma_optical_matches_direct_finite_difference(si, props):
    ref = _gamma_optical_fd(si)
    opt = props.gamma_frequencies_THz[3:]
    assert np.allclose(opt, opt[0], rtol=1e-8)  # triply degenerate (T2g)
    assert abs(opt[0] - ref) / ref < 1e-3, (opt[0], ref)
    assert 15.0 < ref < 19.0  # SW Si: ~17.8 THz (expt. 15.5 THz)


def test_thermal_properties_from_frequencies(props):
    """phonopy's thermal properties agree with the harmonic formulas on the stored mesh."""
    f = props.frequencies_THz
    w = props.weights.astype(float)[:, None] * np.ones_like(f)
    ok = f > props.imaginary_tolerance_THz
    e = HBAR_EV_S * 2 * np.pi * f[ok] * 1e12  # hbar omega, eV
    w = w[ok] / props.weights.sum() / props.n_atoms
    for i, t in enumerate(props.temperatures_K):
        if t == 0:
            fe = np.sum(w * e / 2)  # zero-point energy
        else:
            kt = BOLTZMANN_EV * t
            fe = np.sum(w * (e / 2 + kt * np.log1p(-np.exp(-e / kt))))
        assert props.free_energy.value[i] == pytest.approx(fe, rel=1e-4, abs=1e-6)


def test_high_temperature_limits(props):
    t = props.temperatures_K
    cv = props.heat_capacity.value / (3 * BOLTZMANN_EV)  # per atom, in units of 3 k_B
    i3000, i6000 = list(t).index(3000.0), list(t).index(6000.0)
    assert abs(cv[i3000] - 1) < 0.01 and abs(cv[i6000] - 1) < 0.01  # Dulong-Petit
    assert cv[0] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(cv) > 0)
    # classical harmonic free energy: k_B T <ln(hbar omega / k_B T)> per mode, 3 modes/atom
    f = props.frequencies_THz
    w = props.weights.astype(float)[:, None] * np.ones_like(f)
    ok = f > props.imaginary_tolerance_THz
    e = HBAR_EV_S * 2 * np.pi * f[ok] * 1e12
    w = w[ok] / props.weights.sum() / props.n_atoms
    for i in (i3000, i6000):
        kt = BOLTZMANN_EV * t[i]
        f_cl = np.sum(w * kt * np.log(e / kt))
        assert props.free_energy.value[i] == pytest.approx(f_cl, rel=1e-2)
    assert props.entropy.value[0] == pytest.approx(0.0, abs=1e-9)
    assert props.entropy.unit == "eV/K" and props.free_energy.unit == "eV"


def test_dos_and_attempt_frequency(props):
    fd, d = props.dos_frequencies_THz, props.dos
    integral = np.trapezoid(d, fd) if hasattr(np, "trapezoid") else np.trapz(d, fd)
    assert integral == pytest.approx(props.n_modes, rel=0.02)  # 3N modes per cell
    nu = attempt_frequency(props)
    assert 5.0 < nu < props.max_frequency_THz


def test_round_trip(props):
    back = _round_trip(props)
    assert np.array_equal(back.frequencies_THz, props.frequencies_THz)
    assert back.free_energy.identical(props.free_energy)
    assert back.mesh == (12, 12, 12)
    assert back.provenance == props.provenance
    assert "PhononProperties(2 atoms" in str(back)


def test_imaginary_modes_flagged_not_dropped(props):
    f = np.array(props.frequencies_THz)
    f[1, 0] = -2.0  # a non-Γ q-point
    with pytest.warns(DomainWarning, match="imaginary"):
        bad = props.replace(frequencies_THz=f)
    assert bad.provenance["imaginary_modes"] == 1
    assert bad.frequencies_THz[1, 0] == -2.0
    # small negative noise at Γ is not flagged
    with warnings.catch_warnings():
        warnings.simplefilter("error", DomainWarning)
        g = np.array(props.frequencies_THz)
        g[0, 0] = -0.01
        assert props.replace(frequencies_THz=g).provenance["imaginary_modes"] == 0


def test_artifact_validation(props):
    with pytest.raises(InputError, match="frequencies_THz"):
        props.replace(frequencies_THz=props.frequencies_THz[:, :3])
    with pytest.raises(InputError, match="free_energy"):
        props.replace(free_energy=Estimate(props.free_energy.value[:2], "eV"))
    with pytest.raises(UnitError):
        props.replace(entropy=Estimate(props.entropy.value, "eV"))
    with pytest.raises(InputError, match="free_energy"):
        props.replace(free_energy=props.free_energy.value)  # a bare array has no unit
    with pytest.raises(InputError, match="temperatures_K"):
        props.replace(temperatures_K=props.temperatures_K[::-1])
    with pytest.raises(InputError, match="weights"):
        props.replace(weights=props.weights * 2)
    # kJ/mol-like units are converted, not misread: meV in -> eV stored
    mev = props.replace(free_energy=Estimate(props.free_energy.value * 1e3, "meV"))
    assert np.allclose(mev.free_energy.value, props.free_energy.value)


@pytest.mark.parametrize("kwargs, field", [
    ({"supercell": (2, 0, 2)}, "supercell"),
    ({"supercell": (2, -1, 2)}, "supercell"),
    ({"displacement": 0.0}, "displacement"),
    ({"displacement": -0.01}, "displacement"),
    ({"mesh": (0, 4, 4)}, "mesh"),
    ({"temperatures": (300.0, 100.0)}, "temperatures"),
    ({"temperatures": (-5.0,)}, "temperatures"),
])
def test_bad_input(si, kwargs, field):
    with pytest.raises(InputError) as err:
        phonons(si, StillingerWeber(), **kwargs)
    assert err.value.field == field
    assert str(list(kwargs.values())[0]).strip("()")[:3] in str(err.value)


def test_bad_atoms_and_calc(si):
    mol = si.copy()
    mol.pbc = False
    with pytest.raises(InputError, match="atoms"):
        phonons(mol, StillingerWeber())
    with pytest.raises(InputError, match="calc"):
        phonons(si, None)


def test_missing_phonopy(monkeypatch, si):
    import builtins

    from scaleladder.core.errors import MissingExtraError

    real_import = builtins.__import__

    def fake(name, *a, **k):
        if name == "phonopy" or name.startswith("phonopy."):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(MissingExtraError, match=r"scaleladder\[phonons\]") as err:
        phonons(si, StillingerWeber())
    assert err.value.package == "phonopy" and err.value.extra == "phonons"


def test_force_constants_are_the_energy_hessian(si, props):
    """The handoff carries the supercell force constants (eV/Å²): symmetric, obeying the
    acoustic sum rule, and equal to a central finite difference of the forces."""
    fc = props.force_constants
    assert fc.shape == (16, 16, 3, 3)
    np.testing.assert_allclose(fc, fc.transpose(1, 0, 3, 2), atol=1e-8)
    assert np.abs(fc.sum(axis=1)).max() < 1e-8
    sc = si.repeat((2, 2, 2))   # phonopy's supercell order for a diagonal matrix: repeat order
    calc = StillingerWeber()
    h = 1e-4
    col = []
    for sign in (+1, -1):
        a = sc.copy()
        a.positions[0, 0] += sign * h
        a.calc = calc
        col.append(a.get_forces())
    fd = -(col[0] - col[1]) / (2 * h)          # d F_j / d u_0x = -Φ[0, j, x, :]
    # phonopy's supercell atom order need not be ase's repeat order: compare the on-site block
    # directly and the whole row up to that permutation (sorted magnitudes)
    # phonopy differentiates with 0.01 Å displacements (and symmetrises): O(h²) ~ 1e-4 relative
    np.testing.assert_allclose(fd[0], fc[0, 0, 0], rtol=5e-4, atol=1e-6)
    np.testing.assert_allclose(np.sort(np.abs(fd).ravel()), np.sort(np.abs(fc[0, :, 0, :]).ravel()),
                               rtol=5e-4, atol=1e-6)
    back = _round_trip(props)
    np.testing.assert_array_equal(back.force_constants, fc)
    assert props.replace(force_constants=None).force_constants is None   # old records


def test_phonon_displacements_as_stages_equal_the_in_process_run(tmp_path):
    """Each displaced supercell is a stage (here on a process pool): the result equals
    phonons() in one process, and a rerun reuses every stage."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from scaleladder.atomistic import phonons
    from scaleladder.core.pipeline import Runner
    from scaleladder.core.store import Store
    from scaleladder.workflows.calculators import calculator_spec
    from scaleladder.workflows.phonons import phonon_nodes

    atoms = bulk("Cu", "fcc", a=3.59)
    ref = phonons(atoms, EMT(), supercell=(2, 2, 2), mesh=(6, 6, 6))
    node = phonon_nodes(atoms, calculator_spec("emt", species=["Cu"]), supercell=(2, 2, 2),
                        mesh=(6, 6, 6))
    store = Store(tmp_path / "s")
    runner = Runner(store, executor="process", progress=False)
    props = runner.run({"ph": node})["ph"]
    assert runner.stats.computed == len(node.dependencies()) + 1
    # the acoustic modes at Γ are zero to ~1e-7 THz of round-off: compare to 1e-6 THz
    np.testing.assert_allclose(props.frequencies_THz, ref.frequencies_THz, rtol=0, atol=1e-6)
    np.testing.assert_allclose(props.force_constants, ref.force_constants, rtol=0, atol=1e-10)
    np.testing.assert_allclose(props.free_energy.value, ref.free_energy.value, rtol=1e-10)
    again = Runner(store, progress=False)
    again.run({"ph": node})
    assert again.stats.computed == 0
