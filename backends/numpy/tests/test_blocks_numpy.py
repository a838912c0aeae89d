"""Blocks of a global mask on both NumPy kernels (compiled and pure NumPy), against unidrop.reference.

Blocks that are one run starting at a global index that is not a multiple of 4 and longer than a
kernel tile, rows with short gaps, a thin column (one element per run), and broadcast axes in the
middle and last; C, Fortran, strided and reversed inputs; 16-bit dtypes; several threads and
small chunks, so that every path of both kernels is taken on arrays of a few thousand elements.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from unidrop_numpy import chunked, compiled

from unidrop import DropoutPlan, reference

try:
    import ml_dtypes
except ImportError:  # bfloat16 is optional in unidrop-numpy
    ml_dtypes = None
SEED, STREAM, P = (1 << 63) + 12345, (1 << 32) + 3, 0.4
#: (global shape, block shape, offset, broadcast_dims)
CASES = {
    "one-run-unaligned": ((40, 3, 50), (30, 3, 50), (5, 0, 0), ()),
    "rows-with-gaps": ((9, 700), (5, 690), (2, 7), ()),
    "thin-column": ((1200, 9), (1000, 1), (100, 4), ()),
    "broadcast-middle": ((6, 7, 40), (4, 5, 33), (1, 2, 3), (1,)),
    "broadcast-last": ((6, 7, 40), (4, 5, 33), (1, 2, 3), (2,)),
    # leading axes of size 1 in a global mask of 2**64 elements: their stride is 2**64 (never stepped)
    "end-of-a-2-64-mask": ((1, 2**64), (1, 5), (0, 2**64 - 5), ()),
    "unit-axis-of-2-32-by-2-32": ((1, 2**32, 2**32), (1, 2, 3), (0, 2**32 - 2, 2**32 - 3), ()),
    # a column at the very end of a 2**64-element global mask: its last index is 2**64 - 1
    "column-at-the-end-of-2-64": ((2**63, 2), (5, 1), (2**63 - 5, 1), ()),
}
DTYPES = {"float32": np.float32, "float16": np.float16, "float64": np.float64}
if ml_dtypes is not None:
    DTYPES["bfloat16"] = ml_dtypes.bfloat16


def kernels() -> list[str]:
    return ["numpy", "compiled"] if compiled.available() else ["numpy"]


def values_of(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    rng = np.random.default_rng(len(shape))
    return rng.standard_normal(shape).astype(DTYPES[dtype])


@functools.cache
def expected(case: str, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """The reference's output (float64) and keep mask of the case's block."""
    global_shape, shape, offset, dims = CASES[case]
    x = values_of(shape, dtype)
    out, keep = reference.dropout(
        x.astype(np.float64).ravel().tolist(), shape, dtype, P, SEED, STREAM, dims, global_shape, offset
    )
    mask_shape = tuple(1 if axis in dims else n for axis, n in enumerate(shape))
    return np.array(out).reshape(shape), np.array(keep, dtype=bool).reshape(mask_shape)


def run(kernel: str, x: np.ndarray, case: str, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    global_shape, shape, offset, dims = CASES[case]
    plan = DropoutPlan.build(shape, dtype, P, SEED, STREAM, dims, True, global_shape, offset)
    if kernel == "numpy":
        y, keep = chunked.dropout_array(x, plan, threads=2)
    else:
        bits = x.view(np.uint16) if dtype == "bfloat16" else x
        y, keep = compiled.dropout(bits, plan, threads=3)
        y = y.view(x.dtype)
    assert keep is not None
    return y, keep


def layouts(x: np.ndarray) -> dict[str, np.ndarray]:
    """``x`` as C, Fortran, strided (every other element of a larger array) and reversed arrays."""
    wide = np.zeros(tuple(2 * n for n in x.shape), x.dtype)
    strided = wide[tuple(slice(None, None, 2) for _ in x.shape)]
    strided[...] = x
    reversed_twice = np.ascontiguousarray(x[..., ::-1])[..., ::-1]
    return {"C": x, "F": np.asfortranarray(x), "strided": strided, "reversed": reversed_twice}


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch, small_chunks: None) -> None:
    """Small chunks (pure NumPy) and thread slices of a few hundred elements (compiled)."""
    monkeypatch.setattr(compiled, "MIN_ELEMENTS_PER_THREAD", 256)
    monkeypatch.setattr(compiled, "ALIGN", 64)


@pytest.mark.parametrize("kernel", kernels())
@pytest.mark.parametrize("case", list(CASES))
def test_blocks_match_the_reference_in_every_layout(kernel: str, case: str) -> None:
    want_y, want_keep = expected(case, "float32")
    x = values_of(CASES[case][1], "float32")
    for name, view in layouts(x).items():
        y, keep = run(kernel, view, case, "float32")
        assert np.array_equal(keep, want_keep), f"{kernel} {case} {name}: mask"
        assert np.array_equal(y.astype(np.float64), want_y), f"{kernel} {case} {name}: output"


@pytest.mark.parametrize("kernel", kernels())
@pytest.mark.parametrize("case", ["rows-with-gaps", "broadcast-middle", "thin-column"])
def test_blocks_in_small_pieces_match_the_reference(kernel: str, case: str, small_pieces: None) -> None:
    """Many chunks (each a run, a dense span or scattered) and many thread slices."""
    want_y, want_keep = expected(case, "float32")
    y, keep = run(kernel, values_of(CASES[case][1], "float32"), case, "float32")
    assert np.array_equal(keep, want_keep) and np.array_equal(y.astype(np.float64), want_y), (kernel, case)


@pytest.mark.parametrize("kernel", kernels())
@pytest.mark.parametrize("dtype", [d for d in ("float16", "bfloat16", "float64") if d in DTYPES])
def test_blocks_of_every_dtype(kernel: str, dtype: str) -> None:
    case = "broadcast-middle"
    want_y, want_keep = expected(case, dtype)
    y, keep = run(kernel, values_of(CASES[case][1], dtype), case, dtype)
    assert np.array_equal(keep, want_keep), (kernel, dtype)
    assert np.array_equal(y.astype(np.float64), want_y, equal_nan=True), (kernel, dtype)


@pytest.mark.parametrize("kernel", kernels())
def test_an_empty_block_still_has_its_broadcast_mask(kernel: str) -> None:
    """A block with no elements whose empty axis is broadcast: its (1, 4) mask is the global one's slice."""
    plan = DropoutPlan.build((0, 4), "float32", P, SEED, STREAM, (0,), True, (3, 9), (3, 5))
    y, keep = chunked.dropout_array(np.ones((0, 4), np.float32), plan)
    _, want = reference.dropout([], (0, 4), "float32", P, SEED, STREAM, (0,), (3, 9), (3, 5))
    assert y.shape == (0, 4) and keep is not None and keep.reshape(-1).tolist() == want


@pytest.mark.skipif(not compiled.available(), reason="unidrop_numpy._kernel is not built")
def test_kernel_entry_points_refuse_bad_mask_strides() -> None:
    from unidrop_numpy import _kernel

    x, y = np.ones(8, np.float32), np.empty(8, np.float32)
    with pytest.raises(ValueError, match="mask_strides must be a tuple of one non-negative int per axis"):
        _kernel.dropout(x, y, None, 2, 0, 1, 0, 5, 2.0, 0, 8, 0, None, (1, 1))
    with pytest.raises(ValueError, match="mask_strides must be a tuple"):
        _kernel.dropout(x, y, None, 2, 0, 1, 0, 5, 2.0, 0, 8, 0, None, (-1,))
    keep = np.empty((2, 3), bool)
    with pytest.raises(ValueError, match="mask_strides must be a tuple"):
        _kernel.keep_block(keep, 1, 0, 5, (3,), 0)
    with pytest.raises(ValueError, match="1-byte buffer"):
        _kernel.keep_block(np.empty(3, np.float32), 1, 0, 5, (1,), 0)
