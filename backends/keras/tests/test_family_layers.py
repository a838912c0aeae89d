"""AlphaDropout and GaussianDropout: call k of a layer with seed S is unidrop's alpha / Gaussian
dropout for (S, stream k), checked against unidrop's pure-Python reference."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import unidrop_keras as uk

from unidrop import reference


def outputs(layer, x, calls):
    return [np.asarray(keras.ops.convert_to_numpy(layer(x, training=True))) for _ in range(calls)]


@pytest.mark.parametrize(("noise_shape", "dims"), [(None, ()), ((None, 1, None), (1,)), ((1, 4, 5), (0,))])
def test_alpha_dropout_call_k_is_the_reference_with_stream_k(noise_shape, dims, make_inputs):
    x = make_inputs((3, 4, 5), start=-30.0) / 8.0
    for k, y in enumerate(outputs(uk.AlphaDropout(0.3, noise_shape=noise_shape, seed=2**32 - 2), x, 2)):
        allowed, _ = reference.alpha_dropout(
            x.ravel().tolist(), x.shape, "float32", 0.3, seed=2**32 - 2, stream=k, broadcast_dims=dims
        )
        for got, (twice, once) in zip(y.ravel().tolist(), allowed, strict=True):
            assert got in (twice, once)


def test_alpha_dropout_rate_one_gives_zeros(make_inputs):
    y = outputs(uk.AlphaDropout(1.0, seed=1), make_inputs((2, 3)), 1)[0]
    np.testing.assert_array_equal(y, np.zeros((2, 3), np.float32))


def test_gaussian_dropout_call_k_is_the_reference_with_stream_k_within_its_bound(make_inputs):
    x = make_inputs((4, 6), start=-10.0)
    for k, y in enumerate(outputs(uk.GaussianDropout(0.4, seed=77), x, 2)):
        want, bound = reference.gaussian_dropout(
            x.ravel().tolist(), x.shape, "float32", 0.4, seed=77, stream=k
        )
        assert np.all(np.abs(y.ravel() - np.asarray(want)) <= np.asarray(bound))


def test_gaussian_dropout_refuses_rate_one():
    with pytest.raises(ValueError, match=r"below 1 for GaussianDropout .* Received: rate=1"):
        uk.GaussianDropout(1)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (uk.AlphaDropout, {"rate": 0.2, "noise_shape": (None, 1), "seed": 3}),
        (uk.GaussianDropout, {"rate": 0.2}),
    ],
)
def test_config_round_trip(cls, kwargs):
    layer = cls(**kwargs)
    revived = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(revived) is cls and revived.get_config() == layer.get_config()
    assert all(layer.get_config()[key] == value for key, value in kwargs.items())
