"""Fitting interatomic potentials to reference data, with a parameter ensemble.

:func:`fit_potential` fits a Stillinger-Weber potential to a
:class:`~scaleladder.handoffs.ReferenceDataset` (energies, forces, stresses) by weighted,
dimensionless least squares and returns a :class:`~scaleladder.handoffs.FittedPotential` that
carries the nominal parameters, an ensemble of parameter sets (the fit's share of the error
budget), the training domain and the train / held-out errors.

Residuals
---------
For every training configuration (``n`` atoms), with ``w`` the weights and ``s`` the scales::

    energy : w_E / s_E * (E_model/n + e0 - E_ref/n)            (eV/atom / eV/atom)
    forces : w_F / s_F * (F_model - F_ref), 3n components        (eV/Å / eV/Å)
    stress : w_S / s_S * (S_model - S_ref), 6 components in GPa  (GPa / GPa)

``E_ref`` is the cohesive energy ``E - n * atom_energy_eV`` when the dataset's method records the
isolated-atom energy ``atom_energy_eV`` (then ``e0 = 0``: SW energies are relative to isolated
atoms); otherwise a per-atom offset ``e0`` is fitted as one more parameter (reported in
provenance, marginalised out of the ensemble).  The scales are the accuracies one expects of the
model (default 10 meV/atom, 0.1 eV/Å, 1 GPa), so each residual is O(1) and the terms are
comparable; weights (default 1) tilt the balance and 0 drops a term.
"""
from __future__ import annotations

import math
import time
from typing import Any, Mapping, Sequence

import numpy as np

from ..core import validate
from ..core.errors import ConvergenceError, InputError
from ..core.tensors import green_lagrange_strain
from ..core.units import EV_PER_A3_IN_GPA

__all__ = ["fit_potential", "fitted_calculator", "DEFAULT_SCALES", "SW_DEFAULT_FIT"]

#: Default fitted Stillinger-Weber parameters (see :func:`fit_potential` for why these).
SW_DEFAULT_FIT: tuple[str, ...] = ("epsilon", "sigma", "lambda", "B")

#: Default residual scales: energy eV/atom, forces eV/Å, stress GPa.
DEFAULT_SCALES: dict[str, float] = {"energy": 0.01, "forces": 0.1, "stress": 1.0}

_SW_UNITS = {"epsilon": "eV", "sigma": "Å"}
_FORM_NAMES = {"stillingerweber", "stillinger-weber", "stillinger_weber", "sw"}
_TERMS = ("energy", "forces", "stress")


# ----------------------------------------------------------------------------- validation

def _check_dataset(dataset: Any):
    confs = getattr(dataset, "configurations", None)
    if confs is None:
        raise InputError("dataset", type(dataset).__name__, "a ReferenceDataset")
    if len(confs) == 0:
        raise InputError("dataset", "ReferenceDataset with 0 configurations",
                         "at least one training configuration")
    return tuple(confs)


def _check_terms(field: str, value: Any, default: Mapping[str, float], allow_zero: bool):
    if value is None:
        return dict(default)
    if not isinstance(value, Mapping):
        raise InputError(field, value, "a dict with keys among " + ", ".join(_TERMS))
    out = dict(default)
    for k, v in value.items():
        key = {"force": "forces", "energies": "energy", "stresses": "stress"}.get(k, k)
        if key not in _TERMS:
            raise InputError(f"{field}[{k!r}]", v, "keys among " + ", ".join(_TERMS))
        out[key] = (validate.nonnegative(f"{field}[{k!r}]", v) if allow_zero
                    else validate.positive(f"{field}[{k!r}]", v))
    return out


# ---------------------------------------------------------------------------- model wrapper

