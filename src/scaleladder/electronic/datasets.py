"""Configuration sets for the flagship silicon DFT dataset, and one-configuration runs.

Every builder returns a list of :class:`ase.Atoms` with ``atoms.info["label"]`` (the set: "ev",
"strain", "rattle", "heldout") and ``atoms.info["name"]`` (unique, human-readable, e.g.
``"ev_a5.4700_+0.000"``).  Everything is deterministic: random displacements and strains come
from ``numpy.random.default_rng(seed)``.

:func:`compute_configuration` runs one configuration in a fresh :class:`PySCFCalculator` and returns
plain data, so the pipeline can make each configuration its own stage (a crash loses only the
configuration in progress; stages distribute over Dask workers).
"""
from __future__ import annotations

import os
import time
from typing import Any, Sequence

import numpy as np
from ase import Atoms
from ase.build import bulk

from ..core import validate
from ..core.errors import InputError

#: Voigt strain patterns of the strain set (engineering shear: e4 = 2*eps_yz).
STRAIN_PATTERNS: dict[str, tuple[float, ...]] = {
    "uniaxial_xx": (1, 0, 0, 0, 0, 0),
    "biaxial_xy": (1, 1, 0, 0, 0, 0),
    "shear_yz": (0, 0, 0, 1, 0, 0),
}


def apply_small_strain(atoms: Atoms, voigt: Sequence[float]) -> Atoms:
    """Copy of ``atoms`` homogeneously deformed by ``F = I + ε`` (small strain ε in Voigt form,
    engineering shears; atoms scaled with the cell).  The Green–Lagrange counterpart is
    :func:`scaleladder.core.tensors.deformation_green_lagrange` (used by ``strain_set``)."""
    from ..core.tensors import deformation_small_strain

    out = atoms.copy()
    F = deformation_small_strain(voigt)
    out.set_cell(np.asarray(atoms.cell) @ F.T, scale_atoms=True)
    return out


def _silicon(a: float, supercell: str) -> Atoms:
    validate.one_of("supercell", supercell, ("primitive", "conventional"))
    return bulk("Si", "diamond", a=a, cubic=(supercell == "conventional"))


def _tag(atoms: Atoms, label: str, name: str, **extra: Any) -> Atoms:
    atoms.info["label"] = label
    atoms.info["name"] = name
    atoms.info.update(extra)
    return atoms


def silicon_ev_set(a0_guess: float = 5.47, n: int = 7, span: float = 0.06) -> list[Atoms]:
    """Primitive diamond cells at ``n`` volumes spanning ``V0 (1 ± span)``.

    Parameters
    ----------
    a0_guess : float, default 5.47
        Guess of the cubic lattice constant in Å; the volumes are centred on its volume.
    n : int, default 7
        Number of volumes (>= 5 for a four-parameter Birch-Murnaghan fit).
    span : float, default 0.06
        Relative volume half-range (0 < span < 0.3).

    Returns
    -------
    list of ase.Atoms
        2-atom primitive cells, label "ev", ascending volume.
    """
    a0 = validate.positive("a0_guess", a0_guess)
    n = validate.positive_int("n", n, minimum=5)
    span = validate.in_range("span", span, 0.0, 0.3, inclusive=False)
    out = []
    for f in np.linspace(-span, span, n):
        a = a0 * (1.0 + f) ** (1.0 / 3.0)
        out.append(_tag(_silicon(a, "primitive"), "ev", f"ev_a{a:.4f}_{f:+.3f}",
                        volume_fraction=float(f)))
    return out


def silicon_strain_set(a0: float, strain_step: float = 0.01, n_steps: int = 1,
                       patterns: Sequence[str] = tuple(STRAIN_PATTERNS),
                       supercell: str = "primitive") -> list[Atoms]:
    """Homogeneously strained cells (atoms at scaled positions: unrelaxed internal coordinates).

    Parameters
    ----------
    a0 : float
        Equilibrium lattice constant in Å.
    strain_step : float, default 0.01
        Strain increment (non-zero, |step| <= 0.1); strains ``±k*strain_step`` for k = 1..n_steps.
    n_steps : int, default 1
        Number of magnitudes per sign.
    patterns : sequence of str
        Keys of :data:`STRAIN_PATTERNS` (uniaxial, biaxial, shear).
    supercell : {"primitive", "conventional"}

    Returns
    -------
    list of ase.Atoms
        label "strain"; ``info["voigt_strain"]`` holds the applied Voigt strain.
    """
    a0 = validate.positive("a0", a0)
    step = validate.nonzero("strain_step", strain_step)
    if abs(step) > 0.1:
        raise InputError("strain_step", strain_step, "a small strain, 0 < |strain_step| <= 0.1")
    n_steps = validate.positive_int("n_steps", n_steps)
    base = _silicon(a0, supercell)
    out = []
    for pat in patterns:
        validate.one_of("patterns", pat, STRAIN_PATTERNS)
        for k in range(1, n_steps + 1):
            for sign in (+1, -1):
                e = sign * k * abs(step) * np.asarray(STRAIN_PATTERNS[pat], dtype=float)
                out.append(_tag(apply_small_strain(base, e), "strain",
                                f"strain_{pat}_{sign * k * abs(step):+.4f}_{supercell}",
                                voigt_strain=e.tolist()))
    return out


