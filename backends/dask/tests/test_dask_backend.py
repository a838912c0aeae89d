"""The Dask backend on the threaded scheduler: lazy, chunking-independent, errors at build time.

Expected values come from unidrop.reference (small arrays) or the NumPy backend on the whole
array (large ones), never from the Dask backend.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest

import unidrop
from unidrop import reference, seeding

SEED, STREAM = 0x9E3779B97F4A7C15, (1 << 32) + 7


def values_of(shape: tuple[int, ...]) -> np.ndarray:
    """Small integers in float32 (exact in every dtype), different at every index."""
    size = int(np.prod(shape))
    return (np.arange(size, dtype=np.float64) % 251 - 125).reshape(shape).astype(np.float32)


def expected(
    x: np.ndarray, p: float, seed: int, stream: int, dims: tuple[int, ...], **block: Any
) -> tuple[np.ndarray, np.ndarray]:
    """The reference's output and mask for ``x`` (float32)."""
    out, keep = reference.dropout(x.reshape(-1).tolist(), x.shape, "float32", p, seed, stream, dims, **block)
    mask_shape = tuple(1 if d in {a % x.ndim for a in dims} else n for d, n in enumerate(x.shape))
    return np.array(out, dtype=np.float32).reshape(x.shape), np.array(keep, dtype=bool).reshape(mask_shape)


class Counter:
    """Counts the chunks a source array has computed (the threaded scheduler runs in this process)."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def source(self, values: np.ndarray, chunks: tuple[tuple[int, ...], ...]) -> da.Array:
        """A dask array of ``values`` whose every computed chunk is counted."""

        def chunk(block: np.ndarray, block_info: Any = None) -> np.ndarray:
            with self.lock:
                self.calls += 1
            where = tuple(slice(a, b) for a, b in block_info[0]["array-location"])
            return values[where].copy()

        template = da.zeros(values.shape, dtype=values.dtype, chunks=chunks)
        meta = np.empty((0,) * values.ndim, dtype=values.dtype)  # so that dask never calls chunk to infer it
        return template.map_blocks(chunk, dtype=values.dtype, meta=meta)


CHUNKINGS = {
    "uneven": ((3, 1, 5), (7, 2, 4)),
    "one-chunk": ((9,), (13,)),
    "one-element-rows": ((1,) * 9, (6, 7)),
    "every-element": ((1,) * 9, (1,) * 13),
    "with-empty-chunks": ((3, 0, 6), (5, 0, 8, 0)),
}


@pytest.mark.parametrize("chunks", CHUNKINGS.values(), ids=CHUNKINGS.keys())
@pytest.mark.parametrize("dims", [(), (0,), (1,), (-1, 0)])
def test_every_chunking_gives_the_whole_arrays_result(chunks: Any, dims: tuple[int, ...]) -> None:
    """Output and mask equal the reference's for the whole array, whatever the chunks, and with
    broadcast_dims across chunk boundaries; the mask has one size-1 chunk on each broadcast axis."""
    x = values_of((9, 13))
    y, keep = unidrop.dropout(
        da.from_array(x, chunks=chunks), 0.4, seed=SEED, stream=STREAM, broadcast_dims=dims, return_mask=True
    )
    want_y, want_keep = expected(x, 0.4, SEED, STREAM, dims)
    assert isinstance(y, da.Array) and isinstance(keep, da.Array)
    assert y.chunks == chunks and y.dtype == np.float32 and keep.dtype == np.bool_
    axes = {d % 2 for d in dims}
    assert keep.chunks == tuple((1,) if d in axes else c for d, c in enumerate(chunks))
    np.testing.assert_array_equal(y.compute(), want_y)
    np.testing.assert_array_equal(keep.compute(), want_keep)
    # computed together, one task per chunk gives both
    both_y, both_keep = dask.compute(y, keep)
    np.testing.assert_array_equal(both_y, want_y)
    np.testing.assert_array_equal(both_keep, want_keep)


def test_large_uneven_array_equals_the_numpy_backend_on_the_whole_array() -> None:
    """2**20 + 5 elements in uneven chunks, with a broadcast axis: equal to the NumPy backend's
    result on the whole NumPy array, output and mask."""
    x = values_of((1031, 1017))
    dx = da.from_array(x, chunks=((500, 331, 200), (17, 600, 400)))
    for dims in [(), (0,)]:
        y, keep = unidrop.dropout(dx, 0.3, seed=SEED, stream=STREAM, broadcast_dims=dims, return_mask=True)
        want_y, want_keep = unidrop.dropout(
            x, 0.3, seed=SEED, stream=STREAM, broadcast_dims=dims, return_mask=True
        )
        got_y, got_keep = dask.compute(y, keep)
        np.testing.assert_array_equal(got_y, want_y)
        np.testing.assert_array_equal(got_keep, want_keep)


def test_building_the_graph_computes_nothing() -> None:
    """dropout (with or without a mask) only builds a graph; its chunks run when computed."""
    counter = Counter()
    x = values_of((9, 13))
    source = counter.source(x, CHUNKINGS["uneven"])
    y = unidrop.dropout(source, 0.5, seed=SEED)
    y2, keep = unidrop.dropout(source, 0.5, seed=SEED, broadcast_dims=(1,), return_mask=True)
    assert counter.calls == 0, "building the graph computed chunks of the input"
    np.testing.assert_array_equal(y.compute(), expected(x, 0.5, SEED, 0, ())[0])
    assert counter.calls == 9  # one per chunk
    dask.compute(y2, keep)
    assert counter.calls == 18


@pytest.mark.parametrize(
    ("p", "kwargs", "error", "match"),
    [
        (1.5, {}, ValueError, "p must be"),
        ("0.5", {}, TypeError, "p must be"),
        (0.5, {"seed": -1}, ValueError, "seed"),
        (0.5, {"stream": 1 << 64}, ValueError, "stream"),
        (0.5, {"broadcast_dims": (2,)}, ValueError, "broadcast_dims"),
        (0.5, {"global_shape": (9, 12), "offset": (0, 0)}, ValueError, "global_shape"),
    ],
)
def test_bad_arguments_raise_when_the_graph_is_built(
    p: Any, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Bad p, seed, stream, broadcast_dims or block raise at the call, computing nothing."""
    counter = Counter()
    source = counter.source(values_of((9, 13)), CHUNKINGS["uneven"])
    with pytest.raises(error, match=match):
        unidrop.dropout(source, p, **{"seed": 1, **kwargs})
    assert counter.calls == 0


