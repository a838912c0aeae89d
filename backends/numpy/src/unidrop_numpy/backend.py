"""The NumPy backend's descriptor, what the entry point loads (imports NumPy only when used)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from unidrop import Backend, Implementation

if TYPE_CHECKING:
    from unidrop.conformance.adapter import SuiteAdapter


class NumpyBackend(Backend):
    """Mask stream v1 for ``numpy.ndarray`` (and NumPy scalars), by the compiled kernel if built.

    ``seed=None`` draws the seed from unidrop's global source, which
    :func:`unidrop.manual_seed` makes reproducible; NumPy's own random state is never touched.
    bfloat16 arrays (ml_dtypes' ``bfloat16``, as JAX uses) are supported where ml_dtypes is
    installed; unidrop-numpy does not require it.
    """

    name = "numpy"
    framework = "numpy"
    distribution = "unidrop-numpy"

    def accepts(self, x: Any) -> bool:
        np = sys.modules["numpy"]
        return isinstance(x, (np.ndarray, np.generic))

    def load(self) -> Implementation:
        from .implementation import NumpyImplementation

        return NumpyImplementation()

    def suite_adapter(self) -> SuiteAdapter:
        from .suite_adapter import NumpySuiteAdapter

        return NumpySuiteAdapter(self)
