"""Chunked dropout over a NumPy array: no temporary larger than one chunk besides the output."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from unidrop import DropoutPlan

from .philox import PhiloxWorkspace

#: Elements of the output handled per step; every temporary is at most this long.
CHUNK = 1 << 15


def blocks(
    shape: tuple[int, ...], mshape: tuple[int, ...], chunk: int | None = None
) -> Iterator[tuple[tuple[int | slice, ...], int, int, tuple[int, ...]]]:
    """Split an array of ``shape`` into blocks of at most about ``chunk`` elements.

    Yields ``(index, mask_start, mask_count, mask_block_shape)``: ``array[index]`` is the
    block, and the flat mask indices ``mask_start .. mask_start+mask_count-1``, reshaped to
    ``mask_block_shape``, broadcast against it. Blocks cover the array once, in C order.
    """
    chunk = CHUNK if chunk is None else chunk
    ndim = len(shape)
    k, inner = ndim, 1  # axes k.. are taken whole in every block
    while k > 0 and inner * shape[k - 1] <= chunk:
        k -= 1
        inner *= shape[k]
    if k == 0:
        yield (), 0, math.prod(mshape), mshape
        return
    split = k - 1
    ranges = math.ceil(shape[split] / max(1, chunk // inner))
    rows = math.ceil(shape[split] / ranges)
    mask_inner = math.prod(mshape[k:])
    for outer in np.ndindex(*shape[:split]):
        mask_outer = tuple(0 if mshape[a] == 1 else i for a, i in enumerate(outer))
        base = int(np.ravel_multi_index(mask_outer, mshape[:split])) if split else 0
        base *= mshape[split] * mask_inner
        for a in range(0, shape[split], rows):
            b = min(a + rows, shape[split])
            mrows = 1 if mshape[split] == 1 else b - a
            mstart = base if mshape[split] == 1 else base + a * mask_inner
            yield (*outer, slice(a, b)), mstart, mrows * mask_inner, (mrows, *mshape[k:])


def dropout_array(x: np.ndarray, plan: DropoutPlan) -> tuple[np.ndarray, np.ndarray | None]:
    """``(y, keep)`` for one validated plan; ``keep`` is None unless ``plan.return_mask``."""
    keep_all = np.empty(plan.mask_shape, dtype=bool) if plan.return_mask else None
    y = np.zeros_like(x)  # dropped elements are +0; kept ones are written below
    if x.size == 0 or plan.drops_all:
        if keep_all is not None:
            keep_all[...] = False
        return y, keep_all
    compute = np.dtype(plan.compute_dtype)
    s = compute.type(plan.scale)
    t = plan.threshold
    workspace = PhiloxWorkspace(CHUNK // 4 + 2)
    xv, yv = (x.reshape(1), y.reshape(1)) if x.ndim == 0 else (x, y)
    mshape = plan.mask_shape or (1,)
    flat_keep = keep_all.reshape(-1) if keep_all is not None else None
    for index, mstart, mcount, mblock in blocks(xv.shape, mshape):
        keep = workspace.words(plan.seed, plan.stream, mstart, mcount) >= np.uint32(t)
        if flat_keep is not None:
            flat_keep[mstart : mstart + mcount] = keep
        keep = keep.reshape(mblock)
        product = np.multiply(xv[index], s, dtype=compute)
        np.copyto(yv[index], product, where=keep, casting="same_kind")
    return y, keep_all