@pytest.mark.parametrize("dtype", ["int32", "bool", "complex64"])
def test_a_non_float_dtype_raises_when_the_graph_is_built(dtype: str) -> None:
    """An integer, bool or complex dask array: a TypeError naming the dtype, at the call."""
    x = da.ones((6, 4), dtype=dtype, chunks=(4, 3))
    with pytest.raises(TypeError, match=rf"dtype {dtype}\b"):
        unidrop.dropout(x, 0.5, seed=1)


def test_unknown_chunk_sizes_raise_naming_the_fix() -> None:
    """A dask array of unknown shape (NaN chunk sizes): a ValueError saying to compute them, except
    where the identity is returned."""
    x = da.from_array(np.arange(10.0, dtype=np.float32), chunks=4)
    unknown = x[x > 3]
    assert np.isnan(unknown.shape[0])
    for call in (
        lambda: unidrop.dropout(unknown, 0.5, seed=1),
        lambda: unidrop.dropout(unknown, 0.5, seed=1, training=False, return_mask=True),
        lambda: unidrop.alpha_dropout(unknown, 0.5, seed=1),
        lambda: unidrop.gaussian_dropout(unknown, 0.5, seed=1),
        lambda: unidrop.dropout_backward(unknown, 0.5, seed=1),
        lambda: unidrop.dropout_backward_from_mask(unknown, unknown > 5, 0.5),
        lambda: unidrop.dropout_backward_from_mask(x, x[x > 3] > 5, 0.5),
    ):
        with pytest.raises(ValueError, match=r"compute_chunk_sizes"):
            call()
    # evaluation and p == 0 need no size: x itself, as for every other array
    assert unidrop.dropout(unknown, 0.5, seed=1, training=False) is unknown
    assert unidrop.dropout(unknown, 0.0, seed=1) is unknown
    assert unidrop.alpha_dropout(unknown, 0.5, training=False) is unknown
    known = unknown.compute_chunk_sizes()
    np.testing.assert_array_equal(
        unidrop.dropout(known, 0.5, seed=3).compute(),
        unidrop.dropout(np.arange(4.0, 10.0, dtype=np.float32), 0.5, seed=3),
    )


