"""Benchmark: periodic alpha persistence (the complex on the torus) against GUDHI's open alpha
complex on the same points — the cost of periodicity.

Run with one command::

    python benchmarks/bench_topology.py                 # 10 000 atoms, amorphous-like
    python benchmarks/bench_topology.py --atoms 2000

The points are a jittered diamond lattice (density of silicon) in a cubic cell.  Timed: GUDHI's
``AlphaComplex`` of the points as an open cluster + its persistence, and
``scaleladder.topology.alpha_persistence(..., pbc=True)`` (GUDHI's alpha complex of the 27
images, the quotient to the torus, persistence).  Reported: both times, their ratio, the number
of simplices of each complex and the Betti numbers at the end (the torus's (1, 3, 3, 1) against
the cluster's (1, 0, 0)).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--atoms", type=int, default=10_000)
    ap.add_argument("--jitter", type=float, default=0.3, help="Å, random displacement")
    args = ap.parse_args()
    import gudhi
    from ase.build import bulk

    from scaleladder.topology import alpha_persistence

    reps = max(int(round((args.atoms / 8) ** (1 / 3))), 1)
    at = bulk("Si", "diamond", a=5.431, cubic=True).repeat(reps)
    x = at.positions + np.random.default_rng(0).normal(scale=args.jitter, size=at.positions.shape)
    cell = at.cell.array
    t0 = time.perf_counter()
    st = gudhi.AlphaComplex(points=x).create_simplex_tree()
    st.compute_persistence(homology_coeff_field=2, persistence_dim_max=True)
    t_open = time.perf_counter() - t0
    betti_open = st.betti_numbers()
    t0 = time.perf_counter()
    d = alpha_persistence(x, cell=cell, pbc=True)
    t_per = time.perf_counter() - t0
    print(f"{len(x)} atoms, cell {cell[0, 0]:.2f} Å, supercell {d.supercell}")
    print(f"  GUDHI open alpha complex + persistence: {t_open:7.2f} s  "
          f"({st.num_simplices()} simplices), Betti {betti_open}")
    print(f"  periodic alpha (torus) + persistence:   {t_per:7.2f} s  Betti {d.betti()}")
    print(f"  cost of periodicity: {t_per / t_open:.1f}x")


if __name__ == "__main__":
    main()
