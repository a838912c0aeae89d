"""The keep mask of mask stream v1 over a mask shape, computed with every Philox word used.

Layout. The mask shape M is split into rows (the leading axes R) and a row length C (the
product of the trailing axes). Each row's flat indices ``r*C .. r*C+C-1`` fall in Philox
blocks ``floor(r*C/4) ..``; the words of ``K`` consecutive blocks are computed for every
row, over the array shape ``R + (K,)``, from iotas of the row and block coordinates. So

* each Philox call serves four mask elements (all four words are used);
* every index is computed from the global position of the element, never from a position
  in memory or on a device: a sharded array's partitions each compute their own rows and
  blocks, with no communication, as long as the last axis is not split into pieces whose
  length is not a multiple of 4;
* when ``C % 4 == 0`` rows start on block boundaries and ``K = C/4``; otherwise
  ``K = (C+2)//4 + 1`` and each row picks its C words at offset ``r*C mod 4``.

The four keep bits of a block are packed into one byte before being spread back out to the
elements. XLA would otherwise fuse the Philox computation into that (4x reusing) consumer and
recompute each block once per element; :data:`MATERIALIZE` prevents it (see
:func:`divide_by_runtime_one`).

Shape-polymorphic export (``jax.export`` with ``symbolic_shape``) is supported where only the mask
shape's first axis is symbolic: its rows are then counted with 64-bit indices.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

from unidrop.blocks import c_strides
from unidrop.philox import MASK32

from . import philox_lax
from .explicit import MeshAxes, iota, zeros
from .philox_lax import MULHI_FORMULATIONS, philox4x32

#: Trailing axes are merged into the row while the row length is not a multiple of 4 and
#: shorter than this, to keep the words computed per row close to the words used.
MERGE_BELOW = 64

#: Masks with more elements than this need 64-bit flat indices (two uint32 words).
NARROW_LIMIT = 1 << 32

#: Axes longer than this are counted by two iotas (see :func:`iota64`); tests lower it.
IOTA32_LIMIT = 1 << 32
#: The inner (low) part of such a split axis has ``2**SPLIT_BITS`` elements.
SPLIT_BITS = 16


def divide_by_runtime_one(dtype: Any) -> Callable[[Any], Any]:
    """A function returning ``packed`` unchanged, passed through a division by a 1 the compiler cannot fold.

    XLA's fusion passes do not fuse an *expensive* operation into a consumer that reads each
    of its elements several times, so with a division as the last step the packed bits are
    written once and the Philox words are computed once per block. Which divisions count as
    expensive differs: XLA:GPU calls float32 and float16 divisions cheap, but not bfloat16
    or integer ones; XLA:CPU calls every float division and every integer division by a
    non-constant expensive. The 1 is ``(f - f) + 1`` for floats (``f - f`` is not folded to 0
    for floats, because of NaN and Inf; it is 0 here, as ``f`` is a small integer, 0..15, exact
    in bfloat16) and ``(v >> 7) + 1`` for uint8 (``v - v`` would be folded). The division is
    elementwise, so sharded arrays stay free of communication. (``lax.optimization_barrier``
    does not do this job: XLA:CPU removes it before fusion.)
    """

    def materialize(packed: Any) -> Any:
        value = packed.astype(dtype)
        if jnp.issubdtype(dtype, jnp.integer):  # value >> (bits - 1) is 0 for 0..15; XLA cannot know
            one = (value >> np.array(8 * jnp.dtype(dtype).itemsize - 1, dtype)) + jnp.ones((), dtype)
            return (value // one).astype(packed.dtype)
        one = (value - value) + jnp.ones((), dtype)
        return (value / one).astype(packed.dtype)

    return materialize


MATERIALIZERS: dict[str, Callable[[Any], Any]] = {
    "bf16div": divide_by_runtime_one(jnp.bfloat16),
    "fdiv": divide_by_runtime_one(jnp.float32),
    "idiv": divide_by_runtime_one(jnp.uint8),
    "barrier": lax.optimization_barrier,
    "none": lambda packed: packed,
}

#: How the packed keep bits are kept from being fused into their consumer (read at trace
#: time; ``UNIDROP_JAX_MATERIALIZE`` at import). The uint8 division is the default: it counts
#: as expensive on every XLA backend, and writes one byte per block. Benchmarks compare the
#: choices.
MATERIALIZE = os.environ.get("UNIDROP_JAX_MATERIALIZE", "idiv")
if MATERIALIZE not in MATERIALIZERS:
    raise ImportError(f"UNIDROP_JAX_MATERIALIZE must be one of {sorted(MATERIALIZERS)}, got {MATERIALIZE!r}")


def split_rows(mask_shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """``(R, C)``: the leading axes and the merged length of the trailing ones (C >= 1)."""
    if not mask_shape:
        return (), 1
    k = len(mask_shape) - 1
    length = mask_shape[k]
    while k > 0 and length % 4 and length < MERGE_BELOW:
        k -= 1
        length *= mask_shape[k]
    return tuple(mask_shape[:k]), length


def blocks_per_row(length: int) -> int:
    """K: the number of consecutive Philox blocks that cover any row of ``length`` elements."""
    return length // 4 if length % 4 == 0 else (length + 2) // 4 + 1


# -- 64-bit arithmetic on (low, high) uint32 pairs ----------------------------------------
def mul_const64(a: tuple[Any, Any], const: int) -> tuple[Any, Any]:
    """``a * const`` modulo 2**64, for a (low, high) uint32 pair ``a`` and a Python int ``const``."""
    c_lo, c_hi = np.uint32(const & MASK32), np.uint32((const >> 32) & MASK32)
    low = a[0] * c_lo
    high = MULHI_FORMULATIONS[philox_lax.MULHI](a[0], const & MASK32) + a[0] * c_hi + a[1] * c_lo
    return low, high


def add64(a: tuple[Any, Any], b: tuple[Any, Any]) -> tuple[Any, Any]:
    """``a + b`` modulo 2**64 for (low, high) uint32 pairs."""
    low = a[0] + b[0]
    carry = (low < a[0]).astype(jnp.uint32)
    return low, a[1] + b[1] + carry


def shr64(a: tuple[Any, Any], bits: int) -> tuple[Any, Any]:
    """``a >> bits`` for a (low, high) uint32 pair and 0 < bits < 32."""
    low = (a[0] >> np.uint32(bits)) | (a[1] << np.uint32(32 - bits))
    return low, a[1] >> np.uint32(bits)


def iota64(shape: tuple[int, ...], axis: int, axes: MeshAxes | None = None) -> tuple[Any, Any]:
    """The index along ``axis`` at every position of ``shape``, as (low, high) uint32 words.

    Exact for axes of any length below 2**48: an axis longer than :data:`IOTA32_LIMIT` is
    counted as ``outer * 2**SPLIT_BITS + inner`` by two uint32 iotas over a padded, split
    axis (no 64-bit types), then reshaped and sliced back to ``shape``. (A uint32 iota over
    an axis of 2**32 or more elements wraps: element ``2**32 + k`` would get index ``k``.)
    ``axes``: explicit mesh axes to make the words sharded over (:mod:`.explicit`), for
    an axis up to :data:`IOTA32_LIMIT` (a longer one is counted whole, then partitioned).
    """
    length = shape[axis]
    symbolic = not isinstance(length, int)  # shape-polymorphic export: any length, so the split
    if not symbolic and length <= IOTA32_LIMIT:
        return iota(jnp.uint32, shape, axis, axes), zeros(shape, jnp.uint32, axes)
    if not symbolic and length > 1 << 48:
        raise ValueError(f"unidrop's JAX backend handles mask axes of up to 2**48 elements, got {length}")
    outers = -(-length // (1 << SPLIT_BITS))
    split = (*shape[:axis], outers, 1 << SPLIT_BITS, *shape[axis + 1 :])
    outer = lax.broadcasted_iota(jnp.uint32, split, axis)
    inner = lax.broadcasted_iota(jnp.uint32, split, axis + 1)
    padded = (*shape[:axis], outers * (1 << SPLIT_BITS), *shape[axis + 1 :])
    low = ((outer << np.uint32(SPLIT_BITS)) | inner).reshape(padded)
    high = (outer >> np.uint32(32 - SPLIT_BITS)).reshape(padded)
    return lax.slice_in_dim(low, 0, length, axis=axis), lax.slice_in_dim(high, 0, length, axis=axis)


def row_starts(
    rows: tuple[int, ...],
    strides: tuple[int, ...],
    wide: bool,
    origin: tuple[Any, Any] | None = None,
    axes: MeshAxes | None = None,
) -> tuple[Any, Any]:
    """The flat index of each row's first element, shape ``rows + (1,)``, as a (low, high) pair.

    Row ``r`` starts at ``origin + sum(r[d] * strides[d])``; ``origin`` (default 0) is a pair of
    uint32 scalars, possibly traced. Without ``wide`` every index must be below 2**32.
    ``axes``: the explicit mesh axes of the mask's axes (see :mod:`.explicit`); the starts, and
    everything computed from them, are sharded over those of the row axes.
    """
    shape = (*rows, 1)
    in_rows = None if axes is None else axes.first(len(rows), None)
    zero = zeros(shape, jnp.uint32, in_rows)
    start: tuple[Any, Any] = (zero, zero)
    if origin is not None:
        start = (zero + origin[0], zero + origin[1]) if wide else (zero + origin[0], zero)
    for axis in reversed(range(len(rows))):
        stride = strides[axis]
        if wide:
            start = add64(start, mul_const64(iota64(shape, axis, in_rows), stride))
        else:
            coordinate = iota(jnp.uint32, shape, axis, in_rows)
            start = (start[0] + coordinate * np.uint32(stride & MASK32), zero)
    return start


@dataclass(frozen=True)
class BlockLayout:
    """The static part of a block of a global mask (hashable, so it can key jit's cache).

    ``global_mask_shape`` is the whole logical array's mask shape; ``aligned_start`` says that
    the block's first mask element is known (at trace time) to lie on a Philox block boundary
    (its global flat index is a multiple of 4). The start itself travels at run time, as words.
    """

    global_mask_shape: tuple[int, ...]
    aligned_start: bool = False


def split_block_rows(
    mask_shape: tuple[int, ...], global_mask_shape: tuple[int, ...]
) -> tuple[tuple[int, ...], int]:
    """``(R, C)`` for a block of a global mask: as :func:`split_rows`, but an axis is merged into
    the row only while the axes after it span the whole global axis (so a row stays contiguous
    in the global mask)."""
    if not mask_shape:
        return (), 1
    k = len(mask_shape) - 1
    length = mask_shape[k]
    while k > 0 and length % 4 and length < MERGE_BELOW and mask_shape[k] == global_mask_shape[k]:
        k -= 1
        length *= mask_shape[k]
    return tuple(mask_shape[:k]), length


def keep_bits(
    mask_shape: tuple[int, ...],
    seed: tuple[Any, Any],
    stream: tuple[Any, Any],
    threshold: Any,
    *,
    wide: bool | None = None,
    block: BlockLayout | None = None,
    origin: tuple[Any, Any] | None = None,
    axes: MeshAxes | None = None,
) -> Any:
    """The keep mask (bool, ``mask_shape``): element i is kept iff its word u_i >= ``threshold``.

    ``seed`` and ``stream`` are (low, high) uint32 words (scalars, possibly traced);
    ``threshold`` is a Python int in [0, 2**32) or a uint32 scalar (possibly traced). ``wide``
    forces (True) or forbids (False) 64-bit index arithmetic; by default it is used only for
    masks of more than 2**32 elements (for a block: global masks of more than 2**32 elements).

    With ``block``, the mask is a block of the global mask ``block.global_mask_shape`` whose
    first element has the global flat index ``origin`` ((low, high) uint32 words, possibly
    traced): element j uses the word of global index ``origin + sum(j[d] * global_strides[d])``.

    ``axes``: the input's explicit mesh axes for each mask axis (:func:`.explicit.mask_axes`); the
    words are then computed on the devices that hold their rows, not whole on every device.
    """
    if not all(isinstance(n, int) for n in mask_shape[1:]):
        raise NotImplementedError(
            f"unidrop's JAX backend exports shape-polymorphic arrays whose mask shape has a symbolic "
            f"first axis only (a batch, or any axis in broadcast_dims); got the mask shape {mask_shape}: "
            "export with the other axes' sizes given, or move the symbolic axis first"
        )
    size = math.prod(mask_shape)
    if size == 0:
        return jnp.zeros(mask_shape, bool)
    if block is None:
        rows, length = split_rows(mask_shape)
        strides = tuple(length * math.prod(rows[axis + 1 :]) for axis in range(len(rows)))
        total = size
        aligned = length % 4 == 0
        origin = None
    else:
        rows, length = split_block_rows(mask_shape, block.global_mask_shape)
        strides = c_strides(block.global_mask_shape)[: len(rows)]
        total = math.prod(block.global_mask_shape)
        aligned = (
            block.aligned_start
            and length % 4 == 0
            and all(stride % 4 == 0 for stride, count in zip(strides, rows, strict=True) if count > 1)
        )
        if origin is None:
            raise ValueError("keep_bits: a block needs its origin (the global index of its first element)")
    if wide is None:  # a symbolic size (shape-polymorphic export) may exceed 2**32: 64-bit indices
        wide = not isinstance(total, int) or total > NARROW_LIMIT
    per_row = length // 4 if aligned else (length + 2) // 4 + 1
    start = row_starts(rows, strides, wide, origin, axes)
    block_shape = (*rows, per_row)
    # iotas over the blocks (and lanes, below) sharded as the rows are, where the input's axes are explicit
    in_blocks = None if axes is None else axes.first(len(rows), None)
    base = shr64(start, 2) if wide else (start[0] >> np.uint32(2), start[1])
    if wide:
        b0, b1 = add64(
            (jnp.broadcast_to(base[0], block_shape), jnp.broadcast_to(base[1], block_shape)),
            iota64(block_shape, len(rows), in_blocks),
        )
    else:
        b0, b1 = base[0] + iota(jnp.uint32, block_shape, len(rows), in_blocks), np.uint32(0)
    words = philox4x32((b0, b1, stream[0], stream[1]), seed)
    t = np.uint32(threshold) if isinstance(threshold, int) else threshold
    packed = sum(((w >= t).astype(jnp.uint8) << np.uint8(lane)) for lane, w in enumerate(words))
    packed = MATERIALIZERS[MATERIALIZE](packed)
    lanes = iota(
        jnp.uint8,
        (*block_shape, 4),
        len(rows) + 1,
        None if axes is None else axes.first(len(rows), None, None),
    )
    spread = ((packed[..., None] >> lanes) & np.uint8(1)).astype(bool).reshape(*rows, 4 * per_row)
    if aligned:
        keep = spread
    else:
        offset = jnp.broadcast_to(start[0] & np.uint32(3), (*rows, length))
        keep = spread[..., 0:length]
        for o in (1, 2, 3):
            keep = jnp.where(offset == o, spread[..., o : o + length], keep)
    return keep.reshape(mask_shape)
