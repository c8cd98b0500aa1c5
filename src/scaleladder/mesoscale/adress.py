"""Adaptive resolution (AdResS): a fine and a coarse model in one box, and the thermodynamic force.

A slab ``|x - x_c| < d_at`` (periodic along x) is described by the fine model, the rest by the
coarse one, with hybrid layers of width ``d_hy`` between them.  A resolution function

    w(x) = 1 (fine), cos^2(pi (|x - x_c| - d_at) / (2 d_hy)) (hybrid), 0 (coarse)

interpolates the pair forces (Praprotnik, Delle Site & Kremer 2005):
``F_ij = w_i w_j F^fine_ij + (1 - w_i w_j) F^coarse_ij`` — Newton's third law holds pair by pair,
but the forces are not conservative, so the dynamics is thermostatted everywhere (Langevin, BAOAB).
The two models have different pressures at the same density, so particles pile up on one side of
the hybrid layer; the thermodynamic force ``F_th(x)`` along x in the hybrid layers cancels that
(Fritsch et al., PRL 108, 170602 (2012)) and is found by iterating

    F_th <- F_th - (prefactor) d rho / dx

until the density profile is flat.  Both models here are tabulated pair potentials of one bead
type (``CGPotential``): the fine one e.g. Lennard-Jones (atoms), the coarse one a fitted CG
potential or a cheaper/softer model.  Molecules with internal degrees of freedom in the fine
region (the atomistic water of AdResS papers) need the centre-of-mass weighting of a molecule's
atoms; that is not built.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from ..core.errors import InputError
from ..core.units import BOLTZMANN_EV
from ..core.validate import in_range, positive, positive_int
from ..core.validate import seed as _check_seed
from ..handoffs.coarse_grained import CGPotential, CGTrajectory
from ._rng import seed_words
from .particles import _HALF_SHELL, PairList, _max_displacement2, _pairs, baoab_drift, \
    maxwell_boltzmann, pair_delta

__all__ = ["AdResSResult", "run_adress", "run_adress_molecular", "resolution",
           "thermodynamic_force_iteration"]


@njit(cache=True, inline="always")
def _w(x, xc, Lx, d_at, d_hy):
    d = x - xc
    d -= Lx * math.floor(d / Lx + 0.5)
    a = abs(d)
    if a <= d_at:
        return 1.0
    if a >= d_at + d_hy:
        return 0.0
    c = math.cos(0.5 * math.pi * (a - d_at) / d_hy)
    return c * c


def resolution(x, *, centre: float, box_x: float, d_at: float, d_hy: float) -> np.ndarray:
    """The resolution function w(x) (1 fine, 0 coarse) at positions ``x`` (Å)."""
    x = np.asarray(x, dtype=float)
    d = x - centre
    d -= box_x * np.floor(d / box_x + 0.5)
    a = np.abs(d)
    c = np.cos(0.5 * np.pi * np.clip((a - d_at) / d_hy, 0.0, 1.0)) ** 2
    return np.where(a <= d_at, 1.0, np.where(a >= d_at + d_hy, 0.0, c))


@njit(cache=True, inline="always")
def _interp(r, r0, dr, T):
    x = (r - r0) / dr
    if x <= 0.0:
        return T[0]
    k = int(x)
    if k >= T.size - 1:
        return 0.0
    w = x - k
    return (1.0 - w) * T[k] + w * T[k + 1]


@njit(cache=True)
def _forces(pos, pi, pj, S, r0, dr, Ffine, Fcoarse, rc, xc, Lx, d_at, d_hy, th_x0, th_dx, Fth,
            F):
    F[:] = 0.0
    n = pos.shape[0]
    w = np.empty(n)
    for i in range(n):
        w[i] = _w(pos[i, 0], xc, Lx, d_at, d_hy)
    rc2 = rc * rc
    for p in range(pi.size):
        i, j, dx, dy, dz, r2 = pair_delta(pos, pi, pj, S, p)
        if r2 >= rc2 or r2 == 0.0:
            continue
        r = math.sqrt(r2)
        lam = w[i] * w[j]
        f = 0.0
        if lam > 0.0:
            f += lam * _interp(r, r0, dr, Ffine)
        if lam < 1.0:
            f += (1.0 - lam) * _interp(r, r0, dr, Fcoarse)
        s = f / r
        F[i, 0] += s * dx
        F[i, 1] += s * dy
        F[i, 2] += s * dz
        F[j, 0] -= s * dx
        F[j, 1] -= s * dy
        F[j, 2] -= s * dz
    # thermodynamic force along x, tabulated on the signed distance from the centre
    m = Fth.size
    for i in range(n):
        d = pos[i, 0] - xc
        d -= Lx * math.floor(d / Lx + 0.5)
        a = abs(d)
        t = (a - th_x0) / th_dx
        if t <= 0.0 or t >= m - 1:
            continue
        k = min(max(int(t), 0), m - 2)
        u = t - k
        f = (1.0 - u) * Fth[k] + u * Fth[k + 1]
        F[i, 0] += f if d > 0 else -f


@njit(cache=True)
def _kick_and_bin(vel, F, invm, dt, centres, Lx, nbins, hist, step, every):
    """The closing half kick of a BAOAB step, then (every ``every`` steps) the x histogram of
    ``centres`` (beads, or molecules' centres of mass) into row ``(step + 1) // every - 1``."""
    for i in range(vel.shape[0]):
        for d in range(3):
            vel[i, d] += 0.5 * dt * F[i, d] * invm[i]
    if every > 0 and (step + 1) % every == 0:
        for i in range(centres.shape[0]):
            x = centres[i, 0] - Lx * math.floor(centres[i, 0] / Lx)
            k = min(int(x / Lx * nbins), nbins - 1)
            hist[(step + 1) // every - 1, k] += 1.0


@njit(cache=True)
def _run(pos, vel, F, invm, L, nc, cells, rlist, skin, pi, pj, S, ref, r0, dr, Ffine, Fcoarse,
         rc, xc, d_at, d_hy, th_x0, th_dx, Fth, dt, kT, friction, rng, nsteps, every, nbins,
         hist, shell):
    c = math.exp(-friction * dt)
    s_ou = math.sqrt(1.0 - c * c)
    half_skin2 = (0.5 * skin) ** 2
    Lx = L[0]
    for step in range(nsteps):
        baoab_drift(pos, vel, F, invm, dt, c, s_ou, kT, rng)
        if _max_displacement2(pos, ref) > half_skin2:
            pi, pj, S = _pairs(pos, L, nc, cells, rlist, shell)
            ref = pos.copy()
        _forces(pos, pi, pj, S, r0, dr, Ffine, Fcoarse, rc, xc, Lx, d_at, d_hy, th_x0, th_dx,
                Fth, F)
        _kick_and_bin(vel, F, invm, dt, pos, Lx, nbins, hist, step, every)
    return pi, pj, S, ref


def _profile(hist: np.ndarray, outside: np.ndarray,
             coarse: np.ndarray) -> tuple[np.ndarray, float, float]:
    """From per-sample bin counts ``hist`` (samples, bins): the density profile relative to its
    mean, symmetrised about the fine centre, its largest deviation from 1 outside the fine slab,
    and S(0) = kT rho kappa_T estimated from the number fluctuations of the ``coarse`` bins taken
    together (a block of width comparable to the box, corrected for the fixed total,
    var N_c = <N_c> (1 - f) S(0) with f the block's share of the particles)."""
    rho = hist.mean(axis=0)
    rho = rho / rho.mean()
    sym = 0.5 * (rho + rho[::-1])
    nc = hist[:, coarse].sum(axis=1)
    f = nc.mean() / max(hist.sum(axis=1).mean(), 1.0)
    s0 = float(nc.var() / max(nc.mean() * (1.0 - f), 1e-12))
    return sym, float(np.max(np.abs(sym[outside] - 1.0))), s0


def _update_fth(Fth, th_x, sym, centres, dist, xc, prefactor) -> np.ndarray:
    """``F_th <- F_th - prefactor d rho/dx``: the gradient of the (smoothed) relative density
    against the distance from the centre, on the half of the box beyond it (the profile is
    symmetric), interpolated onto the thermodynamic force's grid."""
    half = centres > xc
    dd, rr = dist[half], sym[half]
    k = np.argsort(dd)
    dd, rr = dd[k], rr[k]
    grad = np.gradient(np.convolve(rr, np.ones(3) / 3, mode="same"), dd)
    grad[0], grad[-1] = grad[1], grad[-2]
    return Fth - prefactor * np.interp(th_x, dd, grad)


def _th_grid(d_at: float, d_hy: float, margin: float | None) -> np.ndarray:
    """The thermodynamic force's grid (distance from the fine centre, Å): the hybrid layer widened
    by ``margin`` on both sides (default half the hybrid width).  The density steps that the
    force must remove sit at the hybrid layer's edges; a force confined to the layer cannot reach
    them (the same reason VOTCA lets its thermodynamic force extend past the hybrid region)."""
    margin = 0.5 * d_hy if margin is None else in_range("f_th_margin", margin, 0.0, 1e4)
    return np.linspace(max(d_at - margin, 0.0), d_at + d_hy + margin, 61)


@dataclass
class AdResSResult:
    """Density profile(s) and the thermodynamic force.

    ``x`` bin centres (Å); ``density`` (iterations + 1, bins) relative to the mean; ``f_th``
    the final thermodynamic force (eV/Å) on ``f_th_x`` (distance from the fine centre);
    ``deviation[k]`` the largest |rho/rho_0 - 1| in the hybrid and coarse regions at iteration
    k (bins averaged with their mirror images); ``positions`` the final configuration;
    ``s0[k]`` the S(0) = kT rho kappa_T measured from the coarse region's number fluctuations and
    ``prefactor[k]`` the update's prefactor (eV) used after iteration k."""

    x: np.ndarray
    density: np.ndarray
    f_th_x: np.ndarray
    f_th: np.ndarray
    deviation: list
    positions: np.ndarray
    weights: np.ndarray
    s0: list = field(default_factory=list)
    prefactor: list = field(default_factory=list)


def _iterate(sample, Fth, th_x, *, iterations, steps, every, bins, box_x, d_at, d_hy, kT,
             prefactor) -> AdResSResult:
    """The thermodynamic-force iteration shared by the single-site and molecular runs:
    ``sample(Fth, hist)`` equilibrates and fills per-sample bin counts; after each run
    ``F_th <- F_th - c d rho/dx``.  With ``prefactor`` None, ``c = kT / (2 S(0))``: in
    equilibrium under an external force ``d rho/dx / rho = rho kappa_T F`` (from
    ``dp = rho F dx``), so ``kT / S(0)`` removes a measured relative gradient in one step where
    the response is local (it does for a density step across the layer when both models have
    the same S(0)); half of it damps the noise in the measured gradient and in S(0) (the
    median of the runs' estimates, clipped to [0.02, 1]).  Each step then halves the error."""
    xc = 0.5 * box_x
    centres = (np.arange(bins) + 0.5) * box_x / bins
    dist = np.abs((centres - xc + 0.5 * box_x) % box_x - 0.5 * box_x)
    outside = dist > d_at
    coarse = dist > th_x[-1]
    if not coarse.any():
        coarse = dist > d_at + d_hy
    hist = np.zeros((max(steps // every, 1), bins))
    res = AdResSResult(x=centres, density=np.zeros((0, bins)), f_th_x=th_x, f_th=Fth,
                       deviation=[], positions=np.zeros((0, 3)),
                       weights=resolution(centres, centre=xc, box_x=box_x, d_at=d_at,
                                          d_hy=d_hy))
    profiles = []
    for it in range(iterations + 1):
        hist[:] = 0.0
        sample(Fth, hist)
        sym, dev, s0 = _profile(hist, outside, coarse)
        profiles.append(sym)
        res.deviation.append(dev)
        res.s0.append(s0)
        if it == iterations:
            break
        s0_est = min(max(float(np.median(res.s0)), 0.02), 1.0)
        c = 0.5 * kT / s0_est if prefactor is None else prefactor
        res.prefactor.append(c)
        Fth = _update_fth(Fth, th_x, sym, centres, dist, xc, c)
    res.density = np.array(profiles)
    res.f_th = Fth
    return res


def run_adress(fine: CGPotential, coarse: CGPotential, start: CGTrajectory, *, d_at: float,
               d_hy: float, steps: int, iterations: int = 0, equilibration: int = 2000,
               dt_fs: float = 5.0, friction_per_fs: float = 0.01, bins: int = 32,
               prefactor: float | None = None, temperature_K: float | None = None,
               seed: int = 0, f_th: tuple | None = None,
               f_th_margin: float | None = None) -> AdResSResult:
    """Run AdResS from ``start`` (one bead type, the fine region centred in the box along x) and,
    with ``iterations``, iterate the thermodynamic force until the density is flat.

    Parameters
    ----------
    fine, coarse : CGPotential
        The two descriptions (same bead type and mass; tabulated on one grid).
    d_at, d_hy : float
        Half width of the fine slab and width of each hybrid layer (Å).  ``2 (d_at + d_hy)`` must
        leave a coarse region.
    steps : int
        Steps sampled per iteration (after ``equilibration``).
    iterations : int
        Thermodynamic-force updates ``F_th <- F_th - prefactor d rho/dx`` (rho relative to the
        mean), each followed by a new run.
    prefactor : float, optional
        eV (force in eV/Å per relative density gradient in 1/Å); default ``kT / (2 S(0))`` with
        S(0) = kT rho kappa_T measured from the coarse region's number fluctuations (the median
        over the runs so far): half the step that removes the gradient where the response is
        local.
    f_th : (x, F) arrays, optional
        A thermodynamic force to start from.
    f_th_margin : float, optional
        How far (Å) the thermodynamic force reaches past the hybrid layer on either side; default
        half the hybrid width.
    """
    for name, p in (("fine", fine), ("coarse", coarse)):
        if not isinstance(p, CGPotential) or len(p.type_names) != 1:
            raise InputError(name, type(p).__name__, "a CGPotential of one bead type")
    if not np.array_equal(fine.r_A, coarse.r_A):
        raise InputError("coarse.r_A", coarse.r_A.size, "the fine potential's table grid")
    if not isinstance(start, CGTrajectory) or len(start.type_names) != 1:
        raise InputError("start", type(start).__name__, "a CGTrajectory of one bead type")
    d_at = positive("d_at", d_at)
    d_hy = positive("d_hy", d_hy)
    Lx = float(start.box[0])
    if 2 * (d_at + d_hy) >= Lx - 2 * fine.cutoff_A:
        raise InputError("d_at + d_hy", d_at + d_hy,
                         f"a fine + hybrid slab leaving a coarse region at least two cutoffs "
                         f"wide (box x = {Lx:.4g} Å)")
    steps = positive_int("steps", steps)
    iterations = positive_int("iterations", iterations, 0)
    equilibration = positive_int("equilibration", equilibration, 0)
    dt_fs = positive("dt_fs", dt_fs)
    friction_per_fs = positive("friction_per_fs", friction_per_fs)
    bins = positive_int("bins", bins, 8)
    seed = _check_seed("seed", seed)
    T = fine.temperature_K if temperature_K is None else positive("temperature_K", temperature_K)
    kT = BOLTZMANN_EV * T
    prefactor = None if prefactor is None else in_range("prefactor", prefactor, 0.0, 1e3)
    from ase import units
    dt = dt_fs * units.fs
    friction = friction_per_fs / units.fs
    m = float(fine.masses[0])
    n = start.n_beads
    invm = np.full(n, 1.0 / m)
    r = fine.r_A
    r0, dr, rc = float(r[0]), float(r[1] - r[0]), float(r[-1])
    Ff = np.asarray(fine.pair_force_eV_per_A[fine.pairs[0]], dtype=float)
    Fc = np.asarray(coarse.pair_force_eV_per_A[coarse.pairs[0]], dtype=float)
    xc = 0.5 * Lx
    th_x = _th_grid(d_at, d_hy, f_th_margin)
    Fth = np.zeros_like(th_x)
    if f_th is not None:
        Fth = np.interp(th_x, np.asarray(f_th[0], float), np.asarray(f_th[1], float))
    skin = min(1.0, 0.9 * (0.5 * float(start.box.min()) - rc))
    pl = PairList(start.box, rc, skin)
    pos = np.ascontiguousarray(start.positions[-1], dtype=float).copy()
    pl.build(pos)
    rng = seed_words(seed)
    vel = maxwell_boltzmann(np.full(n, m), kT, seed)
    F = np.zeros_like(pos)
    pi, pj, S, ref = pl.i, pl.j, pl.shift, pl.ref.copy()
    _forces(pos, pi, pj, S, r0, dr, Ff, Fc, rc, xc, Lx, d_at, d_hy, th_x[0],
            th_x[1] - th_x[0], Fth, F)
    every = 10
    state = {"lists": (pi, pj, S, ref)}
    dummy = np.zeros((1, bins))

    def sample(Fth, hist):
        for n_steps, ev, h in ((equilibration, 0, dummy), (steps, every, hist)):
            state["lists"] = _run(pos, vel, F, invm, start.box, pl.nc, pl.cells, pl.radius,
                                  skin, *state["lists"], r0, dr, Ff, Fc, rc, xc, d_at, d_hy,
                                  th_x[0], th_x[1] - th_x[0], Fth, dt, kT, friction, rng,
                                  n_steps, ev, bins, h, _HALF_SHELL)
    res = _iterate(sample, Fth, th_x, iterations=iterations, steps=steps, every=every,
                   bins=bins, box_x=Lx, d_at=d_at, d_hy=d_hy, kT=kT, prefactor=prefactor)
    res.positions = pos
    return res


def thermodynamic_force_iteration(*args, **kwargs) -> AdResSResult:
    """:func:`run_adress` with ``iterations`` (default 8): the thermodynamic force found by
    iteration."""
    kwargs.setdefault("iterations", 8)
    return run_adress(*args, **kwargs)


# =============================================================================== molecules
@njit(cache=True)
def _mol_forces(pos, mol_of, first, n_mol, mfrac, L, nc_a, cells_a, nc_m, cells_m, r0, dr, Ffine,
                rc_f, Fcoarse, rc_c, bonds, b0, bdx, bF, xc, d_at, d_hy, th_x0, th_dx, Fth, F,
                com, w):
    """Molecular AdResS forces: site-site fine forces weighted by w_a w_b, centre-of-mass coarse
    forces weighted by 1 - w_a w_b and shared by the atoms in proportion to their mass, bonds
    always, the thermodynamic force on each molecule's centre of mass.  Fills F, com, w."""
    n = pos.shape[0]
    F[:] = 0.0
    com[:] = 0.0
    Lx = L[0]
    for a in range(n):                                    # whole-molecule centres of mass
        m = mol_of[a]
        f0 = first[m]
        for d in range(3):
            dd = pos[a, d] - pos[f0, d]
            dd -= L[d] * math.floor(dd / L[d] + 0.5)
            com[m, d] += mfrac[a] * (pos[f0, d] + dd)
    for m in range(n_mol):
        w[m] = _w(com[m, 0], xc, Lx, d_at, d_hy)
    pi, pj, S = _pairs(pos, L, nc_a, cells_a, rc_f, _HALF_SHELL)
    rc2 = rc_f * rc_f
    for p in range(pi.size):
        i, j, dx, dy, dz, r2 = pair_delta(pos, pi, pj, S, p)
        mi = mol_of[i]
        mj = mol_of[j]
        if mi == mj or r2 >= rc2 or r2 == 0.0:
            continue
        lam = w[mi] * w[mj]
        if lam == 0.0:
            continue
        r = math.sqrt(r2)
        s = lam * _interp(r, r0, dr, Ffine) / r
        F[i, 0] += s * dx
        F[i, 1] += s * dy
        F[i, 2] += s * dz
        F[j, 0] -= s * dx
        F[j, 1] -= s * dy
        F[j, 2] -= s * dz
    ci, cj, CS = _pairs(com, L, nc_m, cells_m, rc_c, _HALF_SHELL)
    rc2 = rc_c * rc_c
    fmol = np.zeros((n_mol, 3))
    for p in range(ci.size):
        i, j, dx, dy, dz, r2 = pair_delta(com, ci, cj, CS, p)
        if r2 >= rc2 or r2 == 0.0:
            continue
        lam = w[i] * w[j]
        if lam == 1.0:
            continue
        r = math.sqrt(r2)
        s = (1.0 - lam) * _interp(r, r0, dr, Fcoarse) / r
        fmol[i, 0] += s * dx
        fmol[i, 1] += s * dy
        fmol[i, 2] += s * dz
        fmol[j, 0] -= s * dx
        fmol[j, 1] -= s * dy
        fmol[j, 2] -= s * dz
    m_th = Fth.size
    for m in range(n_mol):                              # thermodynamic force in the hybrid
        d = com[m, 0] - xc
        d -= Lx * math.floor(d / Lx + 0.5)
        a = abs(d)
        t = (a - th_x0) / th_dx
        if t > 0.0 and t < m_th - 1:
            k = min(max(int(t), 0), m_th - 2)
            u = t - k
            f = (1.0 - u) * Fth[k] + u * Fth[k + 1]
            fmol[m, 0] += f if d > 0 else -f
    for a in range(n):
        m = mol_of[a]
        for d in range(3):
            F[a, d] += mfrac[a] * fmol[m, d]
    nb = bF.size
    for b in range(bonds.shape[0]):
        i = bonds[b, 0]
        j = bonds[b, 1]
        d0 = pos[i, 0] - pos[j, 0]
        d1 = pos[i, 1] - pos[j, 1]
        d2 = pos[i, 2] - pos[j, 2]
        d0 -= L[0] * math.floor(d0 / L[0] + 0.5)
        d1 -= L[1] * math.floor(d1 / L[1] + 0.5)
        d2 -= L[2] * math.floor(d2 / L[2] + 0.5)
        r = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
        t = (r - b0) / bdx
        k = min(max(int(t), 0), nb - 2)
        u = t - k
        s = ((1.0 - u) * bF[k] + u * bF[k + 1]) / r
        F[i, 0] += s * d0
        F[i, 1] += s * d1
        F[i, 2] += s * d2
        F[j, 0] -= s * d0
        F[j, 1] -= s * d1
        F[j, 2] -= s * d2


@njit(cache=True)
def _run_mol(pos, vel, F, invm, mol_of, first, n_mol, mfrac, L, nc_a, cells_a, nc_m, cells_m,
             r0, dr, Ffine, rc_f, Fcoarse, rc_c, bonds, b0, bdx, bF, xc, d_at, d_hy, th_x0,
             th_dx, Fth, dt, kT, friction, rng, nsteps, every, nbins, hist, com, w):
    c = math.exp(-friction * dt)
    s_ou = math.sqrt(1.0 - c * c)
    Lx = L[0]
    for step in range(nsteps):
        baoab_drift(pos, vel, F, invm, dt, c, s_ou, kT, rng)
        _mol_forces(pos, mol_of, first, n_mol, mfrac, L, nc_a, cells_a, nc_m, cells_m, r0, dr,
                    Ffine, rc_f, Fcoarse, rc_c, bonds, b0, bdx, bF, xc, d_at, d_hy, th_x0, th_dx,
                    Fth, F, com, w)
        _kick_and_bin(vel, F, invm, dt, com, Lx, nbins, hist, step, every)


def run_adress_molecular(fine: CGPotential, coarse: CGPotential, start: CGTrajectory,
                         molecules, *, d_at: float, d_hy: float, steps: int,
                         iterations: int = 0, equilibration: int = 2000, dt_fs: float = 2.0,
                         friction_per_fs: float = 0.001, bins: int = 32,
                         prefactor: float | None = None, seed: int = 0,
                         f_th_margin: float | None = None) -> AdResSResult:
    """AdResS with multi-site molecules (Praprotnik, Delle Site & Kremer 2005): in the fine slab
    a molecule's sites interact site by site (``fine``: the site-site pair table, and its bond
    table on ``start.bonds``, which act everywhere); in the coarse region molecules interact
    through one centre-of-mass potential (``coarse``); in the hybrid layers both, weighted by
    ``w_a w_b`` and ``1 - w_a w_b`` (``w`` at each molecule's centre of mass, the coarse force
    shared by a molecule's sites in proportion to their mass).  The thermodynamic force acts on
    centres of mass and is iterated as in :func:`run_adress`; densities are of centres of mass.

    ``molecules``: one list of site indices per molecule (consecutive molecules of the same
    size); sites of one type with the mass ``fine.masses[0]``; ``coarse`` is a one-type
    potential of the molecules (its mass is not used: the sites carry the mass).  The default
    friction (1/ps) is weak: a strong Langevin friction slows the density's relaxation across the
    box, and an unrelaxed run mistakes its drift for a profile.
    """
    for name, p in (("fine", fine), ("coarse", coarse)):
        if not isinstance(p, CGPotential) or len(p.type_names) != 1:
            raise InputError(name, type(p).__name__, "a CGPotential of one bead type")
    if not np.array_equal(fine.r_A, coarse.r_A):
        raise InputError("coarse.r_A", coarse.r_A.size, "the fine potential's table grid")
    if not isinstance(start, CGTrajectory):
        raise InputError("start", type(start).__name__, "a CGTrajectory of the sites")
    n = start.n_beads
    mols = [np.asarray(m, dtype=np.int64) for m in molecules]
    mol_of = np.full(n, -1, dtype=np.int64)
    for k, m in enumerate(mols):
        if m.size == 0 or m.min() < 0 or m.max() >= n or np.any(mol_of[m] >= 0):
            raise InputError("molecules", m.tolist()[:8], "disjoint lists of site indices")
        mol_of[m] = k
    if np.any(mol_of < 0):
        raise InputError("molecules", f"sites {np.flatnonzero(mol_of < 0)[:8].tolist()} in none",
                         "every site in one molecule")
    if start.bonds.size and not fine.bond:
        raise InputError("fine.bond", None, "a bond table for the molecules' bonds")
    d_at = positive("d_at", d_at)
    d_hy = positive("d_hy", d_hy)
    L = np.asarray(start.box, dtype=float)
    rc = fine.cutoff_A
    if 2 * (d_at + d_hy) >= L[0] - 2 * rc:
        raise InputError("d_at + d_hy", d_at + d_hy,
                         f"a fine + hybrid slab leaving a coarse region at least two cutoffs "
                         f"wide (box x = {L[0]:.4g} Å)")
    if np.any(L <= 2 * rc):
        raise InputError("start.box", tuple(L), f"every length > 2 x the cutoff {rc:g} Å")
    steps = positive_int("steps", steps)
    iterations = positive_int("iterations", iterations, 0)
    equilibration = positive_int("equilibration", equilibration, 0)
    bins = positive_int("bins", bins, 8)
    seed = _check_seed("seed", seed)
    from ase import units
    dt = positive("dt_fs", dt_fs) * units.fs
    friction = positive("friction_per_fs", friction_per_fs) / units.fs
    kT = BOLTZMANN_EV * fine.temperature_K
    prefactor = None if prefactor is None else in_range("prefactor", prefactor, 0.0, 1e3)
    m_site = float(fine.masses[0])
    invm = np.full(n, 1.0 / m_site)
    sizes = np.bincount(mol_of)
    mfrac = 1.0 / sizes[mol_of].astype(float)            # equal site masses
    first = np.array([m[0] for m in mols], dtype=np.int64)
    n_mol = len(mols)
    nc_a = np.floor(L / rc).astype(np.int64)
    nc_m = nc_a.copy()
    cells = bool(np.all(nc_a >= 3))
    r = fine.r_A
    r0, dr = float(r[0]), float(r[1] - r[0])
    Ff = np.asarray(fine.pair_force_eV_per_A[fine.pairs[0]], dtype=float)
    Fc = np.asarray(coarse.pair_force_eV_per_A[coarse.pairs[0]], dtype=float)
    if fine.bond:
        rb = np.asarray(fine.bond["r_A"])
        grid = np.linspace(rb[0], rb[-1], max(rb.size, 200))
        bF = np.interp(grid, rb, fine.bond["force_eV_per_A"])
        b0, bdx = float(grid[0]), float(grid[1] - grid[0])
    else:
        bF, b0, bdx = np.zeros(2), 0.0, 1.0
    bonds = np.ascontiguousarray(start.bonds, dtype=np.int64)
    xc = 0.5 * L[0]
    th_x = _th_grid(d_at, d_hy, f_th_margin)
    Fth = np.zeros_like(th_x)
    pos = np.ascontiguousarray(start.positions[-1], dtype=float).copy()
    rng = seed_words(seed)
    vel = maxwell_boltzmann(np.full(n, m_site), kT, seed)
    F = np.zeros_like(pos)
    com = np.zeros((n_mol, 3))
    w = np.zeros(n_mol)
    args = (r0, dr, Ff, rc, Fc, rc, bonds, b0, bdx, bF, xc, d_at, d_hy)
    _mol_forces(pos, mol_of, first, n_mol, mfrac, L, nc_a, cells, nc_m, cells, *args, th_x[0],
                th_x[1] - th_x[0], Fth, F, com, w)
    dummy = np.zeros((1, bins))

    def sample(Fth, hist):
        for n_steps, every, h in ((equilibration, 0, dummy), (steps, 10, hist)):
            _run_mol(pos, vel, F, invm, mol_of, first, n_mol, mfrac, L, nc_a, cells, nc_m,
                     cells, *args, th_x[0], th_x[1] - th_x[0], Fth, dt, kT, friction, rng,
                     n_steps, every, bins, h, com, w)
    res = _iterate(sample, Fth, th_x, iterations=iterations, steps=steps, every=10, bins=bins,
                   box_x=float(L[0]), d_at=d_at, d_hy=d_hy, kT=kT, prefactor=prefactor)
    res.positions = pos
    return res
