"""The layer-seed convention: each dropout layer's (seed, stream) from a base seed, the step and its number.

Two implementations of one model, in two frameworks, draw the same masks step after step when
every dropout layer uses, at training step ``step``::

    seed   = base_seed
    stream = step * 2**32 + layer

``layer`` is the layer's number in the model, and ``step`` and ``layer`` are integers in
[0, 2**32). ``unidrop_torch.convert`` and ``unidrop_jax.nnx.convert`` number a model's dropout
layers 0, 1, 2, ... in the order of their paths (:func:`path_key`: component by component,
numbers numerically, names alphabetically), which depends on the attribute names alone, not on
the order in which each framework registers or visits them; a port that keeps the names gets the
same numbers (docs/porting.md). Distinct (step, layer) pairs are distinct streams, hence independent
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
    except TypeError as error:  # not an integer: the same words, with this function's range
        raise TypeError(str(error).replace("[0, 2**64)", "[0, 2**32)")) from None
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


def path_key(parts: Iterable[object]) -> tuple[tuple[int, int | str], ...]:
    """The sort key that numbers layers: per component, numbers (ints or digit strings) before
    names, numbers numerically, names as strings.

    So ``("layers", 2)`` and ``"layers.2".split(".")`` sort alike, and ``layers.2`` before
    ``layers.10``.
    """
    key: list[tuple[int, int | str]] = []
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            key.append((0, part))
        elif isinstance(part, str) and part.isdecimal() and part.isascii():
            key.append((0, int(part)))
        else:
            key.append((1, str(part)))
    return tuple(key)


def torch_path(name: str) -> tuple[str, ...]:
    """The components of a torch module name (``"blocks.0.drop"``; ``""`` is the root)."""
    return tuple(name.split(".")) if name else ()
