"""Seeds the JAX way: keys, integer seeds and traced values, as (low, high) uint32 words.

The rule (documented in docs/jax.md):

* a typed key (``jax.random.key(...)``) or a raw key (``uint32[2]``, as from
  ``jax.random.PRNGKey``) with key data ``(a, b)`` means ``seed = a * 2**32 + b``, so
  ``jax.random.key(n)`` gives the mask of the integer ``seed=n`` (for n < 2**32, and for any
  n < 2**64 when ``jax_enable_x64`` is on);
* an integer (a Python or NumPy int, a scalar integer JAX/NumPy array, or any object with
  ``__index__``, such as ``torch.tensor(3)``; bools are refused) is the seed itself; a traced
  signed scalar is read modulo 2**32 (its bits), so keep traced seeds non-negative;
* ``stream`` is an integer or scalar integer array the same way, or a ``uint32[2]`` array
  ``(a, b)`` meaning ``a * 2**32 + b`` (the raw-key word order; the way to pass a traced
  stream of 2**32 or more without ``jax_enable_x64``); keys are not streams;
* no seed raises ValueError: JAX asks for explicit randomness, so unidrop does too.

Seeds and streams travel inside jitted code as two uint32 words; ``jax_enable_x64`` is
never required, even for seeds of 2**32 and above.
"""

from __future__ import annotations

import operator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from unidrop import arguments
from unidrop.philox import MASK32

NO_SEED_MESSAGE = (
    "the JAX backend of unidrop needs explicit randomness, as JAX does: pass "
    "seed=jax.random.key(n) (or a raw uint32[2] key, or an integer seed in [0, 2**64))"
)


class Words64(NamedTuple):
    """A 64-bit value as its (low, high) uint32 words: NumPy scalars or (traced) JAX scalars."""

    lo: Any
    hi: Any


def from_int(value: int) -> Words64:
    """The words of a Python int already checked to lie in [0, 2**64)."""
    return Words64(np.uint32(value & MASK32), np.uint32(value >> 32))


def _is_key(value: Any) -> bool:
    return isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key)


def _is_concrete(value: Any) -> bool:
    return not isinstance(value, jax.core.Tracer)


def _from_key_data(data: Any, what: str, origin: str) -> Words64:
    if data.shape != (2,):
        raise TypeError(
            f"{what}: a JAX key must hold 2 uint32 words (threefry2x32 or philox4x32 keys); got "
            f"{origin} with key data of shape {data.shape}. Pass one key, not a batch "
            "(use jax.vmap for a batch of keys)."
        )
    return Words64(data[1], data[0])


def _from_integer_array(value: Any, what: str) -> Words64:
    dtype = np.dtype(value.dtype)
    if _is_concrete(value):
        number = int(np.asarray(value))
        return from_int(arguments.check_uint64(number, what))
    if dtype.itemsize == 8:
        as_u64 = value.astype(jnp.uint64)
        low = (as_u64 & np.uint64(MASK32)).astype(jnp.uint32)
        return Words64(low, (as_u64 >> np.uint64(32)).astype(jnp.uint32))
    return Words64(value.astype(jnp.uint32), np.uint32(0))


def words(value: Any, what: str) -> Words64:
    """The (low, high) words of a seed or stream given as an int, an integer scalar array or a key.

    Keys are accepted only for ``what == "seed"``. Raises TypeError/ValueError naming the value.
    """
    if isinstance(value, Words64):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return from_int(arguments.check_uint64(value, what))
    if _is_key(value):
        if what != "seed":
            raise TypeError(f"{what} must be an integer in [0, 2**64), got a JAX key; keys go in seed=")
        if value.shape != ():
            raise TypeError(
                f"{what} must be a single JAX key, got a key array of shape {value.shape}; "
                "use jax.vmap to apply dropout with a batch of keys"
            )
        data = jax.random.key_data(value)
        if data.shape != (2,):  # one key of another implementation (rbg, unsafe_rbg): not a batch
            impl = jax.random.key_impl(value)
            raise TypeError(
                f"{what}: unidrop reads a JAX key's 2 uint32 words (threefry2x32 or philox4x32 keys); "
                f"a {impl} key holds {data.shape} words and is not supported. Pass an integer seed, "
                "or a key made with jax.random.key(n, impl='threefry2x32') (for flax: nnx.Rngs(dropout="
                "jax.random.key(n, impl='threefry2x32')), whatever jax_default_prng_impl says)"
            )
        return _from_key_data(data, what, f"a {jax.random.key_impl(value)} key")
    if isinstance(value, (jax.Array, np.ndarray)):
        dtype = np.dtype(value.dtype)
        if value.shape == (2,) and dtype == np.uint32:
            origin = "a raw uint32[2] key" if what == "seed" else "a uint32[2] pair"
            return _from_key_data(value, what, origin)
        if value.shape == () and jnp.issubdtype(dtype, jnp.integer) and dtype != np.bool_:
            return _from_integer_array(value, what)
        if what == "seed" and value.shape == (4,) and dtype == np.uint32:
            raise TypeError(
                "seed: got a uint32[4] array, the shape of a raw rbg or unsafe_rbg key "
                "(jax.random.PRNGKey(n) where jax_default_prng_impl is one of them); unidrop reads "
                "2-word keys only (a raw uint32[2] key) or integer seeds. Pass an "
                "integer seed, or a key made with jax.random.key(n, impl='threefry2x32')"
            )
        allowed = "an integer in [0, 2**64)" + (
            ", a JAX key, or a raw uint32[2] key"
            if what == "seed"
            else ", a scalar integer array, or a uint32[2] array (high word, low word)"
        )
        raise TypeError(f"{what} must be {allowed}; got an array of shape {value.shape} and dtype {dtype}")
    if value is None and what == "seed":
        raise ValueError(NO_SEED_MESSAGE)
    return from_int(index_of(value, what))


def _is_boolean(value: Any) -> bool:
    """True for Python and NumPy bools and for scalars with a bool dtype (``torch.bool``)."""
    if isinstance(value, (bool, np.bool_)):
        return True
    return str(getattr(value, "dtype", "")).rsplit(".", 1)[-1] in {"bool", "bool_"}


def index_of(value: Any, what: str) -> int:
    """An integer-like value of any library (anything with ``__index__``, e.g. ``torch.tensor(3)``) as an int.

    Bools are refused; any failure of ``__index__`` becomes a TypeError naming the value, and
    an integer outside [0, 2**64) a ValueError.
    """
    allowed = f"{what} must be an integer in [0, 2**64)"
    if _is_boolean(value):
        raise TypeError(f"{allowed}, got {value!r} (a bool)")
    try:
        number = operator.index(value)
    except Exception:
        raise TypeError(f"{allowed}, got {value!r} of type {type(value).__name__}") from None
    return arguments.check_uint64(number, what)
