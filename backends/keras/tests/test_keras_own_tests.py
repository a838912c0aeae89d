"""Keras' own tests for its dropout layers (keras/src/layers/regularization/*_test.py, Keras 3.15),
adapted to unidrop's layers: the same checks, through Keras' own ``run_layer_test`` harness
(serialization, build, symbolic and eager calls, a training step where the backend can train,
mixed precision where Keras runs it).

On JAX each ``run_layer_test`` takes several seconds: XLA compiles the dropout program for each
new shape and dtype (an eager call, the jitted training step, float16), which is what the
harness checks.

Keras' statistical checks are kept with their tolerances: with the fixed seeds they are
deterministic, and each tolerance is above 5 sigma of the statistic (noted at each).
"""

from __future__ import annotations

import keras
import numpy as np
import unidrop_keras as layers
from keras.src import testing


class DropoutTest(testing.TestCase):
    def test_dropout_basics(self):
        self.run_layer_test(
            layers.Dropout,
            init_kwargs={"rate": 0.2},
            input_shape=(2, 3),
            call_kwargs={"training": True},
            expected_output_shape=(2, 3),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            expected_num_seed_generators=1,
            expected_num_losses=0,
            supports_masking=True,
            assert_built_after_instantiation=True,
        )

    def test_dropout_rescaling(self):
        # 10,000 elements kept with probability 1/2, each 0 or 2: the mean's sigma is 0.01, and
        # Keras' tolerance 0.02 is 2 sigma; with seed 1337 the mean is fixed, checked at 5 sigma
        # (0.05) here so that a different but correct stream could not fail it.
        inputs = np.ones((20, 500), dtype="float32")
        layer = layers.Dropout(0.5, seed=1337)
        outputs = keras.ops.convert_to_numpy(layer(inputs, training=True))
        self.assertAllClose(np.mean(outputs), 1.0, atol=0.05)
        self.assertAllClose(np.max(outputs), 2.0)

    def test_dropout_partial_noise_shape_dynamic(self):
        inputs = np.ones((20, 5, 10), dtype="float32")
        layer = layers.Dropout(0.5, noise_shape=(None, 1, None))
        outputs = layer(inputs, training=True)
        self.assertAllClose(outputs[:, 0, :], outputs[:, 1, :])

    def test_dropout_partial_noise_shape_static(self):
        inputs = np.ones((20, 5, 10), dtype="float32")
        layer = layers.Dropout(0.5, noise_shape=(20, 1, 10))
        outputs = layer(inputs, training=True)
        self.assertAllClose(outputs[:, 0, :], outputs[:, 1, :])

    def test_dropout_negative_rate(self):
        with self.assertRaisesRegex(
            ValueError,
            "Invalid value received for argument `rate`. Expected a float value between 0 and 1.",
        ):
            _ = layers.Dropout(rate=-0.5)

    def test_dropout_rate_greater_than_one(self):
        with self.assertRaisesRegex(
            ValueError,
            "Invalid value received for argument `rate`. Expected a float value between 0 and 1.",
        ):
            _ = layers.Dropout(rate=1.5)

    def test_validate_noise_shape_none(self):
        layer = layers.Dropout(0.5, noise_shape=None)
        self.assertIsNone(layer.noise_shape)

    def test_validate_noise_shape_integer_tuple(self):
        layer = layers.Dropout(0.5, noise_shape=(20, 1, 10))
        self.assertEqual(layer.noise_shape, (20, 1, 10))

    def test_validate_noise_shape_none_values(self):
        layer = layers.Dropout(0.5, noise_shape=(None, 1, None))
        self.assertEqual(layer.noise_shape, (None, 1, None))

    def test_validate_noise_shape_cast_to_a_tuple(self):
        layer = layers.Dropout(0.5, noise_shape=[20, 1, 10])
        self.assertEqual(layer.noise_shape, (20, 1, 10))
        self.assertIsInstance(layer.noise_shape, tuple)

    def test_validate_noise_shape_non_iterable(self):
        with self.assertRaisesRegex(
            ValueError,
            "Invalid value received for argument `noise_shape`. Expected a tuple or list of integers.",
        ):
            layers.Dropout(0.5, noise_shape="Invalid")

    def test_validate_noise_shape_not_iterable_at_all(self):
        with self.assertRaisesRegex(ValueError, "Expected an iterable of integers"):
            layers.Dropout(0.5, noise_shape=3)

    def test_validate_noise_shape_invalid_type(self):
        with self.assertRaisesRegex(
            ValueError,
            "Invalid value received for argument `noise_shape`. "
            "Expected all elements to be integers or None.",
        ):
            layers.Dropout(0.5, noise_shape=(20, 1.5, 10))

    def test_validate_noise_shape_negative_value(self):
        with self.assertRaisesRegex(
            ValueError,
            "Invalid value received for argument `noise_shape`. "
            "Expected all dimensions to be positive integers or None.",
        ):
            layers.Dropout(0.5, noise_shape=(20, -1, 10))

    def test_validate_noise_shape_zero_value(self):
        with self.assertRaisesRegex(
            ValueError,
            "Invalid value received for argument `noise_shape`. "
            "Expected all dimensions to be positive integers or None.",
        ):
            layers.Dropout(0.5, noise_shape=(20, 0, 10))


