"""Units: one CODATA set, a small unit algebra, and conversions written once.

Each rung has one unit system -- electronic and atomistic: ASE's (eV, Å, amu, fs; stress in eV/Å³);
continuum: SI (Pa, m, J/m²) -- and numbers are converted only at handoffs.  Artifacts carry unit
strings that this module parses: products and quotients of known symbols with integer or decimal
powers, e.g. ``"eV/Å^3"``, ``"J/m^2"``, ``"MPa*m^0.5"``, ``"GPa"``, ``""`` (dimensionless).

The constants are ASE's (CODATA 2014, ``ase.units``) so that nothing converts with two sets.
"""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from .errors import UnitError

# CODATA 2014, taken from ase.units itself (ASE pins this set by default) so that no number is
# converted with two sets: Hartree and Bohr are derived there from the fundamental constants.
from ase import units as _ase_units  # noqa: E402

ELEMENTARY_CHARGE = 1.6021766208e-19  # C
HARTREE_EV = float(_ase_units.Hartree)  # eV (27.211386024...)
BOHR_ANGSTROM = float(_ase_units.Bohr)  # Å (0.529177210...)
AVOGADRO = 6.022140857e23
BOLTZMANN_EV = 8.6173303e-5  # eV/K

#: 1 eV/Å³ in GPa (160.21766208)
EV_PER_A3_IN_GPA = ELEMENTARY_CHARGE / 1e-30 / 1e9
#: 1 eV/Å² in J/m² (16.021766208)
EV_PER_A2_IN_J_PER_M2 = ELEMENTARY_CHARGE / 1e-20

# dimension order: mass, length, time, current, temperature, amount
_DIMS = ("M", "L", "T", "I", "Θ", "N")


def _d(M=0, L=0, T=0, I=0, Th=0, N=0):
    return (float(M), float(L), float(T), float(I), float(Th), float(N))


# symbol -> (factor to SI, dimension vector)
_J = _d(M=1, L=2, T=-2)
_PA = _d(M=1, L=-1, T=-2)
_BASE: dict[str, tuple[float, tuple]] = {
    "1": (1.0, _d()),
    "%": (0.01, _d()),
    "m": (1.0, _d(L=1)), "cm": (1e-2, _d(L=1)), "mm": (1e-3, _d(L=1)), "um": (1e-6, _d(L=1)),
    "µm": (1e-6, _d(L=1)), "nm": (1e-9, _d(L=1)),
    "Å": (1e-10, _d(L=1)), "Ang": (1e-10, _d(L=1)), "angstrom": (1e-10, _d(L=1)),
    "bohr": (BOHR_ANGSTROM * 1e-10, _d(L=1)), "Bohr": (BOHR_ANGSTROM * 1e-10, _d(L=1)),
    "s": (1.0, _d(T=1)), "fs": (1e-15, _d(T=1)), "ps": (1e-12, _d(T=1)), "ns": (1e-9, _d(T=1)),
    "kg": (1.0, _d(M=1)), "g": (1e-3, _d(M=1)), "amu": (1.66053904e-27, _d(M=1)),
    "J": (1.0, _J), "eV": (ELEMENTARY_CHARGE, _J), "meV": (ELEMENTARY_CHARGE * 1e-3, _J),
    "Ha": (ELEMENTARY_CHARGE * HARTREE_EV, _J), "Hartree": (ELEMENTARY_CHARGE * HARTREE_EV, _J),
    "Ry": (ELEMENTARY_CHARGE * HARTREE_EV / 2, _J),
    "Pa": (1.0, _PA), "kPa": (1e3, _PA), "MPa": (1e6, _PA), "GPa": (1e9, _PA),
    "bar": (1e5, _PA), "N": (1.0, _d(M=1, L=1, T=-2)),
    "W": (1.0, _d(M=1, L=2, T=-3)),
    "K": (1.0, _d(Th=1)), "mol": (1.0, _d(N=1)), "A": (1.0, _d(I=1)),
}

_TOKEN = re.compile(r"^([^\s*/^()]+)(?:\^(-?\d+(?:\.\d+)?))?$")


class Unit:
    """A parsed unit: its SI factor, its dimension vector and the string it was written as."""

    __slots__ = ("symbol", "factor", "dims")

    def __init__(self, symbol: str, factor: float, dims: tuple):
        self.symbol = symbol
        self.factor = factor
        self.dims = dims

    @property
    def dimensionless(self) -> bool:
        return all(abs(d) < 1e-12 for d in self.dims)

    def compatible(self, other: "Unit") -> bool:
        return all(abs(a - b) < 1e-12 for a, b in zip(self.dims, other.dims))

    def __repr__(self) -> str:
        return f"Unit({self.symbol!r})"


