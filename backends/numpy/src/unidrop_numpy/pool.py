"""One pool of helper threads, reused by every threaded dropout call of the NumPy backend.

Threads are started only when a call asks for more helpers than the pool has, and never more
than the largest number any call has asked for. A process forked from one that used the pool gets
a fresh pool (the parent's threads do not exist in the child). A thread that cannot be started
("can't start new thread") is not an error: the call goes on with the threads it has.

Safe against Ctrl-C. A KeyboardInterrupt can arrive in the calling thread between any two
bytecodes. The pool therefore never holds a lock written in Python (``concurrent.futures``' futures
and semaphores are, and an interrupt inside their ``with`` blocks leaves them held, so a later call
or the exit-time join waits forever). Calls and helpers share only C-level atomic operations: a
``queue.SimpleQueue`` of jobs, ``list.pop`` of a call's tickets and slices, and ``list.append`` of
what has finished. An interrupted call raises at once; its helpers finish their current piece of
work and go back to waiting. The helper threads are started as daemon threads are, so the
interpreter's exit never waits for them.
"""

from __future__ import annotations

import os
import queue
import threading
from _thread import start_new_thread
from collections.abc import Callable

#: Guards the starting and ending of threads (a C lock).
_lock = threading.Lock()
#: What every helper thread waits on: a call's job, or None to end.
_jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
#: Where each helper thread says it has ended (for :func:`shutdown`).
_ended: queue.SimpleQueue[None] = queue.SimpleQueue()
#: The helper threads started in this process (and not ended by :func:`shutdown`).
_count = 0


def _after_fork_in_child() -> None:
    global _lock, _jobs, _ended, _count
    _lock = threading.Lock()  # another thread may have held it at the fork
    _jobs, _ended, _count = queue.SimpleQueue(), queue.SimpleQueue(), 0  # the parent's threads are not here


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _serve(jobs: queue.SimpleQueue[Callable[[], None] | None], ended: queue.SimpleQueue[None]) -> None:
    """A helper thread: run jobs until told to end (None)."""
    try:
        while True:
            job = jobs.get()
            if job is None:
                return
            job()
    finally:
        ended.put(None)


def _ensure_threads(count: int) -> int:
    """Start helper threads until the pool has ``count`` (or the system refuses); return how many it has.

    ``_thread.start_new_thread``, not ``threading.Thread.start``: the latter waits on an Event (a
    lock written in Python, which an interrupt can leave held), and its threads would be joined
    at exit. These, like daemon threads, are not.
    """
    global _count
    with _lock:
        while _count < count:
            try:
                start_new_thread(_serve, (_jobs, _ended))
            except RuntimeError:  # "can't start new thread"
                break
            _count += 1
        return _count


class Helpers:
    """Runs of one task on pool threads, started by :meth:`start` and finished by :meth:`wait`."""

    def __init__(self, task: Callable[[], None]) -> None:
        # Jobs hold the task through this slot, which wait() empties: a job still in the queue
        # when its call has finished (every thread busy elsewhere) keeps nothing of the call alive.
        self._slot: list[Callable[[], None] | None] = [task]
        self._tickets: list[None] = []  # one per job: a job runs the task only if it takes one
        self._finished: list[BaseException | None] = []  # what each job that ran the task ended with
        self._done: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._queued = 0

    def start(self, helpers: int) -> int:
        """Ask up to ``helpers`` pool threads to run the task; return how many runs were queued.

        Fewer are queued if the system refuses new threads: the caller is expected to work on
        the task itself, so that no helper is needed for the work to finish.
        """
        if helpers < 1:
            return 0
        count = min(helpers, _ensure_threads(helpers))
        self._tickets.extend([None] * count)
        job = _job(self._slot, self._tickets, self._finished, self._done)
        for _ in range(count):
            _jobs.put(job)
        self._queued = count
        return count

    def wait(self) -> None:
        """Take back the runs not started yet, wait for the others, and re-raise a run's exception."""
        self._slot[0] = None
        taken_back = 0
        while True:
            try:
                self._tickets.pop()
            except IndexError:
                break
            taken_back += 1
        for _ in range(self._queued - taken_back):  # each run that took a ticket says when it is done
            self._done.get()
        for error in self._finished:
            if error is not None:
                raise error


def _job(
    slot: list[Callable[[], None] | None],
    tickets: list[None],
    finished: list[BaseException | None],
    done: queue.SimpleQueue[None],
) -> Callable[[], None]:
    """One run of a call's task on a helper thread, if the call has not taken its ticket back."""

    def run() -> None:
        try:
            tickets.pop()
        except IndexError:  # the call finished without this run
            return
        error: BaseException | None = None
        try:
            task = slot[0]
            if task is not None:
                task()
        except BaseException as caught:  # handed to the calling thread by wait()
            error = caught
        finished.append(error)
        done.put(None)

    return run


def shutdown() -> None:
    """End the pool's threads (they are started again when needed); for tests and clean exits."""
    global _count
    with _lock:
        count, _count = _count, 0
        for _ in range(count):
            _jobs.put(None)
    for _ in range(count):
        _ended.get()
