"""Force mixing and energy mixing across a hand-shake region, ghost forces, stadium thermostat.

Two concurrent couplings of a fine ("QM") and a coarse ("MM") calculator on one system, both ASE
calculators that wrap calculators:

* :class:`ForceMixing` -- every atom gets ``F_i = lambda_i F_i^QM + (1 - lambda_i) F_i^MM``.  The
  QM forces come from one QM calculation on a *cluster*: the atoms with ``lambda > 0`` plus a
  buffer of width ``buffer_width`` around them, carved from the system (same cell and
  periodicity, only the cluster atoms; or an open cluster).  The MM forces come from the MM
  calculator on the whole system.  No energy has these forces as its gradient: asking for the
  energy raises :class:`~scaleladder.core.errors.PropertyNotImplementedError` (ASE's
  ``ForceQMMM`` returns ``energy = 0``; a fake number is worse than none).
* :class:`EnergyMixing` -- conservative: ``E = sum_i [lambda_i eps_i^QM + (1 - lambda_i)
  eps_i^MM]`` from per-atom energies (QM ones from the same cluster), forces the exact ``-grad
  E``.  ``lambda_i`` is a label of atom ``i`` (fixed when the regions are selected), so ``E`` has
  no ``d lambda / d r`` term.  With ``ghost_force_correction=True`` the forces the scheme puts on
  the reference configuration are subtracted as a dead load (Shenoy, Miller, Tadmor, Rodney,
  Phillips & Ortiz, J. Mech. Phys. Solids 47, 611 (1999)):
  ``E_corr = E + sum_i g_i . (r_i - r_i^ref)``, still conservative, zero force on the reference.

The regions (:class:`MixingRegions`, :func:`mixing_regions`): a distance ``d_i`` of every atom to
the QM region (to the nearest atom of ``qm_indices``, or ``max(0, |r_i - qm_centre| -
qm_radius)``, minimum image), ``lambda_i = 1`` where ``d_i = 0``; beyond, ``lambda = 0``
(``blend="abrupt"``) or the cosine ramp ``lambda(d) = (1 + cos(pi d / w)) / 2`` for ``d < w``
(``blend="smooth"``, ``w = transition_width``).  The QM cluster adds every atom within
``buffer_width`` of an atom with ``lambda > 0``.  They are selected once, on the first
configuration the calculator sees (or on ``reference_atoms``), and kept: a label per atom, not a
function of the moving positions.  ``calc.select_regions(atoms)`` selects them anew.

Ghost forces (:func:`ghost_forces`) are the forces a coupling puts on a configuration in which
both models are in equilibrium -- a perfect crystal where QM and MM are the same pair potential
with different energy scales has none of its own, so every force the coupling reports there is
an artifact of the hand-shake.  Force mixing with an abrupt ``lambda`` has them on the QM atoms
near the cluster surface, whose QM environment is cut short; they vanish once the buffer reaches
the QM potential's interaction range (for a pair potential its cutoff; for a many-body potential
the range of the force, twice the cutoff).  Energy mixing has them wherever the weights of an
atom's bonds differ, buffer or not; the dead-load correction removes them on the reference.

:func:`stadium_langevin` is the stadium thermostat: ASE's Langevin integrator with a per-atom
friction (zero off the thermostatted shell, where it is plain velocity Verlet); see
:func:`stadium_friction` for a ramped profile and :func:`region_temperature` for the kinetic
temperature of a region.

Exactness of energy mixing (what the calculators must provide)
--------------------------------------------------------------
A calculator returns ``-grad`` of its *total* energy, not of a weighted sum of its per-atom
energies.  For a pairwise-additive potential (``eps_i = 1/2 sum_j phi(r_ij)``) the per-atom energy
sum over a set ``A`` of a system ``S`` is ``sum_{i in A} eps_i = [E(S) + E(A) - E(S \\ A)] / 2``
(pairs inside ``A`` count fully, pairs across the border half), so its gradient is the same
combination of three force calls.  Writing ``sum_i lambda_i eps_i`` as a layer cake over the
distinct lambda levels ``l_1 > ... > l_K > 0`` (``A_k = {lambda >= l_k}``, ``l_{K+1} = 0``)::

    sum_i lambda_i eps_i = sum_k (l_k - l_{k+1}) sum_{i in A_k} eps_i

gives the exact forces from ``2 K + 1`` calls per calculator (``K = 1`` for abrupt lambda).  Each
call's per-atom energies are checked against the identity at every evaluation: a calculator that
is not pairwise additive (Stillinger-Weber, Tersoff, EAM) is refused with an ``InputError``
naming it instead of returning forces that are not the gradient of the energy.  The sub-system
calculators are deep copies of the ones given, each with its own persistent neighbour list.

Units: Å, eV, eV/Å; time fs and friction 1/fs in the thermostat; temperature K.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes

from ..core import validate
from ..core.errors import InputError, PropertyNotImplementedError

__all__ = ["ForceMixing", "EnergyMixing", "MixingRegions", "mixing_regions", "ghost_forces",
           "stadium_langevin", "stadium_friction", "region_temperature"]

_BLENDS = ("abrupt", "smooth")
_CLUSTERS = ("carve", "open")

#: lambda values closer than this are one level of the layer cake (atoms of one shell).
_LEVEL_TOL = 1e-9

#: relative tolerance of the pairwise-additivity check of per-atom energies.
_PAIRWISE_RTOL = 1e-9


# --------------------------------------------------------------------------------------------
# regions
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MixingRegions:
    """The regions of a mixing coupling, selected on one configuration (labels per atom).

    The arrays are read-only.

    Attributes
    ----------
    lam : numpy.ndarray, shape (n,)
        Mixing weight ``lambda_i`` in ``[0, 1]``: 1 in the QM region, 0 in the MM region.
    distance : numpy.ndarray, shape (n,)
        Distance of each atom to the QM region, Å (0 inside; minimum image).
    cluster_mask : numpy.ndarray of bool, shape (n,)
        The atoms of the QM cluster: ``lambda > 0`` plus the buffer.
    buffer_width : float
        Buffer width used for the cluster, Å.
    transition_width : float
        Width of the lambda ramp, Å (0 for an abrupt lambda).
    """

    lam: np.ndarray
    distance: np.ndarray
    cluster_mask: np.ndarray
    buffer_width: float
    transition_width: float

    @property
    def n_atoms(self) -> int:
        """Number of atoms of the system."""
        return int(self.lam.size)

    @property
    def qm_mask(self) -> np.ndarray:
        """Atoms of the QM region proper (``lambda == 1``)."""
        return self.lam == 1.0

    @property
    def weighted_mask(self) -> np.ndarray:
        """Atoms that carry any QM weight (``lambda > 0``)."""
        return self.lam > 0.0

    @property
    def transition_mask(self) -> np.ndarray:
        """Atoms of the lambda ramp (``0 < lambda < 1``)."""
        return (self.lam > 0.0) & (self.lam < 1.0)

    @property
    def buffer_mask(self) -> np.ndarray:
        """Cluster atoms with no QM weight (``lambda == 0``): the buffer proper."""
        return self.cluster_mask & (self.lam == 0.0)

    @property
    def handshake_mask(self) -> np.ndarray:
        """The hand-shake shell: cluster atoms with ``lambda < 1`` (ramp and buffer)."""
        return self.cluster_mask & (self.lam < 1.0)

    @property
    def cluster_indices(self) -> np.ndarray:
        """Indices of the QM cluster, ascending."""
        return np.flatnonzero(self.cluster_mask)

    @property
    def levels(self) -> np.ndarray:
        """The distinct positive lambda values, descending (the layer-cake levels)."""
        return np.unique(self.lam[self.lam > 0.0])[::-1]


def _check_blend(blend: Any, transition_width: Any) -> tuple[str, float]:
    blend = validate.one_of("blend", blend, _BLENDS)
    if transition_width is None:
        if blend == "smooth":
            raise InputError("transition_width", None, "a positive width in Å for "
                             "blend='smooth' (the cosine ramp of lambda from 1 to 0)")
        return blend, 0.0
    w = validate.nonnegative("transition_width", transition_width)
    if blend == "smooth" and w == 0.0:
        raise InputError("transition_width", transition_width, "a positive width in Å for "
                         "blend='smooth'", hint="use blend='abrupt' for a step in lambda")
    if blend == "abrupt" and w > 0.0:
        raise InputError("transition_width", transition_width, "0 or None with blend='abrupt'",
                         hint="use blend='smooth' for a ramp")
    return blend, w


def _check_selection(qm_indices, qm_centre, qm_radius):
    """Validated ``(indices or None, centre or None, radius or None)``."""
    if qm_indices is not None and (qm_centre is not None or qm_radius is not None):
        raise InputError("qm_centre", qm_centre, "either qm_indices or qm_centre + qm_radius, "
                         "not both (two overlapping selections of the QM region)")
    if qm_indices is not None:
        if isinstance(qm_indices, (str, bytes)):
            raise InputError("qm_indices", qm_indices, "a sequence of atom indices")
        arr = np.asarray(qm_indices)
        if arr.dtype == bool:
            arr = np.flatnonzero(arr)
        if arr.ndim != 1 or arr.size == 0:
            raise InputError("qm_indices", qm_indices, "at least one atom index (the QM region "
                             "must not be empty)")
        if not np.issubdtype(arr.dtype, np.integer):
            raise InputError("qm_indices", qm_indices, "integer atom indices")
        if np.any(arr < 0):
            raise InputError("qm_indices", qm_indices, "non-negative atom indices")
        uniq, counts = np.unique(arr, return_counts=True)
        if np.any(counts > 1):
            raise InputError("qm_indices", qm_indices, "each atom at most once",
                             hint=f"repeated: {uniq[counts > 1].tolist()}")
        return arr.astype(np.int64), None, None
    if qm_centre is None or qm_radius is None:
        raise InputError("qm_indices", None, "the QM region: qm_indices, or qm_centre (Å) and "
                         "qm_radius (Å)")
    centre = validate.finite_array("qm_centre", qm_centre, (3,))
    radius = validate.nonnegative("qm_radius", qm_radius)
    return None, centre, radius


def _nearest_distances(sources: np.ndarray, positions: np.ndarray, cell, pbc) -> np.ndarray:
    """Minimum-image distance of every position to the nearest of ``sources``, Å."""
    from ase.geometry import get_distances

    best = np.full(len(positions), np.inf)
    for s in range(0, len(sources), 128):
        _, D = get_distances(sources[s:s + 128], positions, cell=cell, pbc=pbc)
        best = np.minimum(best, D.min(axis=0))
    return best


def _snap_levels(lam: np.ndarray) -> np.ndarray:
    """Merge lambda values closer than ``_LEVEL_TOL`` (atoms of one shell) into one level."""
    out = lam.copy()
    pos = np.flatnonzero((lam > 0.0) & (lam < 1.0))
    if pos.size == 0:
        return out
    order = pos[np.argsort(lam[pos])]
    start = 0
    for k in range(1, order.size + 1):
        if k == order.size or lam[order[k]] - lam[order[k - 1]] > _LEVEL_TOL:
            group = order[start:k]
            out[group] = lam[group].mean()
            start = k
    return out


def mixing_regions(atoms: Atoms, *, qm_indices: Sequence[int] | None = None,
                   qm_centre: Sequence[float] | None = None, qm_radius: float | None = None,
                   buffer_width: float = 0.0, blend: str = "abrupt",
                   transition_width: float | None = None) -> MixingRegions:
    """Select lambda, the QM cluster and the hand-shake shell on a configuration.

    Parameters
    ----------
    atoms : ase.Atoms
        The configuration the labels are taken from.
    qm_indices : sequence of int, optional
        The QM region as atom indices (each once); distances are to the nearest of them.
    qm_centre : three floats, optional
        Centre of a spherical QM region, Å (with ``qm_radius``; not with ``qm_indices``).
    qm_radius : float, optional
        Radius of the spherical QM region, Å (>= 0); it must contain at least one atom.
    buffer_width : float
        Width of the buffer added around the atoms with ``lambda > 0`` to form the QM cluster,
        Å (>= 0).
    blend : {"abrupt", "smooth"}
        Step or cosine ramp of lambda outside the QM region.
    transition_width : float, optional
        Width of the ramp, Å (> 0 for ``"smooth"``; 0 or ``None`` for ``"abrupt"``).

    Returns
    -------
    MixingRegions

    Raises
    ------
    InputError
        Naming the field: an empty QM region, repeated or out-of-range indices, both selections
        given, a negative buffer or transition width, an unknown blend.
    """
    if not isinstance(atoms, Atoms):
        raise InputError("atoms", type(atoms).__name__, "an ase.Atoms")
    buffer_width = validate.nonnegative("buffer_width", buffer_width)
    blend, w = _check_blend(blend, transition_width)
    idx, centre, radius = _check_selection(qm_indices, qm_centre, qm_radius)
    n = len(atoms)
    pos = atoms.get_positions()
    cell, pbc = atoms.cell, atoms.pbc
    if idx is not None:
        if np.any(idx >= n):
            raise InputError("qm_indices", idx.tolist(), f"indices in [0, {n}) (the system has "
                             f"{n} atoms)")
        dist = _nearest_distances(pos[idx], pos, cell, pbc)
        dist[idx] = 0.0
    else:
        dist = np.maximum(_nearest_distances(centre[None, :], pos, cell, pbc) - radius, 0.0)
        if not np.any(dist == 0.0):
            raise InputError("qm_radius", radius, "a radius that contains at least one atom "
                             "(the QM region must not be empty)",
                             hint=f"the nearest atom is {dist.min() + radius:.4g} Å from "
                                  "qm_centre")
    if blend == "abrupt":
        lam = (dist == 0.0).astype(float)
    else:
        lam = np.where(dist < w, 0.5 * (1.0 + np.cos(np.pi * np.minimum(dist, w) / w)), 0.0)
        lam[dist == 0.0] = 1.0
        lam = _snap_levels(lam)
    weighted = lam > 0.0
    if buffer_width > 0.0:
        to_weighted = _nearest_distances(pos[weighted], pos, cell, pbc)
        cluster = weighted | (to_weighted <= buffer_width)
    else:
        cluster = weighted.copy()
    for arr in (lam, dist, cluster):
        arr.setflags(write=False)
    return MixingRegions(lam=lam, distance=dist, cluster_mask=cluster,
                         buffer_width=buffer_width, transition_width=w)


# --------------------------------------------------------------------------------------------
# sub-systems
# --------------------------------------------------------------------------------------------
@dataclass
class _Part:
    """One sub-system (a set of atoms of the full system) and the calculator evaluating it."""

    indices: np.ndarray
    calc: Any
    atoms: Atoms | None = field(default=None)

    def evaluate(self, atoms: Atoms, positions: np.ndarray, pbc, energies: bool):
        """Energy, per-atom energies (or None) and forces of this sub-system, eV and eV/Å."""
        if self.atoms is None:
            sub = atoms[self.indices]
            sub.constraints = []
            sub.calc = None
            self.atoms = sub
        sub = self.atoms
        sub.set_positions(positions[self.indices])
        sub.set_cell(atoms.cell)
        sub.set_pbc(pbc)
        if not energies:
            return None, None, np.asarray(self.calc.get_forces(sub), dtype=float)
        # one direct evaluation (no cache bookkeeping: each part's configuration is new)
        self.calc.calculate(sub, ["energy", "energies", "forces"], all_changes)
        res = self.calc.results
        return (float(res["energy"]), np.asarray(res["energies"], dtype=float),
                np.asarray(res["forces"], dtype=float))


def _has_energies(calc) -> bool:
    return "energies" in getattr(calc, "implemented_properties", ())


def _check_calc(field_name: str, calc) -> None:
    if not isinstance(calc, Calculator) and not hasattr(calc, "get_forces"):
        raise InputError(field_name, type(calc).__name__, "an ASE calculator")


# --------------------------------------------------------------------------------------------
# the calculators
# --------------------------------------------------------------------------------------------
class _MixingCalculator(Calculator):
    """Shared machinery: validated regions, the cluster and the diagnostics."""

    nolabel = True
    _scheme = ""

    def __init__(self, qm_calc, mm_calc, *, qm_indices=None, qm_centre=None, qm_radius=None,
                 buffer_width: float = 0.0, blend: str = "abrupt",
                 transition_width: float | None = None, cluster: str = "carve",
                 reference_atoms: Atoms | None = None, **kwargs):
        _check_calc("qm_calc", qm_calc)
        _check_calc("mm_calc", mm_calc)
        self.qm_calc = qm_calc
        self.mm_calc = mm_calc
        self.buffer_width = validate.nonnegative("buffer_width", buffer_width)
        self.blend, self.transition_width = _check_blend(blend, transition_width)
        self._selection = _check_selection(qm_indices, qm_centre, qm_radius)
        self.cluster = validate.one_of("cluster", cluster, _CLUSTERS)
        if reference_atoms is not None and not isinstance(reference_atoms, Atoms):
            raise InputError("reference_atoms", type(reference_atoms).__name__, "an ase.Atoms")
        self.reference_atoms = None if reference_atoms is None else reference_atoms.copy()
        self._regions: MixingRegions | None = None
        super().__init__(**kwargs)

    # -- regions ---------------------------------------------------------------------------
    @property
    def regions(self) -> MixingRegions | None:
        """The selected regions (``None`` until the first calculation or
        :meth:`select_regions`)."""
        return self._regions

    def select_regions(self, atoms: Atoms) -> MixingRegions:
        """Select lambda, the cluster and the hand-shake shell on ``atoms`` and keep them."""
        idx, centre, radius = self._selection
        self._regions = mixing_regions(atoms, qm_indices=idx, qm_centre=centre,
                                       qm_radius=radius, buffer_width=self.buffer_width,
                                       blend=self.blend,
                                       transition_width=self.transition_width or None)
        if self.cluster == "open" and np.any(atoms.pbc):
            self._check_open_cluster(atoms)
        self._on_new_regions()
        self.reset()
        return self._regions

    def _on_new_regions(self) -> None:
        """Drop whatever was built for the previous regions (subclasses)."""

    def _ensure_regions(self, atoms: Atoms) -> MixingRegions:
        if self._regions is None:
            self.select_regions(self.reference_atoms if self.reference_atoms is not None
                                else atoms)
        if len(atoms) != self._regions.n_atoms:
            raise InputError("atoms", f"{len(atoms)} atoms", f"{self._regions.n_atoms} atoms, "
                             "like the configuration the regions were selected on",
                             hint="call select_regions(atoms) for a new system")
        return self._regions

    # -- geometry of the QM cluster ---------------------------------------------------------
    def _qm_positions(self, atoms: Atoms) -> tuple[np.ndarray, Any]:
        """Positions and periodicity for the QM sub-systems (an open cluster is unwrapped)."""
        pos = atoms.get_positions()
        if self.cluster == "carve" or not np.any(atoms.pbc):
            return pos, atoms.pbc
        from ase.geometry import find_mic

        idx, centre, _ = self._selection
        anchor = centre if centre is not None else pos[idx[0]]
        vec, _ = find_mic(pos - anchor, atoms.cell, atoms.pbc)
        return anchor + vec, np.zeros(3, dtype=bool)

    def _check_open_cluster(self, atoms: Atoms) -> None:
        """Refuse an open cluster that cannot hold, unwrapped, every pair within the buffer
        width of an atom with ``lambda > 0`` at its periodic (minimum-image) separation."""
        from ase.geometry import get_distances

        r = self._regions
        pos, _ = self._qm_positions(atoms)
        members = r.cluster_indices
        for i in np.flatnonzero(r.weighted_mask):
            _, d_mic = get_distances(pos[i:i + 1], pos[members], cell=atoms.cell,
                                     pbc=atoms.pbc)
            d_open = np.linalg.norm(pos[members] - pos[i], axis=1)
            near = d_mic[0] <= r.buffer_width
            if np.any(np.abs(d_open[near] - d_mic[0][near]) > 1e-8):
                extent = float(np.max(np.linalg.norm(pos[members] - pos[members].mean(axis=0),
                                                     axis=1)))
                raise InputError("cluster", "open", "a QM cluster that fits in the cell "
                                 "unwrapped (every pair within buffer_width of a QM-weighted "
                                 "atom at its periodic separation)",
                                 hint=f"the cluster reaches {extent:.3g} Å from its centre, too "
                                      "far for this cell; use cluster='carve' or a larger cell")

    # -- properties that do not exist -------------------------------------------------------
    def get_property(self, name, atoms=None, allow_calculation=True):
        if name not in self.implemented_properties:
            raise PropertyNotImplementedError(self._missing(name))
        return super().get_property(name, atoms, allow_calculation)

    def _missing(self, name: str) -> str:
        return (f"{self._scheme} does not provide {name!r} (it provides "
                f"{', '.join(self.implemented_properties)})")

    def _diagnostics(self, regions: MixingRegions, forces: np.ndarray) -> dict:
        return {"lambda": regions.lam.copy(),
                "qm_cluster_size": int(np.count_nonzero(regions.cluster_mask)),
                "net_force": forces.sum(axis=0)}


class ForceMixing(_MixingCalculator):
    """Force mixing: ``F_i = lambda_i F_i^QM(cluster) + (1 - lambda_i) F_i^MM(system)``.

    Not conservative: there is no total energy whose gradient these forces are, so the energy
    (and stress, per-atom energies) raise
    :class:`~scaleladder.core.errors.PropertyNotImplementedError`.  Neither is momentum
    conserved: the net force ``sum_i F_i`` is reported (``results["net_force"]``, eV/Å).

    Parameters
    ----------
    qm_calc : ase.calculators.calculator.Calculator
        The fine model; called once per step on the QM cluster (forces only).
    mm_calc : ase.calculators.calculator.Calculator
        The coarse model; called once per step on the whole system.
    qm_indices : sequence of int, optional
        The QM region (atom indices, each once).
    qm_centre, qm_radius : three floats and float, optional
        Or a spherical QM region, Å (not with ``qm_indices``).
    buffer_width : float
        Buffer around the atoms with ``lambda > 0`` included in the QM cluster, Å (>= 0).  QM
        forces on the QM atoms are those of the full system once it reaches the QM
        potential's force range.
    blend : {"abrupt", "smooth"}
        ``lambda`` a step (1 in the QM region, 0 outside) or a cosine ramp.
    transition_width : float, optional
        Width of the cosine ramp, Å (``blend="smooth"``).
    cluster : {"carve", "open"}
        ``"carve"``: the cluster atoms in the system's cell with its periodicity (an open
        system gives an open cluster); ``"open"``: the cluster unwrapped around the QM region
        (minimum image) with no periodicity, e.g. for a molecular QM code on a periodic
        system.  Hydrogen termination of cut covalent bonds is not done here.
    reference_atoms : ase.Atoms, optional
        Configuration to select the regions on; default the first one calculated.
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator`.

    Notes
    -----
    Results: ``forces`` (eV/Å), ``lambda`` (per atom), ``qm_cluster_size`` (atoms),
    ``net_force`` (eV/Å, shape (3,)), ``qm_forces_cluster`` (the QM forces on the cluster
    atoms, eV/Å, in cluster order; see :attr:`regions` ``.cluster_indices``).
    """

    implemented_properties = ["forces"]
    _scheme = "force mixing"

    def __init__(self, qm_calc, mm_calc, *, qm_indices=None, qm_centre=None, qm_radius=None,
                 buffer_width: float = 0.0, blend: str = "abrupt",
                 transition_width: float | None = None, cluster: str = "carve",
                 reference_atoms: Atoms | None = None, **kwargs):
        super().__init__(qm_calc, mm_calc, qm_indices=qm_indices, qm_centre=qm_centre,
                         qm_radius=qm_radius, buffer_width=buffer_width, blend=blend,
                         transition_width=transition_width, cluster=cluster,
                         reference_atoms=reference_atoms, **kwargs)
        self._qm_part: _Part | None = None

    def _on_new_regions(self) -> None:
        self._qm_part = _Part(self._regions.cluster_indices, self.qm_calc)

    def _missing(self, name: str) -> str:
        if name in ("energy", "free_energy", "energies"):
            return (f"force mixing is not conservative: no energy has its forces as gradient, "
                    f"so it has no {name!r}; use EnergyMixing for a conservative coupling")
        return super()._missing(name)

    def calculate(self, atoms=None, properties=("forces",), system_changes=all_changes):
        """Mixed forces and the diagnostics (see the class notes)."""
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        regions = self._ensure_regions(a)
        pos, pbc = self._qm_positions(a)
        _, _, f_qm = self._qm_part.evaluate(a, pos, pbc, energies=False)
        f_mm = np.asarray(self.mm_calc.get_forces(_plain_copy(a)), dtype=float)
        lam = regions.lam[:, None]
        forces = (1.0 - lam) * f_mm
        idx = regions.cluster_indices
        forces[idx] += lam[idx] * f_qm
        self.results = {"forces": forces, "qm_forces_cluster": f_qm,
                        **self._diagnostics(regions, forces)}


def _plain_copy(atoms: Atoms) -> Atoms:
    """The configuration without calculator or constraints (what a wrapped model sees)."""
    out = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell,
                pbc=atoms.pbc, masses=atoms.get_masses())
    for name in ("initial_magmoms", "initial_charges"):
        if name in atoms.arrays:
            out.arrays[name] = atoms.arrays[name].copy()
    return out


class EnergyMixing(_MixingCalculator):
    """Conservative energy mixing of per-atom energies, optionally ghost-force corrected.

    ``E = sum_i [lambda_i eps_i^QM + (1 - lambda_i) eps_i^MM]``: the QM per-atom energies from
    the QM cluster (QM region, ramp and buffer), the MM ones from the whole system; ``lambda``
    is fixed per atom, the forces are the exact ``-grad E`` (see the module notes: pairwise
    potentials, checked at every call).  With ``ghost_force_correction=True``::

        E_corr = E + sum_i g_i . (r_i - r_i^ref),    F_corr = F - g

    where ``g`` are the uncorrected forces on the reference configuration (``reference_atoms``,
    or the first configuration calculated) and ``r_i - r_i^ref`` the minimum-image displacement.

    Parameters
    ----------
    qm_calc, mm_calc : ase.calculators.calculator.Calculator
        Pairwise-additive calculators with per-atom energies (``"energies"`` in
        ``implemented_properties``: :class:`scaleladder.atomistic.LennardJones`,
        :class:`~scaleladder.atomistic.Morse`, ASE's ``LennardJones``).  Deep copies evaluate
        the sub-systems.
    qm_indices, qm_centre, qm_radius, buffer_width, blend, transition_width, cluster
        As in :class:`ForceMixing`.
    ghost_force_correction : bool
        Subtract the reference configuration's forces as a dead load (default True).
    reference_atoms : ase.Atoms, optional
        The reference (undeformed) configuration: regions and dead load are taken from it.
        Default: the first configuration calculated.
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator`.

    Notes
    -----
    Results: ``energy``, ``free_energy`` (eV), ``energies`` (eV per atom: ``lambda eps^QM +
    (1 - lambda) eps^MM + g . u``, summing to ``energy``), ``forces`` (eV/Å), ``lambda``,
    ``qm_cluster_size``, ``net_force`` (eV/Å), ``dead_load_energy`` (eV, ``sum g . u``).
    Each evaluation makes ``2 K + 1`` calls per calculator, ``K`` the number of distinct
    positive lambda values (1 for abrupt lambda; one per shell of atoms in the ramp).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces"]
    _scheme = "energy mixing"

    def __init__(self, qm_calc, mm_calc, *, qm_indices=None, qm_centre=None, qm_radius=None,
                 buffer_width: float = 0.0, blend: str = "abrupt",
                 transition_width: float | None = None, cluster: str = "carve",
                 ghost_force_correction: bool = True, reference_atoms: Atoms | None = None,
                 **kwargs):
        for name, calc in (("qm_calc", qm_calc), ("mm_calc", mm_calc)):
            if not _has_energies(calc):
                raise InputError(name, type(calc).__name__, "a calculator with per-atom "
                                 "energies ('energies' in implemented_properties), e.g. "
                                 "scaleladder.atomistic.LennardJones or Morse",
                                 hint="energy mixing weighs per-atom energies; use ForceMixing "
                                      "for a forces-only model")
        if not isinstance(ghost_force_correction, (bool, np.bool_)):
            raise InputError("ghost_force_correction", ghost_force_correction, "True or False")
        self.ghost_force_correction = bool(ghost_force_correction)
        super().__init__(qm_calc, mm_calc, qm_indices=qm_indices, qm_centre=qm_centre,
                         qm_radius=qm_radius, buffer_width=buffer_width, blend=blend,
                         transition_width=transition_width, cluster=cluster,
                         reference_atoms=reference_atoms, **kwargs)
        self._parts: dict | None = None
        self._dead_load: np.ndarray | None = None
        self._ref_positions: np.ndarray | None = None

    def _on_new_regions(self) -> None:
        r = self._regions
        n = r.n_atoms
        cluster = r.cluster_indices
        everyone = np.arange(n)
        qm = {"system": _Part(cluster, self.qm_calc), "levels": []}
        mm = {"system": _Part(everyone, self.mm_calc), "levels": []}
        for level in r.levels:
            inside = r.lam >= level - 0.5 * _LEVEL_TOL
            qm["levels"].append((_Part(np.flatnonzero(inside), self._copy("qm_calc")),
                                 _Part(np.flatnonzero(r.cluster_mask & ~inside),
                                       self._copy("qm_calc"))))
            mm["levels"].append((_Part(np.flatnonzero(inside), self._copy("mm_calc")),
                                 _Part(np.flatnonzero(~inside), self._copy("mm_calc"))))
        self._parts = {"qm": qm, "mm": mm}
        self._dead_load = None
        self._ref_positions = None

    def _copy(self, name: str):
        try:
            return copy.deepcopy(getattr(self, name))
        except Exception as exc:  # noqa: BLE001 - any failure to copy is the same input problem
            raise InputError(name, type(getattr(self, name)).__name__, "a calculator that "
                             "copy.deepcopy can copy (energy mixing evaluates it on several "
                             "sub-systems)") from exc

    def _weighted_sum(self, side: str, atoms: Atoms, positions, pbc, weight_sign: float):
        """``sum_k dl_k sum_{i in A_k} eps_i`` and its gradient, with the additivity check.

        Returns ``(per-atom energies of the side's system (n,), weighted energy, weighted
        forces (n, 3))``; ``weight_sign`` is folded into the weighted parts.
        """
        r = self._regions
        n = r.n_atoms
        parts = self._parts[side]
        system = parts["system"]
        e_sys, eps_sys, f_sys = system.evaluate(atoms, positions, pbc, energies=True)
        eps_full = np.zeros(n)
        eps_full[system.indices] = eps_sys
        levels = r.levels
        nxt = np.append(levels[1:], 0.0)
        e_w = 0.0
        f_w = np.zeros((n, 3))
        name = "qm_calc" if side == "qm" else "mm_calc"
        scale = float(np.sum(np.abs(eps_sys))) + 1e-300
        for level, below, (inner, outer) in zip(levels, nxt, parts["levels"]):
            dl = float(level - below)
            e_in, eps_in, f_in = _evaluate_or_empty(inner, atoms, positions, pbc)
            e_out, _, f_out = _evaluate_or_empty(outer, atoms, positions, pbc)
            s = 0.5 * (e_sys + e_in - e_out)
            direct = float(np.sum(eps_full[inner.indices]))
            if abs(s - direct) > _PAIRWISE_RTOL * scale:
                raise InputError(name, type(getattr(self, name)).__name__,
                                 "a pairwise-additive potential with per-atom energies "
                                 "(LennardJones, Morse)",
                                 hint=f"its per-atom energies over a sub-set differ from the "
                                      f"pair identity by {abs(s - direct):.3g} eV: a many-body "
                                      "potential, whose weighted energy has no exact forces "
                                      "from total-energy calls; use ForceMixing")
            e_w += dl * s
            g = np.zeros((n, 3))
            g[system.indices] += f_sys
            if f_in is not None:
                g[inner.indices] += f_in
            if f_out is not None:
                g[outer.indices] -= f_out
            f_w += 0.5 * dl * g
        f_system = np.zeros((n, 3))
        f_system[system.indices] = f_sys
        return eps_full, e_sys, f_system, weight_sign * e_w, weight_sign * f_w

    def _evaluate_uncorrected(self, atoms: Atoms):
        """``(energies (n,), forces (n, 3))`` of the plain energy-mixing scheme."""
        r = self._regions
        qpos, qpbc = self._qm_positions(atoms)
        mpos = atoms.get_positions()
        eps_q, _, _, _, f_q = self._weighted_sum("qm", atoms, qpos, qpbc, 1.0)
        eps_m, _, f_m_sys, _, f_m_w = self._weighted_sum("mm", atoms, mpos, atoms.pbc, -1.0)
        energies = r.lam * eps_q + (1.0 - r.lam) * eps_m
        forces = f_q + f_m_sys + f_m_w
        return energies, forces

    def _displacements(self, atoms: Atoms) -> np.ndarray:
        from ase.geometry import find_mic

        d = atoms.get_positions() - self._ref_positions
        if np.any(atoms.pbc):
            d, _ = find_mic(d, atoms.cell, atoms.pbc)
        return d

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Mixed energy, per-atom energies, forces and diagnostics (see the class notes)."""
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        regions = self._ensure_regions(a)
        if self.ghost_force_correction and self._dead_load is None:
            ref = self.reference_atoms if self.reference_atoms is not None else a
            if len(ref) != len(a):
                raise InputError("reference_atoms", f"{len(ref)} atoms",
                                 f"{len(a)} atoms, like the system")
            _, g = self._evaluate_uncorrected(ref)
            self._dead_load = g
            self._ref_positions = ref.get_positions()
        energies, forces = self._evaluate_uncorrected(a)
        dead = 0.0
        if self.ghost_force_correction:
            per_atom = np.einsum("ij,ij->i", self._dead_load, self._displacements(a))
            energies = energies + per_atom
            forces = forces - self._dead_load
            dead = float(per_atom.sum())
        energy = float(energies.sum())
        self.results = {"energy": energy, "free_energy": energy, "energies": energies,
                        "forces": forces, "dead_load_energy": dead,
                        **self._diagnostics(regions, forces)}

    @property
    def dead_load(self) -> np.ndarray | None:
        """The ghost forces of the uncorrected scheme on the reference, eV/Å (subtracted as a
        dead load), or ``None`` before the first calculation or without correction."""
        return None if self._dead_load is None else self._dead_load.copy()


def _evaluate_or_empty(part: _Part, atoms, positions, pbc):
    if part.indices.size == 0:
        return 0.0, np.zeros(0), None
    return part.evaluate(atoms, positions, pbc, energies=True)


# --------------------------------------------------------------------------------------------
# ghost forces
# --------------------------------------------------------------------------------------------
def ghost_forces(calc, reference_atoms: Atoms, *, check_equilibrium: bool = True,
                 equilibrium_tolerance: float = 1e-6) -> tuple[np.ndarray, float]:
    """Forces a coupling puts on a configuration where both of its models are in equilibrium.

    Parameters
    ----------
    calc : ForceMixing or EnergyMixing (any calculator with forces)
        The coupling.  Its regions are selected on ``reference_atoms`` if not selected yet.
    reference_atoms : ase.Atoms
        A configuration on which the QM and the MM model each give zero forces (e.g. a perfect
        crystal, with QM and MM the same pair potential at different energy scales: same
        lattice, different stiffness).
    check_equilibrium : bool
        Evaluate ``calc.qm_calc`` and ``calc.mm_calc`` on the whole reference first and refuse
        a reference that is not an equilibrium of both (costs one full-system call of each).
    equilibrium_tolerance : float
        Largest force norm either model may have on the reference, eV/Å.

    Returns
    -------
    forces : numpy.ndarray, shape (n, 3)
        The ghost forces, eV/Å.
    max_norm : float
        ``max_i |F_i|``, eV/Å.

    Raises
    ------
    InputError
        ``reference_atoms`` on which a model is not in equilibrium, or not an ``ase.Atoms``.
    """
    if not isinstance(reference_atoms, Atoms):
        raise InputError("reference_atoms", type(reference_atoms).__name__, "an ase.Atoms")
    tol = validate.positive("equilibrium_tolerance", equilibrium_tolerance)
    if check_equilibrium:
        for name in ("qm_calc", "mm_calc"):
            model = getattr(calc, name, None)
            if model is None:
                continue
            f = np.asarray(model.get_forces(_plain_copy(reference_atoms)), dtype=float)
            worst = float(np.max(np.linalg.norm(f, axis=1))) if len(f) else 0.0
            if worst > tol:
                raise InputError("reference_atoms", f"configuration with max |F| = {worst:.3g} "
                                 f"eV/Å under {name}", "a configuration on which both models "
                                 f"are in equilibrium (max |F| <= {tol:g} eV/Å)",
                                 hint="relax it, or use a perfect crystal at the common "
                                      "lattice constant")
    at = reference_atoms.copy()
    at.calc = calc
    forces = np.asarray(at.get_forces(), dtype=float)
    return forces, (float(np.max(np.linalg.norm(forces, axis=1))) if len(forces) else 0.0)


# --------------------------------------------------------------------------------------------
# stadium thermostat
# --------------------------------------------------------------------------------------------
def stadium_friction(distance: np.ndarray, inner_radius: float, outer_radius: float,
                     friction_per_fs: float) -> np.ndarray:
    """A ramped stadium friction profile, 1/fs per atom.

    ``gamma(d) = 0`` for ``d <= inner_radius``, ``friction_per_fs`` for ``d >= outer_radius``,
    a cosine ramp ``friction (1 - cos(pi (d - inner) / (outer - inner))) / 2`` between (a step
    at ``inner_radius`` when ``outer_radius == inner_radius``).

    Parameters
    ----------
    distance : array, shape (n,)
        Each atom's distance from the centre of the unthermostatted core, Å (e.g.
        :attr:`MixingRegions.distance`, or ``atoms.get_distances(i, ...)``).
    inner_radius, outer_radius : float
        Start and end of the ramp, Å (``0 <= inner <= outer``).
    friction_per_fs : float
        Full friction, 1/fs (>= 0).

    Returns
    -------
    numpy.ndarray, shape (n,)
        Friction per atom, 1/fs.
    """
    d = validate.finite_array("distance", distance, (None,))
    r0 = validate.nonnegative("inner_radius", inner_radius)
    r1 = validate.nonnegative("outer_radius", outer_radius)
    if r1 < r0:
        raise InputError("outer_radius", outer_radius, f"a radius >= inner_radius = {r0!r} Å")
    gamma = validate.nonnegative("friction_per_fs", friction_per_fs)
    if r1 == r0:
        return np.where(d > r0, gamma, 0.0)
    x = np.clip((d - r0) / (r1 - r0), 0.0, 1.0)
    return gamma * 0.5 * (1.0 - np.cos(np.pi * x))


def stadium_langevin(atoms: Atoms, calc=None, *, timestep_fs: float, temperature_K: float,
                     friction_per_fs: float | np.ndarray, shell: np.ndarray | None = None,
                     rng: np.random.Generator | None = None, seed: int = 0, **kwargs):
    """Stadium thermostat: Langevin on a shell (or a friction profile), NVE elsewhere.

    The monitored way to run it is ``run_md(..., ensemble="nvt", friction=profile)`` (one
    friction per atom: checks, checkpoints, resume through the one simulation driver); this
    function returns the bare ASE integrator (same trajectory, tested bit for bit).

    ASE's :class:`ase.md.langevin.Langevin` (Vanden-Eijnden & Ciccotti 2006 propagator) with a
    per-atom friction of shape ``(n, 1)``: where it is zero the step is exactly velocity Verlet
    (no friction, no noise), so the core evolves with its Newtonian dynamics while the shell
    exchanges energy with a bath at ``temperature_K``.  The centre of mass is not fixed.

    Parameters
    ----------
    atoms : ase.Atoms
        The system (velocities as set; they are not reset).
    calc : ase.calculators.calculator.Calculator, optional
        Attached to ``atoms`` if given (e.g. a :class:`ForceMixing`).
    timestep_fs : float
        Time step, fs (> 0).
    temperature_K : float
        Bath temperature, K (>= 0).
    friction_per_fs : float or array, shape (n,)
        Friction on the shell atoms, 1/fs (>= 0); or, with ``shell=None``, the friction of every
        atom (a profile such as :func:`stadium_friction`).
    shell : array of bool, shape (n,), optional
        The thermostatted atoms (e.g. :attr:`MixingRegions.handshake_mask`, or the outer rim).
    rng : numpy.random.Generator, optional
        Random numbers; default ``numpy.random.default_rng(seed)`` (the project's convention:
        reproducible by default).
    seed : int, default 0
        Seed of the default generator (a non-negative integer).
    **kwargs
        Passed to ``Langevin`` (``logfile``, ``trajectory``, ``loginterval``).

    Returns
    -------
    ase.md.langevin.Langevin
        The integrator; ``dyn.run(steps)`` advances it.  ``dyn.friction_per_fs`` holds the
        per-atom friction, 1/fs.

    Raises
    ------
    InputError
        Naming the field: a non-positive time step, a negative temperature or friction, a mask
        or profile of the wrong length.
    """
    from ase.md.langevin import Langevin

    if not isinstance(atoms, Atoms):
        raise InputError("atoms", type(atoms).__name__, "an ase.Atoms")
    n = len(atoms)
    dt = validate.positive("timestep_fs", timestep_fs)
    temp = validate.nonnegative("temperature_K", temperature_K)
    if shell is None:
        if np.ndim(friction_per_fs) == 0:
            raise InputError("shell", None, "a boolean mask of the thermostatted atoms, unless "
                             "friction_per_fs is a per-atom profile",
                             hint="friction on every atom is plain Langevin, not a stadium")
        gamma = validate.finite_array("friction_per_fs", friction_per_fs, (n,))
        if np.any(gamma < 0):
            raise InputError("friction_per_fs", "profile with negative entries",
                             "non-negative frictions (1/fs)")
    else:
        mask = np.asarray(shell)
        if mask.dtype != bool or mask.shape != (n,):
            raise InputError("shell", f"array of shape {mask.shape}, dtype {mask.dtype}",
                             f"a boolean mask of shape ({n},)")
        g = validate.nonnegative("friction_per_fs", friction_per_fs)
        gamma = np.where(mask, g, 0.0)
    if calc is not None:
        atoms.calc = calc
    dyn = Langevin(atoms, timestep=dt * units.fs, temperature_K=temp,
                   friction=gamma[:, None] / units.fs, fixcm=False,
                   rng=(rng if rng is not None
                        else np.random.default_rng(validate.seed("seed", seed))), **kwargs)
    dyn.friction_per_fs = gamma
    return dyn


def region_temperature(atoms: Atoms, mask: np.ndarray | None = None) -> float:
    """Kinetic temperature of a set of atoms, K: ``T = 2 KE / (3 N k_B)`` (no constraint
    correction).

    Parameters
    ----------
    atoms : ase.Atoms
        With momenta.
    mask : array of bool, shape (n,), optional
        The atoms to count (default all).
    """
    m = atoms.get_masses()
    v = atoms.get_velocities()
    sel = np.ones(len(atoms), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if sel.shape != (len(atoms),) or not np.any(sel):
        raise InputError("mask", f"mask with {int(np.count_nonzero(sel))} atoms",
                         f"a non-empty boolean mask of shape ({len(atoms)},)")
    ke = 0.5 * float(np.sum(m[sel, None] * v[sel] ** 2))
    return 2.0 * ke / (3.0 * np.count_nonzero(sel) * units.kB)
