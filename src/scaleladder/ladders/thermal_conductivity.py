"""Ladder ``thermal-conductivity``: an interatomic potential -> phonon Boltzmann transport ->
kappa(T) -> the temperature field of a silicon heat spreader under a hot spot.

Stages: the lattice thermal conductivity of silicon with the chosen potential (phono3py, RTA,
second- and third-order force constants from the project's calculator; the q-mesh's share as a
one-sigma source from a coarser mesh), then the steady conduction in a cross-section of a
silicon plate (``spreader.width_mm`` x ``spreader.thickness_mm``) whose bottom sits on a heat
sink at ``spreader.sink_K`` and whose top takes ``spreader.heat_flux_W_cm2`` over a hot spot
``spreader.hotspot_mm`` wide (the rest insulated), with k(T) from the handoff; three mesh
levels.  The result: the peak temperature with sources ``q_mesh`` (the conductivity's
convergence, propagated by re-solving with its two samples) and ``mesh`` (the change between
the two finest levels, Richardson at the observed order).

The potential's share: the peak with the second potential's kappa (``potential_alt``, Tersoff's
Si(C) by default) as the alternative sample -- the spread of two defensible potentials, as the
flagship prices the functional; the flagship's fit ensemble is the better source (to come).
"""
from __future__ import annotations

import numpy as np

from ..core import validate as V
from ..core.pipeline import stage
from .base import LadderSpec, Setting

SOURCE_HANDOFFS = {
    "q_mesh": "phonon BTE -> kappa(T): q-mesh convergence",
    "mesh": "continuum heat conduction: discretisation (Richardson)",
    "potential": "interatomic potential -> force constants (SW vs Tersoff T3)",
    "supercell": "force constants: supercell size (interactions truncated)",
    "fit ensemble": "atomistic fit (FittedPotential ensemble) -> force constants",
}
TEMPERATURES = (100.0, 150.0, 200.0, 300.0, 400.0, 600.0, 800.0, 1000.0)
EXPERIMENT_300K = 148.0      # W/(m K), natural Si (Glassbrenner & Slack 1964)


#: the potentials and their lattice constants (Å): SW (Stillinger & Weber 1985) and Tersoff's
#: Si(C) (T3, PRB 38, 9902 (1988)) -- the Tersoff silicon of thermal-transport studies; his
#: Si(B) (T2) has soft transverse-acoustic phonons (2.8 THz at X) and gave 18.6 W/(m K) at 300 K
POTENTIALS = {"sw": 5.431, "tersoff": 5.432}


def _calculator(name: str):
    from ..atomistic import StillingerWeber
    from ..atomistic.tersoff import TERSOFF_SI_C, Tersoff

    return StillingerWeber() if name == "sw" else Tersoff(TERSOFF_SI_C)


@stage("atomistic.lattice_kappa", version="3")
def lattice_kappa(potential: str, a0: float, supercell: int, mesh: int,
                  supercell_check: bool = True):
    """kappa(T) of diamond silicon (RTA) at ``TEMPERATURES`` with its q-mesh (and supercell)
    sources."""
    from ase.build import bulk

    from ..atomistic.thermal_conductivity import lattice_thermal_conductivity

    return lattice_thermal_conductivity(bulk("Si", "diamond", a=a0), _calculator(potential),
                                        temperatures=TEMPERATURES, supercell=(supercell,) * 3,
                                        mesh=(mesh,) * 3, convergence=True,
                                        supercell_convergence=supercell_check)


def _spreader_mesh(width, thickness, hotspot, level):
    from skfem import MeshTri

    nx, ny = 20 * 2 ** level, max(2, int(round(20 * 2 ** level * thickness / width * 4)))
    xs = np.linspace(0.0, width, nx + 1)
    ys = np.linspace(0.0, thickness, ny + 1)
    m = MeshTri.init_tensor(xs, ys)
    return m.with_boundaries({
        "sink": lambda x: np.isclose(x[1], 0.0),
        "hotspot": lambda x: np.isclose(x[1], thickness) & (np.abs(x[0] - width / 2)
                                                            <= hotspot / 2 + 1e-12),
    })


