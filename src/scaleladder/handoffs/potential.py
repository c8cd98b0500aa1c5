"""A fitted interatomic potential with its parameter ensemble and training domain."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import units as _units
from ..core.codec import register
from ..core.errors import InputError
from ..core.validate import finite, finite_array
from ..core.validate import positive as validate_positive
from ..uq import Estimate
from ._common import DataclassCodec, check_str, ro_array, setf, str_dict

__all__ = ["FittedPotential", "check_domain_warnings"]

_ERROR_KEYS = ("energy_rmse", "force_rmse", "stress_rmse", "stress_rel_rmse")


def _range(field_name: str, value: Any, positive: bool = True) -> tuple[float, float]:
    arr = finite_array(field_name, value, (2,))
    lo, hi = float(arr[0]), float(arr[1])
    if lo > hi or (positive and lo <= 0):
        raise InputError(field_name, [lo, hi],
                         "[min, max] with 0 < min <= max" if positive else "[min, max] with min <= max")
    return (lo, hi)


def check_domain_warnings(field_name: str, value: Any) -> tuple[str, ...]:
    """Validate the optional ``domain_warnings`` field of a property handoff.

    The messages say where a configuration the property was computed from lay outside the
    training domain of the fitted potential that computed it (see
    :meth:`FittedPotential.check_domain`); ``()`` means none (or no fitted potential).

    Parameters
    ----------
    field_name : str
        Name of the field, for the error message.
    value : None, str or sequence of str
        ``None`` -> ``()``; a single string -> a one-element tuple.

    Returns
    -------
    tuple of str

    Raises
    ------
    InputError
        Anything that is not a sequence of strings.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    try:
        out = tuple(value)
    except TypeError:
        raise InputError(field_name, value, "a tuple of messages (str)") from None
    for msg in out:
        if not isinstance(msg, str):
            raise InputError(field_name, value, "a tuple of messages (str)",
                             hint=f"{msg!r} is a {type(msg).__name__}")
    return out


