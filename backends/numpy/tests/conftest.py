"""Fixtures shared by the NumPy backend's tests."""

from __future__ import annotations

import pytest
from unidrop_numpy import chunked


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 24 elements, threaded from 48 on, so small arrays exercise every path."""
    monkeypatch.setattr(chunked, "CHUNK", 24)
    monkeypatch.setattr(chunked, "MIN_THREADED_SIZE", 48)