@stage("continuum.heat_spreader", version="3")
def heat_spreader(kappa, kappa_alt, width_mm: float, thickness_mm: float, hotspot_mm: float,
                  heat_flux_W_cm2: float, sink_K: float, levels: int) -> dict:
    """Peak temperature (K) of the spreader: nominal kappa at every mesh level, the q-mesh
    samples of kappa at the finest, and the other potential's kappa (``kappa_alt``, the
    ``potential`` source: the two potentials as alternatives)."""
    from ..continuum.heat import solve_heat
    from ..handoffs import ThermalConductivity
    from ..uq import Estimate, one_sigma_samples

    w, t, h = width_mm * 1e-3, thickness_mm * 1e-3, hotspot_mm * 1e-3
    q = heat_flux_W_cm2 * 1e4

    def peak(kap, level):
        m = _spreader_mesh(w, t, h, level)
        s = solve_heat(m, kap, dirichlet={"sink": sink_K}, flux={"hotspot": -q}, element="P2")
        return s.max_temperature()
    peaks = [peak(kappa, lv) for lv in range(levels)]
    value = peaks[-1]
    sources = {}
    if levels >= 3:
        d1, d2 = peaks[-2] - peaks[-3], peaks[-1] - peaks[-2]
        order = float(np.log2(abs(d1 / d2))) if d2 != 0 and d1 / d2 > 1 else 1.0
        sources["mesh"] = one_sigma_samples(value, abs(d2) / (2 ** order - 1))
    for name, ks in kappa.kappa.sources.items():       # q_mesh, supercell: kappa's samples
        samples = []
        for sample in ks:
            kk = ThermalConductivity(kappa.temperatures_K, Estimate(sample, "W/m/K"), "sample")
            samples.append(peak(kk, levels - 1))
        sources[name] = np.array(samples)
    peak_alt = None
    if kappa_alt is not None:
        peak_alt = peak(kappa_alt, levels - 1)
        sources["potential"] = np.array([value, peak_alt])
    return {"T_peak": Estimate(value, "K", sources), "peaks_by_level": peaks,
            "rise_K": value - sink_K, "T_peak_alt_potential": peak_alt,
            "geometry": {"width": w, "thickness": t, "hotspot": h, "q": q, "sink_K": sink_K,
                         "levels": levels}}


@stage("atomistic.fitted_kappa", version="1")
def fitted_kappa(potential, members: int, supercell: int, mesh: int):
    """kappa(T) of a fitted Stillinger-Weber potential (the flagship's): the nominal parameters
    at their own zero-pressure lattice constant, and ``members`` ensemble members as the
    ``fit ensemble`` source (each at its own lattice constant); q-mesh source as above."""
    from ase.build import bulk

    from ..atomistic import StillingerWeber
    from ..atomistic.properties import relax_lattice_constant
    from ..atomistic.thermal_conductivity import lattice_thermal_conductivity
    from ..core.errors import InputError
    from ..handoffs import ThermalConductivity
    from ..uq import Estimate

    if getattr(potential, "form", None) != "StillingerWeber":
        raise InputError("potential", getattr(potential, "form", type(potential).__name__),
                         "a fitted Stillinger-Weber potential")

    def kappa_of(params, convergence):
        calc = StillingerWeber(params)
        cub = bulk("Si", "diamond", a=5.431 * params["sigma"] / 2.0951, cubic=True)
        a0 = relax_lattice_constant(cub, calc)
        return lattice_thermal_conductivity(bulk("Si", "diamond", a=a0), calc,
                                            temperatures=TEMPERATURES,
                                            supercell=(supercell,) * 3, mesh=(mesh,) * 3,
                                            convergence=convergence), a0
    nominal, a0 = kappa_of(dict(potential.parameters), True)
    m = min(int(members), potential.n_members)
    sources = dict(nominal.kappa.sources)
    if m >= 2:
        sources["fit ensemble"] = np.array([np.asarray(kappa_of(potential.member(i), False)[0]
                                                       .kappa.value) for i in range(m)])
    prov = dict(nominal.provenance, a0_A=a0, ensemble_members=m,
                potential=potential.provenance.get("method", "fitted SW"))
    return ThermalConductivity(nominal.temperatures_K,
                               Estimate(np.asarray(nominal.kappa.value), "W/m/K", sources),
                               nominal.method, provenance=prov)


