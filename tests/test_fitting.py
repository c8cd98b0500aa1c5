"""Tests of fit_potential: recovery of known Stillinger-Weber parameters from synthetic data.

The data are made by StillingerWeber itself with KNOWN parameters (perturbed from the original
silicon set), on compressed / expanded and strained primitive cells and rattled cubic cells, plus
Gaussian noise of known size.  With zero noise the fit must return the true parameters to 1e-6;
with noise every parameter must lie within 3 of its own Laplace standard errors of the truth,
the residual variance must be ~1 when the scales equal the noise, and held-out errors must be at
the noise level.
"""
from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from scaleladder.atomistic import StillingerWeber, fit_potential
from scaleladder.atomistic.stillinger_weber import SW_SILICON
from scaleladder.core.errors import InputError
from scaleladder.core.units import EV_PER_A3_IN_GPA
from scaleladder.handoffs import FittedPotential, ReferenceDataset

TRUE = dict(SW_SILICON)
TRUE.update({"epsilon": SW_SILICON["epsilon"] * 1.05, "lambda": SW_SILICON["lambda"] * 1.1,
             "B": SW_SILICON["B"] * 0.97, "sigma": SW_SILICON["sigma"] * 1.01})
ATOM_ENERGY = -0.75       # "isolated-atom DFT energy" of the synthetic reference (eV)
NOISE = {"energy": 0.002, "forces": 0.02, "stress": 0.1}   # eV/atom, eV/Å, GPa (1 sigma)


def _make_dataset(noise: dict | None, seed: int = 1, atom_energy: float | None = ATOM_ENERGY):
    rng = np.random.default_rng(seed)
    calc = StillingerWeber(TRUE)
    a0 = 5.431 * 1.01        # the true potential's lattice constant scales with sigma
    atoms, labels = [], []
    for s in np.linspace(0.94, 1.06, 7):
        atoms.append(bulk("Si", "diamond", a=a0 * s))
        labels.append("ev")
    for _ in range(8):
        at = bulk("Si", "diamond", a=a0)
        e = rng.normal(0.0, 0.015, (3, 3))
        at.set_cell(at.cell.array @ (np.eye(3) + 0.5 * (e + e.T)).T, scale_atoms=True)
        atoms.append(at)
        labels.append("strain")
    for k in range(8):
        at = bulk("Si", "diamond", a=a0 * rng.uniform(0.97, 1.03), cubic=True)
        at.rattle(0.05, seed=k)
        atoms.append(at)
        labels.append("rattle")
    for k in range(4):
        at = bulk("Si", "diamond", a=a0, cubic=True)
        at.rattle(0.08, seed=100 + k)
        atoms.append(at)
        labels.append("heldout")
    out = []
    ea = 0.0 if atom_energy is None else atom_energy
    for at in atoms:
        at.calc = calc
        n = len(at)
        e = at.get_potential_energy() + n * ea
        f = at.get_forces()
        s = at.get_stress()
        if noise:
            e += n * noise["energy"] * rng.standard_normal()
            f = f + noise["forces"] * rng.standard_normal(f.shape)
            s = s + noise["stress"] / EV_PER_A3_IN_GPA * rng.standard_normal(6)
        ref = at.copy()
        ref.calc = SinglePointCalculator(ref, energy=e, forces=f, stress=s)
        out.append(ref)
    method = {"code": "synthetic StillingerWeber"}
    if atom_energy is not None:
        method["atom_energy_eV"] = atom_energy
    return ReferenceDataset.from_atoms(out, method=method, labels=labels)


@pytest.fixture(scope="module")
def clean():
    return _make_dataset(None)


@pytest.fixture(scope="module")
def noisy():
    return _make_dataset(NOISE)


@pytest.fixture(scope="module")
def noisy_fit(noisy):
    return fit_potential(noisy, scales=NOISE, n_ensemble=16, seed=0)


def test_zero_noise_recovers_true_parameters(clean):
    fp = fit_potential(clean)
    assert isinstance(fp, FittedPotential)
    assert fp.fitted == ("epsilon", "sigma", "lambda", "B")
    for name in fp.fitted:
        assert fp.parameters[name] == pytest.approx(TRUE[name], rel=1e-6), name
    for name in ("a", "gamma", "A", "p", "q"):          # fixed ones untouched
        assert fp.parameters[name] == SW_SILICON[name]
    assert fp.errors["train"]["force_rmse"] < 1e-8
    assert fp.errors["heldout"]["energy_rmse"] < 1e-8
    assert fp.provenance["energy_offset_eV_per_atom"] is None   # cohesive energies used


def test_noisy_fit_within_own_error_bars(noisy_fit):
    fp = noisy_fit
    std = fp.provenance["parameter_std"]
    for name in fp.fitted:
        assert std[name] > 0
        assert abs(fp.parameters[name] - TRUE[name]) < 3 * std[name], name
    # scales equal to the noise -> residual variance per degree of freedom ~ 1
    assert 0.8 < fp.provenance["residual_variance"] < 1.25


