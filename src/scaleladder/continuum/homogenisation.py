"""Homogenisation: the effective stiffness of a microstructure as an ``ElasticTensor`` with its
error budget, and the analytic bounds beside it.

:func:`homogenise` solves one or several RVEs — several random realisations at each of a
sequence of RVE sizes — by FFT (:mod:`.fft`) or finite elements (:mod:`.rve`) and returns a
:class:`Homogenisation`:

* ``stiffness``: an :class:`~scaleladder.handoffs.ElasticTensor` whose value is the mean over
  the realisations at the largest size, with the sources

  - ``rve_realisation``: the standard error of that mean (the spread between realisations / √n);
  - ``rve_size``: the change of the mean from the previous size to the largest one (the RVE is
    representative when this is small; a conservative estimate of the remaining size bias);
  - every source of the phases' own stiffness (e.g. the single-crystal constants' ``xc`` or
    ``fit``), propagated by re-solving the first realisation at the largest size with each
    sample of that source (``propagate_phase_sources=True``; the difference to its nominal
    solve is added to the mean, so realisation noise does not leak into the phase sources);

* ``bounds``: Voigt and Reuss always; Hashin–Shtrikman for isotropic phases (3D, or the
  transverse bounds of a columnar 2D map) and for cubic polycrystals; Mori–Tanaka for
  two-phase matrix–inclusion maps;
* ``hill_mandel``: the largest Hill–Mandel residual over all solves, per boundary condition;
  above ``hill_mandel_tol`` the boundary condition (or the unconverged solver) is named in
  ``warnings`` as violating the condition.
"""
from __future__ import annotations

import time
import warnings as _warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..core import validate as _v
from ..core.errors import InputError
from ..handoffs import ElasticTensor, Microstructure
from ..uq import Estimate, one_sigma_samples
from . import bounds as B

__all__ = ["Homogenisation", "homogenise", "apparent_stiffness", "METHODS"]

METHODS = ("fft", "fem")


def apparent_stiffness(micro: Microstructure, *, method: str = "fft", bc: str = "periodic",
                       scheme: str = "cg", solver: str = "direct", tol: float = 1e-8
                       ) -> tuple[np.ndarray, float, int]:
    """Apparent stiffness of one RVE (Voigt, GPa), its largest Hill–Mandel residual, and the
    solver iterations (FFT) or degrees of freedom (FEM)."""
    _v.one_of("method", method, METHODS)
    if method == "fft":
        if bc != "periodic":
            raise InputError("bc", bc, "'periodic' with method='fft' (the FFT solver is "
                             "periodic by construction; use method='fem' for 'linear' or "
                             "'traction')")
        from .fft import fft_effective_stiffness

        c, sols = fft_effective_stiffness(micro, scheme=scheme, tol=tol)
        return c, max(s.hill_mandel for s in sols), sum(s.iterations for s in sols)
    from .rve import fem_effective_stiffness

    c, sols = fem_effective_stiffness(micro, bc, solver=solver, tol=min(tol, 1e-8))
    return c, max(s.hill_mandel for s in sols), sols[0].n_dofs


