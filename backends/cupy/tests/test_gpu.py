"""The CuPy backend on a real GPU: the conformance suite, then what only CuPy code can show.

Every test here skips, with the reason, where CuPy is missing or finds no CUDA device
(``cupy-cuda12x`` wheels import fine on a machine without a GPU; device calls then fail).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from _gpu import gpu_unavailable_reason

import unidrop
from unidrop import arguments, reference
from unidrop.conformance.adapter import SuiteAdapter
from unidrop.conformance.suite import ConformanceSuite, assert_same_floats, sample_values
from unidrop.philox import stream_words

REASON = gpu_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no GPU for the CuPy backend: {REASON}")

if REASON is None:  # CuPy imports without a GPU, but only a GPU makes the tests below mean anything
    import cupy
    import cupyx
    from unidrop_cupy import functional, kernels, layout


class TestCupyConformance(ConformanceSuite):
    """The shared conformance suite on the CuPy backend."""

    backend_name = "cupy"


DTYPES = ("float16", "bfloat16", "float32", "float64")


@functools.cache
def adapter() -> SuiteAdapter:
    """The CuPy backend's suite adapter: how these tests make and read CuPy arrays."""
    return unidrop.get_backend("cupy").suite_adapter()


def dtypes_here() -> list[str]:
    return [d for d in DTYPES if d in adapter().dtypes()]


def make(values: np.ndarray, dtype: str):
    return adapter().from_numpy(values, dtype)


def read(x) -> np.ndarray:
    return np.asarray(adapter().to_numpy(x), dtype=np.float64)


def check_view(view, values_c: np.ndarray, dtype: str, p: float, seed: int, stream: int, bd=()) -> None:
    """``view`` holds ``values_c`` (C order); its dropout and mask must equal the reference."""
    shape = tuple(view.shape)
    y, keep = unidrop.dropout(view, p, seed=seed, stream=stream, broadcast_dims=bd, return_mask=True)
    want, want_keep = reference.dropout(values_c.reshape(-1).tolist(), shape, dtype, p, seed, stream, bd)
    context = f"{dtype} shape={shape} strides={view.strides} p={p} seed={seed} stream={stream} bd={bd}"
    assert y.shape == view.shape and y.dtype == view.dtype, context
    assert_same_floats(read(y), np.array(want), context)
    assert cupy.asnumpy(keep).reshape(-1).tolist() == list(want_keep), context


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_and_broadcast_views(dtype: str) -> None:
    if dtype not in dtypes_here():
        pytest.skip(f"{dtype} is not available with this CuPy")
    base_values = sample_values((6, 7, 9), dtype, seed=3)
    base = make(base_values, dtype)
    views = {
        "fortran": (cupy.asfortranarray(base), base_values),
        "transpose": (base.transpose(2, 0, 1), base_values.transpose(2, 0, 1)),
        "reversed": (base[::-1, :, ::-2], base_values[::-1, :, ::-2]),
        "offset": (base.reshape(-1)[1:], base_values.reshape(-1)[1:]),  # unaligned: scalar loads
    }
    for name, (view, values) in views.items():
        check_view(view, np.ascontiguousarray(values), dtype, 0.3, 1 << 40, 5)
        if view.ndim == 3:
            for bd in [(0,), (2,), (0, 1)]:
                check_view(view, np.ascontiguousarray(values), dtype, 0.5, 9, 1 << 35, bd)
        assert name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 4, 5, 8, 9, 31, 4097])
def test_contiguous_lengths(dtype: str, n: int) -> None:
    if dtype not in dtypes_here():
        pytest.skip(f"{dtype} is not available with this CuPy")
    values = sample_values((n,), dtype, seed=n)
    check_view(make(values, dtype), values, dtype, 0.4, (1 << 64) - 1, (1 << 32) + 7)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_large_array_is_bit_identical_to_the_numpy_backend(dtype: str) -> None:
    np_backend = pytest.importorskip("unidrop_numpy")
    assert np_backend
    rng = np.random.default_rng(0)
    host = (rng.standard_normal(1 << 22) * 3).astype(dtype)
    want, want_keep = unidrop.dropout(host, 0.37, seed=123456789123, stream=4, return_mask=True)
    got, keep = unidrop.dropout(cupy.asarray(host), 0.37, seed=123456789123, stream=4, return_mask=True)
    assert np.array_equal(cupy.asnumpy(got).view(f"u{host.itemsize}"), want.view(f"u{host.itemsize}"))
    assert np.array_equal(cupy.asnumpy(keep), want_keep)


