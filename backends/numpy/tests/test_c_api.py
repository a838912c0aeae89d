"""The compiled kernel's C entry point (the capsule ``_kernel._C_API``, unidrop/cpu_kernel_api.h),
called here through ctypes as another extension (unidrop-jax's XLA FFI handler) calls it.
Expected values come from unidrop.reference."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from unidrop_numpy import compiled

from unidrop import arguments, reference

pytestmark = pytest.mark.skipif(not compiled.available(), reason="the compiled kernel is not built")

NAME = b"unidrop_numpy._kernel._C_API"
DROPOUT = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_int,  # kind
    ctypes.c_void_p,  # x
    ctypes.c_void_p,  # y
    ctypes.c_int,  # ndim
    ctypes.POINTER(ctypes.c_int64),  # shape
    ctypes.c_uint64,  # broadcast bits
    ctypes.c_uint64,  # seed
    ctypes.c_uint64,  # stream
    ctypes.c_uint32,  # threshold
    ctypes.c_double,  # scale
    ctypes.c_uint64,  # start
    ctypes.c_uint64,  # stop
)


class Api(ctypes.Structure):
    _fields_ = [("version", ctypes.c_int), ("dropout", DROPOUT)]


def api() -> Api:
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return Api.from_address(get(compiled._kernel._C_API, NAME))


def call(
    x: np.ndarray, y: np.ndarray, kind: int, broadcast: int, p: float, seed: int, stream: int, start, stop
):
    """The C entry point on x into y (C-contiguous), elements start .. stop-1; its return value."""
    shape = (ctypes.c_int64 * max(x.ndim, 1))(*x.shape)
    rng = (seed, stream, arguments.threshold(p), arguments.scale(p))
    return api().dropout(kind, x.ctypes.data, y.ctypes.data, x.ndim, shape, broadcast, *rng, start, stop)


def test_the_capsule_is_version_1():
    assert api().version == 1


@pytest.mark.parametrize(("shape", "dims"), [((37,), ()), ((6, 10), (0,)), ((3, 4, 5), (2,)), ((), ())])
def test_slices_of_the_output_are_the_reference(shape, dims):
    values = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    y = np.full(shape, np.float32(7.0))
    n = values.size
    bits = sum(1 << d for d in dims)
    for start, stop in [(0, n // 2), (n // 2, n)]:  # two calls, as two threads would make them
        assert call(values, y, 2, bits, 0.3, 2**40 + 3, 5, start, stop) == 0
    want, _ = reference.dropout(values.reshape(-1).tolist(), shape, "float32", 0.3, 2**40 + 3, 5, dims)
    assert np.array_equal(y.reshape(-1), np.array(want, np.float32))


def test_bad_calls_write_nothing_and_return_minus_one():
    x = np.ones(8, np.float32)
    y = np.zeros(8, np.float32)
    assert call(x, y, 4, 0, 0.5, 1, 0, 0, 8) == -1  # no such kind
    assert call(x, y, 2, 0, 0.5, 1, 0, 4, 2) == -1  # start > stop
    assert call(x, y, 2, 0, 0.5, 1, 0, 0, 9) == -1  # past the end
    assert not y.any()


@pytest.mark.parametrize("shape", [(4, 2**61, 4), (2**32, 2**32 + 1), (2**62, 2**62)])
def test_a_shape_no_buffer_can_have_is_refused_not_wrapped(shape):
    """Its byte count exceeds what a buffer can hold (the element count wrapped, or the strides
    overflowed): -1, nothing read or written, whatever start and stop say."""
    x = np.ones(8, np.float32)
    y = np.zeros(8, np.float32)
    dims = (ctypes.c_int64 * len(shape))(*shape)
    assert api().dropout(2, x.ctypes.data, y.ctypes.data, len(shape), dims, 0, 1, 0, 2**31, 2.0, 0, 8) == -1
    assert not y.any()
