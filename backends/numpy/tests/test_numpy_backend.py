"""NumPy-specific behaviour of the NumPy backend, beyond the shared conformance suite."""

from __future__ import annotations

import dataclasses
import re
import warnings

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


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [">f2", ">f4", ">f8", "<f2", "<f4", "<f8"])
def test_either_byte_order_gives_the_reference_result_in_the_input_dtype(dtype, order):
    """Big- and little-endian arrays alike: the same values as their native copy, the input's own
    dtype (byte order included, as ``numpy.empty_like`` keeps it), in place too."""
    x = np.asarray(np.random.default_rng(1).standard_normal((5, 9)), dtype=dtype, order=order)
    want = expected(x, 0.3, 4, 2)
    y, keep = unidrop.dropout(x, 0.3, seed=4, stream=2, return_mask=True)
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(keep, want != 0)
    written = x.copy(order="K")
    assert unidrop.dropout(written, 0.3, seed=4, stream=2, inplace=True) is written
    np.testing.assert_array_equal(written, want)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: unidrop.dropout(x, 0.5, seed=1),
        lambda x: unidrop.alpha_dropout(x, 0.5, seed=1),
        lambda x: unidrop.gaussian_dropout(x, 0.5, seed=1),
        lambda x: unidrop.drop_path(x, 0.5, seed=1),
        lambda x: unidrop.dropout_backward_from_mask(
            x, unidrop.dropout(x, 0.5, seed=1, return_mask=True)[1], 0.5
        ),
    ],
    ids=["dropout", "alpha_dropout", "gaussian_dropout", "drop_path", "dropout_backward_from_mask"],
)
def test_fortran_input_keeps_its_memory_order(call):
    """Every function of the family lays its result out as its input, as numpy.md says, and gives the
    values of the C-ordered copy."""
    base = np.arange(1, 5 * 7 * 3 + 1, dtype=np.float64).reshape(5, 7, 3)
    fortran = np.asfortranarray(base)
    y = call(fortran)
    assert y.flags.f_contiguous and not y.flags.c_contiguous
    np.testing.assert_array_equal(y, call(base))
    assert call(base).flags.c_contiguous


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


@pytest.mark.parametrize(
    "function",
    [
        lambda x: unidrop.alpha_dropout(x, 0.3, seed=4),
        lambda x: unidrop.gaussian_dropout(x, 0.3, seed=4),
        lambda x: unidrop.dropout_backward_from_mask(x, np.array(True), 0.3),
        lambda x: unidrop.dropout_backward(x, 0.3, seed=4),
    ],
    ids=["alpha", "gaussian", "backward_from_mask", "backward"],
)
def test_the_family_gives_a_scalar_for_a_scalar_and_a_0d_array_for_a_0d_array(function):
    """As dropout does: NumPy's arithmetic on 0-d arrays gives scalars, and its where 0-d arrays."""
    value = np.float32(3.0)
    scalar, array = function(value), function(np.array(value))
    assert type(scalar) is np.float32, type(scalar)
    assert type(array) is np.ndarray and array.shape == () and array.dtype == np.float32, type(array)
    assert scalar == array[()]


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


@pytest.mark.parametrize(
    ("make", "hint"),
    [
        (lambda a: np.ma.masked_less(a, 0.5), r"\(its mask\).*x\.filled\(value\)"),
        (lambda a: np.ma.asarray(a), r"\(its mask\).*numpy\.ma\.getdata\(x\)"),  # nothing masked
        (np.asmatrix, r"\(the matrix rules\).*numpy\.asarray\(x\)"),
        (lambda a: a.view(Tagged), r"\(what the subclass adds\).*numpy\.asarray\(x\)"),
    ],
    ids=["masked", "masked-nothing-masked", "matrix", "other-subclass"],
)
@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_ndarray_subclasses_are_refused_rather_than_silently_changed(make, hint):
    x = make(np.random.default_rng(0).random((4, 4)).astype(np.float32))
    kind = f"{type(x).__module__}.{type(x).__qualname__}"
    for call in (
        lambda: unidrop.dropout(x, 0.5, seed=1),
        lambda: unidrop.dropout(x, 0.5, seed=1, training=False),  # refused in evaluation too
        lambda: unidrop.dropout(x, 0.0, seed=1),
        lambda: unidrop.alpha_dropout(x, 0.5, seed=1),
    ):
        with pytest.raises(TypeError, match=rf"got the subclass {re.escape(kind)}, whose meaning {hint}"):
            call()


class Tagged(np.ndarray):
    """A user's ndarray subclass: its meaning is unknown to the backend."""


class MyMemmap(np.memmap):
    """A subclass of memmap is still a file's plain data."""


