"""Finite-temperature isothermal elastic constants from molecular dynamics (stress-strain).

:func:`elastic_constants_md` returns the same handoff as the static
:func:`~scaleladder.atomistic.properties.elastic_constants` -- an
:class:`~scaleladder.handoffs.ElasticTensor` in GPa -- with the temperature recorded and the MD
sampling error carried as the Estimate source ``"md_sampling"``.

Method
------
1. **Zero-pressure cell at T.**  An NPT run (:func:`~scaleladder.atomistic.md.run_md`,
   Langevin-BAOAB with a Langevin-Hoover barostat) at ``temperature_K`` and ``pressure_GPa``
   (default 0); after ``equilibration_steps`` the cell is averaged over ``npt_steps`` frames
   (isotropic fluctuations: the mean volume, cell shape kept; full: the mean cell matrix).  The
   last NPT frame, rescaled onto that cell, is the reference configuration (positions *and*
   momenta, so the strained runs start equilibrated).
2. **Fixed strained cells.**  For each Voigt strain ``j`` (engineering shear, ``e4 = 2 e_yz``)
   and each sign, the reference is deformed homogeneously by ``F = 1 + eps_j(±strain)`` and run in
   NVT (Langevin) for ``equilibration_steps + steps``; the stress of every production frame is
   ASE's ``get_stress(include_ideal_gas=True)``: the virial *plus* the kinetic term
   ``-sum p p^T / (m V)``, whose strain derivative (the ideal-gas part of the isothermal
   stiffness) would otherwise be missing.
3. **Central differences.**  Column ``j`` of ``C`` is ``<sigma(+strain) - sigma(-strain)> /
   (2 strain)`` -- the least-squares slope through the two points, as in the 0 K code; the
   symmetric part is returned and the asymmetry is kept in provenance (it should lie within the
   sampling error).  Strains of ±1 % leave a nonlinearity error of order ``strain^2`` (relative
   ~1e-4 for argon).

Sampling error
--------------
The two runs of a pair share their random-number stream (same seed: *common random numbers*),
so their noise is strongly correlated and largely cancels in the difference; for argon at
10 K the error of ``C`` is ~10x smaller than with independent runs (measured).  The error is
therefore computed on the paired difference series ``d_j(t) = (sigma(+) - sigma(-)) / (2
strain)``, which propagates the block-averaged errors of both mean stresses *including* their
correlation: the series is cut into ``n_blocks`` consecutive blocks
(:func:`~scaleladder.atomistic.md.block_average`); the covariance of the six mean components of
``d_j`` is the covariance of the block means over ``n_blocks``.  The six pairs are independent
(different seeds).  The block-averaged errors of each run's own mean stress are reported in
provenance too.

Blocks are checked for decorrelation: the integrated autocorrelation time ``tau`` of every
difference series (:func:`~scaleladder.atomistic.md.integrated_autocorrelation_time`) is
compared with the block length; blocks shorter than ``5 tau`` (where the blocking curve has not
reached its plateau: the error would be underestimated by more than ~10 %) give a
:class:`UserWarning` and ``provenance["blocks_decorrelated"] = False``.  The blocking curve
(error against block length) of the worst series is kept in provenance.

The reference volume is itself a sample mean, and the constants depend strongly on it
(``d ln C / d ln V`` is about -9 for argon: a 0.1 % volume error moves C11 by ~1 %, more than
the NVT noise).  Its block-averaged error ``dV`` is propagated too, with the sensitivity
``dC/d ln V`` of the static tensor (:func:`~scaleladder.atomistic.properties.elastic_constants`
on the input cell scaled by ±1 % in volume, same strain): ``dC = (dC/d ln V) dV / V``.  Only the
volume is propagated; with ``cell_fluctuations="full"`` the noise of the mean cell *shape* is
not (it is a second-order effect for the symmetric part of C at zero stress, and it is recorded).

The errors enter the returned Estimate as exact linear propagation through samples: for pair
``j`` and each eigenvector ``u`` (eigenvalue ``lambda``) of its 6x6 covariance, two samples
``C ± c sqrt(lambda) u`` in column ``j``, and two samples ``C ± c (dC/d ln V) dV / V``
(``c = sqrt((n - 1) / 2)`` for ``n = 74`` samples in all), so the sample variance (``ddof=1``,
the Estimate's convention) of every element, and the covariance of every pair of elements,
equals the propagated one -- the generalisation of the ``value ± sigma/sqrt(2)`` pair used for
a single one-sigma error.

Units: temperature K, time fs, strain dimensionless, stress and stiffness GPa.
"""
from __future__ import annotations

