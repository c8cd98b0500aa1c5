"""Benchmark: RVE homogenisation solvers.

Run with one command::

    python benchmarks/bench_homogenisation.py            # 128³ FFT, 24³ FEM (41k dofs)
    python benchmarks/bench_homogenisation.py --quick    # 64³ FFT, 16³ FEM
    python benchmarks/bench_homogenisation.py --fem-n 40 # 192k dofs (the direct solve: hours)

What is measured:

* FFT (conjugate-gradient scheme) on an untextured Cu Voronoi polycrystal (64 grains) of N³
  voxels: wall time per iteration of one load case, against the cost of the FFTs an iteration
  cannot avoid (one forward and one inverse real FFT of the six strain components, the same
  ``scipy.fft`` calls with ``workers=-1``).  ``ratio`` = iteration / FFT bound; aim <= 2.
* FE2 (plane-strain plate with a hole, one J2-plastic RVE per quadrature point): wall time in
  process and on 1 and 2 spawned worker processes (aim: 2 workers >= 1.7x one).
* Peer: the same periodic voxel RVE in fedoo (if installed; the ``bench`` extra has it).
* FEM (periodic, trilinear voxels) on an N³ two-phase RSA microstructure: AMG-preconditioned
  conjugate gradients (pyamg smoothed aggregation) against scipy's sparse direct solver
  (SuperLU through ``factorized``) for one load case: time and peak resident memory, each in
  its own process so the peaks do not mix.  Same system, same answer (checked).
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

import numpy as np


def _cu():
    from scaleladder.handoffs import ElasticTensor

    return ElasticTensor.from_cubic(168.4, 121.4, 75.4, relaxed_ions=True)


def fft_case(n: int, reps: int = 3) -> dict:
    import scipy.fft as sfft

    from scaleladder.continuum import fft_solve, voronoi_polycrystal

    micro = voronoi_polycrystal((n,) * 3, 1.0, 64, seed=0, phase=_cu())
    fft_solve(micro, [1, 0, 0, 0, 0, 0], tol=1e-2)            # warm-up (numba JIT, plans)
    x = np.random.default_rng(0).random((6, n, n, n))
    axes = (1, 2, 3)

    def solve(tol):
        t0 = time.perf_counter()
        sol = fft_solve(micro, [1, 0, 0, 0, 0, 0], tol=tol)
        return time.perf_counter() - t0, sol

    def bound():
        t0 = time.perf_counter()
        z = sfft.rfftn(x, axes=axes, workers=-1)
        sfft.irfftn(z, s=(n, n, n), axes=axes, workers=-1)
        return time.perf_counter() - t0

    # per iteration = (tight solve - loose solve) / (extra iterations): set-up and the final
    # field conversions cancel; both measured alternately with the FFT bound, best of reps
    per_iter, best, sol = math.inf, math.inf, None
    for _ in range(reps):
        t_loose, loose = solve(1e-2)
        t_tight, sol = solve(1e-7)
        per_iter = min(per_iter, (t_tight - t_loose) / max(sol.iterations - loose.iterations, 1))
        best = min(best, bound())
    return {"n": n, "iterations": sol.iterations, "s_per_iteration": per_iter,
            "fft_bound_s": best, "ratio": per_iter / best, "hill_mandel": sol.hill_mandel}


def fem_child(n: int, solver: str) -> None:
    from scaleladder.continuum import VoxelFEM, random_inclusions
    from scaleladder.continuum.bounds import isotropic_voigt
    from scaleladder.handoffs import ElasticTensor

    soft = ElasticTensor.from_voigt(isotropic_voigt(5.0, 2.0), relaxed_ions=True)
    stiff = ElasticTensor.from_voigt(isotropic_voigt(100.0, 60.0), relaxed_ions=True)
    micro = random_inclusions((n,) * 3, 1.0, 0.2, max(2.5 / n, 0.1), seed=1, phases=(soft, stiff))
    t0 = time.perf_counter()
    fem = VoxelFEM(micro, solver=solver, tol=1e-8)
    t_asm = time.perf_counter() - t0
    t0 = time.perf_counter()
    sol = fem.solve_strain([1, 0, 0, 0, 0, 0], "periodic")
    t_solve = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"n": n, "dofs": sol.n_dofs, "solver": solver, "assembly_s": t_asm,
                      "solve_s": t_solve, "iterations": sol.iterations,
                      "C11": float(sol.mean_stress[0]), "peak_MB": peak_mb}))


def fem_case(n: int, solvers=("cg", "direct")) -> list:
    out = []
    for solver in solvers:
        p = subprocess.run([sys.executable, __file__, "--fem-child", str(n), solver],
                           capture_output=True, text=True)
        if p.returncode != 0:
            out.append({"n": n, "solver": solver, "error": p.stderr.strip().splitlines()[-1:]})
        else:
            out.append(json.loads(p.stdout.strip().splitlines()[-1]))
    return out


def fe2_case(n_rve: int = 16) -> list:
    """FE2 wall time on the quarter plate with a hole (96 elements, one RVE each), a J2-plastic
    matrix with elastic inclusions, 3 load steps: in process, and on 1 and 2 spawned workers."""
    from scaleladder.continuum import J2Hardening, PlasticRVE, fe2_solve, isotropic_voigt, \
        plate_with_hole, random_inclusions
    from scaleladder.handoffs import ElasticTensor

    al = ElasticTensor.from_voigt(isotropic_voigt(68.6, 26.3), relaxed_ions=True)
    steel = ElasticTensor.from_voigt(isotropic_voigt(166.7, 76.9), relaxed_ions=True)
    micro = random_inclusions((n_rve, n_rve), 1.0, 0.3, 2.5 / n_rve, seed=0, phases=(al, steel))
    rve = PlasticRVE(micro, [J2Hardening(0.15, 2.0), None])
    mesh = plate_with_hole(refine=0)
    steps = [1e-3, 2e-3, 3e-3]
    rows = []
    for label, kw in (("in process", {}), ("1 worker", {"executor": "process", "workers": 1}),
                      ("2 workers", {"executor": "process", "workers": 2})):
        t0 = time.perf_counter()
        r = fe2_solve(mesh, rve, steps, **kw)
        rows.append({"label": label, "s": time.perf_counter() - t0, "solves": r.rve_solves,
                     "force": r.force[-1]})
    return rows


def peer_case(n: int = 12) -> dict | None:
    """The same periodic voxel RVE (hex8, two isotropic phases) in fedoo (``pip install fedoo``:
    ``homogen.get_homogenized_stiffness``, its scipy direct solver) and here (direct and AMG-CG):
    times and the largest difference of the 6x6 (fedoo's shear order xy, xz, yz permuted)."""
    try:
        import fedoo as fd
    except ImportError:
        return None
    import warnings

    from scaleladder.continuum import fem_effective_stiffness, isotropic_voigt, random_inclusions
    from scaleladder.handoffs import ElasticTensor

    E1, nu1, E2, nu2 = 10.0, 0.3, 100.0, 0.25

    def iso(E, nu):
        return ElasticTensor.from_voigt(isotropic_voigt(E / (3 * (1 - 2 * nu)), E / (2 * (1 + nu))),
                                        relaxed_ions=True)

    micro = random_inclusions((n,) * 3, 1.0, 0.2, max(0.2, 2.5 / n), seed=1,
                              phases=(iso(E1, nu1), iso(E2, nu2)))
    t0 = time.perf_counter()
    c_direct, _ = fem_effective_stiffness(micro, "periodic")
    t_direct = time.perf_counter() - t0
    t0 = time.perf_counter()
    c_cg, _ = fem_effective_stiffness(micro, "periodic", solver="cg", tol=1e-10)
    t_cg = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fd.ModelingSpace("3D")
        mesh = fd.mesh.box_mesh(n + 1, n + 1, n + 1, elm_type="hex8")
        idx = np.clip((mesh.element_centers * n).astype(int), 0, n - 1)
        lab = micro.labels[idx[:, 0], idx[:, 1], idx[:, 2]]
        mat = fd.constitutivelaw.Heterogeneous(
            (fd.constitutivelaw.ElasticIsotrop(E1, nu1), fd.constitutivelaw.ElasticIsotrop(E2, nu2)),
            (np.flatnonzero(lab == 0), np.flatnonzero(lab == 1)))
        assemb = fd.Assembly.create(fd.weakform.StressEquilibrium(mat), mesh)
        t0 = time.perf_counter()
        c_fd = np.asarray(fd.homogen.get_homogenized_stiffness(assemb))
        t_fd = time.perf_counter() - t0
    perm = [0, 1, 2, 5, 4, 3]                          # fedoo: xx yy zz xy xz yz
    c_fd = c_fd[np.ix_(perm, perm)]
    return {"n": n, "fedoo_s": t_fd, "direct_s": t_direct, "cg_s": t_cg,
            "max_diff": float(np.abs(c_fd - c_direct).max() / np.abs(c_direct).max())}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--fft-n", type=int, default=None)
    ap.add_argument("--fem-n", type=int, default=None)
    ap.add_argument("--fem-solvers", default="cg,direct",
                    help="which FEM solvers to run (the direct solve of a 3D voxel mesh beyond "
                         "~50k dofs takes hours: --fem-solvers cg)")
    ap.add_argument("--skip-fft", action="store_true")
    ap.add_argument("--skip-fe2", action="store_true")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--fem-child", nargs=2, metavar=("N", "SOLVER"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.fem_child:
        fem_child(int(a.fem_child[0]), a.fem_child[1])
        return
    nf = a.fft_n or (64 if a.quick else 128)
    ne = a.fem_n or (16 if a.quick else 24)
    r = None if a.skip_fft else fft_case(nf)
    if r is not None:
        print(f"FFT (CG) {nf}^3 Cu polycrystal: {r['iterations']} iterations, "
              f"{r['s_per_iteration'] * 1e3:.1f} ms/iteration; FFT bound "
              f"{r['fft_bound_s'] * 1e3:.1f} ms; ratio {r['ratio']:.2f} (aim <= 2); "
              f"Hill-Mandel {r['hill_mandel']:.1e}")
    rows = fem_case(ne, tuple(a.fem_solvers.split(",")))
    for row in rows:
        if "error" in row:
            print(f"FEM {ne}^3 {row['solver']}: failed ({row['error']})")
            continue
        print(f"FEM {ne}^3 periodic, {row['dofs']} dofs, {row['solver']:6s}: assembly "
              f"{row['assembly_s']:.1f} s, solve {row['solve_s']:.1f} s"
              f"{' (' + str(row['iterations']) + ' CG iterations)' if row['solver'] == 'cg' else ''}"
              f", peak memory {row['peak_MB']:.0f} MB, C11 {row['C11']:.6f} GPa")
    fe = [] if a.skip_fe2 else fe2_case(12 if a.quick else 16)
    base = fe[1]["s"] if fe else 1.0
    for row in fe:
        print(f"FE2 plate with a hole, 96 RVEs, {row['solves']} RVE solves, {row['label']:10s}: "
              f"{row['s']:.1f} s (speed-up over 1 worker {base / row['s']:.2f}); "
              f"force {row['force']:.6f}")
    peer = None if a.skip_peer else peer_case(8 if a.quick else 16)
    if peer is not None:
        print(f"peer: fedoo on the same {peer['n']}^3 periodic voxel RVE: {peer['fedoo_s']:.1f} s; "
              f"scaleladder direct {peer['direct_s']:.1f} s ({peer['fedoo_s'] / peer['direct_s']:.1f}x"
              f" faster), AMG-CG {peer['cg_s']:.1f} s; same 6x6 to {peer['max_diff']:.1e}")
    ok = [r_ for r_ in rows if "error" not in r_]
    if len(ok) == 2:
        cg, di = ok
        print(f"  direct / AMG-CG: time {di['solve_s'] / cg['solve_s']:.2f}x, memory "
              f"{di['peak_MB'] / cg['peak_MB']:.2f}x; |ΔC11| = {abs(di['C11'] - cg['C11']):.2e}")


if __name__ == "__main__":
    main()