@pytest.mark.parametrize("dtype", DTYPES)
def test_counter_split_on_the_gpu(dtype: str) -> None:
    """Philox blocks crossing 2^32, through the fast kernel's block offset."""
    if dtype not in dtypes_here():
        pytest.skip(f"{dtype} is not available with this CuPy")
    n, first_block, seed, stream, p = 96, (1 << 32) - 9, (1 << 64) - 3, 1 << 33, 0.5
    values = sample_values((n,), dtype, seed=1)
    x = make(values, dtype)
    y = cupy.empty_like(x)
    keep = cupy.empty(n, dtype=bool)
    rng = layout.rng_words(seed, stream, arguments.threshold(p))
    kernels.launch_contiguous(x, y, keep, dtype, rng, arguments.scale(p), first_block=first_block)
    t = arguments.threshold(p)
    want_keep = [u >= t for u in stream_words(seed, stream, 4 * first_block, n)]
    pairs = zip(values.tolist(), want_keep, strict=True)
    want = [reference.scaled(v, dtype, p) if k else 0.0 for v, k in pairs]
    assert cupy.asnumpy(keep).tolist() == want_keep
    assert_same_floats(read(y), np.array(want), f"{dtype} first_block={first_block}")


def test_runs_on_the_current_stream_without_host_synchronisation() -> None:
    values = sample_values((1000, 33), "float32", seed=2)
    x = make(values, "float32")
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream, cupyx.allow_synchronize(False):
        y = unidrop.dropout(x, 0.2, seed=7, stream=1)
        y2, keep = unidrop.dropout(x.T, 0.2, seed=7, stream=1, broadcast_dims=(0,), return_mask=True)
    stream.synchronize()
    want, _ = reference.dropout(values.reshape(-1).tolist(), (1000, 33), "float32", 0.2, 7, 1)
    assert_same_floats(read(y), np.array(want), "non-default stream")
    assert y2.shape == (33, 1000) and keep.shape == (1, 1000)


def test_input_on_a_non_default_device_stays_there() -> None:
    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("needs two GPUs")
    with cupy.cuda.Device(1):
        x = cupy.ones((64,), cupy.float32)
    y, keep = unidrop.dropout(x, 0.5, seed=1, return_mask=True)
    assert y.device.id == 1 and keep.device.id == 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bd", [(), (1,), (0, 2)])
def test_backward_helpers_match_the_reference(dtype: str, bd: tuple[int, ...]) -> None:
    if dtype not in dtypes_here():
        pytest.skip(f"{dtype} is not available with this CuPy")
    shape, p, seed, stream = (4, 5, 6), 0.25, 99, 3
    gvalues = sample_values(shape, dtype, seed=4)
    g = make(gvalues, dtype)
    want, want_keep = reference.dropout(gvalues.reshape(-1).tolist(), shape, dtype, p, seed, stream, bd)
    regenerated = functional.dropout_backward(g, p, seed, stream, bd)
    assert_same_floats(read(regenerated), np.array(want), f"dropout_backward {dtype} {bd}")
    mshape = arguments.mask_shape(shape, bd)
    keep = cupy.asarray(np.array(want_keep, dtype=bool).reshape(mshape))
    applied = functional.apply_mask(cupy.asfortranarray(g), keep, p)
    assert_same_floats(read(applied), np.array(want), f"apply_mask {dtype} {bd}")


def test_apply_mask_rejects_a_mask_of_the_wrong_shape() -> None:
    g = cupy.ones((4, 5), cupy.float32)
    with pytest.raises(ValueError, match=r"\(4, 3\)"):
        functional.apply_mask(g, cupy.ones((4, 3), bool), 0.5)
    with pytest.raises(TypeError, match="boolean"):
        functional.apply_mask(g, cupy.ones((4, 5), cupy.uint8), 0.5)


