"""Exchange constants by energy mapping of collinear spin configurations (PySCF UKS/KUKS).

The classical Heisenberg model of the magnetic sites of a cell, restricted to collinear states,

    E(σ) = E0 - Σ_s J_s Σ_{bonds b in shell s} σ_i(b) σ_j(b),     σ = ±1,

(unit spins, each bond once, J > 0 ferromagnetic) is linear in the unknowns ``(E0, J_1 ... J_K)``.
:func:`exchange_by_energy_mapping` computes the Kohn-Sham energy of several up/down patterns of
the magnetic sites with :class:`~scaleladder.electronic.PySCFCalculator` (broken-symmetry guess
from the initial magnetic moments), checks that each converged to the pattern it was started in
(the sign and size of the Mulliken moment of every magnetic site), fits the model by least
squares and returns an :class:`~scaleladder.handoffs.magnetism.ExchangeParameters` in the explicit
convention ``H = -Σ_<ij> J e_i·e_j`` (sign "minus", "per_bond", "unit").  The fit residual becomes
the uncertainty of J (:class:`~scaleladder.uq.Estimate` source ``"mapping_fit"``); the raw
energies, moments and bond sums are kept in the provenance.

For K shells there are K + 1 unknowns: at least K + 1 configurations with linearly independent
bond sums are needed, and with more the fit is a least-squares one whose residual is the
uncertainty.  ``configurations="auto"`` enumerates the patterns of the sites (the first site up:
a global spin flip does not change the energy), keeps one pattern per distinct vector of bond sums
(patterns with equal bond sums have equal model energies) and picks the ferromagnetic one first,
then the ones that raise the rank of the fit, then extra ones for the residual.

Energy (eV) and distances (Å) throughout; moments in μB (Mulliken spin populations).

Molecular dimers
----------------
:func:`dimer_exchange` compares the high-spin (HS) and broken-symmetry (BS) states of two
magnetic centres of spin S each and gives J of ``H = -J S_1·S_2`` (quantum spins of length S,
each bond once) by the three standard formulas, with Δ = E_BS - E_HS:

* Noodleman (weak overlap, Ising limit; Noodleman, J. Chem. Phys. 74, 5737 (1981)):
  J = Δ / (2 S²)  (= 2Δ / S_max² with S_max = 2S);
* Bencini/Ruiz (strong overlap): J = 2Δ / (S_max (S_max + 1));
* Yamaguchi (spin projection with the computed <S²>; Yamaguchi et al., Chem. Phys. Lett. 149,
  537 (1988)): J = 2Δ / (<S²>_HS - <S²>_BS).

(In the ``H = -2J S_1·S_2`` convention common in chemistry all three are halved.)
The classical energy mapping gives J_unit = Δ/2 per bond for unit vectors; in the spin
normalisation that is J_unit / S² = Δ / (2 S²): **the classical mapping equals Noodleman's
formula**.  Yamaguchi's interpolates between Noodleman (<S²>_BS = S_max, fully localised BS
state) and Bencini (<S²>_BS = 0, closed shell).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..core import validate
from ..core.codec import canonical_json
from ..core.errors import CalculationError, InputError
from ..uq import Estimate

__all__ = ["exchange_by_energy_mapping", "exchange_shells", "collinear_configurations",
           "bond_sums", "fit_exchange", "ExchangeFit", "dimer_exchange", "DimerExchange",
           "MAPPING_CONVENTION"]

logger = logging.getLogger(__name__)

#: The convention of every J this module returns: H = -Σ_<ij> J e_i·e_j, each bond once,
#: unit vectors (J > 0 ferromagnetic).
MAPPING_CONVENTION = ("minus", "per_bond", "unit")

#: "auto" enumerates all 2^(n-1) patterns up to this many magnetic sites
MAX_AUTO_SITES = 16

_CHECKPOINT_FORMAT = "scaleladder-exchange-mapping"
_CHECKPOINT_VERSION = 1


# ---------------------------------------------------------------------------- input checks
def _check_atoms(atoms) -> str:
    """"periodic" or "molecule"; InputError for anything else."""
    from ase import Atoms

    if not isinstance(atoms, Atoms):
        raise InputError("atoms", type(atoms).__name__, "an ase.Atoms")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.all():
        if abs(atoms.cell.volume) < 1e-9:
            raise InputError("atoms.cell", atoms.cell.tolist(),
                             "a periodic cell of non-zero volume")
        return "periodic"
    if not pbc.any():
        return "molecule"
    raise InputError("atoms.pbc", pbc.tolist(), "all True (crystal) or all False (molecule)")


def _check_indices(atoms, magnetic_indices) -> np.ndarray:
    try:
        given = list(magnetic_indices)
        idx = [int(i) for i in given]
        ok = all(float(i) == float(j) and not isinstance(j, (bool, np.bool_))
                 for i, j in zip(idx, given))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError("magnetic_indices", magnetic_indices, "a sequence of atom indices")
    magnetic_indices = given
    n = len(atoms)
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise InputError("magnetic_indices", list(magnetic_indices),
                         f"indices in [0, {n - 1}] ({n} atoms)", hint=f"out of range: {bad}")
    if len(set(idx)) != len(idx):
        raise InputError("magnetic_indices", list(magnetic_indices), "distinct indices")
    if len(idx) < 2:
        raise InputError("magnetic_indices", list(magnetic_indices),
                         "at least 2 magnetic sites",
                         hint="a collinear mapping needs a bond whose two ends can be flipped "
                              "independently; repeat the cell (a supercell) for one site per cell")
    return np.array(idx, dtype=np.int64)


def _check_calc_params(calculator_params) -> dict:
    if calculator_params is None:
        calculator_params = {}
    if not isinstance(calculator_params, Mapping) or not all(isinstance(k, str)
                                                              for k in calculator_params):
        raise InputError("calculator_params", calculator_params,
                         "a dict of PySCFCalculator keyword arguments")
    params = dict(calculator_params)
    if params.get("spin") is not None:
        raise InputError("calculator_params['spin']", params["spin"], "None (not given)",
                         hint="the spin of each configuration follows from its initial moments; "
                              "a fixed spin would force every configuration to one magnetisation")
    if params.get("spinpol") is False:
        raise InputError("calculator_params['spinpol']", False, "None or True",
                         hint="the mapping needs spin-polarised (UKS/KUKS) calculations")
    if "label" in params:
        raise InputError("calculator_params['label']", params["label"], "not given",
                         hint="each configuration is labelled by its pattern")
    return params


def _check_moments(moment, n: int) -> np.ndarray:
    m = np.asarray(validate.finite_array("moment", moment), dtype=float)
    if m.ndim == 0:
        m = np.full(n, float(m))
    if m.shape != (n,):
        raise InputError("moment", moment, f"a number or {n} numbers (μB), one per magnetic site")
    if np.any(m <= 0):
        raise InputError("moment", m.tolist(), "positive initial moment magnitudes (μB)")
    return m


# ---------------------------------------------------------------------------- geometry
def _site_geometry(atoms, idx: np.ndarray, kind: str):
    """(cell, positions, pbc) of the magnetic sites for the handoff (a box for molecules)."""
    pos = np.asarray(atoms.positions, dtype=float)[idx]
    if kind == "periodic":
        return np.asarray(atoms.cell[:], dtype=float), pos, (True, True, True)
    cell = np.asarray(atoms.cell[:], dtype=float)
    if abs(np.linalg.det(cell)) < 1e-9:  # a molecule without a cell: any box will do (no images)
        extent = float(np.ptp(pos, axis=0).max()) if len(pos) else 0.0
        cell = np.eye(3) * (extent + 10.0)
    return cell, pos, (False, False, False)


def exchange_shells(atoms, magnetic_indices: Sequence[int], shells: int = 1,
                    tolerance: float = 1e-3) -> np.ndarray:
    """Distances (Å) of the first ``shells`` neighbour shells between magnetic sites.

    Parameters
    ----------
    atoms : ase.Atoms
        A periodic cell (pbc all True; periodic images count) or a molecule (pbc all False).
    magnetic_indices : sequence of int
        Atoms carrying a moment.
    shells : int, default 1
        Number of shells.
    tolerance : float, default 1e-3
        Distances closer than this (Å) are one shell.

    Returns
    -------
    numpy.ndarray
        (shells,) increasing distances in Å.

    Raises
    ------
    InputError
        Bad indices, or a molecule with fewer distinct distances than ``shells``.
    """
    kind = _check_atoms(atoms)
    idx = _check_indices(atoms, magnetic_indices)
    shells = validate.positive_int("shells", shells)
    tolerance = validate.positive("tolerance", tolerance)
    pos = np.asarray(atoms.positions, dtype=float)[idx]
    diff = pos[None, :, :] - pos[:, None, :]
    if kind == "molecule":
        iu = np.triu_indices(len(pos), 1)
        d = np.linalg.norm(diff, axis=-1)[iu]
        found = _distinct(d, tolerance)
        if len(found) < shells:
            raise InputError("shells", shells, f"at most {len(found)} (the distinct distances "
                             f"between the {len(pos)} magnetic sites of the molecule)")
        return found[:shells]
    cell = np.asarray(atoms.cell[:], dtype=float)
    recip = np.linalg.inv(cell).T
    rc = float(min(np.linalg.norm(cell, axis=1)))
    for _ in range(12):
        nmax = [int(math.ceil(rc * np.linalg.norm(recip[a]))) + 1 for a in range(3)]
        grid = np.array(np.meshgrid(*[np.arange(-k, k + 1) for k in nmax],
                                    indexing="ij")).reshape(3, -1).T @ cell
        d = np.linalg.norm(diff[:, :, None, :] + grid[None, None, :, :], axis=-1).ravel()
        d = d[(d > tolerance) & (d <= rc)]
        found = _distinct(d, tolerance)
        if len(found) >= shells:
            return found[:shells]
        rc *= 2.0
    raise InputError("shells", shells, "a number of shells found within "  # pragma: no cover
                     f"{rc:.3g} Å")


def _distinct(d: np.ndarray, tol: float) -> np.ndarray:
    """Sorted distinct values of d (clusters closer than tol merged, represented by their mean)."""
    d = np.sort(np.asarray(d, dtype=float))
    out: list[list[float]] = []
    for x in d:
        if out and x - out[-1][-1] <= tol:
            out[-1].append(x)
        else:
            out.append([x])
    return np.array([float(np.mean(c)) for c in out])


def _bond_list(cell, pos, pbc, species, distances, tolerance):
    """(i, j, R, shell index) of every bond (each once) of the shells, from the handoff's own
    shell expansion (so the fit and every later use of the handoff see the same bonds)."""
    from ..handoffs.magnetism import ExchangeParameters

    template = ExchangeParameters(cell=cell, positions=pos, species=tuple(species),
                                  J=Estimate(np.zeros(len(distances)), "eV"),
                                  convention=MAPPING_CONVENTION, spin=1.0, shells=distances,
                                  pbc=pbc, shell_tolerance=tolerance)
    p = template.pairs()
    shell = np.argmin(np.abs(p.distance[:, None] - np.asarray(distances)[None, :]), axis=1)
    return (np.asarray(p.i), np.asarray(p.j), np.asarray(p.translation), shell.astype(np.int64),
            np.asarray(p.distance))


def bond_sums(patterns, i: np.ndarray, j: np.ndarray, shell: np.ndarray,
              n_shells: int) -> np.ndarray:
    """Σ_{bonds of shell s} σ_i σ_j for each pattern.

    Parameters
    ----------
    patterns : array_like, (P, n) of ±1
    i, j : (m,) site indices of the bonds (each bond once); shell : (m,) shell index of each.
    n_shells : int

    Returns
    -------
    numpy.ndarray
        (P, n_shells) integer-valued bond sums.
    """
    s = np.atleast_2d(np.asarray(patterns, dtype=float))
    prod = s[:, i] * s[:, j]  # (P, m)
    out = np.zeros((len(s), n_shells))
    for k in range(n_shells):
        out[:, k] = prod[:, shell == k].sum(axis=1)
    return out


def _pattern_name(pattern) -> str:
    p = [int(x) for x in pattern]
    if all(x == 1 for x in p) or all(x == -1 for x in p):
        return "FM"
    return "".join("+" if x > 0 else "-" for x in p)


# ---------------------------------------------------------------------------- configurations
def collinear_configurations(atoms, magnetic_indices: Sequence[int], shells: int = 1,
                             max_configurations: int | None = None,
                             tolerance: float = 1e-3) -> dict[str, tuple[int, ...]]:
    """Collinear up/down patterns of the magnetic sites worth computing for ``shells`` shells.

    All 2^(n-1) patterns with the first site up are enumerated (n <= 16 sites); patterns with
    equal bond sums (equal energy in the model) are represented once, by the one with the
    smallest net moment (then the first in enumeration order).  The ferromagnetic pattern comes
    first, then the patterns that raise the rank of the fit (smallest |net moment| first), then
    the others, until ``max_configurations``.

    Parameters
    ----------
    atoms, magnetic_indices, shells, tolerance
        As in :func:`exchange_by_energy_mapping`.
    max_configurations : int, optional
        Upper limit (>= shells + 1); default ``2 (shells + 1)``, at least one more than the
        unknowns where the cell allows it (a residual to estimate the uncertainty from).

    Returns
    -------
    dict
        Name (``"FM"`` or the pattern as ``"+-+-"``) -> pattern (tuple of ±1), ordered.

    Raises
    ------
    InputError
        Too many sites for the enumeration, or a cell in which the shells cannot be told apart
        by collinear configurations (e.g. a shell made only of bonds between a site and its own
        periodic images: use a supercell).
    """
    kind = _check_atoms(atoms)
    idx = _check_indices(atoms, magnetic_indices)
    shells = validate.positive_int("shells", shells)
    n_unknown = shells + 1
    if max_configurations is None:
        max_configurations = 2 * n_unknown
    max_configurations = validate.positive_int("max_configurations", max_configurations,
                                               minimum=n_unknown)
    n = len(idx)
    if n > MAX_AUTO_SITES:
        raise InputError("magnetic_indices", f"{n} sites", f"at most {MAX_AUTO_SITES} sites for "
                         "configurations='auto'", hint="give the configurations explicitly")
    dist = exchange_shells(atoms, idx, shells, tolerance)
    cell, pos, pbc = _site_geometry(atoms, idx, kind)
    species = [atoms.get_chemical_symbols()[k] for k in idx]
    bi, bj, _r, bs, _d = _bond_list(cell, pos, pbc, species, dist, tolerance)
    rest = np.array(list(itertools.product((1, -1), repeat=n - 1)),
                    dtype=np.int64).reshape(-1, n - 1)
    patterns = np.concatenate([np.ones((len(rest), 1), dtype=np.int64), rest], axis=1)
    sums = bond_sums(patterns, bi, bj, bs, shells)
    net = np.abs(patterns.sum(axis=1))
    reps: dict[tuple, int] = {}
    for k in np.lexsort((np.arange(len(patterns)), net)):
        key = tuple(np.round(sums[k], 6))
        reps.setdefault(key, int(k))
    fm = 0  # all up is the first of itertools.product
    order = [fm] + sorted((k for k in reps.values() if k != fm), key=lambda k: (net[k], k))
    chosen: list[int] = []
    rank = 0
    for k in order:  # rank-raising first
        rows = np.array([np.r_[1.0, -sums[c]] for c in chosen + [k]])
        r = np.linalg.matrix_rank(rows)
        if r > rank:
            chosen.append(k)
            rank = r
        if rank == n_unknown:
            break
    if rank < n_unknown:
        _raise_rank(shells, rank, dist, "every distinct collinear pattern of this cell")
    for k in order:
        if len(chosen) >= max_configurations:
            break
        if k not in chosen:
            chosen.append(k)
    return {_pattern_name(patterns[k]): tuple(int(x) for x in patterns[k]) for k in chosen}


def _raise_rank(shells: int, rank: int, dist, what: str):
    raise InputError("configurations", what,
                     f"configurations whose bond sums determine E0 and {shells} J "
                     f"({shells + 1} unknowns; rank found {rank})",
                     hint=f"shell distances {np.round(dist, 4).tolist()} Å: a shell whose bonds "
                          "join a site to its own periodic image, or shells that always flip "
                          "together, cannot be resolved in this cell; use a supercell or fewer "
                          "shells")


def _check_configurations(configurations, n: int) -> dict[str, tuple[int, ...]]:
    """User configurations (list of patterns or dict name -> pattern) validated."""
    if isinstance(configurations, Mapping):
        items = list(configurations.items())
    elif isinstance(configurations, (list, tuple)):
        items = [(None, c) for c in configurations]
    else:
        raise InputError("configurations", configurations,
                         "'auto', a list of ±1 patterns or a dict name -> pattern")
    out: dict[str, tuple[int, ...]] = {}
    seen: dict[tuple, str] = {}
    for name, c in items:
        try:
            p = np.asarray(c, dtype=float)
        except (TypeError, ValueError):
            p = None
        if p is None or p.shape != (n,) or not np.all(np.isin(p, (1.0, -1.0))):
            raise InputError("configurations", c, f"a pattern of {n} values +1/-1 (one per "
                             "magnetic site)")
        pat = tuple(int(x) for x in p)
        if name is None:
            name = _pattern_name(pat)
        if not isinstance(name, str) or not name:
            raise InputError("configurations", name, "non-empty string names")
        canon = pat if pat[0] == 1 else tuple(-x for x in pat)
        if canon in seen:
            raise InputError("configurations", [seen[canon], name], "distinct configurations",
                             hint="a pattern and its global spin flip are the same state")
        if name in out:
            raise InputError("configurations", name, "unique names")
        seen[canon] = name
        out[name] = pat
    return out


# ---------------------------------------------------------------------------- fit
@dataclass(frozen=True)
class ExchangeFit:
    """Least-squares fit of ``E = E0 - Σ_s J_s b_s`` (b_s: bond sums of shell s).

    Attributes
    ----------
    e0 : float
        Energy of the paramagnetic average (eV).
    J : Estimate
        (K,) exchange constants in eV (unit spins, per bond, J > 0 ferromagnetic); source
        ``"mapping_fit"`` (the least-squares covariance ``s² (AᵀA)⁻¹`` with
        ``s² = RSS / dof``) when there are more configurations than unknowns.
    residuals : numpy.ndarray
        (m,) E - E_fit in eV.
    dof : int
        m - (K + 1).
    covariance : numpy.ndarray
        (K, K) covariance of J in eV² (zeros when dof = 0).
    """

    e0: float
    J: Estimate
    residuals: np.ndarray
    dof: int
    covariance: np.ndarray

    @property
    def rms_residual(self) -> float:
        """Root-mean-square residual (eV)."""
        return float(np.sqrt(np.mean(self.residuals ** 2)))


def fit_exchange(sums, energies) -> ExchangeFit:
    """Fit E0 and J_s to energies of collinear configurations.

    Parameters
    ----------
    sums : array_like, (m, K)
        Bond sums Σ σ_i σ_j of each shell (see :func:`bond_sums`).
    energies : array_like, (m,)
        Energies in eV.

    Returns
    -------
    ExchangeFit

    Raises
    ------
    InputError
        Fewer configurations than unknowns, or linearly dependent bond sums.
    """
    b = validate.finite_array("sums", sums)
    if b.ndim != 2:
        raise InputError("sums", f"array of shape {b.shape}", "shape (m, K)")
    m, k = b.shape
    e = validate.finite_array("energies", energies, (m,))
    if m < k + 1:
        raise InputError("configurations", f"{m} configurations",
                         f"at least {k + 1} (unknowns: E0 and {k} J)")
    A = np.column_stack([np.ones(m), -b])
    rank = np.linalg.matrix_rank(A)
    if rank < k + 1:
        _raise_rank(k, rank, [], f"{m} configurations")
    x, *_ = np.linalg.lstsq(A, e, rcond=None)
    res = e - A @ x
    dof = m - (k + 1)
    J = x[1:]
    if dof > 0:
        s2 = float(res @ res) / dof
        cov = s2 * np.linalg.inv(A.T @ A)[1:, 1:]
        cov = 0.5 * (cov + cov.T)
        w, v = np.linalg.eigh(cov)
        L = v * np.sqrt(np.clip(w, 0.0, None))[None, :]
        c = math.sqrt((2 * k - 1) / 2.0)  # 2K sigma points: sample covariance (ddof=1) = cov
        samples = np.concatenate([J[None, :] + c * L.T, J[None, :] - c * L.T])
        Jest = Estimate(J, "eV", {"mapping_fit": samples})
    else:
        cov = np.zeros((k, k))
        Jest = Estimate(J, "eV")
    return ExchangeFit(e0=float(x[0]), J=Jest, residuals=res, dof=dof, covariance=cov)


# ---------------------------------------------------------------------------- calculations
def _compute(atoms, params: dict, initial: np.ndarray, name: str) -> tuple[dict, Any]:
    """(energy (eV), Mulliken moments (μB), timings) of ``atoms`` started from ``initial``
    moments, and the calculator (its converged density is read by :func:`_s_squared`)."""
    from .pyscf_calculator import PySCFCalculator

    a = atoms.copy()
    a.calc = None
    a.set_initial_magnetic_moments(initial)
    calc = PySCFCalculator(label=f"exchange-mapping configuration {name}", **params)
    a.calc = calc
    t0 = time.perf_counter()
    energy = float(a.get_potential_energy())
    out = {"energy_eV": energy, "magmoms_muB": [float(x) for x in calc.results["magmoms"]],
           "magmom_muB": float(calc.results["magmom"]), "elapsed_s": time.perf_counter() - t0,
           "scf_cycles": int(calc.results.get("scf_cycles", -1))}
    return out, calc


def _check_pattern(name: str, pattern, moments_site: np.ndarray, m0: np.ndarray,
                   fraction: float, idx: np.ndarray) -> None:
    """CalculationError when the converged moments do not have the intended signs and sizes."""
    want = np.asarray(pattern, dtype=float) * m0
    ok = np.sign(moments_site) == np.sign(want)
    ok &= np.abs(moments_site) >= fraction * np.abs(want)
    if not np.all(ok):
        got = "".join("+" if x > fraction * a else ("-" if x < -fraction * a else "0")
                      for x, a in zip(moments_site, m0))
        raise CalculationError(
            f"configuration {name!r} (intended "
            f"{''.join('+' if s > 0 else '-' for s in pattern)}) collapsed to {got!r}: converged "
            f"Mulliken moments {np.round(moments_site, 3).tolist()} μB on atoms {idx.tolist()} "
            f"(required: the intended sign and at least {fraction:g} x the initial "
            f"{np.round(m0, 3).tolist()} μB).  The SCF found another state; its energy is not "
            "used.  Try larger initial moments, a smearing with fixed spin, or drop this "
            "configuration (it may not be a stable state of this system)")


def _checkpoint_key(atoms, idx, params, m0) -> str:
    payload = canonical_json({"numbers": [int(z) for z in atoms.numbers],
                              "positions": np.round(np.asarray(atoms.positions), 10),
                              "cell": np.round(np.asarray(atoms.cell[:]), 10),
                              "pbc": [bool(x) for x in atoms.pbc],
                              "magnetic_indices": [int(i) for i in idx],
                              "calculator_params": params, "moment": [float(x) for x in m0]})
    return hashlib.sha256(payload.encode()).hexdigest()


def _read_checkpoint(path: str, key: str) -> dict:
    if not os.path.isfile(path):
        return {}
    from ..core.checkpoint import read_checkpoint

    data = read_checkpoint(path, kind="exchange-mapping", field="checkpoint")
    if data.get("format") != _CHECKPOINT_FORMAT or data.get("version") != _CHECKPOINT_VERSION:
        raise InputError("checkpoint", path, "an exchange-mapping checkpoint",
                         hint="the file is something else; choose another path")
    if data.get("key") != key:
        raise InputError("checkpoint", path, "a checkpoint of the same atoms, magnetic sites, "
                         "moments and calculator settings",
                         hint="it belongs to another calculation: delete it or choose another "
                              "path")
    return dict(data.get("results", {}))


def _write_checkpoint(path: str, key: str, results: dict) -> None:
    """The project's one checkpoint format (kind ``"exchange-mapping"``): atomic, hashed."""
    from ..core.checkpoint import write_checkpoint

    write_checkpoint(path, {"format": _CHECKPOINT_FORMAT, "version": _CHECKPOINT_VERSION,
                            "key": key, "results": results}, kind="exchange-mapping")


