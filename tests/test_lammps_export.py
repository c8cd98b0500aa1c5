"""A fitted potential exported to a LAMMPS file gives LAMMPS the same function (issue 3 export)."""
from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from scaleladder.atomistic import SW_SILICON, StillingerWeber, export_lammps
from scaleladder.atomistic.stillinger_weber import write_lammps_sw
from scaleladder.core.errors import InputError, MissingExtraError
from scaleladder.handoffs import FittedPotential


@pytest.fixture(scope="module")
def lammps_module():
    from scaleladder.atomistic._lammps import load_lammps

    try:
        return load_lammps()
    except MissingExtraError as exc:
        pytest.skip(f"LAMMPS cannot be loaded: {exc}")


def _lammps_energy_forces(lmp_mod, atoms, potfile):
    lmp = lmp_mod.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        c = [float(x) for x in np.diag(atoms.cell)]
        for cmd in ["units metal", "atom_style atomic", "atom_modify map array", "boundary p p p",
                    f"region box block 0 {c[0]!r} 0 {c[1]!r} 0 {c[2]!r} units box", "create_box 1 box",
                    "mass 1 28.0855", "pair_style sw", f"pair_coeff * * {potfile} Si"]:
            lmp.command(cmd)
        n = len(atoms)
        lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, atoms.get_positions(wrap=True).ravel().tolist())
        lmp.command("run 0")
        nlocal = lmp.extract_global("nlocal")
        ids = lmp.numpy.extract_atom("id")[:nlocal].copy()
        f = np.empty((n, 3))
        f[ids - 1] = lmp.numpy.extract_atom("f")[:nlocal]
        return lmp.get_thermo("pe"), f
    finally:
        lmp.close()


def _fitted(params, ensemble_row):
    fitted = ("epsilon", "sigma", "lambda", "B")
    return FittedPotential(form="StillingerWeber", species=("Si",), parameters=dict(params),
                           fitted=fitted, ensemble=np.array([[params[k] for k in fitted], ensemble_row]),
                           ensemble_method="test", training_domain={}, errors={}, units={},
                           provenance={})


def test_exported_fit_matches_lammps(lammps_module, tmp_path):
    params = dict(SW_SILICON, epsilon=2.05, sigma=2.11, B=0.58, **{"lambda": 24.5})
    fp = _fitted(params, [2.0, 2.12, 23.0, 0.6])
    atoms = bulk("Si", "diamond", a=5.45, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=3)
    for member in (None, 1):
        path = export_lammps(fp, tmp_path / f"fit{member}.sw", member=member)
        atoms.calc = StillingerWeber.from_fitted(fp, member=member)
        e, f = atoms.get_potential_energy(), atoms.get_forces()
        el, fl = _lammps_energy_forces(lammps_module, atoms, path)
        assert abs(e - el) < 1e-10 * abs(el)
        assert np.abs(f - fl).max() < 1e-9 * np.abs(fl).max()
    # the two members are different functions: the export follows the member
    assert open(tmp_path / "fitNone.sw").read() != open(tmp_path / "fit1.sw").read()


def test_export_bad_input(tmp_path):
    with pytest.raises(InputError, match="element"):
        write_lammps_sw(None, tmp_path / "x.sw", element="Xx")
    with pytest.raises(InputError, match="epsilon"):
        write_lammps_sw(dict(SW_SILICON, epsilon=-1.0), tmp_path / "x.sw")
    assert not (tmp_path / "x.sw").exists()
