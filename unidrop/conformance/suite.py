"""The whole conformance suite: every check a unidrop backend must pass, composed of its parts.

Expected values come from the pure-Python reference (:mod:`unidrop.reference`) and the
known-answer file, never from a backend. Subclass :class:`ConformanceSuite` in a backend's
tests (setting ``backend_name``), or compose only some parts::

    class TestMine(ExactnessChecks, RulesChecks):
        backend_name = "mine"

or run it on any installed backend with
``pytest --pyargs unidrop.conformance --unidrop-backend NAME``.

Fixtures ``unidrop_device`` and ``unidrop_dtype`` are parametrized by the plugin over the
backend's devices and dtypes, for any subclass of :class:`~.helpers.SuitePart`.
"""

from __future__ import annotations

from .abilities import AbilitiesChecks
from .adapter import SuiteAdapter
from .exactness import ExactnessChecks
from .family import FamilyChecks
from .helpers import SuitePart, assert_same_floats, exact_values, keep_string, sample_values
from .rules import RulesChecks
from .statistics import STAT_SIZE, StatisticsChecks

__all__ = [
    "STAT_SIZE",
    "AbilitiesChecks",
    "ConformanceSuite",
    "ExactnessChecks",
    "FamilyChecks",
    "RulesChecks",
    "StatisticsChecks",
    "SuiteAdapter",
    "SuitePart",
    "assert_same_floats",
    "exact_values",
    "keep_string",
    "sample_values",
]


class ConformanceSuite(ExactnessChecks, StatisticsChecks, RulesChecks, AbilitiesChecks, FamilyChecks):
    """Checks mask stream v1 and every rule of the contract on one backend: all the parts."""
