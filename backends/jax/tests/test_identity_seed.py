"""The identity path (p == 0, training=False) checks seed and stream too: seed=None is refused as always.

``JaxImplementation.check_randomness`` is the hook the core calls on that path
(``Implementation.check_randomness``); the end-to-end tests check that the core calls it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from unidrop_jax.implementation import JaxImplementation
from unidrop_jax.keys import NO_SEED_MESSAGE

import unidrop

X = jnp.ones((4, 8), jnp.float32)

BAD = [
    ({"seed": None}, ValueError, "needs explicit randomness"),
    ({"seed": 1.5}, TypeError, r"^seed must be an integer .*1\.5"),
    ({"seed": "3"}, TypeError, r"^seed must be an integer .*'3'"),
    ({"seed": True}, TypeError, r"^seed must be an integer .*True"),
    ({"seed": -1}, ValueError, r"^seed must be an integer in \[0, 2\*\*64\), got -1"),
    ({"seed": jnp.zeros((3,), jnp.uint32)}, TypeError, r"^seed must be .*shape \(3,\)"),
    ({"stream": 1.5}, TypeError, r"^stream must be an integer .*1\.5"),
    ({"stream": 2**64}, ValueError, r"^stream must be an integer in \[0, 2\*\*64\)"),
    ({"stream": jax.random.key(0)}, TypeError, "keys go in seed="),
]
IDS = ["none", "float", "str", "bool", "negative", "three-words", "float-stream", "big-stream", "key-stream"]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD, ids=IDS)
def test_check_randomness_refuses_what_dropout_refuses(kwargs, error, match):
    args = {"seed": 1, "stream": 0, **kwargs}
    with pytest.raises(error, match=match):
        JaxImplementation().check_randomness(args["seed"], args["stream"], X)
    with pytest.raises(error, match=match):  # the same error as the drawing path gives
        unidrop.dropout(X, 0.5, **args)


def test_check_randomness_gives_the_no_seed_message_of_the_drawing_path():
    with pytest.raises(ValueError) as identity:
        JaxImplementation().check_randomness(None, 0, X)
    with pytest.raises(ValueError) as drawing:
        unidrop.dropout(X, 0.5, seed=None)
    assert str(identity.value) == str(drawing.value) == NO_SEED_MESSAGE


@pytest.mark.parametrize(
    "seed",
    [0, 2**64 - 1, np.uint64(5), jax.random.key(3), jax.random.PRNGKey(3), jnp.uint32(7)],
    ids=["zero", "max", "numpy", "typed-key", "raw-key", "array"],
)
def test_check_randomness_accepts_every_seed_kind_and_returns_nothing(seed):
    assert JaxImplementation().check_randomness(seed, np.array([1, 2], np.uint32), X) is None
    assert JaxImplementation().check_randomness(seed, 2**64 - 1, X) is None


def test_check_randomness_accepts_traced_seeds_and_streams():
    def f(x, key, stream):
        JaxImplementation().check_randomness(key, stream, x)
        return x

    assert jax.jit(f)(X, jax.random.key(1), jnp.uint32(2)) is not None


@pytest.mark.parametrize("identity", [{"p": 0.0}, {"p": 0.5, "training": False}], ids=["p0", "eval"])
def test_dropout_refuses_seed_none_on_the_identity_path(identity):
    p = identity.pop("p")
    with pytest.raises(ValueError, match="needs explicit randomness"):
        unidrop.dropout(X, p, seed=None, **identity)
    assert unidrop.dropout(X, p, seed=jax.random.key(0), **identity) is X  # a valid seed: the input itself
