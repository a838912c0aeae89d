"""unidrop_jax.nnx.convert, set_step and the layer-seed convention on Flax NNX models."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import as_float64, expected, same_bits, values_for

nnx = pytest.importorskip("flax.nnx")
optax = pytest.importorskip("optax")
from unidrop_jax import nnx as unnx  # noqa: E402

from unidrop import layer_seeds  # noqa: E402

VALUES = values_for((4, 6), "float32")
X = jnp.asarray(VALUES, jnp.float32)


class Block(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.linear = nnx.Linear(6, 6, rngs=rngs)
        self.drop = nnx.Dropout(0.3, rngs=rngs)

    def __call__(self, x):
        return self.drop(self.linear(x))


class Model(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.zfirst = nnx.Linear(6, 6, rngs=rngs)
        self.drop = nnx.Dropout(0.25, broadcast_dims=(0,), rngs=rngs)
        self.blocks = nnx.List([Block(rngs) for _ in range(11)])
        self.named = nnx.Dict({"d": nnx.Dropout(0.5, deterministic=True)})

    def __call__(self, x):
        x = self.drop(self.zfirst(x))
        for block in self.blocks:
            x = block(x)
        return self.named["d"](x)


def model() -> Model:
    return Model(nnx.Rngs(params=0, dropout=1))


def test_every_flax_dropout_is_replaced_keeping_its_settings() -> None:
    m = model()
    before = {
        path: (node.rate, node.broadcast_dims, node.deterministic, node.rngs)
        for path, node in nnx.iter_graph(m)
        if isinstance(node, nnx.Dropout)
    }
    params = jax.tree.map(np.asarray, nnx.state(m, nnx.Param))
    assert unnx.convert(m) is m
    after = {path: node for path, node in nnx.iter_graph(m) if isinstance(node, nnx.Dropout | unnx.Dropout)}
    assert sorted(after) == sorted(before) and len(after) == 13
    for path, layer in after.items():
        assert type(layer) is unnx.Dropout, path
        rate, dims, deterministic, rngs = before[path]
        assert (layer.rate, layer.broadcast_dims, layer.deterministic) == (rate, dims, deterministic)
        assert layer.rngs is rngs, path  # the same stream, not a fork
        assert layer.seed is None and layer.layer is None
    same = jax.tree.map(np.array_equal, params, jax.tree.map(np.asarray, nnx.state(m, nnx.Param)))
    assert all(jax.tree.leaves(same))


def test_keys_continue_as_flax_would_have_drawn_them() -> None:
    theirs, ours = nnx.Dropout(0.5, rngs=nnx.Rngs(dropout=3)), nnx.Dropout(0.5, rngs=nnx.Rngs(dropout=3))
    ours = unnx.convert(ours)
    assert isinstance(ours, unnx.Dropout)
    for _ in range(2):
        key = theirs.rngs()
        a, b = (int(w) for w in np.asarray(jax.random.key_data(key)))
        assert same_bits(as_float64(ours(X)), expected(VALUES, "float32", 0.5, a * 2**32 + b)[0])


def test_a_shared_layer_stays_shared_and_subclasses_are_left_with_a_warning() -> None:
    class MyDropout(nnx.Dropout):
        pass

    class Shared(nnx.Module):
        def __init__(self) -> None:
            self.a = nnx.Dropout(0.5)
            self.b = self.a
            self.mine = MyDropout(0.5)

    m = Shared()
    with pytest.warns(UserWarning, match=r"left these dropout layers as they are .*: mine \(.*MyDropout\)"):
        unnx.convert(m)
    assert m.a is m.b and type(m.a) is unnx.Dropout and type(m.mine) is MyDropout


def test_bad_arguments_are_named() -> None:
    with pytest.raises(TypeError, match=r"convert needs a flax\.nnx\.Module, got list"):
        unnx.convert([nnx.Dropout(0.5)])
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*64\), got -1"):
        unnx.convert(nnx.Dropout(0.5), seed=-1)
    with pytest.raises(ValueError, match="set_step found no numbered unidrop dropout layer"):
        unnx.set_step(unnx.convert(model()), 1)
    with pytest.raises(ValueError, match=r"step must be an integer in \[0, 2\*\*32\), got -1"):
        unnx.set_step(unnx.convert(model(), seed=1), -1)
    numbered = unnx.convert(model(), seed=1)
    for bad in (jnp.float32(2.7), jnp.arange(2)):  # never truncated or flattened into a step
        with pytest.raises(TypeError, match=r"step must be an integer .* got an array of shape"):
            unnx.set_step(numbered, bad)
    with pytest.raises(TypeError, match=r"step must be an integer in \[0, 2\*\*32\), got 1.5 of type float"):
        unnx.set_step(numbered, 1.5)
    with pytest.raises(TypeError, match=r"layer must be an integer in \[0, 2\*\*32\), got 1.5 of type float"):
        unnx.Dropout(0.3, seed=1, layer=1.5)
    with pytest.raises(ValueError, match=r"layer=1 numbers the layer .* needs a seed"):
        unnx.Dropout(0.5, layer=1)
    with pytest.raises(ValueError, match=r"layer must be an integer in \[0, 2\*\*32\)"):
        unnx.Dropout(0.5, seed=1, layer=2**32)


class Stacked(nnx.Module):
    """Flax's scan-over-layers pattern: four blocks made by nnx.vmap, run by nnx.scan."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        @nnx.split_rngs(splits=4)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def make(rngs: nnx.Rngs) -> Block:
            return Block(rngs)

        self.blocks = make(rngs)

    def __call__(self, x):
        @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
        def step(x, block):
            return block(x)

        return step(x, self.blocks)


