"""Dropout on one CuPy array for one validated plan: pick the kernel, allocate, launch.

Imported only once a CuPy array arrives. Allocations come from CuPy's memory pool and the
kernels run on the current stream: no host synchronisation anywhere.
"""

from __future__ import annotations

import math
from typing import Any

import cupy

from unidrop import DropoutPlan

from . import kernels, layout


def dropout_array(x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
    """``(y, keep)`` for ``x`` on its own device; ``keep`` is None unless ``plan.return_mask``."""
    with x.device:
        return _dropout(x, plan)


def _dropout(x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
    mshape = plan.mask_shape
    mask_size = math.prod(mshape)
    if plan.drops_all:
        keep = cupy.zeros(mshape, dtype=bool) if plan.return_mask else None
        return cupy.zeros_like(x), keep
    rng = layout.rng_words(plan.seed, plan.stream, plan.threshold)
    # a block of a global mask: its elements' stream indices follow the global mask's strides
    pstride, start = layout.stream_placement(mshape, plan.block)
    keep = cupy.empty(mshape, dtype=bool) if plan.return_mask else None
    y = cupy.empty_like(x)
    if x.size == 0:
        if keep is not None and mask_size:  # broadcast over an empty axis: the mask still exists
            scratch = cupy.zeros(mshape, dtype=x.dtype)
            _launch(scratch, cupy.empty_like(scratch), keep, mshape, pstride, start, plan, rng)
        return y, keep
    return _launch(x, y, keep, mshape, pstride, start, plan, rng), keep


def _launch(
    x: Any,
    y: Any,
    keep: Any | None,
    mshape: tuple[int, ...],
    pstride: tuple[int, ...] | None,
    start: int,
    plan: DropoutPlan,
    rng: tuple[int, ...],
) -> Any:
    """One kernel launch writing ``y`` (and ``keep``) for ``x``; returns ``y`` (a new one if
    ``x`` had to be copied first)."""
    dims = _dims(x, y, mshape, pstride)
    if dims is None:  # strides that are not whole elements, or too many axes: work on a copy
        x = cupy.ascontiguousarray(x)
        y = cupy.empty_like(x)
        dims = _dims(x, y, mshape, pstride)
        if dims is None:
            raise NotImplementedError(
                f"unidrop's CuPy kernels take at most {layout.MAX_DIMS} axes after merging neighbours; "
                f"shape {plan.shape} with broadcast_dims {plan.broadcast_dims} alternates more often"
            )
    if dims.is_contiguous_unbroadcast and start % 4 == 0:
        kernels.launch_contiguous(x, y, keep, plan.dtype, rng, plan.scale, first_block=start // 4)
    else:
        kernels.launch_strided(x, y, keep, dims, plan.dtype, rng, plan.scale, mask_offset=start)
    return y


def _dims(x: Any, y: Any, mshape: tuple[int, ...], pstride: tuple[int, ...] | None) -> layout.Dims | None:
    xs = layout.element_strides(tuple(x.strides), x.itemsize)
    ys = layout.element_strides(tuple(y.strides), y.itemsize)
    if xs is None or ys is None:
        return None
    dims = layout.collapse(tuple(x.shape), xs, ys, layout.mask_strides(mshape), pstride)
    return dims if dims.ndim <= layout.MAX_DIMS else None
