"""A small model ported from PyTorch to Flax NNX draws the same masks, step after step.

Both implementations convert their dropout layers (``unidrop_torch.convert`` and
``unidrop_jax.nnx.convert``) with one base seed, and move them to each training step with
``set_step``: the layer-seed convention of ``unidrop.layer_seeds``. Starting from the same
weights, every dropout layer keeps the same elements in both frameworks (and the ones the
pure-Python reference keeps) at every step, and the outputs, losses and updated weights agree
to float32 rounding. The session ``nox -s porting`` runs this file (it needs torch and JAX).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import unidrop_torch
from flax import nnx
from torch import nn
from unidrop_jax import nnx as unidrop_nnx

from unidrop import layer_seeds, reference

BASE_SEED = 2**37 + 12345
RATES = (0.3, 0.2)
STEPS = 4
LEARNING_RATE = 0.1


class TorchMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.drop1 = nn.Dropout(RATES[0])
        self.fc2 = nn.Linear(16, 16)
        self.drop2 = nn.Dropout(RATES[1])
        self.head = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(torch.tanh(self.fc1(x)))
        x = self.drop2(torch.tanh(self.fc2(x)))
        return self.head(x)


class NnxMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.fc1 = nnx.Linear(8, 16, rngs=rngs)
        self.drop1 = nnx.Dropout(RATES[0], rngs=rngs)
        self.fc2 = nnx.Linear(16, 16, rngs=rngs)
        self.drop2 = nnx.Dropout(RATES[1], rngs=rngs)
        self.head = nnx.Linear(16, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, dict[str, tuple[jax.Array, jax.Array]]]:
        """The output, and each dropout layer's (input, output)."""
        h1 = jnp.tanh(self.fc1(x))
        d1 = self.drop1(h1)
        h2 = jnp.tanh(self.fc2(d1))
        d2 = self.drop2(h2)
        return self.head(d2), {"drop1": (h1, d1), "drop2": (h2, d2)}


def copy_weights(source: TorchMLP, target: NnxMLP) -> None:
    """torch's Linear holds (out, in) weights, NNX's (in, out) kernels."""
    for name in ("fc1", "fc2", "head"):
        linear = getattr(source, name)
        getattr(target, name).kernel[...] = jnp.asarray(linear.weight.detach().numpy().T)
        getattr(target, name).bias[...] = jnp.asarray(linear.bias.detach().numpy())


def reference_keep(h: np.ndarray, p: float, step: int, layer: int) -> np.ndarray:
    """The reference keep mask of layer ``layer`` at ``step``, for an input shaped like ``h``."""
    stream = layer_seeds.layer_stream(step, layer)
    _, keep = reference.dropout([0.0] * h.size, h.shape, "float32", p, BASE_SEED, stream)
    return np.array(keep, bool).reshape(h.shape)


@pytest.fixture
def models() -> tuple[TorchMLP, NnxMLP]:
    torch.manual_seed(0)
    ported = NnxMLP(nnx.Rngs(params=1, dropout=2))
    original = TorchMLP()
    copy_weights(original, ported)
    return unidrop_torch.convert(original, seed=BASE_SEED), unidrop_nnx.convert(ported, seed=BASE_SEED)


def test_the_two_ports_number_the_same_layers(models: tuple[TorchMLP, NnxMLP]) -> None:
    torch_model, nnx_model = models
    torch_layers = [(name, m.layer) for name, m in unidrop_torch.dropout_layers(torch_model)]
    nnx_layers = [
        (layer_seeds.layer_path(path), m.layer) for path, m in unidrop_nnx.dropout_layers(nnx_model)
    ]
    assert torch_layers == nnx_layers == [("drop1", 0), ("drop2", 1)]


def test_masks_are_identical_at_every_layer_and_step(models: tuple[TorchMLP, NnxMLP]) -> None:
    torch_model, nnx_model = models
    torch_optimizer = torch.optim.SGD(torch_model.parameters(), lr=LEARNING_RATE)
    nnx_optimizer = nnx.Optimizer(nnx_model, optax.sgd(LEARNING_RATE), wrt=nnx.Param)
    generator = np.random.default_rng(3)
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name in ("drop1", "drop2"):
        getattr(torch_model, name).register_forward_hook(
            lambda module, args, out, name=name: seen.__setitem__(name, (args[0].detach(), out.detach()))
        )

    def nnx_loss(model: NnxMLP, x: jax.Array, target: jax.Array) -> tuple[jax.Array, dict]:
        out, seen_by_layer = model(x)
        return jnp.mean((out - target) ** 2), seen_by_layer

    for step in range(STEPS):
        x = generator.standard_normal((32, 8)).astype(np.float32)
        target = np.sin(x.sum(axis=1, keepdims=True))
        unidrop_torch.set_step(torch_model, step)
        unidrop_nnx.set_step(nnx_model, step)

        torch_loss = nn.functional.mse_loss(torch_model(torch.from_numpy(x)), torch.from_numpy(target))
        torch_optimizer.zero_grad()
        torch_loss.backward()
        torch_optimizer.step()

        grad_fn = nnx.value_and_grad(nnx_loss, has_aux=True)
        (nnx_value, intermediates), grads = grad_fn(nnx_model, jnp.asarray(x), jnp.asarray(target))
        nnx_optimizer.update(nnx_model, grads)

        for layer, (name, rate) in enumerate(zip(("drop1", "drop2"), RATES, strict=True)):
            torch_in, torch_out = (t.numpy() for t in seen[name])
            nnx_in, nnx_out = (np.asarray(a) for a in intermediates[name])
            assert np.all(torch_in != 0) and np.all(nnx_in != 0)  # tanh: every drop shows in the output
            want = reference_keep(torch_in, rate, step, layer)
            assert np.array_equal(torch_out != 0, want), f"torch, {name}, step {step}"
            assert np.array_equal(nnx_out != 0, want), f"nnx, {name}, step {step}"
            np.testing.assert_allclose(
                nnx_out, torch_out, rtol=1e-5, atol=1e-6, err_msg=f"{name}, step {step}"
            )
        np.testing.assert_allclose(float(nnx_value), float(torch_loss.detach()), rtol=1e-5)
        for name in ("fc1", "fc2", "head"):
            np.testing.assert_allclose(
                np.asarray(getattr(nnx_model, name).kernel[...]),
                getattr(torch_model, name).weight.detach().numpy().T,
                rtol=1e-5,
                atol=1e-6,
                err_msg=f"{name} after step {step}",
            )


def test_masks_change_from_step_to_step(models: tuple[TorchMLP, NnxMLP]) -> None:
    """The step is in the stream: two steps give two masks (else the test above proves little)."""
    assert not np.array_equal(
        reference_keep(np.zeros((32, 16)), 0.3, 0, 0), reference_keep(np.zeros((32, 16)), 0.3, 1, 0)
    )
    torch_model, _ = models
    x = torch.ones(32, 8)
    unidrop_torch.set_step(torch_model, 0)
    first = torch_model(x)
    unidrop_torch.set_step(torch_model, 1)
    assert not torch.equal(first, torch_model(x))
