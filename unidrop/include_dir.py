"""Where the one C source of mask stream v1 lives, for compiled kernels (as ``numpy.get_include()``)."""

from __future__ import annotations

from pathlib import Path

#: The header, relative to :func:`get_include`: ``#include "unidrop/mask_stream_v1.h"``.
HEADER = "unidrop/mask_stream_v1.h"


def get_include() -> str:
    """The folder to put on a C/C++/CUDA include path so that ``#include "unidrop/mask_stream_v1.h"``
    finds the shipped header (Philox4x32-10, keep decision, scale, select, 16-bit rounding)."""
    return str(Path(__file__).parent / "include")
