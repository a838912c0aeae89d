"""unidrop_jax.nnx.Dropout behaves like flax.nnx.Dropout, with unidrop's mask."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import as_float64, expected, same_bits, values_for

nnx = pytest.importorskip("flax.nnx")
from unidrop_jax.nnx import Dropout  # noqa: E402

VALUES = values_for((4, 16), "float32")
X = jnp.asarray(VALUES, jnp.float32)


def seed_of(key) -> int:
    a, b = (int(w) for w in np.asarray(jax.random.key_data(key)))
    return a * 2**32 + b


def test_keys_come_from_rngs_in_the_same_order_as_flax():
    ours, theirs = Dropout(0.5, rngs=nnx.Rngs(dropout=3)), nnx.Dropout(0.5, rngs=nnx.Rngs(dropout=3))
    for _ in range(3):
        key = theirs.rngs()  # the key flax's layer would draw next
        want = expected(VALUES, "float32", 0.5, seed_of(key))[0]
        assert same_bits(as_float64(ours(X)), want)


def test_train_eval_and_deterministic_arguments():
    layer = Dropout(0.5, rngs=nnx.Rngs(0))
    assert layer(X, deterministic=True) is X
    layer.eval()
    assert layer.deterministic is True and layer(X) is X
    assert not np.array_equal(np.asarray(layer(X, deterministic=False)), VALUES)
    layer.train()
    assert layer.deterministic is False
    assert nnx.view(layer, deterministic=True)(X) is X
    with pytest.raises(ValueError, match="deterministic"):
        Dropout(0.5, deterministic=None, rngs=nnx.Rngs(0))(X)


def test_a_key_or_stream_at_call_time_and_missing_rngs():
    layer = Dropout(0.25, broadcast_dims=(0,))
    key = jax.random.key(2**31 + 1)
    want = expected(VALUES, "float32", 0.25, 2**31 + 1, 0, (0,))[0]
    assert same_bits(as_float64(layer(X, rngs=key)), want)
    stream = nnx.Rngs(dropout=7)
    expected_key = nnx.Rngs(dropout=7).dropout()
    assert same_bits(
        as_float64(layer(X, rngs=stream)),
        expected(VALUES, "float32", 0.25, seed_of(expected_key), 0, (0,))[0],
    )
    with pytest.raises(ValueError, match="rngs"):
        layer(X)
    assert Dropout(0.0)(X) is X


def test_inside_a_model_under_nnx_jit_and_grad():
    class Model(nnx.Module):
        def __init__(self, rngs):
            self.linear = nnx.Linear(16, 8, rngs=rngs)
            self.drop = Dropout(0.5, rngs=rngs)

        def __call__(self, x):
            return self.drop(self.linear(x))

    model = Model(nnx.Rngs(params=0, dropout=1))

    @nnx.jit
    def loss_and_grad(model, x):
        return nnx.value_and_grad(lambda m: jnp.sum(m(x) ** 2))(model)

    first, grads = loss_and_grad(model, X)
    second, _ = loss_and_grad(model, X)
    assert float(first) != float(second)  # a fresh key each step
    assert jnp.all(jnp.isfinite(grads.linear.kernel[...]))
    model.eval()
    assert float(loss_and_grad(model, X)[0]) == float(loss_and_grad(model, X)[0])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"^rate \(the drop probability\) must be .*in \[0, 1\], got 1\.5"):
        Dropout(1.5, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"^rate .*nan"):
        Dropout(float("nan"))
    with pytest.raises(TypeError, match=r"^rate .*'0\.5'"):
        Dropout("0.5")
    with pytest.raises(TypeError, match="rngs"):
        Dropout(0.5, rngs=3)
