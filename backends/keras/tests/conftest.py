"""Shared by unidrop-keras's tests: the expected output of a layer call, from unidrop's reference."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import pytest

from unidrop import reference


def reference_output(
    x: np.ndarray, rate: float, seed: int, stream: int, dims: Sequence[int] = ()
) -> np.ndarray:
    """unidrop's reference dropout of the float32 array ``x`` (pure Python, not the layers' code)."""
    out, _ = reference.dropout(
        x.ravel().tolist(), x.shape, "float32", rate, seed=seed, stream=stream, broadcast_dims=dims
    )
    return np.asarray(out, dtype=np.float32).reshape(x.shape)


@pytest.fixture
def expected() -> Callable[..., np.ndarray]:
    return reference_output


def to_numpy(y: object) -> np.ndarray:
    """A layer's output as a NumPy array, on any Keras backend."""
    return np.asarray(keras.ops.convert_to_numpy(y))


@pytest.fixture
def numpy_of() -> Callable[[object], np.ndarray]:
    return to_numpy


def inputs(shape: Sequence[int], start: float = 1.0) -> np.ndarray:
    """Distinct non-zero float32 values of ``shape`` (so every dropped element shows)."""
    return (np.arange(int(np.prod(shape)), dtype=np.float32) + start).reshape(tuple(shape))


@pytest.fixture
def make_inputs() -> Callable[..., np.ndarray]:
    return inputs
