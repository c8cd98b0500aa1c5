"""Ladder ``composite``: the transverse stiffness of a random unidirectional fibre composite by
RVE homogenisation over microstructure realisations.

Stages: one per RVE realisation (random sequential addition of fibres along z; periodic voxel
FEM or FFT of the cell problems -> the 6x6 apparent stiffness), at the fine resolution and at
half of it; then the moduli with their budget: ``realisations`` (the standard error of the mean
over the RVEs) and ``discretisation`` (the voxelised interfaces converge at first order in the
voxel size: the fine-minus-coarse difference is the error estimate of the fine mean, not
applied).  Mori-Tanaka with the realised fraction and the Hashin-Shtrikman bounds are printed
beside them.

The ladder declares its fidelities (:func:`fidelities`) for ``scaleladder multifidelity``: the
same realisation ``k`` solved by fine FEM (the high fidelity), coarse FEM, a coarse FFT and
Mori-Tanaka; and it is the ladder of the second worked design (``scaleladder design composite
--target moduli.E_T=... --vary composite.fraction=...``).

Results: ``moduli.E_T``, ``moduli.k_T``, ``moduli.G_T``, ``moduli.E_L`` (Estimates, GPa).
"""
from __future__ import annotations

import numpy as np

from ..core import validate as V
from ..core.errors import InputError
from ..core.pipeline import stage
from .base import LadderSpec, Setting

SOURCE_HANDOFFS = {
    "realisations": "RVE realisations -> effective stiffness (finite number of RVEs)",
    "discretisation": "voxel FEM of the cell problems (interfaces voxelised: first order)",
}
MODULI = ("E_T", "k_T", "G_T", "E_L")


def _phase(E: float, nu: float):
    from ..continuum.bounds import isotropic_voigt
    from ..handoffs import ElasticTensor

    return ElasticTensor.from_voigt(isotropic_voigt(E / (3 * (1 - 2 * nu)), E / (2 * (1 + nu))),
                                    relaxed_ions=True, structure="isotropic")


def _moduli(c: np.ndarray) -> dict:
    """Transverse Young's modulus (mean of x and y, 1/S11), plane-strain bulk and shear moduli,
    axial Young's modulus, GPa."""
    from ..continuum.bounds import transverse_moduli

    S = np.linalg.inv(c)
    k, g = transverse_moduli(c)
    return {"E_T": float(0.5 * (1 / S[0, 0] + 1 / S[1, 1])), "k_T": k, "G_T": g,
            "E_L": float(1 / S[2, 2])}


def fibre_count_radius(fraction: float, radius: float) -> tuple[int, float]:
    """The number of fibres nearest ``fraction / (pi radius^2)`` and the radius that makes
    their geometric fraction exactly ``fraction`` (box edge 1).  With a fixed radius the
    fraction would move in steps of one fibre (0.020 at radius 0.08) and every property with
    it: a design over the fraction would find a staircase."""
    n = max(int(round(fraction / (np.pi * radius ** 2))), 1)
    return n, float(np.sqrt(fraction / (np.pi * n)))


@stage("continuum.fibre_rve", version="2")
def fibre_rve(phases: dict, fraction: float, radius: float, resolution: int, method: str,
              seed: int) -> dict:
    """One RVE realisation: fibres of about ``radius`` (box edge 1; adjusted by
    :func:`fibre_count_radius` so that the geometric fraction is exactly ``fraction``) by
    random sequential addition (``seed``), ``resolution``² voxels, solved by ``method``
    ("fem" periodic voxel FEM, "fft" Moulinec-Suquet CG, "mori-tanaka" the mean-field
    estimate at this realisation's voxel fraction).  GPa."""
    from ..continuum.bounds import mori_tanaka
    from ..continuum.homogenisation import apparent_stiffness
    from ..continuum.microstructures import random_inclusions

    M = _phase(*phases["matrix"])
    F = _phase(*phases["fibre"])
    n_fibres, r = fibre_count_radius(fraction, radius)
    micro = random_inclusions((resolution, resolution), 1.0, fraction, r, seed=seed,
                              phases=(M, F))
    f_vox = float(micro.volume_fractions()[1])
    if method == "mori-tanaka":
        c, hm = mori_tanaka(np.asarray(M.voigt.value), np.asarray(F.voigt.value), f_vox,
                            1e6), 0.0
    else:
        c, hm, _ = apparent_stiffness(micro, method=method, tol=1e-6 if method == "fft"
                                      else 1e-8)
    return {"C_GPa": np.asarray(c), "fraction_voxel": f_vox, "hill_mandel": float(hm),
            "n_fibres": n_fibres, "radius": r,
            **_moduli(np.asarray(c))}


