"""What each chunk's task runs: ``unidrop.dropout`` on the chunk, at its place in the whole array.

Module-level functions only, so that a task pickles by reference and runs on any worker where
unidrop-dask is installed. The chunk's own backend (NumPy, CuPy) computes it; nothing here
imports a framework.
"""

from __future__ import annotations

from typing import Any

import unidrop


def dropout_chunk(
    chunk: Any,
    p: float,
    seed: int,
    stream: int,
    broadcast_dims: tuple[int, ...],
    global_shape: tuple[int, ...],
    origin: tuple[int, ...],
    return_mask: bool,
    block_info: dict[Any, Any] | None = None,
) -> Any:
    """Dropout of one chunk as a block of ``global_shape``: ``y``, or ``(y, keep)``.

    The chunk lies at ``origin`` plus its place in the dask array (``block_info``'s
    ``array-location``, given by ``map_blocks``), so it gets exactly its slice of the global mask.
    """
    if block_info is None:
        raise RuntimeError("dropout_chunk is a map_blocks function: it needs block_info")
    location = block_info[0]["array-location"]
    offset = tuple(start + first for start, (first, _) in zip(origin, location, strict=True))
    return unidrop.dropout(
        chunk,
        p,
        seed=seed,
        stream=stream,
        broadcast_dims=broadcast_dims,
        return_mask=return_mask,
        global_shape=global_shape,
        offset=offset,
    )


def output_of(pair: tuple[Any, Any]) -> Any:
    """The output chunk of a ``(y, keep)`` pair."""
    return pair[0]


def mask_of(pair: tuple[Any, Any]) -> Any:
    """The mask chunk of a ``(y, keep)`` pair."""
    return pair[1]