@lru_cache(maxsize=512)
def parse_unit(symbol: str) -> Unit:
    """Parse a unit string such as ``"eV/Å^3"`` or ``"MPa*m^0.5"``."""
    if not isinstance(symbol, str):
        raise UnitError("unit", symbol, "a unit string such as 'GPa' or 'eV/Å^3'")
    s = symbol.strip()
    if s in ("", "1", "dimensionless"):
        return Unit(symbol, 1.0, _d())
    factor = 1.0
    dims = np.zeros(len(_DIMS))
    # split on * and / keeping the operator
    parts = re.split(r"([*/])", s.replace(" ", ""))
    sign = 1.0
    for part in parts:
        if part == "*":
            sign = 1.0
            continue
        if part == "/":
            sign = -1.0
            continue
        m = _TOKEN.match(part)
        if not m or m.group(1) not in _BASE:
            raise UnitError("unit", symbol, "a product/quotient of known units "
                            f"({', '.join(sorted(_BASE))}), with optional ^power")
        f, d = _BASE[m.group(1)]
        p = float(m.group(2)) if m.group(2) else 1.0
        factor *= f ** (sign * p)
        dims += sign * p * np.asarray(d)
    return Unit(symbol, factor, tuple(float(x) for x in dims))


def conversion_factor(from_unit: str, to_unit: str) -> float:
    """Factor that converts a number in ``from_unit`` to ``to_unit``; raises on incompatible units."""
    a, b = parse_unit(from_unit), parse_unit(to_unit)
    if not a.compatible(b):
        raise UnitError("unit", from_unit, f"a unit convertible to {to_unit!r}")
    return a.factor / b.factor


def convert(value, from_unit: str, to_unit: str):
    """Convert a number or array between compatible units."""
    return np.asarray(value) * conversion_factor(from_unit, to_unit) if not np.isscalar(value) \
        else value * conversion_factor(from_unit, to_unit)


def multiply(u1: str, u2: str) -> str:
    """Unit string of a product (kept readable, not simplified)."""
    if not u1 or u1 == "1":
        return u2
    if not u2 or u2 == "1":
        return u1
    return f"{u1}*{u2}"


def divide(u1: str, u2: str) -> str:
    """Unit string of a quotient."""
    if not u2 or u2 == "1":
        return u1
    num = u1 if (u1 and u1 != "1") else "1"
    # invert every factor of the denominator so the string parses left to right
    den = re.split(r"([*/])", u2.replace(" ", ""))
    out = num
    op = "/"
    for tok in den:
        if tok == "*":
            op = "/"
        elif tok == "/":
            op = "*"
        elif tok:
            out += op + tok
    return out


def power(u: str, p: float) -> str:
    """Unit string raised to a power."""
    if not u or u == "1" or p == 1:
        return u
    pu = parse_unit(u)
    # rebuild from tokens to keep it parseable
    parts = re.split(r"([*/])", u.replace(" ", ""))
    sign = 1.0
    toks = []
    for part in parts:
        if part in "*/" and part:
            sign = 1.0 if part == "*" else -1.0
            continue
        m = _TOKEN.match(part)
        base, q = m.group(1), float(m.group(2)) if m.group(2) else 1.0
        toks.append((base, sign * q * p))
    del pu
    out = ""
    for base, q in toks:
        qs = f"{q:g}"
        tok = base if q == 1 else f"{base}^{abs(q):g}" if q < 0 else f"{base}^{qs}"
        if q < 0:
            out += ("/" if out else "1/") + (base if abs(q) == 1 else f"{base}^{abs(q):g}")
        else:
            out += ("*" if out else "") + tok
    return out or ""


def same_dimension(u1: str, u2: str) -> bool:
    return parse_unit(u1).compatible(parse_unit(u2))


__all__ = ["Unit", "parse_unit", "conversion_factor", "convert", "multiply", "divide", "power",
           "same_dimension", "EV_PER_A3_IN_GPA", "EV_PER_A2_IN_J_PER_M2", "HARTREE_EV",
           "BOHR_ANGSTROM", "ELEMENTARY_CHARGE", "BOLTZMANN_EV"]
