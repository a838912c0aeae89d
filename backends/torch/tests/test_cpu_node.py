"""The C++ autograd node of eager CPU dropout (unidrop_torch.cpu_node): where it records, exact results,
and every gradient it cannot read handed to the routes of unidrop_torch.ops."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest
import torch
import torch.autograd.forward_ad as fwad
import unidrop_torch
from torch_helpers import DTYPES, RecordOps, assert_same, expected_output, sample
from unidrop_torch import cpu, cpu_node

import unidrop

NODE = "UnidropDropoutBackward"
FUNCTION = "CpuDropoutFunctionBackward"
needs_node = pytest.mark.skipif(not cpu_node.ACTIVE, reason=f"the C++ node is not loaded: {cpu_node.MISSING}")


def _node_name(y: torch.Tensor) -> str:
    return y.grad_fn.name()


@needs_node
def test_the_node_records_small_whole_tensors_and_the_function_the_rest() -> None:
    small = torch.randn(64, requires_grad=True)
    assert _node_name(unidrop.dropout(small, 0.3, seed=1)) == NODE
    assert _node_name(unidrop.dropout(small, 0.3, seed=1, broadcast_dims=0)) == NODE
    large = torch.randn(cpu.ONE_CALL, requires_grad=True)  # split over threads: the Function's path
    assert _node_name(unidrop.dropout(large, 0.3, seed=1)) == FUNCTION
    block = unidrop.dropout(small, 0.3, seed=1, global_shape=(128,), offset=(64,))
    assert _node_name(block) == FUNCTION
    transposed = torch.randn(8, 8, requires_grad=True).t()
    assert _node_name(unidrop.dropout(transposed, 0.3, seed=1)) == FUNCTION
    negated = torch.randn(64, requires_grad=True)._neg_view()  # memory holds -x: the Function resolves it
    assert _node_name(unidrop.dropout(negated, 0.3, seed=1)) == FUNCTION
    assert_same(unidrop.dropout(negated, 0.3, seed=1), expected_output(negated, 0.3, 1), "negated view")


@needs_node
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("dims", [(), (0,), (1, 2)])
def test_forward_and_gradient_equal_the_reference(dtype: torch.dtype, dims: tuple[int, ...]) -> None:
    x = sample((5, 6, 7), dtype, seed=3).requires_grad_(True)
    cotangent = sample((5, 6, 7), dtype, seed=4)
    y = unidrop.dropout(x, 0.35, seed=2**64 - 3, stream=2**40 + 5, broadcast_dims=dims)
    assert _node_name(y) == NODE and y.dtype == dtype and y.is_contiguous()
    (grad,) = torch.autograd.grad(y, x, cotangent)
    assert_same(y, expected_output(x, 0.35, 2**64 - 3, 2**40 + 5, dims), "forward")
    assert_same(grad, expected_output(cotangent, 0.35, 2**64 - 3, 2**40 + 5, dims), "gradient")


@needs_node
def test_strided_inputs_keep_their_layout_and_strided_gradients_are_read() -> None:
    images = sample((2, 3, 4, 5), torch.float32, seed=4).to(memory_format=torch.channels_last)
    y = unidrop.dropout(images.requires_grad_(True), 0.5, seed=7)  # the Function gives x's layout
    assert _node_name(y) == FUNCTION and y.stride() == images.stride()
    assert_same(y, expected_output(images, 0.5, 7), "forward of a channels-last input")
    x = sample((8, 9), torch.float32, seed=5).requires_grad_(True)
    y = unidrop.dropout(x, 0.5, seed=7)
    assert _node_name(y) == NODE
    cotangent = sample((8, 9), torch.float32, seed=6)
    (grad,) = torch.autograd.grad(y, x, cotangent.t().contiguous().t(), retain_graph=True)  # column-major
    assert_same(grad, expected_output(cotangent, 0.5, 7), "gradient given transposed")
    x.grad = None
    y.sum().backward()  # an expanded gradient: stride 0
    assert_same(x.grad, expected_output(torch.ones(8, 9), 0.5, 7), "gradient of a sum")


@needs_node
def test_double_backward_records_the_node_again() -> None:
    x = torch.randn(40, dtype=torch.float64, requires_grad=True)
    y = unidrop.dropout(x, 0.5, seed=9, stream=3)
    v = torch.randn(40, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(y, x, v, create_graph=True)
    assert _node_name(g) == NODE
    (gg,) = torch.autograd.grad(g, v, torch.ones(40, dtype=torch.float64))
    assert_same(gg, expected_output(torch.ones(40, dtype=torch.float64), 0.5, 9, 3), "d(grad)/d(cotangent)")
    assert torch.autograd.gradgradcheck(lambda a: unidrop.dropout(a, 0.4, seed=1), (x,))


@needs_node
def test_gradients_that_are_not_plain_memory_take_the_other_routes() -> None:
    x = sample((4, 6), torch.float32, seed=8, specials=False).requires_grad_(True)
    y = unidrop.dropout(x, 0.5, seed=11, stream=1)
    cotangent = sample((4, 6), torch.float32, seed=9)
    # a lazily negated view: its memory holds -cotangent
    (grad,) = torch.autograd.grad(y, x, (-cotangent)._neg_view(), retain_graph=True)
    assert_same(grad, expected_output(cotangent, 0.5, 11, 1), "negated gradient")
    # a batch of gradients (torch's legacy batching): each example through the same mask
    batch = torch.stack([cotangent, 2 * cotangent, -cotangent])
    (grads,) = torch.autograd.grad(y, x, batch, retain_graph=True, is_grads_batched=True)
    for index in range(3):
        assert_same(grads[index], expected_output(batch[index], 0.5, 11, 1), f"batched gradient {index}")
    # forward over reverse: a dual cotangent keeps its tangent
    tangent = sample((4, 6), torch.float32, seed=10)
    with fwad.dual_level():
        (dual,) = torch.autograd.grad(y, x, fwad.make_dual(cotangent, tangent), create_graph=True)
        primal, tangent_out = fwad.unpack_dual(dual)
    assert_same(primal, expected_output(cotangent, 0.5, 11, 1), "the dual gradient's primal")
    assert tangent_out is not None
    assert_same(tangent_out, expected_output(tangent, 0.5, 11, 1), "its tangent")


@needs_node
def test_a_higher_derivative_is_routed_like_a_call() -> None:
    """With create_graph=True the backward is a new dropout call: a dispatch mode on then sees the
    operator, as it would see a forward call (and as it sees the Function's backward)."""
    x = torch.randn(12, dtype=torch.float64, requires_grad=True)
    y = unidrop.dropout(x, 0.5, seed=2)
    v = torch.randn(12, dtype=torch.float64, requires_grad=True)
    with RecordOps() as mode:
        (g,) = torch.autograd.grad(y, x, v, create_graph=True)
    assert "unidrop.dropout.default" in mode.names, mode.names
    assert_same(g, expected_output(v, 0.5, 2), "the recorded gradient")


@needs_node
def test_the_node_is_a_torch_autograd_graph_node() -> None:
    y = unidrop.dropout(torch.randn(5, requires_grad=True), 0.5, seed=1)
    assert isinstance(y.grad_fn, torch.autograd.graph.Node)
    assert type(y.grad_fn).__name__ == NODE and y.grad_fn.next_functions[0][0] is not None


@needs_node
def test_compiled_autograd_gets_the_function() -> None:
    """torch's compiled autograd cannot capture the C++ node: where it is configured on, calls
    record the Function, which it captures."""
    import torch._dynamo

    x = torch.randn(8, requires_grad=True)
    with torch._dynamo.config.patch(compiled_autograd=True):
        assert _node_name(unidrop.dropout(x, 0.5, seed=1)) == FUNCTION
    assert _node_name(unidrop.dropout(x, 0.5, seed=1)) == NODE


@needs_node
def test_a_broadcast_axis_past_64_is_refused_as_the_function_refuses_it() -> None:
    x = torch.ones((1,) * 65, requires_grad=True)
    with pytest.raises(ValueError, match=r"number of dimensions must be within \[0, 64\]"):
        unidrop.dropout(x, 0.5, seed=1, broadcast_dims=(64,))


@needs_node
def test_an_error_in_the_fallback_reaches_the_caller() -> None:
    x = torch.randn(8, requires_grad=True)
    y = unidrop.dropout(x, 0.5, seed=1)

    def refuse(*args: object) -> torch.Tensor:
        raise LookupError("the fallback was called")

    cpu_node.set_fallback(refuse)
    try:
        with pytest.raises(LookupError, match="the fallback was called"):
            torch.autograd.grad(y, x, torch.ones(8)._neg_view())
    finally:
        cpu_node.set_fallback(unidrop_torch.ops._node_gradient_elsewhere)
    (grad,) = torch.autograd.grad(unidrop.dropout(x, 0.5, seed=1), x, -torch.ones(8)._neg_view())
    assert_same(grad, expected_output(torch.ones(8), 0.5, 1), "after the fallback is restored")


@needs_node
def test_hooks_retain_graph_and_an_in_place_change_of_the_output() -> None:
    x = torch.randn(30, requires_grad=True)
    y = unidrop.dropout(x, 0.3, seed=4)
    seen = []
    y.grad_fn.register_hook(lambda grads_in, grads_out: seen.append(grads_in[0].clone()))
    y.backward(torch.ones(30), retain_graph=True)
    y.backward(torch.ones(30))
    expected = expected_output(torch.ones(30), 0.3, 4)
    assert len(seen) == 2 and all(torch.equal(g.double(), expected) for g in seen)
    assert_same(x.grad, 2 * expected, "two backwards accumulated")
    x.grad = None
    z = unidrop.dropout(x, 0.3, seed=4).mul_(3)  # autograd rebases the node's output
    z.sum().backward()
    assert_same(x.grad, expected_output(torch.full((30,), 3.0), 0.3, 4), "gradient after an in-place change")


def test_a_stale_build_is_refused_naming_the_rebuild() -> None:
    """A failed rebuild of an editable checkout leaves the previous module in place (the extension
    is optional): a module whose source digest is not the source beside it is not used."""
    if not cpu_node.SOURCE.is_file():
        pytest.skip("no C++ source beside the module (installed from a wheel): nothing to compare")
    module = types.ModuleType("_autograd_node")
    module.__file__ = "/somewhere/_autograd_node.so"
    module.SOURCE_DIGEST = "0" * 16  # type: ignore[attr-defined]
    reason = cpu_node.stale_build(module)
    assert "/somewhere/_autograd_node.so was built from another _autograd_node.cpp" in reason
    assert "pip install --no-build-isolation -e backends/torch" in reason
    module.SOURCE_DIGEST = cpu_node.source_digest(cpu_node.SOURCE)  # type: ignore[attr-defined]
    assert cpu_node.stale_build(module) == ""
    if cpu_node.ACTIVE:  # the loaded module is the build of this source
        assert cpu_node.stale_build(cpu_node._NODE) == ""  # type: ignore[arg-type]


def _in_a_process(code: str, setting: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, cpu_node.ENV: setting}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_the_setting_chooses_the_path() -> None:
    code = (
        "import torch, unidrop\n"
        "from unidrop_torch import cpu_node\n"
        "y = unidrop.dropout(torch.ones(8, requires_grad=True), 0.5, seed=1)\n"
        "print(cpu_node.ACTIVE, y.grad_fn.name())\n"
        "print(unidrop.get_backend('torch').implementation().describe())\n"
    )
    off = _in_a_process(code, "off")
    assert off.returncode == 0, off.stderr[-2000:]
    assert off.stdout.splitlines()[0] == f"False {FUNCTION}"
    assert "CPU autograd: Python Function (C++ node: UNIDROP_TORCH_NODE=off)" in off.stdout
    # the first call made under inference mode or a torch.func transform does not switch the node off
    first_calls = [
        "with torch.inference_mode():\n    unidrop.dropout(torch.ones(4), 0.5, seed=1)\n",
        "torch.func.grad(lambda a: unidrop.dropout(a, 0.5, seed=1).sum())(torch.ones(4))\n",
    ]
    for first_call in first_calls if cpu_node.ACTIVE else []:
        first = _in_a_process("import torch, unidrop\n" + first_call + code, "always")
        assert first.returncode == 0, first.stderr[-2000:]
        assert first.stdout.splitlines()[0] == f"True {NODE}", (first_call, first.stdout)
    bad = _in_a_process(code, "sometimes")
    assert bad.returncode != 0 and "UNIDROP_TORCH_NODE='sometimes' is not a choice" in bad.stderr
    assert "allowed: auto, always, off" in bad.stderr
    if cpu_node.ACTIVE:
        always = _in_a_process(code, "always")
        assert always.returncode == 0, always.stderr[-2000:]
        assert always.stdout.splitlines()[0] == f"True {NODE}"
        assert "CPU autograd: C++ node (built for torch " in always.stdout
