"""The CPU path runs unidrop-numpy's compiled kernel on zero-copy views, and falls back to pure NumPy."""

from __future__ import annotations

import pytest
import torch
from torch_helpers import DTYPES, assert_same, expected_at, expected_output, sample
from unidrop_numpy import compiled
from unidrop_torch import cpu, ops

import unidrop
from unidrop import reference

needs_kernel = pytest.mark.skipif(not cpu.COMPILED, reason="the compiled kernel is not built or not chosen")


def _layouts(dtype: torch.dtype) -> list[tuple[str, torch.Tensor]]:
    matrix = sample((12, 10), dtype, seed=4)
    return [
        ("contiguous", sample((3, 5, 4), dtype, seed=1)),
        ("channels_last", sample((2, 3, 4, 5), dtype, seed=2).to(memory_format=torch.channels_last)),
        ("transposed", matrix.t()),
        ("sliced", matrix[1::3, ::2]),
        ("expanded", sample((1, 6), dtype, seed=5).expand(4, 6)),
        ("zero-d", sample((), dtype, seed=6)),
    ]


def test_the_active_kernel_follows_the_numpy_backend_setting() -> None:
    assert compiled.use_compiled() == cpu.COMPILED
    described = unidrop.get_backend("torch").implementation().describe()
    assert described.startswith(f"CPU: {compiled.describe(cpu.COMPILED)}; CPU autograd: ")


