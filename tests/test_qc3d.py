"""The force-based quasicontinuum in 3D (coupling.qc3d): fcc sites, the patch test on a graded
tetrahedral mesh, atomistic forces of the fully refined model against finite differences, a
vacancy against full atomistics (the unrelaxed formation energy is the cohesive energy; the QC
bounds the relaxed one from above and converges with its nonlocal radius), bad input."""
import math

import numpy as np
import pytest

from scaleladder.atomistic import Morse
from scaleladder.core.errors import InputError
from scaleladder.coupling.qc2d import pair_energy
from scaleladder.coupling.qc3d import QC3D, fcc_sites, vacancy

POT = Morse(D0=0.4, alpha=1.3, r0=2.6, rc=6.0)
A = 2.45


def test_fcc_sites():
    X = fcc_sites(3, 3, 3, A)
    assert X.shape == (108, 3)
    from scipy.spatial import cKDTree

    d, _ = cKDTree(X).query(X, k=13)
    inner = np.all((X > 3.5) & (X < 3 * A * math.sqrt(2) - 3.5), axis=1)
    assert np.allclose(d[inner, 1:], A)                   # twelve nearest neighbours at a


def test_patch_test_on_a_graded_tetrahedral_mesh():
    """Homogeneous F: no force on any interior repatom, local or nonlocal (round-off)."""
    X = fcc_sites(12, 12, 12, A)
    c = X.mean(axis=0)
    nl = np.linalg.norm(X - c, axis=1) < 3.0
    near = np.linalg.norm(X - c, axis=1) < 3.0 + 6.0 + 2 * A
    cell = A * math.sqrt(2)
    idx = np.rint(X / cell * 2).astype(int)
    rep = near | np.all(idx % 4 == 0, axis=1) | np.isclose(X, X.min(0)).any(1) | np.isclose(X, X.max(0)).any(1)
    qc = QC3D(X, A, POT, np.flatnonzero(rep), nl)
    assert qc.T.shape[1] == 4 and qc.rep.size < X.shape[0] / 2
    F = np.array([[1.01, 0.02, 0.0], [0.0, 0.99, 0.01], [0.005, 0.0, 1.02]])
    assert qc.patch_test(F) < 1e-10
    with pytest.raises(InputError, match="variant"):
        QC3D(X, A, POT, np.flatnonzero(rep), nl, variant="energy")


def test_fully_refined_forces_are_the_atomistic_ones():
    X = fcc_sites(3, 3, 3, A)
    n = X.shape[0]
    y = X + 0.05 * np.random.default_rng(0).standard_normal(X.shape)
    qc = QC3D(X, A, POT, np.arange(n), np.arange(n))
    f = qc.forces(y)
    h = 1e-5
    for k in (0, 17, 53):
        for c in range(3):
            yp, ym = y.copy(), y.copy()
            yp[k, c] += h
            ym[k, c] -= h
            fd = -(pair_energy(yp, POT) - pair_energy(ym, POT)) / (2 * h)
            assert f[k, c] == pytest.approx(fd, rel=1e-6, abs=1e-8)


@pytest.fixture(scope="module")
def vacancies():
    full = vacancy(9, 2.6, POT, full=True, fmax=1e-5)     # 1e-5 is enough on this small box
    return full, {r: vacancy(9, 2.6, POT, core_radius=r, fmax=1e-5) for r in (3.0, 8.0)}


def test_vacancy_formation_energy(vacancies):
    """Unrelaxed, a pair potential's vacancy costs exactly the cohesive energy (every bond of
    the removed atom broken, the atom returned to the bulk); relaxation lowers it (measured
    4.652 → 3.862 eV on the 9³ box)."""
    full, _ = vacancies
    assert full.info["unrelaxed_formation_energy"] == pytest.approx(-full.info["cohesive_energy"],
                                                                    rel=1e-9)
    assert 0.5 * full.info["unrelaxed_formation_energy"] < full.formation_energy < \
        full.info["unrelaxed_formation_energy"] - 0.1


def test_qc_vacancy_converges_and_bounds_the_energy(vacancies):
    """A nonlocal sphere of 3 Å (the first shell) and then 8 Å: the formation-energy and
    displacement errors fall (measured +0.070 → +0.0001 eV, 0.033 → 0.0011 Å) and stay
    non-negative in energy — the QC's configuration is admissible for the full model."""
    full, qc = vacancies
    e3, e8 = qc[3.0].errors(full), qc[8.0].errors(full)
    assert 0 <= e8["formation_energy_eV"] < 0.1 * e3["formation_energy_eV"]
    assert e8["max_displacement_A"] < 0.2 * e3["max_displacement_A"]
    assert e8["formation_energy_eV"] < 1e-3


def test_bad_input():
    with pytest.raises(InputError, match="n"):
        vacancy(5, 2.6, POT)
    with pytest.raises(InputError, match="core_radius"):
        vacancy(9, 2.6, POT, core_radius=0.0)
