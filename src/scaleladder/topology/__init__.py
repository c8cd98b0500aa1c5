"""Persistent homology of materials: atomistic structures (alpha filtrations, periodic done on
the torus) and fields (cubical complexes, periodic or not), as
:class:`~scaleladder.handoffs.PersistenceDiagram` handoffs.  Built on GUDHI (the ``topology``
extra).

**The periodic alpha complex.** GUDHI's periodic alpha complex exists only in C++ and only for
cubic cells; a minimum-image Rips complex is an approximation that misses the cell's own
cycles.  Here the complex is built on the torus itself: the Delaunay/alpha complex of the
points and their 26 neighbouring images (any triclinic cell) is computed by GUDHI, and each
simplex of the torus is taken once, from the lift whose anchor (its vertex of smallest atom
index) lies in the central image; its filtration value is that lift's (translation invariant).
Only the images within a skin of the cell are triangulated, the skin grown until every empty
ball of a simplex anchored in the cell lies inside it.
The quotient is a simplicial complex only when no simplex joins an atom to its own image and no
two simplices share a vertex set — in a cell too small for that, the cell is repeated (the
``supercell`` of the diagram) until it is.  The cell's own classes then appear as infinite bars:
Betti numbers (1, 3, 3, 1) of the 3-torus at the end of the filtration.  Partial periodicity
(a slab periodic in-plane) takes images along the periodic axes only: (1, 2, 1) of the 2-torus.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..core.errors import InputError
from ..handoffs.topology import PersistenceDiagram

__all__ = ["alpha_persistence", "rips_persistence", "cubical_persistence", "landscape",
           "persistence_curve",
           "persistence_image", "plot_diagram", "ALPHA_UNIT"]

ALPHA_UNIT = "Å"


def _gudhi():
    try:
        import gudhi
    except ImportError:  # pragma: no cover - the extra is installed by the test command
        raise InputError("gudhi", None, "the topology extra: pip install 'scaleladder[topology]'")
    return gudhi


def _check_points(positions) -> np.ndarray:
    try:
        x = np.asarray(positions, dtype=float)
    except (TypeError, ValueError):
        raise InputError("positions", type(positions).__name__, "an (n, 3) array (Å)") from None
    if x.ndim != 2 or x.shape[1] not in (2, 3) or x.shape[0] < 1:
        raise InputError("positions", x.shape, "an (n, 2) or (n, 3) array")
    if not np.all(np.isfinite(x)):
        raise InputError("positions", "NaN or inf", "finite coordinates")
    return x


def _check_cell(cell, dim: int) -> np.ndarray:
    c = np.asarray(cell, dtype=float)
    if c.shape != (dim, dim) or not np.all(np.isfinite(c)):
        raise InputError("cell", c.shape, f"a ({dim}, {dim}) matrix of lattice vectors (rows, Å)")
    vol = abs(np.linalg.det(c))
    scale = np.prod(np.linalg.norm(c, axis=1))
    if scale == 0 or vol < 1e-8 * scale:
        raise InputError("cell", c.tolist(), "a non-degenerate cell (its vectors are coplanar "
                         "or one is zero)")
    return c


def _drop_empty(iv: np.ndarray, min_length: float = 0.0) -> np.ndarray:
    """Intervals of zero length (a simplex and its coface entering together: degenerate
    positions) carry no feature; they are dropped (to round-off of the largest finite value,
    or ``min_length``)."""
    if not len(iv):
        return iv
    fin = iv[np.isfinite(iv)]
    tol = max(1e-10 * max(float(np.max(np.abs(fin))) if fin.size else 1.0, 1.0), min_length)
    return iv[~(iv[:, 1] - iv[:, 0] <= tol)]


def _diagram(st, *, filtration: str, unit: str, periodic: bool, supercell, provenance,
             sqrt: bool, min_length: float = 0.0) -> PersistenceDiagram:
    st.compute_persistence(homology_coeff_field=2, persistence_dim_max=True)
    top = st.dimension()
    out = {}
    for d in range(top + 1):
        iv = np.asarray(st.persistence_intervals_in_dimension(d), dtype=float).reshape(-1, 2)
        if sqrt:
            iv = np.sign(iv) * np.sqrt(np.abs(iv))
        iv = _drop_empty(iv, min_length)
        out[d] = iv[np.lexsort((iv[:, 1], iv[:, 0]))] if len(iv) else iv
    return PersistenceDiagram(out, unit, filtration, periodic=periodic, supercell=supercell,
                              provenance=provenance)


def alpha_persistence(positions, *, cell=None, pbc=False, radii=None,
                      max_supercell: int = 4, skin: float | None = None) -> PersistenceDiagram:
    """Persistence of the alpha filtration of atoms (Å: the radius of the empty ball).

    Parameters
    ----------
    positions : (n, 3) array, Å (or an ASE ``Atoms``: its positions, cell and pbc are used)
    cell : (3, 3) array, rows the lattice vectors (Å), needed with ``pbc``
    pbc : bool or 3 bools
        Periodic along each cell vector: all (a crystal: the complex on the 3-torus), some (a
        slab periodic in-plane: the complex on the 2-torus times an interval), or none (a
        cluster).
    radii : (n,) array, optional
        Atomic radii (Å): the weighted alpha complex (power distance, weights ``r^2``).
    max_supercell : int
        The largest repetition tried for a simplicial torus complex.
    skin : float, optional
        The first skin (Å) of images triangulated around the cell (default four mean
        interatomic spacings; it grows until it is enough: the result does not depend on it).
    """
    gudhi = _gudhi()
    if hasattr(positions, "get_positions") and hasattr(positions, "cell"):
        atoms = positions
        positions = atoms.get_positions()
        if cell is None:
            cell = np.asarray(atoms.cell)
        if pbc is False:
            pbc = tuple(bool(p) for p in atoms.pbc)
    x = _check_points(positions)
    dim = x.shape[1]
    try:
        per = ((bool(pbc),) * dim if np.ndim(pbc) == 0 else tuple(bool(p) for p in pbc))
    except TypeError:
        raise InputError("pbc", pbc, f"a bool or {dim} bools") from None
    if len(per) != dim:
        raise InputError("pbc", pbc, f"a bool or {dim} bools")
    w = None
    if radii is not None:
        r = np.asarray(radii, dtype=float).reshape(-1)
        if r.shape != (x.shape[0],) or np.any(~np.isfinite(r)) or np.any(r < 0):
            raise InputError("radii", r.shape, f"{x.shape[0]} finite radii >= 0 (Å)")
        w = r ** 2
    if not any(per):
        ac = gudhi.AlphaComplex(points=x, weights=None if w is None else list(w))
        st = ac.create_simplex_tree()
        return _diagram(st, filtration="alpha", unit=ALPHA_UNIT, periodic=False,
                        supercell=(1,) * x.shape[1], sqrt=True,
                        provenance={"n_points": int(x.shape[0]), "weighted": w is not None,
                                    "method": "gudhi.AlphaComplex"})
    if cell is None:
        raise InputError("cell", None, "the lattice vectors of the periodic cell (pbc=True)")
    c = _check_cell(cell, dim)
    # reduce into the cell (fractional coordinates in [0, 1)), and break exact degeneracies
    # (a crystal's cospherical atoms) by a periodic jitter of 1e-7 of the cell's size: the
    # Delaunay triangulation of a degenerate set is not unique, and different lifts of one
    # torus cell would be triangulated differently (a crystal then showed 34 spurious H2
    # classes); the diagram moves by at most the jitter (stability), and bars shorter than
    # 1e-6 of the cell's size are dropped
    pmask = np.array(per)
    frac = np.linalg.solve(c.T, x.T).T
    frac += 1e-7 * np.random.default_rng(12345).uniform(-1.0, 1.0, size=frac.shape)
    frac[:, pmask] -= np.floor(frac[:, pmask])
    size = abs(np.linalg.det(c)) ** (1.0 / dim)
    for m in range(1, int(max_supercell) + 1):
        reps = tuple(m if p else 1 for p in per)
        st = _torus_complex(gudhi, frac, c, w, reps, skin, per)
        if st is not None:
            return _diagram(st, filtration="alpha", unit=ALPHA_UNIT, periodic=True,
                            supercell=reps, sqrt=True, min_length=1e-6 * size,
                            provenance={"n_points": int(x.shape[0]) * int(np.prod(reps)),
                                        "pbc": list(per),
                                        "weighted": w is not None,
                                        "method": "alpha complex on the torus (GUDHI "
                                                  "AlphaComplex of the 27 images, quotient)"})
    raise InputError("cell", np.round(c, 3).tolist(),
                     f"a cell in which the torus complex is simplicial within a "
                     f"{max_supercell}x supercell (raise max_supercell)")


def _torus_complex(gudhi, frac, cell, w, reps, skin=None, per=None):
    """The alpha complex on the torus of the cell repeated ``reps`` times, or None where the
    quotient is not a simplicial complex.

    Only the images within a skin of the (super)cell are triangulated: a simplex anchored in the
    cell is a Delaunay simplex of the whole periodic set when its empty ball lies inside the
    padded region, which holds when every top simplex anchored in the cell has a circumradius
    of at most half the skin.  The skin starts at four mean interatomic spacings and doubles
    until that holds (at a skin of a full cell width, all 26 images are used)."""
    dim = frac.shape[1]
    reps = np.asarray(reps)
    grid = np.array(list(itertools.product(*[range(k) for k in reps])), dtype=float)
    sfrac = ((frac[None, :, :] + grid[:, None, :]) / reps).reshape(-1, dim)  # supercell frac
    scell = cell * reps[:, None]
    n = sfrac.shape[0]
    sw = None if w is None else np.tile(w, len(grid))
    vol = abs(np.linalg.det(scell))
    widths = np.array([vol / np.linalg.norm(np.cross(*np.delete(scell, i, axis=0)))
                       if dim == 3 else vol / np.linalg.norm(scell[1 - i]) for i in range(dim)])
    per = np.ones(dim, bool) if per is None else np.asarray(per, bool)
    offsets = np.array(list(itertools.product(*[(-1, 0, 1) if p else (0,) for p in per])),
                       dtype=float)
    centre = int(np.flatnonzero(np.all(offsets == 0, axis=1))[0])
    skin = 4.0 * (vol / n) ** (1.0 / dim) if skin is None else float(skin)
    while True:
        full_images = bool(np.all(skin >= widths[per]))
        sf = np.where(per, np.minimum(skin / widths, 1.0), np.inf)   # open axes: all points
        allf = (sfrac[None, :, :] + offsets[:, None, :]).reshape(-1, dim)
        keep = np.all((allf >= -sf) & (allf < 1.0 + sf), axis=1)
        idx = np.flatnonzero(keep)
        atom_of, img_of = idx % n, idx // n
        ac = gudhi.AlphaComplex(points=allf[idx] @ scell,
                                weights=None if sw is None else list(sw[atom_of]))
        full = ac.create_simplex_tree()
        out, seen, ok = gudhi.SimplexTree(), {}, True
        limit = (0.5 * skin) ** 2
        for simplex, f in full.get_simplices():
            atoms = atom_of[simplex]
            imgs = img_of[simplex]
            a = int(np.argmin(atoms))
            if imgs[a] != centre:
                continue
            if len(simplex) == dim + 1 and f > limit and not full_images:
                ok = False                      # an empty ball reaching past the skin
                break
            if len(set(atoms.tolist())) != len(atoms):
                return None                     # an atom joined to its own image
            key = tuple(sorted(atoms.tolist()))
            rel = tuple(sorted((int(atoms[i]), tuple(offsets[imgs[i]] - offsets[imgs[a]]))
                               for i in range(len(atoms))))
            if key in seen and seen[key] != rel:
                return None                     # two simplices on one vertex set
            seen[key] = rel
            out.insert(list(key), f)
        if ok:
            out.make_filtration_non_decreasing()
            return out
        skin *= 2.0


def cubical_persistence(field, *, periodic=False, unit: str = "",
                        superlevel: bool = False) -> PersistenceDiagram:
    """Persistence of the sublevel sets (``superlevel``: of the superlevel sets — the diagram
    is then that of ``-field``, its values negated) of a 2D or 3D field on its grid (GUDHI's
    cubical complex; ``periodic`` — True or one flag per axis — identifies opposite faces: the
    torus classes appear)."""
    gudhi = _gudhi()
    try:
        f = np.asarray(field, dtype=float)
    except (TypeError, ValueError):
        raise InputError("field", type(field).__name__, "a 2D or 3D numeric array") from None
    if f.ndim not in (2, 3) or min(f.shape) < 2:
        raise InputError("field", f.shape, "a 2D or 3D array with at least 2 points per axis")
    if not np.all(np.isfinite(f)):
        raise InputError("field", f"{int(np.sum(~np.isfinite(f)))} NaN/inf values",
                         "finite values")
    g = -f if superlevel else f
    per = [bool(periodic)] * f.ndim if np.ndim(periodic) == 0 else [bool(p) for p in periodic]
    if len(per) != f.ndim:
        raise InputError("periodic", periodic, f"one flag or {f.ndim} flags")
    if any(per):
        cc = gudhi.PeriodicCubicalComplex(top_dimensional_cells=g, periodic_dimensions=per)
    else:
        cc = gudhi.CubicalComplex(top_dimensional_cells=g)
    cc.compute_persistence(homology_coeff_field=2)
    out = {}
    for d in range(f.ndim + 1):
        iv = np.asarray(cc.persistence_intervals_in_dimension(d), dtype=float).reshape(-1, 2)
        out[d] = _drop_empty(iv)   # with superlevel: the intervals of -f (values negated)
    return PersistenceDiagram(out, unit, "cubical", periodic=any(per),
                              supercell=(1,) * f.ndim,
                              provenance={"shape": list(f.shape), "periodic": per,
                                          "superlevel": bool(superlevel)})


def rips_persistence(positions, *, max_edge: float, max_dimension: int = 2, cell=None,
                     pbc=False) -> PersistenceDiagram:
    """Persistence of the Vietoris-Rips filtration (edge length, Å) up to ``max_edge`` (GUDHI's
    RipsComplex; H0..H``max_dimension - 1`` are complete).

    Periodic (``pbc`` with ``cell``): the Rips complex *on the torus*: the cell is repeated until
    every width exceeds three ``max_edge``, where the minimum-image distance is the only edge
    of a pair within ``max_edge`` and no triangle of such edges can wind around the torus — the
    clique complex of the minimum-image graph is then exactly the torus's Rips complex, and the
    cell's own cycles are infinite bars (unlike a minimum-image Rips complex of a small cell,
    which identifies distinct edges and closes spurious triangles)."""
    gudhi = _gudhi()
    x = _check_points(positions)
    if not (isinstance(max_edge, (int, float)) and np.isfinite(max_edge) and max_edge > 0):
        raise InputError("max_edge", max_edge, "a positive length (Å)")
    if int(max_dimension) not in (1, 2, 3):
        raise InputError("max_dimension", max_dimension, "1, 2 or 3")
    dim = x.shape[1]
    reps = (1,) * dim
    if pbc is not False and pbc is not None and (np.ndim(pbc) == 0 and bool(pbc)
                                                  or np.ndim(pbc) and any(pbc)):
        if cell is None:
            raise InputError("cell", None, "the lattice vectors of the periodic cell (pbc)")
        if np.ndim(pbc) and not all(pbc):
            raise InputError("pbc", pbc, "all True (periodic Rips on the full torus; use "
                             "alpha_persistence for slabs)")
        c = _check_cell(cell, dim)
        vol = abs(np.linalg.det(c))
        widths = np.array([vol / np.linalg.norm(np.cross(c[(i + 1) % 3], c[(i + 2) % 3]))
                           if dim == 3 else vol / np.linalg.norm(c[1 - i]) for i in range(dim)])
        reps = tuple(int(np.floor(3.0 * max_edge / wd)) + 1 for wd in widths)
        frac = np.linalg.solve(c.T, x.T).T
        frac -= np.floor(frac)
        grid = np.array(list(itertools.product(*[range(k) for k in reps])), dtype=float)
        sfrac = ((frac[None] + grid[:, None]) / np.asarray(reps)).reshape(-1, dim)
        if sfrac.shape[0] > 6000:
            raise InputError("max_edge", max_edge, f"a shorter edge: the periodic Rips complex "
                             f"needs a {reps} supercell ({sfrac.shape[0]} points) for it")
        d = sfrac[:, None, :] - sfrac[None, :, :]
        d -= np.round(d)
        D = np.linalg.norm(d @ (c * np.asarray(reps)[:, None]), axis=2)
        st = gudhi.RipsComplex(distance_matrix=D, max_edge_length=float(max_edge)
                               ).create_simplex_tree(max_dimension=int(max_dimension))
        periodic = True
    else:
        st = gudhi.RipsComplex(points=x, max_edge_length=float(max_edge)).create_simplex_tree(
            max_dimension=int(max_dimension))
        periodic = False
    d = _diagram(st, filtration="rips", unit=ALPHA_UNIT, periodic=periodic, supercell=reps,
                 sqrt=False, provenance={"n_points": int(x.shape[0]) * int(np.prod(reps)),
                                         "max_edge": float(max_edge),
                                         "method": "gudhi.RipsComplex"
                                         + (" on the torus (minimum image, supercell)"
                                            if periodic else "")})
    top = int(max_dimension) - 1
    return PersistenceDiagram({k: v for k, v in d.intervals.items() if k <= top}, d.unit,
                              d.filtration, periodic=periodic, supercell=reps,
                              provenance=d.provenance)


def landscape(diagram: PersistenceDiagram, dim: int, grid, k_max: int = 3) -> np.ndarray:
    """Persistence landscape (Bubenik 2015): ``lambda_k(t)``, k = 1..k_max, the k-th largest
    tent ``max(0, min(t - b, d - t))`` over the finite bars of dimension ``dim``, on ``grid``
    (the diagram's unit).  Returns (k_max, len(grid))."""
    t = np.asarray(grid, dtype=float)
    bars = diagram.finite(dim)
    if not len(bars):
        return np.zeros((k_max, t.size))
    tents = np.maximum(0.0, np.minimum(t[None, :] - bars[:, :1], bars[:, 1:] - t[None, :]))
    tents = -np.sort(-tents, axis=0)
    out = np.zeros((k_max, t.size))
    out[:min(k_max, len(bars))] = tents[:k_max]
    return out


def persistence_image(diagram: PersistenceDiagram, dim: int, *, birth_range, pers_range,
                      resolution=(20, 20), sigma: float | None = None) -> np.ndarray:
    """Persistence image (Adams et al. 2017): the finite bars of ``dim`` in (birth,
    persistence) coordinates, each a Gaussian of width ``sigma`` weighted linearly by its
    persistence, integrated over a ``resolution`` grid of pixels.  Returns (ny, nx): rows
    persistence, columns birth."""
    from scipy.special import erf

    b0, b1 = (float(v) for v in birth_range)
    p0, p1 = (float(v) for v in pers_range)
    if not (b1 > b0 and p1 > p0):
        raise InputError("birth_range/pers_range", (birth_range, pers_range), "low < high")
    nx, ny = (int(r) for r in resolution)
    bars = diagram.finite(dim)
    sigma = (p1 - p0) / ny if sigma is None else float(sigma)
    xb = np.linspace(b0, b1, nx + 1)
    yp = np.linspace(p0, p1, ny + 1)
    img = np.zeros((ny, nx))
    pmax = max(p1, 1e-300)
    for b, d in bars:
        p = d - b
        cx = 0.5 * (erf((xb[1:] - b) / (np.sqrt(2) * sigma)) - erf((xb[:-1] - b) /
                                                                  (np.sqrt(2) * sigma)))
        cy = 0.5 * (erf((yp[1:] - p) / (np.sqrt(2) * sigma)) - erf((yp[:-1] - p) /
                                                                  (np.sqrt(2) * sigma)))
        img += min(p / pmax, 1.0) * np.outer(cy, cx)
    return img


def plot_diagram(diagram: PersistenceDiagram, ax=None, dims=None):
    """Birth-death diagram (infinite bars on a line above the finite ones), one colour per
    dimension."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    dims = diagram.dimensions if dims is None else list(dims)
    fin = [diagram.finite(d) for d in dims]
    top = max([float(f[:, 1].max()) for f in fin if len(f)] + [1e-12])
    inf_y = 1.08 * top
    for d, f in zip(dims, fin):
        b = diagram.bars(d)
        ax.scatter(f[:, 0], f[:, 1], s=10, label=f"H{d}")
        n_inf = int(np.sum(~np.isfinite(b[:, 1])))
        if n_inf:
            ax.scatter(b[~np.isfinite(b[:, 1]), 0], np.full(n_inf, inf_y), marker="^", s=22,
                       color=ax.collections[-1].get_facecolor()[0])
    ax.plot([0, inf_y], [0, inf_y], "k-", lw=0.6)
    ax.axhline(inf_y, color="grey", ls=":", lw=0.8)
    ax.set_xlabel(f"birth ({diagram.unit})")
    ax.set_ylabel(f"death ({diagram.unit}); ▲ = never")
    ax.legend(fontsize=8)
    return ax


def persistence_curve(fields, *, periodic=True, min_persistence: float = 0.0,
                      superlevel: bool = False, unit: str = "") -> dict:
    """Persistence summaries of a sequence of fields (a microstructure's evolution): for each
    field, the number of features of each dimension whose persistence exceeds
    ``min_persistence`` (in the field's unit) and their total persistence.  Returns
    ``{"count": (n_fields, dims) ints, "total": (n_fields, dims), "diagrams": [...]}``; for a
    two-phase field in [0, 1] the H0 count of the sublevel sets is the number of low-phase
    domains deeper than ``min_persistence`` (of ``superlevel``: high-phase domains)."""
    diagrams = [cubical_persistence(f, periodic=periodic, superlevel=superlevel, unit=unit)
                for f in fields]
    if not diagrams:
        raise InputError("fields", 0, "one or more fields")
    dims = max(len(d.dimensions) for d in diagrams)
    count = np.zeros((len(diagrams), dims), dtype=int)
    total = np.zeros((len(diagrams), dims))
    for i, d in enumerate(diagrams):
        for k in range(dims):
            p = np.diff(d.finite(k), axis=1).ravel()
            count[i, k] = int(np.sum(p > min_persistence))
            total[i, k] = float(p.sum())
    return {"count": count, "total": total, "diagrams": diagrams}
