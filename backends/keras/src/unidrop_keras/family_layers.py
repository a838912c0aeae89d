"""``AlphaDropout`` and ``GaussianDropout``: Keras 3's layers on unidrop's alpha and Gaussian dropout.

Seeding is the dropout layers' (:mod:`.seeds`): the k-th training call of a layer with
``seed=S`` is ``unidrop.alpha_dropout`` / ``unidrop.gaussian_dropout`` with ``seed=S``,
``stream=k``. Alpha dropout has dropout's mask and Keras' affine correction (the same constants
as PyTorch's); Gaussian dropout draws its noise from the stream (agreeing across backends to the
bound docs/spec.md gives, not bit for bit: ``log`` and ``cos`` are each library's own).
"""

from __future__ import annotations

from typing import Any

import keras

import unidrop

from .layers import PACKAGE, UnidropDropoutBase
from .noise_shape import broadcast_dims, check_noise_shape
from .seeds import seed_and_stream


@keras.saving.register_keras_serializable(package=PACKAGE)
class AlphaDropout(UnidropDropoutBase):
    """``keras.layers.AlphaDropout`` with unidrop's mask: dropped units take SELU's saturation
    value, and an affine correction keeps the inputs' mean and variance.

    Args:
        rate: The fraction of the input units to drop, a float in [0, 1] (1: every output +0).
        noise_shape: As :class:`unidrop_keras.Dropout`'s: 1 shares the mask along an axis.
        seed: An int in [0, 2**32), or None (see :class:`unidrop_keras.Dropout`).
        **kwargs: The base layer's arguments (``name``, ``dtype``, ...).
    """

    def __init__(self, rate: float, noise_shape: Any = None, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(rate, seed, **kwargs)
        self.noise_shape = check_noise_shape(noise_shape)
        self._build_at_init()

    def call(self, inputs: Any, training: bool = False) -> Any:
        if training and self.rate > 0:
            seed, stream = seed_and_stream(self.seed_generator.next())
            dims = broadcast_dims(self.noise_shape, inputs.shape)
            return unidrop.alpha_dropout(inputs, self.rate, seed=seed, stream=stream, broadcast_dims=dims)
        return inputs

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed, "noise_shape": self.noise_shape}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GaussianDropout(UnidropDropoutBase):
    """``keras.layers.GaussianDropout`` on unidrop's stream: inputs times noise N(1, rate / (1 - rate)).

    Args:
        rate: The drop probability the noise stands for, a float in [0, 1): the noise's
            standard deviation is ``sqrt(rate / (1 - rate))``, infinite at 1, which is refused.
        seed: An int in [0, 2**32), or None (see :class:`unidrop_keras.Dropout`).
        **kwargs: The base layer's arguments (``name``, ``dtype``, ...).
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(rate, seed, **kwargs)
        if self.rate == 1.0:
            raise ValueError(
                "Invalid value received for argument `rate`. Expected a float value between 0 and 1, "
                "below 1 for GaussianDropout (its noise's variance rate / (1 - rate) is infinite at 1). "
                f"Received: rate={rate}"
            )
        self._build_at_init()

    def call(self, inputs: Any, training: bool = False) -> Any:
        if training and self.rate > 0:
            seed, stream = seed_and_stream(self.seed_generator.next())
            return unidrop.gaussian_dropout(inputs, self.rate, seed=seed, stream=stream)
        return inputs

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
