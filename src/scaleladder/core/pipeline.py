"""Stages, DAGs of stages and the runner that computes them into a :class:`~.store.Store`.

A *stage* is a plain module-level function declared with :func:`stage`::

    @stage("fit", version="2")
    def fit(dataset, form="StillingerWeber", n_members=8):
        ...

``fit.bind(dataset=dft_node, n_members=16)`` returns a :class:`Node`: the stage, its plain
parameters and its dependencies (other nodes, or lists/tuples of nodes).  A node's
:attr:`Node.key` is the sha256 of the stage name, its version, the canonical JSON of its parameters
and the keys of its dependencies by argument name, so a node's result is content-addressed:
changing a parameter or a version changes its key and the keys of everything downstream, and nothing
else.  Nodes are immutable and can only depend on nodes that exist already, so a graph of nodes is
acyclic by construction.

:class:`Runner` computes a dict of target nodes: it collects the DAG, loads what the store already
holds, submits the rest to an executor as their dependencies complete (independent nodes run
concurrently), and the driver writes each result to the store as soon as it arrives.  Workers only
compute.  A stage may call :func:`report_progress` to move the progress bar while it runs.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextvars
import hashlib
import importlib
import math
import os
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from . import codec
from .errors import ExecutorError, InputError, MissingExtraError, ScaleLadderError, StoreError
from .store import Store

__all__ = ["stage", "Stage", "Node", "Runner", "RunStats", "report_progress", "checkpoint_dir",
           "scratch_dir", "run_context", "parallel_map", "on_cluster"]

_KEY_SCHEMA = "scaleladder.node/2"
_STAGES: dict[str, tuple[str, str]] = {}  # stage name -> (module, qualname) of its function


# ----------------------------------------------------------------------------------------------
# progress hook
# ----------------------------------------------------------------------------------------------
_PROGRESS_HOOK: contextvars.ContextVar[Callable[[float, str], None] | None] = \
    contextvars.ContextVar("scaleladder_progress_hook", default=None)


def report_progress(fraction: float, message: str = "") -> None:
    """Report how far the running stage has got (for the runner's progress bar).

    Parameters
    ----------
    fraction : float
        Fraction of the stage done, clipped to [0, 1]; a non-finite value is ignored.
    message : str, optional
        Short text shown next to the stage label.

    Notes
    -----
    A no-op unless the stage runs in-process (``executor="local"``) under a :class:`Runner` with
    ``progress=True``; stages may therefore call it unconditionally.
    """
    hook = _PROGRESS_HOOK.get()
    if hook is None:
        return
    try:
        f = float(fraction)
    except (TypeError, ValueError):
        return
    if not math.isfinite(f):
        return
    hook(min(max(f, 0.0), 1.0), str(message))


# ----------------------------------------------------------------------------------------------
# Stage and Node
# ----------------------------------------------------------------------------------------------
def _stage_by_ref(module: str, qualname: str, name: str, version: str) -> "Stage":
    """Unpickling helper: find a stage by the import path of its function."""
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, Stage) or obj.name != name or obj.version != version:
        raise StoreError(f"{module}.{qualname} is not the stage {name!r} version {version!r} "
                         "(the worker imports different code than the driver)")
    return obj


class Stage:
    """A function declared as a pipeline stage (see :func:`stage`).

    Calling a ``Stage`` calls the plain function; :meth:`bind` makes a :class:`Node`.

    Attributes
    ----------
    fn : callable
        The plain function.
    name : str
        Stage name (part of every key).
    version : str
        Stage version (part of every key).  Results are recomputed when the code the stage runs
        changes anyway (its :attr:`fingerprint` enters every key); the version marks a change of
        meaning, and old results of another version stay in the store under their own keys.
    """

    def __init__(self, fn: Callable[..., Any], name: str, version: str = "1", *,
                 engine_param: str | None = None, engines: Any = None):
        import inspect

        if not callable(fn):
            raise InputError("fn", fn, "a function")
        if not isinstance(name, str) or not name.strip():
            raise InputError("name", name, "a non-empty stage name")
        if not isinstance(version, (str, int)) or isinstance(version, bool):
            raise InputError("version", version, "a version string such as '1' or '2.1'")
        self.fn = fn
        self.name = name
        self.version = str(version)
        self.signature = inspect.signature(fn)
        if (engine_param is None) != (engines is None):
            raise InputError("engine_param", engine_param, "given together with engines (an "
                             "EngineTable), or neither")
        if engine_param is not None and engine_param not in self.signature.parameters:
            raise InputError("engine_param", engine_param, f"a parameter of {name}")
        if engines is not None:
            from .fingerprint import EngineTable

            if not isinstance(engines, EngineTable):
                raise InputError("engines", engines, "an EngineTable (e.g. "
                                 "scaleladder.workflows.calculators.ENGINE_TABLE)")
        self.engine_param = engine_param
        self.engines = engines
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", name)
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__wrapped__ = fn
        ref = (self.__module__.rsplit(".", 1)[-1], self.__qualname__)
        old = _STAGES.get(name)
        if old is not None and old != ref:
            warnings.warn(f"stage name {name!r} is used by two functions ({'.'.join(old)} and "
                          f"{'.'.join(ref)}): their results would share keys; give each stage a "
                          "unique name", UserWarning, stacklevel=3)
        _STAGES[name] = ref

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    @property
    def fingerprint(self) -> dict:
        """The code fingerprint of this stage (see :mod:`scaleladder.core.fingerprint`): with
        the code of every engine it can reach."""
        from .fingerprint import stage_fingerprint

        return stage_fingerprint(self.fn)

    def engine_of(self, params: Mapping[str, Any]) -> str | None:
        """The engine a node runs, when the stage declares its engine parameter and the node
        binds it to a plain spec (``{"engine": name, ...}`` of a known engine); else None."""
        if self.engine_param is None:
            return None
        spec = params.get(self.engine_param)
        if isinstance(spec, Mapping) and spec.get("engine") in self.engines.modules:
            return str(spec["engine"])
        return None

    def fingerprint_for(self, engine: str | None) -> dict:
        """The fingerprint of a node that runs ``engine`` (the registry not followed into the
        other engines' code; :class:`~scaleladder.core.fingerprint.EngineTable`), or of any
        node (``None``: :attr:`fingerprint`)."""
        if engine is None:
            return self.fingerprint
        from .fingerprint import stage_fingerprint

        return stage_fingerprint(self.fn, prune={self.engines.module: self.engines.others(engine)})

    def __repr__(self) -> str:
        return f"<Stage {self.name!r} v{self.version} ({self.__module__}.{self.__qualname__})>"

    def __reduce__(self):
        if "<locals>" in self.__qualname__:
            raise StoreError(f"stage {self.name!r} is defined inside a function "
                             f"({self.__qualname__}) and cannot be sent to another process: "
                             "define it at module level or run with executor='local'")
        return (_stage_by_ref, (self.__module__, self.__qualname__, self.name, self.version))

    def importable(self) -> bool:
        """True if a worker process can import this stage by its module and qualified name."""
        if "<locals>" in self.__qualname__:
            return False
        try:
            return _stage_by_ref(self.__module__, self.__qualname__, self.name, self.version) is self
        except Exception:
            return False

    def bind(self, **kwargs: Any) -> "Node":
        """Bind arguments and return a :class:`Node`.

        Parameters
        ----------
        **kwargs
            Arguments of the stage function: plain parameters (anything
            :func:`scaleladder.core.codec.canonical_json` accepts), or :class:`Node` s
            (dependencies: the function receives their computed values), or lists/tuples whose
            items are all nodes (the function receives a list/tuple of values).

        Raises
        ------
        InputError
            An argument the function does not take, a required one missing, a parameter that
            cannot be hashed canonically, or a container mixing nodes and plain values.
        """
        try:
            self.signature.bind(**kwargs)
        except TypeError as e:
            raise InputError(f"{self.name}.bind", sorted(kwargs), f"arguments matching "
                             f"{self.name}{self.signature}", hint=str(e)) from None
        params: dict[str, Any] = {}
        deps: dict[str, Node | tuple[Node, ...] | list[Node]] = {}
        for arg, value in kwargs.items():
            if isinstance(value, Node):
                deps[arg] = value
            elif isinstance(value, (list, tuple)) and value and any(isinstance(v, Node) for v in value):
                if not all(isinstance(v, Node) for v in value):
                    raise InputError(f"{self.name}.{arg}", value, "either only Nodes or no Nodes",
                                     hint="a dependency group must be a list/tuple of Nodes; pass "
                                          "plain values as separate parameters")
                deps[arg] = type(value)(value)
            else:
                params[arg] = value
        return Node(self, params, deps)


def stage(name: str, version: str = "1", *, engine_param: str | None = None,
          engines: Any = None) -> Callable[[Callable[..., Any]], Stage]:
    """Decorator declaring a module-level function as a pipeline :class:`Stage`.

    Parameters
    ----------
    name : str
        Stage name, unique in the project (it enters every key).
    version : str, default "1"
        Part of every key.  Code changes are detected without it (the stage's code fingerprint
        enters its key); bump it to mark a change of meaning.
    engine_param : str, optional
        The parameter that holds the stage's calculator spec, when the stage runs its engine
        only through that spec and a registry (``engines``).  A node that binds it to a plain
        spec depends on that engine's code only, not on every engine of the registry.
    engines : EngineTable, optional
        The registry's table (:data:`scaleladder.workflows.calculators.ENGINE_TABLE`).

    Examples
    --------
    >>> @stage("square", version="1")
    ... def square(x):
    ...     return x * x
    >>> square(3)
    9
    >>> square.bind(x=3).key[:8]                       # doctest: +SKIP
    '5d0e2a1c'
    """
    if callable(name) and not isinstance(name, str):
        raise InputError("stage", name, "a stage name: use @stage('name'), not bare @stage")

    def deco(fn: Callable[..., Any]) -> Stage:
        return Stage(fn, name, version, engine_param=engine_param, engines=engines)

    return deco


class Node:
    """One application of a stage to parameters and dependencies: a vertex of the DAG.

    Immutable.  Build nodes with :meth:`Stage.bind`; give them a human label for progress
    displays with :meth:`with_label`.

    Attributes
    ----------
    stage : Stage
    params : dict
        Plain parameters (argument name -> value).
    deps : dict
        Argument name -> :class:`Node` (or list/tuple of nodes).
    label : str
        Human label (default: the stage name).
    key : str
        sha256 hex digest of stage name, version, canonical params, the stage's code fingerprint
        (its code and engine versions) and the dependency keys.
    identity : str
        The same without the code: what was asked for, whatever code computes it.  Results of
        one identity computed by different code are compared to say why a stage reran.
    fingerprint : dict
        The stage's code fingerprint when the node was made (what its key covers and what the
        store records).
    """

    __slots__ = ("stage", "params", "deps", "label", "key", "identity", "fingerprint")

    def __init__(self, stage: Stage, params: Mapping[str, Any], deps: Mapping[str, Any],
                 label: str | None = None):
        if not isinstance(stage, Stage):
            raise InputError("stage", stage, "a Stage (declare the function with @stage)")
        params = dict(params)
        deps = dict(deps)
        for arg, v in params.items():
            try:
                codec.canonical_json(v)
            except ScaleLadderError as e:
                raise InputError(f"{stage.name}.{arg}", v, "a plain parameter (numbers, strings, "
                                 "lists, tuples, dicts, NumPy arrays, registered types) or a Node",
                                 hint=str(e)) from None
        dep_keys: dict[str, Any] = {}
        dep_ids: dict[str, Any] = {}
        for arg, d in deps.items():
            if isinstance(d, Node):
                dep_keys[arg] = d.key
                dep_ids[arg] = d.identity
            elif isinstance(d, (list, tuple)) and all(isinstance(x, Node) for x in d):
                dep_keys[arg] = [x.key for x in d]
                dep_ids[arg] = [x.identity for x in d]
            else:
                raise InputError(f"{stage.name}.{arg}", d, "a Node or a list/tuple of Nodes")
        recipe = {"schema": _KEY_SCHEMA, "stage": stage.name, "version": stage.version,
                  "params": params}
        identity = hashlib.sha256(codec.canonical_json({**recipe, "deps": dep_ids}).encode()
                                  ).hexdigest()
        fingerprint = stage.fingerprint_for(stage.engine_of(params))
        payload = {**recipe, "deps": dep_keys, "code": fingerprint["code"]}
        key = hashlib.sha256(codec.canonical_json(payload).encode()).hexdigest()
        if label is not None and not isinstance(label, str):
            raise InputError("label", label, "a string")
        set_ = object.__setattr__
        set_(self, "stage", stage)
        set_(self, "params", params)
        set_(self, "deps", deps)
        set_(self, "label", label or stage.name)
        set_(self, "key", key)
        set_(self, "identity", identity)
        set_(self, "fingerprint", fingerprint)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Node is immutable: bind a new one")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Node is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"<Node {self.label!r} stage={self.stage.name!r} key={self.key[:12]}>"

    def with_label(self, label: str) -> "Node":
        """The same node (same key) with a human ``label`` for progress displays."""
        return Node(self.stage, self.params, self.deps, label=label)

    def dependencies(self) -> list["Node"]:
        """Direct dependencies, flattened, in argument order."""
        out: list[Node] = []
        for d in self.deps.values():
            out.extend(d if isinstance(d, (list, tuple)) else [d])
        return out

    def input_keys(self) -> dict[str, str]:
        """Argument name -> dependency key (groups as ``name[i]``), as stored in the record."""
        out: dict[str, str] = {}
        for arg, d in self.deps.items():
            if isinstance(d, Node):
                out[arg] = d.key
            else:
                for i, x in enumerate(d):
                    out[f"{arg}[{i}]"] = x.key
        return out


# ----------------------------------------------------------------------------------------------
# Runner
# ----------------------------------------------------------------------------------------------
@dataclass
class RunStats:
    """What the last :meth:`Runner.run` did.

    Attributes
    ----------
    computed, reused : int
        Nodes computed in this run / loaded from the store (including results another run
        sharing the store computed while this one waited for them: ``waited``).
    waited : int
        Nodes another run was computing when this one needed them; their results were reused.
    nodes : list of dict
        One entry per node visited, in completion order: ``key``, ``label``, ``stage``,
        ``status`` ("computed" or "reused"), ``elapsed_s`` (compute time; for reused nodes the
        time recorded when they were computed) and, for computed nodes, ``reason`` (why it was
        computed: ``None`` for a first computation, else e.g. what code changed).
    targets : dict
        Target name -> key (ready for :meth:`Store.add_run`).
    wall_s : float
        Wall-clock seconds of the run.
    """

    computed: int = 0
    reused: int = 0
    waited: int = 0
    nodes: list[dict] = field(default_factory=list)
    targets: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0

    def by_stage(self) -> dict[str, float]:
        """Stage name -> total compute seconds of the nodes computed in this run."""
        out: dict[str, float] = {}
        for n in self.nodes:
            if n["status"] == "computed":
                out[n["stage"]] = out.get(n["stage"], 0.0) + n["elapsed_s"]
        return out

    def reasons(self) -> list[tuple[str, str]]:
        """(label, reason) of every node recomputed for a reason (code change, corrupt blob, ...)."""
        return [(n["label"], n["reason"]) for n in self.nodes
                if n["status"] == "computed" and n.get("reason")]


# ----------------------------------------------------------------------------------------------
# worker side
# ----------------------------------------------------------------------------------------------
_RUN_CONTEXT: contextvars.ContextVar[dict | None] = \
    contextvars.ContextVar("scaleladder_run_context", default=None)


def _usable_dir(path: str) -> "os.PathLike | None":
    from pathlib import Path

    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        warnings.warn(f"cannot create the folder {p} ({e}); the stage runs without it",
                      UserWarning, stacklevel=3)
        return None
    return p


def checkpoint_dir() -> "os.PathLike | None":
    """The folder where the running stage keeps its checkpoints, or None outside a run.

    Under a :class:`Runner` every stage gets ``<store>/checkpoints/<node key>/`` (created on first
    use by the worker); a stage that checkpoints there resumes after a kill, whichever ladder runs
    it and without any environment variable.  The runner deletes the folder once the stage's
    result is stored.  None when the stage is called directly, or when the worker cannot create
    the folder (a Dask worker on a machine that does not see the store): the stage then runs
    without checkpoints.
    """
    ctx = _RUN_CONTEXT.get()
    if not ctx or not ctx.get("checkpoint"):
        return None
    return _usable_dir(ctx["checkpoint"])


def scratch_dir(name: str) -> "os.PathLike | None":
    """A folder ``<store>/scratch/<name>/`` shared by the stages of every run on this store.

    For data that speeds stages up without changing their results (e.g. converged SCF densities
    as initial guesses); None outside a run or where the worker cannot create it.
    """
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise InputError("name", name, "a plain folder name")
    ctx = _RUN_CONTEXT.get()
    if not ctx or not ctx.get("store_root"):
        return None
    import os

    return _usable_dir(os.path.join(ctx["store_root"], "scratch", name))


def on_cluster() -> bool:
    """True when the calling code runs in a task on a Dask worker (where :func:`parallel_map`
    spreads its items over the cluster)."""
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def parallel_map(fn: Callable[[Any], Any], items: Iterable[Any]) -> tuple[list, str]:
    """``[fn(x) for x in items]`` spread over the cluster the running stage is on.

    Inside a stage that a :class:`Runner` runs on a Dask cluster, the items become tasks of
    that cluster (submitted from the worker through ``distributed.worker_client``, which
    secedes from the worker's thread pool while they run, so the worker itself computes some of
    them): the images of a band, the members of an ensemble, spread over every worker.  Anywhere
    else (in-process and process-pool runners, a direct call) the items run one after the other
    in this process.  ``fn`` and the items must be picklable for the Dask case.

    Returns ``(results in the order of items, where)``, ``where`` being ``"dask"`` or
    ``"serial"``.
    """
    items = list(items)
    if not on_cluster():
        return [fn(x) for x in items], "serial"
    from distributed import worker_client

    with worker_client() as client:
        futures = client.map(fn, items, pure=False)
        return client.gather(futures), "dask"


class run_context:
    """Context manager giving code run outside a :class:`Runner` the folders a runner would.

    ``with run_context(store_root="/path/.scaleladder", checkpoint="/tmp/ck"): ...`` makes
    :func:`checkpoint_dir` and :func:`scratch_dir` answer as inside a run (tests, notebooks).
    """

    def __init__(self, store_root: str | None = None, checkpoint: str | None = None):
        self.ctx = {"store_root": None if store_root is None else str(store_root),
                    "checkpoint": None if checkpoint is None else str(checkpoint)}

    def __enter__(self) -> "run_context":
        self.token = _RUN_CONTEXT.set(self.ctx)
        return self

    def __exit__(self, *exc) -> None:
        _RUN_CONTEXT.reset(self.token)


def _execute(stg: Stage, kwargs: dict[str, Any], ctx: dict | None = None) -> tuple[Any, float]:
    """Worker side: call the stage in its run context, return (value, elapsed seconds).

    When the context carries the driver's code fingerprint of the stage (``ctx["code"]``), the
    worker first checks that it imports the same code and engine versions: a result computed by
    other code would otherwise be stored under a key that names the driver's.
    """
    expected = (ctx or {}).get("code")
    if expected is not None:
        from .fingerprint import diff_fingerprints

        mine = stg.fingerprint_for((ctx or {}).get("engine"))
        if mine["code"] != expected.get("code"):
            import socket

            raise ExecutorError(
                f"stage {stg.name}: the worker on {socket.gethostname()} runs other code than the "
                "driver (" + "; ".join(diff_fingerprints(expected, mine) or ["code differs"])
                + "); its result would be recorded as the driver's. Install the same version of "
                "scaleladder and its engines on the workers, or run with --executor local")
    token = _RUN_CONTEXT.set(ctx)
    try:
        t0 = time.perf_counter()
        value = stg.fn(**kwargs)
        return value, time.perf_counter() - t0
    finally:
        _RUN_CONTEXT.reset(token)


def _orphan_watchdog(parent: int, period_s: float = 0.5) -> None:
    """Process-pool worker initialiser: exit when the driver that started this worker dies.

    A SIGKILLed driver cannot shut its pool down; without this its workers (and, through them,
    multiprocessing's resource tracker) would run on forever.  On Linux the kernel is also asked
    to send SIGKILL when the parent dies (``PR_SET_PDEATHSIG``); a polling thread covers the rest.
    """
    import os
    import signal
    import sys
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except Exception:  # pragma: no cover - no libc prctl
            pass
    if os.getppid() != parent:  # the parent died before we got here
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(period_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="scaleladder-orphan-watchdog", daemon=True).start()


class _InlineExecutor(cf.Executor):
    """Runs each submitted call at once, in the calling thread."""

    def __init__(self, hook: Callable[[float, str], None] | None = None):
        self.hook = hook

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        fut: cf.Future = cf.Future()
        token = _PROGRESS_HOOK.set(self.hook)
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed to the caller via the future
            if not isinstance(e, Exception):
                raise
            fut.set_exception(e)
        finally:
            _PROGRESS_HOOK.reset(token)
        return fut


_EXECUTOR_EXPECTED = ("None or 'local', 'process', 'tcp://host:port' or 'dask://host:port', a "
                      "concurrent.futures.Executor, or a distributed.Client")


class Runner:
    """Compute DAGs of :class:`Node` s into a :class:`~.store.Store`.

    Parameters
    ----------
    store : Store
        Where results are looked up and written (by this driver process only).
    executor : None, str, concurrent.futures.Executor or distributed.Client, optional
        ``None`` or ``"local"``: in-process, one node at a time.  ``"process"``: a
        ``ProcessPoolExecutor(max_workers=2)`` (spawn start method) owned by each run; its
        workers exit by themselves if the driver is killed.  ``"tcp://host:port"`` /
        ``"dask://host:port"``: a Dask ``distributed.Client`` connected for each run (needs the
        ``dask`` extra).  An ``Executor`` or a ``Client`` (its ``get_executor()``) is used as
        given and not shut down.
    progress : bool, default True
        Show progress on stderr: a rich bar on a terminal; plain time-stamped lines (each stage
        started and finished, and a line for running stages every ``progress_interval_s``)
        when stderr is a file or a pipe, so a log shows progress while the run goes on.
    progress_interval_s : float, default 30
        Seconds between the plain progress lines of running stages.
    connect_timeout_s : float, default 10
        Seconds to wait for a Dask scheduler given by address.
    no_workers_timeout_s : float, default 60
        With Dask: seconds without any worker, while stages wait, before saying so.
    on_no_workers : {"wait", "stop"}, default "wait"
        What to do then: keep waiting (and say so again every ``no_workers_timeout_s``), or stop
        with an :class:`~.errors.ExecutorError` (finished stages are kept).
    lease_timeout_s : float, default 120
        A stage claimed by another run sharing the store whose heartbeat (every 10 s) is older
        than this is taken over (that run died).

    Attributes
    ----------
    stats : RunStats
        What the last run computed and reused.
    """

    def __init__(self, store: Store, executor: Any = None, progress: bool = True, *,
                 progress_interval_s: float = 30.0, connect_timeout_s: float = 10.0,
                 no_workers_timeout_s: float = 60.0, on_no_workers: str = "wait",
                 lease_timeout_s: float = 120.0):
        if not isinstance(store, Store):
            raise InputError("store", store, "a scaleladder.core.store.Store")
        if store.readonly:
            raise InputError("store", store, "a writable store (this one was opened read-only)")
        self.store = store
        self.executor = self._check_executor(executor)
        self.progress = bool(progress)
        for name, v in (("progress_interval_s", progress_interval_s),
                        ("connect_timeout_s", connect_timeout_s),
                        ("no_workers_timeout_s", no_workers_timeout_s),
                        ("lease_timeout_s", lease_timeout_s)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
                raise InputError(name, v, "a positive number of seconds")
        if on_no_workers not in ("wait", "stop"):
            raise InputError("on_no_workers", on_no_workers, "'wait' or 'stop'")
        self.progress_interval_s = float(progress_interval_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self.no_workers_timeout_s = float(no_workers_timeout_s)
        self.on_no_workers = on_no_workers
        self.lease_timeout_s = float(lease_timeout_s)
        self.stats = RunStats()
        self._client = None

    @staticmethod
    def _check_executor(executor: Any) -> Any:
        if executor is None or isinstance(executor, cf.Executor):
            return executor
        if isinstance(executor, str):
            if executor in ("local", "process") or executor.startswith(("tcp://", "dask://")):
                return executor
            raise InputError("executor", executor, _EXECUTOR_EXPECTED)
        if callable(getattr(executor, "get_executor", None)):
            return executor
        raise InputError("executor", executor, _EXECUTOR_EXPECTED)

    # -- executor lifetime -----------------------------------------------------------------------
    def _open_executor(self, hook) -> tuple[cf.Executor, Callable[[], None], bool]:
        """Return (executor, close, inline)."""
        import os

        ex = self.executor
        self._client = None
        if ex is None or ex == "local":
            return _InlineExecutor(hook), lambda: None, True
        if ex == "process":
            import multiprocessing

            pool = cf.ProcessPoolExecutor(max_workers=2,
                                          mp_context=multiprocessing.get_context("spawn"),
                                          initializer=_orphan_watchdog, initargs=(os.getpid(),))
            return pool, lambda: pool.shutdown(wait=True, cancel_futures=True), False
        if isinstance(ex, str):
            try:
                import distributed
            except ImportError:
                raise MissingExtraError(package="distributed", extra="dask",
                                        purpose=f"executor={ex!r}") from None
            address = "tcp://" + ex[len("dask://"):] if ex.startswith("dask://") else ex
            try:
                client = distributed.Client(address, timeout=self.connect_timeout_s)
            except (OSError, TimeoutError, cf.TimeoutError) as e:
                raise ExecutorError(
                    f"no Dask scheduler answered at {address} within {self.connect_timeout_s:g} s "
                    f"({type(e).__name__}). Start one with `dask scheduler` (and workers with "
                    f"`dask worker {address}`), check the address, or run with --executor local; "
                    "nothing was computed") from None
            self._client = client
            return client.get_executor(), client.close, False
        if isinstance(ex, cf.Executor):
            return ex, lambda: None, False
        self._client = ex
        return ex.get_executor(), lambda: None, False

    def _n_workers(self) -> int | None:
        if self._client is None:
            return None
        try:
            return len(self._client.scheduler_info().get("workers", {}))
        except Exception:  # noqa: BLE001 - a lost scheduler: the futures say so
            return None

    def _describe_failure(self, exc: BaseException, label: str, key: str) -> BaseException:
        """An :class:`ExecutorError` for executor failures (lost pool worker, scheduler, ...)."""
        from concurrent.futures.process import BrokenProcessPool

        name = type(exc).__name__
        kept = ("finished stages are kept in the store and a rerun reuses them")
        if isinstance(exc, BrokenProcessPool):
            return ExecutorError(f"stage {label} ({key[:12]}): a worker process of the process "
                                 "pool died while running it (killed, out of memory or crashed); "
                                 f"{kept}. Run it with --executor local to see its own error")
        if name == "KilledWorker":
            return ExecutorError(f"stage {label} ({key[:12]}) killed every Dask worker that ran it "
                                 "(the scheduler gave up after its allowed failures): the stage "
                                 "probably runs out of memory or crashes its process; "
                                 f"{kept}. Give the workers more memory, or run this stage with "
                                 "--executor local to see its error")
        if isinstance(exc, cf.CancelledError) or name in ("CancelledError", "FutureCancelledError"):
            addr = ""
            try:
                addr = f" at {self._client.scheduler.address}" if self._client is not None else ""
            except Exception:  # noqa: BLE001
                pass
            return ExecutorError(f"lost the Dask scheduler{addr} while stage {label} "
                                 f"({key[:12]}) was running: its result never came back; {kept}. "
                                 "Restart the scheduler and workers (or use --executor local) "
                                 "and run again")
        return exc

    # -- graph -----------------------------------------------------------------------------------
    @staticmethod
    def _targets(targets: Any) -> dict[str, Node]:
        if isinstance(targets, Node):
            raise InputError("targets", targets, "a dict of name -> Node",
                             hint="wrap a single node: runner.run({'result': node})")
        items = list(targets.items()) if isinstance(targets, Mapping) else list(targets)
        out: dict[str, Node] = {}
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise InputError("targets", targets, "a dict (or pairs) of name -> Node")
            name, node = item
            if not isinstance(name, str) or not name:
                raise InputError("target name", name, "a non-empty string")
            if not isinstance(node, Node):
                raise InputError(f"targets[{name!r}]", node, "a Node (from Stage.bind)")
            if name in out:
                raise InputError("target name", name, "unique target names",
                                 hint="the same name is given twice; one node may appear under "
                                      "two different names")
            out[name] = node
        if not out:
            raise InputError("targets", targets, "at least one target node")
        return out

    def _reason(self, node: Node, corrupt: str | None) -> str | None:
        """Why ``node`` must be computed: None for a first computation."""
        from .fingerprint import diff_fingerprints

        if corrupt:
            return f"its stored result was corrupt ({corrupt}); recomputed"
        try:
            earlier = self.store.records_of_identity(node.identity)
        except Exception:  # noqa: BLE001 - an old index without identities
            earlier = []
        if not earlier:
            return None
        old = earlier[0]
        diff = diff_fingerprints(old.get("fingerprint"), node.fingerprint)
        if diff:
            return "; ".join(diff)
        changed = [arg for arg, k in node.input_keys().items() if old["inputs"].get(arg) != k]
        if changed:
            return "input(s) recomputed: " + ", ".join(changed)
        return "an earlier result of the same recipe exists under another key"

    # -- run -------------------------------------------------------------------------------------
    def run(self, targets: Mapping[str, Node] | Iterable[tuple[str, Node]]) -> dict[str, Any]:
        """Compute ``targets`` (name -> node) and return name -> value.

        Nodes the store holds are loaded, not run (and what lies upstream of them is not
        visited); the others run as soon as their dependencies are available.  Each result is
        written to the store by this (driver) process as soon as it arrives, so a failure or a
        crash keeps everything finished so far.  Values handed downstream and returned are the
        stored form (decoded from the bytes written), so a rerun that loads from the store sees
        exactly what a fresh computation saw.  A node whose stored result is corrupt is
        recomputed, and said so; a node another run sharing the store is computing is waited for.

        Raises
        ------
        Exception
            The original exception of the first stage that failed, with a note naming the stage
            label and key; stages still running when it failed are waited for and stored.
        ExecutorError
            The executor failed (a pool worker or the Dask scheduler lost, a stage that kills
            its workers, no workers with ``on_no_workers="stop"``).
        StoreFullError, StoreReadOnlyError
            The store could not be written; everything stored before is kept.
        """
        tmap = self._targets(targets)
        t_start = time.perf_counter()
        self.stats = stats = RunStats(targets={n: node.key for n, node in tmap.items()})
        store = self.store

        # 1. visit the DAG from the targets, stopping at what the store holds
        nodes: dict[str, Node] = {}
        status: dict[str, str] = {}
        reasons: dict[str, str | None] = {}
        order: list[str] = []  # topological (dependencies first)
        stack: list[tuple[Node, bool]] = [(n, False) for n in reversed(list(tmap.values()))]
        while stack:
            node, expanded = stack.pop()
            k = node.key
            if expanded:
                order.append(k)
                continue
            if k in status:
                continue
            nodes[k] = node
            corrupt = None
            if store.has(k):
                corrupt = store._blob_problem(k, store.record(k)["files"])
                if not corrupt:
                    status[k] = "reused"
                    order.append(k)
                    continue
            elif store._row(k) is not None:
                corrupt = "its blob folder is missing"
            status[k] = "compute"
            reasons[k] = self._reason(node, corrupt)
            stack.append((node, True))
            for d in reversed(node.dependencies()):
                if d.key not in status:
                    stack.append((d, False))
        to_compute = [k for k in order if status[k] == "compute"]
        local = self.executor is None or (isinstance(self.executor, str) and self.executor == "local")
        if not local and not isinstance(self.executor, cf.ThreadPoolExecutor):
            for k in to_compute:
                if not nodes[k].stage.importable():
                    st = nodes[k].stage
                    raise InputError("stage", st.name, "a module-level function importable by "
                                     "worker processes", hint=f"{st.__module__}.{st.__qualname__} "
                                     "cannot be imported by that path; move it to module level or "
                                     "use executor='local'")

        # 2. which values are needed: targets and inputs of nodes to compute
        needed = {n.key for n in tmap.values()}
        for k in to_compute:
            needed.update(d.key for d in nodes[k].dependencies())
        values: dict[str, Any] = {}
        n_total = len(order)

        progress = _Progress(n_total, self.progress_interval_s) if self.progress else None
        try:
            if progress is not None:
                progress.start()
            for k in order:
                if status[k] == "reused":
                    rec = store.record(k)
                    if k in needed:
                        values[k] = store.get(k)
                    stats.reused += 1
                    stats.nodes.append({"key": k, "label": nodes[k].label, "stage": rec["stage"],
                                        "status": "reused", "elapsed_s": rec["elapsed_s"]})
                    if progress is not None:
                        progress.advance()
            for k in to_compute:
                if reasons.get(k) and reasons[k].startswith("its stored result was corrupt"):
                    _say(progress, f"stage {nodes[k].label} ({k[:12]}): {reasons[k]}")
            if to_compute:
                self._compute(nodes, to_compute, values, needed, stats, progress, reasons)
        finally:
            if progress is not None:
                progress.stop()
            stats.wall_s = time.perf_counter() - t_start
        return {name: values[node.key] for name, node in tmap.items()}

    def _compute(self, nodes: dict[str, Node], to_compute: list[str], values: dict[str, Any],
                 needed: set[str], stats: RunStats, progress: "_Progress | None",
                 reasons: dict[str, str | None]) -> None:
        import threading
        import uuid

        store = self.store
        owner = uuid.uuid4().hex
        waiting = {k: {d.key for d in nodes[k].dependencies()} - values.keys() for k in to_compute}
        dependents: dict[str, list[str]] = {}
        for k in to_compute:
            for d in waiting[k]:
                dependents.setdefault(d, []).append(k)
        ready = deque(k for k in to_compute if not waiting[k])
        for k in ready:
            del waiting[k]
        position = {k: i for i, k in enumerate(to_compute)}
        running: dict[cf.Future, str] = {}
        blocked: dict[str, dict] = {}        # key -> lease holder (another run computes it)
        errors: list[BaseException] = []

        def release_dependents(k: str) -> None:
            for dep in dependents.get(k, ()):
                w = waiting.get(dep)
                if w is None:
                    continue
                w.discard(k)
                if not w:
                    del waiting[dep]
                    ready.append(dep)

        # heartbeat thread: keeps this run's leases alive and plain progress ticking, also while
        # an in-process stage holds the main thread
        stop_beat = threading.Event()

        hb_period = min(10.0, self.lease_timeout_s / 4)

        def beat() -> None:
            last = time.monotonic()
            while not stop_beat.wait(0.25):
                if progress is not None:
                    progress.tick()
                if time.monotonic() - last >= hb_period:
                    last = time.monotonic()
                    try:
                        store.heartbeat(owner)
                    except Exception:  # noqa: BLE001 - a failing heartbeat only risks a takeover
                        pass

        beater = threading.Thread(target=beat, name="scaleladder-heartbeat", daemon=True)
        beater.start()

        hook = progress.stage_hook if progress is not None else None
        executor, close, inline = self._open_executor(hook)
        clean_exit = False
        no_workers_since: float | None = None
        last_no_workers_msg = 0.0
        try:
            while ready or running or blocked:
                while ready and not errors and not (inline and running):
                    k = ready.popleft()
                    node = nodes[k]
                    holder = store.claim(k, owner, label=node.label,
                                         stale_after_s=self.lease_timeout_s)
                    if holder is not None:
                        blocked[k] = holder
                        _say(progress, f"stage {node.label} ({k[:12]}) is being computed by another "
                                       f"run (pid {holder['pid']} on {holder['host']}): waiting "
                                       "for its result instead of computing it twice")
                        continue
                    if store.has(k) and store.verify(k):  # finished by another run meanwhile
                        store.release(owner, k)
                        self._reuse(k, nodes, values, needed, stats, progress, waited=True)
                        release_dependents(k)
                        continue
                    kwargs = dict(node.params)
                    for arg, d in node.deps.items():
                        kwargs[arg] = (values[d.key] if isinstance(d, Node)
                                       else type(d)(values[x.key] for x in d))
                    if progress is not None:
                        progress.started(k, node.label)
                    ctx = {"store_root": str(store.root),
                           "checkpoint": str(store.root / "checkpoints" / k),
                           "code": None if inline else node.fingerprint,
                           "engine": node.stage.engine_of(node.params)}
                    running[executor.submit(_execute, node.stage, kwargs, ctx)] = k
                if errors and not running:
                    break
                if not running and not blocked:
                    break
                done: set = set()
                if running:
                    done, _ = cf.wait(list(running), timeout=0.5 if blocked or self._client
                                      else 2.0, return_when=cf.FIRST_COMPLETED)
                elif blocked:
                    time.sleep(0.5)
                # results of other runs we wait for
                for k in list(blocked):
                    if store.has(k) and store.verify(k):
                        del blocked[k]
                        self._reuse(k, nodes, values, needed, stats, progress, waited=True)
                        release_dependents(k)
                        continue
                    holder = store.claim(k, owner, label=nodes[k].label,
                                         stale_after_s=self.lease_timeout_s)
                    if holder is None:  # its holder died or gave up: compute it here
                        store.release(owner, k)
                        del blocked[k]
                        _say(progress, f"stage {nodes[k].label} ({k[:12]}): the other run stopped "
                                       "without storing it; computing it here")
                        ready.append(k)
                # Dask: no workers while stages wait
                if running and self._client is not None and not done:
                    n = self._n_workers()
                    now = time.monotonic()
                    if n == 0:
                        no_workers_since = no_workers_since or now
                        idle = now - no_workers_since
                        if idle >= self.no_workers_timeout_s and \
                                now - last_no_workers_msg >= self.no_workers_timeout_s:
                            last_no_workers_msg = now
                            labels = ", ".join(nodes[running[f]].label for f in running)
                            msg = (f"no Dask worker has been connected for {idle:.0f} s while "
                                   f"stage(s) {labels} wait; start workers with `dask worker "
                                   f"{self._client.scheduler.address}`")
                            if self.on_no_workers == "stop":
                                raise ExecutorError(msg + "; stopped (on_no_workers='stop'): "
                                                    "finished stages are kept in the store")
                            _say(progress, msg + " (still waiting; on_no_workers='stop' or "
                                 "--no-workers stop ends the run instead)")
                    else:
                        no_workers_since = None
                for fut in sorted(done, key=lambda f: position[running[f]]):
                    k = running.pop(fut)
                    node = nodes[k]
                    if progress is not None:
                        progress.finished(k)
                    try:
                        try:
                            value, elapsed = fut.result()
                        except BaseException as e:  # noqa: BLE001 - classified, re-raised
                            if not isinstance(e, (Exception, cf.CancelledError)):
                                raise
                            raise self._describe_failure(e, node.label, k) from e
                        files = codec.to_files(value)
                        store._put_files(k, files, stage=node.stage.name,
                                         version=node.stage.version, params=node.params,
                                         inputs=node.input_keys(), elapsed_s=elapsed,
                                         fingerprint=node.fingerprint,
                                         identity=node.identity, note=reasons.get(k))
                    except (StoreError, ExecutorError) as e:
                        store.release(owner, k)
                        e.add_note(f"in stage {node.label} ({k[:12]})")
                        errors.append(e)
                        raise _Abort() from None
                    except Exception as e:  # noqa: BLE001 - re-raised below, with a note
                        store.release(owner, k)
                        e.add_note(f"in stage {node.label} ({k[:12]})")
                        errors.append(e)
                        continue
                    store.release(owner, k)
                    _remove_checkpoints(store.root / "checkpoints" / k)
                    stats.computed += 1
                    stats.nodes.append({"key": k, "label": node.label, "stage": node.stage.name,
                                        "status": "computed", "elapsed_s": elapsed,
                                        "reason": reasons.get(k)})
                    if k in needed:
                        values[k] = codec.from_files(files)
                    if progress is not None:
                        progress.advance(node.label, elapsed)
                    release_dependents(k)
            clean_exit = True
        except _Abort:
            pass
        finally:
            stop_beat.set()
            if not clean_exit:  # an abort, KeyboardInterrupt or similar: do not wait for queued work
                for fut in running:
                    fut.cancel()
            try:
                store.release(owner)
            except Exception:  # noqa: BLE001 - leases of a dead run expire by themselves
                pass
            try:
                close()
            except Exception:  # noqa: BLE001 - closing a broken pool or a lost client
                pass
        if errors:
            first = errors[0]
            if len(errors) > 1:
                first.add_note(f"{len(errors) - 1} more stage(s) failed too: "
                               + "; ".join(str(getattr(e, '__notes__', [''])[-1]) for e in errors[1:]))
            raise first

    def _reuse(self, k: str, nodes: dict[str, Node], values: dict[str, Any], needed: set[str],
               stats: RunStats, progress: "_Progress | None", waited: bool = False) -> None:
        rec = self.store.record(k)
        if k in needed:
            values[k] = self.store.get(k)
        stats.reused += 1
        stats.waited += int(waited)
        stats.nodes.append({"key": k, "label": nodes[k].label, "stage": rec["stage"],
                            "status": "reused", "elapsed_s": rec["elapsed_s"]})
        if progress is not None:
            progress.advance()


class _Abort(Exception):
    """Internal: stop scheduling at once (the error is in the runner's list)."""


def _remove_checkpoints(path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _say(progress: "_Progress | None", message: str) -> None:
    """A line for the user on stderr (through the progress display when there is one)."""
    if progress is not None:
        progress.log(message)
        return
    import sys

    print(f"scaleladder: {message}", file=sys.stderr, flush=True)


class _Progress:
    """Progress on stderr: a rich bar on a terminal, plain time-stamped lines otherwise."""

    def __init__(self, total: int, interval_s: float = 30.0):
        import threading

        from rich.console import Console

        self.console = Console(stderr=True)
        self.plain = not self.console.is_terminal
        self.total = total
        self.done = 0
        self.running: dict[str, str] = {}
        self.started_at: dict[str, float] = {}
        self.sub = 0.0
        self.message = ""
        self.interval_s = interval_s
        self.t0 = time.monotonic()
        self.last_line = time.monotonic()
        self.lock = threading.Lock()
        if not self.plain:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                                       TextColumn, TimeElapsedColumn)

            self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TimeElapsedColumn(),
                                console=self.console, transient=False)
            self.task = self.bar.add_task("stages", total=total)

    # plain lines -----------------------------------------------------------------------------
    def _line(self, text: str) -> None:
        import sys

        with self.lock:
            stamp = time.strftime("%H:%M:%S")
            sys.stderr.write(f"[{stamp}] [{self.done}/{self.total}] {text}\n")
            sys.stderr.flush()
            self.last_line = time.monotonic()

    def log(self, message: str) -> None:
        if self.plain:
            self._line(message)
        else:
            self.bar.console.print(f"[yellow]scaleladder:[/] {message}", markup=True,
                                   highlight=False)

    def tick(self) -> None:
        """Called every few seconds: in plain mode, a line for running stages per interval."""
        if not self.plain or not self.running:
            return
        if time.monotonic() - self.last_line < self.interval_s:
            return
        now = time.monotonic()
        parts = []
        for k, label in list(self.running.items()):
            t = now - self.started_at.get(k, now)
            extra = f" {100 * self.sub:.0f}%" if self.sub and len(self.running) == 1 else ""
            extra += f" {self.message}" if self.message and len(self.running) == 1 else ""
            parts.append(f"{label} ({t:.0f} s{extra})")
        self._line("running: " + ", ".join(parts))

    # both ------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.plain:
            self._line(f"{self.total} stage(s) in this run")
        else:
            self.bar.start()

    def stop(self) -> None:
        if self.plain:
            self._line(f"{'done' if self.done >= self.total else 'stopped'} after "
                       f"{time.monotonic() - self.t0:.1f} s")
        else:
            self._describe()
            self.bar.stop()

    def _describe(self) -> None:
        if self.plain:
            return
        labels = list(self.running.values())
        if not labels:
            desc = "done" if self.done >= (self.bar.tasks[0].total or 0) else "waiting"
        else:
            desc = ", ".join(labels[:3]) + (f" +{len(labels) - 3}" if len(labels) > 3 else "")
            if self.message and len(labels) == 1:
                desc += f": {self.message}"
        self.bar.update(self.task, description=desc, completed=self.done + self.sub)

    def started(self, key: str, label: str) -> None:
        self.running[key] = label
        self.started_at[key] = time.monotonic()
        self.sub, self.message = 0.0, ""
        if self.plain:
            self._line(f"started: {label}")
        self._describe()

    def finished(self, key: str) -> None:
        self.running.pop(key, None)
        self.sub, self.message = 0.0, ""
        self._describe()

    def advance(self, label: str | None = None, elapsed: float | None = None) -> None:
        self.done += 1
        if self.plain and label is not None:
            self._line(f"finished: {label} ({elapsed:.1f} s)")
        self._describe()

    def stage_hook(self, fraction: float, message: str) -> None:
        self.sub, self.message = fraction, message
        if self.plain:
            self.tick()
        self._describe()
