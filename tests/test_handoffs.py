"""Tests of scaleladder.handoffs: validation, conventions, physics identities, codec round trips."""
from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.eos import birchmurnaghan

from scaleladder.core import codec
from scaleladder.core.errors import InputError, StabilityError, UnitError
from scaleladder.core.units import EV_PER_A2_IN_J_PER_M2, EV_PER_A3_IN_GPA
from scaleladder.handoffs import (Configuration, ElasticTensor, EquationOfState, FittedPotential,
                                  ReferenceDataset, SurfaceEnergy)
from scaleladder.uq import Estimate

C11, C12, C44 = 165.7, 63.9, 79.6  # silicon, GPa


def _round_trip(obj):
    files = codec.to_files(obj)
    back = codec.from_files(files)
    assert type(back) is type(obj)
    assert codec.to_files(back) == files
    return back


# -- ReferenceDataset ---------------------------------------------------------------------------

def _si_atoms(a=5.43, rattle=0.0, seed=0):
    at = bulk("Si", "diamond", a=a, cubic=True)
    if rattle:
        at.rattle(rattle, seed=seed)
    at.calc = LennardJones(sigma=2.1, epsilon=0.1, rc=4.0)
    at.get_potential_energy(), at.get_forces(), at.get_stress()
    return at


@pytest.fixture(scope="module")
def dataset():
    atoms = [_si_atoms(a) for a in (5.3, 5.43, 5.55)] + [_si_atoms(5.43, 0.05, s) for s in (1, 2)]
    return ReferenceDataset.from_atoms(atoms, {"code": "ase-lj", "atom_energy_eV": 0.0},
                                       labels=["ev", "ev", "ev", "rattle", "rattle"])


def test_dataset_from_atoms_and_back(dataset):
    assert len(dataset) == 5 and [c.label for c in dataset] == list(dataset.labels)
    ref = _si_atoms(5.43, 0.05, 1)
    at = dataset.to_atoms(3)
    assert at.get_potential_energy() == ref.get_potential_energy()
    np.testing.assert_array_equal(at.get_forces(), ref.get_forces())
    np.testing.assert_array_equal(at.get_stress(), ref.get_stress())
    np.testing.assert_array_equal(at.get_positions(), ref.get_positions())
    np.testing.assert_allclose(dataset.volumes_per_atom[:3], np.array([5.3, 5.43, 5.55]) ** 3 / 8,
                               rtol=1e-12)
    np.testing.assert_allclose(dataset.cohesive_energies_per_atom, -dataset.energies_per_atom)
    assert len(dataset.select("ev")) == 3 and len(dataset.select("ev", "rattle")) == 5
    with pytest.raises(InputError, match="strain"):
        dataset.select("strain")
    train, held = dataset.split(heldout_labels=["rattle"])
    assert len(train) == 3 and len(held) == 2
    back = _round_trip(dataset)
    np.testing.assert_array_equal(back[4].forces, dataset[4].forces)
    assert back.method == dataset.method


def test_configuration_validation():
    ok = dict(numbers=[14, 14], positions=np.zeros((2, 3)), cell=np.eye(3) * 5, pbc=[True] * 3,
              energy=-1.0)
    Configuration(**ok)
    with pytest.raises(InputError, match="forces"):
        Configuration(**ok, forces=np.zeros((3, 3)))
    with pytest.raises(InputError, match="stress"):
        Configuration(**ok, stress=np.zeros(5))
    with pytest.raises(InputError, match="numbers"):
        Configuration(**{**ok, "numbers": [0, 14]})
    with pytest.raises(InputError, match="energy"):
        Configuration(**{**ok, "energy": float("nan")})
    with pytest.raises(InputError, match="cell"):
        Configuration(**{**ok, "cell": np.zeros((3, 3))})
    c = Configuration(**ok, stress=np.diag([1.0, 2.0, 3.0]))  # 3x3 -> Voigt
    np.testing.assert_array_equal(c.stress, [1, 2, 3, 0, 0, 0])
    with pytest.raises(InputError, match="duplicate"):
        ReferenceDataset((Configuration(**ok, name="a"), Configuration(**ok, name="a")), {})
    at = bulk("Si")
    with pytest.raises(InputError, match="calc"):
        ReferenceDataset.from_atoms([at], {}, labels="ev")


