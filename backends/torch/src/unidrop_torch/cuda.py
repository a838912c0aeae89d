"""The CUDA path: launches the Triton kernels of :mod:`unidrop_torch.triton_kernels`.

A CPU key (explicit integer seed) is passed as scalars; a device key (``seed=None``) is
loaded by the kernel itself, so no call here waits for the device. The launchers take plain
tensors on any device Triton drives, so with ``TRITON_INTERPRET=1`` they run on CPU tensors,
which is how the kernels are tested without a GPU.
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
from types import ModuleType

import torch

from unidrop import arguments
from unidrop.blocks import c_strides

from .keys import as_int32, check_key

#: (elements per program, warps per program, Philox calls per tile row), by element size in
#: bytes. Tuned by the GPU benchmark (benchmarks/gpu_torch.py --sweep); a change here never
#: changes any result, only the speed.
CONFIG: dict[int, tuple[int, int, int]] = {2: (4096, 8, 2), 4: (2048, 8, 1), 8: (1024, 4, 1)}


def _kernels() -> ModuleType:
    """The Triton kernels module; a clear error when triton is missing."""
    try:
        from . import triton_kernels
    except ImportError as error:
        if error.name != "triton":
            raise
        raise ImportError(
            "unidrop-torch runs CUDA tensors with a Triton kernel, and triton is not installed: "
            "`pip install triton` (CUDA builds of torch install it), or move the tensor to the CPU"
        ) from error
    return triton_kernels


def _key_args(
    key: torch.Tensor, device_tensor: torch.Tensor, key_in_kernel: bool | None
) -> tuple[torch.Tensor, list[int], bool]:
    """(pointer tensor, four scalar words, load-key-in-kernel flag) for a launch beside ``device_tensor``.

    By default a CPU key goes as scalars and a device key is loaded by the kernel;
    ``key_in_kernel`` forces one way (tests use it to run both under the interpreter).
    """
    check_key(key)
    device = device_tensor.device
    if key_in_kernel is None:
        key_in_kernel = key.device.type != "cpu" or device.type == "cpu"
    if not key_in_kernel:
        if key.device.type != "cpu":
            raise ValueError("passing the key as scalars needs a CPU key")
        # A host read of a host tensor (no sync); the pointer argument is unused, any device tensor does.
        return device_tensor, [int(v) for v in key.tolist()], False
    if key.device != device:
        raise ValueError(f"the key is on {key.device}, the input on {device}: put them on one device")
    return key.contiguous(), [0, 0, 0, 0], True  # the kernel reads four consecutive words


def _interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _on(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """Make ``device`` the current CUDA device for a launch (nothing to do off CUDA)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _words(value: int) -> tuple[int, int]:
    """A 64-bit integer as two int32 bit patterns (low, high)."""
    return as_int32(value), as_int32(value >> 32)


def _scale_bits(p: float, compute: torch.dtype) -> int:
    s = arguments.scale(p)
    if compute == torch.float64:
        return struct.unpack("<q", struct.pack("<d", s))[0]
    return struct.unpack("<i", struct.pack("<f", s))[0]  # pack rounds to float32 (nearest even)


def launch_dropout(
    x: torch.Tensor,
    y: torch.Tensor,
    key: torch.Tensor,
    p: float,
    start: int = 0,
    key_in_kernel: bool | None = None,
) -> None:
    """Write into contiguous ``y`` the dropout of contiguous ``x`` taking mask indices from ``start``."""
    dropout_kernel = _kernels().dropout_kernel

    if start % 4:
        raise ValueError(f"start must be a multiple of 4, got {start}")
    n = x.numel()
    if n == 0:
        return
    if arguments.threshold(p) >= arguments.TWO_POW_32:  # p == 1: t = 2**32 does not fit a word
        y.zero_()
        return
    ptr, (k0, k1, s0, s1), on_device = _key_args(key, x, key_in_kernel)
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    block, warps, calls = CONFIG[x.element_size()]
    scalars = (k0, k1, s0, s1, as_int32(arguments.threshold(p)), _scale_bits(p, compute))
    flags = {
        "KEY_ON_DEVICE": on_device,
        "COMPUTE_F64": compute == torch.float64,
        "BF16_BY_HAND": x.dtype == torch.bfloat16 and _interpreting(),
        "BLOCK": block,
        "CALLS": calls,
        "num_warps": warps,
    }
    with _on(x.device):
        for first, count, masked, programs in _pieces(n, block):
            if first == 0 and count == n:
                xs, ys = x, y
            else:
                xs, ys = x.view(-1)[first : first + count], y.view(-1)[first : first + count]
            dropout_kernel[(programs,)](
                xs, ys, ptr, *_words(count), *_words((start + first) >> 2), *scalars, MASKED=masked, **flags
            )


