"""Ladder ``magnet``: the Curie temperature of a ferromagnet from its exchange constants.

Stages (each cached in the store):

1. exchange (``exchange.source``):

   * ``"given"`` -- J per neighbour shell from the settings (``exchange.J_meV``, in the convention
     ``exchange.convention``) on a cubic lattice (``lattice.structure``, ``lattice.a``), with a
     one-sigma relative uncertainty ``exchange.rel_uncertainty`` applied to all shells together;
   * ``"tb2j"`` -- a TB2J ``exchange.out`` (:func:`~scaleladder.handoffs.magnetism.read_tb2j`:
     ``H = -sum_{i!=j} J e_i.e_j``, double counted, unit vectors), with the same relative
     uncertainty (TB2J gives none);
   * ``"dft"`` -- collinear energy mapping with PySCF
     (:func:`~scaleladder.electronic.exchange.exchange_by_energy_mapping`) on a small cell: the
     lattice of ``dft.element`` (or an ASE-readable ``dft.structure``) with cheap settings; the fit
     covariance is the uncertainty when the fit is overdetermined, the relative uncertainty
     otherwise.

   -> :class:`~scaleladder.handoffs.magnetism.ExchangeParameters` in an explicit convention (the
   one the numbers were given in: nothing is converted before the spin Monte Carlo, which reads the
   convention itself).
2. spin Monte Carlo (classical Heisenberg by default, Ising with ``mc.model=ising``; Wolff clusters,
   :func:`~scaleladder.mesoscale.spins.critical_temperature`) over the sizes ``mc.sizes`` and a
   temperature grid given as fractions of the mean-field temperature ``T_MF``; Binder-cumulant
   crossings of successive sizes.
3. combination: the Curie temperature as an :class:`~scaleladder.uq.Estimate` (K) with three sources

   ``exchange``
       the J uncertainty.  Not rerun: ``T_c`` of a classical model is exactly linear in J at fixed
       ratios J_n/J_1 (``H/k_BT`` depends only on J/T), so each J sample gives
       ``T_c * T_MF(J_sample) / T_MF(J)`` -- exact for the joint relative uncertainty of the
       ``given`` and ``tb2j`` paths (all shells scaled together); for a DFT fit whose samples change
       the ratios it is the mean-field estimate of the change (said in the summary).
   ``finite_size``
       the spread of the crossings of the size pairs (their drift with L; needs >= 3 sizes);
   ``sampling``
       parametric bootstrap of the Monte Carlo errors of U4 (jackknife over blocks).

   beside the classical mean-field ``T_MF = lambda_max(K(0)) / 3 k_B`` (Heisenberg; ``/k_B`` Ising)
   with the exchange source only, and the ratio ``T_c / T_MF`` (J cancels: sources finite_size and
   sampling).

Known values (nearest-neighbour classical models, unit spins, ``H = -sum_<ij> J e_i.e_j``):
simple-cubic Heisenberg ``k_B T_c / J = 1.4430`` (Chen, Ferrenberg & Landau, PRB 48, 3249
(1993)), so ``T_c / T_MF = 1.4430 / 2 = 0.7215``; simple-cubic Ising 4.5115 (Talapov & Blöte,
J. Phys. A 29, 5727 (1996)), ratio 0.752; bcc Ising 6.3544 and fcc Ising 9.7971 (K_c = 0.157373
and 0.102071, Lundow, Markström & Rosengren, Phil. Mag. 89, 2009 (2009)).  These are shown as the
reference in the summary for a one-shell ``given`` model on those lattices.

The default (J = 10 meV per bond, sc Heisenberg, sizes 8, 12, 16) runs in one to two minutes on two
cores (measured 94 s: T_c = 165.6 ± 2.5 K from MC against 167.45 K, T_c/T_MF = 0.714).
Every Monte Carlo run of the scan is checkpointed (atomic ``.npz``) in the stage's checkpoint folder
under the store (``<store>/checkpoints/<key>/``), whichever ladder or executor runs it: a killed
scan resumes from there, and the folder is removed once the scan's result is stored.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core import validate as V
from ..core.errors import InputError
from ..core.pipeline import stage
from ..core.units import BOLTZMANN_EV
from ..uq import Estimate, one_sigma_samples
from .base import LadderSpec, Setting

if TYPE_CHECKING:  # the handoff types the stages take and give
    from ..handoffs import ExchangeParameters

log = logging.getLogger(__name__)

EXCHANGE = "exchange"
FINITE_SIZE = "finite_size"
SAMPLING = "sampling"

#: budget sources -> the handoff/stage they price (``scaleladder budget``)
SOURCE_HANDOFFS = {
    EXCHANGE: "electronic -> mesoscale (ExchangeParameters: uncertainty of J; T_c linear in J)",
    FINITE_SIZE: "mesoscale: finite system sizes (Binder crossings drifting between size pairs)",
    SAMPLING: "mesoscale: Monte Carlo sampling (statistical error of the Binder cumulants)",
}

SOURCES = ("given", "tb2j", "dft")
STRUCTURES = ("sc", "bcc", "fcc")
MODELS = ("heisenberg", "ising")

#: k_B T_c / J of nearest-neighbour classical models (unit spins, each bond once); see docstring
REFERENCE_TC_OVER_J = {("sc", "heisenberg"): 1.4430, ("sc", "ising"): 4.5115,
                       ("bcc", "ising"): 6.3544, ("fcc", "ising"): 9.7971}
_COORDINATION = {"sc": 6, "bcc": 8, "fcc": 12}

#: conventional cubic cells: fractional positions of the sites
_BASIS = {"sc": [[0, 0, 0]], "bcc": [[0, 0, 0], [0.5, 0.5, 0.5]],
          "fcc": [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]}


# --------------------------------------------------------------------------- settings
def parse_floats(field: str, text: str) -> tuple[float, ...]:
    """``"10, 2.5"`` -> ``(10.0, 2.5)``; anything else raises InputError naming ``field``."""
    try:
        vals = tuple(float(v) for v in str(text).replace(";", ",").split(",") if v.strip())
    except ValueError:
        raise InputError(field, text, "comma-separated numbers such as '10' or '10,-1.5'") from None
    if not vals or not all(math.isfinite(v) for v in vals):
        raise InputError(field, text, "one or more finite numbers, comma-separated")
    return vals


def parse_convention(field: str, text: str) -> tuple[str, str, str]:
    """``"minus,per_bond,unit"`` -> the three parts of a HamiltonianConvention (validated)."""
    from ..handoffs.magnetism import HamiltonianConvention

    parts = tuple(p.strip() for p in str(text).split(","))
    if len(parts) != 3:
        raise InputError(field, text, "sign,counting,normalisation such as 'minus,per_bond,unit'")
    try:
        HamiltonianConvention(*parts)
    except InputError as exc:
        raise InputError(field, text, "sign (minus|plus), counting (per_bond|double_counted), "
                         "normalisation (unit|spin)", hint=str(exc)) from None
    return parts  # type: ignore[return-value]


def _v_floats(field, value):
    parse_floats(field, value)
    return value


def _v_convention(field, value):
    parse_convention(field, value)
    return value


def _v_one_of(options):
    def check(field, value):
        V.one_of(field, value, options)
        return value
    return check


def _v_sizes(field, value):
    if len(value) < 3 or any(v < 2 for v in value) or list(value) != sorted(set(value)):
        raise InputError(field, ",".join(str(v) for v in value),
                         "at least three increasing linear sizes >= 2 such as '8,12,16' (three "
                         "give two crossings: the finite-size source)")
    return value


def _v_fraction(field, value):
    return V.in_range(field, value, 0.05, 1.5)


def _v_rel(field, value):
    return V.in_range(field, value, 0.0, 1.0)


def _v_kpts(field, value):
    if len(value) != 3 or any(k < 1 for k in value):
        raise InputError(field, value, "three positive integers such as '2,2,2'")
    return value


def _v_xc(field: str, value: str) -> str:
    from ..electronic.checks import check_xc

    return check_xc(field, value)


SETTINGS = (
    Setting("exchange.source", "given", "where J comes from: given | tb2j | dft", str,
            _v_one_of(SOURCES)),
    Setting("exchange.J_meV", "10", "given: J of each neighbour shell (meV, comma-separated)", str,
            _v_floats),
    Setting("exchange.convention", "minus,per_bond,unit",
            "given: convention of J_meV: sign (minus|plus), counting (per_bond|double_counted), "
            "normalisation (unit|spin)", str, _v_convention),
    Setting("exchange.spin", 1.0, "given: spin magnitude S (used by the 'spin' normalisation)",
            float, V.positive),
    Setting("exchange.rel_uncertainty", 0.1,
            "one-sigma relative uncertainty of J (all shells together; given, tb2j, and dft with "
            "an exactly determined fit)", float, _v_rel),
    Setting("exchange.tb2j_file", "", "tb2j: path of TB2J's exchange.out", str),
    Setting("lattice.structure", "sc", "given/dft: cubic lattice of the magnetic sites (sc, bcc, "
            "fcc)", str, _v_one_of(STRUCTURES)),
    Setting("lattice.a", 3.0, "given/dft: cubic lattice constant (Å)", float, V.positive),
    Setting("dft.structure", "", "dft: ASE-readable periodic cell (default: lattice.* of "
            "dft.element, two conventional cells along x)", str),
    Setting("dft.element", "H", "dft: element of the magnetic sites", str),
    Setting("dft.shells", 1, "dft: neighbour shells fitted", int, V.positive_int),
    Setting("dft.xc", "PBE", "dft: exchange-correlation functional", str, _v_xc),
    Setting("dft.basis", "gth-szv", "dft: Gaussian basis", str),
    Setting("dft.pseudo", "gth-pbe", "dft: pseudopotential", str),
    Setting("dft.kpts", (2, 4, 4), "dft: Monkhorst-Pack k mesh", tuple, _v_kpts),
    Setting("dft.ke_cutoff", 30.0, "dft: plane-wave cutoff of the density (Hartree)", float,
            V.positive),
    Setting("dft.moment", 1.0, "dft: initial |moment| per magnetic site (μB)", float, V.positive),
    Setting("mc.model", "heisenberg", "spin model: heisenberg | ising", str, _v_one_of(MODELS)),
    Setting("mc.sizes", (8, 12, 16), "linear sizes L (conventional cells per edge), >= 3",
            tuple, _v_sizes),
    Setting("mc.t_min", 0.64, "lowest temperature of the grid, in units of T_MF", float,
            _v_fraction),
    Setting("mc.t_max", 0.82, "highest temperature of the grid, in units of T_MF", float,
            _v_fraction),
    Setting("mc.n_temperatures", 10, "temperatures in the grid", int,
            lambda f, v: V.positive_int(f, v, 3)),
    Setting("mc.n_sweeps", 4000, "measured Monte Carlo steps per run (Wolff: ~N spins flipped)",
            int, lambda f, v: V.positive_int(f, v, 20)),
    Setting("mc.n_thermalize", 400, "discarded steps per run", int,
            lambda f, v: V.positive_int(f, v, 0)),
    Setting("mc.algorithm", "wolff", "wolff | metropolis", str,
            _v_one_of(("wolff", "metropolis"))),
    Setting("mc.n_bootstrap", 200, "bootstrap resamples of the crossings", int,
            lambda f, v: V.positive_int(f, v, 10)),
    Setting("mc.seed", 1, "seed of the Monte Carlo streams", int, V.seed),
)


def check_settings(settings: dict) -> None:
    """Cross-field checks (InputError naming the field), the DFT names against PySCF's libraries."""
    from ase.data import atomic_numbers

    from ..electronic.checks import check_basis, check_pseudo

    el = settings["dft.element"]
    if el not in atomic_numbers or el == "X":
        raise InputError("dft.element", el, "a chemical symbol such as 'H' or 'Fe'")
    check_basis("dft.basis", settings["dft.basis"], [el])
    if settings["dft.basis"].strip().lower().startswith("gth"):
        check_pseudo("dft.pseudo", settings["dft.pseudo"], [el])
    if settings["mc.t_min"] >= settings["mc.t_max"]:
        raise InputError("mc.t_min", settings["mc.t_min"],
                         f"a value below mc.t_max = {settings['mc.t_max']}")
    src = settings["exchange.source"]
    if src == "tb2j":
        path = settings["exchange.tb2j_file"]
        if not path or not os.path.isfile(path):
            raise InputError("exchange.tb2j_file", path, "the path of an existing TB2J "
                             "exchange.out (exchange.source = tb2j)")
    if src == "given":
        js = parse_floats("exchange.J_meV", settings["exchange.J_meV"])
        if len(js) > 4:
            raise InputError("exchange.J_meV", settings["exchange.J_meV"], "at most 4 shells")
        conv = parse_convention("exchange.convention", settings["exchange.convention"])
        sign = 1.0 if conv[0] == "minus" else -1.0
        if sign * js[0] <= 0:
            raise InputError("exchange.J_meV", settings["exchange.J_meV"],
                             "a ferromagnetic nearest-neighbour J (> 0 with sign 'minus', < 0 with "
                             "'plus')", hint="the Curie temperature needs a ferromagnet: the order "
                             "parameter is the uniform magnetisation")
    if src == "dft" and settings["dft.structure"] and not os.path.isfile(settings["dft.structure"]):
        raise InputError("dft.structure", settings["dft.structure"], "an existing ASE-readable file")


