"""Benchmark: the 2D phase-field fracture solver (continuum.phase_field).

Run with one command::

    python benchmarks/bench_phase_field_fracture.py            # ~10⁵ nodes
    python benchmarks/bench_phase_field_fracture.py --quick    # ~2.5·10⁴ nodes

What is measured, on an edge-notched strip in tension (AT1, isotropic steel-like, vol-dev split,
structured mesh refined in the crack band) at about 10⁵ nodes, for each linear solver of the
model (scipy's SuperLU in symmetric mode with a minimum-degree ordering, and pyamg smoothed
aggregation preconditioning conjugate gradients), on the same states:

* the time of one displacement solve and one damage solve (active set) at the current state;
* the time per load step and the alternate-minimisation iterations per step, for a sequence of
  steps that runs from the elastic range (1 iteration) into stable damage growth at the notch
  (several), stopping short of the unstable propagation (whose iteration count measures the
  physics, not the solver).

Same system, same answer: the forces of the two solvers agree (printed).  Peak resident memory of
each run is printed (each solver in its own process).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def _model(nodes_target: int, solver: str):
    from scaleladder.continuum import isotropic_stiffness, plane_strain_stiffness
    from scaleladder.continuum.phase_field import PhaseFieldFracture, band_mesh

    C = plane_strain_stiffness(isotropic_stiffness(210e9, 0.3))
    W, H, ell = 1e-3, 0.5e-3, 2e-5
    # nodes ≈ (2W/h) × (8ℓ/h + graded rows): pick h for the target
    h = ell / 4
    while True:
        m = band_mesh(W, H, h, band_half_height=4 * ell)
        if m.p.shape[1] >= nodes_target:
            break
        h /= 1.15
    pf = PhaseFieldFracture(
        m, C, 2.7e3, ell, model="AT1", split="voldev", solver=solver,
        fixed={"y": lambda x, y: y < -H + 1e-12, "x": lambda x, y: (y < -H + 1e-12) & (np.abs(x) < 1e-12)},
        loaded={"y": (lambda x, y: y > H - 1e-12, 1.0)},
        initial_crack=lambda x, y: (np.abs(y) <= 1.01 * h) & (x < -0.8 * W + 1e-12), tol=1e-3,
        max_iter=2000)
    return pf, H, ell


def run_one(nodes_target: int, solver: str) -> dict:
    from scaleladder.continuum.damage import peak_stress

    pf, H, ell = _model(nodes_target, solver)
    t0 = time.perf_counter()
    pf.step(0.0)
    t_init = time.perf_counter() - t0
    E_ps = 210e9 / (1 - 0.09)
    d_peak = 2 * H * peak_stress("AT1", E_ps, 2.7e3, ell) / E_ps
    # the notch (a = 0.2 mm, ℓ = 20 µm) starts to run at about 0.26 of the homogeneous strength
    # (LEFM, edge crack): steps up to just below it, where the tip damage grows stably
    steps = d_peak * np.array([0.1, 0.15, 0.2, 0.22, 0.24])
    out = {"solver": solver, "nodes": int(pf.mesh.p.shape[1]), "dofs_u": int(pf.ub.N),
           "initial_profile_s": t_init, "steps": []}
    for delta in steps:
        t0 = time.perf_counter()
        it = pf.step(float(delta))
        out["steps"].append({"delta": float(delta), "seconds": time.perf_counter() - t0,
                             "iterations": it, "force": pf.force(),
                             "max_damage_growth": float(pf.d.max())})
    t0 = time.perf_counter()
    pf._u_step(pf.delta)
    out["u_solve_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pf._d_step(pf.d_floor)
    out["d_solve_s"] = time.perf_counter() - t0
    out["peak_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--nodes", type=int, default=None)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    nodes = args.nodes or (25_000 if args.quick else 100_000)
    if args.worker:
        print(json.dumps(run_one(nodes, args.worker)))
        return
    results = {}
    for solver in ("direct", "amg"):
        p = subprocess.run([sys.executable, __file__, "--nodes", str(nodes), "--worker", solver],
                           capture_output=True, text=True, check=True)
        results[solver] = json.loads(p.stdout.strip().splitlines()[-1])
    d, a = results["direct"], results["amg"]
    print(f"phase-field fracture, edge-notched strip, AT1, {d['nodes']} nodes "
          f"({d['dofs_u']} displacement dofs)")
    print(f"{'':28s}{'SuperLU':>12s}{'pyamg-CG':>12s}{'ratio':>8s}")
    for key, label in (("u_solve_s", "displacement solve (s)"), ("d_solve_s", "damage solve (s)"),
                       ("initial_profile_s", "initial crack profile (s)"),
                       ("peak_rss_MB", "peak memory (MB)")):
        print(f"{label:28s}{d[key]:12.3f}{a[key]:12.3f}{a[key] / d[key]:8.2f}")
    print("load steps (δ, iterations, s/step SuperLU, s/step pyamg, force rel. diff):")
    for sd, sa in zip(d["steps"], a["steps"]):
        rel = abs(sd["force"] - sa["force"]) / abs(sd["force"])
        print(f"  {sd['delta']:.3e}  {sd['iterations']:3d} / {sa['iterations']:3d}  "
              f"{sd['seconds']:8.2f}  {sa['seconds']:8.2f}  {rel:.1e}")


if __name__ == "__main__":
    main()
