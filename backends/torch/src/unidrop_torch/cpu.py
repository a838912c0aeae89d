"""The CPU path: the NumPy backend's compiled mask stream v1 kernel, on zero-copy views of tensors.

Blocks of a global mask (``plan.block``) take the same kernel, which reads each row's global
start from the plan; without it, the pure-NumPy kernel, which takes them too.

The input tensor and the output tensor (``torch.empty_like(x)``: same shape, dtype, device, and
``x``'s strides where it is dense) are viewed as NumPy arrays with no copy (bfloat16 and float16
as their 16 bits), and unidrop-numpy's compiled kernel (:func:`unidrop_numpy.compiled.dropout_into`:
GIL released, any strides, threaded for large tensors) writes the result straight into the
output tensor's memory; the keep mask, when asked for, is written into a bool tensor the same way.

Where that kernel was not built (no C compiler at install time), or ``UNIDROP_NUMPY_KERNEL=numpy``
asks for it, the pure-NumPy kernel (:func:`unidrop_numpy.chunked.dropout_array`) runs instead;
bfloat16, which NumPy lacks, then goes through float32, its compute dtype, and is rounded back to
bfloat16 here (round to nearest even, NaN kept quiet with its payload), as the mask stream
prescribes. The setting is read once, when this module is imported.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from unidrop_numpy import bfloat16, compiled
from unidrop_numpy.chunked import dropout_array
from unidrop_numpy.philox_arrays import PhiloxWorkspace
from unidrop_numpy.threads import get_num_threads

from unidrop import DropoutPlan, arguments

#: True when the compiled kernel computes CPU dropout (read once, here; see the module docstring).
COMPILED = compiled.use_compiled()

#: Mask elements decided per step by the pure-NumPy :func:`keep_mask` (64 bytes per 4 of them).
KEEP_CHUNK = 1 << 18

#: The dtype name the kernel computes each torch dtype as.
_NAMES = {
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
    torch.float32: "float32",
    torch.float64: "float64",
}
#: The 16-bit dtypes, viewed as their bits: NumPy has no bfloat16.
_BITS = {torch.float16: torch.int16, torch.bfloat16: torch.int16}
#: Below this many elements the small-tensor fast path runs (one kernel call on this thread).
ONE_CALL = compiled.ONE_CALL


def describe() -> str:
    """Which kernel runs dropout of CPU tensors, for ``unidrop backends``."""
    return f"CPU: {compiled.describe(COMPILED)}"


def _view(t: torch.Tensor) -> np.ndarray:
    """``t``'s memory as a NumPy array, no copy, any strides (16-bit floats as uint16 bits)."""
    bits = _BITS.get(t.dtype)
    if bits is None:
        return t.numpy()
    return t.view(bits).numpy().view(np.uint16)


def run(x: torch.Tensor, plan: DropoutPlan) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(y, keep)`` for a CPU tensor ``x`` (no gradient needed) and a plan with integer seed and stream.

    ``y`` is a new tensor from ``torch.empty_like(x)``; ``keep`` (only if ``plan.return_mask``)
    is a bool tensor of ``plan.mask_shape``.
    """
    return _run(x, plan, plan.return_mask)


def output(x: torch.Tensor, plan: DropoutPlan) -> torch.Tensor:
    """``y`` alone, as :func:`run` gives it, whatever ``plan.return_mask`` says (no mask is made)."""
    return _run(x, plan, False)[0]


def _run(x: torch.Tensor, plan: DropoutPlan, with_mask: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    if x.is_neg():  # a lazily negated view (``z.conj().imag``): the kernels read memory as it lies
        x = x.resolve_neg()
    if not COMPILED:
        y = _dropout_numpy(x, plan)
        keep = keep_mask_of(plan) if with_mask else None
        return y, keep
    y = torch.empty_like(x)
    keep = torch.empty(plan.mask_shape, dtype=torch.bool, device="cpu") if with_mask else None
    n = x.numel()
    if plan.drops_all:
        y.zero_()
        if keep is not None:
            keep.zero_()
    elif keep is None and n < ONE_CALL and plan.block is None and y.is_contiguous():
        if n:
            _one_kernel_call(x, y, plan)
    elif n:
        if x.requires_grad:  # an autograd Function's input (never the operator's): numpy() refuses it
            x = x.detach()
        compiled.dropout_into(_view(x), _view(y), None if keep is None else keep.numpy(), plan, threads())
    elif keep is not None and keep.numel():  # an empty input can have a mask that is not empty
        compiled.keep_into(keep.numpy(), plan)
    return y, keep


def threads() -> int:
    """The threads a large tensor is split over: unidrop-numpy's setting (``UNIDROP_NUM_THREADS``),
    at most torch's own (``torch.set_num_threads``, ``OMP_NUM_THREADS``), as a torch op would."""
    return min(get_num_threads(), torch.get_num_threads())


