"""Pure-Python Philox4x32-10 and the unidrop mask stream, version 1.

This module is the oracle: every backend is checked against it. It needs nothing
beyond the standard library and favours clarity over speed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

MASK32 = 0xFFFFFFFF
PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
ROUNDS = 10


def philox4x32(counter: Sequence[int], key: Sequence[int], rounds: int = ROUNDS) -> tuple[int, int, int, int]:
    """Return the four 32-bit words of Philox4x32 (Random123) for one counter and key."""
    c0, c1, c2, c3 = (int(w) & MASK32 for w in counter)
    k0, k1 = (int(w) & MASK32 for w in key)
    for _ in range(rounds):
        p0 = PHILOX_M0 * c0
        p1 = PHILOX_M1 * c2
        c0, c1, c2, c3 = (
            ((p1 >> 32) ^ c1 ^ k0) & MASK32,
            p1 & MASK32,
            ((p0 >> 32) ^ c3 ^ k1) & MASK32,
            p0 & MASK32,
        )
        k0 = (k0 + PHILOX_W0) & MASK32
        k1 = (k1 + PHILOX_W1) & MASK32
    return c0, c1, c2, c3


def split64(value: int) -> tuple[int, int]:
    """Split a 64-bit integer into its (low, high) 32-bit words."""
    return value & MASK32, (value >> 32) & MASK32


def block_words(seed: int, stream: int, block: int) -> tuple[int, int, int, int]:
    """The four mask-stream words of Philox block ``block`` (elements 4*block .. 4*block+3)."""
    b0, b1 = split64(block)
    s0, s1 = split64(stream)
    return philox4x32((b0, b1, s0, s1), split64(seed))


def stream_words(seed: int, stream: int, start: int, count: int) -> Iterator[int]:
    """Yield the uint32 words u_i of the mask stream for flat indices start .. start+count-1."""
    index = start
    stop = start + count
    while index < stop:
        words = block_words(seed, stream, index >> 2)
        for lane in range(index & 3, 4):
            if index >= stop:
                return
            yield words[lane]
            index += 1


def element_word(seed: int, stream: int, index: int) -> int:
    """The uint32 word u_i for one flat mask index."""
    return block_words(seed, stream, index >> 2)[index & 3]
