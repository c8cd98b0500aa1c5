"""Ladder ``defects``: vacancy formation, vacancy migration and surface energies.

For any crystal (a file's content or a builtin spec) and any supported potential: the structure
is relaxed to zero pressure when its cell is cubic (kept as given otherwise); then, in a periodic
``supercell``, the vacancy formation energy (``VacancyFormationEnergy``), the climbing-image NEB
barrier of a nearest-neighbour vacancy hop (``MigrationBarrier``, forward and reverse) and the
surface energy of each Miller index (``SurfaceEnergy``, one stage each).

Finite size.  A vacancy in a periodic supercell interacts with its images (elastically, as 1/N
for N atoms), so E_f depends on the supercell.  Supercells of fewer than
:data:`MIN_SUPERCELL_ATOMS` atoms are refused (a 7-atom "vacancy" is not a defect in a crystal).
With ``finite_size`` on (default) a second supercell one repeat larger in every direction is
computed, the dilute limit extrapolated as ``E_f(N) = E_inf + c/N``, and the difference
``E_f(N) - E_inf`` enters E_f's budget as the ``finite_size`` source (two samples
value ± σ/√2, the project's one-sigma convention).  For Stillinger-Weber silicon the default
2x2x2 cell (64 sites) gives E_f = 2.836 eV, 3x3x3 2.695 eV, so E_inf ≈ 2.636 eV and σ ≈ 0.20 eV
(a 511-atom cell gives 2.665 eV).  Supercells below :data:`WARN_SUPERCELL_ATOMS` atoms are
also named in the result's provenance and in the summary.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.errors import InputError
from ..core.pipeline import stage
from ._atomistic_common import (_check_fmax, atoms_from, common_settings, make_calculator,
                                potential_spec, relax_rows, relax_structure, structure_spec)
from .base import LadderSpec, Setting

if TYPE_CHECKING:  # the handoff types the stages take and give
    from ..handoffs import MigrationBarrier, SurfaceEnergy, VacancyFormationEnergy

#: the sources of E_f's budget and the handoff each measures
SOURCE_HANDOFFS: dict[str, str] = {
    "finite_size": "periodic supercell -> dilute vacancy (1/N extrapolation over two supercells)",
}

#: perfect-supercell atom counts below which a vacancy cell is refused / flagged
MIN_SUPERCELL_ATOMS = 32
WARN_SUPERCELL_ATOMS = 128


def _check_supercell(field: str, value: tuple) -> tuple:
    if len(value) != 3 or any(n < 1 or n > 20 for n in value):
        raise InputError(field, ",".join(str(n) for n in value),
                         "three repeats in [1, 20] such as '3,3,3'")
    return value


def parse_miller(field: str, text: str) -> list[tuple[int, int, int]]:
    """``"1,1,1;1,0,0"`` -> ``[(1, 1, 1), (1, 0, 0)]`` (an empty string -> no surfaces)."""
    out = []
    for part in text.replace(" ", "").split(";"):
        if not part:
            continue
        try:
            hkl = tuple(int(v) for v in part.strip("()[]").split(","))
        except ValueError:
            hkl = ()
        if len(hkl) != 3 or hkl == (0, 0, 0):
            raise InputError(field, text, "Miller indices 'h,k,l' separated by ';' such as "
                             "'1,1,1;1,0,0' (integers, not all zero)")
        if hkl not in out:
            out.append(hkl)
    return out


def _check_miller(field: str, value: str) -> str:
    parse_miller(field, value)
    return value.strip()


def _check_images(field: str, value: int) -> int:
    if not 3 <= value <= 25:
        raise InputError(field, value, "a number of interior NEB images in [3, 25]")
    return value


SETTINGS = common_settings() + (
    Setting("supercell", (2, 2, 2), "repeats of the relaxed cell for the defect cells", tuple,
            _check_supercell),
    Setting("miller", "1,1,1;1,0,0", "surfaces: Miller indices h,k,l separated by ';'", str,
            _check_miller),
    Setting("n_images", 5, "interior images of the climbing-image NEB", int, _check_images),
    Setting("fmax", 0.01, "force tolerance (eV/Å) of defect relaxations and the NEB", float,
            _check_fmax),
    Setting("finite_size", True, "estimate E_f's finite-size error from a supercell one repeat "
            "larger (1/N extrapolation; the finite_size source of its budget)", bool),
)


def check_settings(settings: dict) -> None:
    """The vacancy supercell holds at least MIN_SUPERCELL_ATOMS sites (also used by the
    vacancy-diffusion ladder, whose defect stages are these)."""
    struct = structure_spec("structure", settings["structure"])
    n = len(struct)
    for k in settings["supercell"]:
        n *= int(k)
    if n < MIN_SUPERCELL_ATOMS:
        sc = ",".join(str(k) for k in settings["supercell"])
        raise InputError("supercell", sc, f"a supercell of at least {MIN_SUPERCELL_ATOMS} sites "
                         f"for a vacancy (this one has {n}: the vacancy would interact with its "
                         "own periodic images more than with the crystal)",
                         hint="e.g. 2,2,2 or larger")


def _bulk(relaxed: dict):
    return atoms_from(relaxed["structure"])


def _label(relaxed: dict) -> str:
    s = relaxed["structure"].info
    return f"{s['formula']} ({s['source']})"


@stage("atomistic.vacancy_formation", version="1")
def vacancy_formation(relaxed: dict, potential: dict, supercell: tuple, relax: bool,
                      fmax: float) -> VacancyFormationEnergy:
    """Vacancy formation energy (eV) in ``supercell`` -> ``VacancyFormationEnergy``.

    Parameters
    ----------
    relaxed : dict
        Output of the relaxation stage.
    potential : dict
        Potential spec.
    supercell : tuple of 3 int
        Repeats of the relaxed cell.
    relax : bool
        Relax the atoms around the vacancy (fixed cell).
    fmax : float
        Force tolerance (eV/Å).
    """
    from ..atomistic import vacancy_formation_energy

    return vacancy_formation_energy(_bulk(relaxed), make_calculator(potential),
                                    supercell=tuple(supercell), relax=relax, fmax=fmax,
                                    structure=_label(relaxed))


@stage("atomistic.vacancy_migration", version="3")
def vacancy_migration(relaxed: dict, potential: dict, supercell: tuple, n_images: int,
                      fmax: float) -> MigrationBarrier:
    """Climbing-image NEB barrier (eV) of a nearest-neighbour vacancy hop -> ``MigrationBarrier``.

    Parameters
    ----------
    relaxed : dict
        Output of the relaxation stage.
    potential : dict
        Potential spec.
    supercell : tuple of 3 int
        Repeats of the relaxed cell.
    n_images : int
        Interior images of the band.
    fmax : float
        NEB force tolerance (eV/Å).

    On a Dask cluster the interior images of every band iteration are evaluated as tasks of the
    cluster (:func:`~scaleladder.core.pipeline.parallel_map`); elsewhere one after the other
    with one shared calculator.  Same band to round-off.
    """
    from ..atomistic import migration_barrier, vacancy_migration_path
    from ..core.pipeline import on_cluster, parallel_map

    # end states relaxed into their basin (basin search + Hessian check), not the unrelaxed
    # symmetric vacancy: for Stillinger-Weber silicon that one is a trap (module notes of
    # scaleladder.atomistic.defects) and the band would fall below both ends
    calc = make_calculator(potential)
    initial, final = vacancy_migration_path(_bulk(relaxed), supercell=tuple(supercell),
                                            calc=calc, fmax=min(fmax, 1e-3))
    return migration_barrier(initial, final, calc, n_images=n_images, fmax=fmax,
                             image_map=parallel_map if on_cluster() else None)


@stage("atomistic.surface_energy_hkl", version="1")
def surface(relaxed: dict, potential: dict, miller: tuple, fmax: float) -> SurfaceEnergy:
    """Relaxed surface energy (J/m²) of one orientation -> ``SurfaceEnergy``.

    Parameters
    ----------
    relaxed : dict
        Output of the relaxation stage (a cubic conventional cell: Miller indices refer to it).
    potential : dict
        Potential spec.
    miller : tuple of 3 int
        Surface orientation.
    fmax : float
        Force tolerance (eV/Å) of the slab relaxation.
    """
    from ..atomistic import surface_energy

    return surface_energy(_bulk(relaxed), make_calculator(potential), miller=tuple(miller),
                          relax=True, fmax=fmax, structure=_label(relaxed))


@stage("atomistic.vacancy_finite_size", version="1")
def vacancy_finite_size(vacancy: VacancyFormationEnergy, relaxed: dict, potential: dict,
                        supercell: tuple, relax: bool, fmax: float) -> VacancyFormationEnergy:
    """E_f of ``vacancy`` with its finite-size error as the ``finite_size`` source.

    A second supercell, one repeat larger in every direction, gives E_f(N2); with
    ``E_f(N) = E_inf + c/N`` the dilute limit is ``E_inf = (N2 E2 - N1 E1) / (N2 - N1)`` and the
    finite-size error of the reported ``E1`` is ``σ = |E1 - E_inf|``, entered as the two samples
    ``E1 ± σ/√2``.  The provenance records both supercells, E2 and E_inf.
    """
    from ..atomistic import vacancy_formation_energy
    from ..handoffs import VacancyFormationEnergy
    from ..uq import Estimate, one_sigma_samples

    bigger = tuple(int(n) + 1 for n in supercell)
    second = vacancy_formation_energy(_bulk(relaxed), make_calculator(potential), supercell=bigger,
                                      relax=relax, fmax=fmax, structure=_label(relaxed))
    n1, n2 = int(vacancy.supercell_atoms), int(second.supercell_atoms)
    e1, e2 = float(vacancy.value.value), float(second.value.value)
    e_inf = (n2 * e2 - n1 * e1) / (n2 - n1)
    sigma = abs(e1 - e_inf)
    value = Estimate(e1, "eV", sources={
        **{k: v for k, v in vacancy.value.sources.items()},
        "finite_size": one_sigma_samples(e1, sigma)})
    prov = dict(vacancy.provenance)
    prov.update({"finite_size": {"supercells": [list(supercell), list(bigger)],
                                 "atoms": [n1, n2], "E_f_eV": [e1, e2], "E_inf_eV": e_inf,
                                 "sigma_eV": sigma, "model": "E_f(N) = E_inf + c/N"}})
    if n1 < WARN_SUPERCELL_ATOMS:
        prov["finite_size_warning"] = (f"small supercell ({n1} sites): E_f is {e1 - e_inf:+.3f} eV "
                                       f"from the 1/N dilute limit {e_inf:.3f} eV")
    return VacancyFormationEnergy(value=value, relaxed=vacancy.relaxed, structure=vacancy.structure,
                                  supercell_atoms=n1, provenance=prov,
                                  domain_warnings=tuple(vacancy.domain_warnings)
                                  + tuple(w for w in second.domain_warnings
                                          if w not in vacancy.domain_warnings))


def surface_target(hkl) -> str:
    """Target name of a Miller index, e.g. ``surface_111``, ``surface_1-10``."""
    return "surface_" + "".join(str(i) for i in hkl)


def build(settings: dict) -> dict:
    """Stage DAG for validated ``settings``: relaxed, vacancy, migration, surface_<hkl>..."""
    struct = structure_spec("structure", settings["structure"])
    pot = potential_spec(settings, sorted(set(struct.symbols)))
    sc = list(settings["supercell"])
    relaxed = relax_structure.bind(structure=struct, potential=pot,
                                   relax_ions=settings["relax_ions"]).with_label("relax lattice")
    vacancy = vacancy_formation.bind(relaxed=relaxed, potential=pot, supercell=sc,
                                     relax=settings["relax_ions"], fmax=settings["fmax"]
                                     ).with_label("vacancy formation")
    if settings.get("finite_size", True):
        vacancy = vacancy_finite_size.bind(vacancy=vacancy, relaxed=relaxed, potential=pot,
                                           supercell=sc, relax=settings["relax_ions"],
                                           fmax=settings["fmax"]).with_label(
            "vacancy formation, finite-size error")
    out = {"relaxed": relaxed,
           "vacancy": vacancy,
           "migration": vacancy_migration.bind(relaxed=relaxed, potential=pot, supercell=sc,
                                               n_images=settings["n_images"], fmax=settings["fmax"]
                                               ).with_label("vacancy migration (CI-NEB)")}
    for hkl in parse_miller("miller", settings["miller"]):
        out[surface_target(hkl)] = surface.bind(relaxed=relaxed, potential=pot, miller=list(hkl),
                                                fmax=settings["fmax"]).with_label(
            f"surface energy {hkl}")
    return out


def summarize(settings: dict, results: dict) -> list:
    """Sections: structure and potential; E_f, E_m forward/reverse (eV); γ per Miller index (J/m²)."""
    rows = relax_rows(results["relaxed"])
    rows.append(("potential", settings["potential"], "", settings["potential_file"]
                 or settings["potential_params"] or "built-in parameters"))
    sections = [("Structure and potential", rows)]
    vac, mig = results["vacancy"], results["migration"]
    sc = "x".join(str(n) for n in settings["supercell"])
    rows = [("E_f vacancy", f"{float(vac.value.value):.4f}", "eV",
             f"{sc} supercell, {vac.supercell_atoms} sites, "
             + ("relaxed" if vac.relaxed else "unrelaxed"))]
    fs = vac.provenance.get("finite_size")
    if fs:
        rows += [("E_f finite-size σ", f"{fs['sigma_eV']:.4f}", "eV",
                  f"vs {fs['atoms'][1]}-site cell ({fs['E_f_eV'][1]:.4f} eV), 1/N model"),
                 ("E_f dilute limit", f"{fs['E_inf_eV']:.4f}", "eV", "1/N extrapolation")]
    if vac.provenance.get("finite_size_warning"):
        rows.append(("warning", "small supercell", "", vac.provenance["finite_size_warning"]))
    rows += [
            ("E_m forward", f"{float(mig.value.value):.4f}", "eV", mig.method),
            ("E_m reverse", f"{float(mig.reverse.value):.4f}", "eV", "nearest-neighbour hop")]
    sections.append(("Point defects", rows))
    rows = []
    for hkl in parse_miller("miller", settings["miller"]):
        g = results[surface_target(hkl)]
        rows.append((f"γ({''.join(str(i) for i in hkl)})", f"{float(g.value.value):.4f}", "J/m²",
                     "relaxed" if g.relaxed else "unrelaxed"))
    if rows:
        sections.append(("Surface energies", rows))
    return sections


LADDER = LadderSpec(
    name="defects",
    description="vacancy formation/migration and surface energies of any structure and potential",
    settings=SETTINGS,
    build=build,
    summarize=summarize,
    check=check_settings,
    source_handoffs=SOURCE_HANDOFFS,
)

__all__ = ["LADDER", "build", "summarize", "vacancy_formation", "vacancy_migration", "surface",
           "vacancy_finite_size", "check_settings", "MIN_SUPERCELL_ATOMS", "WARN_SUPERCELL_ATOMS",
           "parse_miller", "surface_target"]
