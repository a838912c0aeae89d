"""The CuPy backend's work: mask stream v1 on ``cupy.ndarray`` through the fused kernels (:mod:`.run`)."""

from __future__ import annotations

from typing import Any

import cupy

from unidrop import DropoutPlan, Implementation
from unidrop.memory import refuse_unwritable

from . import bfloat16, family
from .run import dropout_array

_BASE_DTYPES = frozenset({"float16", "float32", "float64"})


class CupyImplementation(Implementation):
    """Dropout of ``cupy.ndarray`` on the array's own device and the current CuPy stream.

    ``seed=None`` draws from unidrop's global source (the default randomness); CuPy's own
    random state is never touched. Blocks of a global mask (``global_shape=``, ``offset=``)
    are supported: the kernels take the global mask's strides and the block's start.
    """

    supports_blocks = True

    def dtypes(self) -> frozenset[str]:
        """float16, float32 and float64, and bfloat16 where CuPy >= 14 and ml_dtypes provide it."""
        return (_BASE_DTYPES | {bfloat16.NAME}) if bfloat16.numpy_dtype() is not None else _BASE_DTYPES

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        return tuple(x.shape), x.dtype.name

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        return dropout_array(x, plan)

    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        with x.device:
            return cupy.ones(shape, dtype=bool)

    mutable_arrays = True

    def stream_words(self, x: Any, plan: DropoutPlan) -> Any:
        return family.stream_words(x, plan)

    def namespace(self, x: Any) -> Any:
        return cupy

    def check_writable(self, x: Any) -> None:
        """Refuse an array whose elements share memory (``as_strided`` views, zero strides):
        ``cupy.copyto`` would leave each such element with one thread's write, not the result."""
        refuse_unwritable(x)

    def copy_into(self, x: Any, y: Any) -> None:
        family.copy_into(x, y)

    def devices(self) -> list[str]:
        """``cuda:N`` for every visible GPU; empty where CuPy finds none (no driver, no device)."""
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception:  # CUDARuntimeError without a driver, or a driver too old for the wheel
            return []
        return [f"cuda:{i}" for i in range(count)]