def test_stacked_layers_are_refused_numbers_and_converted_without_them() -> None:
    stacked = Stacked(nnx.Rngs(params=0, dropout=1))
    with pytest.raises(ValueError, match=r"blocks\.drop: it stands for stacked layers .* shape \(4,\)"):
        unnx.convert(stacked, seed=5)
    assert type(stacked.blocks.drop) is nnx.Dropout  # refused before anything was replaced
    flax_y = Stacked(nnx.Rngs(params=0, dropout=1))(X)
    converted = unnx.convert(stacked)
    assert type(converted.blocks.drop) is unnx.Dropout
    assert converted(X).shape == flax_y.shape


def test_layers_are_numbered_by_path_as_in_torch() -> None:
    m = unnx.convert(model(), seed=2**40 + 3)
    paths = [layer_seeds.layer_path(path) for path, _ in unnx.dropout_layers(m)]
    assert paths == [*(f"blocks.{i}.drop" for i in range(11)), "drop", "named.d"]
    layers = [layer for _, layer in unnx.dropout_layers(m)]
    assert [(layer.seed, layer.layer) for layer in layers] == [(2**40 + 3, i) for i in range(13)]


def test_each_layer_draws_the_mask_of_its_step_and_number() -> None:
    class Two(nnx.Module):
        def __init__(self) -> None:
            self.a = nnx.Dropout(0.5)
            self.b = nnx.Dropout(0.25, broadcast_dims=(1,))

        def __call__(self, x):
            return self.b(self.a(x))

    m = unnx.convert(Two(), seed=2**33 + 11)
    forward = nnx.jit(lambda m, x: m(x))
    for step in (0, 1, 2**32 - 1):
        unnx.set_step(m, step)
        hidden = expected(VALUES, "float32", 0.5, 2**33 + 11, layer_seeds.layer_stream(step, 0))[0]
        want = expected(hidden, "float32", 0.25, 2**33 + 11, layer_seeds.layer_stream(step, 1), (1,))[0]
        assert same_bits(as_float64(m(X)), want), step
        assert same_bits(as_float64(forward(m, X)), want), step


def test_set_step_inside_jit_is_state_and_does_not_retrace() -> None:
    m = unnx.convert(nnx.Dropout(0.5), seed=5)
    traces = 0

    @nnx.jit
    def step_and_apply(m, x, step):
        nonlocal traces
        traces += 1
        unnx.set_step(m, step)
        return m(x)

    for step in range(3):
        out = step_and_apply(m, X, jnp.uint32(step))
        assert same_bits(as_float64(out), expected(VALUES, "float32", 0.5, 5, step * 2**32)[0])
    assert traces == 1 and int(m.step[...]) == 2