def test_chunks_that_their_backend_refuses_raise_when_the_graph_is_built() -> None:
    """Chunks of a type the chunk backend refuses (NumPy masked arrays): a TypeError at the call,
    naming the chunk type; at p = 0 and in evaluation too, as unidrop-numpy refuses them there."""
    x = da.ma.masked_array(da.ones((6, 4), dtype=np.float32, chunks=3), mask=np.zeros((6, 4), bool))
    for p, training in [(0.5, True), (0.0, True), (0.5, False)]:
        with pytest.raises(TypeError, match="chunks of this dask array are MaskedArray"):
            unidrop.dropout(x, p, seed=1, training=training)


def test_seed_none_draws_one_seed_for_the_whole_array_at_build_time() -> None:
    """seed=None draws one seed from unidrop's global source when the graph is built: every chunk
    uses it, computing again gives the same result, and the source moved by one draw only."""
    x = values_of((9, 13))
    dx = da.from_array(x, chunks=CHUNKINGS["uneven"])
    unidrop.manual_seed(77)
    drawn, after = seeding.draw_seed(), seeding.draw_seed()
    unidrop.manual_seed(77)
    y = unidrop.dropout(dx, 0.5)
    assert seeding.draw_seed() == after, "building the graph must draw exactly one seed"
    want = expected(x, 0.5, drawn, 0, ())[0]
    np.testing.assert_array_equal(y.compute(), want)
    np.testing.assert_array_equal(y.compute(), want)


def test_a_dask_array_that_is_a_block_of_a_larger_array() -> None:
    """global_shape= and offset= on a dask array: each chunk gets its slice of that larger mask."""
    whole = values_of((11, 20))
    part = whole[2:9, 5:18]
    dx = da.from_array(part, chunks=((3, 4), (6, 2, 5)))
    for dims in [(), (1,), (0,)]:
        y, keep = unidrop.dropout(
            dx, 0.5, seed=SEED, stream=STREAM, broadcast_dims=dims, return_mask=True,
            global_shape=(11, 20), offset=(2, 5),
        )  # fmt: skip
        want_y, want_keep = expected(part, 0.5, SEED, STREAM, dims, global_shape=(11, 20), offset=(2, 5))
        got_y, got_keep = dask.compute(y, keep)
        np.testing.assert_array_equal(got_y, want_y)
        np.testing.assert_array_equal(got_keep, want_keep)


def test_different_requests_get_different_task_keys() -> None:
    """Two calls differing in p, seed, stream, broadcast_dims or mask get different keys (a shared
    key would let a scheduler reuse one call's chunks for another); equal calls get equal keys."""
    dx = da.from_array(values_of((9, 13)), chunks=CHUNKINGS["uneven"])
    variants = [
        {"p": 0.5, "seed": 1},
        {"p": 0.25, "seed": 1},
        {"p": 0.5, "seed": 2},
        {"p": 0.5, "seed": 1, "stream": 1},
        {"p": 0.5, "seed": 1, "broadcast_dims": (0,)},
        {"p": 0.5, "seed": 1, "global_shape": (10, 13), "offset": (1, 0)},
    ]
    names = [unidrop.dropout(dx, **v).name for v in variants]
    assert len(set(names)) == len(names), names
    assert unidrop.dropout(dx, 0.5, seed=1).name == names[0]
    masks = [unidrop.dropout(dx, **v, return_mask=True)[1].name for v in variants]
    assert len(set(masks)) == len(masks), masks


def test_identity_paths_return_the_input_and_a_lazy_all_true_mask() -> None:
    """p == 0 and training=False return x itself; the mask is a lazy all-True dask array."""
    dx = da.from_array(values_of((9, 13)), chunks=CHUNKINGS["uneven"])
    for p, training in [(0.0, True), (0.5, False)]:
        y, keep = unidrop.dropout(dx, p, seed=1, training=training, return_mask=True, broadcast_dims=(0,))
        assert y is dx
        assert isinstance(keep, da.Array) and keep.shape == (1, 13) and keep.dtype == np.bool_
        assert keep.chunks == ((1,), CHUNKINGS["uneven"][1])
        assert keep.compute().all()


