"""Blocks of a global mask in pure torch: each element's word found from its global mask index.

A block (``plan.block``: a DTensor shard, a tile cut by hand) of mask shape m at mask offset O in a
global mask shape G uses, at block mask index j, the mask-stream word of global flat index
``g = sum((O[d] + j[d]) * stride_G[d])``. This module computes ``g`` for every block mask element
as an int64 tensor, runs Philox4x32-10 on the counters ``(g >> 2, stream)`` with torch integer
arithmetic (64-bit products of 32-bit words: exact, wrapped mod 2**64, on any device), picks word
``g & 3`` and compares it with the threshold. The result is applied with a select, as the mask
stream prescribes (dropped elements are +0; kept ones ``x * s`` rounded from the compute dtype).

It runs on every device torch runs on and inside traced graphs (offsets may be symbolic
integers); global indices past 2**63 wrap in int64 and are read back as unsigned bit patterns.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from unidrop import arguments, philox
from unidrop.blocks import c_strides

from . import cuda

_MASK32 = philox.MASK32
_LOW62 = (1 << 62) - 1


def _signed64(value: int) -> int:
    """The int64 with the bit pattern of ``value`` mod 2**64 (Python ints beyond int64 wrap)."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def global_indices(
    mask_shape: Sequence[int],
    global_mask_shape: Sequence[int],
    mask_offset: Sequence[int],
    device: torch.device,
) -> Tensor:
    """The global flat mask index of every element of a block's mask, an int64 tensor of ``mask_shape``.

    Indices at or past 2**63 come out as their int64 bit patterns (two's complement).
    """
    ndim = len(mask_shape)
    index = torch.zeros((1,) * ndim, dtype=torch.int64, device=device)
    for axis, (size, start, stride) in enumerate(
        zip(mask_shape, mask_offset, c_strides(global_mask_shape), strict=True)
    ):
        view = [1] * ndim
        view[axis] = size
        along = (torch.arange(size, dtype=torch.int64, device=device) + start) * _signed64(stride)
        index = index + along.view(view)
    return index.expand(tuple(mask_shape))


def _mulhilo(a: Tensor, multiplier: int) -> tuple[Tensor, Tensor]:
    """(high word, low word) of the 64-bit product of 32-bit words ``a`` (int64) and ``multiplier``."""
    product = a * multiplier  # < 2**64: wraps in int64 to the product's exact bit pattern
    return (product >> 32) & _MASK32, product & _MASK32


def words_at(index: Tensor, key: Tensor) -> Tensor:
    """The mask-stream word (an int64 in [0, 2**32)) of each global flat index in ``index``.

    ``key`` is the int32 tensor of shape (4,) of :mod:`unidrop_torch.keys`, on any device.
    """
    k = key.to(dtype=torch.int64) & _MASK32
    if key.device.type == "cpu" and not torch.jit.is_tracing():  # read on the host: no copy (graph-safe)
        k0, k1, s0, s1 = k.tolist()
    else:  # drawn on index's device (seed=None): stays there
        k = k.to(device=index.device)
        k0, k1, s0, s1 = k[0], k[1], k[2], k[3]
    block = (index >> 2) & _LOW62  # a logical shift: the index is an unsigned 64-bit pattern
    c0 = block & _MASK32
    c1 = block >> 32
    c2 = torch.zeros_like(c0) + s0
    c3 = torch.zeros_like(c0) + s1
    for _ in range(10):
        hi0, lo0 = _mulhilo(c0, philox.PHILOX_M0)
        hi1, lo1 = _mulhilo(c2, philox.PHILOX_M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + philox.PHILOX_W0) & _MASK32
        k1 = (k1 + philox.PHILOX_W1) & _MASK32
    lane = index & 3
    return torch.where(lane == 0, c0, torch.where(lane == 1, c1, torch.where(lane == 2, c2, c3)))


def keep_mask(
    key: Tensor,
    mask_shape: Sequence[int],
    p: float,
    global_mask_shape: Sequence[int],
    mask_offset: Sequence[int],
    device: torch.device,
) -> Tensor:
    """The block's boolean keep mask (True = kept), of ``mask_shape``, on ``device``."""
    shape = tuple(mask_shape)
    threshold = arguments.threshold(p)
    if threshold >= arguments.TWO_POW_32:  # p == 1: nothing is kept
        return torch.zeros(shape, dtype=torch.bool, device=device)
    if device.type == "cuda" and all(isinstance(o, int) for o in mask_offset):
        keep = torch.empty(shape, dtype=torch.uint8, device=device)
        if cuda.launch_block_keep(keep, key, p, tuple(global_mask_shape), tuple(mask_offset)):
            return keep.view(torch.bool)
    index = global_indices(shape, global_mask_shape, mask_offset, device)
    return words_at(index, key) >= threshold


def apply(x: Tensor, keep: Tensor, p: float) -> Tensor:
    """``x * s`` where ``keep`` (broadcast to ``x``) is True, +0 elsewhere; ``x``'s shape, dtype, layout."""
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    scaled = (x.detach().to(compute) * arguments.scale(p)).to(x.dtype)
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    return torch.where(keep, scaled, zero, out=torch.empty_like(x))


def dropout(
    x: Tensor,
    key: Tensor,
    p: float,
    broadcast_dims: Sequence[int],
    global_mask_shape: Sequence[int],
    mask_offset: Sequence[int],
) -> Tensor:
    """Mask stream v1 dropout of the block ``x``; the result has ``x``'s shape, dtype and layout."""
    mask_shape = arguments.mask_shape(tuple(x.shape), tuple(broadcast_dims))
    return apply(x, keep_mask(key, mask_shape, p, global_mask_shape, mask_offset, x.device), p)
