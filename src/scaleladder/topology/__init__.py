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
The quotient is a simplicial complex only when no simplex joins an atom to its own image and no
two simplices share a vertex set — in a cell too small for that, the cell is repeated (the
``supercell`` of the diagram) until it is.  The cell's own classes then appear as infinite bars:
Betti numbers (1, 3, 3, 1) of the 3-torus at the end of the filtration.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..core.errors import InputError
from ..handoffs.topology import PersistenceDiagram

__all__ = ["alpha_persistence", "cubical_persistence", "ALPHA_UNIT"]

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


def _drop_empty(iv: np.ndarray) -> np.ndarray:
    """Intervals of zero length (a simplex and its coface entering together: degenerate
    positions) carry no feature; they are dropped (to round-off of the largest finite value)."""
    if not len(iv):
        return iv
    fin = iv[np.isfinite(iv)]
    tol = 1e-10 * max(float(np.max(np.abs(fin))) if fin.size else 1.0, 1.0)
    return iv[~(iv[:, 1] - iv[:, 0] <= tol)]


def _diagram(st, *, filtration: str, unit: str, periodic: bool, supercell, provenance,
             sqrt: bool) -> PersistenceDiagram:
    st.compute_persistence(homology_coeff_field=2, persistence_dim_max=True)
    top = st.dimension()
    out = {}
    for d in range(top + 1):
        iv = np.asarray(st.persistence_intervals_in_dimension(d), dtype=float).reshape(-1, 2)
        if sqrt:
            iv = np.sign(iv) * np.sqrt(np.abs(iv))
        iv = _drop_empty(iv)
        out[d] = iv[np.lexsort((iv[:, 1], iv[:, 0]))] if len(iv) else iv
    return PersistenceDiagram(out, unit, filtration, periodic=periodic, supercell=supercell,
                              provenance=provenance)


def alpha_persistence(positions, *, cell=None, pbc=False, radii=None,
                      max_supercell: int = 4) -> PersistenceDiagram:
    """Persistence of the alpha filtration of atoms (Å: the radius of the empty ball).

    Parameters
    ----------
    positions : (n, 3) array, Å (or an ASE ``Atoms``: its positions, cell and pbc are used)
    cell : (3, 3) array, rows the lattice vectors (Å), needed with ``pbc``
    pbc : bool
        Periodic in all directions: the complex on the torus (see the module notes).  Partial
        periodicity (slabs) is not supported yet: give the slab as a cluster or as fully
        periodic with vacuum.
    radii : (n,) array, optional
        Atomic radii (Å): the weighted alpha complex (power distance, weights ``r^2``).
    max_supercell : int
        The largest repetition tried for a simplicial torus complex.
    """
    gudhi = _gudhi()
    if hasattr(positions, "get_positions") and hasattr(positions, "cell"):
        atoms = positions
        positions = atoms.get_positions()
        if cell is None:
            cell = np.asarray(atoms.cell)
        if pbc is False and all(atoms.pbc):
            pbc = True
    x = _check_points(positions)
    w = None
    if radii is not None:
        r = np.asarray(radii, dtype=float).reshape(-1)
        if r.shape != (x.shape[0],) or np.any(~np.isfinite(r)) or np.any(r < 0):
            raise InputError("radii", r.shape, f"{x.shape[0]} finite radii >= 0 (Å)")
        w = r ** 2
    if not pbc:
        ac = gudhi.AlphaComplex(points=x, weights=None if w is None else list(w))
        st = ac.create_simplex_tree()
        return _diagram(st, filtration="alpha", unit=ALPHA_UNIT, periodic=False,
                        supercell=(1,) * x.shape[1], sqrt=True,
                        provenance={"n_points": int(x.shape[0]), "weighted": w is not None,
                                    "method": "gudhi.AlphaComplex"})
    if cell is None:
        raise InputError("cell", None, "the lattice vectors of the periodic cell (pbc=True)")
    dim = x.shape[1]
    c = _check_cell(cell, dim)
    # reduce into the cell (fractional coordinates in [0, 1))
    frac = np.linalg.solve(c.T, x.T).T
    frac -= np.floor(frac)
    for m in range(1, int(max_supercell) + 1):
        st = _torus_complex(gudhi, frac, c, w, (m,) * dim)
        if st is not None:
            return _diagram(st, filtration="alpha", unit=ALPHA_UNIT, periodic=True,
                            supercell=(m,) * dim, sqrt=True,
                            provenance={"n_points": int(x.shape[0]) * m ** dim,
                                        "weighted": w is not None,
                                        "method": "alpha complex on the torus (GUDHI "
                                                  "AlphaComplex of the 27 images, quotient)"})
    raise InputError("cell", np.round(c, 3).tolist(),
                     f"a cell in which the torus complex is simplicial within a "
                     f"{max_supercell}x supercell (raise max_supercell)")


def _torus_complex(gudhi, frac, cell, w, reps):
    """The alpha complex on the torus of the cell repeated ``reps`` times, or None where the
    quotient is not a simplicial complex."""
    dim = frac.shape[1]
    reps = np.asarray(reps)
    grid = np.array(list(itertools.product(*[range(k) for k in reps])), dtype=float)
    sfrac = ((frac[None, :, :] + grid[:, None, :]) / reps).reshape(-1, dim)  # supercell frac
    scell = cell * reps[:, None]
    n = sfrac.shape[0]
    sw = None if w is None else np.tile(w, len(grid))
    offsets = np.array(list(itertools.product((-1, 0, 1), repeat=dim)), dtype=float)
    pts = ((sfrac[None, :, :] + offsets[:, None, :]).reshape(-1, dim)) @ scell
    centre = int(np.flatnonzero(np.all(offsets == 0, axis=1))[0])
    ac = gudhi.AlphaComplex(points=pts, weights=None if sw is None else list(np.tile(sw, 27 if
                                                                                     dim == 3
                                                                                     else 9)))
    full = ac.create_simplex_tree()
    out = gudhi.SimplexTree()
    seen: dict = {}
    for simplex, f in full.get_simplices():
        atoms = [v % n for v in simplex]
        img = [v // n for v in simplex]
        a = min(range(len(atoms)), key=lambda i: atoms[i])
        if img[a] != centre:
            continue
        if len(set(atoms)) != len(atoms):
            return None                           # an atom joined to its own image
        rel = tuple(sorted((atoms[i], tuple(offsets[img[i]] - offsets[img[a]]))
                           for i in range(len(atoms))))
        key = tuple(sorted(atoms))
        if key in seen and seen[key] != rel:
            return None                           # two simplices on one vertex set
        seen[key] = rel
        out.insert(sorted(atoms), f)
    out.make_filtration_non_decreasing()
    return out


def cubical_persistence(field, *, periodic=False, unit: str = "",
                        superlevel: bool = False) -> PersistenceDiagram:
    """Persistence of the sublevel sets (``superlevel``: of the superlevel sets — the diagram
    is then that of ``-field``, its values negated) of a 2D or 3D field on its grid (GUDHI's cubical complex; ``periodic`` — True or one flag
    per axis — identifies opposite faces: the torus classes appear)."""
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
