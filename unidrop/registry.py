"""The backend registry: which installed backend serves an array.

Backends are found once through the ``unidrop.backends`` entry points (see
:mod:`unidrop.discovery`) and published as one immutable snapshot; :func:`register` and
:func:`reset` publish a new snapshot instead of changing the one that readers may be
iterating, so readers never take a lock (``torch.compile`` can trace the cached path).

Which backend serves an array ``x`` (docs/backend-guide.md, "Which backend serves an array"):

1. the backends whose ``framework`` is the array's own module (the top-level module of
   ``type(x)`` or, for a subclass defined elsewhere, of the first class in its MRO that has
   one; ``jaxlib`` counts as ``jax``) are asked first;
2. then every other specific backend;
3. only if none of those accepts ``x``, the generic backends (``Backend.generic``, such as the
   Array API one), whether or not their framework is imported: they judge by the type alone;

each group in the documented order (this project's ``unidrop-*`` backends first, then the
others, each by name), and a specific one only once its framework is imported. The first whose ``accepts(x)``
is true serves ``x``, unless it fails to load or to read ``x``: then the next one does. If several
accept it, a ``RuntimeWarning`` names them all and the one that served it, once. The answer is
cached per ``type(x)`` (``accepts`` must depend on the type alone), and recomputed when a backend
is registered or a skipped framework is imported.
"""

from __future__ import annotations

import sys
import threading
import types
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, NamedTuple

from . import discovery, hints
from .arguments import type_name
from .backend import Backend, Implementation
from .discovery import (
    ENTRY_POINT_GROUP,
    PLUGIN_ERRORS,
    Failure,
    Ignored,
    Plugin,
    PluginFault,
    warn_about_plugins,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "BackendInfo",
    "Dispatch",
    "accepting",
    "backend_for",
    "backends",
    "dispatch",
    "failures",
    "get_backend",
    "ignored",
    "list_backends",
    "register",
    "reset",
    "server",
]


@dataclass(frozen=True)
class BackendInfo:
    """What :func:`list_backends` reports about one installed backend."""

    name: str
    distribution: str
    version: str
    framework: str
    loaded: bool  # True once the backend's framework has been imported in this process


class Dispatch(NamedTuple):
    """The implementation chosen for an array, with the array's shape and dtype as it reads them."""

    implementation: Implementation
    shape: tuple[int, ...]
    dtype: str
    dtypes: Collection[str]  # the implementation's supported dtypes


@dataclass(frozen=True)
class _Snapshot:
    """One published state of the registry; never changed once published, except its caches.

    The caches are dicts touched only by single ``get`` and item stores (atomic), never iterated.
    """

    plugins: tuple[Plugin, ...]  # in the documented order
    by_name: Mapping[str, Plugin]
    backends: Mapping[str, Backend]
    failures: tuple[Failure, ...]
    #: usable plugins left out because another plugin of their name is kept
    ignored: tuple[Ignored, ...] = ()
    #: type -> (accepting plugins in dispatch order, frameworks skipped because not yet imported)
    by_type: dict[type, tuple[tuple[Plugin, ...], tuple[str, ...]]] = field(default_factory=dict)
    #: (backend name, or id of the Backend instance, passed as ``backend=``; type) -> the registered
    #: plugin that accepted that type
    chosen_by_type: dict[tuple[str | int, type], Plugin] = field(default_factory=dict)
    warned: dict[Any, bool] = field(default_factory=dict)


def _snapshot(plugins: list[Plugin], failures: list[Failure], ignored: Sequence[Ignored] = ()) -> _Snapshot:
    ordered = tuple(sorted(plugins, key=discovery.sort_key))
    return _Snapshot(
        plugins=ordered,
        by_name=types.MappingProxyType({plugin.name: plugin for plugin in ordered}),
        backends=types.MappingProxyType({plugin.name: plugin.backend for plugin in ordered}),
        failures=tuple(failures),
        ignored=tuple(ignored),
    )


_lock = threading.RLock()
_state: _Snapshot | None = None
#: Backends registered by hand, by name, kept apart from what discovery finds: a registration
#: made before discovery has finished (during a plugin's import) is merged in when it does.
_registered: dict[str, Plugin] = {}
#: True while discovery runs; set and read under ``_lock`` only, so it means "in this thread".
_discovering = False


