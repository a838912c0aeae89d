"""How the conformance suite makes and reads arrays for the Array API backend: array-api-strict's."""

from __future__ import annotations

from typing import Any

import array_api_strict as xps
import numpy as np

from unidrop.conformance.adapter import SuiteAdapter


class StrictSuiteAdapter(SuiteAdapter):
    """array-api-strict arrays (the standard and nothing more) on its default CPU device.

    array-api-strict has float32 and float64 only: the suite checks those.
    """

    def dtypes(self) -> frozenset[str]:
        return frozenset({"float32", "float64"})

    def from_numpy(self, array: Any, dtype: str, device: str | None = None) -> Any:
        return xps.asarray(np.asarray(array).astype(dtype), dtype=getattr(xps, dtype))

    def to_numpy(self, x: Any) -> Any:
        return np.array(np.from_dlpack(x), copy=True)
