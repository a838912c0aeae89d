"""unidrop on DTensors: two CPU ranks over gloo, each computing its shard's slice of the global mask.

One spawn of two processes (dtensor_worker.py) runs every case; the tests read what each rank
saved and compare it with ``unidrop.reference`` on the unsharded array. The group meets through
a file in a temporary folder (no port to pick, so no clash), and the ranks are given a deadline.
The time is mostly the one import of torch in the fork server (about 3 s on an idle machine).
"""

from __future__ import annotations

import math
import multiprocessing
import time
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
from torch.distributed.tensor import Replicate, Shard
from torch_helpers import assert_same

from unidrop import reference

dist = pytest.importorskip("torch.distributed")
if not dist.is_available():  # pragma: no cover - torch builds without distributed support
    pytest.skip("this torch build has no torch.distributed", allow_module_level=True)

import dtensor_worker  # noqa: E402 (needs torch.distributed)
from dtensor_worker import CASES, FAMILY_CASES, SEED, WORLD, P, global_input  # noqa: E402

DEADLINE_S = 120


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """What each of the two ranks saw."""
    folder = tmp_path_factory.mktemp("dtensor")
    # A fork server imports torch and the worker once, then forks both ranks from that fresh
    # process (which never ran a torch op): one import instead of one per rank.
    multiprocessing.get_context("forkserver").set_forkserver_preload(["dtensor_worker"])
    context = mp.start_processes(
        dtensor_worker.run, args=(str(folder),), nprocs=WORLD, join=False, start_method="forkserver"
    )
    deadline = time.monotonic() + DEADLINE_S
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the two gloo ranks did not finish within {DEADLINE_S} s")
    return [torch.load(folder / f"rank{rank}.pt", weights_only=False) for rank in range(WORLD)]


def expected(shape: tuple[int, ...], dims: tuple[int, ...], seed: int = SEED, x: torch.Tensor | None = None):
    """Reference (output, keep mask) of the unsharded input of ``shape``."""
    x = global_input(shape) if x is None else x
    out, keep = reference.dropout(x.reshape(-1).tolist(), shape, "float32", P, seed, 0, dims)
    mshape = tuple(1 if axis in dims else size for axis, size in enumerate(shape))
    return torch.tensor(out, dtype=torch.float64).reshape(shape), torch.tensor(keep).reshape(mshape)


def torch_chunk(full: torch.Tensor, dim: int, rank: int) -> torch.Tensor:
    """Rank ``rank``'s shard of ``full`` along ``dim`` by torch's rule (ceil-sized chunks, the last short)."""
    size = math.ceil(full.shape[dim] / WORLD)
    start = min(rank * size, full.shape[dim])
    return full.narrow(dim, start, min(size, full.shape[dim] - start))


@pytest.mark.parametrize("name", list(CASES))
def test_each_rank_computes_its_shards_slice_of_the_unsharded_result(ranks, name: str) -> None:
    shape, placement, dims = CASES[name]
    want_y, want_keep = expected(shape, dims)
    for rank, seen in enumerate(ranks):
        case = seen[name]
        assert case["type"] == "DTensor"
        assert case["placements"] == (placement,)
        assert_same(case["full"], want_y, f"{name}, rank {rank}, full tensor")
        assert torch.equal(case["keep"], want_keep), f"{name}, rank {rank}: keep mask"
        local_want = want_y if isinstance(placement, Replicate) else torch_chunk(want_y, placement.dim, rank)
        assert_same(case["local"], local_want, f"{name}, rank {rank}, local shard")


def test_a_mask_sharded_on_a_broadcast_axis_is_replicated(ranks) -> None:
    for seen in ranks:
        assert seen["shard_on_broadcast_axis"]["keep_placements"] == (Replicate(),)
        assert seen["shard_beside_broadcast_axis"]["keep_placements"] == (Shard(0),)
        assert seen["shard1_uneven"]["keep_placements"] == (Shard(1),)


def test_gradient_through_a_dtensor_is_the_shards_mask(ranks) -> None:
    want, _ = expected((5, 7), (), x=torch.ones(5, 7))
    for seen in ranks:
        assert_same(seen["grad"], want, "gradient")
        assert seen["grad_placements"] == (Shard(1),)


def test_partial_and_strided_placements_are_refused_with_what_to_do(ranks) -> None:
    for seen in ranks:
        message = seen["partial"]
        assert "Partial" in message and "redistribute" in message, message
        message = seen["strided_shard"]
        assert "_StridedShard" in message and "Redistribute" in message, message