def _plain(obj: Any) -> Any:
    """JSON-able copy (tuples -> lists, NumPy -> Python)."""
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist")
                                 else str(o)))


def exchange_by_energy_mapping(atoms, magnetic_indices: Sequence[int],
                               calculator_params: Mapping[str, Any] | None = None,
                               configurations: Any = "auto", shells: int = 1, *,
                               moment: float | Sequence[float] = 1.0,
                               spin_magnitude: float | None = None,
                               min_moment_fraction: float = 0.25,
                               max_configurations: int | None = None,
                               shell_tolerance: float = 1e-3,
                               checkpoint: str | os.PathLike | None = None):
    """Heisenberg exchange constants of ``shells`` neighbour shells by collinear energy mapping.

    Parameters
    ----------
    atoms : ase.Atoms
        A periodic cell (KUKS; pbc all True) or a molecule (UKS; pbc all False) holding the
        magnetic sites; the cell must be large enough that the configurations distinguish the
        shells (a supercell of the magnetic unit cell, in general).
    magnetic_indices : sequence of int
        Indices of the atoms carrying a moment (>= 2).
    calculator_params : dict
        Keyword arguments of :class:`~scaleladder.electronic.PySCFCalculator` (xc, basis, pseudo,
        kpts, ke_cutoff, smearing, conv_tol, ...).  ``spin`` must not be given: each
        configuration's spin is the nearest integer to the sum of its initial moments (or floats
        with smearing).
    configurations : "auto", list of patterns, or dict name -> pattern
        Patterns of +1/-1, one per magnetic site (in the order of ``magnetic_indices``).  "auto":
        :func:`collinear_configurations`.  At least ``shells + 1`` with independent bond sums.
    shells : int, default 1
        Number of neighbour shells (distances from :func:`exchange_shells`).
    moment : float or sequence, default 1.0
        Initial |moment| (μB) of each magnetic site; the initial moments of a configuration are
        ``pattern * moment`` (zero on the other atoms).
    spin_magnitude : float, optional
        Spin S of the handoff; default ``moment / 2`` (mean over sites; g = 2).
    min_moment_fraction : float, default 0.25
        A configuration counts as converged to its pattern when every magnetic site's Mulliken
        moment has the intended sign and at least this fraction of its initial magnitude.
    max_configurations : int, optional
        For "auto" (see :func:`collinear_configurations`).
    shell_tolerance : float, default 1e-3
        Å; bonds this close in length belong to one shell.
    checkpoint : path, optional
        JSON file of the finished configurations (written atomically after each one); a rerun
        with the same file skips them.  A file from another calculation raises InputError.

    Returns
    -------
    scaleladder.handoffs.magnetism.ExchangeParameters
        ``J`` (eV, one per shell) in the convention ``H = -Σ_<ij> J e_i·e_j`` (sign "minus",
        counting "per_bond", normalisation "unit"; J > 0 ferromagnetic), ``shells`` the shell
        distances (Å), the magnetic sites' cell/positions/species, ``spin`` S.  ``J`` carries the
        source ``"mapping_fit"`` when the fit is overdetermined.  The provenance holds, per
        configuration, the pattern, energy (eV), converged moments (μB), bond sums and
        residual, plus E0, the degrees of freedom and the calculator settings.

    Raises
    ------
    InputError
        Bad atoms, indices, parameters or configurations (fewer than the unknowns or linearly
        dependent bond sums -- checked before any calculation).
    CalculationError
        A configuration whose converged moments do not match its pattern (collapsed), named.
    ConvergenceError
        An SCF that did not converge (from the calculator, naming the configuration).
    """
    t_start = time.perf_counter()
    kind = _check_atoms(atoms)
    idx = _check_indices(atoms, magnetic_indices)
    params = _check_calc_params(calculator_params)
    shells = validate.positive_int("shells", shells)
    shell_tolerance = validate.positive("shell_tolerance", shell_tolerance)
    fraction = validate.in_range("min_moment_fraction", min_moment_fraction, 0.0, 1.0)
    n = len(idx)
    m0 = _check_moments(moment, n)
    S = (0.5 * float(np.mean(m0)) if spin_magnitude is None
         else validate.positive("spin_magnitude", spin_magnitude))
    from .pyscf_calculator import PySCFCalculator

    PySCFCalculator(**params)  # unknown or invalid parameters fail here, before any SCF

    dist = exchange_shells(atoms, idx, shells, shell_tolerance)
    cell, pos, pbc = _site_geometry(atoms, idx, kind)
    symbols = atoms.get_chemical_symbols()
    species = tuple(symbols[k] for k in idx)
    bi, bj, _br, bshell, _bd = _bond_list(cell, pos, pbc, species, dist, shell_tolerance)
    if isinstance(configurations, str):
        validate.one_of("configurations", configurations, ("auto",))
        configs = collinear_configurations(atoms, idx, shells, max_configurations,
                                           shell_tolerance)
    else:
        configs = _check_configurations(configurations, n)
    names = list(configs)
    sums = bond_sums([configs[c] for c in names], bi, bj, bshell, shells)
    if len(names) < shells + 1:
        raise InputError("configurations", names, f"at least {shells + 1} configurations "
                         f"(unknowns: E0 and {shells} J)")
    A = np.column_stack([np.ones(len(names)), -sums])
    if np.linalg.matrix_rank(A) < shells + 1:
        _raise_rank(shells, int(np.linalg.matrix_rank(A)), dist, names)

    ck_path = None if checkpoint is None else os.fspath(checkpoint)
    key = _checkpoint_key(atoms, idx, params, m0)
    done = _read_checkpoint(ck_path, key) if ck_path else {}
    results: dict[str, dict] = {}
    for c_i, name in enumerate(names):
        pattern = configs[name]
        prev = done.get(name)
        if prev is not None and tuple(prev.get("pattern", ())) == pattern:
            results[name] = prev
            logger.info("exchange mapping: configuration %d/%d %s from checkpoint "
                        "(E = %.6f eV)", c_i + 1, len(names), name, prev["energy_eV"])
            continue
        initial = np.zeros(len(atoms))
        initial[idx] = np.asarray(pattern, dtype=float) * m0
        logger.info("exchange mapping: configuration %d/%d %s (initial moments %s μB)",
                    c_i + 1, len(names), name, np.round(initial[idx], 3).tolist())
        out, _calc = _compute(atoms, params, initial, name)
        site_m = np.asarray(out["magmoms_muB"])[idx]
        _check_pattern(name, pattern, site_m, m0, fraction, idx)
        out["pattern"] = list(pattern)
        results[name] = out
        logger.info("exchange mapping: %s E = %.6f eV, moments %s μB (%.1f s)", name,
                    out["energy_eV"], np.round(site_m, 3).tolist(), out["elapsed_s"])
        if ck_path:
            _write_checkpoint(ck_path, key, {**done, **results})

    energies = np.array([results[c]["energy_eV"] for c in names])
    fit = fit_exchange(sums, energies)
    if fit.dof == 0:
        logger.warning("exchange mapping: %d configurations for %d unknowns: exactly "
                       "determined, J carries no fit uncertainty (add configurations)",
                       len(names), shells + 1)
    site_moments = np.array([np.asarray(results[c]["magmoms_muB"])[idx] for c in names])
    spread = float(np.ptp(np.abs(site_moments))) if site_moments.size else 0.0
    provenance = {
        "method": "collinear energy mapping",
        "model": "E = E0 - sum_s J_s sum_{bonds in shell s} sigma_i sigma_j (sigma = +-1)",
        "code": "PySCF", "hamiltonian": "UKS" if kind == "molecule" else "KUKS",
        "calculator_params": _plain(params),
        "magnetic_indices": [int(i) for i in idx],
        "initial_moment_muB": m0.tolist(),
        "configurations": [{"name": c, "pattern": list(configs[c]),
                            "energy_eV": float(results[c]["energy_eV"]),
                            "magmoms_muB": [float(x) for x in results[c]["magmoms_muB"]],
                            "bond_sums": sums[k].tolist(),
                            "residual_eV": float(fit.residuals[k])}
                           for k, c in enumerate(names)],
        "e0_eV": fit.e0, "fit_dof": fit.dof, "fit_rms_residual_eV": fit.rms_residual,
        "moment_spread_muB": spread,
        "uncertainty": ("mapping_fit: least-squares covariance from the residual"
                        if fit.dof > 0 else "none: exactly determined fit"),
        "elapsed_s": time.perf_counter() - t_start,
    }
    from ..handoffs.magnetism import ExchangeParameters

    return ExchangeParameters(cell=cell, positions=pos, species=species, J=fit.J,
                              convention=MAPPING_CONVENTION, spin=S, shells=dist, pbc=pbc,
                              shell_tolerance=shell_tolerance, provenance=provenance)