# --------------------------------------------------------------------------- lattices
def cubic_sites(structure: str, a: float) -> tuple[np.ndarray, np.ndarray]:
    """Conventional cubic cell (Å) and Cartesian site positions (Å) of sc, bcc or fcc."""
    V.one_of("structure", structure, STRUCTURES)
    a = V.positive("a", a)
    return np.eye(3) * a, np.asarray(_BASIS[structure], dtype=float) * a


def shell_distances(structure: str, a: float, n: int) -> np.ndarray:
    """The first ``n`` neighbour distances (Å) of a cubic lattice (sc, bcc, fcc)."""
    cell, pos = cubic_sites(structure, a)
    g = np.arange(-3, 4)
    shifts = np.array(np.meshgrid(g, g, g, indexing="ij")).reshape(3, -1).T @ cell
    d = np.linalg.norm((pos[:, None, :] + shifts[None]).reshape(-1, 3) - pos[0], axis=1)
    d = np.unique(np.round(d[d > 1e-9], 8))
    return d[:n]


def _relative_samples(J: Estimate, rel: float) -> Estimate:
    """J with the single source ``exchange``: all shells scaled together by ``1 ± rel/√2`` (two
    samples whose sample standard deviation is ``rel |J|``)."""
    v = np.asarray(J.value, dtype=float)
    return Estimate(v, "eV", sources={EXCHANGE: one_sigma_samples(v, rel * v)})


