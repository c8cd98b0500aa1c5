"""The silicon-mlip ladder's DFT-side formulas, checked with Stillinger-Weber standing in for
DFT (where the exact answers are known from the potential itself): elastic constants from the
flagship's strained cells, the Kleinman internal-strain relaxation of C44 from two force
calculations, and the slab surface energy against its oriented-bulk reference."""
from __future__ import annotations

import types

import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from scaleladder.atomistic import StillingerWeber, elastic_constants, surface_energy
from scaleladder.handoffs import ReferenceDataset
from scaleladder.ladders import silicon_mlip as M
from scaleladder.workflows.silicon import silicon_configurations

A0 = 5.431          # SW's zero-pressure lattice constant (Stillinger-Weber 1985)


def _point(structure, calc):
    at = structure.to_atoms()
    at.calc = calc
    out = {"numbers": list(at.numbers), "positions": at.positions.tolist(),
           "cell": np.asarray(at.cell).tolist(), "pbc": list(at.pbc),
           "energy": at.get_potential_energy(), "forces": at.get_forces().tolist(),
           "stress": at.get_stress().tolist() if all(at.pbc) else None, "name": structure.info["name"]}
    return out


@pytest.fixture(scope="module")
def sw_case():
    sw = StillingerWeber()
    eos = types.SimpleNamespace(a0=types.SimpleNamespace(value=A0))
    structs = M.dft_structures.fn(eos, 4, 5.0, 0.01, 0.02)
    pts = {k: _point(structs[k], sw) for k in ("slab", "slab_bulk", "shear", "shift", "vacancy")}
    confs = silicon_configurations(A0, n_rattle=0, n_heldout=0)
    for at in confs:
        at.calc = sw
        at.calc = SinglePointCalculator(at, energy=at.get_potential_energy(),
                                        forces=at.get_forces(), stress=at.get_stress())
    ds = ReferenceDataset.from_atoms(confs, {"code": "sw"}, labels=[a.info["label"] for a in confs])
    return sw, structs, pts, ds


def test_elastic_constants_from_strained_cells_and_kleinman_relaxation(sw_case):
    sw, structs, pts, ds = sw_case
    from ase.build import bulk

    res = M.dft_elastic.fn(ds, pts["shear"], pts["shift"], structs)
    at = bulk("Si", "diamond", a=A0, cubic=True)
    clamped = np.asarray(elastic_constants(at, sw, relax_ions=False).voigt.value)
    relaxed = np.asarray(elastic_constants(at, sw, relax_ions=True).voigt.value)
    # the least-squares fit of the +-1 % strained 2-atom cells: the clamped-ion tensor
    assert res["clamped"]["C11"] == pytest.approx(clamped[0, 0], rel=0.01)
    assert res["clamped"]["C12"] == pytest.approx(clamped[0, 1], rel=0.01)
    assert res["clamped"]["C44"] == pytest.approx(clamped[3, 3], rel=0.01)
    # two force calculations give the internal relaxation of C44: SW's relaxed-ion 56.4 GPa
    assert res["relaxed"]["C44"] == pytest.approx(relaxed[3, 3], rel=0.03)
    assert res["relaxed"]["C44"] == pytest.approx(56.4, rel=0.03)
    assert res["kleinman"]["C44_relaxation_GPa"] > 0.3 * clamped[3, 3]


def test_slab_surface_energy_against_its_oriented_bulk(sw_case):
    sw, structs, pts, ds = sw_case
    from ase.build import bulk

    g = M.dft_surface.fn(pts["slab"], pts["slab_bulk"], structs)["gamma111_unrelaxed"]
    ref = surface_energy(bulk("Si", "diamond", a=A0), sw, miller=(1, 1, 1), layers=8, relax=False)
    assert g == pytest.approx(float(ref.value.value), rel=1e-6)     # SW: 1.36 J/m² unrelaxed
    # the oriented bulk is bulk: the same energy per atom as the 2-atom cell
    b = bulk("Si", "diamond", a=A0)
    b.calc = sw
    assert pts["slab_bulk"]["energy"] / 6 == pytest.approx(b.get_potential_energy() / 2, abs=1e-9)
