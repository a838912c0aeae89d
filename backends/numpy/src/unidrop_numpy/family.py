"""The NumPy backend's primitives for the dropout family: stream words and in-place writes."""

from __future__ import annotations

from typing import Any

import numpy as np

from unidrop import DropoutPlan
from unidrop.memory import refuse_unwritable
from unidrop.philox_int64 import flat_indices, words_at


def _arange(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64)


def stream_words(plan: DropoutPlan) -> np.ndarray:
    """The words u_i of ``plan`` (int64, ``plan.mask_shape``), blocks included."""
    index = flat_indices(_arange, plan.mask_shape, plan.block)
    return np.asarray(words_at(index, plan.seed, plan.stream, np.where), dtype=np.int64)


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
