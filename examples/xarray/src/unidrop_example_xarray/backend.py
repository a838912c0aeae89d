"""What the entry point loads: who the backend is and which arrays it takes. Imports no xarray."""

import sys

from unidrop import Backend, Implementation
from unidrop.conformance.adapter import SuiteAdapter


class XarrayBackend(Backend):
    name = "xarray"
    framework = "xarray"
    distribution = "unidrop-example-xarray"

    def accepts(self, x: object) -> bool:
        return isinstance(x, sys.modules["xarray"].DataArray)

    def load(self) -> Implementation:
        from .implementation import XarrayImplementation

        return XarrayImplementation()

    def suite_adapter(self) -> SuiteAdapter:
        from .suite_adapter import XarraySuiteAdapter

        return XarraySuiteAdapter(self)
