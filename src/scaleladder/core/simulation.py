"""The one simulation protocol and its driver.

Every long-running engine — phase field, kinetic Monte Carlo, and the engines still to come — is an
object with

* ``kind`` (str): what it is and the version of its state layout (the checkpoint kind);
* ``advance(state, n) -> (state, done, stop)``: ``n`` more steps (or fewer, with ``stop`` a short
  reason such as ``"time"`` when the engine must stop early; ``None`` otherwise).  It must give
  the same result as ``n`` calls of ``advance(state, 1)``: the driver chunks the steps between
  observations and checkpoints;
* ``observe(state) -> dict[str, float]`` (optional): scalar observables recorded in the history;
* ``check(state, history, observation)`` (optional): raise :class:`~.errors.CalculationError`
  when the state blew up (non-finite values, a free energy that rises, ...);
* ``progress_fraction(state) -> float | None`` (optional): the fraction of the run done when
  the step count is not the measure (a KMC run to a simulated time); None: steps done / asked;

over a state that is plain data (frozen; encodable by :mod:`scaleladder.core.codec`, random stream
included, so a resumed run continues the same stream).  :func:`run_simulation` drives any of them:
observations every ``observe_every`` steps, checkpoints every ``checkpoint_every`` steps through
the one checkpoint format (:mod:`scaleladder.core.checkpoint`: atomic, fsynced, hashed), progress to
the pipeline's progress bar and the log, blow-up checks that keep the last good state (written to
the checkpoint and attached to the error), and :func:`resume_simulation` = read the checkpoint and go
on.  A run of 2N steps and a run of N steps, killed, resumed and run N more are identical bit for
bit (tests/test_simulation.py).

Writing a new engine::

    @register("RandomWalk1D")
    @dataclass(frozen=True)
    class WalkState:
        x: float
        rng: dict                      # numpy bit-generator state: the stream lives in the state
        step: int = 0
        def to_state(self): return {"x": self.x, "rng": self.rng, "step": self.step}
        @classmethod
        def from_state(cls, s): return cls(**s)

    @register("RandomWalk1DEngine")
    class Walk:
        kind = "example.walk/1"
        def advance(self, state, n):
            g = np.random.Generator(np.random.PCG64()); g.bit_generator.state = state.rng
            x = state.x
            for _ in range(n):
                x += g.standard_normal()
            return WalkState(x, g.bit_generator.state, state.step + n), n, None
        def observe(self, state): return {"x": state.x}
        def to_state(self): return {}
        @classmethod
        def from_state(cls, s): return cls()

    run = run_simulation(Walk(), WalkState(0.0, seeded_rng_state(0)), 1000, checkpoint="w.npz")
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import validate as _v
from .checkpoint import read_checkpoint, write_checkpoint
from .errors import CalculationError, InputError

__all__ = ["run_simulation", "resume_simulation", "SimulationRun", "seeded_rng_state",
           "write_simulation_checkpoint", "read_simulation_checkpoint", "SIMULATION_CHECKPOINT"]

logger = logging.getLogger(__name__)

#: checkpoint kind of the driver's container (the engine's own ``kind`` is recorded inside it)
SIMULATION_CHECKPOINT = "scaleladder.simulation/1"


def seeded_rng_state(seed: int = 0, *, spawn_key: tuple = ()) -> dict:
    """The project's one random-stream convention: a PCG64 bit-generator state from
    ``numpy.random.SeedSequence(seed, spawn_key=spawn_key)`` (seed 0 unless given; reproducible by
    default).  Keep it in the engine's state; it round-trips through the checkpoint exactly."""
    seed = _v.seed("seed", seed)
    ss = np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in spawn_key))
    return np.random.PCG64(ss).state


@dataclass
class SimulationRun:
    """What :func:`run_simulation` returns.

    Attributes
    ----------
    state : Any
        The final state.
    history : dict of str -> list
        ``"step"`` (the engine step of each observation) and one list per observable, over the
        whole run including what came before a resume.
    steps : int
        Steps done in this call.
    stopped : str
        ``"steps"`` (all done) or the engine's reason for stopping early.
    elapsed_s : float
        Wall seconds of this call.
    checkpoint : str or None
        The checkpoint file last written.
    """

    state: Any
    history: dict = field(default_factory=dict)
    steps: int = 0
    stopped: str = "steps"
    elapsed_s: float = 0.0
    checkpoint: str | None = None


