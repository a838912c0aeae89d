"""The Dask backend's primitives for the dropout family: a namespace, and lazy stream words.

Dask arrays have no ``__array_namespace__``: :data:`NAMESPACE` gives the family's rules
``dask.array``'s element-wise functions and NumPy's float dtypes. The stream words are a lazy
array whose every chunk asks the chunk's own backend (NumPy, CuPy) for the words of its block
of the global mask, as the backend's dropout does; nothing is computed until asked.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize

import unidrop
from unidrop.arguments import DropoutPlan
from unidrop.blocks import MaskBlock
from unidrop.philox_int64 import INDEX_LIMIT, check_reach


def merged_unit_axes(a: Any) -> Any:
    """``a`` (a dask array, or anything else, returned as it is) with every axis of size 1 in one chunk.

    The family's rules compute with dask's own arithmetic, which miscounts an axis of size 1 split
    into an empty chunk and a full one (chunks ``(1, 0)``, what boolean indexing can leave): dask
    2026.8 computes ``x * 1.5`` there as two elements, or fails with a missing dependency. One chunk
    per such axis avoids it; the values are the same.
    """
    if not isinstance(a, da.Array):
        return a
    split = {d: 1 for d, sizes in enumerate(a.chunks) if len(sizes) > 1 and sum(sizes) == 1}
    return a.rechunk(split) if split else a


def _where(condition: Any, x: Any, y: Any) -> Any:
    """``dask.array.where``, its arrays first given one chunk per axis of size 1 (merged_unit_axes)."""
    return da.where(merged_unit_axes(condition), merged_unit_axes(x), merged_unit_axes(y))


#: What the family's rules use of an array namespace, for dask arrays: lazy, chunk-wise functions.
NAMESPACE = types.SimpleNamespace(
    where=_where, log=da.log, cos=da.cos, sqrt=da.sqrt, float32=np.float32, float64=np.float64
)


def words_chunk(
    chunk: Any,
    plan: DropoutPlan,
    global_mask_shape: tuple[int, ...],
    origin: tuple[int, ...],
    block_info: dict[Any, Any] | None = None,
) -> Any:
    """The stream words of one chunk's block of the global mask, from the chunk's own backend.

    ``block_info[None]`` (given by ``map_blocks``) says where the output chunk lies; ``origin``
    is where the dask array's mask starts in the global mask. Module level, so it pickles.
    """
    if block_info is None:
        raise RuntimeError("words_chunk is a map_blocks function: it needs block_info")
    location = block_info[None]["array-location"]
    shape = tuple(stop - start for start, stop in location)
    offset = tuple(first + start for first, (start, _) in zip(origin, location, strict=True))
    block = MaskBlock(global_mask_shape, offset)
    chunk_plan = dataclasses.replace(plan, shape=shape, mask_shape=shape, broadcast_dims=(), block=block)
    implementation = unidrop.registry.backend_for(chunk).implementation()
    return implementation.stream_words(chunk, chunk_plan)


def empty_like_meta(meta: Any, dtype: Any, ndim: int) -> Any:
    """An empty array of ``meta``'s chunk type (NumPy, CuPy) with ``dtype`` and ``ndim`` axes: a
    ``map_blocks`` meta (a 0-d dask array's ``_meta`` holds one element, so it is emptied first)."""
    empty = meta.astype(dtype).reshape(-1)[:0]
    return empty.reshape((0,) * ndim) if ndim else meta.astype(dtype)


def stream_words(x: Any, plan: DropoutPlan) -> Any:
    """The lazy words u_i of ``plan`` (int64, ``plan.mask_shape``), chunked as ``x`` where the mask
    has ``x``'s extent and in one chunk elsewhere (broadcast axes, axes beyond ``x``'s).

    Each chunk's task takes ``x``'s chunk at its place (the first chunk along a broadcast axis)
    for the device and chunk type, so CuPy-backed arrays get their words on the GPU.
    """
    mask = plan.mask_shape
    follows = [d < x.ndim and mask[d] == x.shape[d] for d in range(len(mask))]
    first = tuple(slice(None) if follows[d] else slice(0, 1) for d in range(x.ndim))
    carrier = x.blocks[first] if x.ndim else x
    carrier = carrier[(..., *(None,) * (len(mask) - x.ndim))]  # size-1 axes for the mask's extra ones
    if plan.block is None:
        global_mask_shape, origin = mask, (0,) * len(mask)
    else:
        global_mask_shape = plan.block.global_mask_shape
        origin = tuple(int(start) for start in plan.block.mask_offset)
    # the chunks' backends refuse indices past 2**63 when computed: say it now, when the graph is built
    check_reach(MaskBlock(tuple(global_mask_shape), origin), mask, INDEX_LIMIT, "2**63")
    chunks = tuple(x.chunks[d] if follows[d] else (mask[d],) for d in range(len(mask)))
    task = functools.partial(words_chunk, plan=plan, global_mask_shape=global_mask_shape, origin=origin)
    token = tokenize(x.name, plan.seed, plan.stream, mask, global_mask_shape, origin)
    meta = empty_like_meta(x._meta, np.int64, len(mask))
    return da.map_blocks(
        task,
        carrier,
        chunks=chunks,
        dtype=np.int64,
        meta=meta,
        name=f"unidrop-words-{token}",
    )
