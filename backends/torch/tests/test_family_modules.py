"""unidrop_torch.AlphaDropout, FeatureAlphaDropout and DropPath: values, autograd, torch parity."""

from __future__ import annotations

import pytest
import torch
import unidrop_torch
from torch import nn
from torch_helpers import assert_same, sample
from unidrop_torch import keys

from unidrop import reference


def expected_alpha(x: torch.Tensor, p: float, seed: int, stream: int = 0, dims=()) -> tuple[list, list]:
    values = x.detach().to(torch.float64).reshape(-1).tolist()
    return reference.alpha_dropout(values, tuple(x.shape), str(x.dtype)[6:], p, seed, stream, dims)


def assert_alpha(y: torch.Tensor, x: torch.Tensor, p: float, seed: int, stream: int = 0, dims=()) -> None:
    allowed, _ = expected_alpha(x, p, seed, stream, dims)
    got = y.detach().to(torch.float64).reshape(-1).tolist()
    bad = [i for i, (g, pair) in enumerate(zip(got, allowed, strict=True)) if g not in pair]
    assert not bad, (
        f"{len(bad)} differ, first {bad[:3]}: {[got[i] for i in bad[:3]]} vs {[allowed[i] for i in bad[:3]]}"
    )


@pytest.mark.parametrize(
    ("cls", "torch_cls"), [("AlphaDropout", nn.AlphaDropout), ("FeatureAlphaDropout", nn.FeatureAlphaDropout)]
)
def test_alpha_forms_are_the_torch_classes_with_reference_values(cls: str, torch_cls: type) -> None:
    layer = getattr(unidrop_torch, cls)(0.3, seed=7, stream=2)
    assert isinstance(layer, torch_cls) and not isinstance(layer, nn.Dropout)
    assert repr(layer) == f"{cls}(p=0.3, inplace=False, seed=7, stream=2)"
    x = sample((3, 4, 5), torch.float32, seed=1, specials=False)
    dims = (2,) if cls == "FeatureAlphaDropout" else ()
    assert_alpha(layer(x), x, 0.3, 7, 2, dims)
    layer.eval()
    assert layer(x) is x


def test_feature_alpha_dropout_follows_torch_rank_rules() -> None:
    layer = unidrop_torch.FeatureAlphaDropout(0.5, seed=1)
    with pytest.raises(RuntimeError, match="Feature dropout requires at least 2 dimensions"):
        layer(torch.ones(4))
    for p in (0.0, 1.0):  # no mask drawn: torch gives the input, or zeros, with no error
        ours, theirs = unidrop_torch.FeatureAlphaDropout(p, seed=1), nn.FeatureAlphaDropout(p)
        assert torch.equal(ours(torch.ones(4)), theirs(torch.ones(4)))
    x = sample((2, 3, 2, 2), torch.float32, seed=2, specials=False)
    y = layer(x)
    assert_alpha(y, x, 0.5, 1, 0, (2, 3))
    with pytest.raises(TypeError, match="no broadcast_dims"):
        unidrop_torch.FeatureAlphaDropout(0.5, broadcast_dims=(1,))


def test_alpha_backward_regenerates_the_mask_and_saves_nothing_input_sized() -> None:
    x = sample((64, 32), torch.float32, seed=3, specials=False).requires_grad_()
    layer = unidrop_torch.AlphaDropout(0.2, seed=5)
    saved: list[torch.Size] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor.shape)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        y = layer(x)
    assert all(shape.numel() < x.numel() for shape in saved), saved
    y.backward(torch.ones_like(y))
    _, keep = expected_alpha(x, 0.2, 5)
    a = torch.tensor(reference.alpha_affine(0.2)[0], dtype=torch.float32)
    want = torch.where(torch.tensor(keep).reshape(x.shape), a, torch.zeros(()))
    assert_same(x.grad, want, "d(alpha dropout)/dx")
    saved.clear()  # torch's own layer, by contrast, saves an input-sized mask: the hook sees it
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        nn.AlphaDropout(0.2)(x)
    assert any(shape.numel() == x.numel() for shape in saved), saved


def test_alpha_gradcheck_in_float64() -> None:
    x = sample((4, 6), torch.float64, seed=4, specials=False).requires_grad_()
    layer = unidrop_torch.AlphaDropout(0.4, seed=9)
    assert torch.autograd.gradcheck(layer, (x,))