def test_empty_input_with_broadcast_still_returns_its_mask() -> None:
    x = cupy.empty((0, 6), cupy.float32)
    y, keep = unidrop.dropout(x, 0.5, seed=11, broadcast_dims=(0,), return_mask=True)
    _, want_keep = reference.dropout([], (0, 6), "float32", 0.5, 11, 0, (0,))
    assert y.shape == (0, 6) and cupy.asnumpy(keep).reshape(-1).tolist() == list(want_keep)


def test_keep_fraction_within_five_sigma_on_a_large_array() -> None:
    n, p = 1 << 24, 0.3
    _, keep = unidrop.dropout(cupy.ones(n, cupy.float16), p, seed=2024, return_mask=True)
    kept = int(keep.sum())
    q = 1 - math.floor(p * 2**32) / 2**32
    assert abs(kept - n * q) <= 5 * math.sqrt(n * q * (1 - q))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_subnormal_inputs_and_products_are_not_flushed(dtype: str) -> None:
    """CuPy compiles with -ftz=true; the kernels' float32 products must not flush."""
    if dtype not in dtypes_here():
        pytest.skip(f"{dtype} is not available with this CuPy")
    tiny = [1e-40, -3e-39, 2.0**-149, -(2.0**-140), 1e-38, 5e-39, 2.0**-126, -1e-45]
    values = np.array([reference.round_to(v, dtype) for v in tiny * 4], dtype=np.float64)
    check_view(make(values, dtype), values, dtype, 0.25, 3, 0)
    check_view(make(values, dtype)[::-1], np.ascontiguousarray(values[::-1]), dtype, 0.25, 3, 0)


# -- blocks of a global mask on the GPU ------------------------------------------------------

GPU_BLOCKS = [  # block shape, global shape, offset, broadcast_dims
    ((3, 5), (7, 9), (2, 3), ()),
    ((3, 8), (9, 8), (2, 0), ()),  # whole rows, start 16: the fast kernel from block 4
    ((3, 7), (9, 7), (2, 0), ()),  # whole rows, start 14: the general kernel
    ((3, 4, 6), (9, 7, 10), (5, 2, 3), (0, 2)),
    ((3, 5), (2**20, 2**13 + 3), (2**20 - 3, 2**13 - 2), ()),  # global indices past 2**32
    ((2, 4), (3, 2**33), (1, 2**33 - 4), ()),
]


@pytest.mark.parametrize(("shape", "gshape", "offset", "bd"), GPU_BLOCKS, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_blocks_get_their_slice_of_the_global_mask(dtype: str, shape, gshape, offset, bd) -> None:
    if dtype not in dtypes_here():
        pytest.skip(f"{dtype} is not available with this CuPy")
    values = sample_values(shape, dtype, seed=5)
    p, seed, stream = 0.45, 2**40 + 3, 2**33 + 1
    want, want_keep = reference.dropout(
        values.reshape(-1).tolist(), shape, dtype, p, seed, stream, bd, global_shape=gshape, offset=offset
    )
    context = f"block {dtype} {shape} of {gshape} at {offset} bd={bd}"
    for x in (make(values, dtype), cupy.asfortranarray(make(values, dtype))):
        kw = dict(seed=seed, stream=stream, broadcast_dims=bd, global_shape=gshape, offset=offset)
        y, keep = unidrop.dropout(x, p, return_mask=True, **kw)
        assert_same_floats(read(y), np.array(want).reshape(shape), context)
        assert cupy.asnumpy(keep).reshape(-1).tolist() == list(want_keep), context
        grad = functional.dropout_backward(x, p, seed, stream, bd, global_shape=gshape, offset=offset)
        assert_same_floats(read(grad), np.array(want).reshape(shape), f"dropout_backward {context}")


def test_tiles_put_together_are_the_whole_arrays_dropout() -> None:
    values = sample_values((10, 14), "float32", seed=6)
    x = make(values, "float32")
    whole = unidrop.dropout(x, 0.5, seed=9, stream=1)
    tiles = [
        [
            unidrop.dropout(
                x[r : r + h, c : c + w], 0.5, seed=9, stream=1, global_shape=(10, 14), offset=(r, c)
            )
            for c, w in ((0, 5), (5, 9))
        ]
        for r, h in ((0, 3), (3, 7))
    ]
    assert cupy.array_equal(cupy.block(tiles), whole)
