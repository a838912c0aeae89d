"""unidrop's NumPy backend: mask stream v1 on NumPy arrays, in bounded memory.

Importing this package does not import NumPy; the entry point
``unidrop.backends: numpy`` points at :class:`NumpyBackend`.
"""

from .backend import NumpyBackend

__all__ = ["NumpyBackend"]
__version__ = "0.1.0"
