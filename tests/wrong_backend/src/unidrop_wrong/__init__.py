"""Deliberately wrong backends, one defect each, for the conformance suite's meta-tests.

Each is the NumPy backend's stream with a single, named mistake in how it is used.
They are small on purpose: whole-array NumPy, correct everywhere but at the defect.
"""

from __future__ import annotations

from typing import Any

from unidrop_numpy import NumpyBackend

from unidrop import DropoutPlan


def _np() -> Any:
    """NumPy, imported only once an array arrives (as every backend must)."""
    import numpy

    return numpy


def _workspace(blocks: int) -> Any:
    from unidrop_numpy.philox_arrays import PhiloxWorkspace

    return PhiloxWorkspace(blocks)


class _WrongBackend(NumpyBackend):
    distribution = "unidrop-wrong-backends"

    def words(self, plan: DropoutPlan) -> Any:
        np = _np()
        n = int(np.prod(plan.mask_shape))
        workspace = _workspace(n // 4 + 2)
        return workspace.words(plan.seed, plan.stream, 0, n).copy()

    def keep(self, plan: DropoutPlan) -> Any:
        np = _np()
        if plan.drops_all:
            return np.zeros(plan.mask_shape, dtype=bool)
        return (self.words(plan) >= plan.threshold).reshape(plan.mask_shape)

    def scale_of(self, plan: DropoutPlan) -> float:
        return plan.scale

    def apply(self, x: Any, keep: Any, plan: DropoutPlan) -> Any:
        np = _np()
        compute = np.dtype(plan.compute_dtype)
        product = np.multiply(x, compute.type(self.scale_of(plan)), dtype=compute)
        return np.where(np.broadcast_to(keep, plan.shape), product, 0).astype(x.dtype)

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        np = _np()
        keep = self.keep(plan)
        y = self.apply(np.asarray(x), keep, plan)
        return y, (keep if plan.return_mask else None)


class OffByOneThreshold(_WrongBackend):
    """Drops iff u <= t instead of u < t."""

    name = "wrong-threshold"

    def keep(self, plan: DropoutPlan) -> Any:
        return (self.words(plan) > plan.threshold).reshape(plan.mask_shape)


class WrongScale(_WrongBackend):
    """Scales kept elements by 1/p instead of 1/(1-p)."""

    name = "wrong-scale"

    def scale_of(self, plan: DropoutPlan) -> float:
        return 1.0 / plan.p


class WrongCounterLayout(_WrongBackend):
    """Element i takes word i // n_blocks of block i % n_blocks instead of word i % 4 of block i // 4."""

    name = "wrong-counter"

    def words(self, plan: DropoutPlan) -> Any:
        np = _np()
        n = int(np.prod(plan.mask_shape))
        blocks = (n + 3) // 4
        by_block = _workspace(blocks + 1).blocks(plan.seed, plan.stream, 0, blocks)
        return by_block.T.reshape(-1)[:n].copy()


class MultiplyInsteadOfSelect(_WrongBackend):
    """Multiplies by the 0/1 mask, so dropped NaN and Inf stay NaN."""

    name = "wrong-select"

    def apply(self, x: Any, keep: Any, plan: DropoutPlan) -> Any:
        np = _np()
        compute = np.dtype(plan.compute_dtype)
        return (x.astype(compute) * keep * compute.type(plan.scale)).astype(x.dtype)


class IgnoresStream(_WrongBackend):
    """Always uses stream 0."""

    name = "wrong-stream"

    def words(self, plan: DropoutPlan) -> Any:
        np = _np()
        n = int(np.prod(plan.mask_shape))
        return _workspace(n // 4 + 2).words(plan.seed, 0, 0, n).copy()


class ModifiesInput(_WrongBackend):
    """Writes the result into the input as well."""

    name = "wrong-inplace"

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        y, keep = super().dropout(x, plan)
        if x.flags.writeable:
            x[...] = y
        return y, keep
