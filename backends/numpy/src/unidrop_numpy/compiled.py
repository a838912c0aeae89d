"""Dropout through the compiled kernel ``unidrop_numpy._kernel``, and which kernel is active.

The kernel (``_kernel.c``, built from the core's ``unidrop/mask_stream_v1.h``) computes a slice
of the output's elements per call with the GIL released; large arrays are split into one slice
per thread of :mod:`.pool`. Every element depends on its own index alone, so the result never
depends on the number of threads.

``UNIDROP_NUMPY_KERNEL`` chooses: ``auto`` (the default: compiled if it was built), ``compiled``
(an error if it was not built) or ``numpy`` (the pure-NumPy kernel of :mod:`.chunked`).
``UNIDROP_NUMPY_SIMD`` (read when the kernel is imported) caps the instructions the kernel may use:
``avx512bf16`` (the default: all that the CPU has), ``avx512`` (AVX-512F, AVX2 and F16C), ``avx2``
(AVX2 and F16C) or ``none`` (the portable loops), so that every path can be tested on a CPU that
has the widest. The kernel's ``SIMD`` says which level runs.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from unidrop import DropoutPlan

from .pool import Helpers

#: A bad ``UNIDROP_NUMPY_SIMD``, which the kernel refuses at import: raised where the compiled
#: kernel is wanted (:func:`use_compiled`), so that ``UNIDROP_NUMPY_KERNEL=numpy`` still loads.
_BAD_SETTING: ValueError | None = None
try:
    from . import _kernel
except ImportError as error:  # no compiler at install time: the pure-NumPy kernel runs
    _kernel = None
    _MISSING = f"{type(error).__name__}: {error}"
except ValueError as error:
    _kernel, _BAD_SETTING = None, error
    _MISSING = f"{type(error).__name__}: {error}"
else:
    _MISSING = ""

ENV = "UNIDROP_NUMPY_KERNEL"
CHOICES = ("auto", "compiled", "numpy")
#: The kernel's type code of each dtype name. Arrays of every kind, ml_dtypes' bfloat16 included, are
#: passed as they are: the kernel asks for their buffers without a format (NumPy then describes
#: no element type, only item size and strides), so no uint16 view is needed (each costs 0.75 µs).
KINDS = {"float16": 0, "bfloat16": 1, "float32": 2, "float64": 3}
#: Elements per thread below which one call on the calling thread is faster than a split: about
#: 60 µs of work on the 2-core Xeon of ``benchmarks/results`` (a split costs a thread's wake-up and
#: two hand-offs of the GIL there), which the AVX-512 kernel does in twice as many elements.
MIN_ELEMENTS_PER_THREAD = 1 << (17 if getattr(_kernel, "SIMD", "").startswith("avx512") else 16)
#: Slice boundaries are multiples of this (whole Philox tiles for every thread but the last).
ALIGN = 1 << 12
#: Below this many elements :func:`dropout_into` makes one kernel call on the calling thread,
#: whatever the thread count.
ONE_CALL = 2 * MIN_ELEMENTS_PER_THREAD


def available() -> bool:
    """True if the compiled kernel was built and imports."""
    return _kernel is not None


def use_compiled() -> bool:
    """Whether dropout should use the compiled kernel, per ``UNIDROP_NUMPY_KERNEL``.

    ``compiled`` without a built kernel raises ImportError saying why it is missing; a value
    other than ``auto``, ``compiled`` or ``numpy`` raises ValueError naming it, and so does a bad
    ``UNIDROP_NUMPY_SIMD`` unless the choice is ``numpy``.
    """
    setting = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if setting not in CHOICES:
        raise ValueError(f"{ENV} must be one of {', '.join(CHOICES)}, got {os.environ.get(ENV)!r}")
    if _BAD_SETTING is not None and setting != "numpy":
        raise _BAD_SETTING
    if setting == "compiled" and _kernel is None:
        raise ImportError(
            f"{ENV}=compiled but unidrop_numpy._kernel is not built ({_MISSING}); reinstall "
            "unidrop-numpy where a C compiler is available"
        )
    return setting != "numpy" and _kernel is not None


def describe(active: bool) -> str:
    """One line for ``unidrop backends``: which kernel runs (``active``: the compiled one) and why."""
    if active:
        return f"compiled ({_kernel.BUILD}; SIMD: {_kernel.SIMD})"  # type: ignore[union-attr]
    if _kernel is None:
        why = "refused a setting" if _BAD_SETTING is not None else "not built"
        return f"pure NumPy (compiled kernel {why}: {_MISSING})"
    return f"pure NumPy ({ENV}=numpy)"


def dropout(x: np.ndarray, plan: DropoutPlan, threads: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``(y, keep)`` for a non-empty ``x`` and a plan with ``0 < p < 1``; ``y`` keeps ``x``'s memory
    order (as ``numpy.empty_like``), ``keep`` is None unless ``plan.return_mask``. A small array
    with a C-ordered result, no block and no mask is :func:`dropout_one_call`.

    A non-native byte order (``'>f4'`` on a little-endian machine) is computed on a native-order
    copy, and ``y`` has ``x``'s dtype, byte order included: the kernel reads memory as native numbers.
    """
    if not x.dtype.isnative:
        y, keep = dropout(x.astype(x.dtype.newbyteorder("=")), plan, threads)
        return y.astype(x.dtype), keep
    y = np.empty_like(x)
    if x.size < ONE_CALL and plan.block is None and not plan.return_mask and y.flags.c_contiguous:
        dropout_one_call(x, y, plan)
        return y, None
    keep = np.empty(plan.mask_shape, dtype=bool) if plan.return_mask else None
    dropout_into(x, y, keep, plan, threads)
    return y, keep


