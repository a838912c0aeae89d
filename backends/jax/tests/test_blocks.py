"""Blocks of a global mask (``global_shape=``, ``offset=``) on JAX: eager, jit, traced offsets,
vmap, grad, and global masks past 2**32 elements. Expected values from ``unidrop.reference``."""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import as_float64, same_bits, values_for
from unidrop_jax.dropout import forward
from unidrop_jax.mask import split_block_rows

import unidrop
from unidrop import reference

SEED, STREAM = 2**40 + 77, 2**33 + 3


def want(values, dtype, p, gshape, offset, dims=(), seed=SEED, stream=STREAM):
    """Reference output (float64, shaped) and keep mask (bool, the block's mask shape)."""
    out, keep = reference.dropout(
        list(values.reshape(-1)),
        values.shape,
        dtype,
        p,
        seed,
        stream,
        dims,
        global_shape=gshape,
        offset=offset,
    )
    dims = {d % max(values.ndim, 1) for d in dims}
    mshape = tuple(1 if a in dims else n for a, n in enumerate(values.shape))
    return np.array(out).reshape(values.shape), np.array(keep, bool).reshape(mshape)


# (block shape, global shape, offset, broadcast_dims): unaligned starts and rows, rows that
# may or may not merge, broadcast axes, 0-d and 1-d blocks, a block that is the whole array.
CASES = [
    ((3, 5), (7, 9), (2, 3), ()),
    ((4, 8), (8, 16), (4, 8), ()),
    ((4, 8), (8, 16), (0, 0), ()),
    ((2, 3, 5), (4, 6, 5), (1, 2, 0), ()),
    ((2, 3, 5), (4, 6, 7), (1, 2, 1), ()),
    ((2, 3, 2), (5, 3, 2), (3, 0, 0), ()),
    ((5,), (13,), (7,), ()),
    ((), (), (), ()),
    ((6, 10), (6, 10), (0, 0), ()),
    ((3, 4, 6), (9, 4, 10), (5, 0, 3), (1,)),
    ((3, 4, 6), (9, 7, 10), (5, 2, 3), (0, 2)),
    ((2, 1, 70), (3, 4, 99), (1, 3, 29), ()),
    ((3, 0, 4), (5, 2, 9), (1, 1, 2), ()),
]