def _step_of(state: Any) -> int:
    return int(getattr(state, "step", getattr(state, "n_events", 0)))


def write_simulation_checkpoint(path: str | os.PathLike, engine: Any, state: Any,
                                history: dict | None = None, *, store_engine: bool = True) -> Path:
    """The driver's checkpoint: ``{engine kind, engine, state, history}`` in the one format.

    ``engine`` may be the engine or only its kind (a string; nothing stored but the kind)."""
    kind = engine if isinstance(engine, str) else engine.kind
    store = store_engine and not isinstance(engine, str)
    payload = {"engine_kind": kind, "engine": engine if store else None,
               "state": state, "history": history or {"step": []}}
    return write_checkpoint(path, payload, kind=SIMULATION_CHECKPOINT)


def read_simulation_checkpoint(path: str | os.PathLike, *, kind: str | None = None,
                               engine: Any = None, require_engine: bool = True
                               ) -> tuple[Any, Any, dict]:
    """``(engine, state, history)`` of a driver checkpoint.

    ``kind``: the engine kind expected; ``engine``: the engine to use for a checkpoint that does
    not store one (checked against its kind).  With ``require_engine=False`` a checkpoint without
    a stored engine and no ``engine`` given yields ``None`` as the engine (to read the state).
    """
    return _resolve(read_checkpoint(path, kind=SIMULATION_CHECKPOINT), path, kind, engine,
                    require_engine)


def _resolve(data: dict, path, kind: str | None, engine: Any, require_engine: bool = True):
    if kind is not None and data["engine_kind"] != kind:
        raise InputError("checkpoint", str(path), f"a checkpoint of a {kind} run",
                         hint=f"it holds a {data['engine_kind']} run")
    stored = data.get("engine")
    history = {k: list(v) for k, v in (data.get("history") or {"step": []}).items()}
    if engine is None and stored is None and not require_engine:
        return None, data["state"], history
    if engine is None:
        if stored is None:
            raise InputError("engine", None, f"the {data['engine_kind']} engine to resume with "
                             "(the checkpoint does not store it)")
        engine = stored
    if getattr(engine, "kind", None) != data["engine_kind"]:
        raise InputError("engine", getattr(engine, "kind", type(engine).__name__),
                         f"an engine of kind {data['engine_kind']!r} (the checkpoint's)")
    return engine, data["state"], history


def _save(path, engine, state, history, *, store_engine: bool) -> str:
    return str(write_simulation_checkpoint(path, engine, state, history,
                                           store_engine=store_engine))


