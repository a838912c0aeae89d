"""Whether a CUDA GPU is usable through CuPy here, and why not when it is not."""

from __future__ import annotations

import functools


@functools.cache
def gpu_unavailable_reason() -> str | None:
    """None if CuPy sees at least one GPU; otherwise the reason, for a pytest skip."""
    try:
        import cupy
    except Exception as error:  # ImportError, or a broken CUDA install raising on import
        return (
            f"CuPy is not importable ({type(error).__name__}: {error}); install cupy-cuda12x or cupy-cuda13x"
        )
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDARuntimeError: no driver, or a driver too old for the wheel
        return f"CuPy {cupy.__version__} finds no usable CUDA device ({type(error).__name__}: {error})"
    if count == 0:
        return f"CuPy {cupy.__version__} finds no CUDA device"
    return None
