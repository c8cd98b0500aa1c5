"""Code fingerprints of pipeline stages: what code and which engines computed a result.

A stage's cached result is only valid for the code that computed it.  :func:`stage_fingerprint`
hashes exactly that code, found by static analysis (no module is imported to compute it):

* in the stage's own module, the stage function itself and, transitively, every module-level
  function, class and constant its body refers to (not the rest of the module: editing a ladder's
  ``summarize`` or another stage of the same module recomputes nothing);
* every project module those pieces import (``from ..atomistic import vacancy_formation_energy``
  resolves through the package's re-exports to ``scaleladder.atomistic.defects``), with the
  project modules *they* import, transitively: a module enters whole, its top-level imports are
  always followed, the imports inside its functions only for the functions reached from the
  names imported from it (:func:`_closure`);
* for a stage that declares its engine parameter and a node that binds it to a plain spec, the
  calculator registry is followed into that engine's modules only (:class:`EngineTable`);
* the versions of the third-party distributions those modules import (numpy, scipy, ase, pyscf,
  scikit-fem, ...): the engines.

The digests are those of the code this process runs: the project modules of a closure are imported
when it is first fingerprinted, and an imported module is digested again only when it is reloaded
(its code objects change), not when its file is edited behind the running process.

Sources are hashed as their abstract syntax tree with docstrings removed, so comments, docstrings
and formatting do not count.  The project's infrastructure modules (the pipeline runner, the store,
the command line and the report: :data:`INFRASTRUCTURE`) are left out: they move results around and
do not compute them.  The pipeline folds the digest and the engine versions into each node's key
(:class:`scaleladder.core.pipeline.Node`), so a code change recomputes the stage and everything
downstream of it, and stores the per-module digests in the provenance record so that
``scaleladder show`` can say what changed.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.util
import inspect
import marshal
import sys
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Mapping

__all__ = ["stage_fingerprint", "INFRASTRUCTURE", "diff_fingerprints", "EngineTable"]

#: project modules that never enter a fingerprint (they store, schedule or show results)
INFRASTRUCTURE = ("scaleladder.core.pipeline", "scaleladder.core.store",
                  "scaleladder.core.fingerprint", "scaleladder.cli", "scaleladder.report")

_PROJECT = "scaleladder"


# ----------------------------------------------------------------------------------------------
# module lookup (static: find the file, never import it)
# ----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _module_file(name: str) -> str | None:
    """Path of the source file of module ``name`` (package -> its __init__.py), or None."""
    if name in sys.modules and getattr(sys.modules[name], "__file__", None):
        f = sys.modules[name].__file__
        return f if f and f.endswith(".py") else None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return spec.origin


def _is_package(name: str) -> bool:
    f = _module_file(name)
    return bool(f) and Path(f).name == "__init__.py"


def _state(path: str) -> tuple[int, int]:
    """(mtime_ns, size) of a file: cached digests are reused only while it is unchanged."""
    try:
        st = Path(path).stat()
    except OSError:
        return (-1, -1)
    return (st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=512)
def _parse_cached(path: str, state: tuple[int, int]) -> ast.Module:
    return ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)


def _parsed(path: str) -> ast.Module:
    return _parse_cached(path, _state(path))


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None),
                                                                      ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _digest_node(node: ast.AST) -> str:
    import copy

    return hashlib.sha256(ast.dump(_strip_docstrings(copy.deepcopy(node)),
                                   annotate_fields=False).encode()).hexdigest()


@functools.lru_cache(maxsize=512)
def _digest_cached(path: str, state: tuple[int, int]) -> str:
    return _digest_node(_parse_cached(path, state))


_IMPORTED: dict[str, tuple[Any, str]] = {}


def _module_digest(name: str) -> str:
    """Digest of a module's source.  A module already imported is digested once per module
    object (the code in memory does not change when its file is edited; a reload makes a new
    module object): results are labelled with the code that computed them."""
    f = _module_file(name)
    if not f:
        return "no-source"
    if name in sys.modules:
        tok = _token(name)
        hit = _IMPORTED.get(name)
        if hit is not None and hit[0] == tok:
            return hit[1]
        digest = _digest_cached(f, _state(f))
        _IMPORTED[name] = (tok, digest)
        return digest
    return _digest_cached(f, _state(f))


def _code_ids(mod: Any) -> int:
    """A hash of the identities of the code objects of a module's functions and methods: it
    changes when the module is reloaded (or IPython's autoreload swaps code in place), not when
    its file is edited behind a running process."""
    ids = []
    for v in list(vars(mod).values()):
        if getattr(v, "__module__", None) != mod.__name__:
            continue
        code = getattr(v, "__code__", None) or getattr(getattr(v, "fn", None), "__code__", None)
        if code is not None:
            ids.append(id(code))
        elif isinstance(v, type):
            ids.extend(id(m.__code__) for m in vars(v).values() if hasattr(m, "__code__"))
    return hash(tuple(ids))


def _token(name: str) -> tuple:
    """What must not change for a cached digest of module ``name`` to stay valid: for an imported
    module, the module object and its code objects (the code in memory is what runs); for one
    not imported yet, its file."""
    mod = sys.modules.get(name)
    if mod is not None:
        return ("imported", id(mod), _code_ids(mod))
    f = _module_file(name)
    return ("file", *_state(f)) if f else ("none",)


def _resolve_relative(module: str | None, level: int, current: str, is_pkg: bool) -> str:
    if level == 0:
        return module or ""
    base = current.split(".")
    if not is_pkg:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _infrastructure(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in INFRASTRUCTURE)


def _reexport(package: str, attr: str, depth: int = 0) -> str:
    """The project module that defines ``package.attr`` (following ``from .x import attr``)."""
    sub = f"{package}.{attr}"
    if _module_file(sub):
        return sub
    f = _module_file(package)
    if not f or depth > 8 or not _is_package(package):
        return package
    for node in _parsed(f).body:
        if isinstance(node, ast.ImportFrom):
            src = _resolve_relative(node.module, node.level, package, True)
            for alias in node.names:
                if (alias.asname or alias.name) == attr and src.startswith(_PROJECT):
                    if _is_package(src):
                        return _reexport(src, alias.name, depth + 1)
                    return src
    return package


#: an import target: (project module, the name imported from it, or None for the whole module)
Target = tuple[str, "str | None"]


def _imports_of(tree: ast.AST, current: str, is_pkg: bool
                ) -> tuple[set[Target], set[str], dict[str, Target]]:
    """(project targets, third-party top-level names, local name -> target) of the import
    statements in ``tree`` (walked: imports inside function bodies included)."""
    project: set[Target] = set()
    external: set[str] = set()
    bound: dict[str, Target] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top == _PROJECT:
                    t = (alias.name, None)
                    project.add(t)
                    bound[alias.asname or top] = t if alias.asname else (top, None)
                else:
                    external.add(top)
        elif isinstance(node, ast.ImportFrom):
            src = _resolve_relative(node.module, node.level, current, is_pkg)
            if src.split(".")[0] != _PROJECT:
                if node.level == 0 and src:
                    external.add(src.split(".")[0])
                continue
            for alias in node.names:
                if alias.name == "*":
                    project.add((src, None))
                    continue
                if _module_file(f"{src}.{alias.name}"):        # a submodule: the whole module
                    t = (f"{src}.{alias.name}", None)
                else:
                    t = (_reexport(src, alias.name) if _is_package(src) else src, alias.name)
                project.add(t)
                bound[alias.asname or alias.name] = t
    return project, external, bound


class _ModuleInfo:
    """What the closure needs of one module, computed once per version of it: its definitions,
    the imports of its top level, and per definition the imports inside it and the names it
    uses."""

    __slots__ = ("defs", "top_targets", "top_external", "top_names", "local")

    def __init__(self, name: str, tree: ast.Module):
        is_pkg = _is_package(name)
        self.defs = _top_level_defs(tree)
        # the top level outside definitions: imports (also inside try/if blocks) and any code
        # that runs at import (registrations, conditional definitions)
        rest = [n for n in tree.body if not isinstance(
            n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign,
                ast.AugAssign))]
        wrapper = ast.Module(body=rest, type_ignores=[])
        self.top_targets, self.top_external, _ = _imports_of(wrapper, name, is_pkg)
        self.top_names = {n.id for n in ast.walk(wrapper) if isinstance(n, ast.Name)}
        self.local: dict[int, tuple[set[Target], set[str], dict[str, Target], set[str]]] = {}
        for nodes in self.defs.values():
            for d in nodes:
                if id(d) not in self.local:
                    t, e, b = _imports_of(d, name, is_pkg)
                    self.local[id(d)] = (t, e, b, _body_names(d))


_INFO: dict[str, tuple[tuple, _ModuleInfo]] = {}


def _module_info(name: str) -> _ModuleInfo | None:
    f = _module_file(name)
    if not f:
        return None
    tok = _token(name)
    hit = _INFO.get(name)
    if hit is not None and hit[0] == tok:
        return hit[1]
    info = _ModuleInfo(name, _parsed(f))
    _INFO[name] = (tok, info)
    return info


def _closure(targets, skip: str | None = None,
             prune: Mapping[str, frozenset[str]] | None = None) -> tuple[dict[str, str], set[str]]:
    """(module -> digest, third-party names) of the project code reachable from ``targets``.

    A module enters whole (its digest is that of its file), but what it imports is followed only
    as far as it is used: the imports of its top level always (objects of those modules flow
    through it), the imports inside its functions and classes only for the definitions reached
    from the names imported from it (a function-local import of an engine that another function
    of the module needs does not make every user of the module depend on that engine).  A name
    that is not a top-level definition of its module (set in an ``if``/``try`` block, a
    re-export under another name) reaches the whole module.  ``prune`` maps a module to the
    modules it must not be followed into (the engines a stage does not use, see
    :class:`EngineTable`)."""
    prune = prune or {}
    reached: dict[str, set[str] | None] = {}     # module -> names reached (None: all)
    external: set[str] = set()
    todo: list[Target] = list(targets)
    while todo:
        m, name = todo.pop()
        if m == skip or _infrastructure(m) or m.split(".")[0] != _PROJECT:
            continue
        first = m not in reached
        if first:
            _load(m)
            reached[m] = set()
        names_done = reached[m]
        if names_done is None:
            continue
        info = _module_info(m)
        if info is None:
            reached[m] = None
            continue
        whole = name is None or name not in info.defs
        new = set(info.defs) if whole else {name}
        cut = prune.get(m, frozenset())
        if first:
            todo.extend(t for t in info.top_targets if t[0] not in cut)
            external |= info.top_external
            new |= {n for n in info.top_names if n in info.defs}
        done = names_done
        stack = [n for n in new if n not in done]
        while stack:
            n = stack.pop()
            if n in done:
                continue
            done.add(n)
            for d in info.defs[n]:
                t, e, _, used = info.local[id(d)]
                todo.extend(x for x in t if x[0] not in cut)
                external |= e
                stack.extend(u for u in used if u in info.defs and u not in done)
        if whole:
            reached[m] = None
    mods = {m: _module_digest(m) for m in reached}
    return mods, external


def _unchanged(tokens: dict[str, tuple]) -> bool:
    return all(_token(m) == t for m, t in tokens.items())


def _load(name: str) -> None:
    """Import a project module before digesting it, so the digest is that of the code this
    process will run (a file edited later does not relabel it); a module that cannot be imported
    (an optional extra missing) is digested from its file."""
    if name in sys.modules:
        return
    try:
        importlib.import_module(name)
    except Exception:  # noqa: BLE001 - ImportError of an optional extra, or anything at import
        pass


def _top_level_defs(tree: ast.Module) -> dict[str, list[ast.AST]]:
    defs: dict[str, list[ast.AST]] = {}
    for node in tree.body:
        names: list[str] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                names += [n.id for n in ast.walk(t) if isinstance(n, ast.Name)]
        for n in names:
            defs.setdefault(n, []).append(node)
    return defs


def _body_names(node: ast.AST) -> set[str]:
    """Names loaded in a definition, decorators excluded (they declare, they do not compute)."""
    parts: list[ast.AST]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        parts = [*node.body, node.args]
    elif isinstance(node, ast.ClassDef):
        parts = [*node.body, *node.bases]
    else:
        parts = [node]
    out: set[str] = set()
    for p in parts:
        out |= {n.id for n in ast.walk(p) if isinstance(n, ast.Name)}
    return out


@functools.lru_cache(maxsize=1)
def _distributions() -> dict:
    from importlib import metadata

    try:
        return metadata.packages_distributions()
    except Exception:  # pragma: no cover - broken environment metadata
        return {}


@functools.lru_cache(maxsize=None)
def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _engine_versions(names: set[str]) -> dict[str, str]:
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    dists = _distributions()
    out: dict[str, str] = {}
    for top in sorted(names):
        if top in stdlib or top in ("__future__", _PROJECT):
            continue
        for dist in dists.get(top, [top]):
            v = _version(dist)
            if v is not None:
                out[dist] = v
    return out


def _fallback(fn: Callable[..., Any]) -> dict:
    """Fingerprint of a function whose source cannot be read (interactive definitions)."""
    code = getattr(fn, "__code__", None)
    digest = hashlib.sha256(marshal.dumps(code) if code is not None else repr(fn).encode()).hexdigest()
    return {"code": digest, "modules": {f"{fn.__module__}.{fn.__qualname__}": digest}, "engines": {}}


@dataclass(frozen=True)
class EngineTable:
    """Which project modules a registry imports to build each of its engines.

    A registry (one module, e.g. :mod:`scaleladder.workflows.calculators`) builds every engine
    behind one function, so the code of every engine is reachable from it and a stage that calls
    it would depend on all of them: a DFT label would be recomputed when the SNAP code changes.
    A stage that declares which of its parameters names the engine (``stage(...,
    engine_param=..., engines=TABLE)``) is fingerprinted, for a plain spec, with that engine's
    modules only: the registry is not followed into the others.

    Attributes
    ----------
    module : str
        The registry's module.
    modules : dict
        Engine name -> the project modules the registry imports to build it.
    """

    module: str
    modules: Mapping[str, tuple[str, ...]]

    def others(self, engine: str) -> frozenset[str]:
        """The registry's engine modules that ``engine`` does not use."""
        keep = set(self.modules.get(engine, ()))
        return frozenset(m for ms in self.modules.values() for m in ms if m not in keep)


_CACHE: dict[tuple, dict] = {}


def stage_fingerprint(fn: Callable[..., Any], prune: Mapping[str, frozenset[str]] | None = None
                      ) -> dict:
    """Fingerprint of the code a stage function runs.

    Parameters
    ----------
    fn : callable
        The plain stage function.
    prune : dict, optional
        Module -> project modules not to follow from it (:meth:`EngineTable.others`).

    Returns
    -------
    dict
        ``code``: sha256 over every piece below; ``modules``: piece -> sha256 (the stage's own
        pieces as ``module:name``, imported project modules by name); ``engines``: distribution
        -> version of the third-party packages imported by that code.

    Notes
    -----
    Cached per function for the life of the process (sources are read once).
    """
    ckey = (id(fn), tuple(sorted((k, tuple(sorted(v))) for k, v in (prune or {}).items())))
    cached = _CACHE.get(ckey)
    if cached is not None and cached["_fn"] is fn and _unchanged(cached["tokens"]):
        return cached["fp"]
    module = getattr(fn, "__module__", None) or "__main__"
    qualname = getattr(fn, "__qualname__", getattr(fn, "__name__", "?"))
    try:
        path = inspect.getsourcefile(fn)
        tree = _parsed(path) if path else None
    except (TypeError, OSError, SyntaxError):
        tree = None
    fnode = None
    if tree is not None:
        # the definition node: walk the qualified name (nested definitions included)
        scope: list[ast.AST] = list(tree.body)
        for part in qualname.split("."):
            if part == "<locals>":
                continue
            found = None
            for node in scope:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                        and node.name == part:
                    found = node
            if found is None:
                for node in ast.walk(ast.Module(body=scope, type_ignores=[])):
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                            and node.name == part:
                        found = node
                        break
            if found is None:
                fnode = None
                break
            fnode = found
            scope = list(found.body)
    if fnode is None or tree is None:
        fp = _fallback(fn)
        _CACHE[ckey] = {"_fn": fn, "fp": fp, "tokens": {}}
        return fp

    is_pkg = Path(path).name == "__init__.py"
    defs = _top_level_defs(tree)
    _, _, bound = _imports_of(tree, module, is_pkg)
    pieces: dict[str, str] = {f"{module}:{qualname}": _digest_node(fnode)}
    project: set[Target] = set()
    external: set[str] = set()
    todo = [fnode]
    visited: set[int] = set()
    while todo:
        node = todo.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        p, e, b = _imports_of(node, module, is_pkg)   # imports inside the function body
        project |= p
        external |= e
        local_bound = {**bound, **b}
        for name in _body_names(node):
            if name in local_bound:
                project.add(local_bound[name])
            for d in defs.get(name, ()):
                if id(d) not in visited:
                    label = getattr(d, "name", name)
                    pieces[f"{module}:{label}"] = _digest_node(d)
                    todo.append(d)
    # top-level third-party imports bound to names the pieces use
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            _, e, _ = _imports_of(node, module, is_pkg)
            external |= e
    mods, eng = _closure(sorted(project, key=lambda t: (t[0], t[1] or "")), skip=module,
                         prune=prune)
    external |= eng
    pieces.update(mods)
    engines = _engine_versions(external)
    h = hashlib.sha256()
    for k in sorted(pieces):
        h.update(f"{k}={pieces[k]}\n".encode())
    for k in sorted(engines):
        h.update(f"engine {k}={engines[k]}\n".encode())
    fp = {"code": h.hexdigest(), "modules": dict(sorted(pieces.items())), "engines": engines}
    mods = {module} | {m for m in pieces if ":" not in m}
    _CACHE[ckey] = {"_fn": fn, "fp": fp, "tokens": {m: _token(m) for m in mods}}
    return fp


def diff_fingerprints(old: dict | None, new: dict | None) -> list[str]:
    """Readable differences between two fingerprints (what changed in the code or engines)."""
    if not old or not new:
        return ["no code fingerprint was recorded for the earlier result"] if new else []
    out: list[str] = []
    om, nm = old.get("modules", {}), new.get("modules", {})
    changed = sorted(k for k in nm if k in om and om[k] != nm[k])
    added = sorted(k for k in nm if k not in om)
    removed = sorted(k for k in om if k not in nm)
    if changed:
        out.append("code changed: " + ", ".join(changed))
    if added:
        out.append("code now also uses: " + ", ".join(added))
    if removed:
        out.append("code no longer uses: " + ", ".join(removed))
    oe, ne = old.get("engines", {}), new.get("engines", {})
    eng = [f"{k} {oe.get(k, '-')} -> {ne.get(k, '-')}" for k in sorted(set(oe) | set(ne))
           if oe.get(k) != ne.get(k)]
    if eng:
        out.append("engine versions changed: " + ", ".join(eng))
    return out
