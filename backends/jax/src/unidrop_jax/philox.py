"""Philox4x32-10 over JAX uint32 arrays, for any shape of counters.

Only uint32 arithmetic is used (``lax.mul`` for the low and ``lax.mulhi`` for the high
half of each 32x32-bit product), so nothing here needs ``jax_enable_x64``. XLA lowers
``mulhi`` to one multiply-high instruction where the hardware has one.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

M0 = np.uint32(0xD2511F53)
M1 = np.uint32(0xCD9E8D57)
W0 = 0x9E3779B9
W1 = 0xBB67AE85
MASK32 = 0xFFFFFFFF
ROUNDS = 10

Words = tuple[Any, Any, Any, Any]


def _bump(word: Any, increment: int) -> Any:
    """``word + increment`` modulo 2**32 (``word`` a uint32 array or scalar)."""
    return word + np.uint32(increment & MASK32)


def philox4x32(counter: Words, key: tuple[Any, Any], rounds: int = ROUNDS) -> Words:
    """The four uint32 output words of Philox4x32 for broadcastable uint32 counters and key.

    Every argument is a uint32 array (or NumPy uint32 scalar); they broadcast together,
    so a scalar key and stream words cost nothing per element.
    """
    c0, c1, c2, c3 = (jnp.asarray(w, jnp.uint32) for w in counter)
    k0, k1 = (jnp.asarray(w, jnp.uint32) for w in key)
    for r in range(rounds):
        if r:
            k0, k1 = _bump(k0, W0), _bump(k1, W1)
        hi0, lo0 = lax.mulhi(c0, jnp.broadcast_to(M0, c0.shape)), c0 * M0
        hi1, lo1 = lax.mulhi(c2, jnp.broadcast_to(M1, c2.shape)), c2 * M1
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3
