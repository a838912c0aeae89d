"""Expected results from the pure-Python reference, for inputs too large to compute whole.

Elements at sampled flat indices of arrays of millions of elements (around chunk and tile
edges), every bit pattern of a 16-bit dtype, and extreme values. Everything here comes from
:mod:`unidrop.reference` and :mod:`unidrop.philox`, never from a backend; results that several
checks share are cached.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np

from unidrop import arguments, reference
from unidrop.philox import element_word, stream_words

#: Chunk and tile sizes that backends use or may use: checks sample elements around their multiples.
EDGE_STRIDES = (1 << 16, 1 << 18, 1 << 20)
#: The smallest normal value of each dtype: nonzero finite values below it are subnormal.
SMALLEST_NORMAL = {"float16": 2.0**-14, "bfloat16": 2.0**-126, "float32": 2.0**-126, "float64": 2.0**-1022}


def edge_indices(size: int, spread: int = 4, ends: int = 8) -> list[int]:
    """Flat indices in [0, size): each multiple of :data:`EDGE_STRIDES` ± ``spread``, and the first
    and last ``ends`` indices."""
    wanted = set(range(min(size, ends))) | set(range(max(0, size - ends), size))
    for stride in EDGE_STRIDES:
        for edge in range(stride, size + spread + 1, stride):
            wanted.update(range(max(0, edge - spread), min(size, edge + spread + 1)))
    return sorted(wanted)


def expected_at(
    indices: Sequence[int],
    value_of: Callable[[int], float],
    shape: tuple[int, ...],
    dtype: str,
    p: float,
    seed: int,
    stream: int,
    broadcast_dims: tuple[int, ...] = (),
) -> list[float]:
    """The reference's outputs at flat C-order ``indices`` of an input whose element i is ``value_of(i)``."""
    dims = arguments.normalize_broadcast_dims(broadcast_dims, len(shape))
    mshape = arguments.mask_shape(shape, dims)
    t = arguments.threshold(p)
    out = []
    for i in indices:
        kept = element_word(seed, stream, reference.flat_mask_index(i, shape, mshape)) >= t
        out.append(reference.scaled(value_of(i), dtype, p) if kept else 0.0)
    return out


def keep_at(indices: Sequence[int], p: float, seed: int, stream: int) -> list[bool]:
    """The reference's keep bits at flat C-order mask ``indices``."""
    t = arguments.threshold(p)
    return [element_word(seed, stream, i) >= t for i in indices]


def is_subnormal(values: np.ndarray, dtype: str) -> np.ndarray:
    """Where ``values`` (float64 holding ``dtype`` values) are subnormal in ``dtype``."""
    magnitude = np.abs(values)
    return (magnitude > 0) & (magnitude < SMALLEST_NORMAL[dtype])


@functools.cache
def sixteen_bit_patterns(dtype: str) -> np.ndarray:
    """All 65536 values of ``dtype`` (``float16`` or ``bfloat16``), bit pattern i at index i, as float64."""
    bits = np.arange(1 << 16, dtype=np.uint32)
    with np.errstate(invalid="ignore"):  # signalling NaN patterns convert to NaN, as wanted
        if dtype == "float16":
            values = bits.astype(np.uint16).view(np.float16).astype(np.float64)
        elif dtype == "bfloat16":  # a bfloat16 is the upper half of a float32
            values = (bits << 16).view(np.float32).astype(np.float64)
        else:
            raise ValueError(f"dtype must be float16 or bfloat16, got {dtype!r}")
    values.flags.writeable = False  # shared between checks through the cache
    return values


@functools.cache
def words(seed: int, stream: int, count: int) -> tuple[int, ...]:
    """The words u_0 .. u_{count-1} of the mask stream (cached)."""
    return tuple(stream_words(seed, stream, 0, count))


def reference_outputs(
    values: np.ndarray, dtype: str, p: float, seed: int, stream: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(outputs, keep)`` of the reference for a 1-D input of ``values`` (float64, exact in ``dtype``)."""
    t = arguments.threshold(p)
    keep = np.array(words(seed, stream, len(values))) >= t
    pairs = zip(values.tolist(), keep.tolist(), strict=True)
    out = [reference.scaled(v, dtype, p) if k else 0.0 for v, k in pairs]
    return np.array(out, dtype=np.float64), keep


@functools.cache
def pattern_outputs(dtype: str, p: float, seed: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`reference_outputs` for :func:`sixteen_bit_patterns` (cached, so read-only arrays)."""
    outputs, keep = reference_outputs(sixteen_bit_patterns(dtype), dtype, p, seed, stream)
    outputs.flags.writeable = keep.flags.writeable = False
    return outputs, keep


def largest_finite(dtype: str) -> float:
    """The largest finite value of ``dtype``."""
    if dtype == "float64":
        return float(np.finfo(np.float64).max)
    return reference.FORMATS[dtype][2]


def extreme_values(dtype: str) -> np.ndarray:
    """Values whose products overflow or sit at the edge of it, signed zeros, Inf and NaN, exact in ``dtype``.

    Each value is given at both signs; the products of the largest ones overflow to Inf for
    every p > 0, those of ``largest / 2`` for p >= 1/2 and those just under it for some p.
    """
    big = largest_finite(dtype)
    step = math.ulp(big) if dtype == "float64" else 2.0 ** (math.frexp(big)[1] - reference.FORMATS[dtype][0])
    magnitudes = [big, big - step, big / 2, big / 2 + step, big / 1.5, 1.0, 0.0, math.inf]
    values = [m for m in magnitudes] + [-m for m in magnitudes] + [math.nan]
    return np.array([reference.round_to(v, dtype) for v in values])


def subnormal_values(dtype: str) -> np.ndarray:
    """Subnormal values of ``dtype`` at both signs, as float64: every one of a 16-bit dtype; for
    float32 and float64 the smallest, the largest, those around the middle, and 200 drawn with a
    fixed seed."""
    if dtype in ("float16", "bfloat16"):
        patterns = sixteen_bit_patterns(dtype)
        return patterns[is_subnormal(patterns, dtype)]
    fraction_bits, view = (23, np.float32) if dtype == "float32" else (52, np.float64)
    top = 1 << fraction_bits
    chosen = [1, 2, 3, top - 1, top // 2 - 1, top // 2, top // 2 + 1]
    chosen += np.random.default_rng(20240601).integers(1, top, 200).tolist()
    unsigned = np.uint32 if dtype == "float32" else np.uint64
    positive = np.array(chosen, dtype=unsigned).view(view).astype(np.float64)
    return np.concatenate([positive, -positive])
