"""The CPU's FFI path (unidrop_jax.cpu_ffi): taken where it is built, and the same bits as the XLA path.

Expected values come from the XLA path (itself checked against unidrop.reference by the suite and
the other tests) and from unidrop.reference. The nox session conformance(jax) builds the handler
and sets ``UNIDROP_JAX_FFI=always``: there the first test proves the path is really taken.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import as_float64, expected, same_bits, values_for
from unidrop_jax import cpu_ffi

import unidrop

needs_handler = pytest.mark.skipif(not cpu_ffi.BUILT, reason=f"FFI handler not built: {cpu_ffi.describe()}")
on_cpu = pytest.mark.skipif(jax.default_backend() != "cpu", reason="the FFI path is the CPU's")


@pytest.fixture
def ffi_path(monkeypatch):
    """The FFI path at every size, forward and backward, traced anew."""
    if not cpu_ffi.BUILT:
        pytest.skip(f"FFI handler not built: {cpu_ffi.describe()}")
    monkeypatch.setattr(cpu_ffi, "FORWARD", (cpu_ffi.EVERY,))
    monkeypatch.setattr(cpu_ffi, "TANGENT", (cpu_ffi.EVERY,))
    monkeypatch.setattr(cpu_ffi, "TANGENT_BY_DTYPE", {})
    jax.clear_caches()
    yield
    jax.clear_caches()


def raw(a: np.ndarray) -> np.ndarray:
    """The bytes of ``a`` (0-d arrays included)."""
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def lowered_text(fn, *args) -> str:
    return jax.jit(fn).lower(*args).as_text()


def test_the_handler_is_built_and_taken_where_ci_asks_for_it():
    """CI's jax session sets UNIDROP_JAX_FFI=always: the handler must be built, registered and used."""
    if os.environ.get(cpu_ffi.ENV, "").lower() != "always":
        pytest.skip(f"{cpu_ffi.ENV} is not 'always' here")
    assert cpu_ffi.BUILT and cpu_ffi.FORWARD == cpu_ffi.TANGENT == (cpu_ffi.EVERY,), cpu_ffi.describe()
    assert cpu_ffi.TANGENT_BY_DTYPE == {}
    jax.clear_caches()
    x = jnp.ones((8, 8), jnp.float32)
    assert cpu_ffi.TARGET in lowered_text(lambda x: unidrop.dropout(x, 0.5, seed=1), x)


def test_a_bad_setting_names_the_value_and_the_choices():
    with pytest.raises(ValueError, match=r"UNIDROP_JAX_FFI must be one of auto, always, off, got 'fast'"):
        cpu_ffi.configure("fast")


@pytest.fixture
def thresholds(monkeypatch):
    """configure() may be called: the thresholds are restored afterwards."""
    monkeypatch.setattr(cpu_ffi, "FORWARD", cpu_ffi.FORWARD)
    monkeypatch.setattr(cpu_ffi, "TANGENT", cpu_ffi.TANGENT)
    monkeypatch.setattr(cpu_ffi, "TANGENT_BY_DTYPE", cpu_ffi.TANGENT_BY_DTYPE)


def test_always_without_a_handler_says_why(monkeypatch, thresholds):
    monkeypatch.setattr(cpu_ffi, "BUILT", False)
    monkeypatch.setattr(cpu_ffi, "MISSING", "ImportError: no compiler")
    with pytest.raises(ImportError, match="no compiler"):
        cpu_ffi.configure("always")
    cpu_ffi.configure("auto")  # falls back quietly
    assert cpu_ffi.FORWARD == cpu_ffi.TANGENT == ()
    assert cpu_ffi.TANGENT_BY_DTYPE == {}
    assert "XLA only" in cpu_ffi.describe()


@needs_handler
def test_auto_uses_the_handler_where_it_was_measured_faster(thresholds):
    cpu_ffi.configure("auto")
    assert (cpu_ffi.FORWARD, cpu_ffi.TANGENT) == (cpu_ffi.AUTO_FORWARD, cpu_ffi.AUTO_TANGENT)
    assert cpu_ffi.applicable((1 << 16,), jnp.float32, True)
    assert not cpu_ffi.applicable((1 << 16,), jnp.float32, True, tangent=True)
    assert cpu_ffi.applicable((1 << 15,), jnp.float32, True, tangent=True)
    assert "backward at 1..511 and 2048..65535 elements" in cpu_ffi.describe()
    # bfloat16's backward takes the handler at every size from 2^11 (XLA's goes through float32)
    assert cpu_ffi.applicable((1 << 24,), jnp.bfloat16, True, tangent=True)
    assert not cpu_ffi.applicable((1 << 24,), jnp.float16, True, tangent=True)
    assert not cpu_ffi.applicable((1 << 10,), jnp.bfloat16, True, tangent=True)
    assert "bfloat16's backward at 1..511 and >= 2048" in cpu_ffi.describe()
    cpu_ffi.configure("always")
    assert cpu_ffi.applicable((16,), jnp.float32, True)
    assert cpu_ffi.applicable((16,), jnp.float32, True, tangent=True)
    assert cpu_ffi.applicable((1 << 24,), jnp.bfloat16, True, tangent=True)
    assert not cpu_ffi.applicable((16,), jnp.float32, False)  # a block of a global mask
    assert not cpu_ffi.applicable((16,), jnp.complex64, True)
    assert not cpu_ffi.applicable((0,), jnp.float32, True)
    cpu_ffi.configure("off")
    assert not cpu_ffi.applicable((16,), jnp.float32, True)
    assert not cpu_ffi.applicable((1 << 24,), jnp.bfloat16, True, tangent=True)
    assert "XLA only" in cpu_ffi.describe()


