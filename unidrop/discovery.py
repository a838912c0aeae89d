"""Finding the installed backends: entry points of the group ``unidrop.backends``, read defensively.

Any fault of a plugin (an entry point whose value is not ``module:Class``, its import, a missing
or unusable ``name`` or ``framework``, an object that is not a Backend, a ``name`` that is not
its entry point's name) costs that plugin alone: it is skipped with a ``RuntimeWarning`` naming
it and its distribution, and remembered, so that an error for an array of its framework says
it is installed but failed to load. Two plugins claiming one name: this project's ``unidrop-*``
distribution is kept whatever the entry points' order, otherwise the first by normalized
distribution name (then by entry point value); the warning names both, and the other one is
remembered as :class:`Ignored`, so that an error for an array only it takes names it.
"""

from __future__ import annotations

import contextlib
import re
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
    requires: frozenset[str] = frozenset()  # what its distribution requires (normalized names)

    @property
    def label(self) -> str:
        """``'torch' (unidrop-torch 0.1.0)``: how messages name it."""
        return f"{self.name!r} ({self.distribution} {self.version})".replace(" )", ")")

    def may_serve(self, framework: str) -> bool:
        """True if, as far as is known without importing it, it is the plugin for ``framework``'s arrays.

        That is: its framework (read where the backend loaded, or one of this project's) or its
        entry point's name is ``framework``, or its distribution requires the distribution that
        installs the module ``framework`` (``Requires-Dist``, outside extras).
        """
        if framework in (self.framework, self.name):
            return True
        return bool(self.requires) and not self.requires.isdisjoint(hints.distributions_of_module(framework))


@dataclass(frozen=True)
class Ignored:
    """A usable plugin left out because another plugin, ``kept``, claims the same name."""

    plugin: Plugin
    kept: Plugin

    @property
    def reason(self) -> str:
        """Why it is not used, and the fix: uninstall one of the two."""
        return (
            f"{self.kept.label} claims the same name and is kept ({_why_kept(self.kept, self.plugin)}); "
            f"uninstall one of the two distributions, {self.plugin.distribution} or {self.kept.distribution}"
        )

    @property
    def advice(self) -> str:
        """What an error for an array that only it takes says."""
        return f"its backend {self.plugin.label} is installed but ignored: {self.reason}"


class PluginFault(Exception):
    """A plugin broke the backend contract (the message says how)."""


#: What a plugin's code may raise that is its own fault, not the caller's: any error, and
#: SystemExit too (a module that calls ``sys.exit("needs CUDA")`` on import must not end the
#: program that imported unidrop). KeyboardInterrupt still interrupts.
PLUGIN_ERRORS = (Exception, SystemExit)


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


#: An entry point's value as unidrop loads it: ``module:attribute``, each a dotted Python name,
#: optionally followed by ``[extras]`` (the packaging specification's form, minus a bare module).
_VALUE = re.compile(r"\s*[^\W\d]\w*(\.[^\W\d]\w*)*\s*:\s*[^\W\d]\w*(\.[^\W\d]\w*)*\s*(\[[^\[\]]*\])?\s*")
#: The name that starts a requirement (``faultarr>=1.0; python_version > '3.9'``).
_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def check_value(value: Any) -> None:
    """Nothing if ``value`` is an entry point value of the form ``module:Class``; PluginFault otherwise."""
    if not isinstance(value, str) or not _VALUE.fullmatch(value):
        raise PluginFault(
            f"its entry point's value {value!r} is malformed: expected 'module:Class' (a dotted module "
            "path, a colon, the Backend class), e.g. 'unidrop_numpy.backend:NumpyBackend'"
        )


def _origin(entry_point: EntryPoint) -> tuple[str, str]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return f"entry point {entry_point.value}", ""
    return str(dist.name), str(dist.version)


def _load(entry_point: EntryPoint) -> Any:
    check_value(entry_point.value)  # EntryPoint.load() would fail with an AttributeError about a regex
    obj = entry_point.load()
    return obj() if isinstance(obj, type) else obj


