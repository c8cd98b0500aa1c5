"""The random-number generator of the mesoscale Monte Carlo kernels (numba).

xoshiro256** (Blackman & Vigna, "Scrambled linear pseudorandom number generators", ACM TOMS 47
(2021)): a 4-word uint64 state kept by the caller, so a simulation's state is plain data and a
checkpointed run resumes bit for bit.  Shared by the mesoscale kernels (kmc, spins, particles);
:func:`seed_words` seeds the four words from ``numpy.random.SeedSequence`` — the project's one
seeding convention (:func:`scaleladder.core.simulation.seeded_rng_state` seeds NumPy's PCG64 the
same way).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..core.validate import seed as _check_seed

__all__ = ["next_u64", "uniform", "normal", "seed_words"]


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


@njit(cache=True, inline="always")
def normal(s):
    """A standard normal variate (Box-Muller on two :func:`uniform` draws; the sine branch is
    not kept, so the state holds no cached value)."""
    u1 = 1.0 - uniform(s)            # (0, 1]: log is finite
    u2 = uniform(s)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def seed_words(seed: int = 0, spawn_key: tuple = ()) -> np.ndarray:
    """The four xoshiro256** words of ``SeedSequence(seed, spawn_key=spawn_key)`` (never all
    zero)."""
    seed = _check_seed("seed", seed)
    words = np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in spawn_key)) \
        .generate_state(4, np.uint64)
    if not words.any():
        words[0] = np.uint64(1)
    return words
