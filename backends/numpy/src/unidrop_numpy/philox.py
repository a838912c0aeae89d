"""Philox4x32-10 words of mask stream v1, vectorised with NumPy.

32x32->64-bit products are taken in uint64 and read back as the two uint32 halves of
the product (little-endian views), so each round costs two multiplies and four xors.
"""

from __future__ import annotations

import sys

import numpy as np

M0 = np.uint64(0xD2511F53)
M1 = np.uint64(0xCD9E8D57)
W0 = 0x9E3779B9
W1 = 0xBB67AE85
MASK32 = 0xFFFFFFFF
ROUNDS = 10

if sys.byteorder != "little":  # pragma: no cover - the halves below assume little-endian
    raise ImportError("unidrop_numpy's Philox needs a little-endian machine")


def _halves(product: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) uint32 views of a uint64 array."""
    pairs = product.view(np.uint32)
    return pairs[0::2], pairs[1::2]


class PhiloxWorkspace:
    """Reusable buffers for the words of up to ``capacity`` Philox blocks at a time."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._products = [np.empty(capacity, np.uint64) for _ in range(4)]
        self._words = [np.empty(capacity, np.uint32) for _ in range(4)]
        self._blocks = np.empty(capacity, np.uint64)
        self.out = np.empty((capacity, 4), np.uint32)

    def blocks(self, seed: int, stream: int, first_block: int, count: int) -> np.ndarray:
        """The words of blocks first_block .. first_block+count-1, shape (count, 4), C order."""
        if count > self.capacity:
            raise ValueError(f"at most {self.capacity} blocks at a time, asked for {count}")
        k0, k1 = seed & MASK32, seed >> 32
        s0, s1 = stream & MASK32, stream >> 32
        index = self._blocks[:count]
        np.add(np.arange(count, dtype=np.uint64), np.uint64(first_block), out=index)
        c0 = index.astype(np.uint32)  # low word (truncating)
        c1 = (index >> np.uint64(32)).astype(np.uint32)
        # Round 1: the stream words c2, c3 are scalars, so only c0's product varies.
        p0 = self._products[0][:count]
        np.multiply(c0, M0, dtype=np.uint64, out=p0)
        p1 = s0 * int(M1)
        n0 = self._words[0][:count]
        np.bitwise_xor(c1, np.uint32(((p1 >> 32) ^ k0) & MASK32), out=n0)
        low0, high0 = _halves(p0)
        n2 = self._words[2][:count]
        np.bitwise_xor(high0, np.uint32(s1 ^ k1), out=n2)
        c0, c1, c2, c3 = n0, np.uint32(p1 & MASK32), n2, low0
        for r in range(1, ROUNDS):
            k0, k1 = (k0 + W0) & MASK32, (k1 + W1) & MASK32
            j = r & 1
            p0 = self._products[2 * j][:count]
            p1 = self._products[2 * j + 1][:count]
            if r == ROUNDS - 1:
                n0, n2 = self.out[:count, 0], self.out[:count, 2]
            else:
                n0, n2 = self._words[j][:count], self._words[2 + j][:count]
            np.multiply(c0, M0, dtype=np.uint64, out=p0)
            np.multiply(c2, M1, dtype=np.uint64, out=p1)
            low0, high0 = _halves(p0)
            low1, high1 = _halves(p1)
            np.bitwise_xor(high1, c1, out=n0)
            n0 ^= np.uint32(k0)
            np.bitwise_xor(high0, c3, out=n2)
            n2 ^= np.uint32(k1)
            c0, c1, c2, c3 = n0, low1, n2, low0
        out = self.out[:count]
        out[:, 1] = c1
        out[:, 3] = c3
        return out

    def words(self, seed: int, stream: int, start: int, count: int) -> np.ndarray:
        """The uint32 words u_i for flat mask indices start .. start+count-1 (a view)."""
        first = start >> 2
        last = (start + count + 3) >> 2
        flat = self.blocks(seed, stream, first, last - first).reshape(-1)
        offset = start & 3
        return flat[offset : offset + count]
