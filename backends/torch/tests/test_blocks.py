"""Blocks of a global mask on torch (``global_shape=``, ``offset=``), on every route.

Expected values come from ``unidrop.reference.dropout(..., global_shape=, offset=)``; the route
each call takes is forced by its situation (no gradient, a gradient, a tensor subclass, a
torch.func transform, torch.compile) and checked with :func:`unidrop_torch.routes.route_for`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch_helpers import DTYPES, assert_same, dtype_name, requires_cuda, sample
from unidrop_torch import blocks, keys
from unidrop_torch.routes import Route, route_for

import unidrop
from unidrop import reference
from unidrop.philox import element_word

SEED, STREAM = 0x1234_5678_9ABC_DEF0, 3

#: (block shape, global shape, offset, broadcast_dims): row starts not multiples of 4, a block
#: in the middle of every axis, broadcast axes, an offset on a broadcast axis, an empty block.
CASES = [
    ((3, 5), (7, 9), (2, 3), ()),
    ((2, 3, 5), (4, 6, 11), (1, 2, 5), ()),
    ((4, 6), (9, 6), (5, 0), ()),
    ((3, 5), (7, 9), (4, 1), (0,)),
    ((2, 3, 4), (5, 3, 7), (3, 0, 2), (1,)),
    ((1, 13), (1, 40), (0, 27), ()),
    ((0, 5), (3, 9), (3, 2), ()),
]


def expected(x: torch.Tensor, p: float, gshape, offset, dims) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference output (float64) and keep mask of block ``x``."""
    values = x.detach().to(torch.float64).reshape(-1).tolist()
    out, keep = reference.dropout(
        values, tuple(x.shape), dtype_name(x.dtype), p, SEED, STREAM, dims, global_shape=gshape, offset=offset
    )
    mshape = tuple(1 if axis in dims else size for axis, size in enumerate(x.shape))
    return torch.tensor(out, dtype=torch.float64).reshape(x.shape), torch.tensor(keep).reshape(mshape)


def call(x: torch.Tensor, p: float, gshape, offset, dims, **kwargs: object):
    return unidrop.dropout(
        x, p, seed=SEED, stream=STREAM, broadcast_dims=dims, global_shape=gshape, offset=offset, **kwargs
    )


@pytest.mark.parametrize(("shape", "gshape", "offset", "dims"), CASES)
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_name)
def test_cpu_kernel_route_gives_the_blocks_slice(shape, gshape, offset, dims, dtype) -> None:
    x = sample(shape, dtype, seed=1)
    assert route_for(x, SEED) is Route.CPU_KERNEL
    y, keep = call(x, 0.4, gshape, offset, dims, return_mask=True)
    want_y, want_keep = expected(x, 0.4, gshape, offset, dims)
    assert_same(y, want_y, f"{shape} at {offset} of {gshape}")
    assert y.dtype == dtype and y.shape == x.shape
    assert torch.equal(keep, want_keep)


