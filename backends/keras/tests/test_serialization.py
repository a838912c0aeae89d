"""Serialization: ``get_config`` round trips, and a saved model loads with unidrop's layers,
its seed states included, so that training resumes with the next stream."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import unidrop_keras as uk

LAYERS = [
    (uk.Dropout, {"rate": 0.3, "noise_shape": (None, 1, None), "seed": 12}),
    (uk.SpatialDropout1D, {"rate": 0.3, "seed": 12}),
    (uk.SpatialDropout2D, {"rate": 0.3, "seed": 2**32 - 1, "data_format": "channels_first"}),
    (uk.SpatialDropout3D, {"rate": 0.3, "seed": None, "data_format": "channels_last"}),
]


@pytest.mark.parametrize(("cls", "kwargs"), LAYERS)
def test_config_round_trip(cls, kwargs):
    layer = cls(name="drop", **kwargs)
    config = layer.get_config()
    for key, value in kwargs.items():
        assert config[key] == value
    again = cls.from_config(config)
    assert type(again) is cls and again.get_config() == config
    revived = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(revived) is cls and revived.get_config() == config


def test_the_registered_names_are_in_unidrops_package():
    for cls, _ in LAYERS:
        assert keras.saving.get_registered_name(cls) == f"unidrop>{cls.__name__}"


def test_a_saved_model_loads_and_continues_with_the_next_stream(tmp_path, expected, make_inputs):
    x = make_inputs((2, 3, 4))
    model = keras.Sequential(
        [keras.Input((3, 4)), uk.Dropout(0.5, seed=31), uk.SpatialDropout1D(0.5, seed=32)]
    )
    model(x, training=True)  # call 0 of both layers
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [uk.Dropout, uk.SpatialDropout1D]
    assert [layer.get_config() for layer in loaded.layers] == [layer.get_config() for layer in model.layers]
    y = np.asarray(keras.ops.convert_to_numpy(loaded(x, training=True)))  # call 1 of both layers
    want = expected(expected(x, 0.5, 31, 1), 0.5, 32, 1, (1,))
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(y, np.asarray(keras.ops.convert_to_numpy(model(x, training=True))))


def _dense_then(dropout: type) -> keras.Model:
    inputs = keras.Input((4,))
    outputs = dropout(0.5, seed=1, name="drop")(keras.layers.Dense(4, name="dense")(inputs))
    return keras.Model(inputs, outputs)


def test_weights_files_keep_the_seed_state_and_load_into_keras_layers_skipping_it(tmp_path, make_inputs):
    """docs/keras.md: a weights file holds the seed state (so a weights checkpoint resumes with the
    next stream); the same model built with keras.layers.Dropout loads it with skip_mismatch=True."""
    ours = _dense_then(uk.Dropout)
    ours(make_inputs((2, 4)), training=True)
    path = str(tmp_path / "ours.weights.h5")
    ours.save_weights(path)
    again = _dense_then(uk.Dropout)
    again.load_weights(path)
    state = keras.ops.convert_to_numpy(again.get_layer("drop").seed_generator.state.value)
    assert (
        state.tolist()
        == keras.ops.convert_to_numpy(ours.get_layer("drop").seed_generator.state.value).tolist()
    )
    plain = _dense_then(keras.layers.Dropout)
    with pytest.raises(ValueError, match="expected 0 variables"):
        plain.load_weights(path)
    with pytest.warns(UserWarning):
        plain.load_weights(path, skip_mismatch=True)
    kernel = keras.ops.convert_to_numpy(ours.get_layer("dense").kernel)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(plain.get_layer("dense").kernel), kernel)
