"""The suite's LoadingChecks fail a backend whose entry-point module imports its framework."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

from unidrop import registry
from unidrop.conformance.loading import LoadingChecks

HEAVY = """
import numpy  # the fault: the descriptor's module imports its framework

from unidrop import Backend


class Heavy(Backend):
    name = "heavy"
    framework = "numpy"
    distribution = "heavy-dist"

    def accepts(self, x):
        return False

    def load(self):
        from unidrop_numpy.implementation import NumpyImplementation

        return NumpyImplementation()
"""


@pytest.fixture
def heavy_plugin(tmp_path, monkeypatch, fresh_registry):
    """A distribution ``heavy-dist`` installed in ``tmp_path``, with the entry point ``heavy``."""
    (tmp_path / "heavy_plugin.py").write_text(textwrap.dedent(HEAVY))
    info = tmp_path / "heavy_dist-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: heavy-dist\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[unidrop.backends]\nheavy = heavy_plugin:Heavy\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), *sys.path]))
    registry.reset()
    return "heavy"


class _Heavy(LoadingChecks):
    backend_name = "heavy"


class _Numpy(LoadingChecks):
    backend_name = "numpy"


def test_a_descriptor_importing_its_framework_fails_the_check(heavy_plugin):
    with pytest.raises(AssertionError, match=r"heavy_plugin:Heavy.*imported \['numpy'\]"):
        _Heavy().test_loading_the_entry_point_imports_no_framework()


def test_the_numpy_backend_passes_the_check(heavy_plugin):
    _Numpy().test_loading_the_entry_point_imports_no_framework()
