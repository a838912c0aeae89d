"""Median seconds per call, over interleaved repetitions after a warm-up.

Each implementation is a :class:`Timed`: a call and the clock that times it. The CPU clock is
``time.perf_counter`` around the calls (with a wait for the result, for frameworks that run
asynchronously); a GPU clock records device events (``torch.cuda.Event``, ``cupy.cuda.Event``)
before and after the calls and reads the time between them.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Each timed repetition runs the call this long at least (small sizes repeat it many times).
MIN_REP_SECONDS = 2e-3


def _no_wait(result: Any) -> None:
    """The result of a synchronous call is ready when it returns."""


@dataclass(frozen=True)
class Timed:
    """One implementation to time: ``call()`` does the work once, ``wait(result)`` waits for it.

    ``events`` is None on the CPU; on a GPU it makes a (start, end) pair of device events with
    ``record()``, ``synchronize()`` and the elapsed milliseconds from ``elapsed(start, end)``.
    """

    call: Callable[[], Any]
    wait: Callable[[Any], None] = _no_wait
    events: Callable[[], tuple[Any, Any]] | None = None
    elapsed: Callable[[Any, Any], float] | None = None

    def seconds(self, number: int) -> float:
        """Seconds per call, over ``number`` calls in a row."""
        if self.events is None or self.elapsed is None:
            start = time.perf_counter()
            for _ in range(number):
                result = self.call()
            self.wait(result)
            return (time.perf_counter() - start) / number
        begin, end = self.events()
        begin.record()
        for _ in range(number):
            self.call()
        end.record()
        end.synchronize()
        return self.elapsed(begin, end) / 1e3 / number


def torch_timed(call: Callable[[], Any], device: str) -> Timed:
    """``call`` timed by CUDA events on a ``cuda`` device, by the CPU clock otherwise (imports torch)."""
    if not device.startswith("cuda"):
        return Timed(call)
    import torch

    def events() -> tuple[Any, Any]:
        return torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def elapsed(begin: Any, end: Any) -> float:
        return float(begin.elapsed_time(end))

    return Timed(call, events=events, elapsed=elapsed)


def cupy_timed(call: Callable[[], Any]) -> Timed:
    """``call`` timed by CUDA events on CuPy's current stream (imports cupy)."""
    import cupy

    def events() -> tuple[Any, Any]:
        return cupy.cuda.Event(), cupy.cuda.Event()

    def elapsed(begin: Any, end: Any) -> float:
        return float(cupy.cuda.get_elapsed_time(begin, end))

    return Timed(call, events=events, elapsed=elapsed)


def median_seconds(calls: dict[str, Timed], reps: int, number: int | None = None) -> dict[str, float]:
    """The median seconds per call of each, over ``reps`` repetitions in a shuffled order.

    Each repetition runs every call in a new order (seeded: the same orders every time), so that no
    call always follows the same other one: a call that warms the caches for the next (the same
    Python code on another dtype, say) would otherwise favour that one in every repetition.

    Each call runs first as a warm-up. A repetition makes ``number`` calls in a row, or, with
    ``number=None``, as many as last :data:`MIN_REP_SECONDS` (judged from a second, timed call).
    """
    numbers = {}
    for name, timed in calls.items():
        timed.wait(timed.call())
        if number is not None:
            numbers[name] = number
            continue
        once = max(timed.seconds(1), 1e-7)
        numbers[name] = max(1, int(MIN_REP_SECONDS / once))
    samples: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    orders = random.Random(0)
    for _ in range(reps):
        for name in orders.sample(names, len(names)):
            samples[name].append(calls[name].seconds(numbers[name]))
    return {name: statistics.median(values) for name, values in samples.items()}
