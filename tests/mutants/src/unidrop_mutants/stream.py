"""Mask stream v1 in whole-array NumPy, in small overridable steps: the mutants' correct base.

:class:`StreamV1` computes every decision of the spec in its own method, so that a mutant is a
subclass overriding exactly one of them:

randomness  :meth:`~StreamV1.key`, :meth:`~StreamV1.counter`, :meth:`~StreamV1.block_words`,
            :attr:`~StreamV1.lanes`, :meth:`~StreamV1.mask_words`, :meth:`~StreamV1.threshold`
values      :meth:`~StreamV1.scale`, :meth:`~StreamV1.scaled`, :meth:`~StreamV1.round_back`,
            :meth:`~StreamV1.select`
layout      :meth:`~StreamV1.dropout` (reads any layout as a C-order array)
paths       :attr:`~StreamV1.path`: ``"eager"``, or ``"jit"`` / ``"grad"`` while the suite
            adapter (:mod:`unidrop_mutants.suite_adapter`) runs a compiled call or a gradient;
            :meth:`~StreamV1.plan_on_path` may change the plan there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
from unidrop_numpy.implementation import NumpyImplementation

from unidrop import DropoutPlan
from unidrop.philox import PHILOX_W0, PHILOX_W1, ROUNDS, split64

from .philox import philox4x32

_MASK = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)


class StreamV1(NumpyImplementation):
    """Mask stream v1 on NumPy arrays, exact and unoptimised; no defect of its own.

    Its dtypes, ``shape_and_dtype``, ``full_mask`` and randomness rules are the NumPy backend's.
    """

    #: the one-line defect (a mutant's docstring says it too) and the suite tests that must catch it
    caught_by: ClassVar[tuple[str, ...]] = ()
    rounds: ClassVar[int] = ROUNDS
    bumps: ClassVar[tuple[int, int]] = (PHILOX_W0, PHILOX_W1)
    #: element i takes word ``lanes[i % 4]`` of block ``i // 4``
    lanes: ClassVar[tuple[int, int, int, int]] = (0, 1, 2, 3)

    path: str = "eager"

    def describe(self) -> str:
        """For ``unidrop backends``: whole-array NumPy (not the NumPy backend's kernels), and the defect."""
        if not self.caught_by:
            return "mask stream v1 in whole-array NumPy; defect: none (the control)"
        defect = (type(self).__doc__ or "").strip().splitlines()[0]
        return f"mask stream v1 in whole-array NumPy; defect: {defect}"

    @contextlib.contextmanager
    def on_path(self, path: str) -> Iterator[None]:
        """Run the body as the ``"jit"`` or ``"grad"`` path (the suite adapter's compiled call or vjp)."""
        before, self.path = self.path, path
        try:
            yield
        finally:
            self.path = before

    # ---- randomness -------------------------------------------------------------------------
    def key(self, plan: DropoutPlan) -> tuple[int, int]:
        """``(k0, k1)``: the seed's low and high words."""
        return split64(plan.seed)

    def counter(self, plan: DropoutPlan, blocks: np.ndarray) -> tuple[Any, Any, Any, Any]:
        """The counter of each block: (block low, block high, stream low, stream high)."""
        s0, s1 = split64(plan.stream)
        return blocks & _MASK, blocks >> _SHIFT, s0, s1

    def block_words(self, plan: DropoutPlan, blocks: np.ndarray) -> np.ndarray:
        """The four Philox words of each block, ``(len(blocks), 4)``."""
        return philox4x32(self.counter(plan, blocks), self.key(plan), self.rounds, self.bumps)

    def words_at(self, plan: DropoutPlan, indices: np.ndarray) -> np.ndarray:
        """The words u_i of the flat mask indices ``indices`` (uint64, any order)."""
        lanes = np.array(self.lanes)[(indices & np.uint64(3)).astype(np.intp)]
        return self.block_words(plan, indices >> np.uint64(2))[np.arange(indices.size), lanes]

    def block_strides(self, plan: DropoutPlan) -> tuple[int, ...]:
        """The global mask's strides, one per axis of the block's mask."""
        assert plan.block is not None
        return plan.block.global_strides()

    def block_offset(self, plan: DropoutPlan) -> tuple[int, ...]:
        """The block mask's offset in the global mask (0 on broadcast axes)."""
        assert plan.block is not None
        return tuple(int(o) for o in plan.block.mask_offset)

    def mask_indices(self, plan: DropoutPlan) -> np.ndarray:
        """The global flat mask index of every element of a block's mask, in C order (uint64)."""
        index = np.zeros(plan.mask_shape, dtype=np.uint64)
        strides, offset = self.block_strides(plan), self.block_offset(plan)
        for axis, size in enumerate(plan.mask_shape):
            along = np.arange(offset[axis], offset[axis] + size, dtype=np.uint64) * np.uint64(strides[axis])
            index += along.reshape([size if a == axis else 1 for a in range(len(plan.mask_shape))])
        return index.reshape(-1)

    def words(self, plan: DropoutPlan, start: int, count: int) -> np.ndarray:
        """The words u_i of the flat mask indices ``start .. start + count - 1``."""
        if count == 0:
            return np.zeros(0, np.uint64)
        first, last = start >> 2, (start + count - 1) >> 2
        blocks = np.arange(first, last + 1, dtype=np.uint64)
        flat = self.block_words(plan, blocks)[:, list(self.lanes)].reshape(-1)
        offset = start - 4 * first
        return flat[offset : offset + count]

    def mask_words(self, plan: DropoutPlan) -> np.ndarray:
        """The words of the whole mask, in C order (of a block: its slice of the global mask)."""
        if plan.block is not None:
            return self.words_at(plan, self.mask_indices(plan))
        return self.words(plan, 0, int(np.prod(plan.mask_shape)))

    def threshold(self, plan: DropoutPlan) -> int:
        """t = floor(p * 2**32)."""
        return plan.threshold

    def keep(self, plan: DropoutPlan) -> np.ndarray:
        """The keep mask of the mask shape: u >= t."""
        return (self.mask_words(plan) >= np.uint64(self.threshold(plan))).reshape(plan.mask_shape)

    # ---- values -----------------------------------------------------------------------------
    def scale(self, plan: DropoutPlan) -> np.generic:
        """s = 1 / (1 - p) in float64, rounded to the compute dtype."""
        return np.dtype(plan.compute_dtype).type(plan.scale)

    def scaled(self, x: np.ndarray, plan: DropoutPlan) -> np.ndarray:
        """Every element as if kept: ``x * s`` in the compute dtype, rounded back to x's dtype."""
        product = np.multiply(x, self.scale(plan), dtype=np.dtype(plan.compute_dtype))
        return self.round_back(product, x.dtype)

    def round_back(self, product: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """The compute-dtype product rounded once (to nearest even) to the input's dtype."""
        return product.astype(dtype)

    def select(self, keep: np.ndarray, kept: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Kept elements' values, and exactly +0 where dropped (a select, not a multiply)."""
        return np.where(keep, kept, np.zeros((), x.dtype))

    # ---- the call ---------------------------------------------------------------------------
    def plan_on_path(self, plan: DropoutPlan) -> DropoutPlan:
        """The plan as the current :attr:`path` uses it (unchanged)."""
        return plan

    def compute(self, x: np.ndarray, plan: DropoutPlan) -> tuple[np.ndarray, np.ndarray]:
        """``(y, keep)`` for ``x``, read in logical (C) order whatever its layout."""
        values = np.asarray(x, order="C")  # a C-order copy if x is not one (0-d stays 0-d)
        keep = self.keep(plan)
        with np.errstate(all="ignore"):  # overflow to inf and inf * 0 are the spec's, not warnings
            y = self.select(np.broadcast_to(keep, plan.shape), self.scaled(values, plan), values)
        return y, keep

    def mask_out(self, keep: np.ndarray, plan: DropoutPlan) -> np.ndarray:
        """The mask returned to the caller: bool, of the mask shape."""
        return keep

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        array = np.asarray(x)
        y, keep = self.compute(array, self.plan_on_path(plan))
        y = y[()] if isinstance(x, np.generic) else y
        return y, (self.mask_out(keep, plan) if plan.return_mask else None)
