"""Stillinger-Weber potential: numba kernels behind ASE's ``Calculator`` protocol.

The Stillinger & Weber (1985) form, single species::

    E = sum_{i<j} phi2(r_ij) + sum_i sum_{j<k, j,k != i} phi3(r_ij, r_ik, theta_jik)

    phi2(r)  = A eps [B (sigma/r)^p - (sigma/r)^q] exp(sigma / (r - a sigma))
    phi3     = lambda eps (cos theta_jik - costheta0)^2
               exp(gamma sigma / (r_ij - a sigma)) exp(gamma sigma / (r_ik - a sigma))

both terms vanishing (with all derivatives) at the cutoff ``r_c = a sigma``.  Units are ASE's:
eV, Å; stress in eV/Å³, Voigt order ``xx, yy, zz, yz, xz, xy``, ASE sign (``stress = (1/V) dE/dε``,
positive under tension).

Layout
------
* :data:`SW_PARAMETER_NAMES` -- the parameter names, in the order of the flat ``params_array`` the
  low-level function takes: ``epsilon, sigma, a, lambda, gamma, A, B, p, q, costheta0``.
  The key ``"lambda"`` is canonical; ``"lambda_"`` is accepted as an alias on input.
* :data:`SW_SILICON` -- the original silicon parameters (Stillinger & Weber, PRB 31, 5262 (1985)).
* :func:`sw_energy_forces_stress` -- plain-array entry point for fast repeated evaluation (fitting),
  with a small cache of neighbour lists keyed on positions, cell and pbc.
* :class:`StillingerWeber` -- the ASE calculator (``energy``, ``free_energy``, ``energies``,
  ``forces``, ``stress``).

The neighbour list is built in numba by :mod:`.neighbours`: periodic images are generated
explicitly (as many as the cutoff needs along each periodic direction, so cells thinner than twice
the cutoff, e.g. the 2-atom primitive diamond cell, work), then a linked-cell (bin) search finds all
neighbours of the real atoms.  General triclinic cells and any mix of periodic and open boundaries
are handled.  The calculator keeps the list between calls as a Verlet list with a skin
(:class:`.neighbours.NeighbourList`).  ``_neighbour_list`` and ``_complete_cell`` stay importable
from this module.
"""
from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from typing import Any, Mapping

import numpy as np
from ase.calculators.calculator import Calculator, Parameters, all_changes
from ase.data import atomic_numbers, chemical_symbols
from numba import get_num_threads, njit, prange

from ..core import validate
from ._calculator import store_results
from ..core.errors import InputError
# the neighbour-list builder lives in .neighbours (the old names stay importable from here)
from .neighbours import _complete_cell, _make_images, _neighbour_list  # noqa: F401
from .neighbours import NeighbourList, _CalculatorList

__all__ = ["StillingerWeber", "SW_SILICON", "SW_PARAMETER_NAMES", "sw_energy_forces_stress",
           "validate_sw_parameters", "write_lammps_sw"]

#: Parameter names, in the order of the flat ``params_array`` used by the kernels.
SW_PARAMETER_NAMES: tuple[str, ...] = (
    "epsilon", "sigma", "a", "lambda", "gamma", "A", "B", "p", "q", "costheta0")

#: Original Stillinger-Weber silicon parameters (epsilon in eV, sigma in Å, the rest dimensionless).
SW_SILICON: dict[str, float] = {
    "epsilon": 2.1683,
    "sigma": 2.0951,
    "a": 1.80,
    "lambda": 21.0,
    "gamma": 1.20,
    "A": 7.049556277,
    "B": 0.6022245584,
    "p": 4.0,
    "q": 0.0,
    "costheta0": -1.0 / 3.0,
}

_ALIASES = {"lambda_": "lambda", "lam": "lambda"}

# exp(x) for x below this is < 1e-304: the term (and its derivative) is taken as exactly zero,
# which avoids 0 * inf = NaN when r sits a hair below the cutoff.
_EXP_FLOOR = -700.0


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------

