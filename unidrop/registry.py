"""The backend registry: plugins found through the ``unidrop.backends`` entry points.

Entry points are read once and cached. Loading a plugin imports only its small
backend module, never its framework. A plugin that fails to load is reported with a
warning naming it while the others keep working; two plugins claiming one name warn
and the first one found is kept.
"""

from __future__ import annotations

import sys
import threading
import warnings
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .backend import Backend

ENTRY_POINT_GROUP = "unidrop.backends"

#: Array libraries unidrop knows a backend for: top-level module -> distribution to install.
KNOWN_BACKENDS = {
    "numpy": "unidrop-numpy",
    "torch": "unidrop-torch",
    "jax": "unidrop-jax",
    "jaxlib": "unidrop-jax",
    "cupy": "unidrop-cupy",
}


@dataclass(frozen=True)
class BackendInfo:
    """What :func:`list_backends` reports about one installed backend."""

    name: str
    distribution: str
    version: str
    framework: str
    loaded: bool  # True once the backend's framework has been imported in this process


_lock = threading.RLock()
_backends: dict[str, Backend] | None = None
_versions: dict[str, str] = {}


def _load_entry_point(entry_point: EntryPoint) -> Backend:
    obj = entry_point.load()
    backend = obj() if isinstance(obj, type) else obj
    if not isinstance(backend, Backend):
        raise TypeError(f"{entry_point.value} is not a unidrop.Backend subclass or instance")
    return backend


def _initializing(name: str) -> bool:
    """True while the module ``name`` is executing its import (it is partially initialized)."""
    module = sys.modules.get(name)
    return module is not None and bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def _discover() -> dict[str, Backend] | None:
    """The installed backends by name; None if a plugin's import is what imported unidrop."""
    found: dict[str, Backend] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if _initializing(entry_point.module):
            return None  # its import led to ``import unidrop``: discover once it has finished
        dist = getattr(entry_point, "dist", None)
        origin = f"{dist.name} {dist.version}" if dist is not None else entry_point.value
        try:
            backend = _load_entry_point(entry_point)
        except Exception as error:  # a broken plugin must not take the others down
            packages = entry_point.module.split(".")
            if any(_initializing(".".join(packages[:n])) for n in range(1, len(packages))):
                return None  # its package is still importing: discover once it has finished
            warnings.warn(
                f"unidrop backend {entry_point.name!r} ({origin}) failed to load and is skipped: "
                f"{type(error).__name__}: {error}",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        if backend.name in found:
            warnings.warn(
                f"two unidrop backends claim the name {backend.name!r}; keeping "
                f"{found[backend.name].distribution}, ignoring {origin}",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        found[backend.name] = backend
        _versions[backend.name] = dist.version if dist is not None else "unknown"
    return found


def backends() -> dict[str, Backend]:
    """All installed backends by name, discovered on first use and cached."""
    global _backends
    found = _backends  # the cached registry is read without the lock: torch.compile cannot trace one
    if found is not None:
        return found
    with _lock:
        if _backends is None:
            found = _discover()
            if found is None:  # called while a plugin imports unidrop: answer now, cache later
                return {}
            _backends = found
        return _backends


def register(backend: Backend, version: str = "unregistered") -> None:
    """Add a backend by hand (for tests or embedding); it takes precedence over one of the same name."""
    if not isinstance(backend, Backend):
        raise TypeError(f"register() needs a unidrop.Backend instance, got {backend!r}")
    with _lock:
        backends()[backend.name] = backend
        _versions[backend.name] = version


def reset() -> None:
    """Forget the cached discovery, so the next lookup reads the entry points again."""
    global _backends
    with _lock:
        _backends = None
        _versions.clear()


def get_backend(name: str | Backend) -> Backend:
    """The backend called ``name`` (a Backend instance is returned as is)."""
    if isinstance(name, Backend):
        return name
    found = backends()
    if name not in found:
        raise ValueError(
            f"no unidrop backend named {name!r}; installed: {_installed_names()}. {_install_hints()}"
        )
    return found[name]


def backend_for(x: Any) -> Backend:
    """The backend that handles the array ``x``; TypeError naming its type if none does."""
    for backend in backends().values():
        if backend.framework in sys.modules and backend.accepts(x):
            return backend
    kind = type(x)
    module = kind.__module__.split(".")[0]
    missing = KNOWN_BACKENDS.get(module)
    hint = (
        f"install its backend with `pip install {missing}`"
        if missing
        else "write a backend for it (see docs/backend-guide.md)"
    )
    raise TypeError(
        f"unidrop has no backend for {kind.__module__}.{kind.__qualname__}; installed backends: "
        f"{_installed_names()}; {hint}"
    )


def list_backends() -> list[BackendInfo]:
    """The installed backends: name, distribution, version, framework and whether it is loaded."""
    return [
        BackendInfo(
            name=name,
            distribution=backend.distribution,
            version=_versions.get(name, "unknown"),
            framework=backend.framework,
            loaded=backend.framework in sys.modules,
        )
        for name, backend in backends().items()
    ]


def _installed_names() -> str:
    names = sorted(backends())
    return ", ".join(names) if names else "none"


def _install_hints() -> str:
    missing = sorted({d for d in KNOWN_BACKENDS.values()} - {b.distribution for b in backends().values()})
    return f"Available to install: {', '.join(missing)}." if missing else ""