import logging
import math
import time
import warnings

import numpy as np

from ..core import validate
from ..core.errors import InputError, ScaleLadderError
from .md import block_average, blocking_curve, integrated_autocorrelation_time, run_md
from .properties import _check_calc, _check_periodic_cell, _strain_matrix, elastic_constants

__all__ = ["elastic_constants_md"]

logger = logging.getLogger(__name__)

#: Smallest block length, in integrated autocorrelation times, for blocks to count as
#: decorrelated (exponential correlations: the block-mean variance is then within ~10 % of
#: its plateau).
DECORRELATION_BLOCKS_PER_TAU = 5.0

#: Fewest frames per block accepted at all.
_MIN_BLOCK_FRAMES = 10

_VOIGT_NAMES = ("xx", "yy", "zz", "yz", "xz", "xy")


def _int_at_least(field, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(field, value, f"an integer >= {minimum}")
    return int(value)


def _block_means(x: np.ndarray, n_blocks: int) -> np.ndarray:
    """Means of ``n_blocks`` consecutive blocks along axis 0 (remainder at the start dropped,
    as :func:`block_average` does)."""
    m = x.shape[0] // n_blocks
    return x[x.shape[0] - m * n_blocks:].reshape(n_blocks, m, *x.shape[1:]).mean(axis=1)


def _volume_sensitivity(atoms, calc, strain):
    """``dC/d ln V`` (GPa) of the static relaxed-ion tensor at ``atoms``' cell, by central
    differences at ±1 % volume; ``(None, reason)`` if the static tensor cannot be computed."""
    dlnv = 0.01
    out = []
    try:
        for s in (-1.0, 1.0):
            a = atoms.copy()
            a.set_cell(np.array(atoms.cell[:]) * math.exp(s * dlnv / 3.0), scale_atoms=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the scaled cells carry a stress, on purpose
                out.append(np.asarray(elastic_constants(a, calc, relax_ions=True,
                                                        strain_step=strain,
                                                        n_strains=1).voigt.value))
    except ScaleLadderError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return (out[1] - out[0]) / (2.0 * dlnv), None


def _seeds(seed, n):
    """``n`` independent integer seeds from ``seed`` (fresh entropy when None), and the root."""
    ss = np.random.SeedSequence(seed)
    return [int(s.generate_state(1, dtype=np.uint32)[0]) for s in ss.spawn(n)], ss.entropy


def elastic_constants_md(atoms, calc, temperature_K: float, strain: float = 0.01,
                         steps: int = 2000, equilibration_steps: int = 500,
                         timestep_fs: float = 1.0, n_blocks: int = 10, seed: int | None = None,
                         *, npt_steps: int | None = None, pressure_GPa: float = 0.0,
                         friction: float = 0.01, pressure_tau_fs: float | None = None,
                         cell_fluctuations: str = "isotropic", structure: str | None = None,
                         engine: str = "ase", lammps_potential=None):
    """Isothermal elastic constants at ``temperature_K`` from MD stress-strain (GPa).

    See the module notes for the method and the error analysis.

    Parameters
    ----------
    atoms : ase.Atoms
        A fully periodic crystal near its equilibrium (e.g. the 0 K relaxed cell; a supercell
        large enough for MD: >= ~100 atoms).  Not modified.
    calc : ase Calculator
        Energy, forces and stress.
    temperature_K : float
        Temperature, K (> 0).
    strain : float
        Strain amplitude, in (0, 0.1): each Voigt component is applied at ±``strain``
        (engineering shear strain for 4-6).  Large enough that ``C * strain`` stands above the
        stress noise, small enough to stay linear; 0.01 suits most solids.
    steps : int
        Production steps of each of the 12 NVT runs (the stress is averaged over them); at least
        ``10 * n_blocks``.
    equilibration_steps : int
        Steps discarded at the start of the NPT run and of each NVT run (>= 0).  The NVT runs
        start from the equilibrated NPT frame and need only a few thermostat times
        (``1 / friction``); the NPT run starts from ``atoms`` and should get at least one
        barostat period (``pressure_tau_fs``) -- the NPT pressure in provenance shows whether
        it did.
    timestep_fs : float
        MD timestep, fs.
    n_blocks : int
        Blocks of the block average (>= 4).
    seed : int, optional
        Root seed; the NPT run and the six strain pairs get independent seeds spawned from it
        (recorded in provenance, with the root entropy when ``seed`` is None).
    npt_steps : int, optional
        Production steps of the NPT run averaged for the zero-pressure cell (default ``steps``);
        at least ``10 * n_blocks``.
    pressure_GPa : float
        Pressure of the reference state, GPa (0: the zero-pressure cell).
    friction : float
        Langevin friction, 1/fs (thermostat of NPT and NVT).
    pressure_tau_fs : float, optional
        Barostat period, fs (default ``200 * timestep_fs``).
    cell_fluctuations : {"isotropic", "full"}
        NPT cell degrees of freedom: isotropic (cubic crystals: the cell shape is kept, the
        mean cell has no shear noise) or full (any symmetry: each stress component is held at
        ``-pressure_GPa``).
    structure : str, optional
        Label on the tensor; the chemical formula by default.

    Returns
    -------
    ElasticTensor
        Voigt 6x6 in GPa (symmetrised), ``relaxed_ions=True`` (the ions move freely),
        ``temperature_K`` recorded; ``voigt`` carries the source ``"md_sampling"``.  Provenance
        holds the reference cell and its NPT statistics, every run's mean stress with its
        block error, the paired-difference errors, the block count and length, the
        decorrelation check, the asymmetry before symmetrisation and the seeds.

    engine : {"ase", "lammps"}
        Integrator of the twelve NVT strain runs: :func:`~scaleladder.atomistic.md.run_md`
        (any ASE calculator, per-step checks) or
        :func:`~scaleladder.atomistic.lammps_md.run_md_lammps` (LAMMPS's compiled Langevin +
        NVE, a stress every step; the two agree statistically, not frame by frame).  The NPT
        run for the reference cell always uses ``run_md`` (LAMMPS runs here are NVE/NVT).
    lammps_potential : optional
        What LAMMPS evaluates (a FittedPotential such as a SNAP model, or a calculator LAMMPS
        has a pair style for: :func:`~scaleladder.atomistic.lammps_md.lammps_pair_commands`);
        default ``calc``.  It must describe the same potential as ``calc``.

    Raises
    ------
    InputError
        ``temperature_K`` <= 0, ``strain`` not in (0, 0.1), an unknown ``engine``,
        ``n_blocks`` < 4, ``steps`` or ``npt_steps`` below ``10 * n_blocks``, bad MD settings,
        or atoms that are not a periodic crystal (each error names its field).
    CalculationError
        An MD run failed its checks (see :func:`~scaleladder.atomistic.md.run_md`).
    StabilityError
        The fitted tensor is not Born-stable (e.g. the crystal melted).

    Examples
    --------
    >>> from ase.build import bulk
    >>> from scaleladder.atomistic import LennardJones
    >>> ar = bulk("Ar", "fcc", a=5.2687, cubic=True) * (3, 3, 3)
    >>> C = elastic_constants_md(ar, LennardJones(0.0104, 3.40, rc=8.5), 10.0,
    ...                          steps=400, equilibration_steps=100, timestep_fs=10.0,
    ...                          seed=1)  # doctest: +SKIP
    >>> C.C11   # doctest: +SKIP
    """
    from ..handoffs import ElasticTensor
    from ..uq import Estimate

    _check_periodic_cell("atoms", atoms)
    _check_calc(calc)
    T = validate.positive("temperature_K", temperature_K)
    h = validate.finite("strain", strain)
    if not 0.0 < h < 0.1:
        raise InputError("strain", strain, "a strain amplitude in (0, 0.1)",
                         hint="0.01 is a good default; large strains add nonlinearity")
    n_blocks = _int_at_least("n_blocks", n_blocks, 4)
    need = _MIN_BLOCK_FRAMES * n_blocks
    steps = _int_at_least("steps", steps, 1)
    if steps < need:
        raise InputError("steps", steps, f"at least {need} production steps for n_blocks="
                         f"{n_blocks} (blocks of >= {_MIN_BLOCK_FRAMES} frames)",
                         hint="raise steps or lower n_blocks")
    npt_steps = steps if npt_steps is None else _int_at_least("npt_steps", npt_steps, 1)
    if npt_steps < need:
        raise InputError("npt_steps", npt_steps, f"at least {need} steps for n_blocks="
                         f"{n_blocks} (blocks of >= {_MIN_BLOCK_FRAMES} frames)")
    eq = _int_at_least("equilibration_steps", equilibration_steps, 0)
    dt = validate.positive("timestep_fs", timestep_fs)
    tau_p = 200.0 * dt if pressure_tau_fs is None else validate.positive("pressure_tau_fs",
                                                                          pressure_tau_fs)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or seed < 0):
        raise InputError("seed", seed, "a non-negative integer or None")
    engine = validate.one_of("engine", engine, ("ase", "lammps"))
    seeds, entropy = _seeds(None if seed is None else int(seed), 7)
    md_kw = dict(temperature_K=T, timestep_fs=dt, friction=friction)
    clock = time.perf_counter()
    n_runs = 13

    # ---- (a) reference cell at (T, P) -----------------------------------------------------
    logger.info("elastic_constants_md: NPT at %g K, %g GPa (%d + %d steps), run 1/%d",
                T, pressure_GPa, eq, npt_steps, n_runs)
    npt = run_md(atoms, calc, steps=eq + npt_steps, ensemble="npt", pressure_GPa=pressure_GPa,
                 pressure_tau_fs=tau_p, cell_fluctuations=cell_fluctuations, seed=seeds[0],
                 **md_kw)
    prod = slice(-npt_steps, None)
    vol = npt.volume_A3[prod]
    v_mean, v_err = block_average(vol, n_blocks)
    p_mean, p_err = block_average(npt.pressure_GPa[prod], n_blocks)
    t_mean, t_err = block_average(npt.temperature_K[prod], n_blocks)
    last = npt.atoms
    if cell_fluctuations == "isotropic":
        cell_ref = np.array(last.cell[:]) * (v_mean / last.get_volume()) ** (1.0 / 3.0)
    else:
        cell_ref = npt.cell_A[prod].mean(axis=0)
    ref = last.copy()
    ref.set_cell(cell_ref, scale_atoms=True)
    ref.set_momenta(last.get_momenta())
    logger.info("elastic_constants_md: <V> = %.6g ± %.2g Å^3, <P> = %.4g ± %.2g GPa (%.1f s)",
                v_mean, v_err, p_mean, p_err, time.perf_counter() - clock)

    # ---- (b) NVT at ±strain per Voigt component -------------------------------------------
    C = np.zeros((6, 6))
    cov = np.zeros((6, 6, 6))                # cov[j]: covariance of column j's six entries
    run_means = np.zeros((6, 2, 6))
    run_errs = np.zeros((6, 2, 6))
    tau = np.zeros((6, 6))                   # frames, per (strain j, stress component i)
    curves = {}
    m_block = steps // n_blocks
    for j in range(6):
        series = []
        for s, sign in enumerate((1.0, -1.0)):
            k = 2 + 2 * j + s
            logger.info("elastic_constants_md: NVT e%d = %+g (%d + %d steps), run %d/%d",
                        j + 1, sign * h, eq, steps, k, n_runs)
            F = np.eye(3) + _strain_matrix(j, sign * h)
            work = ref.copy()
            work.set_cell(cell_ref @ F.T, scale_atoms=True)
            work.set_momenta(ref.get_momenta())
            if engine == "lammps":
                from .lammps_md import run_md_lammps

                # the checks every 25 steps, the stress of every step from LAMMPS itself
                r = run_md_lammps(work, calc if lammps_potential is None else lammps_potential,
                                  steps=eq + steps, ensemble="nvt", seed=seeds[1 + j],
                                  sample_interval=25, checkpoint_every=0,
                                  stress_every_step=True, **md_kw)
                sig = r.stress_steps_GPa[-steps:]
            else:
                r = run_md(work, calc, steps=eq + steps, ensemble="nvt", seed=seeds[1 + j],
                           record_stress=True, **md_kw)
                sig = r.stress_GPa[-steps:]
            series.append(sig)
            for i in range(6):
                run_means[j, s, i], run_errs[j, s, i] = block_average(sig[:, i], n_blocks)
        d = (series[0] - series[1]) / (2.0 * h)       # GPa, (steps, 6)
        C[:, j] = d.mean(axis=0)
        bm = _block_means(d, n_blocks)
        cov[j] = np.cov(bm, rowvar=False, ddof=1) / n_blocks
        for i in range(6):
            tau[j, i] = integrated_autocorrelation_time(d[:, i])
            curves[(j, i)] = d[:, i]
        logger.info("elastic_constants_md: column %d done (%.1f s)", j + 1,
                    time.perf_counter() - clock)

    # ---- (c) symmetric stiffness, propagated sampling error --------------------------------
    err = np.sqrt(np.stack([np.diag(cov[j]) for j in range(6)], axis=1))   # err[i, j] of C_ij
    C_sym = 0.5 * (C + C.T)
    dC_dlnV, why_not = _volume_sensitivity(atoms, calc, h)
    dlnv = v_err / v_mean
    if dC_dlnV is None:
        warnings.warn("elastic_constants_md: the static tensor needed to propagate the reference-"
                      f"volume error failed ({why_not}); only the NVT sampling error is "
                      "propagated", UserWarning, stacklevel=2)
        dC_vol = np.zeros((6, 6))
    else:
        dC_vol = 0.5 * (dC_dlnV + dC_dlnV.T) * dlnv
    n_samples = 6 * 6 * 2 + 2
    c = math.sqrt((n_samples - 1) / 2.0)
    samples = []
    for j in range(6):
        lam, U = np.linalg.eigh(cov[j])
        for k in range(6):
            col = c * math.sqrt(max(float(lam[k]), 0.0)) * U[:, k]
            for sgn in (1.0, -1.0):
                Cs = C.copy()
                Cs[:, j] += sgn * col
                samples.append(0.5 * (Cs + Cs.T))
    for sgn in (1.0, -1.0):
        samples.append(C_sym + sgn * c * dC_vol)
    voigt = Estimate(C_sym, "GPa", {"md_sampling": np.array(samples)})

    ratio = m_block / tau
    worst = np.unravel_index(int(np.argmin(ratio)), ratio.shape)
    decorrelated = bool(ratio.min() >= DECORRELATION_BLOCKS_PER_TAU)
    lengths, curve = blocking_curve(curves[worst], min_blocks=4)
    if not decorrelated:
        warnings.warn(
            f"elastic_constants_md: blocks of {m_block} steps are shorter than "
            f"{DECORRELATION_BLOCKS_PER_TAU:g} autocorrelation times for stress "
            f"{_VOIGT_NAMES[worst[1]]} under e{worst[0] + 1} (tau = {tau[worst]:.3g} steps): the "
            "sampling error is underestimated; raise steps or lower n_blocks", UserWarning,
            stacklevel=2)
    asym = np.abs(C - C.T) / 2.0
    sym_err = np.sqrt(err ** 2 + err.T ** 2) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        asym_sigma = np.where(sym_err > 0, asym / np.where(sym_err > 0, sym_err, 1.0), 0.0)
    provenance = {
        "method": "MD stress-strain: NPT reference cell, NVT at ±strain per Voigt component, "
                  "central differences of the time-averaged stress (kinetic term included)",
        "calculator": type(calc).__name__,
        "ensemble": "isothermal (Langevin NVT at fixed strained cells)",
        "integrators": {"npt": "ase.md.langevinbaoab.LangevinBAOAB (Langevin-Hoover barostat)",
                        "nvt": "ase.md.langevin.Langevin" if engine == "ase" else
                        "LAMMPS fix langevin + fix nve"},
        "temperature_K": T, "pressure_GPa": float(pressure_GPa),
        "strain": h, "strain_convention": "engineering shear strain (e4 = 2 e_yz), linear strain",
        "timestep_fs": dt, "friction_per_fs": float(friction), "pressure_tau_fs": tau_p,
        "cell_fluctuations": cell_fluctuations,
        "steps": steps, "equilibration_steps": eq, "npt_steps": npt_steps,
        "n_blocks": n_blocks, "block_length_steps": m_block,
        "seeds": {"root_entropy": str(entropy), "npt": seeds[0], "pairs": seeds[1:]},
        "common_random_numbers": "the +strain and -strain runs of a pair share their seed",
        "n_atoms": len(atoms),
        "reference_cell_A": cell_ref.tolist(),
        "npt_mean_volume_A3": [v_mean, v_err],
        "npt_mean_pressure_GPa": [p_mean, p_err],
        "npt_mean_temperature_K": [t_mean, t_err],
        "mean_stress_GPa": {f"e{j + 1}{'+-'[s]}": run_means[j, s].tolist()
                            for j in range(6) for s in range(2)},
        "mean_stress_stderr_GPa": {f"e{j + 1}{'+-'[s]}": run_errs[j, s].tolist()
                                   for j in range(6) for s in range(2)},
        "stderr_nvt_GPa": err.tolist(),
        "reference_volume_rel_stderr": dlnv,
        "dC_dlnV_static_GPa": None if dC_dlnV is None else dC_dlnV.tolist(),
        "stderr_reference_volume_GPa": np.abs(dC_vol).tolist(),
        "volume_error_note": why_not or ("propagated with the static dC/dlnV; the mean cell "
                                         "shape noise is not propagated"
                                         if cell_fluctuations == "full" else
                                         "propagated with the static dC/dlnV"),
        "stderr_if_runs_independent_GPa": (np.sqrt(run_errs[:, 0, :] ** 2
                                                   + run_errs[:, 1, :] ** 2).T
                                           / (2.0 * h)).tolist(),
        "autocorrelation_time_steps": tau.T.tolist(),
        "min_block_length_over_tau": float(ratio.min()),
        "blocks_decorrelated": decorrelated,
        "decorrelation_criterion": f"block length >= {DECORRELATION_BLOCKS_PER_TAU:g} tau_int",
        "blocking_curve_worst": {"series": f"stress {_VOIGT_NAMES[worst[1]]} under "
                                           f"e{worst[0] + 1}",
                                 "block_length_steps": lengths.tolist(),
                                 "stderr_GPa": curve.tolist()},
        "asymmetry_max_GPa": float(asym.max()),
        "asymmetry_max_in_sigma": float(asym_sigma.max()),
        "elapsed_s": time.perf_counter() - clock,
    }
    logger.info("elastic_constants_md: done in %.1f s", provenance["elapsed_s"])
    return ElasticTensor.from_voigt(voigt, unit="GPa", relaxed_ions=True, temperature_K=T,
                                    structure=structure or atoms.get_chemical_formula(),
                                    provenance=provenance)