class _SWProblem:
    """Pre-processed data and residual evaluation for a Stillinger-Weber fit (no ASE inside)."""

    def __init__(self, confs, species: str, atom_energy, base: dict, fit: Sequence[str],
                 fit_offset: bool, weights: dict, scales: dict):
        from .stillinger_weber import SW_PARAMETER_NAMES

        self.confs = confs
        self.species = species
        self.names = SW_PARAMETER_NAMES
        self.base = np.array([base[n] for n in SW_PARAMETER_NAMES], dtype=float)
        self.fit = tuple(fit)
        self.idx = np.array([SW_PARAMETER_NAMES.index(n) for n in fit], dtype=int)
        start = self.base[self.idx]
        self.xscale = np.where(start != 0.0, np.abs(start), 1.0)
        self.fit_offset = fit_offset
        self.weights = weights
        self.scales = scales
        self.atom_energy = atom_energy
        self.data = []
        for c in confs:
            n = len(c.numbers)
            e_ref = c.energy / n - (atom_energy if atom_energy is not None else 0.0)
            self.data.append((np.asarray(c.positions, float), np.asarray(c.cell, float),
                              np.asarray(c.pbc, bool), n, e_ref,
                              None if c.forces is None else np.asarray(c.forces, float),
                              None if c.stress is None else np.asarray(c.stress, float)
                              * EV_PER_A3_IN_GPA))

    # parameter vector x: fitted parameters / xscale (O(1)), then the offset (eV/atom) if fitted
    def x0(self, offset0: float = 0.0) -> np.ndarray:
        x = self.base[self.idx] / self.xscale
        return np.append(x, offset0) if self.fit_offset else x

    def params(self, x) -> np.ndarray:
        p = self.base.copy()
        p[self.idx] = np.asarray(x[:len(self.idx)]) * self.xscale
        return p

    def offset(self, x) -> float:
        return float(x[-1]) if self.fit_offset else 0.0

    def predict(self, x, which=None):
        """Per-configuration (e_per_atom, forces, stress_GPa) with parameters x."""
        from .stillinger_weber import sw_energy_forces_stress

        p = self.params(x)
        e0 = self.offset(x)
        out = []
        for k in (range(len(self.data)) if which is None else which):
            pos, cell, pbc, n, _, fref, sref = self.data[k]
            e, _, f, s = sw_energy_forces_stress(None, pos, cell, pbc, p, species=self.species)
            out.append((e / n + e0, f, None if s is None else s * EV_PER_A3_IN_GPA))
        return out

    def blocks(self, x, mult=None):
        """Residual vector (dimensionless) and, per term, the raw residual counts."""
        w, s = self.weights, self.scales
        cE, cF, cS = w["energy"] / s["energy"], w["forces"] / s["forces"], w["stress"] / s["stress"]
        parts = []
        for k, (e, f, st) in enumerate(self.predict(x)):
            _, _, _, n, e_ref, fref, sref = self.data[k]
            m = 1.0 if mult is None else math.sqrt(mult[k])
            if m == 0.0:
                continue
            if cE > 0:
                parts.append(np.array([m * cE * (e - e_ref)]))
            if cF > 0 and fref is not None:
                parts.append(m * cF * (f - fref).ravel())
            if cS > 0 and sref is not None and st is not None:
                parts.append(m * cS * (st - sref))
        return np.concatenate(parts) if parts else np.zeros(0)

    def errors(self, x, which) -> dict:
        """RMS errors on configurations ``which`` (energy eV/atom, force eV/Å, stress GPa)."""
        if not which:
            return {}
        pred = self.predict(x, which)
        de, df, ds, sref_all = [], [], [], []
        for k, (e, f, st) in zip(which, pred):
            _, _, _, n, e_ref, fref, sref = self.data[k]
            de.append(e - e_ref)
            if fref is not None:
                df.append((f - fref).ravel())
            if sref is not None and st is not None:
                ds.append(st - sref)
                sref_all.append(sref)

        def rms(a):
            return float(np.sqrt(np.mean(np.concatenate(a) ** 2))) if a else None

        out = {"energy_rmse": float(np.sqrt(np.mean(np.square(de)))), "force_rmse": rms(df),
               "stress_rmse": rms(ds), "stress_rel_rmse": None}
        if ds:
            ref_rms = rms(sref_all)
            if ref_rms and ref_rms > 0:
                out["stress_rel_rmse"] = out["stress_rmse"] / ref_rms
        out["n_configurations"] = len(which)
        return out