# --------------------------------------------------------------------------- stages
@stage("magnet.exchange", version="1")
def exchange_stage(source: str, params: dict) -> ExchangeParameters:
    """The exchange model (ExchangeParameters, J in eV in its own explicit convention) with the
    source ``exchange`` on J."""
    from ..handoffs.magnetism import ExchangeParameters, read_tb2j

    rel = float(params["rel_uncertainty"])
    if source == "given":
        js = np.array(parse_floats("exchange.J_meV", params["J_meV"])) * 1e-3
        cell, pos = cubic_sites(params["structure"], params["a"])
        shells = shell_distances(params["structure"], params["a"], len(js))
        return ExchangeParameters(
            cell=cell, positions=pos, species=("X",) * len(pos),
            J=_relative_samples(Estimate(js, "eV"), rel),
            convention=parse_convention("exchange.convention", params["convention"]),
            spin=params["spin"], shells=shells,
            provenance={"source": "given", "J_meV": params["J_meV"],
                        "lattice": f"{params['structure']} a = {params['a']} Å",
                        "uncertainty": f"relative {rel:g} (one sigma, all shells together)"})
    if source == "tb2j":
        ex = read_tb2j(params["tb2j_file"])
        prov = dict(ex.provenance)
        prov["uncertainty"] = f"relative {rel:g} (one sigma, all pairs together; TB2J gives none)"
        return ex.replace(J=_relative_samples(ex.J, rel), provenance=prov)
    if source == "dft":
        from ..electronic.exchange import exchange_by_energy_mapping

        atoms = _dft_atoms(params)
        idx = [k for k, s in enumerate(atoms.get_chemical_symbols()) if s == params["element"]]
        calc = {"xc": params["xc"], "basis": params["basis"], "pseudo": params["pseudo"],
                "kpts": tuple(params["kpts"]), "ke_cutoff": params["ke_cutoff"]}
        from ..core.pipeline import checkpoint_dir

        # each DFT configuration is checkpointed under the store: a killed mapping resumes
        ck = checkpoint_dir()
        ex = exchange_by_energy_mapping(atoms, idx, calc, shells=params["shells"],
                                        moment=params["moment"],
                                        checkpoint=None if ck is None
                                        else os.path.join(os.fspath(ck), "exchange-mapping.npz"))
        J = ex.J
        prov = dict(ex.provenance)
        if J.sources:
            # the fit covariance (overdetermined fit) is the exchange uncertainty
            (name, samples), = ((k, v) for k, v in J.sources.items())
            J = Estimate(np.asarray(J.value), "eV", sources={EXCHANGE: samples})
            prov["uncertainty"] = f"least-squares fit ({name})"
        else:
            J = _relative_samples(J, rel)
            prov["uncertainty"] = f"relative {rel:g} (exactly determined fit)"
        return ex.replace(J=J, provenance=prov)
    raise InputError("exchange.source", source, "one of " + ", ".join(SOURCES))