def _current() -> _Snapshot:
    """The published snapshot, discovering backends on first use (read without a lock once there).

    Called again while discovery runs (a plugin's import, run by discovery, calls unidrop), or
    while a plugin's own import is what imported unidrop, it answers with the backends registered
    so far and publishes nothing: discovery finishes, or runs again, once that import has.
    """
    global _state, _discovering
    state = _state
    if state is not None:
        return state
    with _lock:
        if _state is not None:
            return _state
        if _discovering:
            return _provisional()
        _discovering = True
        try:
            found = discovery.discover(entry_points(group=ENTRY_POINT_GROUP))
        finally:
            _discovering = False
        if found is None:
            return _provisional()
        _state = _merge_registered(*found)
        return _state


def _provisional() -> _Snapshot:
    """What is known before discovery has finished: the backends registered by hand."""
    return _snapshot(list(_registered.values()), [])


def _merge_registered(plugins: list[Plugin], failures: list[Failure], ignored: list[Ignored]) -> _Snapshot:
    """Discovery's findings with the hand-registered backends in place of those of their names."""
    for plugin in _registered.values():
        replaced = next((p for p in plugins if p.name == plugin.name), None)
        if replaced is not None:
            warnings.warn(
                f"register() replaces unidrop backend {replaced.label} with {plugin.label}",
                RuntimeWarning,
                stacklevel=4,
            )
    plugins = [p for p in plugins if p.name not in _registered] + list(_registered.values())
    return _snapshot(plugins, [f for f in failures if f.name not in _registered], ignored)


def backends() -> Mapping[str, Backend]:
    """All usable backends by name, in the documented order (a read-only mapping)."""
    return _current().backends


def failures() -> list[Failure]:
    """The installed plugins that failed to load, with their errors."""
    return list(_current().failures)


def ignored() -> list[Ignored]:
    """The installed plugins left out because another plugin claims their name, each with the one kept."""
    return list(_current().ignored)


def register(backend: Backend, version: str = "unregistered") -> None:
    """Add a backend by hand (for tests or embedding); it replaces one of the same name, with a warning."""
    global _state
    try:
        name, framework = discovery.read_identity(backend)
    except PluginFault as error:
        raise TypeError(
            f"register() needs a unidrop.Backend instance with a name and a framework: {error}"
        ) from None
    try:
        distribution = str(getattr(backend, "distribution", "unregistered"))
    except Exception:
        distribution = "unregistered"
    plugin = Plugin(
        backend, name, framework, distribution, str(version), hints.is_project_distribution(distribution)
    )
    with _lock:
        _current()  # discover first, unless discovery is running or waits for a plugin's import
        state = _state
        replaced = (state.by_name if state is not None else _registered).get(name)
        if replaced is not None:
            warnings.warn(
                f"register() replaces unidrop backend {replaced.label} with {plugin.label}",
                RuntimeWarning,
                stacklevel=2,
            )
        _registered[name] = plugin
        if state is not None:  # otherwise discovery merges it in when it finishes
            plugins = [p for p in state.plugins if p.name != name] + [plugin]
            _state = _snapshot(plugins, [f for f in state.failures if f.name != name], state.ignored)


def reset() -> None:
    """Forget the discovered and registered backends, so the next lookup reads the entry points again."""
    global _state
    with _lock:
        _state = None
        _registered.clear()


def get_backend(name: str | Backend) -> Backend:
    """The backend called ``name`` (a Backend instance is returned as is)."""
    if isinstance(name, Backend):
        return name
    if not isinstance(name, str):
        raise TypeError(
            f"backend must be a backend name (a str such as 'numpy') or a unidrop.Backend instance, "
            f"got {name!r} of type {type(name).__name__}"
        )
    state = _current()
    plugin = state.by_name.get(name)
    if plugin is not None:
        return plugin.backend
    for failure in state.failures:
        if failure.name == name:
            raise ValueError(
                f"unidrop backend {failure.label} is installed but failed to load: {failure.error}"
            )
    hint = (
        f"; install it with {hints.install_command(name)}"
        if name in hints.PROJECT_BACKENDS
        else f". {_install_hints(state)}"
    )
    raise ValueError(f"no unidrop backend named {name!r}; installed: {_installed_names(state)}{hint}")


def _warn_once(state: _Snapshot, key: Any, message: str, stacklevel: int = 4) -> None:
    """Warn ``message`` the first time ``key`` is met in ``state``; ``stacklevel`` counts from here.

    These warnings are about the installed plugins, not the call: where warnings are turned into
    errors (``-W error``) the warning is dropped rather than raised, so the call still gets served.
    """
    if key not in state.warned:
        state.warned[key] = True
        warn_about_plugins(message, stacklevel)


