"""Flexible water models for :class:`.forcefield.FixedChargeForceField`, and water builders.

Models (``WATER_MODELS``; energies converted with ASE's ``kcal/mol``, harmonic terms written as
``1/2 k (x - x0)^2``):

``"spc/fw"``
    SPC/Fw, Y. Wu, H. L. Tepper and G. A. Voth, J. Chem. Phys. 124, 024503 (2006), Table I:
    q_O = -0.82 e, q_H = +0.41 e; sigma_OO = 3.165492 Å, epsilon_OO = 0.1554253 kcal/mol
    (no LJ on H); k_b = 1059.162 kcal/mol/Å², r_OH0 = 1.012 Å; k_theta = 75.90
    kcal/mol/rad², theta_HOH0 = 113.24°.  (Their potential is ``k_b/2 (r - r0)^2 + k_theta/2
    (theta - theta0)^2``, as here.)
``"tip3p-flex"``
    TIP3P nonbonded parameters, W. L. Jorgensen, J. Chandrasekhar, J. D. Madura, R. W. Impey
    and M. L. Klein, J. Chem. Phys. 79, 926 (1983): q_O = -0.834 e, q_H = +0.417 e,
    sigma_OO = 3.15061 Å, epsilon_OO = 0.1521 kcal/mol (no LJ on H), r_OH = 0.9572 Å,
    theta_HOH = 104.52°; with the flexible bond and angle of CHARMM22
    (``par_all22_prot.inp``: HT-OT K_b = 450.0 kcal/mol/Å², HT-OT-HT K_theta = 55.0
    kcal/mol/rad² in CHARMM's ``K (x - x0)^2`` form, i.e. k_b = 900.0 and k_theta = 110.0 in
    the ``1/2 k`` form used here).

Builders: :func:`water_molecule`, :func:`water_cluster` (open, roughly spherical) and
:func:`water_box` (cubic, periodic).  Atoms are ordered O, H, H per molecule, which
:func:`water_forcefield` expects.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ase import Atoms, units

from ..core import validate
from ..core.errors import CalculationError, InputError
from .forcefield import FixedChargeForceField

__all__ = ["WaterModel", "WATER_MODELS", "water_forcefield", "water_molecule", "water_cluster",
           "water_box"]

_KCAL = units.kcal / units.mol        # eV per kcal/mol

#: Mass of one water molecule, g/mol (ASE's standard atomic masses).
_WATER_G_MOL = float(Atoms("OH2").get_masses().sum())


@dataclass(frozen=True)
class WaterModel:
    """Parameters of a flexible three-site water model (eV, Å, e, rad).

    Attributes
    ----------
    name : str
    q_O, q_H : float
        Charges, e (``q_O + 2 q_H = 0``).
    sigma_O, epsilon_O : float
        Oxygen Lennard-Jones parameters, Å and eV (hydrogens carry none).
    k_bond, r0 : float
        O-H bond ``1/2 k_bond (r - r0)^2``: eV/Å², Å.
    k_angle, theta0 : float
        H-O-H angle ``1/2 k_angle (theta - theta0)^2``: eV/rad², rad.
    reference : str
    """

    name: str
    q_O: float
    q_H: float
    sigma_O: float
    epsilon_O: float
    k_bond: float
    r0: float
    k_angle: float
    theta0: float
    reference: str


WATER_MODELS = {
    "spc/fw": WaterModel(
        "spc/fw", q_O=-0.82, q_H=0.41, sigma_O=3.165492, epsilon_O=0.1554253 * _KCAL,
        k_bond=1059.162 * _KCAL, r0=1.012, k_angle=75.90 * _KCAL,
        theta0=math.radians(113.24),
        reference="Y. Wu, H. L. Tepper, G. A. Voth, J. Chem. Phys. 124, 024503 (2006)"),
    "tip3p-flex": WaterModel(
        "tip3p-flex", q_O=-0.834, q_H=0.417, sigma_O=3.15061, epsilon_O=0.1521 * _KCAL,
        k_bond=2.0 * 450.0 * _KCAL, r0=0.9572, k_angle=2.0 * 55.0 * _KCAL,
        theta0=math.radians(104.52),
        reference="W. L. Jorgensen et al., J. Chem. Phys. 79, 926 (1983) (nonbonded, "
                  "geometry); CHARMM22 par_all22_prot (HT-OT, HT-OT-HT force constants)"),
}


def _model(model: str) -> WaterModel:
    validate.one_of("model", model, WATER_MODELS)
    return WATER_MODELS[model]


def water_forcefield(atoms, model: str = "spc/fw", **kwargs) -> FixedChargeForceField:
    """A :class:`FixedChargeForceField` for pure water, atoms ordered O, H, H per molecule.

    Parameters
    ----------
    atoms : ase.Atoms
        ``3 m`` atoms, symbols ``O H H`` repeated (checked).
    model : str
        A key of :data:`WATER_MODELS`.
    **kwargs
        Passed to :class:`FixedChargeForceField` (``cutoff``, ``coulomb``, ``parallel``, ...).

    Returns
    -------
    FixedChargeForceField
        Two O-H bonds and one H-O-H angle per molecule; the intramolecular pairs are 1-2 and
        1-3 and hence excluded from the nonbonded sum.
    """
    m = _model(model)
    n = len(atoms)
    if n == 0 or n % 3:
        raise InputError("atoms", f"{n} atoms", "3 atoms (O, H, H) per water molecule")
    sym = atoms.get_chemical_symbols()
    for a in range(0, n, 3):
        if sym[a:a + 3] != ["O", "H", "H"]:
            raise InputError(f"atoms.symbols[{a}:{a + 3}]", sym[a:a + 3],
                             "['O', 'H', 'H'] (each molecule ordered O, H, H)")
    nm = n // 3
    q = np.tile([m.q_O, m.q_H, m.q_H], nm)
    eps = np.tile([m.epsilon_O, 0.0, 0.0], nm)
    sig = np.tile([m.sigma_O, 0.0, 0.0], nm)
    bonds = []
    angles = []
    for a in range(0, n, 3):
        bonds += [(a, a + 1, m.k_bond, m.r0), (a, a + 2, m.k_bond, m.r0)]
        angles.append((a + 1, a, a + 2, m.k_angle, m.theta0))
    return FixedChargeForceField(q, eps, sig, bonds=bonds, angles=angles, **kwargs)


def _molecule_positions(m: WaterModel) -> np.ndarray:
    """O at the origin, H in the xy plane symmetric about x, at the model's r0 and theta0."""
    h = 0.5 * m.theta0
    return np.array([[0.0, 0.0, 0.0],
                     [m.r0 * math.cos(h), m.r0 * math.sin(h), 0.0],
                     [m.r0 * math.cos(h), -m.r0 * math.sin(h), 0.0]])