def run_simulation(engine: Any, state: Any, steps: int, *, observe_every: int | None = None,
                   checkpoint: str | os.PathLike | None = None,
                   checkpoint_every: int | None = None, history: dict | None = None,
                   store_engine: bool = True, log_every: int | None = None,
                   label: str | None = None) -> SimulationRun:
    """Advance ``state`` by ``steps`` steps of ``engine`` (see the module notes).

    Parameters
    ----------
    engine : object
        Follows the protocol: ``kind``, ``advance``; optionally ``observe``, ``check``.
    state : Any
        The engine's state (codec-encodable when checkpoints are written).
    steps : int
        Steps to do in this call, >= 1.
    observe_every : int, optional
        Record ``engine.observe(state)`` every this many steps, at the start (unless the history
        already ends at this state's step) and at the end; default: about 100 records.
    checkpoint : path, optional
        Write ``{engine, state, history}`` there every ``checkpoint_every`` steps and at the end.
    checkpoint_every : int, optional
        Default: ``100 * observe_every``.
    history : dict, optional
        The history so far (a resumed run continues it).
    store_engine : bool, default True
        Store the engine in the checkpoint (it must then be codec-encodable) so that
        :func:`resume_simulation` needs only the file; False stores the state and history only.
    log_every : int, optional
        Log progress (INFO) about every this many steps (default: ~10 lines per run).
    label : str, optional
        Name in log lines (default: the engine's kind).

    Raises
    ------
    InputError
        Bad ``steps`` / intervals, or an engine that does not follow the protocol.
    CalculationError
        From the engine's ``check``: ``last_good_state`` (and ``last_good`` unless the engine set
        its own) is the last state that passed; that state is what the checkpoint holds
        (``checkpoint`` names the file).
    """
    for name in ("kind", "advance"):
        if not hasattr(engine, name):
            raise InputError("engine", type(engine).__name__,
                             "a simulation engine with 'kind' and 'advance(state, n)'")
    steps = _v.positive_int("steps", steps)
    if observe_every is None:
        observe_every = max(1, steps // 100)
    observe_every = _v.positive_int("observe_every", observe_every)
    if checkpoint_every is None:
        checkpoint_every = observe_every * 100
    checkpoint_every = _v.positive_int("checkpoint_every", checkpoint_every)
    if log_every is None:
        log_every = max(1, steps // 10)
    log_every = _v.positive_int("log_every", log_every)
    label = label or engine.kind
    history = {"step": []} if history is None else {k: list(v) for k, v in history.items()}
    history.setdefault("step", [])
    observe = getattr(engine, "observe", None)
    check = getattr(engine, "check", None)

    from .pipeline import report_progress

    progress_of = getattr(engine, "progress_fraction", None)

    def record(s: Any) -> None:
        if observe is None:
            return
        obs = observe(s)
        if check is not None:
            check(s, history, obs)
        history["step"].append(_step_of(s))
        for k, v in obs.items():
            history.setdefault(k, []).append(v)

    t0 = time.perf_counter()
    last_good = state
    last_ckpt = None
    try:
        if not history["step"] or history["step"][-1] != _step_of(state):
            record(state)
        done = 0
        stopped = "steps"
        next_log = log_every
        while done < steps:
            # the next multiple (of the call's own step count) where something happens
            nxt = min(steps, (done // observe_every + 1) * observe_every,
                      (done // checkpoint_every + 1) * checkpoint_every)
            state, n, stop = engine.advance(state, nxt - done)
            done += int(n)
            last = done >= steps or stop is not None
            if done % observe_every == 0 or last:
                record(state)
            last_good = state
            if checkpoint is not None and (done % checkpoint_every == 0 or last):
                last_ckpt = _save(checkpoint, engine, state, history, store_engine=store_engine)
            if done >= next_log or last:
                next_log = (done // log_every + 1) * log_every
                rate = done / max(time.perf_counter() - t0, 1e-12)
                logger.info("%s: step %d/%d (%s), %.3g steps/s", label, done, steps,
                            ", ".join(f"{k} = {v[-1]:.6g}" for k, v in history.items()
                                      if k != "step" and v and isinstance(v[-1], (int, float))),
                            rate)
            frac = progress_of(state) if progress_of is not None else None
            if frac is not None and stop is not None:
                frac = 1.0              # the engine stopped itself: its run is complete
            if frac is None:
                report_progress(done / steps, f"{label}: {done}/{steps}")
            else:           # the engine knows better (e.g. a run to a simulated time)
                report_progress(frac, f"{label}: {100 * frac:.0f} % ({done} steps)")
            if stop is not None:
                stopped = str(stop)
                break
    except CalculationError as exc:
        exc.last_good_state = last_good
        if getattr(exc, "last_good", None) is None:   # an engine may attach its own form
            exc.last_good = last_good
        if checkpoint is not None:
            hist = {k: v[:len(history["step"])] for k, v in history.items()}
            last_ckpt = _save(checkpoint, engine, last_good, hist, store_engine=store_engine)
            exc.checkpoint = last_ckpt
            exc.add_note(f"the last good state (step {_step_of(last_good)}) is in {last_ckpt}")
        raise
    return SimulationRun(state=state, history=history, steps=done, stopped=stopped,
                         elapsed_s=time.perf_counter() - t0, checkpoint=last_ckpt)


def resume_simulation(checkpoint: str | os.PathLike, steps: int, *, engine: Any = None,
                      **kwargs: Any) -> SimulationRun:
    """Continue the run stored in ``checkpoint`` for ``steps`` more steps.

    ``engine`` is needed only for checkpoints written with ``store_engine=False`` (and must then
    be of the kind recorded); other keywords as :func:`run_simulation` (checkpoints go on to the
    same file unless ``checkpoint=`` says otherwise).

    Raises
    ------
    CheckpointError
        A missing, corrupt or foreign checkpoint.
    InputError
        No engine stored and none given, or an engine of another kind.
    """
    data = read_checkpoint(checkpoint, kind=SIMULATION_CHECKPOINT)
    engine, state, history = _resolve(data, checkpoint, None, engine)
    kwargs.setdefault("checkpoint", Path(checkpoint))
    kwargs.setdefault("store_engine", data.get("engine") is not None)
    return run_simulation(engine, state, steps, history=history, **kwargs)