# -- EquationOfState ----------------------------------------------------------------------------

def _bm_data(v0=20.0, e0=-5.4, b_gpa=98.0, bp=4.2, m=9, span=0.08):
    v = np.linspace(v0 * (1 - span), v0 * (1 + span), m)
    return v, birchmurnaghan(v, e0, b_gpa / EV_PER_A3_IN_GPA, bp, v0)


def test_eos_fit_recovers_parameters():
    v, e = _bm_data()
    rng = np.random.default_rng(0)
    noisy = e[None, :] + rng.normal(0, 2e-4, size=(4, v.size))
    eos = EquationOfState.fit(v, e, structure="diamond", method={"xc": "PBE"},
                              sources={"noise": noisy})
    assert eos.a0.value == pytest.approx((8 * 20.0) ** (1 / 3), rel=1e-7)
    assert eos.a0.unit == "Å" and eos.bulk_modulus.unit == "GPa"
    assert eos.bulk_modulus.value == pytest.approx(98.0, rel=1e-6)
    assert eos.e0.value == pytest.approx(-5.4, abs=1e-9)
    assert eos.bulk_modulus_derivative.value == pytest.approx(4.2, rel=1e-5)
    assert eos.v0.value == pytest.approx(20.0, rel=1e-7)
    assert eos.a0.sources["noise"].shape == (4,) and eos.a0.std > 0
    back = _round_trip(eos)
    assert back.a0.identical(eos.a0)


def test_eos_validation():
    v, e = _bm_data()
    with pytest.raises(InputError, match="widen"):
        EquationOfState.fit(v[:5], e[:5])  # minimum at the largest volume
    with pytest.raises(InputError, match="at least 5"):
        EquationOfState.fit(v[2:6], e[2:6])
    with pytest.raises(InputError, match="structure"):
        EquationOfState.fit(v, e, structure="hcp-ish")
    with pytest.raises(UnitError):
        EquationOfState(v, e, a0=Estimate(5.4, "GPa"), bulk_modulus=Estimate(98, "GPa"),
                        e0=Estimate(-5.4, "eV"))


# -- FittedPotential ----------------------------------------------------------------------------

def _potential():
    rng = np.random.default_rng(5)
    params = {"epsilon": 2.1683, "sigma": 2.0951, "a": 1.8, "lambda": 21.0, "gamma": 1.2}
    fitted = ("epsilon", "sigma", "lambda")
    ens = np.array([params[k] for k in fitted]) * (1 + 0.01 * rng.standard_normal((8, 3)))
    return FittedPotential(
        form="StillingerWeber", species=("Si",), parameters=params, fitted=fitted, ensemble=ens,
        ensemble_method="bootstrap",
        training_domain={"volume_per_atom": [17.0, 23.0], "max_abs_strain": 0.02,
                         "neighbour_distance": [2.2, 2.6]},
        errors={"train": {"energy_rmse": 0.003, "force_rmse": 0.05, "stress_rmse": 0.4,
                          "stress_rel_rmse": 0.05},
                "heldout": {"energy_rmse": 0.004, "force_rmse": 0.06, "stress_rmse": 0.5,
                            "stress_rel_rmse": 0.06}},
        units={"epsilon": "eV", "sigma": "Å", "a": "", "lambda": "", "gamma": ""},
        provenance={"dataset": "abc123"})


def test_fitted_potential():
    fp = _potential()
    est = fp.parameter_estimate()
    assert est.shape == (3,) and np.array_equal(est.sources["fit ensemble"], fp.ensemble)
    np.testing.assert_array_equal(est.value, [2.1683, 2.0951, 21.0])
    m = fp.member(2)
    assert m["sigma"] == fp.ensemble[2, 1] and m["gamma"] == 1.2
    with pytest.raises(InputError):
        fp.member(8)
    si = bulk("Si", "diamond", a=5.43)
    assert fp.check_domain(si) == []
    assert fp.check_domain(si, reference_cell=si.cell) == []
    squeezed = bulk("Si", "diamond", a=5.0)
    msgs = fp.check_domain(squeezed)
    assert any("volume per atom" in s for s in msgs) and any("below" in s for s in msgs)
    strained = si.copy()
    strained.set_cell(si.cell * [1.05, 1.0, 1.0], scale_atoms=True)
    assert any("strain" in s for s in fp.check_domain(strained, reference_cell=si.cell))
    assert any("species" in s for s in fp.check_domain(bulk("Ge", "diamond", a=5.43)))
    back = _round_trip(fp)
    assert back.member(2) == m and back.training_domain == fp.training_domain