def silicon_rattle_set(a0: float, n: int = 4, amplitude: float = 0.08, supercell: str = "primitive",
                       seed: int = 0, volume_jitter: float = 0.0) -> list[Atoms]:
    """Cells at ``a0`` with random atomic displacements.

    Parameters
    ----------
    a0 : float
        Lattice constant in Å.
    n : int, default 4
        Number of configurations.
    amplitude : float, default 0.08
        Standard deviation of each Cartesian displacement in Å (0 < amplitude <= 0.5).
    supercell : {"primitive", "conventional"}
    seed : int, default 0
        Seed of ``numpy.random.default_rng``.
    volume_jitter : float, default 0.0
        If > 0, each cell is also scaled isotropically by a uniform random linear strain in
        ``[-volume_jitter, volume_jitter]``.

    Returns
    -------
    list of ase.Atoms
        label "rattle".
    """
    a0 = validate.positive("a0", a0)
    n = validate.positive_int("n", n)
    amp = validate.in_range("amplitude", amplitude, 0.0, 0.5, inclusive=True)
    if amp == 0:
        raise InputError("amplitude", amplitude, "a positive displacement in Å (<= 0.5)")
    jit = validate.in_range("volume_jitter", volume_jitter, 0.0, 0.1)
    rng = np.random.default_rng(seed)
    base = _silicon(a0, supercell)
    out = []
    for i in range(n):
        at = base.copy()
        if jit > 0:
            s = rng.uniform(-jit, jit)
            at = apply_small_strain(at, (s, s, s, 0, 0, 0))
        at.positions = at.positions + rng.normal(scale=amp, size=at.positions.shape)
        out.append(_tag(at, "rattle", f"rattle_{supercell}_{amp:.3f}_s{seed}_{i}"))
    return out


def silicon_heldout_set(a0: float, n: int = 4, max_strain: float = 0.03, amplitude: float = 0.12,
                        supercell: str = "primitive", seed: int = 1000) -> list[Atoms]:
    """Configurations unlike the training sets: random combined strains plus large rattles.

    Each configuration gets a random Voigt strain (all six components uniform in
    ``[-max_strain, max_strain]``) and Gaussian displacements of standard deviation ``amplitude``.

    Parameters
    ----------
    a0 : float
        Lattice constant in Å.
    n : int, default 4
    max_strain : float, default 0.03
        Largest strain component (0 < max_strain <= 0.1).
    amplitude : float, default 0.12
        Displacement standard deviation in Å (0 <= amplitude <= 0.5).
    supercell : {"primitive", "conventional"}
    seed : int, default 1000

    Returns
    -------
    list of ase.Atoms
        label "heldout"; ``info["voigt_strain"]`` holds the applied strain.
    """
    a0 = validate.positive("a0", a0)
    n = validate.positive_int("n", n)
    ms = validate.in_range("max_strain", max_strain, 0.0, 0.1)
    if ms == 0:
        raise InputError("max_strain", max_strain, "a positive strain (<= 0.1)")
    amp = validate.in_range("amplitude", amplitude, 0.0, 0.5)
    rng = np.random.default_rng(seed)
    base = _silicon(a0, supercell)
    out = []
    for i in range(n):
        e = rng.uniform(-ms, ms, size=6)
        at = apply_small_strain(base, e)
        at.positions = at.positions + rng.normal(scale=amp, size=at.positions.shape)
        out.append(_tag(at, "heldout", f"heldout_{supercell}_s{seed}_{i}", voigt_strain=e.tolist()))
    return out


_ALL_PROPERTIES = ("energy", "forces", "stress")