def test_layer_argument_and_seed_without_layer() -> None:
    layer = unnx.Dropout(0.5, seed=3, layer=2)
    assert same_bits(as_float64(layer(X)), expected(VALUES, "float32", 0.5, 3, 2)[0])
    fixed = unnx.Dropout(0.5, seed=3, stream=9)
    assert same_bits(as_float64(fixed(X)), expected(VALUES, "float32", 0.5, 3, 9)[0])
    key = jax.random.key(7)  # a call's rngs win over the layer's seed
    assert same_bits(as_float64(fixed(X, rngs=key)), expected(VALUES, "float32", 0.5, 7, 9)[0])
    assert layer(X, deterministic=True) is X


def test_a_converted_model_trains_for_a_few_steps() -> None:
    class MLP(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.hidden = nnx.Linear(8, 16, rngs=rngs)
            self.drop = nnx.Dropout(0.2, rngs=rngs)
            self.out = nnx.Linear(16, 1, rngs=rngs)

        def __call__(self, x):
            return self.out(self.drop(jax.nn.relu(self.hidden(x))))

    m = unnx.convert(MLP(nnx.Rngs(0)), seed=5)
    optimizer = nnx.Optimizer(m, optax.sgd(0.05), wrt=nnx.Param)
    x = jax.random.normal(jax.random.key(1), (64, 8))
    target = x.sum(axis=1, keepdims=True)

    @nnx.jit
    def train_step(m, optimizer, step):
        unnx.set_step(m, step)
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - target) ** 2))(m)
        optimizer.update(m, grads)
        return loss

    losses = [float(train_step(m, optimizer, jnp.uint32(step))) for step in range(30)]
    assert losses[-1] < 0.5 * losses[0], losses
    m.eval()
    assert np.array_equal(np.asarray(m(x)), np.asarray(m(x)))


class Holder(nnx.Module):
    """One layer in a submodule, visited first, and one in a tuple, which convert cannot replace."""

    def __init__(self) -> None:
        self.a = nnx.Sequential(nnx.Dropout(0.5, rngs=nnx.Rngs(0)))
        self.z = nnx.data((nnx.Dropout(0.5, rngs=nnx.Rngs(1)),))


def test_a_refused_convert_changes_nothing() -> None:
    """The tuple is refused before any layer is replaced, as porting.md promises."""
    holder = Holder()
    with pytest.raises(TypeError, match=r"held in a tuple .* nothing was changed"):
        unnx.convert(holder)
    assert type(holder.a.layers[0]) is nnx.Dropout and type(holder.z[0]) is nnx.Dropout


class Box(nnx.Pytree):
    """A plain nnx.Pytree (not a Module) holding a layer."""

    def __init__(self) -> None:
        self.drop = nnx.Dropout(0.5, rngs=nnx.Rngs(2))


class Boxed(nnx.Module):
    def __init__(self) -> None:
        self.box = Box()
        self.other = nnx.Dropout(0.5, rngs=nnx.Rngs(3))


def test_a_layer_in_a_plain_pytree_is_replaced_and_numbered() -> None:
    boxed = unnx.convert(Boxed(), seed=4)
    assert type(boxed.box.drop) is unnx.Dropout
    assert [(path, layer.layer) for path, layer in unnx.dropout_layers(boxed)] == [
        (("box", "drop"), 0),
        (("other",), 1),
    ]


class Attending(nnx.Module):
    def __init__(self, rate: float) -> None:
        rngs = nnx.Rngs(0)
        self.attn = nnx.MultiHeadAttention(2, 4, dropout_rate=rate, decode=False, rngs=rngs)
        self.drop = nnx.Dropout(0.1, rngs=rngs)


def test_attention_dropout_that_cannot_be_replaced_is_named_in_a_warning() -> None:
    with pytest.warns(
        UserWarning, match=r"attention dropout of these flax\.nnx\.MultiHeadAttention layers.*: attn;"
    ):
        converted = unnx.convert(Attending(0.1), seed=1)
    assert type(converted.drop) is unnx.Dropout
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unnx.convert(Attending(0.0), seed=1)


def test_keys_given_at_call_time_to_a_numbered_layer_warn() -> None:
    """They take precedence (as the class says); a numbered layer then does not follow set_step."""
    layer = unnx.Dropout(0.5, seed=3, layer=0)
    with pytest.warns(UserWarning, match=r"numbered layer 0 \(seed=3\) got rngs= at call time"):
        layer(X, rngs=nnx.Rngs(dropout=5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(X)  # the layer seed: no warning
        unnx.Dropout(0.5, seed=3)(X, rngs=nnx.Rngs(dropout=5))  # not numbered: no warning
