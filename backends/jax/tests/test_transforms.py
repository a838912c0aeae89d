"""jit, vmap, grad/vjp (mask regenerated, not saved), jvp/jacfwd and checkpoint."""

from __future__ import annotations

import contextlib
import io
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import DTYPES, as_float64, expected, same_bits, values_for
from jax.ad_checkpoint import print_saved_residuals
from unidrop_jax.dropout import forward

import unidrop
from unidrop import reference

SHAPE = (6, 20)


def test_jit_compiles_once_for_any_key_or_seed():
    x = jnp.ones(SHAPE, jnp.float32)
    f = jax.jit(lambda x, k: unidrop.dropout(x, 0.5, seed=k))
    outs = [f(x, jax.random.key(i)) for i in range(4)]
    assert f._cache_size() == 1
    assert len({np.asarray(o).tobytes() for o in outs}) == 4
    g = jax.jit(lambda x, s: unidrop.dropout(x, 0.5, seed=s))
    for s in (1, 2, 2**32 - 1):
        assert same_bits(as_float64(g(x, jnp.uint32(s))), expected(np.ones(SHAPE), "float32", 0.5, s)[0])
    assert g._cache_size() == 1


def test_jit_matches_eager_and_reference():
    values = values_for(SHAPE, "float32")
    x = jnp.asarray(values, jnp.float32)
    want, _ = expected(values, "float32", 0.3, 2**33 + 1, 4)
    eager = unidrop.dropout(x, 0.3, seed=2**33 + 1, stream=4)
    jitted = jax.jit(lambda x: unidrop.dropout(x, 0.3, seed=2**33 + 1, stream=4))(x)
    assert same_bits(as_float64(eager), want) and same_bits(as_float64(jitted), want)


def test_vmap_over_keys_gives_each_keys_own_mask():
    values = values_for(SHAPE, "float32")
    x = jnp.asarray(values, jnp.float32)
    seeds = [3, 2**32 + 9, 2**64 - 1, 12345]
    raw = jnp.array([[s >> 32, s & 0xFFFFFFFF] for s in seeds], jnp.uint32)
    batch = jax.vmap(lambda k: unidrop.dropout(x, 0.5, seed=jax.random.wrap_key_data(k)))(raw)
    for i, s in enumerate(seeds):
        assert same_bits(as_float64(batch[i]), expected(values, "float32", 0.5, s)[0])
    assert len({np.asarray(b).tobytes() for b in batch}) == len(seeds)


def test_vmap_over_inputs_and_keys_together_and_nested_in_jit():
    values = values_for((3, *SHAPE), "float32")
    keys = jax.random.split(jax.random.key(1), 3)
    batch = jax.jit(jax.vmap(lambda x, k: unidrop.dropout(x, 0.25, seed=k, broadcast_dims=(0,))))(
        jnp.asarray(values, jnp.float32), keys
    )
    for i in range(3):
        data = np.asarray(jax.random.key_data(keys[i])).astype(int)
        seed = int(data[0]) * 2**32 + int(data[1])
        want = expected(values[i], "float32", 0.25, seed, 0, (0,))[0]
        assert same_bits(as_float64(batch[i]), want)