# ---------------------------------------------------------------------------- dimers
def _s_squared(calc, atoms) -> float:
    """<S²> of the converged UKS determinant of a molecular PySCFCalculator.

    For a single determinant, <S²> = S_z (S_z + 1) + N_β - Tr(P_α S P_β S) with the AO density
    matrices P and overlap S (Σ_ij |<φ_iα|φ_jβ>|² = Tr(P_α S P_β S)).
    """
    from .pyscf_calculator import _check_params, _initial_moments

    p = _check_params({**calc.default_parameters, **calc.parameters})
    mol, _pseudo, _spin = calc._build_mole(atoms, p, _initial_moments(atoms))
    s = np.asarray(mol.intor("int1e_ovlp"))
    dm = np.asarray(calc._guess["dm"])
    if dm.ndim != 3:  # restricted: a closed shell
        return 0.0
    na = float(np.einsum("ij,ji->", dm[0], s))
    nb = float(np.einsum("ij,ji->", dm[1], s))
    sz = 0.5 * (na - nb)
    return float(sz * (sz + 1.0) + nb - np.einsum("ij,jk,kl,li->", dm[0], s, dm[1], s))


@dataclass(frozen=True)
class DimerExchange:
    """High-spin and broken-symmetry states of a two-centre molecule and its exchange constant.

    Energies in eV, moments in μB; every J in eV in the convention ``H = -J S_1·S_2`` (each bond
    once, spins of length S, J > 0 ferromagnetic); halve them for ``H = -2J S_1·S_2``.

    Attributes
    ----------
    energy_high_spin, energy_broken_symmetry : float
        E_HS (both moments up) and E_BS (opposite moments), eV.
    s2_high_spin, s2_broken_symmetry : float
        <S²> of the two Kohn-Sham determinants.
    spin : float
        S of each centre.
    moments_high_spin, moments_broken_symmetry : tuple
        Mulliken moments (μB) of the two centres.
    provenance : dict
    """

    energy_high_spin: float
    energy_broken_symmetry: float
    s2_high_spin: float
    s2_broken_symmetry: float
    spin: float
    moments_high_spin: tuple
    moments_broken_symmetry: tuple
    provenance: dict = field(default_factory=dict)

    @property
    def delta(self) -> float:
        """E_BS - E_HS (eV): negative for antiferromagnetic coupling."""
        return self.energy_broken_symmetry - self.energy_high_spin

    @property
    def s_max(self) -> float:
        """Spin of the high-spin state, 2S."""
        return 2.0 * self.spin

    @property
    def classical_unit(self) -> float:
        """J of the classical mapping, unit vectors, per bond: Δ/2 (eV)."""
        return 0.5 * self.delta

    @property
    def noodleman(self) -> float:
        """Weak-overlap (Ising-limit) formula Δ / (2 S²) = 2Δ / S_max² (eV); equals
        ``classical_unit / S²``."""
        return self.delta / (2.0 * self.spin ** 2)

    @property
    def bencini(self) -> float:
        """Strong-overlap formula 2Δ / (S_max (S_max + 1)) (eV)."""
        return 2.0 * self.delta / (self.s_max * (self.s_max + 1.0))

    @property
    def yamaguchi(self) -> float:
        """Spin-projected formula 2Δ / (<S²>_HS - <S²>_BS) (eV)."""
        return 2.0 * self.delta / (self.s2_high_spin - self.s2_broken_symmetry)


