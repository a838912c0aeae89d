"""Pure-Python reference dropout: the exact expected output of mask stream v1.

Values travel as Python floats; every rounding the spec prescribes (scale to the
compute dtype, product in the compute dtype, 16-bit results back to the input dtype,
all round-to-nearest-even) is done here in integer arithmetic, so no array library is
involved in deciding what is right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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
