"""unidrop's Keras 3 layers: Keras' dropout layers with unidrop's mask, the same on every Keras backend.

Importing this registers the layers with Keras' serialization (package ``"unidrop"``), so a
saved model that uses them loads once ``unidrop_keras`` is imported.
"""

from .family_layers import AlphaDropout, GaussianDropout
from .layers import Dropout, SpatialDropout1D, SpatialDropout2D, SpatialDropout3D
from .support import SUPPORTED, check_keras_backend

__all__ = [
    "SUPPORTED",
    "AlphaDropout",
    "Dropout",
    "GaussianDropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "check_keras_backend",
]
