"""FE²: a macroscopic finite-element problem whose stress at every quadrature point comes from an
RVE solve driven by that point's strain.

Micro: :class:`PlasticRVE` — a voxel microstructure whose phases follow small-strain J2
plasticity with linear isotropic hardening (:mod:`.plasticity`; a phase without a
:class:`~.plasticity.J2Hardening` stays elastic), solved by FFT: Newton on the equilibrium
``P[σ(E + w)] = 0`` with conjugate gradients on ``P[K : δw] = −P[σ]`` for each Newton step
(de Geus et al. 2017, small strain).  Its response to a macroscopic strain is the mean stress,
the *consistent macroscopic tangent* ``dΣ/dE`` (the effective stiffness of the linearised RVE —
six more CG solves with the voxels' consistent tangents) and the updated internal variables,
with the Hill–Mandel residual of the solve.

Macro: :func:`fe2_solve` is 2D plane strain (``E_zz = E_xz = E_yz = 0``; the RVE
is columnar and its out-of-plane fluctuations stay free) on scikit-fem P1 triangles, one
quadrature point per element; Newton with the consistent tangent, load stepping on prescribed
displacements, internal variables committed at converged steps.  All RVE solves of one Newton
iteration are independent: they go to an executor (``None``: in process; a
``concurrent.futures`` executor, e.g. a process pool; a Dask ``Client``) in chunks, and are
cached by their input (strain and committed state, hashed) within a run.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..core import validate as _v
from ..core.errors import ConvergenceError, InputError
from ._mandel import (stiffness_to_mandel, stiffness_to_voigt, strain_voigt_to_mandel,
                      stress_mandel_to_voigt)
from .fft import _apply_stiffness, _Projector, cg_fluctuation
from .plasticity import J2Hardening, j2_update

__all__ = ["PlasticRVE", "RVEState", "RVEResponse", "FE2Result", "fe2_solve", "plate_with_hole",
           "single_scale_solve", "tension_symmetry_conditions"]


@dataclass
class RVEState:
    """Committed internal variables of one RVE (Mandel plastic strain (6, N), equivalent plastic
    strain (N,)) and the last converged fluctuation (an initial guess)."""

    eps_p: np.ndarray
    alpha: np.ndarray
    w: np.ndarray

    def digest(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        for a in (self.eps_p, self.alpha):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


@dataclass
class RVEResponse:
    stress: np.ndarray          # Voigt, GPa
    tangent: np.ndarray         # Voigt 6x6, GPa
    state: RVEState             # the trial state (commit it when the macro step converges)
    hill_mandel: float
    newton: int
    plastic_fraction: float     # share of voxels yielding


class PlasticRVE:
    """A periodic RVE with J2-plastic (or elastic) phases, solved by FFT Newton–CG.

    Parameters
    ----------
    micro : Microstructure
        With its phases (stiffness; rotated per label).
    hardening : sequence of J2Hardening or None
        One per phase; None keeps that phase elastic.
    tol : float
        Equilibrium residual ``‖P[σ]‖/‖⟨σ⟩‖`` of the Newton iteration.
    """

    def __init__(self, micro, hardening: Sequence[J2Hardening | None], *, tol: float = 1e-8,
                 max_newton: int = 30):
        from ..handoffs import Microstructure

        if not isinstance(micro, Microstructure):
            raise InputError("microstructure", type(micro).__name__, "a Microstructure handoff")
        micro.require_phases("an FE2 RVE")
        hard = list(hardening)
        if len(hard) != len(micro.phases):
            raise InputError("hardening", len(hard), f"one J2Hardening or None per phase "
                             f"({len(micro.phases)})")
        for i, h in enumerate(hard):
            if h is not None and not isinstance(h, J2Hardening):
                raise InputError(f"hardening[{i}]", type(h).__name__, "a J2Hardening or None")
        self.micro = micro
        self.tol = _v.positive("tol", tol)
        self.max_newton = _v.positive_int("max_newton", max_newton)
        self.C = np.ascontiguousarray(stiffness_to_mandel(micro.label_stiffness("GPa")))
        lp = micro.label_phase
        self.sy = np.array([math.inf if hard[p] is None else hard[p].yield_stress for p in lp])
        self.H = np.array([0.0 if hard[p] is None else hard[p].hardening for p in lp])
        self.labels = np.ascontiguousarray(micro.labels.ravel(), dtype=np.int64)
        self.N = self.labels.size
        self.shape = micro.shape
        self.elastic = bool(np.all(np.isinf(self.sy)))
        self._proj = None

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_proj"] = None                         # rebuilt on the worker
        return d

    @property
    def proj(self):
        if self._proj is None:
            self._proj = _Projector(self.shape, self.micro.size)
        return self._proj

    def initial_state(self) -> RVEState:
        return RVEState(eps_p=np.zeros((6, self.N)), alpha=np.zeros(self.N),
                        w=np.zeros((6, self.N)))

    def _pflat(self, x):
        return self.proj(x.reshape((6,) + self.shape)).reshape(6, self.N)

    def _linear_solve(self, table, labels, b, atol):
        def stress(x, out):
            _apply_stiffness(table, labels, x, out)
            return out

        def stop(rr, _m, k):
            if k > 5000:
                raise ConvergenceError(f"FE2 RVE: CG did not converge ({math.sqrt(rr):.3g} > "
                                       f"{atol:.3g})", suggestion="check the phases' tangents")
            return math.sqrt(rr) <= atol

        return cg_fluctuation(stress, self._pflat, b, stop)[0]

    def respond(self, strain, state: RVEState) -> RVEResponse:
        """Stress, consistent tangent and trial state under the macroscopic ``strain`` (Voigt,
        engineering shears) from the committed ``state``."""
        E = strain_voigt_to_mandel(np.asarray(strain, dtype=float))
        rms = math.sqrt(self.N)
        w = state.w.copy()
        vox = np.arange(self.N, dtype=np.int64)

        def evaluate(w_try):
            eps_try = E[:, None] + w_try
            out = j2_update(eps_try, state.eps_p, state.alpha, self.labels, self.C, self.sy,
                            self.H)
            if out[4]:
                raise ConvergenceError(f"FE2 RVE: the J2 return mapping failed in {out[4]} "
                                       "voxels", suggestion="smaller load steps")
            r_try = self._pflat(out[0])
            sc = rms * max(float(np.linalg.norm(out[0].mean(axis=1))), 1e-30)
            return eps_try, out, r_try, float(np.linalg.norm(r_try)) / sc, sc

        eps, (sig, K, eps_p, alpha, _), r, res, scale = evaluate(w)
        for it in range(self.max_newton + 1):
            if res <= self.tol or not np.any(E) and not np.any(w):
                break
            if it == self.max_newton:
                raise ConvergenceError(f"FE2 RVE: Newton residual {res:.3g} > {self.tol:g} after "
                                       f"{it} iterations", suggestion="smaller load steps")
            dw = self._linear_solve(K, vox, -r, atol=min(0.1 * res, 1e-2 * self.tol ** 0.5)
                                    * scale)
            # backtracking on the equilibrium residual: the J2 response is only piecewise
            # smooth, and a full Newton step can overshoot where voxels switch yielding
            step = 1.0
            for _ in range(8):
                trial = evaluate(w + step * dw)
                if trial[3] < res or step < 0.01:
                    break
                step *= 0.5
            w = w + step * dw
            eps, (sig, K, eps_p, alpha, _), r, res, scale = trial
        # consistent macroscopic tangent: the linearised RVE's effective stiffness
        cols = np.empty((6, 6))
        kmean = np.einsum("nab->ab", K) / self.N
        for k in range(6):
            ek = np.zeros(6)
            ek[k] = 1.0
            b = -self._pflat(np.ascontiguousarray(np.einsum("nab,b->an", K, ek)))
            # 1e-8: the macro Newton needs the tangent, not its last digits
            wk = self._linear_solve(K, vox, b, atol=1e-8 * rms * np.abs(kmean).max())
            kw = np.empty((6, self.N))
            _apply_stiffness(K, vox, wk, kw)
            cols[:, k] = kmean[:, k] + kw.mean(axis=1)
        tangent = stiffness_to_voigt(0.5 * (cols + cols.T))
        mean_sig = sig.mean(axis=1)
        mean_eps = eps.mean(axis=1)
        macro = float(mean_sig @ mean_eps)
        work = float(np.einsum("an,an->", sig, eps)) / self.N
        hm = abs(work - macro) / abs(macro) if macro != 0 else 0.0
        return RVEResponse(stress=stress_mandel_to_voigt(mean_sig), tangent=tangent,
                           state=RVEState(eps_p=eps_p, alpha=alpha, w=w), hill_mandel=hm,
                           newton=it, plastic_fraction=float(np.mean(alpha > state.alpha)))


def _respond_chunk(rve: PlasticRVE, strains, states):
    """RVE solves of one chunk (on a worker).  Small RVEs run their numba kernels on one thread
    (``numba.set_num_threads`` is per calling thread): the workers are the parallelism, and
    threads inside each on these arrays oversubscribe the cores (measured ~20x slower)."""
    import numba

    before = numba.get_num_threads()
    if rve.N < 32768:
        numba.set_num_threads(1)
    try:
        return [rve.respond(e, s) for e, s in zip(strains, states)]
    finally:
        numba.set_num_threads(before)


class _Dispatcher:
    """Sends the RVE solves of one Newton iteration to an executor in chunks; caches by input."""

    def __init__(self, rve: PlasticRVE, executor: Any = None, chunks: int | None = None):
        self.rve = rve
        self.executor = executor
        self.chunks = chunks
        self.cache: dict = {}
        self.hits = 0
        self.solves = 0

    def _key(self, e, s: RVEState):
        return hashlib.blake2b(np.ascontiguousarray(e).tobytes() + s.digest().encode(),
                               digest_size=16).hexdigest()

    def __call__(self, strains, states):
        keys = [self._key(e, s) for e, s in zip(strains, states)]
        todo = [i for i, k in enumerate(keys) if k not in self.cache]
        uniq = {}
        for i in todo:
            uniq.setdefault(keys[i], i)
        idx = list(uniq.values())
        self.hits += len(keys) - len(idx)
        self.solves += len(idx)
        if idx:
            es = [strains[i] for i in idx]
            ss = [states[i] for i in idx]
            if self.executor is None:
                out = _respond_chunk(self.rve, es, ss)
            else:
                n = self.chunks or 6 * _workers(self.executor)   # small chunks balance load
                parts = [np.array_split(np.arange(len(idx)), n)][0]
                parts = [p for p in parts if len(p)]
                submit = getattr(self.executor, "submit")
                futs = [submit(_respond_chunk, self.rve, [es[j] for j in p], [ss[j] for j in p])
                        for p in parts]
                out = [None] * len(idx)
                for p, f in zip(parts, futs):
                    res = f.result()
                    for j, r in zip(p, res):
                        out[j] = r
            for i, r in zip(idx, out):
                self.cache[keys[i]] = r
        return [self.cache[k] for k in keys]


def _workers(executor) -> int:
    n = getattr(executor, "_max_workers", None)
    if n:
        return int(n)
    info = getattr(executor, "scheduler_info", None)
    if callable(info):
        try:
            return max(1, sum(w.get("nthreads", 1) for w in info()["workers"].values()))
        except Exception:  # noqa: BLE001
            return 2
    return 2


# --------------------------------------------------------------------------------------------
# macro: 2D plane strain on P1 triangles
# --------------------------------------------------------------------------------------------
def plate_with_hole(width: float = 1.0, height: float = 1.0, radius: float = 0.2,
                    refine: int = 2, *, n_theta: int = 8, n_radial: int = 6):
    """A quarter plate ``[0, width] x [0, height]`` with a quarter hole of ``radius`` at the
    origin (symmetry planes x = 0 and y = 0), triangulated with scikit-fem: ``n_theta`` x
    ``n_radial`` cells along rays from the hole (graded towards it), each split in two
    triangles, then ``refine`` uniform refinements (each x4 the elements)."""
    from skfem import MeshTri

    w, h, r = (_v.positive(n, x) for n, x in (("width", width), ("height", height),
                                               ("radius", radius)))
    if r >= 0.9 * min(w, h):
        raise InputError("radius", r, f"a hole smaller than the plate (< {0.9 * min(w, h):g})")
    nt = _v.positive_int("n_theta", n_theta, 2)
    nr = _v.positive_int("n_radial", n_radial, 2)
    th = np.linspace(0, np.pi / 2, nt + 1)
    pts, idx = [], {}
    for i, t in enumerate(th):
        # from the hole edge to the outer boundary along the ray (graded towards the hole)
        c, s = np.cos(t), np.sin(t)
        far = min(w / c if c > 1e-12 else np.inf, h / s if s > 1e-12 else np.inf)
        for j in range(nr + 1):
            q = (j / nr) ** 1.6
            rr = r + (far - r) * q
            idx[i, j] = len(pts)
            pts.append((rr * c, rr * s))
    tri = []
    for i in range(nt):
        for j in range(nr):
            a, b, c_, d = idx[i, j], idx[i + 1, j], idx[i + 1, j + 1], idx[i, j + 1]
            tri += [(a, b, c_), (a, c_, d)]
    mesh = MeshTri(np.array(pts).T, np.array(tri).T)
    mesh = mesh.refined(int(refine)) if refine else mesh
    return mesh


@dataclass
class FE2Result:
    """Load steps of a plane-strain FE² (or single-scale) solve.

    Attributes
    ----------
    displacement : list of float
        Prescribed top displacement at each step.
    force : list of float
        Reaction (sum of the y internal forces on the loaded edge), GPa·length (per unit
        thickness in the macro length unit).
    stress : numpy.ndarray
        Element stresses of the last step, Voigt ``(n_el, 6)``, GPa.
    peak_stress : list of float
        Largest σ_yy over the elements, per step (GPa).
    nominal_stress : list of float
        Reaction / loaded width, per step (GPa).
    hill_mandel : float
        Largest Hill–Mandel residual over every RVE solve (FE² only).
    first_yield_step : int or None
        First step at which any RVE yields.
    """

    displacement: list
    force: list
    stress: np.ndarray
    peak_stress: list
    nominal_stress: list
    newton: list
    hill_mandel: float = 0.0
    first_yield_step: int | None = None
    plastic_fraction: list = field(default_factory=list)
    rve_solves: int = 0
    cache_hits: int = 0
    elapsed_s: float = 0.0
    mesh: Any = None
    u: np.ndarray | None = None

    @property
    def stress_concentration(self) -> float:
        """Peak σ_yy over the nominal stress at the first step (elastic: the SCF)."""
        return float(self.peak_stress[0] / self.nominal_stress[0])


def _macro(mesh):
    from skfem import Basis, ElementTriP1, ElementVector

    # one point at the centroid: exact for the constant strain of P1 elements
    centroid = (np.array([[1.0 / 3.0], [1.0 / 3.0]]), np.array([0.5]))
    return Basis(mesh, ElementVector(ElementTriP1()), quadrature=centroid)


def _strain6(basis, u):
    g = basis.interpolate(u).grad                 # (2, 2, nel, nqp)
    e = np.zeros((6,) + g.shape[2:])
    e[0] = g[0, 0]
    e[1] = g[1, 1]
    e[5] = g[0, 1] + g[1, 0]
    return e


def _forms():
    from skfem import BilinearForm, LinearForm

    def eps3(v):
        g = v.grad
        return (g[0, 0], g[1, 1], g[0, 1] + g[1, 0])

    @LinearForm
    def internal(v, w):
        e = eps3(v)
        return w.s0 * e[0] + w.s1 * e[1] + w.s5 * e[2]

    @BilinearForm
    def tangent(u, v, w):
        eu, ev = eps3(u), eps3(v)
        out = 0.0
        for a in range(3):
            for b in range(3):
                out = out + w[f"C{a}{b}"] * eu[b] * ev[a]
        return out

    return internal, tangent


_INPLANE = [0, 1, 5]


def tension_symmetry_conditions(mesh, basis):
    """The default macro boundary conditions: symmetry ``u_x = 0`` on x = 0 and ``u_y = 0`` on
    y = 0, the prescribed displacement ``u_y`` on the top edge (a quarter model in tension, e.g.
    :func:`plate_with_hole`).  Returns ``(held, loaded, loaded_width)``: dofs held at 0, dofs
    set to the prescribed displacement, and the loaded edge's length (nominal stress =
    reaction / width)."""
    p = mesh.p
    top = np.flatnonzero(np.isclose(p[1], p[1].max()))
    left = np.flatnonzero(np.isclose(p[0], p[0].min()))
    bottom = np.flatnonzero(np.isclose(p[1], p[1].min()))
    nd = basis.nodal_dofs
    held = np.unique(np.concatenate([nd[0, left], nd[1, bottom]]))
    return held, nd[1, top], float(p[0, top].max() - p[0, top].min())


def _solve_macro(mesh, respond, displacement_steps, *, tol=1e-8, max_newton=25, what="FE2",
                 conditions=None):
    """Newton over the load steps: ``conditions(mesh, basis) -> (held, loaded, width)``
    (default :func:`tension_symmetry_conditions`)."""
    from skfem import condense, solve

    basis = _macro(mesh)
    internal, tangent = _forms()
    held, d_top, width = (conditions or tension_symmetry_conditions)(mesh, basis)
    held, d_top = np.asarray(held, dtype=np.int64), np.asarray(d_top, dtype=np.int64)
    if d_top.size == 0 or not width > 0:
        raise InputError("conditions", f"{d_top.size} loaded dofs, width {width}",
                         "boundary conditions with loaded dofs and a positive loaded width")
    held = np.setdiff1d(held, d_top)
    fixed = np.unique(np.concatenate([held, d_top]))
    u = np.zeros(basis.N)
    out = {"displacement": [], "force": [], "peak": [], "nominal": [], "newton": []}
    nq = basis.X.shape[1]
    sig6 = None
    for delta in displacement_steps:
        u[d_top] = delta
        u[held] = 0.0
        for it in range(max_newton + 1):
            e6 = _strain6(basis, u)                                  # (6, nel, nq)
            flat = e6.reshape(6, -1).T
            resp = respond(flat)
            sig6 = np.array([r.stress for r in resp]).T.reshape(6, -1, nq)
            C = np.array([r.tangent[np.ix_(_INPLANE, _INPLANE)] for r in resp])
            C = np.transpose(C, (1, 2, 0)).reshape(3, 3, -1, nq)
            f = internal.assemble(basis, s0=sig6[0], s1=sig6[1], s5=sig6[5])
            res = np.linalg.norm(np.delete(f, fixed))
            scale = max(np.linalg.norm(f[fixed]), 1e-30)
            if res <= tol * scale:
                break
            if it == max_newton:
                raise ConvergenceError(f"{what} macro Newton: residual {res / scale:.3g} after "
                                       f"{it} iterations at displacement {delta:g}",
                                       suggestion="smaller load steps")
            K = tangent.assemble(basis, **{f"C{a}{b}": C[a, b] for a in range(3)
                                           for b in range(3)})
            du = solve(*condense(K, -f, x=np.zeros(basis.N), D=fixed))
            u = u + du
        respond.commit()
        force = float(f[d_top].sum())
        out["displacement"].append(float(delta))
        out["force"].append(force)
        out["peak"].append(float(sig6[1].max()))
        out["nominal"].append(force / width)
        out["newton"].append(it)
    return basis, u, sig6, out


class _FE2Respond:
    def __init__(self, rve: PlasticRVE, n_points: int, executor=None, chunks=None):
        self.rve = rve
        self.committed = [rve.initial_state() for _ in range(n_points)]
        self.trial = None
        self.dispatch = _Dispatcher(rve, executor, chunks)
        self.hm = 0.0
        self.yielded = False

    def __call__(self, strains):
        resp = self.dispatch(list(strains), self.committed)
        self.trial = resp
        self.hm = max(self.hm, max(r.hill_mandel for r in resp))
        return resp

    def commit(self):
        self.committed = [r.state for r in self.trial]
        self.yielded = self.yielded or any(r.state.alpha.any() for r in self.trial)
        self.dispatch.cache.clear()                 # inputs now refer to new committed states


class _LinearRespond:
    def __init__(self, c_voigt):
        self.c = np.asarray(c_voigt, dtype=float)

    def __call__(self, strains):
        return [RVEResponse(stress=self.c @ e, tangent=self.c, state=None, hill_mandel=0.0,
                            newton=0, plastic_fraction=0.0) for e in strains]

    def commit(self):
        pass


def fe2_solve(mesh, rve: PlasticRVE, displacements: Sequence[float], *, executor: Any = None,
              workers: int = 2, chunks: int | None = None, tol: float = 1e-8,
              conditions=None) -> FE2Result:
    """FE² in plane strain on any P1 triangle mesh: prescribed displacements (macro length
    unit) on the loaded dofs of ``conditions(mesh, basis) -> (held, loaded, width)`` (default
    :func:`tension_symmetry_conditions`: the quarter model of :func:`plate_with_hole`, a notched
    bar, ...); every quadrature point's stress from ``rve``.  ``executor``: where the RVE solves run (None: here;
    ``"process"``: a spawned pool of ``workers`` processes; a ``concurrent.futures`` executor
    (spawn start method) or a Dask client: in chunks, each chunk's small RVEs on one numba
    thread)."""
    steps = [float(d) for d in displacements]
    if not steps or not all(math.isfinite(d) for d in steps):
        raise InputError("displacements", displacements, "finite prescribed displacements")
    if isinstance(executor, str):
        if executor != "process":
            raise InputError("executor", executor, "None, 'process', a concurrent.futures "
                             "executor or a Dask client")
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the numba kernels' thread pools do not survive a fork (each chunk
        # runs its small RVEs on one numba thread: _respond_chunk)
        with ProcessPoolExecutor(max_workers=_v.positive_int("workers", workers),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            return fe2_solve(mesh, rve, steps, executor=pool, chunks=chunks, tol=tol,
                             conditions=conditions)
    t0 = time.perf_counter()
    n_points = mesh.t.shape[1]
    responder = _FE2Respond(rve, n_points, executor, chunks)
    first_yield = None
    yielded_before = False

    class _Track:
        def __call__(self, strains):
            return responder(strains)

        def commit(self):
            nonlocal first_yield, yielded_before
            responder.commit()
            if responder.yielded and not yielded_before:
                first_yield = len(out_steps)
                yielded_before = True
            out_steps.append(1)

    out_steps: list = []
    basis, u, sig6, out = _solve_macro(mesh, _Track(), steps, tol=tol, conditions=conditions)
    return FE2Result(displacement=out["displacement"], force=out["force"],
                     stress=sig6[:, :, 0].T.copy(), peak_stress=out["peak"],
                     nominal_stress=out["nominal"], newton=out["newton"],
                     hill_mandel=responder.hm, first_yield_step=first_yield,
                     plastic_fraction=[float(np.mean([s.alpha.any() for s in responder.committed]))],
                     rve_solves=responder.dispatch.solves, cache_hits=responder.dispatch.hits,
                     elapsed_s=time.perf_counter() - t0, mesh=mesh, u=u)


def single_scale_solve(mesh, stiffness, displacements: Sequence[float], *,
                       conditions=None) -> FE2Result:
    """The same plate with one homogeneous (e.g. homogenised) stiffness: an ``ElasticTensor``
    or a Voigt 6x6 in GPa."""
    c = np.asarray(getattr(getattr(stiffness, "voigt", None), "value", stiffness), dtype=float)
    if c.shape != (6, 6):
        raise InputError("stiffness", c.shape, "an ElasticTensor or a 6x6 Voigt matrix (GPa)")
    t0 = time.perf_counter()
    basis, u, sig6, out = _solve_macro(mesh, _LinearRespond(c), [float(d) for d in displacements],
                                       what="single-scale", conditions=conditions)
    return FE2Result(displacement=out["displacement"], force=out["force"],
                     stress=sig6[:, :, 0].T.copy(), peak_stress=out["peak"],
                     nominal_stress=out["nominal"], newton=out["newton"],
                     elapsed_s=time.perf_counter() - t0, mesh=mesh, u=u)
