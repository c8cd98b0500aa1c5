"""Tersoff potential, LAMMPS ``pair_style tersoff`` form: numba kernels behind ASE's Calculator.

Single species, in the parameterisation and functional form of LAMMPS ``pair_style tersoff``::

    E      = 1/2 sum_i sum_{j != i} V_ij
    V_ij   = fc(r_ij) [fR(r_ij) + b_ij fA(r_ij)]
    fR(r)  = A exp(-lambda1 r),        fA(r) = -B exp(-lambda2 r)
    fc(r)  = 1                                   r < R - D
             1/2 - 1/2 sin(pi/2 (r - R) / D)     R - D < r < R + D
             0                                   r > R + D
    b_ij   = (1 + beta^n zeta_ij^n)^(-1/(2n))
    zeta_ij = sum_{k != i, j} fc(r_ik) g(theta_ijk) exp[lambda3^m (r_ij - r_ik)^m]
    g(theta) = gamma (1 + c^2/d^2 - c^2 / [d^2 + (cos theta - costheta0)^2])

``costheta0`` is LAMMPS's name for Tersoff's ``h`` (``"h"`` is accepted as an alias); LAMMPS
writes ``(h - cos theta)^2``, the same thing.  As in LAMMPS, ``m`` must be 1 or 3 and the argument
of the exponential in ``zeta`` is clipped to ``[-69.0776, 69.0776]`` (value 0 below, 1e30 above);
in the clipped range this module takes the derivative of the clipped (constant) value, zero,
where LAMMPS differentiates the unclipped form -- the two agree everywhere else.  The bond order
is evaluated in closed form (``exp(-log1p((beta zeta)^n) / (2n))``); LAMMPS switches to
asymptotic expansions that agree with it to ~1e-16 relative.

Units are ASE's: eV, Å; stress in eV/Å³, Voigt order ``xx, yy, zz, yz, xz, xy``, ASE sign
(``stress = (1/V) dE/dε``, positive under tension).

Per-atom energies are Tersoff's site energies ``E_i = 1/2 sum_j V_ij`` (they sum to ``E``).
LAMMPS's ``compute pe/atom`` instead splits every bond term half and half between ``i`` and
``j``; the totals agree, the per-atom values of the attractive part do not (``b_ij != b_ji``).

Layout
------
* :data:`TERSOFF_PARAMETER_NAMES` -- parameter names, in LAMMPS file order (after the three
  elements): ``m, gamma, lambda3, c, d, costheta0, n, beta, lambda2, B, R, D, lambda1, A``; the flat
  ``params_array`` of the low-level function uses the same order.
* :data:`TERSOFF_SI` -- Tersoff's Si(B) (PRB 37, 6991 (1988)), the entry of LAMMPS
  ``potentials/Si.tersoff``; :data:`TERSOFF_SI_C` -- Tersoff's Si(C) (PRB 38, 9902 (1988)), the
  ``Si(C)`` entry of LAMMPS ``potentials/SiCGe.tersoff``.
* :func:`tersoff_energy_forces_stress` -- plain-array entry point.
* :func:`read_lammps_tersoff` -- parse a LAMMPS tersoff file.
* :class:`Tersoff` -- the ASE calculator (``energy``, ``free_energy``, ``energies``, ``forces``,
  ``stress``); :meth:`Tersoff.from_lammps_file`.

The neighbour list is the linked-cell builder of :mod:`.neighbours` (explicit periodic images, so
small and triclinic cells and mixed periodic/open boundaries work); the calculator keeps it as a
Verlet list with a skin between calls.
"""
from __future__ import annotations

import math
import os
from typing import Any, Mapping

import numpy as np
from ase.calculators.calculator import Calculator, Parameters, all_changes
from ase.data import atomic_numbers, chemical_symbols
from numba import get_num_threads, njit, prange

from ..core import validate
from ._calculator import store_results
from ..core.errors import InputError
from .neighbours import NeighbourList, _CalculatorList, _neighbour_list

#: Default Verlet skin of :class:`Tersoff`, Å (measured: ``benchmarks/bench_potentials.py``).
DEFAULT_TERSOFF_SKIN = 0.5

