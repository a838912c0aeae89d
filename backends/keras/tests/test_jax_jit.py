"""On Keras' JAX backend, a layer's stateless call under ``jax.jit`` (as Keras' jitted training
step makes it) gives the same masks as eager calls: the seed state is traced, and unidrop's JAX
backend takes traced integer seeds and streams."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import unidrop_keras as uk

from unidrop import reference

if keras.backend.backend() != "jax":
    pytest.skip("the JAX backend's jit: this run uses another Keras backend", allow_module_level=True)

import jax  # after the skip: only the JAX run has a reason to import it


def test_jitted_stateless_calls_use_stream_k_at_call_k(expected, make_inputs):
    layer = uk.Dropout(0.5, seed=2**32 - 3, noise_shape=(None, 1, None))
    x = make_inputs((2, 3, 4))

    @jax.jit
    def call(variables, x):
        return layer.stateless_call([], variables, x, training=True)

    variables = [v.value for v in layer.non_trainable_variables]
    for k in range(3):
        y, variables = call(variables, x)
        np.testing.assert_array_equal(np.asarray(y), expected(x, 0.5, 2**32 - 3, k, (1,)))
    assert call._cache_size() == 1  # one program for every call: the seed and stream are traced
    np.testing.assert_array_equal(np.asarray(variables[0]), [2**32 - 3, 3])


def test_jitted_alpha_and_gaussian_dropout_use_stream_k_at_call_k(make_inputs):
    x = make_inputs((3, 5), start=-7.0)
    alpha, gaussian = uk.AlphaDropout(0.3, seed=5), uk.GaussianDropout(0.3, seed=6)

    @jax.jit
    def call(variables, x):
        a, variables[0] = alpha.stateless_call([], [variables[0]], x, training=True)
        g, variables[1] = gaussian.stateless_call([], [variables[1]], x, training=True)
        return a, g, [variables[0][0], variables[1][0]]

    variables = [alpha.non_trainable_variables[0].value, gaussian.non_trainable_variables[0].value]
    values = x.ravel().tolist()
    for k in range(2):
        a, g, variables = call(variables, x)
        allowed, _ = reference.alpha_dropout(values, x.shape, "float32", 0.3, seed=5, stream=k)
        assert all(got in pair for got, pair in zip(np.asarray(a).ravel().tolist(), allowed, strict=True))
        want, bound = reference.gaussian_dropout(values, x.shape, "float32", 0.3, seed=6, stream=k)
        assert np.all(np.abs(np.asarray(g).ravel() - np.asarray(want)) <= np.asarray(bound))
