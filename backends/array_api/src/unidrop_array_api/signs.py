"""The sign bit of an array's elements in standard operations, where a library lacks ``signbit``."""

from __future__ import annotations

from typing import Any


def sign_bit(xp: Any, values: Any, one: Any) -> Any:
    """``signbit(values)`` for the zeros and finite values of ``values``, where the library has it;
    else ``1 / values < 0`` (ndonnx has no signbit: its division by zero gives a signed infinity)."""
    try:
        return xp.signbit(values)
    # RuntimeError: array-api-strict set to a standard before 2023.12, which added signbit
    except (AttributeError, NotImplementedError, RuntimeError):
        return (one / values) < 0