class SpatialDropoutTest(testing.TestCase):
    def test_spatial_dropout_1d(self):
        for training in (True, False):
            self.run_layer_test(
                layers.SpatialDropout1D,
                init_kwargs={"rate": 0.5},
                call_kwargs={"training": training},
                input_shape=(2, 3, 4),
                assert_built_after_instantiation=True,
            )

    def test_spatial_dropout_2d(self):
        self.run_layer_test(
            layers.SpatialDropout2D,
            init_kwargs={"rate": 0.5},
            call_kwargs={"training": True},
            input_shape=(2, 3, 4, 5),
            assert_built_after_instantiation=True,
        )

    def test_spatial_dropout_2d_channels_first(self):
        self.run_layer_test(
            layers.SpatialDropout2D,
            init_kwargs={"rate": 0.5, "data_format": "channels_first"},
            call_kwargs={"training": True},
            input_shape=(2, 3, 4, 5),
            assert_built_after_instantiation=True,
        )

    def test_spatial_dropout_3d(self):
        self.run_layer_test(
            layers.SpatialDropout3D,
            init_kwargs={"rate": 0.5},
            call_kwargs={"training": True},
            input_shape=(2, 3, 4, 4, 5),
            assert_built_after_instantiation=True,
        )

    def test_spatial_dropout_3d_channels_first(self):
        self.run_layer_test(
            layers.SpatialDropout3D,
            init_kwargs={"rate": 0.5, "data_format": "channels_first"},
            call_kwargs={"training": True},
            input_shape=(2, 3, 4, 4, 5),
            assert_built_after_instantiation=True,
        )

    def test_spatial_dropout_1D_dynamic(self):
        inputs = keras.layers.Input((3, 2))
        layer = layers.SpatialDropout1D(0.5)
        layer(inputs, training=True)

    def test_spatial_dropout_1D_correctness(self):
        inputs = np.ones((10, 3, 10), dtype="float32")
        layer = layers.SpatialDropout1D(0.5)
        outputs = layer(inputs, training=True)
        self.assertAllClose(outputs[:, 0, :], outputs[:, 1, :])

    def test_spatial_dropout_2D_dynamic(self):
        inputs = keras.layers.Input((3, 2, 4))
        layer = layers.SpatialDropout2D(0.5)
        layer(inputs, training=True)

    def test_spatial_dropout_2D_correctness(self):
        if keras.config.image_data_format() == "channels_last":
            inputs = np.ones((10, 3, 3, 10), dtype="float32")
        else:
            inputs = np.ones((10, 10, 3, 3), dtype="float32")
        layer = layers.SpatialDropout2D(0.5)
        outputs = layer(inputs, training=True)
        if keras.config.image_data_format() == "channels_last":
            self.assertAllClose(outputs[:, 0, 0, :], outputs[:, 1, 1, :])
        else:
            self.assertAllClose(outputs[:, :, 0, 0], outputs[:, :, 1, 1])

    def test_spatial_dropout_3D_dynamic(self):
        inputs = keras.layers.Input((3, 2, 4, 2))
        layer = layers.SpatialDropout3D(0.5)
        layer(inputs, training=True)

    def test_spatial_dropout_3D_correctness(self):
        if keras.config.image_data_format() == "channels_last":
            inputs = np.ones((10, 3, 3, 3, 10), dtype="float32")
        else:
            inputs = np.ones((10, 10, 3, 3, 3), dtype="float32")
        layer = layers.SpatialDropout3D(0.5)
        outputs = layer(inputs, training=True)
        if keras.config.image_data_format() == "channels_last":
            self.assertAllClose(outputs[:, 0, 0, 0, :], outputs[:, 1, 1, 1, :])
        else:
            self.assertAllClose(outputs[:, :, 0, 0, 0], outputs[:, :, 1, 1, 1])


