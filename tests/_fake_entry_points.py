"""Faked ``unidrop.backends`` entry points, each with the distribution that would install it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint

import numpy as np
import pytest

from unidrop import reference, registry

NUMPY = ("numpy", "unidrop_numpy.backend:NumpyBackend", "unidrop-numpy")


@dataclass(frozen=True)
class FakeDistribution:
    name: str
    version: str = "1.0"
    requires: tuple[str, ...] | None = None  # its Requires-Dist lines


def entry_point(name: str, value: str, dist: FakeDistribution) -> EntryPoint:
    """One entry point of the group, installed by ``dist``."""
    return EntryPoint(name, value, registry.ENTRY_POINT_GROUP)._for(dist)  # type: ignore[attr-defined]


def entry_points(*specs: tuple[str, str, str | None]) -> Callable[..., list[EntryPoint]]:
    """A stand-in for ``importlib.metadata.entry_points``: (name, value, distribution or None)."""
    points = []
    for name, value, dist in specs:
        point = EntryPoint(name, value, registry.ENTRY_POINT_GROUP)
        points.append(point._for(FakeDistribution(dist)) if dist else point)  # type: ignore[attr-defined]
    return lambda group: points if group == registry.ENTRY_POINT_GROUP else []


def install(monkeypatch: pytest.MonkeyPatch, *specs: tuple[str, str, str | None]) -> None:
    """Make the registry discover exactly ``specs`` next time (use with the fresh_registry fixture)."""
    monkeypatch.setattr(registry, "entry_points", entry_points(*specs))


def assert_reference_dropout(y: np.ndarray, x: np.ndarray, p: float, seed: int) -> None:
    """``y`` is mask stream v1 dropout of ``x`` as the pure-Python reference computes it."""
    expected, _ = reference.dropout(x.reshape(-1).tolist(), x.shape, x.dtype.name, p, seed)
    np.testing.assert_array_equal(np.asarray(y, np.float64).reshape(-1), np.asarray(expected, np.float64))