def _one_kernel_call(x: torch.Tensor, y: torch.Tensor, plan: DropoutPlan) -> None:
    """The small-tensor fast path (:func:`unidrop_numpy.compiled.dropout_one_call`) on views of
    ``x`` and the C-contiguous ``y``: no block, no mask, fewer than :data:`ONE_CALL` elements."""
    if not plan.broadcast_dims:  # one run of mask indices: by address, no NumPy views
        if x.is_contiguous():
            compiled.dropout_at(x.data_ptr(), x.element_size(), y.data_ptr(), x.numel(), plan)
            return
        if not any(x.stride()):  # one value repeated (the gradient of a sum)
            compiled.dropout_at(x.data_ptr(), 0, y.data_ptr(), x.numel(), plan)
            return
    x = x.detach()  # numpy() refuses a tensor that requires grad
    bits = _BITS.get(x.dtype)
    if bits is not None:  # the kernel reads only the 16 bits of float16 and bfloat16
        x, y = x.view(bits), y.view(bits)
    compiled.dropout_one_call(x.numpy(), y.numpy(), plan)


def dropout(x: torch.Tensor, seed: int, stream: int, p: float, broadcast_dims: list[int]) -> torch.Tensor:
    """Mask stream v1 dropout of a CPU tensor; the result has the strides ``torch.empty_like`` gives."""
    plan = DropoutPlan.build(tuple(x.shape), dtype_name(x.dtype), p, seed, stream, broadcast_dims)
    return run(x, plan)[0]


def dtype_name(dtype: torch.dtype) -> str:
    """The name the kernel computes a torch dtype as (``"float32"``, ...)."""
    return _NAMES[dtype]


def block_keep_mask(plan: DropoutPlan) -> torch.Tensor:
    """The keep mask of a block plan (``plan.block`` set, integer seed and stream), on the CPU:
    by the compiled kernel where it was built, else by the pure-NumPy one."""
    if plan.drops_all:
        return torch.zeros(plan.mask_shape, dtype=torch.bool, device="cpu")
    if COMPILED:
        keep = torch.empty(plan.mask_shape, dtype=torch.bool, device="cpu")
        if keep.numel():
            compiled.keep_into(keep.numpy(), plan)
        return keep
    # the pure-NumPy kernel makes a block's mask beside a dropout: of a stand-in of the mask's shape
    shape = plan.mask_shape
    stand_in = dataclasses.replace(plan, shape=shape, dtype="float32", broadcast_dims=(), return_mask=True)
    _, keep = dropout_array(np.zeros(shape, dtype=np.float32), stand_in)
    return torch.from_numpy(np.asarray(keep))


def keep_mask_of(plan: DropoutPlan) -> torch.Tensor:
    """The keep mask of a plan with integer seed and stream, a block's or a whole array's, on the CPU."""
    if plan.block is not None:
        return block_keep_mask(plan)
    return keep_mask(plan.seed, plan.stream, plan.mask_shape, plan.p)


def keep_mask(seed: int, stream: int, mask_shape: tuple[int, ...], p: float) -> torch.Tensor:
    """The boolean keep mask of ``mask_shape`` on the CPU, written straight into the result.

    No temporary of the mask's size: the compiled kernel writes the bool tensor's memory, and the
    pure-NumPy one decides ``KEEP_CHUNK`` elements at a time into it.
    """
    keep = torch.empty(mask_shape, dtype=torch.bool, device="cpu")
    flat = keep.view(-1).numpy()
    t = arguments.threshold(p)
    if t >= arguments.TWO_POW_32:  # p == 1: nothing is kept
        flat[...] = False
        return keep
    if COMPILED:
        compiled.keep_mask_into(flat, seed, stream, t)
        return keep
    workspace = PhiloxWorkspace(min(KEEP_CHUNK, flat.size) // 4 + 2)
    for start in range(0, flat.size, KEEP_CHUNK):
        count = min(KEEP_CHUNK, flat.size - start)
        words_kept = workspace.keep_masks(seed, stream, start, count, t, 4)
        np.not_equal(words_kept, 0, out=flat[start : start + count])
    return keep


def _float32_of_bfloat16(x: torch.Tensor) -> np.ndarray:
    """A bfloat16 tensor as a float32 NumPy array, exactly: the 16 bits become the high half."""
    bits = x.view(torch.int16).numpy().view(np.uint16)
    out = np.empty(bits.shape, dtype=np.uint32)
    np.left_shift(bits, 16, out=out, dtype=np.uint32)
    return out.view(np.float32)


def _dropout_numpy(x: torch.Tensor, plan: DropoutPlan) -> torch.Tensor:
    """The pure-NumPy kernel's dropout of ``x`` (bfloat16 through float32, rounded back here)."""
    x = x.detach()
    if x.dtype == torch.bfloat16:
        array = _float32_of_bfloat16(x)
        plan = dataclasses.replace(plan, dtype="float32", return_mask=False)
    else:
        array = x.numpy()
        plan = dataclasses.replace(plan, return_mask=False)
    y, _ = dropout_array(array, plan)
    y = np.asarray(y)
    if x.dtype == torch.bfloat16:
        result = torch.from_numpy(bfloat16.round_bits(y).view(np.int16).reshape(y.shape)).view(torch.bfloat16)
    else:
        result = torch.from_numpy(y)
    out = torch.empty_like(x)
    if result.dtype == out.dtype and result.stride() == out.stride():
        return result
    return out.copy_(result)  # the layout torch.empty_like promises
