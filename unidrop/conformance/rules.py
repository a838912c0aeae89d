"""Rules: every promise around the stream, and every bad input refused with a clear error.

The identity paths (``p == 0``, ``training=False``) and their mask's shape and dtype, ``p == 1``,
NaN and Inf, the input left unmodified, results and masks that survive later calls, type, shape,
dtype and device preserved, every global random state (Python's, NumPy's legacy one, the
framework's, unidrop's source) untouched by an explicit seed and by the identity paths, the
``seed=None`` convention and its entropy, and the errors for bad ``p``, dtype, seed, stream and
``broadcast_dims``.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

import unidrop
from unidrop import reference, seeding

from .helpers import SuitePart, assert_same_floats, keep_string, sample_values

#: Masks drawn with ``seed=None`` by the entropy check: a seed source of 16 bits repeats among
#: them with probability above 99.9%; 64-bit seeds repeat with probability under 10**-13.
SEED_NONE_DRAWS = 1000


def random_states(adapter_state: Any) -> tuple[Any, ...]:
    """Python's ``random`` state, NumPy's whole legacy global state, and the framework's (as given)."""
    legacy = np.random.get_state(legacy=False)
    numpy_state = (
        legacy["state"]["key"].tobytes(),
        legacy["state"]["pos"],
        legacy["has_gauss"],
        legacy["gauss"],
    )
    framework = None if adapter_state is None else np.asarray(adapter_state).tobytes()
    return random.getstate(), numpy_state, framework


