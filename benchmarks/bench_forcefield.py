"""Benchmark: FixedChargeForceField (numba) against OpenMM's CPU platform on a water box.

One command (OpenMM from the ``openmm`` extra)::

    python -m pip install -e ".[openmm]" && python benchmarks/bench_forcefield.py

System: 1000 SPC/Fw molecules (3000 atoms) at 0.997 g/cm³ (31.07 Å cubic box,
:func:`scaleladder.atomistic.water.water_box`), cutoff ``--cutoff`` Å (default 9), Coulomb
shifted to zero at the cutoff and truncated, unshifted LJ (``coulomb="direct", lj_shift=False``):
the same model as OpenMM's ``NonbondedForce.CutoffPeriodic`` with ``reactionFieldDielectric=1``
(built by :func:`openmm_system_from_forcefield`), so both engines compute the same energy; the
difference is printed before timing.

Timed (median of ``--reps`` after a warm-up), energy + forces each call:

* **MD-like call**: the atoms move by a small random step (0.002 Å rms) before every call, so
  both engines reuse their neighbour lists (scaleladder: Verlet skin ``--skin`` Å; OpenMM: its
  own padding) -- what a QM/MM MD step pays for the MM side;
* **cold call**: scaleladder with a fresh neighbour list every call (``skin=0``) against
  OpenMM after a large move (its list rebuilt too);
* scaleladder serial against OpenMM CPU with one thread; scaleladder serial and
  ``parallel=True`` on ``--threads`` numba threads against OpenMM CPU with ``Threads =
  --threads``.  The DSF scheme (``coulomb="dsf"``, erfc per pair) is timed too.

Ratios > 1 mean scaleladder is faster.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def _median(fn, reps):
    fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--molecules", type=int, default=1000)
    ap.add_argument("--cutoff", type=float, default=9.0)
    ap.add_argument("--skin", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)

    import numba
    from scaleladder.atomistic.openmm_calculator import (OpenMMCalculator,
                                                         openmm_system_from_forcefield)
    from scaleladder.atomistic.water import water_box, water_forcefield

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    atoms = water_box(args.molecules, seed=0)
    rng = np.random.default_rng(0)
    kw = dict(cutoff=args.cutoff, coulomb="direct", lj_shift=False)
    print(f"water box: {len(atoms)} atoms, {atoms.cell.lengths()[0]:.2f} Å, cutoff "
          f"{args.cutoff} Å, threads {args.threads}")

    ff_ref = water_forcefield(atoms, **kw)
    omm = OpenMMCalculator(openmm_system_from_forcefield(ff_ref, atoms), platform="CPU",
                           platform_properties={"Threads": str(args.threads)})
    e_sl = ff_ref.get_potential_energy(atoms)
    f_sl = ff_ref.get_forces(atoms)
    e_omm = omm.get_potential_energy(atoms)
    f_omm = omm.get_forces(atoms)
    print(f"same model: E scaleladder {e_sl:.6f} eV, OpenMM {e_omm:.6f} eV "
          f"(diff {e_sl - e_omm:.2e} eV); max |dF| {np.abs(f_sl - f_omm).max():.2e} eV/Å "
          f"(max |F| {np.abs(f_sl).max():.2f})")

    def md_like(calc, a):
        def step():
            a.positions += rng.normal(scale=0.002 / np.sqrt(3), size=a.positions.shape)
            calc.calculate(a, ["energy", "forces"], ["positions"])
        return step

    def cold_omm(a):
        def step():
            a.positions += rng.normal(scale=0.5, size=a.positions.shape)  # lists invalid
            omm.calculate(a, ["energy", "forces"], ["positions"])
            a.positions[:] = atoms.positions
        return step

    rows = []
    omm1 = OpenMMCalculator(openmm_system_from_forcefield(ff_ref, atoms), platform="CPU",
                            platform_properties={"Threads": "1"})
    t_omm1 = _median(md_like(omm1, atoms.copy()), args.reps)
    rows.append(("OpenMM CPU 1 thread, MD-like", t_omm1, 1.0))
    ff1 = water_forcefield(atoms, skin=args.skin, **kw)
    t = _median(md_like(ff1, atoms.copy()), args.reps)
    rows.append(("scaleladder serial, MD-like (vs OpenMM 1 thread)", t, t_omm1 / t))
    t_omm = _median(md_like(omm, atoms.copy()), args.reps)
    rows.append((f"OpenMM CPU {args.threads} threads, MD-like", t_omm, 1.0))
    for label, extra in (("serial", dict(parallel=False)), ("parallel", dict(parallel=True))):
        ff = water_forcefield(atoms, skin=args.skin, **kw, **extra)
        a = atoms.copy()
        t = _median(md_like(ff, a), args.reps)
        rows.append((f"scaleladder {label}, MD-like (skin {args.skin} Å, "
                     f"{ff.neighbour_builds} list builds)", t, t_omm / t))
        ffd = water_forcefield(atoms, skin=args.skin, cutoff=args.cutoff, coulomb="dsf",
                               **extra)
        t = _median(md_like(ffd, atoms.copy()), args.reps)
        rows.append((f"scaleladder {label}, DSF, MD-like", t, t_omm / t))
    t_omm_cold = _median(cold_omm(atoms.copy()), max(3, args.reps // 4))
    rows.append(("OpenMM CPU, cold (list rebuilt)", t_omm_cold, 1.0))
    for label, extra in (("serial", dict(parallel=False)), ("parallel", dict(parallel=True))):
        ff = water_forcefield(atoms, skin=0.0, **kw, **extra)
        a = atoms.copy()
        t = _median(md_like(ff, a), max(3, args.reps // 4))
        rows.append((f"scaleladder {label}, cold (skin 0)", t, t_omm_cold / t))
    print(f"\n{'engine':62s} {'ms/call':>9s} {'OpenMM/this':>12s}")
    for name, t, r in rows:
        print(f"{name:62s} {1e3 * t:9.2f} {r:12.2f}")


if __name__ == "__main__":
    main()
