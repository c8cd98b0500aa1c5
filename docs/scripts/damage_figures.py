"""Draw the figures of docs/damage.md (2D softening and strain-gradient plasticity).

    python docs/scripts/damage_figures.py        # ~3 minutes on 2 cores

Writes docs/img/damage_2d.png and docs/img/size_effect.png and prints the numbers quoted there.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.tri as mtri  # noqa: E402
import numpy as np  # noqa: E402

from scaleladder.continuum import isotropic_stiffness, plane_strain_stiffness  # noqa: E402
from scaleladder.continuum.damage import local_damage_strip, peak_stress  # noqa: E402
from scaleladder.continuum.gradient_plasticity import (fit_material_length,  # noqa: E402
                                                       plot_size_effect, size_effect_curves)
from scaleladder.continuum.phase_field import (PhaseFieldFracture, band_mesh,  # noqa: E402
                                               effective_toughness)

IMG = Path(__file__).resolve().parents[1] / "img"


def damage_2d():
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    # the pathology: local damage, three meshes
    loc = [local_damage_strip(nx, steps=40) for nx in (8, 16, 32)]
    hs = np.array([r.h for r in loc])
    axes[0].loglog(hs / hs[0], [r.dissipated / loc[0].dissipated for r in loc], "o-",
                   label="local damage: band = 1 element")
    print("local 2D: h", hs, "dissipated", [round(r.dissipated, 4) for r in loc],
          "ellipticity", [(r.ellipticity["first_step"], round(r.ellipticity["angle_deg"], 1))
                          for r in loc])
    # the cure: AT1 phase field, edge-notched strip broken through, three meshes
    E, nu, Gc = 210e9, 0.3, 2.7e3
    C = plane_strain_stiffness(isotropic_stiffness(E, nu))
    W, H, ell = 1e-3, 0.5e-3, 1e-4
    E_ps = E / (1 - nu ** 2)
    pfs, ratios, last = [], [], None
    for r in (2, 4, 8):
        m = band_mesh(W, H, ell / r, band_half_height=4 * ell)
        pf = PhaseFieldFracture(
            m, C, Gc, ell, model="AT1", split="voldev",
            fixed={"y": lambda x, y: y < -H + 1e-12,
                   "x": lambda x, y: (y < -H + 1e-12) & (np.abs(x) < 1e-12)},
            loaded={"y": (lambda x, y: y > H - 1e-12, 1.0)},
            initial_crack=lambda x, y: (np.abs(y) < 1e-12) & (x < -0.8 * W + 1e-12), tol=1e-3,
            max_iter=5000)
        res = pf.run(2 * H * peak_stress("AT1", E_ps, Gc, ell) / E_ps * 1.2, 12,
                     stop_force_fraction=0.02)
        pfs.append(res.dissipated / (Gc * 2 * W))
        ratios.append(res.dissipated / (effective_toughness(Gc, ell / r, ell, "AT1") * 2 * W))
        last = (m, pf.d.copy())
    print("phase field 2D: h/ell", [0.5, 0.25, 0.125], "dissipated / (Gc 2W)", np.round(pfs, 4),
          "/ (Gc_eff 2W)", np.round(ratios, 4))
    axes[0].loglog([1, 0.5, 0.25], np.array(pfs) / pfs[0], "s-",
                   label="AT1 phase field (h = ℓ/2, ℓ/4, ℓ/8)")
    axes[0].set_xlabel("element size / coarsest")
    axes[0].set_ylabel("dissipated energy / coarsest mesh's")
    axes[0].legend(fontsize=7)
    axes[0].set_title("pathology and cure: dissipation against mesh", fontsize=9)
    m, d = last
    tri = mtri.Triangulation(m.p[0] * 1e3, m.p[1] * 1e3, m.t.T)
    pc = axes[1].tripcolor(tri, d, shading="gouraud", cmap="inferno_r", vmin=0, vmax=1)
    axes[1].set_aspect("equal")
    axes[1].set_title("AT1 strip broken through (h = ℓ/8)", fontsize=9)
    axes[1].set_xlabel("x (mm)")
    fig.colorbar(pc, ax=axes[1], shrink=0.7, label="d")
    # band profile across the crack, against the optimal AT1 profile
    from scaleladder.continuum.damage import optimal_profile

    on = np.abs(m.p[0] - 0.5e-3) < 1e-9
    o = np.argsort(m.p[1, on])
    axes[2].plot(m.p[1, on][o] / ell, d[on][o], "o", ms=3, label="h = ℓ/8, x = 0.5 mm")
    y = np.linspace(-3, 3, 400)
    axes[2].plot(y, optimal_profile("AT1", y, 1.0), "k--", label="AT1 optimal profile")
    axes[2].set_xlim(-3, 3)
    axes[2].set_xlabel("y / ℓ")
    axes[2].set_ylabel("d")
    axes[2].legend(fontsize=7)
    axes[2].set_title("band profile", fontsize=9)
    fig.tight_layout()
    fig.savefig(IMG / "damage_2d.png", dpi=110)


def size_effect():
    mat = dict(shear_modulus=42e9, yield_stress=50e6, hardening=600e6)
    ell = fit_material_length(3.0, thin_radius=6e-6, thick_radius=85e-6, twist=0.1, **mat)
    print(f"fitted ℓ = {ell * 1e6:.2f} µm")
    radii = (6e-6, 7.5e-6, 10e-6, 15e-6, 85e-6)
    curves = size_effect_curves(radii, ell=ell, **mat)
    classical = size_effect_curves((10e-6,), ell=0.0, **mat)[0]
    for c in curves:
        print(f"2a = {2e6 * c.radius:.0f} µm: T/a³ at κa = 0.12 = {c.normalised_torque[-1] / 1e6:.1f} MPa")
    print(f"classical: {classical.normalised_torque[-1] / 1e6:.1f} MPa")
    fig, ax = plt.subplots(figsize=(5.5, 4))
    plot_size_effect(curves, ax, classical=classical)
    ax.set_title(f"wire torsion, Fleck–Hutchinson gradient plasticity, ℓ = {ell * 1e6:.1f} µm",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(IMG / "size_effect.png", dpi=110)


if __name__ == "__main__":
    size_effect()
    damage_2d()