def _grad_of(x: torch.Tensor, run: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    y = run(x)
    (grad,) = torch.autograd.grad(y, x, torch.ones_like(y))
    return grad


def _check_gradient(grad: torch.Tensor, p: float, gshape, offset, dims) -> None:
    """The gradient of sum(y) is the block's mask times the scale: the block's mask, regenerated."""
    want, _ = expected(torch.ones(grad.shape, dtype=grad.dtype), p, gshape, offset, dims)
    assert_same(grad, want, "gradient")


@pytest.mark.parametrize(("shape", "gshape", "offset", "dims"), CASES[:5])
def test_cpu_autograd_route_forward_and_backward(shape, gshape, offset, dims) -> None:
    x = sample(shape, torch.float32, seed=2).requires_grad_()
    assert route_for(x, SEED) is Route.CPU_AUTOGRAD
    y = call(x, 0.3, gshape, offset, dims)
    assert_same(y, expected(x, 0.3, gshape, offset, dims)[0], "forward")
    _check_gradient(_grad_of(x, lambda a: call(a, 0.3, gshape, offset, dims)), 0.3, gshape, offset, dims)


class _Marked(torch.Tensor):
    """A tensor subclass: calls on it go through the operator (a subclass may override dispatch)."""


@pytest.mark.parametrize(("shape", "gshape", "offset", "dims"), CASES[:5])
def test_operator_route_forward_backward_and_mask(shape, gshape, offset, dims) -> None:
    x = sample(shape, torch.float32, seed=3).as_subclass(_Marked).requires_grad_()
    assert route_for(x, SEED) is Route.OPERATOR
    y, keep = call(x, 0.6, gshape, offset, dims, return_mask=True)
    want_y, want_keep = expected(x.as_subclass(torch.Tensor), 0.6, gshape, offset, dims)
    assert_same(y.as_subclass(torch.Tensor), want_y, "forward")
    assert torch.equal(keep.as_subclass(torch.Tensor), want_keep)
    _check_gradient(_grad_of(x, lambda a: call(a, 0.6, gshape, offset, dims)), 0.6, gshape, offset, dims)


@pytest.mark.parametrize(("shape", "gshape", "offset", "dims"), CASES[:5])
def test_autograd_function_route_under_torch_func(shape, gshape, offset, dims) -> None:
    x = sample(shape, torch.float64, seed=4, specials=False)
    routes = []

    def total(a: torch.Tensor) -> torch.Tensor:
        routes.append(route_for(a, SEED))
        return call(a, 0.5, gshape, offset, dims).sum()

    grad = torch.func.grad(total)(x)
    assert routes == [Route.AUTOGRAD_FUNCTION]
    _check_gradient(grad, 0.5, gshape, offset, dims)
    # forward mode: the tangent goes through the block's mask
    _, tangent = torch.func.jvp(lambda a: call(a, 0.5, gshape, offset, dims), (x,), (torch.ones_like(x),))
    _check_gradient(tangent, 0.5, gshape, offset, dims)


def test_vmap_gives_every_example_the_blocks_mask() -> None:
    x = sample((3, 4, 5), torch.float32, seed=5)
    y = torch.vmap(lambda a: call(a, 0.5, (9, 8), (2, 3), ()))(x)
    for i in range(3):
        assert_same(y[i], expected(x[i], 0.5, (9, 8), (2, 3), ())[0], f"example {i}")


def test_torch_compile_gives_the_blocks_slice_and_gradient() -> None:
    shape, gshape, offset, dims = (3, 5), (7, 9), (2, 3), ()
    compiled = torch.compile(
        lambda a: call(a, 0.4, gshape, offset, dims), backend="aot_eager", fullgraph=True
    )
    x = sample(shape, torch.float32, seed=6).requires_grad_()
    y = compiled(x)
    assert_same(y, expected(x, 0.4, gshape, offset, dims)[0], "compiled forward")
    y.backward(torch.ones_like(y))
    _check_gradient(x.grad, 0.4, gshape, offset, dims)


def test_torch_compile_takes_a_block_placed_by_symbolic_sizes() -> None:
    """Under ``dynamic=True`` the global shape and offset made from ``x.shape`` are symbolic ints,
    which have no attributes to inspect: one graph serves blocks of every height."""
    compiled = torch.compile(
        lambda a: unidrop.dropout(
            a,
            0.4,
            seed=SEED,
            stream=STREAM,
            global_shape=(3 * a.shape[0], a.shape[1]),
            offset=(a.shape[0], 0),
        ),
        backend="aot_eager",
        fullgraph=True,
        dynamic=True,
    )
    for rows in (2, 5):
        x = sample((rows, 7), torch.float32, seed=rows)
        assert_same(compiled(x), expected(x, 0.4, (3 * rows, 7), (rows, 0), ())[0], f"{rows} rows")


def test_blocks_tile_the_whole_arrays_mask() -> None:
    """Cutting an array into uneven tiles and dropping each as a block gives the whole array's result."""
    x = sample((11, 13), torch.float32, seed=7)
    whole = unidrop.dropout(x, 0.5, seed=SEED, stream=STREAM)
    tiled = torch.empty_like(x)
    for rows in ((0, 4), (4, 5), (5, 11)):
        for cols in ((0, 6), (6, 13)):
            tile = x[rows[0] : rows[1], cols[0] : cols[1]]
            tiled[rows[0] : rows[1], cols[0] : cols[1]] = call(tile, 0.5, (11, 13), (rows[0], cols[0]), ())
    assert_same(tiled, whole, "tiles")


def test_a_strided_block_gets_the_same_result_as_its_contiguous_copy() -> None:
    x = sample((6, 4), torch.float32, seed=8).t()  # a transposed view: strides (1, 4)
    y = call(x, 0.5, (10, 9), (3, 2), ())
    assert_same(y, expected(x, 0.5, (10, 9), (3, 2), ())[0], "strided")
    assert y.stride() == torch.empty_like(x).stride()


def test_p_one_drops_the_whole_block_and_p_zero_returns_it() -> None:
    x = sample((3, 5), torch.float32, seed=9)
    assert torch.equal(call(x, 1.0, (7, 9), (2, 3), ()), torch.zeros_like(x))
    assert call(x, 0.0, (7, 9), (2, 3), ()) is x


def test_global_indices_past_two_to_the_63_wrap_to_the_right_words() -> None:
    """A block near the end of a global mask of more than 2**63 elements (the counter's high bits)."""
    gshape, offset = (1 << 61, 8), ((1 << 61) - 1, 3)  # the last 5 of 2**64 indices
    index = blocks.global_indices((1, 5), gshape, offset, torch.device("cpu"))
    words = blocks.words_at(index, keys.key_from_ints(SEED, STREAM)).reshape(-1).tolist()
    first = ((1 << 61) - 1) * 8 + 3
    assert words == [element_word(SEED, STREAM, first + j) for j in range(5)]


@pytest.mark.parametrize(("shape", "gshape", "offset", "dims"), CASES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=dtype_name)
def test_the_pure_torch_words_give_the_blocks_slice(shape, gshape, offset, dims, dtype) -> None:
    """The path CUDA blocks of many axes and CPUs without the compiled kernel take."""
    x = sample(shape, dtype, seed=10)
    mshape = tuple(1 if axis in dims else size for axis, size in enumerate(shape))
    gmask = tuple(1 if axis in dims else size for axis, size in enumerate(gshape))
    moffset = tuple(0 if axis in dims else start for axis, start in enumerate(offset))
    key = keys.key_from_ints(SEED, STREAM)
    y = blocks.dropout(x, key, 0.4, dims, gmask, moffset)
    want_y, want_keep = expected(x, 0.4, gshape, offset, dims)
    assert_same(y, want_y, "pure torch")
    assert torch.equal(blocks.keep_mask(key, mshape, 0.4, gmask, moffset, x.device), want_keep)


@pytest.mark.parametrize("marked", [False, True], ids=["cpu autograd", "operator"])
def test_backward_saves_no_mask_only_the_key(marked: bool) -> None:
    """The block's mask is regenerated in the backward: at most the 16-byte key is saved."""
    x = sample((64, 32), torch.float32, seed=11)
    x = (x.as_subclass(_Marked) if marked else x).requires_grad_()
    saved: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = call(x, 0.5, (128, 96), (64, 33), ())
    assert sum(saved) <= 16, saved
    y.backward(torch.ones_like(y))
    _check_gradient(x.grad.as_subclass(torch.Tensor), 0.5, (128, 96), (64, 33), ())


@requires_cuda
@pytest.mark.parametrize(("shape", "gshape", "offset", "dims"), CASES)
def test_cuda_blocks_by_the_triton_kernel_and_in_torch(shape, gshape, offset, dims) -> None:
    """On a GPU: the block keep kernel (and the torch words for a 6-axis block) give the reference."""
    x = sample(shape, torch.float32, seed=12).cuda().requires_grad_()
    y, keep = call(x, 0.4, gshape, offset, dims, return_mask=True)
    want_y, want_keep = expected(x.detach().cpu(), 0.4, gshape, offset, dims)
    assert_same(y, want_y, "cuda block")
    assert torch.equal(keep.cpu(), want_keep)
    _check_gradient(_grad_of(x, lambda a: call(a, 0.4, gshape, offset, dims)), 0.4, gshape, offset, dims)
    many = sample((2,) * 6, torch.float32, seed=13).cuda()
    assert_same(
        call(many, 0.5, (3,) * 6, (1,) * 6, ()),
        expected(many.cpu(), 0.5, (3,) * 6, (1,) * 6, ())[0],
        "6 axes",
    )
