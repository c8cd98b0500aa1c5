"""The Cauchy–Born rule: the strain-energy density ``W(F)`` of a crystal whose lattice follows the
deformation gradient ``F``, with its first Piola–Kirchhoff stress and tangent.

Under the Cauchy–Born rule every lattice vector ``R`` of the reference crystal becomes ``F R``.
For a Bravais lattice this fixes every atom; for a lattice with a multi-atom basis (diamond, hcp,
a molecular crystal) the sublattices may shift against each other, and the rule is only right
with those shifts relaxed at every ``F`` (internal relaxation): ``W(F) = min_s E(F, s)/Ω₀``.
Without it the model is *clamped-ion* and too stiff (silicon's C44 by ~40 %).

Two implementations, checked against each other:

* :class:`CauchyBorn` — any ASE calculator of the project (pair, EAM, Stillinger–Weber, Tersoff,
  a fitted or ML potential) on a periodic primitive cell: ``W = E(cell·Fᵀ)/Ω₀``, ``P = J σ F⁻ᵀ``
  from the calculator's virial stress, the tangent by central differences of ``P``; the basis
  relaxed at every ``F`` when it has more than one atom.
* :class:`PairLattice` — a Bravais lattice in 1, 2 or 3 dimensions with a central pair
  potential: the lattice sums ``W = (1/2Ω₀) Σ_R φ(|FR|)``, ``P`` and the tangent ``A = ∂P/∂F`` in
  closed form.  The quasicontinuum's local elements use it.

Units: energies in eV, lengths in Å, ``W``, ``P``, ``A`` in eV/Å³ (per unit reference volume;
per reference area in 2D, per reference length in 1D); :meth:`elastic_tensor` returns an
``ElasticTensor`` in GPa.
"""
from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from ..core import validate as _v
from ..core.errors import InputError
from ..core.units import EV_PER_A3_IN_GPA

__all__ = ["CauchyBorn", "PairLattice", "voigt_from_tangent", "acoustic_tensor"]

_VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def voigt_from_tangent(A: np.ndarray, stress: np.ndarray | None = None) -> np.ndarray:
    """Voigt 6x6 elastic constants from the tangent ``A_iJkL = ∂²W/∂F_iJ∂F_kL`` at ``F = I``:
    ``C_ijkl = A_ijkl − δ_ik S_jl`` (``S`` the reference stress; zero for a relaxed crystal),
    symmetrised over the minor and major symmetries."""
    A = np.asarray(A, dtype=float)
    C = A.copy()
    if stress is not None:
        C = C - np.einsum("ik,jl->ijkl", np.eye(3), np.asarray(stress, dtype=float))
    C = 0.25 * (C + C.transpose(1, 0, 2, 3) + C.transpose(0, 1, 3, 2) + C.transpose(1, 0, 3, 2))
    C = 0.5 * (C + C.transpose(2, 3, 0, 1))
    out = np.empty((6, 6))
    for a, (i, j) in enumerate(_VOIGT):
        for b, (k, l) in enumerate(_VOIGT):
            out[a, b] = C[i, j, k, l]
    return out


def acoustic_tensor(A: np.ndarray, n) -> np.ndarray:
    """``Q_ik = A_iJkL n_J n_L`` for the unit reference direction ``n``; the Cauchy–Born rule
    (and the homogeneous state) is stable against a band with normal ``n`` while ``Q`` is
    positive definite (strong ellipticity)."""
    n = np.asarray(n, dtype=float)
    n = n / np.linalg.norm(n)
    return np.einsum("iJkL,J,L->ik", A, n, n)


def _smallest_singular_value(Fs: np.ndarray) -> float:
    """``min σ`` over a stack of matrices (n, d, d): closed form for d ≤ 2, ``eigvalsh`` of FᵀF
    otherwise (the quasicontinuum calls this at every force evaluation)."""
    d = Fs.shape[-1]
    if d == 1:
        return float(np.abs(Fs).min())
    C = np.swapaxes(Fs, 1, 2) @ Fs
    if d == 2:
        tr = C[:, 0, 0] + C[:, 1, 1]
        det = C[:, 0, 0] * C[:, 1, 1] - C[:, 0, 1] * C[:, 1, 0]
        lam = 0.5 * (tr - np.sqrt(np.maximum(tr * tr - 4.0 * det, 0.0)))
    else:
        lam = np.linalg.eigvalsh(C)[:, 0]
    return float(np.sqrt(max(lam.min(), 0.0)))


