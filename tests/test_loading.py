"""``Backend.load()``: the implementation is built once per backend, on first use, and no sooner."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from _fake_entry_points import NUMPY, assert_reference_dropout, install

import unidrop
from unidrop import registry
from unidrop.conformance.adapter import SuiteAdapter

COUNTS = ("counts-loads", "_faulty_plugins:CountsLoads", "counting-dist")


@pytest.fixture
def loads(monkeypatch):
    """The list CountsLoads appends to on each ``load()``, empty at the start of the test."""
    from _faulty_plugins import CountsLoads

    calls: list[str] = []
    monkeypatch.setattr(CountsLoads, "loads", calls)
    return calls


def test_discovery_and_listing_load_no_implementation(fresh_registry, monkeypatch, loads):
    install(monkeypatch, COUNTS, NUMPY)
    assert [info.name for info in unidrop.list_backends()] == ["numpy", "counts-loads"]
    with pytest.warns(RuntimeWarning, match="also accepting it: 'counts-loads'"):
        registry.backend_for(np.ones(2, np.float32))  # choosing a backend asks accepts() alone
    assert loads == []


def test_load_runs_once_per_backend_however_many_calls(fresh_registry, monkeypatch, loads):
    install(monkeypatch, COUNTS, NUMPY)
    backend = unidrop.get_backend("counts-loads")
    x = np.linspace(-1.0, 1.0, 16, dtype=np.float32)
    for seed in range(5):
        assert_reference_dropout(unidrop.dropout(x, 0.5, seed=seed, backend="counts-loads"), x, 0.5, seed)
        unidrop.dropout(x, 0.0, backend=backend)  # the identity path uses the implementation too
        unidrop.dropout(x.astype(np.float64), 0.5, seed=seed, training=False, backend=backend)
    first = backend.implementation()
    assert backend.implementation() is first
    adapter = backend.suite_adapter()
    assert isinstance(adapter, SuiteAdapter)
    adapter.dtypes(), adapter.devices(), adapter.shape_and_dtype(x)
    assert loads == ["counts-loads"]


def test_threads_racing_for_the_first_array_share_one_implementation(fresh_registry, monkeypatch, loads):
    """Threads whose first arrays arrive together all get the one implementation that is kept.

    load() may run in each of them (no lock: a compiler must be able to trace the first call),
    but only the first implementation published is ever used.
    """
    from _faulty_plugins import CountsLoads

    install(monkeypatch, COUNTS, NUMPY)
    backend = unidrop.get_backend("counts-loads")
    start = threading.Barrier(8)
    original = CountsLoads.load

    def slow_load(self):
        time.sleep(0.2)  # a framework import takes a while: every thread arrives meanwhile
        return original(self)

    monkeypatch.setattr(CountsLoads, "load", slow_load)
    built, errors = [], []

    def first_array() -> None:
        try:
            start.wait(5)
            built.append(backend.implementation())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=first_array) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors, errors
    assert len(built) == 8 and {id(implementation) for implementation in built} == {
        id(backend.implementation())
    }


def test_each_backend_loads_its_own_implementation(fresh_registry, monkeypatch, loads):
    """Two instances (two names) of one descriptor class do not share a cached implementation."""
    from _faulty_plugins import CountsLoads

    class Second(CountsLoads):
        name = "counts-loads-too"

    install(monkeypatch, COUNTS, NUMPY)
    registry.register(Second(), version="1.0")
    x = np.ones(8, np.float32)
    unidrop.dropout(x, 0.5, seed=1, backend="counts-loads")
    unidrop.dropout(x, 0.5, seed=1, backend="counts-loads-too")
    unidrop.dropout(x, 0.5, seed=2, backend="counts-loads-too")
    assert sorted(loads) == ["counts-loads", "counts-loads-too"]
    first, second = (unidrop.get_backend(n).implementation() for n in ("counts-loads", "counts-loads-too"))
    assert first is not second