#: Name of the store's scratch folder of SCF checkpoints that :func:`compute_configuration` uses
#: when no ``scf_checkpoint`` is passed and it runs under a pipeline Runner
#: (``<store>/scratch/scf-checkpoints``): the initial guess only, never part of a stage's key.
SCF_CHECKPOINT_SCRATCH = "scf-checkpoints"


def compute_configuration(atoms: Atoms, calc_params: dict,
                          properties: Sequence[str] | None = None,
                          scf_checkpoint: str | None = None) -> dict:
    """Run ONE configuration in a fresh :class:`PySCFCalculator`; return plain data.

    Parameters
    ----------
    atoms : ase.Atoms
        The configuration (its ``info["label"]`` and ``info["name"]`` are passed through).
    calc_params : dict
        Keyword arguments of :class:`PySCFCalculator` (xc, basis, pseudo, kpts, ke_cutoff, ...).
    properties : sequence of str, optional
        What to compute; default ``atoms.info["properties"]`` if set (see
        :func:`silicon_configurations`), else ("energy", "forces", "stress").  ``("energy",)``
        alone takes the symmetry-reduced k-point path when ``symmetry=True``; forces and stress
        are then ``None``.
    scf_checkpoint : str, optional
        Directory of converged densities (``PySCFCalculator(scf_checkpoint=...)``): the SCF
        starts from the density of the last configuration with the same atoms and settings
        instead of from scratch (a strain series saves about one SCF cycle in five; measured in
        docs/electronic_settings.md).  It changes the initial guess only, so results agree
        within ``conv_tol`` and it is not recorded in ``calc_params``.  Default: under a
        pipeline Runner, the store's scratch folder ``scf-checkpoints``
        (:func:`scaleladder.core.pipeline.scratch_dir`; it reaches Dask workers with the task,
        not through the environment), else none.

    Returns
    -------
    dict
        ``numbers`` (list[int]), ``positions`` (n x 3, Å), ``cell`` (3 x 3, Å), ``pbc`` (3 bool),
        ``energy`` (eV), ``free_energy`` (eV), ``forces`` (n x 3 eV/Å or None), ``stress`` (6,
        eV/Å³ Voigt xx,yy,zz,yz,xz,xy, ASE sign, or None), ``elapsed_s``, ``scf_cycles``,
        ``initial_guess`` (where the SCF started: memory, checkpoint, minao, atom), ``label``,
        ``name``, ``calc_params``.  Lists and floats only (JSON-friendly).

    Raises
    ------
    ConvergenceError
        When the SCF does not converge (nothing partial is returned).
    """
    from .pyscf_calculator import PySCFCalculator

    if not isinstance(atoms, Atoms):
        raise InputError("atoms", type(atoms).__name__, "an ase.Atoms")
    if not isinstance(calc_params, dict):
        raise InputError("calc_params", calc_params, "a dict of PySCFCalculator parameters")
    if properties is None:
        properties = tuple(atoms.info.get("properties", _ALL_PROPERTIES))
    for prop in properties:
        validate.one_of("properties", prop, _ALL_PROPERTIES + ("free_energy",))
    name = str(atoms.info.get("name", atoms.get_chemical_formula()))
    label = str(atoms.info.get("label", ""))
    at = atoms.copy()
    t0 = time.perf_counter()
    if scf_checkpoint is None:
        from ..core.pipeline import scratch_dir

        d = scratch_dir(SCF_CHECKPOINT_SCRATCH)
        scf_checkpoint = None if d is None else os.fspath(d)
    extra = {} if scf_checkpoint is None or "scf_checkpoint" in calc_params else \
        {"scf_checkpoint": scf_checkpoint}
    calc = PySCFCalculator(label=name, **calc_params, **extra)
    calc.calculate(at, list(properties))
    elapsed = time.perf_counter() - t0
    r = calc.results
    return {
        "numbers": [int(z) for z in at.numbers],
        "positions": np.asarray(at.positions, dtype=float).tolist(),
        "cell": np.asarray(at.cell, dtype=float).tolist(),
        "pbc": [bool(x) for x in at.pbc],
        "energy": float(r["energy"]),
        "free_energy": float(r["free_energy"]),
        "forces": np.asarray(r["forces"]).tolist() if "forces" in r else None,
        "stress": np.asarray(r["stress"]).tolist() if "stress" in r else None,
        "elapsed_s": float(elapsed),
        "scf_cycles": int(r["scf_cycles"]),
        "initial_guess": str(r.get("initial_guess", "")),
        "label": label,
        "name": name,
        "calc_params": dict(calc_params),
    }


