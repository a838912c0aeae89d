"""The torch backend's primitives for the dropout family: stream words on any device, in-place writes."""

from __future__ import annotations

import torch

from unidrop import DropoutPlan
from unidrop.philox_int64 import flat_indices, words_at

from . import keys


def stream_words(x: torch.Tensor, plan: DropoutPlan) -> torch.Tensor:
    """The words u_i of ``plan`` (int64, ``plan.mask_shape``) on ``x``'s device, blocks included.

    Drawn seed words (``seed=None``) are read back to the host once (a sync on CUDA).
    """
    seed = keys.int_of_seed_words(plan.seed) if isinstance(plan.seed, torch.Tensor) else plan.seed
    device = x.device

    def arange(n: int) -> torch.Tensor:
        return torch.arange(n, dtype=torch.int64, device=device)

    return words_at(flat_indices(arange, plan.mask_shape, plan.block), seed, plan.stream, torch.where)


def copy_into(x: torch.Tensor, y: torch.Tensor) -> None:
    """``x.copy_(y)``: recorded by autograd like torch's own in-place ops (a leaf needing grad is refused)."""
    x.copy_(y)
