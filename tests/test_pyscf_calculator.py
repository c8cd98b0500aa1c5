"""Tests of the PySCF periodic DFT calculator and the silicon dataset builders.

Physics is checked against finite differences of the energy on a deliberately cheap, fully
non-symmetric cell (2-atom Si, minimal gth-szv basis, 2x1x1 k-mesh, 12 Ha cutoff, strained and
rattled), so a wrong sign, a wrong unit or a wrong Voigt order fails.

Tolerances
----------
With ``conv_tol=1e-9`` Ha the energy is reproducible to ~3e-8 eV (the error of a variational
energy is second order in the density error, and each displaced geometry restarts from the
previous density).  Central differences with step h = 1e-3 Å have a truncation error
~ h^2 |d3E/dx3| / 6 ~ 1e-6 eV/Å and a noise error ~ 3e-8 eV / 2h ~ 2e-5 eV/Å, so forces must agree
to 1e-4 eV/Å (forces here are ~0.5-1 eV/Å: a relative check of 1e-4).  For the stress, ASE's
``calculate_numerical_stress`` is used with strain steps of 1e-4 on a cell of ~40 Å^3; noise
~ 3e-8 eV / (2e-4 * 40 Å^3) ~ 4e-6 eV/Å^3 and truncation ~ 1e-8 * d3E/de3 / V ~ 1e-7 eV/Å^3, so
stresses must agree to 2e-5 eV/Å^3 (3 MPa) while
they are ~0.05-0.25 eV/Å^3.  The Bohr^2 units bug of PySCF's own ASE wrapper (a factor 0.28)
and any sign or Voigt-order error are orders of magnitude above these tolerances.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from ase import units as ase_units
from ase.build import bulk

from scaleladder.core.errors import ConvergenceError, InputError
from scaleladder.electronic import PySCFCalculator, compute_configuration, isolated_atom_energy
from scaleladder.workflows.silicon import (silicon_ev_set, silicon_heldout_set, silicon_rattle_set,
                                          silicon_strain_set)
from scaleladder.electronic.datasets import apply_small_strain
from scaleladder.electronic.pyscf_calculator import FORCE_AU_TO_EV_PER_A, STRESS_AU_TO_EV_PER_A3

CHEAP = dict(basis="gth-szv", pseudo="gth-pbe", xc="PBE", kpts=(2, 1, 1), ke_cutoff=12.0,
             conv_tol=1e-9, symmetry=False)


def _cheap_cell():
    at = bulk("Si", "diamond", a=5.43)
    at = apply_small_strain(at, (0.012, -0.006, 0.004, 0.008, -0.005, 0.01))
    rng = np.random.default_rng(7)
    at.positions = at.positions + rng.normal(scale=0.05, size=at.positions.shape)
    return at


#: the stress check runs on an even coarser grid (9 Ha): the analytic stress is the exact strain
#: derivative of the discretised energy (the FFT grid moves with the cell), so the finite
#: difference check holds there too, at half the cost.  (The forces are not: at 9 Ha the grid's
#: egg-box term, absent from the analytic forces, reaches 1e-3 eV/Å, so forces are checked at 12.)
STRESS_CHEAP = dict(CHEAP, ke_cutoff=9.0)


@pytest.fixture(scope="module")
def stress_reference():
    at = _cheap_cell()
    calc = PySCFCalculator(**STRESS_CHEAP)
    at.calc = calc
    calc.calculate(at, ["energy", "stress"])
    return at, calc, dict(calc.results)


@pytest.fixture(scope="module")
def reference():
    at = _cheap_cell()
    calc = PySCFCalculator(**CHEAP)
    at.calc = calc
    calc.calculate(at, ["energy", "forces", "stress"])
    return at, calc, dict(calc.results)


def test_forces_match_central_finite_differences(reference):
    at, calc, res = reference
    h = 1e-3
    probe = at.copy()
    probe.calc = calc
    checks = [(0, 0), (1, 2)]
    for i, j in checks:
        e = []
        for s in (+1, -1):
            p = probe.copy()
            p.positions[i, j] += s * h
            p.calc = calc
            e.append(p.get_potential_energy())
        f_fd = -(e[0] - e[1]) / (2 * h)
        assert abs(res["forces"][i, j]) > 0.05  # a real, non-trivial force
        assert res["forces"][i, j] == pytest.approx(f_fd, abs=1e-4)
    # Newton's third law holds up to the egg-box effect of the coarse 12 Ha FFT grid (the grid
    # breaks translation invariance; the finite differences above see the same energy surface)
    np.testing.assert_allclose(res["forces"].sum(axis=0), 0.0, atol=2e-2)


@pytest.mark.parametrize("smearing", [None, 0.01])
def test_restricted_gradient_with_local_pp_on_the_density_equals_pyscfs(smearing):
    """The calculator's restricted gradient (local pseudopotential traced on the density,
    electronic._pyscf_grad) is PySCF's own krhf.grad_elec term for term: equal to round-off on
    a rattled, strained cell with and without smearing; every atom's force is non-trivial."""
    from pyscf.pbc.grad import krhf

    at = _cheap_cell()
    calc = PySCFCalculator(**dict(CHEAP, smearing=smearing))
    calc.calculate(at, ["energy", "forces"])
    mf = calc._last_full_mf[0]
    stock = mf.nuc_grad_method()
    assert stock.grad_elec.__func__ is krhf.grad_elec  # PySCF's, not ours
    expected = stock.kernel()
    ours = -calc.results["forces"] / FORCE_AU_TO_EV_PER_A
    assert np.abs(expected).min() > 1e-3
    np.testing.assert_allclose(ours, expected, atol=1e-11, rtol=0)


