"""Philox4x32-10 words of mask stream v1, vectorised with NumPy.

Every 32-bit word is held in a uint64 lane (high half zero), so a 32x32->64-bit product is
one uint64 multiply, and its halves are a shift and a mask, all on contiguous arrays.
The two words that are multiplied in a round, and the two that are xored in, each sit in
one ``(2, count)`` array, so a round is five ufunc calls:

    P = A * (M0, M1);  A = P >> 32;  A ^= B;  A ^= key;  B = reversed(P) & 0xFFFFFFFF

The row order of ``A`` alternates between ``(c0, c2)`` and ``(c2, c0)`` from round to round,
which makes the word swap of the Philox round free (a reversed view of the rows, not a copy).
In the first two rounds most words are the same for every block (the stream words, and the
block's high word), so those are worked out in Python. Keep decisions come straight from the
final ``A`` and ``B`` as bit masks, without interleaving the words first.
"""

from __future__ import annotations

import numpy as np

from unidrop.philox import MASK32, ROUNDS
from unidrop.philox import PHILOX_M0 as M0
from unidrop.philox import PHILOX_M1 as M1
from unidrop.philox import PHILOX_W0 as W0
from unidrop.philox import PHILOX_W1 as W1

_U64_MASK32 = np.uint64(MASK32)
_U64_HIGH32 = np.uint64(MASK32 << 32)
_SHIFT32 = np.uint64(32)
_SHIFT63 = np.int64(63)
#: Multipliers per row while A holds (c0, c2) (even rounds) and (c2, c0) (odd rounds).
_MULTIPLIERS = (
    np.array([[M0], [M1]], dtype=np.uint64),
    np.array([[M1], [M0]], dtype=np.uint64),
)
#: The unsigned integer type of each float itemsize, to treat float bits as integers.
UINT_OF_ITEMSIZE = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _round_keys(seed: int) -> tuple[list[tuple[int, int]], list[np.ndarray]]:
    """The key words (k0, k1) of each round, and the same as the ``(2, 1)`` arrays xored into A:
    rows (k1, k0) on even rounds, where A holds (c0, c2), and (k0, k1) on odd ones."""
    k0, k1 = seed & MASK32, (seed >> 32) & MASK32
    words, rows = [], []
    for r in range(ROUNDS):
        words.append((k0, k1))
        pair = (k1, k0) if r % 2 == 0 else (k0, k1)
        rows.append(np.array([[pair[0]], [pair[1]]], dtype=np.uint64))
        k0, k1 = (k0 + W0) & MASK32, (k1 + W1) & MASK32
    return words, rows


def _rounds(a: np.ndarray, b: np.ndarray, p: np.ndarray, rows: list[np.ndarray], start: int) -> None:
    """Rounds ``start`` .. 9 on ``A`` = rows (c0, c2) and ``B`` = rows (c3, c1), in place (``p`` is
    scratch of the same shape); after an even number of rounds A and B hold those rows again."""
    for r in range(start, ROUNDS):
        np.multiply(a, _MULTIPLIERS[r & 1], out=p)
        np.right_shift(p, _SHIFT32, out=a)
        np.bitwise_xor(a, b, out=a)
        np.bitwise_xor(a, rows[r], out=a)
        np.bitwise_and(p[::-1], _U64_MASK32, out=b)


def words_at(seed: int, stream: int, indices: np.ndarray) -> np.ndarray:
    """The uint32 words u_i of the flat mask indices ``indices`` (uint64, any order, any values).

    One Philox block per index (a block of a global mask whose runs of consecutive indices are
    short); :meth:`PhiloxWorkspace.words` is four times cheaper for consecutive indices.
    """
    indices = np.asarray(indices, dtype=np.uint64).reshape(-1)
    count = indices.size
    a, b, p = (np.empty((2, count), np.uint64) for _ in range(3))
    np.right_shift(indices, np.uint64(2), out=a[0])  # the block b
    np.right_shift(a[0], _SHIFT32, out=b[1])
    np.bitwise_and(a[0], _U64_MASK32, out=a[0])
    a[1].fill(stream & MASK32)
    b[0].fill((stream >> 32) & MASK32)
    _rounds(a, b, p, _round_keys(seed)[1], 0)
    lane = (indices & np.uint64(3)).astype(np.intp)
    # lane 0 -> c0 = A[0], 1 -> c1 = B[1], 2 -> c2 = A[1], 3 -> c3 = B[0]
    words = np.where(lane == 0, a[0], np.where(lane == 1, b[1], np.where(lane == 2, a[1], b[0])))
    return words.astype(np.uint32)


