"""The Array API backend's descriptor, what the entry point loads (imports no array library)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unidrop import Abilities, Backend, Implementation

if TYPE_CHECKING:
    from unidrop.conformance.adapter import SuiteAdapter


class ArrayApiBackend(Backend):
    """Mask stream v1 for any array whose type has ``__array_namespace__`` (the Array API standard).

    A generic backend: asked only after every specific one declined the array, so a NumPy array
    still goes to unidrop-numpy and a JAX array to unidrop-jax. It computes with standard
    operations alone (uint64 Philox, ``where``, ``astype``); float16 (where the library has it),
    float32 and float64 are supported, bfloat16 is not (the standard has no bfloat16).
    ``seed=None`` draws the seed from unidrop's global source (:func:`unidrop.manual_seed`).
    """

    name = "array_api"
    framework = "array_api_compat"  # the library it drives; the arrays are any Array API library's
    distribution = "unidrop-array-api"
    abilities = Abilities()
    generic = True

    def accepts(self, x: Any) -> bool:
        """True if ``type(x)`` has ``__array_namespace__``; the type alone decides, nothing is imported."""
        return callable(getattr(type(x), "__array_namespace__", None))

    def load(self) -> Implementation:
        from .implementation import ArrayApiImplementation

        return ArrayApiImplementation()

    def suite_adapter(self) -> SuiteAdapter:
        from .suite_adapter import StrictSuiteAdapter

        return StrictSuiteAdapter(self)
