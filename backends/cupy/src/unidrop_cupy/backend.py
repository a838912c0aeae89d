"""The CuPy backend object registered with unidrop (imports CuPy only when used)."""

from __future__ import annotations

import sys
from typing import Any

from unidrop import Backend, DropoutPlan

_BASE_DTYPES = frozenset({"float16", "float32", "float64"})


def bfloat16_dtype() -> Any | None:
    """NumPy's ``bfloat16`` (from ml_dtypes) if this CuPy takes it (CuPy >= 14), else None."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        try:
            if int(cupy.__version__.split(".")[0]) < 14:
                return None
        except ValueError:  # pragma: no cover - an unparseable development version
            pass
    import numpy

    return numpy.dtype(ml_dtypes.bfloat16)


class CupyBackend(Backend):
    """Mask stream v1 for ``cupy.ndarray``: one fused CUDA kernel, bit-identical to every backend.

    One launch on the current CuPy stream reads ``x`` once and writes ``y`` once (and the
    keep mask with ``return_mask=True``); there is no host synchronisation. Any strides and
    ``broadcast_dims`` are handled in the kernel by each element's logical index. The result
    keeps the input's memory order (``cupy.empty_like``).

    ``seed=None`` draws the seed from unidrop's global source (:func:`unidrop.manual_seed`);
    CuPy's own random state is never touched. bfloat16 needs CuPy >= 14 and ml_dtypes.
    """

    name = "cupy"
    framework = "cupy"
    distribution = "unidrop-cupy"

    @property  # type: ignore[override]
    def dtypes(self) -> frozenset[str]:  # bfloat16 where CuPy and ml_dtypes provide it
        return _BASE_DTYPES | ({"bfloat16"} if bfloat16_dtype() is not None else set())

    def accepts(self, x: Any) -> bool:
        return isinstance(x, sys.modules["cupy"].ndarray)

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        return tuple(x.shape), x.dtype.name

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        from .run import dropout_array

        return dropout_array(x, plan)

    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        import cupy

        with x.device:
            return cupy.ones(shape, dtype=bool)

    def devices(self) -> list[str]:
        """``cuda:N`` for every visible GPU; empty where CuPy finds none (no driver, no device)."""
        import cupy

        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception:  # CUDARuntimeError without a driver; ImportError of a broken install
            return []
        return [f"cuda:{i}" for i in range(count)]

    def device_of(self, x: Any) -> str:
        return f"cuda:{x.device.id}"

    def from_numpy(self, array: Any, dtype: str, device: str | None = None) -> Any:
        import cupy
        import numpy

        target = bfloat16_dtype() if dtype == "bfloat16" else numpy.dtype(dtype)
        if target is None:
            raise TypeError("bfloat16 CuPy arrays need CuPy >= 14 and ml_dtypes")
        host = numpy.asarray(array).astype(target)
        index = 0 if device is None else int(device.rsplit(":", 1)[-1])
        with cupy.cuda.Device(index):
            return cupy.asarray(host)

    def to_numpy(self, x: Any) -> Any:
        import cupy
        import numpy

        host = cupy.asnumpy(x)
        return host.astype(numpy.float32) if host.dtype.name == "bfloat16" else host
