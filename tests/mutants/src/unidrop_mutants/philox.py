"""Philox4x32 on whole NumPy arrays, with its constants as parameters (so a mutant can change one).

Each 32-bit word is held in a uint64 element, so a 32x32-bit product is one uint64 multiply
whose high and low halves are a shift and a mask. Clarity over speed: the mutants only need
to be fast enough for the conformance suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from unidrop.philox import MASK32, PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1, ROUNDS

_MASK = np.uint64(MASK32)
_SHIFT = np.uint64(32)


def philox4x32(
    counter: Sequence[Any],
    key: tuple[int, int],
    rounds: int = ROUNDS,
    bumps: tuple[int, int] = (PHILOX_W0, PHILOX_W1),
) -> np.ndarray:
    """The four output words of Philox4x32 for every counter: a ``(n, 4)`` uint64 array.

    ``counter`` is four words, each an int or a uint64 array (broadcast together); ``key`` is
    ``(k0, k1)``. With the default ``rounds`` and ``bumps`` this is Random123's Philox4x32-10,
    word for word the pure-Python :func:`unidrop.philox.philox4x32`.
    """
    c0, c1, c2, c3 = (np.asarray(w, dtype=np.uint64) & _MASK for w in np.broadcast_arrays(*counter))
    k0, k1 = key[0] & MASK32, key[1] & MASK32
    m0, m1 = np.uint64(PHILOX_M0), np.uint64(PHILOX_M1)
    for _ in range(rounds):
        p0, p1 = c0 * m0, c2 * m1
        c0, c1, c2, c3 = (
            (p1 >> _SHIFT) ^ c1 ^ np.uint64(k0),
            p1 & _MASK,
            (p0 >> _SHIFT) ^ c3 ^ np.uint64(k1),
            p0 & _MASK,
        )
        k0, k1 = (k0 + bumps[0]) & MASK32, (k1 + bumps[1]) & MASK32
    return np.stack([c0, c1, c2, c3], axis=-1).reshape(-1, 4)
