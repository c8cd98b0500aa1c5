"""QM/MM molecular dynamics: GFN2-xTB (tblite) QM water in a flexible SPC/Fw water cluster.

NVE with the additive mechanical embedding and with ONIOM conserves energy (velocity Verlet,
0.25 fs): the drift per picosecond and the largest excursion are measured and bounded; a
deliberately wrong coupling (forces without the QM-MM term) is shown to break conservation, so
the bound is not vacuous.  NVT (Langevin) runs through the same coupling.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tblite")

from scaleladder.atomistic.md import run_md                           # noqa: E402
from scaleladder.atomistic.water import WATER_MODELS, water_cluster, water_forcefield  # noqa: E402
from scaleladder.coupling import (ONIOM, MechanicalEmbedding, PairInteractions,  # noqa: E402
                                  QMRegion)
from scaleladder.electronic import XTBCalculator                      # noqa: E402

M = WATER_MODELS["spc/fw"]
LJ = PairInteractions(lj={("O", "O"): (M.epsilon_O, M.sigma_O)})


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _cluster():
    atoms = water_cluster(4, seed=2)
    return atoms


def _mechanical(atoms):
    region = QMRegion(atoms, [0, 1, 2], links=None)
    return MechanicalEmbedding(XTBCalculator(method="GFN2-xTB"), water_forcefield(atoms), region,
                               interaction=LJ)


def _oniom(atoms):
    region = QMRegion(atoms, [0, 1, 2], links=None)
    return ONIOM(XTBCalculator(method="GFN2-xTB"), water_forcefield(atoms), region)


def test_oniom_equals_additive_when_the_qm_mm_terms_are_the_force_field_s():
    """With no cutoff, E_MM(all) - E_MM(QM) = E_MM(MM) + the QM-MM Coulomb and LJ: both schemes
    give the same energy and forces (the ledger differs, the physics not)."""
    atoms = _cluster()
    a, b = atoms.copy(), atoms.copy()
    a.calc, b.calc = _mechanical(atoms), _oniom(atoms)
    assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-9)
    np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-9)


@pytest.mark.parametrize("make", [_mechanical, _oniom], ids=["mechanical", "oniom"])
def test_nve_qmmm_md_conserves_energy(make):
    atoms = _cluster()
    res = run_md(atoms, make(atoms), steps=400, ensemble="nve", temperature_K=150.0,
                 timestep_fs=0.25, seed=7)
    drift = res.drift                     # eV/atom/ps
    excursion = res.energy_error          # eV/atom
    fluct_pot = float(np.std(res.potential_energy))
    print(f"{make.__name__}: drift {drift:.2e} eV/atom/ps, excursion {excursion:.2e} eV/atom, "
          f"potential-energy fluctuation {fluct_pot:.2e} eV/atom over 100 fs at 0.25 fs")
    # integration error two orders of magnitude below the energy being exchanged
    assert excursion < 0.02 * fluct_pot + 1e-5
    assert abs(drift) < 1e-3


def test_energy_conservation_detects_an_inconsistent_coupling():
    """The same run with the QM-MM Lennard-Jones forces left out (its energy kept) drifts far
    more: the conservation test above would catch a coupling whose forces are not -dE/dR."""
    atoms = _cluster()
    good = _mechanical(atoms)

    class Broken(MechanicalEmbedding):
        def calculate(self, atoms=None, properties=("energy",), system_changes=None):
            super().calculate(atoms, properties, system_changes or [])
            if "forces" not in self.results:
                return
            region = self.region
            qm = atoms[list(region.qm_indices)]
            mm = atoms[list(region.mm_indices)]
            _, f_qm, f_mm = self.interaction.calculate(
                qm, np.full(len(qm), 0.0), mm, np.full(len(mm), 0.0), coulomb=False)
            f = self.results["forces"].copy()
            f[region.qm_indices] -= f_qm
            f[region.mm_indices] -= f_mm
            self.results["forces"] = f

    broken = Broken(good.qm_calc, good.mm_calc, good.region, interaction=LJ)
    r_good = run_md(atoms, good, steps=400, ensemble="nve", temperature_K=150.0,
                    timestep_fs=0.25, seed=7)
    r_bad = run_md(atoms, broken, steps=400, ensemble="nve", temperature_K=150.0,
                   timestep_fs=0.25, seed=7, energy_drift_tol=1.0)
    assert r_bad.energy_error > 10 * r_good.energy_error


def test_nvt_qmmm_md_runs_and_thermalises():
    atoms = _cluster()
    res = run_md(atoms, _mechanical(atoms), steps=600, ensemble="nvt", temperature_K=200.0,
                 timestep_fs=0.5, friction=0.05, seed=3)
    assert np.all(np.isfinite(res.total_energy))
    t_mean = float(np.mean(res.temperature_K[200:]))
    # 12 atoms: instantaneous T fluctuates by ~ sqrt(2/(3N)) = 24 %; the mean of ~400 correlated
    # frames is known to ~10 %
    assert 120.0 < t_mean < 280.0
