"""Coarse-grained handoffs: a mapped trajectory and a tabulated CG potential.

Units are the atomistic rung's (ASE's): Å, eV, amu, fs, K; pressures in bar.

``CGTrajectory``
    Beads (the images of groups of atoms under a mapping) over frames: positions (Å), the mapped
    forces (eV/Å, the sum of the forces on a bead's atoms; optional), an orthorhombic box (Å),
    bead types and masses, the temperature of the ensemble it samples and the bonds between beads
    of one molecule.  What every coarse-graining method consumes.
``CGPotential``
    Tabulated pair potentials (one per pair of bead types) on a common grid, optionally a bond and
    an angle potential, with the state point (temperature, bead density) and the method it was
    fitted by, the fit's uncertainty where the method has one, and the range of distances the fit
    saw.  Exportable as LAMMPS ``pair_style table`` files.  A CG potential is a free energy (a
    potential of mean force): it belongs to its state point, and :meth:`CGPotential.state_point_flags`
    says how far a use is from it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.codec import register
from ..core.errors import InputError
from ..core.fsio import atomic_write
from ._common import DataclassCodec, ro_array, setf

__all__ = ["CGTrajectory", "CGPotential", "pair_key"]


def pair_key(a: str, b: str) -> str:
    """The canonical name of the pair of bead types ``a``, ``b`` (sorted, ``"A-B"``)."""
    x, y = sorted((str(a), str(b)))
    return f"{x}-{y}"


def _names(field_: str, value: Any) -> tuple:
    names = tuple(str(v) for v in value)
    if not names or len(set(names)) != len(names) or any(not n or "-" in n for n in names):
        raise InputError(field_, value, "distinct non-empty type names without '-'")
    return names


@register("CGTrajectory")
@dataclass(frozen=True, eq=False)
class CGTrajectory(DataclassCodec):
    """A coarse-grained (mapped) trajectory.

    Parameters
    ----------
    positions : (frames, n, 3) Å
        Bead positions (wrapped or not; analyses take minimum images).
    box : (3,) Å
        Orthorhombic periodic box (constant volume).
    types : (n,) int
        Index into ``type_names`` per bead.
    type_names : sequence of str
    masses : (n_types,) amu
        Mass of a bead of each type.
    temperature_K : float
        Temperature of the ensemble the frames sample.
    forces : (frames, n, 3) eV/Å, optional
        Mapped forces (sum over each bead's atoms); force matching needs them.
    bonds : (n_bonds, 2) int, optional
        Bonded bead pairs (within a molecule).
    angles : (n_angles, 3) int, optional
        Bead triples ``i, j, k`` with the angle at ``j`` (``i-j`` and ``j-k`` bonded).
    frame_interval_fs : float
        Time between frames.
    info : dict
        Plain JSON: the source, the mapping, the atomistic model.
    """

    positions: Any
    box: Any
    types: Any
    type_names: Any
    masses: Any
    temperature_K: float
    forces: Any = None
    bonds: Any = None
    frame_interval_fs: float = 0.0
    info: dict = field(default_factory=dict)
    angles: Any = None

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions, dtype=float)
        if pos.ndim != 3 or pos.shape[2] != 3 or pos.shape[0] < 1 or pos.shape[1] < 1:
            raise InputError("positions", f"array of shape {pos.shape}", "(frames, beads, 3) in Å")
        if not np.all(np.isfinite(pos)):
            raise InputError("positions", "non-finite values", "finite positions in Å")
        nf, n, _ = pos.shape
        box = np.asarray(self.box, dtype=float).reshape(-1)
        if box.shape != (3,) or not np.all(box > 0):
            raise InputError("box", self.box, "three positive box lengths in Å (orthorhombic)")
        names = _names("type_names", self.type_names)
        types = np.asarray(self.types, dtype=np.int64).reshape(-1)
        if types.shape != (n,) or types.min() < 0 or types.max() >= len(names):
            raise InputError("types", types.tolist()[:10], f"{n} indices into type_names")
        masses = np.asarray(self.masses, dtype=float).reshape(-1)
        if masses.shape != (len(names),) or not np.all(masses > 0):
            raise InputError("masses", self.masses, f"{len(names)} positive masses in amu")
        T = float(self.temperature_K)
        if not np.isfinite(T) or T <= 0:
            raise InputError("temperature_K", self.temperature_K, "a positive temperature in K")
        forces = None
        if self.forces is not None:
            forces = np.asarray(self.forces, dtype=float)
            if forces.shape != pos.shape or not np.all(np.isfinite(forces)):
                raise InputError("forces", f"array of shape {forces.shape}",
                                 f"finite forces of shape {pos.shape} in eV/Å")
        bonds = np.zeros((0, 2), dtype=np.int64) if self.bonds is None else \
            np.asarray(self.bonds, dtype=np.int64).reshape(-1, 2)
        if bonds.size and (bonds.min() < 0 or bonds.max() >= n or np.any(bonds[:, 0] == bonds[:, 1])):
            raise InputError("bonds", bonds.tolist()[:5], f"pairs of distinct bead indices < {n}")
        angles = np.zeros((0, 3), dtype=np.int64) if self.angles is None else \
            np.asarray(self.angles, dtype=np.int64).reshape(-1, 3)
        if angles.size and (angles.min() < 0 or angles.max() >= n
                            or np.any(angles[:, 0] == angles[:, 1])
                            or np.any(angles[:, 1] == angles[:, 2])
                            or np.any(angles[:, 0] == angles[:, 2])):
            raise InputError("angles", angles.tolist()[:5], f"triples of distinct bead indices < {n}")
        dt = float(self.frame_interval_fs)
        if not np.isfinite(dt) or dt < 0:
            raise InputError("frame_interval_fs", self.frame_interval_fs, "a time >= 0 in fs")
        try:
            info = json.loads(json.dumps(dict(self.info or {})))
        except (TypeError, ValueError):
            raise InputError("info", repr(self.info)[:80], "plain JSON-able values") from None
        setf(self, "positions", ro_array(pos))
        setf(self, "box", ro_array(box))
        setf(self, "types", ro_array(types, np.int64))
        setf(self, "type_names", names)
        setf(self, "masses", ro_array(masses))
        setf(self, "temperature_K", T)
        setf(self, "forces", None if forces is None else ro_array(forces))
        setf(self, "bonds", ro_array(bonds, np.int64))
        setf(self, "angles", ro_array(angles, np.int64))
        setf(self, "frame_interval_fs", dt)
        setf(self, "info", info)

    @property
    def n_frames(self) -> int:
        return int(self.positions.shape[0])

    @property
    def n_beads(self) -> int:
        return int(self.positions.shape[1])

    @property
    def volume_A3(self) -> float:
        return float(np.prod(self.box))

    @property
    def density_per_A3(self) -> float:
        """Beads per Å³."""
        return self.n_beads / self.volume_A3

    @property
    def has_forces(self) -> bool:
        return self.forces is not None

    @property
    def excluded_pairs(self) -> np.ndarray:
        """``(m, 2)`` sorted bead pairs without nonbonded interaction: bonded (1-2) pairs and the
        ends of angles (1-3)."""
        p = np.concatenate([self.bonds, self.angles[:, [0, 2]]]) if self.angles.size \
            else self.bonds
        if not p.size:
            return np.zeros((0, 2), dtype=np.int64)
        return np.unique(np.sort(p, axis=1), axis=0)

    def frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> "CGTrajectory":
        """A slice of the frames (same beads)."""
        sl = slice(start, stop, step)
        pos = self.positions[sl]
        if pos.shape[0] < 1:
            raise InputError("frames", (start, stop, step), "a slice with at least one frame")
        return CGTrajectory(pos, self.box, self.types, self.type_names, self.masses,
                            self.temperature_K, None if self.forces is None else self.forces[sl],
                            self.bonds, self.frame_interval_fs * step, self.info, self.angles)


def _check_many_body(mb: Any, pair_cutoff: float) -> dict:
    if not mb:
        return {}
    mb = dict(mb)
    need = {"kind", "r_cut_A", "mu_A", "eta_per_A2", "scale", "centres", "coefficients_eV",
            "length_scale"}
    if set(mb) != need or mb["kind"] != "g2-kernel":
        raise InputError("many_body", sorted(mb), f"the keys {sorted(need)} with kind 'g2-kernel'")
    out = {"kind": "g2-kernel"}
    for k in ("r_cut_A", "eta_per_A2", "length_scale"):
        v = float(mb[k])
        if not (np.isfinite(v) and v > 0):
            raise InputError(f"many_body[{k!r}]", mb[k], "a positive number")
        out[k] = v
    if out["r_cut_A"] > pair_cutoff + 1e-9:
        raise InputError("many_body['r_cut_A']", out["r_cut_A"],
                         f"at most the pair tables' cutoff {pair_cutoff:g} Å")
    mu = np.asarray(mb["mu_A"], dtype=float).reshape(-1)
    sc = np.asarray(mb["scale"], dtype=float).reshape(-1)
    C = np.asarray(mb["centres"], dtype=float)
    c = np.asarray(mb["coefficients_eV"], dtype=float).reshape(-1)
    K = mu.size
    if K < 1 or sc.shape != (K,) or not np.all(sc > 0) or C.ndim != 2 or C.shape[1] != K \
            or c.shape != (C.shape[0],) or not all(np.all(np.isfinite(a)) for a in (mu, sc, C, c)):
        raise InputError("many_body", f"mu {mu.shape}, scale {sc.shape}, centres {C.shape}, "
                         f"coefficients {c.shape}", "K radii, K scales, (M, K) centres, M "
                         "coefficients, all finite")
    out.update(mu_A=ro_array(mu), scale=ro_array(sc), centres=ro_array(C),
               coefficients_eV=ro_array(c))
    return out


@register("CGPotential")
@dataclass(frozen=True, eq=False)
class CGPotential(DataclassCodec):
    """Tabulated coarse-grained potentials.

    Parameters
    ----------
    type_names : sequence of str
    masses : (n_types,) amu
    r_A : (m,) Å
        Common, uniformly spaced grid of the pair tables (``r_A[-1]`` is the cutoff, where every
        pair force and energy is zero).
    pair_energy_eV, pair_force_eV_per_A : mapping pair_key -> (m,)
        One table per pair of types; force = -dU/dr.
    method : str
        ``"ibi"``, ``"imc"``, ``"force-matching"``, ``"relative-entropy"``, ``"ml"``, ``"given"``...
    temperature_K : float
        Temperature of the state point the potential was fitted at.
    density_per_A3 : float
        Bead density of that state point.
    fitted_range_A : mapping pair_key -> (r_lo, r_hi)
        Distances the fit saw (below r_lo the table is an extrapolated repulsive wall).
    pair_force_uncertainty_eV_per_A : mapping pair_key -> (m,), optional
        One standard deviation of the fitted force (force matching).
    bond : dict, optional
        ``{"r_A": grid, "energy_eV": table, "force_eV_per_A": table}`` for every bond.
    angle : dict, optional
        ``{"theta_rad": uniform grid on [0, pi], "energy_eV": table, "torque_eV_per_rad": table}``
        (torque = -dU/dtheta) for every angle.
    many_body : dict, optional
        A machine-learned many-body term on top of the pairs (one bead type):
        ``{"kind": "g2-kernel", "r_cut_A", "mu_A" (K,), "eta_per_A2", "scale" (K,),
        "centres" (M, K), "coefficients_eV" (M,), "length_scale"}`` — see
        :func:`scaleladder.mesoscale.cg_ml.fit_ml_correction`.
    info : dict
        Plain JSON: the iterations, the target, the pressure correction...
    """

    type_names: Any
    masses: Any
    r_A: Any
    pair_energy_eV: dict
    pair_force_eV_per_A: dict
    method: str
    temperature_K: float
    density_per_A3: float
    fitted_range_A: dict = field(default_factory=dict)
    pair_force_uncertainty_eV_per_A: dict = field(default_factory=dict)
    bond: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    many_body: dict = field(default_factory=dict)
    angle: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = _names("type_names", self.type_names)
        masses = np.asarray(self.masses, dtype=float).reshape(-1)
        if masses.shape != (len(names),) or not np.all(masses > 0):
            raise InputError("masses", self.masses, f"{len(names)} positive masses in amu")
        r = np.asarray(self.r_A, dtype=float).reshape(-1)
        setf(self, "many_body", _check_many_body(self.many_body, float(r[-1]) if r.size else 0.0))
        if self.many_body and len(names) != 1:
            raise InputError("many_body", self.many_body["kind"], "a potential of one bead type "
                             "(the many-body term does not distinguish types)")
        if r.size < 4 or not np.all(np.isfinite(r)) or r[0] < 0 or \
                not np.allclose(np.diff(r), r[1] - r[0], rtol=1e-9, atol=1e-12) or r[1] <= r[0]:
            raise InputError("r_A", f"grid of {r.size} points", "a uniform increasing grid of "
                             ">= 4 distances >= 0 in Å")
        want = {pair_key(a, b) for i, a in enumerate(names) for b in names[i:]}
        tables = {}
        for fname in ("pair_energy_eV", "pair_force_eV_per_A"):
            d = dict(self.pair_energy_eV if fname == "pair_energy_eV" else self.pair_force_eV_per_A)
            if set(d) != want:
                raise InputError(fname, sorted(d), f"one table for each pair {sorted(want)}")
            out = {}
            for k, v in d.items():
                a = np.asarray(v, dtype=float).reshape(-1)
                if a.shape != r.shape or not np.all(np.isfinite(a)):
                    raise InputError(f"{fname}[{k!r}]", f"table of shape {a.shape}",
                                     f"{r.size} finite values on r_A")
                out[k] = ro_array(a)
            tables[fname] = out
        unc = {}
        for k, v in dict(self.pair_force_uncertainty_eV_per_A or {}).items():
            a = np.asarray(v, dtype=float).reshape(-1)
            if k not in want or a.shape != r.shape or np.any(~np.isfinite(a)) or np.any(a < 0):
                raise InputError(f"pair_force_uncertainty_eV_per_A[{k!r}]", f"shape {a.shape}",
                                 f"a non-negative table on r_A for a pair of {sorted(want)}")
            unc[k] = ro_array(a)
        rng = {}
        for k, v in dict(self.fitted_range_A or {}).items():
            lo, hi = (float(x) for x in v)
            if k not in want or not 0 <= lo < hi:
                raise InputError(f"fitted_range_A[{k!r}]", v, "(r_lo, r_hi) with 0 <= r_lo < r_hi")
            rng[k] = (lo, hi)
        bond = {}
        if self.bond:
            b = dict(self.bond)
            if set(b) != {"r_A", "energy_eV", "force_eV_per_A"}:
                raise InputError("bond", sorted(b), "keys r_A, energy_eV, force_eV_per_A")
            br = np.asarray(b["r_A"], dtype=float).reshape(-1)
            for key in ("energy_eV", "force_eV_per_A"):
                a = np.asarray(b[key], dtype=float).reshape(-1)
                if a.shape != br.shape or br.size < 4 or not np.all(np.isfinite(a)):
                    raise InputError(f"bond[{key!r}]", f"shape {a.shape}", "a table on bond r_A")
                bond[key] = ro_array(a)
            if not np.all(np.diff(br) > 0):
                raise InputError("bond['r_A']", "grid", "an increasing grid")
            bond["r_A"] = ro_array(br)
        angle = {}
        if self.angle:
            a = dict(self.angle)
            if set(a) != {"theta_rad", "energy_eV", "torque_eV_per_rad"}:
                raise InputError("angle", sorted(a), "keys theta_rad, energy_eV, torque_eV_per_rad")
            th = np.asarray(a["theta_rad"], dtype=float).reshape(-1)
            if th.size < 4 or abs(th[0]) > 1e-12 or abs(th[-1] - np.pi) > 1e-9 or \
                    not np.allclose(np.diff(th), th[1] - th[0]):
                raise InputError("angle['theta_rad']", f"grid of {th.size} points",
                                 "a uniform grid from 0 to pi")
            for key in ("energy_eV", "torque_eV_per_rad"):
                v = np.asarray(a[key], dtype=float).reshape(-1)
                if v.shape != th.shape or not np.all(np.isfinite(v)):
                    raise InputError(f"angle[{key!r}]", f"shape {v.shape}", "a table on theta_rad")
                angle[key] = ro_array(v)
            angle["theta_rad"] = ro_array(th)
        setf(self, "angle", angle)
        T = float(self.temperature_K)
        rho = float(self.density_per_A3)
        if not (np.isfinite(T) and T > 0):
            raise InputError("temperature_K", self.temperature_K, "a positive temperature in K")
        if not (np.isfinite(rho) and rho > 0):
            raise InputError("density_per_A3", self.density_per_A3, "a positive bead density")
        if not isinstance(self.method, str) or not self.method:
            raise InputError("method", self.method, "the name of the fitting method")
        try:
            info = json.loads(json.dumps(dict(self.info or {})))
        except (TypeError, ValueError):
            raise InputError("info", repr(self.info)[:80], "plain JSON-able values") from None
        setf(self, "type_names", names)
        setf(self, "masses", ro_array(masses))
        setf(self, "r_A", ro_array(r))
        setf(self, "pair_energy_eV", tables["pair_energy_eV"])
        setf(self, "pair_force_eV_per_A", tables["pair_force_eV_per_A"])
        setf(self, "pair_force_uncertainty_eV_per_A", unc)
        setf(self, "fitted_range_A", rng)
        setf(self, "bond", bond)
        setf(self, "temperature_K", T)
        setf(self, "density_per_A3", rho)
        setf(self, "info", info)

    @property
    def cutoff_A(self) -> float:
        return float(self.r_A[-1])

    @property
    def pairs(self) -> list[str]:
        return sorted(self.pair_energy_eV)

    def energy(self, a: str, b: str, r) -> np.ndarray:
        """Pair energy (eV) of types ``a``, ``b`` at ``r`` (Å; linear interpolation, 0 beyond
        the cutoff)."""
        k = pair_key(a, b)
        if k not in self.pair_energy_eV:
            raise InputError("pair", (a, b), "a pair of " + ", ".join(self.type_names))
        r = np.asarray(r, dtype=float)
        return np.where(r < self.cutoff_A, np.interp(r, self.r_A, self.pair_energy_eV[k]), 0.0)

    def force(self, a: str, b: str, r) -> np.ndarray:
        """Pair force -dU/dr (eV/Å) at ``r`` (Å)."""
        k = pair_key(a, b)
        if k not in self.pair_force_eV_per_A:
            raise InputError("pair", (a, b), "a pair of " + ", ".join(self.type_names))
        r = np.asarray(r, dtype=float)
        return np.where(r < self.cutoff_A, np.interp(r, self.r_A, self.pair_force_eV_per_A[k]), 0.0)

    def state_point_flags(self, temperature_K: float, density_per_A3: float, *,
                          tolerance: float = 0.05) -> list[str]:
        """Why a use at (T, rho) is far from the fitted state point: one sentence per quantity
        off by more than ``tolerance`` (relative); empty when within it.  A CG potential is a
        potential of mean force: away from its state point it is a different (and untested)
        approximation — the transferability error measured by the ladders is its size."""
        out = []
        for name, have, want in (("temperature", float(temperature_K), self.temperature_K),
                                 ("bead density", float(density_per_A3), self.density_per_A3)):
            rel = abs(have - want) / want
            if rel > tolerance:
                out.append(f"{name} {have:.6g} is {100 * rel:.1f} % from the fitted {want:.6g} "
                           f"({self.method} at {self.temperature_K:g} K)")
        return out

    def to_lammps_table(self, path: str | os.PathLike) -> Path:
        """Write every pair table to one LAMMPS ``pair_style table linear N`` file (Å, eV;
        ``units metal``): a section per pair named by its key, lines ``index r energy force``.
        Use as ``pair_coeff i j file KEY``."""
        lines = [f"# scaleladder CGPotential ({self.method}, {self.temperature_K:g} K): "
                 "pair tables, r in Å, energy in eV, force in eV/Å", ""]
        r = self.r_A
        start = 1 if r[0] == 0.0 else 0          # LAMMPS refuses r = 0
        for k in self.pairs:
            e, f = self.pair_energy_eV[k], self.pair_force_eV_per_A[k]
            n = r.size - start
            lines += [k, f"N {n} R {r[start]:.10g} {r[-1]:.10g}", ""]
            lines += [f"{i + 1} {r[start + i]:.10g} {e[start + i]:.10e} {f[start + i]:.10e}"
                      for i in range(n)]
            lines.append("")
        p = Path(path)
        atomic_write(p, "\n".join(lines))
        return p