__all__ = ["Tersoff", "TERSOFF_SI", "TERSOFF_SI_C", "TERSOFF_PARAMETER_NAMES",
           "tersoff_energy_forces_stress", "validate_tersoff_parameters", "read_lammps_tersoff"]

#: Parameter names in LAMMPS ``pair_style tersoff`` file order (and ``params_array`` order).
TERSOFF_PARAMETER_NAMES: tuple[str, ...] = (
    "m", "gamma", "lambda3", "c", "d", "costheta0", "n", "beta", "lambda2", "B", "R", "D",
    "lambda1", "A")

#: Tersoff's Si(B): J. Tersoff, PRB 37, 6991 (1988), as in LAMMPS ``potentials/Si.tersoff``.
#: ``A, B`` in eV, ``lambda1, lambda2, lambda3`` in 1/Å, ``R, D`` in Å, the rest dimensionless.
TERSOFF_SI: dict[str, float] = {
    "m": 3.0, "gamma": 1.0, "lambda3": 1.3258, "c": 4.8381, "d": 2.0417, "costheta0": 0.0,
    "n": 22.956, "beta": 0.33675, "lambda2": 1.3258, "B": 95.373, "R": 3.0, "D": 0.2,
    "lambda1": 3.2394, "A": 3264.7,
}

#: Tersoff's Si(C): J. Tersoff, PRB 38, 9902 (1988), the ``Si(C)`` entry of LAMMPS
#: ``potentials/SiCGe.tersoff`` (units as :data:`TERSOFF_SI`).
TERSOFF_SI_C: dict[str, float] = {
    "m": 3.0, "gamma": 1.0, "lambda3": 1.7322, "c": 1.0039e5, "d": 16.218, "costheta0": -0.59826,
    "n": 0.78734, "beta": 1.0999e-6, "lambda2": 1.7322, "B": 471.18, "R": 2.85, "D": 0.15,
    "lambda1": 2.4799, "A": 1830.8,
}

_ALIASES = {"h": "costheta0", "lam1": "lambda1", "lam2": "lambda2", "lam3": "lambda3",
            "lambda_1": "lambda1", "lambda_2": "lambda2", "lambda_3": "lambda3"}

# LAMMPS's overflow guard on the argument of exp[(lambda3 (r_ij - r_ik))^m]
_EXP_CLIP = 69.0776
_HALF_PI = 0.5 * math.pi


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------

def validate_tersoff_parameters(parameters: Mapping[str, Any], field: str = "parameters") -> dict:
    """Check a Tersoff parameter dictionary and return it in canonical form.

    Parameters
    ----------
    parameters : mapping
        All of :data:`TERSOFF_PARAMETER_NAMES` (aliases: ``"h"`` for ``"costheta0"``,
        ``"lam1"`` / ``"lambda_1"`` for ``"lambda1"``, likewise 2 and 3).
    field : str
        Name used in error messages.

    Returns
    -------
    dict
        Canonical names -> float, in :data:`TERSOFF_PARAMETER_NAMES` order.

    Raises
    ------
    InputError
        On a missing, duplicated or unknown name, or a value out of range: ``m`` must be 1 or 3
        (as in LAMMPS); ``d, n, R, D`` > 0 and ``D <= R``; ``gamma, c, beta, lambda1, lambda2, A,
        B`` >= 0; ``lambda3, costheta0`` finite.
    """
    if not isinstance(parameters, Mapping):
        raise InputError(field, parameters, "a dict of Tersoff parameters "
                         f"({', '.join(TERSOFF_PARAMETER_NAMES)})")
    canon: dict[str, Any] = {}
    for key, value in parameters.items():
        name = _ALIASES.get(key, key)
        if name not in TERSOFF_PARAMETER_NAMES:
            raise InputError(f"{field}[{key!r}]", value, "one of the Tersoff parameter names "
                             f"{', '.join(TERSOFF_PARAMETER_NAMES)}", hint="unknown parameter name")
        if name in canon:
            raise InputError(f"{field}[{key!r}]", value, "each parameter given once",
                             hint=f"{name!r} given twice (through an alias)")
        canon[name] = value
    missing = [n for n in TERSOFF_PARAMETER_NAMES if n not in canon]
    if missing:
        raise InputError(field, sorted(parameters), "all Tersoff parameter names",
                         hint="missing: " + ", ".join(missing))
    out: dict[str, float] = {}
    for name in TERSOFF_PARAMETER_NAMES:
        f = f"{field}[{name!r}]"
        v = canon[name]
        if name == "m":
            mv = validate.finite(f, v)
            if mv not in (1.0, 3.0):
                raise InputError(f, v, "1 or 3 (the exponent m of exp[(lambda3 (r_ij - r_ik))^m]; "
                                 "LAMMPS pair_style tersoff accepts only these)")
            out[name] = mv
        elif name in ("d", "n", "R", "D"):
            out[name] = validate.positive(f, v)
        elif name in ("gamma", "c", "beta", "lambda1", "lambda2", "A", "B"):
            out[name] = validate.nonnegative(f, v)
        else:
            out[name] = validate.finite(f, v)
    if out["D"] > out["R"]:
        raise InputError(f"{field}['D']", canon["D"], f"D <= R = {out['R']} (the cutoff "
                         "function switches off between R - D and R + D)")
    return out


