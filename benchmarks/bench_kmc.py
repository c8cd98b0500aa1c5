"""Events per second of the residence-time KMC for a single vacancy (sc lattices 10^3..10^7 sites).

Run: ``python benchmarks/bench_kmc.py [--max-sites 1e7] [--events 2000000]``.  Prints a table:
sites, tree depth log2(L), events/s and ns per event; the cost per event should grow at most
like the tree depth (O(log N)).  No assertions: numbers to read.
"""
import argparse
import math
import time

from scaleladder.handoffs.events import EventCatalog, EventType
from scaleladder.mesoscale import kmc
from scaleladder.uq import Estimate


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--max-sites", type=float, default=1e7)
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cat = EventCatalog((EventType("vac-nn", Estimate(0.6, "eV"), Estimate(5.0, "1/ps")),))
    # warm up (numba compile / cache load)
    small = kmc.build_lattice("sc", 2.5, 6)
    kmc.run_kmc(kmc.init_vacancies(small), kmc.KMCModel.build(small, cat, 900.0), n_events=1000,
                progress=False)
    print(f"{'sites':>10} {'log2 L':>7} {'build s':>8} {'events/s':>12} {'ns/event':>9}")
    for n in (10, 22, 46, 100, 215):
        if n ** 3 > args.max_sites * 1.01:
            break
        t0 = time.perf_counter()
        lat = kmc.build_lattice("sc", 2.5, n)
        model = kmc.KMCModel.build(lat, cat, 900.0)
        state = kmc.init_vacancies(lat, (lat.n_sites // 2,), seed=1)
        build = time.perf_counter() - t0
        best = 0.0
        for r in range(args.repeats):
            run = kmc.run_kmc(state, model, n_events=args.events, progress=False)
            best = max(best, run.events_per_s)
        depth = math.ceil(math.log2(lat.n_sites))
        print(f"{lat.n_sites:>10d} {depth:>7d} {build:>8.2f} {best:>12.3e} {1e9 / best:>9.1f}",
              flush=True)


if __name__ == "__main__":
    main()