def validate_sw_parameters(parameters: Mapping[str, Any], field: str = "parameters") -> dict:
    """Check a Stillinger-Weber parameter dictionary and return it in canonical form.

    Parameters
    ----------
    parameters : mapping
        All of :data:`SW_PARAMETER_NAMES` (``"lambda_"`` accepted for ``"lambda"``).
    field : str
        Name used in error messages.

    Returns
    -------
    dict
        Canonical names -> float.

    Raises
    ------
    InputError
        On a missing or unknown name, or a value that is not finite or out of range
        (``epsilon, sigma, a, gamma`` > 0; ``lambda, A, B`` >= 0; ``costheta0`` in [-1, 1]).
    """
    if not isinstance(parameters, Mapping):
        raise InputError(field, parameters, "a dict of Stillinger-Weber parameters "
                         f"({', '.join(SW_PARAMETER_NAMES)})")
    canon: dict[str, Any] = {}
    for key, value in parameters.items():
        name = _ALIASES.get(key, key)
        if name not in SW_PARAMETER_NAMES:
            raise InputError(f"{field}[{key!r}]", value, "one of the Stillinger-Weber parameter "
                             f"names {', '.join(SW_PARAMETER_NAMES)}", hint="unknown parameter name")
        if name in canon:
            raise InputError(f"{field}[{key!r}]", value, "each parameter given once",
                             hint="'lambda' and 'lambda_' both given")
        canon[name] = value
    missing = [n for n in SW_PARAMETER_NAMES if n not in canon]
    if missing:
        raise InputError(f"{field}", sorted(parameters), "all Stillinger-Weber parameter names",
                         hint="missing: " + ", ".join(missing))
    out: dict[str, float] = {}
    for name in SW_PARAMETER_NAMES:
        f = f"{field}[{name!r}]"
        v = canon[name]
        if name in ("epsilon", "sigma", "a", "gamma"):
            out[name] = validate.positive(f, v)
        elif name in ("lambda", "A", "B"):
            out[name] = validate.nonnegative(f, v)
        elif name == "costheta0":
            out[name] = validate.in_range(f, v, -1.0, 1.0)
        else:
            out[name] = validate.finite(f, v)
    return out


def _params_array(params: Mapping[str, float]) -> np.ndarray:
    return np.array([params[n] for n in SW_PARAMETER_NAMES], dtype=np.float64)


def _check_params_array(params_array: Any) -> np.ndarray:
    arr = np.ascontiguousarray(params_array, dtype=np.float64)
    if arr.shape != (len(SW_PARAMETER_NAMES),):
        raise InputError("params_array", f"array of shape {arr.shape}",
                         f"shape ({len(SW_PARAMETER_NAMES)},) in the order {SW_PARAMETER_NAMES}")
    if not np.all(np.isfinite(arr)) or np.any(arr[[0, 1, 2, 4]] <= 0) or \
            np.any(arr[[3, 5, 6]] < 0) or abs(arr[9]) > 1.0:
        # produce the error that names the field
        validate_sw_parameters(dict(zip(SW_PARAMETER_NAMES, arr.tolist())), field="params_array")
    return arr


# --------------------------------------------------------------------------------------------
# numba kernels: energy, forces, virial
# --------------------------------------------------------------------------------------------

@njit(cache=True, fastmath=False, inline="always")
def _small_int(e):
    """``e`` as an int when it is a whole number in [0, 16], else -1."""
    if e >= 0.0 and e <= 16.0 and math.floor(e) == e:
        return int(e)
    return -1


@njit(cache=True, fastmath=False, inline="always")
def _pow(x, e, ie):
    """``x ** e``, by repeated multiplication when ``ie = _small_int(e) >= 0`` (exact for p=4, q=0)."""
    if ie < 0:
        return x ** e
    r = 1.0
    for _ in range(ie):
        r *= x
    return r


