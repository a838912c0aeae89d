"""The same layers, seeds and inputs give bit-identical outputs on Keras' NumPy, JAX and torch
backends: each backend runs in its own process (Keras picks its backend once per process).

It starts every backend itself, so it runs once, in the NumPy run of the session; the three
processes (each importing Keras and its framework) take a few seconds each, run side by side:
the one test here that is slow, and it is the check the layers exist for."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from unidrop_keras import SUPPORTED

from unidrop import reference

if keras.backend.backend() != "numpy":
    pytest.skip("runs once, in the NumPy run: it starts every Keras backend itself", allow_module_level=True)

SCRIPT = """
import json
import keras
import numpy as np
import unidrop_keras as uk

x = (np.arange(2 * 3 * 4 * 5, dtype=np.float32) + 1).reshape(2, 3, 4, 5)
layers = [
    uk.Dropout(0.5, seed=42),
    uk.Dropout(0.25, seed=2**32 - 1, noise_shape=(None, 1, None, 1)),
    uk.SpatialDropout2D(0.5, seed=7, data_format="channels_first"),
]
out = []
for layer in layers:
    for _ in range(2):
        out.append(keras.ops.convert_to_numpy(layer(x, training=True)).ravel().tolist())
family = [uk.AlphaDropout(0.3, seed=5), uk.GaussianDropout(0.3, seed=6)]
out += [keras.ops.convert_to_numpy(layer(x, training=True)).ravel().tolist() for layer in family]
print(json.dumps(out))
"""


def outputs_on(backends: list[str]) -> dict[str, list[list[float]]]:
    """The script's outputs on each backend, the processes run side by side."""
    runs = {
        backend: subprocess.Popen(
            [sys.executable, "-c", SCRIPT],
            env={**os.environ, "KERAS_BACKEND": backend},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for backend in backends
    }
    results = {}
    for backend, run in runs.items():
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, f"KERAS_BACKEND={backend}: {err[-3000:]}"
        results[backend] = json.loads(out.strip().splitlines()[-1])
    return results


def test_every_keras_backend_gives_the_same_outputs(expected):
    missing = [name for name in SUPPORTED if name != "numpy" and importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"needs every framework installed (the keras nox session has them); missing: {missing}")
    results = outputs_on(list(SUPPORTED))
    dropouts = {backend: out[:-2] for backend, out in results.items()}
    assert dropouts["jax"] == dropouts["numpy"]
    assert dropouts["torch"] == dropouts["numpy"]
    # and they are unidrop's masks: the first layer's two calls against the reference
    x = (np.arange(120, dtype=np.float32) + 1).reshape(2, 3, 4, 5)
    for k in range(2):
        np.testing.assert_array_equal(np.asarray(results["numpy"][k]), expected(x, 0.5, 42, k).ravel())
    # alpha dropout: exact up to the one rounding a fused multiply-add saves; Gaussian dropout:
    # within the reference's bound (each library's log and cos), on every backend
    allowed, _ = reference.alpha_dropout(x.ravel().tolist(), x.shape, "float32", 0.3, seed=5)
    want, bound = reference.gaussian_dropout(x.ravel().tolist(), x.shape, "float32", 0.3, seed=6)
    for backend, out in results.items():
        assert all(got in pair for got, pair in zip(out[-2], allowed, strict=True)), backend
        assert np.all(np.abs(np.asarray(out[-1]) - np.asarray(want)) <= np.asarray(bound)), backend
