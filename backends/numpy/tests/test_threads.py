"""The NumPy backend's threads: the setting, its validation, and the one reused pool."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from unidrop_numpy import chunked, pool
from unidrop_numpy import threads as thread_settings
from unidrop_numpy.chunked import dropout_array

from unidrop import arguments, reference


def plan_for(x: np.ndarray, p: float = 0.5, seed: int = 7, stream: int = 0) -> arguments.DropoutPlan:
    return arguments.DropoutPlan.build(x.shape, x.dtype.name, p, seed, stream, (), return_mask=True)


def error_for(value: object) -> type[Exception]:
    """TypeError for a value that is not an integer, ValueError for an integer out of range."""
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    return ValueError if is_int else TypeError


def bad_threads(value: object) -> str:
    """The message for ``value``: ending in its type when it is not an integer at all."""
    ending = f" of type {type(value).__name__}" if error_for(value) is TypeError else ""
    return rf"threads must be an integer from 1 to 256, got {re.escape(repr(value))}{ending}$"


def expected_bits(x: np.ndarray, p: float = 0.5, seed: int = 7, stream: int = 0) -> list[int]:
    values, _ = reference.dropout([float(v) for v in x.reshape(-1)], x.shape, x.dtype.name, p, seed, stream)
    return np.array(values, x.dtype).view(f"u{x.itemsize}").tolist()


@pytest.fixture
def setting():
    """Restore the thread setting (and whether the environment was read) after the test."""
    before = thread_settings._num_threads
    yield
    thread_settings._num_threads = before


@pytest.fixture
def fresh_pool():
    """A pool with no threads yet, and none left behind."""
    pool.shutdown()
    yield
    pool.shutdown()


# -- the setting -------------------------------------------------------------------------------


@pytest.mark.usefixtures("setting")
def test_set_num_threads_takes_1_to_the_maximum() -> None:
    for good in (1, 3, thread_settings.MAX_THREADS, np.int64(2), np.uint8(5)):
        thread_settings.set_num_threads(good)
        assert thread_settings.get_num_threads() == good and type(thread_settings.get_num_threads()) is int


@pytest.mark.usefixtures("setting")
@pytest.mark.parametrize(
    "bad",
    [
        0,
        -1,
        1.5,
        4.0,
        True,
        np.bool_(True),
        "4",
        None,
        2**40,
        np.int64(2**40),
        thread_settings.MAX_THREADS + 1,
    ],
)
def test_set_num_threads_refuses_what_cannot_run(bad: object) -> None:
    before = thread_settings.get_num_threads()
    with pytest.raises(error_for(bad), match=bad_threads(bad)):
        thread_settings.set_num_threads(bad)  # type: ignore[arg-type]
    assert thread_settings.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, 2**40, 1.0, True])
def test_threads_argument_is_checked_the_same_way(bad: object) -> None:
    x = np.ones(8, np.float32)
    with pytest.raises(error_for(bad), match=bad_threads(bad)):
        dropout_array(x, plan_for(x), threads=bad)  # type: ignore[arg-type]


@pytest.mark.usefixtures("setting")
@pytest.mark.parametrize(("value", "threads"), [("3", 3), (" 2\n", 2), ("256", 256)])
def test_thread_count_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str, threads: int) -> None:
    monkeypatch.setenv("UNIDROP_NUM_THREADS", value)
    thread_settings._num_threads = None  # not read yet
    assert thread_settings.get_num_threads() == threads


@pytest.mark.usefixtures("setting")
def test_default_thread_count_without_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNIDROP_NUM_THREADS", raising=False)
    thread_settings._num_threads = None
    assert 1 <= thread_settings.get_num_threads() <= thread_settings.MAX_DEFAULT_THREADS


@pytest.mark.usefixtures("setting")
@pytest.mark.parametrize("bad", ["abc", "0", "", " ", "-2", "1.5", "257", "1099511627776", "٣"])
def test_bad_environment_value_is_reported_when_read(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("UNIDROP_NUM_THREADS", bad)
    thread_settings._num_threads = None
    message = rf"UNIDROP_NUM_THREADS must be an integer from 1 to 256, got {bad!r}$"
    x = np.ones(8, np.float32)  # even a one-thread array: the same error, every time
    for _ in range(2):
        with pytest.raises(ValueError, match=message):
            dropout_array(x, plan_for(x))
    thread_settings.set_num_threads(1)  # an explicit setting wins over the environment
    assert dropout_array(x, plan_for(x))[0].view(np.uint32).tolist() == expected_bits(x)


def test_bad_environment_value_does_not_unload_the_backend() -> None:
    """Importing and discovering the backend works; the first dropout names the variable and value."""
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "import numpy as np, unidrop\n"
        "assert 'numpy' in [b.name for b in unidrop.list_backends()]\n"
        "try:\n"
        "    unidrop.dropout(np.ones(4, np.float32), 0.5, seed=1)\n"
        "except ValueError as error:\n"
        "    print('ValueError:', error)\n"
    )
    env = {**os.environ, "UNIDROP_NUM_THREADS": "abc"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    message = "UNIDROP_NUM_THREADS must be an integer from 1 to 256, got 'abc'"
    assert done.stdout.strip() == f"ValueError: {message}"


# -- the pool ----------------------------------------------------------------------------------


def count_thread_starts(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The functions the pool starts threads on, one entry per thread started."""
    started: list[object] = []
    original = pool.start_new_thread

    def start(function, args):  # type: ignore[no-untyped-def]
        started.append(function)
        return original(function, args)

    monkeypatch.setattr(pool, "start_new_thread", start)
    return started


