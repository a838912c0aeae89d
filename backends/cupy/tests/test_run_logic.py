"""The backend's request handling (:mod:`unidrop_cupy.run`) without a GPU.

NumPy stands in for CuPy's array functions and the host build of the kernels stands in for
the launches, so the decisions ``run`` makes (p == 1, empty arrays, broadcast over an empty
axis, which kernel, which layout, copies for odd strides) are checked end to end against
the reference. ``run`` imports CuPy, so this needs CuPy importable (not a GPU).
"""

from __future__ import annotations

import ctypes
import math
import types

import numpy as np
import pytest
from _host import DTYPES, _layout, _pointer, assert_bits_equal, from_storage, to_storage

from unidrop import arguments, reference

pytest.importorskip("cupy", reason="unidrop_cupy.run imports CuPy; install cupy-cuda12x or cupy-cuda13x")

from unidrop_cupy import layout, run


class HostKernels:
    """``unidrop_cupy.kernels``' launch functions, run by the host build on NumPy arrays."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.calls: list[str] = []

    @staticmethod
    def _mask(mask: np.ndarray | None) -> object:
        return None if mask is None else mask.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))

    def launch_contiguous(self, x, y, mask, dtype, rng, scale, first_block=0, blocks_per_thread=None):
        self.calls.append("contig")
        align = layout.vector_alignment(dtype, self.lib.unidrop_blocks[dtype])
        vec = int(_pointer(x) % align == 0 and _pointer(y) % align == 0)
        fn = getattr(self.lib, f"host_contig_{dtype}")
        fn(_pointer(x), _pointer(y), self._mask(mask), x.size, first_block, *rng, scale, vec)

    def launch_strided(self, x, y, mask, dims, dtype, rng, scale, mask_offset=0):
        self.calls.append("strided")
        fn = getattr(self.lib, f"host_strided_{dtype}")
        fn(_pointer(x), _pointer(y), self._mask(mask), ctypes.byref(_layout(dims)), x.size, mask_offset,
           *rng, scale, 0)  # fmt: skip


NUMPY_AS_CUPY = types.SimpleNamespace(
    zeros=np.zeros, zeros_like=np.zeros_like, empty=np.empty, empty_like=np.empty_like,
    ascontiguousarray=np.ascontiguousarray,
)  # fmt: skip


@pytest.fixture
def host_run(host_lib: ctypes.CDLL, monkeypatch: pytest.MonkeyPatch) -> HostKernels:
    fake = HostKernels(host_lib)
    monkeypatch.setattr(run, "kernels", fake)
    monkeypatch.setattr(run, "cupy", NUMPY_AS_CUPY)
    return fake


def plan_for(x: np.ndarray, dtype: str, p: float, seed: int, stream: int, bd=()) -> arguments.DropoutPlan:
    return arguments.DropoutPlan.build(tuple(x.shape), dtype, p, seed, stream, bd, return_mask=True)


def run_and_check(x: np.ndarray, dtype: str, p: float, seed: int, stream: int, bd=()) -> None:
    plan = plan_for(x, dtype, p, seed, stream, bd)
    values = from_storage(np.ascontiguousarray(x).reshape(-1), dtype).tolist()
    y, keep = run._dropout(x, plan)
    want, want_keep = reference.dropout(values, tuple(x.shape), dtype, p, seed, stream, bd)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert keep.shape == plan.mask_shape and keep.dtype == bool
    assert_bits_equal(y, want, dtype, f"run {dtype} {x.shape} {x.strides} bd={bd}")
    assert keep.reshape(-1).tolist() == list(want_keep)


def storage(values: list[float], shape: tuple[int, ...], dtype: str) -> np.ndarray:
    return to_storage([reference.round_to(v, dtype) for v in values], dtype).reshape(shape)


@pytest.mark.parametrize("dtype", DTYPES)
def test_contiguous_goes_to_the_fast_kernel(host_run: HostKernels, dtype: str) -> None:
    x = storage([i * 0.37 - 5 for i in range(90)], (9, 10), dtype)
    run_and_check(x, dtype, 0.3, 5, 6)
    assert host_run.calls == ["contig"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_and_broadcast_go_to_the_general_kernel(host_run: HostKernels, dtype: str) -> None:
    x = storage([i * 0.37 - 5 for i in range(90)], (9, 10), dtype)
    run_and_check(np.asfortranarray(x), dtype, 0.3, 5, 6)
    run_and_check(x, dtype, 0.3, 5, 6, (0,))
    run_and_check(x[::-2], dtype, 0.3, 5, 6, (1,))
    assert host_run.calls == ["strided"] * 3


def test_p_one_drops_everything_without_a_kernel(host_run: HostKernels) -> None:
    x = storage([1.0, -2.0, math.nan, math.inf], (4,), "float32")
    y, keep = run._dropout(x, plan_for(x, "float32", 1.0, 1, 0))
    assert y.view(np.uint32).tolist() == [0, 0, 0, 0] and not keep.any()
    assert host_run.calls == []


def test_empty_input_with_a_broadcast_empty_axis_still_draws_its_mask(host_run: HostKernels) -> None:
    x = np.empty((0, 6), np.float32)
    run_and_check(x, "float32", 0.5, 11, 0, (0,))
    assert host_run.calls == ["contig"]


def test_empty_input_without_mask_elements_launches_nothing(host_run: HostKernels) -> None:
    run_and_check(np.empty((3, 0), np.float32), "float32", 0.5, 11, 0)
    assert host_run.calls == []


def test_strides_that_are_not_whole_elements_are_copied_first(host_run: HostKernels) -> None:
    bits = to_storage([reference.round_to(v, "float32") for v in np.linspace(-3, 3, 16)], "float32")
    buffer = np.frombuffer(bits.tobytes(), np.uint8)
    x = np.lib.stride_tricks.as_strided(buffer.view(np.uint32), shape=(10,), strides=(6,))  # 1.5 items
    assert layout.element_strides(x.strides, x.itemsize) is None
    run_and_check(x, "float32", 0.5, 3, 4)
    assert host_run.calls == ["contig"]


# -- blocks of a global mask: the kernels take the global strides and the block's start -------


def run_block_and_check(
    x: np.ndarray, dtype: str, p: float, seed: int, stream: int, gshape, offset, bd=()
) -> None:
    """``run`` on a block ``x`` of ``gshape`` at ``offset``: output and mask from the reference."""
    plan = arguments.DropoutPlan.build(
        tuple(x.shape), dtype, p, seed, stream, bd, return_mask=True, global_shape=gshape, offset=offset
    )
    values = from_storage(np.ascontiguousarray(x).reshape(-1), dtype).tolist()
    y, keep = run._dropout(x, plan)
    want, want_keep = reference.dropout(
        values, tuple(x.shape), dtype, p, seed, stream, bd, global_shape=gshape, offset=offset
    )
    where = f"run block {dtype} {x.shape} {x.strides} of {gshape} at {offset} bd={bd}"
    assert keep.shape == plan.mask_shape, where
    assert_bits_equal(y, want, dtype, where)
    assert keep.reshape(-1).tolist() == list(want_keep), where


BLOCKS = [  # block shape, global shape, offset, broadcast_dims
    ((3, 5), (7, 9), (2, 3), ()),
    ((2, 3, 5), (4, 6, 7), (1, 2, 1), ()),
    ((3, 4, 6), (9, 4, 10), (5, 0, 3), (1,)),
    ((3, 4, 6), (9, 7, 10), (5, 2, 3), (0, 2)),
    ((5,), (13,), (7,), ()),
    ((), (), (), ()),
]


@pytest.mark.parametrize(("shape", "gshape", "offset", "bd"), BLOCKS, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_block_gets_its_slice_of_the_global_mask(
    host_run: HostKernels, dtype: str, shape, gshape, offset, bd
) -> None:
    x = storage([i * 0.29 - 7 for i in range(math.prod(shape))], shape, dtype)
    run_block_and_check(x, dtype, 0.45, 2**40 + 3, 2**33 + 1, gshape, offset, bd)
    if x.ndim >= 2:  # the same block laid out in Fortran order
        run_block_and_check(np.asfortranarray(x), dtype, 0.45, 2**40 + 3, 2**33 + 1, gshape, offset, bd)


def test_a_block_of_whole_rows_takes_the_fast_kernel_from_its_first_philox_block(
    host_run: HostKernels,
) -> None:
    """Rows 2..4 of a (9, 8) array: contiguous in the global mask, starting at index 16."""
    x = storage([i * 0.5 - 3 for i in range(24)], (3, 8), "float32")
    run_block_and_check(x, "float32", 0.3, 5, 6, (9, 8), (2, 0))
    assert host_run.calls == ["contig"]


def test_a_contiguous_block_starting_off_a_philox_block_takes_the_general_kernel(
    host_run: HostKernels,
) -> None:
    x = storage([i * 0.5 - 3 for i in range(21)], (3, 7), "float32")
    run_block_and_check(x, "float32", 0.3, 5, 6, (9, 7), (2, 0))  # starts at 14: not a multiple of 4
    assert host_run.calls == ["strided"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_blocks_of_global_masks_past_two_to_the_32(host_run: HostKernels, dtype: str) -> None:
    """Global indices past 2**32 and 2**34 in small blocks (the reference computes their words only)."""
    x = storage([i * 0.75 - 4 for i in range(15)], (3, 5), dtype)
    run_block_and_check(x, dtype, 0.5, 9, 2, (2**20, 2**13 + 3), (2**20 - 3, 2**13 - 2))
    y = storage([i * 0.75 - 4 for i in range(8)], (2, 4), dtype)
    run_block_and_check(y, dtype, 0.5, 9, 2, (3, 2**33), (1, 2**33 - 4))  # contiguous, start 3 * 2**33 - 4
    run_block_and_check(y, dtype, 0.5, 9, 2, (2**40, 4), (2**40 - 2, 0))


def test_an_empty_block_with_a_broadcast_empty_axis_still_draws_its_slice_of_the_mask(
    host_run: HostKernels,
) -> None:
    run_block_and_check(np.empty((0, 6), np.float32), "float32", 0.5, 11, 0, (4, 20), (2, 9), (0,))
    assert host_run.calls == ["strided"]
