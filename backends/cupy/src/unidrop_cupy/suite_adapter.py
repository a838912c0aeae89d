"""How the conformance suite makes and reads CuPy arrays for the CuPy backend."""

from __future__ import annotations

from typing import Any

import cupy
import numpy

from unidrop.conformance.adapter import SuiteAdapter

from . import bfloat16


class CupySuiteAdapter(SuiteAdapter):
    """CuPy arrays on CUDA devices (``cuda:N``).

    No global random state is reported: ``seed=None`` draws from unidrop's global source
    (the default :meth:`manual_seed`), and CuPy's ``cupy.random`` is never read or changed.
    CuPy has no autograd and no compiler of Python functions, so no ``vjp`` and no ``jit``.
    """

    def from_numpy(self, array: Any, dtype: str, device: str | None = None) -> Any:
        target = bfloat16.numpy_dtype() if dtype == bfloat16.NAME else numpy.dtype(dtype)
        if target is None:
            raise TypeError(bfloat16.unavailable_reason())
        host = numpy.asarray(array).astype(target)
        index = 0 if device is None else int(device.rsplit(":", 1)[-1])
        with cupy.cuda.Device(index):
            return cupy.asarray(host)

    def to_numpy(self, x: Any) -> Any:
        host = cupy.asnumpy(x)
        return host.astype(numpy.float32) if host.dtype.name == bfloat16.NAME else host

    def device_of(self, x: Any) -> str:
        return f"cuda:{x.device.id}"
