"""torch.compile (fullgraph, bit-exact), the op's registrations (opcheck) and torch.func.vmap."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
import torch
import unidrop_torch
from torch_helpers import assert_same, expected_output, sample
from unidrop_torch import keys, ops

import unidrop


def test_opcheck_dropout_and_keep_mask() -> None:
    """Schema, fake implementation, autograd registration and AOT dispatch are consistent."""
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    key = keys.key_from_ints(3, 4)
    torch.library.opcheck(ops.dropout, (x, key, 0.3, [1]))
    torch.library.opcheck(ops.dropout, (x.detach().to(torch.bfloat16).t(), key, 0.5, []))
    torch.library.opcheck(ops.keep_mask, (key, [3, 1, 4], 0.5, torch.device("cpu")))


def test_inductor_fullgraph_is_bit_exact_forward_and_backward() -> None:
    torch._dynamo.reset()
    x = sample((33, 17), torch.float32, seed=3, specials=False)

    def step(a: torch.Tensor) -> torch.Tensor:
        return unidrop_torch.dropout(a, 0.3, seed=1 << 33, stream=7) * 3.0

    compiled = torch.compile(step, fullgraph=True)
    leaf_c, leaf_e = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y_c, y_e = compiled(leaf_c), step(leaf_e)
    assert_same(y_c, y_e, "compiled forward")
    assert_same(y_e, expected_output(x, 0.3, 1 << 33, 7).to(torch.float32) * 3.0, "eager forward")
    cotangent = sample((33, 17), torch.float32, seed=4, specials=False)
    y_c.backward(cotangent)
    y_e.backward(cotangent)
    assert_same(leaf_c.grad, leaf_e.grad, "compiled backward")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64], ids=str)
def test_fullgraph_with_broadcast_dims_and_return_mask(dtype: torch.dtype) -> None:
    torch._dynamo.reset()
    x = sample((4, 5, 6), dtype, seed=5)

    def fn(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return unidrop_torch.dropout(a, 0.5, seed=2, stream=3, broadcast_dims=(-1,), return_mask=True)

    y, keep = torch.compile(fn, fullgraph=True, backend="aot_eager")(x)
    y_e, keep_e = fn(x)
    assert_same(y, y_e, "compiled")
    assert torch.equal(keep, keep_e)


def test_seed_none_compiles_without_graph_break_and_follows_manual_seed() -> None:
    torch._dynamo.reset()
    x = torch.ones(256)
    compiled = torch.compile(lambda a: unidrop_torch.dropout(a, 0.5), fullgraph=True, backend="aot_eager")
    torch.manual_seed(11)
    first, second = compiled(x), compiled(x)
    torch.manual_seed(11)
    assert torch.equal(compiled(x), first)
    assert not torch.equal(first, second)


def test_module_compiles_fullgraph() -> None:
    torch._dynamo.reset()
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), unidrop_torch.Dropout(0.25, seed=5))
    x = torch.randn(3, 8)
    assert_same(torch.compile(model, fullgraph=True, backend="aot_eager")(x), model(x), "module")


def test_core_dropout_compiles_fullgraph() -> None:
    """Cold: in a fresh process the first unidrop call of all is the compiled one (no warm-up)."""
    code = (
        "import torch, unidrop\n"
        "x = torch.linspace(-2.0, 2.0, 10)\n"
        "fn = torch.compile(lambda a: unidrop.dropout(a, 0.5, seed=7), fullgraph=True, backend='aot_eager')\n"
        "print(repr(fn(x).tolist()))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    got = torch.tensor(ast.literal_eval(result.stdout.strip().splitlines()[-1]), dtype=torch.float32)
    assert_same(got, expected_output(torch.linspace(-2.0, 2.0, 10), 0.5, 7), "cold compiled unidrop.dropout")


def test_vmap_gives_every_example_the_unbatched_mask() -> None:
    xs = sample((5, 4, 3), torch.float32, seed=6)
    for in_dim in (0, 1):
        batch = xs if in_dim == 0 else xs.transpose(0, 1).contiguous()
        got = torch.func.vmap(
            lambda r: unidrop_torch.dropout(r, 0.5, seed=3, broadcast_dims=(1,)), in_dims=in_dim
        )(batch)
        for i in range(5):
            assert_same(got[i], expected_output(xs[i], 0.5, 3, 0, (1,)), f"example {i} in_dims={in_dim}")


def test_func_grad_jacrev_and_vmap_of_grad() -> None:
    xs = torch.randn(3, 7, dtype=torch.float64)
    ones = expected_output(torch.ones(7, dtype=torch.float64), 0.5, 9)
    grads = torch.func.vmap(torch.func.grad(lambda r: unidrop_torch.dropout(r, 0.5, seed=9).sum()))(xs)
    assert_same(grads[1], ones, "per-example grad")
    jacobian = torch.func.jacrev(lambda r: unidrop_torch.dropout(r, 0.5, seed=9))(xs[0])
    assert_same(jacobian, torch.diag(ones), "jacobian")


def test_vmap_random_seed_is_refused_clearly() -> None:
    xs = torch.randn(3, 8)
    with pytest.raises(RuntimeError, match="randomness"):
        torch.func.vmap(lambda r: unidrop_torch.dropout(r, 0.5))(xs)
    same = torch.func.vmap(lambda r: unidrop_torch.dropout(r, 0.5), randomness="same")(torch.ones(3, 8))
    assert torch.equal(same[0], same[1])
    with pytest.raises(NotImplementedError, match="vmap over the key"):
        torch.func.vmap(lambda r: unidrop_torch.dropout(r, 0.5), randomness="different")(xs)


def test_torch_export_keeps_the_operator() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), unidrop_torch.Dropout(0.25, seed=5))
    x = torch.randn(3, 8)
    program = torch.export.export(model, (x,))
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert "unidrop.dropout.default" in targets
    assert_same(program.module()(x), model(x), "exported")


def test_forward_mode_jvp_and_jacfwd() -> None:
    x = torch.randn(9, dtype=torch.float64)
    ones = expected_output(torch.ones(9, dtype=torch.float64), 0.5, 3)
    y, tangent = torch.func.jvp(
        lambda a: unidrop_torch.dropout(a, 0.5, seed=3), (x,), (torch.ones(9, dtype=torch.float64),)
    )
    assert_same(y, expected_output(x, 0.5, 3), "primal")
    assert_same(tangent, ones, "tangent")
    jacobian = torch.func.jacfwd(lambda a: unidrop_torch.dropout(a, 0.5, seed=3))(x)
    assert_same(jacobian, torch.diag(ones), "forward-mode jacobian")


@pytest.mark.parametrize(
    "second_order",
    [
        torch.func.hessian,
        lambda f: torch.func.jacfwd(torch.func.jacrev(f)),
        lambda f: torch.func.jacfwd(torch.func.jacfwd(f)),
    ],
    ids=["hessian", "jacfwd-of-jacrev", "jacfwd-of-jacfwd"],
)
@pytest.mark.parametrize("dims", [(), (1,)])
def test_second_order_forward_over_reverse(second_order, dims) -> None:
    """sum(dropout(x)**2) has the Hessian 2 * (keep * s)**2 on the diagonal: a vmap inside a jvp."""
    x = torch.randn(3, 5, dtype=torch.float64)
    kept = expected_output(torch.ones(3, 5, dtype=torch.float64), 0.4, 11, 2, dims).reshape(-1)
    hessian = second_order(
        lambda a: (unidrop_torch.dropout(a, 0.4, seed=11, stream=2, broadcast_dims=dims) ** 2).sum()
    )(x)
    assert_same(hessian.reshape(15, 15), torch.diag(2 * kept * kept), "Hessian")


def test_compiling_gives_no_warning_on_any_supported_path() -> None:
    """Dynamo once warned about a functools.lru_cache-wrapped function on every compile.

    In a fresh process (Dynamo warns once per process), every way of calling unidrop compiles
    with fullgraph=True while all warnings are recorded, and nothing is logged to stderr.
    """
    code = (
        "import warnings\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import torch, unidrop, unidrop_torch\n"
        "    x = torch.ones(4, 6, 8)\n"
        "    calls = [\n"
        "        lambda a: unidrop.dropout(a, 0.5, seed=7),\n"
        "        lambda a: unidrop.dropout(a, 0.5, seed=7, broadcast_dims=(-1,), return_mask=True),\n"
        "        lambda a: unidrop_torch.dropout(a, 0.5),\n"
        "        lambda a: unidrop_torch.dropout(a * 1.0, 0.5, True, True, seed=3),\n"
        "        unidrop_torch.Dropout(0.25, seed=5),\n"
        "        unidrop_torch.Dropout1d(0.25),  # (N, C, L): its own rank, no warning\n"
        "    ]\n"
        "    for call in calls:\n"
        "        torch.compile(call, fullgraph=True, backend='aot_eager')(x)\n"
        "    leaf = x.clone().requires_grad_(True)\n"
        "    torch.compile(calls[0], fullgraph=True, backend='aot_eager')(leaf).sum().backward()\n"
        "print('WARNINGS', [f'{w.category.__name__}: {w.message}' for w in caught])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "WARNINGS []", result.stdout[-3000:]
    assert result.stderr == "", result.stderr[-3000:]


def test_fullgraph_follows_a_p_that_changes_between_calls() -> None:
    """A p schedule: each new Python float p is traced (as a symbolic float after the first) and
    gives the reference output, through the functional form and through a module's ``p``."""
    torch._dynamo.reset()
    x = sample((8, 16), torch.float32, seed=6, specials=False)
    compiled = torch.compile(
        lambda a, p: unidrop.dropout(a, p, seed=11, stream=2), fullgraph=True, backend="aot_eager"
    )
    layer = unidrop_torch.Dropout(0.1, seed=11)
    compiled_layer = torch.compile(layer, fullgraph=True, backend="aot_eager")
    for p in (0.2, 0.3, 0.45):
        assert_same(compiled(x, p), expected_output(x, p, 11, 2).to(torch.float32), f"p={p}")
        layer.p = p
        assert_same(compiled_layer(x), layer(x), f"module p={p}")


