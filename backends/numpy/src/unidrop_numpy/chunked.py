"""Chunked dropout over a NumPy array: no temporary larger than one chunk besides the output.

Each chunk of the output is computed as ``x * s`` and then ANDed, bit for bit, with element
masks that are all ones where the element is kept and zero where it is dropped: a select
that gives exactly +0 for dropped elements, NaN and Inf included.

Chunks are independent, so several threads may compute them at once (NumPy releases the GIL
inside its ufunc loops). Each thread owns one fixed-size workspace (16 bytes per chunk
element for float32); results do not depend on the number of threads, since every chunk is
written by exactly one of them. Up to one full-size workspace per thread is kept between calls.

A block of a global mask (``plan.block``) is cut into the same chunks; a chunk whose mask is a run
of consecutive global indices (always, when the block spans the global mask's trailing axes)
costs what a chunk of a whole array does, any other one a Philox block per element.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Iterator

import numpy as np

from unidrop import DropoutPlan
from unidrop.arguments import TWO_POW_64

from . import bfloat16
from .philox_arrays import UINT_OF_ITEMSIZE, PhiloxWorkspace, words_at
from .pool import Helpers
from .threads import check_thread_count, get_num_threads

#: Elements of the output handled per step; every temporary is at most this long. Chunks of
#: 2^16 to 2^19 cost the same CPU time on one thread; with two threads, chunks under 2^18
#: lose their gain to the handing over of the GIL between NumPy calls (`unidrop bench --backend numpy`).
CHUNK = 1 << 18
#: A chunk of a block whose global mask indices span at most this many times its size has the
#: words of that whole span made (consecutive ones are four times cheaper); others, one per element.
SPAN_FACTOR = 4
#: Arrays smaller than this many elements are done on the calling thread alone.
MIN_THREADED_SIZE = 2 * CHUNK
#: One block: (index into the array, first mask index, mask count, mask block shape).
_Block = tuple[tuple[int | slice, ...], int, int, tuple[int, ...]]


def _split(shape: tuple[int, ...], chunk: int) -> tuple[int, int]:
    """``(k, rows)``: blocks take axes ``k..`` whole and ``rows`` indices of axis ``k - 1``.

    ``k == 0`` means one block holds the whole array. Rows are spread evenly over the blocks.
    """
    k, inner = len(shape), 1
    while k > 0 and inner * shape[k - 1] <= chunk:
        k -= 1
        inner *= shape[k]
    if k == 0:
        return 0, 0
    ranges = math.ceil(shape[k - 1] / max(1, chunk // inner))
    return k, math.ceil(shape[k - 1] / ranges)


def blocks(shape: tuple[int, ...], mshape: tuple[int, ...], chunk: int | None = None) -> Iterator[_Block]:
    """Split an array of ``shape`` into blocks of at most ``chunk`` elements (default: :data:`CHUNK`).

    Yields ``(index, mask_start, mask_count, mask_block_shape)``: ``array[index]`` is the
    block, and the flat mask indices ``mask_start .. mask_start+mask_count-1``, reshaped to
    ``mask_block_shape``, broadcast against it. Blocks cover the array once, in C order.
    Mask indices are Python integers: exact for every size (no 32- or 64-bit wrap).
    """
    k, rows = _split(shape, CHUNK if chunk is None else chunk)
    if k == 0:
        yield (), 0, math.prod(mshape), mshape
        return
    split = k - 1
    mask_inner = math.prod(mshape[k:])
    for outer in itertools.product(*(range(n) for n in shape[:split])):
        base = mask_index_of_row(outer, mshape)
        for a in range(0, shape[split], rows):
            b = min(a + rows, shape[split])
            mrows = 1 if mshape[split] == 1 else b - a
            mstart = base if mshape[split] == 1 else base + a * mask_inner
            yield (*outer, slice(a, b)), mstart, mrows * mask_inner, (mrows, *mshape[k:])


def mask_index_of_row(outer: tuple[int, ...], mshape: tuple[int, ...]) -> int:
    """The flat C-order mask index of the element ``(*outer, 0, 0, ...)`` of an array.

    ``outer`` indexes the array's leading axes; along an axis where the mask has length 1 (a
    broadcast axis) every index maps to 0. Python integers: exact for axes and sizes of any length.
    """
    index = 0
    for axis, i in enumerate(outer):
        index = index * mshape[axis] + (0 if mshape[axis] == 1 else i)
    return index * math.prod(mshape[len(outer) :])


def block_count(shape: tuple[int, ...], chunk: int | None = None) -> int:
    """How many blocks :func:`blocks` yields for an array of ``shape`` with no zero-length axis."""
    k, rows = _split(shape, CHUNK if chunk is None else chunk)
    return 1 if k == 0 else math.prod(shape[: k - 1]) * math.ceil(shape[k - 1] / rows)


def dropout_array(
    x: np.ndarray, plan: DropoutPlan, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(y, keep)`` for one validated plan; ``keep`` is None unless ``plan.return_mask``.

    ``threads`` caps the threads used (default :func:`get_num_threads`); the result is the
    same for every value. With ``plan.block`` set, ``x`` gets its slice of the global mask.
    """
    # read first: a bad setting (threads=0, UNIDROP_NUM_THREADS=abc) is reported before any work
    count = get_num_threads() if threads is None else check_thread_count(threads, "threads")
    keep_all = np.empty(plan.mask_shape, dtype=bool) if plan.return_mask else None
    place = GlobalPlace.of(plan)
    if x.size == 0 or plan.drops_all:
        if keep_all is not None:
            _fill_keep(keep_all.reshape(-1), plan, place)
        return np.zeros_like(x), keep_all
    y = np.empty_like(x)  # every element is written below
    compute = np.dtype(plan.compute_dtype)
    s = compute.type(plan.scale)
    mask_view = UINT_OF_ITEMSIZE[x.dtype.itemsize]
    to_bfloat16 = plan.dtype == bfloat16.NAME
    xv, yv = (x.reshape(1), y.reshape(1)) if x.ndim == 0 else (x, y)
    mshape = plan.mask_shape or (1,)
    flat_keep = keep_all.reshape(-1) if keep_all is not None else None
    chunk = CHUNK  # read once: the same for every block of this call
    capacity = min(chunk, x.size) // 4 + 2

    def run(chunks: Iterator[_Block]) -> None:
        workspace = _take_workspace(capacity)
        try:
            # x * s may round to inf, and a signalling NaN input gives NaN: both are the defined result
            with np.errstate(over="ignore", invalid="ignore"):
                compute_blocks(workspace, chunks)
        finally:
            _return_workspace(workspace)

    def compute_blocks(workspace: PhiloxWorkspace, chunks: Iterator[_Block]) -> None:
        layout_buffer: list[np.ndarray | None] = [None]  # made on the first block that needs it
        for index, mstart, mcount, mblock in chunks:
            masks = keep_masks(workspace, plan, place, mstart, mcount, x.dtype.itemsize)
            if flat_keep is not None:
                np.not_equal(masks, 0, out=flat_keep[mstart : mstart + mcount])
            out = yv[index]
            if to_bfloat16:  # rounded by the mask stream's rule (ml_dtypes' cast loses NaN payloads)
                bits16 = np.dtype(np.uint16).newbyteorder(out.dtype.byteorder)  # '>bfloat16' too
                out.view(bits16)[...] = bfloat16.round_bits(np.multiply(xv[index], s, dtype=compute))
            else:
                np.multiply(xv[index], s, out=out, dtype=compute, casting="same_kind")
            bits = out.view(mask_view)
            block_masks = masks.reshape(mblock)
            if not _inner_axis_contiguous(out):
                # Lay the masks out as the block is (a transposed view, Fortran order): the AND
                # then walks both in memory order instead of one against the grain.
                if layout_buffer[0] is None:
                    layout_buffer[0] = np.empty(min(chunk, x.size), mask_view)
                block_masks = _in_layout_of(bits, block_masks, layout_buffer[0])
            np.bitwise_and(bits, block_masks, out=bits)

    chunks = blocks(xv.shape, mshape, chunk)
    count = min(count, block_count(xv.shape, chunk))  # a thread per block at most
    if count <= 1 or x.size < MIN_THREADED_SIZE:
        run(chunks)
        return y, keep_all
    shared = _Shared(chunks)

    def worker() -> None:
        try:
            run(shared)
        except BaseException:
            shared.stop()
            raise

    helpers = Helpers(worker)
    try:
        helpers.start(count - 1)
        worker()  # the calling thread takes blocks too, so the work ends even with no helper
    finally:
        helpers.wait()  # re-raises a helper's exception
    return y, keep_all


