"""Autograd: the gradient is grad * keep * scale, and only the 16-byte key is saved for backward."""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwad
import unidrop_torch
from torch_helpers import DTYPES, assert_same, expected_output, sample
from unidrop_torch import cpu_node, keys, ops

import unidrop


@pytest.fixture(autouse=True, params=["C++ node", "Python Function"])
def cpu_autograd_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on both paths of eager CPU autograd (unidrop_torch.cpu_node)."""
    if request.param == "Python Function":
        monkeypatch.setattr(cpu_node, "ACTIVE", False)
    elif not cpu_node.ACTIVE:
        pytest.skip(f"the C++ autograd node is not loaded: {cpu_node.MISSING}")
    return str(request.param)


def saved_bytes(fn, x: torch.Tensor) -> int:  # type: ignore[no-untyped-def]
    """Bytes of every tensor autograd saves for backward while ``fn(x)`` runs."""
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn(x)
    return total


@pytest.mark.parametrize("n", [1 << 10, 1 << 16])
def test_only_the_key_is_saved_for_backward(n: int) -> None:
    x = torch.randn(n, requires_grad=True)
    # eager autograd on the CPU (Route.CPU_AUTOGRAD) keeps the seed and stream as Python ints: no tensor
    assert saved_bytes(lambda a: unidrop_torch.dropout(a, 0.5, seed=1), x) == 0
    assert saved_bytes(lambda a: unidrop_torch.dropout(a, 0.5), x) == 0  # seed=None too
    assert saved_bytes(lambda a: unidrop.dropout(a, 0.5, seed=1, broadcast_dims=(0,)), x) == 0
    # the operator (any other route) saves its 16-byte key
    assert saved_bytes(lambda a: ops.dropout(a, keys.key_from_ints(1, 0), 0.5, []), x) == 16
    # the autograd.Function used under torch.func transforms and torch.compile saves the same
    assert (
        saved_bytes(
            lambda a: ops.DropoutFunction.apply(a, keys.key_from_ints(1, 0), 0.5, ops.MaskLayout([])), x
        )
        == 16
    )
    # torch's own dropout saves a mask of one byte per element, for contrast
    assert saved_bytes(lambda a: torch.nn.functional.dropout(a, 0.5), x) >= n


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("dims", [(), (1,)])
def test_gradient_is_cotangent_times_keep_times_scale(dtype: torch.dtype, dims: tuple[int, ...]) -> None:
    x = sample((6, 5, 4), dtype, seed=1, specials=False).requires_grad_(True)
    cotangent = sample((6, 5, 4), dtype, seed=2)
    y = unidrop_torch.dropout(x, 0.3, seed=5, stream=9, broadcast_dims=dims)
    (grad,) = torch.autograd.grad(y, x, cotangent)
    assert grad.dtype == dtype
    assert_same(y, expected_output(x, 0.3, 5, 9, dims), "forward")
    assert_same(grad, expected_output(cotangent, 0.3, 5, 9, dims), "gradient")


def test_seed_none_backward_uses_the_forward_mask() -> None:
    torch.manual_seed(0)
    x = torch.rand(1000, dtype=torch.float64).add_(1).requires_grad_(True)
    y = unidrop_torch.dropout(x, 0.5)
    y.sum().backward()
    assert torch.equal(x.grad != 0, y != 0)
    assert torch.equal(x.grad[y != 0], torch.full_like(x.grad[y != 0], 2.0))


def test_gradcheck_and_gradgradcheck_in_float64() -> None:
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)

    def fn(a: torch.Tensor) -> torch.Tensor:
        return unidrop_torch.dropout(a, 0.4, seed=21, stream=2, broadcast_dims=(0,))

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_double_backward_regenerates_the_same_mask() -> None:
    x = torch.randn(50, dtype=torch.float64, requires_grad=True)
    y = unidrop_torch.dropout(x, 0.5, seed=4)
    v = torch.randn(50, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(y, x, v, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), v)
    assert_same(gg, expected_output(torch.ones(50, dtype=torch.float64), 0.5, 4), "d(grad)/d(cotangent)")


def test_backward_of_a_non_contiguous_gradient() -> None:
    """sum().backward() sends an expanded (stride 0) gradient; it must still be exact."""
    x = sample((8, 9), torch.float32, specials=False).t().requires_grad_(True)
    unidrop_torch.dropout(x, 0.6, seed=8, stream=1).sum().backward()
    assert_same(x.grad, expected_output(torch.ones(9, 8), 0.6, 8, 1), "gradient of sum")


@pytest.mark.parametrize("requires_grad", [False, True])
def test_forward_ad_dual_tensor_carries_its_tangent_through_the_same_mask(requires_grad: bool) -> None:
    x = sample((6, 9), torch.float32, seed=11, specials=False).requires_grad_(requires_grad)
    tangent = sample((6, 9), torch.float32, seed=12, specials=False)
    with fwad.dual_level():
        y, y_tangent = fwad.unpack_dual(unidrop.dropout(fwad.make_dual(x, tangent), 0.3, seed=5, stream=2))
    assert y_tangent is not None, "forward-mode tangent was dropped"
    assert_same(y.detach(), expected_output(x.detach(), 0.3, 5, 2), "primal")
    assert_same(y_tangent, expected_output(tangent, 0.3, 5, 2), "tangent")


def test_forward_over_reverse_gives_the_tangent_of_the_gradient() -> None:
    """A dual cotangent through a recorded backward (torch's OpInfos declare fwgrad_bwgrad for
    dropout): the CPU route's backward once raised "You must implement the jvp function"."""
    x = sample((6, 5), torch.float64, seed=3, specials=False).requires_grad_()
    y = unidrop.dropout(x, 0.4, seed=3, stream=1)
    cotangent, tangent = sample((6, 5), torch.float64, seed=4), sample((6, 5), torch.float64, seed=5)
    with fwad.dual_level():
        (gradient,) = torch.autograd.grad(y, x, fwad.make_dual(cotangent, tangent), create_graph=True)
        primal, tangent_out = fwad.unpack_dual(gradient)
    assert_same(primal, expected_output(cotangent, 0.4, 3, 1), "the gradient")
    assert_same(tangent_out, expected_output(tangent, 0.4, 3, 1), "its tangent")
    assert torch.autograd.gradgradcheck(
        lambda a: unidrop.dropout(a, 0.4, seed=3), (x.detach().requires_grad_(),), check_fwd_over_rev=True
    )