@pytest.mark.parametrize("xc", ["PBE", "LDA"])
def test_grid_ao_cache_changes_no_number(monkeypatch, xc):
    """The SCF's grid AOs evaluated once and reused (electronic._pyscf_aocache) give PySCF's
    uncached energies, forces, stress and SCF cycle count to round-off (a consumer that
    modified a cached array in place would change the later cycles), for a GGA (AO gradients
    cached) and LDA, with smearing; the cache is used."""
    import scaleladder.electronic._pyscf_aocache as aoc

    params = dict(CHEAP, xc=xc, pseudo="gth-pbe" if xc == "PBE" else "gth-pade", smearing=0.01)
    at = _cheap_cell()
    cached = PySCFCalculator(**params)
    cached.calculate(at, ["energy", "forces", "stress"])
    stats = cached._last_full_mf[0]._numint._scaleladder_ao_cache
    assert stats.hits > 2 * cached.results["scf_cycles"] and stats.peak_bytes > 0
    assert stats.bytes == 0 and not stats.store          # freed when the calculation is done
    monkeypatch.setattr(aoc, "cache_grid_aos", lambda numints, max_bytes: None)
    plain = PySCFCalculator(**params)
    plain.calculate(at, ["energy", "forces", "stress"])
    assert not hasattr(plain._last_full_mf[0]._numint, "_scaleladder_ao_cache")
    assert cached.results["scf_cycles"] == plain.results["scf_cycles"]
    assert cached.results["energy"] == pytest.approx(plain.results["energy"], abs=1e-9)
    np.testing.assert_allclose(cached.results["forces"], plain.results["forces"], atol=1e-9)
    np.testing.assert_allclose(cached.results["stress"], plain.results["stress"], atol=1e-10)


def test_stress_matches_finite_difference_of_energy_wrt_strain(stress_reference):
    at, calc, res = stress_reference
    probe = at.copy()
    probe.calc = calc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        s_fd = calc.calculate_numerical_stress(probe, d=1e-4, voigt=True)
    assert res["stress"].shape == (6,)
    assert np.all(np.abs(s_fd) > 1e-3)  # every Voigt component is non-trivial in this cell
    np.testing.assert_allclose(res["stress"], s_fd, atol=2e-5, rtol=0)