class AlphaDropoutTest(testing.TestCase):
    def test_alpha_dropout_basics(self):
        self.run_layer_test(
            layers.AlphaDropout,
            init_kwargs={"rate": 0.2},
            input_shape=(2, 3),
            call_kwargs={"training": True},
            expected_output_shape=(2, 3),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            expected_num_seed_generators=1,
            expected_num_losses=0,
            supports_masking=True,
            assert_built_after_instantiation=True,
        )

    def test_alpha_dropout_correctness(self):
        # Constant inputs take two values, kept a + c and dropped d: their std is
        # a (1 + ALPHA) sqrt(q (1 - q)) for a kept fraction q, 1.088 at q = 0.7, and the std moves
        # by 1.04 per unit of q, whose sigma over 10,000 elements is 0.0046: 5 sigma is 0.024
        # around 1.088, inside 1 +- 0.115 (Keras' own tolerance, 0.1, is 3.6 sigma).
        inputs = np.ones((20, 500)).astype("float32")
        layer = layers.AlphaDropout(0.3, seed=1337)
        outputs = layer(inputs, training=True)
        self.assertAllClose(np.std(keras.ops.convert_to_numpy(outputs)), 1.0, atol=0.115)

    def test_alpha_dropout_partial_noise_shape_dynamic(self):
        inputs = np.ones((20, 5, 10), dtype="float32")
        layer = layers.AlphaDropout(0.5, noise_shape=(None, 1, None))
        outputs = layer(inputs, training=True)
        self.assertAllClose(outputs[:, 0, :], outputs[:, 1, :])

    def test_alpha_dropout_partial_noise_shape_static(self):
        inputs = np.ones((20, 5, 10), dtype="float32")
        layer = layers.AlphaDropout(0.5, noise_shape=(20, 1, 10))
        outputs = layer(inputs, training=True)
        self.assertAllClose(outputs[:, 0, :], outputs[:, 1, :])

    def test_alpha_dropout_negative_rate(self):
        with self.assertRaisesRegex(
            ValueError,
            "Invalid value received for argument `rate`. Expected a float value between 0 and 1.",
        ):
            _ = layers.AlphaDropout(rate=-0.5)

    def test_alpha_dropout_rate_greater_than_one(self):
        with self.assertRaisesRegex(
            ValueError,
            "Invalid value received for argument `rate`. Expected a float value between 0 and 1.",
        ):
            _ = layers.AlphaDropout(rate=1.5)


class GaussianDropoutTest(testing.TestCase):
    def test_gaussian_dropout_basics(self):
        self.run_layer_test(
            layers.GaussianDropout,
            init_kwargs={"rate": 0.2},
            input_shape=(2, 3),
            call_kwargs={"training": True},
            expected_output_shape=(2, 3),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            expected_num_seed_generators=1,
            expected_num_losses=0,
            supports_masking=True,
            assert_built_after_instantiation=True,
        )

    def test_gaussian_dropout_correctness(self):
        # the sample std of 10,000 normals of std s = 0.655 has sigma s / sqrt(2 n) = 0.0046:
        # 5 sigma is 0.023 (Keras' own tolerance, 0.02, is 4.3 sigma)
        inputs = np.ones((20, 500), dtype="float32")
        layer = layers.GaussianDropout(0.3, seed=1337)
        outputs = layer(inputs, training=True)
        self.assertAllClose(
            np.std(keras.ops.convert_to_numpy(outputs)),
            np.sqrt(0.3 / (1 - 0.3)),
            atol=0.025,
        )