def _params_array(params: Mapping[str, float]) -> np.ndarray:
    return np.array([params[n] for n in TERSOFF_PARAMETER_NAMES], dtype=np.float64)


def _check_params_array(params_array: Any) -> np.ndarray:
    arr = np.ascontiguousarray(params_array, dtype=np.float64)
    if arr.shape != (len(TERSOFF_PARAMETER_NAMES),):
        raise InputError("params_array", f"array of shape {arr.shape}",
                         f"shape ({len(TERSOFF_PARAMETER_NAMES)},) in the order "
                         f"{TERSOFF_PARAMETER_NAMES}")
    validate_tersoff_parameters(dict(zip(TERSOFF_PARAMETER_NAMES, arr.tolist())),
                                field="params_array")
    return arr


# --------------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------------

@njit(cache=True, fastmath=False, inline="always")
def _fc(r, R, D):
    """Cutoff function and its derivative (LAMMPS ``ters_fc``, ``ters_fc_d``)."""
    if r < R - D:
        return 1.0, 0.0
    if r > R + D:
        return 0.0, 0.0
    x = _HALF_PI * (r - R) / D
    return 0.5 * (1.0 - math.sin(x)), -0.5 * _HALF_PI / D * math.cos(x)


@njit(cache=True, fastmath=False, inline="always")
def _bij(zeta, beta, n):
    """Bond order ``(1 + (beta zeta)^n)^(-1/2n)`` and its derivative with respect to ``zeta``."""
    t = beta * zeta
    if t <= 0.0:
        return 1.0, 0.0
    lt = n * math.log(t)
    if lt > 700.0:                 # (beta zeta)^n overflows: b = t^(-1/2) to machine precision
        b = 1.0 / math.sqrt(t)
        return b, -0.5 * b / zeta
    tn = math.exp(lt)
    b = math.exp(-math.log1p(tn) / (2.0 * n))
    return b, -0.5 * b * tn / ((1.0 + tn) * zeta)


