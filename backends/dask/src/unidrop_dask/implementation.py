"""The work: a lazy graph in which every chunk computes its slice of the whole array's mask."""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize

import unidrop
from unidrop import arguments, registry
from unidrop.arguments import DropoutPlan

from . import family
from .chunks import dropout_chunk, mask_of, output_of

#: The backend that computes NumPy-backed chunks, whose dtypes :meth:`DaskImplementation.dtypes` gives.
DEFAULT_CHUNK_BACKEND = "numpy"
#: The backend of CuPy-backed chunks: its devices are this backend's ``cuda:N`` devices.
GPU_CHUNK_BACKEND = "cupy"


class DaskImplementation(unidrop.Implementation):
    """Dropout of a ``dask.array.Array`` as a graph of one task per chunk; building it computes nothing.

    Each task calls ``unidrop.dropout(chunk, ..., global_shape=, offset=)`` on its chunk, so the
    chunk's own backend computes exactly its slice of the global mask: the result equals the
    whole array's for any chunking. A dask array that is itself a block of a larger array
    (``global_shape=``/``offset=`` given) passes that on to its chunks.
    """

    supports_blocks = True

    def dtypes(self) -> frozenset[str]:
        """Those of the NumPy backend (NumPy-backed chunks); a CuPy-backed array is checked against
        the CuPy backend's when its graph is built."""
        return frozenset(unidrop.get_backend(DEFAULT_CHUNK_BACKEND).implementation().dtypes())

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        """The shape and dtype of a dask array; an unknown size (after boolean indexing) stays NaN,
        so that ``training=False`` and ``p == 0`` return ``x`` itself, and everything that needs the
        size (dropout, a mask, the family's words) raises ValueError saying how to learn it."""
        if not isinstance(x, da.Array):
            raise TypeError(f"the dask backend takes dask.array.Array, got {type(x).__name__}")
        _check_chunk_type(x._meta)
        return tuple(size if math.isnan(size) else int(size) for size in x.shape), x.dtype.name

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        """A lazy ``y`` (and ``keep``, a lazy boolean array chunked as ``x`` with size-1 chunks on the
        broadcast axes); errors knowable before computing (the chunks' backend, dtype) raise here."""
        _check_known_shape(x)
        if plan.block is None and math.prod(plan.mask_shape) > arguments.TWO_POW_64:
            raise ValueError(
                f"this dask array of shape {plan.shape} has {math.prod(plan.mask_shape)} mask elements: "
                "mask stream v1 numbers at most 2**64 of them"
            )
        global_shape, origin = chunk_frame(plan)
        rehearse(x, plan, global_shape, origin)
        task = functools.partial(
            dropout_chunk,
            p=plan.p,
            seed=plan.seed,
            stream=plan.stream,
            broadcast_dims=plan.broadcast_dims,
            global_shape=global_shape,
            origin=origin,
            return_mask=plan.return_mask,
        )
        # one token for the request, so that equal requests share keys and different ones never do
        # (and map_blocks need not tokenize the function again)
        token = tokenize(x.name, plan.p, plan.seed, plan.stream, plan.broadcast_dims, global_shape, origin)
        if not plan.return_mask:
            return da.map_blocks(task, x, dtype=x.dtype, meta=x._meta, name=f"unidrop-dropout-{token}"), None
        # one task per chunk computes (y, keep); y and keep take their part of it
        pairs = da.map_blocks(
            task, x, dtype=object, meta=np.empty((0,) * x.ndim, dtype=object), name=f"unidrop-pairs-{token}"
        )
        y = pairs.map_blocks(output_of, dtype=x.dtype, meta=x._meta, name=f"unidrop-output-{token}")
        if plan.broadcast_dims:  # the mask along a broadcast axis is that of its first chunk
            pairs = pairs.blocks[
                tuple(slice(0, 1) if d in plan.broadcast_dims else slice(None) for d in range(x.ndim))
            ]
        keep = pairs.map_blocks(
            mask_of,
            chunks=mask_chunks(x, plan.broadcast_dims),
            dtype=bool,
            meta=x._meta.astype(bool),
            name=f"unidrop-mask-{token}",
        )
        return y, keep

    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        """A lazy all-True boolean array of ``shape``, chunked as ``x`` (size-1 chunks where ``shape`` is 1
        and ``x``'s axis is not), with chunks of ``x``'s chunk type."""
        _check_known_shape(x)
        dims = tuple(d for d, (n, m) in enumerate(zip(shape, x.shape, strict=True)) if n != m)
        return da.ones_like(x._meta, shape=shape, dtype=bool, chunks=mask_chunks(x, dims))

    def devices(self) -> list[str]:
        """``cpu`` (NumPy-backed chunks), and the CuPy backend's GPUs where it is installed and has some."""
        found = ["cpu"]
        if GPU_CHUNK_BACKEND not in {info.name for info in unidrop.list_backends()}:
            return found
        try:
            gpus = unidrop.get_backend(GPU_CHUNK_BACKEND).implementation().devices()
        except Exception as error:  # a fault of the CuPy plugin costs its devices only
            warnings.warn(
                f"unidrop-dask: the {GPU_CHUNK_BACKEND} backend failed to report its devices "
                f"({type(error).__name__}: {error}); CuPy-backed dask arrays are not checked",
                RuntimeWarning,
                stacklevel=2,
            )
            return found
        return found + [device for device in gpus if device != "cpu"]

    # the dropout family (unidrop.family): its rules run on dask.array, so the results stay lazy;
    # keep_mask is the default (dropout's mask, from the same per-chunk tasks); dask arrays are
    # immutable, so inplace=True is refused (mutable_arrays stays False)

    def stream_words(self, x: Any, plan: DropoutPlan) -> Any:
        """Lazy int64 words of ``plan.mask_shape``; each chunk's backend computes its block's words."""
        _check_known_shape(x)
        return family.merged_unit_axes(family.stream_words(x, plan))

    def astype(self, x: Any, dtype: Any) -> Any:
        """``x.astype(dtype)``, every axis of size 1 in one chunk (:func:`.family.merged_unit_axes`)."""
        return family.merged_unit_axes(x).astype(dtype)

    def namespace(self, x: Any) -> Any:
        """``dask.array``'s ``where``, ``log``, ``cos``, ``sqrt`` and NumPy's float dtypes."""
        return family.NAMESPACE

    def describe(self) -> str:
        """Which backend computes NumPy-backed chunks, and how."""
        numpy_backend = unidrop.get_backend(DEFAULT_CHUNK_BACKEND).implementation()
        return f"lazy, one task per chunk; NumPy-backed chunks: {numpy_backend.describe() or 'unidrop-numpy'}"