@pytest.mark.parametrize("shape", [(), (0,), (0, 5), (7,), (2, 3, 4)])
def test_zero_d_and_empty_arrays(shape: tuple[int, ...]) -> None:
    """0-d and empty dask arrays give the reference's output and mask."""
    x = values_of(shape)
    chunks = tuple((n,) if n < 2 else (1, n - 1) for n in shape)
    y, keep = unidrop.dropout(da.from_array(x, chunks=chunks), 0.5, seed=SEED, return_mask=True)
    want_y, want_keep = expected(x, 0.5, SEED, 0, ())
    got_y, got_keep = dask.compute(y, keep)
    assert got_y.shape == shape and got_keep.shape == shape
    np.testing.assert_array_equal(got_y, want_y)
    np.testing.assert_array_equal(got_keep, want_keep)


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_other_dtypes_match_the_numpy_backend(dtype: str) -> None:
    """float16 and float64 chunks: equal to the NumPy backend's result on the whole array."""
    x = values_of((10, 7)).astype(dtype)
    got = unidrop.dropout(da.from_array(x, chunks=(4, 3)), 0.3, seed=SEED).compute()
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, unidrop.dropout(x, 0.3, seed=SEED))


def test_cupy_chunks_use_the_cupy_backend() -> None:
    """A CuPy-backed dask array: chunks computed by the CuPy backend, result on the GPU, equal to
    the reference's (needs unidrop-cupy and a GPU)."""
    gpus = [d for d in unidrop.get_backend("dask").implementation().devices() if d != "cpu"]
    if not gpus:
        pytest.skip("no CuPy backend with a GPU here")
    adapter = unidrop.get_backend("dask").suite_adapter()
    x = values_of((9, 13))
    dx = adapter.from_numpy(x, "float32", gpus[0])
    y, keep = unidrop.dropout(dx, 0.4, seed=SEED, stream=STREAM, broadcast_dims=(0,), return_mask=True)
    assert adapter.device_of(y) == gpus[0] and adapter.device_of(keep) == gpus[0]
    want_y, want_keep = expected(x, 0.4, SEED, STREAM, (0,))
    np.testing.assert_array_equal(adapter.to_numpy(y), want_y)
    np.testing.assert_array_equal(adapter.to_numpy(keep), want_keep)


def test_devices_and_description() -> None:
    """cpu is always a device; describe() names the chunk backend."""
    implementation = unidrop.get_backend("dask").implementation()
    assert implementation.devices()[0] == "cpu"
    assert "NumPy-backed chunks" in implementation.describe()


def test_every_uneven_split_of_a_short_axis() -> None:
    """Every way to cut 6 elements into chunks gives the same output as the reference."""
    x = values_of((6,))
    want = expected(x, 0.5, SEED, STREAM, ())[0]
    for cuts in itertools.chain.from_iterable(itertools.combinations(range(1, 6), k) for k in range(6)):
        bounds = (0, *cuts, 6)
        chunks = (tuple(b - a for a, b in itertools.pairwise(bounds)),)
        got = unidrop.dropout(da.from_array(x, chunks=chunks), 0.5, seed=SEED, stream=STREAM).compute()
        np.testing.assert_array_equal(got, want, err_msg=f"chunks {chunks}")


def test_errors_knowable_from_the_shape_come_when_the_graph_is_built() -> None:
    """More mask elements than the stream numbers (the message named the chunk type and a
    global_shape nobody passed), and family words past index 2**63 (raised only at compute)."""
    huge = da.ones((2**32, 2**32 + 1), chunks=2**28, dtype=np.float32)
    with pytest.raises(ValueError, match=r"this dask array of shape .* mask elements: .* at most 2\*\*64"):
        unidrop.dropout(huge, 0.5, seed=1)
    x = da.ones((4, 8), chunks=2, dtype=np.float32)
    with pytest.raises(ValueError, match=r"mask indices below 2\*\*63"):
        unidrop.gaussian_dropout(x, 0.3, seed=1, global_shape=(2**61, 8), offset=(2**61 - 4, 0))


@pytest.mark.parametrize("argument", ["p", "seed", "stream"])
def test_a_lazy_p_seed_or_stream_is_refused_without_computing_it(argument: str) -> None:
    """A 0-d dask array as p, seed or stream would be computed while the graph is built (reading
    its number); it is refused, naming it, and nothing is computed."""
    computed = []

    def value(block_info: Any = None) -> np.ndarray:
        computed.append(1)
        return np.array(0.3 if argument == "p" else 7)

    lazy = da.map_blocks(value, chunks=(), dtype=float if argument == "p" else int, meta=np.empty((), float))
    x = da.ones((4, 4), chunks=2, dtype=np.float32)
    arguments: dict[str, Any] = {"p": 0.5, "seed": 1, argument: lazy}
    p = arguments.pop("p")
    with pytest.raises(TypeError, match=rf"{argument} must be a number known now, got a lazy dask"):
        unidrop.dropout(x, p, **arguments)
    assert computed == []
