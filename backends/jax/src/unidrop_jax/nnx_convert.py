"""``unidrop_jax.nnx.convert``: a Flax NNX model's dropout layers replaced by unidrop's.

The NNX counterpart of ``unidrop_torch.convert``: :func:`convert` swaps every
``flax.nnx.Dropout`` for :class:`unidrop_jax.nnx.Dropout` keeping its settings and its key
stream, and with a base ``seed`` numbers the layers for the layer-seed convention of
:mod:`unidrop.layer_seeds`, in the same order as torch (by path); :func:`set_step` moves them to
a training step (docs/porting.md).
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from unidrop import arguments, layer_seeds

from .nnx import Dropout, LayerStep


def dropout_layers(model: Any) -> list[tuple[tuple[Any, ...], Dropout]]:
    """The unidrop dropout layers of ``model`` with their paths, in the order :func:`convert` numbers them.

    The order is the paths' (:func:`unidrop.layer_seeds.path_key`), as ``unidrop_torch``'s; a
    layer reached by several paths counts once, under the first that ``nnx.iter_graph`` gives.
    """
    found = [(tuple(path), node) for path, node in nnx.iter_graph(model) if isinstance(node, Dropout)]
    return sorted(found, key=lambda item: layer_seeds.path_key(item[0]))


def convert(model: Any, *, seed: int | None = None) -> Any:
    """Replace every ``flax.nnx.Dropout`` of ``model`` by unidrop's, in place; return the model.

    Each ``flax.nnx.Dropout`` (exactly that type) becomes a :class:`unidrop_jax.nnx.Dropout`
    with the same ``rate``, ``broadcast_dims``, ``deterministic``, ``rng_collection`` and
    ``rngs`` (the same stream, so the keys drawn next are the ones flax's layer would have
    drawn); a layer shared by several parents stays shared. Subclasses of ``flax.nnx.Dropout``
    are left as they are, with a warning naming them. If ``model`` is itself a dropout layer,
    its replacement is returned.

    ``seed=None`` keeps flax's convention (keys from ``rngs``). An integer ``seed`` gives every
    unidrop dropout layer of the result ``seed`` and its number 0, 1, 2, ... in
    :func:`dropout_layers` order (its path's), at step 0: the layer-seed convention of
    :mod:`unidrop.layer_seeds`; call :func:`set_step` at each step.
    """
    if not isinstance(model, nnx.Module):
        raise TypeError(f"convert needs a flax.nnx.Module, got {type(model).__qualname__}")
    base = None if seed is None else arguments.check_uint64(seed, "seed")
    if base is not None:  # before anything is replaced: a refused call leaves the model as it was
        _refuse_stacked_layers(model)
    result = _replacement(model) if type(model) is nnx.Dropout else model
    replaced: dict[int, Any] = {}
    skipped: list[str] = []
    for path, node in list(nnx.iter_graph(result)):
        if type(node) is nnx.Dropout:
            replaced[id(node)] = _replacement(node)
        elif isinstance(node, nnx.Dropout) and not isinstance(node, Dropout):
            skipped.append(f"{layer_seeds.layer_path(path) or '(the model)'} ({type(node).__qualname__})")
    # every swap is found (a layer in a tuple is refused here) before any is made: all or nothing
    swaps = [swap for _, node in list(nnx.iter_graph(result)) for swap in _swaps(node, replaced)]
    for container, where, new in swaps:
        if isinstance(container, nnx.Pytree):
            setattr(container, where, new)
        else:
            container[where] = new
    _warn_about_attention(result)
    if skipped:
        warnings.warn(
            "unidrop_jax.nnx.convert left these dropout layers as they are (unidrop has no layer for "
            f"their class): {', '.join(skipped)}",
            UserWarning,
            stacklevel=2,
        )
    if base is not None:
        for number, (_, layer) in enumerate(dropout_layers(result)):
            _number(layer, base, layer_seeds.check_uint32(number, "layer"))
    return result


def _refuse_stacked_layers(model: Any) -> None:
    """ValueError naming a dropout layer that stands for several stacked ones (``nnx.vmap`` made
    it for ``nnx.scan``: its key stream has a leading axis), which one layer number cannot number."""
    for path, node in nnx.iter_graph(model):
        if not isinstance(node, (nnx.Dropout, Dropout)):
            continue
        key = getattr(getattr(node, "rngs", None), "key", None)
        shape = () if key is None else tuple(jnp.shape(key[...]))
        if shape:
            raise ValueError(
                f"convert(model, seed=...) cannot number the dropout layer at "
                f"{layer_seeds.layer_path(path) or '(the model)'}: it stands for stacked layers (its "
                f"key stream has shape {shape}, as nnx.vmap makes layers for nnx.scan), and one layer "
                "number would give all of them the same mask. Call convert(model) without seed= "
                "(each stacked layer then draws its own keys, as Flax's do)"
            )


def _replacement(old: Any) -> Dropout:
    """unidrop's layer with ``old``'s settings and its very ``rngs`` stream (not a fork of it)."""
    new = Dropout(
        old.rate,
        broadcast_dims=old.broadcast_dims,
        deterministic=old.deterministic,
        rng_collection=old.rng_collection,
    )
    new.rngs = old.rngs
    return new


def _swaps(node: Any, replaced: dict[int, Any]) -> list[tuple[Any, Any, Any]]:
    """``(container, attribute or index or key, replacement)`` for each child of ``node`` that is a
    replaced layer; a TypeError for one that cannot be replaced (in a tuple)."""
    if isinstance(node, nnx.Pytree):  # a Module, or a plain nnx.Pytree holding layers
        return [
            (node, name, replaced[id(value)]) for name, value in vars(node).items() if id(value) in replaced
        ]
    if isinstance(node, (list, nnx.List)):
        return [
            (node, index, replaced[id(value)]) for index, value in enumerate(node) if id(value) in replaced
        ]
    if isinstance(node, (dict, nnx.Dict)):
        return [(node, key, replaced[id(value)]) for key, value in node.items() if id(value) in replaced]
    if isinstance(node, tuple) and any(id(value) in replaced for value in node):
        raise TypeError(
            "convert cannot replace a dropout layer held in a tuple (tuples are immutable): hold it "
            "in an attribute, an nnx.List or an nnx.Dict; nothing was changed"
        )
    return []


def _warn_about_attention(model: Any) -> None:
    """Warn, naming them, of the ``flax.nnx.MultiHeadAttention`` layers that drop out attention
    weights: that dropout is a rate inside their call, not a layer, and stays flax's."""
    named = [
        layer_seeds.layer_path(path) or "(the model)"
        for path, node in nnx.iter_graph(model)
        if isinstance(node, nnx.MultiHeadAttention) and getattr(node, "dropout_rate", 0.0) > 0
    ]
    if named:
        warnings.warn(
            "unidrop_jax.nnx.convert cannot replace the attention dropout of these flax.nnx."
            f"MultiHeadAttention layers (a rate inside their call, not a layer): {', '.join(named)}; "
            "it stays flax's own, drawn from their rngs whatever the seed. Set their dropout_rate to 0 "
            "for masks that follow unidrop's seeds (docs/porting.md)",
            UserWarning,
            stacklevel=3,
        )


def _number(layer: Dropout, seed: int, number: int) -> None:
    """Give ``layer`` the run's base seed and its layer number, at step 0."""
    layer.seed, layer.layer, layer.stream = seed, number, 0
    layer.step = LayerStep(jnp.uint32(0))


def set_step(model: Any, step: int | jax.Array) -> None:
    """Move every numbered unidrop dropout layer of ``model`` to training step ``step``.

    ``step`` is a Python integer in [0, 2**32) (checked) or an integer JAX scalar, concrete or
    traced inside ``nnx.jit`` (taken modulo 2**32). It is written into each layer's
    :class:`~unidrop_jax.nnx.LayerStep` variable: state, so a new step does not retrace. A model
    without numbered layers raises ValueError: its masks would not follow the step.
    """
    if isinstance(step, jax.Array):
        if step.shape != () or not jnp.issubdtype(step.dtype, jnp.integer):
            raise TypeError(
                "step must be an integer in [0, 2**32) or an integer JAX scalar, got an array of "
                f"shape {step.shape} and dtype {step.dtype}"
            )
        value = step.astype(jnp.uint32)
    else:
        value = jnp.uint32(layer_seeds.check_uint32(step, "step"))
    layers = [layer for _, layer in dropout_layers(model) if layer.step is not None]
    if not layers:
        raise ValueError(
            "set_step found no numbered unidrop dropout layer in the model: number them with "
            "unidrop_jax.nnx.convert(model, seed=...) (or build them with seed= and layer=)"
        )
    for layer in layers:
        layer.step[...] = value
