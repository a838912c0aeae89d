"""Exactness: the backend computes mask stream v1 bit for bit.

Known answers, the threshold boundary, bit-exact outputs and masks against the pure-Python
reference (Hypothesis over shapes, dtypes, p, seeds, streams and broadcast_dims, then fixed
cases on every device and dtype), and independence from memory layout.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from unidrop import reference
from unidrop.arguments import TWO_POW_32
from unidrop.philox import element_word

from .data import known_stream_cases
from .helpers import SuitePart, assert_same_floats, keep_string, sample_values

UINT64 = st.integers(0, (1 << 64) - 1)


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
        assert keep_string(self.read(keep)) == case["keep"]
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
        assert kept[index] != 0, f"u == t == {u} must be kept (drop iff u < t)"
        assert dropped[index] == 0, f"u = {u} < t = {u + 1} must be dropped"

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
            ("row-sliced", x[::2], base[::2]),
            ("column-sliced", x[:, 1::3], base[:, 1::3]),
        ]:
            got = self.read(self.dropout(view, 0.5, seed=11, stream=2))
            want = self.read(
                self.dropout(self.make(np.ascontiguousarray(copy), "float32"), 0.5, seed=11, stream=2)
            )
            assert_same_floats(got, want, f"{name} input")
