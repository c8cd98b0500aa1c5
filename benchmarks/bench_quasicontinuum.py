"""Benchmark: the adaptive quasicontinuum against full atomistics on 2D nanoindentation
(coupling.indentation).

Run with one command::

    python benchmarks/bench_quasicontinuum.py                 # 100 x 60 lattice (6000 atoms)
    python benchmarks/bench_quasicontinuum.py --nx 50 --ny 30 # the slow test's size

The same loading (a Kelchner cylinder of radius R, depth steps from 0.5 Å, each relaxed with
FIRE to 1e-4 eV/Å) on the same Morse triangular crystal, solved atom by atom and by the adaptive
force-based QC (graded mesh, surface and contact nonlocal, Cauchy–Born indicator).  Printed: the
load at every depth for both and the relative error, the degrees of freedom (2 per repatom) and
the wall time of each run, and their ratios.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from scaleladder.atomistic import Morse
from scaleladder.coupling.indentation import indent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nx", type=int, default=100)
    ap.add_argument("--ny", type=int, default=60)
    ap.add_argument("--radius", type=float, default=15.0)
    ap.add_argument("--depth", type=float, default=3.0)
    ap.add_argument("--step", type=float, default=0.5)
    ap.add_argument("--surface-width", type=float, default=None,
                    help="half-width (Å) of the nonlocal surface layer (default: the whole surface)")
    args = ap.parse_args()
    a = 2.6
    pot = Morse(D0=0.4, alpha=1.3, r0=a, rc=6.0)
    depths = np.arange(args.step, args.depth + 1e-9, args.step)
    kw = dict(radius=args.radius, depths=depths, nonlocal_depth=20.0, fine_radius=25.0,
              surface_width=args.surface_width)
    out = {}
    for name, full in (("full", True), ("qc", False)):
        t0 = time.perf_counter()
        r = indent(args.nx, args.ny, a, pot, full=full, **kw)
        out[name] = {"load": r.load, "dofs": r.dofs, "seconds": time.perf_counter() - t0,
                     "nonlocal": r.nonlocal_atoms[-1]}
    f, q = out["full"], out["qc"]
    print(f"2D nanoindentation, Morse triangular lattice {args.nx} x {args.ny} "
          f"({args.nx * args.ny} atoms), cylinder R = {args.radius} Å, nonlocal surface "
          f"{'everywhere' if args.surface_width is None else f'within {args.surface_width:g} Å of the axis'}")
    print(f"{'depth (Å)':>10} {'full (eV/Å)':>12} {'QC (eV/Å)':>12} {'error':>8}")
    for d, lf, lq in zip(depths, f["load"], q["load"]):
        print(f"{d:10.2f} {lf:12.4f} {lq:12.4f} {100 * (lq / lf - 1):7.2f}%")
    print(f"degrees of freedom (free sites x 2): full {f['dofs']}, QC {q['dofs']} ({f['dofs'] / q['dofs']:.2f}x fewer; "
          f"{q['nonlocal']} nonlocal atoms)")
    print(f"wall time: full {f['seconds']:.1f} s, QC {q['seconds']:.1f} s "
          f"({f['seconds'] / q['seconds']:.2f}x)")
    print(json.dumps({k: {kk: (vv if not isinstance(vv, list) else [round(x, 5) for x in vv])
                          for kk, vv in v.items()} for k, v in out.items()}))


if __name__ == "__main__":
    main()
