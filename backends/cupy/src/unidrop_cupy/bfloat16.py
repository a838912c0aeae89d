"""bfloat16 on CuPy: ml_dtypes' ``bfloat16``, which CuPy takes from version 14 on.

ml_dtypes is optional (the ``unidrop-cupy[bfloat16]`` extra); without it, or with an older
CuPy, the backend supports float16, float32 and float64 only.
"""

from __future__ import annotations

from typing import Any

import cupy
import numpy

try:
    import ml_dtypes
except ImportError:  # the optional extra is not installed: no bfloat16
    ml_dtypes = None  # type: ignore[assignment]

#: The canonical name of the dtype.
NAME = "bfloat16"
#: The first CuPy major version that takes ml_dtypes' bfloat16 arrays.
FIRST_CUPY_MAJOR = 14


def cupy_takes_bfloat16(cupy_version: str) -> bool:
    """True if a CuPy of ``cupy_version`` takes bfloat16 arrays (major >= 14).

    A version whose major part is not a number (a development build) is taken to.
    """
    major = cupy_version.split(".")[0]
    return not major.isdigit() or int(major) >= FIRST_CUPY_MAJOR


def numpy_dtype() -> Any | None:
    """NumPy's ``bfloat16`` dtype if ml_dtypes is installed and this CuPy takes it, else None."""
    if ml_dtypes is None or not cupy_takes_bfloat16(cupy.__version__):
        return None
    return numpy.dtype(ml_dtypes.bfloat16)


def unavailable_reason() -> str:
    """Why bfloat16 CuPy arrays cannot be made here, for an error message."""
    missing = [] if cupy_takes_bfloat16(cupy.__version__) else [f"this is CuPy {cupy.__version__}"]
    missing += ["ml_dtypes is not installed"] if ml_dtypes is None else []
    return f"bfloat16 CuPy arrays need CuPy >= {FIRST_CUPY_MAJOR} and ml_dtypes ({'; '.join(missing)})"
