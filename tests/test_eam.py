"""EAM: LAMMPS table files, and the numba calculator checked against physics and other codes.

Test potentials are written here from smooth analytic functions (no data files, no network):
an exponential density, a Morse-like pair term and a smooth embedding function, all multiplied
by the cutoff function ``psi(x) = x^4 / (1 + x^4)``, ``x = (r - rc) / h`` (zero with three
derivatives at ``rc``).  "Cu" and "Ni" are labels for two parameter sets, not fitted potentials.

Checks: forces and stress against central finite differences of the energy; per-atom energies
summing to the total; the interpolation error against the analytic functions falling as the
fourth power of the table spacing; agreement with ASE's own EAM calculator (different splines:
agreement to interpolation accuracy) and with LAMMPS ``pair_style eam`` / ``eam/alloy`` (same
scheme: agreement to round-off); file errors; write/read round trip.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.neighborlist import primitive_neighbor_list

from scaleladder.atomistic.eam import (EAM, FUNCFL_ZZ_TO_RPHI, EAMTables, read_eam, read_funcfl,
                                       read_setfl, write_setfl)
from scaleladder.core.errors import InputError, PropertyNotImplementedError
from _skin_checks import md_against_rebuild, rebuild_rules  # noqa: E402

# --------------------------------------------------------------------------------------------
# analytic test potential
# --------------------------------------------------------------------------------------------

RC, H = 5.0, 1.0
PARAMS = {
    "Cu": dict(re=2.556, fe=1.0, beta=6.0, A=0.35, alpha=8.0, B=0.55, kappa=4.0, Ec=2.2,
               rhoe=12.0, Z=29, m=63.546, a=3.615),
    "Ni": dict(re=2.49, fe=1.2, beta=6.5, A=0.40, alpha=8.4, B=0.60, kappa=4.2, Ec=2.6,
               rhoe=14.0, Z=28, m=58.693, a=3.52),
}
FUNCFL_A = 0.2      # funcfl pair term: purely repulsive (r phi = 14.3888 Z^2 >= 0)


def psi(r):
    x = np.where(r < RC, (r - RC) / H, 0.0)
    return x**4 / (1 + x**4)


def density(el, r):
    p = PARAMS[el]
    return p["fe"] * np.exp(-p["beta"] * (r / p["re"] - 1)) * psi(r)


def pair(a, b, r):
    p = {k: 0.5 * (PARAMS[a][k] + PARAMS[b][k]) for k in ("re", "A", "alpha", "B", "kappa")}
    return (p["A"] * np.exp(-p["alpha"] * (r / p["re"] - 1))
            - p["B"] * np.exp(-p["kappa"] * (r / p["re"] - 1))) * psi(r)


def funcfl_pair(r):
    p = PARAMS["Cu"]
    return FUNCFL_A * np.exp(-p["alpha"] * (r / p["re"] - 1)) * psi(r)


def embedding(el, rho):
    p = PARAMS[el]
    x = rho / p["rhoe"]
    return -p["Ec"] * np.sqrt(x + 0.05) + 0.3 * p["Ec"] * x * x / (1 + x)


def _lines(arr, per_line=5):
    return [" ".join(repr(float(v)) for v in arr[k:k + per_line])
            for k in range(0, len(arr), per_line)]


def grids(dr):
    """Table grids for spacing ``dr`` (Å): r to 5.5 Å, rho to 50 with drho = 10 dr."""
    nr = int(round(5.5 / dr)) + 1
    drho = 10 * dr
    nrho = int(round(50.0 / drho)) + 1
    return nrho, drho, nr, dr


def write_test_setfl(path, elements=("Cu", "Ni"), dr=0.005):
    nrho, drho, nr, dr = grids(dr)
    r = np.arange(nr) * dr
    rho = np.arange(nrho) * drho
    out = ["analytic test EAM (setfl)", "smooth functions, not a fitted potential", "",
           f"{len(elements)} " + " ".join(elements), f"{nrho} {drho!r} {nr} {dr!r} {RC!r}"]
    for el in elements:
        p = PARAMS[el]
        out.append(f"{p['Z']} {p['m']} {p['a']} fcc")
        out += _lines(embedding(el, rho)) + _lines(density(el, r))
    for i, a in enumerate(elements):
        for b in elements[:i + 1]:
            out += _lines(r * pair(a, b, r))
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")
    return str(path)


def write_test_funcfl(path, dr=0.005):
    nrho, drho, nr, dr = grids(dr)
    r = np.arange(nr) * dr
    rho = np.arange(nrho) * drho
    p = PARAMS["Cu"]
    z = np.sqrt(r * funcfl_pair(r) / FUNCFL_ZZ_TO_RPHI)
    out = ["analytic test EAM (funcfl)", f"{p['Z']} {p['m']} {p['a']} fcc",
           f"{nrho} {drho!r} {nr} {dr!r} {RC!r}"]
    out += _lines(embedding("Cu", rho)) + _lines(z) + _lines(density("Cu", r))
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")
    return str(path)


def analytic_energy(atoms, funcfl=False):
    """Exact EAM energy of the analytic functions (brute-force neighbour search)."""
    i, j, d = primitive_neighbor_list("ijd", atoms.pbc, atoms.cell, atoms.positions, RC)
    sym = np.array(atoms.get_chemical_symbols())
    rho = np.zeros(len(atoms))
    e = 0.0
    for el in set(sym):
        m = sym[j] == el
        np.add.at(rho, i[m], density(el, d[m]))
    for a in set(sym):
        for b in set(sym):
            m = (sym[i] == a) & (sym[j] == b)
            e += 0.5 * np.sum(funcfl_pair(d[m]) if funcfl else pair(a, b, d[m]))
    for el in set(sym):
        e += np.sum(embedding(el, rho[sym == el]))
    return e


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("eam")
    return {"setfl": write_test_setfl(d / "CuNi.eam.alloy"),
            "funcfl": write_test_funcfl(d / "Cu.eam"), "dir": d}


def fcc_cu(rattle=0.05, seed=1):
    atoms = bulk("Cu", "fcc", a=3.615, cubic=True).repeat(3)      # 108 atoms
    atoms.rattle(rattle, seed=seed)
    return atoms


def sheared(atoms):
    """The same atoms in a triclinic cell (LAMMPS' restricted form: a along x, b in xy)."""
    cell = atoms.cell.array.copy()
    cell[1, 0] += 0.7
    cell[2, 0] -= 0.4
    cell[2, 1] += 0.5
    atoms = atoms.copy()
    atoms.set_cell(cell, scale_atoms=True)
    return atoms


def alloy(atoms):
    atoms = atoms.copy()
    atoms.symbols[::3] = "Ni"
    return atoms


# --------------------------------------------------------------------------------------------
# derivatives and invariants
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["fcc_funcfl", "triclinic_setfl", "alloy_triclinic"])
def test_forces_match_finite_differences(files, case):
    atoms = fcc_cu()
    path = files["funcfl"]
    if case != "fcc_funcfl":
        atoms = sheared(atoms)
        path = files["setfl"]
    if case == "alloy_triclinic":
        atoms = alloy(atoms)
    atoms.calc = EAM.from_file(path)
    forces = atoms.get_forces()
    assert np.abs(forces).max() > 0.1        # a real test: the rattle makes forces sizeable
    idx = [0, 1, 2, 50, 107]
    num = calculate_numerical_forces(atoms, eps=1e-5, iatoms=idx)
    # the energy is a C1 piecewise cubic of the coordinates: central differences are exact to
    # O(eps^2) (measured max error ~5e-9 eV/Å with forces ~1 eV/Å); round-off ~1e-13 eV / 1e-5 Å
    np.testing.assert_allclose(forces[idx], num, atol=1e-7, rtol=0)
    assert np.abs(forces.sum(axis=0)).max() < 1e-10      # Newton's third law


