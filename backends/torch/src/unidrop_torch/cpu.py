"""The CPU path: the NumPy backend's mask stream v1, applied to zero-copy NumPy views.

The tensor is viewed as a NumPy array (no copy, any strides) and handed to unidrop-numpy's
kernel, :func:`unidrop_numpy.chunked.dropout_array`, so the CPU Philox (chunked, threaded) lives
in one place; the NumPy result becomes the output tensor without a copy. bfloat16, which NumPy
lacks, goes through float32, its compute dtype, and is rounded back to bfloat16 by torch
(round to nearest even), as the mask stream prescribes.
"""

from __future__ import annotations

import numpy as np
import torch
from unidrop_numpy.chunked import dropout_array
from unidrop_numpy.philox_arrays import PhiloxWorkspace

from unidrop import DropoutPlan, arguments

#: Mask elements decided per step by :func:`keep_mask` (its workspace is 64 bytes per 4 of them).
KEEP_CHUNK = 1 << 18


def keep_mask(seed: int, stream: int, mask_shape: tuple[int, ...], p: float) -> torch.Tensor:
    """The boolean keep mask of ``mask_shape`` on the CPU, written straight into the result.

    No temporary of the mask's size: the keep decisions are made ``KEEP_CHUNK`` elements at a
    time by the NumPy backend's Philox workspace and stored into the bool tensor's memory.
    """
    keep = torch.empty(mask_shape, dtype=torch.bool)
    flat = keep.view(-1).numpy()
    t = arguments.threshold(p)
    if t >= arguments.TWO_POW_32:  # p == 1: nothing is kept
        flat[...] = False
        return keep
    workspace = PhiloxWorkspace(min(KEEP_CHUNK, flat.size) // 4 + 2)
    for start in range(0, flat.size, KEEP_CHUNK):
        count = min(KEEP_CHUNK, flat.size - start)
        words_kept = workspace.keep_masks(seed, stream, start, count, t, 4)
        np.not_equal(words_kept, 0, out=flat[start : start + count])
    return keep


def _float32_of_bfloat16(x: torch.Tensor) -> np.ndarray:
    """A bfloat16 tensor as a float32 NumPy array, exactly: the 16 bits become the high half."""
    bits = x.detach().view(torch.int16).numpy().view(np.uint16)
    out = np.empty(bits.shape, dtype=np.uint32)
    np.left_shift(bits, 16, out=out, dtype=np.uint32)
    return out.view(np.float32)


#: The NumPy dtype each torch dtype is computed in (bfloat16 in float32, its compute dtype).
_DTYPE_NAMES = {
    torch.float16: "float16",
    torch.bfloat16: "float32",
    torch.float32: "float32",
    torch.float64: "float64",
}


def dropout(x: torch.Tensor, seed: int, stream: int, p: float, broadcast_dims: list[int]) -> torch.Tensor:
    """Mask stream v1 dropout of a CPU tensor; the result has the strides ``torch.empty_like`` gives."""
    array = _float32_of_bfloat16(x) if x.dtype == torch.bfloat16 else x.detach().numpy()
    plan = DropoutPlan.build(tuple(x.shape), _DTYPE_NAMES[x.dtype], p, seed, stream, broadcast_dims)
    y, _ = dropout_array(array, plan)
    result = torch.from_numpy(np.asarray(y))
    out = torch.empty_like(x)
    if result.dtype == out.dtype and result.stride() == out.stride():
        return result
    return out.copy_(result)  # bfloat16 rounding, or the layout torch.empty_like promises