@dataclass
class Homogenisation:
    """What :func:`homogenise` returns (see the module notes).

    Attributes
    ----------
    stiffness : ElasticTensor
        The effective stiffness with its budget.
    per_size : list of dict
        For each RVE size: ``size`` (as given), ``n_voxels``, ``mean`` and ``std`` (6x6, GPa)
        over the realisations, ``n_realisations``, ``volume_fractions``.
    bounds : dict
        ``"voigt"``, ``"reuss"`` (6x6, GPa), and where they apply ``"hashin_shtrikman"``
        (:class:`~.bounds.IsotropicBounds`) and ``"mori_tanaka"`` (6x6).
    hill_mandel : float
        Largest Hill–Mandel residual over every solve.
    warnings : list of str
    """

    stiffness: ElasticTensor
    method: str
    bc: str
    per_size: list
    bounds: dict
    hill_mandel: float
    elapsed_s: float
    warnings: list = field(default_factory=list)
    realisation_values: list = field(default_factory=list)

    @property
    def moduli(self) -> tuple[float, float]:
        """(bulk, shear) of the isotropic projection of the nominal stiffness, GPa (for a
        columnar 2D map: the transverse plane-strain bulk and shear moduli)."""
        c = np.asarray(self.stiffness.voigt.value)
        if self.bounds.get("transverse"):
            return B.transverse_moduli(c)
        return B.isotropic_moduli(c)

    def within_bounds(self, rtol: float = 1e-9) -> bool:
        hs = self.bounds.get("hashin_shtrikman")
        k, g = self.moduli
        ok = True
        if hs is not None:
            ok &= hs.contains(k, g, rtol)
        c = np.asarray(self.stiffness.voigt.value)
        scale = np.abs(c).max()
        ok &= np.linalg.eigvalsh(self.bounds["voigt"] - c).min() >= -rtol * scale
        ok &= np.linalg.eigvalsh(c - self.bounds["reuss"]).min() >= -rtol * scale
        return bool(ok)

    def __str__(self) -> str:
        k, g = self.moduli
        what = "transverse k_T, G_T" if self.bounds.get("transverse") else "K, G"
        lines = [f"effective stiffness by {self.method.upper()} ({self.bc} BC), "
                 f"{what} = {k:.4g}, {g:.4g} GPa; Hill-Mandel residual {self.hill_mandel:.2g}"]
        hs = self.bounds.get("hashin_shtrikman")
        if hs is not None:
            lines.append(f"  {hs.kind} bounds: bulk [{hs.bulk[0]:.4g}, {hs.bulk[1]:.4g}], "
                         f"shear [{hs.shear[0]:.4g}, {hs.shear[1]:.4g}] GPa")
        for row in self.per_size:
            kk, gg = (B.transverse_moduli(row["mean"]) if self.bounds.get("transverse")
                      else B.isotropic_moduli(row["mean"]))
            lines.append(f"  size {row['size']}: {row['n_realisations']} realisation(s), "
                         f"{what} = {kk:.4g}, {gg:.4g} GPa")
        c11 = self.stiffness.voigt[0, 0]
        for name, var in c11.variances.items():
            lines.append(f"  C11 = {float(c11.value):.4g} GPa: ±{np.sqrt(var):.3g} GPa from {name} "
                         f"({100 * c11.budget()[name]:.0f} % of the variance)")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _bounds_for(micro: Microstructure) -> dict:
    out = {"voigt": B.voigt_bound(micro), "reuss": B.reuss_bound(micro),
           "transverse": micro.ndim == 2}
    iso = True
    try:
        km = B._isotropic_phase_moduli(micro)
    except InputError:
        iso = False
    if iso:
        fr = micro.volume_fractions()
        out["hashin_shtrikman"] = B.hashin_shtrikman_isotropic(fr, km[:, 0], km[:, 1],
                                                               transverse=micro.ndim == 2)
        if micro.n_phases == 2 and micro.kind == "phases" and \
                micro.provenance.get("generator", "").startswith(("random_inclusions",
                                                                  "hexagonal_fibres")):
            c0, c1 = (np.asarray(p.voigt.value) for p in micro.phases)
            out["mori_tanaka"] = B.mori_tanaka(c0, c1, float(fr[1]),
                                               aspect_ratio=1.0 if micro.ndim == 3 else 1e6)
    elif micro.kind == "grains" and len(micro.phases) == 1:
        c = np.asarray(micro.phases[0].voigt.value)
        c11, c12, c44 = c[0, 0], c[0, 1], c[3, 3]
        cub = np.zeros((6, 6))
        cub[:3, :3] = c12
        cub[[0, 1, 2], [0, 1, 2]] = c11
        cub[[3, 4, 5], [3, 4, 5]] = c44
        if np.abs(c - cub).max() <= 1e-6 * np.abs(c).max() and micro.ndim == 3:
            out["hashin_shtrikman"] = B.hashin_shtrikman_cubic(c11, c12, c44)
    return out


