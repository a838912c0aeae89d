"""The JAX backend's descriptor, what the entry point loads (imports JAX only when used)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from unidrop import Abilities, Backend, Implementation

if TYPE_CHECKING:
    from unidrop.conformance.adapter import SuiteAdapter


class JaxBackend(Backend):
    """Mask stream v1 for ``jax.Array`` (tracers included): jit, vmap, grad and sharding.

    Randomness is explicit, as everywhere in JAX: ``seed`` is a JAX key (typed or raw
    ``uint32[2]``), an integer, or a scalar integer array, possibly traced; ``seed=None``
    raises ValueError. A key with data ``(a, b)`` is the seed ``a * 2**32 + b``, so
    ``jax.random.key(n)`` and ``seed=n`` give the same mask. See docs/jax.md.
    """

    name = "jax"
    framework = "jax"
    distribution = "unidrop-jax"
    abilities = Abilities(autograd=True, jit=True, explicit_seed=True)

    def accepts(self, x: Any) -> bool:
        jax = sys.modules["jax"]
        return isinstance(x, jax.Array)

    def load(self) -> Implementation:
        from .implementation import JaxImplementation

        return JaxImplementation()

    def suite_adapter(self) -> SuiteAdapter:
        from .suite_adapter import JaxSuiteAdapter

        return JaxSuiteAdapter(self)
