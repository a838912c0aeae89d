"""Shared helpers for the JAX backend's own tests (expected values from unidrop.reference)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import settings
from unidrop_jax import cpu_ffi, philox_lax

from unidrop import reference
from unidrop.conformance.plugin import CI_PROFILE

DTYPES = ["float16", "bfloat16", "float32"]


def pytest_configure(config: pytest.Config) -> None:
    """Use the suite's CI Hypothesis profile (derandomized, no deadline: jit compiles take time)
    unless ``--hypothesis-profile`` picks another."""
    if config.getoption("hypothesis_profile", None) is None:
        settings.load_profile(CI_PROFILE)


def values_for(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    """Test inputs in float64 that ``dtype`` holds exactly, with mixed signs and magnitudes."""
    rng = np.random.default_rng(seed)
    raw = rng.standard_normal(math.prod(shape)) * 4.0
    return np.array([reference.round_to(float(v), dtype) for v in raw]).reshape(shape)


def expected(values: np.ndarray, dtype: str, p: float, seed: int, stream: int = 0, dims=()) -> tuple:
    """Reference output (float64, shaped) and keep mask (bool, mask shape) from unidrop.reference."""
    out, keep = reference.dropout(list(values.reshape(-1)), values.shape, dtype, p, seed, stream, dims)
    mshape = tuple(
        1 if a in {d % max(values.ndim, 1) for d in dims} else s for a, s in enumerate(values.shape)
    )
    return np.array(out, dtype=np.float64).reshape(values.shape), np.array(keep, bool).reshape(mshape)


def as_float64(y) -> np.ndarray:
    """A JAX result as float64 NumPy values (16-bit values are exact in float64)."""
    return np.asarray(jnp.asarray(y).astype(jnp.float32)).astype(np.float64)


def same_bits(got: np.ndarray, want: np.ndarray) -> bool:
    """Equal values and equal signs of zero (dropped elements must be +0)."""
    return bool(np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want)))


@pytest.fixture
def xla_path(monkeypatch):
    """Run a test on the XLA path: the CPU's FFI path (unidrop_jax.cpu_ffi) off. The choice is made
    at trace time: programs traced before or during the test are dropped."""
    monkeypatch.setattr(cpu_ffi, "FORWARD", ())
    monkeypatch.setattr(cpu_ffi, "TANGENT", ())
    monkeypatch.setattr(cpu_ffi, "TANGENT_BY_DTYPE", {})
    jax.clear_caches()
    yield
    jax.clear_caches()


@pytest.fixture(params=["wide", "split", "native"])
def mulhi(request, monkeypatch, xla_path):
    """Run a test under each mulhi formulation of unidrop_jax.philox_lax (on the XLA path)."""
    monkeypatch.setattr(philox_lax, "MULHI", request.param)
    return request.param
