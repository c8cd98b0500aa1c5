"""Exchange constants by energy mapping of collinear spin configurations (electronic/exchange.py).

Systems and tolerances
----------------------
* Stretched H2 (2.0 Å, PBE/STO-3G, UKS): the high-spin (triplet) and broken-symmetry states are
  computed once directly with PySCF (hand-made guesses: alpha on one H, beta on the other) and
  once through the mapping.  Same functional, basis and grid, conv_tol 1e-10 Ha: energies agree
  to ~1e-8 eV, checked to 1e-5 eV; J = (E_BS - E_HS)/2 to 1e-5 eV on J = -0.26 eV.  <S²> of the
  BS determinant against PySCF's ``spin_square`` to 1e-6.
* H-He-H (1.25 Å, PBE/STO-3G): superexchange through the closed-shell He gives
  antiferromagnetic coupling, J < 0 in H = -J S1.S2 (measured J_unit = -0.278 eV); <S²>_BS = 0.786.
* Periodic H chain, 2.5 Å spacing (gth-szv, PBE, 30 Ha, 6 Å of lateral cell): 2-atom cell with
  4x1x1 k and 4-atom cell with 2x1x1 k sample the same Brillouin zone exactly, so J1 from FM/AFM
  agrees to SCF/grid precision (measured 5e-6 eV), checked to 1e-4 eV on J1 = -0.062 eV.  The
  two-shell fit (4 configurations, slow) gives J2 = +0.001 eV (|J2/J1| = 1.6 %), checked < 5 %.
* H2 at 0.74 Å: the broken-symmetry guess relaxes to the closed shell (moments ~1e-15 μB), which
  the moment check must report.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms

from scaleladder.core.codec import from_files, to_files
from scaleladder.core.errors import CalculationError, InputError
from scaleladder.core.units import HARTREE_EV
from scaleladder.electronic import exchange as ex
from scaleladder.electronic.exchange import (DimerExchange, bond_sums, collinear_configurations,
                                             dimer_exchange, exchange_by_energy_mapping,
                                             exchange_shells, fit_exchange)

MOL = dict(xc="PBE", basis="sto-3g", conv_tol=1e-10)
CHAIN = dict(xc="PBE", basis="gth-szv", pseudo="gth-pbe", ke_cutoff=30.0, conv_tol=1e-9)
D_CHAIN = 2.5
L_CHAIN = 6.0


def h2(d=2.0):
    return Atoms("H2", positions=[[0, 0, 0], [d, 0, 0]], pbc=False)


def chain(n):
    return Atoms(f"H{n}", positions=[[i * D_CHAIN, 0, 0] for i in range(n)],
                 cell=[n * D_CHAIN, L_CHAIN, L_CHAIN], pbc=True)


# ------------------------------------------------------------------------------- direct PySCF
@pytest.fixture(scope="module")
def h2_direct():
    """HS and BS energies (eV) and <S²> of stretched H2 from plain PySCF UKS runs."""
    from pyscf import dft, gto

    out = {}
    for name, spin in (("HS", 2), ("BS", 0)):
        mol = gto.M(atom=[("H", (0, 0, 0)), ("H", (2.0, 0, 0))], unit="Angstrom",
                    basis="sto-3g", spin=spin, verbose=0)
        mf = dft.UKS(mol)
        mf.xc = "PBE"
        mf.conv_tol = 1e-10
        if name == "BS":
            dm0 = np.array([np.diag([1.0, 0.0]), np.diag([0.0, 1.0])])  # alpha on H1, beta on H2
            e = mf.kernel(dm0=dm0)
        else:
            e = mf.kernel()
        assert mf.converged
        out[name] = (e * HARTREE_EV, float(mf.spin_square()[0]))
    return out


def test_mapping_h2_equals_hand_formula_from_direct_pyscf(h2_direct):
    ep = exchange_by_energy_mapping(h2(), [0, 1], MOL)
    (e_hs, _), (e_bs, _) = h2_direct["HS"], h2_direct["BS"]
    confs = {c["name"]: c for c in ep.provenance["configurations"]}
    assert confs["FM"]["energy_eV"] == pytest.approx(e_hs, abs=1e-5)
    assert confs["+-"]["energy_eV"] == pytest.approx(e_bs, abs=1e-5)
    # E_HS = E0 - J, E_BS = E0 + J  (one bond, unit spins)
    J = float(ep.J.value[0])
    assert J == pytest.approx((e_bs - e_hs) / 2.0, abs=1e-5)
    assert J < -0.1  # antiferromagnetic (singlet below triplet)
    assert (ep.convention.sign, ep.convention.counting, ep.convention.normalisation) == \
        ("minus", "per_bond", "unit")
    assert ep.shells.tolist() == pytest.approx([2.0])
    assert ep.pbc == (False, False, False)
    assert ep.spin == 0.5
    assert ep.provenance["fit_dof"] == 0 and "mapping_fit" not in ep.J.sources
    # handoff survives the codec; the spin normalisation is J/S^2 = 4 J
    back = from_files(to_files(ep))
    assert np.array_equal(back.J.value, ep.J.value)
    assert float(ep.to_convention(normalisation="spin").J.value[0]) == pytest.approx(4 * J)


def test_dimer_formulas_h2(h2_direct):
    d = dimer_exchange(h2(), [0, 1], MOL)
    (e_hs, s2_hs), (e_bs, s2_bs) = h2_direct["HS"], h2_direct["BS"]
    assert d.energy_high_spin == pytest.approx(e_hs, abs=1e-5)
    assert d.energy_broken_symmetry == pytest.approx(e_bs, abs=1e-5)
    assert d.s2_high_spin == pytest.approx(s2_hs, abs=1e-6)
    assert d.s2_broken_symmetry == pytest.approx(s2_bs, abs=1e-6)
    assert 0.0 < d.s2_broken_symmetry < 1.0  # spin-contaminated BS determinant
    delta = e_bs - e_hs
    assert d.classical_unit == pytest.approx(delta / 2, abs=1e-5)
    # the classical mapping IS Noodleman's formula (after |S| = 1 -> S)
    assert d.noodleman == pytest.approx(d.classical_unit / d.spin ** 2, rel=1e-12)
    assert d.noodleman == pytest.approx(2 * delta / 1.0 ** 2, abs=1e-5)      # S_max = 1
    assert d.bencini == pytest.approx(2 * delta / (1.0 * 2.0), abs=1e-5)
    assert d.yamaguchi == pytest.approx(2 * delta / (s2_hs - s2_bs), abs=1e-5)
    # Yamaguchi lies between the weak- and strong-overlap limits
    assert d.noodleman < d.yamaguchi < d.bencini < 0


def test_hheh_superexchange_is_antiferromagnetic():
    m = Atoms("HHeH", positions=[[0, 0, 0], [1.25, 0, 0], [2.5, 0, 0]], pbc=False)
    d = dimer_exchange(m, [0, 2], dict(MOL, conv_tol=1e-9))
    assert isinstance(d, DimerExchange)
    assert d.classical_unit < -0.05  # measured -0.278 eV
    assert d.moments_broken_symmetry[0] == pytest.approx(-d.moments_broken_symmetry[1], abs=1e-4)
    assert d.s2_high_spin == pytest.approx(2.0, abs=0.05)
    assert d.noodleman < d.yamaguchi < d.bencini < 0


# ------------------------------------------------------------------------------- H chain
def test_h_chain_afm_and_kpoint_folding():
    e2 = exchange_by_energy_mapping(chain(2), [0, 1], dict(CHAIN, kpts=(4, 1, 1)))
    J2cell = float(e2.J.value[0])
    assert J2cell < -0.02  # AFM chain (measured -0.0619 eV)
    c = {x["name"]: x for x in e2.provenance["configurations"]}
    assert c["FM"]["bond_sums"] == [2.0] and c["+-"]["bond_sums"] == [-2.0]
    assert J2cell == pytest.approx((c["+-"]["energy_eV"] - c["FM"]["energy_eV"]) / 4, abs=1e-12)
    # the 4-atom cell with half the k-points: same Brillouin-zone sampling -> same J1
    e4 = exchange_by_energy_mapping(chain(4), range(4), dict(CHAIN, kpts=(2, 1, 1)),
                                    configurations={"FM": [1, 1, 1, 1], "AFM": [1, -1, 1, -1]})
    assert float(e4.J.value[0]) == pytest.approx(J2cell, abs=1e-4)
    moments = e4.provenance["configurations"][1]["magmoms_muB"]
    assert np.sign(moments).tolist() == [1, -1, 1, -1]


@pytest.mark.slow
def test_h_chain_two_shells_least_squares():
    e2 = exchange_by_energy_mapping(chain(2), [0, 1], dict(CHAIN, kpts=(4, 1, 1)))
    e4 = exchange_by_energy_mapping(chain(4), range(4), dict(CHAIN, kpts=(2, 1, 1)), shells=2)
    J1, J2 = (float(x) for x in e4.J.value)
    assert e4.shells.tolist() == pytest.approx([D_CHAIN, 2 * D_CHAIN])
    assert len(e4.provenance["configurations"]) == 4 and e4.provenance["fit_dof"] == 1
    # J1 of the least-squares fit is (E_AFM - E_FM)/8 exactly (the residual is orthogonal to it)
    assert J1 == pytest.approx(float(e2.J.value[0]), abs=1e-4)
    assert abs(J2) < 0.05 * abs(J1)
    assert "mapping_fit" in e4.J.sources
    assert np.all(e4.J.std < 0.01 * abs(J1))
    assert e4.provenance["fit_rms_residual_eV"] < 1e-3


# ------------------------------------------------------------------------------- failures
def test_collapsed_configuration_is_an_error():
    with pytest.raises(CalculationError, match=r"'\+-'.*collapsed"):
        exchange_by_energy_mapping(h2(0.74), [0, 1], dict(MOL, conv_tol=1e-8))


def _no_scf(*args, **kwargs):
    raise AssertionError("no SCF should run")


def test_bad_input(monkeypatch):
    monkeypatch.setattr(ex, "_compute", _no_scf)
    with pytest.raises(InputError) as err:
        exchange_by_energy_mapping(h2(), [0, 2], MOL)
    assert err.value.field == "magnetic_indices"
    with pytest.raises(InputError) as err:  # fewer configurations than unknowns
        exchange_by_energy_mapping(chain(4), range(4), CHAIN, shells=2,
                                   configurations=[[1, 1, 1, 1], [1, -1, 1, -1]])
    assert err.value.field == "configurations" and "at least 3" in str(err.value)
    with pytest.raises(InputError, match="rank"):  # enough, but none tells J1 apart
        exchange_by_energy_mapping(chain(4), range(4), CHAIN, shells=2,
                                   configurations=[[1, 1, -1, -1], [1, -1, -1, 1], [1, 1, 1, -1]])
    with pytest.raises(InputError, match="rank"):  # shell 2 = a site and its own image
        exchange_by_energy_mapping(chain(2), [0, 1], CHAIN, shells=2)
    with pytest.raises(InputError, match="global spin flip"):
        exchange_by_energy_mapping(h2(), [0, 1], MOL, configurations=[[1, -1], [-1, 1]])
    with pytest.raises(InputError) as err:
        exchange_by_energy_mapping(h2(), [0, 1], dict(MOL, spin=2))
    assert "spin" in err.value.field
    with pytest.raises(InputError):
        exchange_by_energy_mapping(h2(), [0, 1], dict(MOL, not_a_parameter=1))
    with pytest.raises(InputError):
        exchange_by_energy_mapping(h2(), [0, 1], MOL, configurations=[[1, 0], [1, 1]])
    with pytest.raises(InputError):
        dimer_exchange(chain(2), [0, 1], CHAIN)
    with pytest.raises(InputError):
        exchange_by_energy_mapping(h2(), [0], MOL)


# ------------------------------------------------------------------------------- pure parts
def test_shells_configurations_and_bonds():
    assert exchange_shells(chain(4), range(4), 3).tolist() == pytest.approx(
        [2.5, 5.0, 6.0])  # third shell: the lateral images at L = 6 Å
    confs = collinear_configurations(chain(4), range(4), 2)
    assert list(confs)[0] == "FM" and len(confs) == 4
    assert set(confs) == {"FM", "+-+-", "++--", "+++-"}
    # bonds (each once) of the handoff's shell expansion: 4 per shell in the 4-atom cell
    cell, pos, pbc = ex._site_geometry(chain(4), np.arange(4), "periodic")
    i, j, r, shell, dist = ex._bond_list(cell, pos, pbc, ["H"] * 4, [2.5, 5.0], 1e-3)
    assert np.bincount(shell).tolist() == [4, 4]
    s = bond_sums(np.array(list(confs.values())), i, j, shell, 2)
    assert s.tolist() == [[4, 4], [0, -4], [-4, 4], [0, 0]]


def test_fit_exact_and_noisy():
    sums = np.array([[4, 4], [-4, 4], [0, -4], [0, 0], [0, 4.0]])
    J = np.array([-0.06, 0.002])
    e = -10.0 - sums @ J
    fit = fit_exchange(sums, e)
    assert fit.J.value == pytest.approx(J, abs=1e-12) and fit.e0 == pytest.approx(-10.0)
    assert np.all(fit.J.std < 1e-10) and fit.dof == 2
    noise = np.array([1e-3, -2e-3, 0.5e-3, 1.5e-3, -1e-3])
    fit = fit_exchange(sums, e + noise)
    A = np.column_stack([np.ones(5), -sums])
    x, *_ = np.linalg.lstsq(A, e + noise, rcond=None)
    res = e + noise - A @ x
    cov = (res @ res) / 2 * np.linalg.inv(A.T @ A)[1:, 1:]
    assert fit.J.value == pytest.approx(x[1:], abs=1e-14)
    assert fit.J.std == pytest.approx(np.sqrt(np.diag(cov)), rel=1e-10)
    samples = fit.J.sources["mapping_fit"]
    assert np.cov(samples.T, ddof=1) == pytest.approx(cov, rel=1e-8, abs=1e-16)
    with pytest.raises(InputError):
        fit_exchange(sums[:2], e[:2])


def test_checkpoint_resume(tmp_path, monkeypatch):
    from scaleladder.core.checkpoint import read_checkpoint

    path = tmp_path / "xmap.npz"
    first = exchange_by_energy_mapping(h2(), [0, 1], dict(MOL, conv_tol=1e-8), checkpoint=path)
    data = read_checkpoint(path, kind="exchange-mapping")
    assert set(data["results"]) == {"FM", "+-"}
    monkeypatch.setattr(ex, "_compute", _no_scf)  # resumed: nothing recomputed
    again = exchange_by_energy_mapping(h2(), [0, 1], dict(MOL, conv_tol=1e-8), checkpoint=path)
    assert np.array_equal(again.J.value, first.J.value)
    with pytest.raises(InputError) as err:  # another system's checkpoint
        exchange_by_energy_mapping(h2(2.1), [0, 1], dict(MOL, conv_tol=1e-8), checkpoint=path)
    assert err.value.field == "checkpoint"
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())
    assert math.isfinite(float(first.J.value[0]))
