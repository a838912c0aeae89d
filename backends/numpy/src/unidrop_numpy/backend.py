"""The NumPy backend object registered with unidrop (imports NumPy only when used)."""

from __future__ import annotations

import sys
from typing import Any

from unidrop import Backend, DropoutPlan


class NumpyBackend(Backend):
    """Mask stream v1 for ``numpy.ndarray`` (and NumPy scalars), computed in fixed-size chunks.

    ``seed=None`` draws the seed from unidrop's global source, which
    :func:`unidrop.manual_seed` makes reproducible; NumPy's own random state is never touched.
    """

    name = "numpy"
    framework = "numpy"
    distribution = "unidrop-numpy"
    dtypes = frozenset({"float16", "float32", "float64"})

    def accepts(self, x: Any) -> bool:
        np = sys.modules["numpy"]
        return isinstance(x, (np.ndarray, np.generic))

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        return tuple(x.shape), x.dtype.name

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        import numpy as np

        from .chunked import dropout_array

        if isinstance(x, np.ndarray) and type(x) is not np.ndarray:
            kind = f"{type(x).__module__}.{type(x).__qualname__}"
            raise TypeError(
                f"unidrop's NumPy backend takes plain numpy.ndarray, got the subclass {kind}, whose "
                "meaning (a mask, matrix rules) it cannot keep; pass numpy.asarray(x) or x.filled(...)"
            )
        array = np.asarray(x)
        y, keep = dropout_array(array, plan)
        return (y[()] if isinstance(x, np.generic) else y), keep

    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        import numpy as np

        return np.ones(shape, dtype=bool)

    def global_rng_state(self) -> Any:
        import numpy as np

        return np.random.get_state()[1]

    def from_numpy(self, array: Any, dtype: str, device: str | None = None) -> Any:
        return array.astype(dtype)

    def to_numpy(self, x: Any) -> Any:
        import numpy as np

        return np.array(x, copy=True)
