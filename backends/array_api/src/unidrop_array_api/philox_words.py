"""Philox4x32-10 words of mask stream v1 in standard Array API operations.

Every 32-bit word is held in a ``uint64`` array (high half zero), so the 32x32->64-bit product of
a round is one standard ``uint64`` multiply that never wraps, and its halves are a shift and a
mask. A word may also be a Python int (the stream words, the key): the round works the same on
both, so the words that are equal for every element are computed once in Python.
"""

from __future__ import annotations

import math
from typing import Any

from unidrop.philox import MASK32, PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1, ROUNDS

Word = Any  # a uint64 array of values below 2**32, or a Python int below 2**32


def philox(counter: tuple[Word, Word, Word, Word], key: tuple[int, int]) -> tuple[Word, Word, Word, Word]:
    """The four words of Philox4x32-10 (Random123) for ``counter`` (element-wise) and ``key``."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(ROUNDS):
        p0 = c0 * PHILOX_M0
        p1 = c2 * PHILOX_M1
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & MASK32, (p0 >> 32) ^ c3 ^ k1, p0 & MASK32
        k0, k1 = (k0 + PHILOX_W0) & MASK32, (k1 + PHILOX_W1) & MASK32
    return c0, c1, c2, c3


def _block_words(seed: int, stream: int, block: Any) -> tuple[Word, Word, Word, Word]:
    """The words of the Philox blocks ``block`` (a uint64 array) of mask stream v1."""
    counter = (block & MASK32, block >> 32, stream & MASK32, stream >> 32)
    return philox(counter, (seed & MASK32, seed >> 32))


def contiguous_words(xp: Any, seed: int, stream: int, count: int, device: Any) -> Any:
    """The uint64 words u_0 .. u_{count-1} of mask stream v1, a 1-D array (all four words of a block used)."""
    blocks = require_uint64(xp, xp.arange(math.ceil(count / 4), dtype=xp.uint64, device=device))
    words = xp.stack(_block_words(seed, stream, blocks), axis=1)
    return xp.reshape(words, (-1,))[:count]


def indexed_words(xp: Any, seed: int, stream: int, indices: Any) -> Any:
    """The uint64 words u_i for the flat mask indices ``indices`` (a uint64 array of any shape)."""
    words = _block_words(seed, stream, indices >> 2)
    lane = indices & 3
    # word ``lane`` of each block by arithmetic: a library may take ``where`` on uint64 through
    # float64 (ndonnx does, with a warning), and sums of products of words below 2**32 are exact
    picked = [word * xp.astype(lane == k, xp.uint64) for k, word in enumerate(words)]
    return picked[0] + picked[1] + picked[2] + picked[3]


def require_uint64(xp: Any, made: Any) -> Any:
    """``made``, an array asked for as uint64; a TypeError if the library made another dtype (JAX
    without 64-bit types makes uint32, and the words would wrap)."""
    if made.dtype != xp.uint64:
        raise TypeError(
            f"unidrop's Array API backend computes the mask stream in uint64 arrays, and this library "
            f"({type(made).__module__}) made {made.dtype} when asked for uint64. With JAX, enable 64-bit "
            "types (jax.config.update('jax_enable_x64', True)) or use unidrop's JAX backend"
        )
    return made


def block_indices(
    xp: Any, shape: tuple[int, ...], offset: tuple[int, ...], strides: tuple[int, ...], device: Any
) -> Any:
    """The global flat mask index of every element of a block: ``sum((offset[d] + j[d]) * strides[d])``.

    A uint64 array of ``shape``, made by broadcasting one index vector per axis.
    """
    total = require_uint64(xp, xp.zeros(shape, dtype=xp.uint64, device=device))
    for axis, (size, start, stride) in enumerate(zip(shape, offset, strides, strict=True)):
        along = (xp.arange(size, dtype=xp.uint64, device=device) + int(start)) * int(stride)
        total = total + xp.reshape(along, tuple(size if d == axis else 1 for d in range(len(shape))))
    return total
