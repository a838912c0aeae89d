"""Explicit mesh axes: a mask computed where its array's shards lie.

Under ``jax.sharding.AxisType.Explicit`` mesh axes an array's type carries its sharding, and an
array made from nothing (an iota, a constant) is replicated: the mask's Philox words, made from
iotas, would be computed whole on every device. :func:`mask_axes` reads the mesh axes of ``x``'s
type for each axis of its mask, and :func:`iota` and :func:`zeros` make arrays sharded over them
from the start, so that every array derived from them, and the Philox words with them, is computed
shard by shard. With Auto axes (the partitioner propagates shardings itself) and outside a mesh,
nothing changes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec


class MeshAxes(NamedTuple):
    """The mesh of an input's type and the mesh axes of each axis of an array (None: not sharded)."""

    mesh: Any
    entries: tuple[Any, ...]

    def first(self, count: int, *more: Any) -> MeshAxes:
        """The axes of the first ``count`` axes, then ``more`` entries (None for unsharded axes)."""
        return MeshAxes(self.mesh, (*self.entries[:count], *more))


def mask_axes(x: Any, mask_shape: tuple[int, ...]) -> MeshAxes | None:
    """The explicit mesh axes of each axis of ``x``'s mask (of ``mask_shape``), or None when ``x``'s
    type shards no axis explicitly. A broadcast axis (1 in the mask, longer in ``x``) has none."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    spec = getattr(sharding, "spec", None)
    if spec is None or not any(entry is not None for entry in spec) or len(x.shape) != len(mask_shape):
        return None
    entries = (*spec, *(None,) * (len(mask_shape) - len(spec)))
    return MeshAxes(
        sharding.mesh,
        tuple(
            None if size == 1 and whole != 1 else entry
            for entry, size, whole in zip(entries, mask_shape, x.shape, strict=True)
        ),
    )


def _sharding(axes: MeshAxes | None) -> NamedSharding | None:
    """The sharding of ``axes``, or None where no entry names a mesh axis (replicated, as before)."""
    if axes is None or not any(entry is not None for entry in axes.entries):
        return None
    return NamedSharding(axes.mesh, PartitionSpec(*axes.entries))


def iota(dtype: Any, shape: tuple[int, ...], axis: int, axes: MeshAxes | None) -> Any:
    """``lax.broadcasted_iota(dtype, shape, axis)`` made sharded over ``axes`` (one entry per axis
    of ``shape``): each device makes its own part, not the whole."""
    return lax.broadcasted_iota(dtype, shape, axis, out_sharding=_sharding(axes))


def zeros(shape: tuple[int, ...], dtype: Any, axes: MeshAxes | None) -> Any:
    """``jnp.zeros(shape, dtype)`` made sharded over ``axes``, as :func:`iota`."""
    return jnp.zeros(shape, dtype, out_sharding=_sharding(axes))