@pytest.mark.parametrize("cls", ["AlphaDropout", "FeatureAlphaDropout"])
def test_alpha_forms_under_torch_func_and_forward_mode(cls: str) -> None:
    """grad, jvp, forward-mode dual tensors and vmap give the eager layer's values and slopes."""
    layer = getattr(unidrop_torch, cls)(0.3, seed=7, stream=2)
    x = sample((3, 4, 5), torch.float64, seed=5, specials=False)
    dims = (2,) if cls == "FeatureAlphaDropout" else ()
    _, keep = expected_alpha(x, 0.3, 7, 2, dims)
    a = torch.tensor(reference.alpha_affine(0.3)[0], dtype=torch.float64)
    slope = torch.where(
        torch.tensor(keep).reshape(3, 4, 1 if dims else 5), a, torch.zeros((), dtype=torch.float64)
    )
    slope = slope.expand(3, 4, 5)
    assert_same(torch.func.grad(lambda t: layer(t).sum())(x), slope, "torch.func.grad")
    y, tangent = torch.func.jvp(layer, (x,), (torch.ones_like(x),))
    assert_alpha(y, x, 0.3, 7, 2, dims)
    assert_same(tangent, slope, "torch.func.jvp")
    with torch.autograd.forward_ad.dual_level():
        dual = layer(torch.autograd.forward_ad.make_dual(x, torch.ones_like(x)))
        assert_same(torch.autograd.forward_ad.unpack_dual(dual).tangent, slope, "forward-mode dual")
    hessian = torch.func.hessian(lambda t: layer(t).sum())(x)
    assert_same(hessian, torch.zeros(3, 4, 5, 3, 4, 5, dtype=torch.float64), "hessian (affine)")
    batched = torch.func.vmap(layer)(torch.stack([x, 2 * x]))
    assert_same(batched[1], layer(2 * x), "vmap: each example gets the unbatched mask")


def test_alpha_seed_none_follows_torch_manual_seed_and_inplace() -> None:
    x = sample((8, 8), torch.float32, seed=5, specials=False)
    layer = unidrop_torch.AlphaDropout(0.5)
    torch.manual_seed(4)
    first, second = layer(x), layer(x)
    torch.manual_seed(4)
    assert torch.equal(layer(x), first) and not torch.equal(first, second)
    copy = x.clone()
    out = unidrop_torch.AlphaDropout(0.5, inplace=True, seed=3)(copy)
    assert out is not copy and torch.equal(copy, x)  # inplace is ignored, as by torch's class
    assert_alpha(out, x, 0.5, 3)


@pytest.mark.parametrize("cls", ["AlphaDropout", "FeatureAlphaDropout"])
def test_alpha_inplace_is_ignored_as_by_torch(cls: str) -> None:
    """torch's AlphaDropout and FeatureAlphaDropout never pass ``inplace`` on: a converted SELU network
    with ``SELU(inplace=True)`` before ``AlphaDropout(inplace=True)`` must still differentiate, and
    inputs that cannot be written (a leaf that requires grad, an expanded view) are taken."""

    def model() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(8, 8), nn.SELU(inplace=True), getattr(nn, cls)(0.2, inplace=True))

    x = torch.randn(4, 3, 8)
    reference_model, converted = model(), unidrop_torch.convert(model(), seed=1)
    assert isinstance(converted[2], getattr(unidrop_torch, cls))
    reference_model(x).sum().backward()  # torch's own: fine
    converted(x).sum().backward()  # raised "modified by an inplace operation" when inplace was honoured
    assert converted[0].weight.grad is not None
    leaf = torch.randn(4, 6, 3, requires_grad=True)
    expanded = torch.ones(1, 6, 3).expand(4, 6, 3)
    for tensor in (leaf, expanded):
        before = tensor.detach().clone()
        out = getattr(unidrop_torch, cls)(0.5, inplace=True, seed=2)(tensor)
        assert out is not tensor and torch.equal(tensor.detach(), before)