@pytest.mark.parametrize("case", ["triclinic_setfl", "alloy_triclinic", "fcc_funcfl"])
def test_stress_matches_finite_differences(files, case):
    atoms = sheared(fcc_cu())
    path = files["setfl"]
    if case == "alloy_triclinic":
        atoms = alloy(atoms)
    if case == "fcc_funcfl":
        atoms, path = fcc_cu(), files["funcfl"]
    atoms.calc = EAM.from_file(path)
    stress = atoms.get_stress()
    num = calculate_numerical_stress(atoms, eps=1e-6)
    assert np.abs(stress).max() > 1e-3
    np.testing.assert_allclose(stress, num, atol=1e-9, rtol=0)     # measured ~2e-11 eV/Å^3


def test_energies_sum_and_invariance(files):
    atoms = sheared(alloy(fcc_cu()))
    atoms.calc = EAM.from_file(files["setfl"])
    e = atoms.get_potential_energy()
    ea = atoms.get_potential_energies()
    assert ea.shape == (len(atoms),)
    assert abs(ea.sum() - e) < 1e-10 * abs(e)
    # rigid rotation + translation + relabelling of atoms leave the energy unchanged
    rot = atoms.copy()
    rot.rotate(37.0, (1, 2, 3), rotate_cell=True)
    rot.translate((0.3, -1.1, 2.0))
    perm = np.random.default_rng(0).permutation(len(rot))
    rot = rot[perm]
    rot.calc = EAM.from_file(files["setfl"])
    assert abs(rot.get_potential_energy() - e) < 1e-10 * abs(e)
    np.testing.assert_allclose(rot.get_potential_energies(), ea[perm], rtol=0, atol=1e-10)


