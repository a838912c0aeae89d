"""``unidrop_torch.convert``: a torch model's dropout modules replaced by unidrop's.

:func:`convert` swaps every ``torch.nn.Dropout``, ``Dropout1d``, ``Dropout2d``, ``Dropout3d``,
``AlphaDropout`` and ``FeatureAlphaDropout`` of a model for unidrop's class of the same name,
keeping ``p``, ``inplace`` and the train/eval mode. With a base ``seed`` it also numbers every
unidrop dropout layer for the layer-seed convention of :mod:`unidrop.layer_seeds`, and
:func:`set_step` then moves them all to a training step, so a port of the model to another
framework draws the same masks (docs/porting.md).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from unidrop import arguments, layer_seeds

from . import family_modules, modules

#: torch's dropout classes -> unidrop's replacement (exact types: a subclass may override forward).
REPLACEMENTS: dict[type[nn.Module], type[modules._MaskStreamDropout]] = {
    nn.Dropout: modules.Dropout,
    nn.Dropout1d: modules.Dropout1d,
    nn.Dropout2d: modules.Dropout2d,
    nn.Dropout3d: modules.Dropout3d,
    nn.AlphaDropout: family_modules.AlphaDropout,
    nn.FeatureAlphaDropout: family_modules.FeatureAlphaDropout,
}
#: What convert and set_step count as unidrop dropout layers.
LAYERS = (modules._MaskStreamDropout, family_modules.DropPath)


def dropout_layers(model: nn.Module) -> list[tuple[str, Any]]:
    """The unidrop dropout layers of ``model`` with their paths, in the order :func:`convert` numbers them.

    That order is the paths' (:func:`unidrop.layer_seeds.path_key`: ``layers.2`` before
    ``layers.10``), not the registration order, so that a port to another framework with the same
    attribute names numbers its layers alike. A module shared by two parents counts once, under
    its first name in ``model.named_modules()``.
    """
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, LAYERS)]
    return sorted(found, key=lambda item: layer_seeds.path_key(layer_seeds.torch_path(item[0])))


def convert(model: nn.Module, *, seed: int | None = None) -> nn.Module:
    """Replace every torch dropout module of ``model`` by unidrop's, in place; return the model.

    Each ``torch.nn.Dropout``/``Dropout1d``/``Dropout2d``/``Dropout3d``/``AlphaDropout``/
    ``FeatureAlphaDropout`` (exactly those types) becomes the :mod:`unidrop_torch` class of the
    same name, with the same ``p``, ``inplace`` and training mode; a module shared by several
    parents stays shared. Dropout modules unidrop has no layer for (a subclass of a torch
    dropout class) are left as they are, with a warning naming them. If ``model`` is itself a
    dropout module, its replacement is returned.

    ``seed=None`` keeps torch's convention (each call draws from torch's default generator).
    An integer ``seed`` numbers every unidrop dropout layer of the result 0, 1, 2, ... in
    :func:`dropout_layers` order (their paths') and gives it ``seed`` and its layer number (at
    step 0): the layer-seed convention of :mod:`unidrop.layer_seeds`; call :func:`set_step` at each step.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"convert needs a torch.nn.Module, got {type(model).__qualname__}")
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError(
            "convert needs an eager torch.nn.Module, got a TorchScript module (torch.jit.script or "
            "torch.jit.trace), whose modules cannot be replaced: convert the eager model, then use "
            "torch.compile or torch.export (unidrop's layers cannot be scripted)"
        )
    base = None if seed is None else arguments.check_uint64(seed, "seed")
    if base is not None:
        _refuse_torch_streams(model)
    # every replacement is made (and may raise) before the model is changed: all or nothing
    replaced: dict[int, nn.Module] = {}
    skipped: list[str] = []
    result = _replacement(model, replaced, skipped, "")
    swaps = []
    for name, child in list(model.named_modules()):
        for attribute, grandchild in list(child._modules.items()):
            if grandchild is None:
                continue
            path = f"{name}.{attribute}" if name else attribute
            new = _replacement(grandchild, replaced, skipped, path)
            if new is not grandchild:
                swaps.append((child, attribute, new))
    for child, attribute, new in swaps:
        child._modules[attribute] = new
    if skipped:
        warnings.warn(
            "unidrop_torch.convert left these dropout modules as they are (unidrop has no layer for "
            f"their class): {', '.join(sorted(set(skipped)))}",
            UserWarning,
            stacklevel=2,
        )
    _warn_about_attention(result)
    if base is not None:
        for number, (_, layer) in enumerate(dropout_layers(result)):
            layer.seed, layer.layer = base, layer_seeds.check_uint32(number, "layer")
            layer.stream = layer_seeds.layer_stream(0, number)
    return result


