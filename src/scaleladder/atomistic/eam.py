"""Embedded-atom method (EAM): LAMMPS table files and a numba ASE calculator.

The EAM energy (Daw & Baskes 1984) of atoms ``i`` of elements ``a_i``::

    E   = sum_i E_i
    E_i = F_{a_i}(rho_i) + 1/2 sum_{j != i} phi_{a_i a_j}(r_ij)
    rho_i = sum_{j != i} rho_{a_j}(r_ij)

Units are those of LAMMPS ``units metal`` and ASE: eV, Å; stress in eV/Å³, Voigt order
``xx, yy, zz, yz, xz, xy``, ASE sign (``stress = (1/V) dE/dε``, positive under tension).

File formats (LAMMPS ``pair_style eam`` and ``pair_style eam/alloy`` documentation)
-----------------------------------------------------------------------------------
*funcfl* (DYNAMO single-element ``*.eam``), read by :func:`read_funcfl`::

    line 1   comment
    line 2   atomic_number  mass  [lattice_constant  lattice_type]
    line 3   nrho  drho  nr  dr  cutoff
    F(rho)   nrho values at rho = 0, drho, ..., (nrho-1) drho          (eV)
    Z(r)     nr values at r = 0, dr, ..., (nr-1) dr                    (effective charge, e)
    rho(r)   nr values

  LAMMPS turns the effective charge into the pair term as ``r phi(r) = 27.2 * 0.529 * Z_i(r)
  Z_j(r)`` (Hartree * Bohr in the rounded values of ``pair_eam.cpp``; eV·Å).  The same
  constant is used here, so that energies agree with LAMMPS.  (ASE's ``ase.calculators.eam``
  uses CODATA ``Hartree * Bohr = 14.39964...`` instead of ``14.3888``: its pair energies from a
  funcfl file are 0.075 % larger.)

*setfl* (``*.eam.alloy``), read by :func:`read_setfl`, written by :func:`write_setfl`::

    lines 1-3  comments
    line 4     N  element_1 ... element_N
    line 5     nrho  drho  nr  dr  cutoff
    for each element:  atomic_number  mass  lattice_constant  lattice_type
                       F(rho) (nrho values), rho(r) (nr values)
    for i = 1..N, j = 1..i:  r phi_ij(r) (nr values, eV·Å)

  Each block starts on a new line and may span several lines (blank lines and ``#`` comments
  after the header are skipped, as LAMMPS does).

Interpolation, exactly as LAMMPS ``PairEAM::interpolate`` / ``compute``
-----------------------------------------------------------------------
Every table ``f_1..f_n`` (spacing ``Δ``) becomes a local cubic per interval: node slopes (in units
of the index) from the fourth-order central difference ``((f_{m-2} - f_{m+2}) + 8 (f_{m+1} -
f_{m-1})) / 12`` (one-sided / second-order at the two ends), Hermite cubic between nodes; seven
coefficients per node (three for the derivative, four for the value).  Look-up: ``p = x/Δ + 1``,
``m = int(p)`` clamped to ``[1, n-1]``, ``p -= m``, ``p = min(p, 1)``.  Beyond the last node the
last value is held (``p = 1``); for ``rho > rhomax`` the embedding energy is extended linearly,
``F(rhomax) + F'(rhomax) (rho - rhomax)``, as LAMMPS does.  Forces are the exact derivative of
that piecewise cubic energy.  Pairs interact when ``r < cutoff`` (the file's cutoff).

For a *funcfl* file LAMMPS first maps the table onto its common grid of ``int((n-1) Δ / Δ +
0.5) = n - 1`` points (four-point Lagrange interpolation, which reproduces the file values at
the nodes): the last tabulated point is dropped, while ``rhomax`` stays ``(nrho-1) drho``.  The
calculator does the same for tables read from a funcfl file (``EAMTables.kind == "funcfl"``),
so that it agrees with ``pair_style eam``; a setfl file is used as is, as by
``pair_style eam/alloy``.

Neighbours come from the linked-cell builder of :mod:`.neighbours` (periodic images made
explicitly, so any triclinic cell, thin cells and open boundaries work), kept between calls as a
Verlet list with a skin.  Two numba passes over a
full neighbour list: densities, then embedding derivatives, forces and virial; each atom writes
only its own entries, so the threaded variant gives bitwise the same result as the serial one.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.data import chemical_symbols as _CHEMICAL_SYMBOLS
from numba import njit, prange

from ..core import validate
from ._calculator import store_results
from ..core.errors import InputError
from .neighbours import _CalculatorList

#: Default Verlet skin of :class:`EAM`, Å (measured: ``benchmarks/bench_potentials.py``).
DEFAULT_EAM_SKIN = 0.5

__all__ = ["EAM", "EAMTables", "read_funcfl", "read_setfl", "write_setfl", "read_eam",
           "FUNCFL_ZZ_TO_RPHI"]

#: LAMMPS' factor from the product of funcfl effective charges to ``r phi`` in eV·Å
#: (``27.2 * 0.529`` in ``pair_eam.cpp``: Hartree in eV times Bohr in Å, rounded).
FUNCFL_ZZ_TO_RPHI: float = 27.2 * 0.529

_MIN_POINTS = 5      # the LAMMPS spline needs 5 nodes for its central differences


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class EAMTables:
    """Tabulated EAM functions as a LAMMPS funcfl/setfl file holds them.

    Parameters
    ----------
    elements : tuple of str
        Element names, in file order (the names ``pair_coeff`` and ASE symbols must match).
    atomic_numbers : tuple of int
        Atomic number of each element (as written in the file; informational).
    masses : tuple of float
        Atomic masses in g/mol (u).
    lattice_constants : tuple of float
        Reference lattice constant of each element in Å (informational; 0.0 when absent).
    lattice_types : tuple of str
        Reference lattice of each element, e.g. ``"fcc"`` (informational; ``""`` when absent).
    nrho, drho : int, float
        Number of points and spacing of the density grid ``rho_k = k drho``.
    nr, dr : int, float
        Number of points and spacing (Å) of the distance grid ``r_k = k dr``.
    cutoff : float
        Interaction cutoff in Å (pairs with ``r < cutoff`` interact).
    F : ndarray, shape (nelements, nrho)
        Embedding energy ``F_a(rho_k)`` in eV.
    rho : ndarray, shape (nelements, nr)
        Density contributed by an atom of element ``a`` at ``r_k``.
    rphi : ndarray, shape (nelements, nelements, nr)
        ``r_k phi_ab(r_k)`` in eV·Å, symmetric in ``a, b``.
    kind : {"setfl", "funcfl"}
        Format the tables came from; ``"funcfl"`` makes :class:`EAM` use LAMMPS' funcfl grid
        (see the module docstring).
    comments : tuple of str
        Comment lines of the file (three for setfl, one for funcfl).
    source : str
        Path the tables were read from (``""`` if built in memory); used in error messages.

    Raises
    ------
    InputError
        On inconsistent shapes, a non-positive spacing or cutoff, too few grid points,
        non-finite values, duplicate element names or an asymmetric ``rphi``.
    """

    elements: tuple[str, ...]
    atomic_numbers: tuple[int, ...]
    masses: tuple[float, ...]
    lattice_constants: tuple[float, ...]
    lattice_types: tuple[str, ...]
    nrho: int
    drho: float
    nr: int
    dr: float
    cutoff: float
    F: np.ndarray
    rho: np.ndarray
    rphi: np.ndarray
    kind: str = "setfl"
    comments: tuple[str, ...] = field(default=("", "", ""))
    source: str = ""

    def __post_init__(self):
        where = f"EAMTables({self.source!r})" if self.source else "EAMTables"
        elements = tuple(str(e) for e in self.elements)
        nel = len(elements)
        if nel == 0:
            raise InputError(f"{where}.elements", self.elements, "at least one element")
        if len(set(elements)) != nel:
            raise InputError(f"{where}.elements", elements, "distinct element names")
        for e in elements:
            if not e or any(c.isspace() for c in e):
                raise InputError(f"{where}.elements", elements, "non-empty names without spaces")
        object.__setattr__(self, "elements", elements)
        for name in ("atomic_numbers", "masses", "lattice_constants", "lattice_types"):
            val = tuple(getattr(self, name))
            if len(val) != nel:
                raise InputError(f"{where}.{name}", val, f"{nel} entries (one per element)")
            object.__setattr__(self, name, val)
        object.__setattr__(self, "atomic_numbers",
                           tuple(validate.positive_int(f"{where}.atomic_numbers", z, minimum=0)
                                 for z in self.atomic_numbers))
        object.__setattr__(self, "masses", tuple(validate.finite(f"{where}.masses", m)
                                                 for m in self.masses))
        object.__setattr__(self, "lattice_constants",
                           tuple(validate.finite(f"{where}.lattice_constants", a)
                                 for a in self.lattice_constants))
        object.__setattr__(self, "lattice_types", tuple(str(t) for t in self.lattice_types))
        object.__setattr__(self, "nrho", validate.positive_int(f"{where}.nrho", self.nrho,
                                                               minimum=_MIN_POINTS))
        object.__setattr__(self, "nr", validate.positive_int(f"{where}.nr", self.nr,
                                                             minimum=_MIN_POINTS))
        object.__setattr__(self, "drho", validate.positive(f"{where}.drho", self.drho))
        object.__setattr__(self, "dr", validate.positive(f"{where}.dr", self.dr))
        object.__setattr__(self, "cutoff", validate.positive(f"{where}.cutoff", self.cutoff))
        F = validate.finite_array(f"{where}.F", self.F, (nel, self.nrho)).copy()
        rho = validate.finite_array(f"{where}.rho", self.rho, (nel, self.nr)).copy()
        rphi = validate.finite_array(f"{where}.rphi", self.rphi, (nel, nel, self.nr)).copy()
        if not np.array_equal(rphi, np.transpose(rphi, (1, 0, 2))):
            raise InputError(f"{where}.rphi", "asymmetric array", "rphi[a, b] == rphi[b, a]")
        for arr in (F, rho, rphi):
            arr.setflags(write=False)
        object.__setattr__(self, "F", F)
        object.__setattr__(self, "rho", rho)
        object.__setattr__(self, "rphi", rphi)
        validate.one_of(f"{where}.kind", self.kind, ("setfl", "funcfl"))
        object.__setattr__(self, "comments", tuple(str(c) for c in self.comments))
        object.__setattr__(self, "source", str(self.source))

    @property
    def nelements(self) -> int:
        """Number of elements."""
        return len(self.elements)

    @property
    def r_grid(self) -> np.ndarray:
        """Distances ``k dr`` of the ``nr`` table points, Å."""
        return np.arange(self.nr) * self.dr

    @property
    def rho_grid(self) -> np.ndarray:
        """Densities ``k drho`` of the ``nrho`` table points."""
        return np.arange(self.nrho) * self.drho

    @property
    def rhomax(self) -> float:
        """Last density of the table, ``(nrho - 1) drho``; beyond it F is extended linearly."""
        return (self.nrho - 1) * self.drho

    def index(self, element: str) -> int:
        """Position of ``element`` in :attr:`elements`; ``InputError`` when absent."""
        try:
            return self.elements.index(element)
        except ValueError:
            raise InputError("element", element, "one of the elements of the EAM tables "
                             f"{self._from()}: {', '.join(self.elements)}") from None

    def _from(self) -> str:
        return f"read from {self.source!r}" if self.source else "(built in memory)"

    def equals(self, other: "EAMTables", *, check_meta: bool = True) -> bool:
        """True when both hold identical tables (and, with ``check_meta``, identical metadata)."""
        same = (self.elements == other.elements and self.nrho == other.nrho
                and self.nr == other.nr and self.drho == other.drho and self.dr == other.dr
                and self.cutoff == other.cutoff and np.array_equal(self.F, other.F)
                and np.array_equal(self.rho, other.rho) and np.array_equal(self.rphi, other.rphi))
        if check_meta:
            same = same and (self.atomic_numbers == other.atomic_numbers
                             and self.masses == other.masses
                             and self.lattice_constants == other.lattice_constants
                             and self.lattice_types == other.lattice_types)
        return bool(same)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------

class _LineReader:
    """Line-oriented reader with error messages that name the file and the line."""

    def __init__(self, path: str):
        self.path = str(path)
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                self.lines = fh.read().splitlines()
        except OSError as exc:
            raise InputError("path", self.path, "a readable EAM potential file",
                             hint=str(exc)) from None
        self.pos = 0        # index of the next line

    def error(self, where: str, value: Any, expected: str, hint: str | None = None):
        return InputError(f"EAM file {self.path!r}, {where}", value, expected, hint=hint)

    def raw_line(self, what: str) -> str:
        """The next line as is (header comments), or an error at end of file."""
        if self.pos >= len(self.lines):
            raise self.error(f"line {self.pos + 1} ({what})", "end of file", f"the {what} line",
                             hint="file truncated")
        self.pos += 1
        return self.lines[self.pos - 1]

    def _data_lines(self) -> Iterator[tuple[int, list[str]]]:
        while self.pos < len(self.lines):
            text = self.lines[self.pos].split("#", 1)[0]
            self.pos += 1
            tokens = text.split()
            if tokens:
                yield self.pos, tokens

    def tokens(self, what: str, expected: str) -> tuple[int, list[str]]:
        """Tokens of the next non-blank line."""
        for lineno, toks in self._data_lines():
            return lineno, toks
        raise self.error(f"line {self.pos + 1} ({what})", "end of file", expected,
                         hint="file truncated")

    def to_float(self, tok: str, where: str, what: str) -> float:
        try:
            v = float(tok)
        except ValueError:
            raise self.error(where, tok, f"a number ({what})") from None
        if not math.isfinite(v):
            raise self.error(where, tok, f"a finite number ({what})")
        return v

    def to_int(self, tok: str, where: str, what: str) -> int:
        try:
            return int(tok)
        except ValueError:
            raise self.error(where, tok, f"an integer ({what})") from None

    def block(self, n: int, what: str) -> np.ndarray:
        """``n`` numbers starting on the next non-blank line, spanning as many lines as needed."""
        out = np.empty(n)
        k = 0
        start = None
        for lineno, toks in self._data_lines():
            if start is None:
                start = lineno
            if k + len(toks) > n:
                raise self.error(f"line {lineno} ({what}, starting line {start})",
                                 f"{len(toks)} values on the line",
                                 f"{n - k} more value(s) to complete the block of {n}",
                                 hint="wrong number of values (each block must start on a "
                                      "new line), or wrong nrho/nr in the header")
            for tok in toks:
                out[k] = self.to_float(tok, f"line {lineno} ({what})", f"value {k + 1} of {n}")
                k += 1
            if k == n:
                return out
        raise self.error(f"{what} (starting line {start or self.pos + 1})",
                         f"{k} values before end of file", f"{n} values", hint="file truncated")

    def expect_end(self, after: str):
        for lineno, toks in self._data_lines():
            raise self.error(f"line {lineno}", " ".join(toks)[:60],
                             f"end of file after {after}",
                             hint="extra data: wrong nrho/nr/number of elements, or a file of "
                                  "another EAM format (eam/fs?)")

    def grid_line(self, what: str) -> tuple[int, float, int, float, float]:
        lineno, toks = self.tokens(what, "'nrho drho nr dr cutoff'")
        where = f"line {lineno} ({what})"
        if len(toks) != 5:
            raise self.error(where, " ".join(toks), "5 values 'nrho drho nr dr cutoff'")
        nrho = self.to_int(toks[0], where, "nrho")
        drho = self.to_float(toks[1], where, "drho")
        nr = self.to_int(toks[2], where, "nr")
        dr = self.to_float(toks[3], where, "dr")
        cut = self.to_float(toks[4], where, "cutoff")
        for name, v in (("nrho", nrho), ("nr", nr)):
            if v < _MIN_POINTS:
                raise self.error(where, f"{name}={v}", f"{name} >= {_MIN_POINTS}")
        for name, v in (("drho", drho), ("dr", dr), ("cutoff", cut)):
            if not v > 0:
                raise self.error(where, f"{name}={v}", f"a positive {name} (> 0)",
                                 hint="negative or zero spacing" if name != "cutoff" else None)
        return nrho, drho, nr, dr, cut

    def element_line(self, what: str) -> tuple[int, float, float, str]:
        lineno, toks = self.tokens(what, "'atomic_number mass [lattice_constant lattice_type]'")
        where = f"line {lineno} ({what})"
        if len(toks) < 2 or len(toks) > 4:
            raise self.error(where, " ".join(toks)[:60],
                             "'atomic_number mass [lattice_constant lattice_type]' (2 to 4 "
                             "values)")
        z = self.to_int(toks[0], where, "atomic number")
        if z < 0:
            raise self.error(where, toks[0], "a non-negative atomic number")
        mass = self.to_float(toks[1], where, "mass")
        a = self.to_float(toks[2], where, "lattice constant") if len(toks) > 2 else 0.0
        lat = toks[3] if len(toks) > 3 else ""
        return z, mass, a, lat


def read_funcfl(path: str | os.PathLike, element: str | None = None) -> EAMTables:
    """Read a single-element DYNAMO *funcfl* file (LAMMPS ``pair_style eam``).

    Parameters
    ----------
    path : str or path-like
        The file.
    element : str, optional
        Element name to give the tables; by default the chemical symbol of the file's atomic
        number.

    Returns
    -------
    EAMTables
        ``kind="funcfl"``; ``rphi = 27.2 * 0.529 * Z(r)**2`` (eV·Å), LAMMPS' conversion.

    Raises
    ------
    InputError
        When the file cannot be read or is malformed (wrong number of values on a line,
        non-numeric tokens, non-positive spacing, truncated blocks, trailing data); the message
        names the file, the line or block, and what was expected.
    """
    rd = _LineReader(os.fspath(path))
    comment = rd.raw_line("comment")
    z, mass, a, lat = rd.element_line("atomic_number mass lattice_constant lattice_type")
    nrho, drho, nr, dr, cut = rd.grid_line("grid")
    F = rd.block(nrho, "F(rho) block")
    zr = rd.block(nr, "Z(r) block")
    rho = rd.block(nr, "rho(r) block")
    rd.expect_end("the F(rho), Z(r) and rho(r) blocks")
    if element is None:
        if not 0 < z < len(_CHEMICAL_SYMBOLS):
            raise rd.error("line 2 (atomic number)", z, "an atomic number in [1, "
                           f"{len(_CHEMICAL_SYMBOLS) - 1}]",
                           hint="or pass element= to name the element")
        element = _CHEMICAL_SYMBOLS[z]
    rphi = (FUNCFL_ZZ_TO_RPHI * zr) * zr
    return EAMTables(elements=(element,), atomic_numbers=(z,), masses=(mass,),
                     lattice_constants=(a,), lattice_types=(lat,), nrho=nrho, drho=drho, nr=nr,
                     dr=dr, cutoff=cut, F=F[None, :], rho=rho[None, :],
                     rphi=rphi[None, None, :], kind="funcfl", comments=(comment,),
                     source=rd.path)


def read_setfl(path: str | os.PathLike) -> EAMTables:
    """Read a multi-element *setfl* file (LAMMPS ``pair_style eam/alloy``).

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    EAMTables
        ``kind="setfl"``.

    Raises
    ------
    InputError
        When the file cannot be read or is malformed (element count not matching the names,
        wrong number of values on a line, non-numeric tokens, non-positive spacing, truncated
        blocks, trailing data); the message names the file, the line or block, and what was
        expected.
    """
    rd = _LineReader(os.fspath(path))
    comments = tuple(rd.raw_line(f"comment {k + 1} of 3") for k in range(3))
    lineno, toks = rd.tokens("elements", "'N element_1 ... element_N'")
    where = f"line {lineno} (elements)"
    nel = rd.to_int(toks[0], where, "number of elements N")
    if nel < 1:
        raise rd.error(where, toks[0], "a number of elements >= 1")
    names = tuple(toks[1:])
    if len(names) != nel:
        raise rd.error(where, " ".join(toks), f"{nel} element names after N={nel}",
                       hint=f"found {len(names)}")
    if len(set(names)) != nel:
        raise rd.error(where, " ".join(toks), "distinct element names")
    nrho, drho, nr, dr, cut = rd.grid_line("grid")
    F = np.empty((nel, nrho))
    rho = np.empty((nel, nr))
    zs, masses, lats, latt = [], [], [], []
    for a, name in enumerate(names):
        z, mass, lc, lt = rd.element_line(f"header of element {name}")
        zs.append(z)
        masses.append(mass)
        lats.append(lc)
        latt.append(lt)
        F[a] = rd.block(nrho, f"F(rho) block of {name}")
        rho[a] = rd.block(nr, f"rho(r) block of {name}")
    rphi = np.empty((nel, nel, nr))
    for a in range(nel):
        for b in range(a + 1):
            rphi[a, b] = rd.block(nr, f"r*phi(r) block of {names[a]}-{names[b]}")
            rphi[b, a] = rphi[a, b]
    rd.expect_end(f"the {nel * (nel + 1) // 2} r*phi blocks")
    return EAMTables(elements=names, atomic_numbers=tuple(zs), masses=tuple(masses),
                     lattice_constants=tuple(lats), lattice_types=tuple(latt), nrho=nrho,
                     drho=drho, nr=nr, dr=dr, cutoff=cut, F=F, rho=rho, rphi=rphi, kind="setfl",
                     comments=comments, source=rd.path)


def _kind_from_path(path: str) -> str:
    low = os.path.basename(path).lower()
    if low.endswith((".eam.alloy", ".alloy", ".setfl")):
        return "setfl"
    if low.endswith(".eam.fs") or low.endswith(".fs"):
        raise InputError("path", path, "a funcfl (.eam) or setfl (.eam.alloy, .setfl) file",
                         hint="Finnis-Sinclair (eam/fs) files are not supported")
    if low.endswith(".eam"):
        return "funcfl"
    raise InputError("path", path, "a file ending in .eam (funcfl), .eam.alloy/.alloy/.setfl "
                     "(setfl)", hint="or pass kind='funcfl' / kind='setfl'")


def read_eam(path: str | os.PathLike, kind: str | None = None) -> EAMTables:
    """Read a funcfl or setfl file, choosing the reader from ``kind`` or the file extension.

    Parameters
    ----------
    path : str or path-like
        The file.
    kind : {"funcfl", "setfl"}, optional
        Format; by default ``.eam`` -> funcfl, ``.eam.alloy``/``.alloy``/``.setfl`` -> setfl.
    """
    p = os.fspath(path)
    kind = _kind_from_path(p) if kind is None else validate.one_of("kind", kind,
                                                                   ("funcfl", "setfl"))
    return read_funcfl(p) if kind == "funcfl" else read_setfl(p)


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------

def _fmt(x: float) -> str:
    return repr(float(x))      # shortest representation that reads back to the same double


def write_setfl(tables: EAMTables, path: str | os.PathLike, *, per_line: int = 5) -> None:
    """Write tables as a *setfl* file (LAMMPS ``pair_style eam/alloy``).

    Values are written with the shortest decimal that reads back to the same double, so
    ``read_setfl(path)`` returns identical arrays.  Tables read from a funcfl file are written
    with their ``rphi = 27.2 * 0.529 Z**2`` (LAMMPS ``eam/alloy`` then uses all their points,
    while ``pair_style eam`` on the funcfl file drops the last one: see the module docstring).

    Parameters
    ----------
    tables : EAMTables
        What to write.
    path : str or path-like
        Destination (overwritten).
    per_line : int
        Values per line in the blocks.
    """
    if not isinstance(tables, EAMTables):
        raise InputError("tables", type(tables).__name__, "an EAMTables")
    per_line = validate.positive_int("per_line", per_line)
    comments = [c.replace("\n", " ").replace("\r", " ") for c in tables.comments][:3]
    comments += ["scaleladder EAM tables", "", ""][len(comments):]
    out: list[str] = list(comments)
    out.append(f"{tables.nelements} " + " ".join(tables.elements))
    out.append(f"{tables.nrho} {_fmt(tables.drho)} {tables.nr} {_fmt(tables.dr)} "
               f"{_fmt(tables.cutoff)}")

    def block(arr: np.ndarray):
        for k in range(0, arr.size, per_line):
            out.append(" ".join(_fmt(v) for v in arr[k:k + per_line]))

    for a in range(tables.nelements):
        head = f"{tables.atomic_numbers[a]} {_fmt(tables.masses[a])} " \
               f"{_fmt(tables.lattice_constants[a])}"
        if tables.lattice_types[a]:
            head += f" {tables.lattice_types[a]}"
        out.append(head)
        block(tables.F[a])
        block(tables.rho[a])
    for a in range(tables.nelements):
        for b in range(a + 1):
            block(tables.rphi[a, b])
    with open(os.fspath(path), "w", encoding="utf-8") as fh:
        fh.write("\n".join(out) + "\n")


# --------------------------------------------------------------------------------------------
# LAMMPS grid and spline coefficients
# --------------------------------------------------------------------------------------------

def _lagrange_regrid(values: np.ndarray, dfile: float, dnew: float, nnew: int) -> np.ndarray:
    """LAMMPS ``PairEAM::file2array`` four-point Lagrange map of a funcfl table onto a new grid."""
    nfile = values.shape[-1]
    f = np.concatenate([np.zeros(values.shape[:-1] + (1,)), values], axis=-1)  # 1-based
    sixth = 1.0 / 6.0
    out = np.empty(values.shape[:-1] + (nnew,))
    for m in range(1, nnew + 1):
        r = (m - 1) * dnew
        p = r / dfile + 1.0
        k = int(p)
        k = min(k, nfile - 2)
        k = max(k, 2)
        p -= k
        p = min(p, 2.0)
        cof1 = -sixth * p * (p - 1.0) * (p - 2.0)
        cof2 = 0.5 * (p * p - 1.0) * (p - 2.0)
        cof3 = -0.5 * p * (p + 1.0) * (p - 2.0)
        cof4 = sixth * p * (p * p - 1.0)
        out[..., m - 1] = (cof1 * f[..., k - 1] + cof2 * f[..., k] + cof3 * f[..., k + 1]
                           + cof4 * f[..., k + 2])
    return out


def _spline_coefficients(f: np.ndarray, delta: float) -> np.ndarray:
    """LAMMPS ``PairEAM::interpolate``: ``(..., n, 7)`` coefficients of tables ``f (..., n)``.

    Row ``m`` (0-based) holds, for the interval from node ``m`` to ``m + 1`` and ``p`` in
    [0, 1]: derivative ``(c0 p + c1) p + c2`` and value ``((c3 p + c4) p + c5) p + c6``.
    """
    f = np.asarray(f, dtype=np.float64)
    n = f.shape[-1]
    s = np.zeros(f.shape + (7,))
    s[..., 6] = f
    s6 = s[..., 6]
    s5 = np.empty_like(f)
    s5[..., 0] = s6[..., 1] - s6[..., 0]
    s5[..., 1] = 0.5 * (s6[..., 2] - s6[..., 0])
    s5[..., n - 2] = 0.5 * (s6[..., n - 1] - s6[..., n - 3])
    s5[..., n - 1] = s6[..., n - 1] - s6[..., n - 2]
    if n > 4:
        s5[..., 2:n - 2] = ((s6[..., 0:n - 4] - s6[..., 4:n])
                            + 8.0 * (s6[..., 3:n - 1] - s6[..., 1:n - 3])) / 12.0
    s[..., 5] = s5
    d = s6[..., 1:] - s6[..., :-1]
    s[..., :-1, 4] = 3.0 * d - 2.0 * s5[..., :-1] - s5[..., 1:]
    s[..., :-1, 3] = s5[..., :-1] + s5[..., 1:] - 2.0 * d
    s[..., -1, 4] = 0.0
    s[..., -1, 3] = 0.0
    s[..., 2] = s[..., 5] / delta
    s[..., 1] = 2.0 * s[..., 4] / delta
    s[..., 0] = 3.0 * s[..., 3] / delta
    return np.ascontiguousarray(s)


class _Splines:
    """Coefficient arrays the kernels use, on the grid LAMMPS would use for these tables."""

    def __init__(self, t: EAMTables):
        nrho, nr = t.nrho, t.nr
        F, rho, rphi = t.F, t.rho, t.rphi
        self.rhomax = (t.nrho - 1) * t.drho
        if t.kind == "funcfl":
            nr = int((t.nr - 1) * t.dr / t.dr + 0.5)
            nrho = int((t.nrho - 1) * t.drho / t.drho + 0.5)
            F = _lagrange_regrid(F, t.drho, t.drho, nrho)
            rho = _lagrange_regrid(rho, t.dr, t.dr, nr)
            rphi = _lagrange_regrid(rphi, t.dr, t.dr, nr)
        self.nr, self.nrho = nr, nrho
        self.rdr = 1.0 / t.dr
        self.rdrho = 1.0 / t.drho
        self.cutsq = t.cutoff * t.cutoff
        self.frho = _spline_coefficients(F, t.drho)
        self.rhor = _spline_coefficients(rho, t.dr)
        self.z2r = _spline_coefficients(rphi, t.dr)


# --------------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------------

@njit(cache=True, fastmath=False, inline="always")
def _locate(x, rdx, n):
    """LAMMPS table look-up: 0-based interval row and fraction ``p`` (clamped to <= 1)."""
    p = x * rdx + 1.0
    m = int(p)
    m = max(1, min(m, n - 1))
    p -= m
    p = min(p, 1.0)
    return m - 1, p


@njit(cache=True, fastmath=False, inline="always")
def _density(i, s0, s1, nbr_j, nbr_d, sp, rhor, rdr, nr, cutsq):
    rho = 0.0
    for t in range(s0, s1):
        dx = nbr_d[t, 0]
        dy = nbr_d[t, 1]
        dz = nbr_d[t, 2]
        rsq = dx * dx + dy * dy + dz * dz
        if rsq < cutsq:
            row, p = _locate(math.sqrt(rsq), rdr, nr)
            c = rhor[sp[nbr_j[t]], row]
            rho += ((c[3] * p + c[4]) * p + c[5]) * p + c[6]
    return rho


@njit(cache=True, fastmath=False, inline="always")
def _embed(rho, c_all, rdrho, nrho, rhomax):
    row, p = _locate(rho, rdrho, nrho)
    c = c_all[row]
    fp = (c[0] * p + c[1]) * p + c[2]
    emb = ((c[3] * p + c[4]) * p + c[5]) * p + c[6]
    if rho > rhomax:
        emb += fp * (rho - rhomax)
    return emb, fp


@njit(cache=True, fastmath=False, inline="always")
def _pair_forces(i, s0, s1, nbr_j, nbr_d, sp, fp, rhor, z2r, rdr, nr, cutsq, F, vat):
    """Pair energy (half per bond), force on ``i`` and its share of the virial (Voigt)."""
    si = sp[i]
    fpi = fp[i]
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
    for t in range(s0, s1):
        dx = nbr_d[t, 0]
        dy = nbr_d[t, 1]
        dz = nbr_d[t, 2]
        rsq = dx * dx + dy * dy + dz * dz
        if rsq < cutsq:
            j = nbr_j[t]
            sj = sp[j]
            r = math.sqrt(rsq)
            row, p = _locate(r, rdr, nr)
            c = rhor[si, row]
            rhoip = (c[0] * p + c[1]) * p + c[2]
            c = rhor[sj, row]
            rhojp = (c[0] * p + c[1]) * p + c[2]
            c = z2r[si, sj, row]
            z2p = (c[0] * p + c[1]) * p + c[2]
            z2 = ((c[3] * p + c[4]) * p + c[5]) * p + c[6]
            recip = 1.0 / r
            phi = z2 * recip
            phip = z2p * recip - phi * recip
            psip = fpi * rhojp + fp[j] * rhoip + phip      # dE/dr for this bond
            ei += 0.5 * phi
            coef = psip * recip
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
    F[i, 0] = fx
    F[i, 1] = fy
    F[i, 2] = fz
    vat[i, 0] = v0
    vat[i, 1] = v1
    vat[i, 2] = v2
    vat[i, 3] = v3
    vat[i, 4] = v4
    vat[i, 5] = v5
    return ei


@njit(cache=True, fastmath=False)
def _eam_serial(order, offsets, nbr_j, nbr_d, sp, frho, rhor, z2r, rdr, rdrho, nr, nrho,
                rhomax, cutsq):
    """Per-atom energies, forces, per-atom virials and densities, one thread."""
    n = offsets.size - 1
    rho = np.empty(n)
    for m in range(n):
        i = order[m]
        rho[i] = _density(i, offsets[m], offsets[m + 1], nbr_j, nbr_d, sp, rhor, rdr, nr, cutsq)
    fp = np.empty(n)
    energies = np.empty(n)
    for i in range(n):
        e, f = _embed(rho[i], frho[sp[i]], rdrho, nrho, rhomax)
        energies[i] = e
        fp[i] = f
    F = np.empty((n, 3))
    vat = np.empty((n, 6))
    for m in range(n):
        i = order[m]
        energies[i] += _pair_forces(i, offsets[m], offsets[m + 1], nbr_j, nbr_d, sp, fp, rhor,
                                    z2r, rdr, nr, cutsq, F, vat)
    return energies, F, vat, rho


@njit(cache=True, fastmath=False, parallel=True)
def _eam_parallel(order, offsets, nbr_j, nbr_d, sp, frho, rhor, z2r, rdr, rdrho, nr, nrho,
                  rhomax, cutsq):
    """Threaded :func:`_eam_serial` (each atom writes only its own entries: same result)."""
    n = offsets.size - 1
    rho = np.empty(n)
    for m in prange(n):
        i = order[m]
        rho[i] = _density(i, offsets[m], offsets[m + 1], nbr_j, nbr_d, sp, rhor, rdr, nr, cutsq)
    fp = np.empty(n)
    energies = np.empty(n)
    for i in prange(n):
        e, f = _embed(rho[i], frho[sp[i]], rdrho, nrho, rhomax)
        energies[i] = e
        fp[i] = f
    F = np.empty((n, 3))
    vat = np.empty((n, 6))
    for m in prange(n):
        i = order[m]
        energies[i] += _pair_forces(i, offsets[m], offsets[m + 1], nbr_j, nbr_d, sp, fp, rhor,
                                    z2r, rdr, nr, cutsq, F, vat)
    return energies, F, vat, rho


# --------------------------------------------------------------------------------------------
# ASE calculator
# --------------------------------------------------------------------------------------------

class EAM(Calculator):
    """Embedded-atom method potential from LAMMPS tables, as an ASE calculator (numba kernels).

    Interpolation, cutoff and table-edge behaviour are LAMMPS' (``pair_style eam`` for tables
    read from a funcfl file, ``pair_style eam/alloy`` for setfl): energies and forces agree with
    LAMMPS to round-off.  Properties: ``energy`` (= ``free_energy``), ``energies`` (per atom:
    embedding energy plus half of each pair term), ``forces``, ``stress`` (eV/Å³, Voigt, ASE
    sign; needs a cell of non-zero volume).  After a calculation ``results["densities"]`` holds
    the host electron density of each atom.

    Parameters
    ----------
    tables : EAMTables
        The tabulated potential (:func:`read_funcfl`, :func:`read_setfl`).
    parallel : bool
        Use the threaded kernels (numba threads); same results as serial.
    skin : float
        Verlet skin, Å (>= 0; default :data:`DEFAULT_EAM_SKIN`).  The calculator keeps a
        neighbour list of radius ``cutoff + skin`` and rebuilds it only when an atom has moved
        more than ``skin / 2`` or the cell, periodicity or number of atoms changed; ``0``
        rebuilds it whenever a position changes.  ``neighbour_builds`` counts the builds.
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator` (e.g. ``label``).

    Raises
    ------
    InputError
        From ``calculate``, when the atoms contain an element that the tables lack.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, tables: EAMTables, *, parallel: bool = False,
                 skin: float = DEFAULT_EAM_SKIN, **kwargs):
        if not isinstance(tables, EAMTables):
            raise InputError("tables", type(tables).__name__,
                             "an EAMTables (use EAM.from_file(path) to read a file)")
        if not isinstance(parallel, (bool, np.bool_)):
            raise InputError("parallel", parallel, "True or False")
        Calculator.__init__(self, **kwargs)
        self._tables = tables
        self._parallel = bool(parallel)
        self._skin = validate.nonnegative("skin", skin)
        self._lists = _CalculatorList()
        self._splines = _Splines(tables)
        self._index = {e: k for k, e in enumerate(tables.elements)}

    @classmethod
    def from_file(cls, path: str | os.PathLike, kind: str | None = None,
                  **kwargs) -> "EAM":
        """Calculator from a LAMMPS EAM file.

        Parameters
        ----------
        path : str or path-like
            A funcfl (``.eam``) or setfl (``.eam.alloy``, ``.alloy``, ``.setfl``) file.
        kind : {"funcfl", "setfl"}, optional
            Format, when the extension does not say it.
        **kwargs
            Passed to the constructor (``parallel=True``, ``skin=...``).
        """
        return cls(read_eam(path, kind=kind), **kwargs)

    @property
    def tables(self) -> EAMTables:
        """The tables this calculator evaluates."""
        return self._tables

    @property
    def cutoff(self) -> float:
        """Interaction cutoff, Å."""
        return self._tables.cutoff

    @property
    def skin(self) -> float:
        """Verlet skin, Å."""
        return self._skin

    @property
    def neighbour_builds(self) -> int:
        """How many times this calculator has built its neighbour list."""
        return self._lists.builds

    def todict(self) -> dict:
        return {"source": self._tables.source, "kind": self._tables.kind,
                "elements": list(self._tables.elements), "parallel": self._parallel,
                "skin": self._skin}

    def _species(self, symbols: Sequence[str]) -> np.ndarray:
        sp = np.empty(len(symbols), dtype=np.int64)
        for k, s in enumerate(symbols):
            idx = self._index.get(s)
            if idx is None:
                raise InputError("atoms.symbols", s, "one of the elements of the EAM tables "
                                 f"{self._tables._from()}: {', '.join(self._tables.elements)}",
                                 hint=f"atom {k} is {s}")
            sp[k] = idx
        return sp

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Compute energy, per-atom energies, forces and (for a cell of non-zero volume) stress."""
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        sp = self._species(a.get_chemical_symbols())
        n = len(a)
        cell = np.array(a.cell, dtype=np.float64)
        vol = abs(np.linalg.det(cell))
        if n == 0:
            energies, forces, vir, rho = np.zeros(0), np.zeros((0, 3)), np.zeros(6), np.zeros(0)
        else:
            pos = np.ascontiguousarray(a.positions, dtype=np.float64)
            pbc = np.asarray(a.pbc, dtype=np.bool_)
            nl = self._lists.get(self.cutoff, self._skin, self._parallel)
            order, offsets, nbr_j, nbr_d = nl.update(pos, cell, pbc)
            s = self._splines
            kern = _eam_parallel if self._parallel else _eam_serial
            energies, forces, vat, rho = kern(order, offsets, nbr_j, nbr_d, sp, s.frho, s.rhor,
                                              s.z2r, s.rdr, s.rdrho, s.nr, s.nrho, s.rhomax,
                                              s.cutsq)
            vir = vat.sum(axis=0)
        energy = float(np.sum(energies))
        store_results(self, energy, energies, forces, vir / vol if vol > 1e-12 else None,
                      properties, densities=rho)