def _pieces(n: int, block: int) -> list[tuple[int, int, bool, int]]:
    """(first element, count, masked, programs) launches covering n elements: whole blocks
    unmasked, then the tail. Python integers throughout: exact for any n."""
    whole = n - n % block
    pieces = [(0, whole, False, whole // block)] if whole else []
    if whole < n:
        pieces.append((whole, n - whole, True, 1))
    return pieces


def launch_keep(
    keep: torch.Tensor, key: torch.Tensor, p: float, start: int = 0, key_in_kernel: bool | None = None
) -> None:
    """Write into contiguous uint8 ``keep`` the keep decisions of mask indices from ``start``."""
    keep_kernel = _kernels().keep_kernel

    if start % 4:
        raise ValueError(f"start must be a multiple of 4, got {start}")
    n = keep.numel()
    if n == 0:
        return
    if arguments.threshold(p) >= arguments.TWO_POW_32:
        keep.zero_()
        return
    ptr, (k0, k1, s0, s1), on_device = _key_args(key, keep, key_in_kernel)
    block = 2048
    threshold = as_int32(arguments.threshold(p))
    with _on(keep.device):
        for first, count, masked, programs in _pieces(n, block):
            piece = keep.view(-1)[first : first + count]
            keep_kernel[(programs,)](
                piece,
                ptr,
                *_words(count),
                *_words((start + first) >> 2),
                k0,
                k1,
                s0,
                s1,
                threshold,
                KEY_ON_DEVICE=on_device,
                BLOCK=block,
                MASKED=masked,
                num_warps=4,
            )


#: Axes the block keep kernel indexes; a block whose mask needs more (after merging) runs in
#: pure torch (:mod:`unidrop_torch.blocks`).
BLOCK_AXES = 4


def block_axes(
    mask_shape: tuple[int, ...], global_mask_shape: tuple[int, ...], mask_offset: tuple[int, ...]
) -> tuple[int, list[int], list[int]] | None:
    """(global index of the first element, sizes, global strides) of a block's mask with size-1
    axes dropped and axes merged where consecutive in the global mask, padded in front to
    ``BLOCK_AXES`` axes; None if more axes remain."""
    strides = c_strides(global_mask_shape)
    start = sum(int(o) * g for o, g in zip(mask_offset, strides, strict=True))
    sizes: list[int] = []
    steps: list[int] = []
    for size, step in reversed(list(zip(mask_shape, strides, strict=True))):
        if size == 1:
            continue
        if sizes and steps[0] * sizes[0] == step:  # consecutive with the axis inside it: merge
            sizes[0] *= size
            continue
        sizes.insert(0, size)
        steps.insert(0, step)
    if len(sizes) > BLOCK_AXES:
        return None
    pad = BLOCK_AXES - len(sizes)
    return start, [1] * pad + sizes, [0] * pad + steps


def launch_block_keep(
    keep: torch.Tensor,
    key: torch.Tensor,
    p: float,
    global_mask_shape: tuple[int, ...],
    mask_offset: tuple[int, ...],
    key_in_kernel: bool | None = None,
) -> bool:
    """Write into contiguous uint8 ``keep`` (the block's mask shape) the block's keep decisions.

    False, writing nothing, when the block's mask has more than ``BLOCK_AXES`` axes after
    merging (the caller then computes it otherwise); p < 1."""
    layout = block_axes(tuple(keep.shape), tuple(global_mask_shape), tuple(mask_offset))
    if layout is None:
        return False
    n = keep.numel()
    if n == 0:
        return True
    start, sizes, steps = layout
    ptr, (k0, k1, s0, s1), on_device = _key_args(key, keep, key_in_kernel)
    block = 1024
    with _on(keep.device):
        _kernels().block_keep_kernel[(-(-n // block),)](
            keep,
            ptr,
            *_words(n),
            *_words(start),
            *sizes[1:],
            *(word for step in steps for word in _words(step)),
            k0,
            k1,
            s0,
            s1,
            as_int32(arguments.threshold(p)),
            KEY_ON_DEVICE=on_device,
            BLOCK=block,
            num_warps=4,
        )
    return True


def keep_mask(key: torch.Tensor, mask_shape: tuple[int, ...], p: float, device: torch.device) -> torch.Tensor:
    """The boolean keep mask of ``mask_shape`` on ``device``."""
    if arguments.threshold(p) >= arguments.TWO_POW_32:
        return torch.zeros(mask_shape, dtype=torch.bool, device=device)
    keep = torch.empty(mask_shape, dtype=torch.uint8, device=device)
    launch_keep(keep, key, p)
    return keep.view(torch.bool)


def dropout(x: torch.Tensor, key: torch.Tensor, p: float, broadcast_dims: list[int]) -> torch.Tensor:
    """Mask stream v1 dropout of a CUDA tensor; the result keeps ``x``'s memory format."""
    if arguments.threshold(p) >= arguments.TWO_POW_32:
        return torch.zeros_like(x)
    mshape = arguments.mask_shape(tuple(x.shape), tuple(broadcast_dims))
    if math.prod(mshape) != x.numel():  # broadcast mask: draw it once, apply it by broadcasting
        compute = torch.float64 if x.dtype == torch.float64 else torch.float32
        keep = keep_mask(key, mshape, p, x.device)
        scaled = (x.to(compute) * arguments.scale(p)).to(x.dtype)
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        return torch.where(keep, scaled, zero, out=torch.empty_like(x))  # x's memory format
    source = x.contiguous()
    y = torch.empty_like(source)
    launch_dropout(source, y, key, p)
    if source is x:
        return y
    return torch.empty_like(x).copy_(y)  # same values as for the contiguous copy, x's layout
