"""Keras' ``noise_shape`` and ``data_format`` as unidrop's ``broadcast_dims``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_DATA_FORMATS = ("channels_first", "channels_last")
_PREFIX = "Invalid value received for argument `noise_shape`."


def check_noise_shape(noise_shape: Any) -> tuple[int | None, ...] | None:
    """``noise_shape`` as a tuple of positive ints and None, or None; ValueError naming a bad one.

    The messages are Keras' own (``keras.layers.Dropout``'s), so code matching them still works.
    """
    if noise_shape is None:
        return None
    if isinstance(noise_shape, str):
        raise ValueError(
            f"{_PREFIX} Expected a tuple or list of integers. Received: noise_shape={noise_shape}"
        )
    try:
        entries = tuple(noise_shape)
    except TypeError:
        raise ValueError(
            f"{_PREFIX} Expected an iterable of integers (e.g., a tuple or list). "
            f"Received: noise_shape={noise_shape}"
        ) from None
    for index, entry in enumerate(entries):
        if entry is None:
            continue
        if isinstance(entry, bool) or not isinstance(entry, int):
            raise ValueError(
                f"{_PREFIX} Expected all elements to be integers or None. "
                f"Received element at index {index}: {entry} (type: {type(entry).__name__})"
            )
        if entry <= 0:
            raise ValueError(
                f"{_PREFIX} Expected all dimensions to be positive integers or None. "
                f"Received negative or zero value at index {index}: {entry}"
            )
    return entries


def broadcast_dims(noise_shape: tuple[int | None, ...] | None, shape: Sequence[int]) -> tuple[int, ...]:
    """The axes of an input of ``shape`` along which a mask of ``noise_shape`` is shared.

    An entry of 1 shares the mask along its axis; None, or the input's own size, gives that
    axis its own mask values. Any other entry, or a ``noise_shape`` whose length is not the
    input's rank, raises ValueError naming both shapes.
    """
    if noise_shape is None:
        return ()
    shape = tuple(shape)
    if len(noise_shape) != len(shape):
        raise ValueError(
            f"noise_shape={noise_shape} has {len(noise_shape)} entries, but the input has "
            f"{len(shape)} axes (shape {shape}): give one entry per axis"
        )
    dims = []
    for axis, (entry, size) in enumerate(zip(noise_shape, shape, strict=True)):
        if entry is None or entry == size:
            continue
        if entry != 1:
            raise ValueError(
                f"noise_shape={noise_shape} does not fit the input's shape {shape}: entry {axis} is "
                f"{entry}; each entry must be 1 (one mask value shared along that axis), None or the "
                f"input's size along that axis ({size})"
            )
        dims.append(axis)
    return tuple(dims)


def check_data_format(data_format: str | None, default: str) -> str:
    """``data_format`` (``default`` if None) if it is ``"channels_first"`` or ``"channels_last"``.

    Any case is taken (``"CHANNELS_FIRST"``), as Keras' own layers lowercase it; anything else
    raises ValueError naming it and the allowed values.
    """
    value = default if data_format is None else data_format
    if isinstance(value, str):
        value = value.lower()
    if value not in _DATA_FORMATS:
        raise ValueError(
            f"data_format must be 'channels_first', 'channels_last' or None, got {data_format!r}"
        )
    return value


def spatial_broadcast_dims(rank: int, data_format: str) -> tuple[int, ...]:
    """The axes a spatial dropout shares its mask along: every axis but batch and channels.

    ``rank`` is the input's (3, 4 or 5); channels are the last axis for ``"channels_last"`` and
    axis 1 for ``"channels_first"``.
    """
    if data_format == "channels_last":
        return tuple(range(1, rank - 1))
    if data_format == "channels_first":
        return tuple(range(2, rank))
    raise ValueError(f"data_format must be 'channels_first' or 'channels_last', got {data_format!r}")
