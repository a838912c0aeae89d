"""NumPy-specific behaviour of the NumPy backend, beyond the shared conformance suite."""

from __future__ import annotations

import numpy as np
import pytest
from unidrop_numpy import chunked

import unidrop
from unidrop import reference
from unidrop.conformance.suite import ConformanceSuite


class TestNumpyConformance(ConformanceSuite):
    """The whole conformance suite, run through a backend's own test file."""

    backend_name = "numpy"


def expected(x: np.ndarray, p: float, seed: int, stream: int = 0, dims=()) -> np.ndarray:
    c = np.ascontiguousarray(x)
    values = c.astype(np.float64).ravel().tolist()
    out, _ = reference.dropout(values, c.shape, c.dtype.name, p, seed, stream, dims)
    return np.array(out).reshape(c.shape)


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a[::-1],
        lambda a: a[::-3, ::2],
        lambda a: np.asfortranarray(a),
        lambda a: a.T,
        lambda a: np.broadcast_to(a[:1], a.shape),  # zero stride, read-only
    ],
    ids=["negative-stride", "negative-step-slice", "fortran", "transposed", "zero-stride"],
)
def test_any_layout_gives_the_reference_result(make):
    view = make(np.random.default_rng(0).standard_normal((20, 30)).astype(np.float32))
    y = unidrop.dropout(view, 0.4, seed=9, stream=1)
    np.testing.assert_array_equal(y, expected(view, 0.4, 9, 1))


def test_fortran_input_keeps_its_memory_order():
    x = np.asfortranarray(np.ones((5, 7), np.float64))
    assert unidrop.dropout(x, 0.5, seed=1).flags.f_contiguous


def test_read_only_input_is_fine_and_untouched():
    x = np.arange(100, dtype=np.float32)
    x.flags.writeable = False
    y = unidrop.dropout(x, 0.5, seed=3)
    np.testing.assert_array_equal(y, expected(x, 0.5, 3))
    assert y.flags.writeable


def test_numpy_scalar_gives_a_numpy_scalar():
    y = unidrop.dropout(np.float32(3.0), 0.5, seed=0)
    assert isinstance(y, np.float32)
    assert float(y) == expected(np.array(3.0, np.float32), 0.5, 0)[()]


def test_empty_input_with_a_non_empty_mask_shape_returns_the_mask():
    y, keep = unidrop.dropout(np.ones((0, 9), np.float32), 0.5, seed=5, broadcast_dims=(0,), return_mask=True)
    assert y.shape == (0, 9) and keep.shape == (1, 9)
    _, want = reference.dropout([], (0, 9), "float32", 0.5, 5, 0, (0,))
    assert keep.reshape(-1).tolist() == want


@pytest.mark.parametrize(
    ("shape", "dims"),
    [
        ((3, 70001), ()),
        ((70001, 3), (1,)),
        ((2, 5, 40000), (0, 2)),
        ((4, 3, 2, 9000), (1,)),
        ((1, 1, 70000), ()),
    ],
)
def test_arrays_larger_than_one_chunk_match_the_reference(shape, dims, monkeypatch):
    monkeypatch.setattr(chunked, "CHUNK", 1 << 12)  # many chunks, including ragged ones
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float16)
    y = unidrop.dropout(x, 0.3, seed=(1 << 40) + 3, stream=5, broadcast_dims=dims)
    np.testing.assert_array_equal(y, expected(x, 0.3, (1 << 40) + 3, 5, dims))


def test_no_temporary_larger_than_a_chunk_beside_the_output():
    """Peak traced allocation for a 2**25-element float32 input: the output plus a few chunks."""
    import tracemalloc

    x = np.ones(1 << 25, np.float32)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        y = unidrop.dropout(x, 0.5, seed=1)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    bound = y.nbytes + 16 * chunked.CHUNK * 8  # the output and at most 16 chunk-sized 8-byte buffers
    assert peak <= bound, f"peak {peak} bytes > {bound}"


@pytest.mark.parametrize("make", [lambda a: np.ma.masked_less(a, 0.5), np.asmatrix], ids=["masked", "matrix"])
def test_ndarray_subclasses_are_refused_rather_than_silently_changed(make):
    x = make(np.random.default_rng(0).random((4, 4)).astype(np.float32))
    with pytest.raises(TypeError, match=r"plain numpy\.ndarray, got the subclass numpy"):
        unidrop.dropout(x, 0.5, seed=1)