def _flagship_kpts() -> list[list[float]]:
    from .pyscf_calculator import fcc_cubic_kpts

    return fcc_cubic_kpts(2).tolist()


#: Recommended PySCF settings of the flagship dataset, per functional (measured; see
#: docs/electronic_settings.md).  k-points: the shifted 2x2x2 mesh of the cubic cell folded into
#: the primitive zone (32 points, cubic symmetry kept; forces/stress within 0.3 GPa / 0.015 eV/Å
#: of a Gamma-centred 4x4x4 at half its cost).  20 Ha cutoff: within 0.01 GPa and 0.1 meV/atom
#: of 25 Ha.  Plain lists only, so the dict hashes canonically as pipeline parameters.
FLAGSHIP_CALC_PARAMS: dict[str, dict] = {
    "PBE": dict(xc="PBE", basis="gth-dzvp", pseudo="gth-pbe", kpts_scaled=_flagship_kpts(),
                ke_cutoff=20.0, conv_tol=1e-8, symmetry=True),
    "LDA": dict(xc="LDA", basis="gth-dzvp", pseudo="gth-pade", kpts_scaled=_flagship_kpts(),
                ke_cutoff=20.0, conv_tol=1e-8, symmetry=True),
}


def silicon_configurations(a0: float = 5.47, *, n_ev: int = 7, ev_span: float = 0.06,
                           strain_step: float = 0.01,
                           strain_patterns: Sequence[str] = ("uniaxial_xx", "shear_yz"),
                           n_rattle: int = 2, rattle_amplitude: float = 0.08,
                           n_heldout: int = 1, heldout_max_strain: float = 0.03,
                           heldout_amplitude: float = 0.12, seed: int = 0) -> list[Atoms]:
    """The flagship silicon configuration list (E-V, strain, rattle and held-out sets).

    Each configuration carries ``info["properties"]``, chosen by cost (measured: forces cost as
    much as the SCF and the stress together):

    * E-V points: ``("energy",)`` -- symmetry-reduced k-points; forces vanish and the stress is
      isotropic by symmetry, the equation of state needs the energy only;
    * strain: ``("energy", "stress")`` -- with stresses one uniaxial (C11, C12) and one shear
      (C44) pattern at ±strain_step determine the cubic elastic constants (the biaxial pattern is
      redundant and left out by default).  Forces vanish by symmetry under normal strains; under
      shear they are the internal-strain forces, left out to halve the cost;
    * rattle and held-out: ``("energy", "forces", "stress")``.

    Parameters
    ----------
    a0 : float, default 5.47
        Lattice constant in Å (centre of the E-V set, reference cell of the other sets).
    n_ev, ev_span : int, float
        See :func:`silicon_ev_set`.
    strain_step, strain_patterns
        See :func:`silicon_strain_set` (one magnitude, both signs).
    n_rattle, rattle_amplitude
        See :func:`silicon_rattle_set` (primitive cell, seed ``seed``).
    n_heldout, heldout_max_strain, heldout_amplitude
        See :func:`silicon_heldout_set` (seed ``seed + 1000``); set n_heldout=0 to skip.
    seed : int, default 0

    Returns
    -------
    list of ase.Atoms
        Labelled, uniquely named configurations in a deterministic order.
    """
    configs = silicon_ev_set(a0, n=n_ev, span=ev_span)
    for at in configs:
        at.info["properties"] = ("energy",)
    strained = silicon_strain_set(a0, strain_step=strain_step, n_steps=1,
                                  patterns=strain_patterns) if strain_patterns else []
    for at in strained:
        at.info["properties"] = ("energy", "stress")
    rest: list[Atoms] = []
    if n_rattle:
        rest += silicon_rattle_set(a0, n=n_rattle, amplitude=rattle_amplitude, seed=seed)
    if n_heldout:
        rest += silicon_heldout_set(a0, n=n_heldout, max_strain=heldout_max_strain,
                                    amplitude=heldout_amplitude, seed=seed + 1000)
    for at in rest:
        at.info["properties"] = _ALL_PROPERTIES
    return configs + strained + rest


__all__ = ["STRAIN_PATTERNS", "apply_small_strain", "silicon_ev_set",
           "silicon_strain_set", "silicon_rattle_set", "silicon_heldout_set",
           "compute_configuration", "silicon_configurations", "FLAGSHIP_CALC_PARAMS"]
