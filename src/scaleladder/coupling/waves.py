"""Waves through an interface: how much of a wave an atomistic–continuum (or any) coupling
reflects, measured by simulation and predicted exactly.

A 1D mass–spring chain is the common model of both sides: an atomistic harmonic chain (mass
``m``, bond stiffness ``k = φ''``, spacing ``a``) and a linear finite-element bar with lumped
masses (``k = EA/h``, ``m = ρAh``, half masses at free ends) are the same object, so one tool
covers impedance mismatch, a penalty tie between two bars, and an atomistic chain handing over to
a coarser mesh.

* :func:`junction_reflection` — the **exact** amplitude reflection coefficient ``R`` of a
  right-going wave of wavenumber ``q`` (per site, radians) on a semi-infinite chain ``(m1, k1)``
  whose last site (mass ``mL``) is joined by a spring ``kJ`` to the first site (mass ``mR``) of
  a semi-infinite chain ``(m2, k2)``: the two equations of motion at the junction sites, with
  ``u_n = e^{iq₁n} + R e^{−iq₁n}`` on the left and ``T e^{iq₂(n−1)}`` on the right.  A
  frequency above the right chain's cutoff ``2√(k2/m2)`` cannot enter it: ``|R| = 1``.
* :func:`spring_reflection` — two continuum bars of impedance ``Z`` joined by a spring ``K``
  (the continuum limit of a penalty tie): ``R = iωZ/(iωZ − 2K)``, ``|R| = ωZ/√(ω²Z² + 4K²)``:
  non-zero for every finite ``K``, vanishing as ``K → ∞``.
* :func:`impedance_reflection` — ``(Z₁ − Z₂)/(Z₁ + Z₂)`` for a perfect joint of two bars.
* :func:`measure_reflection` — the measurement: a right-going wave packet (built from right-going
  modes only, so that nothing starts out left-going) is sent through the junction with velocity
  Verlet, and the energy left behind in the left chain once the packet has passed is the
  reflected energy; the prediction is ``Σ_q |R(q)|² E(q) / Σ_q E(q)`` over the packet's modal
  energies ``E(q) ∝ ω(q)² |A(q)|²``.  Verlet keeps the chain's dispersion in the form
  ``Ω(q) = 2√(k/m) sin(q/2)`` for its modified frequency, so the prediction at fixed ``q`` is
  exact for the integrator too.

Units are the caller's (consistent): masses, stiffnesses and times in any one system.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core import validate as _v
from ..core.errors import InputError

__all__ = ["junction_reflection", "spring_reflection", "impedance_reflection", "Chain1D",
           "measure_reflection", "ReflectionMeasurement", "chain_frequency", "right_going_packet",
           "triangular_frequency"]


def chain_frequency(q, m: float, k: float):
    """``ω(q) = 2√(k/m) |sin(q/2)|`` of a uniform chain (rad per unit time)."""
    return 2.0 * np.sqrt(k / m) * np.abs(np.sin(0.5 * np.asarray(q, dtype=float)))


def triangular_frequency(q, m: float, k: float, polarisation: str = "longitudinal"):
    """``ω(q)`` of a triangular lattice with nearest-neighbour springs ``k`` (spacing 1, close-
    packed rows along x) for a plane wave along x: the bonds at 0° and ±60° give
    ``ω_L² = (k/m)[2(1 − cos q) + 1 − cos(q/2)]`` (longitudinal) and
    ``ω_T² = (3k/m)(1 − cos(q/2))`` (transverse); the long-wave limits are the Cauchy–Born
    speeds ``c_L² = 9ka²/8m``, ``c_T² = 3ka²/8m`` (``λ = μ = √3k/4`` per unit area)."""
    q = np.asarray(q, dtype=float)
    if polarisation == "longitudinal":
        w2 = 2.0 * (1.0 - np.cos(q)) + 1.0 - np.cos(0.5 * q)
    elif polarisation == "transverse":
        w2 = 3.0 * (1.0 - np.cos(0.5 * q))
    else:
        raise InputError("polarisation", polarisation, "'longitudinal' or 'transverse'")
    return np.sqrt(k / m * w2)


def junction_reflection(q, m1: float, k1: float, m2: float, k2: float, kJ: float,
                        mL: float | None = None, mR: float | None = None) -> np.ndarray:
    """Exact complex amplitude reflection coefficient ``R(q)`` of the junction (module docstring);
    ``q`` in ``(0, π)`` is the incoming wavenumber on the left chain, ``mL``/``mR`` the masses of
    the two junction sites (default ``m1``, ``m2``)."""
    m1, k1, m2, k2 = (_v.positive(n, v) for n, v in (("m1", m1), ("k1", k1), ("m2", m2), ("k2", k2)))
    kJ = _v.positive("kJ", kJ)
    mL = m1 if mL is None else _v.positive("mL", mL)
    mR = m2 if mR is None else _v.positive("mR", mR)
    q = np.atleast_1d(np.asarray(q, dtype=float))
    if np.any((q <= 0) | (q >= math.pi)):
        raise InputError("q", q.tolist() if q.size < 8 else "array", "wavenumbers in (0, π)")
    w2 = chain_frequency(q, m1, k1) ** 2
    # right chain: q2 from the same frequency; above its cutoff the wave is evanescent
    s = np.sqrt(w2 * m2 / (4.0 * k2)).astype(complex)
    q2 = 2.0 * np.arcsin(s)                 # complex beyond the cutoff: the decaying branch
    q2 = np.where(q2.imag < 0, np.conj(q2), q2)
    out = np.empty(q.size, dtype=complex)
    for n in range(q.size):
        e1, e2 = np.exp(1j * q[n]), np.exp(1j * q2[n])
        # unknowns (R, T); u_-1 = 1/e1 + R e1, u_0 = 1 + R, u_1 = T, u_2 = T e2
        # site 0: -mL w² u0 - k1 (u_-1 - u0) - kJ (u1 - u0) = 0
        a11 = -mL * w2[n] - k1 * (e1 - 1.0) + kJ
        a12 = -kJ
        b1 = mL * w2[n] + k1 * (1.0 / e1 - 1.0) - kJ
        # site 1: -mR w² u1 - kJ (u0 - u1) - k2 (u2 - u1) = 0
        a21 = -kJ
        a22 = -mR * w2[n] + kJ - k2 * (e2 - 1.0)
        b2 = kJ
        R, _ = np.linalg.solve(np.array([[a11, a12], [a21, a22]]), np.array([b1, b2]))
        out[n] = R
    return out


def spring_reflection(omega, Z: float, K: float) -> np.ndarray:
    """``R = iωZ/(iωZ − 2K)``: two identical continuum bars (impedance ``Z = √(EA ρA)``) joined
    by a spring ``K`` (force per displacement jump)."""
    w = np.asarray(omega, dtype=float)
    Z = _v.positive("Z", Z)
    K = _v.positive("K", K)
    return 1j * w * Z / (1j * w * Z - 2.0 * K)


def impedance_reflection(Z1: float, Z2: float) -> float:
    """``(Z₁ − Z₂)/(Z₁ + Z₂)``: a wave in medium 1 meeting medium 2 at a perfect joint."""
    Z1, Z2 = _v.positive("Z1", Z1), _v.positive("Z2", Z2)
    return (Z1 - Z2) / (Z1 + Z2)


class Chain1D:
    """A free–free mass–spring chain: ``masses`` (n), ``springs`` (n − 1, between consecutive
    sites).  Linear; integrated by velocity Verlet."""

    def __init__(self, masses, springs):
        self.m = _v.finite_array("masses", masses)
        self.k = _v.finite_array("springs", springs, (self.m.size - 1,))
        if np.any(self.m <= 0) or np.any(self.k <= 0):
            raise InputError("masses/springs", "non-positive entries", "positive masses and springs")
        self.damping = np.zeros_like(self.m)

    def forces(self, u: np.ndarray) -> np.ndarray:
        t = self.k * np.diff(u)
        f = np.zeros_like(u)
        f[:-1] += t
        f[1:] -= t
        return f

    def energy(self, u, v, sites=None) -> float:
        """Kinetic plus spring energy of ``sites`` (a mask; springs with both ends inside)."""
        if sites is None:
            sites = np.ones(self.m.size, dtype=bool)
        kin = 0.5 * float(np.sum(self.m[sites] * v[sites] ** 2))
        both = sites[:-1] & sites[1:]
        pot = 0.5 * float(np.sum(self.k[both] * np.diff(u)[both] ** 2))
        return kin + pot

    def stable_step(self) -> float:
        """Verlet's stability limit ``2/ω_max`` with ``ω_max ≤ max_i 2√(k_i,max/m_i)``."""
        kk = np.zeros_like(self.m)
        kk[:-1] += self.k
        kk[1:] += self.k
        return float(2.0 / np.sqrt(2.0 * (kk / self.m).max()))

    def run(self, u, v, dt: float, n_steps: int):
        """Velocity Verlet (with the optional per-site ``damping`` rate, a Langevin-free viscous
        drag ``−γ m v`` applied in a half-implicit way) for ``n_steps``; returns ``u, v``."""
        dt = _v.positive("dt", dt)
        if dt > self.stable_step():
            raise InputError("dt", dt, f"a time step below Verlet's stability limit "
                             f"{self.stable_step():.4g}")
        u, v = np.array(u, dtype=float), np.array(v, dtype=float)
        a = self.forces(u) / self.m
        g = self.damping
        for _ in range(_v.positive_int("n_steps", n_steps)):
            v = (v * (1 - 0.5 * dt * g) + 0.5 * dt * a) / (1 + 0.5 * dt * g) if g.any() else v + 0.5 * dt * a
            u = u + dt * v
            a = self.forces(u) / self.m
            v = (v * (1 - 0.5 * dt * g) + 0.5 * dt * a) / (1 + 0.5 * dt * g) if g.any() else v + 0.5 * dt * a
        return u, v


