"""How one dropout request maps onto the CUDA kernels: which kernel, which layout, which scalars.

Pure Python on shapes, strides and pointers: the GPU backend and the host-compiled tests
use the same decisions, so the tests check the launch arithmetic along with the kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from unidrop.philox import MASK32

from .source import BLOCKS_PER_THREAD, MAX_DIMS, THREADS_PER_BLOCK

#: Largest grid the kernels are launched with (grid-stride loops cover the rest).
MAX_GRID = (1 << 31) - 1


@dataclass(frozen=True)
class Dims:
    """A collapsed layout: sizes and element strides of x, y and the mask, C order."""

    shape: tuple[int, ...]
    xstride: tuple[int, ...]
    ystride: tuple[int, ...]
    mstride: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_contiguous_unbroadcast(self) -> bool:
        """True when x, y and the mask share one flat index: the fast kernel applies."""
        return self.ndim == 0 or (self.ndim == 1 and self.xstride == self.ystride == self.mstride == (1,))

    def struct_values(self) -> tuple[int, list[int], list[int], list[int], list[int]]:
        """``ud_layout``'s fields (ndim, shape, xstride, ystride, mstride), padded to MAX_DIMS."""
        pad = [0] * (MAX_DIMS - self.ndim)
        shape = list(self.shape) + [1] * (MAX_DIMS - self.ndim)
        return (
            self.ndim,
            shape,
            list(self.xstride) + pad,
            list(self.ystride) + pad,
            list(self.mstride) + pad,
        )


def mask_strides(mask_shape: tuple[int, ...]) -> tuple[int, ...]:
    """C-order element strides of the mask, 0 on its size-1 (broadcast) axes."""
    strides = []
    step = 1
    for size in reversed(mask_shape):
        strides.append(step if size != 1 else 0)
        step *= size
    return tuple(reversed(strides))


def element_strides(byte_strides: tuple[int, ...], itemsize: int) -> tuple[int, ...] | None:
    """Byte strides in elements, or None if one is not a multiple of the item size."""
    if any(s % itemsize for s in byte_strides):
        return None
    return tuple(s // itemsize for s in byte_strides)


def collapse(
    shape: tuple[int, ...],
    xstride: tuple[int, ...],
    ystride: tuple[int, ...],
    mstride: tuple[int, ...],
) -> Dims:
    """Drop size-1 axes and merge neighbours that x, y and the mask all traverse as one axis.

    The C-order traversal (and so every element's mask index) is unchanged.
    """
    merged: list[list[int]] = []
    for size, xs, ys, ms in zip(shape, xstride, ystride, mstride, strict=True):
        if size == 1:
            continue
        if merged:
            outer = merged[-1]
            if outer[1] == xs * size and outer[2] == ys * size and outer[3] == ms * size:
                outer[0] *= size
                outer[1:] = [xs, ys, ms]
                continue
        merged.append([size, xs, ys, ms])
    return Dims(
        shape=tuple(d[0] for d in merged),
        xstride=tuple(d[1] for d in merged),
        ystride=tuple(d[2] for d in merged),
        mstride=tuple(d[3] for d in merged),
    )


def rng_words(seed: int, stream: int, threshold: int) -> tuple[int, int, int, int, int]:
    """(k0, k1, s0, s1, t): the key and stream words and the threshold, as the kernels take them."""
    if not 0 <= threshold <= MASK32:
        raise ValueError(f"threshold {threshold} needs p < 1 (p == 1 is handled without a kernel)")
    return seed & MASK32, seed >> 32, stream & MASK32, stream >> 32, threshold


def vector_alignment(dtype: str, blocks_per_thread: int | None = None) -> int:
    """The pointer alignment the fast path's vector accesses need: the bytes of a thread's
    group of elements, at most 16."""
    blocks = BLOCKS_PER_THREAD[dtype] if blocks_per_thread is None else blocks_per_thread
    itemsize = 8 if dtype == "float64" else 4 if dtype == "float32" else 2
    return min(16, 4 * blocks * itemsize)


def contiguous_groups(n: int, dtype: str, blocks_per_thread: int | None = None) -> int:
    """Threads the fast kernel needs for ``n`` elements (one per group of Philox blocks)."""
    blocks = BLOCKS_PER_THREAD[dtype] if blocks_per_thread is None else blocks_per_thread
    return -(-n // (4 * blocks))


def strided_groups(n: int) -> int:
    """Threads the general kernel needs for ``n`` elements (four logical elements each)."""
    return -(-n // 4)


def grid_for(threads: int) -> int:
    """CUDA blocks for ``threads`` threads of work (at least 1)."""
    return max(1, min(MAX_GRID, math.ceil(threads / THREADS_PER_BLOCK)))
