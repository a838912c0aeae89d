"""The project's own backends, and the hints that tell a user how to install or use one.

This is the one place that lists the ``unidrop-*`` distributions of this project: the
registry uses it to recognise them (a third-party plugin never displaces one) and every
error message and the CLI take their install commands from here.
"""

from __future__ import annotations

import array
import contextlib
import numbers
import re
from importlib.metadata import packages_distributions
from typing import Any

#: The project's backends: backend name (= framework module = folder under ``backends/``) -> distribution.
PROJECT_BACKENDS: dict[str, str] = {
    "numpy": "unidrop-numpy",
    "torch": "unidrop-torch",
    "jax": "unidrop-jax",
    "cupy": "unidrop-cupy",
}

#: The distributions of this project, by normalized name.
PROJECT_DISTRIBUTIONS = frozenset(PROJECT_BACKENDS.values())

#: Top-level modules whose arrays belong to another module's framework (``jax.Array`` is ``jaxlib``'s).
FRAMEWORK_ALIASES: dict[str, str] = {"jaxlib": "jax"}

#: The project's backends that another one requires (unidrop-torch builds on unidrop-numpy): none of
#: them is on an index yet, so installing from a checkout must name them too.
PROJECT_REQUIRES: dict[str, tuple[str, ...]] = {"torch": ("numpy",)}

#: Python's own values that are not arrays but are often passed as if they were.
PYTHON_VALUES = (list, tuple, range, numbers.Number, array.array, memoryview)
#: Attributes through which numpy.asarray converts an object of another library.
ARRAY_PROTOCOLS = ("__array__", "__array_interface__", "__array_struct__")


def normalize_distribution(name: str) -> str:
    """A distribution name in the normalized form of PEP 503 (``Unidrop_NumPy`` -> ``unidrop-numpy``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_project_distribution(name: str | None) -> bool:
    """True if ``name`` is one of this project's ``unidrop-*`` backend distributions."""
    return name is not None and normalize_distribution(name) in PROJECT_DISTRIBUTIONS


def distributions_of_module(module: str) -> frozenset[str]:
    """The normalized names of the distributions that may install the top-level module ``module``.

    Its own name (``torch`` -> ``torch``) and those the installed metadata names for it
    (``cupy`` -> ``cupy-cuda12x``); read from metadata, importing nothing. Slow (it reads every
    installed distribution's file list): for error messages only.
    """
    names = {normalize_distribution(module)}
    with contextlib.suppress(Exception):  # unreadable metadata costs only the hint
        names.update(normalize_distribution(name) for name in packages_distributions().get(module, ()))
    return frozenset(names)


def framework_of_module(module: str) -> str:
    """The framework a module's top-level package belongs to (``jaxlib._jax`` -> ``jax``)."""
    top = module.split(".")[0]
    return FRAMEWORK_ALIASES.get(top, top)


def install_command(name: str) -> str:
    """How to install the project's backend ``name``: from a checkout now, from an index later."""
    folders = " ".join(f"./backends/{needed}" for needed in (*PROJECT_REQUIRES.get(name, ()), name))
    return (
        f"`pip install {folders}` from a checkout of unidrop "
        f"(`pip install {PROJECT_BACKENDS[name]}` once it is published)"
    )


def no_backend_hint(x: Any, installed: frozenset[str]) -> str:
    """What to tell a user whose ``x`` no backend takes; ``installed`` holds the backend names."""
    kind = type(x)
    framework = framework_of_module(kind.__module__)
    if framework in PROJECT_BACKENDS and framework not in installed:
        return f"install its backend with {install_command(framework)}"
    if isinstance(x, PYTHON_VALUES):
        name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
        what = "a Python scalar" if isinstance(x, numbers.Number) else f"a Python {name}"
        hint = f"{what} is not an array: convert it first, e.g. with numpy.asarray(x)"
    elif any(hasattr(kind, protocol) for protocol in ARRAY_PROTOCOLS):
        hint = (
            "it converts with numpy.asarray: pass numpy.asarray(x), "
            "or write a backend for its type (see docs/backend-guide.md)"
        )
    else:
        return "write a backend for it (see docs/backend-guide.md)"
    if "numpy" not in installed:
        hint += f", and install the NumPy backend with {install_command('numpy')}"
    return hint
