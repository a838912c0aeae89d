"""The global mask inside ``jax.shard_map``: each shard's place from ``lax.axis_index``.

Inside ``shard_map`` a function sees its own shard only, so ``unidrop.dropout`` on it gives
the mask of a small array of the shard's shape: the same mask on every shard, not the
unsharded array's. Given the shard's place in the global array, it gets its slice of the
global mask instead (``global_shape=``, ``offset=``; see :mod:`unidrop.blocks`), with no
communication. :func:`shard_block` computes that place from the ``PartitionSpec`` the shard
was cut by (the function's ``in_specs`` entry): a dimension split over mesh axes ``(a, b)`` is
split over ``a`` first, then ``b`` (the order of ``PartitionSpec``, major to minor), as
``shard_map`` splits it. :func:`shard_dropout` is ``unidrop.dropout`` with that place filled in.

Importing this module imports JAX (``import unidrop_jax`` does not).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jax import lax

import unidrop

__all__ = ["shard_block", "shard_dropout"]


def _mesh_axes(entry: Any, axis: int, spec: Any) -> tuple[str, ...]:
    """The mesh axis names one ``PartitionSpec`` entry splits a dimension over (major first)."""
    if entry is None:
        return ()
    names = (entry,) if isinstance(entry, str) else entry
    if not isinstance(names, tuple) or not all(isinstance(name, str) for name in names):
        raise TypeError(
            f"spec entry {entry!r} for axis {axis} of {spec!r} must be None, a mesh axis name, or a "
            "tuple of mesh axis names"
        )
    return names


def _axis_size_and_index(name: str, spec: Any) -> tuple[int, Any]:
    try:
        return lax.axis_size(name), lax.axis_index(name)
    except NameError:
        raise ValueError(
            f"spec {spec!r} names the mesh axis {name!r}, which is not a manual axis here: call "
            "shard_block / shard_dropout inside jax.shard_map over a mesh with that axis"
        ) from None


def shard_block(shape: Sequence[int], spec: Any) -> tuple[tuple[int, ...], tuple[Any, ...]]:
    """``(global_shape, offset)`` of the shard of ``shape`` cut by ``spec``, inside ``shard_map``.

    ``shape`` is the local (per-shard) shape, ``spec`` the ``PartitionSpec`` (or a tuple of its
    entries) the shard was cut by: the ``in_specs`` entry of the array, or the ``out_specs``
    entry of the array it becomes. Entries past the spec's length are unsplit. ``offset``
    holds ints for unsplit axes and traced int32 values (from ``lax.axis_index``) for split
    ones; pass both to ``unidrop.dropout(x, ..., global_shape=, offset=)``. Shards that are
    replicated over a mesh axis get the same offset, so the same mask.

    Raises TypeError for a malformed entry and ValueError for a spec with more entries than
    ``shape`` has axes, or naming a mesh axis that the enclosing ``shard_map`` does not have.
    """
    shape = tuple(int(size) for size in shape)
    entries = tuple(spec)
    if len(entries) > len(shape):
        raise ValueError(
            f"spec {spec!r} has {len(entries)} entries, more than the {len(shape)} axes of {shape}"
        )
    entries += (None,) * (len(shape) - len(entries))
    global_shape, offset = [], []
    for axis, (size, entry) in enumerate(zip(shape, entries, strict=True)):
        count, index = 1, None
        for name in _mesh_axes(entry, axis, spec):
            n, i = _axis_size_and_index(name, spec)
            index = i if index is None else index * n + i
            count *= n
        global_shape.append(size * count)
        offset.append(0 if index is None else index * size)
    return tuple(global_shape), tuple(offset)


def shard_dropout(
    x: Any,
    p: float,
    spec: Any,
    *,
    seed: Any,
    stream: Any = 0,
    broadcast_dims: int | Sequence[int] = (),
    training: bool = True,
    return_mask: bool = False,
) -> Any:
    """``unidrop.dropout`` of the shard ``x`` inside ``shard_map``: its slice of the global mask.

    ``spec`` is the ``PartitionSpec`` ``x`` was cut by (see :func:`shard_block`). ``seed`` and
    ``stream`` must be the same on every shard (a key passed with ``P()``, a Python int);
    ``broadcast_dims`` refer to the global array. The result equals the matching shard of
    ``unidrop.dropout`` on the unsharded array, bit for bit; with ``return_mask=True`` the mask
    is the shard's slice of the global mask.
    """
    global_shape, offset = shard_block(x.shape, spec)
    return unidrop.dropout(
        x,
        p,
        seed=seed,
        stream=stream,
        broadcast_dims=broadcast_dims,
        training=training,
        return_mask=return_mask,
        global_shape=global_shape,
        offset=offset,
    )
