"""Training: a small model trains for a few steps in ``model.fit`` (jitted on JAX, eager on
torch), each step drawing the next stream of the layer's seed, and the masks used inside the
training step are exactly unidrop's (read back through the gradient of a linear layer)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import unidrop_keras as uk

pytestmark = pytest.mark.skipif(
    keras.backend.backend() == "numpy", reason="Keras' NumPy backend cannot train (it has no model.fit)"
)

STEPS, BATCH, FEATURES = 3, 4, 6


def sum_loss(y_true, y_pred):
    return keras.ops.sum(y_pred, axis=-1)


def counter(layer) -> int:
    return int(np.asarray(keras.ops.convert_to_numpy(layer.seed_generator.state))[1])


def test_fit_uses_stream_k_at_step_k(expected):
    # Dense(1) without bias after the dropout, kernel 0, SGD with learning rate 1 and loss
    # sum(y_pred): after the steps the kernel is minus the sum over steps of each batch's mean
    # dropped input, exact in float32 (integer inputs, scale 2, batch of 4).
    x = np.arange(1, STEPS * BATCH * FEATURES + 1, dtype=np.float32).reshape(STEPS * BATCH, FEATURES) % 7
    dropout = uk.Dropout(0.5, seed=99)
    dense = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")
    model = keras.Sequential([keras.Input((FEATURES,)), dropout, dense])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss=sum_loss)
    model.fit(x, np.zeros((STEPS * BATCH, 1), np.float32), batch_size=BATCH, shuffle=False, verbose=0)
    assert counter(dropout) == STEPS
    want = -sum(
        expected(x[k * BATCH : (k + 1) * BATCH], 0.5, 99, k).mean(axis=0, dtype=np.float64)
        for k in range(STEPS)
    )
    kernel = np.asarray(keras.ops.convert_to_numpy(dense.kernel))[:, 0]
    np.testing.assert_array_equal(kernel, want.astype(np.float32))


def test_a_small_convolutional_model_trains(make_inputs):
    keras.utils.set_random_seed(0)
    spatial = uk.SpatialDropout2D(0.25, seed=4)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            spatial,
            keras.layers.Flatten(),
            uk.Dropout(0.25, seed=5),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01), loss="mse")
    x = make_inputs((8, 6, 6, 2)) / 100.0
    y = np.ones((8, 1), np.float32)
    before = [np.asarray(keras.ops.convert_to_numpy(w)).copy() for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=4, shuffle=False, verbose=0)
    assert counter(spatial) == 2  # 2 steps: one mask per step
    assert all(np.isfinite(history.history["loss"]))
    after = [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    # inference draws no state, and gives the same output twice
    first, again = (np.asarray(keras.ops.convert_to_numpy(model(x))) for _ in range(2))
    np.testing.assert_array_equal(first, again)
    assert counter(spatial) == 2


class _AlwaysDropping(keras.Model):
    """Monte Carlo dropout: the layer is called with training=True in fit, evaluate and predict."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = uk.Dropout(0.3, seed=1)
        self.out = keras.layers.Dense(1)

    def call(self, x):
        return self.out(self.drop(x, training=True))


def test_a_model_that_always_drops_fits_and_evaluates():
    """On torch, Keras infers shapes with meta tensors (no values), the layer's seed state included."""
    x, y = np.ones((4, 4), np.float32), np.zeros((4, 1), np.float32)
    model = _AlwaysDropping()
    model(x)
    model.compile("sgd", "mse")
    model.fit(x, y, verbose=0)
    model.evaluate(x, y, verbose=0)
    assert counter(model.drop) >= 3  # the call above, the training step, the evaluation
