"""The NumPy backend's primitives for the dropout family: stream words and in-place writes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from unidrop import DropoutPlan
from unidrop.memory import refuse_unwritable
from unidrop.philox_int64 import flat_indices

from .philox_arrays import PhiloxWorkspace, words_at

#: Words made per step: the temporaries of one step are bounded, whatever the array's size.
WORDS_CHUNK = 1 << 18


def _arange(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64)


def stream_words(plan: DropoutPlan) -> np.ndarray:
    """The words u_i of ``plan`` (uint32, ``plan.mask_shape``), blocks included.

    Made ``WORDS_CHUNK`` at a time: consecutive words four to a Philox block; a block's
    (global) indices one block each.
    """
    count = math.prod(plan.mask_shape)
    out = np.empty(count, dtype=np.uint32)
    if plan.block is None:
        workspace = PhiloxWorkspace(min(WORDS_CHUNK, count) // 4 + 2)
        for start in range(0, count, WORDS_CHUNK):
            stop = min(start + WORDS_CHUNK, count)
            out[start:stop] = workspace.words(plan.seed, plan.stream, start, stop - start)
    else:
        index = flat_indices(_arange, plan.mask_shape, plan.block).reshape(-1)
        for start in range(0, count, WORDS_CHUNK):
            chunk = index[start : start + WORDS_CHUNK]
            out[start : start + chunk.size] = words_at(plan.seed, plan.stream, chunk)
    return out.reshape(plan.mask_shape)


def check_writable(x: Any) -> None:
    """Refuse, naming it, an ``x`` that ``inplace=True`` cannot write: a NumPy scalar, a read-only
    array, or an array two of whose elements share memory (``as_strided`` views), which could not
    hold dropout's result (NumPy writes such arrays element after element, the last write wins)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"inplace=True needs a writable numpy.ndarray, got the scalar {type(x).__name__}")
    refuse_unwritable(x)


def copy_into(x: Any, y: np.ndarray) -> None:
    """Write ``y`` into ``x``, which :func:`check_writable` has accepted (``unidrop.dropout`` calls it
    first); a scalar or a read-only array is still refused here, naming it."""
    if not isinstance(x, np.ndarray) or not x.flags.writeable:
        check_writable(x)
    np.copyto(x, y)