def rehearse(x: Any, plan: DropoutPlan, global_shape: tuple[int, ...], origin: tuple[int, ...]) -> None:
    """Run the chunks' call on ``x``'s empty chunk template (``x._meta``), so that what their backend
    would refuse (no backend for the chunk type, its dtype, a subclass, blocks) raises now, when
    the graph is built, instead of when it is computed. A TypeError or ValueError names the chunk type."""
    meta = x._meta
    try:
        unidrop.dropout(
            meta,
            plan.p,
            seed=plan.seed,
            stream=plan.stream,
            broadcast_dims=plan.broadcast_dims,
            return_mask=plan.return_mask,
            global_shape=global_shape,
            offset=origin,
        )
    except TypeError as error:
        raise TypeError(f"the chunks of this dask array are {type(meta).__name__}: {error}") from None
    except ValueError as error:
        raise ValueError(f"the chunks of this dask array are {type(meta).__name__}: {error}") from None


def _check_chunk_type(meta: Any) -> None:
    """Refuse, at every call as the chunks' backend would (``p == 0`` and evaluation too), chunks
    that no backend takes or that their backend refuses (a masked array, say), naming the type."""
    try:
        registry.dispatch(meta)
    except TypeError as error:
        raise TypeError(f"the chunks of this dask array are {type(meta).__name__}: {error}") from None


def chunk_frame(plan: DropoutPlan) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(global_shape, origin)`` for the chunks: the array their offsets refer to, and where the dask
    array starts in it (all zeros unless the dask array is itself a block of a larger one)."""
    if plan.block is None:
        return plan.shape, (0,) * len(plan.shape)
    block, dims = plan.block, plan.broadcast_dims
    # on a broadcast axis the mask has size 1 wherever the block lies: the dask array's extent will do
    shape = tuple(
        n if d in dims else g
        for d, (n, g) in enumerate(zip(plan.shape, block.global_mask_shape, strict=True))
    )
    origin = tuple(0 if d in dims else int(o) for d, o in enumerate(block.mask_offset))
    return shape, origin


def mask_chunks(x: Any, broadcast_dims: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """``x``'s chunks with a single chunk of size 1 on every broadcast axis."""
    return tuple((1,) if d in broadcast_dims else sizes for d, sizes in enumerate(x.chunks))


def _check_known_shape(x: Any) -> None:
    """ValueError for a dask array with unknown (NaN) chunk sizes, saying how to learn them."""
    if any(math.isnan(size) for size in x.shape):
        raise ValueError(
            f"unidrop needs a dask array of known shape, got shape {x.shape} (unknown chunk sizes): "
            "call x.compute_chunk_sizes() first (training=False and p=0 return x as it is, but a mask, "
            "return_mask=True, needs the shape)"
        )