def _accepts(state: _Snapshot, plugin: Plugin, x: Any) -> bool:
    """``plugin.backend.accepts(x)``; a fault warns naming the plugin and counts as False."""
    try:
        return bool(plugin.backend.accepts(x))
    except Exception as error:
        _warn_once(
            state,
            (plugin.name, "accepts", type(x)),
            f"unidrop backend {plugin.label} failed in accepts() on {type_name(x)} and is skipped for it: "
            f"{type(error).__name__}: {error}",
        )
        return False


def _owner(state: _Snapshot, kind: type) -> str | None:
    """The framework of the array type ``kind``: the first module along its MRO that a backend serves."""
    frameworks = {plugin.framework for plugin in state.plugins}
    for cls in kind.__mro__:
        module = getattr(cls, "__module__", None)
        if isinstance(module, str) and hints.framework_of_module(module) in frameworks:
            return hints.framework_of_module(module)
    return None


def _is_generic(plugin: Plugin) -> bool:
    """True if ``plugin`` declares itself generic (``Backend.generic is True``); a fault counts as False."""
    try:
        return getattr(plugin.backend, "generic", False) is True
    except Exception:
        return False


def _askable(plugin: Plugin) -> bool:
    """True if ``plugin`` may be asked about an array now: it is generic, or its framework is imported."""
    return plugin.framework in sys.modules or _is_generic(plugin)


def _resolve(state: _Snapshot, x: Any) -> tuple[Plugin, ...]:
    """Ask every backend, in dispatch order, whether it accepts ``x``; cache the answer for its type.

    The generic backends are asked only if no specific one accepts ``x``.
    """
    kind = type(x)
    owner = _owner(state, kind)
    specific = [plugin for plugin in state.plugins if not _is_generic(plugin)]
    first = [plugin for plugin in specific if plugin.framework == owner]
    rest = [plugin for plugin in specific if plugin.framework != owner]
    accepting: list[Plugin] = []
    skipped: list[str] = []
    for plugin in first + rest:
        if plugin.framework not in sys.modules:
            skipped.append(plugin.framework)
        elif _accepts(state, plugin, x):
            accepting.append(plugin)
    if not accepting:
        accepting = [plugin for plugin in state.plugins if _is_generic(plugin) and _accepts(state, plugin, x)]
    result = tuple(accepting)
    if result:
        state.by_type[kind] = (result, tuple(skipped))
    return result


def _warn_several(
    state: _Snapshot, x: Any, accepting: Sequence[Plugin], index: int, stacklevel: int = 4
) -> None:
    """Warn, once per conflict, that ``accepting`` (more than one) all accept ``x`` and the one at
    ``index`` serves it (those before it failed on it); ``stacklevel`` counts from the caller."""
    served, failed, others = accepting[index], accepting[:index], accepting[index + 1 :]
    key = ("several", served.name, frozenset(p.name for p in failed), frozenset(p.name for p in others))
    if key in state.warned:
        return
    owner = _owner(state, type(x))
    if failed:
        why = "those before it failed on it"
    elif served.framework == owner:
        why = f"its framework is the array's module, {owner}"
    else:
        why = "first in order"
    also = [f"{p.label}, which failed on it" for p in failed] + [p.label for p in others]
    _warn_once(
        state,
        key,
        f"several unidrop backends accept {type_name(x)}: {served.label} serves it ({why}); "
        f"also accepting it: {', '.join(also)}. Pass backend=NAME to choose another; "
        "see 'Which backend serves an array' in docs/backend-guide.md",
        stacklevel + 1,
    )


def accepting(x: Any) -> tuple[Plugin, ...]:
    """The backends that accept ``x``, in the order they are tried (empty if none does); warns nothing.

    The first is the one that serves ``x`` unless it fails to load or to read ``x`` (:func:`server`).
    """
    return _accepting(_current(), x)


def _accepting(state: _Snapshot, x: Any) -> tuple[Plugin, ...]:
    """:func:`accepting` in the registry's published ``state``."""
    cached = state.by_type.get(type(x))
    if cached is not None:
        found, skipped = cached
        fresh = True
        for framework in skipped:
            if framework in sys.modules:
                fresh = False
        if fresh:
            return found
    return _resolve(state, x)


