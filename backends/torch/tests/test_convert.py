"""unidrop_torch.convert, set_step and the layer-seed convention on torch models."""

from __future__ import annotations

import warnings

import pytest
import torch
import unidrop_torch
from torch import nn
from torch_helpers import assert_same, expected_output, sample

from unidrop import layer_seeds

TWO_POW_32 = 2**32


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 6)
        self.drop = nn.Dropout(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.linear(x))


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(4, 6),
        nn.Dropout(0.25, inplace=True),
        Block(),
        nn.ModuleList([nn.Dropout1d(0.5), nn.Dropout2d(0.4)]),
        nn.ModuleDict({"d3": nn.Dropout3d(0.2)}),
    )


def test_every_torch_dropout_is_replaced_keeping_p_inplace_and_mode() -> None:
    model = small_model()
    model[2].eval()  # one block in evaluation, the rest in training
    dropouts = [(name, m) for name, m in model.named_modules() if hasattr(m, "p")]
    before = {name: (type(m), m.p, m.inplace, m.training) for name, m in dropouts}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert unidrop_torch.convert(model) is model
    after = {name: m for name, m in model.named_modules() if hasattr(m, "p")}
    assert sorted(after) == sorted(before) == ["1", "2.drop", "3.0", "3.1", "4.d3"]
    for name, module in after.items():
        torch_cls, p, inplace, training = before[name]
        assert type(module).__module__ == "unidrop_torch.modules", name
        assert type(module).__name__ == torch_cls.__name__ and isinstance(module, torch_cls), name
        assert (module.p, module.inplace, module.training) == (p, inplace, training), name
        assert module.seed is None and module.layer is None, name  # torch's generator convention
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_a_truthy_inplace_that_torch_took_is_converted_to_a_bool() -> None:
    model = torch.nn.Sequential(torch.nn.Dropout(0.5, inplace=1), torch.nn.Dropout2d(0.5, inplace=0))
    unidrop_torch.convert(model)
    assert [(type(m).__name__, m.inplace) for m in model] == [("Dropout", True), ("Dropout2d", False)]


def test_a_shared_module_stays_shared_and_a_dropout_model_is_replaced() -> None:
    shared = nn.Dropout(0.5)
    model = nn.Sequential(shared, nn.Linear(3, 3), shared)
    unidrop_torch.convert(model)
    assert model[0] is model[2] and isinstance(model[0], unidrop_torch.Dropout)
    alone = nn.Dropout2d(0.1).eval()
    new = unidrop_torch.convert(alone)
    assert isinstance(new, unidrop_torch.Dropout2d) and new.p == 0.1 and not new.training


def test_modules_unidrop_cannot_replace_are_left_with_a_warning_naming_them() -> None:
    class MyDropout(nn.Dropout):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2

    model = nn.Sequential(nn.Dropout(0.5), MyDropout(0.5))
    with pytest.warns(UserWarning, match=r"left these dropout modules as they are .*: 1 \(.*MyDropout\)"):
        unidrop_torch.convert(model)
    assert isinstance(model[0], unidrop_torch.Dropout) and type(model[1]) is MyDropout


def test_bad_arguments_are_named() -> None:
    with pytest.raises(TypeError, match=r"convert needs a torch\.nn\.Module, got list"):
        unidrop_torch.convert([nn.Dropout()])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*64\), got -1"):
        unidrop_torch.convert(nn.Dropout(), seed=-1)
    with pytest.raises(ValueError, match="set_step found no numbered unidrop dropout layer"):
        unidrop_torch.set_step(unidrop_torch.convert(nn.Sequential(nn.Dropout())), 1)
    model = unidrop_torch.convert(nn.Sequential(nn.Dropout()), seed=1)
    with pytest.raises(ValueError, match=r"step must be an integer in \[0, 2\*\*32\), got 4294967296"):
        unidrop_torch.set_step(model, 2**32)
    torch_stream = nn.Sequential(nn.Dropout(0.1), unidrop_torch.Dropout(0.5, mask_stream="torch"))
    with pytest.raises(ValueError, match=r"these have mask_stream='torch': 1; nothing was changed"):
        unidrop_torch.convert(torch_stream, seed=1)
    assert type(torch_stream[0]) is nn.Dropout  # refused before any layer was replaced
    with pytest.raises(TypeError, match=r"TorchScript module .* convert the eager model"):
        unidrop_torch.convert(torch.jit.script(nn.Sequential(nn.Linear(2, 2), nn.Dropout())))


def test_a_layer_unidrop_refuses_changes_nothing_and_is_named() -> None:
    """nn.Dropout(True) (p=True, which torch takes as 1) is refused naming it, before any change."""
    model = nn.Sequential(nn.Dropout(0.1), nn.Sequential(nn.Dropout(True)))
    with pytest.raises(
        TypeError, match=r"the Dropout at 1\.0: p must be a real number .* nothing was changed"
    ):
        unidrop_torch.convert(model)
    assert type(model[0]) is nn.Dropout


