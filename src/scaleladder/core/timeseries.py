"""Statistics of correlated time series (MD, Monte Carlo, DPD and CG runs alike).

Block averaging, Flyvbjerg-Petersen blocking curves and Sokal's integrated autocorrelation time:
the honest standard error of a mean taken over a correlated run.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError
from .validate import positive, positive_int

__all__ = ["block_average", "blocking_curve", "integrated_autocorrelation_time"]


def block_average(series, n_blocks: int = 10) -> tuple[float, float]:
    """Mean and standard error of a correlated time series by block averaging.

    The series is cut into ``n_blocks`` equal consecutive blocks (a remainder at the start is
    dropped); the standard error is ``std(block means, ddof=1) / sqrt(n_blocks)``.  Blocks must
    be longer than the correlation time for the error to be honest.

    Parameters
    ----------
    series : array-like, 1-D
    n_blocks : int
        At least 2, at most ``len(series)``.

    Returns
    -------
    mean, stderr : float
    """
    x = np.asarray(series, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise InputError("series", f"shape {x.shape}", "a 1-D series of at least 2 values")
    if not np.all(np.isfinite(x)):
        raise InputError("series", "non-finite values", "a finite series")
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)) \
            or not 2 <= n_blocks <= x.size:
        raise InputError("n_blocks", n_blocks, f"an integer in [2, {x.size}]")
    m = x.size // n_blocks
    blocks = x[x.size - m * n_blocks:].reshape(n_blocks, m).mean(axis=1)
    return float(blocks.mean()), float(blocks.std(ddof=1) / np.sqrt(n_blocks))


def blocking_curve(series, min_blocks: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Standard error of the mean against block length (Flyvbjerg-Petersen blocking).

    The block length doubles from 1 frame while at least ``min_blocks`` blocks remain; at each
    length the error is :func:`block_average`'s.  For a correlated series the error grows with
    the block length and levels off (a plateau) once blocks are longer than the correlation
    time: the plateau value is the honest error, a still-rising curve means the run is too short.

    Parameters
    ----------
    series : array-like, 1-D
        At least ``2 * min_blocks`` values.
    min_blocks : int
        Fewest blocks used (>= 2).

    Returns
    -------
    block_lengths : numpy.ndarray of int
        Frames per block.
    stderr : numpy.ndarray
        Standard error of the mean at each block length (same unit as the series).
    """
    x = np.asarray(series, dtype=float)
    min_blocks = positive_int("min_blocks", min_blocks)
    if min_blocks < 2:
        raise InputError("min_blocks", min_blocks, "an integer >= 2")
    if x.ndim != 1 or x.size < 2 * min_blocks:
        raise InputError("series", f"shape {x.shape}",
                         f"a 1-D series of at least 2 * min_blocks = {2 * min_blocks} values")
    lengths, errs = [], []
    m = 1
    while x.size // m >= min_blocks:
        lengths.append(m)
        errs.append(block_average(x, x.size // m)[1])
        m *= 2
    return np.array(lengths, dtype=int), np.array(errs)


def integrated_autocorrelation_time(series, window_factor: float = 5.0) -> float:
    """Integrated autocorrelation time of a stationary series, in frames.

    ``tau = 1/2 + sum_{k=1}^{W} rho(k)`` with the autocorrelation ``rho`` from an FFT and Sokal's
    self-consistent window (the smallest ``W >= window_factor * tau(W)``).  The variance of a
    mean over ``n`` frames is ``2 tau var(x) / n`` (``tau = 1/2`` for white noise), so a block of
    ``m`` frames holds about ``m / (2 tau)`` independent samples; block means are decorrelated
    when ``m`` is several times ``2 tau``.

    Parameters
    ----------
    series : array-like, 1-D
        At least 4 finite values.
    window_factor : float
        Sokal's ``c`` (5 is usual; larger is safer for slowly decaying correlations).

    Returns
    -------
    float
        ``tau`` in frames (``0.5`` for a constant or white series).
    """
    x = np.asarray(series, dtype=float)
    if x.ndim != 1 or x.size < 4 or not np.all(np.isfinite(x)):
        raise InputError("series", f"shape {x.shape}", "a finite 1-D series of at least 4 values")
    window_factor = positive("window_factor", window_factor)
    d = x - x.mean()
    n = d.size
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(d, nfft)
    acf = np.fft.irfft(f * np.conj(f), nfft)[:n]
    if acf[0] <= 0.0:
        return 0.5
    rho = acf / acf[0]
    tau = 0.5
    for w in range(1, n):
        tau += rho[w]
        if w >= window_factor * tau:
            break
    return float(max(tau, 0.5))
