"""unidrop_jax.nnx.AlphaDropout and DropPath: flax.nnx.Dropout's conventions, the family's values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import values_for

nnx = pytest.importorskip("flax.nnx")
optax = pytest.importorskip("optax")
from unidrop_jax import nnx as unnx  # noqa: E402

from unidrop import reference  # noqa: E402

VALUES = values_for((8, 6), "float32")
X = jnp.asarray(VALUES, jnp.float32)


def seed_of(key) -> int:
    a, b = (int(w) for w in np.asarray(jax.random.key_data(key)))
    return a * 2**32 + b


def assert_alpha(y, p: float, seed: int, stream: int = 0, dims=()) -> None:
    allowed, _ = reference.alpha_dropout(
        list(VALUES.reshape(-1)), VALUES.shape, "float32", p, seed, stream, dims
    )
    got = np.asarray(y, np.float64).reshape(-1).tolist()
    bad = [i for i, (g, pair) in enumerate(zip(got, allowed, strict=True)) if g not in pair]
    assert not bad, bad[:5]


def expected_path(p: float, seed: int, stream: int = 0, scale_by_keep: bool = True) -> np.ndarray:
    out, _ = reference.drop_path(
        list(VALUES.reshape(-1)), VALUES.shape, "float32", p, seed, stream, scale_by_keep
    )
    return np.array(out).reshape(VALUES.shape)


def test_alpha_dropout_draws_keys_from_rngs_as_flax_dropout_does() -> None:
    ours, flax_layer = (
        unnx.AlphaDropout(0.3, rngs=nnx.Rngs(dropout=3)),
        nnx.Dropout(0.3, rngs=nnx.Rngs(dropout=3)),
    )
    for _ in range(2):
        assert_alpha(ours(X), 0.3, seed_of(flax_layer.rngs()))
    assert_alpha(unnx.AlphaDropout(0.3, broadcast_dims=(0,))(X, rngs=jax.random.key(5)), 0.3, 5, 0, (0,))
    assert_alpha(unnx.AlphaDropout(0.3, seed=9, stream=4)(X), 0.3, 9, 4)


def test_alpha_dropout_train_eval_and_extreme_rates() -> None:
    layer = unnx.AlphaDropout(0.5, rngs=nnx.Rngs(0))
    assert layer(X, deterministic=True) is X
    layer.eval()
    assert layer(X) is X and nnx.view(layer, deterministic=False).deterministic is False
    assert unnx.AlphaDropout(0.0)(X) is X
    assert np.array_equal(np.asarray(unnx.AlphaDropout(1.0)(X)), np.zeros(VALUES.shape))
    with pytest.raises(ValueError, match="No `deterministic` argument"):
        unnx.AlphaDropout(0.5, deterministic=None)(X)
    with pytest.raises(ValueError, match="no `rngs` argument"):
        unnx.AlphaDropout(0.5)(X)
    with pytest.raises(ValueError, match=r"^rate \(the drop probability\) must be"):
        unnx.AlphaDropout(2.0)


def test_drop_path_values_and_arguments() -> None:
    layer = unnx.DropPath(0.25, seed=8)
    assert np.array_equal(np.asarray(layer(X), np.float64), expected_path(0.25, 8))
    unscaled = unnx.DropPath(0.25, scale_by_keep=False, seed=8)
    assert np.array_equal(np.asarray(unscaled(X), np.float64), expected_path(0.25, 8, 0, False))
    key = nnx.Dropout(0.5, rngs=nnx.Rngs(dropout=2)).rngs()  # the key flax's layer would draw
    from_rngs = unnx.DropPath(0.5, rngs=nnx.Rngs(dropout=2))(X)
    assert np.array_equal(np.asarray(from_rngs, np.float64), expected_path(0.5, seed_of(key)))
    assert unnx.DropPath(0.5, deterministic=True)(X) is X
    with pytest.raises(TypeError, match="no broadcast_dims"):
        unnx.DropPath(0.5, broadcast_dims=(1,))
    with pytest.raises(TypeError, match="scale_by_keep must be True or False"):
        unnx.DropPath(0.5, scale_by_keep=None)


def test_family_layers_are_numbered_and_stepped_by_the_convention() -> None:
    class Net(nnx.Module):
        def __init__(self) -> None:
            self.alpha = nnx.Dropout(0.1)
            self.path = unnx.DropPath(0.2)
            self.selu = unnx.AlphaDropout(0.3)

    m = unnx.convert(Net(), seed=4)
    assert [(".".join(map(str, p)), layer.layer) for p, layer in unnx.dropout_layers(m)] == [
        ("alpha", 0),
        ("path", 1),
        ("selu", 2),
    ]
    unnx.set_step(m, 5)
    assert_alpha(m.selu(X), 0.3, 4, 5 * 2**32 + 2)
    assert np.array_equal(np.asarray(m.path(X), np.float64), expected_path(0.2, 4, 5 * 2**32 + 1))


def test_a_selu_model_with_alpha_dropout_and_drop_path_trains_under_nnx_jit() -> None:
    class Model(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.hidden = nnx.Linear(8, 32, rngs=rngs)
            self.drop = unnx.AlphaDropout(0.1, rngs=rngs)
            self.path = unnx.DropPath(0.1, rngs=rngs)
            self.out = nnx.Linear(32, 1, rngs=rngs)

        def __call__(self, x):
            h = jax.nn.selu(self.hidden(x))
            return self.out(self.drop(h) + self.path(h))

    m = Model(nnx.Rngs(params=0, dropout=1))
    optimizer = nnx.Optimizer(m, optax.sgd(0.02), wrt=nnx.Param)
    x = jax.random.normal(jax.random.key(1), (64, 8))
    target = x.sum(axis=1, keepdims=True)

    @nnx.jit
    def train_step(m, optimizer):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - target) ** 2))(m)
        optimizer.update(m, grads)
        return loss

    losses = [float(train_step(m, optimizer)) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0], losses
    assert m.drop.rngs.count[...] == 30  # a fresh key every step