@njit(cache=True, fastmath=False, inline="always")
def _tersoff_atom(i, s0, s1, nbr_j, nbr_d, prm, F, vir, energies, sj, sd, sr, sfc, sdfc, gk):
    """Site energy of atom ``i`` and the forces and virial of every term in it.

    ``E_i = 1/2 sum_j fc(r_ij) [fR(r_ij) + b_ij fA(r_ij)]``; each term depends on the bond
    vectors ``d = r_j - r_i`` of ``i``, and the gradient ``a = dE_i/dd`` of each is applied as
    ``F_j -= a``, ``F_i += a``, ``vir += a (x) d`` (Voigt, symmetrised), so ``stress = vir / V``.
    """
    gam = prm[1]
    lam3 = prm[2]
    c = prm[3]
    d = prm[4]
    h = prm[5]
    n = prm[6]
    beta = prm[7]
    lam2 = prm[8]
    B = prm[9]
    R = prm[10]
    D = prm[11]
    lam1 = prm[12]
    A = prm[13]
    cube = prm[0] == 3.0
    cut = R + D
    cut2 = cut * cut
    c2 = c * c
    d2 = d * d
    gc = gam * (1.0 + c2 / d2)
    gcc = gam * c2
    # bonds within the cutoff
    cnt = 0
    for t in range(s0, s1):
        dx = nbr_d[t, 0]
        dy = nbr_d[t, 1]
        dz = nbr_d[t, 2]
        r2 = dx * dx + dy * dy + dz * dz
        if r2 >= cut2:
            continue
        r = math.sqrt(r2)
        fcv, dfcv = _fc(r, R, D)
        sj[cnt] = nbr_j[t]
        sd[cnt, 0] = dx
        sd[cnt, 1] = dy
        sd[cnt, 2] = dz
        sr[cnt] = r
        sfc[cnt] = fcv
        sdfc[cnt] = dfcv
        cnt += 1
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
    for j in range(cnt):
        rj = sr[j]
        fcj = sfc[j]
        dfcj = sdfc[j]
        djx = sd[j, 0]
        djy = sd[j, 1]
        djz = sd[j, 2]
        eR = A * math.exp(-lam1 * rj)
        VR = fcj * eR
        dVR = dfcj * eR - lam1 * VR
        eA = -B * math.exp(-lam2 * rj)
        VA = fcj * eA
        dVA = dfcj * eA - lam2 * VA
        # zeta_ij and its gradients: gj = d zeta / d d_j, gk[k] = d zeta / d d_k
        zeta = 0.0
        gjx = 0.0
        gjy = 0.0
        gjz = 0.0
        for k in range(cnt):
            if k == j:
                gk[k, 0] = 0.0
                gk[k, 1] = 0.0
                gk[k, 2] = 0.0
                continue
            rk = sr[k]
            fck = sfc[k]
            dkx = sd[k, 0]
            dky = sd[k, 1]
            dkz = sd[k, 2]
            inv_rr = 1.0 / (rj * rk)
            cos = (djx * dkx + djy * dky + djz * dkz) * inv_rr
            hc = h - cos
            den = d2 + hc * hc
            g = gc - gcc / den
            dg = -2.0 * gcc * hc / (den * den)          # dg / dcos
            delta = rj - rk
            if cube:
                tt = lam3 * delta
                arg = tt * tt * tt
                darg = 3.0 * lam3 * tt * tt
            else:
                arg = lam3 * delta
                darg = lam3
            if arg > _EXP_CLIP:
                ex = 1.0e30
                dex = 0.0
            elif arg < -_EXP_CLIP:
                ex = 0.0
                dex = 0.0
            else:
                ex = math.exp(arg)
                dex = darg * ex                          # d ex / d(r_ij - r_ik)
            zeta += fck * g * ex
            fge = fck * dg * ex                          # times d cos / d d
            fgd = fck * g * dex
            cx = fge * inv_rr
            cj = -fge * cos / (rj * rj) + fgd / rj
            ck = -fge * cos / (rk * rk) + (sdfc[k] * g * ex - fgd) / rk
            gjx += cj * djx + cx * dkx
            gjy += cj * djy + cx * dky
            gjz += cj * djz + cx * dkz
            gk[k, 0] = ck * dkx + cx * djx
            gk[k, 1] = ck * dky + cx * djy
            gk[k, 2] = ck * dkz + cx * djz
        b, db = _bij(zeta, beta, n)
        ei += 0.5 * (VR + b * VA)
        coef = 0.5 * (dVR + b * dVA) / rj
        P = 0.5 * VA * db
        ax = coef * djx + P * gjx
        ay = coef * djy + P * gjy
        az = coef * djz + P * gjz
        jj = sj[j]
        F[jj, 0] -= ax
        F[jj, 1] -= ay
        F[jj, 2] -= az
        fx += ax
        fy += ay
        fz += az
        v0 += ax * djx
        v1 += ay * djy
        v2 += az * djz
        v3 += 0.5 * (ay * djz + az * djy)
        v4 += 0.5 * (ax * djz + az * djx)
        v5 += 0.5 * (ax * djy + ay * djx)
        if P != 0.0:
            for k in range(cnt):
                if k == j:
                    continue
                ax = P * gk[k, 0]
                ay = P * gk[k, 1]
                az = P * gk[k, 2]
                dkx = sd[k, 0]
                dky = sd[k, 1]
                dkz = sd[k, 2]
                kk = sj[k]
                F[kk, 0] -= ax
                F[kk, 1] -= ay
                F[kk, 2] -= az
                fx += ax
                fy += ay
                fz += az
                v0 += ax * dkx
                v1 += ay * dky
                v2 += az * dkz
                v3 += 0.5 * (ay * dkz + az * dky)
                v4 += 0.5 * (ax * dkz + az * dkx)
                v5 += 0.5 * (ax * dky + ay * dkx)
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
    mx = 1
    for i in range(offsets.size - 1):
        c = offsets[i + 1] - offsets[i]
        if c > mx:
            mx = c
    return mx


