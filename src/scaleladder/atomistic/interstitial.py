"""Interstitial solutes from an interatomic potential: solution energies, dipoles, partial molar
volume, the jump between sites and the diffusivity (handoffs
:class:`~scaleladder.handoffs.InterstitialSolution` and
:class:`~scaleladder.handoffs.InterstitialDiffusion`).

The calculations, for a cubic host cell and sites given in fractions of it:

* each site in ``n x n x n`` supercells (default 3 and 4), relaxed at the perfect crystal's cell;
  the solution energy ``E(host + X) - E(host) - E_ref`` is taken to zero stress with the dipole's
  correction ``-P:S:P / 2V`` (:meth:`~scaleladder.handoffs.ElasticDipole.elastic_correction`),
  the largest supercell gives the value and the next one the source ``"supercell size"``;
* ``E_ref`` for a diatomic gas (H2, N2, O2): half the relaxed dimer of the same potential
  (:func:`dimer_reference`; a potential's own molecule, not experiment's: the solution energy
  is then that potential's, consistently);
* partial molar volume: the relaxation volume ``tr(S:P)`` of the ground site, ``S`` the host's
  compliance from the same potential;
* the jump: a climbing-image NEB between the ground site and its neighbour
  (:func:`~scaleladder.atomistic.defects.migration_barrier`), the Vineyard prefactor of the
  climbing image (:func:`~scaleladder.atomistic.phonons.harmonic_tst_prefactor`), and the
  dipoles of the initial site and of the saddle (first-order strain dependence of the barrier).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Mapping, Sequence

import numpy as np

from ..core import validate
from ..core.errors import InputError
from ..uq import Estimate

__all__ = ["dimer_reference", "interstitial_solution", "interstitial_diffusion",
           "surface_segregation", "solute_frequencies", "sieverts_site_fraction"]

logger = logging.getLogger(__name__)

#: jump length of each network, in units of the cubic lattice constant
_JUMP = {"fcc octahedral-tetrahedral-octahedral": np.sqrt(3) / 4,
         "fcc octahedral-octahedral": 1 / np.sqrt(2)}


def _check_cubic_host(host) -> float:
    from ase import Atoms

    if not isinstance(host, Atoms) or len(host) == 0:
        raise InputError("host", type(host).__name__, "an ase.Atoms cubic cell of the host")
    if not np.all(host.pbc):
        raise InputError("host.pbc", host.pbc.tolist(), "a periodic crystal")
    cell = host.cell.array
    a = float(np.linalg.norm(cell[0]))
    if not np.allclose(cell, a * np.eye(3), atol=1e-8 * a):
        raise InputError("host", f"cell {np.round(cell, 4).tolist()}",
                         "a cubic cell along x, y, z (ase.build.bulk(..., cubic=True))")
    return a


def _sites(sites: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    if not isinstance(sites, Mapping) or not sites:
        raise InputError("sites", sites, "a dict of site name -> fractional coordinates of the "
                         "cubic cell, e.g. {'oct': (0.5, 0, 0), 'tet': (0.25, 0.25, 0.25)}")
    out = {}
    for k, v in sites.items():
        f = validate.finite_array(f"sites[{k!r}]", v, (3,))
        out[str(k)] = np.mod(f, 1.0)
    return out


def _supercells(supercells) -> list[int]:
    try:
        ns = sorted({int(validate.positive_int("supercells", n)) for n in supercells})
    except TypeError:
        raise InputError("supercells", supercells, "a sequence of repeats, e.g. (3, 4)") from None
    if not ns:
        raise InputError("supercells", supercells, "at least one repeat")
    if ns[0] < 2:
        raise InputError("supercells", list(ns), "repeats >= 2 (a single cubic cell leaves the "
                         "solute next to its own images)")
    return ns


def _relaxed(atoms, calc, fmax: float, steps: int, what: str):
    from .properties import relax_positions

    at = atoms.copy()
    at.calc = calc
    relax_positions(at, fmax=fmax, steps=steps, what=what)
    return at


def _with_solute(host, element: str, frac: np.ndarray, n: int):
    from ase import Atom

    perfect = host.repeat((n, n, n))
    defect = perfect.copy()
    defect.append(Atom(element, (frac + n // 2) @ host.cell.array))
    return perfect, defect


def dimer_reference(element: str, calc, bond_range_A: tuple[float, float] = (0.4, 3.0),
                    box_A: float = 20.0) -> dict:
    """Half the energy of the relaxed ``element``₂ dimer with ``calc`` (eV per atom).

    The bond length is bracketed on a grid over ``bond_range_A`` and refined by Brent's method;
    the dimer sits in an open box of ``box_A`` (Å, larger than twice the cutoff).  Returns
    ``{"energy_per_atom_eV", "bond_A", "dimer_energy_eV", "force_constant_eV_per_A2",
    "vibration_eV"}`` (the harmonic quantum ħω of the bond).
    """
    from ase import Atoms
    from scipy.optimize import minimize_scalar

    from .properties import _check_calc

    _check_calc(calc)
    lo, hi = (validate.positive("bond_range_A", x) for x in bond_range_A)
    if not lo < hi:
        raise InputError("bond_range_A", bond_range_A, "(shortest, longest) bond, Å")
    box = validate.positive("box_A", box_A)

    def energy(r):
        m = Atoms(element * 2, positions=[[0, 0, 0], [r, 0, 0]], cell=[box] * 3, pbc=False)
        m.center()
        m.calc = calc
        return float(m.get_potential_energy())

    grid = np.linspace(lo, hi, 53)
    e = np.array([energy(r) for r in grid])
    k = int(np.argmin(e))
    if k in (0, grid.size - 1):
        raise InputError("bond_range_A", bond_range_A, f"a range that brackets the {element}2 "
                         f"bond (the lowest energy is at its end, {grid[k]:.3f} Å)")
    res = minimize_scalar(energy, bracket=(grid[k - 1], grid[k], grid[k + 1]),
                          options={"xtol": 1e-8})
    r0, h = float(res.x), 1e-3
    k_bond = (energy(r0 + h) - 2 * float(res.fun) + energy(r0 - h)) / h ** 2     # eV/Å²
    from ase.data import atomic_masses, atomic_numbers

    mu = atomic_masses[atomic_numbers[element]] / 2 * 1.66053906660e-27          # kg
    omega = np.sqrt(max(k_bond, 0.0) * 1.602176634e-19 / 1e-20 / mu)
    return {"energy_per_atom_eV": float(res.fun) / 2, "bond_A": r0,
            "dimer_energy_eV": float(res.fun), "force_constant_eV_per_A2": float(k_bond),
            "vibration_eV": float(omega * 6.582119569e-16)}


def interstitial_solution(host, calc, element: str, sites: Mapping[str, Sequence[float]], *,
                          supercells: Sequence[int] = (3, 4), reference: Any = "dimer",
                          elastic: Any = None, fmax: float = 1e-3, steps: int = 2000,
                          host_name: str = ""):
    """Solution energies, dipoles and partial molar volume of an interstitial solute.

    Parameters
    ----------
    host : ase.Atoms
        The host's cubic cell at its lattice constant (e.g. ``bulk("Ni", "fcc", a, cubic=True)``).
    calc : ase Calculator
        Energy, forces and stress for the host and the solute (an EAM with the solute element,
        a fitted potential, ...).  A potential without the solute is refused by the calculator
        before any relaxation.
    element : str
        The solute.
    sites : dict
        Site name -> fractional coordinates in the cubic cell.
    supercells : sequence of int
        Repeats of the cubic cell (>= 2); the largest gives the values, the next the source
        ``"supercell size"``.
    reference : "dimer", float or Estimate
        Energy per solute atom of the reference (eV): ``"dimer"`` relaxes the diatomic
        molecule with ``calc`` (:func:`dimer_reference`).
    elastic : ElasticTensor or 6x6 GPa, optional
        The host's stiffness (default: computed with ``calc``,
        :func:`~scaleladder.atomistic.properties.elastic_constants`).
    fmax : float
        Force tolerance of the relaxations (eV/Å).
    steps : int
        Most relaxation steps.
    host_name : str
        Label of the host (default: the formula and the calculator's class).

    Returns
    -------
    InterstitialSolution
    """
    from ..handoffs import ElasticTensor, InterstitialSolution
    from .properties import _check_calc
    from .dipole import elastic_dipole
    from .properties import elastic_constants

    a = _check_cubic_host(host)
    _check_calc(calc)
    if not isinstance(element, str) or not element:
        raise InputError("element", element, "a chemical symbol, e.g. 'H'")
    from ase.data import atomic_numbers

    if element not in atomic_numbers:
        raise InputError("element", element, "a chemical symbol, e.g. 'H'")
    site_fr = _sites(sites)
    ns = _supercells(supercells)
    fmax = validate.positive("fmax", fmax)
    steps = validate.positive_int("steps", steps)
    name = host_name or f"{host.get_chemical_formula()} ({type(calc).__name__})"
    t0 = time.perf_counter()
    if isinstance(reference, str):
        if reference != "dimer":
            raise InputError("reference", reference, "'dimer', or an energy per solute atom (eV)")
        dim = dimer_reference(element, calc)
        e_ref = Estimate(dim["energy_per_atom_eV"], "eV")
        ref_label = f"1/2 {element}2 (relaxed dimer, {dim['bond_A']:.4f} Å, same potential)"
    else:
        dim = None
        e_ref = reference if isinstance(reference, Estimate) else \
            Estimate(validate.finite("reference", reference), "eV")
        e_ref = e_ref.to("eV")
        ref_label = f"{e_ref.value:.6f} eV per {element} (given)"
    if elastic is None:
        elastic = elastic_constants(host, calc, relax_ions=True)
    c = np.asarray(elastic.voigt.value, float) if isinstance(elastic, ElasticTensor) else \
        validate.finite_array("elastic", elastic, (6, 6))
    energies: dict[str, dict[int, float]] = {k: {} for k in site_fr}
    fixed: dict[str, dict[int, float]] = {k: {} for k in site_fr}
    dipoles: dict[str, dict[int, Any]] = {k: {} for k in site_fr}
    for n in ns:
        perfect, _ = _with_solute(host, element, np.zeros(3), n)
        perfect.calc = calc
        e_perf = float(perfect.get_potential_energy())
        for site, frac in site_fr.items():
            _, defect = _with_solute(host, element, frac, n)
            what = f"{element} {site} in {n}x{n}x{n} {name}"
            logger.info("interstitial_solution: relaxing %s", what)
            d = _relaxed(defect, calc, fmax, steps, what)
            dip = elastic_dipole(d, perfect, calc, fmax=fmax, defect_name=f"{element} {site}",
                                 host=name, elastic=c, provenance={"repeat": n})
            corr = float(dip.elastic_correction(c).value)
            fixed[site][n] = float(d.get_potential_energy()) - e_perf
            energies[site][n] = fixed[site][n] + corr
            dipoles[site][n] = dip
    big = ns[-1]
    out_e, out_d = {}, {}
    for site in site_fr:
        nominal = energies[site][big] - e_ref.value
        # a reference with its own uncertainty: E - E_ref moves against it
        srcs = {k: nominal - (np.asarray(v) - e_ref.value) for k, v in e_ref.sources.items()}
        p_big = dipoles[site][big]
        p_val = np.asarray(p_big.tensor.value)
        p_src = {}
        if len(ns) > 1:
            nxt = ns[-2]
            srcs["supercell size"] = np.array([nominal, energies[site][nxt] - e_ref.value])
            p_src["supercell size"] = np.array([p_val, np.asarray(dipoles[site][nxt].tensor.value)])
        out_e[site] = Estimate(nominal, "eV", srcs)
        out_d[site] = p_big.replace(tensor=Estimate(p_val, "eV", p_src))
    ground = min(out_e, key=lambda k: out_e[k].value)
    pmv = out_d[ground].relaxation_volume(c)
    return InterstitialSolution(
        element=element, host=name, energies=out_e, dipoles=out_d, reference=ref_label,
        partial_molar_volume=pmv, lattice_constant_A=a,
        provenance={"method": "relaxed at the perfect cell, zero-stress correction -P:S:P/2V",
                    "supercells": ns, "fmax_eV_per_A": fmax,
                    "fixed_cell_energies_eV": {s: {str(n): fixed[s][n] for n in ns}
                                               for s in site_fr},
                    "zero_stress_energies_eV": {s: {str(n): energies[s][n] for n in ns}
                                                for s in site_fr},
                    "sites_fractional": {k: v.tolist() for k, v in site_fr.items()},
                    "dimer": dim, "reference_eV": e_ref.value,
                    "elastic_GPa": np.asarray(c, float).tolist(),
                    "seconds": time.perf_counter() - t0})


def interstitial_diffusion(host, calc, element: str, initial_site: Sequence[float],
                           final_site: Sequence[float], *,
                           network: str = "fcc octahedral-tetrahedral-octahedral",
                           supercell: int | Sequence[int] = 3, n_images: int = 5,
                           fmax: float = 0.005, elastic: Any = None, host_name: str = ""):
    """One interstitial jump (CI-NEB), its Vineyard prefactors (both directions) and the dipoles
    of its two sites and its saddle, and the diffusivity of the network it belongs to.

    Parameters
    ----------
    host, calc, element
        As :func:`interstitial_solution`.
    initial_site, final_site : sequence of 3 floats
        Fractional coordinates (cubic cell) of the ground site and of its neighbour; their
        distance must be the network's jump length (``a √3/4`` for octahedral-tetrahedral).
    network : str
        A key of :data:`scaleladder.handoffs.solute.GEOMETRY_FACTORS`.
    supercell : int or (int, int)
        Repeat of the cubic cell (>= 2); two increasing repeats: the whole calculation in both,
        the larger gives the values and the pair the ``"supercell size"`` source of the barriers,
        the prefactors and the three dipoles (as :func:`interstitial_solution` does).
    n_images : int
        Interior NEB images.
    fmax : float
        NEB and relaxation force tolerance (eV/Å).
    elastic : ElasticTensor or 6x6 GPa, optional
        Host stiffness for the dipole's supercell check (default: computed).

    Returns
    -------
    InterstitialDiffusion
    """
    from ..handoffs import ElasticTensor, InterstitialDiffusion
    from ..handoffs.solute import GEOMETRY_FACTORS
    from .properties import _check_calc, elastic_constants

    a = _check_cubic_host(host)
    _check_calc(calc)
    if network not in GEOMETRY_FACTORS:
        raise InputError("network", network, "one of " + ", ".join(GEOMETRY_FACTORS))
    fi = validate.finite_array("initial_site", initial_site, (3,))
    ff = validate.finite_array("final_site", final_site, (3,))
    d = fi - ff
    d -= np.round(d)
    jump = float(np.linalg.norm(d @ host.cell.array))
    want = _JUMP[network] * a
    if abs(jump - want) > 0.02 * want:
        raise InputError("final_site", ff.tolist(), f"a neighbour of initial_site at the "
                         f"{network} jump length {want:.4f} Å (these are {jump:.4f} Å apart)")
    if np.ndim(supercell) == 0:
        ns = [validate.positive_int("supercell", supercell, 2)]
    else:
        ns = [validate.positive_int("supercell", n, 2) for n in supercell]
        if len(ns) != 2 or ns[0] >= ns[1]:
            raise InputError("supercell", list(supercell), "one repeat, or two increasing "
                             "repeats (the larger gives the values, the pair the finite-size "
                             "source)")
    fmax = validate.positive("fmax", fmax)
    name = host_name or f"{host.get_chemical_formula()} ({type(calc).__name__})"
    t0 = time.perf_counter()
    if elastic is None:
        elastic = elastic_constants(host, calc, relax_ions=True)
    c = np.asarray(elastic.voigt.value, float) if isinstance(elastic, ElasticTensor) else \
        validate.finite_array("elastic", elastic, (6, 6))
    runs = [_one_jump(host, calc, element, fi, d, n, n_images, fmax, name, c) for n in ns]
    big = runs[-1]
    mb, pf, pf_rev = big["barrier"], big["prefactor"], big["prefactor_reverse"]
    dips = {k: big[k] for k in ("initial", "saddle", "final")}
    if len(runs) == 2:
        small = runs[0]
        src = "supercell size"

        def with_size(e_big, e_small):
            v = np.asarray(e_big.value)
            return Estimate(v, e_big.unit, {src: np.array([v, np.asarray(
                e_small.to(e_big.unit).value)])})

        mb = mb.replace(value=with_size(mb.value, small["barrier"].value),
                        reverse=with_size(mb.reverse, small["barrier"].reverse))
        prefactor = with_size(pf.prefactor, small["prefactor"].prefactor)
        prefactor_rev = with_size(pf_rev.prefactor, small["prefactor_reverse"].prefactor)
        dips = {k: dips[k].replace(tensor=with_size(dips[k].tensor, small[k].tensor))
                for k in dips}
    else:
        prefactor, prefactor_rev = pf.prefactor, pf_rev.prefactor
    return InterstitialDiffusion(
        element=element, host=name, network=network, lattice_constant_A=a, barrier=mb,
        prefactor=prefactor, initial_dipole=dips["initial"], saddle_dipole=dips["saddle"],
        final_dipole=dips["final"], reverse_prefactor=prefactor_rev,
        provenance={"supercell": ns[-1], "supercells": ns, "n_images": n_images,
                    "fmax_eV_per_A": fmax,
                    "jump_A": jump, "initial_site": fi.tolist(), "final_site": ff.tolist(),
                    "imaginary_frequency_THz": pf.imaginary_frequency_THz,
                    # harmonic zero-point energies (Γ modes of the supercell, the saddle's real
                    # ones): the quantum correction of the classical barriers
                    "zero_point_correction_eV": _zpe(pf.saddle_frequencies_THz)
                    - _zpe(pf.minimum_frequencies_THz),
                    "zero_point_correction_reverse_eV": _zpe(pf_rev.saddle_frequencies_THz)
                    - _zpe(pf_rev.minimum_frequencies_THz),
                    "elastic_GPa": c.tolist(),
                    "seconds": time.perf_counter() - t0},
        domain_warnings=tuple(mb.domain_warnings) + tuple(pf.domain_warnings)
        + tuple(pf_rev.domain_warnings))


def _one_jump(host, calc, element, fi, d, n, n_images, fmax, name, c) -> dict:
    """The NEB, both prefactors and the three dipoles of one jump in an ``n``³ supercell."""
    from .defects import migration_barrier
    from .dipole import elastic_dipole
    from .phonons import harmonic_tst_prefactor

    perfect, start = _with_solute(host, element, np.mod(fi, 1.0), n)
    # the final site next to the initial one (not a periodic image elsewhere)
    _, end = _with_solute(host, element, np.mod(fi, 1.0) - d, n)
    perfect.calc = calc
    ini = _relaxed(start, calc, fmax / 5, 2000, f"{element} initial site")
    fin = _relaxed(end, calc, fmax / 5, 2000, f"{element} final site")
    mb = migration_barrier(ini, fin, calc, n_images=n_images, fmax=fmax)
    cfg = mb.provenance["configurations"]
    minimum, saddle = cfg["initial"].to_atoms(), cfg["saddle"].to_atoms()
    final = cfg["final"].to_atoms()
    return {"barrier": mb,
            "prefactor": harmonic_tst_prefactor(minimum, saddle, calc),
            "prefactor_reverse": harmonic_tst_prefactor(final, saddle, calc),
            "initial": elastic_dipole(minimum, perfect, calc, fmax=fmax,
                                      defect_name=f"{element} initial", host=name, elastic=c),
            "final": elastic_dipole(final, perfect, calc, fmax=fmax,
                                    defect_name=f"{element} final", host=name, elastic=c),
            "saddle": elastic_dipole(saddle, perfect, calc, fmax=max(2 * fmax, 0.01),
                                     defect_name=f"{element} saddle", host=name, elastic=c)}


def _zpe(frequencies_THz) -> float:
    """Harmonic zero-point energy Σ hν/2 (eV) of real frequencies in THz."""
    return float(0.5 * 4.135667696e-3 * np.sum(np.asarray(frequencies_THz, float)))


#: adsorption site used for each fcc surface (ASE's site names)
_SURFACE_SITES = {(1, 1, 1): "fcc", (1, 0, 0): "hollow"}


def surface_segregation(host, calc, element: str, solution, *, miller=(1, 1, 1),
                        size: tuple[int, int] = (2, 2), layers: int = 6, vacuum: float = 8.0,
                        fixed_layers: int = 2, height_A: float = 1.0, fmax: float = 1e-3,
                        host_name: str = ""):
    """Segregation of an interstitial solute to a free surface of an fcc host, at every
    coverage the surface cell allows, and the clean surface energy.

    A slab of ``layers`` atomic layers (``ase.build.fcc111`` / ``fcc100``, the host's lattice
    constant, ``size`` surface cells) with its bottom ``fixed_layers`` held at the bulk
    positions; ``n`` solute atoms on the hollow sites of the top face (n = 1 .. sites), relaxed.
    The segregation energy per solute atom is
    ``[E(slab + n X) - E(slab) - n E_ref] / n - E_sol(ground site)`` with ``E_ref`` and the bulk
    solution energy from ``solution`` (the same potential): negative, the solute prefers the
    surface.  The clean γ₀ comes from
    :func:`~scaleladder.atomistic.properties.surface_energy` (symmetric slab, relaxed).

    Parameters
    ----------
    host : ase.Atoms
        The host's cubic fcc cell (one element).
    calc : ase Calculator
    element : str
    solution : InterstitialSolution
        The bulk solution energies of ``element`` in this host with ``calc``.
    miller : (1, 1, 1) or (1, 0, 0)
    size : (int, int)
        Surface cells of the slab (sites per face = their product).
    layers, vacuum, fixed_layers, height_A, fmax
        Slab thickness (atomic layers), vacuum (Å), bottom layers fixed, starting height of the
        solute above the top layer (Å), force tolerance (eV/Å).

    Returns
    -------
    SurfaceSegregation
    """
    from ase.build import add_adsorbate, fcc100, fcc111
    from ase.constraints import FixAtoms

    from ..handoffs import InterstitialSolution, SurfaceSegregation
    from .properties import _check_calc, surface_energy

    a = _check_cubic_host(host)
    _check_calc(calc)
    if len(set(host.get_chemical_symbols())) != 1 or len(host) != 4:
        raise InputError("host", host.get_chemical_formula(), "the 4-atom cubic cell of an "
                         "fcc element (e.g. bulk('Ni', 'fcc', a, cubic=True))")
    if not isinstance(solution, InterstitialSolution) or solution.element != element:
        raise InputError("solution", type(solution).__name__,
                         f"the InterstitialSolution of {element} in this host")
    m = tuple(int(k) for k in miller)
    if m not in _SURFACE_SITES:
        raise InputError("miller", list(miller), "(1, 1, 1) or (1, 0, 0)")
    nx, ny = (validate.positive_int("size", s) for s in size)
    layers = validate.positive_int("layers", layers, 3)
    fixed = validate.positive_int("fixed_layers", fixed_layers, 0)
    if fixed >= layers - 1:
        raise InputError("fixed_layers", fixed, f"fewer than layers - 1 = {layers - 1}")
    vacuum = validate.positive("vacuum", vacuum)
    fmax = validate.positive("fmax", fmax)
    symbol = host.get_chemical_symbols()[0]
    build = fcc111 if m == (1, 1, 1) else fcc100
    site = _SURFACE_SITES[m]
    name = host_name or solution.host
    t0 = time.perf_counter()

    def slab():
        s = build(symbol, size=(nx, ny, layers), a=a, vacuum=vacuum)
        z = s.positions[:, 2]
        levels = np.unique(np.round(z, 3))
        s.set_constraint(FixAtoms(mask=z < levels[fixed] - 0.1) if fixed else [])
        return s

    clean = _relaxed(slab(), calc, fmax, 2000, f"clean {m} slab")
    e_clean = float(clean.get_potential_energy())
    e_ref = float(solution.provenance["reference_eV"])
    e_sol = solution.energies[solution.ground_site]
    n_sites = nx * ny
    order = [(i, j) for i in range(nx) for j in range(ny)]
    order = order[::2] + order[1::2]                  # spread a partial coverage
    coverages, e_seg, e_ads = [], [], []
    for n in range(1, n_sites + 1):
        s = slab()
        for (i, j) in order[:n]:
            add_adsorbate(s, element, height_A, site, offset=(i, j))
        s.set_constraint(s.constraints)               # the adsorbates are free
        r = _relaxed(s, calc, fmax, 2000, f"{n} {element} on {m}")
        e = (float(r.get_potential_energy()) - e_clean - n * e_ref) / n
        coverages.append(n / n_sites)
        e_ads.append(e)
        e_seg.append(e - e_sol.value)
    g0 = surface_energy(host, calc, miller=m, layers=layers, vacuum=vacuum, relax=True,
                        fmax=fmax)
    area = float(np.linalg.norm(np.cross(clean.cell[0], clean.cell[1])))
    srcs = {k: np.array([[x - (sv - e_sol.value) for x in e_seg] for sv in v])
            for k, v in e_sol.sources.items()}
    return SurfaceSegregation(
        element=element, host=name, miller=m, site=site, coverages=np.array(coverages),
        segregation_energies=Estimate(np.array(e_seg), "eV", srcs),
        clean_surface_energy=g0.value, sites_per_area=n_sites / area,
        provenance={"method": "relaxed slab, bottom layers fixed; E_seg vs the bulk ground site",
                    "layers": layers, "fixed_layers": fixed, "size": [nx, ny],
                    "vacuum_A": vacuum, "area_A2": area,
                    "adsorption_energies_vs_reference_eV": e_ads,
                    "reference": solution.reference, "bulk_site": solution.ground_site,
                    "seconds": time.perf_counter() - t0},
        domain_warnings=tuple(g0.domain_warnings))


def solute_frequencies(host, calc, element: str, site: Sequence[float], *, supercell: int = 3,
                       fmax: float = 1e-4, step_A: float = 0.005) -> np.ndarray:
    """Vibrational frequencies (THz) of a light interstitial solute at ``site`` (fractions of
    the cubic cell) with the host atoms held (Einstein approximation: for H in a transition
    metal the host is ~60 times heavier): the 3x3 Hessian of the solute by central differences
    of its force, mass-weighted, diagonalised.  A negative eigenvalue (not a minimum) is an
    error naming the site."""
    from ase.data import atomic_masses, atomic_numbers

    from ..core.errors import CalculationError
    from .properties import _check_calc

    _check_cubic_host(host)
    _check_calc(calc)
    frac = validate.finite_array("site", site, (3,))
    n = validate.positive_int("supercell", supercell, 2)
    h = validate.positive("step_A", step_A)
    _, defect = _with_solute(host, element, np.mod(frac, 1.0), n)
    at = _relaxed(defect, calc, fmax, 2000, f"{element} at {frac.tolist()}")
    i = len(at) - 1
    hess = np.zeros((3, 3))
    for a in range(3):
        fs = []
        for d in (h, -h):
            x = at.copy()
            x.calc = calc
            x.positions[i, a] += d
            fs.append(x.get_forces()[i])
        hess[a] = -(fs[0] - fs[1]) / (2 * h)          # eV/Å²
    hess = 0.5 * (hess + hess.T)
    lam = np.linalg.eigvalsh(hess)
    if lam.min() <= 0:
        raise CalculationError(f"{element} at {frac.tolist()} is not a minimum of the potential "
                               f"(Hessian eigenvalues {np.round(lam, 4).tolist()} eV/Å²)")
    mass = atomic_masses[atomic_numbers[element]]
    # omega^2 = k/m: eV/Å²/amu -> (1/s)^2
    ev, amu, ang = 1.602176634e-19, 1.66053906660e-27, 1e-10
    omega = np.sqrt(lam * ev / (ang ** 2 * mass * amu))
    return omega / (2 * np.pi) / 1e12


def sieverts_site_fraction(solution, temperature_K: float, pressure_Pa: float, *,
                           dimer: dict, site_frequencies_THz: Sequence[float],
                           classical: bool = False) -> dict:
    """Site fraction of hydrogen (or any diatomic gas's atoms) dissolved in the ground site, in
    equilibrium with the gas X2 at ``pressure_Pa`` and ``temperature_K`` (Sieverts' law):

        x / (1 - x) = exp(-(E_sol + F_site(T) - [μ_X2(T, p) - E_X2] / 2) / k_BT)

    ``E_sol`` the solution energy of the ground site (vs ½ X2, the handoff's), ``F_site`` the
    harmonic free energy of the solute's three modes in the site (zero-point energy included),
    ``μ_X2 − E_X2`` the ideal-gas free energy of the molecule above its potential energy (ASE's
    :class:`~ase.thermochemistry.IdealGasThermo`: translation, rigid rotor, symmetry number 2,
    the dimer's own harmonic vibration from ``dimer["vibration_eV"]``, zero point included).
    ``classical=True`` leaves every zero-point energy out (both sides) — the classical limit the
    atomistic energies themselves are in.  Returns ``{"site_fraction",
    "exponent_eV", "gas_free_energy_eV", "site_free_energy_eV", ...}``; for the octahedral sites
    of an fcc host (one per metal atom) the site fraction is also the H/M ratio."""
    from ase import Atoms
    from ase.thermochemistry import HarmonicThermo, IdealGasThermo

    from ..core.units import BOLTZMANN_EV

    t = validate.positive("temperature_K", temperature_K)
    p = validate.positive("pressure_Pa", pressure_Pa)
    if "vibration_eV" not in dimer:
        raise InputError("dimer", sorted(dimer), "dimer_reference(...) output with "
                         "'vibration_eV' (the molecule's harmonic quantum)")
    nus = validate.finite_array("site_frequencies_THz", site_frequencies_THz, (3,))
    if np.any(nus <= 0):
        raise InputError("site_frequencies_THz", nus.tolist(), "three positive frequencies")
    hbar_ev_s = 6.582119569e-16
    site_q = 2 * np.pi * nus * 1e12 * hbar_ev_s            # ħω (eV)
    el = solution.element
    mol = Atoms(el * 2, positions=[[0, 0, 0], [dimer["bond_A"], 0, 0]])
    gas = IdealGasThermo(vib_energies=[dimer["vibration_eV"]], geometry="linear",
                         potentialenergy=0.0, atoms=mol, symmetrynumber=2, spin=0)
    g_gas = float(gas.get_gibbs_energy(t, p, verbose=False))
    f_site = float(HarmonicThermo(vib_energies=list(site_q)).get_helmholtz_energy(
        t, verbose=False))
    if classical:
        g_gas -= 0.5 * dimer["vibration_eV"]
        f_site -= 0.5 * float(np.sum(site_q))
    e_sol = solution.energies[solution.ground_site].value
    expo = e_sol + f_site - 0.5 * g_gas
    r = np.exp(-expo / (BOLTZMANN_EV * t))
    x = float(r / (1 + r))
    return {"site_fraction": x, "exponent_eV": float(expo), "gas_free_energy_eV": g_gas,
            "site_free_energy_eV": f_site, "solution_energy_eV": float(e_sol),
            "temperature_K": float(t), "pressure_Pa": float(p), "classical": bool(classical)}