def water_molecule(model: str = "spc/fw") -> Atoms:
    """One water molecule (O, H, H) at the model's equilibrium geometry, open boundaries.

    Returns
    -------
    ase.Atoms
        O at the origin, the H atoms in the xy plane at ``r0`` and angle ``theta0``.
    """
    return Atoms("OH2", positions=_molecule_positions(_model(model)))


def _random_rotation(rng) -> np.ndarray:
    """A uniformly distributed rotation matrix (from a random unit quaternion)."""
    a, b, c, d = rng.normal(size=4)
    s = math.sqrt(a * a + b * b + c * c + d * d)
    a, b, c, d = a / s, b / s, c / s, d / s
    return np.array([[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                     [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
                     [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d]])


def _place(sites, m: WaterModel, rng, min_distance: float, box: float | None,
           tries: int = 200) -> np.ndarray:
    """Put one randomly oriented molecule at each site, keeping intermolecular distances
    ``>= min_distance`` (minimum image in a cubic ``box``); returns positions (3 m, 3)."""
    mol = _molecule_positions(m)
    com = (mol * np.array([16.0, 1.0, 1.0])[:, None]).sum(0) / 18.0
    mol = mol - com
    out = np.empty((3 * len(sites), 3))
    for s, site in enumerate(sites):
        placed = out[:3 * s]
        for _ in range(tries):
            xyz = site + mol @ _random_rotation(rng).T
            if s == 0:
                break
            d = xyz[:, None, :] - placed[None, :, :]
            if box is not None:
                d -= box * np.round(d / box)
            if np.min(np.einsum("ijk,ijk->ij", d, d)) >= min_distance ** 2:
                break
        else:
            raise CalculationError(f"could not place water molecule {s} without an "
                                   f"intermolecular contact shorter than {min_distance} Å "
                                   f"in {tries} random orientations; lower the density or "
                                   "change the seed")
        out[3 * s:3 * s + 3] = xyz
    return out


def water_cluster(n_molecules: int, seed: int = 0, model: str = "spc/fw",
                  spacing: float = 3.1, min_distance: float = 1.6) -> Atoms:
    """A roughly spherical cluster of water molecules, open boundaries, deterministic.

    The molecules sit on the ``n_molecules`` sites of a simple cubic lattice (``spacing`` Å,
    ~1 g/cm³ at 3.1 Å) closest to the origin, each in a random orientation drawn from
    ``seed`` and redrawn until every intermolecular distance is at least ``min_distance`` Å.

    Parameters
    ----------
    n_molecules : int
        Number of molecules (>= 1).
    seed : int
        Seed of the orientations (same seed, same cluster).
    model : str
        Water model whose ``r0``, ``theta0`` shape the molecules.
    spacing : float
        Lattice spacing, Å (>= 2.5).
    min_distance : float
        Smallest intermolecular atom-atom distance, Å.

    Returns
    -------
    ase.Atoms
        ``3 n_molecules`` atoms ordered O, H, H per molecule, centred at the origin, no cell.
    """
    n = validate.positive_int("n_molecules", n_molecules)
    sp = validate.finite("spacing", spacing)
    if sp < 2.5:
        raise InputError("spacing", spacing, "a lattice spacing >= 2.5 Å")
    md = validate.positive("min_distance", min_distance)
    m = _model(model)
    k = int(math.ceil(n ** (1 / 3))) + 2
    g = np.arange(-k, k + 1)
    grid = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3).astype(float)
    # tie-break equal distances by lexicographic order for determinism
    order = np.lexsort((grid[:, 2], grid[:, 1], grid[:, 0], np.round(np.sum(grid ** 2, 1), 9)))
    sites = grid[order[:n]] * sp
    rng = np.random.default_rng(seed)
    pos = _place(sites, m, rng, md, None)
    return Atoms("OH2" * n, positions=pos - pos.mean(0))


def water_box(n_molecules: int, density_g_cm3: float = 0.997, seed: int = 0,
              model: str = "spc/fw", min_distance: float = 1.6) -> Atoms:
    """A cubic periodic box of water molecules on a lattice, random orientations.

    The box edge follows from ``n_molecules`` and the density; the molecules sit on a random
    (seeded) selection of the ``ceil(n^(1/3))^3`` sites of a simple cubic lattice filling the
    box, each randomly oriented, redrawn until every intermolecular distance (minimum image) is
    at least ``min_distance`` Å.  1000 molecules at 0.997 g/cm³: a 31.04 Å box, 3000 atoms.

    Parameters
    ----------
    n_molecules : int
        Number of molecules (>= 1).
    density_g_cm3 : float
        Mass density, g/cm³ (between 0.1 and 2).
    seed : int
        Seed of the site selection and the orientations.
    model : str
        Water model whose ``r0``, ``theta0`` shape the molecules.
    min_distance : float
        Smallest intermolecular atom-atom distance, Å.

    Returns
    -------
    ase.Atoms
        ``3 n_molecules`` atoms ordered O, H, H per molecule, cubic cell, ``pbc=True``.
    """
    n = validate.positive_int("n_molecules", n_molecules)
    rho = validate.in_range("density_g_cm3", density_g_cm3, 0.1, 2.0)
    md = validate.positive("min_distance", min_distance)
    m = _model(model)
    mass_g = n * _WATER_G_MOL / units._Nav
    box = (mass_g / rho) ** (1 / 3) * 1e8            # cm -> Å
    k = int(math.ceil(n ** (1 / 3) - 1e-9))
    g = (np.arange(k) + 0.5) * (box / k)
    grid = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    rng = np.random.default_rng(seed)
    sites = grid[np.sort(rng.choice(len(grid), size=n, replace=False))]
    pos = _place(sites, m, rng, md, box)
    atoms = Atoms("OH2" * n, positions=pos, cell=[box, box, box], pbc=True)
    return atoms