@njit(cache=True, fastmath=False)
def _tersoff_serial(order, offsets, nbr_j, nbr_d, prm):
    """Per-atom energies, forces and virial (Voigt) from a full neighbour list, one thread."""
    n = offsets.size - 1
    mx = _max_count(offsets)
    F = np.zeros((n, 3))
    energies = np.zeros(n)
    vir = np.zeros(6)
    sj = np.empty(mx, dtype=np.int64)
    sd = np.empty((mx, 3))
    sr = np.empty(mx)
    sfc = np.empty(mx)
    sdfc = np.empty(mx)
    gk = np.empty((mx, 3))
    for m in range(n):
        _tersoff_atom(order[m], offsets[m], offsets[m + 1], nbr_j, nbr_d, prm, F, vir, energies,
                      sj, sd, sr, sfc, sdfc, gk)
    return energies, F, vir


@njit(cache=True, fastmath=False, parallel=True)
def _tersoff_parallel(order, offsets, nbr_j, nbr_d, prm, nchunk):
    """Threaded variant of :func:`_tersoff_serial`: a force/virial buffer per chunk, reduced."""
    n = offsets.size - 1
    mx = _max_count(offsets)
    Ft = np.zeros((nchunk, n, 3))
    Vt = np.zeros((nchunk, 6))
    energies = np.zeros(n)
    for ch in prange(nchunk):
        lo = (ch * n) // nchunk
        hi = ((ch + 1) * n) // nchunk
        sj = np.empty(mx, dtype=np.int64)
        sd = np.empty((mx, 3))
        sr = np.empty(mx)
        sfc = np.empty(mx)
        sdfc = np.empty(mx)
        gk = np.empty((mx, 3))
        Fc = Ft[ch]
        Vc = Vt[ch]
        for m in range(lo, hi):
            _tersoff_atom(order[m], offsets[m], offsets[m + 1], nbr_j, nbr_d, prm, Fc, Vc,
                          energies, sj, sd, sr, sfc, sdfc, gk)
    F = np.zeros((n, 3))
    for i in prange(n):
        for ch in range(nchunk):
            F[i, 0] += Ft[ch, i, 0]
            F[i, 1] += Ft[ch, i, 1]
            F[i, 2] += Ft[ch, i, 2]
    vir = np.zeros(6)
    for ch in range(nchunk):
        for k in range(6):
            vir[k] += Vt[ch, k]
    return energies, F, vir


# --------------------------------------------------------------------------------------------
# Python-level driver
# --------------------------------------------------------------------------------------------

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
        raise InputError("atoms.symbols", sym, f"only {species!r} (this Tersoff potential is "
                         "single-species)")


