"""Build the CUDA kernels' core for the host with the system C++ compiler, and drive it like the GPU.

:func:`build` compiles ``host_harness.cpp`` (which includes the package's
``unidrop_dropout.cuh``) into a shared library; :func:`host_dropout` makes the same layout
decisions as :mod:`unidrop_cupy.run` (using :mod:`unidrop_cupy.layout`) and calls the host
entry points, which run the kernels' per-thread functions for every thread index.
"""

from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from unidrop_cupy import layout, source

from unidrop import arguments, reference
from unidrop.philox import stream_words

HERE = Path(__file__).parent
DTYPES = ("float16", "bfloat16", "float32", "float64")
STORAGE = {"float16": np.uint16, "bfloat16": np.uint16, "float32": np.uint32, "float64": np.uint64}


class Layout(ctypes.Structure):
    """``ud_layout`` of unidrop_dropout.cuh."""

    _fields_ = [
        ("ndim", ctypes.c_int64),
        ("shape", ctypes.c_int64 * source.MAX_DIMS),
        ("xstride", ctypes.c_int64 * source.MAX_DIMS),
        ("ystride", ctypes.c_int64 * source.MAX_DIMS),
        ("mstride", ctypes.c_int64 * source.MAX_DIMS),
        ("pstride", ctypes.c_int64 * source.MAX_DIMS),
    ]


def compiler() -> str | None:
    """The C++ compiler to use, or None if the machine has none."""
    return shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def build(out_dir: Path, blocks_per_thread: dict[str, int] | None = None) -> ctypes.CDLL:
    """Compile the harness against the package's CUDA header into ``out_dir`` and load it.

    ``blocks_per_thread`` overrides the fast path's blocks per thread, as the GPU build allows.
    """
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler (g++, c++ or clang++) on PATH")
    blocks = source.effective_blocks(blocks_per_thread)
    tag = "_".join(str(blocks[d]) for d in ("float16", "float32", "float64"))
    library = out_dir / f"unidrop_host_kernels_{tag}.so"
    command = [
        cxx, "-O2", "-std=c++14", "-shared", "-fPIC", "-ffp-contract=off", "-Wall", "-Werror",
        "-Wno-unknown-pragmas", *(f"-I{folder}" for folder in source.include_dirs()),
        f"-DUD_U_HALF={blocks['float16']}", f"-DUD_U_F32={blocks['float32']}",
        f"-DUD_U_F64={blocks['float64']}",
        str(HERE / "host_harness.cpp"), "-o", str(library),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"host build failed: {' '.join(command)}\n{done.stderr}")
    lib = ctypes.CDLL(str(library))
    _declare(lib)
    lib.unidrop_blocks = blocks  # what host_dropout needs to mirror the launch
    return lib


def _declare(lib: ctypes.CDLL) -> None:
    u8p, vp, u64, u32 = ctypes.POINTER(ctypes.c_uint8), ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32
    for name in DTYPES:
        scale = ctypes.c_double if name == "float64" else ctypes.c_float
        fn = getattr(lib, f"host_contig_{name}")
        fn.argtypes = [vp, vp, u8p, u64, u64, u32, u32, u32, u32, u32, scale, ctypes.c_int]
        fn.restype = None
        fn = getattr(lib, f"host_strided_{name}")
        fn.argtypes = [vp, vp, u8p, ctypes.POINTER(Layout), u64, u64, u32, u32, u32, u32, u32, scale,
                       ctypes.c_int]  # fmt: skip
        fn.restype = None
        fn = getattr(lib, f"host_apply_{name}")
        fn.argtypes = [vp, vp, u8p, ctypes.POINTER(Layout), u64, scale]
        fn.restype = None
    lib.host_philox_block.argtypes = [u64, u32, u32, u32, u32, ctypes.POINTER(ctypes.c_uint32)]
    lib.host_philox_block.restype = None
    for name in ("host_f32_to_f16", "host_f32_to_bf16", "host_f16_to_f32"):
        getattr(lib, name).argtypes = [vp, vp, u64]
        getattr(lib, name).restype = None
    lib.host_layout_size.restype = u64


# -- values ----------------------------------------------------------------------------------


def to_storage(values: Sequence[float], dtype: str) -> np.ndarray:
    """Float values (already representable in ``dtype``) as the kernel's storage bits, C order."""
    if dtype == "bfloat16":
        return (np.asarray(values, np.float32).view(np.uint32) >> 16).astype(np.uint16)
    return np.asarray(values, dtype).view(STORAGE[dtype])


def from_storage(bits: np.ndarray, dtype: str) -> np.ndarray:
    """Storage bits as float64 values (exact)."""
    if dtype == "bfloat16":
        return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return bits.view(dtype).astype(np.float64)


def _pointer(array: np.ndarray) -> int:
    return int(array.__array_interface__["data"][0])


def _layout(dims: layout.Dims) -> Layout:
    ndim, shape, xs, ys, ms, ps = dims.struct_values()
    M = source.MAX_DIMS
    arr = ctypes.c_int64 * M
    return Layout(ndim, arr(*shape), arr(*xs), arr(*ys), arr(*ms), arr(*ps))


