"""Philox4x32-10 over JAX uint32 arrays, for any shape of counters.

Nothing here needs ``jax_enable_x64``. The high half of each 32x32-bit product (mulhi) is
formed by one of three formulations, picked by :data:`MULHI` (or the environment variable
``UNIDROP_JAX_MULHI`` at import):

``"wide"`` (default)  widen to uint64 inside the computation (64-bit types are allowed
                      locally, whatever ``jax_enable_x64`` says), multiply, shift: XLA sees a
                      plain 64-bit multiply that CPUs vectorise and GPUs lower to a wide
                      32-bit multiply. The fastest on CPU (docs/benchmarks.md); safe under sharding.
``"split"``           16-bit halves, uint32 only (four small products); the fallback when
                      the JAX in use cannot allow 64-bit types locally.
``"native"``          ``jax.lax.mulhi``; slower on CPU, and some jaxlib versions fail to
                      compile it in partitioned (sharded) programs (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

from unidrop.philox import PHILOX_M0 as M0
from unidrop.philox import PHILOX_M1 as M1
from unidrop.philox import PHILOX_W0 as W0
from unidrop.philox import PHILOX_W1 as W1
from unidrop.philox import ROUNDS

Words = tuple[Any, Any, Any, Any]

try:  # a local switch that lets 64-bit dtypes through with jax_enable_x64 off
    from jax._src.config import explicit_x64_dtypes as _explicit_x64_dtypes

    def _allow_x64() -> contextlib.AbstractContextManager[Any]:
        return _explicit_x64_dtypes("allow")

    HAVE_LOCAL_X64 = True
except ImportError:  # pragma: no cover - depends on the JAX version
    HAVE_LOCAL_X64 = False


def mulhi_wide(a: Any, const: int) -> Any:
    """High 32 bits of ``a * const`` through a uint64 product."""
    with _allow_x64():  # typed uint64 constants: a NumPy scalar would be uint32 with x64 off,
        # which jax_numpy_dtype_promotion="strict" refuses to promote
        product = a.astype(jnp.uint64) * jnp.asarray(const, jnp.uint64)
        return (product >> jnp.asarray(32, jnp.uint64)).astype(jnp.uint32)


def mulhi_split(a: Any, const: int) -> Any:
    """High 32 bits of ``a * const`` from 16-bit halves, in uint32 only."""
    c_lo, c_hi = np.uint32(const & 0xFFFF), np.uint32(const >> 16)
    low16 = np.uint32(0xFFFF)
    a_lo, a_hi = a & low16, a >> np.uint32(16)
    ll, lh, hl = a_lo * c_lo, a_lo * c_hi, a_hi * c_lo
    middle = (ll >> np.uint32(16)) + (lh & low16) + (hl & low16)  # < 3 * 2**16: no overflow
    return a_hi * c_hi + (lh >> np.uint32(16)) + (hl >> np.uint32(16)) + (middle >> np.uint32(16))


def mulhi_native(a: Any, const: int) -> Any:
    """High 32 bits of ``a * const`` by ``jax.lax.mulhi``."""
    return lax.mulhi(a, jnp.full_like(a, np.uint32(const)))


MULHI_FORMULATIONS: dict[str, Callable[[Any, int], Any]] = {
    "wide": mulhi_wide,
    "split": mulhi_split,
    "native": mulhi_native,
}

#: The formulation in use (read at trace time).
MULHI = os.environ.get("UNIDROP_JAX_MULHI", "wide" if HAVE_LOCAL_X64 else "split")
if MULHI not in MULHI_FORMULATIONS:
    raise ImportError(f"UNIDROP_JAX_MULHI must be one of {sorted(MULHI_FORMULATIONS)}, got {MULHI!r}")


def philox4x32(counter: Words, key: tuple[Any, Any], rounds: int = ROUNDS) -> Words:
    """The four uint32 output words of Philox4x32 for broadcastable uint32 counters and key.

    Every argument is a uint32 array (or NumPy uint32 scalar); they broadcast together,
    so a scalar key and scalar stream words cost nothing per element.
    """
    mulhi = MULHI_FORMULATIONS[MULHI]
    c0, c1, c2, c3 = (jnp.asarray(w, jnp.uint32) for w in counter)
    k0, k1 = (jnp.asarray(w, jnp.uint32) for w in key)
    m0, m1 = np.uint32(M0), np.uint32(M1)
    for r in range(rounds):
        if r:
            k0, k1 = k0 + np.uint32(W0), k1 + np.uint32(W1)
        hi0, lo0 = mulhi(c0, M0), c0 * m0
        hi1, lo1 = mulhi(c2, M1), c2 * m1
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3
