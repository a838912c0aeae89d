"""The CUDA path on a real GPU (skipped, saying why, where there is none)."""

from __future__ import annotations

import pytest
import torch
import unidrop_torch
from torch_helpers import DTYPES, assert_same, cuda_devices, expected_output, requires_cuda, sample

import unidrop

pytestmark = requires_cuda


@pytest.fixture(params=cuda_devices() or ["cuda:0"])
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.param)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_dtype_and_layout_matches_the_reference(device: torch.device, dtype: torch.dtype) -> None:
    host = sample((3, 4, 5, 6), dtype, seed=1)
    for layout in (torch.contiguous_format, torch.channels_last):
        x = host.to(device).contiguous(memory_format=layout)
        for dims in [(), (1,), (2, 3)]:
            for seed, stream, p in [(0, 0, 0.5), ((1 << 64) - 1, 1 << 40, 0.1)]:
                y = unidrop.dropout(x, p, seed=seed, stream=stream, broadcast_dims=dims)
                assert y.device == device and y.dtype == dtype
                assert y.stride() == torch.empty_like(x).stride()
                assert_same(y, expected_output(host, p, seed, stream, dims), f"{layout} {dims} {seed}")


def test_cpu_and_cuda_give_the_same_bits(device: torch.device) -> None:
    x = torch.randn(1 << 20)
    assert_same(unidrop.dropout(x.to(device), 0.3, seed=9), unidrop.dropout(x, 0.3, seed=9), "cpu vs cuda")


def test_seed_none_never_synchronises_and_follows_the_cuda_generator(device: torch.device) -> None:
    x = torch.ones(1 << 16, device=device, requires_grad=True)
    torch.cuda.manual_seed_all(4)
    torch.cuda.synchronize(device)
    torch.cuda.set_sync_debug_mode("error")
    try:
        y = unidrop_torch.dropout(x, 0.5)
        y.backward(torch.ones_like(y))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.manual_seed_all(4)
    assert torch.equal(unidrop_torch.dropout(x.detach(), 0.5), y.detach())
    assert torch.equal(x.grad, y.detach())


def test_only_the_key_is_saved_for_backward(device: torch.device) -> None:
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    x = torch.randn(1 << 20, device=device, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        unidrop_torch.dropout(x, 0.5)
    assert total == 16


def test_cuda_graph_capture(device: torch.device) -> None:
    x = torch.randn(4096, device=device)
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        unidrop_torch.dropout(x, 0.5, seed=3)  # compile the kernel outside the capture
        unidrop_torch.dropout(x, 0.5)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        seeded = unidrop_torch.dropout(x, 0.5, seed=3)
        drawn = unidrop_torch.dropout(x, 0.5)
    graph.replay()
    torch.cuda.synchronize(device)
    assert torch.equal(seeded, unidrop_torch.dropout(x, 0.5, seed=3))
    first = drawn.clone()
    graph.replay()
    torch.cuda.synchronize(device)
    assert not torch.equal(first, drawn), "replays must draw fresh seeds (graph-safe generator)"


def test_compile_fullgraph_on_cuda(device: torch.device) -> None:
    torch._dynamo.reset()
    x = torch.randn(1000, 3, device=device, dtype=torch.bfloat16)

    def fn(a: torch.Tensor) -> torch.Tensor:
        return unidrop_torch.dropout(a, 0.2, seed=1 << 35, stream=1, broadcast_dims=(1,))

    assert_same(torch.compile(fn, fullgraph=True)(x), fn(x), "compiled on cuda")
