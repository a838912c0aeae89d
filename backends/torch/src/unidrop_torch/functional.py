"""``unidrop_torch.dropout``: :func:`unidrop.dropout` bound to the torch backend.

It validates and behaves exactly as :func:`unidrop.dropout` (same checks, same results), but
skips the registry lookup. Both compile under ``torch.compile(fullgraph=True)`` with no graph
break.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

import unidrop

from .backend import TorchBackend

_BACKEND = TorchBackend()


def backend() -> TorchBackend:
    """The torch backend instance this module dispatches to."""
    return _BACKEND


def dropout(
    x: torch.Tensor,
    p: float = 0.5,
    *,
    training: bool = True,
    seed: int | None = None,
    stream: int = 0,
    broadcast_dims: int | Sequence[int] = (),
    return_mask: bool = False,
) -> Any:
    """Mask stream v1 dropout of a torch tensor (see :func:`unidrop.dropout`).

    ``seed=None`` draws the seed from torch's default generator of ``x``'s device, so
    ``torch.manual_seed`` governs it. Differentiable: the backward pass regenerates the mask
    from (seed, stream) and saves nothing else.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"unidrop_torch.dropout needs a torch.Tensor, got {type(x).__qualname__}")
    return unidrop.dropout(
        x,
        p,
        training=training,
        seed=seed,
        stream=stream,
        broadcast_dims=broadcast_dims,
        return_mask=return_mask,
        backend=_BACKEND,
    )
