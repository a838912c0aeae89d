"""Flax NNX ``AlphaDropout`` and ``DropPath`` on mask stream v1, with ``flax.nnx.Dropout``'s conventions.

Both are :class:`unidrop_jax.nnx.Dropout` in everything but the function applied in training
(the constructor and call arguments, ``deterministic`` and ``model.train()``/``eval()``/
``nnx.view``, keys drawn from ``rngs``, ``seed``/``layer`` and :func:`~unidrop_jax.nnx.set_step`):
``AlphaDropout`` applies :func:`unidrop.alpha_dropout` (``broadcast_dims`` gives the
feature-wise form: the spatial axes, e.g. ``(1, 2)`` for NHWC) and ``DropPath`` applies
:func:`unidrop.drop_path` (stochastic depth: one mask value per sample of the first axis).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax

import unidrop

from .nnx import Dropout


class AlphaDropout(Dropout):
    """Alpha dropout of rate ``rate`` for SELU networks (:func:`unidrop.alpha_dropout`).

    The arguments are :class:`unidrop_jax.nnx.Dropout`'s; the mask is dropout's for the same
    key (or seed) and stream. ``rate == 1`` gives +0 everywhere, without drawing a key.
    """

    def _drop(self, x: jax.Array, seed: Any, stream: Any) -> jax.Array:
        return unidrop.alpha_dropout(  # type: ignore[no-any-return]
            x, self.rate, seed=seed, stream=stream, broadcast_dims=self.broadcast_dims, backend="jax"
        )


class DropPath(Dropout):
    """Stochastic depth of rate ``rate`` (:func:`unidrop.drop_path`): each sample kept or dropped whole.

    ``DropPath(rate, *, scale_by_keep=True, deterministic=False, rng_collection="dropout",
    rngs=None, stream=0, seed=None, layer=None)``: kept samples are scaled by ``1 / (1 - rate)``
    unless ``scale_by_keep`` is False. The mask has one value per index of the first axis, so
    there is no ``broadcast_dims``.
    """

    def __init__(self, rate: float, *, scale_by_keep: bool = True, **kwargs: Any) -> None:
        if "broadcast_dims" in kwargs:
            raise TypeError("DropPath has one mask value per sample (the first axis): no broadcast_dims")
        if scale_by_keep is not True and scale_by_keep is not False:
            raise TypeError(f"scale_by_keep must be True or False, got {scale_by_keep!r}")
        super().__init__(rate, **kwargs)
        self.scale_by_keep = scale_by_keep

    def _drop(self, x: jax.Array, seed: Any, stream: Any) -> jax.Array:
        return unidrop.drop_path(  # type: ignore[no-any-return]
            x, self.rate, seed=seed, stream=stream, scale_by_keep=self.scale_by_keep, backend="jax"
        )


__all__: Sequence[str] = ["AlphaDropout", "DropPath"]