def _dft_atoms(params: dict):
    """The DFT cell: an ASE-readable file, or two conventional cells of the lattice along x."""
    from ase import Atoms

    if params["structure_file"]:
        from ase.io import read

        atoms = read(params["structure_file"])
        if params["element"] not in atoms.get_chemical_symbols():
            raise InputError("dft.element", params["element"],
                             f"an element of {params['structure_file']}")
        return atoms
    cell, pos = cubic_sites(params["structure"], params["a"])
    pos2 = np.vstack([pos, pos + cell[0]])
    cell2 = cell.copy()
    cell2[0] *= 2
    return Atoms(f"{params['element']}{len(pos2)}", positions=pos2, cell=cell2, pbc=True)


def _checkpoint_dir(payload: dict) -> str | None:
    """The scan's checkpoint folder: under the stage's own folder in the store (see
    :func:`scaleladder.core.pipeline.checkpoint_dir`), one sub-folder per scan; None outside a run."""
    from ..core.pipeline import checkpoint_dir

    root = checkpoint_dir()
    if root is None:
        return None
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return os.path.join(os.fspath(root), "magnet-" + digest[:16])


@stage("magnet.binder_scan", version="1")
def binder_scan(exchange: ExchangeParameters, model: str, sizes: list, t_fractions: list, n_sweeps: int,
                n_thermalize: int, algorithm: str, n_bootstrap: int, seed: int) -> dict:
    """Binder-cumulant scan over sizes and temperatures (K) and its crossings.

    Returns a dict: ``tc`` (Estimate K, sources sampling and finite_size), ``mean_field_K``,
    ``temperatures_K``, ``binder``/``binder_err``/``magnetisation`` (``"L" -> list``),
    ``crossings`` (list of ``[La, Lb, T K, std K]``), ``elapsed_s``.
    """
    import time

    from ..mesoscale.spins import critical_temperature, mean_field_temperature

    t0 = time.perf_counter()
    try:
        t_mf = mean_field_temperature(exchange, model)
    except InputError as exc:
        K = 1e3 * np.asarray(exchange.bond_couplings().J.value)
        raise InputError("exchange", f"bond couplings K = {np.round(K, 4).tolist()} meV "
                         f"({exchange.provenance.get('source', exchange.provenance.get('code', ''))})",
                         "a ferromagnet (the Curie temperature is read from the uniform "
                         "magnetisation)", hint=str(exc)) from None
    temps = np.asarray(t_fractions, dtype=float) * t_mf
    ck = _checkpoint_dir({"K": np.asarray(exchange.bond_couplings().J.value).tolist(),
                          "model": model, "sizes": sizes, "T": temps.tolist(),
                          "n": [n_sweeps, n_thermalize, algorithm, n_bootstrap, seed]})
    log.info("magnet: Binder scan, %s, sizes %s, %d temperatures %.4g-%.4g K (T_MF = %.4g K)%s",
             model, list(sizes), len(temps), temps[0], temps[-1], t_mf,
             f", checkpoints in {ck}" if ck else "")
    res = critical_temperature(exchange, model=model, sizes=tuple(sizes), temperatures=temps,
                               n_sweeps=n_sweeps, n_thermalize=n_thermalize, algorithm=algorithm,
                               n_bootstrap=n_bootstrap, seed=seed, checkpoint_dir=ck,
                               progress=True)
    return {"tc": res.tc, "mean_field_K": float(res.mean_field_K),
            "temperatures_K": temps.tolist(),
            "binder": {str(L): np.asarray(v).tolist() for L, v in res.binder.items()},
            "binder_err": {str(L): np.asarray(v).tolist() for L, v in res.binder_err.items()},
            "magnetisation": {str(L): [r.magnetisation for r in rs]
                              for L, rs in res.results.items()},
            "crossings": [[int(a), int(b), float(t), float(s)]
                          for (a, b), (t, s) in res.crossings.items()],
            "elapsed_s": time.perf_counter() - t0}


