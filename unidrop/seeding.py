"""The global seed source used when a backend's convention is to draw a seed itself.

Backends without a random generator of their own (NumPy, CuPy) draw a missing seed
here; :func:`manual_seed` makes those draws reproducible.
"""

from __future__ import annotations

import random
import threading

from .contract import check_uint64

_lock = threading.Lock()
_source = random.Random()  # seeded from the OS at import: fresh randomness by default


def manual_seed(seed: int) -> None:
    """Make the seeds drawn for ``seed=None`` calls reproducible, as ``torch.manual_seed`` does."""
    value = check_uint64(seed, "seed")
    with _lock:
        _source.seed(value)


def draw_seed() -> int:
    """Draw a fresh 64-bit seed from the global source."""
    with _lock:
        return _source.getrandbits(64)
