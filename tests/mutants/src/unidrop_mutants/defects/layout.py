"""Mutants of memory layout: the mask must follow logical C order whatever the strides."""

from __future__ import annotations

from typing import Any

import numpy as np

from unidrop import DropoutPlan

from ..stream import StreamV1


class FortranOrder3DInMemoryOrder(StreamV1):
    """A Fortran-ordered array of 3 or more dimensions gets its mask in memory order, not C order."""

    caught_by = ("test_layouts_give_the_logical_result[fortran-3d]",)

    def compute(self, x: np.ndarray, plan: DropoutPlan) -> tuple[np.ndarray, np.ndarray]:
        if x.ndim < 3 or not x.flags.f_contiguous or x.flags.c_contiguous:
            return super().compute(x, plan)
        axes = tuple(reversed(range(x.ndim)))
        dims = [x.ndim - 1 - d for d in plan.broadcast_dims]
        memory = DropoutPlan.build(
            x.T.shape, plan.dtype, plan.p, plan.seed, plan.stream, dims, plan.return_mask
        )
        y, keep = super().compute(x.transpose(axes), memory)
        return y.transpose(axes), keep.transpose(axes)


class NegativeStridesInMemoryOrder(StreamV1):
    """Along an axis with a negative stride the mask follows memory order (it is reversed)."""

    caught_by = (
        "test_layouts_give_the_logical_result[reversed-rows]",
        "test_layouts_give_the_logical_result[reversed-3d]",
    )

    def compute(self, x: np.ndarray, plan: DropoutPlan) -> tuple[np.ndarray, np.ndarray]:
        flip = tuple(
            slice(None, None, -1) if stride < 0 and size > 1 else slice(None)
            for stride, size in zip(x.strides, x.shape, strict=True)
        )
        if all(s == slice(None) for s in flip):
            return super().compute(x, plan)
        y, keep = super().compute(x[flip], plan)
        return y[flip], keep[flip]


class ByteOrderIgnored(StreamV1):
    """An array in the other byte order (``'>f4'`` on a little-endian machine) is read as native."""

    caught_by = ("test_byte_order_does_not_change_the_result",)

    def compute(self, x: np.ndarray, plan: DropoutPlan) -> tuple[np.ndarray, np.ndarray]:
        y, keep = super().compute(x.view(x.dtype.newbyteorder("=")), plan)
        return y.view(x.dtype), keep


class ZeroStridesShareMask(StreamV1):
    """An axis with stride 0 (a broadcast view) shares one mask element, as if in broadcast_dims."""

    caught_by = (
        "test_layouts_give_the_logical_result[zero-stride-leading]",
        "test_layouts_give_the_logical_result[zero-stride-middle]",
    )

    def compute(self, x: np.ndarray, plan: DropoutPlan) -> tuple[np.ndarray, np.ndarray]:
        repeated = {
            axis
            for axis, (stride, size) in enumerate(zip(x.strides, x.shape, strict=True))
            if stride == 0 and size > 1 and x.size > 0  # an empty array has zero strides too
        }
        if not repeated - set(plan.broadcast_dims):
            return super().compute(x, plan)
        dims = sorted(repeated | set(plan.broadcast_dims))
        shared = DropoutPlan.build(
            plan.shape, plan.dtype, plan.p, plan.seed, plan.stream, dims, plan.return_mask
        )
        y, keep = super().compute(x, shared)
        return y, np.broadcast_to(keep, plan.mask_shape).copy()


class StridedInputOverwritten(StreamV1):
    """An input that is neither C- nor Fortran-contiguous is overwritten with the result."""

    caught_by = (
        "test_layout_does_not_change_the_result",
        "test_layouts_give_the_logical_result[reversed-rows]",
    )

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        y, keep = super().dropout(x, plan)
        strided = isinstance(x, np.ndarray) and not (x.flags.c_contiguous or x.flags.f_contiguous)
        if strided and x.flags.writeable:
            x[...] = y
        return y, keep


class BlockOffsetIgnored(StreamV1):
    """A block of a global mask takes the global strides but ignores its offset (starts at 0)."""

    caught_by = ("test_random_blocks_are_slices_of_the_global_mask", "test_blocks_on_every_device")

    def block_offset(self, plan: DropoutPlan) -> tuple[int, ...]:
        return tuple(0 for _ in plan.mask_shape)


class BlockUsesLocalIndices(StreamV1):
    """A block of a global mask gets the mask of a whole array of its own shape (local indices)."""

    caught_by = ("test_a_grid_of_blocks_reassembles_the_whole",)

    def mask_indices(self, plan: DropoutPlan) -> np.ndarray:
        return np.arange(int(np.prod(plan.mask_shape)), dtype=np.uint64)


class BlockIsOneRunFromItsStart(StreamV1):
    """A block's mask is one run of consecutive global indices from its first one (rows not whole)."""

    caught_by = ("test_a_large_block_matches_the_stream_at_sampled_elements", "test_blocks_on_every_device")

    def mask_indices(self, plan: DropoutPlan) -> np.ndarray:
        assert plan.block is not None
        start = np.uint64(int(plan.block.start()))
        return start + np.arange(int(np.prod(plan.mask_shape)), dtype=np.uint64)


class BlockStridesOverBroadcastAxes(StreamV1):
    """A block's global strides count its own size, not 1, along broadcast axes."""

    caught_by = ("test_blocks_on_every_device",)

    def block_strides(self, plan: DropoutPlan) -> tuple[int, ...]:
        assert plan.block is not None
        sizes = [
            plan.shape[axis] if axis in plan.broadcast_dims else size
            for axis, size in enumerate(plan.block.global_mask_shape)
        ]
        strides, step = [], 1
        for size in reversed(sizes):
            strides.append(step)
            step *= max(size, 1)
        return tuple(reversed(strides))
