"""The flagship's silicon configuration sets and DFT settings (a workflow above the rungs).

Every builder returns a list of :class:`ase.Atoms` with ``atoms.info["label"]`` (the set: "ev",
"strain", "rattle", "heldout") and ``atoms.info["name"]`` (unique, human-readable, e.g.
``"ev_a5.4700_+0.000"``).  Everything is deterministic: random displacements and strains come
from ``numpy.random.default_rng(seed)``.  Strains are small strains (``F = I + ε``,
:func:`scaleladder.electronic.apply_small_strain`).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from ase import Atoms
from ase.build import bulk

from ..core import validate
from ..core.errors import InputError
from ..electronic.datasets import apply_small_strain

#: Voigt strain patterns of the strain set (engineering shear: e4 = 2*eps_yz).
STRAIN_PATTERNS: dict[str, tuple[float, ...]] = {
    "uniaxial_xx": (1, 0, 0, 0, 0, 0),
    "biaxial_xy": (1, 1, 0, 0, 0, 0),
    "shear_yz": (0, 0, 0, 1, 0, 0),
}


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


def _flagship_kpts() -> list[list[float]]:
    from ..electronic.pyscf_calculator import fcc_cubic_kpts

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


__all__ = ["STRAIN_PATTERNS", "silicon_ev_set", "silicon_strain_set", "silicon_rattle_set",
           "silicon_heldout_set", "silicon_configurations", "FLAGSHIP_CALC_PARAMS"]
