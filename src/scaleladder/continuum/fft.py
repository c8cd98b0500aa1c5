"""FFT homogenisation on voxel maps: the Moulinec–Suquet basic scheme and its conjugate-gradient
variant.

The periodic cell problem: find a strain field ``ε = E + ε̃`` (``ε̃`` compatible, periodic, of
zero mean) whose stress ``σ = C(x) : ε`` is in equilibrium, ``div σ = 0``.  With a reference
medium ``C⁰ = c₀ I`` (``I`` the identity on symmetric tensors; ``λ₀ = 0``, ``μ₀ = c₀/2``) the
periodic Green operator is ``Γ⁰ = P / c₀``, where ``P`` is the orthogonal projection onto
compatible, zero-mean strain fields; in Fourier space, for a unit wave vector ``n``,

    P(τ)_ij = n_i (τ n)_j + n_j (τ n)_i − (n·τ·n) n_i n_j.

* ``scheme="basic"`` (Moulinec & Suquet 1994, 1998): ``ε ← ε − P[C : ε] / c₀``, with
  ``c₀ = (k_min + k_max) / 2`` over the Kelvin moduli (eigenvalues in Mandel notation) of all
  phases, which makes the iteration a contraction with factor ``(κ − 1)/(κ + 1)``,
  ``κ = k_max / k_min`` (slow at high contrast).
* ``scheme="cg"`` (Zeman, Vondřejc, Novák & Marek 2010): the same equilibrium written as the
  symmetric positive-definite linear system ``P[C : ε̃] = −P[C : E]`` on compatible fields,
  solved by conjugate gradients: iterations grow like ``√κ``.

Both stop when the equilibrium residual ``‖P[σ]‖ / ‖⟨σ⟩‖`` (root mean square over voxels; zero
exactly when ``σ`` is divergence free) is below ``tol``.  Discretisation: trigonometric
polynomials on the voxel grid (Moulinec–Suquet's), the Nyquist frequencies of even grids left
out of the fluctuation (a Galerkin restriction: Vondřejc, Zeman & Marek 2014), so the effective
stiffness converges from above with the resolution, like a displacement-based FEM.  A 2D map is
a columnar microstructure (invariant along ``z``): wave vectors have no ``z`` component and all
six macroscopic strains are applied, giving its full 3D effective stiffness.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from numba import njit, prange

from ..core import validate as _v
from ..core.errors import ConvergenceError, InputError
from ._mandel import SQ2, stiffness_to_mandel, strain_voigt_to_mandel

__all__ = ["FFTSolution", "fft_solve", "fft_effective_stiffness"]

_SCHEMES = ("cg", "basic")


@njit(cache=True, parallel=True, fastmath=False)
def _apply_stiffness(table, labels, eps, out):
    """``out[:, v] = table[labels[v]] @ eps[:, v]`` (Mandel, per voxel)."""
    n = labels.shape[0]
    for v in prange(n):
        c = table[labels[v]]
        for a in range(6):
            s = 0.0
            for b in range(6):
                s += c[a, b] * eps[b, v]
            out[a, v] = s


@njit(cache=True, parallel=True, fastmath=False)
def _project_hat(X, n, out):
    """P in Fourier space, one pass per frequency: ``X``, ``out`` (6, M) complex Mandel,
    ``n`` (3, M) unit wave vectors (zero where the fluctuation is not represented)."""
    m = X.shape[1]
    r2 = 1.0 / SQ2
    for k in prange(m):
        n0 = n[0, k]
        n1 = n[1, k]
        n2 = n[2, k]
        t00 = X[0, k]
        t11 = X[1, k]
        t22 = X[2, k]
        t12 = X[3, k] * r2
        t02 = X[4, k] * r2
        t01 = X[5, k] * r2
        a0 = t00 * n0 + t01 * n1 + t02 * n2
        a1 = t01 * n0 + t11 * n1 + t12 * n2
        a2 = t02 * n0 + t12 * n1 + t22 * n2
        s = n0 * a0 + n1 * a1 + n2 * a2
        out[0, k] = 2 * n0 * a0 - s * n0 * n0
        out[1, k] = 2 * n1 * a1 - s * n1 * n1
        out[2, k] = 2 * n2 * a2 - s * n2 * n2
        out[3, k] = SQ2 * (n1 * a2 + n2 * a1 - s * n1 * n2)
        out[4, k] = SQ2 * (n0 * a2 + n2 * a0 - s * n0 * n2)
        out[5, k] = SQ2 * (n0 * a1 + n1 * a0 - s * n0 * n1)


class _Projector:
    """The projection ``P`` onto compatible zero-mean strain fields on one grid (Mandel)."""

    def __init__(self, shape: tuple, size: tuple):
        import scipy.fft as sfft

        self.shape = tuple(shape)
        self.sfft = sfft
        # threads pay off only on large grids (small RVEs of FE2 run many at once instead)
        self.workers = -1 if int(np.prod(shape)) >= 32768 else 1
        self.axes = tuple(range(1, len(shape) + 1))
        freqs = [np.fft.fftfreq(n, d=L / n) for n, L in zip(shape[:-1], size[:-1])]
        freqs.append(np.fft.rfftfreq(shape[-1], d=size[-1] / shape[-1]))
        grids = np.meshgrid(*freqs, indexing="ij")
        xi = np.zeros((3,) + grids[0].shape)
        for k, g in enumerate(grids):
            xi[k] = g
        norm = np.sqrt((xi ** 2).sum(axis=0))
        keep = norm > 0
        # Nyquist frequencies of even grids carry no fluctuation (Galerkin restriction)
        for k, n in enumerate(shape):
            if n % 2 == 0:
                idx = [slice(None)] * len(shape)
                idx[k] = n // 2
                keep[tuple(idx)] = False
        n_unit = np.where(keep, xi / np.where(norm > 0, norm, 1.0), 0.0)
        self.n = n_unit
        self.fshape = n_unit.shape[1:]
        self.n_flat = np.ascontiguousarray(n_unit.reshape(3, -1))

    def fft(self, x):
        return self.sfft.rfftn(x, axes=self.axes, workers=self.workers)

    def ifft(self, z):
        return self.sfft.irfftn(z, s=self.shape, axes=self.axes, workers=self.workers)

    def __call__(self, x):
        X = self.fft(x)
        flat = X.reshape(6, -1)
        _project_hat(flat, self.n_flat, flat)          # in place: each frequency read first
        return self.ifft(X)


@dataclass
class FFTSolution:
    """One FFT cell solve under a macroscopic strain.

    Attributes
    ----------
    strain, stress : numpy.ndarray
        Local fields, Voigt order ``(6, *grid)``: strain with engineering shears (γ = 2ε),
        stress in GPa.
    mean_strain, mean_stress : numpy.ndarray
        Volume averages (Voigt; GPa).
    iterations : int
    residual : float
        Final equilibrium residual ``‖P[σ]‖ / ‖⟨σ⟩‖``.
    hill_mandel : float
        ``|⟨σ:ε⟩ − ⟨σ⟩:⟨ε⟩| / |⟨σ⟩:⟨ε⟩|``: zero for an equilibrated, compatible pair.
    """

    strain: np.ndarray
    stress: np.ndarray
    mean_strain: np.ndarray
    mean_stress: np.ndarray
    iterations: int
    residual: float
    hill_mandel: float
    scheme: str = "cg"
    elapsed_s: float = 0.0
    history: list = field(default_factory=list)


def _setup(micro):
    from ..handoffs import Microstructure

    if not isinstance(micro, Microstructure):
        raise InputError("microstructure", type(micro).__name__, "a Microstructure handoff")
    micro.require_phases("an FFT solve")
    table = np.ascontiguousarray(stiffness_to_mandel(micro.label_stiffness("GPa")))
    labels = np.ascontiguousarray(micro.labels.ravel(), dtype=np.int64)
    shape = micro.shape if micro.ndim == 3 else micro.shape
    eig = np.linalg.eigvalsh(table)
    kmin, kmax = float(eig.min()), float(eig.max())
    return table, labels, shape, kmin, kmax


def cg_fluctuation(stress_of, proj_flat, b, stop):
    """Conjugate gradients for ``P[C : w] = b`` on compatible zero-mean fields (Zeman et al.
    2010): ``stress_of(x, out)`` applies the (linear, symmetric) local stiffness, ``proj_flat``
    the projection; ``stop(rr, mean_cw, k)`` decides on the squared residual norm, the mean of
    ``C : w`` so far and the iteration count (and may raise).  Returns ``(w, iterations)``."""
    w = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rr = float(np.vdot(r, r))
    ap = np.empty_like(b)
    mean_cw = np.zeros(b.shape[0])
    k = 0
    while not stop(rr, mean_cw, k):
        stress_of(p, ap)
        mean_cp = ap.mean(axis=1)
        ap = proj_flat(ap)
        alpha = rr / float(np.vdot(p, ap))
        w += alpha * p
        mean_cw = mean_cw + alpha * mean_cp
        r -= alpha * ap
        rr_new = float(np.vdot(r, r))
        p *= rr_new / rr
        p += r
        rr = rr_new
        k += 1
    return w, k


def fft_solve(micro, strain, *, scheme: str = "cg", tol: float = 1e-8, max_iter: int = 2000,
              _setup_cache=None) -> FFTSolution:
    """Solve the periodic cell problem of ``micro`` under the macroscopic ``strain``.

    Parameters
    ----------
    micro : Microstructure
        With its phases.
    strain : sequence of 6 float
        Macroscopic strain, Voigt with engineering shears ``(ε11, ε22, ε33, γ23, γ13, γ12)``.
    scheme : {"cg", "basic"}
    tol : float
        Equilibrium residual to reach.
    max_iter : int

    Raises
    ------
    ConvergenceError
        Not converged in ``max_iter`` iterations (names the residual reached).
    """
    _v.one_of("scheme", scheme, _SCHEMES)
    tol = _v.positive("tol", tol)
    max_iter = _v.positive_int("max_iter", max_iter)
    E = np.asarray(strain, dtype=float)
    if E.shape != (6,) or not np.all(np.isfinite(E)) or not np.any(E):
        raise InputError("strain", strain, "6 finite Voigt strain components, not all zero")
    table, labels, shape, kmin, kmax = _setup_cache or _setup(micro)
    proj = _Projector(shape, micro.size)
    N = labels.shape[0]
    Em = strain_voigt_to_mandel(E)
    eps = np.empty((6, N))
    eps[:] = Em[:, None]
    sig = np.empty((6, N))
    t0 = time.perf_counter()

    def stress(e, out):
        _apply_stiffness(table, labels, e, out)
        return out

    def proj_flat(x):
        return proj(x.reshape((6,) + shape)).reshape(6, N)

    history = []
    stress(eps, sig)
    rms = math.sqrt(N)
    it = 0
    if scheme == "basic":
        c0 = 0.5 * (kmin + kmax)
        while True:
            r = proj_flat(sig)
            res = float(np.linalg.norm(r)) / (rms * float(np.linalg.norm(sig.mean(axis=1))))
            history.append(res)
            if res <= tol:
                break
            if it >= max_iter:
                raise ConvergenceError(
                    f"FFT basic scheme: equilibrium residual {res:.3g} > tol {tol:g} after "
                    f"{it} iterations (contrast k_max/k_min = {kmax / kmin:.3g})",
                    suggestion="use scheme='cg' (iterations grow as the square root of the "
                               "contrast) or raise max_iter")
            eps -= r / c0
            stress(eps, sig)
            it += 1
    else:
        # CG on the fluctuation w: A w = P[C:w] = b = -P[C:E]
        mean0 = sig.mean(axis=1)

        def stop(rr, mean_cw, k):
            res = math.sqrt(rr) / (rms * float(np.linalg.norm(mean0 + mean_cw)))
            history.append(res)
            if res > tol and k >= max_iter:
                raise ConvergenceError(
                    f"FFT conjugate gradients: equilibrium residual {res:.3g} > tol {tol:g} after"
                    f" {k} iterations (contrast k_max/k_min = {kmax / kmin:.3g})",
                    suggestion="raise max_iter or loosen tol")
            return res <= tol

        w, it = cg_fluctuation(stress, proj_flat, -proj_flat(sig), stop)
        eps = Em[:, None] + w
        stress(eps, sig)
        # the true residual (not the recursively updated one)
        res = float(np.linalg.norm(proj_flat(sig))) / (rms * float(np.linalg.norm(sig.mean(axis=1))))
        history[-1] = res
    mean_sig = sig.mean(axis=1)
    mean_eps = eps.mean(axis=1)
    work = float(np.einsum("an,an->", sig, eps)) / N
    macro = float(mean_sig @ mean_eps)
    hm = abs(work - macro) / abs(macro)
    from ._mandel import stress_mandel_to_voigt, strain_mandel_to_voigt

    return FFTSolution(strain=strain_mandel_to_voigt(eps.T).T.reshape((6,) + shape),
                       stress=stress_mandel_to_voigt(sig.T).T.reshape((6,) + shape),
                       mean_strain=strain_mandel_to_voigt(mean_eps),
                       mean_stress=stress_mandel_to_voigt(mean_sig), iterations=it,
                       residual=float(history[-1]), hill_mandel=hm, scheme=scheme,
                       elapsed_s=time.perf_counter() - t0, history=history)


def fft_effective_stiffness(micro, *, scheme: str = "cg", tol: float = 1e-8,
                            max_iter: int = 2000) -> tuple[np.ndarray, list]:
    """Effective Voigt stiffness (GPa, 6x6) of ``micro`` from six unit macroscopic strains,
    and the six :class:`FFTSolution` s (fields dropped, to keep memory flat)."""
    setup = _setup(micro)
    cols, sols = [], []
    for k in range(6):
        E = np.zeros(6)
        E[k] = 1.0
        sol = fft_solve(micro, E, scheme=scheme, tol=tol, max_iter=max_iter, _setup_cache=setup)
        cols.append(sol.mean_stress)
        sol.strain = sol.stress = None
        sols.append(sol)
    c = np.array(cols).T                    # Voigt strain (engineering) -> Voigt stress
    c = 0.5 * (c + c.T)
    return c, sols
