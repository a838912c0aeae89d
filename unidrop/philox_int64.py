"""Mask-stream words computed with array operators only, on int64 arrays of any library.

A backend whose arrays have int64 arithmetic (NumPy, CuPy, PyTorch on any device) gets the
words u_i of mask stream v1 from here: every product is formed from 16-bit halves, so no
intermediate value reaches 2**63 and nothing depends on how a library wraps on overflow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from .blocks import MaskBlock, c_strides
from .philox import MASK32, PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1, ROUNDS

_LOW16 = 0xFFFF
#: Flat mask indices must stay below this: they are held in int64 arrays.
INDEX_LIMIT = 1 << 63


def _mul(a: Any, const: int) -> tuple[Any, Any]:
    """``(high, low)`` 32-bit halves of ``a * const`` for int64 ``a`` in [0, 2**32)."""
    c_hi, c_lo = const >> 16, const & _LOW16
    low_product = a * c_lo  # < 2**48
    middle = a * c_hi + (low_product >> 16)  # < 2**49
    return middle >> 16, (((middle & _LOW16) << 16) | (low_product & _LOW16)) & MASK32


def check_reach(block: MaskBlock, mask_shape: Sequence[int], limit: int, limit_text: str) -> None:
    """Raise ValueError naming the block if its mask (of ``mask_shape``) reaches global index ``limit``
    (said as ``limit_text``), past which a backend's stream words for the family would wrap."""
    last = block.last_index(mask_shape)
    if last is not None and last >= limit:
        raise ValueError(
            f"this backend computes the dropout family's stream words for mask indices below {limit_text}; "
            f"the block at offset {block.mask_offset} of the global mask {block.global_mask_shape} "
            f"reaches index {last} (gaussian_dropout's mask has two words per element: 2 * the "
            "element's index). Use the reference (unidrop.reference) for such indices"
        )


def words_at(index: Any, seed: int, stream: int, where: Callable[[Any, Any, Any], Any]) -> Any:
    """The word u_i of (``seed``, ``stream``) at every flat mask index of the int64 array ``index``.

    ``index`` holds values in [0, 2**63); ``where(cond, a, b)`` is the library's select.
    The result is an int64 array of ``index``'s shape with values in [0, 2**32).
    """
    block = index >> 2
    c0, c1 = block & MASK32, block >> 32
    c2, c3 = stream & MASK32, (stream >> 32) & MASK32
    k0, k1 = seed & MASK32, (seed >> 32) & MASK32
    for _ in range(ROUNDS):
        hi0, lo0 = _mul(c0, PHILOX_M0)
        if isinstance(c2, int):
            hi1, lo1 = (PHILOX_M1 * c2) >> 32, (PHILOX_M1 * c2) & MASK32
        else:
            hi1, lo1 = _mul(c2, PHILOX_M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = (k0 + PHILOX_W0) & MASK32, (k1 + PHILOX_W1) & MASK32
    lane = index & 3
    return where(lane == 0, c0, where(lane == 1, c1, where(lane == 2, c2, c3)))


def flat_indices(arange: Callable[[int], Any], mask_shape: tuple[int, ...], block: MaskBlock | None) -> Any:
    """The (global) flat mask index of every element of ``mask_shape``, an int64 array of that shape.

    ``arange(n)`` returns the library's int64 ``0 .. n-1`` on the wanted device. For a block,
    index j maps to ``sum((mask_offset[d] + j[d]) * global_strides[d])``; a block reaching index
    :data:`INDEX_LIMIT` raises ValueError (an int64 would wrap).
    """
    if block is None:
        return arange(math.prod(mask_shape)).reshape(mask_shape)
    strides = c_strides(block.global_mask_shape)
    check_reach(block, mask_shape, INDEX_LIMIT, "2**63")
    index: Any = 0
    ndim = len(mask_shape)
    for axis, (size, start, stride) in enumerate(zip(mask_shape, block.mask_offset, strides, strict=True)):
        shape = tuple(size if d == axis else 1 for d in range(ndim))
        index = index + ((arange(size) + int(start)) * stride).reshape(shape)
    if isinstance(index, int):  # a 0-d mask
        return arange(1).reshape(()) + index
    return index