def test_fitted_potential_validation():
    good = _potential()
    with pytest.raises(InputError, match="fitted"):
        FittedPotential(form="SW", species=("Si",), parameters={"a": 1.0}, fitted=("b",),
                        ensemble=np.zeros((0, 1)))
    with pytest.raises(InputError, match="ensemble"):
        FittedPotential(form="SW", species=("Si",), parameters={"a": 1.0}, fitted=("a",),
                        ensemble=np.zeros((3, 2)))
    with pytest.raises(InputError, match="volume_per_atom"):
        good.replace(training_domain={"volume_per_atom": [23.0, 17.0]})
    with pytest.raises(InputError, match="species"):
        good.replace(species=("Xx",))


# -- ElasticTensor ------------------------------------------------------------------------------

def _cubic(c11=C11, c12=C12, c44=C44):
    c = np.zeros((6, 6))
    c[:3, :3] = c12
    c[[0, 1, 2], [0, 1, 2]] = c11
    c[[3, 4, 5], [3, 4, 5]] = c44
    return c


def _rot_z(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def tensor():
    rng = np.random.default_rng(11)
    samples = np.stack([_cubic(C11 + d[0], C12 + d[1], C44 + d[2])
                        for d in rng.normal(0, [2.0, 1.5, 1.0], size=(6, 3))])
    return ElasticTensor.from_voigt(Estimate(_cubic(), "GPa", {"fit ensemble": samples}),
                                    relaxed_ions=True, structure="diamond")


def test_vrh_closed_forms(tensor):
    b = (C11 + 2 * C12) / 3
    gv = (C11 - C12 + 3 * C44) / 5
    gr = 5 * (C11 - C12) * C44 / (4 * C44 + 3 * (C11 - C12))
    assert tensor.bulk_modulus_voigt.value == pytest.approx(b, rel=1e-12)
    assert tensor.bulk_modulus_reuss.value == pytest.approx(b, rel=1e-12)
    assert tensor.bulk_modulus_vrh.value == pytest.approx(b, rel=1e-12)
    assert tensor.shear_modulus_voigt.value == pytest.approx(gv, rel=1e-12)
    assert tensor.shear_modulus_reuss.value == pytest.approx(gr, rel=1e-12)
    g = (gv + gr) / 2
    assert tensor.shear_modulus_vrh.value == pytest.approx(g, rel=1e-12)
    assert tensor.youngs_modulus_vrh.value == pytest.approx(9 * b * g / (3 * b + g), rel=1e-12)
    assert tensor.poisson_ratio_vrh.value == pytest.approx((3 * b - 2 * g) / (2 * (3 * b + g)), rel=1e-12)
    assert tensor.poisson_ratio_vrh.unit == "" and tensor.youngs_modulus_vrh.unit == "GPa"
    # uncertainties are propagated sample by sample
    s = tensor.voigt.sources["fit ensemble"]
    np.testing.assert_allclose(tensor.bulk_modulus_vrh.sources["fit ensemble"],
                               (s[:, 0, 0] + 2 * s[:, 0, 1]) / 3, rtol=1e-12)
    assert tensor.C11.value == C11 and tensor.C12.value == C12 and tensor.C44.value == C44
    a11, a12, a44 = tensor.cubic_averaged()
    assert a11.value == pytest.approx(C11) and a44.std > 0
    np.testing.assert_allclose(np.asarray(tensor.compliance.value) @ _cubic(), np.eye(6), atol=1e-12)
    assert tensor.compliance.unit == "1/GPa"
    np.testing.assert_allclose(tensor.to_pa(), _cubic() * 1e9)


def test_rotation_invariants(tensor):
    # cubic symmetry operation: 90 degrees about z
    r90 = tensor.rotated(_rot_z(np.pi / 2))
    np.testing.assert_allclose(r90.voigt.value, tensor.voigt.value, atol=1e-10)
    # 45 degrees about z: known closed form (tests the Voigt <-> tensor factors)
    r45 = tensor.rotated(_rot_z(np.pi / 4))
    c = np.asarray(r45.voigt.value)
    assert c[0, 0] == pytest.approx((C11 + C12) / 2 + C44, rel=1e-12)
    assert c[0, 1] == pytest.approx((C11 + C12) / 2 - C44, rel=1e-12)
    assert c[5, 5] == pytest.approx((C11 - C12) / 2, rel=1e-12)
    # arbitrary rotation: invariants and a round trip
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.linalg.det(q))
    rr = tensor.rotated(q)
    assert rr.bulk_modulus_vrh.value == pytest.approx(tensor.bulk_modulus_vrh.value, rel=1e-12)
    np.testing.assert_allclose(rr.bulk_modulus_voigt.sources["fit ensemble"],
                               tensor.bulk_modulus_voigt.sources["fit ensemble"], rtol=1e-12)
    back = rr.rotated(q.T)
    np.testing.assert_allclose(back.voigt.value, tensor.voigt.value, atol=1e-10)
    np.testing.assert_allclose(back.voigt.sources["fit ensemble"],
                               tensor.voigt.sources["fit ensemble"], atol=1e-10)
    with pytest.raises(InputError, match="det"):
        tensor.rotated(-np.eye(3))
    with pytest.raises(InputError, match="orthonormal"):
        tensor.rotated(np.diag([1.0, 2.0, 1.0]))


