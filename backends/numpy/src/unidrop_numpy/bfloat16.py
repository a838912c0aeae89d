"""NumPy's bfloat16, which the ml_dtypes package provides (the one JAX uses); never imported here.

unidrop-numpy does not depend on ml_dtypes: a bfloat16 NumPy array can only exist once ml_dtypes
is imported, so arrays are recognised through ``sys.modules``, and ml_dtypes is imported only
to make such an array (:func:`numpy_dtype`, for the conformance suite).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from typing import Any

import numpy as np

NAME = "bfloat16"


@functools.lru_cache(maxsize=1)
def _findable() -> bool:
    return importlib.util.find_spec("ml_dtypes") is not None


def available() -> bool:
    """True if ml_dtypes is imported or can be (looked up once, without importing it)."""
    return sys.modules.get("ml_dtypes") is not None or _findable()


#: Names already worked out, by dtype (``dtype.name`` costs microseconds per call in NumPy 2).
_names: dict[Any, str] = {}


def dtype_name(dtype: Any) -> str:
    """The canonical name of a NumPy dtype: ``"bfloat16"`` only for ml_dtypes' bfloat16.

    Another library's dtype that calls itself bfloat16 gets its module in the name, so that it
    is refused as an unsupported dtype instead of being trusted to convert like ml_dtypes'.
    """
    try:
        name = _names.get(dtype)
    except TypeError:  # not hashable: not a NumPy dtype
        return _dtype_name(dtype)
    if name is None:
        if len(_names) > 64:  # structured dtypes are many: keep the cache small
            _names.clear()
        name = _names[dtype] = _dtype_name(dtype)
    return name


def _dtype_name(dtype: Any) -> str:
    name = str(dtype.name)
    if name != NAME:
        return name
    ml_dtypes = sys.modules.get("ml_dtypes")
    if ml_dtypes is not None and dtype.type is getattr(ml_dtypes, NAME, None):
        return NAME
    return f"{getattr(dtype.type, '__module__', '?')}.{name}"


def round_bits(values: Any) -> Any:
    """float32 values rounded to bfloat16 bits (uint16 array) by the mask stream's rule (the C header's
    ``UD_BF16_ROUND_BITS``): to nearest, ties to even; a NaN stays NaN, quiet, its payload's top bits
    kept (ml_dtypes and torch make every NaN one canonical NaN instead)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    nan = (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    quiet = (bits >> np.uint32(16)) | np.uint32(0x0040)
    return np.where(nan, quiet, rounded).astype(np.uint16)


def numpy_dtype() -> Any:
    """ml_dtypes' bfloat16 as a NumPy dtype; TypeError saying what to install if it is missing."""
    try:
        import ml_dtypes
    except ImportError:
        raise TypeError(
            "bfloat16 NumPy arrays need the ml_dtypes package (python -m pip install ml_dtypes)"
        ) from None
    import numpy

    return numpy.dtype(ml_dtypes.bfloat16)
