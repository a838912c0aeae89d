"""unidrop: dropout defined once and exactly, the same mask for the same seed everywhere.

Importing unidrop reads the installed backends' entry points but imports no array
framework; a backend imports its framework only when an array of that framework arrives.
"""

from . import registry
from .api import dropout
from .arguments import STREAM_VERSION, DropoutPlan
from .backend import Abilities, Backend, Implementation
from .family import alpha_dropout, drop_path, dropout_backward, dropout_backward_from_mask, gaussian_dropout
from .include_dir import get_include
from .registry import BackendInfo, get_backend, list_backends
from .seeding import manual_seed

__version__ = "0.1.0"

__all__ = [
    "STREAM_VERSION",
    "Abilities",
    "Backend",
    "BackendInfo",
    "DropoutPlan",
    "Implementation",
    "__version__",
    "alpha_dropout",
    "drop_path",
    "dropout",
    "dropout_backward",
    "dropout_backward_from_mask",
    "gaussian_dropout",
    "get_backend",
    "get_include",
    "list_backends",
    "manual_seed",
]

# Discover the installed backends now (reading entry points imports no framework), so that a
# first dropout call traced by a compiler (torch.compile, fullgraph) finds the registry ready.
registry.backends()
