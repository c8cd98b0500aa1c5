"""The one checkpoint format of the project.

Every long simulation (MD, KMC, spin Monte Carlo, phase field) and every resumable computation
(exchange mapping, SCF densities) writes its state with :func:`write_checkpoint` and reads it with
:func:`read_checkpoint`:

* the state is anything :mod:`scaleladder.core.codec` encodes (dicts of NumPy arrays, numbers,
  strings, registered types) — never pickle;
* the file is one ``.npz`` holding the codec's two parts (``meta.json`` and ``arrays.npz`` as byte
  arrays) and a header with the format, the ``kind`` of checkpoint and the sha256 of each part;
* it is written by the project's one atomic write (:func:`scaleladder.core.fsio.atomic_write`:
  temp file, fsync, rename, fsync of the folder), so a reader never sees half a checkpoint;
* on reading, a file of another kind, of another format or whose content no longer matches its
  hashes is refused with :class:`CheckpointError` naming the file and what is wrong, never decoded
  into a silently wrong state.

Floats round-trip exactly (JSON ``repr``), so a resumed run continues bit for bit.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import codec
from .errors import InputError
from .fsio import atomic_write

__all__ = ["write_checkpoint", "read_checkpoint", "CheckpointError", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "scaleladder.checkpoint/1"


class CheckpointError(InputError):
    """A checkpoint that cannot be used: missing, unreadable, corrupt, or of another kind."""


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def write_checkpoint(path: str | os.PathLike, state: Any, *, kind: str) -> Path:
    """Write ``state`` to ``path`` atomically in the one checkpoint format; return the path.

    Parameters
    ----------
    path : path-like
        Target file (conventionally ``.npz``); its folder is created if missing.
    state : Any
        Anything the codec encodes.
    kind : str
        What this checkpoint is (``"md"``, ``"kmc"``, ...): checked by :func:`read_checkpoint`.
    """
    if not isinstance(kind, str) or not kind:
        raise InputError("kind", kind, "a non-empty checkpoint kind such as 'md'")
    files = codec.to_files(state)
    header = {"format": CHECKPOINT_FORMAT, "kind": kind,
              "sha256": {name: _sha(data) for name, data in files.items()}}
    buf = io.BytesIO()
    np.savez(buf, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
             **{name.replace(".", "_"): np.frombuffer(data, dtype=np.uint8)
                for name, data in files.items()})
    return atomic_write(path, buf.getvalue())


def read_checkpoint(path: str | os.PathLike, *, kind: str, field: str = "checkpoint") -> Any:
    """Read a checkpoint written by :func:`write_checkpoint` with the same ``kind``.

    Raises
    ------
    CheckpointError
        ``path`` is missing or unreadable, not a scaleladder checkpoint, of another kind or
        format, or corrupt (a part does not match its recorded sha256).  ``field`` names the
        argument in the message.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(field, str(path), f"an existing {kind} checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z["header"]).decode())
            parts = {name: bytes(z[name.replace(".", "_")]) for name in header["sha256"]}
    except Exception as exc:  # noqa: BLE001 - BadZipFile, OSError, ValueError, KeyError, ...
        raise CheckpointError(field, str(path), f"a readable {kind} checkpoint (scaleladder "
                              "checkpoint .npz)", hint=f"{type(exc).__name__}: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(field, str(path), f"format {CHECKPOINT_FORMAT!r}",
                              hint=f"found {header.get('format') if isinstance(header, dict) else header!r}")
    if header.get("kind") != kind:
        raise CheckpointError(field, str(path), f"a {kind} checkpoint",
                              hint=f"it is a {header.get('kind')!r} checkpoint")
    for name, h in header["sha256"].items():
        if _sha(parts[name]) != h:
            raise CheckpointError(field, str(path), f"an intact {kind} checkpoint",
                                  hint=f"its {name} part does not match its recorded sha256: the "
                                       "file is corrupt; delete it to start afresh or restore it")
    try:
        return codec.from_files(parts)
    except Exception as exc:  # noqa: BLE001 - a decodable header with an undecodable body
        raise CheckpointError(field, str(path), f"a decodable {kind} checkpoint",
                              hint=f"{type(exc).__name__}: {exc}") from None
