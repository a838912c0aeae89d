"""A kept element's value, ``x * s`` rounded as mask stream v1 says, exact for subnormals too.

XLA:CPU runs its programs with denormals-are-zero and flush-to-zero (for float32 and float64
alike; bfloat16 is computed in float32), so the plain product ``x * s`` is 0 for every subnormal
``x``. The spec's ``s = 1/(1-p)`` is at least 1, so a normal ``x`` never gives a subnormal
product and only subnormal inputs need care: :func:`tiny_times` multiplies their integer
significand (a normal number) by ``s``, rounds the result to the subnormal grid itself, with
the exact sign of the first rounding's error taken from integer arithmetic on the
significands, and rebuilds the bit pattern. A ``jnp.where`` on the exponent field (0 for
subnormals and zeros) selects it; every operation is elementwise, so XLA fuses it into the
dropout kernel. No subnormal ever reaches the floating-point unit, so the result is the same
whether or not a device flushes them (XLA:GPU's ``--xla_gpu_ftz``, Triton's kernels).

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
    """An IEEE binary format: its float and unsigned integer types, bit width and fraction bits."""

    float: Any
    uint: Any
    sint: Any
    width: int
    fraction: int

    @property
    def bias(self) -> int:
        return (1 << (self.width - self.fraction - 2)) - 1


FORMATS = {
    "float32": Format(jnp.float32, jnp.uint32, jnp.int32, 32, 23),
    "float64": Format(jnp.float64, jnp.uint64, jnp.int64, 64, 52),
}


def scalar_and_bits(scale: Any, fmt: Format) -> tuple[Any, Any]:
    """``scale`` as a scalar of ``fmt`` and its bits: NumPy values for a concrete scale (Pallas's
    Triton lowering cannot bitcast a constant), traced ones otherwise."""
    if isinstance(scale, (np.ndarray, np.generic, float)):
        value = np.asarray(scale, fmt.float)
        return value[()], value.view(fmt.uint)[()]
    value = jnp.asarray(scale, fmt.float)
    return value, lax.bitcast_convert_type(value, fmt.uint)


def tiny_times(bits: Any, scale: Any, fmt: Format) -> Any:
    """The bits of ``x * scale`` rounded once to nearest even, for subnormal or zero ``x``.

    ``bits`` are ``x``'s bits (exponent field 0, fraction ``m``: ``|x| = m * 2**(1-bias-F)``),
    ``scale`` is normal and at least 1. Only normal numbers meet the floating-point unit:
    ``q = m * scale``, rounded to F + 1 significant bits. A normal result is ``q`` scaled by
    ``2**(1-bias-F)``, i.e. its exponent field less ``bias + F - 1``. A subnormal result
    (``q < 2**F``) is ``m * scale`` rounded to an integer, which is its bit pattern; ``q``'s
    first rounding matters only when ``q`` lies exactly halfway between two integers, and
    then the sign of the exact error ``m * scale - q`` decides. That error is an integer in
    units of ``scale``'s last place, small (below ``2**(F-1)``), so it is exact in wrapping
    integer arithmetic on the significands.
    """
    uint, f = fmt.uint, fmt.fraction
    fraction_mask = uint((1 << f) - 1)
    implicit = uint(1 << f)
    m = bits & fraction_mask
    scale, scale_bits = scalar_and_bits(scale, fmt)
    q = m.astype(fmt.float) * scale  # exact conversion (m < 2**F); q normal or 0
    q_bits = lax.bitcast_convert_type(q, uint)
    large = q_bits - uint((fmt.bias + f - 1) << f)
    shift = ((q_bits >> uint(f)) - (scale_bits >> uint(f))) & uint(fmt.width - 1)  # q >= scale
    error = (
        m * ((scale_bits & fraction_mask) | implicit) - (((q_bits & fraction_mask) | implicit) << shift)
    ).astype(fmt.sint)
    below = lax.floor(q)  # lax.round is not lowered by Pallas's Triton backend: floor, then round
    fraction = q - below  # exact
    whole = below.astype(uint)  # any value where q >= 2**F (unused there)
    tie_up = (error > 0) | ((error == 0) & ((whole & uint(1)) == 1))  # halfway: the exact error decides
    up = jnp.where(fraction == 0.5, tie_up, fraction > 0.5)
    magnitude = jnp.where(q < 2.0**f, whole + up.astype(uint), large)
    return (bits & uint(1 << (fmt.width - 1))) | magnitude


def times(xc: Any, scale: Any) -> Any:
    """``xc * scale`` in ``xc``'s dtype (float32 or float64), rounded once, exact for subnormal ``xc``."""
    fmt = FORMATS[xc.dtype.name]
    bits = lax.bitcast_convert_type(xc, fmt.uint)
    exponent_mask = fmt.uint(((1 << (fmt.width - 1)) - 1) ^ ((1 << fmt.fraction) - 1))
    # Zeros take the exact path too: the test is the exponent field alone. A test "and not
    # zero" on the bits (``bits << 1 != 0``) is rewritten by LLVM into ``x != 0.0``, which is
    # false for subnormals under denormals-are-zero: the exact path would never be taken.
    tiny = (bits & exponent_mask) == 0
    exact = lax.bitcast_convert_type(tiny_times(bits, scale, fmt), xc.dtype)
    return jnp.where(tiny, exact, xc * scale)


def bfloat16_times(x: Any, scale: Any) -> Any:
    """bfloat16 ``x * scale`` computed in float32 and rounded to bfloat16 (nearest even), exactly.

    Subnormal bfloat16 values are subnormal float32 values, so they take the exact path; the
    float32 bits are widened from, and rounded back to, bfloat16 bits by integer operations
    (no conversion instruction, which may flush subnormals, sees them).
    """
    bits16 = lax.bitcast_convert_type(x, jnp.uint16)
    bits = bits16.astype(jnp.uint32) << np.uint32(16)
    tiny = (bits16 & np.uint16(0x7F80)) == 0  # subnormals and zeros, as in :func:`times`
    product = tiny_times(bits, scale, FORMATS["float32"])  # tiny: no carry into the sign
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


def linear_scaled(x: Any, scale: Any) -> Any:
    """:func:`scaled` by one floating-point multiply: linear in ``x``, so JAX can transpose it.

    The same bits as :func:`scaled` for every ``x`` whose scaled value is computed without
    subnormals; where the device flushes them (XLA:CPU), a subnormal float32, bfloat16 or
    float64 ``x`` gives a signed zero. Tangents and cotangents use it: the exact form reads
    ``x``'s bits, which is not a linear operation.
    """
    return (x.astype(scale.dtype) * scale).astype(x.dtype)


def kept_values(x: Any, scale: Any, linear: bool) -> Any:
    """Every element's kept value, for XLA's dropout programs: :func:`scaled`, or with ``linear``
    (tangents and cotangents) :func:`linear_scaled`, of ``x`` behind an optimization barrier.

    The barrier keeps XLA's algebraic simplifier from folding a constant factor of ``x``'s own
    producer into the scale: under ``jit``, ``dropout(x * 3)`` would otherwise become
    ``x * (3 * s)``, one rounding where the spec has two (float32, bfloat16 and float64 alike).
    XLA:CPU drops the barrier after simplification and before fusion, so the fusions are
    unchanged. (Not for Pallas kernels, whose inputs are loaded from memory.)
    """
    x = lax.optimization_barrier(x)
    return linear_scaled(x, scale) if linear else scaled(x, scale)
