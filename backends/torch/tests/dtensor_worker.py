"""One rank of the DTensor checks (test_dtensor.py spawns two over gloo, on the CPU).

Every rank builds the same global inputs from fixed seeds, runs each case on its DTensor, and
saves what it saw (full tensors, local shards, placements, error messages) to ``rank<r>.pt``;
the test compares them with ``unidrop.reference`` in the parent process.
"""

from __future__ import annotations

import copy
import datetime
import os
from typing import Any

import torch
import torch.distributed as dist
import unidrop_torch
from torch import nn
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import DTensor, Partial, Replicate, Shard, distribute_tensor
from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module
from torch.distributed.tensor.placement_types import _StridedShard

import unidrop

SEED, P = 20261202, 0.5
WORLD = 2

#: name -> (global shape, placement, broadcast_dims)
CASES: dict[str, tuple[tuple[int, ...], Any, tuple[int, ...]]] = {
    "shard0_even": ((6, 10), Shard(0), ()),
    "shard0_uneven": ((5, 10), Shard(0), ()),
    "shard1_uneven": ((5, 7), Shard(1), ()),
    "shard_last_3d": ((2, 3, 5), Shard(2), ()),
    "replicate": ((5, 7), Replicate(), ()),
    "shard_on_broadcast_axis": ((4, 6), Shard(1), (1,)),
    "shard_beside_broadcast_axis": ((5, 6), Shard(0), (1,)),
    "one_row_for_two_ranks": ((1, 9), Shard(0), ()),
}


def global_input(shape: tuple[int, ...]) -> torch.Tensor:
    """The same float32 input on every rank (and in the test)."""
    generator = torch.Generator().manual_seed(sum(shape))
    return torch.randn(shape, generator=generator)


