"""How many threads one NumPy-backend dropout call may use (no NumPy import here)."""

from __future__ import annotations

import os

#: Upper bound of the default thread count.
MAX_DEFAULT_THREADS = 8


def _default_threads() -> int:
    """``UNIDROP_NUM_THREADS`` if set, else the CPUs this process may use, at most 8."""
    setting = os.environ.get("UNIDROP_NUM_THREADS")
    if setting is not None:
        if not setting.strip().isdigit() or int(setting) < 1:
            raise ValueError(f"UNIDROP_NUM_THREADS must be a positive integer, got {setting!r}")
        return int(setting)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_THREADS))


_num_threads = _default_threads()


def set_num_threads(threads: int) -> None:
    """Use at most ``threads`` threads per dropout call (1 = the calling thread only)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    global _num_threads
    _num_threads = threads


def get_num_threads() -> int:
    """The most threads one dropout call uses."""
    return _num_threads