def right_going_packet(n_sites: int, m: float, k: float, q0: float, width: float, *,
                       centre: float, x=None, frequency=None):
    """Displacements and velocities of a Gaussian packet of **right-going** modes only, carrier
    ``q0``, spatial width ``width`` (sites), centred at site ``centre`` of a uniform chain of
    ``n_sites`` (site 0 leftmost); also the mode grid ``q``, amplitudes ``A(q)`` and ``ω(q)``
    (the modal energies are ``∝ ω² A²``).  ``x``: the sites' coordinates in lattice spacings
    (default ``0 .. n_sites − 1``; a 2D lattice's sites for a plane-wave packet along x) and
    ``frequency``: ``ω(q)`` of that lattice's branch (default the chain's)."""
    sq = 1.0 / _v.positive("width", width)
    q = np.linspace(max(1e-4, q0 - 6 * sq), min(math.pi - 1e-4, q0 + 6 * sq), 801)
    A = np.exp(-0.5 * ((q - q0) / sq) ** 2)
    w = chain_frequency(q, m, k) if frequency is None else np.asarray(frequency(q), dtype=float)
    x = np.arange(n_sites) if x is None else np.asarray(x, dtype=float)
    phase = np.exp(1j * np.outer(x - centre, q))      # (n, nq)
    return (phase @ A).real, (phase @ (-1j * w * A)).real, q, A, w


