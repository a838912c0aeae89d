"""Exact results for subnormal inputs and results, although XLA on the CPU flushes them to zero.

XLA:CPU runs its programs with denormals-are-zero and flush-to-zero, for float32, bfloat16
(computed in float32) and float64 alike, so a plain ``x * s`` turns every subnormal ``x`` into 0.
These tests compare the backend with ``unidrop.reference`` bit for bit on every class of
subnormal value, eagerly and under ``jax.jit``, through ``unidrop.dropout`` and through the
kept-value function alone (every element kept, so no class hides behind a dropped element).
Inputs are built and outputs read back through NumPy, never converted by XLA.
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from unidrop_jax import scaling

import unidrop
from unidrop import arguments, reference

NP_DTYPES = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32}
#: p values whose float32 scales are 1 (p < 2**-32), 10/9, 1.25 and 1.5 (which make ties at the
#: subnormal quantum), 2, 4, 10 and about 2**24.
PS = [2.0**-40, 0.1, 0.2, 1 / 3, 0.5, 0.75, 0.9, 1 - 2.0**-24]
MODES = ["eager", "jit"]


def float32_subnormal_classes(p: float) -> np.ndarray:
    """float32 values: every subnormal class for scale ``s(p)``, both signs, and the zeros.

    The smallest (2**-149) and largest subnormals and their neighbours, a sample of all the
    others, and the inputs whose product lies around the smallest normal 2**-126 (those that
    stay subnormal, those that round up across the boundary, those that become normal).
    """
    s = reference.round_to(arguments.scale(p), "float32")
    edge = int(2**23 / s)
    near_edge = range(max(1, edge - 64), min(2**23, edge + 64))
    magnitudes = {*range(1, 1025), *range(2**23 - 1024, 2**23), *near_edge}
    magnitudes |= set(np.random.default_rng(7).integers(1, 2**23, 2000).tolist())
    bits = np.array(sorted(magnitudes), np.uint32)
    normal = np.array([0x00800000, 0x00800001, 0x3F800000], np.uint32)  # 2**-126, its successor, 1.0
    bits = np.concatenate([bits, bits | np.uint32(0x80000000), normal, [0, 0x80000000]]).astype(np.uint32)
    return bits.view(np.float32)


def all_patterns(dtype: str) -> np.ndarray:
    """Every one of the 65536 values of a 16-bit float dtype (NaNs and infinities included)."""
    return np.arange(65536, dtype=np.uint16).view(NP_DTYPES[dtype])


def widened(values: np.ndarray) -> np.ndarray:
    """``values`` as float64, converted by NumPy (exact; NaN payloads of 16-bit NaNs do not matter)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(values).astype(np.float64)


def same(got: np.ndarray, want: np.ndarray) -> bool:
    """Bit-for-bit equal as float64 values: equal values, equal signs of zero, NaN where NaN."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    nan = np.isnan(want)
    return bool(
        np.array_equal(np.isnan(got), nan)
        and np.array_equal(got[~nan], want[~nan])
        and np.array_equal(np.signbit(got[~nan]), np.signbit(want[~nan]))
    )


def on_device(values: np.ndarray) -> jax.Array:
    """``values`` as a JAX array with the same bits (a transfer, no conversion by XLA)."""
    x = jnp.asarray(values)
    assert np.array_equal(np.asarray(x).view(np.uint8), values.view(np.uint8))
    return x


def run_dropout(x: jax.Array, p: float, seed: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """``unidrop.dropout(x, p, seed=seed, return_mask=True)``, eagerly or inside ``jax.jit``."""
    call = functools.partial(unidrop.dropout, p=p, seed=seed, return_mask=True)
    y, keep = call(x) if mode == "eager" else jax.jit(call)(x)
    return widened(y), np.asarray(keep)


def run_scaled(x: jax.Array, p: float, mode: str) -> np.ndarray:
    """The kept-value function alone (every element kept): ``x * s`` with the spec's roundings."""
    s = np.asarray(arguments.scale(p), arguments.compute_dtype(x.dtype.name))[()]
    y = scaling.scaled(x, s) if mode == "eager" else jax.jit(scaling.scaled)(x, s)
    assert y.dtype == x.dtype
    return widened(y)


