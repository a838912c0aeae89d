"""The masks: the k-th training call of a layer with seed S is unidrop's mask for (S, stream k),
checked against unidrop's pure-Python reference on the Keras backend this run uses."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import unidrop_keras as uk

CALLS = 3


def outputs(layer, x, calls=CALLS):
    return [np.asarray(keras.ops.convert_to_numpy(layer(x, training=True))) for _ in range(calls)]


@pytest.mark.parametrize("seed", [0, 7, 2**31 - 1, 2**31, 2**32 - 1])
def test_dropout_call_k_is_the_reference_with_stream_k(seed, expected, make_inputs):
    x = make_inputs((3, 4, 5))
    got = outputs(uk.Dropout(0.5, seed=seed), x)
    for k, y in enumerate(got):
        np.testing.assert_array_equal(y, expected(x, 0.5, seed, k))


@pytest.mark.parametrize(
    ("noise_shape", "dims"),
    [
        ((None, 1, None), (1,)),
        ((3, 1, 5), (1,)),
        ((1, 1, None), (0, 1)),
        ((1, 4, 1), (0, 2)),
        ((None, 4, 5), ()),
    ],
)
def test_noise_shape_shares_the_mask_as_broadcast_dims(noise_shape, dims, expected, make_inputs):
    x = make_inputs((3, 4, 5))
    got = outputs(uk.Dropout(0.3, noise_shape=noise_shape, seed=11), x, calls=2)
    for k, y in enumerate(got):
        np.testing.assert_array_equal(y, expected(x, 0.3, 11, k, dims))


@pytest.mark.parametrize(
    ("layer", "shape", "dims"),
    [
        (lambda: uk.SpatialDropout1D(0.4, seed=5), (2, 3, 4), (1,)),
        (lambda: uk.SpatialDropout2D(0.4, seed=5, data_format="channels_last"), (2, 3, 4, 5), (1, 2)),
        (lambda: uk.SpatialDropout2D(0.4, seed=5, data_format="channels_first"), (2, 3, 4, 5), (2, 3)),
        (lambda: uk.SpatialDropout3D(0.4, seed=5, data_format="channels_last"), (2, 2, 3, 2, 3), (1, 2, 3)),
        (lambda: uk.SpatialDropout3D(0.4, seed=5, data_format="channels_first"), (2, 3, 2, 3, 2), (2, 3, 4)),
    ],
)
def test_spatial_dropout_shares_the_mask_along_the_feature_maps(layer, shape, dims, expected, make_inputs):
    x = make_inputs(shape)
    for k, y in enumerate(outputs(layer(), x, calls=2)):
        np.testing.assert_array_equal(y, expected(x, 0.4, 5, k, dims))


def test_spatial_dropout_follows_the_image_data_format(expected, make_inputs):
    before = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        layer = uk.SpatialDropout2D(0.4, seed=5)
    finally:
        keras.config.set_image_data_format(before)
    assert layer.data_format == "channels_first"
    x = make_inputs((2, 3, 4, 5))
    np.testing.assert_array_equal(outputs(layer, x, calls=1)[0], expected(x, 0.4, 5, 0, (2, 3)))


def test_inference_is_the_identity_and_draws_no_mask(expected, make_inputs):
    x = make_inputs((4, 6))
    layer = uk.Dropout(0.5, seed=3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    # the first training call after them is still call 0: inference took no state
    np.testing.assert_array_equal(outputs(layer, x, calls=1)[0], expected(x, 0.5, 3, 0))


def test_rate_zero_has_no_generator_and_returns_the_input(make_inputs):
    layer = uk.Dropout(0.0, seed=3)
    assert not hasattr(layer, "seed_generator")
    x = make_inputs((4, 6))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=True)), x)


def test_rate_one_drops_everything(make_inputs):
    y = outputs(uk.Dropout(1.0, seed=3), make_inputs((4, 6)), calls=1)[0]
    np.testing.assert_array_equal(y, np.zeros((4, 6), np.float32))


def test_same_seed_same_masks_other_seed_other_masks(make_inputs):
    x = make_inputs((8, 16))
    first, again, other = (outputs(uk.Dropout(0.5, seed=s), x, calls=2) for s in (21, 21, 22))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[0], first[1])  # each call its own mask


def test_seed_none_follows_keras_set_random_seed(make_inputs):
    x = make_inputs((8, 16))
    keras.utils.set_random_seed(1234)
    first = outputs(uk.Dropout(0.5), x, calls=1)[0]
    keras.utils.set_random_seed(1234)
    again = outputs(uk.Dropout(0.5), x, calls=1)[0]
    np.testing.assert_array_equal(first, again)


def test_float16_and_bfloat16_inputs_keep_their_dtype_and_mask(make_inputs):
    x = make_inputs((4, 8))
    for dtype in ("float16", "bfloat16"):
        layer = uk.Dropout(0.5, seed=9, dtype=dtype)
        y = layer(keras.ops.cast(x, dtype), training=True)
        assert keras.backend.standardize_dtype(y.dtype) == dtype
        keep = keras.ops.convert_to_numpy(keras.ops.cast(y, "float32")) != 0
        reference_keep = outputs(uk.Dropout(0.5, seed=9), x, calls=1)[0] != 0
        np.testing.assert_array_equal(keep, reference_keep)
