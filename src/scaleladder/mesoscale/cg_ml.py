"""A machine-learned many-body correction to a CG pair potential (kernel force matching).

Pair potentials cannot carry the many-body part of a potential of mean force (for one-bead water:
the tetrahedral, density-dependent hydrogen-bond network).  :func:`fit_ml_correction` learns it on
top of a *prior* pair potential (force matching's, say): the mapped forces minus the prior's are
fitted by the forces of a kernel energy over local-environment descriptors (see
:mod:`scaleladder.mesoscale._manybody`)

    E_ML = sum_i sum_m c_m exp(-|G_i - C_m|^2 / (2 l^2)),   G_ik = sum_j g_k(r_ij) (radial G2),

a sparse Gaussian-kernel ridge regression whose ``M`` centres ``C_m`` are chosen from the training
descriptors by farthest-point sampling; forces are the exact derivatives, so the coefficients enter
linearly and the fit is a ridge least-squares problem on forces (the "force matching" of the
issue; kernel regression on derivative observations, as GAP and GDML do for atoms).  Held-out
frames measure the gain: the force error of the prior alone and with the correction.  Numpy,
scipy and numba only.  One bead type.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.errors import InputError
from ..core.validate import in_range, positive, positive_int
from ..core.validate import seed as _check_seed
from ..handoffs.coarse_grained import CGPotential, CGTrajectory
from . import _manybody as _mb
from .particles import PairList

__all__ = ["fit_ml_correction"]


def _frame_pairs(x, box, r_cut):
    pl = PairList(box, r_cut, 0.0)
    pl.build(x)
    return pl


def fit_ml_correction(traj: CGTrajectory, prior: CGPotential, *, r_cut: float = 6.0,
                      n_radial: int = 8, n_centres: int = 64,
                      length_scale: float | None = None, regularisation: float = 1e-6,
                      holdout: float = 0.2, seed: int = 0) -> tuple[CGPotential, dict]:
    """Fit the many-body kernel correction to the residual forces of ``prior`` on ``traj``.

    Parameters
    ----------
    traj : CGTrajectory
        Mapped frames with forces (one bead type).
    prior : CGPotential
        The pair potential the correction goes on top of (its pair tables are kept).
    r_cut : float
        Range of the descriptors (Å), at most the prior's cutoff and half the box.
    n_radial : int
        Radial symmetry functions, centred evenly on [2 Å, r_cut - 0.5 Å] with width equal to
        their spacing.
    n_centres : int
        Kernel centres (farthest-point sampled from the training descriptors).
    length_scale : float, optional
        Kernel width in the scaled descriptor space; default the median distance between centres.
    regularisation : float
        Ridge parameter relative to the mean diagonal of the normal matrix.
    holdout : float
        Fraction of frames (the last ones) kept out of the fit to measure it.

    Returns
    -------
    (CGPotential, dict)
        The prior with ``many_body`` set (method ``"ml"``) and a report: force RMSE (eV/Å) on the
        held-out frames of the prior alone (``rmse_prior``) and with the correction (``rmse_ml``),
        the same on the training frames, and the sizes.
    """
    if not isinstance(traj, CGTrajectory):
        raise InputError("traj", type(traj).__name__, "a CGTrajectory")
    if not traj.has_forces:
        raise InputError("traj.forces", None, "a trajectory with mapped forces (the correction "
                         "is fitted to them)")
    if not isinstance(prior, CGPotential) or tuple(prior.type_names) != tuple(traj.type_names):
        raise InputError("prior", type(prior).__name__, f"a CGPotential for {traj.type_names}")
    if len(traj.type_names) != 1:
        raise InputError("traj.type_names", traj.type_names, "one bead type (the many-body term "
                         "does not distinguish types)")
    r_cut = positive("r_cut", r_cut)
    if r_cut > prior.cutoff_A or r_cut >= 0.5 * float(traj.box.min()):
        raise InputError("r_cut", r_cut, f"at most the prior's cutoff {prior.cutoff_A:g} Å and "
                         f"below half the box ({0.5 * float(traj.box.min()):.4g} Å)")
    K = positive_int("n_radial", n_radial, 2)
    M = positive_int("n_centres", n_centres, 2)
    regularisation = in_range("regularisation", regularisation, 0.0, 1.0)
    holdout = in_range("holdout", holdout, 0.0, 0.9)
    seed = _check_seed("seed", seed)
    n_val = int(round(holdout * traj.n_frames))
    n_train = traj.n_frames - n_val
    if n_train < 2:
        raise InputError("holdout", holdout, f"a split leaving >= 2 training frames of "
                         f"{traj.n_frames}")
    mu = np.linspace(2.0, r_cut - 0.5, K)
    width = mu[1] - mu[0]
    eta = 1.0 / (2.0 * width * width)
    from .cg import CGEngine

    eng = CGEngine(prior, traj.box, traj.types, temperature_K=traj.temperature_K, dt_fs=1.0,
                   thermostat="langevin", friction_per_fs=0.01, skin=0.0)
    frames = []
    ones = np.ones(K)
    for f in range(traj.n_frames):
        x = np.ascontiguousarray(traj.positions[f])
        pl = _frame_pairs(x, traj.box, r_cut)
        G = _mb.descriptors(x, pl.i, pl.j, pl.shift, mu, eta, r_cut, ones)
        resid = traj.forces[f] - eng.forces(x)[0]
        frames.append((x, pl, G, resid))
    Gall = np.concatenate([fr[2] for fr in frames[:n_train]])
    scale = Gall.std(axis=0)
    scale[scale <= 1e-12 * max(scale.max(), 1e-300)] = 1.0
    scale[scale <= 0] = 1.0
    Gs = Gall / scale
    # farthest-point sampling of the centres (seeded start)
    gen = np.random.default_rng(seed)
    pool = Gs[gen.choice(Gs.shape[0], size=min(Gs.shape[0], 20 * M), replace=False)]
    M = min(M, pool.shape[0])
    idx = [int(np.argmin(np.linalg.norm(pool - pool.mean(0), axis=1)))]
    dmin = np.linalg.norm(pool - pool[idx[0]], axis=1)
    for _ in range(M - 1):
        k = int(np.argmax(dmin))
        idx.append(k)
        dmin = np.minimum(dmin, np.linalg.norm(pool - pool[k], axis=1))
    centres = np.ascontiguousarray(pool[idx])
    if length_scale is None:
        d = np.linalg.norm(centres[:, None] - centres[None], axis=2)
        length_scale = float(np.median(d[np.triu_indices(M, 1)]))
    ell = positive("length_scale", length_scale)
    n = traj.n_beads
    AtA = np.zeros((M, M))
    Atb = np.zeros(M)
    cols = np.zeros((3 * n, M))
    designs = []
    for f, (x, pl, G, resid) in enumerate(frames):
        _mb.design_columns(x, pl.i, pl.j, pl.shift, G / scale, centres, ell, mu, eta, r_cut,
                           scale, cols)
        if f < n_train:
            AtA += cols.T @ cols
            Atb += cols.T @ resid.reshape(-1)
        designs.append(cols.copy() if f >= n_train else None)
    lam = regularisation * np.trace(AtA) / M
    coef = np.linalg.solve(AtA + lam * np.eye(M), Atb)

    def rmse(sel, with_ml):
        num, cnt = 0.0, 0
        for f in sel:
            x, pl, G, resid = frames[f]
            r = resid.reshape(-1)
            if with_ml:
                if designs[f] is None:
                    _mb.design_columns(x, pl.i, pl.j, pl.shift, G / scale, centres, ell, mu, eta,
                                       r_cut, scale, cols)
                    r = r - cols @ coef
                else:
                    r = r - designs[f] @ coef
            num += float(r @ r)
            cnt += r.size
        return math.sqrt(num / max(cnt, 1))

    train, val = range(n_train), range(n_train, traj.n_frames)
    report = {"rmse_prior_train": rmse(train, False), "rmse_ml_train": rmse(train, True),
              "rmse_prior": rmse(val, False) if n_val else float("nan"),
              "rmse_ml": rmse(val, True) if n_val else float("nan"),
              "n_train_frames": n_train, "n_holdout_frames": n_val, "n_centres": M,
              "n_radial": K, "length_scale": ell}
    mb = {"kind": "g2-kernel", "r_cut_A": r_cut, "mu_A": mu, "eta_per_A2": eta, "scale": scale,
          "centres": centres, "coefficients_eV": coef, "length_scale": ell}
    info = dict(prior.info, prior_method=prior.method, ml=report)
    pot = CGPotential(prior.type_names, prior.masses, prior.r_A, dict(prior.pair_energy_eV),
                      dict(prior.pair_force_eV_per_A), "ml", prior.temperature_K,
                      prior.density_per_A3, fitted_range_A=dict(prior.fitted_range_A),
                      pair_force_uncertainty_eV_per_A=dict(prior.pair_force_uncertainty_eV_per_A),
                      bond=dict(prior.bond), info=info, many_body=mb)
    return pot, report
