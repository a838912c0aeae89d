"""Deliberately wrong backends, one defect each, for the conformance suite's meta-tests.

Each is the NumPy backend with a single, named mistake in its implementation: a descriptor in
:mod:`.backend` (imports no NumPy) whose ``load()`` builds its defect, an Implementation
subclass in :mod:`.implementation`. Adding one is an Implementation subclass there, a
three-line descriptor in :mod:`.backend` (exported here), and an entry point in
``pyproject.toml``.
"""

from .backend import (
    IgnoresStream,
    MaskOfAnotherType,
    ModifiesInput,
    MultiplyInsteadOfSelect,
    OffByOneThreshold,
    WrongBackend,
    WrongCounterLayout,
    WrongScale,
)

__all__ = [
    "IgnoresStream",
    "MaskOfAnotherType",
    "ModifiesInput",
    "MultiplyInsteadOfSelect",
    "OffByOneThreshold",
    "WrongBackend",
    "WrongCounterLayout",
    "WrongScale",
]