@pytest.mark.parametrize(("shape", "gshape", "offset", "dims"), CASES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_block_gets_its_slice_of_the_global_mask(shape, gshape, offset, dims, dtype):
    values = values_for(shape, dtype, seed=len(shape))
    x = jnp.asarray(values, dtype)
    out, keep = want(values, dtype, 0.45, gshape, offset, dims)
    kw = dict(seed=SEED, stream=STREAM, broadcast_dims=dims, global_shape=gshape, offset=offset)
    y, k = unidrop.dropout(x, 0.45, return_mask=True, **kw)
    assert same_bits(as_float64(y), out)
    assert np.array_equal(np.asarray(k), keep)
    jitted = jax.jit(lambda x: unidrop.dropout(x, 0.45, **kw))(x)
    assert same_bits(as_float64(jitted), out)


def test_tiles_put_together_are_the_whole_arrays_dropout():
    values = values_for((10, 14), "float32")
    whole = unidrop.dropout(jnp.asarray(values, jnp.float32), 0.5, seed=9, stream=1)
    rows = []
    for r in (0, 3, 7):
        height = {0: 3, 3: 4, 7: 3}[r]
        tiles = [
            unidrop.dropout(
                jnp.asarray(values[r : r + height, c : c + 7], jnp.float32),
                0.5, seed=9, stream=1, global_shape=(10, 14), offset=(r, c),
            )
            for c in (0, 7)
        ]  # fmt: skip
        rows.append(jnp.concatenate(tiles, axis=1))
    assert same_bits(as_float64(jnp.concatenate(rows, axis=0)), as_float64(whole))


@pytest.mark.parametrize(("shape", "gshape", "offset", "dims"), CASES[:7] + CASES[9:12], ids=str)
def test_traced_offsets_under_jit_compile_once_and_match_the_reference(shape, gshape, offset, dims):
    values = values_for(shape, "float32", seed=3)
    x = jnp.asarray(values, jnp.float32)
    f = jax.jit(
        lambda x, o: unidrop.dropout(
            x, 0.3, seed=SEED, stream=STREAM, broadcast_dims=dims, global_shape=gshape, offset=tuple(o)
        )
    )
    y = f(x, jnp.asarray(offset, jnp.int32))
    assert same_bits(as_float64(y), want(values, "float32", 0.3, gshape, offset, dims)[0])
    # another offset of the same block shape: the same program, that offset's slice
    other = tuple(max(o - 1, 0) for o in offset)
    y = f(x, jnp.asarray(other, jnp.int32))
    assert same_bits(as_float64(y), want(values, "float32", 0.3, gshape, other, dims)[0])
    assert f._cache_size() == 1


def test_a_mix_of_traced_and_python_offsets():
    values = values_for((3, 6), "float32")
    f = jax.jit(lambda x, i: unidrop.dropout(x, 0.5, seed=4, global_shape=(9, 20), offset=(i, 13)))
    for i in (0, 5, 6):
        y = f(jnp.asarray(values, jnp.float32), jnp.int32(i))
        assert same_bits(as_float64(y), want(values, "float32", 0.5, (9, 20), (i, 13), seed=4, stream=0)[0])


def test_vmap_over_offsets_gives_each_block_its_slice():
    values = values_for((4, 6), "float32")
    x = jnp.asarray(values, jnp.float32)
    starts = jnp.array([0, 4, 8, 12], jnp.int32)
    batch = jax.vmap(lambda i: unidrop.dropout(x, 0.5, seed=SEED, global_shape=(16, 6), offset=(i, 0)))(
        starts
    )
    for b, start in enumerate([0, 4, 8, 12]):
        assert same_bits(as_float64(batch[b]), want(values, "float32", 0.5, (16, 6), (start, 0), stream=0)[0])


def test_grad_of_a_block_regenerates_its_slice_of_the_mask():
    values = values_for((3, 7), "float32")
    x = jnp.asarray(values, jnp.float32)
    _, keep = want(values, "float32", 0.5, (11, 9), (5, 2), stream=0)
    scale = reference.scaled(1.0, "float32", 0.5)

    def loss(x, i):
        return jnp.sum(unidrop.dropout(x, 0.5, seed=SEED, global_shape=(11, 9), offset=(i, 2)))

    g = jax.jit(jax.grad(loss))(x, jnp.int32(5))
    assert np.array_equal(np.asarray(g), np.where(keep, scale, 0.0).astype(np.float32))
    g = jax.grad(loss)(x, 5)
    assert np.array_equal(np.asarray(g), np.where(keep, scale, 0.0).astype(np.float32))


# Global masks of more than 2**32 elements: the block's indices need two words, for Python and
# traced offsets alike (the reference computes only the block's own words).
HUGE = [
    ((3, 5), (2**20, 2**13 + 3), (2**20 - 3, 2**13 - 2)),
    ((2, 4), (3, 2**33), (1, 2**33 - 4)),
    ((4, 3, 2), (2**12, 2**12, 2**10), (2**12 - 4, 7, 1)),
]


@pytest.mark.parametrize(("shape", "gshape", "offset"), HUGE, ids=str)
def test_blocks_of_global_masks_past_two_to_the_32(shape, gshape, offset):
    assert math.prod(gshape) > 2**32
    values = values_for(shape, "float32", seed=8)
    x = jnp.asarray(values, jnp.float32)
    out, keep = want(values, "float32", 0.5, gshape, offset)
    y, k = unidrop.dropout(
        x, 0.5, seed=SEED, stream=STREAM, global_shape=gshape, offset=offset, return_mask=True
    )
    assert same_bits(as_float64(y), out) and np.array_equal(np.asarray(k), keep)
    f = jax.jit(
        lambda x, o: unidrop.dropout(x, 0.5, seed=SEED, stream=STREAM, global_shape=gshape, offset=tuple(o))
    )
    # int32 offsets hold these (each below 2**31) except (1, 2**33 - 4): that one is passed as
    # a traced row and a Python column
    if max(offset) < 2**31:
        assert same_bits(as_float64(f(x, jnp.asarray(offset, jnp.int32))), out)
    else:
        g = jax.jit(
            lambda x, i: unidrop.dropout(
                x, 0.5, seed=SEED, stream=STREAM, global_shape=gshape, offset=(i, offset[1])
            )
        )
        assert same_bits(as_float64(g(x, jnp.int32(offset[0]))), out)


def test_a_traced_offset_that_overflows_32_bits_times_its_stride():
    """offset * stride > 2**32 for a traced offset: the product is formed in two words."""
    gshape, offset = (2**31, 7), (2**31 - 1, 2)  # start = (2**31 - 1) * 7 + 2 > 2**33
    values = values_for((1, 5), "float32")
    f = jax.jit(lambda x, i: unidrop.dropout(x, 0.5, seed=1, global_shape=gshape, offset=(i, 2)))
    y = f(jnp.asarray(values, jnp.float32), jnp.int32(offset[0]))
    assert same_bits(as_float64(y), want(values, "float32", 0.5, gshape, offset, seed=1, stream=0)[0])


def test_split_block_rows_merges_only_axes_that_span_the_global_axis():
    assert split_block_rows((2, 3, 5), (4, 6, 5)) == ((2,), 15)
    assert split_block_rows((2, 3, 5), (4, 6, 7)) == ((2, 3), 5)
    assert split_block_rows((4, 8), (8, 16)) == ((4,), 8)
    assert split_block_rows((), ()) == ((), 1)


def test_tiles_at_python_offsets_share_one_compiled_program():
    """A Python offset travels at run time: the tiles of one shape do not recompile."""
    x = jnp.ones((4, 8), jnp.float32)
    unidrop.dropout(x, 0.5, seed=1, global_shape=(16, 8), offset=(0, 0))
    compiled = forward._cache_size()
    for r in (4, 8, 12):
        y = unidrop.dropout(x, 0.5, seed=1, global_shape=(16, 8), offset=(r, 0))
        assert same_bits(
            as_float64(y), want(np.ones((4, 8)), "float32", 0.5, (16, 8), (r, 0), seed=1, stream=0)[0]
        )
    assert forward._cache_size() == compiled


@pytest.mark.parametrize(
    ("value", "named"),
    [(jnp.float32(2.0), "dtype float32"), (jnp.zeros(2, jnp.int32), "shape (2,)")],
    ids=["float", "vector"],
)
def test_a_traced_offset_that_is_not_an_integer_scalar_is_refused_naming_it(value, named):
    f = jax.jit(lambda x, o: unidrop.dropout(x, 0.5, seed=1, global_shape=(8, 4), offset=(o, 0)))
    with pytest.raises(TypeError, match=rf"offset entries must be .*{re.escape(named)}"):
        f(jnp.ones((2, 4), jnp.float32), value)