def test_vmap_over_integer_seeds_and_streams():
    x = jnp.ones(SHAPE, jnp.float32)
    streams = jnp.arange(4, dtype=jnp.uint32)
    batch = jax.vmap(lambda st: unidrop.dropout(x, 0.5, seed=5, stream=st))(streams)
    for i in range(4):
        want = expected(np.ones(SHAPE), "float32", 0.5, 5, i)[0]
        assert same_bits(as_float64(batch[i]), want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad_is_cotangent_times_keep_times_scale(dtype):
    values = values_for(SHAPE, dtype, seed=1)
    weights = values_for(SHAPE, dtype, seed=2)
    x, w = jnp.asarray(values, dtype), jnp.asarray(weights, dtype)
    key = jax.random.key(21)

    def loss(x):
        return jnp.sum(unidrop.dropout(x, 0.4, seed=key, broadcast_dims=(1,)) * w)

    grad = jax.grad(loss)(x)
    assert grad.dtype == x.dtype
    want, keep = expected(weights, dtype, 0.4, 21, 0, (1,))  # the same select-and-scale, applied to w
    assert same_bits(as_float64(grad), want)
    assert not keep.all() and keep.any()


def test_vjp_and_the_suite_adapters_vjp():
    values = values_for(SHAPE, "float32", seed=3)
    cot = values_for(SHAPE, "float32", seed=4)
    x = jnp.asarray(values, jnp.float32)
    fn = lambda x: unidrop.dropout(x, 0.5, seed=2**50 + 1, stream=2)  # noqa: E731
    y, grad = unidrop.get_backend("jax").suite_adapter().vjp(fn, x, jnp.asarray(cot, jnp.float32))
    assert same_bits(as_float64(y), expected(values, "float32", 0.5, 2**50 + 1, 2)[0])
    assert same_bits(as_float64(grad), expected(cot, "float32", 0.5, 2**50 + 1, 2)[0])


def test_the_mask_is_not_saved_for_the_backward_pass():
    """The pullback's residuals are the seed and stream words: nothing of the mask's size."""
    x = jnp.ones((64, 64), jnp.float32)
    _, pullback = jax.vjp(lambda x: unidrop.dropout(x, 0.5, seed=jax.random.key(0)), x)
    residuals = jax.tree_util.tree_leaves(pullback)
    assert residuals, "expected the seed/stream words as residuals"
    assert all(math.prod(np.shape(r)) <= 1 for r in residuals), [np.shape(r) for r in residuals]


def saved_shapes(fn, *args) -> list[tuple[int, ...]]:
    """The shapes of what reverse mode saves for ``fn``, from jax.ad_checkpoint.print_saved_residuals."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_saved_residuals(fn, *args)
    shapes = re.findall(r"^\w+\[([0-9,]*)\]", out.getvalue(), re.MULTILINE)
    return [tuple(int(n) for n in shape.split(",") if n) for shape in shapes]


def test_saved_residuals_are_scalars_for_keys_and_traced_seeds():
    """What reverse mode stores is scalar words only, never anything of the mask's size."""
    x = jnp.ones((64, 64), jnp.float32)
    assert (64, 64) in saved_shapes(lambda x: jnp.sum(jnp.sin(x)), x)  # the check can see a residual
    for seed in (jax.random.key(0), jnp.uint32(7), 2**40 + 3):
        loss = lambda x, s=seed: jnp.sum(unidrop.dropout(x, 0.5, seed=s, stream=2**33))  # noqa: E731
        assert all(math.prod(shape) <= 1 for shape in saved_shapes(loss, x))
    shapes = saved_shapes(lambda x, k: jnp.sum(unidrop.dropout(x, 0.5, seed=k)), x, jax.random.key(1))
    assert shapes and all(math.prod(shape) <= 1 for shape in shapes), shapes


@pytest.mark.parametrize("dtype", DTYPES)
def test_jvp_drops_the_tangent_with_the_same_mask(dtype):
    values = values_for(SHAPE, dtype, seed=6)
    tangent = values_for(SHAPE, dtype, seed=7)
    fn = lambda x: unidrop.dropout(x, 0.3, seed=2**40 + 9, stream=5, broadcast_dims=(0,))  # noqa: E731
    for run in (jax.jvp, jax.jit(jax.jvp, static_argnums=0)):
        y, ty = run(fn, (jnp.asarray(values, dtype),), (jnp.asarray(tangent, dtype),))
        assert ty.dtype == jnp.dtype(dtype)
        assert same_bits(as_float64(y), expected(values, dtype, 0.3, 2**40 + 9, 5, (0,))[0])
        assert same_bits(as_float64(ty), expected(tangent, dtype, 0.3, 2**40 + 9, 5, (0,))[0])


def test_jacfwd_and_jacrev_are_the_diagonal_keep_times_scale():
    x = jnp.ones(12, jnp.float32)
    fn = lambda x: unidrop.dropout(x, 0.5, seed=1)  # noqa: E731
    keep = np.asarray(reference.keep_bits(1, 0, (12,), 0.5)).reshape(12)
    want = np.diag(np.where(keep, 2.0, 0.0))
    np.testing.assert_array_equal(np.asarray(jax.jacfwd(fn)(x)), want)
    np.testing.assert_array_equal(np.asarray(jax.jacrev(fn)(x)), want)
    assert not keep.all() and keep.any()


def test_jvp_under_vmap_over_keys_and_hessian_vector_product():
    x = jnp.asarray(values_for(SHAPE, "float32", seed=8), jnp.float32)
    keys = jax.random.split(jax.random.key(4), 3)
    _, tangents = jax.vmap(lambda k: jax.jvp(lambda x: unidrop.dropout(x, 0.5, seed=k), (x,), (x,)))(keys)
    for i in range(3):
        data = np.asarray(jax.random.key_data(keys[i])).astype(int)
        want = expected(np.asarray(x), "float32", 0.5, int(data[0]) * 2**32 + int(data[1]))[0]
        assert same_bits(as_float64(tangents[i]), want)
    # forward-over-reverse: d/dx of grad(sum(dropout(x)**2)) along v is 2 * (keep*s)**2 * v
    loss = lambda x: jnp.sum(unidrop.dropout(x, 0.5, seed=3) ** 2)  # noqa: E731
    v = jnp.ones(SHAPE, jnp.float32)
    _, hvp = jax.jvp(jax.grad(loss), (x,), (v,))
    keep = np.asarray(reference.keep_bits(3, 0, SHAPE, 0.5)).reshape(SHAPE)
    np.testing.assert_array_equal(np.asarray(hvp), np.where(keep, 8.0, 0.0))


def test_checkpoint_and_second_use_of_the_same_key():
    values = values_for(SHAPE, "float32", seed=5)
    x = jnp.asarray(values, jnp.float32)
    key = jax.random.key(8)

    def block(x):
        return jnp.sin(unidrop.dropout(x, 0.5, seed=key)) * 2

    plain = jax.jit(jax.grad(lambda x: jnp.sum(block(x))))(x)
    remat = jax.jit(jax.grad(lambda x: jnp.sum(jax.checkpoint(block)(x))))(x)
    np.testing.assert_array_equal(np.asarray(remat), np.asarray(plain))
    keep = np.asarray(reference.keep_bits(8, 0, SHAPE, 0.5)).reshape(SHAPE)
    assert np.array_equal(np.asarray(remat) != 0, keep)


def test_grad_under_vmap_and_jit():
    x = jnp.ones(SHAPE, jnp.float32)
    keys = jax.random.split(jax.random.key(2), 2)
    grads = jax.jit(jax.vmap(jax.grad(lambda x, k: jnp.sum(unidrop.dropout(x, 0.5, seed=k))), (None, 0)))(
        x, keys
    )
    for i in range(2):
        data = np.asarray(jax.random.key_data(keys[i])).astype(int)
        want = expected(np.ones(SHAPE), "float32", 0.5, int(data[0]) * 2**32 + int(data[1]))[0]
        assert same_bits(as_float64(grads[i]), want)


def test_p_one_gradient_is_zero():
    x = jnp.ones(SHAPE, jnp.float32)
    grad = jax.grad(lambda x: jnp.sum(unidrop.dropout(x, 1.0, seed=1)))(x)
    assert same_bits(as_float64(grad), np.zeros(SHAPE))


def test_a_new_p_in_eager_mode_does_not_recompile_and_stays_exact():
    """p reaches the compiled program as exact run-time words (uint32 threshold, rounded scale)."""
    values = values_for(SHAPE, "bfloat16", seed=9)
    x = jnp.asarray(values, jnp.bfloat16)
    ps = [0.1, 0.1 + 2.0**-30, 0.37, 0.5, 1 - 2.0**-32, 2.0**-40]  # thresholds 429496729 .. 2**32 - 1, 0
    unidrop.dropout(x, 0.2, seed=11, stream=2)
    before = forward._cache_size()
    for p in ps:
        y = unidrop.dropout(x, p, seed=11, stream=2)
        assert same_bits(as_float64(y), expected(values, "bfloat16", p, 11, 2)[0]), p
    assert forward._cache_size() == before
    y = unidrop.dropout(x, 1.0, seed=11, stream=2)  # p == 1 is its own program: every element dropped
    assert same_bits(as_float64(y), np.zeros(SHAPE))
