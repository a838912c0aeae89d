"""The suite's check that a backend's entry point loads light: it imports no array framework.

``import unidrop`` loads every installed backend's descriptor (the module its entry point names),
so a descriptor that imports its framework makes ``import unidrop`` heavy for every user of every
backend. The check runs in a fresh interpreter: ``import unidrop`` with only the backend's own
entry point to discover, then list ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from unidrop.discovery import ENTRY_POINT_GROUP
from unidrop.hints import framework_of_module

from .helpers import SuitePart

#: Array frameworks (and the suite's own test tools) that no descriptor may import.
FRAMEWORKS = frozenset(
    {"numpy", "torch", "jax", "jaxlib", "cupy", "triton", "xarray", "pandas", "dask", "tensorflow",
     "keras", "mlx", "array_api_compat", "array_api_strict", "pytest", "hypothesis"}
)  # fmt: skip

#: Run in a fresh interpreter: ``import unidrop`` discovering this one entry point alone (so that
#: another installed plugin's imports are not blamed on it), then print the modules loaded.
_LOAD = """
import json, sys
import importlib.metadata as metadata
everything = metadata.entry_points
def only_this_one(**selection):
    points = everything(**selection)
    if selection.get("group") != {group!r}:
        return points
    return [p for p in points if p.name == {name!r} and p.value == {value!r}]
metadata.entry_points = only_this_one
import unidrop
assert {name!r} in unidrop.registry.backends(), unidrop.registry.failures()
print(json.dumps(sorted(sys.modules)))
"""


class LoadingChecks(SuitePart):
    """Loading the backend's entry point, after ``import unidrop``, imports no framework."""

    def test_loading_the_entry_point_imports_no_framework(self) -> None:
        """No array framework (the backend's own included), no test tool and not the backend's
        implementation module is imported by ``import unidrop`` and loading the entry point."""
        backend = self.backend
        points = [p for p in entry_points(group=ENTRY_POINT_GROUP) if p.name == backend.name]
        if not points:
            pytest.skip(f"backend {backend.name!r} is registered by hand, not by an entry point")
        point = points[0]
        code = _LOAD.format(group=ENTRY_POINT_GROUP, name=point.name, value=point.value)
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, f"loading entry point {point.value!r} failed:\n{run.stderr}"
        loaded = set(json.loads(run.stdout.splitlines()[-1]))
        implementation = type(backend.implementation()).__module__
        forbidden = FRAMEWORKS | {framework_of_module(backend.framework), implementation}
        found = sorted(forbidden & loaded)
        assert not found, (
            f"loading the entry point {point.value!r} of backend {backend.name!r} imported {found}: "
            "its module must import no framework (import it in load() and suite_adapter())"
        )
