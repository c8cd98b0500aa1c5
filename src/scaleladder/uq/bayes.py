"""Bayesian linear regression with the evidence approximation (type-II maximum likelihood).

The model is ``y = X w + e`` with a Gaussian prior ``w ~ N(0, alpha^-1 I)`` on the coefficients of
the *standardised* columns and Gaussian noise ``e ~ N(0, beta^-1)`` on each (already weighted)
row.  ``alpha`` and ``beta`` are chosen to maximise the marginal likelihood (the evidence) by
MacKay's fixed-point iteration (MacKay 1992; Bishop, *Pattern Recognition and Machine Learning*,
section 3.5.2) on the singular values of ``X``:

    gamma = sum_i beta s_i^2 / (beta s_i^2 + alpha)      (effective number of parameters)
    alpha = gamma / |m|^2,     beta = (n - gamma) / |y - X m|^2

The posterior is ``N(m, S)`` with ``S = (alpha I + beta X^T X)^-1`` and ``m = beta S X^T y``;
the predictive variance of a new row ``x`` is ``x S x^T`` (the model's own, epistemic part) plus
``1/beta`` (the noise).  This is what scikit-learn's ``BayesianRidge`` computes; it is written here
(thirty lines of NumPy on one SVD) because the callers need the full posterior covariance and the
two variances separately, and so that the toolkit does not depend on scikit-learn for it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import ConvergenceError, InputError

__all__ = ["BayesianLinearFit", "bayesian_linear_fit"]


@dataclass(frozen=True)
class BayesianLinearFit:
    """Posterior of a Bayesian linear regression (in the caller's, unstandardised columns).

    Attributes
    ----------
    mean : ndarray (p,)
        Posterior mean of the coefficients.
    covariance : ndarray (p, p)
        Posterior covariance of the coefficients.
    alpha : float
        Prior precision of the standardised coefficients.
    beta : float
        Noise precision of a (weighted) row.
    gamma : float
        Effective number of well-determined parameters (<= p).
    log_evidence : float
        Log marginal likelihood at the optimum.
    n_iterations : int
    """

    mean: np.ndarray
    covariance: np.ndarray
    alpha: float
    beta: float
    gamma: float
    log_evidence: float
    n_iterations: int

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, epistemic variance)`` of rows ``x`` (n, p): ``x m`` and ``diag(x S x^T)``."""
        x = np.atleast_2d(np.asarray(x, float))
        return x @ self.mean, np.einsum("ij,jk,ik->i", x, self.covariance, x)


def bayesian_linear_fit(X, y, *, max_iter: int = 300, tol: float = 1e-10) -> BayesianLinearFit:
    """Evidence-maximised Bayesian ridge regression of ``y`` on the columns of ``X``.

    Parameters
    ----------
    X : array_like (n, p)
        Design matrix (rows already weighted by the caller).  Columns are standardised
        internally by their root-mean-square (a column of zeros keeps scale 1).
    y : array_like (n,)
        Targets (weighted like the rows of ``X``).
    max_iter, tol
        Fixed-point iterations and the relative change of ``alpha`` and ``beta`` that stops them.

    Returns
    -------
    BayesianLinearFit

    Raises
    ------
    InputError
        Shapes that do not match, non-finite entries, fewer rows than two.
    ConvergenceError
        The fixed point is not reached in ``max_iter`` iterations.
    """
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise InputError("X, y", f"shapes {X.shape}, {y.shape}", "X (n, p) and y (n,)")
    n, p = X.shape
    if n < 2:
        raise InputError("X", f"{n} rows", "at least 2 rows (observations)")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise InputError("X, y", "non-finite entries", "finite numbers")
    scale = np.sqrt(np.mean(X ** 2, axis=0))
    scale[scale == 0] = 1.0
    Z = X / scale
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    s2 = s ** 2
    uty = U.T @ y
    alpha, beta = 1.0, 1.0 / max(np.var(y), 1e-300)
    it = 0
    for it in range(1, max_iter + 1):
        d = beta * s2 + alpha
        m_rot = beta * s * uty / d                      # posterior mean in the rotated basis
        gamma = float(np.sum(beta * s2 / d))
        resid = y - U @ (s * m_rot)
        rss = float(resid @ resid)
        # residual outside the column space of Z also counts
        alpha_new = gamma / max(float(m_rot @ m_rot), 1e-300)
        beta_new = (n - gamma) / max(rss, 1e-300)
        done = (abs(alpha_new - alpha) <= tol * alpha and abs(beta_new - beta) <= tol * beta)
        alpha, beta = alpha_new, beta_new
        if done:
            break
    else:
        raise ConvergenceError("evidence maximisation did not converge",
                               configuration=f"{n} rows, {p} columns",
                               settings={"max_iter": max_iter, "tol": tol},
                               suggestion="the design matrix may be rank-deficient with noise-free "
                                          "targets; add rows or drop duplicate columns")
    d = beta * s2 + alpha
    m_rot = beta * s * uty / d
    # posterior in the standardised basis: S_z = V diag(1/d) V^T (+ alpha^-1 on the null space)
    cov_z = (Vt.T / d) @ Vt
    if Vt.shape[0] < p:   # directions the data do not see keep the prior
        null = np.eye(p) - Vt.T @ Vt
        cov_z = cov_z + null / alpha
    mean_z = Vt.T @ m_rot
    resid = y - Z @ mean_z
    rss = float(resid @ resid)
    log_ev = 0.5 * (p * np.log(alpha) + n * np.log(beta) - beta * rss - alpha * float(mean_z @ mean_z)
                    - np.sum(np.log(d)) - (p - s.size) * np.log(alpha) - n * np.log(2 * np.pi))
    mean = mean_z / scale
    cov = cov_z / np.outer(scale, scale)
    cov = 0.5 * (cov + cov.T)
    return BayesianLinearFit(mean=mean, covariance=cov, alpha=float(alpha), beta=float(beta),
                             gamma=gamma, log_evidence=float(log_ev), n_iterations=it)
