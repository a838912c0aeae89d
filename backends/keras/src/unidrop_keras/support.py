"""Which Keras backends the layers run on, and the error for the others."""

from __future__ import annotations

#: Keras backends whose tensors a unidrop backend takes: Keras' name -> the unidrop distribution.
SUPPORTED: dict[str, str] = {"numpy": "unidrop-numpy", "jax": "unidrop-jax", "torch": "unidrop-torch"}


def check_keras_backend(name: str) -> str:
    """Return ``name`` if unidrop's Keras layers run on that Keras backend; raise otherwise.

    Raises NotImplementedError naming the backend, the supported ones and how to switch
    (``KERAS_BACKEND``): unidrop has no TensorFlow (nor OpenVINO) backend, so a layer on such a
    backend would have no unidrop kernel to run.
    """
    if name in SUPPORTED:
        return name
    allowed = ", ".join(f"{key!r} (with {dist})" for key, dist in SUPPORTED.items())
    raise NotImplementedError(
        f"unidrop's Keras layers do not support the Keras backend {name!r}: unidrop has no backend for "
        f"its tensors. They run on the Keras backends {allowed}; select one with the KERAS_BACKEND "
        "environment variable before importing keras, or use keras.layers.Dropout on this backend."
    )