@pytest.mark.parametrize("mode", ["w+", "r", "r+", "c"])
@pytest.mark.parametrize(
    ("order", "view"),
    [("C", lambda m: m), ("F", lambda m: m), ("C", lambda m: m[::-2, 1:]), ("C", lambda m: m[3])],
    ids=["whole", "fortran", "strided", "row"],
)
def test_memmaps_are_taken_and_give_a_plain_array(tmp_path, mode, order, view):
    path = tmp_path / "x.bin"
    values = np.random.default_rng(8).standard_normal((6, 5)).astype(np.float32)
    values.reshape(-1)[:3] = [np.nan, np.inf, -0.0]
    if mode == "w+":  # a new file, written through the memmap
        whole = np.memmap(path, np.float32, "w+", shape=(6, 5), order=order)
        whole[...] = values
        whole.flush()
    else:
        (values if order == "C" else values.T).tofile(path)  # tofile writes C order
        whole = np.memmap(path, np.float32, mode, shape=(6, 5), order=order)
    mm = view(whole)
    assert isinstance(mm, np.memmap)
    y, keep = unidrop.dropout(mm, 0.3, seed=4, stream=2, return_mask=True)
    assert type(y) is np.ndarray and type(keep) is np.ndarray
    want = expected(np.asarray(mm), 0.3, 4, 2)
    assert y.view(np.uint32).tolist() == want.astype(np.float32).view(np.uint32).tolist()
    stored = np.fromfile(path, np.float32).reshape((6, 5) if order == "C" else (5, 6))
    stored = stored if order == "C" else stored.T
    assert stored.view(np.uint32).tolist() == values.view(np.uint32).tolist()  # the file is untouched


def test_memmap_subclass_and_zero_d_memmap(tmp_path):
    path = tmp_path / "x.bin"
    np.arange(1, 9, dtype=np.float64).tofile(path)
    mm = MyMemmap(path, np.float64, "r", shape=(8,))
    y = unidrop.dropout(mm, 0.5, seed=2)
    assert type(y) is np.ndarray
    np.testing.assert_array_equal(y, expected(np.asarray(mm), 0.5, 2))
    scalar = np.memmap(path, np.float64, "r", shape=())
    y0 = unidrop.dropout(scalar, 0.5, seed=2)
    assert type(y0) is np.ndarray and y0.shape == ()
    np.testing.assert_array_equal(y0, expected(np.asarray(scalar), 0.5, 2))


@pytest.mark.parametrize(
    ("dtype", "snan"), [(np.float16, 0x7C01), (np.float32, 0x7F800001), (np.float64, 0x7FF0000000000001)]
)
def test_signalling_nan_and_overflow_give_no_warning(dtype, snan):
    """Both results are defined by the spec (NaN stays NaN, x * s may round to inf): no warning."""
    bits = np.full(16, snan, f"u{np.dtype(dtype).itemsize}")
    x = bits.view(dtype).copy()
    x[:4] = np.finfo(dtype).max
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, keep = unidrop.dropout(x, 0.5, seed=3, return_mask=True)
    assert np.isnan(y[4:][keep[4:]]).all() and (y[4:][~keep[4:]] == 0).all()
    assert np.isinf(y[:4][keep[:4]]).all() and keep[:4].any() and not keep[4:].all()


@pytest.mark.parametrize("kernel", ["compiled", "numpy"])
def test_kept_bfloat16_nans_keep_sign_and_payload_on_both_kernels(kernel):
    """A kept NaN is the input's bits made quiet (0x0040); ml_dtypes' cast once made them canonical."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bits = np.array([0x7FC0, 0xFFC0, 0x7F81, 0xFF85, 0x7FFF] * 40, dtype=np.uint16)
    x = bits.view(ml_dtypes.bfloat16)
    plan = unidrop.DropoutPlan.build(x.shape, "bfloat16", 0.3, 4, 0, ())
    plan = dataclasses.replace(plan, return_mask=True)
    if kernel == "compiled":
        compiled = pytest.importorskip("unidrop_numpy.compiled")
        if not compiled.available():
            pytest.skip("the compiled kernel is not built")
        y, keep = compiled.dropout(x, plan, 1)
    else:
        y, keep = chunked.dropout_array(x, plan)
    got = y.view(np.uint16)
    assert 0 < keep.sum() < keep.size
    assert np.array_equal(got[keep], bits[keep] | 0x0040)
    assert not got[~keep].any()


@pytest.mark.parametrize(
    "call",
    [
        lambda x: unidrop.alpha_dropout(x, 0.5, seed=3),
        lambda x: unidrop.gaussian_dropout(x, 0.5, seed=3),
        lambda x: unidrop.dropout_backward_from_mask(
            x, unidrop.dropout(x, 0.5, seed=3, return_mask=True)[1], 0.5
        ),
    ],
    ids=["alpha_dropout", "gaussian_dropout", "dropout_backward_from_mask"],
)
def test_the_family_is_as_silent_as_dropout_under_seterr_raise(call):
    """Overflow to inf and NaN inputs give IEEE's results silently, as dropout's kernel does, even
    where np.seterr asks NumPy to raise; the caller's setting is left as it was."""
    x = np.array([3e38, 1.0, np.inf, np.nan, -3e38, 2.0, -np.inf, 0.5], np.float32)
    with np.errstate(all="raise"):
        unidrop.dropout(x, 0.5, seed=3)
        y = call(x)
        assert np.geterr()["over"] == "raise"
    assert y.shape == x.shape