@stage("magnet.curie_temperature", version="1")
def curie_temperature(exchange: ExchangeParameters, scan: dict, model: str) -> dict:
    """The Curie temperature with its budget, the mean-field temperature and their ratio.

    ``exchange`` source: ``T_c(J_s) = T_c * T_MF(J_s) / T_MF(J)`` for every sample J_s of the J
    source -- exact when the samples keep the ratios J_n/J_1 (T_c is linear in J), the mean-field
    estimate of the change otherwise (``exchange_scaling`` in the result says which).
    """
    from ..mesoscale.spins import mean_field_temperature

    tc = scan["tc"]
    t_mf = float(scan["mean_field_K"])
    J = exchange.J
    v = np.asarray(J.value, dtype=float)
    samples = np.asarray(J.sources.get(EXCHANGE, np.zeros((0, len(v)))), dtype=float)
    mf = np.array([mean_field_temperature(exchange.replace(J=Estimate(s, "eV")), model)
                   for s in samples])
    ratios = samples / v
    exact = bool(np.allclose(ratios, ratios[:, :1], rtol=1e-9, atol=0)) if len(samples) else True
    tc_sources = dict(tc.sources)
    tc_sources[EXCHANGE] = float(tc.value) * mf / t_mf
    ratio = Estimate(float(tc.value) / t_mf, "",
                     sources={k: np.asarray(s) / t_mf for k, s in tc.sources.items()})
    return {"tc": Estimate(float(tc.value), "K", sources=tc_sources),
            "mean_field": Estimate(t_mf, "K", sources={EXCHANGE: mf}),
            "tc_over_mean_field": ratio,
            "exchange_scaling": "exact (J samples scale all shells together; T_c linear in J)"
            if exact else "mean-field estimate (J samples change the ratios J_n/J_1)"}