class PairLattice:
    """Cauchy–Born ``W(F)`` of a Bravais lattice with a central pair potential, in closed form.

    Parameters
    ----------
    vectors : array (d, d)
        Primitive lattice vectors as rows (Å), ``d`` = 1, 2 or 3.
    pair : callable or pair calculator
        ``r -> (φ, φ', φ'')`` (eV, eV/Å, eV/Å²), zero beyond ``rc``; or a project pair calculator
        (:class:`~scaleladder.atomistic.LennardJones`, :class:`~scaleladder.atomistic.Morse`),
        whose :meth:`pair` is used.
    rc : float, optional
        Cutoff (Å); taken from the calculator when one is given.
    """

    def __init__(self, vectors, pair: Any, rc: float | None = None):
        V = np.atleast_2d(np.asarray(vectors, dtype=float))
        if V.ndim != 2 or V.shape[0] != V.shape[1] or V.shape[0] not in (1, 2, 3):
            raise InputError("vectors", np.asarray(vectors).shape,
                             "primitive lattice vectors as the rows of a 1x1, 2x2 or 3x3 array (Å)")
        vol = abs(float(np.linalg.det(V)))
        if not np.all(np.isfinite(V)) or vol < 1e-12:
            raise InputError("vectors", V.tolist(), "linearly independent lattice vectors")
        if hasattr(pair, "pair") and hasattr(pair, "cutoff"):
            self._pair = pair.pair
            rc = pair.cutoff if rc is None else rc
        elif callable(pair):
            self._pair = pair
        else:
            raise InputError("pair", type(pair).__name__,
                             "a pair calculator (LennardJones, Morse) or a function r -> (φ, φ', φ'')")
        if rc is None:
            raise InputError("rc", None, "the pair function's cutoff (Å)")
        self.rc = _v.positive("rc", rc)
        self.vectors = V
        self.dim = V.shape[0]
        self.volume = vol
        self._cache: dict = {}

    # lattice vectors within the cutoff of the deformed lattice ---------------------------------
    def _shell(self, F: np.ndarray) -> np.ndarray:
        smin = float(np.linalg.svd(F, compute_uv=False).min())
        if smin <= 0:
            raise InputError("F", F.tolist(), "a deformation gradient with det F > 0")
        radius = self.rc / smin
        key = math.ceil(radius * 8) / 8
        R = self._cache.get(key)
        if R is None:
            hmin = 1.0 / np.linalg.norm(np.linalg.inv(self.vectors), axis=0).max()
            n = int(math.ceil(key / hmin)) + 1
            idx = np.array(list(itertools.product(range(-n, n + 1), repeat=self.dim)), dtype=float)
            R = idx @ self.vectors
            r = np.linalg.norm(R, axis=1)
            R = R[(r > 0) & (r <= key)]
            self._cache[key] = R
        return R

    def _F(self, F) -> np.ndarray:
        F = np.asarray(F, dtype=float).reshape(self.dim, self.dim) if np.ndim(F) else \
            np.array([[float(F)]])
        if F.shape != (self.dim, self.dim) or not np.all(np.isfinite(F)):
            raise InputError("F", F, f"a finite {self.dim}x{self.dim} deformation gradient")
        if np.linalg.det(F) <= 0:
            raise InputError("F", F.tolist(), "a deformation gradient with det F > 0")
        return F

    def energy_density(self, F) -> float:
        """``W(F) = (1/2Ω₀) Σ_R φ(|FR|)`` (eV per Å^d of reference)."""
        return float(self.batch(self._F(F)[None])[0][0])

    def site_energy(self, F) -> float:
        """Energy per atom (eV): ``Ω₀ W(F)``."""
        return self.energy_density(F) * self.volume

    def stress(self, F) -> np.ndarray:
        """First Piola–Kirchhoff stress ``P_iJ = ∂W/∂F_iJ`` (eV/Å^d)."""
        return self.batch(self._F(F)[None])[1][0]

    def batch(self, Fs) -> tuple[np.ndarray, np.ndarray]:
        """``W`` (n,) and ``P`` (n, d, d) for a stack of deformation gradients (n, d, d) — the
        quasicontinuum's elements, in one vectorised lattice sum."""
        Fs = np.asarray(Fs, dtype=float).reshape(-1, self.dim, self.dim)
        det = np.linalg.det(Fs)
        if not np.all(np.isfinite(Fs)) or np.any(det <= 0):
            k = int(np.flatnonzero(~np.isfinite(det) | (det <= 0))[0])
            raise InputError("F", Fs[k].tolist(), f"deformation gradients with det F > 0 "
                             f"(element {k} is inverted)")
        R = self._shell(np.eye(self.dim) * _smallest_singular_value(Fs))
        x = Fs @ R.T                                         # (n_el, d, n_R): F R
        r = np.sqrt(np.einsum("ein,ein->en", x, x))
        e, d1, _ = self._pair(r)
        W = e.sum(axis=1) / (2.0 * self.volume)
        P = (x * (d1 / r)[:, None, :]) @ R / (2.0 * self.volume)   # Σ_R φ'/r (FR)_i R_J
        return W, P

    def tangent(self, F) -> np.ndarray:
        """``A_iJkL = ∂²W/∂F_iJ∂F_kL`` (eV/Å^d)."""
        F = self._F(F)
        R = self._shell(F)
        x = R @ F.T
        r = np.linalg.norm(x, axis=1)
        _, d1, d2 = self._pair(r)
        a = d2 / r ** 2 - d1 / r ** 3
        d = self.dim
        A = np.einsum("n,ni,nk,nJ,nL->iJkL", a, x, x, R, R)
        A += np.einsum("ik,JL->iJkL", np.eye(d), np.einsum("n,nJ,nL->JL", d1 / r, R, R))
        return A / (2.0 * self.volume)

    def elastic_constants(self) -> np.ndarray:
        """Voigt elastic constants at ``F = I`` in eV/Å³ (3D lattices) or the full ``C_ijkl``
        array (1D, 2D: eV/Å^d), with the reference stress removed (``C = A − δ S``)."""
        eye = np.eye(self.dim)
        A, S = self.tangent(eye), self.stress(eye)
        if self.dim == 3:
            return voigt_from_tangent(A, S)
        return A - np.einsum("ik,jl->ijkl", eye, S)

    def zero_stress_scale(self) -> float:
        """The scale ``s`` with ``P(s I) = 0`` (a uniform dilation that relaxes the lattice: its
        zero-pressure lattice constant is ``s`` times the reference one), by Brent's method on
        the mean normal stress."""
        from scipy.optimize import brentq

        d = self.dim

        def p(s):
            return float(np.trace(self.stress(s * np.eye(d)))) / d

        lo, hi = 0.8, 1.2
        if p(lo) * p(hi) > 0:
            raise InputError("pair", "no zero-stress dilation within ±20 % of the reference",
                             "a lattice whose reference spacing is near the potential's equilibrium")
        return float(brentq(p, lo, hi, xtol=1e-14))

    # the lattices the quasicontinuum uses ---------------------------------------------------
    @classmethod
    def chain(cls, a: float, pair: Any, rc: float | None = None) -> "PairLattice":
        """A 1D chain of spacing ``a`` (Å)."""
        return cls([[_v.positive("a", a)]], pair, rc)

    @classmethod
    def triangular(cls, a: float, pair: Any, rc: float | None = None) -> "PairLattice":
        """The 2D triangular (hexagonal close-packed) lattice of nearest-neighbour distance ``a``."""
        a = _v.positive("a", a)
        return cls([[a, 0.0], [0.5 * a, 0.5 * math.sqrt(3.0) * a]], pair, rc)

    @classmethod
    def fcc(cls, a: float, pair: Any, rc: float | None = None) -> "PairLattice":
        """The fcc lattice of cubic lattice constant ``a`` (Å)."""
        a = _v.positive("a", a)
        return cls(0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0.0]]), pair, rc)


