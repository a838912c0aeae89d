"""Counter and index arithmetic for masks of 2^32, 2^34 and more elements, without such arrays.

Philox words of a run of mask indices, the block a chunk starts at, and the mask index of a row are
what the backend computes for any size; each is checked here at indices near 2^32, 2^34 (where
the block counter's high word starts), 2^40 and 2^63 against unidrop.philox and unidrop.reference.
"""

from __future__ import annotations

import itertools
import math

import pytest
from unidrop_numpy import chunked
from unidrop_numpy.chunked import block_count, blocks, mask_index_of_row
from unidrop_numpy.philox_arrays import PhiloxWorkspace

from unidrop import arguments, philox, reference

#: First mask indices of runs: each side of 2^32 (block 2^30), of 2^34 (block 2^32: the counter's
#: second word becomes 1), of 2^40, and up to the largest flat index a NumPy array can have.
STARTS = [
    2**32 - 7,
    2**32,
    2**34 - 37,  # a run across block 2^32
    2**34 - 4,
    2**34,
    2**34 + 3,
    2**35 - 10,
    2**40 - 5,
    2**40 + 1,
    2**62 + 2,
    2**63 - 64,  # up to index 2^63 - 1
]


@pytest.mark.parametrize("start", STARTS)
def test_words_at_large_indices(start: int) -> None:
    workspace = PhiloxWorkspace(20)
    for seed, stream in [(0, 0), (2**64 - 1, 2**64 - 1), (0x1234_5678_9ABC_DEF0, 2**32 + 7)]:
        expected = list(philox.stream_words(seed, stream, start, 64))
        assert workspace.words(seed, stream, start, 64).tolist() == expected


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("itemsize", [2, 4, 8])
def test_keep_masks_at_large_indices(start: int, itemsize: int) -> None:
    workspace = PhiloxWorkspace(20)
    t = arguments.threshold(0.5)
    ones = (1 << (8 * itemsize)) - 1
    expected = [ones if u >= t else 0 for u in philox.stream_words(77, 5, start, 64)]
    assert workspace.keep_masks(77, 5, start, 64, t, itemsize).tolist() == expected


def test_last_block_of_a_mask_of_2_to_the_34_plus_16_elements() -> None:
    """A 1-D array of 2^34 + 16 elements: its blocks end at the last element, whose words are right."""
    n = 2**34 + 16
    assert block_count((n,)) == math.ceil(n / chunked.CHUNK)
    *_, (index, mstart, mcount, mblock) = blocks((n,), (n,))
    assert index == (slice(mstart, n),) and mstart + mcount == n and mblock == (mcount,)
    workspace = PhiloxWorkspace(mcount // 4 + 2)
    t = arguments.threshold(0.5)
    masks = workspace.keep_masks(3, 0, mstart, mcount, t, 2)[-16:]
    assert masks.tolist() == [0xFFFF if u >= t else 0 for u in philox.stream_words(3, 0, n - 16, 16)]


@pytest.mark.parametrize(
    ("shape", "mshape"),
    [
        ((2**32 + 3, 2), (2**32 + 3, 2)),  # a leading axis of 2^32 + 3
        ((2**32 + 3, 2), (2**32 + 3, 1)),
        ((3, 2**32 + 5, 2), (1, 2**32 + 5, 2)),
        ((2, 2**34 + 1), (2, 2**34 + 1)),  # rows of more than 2^34 elements
    ],
)
def test_blocks_of_axes_longer_than_2_to_the_32(shape: tuple[int, ...], mshape: tuple[int, ...]) -> None:
    """Every block starts at the reference's mask index and blocks tile the array in C order."""
    chunk = 2**20
    next_flat, seen = 0, 0
    for index, mstart, mcount, mblock in blocks(shape, mshape, chunk):
        outer, rows = index[:-1], index[-1]
        inner = math.prod(shape[len(index) :])
        first = sum(i * math.prod(shape[a + 1 :]) for a, i in enumerate(outer)) + rows.start * inner
        assert first == next_flat
        next_flat += (rows.stop - rows.start) * inner
        assert mstart == reference.flat_mask_index(first, shape, mshape)
        assert mcount == math.prod(mblock)
        seen += 1
    assert next_flat == math.prod(shape) and seen == block_count(shape, chunk)


@pytest.mark.parametrize(
    ("outer", "mshape"),
    [
        ((2**32 + 1,), (2**33, 3, 5)),
        ((7, 2**32 - 1), (9, 2**32, 4)),
        ((7, 2**32 - 1), (1, 2**32, 4)),  # a broadcast leading axis
        ((2**40 - 2, 1), (2**40, 1, 2**20)),  # a broadcast middle axis; index about 2^60
        ((3, 2**31, 2**20 - 1), (4, 2**32, 2**20, 2)),  # index beyond 2^63 (a mask shape, not an array)
    ],
)
def test_mask_index_of_rows_far_along_long_axes(outer: tuple[int, ...], mshape: tuple[int, ...]) -> None:
    shape = tuple(max(o + 1, m) for o, m in itertools.zip_longest(outer, mshape, fillvalue=0))
    flat = sum(i * math.prod(shape[a + 1 :]) for a, i in enumerate(outer))
    assert mask_index_of_row(outer, mshape) == reference.flat_mask_index(flat, shape, mshape)