def backend_for(x: Any) -> Backend:
    """The backend chosen for the array ``x`` by ``accepts()`` alone (nothing is loaded); TypeError
    naming its type and the fix if none accepts it. If several do, a RuntimeWarning names them, once.

    :func:`dispatch` uses the next one if it fails to load or to read ``x``; :func:`server` says which.
    """
    state = _current()
    found = _accepting(state, x)
    if not found:
        raise _no_backend(state, x)
    if len(found) > 1:
        _warn_several(state, x, found, 0)
    return found[0].backend


def server(x: Any) -> Plugin:
    """The backend that really serves ``x``: the one :func:`dispatch` uses, loading it if need be.

    The first backend accepting ``x`` whose implementation loads and reads ``x``; each one that
    fails warns, naming it. Raises as :func:`dispatch` does: TypeError if none accepts ``x``,
    RuntimeError naming the plugin if every one fails.
    """
    state = _current()
    candidates = _accepting(state, x)
    if not candidates:
        raise _no_backend(state, x)
    return _serve(state, candidates, x)[0]


def dispatch(x: Any, backend: str | Backend | None = None) -> Dispatch:
    """The implementation for ``x`` (of ``backend`` if given) with ``x``'s shape and dtype as it reads them.

    A TypeError or ValueError from an implementation's ``shape_and_dtype`` is its verdict on ``x``
    and reaches the caller. Any other exception (loading the implementation included), an answer
    that is not a shape (a sequence) and a dtype name, or ``dtypes()`` that are not a collection,
    is a fault of that plugin:
    it is named in a ``RuntimeWarning`` and the next backend accepting ``x`` is used; if none is
    left (or ``backend`` was given), a RuntimeError names the plugin.
    """
    state = _current()
    if backend is not None:
        by_name = isinstance(backend, str)
        key = (backend if isinstance(backend, str) else id(backend), type(x))
        plugin = state.chosen_by_type.get(key)  # accepts() answers by type: asked once per type
        if plugin is None or not (by_name or plugin.backend is backend):
            plugin = _plugin_of(state, get_backend(backend))
            if not (_askable(plugin) and _accepts(state, plugin, x)):
                raise _refused(state, plugin, x)
            if state.by_name.get(plugin.name) is plugin:  # a registered backend (not a passing instance)
                state.chosen_by_type[key] = plugin
        candidates: tuple[Plugin, ...] = (plugin,)
    else:
        candidates = _accepting(state, x)
        if not candidates:
            raise _no_backend(state, x)
    return _serve(state, candidates, x)[1]


def _serve(state: _Snapshot, candidates: tuple[Plugin, ...], x: Any) -> tuple[Plugin, Dispatch]:
    """The first of ``candidates`` whose implementation loads and reads ``x``, and what it read;
    each fault warns and the next is tried (:func:`dispatch` says what is a fault)."""
    fault: Exception | None = None
    for index, plugin in enumerate(candidates):
        try:
            implementation = plugin.backend.implementation()
        except PLUGIN_ERRORS as error:
            fault = _fault(plugin, x, f"loading it raised {type(error).__name__}: {error}", error)
        else:
            try:
                answer = implementation.shape_and_dtype(x)
            except (TypeError, ValueError):
                raise
            except Exception as error:
                fault = _fault(plugin, x, f"shape_and_dtype() raised {type(error).__name__}: {error}", error)
            else:
                try:
                    found = _read_answer(implementation, answer)
                except Exception as error:  # a malformed answer is the plugin's fault, not a verdict on x
                    fault = _fault(plugin, x, f"{type(error).__name__}: {error}", error)
                else:
                    if len(candidates) > 1:
                        _warn_several(state, x, candidates, index, stacklevel=5)  # dispatch's caller's caller
                    return plugin, found
        if index + 1 < len(candidates):
            key = (plugin.name, "shape_and_dtype", type(x))
            _warn_once(state, key, f"{fault}; trying the next backend", stacklevel=5)
    assert fault is not None
    raise fault


