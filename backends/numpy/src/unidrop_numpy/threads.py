"""How many threads one NumPy-backend dropout call may use (no NumPy import here).

The setting is :func:`set_num_threads`, else ``UNIDROP_NUM_THREADS``, else the CPUs this process
may use (at most :data:`MAX_DEFAULT_THREADS`). The environment variable is read when the setting
is first needed, not at import: a bad value is then reported as such by the call that needs it,
instead of making the backend fail to load.
"""

from __future__ import annotations

import contextlib
import operator
import os

#: Upper bound of the default thread count.
MAX_DEFAULT_THREADS = 8
#: The most threads a setting may ask for. More threads than cores gain nothing here (the
#: threads take turns at the GIL between NumPy calls, and the gain ends at a few threads), and
#: every running thread holds one chunk's workspace (4 MiB for float32): 256 threads cost at most
#: 1 GiB of workspaces and can be started wherever Python runs.
MAX_THREADS = 256
_ENV = "UNIDROP_NUM_THREADS"

_num_threads: int | None = None  # None: not decided yet (read the environment at first use)


def check_thread_count(threads: object, what: str) -> int:
    """``threads`` as an int if it is an integer (``__index__``, not bool) in [1, MAX_THREADS];
    else a TypeError (not an integer) or ValueError (out of range) naming ``what`` and the value."""
    message = f"{what} must be an integer from 1 to {MAX_THREADS}, got {threads!r}"
    # bools of any library are refused (NumPy < 2 still lets np.bool_ pass operator.index)
    is_bool = isinstance(threads, bool) or getattr(getattr(threads, "dtype", None), "kind", "") == "b"
    try:
        value = None if is_bool else operator.index(threads)  # type: ignore[call-overload]
    except TypeError:
        value = None
    if value is None:
        raise TypeError(f"{message} of type {type(threads).__name__}")
    if not 1 <= value <= MAX_THREADS:
        raise ValueError(message)
    return value


def _default_threads() -> int:
    """``UNIDROP_NUM_THREADS`` if set, else the CPUs this process may use, at most 8.

    A value of ``UNIDROP_NUM_THREADS`` that is not an integer from 1 to :data:`MAX_THREADS`
    (``"abc"``, ``"0"``, an empty string) raises ValueError naming the variable and the value.
    """
    setting = os.environ.get(_ENV)
    if setting is not None:
        text = setting.strip()
        if text.isascii() and text.isdigit():
            with contextlib.suppress(ValueError):  # out of range: the error below shows the text
                return check_thread_count(int(text), _ENV)
        raise ValueError(f"{_ENV} must be an integer from 1 to {MAX_THREADS}, got {setting!r}")
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_THREADS))


def set_num_threads(threads: int) -> None:
    """Use at most ``threads`` threads per dropout call (1 = the calling thread only).

    ``threads`` must be an integer from 1 to :data:`MAX_THREADS` (256): another type raises
    TypeError, an integer out of range ValueError. Results never depend on it.
    """
    global _num_threads
    _num_threads = check_thread_count(threads, "threads")


def get_num_threads() -> int:
    """The most threads one dropout call uses (reads ``UNIDROP_NUM_THREADS`` the first time)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_threads()
    return _num_threads