def fitted_calculator(potential, member: int | None = None, **kwargs):
    """An ASE calculator evaluating a fitted potential, which remembers that potential.

    Same numerics as ``StillingerWeber.from_fitted(potential, member, **kwargs)``; in addition the
    calculator's attribute ``fitted_potential`` holds ``potential``, so that the property
    functions (``elastic_constants``, ``surface_energy``, ...) check every configuration they
    evaluate against its training domain and record the violations in their handoffs (see
    :mod:`scaleladder.atomistic.domain`).

    Parameters
    ----------
    potential : FittedPotential
        Form ``"StillingerWeber"`` (the form with a calculator; others raise ``InputError``).
    member : int, optional
        ``None``: nominal parameters; ``i``: ensemble member ``i`` (same training domain).
    **kwargs
        Passed to the calculator's constructor (e.g. ``parallel=True``).

    Returns
    -------
    StillingerWeber
        With ``fitted_potential`` set.
    """
    from .domain import attach_fitted_potential
    from .stillinger_weber import StillingerWeber

    if getattr(potential, "form", None) == "SNAP":
        from .snap import SNAPCalculator

        return attach_fitted_potential(SNAPCalculator(potential, member=member, **kwargs), potential)
    # from_fitted remembers the potential itself; attaching again validates it
    calc = StillingerWeber.from_fitted(potential, member=member, **kwargs)
    return attach_fitted_potential(calc, potential)


def potential_errors(potential, dataset, labels: Sequence[str], member: int | None = None) -> dict:
    """Errors of a fitted potential on the configurations of ``dataset`` with the given labels.

    Returns the same quantities as ``FittedPotential.errors``: ``energy_rmse`` (eV/atom, cohesive
    energies referred to ``dataset.method["atom_energy_eV"]`` when present, otherwise to the
    potential's fitted offset), ``force_rmse`` (eV/Å), ``stress_rmse`` (GPa), ``stress_rel_rmse``
    (stress RMSE over the RMS of the reference stress components) and ``n_configurations``.  Used to
    measure transferability on held-out groups separately (e.g. homogeneous strains vs distorted
    cells).  A label with no configuration raises ``InputError`` listing the labels there are.
    """
    from ..core.units import EV_PER_A3_IN_GPA
    from .stillinger_weber import StillingerWeber

    labels = tuple(labels)
    sub = dataset.select(*labels)
    if getattr(potential, "form", None) == "SNAP":
        from .snap import SNAPCalculator

        calc = SNAPCalculator(potential, member=member)
        # SNAP energies are whatever it was trained on: cohesive when the training set knew
        # the free atom's energy (its constant term then absorbs nothing else), else total
        e_atom = potential.provenance.get("atom_energy_eV")
        offset = 0.0
    else:
        calc = StillingerWeber.from_fitted(potential, member=member)
        e_atom = (dataset.method or {}).get("atom_energy_eV")
        offset = 0.0 if e_atom is not None else float(
            potential.provenance.get("energy_offset_eV_per_atom", 0.0))
    de, df, ds, sref = [], [], [], []
    for i, conf in enumerate(sub.configurations):
        atoms = sub.to_atoms(i)
        n = len(atoms)
        atoms.calc = calc
        e_ref = conf.energy / n - (e_atom if e_atom is not None else 0.0)
        de.append(atoms.get_potential_energy() / n + offset - e_ref)
        if conf.forces is not None:
            df.append((atoms.get_forces() - conf.forces).ravel())
        if conf.stress is not None:
            ds.append((atoms.get_stress() - conf.stress) * EV_PER_A3_IN_GPA)
            sref.append(np.asarray(conf.stress) * EV_PER_A3_IN_GPA)

    def rms(parts):
        return float(np.sqrt(np.mean(np.concatenate(parts) ** 2))) if parts else None

    out = {"energy_rmse": float(np.sqrt(np.mean(np.square(de)))), "force_rmse": rms(df),
           "stress_rmse": rms(ds), "stress_rel_rmse": None, "n_configurations": len(de),
           "labels": list(labels)}
    if ds:
        ref = rms(sref)
        if ref and ref > 0:
            out["stress_rel_rmse"] = out["stress_rmse"] / ref
    return out


def _jacobian_central(fun, x, h=1e-5, lower=None):
    """Finite-difference Jacobian (relative step h for x of order one).

    Central differences, or a one-sided forward difference for a parameter whose backward step
    would cross its ``lower`` bound (where the potential is undefined).
    """
    r0 = fun(x)
    J = np.empty((r0.size, x.size))
    for i in range(x.size):
        step = h * max(1.0, abs(x[i]))
        xp, xm = x.copy(), x.copy()
        xp[i] += step
        if lower is not None and x[i] - step < lower[i]:
            J[:, i] = (fun(xp) - r0) / step
            continue
        xm[i] -= step
        J[:, i] = (fun(xp) - fun(xm)) / (2 * step)
    return J


