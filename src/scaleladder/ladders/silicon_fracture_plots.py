"""The flagship's report plots (declared by the ladder; ``scaleladder report`` draws them).

* the DFT E-V series of both functionals with their Birch-Murnaghan fits;
* the fit parity of the Stillinger-Weber potential against DFT (energies, forces, stresses), training
  and held-out configurations separately;
* the σ_yy field of the finite-element plate around the crack;
* the mesh convergence of the energy release rate;
* the error budget bars of σ_c and of the quantities handed to the continuum.
"""
from __future__ import annotations

import numpy as np

from .base import draw_budget_bars, pyplot


def plot_equation_of_state(results: dict, ax=None):
    """E(V) per atom of each functional's E-V series with its Birch-Murnaghan fit."""
    from ase.eos import EquationOfState as AseEOS

    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    for key, marker in (("dataset", "o"), ("dataset_alt", "s")):
        ds = results[key]
        ev = ds.select("ev")
        v = np.asarray(ev.volumes_per_atom)
        e = np.array([c.energy / len(c.numbers) for c in ev.configurations])
        e_ref = e.min()
        eos = AseEOS(v, e, eos="birchmurnaghan")
        eos.fit()
        vv = np.linspace(v.min(), v.max(), 200)
        label = ds.method.get("xc", key)
        line = ax.plot(v, 1e3 * (e - e_ref), marker, label=f"{label} DFT")[0]
        ax.plot(vv, 1e3 * (eos.func(vv, *eos.eos_parameters) - e_ref), "-", color=line.get_color(),
                label=f"{label} Birch-Murnaghan")
    ax.set_xlabel("volume per atom (Å³)")
    ax.set_ylabel("E − E_min (meV/atom)")
    ax.set_title("DFT equation of state, diamond Si")
    ax.legend(fontsize=8)
    return ax


def plot_fit_parity(results: dict, axes=None):
    """Stillinger-Weber vs DFT: cohesive energy per atom, force and stress components."""
    from ..atomistic import StillingerWeber
    from ..core.units import EV_PER_A3_IN_GPA

    plt = pyplot()
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(13, 4))
    ds, fp = results["dataset"], results["potential"]
    calc = StillingerWeber.from_fitted(fp)
    e_atom = ds.method.get("atom_energy_eV", 0.0)
    data = {"train": ([], [], [], [], [], []), "heldout": ([], [], [], [], [], [])}
    from .silicon_fracture import HELDOUT_LABELS

    for i, conf in enumerate(ds.configurations):
        split = "heldout" if conf.label in HELDOUT_LABELS else "train"
        atoms = ds.to_atoms(i)
        atoms.calc = calc
        n = len(atoms)
        d = data[split]
        d[0].append(conf.energy / n - e_atom)
        d[1].append(atoms.get_potential_energy() / n)
        if conf.forces is not None:
            d[2].extend(np.ravel(conf.forces))
            d[3].extend(np.ravel(atoms.get_forces()))
        if conf.stress is not None:
            d[4].extend(np.ravel(conf.stress) * EV_PER_A3_IN_GPA)
            d[5].extend(np.ravel(atoms.get_stress()) * EV_PER_A3_IN_GPA)
    titles = ("cohesive energy (eV/atom)", "force components (eV/Å)", "stress components (GPa)")
    for k, ax in enumerate(axes):
        for split, style, color in (("train", "o", "C0"), ("heldout", "x", "C1")):
            x, y = data[split][2 * k], data[split][2 * k + 1]
            if len(x):
                ax.plot(x, y, style, color=color, ms=4, alpha=0.7, label=split)
        lims = ax.get_xlim()
        ax.plot(lims, lims, "k-", lw=0.8)
        ax.set_xlabel("DFT")
        ax.set_ylabel("Stillinger-Weber")
        ax.set_title(titles[k], fontsize=10)
        ax.legend(fontsize=8)
    return axes


def plot_stress_field(results: dict, ax=None):
    """σ_yy of the FE plate at unit remote stress, near the crack (log colour scale)."""
    from matplotlib.colors import LogNorm

    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    fr = results["fracture"]
    f = fr["field"]
    a = fr["geometry"]["a_m"]
    xy = np.asarray(f["nodes"]) / a
    syy = np.asarray(f["syy"])
    tri = np.asarray(f["triangles"])
    val = np.clip(np.abs(syy), 1e-2, None)
    tpc = ax.tripcolor(xy[:, 0], xy[:, 1], tri, val, shading="gouraud", norm=LogNorm(vmin=0.3, vmax=30))
    plt.colorbar(tpc, ax=ax, label="|σ_yy| / σ_remote")
    ax.plot([-1, 1], [0, 0], "w-", lw=2)
    ax.set_xlim(-2.0, 2.0)
    ax.set_ylim(-1.0, 1.0)
    ax.set_aspect("equal")
    ax.set_xlabel("x / a  (along [11-2])")
    ax.set_ylabel("y / a  (along [111])")
    ax.set_title("FE stress field around the (111) crack")
    return ax


def plot_mesh_convergence(results: dict, ax=None):
    """Energy release rate per unit stress² against refinement level, with its extrapolation."""
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    m = results["fracture"]["mesh"]
    g = np.asarray(m["G"])
    err = np.abs(g - m["extrapolated"]) / abs(m["extrapolated"])
    ax.semilogy(m["levels"], np.clip(err, 1e-12, None), "o-")
    ax.set_xlabel("refinement level (h halves per level)")
    ax.set_ylabel("|G − G_extrapolated| / G")
    ax.set_title(f"mesh convergence, observed rate {m['observed_rate']:.2f}")
    return ax


def plot_budget(results: dict, ax=None):
    """Variance shares of each source for σ_c and for C11, C12, C44 and γ."""
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    comb = results["combined"]
    C = comb["elastic"].voigt
    qois = {"σ_c": results["fracture"]["sigma_c"], "C11": C[0, 0], "C12": C[0, 1], "C44": C[3, 3],
            "γ(111)": comb["surface"].value}
    return draw_budget_bars(ax, qois)


#: the flagship's report plots: (name, function(results, ax_or_axes), figure size, number of axes)
PLOTS = (
    ("equation_of_state", plot_equation_of_state, (5.5, 4), 1),
    ("fit_parity", plot_fit_parity, (13, 4), 3),
    ("stress_field", plot_stress_field, (7, 4), 1),
    ("mesh_convergence", plot_mesh_convergence, (5.5, 4), 1),
    ("budget", plot_budget, (7.5, 3.5), 1),
)