@pytest.mark.parametrize("name", ["off_rule_dropout", "off_rule_gaussian"])
def test_a_shard_off_torchs_chunking_rule_is_refused_naming_its_shapes(ranks, name: str) -> None:
    """dropout and gaussian_dropout (its stream words) find a shard's place the same way."""
    for seen, local, rule in zip(ranks, [(1, 3), (4, 3)], [(3, 3), (2, 3)], strict=True):
        wanted = f"local shard has shape {local}, where torch's chunking rule gives {rule}"
        assert wanted in seen[name], seen[name]


def test_p_zero_returns_the_input_and_an_all_true_dtensor_mask(ranks) -> None:
    for seen in ranks:
        assert seen["p0_is_input"]
        assert seen["p0_keep_type"] == "DTensor"
        assert seen["p0_keep_placements"] == (Shard(1),)
        assert torch.equal(seen["p0_keep"], torch.ones(1, 7, dtype=torch.bool))


def test_a_dtensor_that_is_itself_a_block_of_a_larger_array(ranks) -> None:
    x = global_input((5, 7))
    out, _ = reference.dropout(
        x.reshape(-1).tolist(), (5, 7), "float32", P, SEED, 0, global_shape=(9, 12), offset=(2, 3)
    )
    want = torch.tensor(out, dtype=torch.float64).reshape(5, 7)
    for seen in ranks:
        assert_same(seen["nested"], want, "a DTensor block at (2, 3) of (9, 12)")


def assert_within_gaussian_bound(actual: torch.Tensor, x: torch.Tensor, context: str, **block: Any) -> None:
    """``actual`` within the documented bound of ``reference.gaussian_dropout`` of ``x``."""
    dims = block.pop("broadcast_dims", ())
    want, bounds = reference.gaussian_dropout(
        x.reshape(-1).tolist(), tuple(x.shape), "float32", P, SEED, 0, dims, **block
    )
    error = (actual.reshape(-1).to(torch.float64) - torch.tensor(want, dtype=torch.float64)).abs()
    assert bool((error <= torch.tensor(bounds, dtype=torch.float64)).all()), context


@pytest.mark.parametrize("name", list(FAMILY_CASES))
def test_the_family_on_a_dtensor_is_the_unsharded_family(ranks, name: str) -> None:
    """gaussian_dropout (its stream words sharded as the input) and alpha_dropout of a DTensor."""
    shape, placement, dims = FAMILY_CASES[name]
    x = global_input(shape)
    pairs, _ = reference.alpha_dropout(x.reshape(-1).tolist(), shape, "float32", P, SEED, 0, dims)
    for rank, seen in enumerate(ranks):
        case = seen[name]
        assert_within_gaussian_bound(case["gaussian"], x, f"{name}, rank {rank}", broadcast_dims=dims)
        if name != "family_one_row_for_two_ranks":  # torch's own ops replicate a size-1 sharded axis
            assert case["gaussian_placements"] == (placement,)
        alpha = case["alpha"].reshape(-1).tolist()
        assert all(value in pair for value, pair in zip(alpha, pairs, strict=True)), f"{name}, rank {rank}"


def test_gaussian_dropout_of_a_dtensor_that_is_a_block(ranks) -> None:
    x = global_input((5, 7))
    for seen in ranks:
        assert_within_gaussian_bound(seen["family_nested"], x, "block", global_shape=(9, 12), offset=(2, 3))


def test_seed_none_draws_the_same_seed_on_ranks_seeded_alike(ranks) -> None:
    torch.manual_seed(7)  # the convention: two words from torch's default generator, low first
    low, high = (int(w) & 0xFFFFFFFF for w in torch.randint(-(1 << 31), 1 << 31, (2,), dtype=torch.int32))
    want, _ = expected((5, 7), (), seed=low | high << 32)
    for seen in ranks:
        assert_same(seen["drawn"], want, "seed=None")


def test_the_dropout_module_on_a_dtensor(ranks) -> None:
    want, _ = expected((6, 10), ())
    for seen in ranks:
        assert_same(seen["module"], want, "unidrop_torch.Dropout")


def test_tensor_parallel_mlp_matches_the_unsharded_model(ranks) -> None:
    """Colwise Linear -> unidrop Dropout on the Shard(-1) activation -> Rowwise Linear."""
    for seen in ranks:
        assert seen["tp_dropped_type"] == "DTensor"
        assert seen["tp_dropped_placements"] == (Shard(1),)
        _, keep = reference.dropout([1.0] * 64, (4, 16), "float32", P, SEED, 0)
        dropped = seen["tp_dropped"]
        assert torch.equal(dropped != 0, torch.tensor(keep).reshape(4, 16))  # the unsharded mask
        torch.testing.assert_close(dropped, seen["tp_dropped_unsharded"])
        # the row-wise matmul sums in another order: equal up to rounding
        torch.testing.assert_close(seen["tp_out"], seen["tp_want"])
        torch.testing.assert_close(seen["tp_grad"], seen["tp_grad_want"])
