"""The NumPy backend object registered with unidrop (imports NumPy only when used)."""

from __future__ import annotations

import sys
from typing import Any

from unidrop import Backend, DropoutPlan

from . import bfloat16

_BASE_DTYPES = frozenset({"float16", "float32", "float64"})


class NumpyBackend(Backend):
    """Mask stream v1 for ``numpy.ndarray`` (and NumPy scalars), computed in fixed-size chunks.

    ``seed=None`` draws the seed from unidrop's global source, which
    :func:`unidrop.manual_seed` makes reproducible; NumPy's own random state is never touched.
    bfloat16 arrays (ml_dtypes' ``bfloat16``, as JAX uses) are supported where ml_dtypes is
    installed; unidrop-numpy does not require it.
    """

    name = "numpy"
    framework = "numpy"
    distribution = "unidrop-numpy"

    @property  # type: ignore[override]
    def dtypes(self) -> frozenset[str]:
        """float16, float32 and float64, and bfloat16 where ml_dtypes is installed."""
        return (_BASE_DTYPES | {bfloat16.NAME}) if bfloat16.available() else _BASE_DTYPES

    def accepts(self, x: Any) -> bool:
        np = sys.modules["numpy"]
        return isinstance(x, (np.ndarray, np.generic))

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        return tuple(x.shape), bfloat16.dtype_name(x.dtype)

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        import numpy as np

        from .chunked import dropout_array

        _check_subclass(x)
        array = np.asarray(x)  # a memmap's data as a plain ndarray view (no copy)
        y, keep = dropout_array(array, plan)
        return (y[()] if isinstance(x, np.generic) else y), keep

    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        import numpy as np

        return np.ones(shape, dtype=bool)

    def global_rng_state(self) -> Any:
        import numpy as np

        return np.random.get_state()[1]

    def from_numpy(self, array: Any, dtype: str, device: str | None = None) -> Any:
        return array.astype(bfloat16.numpy_dtype() if dtype == bfloat16.NAME else dtype)

    def to_numpy(self, x: Any) -> Any:
        import numpy as np

        if bfloat16.dtype_name(x.dtype) == bfloat16.NAME:
            return np.asarray(x).astype(np.float32)  # exact: every bfloat16 is a float32
        return np.array(x, copy=True)


def _check_subclass(x: Any) -> None:
    """Refuse ``ndarray`` subclasses whose meaning a plain result would lose; memmaps are plain data.

    ``numpy.memmap`` (and its subclasses) only say where the data lives: they are taken, and the
    result is a plain ``ndarray`` in memory. Masked arrays, matrices and any other subclass are
    refused with a TypeError naming the type and saying how to pass the plain data.
    """
    np = sys.modules["numpy"]
    if not isinstance(x, np.ndarray) or type(x) is np.ndarray or isinstance(x, np.memmap):
        return
    kind = f"{type(x).__module__}.{type(x).__qualname__}"
    masked = sys.modules.get("numpy.ma")  # a masked array exists only once numpy.ma is imported
    if masked is not None and isinstance(x, masked.MaskedArray):
        why, fix = (
            "its mask",
            "x.filled(value) for the data with masked elements replaced, or numpy.ma.getdata(x)",
        )
    elif isinstance(x, np.matrix):
        why, fix = "the matrix rules", "numpy.asarray(x), and numpy.asmatrix(y) on the result if needed"
    else:
        why, fix = "what the subclass adds", "numpy.asarray(x) if its plain data is what should be dropped"
    raise TypeError(
        f"unidrop's NumPy backend takes numpy.ndarray (and numpy.memmap), got the subclass {kind}, "
        f"whose meaning ({why}) a plain result would lose; pass {fix}"
    )