@stage("continuum.composite_moduli", version="1")
def composite_moduli(fine: list, coarse: list, phases: dict, fraction: float) -> dict:
    """Moduli (Estimates, GPa) with sources ``realisations`` and ``discretisation``, and the
    mean-field references."""
    from ..continuum.bounds import hashin_shtrikman_isotropic, mori_tanaka
    from ..uq import Estimate, one_sigma_samples

    out: dict = {}
    for q in MODULI:
        yf = np.array([r[q] for r in fine])
        yc = np.array([r[q] for r in coarse])
        mean = float(yf.mean())
        out[q] = Estimate(mean, "GPa", {
            "realisations": one_sigma_samples(mean, yf.std(ddof=1) / np.sqrt(yf.size)),
            "discretisation": one_sigma_samples(mean, abs(mean - float(yc.mean())))})
    f_vox = float(np.mean([r["fraction_voxel"] for r in fine]))
    M, F = _phase(*phases["matrix"]), _phase(*phases["fibre"])
    mt = _moduli(mori_tanaka(np.asarray(M.voigt.value), np.asarray(F.voigt.value), f_vox, 1e6))
    km, gm = (phases["matrix"][0] / (3 * (1 - 2 * phases["matrix"][1])),
              phases["matrix"][0] / (2 * (1 + phases["matrix"][1])))
    kf, gf = (phases["fibre"][0] / (3 * (1 - 2 * phases["fibre"][1])),
              phases["fibre"][0] / (2 * (1 + phases["fibre"][1])))
    hs = hashin_shtrikman_isotropic([1 - f_vox, f_vox], [km, kf], [gm, gf], transverse=True)
    return {**out, "mori_tanaka": mt, "fraction_voxel": f_vox,
            "hashin_shtrikman_G_T": [float(v) for v in hs.shear],
            "hashin_shtrikman_k_T": [float(v) for v in hs.bulk]}


def _phases(settings: dict) -> dict:
    return {"matrix": [settings["matrix.E"], settings["matrix.nu"]],
            "fibre": [settings["fibre.E"], settings["fibre.nu"]]}


def realisation(settings: dict, seed: int, resolution: int | None = None,
                method: str | None = None):
    """The node of one realisation (the fine one by default)."""
    n = settings["rve.resolution"] if resolution is None else int(resolution)
    return fibre_rve.bind(phases=_phases(settings), fraction=settings["composite.fraction"],
                          radius=settings["composite.fibre_radius"], resolution=n,
                          method=settings["rve.method"] if method is None else method,
                          seed=int(seed)).with_label(f"RVE {seed} ({n}², "
                                                     f"{method or settings['rve.method']})")


