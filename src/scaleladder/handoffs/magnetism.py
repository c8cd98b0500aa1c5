"""Exchange constants of a magnetic crystal and the Hamiltonian convention they are quoted in.

A Heisenberg (or Ising) exchange constant means nothing without its convention; published values
differ by factors of 2 (each bond counted once or twice), S^2 (unit vectors or spins of length S)
and a sign.  :class:`ExchangeParameters` therefore refuses to be built without an explicit
:class:`HamiltonianConvention`, and :meth:`ExchangeParameters.to_convention` converts between them
in one place.

Conventions
-----------
``sign``
    ``"minus"``: ``H = -sum J S_i.S_j`` (J > 0 ferromagnetic); ``"plus"``: ``H = +sum J S_i.S_j``
    (J > 0 antiferromagnetic).
``counting``
    ``"per_bond"``: the sum runs over bonds, each bond once; ``"double_counted"``: the sum runs over
    ordered pairs ``i != j``, each bond twice (so ``J_double = J_per_bond / 2``).
``normalisation``
    ``"unit"``: ``|S_i| = 1``; ``"spin"``: ``|S_i| = S`` (so ``J_spin = J_unit / S^2``).

Every convention maps to the one the spin Monte Carlo uses, the *bond coupling*
``K = s c n J`` (eV) of ``H = -sum_bonds K e_i.e_j`` with unit vectors ``e`` and each bond once,
where ``s = +1`` (minus) or ``-1`` (plus), ``c = 1`` (per_bond) or ``2`` (double_counted) and
``n = 1`` (unit) or ``S^2`` (spin).

TB2J (``exchange.out``) writes ``H = -sum_{i != j} J_ij e_i.e_j``: sign minus, double counted,
unit vectors, J in meV -- :func:`read_tb2j` reads it with that convention.

Bonds
-----
A bond is ``(i, j, R)``: site ``i`` of the home cell and site ``j`` of the cell translated by the
integer lattice vector ``R``; its vector is ``positions[j] + R @ cell - positions[i]``.  The bond
``(j, i, -R)`` is the same bond: a pair list may give either or both (both must then carry the same
J), and it is counted once in the bond sum whatever the counting convention -- the convention only
says what the number J means.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..core.codec import register
from ..core.errors import InputError
from ..core.validate import finite_array, one_of, positive
from ..uq import Estimate
from ._common import DataclassCodec, estimate_in, ro_array, setf, str_dict

__all__ = ["HamiltonianConvention", "ExchangeParameters", "ExchangePairs", "read_tb2j",
           "TB2J_CONVENTION"]

_SIGNS = ("minus", "plus")
_COUNTINGS = ("per_bond", "double_counted")
_NORMALISATIONS = ("unit", "spin")


@register("HamiltonianConvention")
@dataclass(frozen=True)
class HamiltonianConvention(DataclassCodec):
    """How the numbers J of a Heisenberg/Ising Hamiltonian are to be read.

    Parameters
    ----------
    sign : {"minus", "plus"}
        ``"minus"``: ``H = -sum J S_i.S_j`` (J > 0 ferromagnetic); ``"plus"``: ``H = +sum J S_i.S_j``.
    counting : {"per_bond", "double_counted"}
        Each bond once, or the sum over ``i != j`` (each bond twice).
    normalisation : {"unit", "spin"}
        ``|S| = 1`` or ``|S| = S`` (the spin magnitude of the :class:`ExchangeParameters`).
    """

    sign: str
    counting: str
    normalisation: str

    def __post_init__(self) -> None:
        one_of("convention.sign", self.sign, _SIGNS)
        one_of("convention.counting", self.counting, _COUNTINGS)
        one_of("convention.normalisation", self.normalisation, _NORMALISATIONS)

    def factor(self, spin: float) -> float:
        """``K / J``: the bond coupling (minus sign, each bond once, unit vectors) per unit J."""
        s = 1.0 if self.sign == "minus" else -1.0
        c = 1.0 if self.counting == "per_bond" else 2.0
        n = 1.0 if self.normalisation == "unit" else float(spin) ** 2
        return s * c * n

    def __str__(self) -> str:
        op = "-" if self.sign == "minus" else "+"
        sm = "sum_<ij> (each bond once)" if self.counting == "per_bond" else "sum_{i!=j} (double counted)"
        nm = "|S|=1" if self.normalisation == "unit" else "|S|=S"
        return f"H = {op}{sm} J S_i.S_j, {nm}"


#: TB2J's convention: ``H = -sum_{i != j} J_ij e_i.e_j`` with unit vectors.
TB2J_CONVENTION = HamiltonianConvention("minus", "double_counted", "unit")


def _as_convention(value: Any) -> HamiltonianConvention:
    if value is None:
        raise InputError("convention", None, "an explicit HamiltonianConvention (sign, counting, "
                         "normalisation)",
                         hint="e.g. HamiltonianConvention('minus', 'per_bond', 'unit') for "
                              "H = -sum_<ij> J e_i.e_j; exchange constants are ambiguous by "
                              "factors 2 and S^2 without it")
    if isinstance(value, HamiltonianConvention):
        return value
    if isinstance(value, dict):
        try:
            return HamiltonianConvention(**value)
        except TypeError:
            raise InputError("convention", value, "a dict with keys sign, counting, "
                             "normalisation") from None
    if isinstance(value, (tuple, list)) and len(value) == 3:
        return HamiltonianConvention(*value)
    raise InputError("convention", value, "a HamiltonianConvention, a dict or a (sign, counting, "
                     "normalisation) tuple")


class ExchangePairs(NamedTuple):
    """Bonds of an exchange model, each bond once (see the module docstring).

    ``i, j`` (m,) site indices; ``translation`` (m, 3) integer lattice vectors; ``J`` Estimate (m,)
    in eV in the model's own convention; ``distance`` (m,) bond lengths in Å.
    """

    i: np.ndarray
    j: np.ndarray
    translation: np.ndarray
    J: Estimate
    distance: np.ndarray


def _canonical(i: int, j: int, r: tuple) -> tuple[int, int, tuple]:
    """The orientation of a bond kept in the bond list: i < j, or i == j with R > 0 (lexically)."""
    if i < j or (i == j and r > (0, 0, 0)):
        return i, j, r
    return j, i, tuple(-x for x in r)


@register("ExchangeParameters")
@dataclass(frozen=True, eq=False)
class ExchangeParameters(DataclassCodec):
    """Isotropic exchange constants between magnetic sites of a crystal.

    Parameters
    ----------
    cell : array_like, shape (3, 3)
        Lattice vectors (rows), Å.
    positions : array_like, shape (n, 3)
        Cartesian positions of the magnetic sites, Å.
    species : tuple of str, length n
        Chemical symbols (or labels) of the sites.
    J : Estimate, shape (m,)
        Exchange constants, unit convertible to eV (stored in eV), one per shell or per pair.
    convention : HamiltonianConvention or dict or tuple
        Required (no default): ``InputError`` naming ``convention`` if missing.
    spin : float
        Spin magnitude S (> 0), used by the ``"spin"`` normalisation and the quantum mean field.
    shells : array_like, shape (m,), optional
        Shell distances (Å): every bond of that length (within ``shell_tolerance``) has that J.
    pair_list : array_like, shape (m, 5), optional
        Explicit bonds ``(i, j, R1, R2, R3)`` (integers).  Give exactly one of shells and pair_list.
    pbc : tuple of 3 bool
        Periodic axes; bonds never cross a non-periodic axis (``R = 0`` along it).
    shell_tolerance : float
        Distance tolerance (Å) of the shell expansion.
    provenance : dict
        Free-form record (source code, file, method).

    Raises
    ------
    InputError
        No convention, shapes that disagree, non-finite values, a non-positive spin, both or neither
        of shells/pairs, a self-bond ``(i, i, 0)``, a site index out of range, a bond across a
        non-periodic axis, a bond listed in both orientations with different J.
    """

    cell: np.ndarray
    positions: np.ndarray
    species: tuple
    J: Estimate
    convention: Any = None
    spin: float = None  # type: ignore[assignment]
    shells: Any = None
    pair_list: Any = None
    pbc: tuple = (True, True, True)
    shell_tolerance: float = 1e-3
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        setf(self, "convention", _as_convention(self.convention))
        if self.spin is None:
            raise InputError("spin", None, "the spin magnitude S (> 0), e.g. 0.5, 1, 2.5")
        setf(self, "spin", positive("spin", self.spin))
        cell = finite_array("cell", self.cell, (3, 3))
        if abs(np.linalg.det(cell)) < 1e-9:
            raise InputError("cell", cell.tolist(), "three linearly independent lattice vectors")
        setf(self, "cell", ro_array(cell))
        pos = finite_array("positions", self.positions, (None, 3))
        n = len(pos)
        if n == 0:
            raise InputError("positions", "0 sites", "at least one magnetic site")
        setf(self, "positions", ro_array(pos))
        sp = tuple(self.species) if isinstance(self.species, (list, tuple)) else self.species
        if not isinstance(sp, tuple) or len(sp) != n or not all(isinstance(s, str) for s in sp):
            raise InputError("species", self.species, f"{n} strings (one per site)")
        setf(self, "species", sp)
        pbc = tuple(bool(x) for x in self.pbc) if isinstance(self.pbc, (list, tuple, np.ndarray)) \
            else None
        if pbc is None or len(pbc) != 3:
            raise InputError("pbc", self.pbc, "three booleans")
        setf(self, "pbc", pbc)
        setf(self, "shell_tolerance", positive("shell_tolerance", self.shell_tolerance))
        J = estimate_in("J", self.J, "eV", allow_plain=False)
        if J.ndim != 1 or J.shape[0] == 0:
            raise InputError("J", f"Estimate of shape {J.shape}", "a 1-D Estimate (one J per "
                             "shell or pair)")
        if not np.all(np.isfinite(J.value)):
            raise InputError("J", str(J), "finite exchange constants")
        m = J.shape[0]
        if (self.shells is None) == (self.pair_list is None):
            raise InputError("shells/pair_list", (self.shells, self.pair_list),
                             "exactly one of shells (distances, Å) and pair_list ((i, j, R1, R2, R3))")
        if self.shells is not None:
            d = finite_array("shells", self.shells, (m,))
            if np.any(d <= 0):
                raise InputError("shells", d.tolist(), "positive shell distances (Å)")
            setf(self, "shells", ro_array(d))
        else:
            raw = np.asarray(self.pair_list)
            if raw.ndim != 2 or raw.shape != (m, 5) or not np.all(np.equal(np.round(raw), raw)):
                raise InputError("pair_list", f"array of shape {raw.shape}",
                                 f"shape ({m}, 5) integers (i, j, R1, R2, R3), one row per J")
            p = raw.astype(np.int64)
            if np.any(p[:, :2] < 0) or np.any(p[:, :2] >= n):
                raise InputError("pair_list", p[:, :2].tolist(), f"site indices in [0, {n - 1}]")
            for row in p:
                if row[0] == row[1] and not np.any(row[2:]):
                    raise InputError("pair_list", row.tolist(), "no self-bond (i, i, R=0)")
                for a in range(3):
                    if not pbc[a] and row[2 + a] != 0:
                        raise InputError("pair_list", row.tolist(), f"R[{a}] = 0 along the "
                                         f"non-periodic axis {a}")
            setf(self, "pair_list", ro_array(p, dtype=np.int64))
            self._bond_table()  # validates reverse duplicates
        setf(self, "J", J)
        setf(self, "provenance", str_dict("provenance", self.provenance))

    # ------------------------------------------------------------------ conversions
    @property
    def n_sites(self) -> int:
        """Number of magnetic sites in the cell."""
        return len(self.positions)

    @property
    def bond_factor(self) -> float:
        """``K / J`` of this convention (see :meth:`HamiltonianConvention.factor`)."""
        return self.convention.factor(self.spin)

    def to_convention(self, convention: Any = None, **parts: str) -> "ExchangeParameters":
        """The same physics with J quoted in another convention.

        Parameters
        ----------
        convention : HamiltonianConvention or dict or tuple, optional
            The target; or give only the parts that change as keywords (``counting=``,
            ``sign=``, ``normalisation=``).

        Returns
        -------
        ExchangeParameters
            J multiplied by ``factor(old) / factor(new)`` (factors 2, S^2 and -1; the Estimate's
            samples are scaled alike).  A round trip returns J exactly when S^2 is a power of 2
            (S = 1/2, 1, ...), to within one rounding (1 ulp) otherwise.
        """
        if convention is None:
            base = {"sign": self.convention.sign, "counting": self.convention.counting,
                    "normalisation": self.convention.normalisation}
            for k in parts:
                if k not in base:
                    raise InputError(k, parts[k], "one of sign, counting, normalisation")
            base.update(parts)
            target = _as_convention(base)
        else:
            target = _as_convention(convention)
        if target == self.convention:
            return self
        ratio = self.convention.factor(self.spin) / target.factor(self.spin)
        return self.replace(J=self.J * ratio, convention=target)

    # ------------------------------------------------------------------ bonds
    def _bond_table(self) -> list[tuple[int, int, tuple, int]]:
        """Canonical bonds of an explicit pair list: (i, j, R, index of the row giving J)."""
        seen: dict[tuple, int] = {}
        Jv = np.asarray(self.J.value if isinstance(self.J, Estimate) else self.J, dtype=float)
        for k, row in enumerate(self.pair_list):
            key = _canonical(int(row[0]), int(row[1]), tuple(int(x) for x in row[2:]))
            if key in seen:
                k0 = seen[key]
                if not math.isclose(Jv[k0], Jv[k], rel_tol=1e-6, abs_tol=1e-12):
                    raise InputError("pair_list", [self.pair_list[k0].tolist(), row.tolist()],
                                     "a bond and its reverse with the same J",
                                     hint=f"J = {Jv[k0]:.6g} and {Jv[k]:.6g} eV")
                continue
            seen[key] = k
        return [(key[0], key[1], key[2], k) for key, k in seen.items()]

    def pairs(self) -> ExchangePairs:
        """The bonds of the model, each bond once (shells expanded on the lattice).

        Returns
        -------
        ExchangePairs
            ``i, j, translation, J`` (Estimate, eV, this object's convention), ``distance`` (Å).
            Shells are expanded to every bond whose length is within ``shell_tolerance`` of the
            shell distance, in canonical orientation (``i < j``, or ``i == j`` and ``R > 0``).

        Raises
        ------
        InputError
            A shell that matches no bond.
        """
        cell, pos = self.cell, self.positions
        if self.pair_list is not None:
            table = self._bond_table()
            ii = np.array([t[0] for t in table], dtype=np.int64)
            jj = np.array([t[1] for t in table], dtype=np.int64)
            rr = np.array([t[2] for t in table], dtype=np.int64).reshape(-1, 3)
            rows = [t[3] for t in table]
            J = self.J[np.array(rows, dtype=np.int64)]
        else:
            dmax = float(np.max(self.shells)) + self.shell_tolerance
            recip = np.linalg.inv(cell).T
            nmax = [int(math.ceil(dmax * np.linalg.norm(recip[a]))) + 1 if self.pbc[a] else 0
                    for a in range(3)]
            grids = np.array(np.meshgrid(*[np.arange(-k, k + 1) for k in nmax],
                                         indexing="ij")).reshape(3, -1).T
            shifts = grids @ cell
            i_l, j_l, r_l, s_l = [], [], [], []
            n = len(pos)
            for i in range(n):
                for j in range(n):
                    d = np.linalg.norm(pos[j] + shifts - pos[i], axis=1)
                    for s, dist in enumerate(self.shells):
                        hit = np.nonzero(np.abs(d - dist) <= self.shell_tolerance)[0]
                        for h in hit:
                            r = tuple(int(x) for x in grids[h])
                            if (i, j, r) == _canonical(i, j, r) and not (i == j and r == (0, 0, 0)):
                                i_l.append(i)
                                j_l.append(j)
                                r_l.append(r)
                                s_l.append(s)
            counts = np.bincount(np.array(s_l, dtype=np.int64), minlength=len(self.shells))
            if np.any(counts == 0):
                bad = [float(self.shells[k]) for k in np.nonzero(counts == 0)[0]]
                raise InputError("shells", bad, "shell distances that match bonds of the lattice",
                                 hint=f"within shell_tolerance={self.shell_tolerance} Å")
            ii = np.array(i_l, dtype=np.int64)
            jj = np.array(j_l, dtype=np.int64)
            rr = np.array(r_l, dtype=np.int64).reshape(-1, 3)
            J = self.J[np.array(s_l, dtype=np.int64)]
        dist = np.linalg.norm(pos[jj] + rr @ cell - pos[ii], axis=1)
        return ExchangePairs(ii, jj, rr, J, dist)

    def bond_couplings(self) -> ExchangePairs:
        """The bonds with ``K = factor * J`` (eV): ``H = -sum_bonds K e_i.e_j``, unit vectors."""
        p = self.pairs()
        return p._replace(J=p.J * self.bond_factor)

    def __str__(self) -> str:
        kind = f"{len(self.shells)} shells" if self.shells is not None else \
            f"{len(self.pair_list)} pairs"
        return (f"ExchangeParameters({self.n_sites} sites, {kind}, S={self.spin:g}; "
                f"{self.convention})")


# ---------------------------------------------------------------------------- TB2J reader
_EXCH_LINE = re.compile(
    r"^\s*(?:\d+\()?\s*([A-Za-z]+\d+)\s*\)?\s+(?:\d+\()?\s*([A-Za-z]+\d+)\s*\)?\s*"
    r"\(\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*\)\s+(\S+)\s+"
    r"\(\s*(\S+?)\s*,\s*(\S+?)\s*,\s*(\S+?)\s*\)\s+(\S+)")


def read_tb2j(path: Any, spin: float | None = None) -> ExchangeParameters:
    """Read TB2J's ``exchange.out`` (isotropic exchange) into :class:`ExchangeParameters`.

    TB2J writes ``H = -sum_{i != j} J_ij e_i.e_j`` with unit vectors (each bond twice) and J in
    meV; the result carries exactly that convention (:data:`TB2J_CONVENTION`) and J in eV.  Use
    :meth:`ExchangeParameters.to_convention` for another one.

    Parameters
    ----------
    path : str or path-like
        The ``exchange.out`` file.
    spin : float, optional
        Spin magnitude S; default half the mean |magnetic moment| (μ_B, g = 2) of the magnetic
        sites in the ``Atoms`` section.

    Returns
    -------
    ExchangeParameters
        Magnetic sites = the atoms that appear in the exchange section (in file order), pairs
        ``(i, j, R)`` as listed (both orientations merged into one bond), provenance with the file
        and the moments.

    Raises
    ------
    InputError
        A file without the ``Cell``, ``Atoms`` or ``Exchange`` section, a bond vector that
        disagrees with the positions and R (more than 0.01 Å), or no usable spin magnitude.
    """
    text = open(path, encoding="utf-8").read().splitlines()
    cell = None
    atoms: dict[str, tuple[np.ndarray, float]] = {}
    order: list[str] = []
    raw_pairs: list[tuple] = []
    k = 0
    while k < len(text):
        line = text[k].strip()
        if line.startswith("Cell (Angstrom)"):
            try:
                cell = np.array([[float(x) for x in text[k + a].split()[:3]] for a in (1, 2, 3)])
            except (ValueError, IndexError):
                raise InputError("path", str(path), "a TB2J exchange.out with 3 cell rows after "
                                 "'Cell (Angstrom):'") from None
            k += 4
            continue
        if line.startswith("Atoms:"):
            k += 1
            while k < len(text) and text[k].strip() and not text[k].startswith("="):
                tok = text[k].split()
                k += 1
                if len(tok) < 6 or tok[0] == "Total":
                    continue
                label = re.sub(r"^\d+\(|\)$", "", tok[0])
                try:
                    xyz = np.array([float(t) for t in tok[1:4]])
                    mom = [float(t) for t in tok[5:8]] if len(tok) >= 8 else [float(tok[5])]
                except ValueError:
                    continue  # header or note lines
                atoms[label] = (xyz, float(np.linalg.norm(mom)))
                order.append(label)
            continue
        if line.startswith("Exchange:"):
            k += 1
            while k < len(text) and not text[k].startswith("="):
                mt = _EXCH_LINE.match(text[k])
                k += 1
                if mt is None:
                    continue
                g = mt.groups()
                raw_pairs.append((g[0], g[1], (int(g[2]), int(g[3]), int(g[4])), float(g[5]),
                                  np.array([float(g[6]), float(g[7]), float(g[8])])))
            continue
        k += 1
    if cell is None or not atoms or not raw_pairs:
        missing = [n for n, ok in (("Cell", cell is not None), ("Atoms", bool(atoms)),
                                   ("Exchange", bool(raw_pairs))) if not ok]
        raise InputError("path", str(path), "a TB2J exchange.out file",
                         hint="missing section(s): " + ", ".join(missing))
    used = {p[0] for p in raw_pairs} | {p[1] for p in raw_pairs}
    unknown = sorted(used - set(atoms))
    if unknown:
        raise InputError("path", str(path), "exchange labels listed in the Atoms section",
                         hint="unknown: " + ", ".join(unknown))
    mag = [lab for lab in order if lab in used]
    index = {lab: n for n, lab in enumerate(mag)}
    positions = np.array([atoms[lab][0] for lab in mag])
    species = tuple(re.sub(r"\d+$", "", lab) for lab in mag)
    pairs, Jmev = [], []
    for li, lj, r, jv, vec in raw_pairs:
        i, j = index[li], index[lj]
        want = positions[j] + np.array(r) @ cell - positions[i]
        if np.linalg.norm(want - vec) > 1e-2:
            raise InputError("path", str(path), "bond vectors equal to pos_j + R.cell - pos_i",
                             hint=f"bond {li} {lj} R={r}: file {vec.tolist()}, "
                                  f"computed {np.round(want, 4).tolist()}")
        if i == j and r == (0, 0, 0):
            continue  # on-site term (old files): not an exchange bond
        pairs.append((i, j) + r)
        Jmev.append(jv)
    moments = [atoms[lab][1] for lab in mag]
    if spin is None:
        spin = 0.5 * float(np.mean(moments))
        if not spin > 0:
            raise InputError("spin", spin, "a positive spin magnitude",
                             hint="the file lists zero moments: pass spin= explicitly")
    return ExchangeParameters(cell=cell, positions=positions, species=species,
                              J=Estimate(np.array(Jmev) * 1e-3, "eV"),
                              convention=TB2J_CONVENTION, spin=spin, pair_list=np.array(pairs),
                              provenance={"code": "TB2J", "file": str(path),
                                          "moments_muB": moments, "labels": mag})
