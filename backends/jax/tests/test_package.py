"""Packaging: the entry point, lazy imports, the descriptor, implementation and suite adapter."""

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
from unidrop_jax import JaxBackend
from unidrop_jax.implementation import JaxImplementation
from unidrop_jax.suite_adapter import JaxSuiteAdapter

import unidrop


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_the_descriptor_imports_neither_jax_nor_flax_and_load_imports_jax():
    out = run(
        "import sys, unidrop, unidrop_jax, unidrop_jax.backend\n"
        "names = [b.name for b in unidrop.list_backends()]\n"
        "backend = unidrop.get_backend('jax')\n"
        "backend.abilities, backend.framework, backend.distribution\n"
        "print('jax' in names, 'jax' in sys.modules, 'flax' in sys.modules)\n"
        "backend.implementation()\n"
        "print('jax' in sys.modules, 'flax' in sys.modules)"
    )
    assert out.splitlines() == ["True False False", "True False"]


def test_registered_under_the_entry_point_and_chosen_for_jax_arrays():
    backend = unidrop.get_backend("jax")
    assert isinstance(backend, JaxBackend) and backend.distribution == "unidrop-jax"
    assert backend.abilities == unidrop.Abilities(autograd=True, jit=True, explicit_seed=True)
    implementation = backend.implementation()
    assert isinstance(implementation, JaxImplementation) and backend.implementation() is implementation
    assert unidrop.registry.dispatch(jnp.ones(3)).implementation is implementation
    assert backend.version() == jax.__version__
    assert implementation.dtypes() == {"float16", "bfloat16", "float32"}  # x64 is off here


def test_float64_is_taken_once_x64_is_switched_on_after_a_first_call():
    """dtypes() reads jax_enable_x64 at each call: switched on after a float32 dropout, float64 works."""
    out = run(
        "import jax, jax.numpy as jnp, numpy as np, unidrop\n"
        "from unidrop import reference\n"
        "unidrop.dropout(jnp.ones(8, jnp.float32), 0.5, seed=1)\n"
        "implementation = unidrop.get_backend('jax').implementation()\n"
        "print('float64' in implementation.dtypes())\n"
        "jax.config.update('jax_enable_x64', True)\n"
        "print('float64' in implementation.dtypes())\n"
        "v = np.random.default_rng(2).standard_normal(29) * 3\n"
        "y = unidrop.dropout(jnp.asarray(v, jnp.float64), 0.3, seed=2**40 + 3, stream=5)\n"
        "want, _ = reference.dropout(list(v), (29,), 'float64', 0.3, 2**40 + 3, 5)\n"
        "print(y.dtype, np.asarray(y).tolist() == want)"
    )
    assert out.splitlines() == ["False", "True", "float64 True"]


def test_suite_adapter_round_trips_on_every_device():
    backend = unidrop.get_backend("jax")
    adapter = backend.suite_adapter()
    assert isinstance(adapter, JaxSuiteAdapter) and adapter.backend is backend
    devices = adapter.devices()
    assert devices and all(":" in d for d in devices)
    values = np.array([1.0, -2.5, 3.25], np.float32)
    for device in devices:
        for dtype in ("float16", "bfloat16", "float32"):
            x = adapter.from_numpy(values, dtype, device)
            assert x.dtype.name == dtype and adapter.device_of(x) == device
            assert np.array_equal(adapter.to_numpy(x).astype(np.float32), values)
    assert adapter.global_rng_state() is None  # JAX has no global random state


def test_suite_adapter_refuses_float64_without_x64_and_unknown_devices():
    adapter = unidrop.get_backend("jax").suite_adapter()
    with pytest.raises(TypeError, match="jax_enable_x64"):
        adapter.from_numpy(np.ones(2), "float64")
    with pytest.raises(ValueError, match=r"no JAX device 'tpu:7'; available: \['cpu:0"):
        adapter.from_numpy(np.ones(2), "float32", "tpu:7")


def test_full_mask_is_all_true_of_the_shape():
    mask = unidrop.get_backend("jax").implementation().full_mask(jnp.ones(3), (2, 3))
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


@pytest.mark.parametrize(
    "first", ["unidrop_jax.nnx_family", "unidrop_jax.nnx_convert", "unidrop_jax.nnx"], ids=lambda m: m[12:]
)
def test_each_nnx_module_imports_first_in_a_fresh_interpreter(first: str) -> None:
    """No import cycle: whichever module comes first, every public name of unidrop_jax.nnx is there."""
    code = (
        f"import importlib; importlib.import_module({first!r}); import unidrop_jax.nnx as n; "
        "print(sorted(name for name in n.__all__ if getattr(n, name, None) is not None))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() and "AlphaDropout" in done.stdout and "convert" in done.stdout, done.stdout
