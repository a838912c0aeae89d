"""The dropout family: alpha dropout, drop path, Gaussian dropout, in-place dropout and the backwards.

Each function is checked on every device and dtype against the pure-Python reference
(:mod:`unidrop.reference`): alpha dropout and drop path bit for bit (alpha dropout's kept
elements may be rounded once, by a fused multiply-add, or twice), Gaussian dropout within its
documented bound. Their masks must be dropout's own. Statistics use fixed seeds and 5 sigma:
alpha dropout keeps mean 0 and variance 1 on N(0, 1) input, Gaussian noise has mean 1 and
variance p / (1 - p). Autograd and jit are checked where the backend declares them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import unidrop
from unidrop import Implementation, arguments, reference
from unidrop.arguments import TWO_POW_32

from .helpers import SuitePart, assert_same_floats, keep_string, sample_values

#: A seed and a stream with both 32-bit words set.
SEED, STREAM = (1 << 63) + (1 << 32) + 11, (1 << 40) + 3
#: (shape, broadcast_dims) of the exactness checks: element-wise, and the feature-wise form.
CASES = [((7, 13), ()), ((4, 6, 5), (2,)), ((3, 2, 4, 4), (2, 3))]
#: Elements of the family's statistics checks.
FAMILY_STAT_SIZE = 1 << 16


def same_or_either(actual: np.ndarray, pairs: list[tuple[float, float]], context: str) -> None:
    """Each element equals one of its two allowed values (NaN matches NaN, signs of zero count)."""
    actual = np.asarray(actual, dtype=np.float64).reshape(-1)
    first = np.array([pair[0] for pair in pairs])
    second = np.array([pair[1] for pair in pairs])

    def matches(want: np.ndarray) -> np.ndarray:
        same = (actual == want) & (np.signbit(actual) == np.signbit(want))
        return same | (np.isnan(actual) & np.isnan(want))

    bad = ~(matches(first) | matches(second))
    if bad.any():
        where = np.flatnonzero(bad)[:5].tolist()
        raise AssertionError(
            f"{context}: {int(bad.sum())} of {actual.size} elements differ from the reference, first at "
            f"{where}: got {actual[bad][:5].tolist()}, expected {first[bad][:5].tolist()}"
        )


def within_bound(actual: np.ndarray, want: list[float], bounds: list[float], context: str) -> None:
    """``|actual - want| <= bound`` element-wise; non-finite expected values must match exactly."""
    actual = np.asarray(actual, dtype=np.float64).reshape(-1)
    want_array, bound = np.array(want), np.array(bounds)
    finite = np.isfinite(want_array)
    with np.errstate(invalid="ignore"):
        bad = finite & ~(np.abs(actual - want_array) <= bound)
    bad |= ~finite & ~((actual == want_array) | (np.isnan(actual) & np.isnan(want_array)))
    if bad.any():
        where = np.flatnonzero(bad)[:5].tolist()
        raise AssertionError(
            f"{context}: {int(bad.sum())} of {actual.size} elements outside the documented bound, first at "
            f"{where}: got {actual[bad][:5].tolist()}, expected {want_array[bad][:5].tolist()} "
            f"within {bound[bad][:5].tolist()}"
        )


class FamilyChecks(SuitePart):
    """alpha_dropout, drop_path, gaussian_dropout, inplace=True and the backwards on one backend."""

    def family(self, fn: Callable[..., Any], x: Any, p: float, **kwargs: Any) -> Any:
        """``fn`` (a family function) on the backend under test, chosen by name."""
        return fn(x, p, backend=self.adapter.name, **kwargs)

    def skip_unless_rules(self, x: Any) -> None:
        """Skip the check, saying why, where the backend gives no namespace for its arrays (it
        implements only dropout), once the family's functions are seen to refuse it with a
        TypeError naming what is missing (another refusal, or none, fails the check)."""
        try:
            self.backend.implementation().namespace(x)
        except TypeError:
            with pytest.raises(TypeError, match="namespace"):
                self.family(unidrop.alpha_dropout, x, 0.5, seed=1)
            pytest.skip(
                f"backend {self.adapter.name!r} gives no array namespace (Implementation.namespace): "
                "the family's functions refuse its arrays, as they must"
            )

    def skip_unless_words(self, x: Any) -> None:
        """:meth:`skip_unless_rules`, and skip likewise where the backend provides no stream words,
        once ``gaussian_dropout`` is seen to refuse it with a TypeError naming what is missing."""
        self.skip_unless_rules(x)
        if type(self.backend.implementation()).stream_words is Implementation.stream_words:
            with pytest.raises(TypeError, match="stream_words"):
                self.family(unidrop.gaussian_dropout, x, 0.5, seed=1)
            pytest.skip(
                f"backend {self.adapter.name!r} provides no stream words (Implementation.stream_words): "
                "gaussian_dropout refuses its arrays, as it must"
            )

    # --- alpha dropout --------------------------------------------------------------------------

    @pytest.mark.parametrize(("shape", "dims"), CASES, ids=["elementwise", "feature-last", "feature-2d"])
    @pytest.mark.parametrize("p", [0.1, 0.5])
    def test_alpha_dropout_matches_the_reference(
        self, shape: tuple[int, ...], dims: tuple[int, ...], p: float, unidrop_dtype: str, unidrop_device: str
    ) -> None:
        """Output and mask equal the reference's; the mask is dropout's for the same randomness."""
        values = sample_values(shape, unidrop_dtype, 21)
        x = self.make(values, unidrop_dtype, unidrop_device)
        self.skip_unless_rules(x)
        y, keep = self.family(
            unidrop.alpha_dropout, x, p, seed=SEED, stream=STREAM, broadcast_dims=dims, return_mask=True
        )
        pairs, want_keep = reference.alpha_dropout(
            values.reshape(-1).tolist(), shape, unidrop_dtype, p, SEED, STREAM, dims
        )
        context = f"alpha_dropout shape={shape} dims={dims} p={p} {unidrop_dtype} on {unidrop_device}"
        assert self.adapter.shape_and_dtype(y) == (shape, unidrop_dtype), context
        assert self.adapter.device_of(y) == unidrop_device, context
        assert keep_string(self.read(keep)) == keep_string(np.array(want_keep)), context
        _, dropout_keep = self.dropout(x, p, seed=SEED, stream=STREAM, broadcast_dims=dims, return_mask=True)
        assert keep_string(self.read(keep)) == keep_string(self.read(dropout_keep)), (
            f"{context}: not dropout's mask"
        )
        same_or_either(self.read(y), pairs, context)

    def test_alpha_dropout_with_p_one_gives_zeros_and_p_zero_the_input(self) -> None:
        """p == 1: every element +0 (PyTorch's rule); p == 0 and training=False: the input itself."""
        values = sample_values((5, 8), "float32", 3)
        x = self.make(values, "float32")
        self.skip_unless_rules(x)
        assert_same_floats(
            self.read(self.family(unidrop.alpha_dropout, x, 1.0, seed=1)), np.zeros((5, 8)), "p=1"
        )
        assert self.family(unidrop.alpha_dropout, x, 0.0, seed=1) is x
        assert self.family(unidrop.alpha_dropout, x, 0.5, seed=1, training=False) is x

    def test_alpha_dropout_keeps_mean_zero_and_variance_one(self) -> None:
        """On N(0, 1) input, the output's mean is 0 and variance 1, each within 5 sigma."""
        p = 0.3
        values = np.random.default_rng(2024).standard_normal(FAMILY_STAT_SIZE)
        x = self.make(values, "float32")
        self.skip_unless_rules(x)
        y = self.read(self.family(unidrop.alpha_dropout, x, p, seed=77)).astype(np.float64)
        a, c, d = reference.alpha_affine(p)
        q = 1.0 - arguments.threshold(p) / TWO_POW_32
        mean = q * c + (1.0 - q) * d  # 0 up to q's distance from 1 - p
        second = q * (a * a + c * c) + (1.0 - q) * d * d
        fourth = q * (3 * a**4 + 6 * a * a * c * c + c**4) + (1.0 - q) * d**4
        n = FAMILY_STAT_SIZE
        assert abs(mean) < 1e-6 and abs(second - 1.0) < 1e-6
        assert abs(y.mean()) <= 5 * math.sqrt(1.0 / n), f"mean {y.mean()}"
        assert abs((y * y).mean() - 1.0) <= 5 * math.sqrt((fourth - 1.0) / n), f"E[y^2] {(y * y).mean()}"

    # --- drop path ------------------------------------------------------------------------------

    @pytest.mark.parametrize("scale_by_keep", [True, False], ids=["scaled", "unscaled"])
    def test_drop_path_matches_the_reference(
        self, scale_by_keep: bool, unidrop_dtype: str, unidrop_device: str
    ) -> None:
        """One mask value per sample, dropout's mask with every axis but the first broadcast."""
        shape, p = (16, 3, 5), 0.4
        values = sample_values(shape, unidrop_dtype, 22)
        x = self.make(values, unidrop_dtype, unidrop_device)
        self.skip_unless_rules(x)
        y, keep = self.family(
            unidrop.drop_path, x, p, seed=SEED, stream=STREAM, scale_by_keep=scale_by_keep, return_mask=True
        )
        want, want_keep = reference.drop_path(
            values.reshape(-1).tolist(), shape, unidrop_dtype, p, SEED, STREAM, scale_by_keep
        )
        context = f"drop_path scale_by_keep={scale_by_keep} {unidrop_dtype} on {unidrop_device}"
        assert self.adapter.shape_and_dtype(y) == (shape, unidrop_dtype), context
        assert tuple(self.read(keep).shape) == (16, 1, 1), context
        assert keep_string(self.read(keep)) == keep_string(np.array(want_keep)), context
        assert_same_floats(self.read(y), np.array(want), context)

    def test_drop_path_refuses_a_0d_array_and_a_non_bool_scale_by_keep(self) -> None:
        x = self.make(np.ones((2, 2)), "float32")
        self.skip_unless_rules(x)
        with pytest.raises(ValueError, match="leading"):
            self.family(unidrop.drop_path, self.make(np.array(1.0), "float32"), 0.5, seed=1)
        with pytest.raises(TypeError, match="scale_by_keep"):
            self.family(unidrop.drop_path, x, 0.5, seed=1, scale_by_keep=1)

    # --- Gaussian dropout -----------------------------------------------------------------------

    @pytest.mark.parametrize(("shape", "dims"), CASES[:2], ids=["elementwise", "feature-last"])
    @pytest.mark.parametrize("p", [0.1, 0.6])
    def test_gaussian_dropout_is_within_the_documented_bound(
        self, shape: tuple[int, ...], dims: tuple[int, ...], p: float, unidrop_dtype: str, unidrop_device: str
    ) -> None:
        """``x (1 + sigma z)`` with z from words (u_2i, u_2i+1), within the spec's bound of the reference."""
        values = sample_values(shape, unidrop_dtype, 23)
        x = self.make(values, unidrop_dtype, unidrop_device)
        self.skip_unless_words(x)
        y = self.family(unidrop.gaussian_dropout, x, p, seed=SEED, stream=STREAM, broadcast_dims=dims)
        want, bounds = reference.gaussian_dropout(
            values.reshape(-1).tolist(), shape, unidrop_dtype, p, SEED, STREAM, dims
        )
        context = f"gaussian_dropout shape={shape} dims={dims} p={p} {unidrop_dtype} on {unidrop_device}"
        assert self.adapter.shape_and_dtype(y) == (shape, unidrop_dtype), context
        assert self.adapter.device_of(y) == unidrop_device, context
        within_bound(self.read(y), want, bounds, context)

    def test_gaussian_noise_has_mean_one_and_variance_p_over_1_minus_p(self) -> None:
        """On ones, the output's mean is 1 and its variance p / (1 - p), each within 5 sigma."""
        p, n = 0.25, FAMILY_STAT_SIZE
        x = self.make(np.ones(n), "float32")
        self.skip_unless_words(x)
        y = self.read(self.family(unidrop.gaussian_dropout, x, p, seed=5))
        y = y.astype(np.float64)
        var = p / (1.0 - p)
        assert abs(y.mean() - 1.0) <= 5 * math.sqrt(var / n), f"mean {y.mean()}"
        sample_var = ((y - 1.0) ** 2).mean()
        assert abs(sample_var - var) <= 5 * math.sqrt(2.0 * var * var / n), (
            f"variance {sample_var}, want {var}"
        )

    def test_gaussian_dropout_refuses_p_one_and_is_the_identity_at_p_zero(self) -> None:
        x = self.make(np.ones((3, 4)), "float32")
        self.skip_unless_words(x)
        with pytest.raises(ValueError, match="p < 1"):
            self.family(unidrop.gaussian_dropout, x, 1.0, seed=1)
        assert self.family(unidrop.gaussian_dropout, x, 0.0, seed=1) is x
        assert self.family(unidrop.gaussian_dropout, x, 0.5, seed=1, training=False) is x

    # --- blocks ---------------------------------------------------------------------------------

    @pytest.mark.parametrize("name", ["alpha_dropout", "drop_path", "gaussian_dropout"])
    def test_a_block_gets_its_slice_of_the_whole_arrays_result(self, name: str) -> None:
        """Where the backend supports blocks, a block's result is the slice of the whole array's."""
        fn = getattr(unidrop, name)
        if not self.backend.implementation().supports_blocks:  # then a block is refused, saying so
            with pytest.raises(TypeError, match="blocks"):
                self.family(
                    fn, self.make(np.ones((2, 2)), "float32"), 0.3, seed=1, global_shape=(4, 4), offset=(0, 0)
                )
            pytest.skip(
                f"backend {self.adapter.name!r} implements no blocks: {name} refuses them, as it must"
            )
        probe = self.make(np.ones((2, 2)), "float32")  # a backend without the primitives refuses
        if name == "alpha_dropout":
            self.skip_unless_rules(probe)
        else:
            self.skip_unless_words(probe)
        whole_shape, start, size = (8, 12), (2, 5), (4, 6)
        values = sample_values(whole_shape, "float32", 24)
        whole = self.read(self.family(fn, self.make(values, "float32"), 0.3, seed=SEED, stream=STREAM))
        part = values[start[0] : start[0] + size[0], start[1] : start[1] + size[1]]
        block = self.family(
            fn,
            self.make(part, "float32"),
            0.3,
            seed=SEED,
            stream=STREAM,
            global_shape=whole_shape,
            offset=start,
        )
        want = whole[start[0] : start[0] + size[0], start[1] : start[1] + size[1]]
        assert_same_floats(self.read(block), want, f"{name} of a block")

    # --- in place and the backwards -------------------------------------------------------------

    def test_inplace_returns_the_input_holding_dropouts_values(self, unidrop_dtype: str) -> None:
        """``inplace=True`` writes dropout's result into a mutable array and returns it, else TypeError."""
        values = sample_values((6, 9), unidrop_dtype, 25)
        x = self.make(values, unidrop_dtype)
        if not self.backend.implementation().mutable_arrays:
            with pytest.raises(TypeError, match="inplace"):
                self.dropout(x, 0.3, seed=SEED, inplace=True)
            return
        y = self.dropout(x, 0.3, seed=SEED, stream=STREAM, inplace=True)
        assert y is x
        want, _ = reference.dropout(values.reshape(-1).tolist(), (6, 9), unidrop_dtype, 0.3, SEED, STREAM)
        assert_same_floats(self.read(x), np.array(want), f"dropout(inplace=True) {unidrop_dtype}")

    @pytest.mark.parametrize("dims", [(), (0,)], ids=["elementwise", "broadcast-first"])
    def test_backwards_are_the_gradient_of_dropout(self, dims: tuple[int, ...], unidrop_dtype: str) -> None:
        """``dropout_backward`` (regenerated) and ``dropout_backward_from_mask`` give grad * keep * s."""
        shape, p = (5, 11), 0.35
        grad_values = sample_values(shape, unidrop_dtype, 26)
        grad = self.make(grad_values, unidrop_dtype)
        self.skip_unless_rules(grad)
        x = self.make(np.ones(shape), unidrop_dtype)
        _, keep = self.dropout(x, p, seed=SEED, stream=STREAM, broadcast_dims=dims, return_mask=True)
        want, _ = reference.dropout(
            grad_values.reshape(-1).tolist(), shape, unidrop_dtype, p, SEED, STREAM, dims
        )
        regenerated = unidrop.dropout_backward(
            grad, p, seed=SEED, stream=STREAM, broadcast_dims=dims, backend=self.adapter.name
        )
        saved = unidrop.dropout_backward_from_mask(grad, keep, p, backend=self.adapter.name)
        assert_same_floats(self.read(regenerated), np.array(want), "dropout_backward")
        assert_same_floats(self.read(saved), np.array(want), "dropout_backward_from_mask")

    # --- abilities ------------------------------------------------------------------------------

    def test_autograd_of_drop_path_is_dropouts_gradient(self) -> None:
        """The gradient of ``drop_path`` is dropout's with every axis but the first broadcast.

        (alpha_dropout's and gaussian_dropout's gradients, ``cot * a`` where kept and
        ``cot * noise``, are checked by each backend's own tests through its real autograd.)
        """
        if not self.adapter.abilities.autograd:
            pytest.skip(f"backend {self.adapter.name!r} does not declare autograd")
        shape, p = (6, 4, 5), 0.3
        values = _finite(sample_values(shape, "float32", 27))
        cotangent = _finite(sample_values(shape, "float32", 28))
        x, g = self.make(values, "float32"), self.make(cotangent, "float32")
        y, grad = self.adapter.vjp(lambda a: unidrop.drop_path(a, p, seed=SEED, stream=STREAM), x, g)
        want_y, _ = reference.drop_path(values.reshape(-1).tolist(), shape, "float32", p, SEED, STREAM)
        want, _ = reference.drop_path(cotangent.reshape(-1).tolist(), shape, "float32", p, SEED, STREAM)
        assert_same_floats(self.read(y), np.array(want_y), "drop_path under autograd")
        assert_same_floats(self.read(grad), np.array(want), "gradient of drop_path")

    def test_jit_of_the_family(self) -> None:
        """Each function compiled gives the reference's result."""
        if not self.adapter.abilities.jit:
            pytest.skip(f"backend {self.adapter.name!r} does not declare jit")
        shape, p = (7, 9), 0.4
        values = sample_values(shape, "float32", 29)
        flat = values.reshape(-1).tolist()
        x = self.make(values, "float32")
        y = self.adapter.jit(lambda a: unidrop.alpha_dropout(a, p, seed=SEED, stream=STREAM))(x)
        pairs, _ = reference.alpha_dropout(flat, shape, "float32", p, SEED, STREAM)
        same_or_either(self.read(y), pairs, "alpha_dropout under jit")
        y = self.adapter.jit(
            lambda a: unidrop.drop_path(a, p, seed=SEED, stream=STREAM, scale_by_keep=False)
        )(x)
        want, _ = reference.drop_path(flat, shape, "float32", p, SEED, STREAM, scale_by_keep=False)
        assert_same_floats(self.read(y), np.array(want), "drop_path under jit")
        y = self.adapter.jit(lambda a: unidrop.gaussian_dropout(a, p, seed=SEED, stream=STREAM))(x)
        want, bounds = reference.gaussian_dropout(flat, shape, "float32", p, SEED, STREAM)
        within_bound(self.read(y), want, bounds, "gaussian_dropout under jit")


def _finite(values: np.ndarray) -> np.ndarray:
    """``values`` with NaN and Inf replaced by 1 (gradients of non-finite inputs are not in the contract)."""
    values[~np.isfinite(values)] = 1.0
    return values
