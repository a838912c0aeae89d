"""The CuPy backend's descriptor, what the entry point loads (imports CuPy only when used)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from unidrop import Abilities, Backend, Implementation

if TYPE_CHECKING:
    from unidrop.conformance.adapter import SuiteAdapter


class CupyBackend(Backend):
    """Mask stream v1 for ``cupy.ndarray``: one fused CUDA kernel, bit-identical to every backend.

    One launch on the current CuPy stream reads ``x`` once and writes ``y`` once (and the
    keep mask with ``return_mask=True``); there is no host synchronisation. Any strides and
    ``broadcast_dims`` are handled in the kernel by each element's logical index. The result
    keeps the input's memory order (``cupy.empty_like``).

    ``seed=None`` draws the seed from unidrop's global source (:func:`unidrop.manual_seed`);
    CuPy's own random state is never touched. bfloat16 needs CuPy >= 14 and ml_dtypes.
    CuPy has no autograd and no compiler of Python functions: no ability is declared (the
    backward pass is :mod:`unidrop_cupy.functional`).
    """

    name = "cupy"
    framework = "cupy"
    distribution = "unidrop-cupy"
    abilities = Abilities(autograd=False, jit=False, explicit_seed=False)

    def accepts(self, x: Any) -> bool:
        return isinstance(x, sys.modules["cupy"].ndarray)

    def load(self) -> Implementation:
        from .implementation import CupyImplementation

        return CupyImplementation()

    def suite_adapter(self) -> SuiteAdapter:
        from .suite_adapter import CupySuiteAdapter

        return CupySuiteAdapter(self)
