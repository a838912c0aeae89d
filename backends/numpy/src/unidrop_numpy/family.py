"""The NumPy backend's primitives for the dropout family: stream words and in-place writes."""

from __future__ import annotations

from typing import Any

import numpy as np

from unidrop import DropoutPlan
from unidrop.philox_int64 import flat_indices, words_at


def _arange(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64)


def stream_words(plan: DropoutPlan) -> np.ndarray:
    """The words u_i of ``plan`` (int64, ``plan.mask_shape``), blocks included."""
    index = flat_indices(_arange, plan.mask_shape, plan.block)
    return np.asarray(words_at(index, plan.seed, plan.stream, np.where), dtype=np.int64)


def copy_into(x: Any, y: np.ndarray) -> None:
    """Write ``y`` into ``x``; a NumPy scalar or a read-only array is refused, naming it."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"inplace=True needs a writable numpy.ndarray, got the scalar {type(x).__name__}")
    if not x.flags.writeable:
        raise ValueError(
            f"inplace=True needs a writable array; this {x.dtype} array of shape {x.shape} is read-only"
        )
    np.copyto(x, y)