def build(settings: dict) -> dict:
    """``moduli`` (the moduli with their budget) from ``rve.realisations`` fine and coarse
    RVEs."""
    n = settings["rve.realisations"]
    fine = [realisation(settings, s) for s in range(n)]
    coarse = [realisation(settings, s, settings["rve.resolution"] // 2) for s in range(n)]
    mod = composite_moduli.bind(fine=fine, coarse=coarse, phases=_phases(settings),
                                fraction=settings["composite.fraction"]
                                ).with_label("moduli and their budget")
    return {"moduli": mod}


def check(settings: dict) -> None:
    """Cross-field checks before any solve: at least 2 voxels across a fibre radius at the
    coarse resolution; the fibres must fit."""
    coarse = settings["rve.resolution"] // 2
    _, r = fibre_count_radius(settings["composite.fraction"], settings["composite.fibre_radius"])
    if r * coarse < 2.0:
        raise InputError("rve.resolution", settings["rve.resolution"],
                         f"at least {int(np.ceil(4 / r))} "
                         f"(2 voxels across a fibre radius at half the resolution)")
    for key in ("mf.coarse_resolution", "mf.fft_resolution"):
        if r * settings[key] < 2.0:
            raise InputError(key, settings[key], f"at least {int(np.ceil(2 / r))} (2 voxels "
                             f"across a fibre radius)")


def fidelities(settings: dict) -> dict:
    """The multifidelity hierarchy of the mean transverse Young's modulus: realisation ``k``
    (seed ``1000 + k``, apart from the ladder's own) by fine voxel FEM (the high fidelity,
    ``rve.resolution``), FEM at ``mf.coarse_resolution``, FFT at ``mf.fft_resolution``, and
    Mori-Tanaka at that realisation's voxel fraction."""
    n = settings["rve.resolution"]
    nc = settings["mf.coarse_resolution"]
    nf = settings["mf.fft_resolution"]
    return {"quantity": "E_T", "unit": "GPa", "models": [
        (f"FEM {n}²", lambda k: realisation(settings, 1000 + k, n, "fem"), lambda r: r["E_T"]),
        (f"FEM {nc}²", lambda k: realisation(settings, 1000 + k, nc, "fem"), lambda r: r["E_T"]),
        (f"FFT {nf}²", lambda k: realisation(settings, 1000 + k, nf, "fft"), lambda r: r["E_T"]),
        ("Mori-Tanaka", lambda k: realisation(settings, 1000 + k, nc, "mori-tanaka"),
         lambda r: r["E_T"]),
    ]}


def _fmt(e) -> str:
    return f"{float(e.value):.4g} ± {float(e.std):.2g}"


def summarize(settings: dict, results: dict) -> list:
    r = results["moduli"]
    m = {q: r[q] for q in MODULI}
    rows = [(q, _fmt(m[q]), "GPa", f"Mori-Tanaka {r['mori_tanaka'][q]:.4g}") for q in MODULI]
    rows.append(("HS bounds on G_T", f"{r['hashin_shtrikman_G_T'][0]:.4g} – "
                 f"{r['hashin_shtrikman_G_T'][1]:.4g}", "GPa", ""))
    rows.append(("fibre fraction (voxels)", f"{r['fraction_voxel']:.4f}", "",
                 f"target {settings['composite.fraction']:g}"))
    return [(f"Effective moduli ({settings['rve.realisations']} RVEs, "
             f"{settings['rve.resolution']}² {settings['rve.method']})", rows)]


def _fraction(name, value):
    return V.in_range(name, value, 0.0, 0.5, inclusive=False)


def _nu(name, value):
    return V.in_range(name, value, -0.99, 0.499)


SETTINGS = (
    Setting("composite.fraction", 0.4, "fibre volume fraction (random sequential addition, "
            "< 0.5)", float, _fraction),
    Setting("composite.fibre_radius", 0.08, "fibre radius / RVE edge", float,
            lambda n, v: V.in_range(n, v, 0.01, 0.25)),
    Setting("matrix.E", 3.5, "matrix Young's modulus (GPa; epoxy)", float, V.positive),
    Setting("matrix.nu", 0.35, "matrix Poisson ratio", float, _nu),
    Setting("fibre.E", 72.0, "fibre Young's modulus (GPa; E-glass)", float, V.positive),
    Setting("fibre.nu", 0.22, "fibre Poisson ratio", float, _nu),
    Setting("rve.resolution", 96, "voxels per RVE edge (fine; the coarse is half)", int,
            lambda n, v: V.positive_int(n, v, 16)),
    Setting("rve.realisations", 6, "RVE realisations", int,
            lambda n, v: V.positive_int(n, v, 2)),
    Setting("rve.method", "fem", "cell-problem solver: fem | fft", str,
            lambda n, v: V.one_of(n, v, ("fem", "fft"))),
    Setting("mf.coarse_resolution", 48, "multifidelity: coarse FEM resolution", int,
            lambda n, v: V.positive_int(n, v, 16)),
    Setting("mf.fft_resolution", 32, "multifidelity: coarse FFT resolution", int,
            lambda n, v: V.positive_int(n, v, 16)),
)

LADDER = LadderSpec(
    name="composite",
    description="random fibre composite: transverse moduli by RVE homogenisation, with budget",
    settings=SETTINGS, build=build, summarize=summarize, check=check,
    source_handoffs=SOURCE_HANDOFFS, headline=("moduli",), fidelities=fidelities,
)

__all__ = ["LADDER", "build", "summarize", "fibre_rve", "composite_moduli", "fidelities",
           "realisation"]