def dropout_into(
    x: np.ndarray, y: np.ndarray, keep: np.ndarray | None, plan: DropoutPlan, threads: int
) -> None:
    """Write mask stream v1 dropout of a non-empty ``x`` into ``y`` (and the keep mask into ``keep``).

    ``y`` has ``x``'s shape and item size and is C-contiguous or a transpose of a C-contiguous
    array (what ``numpy.empty_like`` gives); a bfloat16 ``x`` and ``y`` may be passed as their
    uint16 bits. ``keep`` is None or a C-contiguous bool array of ``plan.mask_shape``. The plan's
    ``p`` is in (0, 1); its ``return_mask`` is not read. With ``plan.block`` set, ``x`` gets its
    slice of the global mask (one run of consecutive global indices per row of the trailing axes
    the block does not span whole; a single run when it spans them all).
    """
    assert _kernel is not None
    kind = KINDS[plan.dtype]
    broadcast = broadcast_bits(plan.broadcast_dims)
    xk, yk, order = x, y, None
    if x.ndim > 1 and not y.flags.c_contiguous:  # walk both in y's memory order
        axes = tuple(sorted(range(x.ndim), key=lambda axis: -y.strides[axis]))
        xk, yk, order = x.transpose(axes), y.transpose(axes), axes
    fused = keep if (keep is not None and not broadcast and order is None) else None
    args = (kind, broadcast, plan.seed, plan.stream, plan.threshold, plan.scale)
    offset, strides = (0, None) if plan.block is None else block_layout(plan)
    n = x.size
    count = n // MIN_ELEMENTS_PER_THREAD  # threads that get enough work each
    if count > threads:
        count = threads
    if count <= 1:
        _kernel.dropout(xk, yk, fused, *args, 0, n, offset, order, strides)
    else:
        step = -(-n // count // ALIGN) * ALIGN
        slices = [(a, min(a + step, n)) for a in range(0, n, step)]
        _run_slices(lambda a, b: _kernel.dropout(xk, yk, fused, *args, a, b, offset, order, strides), slices)
    if keep is not None and fused is None:
        keep_into(keep, plan)


def dropout_one_call(x: Any, y: Any, plan: DropoutPlan) -> None:
    """What :func:`dropout_into` does for a C-contiguous ``y``, no block and no mask, in one kernel
    call on the calling thread (the same bits), without its layout and thread-splitting work: the
    fast path for small arrays (meant for fewer than :data:`ONE_CALL` elements).

    ``x`` (any strides) and ``y`` are buffers of the same shape; 16-bit floats are passed as their
    16-bit integer bits. The plan's ``p`` is in (0, 1).
    """
    assert _kernel is not None
    _kernel.dropout(
        x,
        y,
        None,
        KINDS[plan.dtype],
        broadcast_bits(plan.broadcast_dims),
        plan.seed,
        plan.stream,
        plan.threshold,
        plan.scale,
        0,
        x.size,
    )


def dropout_at(x_address: int, x_step: int, y_address: int, count: int, plan: DropoutPlan) -> None:
    """What :func:`dropout_one_call` does, on raw memory: the ``count`` elements at ``x_address``,
    ``x_address + x_step``, ... (``x_step`` in bytes; 0 repeats one value) into the contiguous
    ``y_address``, with mask indices ``0 .. count - 1`` (the plan has no broadcast axis and no block).

    For callers that hold addresses rather than arrays (unidrop-torch's small tensors, whose NumPy
    views cost more than the kernel); the caller keeps both regions alive and apart for the call.
    """
    assert _kernel is not None
    _kernel.dropout_at(
        KINDS[plan.dtype],
        x_address,
        x_step,
        y_address,
        count,
        plan.seed,
        plan.stream,
        plan.threshold,
        plan.scale,
    )


def broadcast_bits(broadcast_dims: tuple[int, ...]) -> int:
    """The kernel's broadcast argument: bit ``d`` set for each broadcast axis ``d``."""
    bits = 0
    for axis in broadcast_dims:
        bits |= 1 << axis
    return bits


def block_layout(plan: DropoutPlan) -> tuple[int, tuple[int, ...] | None]:
    """``(mask_offset, mask_strides)`` for the kernel: ``(0, None)`` for a whole array; for a block,
    the global index of its first mask element and the global mask's strides as
    :meth:`~unidrop.blocks.MaskBlock.steps` gives them (0 where the block's mask has size 1)."""
    block = plan.block
    if block is None:
        return 0, None
    return int(block.start()), block.steps(plan.mask_shape)  # mask_shape: 1 on broadcast axes


def keep_into(keep: np.ndarray, plan: DropoutPlan) -> None:
    """Write the keep mask of ``plan`` (a block's slice of the global mask where ``plan.block`` is
    set) into the C-contiguous bool array ``keep`` of ``plan.mask_shape``; ``plan.threshold`` < 2**32."""
    assert _kernel is not None
    offset, strides = block_layout(plan)
    if strides is None:
        keep_mask_into(keep, plan.seed, plan.stream, plan.threshold)
    else:
        _kernel.keep_block(keep, plan.seed, plan.stream, plan.threshold, strides, offset)


def keep_mask_into(keep: np.ndarray, seed: int, stream: int, threshold: int) -> None:
    """Write the keep mask (True = kept) for ``seed``, ``stream`` and ``threshold`` < 2**32 into the
    C-contiguous bool array ``keep`` (its C-order index is the mask index)."""
    assert _kernel is not None
    _kernel.keep_mask(keep.reshape(-1), seed, stream, threshold, 0, keep.size)


def _run_slices(call, slices: list[tuple[int, int]]) -> None:  # type: ignore[no-untyped-def]
    """``call(a, b)`` for every slice, on the calling thread and pool helpers (one slice each)."""
    todo = list(reversed(slices))

    def task() -> None:
        while True:
            try:
                a, b = todo.pop()  # atomic: no lock, which an interrupt could leave held
            except IndexError:
                return
            call(a, b)

    helpers = Helpers(task)
    try:
        helpers.start(len(slices) - 1)
        task()
    except BaseException:  # KeyboardInterrupt: the helpers take no further slice
        todo.clear()
        raise
    finally:
        helpers.wait()