def _inner_axis_contiguous(a: np.ndarray) -> bool:
    """True if ``a``'s last axis longer than 1 has its smallest stride (or ``a`` has no such axis)."""
    strides = [abs(st) for st, size in zip(a.strides, a.shape, strict=True) if size > 1]
    return not strides or strides[-1] == min(strides)


def _in_layout_of(a: np.ndarray, values: np.ndarray, buffer: np.ndarray) -> np.ndarray:
    """``values`` broadcast to ``a``'s shape, copied into ``buffer`` with ``a``'s order of axes."""
    order = sorted(range(a.ndim), key=lambda axis: -abs(a.strides[axis]))
    result = buffer[: a.size].reshape([a.shape[axis] for axis in order]).transpose(np.argsort(order))
    np.copyto(result, values)
    return result


#: Full-size workspaces kept between calls, at most one per thread: fresh ones cost page faults.
_spare_workspaces: list[PhiloxWorkspace] = []
_spare_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _spare_lock
    _spare_lock = threading.Lock()  # another thread may have held it at the fork
    _spare_workspaces.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _take_workspace(capacity: int) -> PhiloxWorkspace:
    """A workspace for ``capacity`` blocks: a kept full-size one if there is one, else a new one."""
    full = CHUNK // 4 + 2
    with _spare_lock:
        _spare_workspaces[:] = [w for w in _spare_workspaces if w.capacity == full]  # CHUNK changed
        if _spare_workspaces and capacity <= full:
            return _spare_workspaces.pop()
    return PhiloxWorkspace(capacity)