def test_open_cluster_forces_and_no_stress(files):
    atoms = bulk("Cu", "fcc", a=3.615, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=3)
    atoms.pbc = False
    atoms.cell = np.zeros((3, 3))
    atoms.calc = EAM.from_file(files["setfl"])
    f = atoms.get_forces()
    num = calculate_numerical_forces(atoms, eps=1e-5, iatoms=[0, 5, 31])
    np.testing.assert_allclose(f[[0, 5, 31]], num, atol=1e-6, rtol=0)
    # an isolated cluster: exactly the brute-force energy of all pairs (no images)
    ref = EAM.from_file(files["setfl"])
    big = atoms.copy()
    big.cell = np.eye(3) * 100.0
    big.pbc = True
    big.calc = ref
    assert abs(big.get_potential_energy() - atoms.get_potential_energy()) < 1e-10
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()


def test_parallel_equals_serial(files):
    atoms = sheared(alloy(fcc_cu()))
    a, b = atoms.copy(), atoms.copy()
    a.calc = EAM.from_file(files["setfl"])
    b.calc = EAM.from_file(files["setfl"], parallel=True)
    assert a.get_potential_energy() == b.get_potential_energy()
    np.testing.assert_array_equal(a.get_forces(), b.get_forces())
    np.testing.assert_array_equal(a.get_stress(), b.get_stress())


def test_interpolation_error_falls_as_fourth_power(tmp_path):
    """Tables of the analytic functions: energy error vs spacing, measured rate ~4."""
    atoms = alloy(sheared(fcc_cu(rattle=0.1)))
    exact = analytic_energy(atoms)
    errs = []
    for dr in (0.04, 0.02, 0.01):
        path = write_test_setfl(tmp_path / f"t{dr}.eam.alloy", dr=dr)
        atoms.calc = EAM.from_file(path)
        errs.append(abs(atoms.get_potential_energy() - exact) / len(atoms))
    rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    # fourth-order scheme (local cubic, fourth-order slopes): measured errors 3.5e-7, 2.2e-8,
    # 1.4e-9 eV/atom, rates 3.99 and 4.00
    assert errs[-1] < 1e-8
    assert np.all(rates > 3.5), (errs, rates)


# --------------------------------------------------------------------------------------------
# other codes
# --------------------------------------------------------------------------------------------

