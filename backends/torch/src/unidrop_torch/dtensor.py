"""Dropout of a DTensor: each rank computes its local shard's slice of the global mask.

A DTensor of global shape G is dropped as if it were one tensor of shape G: the local shard at
offset O gets the mask of a block of G at O (:mod:`unidrop_torch.blocks`), so no rank talks to
another and the result equals the unsharded one. Placements, per mesh axis:

* ``Shard(d)``, even or uneven (torch's chunking rule): the shard's offset is the one torch's
  own ``compute_local_shape_and_global_offset`` (what distributed checkpointing uses) gives;
* ``Replicate()``: every rank computes the whole axis's mask, the same on every rank;
* ``Partial`` is refused: a rank holds a summand of each element, not its value, so no mask can
  be applied to it before the reduction (``redistribute`` first). ``_StridedShard`` and other
  placements, whose shard is not one contiguous block, are refused likewise.

The result keeps the input's mesh and placements; the keep mask (``return_mask=True``) is a
DTensor of the mask's shape, replicated along broadcast axes. ``seed=None`` draws from each
rank's default generator: seed every rank alike (``torch.manual_seed(s)`` on each) so that all
ranks draw the same seed, as with any SPMD program. Gradients flow through ``to_local`` and
``from_local``; the backward regenerates the local shard's mask.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch.distributed.tensor import DTensor, Replicate, Shard
from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

from unidrop import DropoutPlan, arguments
from unidrop.blocks import MaskBlock, c_strides

SUPPORTED = "Shard(d) (even or uneven) and Replicate()"


def is_dtensor(x: Any) -> bool:
    """True if ``x`` is a DTensor."""
    return isinstance(x, DTensor)


def _check_placements(x: DTensor) -> None:
    for mesh_axis, placement in enumerate(x.placements):
        if type(placement) in (Shard, Replicate):
            continue
        if placement.is_partial():
            raise ValueError(
                f"unidrop cannot drop elements of a DTensor with a Partial placement ({placement}) on "
                f"mesh axis {mesh_axis}: each rank holds a partial sum of every element, not its value. "
                "Reduce it first, e.g. x.redistribute(x.device_mesh, [Replicate()] * x.device_mesh.ndim) "
                f"or a Shard placement; supported: {SUPPORTED}"
            )
        raise ValueError(
            f"unidrop cannot drop elements of a DTensor with placement {type(placement).__name__} "
            f"({placement}) on mesh axis {mesh_axis}: its local shard is not one block of the global "
            f"tensor. Redistribute it to {SUPPORTED} first"
        )


def _local_shard(x: DTensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """``x``'s local tensor and its offset in ``x``; ValueError where the shard is not where torch's
    chunking rule puts it (a ``DTensor.from_local`` of other shapes), so that its mask is unknown."""
    _check_placements(x)
    local = x.to_local()
    shape, offset = compute_local_shape_and_global_offset(x.shape, x.device_mesh, x.placements)
    if tuple(local.shape) != tuple(shape):
        raise ValueError(
            f"the DTensor's local shard has shape {tuple(local.shape)}, where torch's chunking rule "
            f"gives {tuple(shape)} for placements {x.placements}: unidrop cannot tell where it lies"
        )
    return local, tuple(offset)


def _shard_mask(
    plan: DropoutPlan, local: torch.Tensor, offset: tuple[int, ...], dims: tuple[int, ...]
) -> tuple[tuple[int, ...], MaskBlock]:
    """The mask shape of the local shard (at ``offset``, broadcast on ``dims``) and where that mask
    lies in the DTensor's (or the caller's) global mask. Mask axes past the tensor's own (the pair
    of words per element of ``gaussian_dropout``) are held whole by every rank."""
    if plan.block is None:  # the DTensor is the whole array
        global_mask_shape, base = plan.mask_shape, (0,) * len(plan.mask_shape)
    else:  # the DTensor is itself a block of the caller's global array
        global_mask_shape, base = plan.block.global_mask_shape, plan.block.mask_offset
    mask_shape, mask_offset = [], []
    for axis, size in enumerate(plan.mask_shape):
        sharded = axis < local.dim() and axis not in dims
        mask_shape.append(local.shape[axis] if sharded else size)
        mask_offset.append(base[axis] + (offset[axis] if sharded else 0))
    return tuple(mask_shape), MaskBlock(tuple(global_mask_shape), tuple(mask_offset))


def _shard_block(x: DTensor, plan: DropoutPlan) -> tuple[torch.Tensor, DropoutPlan]:
    """The local tensor and its plan: a block of the DTensor's (or the caller's) global mask."""
    local, offset = _local_shard(x)
    mask_shape, block = _shard_mask(plan, local, offset, plan.broadcast_dims)
    return local, dataclasses.replace(plan, shape=tuple(local.shape), mask_shape=mask_shape, block=block)


def _as_dtensor_mask(
    local: torch.Tensor, x: DTensor, mask_shape: tuple[int, ...], dims: tuple[int, ...]
) -> DTensor:
    """A local mask (or words) of a shard of ``x`` as the DTensor of ``mask_shape`` it is part of."""
    return DTensor.from_local(
        local,
        x.device_mesh,
        _mask_placements(x, dims),
        run_check=False,
        shape=torch.Size(mask_shape),
        stride=c_strides(mask_shape),
    )


def _mask_placements(x: DTensor, dims: tuple[int, ...]) -> list[Any]:
    """The keep mask's placements: the input's, replicated where it shards a broadcast axis."""
    return [Replicate() if isinstance(pl, Shard) and pl.dim in dims else pl for pl in x.placements]


def run(
    x: DTensor, plan: DropoutPlan, local_run: Callable[[torch.Tensor, DropoutPlan], tuple[Any, Any]]
) -> tuple[DTensor, DTensor | None]:
    """``(y, keep)`` for DTensor ``x``: ``local_run`` on the local shard's block, wrapped back.

    ``y`` has ``x``'s mesh, placements, shape and strides; ``keep`` (if ``plan.return_mask``)
    is a DTensor of ``plan.mask_shape``.
    """
    local, local_plan = _shard_block(x, plan)
    y_local, keep_local = local_run(local, local_plan)
    y = DTensor.from_local(
        y_local, x.device_mesh, x.placements, run_check=False, shape=x.shape, stride=x.stride()
    )
    if keep_local is None:
        return y, None
    return y, _as_dtensor_mask(keep_local, x, plan.mask_shape, plan.broadcast_dims)


def stream_words(
    x: DTensor, plan: DropoutPlan, local_words: Callable[[torch.Tensor, DropoutPlan], torch.Tensor]
) -> DTensor:
    """The stream words of ``plan`` for DTensor ``x``, as a DTensor of ``plan.mask_shape``:
    ``local_words`` on the local shard's block of the words, wrapped back.

    ``plan.mask_shape`` starts with ``x``'s axes (1 on broadcast axes) and may have trailing
    axes of its own (``gaussian_dropout``'s pair of words per element), which every rank holds
    whole. The words are sharded as ``x`` is, and replicated where ``x`` shards a broadcast axis.
    """
    local, offset = _local_shard(x)
    dims = tuple(axis for axis in range(x.dim()) if plan.mask_shape[axis] != x.shape[axis])
    mask_shape, block = _shard_mask(plan, local, offset, dims)
    local_plan = dataclasses.replace(plan, shape=mask_shape, mask_shape=mask_shape, block=block)
    return _as_dtensor_mask(local_words(local, local_plan), x, plan.mask_shape, dims)


def full_mask(x: DTensor, mask_shape: tuple[int, ...], dims: tuple[int, ...]) -> DTensor:
    """An all-True keep mask for ``x`` as a DTensor of ``mask_shape`` (nothing dropped)."""
    _check_placements(x)
    local_shape, _ = compute_local_shape_and_global_offset(x.shape, x.device_mesh, x.placements)
    local = torch.ones(arguments.mask_shape(tuple(local_shape), dims), dtype=torch.bool, device=x.device)
    return _as_dtensor_mask(local, x, mask_shape, dims)