def homogenise(microstructures: Microstructure | Callable[[Any, int], Microstructure] |
               Sequence[Microstructure], *, sizes: Sequence | None = None,
               seeds: Sequence[int] = (0,), method: str = "fft", bc: str = "periodic",
               scheme: str = "cg", solver: str = "direct", tol: float = 1e-8,
               propagate_phase_sources: bool = True, hill_mandel_tol: float = 1e-6,
               structure: str = "") -> Homogenisation:
    """Effective stiffness with its RVE-realisation and RVE-size budget.

    Parameters
    ----------
    microstructures : Microstructure, list of them, or generator
        One RVE; several realisations of one size; or ``generator(size, seed) ->
        Microstructure`` called for every ``size`` in ``sizes`` and ``seed`` in ``seeds``.
    sizes : sequence, optional
        With a generator: the RVE sizes, smallest first (whatever the generator takes, e.g.
        the box edge in units of the inclusion radius, or the number of grains).
    seeds : sequence of int
        Realisations per size.
    method : {"fft", "fem"}
    bc : {"periodic", "linear", "traction"}
        ``"linear"``/``"traction"`` need ``method="fem"``.
    scheme, solver, tol
        FFT scheme (``"cg"``, ``"basic"``), FEM solver (``"direct"``, ``"cg"``), tolerance.
    propagate_phase_sources : bool
        Carry the phases' own sources into the result (one extra solve per sample).
    hill_mandel_tol : float
        Residual above which a solve is reported as violating Hill–Mandel.
    """
    t0 = time.perf_counter()
    _v.one_of("method", method, METHODS)
    from .rve import BOUNDARY_CONDITIONS

    _v.one_of("bc", bc, BOUNDARY_CONDITIONS)
    if method == "fft" and bc != "periodic":
        raise InputError("bc", bc, "'periodic' with method='fft' (use method='fem' for "
                         "'linear' or 'traction')")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise InputError("seeds", seeds, "at least one seed")
    if isinstance(microstructures, Microstructure):
        groups = [("given", [microstructures])]
    elif callable(microstructures):
        if sizes is None or len(sizes) == 0:
            raise InputError("sizes", sizes, "RVE sizes for the generator, smallest first")
        groups = [(s, [microstructures(s, seed) for seed in seeds]) for s in sizes]
    else:
        ms = list(microstructures)
        if not ms or not all(isinstance(m, Microstructure) for m in ms):
            raise InputError("microstructures", type(microstructures).__name__,
                             "a Microstructure, a list of them, or a generator(size, seed)")
        groups = [("given", ms)]
    for _, ms in groups:
        for m in ms:
            m.require_phases("homogenisation")
            m.check_stable()
    per_size, hm_max, warns = [], 0.0, []
    values_last = []
    for size, ms in groups:
        vals = []
        for m in ms:
            c, hm, _ = apparent_stiffness(m, method=method, bc=bc, scheme=scheme, solver=solver,
                                          tol=tol)
            hm_max = max(hm_max, hm)
            if hm > hill_mandel_tol:
                warns.append(f"the {bc} boundary condition ({method}) violates the Hill-Mandel "
                             f"condition on a {m.shape} RVE: residual {hm:.3g} > "
                             f"{hill_mandel_tol:g} (an unconverged or inadmissible solve)")
            vals.append(c)
        vals = np.array(vals)
        per_size.append({"size": size, "n_voxels": int(np.prod(ms[0].shape)),
                         "mean": vals.mean(axis=0),
                         "std": vals.std(axis=0, ddof=1) if len(vals) > 1 else np.zeros((6, 6)),
                         "n_realisations": len(vals),
                         "volume_fractions": np.mean([m.volume_fractions() for m in ms],
                                                     axis=0).tolist()})
        values_last = vals
    last = per_size[-1]
    mean = last["mean"]
    sources = {}
    if last["n_realisations"] > 1:
        sources["rve_realisation"] = one_sigma_samples(
            mean, last["std"] / np.sqrt(last["n_realisations"]))
    if len(per_size) > 1:
        sources["rve_size"] = one_sigma_samples(mean, np.abs(mean - per_size[-2]["mean"]))
    ref = groups[-1][1][0]
    if propagate_phase_sources:
        names = sorted({n for p in ref.phases for n in p.voigt.sources})
        if names:
            c_ref = apparent_stiffness(ref, method=method, bc=bc, scheme=scheme, solver=solver,
                                       tol=tol)[0]
            for name in names:
                n_s = max(p.voigt.sources[name].shape[0] for p in ref.phases
                          if name in p.voigt.sources)
                samples = []
                for i in range(n_s):
                    phases = []
                    for p in ref.phases:
                        s = p.voigt.sources.get(name)
                        v = np.asarray(p.voigt.value) if s is None else s[min(i, len(s) - 1)]
                        phases.append(ElasticTensor.from_voigt(v, relaxed_ions=p.relaxed_ions))
                    c_i = apparent_stiffness(ref.with_phases(phases), method=method, bc=bc,
                                             scheme=scheme, solver=solver, tol=tol)[0]
                    samples.append(mean + (c_i - c_ref))
                sources[name] = np.array(samples)
    bounds = _bounds_for(ref)
    est = Estimate(0.5 * (mean + mean.T), "GPa",
                   {k: 0.5 * (v + np.swapaxes(v, 1, 2)) for k, v in sources.items()})
    tensor = ElasticTensor(est, relaxed_ions=all(p.relaxed_ions for p in ref.phases),
                           temperature_K=float(ref.phases[0].temperature_K),
                           structure=structure or f"homogenised {ref.kind} ({ref.ndim}D map)",
                           provenance={"method": method, "bc": bc, "scheme": scheme,
                                       "solver": solver, "tol": tol,
                                       "sizes": [str(r["size"]) for r in per_size],
                                       "seeds": seeds, "hill_mandel_max": hm_max,
                                       "microstructure": ref.provenance.get("generator", ""),
                                       "columnar_2d": ref.ndim == 2})
    for w in warns:
        _warnings.warn(w, UserWarning, stacklevel=2)
    return Homogenisation(stiffness=tensor, method=method, bc=bc, per_size=per_size,
                          bounds=bounds, hill_mandel=hm_max,
                          elapsed_s=time.perf_counter() - t0, warnings=warns,
                          realisation_values=list(values_last))