@pytest.mark.usefixtures("small_chunks", "fresh_pool")
def test_threads_are_reused_and_never_outnumber_the_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """8 threads asked for, 3 blocks of work, 5 calls: at most 2 helper threads are ever started."""
    started = count_thread_starts(monkeypatch)
    x = np.random.default_rng(3).standard_normal(72).astype(np.float32)  # 3 blocks of 24
    assert chunked.block_count(x.shape) == 3
    for _ in range(5):
        y, _ = dropout_array(x, plan_for(x), threads=8)
        assert y.view(np.uint32).tolist() == expected_bits(x)
    assert 1 <= len(started) <= 2, started


@pytest.mark.usefixtures("small_chunks", "fresh_pool")
def test_a_thread_that_cannot_start_costs_only_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(function, args):  # type: ignore[no-untyped-def]
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(pool, "start_new_thread", refuse)
    x = np.random.default_rng(4).standard_normal((10, 30)).astype(np.float64)
    for _ in range(3):
        y, _ = dropout_array(x, plan_for(x, 0.3, 11, 2), threads=4)
        assert y.view(np.uint64).reshape(-1).tolist() == expected_bits(x, 0.3, 11, 2)


@pytest.mark.usefixtures("small_chunks")
def test_calls_from_several_threads_at_once() -> None:
    x = np.random.default_rng(5).standard_normal(24 * 40).astype(np.float32)
    want = expected_bits(x, 0.25, 3)
    results: list[list[int]] = []

    def call(threads: int) -> None:
        for _ in range(3):
            y, _ = dropout_array(x, plan_for(x, 0.25, 3), threads=threads)
            results.append(y.view(np.uint32).tolist())

    callers = [threading.Thread(target=call, args=(t,)) for t in (2, 3, 5, 2)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(60)
    assert len(results) == 12 and all(r == want for r in results)


def wait_for_child(pid: int) -> int:
    for _ in range(600):  # a child stuck on an inherited lock or pool would never finish: allow 60 s
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child did not finish within 60 s")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_computes_the_same() -> None:
    """A child forked while a thread holds the pool's and the workspaces' locks gets its result."""
    x = np.random.default_rng(2).standard_normal(3 * chunked.CHUNK).astype(np.float32)
    plan = plan_for(x)
    y, _ = dropout_array(x, plan, threads=2)
    with chunked._spare_lock, pool._lock:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            child, _ = dropout_array(x, plan, threads=2)
            os._exit(0 if np.array_equal(child.view(np.uint32), y.view(np.uint32)) else 1)
    assert wait_for_child(pid) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_has_working_pool_threads() -> None:
    """The parent's pool threads do not exist in a child: a child's helpers must still run."""
    warm = pool.Helpers(lambda: time.sleep(0.2))
    assert warm.start(2) == 2
    warm.wait()  # the parent's pool has threads now, idle
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        ran = threading.Event()
        helpers = pool.Helpers(ran.set)
        queued = helpers.start(1)
        os._exit(0 if queued == 1 and ran.wait(20) else 1)
    assert wait_for_child(pid) == 0


# -- Ctrl-C ------------------------------------------------------------------------------------


def _threaded_result(x: np.ndarray) -> np.ndarray:
    import unidrop

    return unidrop.dropout(x, 0.5, seed=5, backend="numpy")


@pytest.mark.usefixtures("fresh_pool")
def test_an_interrupt_in_the_calling_thread_leaves_the_pool_usable() -> None:
    """KeyboardInterrupt in the caller while its helpers still run: it propagates at once, and the
    next calls and the pool's shutdown go on (no lock is left held)."""
    release = threading.Event()

    def task() -> None:
        if threading.current_thread() is threading.main_thread():
            raise KeyboardInterrupt
        release.wait(10)

    helpers = pool.Helpers(task)
    assert helpers.start(2) == 2
    with pytest.raises(KeyboardInterrupt):
        try:
            task()
        finally:
            release.set()
            helpers.wait()
    x = np.random.default_rng(3).standard_normal(1 << 21).astype(np.float32)
    first = _threaded_result(x)
    assert np.array_equal(_threaded_result(x).view(np.uint32), first.view(np.uint32))
    ender = threading.Thread(target=pool.shutdown)
    ender.start()
    ender.join(30)
    assert not ender.is_alive(), "pool.shutdown() did not finish"


@pytest.mark.usefixtures("fresh_pool")
def test_an_interrupted_wait_leaves_the_pool_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    """KeyboardInterrupt while the caller waits for its helpers: the next call still gets its helpers."""
    started = threading.Event()
    release = threading.Event()

    def slow() -> None:
        started.set()
        release.wait(10)

    helpers = pool.Helpers(slow)
    assert helpers.start(1) == 1
    assert started.wait(10)
    real = helpers._done

    class Interrupted:  # the wait's get is where the KeyboardInterrupt lands
        def get(self) -> None:
            raise KeyboardInterrupt

    monkeypatch.setattr(helpers, "_done", Interrupted())
    with pytest.raises(KeyboardInterrupt):
        helpers.wait()
    release.set()
    real.get(timeout=10)  # the helper finishes on its own
    ran = threading.Event()
    again = pool.Helpers(ran.set)
    assert again.start(1) == 1
    assert ran.wait(10)
    again.wait()


def test_pool_threads_are_never_joined_at_exit() -> None:
    """The helpers are not threading.Thread objects: the interpreter's exit joins none of them."""
    helpers = pool.Helpers(lambda: None)
    helpers.start(2)
    helpers.wait()
    assert pool._count >= 2
    assert all(t.daemon for t in threading.enumerate() if t is not threading.main_thread())


#: Interrupts every point of a threaded call where CPython may run a signal handler (after a call
#: returns, at a backward jump, on entering a function) in the pool's code and the standard
#: library's threading code, one point per call, each followed by a normal call. A lock left
#: held would hang it: faulthandler then ends the run with every thread's stack.
INTERRUPT_EVERY_POINT = """
import dis, faulthandler, sys
import numpy as np, unidrop
from unidrop_numpy import pool
WATCH = ("unidrop_numpy/pool.py", "unidrop_numpy/compiled.py", "threading.py", "queue.py",
         "concurrent/futures/")
# the opcodes of Python 3.10 to 3.13: calls (a handler may run once one returns), backward jumps, entries
CALLS = ("CALL", "CALL_FUNCTION", "CALL_FUNCTION_KW", "CALL_FUNCTION_EX", "CALL_METHOD", "CALL_KW")
CHECKS = ("JUMP_BACKWARD", "JUMP_ABSOLUTE", "RESUME")
x = np.ones(1 << 21, dtype=np.float32)
want = unidrop.dropout(x, 0.5, seed=5, backend="numpy")
faulthandler.dump_traceback_later(120, exit=True)
k, interrupted = 0, 0
while True:
    k += 1
    seen, previous = [0], {}
    def tracer(frame, event, arg):
        if not any(w in frame.f_code.co_filename for w in WATCH):
            return None
        frame.f_trace_opcodes = True
        if event == "opcode":
            op = dis.opname[frame.f_code.co_code[frame.f_lasti]]
            if previous.get(id(frame)) in CALLS or op in CHECKS:
                seen[0] += 1
                if seen[0] == k:
                    raise KeyboardInterrupt
            previous[id(frame)] = op
        return tracer
    if k % 2:
        pool.shutdown()  # so that starting threads is interrupted too
    sys.settrace(tracer)
    try:
        unidrop.dropout(x, 0.5, seed=5, backend="numpy")
    except KeyboardInterrupt:
        interrupted += 1
    finally:
        sys.settrace(None)
    y = unidrop.dropout(x, 0.5, seed=5, backend="numpy")
    assert np.array_equal(y.view(np.uint32), want.view(np.uint32)), k
    if seen[0] < k:
        break
print("points", k - 1, "interrupted", interrupted)
"""


def test_ctrl_c_at_any_point_of_a_threaded_call_never_deadlocks_the_next_call_or_the_exit() -> None:
    env = {**os.environ, "UNIDROP_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPT_EVERY_POINT], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    points, interrupted = int(done.stdout.split()[1]), int(done.stdout.split()[3])
    assert points > 10 and interrupted == points, done.stdout
