"""The JAX backend's primitive for the dropout family: the stream words of a plan, traceable.

Flat mask indices are formed as (low, high) uint32 pairs, so no ``jax_enable_x64`` is needed and
masks of more than 2**32 elements (and blocks far into a global mask) get the right words.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from unidrop import DropoutPlan
from unidrop.blocks import c_strides
from unidrop.philox_int64 import check_reach

from .blocks import offset_words
from .explicit import MeshAxes, zeros
from .keys import words
from .mask import add64, iota64, mul_const64, shr64
from .philox_lax import philox4x32


def _offset_words(start: Any) -> tuple[Any, Any]:
    """A block offset (an int, or a traced integer scalar) as a (low, high) uint32 pair."""
    if isinstance(start, int):
        return np.uint32(start & 0xFFFF_FFFF), np.uint32(start >> 32)
    return tuple(offset_words(jnp.asarray(start)))  # traced: both words of an 8-byte integer


def flat_index(plan: DropoutPlan, axes: MeshAxes | None = None) -> tuple[Any, Any]:
    """The global flat mask index of every element of ``plan.mask_shape``, as a (low, high) pair,
    made sharded over ``axes`` (the input's explicit mesh axes, :func:`.explicit.mask_axes`)."""
    shape = plan.mask_shape
    block = plan.block
    strides = c_strides(shape if block is None else block.global_mask_shape)
    zero = zeros(shape, jnp.uint32, axes)
    index: tuple[Any, Any] = (zero, zero)
    for axis, stride in enumerate(strides):
        coordinate = iota64(shape, axis, axes)
        if block is not None:
            coordinate = add64(coordinate, _offset_words(block.mask_offset[axis]))
        index = add64(index, mul_const64(coordinate, stride))
    return index


def stream_words(plan: DropoutPlan, axes: MeshAxes | None = None) -> Any:
    """The words u_i of ``plan`` (uint32, ``plan.mask_shape``), blocks included; traceable. Each
    device computes its own shard's words where ``axes`` names explicit mesh axes."""
    if plan.block is not None:  # 64-bit indices: a block reaching 2**64 would wrap to the start
        check_reach(plan.block, plan.mask_shape, 1 << 64, "2**64")
    seed, stream = words(plan.seed, "seed"), words(plan.stream, "stream")
    low, high = flat_index(plan, axes)
    b0, b1 = shr64((low, high), 2)
    w0, w1, w2, w3 = philox4x32((b0, b1, stream[0], stream[1]), (seed[0], seed[1]))
    lane = low & np.uint32(3)
    return jnp.where(lane == 0, w0, jnp.where(lane == 1, w1, jnp.where(lane == 2, w2, w3)))
