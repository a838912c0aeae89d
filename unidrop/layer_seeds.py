"""The layer-seed convention: each dropout layer's (seed, stream) from a base seed, the step and its number.

Two implementations of one model, in two frameworks, draw the same masks step after step when
every dropout layer uses, at training step ``step``::

    seed   = base_seed
    stream = step * 2**32 + layer

``layer`` is the layer's number in the model (0, 1, 2, ... in the order both implementations
agree on: ``unidrop_torch.convert`` and ``unidrop_jax.nnx.convert`` number them in the order
they list the model's dropout layers, see docs/porting.md), and ``step`` and ``layer`` are
integers in [0, 2**32). Distinct (step, layer) pairs are distinct streams, hence independent
masks; the seed is the same for the whole run. The stream's two 32-bit words are ``(step,
layer)``, high word first: the ``uint32[2]`` form that unidrop's JAX backend takes as a stream,
so a traced step needs no 64-bit integers.

This module is pure Python and imports no framework.
"""

from __future__ import annotations

from collections.abc import Iterable

from .arguments import TWO_POW_32, check_uint64, show

#: The version of this convention; a change to the formulas above would be version 2.
CONVENTION_VERSION = 1


def check_uint32(value: object, what: str) -> int:
    """``value`` as an int if it is an integer in [0, 2**32); TypeError or ValueError naming it otherwise."""
    try:
        number = check_uint64(value, what)
    except ValueError:
        number = -1
    if not 0 <= number < TWO_POW_32:
        raise ValueError(f"{what} must be an integer in [0, 2**32), got {show(value)}")
    return number


def layer_stream(step: int, layer: int) -> int:
    """The stream of layer number ``layer`` at training step ``step``: ``step * 2**32 + layer``.

    Both must be integers in [0, 2**32); anything else raises naming the value.
    """
    return check_uint32(step, "step") * TWO_POW_32 + check_uint32(layer, "layer")


def layer_randomness(base_seed: int, step: int, layer: int) -> tuple[int, int]:
    """``(seed, stream)`` for layer number ``layer`` at step ``step`` of a run seeded ``base_seed``.

    ``base_seed`` must be an integer in [0, 2**64); ``step`` and ``layer`` in [0, 2**32).
    """
    return check_uint64(base_seed, "base_seed"), layer_stream(step, layer)


def stream_words(step: int, layer: int) -> tuple[int, int]:
    """The stream's two 32-bit words, high first: ``(step, layer)`` (the JAX ``uint32[2]`` form)."""
    return check_uint32(step, "step"), check_uint32(layer, "layer")


def layer_path(parts: Iterable[object]) -> str:
    """A layer's path as one dotted string: ``("blocks", 0, "drop")`` -> ``"blocks.0.drop"``.

    torch names submodules ``"blocks.0.drop"`` and Flax NNX gives ``("blocks", 0, "drop")``;
    both read the same here, so two implementations can check that they number the same layers.
    """
    return ".".join(str(part) for part in parts)
