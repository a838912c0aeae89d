"""Seeds the JAX way: keys, raw keys, integers (also >= 2**32 without x64), traced values, errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import as_float64, expected, values_for

import unidrop

X = jnp.asarray(values_for((8, 12), "float32"), jnp.float32)


def reference_for(seed: int, stream: int = 0) -> np.ndarray:
    return expected(values_for((8, 12), "float32"), "float32", 0.5, seed, stream)[0]


def test_x64_is_off_in_this_process():
    assert not jax.config.jax_enable_x64


@pytest.mark.parametrize("n", [0, 42, 2**32 - 1])
def test_typed_and_raw_keys_from_n_give_the_mask_of_seed_n(n):
    want = reference_for(n)
    assert np.array_equal(as_float64(unidrop.dropout(X, 0.5, seed=jax.random.key(n))), want)
    assert np.array_equal(as_float64(unidrop.dropout(X, 0.5, seed=jax.random.PRNGKey(n))), want)


def test_key_data_a_b_is_seed_a_times_2_pow_32_plus_b():
    a, b = 0x89ABCDEF, 0x01234567
    raw = jnp.array([a, b], jnp.uint32)
    want = reference_for(a * 2**32 + b, stream=7)
    assert np.array_equal(as_float64(unidrop.dropout(X, 0.5, seed=raw, stream=7)), want)
    typed = jax.random.wrap_key_data(raw)
    assert np.array_equal(as_float64(unidrop.dropout(X, 0.5, seed=typed, stream=7)), want)


def test_philox_keys_are_read_the_same_way():
    key = jax.random.key(5, impl="philox4x32")
    data = np.asarray(jax.random.key_data(key)).astype(int)
    want = reference_for(int(data[0]) * 2**32 + int(data[1]))
    assert np.array_equal(as_float64(unidrop.dropout(X, 0.5, seed=key)), want)


@pytest.mark.parametrize("seed", [2**32, 2**40 + 3, 2**64 - 1])
def test_integer_seeds_and_streams_beyond_32_bits_without_x64(seed):
    got = unidrop.dropout(X, 0.5, seed=seed, stream=2**64 - 2)
    assert np.array_equal(as_float64(got), reference_for(seed, 2**64 - 2))


def test_traced_integer_seed_and_stream_and_traced_keys():
    f = jax.jit(lambda x, s, st: unidrop.dropout(x, 0.5, seed=s, stream=st))
    assert np.array_equal(as_float64(f(X, jnp.uint32(77), jnp.uint32(5))), reference_for(77, 5))
    assert np.array_equal(as_float64(f(X, jnp.int32(78), jnp.int32(6))), reference_for(78, 6))
    g = jax.jit(lambda x, k: unidrop.dropout(x, 0.5, seed=k))
    assert np.array_equal(as_float64(g(X, jax.random.key(9))), reference_for(9))
    assert np.array_equal(as_float64(g(X, jnp.array([1, 2], jnp.uint32))), reference_for(2**32 + 2))


def test_numpy_integer_scalars_are_seeds():
    assert np.array_equal(as_float64(unidrop.dropout(X, 0.5, seed=np.uint64(2**63))), reference_for(2**63))
    assert np.array_equal(as_float64(unidrop.dropout(X, 0.5, seed=jnp.uint32(8))), reference_for(8))


def test_no_seed_raises_a_clear_error():
    with pytest.raises(ValueError, match=r"explicit randomness.*jax\.random\.key"):
        unidrop.dropout(X, 0.5)


@pytest.mark.parametrize(
    ("seed", "error", "match"),
    [
        (-1, ValueError, r"seed must be an integer in \[0, 2\*\*64\), got -1"),
        (2**64, ValueError, r"got 18446744073709551616"),
        (1.5, TypeError, r"seed must be an integer.*1\.5"),
        (jnp.int32(-3), ValueError, r"got -3"),
        (jnp.zeros((3,), jnp.uint32), TypeError, r"shape \(3,\)"),
        (jnp.zeros((2,), jnp.int32), TypeError, r"dtype int32"),
        (jnp.float32(1.0), TypeError, r"dtype float32"),
    ],
    ids=["negative", "too-big", "float", "negative-array", "three-words", "int32-pair", "float-array"],
)
def test_bad_seeds_are_named(seed, error, match):
    with pytest.raises(error, match=match):
        unidrop.dropout(X, 0.5, seed=seed)


def test_a_batch_of_keys_outside_vmap_is_refused_with_advice():
    with pytest.raises(TypeError, match=r"jax\.vmap"):
        unidrop.dropout(X, 0.5, seed=jax.random.split(jax.random.key(0), 3))


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_rbg_keys_are_refused_by_name_saying_what_works(impl):
    """One rbg key is not a batch: the message names the implementation and the way out."""
    with pytest.raises(
        TypeError, match=rf"a {impl} key holds \(4,\) words and is not supported.*impl='threefry2x32'"
    ) as info:
        unidrop.dropout(X, 0.5, seed=jax.random.key(0, impl=impl))
    assert "batch" not in str(info.value)


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_raw_rbg_keys_are_refused_by_name_saying_what_works(impl):
    raw = jax.random.key_data(jax.random.key(0, impl=impl))  # what PRNGKey(0) gives under that impl
    with pytest.raises(
        TypeError, match=r"uint32\[4\] array, the shape of a raw rbg or unsafe_rbg key .*impl='threefry2x32'"
    ):
        unidrop.dropout(X, 0.5, seed=raw)


def test_a_key_as_stream_is_refused():
    with pytest.raises(TypeError, match="keys go in seed="):
        unidrop.dropout(X, 0.5, seed=1, stream=jax.random.key(0))


def pair(n: int) -> np.ndarray:
    """``n`` as the uint32[2] pair (high word, low word)."""
    return np.array([n >> 32, n & 0xFFFFFFFF], np.uint32)


def test_uint32_pairs_are_64_bit_streams_also_traced_without_x64():
    stream = 2**40 + 5
    got = unidrop.dropout(X, 0.5, seed=3, stream=pair(stream))
    assert np.array_equal(as_float64(got), reference_for(3, stream))
    f = jax.jit(lambda x, st: unidrop.dropout(x, 0.5, seed=3, stream=st))
    for n in (0, 7, 2**32, stream, 2**64 - 1):
        assert np.array_equal(as_float64(f(X, jnp.asarray(pair(n)))), reference_for(3, n))
    pairs = jnp.asarray([pair(1), pair(2**33)])
    batch = jax.vmap(lambda st: unidrop.dropout(X, 0.5, seed=3, stream=st))(pairs)
    assert np.array_equal(as_float64(batch[0]), reference_for(3, 1))
    assert np.array_equal(as_float64(batch[1]), reference_for(3, 2**33))


def test_static_integers_of_any_size_under_jit_and_traced_pairs_for_seeds():
    f = jax.jit(lambda x: unidrop.dropout(x, 0.5, seed=2**63 + 1, stream=2**40))  # closed over: static
    assert np.array_equal(as_float64(f(X)), reference_for(2**63 + 1, 2**40))
    g = jax.jit(lambda x, s: unidrop.dropout(x, 0.5, seed=s))
    assert np.array_equal(as_float64(g(X, jnp.asarray(pair(2**50 + 1)))), reference_for(2**50 + 1))
    h = jax.jit(lambda x, st: unidrop.dropout(x, 0.5, seed=1, stream=st))
    assert np.array_equal(as_float64(h(X, 2**31 - 1)), reference_for(1, 2**31 - 1))  # a Python int argument


@pytest.mark.parametrize(
    ("stream", "match"),
    [
        (jnp.zeros((3,), jnp.uint32), r"stream must be .*uint32\[2\].*shape \(3,\)"),
        (jnp.zeros((2,), jnp.int32), r"stream must be .*dtype int32"),
    ],
    ids=["three-words", "int32-pair"],
)
def test_bad_streams_are_named(stream, match):
    with pytest.raises(TypeError, match=match):
        unidrop.dropout(X, 0.5, seed=1, stream=stream)


class Index:
    """An integer-like object of another library (as ``torch.tensor(3)`` is): it has ``__index__`` only."""

    def __init__(self, value, dtype="torch.int64"):
        self.value, self.dtype = value, dtype

    def __index__(self):
        return self.value


class BrokenIndex:
    """An object whose ``__index__`` fails with an error other than TypeError."""

    def __index__(self):
        raise RuntimeError("a multi-element tensor cannot be converted to an index")


@pytest.mark.parametrize(
    "make",
    [Index, np.uint64, np.int16, lambda n: np.array(n, np.uint64)],
    ids=["Index", "uint64", "int16", "0-d-uint64-array"],  # stable ids: pytest-xdist's workers compare them
)
def test_any_integer_with_index_is_a_seed_and_a_stream(make):
    got = unidrop.dropout(X, 0.5, seed=make(41), stream=make(6))
    assert np.array_equal(as_float64(got), reference_for(41, 6))
    big = Index(2**64 - 1)
    assert np.array_equal(
        as_float64(unidrop.dropout(X, 0.5, seed=big, stream=big)), reference_for(2**64 - 1, 2**64 - 1)
    )


@pytest.mark.parametrize("what", ["seed", "stream"])
@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (Index(2**64), ValueError, r"must be an integer in \[0, 2\*\*64\), got 18446744073709551616"),
        (Index(-1), ValueError, r"must be an integer in \[0, 2\*\*64\), got -1"),
        (Index(1, dtype="torch.bool"), TypeError, r"must be an integer .*bool"),
        (np.bool_(True), TypeError, r"must be an integer .*True"),
        (True, TypeError, r"must be an integer .*True"),
        (BrokenIndex(), TypeError, r"must be an integer .*BrokenIndex"),
        ("3", TypeError, r"must be an integer .*'3'"),
        (2.0, TypeError, r"must be an integer .*2\.0"),
        (object(), TypeError, r"must be an integer .*object"),
    ],
    ids=[
        "too-big",
        "negative",
        "bool-tensor",
        "numpy-bool",
        "bool",
        "broken-index",
        "str",
        "float",
        "object",
    ],
)
def test_bad_integer_likes_are_named_never_an_internal_error(what, value, error, match):
    kwargs = {"seed": 1, "stream": 0, what: value}
    with pytest.raises(error, match=f"^{what} {match}"):
        unidrop.dropout(X, 0.5, **kwargs)