@pytest.mark.parametrize(
    ("setting", "value", "error", "match"),
    [
        ("seed", -1, ValueError, r"seed must be an integer in \[0, 2\*\*64\), got -1"),
        ("seed", 2**70, ValueError, "seed must be an integer"),
        ("seed", 1.5, TypeError, "seed must be an integer"),
        ("stream", -1, ValueError, "stream must be an integer"),
        ("stream", "0", TypeError, "stream must be an integer"),
    ],
)
def test_alpha_settings_changed_after_construction_are_checked_at_the_call(
    setting, value, error, match
) -> None:
    """As Dropout's: a seed of -1 gave the mask of 2**64 - 1, and 2**70 that of 0."""
    layer = unidrop_torch.AlphaDropout(0.5, seed=3)
    setattr(layer, setting, value)
    with pytest.raises(error, match=match):
        layer(torch.ones(4, 4))


@pytest.mark.parametrize("cls", ["AlphaDropout", "FeatureAlphaDropout"])
def test_alpha_seed_none_compiles_fullgraph_exports_and_saves_only_the_seed(cls: str) -> None:
    """With seed=None the drawn seed stays a tensor: it compiles with fullgraph (reproducible under
    manual_seed), an exported program gives eager's values under the same manual_seed, and the
    backward keeps the 8 bytes of the seed, not a mask."""
    layer = getattr(unidrop_torch, cls)(0.4)
    x = sample((4, 6, 5), torch.float32, seed=6, specials=False)
    dims = (2,) if cls == "FeatureAlphaDropout" else ()
    torch.manual_seed(11)
    seed = keys.int_of_seed_words(keys.draw_seed_words(torch.device("cpu")))  # what seed=None draws
    torch.manual_seed(11)
    eager = layer(x)
    assert_alpha(eager, x, 0.4, seed, 0, dims)
    torch._dynamo.reset()
    compiled = torch.compile(layer, fullgraph=True)  # Inductor draws the seed by its own RNG
    torch.manual_seed(11)
    first, second = compiled(x), compiled(x)
    torch.manual_seed(11)
    assert_same(compiled(x), first, "compiled, seed=None, the same manual_seed")
    assert not torch.equal(first, second)
    program = torch.export.export(layer, (x,))
    torch.manual_seed(11)
    assert_same(program.module()(x), eager, "exported, seed=None")
    saved: list[int] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    leaf = x.clone().requires_grad_()
    torch.manual_seed(11)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        y = layer(leaf)
    assert saved == [8], saved
    assert_same(y, eager, "eager with a gradient")
    y.backward(torch.ones_like(y))
    _, keep = expected_alpha(x, 0.4, seed, 0, dims)
    kept = torch.tensor(keep).reshape(4, 6, 1 if dims else 5).expand(4, 6, 5)
    a = torch.tensor(reference.alpha_affine(0.4)[0], dtype=torch.float32)
    assert_same(leaf.grad, torch.where(kept, a, torch.zeros(())), "d/dx, the mask regenerated from the seed")


def test_alpha_mask_stream_torch_is_torch_alpha_dropout() -> None:
    x = torch.randn(6, 5, 4)
    for ours, theirs in [
        (unidrop_torch.AlphaDropout(0.3, mask_stream="torch"), nn.AlphaDropout(0.3)),
        (unidrop_torch.FeatureAlphaDropout(0.3, mask_stream="torch"), nn.FeatureAlphaDropout(0.3)),
    ]:
        torch.manual_seed(1)
        mine = ours(x)
        torch.manual_seed(1)
        assert torch.equal(mine, theirs(x)), type(theirs).__name__


def test_torch_alpha_dropout_tests_adapted() -> None:
    """torch's test_AlphaDropout/test_FeatureAlphaDropout: zero mean and unit variance are kept."""
    x = torch.randn(100_000, generator=torch.Generator().manual_seed(0))  # standard normal input
    for p in (0.2, 0.5, 0.8):
        y = unidrop_torch.AlphaDropout(p, seed=11)(x)
        assert abs(float(y.mean())) < 0.05 and abs(float(y.std()) - 1.0) < 0.05, p
    with pytest.raises(ValueError, match=r"1\.5"):
        unidrop_torch.AlphaDropout(1.5)
    for p in (0.0, 1.0):
        y = unidrop_torch.AlphaDropout(p, seed=1)(x)
        assert torch.equal(y, x if p == 0 else torch.zeros_like(x))


