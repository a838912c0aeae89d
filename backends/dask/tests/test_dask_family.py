"""The dropout family on dask arrays: lazy, chunking-independent, blocks of blocks.

Expected values come from unidrop.reference; the conformance suite checks the family on one
uneven chunking, these check that building computes nothing and that any chunking, broadcast
axis or block gives the same result.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import pytest
from test_dask_backend import CHUNKINGS, SEED, STREAM, Counter, values_of

import unidrop
from unidrop import reference
from unidrop.conformance.family import same_or_either, within_bound


def test_the_family_builds_a_graph_and_computes_each_input_chunk_once() -> None:
    """alpha_dropout, drop_path and gaussian_dropout return dask arrays without computing a chunk;
    computing one computes each input chunk once and gives the reference's values."""
    counter = Counter()
    x = values_of((9, 13))
    source = counter.source(x, CHUNKINGS["uneven"])
    alpha = unidrop.alpha_dropout(source, 0.3, seed=SEED, stream=STREAM)
    path = unidrop.drop_path(source, 0.3, seed=SEED, stream=STREAM, scale_by_keep=False)
    noisy = unidrop.gaussian_dropout(source, 0.3, seed=SEED, stream=STREAM, broadcast_dims=(1,))
    assert all(isinstance(y, da.Array) for y in (alpha, path, noisy))
    assert counter.calls == 0, "building the family's graph computed chunks of the input"
    flat = x.reshape(-1).tolist()
    want, bounds = reference.gaussian_dropout(flat, x.shape, "float32", 0.3, SEED, STREAM, (1,))
    within_bound(noisy.compute(), want, bounds, "gaussian_dropout")
    assert counter.calls == 9, "each input chunk once (the words' tasks share the input's)"
    pairs, _ = reference.alpha_dropout(flat, x.shape, "float32", 0.3, SEED, STREAM)
    same_or_either(alpha.compute(), pairs, "alpha_dropout")
    want_path, _ = reference.drop_path(flat, x.shape, "float32", 0.3, SEED, STREAM, scale_by_keep=False)
    np.testing.assert_array_equal(path.compute(), np.array(want_path, dtype=np.float32).reshape(x.shape))


@pytest.mark.parametrize("chunks", CHUNKINGS.values(), ids=CHUNKINGS.keys())
@pytest.mark.parametrize("dims", [(), (0,), (1,)])
def test_gaussian_dropout_is_the_same_for_every_chunking(chunks: Any, dims: tuple[int, ...]) -> None:
    """Every chunking (empty chunks too) and broadcast axis: within the bound of the reference, and
    bit for bit the NumPy backend's result on the whole array (the same functions, chunk by chunk)."""
    x = values_of((9, 13))
    y = unidrop.gaussian_dropout(
        da.from_array(x, chunks=chunks), 0.6, seed=SEED, stream=STREAM, broadcast_dims=dims
    )
    want, bounds = reference.gaussian_dropout(
        x.reshape(-1).tolist(), x.shape, "float32", 0.6, SEED, STREAM, dims
    )
    got = y.compute()
    within_bound(got, want, bounds, f"chunks={chunks} dims={dims}")
    whole = unidrop.gaussian_dropout(x, 0.6, seed=SEED, stream=STREAM, broadcast_dims=dims)
    np.testing.assert_array_equal(got, whole)


