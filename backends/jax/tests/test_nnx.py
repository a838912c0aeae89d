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
    with pytest.raises(TypeError, match="broadcast_dims must be a sequence of ints, got 'ab'"):
        Dropout(0.5, broadcast_dims="ab")
    with pytest.raises(ValueError, match=r"broadcast_dims repeats an axis: \(1, 1\)"):
        Dropout(0.5, broadcast_dims=(1, 1))
    assert Dropout(0.5, broadcast_dims=1).broadcast_dims == (1,)


# -- flax's own tests for nnx.Dropout (tests/nnx/nn/stochastic_test.py), adapted -------------
# Same calls and checks; only the class differs, and where flax compares two of its own layers
# the same comparison is made between two of ours (the stream is unidrop's).
NO_RNGS = "`deterministic` is False, but no `rngs` argument was provided to Dropout"


def test_flax_dropout_internal_rngs():
    n = 0
    m1 = Dropout(rate=0.5, deterministic=False, rngs=nnx.Rngs(dropout=0))
    m2 = Dropout(rate=0.5, deterministic=False)
    rngs2 = nnx.Rngs(dropout=0).fork()

    @nnx.jit
    def f(m, x, rngs=None):
        nonlocal n
        n += 1
        return m(x, rngs=rngs)

    x = jnp.ones((1, 10))
    assert m1.rngs is not None and m1.rngs.count[...] == 0
    y1 = f(m1, x)
    assert n == 1 and m1.rngs.count[...] == 1
    y2 = f(m2, x, rngs=rngs2)
    assert n == 2 and rngs2.dropout.count[...] == 1
    np.testing.assert_allclose(y1, y2)
    y1 = f(m1, x)
    assert m1.rngs.count[...] == 2
    y2 = f(m2, x, rngs=rngs2)
    assert rngs2.dropout.count[...] == 2
    np.testing.assert_allclose(y1, y2)
    assert n == 2


def test_flax_dropout_rng_override():
    m1 = Dropout(rate=0.5, deterministic=False, rngs=nnx.Rngs(dropout=0))
    m2 = Dropout(rate=0.5, deterministic=False, rngs=nnx.Rngs(dropout=1))
    x = jnp.ones((1, 10))
    y1, y2 = m1(x), m2(x)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(y1, y2)
    np.testing.assert_allclose(y1, m2(x, rngs=nnx.Rngs(dropout=0).fork()))


def test_flax_dropout_arg_override():
    m = Dropout(rate=0.5, deterministic=False)
    x = jnp.ones((1, 10))
    m(x, deterministic=True)
    m.set_attributes(deterministic=True)
    y = m(x)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(y, m(x, deterministic=False, rngs=nnx.Rngs(dropout=0)))
    m.set_attributes(deterministic=False)
    with pytest.raises(ValueError, match=NO_RNGS):
        m(x)


def test_flax_dropout_arg_override_view():
    m = Dropout(rate=0.5, deterministic=False)
    x = jnp.ones((1, 10))
    m(x, deterministic=True)
    new_m = nnx.view(m, deterministic=True)
    y = new_m(x)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(y, new_m(x, deterministic=False, rngs=nnx.Rngs(dropout=0)))
    new_m = nnx.view(m, deterministic=False)
    with pytest.raises(ValueError, match=NO_RNGS):
        new_m(x)


# -- the rest of flax.nnx.Dropout's behaviour, compared with flax itself -----------------------
def test_view_info_reads_set_view_as_for_flax_dropout():
    class Model(nnx.Module):
        def __init__(self, drop):
            self.linear = nnx.Linear(4, 4, rngs=nnx.Rngs(0))
            self.bn = nnx.BatchNorm(4, rngs=nnx.Rngs(0))
            self.drop = drop

    ours = nnx.view_info(Model(Dropout(0.5, rngs=nnx.Rngs(1))))
    theirs = nnx.view_info(Model(nnx.Dropout(0.5, rngs=nnx.Rngs(1))))
    assert ours == theirs
    assert "Dropout:\n  deterministic: bool | None = None\n    if True, disables dropout masking." in ours


def test_missing_deterministic_message_names_dropout_as_flax_does():
    with pytest.raises(ValueError, match="No `deterministic` argument was provided to Dropout"):
        Dropout(0.5, deterministic=None, rngs=nnx.Rngs(0))(X)


@pytest.mark.parametrize("layer", [Dropout, nnx.Dropout], ids=["unidrop", "flax"])
def test_rate_one_drops_everything_without_a_key(layer):
    """Like flax: zeros (+0, NaN and Inf included), no rngs needed, and no key drawn from them."""
    values = jnp.array([1.0, -2.0, jnp.nan, jnp.inf, -0.0], jnp.float32)
    y = layer(1.0)(values)  # no rngs at all
    assert np.array_equal(np.asarray(y), np.zeros(5)) and not np.signbit(np.asarray(y)).any()
    rngs = nnx.Rngs(dropout=0)
    with_rngs = layer(1.0, rngs=rngs)
    with_rngs(values)
    assert with_rngs.rngs.count[...] == 0  # nothing drawn
    grad = jax.grad(lambda v: jnp.sum(layer(1.0)(v)))(jnp.ones(3))
    assert np.array_equal(np.asarray(grad), np.zeros(3))
    assert layer(1.0)(values, deterministic=True) is values


@pytest.mark.parametrize("layer", [Dropout, nnx.Dropout], ids=["unidrop", "flax"])
def test_rate_zero_and_deterministic_return_the_input_without_rngs(layer):
    assert layer(0.0)(X) is X
    assert layer(0.5, deterministic=True)(X) is X
    assert layer(0.5)(X, deterministic=True) is X
    with pytest.raises(ValueError, match="No `deterministic` argument"):
        layer(0.0, deterministic=None)(X)  # deterministic is asked for first, at any rate


@pytest.mark.parametrize("layer", [Dropout, nnx.Dropout], ids=["unidrop", "flax"])
def test_bad_rngs_are_type_errors(layer):
    with pytest.raises(TypeError, match="rngs"):
        layer(0.5, rngs=jax.random.key(0))  # a key is a call argument, not a constructor one
    with pytest.raises(TypeError, match="rngs"):
        layer(0.5)(X, rngs=3)
