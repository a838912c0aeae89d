"""The NumPy backend's vectorised Philox and chunking, checked against the pure-Python oracle.

Expected values come from unidrop.philox, unidrop.reference and the known-answer file only.
"""

from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unidrop_numpy.chunked import blocks, dropout_array
from unidrop_numpy.philox_arrays import PhiloxWorkspace

from unidrop import arguments, philox, reference

U64 = st.integers(0, 2**64 - 1)
#: Mask indices whose block index (i >> 2) lies on either side of 2^32, or is just large.
STARTS = st.one_of(
    st.integers(0, 100),
    st.integers(2**34 - 300, 2**34 + 20),
    st.integers(2**35 - 40, 2**35 + 40),
    st.integers(0, 2**64 - 2**12),
)
THRESHOLDS = st.one_of(st.sampled_from([0, 1, 2**31, 2**32 - 1, 2**32]), st.integers(0, 2**32))
DTYPES = {"float16": np.float16, "float32": np.float32, "float64": np.float64}


def known_answers() -> dict:
    text = resources.files("unidrop.conformance").joinpath("known_answers.json").read_text()
    return json.loads(text)


def as_int(value: str | int, base: int = 10) -> int:
    return value if isinstance(value, int) else int(value, base)


# -- Philox words -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", known_answers()["philox4x32_10"])
def test_random123_known_answers(case: dict) -> None:
    c0, c1, c2, c3 = (int(w, 16) for w in case["counter"])
    k0, k1 = (int(w, 16) for w in case["key"])
    expected = [int(w, 16) for w in case["out"]]
    words = PhiloxWorkspace(4).blocks(k0 | k1 << 32, c2 | c3 << 32, c0 | c1 << 32, 1)
    assert words.dtype == np.uint32 and words.shape == (1, 4)
    assert words[0].tolist() == expected