def _read_answer(implementation: Implementation, answer: Any) -> Dispatch:
    """The Dispatch of an implementation's ``shape_and_dtype`` answer and ``dtypes()``, checked for form.

    Shape entries are not converted: under a compiler they may be symbolic sizes.
    """
    shape, dtype = answer
    if isinstance(shape, (str, bytes)) or not isinstance(dtype, str):
        raise TypeError(f"shape_and_dtype() answered {answer!r}, not a shape and a dtype name")
    supported = implementation.dtypes()
    if type(supported) is not frozenset:
        supported = frozenset(supported)
    if supported not in _DTYPE_NAME_SETS:  # checked once per set (a frozenset keeps its hash)
        if not all(type(name) is str for name in supported):
            raise TypeError(f"dtypes() answered {set(supported)!r}, not dtype names such as 'float32'")
        _DTYPE_NAME_SETS.add(supported)
    return tuple.__new__(Dispatch, (implementation, tuple(shape), dtype, supported))  # as Dispatch(), faster


#: The ``dtypes()`` answers seen to hold only dtype names.
_DTYPE_NAME_SETS: set[frozenset[str]] = set()


def _fault(plugin: Plugin, x: Any, what: str, cause: BaseException) -> RuntimeError:
    """The error naming ``plugin`` when it failed on ``x`` (``what`` says how)."""
    fault = RuntimeError(f"unidrop backend {plugin.label} failed on {type_name(x)}: {what}")
    fault.__cause__ = cause
    return fault


def _plugin_of(state: _Snapshot, backend: Backend) -> Plugin:
    """The registry's record of ``backend``, or one made now for an unregistered Backend instance."""
    for plugin in state.plugins:
        if plugin.backend is backend:
            return plugin
    try:
        name, framework = discovery.read_identity(backend)
    except PluginFault as error:
        raise TypeError(f"backend {backend!r} is not usable: {error}") from None
    return Plugin(backend, name, framework, "unregistered", "unknown", False)


def list_backends() -> list[BackendInfo]:
    """The installed backends in the documented order: name, distribution, version, framework, loaded."""
    return [
        BackendInfo(
            name=plugin.name,
            distribution=plugin.distribution,
            version=plugin.version,
            framework=plugin.framework,
            loaded=plugin.framework in sys.modules,
        )
        for plugin in _current().plugins
    ]


def _ignored_taking(state: _Snapshot, x: Any, name: str | None = None) -> Ignored | None:
    """The first ignored plugin (of ``name``, if given) that would take ``x``, or None."""
    for entry in state.ignored:
        if name in (None, entry.plugin.name) and _askable(entry.plugin) and _accepts(state, entry.plugin, x):
            return entry
    return None


def _refused(state: _Snapshot, plugin: Plugin, x: Any) -> TypeError:
    """The error for ``backend=NAME`` refusing ``x``; it names an ignored plugin of that name taking ``x``."""
    message = f"backend {plugin.name!r} does not take arrays of type {type_name(x)}"
    pushed_out = _ignored_taking(state, x, plugin.name)
    if pushed_out is not None:
        message += f"; {pushed_out.advice}"
    return TypeError(message)


def _no_backend(state: _Snapshot, x: Any) -> TypeError:
    """The error for an array no backend accepts: what is installed and what to do.

    It names an ignored plugin that would take ``x``, else a failed plugin that may be the one for
    ``x``'s framework (:meth:`Failure.may_serve`), else says how to install or write one.
    """
    if _discovering and _state is None:  # a plugin's import, run by discovery, called unidrop
        return TypeError(
            f"unidrop has no backend for {type_name(x)} yet: it is still discovering its backends, "
            "and a plugin's import called it (the backends found so far: "
            f"{_installed_names(state)}); call unidrop from functions, not while a module is imported"
        )
    framework = hints.framework_of_module(type(x).__module__)
    pushed_out = _ignored_taking(state, x)
    failure = None if pushed_out else next((f for f in state.failures if f.may_serve(framework)), None)
    if pushed_out is not None:
        hint = pushed_out.advice
    elif failure is not None:
        hint = f"its backend {failure.label} is installed but failed to load: {failure.error}"
    else:
        hint = hints.no_backend_hint(x, frozenset(state.by_name))
    return TypeError(
        f"unidrop has no backend for {type_name(x)}; installed backends: {_installed_names(state)}; {hint}"
    )


def _installed_names(state: _Snapshot) -> str:
    names = sorted(state.by_name)
    return ", ".join(names) if names else "none"


def _install_hints(state: _Snapshot) -> str:
    missing = [name for name in hints.PROJECT_BACKENDS if name not in state.by_name]
    if not missing:
        return ""
    return (
        "Available to install: "
        + "; ".join(f"{name}: {hints.install_command(name)}" for name in missing)
        + "."
    )
