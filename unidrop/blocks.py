"""Blocks of a global mask: which part of the whole logical array's mask one block gets.

A block is a part of a larger logical array of shape G (a Dask chunk, a DTensor shard, a
``shard_map`` shard, a tile cut by hand), at offset O. It gets exactly its slice of the global
mask: the element at index j of the block uses the mask-stream word of the global mask index
O + j (flattened in C order over the global mask shape). ``broadcast_dims`` refer to G; along a
broadcast axis the mask has size 1, so there the block's offset does not matter.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from . import arguments
from .arguments import show


@dataclass(frozen=True)
class MaskBlock:
    """Where a block's mask lies in the global mask.

    ``global_mask_shape``  the global mask shape (G with every broadcast axis set to 1)
    ``mask_offset``        the block mask's offset in it (O with every broadcast axis set to 0);
                           an entry may be a traced integer (JAX's ``lax.axis_index`` under
                           ``shard_map``), which the backend then computes with
    """

    global_mask_shape: tuple[int, ...]
    mask_offset: tuple[Any, ...]

    def global_strides(self) -> tuple[int, ...]:
        """The C-order strides, in elements, of the global mask shape."""
        return c_strides(self.global_mask_shape)

    def steps(self, mask_shape: Sequence[int]) -> tuple[int, ...]:
        """The global strides a block's mask of ``mask_shape`` is stepped with: 0 on its axes of size
        1, along which it never steps (broadcast axes among them). There a 2**64-element global
        mask's stride can be 2**64 itself, which a kernel's 64-bit strides cannot hold."""
        strides = self.global_strides()
        return tuple(0 if size == 1 else stride for size, stride in zip(mask_shape, strides, strict=True))

    def arguments_for(
        self, shape: Sequence[int], broadcast_dims: Sequence[int]
    ) -> tuple[tuple[int, ...], tuple[Any, ...]]:
        """``(global_shape, offset)`` that describe this block again, for a block of ``shape`` with
        ``broadcast_dims``: what a backend that hands the work to another one passes to
        :func:`unidrop.dropout` (along a broadcast axis the block's own size and offset 0, which
        give the same mask as the original global shape and offset)."""
        dims = set(broadcast_dims)
        global_shape = tuple(
            int(shape[axis]) if axis in dims else size for axis, size in enumerate(self.global_mask_shape)
        )
        return global_shape, self.mask_offset

    def last_index(self, mask_shape: Sequence[int]) -> int | None:
        """The global flat index of the last element of this block's mask (of ``mask_shape``);
        None for an empty mask or where an offset is traced (known only when compiled code runs)."""
        if not math.prod(mask_shape) or any(arguments.is_traced(start) for start in self.mask_offset):
            return None
        span = sum(
            (size - 1) * stride for size, stride in zip(mask_shape, self.global_strides(), strict=True)
        )
        return int(self.start()) + span

    def start(self) -> Any:
        """The global flat index of the block's first mask element."""
        return sum(
            (offset * stride for offset, stride in zip(self.mask_offset, self.global_strides(), strict=True)),
            0,
        )


def c_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """The C-order strides, in elements, of an array of ``shape``.

    The first axis's size enters no stride and is never read: it may be symbolic (a batch size
    under ``jax.export``).
    """
    sizes = tuple(shape)
    strides = [1] * len(sizes)
    for axis in range(len(sizes) - 2, -1, -1):
        strides[axis] = strides[axis + 1] * max(int(sizes[axis + 1]), 1)
    return tuple(strides)


def _index_tuple(value: Any, what: str, ndim: int, allow_traced: bool) -> tuple[Any, ...]:
    """``value`` as a tuple of ``ndim`` non-negative integers; TypeError/ValueError naming it otherwise."""
    if isinstance(value, (Set, Mapping)):  # iterable, but in no defined order of axes
        raise TypeError(f"{what} must be an ordered sequence of {ndim} non-negative ints, got {show(value)}")
    try:
        entries = tuple(value)
    except TypeError:
        raise TypeError(f"{what} must be a sequence of {ndim} non-negative ints, got {show(value)}") from None
    if len(entries) != ndim:
        raise ValueError(
            f"{what} must have one entry per axis of the block ({ndim}), "
            f"got {show(value)} with {len(entries)}"
        )
    result = []
    for entry in entries:
        if allow_traced and arguments.is_traced(entry):
            result.append(entry)  # known only when the compiled code runs: the backend computes with it
            continue
        if type(entry) is int:  # also torch.compile's symbolic int, which has no attributes to inspect
            number = entry
        elif isinstance(entry, bool) or arguments.dtype_kind(entry) == "b":
            raise TypeError(f"{what} must hold non-negative ints, got {show(entry)} in {show(value)}")
        else:
            number = _index(entry, what, value)
        if number < 0:
            raise ValueError(f"{what} must hold non-negative ints, got {show(number)} in {show(value)}")
        result.append(number)
    return tuple(result)


def _index(entry: Any, what: str, value: Any) -> int:
    """``entry`` as an int (``operator.index``); a TypeError naming it and ``value`` otherwise."""
    try:
        return operator.index(entry)
    except TypeError:
        raise TypeError(
            f"{what} must hold non-negative ints, got {show(entry)} of type {type(entry).__name__}"
            f" in {show(value)}"
        ) from None


def check_block(
    shape: tuple[int, ...], global_shape: Any, offset: Any, broadcast_dims: tuple[int, ...]
) -> MaskBlock | None:
    """The :class:`MaskBlock` of a block of ``shape`` at ``offset`` in ``global_shape``, or None.

    None when neither is given (the input is the whole array). Both must be given, each with
    one non-negative int per axis, and the block must lie inside the global shape: otherwise a
    TypeError or ValueError names the bad value. ``offset`` entries that are traced integers
    (under ``jax.jit``/``shard_map``) are passed on unchecked.
    """
    if global_shape is None and offset is None:
        return None
    if global_shape is None or offset is None:
        missing = "global_shape" if global_shape is None else "offset"
        raise TypeError(f"a block needs both global_shape and offset; {missing} is missing")
    ndim = len(shape)
    gshape = _index_tuple(global_shape, "global_shape", ndim, allow_traced=False)
    origin = _index_tuple(offset, "offset", ndim, allow_traced=True)
    for axis, (size, start, whole) in enumerate(zip(shape, origin, gshape, strict=True)):
        if arguments.is_traced(start):
            if size > whole:
                raise ValueError(
                    f"the block's axis {axis} has size {size}, larger than global_shape's {whole}"
                )
            continue
        if start + size > whole:
            raise ValueError(
                f"the block of shape {show(tuple(shape))} at offset {show(origin)} does not lie inside "
                f"global_shape {show(gshape)} (axis {axis}: {start} + {size} > {whole})"
            )
    global_mask_shape = arguments.mask_shape(gshape, broadcast_dims)
    mask_offset = tuple(0 if axis in broadcast_dims else start for axis, start in enumerate(origin))
    if math.prod(global_mask_shape) > arguments.TWO_POW_64:
        raise ValueError(f"global_shape {show(gshape)} has more than 2**64 mask elements")
    return MaskBlock(global_mask_shape, mask_offset)


def block_flat_indices(block: MaskBlock, mask_shape: Sequence[int]) -> list[int]:
    """The global flat mask index of every element of the block's mask, in C order (pure Python).

    For references and tests; backends compute the same with their own arrays.
    """
    strides = block.global_strides()
    indices = [0]
    for size, start, stride in zip(mask_shape, block.mask_offset, strides, strict=True):
        indices = [base + (int(start) + j) * stride for base in indices for j in range(size)]
    return indices