@pytest.mark.parametrize("cls", ["AlphaDropout", "FeatureAlphaDropout"])
@pytest.mark.parametrize(
    "dtype", [torch.int64, torch.bool, torch.uint8, torch.complex64, torch.float8_e4m3fn], ids=str
)
def test_alpha_forms_refuse_a_non_float_tensor_naming_its_dtype(cls: str, dtype: torch.dtype) -> None:
    """The spec's TypeError, in training, at p == 1 and in evaluation, as unidrop.dropout gives it."""
    x = torch.ones(2, 3, 4).to(dtype)
    for layer in [getattr(unidrop_torch, cls)(0.5, seed=1), getattr(unidrop_torch, cls)(1.0, seed=1)]:
        for training in (True, False):
            with pytest.raises(
                TypeError, match=rf"dtype {str(dtype)[6:]}\b.*float16, bfloat16, float32, float64"
            ):
                layer.train(training)(x)


def test_drop_path_is_timms_with_reference_values() -> None:
    layer = unidrop_torch.DropPath(0.25, seed=8)
    assert repr(layer) == "DropPath(drop_prob=0.250, seed=8)"
    x = sample((16, 3, 4), torch.float32, seed=6)
    out, _ = reference.drop_path(x.reshape(-1).tolist(), tuple(x.shape), "float32", 0.25, 8)
    assert_same(layer(x), torch.tensor(out, dtype=torch.float64).reshape(x.shape), "scale_by_keep")
    unscaled = unidrop_torch.DropPath(0.25, scale_by_keep=False, seed=8)
    out, _ = reference.drop_path(x.reshape(-1).tolist(), tuple(x.shape), "float32", 0.25, 8, 0, False)
    assert_same(unscaled(x), torch.tensor(out, dtype=torch.float64).reshape(x.shape), "unscaled")
    assert repr(unscaled) == "DropPath(drop_prob=0.250, scale_by_keep=False, seed=8)"
    layer.eval()
    assert layer(x) is x
    assert unidrop_torch.DropPath()(x) is x  # timm's default drop_prob=0.0
    with pytest.raises(TypeError, match="scale_by_keep must be True or False"):
        unidrop_torch.DropPath(0.1, scale_by_keep=1)


def test_drop_path_backward_saves_nothing_input_sized() -> None:
    x = sample((8, 16, 4), torch.float32, seed=7, specials=False).requires_grad_()
    saved: list[torch.Size] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t):
        y = unidrop_torch.DropPath(0.5, seed=3)(x)
    assert all(shape.numel() < x.numel() for shape in saved), saved
    y.sum().backward()
    ones = [1.0] * x.numel()
    want, _ = reference.drop_path(ones, tuple(x.shape), "float32", 0.5, 3)
    assert_same(x.grad, torch.tensor(want, dtype=torch.float64).reshape(x.shape), "per-sample scale")


def test_convert_replaces_alpha_forms_and_numbers_drop_path() -> None:
    model = nn.Sequential(
        nn.AlphaDropout(0.1), nn.FeatureAlphaDropout(0.2).eval(), unidrop_torch.DropPath(0.3)
    )
    unidrop_torch.convert(model, seed=6)
    assert type(model[0]) is unidrop_torch.AlphaDropout and model[0].p == 0.1
    assert type(model[1]) is unidrop_torch.FeatureAlphaDropout and not model[1].training
    assert [m.layer for _, m in unidrop_torch.dropout_layers(model)] == [0, 1, 2]
    unidrop_torch.set_step(model, 3)
    assert model[2].stream == 3 * 2**32 + 2


def test_scripting_is_refused_naming_the_alternatives() -> None:
    for layer in (unidrop_torch.AlphaDropout(0.1), unidrop_torch.DropPath(0.1)):
        with pytest.raises(RuntimeError, match=r"torch\.compile"):
            torch.jit.script(layer)


def test_a_selu_network_with_alpha_dropout_and_drop_path_trains() -> None:
    torch.manual_seed(2)
    model = unidrop_torch.convert(
        nn.Sequential(nn.Linear(8, 32), nn.SELU(), nn.AlphaDropout(0.1), nn.Linear(32, 1)), seed=1
    )
    path = unidrop_torch.DropPath(0.1, seed=1, layer=9)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02)
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    target = x.sum(dim=1, keepdim=True)
    losses = []
    for step in range(30):
        unidrop_torch.set_step(model, step)
        loss = nn.functional.mse_loss(model(x) + path(x[:, :1]), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses
