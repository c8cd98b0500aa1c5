"""Voxel microstructures: a phase or grain map with its physical size, and the stiffness of each
phase (and the orientation of each grain), as it crosses from the mesoscale (or a generator) into
the continuum's RVE solvers.

A :class:`Microstructure` is a 2D (pixel) or 3D (voxel) array of *labels* ``0 .. n_labels - 1``
on a periodic box of edge lengths ``size`` (in ``unit``); every label is made of one *phase*
(``label_phase[label]``) and carries a rotation (``orientations[label]``, rows = the crystal axes
in the sample frame, as :meth:`ElasticTensor.rotated` takes them).  A two-phase composite has two
labels, one per phase, unrotated; a polycrystal has one label per grain, all of one phase, each
rotated.  A 2D map describes a *columnar* microstructure, invariant along ``z`` (fibres,
columnar grains): the RVE solvers then give its full 3D effective stiffness.

The map may come without stiffness (``phases=()``: the geometry only, e.g. from a phase-field
run, since the mesoscale rung knows no elastic constants); :meth:`with_phases` attaches them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..core import units as _units
from ..core.codec import register
from ..core.errors import InputError, StabilityError
from ..core.tensors import check_rotations
from ._common import DataclassCodec, check_str, ro_array, setf, str_dict
from .elastic import ElasticTensor

__all__ = ["Microstructure"]


def _rotations(field_name: str, value: Any, n: int) -> np.ndarray:
    if value is None:
        return np.repeat(np.eye(3)[None], n, axis=0)
    return check_rotations(field_name, value, n, meaning="one per label: rows = the crystal axes "
                           "in the sample frame")


@register("Microstructure")
@dataclass(frozen=True, eq=False)
class Microstructure(DataclassCodec):
    """A periodic pixel/voxel phase or grain map with physical size, phases and orientations.

    Parameters
    ----------
    labels : array of int, 2D or 3D
        Label of each pixel/voxel, ``0 .. n_labels - 1``, every label present.  Axis ``k`` runs
        along the sample's ``x, y, z`` direction ``k``.
    size : sequence of float
        Edge lengths of the (periodic) box along each axis, in ``unit``.
    unit : str
        Length unit of ``size`` (``"m"``, ``"um"``, ``"nm"``, ``"Å"``, ...).
    phases : tuple of ElasticTensor
        Stiffness of each phase (empty: geometry only).
    label_phase : array of int, optional
        Phase of each label (default: label ``i`` is phase ``i``).
    orientations : array (n_labels, 3, 3), optional
        Rotation of each label's phase (default: none).
    phase_names : tuple of str, optional
        Names of the phases (default ``"phase 0"``, ...).
    kind : str
        ``"phases"`` (a composite) or ``"grains"`` (a polycrystal), for reports.
    provenance : dict
        How the map was made (generator and its settings, seed, source run).

    Raises
    ------
    InputError
        Labels not integers in ``0 .. n - 1`` with each present, a label of an unknown phase,
        a non-positive size, a length unit that is not one, wrong orientations.
    StabilityError
        A phase whose stiffness is not Born-stable (named by its index and name).
    """

    labels: np.ndarray
    size: tuple
    unit: str = "um"
    phases: tuple = ()
    label_phase: np.ndarray | None = None
    orientations: np.ndarray | None = None
    phase_names: tuple = ()
    kind: str = "phases"
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        lab = np.asarray(self.labels)
        if lab.ndim not in (2, 3) or min(lab.shape) < 1:
            raise InputError("labels", f"array of shape {lab.shape}", "a 2D or 3D label map")
        if not np.issubdtype(lab.dtype, np.integer):
            if not np.all(np.isfinite(lab)) or not np.all(lab == np.round(lab)):
                raise InputError("labels", f"dtype {lab.dtype}", "integer labels")
        lab = lab.astype(np.int64)
        n = int(lab.max()) + 1
        if lab.min() < 0:
            raise InputError("labels", int(lab.min()), "labels >= 0")
        present = np.bincount(lab.ravel(), minlength=n) > 0
        if not present.all():
            raise InputError("labels", f"label {int(np.flatnonzero(~present)[0])} absent",
                             f"every label 0..{n - 1} present (relabel: np.unique(labels, "
                             "return_inverse=True))")
        setf(self, "labels", ro_array(lab, np.int64))
        size = tuple(float(s) for s in np.atleast_1d(np.asarray(self.size, dtype=float)))
        if len(size) != lab.ndim or not all(np.isfinite(s) and s > 0 for s in size):
            raise InputError("size", self.size, f"{lab.ndim} positive edge lengths")
        setf(self, "size", size)
        check_str("unit", self.unit, allow_empty=False)
        if not _units.same_dimension(self.unit, "m"):
            raise InputError("unit", self.unit, "a length unit (m, um, nm, Å, ...)")
        phases = tuple(self.phases)
        for i, p in enumerate(phases):
            if not isinstance(p, ElasticTensor):
                raise InputError(f"phases[{i}]", type(p).__name__,
                                 "an ElasticTensor (ElasticTensor.from_voigt / isotropic_phase)")
        setf(self, "phases", phases)
        lp = np.arange(n) if self.label_phase is None else np.asarray(self.label_phase)
        if lp.shape != (n,) or not np.issubdtype(lp.dtype, np.integer):
            raise InputError("label_phase", f"array of shape {lp.shape}",
                             f"one integer phase index per label ({n} labels)")
        n_phases = int(lp.max()) + 1
        if lp.min() < 0:
            raise InputError("label_phase", int(lp.min()), "phase indices >= 0")
        if phases and n_phases > len(phases):
            bad = int(np.flatnonzero(lp >= len(phases))[0])
            raise InputError("label_phase", f"label {bad} is made of phase {int(lp[bad])}",
                             f"a phase among the {len(phases)} given (0..{len(phases) - 1}): "
                             "an unknown phase")
        setf(self, "label_phase", ro_array(lp, np.int64))
        setf(self, "orientations", ro_array(_rotations("orientations", self.orientations, n)))
        names = tuple(self.phase_names) or tuple(
            f"phase {i}" for i in range(max(len(phases), n_phases)))
        if not all(isinstance(s, str) for s in names) or len(names) < max(len(phases), n_phases):
            raise InputError("phase_names", self.phase_names,
                             f"{max(len(phases), n_phases)} phase names")
        setf(self, "phase_names", names)
        if self.kind not in ("phases", "grains"):
            raise InputError("kind", self.kind, "'phases' or 'grains'")
        setf(self, "provenance", str_dict("provenance", self.provenance))

    # -- shape ------------------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return int(self.labels.ndim)

    @property
    def shape(self) -> tuple:
        return tuple(self.labels.shape)

    @property
    def n_labels(self) -> int:
        return int(self.label_phase.shape[0])

    @property
    def n_phases(self) -> int:
        return max(len(self.phases), int(self.label_phase.max()) + 1)

    def size_in(self, unit: str) -> tuple:
        """Edge lengths in ``unit``."""
        f = _units.conversion_factor(self.unit, unit)
        return tuple(s * f for s in self.size)

    @property
    def voxel_size(self) -> tuple:
        return tuple(s / n for s, n in zip(self.size, self.shape))

    def volume_fractions(self) -> np.ndarray:
        """Volume fraction of each phase."""
        counts = np.bincount(self.label_phase[self.labels].ravel(), minlength=self.n_phases)
        return counts / counts.sum()

    def phase_map(self) -> np.ndarray:
        """Phase index of each pixel/voxel."""
        return self.label_phase[self.labels]

    # -- stiffness ------------------------------------------------------------------------------
    def with_phases(self, phases: Sequence[ElasticTensor], *, label_phase=None, orientations=None,
                    phase_names: Sequence[str] = ()) -> "Microstructure":
        """This geometry with the stiffness of each phase (and optionally which label is made of
        which phase, and the labels' rotations; the current ones are kept when not given)."""
        return self.replace(phases=tuple(phases),
                            label_phase=self.label_phase if label_phase is None else label_phase,
                            orientations=self.orientations if orientations is None
                            else orientations,
                            phase_names=tuple(phase_names) or self.phase_names)

    def require_phases(self, what: str = "an RVE solve") -> None:
        if not self.phases:
            raise InputError("microstructure.phases", "()",
                             f"the stiffness of each phase for {what}",
                             hint="attach them with microstructure.with_phases([...])")

    def label_stiffness(self, unit: str = "GPa") -> np.ndarray:
        """``(n_labels, 6, 6)`` Voigt stiffness of each label (rotated), nominal values."""
        self.require_phases()
        f = _units.conversion_factor("GPa", unit)
        out = np.empty((self.n_labels, 6, 6))
        from ..core.tensors import rotate_voigt

        base = [np.asarray(p.voigt.value, dtype=float) for p in self.phases]
        for i in range(self.n_labels):
            c = base[int(self.label_phase[i])]
            r = self.orientations[i]
            out[i] = c if np.allclose(r, np.eye(3), atol=0) else rotate_voigt(c, r)
        return out * f

    def check_stable(self) -> None:
        """Every phase positive definite (ElasticTensor guarantees it; checked again here for
        tensors decoded from older records)."""
        for i, p in enumerate(self.phases):
            eig = np.linalg.eigvalsh(np.asarray(p.voigt.value))
            if np.any(eig <= 0):
                raise StabilityError(f"phases[{i}] ({self.phase_names[i]})",
                                     "eigenvalues " + ", ".join(f"{x:.4g}" for x in eig),
                                     "a Born-stable (positive definite) stiffness")

    def __str__(self) -> str:
        dims = " x ".join(str(n) for n in self.shape)
        extent = " x ".join(f"{s:g}" for s in self.size)
        return (f"Microstructure({self.kind}, {dims} voxels, {extent} {self.unit}, "
                f"{self.n_labels} labels, {self.n_phases} phases)")
