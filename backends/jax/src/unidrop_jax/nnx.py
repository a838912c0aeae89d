"""A Flax NNX dropout layer on mask stream v1: ``unidrop_jax.nnx.Dropout``, and ``convert``.

It is used like ``flax.nnx.Dropout`` (same constructor and call arguments, train/eval
through ``deterministic`` and ``model.train()`` / ``model.eval()`` / ``nnx.view``, keys drawn
from ``rngs``), but its mask is unidrop's: the key drawn for a call, read as a seed by the
rule of docs/jax.md, gives the same mask that NumPy, PyTorch or CuPy produce for that seed.

Flax is an optional extra (not on PyPI; from a clone: ``pip install './backends/jax[flax]'``);
importing this module without it raises ImportError saying so. Importing :mod:`unidrop_jax`
never imports Flax.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

try:
    from flax import nnx as _nnx
    from flax.nnx import rnglib as _rnglib
except ImportError as error:  # pragma: no cover - exercised only without Flax installed
    raise ImportError(
        "unidrop_jax.nnx needs Flax (flax.nnx); from a clone of unidrop: `pip install './backends/jax[flax]'`"
    ) from error

import jax
import jax.numpy as jnp

import unidrop
from unidrop import arguments, layer_seeds

# The first sentence of each is flax.nnx.Dropout's own, so code and tests matching it keep working.
_NO_DETERMINISTIC = (
    "No `deterministic` argument was provided to Dropout. (unidrop_jax.nnx.Dropout): pass it to the "
    "constructor or the call, or use model.train() / model.eval() / nnx.view(model, deterministic=...)"
)
_NO_RNGS = (
    "`deterministic` is False, but no `rngs` argument was provided to Dropout (unidrop_jax.nnx.Dropout) "
    "as either a __call__ argument or class attribute: pass rngs= to the constructor or to the call "
    "(an nnx.Rngs, an nnx.RngStream or a JAX key)"
)


class LayerStep(_nnx.Variable[jax.Array]):
    """The training step of a numbered dropout layer (a ``uint32`` scalar); see :func:`set_step`."""


def _first(*values: Any, error: str) -> Any:
    for value in values:
        if value is not None:
            return value
    raise ValueError(error)


def _check_rate(rate: Any) -> float:
    """``rate`` as a float if it is a real number in [0, 1]; else TypeError or ValueError naming ``rate``."""
    try:
        return arguments.check_p(rate)
    except (TypeError, ValueError) as error:
        message = str(error).replace("p must be", "rate (the drop probability) must be", 1)
        raise type(error)(message) from None


class Dropout(_nnx.Module):
    """Dropout of rate ``rate`` by mask stream v1, a drop-in for ``flax.nnx.Dropout``.

    Args:
      rate: the probability of dropping an element (not the keep rate), in [0, 1].
      broadcast_dims: axes along which the mask is shared.
      deterministic: True is evaluation (the identity), False is training; None means it
        must be given at call time.
      rng_collection: the ``nnx.Rngs`` stream keys are drawn from (``"dropout"``).
      rngs: an ``nnx.Rngs`` or ``nnx.RngStream`` to draw a fresh key from at every call.
      stream: unidrop's ``stream`` (an integer in [0, 2**64)), for several independent masks
        from one key.
      seed: an integer in [0, 2**64) to use instead of keys from ``rngs`` (the same mask at every
        call, unless ``layer`` is given).
      layer: with ``seed``, the layer's number for the layer-seed convention of
        :mod:`unidrop.layer_seeds`: the stream is then ``step * 2**32 + layer``, ``step`` being
        the layer's :class:`LayerStep` variable (0 until :func:`set_step` moves it; a state, so
        a new step does not retrace ``nnx.jit``). ``stream`` may not be given as well.

    The randomness of a call comes from the call's ``rngs`` if given, else from ``seed`` if
    set, else from the layer's ``rngs``.
    """

    def __init__(
        self,
        rate: float,
        *,
        broadcast_dims: Sequence[int] = (),
        deterministic: bool | None = False,
        rng_collection: str = "dropout",
        rngs: _rnglib.Rngs | _rnglib.RngStream | None = None,
        stream: int = 0,
        seed: int | None = None,
        layer: int | None = None,
    ) -> None:
        self.rate = _check_rate(rate)
        self.broadcast_dims = arguments.check_broadcast_dims(broadcast_dims)
        self.deterministic = deterministic
        self.rng_collection = rng_collection
        self.stream = arguments.check_uint64(stream, "stream")
        self.seed = None if seed is None else arguments.check_uint64(seed, "seed")
        self.layer = None if layer is None else layer_seeds.check_uint32(layer, "layer")
        if self.layer is not None and (self.seed is None or self.stream):
            raise ValueError(
                f"layer={self.layer} numbers the layer for the layer-seed convention: it needs a seed "
                f"(the run's base seed) and no stream (got seed={self.seed}, stream={self.stream})"
            )
        self.step = _nnx.data(LayerStep(jnp.uint32(0)) if self.layer is not None else None)
        if isinstance(rngs, _rnglib.Rngs):
            self.rngs = rngs[rng_collection].fork()
        elif isinstance(rngs, _rnglib.RngStream):
            self.rngs = rngs.fork()
        elif rngs is None:
            self.rngs = _nnx.data(None)
        else:
            raise TypeError(f"rngs must be an nnx.Rngs, an nnx.RngStream or None, got {type(rngs).__name__}")

    def __call__(
        self,
        inputs: Any,
        *,
        deterministic: bool | None = None,
        rngs: _rnglib.Rngs | _rnglib.RngStream | jax.Array | None = None,
    ) -> jax.Array:
        """``inputs`` with mask stream v1 dropout applied in training, ``inputs`` itself in evaluation.

        As in ``flax.nnx.Dropout``: ``deterministic`` (from the call, else the layer) is
        required first; ``rate == 0`` or ``deterministic`` returns ``inputs`` itself and
        ``rate == 1`` returns zeros, both without ``rngs`` and without drawing a key; otherwise
        a key is drawn from ``rngs`` (the call's, else the layer's) and read as the seed.
        """
        deterministic = _first(deterministic, self.deterministic, error=_NO_DETERMINISTIC)
        if deterministic or self.rate == 0.0:
            return inputs
        if self.rate == 1.0:  # every element is dropped: no mask, so no key (+0, as unidrop gives)
            return jnp.zeros_like(inputs)
        if rngs is None and self.seed is not None:
            return self._drop(jnp.asarray(inputs), self.seed, self._seeded_stream())
        if self.layer is not None:  # rngs given: they win, and the layer's number is not used
            warnings.warn(
                f"unidrop_jax.nnx.Dropout numbered layer {self.layer} (seed={self.seed}) got rngs= at "
                "call time, which take precedence: its mask follows those keys, not the layer seed and "
                "set_step. Call it without rngs= for the layer-seed convention",
                UserWarning,
                stacklevel=2,
            )
        source = _first(rngs, self.rngs, error=_NO_RNGS)
        if isinstance(source, _rnglib.Rngs):
            key = source[self.rng_collection]()
        elif isinstance(source, _rnglib.RngStream):
            key = source()
        elif isinstance(source, jax.Array):
            key = source
        else:
            raise TypeError(
                f"rngs must be an nnx.Rngs, an nnx.RngStream or a JAX key, got {type(source).__name__}"
            )
        return self._drop(jnp.asarray(inputs), key, self.stream)

    def _drop(self, x: jax.Array, seed: Any, stream: Any) -> jax.Array:
        """The layer's function in training, on ``x`` with the call's randomness (here dropout)."""
        return unidrop.dropout(  # type: ignore[no-any-return]
            x, self.rate, seed=seed, stream=stream, broadcast_dims=self.broadcast_dims, backend="jax"
        )

    def _seeded_stream(self) -> Any:
        """A seeded call's stream: ``stream``, or ``(step, layer)`` as ``uint32[2]`` for a numbered layer."""
        if self.step is None or self.layer is None:
            return self.stream
        return jnp.stack([self.step[...], jnp.uint32(self.layer)])

    def set_view(self, deterministic: bool | None = None) -> None:
        """Class method used by ``nnx.view`` (``nnx.view_info`` reads the ``Args:`` below).

        Args:
          deterministic: if True, disables dropout masking.
        """
        if deterministic is not None:
            self.deterministic = deterministic


#: The names of this module defined in modules of their own, which build on Dropout above: read from
#: there on first use, so that either module imported first finds Dropout defined here.
_ELSEWHERE = {
    "convert": "nnx_convert",
    "dropout_layers": "nnx_convert",
    "set_step": "nnx_convert",
    "AlphaDropout": "nnx_family",
    "DropPath": "nnx_family",
}

if TYPE_CHECKING:  # for type checkers and readers; at run time __getattr__ below reads them
    from .nnx_convert import convert, dropout_layers, set_step
    from .nnx_family import AlphaDropout, DropPath

__all__ = ["AlphaDropout", "DropPath", "Dropout", "LayerStep", "convert", "dropout_layers", "set_step"]


def __getattr__(name: str) -> Any:
    """The names of :data:`_ELSEWHERE`, from their modules (imported on first use)."""
    module = _ELSEWHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __package__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_ELSEWHERE})
