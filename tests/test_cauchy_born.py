"""Cauchy–Born W(F) (coupling.cauchy_born): against the atomistic energy of homogeneously deformed
crystals, its own derivatives, the potentials' elastic constants, and bad input."""
import numpy as np
import pytest
from ase.build import bulk

from scaleladder.atomistic import LennardJones, Morse, StillingerWeber
from scaleladder.atomistic.pair import lj_fcc_reference
from scaleladder.atomistic.properties import elastic_constants
from scaleladder.core.errors import InputError
from scaleladder.coupling.cauchy_born import CauchyBorn, PairLattice, acoustic_tensor

LJ = LennardJones(epsilon=0.0104, sigma=3.40, rc=8.5)
REF = lj_fcc_reference(0.0104, 3.40, 8.5)


def _F(seed, amp=0.03):
    return np.eye(3) + amp * np.random.default_rng(seed).standard_normal((3, 3))


def test_cauchy_born_energy_is_the_atomistic_energy_of_the_deformed_crystal():
    """W(F) Ω₀ per primitive cell equals the energy per cell of a 3x3x3 supercell deformed by F,
    for a Bravais lattice (LJ fcc) and a two-atom basis relaxed at every F (SW diamond)."""
    for atoms, calc in ((bulk("Ar", "fcc", a=REF.a0), LJ),
                        (bulk("Si", "diamond", a=5.431), StillingerWeber())):
        cb = CauchyBorn(atoms, calc, fmax=1e-7)
        F = _F(1, 0.02)
        sup = atoms.repeat(3)
        sup.set_cell(sup.cell.array @ F.T, scale_atoms=False)
        sup.positions = sup.positions @ F.T
        sup.calc = calc
        if len(atoms) > 1:      # the supercell's basis relaxed as well
            from scaleladder.atomistic.properties import relax_positions
            relax_positions(sup, fmax=1e-7)
        e_sup = sup.get_potential_energy() / 27
        assert cb.energy_density(F) * cb.volume == pytest.approx(e_sup, rel=1e-10, abs=1e-12)


def test_pair_lattice_sums_equal_the_calculator_route():
    cb = CauchyBorn(bulk("Ar", "fcc", a=REF.a0), LJ)
    pl = PairLattice.fcc(REF.a0, LJ)
    F = _F(2)
    assert pl.energy_density(F) == pytest.approx(cb.energy_density(F), rel=1e-12)
    P = pl.stress(F)
    assert np.allclose(P, cb.stress(F), atol=1e-12 * np.abs(P).max())
    A = pl.tangent(F)
    assert np.allclose(A, cb.tangent(F), atol=1e-7 * np.abs(A).max())


@pytest.mark.parametrize("lattice", ["chain", "triangular", "fcc"])
def test_pair_lattice_stress_and_tangent_are_derivatives(lattice):
    pot = Morse(D0=0.4, alpha=1.3, r0=2.6, rc=7.0)
    pl = getattr(PairLattice, lattice)(2.6, pot)
    d = pl.dim
    F = np.eye(d) + 0.02 * np.random.default_rng(3).standard_normal((d, d))
    h = 1e-6
    P, A = pl.stress(F), pl.tangent(F)
    for k in range(d):
        for L in range(d):
            dF = np.zeros((d, d))
            dF[k, L] = h
            assert (pl.energy_density(F + dF) - pl.energy_density(F - dF)) / (2 * h) == \
                pytest.approx(P[k, L], abs=1e-8 * np.abs(P).max() + 1e-12)
            assert np.allclose((pl.stress(F + dF) - pl.stress(F - dF)) / (2 * h), A[:, :, k, L],
                               atol=1e-6 * np.abs(A).max())


def test_elastic_constants_are_the_potentials():
    # LJ fcc: the lattice-sum reference (C12 = C44, the Cauchy relation)
    C = PairLattice.fcc(REF.a0, LJ).elastic_constants()
    assert C[0, 0] == pytest.approx(REF.C11, rel=1e-10)
    assert C[0, 1] == pytest.approx(REF.C12, rel=1e-10)
    assert C[3, 3] == pytest.approx(REF.C44, rel=1e-10)
    # silicon (SW): clamped-ion without internal relaxation, relaxed-ion with it — the two
    # differ by 53 GPa in C44; each equals the stress–strain fit of the atomistic rung
    si, sw = bulk("Si", "diamond", a=5.431), StillingerWeber()
    c44 = []
    for relax in (False, True):
        cb = CauchyBorn(si, sw, relax_basis=relax).elastic_tensor()
        ref = elastic_constants(si, sw, relax_ions=relax)
        assert cb.relaxed_ions == relax
        assert np.allclose(cb.to_pa(), ref.to_pa(), atol=0.1e9)     # measured: ≤ 0.03 GPa
        c44.append(cb.to_pa()[3, 3] / 1e9)
    assert c44[0] - c44[1] == pytest.approx(53.3, abs=0.5)         # 109.75 − 56.45 GPa


def test_acoustic_tensor_loses_definiteness_under_large_stretch():
    """The Cauchy–Born validity indicator: the acoustic tensor of the triangular lattice is
    positive definite at F = I and loses it in uniaxial tension past the inflection of the bond."""
    pot = Morse(D0=0.4, alpha=1.3, r0=2.6, rc=7.0)
    pl = PairLattice.triangular(2.6, pot)
    n = np.array([1.0, 0.0])
    assert np.linalg.eigvalsh(acoustic_tensor(pl.tangent(np.eye(2)), n)).min() > 0
    F = np.diag([1.4, 1.0])
    assert np.linalg.eigvalsh(acoustic_tensor(pl.tangent(F), n)).min() < 0


def test_bad_input():
    from ase import Atoms

    slab = bulk("Ar", "fcc", a=REF.a0)
    slab.pbc = (True, True, False)
    with pytest.raises(InputError, match="periodic in all three"):
        CauchyBorn(slab, LJ)
    si = bulk("Si", "diamond", a=5.431)
    si.positions[1] += 0.1
    with pytest.raises(InputError, match="relax_basis"):
        CauchyBorn(si, StillingerWeber(), relax_basis=False)
    cb = CauchyBorn(bulk("Ar", "fcc", a=REF.a0), LJ)
    with pytest.raises(InputError, match="det F"):
        cb.energy_density(np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(InputError, match="F"):
        cb.stress(np.eye(2))
    with pytest.raises(InputError, match="vectors"):
        PairLattice([[1.0, 0], [2.0, 0]], LJ)
    with pytest.raises(InputError, match="pair"):
        PairLattice.chain(2.0, "LJ")
    assert Atoms  # (ase imported for the slab above)
