"""Pure-Python reference dropout: the exact expected output of mask stream v1.

Values travel as Python floats; every rounding the spec prescribes (scale to the
compute dtype, product in the compute dtype, 16-bit results back to the input dtype,
all round-to-nearest-even) is done here in integer arithmetic, so no array library is
involved in deciding what is right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from . import arguments
from .blocks import block_flat_indices, check_block
from .philox import element_word, stream_words

#: dtype -> (significant bits, exponent of the smallest subnormal, largest finite value)
FORMATS = {
    "float16": (11, -24, 65504.0),
    "bfloat16": (8, -133, 3.3895313892515355e38),
    "float32": (24, -149, 3.4028234663852886e38),
}


def round_to(value: float, dtype: str) -> float:
    """Round a float64 ``value`` to ``dtype`` once, to nearest even; overflow gives a signed inf."""
    if dtype == "float64" or not math.isfinite(value) or value == 0.0:
        return value
    bits, smallest_exponent, largest = FORMATS[dtype]
    exponent = math.frexp(value)[1]  # value = m * 2**exponent with 0.5 <= |m| < 1
    quantum = max(exponent - bits, smallest_exponent)  # the spacing of dtype's values near value
    rounded = math.ldexp(round(math.ldexp(value, -quantum)), quantum)  # round(): ties to even
    if abs(rounded) > largest:
        return math.copysign(math.inf, value)
    return math.copysign(rounded, value) if rounded == 0.0 else rounded


def spacing(value: float, dtype: str) -> float:
    """The distance between ``dtype``'s two values around finite ``value`` (subnormals included)."""
    bits, smallest_exponent, _ = FORMATS[dtype]
    exponent = math.frexp(value)[1] if value else smallest_exponent + bits
    return math.ldexp(1.0, max(exponent - bits, smallest_exponent))


def keep_bits(seed: int, stream: int, mask_shape: Sequence[int], p: float) -> list[bool]:
    """The keep decision for every element of the mask, in C order."""
    t = arguments.threshold(p)
    return [u >= t for u in stream_words(seed, stream, 0, math.prod(mask_shape))]


def scaled(value: float, dtype: str, p: float) -> float:
    """A kept element's output: ``value * s`` in the compute dtype, rounded back to ``dtype``.

    ``value`` is first rounded to ``dtype`` (the input as that dtype holds it). The product
    of two values of at most 24 significant bits is exact in float64, so rounding it once
    to the compute dtype is the compute dtype's own correctly rounded product.
    """
    compute = arguments.compute_dtype(dtype)
    s = round_to(arguments.scale(p), compute)
    product = round_to(round_to(value, dtype) * s, compute)
    return round_to(product, dtype)


def dropout(
    values: Sequence[float],
    shape: Sequence[int],
    dtype: str,
    p: float,
    seed: int,
    stream: int = 0,
    broadcast_dims: Sequence[int] = (),
    global_shape: Sequence[int] | None = None,
    offset: Sequence[int] | None = None,
) -> tuple[list[float], list[bool]]:
    """Reference output (C-order floats) and keep mask (C order, mask shape) for one request.

    With ``global_shape`` and ``offset``, the input is a block of that larger array and gets its
    slice of the global mask.
    """
    p = arguments.check_p(p)
    seed, stream = arguments.check_uint64(seed, "seed"), arguments.check_uint64(stream, "stream")
    shape = tuple(shape)
    dims = arguments.normalize_broadcast_dims(broadcast_dims, len(shape))
    mshape = arguments.mask_shape(shape, dims)
    block = check_block(shape, global_shape, offset, dims)
    if block is None:
        keep = keep_bits(seed, stream, mshape, p)
    else:
        t = arguments.threshold(p)
        keep = [element_word(seed, stream, index) >= t for index in block_flat_indices(block, mshape)]
    out = []
    for i, value in enumerate(values):
        kept = keep[flat_mask_index(i, shape, mshape)]
        out.append(scaled(value, dtype, p) if kept else 0.0)
    return out, keep


def flat_mask_index(flat_index: int, shape: Sequence[int], mshape: Sequence[int]) -> int:
    """The flat C-order index into the mask of the element at ``flat_index`` of ``shape``."""
    result = 0
    stride = 1
    for size, msize in zip(reversed(shape), reversed(mshape), strict=True):
        coordinate = flat_index % size
        flat_index //= size
        if msize != 1:
            result += coordinate * stride
        stride *= msize
    return result


# --- The dropout family (docs/spec.md, "The dropout family") -----------------------------------

