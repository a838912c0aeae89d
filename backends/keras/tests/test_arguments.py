"""Bad arguments and unsupported Keras backends: clear errors naming the value and what is allowed."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import unidrop_keras as uk
from unidrop_keras.noise_shape import broadcast_dims


@pytest.mark.parametrize("backend", ["tensorflow", "openvino"])
def test_a_keras_backend_without_a_unidrop_backend_is_refused_by_name(backend):
    with pytest.raises(NotImplementedError) as info:
        uk.check_keras_backend(backend)
    message = str(info.value)
    assert repr(backend) in message
    assert all(repr(name) in message for name in ("numpy", "jax", "torch"))
    assert "KERAS_BACKEND" in message


def test_the_layers_check_the_keras_backend(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    for make in (lambda: uk.Dropout(0.5), lambda: uk.SpatialDropout2D(0.5)):
        with pytest.raises(NotImplementedError, match="'tensorflow'"):
            make()


def test_this_runs_backend_is_supported():
    assert uk.check_keras_backend(keras.backend.backend()) == keras.backend.backend()


@pytest.mark.parametrize("seed", [-1, 2**32, 2**64])
def test_a_seed_out_of_range_is_refused(seed):
    with pytest.raises(ValueError, match=rf"seed must be None or an int in \[0, 2\*\*32\), got {seed}"):
        uk.Dropout(0.5, seed=seed)


@pytest.mark.parametrize("seed", [1.0, "1", True, np.float32(3)])
def test_a_seed_that_is_not_an_int_is_refused(seed):
    with pytest.raises(TypeError, match="seed must be None or an int"):
        uk.SpatialDropout1D(0.5, seed=seed)
    # code written for keras.layers.Dropout, which raises ValueError for it, catches it too
    with pytest.raises(ValueError, match="seed must be None or an int"):
        uk.Dropout(0.5, seed=seed)


@pytest.mark.parametrize("rate", [float("nan"), -0.1, 1.01])
def test_a_rate_outside_0_1_is_refused(rate):
    with pytest.raises(ValueError, match="Expected a float value between 0 and 1"):
        uk.Dropout(rate)


@pytest.mark.parametrize(
    "rate", [np.float32(0.25), np.array(0.25), np.array(0.25, dtype=np.float16), np.int64(0)]
)
def test_a_rate_held_by_a_numpy_scalar_or_0_d_array_is_taken_as_keras_takes_it(rate):
    layer = uk.Dropout(rate, seed=3)
    assert type(layer.rate) is float and layer.rate == float(rate)
    assert layer.get_config()["rate"] == float(rate)


@pytest.mark.parametrize("rate", ["0.5", None, True, [0.5], np.array([0.5]), np.array(True), 0.5j])
def test_a_rate_that_is_not_a_number_is_refused(rate):
    with pytest.raises(TypeError, match="rate must be a float between 0 and 1"):
        uk.SpatialDropout3D(rate)


def test_a_bad_data_format_is_refused():
    with pytest.raises(
        ValueError, match="data_format must be 'channels_first', 'channels_last' or None, got 'NHWC'"
    ):
        uk.SpatialDropout2D(0.5, data_format="NHWC")


@pytest.mark.parametrize("given", ["CHANNELS_FIRST", "Channels_First"])
def test_data_format_is_taken_in_any_case_as_keras_takes_it(given):
    layer = uk.SpatialDropout2D(0.5, data_format=given)
    assert layer.data_format == "channels_first"
    assert layer.get_config()["data_format"] == "channels_first"


def test_a_noise_shape_of_the_wrong_rank_is_refused_at_the_call(make_inputs):
    layer = uk.Dropout(0.5, noise_shape=(None, 1), seed=1)
    with pytest.raises(ValueError, match=r"noise_shape=\(None, 1\) has 2 entries, but the input has 3 axes"):
        layer(make_inputs((2, 3, 4)), training=True)


def test_a_noise_shape_entry_that_fits_no_axis_is_refused(make_inputs):
    layer = uk.Dropout(0.5, noise_shape=(None, 2, None), seed=1)
    with pytest.raises(
        ValueError, match=r"entry 1 is 2; each entry must be 1 .*, None or the input's size .* \(3\)"
    ):
        layer(make_inputs((2, 3, 4)), training=True)


def test_broadcast_dims_of_noise_shapes():
    assert broadcast_dims(None, (2, 3)) == ()
    assert broadcast_dims((1, None), (2, 3)) == (0,)
    assert broadcast_dims((2, 1), (2, 3)) == (1,)
    assert broadcast_dims((1, 1), (1, 3)) == (1,)  # an axis of size 1 needs no sharing


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last", None])
def test_spatial_dropout_1d_has_no_data_format_as_in_keras(data_format):
    """Keras' own SpatialDropout1D takes no data_format: the same TypeError, naming the layer (not
    an internal base class's "multiple values")."""
    expected = "SpatialDropout1D.__init__() got an unexpected keyword argument 'data_format'"
    with pytest.raises(TypeError) as info:
        uk.SpatialDropout1D(0.5, data_format=data_format)
    assert str(info.value) == expected
