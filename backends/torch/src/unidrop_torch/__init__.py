"""unidrop's PyTorch backend: mask stream v1 on CPU and CUDA tensors.

Importing this package does not import torch; the entry point ``unidrop.backends: torch``
points at :class:`TorchBackend`. The torch-facing names (:class:`Dropout` and its channel-wise
forms, :func:`dropout`, :func:`convert` and :func:`set_step`) are imported on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from .backend import TorchBackend

__all__ = [
    "AlphaDropout",
    "DropPath",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "FeatureAlphaDropout",
    "TorchBackend",
    "convert",
    "dropout",
    "dropout_layers",
    "set_step",
]
__version__ = "0.1.0"

_LAZY = {
    "AlphaDropout": "family_modules",
    "FeatureAlphaDropout": "family_modules",
    "DropPath": "family_modules",
    "Dropout": "modules",
    "Dropout1d": "modules",
    "Dropout2d": "modules",
    "Dropout3d": "modules",
    "dropout": "functional",
    "convert": "conversion",
    "dropout_layers": "conversion",
    "set_step": "conversion",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'unidrop_torch' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
