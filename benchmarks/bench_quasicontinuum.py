"""Benchmark: the adaptive quasicontinuum against full atomistics on 2D nanoindentation
(coupling.indentation) — load error against degrees of freedom, and the speed-up.

Run with one command::

    python benchmarks/bench_quasicontinuum.py                       # 100 x 60 (6000 atoms)
    python benchmarks/bench_quasicontinuum.py --nx 240 --ny 144     # 34 560 atoms (hours)

The same loading (a Kelchner cylinder of radius R, depth steps from 0.5 Å, each relaxed with
FIRE to ``--fmax``, default 1e-6 eV/Å: a looser per-atom tolerance leaves a large sample's
long-wavelength modes unrelaxed and the full model's load several per cent high) on the same Morse triangular crystal (held walls as thick as the cutoff),
solved atom by atom once and by the adaptive force-based QC (graded mesh, surface and contact
nonlocal, Cauchy–Born indicator) for each fully resolved radius in ``--fine-radius``.  Printed:
the load at every depth for the full model and each QC, the relative errors, the degrees of
freedom (2 per free site or repatom) and the wall times, and their ratios.
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
    ap.add_argument("--fmax", type=float, default=1e-6, help="force tolerance (eV/Å)")
    ap.add_argument("--full-optimizer", default="fire", choices=("fire", "lbfgs"),
                    help="the full model's relaxation (L-BFGS: several times faster on large samples)")
    ap.add_argument("--radius", type=float, default=15.0)
    ap.add_argument("--depth", type=float, default=3.0)
    ap.add_argument("--step", type=float, default=0.5)
    ap.add_argument("--fine-radius", type=float, nargs="+", default=[25.0, 50.0, 60.0],
                    help="radii (Å) of the fully resolved region around the contact, one QC run each")
    args = ap.parse_args()
    a = 2.6
    pot = Morse(D0=0.4, alpha=1.3, r0=a, rc=6.0)
    depths = np.arange(args.step, args.depth + 1e-9, args.step)
    kw = dict(radius=args.radius, depths=depths, nonlocal_depth=20.0, fmax=args.fmax)
    out = {}
    t0 = time.perf_counter()
    r = indent(args.nx, args.ny, a, pot, full=True, optimizer=args.full_optimizer, **kw)
    out["full"] = {"load": r.load, "dofs": r.dofs, "seconds": time.perf_counter() - t0}
    for fr in args.fine_radius:
        t0 = time.perf_counter()
        r = indent(args.nx, args.ny, a, pot, fine_radius=fr, **kw)
        out[f"qc{fr:g}"] = {"load": r.load, "dofs": r.dofs, "seconds": time.perf_counter() - t0,
                            "nonlocal": r.nonlocal_atoms[-1]}
    f = out["full"]
    print(f"2D nanoindentation, Morse triangular lattice {args.nx} x {args.ny} "
          f"({args.nx * args.ny} atoms), cylinder R = {args.radius} Å, FIRE to {args.fmax:g} eV/Å")
    qcs = [k for k in out if k != "full"]
    print(f"{'depth (Å)':>10} {'full (eV/Å)':>12}" + "".join(f" {'QC, fine ' + k[2:] + ' Å':>18}" for k in qcs))
    for i, d in enumerate(depths):
        row = f"{d:10.2f} {f['load'][i]:12.4f}"
        for k in qcs:
            lq = out[k]["load"][i]
            row += f" {lq:9.4f} ({100 * (lq / f['load'][i] - 1):+5.2f}%)"
        print(row)
    print(f"full atomistics: {f['dofs']} DOFs, {f['seconds']:.1f} s")
    for k in qcs:
        q = out[k]
        err = max(abs(lq / lf - 1) for lq, lf in zip(q["load"], f["load"]))
        print(f"QC, fine radius {k[2:]} Å: {q['dofs']} DOFs ({f['dofs'] / q['dofs']:.1f}x fewer; "
              f"{q['nonlocal']} nonlocal atoms), {q['seconds']:.1f} s ({f['seconds'] / q['seconds']:.1f}x "
              f"faster), largest load error {100 * err:.2f} %")
    print(json.dumps({k: {kk: (vv if not isinstance(vv, list) else [round(x, 5) for x in vv])
                          for kk, vv in v.items()} for k, v in out.items()}))


if __name__ == "__main__":
    main()
