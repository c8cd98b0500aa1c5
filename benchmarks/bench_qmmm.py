"""Overhead of the QM/MM couplings themselves, against the cost of one QM force call.

System: a 1000-molecule SPC/Fw water droplet (3000 atoms, open boundaries: electrostatic embedding
with PySCF needs an open system), QM region = the 4 molecules nearest the centre (12 atoms, >= 10
as the acceptance asks), QM = PySCF (PBE/def2-svp, density fitting; or GFN2-xTB with --xtb), MM =
FixedChargeForceField (no cutoff).  For each scheme one energy+forces call is timed in total, and
the QM and MM calculators' own ``calculate`` calls are timed separately (wrapped); the coupling's
overhead is the rest: region bookkeeping, link atoms, embedding charges, the classical QM-MM pair
terms, force assembly, the energy ledger.  The goal (issue 4): overhead <= 5 % of one QM force call.

Run:  python benchmarks/bench_qmmm.py            (PySCF; about a minute on 2 cores)
      python benchmarks/bench_qmmm.py --xtb      (GFN2-xTB QM, seconds)
"""
from __future__ import annotations

import argparse
import time

import numpy as np


class Timed:
    """Wrap a calculator's ``calculate`` and accumulate its wall time."""

    def __init__(self, calc):
        self.calc = calc
        self.seconds = 0.0
        inner = calc.calculate

        def calculate(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        calc.calculate = calculate


def _subset_timers(ff):
    """FixedChargeForceField.subset() returns new calculators: time those too."""
    timers = []
    inner = ff.subset

    def subset(*args, **kwargs):
        sub = inner(*args, **kwargs)
        timers.append(Timed(sub))
        return sub

    ff.subset = subset
    return timers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--xtb", action="store_true", help="GFN2-xTB instead of PySCF as QM engine")
    ap.add_argument("--molecules", type=int, default=1000)
    ap.add_argument("--qm-molecules", type=int, default=4)
    args = ap.parse_args()

    from scaleladder.atomistic.water import WATER_MODELS, water_cluster, water_forcefield
    from scaleladder.coupling import ONIOM, MechanicalEmbedding, PairInteractions, QMRegion
    from scaleladder.ladders.qmmm_water import qm_molecules

    atoms = water_cluster(args.molecules, seed=0)
    mols = qm_molecules(atoms, args.qm_molecules)
    qm_idx = sorted(3 * m + k for m in mols for k in range(3))
    region = QMRegion(atoms, qm_idx, links=None)
    m = WATER_MODELS["spc/fw"]
    lj = PairInteractions(lj={("O", "O"): (m.epsilon_O, m.sigma_O)})

    def qm_calc():
        if args.xtb:
            from scaleladder.electronic import XTBCalculator

            return XTBCalculator(method="GFN2-xTB")
        from scaleladder.electronic import PySCFCalculator

        return PySCFCalculator(xc="PBE", basis="def2-svp", density_fit=True, conv_tol=1e-8)

    schemes = {
        "ONIOM (subtractive)": lambda q, mm: ONIOM(q, mm, region),
        "additive, mechanical": lambda q, mm: MechanicalEmbedding(q, mm, region, interaction=lj),
    }
    if not args.xtb:
        from scaleladder.coupling.embedding import ElectrostaticEmbedding

        schemes["additive, electrostatic"] = lambda q, mm: ElectrostaticEmbedding(
            q, mm, region, interaction=lj, charge_scheme="none")

    # one QM force call on the bare QM molecules, for the 5 % yardstick (the second of two calls
    # at nearby geometries: a restarted SCF, as inside an MD run or an optimisation)
    bare = atoms[qm_idx]
    bare.calc = qm_calc()
    bare.get_forces()
    bare.positions += 1e-3 * np.random.default_rng(2).standard_normal(bare.positions.shape)
    t0 = time.perf_counter()
    bare.get_forces()
    t_qm_bare = time.perf_counter() - t0

    print(f"{len(atoms)} atoms, QM region {len(qm_idx)} atoms "
          f"({'GFN2-xTB' if args.xtb else 'PySCF PBE/def2-svp'}), MM: FixedChargeForceField SPC/Fw")
    print(f"one QM force call on the bare QM region: {t_qm_bare:.3f} s\n")
    print(f"{'scheme':26s} {'total s':>9s} {'QM s':>8s} {'MM s':>8s} {'overhead s':>11s} "
          f"{'overhead / QM call':>19s}")
    for name, make in schemes.items():
        q = qm_calc()
        ff = water_forcefield(atoms)
        tq, tm = Timed(q), Timed(ff)
        subs = _subset_timers(ff)
        calc = make(q, ff)
        work = atoms.copy()
        work.calc = calc
        work.get_forces()                      # warm-up: numba compilation, subsets built
        tq.seconds = tm.seconds = 0.0
        for s in subs:
            s.seconds = 0.0
        # move every atom a little: the QM, MM and coupling parts all recompute
        work.positions += 1e-3 * np.random.default_rng(1).standard_normal(work.positions.shape)
        t0 = time.perf_counter()
        work.get_forces()
        total = time.perf_counter() - t0
        t_mm = tm.seconds + sum(s.seconds for s in subs)
        over = total - tq.seconds - t_mm
        print(f"{name:26s} {total:9.3f} {tq.seconds:8.3f} {t_mm:8.3f} {over:11.4f} "
              f"{100 * over / t_qm_bare:18.2f} %")


if __name__ == "__main__":
    main()