@needs_kernel
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_the_kernel_reads_the_input_and_writes_the_output_in_place(
    dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No copy on either side: the kernel gets views of the input's and the result's own memory."""
    seen = []
    real = compiled.dropout_into

    def spy(x, y, keep, plan, threads):  # type: ignore[no-untyped-def]
        seen.append((x.__array_interface__["data"][0], y.__array_interface__["data"][0], keep))
        real(x, y, keep, plan, threads)

    monkeypatch.setattr(compiled, "dropout_into", spy)
    for name, x in _layouts(dtype):
        seen.clear()
        y, keep = unidrop.dropout(x, 0.4, seed=3, stream=2, return_mask=True)
        assert len(seen) == 1, name
        x_address, y_address, keep_view = seen[0]
        assert x_address == x.data_ptr() and y_address == y.data_ptr(), name
        assert keep_view.__array_interface__["data"][0] == keep.data_ptr(), name
        assert y.stride() == torch.empty_like(x).stride(), name
        assert_same(y, expected_output(x, 0.4, 3, 2), f"{name} {dtype}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_the_pure_numpy_fallback_gives_the_same_bits(
    dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cpu, "COMPILED", False)
    for name, x in _layouts(dtype):
        for dims in [(), (0,)] if x.dim() else [()]:
            y, keep = unidrop.dropout(x, 0.3, seed=11, stream=1, broadcast_dims=dims, return_mask=True)
            assert y.dtype == dtype and y.stride() == torch.empty_like(x).stride(), name
            assert_same(y, expected_output(x, 0.3, 11, 1, dims), f"{name} {dtype} dims={dims}")
            mask_shape = tuple(1 if axis in dims else n for axis, n in enumerate(x.shape))
            assert (
                keep.tolist()
                == torch.tensor(reference.keep_bits(11, 1, mask_shape, 0.3)).reshape(mask_shape).tolist()
            )


@pytest.mark.parametrize("compiled_kernel", [True, False], ids=["compiled", "numpy"])
def test_kept_bfloat16_nans_keep_their_sign_and_payload(
    compiled_kernel: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kept NaN is the input's bits, quiet (0x0040 set); the fallback once gave torch's 0xFFFF."""
    if compiled_kernel and not compiled.available():
        pytest.skip("the compiled kernel is not built")
    monkeypatch.setattr(cpu, "COMPILED", compiled_kernel)
    bits = torch.tensor([0x7FC0, 0xFFC0, 0x7F81, 0xFF85, 0x7FFF] * 40, dtype=torch.int32)
    x = bits.to(torch.int16).view(torch.bfloat16)
    y, keep = unidrop.dropout(x, 0.3, seed=4, return_mask=True)
    got = y.view(torch.int16).to(torch.int32) & 0xFFFF
    assert 0 < int(keep.sum()) < keep.numel()
    assert torch.equal(got[keep], bits[keep] | 0x0040)
    assert not got[~keep].any()


@pytest.mark.parametrize("compiled_kernel", [True, False], ids=["compiled", "numpy"])
def test_an_empty_input_still_gets_its_mask(compiled_kernel: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A length-0 axis that is broadcast leaves a mask with elements: they are decided, not assumed."""
    if compiled_kernel and not compiled.available():
        pytest.skip("the compiled kernel is not built")
    monkeypatch.setattr(cpu, "COMPILED", compiled_kernel)
    x = torch.empty((0, 9), dtype=torch.float32)
    y, keep = unidrop.dropout(x, 0.5, seed=2, stream=7, broadcast_dims=(0,), return_mask=True)
    assert y.shape == (0, 9)
    assert keep.reshape(-1).tolist() == reference.keep_bits(2, 7, (1, 9), 0.5)


@pytest.mark.parametrize("compiled_kernel", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_p_one_zeroes_everything(
    compiled_kernel: bool, dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    if compiled_kernel and not compiled.available():
        pytest.skip("the compiled kernel is not built")
    monkeypatch.setattr(cpu, "COMPILED", compiled_kernel)
    x = sample((4, 6), dtype, seed=3)
    y, keep = unidrop.dropout(x, 1.0, seed=5, return_mask=True)
    assert_same(y, torch.zeros(4, 6, dtype=torch.float64), str(dtype))
    assert not bool(keep.any())


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_backward_through_the_operator_regenerates_the_mask(dtype: torch.dtype) -> None:
    x = sample((33, 17), dtype, seed=7, specials=False).requires_grad_(True)
    y = unidrop.dropout(x, 0.25, seed=8, stream=3)
    grad = sample((33, 17), dtype, seed=9, specials=False)
    y.backward(grad)
    assert_same(y, expected_output(x, 0.25, 8, 3), "forward")
    assert_same(x.grad, expected_output(grad, 0.25, 8, 3), "backward")


@needs_kernel
def test_large_tensors_split_over_threads_give_the_one_thread_result(monkeypatch: pytest.MonkeyPatch) -> None:
    x = sample((5, 1 << 17), torch.bfloat16, seed=10, specials=False)
    threaded = unidrop.dropout(x, 0.2, seed=12, stream=4, broadcast_dims=(0,))
    monkeypatch.setattr(cpu, "get_num_threads", lambda: 1)
    single = unidrop.dropout(x, 0.2, seed=12, stream=4, broadcast_dims=(0,))
    assert torch.equal(threaded.view(torch.int16), single.view(torch.int16))
    assert_same(threaded[:, :64], expected_output(x[:, :64], 0.2, 12, 4, (0,)), "first columns")


@needs_kernel
@pytest.mark.parametrize(("ours", "torchs", "expected"), [(8, 1, 1), (1, 8, 1), (3, 2, 2), (2, 3, 2)])
def test_a_call_uses_no_more_threads_than_torch_allows(
    ours: int, torchs: int, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch.set_num_threads (OMP_NUM_THREADS, one per rank under torchrun) caps the kernel's split,
    as unidrop-numpy's own setting does: the smaller of the two."""
    seen = []
    real = compiled.dropout_into

    def spy(x, y, keep, plan, threads):  # type: ignore[no-untyped-def]
        seen.append(threads)
        real(x, y, keep, plan, threads)

    monkeypatch.setattr(compiled, "dropout_into", spy)
    monkeypatch.setattr(cpu, "get_num_threads", lambda: ours)
    before = torch.get_num_threads()
    torch.set_num_threads(torchs)
    try:
        unidrop.dropout(torch.ones(1 << 20), 0.5, seed=1)
    finally:
        torch.set_num_threads(before)
    assert seen == [expected]


def test_eager_cpu_autograd_never_dispatches_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forward, backward and double backward of a plain CPU tensor call the kernel directly."""

    def refuse(*args: object) -> None:
        raise AssertionError("the unidrop::dropout operator was dispatched")

    monkeypatch.setattr(ops, "dropout", refuse)
    x = sample((9, 7), torch.float32, seed=11, specials=False).requires_grad_(True)
    y, keep = unidrop.dropout(x, 0.35, seed=13, stream=2, broadcast_dims=(1,), return_mask=True)
    v = sample((9, 7), torch.float32, seed=12, specials=False).requires_grad_(True)
    (grad,) = torch.autograd.grad(y, x, v, create_graph=True)
    (grad_of_v,) = torch.autograd.grad(grad.sum(), v)
    assert_same(y, expected_output(x, 0.35, 13, 2, (1,)), "forward")
    assert_same(grad, expected_output(v, 0.35, 13, 2, (1,)), "backward")
    assert_same(grad_of_v, expected_output(torch.ones(9, 7), 0.35, 13, 2, (1,)), "double backward")
    assert keep.reshape(-1).tolist() == reference.keep_bits(13, 2, (9, 1), 0.35)


def _small_layouts(dtype: torch.dtype) -> list[tuple[str, torch.Tensor, tuple[int, ...]]]:
    """Inputs whose result ``torch.empty_like`` makes C-contiguous: the small-tensor fast path's."""
    return [
        ("contiguous", sample((3, 5, 4), dtype, seed=1), ()),
        ("broadcast", sample((3, 5, 4), dtype, seed=2), (0, 2)),
        ("expanded", sample((1, 6), dtype, seed=5).expand(4, 6), ()),
        ("sliced", sample((12, 10), dtype, seed=4)[1::3, ::2], (1,)),
        ("zero-d", sample((), dtype, seed=6), ()),
        ("one element", sample((1,), dtype, seed=7), ()),
    ]


@needs_kernel
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_small_tensors_call_the_kernel_once_on_views_of_their_memory(
    dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The small-tensor fast path: one kernel call on this thread, no copy, the reference's bits,
    without the general layout code of ``compiled.dropout_into`` (its per-call cost): on NumPy
    views, or by address (``dropout_at``) where the elements form one run of the mask."""
    kernel = compiled._kernel
    calls = []

    class Spy:
        def dropout(self, x, y, *args):  # type: ignore[no-untyped-def]
            calls.append((x.__array_interface__["data"][0], y.__array_interface__["data"][0], args[-2:]))
            return kernel.dropout(x, y, *args)

        def dropout_at(self, kind, x_address, x_step, y_address, count, *args):  # type: ignore[no-untyped-def]
            calls.append((x_address, y_address, (0, count)))  # by address: the whole run 0 .. count
            return kernel.dropout_at(kind, x_address, x_step, y_address, count, *args)

    def refuse(*args: object) -> None:
        raise AssertionError("the general path ran for a small tensor")

    monkeypatch.setattr(compiled, "_kernel", Spy())
    monkeypatch.setattr(compiled, "dropout_into", refuse)
    for name, x in [(name, x) for name, x, _ in _small_layouts(dtype)]:
        for dims in [(), (0,)] if x.dim() else [()]:
            calls.clear()
            y = unidrop.dropout(x, 0.4, seed=3, stream=2, broadcast_dims=dims)
            assert len(calls) == 1, name
            x_address, y_address, args = calls[0]
            assert (x_address, y_address) == (x.data_ptr(), y.data_ptr()), name
            assert args == (0, x.numel()), name
            assert y.dtype == dtype and y.stride() == torch.empty_like(x).stride(), name
            assert_same(y, expected_output(x, 0.4, 3, 2, dims), f"{name} {dtype} dims={dims}")


@needs_kernel
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_small_tensor_autograd_takes_the_fast_path_both_ways(
    dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forward and backward (an expanded gradient, as ``y.sum().backward()`` gives) of small tensors."""

    def refuse(*args: object) -> None:
        raise AssertionError("the general path ran for a small tensor")

    monkeypatch.setattr(compiled, "dropout_into", refuse)
    for name, x, dims in _small_layouts(dtype):
        leaf = x.detach().clone().requires_grad_(True)
        y = unidrop.dropout(leaf, 0.3, seed=9, stream=1, broadcast_dims=dims)
        y.sum().backward()
        assert_same(y, expected_output(x, 0.3, 9, 1, dims), f"{name} forward")
        assert_same(leaf.grad, expected_output(torch.ones_like(x), 0.3, 9, 1, dims), f"{name} backward")


@needs_kernel
@pytest.mark.parametrize("extra", [-1, 0], ids=["below", "at"])
def test_the_fast_path_ends_where_the_thread_split_begins(
    extra: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At ``cpu.ONE_CALL`` elements the general path (which may split over threads) takes over;
    both sides of the bound give the reference's bits."""
    n = cpu.ONE_CALL + extra
    general = []
    real = compiled.dropout_into

    def spy(*args):  # type: ignore[no-untyped-def]
        general.append(args)
        real(*args)

    monkeypatch.setattr(compiled, "dropout_into", spy)
    monkeypatch.setattr(cpu, "get_num_threads", lambda: 2)
    x = sample((n,), torch.float32, seed=13)
    y = unidrop.dropout(x, 0.2, seed=14, stream=5)
    assert len(general) == (extra >= 0)
    last = [0, 1, 2, 3, 5, 7, n // 2, n - 2, n - 1]
    expected = expected_at(x, last, 0.2, 14, 5, ())
    assert_same(y[last], torch.tensor(expected, dtype=torch.float64), f"{n} elements")


def test_a_leftover_functorch_wrapper_still_gets_the_reference_bits() -> None:
    """A tensor that escaped a finished torch.func transform goes through the Function's C++ entry
    unwrapped, as the public ``apply`` would unwrap it."""
    leaked: list[torch.Tensor] = []

    def f(a: torch.Tensor) -> torch.Tensor:
        leaked.append(a)
        return (a * 2).sum()

    x = sample((3, 4), torch.float32, seed=15, specials=False).requires_grad_(True)
    torch.func.grad(f)(x)
    y = unidrop.dropout(leaked[0], 0.5, seed=16)
    assert_same(y, expected_output(x, 0.5, 16), "leftover wrapper")
