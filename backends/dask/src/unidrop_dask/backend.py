"""The Dask backend's descriptor, what the entry point loads (imports Dask only when used)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from unidrop import Backend, Implementation

if TYPE_CHECKING:
    from unidrop.conformance.adapter import SuiteAdapter


class DaskBackend(Backend):
    """Lazy mask stream v1 for ``dask.array.Array``: each chunk goes to its own backend.

    Building the result computes nothing; each chunk, when computed, calls
    ``unidrop.dropout(chunk, ..., global_shape=x.shape, offset=<the chunk's place>)``, which the
    chunk's backend (NumPy, or CuPy for CuPy-backed chunks) computes. The result equals that of
    the whole array computed at once, for any chunking. ``seed=None`` draws one seed from
    unidrop's global source when the graph is built (:func:`unidrop.manual_seed` governs it), so
    that all chunks share it.
    """

    name = "dask"
    framework = "dask"
    distribution = "unidrop-dask"

    def accepts(self, x: Any) -> bool:
        array = sys.modules.get("dask.array")  # not imported: x cannot be a dask array
        return array is not None and isinstance(x, array.Array)

    def load(self) -> Implementation:
        from .implementation import DaskImplementation

        return DaskImplementation()

    def suite_adapter(self) -> SuiteAdapter:
        from .suite_adapter import DaskSuiteAdapter

        return DaskSuiteAdapter(self)
