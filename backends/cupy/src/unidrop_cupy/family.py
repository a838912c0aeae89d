"""The CuPy backend's primitives for the dropout family: stream words on the device, in-place writes."""

from __future__ import annotations

from typing import Any

import cupy

from unidrop import DropoutPlan
from unidrop.philox_int64 import flat_indices, words_at


def stream_words(x: Any, plan: DropoutPlan) -> Any:
    """The words u_i of ``plan`` (int64, ``plan.mask_shape``) on ``x``'s device, blocks included."""
    with x.device:
        index = flat_indices(lambda n: cupy.arange(n, dtype=cupy.int64), plan.mask_shape, plan.block)
        return words_at(index, plan.seed, plan.stream, cupy.where)


def copy_into(x: Any, y: Any) -> None:
    """Write ``y`` into ``x`` on its device (``cupy.copyto``)."""
    with x.device:
        cupy.copyto(x, y)