CASES = [
    ((1000,), "float32", ()),
    ((37, 53), "bfloat16", ()),
    ((5, 7, 9), "float16", ()),
    ((16, 24), "float32", (0,)),  # broadcast dims: one mask row for every row
    ((6, 10, 3), "bfloat16", (1,)),
    ((3, 70000), "float32", ()),  # large enough to be split over XLA's threads
    ((), "float32", ()),
]


def both_paths(fn, *args):
    """``fn(*args)`` jitted on the FFI path and on the XLA path (each traced anew)."""
    got = []
    for sizes in ((cpu_ffi.EVERY,), ()):
        cpu_ffi.FORWARD = cpu_ffi.TANGENT = sizes
        jax.clear_caches()
        got.append(jax.tree_util.tree_map(np.asarray, jax.jit(fn)(*args)))
    return got


@on_cpu
@pytest.mark.parametrize(("shape", "dtype", "dims"), CASES)
def test_forward_is_the_reference_and_the_xla_paths_bits(shape, dtype, dims, ffi_path):
    values = values_for(shape, dtype, seed=3)
    x = jnp.asarray(values, dtype)
    fn = lambda x: unidrop.dropout(x, 0.3, seed=2**40 + 9, stream=2**33 + 1, broadcast_dims=dims)  # noqa: E731
    assert cpu_ffi.TARGET in lowered_text(fn, x)
    ffi, xla = both_paths(fn, x)
    assert np.array_equal(raw(ffi), raw(xla))
    assert same_bits(as_float64(ffi), expected(values, dtype, 0.3, 2**40 + 9, 2**33 + 1, dims)[0])


@on_cpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_gradients_jvp_and_vmap_are_the_xla_paths_bits(dtype, ffi_path):
    x = jnp.asarray(values_for((24, 40), dtype, seed=5), dtype)
    keys = jax.random.split(jax.random.key(4), 3)

    def loss(x, k):
        return jnp.sum(unidrop.dropout(x, 0.25, seed=k).astype(jnp.float32) * jnp.arange(40.0))

    programs = {
        "value_and_grad": lambda x: jax.value_and_grad(loss)(x, keys[0]),
        "jvp": lambda x: jax.jvp(lambda x: unidrop.dropout(x, 0.25, seed=keys[1]), (x,), (x[::-1],)),
        "vmap over keys": lambda x: jax.vmap(lambda k: unidrop.dropout(x, 0.25, seed=k))(keys),
        "vmap over inputs": lambda x: jax.vmap(lambda r: unidrop.dropout(r, 0.25, seed=keys[2]))(x),
        "grad of grad": lambda x: jax.grad(lambda x: jnp.sum(jax.grad(loss)(x, keys[0]) * x))(x),
    }
    for name, fn in programs.items():
        ffi, xla = both_paths(fn, x)
        for a, b in zip(jax.tree_util.tree_leaves(ffi), jax.tree_util.tree_leaves(xla), strict=True):
            assert np.array_equal(raw(a), raw(b)), name


@on_cpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_an_input_made_by_a_multiply_in_the_same_program_is_exact(dtype, ffi_path):
    """``dropout(x * 3)`` and a tangent ``x * 3``: the product is rounded, then scaled, as the spec
    says. (XLA's path may fold ``(x * 3) * s`` into ``x * (3 * s)`` in one fusion: not this one.)"""
    values = values_for((24, 40), dtype, seed=5)
    x = jnp.asarray(values, dtype)
    t = as_float64(x * 3)
    want = expected(t, dtype, 0.25, 9)[0]
    y = jax.jit(lambda x: unidrop.dropout(x * 3, 0.25, seed=9))(x)
    assert same_bits(as_float64(y), want)
    _, tangent = jax.jit(lambda x: jax.jvp(lambda x: unidrop.dropout(x, 0.25, seed=9), (x,), (x * 3,)))(x)
    assert same_bits(as_float64(tangent), want)


@on_cpu
def test_subnormal_inputs_are_exact_and_subnormal_cotangents_as_xla_flushes_them(ffi_path):
    """The handler clears XLA:CPU's flush-to-zero for the forward and sets it for cotangents."""
    tiny = np.float32(3e-39)
    values = np.concatenate([np.full(64, tiny), -np.full(64, tiny), np.linspace(-2, 2, 128)])
    values = values.astype(np.float32)
    x = jnp.asarray(values)
    fn = lambda x: jax.vjp(lambda x: unidrop.dropout(x, 0.5, seed=21), x)[1](x)[0]  # noqa: E731
    y_ffi, y_xla = both_paths(lambda x: unidrop.dropout(x, 0.5, seed=21), x)
    assert same_bits(y_ffi.astype(np.float64), expected(values.astype(np.float64), "float32", 0.5, 21)[0])
    assert np.array_equal(y_ffi.view(np.uint32), y_xla.view(np.uint32))
    g_ffi, g_xla = both_paths(fn, x)
    assert np.array_equal(g_ffi.view(np.uint32), g_xla.view(np.uint32))


def test_a_handler_not_built_is_described_with_how_to_build_it(tmp_path):
    """An install without the FFI headers has no _cpu_ffi: `unidrop backends` says how to get one."""
    package = Path(cpu_ffi.__file__).parent
    shutil.copytree(
        package, tmp_path / package.name, ignore=shutil.ignore_patterns("_cpu_ffi*.so", "_cpu_ffi*.pyd")
    )
    code = "from unidrop_jax import cpu_ffi; print(cpu_ffi.describe())"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "UNIDROP_JAX_FFI": "auto"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "XLA only (the FFI handler was not built at install" in done.stdout
    assert "UNIDROP_JAX_FFI_INCLUDE" in done.stdout and "cannot import name" not in done.stdout