def host_dropout(
    lib: ctypes.CDLL,
    x: np.ndarray,
    dtype: str,
    p: float,
    seed: int,
    stream: int = 0,
    broadcast_dims: Sequence[int] = (),
    mask_offset: int = 0,
    force_strided: bool = False,
    wide_index: bool = False,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Run the host build on storage array ``x`` (any strides): ``(y bits, keep bytes, kernel used)``.

    ``keep`` starts as 2 everywhere, so an entry the kernel never wrote stays 2.
    """
    shape = tuple(x.shape)
    dims_b = arguments.normalize_broadcast_dims(broadcast_dims, len(shape))
    mshape = arguments.mask_shape(shape, dims_b)
    rng = layout.rng_words(seed, stream, arguments.threshold(p))
    scale = arguments.scale(p)
    y = np.empty_like(x)
    y[...] = y.dtype.type(int.from_bytes(b"\xa5" * y.itemsize, "little"))  # unwritten outputs show
    keep = np.full(mshape, 2, np.uint8)
    keep_ptr = keep.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
    xs = layout.element_strides(tuple(x.strides), x.itemsize)
    ys = layout.element_strides(tuple(y.strides), y.itemsize)
    assert xs is not None and ys is not None
    dims = layout.collapse(shape, xs, ys, layout.mask_strides(mshape))
    n = x.size
    if dims.is_contiguous_unbroadcast and not force_strided and mask_offset % 4 == 0:
        align = layout.vector_alignment(dtype, lib.unidrop_blocks[dtype])
        vec = int(_pointer(x) % align == 0 and _pointer(y) % align == 0)
        fn = getattr(lib, f"host_contig_{dtype}")
        fn(_pointer(x), _pointer(y), keep_ptr, n, mask_offset // 4, *rng, scale, vec)
        kind = "contig-vec" if vec else "contig"
    else:
        fn = getattr(lib, f"host_strided_{dtype}")
        fn(_pointer(x), _pointer(y), keep_ptr, ctypes.byref(_layout(dims)), n, mask_offset, *rng, scale,
           int(wide_index))  # fmt: skip
        kind = "strided"
    return y, keep, kind


def host_apply(lib: ctypes.CDLL, g: np.ndarray, keep: np.ndarray, dtype: str, p: float) -> np.ndarray:
    """The saved-mask kernel on the host: ``where(keep, g * s, +0)`` with ``keep`` broadcast."""
    y = np.empty_like(g)
    keep = np.ascontiguousarray(keep, dtype=np.uint8)
    gs = layout.element_strides(tuple(g.strides), g.itemsize)
    ys = layout.element_strides(tuple(y.strides), y.itemsize)
    assert gs is not None and ys is not None
    dims = layout.collapse(tuple(g.shape), gs, ys, layout.mask_strides(tuple(keep.shape)))
    fn = getattr(lib, f"host_apply_{dtype}")
    fn(_pointer(g), _pointer(y), keep.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)),
       ctypes.byref(_layout(dims)), g.size, arguments.scale(p))  # fmt: skip
    return y


# -- expectations from the pure-Python reference ---------------------------------------------


def expected(
    values: Sequence[float],
    shape: tuple[int, ...],
    dtype: str,
    p: float,
    seed: int,
    stream: int = 0,
    broadcast_dims: Sequence[int] = (),
    mask_offset: int = 0,
) -> tuple[list[float], list[bool]]:
    """Reference outputs (C order) and keep bits for mask indices offset by ``mask_offset``.

    With ``mask_offset == 0`` this is :func:`unidrop.reference.dropout` itself.
    """
    if mask_offset == 0:
        return reference.dropout(values, shape, dtype, p, seed, stream, broadcast_dims)
    dims_b = arguments.normalize_broadcast_dims(broadcast_dims, len(shape))
    mshape = arguments.mask_shape(shape, dims_b)
    t = arguments.threshold(p)
    keep = [u >= t for u in stream_words(seed, stream, mask_offset, math.prod(mshape))]
    out = [
        reference.scaled(v, dtype, p) if keep[reference.flat_mask_index(i, shape, mshape)] else 0.0
        for i, v in enumerate(values)
    ]
    return out, keep


def assert_bits_equal(y_bits: np.ndarray, want: Sequence[float], dtype: str, where: str) -> None:
    """``y_bits`` (storage bits, any layout, read in C order) equal the expected floats bit for bit.

    NaN is compared as NaN (payloads are not part of the contract).
    """
    got = np.ascontiguousarray(y_bits).reshape(-1)
    want_values = np.asarray(want, np.float64)
    nan = np.isnan(want_values)
    want_bits = to_storage(np.where(nan, 0.0, want_values), dtype)
    got_values = from_storage(got, dtype)
    bad = np.flatnonzero((got != want_bits) & ~nan)
    bad_nan = np.flatnonzero(nan & ~np.isnan(got_values))
    if bad.size or bad_nan.size:
        i = int(bad[0]) if bad.size else int(bad_nan[0])
        raise AssertionError(
            f"{where}: {bad.size + bad_nan.size} of {got.size} outputs differ; first at C index {i}: "
            f"got {got_values[i]!r} (bits {int(got[i]):#x}), want {want_values[i]!r}"
        )