#: Elements of the large call of :meth:`RulesChecks.test_a_large_call_leaves_global_random_state_untouched`:
#: past 2**22 (where a backend may take another path: chunks, threads, a device kernel).
LARGE_CALL_SIZE = (1 << 22) + 13
#: The seed of the first call of :meth:`RulesChecks.test_results_and_masks_survive_later_calls`.
SEED_OF_LATER = (1 << 40) + 11


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
        kept = int(np.count_nonzero(self.read(keep)))
        assert kept == 0, f"p = 1 must drop every element (t = 2**32: no word is >= t), but {kept} were kept"
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

    @pytest.mark.parametrize("p", [1e-20, 0.5], ids=["nothing-dropped", "half"])
    def test_the_result_shares_no_memory_with_the_input(self, p: float) -> None:
        """Writing into a result leaves the input as it was: even where nothing is dropped and the
        scale rounds to 1 (p = 1e-20), only p == 0 and evaluation return ``x`` itself."""
        values = sample_values((4, 9), "float32", 12)
        x = self.make(values, "float32")
        y = self.dropout(x, p, seed=2)
        if not self.adapter.overwrite(y, np.full((4, 9), 7.0)):
            pytest.skip(f"backend {self.adapter.name!r} has immutable arrays: no result can alias its input")
        assert_same_floats(self.read(x), values, f"the input after writing into dropout(x, {p})'s result")

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
        self.check_no_random_state_touched(
            "a call with an explicit seed", lambda: self.dropout(x, 0.5, seed=17, stream=3)
        )

    def test_a_large_call_leaves_global_random_state_untouched(self) -> None:
        """The same on an array of millions of elements (a large path may draw where a small one does not)."""
        x = self.make(np.ones(LARGE_CALL_SIZE), "float32")
        self.check_no_random_state_touched(
            f"a call on {LARGE_CALL_SIZE} elements with an explicit seed",
            lambda: self.dropout(x, 0.5, seed=17, stream=3, return_mask=True),
        )

    def test_identity_paths_touch_no_random_state(self) -> None:
        """``p == 0`` and ``training=False``, with and without a mask or a seed, draw from no source."""
        x = self.make(np.ones(64), "float32")

        def identity_calls() -> None:
            self.dropout(x, 0.0, seed=3)
            self.dropout(x, 0.0, seed=3, return_mask=True, broadcast_dims=(0,))
            self.dropout(x, 0.5, seed=3, training=False, return_mask=True)
            if not self.adapter.abilities.explicit_seed:
                self.dropout(x, 0.0, return_mask=True)
                self.dropout(x, 0.5, training=False, return_mask=True)

        self.check_no_random_state_touched("p == 0 or training=False", identity_calls)

    def test_seed_none_draws_from_its_own_source_only(self) -> None:
        """A ``seed=None`` call changes neither Python's ``random`` nor NumPy's legacy global state."""
        if self.adapter.abilities.explicit_seed:
            pytest.skip(f"backend {self.adapter.name!r} refuses seed=None")
        x = self.make(np.ones(64), "float32")
        python_before, numpy_before, _ = random_states(None)
        self.dropout(x, 0.5)
        python_after, numpy_after, _ = random_states(None)
        assert python_before == python_after, "a seed=None call changed Python's random state"
        assert numpy_before == numpy_after, "a seed=None call changed NumPy's legacy global random state"

    def check_no_random_state_touched(self, what: str, calls: Any) -> None:
        """After ``calls()``: Python's, NumPy's legacy and the framework's global random states are
        as before, and unidrop's source gives the next seed it would have given without them.

        unidrop's source is observed through its public functions: after ``manual_seed(s)``,
        the next :func:`unidrop.seeding.draw_seed` is the same with or without the calls between.
        """
        try:
            unidrop.manual_seed(31)
            untouched = seeding.draw_seed()
            unidrop.manual_seed(31)
            before = random_states(self.adapter.global_rng_state())
            calls()
            after = random_states(self.adapter.global_rng_state())
            assert seeding.draw_seed() == untouched, f"{what} drew from unidrop's source"
        finally:  # leave unidrop's source fresh again, not at a seed every process shares
            unidrop.manual_seed(random.SystemRandom().getrandbits(64))
        assert before[0] == after[0], f"{what} changed Python's random state"
        assert before[1] == after[1], f"{what} changed NumPy's legacy global random state"
        assert before[2] == after[2], f"{what} changed {self.adapter.name}'s global random state"

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

    def test_seed_none_masks_have_entropy(self) -> None:
        """Masks of 64 elements drawn with ``seed=None`` are all distinct: seeds not from a small set."""
        if self.adapter.abilities.explicit_seed:
            pytest.skip(f"backend {self.adapter.name!r} refuses seed=None")
        x = self.make(np.ones(64), "float32")
        self.adapter.manual_seed(2024)
        masks = {
            keep_string(self.read(self.dropout(x, 0.5, return_mask=True)[1])) for _ in range(SEED_NONE_DRAWS)
        }
        assert len(masks) == SEED_NONE_DRAWS, (
            f"{SEED_NONE_DRAWS} seed=None masks of 64 elements hold only {len(masks)} distinct ones"
        )

    @pytest.mark.parametrize("dims", [(), (0,), (-1,), (0, 2)])
    @pytest.mark.parametrize("how", ["p=0", "eval"])
    def test_identity_mask_has_the_mask_shape_and_bool_dtype(
        self, how: str, dims: tuple[int, ...], unidrop_dtype: str
    ) -> None:
        """The mask of ``p == 0`` or ``training=False`` is all True, bool, of the mask shape, beside x."""
        x = self.make(sample_values((2, 3, 4), unidrop_dtype, 6), unidrop_dtype)
        p, training = (0.0, True) if how == "p=0" else (0.5, False)
        y, keep = self.dropout(x, p, seed=1, training=training, return_mask=True, broadcast_dims=dims)
        mask_shape = tuple(1 if axis in {d % 3 for d in dims} else n for axis, n in enumerate((2, 3, 4)))
        assert y is x
        assert self.adapter.shape_and_dtype(keep) == (mask_shape, "bool"), f"{how} broadcast_dims={dims}"
        assert self.adapter.device_of(keep) == self.adapter.device_of(x)
        assert self.read(keep).all(), f"{how}: the identity mask must be all True"

    def test_results_and_masks_survive_later_calls(self, unidrop_dtype: str) -> None:
        """An output and a mask keep their values after later calls with other shapes, p and seeds."""
        values = sample_values((16, 16), unidrop_dtype, 7)
        x = self.make(values, unidrop_dtype)
        y1, keep1 = self.dropout(x, 0.5, seed=SEED_OF_LATER, stream=1, return_mask=True)
        want, want_keep = reference.dropout(
            values.reshape(-1).tolist(), (16, 16), unidrop_dtype, 0.5, SEED_OF_LATER, 1
        )
        others = self.make(sample_values((16, 16), unidrop_dtype, 8), unidrop_dtype)
        for p, seed in [(0.5, 1), (0.25, 2), (0.9, SEED_OF_LATER)]:
            self.dropout(others, p, seed=seed, stream=2, return_mask=True)
            self.dropout(x, p, seed=seed, stream=3, return_mask=True)
        self.dropout(self.make(np.ones(256), unidrop_dtype), 0.5, seed=4, return_mask=True)
        assert_same_floats(self.read(y1), np.array(want), "an output after later calls")
        assert keep_string(self.read(keep1)) == keep_string(np.array(want_keep)), "a mask after later calls"

    def test_each_identity_mask_is_a_new_array(self) -> None:
        """``training=False`` and ``p == 0`` give an all-True mask: writing into one leaves the next
        as it is (a mask kept and handed out again would carry the write into every later call)."""
        x = self.make(np.ones((3, 4)), "float32")
        _, first = self.dropout(x, 0.5, training=False, seed=1, return_mask=True)
        if not self.adapter.overwrite(first, np.zeros((3, 4), dtype=bool)):
            pytest.skip(f"backend {self.adapter.name!r} has immutable arrays: no mask can carry a write")
        for p, training in [(0.5, False), (0.0, True)]:
            _, keep = self.dropout(x, p, training=training, seed=1, return_mask=True)
            assert keep_string(self.read(keep)) == "1" * 12, f"the mask of p={p}, training={training}"

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
