"""How the conformance suite makes and reads DataArrays: NumPy-backed, with a name and attrs."""

import numpy as np
import xarray as xr

from unidrop.conformance.adapter import SuiteAdapter


class XarraySuiteAdapter(SuiteAdapter):
    def from_numpy(self, array: np.ndarray, dtype: str, device: str | None = None) -> xr.DataArray:
        return xr.DataArray(array.astype(dtype), name="x", attrs={"units": "m"})

    def to_numpy(self, x: xr.DataArray) -> np.ndarray:
        return np.array(x)  # a copy