def tersoff_energy_forces_stress(numbers, positions, cell, pbc, params_array, *, parallel=False,
                                 species="Si", neighbours=None):
    """Tersoff energy, per-atom energies, forces and stress from plain arrays.

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
    params_array : array, shape (14,)
        Parameters in the order of :data:`TERSOFF_PARAMETER_NAMES`.
    parallel : bool
        Use the threaded (numba ``prange``) kernels.
    species : str
        Chemical symbol the potential describes.
    neighbours : NeighbourList, optional
        A persistent full Verlet list (:class:`.neighbours.NeighbourList`) to update and use,
        as the calculator does; ``None`` builds a fresh list.

    Returns
    -------
    energy : float
        Total energy, eV.
    energies : ndarray, shape (n,)
        Site energies ``1/2 sum_j V_ij``, eV; they sum to ``energy``.
    forces : ndarray, shape (n, 3)
        eV/Å.
    stress : ndarray, shape (6,), or None
        Voigt ``xx, yy, zz, yz, xz, xy`` in eV/Å³, ASE sign (``(1/V) dE/dε``); ``None`` when no
        direction is periodic (an open cluster: no bulk stress) or the cell has zero volume.
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
    if not isinstance(species, str) or species not in atomic_numbers:
        raise InputError("species", species, "a chemical symbol such as 'Si'")
    _check_species(numbers, atomic_numbers[species], n, species)
    vol = abs(np.linalg.det(cel))
    has_stress = bool(pb.any()) and vol > 1e-12
    if n == 0:
        return 0.0, np.zeros(0), np.zeros((0, 3)), (np.zeros(6) if has_stress else None)
    rc = float(prm[10] + prm[11])
    if neighbours is None:
        nl = _neighbour_list(pos, cel, pb, rc, bool(parallel))
    elif not isinstance(neighbours, NeighbourList) or neighbours.half:
        raise InputError("neighbours", type(neighbours).__name__, "a (full) NeighbourList or None")
    else:
        nl = neighbours.update(pos, cel, pb, cutoff=rc)
    if parallel:
        nchunk = max(1, min(get_num_threads(), n))
        energies, forces, vir = _tersoff_parallel(*nl, prm, nchunk)
    else:
        energies, forces, vir = _tersoff_serial(*nl, prm)
    energy = float(np.sum(energies))
    stress = vir / vol if has_stress else None
    return energy, energies, forces, stress


# --------------------------------------------------------------------------------------------
# LAMMPS tersoff files
# --------------------------------------------------------------------------------------------

def read_lammps_tersoff(path: str | os.PathLike) -> dict[tuple[str, str, str], dict[str, float]]:
    """Read a LAMMPS ``pair_style tersoff`` file.

    Parameters
    ----------
    path : str or path-like
        The file.  ``#`` starts a comment; an entry is 3 element labels and 14 numbers in
        :data:`TERSOFF_PARAMETER_NAMES` order, and may span several lines (as LAMMPS reads it).

    Returns
    -------
    dict
        ``(element1, element2, element3) -> {name: value}`` (values not range-checked here).

    Raises
    ------
    InputError
        If the file cannot be read, an entry is incomplete, a number does not parse, or an
        entry is repeated; the message names the file, the line and what was expected.
    """
    fname = os.fspath(path)
    try:
        with open(fname, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError("path", fname, "a readable LAMMPS tersoff file",
                         hint=f"{type(exc).__name__}: {exc}") from None
    words: list[tuple[str, int]] = []
    for lineno, line in enumerate(lines, start=1):
        words += [(w, lineno) for w in line.split("#", 1)[0].split()]
    nfield = 3 + len(TERSOFF_PARAMETER_NAMES)
    entries: dict[tuple[str, str, str], dict[str, float]] = {}
    for start in range(0, len(words), nfield):
        chunk = words[start:start + nfield]
        first_line = chunk[0][1]
        if len(chunk) < nfield:
            raise InputError(f"{fname}, line {first_line}", " ".join(w for w, _ in chunk),
                             f"an entry of {nfield} fields: element1 element2 element3 "
                             + " ".join(TERSOFF_PARAMETER_NAMES),
                             hint=f"the file ends after {len(chunk)} fields of this entry")
        elems = tuple(w for w, _ in chunk[:3])
        for w, ln in chunk[:3]:
            try:
                float(w)
            except ValueError:
                continue
            raise InputError(f"{fname}, line {ln}, element", w, "an element label (e.g. 'Si') "
                             "as fields 1-3 of an entry", hint="a number where an element was "
                             "expected: an earlier entry has too many or too few fields")
        values: dict[str, float] = {}
        for name, (w, ln) in zip(TERSOFF_PARAMETER_NAMES, chunk[3:]):
            try:
                values[name] = float(w)
            except ValueError:
                raise InputError(f"{fname}, line {ln}, {name}", w, f"a number (parameter "
                                 f"{name!r} of the entry {' '.join(elems)} begun on line "
                                 f"{first_line})") from None
            if not math.isfinite(values[name]):
                raise InputError(f"{fname}, line {ln}, {name}", w, "a finite number")
        if elems in entries:
            raise InputError(f"{fname}, line {first_line}", " ".join(elems),
                             "each element triple once", hint="duplicate entry")
        entries[elems] = values
    if not entries:
        raise InputError("path", fname, "a LAMMPS tersoff file with at least one entry",
                         hint="no entries found (only comments or blank lines)")
    return entries


# --------------------------------------------------------------------------------------------
# ASE calculator
# --------------------------------------------------------------------------------------------

class Tersoff(Calculator):
    """Single-species Tersoff potential (LAMMPS ``pair_style tersoff`` form) as an ASE calculator.

    Parameters
    ----------
    parameters : dict, optional
        All of :data:`TERSOFF_PARAMETER_NAMES` (``A, B`` eV; ``lambda1, lambda2, lambda3`` 1/Å;
        ``R, D`` Å; ``m, gamma, c, d, costheta0, n, beta`` dimensionless).  Default
        :data:`TERSOFF_SI` (Tersoff's Si(B)).
    species : str
        Chemical symbol of the single species described (default ``"Si"``).  Atoms of any other
        element raise :class:`~scaleladder.core.errors.InputError`.
    parallel : bool
        Use the threaded numba kernels.
    skin : float
        Verlet skin, Å (>= 0; default :data:`DEFAULT_TERSOFF_SKIN`).  The calculator keeps a
        neighbour list of radius ``R + D + skin`` and rebuilds it only when an atom has moved
        more than ``skin / 2`` or the cell, periodicity or number of atoms changed; ``0``
        rebuilds it whenever a position changes.  ``neighbour_builds`` counts the builds.
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator`.

    Notes
    -----
    Properties: ``energy``, ``free_energy`` (eV), ``energies`` (site energies ``1/2 sum_j V_ij``,
    eV), ``forces`` (eV/Å), ``stress`` (eV/Å³, Voigt ``xx, yy, zz, yz, xz, xy``, ASE sign).
    Stress needs at least one periodic direction and a cell of non-zero volume; for an open
    cluster it raises :class:`~scaleladder.core.errors.PropertyNotImplementedError`.

    Examples
    --------
    >>> from ase.build import bulk
    >>> atoms = bulk("Si", "diamond", a=5.432)
    >>> atoms.calc = Tersoff()
    >>> round(atoms.get_potential_energy() / len(atoms), 3)
    -4.63
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]
    nolabel = True

    def __init__(self, parameters: Mapping[str, float] | None = None, species: str = "Si",
                 parallel: bool = False, skin: float = DEFAULT_TERSOFF_SKIN, **kwargs):
        super().__init__(**kwargs)
        tp = validate_tersoff_parameters(TERSOFF_SI if parameters is None else parameters)
        if not isinstance(species, str) or species not in atomic_numbers:
            raise InputError("species", species, "a chemical symbol such as 'Si'")
        if parameters is None and species != "Si":
            raise InputError("species", species, "'Si' with the built-in parameters (silicon's, "
                             "Tersoff 1988, Si(B))", hint="the built-in Tersoff potential was made "
                             "for silicon only; pass parameters= fitted for " + species)
        if not isinstance(parallel, (bool, np.bool_)):
            raise InputError("parallel", parallel, "True or False")
        skin = validate.nonnegative("skin", skin)
        self.parameters = Parameters(dict(tp, species=species, parallel=bool(parallel),
                                          skin=skin))
        self._prm = _params_array(tp)
        self._lists = _CalculatorList()

    @classmethod
    def from_lammps_file(cls, path: str | os.PathLike, element: str | None = None,
                         species: str | None = None, **kwargs) -> "Tersoff":
        """Calculator from the single-element entry of a LAMMPS ``pair_style tersoff`` file.

        Parameters
        ----------
        path : str or path-like
            The file (see :func:`read_lammps_tersoff`).
        element : str, optional
            Label of the entry ``element element element`` to use (e.g. ``"Si"`` or ``"Si(B)"``
            in LAMMPS's ``SiCGe.tersoff``).  Default: the file's only such entry.
        species : str, optional
            Chemical symbol of the atoms; default ``element`` without a trailing
            parenthesised tag (``"Si(B)"`` -> ``"Si"``).
        **kwargs
            Passed to the constructor (e.g. ``parallel=True``).

        Raises
        ------
        InputError
            Malformed file (naming file, line and what was expected), no or several
            single-element entries, an unknown element, or invalid parameter values (naming the
            field).
        """
        fname = os.fspath(path)
        entries = read_lammps_tersoff(fname)
        single = [e[0] for e in entries if e[0] == e[1] == e[2]]
        if element is None:
            if len(single) != 1:
                raise InputError("element", None, "the label of one of the single-element "
                                 f"entries of {fname}: {', '.join(single) or '(none)'}",
                                 hint="the file has " + ("no" if not single else "several")
                                 + " single-element entries")
            element = single[0]
        if element not in single:
            raise InputError("element", element, f"one of the single-element entries of {fname}: "
                             f"{', '.join(single) or '(none)'}")
        if species is None:
            species = element.split("(", 1)[0]
        if species not in atomic_numbers:
            raise InputError("species", species, "a chemical symbol (give species= when the "
                             "file's element label is not one)")
        params = entries[(element, element, element)]
        return cls(parameters=validate_tersoff_parameters(
            params, field=f"{fname} entry {element} {element} {element}"),
            species=species, **kwargs)

    # -- parameters ----------------------------------------------------------------------
    @property
    def tersoff_parameters(self) -> dict[str, float]:
        """The Tersoff parameters (canonical names -> float)."""
        return {n: float(self.parameters[n]) for n in TERSOFF_PARAMETER_NAMES}

    @property
    def params_array(self) -> np.ndarray:
        """The parameters as a flat array in the order of :data:`TERSOFF_PARAMETER_NAMES`."""
        return self._prm.copy()

    @property
    def cutoff(self) -> float:
        """Cutoff radius ``R + D``, Å."""
        return float(self._prm[10] + self._prm[11])

    @property
    def neighbour_builds(self) -> int:
        """How many times this calculator has built its neighbour list."""
        return self._lists.builds

    def set(self, **kwargs):
        """Change parameters (validated); results are discarded if anything changed."""
        kwargs = {_ALIASES.get(k, k): v for k, v in kwargs.items()}
        allowed = TERSOFF_PARAMETER_NAMES + ("species", "parallel", "skin")
        unknown = [k for k in kwargs if k not in allowed]
        if unknown:
            raise InputError(unknown[0], kwargs[unknown[0]], "a Tersoff parameter "
                             f"({', '.join(TERSOFF_PARAMETER_NAMES)}), 'species', 'parallel' "
                             "or 'skin'")
        if not hasattr(self, "_prm"):     # called from Calculator.__init__
            return super().set(**kwargs)
        new = dict(self.tersoff_parameters)
        new.update({k: v for k, v in kwargs.items() if k in TERSOFF_PARAMETER_NAMES})
        tp = validate_tersoff_parameters(new)
        if "species" in kwargs and (not isinstance(kwargs["species"], str)
                                    or kwargs["species"] not in atomic_numbers):
            raise InputError("species", kwargs["species"], "a chemical symbol such as 'Si'")
        if "parallel" in kwargs and not isinstance(kwargs["parallel"], (bool, np.bool_)):
            raise InputError("parallel", kwargs["parallel"], "True or False")
        if "skin" in kwargs:
            kwargs["skin"] = validate.nonnegative("skin", kwargs["skin"])
        kwargs.update({k: tp[k] for k in TERSOFF_PARAMETER_NAMES if k in kwargs})
        changed = super().set(**kwargs)
        self._prm = _params_array(tp)
        if changed:
            self.reset()
        return changed

    # -- calculation -----------------------------------------------------------------------
    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Compute energy, site energies, forces and (periodic cells) stress."""
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        p = self.parameters
        nl = self._lists.get(self.cutoff, p["skin"], p["parallel"])
        energy, energies, forces, stress = tersoff_energy_forces_stress(
            a.numbers, a.positions, np.asarray(a.cell), a.pbc, self._prm,
            parallel=p["parallel"], species=p["species"], neighbours=nl)
        store_results(self, energy, energies, forces, stress, properties)

    def todict(self) -> dict:
        return dict(self.parameters)