def test_a_tensor_p_under_fullgraph_names_the_fix() -> None:
    """A tensor p has no value while torch.compile traces: the error says to pass a Python float
    (eager calls and non-fullgraph compiles still take a 0-d tensor)."""
    torch._dynamo.reset()
    x = torch.ones(32)

    def fn(a: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return unidrop.dropout(a, p, seed=1)

    with pytest.raises(Exception, match="pass it as a static Python value"):
        torch.compile(fn, fullgraph=True, backend="aot_eager")(x, torch.tensor(0.25))
    expected = expected_output(x, 0.25, 1).to(torch.float32)
    assert_same(torch.compile(fn, backend="aot_eager")(x, torch.tensor(0.25)), expected, "graph break")
    assert_same(fn(x, torch.tensor(0.25)), expected, "eager")


def test_a_new_seed_or_stream_each_call_neither_breaks_nor_recompiles() -> None:
    """Seeds and streams passed as arguments become symbolic on the second call: still exact.

    torch.compile turns an int argument that changes into a symbolic integer; the seed check and
    the key's words must then work on it (they once inspected it as a Python object and failed).
    """
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    frames = torch._dynamo.utils.counters["stats"]
    fn = torch.compile(
        lambda a, seed, stream: unidrop.dropout(a, 0.5, seed=seed, stream=stream, broadcast_dims=(1,)),
        fullgraph=True,
        backend="aot_eager",
    )
    x = sample((4, 6), torch.float32, seed=2)
    cases = [(1, 0), (2, 5), (3 << 33, (1 << 40) + 7), ((1 << 63) - 1, (1 << 62) + 3), (9, 1 << 32)]
    for seed, stream in cases:
        want = expected_output(x, 0.5, seed, stream, (1,))
        assert_same(fn(x, seed, stream), want, f"seed={seed} stream={stream}")
    assert frames["unique_graphs"] <= 2, f"compiled {frames['unique_graphs']} graphs for {len(cases)} seeds"


def test_forward_mode_inside_a_compiled_function_is_refused_not_lost() -> None:
    """The operator has no forward-mode formula: a jvp traced by Dynamo once returned zero tangents."""
    torch._dynamo.reset()
    tangent = torch.ones(8)

    def jvp_of_dropout(a):
        return torch.func.jvp(lambda b: unidrop_torch.dropout(b, 0.5, seed=3), (a,), (tangent,))[1]

    with pytest.raises(RuntimeError, match=r"no forward-mode derivative inside torch\.compile"):
        torch.compile(jvp_of_dropout, fullgraph=True, backend="aot_eager")(torch.arange(1.0, 9.0))
    # eager forward mode on meta tensors (the fake kernel runs there too) is not refused
    meta = torch.empty(8, device="meta")
    _, meta_tangent = torch.func.jvp(lambda b: unidrop_torch.dropout(b, 0.5, seed=3), (meta,), (meta,))
    assert meta_tangent.shape == (8,) and meta_tangent.is_meta
    # a compiled function inside an eager transform keeps working
    compiled = torch.compile(lambda b: unidrop_torch.dropout(b, 0.5, seed=3), backend="aot_eager")
    _, got = torch.func.jvp(compiled, (torch.arange(1.0, 9.0),), (tangent,))
    assert_same(got, expected_output(tangent, 0.5, 3), "tangent through a compiled function")


@pytest.mark.parametrize("layer", ["AlphaDropout", "FeatureAlphaDropout"])
def test_alpha_modules_compile_fullgraph_with_an_input_needing_grad(layer) -> None:
    torch._dynamo.reset()
    module = getattr(unidrop_torch, layer)(0.4, seed=3)
    x = sample((4, 6, 5), torch.float32, seed=2, specials=False)
    eager_leaf, compiled_leaf = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    want = module(eager_leaf)
    got = torch.compile(module, fullgraph=True, backend="aot_eager")(compiled_leaf)
    assert_same(got, want, f"{layer} compiled")
    (got * x).sum().backward()
    (want * x).sum().backward()
    assert_same(compiled_leaf.grad, eager_leaf.grad, f"{layer} compiled backward")


def test_the_first_call_in_a_process_can_be_a_compiled_alpha_module() -> None:
    """Dynamo can neither enter the registry's lock nor trace the implementation's publication:
    both are built when unidrop_torch's torch-facing modules are imported."""
    code = (
        "import torch, unidrop_torch\n"
        "layer = unidrop_torch.AlphaDropout(0.4, seed=3)\n"
        "x = torch.ones(4, 6)\n"
        "y = torch.compile(layer, fullgraph=True, backend='aot_eager')(x)\n"
        "print('SAME', torch.equal(y, layer(x)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "SAME True", result.stdout[-3000:]


@pytest.mark.parametrize(
    "call",
    [
        lambda a: unidrop_torch.dropout(a, 0.4, seed=5),
        lambda a: unidrop_torch.dropout(a, 0.4, seed=5, broadcast_dims=(1,)),
        lambda a: unidrop.drop_path(a, 0.4, seed=5),
        unidrop_torch.AlphaDropout(0.4, seed=5),
    ],
    ids=["dropout", "broadcast", "drop_path", "AlphaDropout"],
)
def test_batched_gradients_equal_one_at_a_time(call) -> None:
    """autograd.grad(is_grads_batched=True) feeds the backward a legacy batched tensor, with no
    storage for the CPU kernel to read: jacobian(vectorize=True) must equal the looped one."""
    x = sample((4, 6), torch.float64, seed=1, specials=False)
    looped = torch.autograd.functional.jacobian(call, x)
    assert_same(torch.autograd.functional.jacobian(call, x, vectorize=True), looped, "vectorized jacobian")


@pytest.mark.parametrize("dims", [(), (1,)])
def test_batched_gradients_are_the_reference_mask(dims) -> None:
    x = sample((4, 6), torch.float64, seed=1, specials=False)
    jacobian = torch.autograd.functional.jacobian(
        lambda a: unidrop_torch.dropout(a, 0.4, seed=5, broadcast_dims=dims), x, vectorize=True
    )
    slope = expected_output(torch.ones(4, 6, dtype=torch.float64), 0.4, 5, 0, dims).reshape(-1)
    assert_same(jacobian.reshape(24, 24), torch.diag(slope), "vectorized jacobian")


@pytest.mark.parametrize(
    "call",
    [lambda a: unidrop.alpha_dropout(a, 0.5), lambda a: unidrop.drop_path(a, 0.5, scale_by_keep=False)],
    ids=["alpha_dropout", "drop_path-unscaled"],
)
def test_the_family_under_vmap_refuses_a_batched_seed_as_dropout_does(call) -> None:
    with pytest.raises(NotImplementedError, match="vmap over the key"):
        torch.func.vmap(call, randomness="different")(torch.zeros(4, 16))