@njit(cache=True, fastmath=False, inline="always")
def _sw_atom(i, s0, s1, nbr_j, nbr_d, prm, F, vir, energies, sj, sd, sr, se, sg):
    """Pair terms (half to ``i``, full gather force on ``i``) and three-body terms centred on ``i``.

    ``vir`` accumulates ``sum (dE/dd)_a d_b`` over the bond vectors ``d`` (Voigt order), so that
    stress = vir / V.
    """
    eps = prm[0]
    sig = prm[1]
    rc = prm[2] * sig
    lam_eps = prm[3] * eps
    gsig = prm[4] * sig
    A_eps = prm[5] * eps
    B = prm[6]
    p = prm[7]
    q = prm[8]
    ip = _small_int(p)
    iq = _small_int(q)
    c0 = prm[9]
    rc2 = rc * rc
    ei = 0.0
    fx = 0.0
    fy = 0.0
    fz = 0.0
    v0 = 0.0
    v1 = 0.0
    v2 = 0.0
    v3 = 0.0
    v4 = 0.0
    v5 = 0.0
    m = 0
    for t in range(s0, s1):
        dx = nbr_d[t, 0]
        dy = nbr_d[t, 1]
        dz = nbr_d[t, 2]
        r2 = dx * dx + dy * dy + dz * dz
        if r2 >= rc2:
            continue
        r = math.sqrt(r2)
        inv = 1.0 / (r - rc)
        x2 = sig * inv
        if x2 > _EXP_FLOOR:
            ex = math.exp(x2)
            s = sig / r
            sp = _pow(s, p, ip)
            sq = _pow(s, q, iq)
            phi = A_eps * (B * sp - sq) * ex
            dphi = A_eps * (q * sq - p * B * sp) / r * ex - phi * x2 * inv
            ei += 0.5 * phi
            coef = dphi / r
            fx += coef * dx
            fy += coef * dy
            fz += coef * dz
            hc = 0.5 * coef
            v0 += hc * dx * dx
            v1 += hc * dy * dy
            v2 += hc * dz * dz
            v3 += hc * dy * dz
            v4 += hc * dx * dz
            v5 += hc * dx * dy
        x3 = gsig * inv
        if x3 > _EXP_FLOOR:
            sj[m] = nbr_j[t]
            sd[m, 0] = dx
            sd[m, 1] = dy
            sd[m, 2] = dz
            sr[m] = r
            se[m] = math.exp(x3)
            sg[m] = -x3 * inv / r   # (d ln e / dr) / r
            m += 1
    for j in range(m - 1):
        djx = sd[j, 0]
        djy = sd[j, 1]
        djz = sd[j, 2]
        rj = sr[j]
        ej = se[j] * lam_eps
        gj_ = sg[j]
        jj = sj[j]
        gjx = 0.0
        gjy = 0.0
        gjz = 0.0
        for k in range(j + 1, m):
            dkx = sd[k, 0]
            dky = sd[k, 1]
            dkz = sd[k, 2]
            rk = sr[k]
            inv_rr = 1.0 / (rj * rk)
            cos = (djx * dkx + djy * dky + djz * dkz) * inv_rr
            dc = cos - c0
            e2 = ej * se[k]
            h = e2 * dc * dc
            ei += h
            t1 = 2.0 * e2 * dc
            cx = t1 * inv_rr
            cj = -t1 * cos / (rj * rj) + h * gj_
            ck = -t1 * cos / (rk * rk) + h * sg[k]
            # dh/d(d_j) and dh/d(d_k)
            ajx = cj * djx + cx * dkx
            ajy = cj * djy + cx * dky
            ajz = cj * djz + cx * dkz
            akx = ck * dkx + cx * djx
            aky = ck * dky + cx * djy
            akz = ck * dkz + cx * djz
            gjx += ajx
            gjy += ajy
            gjz += ajz
            kk = sj[k]
            F[kk, 0] -= akx
            F[kk, 1] -= aky
            F[kk, 2] -= akz
            fx += akx
            fy += aky
            fz += akz
            v0 += akx * dkx
            v1 += aky * dky
            v2 += akz * dkz
            v3 += 0.5 * (aky * dkz + akz * dky)
            v4 += 0.5 * (akx * dkz + akz * dkx)
            v5 += 0.5 * (akx * dky + aky * dkx)
        F[jj, 0] -= gjx
        F[jj, 1] -= gjy
        F[jj, 2] -= gjz
        fx += gjx
        fy += gjy
        fz += gjz
        v0 += gjx * djx
        v1 += gjy * djy
        v2 += gjz * djz
        v3 += 0.5 * (gjy * djz + gjz * djy)
        v4 += 0.5 * (gjx * djz + gjz * djx)
        v5 += 0.5 * (gjx * djy + gjy * djx)
    F[i, 0] += fx
    F[i, 1] += fy
    F[i, 2] += fz
    energies[i] = ei
    vir[0] += v0
    vir[1] += v1
    vir[2] += v2
    vir[3] += v3
    vir[4] += v4
    vir[5] += v5