# --------------------------------------------------------------------------- DAG
def _t_fractions(settings: dict) -> list:
    return np.linspace(settings["mc.t_min"], settings["mc.t_max"],
                       settings["mc.n_temperatures"]).tolist()


def build(settings: dict) -> dict:
    """Stage DAG: ``exchange`` -> ``scan`` (Binder crossings) -> ``curie`` (Estimates)."""
    src = settings["exchange.source"]
    params: dict[str, Any] = {"rel_uncertainty": settings["exchange.rel_uncertainty"]}
    if src == "given":
        params.update(J_meV=settings["exchange.J_meV"], convention=settings["exchange.convention"],
                      spin=settings["exchange.spin"], structure=settings["lattice.structure"],
                      a=settings["lattice.a"])
    elif src == "tb2j":
        path = os.path.abspath(settings["exchange.tb2j_file"])
        with open(path, "rb") as fh:  # content in the key: an edited file is read again
            digest = hashlib.sha256(fh.read()).hexdigest()
        params.update(tb2j_file=path, sha256=digest)
    else:
        params.update(structure=settings["lattice.structure"], a=settings["lattice.a"],
                      structure_file=os.path.abspath(settings["dft.structure"])
                      if settings["dft.structure"] else "",
                      element=settings["dft.element"], shells=settings["dft.shells"],
                      xc=settings["dft.xc"], basis=settings["dft.basis"],
                      pseudo=settings["dft.pseudo"], kpts=list(settings["dft.kpts"]),
                      ke_cutoff=settings["dft.ke_cutoff"], moment=settings["dft.moment"])
    exchange = exchange_stage.bind(source=src, params=params).with_label(f"exchange ({src})")
    model = settings["mc.model"]
    scan = binder_scan.bind(
        exchange=exchange, model=model, sizes=list(settings["mc.sizes"]),
        t_fractions=_t_fractions(settings), n_sweeps=settings["mc.n_sweeps"],
        n_thermalize=settings["mc.n_thermalize"], algorithm=settings["mc.algorithm"],
        n_bootstrap=settings["mc.n_bootstrap"], seed=settings["mc.seed"]).with_label(
        f"spin MC ({model}): Binder crossings")
    curie = curie_temperature.bind(exchange=exchange, scan=scan, model=model).with_label(
        "Curie temperature: exchange, finite-size and sampling sources")
    return {"exchange": exchange, "scan": scan, "curie": curie}


