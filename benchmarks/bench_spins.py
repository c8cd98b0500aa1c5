"""Benchmark: spin updates per second of the spin Monte Carlo kernels (mesoscale/spins.py).

Run with one command::

    python benchmarks/bench_spins.py                 # defaults: 2D Ising L=256, 3D Heisenberg L=32
    python benchmarks/bench_spins.py --steps 200 --threads 2

Rows (after a JIT warm-up and thermalisation at the critical temperature, where clusters are
largest and Metropolis acceptance is moderate; median of ``--reps`` repeats):

* ``Ising Metropolis``        -- single-spin flips attempted per second (N per sweep, random sites).
* ``Ising Wolff``             -- spins flipped per second inside Wolff clusters.
* ``Heisenberg Metropolis``   -- attempts per second (new random direction each).
* ``Heisenberg over-relax``   -- deterministic reflections per second.
* ``Heisenberg Wolff``        -- spins flipped per second (Wolff embedding).

``1 thread`` is one chain; ``N threads`` runs N independent chains (what a temperature scan does)
in Python threads -- the kernels release the GIL (``nogil=True``) -- and reports the aggregate.
No measurement inside the timed loop (energy/magnetisation cost O(N) per step on top).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

import numpy as np

from scaleladder.core.units import BOLTZMANN_EV
from scaleladder.handoffs.magnetism import ExchangeParameters, HamiltonianConvention
from scaleladder.mesoscale import spins as sp
from scaleladder.uq import Estimate

J = 0.01
CONV = HamiltonianConvention("minus", "per_bond", "unit")


def square(L):
    p = ExchangeParameters(cell=np.diag([1.0, 1.0, 10.0]), positions=[[0, 0, 0]], species=["X"],
                           J=Estimate([J], "eV"), convention=CONV, spin=1.0, shells=[1.0],
                           pbc=(True, True, False))
    return sp.build_lattice(p, L), 2 * J / (BOLTZMANN_EV * np.log(1 + np.sqrt(2)))


def cubic(L):
    p = ExchangeParameters(cell=np.eye(3), positions=[[0, 0, 0]], species=["X"],
                           J=Estimate([J], "eV"), convention=CONV, spin=1.0, shells=[1.0])
    return sp.build_lattice(p, L), 1.443 * J / BOLTZMANN_EV


def make_chain(lat, model, T, seed):
    st = sp.init_state(lat, model, seed=seed)
    n = lat.n_sites
    return dict(st=st, beta=1.0 / (BOLTZMANN_EV * T), mark=np.zeros(n, np.int64),
                stack=np.zeros(n, np.int64), e=np.zeros(0), m=np.zeros(0))


def step(lat, model, kind, c, steps, n_clusters):
    """Run ``steps`` steps of ``kind``; return the number of spin updates."""
    st = c["st"]
    args = (st.spins, lat.offsets, lat.neighbours, lat.couplings, c["beta"], st.rng, steps)
    if model == "ising":
        alg = 0 if kind == "metropolis" else 1
        a, f, cl, tag = sp._run_ising(*args, alg, n_clusters, c["mark"], c["stack"], st.tag,
                                      c["e"], c["m"], False)
    else:
        if kind == "overrelax":
            for _ in range(steps):
                sp._heis_overrelax(st.spins, lat.offsets, lat.neighbours, lat.couplings)
            return steps * lat.n_sites
        alg = 0 if kind == "metropolis" else 1
        a, f, cl, tag = sp._run_heis(*args, alg, n_clusters, 0, c["mark"], c["stack"], st.tag,
                                     c["e"], c["m"], False)
    st.tag = tag
    return steps * lat.n_sites if kind == "metropolis" else f


def clusters_per_step(lat, model, c, rounds=40):
    """Thermalise with Wolff while adapting the clusters per step to flip about N spins."""
    ncl = 1
    for _ in range(rounds):
        f = step(lat, model, "wolff", c, 1, ncl)
        ncl = max(1, int(round(lat.n_sites * ncl / max(f, 1))))
    return ncl


def measure(lat, model, kind, T, steps, reps, threads):
    chains = [make_chain(lat, model, T, seed) for seed in range(threads)]
    ncl = 1
    for c in chains:  # warm-up / thermalise (also JIT)
        if kind == "wolff":
            ncl = clusters_per_step(lat, model, c)
        step(lat, model, kind if kind != "overrelax" else "metropolis", c, 20, ncl)
    rates = []
    for _ in range(reps):
        counts = [0] * threads

        def work(k):
            counts[k] = step(lat, model, kind, chains[k], steps, ncl)

        t0 = time.perf_counter()
        if threads == 1:
            work(0)
        else:
            ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        rates.append(sum(counts) / (time.perf_counter() - t0))
    return statistics.median(rates)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--L2d", type=int, default=256, help="2D Ising linear size")
    ap.add_argument("--L3d", type=int, default=32, help="3D Heisenberg linear size")
    ap.add_argument("--steps", type=int, default=100, help="MC steps per timed repeat")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="independent chains for the N-thread column")
    a = ap.parse_args(argv)
    lat2, tc2 = square(a.L2d)
    lat3, tc3 = cubic(a.L3d)
    rows = [("Ising Metropolis", lat2, "ising", "metropolis", tc2),
            ("Ising Wolff", lat2, "ising", "wolff", tc2),
            ("Heisenberg Metropolis", lat3, "heisenberg", "metropolis", tc3),
            ("Heisenberg over-relax", lat3, "heisenberg", "overrelax", tc3),
            ("Heisenberg Wolff", lat3, "heisenberg", "wolff", tc3)]
    print(f"spin updates per second at T_c (2D Ising {a.L2d}^2 = {lat2.n_sites} spins, "
          f"3D Heisenberg {a.L3d}^3 = {lat3.n_sites} spins)")
    print(f"{'kernel':<24}{'1 thread':>14}{f'{a.threads} threads':>14}")
    for name, lat, model, kind, T in rows:
        r1 = measure(lat, model, kind, T, a.steps, a.reps, 1)
        rn = measure(lat, model, kind, T, a.steps, a.reps, a.threads)
        print(f"{name:<24}{r1:14.3e}{rn:14.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