def test_attention_dropout_that_cannot_be_replaced_is_named_in_a_warning() -> None:
    """nn.MultiheadAttention's dropout is a probability inside its call: convert warns, naming it."""
    model = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1)
    with pytest.warns(
        UserWarning, match=r"attention dropout of these .*MultiheadAttention modules.*: self_attn;"
    ):
        unidrop_torch.convert(model, seed=1)
    assert isinstance(model.dropout, unidrop_torch.Dropout)
    quiet = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unidrop_torch.convert(quiet, seed=1)


def test_layers_are_numbered_by_path_not_by_registration_order() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.zdrop = nn.Dropout(0.1)
            self.layers = nn.Sequential(*[nn.Dropout(0.2) for _ in range(11)])
            self.adrop = nn.Dropout(0.3)

    model = unidrop_torch.convert(Net(), seed=4)
    names = [name for name, _ in unidrop_torch.dropout_layers(model)]
    assert names == ["adrop", *[f"layers.{i}" for i in range(11)], "zdrop"]
    assert [m.layer for _, m in unidrop_torch.dropout_layers(model)] == list(range(13))
    assert (model.adrop.layer, model.layers[2].layer, model.layers[10].layer, model.zdrop.layer) == (
        0,
        3,
        11,
        12,
    )


def test_seed_numbers_layers_in_path_order_and_set_step_moves_them() -> None:
    model = unidrop_torch.convert(small_model(), seed=2**40 + 9)
    layers = unidrop_torch.dropout_layers(model)
    assert [name for name, _ in layers] == ["1", "2.drop", "3.0", "3.1", "4.d3"]
    assert [(m.seed, m.layer, m.stream) for _, m in layers] == [(2**40 + 9, i, i) for i in range(5)]
    unidrop_torch.set_step(model, 7)
    assert [m.stream for _, m in layers] == [7 * TWO_POW_32 + i for i in range(5)]
    assert repr(layers[3][1]) == "Dropout2d(p=0.4, inplace=False, seed=1099511627785, layer=3, step=7)"


def test_each_layer_draws_the_mask_of_its_step_and_number() -> None:
    model = unidrop_torch.convert(nn.Sequential(nn.Dropout(0.5), nn.Dropout(0.25)), seed=11)
    x = sample((5, 8), torch.float32, seed=1)
    for step in (0, 1, 2**32 - 1):
        unidrop_torch.set_step(model, step)
        hidden = expected_output(x, 0.5, 11, layer_seeds.layer_stream(step, 0)).to(torch.float32)
        want = expected_output(hidden, 0.25, 11, layer_seeds.layer_stream(step, 1))
        assert_same(model(x), want, f"step {step}")


def test_layer_argument_of_the_modules() -> None:
    layer = unidrop_torch.Dropout(0.5, seed=3, layer=2)
    assert (layer.layer, layer.stream) == (2, 2)
    x = sample((4, 4), torch.float32, seed=2)
    assert_same(layer(x), expected_output(x, 0.5, 3, 2), "layer 2, step 0")
    for kwargs in ({"layer": 1}, {"layer": 1, "seed": 3, "stream": 5}):
        with pytest.raises(ValueError, match=r"layer=1 numbers the layer .* needs a seed"):
            unidrop_torch.Dropout(0.5, **kwargs)
    with pytest.raises(ValueError, match=r"layer must be an integer in \[0, 2\*\*32\)"):
        unidrop_torch.Dropout(0.5, seed=1, layer=2**32)
    with pytest.raises(ValueError, match="needs unidrop's mask stream"):
        unidrop_torch.Dropout(0.5, seed=1, layer=0, mask_stream="torch")


def test_a_converted_model_trains_for_a_few_steps() -> None:
    torch.manual_seed(3)
    model = unidrop_torch.convert(
        nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1)), seed=5
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    target = x.sum(dim=1, keepdim=True)
    losses = []
    for step in range(30):
        unidrop_torch.set_step(model, step)
        loss = nn.functional.mse_loss(model(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses
    model.eval()
    assert torch.equal(model(x), model(x))


def test_set_step_under_torch_compile_gives_eager_masks_with_two_compilations() -> None:
    """With allow_unspec_int_on_nn_module, a new step does not recompile (docs/porting.md).

    Slow (Dynamo's first trace, some seconds), but the only check of what docs/porting.md says.
    """
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    model = unidrop_torch.convert(nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)), seed=3)
    compiled = torch.compile(model, backend="eager")
    x = sample((2, 4), torch.float32, seed=4, specials=False)
    with torch._dynamo.config.patch(allow_unspec_int_on_nn_module=True):
        for step in range(4):
            unidrop_torch.set_step(model, step)
            hidden = model[0](x)
            assert_same(compiled(x), expected_output(hidden, 0.5, 3, step * TWO_POW_32), f"step {step}")
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] <= 2
