"""Backward-pass helpers for code that writes its own backpropagation on CuPy (as Chainer users did).

Dropout is linear in its input with a fixed mask, so its gradient is the same operation
applied to the incoming gradient: ``dx = where(keep, dy * s, 0)`` with the forward's mask
and scale. Two ways to get it, both bit-identical to the forward's rounding:

* :func:`dropout_backward` regenerates the mask from ``(seed, stream)``: nothing is stored
  between forward and backward (the cheap way: one kernel, no mask in memory).
* :func:`apply_mask` applies a mask saved from ``unidrop.dropout(..., return_mask=True)``.

Importing this module imports CuPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cupy

import unidrop
from unidrop import arguments

from . import kernels, layout
from .implementation import CupyImplementation

#: Where the dtypes and shapes of gradients are read, as for ``unidrop.dropout``'s inputs.
_IMPLEMENTATION = CupyImplementation()


def dropout_backward(
    grad: Any,
    p: float,
    seed: int,
    stream: int = 0,
    broadcast_dims: int | Sequence[int] = (),
    global_shape: Sequence[int] | None = None,
    offset: Sequence[int] | None = None,
) -> Any:
    """The gradient of ``unidrop.dropout(x, p, seed=seed, stream=stream, broadcast_dims=...)``.

    ``grad`` is the gradient of the output (same shape as ``x``); the mask is regenerated
    from ``seed`` and ``stream``, so the forward must have used an explicit ``seed``. For a
    block of a global mask, pass the forward's ``global_shape`` and ``offset`` too.
    """
    if seed is None:
        raise ValueError("dropout_backward needs the seed the forward pass used (got seed=None)")
    return unidrop.dropout(
        grad,
        p,
        seed=seed,
        stream=stream,
        broadcast_dims=broadcast_dims,
        global_shape=global_shape,
        offset=offset,
        backend="cupy",
    )


def apply_mask(grad: Any, keep: Any, p: float) -> Any:
    """``where(keep, grad * s, +0)``, s = 1/(1-p), with the rounding of unidrop's forward pass.

    ``keep`` is a boolean CuPy array of the mask shape: ``grad``'s shape with size 1 on the
    broadcast axes (as ``return_mask=True`` gives it). ``grad`` is not modified.
    """
    p = arguments.check_p(p)
    if not isinstance(grad, cupy.ndarray) or not isinstance(keep, cupy.ndarray):
        raise TypeError(
            f"apply_mask takes CuPy arrays, got {type(grad).__qualname__} and {type(keep).__qualname__}"
        )
    shape, dtype = _IMPLEMENTATION.shape_and_dtype(grad)
    arguments.check_dtype(dtype, _IMPLEMENTATION.dtypes())
    if keep.dtype != bool:
        raise TypeError(f"keep must be a boolean mask, got dtype {keep.dtype.name}")
    mshape = tuple(keep.shape)
    if len(mshape) != len(shape) or any(m not in (1, s) for m, s in zip(mshape, shape, strict=True)):
        raise ValueError(
            f"keep's shape {mshape} is not a mask shape for gradient shape {shape} "
            "(each axis must match or be 1)"
        )
    with grad.device:
        if p == 1.0 or grad.size == 0:
            return cupy.zeros_like(grad)
        keep = cupy.ascontiguousarray(keep)
        y = cupy.empty_like(grad)
        gs = layout.element_strides(tuple(grad.strides), grad.itemsize)
        if gs is None:
            grad = cupy.ascontiguousarray(grad)
            y = cupy.empty_like(grad)
            gs = layout.element_strides(tuple(grad.strides), grad.itemsize)
        ys = layout.element_strides(tuple(y.strides), y.itemsize)
        assert gs is not None and ys is not None
        dims = layout.collapse(shape, gs, ys, layout.mask_strides(mshape))
        if dims.ndim > layout.MAX_DIMS:
            raise NotImplementedError(
                f"apply_mask takes at most {layout.MAX_DIMS} axes after merging neighbours; got {shape}"
            )
        kernels.launch_apply(grad, y, keep, dims, dtype, arguments.scale(p))
        return y