def build(settings: dict) -> dict:
    main = settings["potential"]
    if main == "flagship":
        from . import get_ladder

        flag = get_ladder("silicon-fracture")
        fit = flag.build(flag.resolve())["potential"]
        k = fitted_kappa.bind(potential=fit, members=settings["bte.members"],
                              supercell=settings["bte.supercell"], mesh=settings["bte.mesh"]
                              ).with_label("phono3py: kappa(T), the flagship's fitted SW")
        return _with_spreader(settings, k, None)
    k = lattice_kappa.bind(potential=main, a0=POTENTIALS[main],
                           supercell=settings["bte.supercell"], mesh=settings["bte.mesh"],
                           supercell_check=settings["bte.supercell_check"]
                           ).with_label(f"phono3py: kappa(T), {main}")
    alt = settings["potential_alt"]
    k_alt = None
    if alt != "none":
        k_alt = lattice_kappa.bind(potential=alt, a0=POTENTIALS[alt],
                                   supercell=settings["bte.supercell"],
                                   mesh=settings["bte.mesh"]).with_label(f"phono3py: kappa(T), "
                                                                         f"{alt}")
    return _with_spreader(settings, k, k_alt)


def _with_spreader(settings, k, k_alt) -> dict:
    sp = heat_spreader.bind(kappa=k, kappa_alt=k_alt, width_mm=settings["spreader.width_mm"],
                            thickness_mm=settings["spreader.thickness_mm"],
                            hotspot_mm=settings["spreader.hotspot_mm"],
                            heat_flux_W_cm2=settings["spreader.heat_flux_W_cm2"],
                            sink_K=settings["spreader.sink_K"],
                            levels=settings["spreader.levels"]).with_label("heat spreader")
    out = {"kappa": k, "spreader": sp}
    if k_alt is not None:
        out["kappa_alt"] = k_alt
    return out


def summarize(settings: dict, results: dict) -> list:
    k = results["kappa"]
    s = k.scalar()
    alt = results.get("kappa_alt")
    sa = np.asarray(alt.scalar().value) if alt is not None else None
    rows = [(f"kappa({T:g} K)", f"{float(v):.4g} ± {float(e):.2g}", "W/(m K)",
             "; ".join(x for x in (
                 f"{settings['potential_alt']}: {sa[i]:.4g}" if sa is not None else "",
                 f"experiment {EXPERIMENT_300K:g} (natural Si)" if T == 300.0 else "") if x))
            for i, (T, v, e) in enumerate(zip(k.temperatures_K, s.value, np.atleast_1d(s.std)))]
    sp = results["spreader"]
    Tp = sp["T_peak"]
    rows2 = [("peak temperature", f"{float(Tp.value):.2f} ± {float(Tp.std):.2g}", "K",
              f"rise {sp['rise_K']:.2f} K over the sink; by mesh level "
              + ", ".join(f"{p:.3f}" for p in sp["peaks_by_level"]))]
    for src, share in sorted(Tp.budget().items(), key=lambda kv: -kv[1]):
        rows2.append((src, f"{100 * share:.1f} %", "", SOURCE_HANDOFFS[src]))
    return [(f"Lattice thermal conductivity of Si ({settings['potential']}, RTA, "
             f"{settings['bte.mesh']}³ q-mesh)", rows), ("Heat spreader", rows2)]


