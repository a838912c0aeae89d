"""Blocks of a global mask: a block at offset O of a global shape G gets exactly its slice of the
global mask (``dropout(x, p, global_shape=G, offset=O)``, docs/spec.md "Blocks of a global mask").

Random blocks of random global shapes (empty and size-1 ones, broadcast_dims across block
boundaries) equal the reference's and slices of the backend's own whole-array result; a grid of
blocks reassembles the whole array; a large block that does not span the trailing axes is checked
element by element against the stream at sampled indices; bad ``global_shape``/``offset`` are
refused with the core's errors; evaluation and ``p == 0`` return ``x`` itself. A backend that does
not implement blocks (``Implementation.supports_blocks`` False) fails every check here, saying so.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from unidrop import arguments, reference
from unidrop.blocks import check_block
from unidrop.philox import element_word

from .helpers import SuitePart, assert_same_floats, keep_string, sample_values

UINT64 = st.integers(0, (1 << 64) - 1)
#: The large block check: a block of LARGE_BLOCK at LARGE_OFFSET in LARGE_GLOBAL (float32), past a
#: million elements, rows not whole (runs of 1029 of 1031), starting at a global index that is not a
#: multiple of 4, and the elements sampled against the stream.
LARGE_GLOBAL, LARGE_BLOCK, LARGE_OFFSET = (3, 1001, 1031), (2, 999, 1029), (1, 1, 1)
SAMPLES = 4000
#: Blocks far out in huge global arrays, whose Philox block counters (global index // 4) have a
#: non-zero high word, up to the last element of a 2**64-element mask: (global shape, block, offset).
FAR_BLOCKS = [
    ((1 << 40,), (13,), ((1 << 36) + 6,)),
    ((3, 1 << 35), (2, 5), (1, (1 << 35) - 5)),
    (((1 << 62) + 8,), (6,), ((1 << 62) - 3,)),
    ((1 << 64,), (7,), ((1 << 64) - 7,)),
]
#: (global shape, cut points per axis, broadcast_dims) of the grid check: the blocks between the cut
#: points tile the whole array.
GRIDS = [
    ((10,), ([0, 3, 4, 4, 10],), ()),
    ((5, 7), ([0, 2, 5], [0, 1, 7]), ()),
    ((4, 6, 5), ([0, 1, 4], [0, 3, 6], [0, 2, 5]), (1,)),
    ((3, 4, 9), ([0, 3], [0, 2, 4], [0, 4, 9]), (0, 2)),
]


class BlockChecks(SuitePart):
    """Blocks of a global mask: each block gets its slice of the whole array's mask."""

    def require_blocks(self) -> None:
        """Fail (not skip) unless the backend declares blocks: the contract requires them."""
        made = self.backend.implementation()
        if not getattr(made, "supports_blocks", False):
            raise AssertionError(
                f"the {self.adapter.name} backend does not implement blocks of a global mask "
                f"({type(made).__name__}.supports_blocks is False): dropout(x, p, global_shape=G, "
                "offset=O) must give x its slice of the global mask (docs/spec.md, 'Blocks of a "
                "global mask'); implement plan.block and set supports_blocks = True"
            )

    def check_block(
        self,
        global_shape: tuple[int, ...],
        shape: tuple[int, ...],
        offset: tuple[int, ...],
        dtype: str,
        p: float,
        seed: int,
        stream: int,
        dims: tuple[int, ...],
        device: str | None = None,
    ) -> None:
        """One block: its output and mask equal the reference's, and slices of the whole array's."""
        context = (
            f"block of shape {shape} at offset {offset} of global_shape {global_shape}, dtype={dtype} "
            f"p={p} seed={seed} stream={stream} dims={dims}"
        )
        whole_values = sample_values(global_shape, dtype, len(global_shape))
        where = tuple(slice(o, o + n) for o, n in zip(offset, shape, strict=True))
        values = np.array(whole_values[where])  # a C-contiguous copy (0-d stays 0-d)
        x = self.make(values, dtype, device)
        kwargs: dict[str, Any] = {"seed": seed, "stream": stream, "broadcast_dims": dims}
        y, keep = self.dropout(x, p, global_shape=global_shape, offset=offset, return_mask=True, **kwargs)
        expected, expected_keep = reference.dropout(
            values.reshape(-1).tolist(), shape, dtype, p, seed, stream, dims, global_shape, offset
        )
        assert self.adapter.shape_and_dtype(y) == (shape, dtype), context
        mask_shape = arguments.DropoutPlan.build(shape, dtype, p, seed, stream, dims).mask_shape
        got_keep = self.read(keep)
        assert tuple(got_keep.shape) == mask_shape, f"{context}: mask shape"
        want_keep = keep_string(np.array(expected_keep, dtype=bool))
        assert keep_string(got_keep) == want_keep, f"{context}: the block's mask is not its slice"
        assert_same_floats(self.read(y), np.array(expected, dtype=np.float64), context)
        # and the slice of the backend's own result for the whole array
        whole_y, whole_keep = self.dropout(
            self.make(whole_values, dtype, device), p, return_mask=True, **kwargs
        )
        mask_where = tuple(
            slice(0, 1) if axis in arguments.normalize_broadcast_dims(dims, len(shape)) else part
            for axis, part in enumerate(where)
        )
        assert keep_string(got_keep) == keep_string(self.read(whole_keep)[mask_where]), (
            f"{context}: differs from the slice of the whole array's mask"
        )
        assert_same_floats(self.read(y), self.read(whole_y)[where], f"{context} (whole array's slice)")

    @given(data=st.data())
    def test_random_blocks_are_slices_of_the_global_mask(self, data: st.DataObject) -> None:
        """Random blocks (mostly inside, also whole, size 1 or empty) of random global shapes, with
        broadcast_dims (never all axes: then every block has the same mask)."""
        self.require_blocks()
        ndim = data.draw(st.integers(1, 4), label="ndim")
        global_shape = tuple(data.draw(st.lists(st.integers(1, 7), min_size=ndim, max_size=ndim), label="G"))
        corners = [
            sorted(data.draw(st.lists(st.integers(0, size), min_size=2, max_size=2), label=f"axis{axis}"))
            for axis, size in enumerate(global_shape)
        ]
        if data.draw(st.integers(0, 9), label="may be empty") < 9:  # one in ten may be empty
            corners = [[a, b] if b > a else ([a - 1, b] if a else [a, b + 1]) for a, b in corners]
        offset = tuple(a for a, _ in corners)
        shape = tuple(b - a for a, b in corners)
        dtype = data.draw(st.sampled_from(self.float_dtypes), label="dtype")
        p = data.draw(st.sampled_from([0.1, 0.5, 0.9]) | st.floats(0.01, 0.99), label="p")
        seed = data.draw(st.integers(0, 3) | UINT64, label="seed")
        stream = data.draw(st.just(0) | UINT64, label="stream")
        dims = data.draw(st.sets(st.integers(0, ndim - 1), max_size=ndim - 1), label="dims")
        self.check_block(global_shape, shape, offset, dtype, p, seed, stream, tuple(sorted(dims)))

    @pytest.mark.parametrize(
        ("global_shape", "shape", "offset", "dims"),
        [
            ((37,), (11,), (13,), ()),
            ((6, 9), (3, 4), (2, 5), ()),
            ((6, 9), (1, 1), (5, 8), ()),
            ((6, 9), (0, 4), (6, 5), ()),
            ((5, 4, 33), (2, 4, 33), (3, 0, 0), ()),
            ((5, 4, 33), (2, 3, 7), (1, 1, 26), (1,)),
            ((2, 7, 5, 3), (2, 2, 5, 3), (0, 4, 0, 0), (0, 3)),
            ((), (), (), ()),
        ],
    )
    def test_blocks_on_every_device(
        self,
        global_shape: tuple[int, ...],
        shape: tuple[int, ...],
        offset: tuple[int, ...],
        dims: tuple[int, ...],
        unidrop_device: str,
        unidrop_dtype: str,
    ) -> None:
        """Fixed blocks on every device and dtype the backend declares."""
        self.require_blocks()
        seed, stream = (1 << 63) + 12345, (1 << 32) + 3
        self.check_block(global_shape, shape, offset, unidrop_dtype, 0.4, seed, stream, dims, unidrop_device)

    @pytest.mark.parametrize(("global_shape", "cuts", "dims"), GRIDS, ids=lambda v: str(v).replace(" ", ""))
    def test_a_grid_of_blocks_reassembles_the_whole(
        self, global_shape: tuple[int, ...], cuts: tuple[list[int], ...], dims: tuple[int, ...]
    ) -> None:
        """Blocks cut at uneven points, each computed alone, put together equal the whole array."""
        self.require_blocks()
        values = sample_values(global_shape, "float32", 5)
        whole_y, whole_keep = self.dropout(
            self.make(values, "float32"), 0.5, seed=99, stream=1, broadcast_dims=dims, return_mask=True
        )
        whole_y, whole_keep = self.read(whole_y), self.read(whole_keep)
        got = np.full(global_shape, np.nan)
        for corner in itertools.product(*(itertools.pairwise(c) for c in cuts)):
            where = tuple(slice(a, b) for a, b in corner)
            offset = tuple(a for a, _ in corner)
            block = np.array(values[where])
            y, keep = self.dropout(
                self.make(block, "float32"), 0.5, seed=99, stream=1, broadcast_dims=dims,
                global_shape=global_shape, offset=offset, return_mask=True,
            )  # fmt: skip
            got[where] = self.read(y)
            mask_where = tuple(slice(0, 1) if axis in dims else part for axis, part in enumerate(where))
            context = f"block {where} of {global_shape}, dims={dims}"
            assert keep_string(self.read(keep)) == keep_string(whole_keep[mask_where]), context
        assert_same_floats(got, whole_y, f"the blocks of {global_shape} put together, dims={dims}")

    def test_a_large_block_matches_the_stream_at_sampled_elements(self) -> None:
        """A block of two million elements whose rows are not whole, checked against the stream."""
        self.require_blocks()
        seed, stream, p = 0x9E3779B97F4A7C15, (1 << 32) + 7, 0.5
        x = self.make(np.ones(LARGE_BLOCK), "float32")
        y, keep = self.dropout(
            x, p, seed=seed, stream=stream, global_shape=LARGE_GLOBAL, offset=LARGE_OFFSET, return_mask=True
        )
        got_keep, got_y = self.read(keep).reshape(-1), self.read(y).reshape(-1)
        rng = np.random.default_rng(3)
        n = math.prod(LARGE_BLOCK)
        picks = sorted({0, n - 1, *LARGE_BLOCK[2:3], *rng.integers(0, n, SAMPLES).tolist()})
        t, scale = arguments.threshold(p), 2.0
        block = check_block(LARGE_BLOCK, LARGE_GLOBAL, LARGE_OFFSET, ())
        assert block is not None
        strides = block.global_strides()
        for i in picks:
            j = np.unravel_index(i, LARGE_BLOCK)
            index = sum((o + int(k)) * s for o, k, s in zip(LARGE_OFFSET, j, strides, strict=True))
            kept = element_word(seed, stream, index) >= t
            context = f"element {tuple(int(k) for k in j)} of the block at {LARGE_OFFSET} of {LARGE_GLOBAL}"
            assert bool(got_keep[i]) == kept, f"{context}: mask (global index {index})"
            assert got_y[i] == (scale if kept else 0.0), f"{context}: output"

    @pytest.mark.parametrize(
        ("global_shape", "shape", "offset"), FAR_BLOCKS, ids=["2^36", "2^36-2d", "2^62", "2^64-end"]
    )
    def test_blocks_far_out_in_huge_global_arrays(
        self, global_shape: tuple[int, ...], shape: tuple[int, ...], offset: tuple[int, ...]
    ) -> None:
        """A small block whose global indices reach 2**34 and beyond (up to the last of 2**64): its
        Philox counters' high words are set, and its output and mask are the reference's."""
        self.require_blocks()
        seed, stream = (1 << 63) + 12345, (1 << 32) + 7
        values = sample_values(shape, "float32", 9)
        y, keep = self.dropout(
            self.make(values, "float32"),
            0.5,
            seed=seed,
            stream=stream,
            global_shape=global_shape,
            offset=offset,
            return_mask=True,
        )
        want, want_keep = reference.dropout(
            values.reshape(-1).tolist(), shape, "float32", 0.5, seed, stream, (), global_shape, offset
        )
        context = f"block {shape} at {offset} of {global_shape}"
        assert keep_string(self.read(keep)) == keep_string(np.array(want_keep)), f"{context}: mask"
        assert_same_floats(self.read(y), np.array(want), context)

    @pytest.mark.parametrize(
        ("global_shape", "offset", "error", "says"),
        [
            ((4, 6), None, TypeError, "offset is missing"),
            (None, (0, 0), TypeError, "global_shape is missing"),
            ((4,), (0, 0), ValueError, r"global_shape must have one entry per axis .*\(4,\)"),
            ((4, 6), (0,), ValueError, r"offset must have one entry per axis .*\(0,\)"),
            ((4, 6), (0, -1), ValueError, "-1"),
            ((4, -6), (0, 0), ValueError, "-6"),
            ((4, 6), (0, True), TypeError, "True"),
            ((4, 6.0), (0, 0), TypeError, "6.0"),
            ((4, 6), (0, 1.5), TypeError, "1.5"),
            ((4, 6), (2, 0), ValueError, r"axis 0: 2 \+ 3 > 4"),
            ((4, 6), (0, 4), ValueError, r"axis 1: 4 \+ 3 > 6"),
            (7, (0, 0), TypeError, "7"),
            ((4, 6), "ab", TypeError, "'ab'"),
        ],
    )
    def test_bad_blocks_are_refused(
        self, global_shape: Any, offset: Any, error: type[Exception], says: str
    ) -> None:
        """Bad global_shape/offset raise the core's errors, naming the bad value, before any work."""
        self.require_blocks()
        x = self.make(np.ones((3, 3)), "float32")
        with pytest.raises(error, match=says):
            self.dropout(x, 0.5, seed=1, global_shape=global_shape, offset=offset)

    @pytest.mark.parametrize("how", ["p=0", "eval"])
    def test_identity_paths_of_a_block_return_the_input(self, how: str) -> None:
        """``p == 0`` and ``training=False`` return the block itself, and an all-True block mask."""
        self.require_blocks()
        x = self.make(sample_values((3, 4), "float32", 2), "float32")
        p, training = (0.0, True) if how == "p=0" else (0.5, False)
        block = {"global_shape": (9, 4), "offset": (6, 0)}
        y, keep = self.dropout(
            x, p, seed=1, training=training, return_mask=True, broadcast_dims=(0,), **block
        )
        assert y is x, how
        assert self.read(keep).shape == (1, 4) and self.read(keep).all(), how
        assert self.dropout(x, p, seed=1, training=training, **block) is x, how