@functools.cache
def reference_dropout(dtype: str, p: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    values = widened(float32_subnormal_classes(p) if dtype == "float32" else all_patterns(dtype))
    out, keep = reference.dropout(values.tolist(), values.shape, dtype, p, seed)
    return np.array(out, np.float64), np.array(keep, bool)


@functools.cache
def reference_scaled(dtype: str, p: float) -> np.ndarray:
    values = float32_subnormal_classes(p) if dtype == "float32" else all_patterns(dtype)
    return np.array([reference.scaled(v, dtype, p) for v in widened(values).tolist()])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("p", PS, ids=lambda p: f"p{p:.3g}")
def test_float32_subnormals_through_dropout(p, mode):
    x = on_device(float32_subnormal_classes(p))
    for seed in (0, 2**40 + 3):
        y, keep = run_dropout(x, p, seed, mode)
        want, want_keep = reference_dropout("float32", p, seed)
        assert np.array_equal(keep, want_keep)
        assert same(y, want), np.flatnonzero(~((y == want) & (np.signbit(y) == np.signbit(want))))[:10]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("p", PS, ids=lambda p: f"p{p:.3g}")
def test_float32_subnormals_every_element_kept(p, mode):
    """Every class kept: the smallest, the largest, boundary-crossing products and ties."""
    assert same(run_scaled(on_device(float32_subnormal_classes(p)), p, mode), reference_scaled("float32", p))


def test_the_example_of_the_issue_keeps_6e_39():
    """``dropout([3e-39] * 8, 0.5, seed=0)`` keeps elements 1-4 and 6 (known answer ``01111010``)."""
    x = on_device(np.full(8, 3e-39, np.float32))
    y, keep = run_dropout(x, 0.5, 0, "eager")
    assert "".join("1" if k else "0" for k in keep) == "01111010"
    kept = reference.scaled(float(np.float32(3e-39)), "float32", 0.5)
    assert kept > 5.9e-39
    assert same(y, np.where(keep, kept, 0.0))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("p", [0.1, 0.5])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_every_16_bit_pattern_through_dropout(dtype, p, mode):
    y, keep = run_dropout(on_device(all_patterns(dtype)), p, 12345, mode)
    want, want_keep = reference_dropout(dtype, p, 12345)
    assert np.array_equal(keep, want_keep)
    assert same(y, want)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("p", [0.1, 0.5])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_every_16_bit_pattern_kept(dtype, p, mode):
    assert same(run_scaled(on_device(all_patterns(dtype)), p, mode), reference_scaled(dtype, p))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_signed_zeros_kept_keep_their_sign_and_dropped_become_plus_zero(dtype):
    x = on_device(np.array([0.0, -0.0] * 16, NP_DTYPES[dtype]))
    y, keep = run_dropout(x, 0.5, 3, "jit")
    assert keep.any() and not keep.all()
    values = widened(x)
    want, _ = reference.dropout(values.tolist(), (32,), dtype, 0.5, 3)
    assert same(y, np.array(want))
    assert not np.signbit(y[~keep]).any() and np.array_equal(np.signbit(y[keep]), np.signbit(values[keep]))


FLOAT64_SCRIPT = """
import functools, math, sys
import jax, jax.numpy as jnp, numpy as np, unidrop
from unidrop import arguments, reference
from unidrop_jax import scaling

assert jax.config.jax_enable_x64
failures = []
for p in {ps!r}:
    s = arguments.scale(p)
    edge = int(2.0**52 / s)
    mags = {{*range(1, 257), *range(2**52 - 256, 2**52), *range(max(1, edge - 64), min(2**52, edge + 64))}}
    mags |= set(int(v) for v in np.random.default_rng(3).integers(1, 2**52, 1000))
    bits = np.array(sorted(mags), np.uint64)
    extra = np.array([0x0010000000000000, 0x3FF0000000000000, 0, 1 << 63], np.uint64)
    values = np.concatenate([bits, bits | np.uint64(1 << 63), extra]).view(np.float64)
    x = jnp.asarray(values)
    assert np.array_equal(np.asarray(x).view(np.uint64), values.view(np.uint64))
    want_kept = [reference.scaled(v, "float64", p) for v in values.tolist()]
    want, want_keep = reference.dropout(values.tolist(), values.shape, "float64", p, 77)
    call = functools.partial(unidrop.dropout, p=p, seed=77, return_mask=True)
    s64 = np.float64(s)
    for mode, (y, keep), kept in [
        ("eager", call(x), scaling.scaled(x, s64)),
        ("jit", jax.jit(call)(x), jax.jit(scaling.scaled)(x, s64)),
    ]:
        for name, got, exp in [("dropout", np.asarray(y), want), ("kept", np.asarray(kept), want_kept)]:
            exp = np.array(exp, np.float64)
            bad = np.flatnonzero(got.view(np.uint64) != exp.view(np.uint64))
            if bad.size:
                failures.append((p, mode, name, int(bad.size), [float(values[i]) for i in bad[:3]]))
        if list(np.asarray(keep)) != want_keep:
            failures.append((p, mode, "mask"))
print("failures", failures)
"""


def test_float64_subnormals_with_x64_in_a_subprocess():
    """float64 subnormals (smallest, largest, boundary crossing, ties) eagerly and under jit."""
    code = FLOAT64_SCRIPT.format(ps=[0.1, 1 / 3, 0.75, 1 - 2.0**-24])  # scales 10/9, 1.5, 4, 2**24
    env = {**os.environ, "JAX_ENABLE_X64": "1", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "failures []", done.stdout[-3000:]


def test_subnormal_scale_words_are_the_float64_scale_rounded():
    """The test's p values give the scales the classes above rely on (ties need 1.25 and 1.5)."""
    scales = [reference.round_to(arguments.scale(p), "float32") for p in PS]
    assert scales[:6] == [1.0, float(np.float32(10 / 9)), 1.25, 1.5, 2.0, 4.0]
    assert math.isclose(scales[-1], 2.0**24)


def test_gradients_match_the_reference_but_subnormal_cotangents_may_be_flushed():
    """The declared deviation of derivatives: the tangent map must be linear for JAX to transpose
    it, so it is one float multiply, and XLA:CPU flushes a subnormal cotangent to a signed zero.
    Every other element is ``g * keep * s`` bit for bit."""
    values = np.linspace(-3, 3, 64).astype(np.float32)
    cotangent = np.concatenate([np.linspace(-2, 2, 48), np.full(16, 3e-39)]).astype(np.float32)
    _, pullback = jax.vjp(lambda x: unidrop.dropout(x, 0.5, seed=21), jnp.asarray(values))
    grad = widened(pullback(on_device(cotangent))[0])
    want, _ = reference.dropout(widened(cotangent).tolist(), (64,), "float32", 0.5, 21)
    want = np.array(want)
    normal = np.abs(widened(cotangent)) >= 2.0**-126
    assert same(grad[normal], want[normal])
    flushed = grad[~normal] == 0
    assert same(grad[~normal][~flushed], want[~normal][~flushed])
    assert not np.signbit(grad[~normal]).any()
