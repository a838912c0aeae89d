"""Exactness: the backend computes mask stream v1 bit for bit.

Known answers, the threshold boundary (also for fractional ``p * 2**32``, tiny p and p near 1),
bit-exact outputs and masks against the pure-Python reference (Hypothesis over shapes, dtypes,
p, seeds, streams and broadcast_dims, then fixed cases on every device and dtype), sampled
elements of arrays of millions of elements around chunk edges, every 16-bit bit pattern,
subnormal, overflowing and signed-zero values, and independence from memory layout (Fortran
order, transposes, negative and zero strides) with the input left unmodified.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from unidrop import reference
from unidrop.arguments import TWO_POW_32
from unidrop.philox import element_word

from . import expected
from .data import known_stream_cases
from .diagnosis import mask_hint
from .helpers import SuitePart, assert_same_floats, keep_string, sample_values

UINT64 = st.integers(0, (1 << 64) - 1)
#: Elements of the large-array checks: past 2**22, and no multiple of a chunk or tile size.
LARGE_SIZE = (1 << 22) + 13
#: Seed and stream of the checks below: both words of each set, so no high word can be dropped.
SEED, STREAM = 0x9E3779B97F4A7C15, (1 << 32) + 7
#: A stream whose mask, with seed SEED, holds the largest word 2**32 - 1 at this index (found by a
#: search over streams; the check below asserts it with the reference).
LARGEST_WORD_STREAM, LARGEST_WORD_INDEX = 4_319_841_116, 25
#: p whose scale 1 / (1 - p) is not exact in float32 (and 0.5, whose scale is).
SCALE_PS = [0.1, 1 / 3, 0.7]
#: Layouts of :meth:`ExactnessChecks.test_layouts_give_the_logical_result`: a 3-D base of this shape.
BASE_3D = (6, 10, 7)
LAYOUTS = [
    "fortran-3d",
    "fortran-3d-broadcast-dims",
    "transposed-3d",
    "reversed-rows",
    "reversed-every-other-column",
    "reversed-3d",
    "zero-stride-leading",
    "zero-stride-middle",
]


class ExactnessChecks(SuitePart):
    """The stream itself: every output and mask equals the reference's, on every device and dtype."""

    @pytest.mark.parametrize(
        "case", known_stream_cases(), ids=lambda c: f"seed{c['seed']}-stream{c['stream']}"
    )
    def test_known_answers(self, case: dict[str, Any], unidrop_device: str) -> None:
        """The keep bits of the known-answer file, on every device."""
        shape = tuple(case["mask_shape"])
        x = self.make(np.ones(shape), "float32", unidrop_device)
        y, keep = self.dropout(
            x, case["p"], seed=int(case["seed"]), stream=int(case["stream"]), return_mask=True
        )
        got = keep_string(self.read(keep))
        if got != case["keep"]:
            hint = mask_hint(
                [k == "1" for k in got], int(case["seed"]), int(case["stream"]), case["p"], shape
            )
            raise AssertionError(
                f"the keep mask differs from the known answer's.{hint}\n got  {got}\n want {case['keep']}"
            )
        scale = reference.round_to(1.0 / (1.0 - case["p"]), "float32")
        expected = np.array([scale if k == "1" else 0.0 for k in case["keep"]])
        assert_same_floats(self.read(y).reshape(-1), expected, "known answer output")

    def test_threshold_boundary(self) -> None:
        """An element whose word u equals the threshold t is kept; with t = u + 1 it is dropped."""
        seed, stream, index = 7, 0, 5
        u = element_word(seed, stream, index)
        assert 0 < u < TWO_POW_32 - 1
        x = self.make(np.ones(8), "float32")
        kept = self.read(self.dropout(x, u / TWO_POW_32, seed=seed, stream=stream))
        dropped = self.read(self.dropout(x, (u + 1) / TWO_POW_32, seed=seed, stream=stream))
        words_wrong = " (or, if test_known_answers fails too, element 5 did not get the word u_5)"
        assert kept[index] != 0, f"u == t == {u} must be kept (drop iff u < t){words_wrong}"
        assert dropped[index] == 0, f"u = {u} < t = {u + 1} must be dropped{words_wrong}"

    @given(data=st.data())
    def test_matches_reference(self, data: st.DataObject) -> None:
        """Bit-exact outputs and masks over shapes, dtypes, p, seeds, streams and broadcast_dims."""
        shape = tuple(data.draw(st.lists(st.integers(0, 6), min_size=0, max_size=4), label="shape"))
        dtype = data.draw(st.sampled_from(self.float_dtypes), label="dtype")
        p = data.draw(
            st.one_of(
                st.sampled_from([0.1, 0.5, 0.9, 1.0, 2.0**-32, 1.0 - 2.0**-53]),
                st.floats(0.0, 1.0, exclude_min=True),
            ),
            label="p",
        )
        seed = data.draw(st.one_of(st.integers(0, 3), UINT64), label="seed")
        stream = data.draw(st.one_of(st.just(0), UINT64), label="stream")
        dims = data.draw(st.sets(st.integers(0, max(len(shape) - 1, 0))), label="dims") if shape else set()
        signed = tuple(d - len(shape) if data.draw(st.booleans()) else d for d in sorted(dims))
        self.check_against_reference(shape, dtype, p, seed, stream, signed, input_seed=len(shape))

    @pytest.mark.parametrize(
        ("shape", "p", "seed", "stream", "dims"),
        [
            ((1000,), 0.5, 0, 0, ()),
            ((37, 29), 0.3, 1 << 32, 5, ()),
            ((4, 3, 33), 0.75, (1 << 64) - 1, (1 << 64) - 1, (1,)),
            ((2, 8, 5, 7), 0.2, 12345, 1 << 40, (2, 3)),
            ((), 0.5, 3, 0, ()),
            ((0, 5), 0.5, 3, 0, ()),
        ],
    )
    def test_matches_reference_on_every_device(
        self,
        shape: tuple[int, ...],
        p: float,
        seed: int,
        stream: int,
        dims: tuple[int, ...],
        unidrop_device: str,
        unidrop_dtype: str,
    ) -> None:
        """The same fixed cases on every device and dtype the backend declares."""
        self.check_against_reference(shape, unidrop_dtype, p, seed, stream, dims, device=unidrop_device)

    def test_layout_does_not_change_the_result(self) -> None:
        """A transposed or sliced (strided) input gives the result of its contiguous copy."""
        base = sample_values((24, 18), "float32", 3)
        x = self.make(base, "float32")
        for name, view, copy in [
            ("transposed", x.T, base.T),
            ("row-sliced", x[::2, :], base[::2, :]),  # an index per axis, as the Array API asks
            ("column-sliced", x[:, 1::3], base[:, 1::3]),
        ]:
            got = self.read(self.dropout(view, 0.5, seed=11, stream=2))
            want = self.read(
                self.dropout(self.make(np.ascontiguousarray(copy), "float32"), 0.5, seed=11, stream=2)
            )
            assert_same_floats(got, want, f"{name} input")

    @pytest.mark.parametrize("extra", [0.5, 1 - 2.0**-20])
    def test_threshold_of_a_fractional_product_is_its_floor(self, extra: float) -> None:
        """p with ``p * 2**32 = u + extra`` keeps the element of word u; ``u + 1 + extra`` drops it."""
        seed, stream, index = SEED, STREAM, 6
        u = element_word(seed, stream, index)
        assert 0 < u < TWO_POW_32 - 2
        x = self.make(np.ones(8), "float32")
        kept = self.read(self.dropout(x, (u + extra) / TWO_POW_32, seed=seed, stream=stream))
        dropped = self.read(self.dropout(x, (u + 1 + extra) / TWO_POW_32, seed=seed, stream=stream))
        assert kept[index] != 0, f"t = floor({u} + {extra}) = {u} = u must keep the element"
        assert dropped[index] == 0, f"t = floor({u + 1} + {extra}) = {u + 1} > u must drop the element"

    def test_tiny_p_and_p_near_one(self, unidrop_dtype: str) -> None:
        """Outputs and masks equal the reference's for p < 2**-32 (t = 0, nothing dropped, s > 1 in
        float64), p = 2**-32, fractional thresholds at the smallest and largest word, and p near 1."""
        shape = (32, 32)
        words = sorted(expected.words(SEED, STREAM, 1024))
        low, high = words[0], words[-1]
        ps = [2.0**-40, 2.0**-33, 2.0**-32, 3 * 2.0**-33, 0.1, 1 / 3, 1 - 2.0**-53]
        ps += [(w + f) / TWO_POW_32 for w in (low, high) for f in (0.5, 1.5)]
        for p in ps:
            self.check_against_reference(shape, unidrop_dtype, p, SEED, STREAM, input_seed=9)

    def test_p_one_drops_the_largest_word(self, unidrop_dtype: str) -> None:
        """The word u = 2**32 - 1 is kept at p = 1 - 2**-32 (t = u) and dropped at p = 1, where
        t = 2**32 (a threshold held in a uint32 would saturate at u and keep it)."""
        assert element_word(SEED, LARGEST_WORD_STREAM, LARGEST_WORD_INDEX) == TWO_POW_32 - 1
        for p in (1 - 2.0**-32, 1.0):
            self.check_against_reference((4, 8), unidrop_dtype, p, SEED, LARGEST_WORD_STREAM, input_seed=10)

    def test_large_array_at_chunk_edges(self, unidrop_dtype: str) -> None:
        """2**22 + 13 elements: outputs and mask bits at each multiple of 2**16, 2**18 and 2**20
        (± 4) and at both ends equal the reference's."""
        self.check_sampled((LARGE_SIZE,), unidrop_dtype, ())

    @pytest.mark.parametrize(
        ("shape", "dims"), [((2053, 2045), ()), ((5, 838_871), (0,)), ((3, 1_398_107, 1), (-1,))]
    )
    def test_large_arrays_of_several_axes_at_chunk_edges(
        self, shape: tuple[int, ...], dims: tuple[int, ...]
    ) -> None:
        """The same for arrays of millions of elements whose rows or mask cross chunk edges (float32)."""
        self.check_sampled(shape, "float32", dims)

    def check_sampled(self, shape: tuple[int, ...], dtype: str, dims: tuple[int, ...]) -> None:
        """One large array of small integers: its output at edge indices and mask at mask edge indices."""
        size = math.prod(shape)
        x = self.make((np.arange(size, dtype=np.float64) % 251 - 125).reshape(shape), dtype)
        y, keep = self.dropout(x, 0.3, seed=SEED, stream=STREAM, broadcast_dims=dims, return_mask=True)
        indices = expected.edge_indices(size)
        want = expected.expected_at(
            indices, lambda i: float(i % 251 - 125), shape, dtype, 0.3, SEED, STREAM, dims
        )
        context = f"shape {shape} {dtype} broadcast_dims={dims} at flat indices {indices[:3]}..."
        assert_same_floats(self.read(y).reshape(-1)[indices], np.array(want), context)
        mask = self.read(keep)
        mask_indices = expected.edge_indices(mask.size)
        want_keep = np.array(expected.keep_at(mask_indices, 0.3, SEED, STREAM))
        got_keep = mask.reshape(-1)[mask_indices]
        wrong = [mask_indices[i] for i in np.flatnonzero(got_keep != want_keep)[:5]]
        assert not wrong, f"mask of {context}: bits at mask indices {wrong} differ from the reference's"

    @pytest.mark.parametrize("p", SCALE_PS, ids=["p0.1", "p1/3", "p0.7"])
    @pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
    def test_every_16bit_pattern(self, dtype: str, p: float) -> None:
        """All 65536 inputs of a 16-bit dtype, subnormals apart (see the next check): one product in
        float32, rounded once to the dtype; overflow gives Inf; NaN, Inf and -0 kept or zeroed."""
        self.skip_unless_supported(dtype)
        values = expected.sixteen_bit_patterns(dtype)
        want, _ = expected.pattern_outputs(dtype, p, SEED, STREAM)
        got = self.read(self.dropout(self.make(values, dtype), p, seed=SEED, stream=STREAM))
        normal = ~expected.is_subnormal(values, dtype)
        assert_same_floats(got[normal], want[normal], f"every non-subnormal {dtype} bit pattern, p={p}")

    @pytest.mark.parametrize("p", [0.1, 0.5, 0.7], ids=["p0.1", "p0.5", "p0.7"])
    def test_subnormals_are_scaled_exactly(self, unidrop_dtype: str, p: float) -> None:
        """Subnormal inputs are scaled, not flushed to zero, and subnormal results are rounded
        exactly: an expected failure where the backend's adapter declares it flushes them."""
        values = expected.subnormal_values(unidrop_dtype)
        want, keep = expected.reference_outputs(values, unidrop_dtype, p, SEED, STREAM)
        assert keep.any() and not keep.all()
        got = self.read(self.dropout(self.make(values, unidrop_dtype), p, seed=SEED, stream=STREAM))
        declared = self.adapter.flushes_subnormals(unidrop_dtype, self.device)
        deviation = (
            f"backend {self.adapter.name!r} declares that it flushes {unidrop_dtype} subnormals "
            f"on {self.device}"
        )
        try:
            assert_same_floats(got, want, f"subnormal {unidrop_dtype} inputs, p={p}")
        except AssertionError as error:
            if declared:
                pytest.xfail(f"{deviation} (SuiteAdapter.flushes_subnormals): {error}")
            raise
        if declared:
            pytest.fail(f"{deviation}, yet scaled them exactly: drop the declaration")

    @pytest.mark.parametrize("p", [0.1, 0.5, 0.7], ids=["p0.1", "p0.5", "p0.7"])
    def test_overflow_signed_zeros_and_specials(self, unidrop_dtype: str, p: float) -> None:
        """Products past the largest finite value give Inf (not the largest value); a kept -0 stays
        -0 and a dropped one is +0; Inf and NaN are kept or zeroed."""
        values = np.tile(expected.extreme_values(unidrop_dtype), 32)
        want, keep = expected.reference_outputs(values, unidrop_dtype, p, SEED, STREAM)
        negative_zero = (values == 0) & np.signbit(values)
        assert keep[negative_zero].any() and not keep[negative_zero].all()
        got = self.read(self.dropout(self.make(values, unidrop_dtype), p, seed=SEED, stream=STREAM))
        assert_same_floats(got, want, f"extreme {unidrop_dtype} values, p={p}")

    @pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
    def test_byte_order_does_not_change_the_result(self, dtype: str) -> None:
        """An input stored in the other byte order (``'>f4'`` on a little-endian machine) gives the
        reference's result and mask for its values, and is left unmodified (the IEEE dtypes: a
        bfloat16 array of ml_dtypes has no other byte order)."""
        self.skip_unless_supported(dtype)
        values = np.concatenate([expected.extreme_values(dtype), sample_values((64,), dtype, 13)])
        swapped = self.adapter.byte_swapped(self.make(values, dtype))
        if swapped is None:
            pytest.skip(f"the suite adapter of {self.adapter.name!r} gives no byte-swapped {dtype}")
        before = self.read(swapped)
        y, keep = self.dropout(swapped, 0.5, seed=SEED, stream=STREAM, return_mask=True)
        want, want_keep = expected.reference_outputs(values, dtype, 0.5, SEED, STREAM)
        context = f"a byte-swapped {dtype} input"
        assert self.adapter.shape_and_dtype(y) == (values.shape, dtype), context
        assert keep_string(self.read(keep)) == keep_string(want_keep), context
        assert_same_floats(self.read(y), want, context)
        assert_same_floats(self.read(swapped), before, f"{context}, after dropout")

    @pytest.mark.parametrize("layout", LAYOUTS)
    def test_layouts_give_the_logical_result(self, layout: str) -> None:
        """A Fortran-ordered, transposed, reversed (negative strides) or broadcast (zero strides)
        input gives the reference's result for its logical values, and is left unmodified."""
        base = sample_values(BASE_3D, "float32", 12)
        owner_values, view, logical, dims = self.layout_view(layout, base)
        if view is None:
            pytest.skip(f"the suite adapter of {self.adapter.name!r} gives no {layout} view")
        owner = view[1]
        view = view[0]
        assert_same_floats(self.read(view), logical, f"the adapter's {layout} view")
        y, keep = self.dropout(view, 0.5, seed=SEED, stream=STREAM, broadcast_dims=dims, return_mask=True)
        want, want_keep = reference.dropout(
            logical.reshape(-1).tolist(), logical.shape, "float32", 0.5, SEED, STREAM, dims
        )
        context = f"{layout} input of shape {logical.shape}, broadcast_dims={dims}"
        assert self.adapter.shape_and_dtype(y) == (logical.shape, "float32"), context
        assert keep_string(self.read(keep)) == keep_string(np.array(want_keep)), context
        assert_same_floats(self.read(y), np.array(want), context)
        assert_same_floats(self.read(view), logical, f"{context}: the input after dropout")
        assert_same_floats(self.read(owner), owner_values, f"{context}: the array under the view, after")

    def layout_view(
        self, layout: str, base: np.ndarray
    ) -> tuple[np.ndarray, tuple[Any, Any] | None, np.ndarray, tuple[int, ...]]:
        """``(owner values, (view, owner) or None, the view's logical values, broadcast_dims)``."""
        adapter = self.adapter
        if layout.startswith("fortran-3d"):
            owner_values = np.ascontiguousarray(base.transpose(2, 1, 0))
            owner = self.make(owner_values, "float32")
            dims = (1,) if layout.endswith("broadcast-dims") else ()
            return owner_values, _pair(adapter.permuted(owner, (2, 1, 0)), owner), base, dims
        if layout == "transposed-3d":
            owner = self.make(base, "float32")
            return base, _pair(adapter.permuted(owner, (1, 2, 0)), owner), base.transpose(1, 2, 0), ()
        if layout.startswith("zero-stride"):
            target = (4, *BASE_3D[1:]) if layout.endswith("leading") else (BASE_3D[0], 4, BASE_3D[2])
            owner_values = base[:1] if layout.endswith("leading") else base[:, :1]
            owner = self.make(np.ascontiguousarray(owner_values), "float32")
            logical = np.broadcast_to(owner_values, target)
            return owner_values, _pair(adapter.broadcast_view(owner, target), owner), logical, ()
        index = {
            "reversed-rows": (slice(None, None, -1),),
            "reversed-every-other-column": (slice(None), slice(None, None, -2)),
            "reversed-3d": (slice(None, None, -1), slice(None, None, -3), slice(None, None, -2)),
        }[layout]
        owner = self.make(base, "float32")
        return base, _pair(adapter.strided(owner, index), owner), base[index], ()

    def skip_unless_supported(self, dtype: str) -> None:
        """Skip the calling test, saying why, when the backend does not support ``dtype`` here."""
        if dtype not in self.adapter.dtypes():
            pytest.skip(f"backend {self.adapter.name!r} does not support {dtype} here")


def _pair(view: Any, owner: Any) -> tuple[Any, Any] | None:
    """``(view, owner)``, or None when the adapter gave no view."""
    return None if view is None else (view, owner)