def test_stress_units_are_hartree_per_bohr3_to_ev_per_a3(reference):
    """The raw PySCF stress (Hartree/Bohr^3) times Ha/Bohr^3 in eV/Å^3 -- not Ha/Bohr (the
    factor PySCF's ASE wrapper uses, which is too small by Bohr^2 = 0.28)."""
    from pyscf.pbc.grad import krks_stress

    at, calc, res = reference
    # core.units rounds ASE's CODATA-2014 Hartree to 10 digits: agreement to 1e-9, not 1e-15
    assert STRESS_AU_TO_EV_PER_A3 == pytest.approx(ase_units.Hartree / ase_units.Bohr ** 3,
                                                   rel=1e-8)
    assert STRESS_AU_TO_EV_PER_A3 == pytest.approx(183.6315, rel=1e-5)  # 1 Ha/Bohr^3 = 29421 GPa
    assert FORCE_AU_TO_EV_PER_A == pytest.approx(ase_units.Hartree / ase_units.Bohr, rel=1e-8)
    # recompute the raw PySCF stress for the same cell and check the conversion explicitly
    from pyscf.pbc import dft, gto

    cell = gto.Cell(atom=[("Si", tuple(r)) for r in at.positions], a=np.asarray(at.cell),
                    unit="Angstrom", basis=CHEAP["basis"], pseudo=CHEAP["pseudo"],
                    ke_cutoff=CHEAP["ke_cutoff"], verbose=0).build()
    mf = dft.KRKS(cell, kpts=cell.make_kpts(CHEAP["kpts"]))
    mf.xc = "PBE"
    mf.conv_tol = 1e-9
    mf.kernel()
    sigma = krks_stress.kernel(mf.nuc_grad_method())  # Hartree/Bohr^3, 3x3
    raw_voigt = np.array([sigma[0, 0], sigma[1, 1], sigma[2, 2], sigma[1, 2], sigma[0, 2],
                          sigma[0, 1]])
    np.testing.assert_allclose(res["stress"], raw_voigt * 183.6315, rtol=1e-4, atol=1e-6)
    wrapper_bug = raw_voigt * ase_units.Hartree / ase_units.Bohr
    assert not np.allclose(res["stress"], wrapper_bug, rtol=0.1)
    # and in GPa the order of magnitude is that of a few-% strained solid (tens of GPa, not 1e4)
    assert 1.0 < np.abs(res["stress"]).max() / ase_units.GPa < 100.0


def test_energy_units_and_ase_protocol(reference):
    at, calc, res = reference
    assert res["energy"] == res["free_energy"]  # no smearing
    # Si with GTH pseudopotentials: about -107 eV/atom (about -3.9 Ha/atom)
    assert -115.0 < res["energy"] / len(at) < -100.0
    assert res["forces"].shape == (2, 3)
    assert res["scf_cycles"] > 0


def test_initial_guess_is_reused_along_a_strain_series():
    base = bulk("Si", "diamond", a=5.43)
    calc = PySCFCalculator(**{**STRESS_CHEAP, "conv_tol": 1e-7})
    calc.calculate(apply_small_strain(base, (0.01, 0, 0, 0, 0, 0)), ["energy"])
    cold = calc.results["scf_cycles"]
    calc.calculate(apply_small_strain(base, (0.015, 0, 0, 0, 0, 0)), ["energy"])
    warm = calc.results["scf_cycles"]
    assert warm < cold
    cold2 = PySCFCalculator(**{**STRESS_CHEAP, "conv_tol": 1e-7, "initial_guess": "minao"})
    cold2.calculate(apply_small_strain(base, (0.015, 0, 0, 0, 0, 0)), ["energy"])
    assert calc.results["energy"] == pytest.approx(cold2.results["energy"], abs=1e-4)


def test_symmetry_reduced_energy_equals_full_mesh_energy():
    """8 k-points reduced by symmetry give the full-mesh energy.  At a 12 Ha cutoff the FFT grid
    is not exactly symmetric (egg-box), which costs 8e-3 eV at 12 Ha (5e-4 eV at 15 Ha, 1e-5 eV at
    25 Ha, measured);
    wrong weights or a wrong mesh would cost > 0.1 eV (Gamma-centred vs shifted 2x2x2 differ by
    2.5 eV/cell)."""
    at = bulk("Si", "diamond", a=5.43)
    params = {**CHEAP, "kpts": (2, 2, 2), "conv_tol": 1e-8}
    sym = PySCFCalculator(**{**params, "symmetry": True})
    full = PySCFCalculator(**{**params, "symmetry": False})
    sym.calculate(at, ["energy"])
    full.calculate(at, ["energy"])
    assert sym.results["energy"] == pytest.approx(full.results["energy"], abs=2e-2)
    assert sym.results["scf_cycles"] > 0


def test_unconverged_scf_raises_convergence_error_naming_the_configuration():
    at = _cheap_cell()
    at.info["name"] = "rattled_test_cell"
    calc = PySCFCalculator(label="rattled_test_cell", **{**CHEAP, "max_cycle": 1})
    with pytest.raises(ConvergenceError) as exc:
        calc.calculate(at, ["energy"])
    err = exc.value
    assert "1 cycles" in err.what
    assert "rattled_test_cell" in err.configuration and "Si2" in err.configuration
    assert err.settings["max_cycle"] == 1 and err.settings["kpts"] == (2, 1, 1)
    assert "max_cycle" in err.suggestion and "smearing" in err.suggestion
    assert "energy" not in calc.results


