"""The conformance suite: every check a unidrop backend must pass.

Expected values come from the pure-Python reference (:mod:`unidrop.reference`) and the
known-answer file, never from a backend. Subclass :class:`ConformanceSuite` in a
backend's tests (setting ``backend_name``), or run it on any installed backend with
``pytest --pyargs unidrop.conformance --unidrop-backend NAME``.

Fixtures ``unidrop_device`` and ``unidrop_dtype`` are parametrized by the plugin over the
backend's devices and dtypes.
"""

from __future__ import annotations

import math
import random
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import unidrop
from unidrop import contract, reference, seeding
from unidrop.backend import Backend
from unidrop.philox import element_word

from . import plugin
from .data import known_stream_cases

TWO_POW_32 = 1 << 32
UINT64 = st.integers(0, (1 << 64) - 1)
STAT_SIZE = 1 << 20


def exact_values(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` (float64) rounded to ``dtype``, returned as float64 holding exact dtype values."""
    if dtype == "bfloat16":
        return np.array([reference.round_to(float(v), "bfloat16") for v in values.ravel()]).reshape(
            values.shape
        )
    return values.astype(dtype).astype(np.float64)


def sample_values(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    """Deterministic test inputs of ``shape``, exact in ``dtype``, with a few specials mixed in."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape) * rng.choice([1.0, 100.0, 1e-3], size=shape)
    flat = values.reshape(-1)
    if flat.size >= 8:
        flat[[1, 3, 5, 7]] = [np.nan, np.inf, -np.inf, -0.0]
    return exact_values(values, dtype)


def assert_same_floats(actual: np.ndarray, expected: np.ndarray, context: str) -> None:
    """Equal values with NaN matching NaN, and equal signs of zero (dropped elements are +0)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64).reshape(actual.shape)
    mismatch = ~((actual == expected) | (np.isnan(actual) & np.isnan(expected)))
    mismatch |= (np.signbit(actual) != np.signbit(expected)) & ~np.isnan(expected)
    if mismatch.any():
        where = np.argwhere(mismatch)[:5].tolist()
        raise AssertionError(
            f"{context}: {int(mismatch.sum())} of {actual.size} elements differ from the reference, "
            f"first at {where}: got {actual[mismatch][:5].tolist()}, "
            f"expected {expected[mismatch][:5].tolist()}"
        )


def keep_string(keep: np.ndarray) -> str:
    return "".join("1" if k else "0" for k in np.asarray(keep).reshape(-1))


class ConformanceSuite:
    """Checks mask stream v1 and every rule of the contract on one backend."""

    #: Set by a subclass in a backend's own tests; otherwise ``--unidrop-backend`` decides.
    backend_name: ClassVar[str | None] = None

    # -- helpers ---------------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        name = self.backend_name or plugin.selected_backend()
        if name is None:
            raise pytest.UsageError("the unidrop conformance suite needs --unidrop-backend NAME")
        return unidrop.get_backend(name)

    @property
    def device(self) -> str:
        return plugin.devices_for(self.backend)[0]

    @property
    def float_dtypes(self) -> list[str]:
        return [d for d in contract.FLOAT_DTYPES if d in self.backend.dtypes]

    def make(self, values: np.ndarray, dtype: str, device: str | None = None) -> Any:
        host = values.astype(np.float64 if dtype == "float64" else np.float32)
        return self.backend.from_numpy(host, dtype, device or self.device)

    def read(self, x: Any) -> np.ndarray:
        return np.asarray(self.backend.to_numpy(x))

    def dropout(self, x: Any, p: float, **kwargs: Any) -> Any:
        return unidrop.dropout(x, p, backend=self.backend.name, **kwargs)

    def check_against_reference(
        self,
        shape: tuple[int, ...],
        dtype: str,
        p: float,
        seed: int,
        stream: int,
        broadcast_dims: tuple[int, ...] = (),
        device: str | None = None,
        input_seed: int = 0,
    ) -> None:
        values = sample_values(shape, dtype, input_seed)
        x = self.make(values, dtype, device)
        y, keep = self.dropout(
            x, p, seed=seed, stream=stream, broadcast_dims=broadcast_dims, return_mask=True
        )
        expected, expected_keep = reference.dropout(
            values.reshape(-1).tolist(), shape, dtype, p, seed, stream, broadcast_dims
        )
        context = f"shape={shape} dtype={dtype} p={p} seed={seed} stream={stream} dims={broadcast_dims}"
        assert self.backend.shape_and_dtype(y) == (shape, dtype), context
        mask_shape = contract.DropoutPlan.build(shape, dtype, p, seed, stream, broadcast_dims).mask_shape
        assert tuple(self.read(keep).shape) == mask_shape, context
        assert keep_string(self.read(keep)) == keep_string(np.array(expected_keep, dtype=bool)), context
        assert_same_floats(self.read(y), np.array(expected, dtype=np.float64), context)

    # -- the stream itself -------------------------------------------------------------
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

    # -- statistics (fixed seeds, 5-sigma bounds) ---------------------------------------
    @pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
    def test_keep_rate_within_5_sigma(self, p: float) -> None:
        """The kept fraction of 2**20 elements is within 5 sigma of 1 - t / 2**32."""
        x = self.make(np.ones(STAT_SIZE), "float32")
        _, keep = self.dropout(x, p, seed=2024, stream=1, return_mask=True)
        kept = int(self.read(keep).sum())
        q = 1.0 - contract.threshold(p) / TWO_POW_32
        sigma = math.sqrt(STAT_SIZE * q * (1.0 - q))
        assert abs(kept - STAT_SIZE * q) <= 5 * sigma, (
            f"kept {kept} of {STAT_SIZE}, expected {STAT_SIZE * q:.0f}"
        )

    @pytest.mark.parametrize("p", [0.2, 0.7])
    def test_mean_within_5_sigma(self, p: float) -> None:
        """The mean output for an input of ones is 1 within 5 sigma: the scale is 1 / (1 - p)."""
        x = self.make(np.ones(STAT_SIZE), "float32")
        y = self.read(self.dropout(x, p, seed=99, stream=0)).astype(np.float64)
        q = 1.0 - contract.threshold(p) / TWO_POW_32
        s = 1.0 / (1.0 - p)
        sigma = s * math.sqrt(q * (1.0 - q) / STAT_SIZE)
        assert abs(y.mean() - s * q) <= 5 * sigma, f"mean {y.mean()} expected {s * q}"
        assert set(np.unique(y).tolist()) <= {0.0, reference.round_to(s, "float32")}

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            ((0, 0), (1, 0)),
            ((0, 0), (1 << 32, 0)),
            ((0, 0), (0, 1)),
            ((0, 0), (0, 1 << 32)),
            ((1, 2), (2, 1)),
        ],
        ids=["seed", "seed-high-word", "stream", "stream-high-word", "swapped"],
    )
    def test_different_seeds_and_streams_give_different_masks(
        self, a: tuple[int, int], b: tuple[int, int]
    ) -> None:
        x = self.make(np.ones(4096), "float32")
        _, keep_a = self.dropout(x, 0.5, seed=a[0], stream=a[1], return_mask=True)
        _, keep_b = self.dropout(x, 0.5, seed=b[0], stream=b[1], return_mask=True)
        agree = float((self.read(keep_a) == self.read(keep_b)).mean())
        assert 0.4 < agree < 0.6, f"masks for (seed, stream) {a} and {b} agree on {agree:.0%}"

    # -- rules -----------------------------------------------------------------------
    def test_p_zero_and_eval_return_the_input_itself(self) -> None:
        x = self.make(sample_values((5, 4), "float32", 1), "float32")
        assert self.dropout(x, 0.0, seed=1) is x
        assert self.dropout(x, 0.5, seed=1, training=False) is x
        y, keep = self.dropout(x, 0.0, seed=1, return_mask=True, broadcast_dims=(0,))
        assert y is x
        assert self.read(keep).shape == (1, 4) and self.read(keep).all()

    def test_p_zero_consumes_no_randomness(self) -> None:
        if "explicit-seed" in self.backend.features:
            pytest.skip(f"backend {self.backend.name!r} has no implicit seed source to consume")
        x = self.make(np.ones(64), "float32")
        self.backend.manual_seed(5)
        first = self.read(self.dropout(x, 0.5))
        self.backend.manual_seed(5)
        self.dropout(x, 0.0)
        self.dropout(x, 0.5, training=False)
        assert_same_floats(self.read(self.dropout(x, 0.5)), first, "after p=0 and eval calls")

    def test_p_one_drops_everything_to_positive_zero(self, unidrop_dtype: str) -> None:
        values = sample_values((9, 7), unidrop_dtype, 2)
        x = self.make(values, unidrop_dtype)
        y, keep = self.dropout(x, 1.0, seed=3, return_mask=True)
        assert not self.read(keep).any()
        assert_same_floats(self.read(y), np.zeros(values.shape), "p = 1")

    def test_nan_and_inf_are_zeroed_when_dropped(self) -> None:
        values = np.tile(np.array([np.nan, np.inf, -np.inf, -0.0]), 64)
        x = self.make(values, "float32")
        y, keep = self.dropout(x, 0.5, seed=8, return_mask=True)
        got, kept = self.read(y), self.read(keep)
        assert_same_floats(got[~kept], np.zeros(int((~kept).sum())), "dropped NaN/Inf/-0")
        assert_same_floats(got[kept], values[kept] * 2.0, "kept NaN/Inf/-0")

    def test_input_is_not_modified(self, unidrop_dtype: str) -> None:
        values = sample_values((31, 3), unidrop_dtype, 4)
        x = self.make(values, unidrop_dtype)
        self.dropout(x, 0.5, seed=1)
        assert_same_floats(self.read(x), values, "input after dropout")

    def test_type_shape_dtype_and_device_are_preserved(self, unidrop_device: str, unidrop_dtype: str) -> None:
        x = self.make(sample_values((3, 4, 5), unidrop_dtype, 5), unidrop_dtype, unidrop_device)
        y, keep = self.dropout(x, 0.5, seed=2, return_mask=True, broadcast_dims=(-1,))
        assert type(y) is type(x)
        assert self.backend.shape_and_dtype(y) == ((3, 4, 5), unidrop_dtype)
        assert self.backend.device_of(y) == self.backend.device_of(x)
        assert self.backend.shape_and_dtype(keep) == ((3, 4, 1), "bool")
        assert self.backend.device_of(keep) == self.backend.device_of(x)

    def test_explicit_seed_leaves_global_random_state_untouched(self) -> None:
        x = self.make(np.ones(256), "float32")
        before = (seeding._source.getstate(), random.getstate(), self.backend.global_rng_state())
        self.dropout(x, 0.5, seed=17, stream=3)
        after = (seeding._source.getstate(), random.getstate(), self.backend.global_rng_state())
        assert before[:2] == after[:2]
        if before[2] is not None:
            np.testing.assert_array_equal(np.asarray(before[2]), np.asarray(after[2]))

    def test_seed_none_follows_the_backend_convention(self) -> None:
        x = self.make(np.ones(512), "float32")
        if "explicit-seed" in self.backend.features:
            with pytest.raises((TypeError, ValueError), match=r"seed|key"):
                self.dropout(x, 0.5)
            return
        self.backend.manual_seed(1234)
        first, second = self.read(self.dropout(x, 0.5)), self.read(self.dropout(x, 0.5))
        self.backend.manual_seed(1234)
        assert_same_floats(self.read(self.dropout(x, 0.5)), first, "same manual seed")
        assert not np.array_equal(first, second), "two seed=None calls gave the same mask"

    @pytest.mark.parametrize("p", [-0.1, 1.5, math.nan, math.inf, -math.inf])
    def test_p_out_of_range_raises_value_error(self, p: float) -> None:
        x = self.make(np.ones(4), "float32")
        with pytest.raises(ValueError, match=r"p must be .* got " + repr(p).replace("(", r"\(")):
            self.dropout(x, p, seed=0)

    @pytest.mark.parametrize("p", ["0.5", 0.5j, None, True])
    def test_p_not_real_raises_type_error(self, p: Any) -> None:
        x = self.make(np.ones(4), "float32")
        with pytest.raises(TypeError, match="p must be a real number"):
            self.dropout(x, p, seed=0)

    @pytest.mark.parametrize("dtype", ["int32", "bool"])
    def test_non_float_dtype_raises_type_error(self, dtype: str) -> None:
        x = self.backend.from_numpy(np.ones(4).astype(dtype), dtype, self.device)
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
        x = self.make(np.ones(4), "float32")
        kwargs = {"seed": 0, "stream": 0, what: value}
        with pytest.raises(error, match=what):
            self.dropout(x, 0.5, **kwargs)

    @pytest.mark.parametrize("dims", [(2,), (-3,), (0, 0), (1, -1), ("a",)])
    def test_bad_broadcast_dims_raise(self, dims: tuple[Any, ...]) -> None:
        x = self.make(np.ones((2, 3)), "float32")
        with pytest.raises((ValueError, TypeError), match="broadcast_dims"):
            self.dropout(x, 0.5, seed=0, broadcast_dims=dims)

    # -- declared features --------------------------------------------------------------
    def test_autograd_gradient_is_cotangent_times_keep_times_scale(self) -> None:
        if "autograd" not in self.backend.features:
            pytest.skip(f"backend {self.backend.name!r} does not declare autograd")
        values = sample_values((6, 50), "float32", 6)
        values[np.isnan(values) | np.isinf(values)] = 1.0
        cotangent = sample_values((6, 50), "float32", 7)
        cotangent[np.isnan(cotangent) | np.isinf(cotangent)] = 2.0
        x, g = self.make(values, "float32"), self.make(cotangent, "float32")
        y, grad = self.backend.vjp(lambda a: self.dropout(a, 0.3, seed=5, stream=9), x, g)
        expected_y, _ = reference.dropout(values.reshape(-1).tolist(), (6, 50), "float32", 0.3, 5, 9)
        expected_grad, _ = reference.dropout(cotangent.reshape(-1).tolist(), (6, 50), "float32", 0.3, 5, 9)
        assert_same_floats(self.read(y), np.array(expected_y), "forward under autograd")
        assert_same_floats(self.read(grad), np.array(expected_grad), "gradient")

    def test_jit_gives_the_eager_result(self) -> None:
        if "jit" not in self.backend.features:
            pytest.skip(f"backend {self.backend.name!r} does not declare jit")
        values = sample_values((7, 9), "float32", 8)
        compiled = self.backend.jit(lambda a: self.dropout(a, 0.4, seed=1 << 33, stream=2))
        expected, _ = reference.dropout(values.reshape(-1).tolist(), (7, 9), "float32", 0.4, 1 << 33, 2)
        assert_same_floats(self.read(compiled(self.make(values, "float32"))), np.array(expected), "jit")
