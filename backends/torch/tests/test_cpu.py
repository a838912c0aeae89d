"""The CPU path: exact for every dtype and layout, threaded chunks, 64-bit counters."""

from __future__ import annotations

import random
import tracemalloc
import warnings

import pytest
import torch
import unidrop_torch
from torch_helpers import DTYPES, RecordOps, assert_same, expected_at, expected_output, sample
from unidrop_torch import cpu, keys, ops

import unidrop
from unidrop import philox


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_dtype_matches_the_reference(dtype: torch.dtype) -> None:
    x = sample((5, 7, 3), dtype, seed=1)
    for p, seed, stream in [(0.5, 0, 0), (0.25, 1 << 40, 3), (0.9, (1 << 64) - 1, (1 << 64) - 1)]:
        y = unidrop.dropout(x, p, seed=seed, stream=stream)
        assert y.dtype == dtype and y.shape == x.shape
        assert_same(y, expected_output(x, p, seed, stream), f"{dtype} p={p}")


def _layouts(dtype: torch.dtype) -> list[tuple[str, torch.Tensor]]:
    image = sample((2, 3, 4, 5), dtype, seed=2)
    volume = sample((2, 3, 2, 4, 3), dtype, seed=3)
    matrix = sample((12, 10), dtype, seed=4)
    return [
        ("channels_last", image.to(memory_format=torch.channels_last)),
        ("channels_last_3d", volume.to(memory_format=torch.channels_last_3d)),
        ("transposed", matrix.t()),
        ("sliced", matrix[1::3, ::2]),
        ("permuted", image.permute(3, 1, 0, 2)),
        ("expanded", sample((1, 6), dtype, seed=5).expand(4, 6)),
        ("offset view", matrix.reshape(-1)[7:50]),
    ]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_layout_gives_the_result_of_the_contiguous_copy(dtype: torch.dtype) -> None:
    for name, x in _layouts(dtype):
        for dims in [(), (0,), (-1,)]:
            y = unidrop.dropout(x, 0.4, seed=9, stream=1, broadcast_dims=dims)
            contiguous = unidrop.dropout(x.contiguous(), 0.4, seed=9, stream=1, broadcast_dims=dims)
            assert_same(y, contiguous, f"{name} dims={dims}")
            assert_same(y, expected_output(x, 0.4, 9, 1, dims), f"{name} dims={dims} vs reference")


def test_channels_last_output_keeps_the_memory_format() -> None:
    x = sample((2, 3, 4, 5), torch.float32).to(memory_format=torch.channels_last)
    y = unidrop.dropout(x, 0.5, seed=1)
    assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize(
    ("shape", "dims"),
    [((3, 150_001), ()), ((3, 150_001), (0,)), ((70_000, 5), (1,)), ((2, 3, 50_000), (1,))],
)
def test_large_inputs_match_the_reference_at_sampled_indices(
    shape: tuple[int, ...], dims: tuple[int, ...]
) -> None:
    """Inputs of several NumPy-backend chunks (and threads), checked at sampled indices."""
    x = sample(shape, torch.bfloat16, seed=6, specials=False)
    y = unidrop.dropout(x, 0.3, seed=77, stream=5, broadcast_dims=dims)
    n = x.numel()
    rng = random.Random(0)
    indices = sorted({0, 1, 2, 3, n - 4, n - 3, n - 2, n - 1, *(rng.randrange(n) for _ in range(400))})
    for boundary in range(1 << 15, n, 1 << 15):  # both sides of every multiple of 2**15
        indices += [boundary - 1, boundary]
    got = y.reshape(-1)[indices]
    assert_same(got, torch.tensor(expected_at(x, indices, 0.3, 77, 5, dims)), f"{shape} dims={dims}")


def test_input_is_never_modified_and_never_aliased() -> None:
    x = sample((64, 9), torch.float32, seed=8)
    before = x.clone()
    y = unidrop_torch.dropout(x, 0.5, seed=1)
    assert_same(x, before, "input")
    assert y.data_ptr() != x.data_ptr()


def test_return_mask_is_the_keep_mask() -> None:
    x = torch.ones(4, 6, 5)
    y, keep = unidrop_torch.dropout(x, 0.5, seed=3, stream=4, broadcast_dims=(1,), return_mask=True)
    assert keep.shape == (4, 1, 5) and keep.dtype == torch.bool
    expected_keep = torch.tensor(
        [u >= 1 << 31 for u in philox.stream_words(3, 4, 0, 20)], dtype=torch.bool
    ).reshape(4, 1, 5)
    assert torch.equal(keep, expected_keep)
    assert torch.equal(y != 0, expected_keep.expand(4, 6, 5))


def test_not_a_tensor_is_refused() -> None:
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        unidrop_torch.dropout([1.0, 2.0], 0.5, seed=1)  # type: ignore[arg-type]