@njit(cache=True, fastmath=False)
def _max_count(offsets):
    mx = 0
    for i in range(offsets.size - 1):
        c = offsets[i + 1] - offsets[i]
        if c > mx:
            mx = c
    return mx


@njit(cache=True, fastmath=False)
def _sw_serial(order, offsets, nbr_j, nbr_d, prm):
    """Energies per atom, forces and virial (Voigt) from a full neighbour list, one thread."""
    n = offsets.size - 1
    mx = _max_count(offsets)
    F = np.zeros((n, 3))
    energies = np.empty(n)
    vir = np.zeros(6)
    sj = np.empty(mx, dtype=np.int64)
    sd = np.empty((mx, 3))
    sr = np.empty(mx)
    se = np.empty(mx)
    sg = np.empty(mx)
    for m in range(n):
        _sw_atom(order[m], offsets[m], offsets[m + 1], nbr_j, nbr_d, prm, F, vir, energies,
                 sj, sd, sr, se, sg)
    return energies, F, vir


@njit(cache=True, fastmath=False, parallel=True)
def _sw_parallel(order, offsets, nbr_j, nbr_d, prm, nchunk):
    """Threaded variant of :func:`_sw_serial`: one force/virial buffer per chunk, then reduced."""
    n = offsets.size - 1
    mx = _max_count(offsets)
    Ft = np.zeros((nchunk, n, 3))
    Vt = np.zeros((nchunk, 6))
    energies = np.empty(n)
    for c in prange(nchunk):
        lo = (c * n) // nchunk
        hi = ((c + 1) * n) // nchunk
        sj = np.empty(mx, dtype=np.int64)
        sd = np.empty((mx, 3))
        sr = np.empty(mx)
        se = np.empty(mx)
        sg = np.empty(mx)
        Fc = Ft[c]
        Vc = Vt[c]
        for m in range(lo, hi):
            _sw_atom(order[m], offsets[m], offsets[m + 1], nbr_j, nbr_d, prm, Fc, Vc, energies,
                     sj, sd, sr, se, sg)
    F = np.zeros((n, 3))
    for i in prange(n):
        for c in range(nchunk):
            F[i, 0] += Ft[c, i, 0]
            F[i, 1] += Ft[c, i, 1]
            F[i, 2] += Ft[c, i, 2]
    vir = np.zeros(6)
    for c in range(nchunk):
        for k in range(6):
            vir[k] += Vt[c, k]
    return energies, F, vir


# --------------------------------------------------------------------------------------------
# Python-level driver
# --------------------------------------------------------------------------------------------

