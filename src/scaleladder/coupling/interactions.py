"""Classical QM–MM pair interactions: point-charge Coulomb and Lennard-Jones.

The QM–MM term of an additive QM/MM scheme with mechanical embedding is a sum over every pair
(i in QM, j in MM), each pair exactly once:

    E = sum_i sum_j [ k_e q_i q_j / r_ij  +  4 eps_ij ((sigma_ij / r_ij)^12 - (sigma_ij / r_ij)^6) ]

with ``k_e = ase.units.Hartree * ase.units.Bohr = 14.3996 eV Å / e^2``, charges in e, distances
in Å, energies in eV.  LJ parameters come per element pair, symmetric.  With a ``cutoff`` each
pair term is truncated at ``r_c`` and shifted to zero there (``phi(r) - phi(r_c)``), so the energy
is continuous and the forces are the exact derivatives of the energy inside the cutoff; without
a cutoff every pair counts (open boundaries only).  Periodic systems use the minimum image and
need ``cutoff`` below half the smallest cell width, so that each pair has at most one image
within the cutoff.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from ase import Atoms, units
from ase.data import atomic_numbers

from ..core import validate
from ..core.errors import InputError

__all__ = ["PairInteractions", "COULOMB_EV_A"]

#: Coulomb constant k_e in eV Å / e^2 (ASE's CODATA set; the one ASE's TIP3P/TIP4P use).
COULOMB_EV_A = units.Hartree * units.Bohr


class PairInteractions:
    """Coulomb + Lennard-Jones interaction between a QM and an MM subsystem.

    Parameters
    ----------
    lj : dict or None
        ``{(symbol_a, symbol_b): (epsilon, sigma)}`` with epsilon in eV (>= 0) and sigma in Å
        (> 0); the lookup is symmetric, pairs not listed have no LJ term.  ``None``: no LJ.
    coulomb : bool, default True
        Include the point-charge Coulomb term (can be overridden per call).
    cutoff : float or None, default None
        Pair cutoff in Å (energy-shifted truncation).  Required for periodic systems, and then
        below half the smallest perpendicular width of the cell.
    """

    name = "coulomb+LJ"

    def __init__(self, lj: Mapping[tuple[str, str], tuple[float, float]] | None = None,
                 coulomb: bool = True, cutoff: float | None = None):
        self.lj = self._checked_lj(lj)
        if not isinstance(coulomb, (bool, np.bool_)):
            raise InputError("coulomb", coulomb, "True or False")
        self.coulomb = bool(coulomb)
        self.cutoff = None if cutoff is None else validate.positive("cutoff", cutoff)

    @staticmethod
    def _checked_lj(lj: Any) -> dict[tuple[int, int], tuple[float, float]]:
        if lj is None:
            return {}
        if not isinstance(lj, Mapping):
            raise InputError("lj", lj, "a dict {(symbol_a, symbol_b): (epsilon eV, sigma Å)}")
        out: dict[tuple[int, int], tuple[float, float]] = {}
        for key, val in lj.items():
            if (not isinstance(key, tuple) or len(key) != 2
                    or not all(isinstance(s, str) and atomic_numbers.get(s, 0) > 0 for s in key)):
                raise InputError("lj", key, "keys that are pairs of chemical symbols, e.g. ('O', 'O')")
            try:
                eps, sig = val
            except (TypeError, ValueError):
                raise InputError(f"lj[{key!r}]", val, "a pair (epsilon eV, sigma Å)") from None
            eps = validate.nonnegative(f"lj[{key!r}] epsilon", eps)
            sig = validate.positive(f"lj[{key!r}] sigma", sig)
            za, zb = atomic_numbers[key[0]], atomic_numbers[key[1]]
            for k in ((za, zb), (zb, za)):
                if k in out and out[k] != (eps, sig):
                    raise InputError("lj", key, "one (epsilon, sigma) per element pair",
                                     hint="the lookup is symmetric: (A, B) and (B, A) disagree")
                out[k] = (eps, sig)
        return out

    # ------------------------------------------------------------------ geometry
    def _pair_vectors(self, qm_atoms: Atoms, mm_atoms: Atoms) -> np.ndarray:
        """d[i, j] = r_j(MM) - r_i(QM), minimum image where periodic, shape (nq, nm, 3)."""
        d = mm_atoms.positions[None, :, :] - qm_atoms.positions[:, None, :]
        pbc = np.asarray(mm_atoms.pbc, bool)
        if not pbc.any():
            return d
        cell = mm_atoms.cell.array
        if self.cutoff is None:
            raise InputError("cutoff", None, "a pair cutoff (Å) for a periodic system",
                             hint="the minimum image needs cutoff < half the cell width")
        if np.any(np.abs(cell[pbc].sum(axis=1)) == 0) or abs(np.linalg.det(cell)) < 1e-12:
            raise InputError("cell", cell.tolist(), "a cell of non-zero volume for periodic "
                             "boundaries")
        widths = 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)  # perpendicular widths, Å
        half = 0.5 * widths[pbc].min()
        if self.cutoff >= half:
            raise InputError("cutoff", self.cutoff, f"a cutoff < half the smallest periodic cell "
                             f"width ({half:.4g} Å) for the minimum image")
        flat = d.reshape(-1, 3)
        frac = np.linalg.solve(cell.T, flat.T).T
        frac[:, pbc] -= np.round(frac[:, pbc])
        flat = frac @ cell
        # Skewed cells: the rounded image is not always the nearest; try the neighbouring ones.
        shifts = np.array(np.meshgrid(*[(-1, 0, 1) if p else (0,) for p in pbc],
                                      indexing="ij")).reshape(3, -1).T @ cell
        cand = flat[:, None, :] + shifts[None, :, :]
        best = np.argmin((cand ** 2).sum(-1), axis=1)
        flat = cand[np.arange(flat.shape[0]), best]
        return flat.reshape(d.shape)

    # ------------------------------------------------------------------ energy and forces
    def calculate(self, qm_atoms: Atoms, qm_charges: Any, mm_atoms: Atoms, mm_charges: Any,
                  coulomb: bool | None = None) -> tuple[float, np.ndarray, np.ndarray]:
        """Energy (eV) and forces (eV/Å) of the QM–MM pair interaction.

        Parameters
        ----------
        qm_atoms, mm_atoms : ase.Atoms
            The two subsystems (positions in Å).  Cell and pbc are read from ``mm_atoms``.
        qm_charges, mm_charges : array (nq,), (nm,)
            Point charges in e.
        coulomb : bool or None
            Override the instance's ``coulomb`` flag for this call (e.g. False when the
            electrostatics are in the QM Hamiltonian).

        Returns
        -------
        energy : float
        f_qm : ndarray (nq, 3)
        f_mm : ndarray (nm, 3)
        """
        for field, a in (("qm_atoms", qm_atoms), ("mm_atoms", mm_atoms)):
            if not isinstance(a, Atoms):
                raise InputError(field, type(a).__name__, "an ase.Atoms object")
        nq, nm = len(qm_atoms), len(mm_atoms)
        use_coulomb = self.coulomb if coulomb is None else bool(coulomb)
        qq = validate.finite_array("qm_charges", qm_charges, (nq,))
        qm_ = validate.finite_array("mm_charges", mm_charges, (nm,))
        if nq == 0 or nm == 0:
            return 0.0, np.zeros((nq, 3)), np.zeros((nm, 3))
        d = self._pair_vectors(qm_atoms, mm_atoms)
        r2 = (d ** 2).sum(-1)
        if np.any(r2 < 1e-16):
            i, j = np.argwhere(r2 < 1e-16)[0]
            raise InputError("positions", f"QM atom {i} and MM atom {j} coincide",
                             "distinct QM and MM atom positions")
        inside = np.ones_like(r2, bool) if self.cutoff is None else r2 < self.cutoff ** 2
        energy = 0.0
        # dE/dr / r for each pair: force on MM atom j is -g * d, on QM atom i +g * d.
        g = np.zeros_like(r2)
        if use_coulomb:
            r = np.sqrt(r2)
            qiqj = COULOMB_EV_A * qq[:, None] * qm_[None, :]
            e = qiqj / r
            if self.cutoff is not None:
                e = e - qiqj / self.cutoff
            energy += float(e[inside].sum())
            g += np.where(inside, -qiqj / (r2 * r), 0.0)
        if self.lj:
            eps, sig = self._lj_matrices(qm_atoms.numbers, mm_atoms.numbers)
            active = inside & (eps > 0)
            if np.any(active):
                s6 = (sig ** 2 / r2) ** 3
                e = 4.0 * eps * (s6 * s6 - s6)
                if self.cutoff is not None:
                    c6 = (sig ** 2 / self.cutoff ** 2) ** 3
                    e = e - 4.0 * eps * (c6 * c6 - c6)
                energy += float(e[active].sum())
                g += np.where(active, -24.0 * eps * (2.0 * s6 * s6 - s6) / r2, 0.0)
        gd = g[:, :, None] * d
        f_mm = -gd.sum(axis=0)
        f_qm = gd.sum(axis=1)
        return energy, f_qm, f_mm

    def _lj_matrices(self, zq: np.ndarray, zm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        eps = np.zeros((zq.size, zm.size))
        sig = np.ones((zq.size, zm.size))
        for a in np.unique(zq):
            for b in np.unique(zm):
                prm = self.lj.get((int(a), int(b)))
                if prm is None:
                    continue
                block = (zq == a)[:, None] & (zm == b)[None, :]
                eps[block], sig[block] = prm
        return eps, sig

    def __repr__(self) -> str:
        from ase.data import chemical_symbols

        lj = {(chemical_symbols[a], chemical_symbols[b]): v for (a, b), v in self.lj.items() if a <= b}
        return f"PairInteractions(lj={lj}, coulomb={self.coulomb}, cutoff={self.cutoff})"
