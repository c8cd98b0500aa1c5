"""Plain serialisation: JSON plus NumPy arrays, never pickle.

``encode(obj)`` turns a tree of dicts, lists, tuples, numbers, strings, ``None``, NumPy arrays and
registered classes into ``(tree, arrays)`` where ``tree`` is JSON-able and every array is replaced by
a reference into ``arrays``.  ``decode(tree, arrays)`` inverts it exactly.  ``to_files``/``from_files``
turn that into two files' bytes: ``meta.json`` (human-readable) and ``arrays.npz`` (loaded with
``allow_pickle=False``).

A class joins by the :func:`register` decorator; it provides ``to_state(self) -> dict`` (any
encodable values) and a classmethod ``from_state(cls, state)``.  Upper layers (uq, handoffs, rungs)
register their types here; the core imports none of them.
"""
from __future__ import annotations

import io
import json
import math
from typing import Any, Callable

import numpy as np

from .errors import StoreError

_REGISTRY: dict[str, type] = {}
FORMAT_VERSION = 1


def register(name: str | None = None) -> Callable[[type], type]:
    """Class decorator: make a class encodable under ``name`` (default: its ``__name__``)."""

    def deco(cls: type) -> type:
        key = name or cls.__name__
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            # re-registration of a reloaded class is fine; a different class under one name is not
            if _REGISTRY[key].__qualname__ != cls.__qualname__:
                raise StoreError(f"codec name {key!r} already registered for {_REGISTRY[key]!r}")
        _REGISTRY[key] = cls
        cls.__codec_name__ = key
        return cls

    return deco


def registered(name: str) -> type:
    if name not in _REGISTRY:
        raise StoreError(f"no codec registered for type {name!r}: import the module that defines it")
    return _REGISTRY[name]


def encode(obj: Any) -> tuple[Any, dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}

    def enc(o: Any) -> Any:
        if o is None or isinstance(o, (bool, str)):
            return o
        if isinstance(o, (int, np.integer)):
            return int(o)
        if isinstance(o, (float, np.floating)):
            f = float(o)
            if math.isfinite(f):
                return f
            return {"__float__": repr(f)}
        if isinstance(o, np.ndarray):
            if o.dtype == object:
                raise StoreError("object arrays cannot be stored (no pickle): convert to a list")
            key = f"a{len(arrays)}"
            arrays[key] = np.ascontiguousarray(o).reshape(o.shape)  # keeps 0-d arrays 0-d
            return {"__ndarray__": key}
        if isinstance(o, dict):
            if all(isinstance(k, str) for k in o):
                # sorted, as meta.json is written: arrays are numbered in the order a decoded
                # dict is traversed again, so encode(decode(x)) == x byte for byte
                return {"__dict__": {k: enc(o[k]) for k in sorted(o)}}
            return {"__items__": [[enc(k), enc(v)] for k, v in o.items()]}
        if isinstance(o, tuple):
            return {"__tuple__": [enc(v) for v in o]}
        if isinstance(o, list):
            return [enc(v) for v in o]
        name = getattr(type(o), "__codec_name__", None)
        if name is not None and _REGISTRY.get(name) is type(o):
            return {"__type__": name, "module": type(o).__module__, "state": enc(o.to_state())}
        raise StoreError(f"cannot encode object of type {type(o).__name__}: register it with "
                         "scaleladder.core.codec.register")

    return enc(obj), arrays


def decode(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    def dec(t: Any) -> Any:
        if isinstance(t, list):
            return [dec(v) for v in t]
        if isinstance(t, dict):
            if "__ndarray__" in t:
                return np.array(arrays[t["__ndarray__"]])
            if "__dict__" in t:
                return {k: dec(v) for k, v in t["__dict__"].items()}
            if "__items__" in t:
                return {dec(k): dec(v) for k, v in t["__items__"]}
            if "__tuple__" in t:
                return tuple(dec(v) for v in t["__tuple__"])
            if "__float__" in t:
                return float(t["__float__"])
            if "__type__" in t:
                if t["__type__"] not in _REGISTRY and t.get("module"):
                    # the defining module registers the type on import (recorded when encoded)
                    import importlib

                    try:
                        importlib.import_module(t["module"])
                    except ImportError as exc:
                        raise StoreError(f"type {t['__type__']!r} is defined in {t['module']!r}, "
                                         f"which cannot be imported: {exc}") from exc
                cls = registered(t["__type__"])
                return cls.from_state(dec(t["state"]))
            raise StoreError(f"malformed encoded tree node: {sorted(t)}")
        return t

    return dec(tree)


def to_files(obj: Any) -> dict[str, bytes]:
    """Encode ``obj`` as ``{"meta.json": ..., "arrays.npz": ...}`` bytes."""
    tree, arrays = encode(obj)
    meta = json.dumps({"format": FORMAT_VERSION, "data": tree}, indent=1, sort_keys=True,
                      ensure_ascii=False).encode()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return {"meta.json": meta, "arrays.npz": buf.getvalue()}


def from_files(files: dict[str, bytes]) -> Any:
    meta = json.loads(files["meta.json"].decode())
    with np.load(io.BytesIO(files["arrays.npz"]), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return decode(meta["data"], arrays)


def dumps(obj: Any) -> str:
    """One self-contained JSON text of an artifact (arrays inline, base64 of their exact bytes).

    The single-file form of :func:`to_files` (for a trained potential a user keeps, mails or
    gives to a ladder as a file); :func:`loads` reads it back identically.
    """
    import base64

    tree, arrays = encode(obj)
    packed = {k: {"dtype": a.dtype.str, "shape": list(a.shape),
                  "base64": base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()}
              for k, a in arrays.items()}
    return json.dumps({"format": FORMAT_VERSION, "data": tree, "arrays": packed}, indent=1,
                      sort_keys=True, ensure_ascii=False)


def loads(text: str) -> Any:
    """The artifact of a :func:`dumps` text."""
    import base64

    try:
        doc = json.loads(text)
        arrays = {}
        for k, a in doc["arrays"].items():
            dt = np.dtype(a["dtype"])
            if dt.hasobject:
                raise StoreError("object arrays cannot be read (no pickle)")
            arrays[k] = np.frombuffer(base64.b64decode(a["base64"]), dtype=dt).reshape(a["shape"]).copy()
        return decode(doc["data"], arrays)
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"not a scaleladder artifact file: {exc}") from None


def save(obj: Any, path: Any) -> str:
    """Write ``obj`` as one JSON file (:func:`dumps`) atomically; returns the path."""
    from .fsio import atomic_write

    return str(atomic_write(path, dumps(obj)))


def load(path: Any) -> Any:
    """Read an artifact file written by :func:`save`."""
    with open(path, encoding="utf-8") as fh:
        return loads(fh.read())


def canonical_json(obj: Any) -> str:
    """Deterministic JSON of plain parameters (used for hashing stage keys)."""
    tree, arrays = encode(obj)
    payload = {"tree": tree,
               "arrays": {k: [str(v.dtype), list(v.shape), v.tobytes().hex()] for k, v in arrays.items()}}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


__all__ = ["register", "registered", "encode", "decode", "to_files", "from_files", "canonical_json",
           "dumps", "loads", "save", "load"]
