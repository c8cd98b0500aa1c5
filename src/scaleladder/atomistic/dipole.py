"""Elastic dipole tensors of point defects from the residual stress of a relaxed supercell.

The defect (or saddle-point) supercell is relaxed at the cell of the perfect crystal; the
average stress it is left with is ``-P / V`` (linear elasticity: exact for any periodic cell,
Varvenne et al., Phys. Rev. B 88, 134102 (2013)), so one stress evaluation of the relaxed
defect cell and one of the perfect cell give the dipole:

    P_ij = -V (σ_ij[defect] - σ_ij[perfect])       (ASE stress sign, eV)

The handoff (:class:`~scaleladder.handoffs.ElasticDipole`) then gives the first-order strain
dependence of the defect's energy, its relaxation volume and the homogeneous finite-size
correction of its energy.  What the residual stress does not capture is the core's non-linear
response to the strain of its periodic images, which decays as 1/V: compare two supercells
(:func:`dipole_convergence`).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core.errors import InputError
from ..core import validate
from ..handoffs.dipole import ElasticDipole
from ..uq import Estimate

__all__ = ["elastic_dipole", "dipole_convergence"]


def _check_cell_pair(defect, perfect) -> None:
    from ase import Atoms

    for name, at in (("defect", defect), ("perfect", perfect)):
        if not isinstance(at, Atoms):
            raise InputError(name, type(at).__name__, "an ase.Atoms supercell")
        if not np.all(at.pbc):
            raise InputError(f"{name}.pbc", at.pbc.tolist(), "a periodic supercell in 3D")
    if not np.allclose(defect.cell, perfect.cell, atol=1e-6):
        raise InputError("defect.cell", np.asarray(defect.cell).round(6).tolist(),
                         "the perfect crystal's cell (the dipole is the residual stress at "
                         f"fixed cell; perfect cell {np.asarray(perfect.cell).round(6).tolist()})")


def _stress(atoms, calc) -> np.ndarray:
    at = atoms.copy()
    at.calc = calc
    s = np.asarray(at.get_stress(voigt=False), dtype=float)
    return s, np.asarray(at.get_forces(), dtype=float)


def elastic_dipole(defect, perfect, calc, *, fmax: float = 0.01, defect_name: str = "",
                   host: str = "", elastic: Any = None, max_cell_strain: float = 0.01,
                   provenance: dict | None = None) -> ElasticDipole:
    """The elastic dipole tensor of a relaxed defect supercell (eV).

    Parameters
    ----------
    defect : ase.Atoms
        The defect (or saddle-point) supercell, relaxed at the perfect crystal's cell: the
        largest force must be below ``fmax`` (a climbing-image saddle qualifies).
    perfect : ase.Atoms
        The perfect supercell with the same cell (its residual stress is subtracted: the
        lattice constant need not be the potential's own).
    calc : ase Calculator
        Energy, forces and stress (the same for both cells).
    fmax : float
        Largest force (eV/Å) accepted on the defect cell.
    defect_name, host : str
        Labels carried by the handoff.
    elastic : ElasticTensor or 6x6 array (GPa), optional
        The host's stiffness: with it, the supercell is refused when the defect would strain it
        by more than ``max_cell_strain`` (``Ω/V``; linear elasticity and the finite-size
        correction then no longer hold).
    max_cell_strain : float
        See ``elastic``.

    Returns
    -------
    ElasticDipole
    """
    _check_cell_pair(defect, perfect)
    fmax = validate.positive("fmax", fmax)
    max_cell_strain = validate.positive("max_cell_strain", max_cell_strain)
    s_def, f_def = _stress(defect, calc)
    fnow = float(np.sqrt((f_def ** 2).sum(axis=1)).max()) if len(f_def) else 0.0
    if fnow > fmax:
        raise InputError("defect", f"max force {fnow:.3g} eV/Å",
                         f"a defect cell relaxed at fixed cell to forces below fmax = {fmax} eV/Å "
                         "(the residual stress of an unrelaxed cell is not the dipole)",
                         hint="relax it first: atomistic.properties.relax_positions(atoms, fmax)")
    s_perf, _ = _stress(perfect, calc)
    vol = float(perfect.get_volume())
    p = -vol * (s_def - s_perf)
    p = 0.5 * (p + p.T)
    dip = ElasticDipole(Estimate(p, "eV"), defect=defect_name, host=host,
                        supercell_atoms=len(perfect), volume_A3=vol,
                        provenance={"method": "residual stress at fixed cell, P = -V Δσ",
                                    "fmax_eV_per_A": fmax, "max_force_eV_per_A": fnow,
                                    "n_atoms_defect": len(defect), **(provenance or {})})
    if elastic is not None:
        strain = dip.cell_strain(elastic)
        if strain > max_cell_strain:
            raise InputError("supercell", f"{len(perfect)} atoms ({vol:.1f} Å³)",
                             f"a supercell the defect strains by at most {max_cell_strain:g} "
                             f"(this one by {strain:.3g}: the linear-elastic finite-size "
                             "correction does not hold)",
                             hint="repeat the perfect cell further")
    return dip


def dipole_convergence(dipoles: Sequence[ElasticDipole]) -> dict:
    """The dipole's convergence with supercell volume: fits ``P(V) = P_inf + A / V`` per
    component to two or more dipoles of one defect in growing supercells.

    Returns ``{"P_inf": 3x3 eV, "A": 3x3 eV Å³, "volumes": [...], "P": [...],
    "max_change_last_eV": largest component change between the two largest cells}``.
    """
    ds = list(dipoles)
    if len(ds) < 2:
        raise InputError("dipoles", len(ds), "two or more dipoles of one defect in different "
                         "supercells")
    vols = np.array([d.volume_A3 for d in ds])
    if len(set(np.round(vols, 6))) < len(vols):
        raise InputError("dipoles", vols.tolist(), "supercells of different volumes")
    order = np.argsort(vols)
    vols = vols[order]
    ps = np.array([np.asarray(ds[k].tensor.value) for k in order])
    X = np.column_stack([np.ones_like(vols), 1.0 / vols])
    coef, *_ = np.linalg.lstsq(X, ps.reshape(len(vols), 9), rcond=None)
    return {"P_inf": coef[0].reshape(3, 3), "A": coef[1].reshape(3, 3), "volumes": vols.tolist(),
            "P": ps.tolist(),
            "max_change_last_eV": float(np.abs(ps[-1] - ps[-2]).max())}
