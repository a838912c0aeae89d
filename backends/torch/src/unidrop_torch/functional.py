"""``unidrop_torch.dropout``: :func:`unidrop.dropout` bound to the torch backend.

It validates and behaves exactly as :func:`unidrop.dropout` (same checks, same results), but
skips the registry lookup. Both compile under ``torch.compile(fullgraph=True)`` with no graph
break.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch

import unidrop

from . import family, fx
from .backend import TorchBackend
from .support import check_inplace, refuse_scripting

_BACKEND = TorchBackend()


def _build_before_tracing() -> None:
    """Discover the backends and build the torch implementations now (torch is imported here anyway),
    the registry's and this module's, so that a first call that ``torch.compile`` traces finds them
    built (Dynamo could not enter the registry's lock, nor trace the first publication, inside an
    autograd Function's forward). Whatever fails here fails again, with its message, at the first call."""
    with contextlib.suppress(Exception):  # reported by the first call, not by an import
        unidrop.get_backend("torch").implementation()
        _BACKEND.implementation()


_build_before_tracing()


def backend() -> TorchBackend:
    """The torch backend instance this module dispatches to."""
    return _BACKEND


def dropout(
    input: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    seed: int | None = None,
    stream: int = 0,
    broadcast_dims: int | Sequence[int] = (),
    return_mask: bool = False,
) -> Any:
    """Mask stream v1 dropout of a torch tensor (see :func:`unidrop.dropout`).

    The leading arguments are those of ``torch.nn.functional.dropout(input, p, training,
    inplace)``, positionally or by name; unidrop's own options are keyword-only.
    ``inplace=True`` writes the result into ``input`` and returns ``input`` itself (the result
    is computed first, so no memory is saved); autograd refuses it on a leaf that requires grad,
    as it refuses ``F.dropout(..., inplace=True)``. Without ``inplace``, ``input`` is never
    modified.

    ``seed=None`` draws the seed from torch's default generator of ``input``'s device, so
    ``torch.manual_seed`` governs it. Differentiable: the backward pass regenerates the mask
    from (seed, stream) and saves nothing else.
    """
    if not isinstance(input, torch.Tensor):
        options = {
            "seed": seed,
            "stream": stream,
            "broadcast_dims": broadcast_dims,
            "return_mask": return_mask,
        }
        recorded = fx.recorded_call(dropout, input, p, training, inplace, **options)
        if recorded is not NotImplemented:  # a torch.fx Proxy: one node of the traced graph
            return recorded
        raise TypeError(f"unidrop_torch.dropout needs a torch.Tensor, got {type(input).__qualname__}")
    inplace = check_inplace(inplace)
    if inplace and training is True and p != 0:  # refused before seed=None draws, as unidrop.dropout does
        family.check_writable(input)
    result = unidrop.dropout(
        input,
        p,
        training=training,
        seed=seed,
        stream=stream,
        broadcast_dims=broadcast_dims,
        return_mask=return_mask,
        backend=_BACKEND,
    )
    if not inplace:
        return result
    y, keep = result if return_mask else (result, None)
    if y is not input:
        family.copy_into(input, y)
    return (input, keep) if return_mask else input


def _refuse_scripting_dropout() -> None:
    refuse_scripting("unidrop_torch.dropout")


# torch.jit.script calls this on a function before parsing it (its keyword-only arguments would
# give a parse error that names neither alternative).
dropout.__prepare_scriptable__ = _refuse_scripting_dropout  # type: ignore[attr-defined]
