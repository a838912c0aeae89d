"""Seeds of unidrop's Keras layers: one (seed, stream) per call, the same on every Keras backend.

A layer owns a ``keras.random.SeedGenerator`` (a state variable ``[seed, count]``, saved with
the model and threaded through Keras' jitted steps). Each call in training takes the state
with ``next()``, which adds 1 to ``count``; the call's mask is unidrop's mask for
``seed=seed`` and ``stream=count``: the k-th training call (from 0) of a layer made with
``seed=S`` drops exactly what ``unidrop.dropout(x, rate, seed=S, stream=k)`` drops.
"""

from __future__ import annotations

from typing import Any

import keras

from unidrop.arguments import TWO_POW_32
from unidrop.philox import MASK32

_INT32_LIMIT = 1 << 31
#: Keras backends whose seed states are int32 (torch has no uint32 arithmetic); the others hold uint32.
_INT32_STATES = frozenset({"torch"})


class SeedTypeError(TypeError, ValueError):
    """A seed that is not an int: a TypeError, and the ValueError Keras' own layers raise for it,
    so that code written against ``keras.layers.Dropout(seed=...)`` catches it as before."""


def check_seed(seed: Any) -> int | None:
    """Return ``seed`` if it is None or an int in [0, 2**32); raise naming it otherwise.

    The range is what a Keras seed state holds on every backend (uint32 words; int32 bit
    patterns on torch), so a layer's seed means the same mask everywhere.
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SeedTypeError(
            f"seed must be None or an int in [0, 2**32), got {seed!r} of type {type(seed).__name__}"
        )
    if not 0 <= seed < TWO_POW_32:
        raise ValueError(f"seed must be None or an int in [0, 2**32), got {seed}")
    return seed


def generator_seed(seed: int | None) -> int | None:
    """The int to give ``keras.random.SeedGenerator`` for ``seed``: its bit pattern in the state's dtype.

    Keras' torch backend keeps seed states as int32: a seed of 2**31 or more is passed as the
    negative int32 with the same bits (read back by :func:`seed_and_stream`).
    """
    if seed is not None and keras.backend.backend() in _INT32_STATES and seed >= _INT32_LIMIT:
        return seed - TWO_POW_32
    return seed


def seed_and_stream(state: Any) -> tuple[Any, Any]:
    """(seed, stream) of one call, from a seed state ``[seed, count]`` as ``SeedGenerator.next()`` returns it.

    On JAX the two uint32 words are passed as they are (traced values under ``jit``: the JAX
    backend of unidrop takes traced integer seeds); elsewhere they are read as Python ints, each
    word's 32 bits taken as unsigned.
    """
    if keras.backend.backend() == "jax":
        return state[0], state[1]
    if getattr(state, "is_meta", False) is True:  # torch's shape inference (meta tensors): no values,
        return 0, 0  # and none needed, the result being meta too
    words = keras.ops.convert_to_numpy(state).tolist()
    return int(words[0]) & MASK32, int(words[1]) & MASK32