class _NeighbourCache:
    """LRU cache of Verlet lists (:class:`.neighbours.NeighbourList`) keyed by a hash of
    positions, cell and pbc, for fits that evaluate the same configurations many times.

    Each entry is built with a skin of ``_CACHE_RC_MARGIN - 1`` times the cutoff, so it serves
    any later request up to that larger cutoff (the kernel skips pairs beyond its own) and a
    fit that moves sigma or a a little keeps reusing it; a longer request rebuilds the entry.
    Bounded by total stored bytes.
    """

    def __init__(self, max_bytes: int = 256 * 2**20, max_entries: int = 4096):
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._d: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(positions, cell, pbc) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        h.update(np.ascontiguousarray(positions).tobytes())
        h.update(np.ascontiguousarray(cell).tobytes())
        h.update(np.asarray(pbc, dtype=np.bool_).tobytes())
        return h.digest()

    def lists(self, key, pos, cel, pb, rc, parallel):
        """The neighbour list of this configuration for cutoff ``rc`` (cached)."""
        with self._lock:
            ent = self._d.get(key)
        nl = ent[0] if ent is not None else NeighbourList(
            rc, skin=(_CACHE_RC_MARGIN - 1.0) * rc, parallel=parallel)
        lst = nl.update(pos, cel, pb, cutoff=rc)
        size = nl.nbytes
        with self._lock:
            old = self._d.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size <= self.max_bytes:
                self._d[key] = (nl, size)
                self._bytes += size
            while self._bytes > self.max_bytes or len(self._d) > self.max_entries:
                _, (_, osize) = self._d.popitem(last=False)
                self._bytes -= osize
        return lst

    def clear(self):
        with self._lock:
            self._d.clear()
            self._bytes = 0


_NL_CACHE = _NeighbourCache()
# cached lists are built with a slightly larger cutoff (a skin of 15 %), so that a fit that moves
# sigma or a a little keeps reusing them
_CACHE_RC_MARGIN = 1.15

#: Default Verlet skin of :class:`StillingerWeber`, Å (measured in
#: ``benchmarks/bench_potentials.py``).
DEFAULT_SW_SKIN = 0.5


def _check_species(numbers, species_z: int, n: int, species: str) -> None:
    if numbers is None:
        return
    nums = np.asarray(numbers)
    if nums.shape != (n,):
        raise InputError("numbers", f"array of shape {nums.shape}", f"shape ({n},)")
    bad = nums != species_z
    if np.any(bad):
        z = int(nums[np.argmax(bad)])
        sym = chemical_symbols[z] if 0 <= z < len(chemical_symbols) else str(z)
        raise InputError("atoms.symbols", sym, f"only {species!r} (this Stillinger-Weber "
                         "potential is single-species)")


def sw_energy_forces_stress(numbers, positions, cell, pbc, params_array, *, parallel=False,
                            use_cache=True, species="Si", neighbours=None):
    """Stillinger-Weber energy, per-atom energies, forces and stress from plain arrays.

    Parameters
    ----------
    numbers : array of int, shape (n,), or None
        Atomic numbers, all equal to ``species``; ``None`` skips the check.
    positions : array, shape (n, 3)
        Cartesian positions, Å.
    cell : array, shape (3, 3)
        Cell vectors as rows, Å (rows along open directions may be zero).
    pbc : bool or three bools
        Periodic directions.
    params_array : array, shape (10,)
        Parameters in the order of :data:`SW_PARAMETER_NAMES`:
        ``epsilon (eV), sigma (Å), a, lambda, gamma, A, B, p, q, costheta0``.
    parallel : bool
        Use the threaded (numba ``prange``) kernels.
    use_cache : bool
        Reuse a neighbour list built earlier for the same positions, cell and pbc (and a cutoff at
        least as large); a list is built with 15 % margin on the cutoff (a Verlet skin) so that
        small parameter changes keep reusing it.
    species : str
        Chemical symbol the potential describes.
    neighbours : NeighbourList, optional
        A persistent full Verlet list (:class:`.neighbours.NeighbourList`) to update and use
        instead of the cache, as the calculator does during molecular dynamics.

    Returns
    -------
    energy : float
        Total energy, eV.
    energies : ndarray, shape (n,)
        Per-atom energies, eV (half of each pair term, all three-body terms centred on the atom);
        they sum to ``energy``.
    forces : ndarray, shape (n, 3)
        eV/Å.
    stress : ndarray, shape (6,), or None
        Voigt ``xx, yy, zz, yz, xz, xy`` in eV/Å³, ASE sign (``(1/V) dE/dε``, positive under
        tension); ``None`` when the cell has zero volume (an open cluster without a cell).
    """
    prm = _check_params_array(params_array)
    pos = validate.finite_array("positions", positions, (None, 3))
    pos = np.ascontiguousarray(pos, dtype=np.float64)
    n = len(pos)
    cel = np.ascontiguousarray(validate.finite_array("cell", cell, (3, 3)), dtype=np.float64)
    pb = np.asarray(pbc, dtype=bool)
    if pb.shape == ():
        pb = np.array([bool(pb)] * 3)
    if pb.shape != (3,):
        raise InputError("pbc", pbc, "a bool or three bools")
    if species not in atomic_numbers:
        raise InputError("species", species, "a chemical symbol")
    _check_species(numbers, atomic_numbers[species], n, species)
    rc = float(prm[2] * prm[1])
    if n == 0:
        vol = abs(np.linalg.det(cel))
        return 0.0, np.zeros(0), np.zeros((0, 3)), (np.zeros(6) if vol > 0 else None)
    if neighbours is not None:
        if not isinstance(neighbours, NeighbourList) or neighbours.half:
            raise InputError("neighbours", type(neighbours).__name__,
                             "a (full) NeighbourList or None")
        nl = neighbours.update(pos, cel, pb, cutoff=rc)
    elif use_cache:
        nl = _NL_CACHE.lists(_NeighbourCache.key(pos, cel, pb), pos, cel, pb, rc, bool(parallel))
    else:
        nl = _neighbour_list(pos, cel, pb, rc, bool(parallel))
    if parallel:
        nchunk = max(1, min(get_num_threads(), n))
        energies, forces, vir = _sw_parallel(*nl, prm, nchunk)
    else:
        energies, forces, vir = _sw_serial(*nl, prm)
    energy = float(np.sum(energies))
    vol = abs(np.linalg.det(cel))
    stress = vir / vol if vol > 1e-12 else None
    return energy, energies, forces, stress


