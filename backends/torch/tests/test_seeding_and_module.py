"""seed=None follows torch's generators; the nn.Module API; importing does not import torch."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import unidrop_torch
from torch_helpers import assert_same, expected_output, sample

import unidrop


def test_seed_none_draws_from_torch_default_generator() -> None:
    x = torch.ones(512)
    torch.manual_seed(3)
    first, second = unidrop.dropout(x, 0.5), unidrop.dropout(x, 0.5)
    torch.manual_seed(3)
    assert torch.equal(unidrop.dropout(x, 0.5), first)
    assert not torch.equal(first, second)
    state = torch.get_rng_state()
    unidrop.dropout(x, 0.5)
    assert not torch.equal(torch.get_rng_state(), state), "seed=None must consume torch's generator"


def test_the_drawn_seed_is_two_randint_words() -> None:
    """The documented convention: seed = the two int32 words torch.randint draws, low word first."""
    torch.manual_seed(8)
    words = [w & 0xFFFFFFFF for w in torch.randint(-(1 << 31), 1 << 31, (2,), dtype=torch.int32).tolist()]
    torch.manual_seed(8)
    x = sample((7, 3), torch.float32, seed=1)
    assert_same(unidrop.dropout(x, 0.5, stream=4), expected_output(x, 0.5, words[0] | words[1] << 32, 4), "")


@pytest.mark.parametrize(("size", "p"), [(0, 0.5), (5, 1.0), (0, 1.0), (5, 0.5)])
def test_every_call_draws_one_seed_whatever_its_size_and_p(size: int, p: float) -> None:
    """The generator's position depends on the number of calls alone (docs/torch.md): an empty
    tensor and p == 1 draw their two words too, so a later draw does not shift with them."""
    torch.manual_seed(11)
    torch.randint(-(1 << 31), 1 << 31, (2,), dtype=torch.int32)
    expected = torch.rand(3)
    torch.manual_seed(11)
    unidrop.dropout(torch.ones(size), p)
    assert torch.equal(torch.rand(3), expected)


def test_fork_rng_governs_seed_none() -> None:
    x = torch.ones(256)
    torch.manual_seed(5)
    with torch.random.fork_rng(devices=[]):
        inside = unidrop.dropout(x, 0.5)
    outside = unidrop.dropout(x, 0.5)
    assert torch.equal(inside, outside), "fork_rng must restore the generator"


def test_explicit_seed_and_eval_leave_torch_generator_alone() -> None:
    state = torch.get_rng_state()
    unidrop.dropout(torch.ones(64), 0.5, seed=1)
    unidrop.dropout(torch.ones(64), 0.5, training=False)
    unidrop.dropout(torch.ones(64), 0.0)
    assert torch.equal(torch.get_rng_state(), state)


def test_module_follows_train_and_eval() -> None:
    layer = unidrop_torch.Dropout(0.4, seed=6, stream=2)
    x = sample((5, 6), torch.float32, seed=2)
    assert layer.training
    assert_same(layer(x), expected_output(x, 0.4, 6, 2), "train")
    layer.eval()
    assert layer(x) is x
    layer.train()
    assert not torch.equal(layer(x), x)
    assert "p=0.4" in repr(layer) and "seed=6" in repr(layer)


@pytest.mark.parametrize(
    ("cls", "shape", "dims"),
    [
        (unidrop_torch.Dropout1d, (2, 3, 7), (2,)),
        (unidrop_torch.Dropout2d, (2, 3, 4, 5), (2, 3)),
        (unidrop_torch.Dropout3d, (2, 3, 2, 4, 3), (2, 3, 4)),
        (unidrop_torch.Dropout1d, (3, 7), (1,)),  # unbatched (C, L)
        (unidrop_torch.Dropout3d, (3, 2, 4, 3), (1, 2, 3)),  # unbatched (C, D, H, W)
    ],
)
def test_channel_forms_are_broadcast_dims(cls: type, shape: tuple[int, ...], dims: tuple[int, ...]) -> None:
    x = sample(shape, torch.float32, seed=3)
    y = cls(0.5, seed=4)(x)
    assert_same(y, expected_output(x, 0.5, 4, 0, dims), cls.__name__)
    assert_same(y, unidrop_torch.Dropout(0.5, broadcast_dims=dims, seed=4)(x), "same as broadcast_dims")


def test_inplace_writes_into_the_input_like_torch() -> None:
    x = sample((4, 6), torch.float32, seed=5)
    expected = expected_output(x, 0.5, 2)
    out = unidrop_torch.Dropout(0.5, True, seed=2)(x)
    assert out is x
    assert_same(x, expected, "in place")
    leaf = torch.ones(8, requires_grad=True)
    unidrop_torch.Dropout(0.5, inplace=True, seed=2)(leaf * 1.0).sum().backward()
    assert_same(leaf.grad, expected_output(torch.ones(8), 0.5, 2), "gradient through the in-place form")


def test_torch_mask_stream_reproduces_torch_dropout() -> None:
    x = torch.randn(6, 5, 4, 3)
    for unidrop_layer, torch_layer in [
        (unidrop_torch.Dropout(0.3, mask_stream="torch"), torch.nn.Dropout(0.3)),
        (unidrop_torch.Dropout2d(0.3, mask_stream="torch"), torch.nn.Dropout2d(0.3)),
    ]:
        torch.manual_seed(12)
        ours = unidrop_layer(x)
        torch.manual_seed(12)
        assert torch.equal(ours, torch_layer(x)), type(torch_layer).__name__
    for dims in [(0,), (1,), (1, 2, 3)]:  # never torch's pattern, whatever the rank: refused at once
        with pytest.raises(ValueError, match=r"mask_stream='torch' has no stream for broadcast_dims"):
            unidrop_torch.Dropout(0.3, broadcast_dims=dims, mask_stream="torch")
    layer = unidrop_torch.Dropout(0.3, broadcast_dims=(-1,), mask_stream="torch")  # torch's for 3-D input
    with pytest.raises(ValueError, match="torch has no stream for broadcast_dims=\\(3,\\)"):
        layer(x)  # but not for this 4-D one
    with pytest.raises(ValueError, match="mask_stream"):
        unidrop_torch.Dropout(0.3, mask_stream="numpy")


@pytest.mark.parametrize(
    ("kwargs", "error", "says"),
    [
        ({"p": 1.5}, ValueError, "1.5"),
        ({"p": 0.5, "seed": -1}, ValueError, "-1"),
        ({"broadcast_dims": "ab"}, TypeError, "broadcast_dims must be a sequence of ints, got 'ab'"),
        ({"broadcast_dims": 1.0}, TypeError, "broadcast_dims must be a sequence of ints, got 1.0"),
        ({"broadcast_dims": (1, 1)}, ValueError, r"broadcast_dims repeats an axis: \(1, 1\)"),
        ({"seed": 3, "mask_stream": "torch"}, ValueError, "seed=3 needs unidrop's mask stream"),
        ({"stream": 7, "mask_stream": "torch"}, ValueError, "stream=7 needs unidrop's mask stream"),
    ],
)
def test_module_validates_arguments_when_made(kwargs: dict, error: type, says: str) -> None:
    """Bad arguments are refused by the constructor, naming them, not at the first call."""
    with pytest.raises(error, match=says):
        unidrop_torch.Dropout(**kwargs)


@pytest.mark.parametrize("cls", ["Dropout1d", "Dropout2d", "Dropout3d", "FeatureAlphaDropout"])
def test_channel_forms_refuse_broadcast_dims_naming_why(cls: str) -> None:
    with pytest.raises(TypeError, match="no broadcast_dims"):
        getattr(unidrop_torch, cls)(0.5, broadcast_dims=(1,))


def test_importing_the_backend_imports_neither_torch_nor_triton() -> None:
    code = (
        "import sys, unidrop, unidrop_torch\n"
        "unidrop.list_backends()\n"
        "assert 'torch' not in sys.modules and 'triton' not in sys.modules, sorted(sys.modules)\n"
        "import torch\n"
        "unidrop.dropout(torch.ones(8), 0.5, seed=1)\n"
        "assert 'unidrop_torch.triton_kernels' not in sys.modules, 'the CPU path needs no kernels'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize(
    "first", ["import unidrop_torch", "import unidrop_torch.ops", "from unidrop_torch import Dropout"]
)
def test_importing_unidrop_torch_before_unidrop_registers_the_backend(first: str) -> None:
    """unidrop's import discovers backends: it must not find this one half-imported."""
    code = (
        f"{first}\n"
        "import sys, unidrop\n"
        "assert 'torch' in {info.name for info in unidrop.list_backends()}\n"
        "import torch\n"
        "assert unidrop.dropout(torch.ones(4), 1.0, seed=1).tolist() == [0.0] * 4\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_backend_is_registered_under_its_entry_point() -> None:
    names = {info.name: info for info in unidrop.list_backends()}
    assert names["torch"].distribution == "unidrop-torch"
    assert unidrop.get_backend("torch").abilities == unidrop.Abilities(autograd=True, jit=True)


@pytest.mark.parametrize(
    ("cls", "torch_cls", "shape", "dims"),
    [
        (unidrop_torch.Dropout, torch.nn.Dropout, (3, 8), ()),
        (unidrop_torch.Dropout1d, torch.nn.Dropout1d, (2, 3, 7), (2,)),
        (unidrop_torch.Dropout2d, torch.nn.Dropout2d, (2, 3, 4, 5), (2, 3)),
        (unidrop_torch.Dropout3d, torch.nn.Dropout3d, (2, 3, 2, 4, 3), (2, 3, 4)),
    ],
)
def test_modules_are_instances_of_the_torch_classes(
    cls: type, torch_cls: type, shape: tuple[int, ...], dims: tuple[int, ...]
) -> None:
    """Code that finds dropout layers by type finds ours; setting ``p`` on them takes effect."""
    layer = cls(0.5, seed=4)
    assert isinstance(layer, torch_cls)
    assert isinstance(layer, torch.nn.Dropout) == (torch_cls is torch.nn.Dropout)  # as in torch
    assert (layer.p, layer.inplace) == (0.5, False)
    assert repr(layer) == f"{cls.__name__}(p=0.5, inplace=False, seed=4)"
    model = torch.nn.Sequential(torch.nn.Identity(), layer).eval()
    for module in model.modules():  # MC dropout: dropout layers alone back in training, new p
        if isinstance(module, torch_cls):
            module.train()
            module.p = 0.25
    x = sample(shape, torch.float32, seed=3)
    assert_same(model(x), expected_output(x, 0.25, 4, 0, dims), "after setting p by type")
    layer.p = 1.5
    with pytest.raises(ValueError, match=r"1\.5"):
        model(x)


def test_repr_shows_non_default_broadcast_dims() -> None:
    wide = unidrop_torch.Dropout(0.1, broadcast_dims=1)
    assert repr(wide) == "Dropout(p=0.1, inplace=False, broadcast_dims=(1,))"
    assert repr(unidrop_torch.Dropout2d(0.1, stream=3)) == "Dropout2d(p=0.1, inplace=False, stream=3)"