def _cases(mesh: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, (shape, placement, dims) in CASES.items():
        x = distribute_tensor(global_input(shape), mesh, [placement])
        y, keep = unidrop.dropout(x, P, seed=SEED, broadcast_dims=dims, return_mask=True)
        seen[name] = {
            "type": type(y).__name__,
            "placements": tuple(y.placements),
            "keep_placements": tuple(keep.placements),
            "local": y.to_local().clone(),
            "x_local": x.to_local().clone(),
            "full": y.full_tensor(),
            "keep": keep.full_tensor(),
        }
    return seen


def _gradient(mesh: Any) -> dict[str, Any]:
    x = distribute_tensor(global_input((5, 7)), mesh, [Shard(1)]).requires_grad_()
    y = unidrop.dropout(x, P, seed=SEED)
    y.backward(torch.ones_like(y))
    return {"grad": x.grad.full_tensor(), "grad_placements": tuple(x.grad.placements)}


def _errors(mesh: Any) -> dict[str, str]:
    refused = {
        "partial": DTensor.from_local(torch.ones(4, 3), mesh, [Partial()]),
        "strided_shard": DTensor.from_local(torch.ones(4, 3), mesh, [_StridedShard(0, split_factor=2)]),
    }
    seen = {}
    for name, x in refused.items():
        try:
            unidrop.dropout(x, P, seed=SEED)
        except ValueError as error:
            seen[name] = str(error)
        else:
            seen[name] = "no error"
    # shards of 1 and 4 rows where torch's rule gives 3 and 2: every rank's shard is off the rule
    rows = 1 if dist.get_rank() == 0 else 4
    off_rule = DTensor.from_local(
        torch.ones(rows, 3), mesh, [Shard(0)], run_check=False, shape=(5, 3), stride=(3, 1)
    )
    for name, fn in [("off_rule_dropout", unidrop.dropout), ("off_rule_gaussian", unidrop.gaussian_dropout)]:
        try:
            fn(off_rule, P, seed=SEED)
        except ValueError as error:
            seen[name] = str(error)
        else:
            seen[name] = "no error"
    return seen


def _nothing_dropped_and_nested_block(mesh: Any) -> dict[str, Any]:
    x = distribute_tensor(global_input((5, 7)), mesh, [Shard(1)])
    same, keep = unidrop.dropout(x, 0.0, return_mask=True, broadcast_dims=(0,))
    # the DTensor is itself the block at (2, 3) of a (9, 12) array
    nested = unidrop.dropout(x, P, seed=SEED, global_shape=(9, 12), offset=(2, 3))
    return {
        "p0_is_input": same is x,
        "p0_keep_type": type(keep).__name__,
        "p0_keep_placements": tuple(keep.placements),
        "p0_keep": keep.full_tensor(),
        "nested": nested.full_tensor(),
    }


#: name -> (global shape, placement, broadcast_dims) of the family cases (gaussian_dropout, alpha_dropout)
FAMILY_CASES: dict[str, tuple[tuple[int, ...], Any, tuple[int, ...]]] = {
    "family_shard0_uneven": ((5, 6), Shard(0), ()),
    "family_shard1_on_broadcast_axis": ((4, 6), Shard(1), (1,)),
    "family_replicate": ((3, 5), Replicate(), ()),
    "family_one_row_for_two_ranks": ((1, 9), Shard(0), ()),
}


def _family(mesh: Any) -> dict[str, Any]:
    """gaussian_dropout and alpha_dropout of DTensors (full tensors and placements)."""
    seen: dict[str, Any] = {}
    for name, (shape, placement, dims) in FAMILY_CASES.items():
        x = distribute_tensor(global_input(shape), mesh, [placement])
        gaussian = unidrop.gaussian_dropout(x, P, seed=SEED, broadcast_dims=dims)
        alpha = unidrop.alpha_dropout(x, P, seed=SEED, broadcast_dims=dims)
        seen[name] = {
            "gaussian": gaussian.full_tensor(),
            "gaussian_placements": tuple(gaussian.placements),
            "alpha": alpha.full_tensor(),
        }
    x = distribute_tensor(global_input((5, 7)), mesh, [Shard(1)])
    nested = unidrop.gaussian_dropout(x, P, seed=SEED, global_shape=(9, 12), offset=(2, 3))
    seen["family_nested"] = nested.full_tensor()
    return seen


def _drawn_seed(mesh: Any) -> dict[str, Any]:
    torch.manual_seed(7)  # every rank seeds alike: every rank draws the same seed
    x = distribute_tensor(global_input((5, 7)), mesh, [Shard(0)])
    return {"drawn": unidrop.dropout(x, P).full_tensor()}


def _module(mesh: Any) -> dict[str, Any]:
    x = distribute_tensor(global_input((6, 10)), mesh, [Shard(1)])
    return {"module": unidrop_torch.Dropout(P, seed=SEED)(x).full_tensor()}


def _tensor_parallel(mesh: Any) -> dict[str, Any]:
    """Linear -> unidrop Dropout -> Linear, column- then row-wise parallel, against the unsharded model."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), unidrop_torch.Dropout(P, seed=SEED), nn.Linear(16, 8))
    unsharded = copy.deepcopy(model)
    parallelize_module(
        model,
        mesh,
        {"0": ColwiseParallel(use_local_output=False), "2": RowwiseParallel(input_layouts=Shard(-1))},
    )
    seen: dict[str, Any] = {}
    model[1].register_forward_hook(lambda _m, _i, out: seen.update(dropped=out))
    unsharded[1].register_forward_hook(lambda _m, _i, out: seen.update(dropped_unsharded=out))
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(3))
    out, want = model(x), unsharded(x)
    out.sum().backward()
    want.sum().backward()
    return {
        "tp_out": out.detach(),
        "tp_want": want.detach(),
        "tp_dropped_type": type(seen["dropped"]).__name__,
        "tp_dropped_placements": tuple(seen["dropped"].placements),
        "tp_dropped": seen["dropped"].full_tensor().detach(),
        "tp_dropped_unsharded": seen["dropped_unsharded"].detach(),
        "tp_grad": model[0].weight.grad.full_tensor(),
        "tp_grad_want": unsharded[0].weight.grad,
    }


def run(rank: int, folder: str) -> None:
    """Rank ``rank`` of ``WORLD``: join the group through a file in ``folder``, run, save."""
    dist.init_process_group(
        "gloo",
        init_method=f"file://{os.path.join(folder, 'store')}",
        rank=rank,
        world_size=WORLD,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        mesh = init_device_mesh("cpu", (WORLD,))
        seen = {
            **_cases(mesh),
            **_gradient(mesh),
            **_errors(mesh),
            **_nothing_dropped_and_nested_block(mesh),
            **_drawn_seed(mesh),
            **_family(mesh),
            **_module(mesh),
            **_tensor_parallel(mesh),
        }
        torch.save(seen, os.path.join(folder, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
