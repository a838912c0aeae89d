"""One thread pool, reused by every threaded dropout call of the NumPy backend.

Threads are started only when a call needs them and none is idle, never more than the largest
number of helpers any call has asked for. A process forked from one that used the pool gets a
fresh pool (the parent's threads do not exist in the child). A thread that cannot be started
("can't start new thread") is not an error: the call goes on with the threads it has.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_size = 0
_pid = 0


def _after_fork_in_child() -> None:
    global _lock, _executor, _size
    _lock = threading.Lock()  # another thread may have held it at the fork
    _executor, _size = None, 0  # its threads are the parent's: drop it without waiting for them


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _pool(size: int) -> ThreadPoolExecutor:
    """The shared pool, made (or replaced by a larger one) so that it may run ``size`` threads."""
    global _executor, _size, _pid
    with _lock:
        if _executor is None or _pid != os.getpid() or _size < size:
            old = _executor if _pid == os.getpid() else None
            _executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="unidrop-numpy")
            _size, _pid = size, os.getpid()
            if old is not None:
                old.shutdown(wait=False)  # its idle threads end; work already given to it finishes
        return _executor


class Helpers:
    """Runs of one task on pool threads, started by :meth:`start` and finished by :meth:`wait`."""

    def __init__(self, task: Callable[[], None]) -> None:
        # Runs hold the task through this slot, which wait() empties: a run left in the queue
        # (its thread could not be started) then keeps nothing of the call alive.
        self._slot: list[Callable[[], None] | None] = [task]
        self._futures: list[Future[None]] = []

    def start(self, helpers: int) -> int:
        """Ask up to ``helpers`` pool threads to run the task; return how many runs were queued.

        Fewer are queued if the system refuses new threads: the caller is expected to work on
        the task itself, so that no helper is needed for the work to finish.
        """
        if helpers < 1:
            return 0
        pool = _pool(helpers)
        for _ in range(helpers):
            try:
                self._futures.append(pool.submit(_run, self._slot))
            except RuntimeError:  # "can't start new thread", or a pool replaced meanwhile
                break
        return len(self._futures)

    def wait(self) -> None:
        """Cancel the runs not started yet, wait for the others, and re-raise a run's exception."""
        self._slot[0] = None
        for future in self._futures:
            if not future.cancel():
                future.result()


def _run(slot: list[Callable[[], None] | None]) -> None:
    task = slot[0]
    if task is not None:
        task()


def shutdown() -> None:
    """End the pool's threads (they are started again when needed); for tests and clean exits."""
    global _executor, _size
    with _lock:
        executor, _executor, _size = _executor, None, 0
    if executor is not None:
        executor.shutdown(wait=True)
