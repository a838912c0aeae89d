"""unidrop's JAX backend: mask stream v1 under jit, vmap, grad and sharding.

Importing this package does not import JAX; the entry point ``unidrop.backends: jax``
points at :class:`JaxBackend`. The Flax NNX layer lives in :mod:`unidrop_jax.nnx`
(from a clone: ``pip install ./backends/jax[flax]``; not on PyPI).
The global mask inside ``jax.shard_map`` comes from :mod:`unidrop_jax.shards`.
"""

from .backend import JaxBackend

__all__ = ["JaxBackend"]
__version__ = "0.1.0"
