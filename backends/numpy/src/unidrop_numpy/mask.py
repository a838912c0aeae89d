"""The keep mask alone, for requests that have a mask but no elements to apply it to."""

from __future__ import annotations

import numpy as np

from unidrop import DropoutPlan

from .philox import PhiloxWorkspace

_STEP = 1 << 15


def mask_only(plan: DropoutPlan) -> np.ndarray:
    """The boolean keep mask of ``plan.mask_shape`` (True = kept), computed in fixed-size steps."""
    keep = np.empty(plan.mask_shape, dtype=bool)
    flat = keep.reshape(-1)
    if plan.drops_all:
        flat[...] = False
        return keep
    workspace = PhiloxWorkspace(_STEP // 4 + 2)
    for start in range(0, flat.size, _STEP):
        count = min(_STEP, flat.size - start)
        flat[start : start + count] = workspace.words(plan.seed, plan.stream, start, count) >= plan.threshold
    return keep