def test_elastic_validation():
    bad = _cubic(c11=50.0, c12=80.0)  # C11 < C12: unstable
    with pytest.raises(StabilityError, match="eigenvalues") as info:
        ElasticTensor.from_voigt(bad, relaxed_ions=False)
    assert "-30" in str(info.value)  # the C11 - C12 eigenvalue is named
    asym = _cubic()
    asym[0, 3] = 1.0
    with pytest.raises(InputError, match=r"\(0, 3\)|\(3, 0\)"):
        ElasticTensor.from_voigt(asym, relaxed_ions=True)
    with pytest.raises(InputError):
        ElasticTensor.from_voigt(np.eye(5), relaxed_ions=True)
    with pytest.raises(UnitError):
        ElasticTensor(Estimate(_cubic(), "m"), relaxed_ions=True)
    # unit conversion on the way in
    t = ElasticTensor.from_voigt(_cubic() / EV_PER_A3_IN_GPA, "eV/Å^3", relaxed_ions=True)
    np.testing.assert_allclose(t.voigt.value, _cubic(), rtol=1e-12)
    assert t.voigt.unit == "GPa"


def test_elastic_codec(tensor):
    back = _round_trip(tensor)
    assert back.voigt.identical(tensor.voigt)
    assert back.relaxed_ions is True and back.structure == "diamond"


# -- SurfaceEnergy ------------------------------------------------------------------------------

def test_surface_energy():
    g = SurfaceEnergy((1, 1, 1), Estimate(0.09, "eV/Å^2", {"fit": [0.085, 0.095, 0.09]}),
                      relaxed=True, structure="diamond")
    assert g.value.unit == "J/m^2"
    assert g.value.value == pytest.approx(0.09 * EV_PER_A2_IN_J_PER_M2, rel=1e-12)
    assert g.value.std == pytest.approx(0.005 * EV_PER_A2_IN_J_PER_M2, rel=1e-12)
    back = _round_trip(g)
    assert back.miller == (1, 1, 1) and back.value.identical(g.value)
    with pytest.raises(InputError, match="miller"):
        SurfaceEnergy((0, 0, 0), Estimate(1.0, "J/m^2"))
    with pytest.raises(InputError, match="miller"):
        SurfaceEnergy((1, 1), Estimate(1.0, "J/m^2"))
    with pytest.raises(UnitError):
        SurfaceEnergy((1, 0, 0), Estimate(1.0, "GPa"))
    with pytest.raises(InputError, match="positive"):
        SurfaceEnergy((1, 0, 0), Estimate(-1.0, "J/m^2"))
