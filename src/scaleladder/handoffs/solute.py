"""Interstitial solutes (hydrogen in a metal): where they sit, and how fast they move.

:class:`InterstitialSolution` -- the solution energy of each interstitial site relative to a
reference (for hydrogen: half the H2 molecule), the site's elastic dipole, and the partial molar
volume of the ground site.  :class:`InterstitialDiffusion` -- one jump between the ground site
and its neighbour (barrier, harmonic-TST prefactor, the dipoles of the initial site and of the
saddle) and the lattice diffusivity that follows for a network whose geometry factor is known:
``D = g a^2 Γ``, ``Γ = ν* exp(-E_m / k_B T)`` the rate of one jump out of the ground site.

For the octahedral-tetrahedral-octahedral network of an fcc metal (``g = 1/2``): an octahedral
site has 8 tetrahedral neighbours at ``a √3 / 4``; from a tetrahedral site (much higher in
energy, so left at once) the solute reaches 3 new octahedral sites out of 4, each at ``a / √2``
from the first: the octahedral sites are left at the rate ``8 Γ · 3/4 = 6 Γ`` for 12 neighbours,
and ``D = (1/6) 6 Γ (a^2 / 2) = a^2 Γ / 2``.

Strain: ``E_m(ε) = E_m - (P_saddle - P_initial):ε`` for the jump as computed; other jumps of
the same family see the same strain through the rotated dipoles, so a general strain makes the
diffusivity anisotropic (the lattice KMC sums the jumps one by one); a hydrostatic strain
changes every jump alike and :meth:`InterstitialDiffusion.diffusivity` takes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.codec import register
from ..core.errors import InputError
from ..core.units import BOLTZMANN_EV
from ..core.validate import finite
from ..uq import Estimate
from ._common import DataclassCodec, check_str, estimate_in, setf, str_dict
from .defects import MigrationBarrier
from .dipole import ElasticDipole
from .potential import check_domain_warnings

__all__ = ["InterstitialSolution", "InterstitialDiffusion", "SurfaceSegregation",
           "GEOMETRY_FACTORS"]

#: D = g a^2 Γ for the networks the toolkit knows (Γ: rate of one jump out of the ground site)
GEOMETRY_FACTORS = {"fcc octahedral-tetrahedral-octahedral": 0.5,
                    "fcc octahedral-octahedral": 1.0}

_A2_TO_M2 = 1e-20


def _temperature(t: Any) -> float:
    t = finite("temperature_K", t)
    if t <= 0:
        raise InputError("temperature_K", t, "a temperature above 0 K")
    return float(t)


def _hydrostatic(strain: Any) -> float:
    """The volumetric strain of a hydrostatic strain given as a number (the linear strain
    ε, each axis) or a 3x3 tensor that must be isotropic."""
    if np.ndim(strain) == 0:
        return float(finite("strain", strain))
    e = np.asarray(strain, float)
    if e.shape != (3, 3) or not np.all(np.isfinite(e)):
        raise InputError("strain", e.tolist(), "a number (linear strain, each axis) or a 3x3 "
                         "hydrostatic strain")
    iso = np.trace(e) / 3
    if np.abs(e - iso * np.eye(3)).max() > 1e-12 + 1e-9 * abs(iso):
        raise InputError("strain", e.tolist(), "a hydrostatic strain (ε 1): a general strain "
                         "makes the diffusivity anisotropic; use the lattice KMC")
    return float(iso)


@register("InterstitialSolution")
@dataclass(frozen=True, eq=False)
class InterstitialSolution(DataclassCodec):
    """Solution energies and elastic dipoles of an interstitial solute's sites.

    Parameters
    ----------
    element, host : str
        The solute (e.g. ``"H"``) and the host crystal (e.g. ``"fcc Ni (NiAlH EAM)"``).
    energies : dict of str to Estimate
        Solution energy of each site (eV per solute atom) relative to ``reference``: at zero
        stress, in the dilute limit (the fixed-cell energy plus ``-P:S:P / 2V``).
    dipoles : dict of str to ElasticDipole
        The dipole of each site (the same keys).
    reference : str
        What the energies are relative to, e.g. ``"1/2 H2 (relaxed dimer, same potential)"``.
    partial_molar_volume : Estimate
        Relaxation volume of the ground site, ``tr(S:P)`` (Å³ per solute atom).
    lattice_constant_A : float
        The host's lattice constant (cubic cell) the sites were computed at.
    provenance : dict
    domain_warnings : tuple of str

    Raises
    ------
    InputError
        No site, energies and dipoles with different sites, a non-energy, a volume that is not
        a volume, a non-positive lattice constant.
    """

    element: str
    host: str
    energies: dict
    dipoles: dict
    reference: str
    partial_molar_volume: Estimate
    lattice_constant_A: float
    provenance: dict = field(default_factory=dict)
    domain_warnings: tuple = ()

    def __post_init__(self) -> None:
        check_str("element", self.element, allow_empty=False)
        check_str("host", self.host)
        check_str("reference", self.reference, allow_empty=False)
        if not isinstance(self.energies, dict) or not self.energies:
            raise InputError("energies", self.energies, "a dict of site name -> Estimate (eV)")
        if not isinstance(self.dipoles, dict) or set(self.dipoles) != set(self.energies):
            raise InputError("dipoles", sorted(getattr(self.dipoles, "keys", list)()),
                             f"an ElasticDipole for each site {sorted(self.energies)}")
        energies = {str(k): estimate_in(f"energies[{k!r}]", v, "eV", (), allow_plain=False)
                    for k, v in self.energies.items()}
        for k, d in self.dipoles.items():
            if not isinstance(d, ElasticDipole):
                raise InputError(f"dipoles[{k!r}]", d, "an ElasticDipole")
        setf(self, "energies", energies)
        setf(self, "dipoles", {str(k): v for k, v in self.dipoles.items()})
        setf(self, "partial_molar_volume",
             estimate_in("partial_molar_volume", self.partial_molar_volume, "Å^3", (),
                         allow_plain=False))
        a = finite("lattice_constant_A", self.lattice_constant_A)
        if a <= 0:
            raise InputError("lattice_constant_A", a, "a positive lattice constant (Å)")
        setf(self, "lattice_constant_A", float(a))
        setf(self, "provenance", str_dict("provenance", self.provenance))
        setf(self, "domain_warnings",
             check_domain_warnings("domain_warnings", self.domain_warnings))

    @property
    def ground_site(self) -> str:
        """The site of lowest solution energy."""
        return min(self.energies, key=lambda k: self.energies[k].value)

    def site_energy(self, site: str, strain: Any = None) -> Estimate:
        """Solution energy of ``site`` under a homogeneous small strain (``E - P:ε``, eV)."""
        if site not in self.energies:
            raise InputError("site", site, "one of " + ", ".join(sorted(self.energies)))
        e = self.energies[site]
        return e if strain is None else e + self.dipoles[site].energy_change(strain)

    def summary(self) -> str:
        parts = [f"{k} {v.value:+.3f} eV" for k, v in sorted(self.energies.items(),
                                                              key=lambda kv: kv[1].value)]
        return (f"{self.element} in {self.host} vs {self.reference}: " + ", ".join(parts)
                + f"; partial molar volume {self.partial_molar_volume.value:.2f} Å^3")


@register("InterstitialDiffusion")
@dataclass(frozen=True, eq=False)
class InterstitialDiffusion(DataclassCodec):
    """One interstitial jump and the lattice diffusivity of its network.

    Parameters
    ----------
    element, host : str
    network : str
        A key of :data:`GEOMETRY_FACTORS` (how the jumps add up to a diffusivity).
    lattice_constant_A : float
        Cubic lattice constant ``a`` (Å).
    barrier : MigrationBarrier
        From the ground site to its neighbour (``value``: the barrier out of the ground site).
    prefactor : Estimate
        Harmonic-TST (Vineyard) prefactor of that jump, THz (``"1/ps"``).
    initial_dipole, saddle_dipole, final_dipole : ElasticDipole
        Dipoles of the ground site, of the saddle and of the final site (the same supercell).
    reverse_prefactor : Estimate
        Vineyard prefactor of the reverse jump (final site -> saddle), THz.
    provenance : dict
    domain_warnings : tuple of str
    """

    element: str
    host: str
    network: str
    lattice_constant_A: float
    barrier: MigrationBarrier
    prefactor: Estimate
    initial_dipole: ElasticDipole
    saddle_dipole: ElasticDipole
    final_dipole: ElasticDipole
    reverse_prefactor: Estimate
    provenance: dict = field(default_factory=dict)
    domain_warnings: tuple = ()

    def __post_init__(self) -> None:
        check_str("element", self.element, allow_empty=False)
        check_str("host", self.host)
        if self.network not in GEOMETRY_FACTORS:
            raise InputError("network", self.network, "one of " + ", ".join(GEOMETRY_FACTORS))
        a = finite("lattice_constant_A", self.lattice_constant_A)
        if a <= 0:
            raise InputError("lattice_constant_A", a, "a positive lattice constant (Å)")
        setf(self, "lattice_constant_A", float(a))
        if not isinstance(self.barrier, MigrationBarrier):
            raise InputError("barrier", self.barrier, "a MigrationBarrier")
        for name in ("prefactor", "reverse_prefactor"):
            pf = estimate_in(name, getattr(self, name), "1/ps", (), allow_plain=False)
            if pf.value <= 0:
                raise InputError(name, str(pf), "a positive attempt frequency (THz)")
            setf(self, name, pf)
        for name in ("initial_dipole", "saddle_dipole", "final_dipole"):
            dip = getattr(self, name)
            if not isinstance(dip, ElasticDipole):
                raise InputError(name, dip, "an ElasticDipole")
            if abs(dip.volume_A3 - self.initial_dipole.volume_A3) > \
                    1e-6 * self.initial_dipole.volume_A3:
                raise InputError(name, dip.volume_A3, "a dipole from the same supercell as "
                                 f"initial_dipole ({self.initial_dipole.volume_A3:.3f} Å³)")
        setf(self, "provenance", str_dict("provenance", self.provenance))
        setf(self, "domain_warnings",
             check_domain_warnings("domain_warnings", self.domain_warnings))

    @property
    def geometry_factor(self) -> float:
        return GEOMETRY_FACTORS[self.network]

    @property
    def activation_energy(self) -> Estimate:
        """``Q = E_m`` (eV): the barrier out of the ground site."""
        return self.barrier.value

    @property
    def D0(self) -> Estimate:
        """Diffusivity prefactor ``g a^2 ν*`` (m²/s)."""
        nu = self.prefactor.to("1/s")
        g = self.geometry_factor * self.lattice_constant_A ** 2 * _A2_TO_M2
        return Estimate(nu.value * g, "m^2/s", {k: np.asarray(v) * g for k, v in nu.sources.items()})

    def barrier_change(self, strain: Any) -> Estimate:
        """``-(P_saddle - P_initial):ε`` (eV): the first-order change of this jump's barrier
        under a homogeneous small strain (3x3, or Voigt with engineering shears)."""
        return (self.saddle_dipole.energy_change(strain)
                - self.initial_dipole.energy_change(strain))

    def jump_rate(self, temperature_K: float, strain: Any = None) -> Estimate:
        """``Γ = ν* exp(-E_m(ε) / k_B T)`` (1/s) of this jump."""
        t = _temperature(temperature_K)
        em = self.barrier.value if strain is None else self.barrier.value + \
            self.barrier_change(strain)
        x = em / Estimate(BOLTZMANN_EV * t, "eV")          # dimensionless
        rate = self.prefactor.to("1/s") * np.exp(-x)
        return Estimate(float(rate.value), "1/s", rate.sources)

    def diffusivity(self, temperature_K: float, hydrostatic_strain: Any = None) -> Estimate:
        """Lattice diffusivity ``g a^2 Γ`` (m²/s) at ``temperature_K``; with a hydrostatic
        strain (linear strain per axis, or an isotropic 3x3) the barrier follows the dipoles
        and ``a`` the strain."""
        if hydrostatic_strain is None:
            e, strain = 0.0, None
        else:
            e = _hydrostatic(hydrostatic_strain)
            strain = e * np.eye(3)
        g = self.geometry_factor * (self.lattice_constant_A * (1 + e)) ** 2 * _A2_TO_M2
        d = self.jump_rate(temperature_K, strain) * g
        return Estimate(float(d.value), "m^2/s", d.sources)

    def summary(self) -> str:
        return (f"{self.element} in {self.host} ({self.network}): E_m = "
                f"{self.barrier.value.value:.3f} eV, ν* = {self.prefactor.value:.2f} THz, "
                f"D0 = {self.D0.value:.3g} m²/s")



@register("SurfaceSegregation")
@dataclass(frozen=True, eq=False)
class SurfaceSegregation(DataclassCodec):
    """Segregation of an interstitial solute to a free surface, and the surface's cohesion with
    the solute on it.

    Parameters
    ----------
    element, host : str
    miller : tuple of 3 int
        The surface.
    site : str
        The adsorption site (e.g. ``"fcc"`` hollow of (111)).
    coverages : array_like (n,)
        Coverages θ (solute atoms per surface site, increasing, in (0, 1]).
    segregation_energies : Estimate (n,)
        Mean energy per solute atom of moving it from the bulk ground site onto the surface at
        each coverage (eV; negative: it prefers the surface).
    clean_surface_energy : Estimate
        γ₀ of the clean, relaxed surface (J/m²).
    sites_per_area : float
        Surface sites per Å².
    provenance : dict
    domain_warnings : tuple of str
    """

    element: str
    host: str
    miller: tuple
    site: str
    coverages: np.ndarray
    segregation_energies: Estimate
    clean_surface_energy: Estimate
    sites_per_area: float
    provenance: dict = field(default_factory=dict)
    domain_warnings: tuple = ()

    def __post_init__(self) -> None:
        check_str("element", self.element, allow_empty=False)
        check_str("host", self.host)
        check_str("site", self.site)
        m = tuple(int(k) for k in self.miller) if np.ndim(self.miller) == 1 and \
            len(self.miller) == 3 else None
        if m is None or m == (0, 0, 0):
            raise InputError("miller", self.miller, "three integers, not all zero")
        setf(self, "miller", m)
        th = np.asarray(self.coverages, float)
        if th.ndim != 1 or th.size == 0 or not np.all(np.isfinite(th)) or th.min() <= 0 \
                or th.max() > 1 or np.any(np.diff(th) <= 0):
            raise InputError("coverages", th.tolist(), "increasing coverages in (0, 1]")
        th.setflags(write=False)
        setf(self, "coverages", th)
        setf(self, "segregation_energies",
             estimate_in("segregation_energies", self.segregation_energies, "eV", th.shape,
                         allow_plain=False))
        g = estimate_in("clean_surface_energy", self.clean_surface_energy, "J/m^2", (),
                        allow_plain=False)
        if g.value <= 0:
            raise InputError("clean_surface_energy", str(g), "a positive surface energy")
        setf(self, "clean_surface_energy", g)
        n = finite("sites_per_area", self.sites_per_area)
        if n <= 0:
            raise InputError("sites_per_area", n, "surface sites per Å² (> 0)")
        setf(self, "sites_per_area", float(n))
        setf(self, "provenance", str_dict("provenance", self.provenance))
        setf(self, "domain_warnings",
             check_domain_warnings("domain_warnings", self.domain_warnings))

    # -------------------------------------------------------------------- thermodynamics
    def _e_seg(self, theta):
        """Mean segregation energy at coverage θ: linear between the computed coverages,
        constant below the first and above the last (eV, nominal)."""
        return np.interp(theta, self.coverages, np.asarray(self.segregation_energies.value))

    def differential_segregation_energy(self, theta):
        """``d(θ Ē(θ))/dθ`` (eV): the energy of the next solute atom at coverage θ."""
        th = np.asarray(theta, float)
        h = 1e-4
        f = lambda t: t * self._e_seg(t)                      # noqa: E731
        return (f(np.minimum(th + h, 1.0)) - f(np.maximum(th - h, 0.0))) / \
            (np.minimum(th + h, 1.0) - np.maximum(th - h, 0.0))

    def equilibrium_coverage(self, bulk_site_fraction: float, temperature_K: float) -> float:
        """Coverage in equilibrium with a bulk site fraction ``x`` (Langmuir–McLean with the
        coverage-dependent energy of the next atom, a Fowler-type isotherm):
        ``θ/(1−θ) = x/(1−x) exp(−E'(θ)/k_BT)``."""
        from scipy.optimize import brentq

        x = finite("bulk_site_fraction", bulk_site_fraction)
        if not 0 < x < 1:
            raise InputError("bulk_site_fraction", x, "a site fraction in (0, 1)")
        t = _temperature(temperature_K)
        kt = BOLTZMANN_EV * t
        mu = np.log(x / (1 - x))

        def f(th):
            return np.log(th / (1 - th)) - mu + self.differential_segregation_energy(th) / kt

        lo, hi = 1e-300, 1 - 1e-15
        if f(lo) > 0:
            return 0.0
        if f(hi) < 0:
            return 1.0
        return float(brentq(f, lo, hi, xtol=1e-15))

    def work_of_separation(self, coverage: float) -> float:
        """``2 (γ₀ + n_s θ Ē(θ))`` (J/m²): two surfaces at fixed coverage θ with the solute
        taken from the bulk ground site (fast separation, Hirth and Rice 1980)."""
        from ..core.units import EV_PER_A2_IN_J_PER_M2

        th = finite("coverage", coverage)
        if not 0 <= th <= 1:
            raise InputError("coverage", th, "a coverage in [0, 1]")
        d = self.sites_per_area * th * float(self._e_seg(th)) * EV_PER_A2_IN_J_PER_M2
        return 2 * (self.clean_surface_energy.value + d)

    def equilibrium_work_of_separation(self, bulk_site_fraction: float,
                                       temperature_K: float) -> float:
        """``2 γ(μ)`` (J/m²) with the surfaces in equilibrium with the bulk solute (slow
        separation, Rice and Wang 1989): the Gibbs adsorption isotherm
        ``dγ = −n_s θ dμ`` integrated from an empty surface to the bulk's chemical potential
        ``μ = k_BT ln(x/(1−x))`` (configurational entropy included)."""
        from scipy.integrate import quad

        from ..core.units import EV_PER_A2_IN_J_PER_M2

        x = finite("bulk_site_fraction", bulk_site_fraction)
        if not 0 < x < 1:
            raise InputError("bulk_site_fraction", x, "a site fraction in (0, 1)")
        t = _temperature(temperature_K)
        kt = BOLTZMANN_EV * t
        e_min = float(np.min(self.differential_segregation_energy(
            np.linspace(1e-6, 1, 201))))
        mu = kt * np.log(x / (1 - x))
        lo = min(mu, e_min) - 40 * kt                   # θ ~ e^-40 below: nothing adsorbed

        def theta(m):
            xm = 1.0 / (1.0 + np.exp(-m / kt))
            return self.equilibrium_coverage(min(max(xm, 1e-300), 1 - 1e-16), t)

        pts = sorted({float(np.clip(e, lo, mu)) for e in (e_min, float(
            np.max(np.asarray(self.segregation_energies.value))))})
        val, _ = quad(theta, lo, mu, points=[p for p in pts if lo < p < mu] or None,
                      limit=200)
        return 2 * (self.clean_surface_energy.value
                    - self.sites_per_area * val * EV_PER_A2_IN_J_PER_M2)

    def summary(self) -> str:
        e = np.asarray(self.segregation_energies.value)
        return (f"{self.element} on {self.host} {self.miller} ({self.site}): segregation "
                + ", ".join(f"θ={t:.2f}: {v:+.3f} eV" for t, v in zip(self.coverages, e))
                + f"; clean γ = {self.clean_surface_energy.value:.3f} J/m²")
