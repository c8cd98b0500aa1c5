"""Ladder ``silicon-topology``: crystalline against amorphous silicon by persistent homology,
beside the ring statistics.

Stages: amorphous silicon by melt-quench MD with Stillinger-Weber (Langevin NVT at the
crystal's density: melt, then a stepwise quench), the periodic alpha persistence of the
crystal and of the glass (on the torus: the cell's own classes are the infinite bars), and the
shortest-path ring statistics of both (King's criterion: for every atom and every pair of its
bonded neighbours, the shortest closed path through the three).  The comparison: the H1 bars
are the rings seen by the alpha filtration — born when the ring's bonds exist, dead when the
ring is spanned by triangles, at about the circumradius of the ring — so the crystal's H1
deaths sit at one value (all rings are puckered 6-rings) and the glass's spread over the
5-, 6- and 7-ring values.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from ..core import validate as V
from ..core.pipeline import stage
from .base import LadderSpec, Setting

SOURCE_HANDOFFS: dict[str, str] = {}
BOND_CUTOFF = 2.85      # Å: the first minimum of g(r) of SW silicon (crystal and glass)


@stage("atomistic.melt_quench", version="1")
def melt_quench(repeat: int, melt_K: float, melt_ps: float, quench_ps: float, seed: int) -> dict:
    """Diamond silicon (``repeat``³ cubic cells) melted at ``melt_K`` for ``melt_ps`` and
    quenched to 300 K in steps of 500 K, ``quench_ps`` in all (SW, 1 fs steps, Langevin 0.02/fs,
    the crystal's volume).  Returns the crystal and the glass (positions Å, cell Å)."""
    from ase.build import bulk

    from ..atomistic import StillingerWeber
    from ..atomistic.md import run_md
    from ..handoffs import Structure

    xtal = bulk("Si", "diamond", a=5.431, cubic=True).repeat(repeat)
    calc = StillingerWeber()
    temps = list(np.arange(melt_K - 500.0, 300.0, -500.0)) + [300.0]
    per = max(int(round(1000.0 * quench_ps / len(temps))), 1)
    atoms = xtal.copy()
    res = run_md(atoms, calc, steps=int(round(1000.0 * melt_ps)), ensemble="nvt",
                 temperature_K=melt_K, timestep_fs=1.0, friction=0.02, seed=seed)
    atoms = res.atoms
    for k, T in enumerate(temps):
        atoms.calc = None
        res = run_md(atoms, calc, steps=per, ensemble="nvt", temperature_K=float(T),
                     timestep_fs=1.0, friction=0.02, seed=seed + k + 1)
        atoms = res.atoms
    from ..atomistic.properties import relax_positions

    atoms.calc = calc
    relax_positions(atoms, fmax=0.01, steps=3000, what="quenched silicon")
    return {"crystal": Structure(xtal.numbers, xtal.positions, xtal.cell.array, (True,) * 3),
            "glass": Structure(atoms.numbers, atoms.positions, atoms.cell.array, (True,) * 3),
            "final_T_K": float(res.temperature_K[-1]), "quench_steps": per * len(temps)}


def ring_statistics(positions: np.ndarray, cell: np.ndarray, cutoff: float = BOND_CUTOFF,
                    max_size: int = 10) -> dict:
    """Shortest-path rings (King's criterion) of a periodic bond network: for each atom and
    each pair of its neighbours, every shortest path between the two not through the atom
    closes a smallest ring through the three; distinct rings (as atom sets) are counted by
    size (diamond: 2 six-rings per atom).
    Returns ``{"rings": {size: count}, "per_atom": {size: count / n}, "coordination": mean}``."""
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    at = Atoms("Si" * len(positions), positions=positions, cell=cell, pbc=True)
    i, j = neighbor_list("ij", at, cutoff)
    n = len(at)
    nb = [[] for _ in range(n)]
    for a, b in zip(i, j):
        nb[a].append(int(b))
    rings = set()
    for a in range(n):
        for x in range(len(nb[a])):
            for y in range(x + 1, len(nb[a])):
                b, c = nb[a][x], nb[a][y]
                for path in _shortest_paths(nb, b, c, a, max_size - 1):
                    rings.add(frozenset([a, *path]))
    counts: dict = {}
    for r in rings:
        counts[len(r)] = counts.get(len(r), 0) + 1
    return {"rings": dict(sorted(counts.items())),
            "per_atom": {k: v / n for k, v in sorted(counts.items())},
            "coordination": float(np.mean([len(v) for v in nb]))}


def _shortest_paths(nb, start, goal, banned, max_len):
    """Every shortest path from ``start`` to ``goal`` avoiding ``banned`` (at most ``max_len``
    atoms): a ring through an angle is not unique (diamond: two 6-rings per angle), and
    keeping only the first path BFS finds would lose rings."""
    dist = {start: 0}
    preds: dict = {start: []}
    q = deque([start])
    while q:
        v = q.popleft()
        if dist[v] >= max_len - 1 or (goal in dist and dist[v] >= dist[goal]):
            continue
        for w in nb[v]:
            if w == banned:
                continue
            if w not in dist:
                dist[w] = dist[v] + 1
                preds[w] = [v]
                q.append(w)
            elif dist[w] == dist[v] + 1:
                preds[w].append(v)
    if goal not in dist:
        return []
    out = []

    def back(v, acc):
        if v == start:
            out.append([start, *acc])
            return
        for p in preds[v]:
            back(p, [v, *acc])
    back(goal, [])
    return out


@stage("topology.silicon_diagrams", version="1")
def silicon_diagrams(structures: dict) -> dict:
    """Periodic alpha persistence and ring statistics of the crystal and the glass."""
    from ..topology import alpha_persistence

    out = {}
    for name in ("crystal", "glass"):
        s = structures[name]
        d = alpha_persistence(s.positions, cell=s.cell, pbc=True)
        rs = ring_statistics(s.positions, s.cell)
        h1 = d.finite(1)
        out[name] = {"diagram": d, "rings": rs["rings"], "rings_per_atom": rs["per_atom"],
                     "coordination": rs["coordination"],
                     "h1_death_mean": float(h1[:, 1].mean()) if len(h1) else float("nan"),
                     "h1_death_std": float(h1[:, 1].std()) if len(h1) else float("nan"),
                     "betti_end": d.betti()}
    out["bottleneck_H1"] = out["crystal"]["diagram"].distance(out["glass"]["diagram"], 1)
    out["wasserstein_H1"] = out["crystal"]["diagram"].distance(out["glass"]["diagram"], 1,
                                                               kind="wasserstein")
    return out


def build(settings: dict) -> dict:
    mq = melt_quench.bind(repeat=settings["cell.repeat"], melt_K=settings["md.melt_K"],
                          melt_ps=settings["md.melt_ps"], quench_ps=settings["md.quench_ps"],
                          seed=settings["seed"]).with_label("SW melt-quench")
    return {"structures": mq,
            "topology": silicon_diagrams.bind(structures=mq).with_label("persistence, rings")}


def summarize(settings: dict, results: dict) -> list:
    t = results["topology"]
    rows = []
    for name in ("crystal", "glass"):
        r = t[name]
        ring = ", ".join(f"{k}: {v:.2f}" for k, v in r["rings_per_atom"].items())
        rows.append((name, f"H1 deaths {r['h1_death_mean']:.3f} ± {r['h1_death_std']:.3f}",
                     "Å", f"rings per atom {ring}; coordination {r['coordination']:.2f}; "
                     f"Betti at the end {r['betti_end']}"))
    rows.append(("distance H1", f"{t['bottleneck_H1']:.3f} / {t['wasserstein_H1']:.3f}", "Å",
                 "bottleneck / Wasserstein-1, crystal vs glass"))
    return [("Crystalline vs amorphous silicon (SW)", rows)]


def plot_diagrams(results, axes):
    from ..topology import plot_diagram

    t = results["topology"]
    for ax, name in zip(axes, ("crystal", "glass")):
        plot_diagram(t[name]["diagram"], ax=ax)
        ax.set_title(f"{name} silicon (periodic alpha)")


SETTINGS = (
    Setting("cell.repeat", 3, "cubic diamond cells per edge (8 atoms each)", int,
            lambda n, v: V.positive_int(n, v, 2)),
    Setting("md.melt_K", 3500.0, "melt temperature (K; SW melts near 1690 K)", float,
            lambda n, v: V.in_range(n, v, 2000.0, 6000.0)),
    Setting("md.melt_ps", 10.0, "time in the melt (ps)", float,
            lambda n, v: V.in_range(n, v, 0.5, 1000.0)),
    Setting("md.quench_ps", 21.0, "quench to 300 K in 500 K steps (ps in all)", float,
            lambda n, v: V.in_range(n, v, 1.0, 10000.0)),
    Setting("seed", 0, "seed of the MD", int, V.seed),
)

LADDER = LadderSpec(
    name="silicon-topology",
    description="crystalline vs amorphous silicon: periodic persistent homology and rings",
    settings=SETTINGS, build=build, summarize=summarize, source_handoffs=SOURCE_HANDOFFS,
    plots=(("diagrams", plot_diagrams, (9, 4.2), 2),),
)

__all__ = ["LADDER", "build", "summarize", "ring_statistics", "melt_quench",
           "silicon_diagrams"]
