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
