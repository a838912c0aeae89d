"""Shared fixtures of the core's own tests."""

from __future__ import annotations

import pytest

from unidrop import registry


@pytest.fixture
def fresh_registry():
    """Forget discovered backends before and after a test that fakes entry points."""
    registry.reset()
    yield registry
    registry.reset()