class PhiloxWorkspace:
    """Reusable buffers for the words of up to ``capacity`` Philox blocks at a time.

    One workspace serves one thread; every array it returns is a view into its buffers,
    valid until the next call. Its memory is fixed: 64 bytes per block of capacity (and 32 more
    for 64-bit and 16-bit masks).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._a = np.empty(2 * capacity, np.uint64)
        self._b = np.empty(2 * capacity, np.uint64)
        self._p = np.empty(2 * capacity, np.uint64)
        self._iota = np.arange(capacity, dtype=np.uint64)
        self._wide: np.ndarray | None = None  # (capacity, 4) words or 64-bit masks, made when needed
        self._narrow: np.ndarray | None = None
        self._iota_m0 = self._iota * np.uint64(M0)  # < 2^62: no wrap
        self._keys: dict[int, tuple[list[tuple[int, int]], list[np.ndarray]]] = {}

    def _state(self, seed: int, stream: int, first_block: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Run the ten rounds; return ``(A, B)`` with rows ``(c0, c2)`` and ``(c3, c1)`` of the output."""
        if count > self.capacity:
            raise ValueError(f"at most {self.capacity} blocks at a time, asked for {count}")
        keys = self._keys.get(seed)
        if keys is None:
            if len(self._keys) > 8:
                self._keys.clear()
            keys = self._keys[seed] = _round_keys(seed)
        a, b, p = (buffer[: 2 * count].reshape(2, count) for buffer in (self._a, self._b, self._p))
        words, rows = keys
        if (first_block >> 32) == ((first_block + count - 1) >> 32):
            self._first_two_rounds(words, stream, first_block, count, a, b, p)
            start = 2
        else:  # the block counter's high word changes inside this run of blocks
            # Counter (b mod 2^32, b >> 32, stream mod 2^32, stream >> 32); A = (c0, c2), B = (c3, c1).
            np.add(self._iota[:count], np.uint64(first_block & ((1 << 64) - 1)), out=a[0])
            np.right_shift(a[0], _SHIFT32, out=b[1])
            np.bitwise_and(a[0], _U64_MASK32, out=a[0])
            a[1].fill(stream & MASK32)
            b[0].fill((stream >> 32) & MASK32)
            start = 0
        _rounds(a, b, p, rows, start)
        return a, b

    def _first_two_rounds(
        self,
        keys: list[tuple[int, int]],
        stream: int,
        first_block: int,
        count: int,
        a: np.ndarray,
        b: np.ndarray,
        p: np.ndarray,
    ) -> None:
        """Rounds 1 and 2 when c1 (the block's high word), c2 and c3 are the same for every block.

        Then only one of the two products of each round varies, and half of the words are
        constants worked out in Python: nine array passes instead of twenty-five.
        """
        low, c1 = first_block & MASK32, first_block >> 32
        s0, s1 = stream & MASK32, (stream >> 32) & MASK32
        (k0, k1), (l0, l1) = keys[0], keys[1]
        # Round 1: p0 = c0 * M0 with c0 = low + i (no wrap: the high word does not change).
        p0, row = p[0], p[1]
        np.add(self._iota_m0[:count], np.uint64(low * M0), out=p0)
        np.right_shift(p0, _SHIFT32, out=row)
        np.bitwise_xor(row, np.uint64(s1 ^ k1), out=row)  # c2'
        np.bitwise_and(p0, _U64_MASK32, out=a[1])  # c3'
        q1 = s0 * M1
        x0, x1 = ((q1 >> 32) ^ c1 ^ k0) & MASK32, q1 & MASK32  # c0', c1': constants
        # Round 2: the product of c0' is a constant too.
        np.multiply(row, np.uint64(M1), out=p0)
        np.right_shift(p0, _SHIFT32, out=a[0])
        np.bitwise_xor(a[0], np.uint64(x1 ^ l0), out=a[0])  # c0''
        np.bitwise_and(p0, _U64_MASK32, out=b[1])  # c1''
        q0 = x0 * M0
        np.bitwise_xor(a[1], np.uint64((q0 >> 32) ^ l1), out=a[1])  # c2'' = hi(q0) ^ c3' ^ k1
        b[0].fill(q0 & MASK32)  # c3''

    def _wide_buffer(self) -> np.ndarray:
        if self._wide is None:
            self._wide = np.empty((self.capacity, 4), np.uint64)
        return self._wide

    def blocks(self, seed: int, stream: int, first_block: int, count: int) -> np.ndarray:
        """The words of blocks first_block .. first_block+count-1, shape (count, 4), uint32, C order."""
        a, b = self._state(seed, stream, first_block, count)
        out = self._wide_buffer().reshape(-1).view(np.uint32)[: 4 * count].reshape(count, 4)
        np.copyto(out.T[0::2], a, casting="unsafe")
        np.copyto(out.T[1::2], b[::-1], casting="unsafe")
        return out

    def words(self, seed: int, stream: int, start: int, count: int) -> np.ndarray:
        """The uint32 words u_i for flat mask indices start .. start+count-1 (a view)."""
        first = start >> 2
        last = (start + count + 3) >> 2
        flat = self.blocks(seed, stream, first, last - first).reshape(-1)
        offset = start & 3
        return flat[offset : offset + count]

    def keep_masks(
        self, seed: int, stream: int, start: int, count: int, threshold: int, itemsize: int
    ) -> np.ndarray:
        """Element masks for flat mask indices start .. start+count-1 (a view, 1-D).

        Unsigned integers ``itemsize`` bytes wide (2, 4 or 8): all ones where the element is
        kept (``u_i >= threshold``), zero where it is dropped. ANDed with the bits of a result
        they select it or give exactly +0.
        """
        first = start >> 2
        last = (start + count + 3) >> 2
        a, b = self._state(seed, stream, first, last - first)
        n = last - first
        # T - u (uint64) wraps below zero exactly when u > T = t - 1, i.e. when u >= t (kept), and
        # then its top 32 bits are all ones; otherwise they are all zero. t = 0 gives
        # T = 2^64 - 1, whose top 32 bits are ones for every u: all kept.
        limit = np.uint64((threshold - 1) & ((1 << 64) - 1))
        p = self._p[: 2 * n].reshape(2, n)
        if itemsize == 4:
            # Two float32 elements per uint64: word j in the low half, word j+1 in the high half.
            pairs = self._b[: 2 * n].reshape(n, 2)  # B is consumed before the last call writes it
            np.subtract(limit, a, out=p)
            np.right_shift(p, _SHIFT32, out=a)  # (keep c0, keep c2) in the low halves
            np.subtract(limit, b[::-1], out=p)
            np.bitwise_and(p, _U64_HIGH32, out=p)  # (keep c1, keep c3) in the high halves
            np.bitwise_or(a, p, out=pairs.T)
            flat = pairs.view(np.uint32).reshape(-1)
        else:
            masks = self._wide_buffer()[:n].view(np.int64)
            np.subtract(limit, a, out=p)
            np.right_shift(p.view(np.int64), _SHIFT63, out=masks.T[0::2])
            np.subtract(limit, b[::-1], out=p)
            np.right_shift(p.view(np.int64), _SHIFT63, out=masks.T[1::2])
            flat = masks.reshape(-1).view(np.uint64)
            if itemsize != 8:
                if self._narrow is None or self._narrow.dtype.itemsize != itemsize:
                    self._narrow = np.empty(4 * self.capacity, UINT_OF_ITEMSIZE[itemsize])
                narrow = self._narrow[: 4 * n]
                np.copyto(narrow, flat, casting="unsafe")
                flat = narrow
        offset = start & 3
        return flat[offset : offset + count]
