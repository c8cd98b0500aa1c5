"""A small engine of the simulation protocol for tests/test_simulation.py (importable by a child
process): an Ornstein-Uhlenbeck walker whose random stream lives in its state."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaleladder.core.codec import register
from scaleladder.core.errors import CalculationError


@register("TestOUState")
@dataclass(frozen=True)
class OUState:
    x: np.ndarray
    rng: dict
    step: int = 0

    def to_state(self):
        return {"x": self.x, "rng": self.rng, "step": self.step}

    @classmethod
    def from_state(cls, s):
        return cls(x=np.array(s["x"]), rng=s["rng"], step=int(s["step"]))


@register("TestOUEngine")
class OU:
    kind = "test.ou/1"

    def __init__(self, theta: float = 0.1, sigma: float = 1.0, blow_up_at: int | None = None):
        self.theta, self.sigma, self.blow_up_at = theta, sigma, blow_up_at

    def advance(self, state, n):
        g = np.random.Generator(np.random.PCG64())
        g.bit_generator.state = state.rng
        x = state.x.copy()
        for _ in range(n):
            x += -self.theta * x + self.sigma * g.standard_normal(x.shape)
        return OUState(x=x, rng=g.bit_generator.state, step=state.step + n), n, None

    def observe(self, state):
        return {"mean_x2": float(np.mean(state.x ** 2))}

    def check(self, state, history, obs):
        if self.blow_up_at is not None and state.step >= self.blow_up_at:
            raise CalculationError(f"test blow-up at step {state.step}")

    def to_state(self):
        return {"theta": self.theta, "sigma": self.sigma, "blow_up_at": self.blow_up_at}

    @classmethod
    def from_state(cls, s):
        return cls(**s)
