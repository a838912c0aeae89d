"""Mutants of the values: scale, compute dtype, 16-bit rounding, subnormals, overflow, signed zeros."""

from __future__ import annotations

import numpy as np

from unidrop import DropoutPlan

from ..stream import StreamV1

_HALF = ("float16", "bfloat16")

# ---- scale ----------------------------------------------------------------------------------


class ScaleFloat32ForFloat64(StreamV1):
    """For float64 inputs, s is rounded to float32 (then widened) instead of kept in float64."""

    caught_by = ("test_matches_reference_on_every_device[cpu-float64-shape1-0.3-4294967296-5-dims1]",)

    def scale(self, plan: DropoutPlan) -> np.generic:
        return np.dtype(plan.compute_dtype).type(np.float32(plan.scale))


class ScaleInFloat32Arithmetic(StreamV1):
    """For float32 compute, s = 1 / (1 - p) is evaluated in float32 arithmetic, p rounded first."""

    caught_by = ("test_matches_reference",)

    def scale(self, plan: DropoutPlan) -> np.generic:
        if plan.compute_dtype != "float32":
            return super().scale(plan)
        with np.errstate(divide="ignore"):
            return np.float32(1) / (np.float32(1) - np.float32(plan.p))


class DividesByKeepProbability(StreamV1):
    """Kept elements are x / (1 - p) in the compute dtype instead of x * s."""

    caught_by = ("test_matches_reference",)

    def scaled(self, x: np.ndarray, plan: DropoutPlan) -> np.ndarray:
        compute = np.dtype(plan.compute_dtype)
        quotient = np.divide(x, compute.type(1.0 - plan.p), dtype=compute)
        return self.round_back(quotient, x.dtype)


class TinyPUnscaled(StreamV1):
    """When t = 0 (p < 2**-32) kept elements are copied unscaled, though s > 1 in float64."""

    caught_by = ("test_tiny_p_and_p_near_one[float64]",)

    def scaled(self, x: np.ndarray, plan: DropoutPlan) -> np.ndarray:
        return x.copy() if plan.threshold == 0 else super().scaled(x, plan)


# ---- compute dtype and the final rounding ---------------------------------------------------


class HalfComputedInHalf(StreamV1):
    """16-bit inputs are multiplied in their own dtype, by s rounded to it, not in float32."""

    caught_by = ("test_matches_reference_on_every_device",)

    def scaled(self, x: np.ndarray, plan: DropoutPlan) -> np.ndarray:
        if plan.dtype not in _HALF:
            return super().scaled(x, plan)
        return np.multiply(x, x.dtype.type(plan.scale))


class HalfViaFloat64(StreamV1):
    """16-bit products are formed in float64 and rounded once to the 16-bit dtype (no float32 step)."""

    caught_by = ("test_every_16bit_pattern[float16-p0.7]", "test_every_16bit_pattern[bfloat16-p0.7]")

    def scaled(self, x: np.ndarray, plan: DropoutPlan) -> np.ndarray:
        if plan.dtype not in _HALF:
            return super().scaled(x, plan)
        exact = np.multiply(x.astype(np.float64), np.float64(self.scale(plan)))
        return exact.astype(x.dtype)


class HalfSaturates(StreamV1):
    """A 16-bit product beyond the dtype's range becomes its largest finite value, not infinity."""

    caught_by = (
        "test_every_16bit_pattern[float16-p0.1]",
        "test_overflow_signed_zeros_and_specials[float16-p0.5]",
    )

    def round_back(self, product: np.ndarray, dtype: np.dtype) -> np.ndarray:
        if str(dtype) not in _HALF:
            return super().round_back(product, dtype)
        rounded = product.astype(dtype)
        largest = np.float32(np.finfo(np.float16).max if str(dtype) == "float16" else 3.3895313892515355e38)
        overflowed = np.isinf(rounded.astype(np.float32)) & np.isfinite(product)
        return np.where(overflowed, np.copysign(largest, product), product).astype(dtype)


def _bfloat16_bits(product: np.ndarray, rounding: int) -> np.ndarray:
    """float32 ``product`` cut to bfloat16 after adding ``rounding`` to its bits (finite values only)."""
    bits = product.astype(np.float32).view(np.uint32)
    cut = ((bits + np.uint32(rounding)) & np.uint32(0xFFFF0000)).view(np.float32)
    return np.where(np.isfinite(product), cut, product)


