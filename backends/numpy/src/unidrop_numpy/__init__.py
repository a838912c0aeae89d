"""unidrop's NumPy backend: mask stream v1 on NumPy arrays, in bounded memory.

Importing this package does not import NumPy; the entry point
``unidrop.backends: numpy`` points at :class:`NumpyBackend`.
"""

from .backend import NumpyBackend
from .threads import get_num_threads, set_num_threads

__all__ = ["NumpyBackend", "get_num_threads", "set_num_threads"]
__version__ = "0.1.0"
