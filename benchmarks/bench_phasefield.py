"""Benchmark: phase-field time per step against the FFTs the step needs, and against FiPy.

Run with one command::

    python benchmarks/bench_phasefield.py                 # the default table
    python benchmarks/bench_phasefield.py --quick         # smaller grids, fewer repeats

What is timed (after warm-up, best of ``--reps`` repeats of ``--steps`` steps):

* ``step`` -- :meth:`PhaseFieldStepper.step` of Allen–Cahn, Cahn–Hilliard and grain growth
  (``p`` order parameters) on 2D and 3D grids, free-energy monitoring off (it costs one extra
  forward FFT per field every ``energy_every`` steps in a run).
* ``FFT bound`` -- the transforms a semi-implicit step cannot avoid: one ``scipy.fft.rfftn`` and
  one ``irfftn`` per field on the same arrays, with the same ``workers=-1``.  ``ratio`` is step /
  bound; the aim is <= 2.

FiPy (optional, ``pip install fipy``): the same 2D Allen–Cahn problem (shrinking disc, same W, κ,
L, grid and Δt) with FiPy's finite-volume ``TransientTerm == DiffusionTerm - source`` (the
double-well force linearised about the old value, implicit in the diffusion), one sweep per
step, with its default solver (SciPy sparse LU) and with its preconditioned conjugate gradient
(tolerance 1e-10).  Reported as FiPy time per step / scaleladder time per step.  The
two are different discretisations (finite-volume 5-point Laplacian, implicit solve, vs spectral
semi-implicit), so the ratio compares costs on the same problem, not identical algorithms.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import scipy.fft as sfft

from scaleladder.mesoscale.phasefield import (AllenCahn, CahnHilliard, GrainGrowth,
                                              PhaseFieldStepper, SpectralGrid, circle,
                                              voronoi_grains)


def _best(fn, steps: int, reps: int) -> float:
    fn(1)  # warm-up (numba JIT, FFT plans, caches)
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(steps)
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def _fft_bound_runner(shape, n_fields: int):
    """The transforms a step cannot avoid: one rfftn + one irfftn per field."""
    axes = tuple(range(-len(shape), 0))
    rng = np.random.default_rng(0)
    x = rng.random((n_fields,) + tuple(shape)) if n_fields > 1 else rng.random(tuple(shape))

    def run(n):
        y = x
        for _ in range(n):
            z = sfft.rfftn(y, axes=axes, workers=-1)
            y = sfft.irfftn(z, s=shape, axes=axes, workers=-1, overwrite_x=True)

    return run


def _case(name, model, shape, init, steps, reps):
    """Best time per step of the stepper and of the FFT bound, measured alternately so that
    load from other processes affects both alike."""
    grid = SpectralGrid(shape, 1.0)
    dt = 0.05 / (model.mobility * model.W)
    stepper = PhaseFieldStepper(model, grid, dt)
    state = [stepper.init(init(grid))]

    def run(n):
        s = state[0]
        for _ in range(n):
            s = stepper.step(s)

    bound = _fft_bound_runner(shape, model.n_fields)
    run(2)
    bound(2)
    t_step = t_fft = math.inf
    for _ in range(reps):
        t_step = min(t_step, _best(run, steps, 1))
        t_fft = min(t_fft, _best(bound, steps, 1))
    return name, "x".join(map(str, shape)), t_step, t_fft


def _fipy_allen_cahn(n: int, steps: int, W: float, kappa: float, L: float, dt: float,
                     radius: float, width: float, solver: str = "default"):
    import fipy

    solver = None if solver == "default" else fipy.LinearPCGSolver(tolerance=1e-10)

    mesh = fipy.PeriodicGrid2D(nx=n, ny=n, dx=1.0, dy=1.0)
    x, y = mesh.cellCenters
    r = np.sqrt((np.asarray(x) - n / 2) ** 2 + (np.asarray(y) - n / 2) ** 2)
    phi = fipy.CellVariable(mesh=mesh, value=0.5 * (1 + np.tanh((radius - r) * 2 / width)),
                            hasOld=True)
    # W f'(φ) = W (2φ - 6φ² + 4φ³), linearised: S0 + S1 φ_new with S1 = W f''(φ_old)
    fp = W * (2 * phi - 6 * phi ** 2 + 4 * phi ** 3)
    fpp = W * (2 - 12 * phi + 12 * phi ** 2)
    eq = (fipy.TransientTerm(coeff=1.0 / L) == fipy.DiffusionTerm(coeff=kappa)
          - (fp - fpp * phi) - fipy.ImplicitSourceTerm(coeff=fpp))
    eq.solve(var=phi, dt=dt, solver=solver)  # warm-up (not counted in the area either)
    phi.updateOld()
    phi.setValue(0.5 * (1 + np.tanh((radius - r) * 2 / width)))
    phi.updateOld()
    t0 = time.perf_counter()
    for _ in range(steps):
        eq.solve(var=phi, dt=dt, solver=solver)
        phi.updateOld()
    t = (time.perf_counter() - t0) / steps
    return t, float(np.asarray(phi.value).sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller grids, fewer repeats")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--fipy-steps", type=int, default=50)
    args = ap.parse_args(argv)
    steps = args.steps or (10 if args.quick else 40)
    reps = args.reps or (2 if args.quick else 5)

    ac = AllenCahn(W=0.5, kappa=1.0, mobility=1.0)
    ch = CahnHilliard(W=0.5, kappa=1.0, mobility=1.0)
    gg = GrainGrowth(8, m=0.5, kappa=1.0, mobility=1.0)

    def disc(g):
        return circle(g, 0.3 * min(g.lengths), ac.interface_width)

    def noise(g):
        return 0.5 + 0.01 * np.random.default_rng(1).standard_normal(g.shape)

    def grains(g):
        return voronoi_grains(g, 40, 8, seed=1)

    sizes2 = [256, 512] if args.quick else [256, 512, 1024]
    sizes3 = [64] if args.quick else [64, 128]
    cases = []
    for n in sizes2:
        cases.append(("Allen-Cahn", ac, (n, n), disc))
        cases.append(("Cahn-Hilliard", ch, (n, n), noise))
    for n in sizes3:
        cases.append(("Allen-Cahn", ac, (n, n, n), disc))
        cases.append(("Cahn-Hilliard", ch, (n, n, n), noise))
    cases.append(("grain growth p=8", gg, (256, 256), grains))
    if not args.quick:
        cases.append(("grain growth p=8", gg, (64, 64, 64), grains))

    print(f"phase-field step vs FFT lower bound (scipy.fft workers=-1, {os.cpu_count()} CPUs; "
          f"best of {reps} x {steps} steps)")
    print(f"{'model':<18} {'grid':>12} {'step (ms)':>11} {'FFT bound (ms)':>15} {'ratio':>7}")
    rows = []
    for name, model, shape, init in cases:
        row = _case(name, model, shape, init, steps, reps)
        rows.append(row)
        print(f"{row[0]:<18} {row[1]:>12} {1e3 * row[2]:>11.3f} {1e3 * row[3]:>15.3f} "
              f"{row[2] / row[3]:>7.2f}", flush=True)

    # FiPy on the same Allen-Cahn problem
    n = 256
    grid = SpectralGrid((n, n), 1.0)
    radius, dt = 80.0, 0.05 / (ac.mobility * ac.W)
    try:
        import fipy  # noqa: F401
    except ImportError:
        print("\nFiPy: not installed (pip install fipy) -- no ratio reported")
        return 0
    stepper = PhaseFieldStepper(ac, grid, dt)
    s0 = stepper.init(circle(grid, radius, ac.interface_width))

    def run(k):
        s = s0
        for _ in range(k):
            s = stepper.step(s)
        return s

    t_sl = _best(run, args.fipy_steps, reps)
    area_sl = float(run(args.fipy_steps).fields.sum())
    print(f"\nAllen-Cahn {n}x{n} disc R={radius:g}, dt L W = 0.05, {args.fipy_steps} steps "
          f"(area: sum of phi over cells, {math.pi * radius ** 2:.1f} for the initial disc):")
    print(f"{'code':<28} {'ms/step':>10} {'area after':>12} {'ratio to ours':>14}")
    print(f"{'scaleladder (spectral)':<28} {1e3 * t_sl:>10.3f} {area_sl:>12.2f} {1.0:>14.1f}")
    for solver in ("default", "pcg"):
        t_fp, area_fp = _fipy_allen_cahn(n, args.fipy_steps, ac.W, ac.kappa, ac.mobility, dt,
                                         radius, ac.interface_width, solver)
        label = f"FiPy {fipy.__version__} ({'LU, default' if solver == 'default' else 'PCG'})"
        print(f"{label:<28} {1e3 * t_fp:>10.3f} {area_fp:>12.2f} {t_fp / t_sl:>14.1f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