def test_meta_tensors_get_shapes_only() -> None:
    """On the meta device the fake implementation answers: shape, dtype and strides, no data."""
    x = torch.empty(2, 3, 4, 5, device="meta", dtype=torch.bfloat16).to(memory_format=torch.channels_last)
    y = unidrop_torch.dropout(x, 0.5, seed=1)
    assert y.device.type == "meta" and y.shape == x.shape and y.dtype == x.dtype and y.stride() == x.stride()


@pytest.mark.parametrize("seed", [None, 1])
def test_meta_tensors_get_masks_and_the_family_too(seed) -> None:
    """A shape-inference run on the meta device: masks (whole arrays and blocks) and the alpha
    modules give meta results of the right shapes, as torch's own classes do."""
    x = torch.empty(4, 6, 5, device="meta")
    y, keep = unidrop.dropout(x, 0.5, seed=seed, return_mask=True, broadcast_dims=(1,))
    assert (y.device.type, y.shape, keep.device.type, keep.shape) == ("meta", x.shape, "meta", (4, 1, 5))
    _, keep = unidrop.dropout(x, 0.5, seed=seed, return_mask=True, global_shape=(8, 6, 5), offset=(4, 0, 0))
    assert (keep.device.type, keep.shape) == ("meta", x.shape)
    for layer in (
        unidrop_torch.AlphaDropout(0.5, seed=seed),
        unidrop_torch.FeatureAlphaDropout(0.5, seed=seed),
    ):
        out = layer(x)
        assert (out.device.type, out.shape, out.dtype) == ("meta", x.shape, x.dtype)