def _refuse_torch_streams(model: nn.Module) -> None:
    """ValueError naming the unidrop layers of ``model`` that follow torch's stream: ``seed=`` numbers
    layers for unidrop's."""
    named = [
        name or "(the model)"
        for name, m in model.named_modules()
        if isinstance(m, modules._MaskStreamDropout) and m.mask_stream != "unidrop"
    ]
    if named:
        raise ValueError(
            "convert(seed=...) numbers layers for unidrop's mask stream, but these have "
            f"mask_stream='torch': {', '.join(named)}; nothing was changed"
        )


def _warn_about_attention(model: nn.Module) -> None:
    """Warn, naming them, of the ``torch.nn.MultiheadAttention`` modules (every ``nn.Transformer*``
    layer has one) that drop out attention weights: that dropout is a number inside their call,
    not a module, and stays torch's."""
    named = [
        name or "(the model)"
        for name, m in model.named_modules()
        if isinstance(m, nn.MultiheadAttention) and m.dropout > 0
    ]
    if named:
        warnings.warn(
            "unidrop_torch.convert cannot replace the attention dropout of these "
            f"torch.nn.MultiheadAttention modules (a probability inside their call, not a module): "
            f"{', '.join(named)}; it stays torch's own, random at every call whatever the seed. "
            "Set their dropout to 0 for masks that follow unidrop's seeds (docs/porting.md)",
            UserWarning,
            stacklevel=3,
        )


def _replacement(
    module: nn.Module, replaced: dict[int, nn.Module], skipped: list[str], path: str
) -> nn.Module:
    """unidrop's layer for ``module`` (the same one for a module met twice), or ``module`` itself."""
    if id(module) in replaced:
        return replaced[id(module)]
    cls = REPLACEMENTS.get(type(module))
    if cls is None:
        if isinstance(module, nn.modules.dropout._DropoutNd) and not isinstance(module, LAYERS):
            skipped.append(f"{path or '(the model)'} ({type(module).__qualname__})")
        return module
    try:
        new = cls(module.p, bool(module.inplace))  # torch takes any truthy inplace (inplace=1)
    except (TypeError, ValueError) as error:
        where = path or "(the model)"
        raise type(error)(
            f"convert: the {type(module).__name__} at {where}: {error}; nothing was changed"
        ) from None
    new.train(module.training)
    replaced[id(module)] = new
    return new


def set_step(model: nn.Module, step: int) -> None:
    """Move every numbered unidrop dropout layer of ``model`` to training step ``step``.

    Each layer numbered ``layer`` (by :func:`convert` with a seed, or built with ``layer=``)
    gets the stream ``step * 2**32 + layer``; ``step`` must be an integer in [0, 2**32). A model
    without numbered layers raises ValueError: its masks would not follow the step.
    """
    streams = [
        (layer, layer_seeds.layer_stream(step, layer.layer))
        for _, layer in dropout_layers(model)
        if layer.layer is not None
    ]
    if not streams:
        raise ValueError(
            "set_step found no numbered unidrop dropout layer in the model: number them with "
            "unidrop_torch.convert(model, seed=...) (or build them with seed= and layer=)"
        )
    for layer, stream in streams:
        layer.stream = stream
