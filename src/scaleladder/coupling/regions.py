"""QM regions of a QM/MM partition, with link atoms capping the covalent bonds they cut.

A :class:`QMRegion` splits the atoms of one system into a QM set and an MM set (their union is
the system, their intersection empty), finds the covalent bonds the boundary cuts and caps each
with a :class:`LinkAtom`: a hydrogen (by default) placed on the cut bond Q–M at

    r_L = r_Q + g (r_M - r_Q),

a fixed fraction ``g`` of the way from the QM atom Q to the MM atom M (Dapprich, Komáromi,
Byun, Morokuma and Frisch, J. Mol. Struct. THEOCHEM 461, 1 (1999): the ONIOM link-atom
convention).  The link atom has no degrees of freedom of its own: its position is a linear
function of r_Q and r_M, so a force F_L on it goes to the real atoms by the chain rule,

    F_Q += (1 - g) F_L,        F_M += g F_L,

which :meth:`QMRegion.distribute_forces` applies.  Energies stay exact derivatives: the forces
of any scheme built on a region are the gradient of its energy with the links included.

Units: Å.  Indices are 0-based atom indices of the full system.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii

from ..core import validate
from ..core.errors import InputError

__all__ = ["LinkAtom", "QMRegion", "default_link_fraction"]


def default_link_fraction(qm_symbol: str, mm_symbol: str, link_symbol: str = "H") -> float:
    """Link-atom bond fraction ``g`` from covalent radii (ASE's ``covalent_radii``).

    ``g = (r_cov(Q) + r_cov(L)) / (r_cov(Q) + r_cov(M))``: at the covalent Q–M bond length the
    link atom sits at the covalent Q–L bond length (e.g. C–C cut with an H link: g = 0.704,
    so a 1.53 Å C–C bond gives a 1.08 Å C–H).

    Parameters
    ----------
    qm_symbol, mm_symbol, link_symbol : str
        Chemical symbols of the QM atom Q, the MM atom M and the link atom L.

    Returns
    -------
    float
        The dimensionless fraction g (> 0).
    """
    zq = _atomic_number("qm_symbol", qm_symbol)
    zm = _atomic_number("mm_symbol", mm_symbol)
    zl = _atomic_number("link_symbol", link_symbol)
    return float((covalent_radii[zq] + covalent_radii[zl]) / (covalent_radii[zq] + covalent_radii[zm]))


def _atomic_number(field: str, symbol: Any) -> int:
    if not isinstance(symbol, str) or symbol not in atomic_numbers or atomic_numbers[symbol] == 0:
        raise InputError(field, symbol, "a chemical symbol (e.g. 'H', 'C')")
    return int(atomic_numbers[symbol])


def _index(field: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(field, value, "a non-negative integer atom index")
    if value < 0:
        raise InputError(field, value, "a non-negative integer atom index")
    return int(value)


@dataclass(frozen=True)
class LinkAtom:
    """A link atom capping the cut covalent bond between QM atom ``qm_index`` and MM atom
    ``mm_index``.

    Parameters
    ----------
    qm_index, mm_index : int
        Atom indices (full system) of the QM atom Q and the MM atom M of the cut bond.
    element : str, default "H"
        Chemical symbol of the link atom L.
    g : float or None, default None
        Position fraction: ``r_L = r_Q + g (r_M - r_Q)`` (dimensionless, 0 < g <= 1).  ``None``
        means "from covalent radii", ``g = (r_cov(Q) + r_cov(L)) / (r_cov(Q) + r_cov(M))``
        (:func:`default_link_fraction`); :class:`QMRegion` resolves it against the atoms, so
        every link a region holds has a numeric ``g``.
    """

    qm_index: int
    mm_index: int
    element: str = "H"
    g: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "qm_index", _index("qm_index", self.qm_index))
        object.__setattr__(self, "mm_index", _index("mm_index", self.mm_index))
        if self.qm_index == self.mm_index:
            raise InputError("mm_index", self.mm_index, f"an atom other than qm_index={self.qm_index}")
        _atomic_number("element", self.element)
        if self.g is not None:
            g = validate.finite("g", self.g)
            if not 0.0 < g <= 1.0:
                raise InputError("g", self.g, "a bond fraction in (0, 1]",
                                 hint="the link atom lies on the cut bond between Q and M")
            object.__setattr__(self, "g", g)

    @classmethod
    def from_bond(cls, atoms: Atoms, qm_index: int, mm_index: int, element: str = "H") -> "LinkAtom":
        """The link atom of bond (``qm_index``, ``mm_index``) of ``atoms`` with the covalent-radii g."""
        syms = atoms.get_chemical_symbols()
        q = _index("qm_index", qm_index)
        m = _index("mm_index", mm_index)
        for field, i in (("qm_index", q), ("mm_index", m)):
            if i >= len(atoms):
                raise InputError(field, i, f"an atom index < {len(atoms)} (number of atoms)")
        return cls(q, m, element, default_link_fraction(syms[q], syms[m], element))


class QMRegion:
    """The QM part of a QM/MM partition, with the link atoms of the covalent bonds it cuts.

    Parameters
    ----------
    atoms : ase.Atoms
        The full system (positions in Å).  Used for the bond analysis at construction and to fix
        the number of atoms and their elements; later positions come with each calculation.
    qm_indices : sequence of int
        Atom indices of the QM region: unique, in ``[0, len(atoms))``, not empty.  Stored sorted.
    links : "auto", None or sequence of LinkAtom, default "auto"
        ``"auto"``: one ``link_element`` link atom per cut bond, g from covalent radii.
        ``None``: no link atoms; a selection that cuts a covalent bond then raises
        :class:`InputError` naming ``qm_indices`` and listing the cut bonds.
        A sequence of :class:`LinkAtom`: used as given (``g=None`` resolved from covalent radii);
        each must join a QM atom to an MM atom, and every cut bond must have one.
    link_element : str, default "H"
        Element of the automatic link atoms.
    bond_factor : float, default 1.2
        Two atoms are covalently bonded when closer than ``bond_factor`` times the sum of their
        covalent radii (``ase.neighborlist.natural_cutoffs(atoms, mult=bond_factor)``).

    Attributes
    ----------
    qm_indices, mm_indices : numpy.ndarray of int
        Sorted indices of the QM and MM atoms.
    cut_bonds : list of (int, int)
        Covalent bonds (q, m) cut by the boundary, q in QM, m in MM, sorted.
    links : tuple of LinkAtom
        The link atoms (each with a numeric g), in the order they follow the QM atoms in
        :meth:`qm_atoms`.
    natoms : int
        Number of atoms of the full system.

    Notes
    -----
    Periodic systems: the link atom is placed along the minimum-image Q→M vector of the cell
    passed to :meth:`link_positions` (that of the construction atoms by default).
    """

    def __init__(self, atoms: Atoms, qm_indices: Sequence[int], links: Any = "auto",
                 link_element: str = "H", bond_factor: float = 1.2):
        if not isinstance(atoms, Atoms):
            raise InputError("atoms", type(atoms).__name__, "an ase.Atoms object")
        self.natoms = len(atoms)
        self.numbers = atoms.numbers.copy()
        self.bond_factor = validate.positive("bond_factor", bond_factor)
        _atomic_number("link_element", link_element)
        self.link_element = link_element
        self.qm_indices = self._checked_indices(qm_indices, self.natoms)
        mask = np.zeros(self.natoms, bool)
        mask[self.qm_indices] = True
        self._qm_mask = mask
        self.mm_indices = np.flatnonzero(~mask)
        self._cell = atoms.cell.array.copy()
        self._pbc = atoms.pbc.copy()
        self.cut_bonds = self._find_cut_bonds(atoms)
        self.links = self._resolve_links(atoms, links)
        self._g = np.array([lk.g for lk in self.links], dtype=float)
        self._lq = np.array([lk.qm_index for lk in self.links], dtype=int)
        self._lm = np.array([lk.mm_index for lk in self.links], dtype=int)
        self._lz = np.array([atomic_numbers[lk.element] for lk in self.links], dtype=int)

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _checked_indices(qm_indices: Any, natoms: int) -> np.ndarray:
        if isinstance(qm_indices, (str, bytes)):
            raise InputError("qm_indices", qm_indices, "a sequence of integer atom indices")
        try:
            vals = list(qm_indices)
        except TypeError:
            raise InputError("qm_indices", qm_indices, "a sequence of integer atom indices") from None
        if not vals:
            raise InputError("qm_indices", vals, "a non-empty selection of atom indices",
                             hint="an empty QM region has nothing to treat quantum mechanically")
        for v in vals:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise InputError("qm_indices", vals, "integer atom indices")
        arr = np.asarray(vals, dtype=int)
        bad = arr[(arr < 0) | (arr >= natoms)]
        if bad.size:
            raise InputError("qm_indices", vals, f"indices in [0, {natoms}) (the system has "
                             f"{natoms} atoms)", hint=f"out of range: {bad.tolist()}")
        uniq, counts = np.unique(arr, return_counts=True)
        if np.any(counts > 1):
            raise InputError("qm_indices", vals, "each atom index once",
                             hint=f"duplicated: {uniq[counts > 1].tolist()}")
        return uniq

    def _find_cut_bonds(self, atoms: Atoms) -> list[tuple[int, int]]:
        from ase.neighborlist import natural_cutoffs, neighbor_list

        cutoffs = natural_cutoffs(atoms, mult=self.bond_factor)
        i, j = neighbor_list("ij", atoms, cutoffs, self_interaction=False)
        cut = self._qm_mask[i] & ~self._qm_mask[j]
        return sorted({(int(a), int(b)) for a, b in zip(i[cut], j[cut])})

    def _resolve_links(self, atoms: Atoms, links: Any) -> tuple[LinkAtom, ...]:
        bonds_txt = ", ".join(f"{q}-{m}" for q, m in self.cut_bonds)
        if links is None:
            if self.cut_bonds:
                raise InputError(
                    "qm_indices", self.qm_indices.tolist(),
                    "a QM selection that cuts no covalent bond, or link-atom information",
                    hint=f"a QM selection that cuts a bond without link-atom information: cut "
                         f"bonds (qm, mm) {bonds_txt}; pass links='auto' or a list of LinkAtom")
            return ()
        if isinstance(links, str):
            validate.one_of("links", links, ["auto"])
            return tuple(LinkAtom.from_bond(atoms, q, m, self.link_element) for q, m in self.cut_bonds)
        try:
            given = list(links)
        except TypeError:
            raise InputError("links", links, "'auto', None or a sequence of LinkAtom") from None
        out = []
        for lk in given:
            if not isinstance(lk, LinkAtom):
                raise InputError("links", lk, "LinkAtom instances")
            if lk.qm_index >= self.natoms or not self._qm_mask[lk.qm_index]:
                raise InputError("links", lk, f"a link whose qm_index is a QM atom "
                                 f"(qm_indices={self.qm_indices.tolist()})")
            if lk.mm_index >= self.natoms or self._qm_mask[lk.mm_index]:
                raise InputError("links", lk, "a link whose mm_index is an MM atom")
            if lk.g is None:
                lk = LinkAtom.from_bond(atoms, lk.qm_index, lk.mm_index, lk.element)
            out.append(lk)
        pairs = [(lk.qm_index, lk.mm_index) for lk in out]
        if len(set(pairs)) != len(pairs):
            raise InputError("links", given, "at most one link atom per (qm, mm) bond")
        missing = [b for b in self.cut_bonds if b not in set(pairs)]
        if missing:
            raise InputError("links", given, "one LinkAtom for every cut covalent bond",
                             hint="cut bonds without a link: "
                                  + ", ".join(f"{q}-{m}" for q, m in missing))
        return tuple(out)

    # ------------------------------------------------------------------ queries
    @property
    def n_qm(self) -> int:
        """Number of real QM atoms."""
        return int(self.qm_indices.size)

    @property
    def n_links(self) -> int:
        """Number of link atoms."""
        return len(self.links)

    @property
    def electrons(self) -> int:
        """Electron count of the neutral QM model system (QM atoms + link atoms)."""
        return int(self.numbers[self.qm_indices].sum() + self._lz.sum())

    def describe(self) -> str:
        """One line naming the QM region: its atoms, formula and link atoms."""
        from ase.symbols import Symbols

        formula = Symbols(np.concatenate([self.numbers[self.qm_indices], self._lz])).get_chemical_formula()
        idx = self.qm_indices.tolist()
        shown = idx if len(idx) <= 12 else idx[:12] + ["..."]
        links = (", links " + ", ".join(f"{lk.element}({lk.qm_index}-{lk.mm_index})"
                                        for lk in self.links)) if self.links else ""
        return (f"QM region {formula} (atoms {shown}{links}; {self.electrons} electrons when "
                f"neutral)")

    def check_atoms(self, atoms: Atoms) -> None:
        """Raise :class:`InputError` naming ``atoms`` unless it is the system the region was
        built for (same number of atoms, same elements)."""
        if len(atoms) != self.natoms:
            raise InputError("atoms", f"{len(atoms)} atoms", f"the {self.natoms}-atom system the "
                             "QM region was built for")
        if not np.array_equal(atoms.numbers, self.numbers):
            raise InputError("atoms", atoms.get_chemical_formula(), "the same elements, in the "
                             "same order, as the system the QM region was built for")

    def check_disjoint(self, other_indices: Iterable[int], field: str = "mm_indices") -> None:
        """Raise :class:`InputError` naming ``field`` if ``other_indices`` overlaps the QM region.

        Use it for selections that must exclude the QM atoms (an explicit MM or buffer set, a
        second QM region).
        """
        other = np.asarray(list(other_indices), dtype=int)
        both = np.intersect1d(other, self.qm_indices)
        if both.size:
            raise InputError(field, other.tolist(), "a selection disjoint from the QM region "
                             f"(qm_indices={self.qm_indices.tolist()})",
                             hint=f"overlapping QM/MM selections: atoms {both.tolist()} are in both")

    # ------------------------------------------------------------------ geometry and forces
    def link_positions(self, positions: np.ndarray, cell: Any = None, pbc: Any = None) -> np.ndarray:
        """Positions (nl, 3) in Å of the link atoms, ``r_Q + g (r_M - r_Q)``.

        Parameters
        ----------
        positions : array (natoms, 3)
            Positions of the full system, Å.
        cell, pbc : optional
            Cell (3x3, Å) and periodic flags for the minimum-image Q→M vector; default those of
            the atoms the region was built with.
        """
        pos = np.asarray(positions, dtype=float)
        if pos.shape != (self.natoms, 3):
            raise InputError("positions", f"array of shape {pos.shape}", f"shape ({self.natoms}, 3)")
        if not self.links:
            return np.zeros((0, 3))
        d = pos[self._lm] - pos[self._lq]
        d = self._minimum_image(d, self._cell if cell is None else np.asarray(cell, float),
                                self._pbc if pbc is None else np.asarray(pbc, bool))
        return pos[self._lq] + self._g[:, None] * d

    @staticmethod
    def _minimum_image(d: np.ndarray, cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
        if not np.any(pbc):
            return d
        from ase.geometry import find_mic

        return find_mic(d, cell, pbc)[0]

    def qm_atoms(self, atoms: Atoms) -> Atoms:
        """The QM model system: QM atoms (``qm_indices`` order), then the link atoms.

        Cell and pbc are copied from ``atoms``; charges, magnetic moments and tags of the QM
        atoms are kept, link atoms get zero of each.
        """
        self.check_atoms(atoms)
        sub = Atoms(numbers=self.numbers[self.qm_indices], positions=atoms.positions[self.qm_indices],
                    cell=atoms.cell, pbc=atoms.pbc)
        for name in ("initial_charges", "initial_magmoms", "tags"):
            if atoms.has(name):
                sub.set_array(name, atoms.get_array(name)[self.qm_indices])
        if self.links:
            link = Atoms(numbers=self._lz, positions=self.link_positions(atoms.positions,
                                                                           atoms.cell.array,
                                                                           atoms.pbc),
                         cell=atoms.cell, pbc=atoms.pbc)
            sub += link
        return sub

    def distribute_forces(self, f_qm_plus_links: np.ndarray, natoms: int | None = None) -> np.ndarray:
        """Forces (natoms, 3) on the real atoms from forces on the QM atoms and link atoms.

        Chain rule of ``r_L = r_Q + g (r_M - r_Q)``: ``F_Q += (1 - g) F_L``, ``F_M += g F_L``.

        Parameters
        ----------
        f_qm_plus_links : array (n_qm + n_links, 3)
            Forces (eV/Å) on the QM atoms in ``qm_indices`` order, then on the link atoms.
        natoms : int, optional
            Number of atoms of the full system (default: the region's).
        """
        n = self.natoms if natoms is None else validate.positive_int("natoms", natoms)
        if n != self.natoms:
            raise InputError("natoms", natoms, f"{self.natoms} (the system the region was built for)")
        f = validate.finite_array("f_qm_plus_links", f_qm_plus_links, (self.n_qm + self.n_links, 3))
        out = np.zeros((n, 3))
        out[self.qm_indices] = f[: self.n_qm]
        if self.links:
            fl = f[self.n_qm:]
            np.add.at(out, self._lq, (1.0 - self._g)[:, None] * fl)
            np.add.at(out, self._lm, self._g[:, None] * fl)
        return out

    def __repr__(self) -> str:
        return (f"QMRegion(n_qm={self.n_qm}, n_mm={self.mm_indices.size}, "
                f"cut_bonds={self.cut_bonds}, links={len(self.links)})")
