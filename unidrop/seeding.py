"""The global seed source used when a backend's convention is to draw a seed itself.

Backends without a random generator of their own (NumPy, CuPy) draw a missing seed
here; :func:`manual_seed` makes those draws reproducible. A process forked from this one
reseeds its copy of the source from the OS (as Python's :mod:`random` does), so forked
workers do not all draw the same masks.
"""

from __future__ import annotations

import os
import random
import threading

from .arguments import check_uint64

_lock = threading.Lock()
_source = random.Random()  # seeded from the OS at import: fresh randomness by default


def manual_seed(seed: int) -> None:
    """Make the seeds drawn for ``seed=None`` calls reproducible, as ``torch.manual_seed`` does.

    It governs this process only: a process forked afterwards reseeds from the OS (call
    ``manual_seed`` in the child, e.g. with a worker number, for reproducible workers).
    """
    value = check_uint64(seed, "seed")
    with _lock:
        _source.seed(value)


def draw_seed() -> int:
    """Draw a fresh 64-bit seed from the global source."""
    with _lock:
        return _source.getrandbits(64)


def _reseed_after_fork() -> None:
    """In a forked child: a new lock (the parent's may have been held) and fresh OS entropy."""
    global _lock
    _lock = threading.Lock()
    _source.seed()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_reseed_after_fork)
