"""Mutants of what a call returns and what it leaves behind: masks, buffers, random state, seeds."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import numpy as np

from unidrop import DropoutPlan, seeding

from ..stream import StreamV1

# ---- masks ----------------------------------------------------------------------------------


class MaskIsUint8(StreamV1):
    """The returned mask is uint8 (0/1), not bool."""

    caught_by = ("test_type_shape_dtype_and_device_are_preserved",)

    def mask_out(self, keep: np.ndarray, plan: DropoutPlan) -> np.ndarray:
        return keep.astype(np.uint8)


class MaskOfInputShape(StreamV1):
    """With broadcast_dims, the returned mask is broadcast to the input's shape, not the mask shape."""

    caught_by = ("test_type_shape_dtype_and_device_are_preserved",)

    def mask_out(self, keep: np.ndarray, plan: DropoutPlan) -> np.ndarray:
        return np.broadcast_to(keep, plan.shape).copy()


class BroadcastMaskSliced(StreamV1):
    """With broadcast_dims, the mask is drawn for the whole shape and its first slice taken."""

    caught_by = ("test_matches_reference_on_every_device",)

    def keep(self, plan: DropoutPlan) -> np.ndarray:
        if not plan.broadcast_dims:
            return super().keep(plan)
        whole = super().keep(dataclasses.replace(plan, mask_shape=plan.shape))
        first = tuple(
            slice(0, 1) if axis in plan.broadcast_dims else slice(None) for axis in range(whole.ndim)
        )
        return whole[first]


class IdentityMaskIgnoresBroadcastDims(StreamV1):
    """The mask of p = 0 and eval has the input's shape, ignoring broadcast_dims."""

    caught_by = ("test_p_zero_and_eval_return_the_input_itself",)

    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        return np.ones(np.shape(x), dtype=bool)


class IdentityMaskUint8(StreamV1):
    """The mask of p = 0 and eval is uint8 ones, not bool."""

    caught_by = ("test_identity_mask_has_the_mask_shape_and_bool_dtype",)

    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        return np.ones(shape, dtype=np.uint8)


class IdentityMaskCached(StreamV1):
    """The mask of p = 0 and eval is one all-True array per shape, handed out again on every call."""

    caught_by = ("test_each_identity_mask_is_a_new_array",)

    def __init__(self) -> None:
        super().__init__()
        self._masks: dict[tuple[int, ...], np.ndarray] = {}

    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        return self._masks.setdefault(tuple(shape), np.ones(shape, dtype=bool))


# ---- buffers --------------------------------------------------------------------------------


class _ReusesBuffers(StreamV1):
    """Keeps one buffer per shape and dtype and returns it from every call."""

    def __init__(self) -> None:
        super().__init__()
        self._buffers: dict[tuple[Any, ...], np.ndarray] = {}

    def reused(self, what: str, array: np.ndarray) -> np.ndarray:
        if array.ndim == 0:
            return array
        buffer = self._buffers.setdefault((what, array.shape, array.dtype), np.empty_like(array))
        buffer[...] = array
        return buffer


class ResultIsTheInputWhenNothingChanges(StreamV1):
    """Where nothing is dropped and the scale is 1 (p = 1e-20), the result is a view of the input."""

    caught_by = ("test_the_result_shares_no_memory_with_the_input[nothing-dropped]",)

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        y, keep = super().dropout(x, plan)
        if isinstance(x, np.ndarray) and self.threshold(plan) == 0 and float(self.scale(plan)) == 1.0:
            y = x.view()
        return y, keep


class OutputBufferReused(_ReusesBuffers):
    """The output is one buffer per shape and dtype, overwritten by the next call."""

    caught_by = ("test_results_and_masks_survive_later_calls",)

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        y, keep = super().dropout(x, plan)
        return (self.reused("y", y) if isinstance(y, np.ndarray) else y), keep


class MaskBufferReused(_ReusesBuffers):
    """The returned mask is one buffer per shape, overwritten by the next call."""

    caught_by = (
        "test_results_and_masks_survive_later_calls",
        "test_different_seeds_and_streams_give_different_masks[seed]",
    )

    def mask_out(self, keep: np.ndarray, plan: DropoutPlan) -> np.ndarray:
        return self.reused("keep", keep)


# ---- global random state and seeds ----------------------------------------------------------


class DrawsFromNumpyGlobalRng(StreamV1):
    """Every call draws one number from NumPy's global (legacy) random state."""

    caught_by = ("test_explicit_seed_leaves_global_random_state_untouched",)

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        np.random.random()
        return super().dropout(x, plan)


class DrawsFromNumpyGlobalRngWhenLarge(StreamV1):
    """Calls on 2**16 elements or more draw one number from NumPy's global random state."""

    caught_by = ("test_a_large_call_leaves_global_random_state_untouched",)

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        if np.size(x) >= 1 << 16:
            np.random.random()
        return super().dropout(x, plan)


class SeedNoneLowEntropy(StreamV1):
    """seed=None draws only 16 bits (from unidrop's source, so manual_seed still governs it)."""

    caught_by = ("test_seed_none_masks_have_entropy",)

    def resolve_randomness(self, seed: Any, stream: Any, x: Any) -> tuple[Any, Any]:
        drawn = seed is None
        seed, stream = super().resolve_randomness(seed, stream, x)
        return (seed & 0xFFFF if drawn else seed), stream


class SeedNoneIgnoresManualSeed(StreamV1):
    """seed=None draws from the OS, so unidrop.manual_seed does not make it reproducible."""

    caught_by = ("test_seed_none_follows_the_backend_convention",)

    def resolve_randomness(self, seed: Any, stream: Any, x: Any) -> tuple[Any, Any]:
        if seed is None:
            seed = random.SystemRandom().getrandbits(64)
        return super().resolve_randomness(seed, stream, x)


class IdentityDrawsSeed(StreamV1):
    """p = 0 and eval with seed=None draw a seed, so they consume randomness."""

    caught_by = ("test_p_zero_consumes_no_randomness",)

    def check_randomness(self, seed: Any, stream: Any, x: Any) -> None:
        super().check_randomness(seed, stream, x)
        if seed is None:
            seeding.draw_seed()