@pytest.mark.parametrize("case", known_answers()["stream_v1"], ids=lambda c: f"seed{c['seed']}")
def test_stream_v1_known_answers(case: dict) -> None:
    seed, stream = as_int(case["seed"]), as_int(case["stream"])
    count = math.prod(case["mask_shape"])
    t = as_int(case["threshold"])
    workspace = PhiloxWorkspace(count // 4 + 2)
    assert workspace.words(seed, stream, 0, count).tolist() == case["words"]
    masks = workspace.keep_masks(seed, stream, 0, count, t, 4)
    assert "".join("1" if m else "0" for m in masks.tolist()) == case["keep"]


@settings(max_examples=60, deadline=None)
@given(seed=U64, stream=U64, start=STARTS, count=st.integers(1, 150))
def test_words_match_reference(seed: int, stream: int, start: int, count: int) -> None:
    workspace = PhiloxWorkspace(count // 4 + 2)
    expected = list(philox.stream_words(seed, stream, start, count))
    assert workspace.words(seed, stream, start, count).tolist() == expected


@settings(max_examples=60, deadline=None)
@given(
    seed=U64,
    stream=U64,
    start=STARTS,
    count=st.integers(1, 120),
    t=THRESHOLDS,
    itemsize=st.sampled_from([2, 4, 8]),
)
def test_keep_masks_match_reference(
    seed: int, stream: int, start: int, count: int, t: int, itemsize: int
) -> None:
    workspace = PhiloxWorkspace(count // 4 + 2)
    masks = workspace.keep_masks(seed, stream, start, count, t, itemsize)
    ones = (1 << (8 * itemsize)) - 1
    expected = [ones if u >= t else 0 for u in philox.stream_words(seed, stream, start, count)]
    assert masks.dtype.itemsize == itemsize and masks.dtype.kind == "u"
    assert masks.tolist() == expected


def test_workspace_is_reusable_and_refuses_too_many_blocks() -> None:
    workspace = PhiloxWorkspace(8)
    first = workspace.words(5, 6, 2**34 - 7, 30).tolist()
    workspace.keep_masks(1, 2, 3, 20, 2**31, 8)  # a different request in between
    assert workspace.words(5, 6, 2**34 - 7, 30).tolist() == first
    with pytest.raises(ValueError, match="at most 8 blocks"):
        workspace.blocks(0, 0, 0, 9)


# -- Chunks -----------------------------------------------------------------------------------


def check_blocks(shape: tuple[int, ...], mshape: tuple[int, ...], chunk: int) -> None:
    """Every element covered once, in C order, with the mask index the reference gives it."""
    seen = np.zeros(shape, dtype=np.int64)
    flat = np.arange(math.prod(shape)).reshape(shape)
    next_flat = 0
    for index, mstart, mcount, mblock in blocks(shape, mshape, chunk):
        block = flat[index]
        assert 0 < block.size <= max(chunk, 1) or math.prod(shape) == 0
        assert math.prod(mblock) == mcount
        seen[index] += 1
        assert block.reshape(-1)[:1].tolist() in ([], [next_flat])  # C order, no gaps
        next_flat += block.size
        got = np.broadcast_to(np.arange(mstart, mstart + mcount).reshape(mblock), block.shape)
        expected = [reference.flat_mask_index(int(i), shape, mshape) for i in block.reshape(-1)]
        assert got.reshape(-1).tolist() == expected
    assert (seen == 1).all()


@st.composite
def shapes_and_masks(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    shape = tuple(draw(st.lists(st.integers(0, 7), min_size=0, max_size=4)))
    dims = draw(st.sets(st.integers(0, max(len(shape) - 1, 0)), max_size=len(shape)))
    return shape, arguments.mask_shape(shape, tuple(sorted(dims)) if shape else ())


@settings(max_examples=150, deadline=None)
@given(shapes_and_masks(), st.integers(1, 80))
def test_blocks_cover_everything_with_the_right_mask_indices(
    shapes: tuple[tuple[int, ...], tuple[int, ...]], chunk: int
) -> None:
    shape, mshape = shapes
    check_blocks(shape, mshape, chunk)


@pytest.mark.parametrize(
    ("shape", "mshape", "chunk"),
    [
        ((), (), 16),
        ((1,), (1,), 1),
        ((3, 1000), (3, 1000), 64),  # a trailing axis much longer than a chunk
        ((3, 1000), (1, 1000), 64),
        ((3, 1000), (3, 1), 64),
        ((2, 3, 257), (2, 1, 257), 100),
        ((5, 2, 33), (1, 2, 1), 7),
    ],
)
def test_blocks_examples(shape: tuple[int, ...], mshape: tuple[int, ...], chunk: int) -> None:
    check_blocks(shape, mshape, chunk)


def test_blocks_of_a_huge_trailing_axis() -> None:
    """Blocks of at most ``chunk`` elements tile a 2^33-long axis; checked at every block's ends."""
    shape, chunk = (2, 2**33 + 5), 2**20
    for mshape in [shape, (1, shape[1])]:
        next_flat = 0
        for index, mstart, mcount, mblock in blocks(shape, mshape, chunk):
            row, cols = index
            assert isinstance(row, int) and cols.step is None and 0 < cols.stop - cols.start <= chunk
            assert row * shape[1] + cols.start == next_flat
            next_flat += cols.stop - cols.start
            assert mblock == (mcount,) and mcount == cols.stop - cols.start
            for col in (cols.start, cols.stop - 1):
                expected = reference.flat_mask_index(row * shape[1] + col, shape, mshape)
                assert mstart + col - cols.start == expected
        assert next_flat == math.prod(shape)


# -- Whole arrays ------------------------------------------------------------------------------


def plan_for(shape: tuple[int, ...], dtype: str, p: float, seed: int, stream: int, dims: tuple[int, ...]):
    return arguments.DropoutPlan.build(shape, dtype, p, seed, stream, dims, return_mask=True)


@pytest.mark.usefixtures("small_chunks")
@settings(max_examples=40, deadline=None)
@given(
    shapes=shapes_and_masks(),
    dtype=st.sampled_from(sorted(DTYPES)),
    p=st.sampled_from([0.1, 0.5, 0.9, 1 / 3]),
    seed=U64,
    stream=U64,
    threads=st.sampled_from([1, 3]),
    order=st.sampled_from(["C", "F"]),
)
def test_dropout_array_matches_reference(
    shapes: tuple[tuple[int, ...], tuple[int, ...]],
    dtype: str,
    p: float,
    seed: int,
    stream: int,
    threads: int,
    order: str,
) -> None:
    shape, mshape = shapes
    dims = tuple(a for a in range(len(shape)) if mshape[a] == 1 and shape[a] != 1)
    values = np.random.default_rng(seed % 1000).standard_normal(shape).astype(DTYPES[dtype])
    if values.size >= 3:
        values.reshape(-1)[:3] = [np.nan, np.inf, -0.0]
    x = np.asarray(values, order=order)
    before = x.copy()
    y, keep = dropout_array(x, plan_for(shape, dtype, p, seed, stream, dims), threads=threads)
    expected, expected_keep = reference.dropout(
        [float(v) for v in values.reshape(-1)], shape, dtype, p, seed, stream, dims
    )
    assert y.dtype == x.dtype and y.shape == shape
    want = np.array(expected, dtype=DTYPES[dtype]).reshape(shape)
    assert y.reshape(-1).view(f"u{y.itemsize}").tolist() == want.reshape(-1).view(f"u{y.itemsize}").tolist()
    assert keep.shape == arguments.mask_shape(shape, dims)
    assert keep.reshape(-1).tolist() == expected_keep
    np.testing.assert_array_equal(x, before)


def test_threads_do_not_change_the_result(small_chunks: None) -> None:
    x = np.random.default_rng(0).standard_normal((37, 41)).astype(np.float32)
    plan = plan_for(x.shape, "float32", 0.3, 2**40 + 3, 7, (1,))
    y1, k1 = dropout_array(x, plan, threads=1)
    for threads in (2, 5):
        y, k = dropout_array(x, plan, threads=threads)
        assert y.view(np.uint32).tolist() == y1.view(np.uint32).tolist()
        assert k.tolist() == k1.tolist()


def test_large_array_matches_reference_at_sampled_elements() -> None:
    """Default chunks and threads on 2^20 elements: spot-check against the reference."""
    n = 2**20 + 3
    x = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    plan = plan_for(x.shape, "float32", 0.5, 12345, 2**33, ())
    y, keep = dropout_array(x, plan, threads=2)
    for i in [0, 1, 2, 3, 4, 65535, 65536, 65537, n // 2, n - 1]:
        word = philox.element_word(12345, 2**33, i)
        assert bool(keep[i]) == (word >= plan.threshold)
        want = reference.scaled(float(x[i]), "float32", 0.5) if word >= plan.threshold else 0.0
        assert y[i : i + 1].view(np.uint32)[0] == np.array([want], np.float32).view(np.uint32)[0]
    assert abs(int(keep.sum()) - n / 2) < 5 * math.sqrt(n / 4)


def test_worker_errors_propagate(monkeypatch: pytest.MonkeyPatch, small_chunks: None) -> None:
    calls = []

    def broken(self, *args, **kwargs):
        calls.append(1)
        raise RuntimeError("boom")

    monkeypatch.setattr(PhiloxWorkspace, "keep_masks", broken)
    x = np.ones(1000, np.float32)
    with pytest.raises(RuntimeError, match="boom"):
        dropout_array(x, plan_for(x.shape, "float32", 0.5, 1, 0, ()), threads=3)
    assert len(calls) <= 3  # each worker stops at its first failure


@pytest.mark.parametrize(("shape", "dims", "p"), [((0, 6), (0,), 0.5), ((3, 5), (), 1.0), ((0,), (), 1.0)])
def test_empty_inputs_and_p_one(shape: tuple[int, ...], dims: tuple[int, ...], p: float) -> None:
    """No elements, or everything dropped: zeros, and the keep mask still follows the reference."""
    x = np.full(shape, np.nan, np.float32)
    y, keep = dropout_array(x, plan_for(shape, "float32", p, 99, 5, dims))
    assert y.shape == shape and y.dtype == np.float32
    assert y.view(np.uint32).tolist() == np.zeros(shape, np.uint32).tolist()
    _, expected_keep = reference.dropout([], shape, "float32", p, 99, 5, dims)
    assert keep.shape == arguments.mask_shape(shape, dims)
    assert keep.reshape(-1).tolist() == expected_keep


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize(
    ("make", "dims"),
    [
        (lambda: np.arange(7 * 9, dtype=np.float32).reshape(7, 9).T, ()),
        (lambda: np.arange(7 * 9, dtype=np.float32).reshape(7, 9).T, (0,)),
        (lambda: np.arange(7 * 9, dtype=np.float32).reshape(7, 9).T, (1,)),
        (lambda: np.asfortranarray(np.arange(3 * 4 * 5, dtype=np.float64).reshape(3, 4, 5)), (1,)),
        (lambda: np.arange(3 * 4 * 10, dtype=np.float16).reshape(3, 4, 10).transpose(2, 0, 1)[::2], ()),
        (lambda: np.arange(6 * 8, dtype=np.float32).reshape(6, 8)[:, ::-1], ()),
    ],
)
def test_layouts_match_the_contiguous_copy(make, dims: tuple[int, ...]) -> None:
    """Transposed, Fortran-ordered, strided and reversed views: the result of their C copy."""
    x = make()
    dtype = x.dtype.name
    plan = plan_for(x.shape, dtype, 0.4, 11, 3, dims)
    y, keep = dropout_array(x, plan, threads=2)
    expected, expected_keep = reference.dropout(
        [float(v) for v in x.reshape(-1)], x.shape, dtype, 0.4, 11, 3, dims
    )
    bits = f"u{x.itemsize}"
    assert y.reshape(-1).view(bits).tolist() == np.array(expected, dtype).view(bits).tolist()
    assert keep.reshape(-1).tolist() == expected_keep


# -- The family's stream words ------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 3, 8, 1 << 18])
@pytest.mark.parametrize("block", [None, ((5, 9, 3), (2, 4, 0))], ids=["whole", "block"])
def test_family_stream_words_match_the_reference_across_chunks(
    monkeypatch: pytest.MonkeyPatch, chunk: int, block: tuple | None
) -> None:
    """gaussian_dropout's words, made a few at a time, are the stream's words at each (global) index."""
    from unidrop_numpy import family

    monkeypatch.setattr(family, "WORDS_CHUNK", chunk)
    shape = (3, 5, 3)
    seed, stream = 2**64 - 3, 7
    if block is None:
        plan = arguments.DropoutPlan.build(shape, "float32", 0.5, seed, stream)
        indices = list(range(math.prod(shape)))
    else:
        global_shape, offset = block
        plan = arguments.DropoutPlan.build(
            shape, "float32", 0.5, seed, stream, global_shape=global_shape, offset=offset
        )
        strides = (global_shape[1] * global_shape[2], global_shape[2], 1)
        indices = [
            sum((o + j) * s for o, j, s in zip(offset, index, strides, strict=True))
            for index in np.ndindex(*shape)
        ]
    words = family.stream_words(plan)
    assert words.shape == shape
    assert words.reshape(-1).tolist() == [philox.element_word(seed, stream, i) for i in indices]
