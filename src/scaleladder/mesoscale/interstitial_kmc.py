"""Lattice KMC of an interstitial solute on the octahedral-tetrahedral network of an fcc host,
with every jump's barrier following the local strain through the elastic dipoles.

The rates come from an :class:`~scaleladder.handoffs.InterstitialDiffusion` (one computed jump
O -> T: barrier, Vineyard prefactors of both directions, dipoles of the two sites and of the
saddle).  The other jumps of the family are its images under the cubic group: the saddle dipole
of a jump along ``d`` is ``R P_saddle R^T`` for a signed permutation ``R`` that maps the computed
jump onto ``d`` (the saddle's own symmetry makes the choice of ``R`` irrelevant).  Under a
homogeneous small strain ε:

    E(O -> T along d) = E_m     - (P_saddle(d) - P_O):ε
    E(T -> O along b) = E_m_rev - (P_saddle(-b) - P_T):ε

and the jump vectors are strained with the crystal (``(1 + ε) b``).  The lattice is the
unstrained O/T topology (the walkers of :mod:`scaleladder.mesoscale.kmc`); only rates and
vectors carry the strain, so a shear that splits the O-T distances does not confuse the
neighbour shells.

:func:`renewal_diffusivity` is the exact long-time diffusivity tensor of this network for any
rates (a renewal argument: a cycle is the time at an octahedral site plus the visit of one
tetrahedral site, and cycles from translation-equivalent octahedral sites are independent):

    D = E[X X^T] / (2 E[τ]),   E[τ] = 1/R_O + Σ_v p_v / R_T(v),
    E[X X^T] = Σ_v p_v Σ_w q_vw (d_v + e_vw)(d_v + e_vw)^T

(``p_v`` the probability of leaving O towards ``T_v``, ``q_vw`` of leaving ``T_v`` through its
slot ``w``); the KMC's mean-square displacement must reproduce it.
"""
from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from ..core.errors import InputError
from ..core.units import BOLTZMANN_EV
from ..core.validate import finite_array, positive, positive_int
from ..uq import Estimate
from .kmc import KMCModel, Lattice, init_walkers, run_kmc

__all__ = ["octahedral_tetrahedral_lattice", "strained_interstitial_model",
           "renewal_diffusivity", "simulate_interstitial_diffusion"]

_N_OCT = 4                 # octahedral sites per cubic cell: kinds 0-3; tetrahedral: kinds 4-11
_A2_TO_M2 = 1e-20


def octahedral_tetrahedral_lattice(a: float, size: int = 6) -> Lattice:
    """The octahedral (kinds 0-3) and tetrahedral (kinds 4-11) interstitial sites of an fcc
    crystal of cubic lattice constant ``a`` (Å), ``size``³ cubic cells; shell 1 = the O-T
    bonds (8 per O, 4 per T)."""
    from ase import Atoms

    a = positive("a", a)
    size = positive_int("size", size, 2)
    octa = [(0.5, 0.5, 0.5), (0.5, 0.0, 0.0), (0.0, 0.5, 0.0), (0.0, 0.0, 0.5)]
    tet = [tuple(0.25 + 0.5 * np.array(s)) for s in itertools.product((0, 1), repeat=3)]
    sites = Atoms("X" * 12, scaled_positions=octa + tet, cell=a * np.eye(3), pbc=True)
    return Lattice.from_atoms(sites, size=size, n_shells=1, name="fcc octahedral-tetrahedral")


@functools.lru_cache(maxsize=8)
def _cached_lattice(a: float, size: int) -> Lattice:
    """The lattice of :func:`octahedral_tetrahedral_lattice`, built once per (a, size): a
    crack-tip run builds one model per KMC cell and load, all on the same lattice (the
    engine never writes to it)."""
    return octahedral_tetrahedral_lattice(a, size)


def _signed_permutations() -> list[np.ndarray]:
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            r = np.zeros((3, 3))
            for i, j in enumerate(perm):
                r[i, j] = signs[i]
            out.append(r)
    return out


def _rotation_onto(d0: np.ndarray, d: np.ndarray) -> np.ndarray:
    u0, u = d0 / np.linalg.norm(d0), d / np.linalg.norm(d)
    for r in _signed_permutations():
        if np.allclose(r @ u0, u, atol=1e-6):
            return r
    raise InputError("diffusion", f"computed jump {d0.tolist()}",
                     f"a jump the cubic group maps onto {d.tolist()}")


def _strain(strain) -> np.ndarray:
    if strain is None:
        return np.zeros((3, 3))
    e = finite_array("strain", strain, (3, 3))
    if np.abs(e - e.T).max() > 1e-12:
        raise InputError("strain", e.tolist(), "a symmetric 3x3 small strain")
    return e


