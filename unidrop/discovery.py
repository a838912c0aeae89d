"""Finding the installed backends: entry points of the group ``unidrop.backends``, read defensively.

Any fault of a plugin (its import, a missing or unusable ``name`` or ``framework``, an object
that is not a Backend) costs that plugin alone: it is skipped with a ``RuntimeWarning`` naming
it and its distribution, and remembered, so that an error for an array of its framework says
it is installed but failed to load. Two plugins claiming one name: this project's ``unidrop-*``
distribution is kept whatever the entry points' order, otherwise the first distribution by
name; the warning names both.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import Any

from . import hints
from .backend import Abilities, Backend

ENTRY_POINT_GROUP = "unidrop.backends"


@dataclass(frozen=True)
class Plugin:
    """One usable backend and what the registry knows about it (read once, at discovery)."""

    backend: Backend
    name: str
    framework: str
    distribution: str
    version: str
    ours: bool  # from one of this project's unidrop-* distributions

    @property
    def origin(self) -> str:
        """``unidrop-numpy 0.1.0``: the distribution that installed it."""
        return f"{self.distribution} {self.version}".strip()

    @property
    def label(self) -> str:
        """``'numpy' (unidrop-numpy 0.1.0)``: how messages name it."""
        return f"{self.name!r} ({self.origin})"


@dataclass(frozen=True)
class Failure:
    """A plugin that is installed but could not be used."""

    name: str  # the entry point's name
    distribution: str
    version: str
    framework: str | None  # the framework it would have served, where known
    error: str

    @property
    def label(self) -> str:
        """``'torch' (unidrop-torch 0.1.0)``: how messages name it."""
        return f"{self.name!r} ({self.distribution} {self.version})".replace(" )", ")")


class PluginFault(Exception):
    """A plugin broke the backend contract (the message says how)."""


def read_identity(backend: Any) -> tuple[str, str]:
    """``(name, framework)`` of a backend object, each a non-empty str; PluginFault otherwise.

    Its ``abilities`` must be a :class:`~unidrop.backend.Abilities` too.
    """
    if not isinstance(backend, Backend):
        raise PluginFault(f"{backend!r} is not a unidrop.Backend subclass or instance")
    identity = []
    for attribute in ("name", "framework"):
        try:
            value = getattr(backend, attribute)
        except Exception as error:
            raise PluginFault(f"reading its {attribute} raised {type(error).__name__}: {error}") from error
        if not isinstance(value, str) or not value:
            raise PluginFault(f"its {attribute} must be a non-empty str, got {value!r}")
        identity.append(str(value))
    try:
        abilities = backend.abilities
    except Exception as error:
        raise PluginFault(f"reading its abilities raised {type(error).__name__}: {error}") from error
    if not isinstance(abilities, Abilities):
        raise PluginFault(f"its abilities must be a unidrop.Abilities, got {abilities!r}")
    return identity[0], identity[1]


def sort_key(plugin: Plugin) -> tuple[bool, str]:
    """The documented order: this project's backends first, then the others, each by name."""
    return (not plugin.ours, plugin.name)


def _importing_elsewhere(error: BaseException) -> bool:
    """True if ``error`` met a module whose import is still running further up the stack.

    That is the case where a plugin's own import imported (or called) unidrop: loading the
    plugin then reaches its partially initialised module. It is told by public behaviour alone:
    Python's ImportError or AttributeError that says "most likely due to a circular import" and
    names that module (``ImportError.name``, ``AttributeError.obj``), which is still in
    ``sys.modules`` after the failure. A module whose import failed by its own circular import is
    removed from ``sys.modules`` when it fails, so that plugin is a failure, not "still importing".
    """
    if not isinstance(error, (ImportError, AttributeError)) or "circular import" not in str(error):
        return False
    if isinstance(error, ImportError):
        name = error.name
    else:
        name = getattr(getattr(error, "obj", None), "__name__", None)
    return isinstance(name, str) and name in sys.modules


def _origin(entry_point: EntryPoint) -> tuple[str, str]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return f"entry point {entry_point.value}", ""
    return str(dist.name), str(dist.version)


def _load(entry_point: EntryPoint) -> Any:
    obj = entry_point.load()
    return obj() if isinstance(obj, type) else obj


def _guess_framework(entry_point: EntryPoint, distribution: str, backend: Any) -> str | None:
    try:
        framework = getattr(backend, "framework", None)
    except Exception:
        framework = None
    if isinstance(framework, str) and framework:
        return framework
    for name, dist in hints.PROJECT_BACKENDS.items():
        if hints.normalize_distribution(distribution) == dist:
            return name
    return str(entry_point.name)


def _fail(entry_point: EntryPoint, distribution: str, version: str, backend: Any, error: str) -> Failure:
    failure = Failure(
        entry_point.name, distribution, version, _guess_framework(entry_point, distribution, backend), error
    )
    warnings.warn(
        f"unidrop backend {failure.label} failed to load and is skipped: {error}",
        RuntimeWarning,
        stacklevel=4,
    )
    return failure


def discover(entries: Iterable[EntryPoint]) -> tuple[list[Plugin], list[Failure]] | None:
    """The usable plugins in the documented order, and the failed ones.

    None if a plugin's own import is what is importing or calling unidrop (its module is still
    partially initialised): discover again once it has finished.
    """
    candidates: list[tuple[Plugin, str]] = []
    failures: list[Failure] = []
    for entry_point in entries:
        distribution, version = _origin(entry_point)
        backend: Any = None
        try:
            backend = _load(entry_point)
            name, framework = read_identity(backend)
        except Exception as error:  # a broken plugin must not take the others down
            if _importing_elsewhere(error):
                return None  # its import led to unidrop: discover once it has finished
            failures.append(
                _fail(entry_point, distribution, version, backend, f"{type(error).__name__}: {error}")
            )
            continue
        ours = hints.is_project_distribution(distribution)
        plugin = Plugin(backend, name, framework, distribution, version, ours)
        candidates.append((plugin, str(entry_point.value)))
    return _resolve_duplicates(candidates), failures


def _resolve_duplicates(candidates: list[tuple[Plugin, str]]) -> list[Plugin]:
    """One plugin per name: this project's first, then by distribution and entry point (not path order)."""
    candidates.sort(
        key=lambda item: (not item[0].ours, hints.normalize_distribution(item[0].distribution), item[1])
    )
    kept: dict[str, Plugin] = {}
    for plugin, _ in candidates:
        first = kept.get(plugin.name)
        if first is None:
            kept[plugin.name] = plugin
            continue
        why = "this project's own" if first.ours and not plugin.ours else "first by distribution name"
        warnings.warn(
            f"two unidrop backends claim the name {plugin.name!r}: keeping {first.origin} ({why}), "
            f"ignoring {plugin.origin}",
            RuntimeWarning,
            stacklevel=4,
        )
    return sorted(kept.values(), key=sort_key)
