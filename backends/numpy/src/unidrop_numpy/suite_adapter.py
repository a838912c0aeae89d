"""How the conformance suite makes and reads NumPy arrays for the NumPy backend."""

from __future__ import annotations

from typing import Any

import numpy as np

from unidrop.conformance.adapter import SuiteAdapter

from . import bfloat16


class NumpySuiteAdapter(SuiteAdapter):
    """NumPy arrays on the CPU; NumPy's global random state is the legacy ``np.random`` one."""

    def from_numpy(self, array: Any, dtype: str, device: str | None = None) -> Any:
        return array.astype(bfloat16.numpy_dtype() if dtype == bfloat16.NAME else dtype)

    def to_numpy(self, x: Any) -> Any:
        if bfloat16.dtype_name(x.dtype) == bfloat16.NAME:
            return np.asarray(x).astype(np.float32)  # exact: every bfloat16 is a float32
        return np.array(x, copy=True)

    def byte_swapped(self, x: Any) -> Any | None:
        """``x`` in the other byte order; None for bfloat16, which ml_dtypes keeps in native order."""
        if bfloat16.dtype_name(x.dtype) == bfloat16.NAME:
            return None
        return x.astype(x.dtype.newbyteorder())

    def global_rng_state(self) -> Any:
        """The whole legacy ``np.random`` state as integers: key, position, and the cached Gaussian.

        A draw may move only the position (or only the cached Gaussian), so all of it is compared.
        """
        _, key, position, has_gauss, cached_gauss = np.random.get_state()
        tail = [position, has_gauss, np.float64(cached_gauss).view(np.int64)]
        return np.concatenate([key.astype(np.int64), np.array(tail, dtype=np.int64)])