class CauchyBorn:
    """Cauchy–Born ``W(F)`` of a periodic crystal with any ASE calculator.

    Parameters
    ----------
    atoms : ase.Atoms
        The reference crystal: a periodic cell in all three directions (a primitive cell is the
        fastest), at the reference state (usually the zero-stress lattice constant).
    calc : ase Calculator
        Provides energy, forces and stress.
    relax_basis : bool, optional
        Relax the basis atoms at every ``F`` (internal relaxation; the right rule for a
        multi-atom basis).  Default: True when the cell holds more than one atom.  ``False`` for
        a multi-atom basis is the clamped-ion rule (kept for comparison: the tangent is then the
        clamped-ion elastic tensor).
    fmax : float
        Force tolerance of the internal relaxation (eV/Å).
    step : float
        Central-difference step in ``F`` for the tangent.

    Raises
    ------
    InputError
        A structure the Cauchy–Born rule cannot describe: not periodic in three directions (a
        slab, wire or cluster has surfaces, which no homogeneous deformation of a lattice
        describes), a cell of zero volume, or — without internal relaxation — a reference whose
        atoms carry forces (its basis is not at equilibrium, so ``W`` would not be stationary in
        the internal coordinates and the rule would pick an arbitrary branch).
    """

    def __init__(self, atoms, calc, *, relax_basis: bool | None = None, fmax: float = 1e-6,
                 step: float = 1e-5):
        pbc = np.asarray(getattr(atoms, "pbc", [False] * 3), dtype=bool)
        if not pbc.all():
            raise InputError("atoms", f"pbc={pbc.tolist()}", "a crystal periodic in all three "
                             "directions: the Cauchy–Born rule maps lattice vectors, and a slab, "
                             "wire or cluster has surfaces no homogeneous deformation describes")
        vol = abs(float(atoms.cell.volume))
        if vol < 1e-6:
            raise InputError("atoms", "a cell of zero volume", "a periodic cell with volume")
        if calc is None or not hasattr(calc, "get_potential_energy"):
            raise InputError("calc", type(calc).__name__, "an ASE calculator")
        self.fmax = _v.positive("fmax", fmax)
        self.step = _v.in_range("step", step, 1e-8, 1e-2)
        self.relax_basis = (len(atoms) > 1) if relax_basis is None else bool(relax_basis)
        self.calc = calc
        self._ref = atoms.copy()
        self._ref.calc = calc
        self.cell0 = atoms.cell.array.copy()
        self.volume = vol
        if self.relax_basis:
            from ..atomistic.properties import relax_positions

            relax_positions(self._ref, fmax=self.fmax, what="Cauchy–Born reference basis")
        else:
            f = np.abs(self._ref.get_forces()).max() if len(atoms) > 1 else 0.0
            if f > 1e-3:
                raise InputError("relax_basis", False, f"internal relaxation for this basis: its "
                                 f"atoms carry forces up to {f:.3g} eV/Å at the reference, so the "
                                 "clamped-ion rule would not start from equilibrium",
                                 hint="relax_basis=True, or relax the reference first")
        self.frac0 = self._ref.get_scaled_positions(wrap=False)
        self._work = self._ref.copy()
        self._work.calc = calc

    def _F(self, F) -> np.ndarray:
        F = _v.finite_array("F", F, (3, 3))
        if np.linalg.det(F) <= 0:
            raise InputError("F", F.tolist(), "a deformation gradient with det F > 0")
        return F

    def _deform(self, F) -> Any:
        a = self._work
        a.set_cell(self.cell0 @ F.T, scale_atoms=False)
        a.set_scaled_positions(self.frac0)
        if self.relax_basis:
            from ..atomistic.properties import relax_positions

            relax_positions(a, fmax=self.fmax, what="Cauchy–Born basis at F")
        return a

    def energy_density(self, F) -> float:
        """``W(F)``: energy of the deformed (and, with ``relax_basis``, relaxed) cell per unit
        reference volume, eV/Å³ (the reference energy is not subtracted)."""
        return float(self._deform(self._F(F)).get_potential_energy() / self.volume)

    def stress(self, F) -> np.ndarray:
        """First Piola–Kirchhoff stress ``P = J σ F⁻ᵀ`` (eV/Å³); ``σ`` is the calculator's virial
        stress of the deformed cell (ASE sign: positive in tension)."""
        F = self._F(F)
        a = self._deform(F)
        sigma = a.get_stress(voigt=False)
        return float(np.linalg.det(F)) * sigma @ np.linalg.inv(F).T

    def tangent(self, F) -> np.ndarray:
        """``A_iJkL = ∂P_iJ/∂F_kL`` (eV/Å³) by central differences of :meth:`stress`."""
        F = self._F(F)
        h = self.step
        A = np.empty((3, 3, 3, 3))
        for k in range(3):
            for L in range(3):
                dF = np.zeros((3, 3))
                dF[k, L] = h
                A[:, :, k, L] = (self.stress(F + dF) - self.stress(F - dF)) / (2 * h)
        return A

    def elastic_tensor(self, structure: str | None = None):
        """The Cauchy–Born elastic constants at ``F = I`` as an ``ElasticTensor`` (GPa):
        relaxed-ion with ``relax_basis``, clamped-ion without."""
        from ..handoffs import ElasticTensor

        eye = np.eye(3)
        C = voigt_from_tangent(self.tangent(eye), self.stress(eye)) * EV_PER_A3_IN_GPA
        return ElasticTensor.from_voigt(
            C, unit="GPa", relaxed_ions=self.relax_basis, temperature_K=0.0,
            structure=structure or self._ref.get_chemical_formula(),
            provenance={"method": "Cauchy–Born tangent (central differences of P)",
                        "calculator": type(self.calc).__name__, "step": self.step,
                        "relax_basis": self.relax_basis, "n_atoms": len(self._ref)})