@register("FittedPotential")
@dataclass(frozen=True, eq=False)
class FittedPotential(DataclassCodec):
    """A fitted interatomic potential.

    Parameters
    ----------
    form : str
        Functional form, e.g. ``"StillingerWeber"``.
    species : tuple of str
        Chemical symbols it covers.
    parameters : dict of str to float
        Nominal values of *all* parameters (fitted and fixed).
    fitted : tuple of str
        Names of the fitted (varied) parameters, a subset of ``parameters``.
    ensemble : array_like, shape (m, len(fitted))
        Parameter sets of the fit ensemble (m = 0, or m >= 2).
    ensemble_method : str
        How the ensemble was made (``"bootstrap"``, ``"laplace"``, ...).
    training_domain : dict
        ``volume_per_atom``: [min, max] Å³; ``max_abs_strain``: float;
        ``neighbour_distance``: [min, max] Å of the *nearest*-neighbour distances seen in training;
        ``coordination``: [min, max] neighbour counts within ``coordination_cutoff`` (Å).
        Missing keys are not checked; other keys are kept as given.
    errors : dict
        ``"train"`` / ``"heldout"`` -> dict with ``energy_rmse`` (eV/atom), ``force_rmse`` (eV/Å),
        ``stress_rmse`` (GPa), ``stress_rel_rmse`` (dimensionless).
    units : dict
        Parameter name -> unit string.
    provenance : dict
        Free-form record (dataset key, fitter settings, ...).
    covariance : array_like, shape (len(fitted), len(fitted)), optional
        Posterior covariance of the fitted parameters where the fit has one (a Bayesian linear
        model such as SNAP: the predicted error of any quantity linear in them is
        ``sqrt(x C x^T)``); symmetric positive semi-definite.
    """

    form: str
    species: tuple
    parameters: dict
    fitted: tuple
    ensemble: np.ndarray
    ensemble_method: str = ""
    training_domain: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    units: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    covariance: np.ndarray | None = None

    def __post_init__(self) -> None:
        check_str("form", self.form, allow_empty=False)
        species = (self.species,) if isinstance(self.species, str) else self.species
        try:
            species = tuple(species)
        except TypeError:
            raise InputError("species", self.species, "a tuple of chemical symbols") from None
        from ase.data import chemical_symbols

        for s in species:
            if s not in chemical_symbols[1:]:
                raise InputError("species", self.species, "chemical symbols such as ('Si',)")
        if not species:
            raise InputError("species", self.species, "at least one chemical symbol")
        setf(self, "species", species)
        params = str_dict("parameters", self.parameters)
        setf(self, "parameters", {k: finite(f"parameters[{k!r}]", v) for k, v in params.items()})
        fitted = (self.fitted,) if isinstance(self.fitted, str) else tuple(self.fitted)
        for name in fitted:
            if name not in params:
                raise InputError("fitted", fitted, "names of entries of parameters",
                                 hint=f"{name!r} is not a parameter; known: {', '.join(params)}")
        if len(set(fitted)) != len(fitted):
            raise InputError("fitted", fitted, "unique parameter names")
        setf(self, "fitted", fitted)
        ens = np.asarray(self.ensemble if self.ensemble is not None else np.zeros((0, len(fitted))),
                         dtype=float)
        if ens.ndim == 2 and ens.shape[0] == 0:
            ens = ens.reshape(0, len(fitted))
        ens = finite_array("ensemble", ens, (None, len(fitted)))
        if ens.shape[0] == 1:
            raise InputError("ensemble", "1 member", "no ensemble (0 rows) or at least 2 members")
        setf(self, "ensemble", ro_array(ens))
        check_str("ensemble_method", self.ensemble_method)
        dom = str_dict("training_domain", self.training_domain)
        if "volume_per_atom" in dom:
            dom["volume_per_atom"] = _range("training_domain['volume_per_atom']", dom["volume_per_atom"])
        if "neighbour_distance" in dom:
            dom["neighbour_distance"] = _range("training_domain['neighbour_distance']",
                                               dom["neighbour_distance"])
        if "coordination" in dom:
            lo, hi = _range("training_domain['coordination']", dom["coordination"], positive=False)
            if lo < 0 or lo != int(lo) or hi != int(hi):
                raise InputError("training_domain['coordination']", dom["coordination"],
                                 "[min, max] neighbour counts (non-negative integers)")
            dom["coordination"] = [int(lo), int(hi)]
            if "coordination_cutoff" not in dom:
                raise InputError("training_domain['coordination_cutoff']", None,
                                 "the cutoff (Å) the coordination range was counted with")
            dom["coordination_cutoff"] = validate_positive("training_domain['coordination_cutoff']",
                                                           dom["coordination_cutoff"])
        if "max_abs_strain" in dom:
            s = finite("training_domain['max_abs_strain']", dom["max_abs_strain"])
            if s < 0:
                raise InputError("training_domain['max_abs_strain']", s, "a non-negative strain")
            dom["max_abs_strain"] = s
        setf(self, "training_domain", dom)
        errs = str_dict("errors", self.errors)
        for split, d in errs.items():
            d = str_dict(f"errors[{split!r}]", d)
            for k, val in d.items():
                if val is not None:
                    val = finite(f"errors[{split!r}][{k!r}]", val)
                    if val < 0:
                        raise InputError(f"errors[{split!r}][{k!r}]", val, "a non-negative RMSE")
                d[k] = val
            errs[split] = d
        setf(self, "errors", errs)
        u = str_dict("units", self.units)
        for k, val in u.items():
            _units.parse_unit(check_str(f"units[{k!r}]", val))
        setf(self, "units", u)
        setf(self, "provenance", str_dict("provenance", self.provenance))
        if self.covariance is not None:
            cov = finite_array("covariance", self.covariance, (len(fitted), len(fitted)))
            scale = max(float(np.abs(np.diag(cov)).max()), 1e-300)
            if not np.allclose(cov, cov.T, rtol=1e-8, atol=1e-12 * scale):
                raise InputError("covariance", "a non-symmetric matrix", "a symmetric covariance")
            if float(np.linalg.eigvalsh(0.5 * (cov + cov.T)).min()) < -1e-8 * scale:
                raise InputError("covariance", "a matrix with negative eigenvalues",
                                 "a positive semi-definite covariance")
            setf(self, "covariance", ro_array(cov))

    @property
    def n_members(self) -> int:
        """Number of ensemble members."""
        return int(self.ensemble.shape[0])

    def parameter_estimate(self) -> Estimate:
        """The fitted parameters as a vector Estimate (order of ``fitted``).

        The source ``"fit ensemble"`` holds the ensemble rows.  The unit is ``""``: the parameters
        have mixed units (see ``units``).
        """
        nominal = np.array([self.parameters[k] for k in self.fitted])
        sources = {"fit ensemble": self.ensemble} if self.n_members >= 2 else {}
        return Estimate(nominal, "", sources)

    def member(self, i: int) -> dict[str, float]:
        """All parameters of ensemble member ``i`` (fixed ones at their nominal value)."""
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.n_members:
            raise InputError("i", i, f"an ensemble member index in [0, {self.n_members})")
        out = dict(self.parameters)
        out.update({k: float(v) for k, v in zip(self.fitted, self.ensemble[i])})
        return out

    def check_domain(self, atoms: Any, reference_cell: Any = None) -> list[str]:
        """Where ``atoms`` lies outside the training domain.

        Parameters
        ----------
        atoms : ase.Atoms
        reference_cell : array_like (3, 3), optional
            Undeformed cell of ``atoms`` (rows, Å); if given, the Green-Lagrange strain of
            ``atoms.cell`` relative to it is checked against ``max_abs_strain``.

        Returns
        -------
        list of str
            Human-readable violations; empty when inside the domain (or no domain was recorded).
        """
        dom = self.training_domain
        out: list[str] = []
        n = len(atoms)
        if n == 0:
            return ["the configuration has no atoms"]
        species = set(atoms.get_chemical_symbols())
        foreign = sorted(species - set(self.species))
        if foreign:
            out.append(f"species {foreign} not covered by this potential (covers {list(self.species)})")
        periodic = bool(np.all(atoms.get_pbc()))
        if "volume_per_atom" in dom and periodic:
            lo, hi = dom["volume_per_atom"]
            vpa = atoms.get_volume() / n
            if not lo <= vpa <= hi:
                out.append(f"volume per atom {vpa:.4g} Å³ outside the training range "
                           f"[{lo:.4g}, {hi:.4g}] Å³")
        if "neighbour_distance" in dom and n > 1:
            from ase.neighborlist import neighbor_list

            lo, hi = dom["neighbour_distance"]
            cutoff = 1.5 * hi
            i_idx, d = neighbor_list("id", atoms, cutoff)
            nearest = np.full(n, np.inf)
            np.minimum.at(nearest, i_idx, d)
            dmin = float(nearest.min())
            if dmin < lo:
                j = int(np.argmin(nearest))
                out.append(f"nearest-neighbour distance {dmin:.4g} Å (atom {j}) below the training "
                           f"minimum {lo:.4g} Å")
            dmax = float(nearest.max())
            if dmax > hi:
                j = int(np.argmax(nearest))
                what = f"{dmax:.4g} Å" if np.isfinite(dmax) else f"> {cutoff:.4g} Å (isolated)"
                out.append(f"nearest-neighbour distance {what} (atom {j}) above the training "
                           f"maximum {hi:.4g} Å")
        if "coordination" in dom and n > 1:
            from ase.neighborlist import neighbor_list

            lo, hi = dom["coordination"]
            rc = dom["coordination_cutoff"]
            z = np.bincount(neighbor_list("i", atoms, rc), minlength=n)
            for bad, word in ((np.flatnonzero(z < lo), "below"), (np.flatnonzero(z > hi), "above")):
                if bad.size:
                    zs = sorted(set(int(x) for x in z[bad]))
                    out.append(f"{bad.size} atom(s) (e.g. atom {int(bad[0])}) with coordination "
                               f"{zs} within {rc:.3g} Å, {word} the training range [{lo}, {hi}]")
        if reference_cell is not None and "max_abs_strain" in dom:
            ref = finite_array("reference_cell", reference_cell, (3, 3))
            # rows: cell = ref @ F^T  ->  F^T = solve(ref, cell)
            ft = np.linalg.solve(ref, np.array(atoms.get_cell()))
            f = ft.T
            eps = 0.5 * (f.T @ f - np.eye(3))
            emax = float(np.abs(eps).max())
            if emax > dom["max_abs_strain"]:
                out.append(f"strain {emax:.4g} (max |Green-Lagrange component|) above the training "
                           f"maximum {dom['max_abs_strain']:.4g}")
        return out