def _required_distributions(entry_point: EntryPoint) -> frozenset[str]:
    """The distributions the entry point's distribution requires outside extras, normalized; read from
    its metadata (nothing is imported), empty where it has none or they cannot be read."""
    try:
        requirements = getattr(getattr(entry_point, "dist", None), "requires", None) or ()
        names = set()
        for requirement in requirements:
            spec, _, marker = str(requirement).partition(";")
            match = _REQUIREMENT_NAME.match(spec)
            if match and "extra" not in marker:
                names.add(hints.normalize_distribution(match.group(1)))
        return frozenset(names)
    except Exception:  # unreadable metadata costs only the hint
        return frozenset()


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
        entry_point.name,
        distribution,
        version,
        _guess_framework(entry_point, distribution, backend),
        error,
        _required_distributions(entry_point),
    )
    warn_about_plugins(f"unidrop backend {failure.label} failed to load and is skipped: {error}", 4)
    return failure


def warn_about_plugins(message: str, stacklevel: int) -> None:
    """A RuntimeWarning about the installed plugins that never stops the caller (``stacklevel``
    counts from the caller): where warnings are turned into errors (``-W error``, pytest's
    ``filterwarnings = error``) it is dropped, and the fault stays on record (``unidrop backends``
    lists it, and a call on that plugin's arrays raises naming it). A faulty plugin thus never
    stops discovery, which runs at ``import unidrop``, nor a call another backend serves."""
    with contextlib.suppress(Warning):
        warnings.warn(message, RuntimeWarning, stacklevel=stacklevel + 1)


def discover(entries: Iterable[EntryPoint]) -> tuple[list[Plugin], list[Failure], list[Ignored]] | None:
    """The usable plugins in the documented order, the failed ones, and those ignored for a name taken.

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
            if name != entry_point.name:  # registered under one name, the guide promises
                raise PluginFault(
                    f"its entry point is named {entry_point.name!r} but its Backend.name is {name!r}: "
                    "they must be the same (rename the entry point or the backend)"
                )
        except PLUGIN_ERRORS as error:  # a broken plugin must not take the others down
            if _importing_elsewhere(error):
                return None  # its import led to unidrop: discover once it has finished
            failures.append(
                _fail(entry_point, distribution, version, backend, f"{type(error).__name__}: {error}")
            )
            continue
        ours = hints.is_project_distribution(distribution)
        plugin = Plugin(backend, name, framework, distribution, version, ours)
        candidates.append((plugin, str(entry_point.value)))
    plugins, ignored = _resolve_duplicates(candidates)
    return plugins, failures, ignored


def _why_kept(kept: Plugin, other: Plugin) -> str:
    return "this project's own" if kept.ours and not other.ours else "first by distribution name"


def _resolve_duplicates(candidates: list[tuple[Plugin, str]]) -> tuple[list[Plugin], list[Ignored]]:
    """One plugin per name, the same whatever the entry points' order: this project's ``unidrop-*``
    one first, then the first by normalized distribution name, then by entry point value.

    The others are returned as :class:`Ignored`, each with a warning naming both and the fix.
    """
    candidates.sort(
        key=lambda item: (not item[0].ours, hints.normalize_distribution(item[0].distribution), item[1])
    )
    kept: dict[str, Plugin] = {}
    ignored: list[Ignored] = []
    for plugin, _ in candidates:
        first = kept.get(plugin.name)
        if first is None:
            kept[plugin.name] = plugin
            continue
        ignored.append(Ignored(plugin, first))
        warn_about_plugins(
            f"two unidrop backends claim the name {plugin.name!r}: keeping {first.origin} "
            f"({_why_kept(first, plugin)}), ignoring {plugin.origin}; uninstall one of the two to "
            "choose the other",
            4,
        )
    return sorted(kept.values(), key=sort_key), ignored
