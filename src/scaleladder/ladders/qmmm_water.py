"""Ladder ``qmmm-water``: the vertical ionisation energy of a water molecule inside a water cluster.

A concurrent QM/MM ladder.  A cluster of flexible water molecules (SPC/Fw by default) is relaxed
with the MM force field; the molecule nearest its centre is the solute.  Its vertical ionisation
energy ``IE = E(N-1 electrons, doublet) - E(N, singlet)`` at the relaxed geometry is computed with
the QM region growing molecule by molecule (the solute, then its nearest neighbours by O-O
distance: ``qm.sizes`` molecules) and three embeddings of the same QM calculation (PySCF, any libxc
functional):

* ``electrostatic``: the MM point charges in the QM Hamiltonian (additive, electrostatic
  embedding; the main result);
* ``electrostatic-smeared``: the same with Gaussian-smeared charges (``qm.charge_width`` Å), a
  second, equally defensible charge model;
* ``mechanical``: classical QM-MM Coulomb with fixed model charges; the QM density is not
  polarised by its surroundings, so the IE is that of the isolated QM molecules (shown for
  reference, not a source: it is the wrong physics for an ionisation energy, not an alternative).

The result is an :class:`~scaleladder.uq.Estimate` (eV) with two sources:

``qm_region``
    convergence across shells: a one-sigma error equal to the change of the IE from the
    second-largest to the largest QM region (entered as value ± σ/√2, so the sample standard
    deviation is σ);
``embedding``
    the two electrostatic embeddings as alternatives (point and Gaussian-smeared charges).

With more than one QM molecule the cation's hole may move off the solute (the cluster's IE is
that of its easiest-ionised QM molecule, and semi-local functionals delocalise it); the Mulliken
spin on the solute is reported for each calculation so this is visible ("hole on solute", 1 =
localised on it).  Every QM region holds whole molecules, so no covalent bond is cut and no link
atom is needed
(link atoms are exercised by the coupling's own tests).  Ionising a cluster of the smallest QM
region is the classic case where electrostatic embedding matters: the environment's field
stabilises the cation.  Reference values: gas-phase water 12.62 eV (vertical, photoelectron
spectroscopy), liquid-water surface 11.16 eV (Winter et al., J. Phys. Chem. A 108, 2625 (2004));
a fixed-charge environment without MM polarisation recovers only part of that shift.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core import validate as V
from ..core.errors import InputError
from ..core.pipeline import stage
from ..uq import Estimate, one_sigma_samples
from .base import LadderSpec, Setting

QM_REGION = "qm_region"
EMBEDDING = "embedding"

#: budget sources -> the coupling/handoff they price (``scaleladder budget``)
SOURCE_HANDOFFS = {
    QM_REGION: "QM/MM boundary: size of the QM region (convergence across solvation shells)",
    EMBEDDING: "QM/MM coupling: embedding charge model (point vs Gaussian-smeared MM charges)",
}

EMBEDDINGS = ("electrostatic", "electrostatic-smeared", "mechanical")

#: experimental vertical ionisation energies of water, eV (see the module docstring)
IE_GAS_EXP = 12.62
IE_LIQUID_EXP = 11.16


# --------------------------------------------------------------------------- helpers
def _check_sizes(field: str, value: tuple) -> tuple:
    if len(value) < 2 or any(k < 1 for k in value) or list(value) != sorted(set(value)):
        raise InputError(field, ",".join(str(k) for k in value),
                         "at least two increasing numbers of QM molecules such as '1,3,5'")
    return value


def _check_n_waters(field: str, value: int) -> int:
    if not 2 <= value <= 200:
        raise InputError(field, value, "a number of water molecules in [2, 200]")
    return value


def _check_width(field: str, value: float) -> float:
    if not 0.05 <= value <= 2.0:
        raise InputError(field, value, "a Gaussian charge width in [0.05, 2.0] Å")
    return value


def _check_model(field: str, value: str) -> str:
    from ..atomistic.water import WATER_MODELS

    if value not in WATER_MODELS:
        raise InputError(field, value, "one of " + ", ".join(sorted(WATER_MODELS)))
    return value


def _check_fmax(field: str, value: float) -> float:
    if not 1e-4 <= value <= 1.0:
        raise InputError(field, value, "a force threshold in [1e-4, 1] eV/Å")
    return value


SETTINGS = (
    Setting("system.n_waters", 16, "water molecules in the cluster", int, _check_n_waters),
    Setting("system.seed", 0, "seed of the molecules' orientations", int, V.seed),
    Setting("mm.model", "spc/fw", "flexible water model of the MM region (spc/fw, tip3p-flex)", str,
            _check_model),
    Setting("mm.fmax", 0.02, "force threshold (eV/Å) of the MM relaxation of the cluster", float,
            _check_fmax),
    Setting("qm.sizes", (1, 2, 4), "QM region sizes, in molecules (solute first, then nearest)",
            tuple, _check_sizes),
    Setting("qm.xc", "PBE0", "exchange-correlation functional of the QM region (libxc name)", str,
            lambda f, v: _electronic_checks().check_xc(f, v)),
    Setting("qm.basis", "def2-svp", "Gaussian basis set of the QM region", str,
            lambda f, v: _electronic_checks().check_basis(f, v, ["H", "O"])),
    Setting("qm.charge_width", 0.5, "width (Å) of the smeared embedding charges", float,
            _check_width),
    Setting("qm.conv_tol", 1e-9, "SCF convergence threshold (Hartree)", float,
            lambda f, v: V.in_range(f, v, 1e-14, 1e-3)),
    Setting("mf.temperature", 300.0, "multifidelity: MD temperature of the snapshots (K)",
            float, lambda f, v: V.in_range(f, v, 10.0, 400.0)),
    Setting("mf.snapshots", 300, "multifidelity: MD snapshots available (realisations)", int,
            lambda f, v: V.positive_int(f, v, 10)),
    Setting("mf.interval_fs", 250.0, "multifidelity: time between snapshots (fs)", float,
            lambda f, v: V.in_range(f, v, 1.0, 1e4)),
    Setting("mf.equilibration_ps", 10.0, "multifidelity: MD before the first snapshot (ps)",
            float, lambda f, v: V.in_range(f, v, 0.0, 1e3)),
    Setting("mf.cheap_xc", "PBE", "multifidelity: the cheaper functional of a low fidelity",
            str, lambda f, v: _electronic_checks().check_xc(f, v)),
    Setting("mf.hf_basis", "def2-qzvp", "multifidelity: the high fidelity's basis set", str,
            lambda f, v: _electronic_checks().check_basis(f, v, ["H", "O"])),
)


def _electronic_checks():
    from ..electronic import checks

    return checks


def _check(settings: dict) -> None:
    if settings["qm.sizes"][-1] > settings["system.n_waters"] - 1:
        raise InputError("qm.sizes", ",".join(str(k) for k in settings["qm.sizes"]),
                         f"QM regions smaller than the cluster ({settings['system.n_waters']} "
                         "molecules) so that an MM environment remains")


def qm_molecules(atoms, size: int) -> list[int]:
    """Molecule indices of the QM region: the molecule nearest the centroid, then the ``size - 1``
    molecules whose oxygens are nearest its oxygen (ties broken by index)."""
    o = atoms.positions[0::3]
    solute = int(np.argmin(np.linalg.norm(o - atoms.positions.mean(axis=0), axis=1)))
    d = np.linalg.norm(o - o[solute], axis=1)
    order = np.lexsort((np.arange(len(o)), d))
    return [int(m) for m in order[:size]]


def _interaction(model: str):
    """The QM-MM Lennard-Jones (oxygen-oxygen) of the water model."""
    from ..atomistic.water import WATER_MODELS
    from ..coupling import PairInteractions

    m = WATER_MODELS[model]
    return PairInteractions(lj={("O", "O"): (m.epsilon_O, m.sigma_O)})


# --------------------------------------------------------------------------- stages
@stage("qmmm.water_cluster", version="1")
def water_cluster_stage(n_waters: int, seed: int, model: str, fmax: float) -> dict:
    """The water cluster relaxed with the MM force field (positions Å, energy eV)."""
    from ..atomistic.properties import relax_positions
    from ..atomistic.water import water_cluster, water_forcefield
    from ..handoffs import Structure

    atoms = water_cluster(n_waters, seed=seed, model=model)
    atoms.calc = water_forcefield(atoms, model=model)
    steps = relax_positions(atoms, fmax=fmax, steps=5000, what=f"{n_waters}-molecule water cluster")
    return {"structure": Structure(atoms.numbers, atoms.positions),
            "mm_energy_eV": float(atoms.get_potential_energy()), "relaxation_steps": int(steps),
            "model": model}


@stage("qmmm.vertical_ie", version="1")
def vertical_ie(cluster: dict, size: int, embedding: str, qm: dict) -> dict:
    """Vertical IE (eV) of the solute with ``size`` QM molecules and one embedding."""
    from ..atomistic.water import water_forcefield
    from ..coupling import MechanicalEmbedding, QMRegion
    from ..coupling.embedding import ElectrostaticEmbedding
    from ..electronic import PySCFCalculator

    atoms = cluster["structure"].to_atoms()
    mols = qm_molecules(atoms, size)
    qm_idx = sorted(3 * m + k for m in mols for k in range(3))
    region = QMRegion(atoms, qm_idx, links=None)   # whole molecules: no bond is cut
    out: dict[str, Any] = {"size": size, "embedding": embedding, "qm_molecules": mols,
                           "qm_atoms": qm_idx}
    energies = {}
    for state, (charge, spin) in (("neutral", (0, 0)), ("cation", (1, 1))):
        qmc = PySCFCalculator(xc=qm["xc"], basis=qm["basis"], charge=charge, spin=spin,
                              density_fit=True, conv_tol=qm["conv_tol"], max_cycle=200)
        mm = water_forcefield(atoms, model=cluster["model"])
        if embedding == "mechanical":
            calc = MechanicalEmbedding(qmc, mm, region, interaction=_interaction(cluster["model"]))
        else:
            width = qm["charge_width"] if embedding == "electrostatic-smeared" else None
            calc = ElectrostaticEmbedding(qmc, mm, region,
                                          interaction=_interaction(cluster["model"]),
                                          charge_scheme="none", gaussian_width=width)
        at = atoms.copy()
        at.calc = calc
        energies[state] = float(at.get_potential_energy())
        out[f"ledger_{state}"] = str(calc.ledger)
        if state == "cation":
            # where the hole sits: Mulliken spin on the solute's atoms in the QM model (QM atoms
            # in qm_idx order, no link atoms); 1 = on the solute, 0 = on a neighbour
            solute = [qm_idx.index(3 * mols[0] + k) for k in range(3)]
            out["hole_on_solute"] = float(np.sum(np.asarray(qmc.results["magmoms"])[solute]))
            out["scf_solver_cation"] = str(qmc.results.get("scf_solver", ""))
    out["e_neutral_eV"] = energies["neutral"]
    out["e_cation_eV"] = energies["cation"]
    out["ie_eV"] = energies["cation"] - energies["neutral"]
    return out


@stage("qmmm.md_snapshots", version="2")
def md_snapshots(cluster: dict, temperature_K: float, n_snapshots: int, interval_fs: float,
                 seed: int, equilibration_fs: float = 10000.0) -> list:
    """Snapshots of the MM cluster from Langevin MD at ``temperature_K`` (0.5 fs steps;
    ``equilibration_fs`` first), one every ``interval_fs``: Structures (Å)."""
    from ..atomistic.md import run_md
    from ..atomistic.water import water_forcefield
    from ..handoffs import Structure

    atoms = cluster["structure"].to_atoms()
    calc = water_forcefield(atoms, model=cluster["model"])
    dt = 0.5
    every = max(int(round(interval_fs / dt)), 1)
    eq = int(round(equilibration_fs / dt))
    steps = eq + every * n_snapshots
    res = run_md(atoms, calc, steps=steps, ensemble="nvt", temperature_K=temperature_K,
                 timestep_fs=dt, friction=0.01, seed=seed, trajectory_every=every,
                 fix_com=True, snapshots=[eq + every * (k + 1) for k in range(n_snapshots)])
    return [Structure(a.numbers, a.positions) for a in res.snapshots]


@stage("qmmm.snapshot", version="1")
def snapshot(snapshots: list, k: int, model: str) -> dict:
    """Snapshot ``k`` as a cluster (the input of the IE stage)."""
    return {"structure": snapshots[k], "model": model, "snapshot": int(k)}


def fidelities(settings: dict) -> dict:
    """The multifidelity hierarchy of the solute's vertical IE (electrostatic embedding, one QM
    molecule: the central one) averaged over MD snapshots: the high fidelity is the main
    functional in the larger basis ``mf.hf_basis`` (def2-QZVP; def2-TZVP cost only 1.4x def2-SVP for one water, too little for MFMC to gain); the low ones the main functional and the
    cheaper one (``mf.cheap_xc``) in ``qm.basis``.

    Why not the larger QM region as the high fidelity (the plan): measured on six snapshots,
    with 4 QM molecules the cation's hole sits off the solute (Mulliken spin on it 0.0-0.1), so
    that IE is the *cluster's* lowest, not the solute's; its correlation with the one-molecule
    IE was 0.13 (2 molecules: 0.30) and MFMC rightly refused it.  The QM region's convergence
    stays in the ladder's budget (``qm_region``); the ensemble average is of the solute's IE."""
    nodes = build(settings)
    md = md_snapshots.bind(cluster=nodes["cluster"], temperature_K=settings["mf.temperature"],
                           n_snapshots=settings["mf.snapshots"],
                           interval_fs=settings["mf.interval_fs"],
                           seed=settings["system.seed"],
                           equilibration_fs=1000.0 * settings["mf.equilibration_ps"]
                           ).with_label("MD snapshots")
    qm = {"xc": settings["qm.xc"], "basis": settings["qm.basis"],
          "charge_width": settings["qm.charge_width"], "conv_tol": settings["qm.conv_tol"]}
    n = settings["mf.snapshots"]

    def node(q):
        def of(k):
            if not 0 <= k < n:
                raise InputError("realisation", k, f"a snapshot index below mf.snapshots = {n}")
            snap = snapshot.bind(snapshots=md, k=int(k), model=settings["mm.model"])
            return vertical_ie.bind(cluster=snap, size=1, embedding="electrostatic", qm=q
                                    ).with_label(f"IE snapshot {k}, {q['xc']}/{q['basis']}")
        return of

    def ie(r):
        return r["ie_eV"]
    levels = [{**qm, "basis": settings["mf.hf_basis"]}, qm,
              {**qm, "xc": settings["mf.cheap_xc"]}]
    models, seen = [], set()
    for q in levels:
        name = f"{q['xc']}/{q['basis']}"
        if name.lower() not in seen:
            seen.add(name.lower())
            models.append((name, node(q), ie))
    return {"quantity": "IE", "unit": "eV", "models": models}


@stage("qmmm.gas_phase_ie", version="1")
def gas_phase_ie(cluster: dict, qm: dict) -> float:
    """Vertical IE (eV) of the solute molecule alone, at its geometry in the cluster."""
    from ..electronic import PySCFCalculator

    atoms = cluster["structure"].to_atoms()
    m = qm_molecules(atoms, 1)[0]
    mol = atoms[3 * m:3 * m + 3]
    e = {}
    for charge, spin in ((0, 0), (1, 1)):
        at = mol.copy()
        at.calc = PySCFCalculator(xc=qm["xc"], basis=qm["basis"], charge=charge, spin=spin,
                                  density_fit=True, conv_tol=qm["conv_tol"], max_cycle=200)
        e[charge] = float(at.get_potential_energy())
    return e[1] - e[0]


@stage("qmmm.combine", version="1")
def combine(main_large: dict, main_prev: dict, smeared_large: dict) -> Estimate:
    """The IE Estimate (eV): nominal = electrostatic embedding, largest QM region."""
    nominal = float(main_large["ie_eV"])
    sigma_region = abs(nominal - float(main_prev["ie_eV"]))
    return Estimate(nominal, "eV", sources={
        QM_REGION: one_sigma_samples(nominal, sigma_region),
        EMBEDDING: np.array([nominal, float(smeared_large["ie_eV"])]),
    })


# --------------------------------------------------------------------------- DAG
def build(settings: dict) -> dict:
    """Stage DAG: the cluster, one IE stage per (QM size, embedding), the gas-phase IE, the
    combined Estimate ``ie``."""
    cluster = water_cluster_stage.bind(
        n_waters=settings["system.n_waters"], seed=settings["system.seed"],
        model=settings["mm.model"], fmax=settings["mm.fmax"]).with_label("MM water cluster")
    qm = {"xc": settings["qm.xc"], "basis": settings["qm.basis"],
          "charge_width": settings["qm.charge_width"], "conv_tol": settings["qm.conv_tol"]}
    nodes: dict[str, Any] = {"cluster": cluster}
    for size in settings["qm.sizes"]:
        for emb in EMBEDDINGS:
            nodes[f"ie_{emb}_{size}"] = vertical_ie.bind(
                cluster=cluster, size=size, embedding=emb, qm=qm).with_label(
                f"IE, {size} QM molecule{'s' if size > 1 else ''}, {emb}")
    nodes["gas"] = gas_phase_ie.bind(cluster=cluster, qm=qm).with_label("IE, isolated solute")
    big, prev = settings["qm.sizes"][-1], settings["qm.sizes"][-2]
    nodes["ie"] = combine.bind(main_large=nodes[f"ie_electrostatic_{big}"],
                               main_prev=nodes[f"ie_electrostatic_{prev}"],
                               smeared_large=nodes[f"ie_electrostatic-smeared_{big}"]
                               ).with_label("combine: QM-region and embedding sources")
    return nodes


def summarize(settings: dict, results: dict) -> list:
    """Sections: the system; IE per QM size and embedding; the result with its budget."""
    c = results["cluster"]
    n = settings["system.n_waters"]
    rows = [("cluster", f"{n} H2O", "", f"{settings['mm.model']}, relaxed in "
             f"{c['relaxation_steps']} steps, E_MM = {c['mm_energy_eV']:.4f} eV"),
            ("QM level", f"{settings['qm.xc']}/{settings['qm.basis']}", "",
             "PySCF RKS (neutral) / UKS (cation), density fitting")]
    sections = [("System", rows)]
    rows = []
    for size in settings["qm.sizes"]:
        vals = [results[f"ie_{emb}_{size}"]["ie_eV"] for emb in EMBEDDINGS]
        holes = [results[f"ie_{emb}_{size}"]["hole_on_solute"] for emb in EMBEDDINGS]
        rows.append((f"{size} QM molecule{'s' if size > 1 else ''}",
                     " / ".join(f"{v:.3f}" for v in vals), "eV",
                     "electrostatic / smeared / mechanical; hole on solute "
                     + " / ".join(f"{h:.2f}" for h in holes)))
    rows.append(("isolated solute", f"{results['gas']:.3f}", "eV",
                 f"exp. gas {IE_GAS_EXP}, liquid {IE_LIQUID_EXP}"))
    sections.append(("Vertical ionisation energy of the central water", rows))
    ie = results["ie"]
    shares = ie.budget()
    rows = [("IE (QM/MM)", f"{float(ie.value):.3f} ± {float(ie.std):.3f}", "eV",
             "electrostatic embedding, largest QM region")]
    for src in sorted(shares, key=shares.get, reverse=True):
        rows.append((src, f"{100 * shares[src]:.1f} %", "", SOURCE_HANDOFFS[src]))
    weakest = max(shares, key=shares.get)
    rows.append(("weakest link", weakest, "", SOURCE_HANDOFFS[weakest]))
    sections.append(("Result and error budget", rows))
    return sections


LADDER = LadderSpec(
    name="qmmm-water",
    description="QM/MM vertical ionisation energy of water in a water cluster (QM region, embedding)",
    settings=SETTINGS,
    build=build,
    summarize=summarize,
    check=_check,
    source_handoffs=SOURCE_HANDOFFS,
    fidelities=fidelities,
)

__all__ = ["LADDER", "SOURCE_HANDOFFS", "build", "summarize", "qm_molecules", "vertical_ie",
           "gas_phase_ie", "combine", "water_cluster_stage"]
