"""The CUDA source of unidrop's CuPy kernels, shipped as package data, and how it is compiled.

Nothing here imports CuPy: the host-compiled exactness tests and the NVRTC compile check
read the same files and the same compile-time constants as the backend does.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import unidrop
from unidrop.include_dir import HEADER as MASK_STREAM_HEADER

#: The per-thread functions of the kernels (compile for the host too); they include the core's
#: one C source of mask stream v1, ``unidrop.get_include() / MASK_STREAM_HEADER``.
CORE_HEADER = "unidrop_dropout.cuh"
#: The ``__global__`` kernels: grid-stride loops over the core's per-thread functions.
KERNELS_SOURCE = "unidrop_kernels.cu"

#: Philox blocks per thread on the contiguous fast path, by dtype: 4 elements per block, so
#: every thread moves 16 bytes (32 for float64) with vector loads and stores.
BLOCKS_PER_THREAD = {"float16": 2, "bfloat16": 2, "float32": 1, "float64": 1}
#: Threads per CUDA block (the kernels declare ``__launch_bounds__(256)``).
THREADS_PER_BLOCK = 256
#: Dimensions the general (strided / broadcast) kernel takes after collapsing.
MAX_DIMS = 8


def cuda_dir() -> Path:
    """The folder holding the ``.cuh`` and ``.cu`` files (for ``-I`` when compiling them)."""
    return Path(str(resources.files("unidrop_cupy") / "cuda"))


def include_dirs() -> tuple[Path, Path]:
    """The folders a host or nvcc build puts on its include path: this package's CUDA files and
    the core's mask stream header (:func:`unidrop.get_include`)."""
    return cuda_dir(), Path(unidrop.get_include())


def read(name: str) -> str:
    """The text of one CUDA source file of the package."""
    return (resources.files("unidrop_cupy") / "cuda" / name).read_text(encoding="utf-8")


def kernel_source() -> str:
    """The whole translation unit CuPy compiles: the core's mask stream header, the per-thread
    header, then the kernels. Each ``#include`` of them is guarded, so NVRTC needs no include
    path, and CuPy's kernel cache (keyed on this text) sees a change in any of them."""
    core = (Path(unidrop.get_include()) / MASK_STREAM_HEADER).read_text(encoding="utf-8")
    return core + "\n" + read(CORE_HEADER) + "\n" + read(KERNELS_SOURCE)


def effective_blocks(blocks_per_thread: dict[str, int] | None = None) -> dict[str, int]:
    """:data:`BLOCKS_PER_THREAD` with overrides; float16 and bfloat16 share one setting."""
    overrides = dict(blocks_per_thread or {})
    halves = {overrides[d] for d in ("float16", "bfloat16") if d in overrides}
    if len(halves) > 1:
        raise ValueError(f"float16 and bfloat16 share one blocks-per-thread setting, got {overrides}")
    if halves:
        overrides["float16"] = overrides["bfloat16"] = halves.pop()
    blocks = dict(BLOCKS_PER_THREAD, **overrides)
    for dtype, count in blocks.items():
        if count not in (1, 2, 4):
            raise ValueError(f"blocks per thread for {dtype} must be 1, 2 or 4, got {count}")
    return blocks


def compile_options(blocks_per_thread: dict[str, int] | None = None) -> tuple[str, ...]:
    """NVRTC options: C++14 and the fast path's blocks per thread (no fast-math, no FMA games)."""
    blocks = effective_blocks(blocks_per_thread)
    return (
        "--std=c++14",
        f"-DUD_U_HALF={blocks['float16']}",
        f"-DUD_U_F32={blocks['float32']}",
        f"-DUD_U_F64={blocks['float64']}",
    )
