"""Content-addressed artifact store: one SQLite index plus a blob folder.

Layout under ``root`` (default ``.scaleladder`` in the working directory)::

    root/index.sqlite                 the index (WAL mode): artifacts and runs tables
    root/blobs/<key[:2]>/<key>/       meta.json + arrays.npz of one artifact (core.codec.to_files)
    root/runs/<run_id>.json           each recorded run (so a lost index can be rebuilt)
    root/tmp/                         staging area for atomic writes

Every blob folder also holds ``record.json``: the artifact's full provenance record (stage, version,
parameters, inputs, code fingerprint, file hashes).  Blobs are therefore self-describing and
:meth:`Store.rebuild` reconstructs a lost or damaged index from them.  A store whose index vanished
while its blobs remain is refused (:class:`~.errors.StoreIndexError`) until it is rebuilt, so a
deleted ``index.sqlite`` never silently starts an empty store beside finished work.

``Store(root, readonly=True)`` opens an existing store without writing anything (SQLite
``mode=ro``, or ``immutable=1`` on a read-only mount) and never creates a folder; the read-only
commands use it.  A full disk or a read-only folder met while writing raises
:class:`~.errors.StoreFullError` / :class:`~.errors.StoreReadOnlyError` with what to do.

Several runs may share a store: a run *claims* a stage before computing it (a lease row in the
index, kept alive by heartbeats), and another run that needs the same stage waits for it and
reuses its result instead of computing it twice.  A lease whose holder died (its process is gone,
or its heartbeat is older than the timeout) is taken over.

A write goes to a fresh directory under ``root/tmp``, every file is fsynced, the directory is moved
into place with :func:`os.replace` and only then is the index row inserted (one SQLite write
transaction, which also serialises concurrent writers across processes).  A crash therefore leaves
either nothing indexed or a complete entry: a blob directory without an index row is an orphan that
reads ignore and the next write of that key overwrites; an index row whose blob is missing or whose
files no longer match the recorded sha256 is reported as :class:`StoreCorruptionError` by
:meth:`Store.get` (and repaired by the next :meth:`Store.put` of that key).

No pickle is used anywhere: artifacts are encoded by :mod:`scaleladder.core.codec`, parameters and
run settings are stored as JSON (arrays inline, base64).
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from . import codec
from .errors import InputError, StoreCorruptionError, StoreError, StoreIndexError, StoreReadOnlyError
from .fsio import atomic_write, fsync_dir, storage_error

__all__ = ["Store"]

_KEY_RE = re.compile(r"^[0-9A-Za-z_-]{2,128}$")
_PREFIX_RE = re.compile(r"^[0-9A-Za-z_-]{1,128}$")
_BUSY_TIMEOUT_S = 60.0
_RECORD = "record.json"
_RECORD_SCHEMA = "scaleladder.record/1"
_TMP_MAX_AGE_S = 24 * 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS artifacts (
    key       TEXT PRIMARY KEY,
    stage     TEXT NOT NULL,
    version   TEXT NOT NULL,
    params    TEXT NOT NULL,
    inputs    TEXT NOT NULL,
    created   TEXT NOT NULL,
    elapsed_s REAL NOT NULL,
    files     TEXT NOT NULL,
    fingerprint TEXT,
    identity  TEXT,
    note      TEXT
);
CREATE INDEX IF NOT EXISTS artifacts_stage ON artifacts(stage);
CREATE TABLE IF NOT EXISTS runs (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id    TEXT NOT NULL UNIQUE,
    ladder    TEXT NOT NULL,
    name      TEXT,
    settings  TEXT NOT NULL,
    targets   TEXT NOT NULL,
    created   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_ladder ON runs(ladder);
CREATE TABLE IF NOT EXISTS meta (
    k TEXT PRIMARY KEY,
    v TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    key       TEXT PRIMARY KEY,
    owner     TEXT NOT NULL,
    host      TEXT NOT NULL,
    pid       INTEGER NOT NULL,
    label     TEXT,
    acquired  REAL NOT NULL,
    heartbeat REAL NOT NULL
);
"""
_MIGRATIONS = (("artifacts", "fingerprint", "TEXT"), ("artifacts", "identity", "TEXT"),
               ("artifacts", "note", "TEXT"))


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dump_plain(obj: Any) -> str:
    """JSON text of a plain encodable object (params, settings); arrays inline as base64."""
    tree, arrays = codec.encode(obj)
    packed = {k: {"descr": np.lib.format.dtype_to_descr(v.dtype), "shape": list(v.shape),
                  "b64": base64.b64encode(np.ascontiguousarray(v).tobytes()).decode("ascii")}
              for k, v in arrays.items()}
    return json.dumps({"tree": tree, "arrays": packed}, sort_keys=True, ensure_ascii=False)


def _load_plain(text: str) -> Any:
    payload = json.loads(text)
    arrays = {}
    for k, a in payload["arrays"].items():
        dtype = np.lib.format.descr_to_dtype(a["descr"])
        arrays[k] = np.frombuffer(base64.b64decode(a["b64"]), dtype=dtype).reshape(a["shape"]).copy()
    return codec.decode(payload["tree"], arrays)


