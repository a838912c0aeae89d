"""Meta-tests: the conformance suite catches each mutant of tests/mutants at its named test.

tests/mutants (distribution ``unidrop-mutants``, installed by the nox ``tests`` session) holds
mask stream v1 with one subtle defect per backend (issue 10). The suite runs once, in one pytest
subprocess, on every mutant and on the unmutated control ``mutant-none``; then each mutant must
fail it, at every test its ``caught_by`` names. To keep this fast (about 20 s instead of five
minutes), a mutant runs its ``caught_by`` tests first and skips the rest of the suite once one of
its tests has failed; the control and any survivor run the whole suite. A mutant the suite lets
through would be listed in :data:`SURVIVORS`, an explicit ``xfail(strict=True)`` saying which check
it needs (with a test showing an input on which it is wrong); none is now.
``python -m unidrop_mutants.runner`` prints the table (``--whole-suite``: every test on every mutant).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest
from unidrop_mutants import CONTROL, DESCRIPTORS, MUTANTS  # tests/mutants: nox -s tests installs it
from unidrop_mutants.runner import Outcome, caught_by, run_suite
from unidrop_mutants.stream import StreamV1

import unidrop

#: mutant slug -> the check the suite needs to catch it (a survivor: it runs the whole suite,
#: expected to pass it). Empty: the suite kills every mutant.
SURVIVORS: dict[str, str] = {}


def implementation_of(backend: str) -> StreamV1:
    made = unidrop.get_backend(backend).implementation()
    assert isinstance(made, StreamV1)
    return made


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """The suite on the control and every mutant, in one pytest run (about 20 s on 2 cores): each
    mutant but a survivor stops after its caught_by tests once it has failed."""
    first = {f"mutant-{slug}": caught_by(f"mutant-{slug}") for slug in MUTANTS if slug not in SURVIVORS}
    return run_suite(list(DESCRIPTORS), tmp_path_factory.mktemp("mutants"), first)


def test_every_mutant_is_installed_and_registered_once() -> None:
    installed = {i.name for i in unidrop.list_backends() if i.distribution == "unidrop-mutants"}
    assert installed == set(DESCRIPTORS) == {CONTROL, *(f"mutant-{slug}" for slug in MUTANTS)}
    assert len(MUTANTS) >= 30
    assert set(SURVIVORS) <= set(MUTANTS)


def test_every_defect_class_is_a_registered_mutant_with_a_one_line_defect_and_a_catcher() -> None:
    defined = set()
    for module in ("randomness", "arithmetic", "layout", "state", "paths"):
        found = importlib.import_module(f"unidrop_mutants.defects.{module}")
        defined |= {
            f"{module}.{name}"
            for name, cls in vars(found).items()
            if inspect.isclass(cls) and issubclass(cls, StreamV1) and cls.__module__ == found.__name__
            if not name.startswith("_")
        }
    assert defined == set(MUTANTS.values())
    for slug in MUTANTS:
        mutant = type(implementation_of(f"mutant-{slug}"))
        assert mutant is not StreamV1 and mutant.caught_by, slug
        assert len((mutant.__doc__ or "").strip().splitlines()) == 1, f"{slug}: say the defect in one line"


def test_the_unmutated_control_passes_the_whole_suite(outcomes: dict[str, Outcome]) -> None:
    """Without this the kills below would mean nothing: the base every mutant changes is correct."""
    control = outcomes[CONTROL]
    assert control.failed == set()
    assert control.skipped == control.stopped == set(), "autograd and jit are declared: nothing skipped"
    assert len(control.passed) > 80


def test_a_killed_mutant_runs_its_caught_by_tests_then_stops(outcomes: dict[str, Outcome]) -> None:
    """The early stop: every test of the suite is accounted for, the named ones were run first."""
    control = outcomes[CONTROL]
    for slug in ("key-words-swapped", "gradient-uses-stale-mask"):
        outcome = outcomes[f"mutant-{slug}"]
        run = outcome.failed | outcome.passed | outcome.skipped
        assert run | outcome.stopped == control.passed, slug
        assert outcome.stopped and len(run) < len(control.passed) / 4, slug
        assert all(outcome.caught_at(test) for test in caught_by(f"mutant-{slug}")), slug


def _cases() -> list[Any]:
    cases = []
    for slug in MUTANTS:
        marks = []
        if slug in SURVIVORS:
            reason = f"survives the suite: needs {SURVIVORS[slug]}"
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        cases.append(pytest.param(slug, marks=marks, id=slug))
    return cases


@pytest.mark.parametrize("slug", _cases())
def test_the_suite_kills_the_mutant_at_its_named_test(slug: str, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[f"mutant-{slug}"]
    assert outcome.failed, f"mutant-{slug} passed the whole suite ({len(outcome.passed)} tests)"
    missed = [test for test in caught_by(f"mutant-{slug}") if not outcome.caught_at(test)]
    assert not missed, f"mutant-{slug}: {missed} did not fail; what failed: {sorted(outcome.failed)}"
