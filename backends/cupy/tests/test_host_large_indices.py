"""The kernels' index arithmetic for arrays past 2**32 and 2**34 elements, without allocating them.

The host entry points ``host_*_range_*`` run only the GPU threads that own the last elements
of an array of n elements, with the index type the GPU kernel picks for that n. The pointers
given to them are placed so that exactly those elements are real memory (a few dozen), so
every offset, counter and mask index is the one a real array of that size would get. Expected
values come from the pure-Python reference.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from _host import DTYPES, Layout, _layout, _pointer, assert_bits_equal, from_storage, to_storage
from unidrop_cupy import layout

from unidrop import arguments, reference
from unidrop.philox import element_word

SEED, STREAM, P = 0x0123456789ABCDEF, (1 << 33) + 5, 0.4
T = arguments.threshold(P)


def _entry(lib: ctypes.CDLL, kind: str, dtype: str):  # type: ignore[no-untyped-def]
    fn = getattr(lib, f"host_{kind}_range_{dtype}")
    scale = ctypes.c_double if dtype == "float64" else ctypes.c_float
    vp, u8p, u64, u32 = ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32
    if kind == "contig":
        fn.argtypes = [vp, vp, u8p, u64, u64, u32, u32, u32, u32, u32, scale, ctypes.c_int, u64, u64]
    else:
        fn.argtypes = [
            vp,
            vp,
            u8p,
            ctypes.POINTER(Layout),
            u64,
            u64,
            u32,
            u32,
            u32,
            u32,
            u32,
            scale,
            u64,
            u64,
        ]
    fn.restype = None
    return fn


def _values(dtype: str, count: int) -> list[float]:
    return [reference.round_to(v, dtype) for v in np.linspace(-3.0, 5.0, count).tolist()]


def _kept(value: float, dtype: str, u: int) -> float:
    return reference.scaled(value, dtype, P) if u >= T else 0.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n", "m"), [((1 << 32) + 7, 63), ((1 << 34) + 13, 61)])
def test_fast_kernel_last_elements_of_a_huge_array(host_lib: ctypes.CDLL, dtype: str, n: int, m: int) -> None:
    """The contiguous kernel: element offsets and Philox blocks of the last m of n elements."""
    per_thread = 4 * host_lib.unidrop_blocks[dtype]
    first = n - m
    assert first % per_thread == 0
    values = _values(dtype, m)
    x = to_storage(values, dtype)
    y = np.zeros_like(x)
    keep = np.full(m, 2, np.uint8)
    itemsize = x.itemsize
    x_base, y_base = _pointer(x) - first * itemsize, _pointer(y) - first * itemsize
    align = layout.vector_alignment(dtype, host_lib.unidrop_blocks[dtype])
    vec = int(x_base % align == 0 and y_base % align == 0)
    rng = layout.rng_words(SEED, STREAM, T)
    groups = layout.contiguous_groups(n, dtype, host_lib.unidrop_blocks[dtype])
    _entry(host_lib, "contig", dtype)(
        x_base,
        y_base,
        _pointer(keep) - first,
        n,
        0,
        *rng,
        arguments.scale(P),
        vec,
        first // per_thread,
        groups,
    )
    words = [element_word(SEED, STREAM, i) for i in range(first, n)]
    assert_bits_equal(y, [_kept(v, dtype, u) for v, u in zip(values, words, strict=True)], dtype, f"n={n}")
    assert keep.tolist() == [int(u >= T) for u in words]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n", "m"), [((1 << 32) - 3, 61), ((1 << 34) + 13, 61)])
def test_general_kernel_reversed_huge_array(host_lib: ctypes.CDLL, dtype: str, n: int, m: int) -> None:
    """The general kernel on x[::-1]: negative 64-bit offsets, 32-bit index up to 2**32 - 1 and
    64-bit index past it, as the GPU kernel chooses."""
    first = n - m
    assert first % 4 == 0
    values = _values(dtype, m)  # logical elements first .. n-1
    x = to_storage(values[::-1], dtype)  # memory: logical element n-1 first
    y = np.zeros_like(x)
    keep = np.full(m, 2, np.uint8)
    itemsize = x.itemsize
    dims = layout.Dims(shape=(n,), xstride=(-1,), ystride=(1,), mstride=(1,))
    _entry(host_lib, "strided", dtype)(
        _pointer(x) + (n - 1) * itemsize,
        _pointer(y) - first * itemsize,
        _pointer(keep) - first,
        ctypes.byref(_layout(dims)),
        n,
        0,
        *layout.rng_words(SEED, STREAM, T),
        arguments.scale(P),
        first // 4,
        layout.strided_groups(n),
    )
    words = [element_word(SEED, STREAM, i) for i in range(first, n)]
    assert_bits_equal(y, [_kept(v, dtype, u) for v, u in zip(values, words, strict=True)], dtype, f"n={n}")
    assert keep.tolist() == [int(u >= T) for u in words]


@pytest.mark.parametrize("dtype", DTYPES)
def test_general_kernel_broadcast_mask_index_past_2_32(host_lib: ctypes.CDLL, dtype: str) -> None:
    """Shape (2**32 + 5, 3) with the last axis broadcast: mask indices (rows) cross 2**32."""
    rows, cols, m = (1 << 32) + 5, 3, 63
    n = rows * cols
    first = n - m
    first_row = first // cols
    assert first % 4 == 0 and first % cols == 0
    values = _values(dtype, m)
    x = to_storage(values, dtype)
    y = np.zeros_like(x)
    keep = np.full(rows - first_row, 2, np.uint8)
    itemsize = x.itemsize
    dims = layout.Dims(shape=(rows, cols), xstride=(cols, 1), ystride=(cols, 1), mstride=(1, 0))
    _entry(host_lib, "strided", dtype)(
        _pointer(x) - first * itemsize,
        _pointer(y) - first * itemsize,
        _pointer(keep) - first_row,
        ctypes.byref(_layout(dims)),
        n,
        0,
        *layout.rng_words(SEED, STREAM, T),
        arguments.scale(P),
        first // 4,
        layout.strided_groups(n),
    )
    row_words = [element_word(SEED, STREAM, r) for r in range(first_row, rows)]
    want = [_kept(v, dtype, row_words[k // cols]) for k, v in enumerate(values)]
    assert_bits_equal(y, want, dtype, "broadcast rows past 2**32")
    assert keep.tolist() == [int(u >= T) for u in row_words]
    assert from_storage(y, dtype).shape == (m,)
