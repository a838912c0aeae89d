"""The dropout family through JAX autodiff: alpha's gradient is cot * a where kept, Gaussian's cot * noise."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import unidrop
from unidrop import reference

SEED, STREAM, P = (1 << 63) + 11, (1 << 40) + 3, 0.3


def _inputs(shape):
    rng = np.random.default_rng(5)
    return rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)


def test_alpha_dropout_gradient_is_cotangent_times_a_where_kept():
    values, cot = _inputs((6, 20))
    _, pullback = jax.vjp(
        lambda a: unidrop.alpha_dropout(a, P, seed=SEED, stream=STREAM), jnp.asarray(values)
    )
    (grad,) = pullback(jnp.asarray(cot))
    a32 = reference.round_to(reference.alpha_affine(P)[0], "float32")
    _, keep = reference.dropout(cot.reshape(-1).tolist(), cot.shape, "float32", P, SEED, STREAM)
    want = [
        reference.round_to(v * a32, "float32") if k else 0.0
        for v, k in zip(cot.reshape(-1).tolist(), keep, strict=True)
    ]
    assert np.asarray(grad).reshape(-1).tolist() == want


def test_gaussian_dropout_gradient_is_cotangent_times_the_noise_within_the_bound():
    values, cot = _inputs((6, 20))
    _, pullback = jax.vjp(
        lambda a: unidrop.gaussian_dropout(a, P, seed=SEED, stream=STREAM), jnp.asarray(values)
    )
    (grad,) = pullback(jnp.asarray(cot))
    want, bounds = reference.gaussian_dropout(cot.reshape(-1).tolist(), cot.shape, "float32", P, SEED, STREAM)
    error = np.abs(np.asarray(grad).reshape(-1).astype(np.float64) - np.array(want))
    assert np.all(error <= np.array(bounds))


def test_inplace_is_refused_for_immutable_arrays():
    with pytest.raises(TypeError, match="inplace=True needs a mutable array"):
        unidrop.dropout(jnp.ones(4), 0.5, seed=1, inplace=True)


@pytest.mark.parametrize(
    ("global_size", "offset"), [((1 << 64) - 1, (1 << 64) - 5), ((1 << 63) + 9, (1 << 63) + 1)]
)
def test_gaussian_dropout_refuses_a_block_whose_words_reach_2_to_the_64(
    global_size: int, offset: int
) -> None:
    """Two words per element: such a block's word indices would wrap to the start of the stream."""
    with pytest.raises(ValueError, match=r"below 2\*\*64.*reaches index"):
        unidrop.gaussian_dropout(jnp.ones(4), 0.5, seed=11, global_shape=(global_size,), offset=(offset,))


def test_gaussian_dropout_of_a_block_just_below_2_to_the_64_words_is_the_references() -> None:
    """The last block whose word indices (up to 2**64 - 1) are all computed: within the bound."""
    got = unidrop.gaussian_dropout(
        jnp.ones(4), 0.5, seed=11, global_shape=(1 << 63,), offset=((1 << 63) - 4,)
    )
    want, bounds = reference.gaussian_dropout(
        [1.0] * 4, (4,), "float32", 0.5, 11, 0, (), (1 << 63,), ((1 << 63) - 4,)
    )
    error = np.abs(np.asarray(got).astype(np.float64) - np.array(want))
    assert np.all(error <= np.array(bounds))


def test_gaussian_dropout_at_a_traced_8_byte_offset_past_2_to_the_32_is_the_references() -> None:
    """With x64 on, a traced int64 offset of 2**32 or more keeps its high word (in a subprocess)."""
    code = (
        "import jax\n"
        "jax.config.update('jax_enable_x64', True)\n"
        "import jax.numpy as jnp, numpy as np, unidrop\n"
        "from unidrop import reference\n"
        "g, o = (1 << 33,), (1 << 32) + 4\n"
        "f = jax.jit(lambda x, o: unidrop.gaussian_dropout(x, 0.5, seed=1, global_shape=g, offset=(o,)))\n"
        "got = f(jnp.ones(4, jnp.float32), jnp.int64(o))\n"
        "want, bounds = reference.gaussian_dropout([1.0] * 4, (4,), 'float32', 0.5, 1, 0, (), g, (o,))\n"
        "error = np.abs(np.asarray(got).astype(np.float64) - np.array(want))\n"
        "assert np.all(error <= np.array(bounds)), (got, want)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
