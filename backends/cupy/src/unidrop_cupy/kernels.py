"""Compiling and launching the CUDA kernels with CuPy (imported only when a CuPy array arrives).

Every launch goes to the current CuPy stream; nothing here waits for the device or copies
to or from the host, so dropout can be queued like any other CuPy operation.
"""

from __future__ import annotations

import threading
from typing import Any

import cupy
import numpy

from . import layout, source

_lock = threading.Lock()
_modules: dict[tuple[str, ...], Any] = {}


def module(options: tuple[str, ...] | None = None) -> Any:
    """The compiled ``cupy.RawModule`` (CuPy caches the binary per device and on disk)."""
    options = source.compile_options() if options is None else options
    with _lock:
        found = _modules.get(options)
        if found is None:
            found = cupy.RawModule(code=source.kernel_source(), options=options)
            _modules[options] = found
        return found


def layout_struct(dims: layout.Dims) -> numpy.ndarray:
    """``ud_layout`` as the kernels take it by value: a one-element NumPy structured array."""
    dtype = numpy.dtype(
        [
            ("ndim", numpy.int64),
            ("shape", numpy.int64, (source.MAX_DIMS,)),
            ("xstride", numpy.int64, (source.MAX_DIMS,)),
            ("ystride", numpy.int64, (source.MAX_DIMS,)),
            ("mstride", numpy.int64, (source.MAX_DIMS,)),
            ("pstride", numpy.int64, (source.MAX_DIMS,)),
        ],
        align=True,
    )
    struct = numpy.zeros(1, dtype=dtype)
    ndim, shape, xs, ys, ms, ps = dims.struct_values()
    struct["ndim"] = ndim
    struct["shape"] = shape
    struct["xstride"] = xs
    struct["ystride"] = ys
    struct["mstride"] = ms
    struct["pstride"] = ps
    return struct


def _scale(dtype: str, scale: float) -> numpy.generic:
    """s rounded (nearest even) to the compute dtype."""
    return numpy.float64(scale) if dtype == "float64" else numpy.float32(scale)


def _pointer(array: Any | None) -> Any:
    return numpy.uint64(0) if array is None else array


def launch_contiguous(
    x: Any,
    y: Any,
    mask: Any | None,
    dtype: str,
    rng: tuple[int, ...],
    scale: float,
    first_block: int = 0,
    blocks_per_thread: dict[str, int] | None = None,
) -> None:
    """The fast kernel on C-contiguous ``x`` and ``y`` (same flat index as the mask).

    ``first_block`` offsets the Philox block of element 0 (the mask index of element 0 is
    ``4 * first_block``); ``blocks_per_thread`` overrides :data:`source.BLOCKS_PER_THREAD`
    (a tuning knob for benchmarks; the result does not depend on it).
    """
    n = x.size
    blocks = source.effective_blocks(blocks_per_thread)
    align = layout.vector_alignment(dtype, blocks[dtype])
    vec = int(x.data.ptr % align == 0 and y.data.ptr % align == 0)
    threads = layout.contiguous_groups(n, dtype, blocks[dtype])
    options = None if blocks_per_thread is None else source.compile_options(blocks_per_thread)
    kernel = module(options).get_function(f"unidrop_contig_{dtype}")
    k0, k1, s0, s1, t = (numpy.uint32(w) for w in rng)
    kernel(
        (layout.grid_for(threads),),
        (source.THREADS_PER_BLOCK,),
        (
            x,
            y,
            _pointer(mask),
            numpy.uint64(n),
            numpy.uint64(first_block),
            k0,
            k1,
            s0,
            s1,
            t,
            _scale(dtype, scale),
            numpy.int32(vec),
        ),
    )


def launch_strided(
    x: Any,
    y: Any,
    mask: Any | None,
    dims: layout.Dims,
    dtype: str,
    rng: tuple[int, ...],
    scale: float,
    mask_offset: int = 0,
) -> None:
    """The general kernel: element offsets and mask indices from each element's logical index."""
    n = x.size
    kernel = module().get_function(f"unidrop_strided_{dtype}")
    k0, k1, s0, s1, t = (numpy.uint32(w) for w in rng)
    kernel(
        (layout.grid_for(layout.strided_groups(n)),),
        (source.THREADS_PER_BLOCK,),
        (
            x,
            y,
            _pointer(mask),
            layout_struct(dims),
            numpy.uint64(n),
            numpy.uint64(mask_offset),
            k0,
            k1,
            s0,
            s1,
            t,
            _scale(dtype, scale),
        ),
    )


def launch_apply(x: Any, y: Any, mask: Any, dims: layout.Dims, dtype: str, scale: float) -> None:
    """The saved-mask kernel: y = x * s where ``mask`` (broadcast by ``dims``) keeps, else +0."""
    n = x.size
    kernel = module().get_function(f"unidrop_apply_{dtype}")
    kernel(
        (layout.grid_for(layout.strided_groups(n)),),
        (source.THREADS_PER_BLOCK,),
        (x, y, mask, layout_struct(dims), numpy.uint64(n), _scale(dtype, scale)),
    )
