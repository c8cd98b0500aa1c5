"""Tests of dataset generation (scaleladder.workflows.generate): builders, dedup, execution."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk, molecule
from ase.calculators.calculator import all_changes
from ase.calculators.emt import EMT

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:  # FlakyEMT must be importable by worker processes ("process" executor)
    sys.path.insert(0, TESTS)

from scaleladder.core.errors import ConvergenceError, InputError  # noqa: E402
from scaleladder.core.store import Store  # noqa: E402
from scaleladder.workflows import generate as G  # noqa: E402
from scaleladder.handoffs import ReferenceDataset  # noqa: E402

A_CU = 3.61


class FlakyEMT(EMT):
    """EMT that fails for cells above ``fail_above`` Å³/atom while the file ``flag`` exists.

    ``crash=False``: a ConvergenceError (a configuration that does not converge);
    ``crash=True``: a RuntimeError (a bug or a kill: the generation stops at once).
    """

    def __init__(self, flag: str, fail_above: float, crash: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.flag, self.fail_above, self.crash = flag, fail_above, crash

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        if os.path.exists(self.flag) and atoms.get_volume() / len(atoms) > self.fail_above:
            if self.crash:
                raise RuntimeError("simulated crash of the worker")
            raise ConvergenceError("simulated SCF failure",
                                   configuration=atoms.get_chemical_formula(),
                                   settings={"fail_above": self.fail_above},
                                   suggestion="remove the flag file")
        super().calculate(atoms, properties, system_changes)


def cell_of(atoms):
    return np.asarray(atoms.cell, dtype=float)


# ------------------------------------------------------------------------------------ builders
def test_ev_series_scales_the_lattice_parameter_for_any_crystal():
    for base in (bulk("Cu", "fcc", a=A_CU), bulk("NaCl", "rocksalt", a=5.64),
                 bulk("ZnO", "wurtzite", a=3.25, c=5.2, u=0.38)):
        series = G.ev_series(base, n=5, span=0.04)
        assert len(series) == 5
        s = np.array([a.info["lattice_scale"] for a in series])
        np.testing.assert_allclose(s, np.linspace(0.96, 1.04, 5), rtol=0, atol=1e-14)
        v = np.array([a.get_volume() for a in series])
        np.testing.assert_allclose(v, base.get_volume() * s ** 3, rtol=1e-12)
        for a, si in zip(series, s):
            np.testing.assert_allclose(cell_of(a), si * cell_of(base), atol=1e-12)
            np.testing.assert_allclose(a.get_scaled_positions(), base.get_scaled_positions(),
                                       atol=1e-12)
            assert a.info["label"] == "ev" and a.info["properties"] == ("energy", "stress")
            assert a.calc is None
        assert len({a.info["name"] for a in series}) == 5
    assert series[0].info["name"].startswith("ev_O2Zn2_")
    assert G.ev_series(base, n=2, prefix="wz")[0].info["name"].startswith("ev_wz_")


def test_strain_set_applies_exact_green_lagrange_strains():
    base = bulk("NaCl", "rocksalt", a=5.64)  # non-orthogonal primitive cell
    comps = ("xx", "zz", "yz", "xy")
    out = G.strain_set(base, max_strain=0.02, n_steps=2, components=comps)
    assert len(out) == 2 * 2 * len(comps)
    c0 = cell_of(base)
    seen = set()
    for a in out:
        e = np.array(a.info["voigt_strain"])
        # deformation gradient from the two cells (rows are cell vectors: c = c0 F^T)
        F = np.linalg.solve(c0, cell_of(a)).T
        np.testing.assert_allclose(F, F.T, atol=1e-14)  # rotation-free
        E = 0.5 * (F.T @ F - np.eye(3))
        voigt = np.array([E[0, 0], E[1, 1], E[2, 2], 2 * E[1, 2], 2 * E[0, 2], 2 * E[0, 1]])
        np.testing.assert_allclose(voigt, e, atol=1e-14)
        j = int(np.flatnonzero(e)[0])
        assert np.count_nonzero(e) == 1 and G.VOIGT_COMPONENTS[j] in comps
        assert round(abs(e[j]), 12) in (0.01, 0.02)
        seen.add((G.VOIGT_COMPONENTS[j], round(e[j], 12)))
        np.testing.assert_allclose(a.get_scaled_positions(), base.get_scaled_positions(),
                                   atol=1e-12)
        assert a.info["label"] == "strain" and a.info["strain_measure"] == "green-lagrange"
    assert len(seen) == len(out)  # every (component, value) once, both signs
    # the volume follows det F = sqrt(det(I + 2E)): e.g. uniaxial +2 %
    a = next(x for x in out if x.info["voigt_strain"][0] == 0.02)
    assert a.get_volume() / base.get_volume() == pytest.approx(math.sqrt(1.04), rel=1e-13)


def test_rattled_displacements_have_the_requested_statistics():
    base = bulk("Cu", "fcc", a=A_CU, cubic=True)
    out = G.rattled(base, supercell=(2, 2, 1), n=6, amplitude=0.07, seed=3)
    ref = base.repeat((2, 2, 1))
    assert len(out) == 6 and all(len(a) == 16 for a in out)
    d = np.array([a.positions - ref.positions for a in out])
    for a in out:
        np.testing.assert_allclose(cell_of(a), cell_of(ref), atol=0)
        assert a.info["label"] == "rattle"
        assert a.info["properties"] == ("energy", "forces", "stress")
    # 288 Gaussian components: the sample std is within ~4 standard errors (0.042 relative each)
    assert np.std(d) == pytest.approx(0.07, rel=0.17)
    assert abs(np.mean(d)) < 4 * 0.07 / math.sqrt(d.size)
    again = G.rattled(base, supercell=(2, 2, 1), n=6, amplitude=0.07, seed=3)
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(out, again))
    other = G.rattled(base, supercell=(2, 2, 1), n=1, amplitude=0.07, seed=4)
    assert not np.allclose(other[0].positions, out[0].positions)


def _planes(slab, tol=1e-6):
    z = np.sort(slab.positions[:, 2])
    return z[np.concatenate(([True], np.diff(z) > tol))]


def test_slabs_have_the_right_layers_spacing_and_vacuum():
    a = A_CU
    base = bulk("Cu", "fcc", a=a, cubic=True)
    s111, s100 = G.slabs(base, miller=[(1, 1, 1), (1, 0, 0)], layers=4, vacuum=7.0)
    one = G.slabs(base, miller=(1, 1, 1), layers=1, vacuum=7.0)[0]
    assert len(s111) == 4 * len(base) and len(s100) == 4 * len(base)
    # ASE's layers repeat the bulk cell along the normal: 4x the atomic planes of one repetition
    p111, p100 = _planes(s111), _planes(s100)
    assert len(p111) == 4 * len(_planes(one))
    np.testing.assert_allclose(np.diff(p111), a / math.sqrt(3), rtol=1e-9)  # fcc (111) spacing
    np.testing.assert_allclose(np.diff(p100), a / 2, rtol=1e-9)             # fcc (100) spacing
    for s in (s111, s100):
        c = cell_of(s)
        assert abs(c[0, 2]) < 1e-10 and abs(c[1, 2]) < 1e-10  # surface in the xy plane
        thickness = np.ptp(s.positions[:, 2])
        assert c[2, 2] - thickness == pytest.approx(2 * 7.0, abs=1e-9)  # vacuum on each side
        assert s.pbc.all() and s.info["label"] == "slab"
    assert s111.info["name"] != s100.info["name"] and s111.info["miller"] == [1, 1, 1]


def _perovskite():
    a = 3.905
    return Atoms("SrTiO3", scaled_positions=[[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5],
                                             [0, .5, .5]], cell=[a, a, a], pbc=True)


@pytest.mark.parametrize("method", ["spglib", "ase"])
def test_vacancies_one_per_inequivalent_site(method):
    if method == "spglib":
        pytest.importorskip("spglib")
    si = G.vacancies(bulk("Si", "diamond", a=5.43), supercell=(2, 2, 2), equivalence=method)
    assert len(si) == 1 and len(si[0]) == 2 * 8 - 1 and si[0].info["multiplicity"] == 2
    assert si[0].info["equivalence_method"].startswith(method)
    # conventional cell: the fcc centring translations make all 8 sites equivalent
    si8 = G.vacancies(bulk("Si", "diamond", a=5.43, cubic=True), supercell=1, equivalence=method)
    assert len(si8) == 1 and len(si8[0]) == 7 and si8[0].info["multiplicity"] == 8
    nacl = G.vacancies(bulk("NaCl", "rocksalt", a=5.64), supercell=(2, 2, 2), equivalence=method)
    assert sorted(v.info["vacancy_symbol"] for v in nacl) == ["Cl", "Na"]
    for v in nacl:
        assert len(v) == 15
        syms = v.get_chemical_symbols()
        missing = v.info["vacancy_symbol"]
        assert syms.count(missing) == 7 and len(syms) - syms.count(missing) == 8
    sto = G.vacancies(_perovskite(), supercell=1, equivalence=method)
    mult = {v.info["vacancy_symbol"]: v.info["multiplicity"] for v in sto}
    assert mult == {"Sr": 1, "Ti": 1, "O": 3}  # the three O are related by the cubic 3-fold axis
    # a cell with no symmetry: every site its own class
    p1 = Atoms("Si3", scaled_positions=[[0, 0, 0], [.31, .12, .05], [.57, .43, .71]],
               cell=[4.0, 5.0, 6.0], pbc=True)
    assert len(G.vacancies(p1, supercell=1, equivalence=method)) == 3


def test_vacancies_site_selection():
    nacl = bulk("NaCl", "rocksalt", a=5.64)
    only_cl = G.vacancies(nacl, sites=["Cl"])
    assert [v.info["vacancy_symbol"] for v in only_cl] == ["Cl"]
    given = G.vacancies(nacl, supercell=1, sites=[1, 0])
    assert [v.info["vacancy_site"] for v in given] == [1, 0]
    assert given[0].get_chemical_symbols() == ["Na"]


def test_md_snapshots_count_and_temperature():
    base = bulk("Cu", "fcc", a=3.59, cubic=True).repeat((2, 2, 2))  # EMT's lattice constant
    T, n = 300.0, 16
    snaps = G.md_snapshots(base, EMT(), T, n_snapshots=n, interval_steps=20, timestep_fs=2.0,
                           seed=1, friction_per_fs=0.025)
    assert len(snaps) == n and len({s.info["name"] for s in snaps}) == n
    N = len(base)
    dof = 3 * N - 3  # centre of mass fixed
    t_kin = np.array([np.sum(s.get_momenta() ** 2 / s.get_masses()[:, None]) / (dof * units.kB)
                      for s in snaps])
    np.testing.assert_allclose(t_kin, [s.info["kinetic_temperature_K"] for s in snaps], rtol=1e-10)
    np.testing.assert_allclose(np.sum(snaps[0].get_momenta(), axis=0), 0.0, atol=1e-10)
    # canonical ensemble: T_kin/T has relative std sqrt(2/dof) per snapshot (0.147 here); the mean
    # of n uncorrelated snapshots is within 4 standard errors (15 %)
    sigma = T * math.sqrt(2.0 / dof) / math.sqrt(n)
    assert abs(t_kin.mean() - T) < 4 * sigma
    # positions are thermalised too: equipartition of the (nearly harmonic) potential energy
    ref = base.copy()
    ref.calc = EMT()
    e0 = ref.get_potential_energy()
    du = []
    for s in snaps:
        x = s.copy()
        x.calc = EMT()
        du.append(x.get_potential_energy() - e0)
    t_pot = 2.0 * np.mean(du) / (dof * units.kB)
    assert t_pot == pytest.approx(T, rel=0.25)
    assert all(s.calc is None and not s.constraints and s.info["label"] == "md" for s in snaps)
    with pytest.warns(UserWarning, match="correlated"):
        G.md_snapshots(base, EMT(), T, n_snapshots=1, interval_steps=1, equilibration_steps=0)


@pytest.mark.parametrize("call, field", [
    (lambda: G.slabs(bulk("Cu"), miller=(0, 0, 0)), "miller"),
    (lambda: G.slabs(bulk("Cu"), layers=0), "layers"),
    (lambda: G.slabs(bulk("Cu"), vacuum=-1.0), "vacuum"),
    (lambda: G.rattled(bulk("Cu"), amplitude=-0.05), "amplitude"),
    (lambda: G.rattled(bulk("Cu"), n=0), "n"),
    (lambda: G.rattled(bulk("Cu"), supercell=(0, 1, 1)), "supercell"),
    (lambda: G.ev_series(bulk("Cu"), n=1), "n"),
    (lambda: G.ev_series(bulk("Cu"), span=0.5), "span"),
    (lambda: G.ev_series(molecule("H2O")), "atoms.pbc"),
    (lambda: G.ev_series("Cu"), "atoms"),
    (lambda: G.strain_set(bulk("Cu"), max_strain=0.0), "max_strain"),
    (lambda: G.strain_set(bulk("Cu"), components=("xx", "ab")), "components"),
    (lambda: G.strain_set(bulk("Cu"), components=("xx", "xx")), "components"),
    (lambda: G.vacancies(bulk("NaCl", "rocksalt", a=5.64), sites=["Au"]), "sites"),
    (lambda: G.vacancies(bulk("NaCl", "rocksalt", a=5.64), sites=[5]), "sites"),
    (lambda: G.md_snapshots(bulk("Cu", cubic=True), EMT(), -5.0, 1, 1), "temperature_K"),
    (lambda: G.md_snapshots(bulk("Cu", cubic=True), None, 300.0, 1, 1), "calc"),
    (lambda: G.md_snapshots(bulk("Cu", cubic=True), EMT(), 300.0, 0, 1), "n_snapshots"),
    (lambda: G.deduplicate([bulk("Cu")], tolerance=-1.0), "tolerance"),
    (lambda: G.engine_spec({"engine": "vasp"}), "calculator['engine']"),
    (lambda: G.engine_spec({"engine": "emt", "params": {"x": object()}}), "calculator['params']"),
    (lambda: G.generate_dataset([bulk("Cu")], {"engine": "emt", "params": {"nonsense": 1}},
                                progress=False), "calculator['params']"),
    (lambda: G.generate_dataset([_named(bulk("Cu"), "x"), _named(bulk("Cu", a=3.7), "x")],
                                {"engine": "emt"}, progress=False), "structures"),
    (lambda: G.generate_dataset([bulk("Cu")], {"engine": "emt"}, properties=("energy", "bogus"),
                                progress=False), "properties"),
    (lambda: G.generate_dataset([bulk("Cu")], {"engine": "emt"}, on_failure="ignore"),
     "on_failure"),
])
def test_inputs_are_validated_naming_the_field(call, field):
    with pytest.raises(InputError) as err:
        call()
    assert err.value.field == field


# ------------------------------------------------------------------------------- deduplication
def _copies():
    base = G.rattled(bulk("Si", "diamond", a=5.43, cubic=True), supercell=1, n=2, amplitude=0.05)
    a, other = base
    moved = a.copy()  # translated by a non-lattice vector, wrapped, atoms permuted
    moved.positions += [1.3, -0.7, 2.2]
    moved.wrap()
    moved = moved[np.random.default_rng(1).permutation(len(moved))]
    moved.info["name"] = "translated"
    basis = a.copy()  # the same lattice described by another basis
    c = cell_of(a)
    basis.set_cell([c[0], c[1] + c[0], c[2] - c[1]])
    basis.wrap()
    basis.info["name"] = "basis"
    rotated = a.copy()
    rotated.rotate(90, "z", rotate_cell=True)
    rotated.info["name"] = "rotated"
    mirror = a.copy()
    mirror.positions[:, 0] *= -1
    cm = cell_of(a)
    cm[:, 0] *= -1
    mirror.set_cell(cm)
    mirror.info["name"] = "mirror"
    nudged = a.copy()  # one atom moved by 0.01 Å: distinct at tolerance 1e-3 Å
    nudged.positions[3] += [0.01, 0.0, 0.0]
    nudged.info["name"] = "nudged"
    return [a, moved, basis, rotated, mirror, nudged, other]


def test_deduplicate_translation_permutation_and_symmetry():
    structs = _copies()
    kept, rep = G.deduplicate(structs)
    assert [k.info["name"] for k in kept] == [structs[i].info["name"] for i in (0, 3, 4, 5, 6)]
    assert {d["name"]: (d["duplicate_of"], d["reason"]) for d in rep.dropped} == {
        "translated": (0, "translation"), "basis": (0, "translation")}
    assert all(d["max_displacement_A"] < 1e-9 for d in rep.dropped)
    kept, rep = G.deduplicate(structs, symmetry=True)
    assert [k.info["name"] for k in kept] == [structs[i].info["name"] for i in (0, 5, 6)]
    assert {d["name"]: d["reason"] for d in rep.dropped} == {
        "translated": "translation", "basis": "translation", "rotated": "symmetry",
        "mirror": "symmetry"}
    assert kept[0] is structs[0]
    # the nudge is found at a tolerance above it
    kept, _ = G.deduplicate(structs, tolerance=0.02)
    assert "nudged" not in [k.info["name"] for k in kept]


def test_deduplicate_strains_of_a_cubic_crystal_by_its_point_group():
    strains = G.strain_set(bulk("Cu", "fcc", a=A_CU), max_strain=0.01)
    kept, rep = G.deduplicate(strains)
    assert len(kept) == 12 and not rep.dropped
    kept, rep = G.deduplicate(strains, symmetry=True)
    # O_h: {+xx,+yy,+zz}, {-xx,-yy,-zz} and all six shears (mirrors flip their sign) are classes
    assert [k.info["name"] for k in kept] == ["strain_Cu_xx_+0.01000", "strain_Cu_xx_-0.01000",
                                              "strain_Cu_yz_+0.01000"]
    assert rep.n_prefiltered > 0  # +xx vs -xx differ in volume: told apart before any matching


def test_deduplicate_vacancies_agrees_with_site_symmetry():
    # a vacancy at every site of the conventional rock-salt cell: 8 structures, 2 classes
    nacl = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    every = G.vacancies(nacl, supercell=1, sites=list(range(len(nacl))))
    kept, rep = G.deduplicate(every, symmetry=True)
    assert sorted(k.info["vacancy_symbol"] for k in kept) == ["Cl", "Na"]
    assert len(rep.dropped) == 6


def test_deduplicate_a_reference_dataset():
    structs = G.ev_series(bulk("Cu", "fcc", a=A_CU), n=3)
    copy = structs[1].copy()
    copy.info["name"] = "copy_of_middle"
    ds = G.generate_dataset(structs + [copy], {"engine": "emt"}, progress=False)
    out, rep = G.deduplicate(ds)
    assert isinstance(out, ReferenceDataset) and out.names == ds.names[:3]
    assert out.method == ds.method and rep.dropped[0]["name"] == "copy_of_middle"


# ---------------------------------------------------------------------------------- execution
def _emt_reference(atoms):
    a = atoms.copy()
    a.calc = EMT()
    return a.get_potential_energy(), a.get_forces(), a.get_stress() if a.pbc.all() else None


def _named(atoms, name):
    atoms.info["name"] = name
    return atoms


def test_generate_dataset_with_emt_matches_direct_calculations(tmp_path):
    cu = bulk("Cu", "fcc", a=A_CU)
    cluster = Atoms("Cu3", positions=[[0, 0, 0], [2.5, 0, 0], [1.2, 2.1, 0.3]])
    cluster.info.update(label="cluster", name="cu3")
    structs = G.ev_series(cu, n=5, span=0.002) + G.rattled(cu, supercell=2, n=1) + [cluster]
    ds = G.generate_dataset(structs, {"engine": "emt"}, store=Store(tmp_path / "s"), progress=False)
    assert ds.names == tuple(a.info["name"] for a in structs)
    assert ds.labels == ("ev",) * 5 + ("rattle", "cluster")
    assert ds.method["engine"] == "emt" and ds.method["params"] == {}
    for conf, atoms in zip(ds, structs):
        e, f, s = _emt_reference(atoms)
        assert conf.energy == pytest.approx(e, abs=1e-12)
        np.testing.assert_allclose(conf.positions, atoms.positions, atol=0)
        if atoms.info["label"] == "ev":  # properties from the builder: energy and stress only
            assert conf.forces is None
            np.testing.assert_allclose(conf.stress, s, atol=1e-12)
        else:
            np.testing.assert_allclose(conf.forces, f, atol=1e-12)
    assert ds[-1].stress is None  # not periodic: no stress even though it was asked for
    # units and sign carried through: tr(stress)/3 = dE/dV (ASE sign) by central differences
    ev = ds.select("ev")
    v, e = np.array([c.volume for c in ev]), np.array([c.energy for c in ev])
    dedv = (e[3] - e[1]) / (v[3] - v[1])
    assert np.mean(ev[2].stress[:3]) == pytest.approx(dedv, rel=2e-3)


def test_engine_spec_is_normalised_and_keys_ignore_names(tmp_path):
    a = G.engine_spec({"engine": "pyscf",
                       "params": {"kpts": (2, 2, 2), "ke_cutoff": np.float64(20)}})
    b = G.engine_spec({"engine": "pyscf", "params": {"kpts": [2, 2, 2], "ke_cutoff": 20.0}})
    assert a == b == {"engine": "pyscf", "params": {"kpts": [2, 2, 2], "ke_cutoff": 20.0},
                      "file": None, "species": []}
    store = Store(tmp_path / "s")
    structs = G.ev_series(bulk("Cu", "fcc", a=A_CU), n=3)
    first = G.run_generation(structs, {"engine": "emt"}, store=store, progress=False)
    renamed = [s.copy() for s in structs]
    for i, s in enumerate(renamed):
        s.info["name"], s.info["label"] = f"renamed-{i}", "other"
    again = G.run_generation(renamed, {"engine": "emt"}, store=store, progress=False)
    assert again.stats.computed == 0 and again.stats.reused == 3
    assert again.dataset.labels == ("other",) * 3
    assert [c.energy for c in again.dataset] == [c.energy for c in first.dataset]
    # another engine setting is another computation
    other = G.run_generation(structs, {"engine": "emt", "params": {"asap_cutoff": True}},
                             store=store, progress=False)
    assert other.stats.computed == 3


def _flaky_structures():
    cu = bulk("Cu", "fcc", a=A_CU)
    ev = G.ev_series(cu, n=4, span=0.03)
    # the largest cell fails; it sits in the middle of the list
    structs = ev[:3] + [ev[3]] + G.strain_set(cu, components=("xx", "yz"))
    v3 = ev[3].get_volume() / len(ev[3])
    v2 = ev[2].get_volume() / len(ev[2])
    return structs, 0.5 * (v2 + v3)


def test_failed_configuration_keeps_the_rest_and_resumes_local(tmp_path):
    structs, threshold = _flaky_structures()
    flag = tmp_path / "fail"
    flag.write_text("fail")
    spec = {"engine": "ase", "calculator": "test_generate:FlakyEMT",
            "params": {"flag": str(flag), "fail_above": threshold}}
    store = Store(tmp_path / "store")
    bad = structs[3].info["name"]
    with pytest.raises(ConvergenceError) as err:
        G.generate_dataset(structs, spec, store=store, progress=False)
    assert bad in str(err.value) and "1 of 8" in str(err.value)
    assert len(store.keys(stage="workflows.generate.single_point")) == 7  # nothing else lost
    with pytest.warns(UserWarning, match=bad):
        partial = G.generate_dataset(structs, spec, store=store, progress=False, on_failure="skip")
    assert len(partial) == 7 and bad not in partial.names
    rep = G.run_generation(structs, spec, store=store, progress=False)
    assert (rep.stats.computed, rep.stats.reused) == (0, 7) and list(rep.failed) == [bad]
    assert rep.failure_types[bad] == "ConvergenceError"
    flag.unlink()  # "fix" the failing configuration
    rep = G.run_generation(structs, spec, store=store, progress=False)
    assert (rep.stats.computed, rep.stats.reused) == (1, 7) and rep.computed == (bad,)
    assert rep.dataset.names == tuple(s.info["name"] for s in structs) and not rep.failed
    fresh = G.generate_dataset(structs, {"engine": "emt"}, progress=False)
    assert [c.energy for c in rep.dataset] == [c.energy for c in fresh]


def test_interrupted_generation_resumes(tmp_path):
    structs, threshold = _flaky_structures()
    flag = tmp_path / "fail"
    flag.write_text("crash")
    spec = {"engine": "ase", "calculator": "test_generate:FlakyEMT",
            "params": {"flag": str(flag), "fail_above": threshold, "crash": True}}
    store = Store(tmp_path / "store")
    with pytest.raises(RuntimeError, match="simulated crash"):  # not a convergence failure: stop
        G.generate_dataset(structs, spec, store=store, progress=False)
    assert len(store.keys(stage="workflows.generate.single_point")) == 3  # those before the crash
    flag.unlink()
    rep = G.run_generation(structs, spec, store=store, progress=False)
    assert (rep.stats.computed, rep.stats.reused) == (5, 3)
    assert rep.reused == tuple(s.info["name"] for s in structs[:3])


def test_failure_and_resume_with_process_executor(tmp_path):
    structs, threshold = _flaky_structures()
    flag = tmp_path / "fail"
    flag.write_text("fail")
    spec = {"engine": "ase", "calculator": "test_generate:FlakyEMT",
            "params": {"flag": str(flag), "fail_above": threshold}}
    root = tmp_path / "store"
    rep = G.run_generation(structs, spec, store=root, executor="process", progress=False)
    bad = structs[3].info["name"]
    assert list(rep.failed) == [bad] and "simulated SCF failure" in rep.failed[bad]
    assert rep.stats.computed == 7 and len(rep.dataset) == 7
    flag.unlink()
    rep = G.run_generation(structs, spec, store=root, executor="process", progress=False)
    assert (rep.stats.computed, rep.stats.reused) == (1, 7) and len(rep.dataset) == 8
    # the stored dataset decodes in a fresh process that imported nothing of scaleladder
    code = ("import sys; from scaleladder.core.store import Store; "
            f"d = Store({str(root)!r}).get({rep.dataset_key!r}); "
            "print(type(d).__module__, type(d).__name__, len(d), d.method['engine'], d[0].energy)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, check=True).stdout.split()
    assert out[:5] == ["scaleladder.handoffs.dataset", "ReferenceDataset", "8", "ase",
                       repr(rep.dataset[0].energy)]


def test_the_guide_example_runs(tmp_path, monkeypatch):
    import re

    guide = Path(__file__).resolve().parents[1] / "docs" / "datasets.md"
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(), flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)  # the example writes its store in the working directory
    for code in blocks:
        namespace: dict = {}
        exec(compile(code, str(guide), "exec"), namespace)  # noqa: S102 - our own guide
    ds, rep = namespace["dataset"], namespace["report"]
    # symmetry-equivalent strains are dropped (cubic: ±xx and one shear remain of the 12)
    assert len(ds.select("strain")) == 3 and len(rep.dropped) >= 9
    assert len(ds.select("vacancy")) == 1 and len(ds.select("md")) == 4


def _xtb_available():
    import importlib.util

    try:
        return all(importlib.util.find_spec(m) is not None
                   for m in ("tblite.interface", "scaleladder.electronic.xtb"))
    except ImportError:
        return False


@pytest.mark.skipif(not _xtb_available(),
                    reason="tblite / scaleladder.electronic.xtb not importable")
def test_xtb_engine_and_a_real_convergence_failure(tmp_path):
    from scaleladder.electronic.xtb import XTBCalculator

    water = molecule("H2O")
    water.info.update(name="water", label="molecule")
    ds = G.generate_dataset([water], {"engine": "xtb", "params": {"method": "GFN2-xTB"}},
                            store=Store(tmp_path / "s"), progress=False)
    ref = water.copy()
    ref.calc = XTBCalculator(method="GFN2-xTB")
    assert ds[0].energy == pytest.approx(ref.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(ds[0].forces, ref.get_forces(), atol=1e-8)
    assert ds.method["engine"] == "xtb" and ds.method["method"] == "GFN2-xTB"
    rep = G.run_generation([water], {"engine": "xtb", "params": {"max_iterations": 2}},
                           progress=False)
    assert rep.dataset is None and rep.failure_types == {"water": "ConvergenceError"}


@pytest.mark.slow
def test_pyscf_engine_matches_compute_configuration(tmp_path):
    from scaleladder.electronic import compute_configuration

    params = {"xc": "LDA", "basis": "gth-szv", "pseudo": "gth-pade", "kpts": [1, 1, 1],
              "ke_cutoff": 10.0}
    si = G.ev_series(bulk("Si", "diamond", a=5.43), n=2, span=0.01)
    ds = G.generate_dataset(si, {"engine": "pyscf", "params": params}, store=Store(tmp_path / "s"),
                            progress=False)
    for conf, atoms in zip(ds, si):
        ref = compute_configuration(atoms, params, properties=("energy", "stress"))
        assert conf.energy == pytest.approx(ref["energy"], abs=1e-6)
        np.testing.assert_allclose(conf.stress, ref["stress"], atol=1e-6)
    assert ds.method["code"] == "pyscf" and ds.method["xc"] == "LDA"
    assert json.loads(json.dumps(ds.method)) == ds.method