_fsync_dir = fsync_dir


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise InputError("key", key, "2-128 characters from [0-9A-Za-z_-] (a sha256 hex digest, "
                         "as pipeline nodes produce)")
    return key


# ----------------------------------------------------------------------------------------------
# Store
# ----------------------------------------------------------------------------------------------
class Store:
    """Content-addressed store of artifacts with provenance, plus a table of runs.

    Parameters
    ----------
    root : str or os.PathLike, default ".scaleladder"
        Folder holding ``index.sqlite``, ``blobs/`` and ``tmp/``; created if missing.

    Notes
    -----
    Safe for several threads and several processes writing at once: each thread of each process
    opens its own SQLite connection (WAL journal, busy timeout of 60 s) and every write of an
    artifact is one ``BEGIN IMMEDIATE`` transaction around the final rename and the index insert.
    A ``Store`` pickles as its root path only, so it can be handed to another process.

    Examples
    --------
    >>> store = Store(tmp_path / "store")                                      # doctest: +SKIP
    >>> store.put("ab12cd34", {"x": 1.0}, stage="demo", version="1", params={}, inputs={},
    ...           elapsed_s=0.1)                                               # doctest: +SKIP
    'ab12cd34'
    >>> store.get("ab12cd34")                                                  # doctest: +SKIP
    {'x': 1.0}
    """

    def __init__(self, root: str | os.PathLike = ".scaleladder", *, readonly: bool = False):
        self.root = Path(root).expanduser().absolute()
        self.blobs = self.root / "blobs"
        self.tmp = self.root / "tmp"
        self.runs_dir = self.root / "runs"
        self.index_path = self.root / "index.sqlite"
        self.readonly = bool(readonly)
        self._local = threading.local()
        if self.readonly:
            if not self.root.is_dir():
                raise StoreError(f"no store at {self.root} (the folder does not exist); give the "
                                 "store of a run with --store DIR")
            if not self.index_path.is_file():
                if self._has_blobs():
                    raise StoreIndexError(self._missing_index_text())
                raise StoreError(f"no store at {self.root} (it holds no index.sqlite); give the "
                                 "store of a run with --store DIR")
            self._check_readable()
            return
        try:
            self.blobs.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            err = storage_error(e, f"creating the store folder {self.root}", self.root)
            raise (err or StoreError(f"cannot create the store folder {self.root}: {e}")) from e
        if not os.access(self.root, os.W_OK) or not os.access(self.blobs, os.W_OK):
            raise StoreReadOnlyError(f"the store {self.root} is read-only (no write permission); "
                                     "read-only commands (show, budget, report) work on it, but a "
                                     "run needs a writable store: use --store to point at a "
                                     "writable folder")
        self._init_schema()
        self._clean_tmp()

    def _has_blobs(self) -> bool:
        try:
            for sub in self.blobs.iterdir():
                if sub.is_dir() and any(True for _ in sub.iterdir()):
                    return True
        except OSError:
            return False
        return False

    def _missing_index_text(self) -> str:
        return (f"the store {self.root} has artifacts in blobs/ but its index "
                f"({self.index_path.name}) is missing or empty: it was deleted or lost. Nothing "
                f"is recomputed on top of it. Rebuild the index from the blobs with "
                f"`scaleladder store rebuild --store {self.root}` (Store.rebuild()), then run again")

    def _damaged_index_text(self, e: BaseException) -> str:
        return (f"the store index {self.index_path} is damaged ({e}); the artifacts themselves "
                f"are safe in {self.blobs}. Rebuild the index from them with `scaleladder store "
                f"rebuild --store {self.root}` (the damaged file is kept beside it as "
                f"index.sqlite.damaged-<time>); do not delete the store")

    def _check_readable(self) -> None:
        try:
            self._conn().execute("SELECT COUNT(*) FROM artifacts").fetchone()
        except sqlite3.DatabaseError as e:
            if "no such table" in str(e):
                if self._has_blobs():
                    raise StoreIndexError(self._missing_index_text()) from e
                raise StoreError(f"no store at {self.root} (its index holds no tables)") from e
            raise StoreIndexError(self._damaged_index_text(e)) from e

    # -- pickling / lifetime -------------------------------------------------------------------
    def __reduce__(self):
        return (Store, (str(self.root),))

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close this thread's SQLite connection (reopened on the next use)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = None

    # -- connection ------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            if self.readonly:
                conn = self._connect_readonly()
            else:
                try:
                    conn = sqlite3.connect(self.index_path, timeout=_BUSY_TIMEOUT_S,
                                           isolation_level=None)
                    conn.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
                    self._retry(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone())
                    conn.execute("PRAGMA synchronous=NORMAL")
                except sqlite3.Error as e:
                    err = storage_error(e, f"opening the store index {self.index_path}", self.root)
                    if err is not None:
                        raise err from e
                    raise StoreIndexError(self._damaged_index_text(e)) from e
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def _connect_readonly(self) -> sqlite3.Connection:
        """``mode=ro``; on a read-only mount (no -shm can be made) ``immutable=1``."""
        from urllib.parse import quote

        uri = "file:" + quote(str(self.index_path))
        last: Exception | None = None
        for suffix in ("?mode=ro", "?mode=ro&immutable=1"):
            try:
                conn = sqlite3.connect(uri + suffix, uri=True, timeout=_BUSY_TIMEOUT_S,
                                       isolation_level=None)
                conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                return conn
            except sqlite3.Error as e:
                last = e
                if "not a database" in str(e) or "malformed" in str(e):
                    break
        raise StoreIndexError(self._damaged_index_text(last)) from last

    @staticmethod
    def _retry(fn, attempts: int = 50):
        """Call ``fn`` retrying on 'database is locked' (pragmas that ignore the busy handler)."""
        for i in range(attempts):
            try:
                return fn()
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e) or i == attempts - 1:
                    raise
                time.sleep(0.05 + 0.01 * i)

    class _Tx:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error); a full disk or a
        read-only index becomes :class:`StoreFullError` / :class:`StoreReadOnlyError`."""

        def __init__(self, conn: sqlite3.Connection, root: Path):
            self.conn = conn
            self.root = root

        def _translate(self, e: BaseException) -> BaseException:
            err = storage_error(e, f"writing the store index {self.root / 'index.sqlite'}",
                                self.root)
            return err if err is not None else e

        def __enter__(self) -> sqlite3.Connection:
            try:
                Store._retry(lambda: self.conn.execute("BEGIN IMMEDIATE"))
            except sqlite3.Error as e:
                raise self._translate(e) from e
            return self.conn

        def __exit__(self, exc_type, exc, tb) -> None:
            if exc_type is None:
                try:
                    self.conn.execute("COMMIT")
                except sqlite3.Error as e:
                    try:
                        self.conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                    raise self._translate(e) from e
                return
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if isinstance(exc, (sqlite3.Error, OSError)):
                translated = self._translate(exc)
                if translated is not exc:
                    raise translated from exc

    def _tx(self) -> "Store._Tx":
        if self.readonly:
            raise StoreReadOnlyError(f"the store {self.root} was opened read-only")
        return Store._Tx(self._conn(), self.root)

    def _init_schema(self) -> None:
        try:
            with self._tx() as c:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                for table, col, typ in _MIGRATIONS:
                    have = {r[1] for r in c.execute(f"PRAGMA table_info({table})")}
                    if col not in have:
                        c.execute(f"ALTER TABLE {table} ADD COLUMN {col} {typ}")
                # after the migrations: older indexes lack the column before them
                c.execute("CREATE INDEX IF NOT EXISTS artifacts_identity ON artifacts(identity)")
                row = c.execute("SELECT v FROM meta WHERE k='store_id'").fetchone()
                if row is None:
                    # a new index: of a new store, of a store older than store ids (it has
                    # artifacts: adopt it), or one that replaced a lost index (refuse)
                    n = c.execute("SELECT COUNT(*) FROM artifacts").fetchone()[0]
                    marker = self.root / "store.json"
                    if n == 0 and (marker.exists() or self._has_blobs()):
                        raise StoreIndexError(self._missing_index_text())
                    store_id = uuid.uuid4().hex
                    c.execute("INSERT INTO meta (k, v) VALUES ('store_id', ?)", (store_id,))
                    atomic_write(marker, json.dumps({"store_id": store_id, "created": _now_iso(),
                                                     "format": _RECORD_SCHEMA}))
        except StoreError:
            raise
        except sqlite3.Error as e:
            err = storage_error(e, f"opening the store index {self.index_path}", self.root)
            if err is not None:
                raise err from e
            raise StoreIndexError(self._damaged_index_text(e)) from e

    def _clean_tmp(self) -> None:
        """Remove staging debris older than a day (a crashed writer's leftovers)."""
        cutoff = time.time() - _TMP_MAX_AGE_S
        try:
            entries = list(self.tmp.iterdir())
        except OSError:  # pragma: no cover
            return
        for p in entries:
            try:
                if p.stat().st_mtime < cutoff:
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
            except OSError:  # pragma: no cover
                pass

    # -- paths -----------------------------------------------------------------------------------
    def blob_dir(self, key: str) -> Path:
        """Folder that holds (or would hold) the files of ``key``."""
        _check_key(key)
        return self.blobs / key[:2] / key

    # -- artifacts -------------------------------------------------------------------------------
    def put(self, key: str, obj: Any, *, stage: str, version: str, params: dict,
            inputs: dict[str, str], elapsed_s: float, fingerprint: dict | None = None,
            identity: str | None = None, note: str | None = None) -> str:
        """Store ``obj`` under ``key`` with its provenance; return ``key``.

        Parameters
        ----------
        key : str
            Content address (normally :attr:`scaleladder.core.pipeline.Node.key`).
        obj : Any
            Anything :func:`scaleladder.core.codec.encode` accepts.
        stage, version : str
            Name and version of the stage that produced ``obj``.
        params : dict
            Plain parameters of the stage (encodable by the codec).
        inputs : dict[str, str]
            Argument name -> key of each input artifact.
        elapsed_s : float
            Seconds the computation took.
        fingerprint : dict, optional
            Code fingerprint of the stage (:func:`scaleladder.core.fingerprint.stage_fingerprint`).
        identity : str, optional
            Key of the same computation without the code (name, version, parameters, inputs'
            identities): results of one recipe computed by different code share it.
        note : str, optional
            Why it was computed (e.g. what changed since an earlier result of the same recipe).

        Returns
        -------
        str
            ``key``.

        Notes
        -----
        Idempotent: if ``key`` is already stored with an intact blob, nothing changes (the first
        write wins).  If its row exists but the blob is missing or corrupt, the blob is rewritten
        and the row replaced.
        """
        files = codec.to_files(obj)
        return self._put_files(key, files, stage=stage, version=version, params=params,
                               inputs=inputs, elapsed_s=elapsed_s, fingerprint=fingerprint,
                               identity=identity, note=note)

    def _put_files(self, key: str, files: dict[str, bytes], *, stage: str, version: str,
                   params: dict, inputs: dict[str, str], elapsed_s: float,
                   fingerprint: dict | None = None, identity: str | None = None,
                   note: str | None = None) -> str:
        try:
            return self._put_files_unchecked(key, files, stage=stage, version=version,
                                             params=params, inputs=inputs, elapsed_s=elapsed_s,
                                             fingerprint=fingerprint, identity=identity, note=note)
        except (OSError, sqlite3.Error) as e:
            err = storage_error(e, f"storing the result of stage {stage!r}", self.root)
            if err is not None:
                raise err from e
            if isinstance(e, sqlite3.DatabaseError):
                raise StoreIndexError(self._damaged_index_text(e)) from e
            raise

    def _put_files_unchecked(self, key: str, files: dict[str, bytes], *, stage: str, version: str,
                             params: dict, inputs: dict[str, str], elapsed_s: float,
                             fingerprint: dict | None, identity: str | None,
                             note: str | None) -> str:
        _check_key(key)
        if not isinstance(stage, str) or not stage:
            raise InputError("stage", stage, "a non-empty string")
        version = str(version)
        if not isinstance(params, dict):
            raise InputError("params", params, "a dict of plain parameters")
        if not isinstance(inputs, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in inputs.items()):
            raise InputError("inputs", inputs, "a dict mapping argument names to artifact keys")
        try:
            elapsed = float(elapsed_s)
        except (TypeError, ValueError):
            raise InputError("elapsed_s", elapsed_s, "a number of seconds") from None
        if _RECORD in files:
            raise InputError("files", sorted(files), f"artifact files not named {_RECORD!r}")
        params_json = _dump_plain(params)
        hashes = {name: _sha256(data) for name, data in files.items()}
        fp_json = json.dumps(fingerprint, sort_keys=True) if fingerprint is not None else None
        created = _now_iso()
        record = {"schema": _RECORD_SCHEMA, "key": key, "stage": stage, "version": version,
                  "params": params_json, "inputs": inputs, "created": created,
                  "elapsed_s": elapsed, "files": hashes, "fingerprint": fingerprint,
                  "identity": identity, "note": note}
        files = {**files, _RECORD: json.dumps(record, sort_keys=True).encode()}

        # 1. stage the files outside the lock, fsynced
        staging = self.tmp / f"{key}.{os.getpid()}.{uuid.uuid4().hex[:12]}"
        staging.mkdir(parents=True)
        try:
            for name, data in files.items():
                with open(staging / name, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            _fsync_dir(staging)
            target = self.blob_dir(key)
            target.parent.mkdir(parents=True, exist_ok=True)

            # 2. under the write lock: rename into place, then index
            with self._tx() as c:
                row = c.execute("SELECT files FROM artifacts WHERE key=?", (key,)).fetchone()
                if row is not None and self._blob_intact(key, json.loads(row[0])):
                    return key  # already stored (another writer or an earlier run)
                if target.exists():  # orphan of a crashed writer, or a corrupt blob
                    trash = self.tmp / f"trash.{key}.{uuid.uuid4().hex[:12]}"
                    os.replace(target, trash)
                    shutil.rmtree(trash, ignore_errors=True)
                os.replace(staging, target)
                _fsync_dir(target.parent)
                verb = "INSERT OR IGNORE" if row is None else "INSERT OR REPLACE"
                c.execute(f"{verb} INTO artifacts (key, stage, version, params, inputs, created, "
                          "elapsed_s, files, fingerprint, identity, note) "
                          "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                          (key, stage, version, params_json, json.dumps(inputs), created,
                           elapsed, json.dumps(hashes, sort_keys=True), fp_json, identity, note))
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return key

    def _blob_intact(self, key: str, hashes: dict[str, str]) -> bool:
        d = self.blob_dir(key)
        for name, h in hashes.items():
            try:
                if _sha256((d / name).read_bytes()) != h:
                    return False
            except OSError:
                return False
        return True

    _ART_COLS = "key, stage, version, params, inputs, created, elapsed_s, files, fingerprint, " \
                "identity, note"

    def _row(self, key: str) -> tuple | None:
        return self._conn().execute(f"SELECT {self._ART_COLS} FROM artifacts WHERE key=?",
                                    (key,)).fetchone()

    def _require_row(self, key: str) -> tuple:
        _check_key(key)
        row = self._row(key)
        if row is None:
            n = self._conn().execute("SELECT COUNT(*) FROM artifacts").fetchone()[0]
            raise InputError("key", key, "the key of a stored artifact",
                             hint=f"the store {self.root} holds {n} artifacts; "
                                  "use Store.find(prefix) or Store.keys() to look them up")
        return row

    def get(self, key: str) -> Any:
        """Load the artifact stored under ``key``, verifying the sha256 of each of its files.

        Raises
        ------
        InputError
            ``key`` is not in the index.
        StoreCorruptionError
            A file of the blob is missing or its content does not match the recorded hash.
        """
        row = self._require_row(key)
        hashes = json.loads(row[7])
        d = self.blob_dir(key)
        files: dict[str, bytes] = {}
        for name, h in hashes.items():
            path = d / name
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise StoreCorruptionError(
                    f"artifact {key}: file {name} is missing ({path}); rerun the stage that "
                    "produced it (the next put of this key repairs the entry)") from None
            except OSError as e:
                raise StoreCorruptionError(f"artifact {key}: file {name} cannot be read "
                                           f"({path}): {e}") from e
            got = _sha256(data)
            if got != h:
                raise StoreCorruptionError(
                    f"artifact {key}: file {name} does not match its recorded sha256 "
                    f"(recorded {h[:16]}..., on disk {got[:16]}...; {path}); rerun the stage "
                    "that produced it (the next put of this key repairs the entry)")
            files[name] = data
        return codec.from_files(files)

    def verify(self, key: str) -> bool:
        """True if ``key`` is stored and every file of its blob matches its recorded sha256."""
        _check_key(key)
        row = self._row(key)
        return row is not None and self._blob_intact(key, json.loads(row[7]))

    def has(self, key: str) -> bool:
        """True if ``key`` has an index row and its blob folder exists (hashes not checked)."""
        _check_key(key)
        if self._conn().execute("SELECT 1 FROM artifacts WHERE key=?", (key,)).fetchone() is None:
            return False
        return self.blob_dir(key).is_dir()

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(_KEY_RE.match(key)) and self.has(key)

    def record(self, key: str) -> dict:
        """Provenance record of one artifact.

        Returns
        -------
        dict
            ``key``, ``stage``, ``version``, ``params`` (decoded), ``inputs`` (argument name ->
            key), ``created`` (ISO 8601, UTC), ``elapsed_s``, ``files`` (file name -> sha256),
            ``fingerprint`` (the code fingerprint: ``code``, ``modules``, ``engines``; None for
            results stored before fingerprints existed), ``identity`` and ``note`` (why it was
            computed).
        """
        return self._record_of(self._require_row(key))

    @staticmethod
    def _record_of(row: tuple) -> dict:
        return {"key": row[0], "stage": row[1], "version": row[2], "params": _load_plain(row[3]),
                "inputs": json.loads(row[4]), "created": row[5], "elapsed_s": row[6],
                "files": json.loads(row[7]),
                "fingerprint": json.loads(row[8]) if row[8] else None,
                "identity": row[9], "note": row[10]}

    def records_of_identity(self, identity: str) -> list[dict]:
        """Records of every stored result of the recipe ``identity`` (any code), newest first."""
        rows = self._conn().execute(f"SELECT {self._ART_COLS} FROM artifacts WHERE identity=? "
                                    "ORDER BY rowid DESC", (identity,)).fetchall()
        return [self._record_of(r) for r in rows]

    def provenance(self, key: str) -> list[dict]:
        """The record of ``key`` and of every input, transitively (depth-first, each once).

        An input whose key is not in the index appears as ``{"key": k, "missing": True}``.
        """
        out: list[dict] = []
        seen: set[str] = set()

        def visit(k: str) -> None:
            if k in seen:
                return
            seen.add(k)
            if self._row(k) is None:
                out.append({"key": k, "missing": True})
                return
            rec = self.record(k)
            out.append(rec)
            for dep in rec["inputs"].values():
                visit(dep)

        self._require_row(key)
        visit(key)
        return out

    def find(self, prefix: str) -> str:
        """The unique stored key starting with ``prefix``.

        Raises
        ------
        InputError
            No key or several keys start with ``prefix`` (the candidates are listed).
        """
        if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
            raise InputError("prefix", prefix, "a key or the start of one ([0-9A-Za-z_-])")
        rows = self._conn().execute("SELECT key, stage FROM artifacts WHERE key GLOB ? ORDER BY key "
                                    "LIMIT 11", (prefix + "*",)).fetchall()
        if len(rows) == 1:
            return rows[0][0]
        if not rows:
            n = self._conn().execute("SELECT COUNT(*) FROM artifacts").fetchone()[0]
            raise InputError("key", prefix, "the start of a stored artifact's key",
                             hint=f"no match among the {n} artifacts in {self.root}")
        cands = ", ".join(f"{k[:16]} ({s})" for k, s in rows[:10]) + (", ..." if len(rows) > 10 else "")
        raise InputError("key", prefix, "a prefix matching exactly one artifact",
                         hint=f"ambiguous: {cands}; give more characters")

    def keys(self, stage: str | None = None) -> list[str]:
        """Stored keys in insertion order, optionally only those of one ``stage``."""
        if stage is None:
            rows = self._conn().execute("SELECT key FROM artifacts ORDER BY rowid").fetchall()
        else:
            rows = self._conn().execute("SELECT key FROM artifacts WHERE stage=? ORDER BY rowid",
                                        (stage,)).fetchall()
        return [r[0] for r in rows]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM artifacts").fetchone()[0]

    # -- runs ------------------------------------------------------------------------------------
    def add_run(self, ladder: str, settings: dict, targets: dict[str, str], *,
                name: str | None = None) -> str:
        """Record a run of ``ladder``; return its id (``YYYYmmdd-HHMMSS-xxxxxx``).

        Parameters
        ----------
        ladder : str
            Name of the ladder that was run.
        settings : dict
            The settings it ran with (encodable by the codec).
        targets : dict[str, str]
            Target name -> key of the stored artifact; every key must be in the store.
        name : str, optional
            A human name for the run (``get_run`` accepts it as a reference).
        """
        if not isinstance(ladder, str) or not ladder:
            raise InputError("ladder", ladder, "a non-empty string")
        if not isinstance(settings, dict):
            raise InputError("settings", settings, "a dict")
        if not isinstance(targets, dict) or not all(isinstance(k, str) for k in targets):
            raise InputError("targets", targets, "a dict mapping target names to artifact keys")
        for tname, k in targets.items():
            if not (isinstance(k, str) and _KEY_RE.match(k) and self._row(k) is not None):
                raise InputError(f"targets[{tname!r}]", k, "the key of a stored artifact")
        if name is not None and not isinstance(name, str):
            raise InputError("name", name, "a string or None")
        settings_json = _dump_plain(settings)
        targets_json = json.dumps(targets)
        for _ in range(10):
            now = _dt.datetime.now(_dt.timezone.utc)
            h = _sha256(f"{ladder}|{settings_json}|{targets_json}|{time.time_ns()}|"
                        f"{uuid.uuid4().hex}".encode())
            run_id = f"{now:%Y%m%d-%H%M%S}-{h[:6]}"
            created = now.isoformat(timespec="milliseconds")
            try:
                with self._tx() as c:
                    c.execute("INSERT INTO runs (run_id, ladder, name, settings, targets, created) "
                              "VALUES (?,?,?,?,?,?)", (run_id, ladder, name, settings_json,
                                                       targets_json, created))
                    # the run's own file, so that a lost index can be rebuilt with its runs
                    atomic_write(self.runs_dir / f"{run_id}.json", json.dumps(
                        {"run_id": run_id, "ladder": ladder, "name": name,
                         "settings": settings_json, "targets": targets, "created": created},
                        sort_keys=True))
                return run_id
            except sqlite3.IntegrityError:  # pragma: no cover - id collision, retry
                continue
            except (OSError, sqlite3.Error) as e:
                err = storage_error(e, f"recording the run of {ladder}", self.root)
                if err is not None:
                    raise err from e
                raise
        raise StoreError("could not allocate a unique run id")  # pragma: no cover

    @staticmethod
    def _run_dict(row: tuple) -> dict:
        return {"run_id": row[0], "ladder": row[1], "name": row[2],
                "settings": _load_plain(row[3]), "targets": json.loads(row[4]), "created": row[5]}

    _RUN_COLS = "run_id, ladder, name, settings, targets, created"

    def get_run(self, ref: str) -> dict:
        """Look up a run.

        Parameters
        ----------
        ref : str
            A run id, a unique prefix of one, ``"latest"``, a ladder name (its latest run) or a
            run name (its latest run).

        Returns
        -------
        dict
            ``run_id``, ``ladder``, ``name``, ``settings``, ``targets``, ``created``.

        Raises
        ------
        InputError
            ``ref`` matches no run or several (the known runs are listed).
        """
        c = self._conn()
        cols = self._RUN_COLS
        if not isinstance(ref, str) or not ref:
            raise InputError("run", ref, "a run id (or unique prefix), 'latest' or a ladder name",
                             hint=self._known_runs_hint())
        queries = [("SELECT {} FROM runs WHERE run_id=?", ref)]
        if ref == "latest":
            queries.insert(0, ("SELECT {} FROM runs ORDER BY seq DESC LIMIT 1", None))
        queries += [("SELECT {} FROM runs WHERE ladder=? ORDER BY seq DESC LIMIT 1", ref),
                    ("SELECT {} FROM runs WHERE name=? ORDER BY seq DESC LIMIT 1", ref)]
        for sql, arg in queries:
            row = c.execute(sql.format(cols), () if arg is None else (arg,)).fetchone()
            if row is not None:
                return self._run_dict(row)
        if _PREFIX_RE.match(ref):
            rows = c.execute(f"SELECT {cols} FROM runs WHERE run_id GLOB ? ORDER BY seq",
                             (ref + "*",)).fetchall()
            if len(rows) == 1:
                return self._run_dict(rows[0])
            if len(rows) > 1:
                raise InputError("run", ref, "a run id prefix matching exactly one run",
                                 hint="ambiguous: " + ", ".join(r[0] for r in rows[:10]))
        raise InputError("run", ref, "a run id (or unique prefix), 'latest' or a ladder name",
                         hint=self._known_runs_hint())

    def _known_runs_hint(self) -> str:
        rows = self._conn().execute("SELECT run_id, ladder FROM runs ORDER BY seq DESC LIMIT 11"
                                    ).fetchall()
        if not rows:
            return f"no runs are recorded in {self.root}"
        listed = ", ".join(f"{r} ({lad})" for r, lad in rows[:10])
        more = ", ..." if len(rows) > 10 else ""
        return f"known runs, newest first: {listed}{more}"

    def list_runs(self) -> list[dict]:
        """All recorded runs, oldest first (dicts as returned by :meth:`get_run`)."""
        rows = self._conn().execute(f"SELECT {self._RUN_COLS} FROM runs ORDER BY seq").fetchall()
        return [self._run_dict(r) for r in rows]

    # -- leases (several runs sharing a store) ----------------------------------------------------
    def claim(self, key: str, owner: str, *, label: str = "", stale_after_s: float = 120.0
              ) -> dict | None:
        """Claim the computation of ``key`` for ``owner``; None if claimed, else the holder.

        A lease held by ``owner`` already is renewed.  A lease whose heartbeat is older than
        ``stale_after_s`` seconds, or whose holder process on this host is gone, is taken over
        (the holder crashed).  The holder returned is a dict: ``owner``, ``host``, ``pid``,
        ``label``, ``acquired``, ``heartbeat`` (Unix seconds).
        """
        import socket

        _check_key(key)
        host = socket.gethostname()
        now = time.time()
        with self._tx() as c:
            row = c.execute("SELECT owner, host, pid, label, acquired, heartbeat FROM leases "
                            "WHERE key=?", (key,)).fetchone()
            if row is not None and row[0] != owner:
                holder = dict(zip(("owner", "host", "pid", "label", "acquired", "heartbeat"), row))
                dead = row[1] == host and not _pid_alive(int(row[2]))
                if not dead and now - float(row[5]) <= stale_after_s:
                    return holder
            c.execute("INSERT OR REPLACE INTO leases (key, owner, host, pid, label, acquired, "
                      "heartbeat) VALUES (?,?,?,?,?,?,?)",
                      (key, owner, host, os.getpid(), label, now, now))
        return None

    def heartbeat(self, owner: str) -> None:
        """Renew every lease of ``owner``."""
        with self._tx() as c:
            c.execute("UPDATE leases SET heartbeat=? WHERE owner=?", (time.time(), owner))

    def release(self, owner: str, key: str | None = None) -> None:
        """Drop ``owner``'s lease of ``key`` (all of its leases if ``key`` is None)."""
        with self._tx() as c:
            if key is None:
                c.execute("DELETE FROM leases WHERE owner=?", (owner,))
            else:
                c.execute("DELETE FROM leases WHERE owner=? AND key=?", (owner, key))

    def lease_of(self, key: str) -> dict | None:
        """The current lease of ``key`` (see :meth:`claim`), or None."""
        row = self._conn().execute("SELECT owner, host, pid, label, acquired, heartbeat FROM "
                                   "leases WHERE key=?", (key,)).fetchone()
        return None if row is None else dict(zip(("owner", "host", "pid", "label", "acquired",
                                                   "heartbeat"), row))

    # -- verification and repair -----------------------------------------------------------------
    def check(self) -> dict:
        """Verify every artifact of the index against its blob, and every blob against the index.

        Returns
        -------
        dict
            ``ok`` (keys whose files match their hashes), ``corrupt`` (key -> what is wrong),
            ``unindexed`` (blob folders with a ``record.json`` but no index row: rebuild adds
            them), ``orphans`` (blob folders that cannot be described: no readable record),
            ``runs`` (number of runs in the index).
        """
        ok: list[str] = []
        corrupt: dict[str, str] = {}
        rows = self._conn().execute("SELECT key, files FROM artifacts ORDER BY rowid").fetchall()
        indexed = set()
        for key, files in rows:
            indexed.add(key)
            bad = self._blob_problem(key, json.loads(files))
            if bad:
                corrupt[key] = bad
            else:
                ok.append(key)
        unindexed: list[str] = []
        orphans: list[str] = []
        for d in self._blob_dirs():
            if d.name in indexed:
                continue
            (unindexed if self._read_record(d) is not None else orphans).append(d.name)
        n_runs = self._conn().execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        return {"ok": ok, "corrupt": corrupt, "unindexed": unindexed, "orphans": orphans,
                "runs": n_runs}

    def _blob_problem(self, key: str, hashes: dict[str, str]) -> str:
        d = self.blob_dir(key)
        for name, h in hashes.items():
            try:
                if _sha256((d / name).read_bytes()) != h:
                    return f"{name} does not match its recorded sha256"
            except FileNotFoundError:
                return f"{name} is missing"
            except OSError as e:
                return f"{name} cannot be read ({e})"
        return ""

    def _blob_dirs(self) -> list[Path]:
        out: list[Path] = []
        try:
            subs = sorted(self.blobs.iterdir())
        except OSError:
            return out
        for sub in subs:
            if sub.is_dir() and len(sub.name) == 2:
                out.extend(sorted(p for p in sub.iterdir() if p.is_dir() and _KEY_RE.match(p.name)))
        return out

    @staticmethod
    def _read_record(d: Path) -> dict | None:
        try:
            rec = json.loads((d / _RECORD).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(rec, dict) or rec.get("schema") != _RECORD_SCHEMA or rec.get("key") != d.name:
            return None
        return rec

    @classmethod
    def rebuild(cls, root: str | os.PathLike = ".scaleladder") -> dict:
        """Rebuild the index of the store at ``root`` from its self-describing blobs and runs.

        A damaged or partial index is kept beside the new one as
        ``index.sqlite.damaged-<UTC time>``; the new index holds every blob whose files match the
        hashes in its ``record.json`` and every run in ``runs/`` whose targets are all present.

        Returns
        -------
        dict
            ``artifacts`` (number indexed), ``runs`` (number indexed), ``skipped`` (blob folder
            -> why it was left out: no record, or files not matching it), ``runs_skipped``.
        """
        root_p = Path(root).expanduser().absolute()
        index = root_p / "index.sqlite"
        if not (root_p / "blobs").is_dir():
            raise StoreError(f"no store at {root_p} (no blobs/ folder): nothing to rebuild")
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        try:
            for suffix in ("", "-wal", "-shm"):
                p = Path(str(index) + suffix)
                if p.exists():
                    os.replace(p, Path(f"{index}.damaged-{stamp}{suffix}"))
        except OSError as e:
            err = storage_error(e, f"moving the old index of {root_p} aside", root_p)
            raise (err or StoreError(f"cannot move the old index aside: {e}")) from e
        store = cls.__new__(cls)
        store.root, store.blobs, store.tmp = root_p, root_p / "blobs", root_p / "tmp"
        store.runs_dir, store.index_path, store.readonly = root_p / "runs", index, False
        store._local = threading.local()
        try:
            store_id = json.loads((root_p / "store.json").read_text())["store_id"]
        except (OSError, ValueError, KeyError, TypeError):
            store_id = uuid.uuid4().hex
            atomic_write(root_p / "store.json", json.dumps({"store_id": store_id,
                                                            "created": _now_iso(),
                                                            "format": _RECORD_SCHEMA}))
        with store._tx() as c:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            c.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('store_id', ?)", (store_id,))
        skipped: dict[str, str] = {}
        n_art = 0
        for d in store._blob_dirs():
            rec = cls._read_record(d)
            if rec is None:
                skipped[d.name] = "no readable record.json (written before records existed, or damaged)"
                continue
            bad = store._blob_problem(d.name, rec["files"])
            if bad:
                skipped[d.name] = bad
                continue
            with store._tx() as c:
                c.execute("INSERT OR REPLACE INTO artifacts (key, stage, version, params, inputs, "
                          "created, elapsed_s, files, fingerprint, identity, note) "
                          "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                          (rec["key"], rec["stage"], str(rec["version"]), rec["params"],
                           json.dumps(rec["inputs"]), rec["created"], float(rec["elapsed_s"]),
                           json.dumps(rec["files"], sort_keys=True),
                           json.dumps(rec["fingerprint"], sort_keys=True)
                           if rec.get("fingerprint") is not None else None,
                           rec.get("identity"), rec.get("note")))
            n_art += 1
        runs_skipped: dict[str, str] = {}
        n_runs = 0
        run_files = sorted(store.runs_dir.glob("*.json")) if store.runs_dir.is_dir() else []
        runs = []
        for f in run_files:
            try:
                runs.append(json.loads(f.read_text()))
            except (OSError, ValueError) as e:
                runs_skipped[f.name] = f"unreadable ({e})"
        runs.sort(key=lambda r: (r.get("created", ""), r.get("run_id", "")))
        for r in runs:
            missing = [t for t, k in r.get("targets", {}).items() if store._row(k) is None]
            if missing:
                runs_skipped[r.get("run_id", "?")] = "targets not in the store: " + ", ".join(missing)
                continue
            with store._tx() as c:
                c.execute("INSERT OR IGNORE INTO runs (run_id, ladder, name, settings, targets, "
                          "created) VALUES (?,?,?,?,?,?)",
                          (r["run_id"], r["ladder"], r.get("name"), r["settings"],
                           json.dumps(r["targets"]), r["created"]))
            n_runs += 1
        store.close()
        return {"artifacts": n_art, "runs": n_runs, "skipped": skipped,
                "runs_skipped": runs_skipped}


def _pid_alive(pid: int) -> bool:
    """True if a process ``pid`` exists on this host (zombies count as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
