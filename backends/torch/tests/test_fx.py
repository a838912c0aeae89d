"""torch.fx symbolic tracing: unidrop's modules stay leaves, unidrop_torch.dropout is one recorded call."""

from __future__ import annotations

import pytest
import torch
import unidrop_torch
from torch import nn
from torch_helpers import assert_same, expected_output, sample

import unidrop


def _model() -> nn.Sequential:
    return nn.Sequential(
        unidrop_torch.Dropout(0.5, seed=3),
        unidrop_torch.AlphaDropout(0.3),
        unidrop_torch.Dropout2d(0.2, seed=4),
        unidrop_torch.DropPath(0.3, seed=2),
    )


def test_a_traced_model_keeps_the_modules_as_nodes_and_follows_train_and_eval() -> None:
    model = _model()
    traced = torch.fx.symbolic_trace(model)
    calls = [node.op for node in traced.graph.nodes if node.op not in ("placeholder", "output")]
    assert calls == ["call_module"] * len(model), traced.graph
    x = sample((2, 3, 4), torch.float32, seed=1, specials=False)
    torch.manual_seed(0)
    eager = model(x)
    torch.manual_seed(0)
    assert_same(traced(x), eager, "training")
    traced.eval()
    assert traced(x) is x, "evaluation: every module returns its input"


def test_a_functional_call_is_recorded_once_and_runs_the_mask_stream() -> None:
    class Net(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return unidrop_torch.dropout(x, 0.4, seed=5, stream=2, broadcast_dims=(0,))

    traced = torch.fx.symbolic_trace(Net())
    targets = [node.target for node in traced.graph.nodes if node.op == "call_function"]
    assert targets == [unidrop_torch.dropout], traced.graph
    x = sample((3, 6), torch.float32, seed=2)
    assert_same(traced(x), expected_output(x, 0.4, 5, 2, (0,)), "traced functional call")


@pytest.mark.parametrize("function", [unidrop.dropout, unidrop.alpha_dropout])
def test_the_core_functions_refuse_a_proxy_saying_what_to_call(function) -> None:
    class Net(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return function(x, 0.4, seed=5)

    with pytest.raises(TypeError, match=r"torch\.fx.*unidrop_torch module.*unidrop_torch\.dropout"):
        torch.fx.symbolic_trace(Net())
