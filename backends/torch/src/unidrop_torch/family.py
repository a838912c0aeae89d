"""The torch backend's primitives for the dropout family: stream words on any device, in-place writes."""

from __future__ import annotations

import torch

from unidrop import DropoutPlan
from unidrop.blocks import MaskBlock
from unidrop.philox import split64
from unidrop.philox_int64 import flat_indices, words_at

from . import blocks, keys


def stream_words(x: torch.Tensor, plan: DropoutPlan) -> torch.Tensor:
    """The words u_i of ``plan`` (int64, ``plan.mask_shape``) on ``x``'s device, blocks included.

    Drawn seed words (``seed=None``) are read back to the host once (a sync on CUDA). Under
    ``torch.compile`` the words are one opaque operator: inductor, given the integer Philox as
    pointwise operations, inlines every round into the next and takes tens of minutes to lower it.
    """
    if isinstance(plan.seed, torch.Tensor) and torch.jit.is_tracing():
        # read back to the host, the seed would be a constant of the trace: one noise for every call
        index = flat_indices(
            lambda n: torch.arange(n, dtype=torch.int64, device=x.device), plan.mask_shape, plan.block
        )
        return blocks.words_at(index, keys.make_key(plan.seed, plan.stream))
    seed = keys.int_of_seed_words(plan.seed) if isinstance(plan.seed, torch.Tensor) else plan.seed
    if torch.compiler.is_compiling() and isinstance(seed, int) and isinstance(plan.stream, int):
        block = plan.block
        return _words_operator(
            x,
            [*split64(seed), *split64(plan.stream)],
            list(plan.mask_shape),
            list(block.global_mask_shape) if block is not None else [],
            list(block.mask_offset) if block is not None else [],
        )
    return _words(x, seed, plan.stream, plan.mask_shape, plan.block)


def _words(
    x: torch.Tensor, seed: int, stream: int, mask_shape: tuple[int, ...], block: MaskBlock | None
) -> torch.Tensor:
    """The words of the mask indices of ``mask_shape`` (of ``block``, if given), on ``x``'s device."""
    device = x.device

    def arange(n: int) -> torch.Tensor:
        return torch.arange(n, dtype=torch.int64, device=device)

    return words_at(flat_indices(arange, mask_shape, block), seed, stream, torch.where)


@torch.library.custom_op("unidrop::stream_words", mutates_args=())
def _words_operator(
    x: torch.Tensor,
    key: list[int],
    mask_shape: list[int],
    global_mask_shape: list[int],
    mask_offset: list[int],
) -> torch.Tensor:
    """:func:`_words` as one operator; ``key`` is the seed's and the stream's (low, high) 32-bit words."""
    seed, stream = key[0] | key[1] << 32, key[2] | key[3] << 32
    block = MaskBlock(tuple(global_mask_shape), tuple(mask_offset)) if global_mask_shape else None
    return _words(x, seed, stream, tuple(mask_shape), block)


@_words_operator.register_fake
def _(
    x: torch.Tensor,
    key: list[int],
    mask_shape: list[int],
    global_mask_shape: list[int],
    mask_offset: list[int],
) -> torch.Tensor:
    return x.new_empty(mask_shape, dtype=torch.int64)


def check_writable(x: torch.Tensor) -> None:
    """Raise torch's own RuntimeError for a tensor ``x.copy_`` would refuse, before a seed is drawn:
    a leaf that requires grad (or a view of one) while grad mode is on, an inference tensor outside
    inference mode, a tensor with several elements at one address (an ``expand``ed view).
    Not while compiling: there the write itself is traced, and refused as torch refuses it."""
    if torch.compiler.is_compiling() or x.numel() == 0:  # nothing is written into an empty tensor
        return
    if x.requires_grad and torch.is_grad_enabled():
        base = x._base
        if x.is_leaf and base is not None:
            raise RuntimeError(
                "A view was created in no_grad mode and is being modified inplace with grad mode "
                f"enabled{_FIX}"
            )
        if x.is_leaf:
            raise RuntimeError(
                f"a leaf Variable that requires grad is being used in an in-place operation{_FIX}"
            )
        if base is not None and base.is_leaf:
            raise RuntimeError(
                f"a view of a leaf Variable that requires grad is being used in an in-place operation{_FIX}"
            )
    if x.is_inference() and not torch.is_inference_mode_enabled():
        raise RuntimeError(f"Inplace update to inference tensor outside InferenceMode is not allowed{_FIX}")
    if any(stride == 0 and size > 1 for size, stride in zip(x.shape, x.stride(), strict=True)):
        raise RuntimeError(
            "unsupported operation: more than one element of the written-to tensor refers to a single "
            f"memory location (shape {tuple(x.shape)}, strides {x.stride()}){_FIX}"
        )


#: How :func:`check_writable`'s errors end.
_FIX = " (dropout with inplace=True): call without inplace=True and use the result"


def copy_into(x: torch.Tensor, y: torch.Tensor) -> None:
    """``x.copy_(y)``: recorded by autograd like torch's own in-place ops (a leaf needing grad is refused);
    nothing for an empty ``x``, which torch's dropout returns as it is."""
    if x.numel():
        x.copy_(y)
