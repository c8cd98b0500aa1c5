"""Harmonic transition-state theory (Vineyard 1957) through phonopy.

* an analytic two-atom model whose minimum and saddle Hessians are known in closed form: the
  prefactor, the real frequencies and the imaginary frequency to 1e-5 relative;
* the EMT Cu vacancy hop (saddle by symmetry: the hopping atom on the mirror plane half way):
  exactly one imaginary mode, ν* of a few THz;
* invariance under a rigid translation of the cell contents; the rate and its propagation;
  the checks (no saddle, second-order saddle, different atoms, open cells) and the codec.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes

pytest.importorskip("phonopy")

from scaleladder.atomistic.phonons import harmonic_rate, harmonic_tst_prefactor  # noqa: E402
from scaleladder.core import codec  # noqa: E402
from scaleladder.core.errors import CalculationError, InputError  # noqa: E402
from scaleladder.core.units import BOLTZMANN_EV  # noqa: E402
from scaleladder.handoffs import HarmonicTSTPrefactor  # noqa: E402
from scaleladder.uq import Estimate  # noqa: E402

# -- the analytic model ---------------------------------------------------------------------
# Two atoms in a periodic cube of edge L; the energy depends only on u = r2 - r1 - s:
#   U = -A cos(q u_x) - B cos(q u_y) (1 + c cos(q u_x)) - C cos(q u_z),   q = 2 pi / L.
# Minimum u = 0; first-order saddle u = (L/2, 0, 0).  At both the Hessian in u is diagonal:
#   minimum: k_x = (A + B c) q^2,  k_y = B (1 + c) q^2, k_z = C q^2
#   saddle:  k_x = -(A + B c) q^2, k_y = B (1 - c) q^2, k_z = C q^2
# The 3 relative modes have omega^2 = k / mu (mu the reduced mass), the 3 others are the rigid
# translations, so  nu* = nu_x(min) nu_y(min) nu_z(min) / (nu_y(sad) nu_z(sad)).  The non-separable
# B term makes the transverse frequency change between minimum and saddle.
L = 4.0
A_, B_, C_, c_ = 0.5, 0.3, 0.8, 0.4    # eV, eV, eV, dimensionless
Q = 2 * math.pi / L
SHIFT = np.array([L / 4, L / 2, L / 2])
SYMBOLS = ("Cu", "Si")                 # unequal masses: the mass weighting is tested


class _TwoAtomModel(Calculator):
    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        p = self.atoms.positions
        u = p[1] - p[0] - SHIFT
        cx, cy, cz = np.cos(Q * u)
        sx, sy, sz = np.sin(Q * u)
        e = -A_ * cx - B_ * cy * (1 + c_ * cx) - C_ * cz
        g = np.array([A_ * Q * sx + B_ * c_ * Q * cy * sx,   # dU/du
                      B_ * Q * sy * (1 + c_ * cx),
                      C_ * Q * sz])
        self.results = {"energy": float(e), "forces": np.array([g, -g])}


def _model_state(ux: float) -> Atoms:
    a = Atoms(SYMBOLS, positions=[[0.3, 0.2, 0.1], [0.3, 0.2, 0.1] + SHIFT + [ux, 0.0, 0.0]],
              cell=np.eye(3) * L, pbc=True)
    return a


def _nu_THz(k: float, mu: float) -> float:
    """Ordinary frequency (THz) of stiffness k (eV/Å^2) and mass mu (amu), via ase.units."""
    return math.sqrt(k / mu) * units.second / (2 * math.pi) / 1e12


@pytest.fixture(scope="module")
def model():
    mini, sad = _model_state(0.0), _model_state(L / 2)
    res = harmonic_tst_prefactor(mini, sad, _TwoAtomModel(), displacement=0.002)
    m1, m2 = mini.get_masses()
    mu = m1 * m2 / (m1 + m2)
    q2 = Q ** 2
    exact = {"min": sorted(_nu_THz(k, mu) for k in ((A_ + B_ * c_) * q2, B_ * (1 + c_) * q2,
                                                    C_ * q2)),
             "sad": sorted(_nu_THz(k, mu) for k in (B_ * (1 - c_) * q2, C_ * q2)),
             "imag": _nu_THz((A_ + B_ * c_) * q2, mu)}
    exact["prefactor"] = math.prod(exact["min"]) / math.prod(exact["sad"])
    return mini, sad, res, exact


def test_analytic_model_closed_form(model):
    _, _, res, exact = model
    assert isinstance(res, HarmonicTSTPrefactor)
    assert res.prefactor.unit == "1/ps"          # THz
    assert res.prefactor_THz == pytest.approx(exact["prefactor"], rel=1e-5)
    assert np.allclose(res.minimum_frequencies_THz, exact["min"], rtol=1e-5)
    assert np.allclose(res.saddle_frequencies_THz, exact["sad"], rtol=1e-5)
    assert res.imaginary_frequency_THz == pytest.approx(exact["imag"], rel=1e-5)
    assert res.n_zero_modes == 3 and res.n_atoms == 2
    assert res.log_prefactor_THz == pytest.approx(math.log(exact["prefactor"]), abs=1e-5)
    # the prefactor is not the imaginary frequency nor a mean frequency: the transverse mode
    # softens from minimum to saddle (B(1+c) -> B(1-c)), raising nu* by sqrt((1+c)/(1-c))
    assert res.prefactor_THz / exact["imag"] == pytest.approx(math.sqrt((1 + c_) / (1 - c_)),
                                                                rel=1e-5)
    # phonopy's own Γ frequencies hold the same modes (and three ~zero translations)
    ph = np.array(res.provenance["phonopy_gamma_lowest_THz"]["saddle"])
    assert ph[0] == pytest.approx(-exact["imag"], rel=1e-5)
    assert np.all(np.abs(ph[1:4]) < 1e-3)
    assert res.domain_warnings == ()


def test_rigid_translation_invariance_model(model):
    mini, sad, res, _ = model
    shift = np.array([1.37, -2.9, 0.55])     # moves atoms across the cell boundary
    m2, s2 = mini.copy(), sad.copy()
    m2.positions += shift
    s2.positions += shift
    moved = harmonic_tst_prefactor(m2, s2, _TwoAtomModel(), displacement=0.002)
    assert moved.prefactor_THz == pytest.approx(res.prefactor_THz, rel=1e-9)


def test_not_a_saddle_and_not_a_minimum(model):
    mini, sad, _, _ = model
    calc = _TwoAtomModel()
    with pytest.raises(CalculationError, match=r"saddle has 0 imaginary mode"):
        harmonic_tst_prefactor(mini, mini, calc)
    # u = (L/2, L/2, 0): a maximum along x and y -> a second-order saddle
    top = _model_state(L / 2)
    top.positions[1, 1] += L / 2
    with pytest.raises(CalculationError, match=r"saddle has 2 imaginary mode"):
        harmonic_tst_prefactor(mini, top, calc)
    with pytest.raises(CalculationError, match=r"minimum has 1 imaginary mode"):
        harmonic_tst_prefactor(sad, sad, calc)
    off = _model_state(0.3)                  # not a stationary point
    with pytest.raises(InputError, match="residual force") as err:
        harmonic_tst_prefactor(mini, off, calc)
    assert err.value.field == "saddle"


def test_domain_warnings_of_a_fitted_calculator(model):
    """A calculator that carries a fitted potential has both states checked against its domain."""
    from scaleladder.atomistic.domain import attach_fitted_potential
    from scaleladder.core.errors import DomainWarning
    from scaleladder.handoffs import FittedPotential

    mini, sad, res, _ = model
    fp = FittedPotential(form="StillingerWeber", species=("Si",), parameters={"epsilon": 1.0},
                         fitted=(), ensemble=np.zeros((0, 0)))
    calc = attach_fitted_potential(_TwoAtomModel(), fp)
    with pytest.warns(DomainWarning, match="harmonic_tst_prefactor"):
        flagged = harmonic_tst_prefactor(mini, sad, calc, displacement=0.002)
    assert flagged.prefactor_THz == res.prefactor_THz          # numerics untouched
    assert [m.split(":")[0] for m in flagged.domain_warnings] == ["minimum", "saddle"]
    assert all("species ['Cu'] not covered" in m for m in flagged.domain_warnings)


def test_bad_input(model):
    mini, sad, _, _ = model
    calc = _TwoAtomModel()
    other = sad.copy()
    other.set_chemical_symbols(["Cu", "Cu"])
    with pytest.raises(InputError, match="species") as err:
        harmonic_tst_prefactor(mini, other, calc)
    assert err.value.field == "saddle"
    big = sad.copy()
    big.set_cell(big.cell * 1.01)
    with pytest.raises(InputError, match="cell"):
        harmonic_tst_prefactor(mini, big, calc)
    open_ = mini.copy()
    open_.pbc = False
    with pytest.raises(InputError, match="rotational") as err:
        harmonic_tst_prefactor(open_, sad, calc)
    assert err.value.field == "minimum"
    with pytest.raises(InputError) as err:
        harmonic_tst_prefactor(mini, sad, calc, displacement=0.0)
    assert err.value.field == "displacement"
    with pytest.raises(InputError, match="calc"):
        harmonic_tst_prefactor(mini, sad, None)


def test_artifact_round_trip_and_validation(model):
    _, _, res, _ = model
    files = codec.to_files(res)
    back = codec.from_files(files)
    assert type(back) is HarmonicTSTPrefactor and codec.to_files(back) == files
    assert back.prefactor_THz == res.prefactor_THz
    assert np.array_equal(back.saddle_frequencies_THz, res.saddle_frequencies_THz)
    # Hz in, THz stored
    hz = res.replace(prefactor=res.prefactor.to("1/s"))
    assert hz.prefactor.unit == "1/ps" and hz.prefactor_THz == pytest.approx(res.prefactor_THz)
    with pytest.raises(InputError, match="prefactor"):
        res.replace(prefactor=Estimate(2 * res.prefactor_THz, "1/ps"))
    with pytest.raises(InputError, match="saddle_frequencies_THz"):
        res.replace(saddle_frequencies_THz=res.saddle_frequencies_THz[:1])
    with pytest.raises(InputError, match="imaginary_frequency_THz"):
        res.replace(imaginary_frequency_THz=-1.0)
    with pytest.raises(InputError, match="prefactor"):
        res.replace(prefactor=res.prefactor_THz)       # a bare number has no unit


def test_harmonic_rate_propagates_both(model):
    _, _, res, _ = model
    t = 600.0
    nu = Estimate(res.prefactor_THz, "1/ps", {"phonons": res.prefactor_THz * np.array([0.9, 1.1])})
    eb = Estimate(0.7, "eV", {"neb": np.array([0.68, 0.70, 0.72])})
    k = harmonic_rate(nu, eb, t)
    assert k.unit == "1/s"
    kt = BOLTZMANN_EV * t
    assert float(k.value) == pytest.approx(res.prefactor_THz * 1e12 * math.exp(-0.7 / kt), rel=1e-12)
    assert set(k.sources) == {"phonons", "neb"}
    assert np.allclose(k.sources["neb"], res.prefactor_THz * 1e12 * np.exp(-np.array([0.68, 0.70, 0.72]) / kt))
    # d ln k / d E_b = -1/kT
    assert float(res.rate(Estimate(0.6, "eV"), t).value) / float(res.rate(Estimate(0.7, "eV"), t).value) \
        == pytest.approx(math.exp(0.1 / kt), rel=1e-12)
    with pytest.raises(InputError, match="barrier"):
        harmonic_rate(res, 0.7, t)
    with pytest.raises(InputError, match="temperature_K"):
        harmonic_rate(res, eb, 0.0)
    with pytest.raises(InputError, match="barrier"):
        harmonic_rate(res, Estimate(-0.1, "eV"), t)
    with pytest.raises(InputError):
        harmonic_rate(Estimate(1.0, "eV"), eb, t)      # not a frequency


# -- EMT Cu vacancy hop ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def cu_hop():
    """Relaxed initial state and saddle (by symmetry) of a vacancy hop in 31-atom EMT Cu."""
    from ase.calculators.emt import EMT
    from ase.constraints import FixedPlane
    from ase.optimize import BFGS

    from scaleladder.atomistic import vacancy_migration_path

    cu = bulk("Cu", "fcc", a=3.59, cubic=True)
    ini, fin = vacancy_migration_path(cu, (2, 2, 2))
    h = ini.info["hopping_atom"]
    hop = fin.positions[h] - ini.positions[h]
    calc = EMT()
    mini = ini.copy()
    mini.calc = calc
    BFGS(mini, logfile=None).run(fmax=1e-4, steps=500)
    # the midpoint configuration is symmetric under the mirror exchanging the two sites; with
    # the hopping atom held on the mirror plane the relaxation keeps the symmetry and ends on
    # the first-order saddle of the hop
    sad = ini.copy()
    sad.positions[h] += 0.5 * hop
    sad.set_constraint(FixedPlane(h, hop))
    sad.calc = calc
    BFGS(sad, logfile=None).run(fmax=1e-4, steps=500)
    sad.set_constraint()
    e_b = sad.get_potential_energy() - mini.get_potential_energy()
    mini, sad = mini.copy(), sad.copy()            # no calculator attached
    res = harmonic_tst_prefactor(mini, sad, EMT())
    return mini, sad, res, e_b


def test_emt_cu_vacancy_hop(cu_hop):
    mini, sad, res, e_b = cu_hop
    assert res.n_atoms == 31
    assert len(res.minimum_frequencies_THz) == 90 and len(res.saddle_frequencies_THz) == 89
    # the hop's unstable mode: of the order of the phonon frequencies
    assert 1.0 < res.imaginary_frequency_THz < 10.0
    # nu* of a vacancy hop in fcc metals is of the order of the Debye frequency: Cu
    # theta_D = 343 K -> nu_D = k theta_D / h = 7.1 THz (Kittel, Introduction to Solid State
    # Physics, 8th ed., Table 5.1); KMC prefactors are "typically 1e12-1e13 /s" (A. F. Voter,
    # Introduction to the Kinetic Monte Carlo Method, in Radiation Effects in Solids, Springer
    # 2007).  An order-of-magnitude check, not a golden value: measured here (EMT, 31-atom
    # cell, 0.01 Å displacements) 4.83 THz, imaginary mode 2.77i THz, barrier 0.791 eV.
    assert 1.0 < res.prefactor_THz < 20.0
    assert max(res.minimum_frequencies_THz) < 10.0      # EMT Cu: highest mode measured 8.1 THz
    # the saddle is the barrier top of the NEB test (EMT Cu ~0.79 eV in the same cell)
    assert 0.5 < e_b < 1.1
    assert max(res.provenance["residual_force_max_eV_per_A"].values()) < 1e-3
    assert max(res.provenance["translation_leakage_rel"].values()) < 1e-6
    k = harmonic_rate(res, Estimate(e_b, "eV"), 900.0)
    assert float(k.value) == pytest.approx(res.prefactor_THz * 1e12
                                           * math.exp(-e_b / (BOLTZMANN_EV * 900.0)))


def test_emt_rigid_translation_invariance(cu_hop):
    from ase.calculators.emt import EMT

    mini, sad, res, _ = cu_hop
    shift = np.array([0.61, -1.23, 2.05])
    m2, s2 = mini.copy(), sad.copy()
    for a in (m2, s2):
        a.positions += shift
        a.wrap()
    moved = harmonic_tst_prefactor(m2, s2, EMT())
    assert moved.prefactor_THz == pytest.approx(res.prefactor_THz, rel=1e-6)
    assert moved.imaginary_frequency_THz == pytest.approx(res.imaginary_frequency_THz, rel=1e-6)