def dimer_exchange(atoms, magnetic_indices: Sequence[int],
                   calculator_params: Mapping[str, Any] | None = None, *,
                   moment: float = 1.0, spin_magnitude: float | None = None,
                   min_moment_fraction: float = 0.25) -> DimerExchange:
    """Broken-symmetry vs high-spin exchange of a molecule with two magnetic centres (UKS).

    Parameters
    ----------
    atoms : ase.Atoms
        A molecule (pbc all False).
    magnetic_indices : sequence of 2 int
        The two centres.
    calculator_params : dict
        :class:`~scaleladder.electronic.PySCFCalculator` keywords (no ``spin``).
    moment : float, default 1.0
        Initial |moment| of each centre (μB); HS starts from (+m, +m), BS from (+m, -m).
    spin_magnitude : float, optional
        S of each centre; default ``moment / 2``.
    min_moment_fraction : float, default 0.25
        Moment check as in :func:`exchange_by_energy_mapping` (a BS state that collapsed to the
        closed shell raises CalculationError).

    Returns
    -------
    DimerExchange
        Energies, <S²>, and J by the Noodleman, Bencini and Yamaguchi formulas and the classical
        mapping (see the module docstring).
    """
    kind = _check_atoms(atoms)
    if kind != "molecule":
        raise InputError("atoms.pbc", [bool(x) for x in atoms.pbc], "all False (a molecule)",
                         hint="for a crystal use exchange_by_energy_mapping")
    idx = _check_indices(atoms, magnetic_indices)
    if len(idx) != 2:
        raise InputError("magnetic_indices", list(magnetic_indices), "exactly 2 centres")
    params = _check_calc_params(calculator_params)
    fraction = validate.in_range("min_moment_fraction", min_moment_fraction, 0.0, 1.0)
    m0 = _check_moments(moment, 2)
    S = (0.5 * float(np.mean(m0)) if spin_magnitude is None
         else validate.positive("spin_magnitude", spin_magnitude))
    out = {}
    for name, pattern in (("HS", (1, 1)), ("BS", (1, -1))):
        initial = np.zeros(len(atoms))
        initial[idx] = np.asarray(pattern, dtype=float) * m0
        logger.info("dimer exchange: %s state (initial moments %s μB)", name,
                    initial[idx].tolist())
        res, calc = _compute(atoms, params, initial, name)
        site_m = np.asarray(res["magmoms_muB"])[idx]
        _check_pattern(name, pattern, site_m, m0, fraction, idx)
        a = atoms.copy()
        a.set_initial_magnetic_moments(initial)
        res["s2"] = _s_squared(calc, a)
        res["site_moments"] = tuple(float(x) for x in site_m)
        out[name] = res
    return DimerExchange(
        energy_high_spin=out["HS"]["energy_eV"], energy_broken_symmetry=out["BS"]["energy_eV"],
        s2_high_spin=out["HS"]["s2"], s2_broken_symmetry=out["BS"]["s2"], spin=S,
        moments_high_spin=out["HS"]["site_moments"],
        moments_broken_symmetry=out["BS"]["site_moments"],
        provenance={"code": "PySCF", "hamiltonian": "UKS", "calculator_params": _plain(params),
                    "magnetic_indices": idx.tolist(), "initial_moment_muB": m0.tolist()})