@pytest.mark.parametrize("bad", [(-1, 2, 2), (0, 1, 1), -3, (2, 2)])
def test_bad_kpts_raise_input_error_naming_kpts(bad):
    with pytest.raises(InputError) as exc:
        PySCFCalculator(kpts=bad)
    assert exc.value.field == "kpts"
    assert str(bad) in str(exc.value) or repr(bad) in str(exc.value)


def test_unknown_parameter_is_an_input_error():
    with pytest.raises(InputError):
        PySCFCalculator(kpoints=(2, 2, 2))


def test_isolated_atom_energy_is_in_ev_and_spin_polarised():
    """Free Si atom (3P, spin=2) with the periodic basis/pseudo: about -102.6 eV (-3.77 Ha) for
    PBE/gth-dzvp (a value in Hartree, or the spin-unpolarised singlet 1.3 eV higher, fail)."""
    e_atom = isolated_atom_energy("Si", xc="PBE", basis="gth-dzvp", pseudo="gth-pbe")
    assert e_atom == pytest.approx(-102.58, abs=0.05)
    with pytest.raises(InputError):
        isolated_atom_energy("Xx")


# ----------------------------------------------------------------------------- datasets
def test_dataset_builders_are_deterministic_and_labelled():
    ev = silicon_ev_set(5.47, n=7, span=0.06)
    assert len(ev) == 7 and {a.info["label"] for a in ev} == {"ev"}
    vols = [a.get_volume() for a in ev]
    v0 = bulk("Si", "diamond", a=5.47).get_volume()
    assert vols[0] == pytest.approx(0.94 * v0) and vols[-1] == pytest.approx(1.06 * v0)
    assert np.all(np.diff(vols) > 0)

    st = silicon_strain_set(5.43, strain_step=0.01, n_steps=2)
    assert len(st) == 3 * 2 * 2 and {a.info["label"] for a in st} == {"strain"}
    uni = [a for a in st if a.info["name"].startswith("strain_uniaxial_xx_+0.0100")][0]
    np.testing.assert_allclose(np.asarray(uni.cell)[:, 0],
                               1.01 * np.asarray(bulk("Si", "diamond", a=5.43).cell)[:, 0])

    r1 = silicon_rattle_set(5.43, n=3, amplitude=0.08, supercell="conventional", seed=3)
    r2 = silicon_rattle_set(5.43, n=3, amplitude=0.08, supercell="conventional", seed=3)
    assert len(r1[0]) == 8
    for a, b in zip(r1, r2):
        np.testing.assert_array_equal(a.positions, b.positions)
    assert len({a.info["name"] for a in r1}) == 3

    h = silicon_heldout_set(5.43, n=4, seed=11)
    h2 = silicon_heldout_set(5.43, n=4, seed=11)
    assert {a.info["label"] for a in h} == {"heldout"}
    for a, b in zip(h, h2):
        np.testing.assert_array_equal(a.cell, b.cell)
    assert max(np.abs(a.info["voigt_strain"]).max() for a in h) > 0.01


def test_zero_strain_step_is_an_input_error_naming_it():
    with pytest.raises(InputError) as exc:
        silicon_strain_set(5.43, strain_step=0)
    assert exc.value.field == "strain_step" and exc.value.value == 0


def test_compute_configuration_returns_plain_data():
    at = silicon_rattle_set(5.43, n=1, amplitude=0.05, seed=1)[0]
    quick = dict(CHEAP, conv_tol=1e-7, kpts=1, ke_cutoff=10.0)
    out = compute_configuration(at, quick)
    json.dumps(out)  # plain data only
    assert out["label"] == "rattle" and out["name"] == at.info["name"]
    assert np.asarray(out["forces"]).shape == (2, 3) and len(out["stress"]) == 6
    assert out["elapsed_s"] > 0 and out["scf_cycles"] > 0
    np.testing.assert_allclose(out["positions"], at.positions)
    e_only = compute_configuration(at, quick, properties=("energy",))
    assert e_only["forces"] is None and e_only["stress"] is None
    assert e_only["energy"] == pytest.approx(out["energy"], abs=1e-4)


def test_flagship_configuration_list():
    from scaleladder.workflows.silicon import FLAGSHIP_CALC_PARAMS, silicon_configurations

    configs = silicon_configurations(5.47)
    labels = [a.info["label"] for a in configs]
    assert labels.count("ev") == 7 and labels.count("strain") == 4
    assert labels.count("rattle") == 2 and labels.count("heldout") == 1
    assert all(a.info["properties"] == ("energy", "stress")
               for a in configs if a.info["label"] == "strain")
    assert len({a.info["name"] for a in configs}) == len(configs)
    assert all(a.info["properties"] == ("energy",) for a in configs if a.info["label"] == "ev")
    again = silicon_configurations(5.47)
    for a, b in zip(configs, again):
        np.testing.assert_array_equal(a.positions, b.positions)
    for params in FLAGSHIP_CALC_PARAMS.values():
        PySCFCalculator(**params)  # valid parameter sets


