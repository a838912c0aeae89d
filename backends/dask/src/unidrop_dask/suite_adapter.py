"""How the conformance suite makes and reads dask arrays: unevenly chunked, computed on reading.

A ``cpu`` array has NumPy chunks, a ``cuda:N`` one CuPy chunks; each is made and read by the
chunk backend's own suite adapter, so dtypes (bfloat16 too) are handled as there.
"""

from __future__ import annotations

import math
from typing import Any

import dask.array as da

import unidrop
from unidrop.conformance.adapter import SuiteAdapter

from .implementation import DEFAULT_CHUNK_BACKEND, GPU_CHUNK_BACKEND


def uneven_chunks(shape: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Chunks of ``shape`` in up to three unequal pieces per axis (about 45%, 30%, the rest), so
    that every axis of three or more elements crosses chunk boundaries at uneven places."""
    chunks = []
    for size in shape:
        first = math.ceil(size * 0.45)
        second = min(math.ceil(size * 0.3), size - first)
        pieces = [n for n in (first, second, size - first - second) if n > 0]
        chunks.append(tuple(pieces) or (0,))
    return tuple(chunks)


def chunk_backend_name(device: str | None) -> str:
    """The backend whose arrays are the chunks on ``device``."""
    return DEFAULT_CHUNK_BACKEND if device in (None, "cpu") else GPU_CHUNK_BACKEND


class DaskSuiteAdapter(SuiteAdapter):
    """Dask arrays in uneven chunks of NumPy (``cpu``) or CuPy (``cuda:N``) arrays."""

    def from_numpy(self, array: Any, dtype: str, device: str | None = None) -> Any:
        chunk_adapter = unidrop.get_backend(chunk_backend_name(device)).suite_adapter()
        whole = chunk_adapter.from_numpy(array, dtype, device)
        return da.from_array(whole, chunks=uneven_chunks(tuple(array.shape)), asarray=False)

    def to_numpy(self, x: Any) -> Any:
        # the synchronous scheduler: the suite reads thousands of small arrays, and the threaded
        # one's start-up per compute would double its time (the backend's own tests run the
        # threaded scheduler and a LocalCluster of worker processes)
        computed = x.compute(scheduler="synchronous")
        return unidrop.registry.backend_for(computed).suite_adapter().to_numpy(computed)

    def device_of(self, x: Any) -> str:
        meta = x._meta
        return unidrop.registry.backend_for(meta).suite_adapter().device_of(meta)

    def permuted(self, x: Any, axes: tuple[int, ...]) -> Any:
        return x.transpose(axes)

    def strided(self, x: Any, index: tuple[slice, ...]) -> Any:
        return x[index]

    def broadcast_view(self, x: Any, shape: tuple[int, ...]) -> Any:
        return da.broadcast_to(x, shape)

    def byte_swapped(self, x: Any) -> Any | None:
        """Every chunk in the other byte order, where the chunks' own adapter has one."""
        chunk_adapter = unidrop.registry.backend_for(x._meta).suite_adapter()
        swapped_meta = chunk_adapter.byte_swapped(x._meta)
        if swapped_meta is None:
            return None
        return x.map_blocks(chunk_adapter.byte_swapped, dtype=swapped_meta.dtype, meta=swapped_meta)
