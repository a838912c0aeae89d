"""A kept element's value, ``x * s`` rounded as mask stream v1 says, exact for subnormals too.

XLA:CPU runs its programs with denormals-are-zero and flush-to-zero (for float32 and float64
alike; bfloat16 is computed in float32), so the plain product ``x * s`` is 0 for every subnormal
``x``. The spec's ``s = 1/(1-p)`` is at least 1, so a normal ``x`` never gives a subnormal
product and only subnormal inputs need care: their product is formed here in integer arithmetic
on the bit patterns, with one rounding to nearest even, and selected by a ``jnp.where`` on the
exponent field (0 for subnormals and zeros). Every operation is elementwise, so XLA fuses it
into the dropout kernel.

float16 needs none of this: its subnormals are normal float32 values, its products are normal
float32 values, and XLA's float32 -> float16 conversion produces float16 subnormals
(the tests check all 65536 patterns).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import lax


class Format(NamedTuple):
    """An IEEE binary format: its unsigned integer type, bit width and fraction bits."""

    uint: Any
    width: int
    fraction: int

    @property
    def bias(self) -> int:
        return (1 << (self.width - self.fraction - 2)) - 1


FORMATS = {"float32": Format(jnp.uint32, 32, 23), "float64": Format(jnp.uint64, 64, 52)}


def mul_wide(a: Any, b: Any, fmt: Format) -> tuple[Any, Any]:
    """``(high, low)`` words of the exact product of two unsigned words, from half-word pieces."""
    half = fmt.width // 2
    mask, h = fmt.uint((1 << half) - 1), fmt.uint(half)
    a_lo, a_hi, b_lo, b_hi = a & mask, a >> h, b & mask, b >> h
    ll, lh, hl = a_lo * b_lo, a_lo * b_hi, a_hi * b_lo
    middle = (ll >> h) + (lh & mask) + (hl & mask)  # < 3 * 2**half: no overflow
    high = a_hi * b_hi + (lh >> h) + (hl >> h) + (middle >> h)
    return high, (middle << h) | (ll & mask)


def subnormal_times(bits: Any, scale_bits: Any, fmt: Format) -> Any:
    """The bits of ``x * s`` rounded once to nearest even, for subnormal ``x`` and normal ``s >= 1``.

    ``bits`` are ``x``'s bits (exponent field 0, fraction ``m``: ``|x| = m * 2**(1-bias-F)``;
    ``m == 0``, a signed zero, gives that zero),
    ``scale_bits`` those of ``s = S * 2**e`` (``S`` its integer significand with the implicit
    bit, ``F + 1`` bits). The exact product ``m * S`` (two words) is shifted right by ``shift``
    bits with rounding, where ``shift`` keeps ``F + 1`` significant bits for a normal result
    and rounds to the subnormal quantum otherwise; then the bit pattern is
    ``(shift + e) << F`` plus the rounded significand: IEEE bit patterns of positive numbers
    are ordered like their values, so a significand rounded up to ``2**(F+1)`` carries into the
    exponent, and a subnormal result (exponent field 0) needs no case of its own. The result
    is at most ``2**(bias+1-F) * 2**-bias``: it cannot overflow.
    """
    w, f, uint = fmt.width, fmt.fraction, fmt.uint
    fraction_mask = uint((1 << f) - 1)
    sign = bits & uint(1 << (w - 1))
    m = bits & fraction_mask
    significand = (scale_bits & fraction_mask) | uint(1 << f)
    e = (scale_bits >> uint(f)).astype(jnp.int32) - np.int32(fmt.bias + f)  # s = S * 2**e, e >= -F
    high, low = mul_wide(m, significand, fmt)
    length = jnp.where(  # bit length of m * S
        high != 0, 2 * w - lax.clz(high).astype(jnp.int32), w - lax.clz(low).astype(jnp.int32)
    )
    shift = jnp.maximum(length - np.int32(f + 1), -e)  # in [-e, F]; negative only if e > 0
    right = jnp.clip(shift, 0, f).astype(uint)
    left = jnp.clip(-shift, 0, w - 1).astype(uint)
    # m * S >> right; high is 0 when right is 0, so its clipped shift is harmless then
    truncated = (low >> right) | (high << jnp.minimum(uint(w) - right, uint(w - 1)))
    rest = low & ((uint(1) << right) - uint(1))
    halfway = (uint(1) << right) >> uint(1)
    up = (right > 0) & ((rest > halfway) | ((rest == halfway) & ((truncated & uint(1)) == 1)))
    rounded = jnp.where(shift < 0, low << left, truncated + up.astype(uint))
    magnitude = ((shift + e).astype(uint) << uint(f)) + rounded
    return sign | jnp.where((high | low) != 0, magnitude, uint(0))  # m == 0: a signed zero


def times(xc: Any, scale: Any) -> Any:
    """``xc * scale`` in ``xc``'s dtype (float32 or float64), rounded once, exact for subnormal ``xc``."""
    fmt = FORMATS[xc.dtype.name]
    bits = lax.bitcast_convert_type(xc, fmt.uint)
    scale_bits = lax.bitcast_convert_type(jnp.asarray(scale, xc.dtype), fmt.uint)
    exponent_mask = fmt.uint(((1 << (fmt.width - 1)) - 1) ^ ((1 << fmt.fraction) - 1))
    # Zeros take the integer path too: the test is the exponent field alone. A test "and not
    # zero" on the bits (``bits << 1 != 0``) is rewritten by LLVM into ``x != 0.0``, which is
    # false for subnormals under denormals-are-zero: the integer path would never be taken.
    tiny = (bits & exponent_mask) == 0
    exact = lax.bitcast_convert_type(subnormal_times(bits, scale_bits, fmt), xc.dtype)
    return jnp.where(tiny, exact, xc * scale)


def bfloat16_times(x: Any, scale: Any) -> Any:
    """bfloat16 ``x * scale`` computed in float32 and rounded to bfloat16 (nearest even), exactly.

    Subnormal bfloat16 values are subnormal float32 values, so they take the integer path; the
    float32 bits are widened from, and rounded back to, bfloat16 bits by integer operations
    (no conversion instruction, which may flush subnormals, sees them).
    """
    bits16 = lax.bitcast_convert_type(x, jnp.uint16)
    bits = bits16.astype(jnp.uint32) << np.uint32(16)
    tiny = (bits16 & np.uint16(0x7F80)) == 0  # subnormals and zeros, as in :func:`times`
    scale_bits = lax.bitcast_convert_type(jnp.asarray(scale, jnp.float32), jnp.uint32)
    product = subnormal_times(bits, scale_bits, FORMATS["float32"])  # tiny: no carry into the sign
    lsb = (product >> np.uint32(16)) & np.uint32(1)
    exact16 = ((product + np.uint32(0x7FFF) + lsb) >> np.uint32(16)).astype(jnp.uint16)
    plain = (x.astype(jnp.float32) * scale).astype(jnp.bfloat16)
    return jnp.where(tiny, lax.bitcast_convert_type(exact16, jnp.bfloat16), plain)


def scaled(x: Any, scale: Any) -> Any:
    """A kept element's output: ``x * scale`` in the compute dtype, rounded back to ``x.dtype``.

    ``scale`` is ``1/(1-p)`` already rounded to the compute dtype (float32 for 16-bit ``x``).
    Bit-exact for every input, subnormals included, whether or not the device flushes them.
    """
    name = x.dtype.name
    if name == "bfloat16":
        return bfloat16_times(x, scale)
    if name == "float16":
        return (x.astype(jnp.float32) * scale).astype(x.dtype)
    return times(x, scale)