SETTINGS = (
    Setting("potential", "sw", "interatomic potential: sw | tersoff | flagship (the "
            "silicon-fracture ladder's fitted SW and its ensemble; runs or reuses that ladder)",
            str, lambda n, v: V.one_of(n, v, ("sw", "tersoff", "flagship"))),
    Setting("potential_alt", "tersoff", "second potential, for the potential's share of the "
            "budget: sw | tersoff | none (ignored with potential=flagship: its fit ensemble "
            "is the source)", str,
            lambda n, v: V.one_of(n, v, ("sw", "tersoff", "none"))),
    Setting("bte.supercell", 3, "force-constant supercell (primitive cells per edge)", int,
            lambda n, v: V.positive_int(n, v, 2)),
    Setting("bte.mesh", 11, "q-mesh per axis (the coarse one is about 2/3)", int,
            lambda n, v: V.positive_int(n, v, 5)),
    Setting("bte.supercell_check", True, "also a supercell one larger: the supercell source",
            bool),
    Setting("bte.members", 4, "potential=flagship: fit-ensemble members whose kappa is computed",
            int, lambda n, v: V.positive_int(n, v, 2)),
    Setting("spreader.width_mm", 10.0, "plate width (mm)", float, V.positive),
    Setting("spreader.thickness_mm", 0.5, "plate thickness (mm)", float, V.positive),
    Setting("spreader.hotspot_mm", 1.0, "hot-spot width at the top centre (mm)", float,
            V.positive),
    Setting("spreader.heat_flux_W_cm2", 1000.0, "heat flux into the hot spot (W/cm²)", float,
            V.positive),
    Setting("spreader.sink_K", 300.0, "heat-sink temperature at the bottom (K)", float,
            lambda n, v: V.in_range(n, v, 100.0, 900.0)),
    Setting("spreader.levels", 3, "mesh levels (each halves the element size)", int,
            lambda n, v: V.positive_int(n, v, 1)),
)


def plot_kappa(results, ax):
    """kappa(T) of the potential(s) on log axes, with the q-mesh band and the experiment."""
    k = results["kappa"]
    T = k.temperatures_K
    s = k.scalar()
    v, e = np.asarray(s.value), np.atleast_1d(s.std)
    ax.fill_between(T, v - e, v + e, alpha=0.25, color="C0")
    ax.loglog(T, v, "o-", color="C0", label=k.provenance.get("calculator", "main"))
    alt = results.get("kappa_alt")
    if alt is not None:
        ax.loglog(T, np.asarray(alt.scalar().value), "s--", color="C1",
                  label=f"{alt.provenance.get('calculator', 'alt')} (Si(C))")
    ax.loglog([300.0], [EXPERIMENT_300K], "k*", ms=11, label="experiment, natural Si")
    ax.set_xlabel("T (K)")
    ax.set_ylabel("κ (W/(m K)), RTA")
    ax.legend(fontsize=8)


def plot_field(results, ax):
    """The spreader's temperature field (nominal kappa, finest mesh), recomputed for the plot."""
    from ..continuum.heat import solve_heat

    sp = results["spreader"]
    geo = sp.get("geometry")
    if geo is None:
        ax.text(0.5, 0.5, "no geometry recorded", ha="center")
        return
    m = _spreader_mesh(geo["width"], geo["thickness"], geo["hotspot"], geo["levels"] - 1)
    sol = solve_heat(m, results["kappa"], dirichlet={"sink": geo["sink_K"]},
                     flux={"hotspot": -geo["q"]}, element="P1")
    tri = ax.tripcolor(m.p[0] * 1e3, m.p[1] * 1e3, m.t.T, sol.T[: m.p.shape[1]],
                       shading="gouraud", cmap="inferno")
    ax.set_aspect(4.0)
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm), 4x stretched")
    ax.figure.colorbar(tri, ax=ax, label="T (K)", orientation="horizontal", pad=0.3)


def _check(settings):
    from ..core.errors import InputError

    if settings["potential_alt"] == settings["potential"]:
        raise InputError("potential_alt", settings["potential_alt"], "a potential other than "
                         "`potential` (or none)")
    if settings["spreader.hotspot_mm"] >= settings["spreader.width_mm"]:
        raise InputError("spreader.hotspot_mm", settings["spreader.hotspot_mm"],
                         f"less than the plate width ({settings['spreader.width_mm']:g} mm)")


LADDER = LadderSpec(
    name="thermal-conductivity",
    description="potential -> phonon BTE kappa(T) -> a silicon heat spreader's peak temperature",
    settings=SETTINGS, build=build, summarize=summarize, check=_check,
    source_handoffs=SOURCE_HANDOFFS, headline=("spreader",),
    plots=(("kappa", plot_kappa, (5.5, 4.2), 1), ("field", plot_field, (9, 3.2), 1)),
)

__all__ = ["LADDER", "build", "summarize", "lattice_kappa", "heat_spreader"]