def _unsupported_tensors() -> list[tuple[str, torch.Tensor, str]]:
    """(name, tensor, what the error must name) for every kind the kernels cannot run on."""
    dense = torch.eye(4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's prototype / beta / deprecation notices
        return [
            ("sparse_coo", dense.to_sparse(), r"layout torch\.sparse_coo"),
            ("sparse_csr", dense.to_sparse_csr(), r"layout torch\.sparse_csr"),
            ("sparse_csc", dense.to_sparse_csc(), r"layout torch\.sparse_csc"),
            ("sparse_bsr", dense.to_sparse_bsr((2, 2)), r"layout torch\.sparse_bsr"),
            ("sparse_bsc", dense.to_sparse_bsc((2, 2)), r"layout torch\.sparse_bsc"),
            ("mkldnn", dense.to_mkldnn(), r"layout torch\._mkldnn"),
            (
                "nested jagged",
                torch.nested.nested_tensor([torch.ones(3), torch.ones(5)], layout=torch.jagged),
                r"nested tensor \(layout torch\.jagged\)",
            ),
            (
                "nested strided",
                torch.nested.nested_tensor([torch.ones(3), torch.ones(5)], layout=torch.strided),
                r"nested tensor \(layout torch\.strided\)",
            ),
            (
                "quantized",
                torch.quantize_per_tensor(dense, 0.1, 0, torch.quint8),
                r"quantized tensor \(dtype torch\.quint8\)",
            ),
        ]


@pytest.mark.parametrize("case", range(len(_unsupported_tensors())))
def test_unsupported_tensors_are_refused_naming_what_they_are(case: int) -> None:
    """Nested, sparse, mkldnn and quantized tensors: a TypeError naming the kind and what is supported."""
    name, x, named = _unsupported_tensors()[case]
    before = [t.clone() for t in x.unbind()] if x.is_nested else None
    key = keys.key_from_ints(1, 0)
    calls = [
        lambda: unidrop.dropout(x, 0.5, seed=1),
        lambda: unidrop.dropout(x, 0.5),
        lambda: unidrop.dropout(x, 0.5, seed=1, return_mask=True),
        lambda: unidrop_torch.dropout(x, 0.5, seed=1),
        lambda: unidrop_torch.Dropout(0.5)(x),
    ]
    if not x.is_nested:  # torch's dispatcher refuses nested tensors before the operator runs
        calls.append(lambda: ops.dropout(x, key, 0.5, []))
    for call in calls:
        with pytest.raises(TypeError, match=rf"{named}.*supports only strided \(dense\) tensors"):
            call()
    if before is not None:
        assert all(torch.equal(a, b) for a, b in zip(x.unbind(), before, strict=True)), name


def test_return_mask_allocates_no_temporary_of_the_mask_size() -> None:
    """return_mask=True costs the bool mask and nothing more (it once built a float32 copy too).

    NumPy reports its allocations to tracemalloc, torch's CPU allocator does not: the traced
    peak counts the CPU path's NumPy temporaries (and its output buffer), not torch tensors.
    """
    n = 1 << 22
    x = torch.ones(n)

    def traced_peak(return_mask: bool) -> int:
        unidrop_torch.dropout(x, 0.5, seed=1, return_mask=return_mask)  # warm: workspaces kept
        tracemalloc.start()
        try:
            unidrop_torch.dropout(x, 0.5, seed=1, return_mask=return_mask)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    without_mask = traced_peak(False)
    with_mask = traced_peak(True)
    workspace = 64 * (cpu.KEEP_CHUNK // 4 + 2)  # fixed, whatever the size: 64 bytes per Philox block
    # the float32 copy and a NumPy bool mask were 5n
    assert with_mask - without_mask <= workspace + n // 4, (with_mask, without_mask)


def test_modes_profiler_and_tracing_still_see_the_operator() -> None:
    """Plain no-grad CPU calls skip the operator's dispatch; whatever could observe it gets it."""
    x = sample((6, 5), torch.float32, seed=9)
    expected = expected_output(x, 0.5, 3, 1)
    with RecordOps() as mode:
        y = unidrop.dropout(x, 0.5, seed=3, stream=1)
    assert_same(y, expected, "under a dispatch mode")
    assert "unidrop.dropout.default" in mode.names, mode.names
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        y = unidrop.dropout(x, 0.5, seed=3, stream=1)
    assert_same(y, expected, "under the profiler")
    assert "unidrop::dropout" in {event.key for event in prof.key_averages()}
    traced = torch.jit.trace(lambda a: unidrop_torch.dropout(a, 0.5, seed=3, stream=1), (x,))
    assert "unidrop::dropout" in str(traced.graph)
    other = sample((6, 5), torch.float32, seed=10)
    assert_same(traced(other), expected_output(other, 0.5, 3, 1), "traced")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_a_negated_view_gets_dropout_of_its_values(dtype: torch.dtype) -> None:
    """``z.conj().imag`` is a lazily negated view: the kernels must see the values, not the memory."""
    z = torch.complex(sample((33,), dtype, seed=6), sample((33,), dtype, seed=7))
    x = z.conj().imag
    assert x.is_neg()
    assert_same(unidrop.dropout(x, 0.3, seed=4), expected_output(x, 0.3, 4), str(dtype))


def test_a_negated_view_that_needs_grad_gets_the_reference_and_its_gradient() -> None:
    z = torch.complex(
        sample((40,), torch.float32, seed=8), sample((40,), torch.float32, seed=9, specials=False)
    )
    z.requires_grad_(True)
    x = z.conj().imag
    assert x.is_neg() and x.requires_grad
    y = unidrop.dropout(x, 0.5, seed=2, stream=1)
    assert_same(y, expected_output(x, 0.5, 2, 1))
    (grad,) = torch.autograd.grad(y.sum(), z)
    # d(-imag z)/dz seen by autograd: the imaginary part of the gradient is -dropout(ones)
    assert_same(grad.imag, -expected_output(torch.ones(40), 0.5, 2, 1))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n", [1, 7, 64, 1000])
def test_one_value_repeated_and_offset_views_match_the_reference(dtype: torch.dtype, n: int) -> None:
    """The small-tensor path reads memory by address: a stride-0 tensor (the gradient of a sum)
    and a contiguous view into the middle of a buffer must still give the reference's bits."""
    repeated = torch.tensor(-2.5, dtype=dtype).expand(n)
    assert_same(unidrop.dropout(repeated, 0.25, seed=3), expected_output(repeated, 0.25, 3), "repeated")
    buffer = sample((n + 11,), dtype, seed=10)
    view = buffer[11:]
    assert view.is_contiguous() and view.storage_offset() == 11
    assert_same(unidrop.dropout(view, 0.25, seed=3), expected_output(view, 0.25, 3), "offset view")
    x = sample((n,), dtype, seed=11, specials=False).requires_grad_(True)
    unidrop.dropout(x, 0.25, seed=3).sum().backward()  # the incoming gradient has stride 0
    assert_same(x.grad, expected_output(torch.ones(n, dtype=dtype), 0.25, 3), "gradient of a sum")


def test_a_default_device_does_not_move_keys_or_masks_of_cpu_tensors() -> None:
    """torch.set_default_device (meta stands in for cuda here) changes where torch.tensor() and
    torch.empty() put new tensors; keys and the CPU path's masks stay on the CPU, so CPU tensors
    keep the reference's results (a key on the default device gave uninitialised meta memory)."""
    x = sample((3, 8), torch.float32, seed=7, specials=False)
    torch.set_default_device("meta")
    try:
        assert keys.key_from_ints(1, 0).device.type == "cpu"
        y, keep = unidrop.dropout(x, 0.5, seed=1, return_mask=True)
        _, block_keep = unidrop.dropout(x, 0.5, seed=1, return_mask=True, global_shape=(6, 8), offset=(3, 0))
        drawn = unidrop.dropout(x, 0.5)
    finally:
        torch.set_default_device(None)
    assert_same(y, expected_output(x, 0.5, 1), "dropout under a default device")
    assert keep.device.type == block_keep.device.type == drawn.device.type == "cpu"
    assert torch.equal(keep, expected_output(torch.ones(3, 8), 0.5, 1) != 0)
