"""Blocks of a global mask on JAX: the block's start as run-time words, offsets possibly traced.

``unidrop.dropout(x, p, seed=..., global_shape=G, offset=O)`` gives ``x`` its slice of the mask
of the whole logical array of shape G (:mod:`unidrop.blocks`). Here the core's
:class:`~unidrop.blocks.MaskBlock` becomes what the compiled function takes: a static
:class:`~.mask.BlockLayout` (the global mask shape; whether the start is known to be aligned)
and the global flat index of the block's first mask element as two uint32 words, computed with
traced arithmetic when an offset entry is traced (``lax.axis_index`` inside ``shard_map``).
Offsets that are Python ints travel as run-time words too, so the tiles of one array share one
compiled program.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from unidrop.arguments import TWO_POW_64, is_traced
from unidrop.blocks import MaskBlock

from .keys import Words64, from_int
from .mask import BlockLayout, add64, mul_const64


def offset_words(entry: Any) -> Words64:
    """A traced integer offset as (low, high) uint32 words (a signed value is read by its bits).

    Raises TypeError, naming it, for a traced value that is not an integer scalar.
    """
    dtype = jnp.dtype(entry.dtype)
    if entry.shape != () or not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(
            "offset entries must be non-negative integers (a traced one: an integer scalar, e.g. "
            f"from lax.axis_index); got a traced array of shape {entry.shape} and dtype {dtype.name}"
        )
    if dtype.itemsize == 8:
        as_u64 = entry.astype(jnp.uint64)
        low = (as_u64 & np.uint64(0xFFFFFFFF)).astype(jnp.uint32)
        return Words64(low, (as_u64 >> np.uint64(32)).astype(jnp.uint32))
    return Words64(entry.astype(jnp.uint32), jnp.zeros((), jnp.uint32))


def block_origin(block: MaskBlock) -> tuple[BlockLayout, Words64]:
    """The static layout of ``block`` and the global flat index of its first mask element.

    The index is ``sum(mask_offset[d] * global_strides[d])`` modulo 2**64 (it is below 2**64 for
    any block inside its global shape); concrete entries are summed exactly in Python, traced
    ones in two-word arithmetic.
    """
    concrete = 0
    traced: list[tuple[Any, int]] = []
    for entry, stride in zip(block.mask_offset, block.global_strides(), strict=True):
        if is_traced(entry):
            traced.append((entry, stride))
        else:
            concrete += int(entry) * stride
    start = from_int(concrete % TWO_POW_64)
    words: tuple[Any, Any] = (start.lo, start.hi)
    for entry, stride in traced:
        words = add64(words, mul_const64(offset_words(entry), stride))
    layout = BlockLayout(block.global_mask_shape, aligned_start=not traced and concrete % 4 == 0)
    return layout, Words64(*words)