def test_agrees_with_ase_eam(files):
    """ASE's ``ase.calculators.eam.EAM`` on the same files.

    ASE interpolates the tables with scipy's global not-a-knot cubic splines (and splines
    ``phi = rphi / r`` instead of ``rphi``); LAMMPS' scheme used here is a local cubic with
    fourth-order slopes.  Both reproduce the tabulated functions to O(dr^4) in values and
    O(dr^3) in derivatives; on this table (dr = 0.005 Å against decay lengths re/beta ~ 0.4 Å,
    (dr/l)^4 ~ 2e-8 times small prefactors) the two must agree to 1e-8 relative in energy
    (measured ~2e-11) and 1e-6 eV/Å in forces (measured ~1e-7).  For funcfl files ASE converts
    Z^2 with CODATA Hartree*Bohr (14.39964) rather than LAMMPS' 27.2*0.529 (14.3888): its pair
    tables are rescaled to LAMMPS' constant before comparing.
    """
    from ase.calculators.eam import EAM as AseEAM
    from ase.units import Bohr, Hartree

    for path, atoms in ((files["setfl"], sheared(alloy(fcc_cu()))),
                        (files["funcfl"], sheared(fcc_cu()))):
        ase_calc = AseEAM(potential=path)
        if path.endswith(".eam"):
            ase_calc.rphi_data *= FUNCFL_ZZ_TO_RPHI / (Bohr * Hartree)
            ase_calc.set_splines()
        ref = atoms.copy()
        ref.calc = ase_calc
        atoms.calc = EAM.from_file(path)
        e, e_ref = atoms.get_potential_energy(), ref.get_potential_energy()
        assert abs(e - e_ref) < 1e-8 * abs(e_ref)
        np.testing.assert_allclose(atoms.get_forces(), ref.get_forces(), atol=1e-6, rtol=0)
        np.testing.assert_allclose(atoms.get_stress(), ref.get_stress(), atol=1e-7, rtol=0)


def _load_lammps():
    try:
        from scaleladder.atomistic._lammps import load_lammps
    except ImportError:                         # pragma: no cover - loader not present
        pytest.skip("scaleladder.atomistic._lammps.load_lammps not available")
    try:
        return load_lammps("EAM cross-check")
    except ImportError as exc:
        pytest.skip(f"LAMMPS cannot be loaded: {exc}")


#: LAMMPS ``units metal`` pressure conversion (force->nktv2p): eV/Å^3 -> bar.
LAMMPS_METAL_NKTV2P = 1.6021765e6