def clear_neighbour_cache() -> None:
    """Empty the neighbour-list cache of :func:`sw_energy_forces_stress`."""
    _NL_CACHE.clear()


# --------------------------------------------------------------------------------------------
# ASE calculator
# --------------------------------------------------------------------------------------------

_FORM_NAMES = {"stillingerweber", "stillinger-weber", "stillinger_weber", "sw"}


class StillingerWeber(Calculator):
    """Stillinger-Weber potential as an ASE calculator (numba kernels).

    Parameters
    ----------
    parameters : dict, optional
        All of :data:`SW_PARAMETER_NAMES` (``epsilon`` eV, ``sigma`` Å, ``a, lambda, gamma, A, B,
        p, q, costheta0`` dimensionless; ``"lambda_"`` accepted for ``"lambda"``).  Default
        :data:`SW_SILICON`.
    species : str
        Chemical symbol of the single species described (default ``"Si"``).  Atoms of any other
        element raise :class:`~scaleladder.core.errors.InputError`.
    parallel : bool
        Use the threaded numba kernels (threads: ``NUMBA_NUM_THREADS`` / ``numba.set_num_threads``).
    skin : float
        Verlet skin, Å (>= 0; default :data:`DEFAULT_SW_SKIN`).  The calculator keeps a
        neighbour list of radius ``a sigma + skin`` and rebuilds it only when an atom has moved
        more than ``skin / 2`` or the cell, periodicity or number of atoms changed;
        ``0`` rebuilds it whenever a position changes.  ``neighbour_builds`` counts the builds.
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator` (``label``, ``atoms``, ...).

    Notes
    -----
    Properties: ``energy`` and ``free_energy`` (eV), ``energies`` (eV per atom: half of each
    pair term plus the three-body terms centred on the atom), ``forces`` (eV/Å), ``stress``
    (eV/Å³, Voigt ``xx, yy, zz, yz, xz, xy``, ASE sign: ``(1/V) dE/dε``, positive under tension).
    Stress needs a cell of non-zero volume.

    Examples
    --------
    >>> from ase.build import bulk
    >>> atoms = bulk("Si", "diamond", a=5.431)
    >>> atoms.calc = StillingerWeber()
    >>> round(atoms.get_potential_energy() / len(atoms), 4)
    -4.3366
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]
    nolabel = True

    def __init__(self, parameters: Mapping[str, float] | None = None, species: str = "Si",
                 parallel: bool = False, skin: float = DEFAULT_SW_SKIN, **kwargs):
        super().__init__(**kwargs)
        sw = validate_sw_parameters(SW_SILICON if parameters is None else parameters)
        if not isinstance(species, str) or species not in atomic_numbers:
            raise InputError("species", species, "a chemical symbol such as 'Si'")
        if parameters is None and species != "Si":
            raise InputError("species", species, "'Si' with the built-in parameters (silicon's, "
                             "Stillinger & Weber 1985)", hint="the built-in Stillinger-Weber potential was made for silicon "
                             "only; pass parameters= fitted for " + species)
        if not isinstance(parallel, (bool, np.bool_)):
            raise InputError("parallel", parallel, "True or False")
        skin = validate.nonnegative("skin", skin)
        self.parameters = Parameters(dict(sw, species=species, parallel=bool(parallel),
                                          skin=skin))
        self._prm = _params_array(sw)
        self._lists = _CalculatorList()

    # -- parameters ----------------------------------------------------------------------
    @property
    def sw_parameters(self) -> dict[str, float]:
        """The Stillinger-Weber parameters (canonical names -> float)."""
        return {n: float(self.parameters[n]) for n in SW_PARAMETER_NAMES}

    @property
    def params_array(self) -> np.ndarray:
        """The parameters as a flat array in the order of :data:`SW_PARAMETER_NAMES`."""
        return self._prm.copy()

    @property
    def cutoff(self) -> float:
        """Cutoff radius ``a * sigma``, Å."""
        return float(self._prm[2] * self._prm[1])

    @property
    def neighbour_builds(self) -> int:
        """How many times this calculator has built its neighbour list."""
        return self._lists.builds

    def set(self, **kwargs):
        """Change parameters (validated); results are discarded if anything changed."""
        kwargs = {_ALIASES.get(k, k): v for k, v in kwargs.items()}
        unknown = [k for k in kwargs
                   if k not in SW_PARAMETER_NAMES + ("species", "parallel", "skin")]
        if unknown:
            raise InputError(unknown[0], kwargs[unknown[0]], "a Stillinger-Weber parameter "
                             f"({', '.join(SW_PARAMETER_NAMES)}), 'species', 'parallel' or "
                             "'skin'")
        if not hasattr(self, "_prm"):     # called from Calculator.__init__ with no kwargs
            return super().set(**kwargs)
        new = dict(self.sw_parameters)
        new.update({k: v for k, v in kwargs.items() if k in SW_PARAMETER_NAMES})
        sw = validate_sw_parameters(new)
        if "species" in kwargs and (not isinstance(kwargs["species"], str)
                                    or kwargs["species"] not in atomic_numbers):
            raise InputError("species", kwargs["species"], "a chemical symbol such as 'Si'")
        if "parallel" in kwargs and not isinstance(kwargs["parallel"], (bool, np.bool_)):
            raise InputError("parallel", kwargs["parallel"], "True or False")
        if "skin" in kwargs:
            kwargs["skin"] = validate.nonnegative("skin", kwargs["skin"])
        kwargs.update({k: sw[k] for k in SW_PARAMETER_NAMES if k in kwargs})
        changed = super().set(**kwargs)
        self._prm = _params_array(sw)
        if changed:
            self.reset()
        return changed

    @classmethod
    def from_fitted(cls, fp: Any, member: int | None = None, **kwargs) -> "StillingerWeber":
        """Calculator from a fitted potential (:class:`scaleladder.handoffs.FittedPotential`).

        Parameters
        ----------
        fp : FittedPotential
            Anything with ``form``, ``parameters`` (nominal, all names), ``fitted`` (names varied)
            and ``ensemble`` (array ``(m, len(fitted))``); ``species`` is used when present.
        member : int, optional
            ``None``: the nominal parameters; ``i``: nominal with the fitted parameters replaced
            by ensemble row ``i``.
        **kwargs
            Passed to the constructor (e.g. ``parallel=True``).

        Returns
        -------
        StillingerWeber
            With the attribute ``fitted_potential`` set to ``fp`` (when it has
            ``check_domain``), so properties computed with it report where they leave the
            training domain.
        """
        try:    # the handoff type is the documented input; duck typing keeps this loose
            from ..handoffs import FittedPotential  # noqa: F401
        except ImportError:
            pass
        for attr in ("form", "parameters", "fitted", "ensemble"):
            if not hasattr(fp, attr):
                raise InputError("fp", type(fp).__name__, "a FittedPotential (with form, "
                                 "parameters, fitted, ensemble)", hint=f"missing {attr!r}")
        form = str(fp.form).replace(" ", "").lower()
        if form not in _FORM_NAMES:
            raise InputError("fp.form", fp.form, "'StillingerWeber'")
        params = dict(fp.parameters)
        if member is not None:
            ens = np.asarray(fp.ensemble, dtype=float)
            fitted = tuple(fp.fitted)
            if ens.ndim != 2 or ens.shape[1] != len(fitted):
                raise InputError("fp.ensemble", f"array of shape {ens.shape}",
                                 f"shape (m, {len(fitted)})")
            if isinstance(member, bool) or not isinstance(member, (int, np.integer)) \
                    or not -ens.shape[0] <= member < ens.shape[0]:
                raise InputError("member", member, f"None or an integer in [0, {ens.shape[0]})")
            canon_keys = {_ALIASES.get(k, k): k for k in params}
            for name, value in zip(fitted, ens[int(member)]):
                key = canon_keys.get(_ALIASES.get(name, name), name)
                params[key] = float(value)
        species = getattr(fp, "species", None)
        if species is not None and "species" not in kwargs:
            sp = tuple(species)
            if len(sp) != 1:
                raise InputError("fp.species", sp, "a single species")
            kwargs["species"] = sp[0]
        calc = cls(parameters=params, **kwargs)
        if hasattr(fp, "check_domain"):
            # remembered (never used for numerics) so property functions flag configurations
            # outside the training domain (scaleladder.atomistic.domain)
            calc.fitted_potential = fp
        return calc

    # -- calculation -----------------------------------------------------------------------
    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Compute energy, per-atom energies, forces and (for a cell of non-zero volume) stress."""
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        species = self.parameters["species"]
        p = self.parameters
        nl = self._lists.get(self.cutoff, p["skin"], p["parallel"])
        energy, energies, forces, stress = sw_energy_forces_stress(
            a.numbers, a.positions, np.asarray(a.cell), a.pbc, self._prm,
            parallel=p["parallel"], use_cache=False, species=species, neighbours=nl)
        store_results(self, energy, energies, forces, stress, properties)

    def todict(self) -> dict:
        return dict(self.parameters)


