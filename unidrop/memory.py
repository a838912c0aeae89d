"""Whether a strided array can be written in place: do two of its elements share memory?

For the backends of strided arrays (NumPy, CuPy, and NumPy's arrays under the Array API backend):
``inplace=True`` into an array whose elements share bytes (an ``as_strided`` view, a zero stride)
cannot hold dropout's result, as the library writes element after element and the last write wins.
Read from the shape, the byte strides and the item size alone: no framework is imported here,
except NumPy in the one rare case (axes that interleave) where every element's start is listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def refuse_unwritable(x: Any) -> None:
    """Raise ValueError naming ``x`` if ``inplace=True`` cannot write dropout's result into it: its
    library reports it read-only (``x.flags.writeable`` False), or two of its elements share memory
    by its byte ``strides`` and ``itemsize``. An array without these attributes is not refused."""
    if getattr(getattr(x, "flags", None), "writeable", True) is False:
        raise ValueError(
            f"inplace=True needs a writable array; this {x.dtype} array of shape {tuple(x.shape)} "
            "is read-only"
        )
    strides, itemsize = getattr(x, "strides", None), getattr(x, "itemsize", None)
    if not (isinstance(strides, tuple) and isinstance(itemsize, int)):
        return
    if overlaps_itself(x.shape, strides, itemsize):
        raise ValueError(
            f"inplace=True cannot write into this {x.dtype} array of shape {tuple(x.shape)} and strides "
            f"{strides}: some of its elements share memory, so it cannot hold the result; "
            "call without inplace=True and use the result"
        )


def overlaps_itself(shape: Sequence[int], strides: Sequence[int], itemsize: int) -> bool:
    """True if two elements of an array of ``shape``, byte ``strides`` and ``itemsize`` share a byte."""
    axes = sorted((abs(stride), size) for size, stride in zip(shape, strides, strict=True) if size > 1)
    if not axes or any(size == 0 for size in shape):
        return False
    if axes[0][0] < itemsize:  # neighbours along an axis overlap (a zero stride too)
        return True
    extent = itemsize  # bytes spanned by the axes taken so far, smallest strides first
    for stride, size in axes:
        if stride < extent:
            break
        extent += stride * (size - 1)
    else:
        return False  # each axis steps past all the smaller ones: every element has its own bytes
    return _starts_overlap(axes, itemsize)


def _starts_overlap(axes: list[tuple[int, int]], itemsize: int) -> bool:
    """Axes that interleave (``as_strided`` only): every element's first byte, in order (a temporary
    of 8 bytes per element, paid only by ``inplace=True`` into such a view)."""
    import numpy as np  # the array is a strided one: its library brought NumPy

    starts = np.zeros((), dtype=np.int64)
    for stride, size in axes:
        starts = np.add.outer(starts, np.arange(size, dtype=np.int64) * stride)
    return bool((np.diff(np.sort(starts, axis=None)) < itemsize).any())