def strained_interstitial_model(diffusion, temperature_K: float, strain=None, size: int = 6
                                ) -> KMCModel:
    """A walkers :class:`~scaleladder.mesoscale.kmc.KMCModel` on the O/T network with every
    rate at ``temperature_K`` and the homogeneous small ``strain`` (3x3, None: unstrained).

    Raises
    ------
    InputError
        ``diffusion`` is not an fcc octahedral-tetrahedral InterstitialDiffusion, bad
        temperature, strain or size.
    """
    from ..handoffs import InterstitialDiffusion
    from ..handoffs.events import EventCatalog, EventType

    if not isinstance(diffusion, InterstitialDiffusion):
        raise InputError("diffusion", type(diffusion).__name__, "an InterstitialDiffusion")
    if diffusion.network != "fcc octahedral-tetrahedral-octahedral":
        raise InputError("diffusion.network", diffusion.network,
                         "'fcc octahedral-tetrahedral-octahedral'")
    t = positive("temperature_K", temperature_K)
    eps = _strain(strain)
    a = diffusion.lattice_constant_A
    lat = _cached_lattice(float(a), int(size))
    prov = diffusion.provenance
    d0 = (np.asarray(prov["final_site"], float) - np.asarray(prov["initial_site"], float))
    d0 = (d0 - np.round(d0)) * a
    p_o = np.asarray(diffusion.initial_dipole.tensor.value)
    p_t = np.asarray(diffusion.final_dipole.tensor.value)
    p_s = np.asarray(diffusion.saddle_dipole.tensor.value)
    e_f = float(diffusion.barrier.value.value)
    e_r = float(diffusion.barrier.reverse.value)
    nu_f = float(diffusion.prefactor.to("1/s").value)
    nu_r = float(diffusion.reverse_prefactor.to("1/s").value)
    kt = BOLTZMANN_EV * t
    nbr = lat.neighbours[0]
    vec = lat.vectors[0]
    rates = np.zeros(vec.shape[:2])
    for kind in range(lat.n_basis):
        for slot in range(vec.shape[1]):
            if nbr[kind, slot] < 0:
                continue
            b = vec[kind, slot]
            if kind < _N_OCT:                           # O -> T along b
                r = _rotation_onto(d0, b)
                e = e_f - float(np.sum((r @ p_s @ r.T - r @ p_o @ r.T) * eps))
                rates[kind, slot] = nu_f * math.exp(-e / kt)
            else:                                       # T -> O along b: the saddle of O -> T along -b
                r = _rotation_onto(d0, -b)
                e = e_r - float(np.sum((r @ p_s @ r.T - r @ p_t @ r.T) * eps))
                rates[kind, slot] = nu_r * math.exp(-e / kt)
    strained_vec = vec @ (np.eye(3) + eps).T
    ev = [EventType(name="O->T", barrier=Estimate(e_f, "eV"), prefactor=Estimate(nu_f, "1/s"),
                    shell=1),
          EventType(name="T->O", barrier=Estimate(e_r, "eV"), prefactor=Estimate(nu_r, "1/s"),
                    shell=1)]
    catalog = EventCatalog(events=tuple(ev),
                           provenance={"source": f"{diffusion.element} in {diffusion.host}"})
    for arr in (rates, strained_vec):
        arr.setflags(write=False)
    return KMCModel(lattice=lat, catalog=catalog, temperature_K=float(t),
                    neighbours=np.ascontiguousarray(nbr, dtype=np.int32), slot_rates=rates,
                    slot_vectors=strained_vec, event_rates=np.array([nu_f * math.exp(-e_f / kt),
                                                                     nu_r * math.exp(-e_r / kt)]))


def renewal_diffusivity(model: KMCModel) -> Estimate:
    """The exact long-time diffusivity tensor (m²/s, 3x3) of a walker on the O/T network of
    ``model`` (see the module notes)."""
    rates, vec, nbr = model.slot_rates, model.slot_vectors, model.neighbours
    o = 0                                           # any octahedral kind (translation-equivalent)
    r_o = rates[o].sum()
    n_basis = rates.shape[0]
    ekind = np.arange(nbr.shape[0]) % n_basis
    exx = np.zeros((3, 3))
    etau = 1.0 / r_o
    for v in range(rates.shape[1]):
        if rates[o, v] <= 0:
            continue
        p_v = rates[o, v] / r_o
        d_v = vec[o, v]
        tk = ekind[nbr[o, v]]
        r_t = rates[tk].sum()
        etau += p_v / r_t
        for w in range(rates.shape[1]):
            if rates[tk, w] <= 0:
                continue
            x = d_v + vec[tk, w]
            exx += p_v * rates[tk, w] / r_t * np.outer(x, x)
    return Estimate(exx / (2 * etau) * _A2_TO_M2, "m^2/s")


def simulate_interstitial_diffusion(model: KMCModel, n_walkers: int = 2000,
                                    time_s: float | None = None, n_jumps: int = 200,
                                    seed: int = 0) -> dict:
    """Independent walkers on the O/T network: the diffusivity tensor ``<r r^T> / 2t`` (m²/s)
    with its standard error (walkers are independent), after ``time_s`` (default: about
    ``n_jumps`` octahedral residence times of the slowest site kind), the renewal prediction,
    the events and the KMC rate (events/s of wall time)."""
    n = positive_int("n_walkers", n_walkers, 2)
    if time_s is None:
        r_min = model.slot_rates[:_N_OCT].sum(axis=1).min()
        time_s = positive_int("n_jumps", n_jumps) / r_min
    t = positive("time_s", time_s)
    st = init_walkers(model.lattice, n, seed=seed)
    run = run_kmc(st, model, t_max_s=t, progress=False)
    r = np.asarray(run.state.mover_displacement, float)
    rr = np.einsum("ni,nj->nij", r, r) / (2 * t) * _A2_TO_M2
    mean = rr.mean(axis=0)
    sem = rr.std(axis=0, ddof=1) / math.sqrt(n)
    return {"D": mean, "D_sem": sem, "D_predicted": np.asarray(renewal_diffusivity(model).value),
            "time_s": t, "events": run.events, "events_per_s": run.events_per_s}
