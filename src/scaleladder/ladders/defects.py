"""Ladder ``defects``: vacancy formation, vacancy migration and surface energies.

For any crystal (a file's content or a builtin spec) and any supported potential: the structure
is relaxed to zero pressure when its cell is cubic (kept as given otherwise); then, in a periodic
``supercell``, the vacancy formation energy (``VacancyFormationEnergy``), the climbing-image NEB
barrier of a nearest-neighbour vacancy hop (``MigrationBarrier``, forward and reverse) and the
surface energy of each Miller index (``SurfaceEnergy``, one stage each).  No quantity carries
several uncertainty sources, so ``scaleladder budget`` has nothing to split and says so.
"""
from __future__ import annotations

from typing import Any

from ..core.errors import InputError
from ..core.pipeline import stage
from ._atomistic_common import (_check_fmax, atoms_from, common_settings, make_calculator,
                                potential_spec, relax_rows, relax_structure, structure_spec)
from .base import LadderSpec, Setting

#: no multi-source error budget: ``scaleladder budget`` reports that there is none
SOURCE_HANDOFFS: dict[str, str] = {}


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
)


def _bulk(relaxed: dict):
    return atoms_from(relaxed["structure"])


def _label(relaxed: dict) -> str:
    s = relaxed["structure"]
    return f"{s['formula']} ({s['source']})"


@stage("atomistic.vacancy_formation", version="1")
def vacancy_formation(relaxed: dict, potential: dict, supercell: tuple, relax: bool,
                      fmax: float) -> Any:
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
                      fmax: float) -> Any:
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
    """
    from ..atomistic import migration_barrier, vacancy_migration_path

    # end states relaxed into their basin (basin search + Hessian check), not the unrelaxed
    # symmetric vacancy: for Stillinger-Weber silicon that one is a trap (module notes of
    # scaleladder.atomistic.defects) and the band would fall below both ends
    calc = make_calculator(potential)
    initial, final = vacancy_migration_path(_bulk(relaxed), supercell=tuple(supercell),
                                            calc=calc, fmax=min(fmax, 1e-3))
    return migration_barrier(initial, final, calc, n_images=n_images, fmax=fmax)


@stage("atomistic.surface_energy_hkl", version="1")
def surface(relaxed: dict, potential: dict, miller: tuple, fmax: float) -> Any:
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


def surface_target(hkl) -> str:
    """Target name of a Miller index, e.g. ``surface_111``, ``surface_1-10``."""
    return "surface_" + "".join(str(i) for i in hkl)


def build(settings: dict) -> dict:
    """Stage DAG for validated ``settings``: relaxed, vacancy, migration, surface_<hkl>..."""
    struct = structure_spec("structure", settings["structure"])
    pot = potential_spec(settings, sorted({str(x) for x in atoms_from(struct).get_chemical_symbols()}))
    sc = list(settings["supercell"])
    relaxed = relax_structure.bind(structure=struct, potential=pot,
                                   relax_ions=settings["relax_ions"]).with_label("relax lattice")
    out = {"relaxed": relaxed,
           "vacancy": vacancy_formation.bind(relaxed=relaxed, potential=pot, supercell=sc,
                                             relax=settings["relax_ions"], fmax=settings["fmax"]
                                             ).with_label("vacancy formation"),
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
             f"{sc} supercell, {vac.supercell_atoms} atoms, "
             + ("relaxed" if vac.relaxed else "unrelaxed")),
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
)

__all__ = ["LADDER", "build", "summarize", "vacancy_formation", "vacancy_migration", "surface",
           "parse_miller", "surface_target"]
