"""The opt-in Pallas GPU kernel, run by Pallas's interpreter on CPU, against the reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from conftest import DTYPES, as_float64, expected, same_bits, values_for
from unidrop_jax import keys, pallas_gpu

import unidrop
from unidrop import arguments, reference

pytest.importorskip("jax.experimental.pallas")


@pytest.fixture
def interpreted(monkeypatch):
    monkeypatch.setattr(pallas_gpu, "ENABLED", True)
    monkeypatch.setattr(pallas_gpu, "INTERPRET", True)
    jax.clear_caches()
    yield
    jax.clear_caches()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(8, 12), (4100,), (3, 4)], ids=str)
def test_kernel_matches_reference_including_a_partial_last_program(dtype, shape):
    values = values_for(shape, dtype)
    p, seed, stream = 0.3, 2**40 + 7, 2**33 + 1
    scale = np.asarray(arguments.scale(p), np.float32 if dtype != "float64" else np.float64)
    run = jax.jit(
        lambda x: pallas_gpu.dropout_pallas(
            x,
            keys.from_int(seed),
            keys.from_int(stream),
            arguments.threshold(p),
            scale,
            block_rows=256,
            interpret=True,
        )
    )
    y = run(jnp.asarray(values, dtype))
    assert same_bits(as_float64(y), expected(values, dtype, p, seed, stream)[0])


def test_dropout_and_its_gradient_through_the_kernel(interpreted):
    values = values_for((16, 32), "float32", seed=3)
    cotangent = values_for((16, 32), "float32", seed=4)
    assert pallas_gpu.applicable((16, 32), (16, 32))
    assert not pallas_gpu.applicable((16, 32), (1, 32))  # broadcast axes: the jnp path
    assert not pallas_gpu.applicable((3, 5), (3, 5))  # size not a multiple of 4
    key = jax.random.key(99)
    y, pullback = jax.vjp(lambda x: unidrop.dropout(x, 0.25, seed=key), jnp.asarray(values))
    assert same_bits(as_float64(y), expected(values, "float32", 0.25, 99)[0])
    grad = pullback(jnp.asarray(cotangent))[0]
    assert same_bits(as_float64(grad), expected(cotangent, "float32", 0.25, 99)[0])
    fn = lambda x: unidrop.dropout(x, 0.25, seed=key)  # noqa: E731
    assert "pallas_call" in str(jax.make_jaxpr(fn)(jnp.asarray(values)))  # the kernel is in use
    y, tangent = jax.jvp(fn, (jnp.asarray(values),), (jnp.asarray(cotangent),))
    assert same_bits(as_float64(y), expected(values, "float32", 0.25, 99)[0])
    assert same_bits(as_float64(tangent), expected(cotangent, "float32", 0.25, 99)[0])


def test_off_by_default_and_off_on_cpu():
    assert not pallas_gpu.ENABLED or jax.default_backend() == "gpu"
    assert not pallas_gpu.applicable((16, 32), (16, 32)) or jax.default_backend() == "gpu"


def test_the_kernel_is_used_only_while_block_indices_fit_one_word(monkeypatch):
    """The kernel counts blocks in one uint32 word: 2**32 blocks and more must take the jnp path."""
    monkeypatch.setattr(pallas_gpu, "ENABLED", True)
    monkeypatch.setattr(pallas_gpu, "INTERPRET", True)
    below, at, past = (2**34 - 4,), (2**34,), (2**34 + 16,)
    assert pallas_gpu.applicable(below, below)
    assert not pallas_gpu.applicable(at, at)
    assert not pallas_gpu.applicable(past, past)


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_kernel_is_exact_on_subnormals(dtype):
    """Subnormal inputs and results (flushed to zero by a plain ``x * s`` under XLA:CPU)."""
    fraction = 7 if dtype == "bfloat16" else 23
    raw = np.arange(1, 1 << min(fraction, 12), dtype=np.uint32)  # the smallest subnormals
    raw = np.concatenate([raw, (1 << fraction) - raw[:64], [0, (1 << fraction) + 1]])  # largest; zero; normal
    raw = np.concatenate([raw, raw | (1 << (15 if dtype == "bfloat16" else 31))])[: 4 * (2 * raw.size // 4)]
    values = raw.astype(np.uint16).view(ml_dtypes.bfloat16) if dtype == "bfloat16" else raw.view(np.float32)
    for p in (0.5, 1 / 3, 0.9):
        scale = np.asarray(arguments.scale(p), np.float32)
        seed, stream, threshold = keys.from_int(5), keys.from_int(0), arguments.threshold(p)
        y = pallas_gpu.dropout_pallas(jnp.asarray(values), seed, stream, threshold, scale, interpret=True)
        want, _ = reference.dropout(values.astype(np.float64).tolist(), values.shape, dtype, p, 5)
        assert same_bits(np.asarray(y).astype(np.float64), np.array(want)), p


@pytest.mark.parametrize(
    "size", [12, 4100, 4096], ids=["one-partial-tile", "a-partial-last-tile", "whole-tiles"]
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_kernel_lowers_to_triton_for_cuda_on_any_machine(dtype, size):
    """With JAX's defaults (which prefer Mosaic GPU, which refuses this kernel's 16-byte rows) the
    kernel asks for Triton, and every operation, the exact subnormal product included, has a Triton
    lowering (``lax.round`` has none, for example). A partial last tile is padded: every program
    reads and writes whole tiles, and Triton adds no bounds mask. Lowering needs no GPU."""
    scale = np.asarray(arguments.scale(0.1), np.float32)
    run = jax.jit(
        lambda x: pallas_gpu.dropout_pallas(
            x, keys.from_int(3), keys.from_int(0), arguments.threshold(0.1), scale, interpret=False
        )
    )
    lowered = run.trace(jax.ShapeDtypeStruct((size,), dtype)).lower(lowering_platforms=("cuda",)).as_text()
    assert "triton" in lowered
    rows = size // 4
    tile = min(pallas_gpu.BLOCK_ROWS, 1 << (rows - 1).bit_length())
    padded = -(-rows // tile) * tile
    assert f"tensor<{padded}x4x" in lowered  # the kernel's operand: whole tiles