def write_lammps_sw(parameters: Mapping[str, Any] | None, path, element: str = "Si",
                    tol: float = 0.0) -> str:
    """Write Stillinger-Weber parameters as a LAMMPS ``pair_style sw`` file; returns the path.

    One ``element element element`` entry in LAMMPS's field order (epsilon sigma a lambda gamma
    costheta0 A B p q tol), every number written with full precision so that LAMMPS evaluates the
    same function as :class:`StillingerWeber` (tested against LAMMPS to round-off).  The file is
    written atomically (a temporary file renamed into place).
    """
    import os

    from ase.data import atomic_numbers

    if element not in atomic_numbers:
        raise InputError("element", element, "a chemical element symbol such as 'Si'")
    p = validate_sw_parameters(dict(SW_SILICON) if parameters is None else parameters)
    fields = [p[k] for k in ("epsilon", "sigma", "a", "lambda", "gamma", "costheta0", "A", "B",
                             "p", "q")] + [validate.nonnegative("tol", tol)]
    text = ("# Stillinger-Weber written by scaleladder\n"
            "# element1 element2 element3 epsilon sigma a lambda gamma costheta0 A B p q tol\n"
            f"{element} {element} {element} " + " ".join(repr(float(v)) for v in fields) + "\n")
    from ..core.fsio import atomic_write

    path = os.fspath(path)
    atomic_write(path, text)
    return path
