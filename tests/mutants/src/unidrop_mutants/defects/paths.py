"""Mutants of the compiled and gradient paths (the suite adapter's ``jit`` and ``vjp``)."""

from __future__ import annotations

import dataclasses

import numpy as np

from unidrop import DropoutPlan
from unidrop.philox import MASK32

from ..stream import StreamV1


class JitDropsSeedHighWord(StreamV1):
    """Under jit the seed's high word is dropped (the seed is traced as a 32-bit value)."""

    caught_by = ("test_jit_gives_the_reference_result_and_mask[seed-high-word]",)

    def plan_on_path(self, plan: DropoutPlan) -> DropoutPlan:
        return dataclasses.replace(plan, seed=plan.seed & MASK32) if self.path == "jit" else plan


class JitDropsStreamHighWord(StreamV1):
    """Under jit the stream's high word is dropped."""

    caught_by = ("test_jit_gives_the_reference_result_and_mask[64-bit-broadcast-first]",)

    def plan_on_path(self, plan: DropoutPlan) -> DropoutPlan:
        return dataclasses.replace(plan, stream=plan.stream & MASK32) if self.path == "jit" else plan


class GradientDropsSeedHighWord(StreamV1):
    """The gradient's mask is drawn with the seed's high word dropped."""

    caught_by = ("test_autograd_gradient_is_cotangent_times_keep_times_scale[64-bit-broadcast-first]",)

    def plan_on_path(self, plan: DropoutPlan) -> DropoutPlan:
        return dataclasses.replace(plan, seed=plan.seed & MASK32) if self.path == "grad" else plan


class GradientIgnoresBroadcastDims(StreamV1):
    """The gradient's mask is drawn for the whole shape, ignoring broadcast_dims."""

    caught_by = ("test_autograd_gradient_is_cotangent_times_keep_times_scale[64-bit-broadcast-last]",)

    def plan_on_path(self, plan: DropoutPlan) -> DropoutPlan:
        if self.path != "grad":
            return plan
        return DropoutPlan.build(plan.shape, plan.dtype, plan.p, plan.seed, plan.stream, (), plan.return_mask)


class GradientUsesStaleMask(StreamV1):
    """The gradient reuses the mask of the last forward call, wrong when a function drops out twice."""

    caught_by = ("test_autograd_of_two_dropout_calls_uses_each_calls_mask",)

    _saved: np.ndarray | None = None

    def keep(self, plan: DropoutPlan) -> np.ndarray:
        saved = self._saved
        if self.path == "grad" and saved is not None and saved.shape == plan.mask_shape:
            return saved
        keep = super().keep(plan)
        if self.path == "eager":
            self._saved = keep
        return keep
