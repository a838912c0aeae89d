"""Packaging: the entry point, lazy imports, and the backend's adapters."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

import unidrop


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_importing_the_backend_and_listing_backends_imports_neither_jax_nor_flax():
    out = run(
        "import sys, unidrop, unidrop_jax, unidrop_jax.backend\n"
        "names = [b.name for b in unidrop.list_backends()]\n"
        "unidrop.get_backend('jax').dtypes\n"
        "print('jax' in names, 'jax' in sys.modules, 'flax' in sys.modules)"
    )
    assert out == "True False False"


def test_registered_under_the_entry_point_and_chosen_for_jax_arrays():
    backend = unidrop.get_backend("jax")
    assert backend.distribution == "unidrop-jax"
    assert unidrop.registry.backend_for(jnp.ones(3)) is backend
    assert backend.version() == jax.__version__
    assert {"float16", "bfloat16", "float32"} <= backend.dtypes
    assert "float64" not in backend.dtypes  # x64 is off here


def test_adapters_round_trip_and_devices():
    backend = unidrop.get_backend("jax")
    devices = backend.devices()
    assert devices and all(":" in d for d in devices)
    values = np.array([1.0, -2.5, 3.25], np.float32)
    for dtype in ("float16", "bfloat16", "float32"):
        x = backend.from_numpy(values, dtype, devices[0])
        assert x.dtype.name == dtype and backend.device_of(x) == devices[0]
        assert np.array_equal(backend.to_numpy(x).astype(np.float32), values)
    mask = backend.full_mask(jnp.ones(3), (2, 3))
    assert mask.dtype == bool and mask.shape == (2, 3) and bool(mask.all())


def test_the_nnx_layer_without_flax_says_how_to_install_it():
    out = run(
        "import sys\n"
        "sys.modules['flax'] = None  # as if Flax were not installed\n"
        "try:\n"
        "    import unidrop_jax.nnx\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    assert "pip install './backends/jax[flax]'" in out and "clone" in out


def _lower_bound(specifiers) -> Version:
    """The version of the single ``>=`` clause of a specifier set."""
    (bound,) = [s.version for s in specifiers if s.operator == ">="]
    return Version(bound)


def test_declared_python_and_numpy_ranges_are_the_ones_the_oldest_jax_installs_on():
    """requires-python and numpy's lower bound are those of the oldest jax declared (never lower)."""
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    requirements = {r.name: r for r in map(Requirement, project["dependencies"])}
    oldest_jax = _lower_bound(requirements["jax"].specifier)
    if Version(metadata.version("jax")) != oldest_jax:
        pytest.skip(f"needs jax=={oldest_jax}, the declared minimum, installed (the jax nox session pins it)")
    jax_meta = metadata.metadata("jax")
    python = _lower_bound(SpecifierSet(project["requires-python"]))
    assert python == _lower_bound(SpecifierSet(jax_meta["Requires-Python"]))
    jax_numpy = [Requirement(r) for r in jax_meta.get_all("Requires-Dist") if r.startswith("numpy")]
    assert jax_numpy and _lower_bound(requirements["numpy"].specifier) >= _lower_bound(jax_numpy[0].specifier)
    # the installed Flax (in the extra's range) installs on that Python and with that jax
    flax_meta = metadata.metadata("flax")
    assert _lower_bound(SpecifierSet(flax_meta["Requires-Python"])) <= python
    flax_jax = [Requirement(r) for r in flax_meta.get_all("Requires-Dist") if Requirement(r).name == "jax"]
    assert flax_jax and all(oldest_jax in r.specifier for r in flax_jax if r.marker is None)
