"""The one atomic file write of the project, and the classification of file-system failures.

:func:`atomic_write` writes to a temporary file in the target's folder, fsyncs it, gives it the
permissions a plain ``open(path, "w")`` would (``0o666`` less the umask: a report is readable by
whoever may read the folder), renames it over the target and fsyncs the folder.  A crash leaves
either the old file or the new one, never a mixture.

:func:`storage_error` turns an ``OSError`` or ``sqlite3`` error that means "disk full" or
"read-only" into :class:`~.errors.StoreFullError` / :class:`~.errors.StoreReadOnlyError` with a
message that says where and what to do.
"""
from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from .errors import StoreError, StoreFullError, StoreReadOnlyError

__all__ = ["atomic_write", "fsync_dir", "storage_error", "umask_mode"]

_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def umask_mode(base: int = 0o666) -> int:
    """``base`` less the process umask (the mode ``open()`` would give a new file)."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a directory so a rename inside it is durable (no-op where unsupported)."""
    flags = getattr(os, "O_DIRECTORY", None)
    if flags is None:  # pragma: no cover - Windows
        return
    try:
        fd = os.open(path, os.O_RDONLY | flags)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes | str, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically and durably; return the path.

    Parameters
    ----------
    path : path-like
        Target file; its folder is created if missing.
    data : bytes or str
        Content (str is written as UTF-8).
    mode : int, optional
        Permission bits; default ``0o666`` less the umask.

    Raises
    ------
    StoreFullError, StoreReadOnlyError
        The disk is full, or the folder is read-only (nothing is left behind).
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, umask_mode() if mode is None else mode)
        os.replace(tmp, path)
        tmp = None
        fsync_dir(path.parent)
    except OSError as e:
        err = storage_error(e, f"writing {path}")
        if err is not None:
            raise err from e
        raise
    finally:
        if tmp is not None and os.path.exists(tmp):
            try:
                os.unlink(tmp)
            except OSError:  # pragma: no cover
                pass
    return path


def _free_text(where: str | os.PathLike | None) -> str:
    if where is None:
        return ""
    p = Path(where)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        free = shutil.disk_usage(p).free
    except OSError:  # pragma: no cover
        return ""
    return f" ({free / 2**20:.1f} MiB free on the file system of {p})"


def storage_error(exc: BaseException, doing: str, root: str | os.PathLike | None = None
                  ) -> StoreError | None:
    """The :class:`StoreFullError` / :class:`StoreReadOnlyError` that ``exc`` means, or None."""
    text = str(exc).lower()
    code = getattr(exc, "errno", None)
    full = code in _FULL or (isinstance(exc, sqlite3.Error) and ("disk is full" in text
                                                                  or "database or disk is full" in text))
    readonly = code in _READONLY or (isinstance(exc, sqlite3.Error) and
                                     ("readonly" in text or "read-only" in text))
    where = f" the store {root}" if root is not None else ""
    if full:
        return StoreFullError(f"the disk is full while {doing}{_free_text(root)}: nothing was "
                              f"half-written and everything finished before is kept in{where or ' place'}; "
                              "free some space (or point --store at another disk) and run again: "
                              "finished stages are reused")
    if readonly:
        return StoreReadOnlyError(f"cannot write while {doing}:{where or ' the target'} is read-only "
                                  f"({exc}); read-only commands (show, budget, report) work on it, "
                                  "but a run needs a writable store: use --store to point at a "
                                  "writable folder")
    return None