def test_heldout_errors_at_noise_level(noisy_fit):
    held = noisy_fit.errors["heldout"]
    train = noisy_fit.errors["train"]
    assert held["force_rmse"] == pytest.approx(NOISE["forces"], rel=0.3)
    assert held["stress_rmse"] == pytest.approx(NOISE["stress"], rel=0.5)
    assert held["energy_rmse"] < 3 * NOISE["energy"]
    assert train["force_rmse"] == pytest.approx(NOISE["forces"], rel=0.15)
    assert 0 < held["stress_rel_rmse"] < 0.2


def test_laplace_ensemble_shape_spread_and_determinism(noisy, noisy_fit):
    fp = noisy_fit
    assert fp.ensemble.shape == (16, 4)
    assert fp.ensemble_method == "laplace"
    std = np.array([fp.provenance["parameter_std"][n] for n in fp.fitted])
    spread = fp.ensemble.std(axis=0, ddof=1)
    # 16 draws: the sample std scatters by ~18 %; 2x either way is a loose, honest bound
    assert np.all(spread > 0.5 * std) and np.all(spread < 2.0 * std)
    again = fit_potential(noisy, scales=NOISE, n_ensemble=16, seed=0)
    np.testing.assert_array_equal(again.ensemble, fp.ensemble)
    est = fp.parameter_estimate()
    assert est.shape == (4,)
    # an ensemble member drives the calculator
    calc = StillingerWeber.from_fitted(fp, member=3)
    assert calc.sw_parameters["lambda"] == pytest.approx(fp.ensemble[3, 2])


def test_fitted_potential_reproduces_fit_predictions(clean):
    fp = fit_potential(clean)
    calc = StillingerWeber.from_fitted(fp)
    at = clean.to_atoms(20)
    ref_e = at.get_potential_energy() - len(at) * ATOM_ENERGY
    at.calc = calc
    assert at.get_potential_energy() == pytest.approx(ref_e, abs=1e-8)


def test_energy_offset_fitted_without_atom_energy():
    ds = _make_dataset(None, atom_energy=None)
    shifted = []
    for c in ds.configurations:
        shifted.append(c.replace(energy=c.energy + len(c) * (-1.3)))
    ds = ReferenceDataset(tuple(shifted), {"code": "synthetic, no atom energy"})
    fp = fit_potential(ds)
    assert fp.provenance["energy_offset_eV_per_atom"] == pytest.approx(-1.3, abs=1e-8)
    assert "offset fitted" in fp.provenance["energy_reference"]
    for name in fp.fitted:
        assert fp.parameters[name] == pytest.approx(TRUE[name], rel=1e-6)
    assert fp.ensemble.shape == (16, 4)      # offset marginalised out


def test_bootstrap_ensemble(noisy, noisy_fit):
    fp = fit_potential(noisy, scales=NOISE, n_ensemble=8, method="bootstrap", seed=2)
    assert fp.ensemble_method == "bootstrap" and fp.ensemble.shape == (8, 4)
    std_l = np.array([noisy_fit.provenance["parameter_std"][n] for n in fp.fitted])
    spread = fp.ensemble.std(axis=0, ddof=1)
    assert np.all(spread > 0.2 * std_l) and np.all(spread < 5.0 * std_l)


def test_training_domain(noisy_fit, noisy):
    dom = noisy_fit.training_domain
    vpa = noisy.volumes_per_atom
    train = [c.label != "heldout" for c in noisy.configurations]
    assert dom["volume_per_atom"] == pytest.approx((vpa[train].min(), vpa[train].max()))
    # E-V set spans +-6 % in lattice constant: Green-Lagrange (1.06^2 - 1)/2
    assert dom["max_abs_strain"] == pytest.approx((1.06 ** 2 - 1) / 2, rel=1e-6)
    lo, hi = dom["neighbour_distance"]
    assert lo < 5.431 * 1.01 * np.sqrt(3) / 4 < hi
    assert noisy_fit.check_domain(noisy.to_atoms(3)) == []
    squeezed = bulk("Si", "diamond", a=5.431 * 0.85)
    assert noisy_fit.check_domain(squeezed)


def test_fit_is_fast(noisy_fit):
    assert noisy_fit.provenance["fit_seconds"] < 5.0


def test_codec_round_trip(noisy_fit):
    from scaleladder.core import codec

    back = codec.from_files(codec.to_files(noisy_fit))
    np.testing.assert_array_equal(back.ensemble, noisy_fit.ensemble)
    assert back.parameters == noisy_fit.parameters


@pytest.mark.parametrize("kwargs, field", [
    ({"fit": ("epsilon", "bogus")}, "fit"),
    ({"fit": ("epsilon", "A", "lambda")}, "fit"),
    ({"weights": {"forces": -1.0}}, "weights['forces']"),
    ({"weights": {"energy": 0, "forces": 0, "stress": 0}}, "weights"),
    ({"scales": {"stress": 0.0}}, "scales['stress']"),
    ({"n_ensemble": 1}, "n_ensemble"),
    ({"method": "mcmc"}, "method"),
    ({"form": "Tersoff"}, "form"),
    ({"heldout_labels": ("ev", "strain", "rattle", "heldout")}, "dataset"),
])
def test_validation(clean, kwargs, field):
    with pytest.raises(InputError) as exc:
        fit_potential(clean, **kwargs)
    assert exc.value.field == field


def test_empty_dataset():
    with pytest.raises(InputError) as exc:
        fit_potential(ReferenceDataset((), {}))
    assert exc.value.field == "dataset"
