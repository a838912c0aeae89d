"""Masks past 2**32 and 2**34 elements: 64-bit block indices and row starts, checked against the reference.

A jitted dropout of a huge array of ones, of which only a few elements are returned, goes
through the real code path (``unidrop.dropout`` -> the backend -> ``keep_bits``) with flat
indices of 2**34 and more. With the packed keep bits materialized (the default, which keeps
XLA from recomputing each Philox block four times) XLA computes all 2**32 blocks: about 95 s
and 4.2 GiB on 2 cores. With :data:`unidrop_jax.mask.MATERIALIZE` set to ``"none"`` (the same
values: the materializer is an identity) XLA computes only the returned elements: about 2 s
and 0.2 GiB per case, so CI runs these. Expected values come from ``unidrop.philox``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from unidrop_jax import keys, mask

import unidrop
from unidrop import arguments, philox, reference

SEED, STREAM, P = 20240917, 2**40 + 5, 0.5
#: The XLA path's 64-bit index arithmetic, and XLA computing only the returned elements.
pytestmark = pytest.mark.usefixtures("xla_path")


def reference_output(shape, region, dtype):
    """The reference output of ones of ``shape`` at the positions of ``region`` (a tuple of slices)."""
    axes = [range(*s.indices(n)) for s, n in zip(region, shape, strict=True)]
    kept_value = reference.scaled(1.0, dtype, P)
    out = np.empty([len(a) for a in axes])
    for position in np.ndindex(out.shape):
        index = 0
        for axis, (k, n) in enumerate(zip(position, shape, strict=True)):
            index = index * n + axes[axis][k]
        kept = philox.element_word(SEED, STREAM, index) >= arguments.threshold(P)
        out[position] = kept_value if kept else 0.0
    return out


# (shape, the region returned): indices >= 2**34 along a row (the block index within a row
# >= 2**32), unaligned rows starting past 2**34, and a leading mask axis of 2**32 + 1 rows.
CASES = [
    ((2**34 + 16,), (slice(-16, None),), "bfloat16"),
    ((3, 2**34 + 2), (slice(None), slice(-7, None)), "float32"),
    ((2**32 + 1, 4), (slice(-2, None), slice(None)), "float16"),
    ((2, 2**32 + 1, 4), (slice(None), slice(-1, None), slice(None)), "bfloat16"),
]


@pytest.fixture
def fresh_traces():
    """Module switches are read at trace time: trace anew, and leave no patched trace behind."""
    jax.clear_caches()
    yield
    jax.clear_caches()


@pytest.mark.parametrize(
    ("shape", "region", "dtype"), CASES, ids=["row-2^34", "unaligned-rows", "axis-2^32", "axis-2^32-3d"]
)
def test_jitted_dropout_of_a_huge_array_matches_the_reference(
    shape, region, dtype, monkeypatch, fresh_traces
):
    assert math.prod(shape) > 2**34
    monkeypatch.setattr(mask, "MATERIALIZE", "none")  # XLA then computes only the returned elements
    f = jax.jit(lambda: unidrop.dropout(jnp.ones(shape, dtype), P, seed=SEED, stream=STREAM)[region])
    got = np.asarray(f().astype(jnp.float32)).astype(np.float64)
    want = reference_output(shape, region, dtype)
    assert got.shape == want.shape
    assert np.array_equal(got, want)
    assert got.any() and not got.all()  # both outcomes occur, so a wrong index shows


@pytest.mark.parametrize("shape", [(7,), (64,), (5, 70), (3, 7, 5), (9, 129), (6, 8), (13, 4, 4)], ids=str)
def test_split_axis_counting_matches_the_reference_on_small_shapes(shape, monkeypatch, fresh_traces):
    """The two-iota count of long axes (:func:`unidrop_jax.mask.iota64`), forced on axes longer than 5."""
    monkeypatch.setattr(mask, "IOTA32_LIMIT", 5)
    monkeypatch.setattr(mask, "SPLIT_BITS", 2)  # axes padded to a multiple of 4, then sliced
    for seed, stream in [(0, 0), (2**40 + 5, 2**33 + 7)]:
        t = arguments.threshold(0.37)
        keep = jax.jit(lambda s, st, t=t: mask.keep_bits(shape, s, st, t, wide=True))(
            keys.from_int(seed), keys.from_int(stream)
        )
        assert list(np.asarray(keep).reshape(-1)) == reference.keep_bits(seed, stream, shape, 0.37)


def test_iota64_counts_past_2_pow_32_in_two_words(monkeypatch):
    monkeypatch.setattr(mask, "IOTA32_LIMIT", 3)
    monkeypatch.setattr(mask, "SPLIT_BITS", 2)
    low, high = mask.iota64((2, 11, 3), 1)
    assert low.shape == high.shape == (2, 11, 3)
    assert np.array_equal(
        np.asarray(low), np.broadcast_to(np.arange(11, dtype=np.uint32)[:, None], (2, 11, 3))
    )
    assert not np.asarray(high).any()
    # the high word: an axis of 2**32 + 3 elements, of which only the last few are computed
    monkeypatch.setattr(mask, "IOTA32_LIMIT", 2**32)
    monkeypatch.setattr(mask, "SPLIT_BITS", 16)
    low, high = jax.jit(lambda: tuple(w[-5:] for w in mask.iota64((2**32 + 3,), 0)))()
    assert [int(h) * 2**32 + int(lo) for lo, h in zip(np.asarray(low), np.asarray(high), strict=True)] == [
        2**32 + k for k in range(-2, 3)
    ]
