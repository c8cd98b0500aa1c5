"""Active learning of a SNAP potential: explore with the model, label where it is ignorant.

The loop (every step a content-addressed pipeline stage, so an interrupted loop resumes where it
stopped and a finished one replays from the store in seconds)::

    label the initial and test structures with the reference (DFT, or a cheap stand-in)
    repeat:
        fit SNAP on everything labelled so far          (test set held out: errors, calibration)
        quantities of interest with the committee        (e.g. C11, C12, C44 and their spread)
        stop if every quantity's relative spread < threshold          -> "converged"
        stop if the reference budget is spent                         -> "budget"
        explore with the model: MD snapshots at several temperatures, random strains, slabs,
            vacancies (what the ladder will compute must be in the training domain)
        select a batch: greedy maximum expected information gain about the coefficients, each
            pick conditioning the posterior as if it were already labelled (the next pick's gain
            drops where the first one already informs: diversity without a distance threshold --
            batch-mode D-optimal design for a linear model)
        label the batch with the reference

The test set measures the held-out error after every iteration (the history's error curve) and
calibrates the predicted errors.  :func:`plot_history` draws the history.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..core import validate
from ..core.errors import CalculationError, InputError
from ..core.pipeline import Runner, report_progress, stage
from .calculators import ENGINE_TABLE

__all__ = ["active_learning", "ActiveLearningResult", "EXPLORE_DEFAULTS", "plot_history",
           "committee_qois", "select_batch"]

#: What the explorer generates from each base structure every iteration.
EXPLORE_DEFAULTS: dict[str, Any] = {
    "md_temperatures_K": [300.0, 1200.0],   # Langevin MD with the current model
    "md_snapshots": 4,                        # per temperature
    "md_interval_steps": 100,
    "md_supercell": [1, 1, 1],
    "strains": 6,                             # random homogeneous strains (+ small rattle)
    "max_strain": 0.03,
    "slabs": [[1, 1, 1]],                     # Miller indices; [] for none
    "slab_layers": 4,
    "slab_cell": "primitive",                 # 1x1 surface cell of the primitive crystal
    "slab_forces": True,                      # False: slabs labelled with energies only
    "vacuum": 8.0,
    "vacancies": True,
    "vacancy_supercell": [2, 2, 2],
    "rattle": 0.05,                           # Å, added to strained cells, slabs and vacancies
}

#: The quantities of interest the loop knows (committee spread -> stopping criterion).
QOIS = ("C11", "C12", "C44", "gamma111")


# ----------------------------------------------------------------------------- settings
def _explore_settings(explore: Mapping[str, Any] | None) -> dict:
    out = {k: (list(v) if isinstance(v, list) else v) for k, v in EXPLORE_DEFAULTS.items()}
    for k, v in dict(explore or {}).items():
        if k not in EXPLORE_DEFAULTS:
            raise InputError(f"explore[{k!r}]", v, "one of " + ", ".join(EXPLORE_DEFAULTS))
        out[k] = v
    temps = [float(t) for t in out["md_temperatures_K"]]
    if any(not (math.isfinite(t) and t > 0) for t in temps):
        raise InputError("explore['md_temperatures_K']", temps, "positive temperatures (K)")
    out["md_temperatures_K"] = temps
    for k in ("md_snapshots", "strains"):
        out[k] = validate.positive_int(f"explore[{k!r}]", out[k], 0)
    out["md_interval_steps"] = validate.positive_int("explore['md_interval_steps']",
                                                     out["md_interval_steps"])
    out["slab_layers"] = validate.positive_int("explore['slab_layers']", out["slab_layers"], 2)
    for k in ("max_strain", "rattle"):
        out[k] = float(validate.in_range(f"explore[{k!r}]", out[k], 0.0, 0.2))
    out["vacuum"] = float(validate.positive("explore['vacuum']", out["vacuum"]))
    out["slab_cell"] = validate.one_of("explore['slab_cell']", out["slab_cell"],
                                       ("primitive", "conventional"))
    out["vacancies"] = bool(out["vacancies"])
    if not isinstance(out["slab_forces"], (bool, np.bool_)):
        raise InputError("explore['slab_forces']", out["slab_forces"], "True or False")
    out["slab_forces"] = bool(out["slab_forces"])
    for k in ("md_supercell", "vacancy_supercell"):
        sc = [int(x) for x in out[k]]
        if len(sc) != 3 or min(sc) < 1:
            raise InputError(f"explore[{k!r}]", out[k], "three positive repeats such as [2, 2, 2]")
        out[k] = sc
    out["slabs"] = [[int(x) for x in m] for m in out["slabs"]]
    return out


# ----------------------------------------------------------------------------- stages
@stage("workflows.active_learning.fit", version="1")
def al_fit(dataset, fit: dict, seed: int):
    """SNAP on the labelled set; the ``test`` label held out (errors and calibration)."""
    from ..atomistic.snap import fit_snap

    return fit_snap(dataset, heldout_labels=("test",), seed=seed, **fit)


@stage("workflows.active_learning.qoi", version="1")
def al_qoi(potential, structure, qois: list, strain_step: float) -> dict:
    """The quantities of interest over the committee (value, spread, relative spread)."""
    nominal, members, units = _committee_values(potential, structure, qois, strain_step)
    out = {}
    for q in qois:
        vals = [m[q] for m in members if m is not None]
        failed = len(members) - len(vals)
        v = nominal[q] if nominal is not None else math.nan
        if failed or nominal is None or len(vals) < 2:
            # a member without a stable crystal is itself the loudest uncertainty there is
            std = math.inf
        else:
            std = float(np.sqrt(np.mean((np.array(vals) - v) ** 2)))
        out[q] = {"value": v, "std": std, "unit": units[q], "n_failed": failed,
                  "rel_std": std / abs(v) if (v and math.isfinite(v)) else math.inf}
    return out


def _n_picked(dataset) -> int:
    return sum(1 for c in dataset.configurations if c.label == "al")


def _stop_reason(qoi: dict, threshold: float, dataset, budget: int) -> str | None:
    if max(v["rel_std"] for v in qoi.values()) < threshold:
        return "converged"
    if _n_picked(dataset) >= budget:
        return "budget"
    return None


@stage("workflows.active_learning.explore", version="2")
def al_explore(potential, structures: list, explore: dict, seed: int, iteration: int, qoi: dict,
               threshold: float, dataset, budget: int) -> list:
    """Candidate configurations generated with the current model (``Structure`` list); none
    when the loop has stopped (quantities converged or budget spent)."""
    from ..atomistic.snap import SNAPCalculator
    from ..handoffs import Structure
    from . import generate as G

    if _stop_reason(qoi, threshold, dataset, budget):
        return []
    rng = np.random.default_rng([seed, iteration, 0xA1])
    cands = []
    total = max(len(structures), 1)
    for b, base in enumerate(structures):
        atoms = base.to_atoms()
        tag = f"it{iteration}-s{b}"
        calc = SNAPCalculator(potential)
        for t in explore["md_temperatures_K"]:
            if explore["md_snapshots"] == 0:
                break
            try:
                snaps = G.md_snapshots(atoms.repeat(explore["md_supercell"]), calc, t,
                                       explore["md_snapshots"], explore["md_interval_steps"],
                                       seed=int(rng.integers(2 ** 31)), equilibration_steps=100,
                                       prefix=f"{tag}-md{int(t)}K")
            except CalculationError:
                snaps = []        # the model blew up: the strained / rattled cells still teach it
            cands += [(s, "md") for s in snaps]
        for k in range(explore["strains"]):
            e = rng.uniform(-1, 1, (3, 3)) * explore["max_strain"]
            e = 0.5 * (e + e.T)
            s = atoms.copy()
            s.set_cell(np.asarray(atoms.cell) @ (np.eye(3) + e), scale_atoms=True)
            s.rattle(explore["rattle"], seed=int(rng.integers(2 ** 31)))
            s.info["name"] = f"{tag}-strain{k}"
            cands.append((s, "strain"))
        for hkl in explore["slabs"]:
            s = _slab(atoms, hkl, explore)
            s.rattle(explore["rattle"], seed=int(rng.integers(2 ** 31)))
            s.info["name"] = f"{tag}-slab{''.join(str(h) for h in hkl)}"
            cands.append((s, "slab"))
        if explore["vacancies"]:
            for s in G.vacancies(atoms, explore["vacancy_supercell"], prefix=f"{tag}-vac"):
                s.rattle(explore["rattle"], seed=int(rng.integers(2 ** 31)))
                cands.append((s, "vacancy"))
        report_progress((b + 1) / total, f"{len(cands)} candidates")
    out = []
    for k, (s, kind) in enumerate(cands):
        name = str(s.info.get("name") or f"it{iteration}-c{k}")
        # a slab's cell holds vacuum: its stress says nothing about the material and costs
        # the reference as much again (PySCF: a 8-atom slab 355 s with E+F, over 600 s with S)
        if kind == "slab":
            props = ["energy", "forces"] if explore["slab_forces"] else ["energy"]
        else:
            props = ["energy", "forces", "stress"] if all(s.pbc) else ["energy", "forces"]
        out.append(Structure.from_atoms(s, name=name, kind=kind, properties=props))
    return out


def _slab(atoms, hkl, explore: dict):
    """A slab cut in the widest interplanar gap (the (111) shuffle plane of diamond, the one a
    crack opens: :func:`~scaleladder.atomistic.properties.build_slab`), in the surface cell of
    the primitive crystal (``slab_cell="primitive"``: 1x1 (111), 2 atoms per double layer, the
    size DFT affords) or of the conventional cell (2x2 for (111))."""
    import warnings

    import spglib
    from ase import Atoms

    from ..atomistic.properties import build_slab

    bulk = atoms
    if explore["slab_cell"] == "primitive":
        with warnings.catch_warnings():  # spglib 2.x: deprecation of its old error handling
            warnings.simplefilter("ignore", DeprecationWarning)
            lat, frac, nums = spglib.standardize_cell(
                (np.asarray(atoms.cell), atoms.get_scaled_positions(), atoms.numbers),
                to_primitive=True, no_idealize=True, symprec=1e-3)
        bulk = Atoms(numbers=nums, scaled_positions=frac, cell=lat, pbc=True)
    return build_slab(bulk, tuple(hkl), layers=explore["slab_layers"], vacuum=explore["vacuum"],
                      surface_cell=explore["slab_cell"])


@stage("workflows.active_learning.select", version="2")
def al_select(potential, candidates: list, n: int, qoi: dict, threshold: float, dataset,
              budget: int) -> dict:
    """Greedy batch of at most ``n`` candidates (no more than the budget leaves) of largest
    expected information gain, each pick conditioning the posterior (:func:`select_batch`);
    ``stop`` says why the loop ends here (``"converged"``, ``"budget"``) or is ``None``."""
    stop = _stop_reason(qoi, threshold, dataset, budget)
    if stop or not candidates:
        return {"selected": [], "structures": [], "stop": stop or "no candidates", "kinds": [],
                "gain": [], "score": [], "picked_gain": [], "picked_score": []}
    room = budget - _n_picked(dataset)
    sel = select_batch(potential, [c.to_atoms() for c in candidates], min(n, room),
                       properties=[c.info.get("properties", ("energy", "forces", "stress"))
                                   for c in candidates])
    sel["structures"] = [candidates[k] for k in sel["selected"]]
    sel["kinds"] = [str(candidates[k].info.get("kind", "")) for k in sel["selected"]]
    sel["stop"] = None
    return sel


@stage("workflows.active_learning.label", version="1", engine_param="engine",
       engines=ENGINE_TABLE)
def al_label(selection: dict, j: int, engine: dict, iteration: int,
             energy_shift: dict | None = None) -> dict | None:
    """The reference calculation of pick ``j`` of a batch (``None`` when the batch is smaller;
    ``{"failed": message}`` when the reference does not converge: the loop goes on without it).
    ``energy_shift``: k-mesh -> eV per atom added to energies on that mesh (with the engine's
    own ``energy_shift_per_atom``); a separate argument so that the engine spec can stay plain
    data while the shift comes from a stage (a plain spec makes the label depend on its own
    engine's code only)."""
    from ..core.errors import ConvergenceError
    from .generate import single_point

    if j >= len(selection["structures"]):
        return None
    s = selection["structures"][j]
    shifts = {**dict(engine.get("energy_shift_per_atom") or {}), **dict(energy_shift or {})}
    eng = engine_for_structure({k: v for k, v in engine.items()
                                if k != "energy_shift_per_atom"}, s.to_atoms())
    name = f"al{iteration}-{s.info['name']}"
    try:
        r = single_point(s, eng)
    except (ConvergenceError, CalculationError) as exc:
        return {"failed": f"{type(exc).__name__}: {exc}", "name": name}
    r["name"] = name
    mesh = eng.get("params", {}).get("kpts")
    key = "x".join(str(int(n)) for n in mesh) if mesh is not None else None
    if key in shifts:  # put this k-mesh's energies on the dataset's reference (see engine docs)
        r["energy_shift_eV"] = float(shifts[key]) * len(r["numbers"])
        r["energy"] = float(r["energy"]) + r["energy_shift_eV"]
    return r


def engine_for_structure(engine: dict, atoms) -> dict:
    """The reference spec for one structure: a PySCF spec with ``kspacing`` (Å⁻¹, 2π included)
    gets the Monkhorst-Pack mesh of that density for this cell (shifted, even meshes; one point
    along a vacuum direction), so cells of any shape and size share one k-point density."""
    if engine.get("engine") != "pyscf" or "kspacing" not in engine.get("params", {}):
        return engine
    from ..electronic.pyscf_calculator import kmesh_for_cell

    params = dict(engine["params"])
    mesh = kmesh_for_cell(atoms, params.pop("kspacing"))
    params.update(kpts=list(mesh), gamma_centered=False, kpts_scaled=None)
    return {**engine, "params": params}


@stage("workflows.active_learning.merge", version="1")
def al_merge(dataset, labels: list):
    """The dataset with the batch's reference results added (label ``"al"``)."""
    from ..handoffs import ReferenceDataset
    from .generate import configuration_from_result

    confs = list(dataset.configurations)
    confs += [configuration_from_result(r, "al", r["name"]) for r in labels
              if r is not None and "failed" not in r]
    return ReferenceDataset(tuple(confs), dict(dataset.method))


@stage("workflows.active_learning.history", version="1")
def al_history(fits: list, qois: list, selections: list, labels: list, per_iteration: int,
               threshold: float) -> dict:
    """The loop's history (one entry per fit up to the one it stops at), why it stopped, and
    which fit is the final model (``labels``: every round's label results, flat)."""
    labels = [labels[k:k + per_iteration] for k in range(0, len(labels), per_iteration)]
    history = []
    stopped, final = "max_iterations", len(fits) - 1
    n_al = 0
    for i, (pot, q) in enumerate(zip(fits, qois)):
        entry = {"iteration": i, "n_train": int(pot.provenance["n_train"]),
                 "n_heldout": int(pot.provenance["n_heldout"]), "n_picked": n_al,
                 "heldout": dict(pot.errors.get("heldout", {})),
                 "calibration": pot.provenance.get("calibration", {}),
                 "calibration_factor": pot.provenance.get("calibration_factor"),
                 "qoi": q, "max_rel_std": max(v["rel_std"] for v in q.values())}
        history.append(entry)
        if i == len(selections):          # the fit after the last batch
            break
        sel = selections[i]
        if sel["stop"]:
            stopped, final = sel["stop"], i
            break
        done = [r for r in labels[i] if r is not None]
        entry["picked"] = [{"name": r["name"], "kind": k, "predicted_force_error": sc,
                            "information_gain": g, "failed": r.get("failed")}
                           for r, k, sc, g in zip(done, sel["kinds"], sel["picked_score"],
                                                  sel["picked_gain"])]
        entry["candidate_score_median"] = (float(np.median(sel["score"])) if sel["score"]
                                           else None)
        n_al += len(done)
    return {"history": history, "stopped": stopped, "final": final, "threshold": threshold}


def al_graph(dataset, structures: list, engine: dict, *, budget: int, threshold: float,
             per_iteration: int, max_iterations: int, qois: list, explore: dict, fit: dict,
             strain_step: float, seed: int, label: str = "AL", energy_shift: Any = None) -> dict:
    """The active-learning loop as a static DAG of stages (``dataset`` a node or a
    ReferenceDataset; ``structures`` the base ``Structure`` list; ``engine`` the reference's
    calculator spec, plain data or a node; ``energy_shift`` an optional k-mesh -> eV/atom
    shift of its energies, plain or a node, see :func:`al_label`): ``max_iterations`` rounds of
    fit -> QoIs -> explore -> select -> label (one stage per pick) -> merge, a final fit, and
    the history.  Rounds after the loop stops do no work (empty candidates and batches) and
    refit the same data.  Returns ``{"history", "fits", "qois", "datasets", "selections"}``."""
    fits, qnodes, sels, labels_all, datasets = [], [], [], [], [dataset]
    for it in range(max_iterations + 1):
        f = al_fit.bind(dataset=datasets[-1], fit=fit, seed=seed).with_label(f"{label} fit {it}")
        q = al_qoi.bind(potential=f, structure=structures[0], qois=qois,
                        strain_step=strain_step).with_label(f"{label} QoIs {it}")
        fits.append(f)
        qnodes.append(q)
        if it == max_iterations:
            break
        c = al_explore.bind(potential=f, structures=structures, explore=explore, seed=seed,
                            iteration=it, qoi=q, threshold=threshold, dataset=datasets[-1],
                            budget=budget).with_label(f"{label} explore {it}")
        s = al_select.bind(potential=f, candidates=c, n=per_iteration, qoi=q,
                           threshold=threshold, dataset=datasets[-1], budget=budget
                           ).with_label(f"{label} select {it}")
        shift = {} if energy_shift is None else {"energy_shift": energy_shift}
        labs = [al_label.bind(selection=s, j=j, engine=engine, iteration=it, **shift
                              ).with_label(f"{label} reference {it}.{j}")
                for j in range(per_iteration)]
        datasets.append(al_merge.bind(dataset=datasets[-1], labels=labs
                                      ).with_label(f"{label} dataset {it + 1}"))
        sels.append(s)
        labels_all.append(labs)
    hist = al_history.bind(fits=fits, qois=qnodes, selections=sels,
                           labels=[x for labs in labels_all for x in labs],
                           per_iteration=per_iteration, threshold=threshold).with_label(f"{label} history")
    return {"history": hist, "fits": fits, "qois": qnodes, "datasets": datasets,
            "selections": sels}


# ----------------------------------------------------------------------------- selection
def select_batch(potential, candidates: Sequence[Any], n: int,
                 properties: Sequence[Sequence[str]] | None = None) -> dict:
    """Pick ``n`` candidates by greedy expected information gain (batch D-optimal design).

    A candidate's rows ``X`` (its energy per atom, forces and, for periodic cells, stress), with
    the noise levels ``R`` the evidence found, would shrink the posterior covariance ``S`` by
    ``0.5 log det(I + R^-1/2 X S X^T R^-1/2)`` nats of information: the largest gain is picked,
    the posterior is conditioned on its (still unknown) values, and the next pick is the
    largest gain *given* the earlier ones.  Similar candidates lose their gain to the first of
    them, so the batch is diverse without any distance threshold; strained cells (stress rows)
    compete with MD snapshots, slabs and vacancies (force rows) on one scale.  ``properties``
    (per candidate, e.g. ``["energy"]`` for an energy-only slab) limits the rows to what the
    reference will compute; default: energy, forces, and stress for periodic cells.

    Returns
    -------
    dict
        ``selected`` (candidate indices, in pick order), ``gain`` (each candidate's information
        gain before any pick, nats), ``score`` (each candidate's predicted largest per-atom
        force error, eV/Å), ``picked_gain`` and ``picked_score`` (of each pick when picked),
        ``kinds`` (candidate ``info['kind']`` of each pick).
    """
    from ..atomistic.snap import _descriptor_settings, snap_descriptors
    from ..core.units import EV_PER_A3_IN_GPA

    n = validate.positive_int("n", n)
    cov = np.array(potential.covariance, float)
    noise = potential.provenance.get("noise", {})
    var = {k: float(noise.get(k, d)) ** 2 for k, d in (("energy", 0.002), ("forces", 0.05),
                                                       ("stress", 0.2))}
    settings = _descriptor_settings(potential)
    rows = []
    if properties is not None and len(properties) != len(candidates):
        raise InputError("properties", len(properties), f"one list per candidate "
                         f"({len(candidates)})")
    for k, at in enumerate(candidates):
        props = (("energy", "forces", "stress") if properties is None
                 else tuple(properties[k]))
        d = snap_descriptors(at, potential.species, settings, per_atom=False)
        X = [d["energy"][None, :] / d["natoms"]]
        R = [[var["energy"]]]
        if "forces" in props:
            X.insert(0, d["forces"])
            R.insert(0, np.full(d["forces"].shape[0], var["forces"]))
        if np.all(at.pbc) and "stress" in props:
            X.append(d["stress"] * EV_PER_A3_IN_GPA)
            R.append(np.full(6, var["stress"]))
        rows.append((np.vstack(X), np.concatenate(R), d["forces"]))

    def gain(S, k):
        X, R, _ = rows[k]
        w = X / np.sqrt(R)[:, None]
        # det(I + W S W^T) = det(I_p + S W^T W): p x p, whatever the number of rows
        sign, logdet = np.linalg.slogdet(np.eye(S.shape[0]) + S @ (w.T @ w))
        return 0.5 * float(logdet)

    def force_error(S, k):  # predicted, whether or not the reference will compute forces
        f = rows[k][2]
        v = np.einsum("ij,jk,ik->i", f, S, f).reshape(-1, 3).sum(axis=1)
        return float(np.sqrt(max(v.max(), 0.0)))

    first_gain = [gain(cov, k) for k in range(len(rows))]
    first_score = [force_error(cov, k) for k in range(len(rows))]
    chosen, picked_gain, picked_score = [], [], []
    S = cov.copy()
    for _ in range(min(n, len(rows))):
        g = [(-np.inf if k in chosen else gain(S, k)) for k in range(len(rows))]
        k = int(np.argmax(g))
        chosen.append(k)
        picked_gain.append(g[k])
        picked_score.append(force_error(S, k))
        X, R, _ = rows[k]
        SX = S @ X.T
        S = S - SX @ np.linalg.solve(X @ SX + np.diag(R), SX.T)
        S = 0.5 * (S + S.T)
    kinds = [str(getattr(candidates[k], "info", {}).get("kind", "")) for k in chosen]
    return {"selected": chosen, "gain": first_gain, "score": first_score,
            "picked_gain": picked_gain, "picked_score": picked_score, "kinds": kinds}


# ----------------------------------------------------------------------------- QoIs
def committee_qois(potential, structure, qois: Sequence[str], strain_step: float = 0.005) -> dict:
    """Quantities of interest of a cubic crystal over the potential's committee (Estimates).

    ``C11``, ``C12``, ``C44`` (GPa, relaxed ions, at the member's own zero-pressure lattice
    constant) and ``gamma111`` (J/m², relaxed (111) surface of the cubic cell's crystal): each
    member's value is a sample of the source ``"committee"``.
    """
    from ..uq import Estimate

    nominal, members, units = _committee_values(potential, structure, qois, strain_step)
    if nominal is None or any(m is None for m in members):
        bad = sum(m is None for m in members) + (nominal is None)
        raise CalculationError(f"{bad} of {len(members) + 1} committee members (nominal "
                               "included) have no stable crystal: the potential is too uncertain "
                               "for these quantities; label more data")
    return {q: Estimate(nominal[q], units[q], {"committee": np.array([m[q] for m in members])})
            for q in qois}


def _committee_values(potential, structure, qois, strain_step):
    """(nominal values, each member's values or None where it fails, units)."""
    from ..atomistic import elastic_constants, relax_lattice_constant, surface_energy
    from ..atomistic.snap import SNAPCalculator
    from ..core.errors import ConvergenceError

    bad = [q for q in qois if q not in QOIS]
    if bad:
        raise InputError("qois", list(qois), "names among " + ", ".join(QOIS))
    base = structure.to_atoms() if hasattr(structure, "to_atoms") else structure.copy()

    def values(member):
        calc = SNAPCalculator(potential, member=member)
        at = base.copy()
        a_in = float(np.linalg.norm(at.cell[0]))
        a0 = relax_lattice_constant(at, calc)
        at.set_cell(np.asarray(at.cell) * a0 / a_in, scale_atoms=True)
        at.calc = calc
        out = {}
        if {"C11", "C12", "C44"} & set(qois):
            c = elastic_constants(at, calc, relax_ions=True, strain_step=strain_step)
            v = np.asarray(c.voigt.value)
            out.update({"C11": float(v[0, 0]), "C12": float(v[0, 1]), "C44": float(v[3, 3])})
        if "gamma111" in qois:
            g = surface_energy(at, calc, miller=(1, 1, 1), layers=8, relax=True)
            out["gamma111"] = float(g.value.value)
        return out

    def safe(member):
        try:
            return values(member)
        except (ConvergenceError, CalculationError, InputError):
            return None

    units = {"C11": "GPa", "C12": "GPa", "C44": "GPa", "gamma111": "J/m^2"}
    return safe(None), [safe(m) for m in range(potential.n_members)], units


# ----------------------------------------------------------------------------- the loop
@dataclass
class ActiveLearningResult:
    """What an active-learning run produced.

    Attributes
    ----------
    potential : FittedPotential
        The last model (trained on everything labelled).
    dataset : ReferenceDataset
        Every labelled configuration (``initial``, ``test``, and ``al`` picks).
    history : list of dict
        Per iteration: ``iteration``, ``n_train``, ``n_reference`` (reference calculations so
        far), ``heldout`` (errors on the test set), ``calibration`` (the fit's report),
        ``qoi`` (value, std, rel_std per quantity), ``max_rel_std``, and for iterations that
        explored: ``n_candidates``, ``picked`` (names, kinds, predicted errors).
    stopped : str
        ``"converged"`` (every quantity's committee spread below the threshold) or ``"budget"``.
    keys : dict
        Store keys of the last fit and dataset.
    """

    potential: Any
    dataset: Any
    history: list
    stopped: str
    keys: dict = field(default_factory=dict)
    threshold: float | None = None

    def summary(self) -> str:
        lines = [f"active learning stopped: {self.stopped} after {len(self.history)} fit(s)"]
        for h in self.history:
            ho = h.get("heldout") or {}
            q = ", ".join(f"{k} {v['value']:.4g}±{v['std']:.2g}" for k, v in h["qoi"].items())
            lines.append(f"  it {h['iteration']}: {h['n_train']} train, {h['n_picked']} "
                         f"picked; held-out E {1e3 * (ho.get('energy_rmse') or 0):.2f} "
                         f"meV/atom, F {ho.get('force_rmse') or 0:.3f} eV/Å; {q}")
        return "\n".join(lines)


def _check_structures(field_name: str, structures) -> list:  # noqa: D103
    from ase import Atoms

    if isinstance(structures, Atoms):
        structures = [structures]
    out = list(structures or [])
    for i, s in enumerate(out):
        if not isinstance(s, Atoms) or len(s) == 0:
            raise InputError(f"{field_name}[{i}]", type(s).__name__, "a non-empty ase.Atoms")
    return out


def active_learning(base: Any, reference: dict, *, initial: Sequence[Any], test: Sequence[Any],
                    budget: int, threshold: float = 0.02, per_iteration: int = 4,
                    max_iterations: int = 6, qois: Sequence[str] = ("C11", "C12", "C44"),
                    explore: Mapping[str, Any] | None = None, fit: Mapping[str, Any] | None = None,
                    strain_step: float = 0.005, seed: int = 0, store: Any = None,
                    executor: Any = None, progress: bool = False) -> ActiveLearningResult:
    """Active learning of a SNAP potential against a reference calculator (see module notes).

    Parameters
    ----------
    base : ase.Atoms or sequence of ase.Atoms
        The crystal(s) to explore around; the first is the cubic cell of the quantities of
        interest.
    reference : dict
        Calculator spec of the reference (:mod:`scaleladder.workflows.calculators`): PySCF DFT
        (with ``params["kspacing"]`` the k-mesh follows each cell, see
        :func:`engine_for_structure`), or ``{"engine": "sw"}`` / ``{"engine": "emt"}`` standing
        in for it.  ``reference["energy_shift_per_atom"]`` (``{"4x4x1": eV}``) adds a per-atom
        energy to the labels computed on that k-mesh: a dataset mixing k-samplings of unequal
        convergence is put on one energy reference (silicon-mlip: the (111) slabs' mesh vs the
        flagship's bulk mesh, 0.1 eV/atom apart).
    initial : sequence of ase.Atoms
        The first training set (labelled by the reference).
    test : sequence of ase.Atoms
        Held-out set (labelled once): errors and calibration.
    budget : int
        Largest number of reference calculations the loop adds (initial and test sets apart).
    threshold : float
        Stop when every quantity's committee relative standard deviation is below it.
    per_iteration : int
        Configurations labelled per iteration.
    max_iterations : int
        Rounds at most (the budget and the threshold normally stop the loop first).
    qois : sequence of str
        Among ``C11``, ``C12``, ``C44``, ``gamma111``.
    explore : dict, optional
        :data:`EXPLORE_DEFAULTS` overrides.
    fit : dict, optional
        Keyword arguments of :func:`~scaleladder.atomistic.snap.fit_snap` (``descriptors``,
        ``scales``, ``n_committee``, ``calibrate``).
    strain_step : float
        Strain step of the elastic constants.
    seed : int
    store : Store, path or None
        Where every stage is cached (``None``: a temporary store, nothing survives).
    executor, progress
        As for :class:`~scaleladder.core.pipeline.Runner` (the picks of a batch are labelled
        concurrently on the executor).

    Returns
    -------
    ActiveLearningResult
    """
    from ..handoffs import Structure
    from .generate import _open_store, run_generation

    settings = check_settings(base, reference, initial=initial, test=test, budget=budget,
                              threshold=threshold, per_iteration=per_iteration,
                              max_iterations=max_iterations, qois=qois, explore=explore, fit=fit)
    bases, spec = settings["bases"], settings["reference"]

    def tagged(atoms_list, label, prefix):
        out = []
        for i, a in enumerate(atoms_list):
            a = a.copy()
            a.info = {"label": label, "name": f"{prefix}{i}-{a.get_chemical_formula()}",
                      "properties": ["energy", "forces", "stress"] if all(a.pbc)
                      else ["energy", "forces"]}
            out.append(a)
        return out

    labelled = tagged(settings["initial"], "initial", "init") + tagged(settings["test"], "test", "test")
    with _open_store(store) as st:
        rep = run_generation(labelled, spec, store=st, executor=executor, progress=bool(progress))
        if rep.failed:
            raise CalculationError("the reference failed on initial/test configurations: "
                                   + "; ".join(f"{k}: {v}" for k, v in rep.failed.items()))
        g = al_graph(rep.dataset, [Structure.from_atoms(b, name=f"base{i}")
                                   for i, b in enumerate(bases)], spec,
                     budget=int(budget), threshold=settings["threshold"],
                     per_iteration=settings["per_iteration"],
                     max_iterations=settings["max_iterations"], qois=settings["qois"],
                     explore=settings["explore"], fit=settings["fit"], strain_step=strain_step,
                     seed=seed)
        out = Runner(st, executor=executor, progress=bool(progress)).run({"history": g["history"]})
        h = out["history"]
        final = h["final"]
        got = Runner(st, executor="local", progress=False).run(
            {"fit": g["fits"][final], "dataset": g["datasets"][final]})
        n0 = len(labelled)
        for e in h["history"]:
            e["n_reference"] = n0 + e["n_picked"]
            e["fit_key"] = g["fits"][e["iteration"]].key
        return ActiveLearningResult(potential=got["fit"], dataset=got["dataset"],
                                    history=h["history"], stopped=h["stopped"],
                                    keys={"fit": g["fits"][final].key,
                                          "dataset": g["datasets"][final].key},
                                    threshold=settings["threshold"])


def check_settings(base: Any, reference: dict, *, initial: Sequence[Any] | None,
                   test: Sequence[Any] | None, budget: int, threshold: float, per_iteration: int,
                   max_iterations: int, qois: Sequence[str], explore: Mapping[str, Any] | None,
                   fit: Mapping[str, Any] | None) -> dict:
    """Validate the loop's settings before any work (``initial``/``test`` ``None``: given as a
    dataset elsewhere, e.g. a ladder's); returns them normalised."""
    from ase import Atoms

    from ..atomistic.snap import _scales, _settings
    from .generate import engine_spec

    bases = _check_structures("base", [base] if isinstance(base, Atoms) else base)
    if not bases:
        raise InputError("base", base, "at least one structure to explore around")
    out: dict[str, Any] = {"bases": bases}
    if initial is not None:
        out["initial"] = _check_structures("initial", initial)
        if not out["initial"]:
            raise InputError("initial", initial, "at least one initial training configuration")
    if test is not None:
        out["test"] = _check_structures("test", test)
        if not out["test"]:
            raise InputError("test", test, "at least one held-out configuration (errors and "
                             "calibration are measured on it)")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget <= 0:
        raise InputError("budget", budget, "a positive number of reference calculations "
                         "(a budget of zero labels nothing: there is nothing to learn from)")
    out["threshold"] = validate.positive("threshold", threshold)
    out["per_iteration"] = validate.positive_int("per_iteration", per_iteration)
    out["max_iterations"] = validate.positive_int("max_iterations", max_iterations)
    qois = list(qois)
    bad = [q for q in qois if q not in QOIS]
    if bad or not qois:
        raise InputError("qois", qois, "one or more of " + ", ".join(QOIS))
    out["qois"] = qois
    out["explore"] = _explore_settings(explore)
    fit_kw = dict(fit or {})
    unknown = set(fit_kw) - {"descriptors", "scales", "n_committee", "calibrate"}
    if unknown:
        raise InputError("fit", sorted(unknown), "keys among descriptors, scales, n_committee, "
                         "calibrate")
    fit_kw.setdefault("n_committee", 8)
    fit_kw["descriptors"] = _settings(fit_kw.get("descriptors"))
    fit_kw["scales"] = _scales(fit_kw.get("scales"))
    if isinstance(fit_kw["n_committee"], bool) or not isinstance(fit_kw["n_committee"], int) \
            or fit_kw["n_committee"] < 2:
        raise InputError("fit['n_committee']", fit_kw["n_committee"],
                         "at least 2 committee members (one member has no spread)")
    out["fit"] = fit_kw
    ref = dict(reference)
    shifts = ref.pop("energy_shift_per_atom", None)
    if shifts is not None:
        if not isinstance(shifts, Mapping) or not all(
                isinstance(k, str) and len(k.split("x")) == 3
                and all(t.isdigit() for t in k.split("x")) for k in shifts):
            raise InputError("reference['energy_shift_per_atom']", shifts,
                             "a mapping from a k-mesh such as '4x4x1' to eV per atom")
        shifts = {k: validate.finite(f"reference['energy_shift_per_atom']['{k}']", v)
                  for k, v in shifts.items()}
    params = dict(ref.get("params") or {})
    ks = params.get("kspacing")
    if ks is not None:
        if ref.get("engine") != "pyscf":
            raise InputError("reference['params']['kspacing']", ks, "only for engine 'pyscf'")
        validate.positive("reference['params']['kspacing']", ks)
        check = {**ref, "params": {k: v for k, v in params.items() if k != "kspacing"}}
        engine_spec(check)
        out["reference"] = {**engine_spec(check), "params": params}
    else:
        out["reference"] = engine_spec(ref)
    if shifts:
        out["reference"] = {**out["reference"], "energy_shift_per_atom": shifts}
    return out


# ----------------------------------------------------------------------------- plot
def plot_history(result: ActiveLearningResult, path=None):
    """Three panels over the loop: held-out errors, predicted error of the picks, and the
    quantities' committee spread against the threshold.  Returns the figure (saved if ``path``)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    h = result.history
    n = [e["n_train"] for e in h]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    ax[0].plot(n, [1e3 * (e["heldout"].get("energy_rmse") or np.nan) for e in h], "o-",
               label="energy (meV/atom)")
    ax[0].plot(n, [1e3 * (e["heldout"].get("force_rmse") or np.nan) / 10 for e in h], "s-",
               label="forces (10 meV/Å)")
    ax[0].set_xlabel("training configurations")
    ax[0].set_title("held-out error")
    ax[0].legend(fontsize=8)
    for e in h:
        if e.get("picked"):
            ax[1].plot([e["n_train"]] * len(e["picked"]),
                       [p["predicted_force_error"] for p in e["picked"]], "k.")
            if e.get("candidate_score_median") is not None:
                ax[1].plot(e["n_train"], e["candidate_score_median"], "r_", ms=14)
    ax[1].set_xlabel("training configurations")
    ax[1].set_ylabel("predicted max force error (eV/Å)")
    ax[1].set_title("picks (dots) and candidates' median (bars)")
    for q in h[0]["qoi"]:
        ax[2].semilogy(n, [e["qoi"][q]["rel_std"] for e in h], "o-", label=q)
    thr = getattr(result, "threshold", None)
    if thr:
        ax[2].axhline(thr, color="k", ls="--")
    ax[2].set_xlabel("training configurations")
    ax[2].set_title("committee spread (relative)")
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
