"""Generic backends (``Backend.generic = True``, such as the Array API one) are asked last.

The registry asks them only after every specific backend declined an array, whether or not their
``framework`` is imported yet; a specific backend that accepts the array serves it with no
conflict warning; two generic backends accepting one array do conflict (and warn).
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, ClassVar

import numpy as np
import pytest
from _fake_entry_points import NUMPY, install

import unidrop
from unidrop import registry
from unidrop.backend import Backend, Implementation


class Thing:
    """An array-like of no framework any backend serves: only ``accepts`` decides."""

    __array_namespace__ = None


class Recorder(Backend):
    """Accepts a :class:`Thing` if ``accepting``; appends its name to ``asked`` on every question."""

    framework = "numpy"
    distribution = "recorder-dist"
    asked: ClassVar[list[str]] = []
    accepting = True

    def accepts(self, x: Any) -> bool:
        Recorder.asked.append(self.name)
        return self.accepting and isinstance(x, Thing)

    def load(self) -> Implementation:
        raise NotImplementedError


class Specific(Recorder):
    name = "specific"


class Declines(Recorder):
    name = "declines"
    accepting = False


class GenericA(Recorder):
    name = "aaa-generic"  # first by name: were it not generic it would be asked first
    framework = "a_module_nobody_imported"  # asked all the same: a generic backend judges the type
    generic = True


class GenericB(Recorder):
    name = "bbb-generic"
    generic = True


@pytest.fixture
def recorded(fresh_registry):
    Recorder.asked.clear()
    yield Recorder.asked
    Recorder.asked.clear()


def register(*backends: Backend) -> None:
    for backend in backends:
        registry.register(backend)


def test_generic_is_false_by_default_and_a_class_attribute():
    assert Backend.generic is False
    assert Specific.generic is False and GenericA.generic is True


def test_a_specific_backend_serves_before_a_generic_one_with_no_warning(recorded):
    register(GenericA(), Specific())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no conflict warning: a generic backend is no rival
        assert registry.backend_for(Thing()).name == "specific"
    assert recorded == ["specific"]  # the generic one was not even asked
    assert [plugin.name for plugin in registry.accepting(Thing())] == ["specific"]


def test_a_generic_backend_is_asked_only_after_every_specific_one_declined(recorded):
    assert "a_module_nobody_imported" not in sys.modules
    register(GenericA(), Declines())
    assert registry.backend_for(Thing()).name == "aaa-generic"
    assert recorded == ["declines", "aaa-generic"]


def test_two_generic_backends_accepting_one_array_warn_and_the_first_in_order_serves(recorded):
    register(GenericB(), GenericA(), Declines())
    with pytest.warns(RuntimeWarning, match=r"several unidrop backends accept .*'aaa-generic'.* serves it"):
        assert registry.backend_for(Thing()).name == "aaa-generic"
    assert recorded[0] == "declines"


def test_a_generic_backend_named_explicitly_is_used_though_its_framework_is_not_imported(recorded):
    register(GenericA())
    with pytest.raises(RuntimeError, match=r"'aaa-generic'.*loading it raised NotImplementedError"):
        registry.dispatch(Thing(), backend="aaa-generic")


def test_numpy_arrays_go_to_the_numpy_backend_with_a_generic_backend_installed(recorded, monkeypatch):
    class TakesAll(GenericB):
        def accepts(self, x: Any) -> bool:
            Recorder.asked.append(self.name)
            return hasattr(type(x), "__array_namespace__")

    install(monkeypatch, NUMPY)  # the NumPy backend alone, as a user has it
    register(TakesAll())
    x = np.ones(8, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert registry.backend_for(x).name == "numpy"
        unidrop.dropout(x, 0.5, seed=1)
    assert "bbb-generic" not in recorded
