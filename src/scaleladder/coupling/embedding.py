"""Additive QM/MM with electrostatic embedding: the MM charges polarise the QM density.

:class:`ElectrostaticEmbedding` is an ASE calculator that wraps a QM calculator able to embed
its molecule in point charges (``set_point_charges(positions, charges, widths)`` and
``results["point_charge_forces"]``, as :class:`scaleladder.electronic.PySCFCalculator` does
through PySCF's ``pyscf.qmmm``) and an MM calculator::

    E = E_QM(QM + links in the MM charges) + E_MM(MM) + E_LJ(QM–MM)

* ``E_QM`` is the energy of the QM model system (QM atoms then link atoms,
  :meth:`~.regions.QMRegion.qm_atoms`) with the MM charges in its Hamiltonian: it contains the
  QM–MM electrostatics (QM electrons and nuclei with the MM charges), never the charge–charge
  energy of the MM charges among themselves.
* ``E_MM`` is the MM calculator on the MM atoms alone (MM–MM, with the unmodified MM charges).
* ``E_LJ`` is the non-electrostatic QM–MM term, :class:`~.interactions.PairInteractions`
  called with ``coulomb=False`` (the Coulomb part is in ``E_QM``): Lennard-Jones between the real
  QM atoms and the MM atoms (every pair: no 1-2/1-3 exclusions, so give LJ parameters only to
  element pairs that are not bonded across the boundary).  Link atoms take no part in it.

Forces are the exact gradient of E: link-atom forces go to the real atoms by the chain rule
(:meth:`~.regions.QMRegion.distribute_forces`), the forces the QM density and nuclei exert on
the embedding charges (``point_charge_forces``) go to the MM atoms that carry them, and a charge
placed at a bond midpoint passes half its force to each atom of the bond.

Charges next to the boundary
----------------------------
An MM charge ~0.5 Å from a link atom (the charge of the MM atom M1 of a cut bond Q1–M1, which
sits beyond the link hydrogen on the same bond) over-polarises the QM density.  With M1 the MM
atoms of the cut bonds, M2 their other MM neighbours (bonded: closer than ``bond_factor`` times
the sum of the covalent radii, the region's ``bond_factor``), the ``charge_scheme`` is

* ``"none"``: every MM charge kept.  Over-polarisation risk: q(M1) sits ~0.4-0.5 Å from the link
  atom's nucleus and inside its density; the link bond and the QM charges next to it are
  distorted (measured on ethanol cut at its C–C bond, q(M1) = +0.145 e, HF and PBE/sto-3g:
  0.85 eV above "rcd"; "z1" is 0.32 eV below it).  For comparisons only.
* ``"z1"``: the M1 charges are removed (total MM charge changes by -Σ q(M1)).
* ``"z2"``: the M1 and M2 charges are removed (total changes by -Σ q(M1 ∪ M2)).
* ``"rcd"``: redistributed charge and dipole (Lin and Truhlar, J. Phys. Chem. A 109, 3991
  (2005)): q(M1) is removed and, with n2 the number of M1–M2 bonds and q0 = q(M1)/n2, a charge
  2 q0 is placed at the midpoint of each M1–M2 bond and each M2 charge is lowered by q0.  The
  total charge is conserved, and so is the dipole of each M1–M2 bond (2 q0 · d/2 - q0 · d = 0
  relative to M1, as for q0 on M1).

The bonded topology of the boundary (M1, M2) is taken from the first configuration calculated
and then kept (:attr:`ElectrostaticEmbedding.topology`), so the energy stays a smooth function
of the positions.

Scope: open (non-periodic) systems; the QM model is a molecule.  Every calculation stores an
:class:`~.ledger.EnergyLedger` in ``results["ledger"]``.  Energies in eV, forces in eV/Å,
positions in Å, charges in e.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from ..core import validate
from ..core.errors import CalculationError, InputError, PropertyNotImplementedError
from .interactions import PairInteractions
from .ledger import EnergyLedger
from .qmmm import mm_charges
from .regions import QMRegion

__all__ = ["BoundaryTopology", "EmbeddingCharges", "ElectrostaticEmbedding", "CHARGE_SCHEMES",
           "embedding_charges"]

#: charge schemes next to link atoms (see the module docstring)
CHARGE_SCHEMES = ("rcd", "z1", "z2", "none")


@dataclass(frozen=True)
class BoundaryTopology:
    """The MM atoms next to the QM/MM boundary.

    Attributes
    ----------
    m1 : tuple of int
        MM atoms of the cut bonds (sorted, each once).
    m2 : tuple of tuple of int
        For each ``m1[i]``, its bonded MM neighbours (sorted; QM atoms excluded).
    """

    m1: tuple[int, ...]
    m2: tuple[tuple[int, ...], ...]

    @classmethod
    def from_atoms(cls, atoms: Atoms, region: QMRegion) -> "BoundaryTopology":
        """M1 from ``region.cut_bonds``; M2 bonded to M1 at ``region.bond_factor`` x covalent
        radii (``ase.neighborlist.natural_cutoffs``) in ``atoms``."""
        region.check_atoms(atoms)
        m1 = tuple(sorted({int(m) for _q, m in region.cut_bonds}))
        if not m1:
            return cls((), ())
        from ase.neighborlist import natural_cutoffs, neighbor_list

        cutoffs = natural_cutoffs(atoms, mult=region.bond_factor)
        i, j = neighbor_list("ij", atoms, cutoffs, self_interaction=False)
        is_mm = np.ones(len(atoms), bool)
        is_mm[region.qm_indices] = False
        m2 = tuple(tuple(sorted(int(b) for b in j[(i == a) & is_mm[j]])) for a in m1)
        return cls(m1, m2)

    @property
    def m2_atoms(self) -> tuple[int, ...]:
        """All M2 atoms (sorted, each once)."""
        return tuple(sorted({b for group in self.m2 for b in group}))


@dataclass(frozen=True)
class EmbeddingCharges:
    """The charges the QM model is embedded in, and where they sit.

    Charge k sits at ``w[k, 0] r[a[k, 0]] + w[k, 1] r[a[k, 1]]`` (an atom: a = (i, i), w = (1,
    0); a bond midpoint: a = (i, j), w = (1/2, 1/2)), so a force F_k on it puts ``w[k, 0] F_k``
    on atom ``a[k, 0]`` and ``w[k, 1] F_k`` on atom ``a[k, 1]`` (:meth:`distribute_forces`).

    Attributes
    ----------
    positions : ndarray (m, 3)
        Å.
    charges : ndarray (m,)
        e.
    site_atoms : ndarray (m, 2) of int
        Atom indices (full system) each charge position is built from.
    site_weights : ndarray (m, 2)
        Their weights (each row sums to 1).
    """

    positions: np.ndarray
    charges: np.ndarray
    site_atoms: np.ndarray
    site_weights: np.ndarray

    def __len__(self) -> int:
        return len(self.charges)

    @property
    def total_charge(self) -> float:
        """Sum of the charges, e."""
        return float(self.charges.sum())

    def dipole(self, origin: Any = (0.0, 0.0, 0.0)) -> np.ndarray:
        """Dipole moment (e Å) of the charges about ``origin`` (Å)."""
        return (self.charges[:, None] * (self.positions - np.asarray(origin, float))).sum(axis=0)

    def distribute_forces(self, f_charges: np.ndarray, natoms: int) -> np.ndarray:
        """Forces (natoms, 3) on the real atoms from forces (m, 3) on the charges (chain rule)."""
        f = validate.finite_array("f_charges", f_charges, (len(self), 3))
        out = np.zeros((natoms, 3))
        np.add.at(out, self.site_atoms[:, 0], self.site_weights[:, 0, None] * f)
        np.add.at(out, self.site_atoms[:, 1], self.site_weights[:, 1, None] * f)
        return out


def embedding_charges(positions: Any, region: QMRegion, charges: Any, scheme: str = "rcd",
                      topology: BoundaryTopology | None = None) -> EmbeddingCharges:
    """The MM charges seen by the QM model, modified next to the boundary by ``scheme``.

    Parameters
    ----------
    positions : array (natoms, 3)
        Positions of the full system, Å.
    region : QMRegion
        The QM/MM partition.
    charges : array (natoms,)
        MM-model charges of every atom (e); those of the QM atoms are ignored.
    scheme : {"rcd", "z1", "z2", "none"}, default "rcd"
        See the module docstring.
    topology : BoundaryTopology, optional
        Required when the region cuts bonds and ``scheme`` is not "none".

    Returns
    -------
    EmbeddingCharges
        Zero charges are dropped (they do not act on the QM density).

    Raises
    ------
    InputError
        Unknown scheme, wrong shapes, a missing topology, or "rcd" with an M1 atom that has no
        MM neighbour to move its charge to.
    """
    validate.one_of("charge_scheme", scheme, CHARGE_SCHEMES)
    pos = validate.finite_array("positions", positions, (region.natoms, 3))
    q_all = validate.finite_array("charges", charges, (region.natoms,))
    mm = region.mm_indices
    q = np.zeros(region.natoms)
    q[mm] = q_all[mm]
    extra_atoms: list[tuple[int, int]] = []
    extra_q: list[float] = []
    if region.cut_bonds and scheme != "none":
        if topology is None:
            raise InputError("topology", None, "the BoundaryTopology of the region's cut bonds "
                             f"(charge_scheme={scheme!r})",
                             "BoundaryTopology.from_atoms(atoms, region)")
        m1 = list(topology.m1)
        if scheme == "rcd":
            for a, neigh in zip(topology.m1, topology.m2):
                if not neigh:
                    raise InputError("charge_scheme", scheme, "an M1 atom with MM neighbours "
                                     "to redistribute its charge to",
                                     f"MM atom {a} of a cut bond has no bonded MM neighbour; use "
                                     "'z1' or move the boundary")
            q0 = {a: q_all[a] / len(neigh) for a, neigh in zip(topology.m1, topology.m2)}
            q[m1] = 0.0
            for a, neigh in zip(topology.m1, topology.m2):
                for b in neigh:
                    q[b] -= q0[a]
                    extra_atoms.append((a, b))
                    extra_q.append(2.0 * q0[a])
        else:
            q[m1] = 0.0
            if scheme == "z2":
                q[list(topology.m2_atoms)] = 0.0
    keep = mm[q[mm] != 0.0]
    site_atoms = np.concatenate([np.stack([keep, keep], axis=1),
                                 np.array(extra_atoms, dtype=int).reshape(-1, 2)])
    weights = np.concatenate([np.tile([1.0, 0.0], (keep.size, 1)),
                              np.full((len(extra_atoms), 2), 0.5)])
    site_q = np.concatenate([q[keep], np.array(extra_q, dtype=float)])
    nz = site_q != 0.0
    site_atoms, weights, site_q = site_atoms[nz], weights[nz], site_q[nz]
    site_pos = (weights[:, 0, None] * pos[site_atoms[:, 0]]
                + weights[:, 1, None] * pos[site_atoms[:, 1]])
    return EmbeddingCharges(site_pos, site_q, site_atoms, weights)


class ElectrostaticEmbedding(Calculator):
    """Additive QM/MM, electrostatic embedding: ``E = E_QM(QM + links in the MM charges) +
    E_MM(MM) + E_LJ(QM–MM)`` (module docstring).

    Parameters
    ----------
    qm_calc : ASE calculator
        Evaluated on the QM model system (QM atoms + link atoms, a molecule); it must provide
        ``set_point_charges(positions Å, charges e, widths Å or None)``,
        ``clear_point_charges()`` and the result ``"point_charge_forces"`` (eV/Å, forces ON the
        charges), as :class:`scaleladder.electronic.PySCFCalculator`.
    mm_calc : ASE calculator
        Evaluated on the MM atoms alone.  Its charges (``get_virtual_charges(atoms)`` if it has
        it, e.g. ASE's TIP3P, else ``atoms.get_initial_charges()``; one per atom) are the
        embedding charges.
    region : QMRegion
        QM atoms and link atoms.
    interaction : PairInteractions or None, default None
        The QM–MM Lennard-Jones term between the real QM atoms and the MM atoms, evaluated with
        ``coulomb=False`` whatever its own flag (the QM–MM electrostatics are in E_QM).  None: no
        LJ term.
    charge_scheme : {"rcd", "z1", "z2", "none"}, default "rcd"
        What happens to the MM charges next to the link atoms (module docstring).
    gaussian_width : float or None, default None
        Width w (Å) of Gaussian embedding charges ``q (π w²)^(-3/2) exp(-r²/w²)`` (all
        charges); None: point charges.

    Notes
    -----
    ``results``: ``energy`` = ``free_energy`` (eV), ``forces`` (eV/Å), ``ledger`` (also
    ``.ledger``), ``qm_energy``, ``mm_energy``, ``lj_energy`` (eV) and ``n_point_charges``.
    :attr:`last_charges` holds the :class:`EmbeddingCharges` of the last calculation.  Stress
    raises :class:`~scaleladder.core.errors.PropertyNotImplementedError`; periodic systems raise
    :class:`InputError`.

    Ledger: ``E_QM`` covers QM–QM and QM–MM (the QM–MM electrostatics are inside the embedded QM
    energy); ``E_MM(MM)`` covers MM–MM; ``E_LJ`` is the non-electrostatic remainder of the QM–MM
    interaction and is listed without a pair class of its own, so a second classical QM–MM
    Coulomb term (a double count) cannot be added without the check failing.  What the cut
    bonds contribute in the MM model (the Q–M stretch, angles and torsions across the boundary)
    is in none of the terms: an additive scheme with a black-box MM calculator cannot reach
    them.
    """

    implemented_properties = ["energy", "free_energy", "forces"]
    scheme = "additive QM/MM, electrostatic embedding"

    def __init__(self, qm_calc: Any, mm_calc: Any, region: QMRegion,
                 interaction: PairInteractions | None = None, charge_scheme: str = "rcd",
                 gaussian_width: float | None = None, **kwargs):
        super().__init__(**kwargs)
        for field, calc in (("qm_calc", qm_calc), ("mm_calc", mm_calc)):
            if not (hasattr(calc, "get_potential_energy") and hasattr(calc, "get_forces")):
                raise InputError(field, type(calc).__name__, "an ASE calculator "
                                 "(get_potential_energy, get_forces)")
        if not (callable(getattr(qm_calc, "set_point_charges", None))
                and callable(getattr(qm_calc, "clear_point_charges", None))):
            raise InputError("qm_calc", type(qm_calc).__name__,
                             "a QM calculator that embeds point charges (set_point_charges, "
                             "clear_point_charges, results['point_charge_forces'])",
                             "e.g. scaleladder.electronic.PySCFCalculator; use "
                             "MechanicalEmbedding for QM codes without point charges")
        if not isinstance(region, QMRegion):
            raise InputError("region", type(region).__name__, "a scaleladder.coupling.QMRegion")
        if interaction is not None and not callable(getattr(interaction, "calculate", None)):
            raise InputError("interaction", type(interaction).__name__,
                             "None or a PairInteractions (LJ; its Coulomb term is not used)")
        self.qm_calc = qm_calc
        self.mm_calc = mm_calc
        self.region = region
        self.interaction = interaction
        self.charge_scheme = validate.one_of("charge_scheme", charge_scheme, CHARGE_SCHEMES)
        self.gaussian_width = (None if gaussian_width is None
                               else validate.positive("gaussian_width", gaussian_width))
        # a force field bound to the full system's topology (scaleladder's
        # FixedChargeForceField) evaluates the MM atoms through its subset; its charges still
        # come from the full system.  Any other calculator runs on the MM atoms directly.
        sub = getattr(mm_calc, "subset", None)
        self.mm_calc_mm = (sub([int(i) for i in region.mm_indices])
                           if callable(sub) and region.mm_indices.size else mm_calc)
        self.topology: BoundaryTopology | None = None
        self.ledger: EnergyLedger | None = None
        self.last_charges: EmbeddingCharges | None = None

    # -------------------------------------------------------------- pieces
    def charges(self, atoms: Atoms) -> EmbeddingCharges:
        """The embedding charges of ``atoms`` (the boundary topology is fixed on first use)."""
        self.region.check_atoms(atoms)
        if self.topology is None:
            self.topology = BoundaryTopology.from_atoms(atoms, self.region)
        q = mm_charges(self.mm_calc, atoms)
        return embedding_charges(atoms.positions, self.region, q, self.charge_scheme,
                                 self.topology)

    def _run_qm(self, model: Atoms, emb: EmbeddingCharges, want_forces: bool = True
                ) -> tuple[float, np.ndarray, np.ndarray]:
        """E_QM (eV), forces on QM+link atoms and on the charges (eV/Å); zeros for the forces
        when ``want_forces`` is False (an energy-only call skips the QM gradient)."""
        calc = self.qm_calc
        where = f"in the QM calculation of {self.region.describe()}"
        try:
            if len(emb):
                widths = (None if self.gaussian_width is None
                          else np.full(len(emb), self.gaussian_width))
                calc.set_point_charges(emb.positions, emb.charges, widths)
            else:
                calc.clear_point_charges()
            e = float(calc.get_potential_energy(model))
            if want_forces:
                f = np.array(calc.get_forces(model), dtype=float)
                f_pc = (np.array(calc.get_property("point_charge_forces", model), dtype=float)
                        if len(emb) else np.zeros((0, 3)))
            else:
                f, f_pc = np.zeros((len(model), 3)), np.zeros((len(emb), 3))
        except InputError as err:
            hint = f"{err.hint}; {where}" if err.hint else where
            raise type(err)(err.field, err.value, err.expected, hint=hint) from err
        except Exception as err:  # noqa: BLE001 - re-raised with the region named
            err.add_note(where)
            raise
        if f_pc.shape != (len(emb), 3):
            raise CalculationError(f"{type(calc).__name__} returned point_charge_forces of shape "
                                   f"{f_pc.shape} for {len(emb)} charges {where}")
        return e, f, f_pc

    # -------------------------------------------------------------- ASE protocol
    def calculate(self, atoms: Atoms | None = None, properties=("energy",),
                  system_changes=all_changes) -> None:
        """Energy and forces of ``atoms`` (the full system); see the class docstring."""
        if "stress" in properties:
            raise PropertyNotImplementedError(
                f"{self.scheme}: stress is not implemented (the link-atom, embedding-charge and "
                "subsystem virials are not assembled); use energies and forces")
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms.copy()
        atoms.calc = None
        atoms.constraints = []
        if any(atoms.pbc):
            raise InputError("atoms.pbc", tuple(bool(x) for x in atoms.pbc),
                             "(False, False, False): electrostatic embedding of a molecular QM "
                             "model in the charges of an open system",
                             "periodic images of the MM charges are not summed; use "
                             "MechanicalEmbedding or ONIOM for periodic systems")
        reg = self.region
        reg.check_atoms(atoms)
        n = len(atoms)
        emb = self.charges(atoms)
        model = reg.qm_atoms(atoms)
        want_forces = "forces" in properties
        e_qm, f_qm, f_pc = self._run_qm(model, emb, want_forces)
        forces = reg.distribute_forces(f_qm, n) + emb.distribute_forces(f_pc, n)
        mm_sys = atoms[reg.mm_indices]
        e_mm = 0.0
        if len(mm_sys):
            e_mm = float(self.mm_calc_mm.get_potential_energy(mm_sys))
            forces[reg.mm_indices] += np.array(self.mm_calc_mm.get_forces(mm_sys), dtype=float)
        e_lj = 0.0
        if self.interaction is not None and len(mm_sys):
            qm_real = atoms[reg.qm_indices]
            e_lj, fi_qm, fi_mm = self.interaction.calculate(
                qm_real, np.zeros(len(qm_real)), mm_sys, np.zeros(len(mm_sys)), coulomb=False)
            e_lj = float(e_lj)
            forces[reg.qm_indices] += fi_qm
            forces[reg.mm_indices] += fi_mm
        ledger = EnergyLedger(self.scheme)
        links = f", {reg.n_links} link atom(s)" if reg.n_links else ""
        ledger.add("E_QM(QM+links in MM charges)", e_qm, +1, {"QM-QM": 1, "QM-MM": 1},
                   note=f"QM-MM electrostatics: {len(emb)} charges, scheme "
                        f"{self.charge_scheme}{links}")
        ledger.add("E_MM(MM)", e_mm, +1, {"MM-MM": 1})
        ledger.add("E_LJ(QM-MM)", e_lj, +1, {},
                   note="non-electrostatic part of QM-MM; link atoms excluded")
        ledger.check()
        energy = ledger.total
        if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
            raise CalculationError(f"{self.scheme}: non-finite energy or forces\n{ledger}")
        self.ledger = ledger
        self.last_charges = emb
        self.results = {"energy": energy, "free_energy": energy,
                        "ledger": ledger, "qm_energy": e_qm, "mm_energy": e_mm,
                        "lj_energy": e_lj, "n_point_charges": len(emb)}
        if want_forces:
            self.results["forces"] = forces
