"""Rules: every promise around the stream, and every bad input refused with a clear error.

The identity paths (``p == 0``, ``training=False``), ``p == 1``, NaN and Inf, the input left
unmodified, type, shape, dtype and device preserved, global random state untouched by an
explicit seed, the ``seed=None`` convention, and the errors for bad ``p``, dtype, seed,
stream and ``broadcast_dims``.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

import unidrop
from unidrop import seeding

from .helpers import SuitePart, assert_same_floats, sample_values


class RulesChecks(SuitePart):
    """The contract's rules and errors, which hold whatever the stream."""

    def test_p_zero_and_eval_return_the_input_itself(self) -> None:
        """``p == 0`` and ``training=False`` return ``x`` itself, and an all-True mask."""
        x = self.make(sample_values((5, 4), "float32", 1), "float32")
        assert self.dropout(x, 0.0, seed=1) is x
        assert self.dropout(x, 0.5, seed=1, training=False) is x
        y, keep = self.dropout(x, 0.0, seed=1, return_mask=True, broadcast_dims=(0,))
        assert y is x
        assert self.read(keep).shape == (1, 4) and self.read(keep).all()

    def test_p_zero_consumes_no_randomness(self) -> None:
        """The identity paths draw no seed: the next ``seed=None`` call is as if they never ran."""
        if self.adapter.abilities.explicit_seed:
            pytest.skip(f"backend {self.adapter.name!r} has no implicit seed source to consume")
        x = self.make(np.ones(64), "float32")
        self.adapter.manual_seed(5)
        first = self.read(self.dropout(x, 0.5))
        self.adapter.manual_seed(5)
        self.dropout(x, 0.0)
        self.dropout(x, 0.5, training=False)
        assert_same_floats(self.read(self.dropout(x, 0.5)), first, "after p=0 and eval calls")

    def test_p_one_drops_everything_to_positive_zero(self, unidrop_dtype: str) -> None:
        """``p == 1`` drops every element, NaN and Inf included, to +0."""
        values = sample_values((9, 7), unidrop_dtype, 2)
        x = self.make(values, unidrop_dtype)
        y, keep = self.dropout(x, 1.0, seed=3, return_mask=True)
        assert not self.read(keep).any()
        assert_same_floats(self.read(y), np.zeros(values.shape), "p = 1")

    def test_nan_and_inf_are_zeroed_when_dropped(self) -> None:
        """A dropped NaN, Inf or -0 becomes +0 (a select, not a multiply); a kept one is scaled."""
        values = np.tile(np.array([np.nan, np.inf, -np.inf, -0.0]), 64)
        x = self.make(values, "float32")
        y, keep = self.dropout(x, 0.5, seed=8, return_mask=True)
        got, kept = self.read(y), self.read(keep)
        assert_same_floats(got[~kept], np.zeros(int((~kept).sum())), "dropped NaN/Inf/-0")
        assert_same_floats(got[kept], values[kept] * 2.0, "kept NaN/Inf/-0")

    def test_input_is_not_modified(self, unidrop_dtype: str) -> None:
        """``x`` holds the same values after dropout."""
        values = sample_values((31, 3), unidrop_dtype, 4)
        x = self.make(values, unidrop_dtype)
        self.dropout(x, 0.5, seed=1)
        assert_same_floats(self.read(x), values, "input after dropout")

    def test_type_shape_dtype_and_device_are_preserved(self, unidrop_device: str, unidrop_dtype: str) -> None:
        """Output and mask have the input's type and device; the output its shape and dtype."""
        x = self.make(sample_values((3, 4, 5), unidrop_dtype, 5), unidrop_dtype, unidrop_device)
        y, keep = self.dropout(x, 0.5, seed=2, return_mask=True, broadcast_dims=(-1,))
        assert type(y) is type(x)
        assert self.adapter.shape_and_dtype(y) == ((3, 4, 5), unidrop_dtype)
        assert self.adapter.device_of(y) == self.adapter.device_of(x)
        assert self.adapter.shape_and_dtype(keep) == ((3, 4, 1), "bool")
        assert self.adapter.device_of(keep) == self.adapter.device_of(x)

    def test_explicit_seed_leaves_global_random_state_untouched(self) -> None:
        """A call with a seed draws nothing from unidrop's seed source, Python's or the framework's.

        unidrop's source is observed through its public functions: after ``manual_seed(s)``,
        the next :func:`unidrop.seeding.draw_seed` is the same with or without the call between.
        """
        x = self.make(np.ones(256), "float32")
        try:
            unidrop.manual_seed(31)
            untouched = seeding.draw_seed()
            unidrop.manual_seed(31)
            before = (random.getstate(), self.adapter.global_rng_state())
            self.dropout(x, 0.5, seed=17, stream=3)
            after = (random.getstate(), self.adapter.global_rng_state())
            assert seeding.draw_seed() == untouched, "a call with an explicit seed drew from unidrop's source"
        finally:  # leave unidrop's source fresh again, not at a seed every process shares
            unidrop.manual_seed(random.SystemRandom().getrandbits(64))
        assert before[0] == after[0], "a call with an explicit seed changed Python's random state"
        if before[1] is not None:
            np.testing.assert_array_equal(np.asarray(before[1]), np.asarray(after[1]))

    def test_seed_none_follows_the_backend_convention(self) -> None:
        """``seed=None`` is refused (explicit-seed backends) or reproducible after ``manual_seed``."""
        x = self.make(np.ones(512), "float32")
        if self.adapter.abilities.explicit_seed:
            with pytest.raises((TypeError, ValueError), match=r"seed|key"):
                self.dropout(x, 0.5)
            return
        self.adapter.manual_seed(1234)
        first, second = self.read(self.dropout(x, 0.5)), self.read(self.dropout(x, 0.5))
        self.adapter.manual_seed(1234)
        assert_same_floats(self.read(self.dropout(x, 0.5)), first, "same manual seed")
        assert not np.array_equal(first, second), "two seed=None calls gave the same mask"

    @pytest.mark.parametrize("p", [-0.1, 1.5, math.nan, math.inf, -math.inf])
    def test_p_out_of_range_raises_value_error(self, p: float) -> None:
        """p outside [0, 1] or NaN: a ValueError naming the value."""
        x = self.make(np.ones(4), "float32")
        with pytest.raises(ValueError, match=r"p must be .* got " + repr(p).replace("(", r"\(")):
            self.dropout(x, p, seed=0)

    @pytest.mark.parametrize("p", ["0.5", 0.5j, None, True])
    def test_p_not_real_raises_type_error(self, p: Any) -> None:
        """A p that is not a real number: a TypeError."""
        x = self.make(np.ones(4), "float32")
        with pytest.raises(TypeError, match="p must be a real number"):
            self.dropout(x, p, seed=0)

    @pytest.mark.parametrize("dtype", ["int32", "bool"])
    def test_non_float_dtype_raises_type_error(self, dtype: str) -> None:
        """Integer and bool arrays: a TypeError naming the dtype."""
        x = self.adapter.from_numpy(np.ones(4).astype(dtype), dtype, self.device)
        with pytest.raises(TypeError, match=rf"dtype {dtype}\b"):
            self.dropout(x, 0.5, seed=0)

    @pytest.mark.parametrize(
        ("what", "value", "error"),
        [
            ("seed", -1, ValueError),
            ("seed", 1 << 64, ValueError),
            ("seed", 1.5, TypeError),
            ("seed", "7", TypeError),
            ("stream", -1, ValueError),
            ("stream", 1 << 64, ValueError),
            ("stream", 2.0, TypeError),
        ],
    )
    def test_bad_seed_or_stream_raises(self, what: str, value: Any, error: type[Exception]) -> None:
        """A seed or stream outside [0, 2**64), or not an integer: an error naming it."""
        x = self.make(np.ones(4), "float32")
        kwargs = {"seed": 0, "stream": 0, what: value}
        with pytest.raises(error, match=what):
            self.dropout(x, 0.5, **kwargs)

    @pytest.mark.parametrize("dims", [(2,), (-3,), (0, 0), (1, -1), ("a",)])
    def test_bad_broadcast_dims_raise(self, dims: tuple[Any, ...]) -> None:
        """Out-of-range, repeated or non-integer broadcast_dims: an error naming broadcast_dims."""
        x = self.make(np.ones((2, 3)), "float32")
        with pytest.raises((ValueError, TypeError), match="broadcast_dims"):
            self.dropout(x, 0.5, seed=0, broadcast_dims=dims)