SELU_ALPHA = arguments.SELU_ALPHA


def _mask_words(
    seed: int,
    stream: int,
    shape: tuple[int, ...],
    broadcast_dims: Sequence[int],
    global_shape: Sequence[int] | None,
    offset: Sequence[int] | None,
    pair: bool = False,
) -> tuple[tuple[int, ...], list[int]]:
    """``(mask shape, the global flat mask index of each mask element)``; with ``pair``, the indices
    of the words ``(u_{2i}, u_{2i+1})`` instead: a trailing axis of 2 on the (global) mask."""
    dims = arguments.normalize_broadcast_dims(broadcast_dims, len(shape))
    mshape = arguments.mask_shape(shape, dims)
    block = check_block(shape, global_shape, offset, dims)
    indices = list(range(math.prod(mshape))) if block is None else block_flat_indices(block, mshape)
    if pair:
        indices = [2 * i + lane for i in indices for lane in (0, 1)]
    return mshape, indices


def alpha_affine(p: float) -> tuple[float, float, float]:
    """Alpha dropout's ``(a, c, d)`` in float64: kept ``x * a + c``, dropped ``d``; zeros for p == 1.

    ``a = 1 / sqrt((SELU_ALPHA**2 p + 1)(1 - p))``, ``c = SELU_ALPHA a p``, ``d = -SELU_ALPHA a (1 - p)``.
    """
    if p == 1.0:
        return 0.0, 0.0, 0.0
    a = 1.0 / math.sqrt((SELU_ALPHA * SELU_ALPHA * p + 1.0) * (1.0 - p))
    return a, SELU_ALPHA * a * p, -SELU_ALPHA * a * (1.0 - p)


def alpha_dropout(
    values: Sequence[float],
    shape: Sequence[int],
    dtype: str,
    p: float,
    seed: int,
    stream: int = 0,
    broadcast_dims: Sequence[int] = (),
    global_shape: Sequence[int] | None = None,
    offset: Sequence[int] | None = None,
) -> tuple[list[tuple[float, float]], list[bool]]:
    """Reference alpha dropout: for each element the two allowed outputs, and the keep mask.

    A kept element is ``x * a + c`` in the compute dtype, rounded after the product and after
    the sum, or once after a fused multiply-add: both are allowed (they are equal for most
    elements). A dropped one is ``d`` (both entries equal). p == 1 gives +0 everywhere; p == 0 the
    input itself.
    """
    p = arguments.check_p(p)
    shape = tuple(shape)
    mshape, indices = _mask_words(seed, stream, shape, broadcast_dims, global_shape, offset)
    t = arguments.threshold(p)
    keep = [element_word(seed, stream, index) >= t for index in indices]
    compute = arguments.compute_dtype(dtype)
    a, c, d = (round_to(v, compute) for v in alpha_affine(p))
    dropped = round_to(d, dtype)
    out = []
    for i, value in enumerate(values):
        if not keep[flat_mask_index(i, shape, mshape)]:
            out.append((dropped, dropped))
            continue
        x = round_to(value, dtype)
        if p == 0.0:  # the input itself, as alpha_dropout returns it (-0 stays -0)
            out.append((x, x))
            continue
        if not math.isfinite(x):
            result = x * a + c  # inf or NaN, as the array arithmetic gives it
            out.append((round_to(result, dtype), round_to(result, dtype)))
            continue
        twice = round_to(round_to(round_to(x * a, compute) + c, compute), dtype)
        exact = fractions_sum(x, a, c)
        once = round_to(round_to(exact, compute), dtype)
        out.append((twice, once))
    return out, keep


def fractions_sum(x: float, a: float, c: float) -> float:
    """``x * a + c`` rounded once to float64 (exact rational arithmetic, then one rounding); a
    signed inf where that rounding overflows."""
    exact = Fraction(x) * Fraction(a) + Fraction(c)
    try:
        return float(exact)
    except OverflowError:  # past float64's largest value once rounded
        return math.inf if exact > 0 else -math.inf


def drop_path(
    values: Sequence[float],
    shape: Sequence[int],
    dtype: str,
    p: float,
    seed: int,
    stream: int = 0,
    scale_by_keep: bool = True,
    global_shape: Sequence[int] | None = None,
    offset: Sequence[int] | None = None,
) -> tuple[list[float], list[bool]]:
    """Reference drop path: dropout with every axis but the first broadcast; unscaled if not
    ``scale_by_keep`` (kept elements are the input as ``dtype`` holds it)."""
    dims = tuple(range(1, len(shape)))
    if scale_by_keep:
        return dropout(values, shape, dtype, p, seed, stream, dims, global_shape, offset)
    shape = tuple(shape)
    mshape, indices = _mask_words(seed, stream, shape, dims, global_shape, offset)
    t = arguments.threshold(arguments.check_p(p))
    keep = [element_word(seed, stream, index) >= t for index in indices]
    out = [
        round_to(value, dtype) if keep[flat_mask_index(i, shape, mshape)] else 0.0
        for i, value in enumerate(values)
    ]
    return out, keep


