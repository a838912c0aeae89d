"""``Dropout`` and ``SpatialDropout1D/2D/3D``: Keras 3 layers whose masks are unidrop's.

Each takes Keras' constructor arguments and gives, for the k-th training call (from 0) of a
layer made with ``seed=S``, exactly ``unidrop.dropout(x, rate, seed=S, stream=k, ...)``: the
same mask on Keras' NumPy, JAX and torch backends (see :mod:`.seeds`).
"""

from __future__ import annotations

from typing import Any

import keras

import unidrop
from unidrop.arguments import check_p

from .noise_shape import broadcast_dims, check_data_format, check_noise_shape, spatial_broadcast_dims
from .seeds import check_seed, generator_seed, seed_and_stream
from .support import check_keras_backend

PACKAGE = "unidrop"
#: The key of a layer's seed state in a saved model's variable store.
SEED_STATE = "seed_generator_state"


def check_rate(rate: Any) -> float:
    """``rate`` as a float if it is a real number in [0, 1] (a Python or NumPy number, or a 0-d array
    or tensor holding one, as Keras takes it); raise naming it otherwise (Keras' message)."""
    try:
        return check_p(rate)
    except ValueError:  # outside [0, 1], NaN included
        raise ValueError(
            "Invalid value received for argument `rate`. Expected a float value between 0 and 1. "
            f"Received: rate={rate}"
        ) from None
    except TypeError:
        raise TypeError(
            f"rate must be a float between 0 and 1, got {rate!r} of type {type(rate).__name__}"
        ) from None


class UnidropDropoutBase(keras.layers.Layer):
    """What unidrop's Keras layers share: the rate, the seed and its generator, and one dropout call.

    The seed generator exists only for ``rate > 0`` (as in Keras); each training call with
    ``rate > 0`` takes one state from it, and ``training=False`` takes none.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        check_keras_backend(keras.backend.backend())
        super().__init__(**kwargs)
        self.rate = check_rate(rate)
        self.seed = check_seed(seed)
        if self.rate > 0:
            self.seed_generator = keras.random.SeedGenerator(generator_seed(self.seed))
        self.supports_masking = True

    def _dropout(self, inputs: Any, dims: tuple[int, ...]) -> Any:
        """unidrop's dropout of ``inputs`` with the next (seed, stream) of this layer."""
        seed, stream = seed_and_stream(self.seed_generator.next())
        return unidrop.dropout(inputs, self.rate, seed=seed, stream=stream, broadcast_dims=dims)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def save_own_variables(self, store: Any) -> None:
        """Save the seed state ``[seed, count]`` (Keras' own dropout layers save none), so that a
        loaded model's next training call uses the next stream, as the saved model's would."""
        super().save_own_variables(store)
        if self.rate > 0:
            store[SEED_STATE] = keras.ops.convert_to_numpy(self.seed_generator.state.value)

    def load_own_variables(self, store: Any) -> None:
        """Restore the seed state where the file has one (a file from before it was saved has none)."""
        keys = list(store.keys())  # a Keras H5 entry lists its keys, and may not iterate
        if self.rate > 0 and SEED_STATE in keys:
            self.seed_generator.state.assign(keras.ops.convert_to_tensor(store[SEED_STATE][()]))
        super().load_own_variables({key: store[key] for key in keys if key != SEED_STATE})


@keras.saving.register_keras_serializable(package=PACKAGE)
class Dropout(UnidropDropoutBase):
    """Dropout as ``keras.layers.Dropout``, with unidrop's mask: the same on every Keras backend.

    Args:
        rate: The fraction of the input units to drop, a float in [0, 1].
        noise_shape: The shape of the mask, one entry per input axis: 1 shares the mask along
            that axis, None (or the input's size) gives it its own values. None: no sharing.
        seed: An int in [0, 2**32), or None for a seed drawn from Python's ``random`` (as Keras
            does; ``keras.utils.set_random_seed`` governs it).
        **kwargs: The base layer's arguments (``name``, ``dtype``, ...).
    """

    def __init__(self, rate: float, noise_shape: Any = None, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(rate, seed, **kwargs)
        self.noise_shape = check_noise_shape(noise_shape)
        self._build_at_init()

    def call(self, inputs: Any, training: bool = False) -> Any:
        if training and self.rate > 0:
            return self._dropout(inputs, broadcast_dims(self.noise_shape, inputs.shape))
        return inputs

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed, "noise_shape": self.noise_shape}


class BaseSpatialDropout(UnidropDropoutBase):
    """Dropout of whole feature maps: one mask value per (sample, channel), shared along every other axis."""

    RANK = 0

    def __init__(
        self,
        rate: float,
        seed: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(rate, seed, **kwargs)
        self.data_format = check_data_format(data_format, keras.config.image_data_format())
        self.input_spec = keras.layers.InputSpec(ndim=self.RANK)
        self._broadcast = spatial_broadcast_dims(self.RANK, self.data_format)
        self._build_at_init()

    def call(self, inputs: Any, training: bool = False) -> Any:
        if training and self.rate > 0:
            return self._dropout(inputs, self._broadcast)
        return inputs

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpatialDropout1D(BaseSpatialDropout):
    """``keras.layers.SpatialDropout1D`` with unidrop's mask: inputs ``(samples, timesteps, channels)``.

    Args:
        rate: The fraction of the feature maps to drop, a float in [0, 1].
        seed: An int in [0, 2**32), or None (see :class:`Dropout`).
        **kwargs: The base layer's arguments (``name``, ``dtype``, ...).
    """

    RANK = 3

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        if "data_format" in kwargs:  # as Keras' own SpatialDropout1D, which has no such argument
            raise TypeError(
                f"{type(self).__name__}.__init__() got an unexpected keyword argument 'data_format'"
            )
        super().__init__(rate, seed, data_format="channels_last", **kwargs)


class _SpatialDropoutND(BaseSpatialDropout):
    """A spatial dropout whose channel axis ``data_format`` says (2-D and 3-D feature maps)."""

    def __init__(
        self,
        rate: float,
        data_format: str | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(rate, seed, data_format=data_format, **kwargs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpatialDropout2D(_SpatialDropoutND):
    """``keras.layers.SpatialDropout2D`` with unidrop's mask: 4-D inputs, whole 2-D feature maps dropped.

    Args:
        rate: The fraction of the feature maps to drop, a float in [0, 1].
        data_format: ``"channels_last"`` (``(samples, rows, cols, channels)``) or
            ``"channels_first"`` (``(samples, channels, rows, cols)``); None: Keras'
            ``image_data_format()``.
        seed: An int in [0, 2**32), or None (see :class:`Dropout`).
        **kwargs: The base layer's arguments (``name``, ``dtype``, ...).
    """

    RANK = 4


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpatialDropout3D(_SpatialDropoutND):
    """``keras.layers.SpatialDropout3D`` with unidrop's mask: 5-D inputs, whole 3-D feature maps dropped.

    Args:
        rate: The fraction of the feature maps to drop, a float in [0, 1].
        data_format: ``"channels_last"`` (``(samples, d1, d2, d3, channels)``) or
            ``"channels_first"`` (``(samples, channels, d1, d2, d3)``); None: Keras'
            ``image_data_format()``.
        seed: An int in [0, 2**32), or None (see :class:`Dropout`).
        **kwargs: The base layer's arguments (``name``, ``dtype``, ...).
    """

    RANK = 5