def lammps_eam(lammps_module, atoms, style, path, elements):
    """Energy, forces, per-atom energies and stress (ASE Voigt/sign, eV/Å^3) from LAMMPS."""
    lmp = lammps_module.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        cell = np.asarray(atoms.cell)
        assert abs(cell[0, 1]) + abs(cell[0, 2]) + abs(cell[1, 2]) < 1e-12
        xhi, yhi, zhi = (float(cell[k, k]) for k in range(3))
        xy, xz, yz = float(cell[1, 0]), float(cell[2, 0]), float(cell[2, 1])
        coeff = f"pair_coeff 1 1 {path}" if style == "eam" else \
            f"pair_coeff * * {path} " + " ".join(elements)
        for c in ["units metal", "atom_style atomic", "atom_modify map array", "boundary p p p",
                  f"region box prism 0 {xhi!r} 0 {yhi!r} 0 {zhi!r} {xy!r} {xz!r} {yz!r} "
                  "units box", f"create_box {len(elements)} box", f"pair_style {style}", coeff,
                  "neighbor 0.5 bin", "compute pea all pe/atom",
                  "thermo_style custom step pe pxx pyy pzz pyz pxz pxy"]:
            lmp.command(c)
        n = len(atoms)
        types = [elements.index(s) + 1 for s in atoms.get_chemical_symbols()]
        x = np.ascontiguousarray(atoms.get_positions(wrap=True)).ravel().tolist()
        lmp.create_atoms(n, list(range(1, n + 1)), types, x)
        assert lmp.get_natoms() == n
        lmp.command("run 0")
        nlocal = lmp.extract_global("nlocal")
        ids = lmp.numpy.extract_atom("id")[:nlocal] - 1
        forces = np.empty((n, 3))
        forces[ids] = lmp.numpy.extract_atom("f")[:nlocal]
        eatom = np.empty(n)
        eatom[ids] = lmp.numpy.extract_compute("pea", lammps_module.LMP_STYLE_ATOM,
                                               lammps_module.LMP_TYPE_VECTOR)[:nlocal]
        energy = lmp.get_thermo("pe")
        p = np.array([lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pyz", "pxz", "pxy")])
        return energy, forces, eatom, -p / LAMMPS_METAL_NKTV2P
    finally:
        lmp.close()


@pytest.mark.parametrize("style", ["eam", "eam/alloy"])
def test_agrees_with_lammps(files, style):
    """Same tables, same interpolation: LAMMPS and this calculator agree to round-off."""
    lammps_module = _load_lammps()
    if style == "eam":
        path, elements, atoms = files["funcfl"], ["Cu"], sheared(fcc_cu())
    else:
        path, elements, atoms = files["setfl"], ["Cu", "Ni"], sheared(alloy(fcc_cu()))
    atoms.calc = EAM.from_file(path)
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    ea, s = atoms.get_potential_energies(), atoms.get_stress()
    e_l, f_l, ea_l, s_l = lammps_eam(lammps_module, atoms, style, path, elements)
    assert abs(e - e_l) <= 1e-8 * abs(e_l)                           # measured ~1e-15
    assert np.abs(f - f_l).max() <= 1e-8 * np.abs(f_l).max()         # measured ~1e-13
    assert np.abs(ea - ea_l).max() <= 1e-8 * np.abs(ea_l).max()
    assert np.abs(s - s_l).max() <= 1e-8 * np.abs(s_l).max()


def test_funcfl_uses_lammps_grid(files):
    """funcfl: LAMMPS drops the last table point; setfl: all points (documented behaviour)."""
    t = read_funcfl(files["funcfl"])
    calc = EAM(t)
    assert calc._splines.nr == t.nr - 1 and calc._splines.nrho == t.nrho - 1
    assert calc._splines.rhomax == (t.nrho - 1) * t.drho
    # LAMMPS' four-point Lagrange map reproduces the nodes up to round-off
    np.testing.assert_allclose(calc._splines.z2r[0, 0, :, 6], t.rphi[0, 0, :-1], rtol=1e-13,
                               atol=1e-13)
    s = read_setfl(files["setfl"])
    assert EAM(s)._splines.nr == s.nr


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------

def test_readers(files):
    t = read_setfl(files["setfl"])
    assert t.elements == ("Cu", "Ni") and t.kind == "setfl"
    assert t.atomic_numbers == (29, 28) and t.masses == (63.546, 58.693)
    assert t.lattice_types == ("fcc", "fcc") and t.lattice_constants == (3.615, 3.52)
    nrho, drho, nr, dr = grids(0.005)
    assert (t.nrho, t.drho, t.nr, t.dr, t.cutoff) == (nrho, drho, nr, dr, RC)
    r = t.r_grid
    np.testing.assert_allclose(t.rho[1], density("Ni", r), rtol=1e-15, atol=0)
    np.testing.assert_allclose(t.rphi[0, 1], r * pair("Ni", "Cu", r), rtol=1e-15, atol=0)
    np.testing.assert_array_equal(t.rphi[0, 1], t.rphi[1, 0])
    np.testing.assert_allclose(t.F[0], embedding("Cu", t.rho_grid), rtol=1e-15)
    f = read_funcfl(files["funcfl"])
    assert f.elements == ("Cu",) and f.kind == "funcfl" and f.masses == (63.546,)
    np.testing.assert_allclose(f.rphi[0, 0], r * funcfl_pair(r), rtol=1e-12, atol=1e-15)
    assert read_eam(files["setfl"]).kind == "setfl"
    assert read_eam(files["funcfl"]).kind == "funcfl"
    # explicit kind overrides the extension
    other = files["dir"] / "potential.txt"
    other.write_text(open(files["setfl"]).read())
    assert EAM.from_file(other, kind="setfl").tables.elements == ("Cu", "Ni")
    with pytest.raises(InputError, match="kind="):
        EAM.from_file(other)
    with pytest.raises(InputError, match="eam/fs"):
        read_eam(files["dir"] / "x.eam.fs")


def test_write_read_round_trip(files, tmp_path):
    t = read_setfl(files["setfl"])
    p1 = tmp_path / "a.eam.alloy"
    write_setfl(t, p1)
    t1 = read_setfl(p1)
    assert t1.equals(t) and t1.comments == t.comments
    p2 = tmp_path / "b.eam.alloy"
    write_setfl(t1, p2, per_line=3)
    assert read_setfl(p2).equals(t)
    write_setfl(read_setfl(p2), p1)
    assert open(p1).read() == open(tmp_path / "a.eam.alloy").read()
    # funcfl -> setfl keeps the tables (rphi = 27.2*0.529 Z^2)
    f = read_funcfl(files["funcfl"])
    p3 = tmp_path / "cu.eam.alloy"
    write_setfl(f, p3)
    assert read_setfl(p3).equals(f)


def _break(src, dst, edit):
    lines = open(src).read().splitlines()
    lines = edit(lines)
    with open(dst, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return str(dst)


@pytest.mark.parametrize("name, edit, reader, pattern", [
    ("count", lambda L: L[:3] + ["3 Cu Ni"] + L[4:], read_setfl, r"line 4 .*3 element names"),
    ("token", lambda L: L[:7] + [L[7].replace(L[7].split()[2], "1.0x")] + L[8:], read_setfl,
     r"line 8 .*F\(rho\) block of Cu.*'1.0x'.*a number"),
    ("negdr", lambda L: L[:4] + [L[4].replace(" 0.005 ", " -0.005 ")] + L[5:], read_setfl,
     r"line 5 .*dr=-0.005.*positive dr"),
    ("trunc", lambda L: L[:-3], read_setfl, r"r\*phi\(r\) block of Ni-Ni.*before end of file"),
    ("extra", lambda L: L[:206] + [L[206] + " 1.0"] + L[207:], read_setfl,   # last F line
     r"line 207 .*F\(rho\) block of Cu.*2 values on the line.*1 more value"),
    ("trailing", lambda L: L + ["1.0 2.0"], read_setfl, r"end of file after"),
    ("grid", lambda L: L[:4] + ["1001 0.05 1101 0.005"] + L[5:], read_setfl,
     r"line 5 .*5 values"),
    ("nrint", lambda L: L[:2] + ["1001 0.05 1101.5 0.005 5.0"] + L[3:], read_funcfl,
     r"line 3 .*'1101.5'.*integer"),
    ("ftrunc", lambda L: L[:-100], read_funcfl, r"rho\(r\) block.*before end of file"),
])
def test_malformed_files_raise_input_error(files, tmp_path, name, edit, reader, pattern):
    src = files["funcfl"] if reader is read_funcfl else files["setfl"]
    path = _break(src, tmp_path / f"bad_{name}.eam", edit)
    with pytest.raises(InputError, match=pattern) as info:
        reader(path)
    assert path in str(info.value)


def test_missing_file_and_bad_tables(tmp_path):
    with pytest.raises(InputError, match="readable EAM potential file"):
        read_setfl(tmp_path / "nope.eam.alloy")
    with pytest.raises(InputError, match="rphi"):
        EAMTables(elements=("A", "B"), atomic_numbers=(1, 2), masses=(1.0, 2.0),
                  lattice_constants=(0.0, 0.0), lattice_types=("", ""), nrho=5, drho=0.1,
                  nr=5, dr=0.1, cutoff=0.3, F=np.zeros((2, 5)), rho=np.zeros((2, 5)),
                  rphi=np.arange(20.0).reshape(2, 2, 5))


def test_unknown_element_names_symbol_and_file_elements(files):
    atoms = fcc_cu()
    atoms.symbols[4] = "Fe"
    atoms.calc = EAM.from_file(files["setfl"])
    with pytest.raises(InputError, match=r"Fe.*Cu, Ni") as info:
        atoms.get_potential_energy()
    assert os.path.basename(files["setfl"]) in str(info.value)


# --------------------------------------------------------------------------------------------
# Verlet skin: molecular dynamics with a reused neighbour list
# --------------------------------------------------------------------------------------------





def test_md_with_skin_matches_rebuild_every_step(files):
    """60 NVE steps of a hot CuNi alloy in a triclinic cell: Verlet list (skin 0.2 Å, serial
    and threaded) against a list rebuilt every step, 1e-12 relative."""
    atoms = sheared(alloy(fcc_cu(rattle=0.02)))
    serial = EAM.from_file(files["setfl"], skin=0.2)
    threaded = EAM.from_file(files["setfl"], skin=0.2, parallel=True)
    worst, builds = md_against_rebuild(atoms, [serial, threaded],
                                       EAM.from_file(files["setfl"], skin=0.0), steps=60,
                                       temperature_K=1200.0)
    assert worst.max() < 1e-12, worst
    assert 2 <= builds <= 20, builds


def test_skin_rebuild_rules_and_counter(files):
    t = read_eam(files["setfl"])
    rebuild_rules(alloy(fcc_cu()), EAM(t, skin=0.5), EAM(t, skin=0.0), 0.5)
    with pytest.raises(InputError, match="skin"):
        EAM(t, skin=-0.5)
