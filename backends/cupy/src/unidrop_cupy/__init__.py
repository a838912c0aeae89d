"""unidrop's CuPy backend: mask stream v1 in one fused CUDA kernel at memory bandwidth.

Importing this package does not import CuPy; the entry point ``unidrop.backends: cupy``
points at :class:`CupyBackend`. :mod:`unidrop_cupy.functional` has the helpers for code
that writes its own backward pass (``apply_mask``, ``dropout_backward``).
"""

from .backend import CupyBackend

__all__ = ["CupyBackend"]
__version__ = "0.1.0"