def _reference(settings: dict, exchange: Any) -> float | None:
    """Known k_B T_c / K_1 for a nearest-neighbour model on sc/bcc/fcc, else None."""
    if settings["exchange.source"] != "given" or len(exchange.J.value) != 1:
        return None
    return REFERENCE_TC_OVER_J.get((settings["lattice.structure"], settings["mc.model"]))


def summarize(settings: dict, results: dict) -> list:
    """Sections: the exchange model; the Binder crossings; the result with its budget."""
    ex = results["exchange"]
    scan, cur = results["scan"], results["curie"]
    model = settings["mc.model"]
    K = np.asarray(ex.bond_couplings().J.value)
    J = np.asarray(ex.J.value)
    rows = [("source", settings["exchange.source"], "", str(ex.provenance.get("uncertainty", ""))),
            ("convention", str(ex.convention), "", f"S = {ex.spin:g}"),
            ("sites", str(ex.n_sites), "", f"per cell; {len(K)} bonds per cell")]
    if ex.shells is not None:
        for k, (j, d) in enumerate(zip(J, ex.shells)):
            rows.append((f"J{k + 1}", f"{1e3 * j:.4g}", "meV",
                         f"shell {d:.4f} Å, K = {1e3 * j * ex.bond_factor:.4g} meV "
                         "(H = -sum_bonds K e_i.e_j)"))
    else:
        rows.append(("J", f"{1e3 * J.min():.4g} .. {1e3 * J.max():.4g}", "meV",
                     f"{len(J)} pairs; K = J x {ex.bond_factor:g}"))
    sections = [("Exchange (" + ex.__class__.__name__ + ")", rows)]
    rows = []
    for a, b, t, s in scan["crossings"]:
        rows.append((f"U4 crossing L={a}/{b}", f"{t:.2f} ± {s:.2f}", "K", ""))
    rows.append(("grid", f"{scan['temperatures_K'][0]:.1f} .. {scan['temperatures_K'][-1]:.1f}",
                 "K", f"{len(scan['temperatures_K'])} temperatures, {settings['mc.n_sweeps']} "
                 f"{settings['mc.algorithm']} steps each, {scan['elapsed_s']:.1f} s"))
    sections.append((f"Spin Monte Carlo ({model}), Binder cumulants", rows))
    tc, mf, ratio = cur["tc"], cur["mean_field"], cur["tc_over_mean_field"]
    rows = [("T_c (Binder)", f"{float(tc.value):.2f} ± {float(tc.std):.2f}", "K",
             "mean of the size-pair crossings"),
            ("T_MF (mean field)", f"{float(mf.value):.2f} ± {float(mf.std):.2f}", "K",
             "classical, same unit spins"),
            ("T_c / T_MF", f"{float(ratio.value):.4f} ± {float(ratio.std):.4f}", "",
             "J cancels")]
    ref = _reference(settings, ex)
    if ref is not None:
        k1 = float(K[0])
        z = _COORDINATION[settings["lattice.structure"]]
        r_mf = ref / (z / (3.0 if model == "heisenberg" else 1.0))
        rows.append(("reference T_c", f"{ref * k1 / BOLTZMANN_EV:.2f}", "K",
                     f"k_B T_c = {ref} K1 (literature); T_c/T_MF = {r_mf:.4f}"))
    shares = tc.budget()
    for src in sorted(shares, key=shares.get, reverse=True):
        rows.append((src, f"{100 * shares[src]:.1f} %", "",
                     f"σ = {math.sqrt(tc.variances[src]):.2f} K"))
    rows.append(("exchange propagation", "rescaling", "", cur["exchange_scaling"]))
    weakest = max(shares, key=shares.get)
    rows.append(("weakest link", weakest, "", SOURCE_HANDOFFS[weakest]))
    sections.append(("Curie temperature and error budget", rows))
    return sections


LADDER = LadderSpec(
    name="magnet",
    description="Curie temperature from exchange constants (given, TB2J or PySCF mapping) by spin "
                "Monte Carlo, with its budget beside mean field",
    settings=SETTINGS,
    build=build,
    summarize=summarize,
    check=check_settings,
    source_handoffs=SOURCE_HANDOFFS,
)

__all__ = ["LADDER", "SOURCE_HANDOFFS", "REFERENCE_TC_OVER_J", "build", "summarize",
           "exchange_stage", "binder_scan", "curie_temperature", "cubic_sites", "shell_distances",
           "parse_floats", "parse_convention"]
