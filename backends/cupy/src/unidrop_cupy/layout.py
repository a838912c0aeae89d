"""How one dropout request maps onto the CUDA kernels: which kernel, which layout, which scalars.

Pure Python on shapes, strides and pointers: the GPU backend and the host-compiled tests
use the same decisions, so the tests check the launch arithmetic along with the kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from unidrop.blocks import MaskBlock
from unidrop.philox import MASK32

from .source import BLOCKS_PER_THREAD, MAX_DIMS, THREADS_PER_BLOCK

#: Largest grid the kernels are launched with (grid-stride loops cover the rest).
MAX_GRID = (1 << 31) - 1


@dataclass(frozen=True)
class Dims:
    """A collapsed layout: sizes and element strides of x, y and the mask, C order.

    ``pstride``: the strides of the stream index (the global mask's strides for a block of a
    global mask); None means ``mstride`` (a whole array: the stream index is the mask index).
    """

    shape: tuple[int, ...]
    xstride: tuple[int, ...]
    ystride: tuple[int, ...]
    mstride: tuple[int, ...]
    pstride: tuple[int, ...] | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def stream_stride(self) -> tuple[int, ...]:
        """The stream index's strides: ``pstride``, or ``mstride`` when that is None."""
        return self.mstride if self.pstride is None else self.pstride

    @property
    def is_contiguous_unbroadcast(self) -> bool:
        """True when x, y, the mask and the stream index share one flat index: the fast kernel
        applies (with the block's start as its first block)."""
        return self.ndim == 0 or (
            self.ndim == 1 and self.xstride == self.ystride == self.mstride == self.stream_stride == (1,)
        )

    def struct_values(self) -> tuple[int, list[int], list[int], list[int], list[int], list[int]]:
        """``ud_layout``'s fields (ndim, shape, xstride, ystride, mstride, pstride), padded to MAX_DIMS."""
        pad = [0] * (MAX_DIMS - self.ndim)
        shape = list(self.shape) + [1] * (MAX_DIMS - self.ndim)
        return (
            self.ndim,
            shape,
            list(self.xstride) + pad,
            list(self.ystride) + pad,
            list(self.mstride) + pad,
            list(self.stream_stride) + pad,
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
    pstride: tuple[int, ...] | None = None,
) -> Dims:
    """Drop size-1 axes and merge neighbours that x, y, the mask and the stream index all
    traverse as one axis (``pstride`` None: the stream index is the mask index).

    The C-order traversal (and so every element's mask and stream index) is unchanged.
    """
    merged: list[list[int]] = []
    strides = mstride if pstride is None else pstride
    for size, xs, ys, ms, ps in zip(shape, xstride, ystride, mstride, strides, strict=True):
        if size == 1:
            continue
        if merged:
            outer = merged[-1]
            if outer[1:] == [xs * size, ys * size, ms * size, ps * size]:
                outer[0] *= size
                outer[1:] = [xs, ys, ms, ps]
                continue
        merged.append([size, xs, ys, ms, ps])
    return Dims(
        shape=tuple(d[0] for d in merged),
        xstride=tuple(d[1] for d in merged),
        ystride=tuple(d[2] for d in merged),
        mstride=tuple(d[3] for d in merged),
        pstride=None if pstride is None else tuple(d[4] for d in merged),
    )


def stream_placement(
    mask_shape: tuple[int, ...], block: MaskBlock | None
) -> tuple[tuple[int, ...] | None, int]:
    """``(pstride, mask_offset)``: where the mask's elements lie in the stream.

    ``(None, 0)`` for a whole array; for a block of a global mask, the global mask's strides
    (0 on the block's size-1 axes, whose coordinate is always 0) and the global flat index of
    the block's first mask element.
    """
    if block is None:
        return None, 0
    return block.steps(mask_shape), int(block.start())


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
