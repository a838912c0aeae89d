"""The wrong backends' implementations: the NumPy backend's stream with one named mistake each.

:class:`WrongImplementation` is whole-array NumPy, correct everywhere: it draws the words
(:meth:`~WrongImplementation.words`), compares them with the threshold
(:meth:`~WrongImplementation.keep`), scales (:meth:`~WrongImplementation.scale_of`) and selects
(:meth:`~WrongImplementation.apply`). Each subclass overrides one step to carry its defect.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from unidrop_numpy.implementation import NumpyImplementation
from unidrop_numpy.philox_arrays import PhiloxWorkspace

from unidrop import DropoutPlan


def _size(plan: DropoutPlan) -> int:
    return int(np.prod(plan.mask_shape))


class WrongImplementation(NumpyImplementation):
    """Mask stream v1 in whole-array NumPy, in overridable steps; no defect of its own."""

    #: whole arrays only (the NumPy backend's blocks are not carried over): every block check fails
    supports_blocks = False

    def words(self, plan: DropoutPlan) -> Any:
        """The mask's random words, element i taking word i % 4 of block i // 4."""
        n = _size(plan)
        return PhiloxWorkspace(n // 4 + 2).words(plan.seed, plan.stream, 0, n).copy()

    def keep(self, plan: DropoutPlan) -> Any:
        """The keep mask: word >= threshold."""
        if plan.drops_all:
            return np.zeros(plan.mask_shape, dtype=bool)
        return (self.words(plan) >= plan.threshold).reshape(plan.mask_shape)

    def scale_of(self, plan: DropoutPlan) -> float:
        """The factor of kept elements: 1 / (1 - p)."""
        return plan.scale

    def apply(self, x: Any, keep: Any, plan: DropoutPlan) -> Any:
        """Kept elements scaled, dropped ones +0, in the plan's compute dtype."""
        compute = np.dtype(plan.compute_dtype)
        product = np.multiply(x, compute.type(self.scale_of(plan)), dtype=compute)
        return np.where(np.broadcast_to(keep, plan.shape), product, 0).astype(x.dtype)

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        keep = self.keep(plan)
        y = self.apply(np.asarray(x), keep, plan)
        return y, (keep if plan.return_mask else None)


class OffByOneThreshold(WrongImplementation):
    """Drops iff u <= t instead of u < t."""

    def keep(self, plan: DropoutPlan) -> Any:
        return (self.words(plan) > plan.threshold).reshape(plan.mask_shape)


class WrongScale(WrongImplementation):
    """Scales kept elements by 1/p instead of 1/(1-p)."""

    def scale_of(self, plan: DropoutPlan) -> float:
        return 1.0 / plan.p


class WrongCounterLayout(WrongImplementation):
    """Element i takes word i // n_blocks of block i % n_blocks instead of word i % 4 of block i // 4."""

    def words(self, plan: DropoutPlan) -> Any:
        n = _size(plan)
        blocks = (n + 3) // 4
        by_block = PhiloxWorkspace(blocks + 1).blocks(plan.seed, plan.stream, 0, blocks)
        return by_block.T.reshape(-1)[:n].copy()


class MultiplyInsteadOfSelect(WrongImplementation):
    """Multiplies by the 0/1 mask, so dropped NaN and Inf stay NaN."""

    def apply(self, x: Any, keep: Any, plan: DropoutPlan) -> Any:
        compute = np.dtype(plan.compute_dtype)
        return (x.astype(compute) * keep * compute.type(plan.scale)).astype(x.dtype)


class IgnoresStream(WrongImplementation):
    """Always uses stream 0."""

    def words(self, plan: DropoutPlan) -> Any:
        n = _size(plan)
        return PhiloxWorkspace(n // 4 + 2).words(plan.seed, 0, 0, n).copy()


class ModifiesInput(WrongImplementation):
    """Writes the result into the input as well."""

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        y, keep = super().dropout(x, plan)
        if x.flags.writeable:
            x[...] = y
        return y, keep


class ForeignMask:
    """Another library's boolean array: NumPy reads it (``__array__``), but it is not the input's type."""

    def __init__(self, values: np.ndarray) -> None:
        self._values = values
        self.shape, self.dtype = values.shape, values.dtype

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._values if dtype is None else self._values.astype(dtype)


class MaskOfAnotherType(WrongImplementation):
    """Returns the keep mask as another library's array (which NumPy's asarray reads all the same)."""

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        y, keep = super().dropout(x, plan)
        return y, (None if keep is None else ForeignMask(keep))