def _return_workspace(workspace: PhiloxWorkspace) -> None:
    """Keep a full-size workspace for the next call, unless enough are kept already."""
    with _spare_lock:
        if workspace.capacity == CHUNK // 4 + 2 and len(_spare_workspaces) < get_num_threads():
            _spare_workspaces.append(workspace)


def _fill_keep(flat_keep: np.ndarray, plan: DropoutPlan, place: GlobalPlace | None) -> None:
    """The keep mask alone (for an input with no elements, whose mask may still have some)."""
    if plan.drops_all:
        flat_keep[...] = False
        return
    workspace = PhiloxWorkspace(min(CHUNK, flat_keep.size) // 4 + 2)
    for start in range(0, flat_keep.size, CHUNK):
        count = min(CHUNK, flat_keep.size - start)
        masks = keep_masks(workspace, plan, place, start, count, 4)
        np.not_equal(masks, 0, out=flat_keep[start : start + count])


class GlobalPlace:
    """Where a block's mask lies in the global mask: maps block-mask flat indices to global ones."""

    def __init__(
        self, mask_shape: tuple[int, ...], global_shape: tuple[int, ...], strides: tuple[int, ...], start: int
    ) -> None:
        self.mask_shape = mask_shape
        self.strides = strides  # of the global mask, one per axis of the block's mask
        self.start = start  # the global index of the block's first mask element
        # block-mask indices q*run .. q*run+run-1 are consecutive global indices: the block spans
        # the global mask's axes after the first one (from the end) that it does not span whole
        axis = len(mask_shape) - 1
        while axis > 0 and mask_shape[axis] == global_shape[axis]:
            axis -= 1
        self.run = max(math.prod(mask_shape[axis:]), 1)

    @classmethod
    def of(cls, plan: DropoutPlan) -> GlobalPlace | None:
        """The place of ``plan``'s block, or None for a whole array (or a block of a 0-d array)."""
        block = plan.block
        if block is None or not plan.mask_shape:
            return None
        steps = block.steps(plan.mask_shape)
        return cls(plan.mask_shape, block.global_mask_shape, steps, int(block.start()))

    def index(self, local: int) -> int:
        """The global flat mask index of the block-mask flat index ``local`` (Python ints: exact)."""
        index = self.start
        for size, stride in zip(reversed(self.mask_shape), reversed(self.strides), strict=True):
            local, j = divmod(local, size)
            index += j * stride
        return index

    def indices(self, start: int, count: int) -> np.ndarray:
        """The global flat mask indices (uint64) of block-mask indices ``start .. start+count-1``."""
        first, last = start // self.run, (start + count - 1) // self.run
        local = np.arange(first, last + 1, dtype=np.uint64) * np.uint64(self.run)
        starts = np.full(local.size, self.start, dtype=np.uint64)
        for size, stride in zip(reversed(self.mask_shape), reversed(self.strides), strict=True):
            starts += (local % np.uint64(size)) * np.uint64(stride)
            local //= np.uint64(size)
        runs = starts[:, None] + np.arange(self.run, dtype=np.uint64)
        skip = start - first * self.run
        return runs.reshape(-1)[skip : skip + count]


def keep_masks(
    workspace: PhiloxWorkspace,
    plan: DropoutPlan,
    place: GlobalPlace | None,
    start: int,
    count: int,
    itemsize: int,
) -> np.ndarray:
    """Element masks (as :meth:`PhiloxWorkspace.keep_masks`) of the mask indices ``start ..
    start+count-1`` of ``plan``'s mask; of a block's mask, through its place in the global mask."""
    if place is None:
        return workspace.keep_masks(plan.seed, plan.stream, start, count, plan.threshold, itemsize)
    first = place.index(start)
    span = place.index(start + count - 1) - first + 1
    # global indices grow by at least one per element: a span of count means consecutive ones
    if span == count:
        return workspace.keep_masks(plan.seed, plan.stream, first, count, plan.threshold, itemsize)
    indices = place.indices(start, count)
    kind = UINT_OF_ITEMSIZE[itemsize]
    piece = 4 * (workspace.capacity - 2)  # mask elements one call of the workspace can make
    if span > SPAN_FACTOR * count or piece <= 0:  # scattered: one Philox block per element
        words = words_at(plan.seed, plan.stream, indices)
        return np.where(words >= plan.threshold, kind(np.iinfo(kind).max), kind(0))
    # dense (runs with short gaps): the masks of the whole span, a workspace at a time, picked out
    result = np.empty(count, kind)
    done = 0
    for low in range(first, first + span, piece):
        high = min(low + piece, first + span)
        # high may be 2**64 itself (a block ending at the global mask's last element): all the rest
        end = count if high >= TWO_POW_64 else done + int(np.searchsorted(indices[done:], np.uint64(high)))
        masks = workspace.keep_masks(plan.seed, plan.stream, low, high - low, plan.threshold, itemsize)
        np.take(masks, (indices[done:end] - np.uint64(low)).astype(np.intp), out=result[done:end])
        done = end
    return result


class _Shared:
    """An iterator of blocks that several threads draw from; :meth:`stop` ends it for all."""

    def __init__(self, items: Iterator[_Block]) -> None:
        self._items = items
        self._lock = threading.Lock()
        self._stopped = False

    def __iter__(self) -> _Shared:
        return self

    def __next__(self) -> _Block:
        with self._lock:
            if self._stopped:
                raise StopIteration
            return next(self._items)

    def stop(self) -> None:
        """Hand out no more blocks (a worker failed)."""
        with self._lock:
            self._stopped = True