def gaussian_normals(
    seed: int,
    stream: int,
    shape: Sequence[int],
    broadcast_dims: Sequence[int] = (),
    global_shape: Sequence[int] | None = None,
    offset: Sequence[int] | None = None,
) -> tuple[list[float], list[float]]:
    """``(z, r)`` per mask element in float64: the Box-Muller normal and its radius ``sqrt(-2 ln u1)``.

    Element i uses the words ``w1 = u_{2i}``, ``w2 = u_{2i+1}``; ``u1 = ((w1 >> 8) + 1) 2**-24``,
    ``u2 = (w2 >> 8) 2**-24``, ``z = r cos(2 pi u2)``.
    """
    _, indices = _mask_words(seed, stream, tuple(shape), broadcast_dims, global_shape, offset, pair=True)
    words = [element_word(seed, stream, index) for index in indices]
    zs, rs = [], []
    for w1, w2 in zip(words[0::2], words[1::2], strict=True):
        u1 = ((w1 >> 8) + 1) * 2.0**-24
        u2 = (w2 >> 8) * 2.0**-24
        r = math.sqrt(-2.0 * math.log(u1))
        zs.append(r * math.cos(2.0 * math.pi * u2))
        rs.append(r)
    return zs, rs


def gaussian_dropout(
    values: Sequence[float],
    shape: Sequence[int],
    dtype: str,
    p: float,
    seed: int,
    stream: int = 0,
    broadcast_dims: Sequence[int] = (),
    global_shape: Sequence[int] | None = None,
    offset: Sequence[int] | None = None,
) -> tuple[list[float], list[float]]:
    """Reference Gaussian dropout in float64: ``(y, bound)`` per element.

    ``y = x (1 + sigma z)`` with ``sigma = sqrt(p / (1 - p))``; ``bound`` is the documented
    tolerance ``GAUSSIAN_ULPS * eps * |x| (1 + sigma r)`` (eps of the compute dtype), plus one
    spacing of ``dtype`` at ``y``: the final rounding, which for a result among the subnormals
    is no relative error at all.
    """
    p = arguments.check_p(p)
    shape = tuple(shape)
    dims = arguments.normalize_broadcast_dims(broadcast_dims, len(shape))
    mshape = arguments.mask_shape(shape, dims)
    zs, rs = gaussian_normals(seed, stream, shape, broadcast_dims, global_shape, offset)
    sigma = math.sqrt(p / (1.0 - p))
    eps = EPSILON[arguments.compute_dtype(dtype)]
    out, bounds = [], []
    for i, value in enumerate(values):
        j = flat_mask_index(i, shape, mshape)
        x = round_to(value, dtype)
        y = x * (1.0 + sigma * zs[j])
        bound = GAUSSIAN_ULPS * eps * abs(x) * (1.0 + sigma * rs[j])
        if math.isfinite(y):
            bound += math.ulp(y) if dtype == "float64" else spacing(y, dtype)
        y, bound = _overflowed(y, bound, dtype)
        out.append(y)
        bounds.append(bound)
    return out, bounds


def _overflowed(y: float, bound: float, dtype: str) -> tuple[float, float]:
    """``(y, bound)`` past ``dtype``'s range: a signed inf (matched exactly) where every value within
    the bound rounds to it, an unbounded tolerance where only some do, ``(y, bound)`` otherwise."""
    if dtype not in FORMATS or not math.isfinite(y):
        return y, bound
    bits, _, largest = FORMATS[dtype]
    limit = largest + math.ldexp(1.0, math.frexp(largest)[1] - bits - 1)  # rounds to inf from here
    if abs(y) - bound >= limit:
        return math.copysign(math.inf, y), 0.0
    if abs(y) + bound >= limit:
        return y, math.inf
    return y, bound


#: The spacing of each dtype's values at 1 (2**(1 - significant bits)).
EPSILON = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}
#: Gaussian dropout's documented bound, in units of the compute dtype's epsilon (docs/spec.md).
GAUSSIAN_ULPS = 32