@pytest.mark.parametrize("dims", [(), (0,), (1,)])
def test_a_dask_array_that_is_a_block_gets_its_slice_of_the_family(dims: tuple[int, ...]) -> None:
    """global_shape= and offset= on a chunked dask array (blocks of blocks): each family function
    gives the reference's values for that block of the larger array."""
    whole = values_of((11, 20))
    part = whole[2:9, 5:18]
    dx = da.from_array(part, chunks=((3, 4), (6, 2, 5)))
    block = {"global_shape": (11, 20), "offset": (2, 5)}
    flat = part.reshape(-1).tolist()
    y = unidrop.gaussian_dropout(dx, 0.4, seed=SEED, stream=STREAM, broadcast_dims=dims, **block)
    want, bounds = reference.gaussian_dropout(flat, part.shape, "float32", 0.4, SEED, STREAM, dims, **block)
    within_bound(y.compute(), want, bounds, f"gaussian_dropout of a block, dims={dims}")
    y, keep = unidrop.alpha_dropout(
        dx, 0.4, seed=SEED, stream=STREAM, broadcast_dims=dims, return_mask=True, **block
    )
    pairs, want_keep = reference.alpha_dropout(flat, part.shape, "float32", 0.4, SEED, STREAM, dims, **block)
    same_or_either(y.compute(), pairs, f"alpha_dropout of a block, dims={dims}")
    np.testing.assert_array_equal(keep.compute().reshape(-1), np.array(want_keep))


def test_other_dtypes_compute_in_float32_and_keep_their_dtype() -> None:
    """bfloat16 and float16 dask arrays: the result keeps the dtype and equals the NumPy backend's."""
    x = values_of((9, 13))
    for dtype in ["float16", "bfloat16"]:
        whole = unidrop.get_backend("numpy").suite_adapter().from_numpy(x, dtype)
        y = unidrop.gaussian_dropout(da.from_array(whole, chunks=(4, 5)), 0.3, seed=SEED)
        assert y.dtype == whole.dtype
        np.testing.assert_array_equal(y.compute(), unidrop.gaussian_dropout(whole, 0.3, seed=SEED))


def test_inplace_is_refused_for_immutable_dask_arrays() -> None:
    x = da.ones((4, 4), dtype=np.float32, chunks=2)
    with pytest.raises(TypeError, match="inplace"):
        unidrop.dropout(x, 0.5, seed=1, inplace=True)


@pytest.mark.parametrize("shape", [(), (0, 3), (3, 0)], ids=["0-d", "empty-rows", "empty-columns"])
def test_gaussian_dropout_of_0d_and_empty_arrays(shape: tuple[int, ...]) -> None:
    """A 0-d dask array (whose chunk template holds one element) and empty ones: the NumPy
    backend's result on the same values."""
    x = np.full(shape, 3.0, dtype=np.float32)
    y = unidrop.gaussian_dropout(da.from_array(x), 0.3, seed=SEED)
    assert isinstance(y, da.Array) and y.shape == shape
    np.testing.assert_array_equal(y.compute(), unidrop.gaussian_dropout(x, 0.3, seed=SEED))


@pytest.mark.parametrize(
    "chunks", [((1, 1), (1, 0)), ((2,), (0, 1)), ((0, 2), (1, 0, 0))], ids=["1-0", "0-1", "1-0-0"]
)
def test_a_size_one_axis_split_with_an_empty_chunk_gives_the_whole_arrays_family(chunks: Any) -> None:
    """Boolean indexing can leave an axis of size 1 in chunks (1, 0); dask's own arithmetic computes
    ``x * 1.5`` there as two elements (dask 2026.8). Every family function still gives the NumPy
    backend's result on the whole array, of the right shape."""
    x = values_of((2, 1))
    dx = da.from_array(x, chunks=chunks)
    for name in ("alpha_dropout", "gaussian_dropout", "drop_path"):
        got = getattr(unidrop, name)(dx, 0.5, seed=SEED, stream=STREAM).compute()
        np.testing.assert_array_equal(got, getattr(unidrop, name)(x, 0.5, seed=SEED, stream=STREAM), name)
    _, keep = unidrop.dropout(dx, 0.5, seed=SEED, stream=STREAM, return_mask=True)
    got = unidrop.dropout_backward_from_mask(dx, keep, 0.5).compute()
    np.testing.assert_array_equal(got, unidrop.dropout_backward(x, 0.5, seed=SEED, stream=STREAM))