class Bfloat16Truncates(StreamV1):
    """bfloat16 results are the float32 product truncated (rounded toward zero)."""

    caught_by = ("test_matches_reference_on_every_device",)

    def round_back(self, product: np.ndarray, dtype: np.dtype) -> np.ndarray:
        if str(dtype) != "bfloat16":
            return super().round_back(product, dtype)
        return _bfloat16_bits(product, 0).astype(dtype)


class Bfloat16TiesAway(StreamV1):
    """bfloat16 results round halfway cases away from zero instead of to even."""

    caught_by = ("test_matches_reference_on_every_device",)

    def round_back(self, product: np.ndarray, dtype: np.dtype) -> np.ndarray:
        if str(dtype) != "bfloat16":
            return super().round_back(product, dtype)
        return _bfloat16_bits(product, 0x8000).astype(dtype)


class Float64ComputedInFloat32(StreamV1):
    """float64 inputs are multiplied in float32 (the compute dtype taken as float32 for every dtype)."""

    caught_by = ("test_matches_reference_on_every_device",)

    def scaled(self, x: np.ndarray, plan: DropoutPlan) -> np.ndarray:
        if plan.dtype != "float64":
            return super().scaled(x, plan)
        return np.multiply(x, np.float32(plan.scale), dtype=np.float32).astype(np.float64)


class HalfReturnedAsFloat32(StreamV1):
    """16-bit inputs give a float32 result: the compute dtype's product is not rounded back."""

    caught_by = ("test_type_shape_dtype_and_device_are_preserved",)

    def round_back(self, product: np.ndarray, dtype: np.dtype) -> np.ndarray:
        return product if str(dtype) in _HALF else super().round_back(product, dtype)


# ---- subnormals and overflow ----------------------------------------------------------------


def _flushed(values: np.ndarray, smallest_normal: float) -> np.ndarray:
    return np.where(np.abs(values) < smallest_normal, np.copysign(0, values), values).astype(values.dtype)


class FlushesFloat32Subnormals(StreamV1):
    """float32 and bfloat16 subnormal inputs and results are flushed to zero (as XLA on CPU does)."""

    caught_by = (
        "test_subnormals_are_scaled_exactly[float32-p0.5]",
        "test_subnormals_are_scaled_exactly[bfloat16-p0.5]",
    )

    def scaled(self, x: np.ndarray, plan: DropoutPlan) -> np.ndarray:
        if plan.compute_dtype != "float32" or plan.dtype == "float16":
            return super().scaled(x, plan)
        tiny = float(np.finfo(np.float32).tiny)
        product = _flushed(_flushed(x.astype(np.float32), tiny) * self.scale(plan), tiny)
        return self.round_back(product, x.dtype)


class FlushesFloat64Subnormals(StreamV1):
    """float64 subnormal inputs and results are flushed to zero."""

    caught_by = ("test_subnormals_are_scaled_exactly[float64-p0.5]",)

    def scaled(self, x: np.ndarray, plan: DropoutPlan) -> np.ndarray:
        if plan.dtype != "float64":
            return super().scaled(x, plan)
        tiny = float(np.finfo(np.float64).tiny)
        return _flushed(_flushed(x, tiny) * self.scale(plan), tiny)


class OverflowClamped(StreamV1):
    """A float32 or float64 product that overflows is clamped to the largest finite value, not inf."""

    caught_by = (
        "test_overflow_signed_zeros_and_specials[float32-p0.5]",
        "test_overflow_signed_zeros_and_specials[float64-p0.5]",
    )

    def scaled(self, x: np.ndarray, plan: DropoutPlan) -> np.ndarray:
        product = super().scaled(x, plan)
        if plan.dtype not in ("float32", "float64"):
            return product
        overflowed = np.isinf(product) & np.isfinite(x)
        return np.where(overflowed, np.copysign(np.finfo(x.dtype).max, x), product).astype(x.dtype)


# ---- signed zeros ---------------------------------------------------------------------------


class DroppedZeroKeepsSign(StreamV1):
    """A dropped zero passes through as x * s, so a dropped -0 stays -0 instead of +0."""

    caught_by = ("test_nan_and_inf_are_zeroed_when_dropped",)

    def select(self, keep: np.ndarray, kept: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.where(keep | (x == 0), kept, np.zeros((), x.dtype))


class KeptZeroLosesSign(StreamV1):
    """A kept -0 becomes +0 (the product has +0 added to it)."""

    caught_by = ("test_nan_and_inf_are_zeroed_when_dropped",)

    def select(self, keep: np.ndarray, kept: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.where(keep, kept + np.zeros((), x.dtype), np.zeros((), x.dtype))