@dataclass
class ReflectionMeasurement:
    """Reflected energy fraction measured by simulation and predicted from ``R(q)``."""

    measured: float
    predicted: float
    transmitted: float
    q0: float
    q: np.ndarray
    weights: np.ndarray
    R: np.ndarray


def measure_reflection(m1: float, k1: float, m2: float, k2: float, kJ: float, *, q0: float,
                       width: float = 40.0, n_left: int | None = None,
                       n_right: int | None = None, mL: float | None = None,
                       mR: float | None = None, dt_fraction: float = 0.05,
                       damping=None) -> ReflectionMeasurement:
    """Send a right-going Gaussian packet (carrier wavenumber ``q0``, spatial width ``width``
    sites) from the left chain through the junction; return the reflected energy fraction
    measured (energy left in the left chain after the packet has passed) and predicted.

    ``damping``: optional ``(rates)`` per site of the right chain — a damping band, whose
    absorbed energy counts as neither reflected nor transmitted.
    """
    q0 = _v.in_range("q0", q0, 1e-6, math.pi - 1e-6)
    width = _v.positive("width", width)
    nL = int(n_left or max(400, int(12 * width)))
    nR = int(n_right or nL)
    masses = np.concatenate([np.full(nL, float(m1)), np.full(nR, float(m2))])
    if mL is not None:
        masses[nL - 1] = _v.positive("mL", mL)
    if mR is not None:
        masses[nL] = _v.positive("mR", mR)
    springs = np.concatenate([np.full(nL - 1, float(k1)), [float(kJ)], np.full(nR - 1, float(k2))])
    chain = Chain1D(masses, springs)
    if damping is not None:
        chain.damping[nL:] = _v.finite_array("damping", damping, (nR,))
    u = np.zeros(nL + nR)
    v = np.zeros(nL + nR)
    u[:nL], v[:nL], q, A, w = right_going_packet(nL, m1, k1, q0, width, centre=nL / 2.0)
    left = np.zeros(nL + nR, dtype=bool)
    left[:nL] = True
    E0 = chain.energy(u, v)
    # group velocity at q0 (sites per time); run until the packet's tail has cleared the junction
    vg = math.sqrt(k1 / m1) * math.cos(q0 / 2)
    T = (nL / 2 + 6 * width) / max(vg, 1e-3 * math.sqrt(k1 / m1))
    dt = dt_fraction * math.sqrt(min(m1 / k1, m2 / k2, masses.min() / max(kJ, k1, k2)))
    steps = int(math.ceil(T / dt))
    u, v = chain.run(u, v, dt, steps)
    El = chain.energy(u, v, left)
    Er = chain.energy(u, v, ~left)
    R = junction_reflection(q, m1, k1, m2, k2, kJ, mL=mL, mR=mR)
    wts = w ** 2 * A ** 2
    return ReflectionMeasurement(measured=El / E0, predicted=float(np.sum(wts * np.abs(R) ** 2) / wts.sum()),
                                 transmitted=Er / E0, q0=q0, q=q, weights=wts / wts.sum(), R=R)