# -------------------------------------------------------------------------- training domain

def _nearest_distances(conf) -> np.ndarray:
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    atoms = Atoms(numbers=np.asarray(conf.numbers), positions=np.asarray(conf.positions),
                  cell=np.asarray(conf.cell), pbc=np.asarray(conf.pbc))
    n = len(atoms)
    r = 3.0
    nearest = np.full(n, np.inf)
    while r < 20.0:
        i, d = neighbor_list("id", atoms, r)
        nearest = np.full(n, np.inf)
        np.minimum.at(nearest, i, d)
        if np.all(np.isfinite(nearest)):
            break
        r *= 1.5
    return nearest


#: Coordination is counted within this factor times the largest training nearest-neighbour
#: distance (1.2: inside the second shell of diamond (1.63), fcc (1.41) and hcp; bcc's second shell
#: at 1.15 is counted with the first, consistently in training and checking).
COORDINATION_CUTOFF_FACTOR = 1.2


def _coordination(conf, cutoff: float) -> np.ndarray:
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    atoms = Atoms(numbers=np.asarray(conf.numbers), positions=np.asarray(conf.positions),
                  cell=np.asarray(conf.cell), pbc=np.asarray(conf.pbc))
    i = neighbor_list("i", atoms, cutoff)
    return np.bincount(i, minlength=len(atoms))


def training_domain(confs, energies_per_atom: Sequence[float]) -> dict:
    """Volume-per-atom, nearest-neighbour distance and coordination ranges, largest strain.

    Coordination: neighbours within ``coordination_cutoff`` = 1.2 x the largest nearest-neighbour
    distance of the set (:data:`COORDINATION_CUTOFF_FACTOR`).

    Strains: configurations with the same atom count whose cells differ by a Green-Lagrange
    strain below 0.25 form a family; a family's reference is its member closest to equilibrium
    (smallest largest |stress| component when every periodic configuration has a stress, else
    lowest energy per atom), rescaled isotropically to the equilibrium volume per atom (that of
    the configuration closest to equilibrium overall).  ``max_abs_strain`` is the largest
    |Green-Lagrange component| of any training cell relative to its family's reference (the quantity ``FittedPotential.check_domain``
    checks).  Open (non-periodic) configurations are left out of the volume and strain ranges.
    """
    periodic = [k for k, c in enumerate(confs) if np.all(c.pbc)]
    dom: dict[str, Any] = {}
    nearest = np.concatenate([_nearest_distances(c) for c in confs])
    nearest = nearest[np.isfinite(nearest)]
    if nearest.size:
        dom["neighbour_distance"] = [float(nearest.min()), float(nearest.max())]
        # coordination within 1.2 x the largest nearest-neighbour distance seen: a bulk-trained
        # potential has never seen the under-coordinated atoms of a surface or a vacancy
        rc = COORDINATION_CUTOFF_FACTOR * float(nearest.max())
        coord = np.concatenate([_coordination(c, rc) for c in confs])
        dom["coordination"] = [int(coord.min()), int(coord.max())]
        dom["coordination_cutoff"] = rc
    if periodic:
        vpa = np.array([abs(np.linalg.det(confs[k].cell)) / len(confs[k].numbers)
                        for k in periodic])
        dom["volume_per_atom"] = [float(vpa.min()), float(vpa.max())]
        if all(confs[k].stress is not None for k in periodic):
            def closeness(k):
                return float(np.abs(confs[k].stress).max())
        else:
            def closeness(k):
                return energies_per_atom[k]
        order = sorted(periodic, key=closeness)
        v0 = abs(np.linalg.det(confs[order[0]].cell)) / len(confs[order[0]].numbers)
        families: list[tuple[int, np.ndarray]] = []   # (natoms, reference cell at v0)
        smax = 0.0
        for k in order:
            c = confs[k]
            n = len(c.numbers)
            cell = np.asarray(c.cell, float)
            best = None
            for nf, ref in families:
                if nf != n:
                    continue
                e = float(np.abs(green_lagrange_strain(ref_cell=ref, cell=cell)).max())
                if e < 0.25 and (best is None or e < best):
                    best = e
            if best is None:
                scale = (v0 * n / abs(np.linalg.det(cell))) ** (1.0 / 3.0)
                ref = cell * scale
                families.append((n, ref))
                best = float(np.abs(green_lagrange_strain(ref_cell=ref, cell=cell)).max())
            smax = max(smax, best)
        dom["max_abs_strain"] = smax
        dom["strain_reference"] = ("cell closest to equilibrium in each family, rescaled to "
                                   "the equilibrium volume per atom; Green-Lagrange components")
    return dom


