"""The random-number generator of the mesoscale Monte Carlo kernels (numba).

xoshiro256** (Blackman & Vigna, "Scrambled linear pseudorandom number generators", ACM TOMS 47
(2021)): a 4-word uint64 state kept by the caller, so a simulation's state is plain data and a
checkpointed run resumes bit for bit.  Shared by :mod:`~scaleladder.mesoscale.kmc` and
:mod:`~scaleladder.mesoscale.spins` (each seeds its own state).
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["next_u64", "uniform"]


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def next_u64(s):
    """The next 64-bit output; ``s`` (uint64 array of 4) is advanced in place."""
    result = _rotl(s[1] * np.uint64(5), 7) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


@njit(cache=True, inline="always")
def uniform(s):
    """A double in [0, 1) from the top 53 bits of :func:`next_u64`."""
    return np.float64(next_u64(s) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