@pytest.mark.parametrize("method", ["fermi", "gaussian"])
def test_with_smearing_forces_and_stress_are_derivatives_of_the_free_energy(method):
    """Fermi-Dirac or Gaussian smearing: PySCF's e_tot is E without the entropy term; forces are
    derivatives of the free energy E - sigma*S (measured: using e_tot is 6 % off)."""
    at = apply_small_strain(bulk("Si", "diamond", a=5.43), (0.01, 0, 0, 0.01, 0, 0))
    at.positions[0] += 0.05
    calc = PySCFCalculator(**{**CHEAP, "smearing": 0.01, "smearing_method": method})
    calc.calculate(at, ["energy", "forces", "stress"])
    res = dict(calc.results)
    assert res["free_energy"] < res["energy"]  # -sigma*S vs -sigma*S/2
    h = 1e-3
    e = []
    for s in (+1, -1):
        b = at.copy()
        b.positions[0, 0] += s * h
        calc.calculate(b, ["free_energy"])
        e.append(calc.results["free_energy"])
    assert res["forces"][0, 0] == pytest.approx(-(e[0] - e[1]) / (2 * h), abs=2e-4)


def test_gaussian_smearing_leaves_a_gap_alone_where_fermi_dirac_does_not():
    """At the same width, Gaussian occupations (tails exp(-x^2)) change the energy of gapped Si
    far less than Fermi-Dirac (tails exp(-x)): the reason the larger DFT cells of silicon-mlip
    use Gaussian smearing.  A bad method name is refused."""
    at = bulk("Si", "diamond", a=5.43)
    e = {}
    for name, extra in (("none", {}), ("fermi", {"smearing": 0.01}),
                        ("gaussian", {"smearing": 0.01, "smearing_method": "gaussian"})):
        calc = PySCFCalculator(**{**CHEAP, "kpts": (2, 2, 2), **extra})
        calc.calculate(at, ["energy"])
        e[name] = calc.results["energy"]
    d_fermi, d_gauss = abs(e["fermi"] - e["none"]), abs(e["gaussian"] - e["none"])
    assert d_gauss < 0.2 * d_fermi, (d_fermi, d_gauss)
    with pytest.raises(InputError, match="smearing_method"):
        PySCFCalculator(**{**CHEAP, "smearing": 0.01, "smearing_method": "cold"}).calculate(
            at, ["energy"])


def test_ase_protocol_reuses_the_converged_scf_for_stress_after_forces():
    at = _cheap_cell()
    at.calc = PySCFCalculator(**{**CHEAP, "kpts": 1, "ke_cutoff": 10.0, "conv_tol": 1e-7})
    f = at.get_forces()
    assert at.calc.results["scf_cycles"] > 0
    s = at.get_stress()  # same atoms: no second SCF
    assert at.calc.results["scf_cycles"] == 0
    assert f.shape == (2, 3) and s.shape == (6,)
    at.positions[0, 0] += 0.01  # changed atoms: a new SCF
    at.get_forces()
    assert at.calc.results["scf_cycles"] > 0


def test_fcc_cubic_kpts_keep_the_cubic_point_group():
    """The folded cubic-cell mesh is invariant under all 48 operations of O_h (modulo reciprocal
    lattice vectors), unlike a shifted mesh of the primitive cell (which is checked to fail)."""
    import itertools

    from scaleladder.electronic import fcc_cubic_kpts

    A = 0.5 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])  # primitive vectors / a
    B = np.linalg.inv(A).T  # reciprocal vectors / (2 pi / a), rows

    def invariant(frac):
        cart = frac @ B
        key = {tuple(np.round(f % 1.0, 8) % 1.0) for f in frac}
        for perm in itertools.permutations(range(3)):
            for signs in itertools.product((1, -1), repeat=3):
                R = np.diag(signs)[list(perm)]
                f2 = (cart @ R.T) @ A.T
                if {tuple(np.round(f % 1.0, 8) % 1.0) for f in f2} != key:
                    return False
        return True

    k2 = fcc_cubic_kpts(2)
    assert k2.shape == (32, 3) and invariant(k2)
    shifted = np.array(list(itertools.product((0.25, 0.75), repeat=3)))  # MP 2x2x2 shifted
    assert not invariant(shifted)