# ----------------------------------------------------------------------------------- the fit

def fit_potential(dataset, form: str = "StillingerWeber", fit: Sequence[str] = SW_DEFAULT_FIT,
                  weights: Mapping[str, float] | None = None,
                  scales: Mapping[str, float] | None = None,
                  heldout_labels: Sequence[str] | str = ("heldout",), n_ensemble: int = 16,
                  seed: int = 0, initial: Mapping[str, float] | None = None,
                  method: str = "laplace", species: str | None = None,
                  ftol: float = 1e-12, xtol: float = 1e-12, max_nfev: int = 2000):
    """Fit a Stillinger-Weber potential to a reference dataset, with a parameter ensemble.

    Parameters
    ----------
    dataset : ReferenceDataset
        Configurations with energies (and forces / stresses where available).  Those whose
        label is in ``heldout_labels`` are not fitted; they measure transferability.
    form : str
        ``"StillingerWeber"`` (the only form so far).
    fit : sequence of str
        Parameters to vary; the others stay at ``initial``.  Default
        ``("epsilon", "sigma", "lambda", "B")``: epsilon sets the energy scale (cohesive energy),
        sigma the length scale (lattice constant), B the repulsion (bulk modulus, C11, C12) and
        lambda the angular stiffness (C44, the internal strain and the rattle forces).  ``A`` is
        left out because ``epsilon, A, lambda`` are degenerate (the energy depends only on
        ``epsilon*A`` and ``epsilon*lambda``); fitting all three raises InputError.  The shape
        parameters ``p = 4, q = 0, a = 1.8, gamma = 1.2`` stay at the original values: they are
        weakly determined by near-equilibrium data and would make the fit ill-conditioned.
    weights : dict, optional
        Non-negative multipliers of the dimensionless ``energy``, ``forces`` and ``stress``
        residuals (default 1 each; 0 drops a term).
    scales : dict, optional
        Positive scales that make the residuals dimensionless: ``energy`` eV/atom (default
        0.01), ``forces`` eV/Å (0.1), ``stress`` GPa (1.0).
    heldout_labels : sequence of str
        Configuration labels kept out of the fit.
    n_ensemble : int
        Number of ensemble members (>= 2).
    seed : int
        Seed of the numpy Generator that draws the ensemble.
    initial : dict, optional
        Starting / fixed parameter values (partial dicts update :data:`SW_SILICON`).
    method : {"laplace", "bootstrap"}
        How the ensemble is made.  ``"laplace"`` (default): draws from the Gaussian
        ``N(p*, s^2 (J^T J)^-1)`` at the optimum, ``s^2`` the residual variance per degree of
        freedom.  It costs one Jacobian instead of ``n_ensemble`` refits, and is accurate here
        because the model is nearly linear in its parameters over the posterior width (a few
        per cent at most); ``s^2`` folds the actual misfit, model error included, into the
        spread.  ``"bootstrap"``: refits on configurations resampled with replacement (robust
        to non-Gaussian errors, ``n_ensemble`` times the cost).
    species : str, optional
        The chemical symbol (default: the single element of the dataset).
    ftol, xtol, max_nfev :
        Passed to :func:`scipy.optimize.least_squares` (trust-region reflective, ``x_scale='jac'``).

    Returns
    -------
    FittedPotential
        ``parameters`` (all, nominal), ``fitted``, ``ensemble`` (n_ensemble x len(fit)),
        ``training_domain``, ``errors`` (``"train"``, and ``"heldout"`` when there are held-out
        configurations: energy_rmse eV/atom, force_rmse eV/Å, stress_rmse GPa, stress_rel_rmse
        = stress RMSE / RMS reference stress), ``units`` and ``provenance`` (optimiser status,
        residual variance, covariance, standard errors and correlations of the fitted
        parameters, the energy reference, weights and scales, timings).

    Raises
    ------
    InputError
        Empty dataset, no training configurations, unknown or degenerate parameter names,
        negative weights, non-positive scales, several elements, unknown form or method.
    ConvergenceError
        The optimiser failed, or the data do not determine the fitted parameters (singular
        Jacobian).
    """
    from scipy.optimize import least_squares

    from ..handoffs import FittedPotential
    from .stillinger_weber import SW_PARAMETER_NAMES, SW_SILICON, validate_sw_parameters

    t_start = time.perf_counter()
    # ---- validation
    if not isinstance(form, str) or form.replace(" ", "").lower() not in _FORM_NAMES:
        raise InputError("form", form, "'StillingerWeber'")
    method = validate.one_of("method", method, ("laplace", "bootstrap"))
    confs = _check_dataset(dataset)
    if isinstance(heldout_labels, str):
        heldout_labels = (heldout_labels,)
    held = set(heldout_labels or ())
    train = [k for k, c in enumerate(confs) if c.label not in held]
    test = [k for k, c in enumerate(confs) if c.label in held]
    if not train:
        raise InputError("dataset", f"{len(confs)} configurations, all labelled "
                         f"{sorted({c.label for c in confs})}",
                         "at least one training configuration (label not in heldout_labels)",
                         hint=f"heldout_labels={tuple(sorted(held))}")
    if isinstance(fit, str):
        fit = (fit,)
    fit = tuple({"lambda_": "lambda", "lam": "lambda"}.get(n, n) for n in fit)
    if not fit:
        raise InputError("fit", fit, "at least one parameter name")
    for n in fit:
        if n not in SW_PARAMETER_NAMES:
            raise InputError("fit", n, "Stillinger-Weber parameter names among "
                             + ", ".join(SW_PARAMETER_NAMES))
    if len(set(fit)) != len(fit):
        raise InputError("fit", fit, "each parameter name once")
    if {"epsilon", "A", "lambda"} <= set(fit):
        raise InputError("fit", fit, "not all of epsilon, A and lambda",
                         hint="the energy depends only on epsilon*A and epsilon*lambda; "
                              "fix one of the three")
    weights = _check_terms("weights", weights, {"energy": 1.0, "forces": 1.0, "stress": 1.0},
                           allow_zero=True)
    if not any(v > 0 for v in weights.values()):
        raise InputError("weights", weights, "at least one positive weight")
    scales = _check_terms("scales", scales, DEFAULT_SCALES, allow_zero=False)
    n_ensemble = validate.positive_int("n_ensemble", n_ensemble, minimum=2)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError("seed", seed, "an integer")
    start = dict(SW_SILICON)
    if initial is not None:
        if not isinstance(initial, Mapping):
            raise InputError("initial", initial, "a dict of Stillinger-Weber parameters")
        start.update({{"lambda_": "lambda"}.get(k, k): v for k, v in initial.items()})
    start = validate_sw_parameters(start, field="initial")
    zs = sorted({int(z) for c in confs for z in np.asarray(c.numbers)})
    from ase.data import chemical_symbols

    if len(zs) != 1:
        raise InputError("dataset", f"elements {[chemical_symbols[z] for z in zs]}",
                         "a single element (Stillinger-Weber here is single-species)")
    sym = chemical_symbols[zs[0]]
    if species is not None and species != sym:
        raise InputError("species", species, f"the dataset's element {sym!r}")
    atom_energy = dataset.method.get("atom_energy_eV") if hasattr(dataset, "method") else None
    fit_offset = atom_energy is None

    # ---- problem
    prob = _SWProblem(confs, sym, atom_energy, start, fit, fit_offset, weights, scales)
    tr = np.array(train)
    mult_train = np.zeros(len(confs))
    mult_train[tr] = 1.0
    offset0 = 0.0
    if fit_offset:
        pred0 = prob.predict(prob.x0(0.0), train)
        offset0 = float(np.mean([prob.data[k][4] - e for k, (e, _, _) in zip(train, pred0)]))
    x0 = prob.x0(offset0)
    lower = np.full(x0.size, -np.inf)
    upper = np.full(x0.size, np.inf)
    for i, n in enumerate(fit):       # keep the potential valid: positive / non-negative ranges
        if n in ("epsilon", "sigma", "a", "gamma", "lambda", "A", "B"):
            lower[i] = 1e-6
        elif n == "costheta0":
            lower[i], upper[i] = -1.0 / prob.xscale[i], 1.0 / prob.xscale[i]

    def resid(x, mult=mult_train):
        return prob.blocks(x, mult)

    n_res = resid(x0).size
    if n_res < x0.size:
        raise InputError("dataset", f"{n_res} residuals for {x0.size} parameters",
                         "at least as many data (energies + force and stress components) as "
                         "fitted parameters")

    def solve(xstart, mult):
        return least_squares(resid, xstart, args=(mult,), method="trf", x_scale="jac",
                             bounds=(lower, upper), ftol=ftol, xtol=xtol, gtol=1e-12,
                             max_nfev=max_nfev)

    t_fit = time.perf_counter()
    sol = solve(x0, mult_train)
    if sol.status <= 0:
        raise ConvergenceError(f"least-squares fit failed: {sol.message}",
                               configuration=f"{len(train)} training configurations",
                               settings={"fit": fit, "max_nfev": max_nfev, "ftol": ftol},
                               suggestion="raise max_nfev, give a better initial guess, or fit "
                                          "fewer parameters")
    xhat = sol.x
    t_fit = time.perf_counter() - t_fit
    at_bound = [n for n, active in zip(list(fit) + ["offset"] * fit_offset, sol.active_mask) if active]
    if at_bound:
        raise ConvergenceError(f"the fit ended on the bound of {', '.join(at_bound)} (where the "
                               "potential degenerates)",
                               configuration=f"{len(train)} training configurations",
                               settings={"fit": fit, "weights": weights},
                               suggestion="check that the dataset's energies, forces and stresses are "
                                          "consistent (units, reference energy), or fit fewer parameters")

    # ---- Laplace covariance (always computed: it gives the standard errors in provenance)
    J = _jacobian_central(lambda x: resid(x, mult_train), xhat, lower=lower)
    r = resid(xhat, mult_train)
    dof = max(r.size - xhat.size, 1)
    s2 = float(r @ r) / dof
    U, sv, Vt = np.linalg.svd(J, full_matrices=False)
    cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else math.inf
    if not cond < 1e10:
        names = list(fit) + ["offset"] * fit_offset
        combo = ", ".join(f"{v:+.2f}*{n}" for v, n in zip(Vt[-1], names))
        raise ConvergenceError("the data do not determine the fitted parameters "
                               f"(Jacobian condition number {cond:.3g})",
                               configuration=f"{len(train)} training configurations",
                               settings={"fit": fit},
                               suggestion=f"fix a parameter or add data; the undetermined "
                                          f"combination is {combo}")
    cov_x = (Vt.T / sv ** 2) @ Vt * s2
    D = np.append(prob.xscale, 1.0) if fit_offset else prob.xscale
    cov_p = cov_x * np.outer(D, D)
    phat_full = prob.params(xhat)
    std = np.sqrt(np.diag(cov_p))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov_p / np.outer(std, std)
    corr = np.where(np.isfinite(corr), corr, 0.0)

    rng = np.random.default_rng(seed)
    k = len(fit)
    if method == "laplace":
        L = Vt.T * (math.sqrt(s2) / sv)               # cov_x = L L^T
        z = rng.standard_normal((n_ensemble, xhat.size))
        xs = xhat + z @ L.T
        # truncate the Gaussian at the parameters' validity bounds (a member with σ < 0 is no
        # potential): redraw the offending members, and record how many were redrawn
        n_redrawn = 0
        for _ in range(1000):
            bad = np.any(xs < lower, axis=1)
            if not bad.any():
                break
            n_redrawn += int(bad.sum())
            xs[bad] = xhat + rng.standard_normal((int(bad.sum()), xhat.size)) @ L.T
        else:
            raise ConvergenceError("the Laplace posterior puts most of its mass outside the valid "
                                   "parameter range", configuration=f"{len(train)} training configurations",
                                   settings={"fit": fit}, suggestion="add data or fit fewer parameters")
        ens = xs[:, :k] * prob.xscale
        ensemble_method = "laplace"
        n_refits = 0
    else:
        ens = np.empty((n_ensemble, k))
        ntr = len(train)
        for m in range(n_ensemble):
            pick = rng.integers(0, ntr, size=ntr)
            mult = np.zeros(len(confs))
            np.add.at(mult, tr[pick], 1.0)
            sb = solve(xhat, mult)
            ens[m] = sb.x[:k] * prob.xscale
        ensemble_method = "bootstrap"
        n_refits = n_ensemble
        n_redrawn = 0

    # ---- errors and domain
    e_train = prob.errors(xhat, train)
    errors = {"train": {kk: e_train[kk] for kk in
                        ("energy_rmse", "force_rmse", "stress_rmse", "stress_rel_rmse")}}
    if test:
        e_test = prob.errors(xhat, test)
        errors["heldout"] = {kk: e_test[kk] for kk in
                             ("energy_rmse", "force_rmse", "stress_rmse", "stress_rel_rmse")}
    energies_pa = [c.energy / len(c.numbers) for c in confs]
    train_confs = [confs[i] for i in train]
    domain = training_domain(train_confs, [energies_pa[i] for i in train])

    parameters = {n: float(v) for n, v in zip(SW_PARAMETER_NAMES, phat_full)}
    names_all = list(fit) + (["energy_offset"] if fit_offset else [])
    provenance = {
        "fitter": "scipy.optimize.least_squares (trf, x_scale='jac'), 2-point Jacobian; "
                  "covariance from a central-difference Jacobian at the optimum",
        "form": "StillingerWeber",
        "initial": dict(start),
        "fixed": [n for n in SW_PARAMETER_NAMES if n not in fit],
        "weights": weights, "scales": scales,
        "scales_units": {"energy": "eV/atom", "forces": "eV/Å", "stress": "GPa"},
        "energy_reference": ("cohesive: E - n*atom_energy_eV (dataset.method)" if not fit_offset
                             else "per-atom energy offset fitted (no atom_energy_eV in the "
                                  "dataset's method); marginalised out of the ensemble"),
        "atom_energy_eV": atom_energy,
        "energy_offset_eV_per_atom": float(xhat[-1]) if fit_offset else None,
        "energy_offset_std_eV_per_atom": float(std[-1]) if fit_offset else None,
        "n_train": len(train), "n_heldout": len(test),
        "heldout_labels": sorted(held), "train_names": [confs[i].name for i in train],
        "heldout_names": [confs[i].name for i in test],
        "n_residuals": int(r.size), "n_parameters": int(xhat.size),
        "residual_variance": s2, "cost": float(sol.cost), "nfev": int(sol.nfev),
        "status": int(sol.status), "message": str(sol.message),
        "jacobian_condition": cond,
        "parameter_names": names_all,
        "parameter_std": {n: float(v) for n, v in zip(names_all, std)},
        "covariance": cov_p.tolist(),
        "correlation": corr.tolist(),
        "ensemble_rationale": (
            "Laplace: one Jacobian instead of n_ensemble refits; the model is nearly linear "
            "over the posterior width, and s^2 carries the actual misfit" if method == "laplace"
            else "bootstrap over training configurations, refits started at the optimum"),
        "n_refits": n_refits, "ensemble_members_redrawn": n_redrawn, "seed": int(seed),
        "dataset_method": dict(getattr(dataset, "method", {}) or {}),
        "fit_seconds": t_fit,
        "total_seconds": time.perf_counter() - t_start,
    }
    units = {n: _SW_UNITS.get(n, "") for n in SW_PARAMETER_NAMES}
    return FittedPotential(form="StillingerWeber", species=(sym,), parameters=parameters,
                           fitted=fit, ensemble=ens, ensemble_method=ensemble_method,
                           training_domain=domain, errors=errors, units=units,
                           provenance=provenance)


def export_lammps(potential, path, member: int | None = None) -> str:
    """Write a fitted potential (nominal, or ensemble member ``member``) as a LAMMPS potential file.

    Stillinger-Weber -> a ``pair_style sw`` file; the LAMMPS run with ``pair_coeff * * FILE Si``
    evaluates the same function as the fitted calculator.  Returns the path.  SNAP -> the
    ``.snapcoeff`` / ``.snapparam`` pair of :func:`.snap.export_snap` (the coefficient file's
    path is returned; ``pair_coeff * * PATH.snapcoeff PATH.snapparam Si``).
    """
    from .stillinger_weber import StillingerWeber, write_lammps_sw

    if getattr(potential, "form", None) == "SNAP":
        from .snap import export_snap

        return export_snap(potential, path, member)[0]

    if getattr(potential, "form", None) != "StillingerWeber":
        raise InputError("potential.form", getattr(potential, "form", None),
                         "'StillingerWeber' or 'SNAP' (the forms with a LAMMPS export)")
    calc = StillingerWeber.from_fitted(potential, member=member)
    species = tuple(getattr(potential, "species", ("Si",)))
    return write_lammps_sw(calc.sw_parameters, path, element=species[0])
