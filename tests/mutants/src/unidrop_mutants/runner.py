"""Run the conformance suite on many backends in one pytest process, and the kill-ratio table.

:func:`run_suite` writes a module with one :class:`~unidrop.conformance.suite.ConformanceSuite`
subclass per backend, runs it in a pytest subprocess with ``--junitxml``, and returns each
backend's failed, passed and skipped test names. A backend given tests to run *first* runs them
before the rest of its suite and, once one of its tests has failed, skips the rest (a killed
mutant need not run 170 more tests); every other backend (the control, a survivor) runs the whole
suite. ``python -m unidrop_mutants.runner`` prints, for every mutant, whether the suite kills it
and at which tests, then the kill ratio (``--whole-suite``: every test on every mutant).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .backend import CONTROL, DESCRIPTORS, MUTANTS

MODULE = "test_mutant_suites"
PROFILE = "unidrop-mutants"
#: The suite's CI profile (the same examples), except that a failing example is not shrunk
#: (a mutant only has to fail; shrinking took seconds per mutant), and silent about one test
#: function run by many classes (one per backend): Hypothesis's ``differing_executors`` check
#: guards its example database, which a derandomized profile does not use.
CONFTEST = f"""
from hypothesis import HealthCheck, Phase, settings

from unidrop.conformance.plugin import CI_PROFILE

_ci = settings.get_profile(CI_PROFILE)
settings.register_profile(
    {PROFILE!r},
    parent=_ci,
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[*_ci.suppress_health_check, HealthCheck.differing_executors],
)
"""
#: The reason of a test skipped because its class already failed (see :data:`EARLY_STOP`).
STOPPED = "not run: the backend already failed at "
#: The early stop, appended to :data:`CONFTEST` with ``FIRST``: {class name: test names}. A class
#: in ``FIRST`` runs the tests those names match (a full name, or a function name: all its
#: parameters) first, in that order, then the rest; once one of its tests has failed, every test
#: after its first ones is skipped. A class not in ``FIRST`` runs every test.
EARLY_STOP = f"""
import pytest

_failed_at = {{}}


def _rank(item):
    names = FIRST.get(item.parent.name, ())
    for rank, name in enumerate(names):
        if item.name == name or ("[" not in name and item.name.split("[")[0] == name):
            return rank
    return len(names)


def pytest_collection_modifyitems(items):
    classes = {{}}
    for item in items:
        classes.setdefault(item.parent.name, []).append(item)
    items[:] = [item for group in classes.values() for item in sorted(group, key=_rank)]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    names = FIRST.get(item.parent.name)
    if names is not None and item.parent.name in _failed_at and _rank(item) == len(names):
        pytest.skip({STOPPED!r} + _failed_at[item.parent.name])


def pytest_runtest_logreport(report):
    if report.failed:
        _failed_at.setdefault(report.nodeid.split("::")[-2], report.nodeid.split("::")[-1])
"""


@dataclass
class Outcome:
    """One backend's result: the names (with parameters) of its failed, passed and skipped tests."""

    failed: set[str] = field(default_factory=set)
    passed: set[str] = field(default_factory=set)
    skipped: set[str] = field(default_factory=set)
    #: tests not run because the backend had already failed (the early stop)
    stopped: set[str] = field(default_factory=set)

    def caught_at(self, test: str) -> bool:
        """True if ``test`` failed: a full name with parameters, or a function name (any parameters)."""
        if "[" in test:
            return test in self.failed
        return any(name.split("[")[0] == test for name in self.failed)


def class_name(backend: str) -> str:
    """The generated suite class of ``backend``."""
    return "Test_" + backend.replace("-", "_")


def run_suite(
    backends: list[str], workdir: Path, first: Mapping[str, Sequence[str]] | None = None
) -> dict[str, Outcome]:
    """The conformance suite on each of ``backends``, in one pytest subprocess run in ``workdir``.

    A backend in ``first`` runs the tests its names match first (a full name, or a function
    name: all its parameters), and skips the rest once one of its tests has failed; the others
    run the whole suite. Raises RuntimeError (with pytest's output) if pytest itself did not
    run the tests.
    """
    first = first or {}
    lines = ["from unidrop.conformance.suite import ConformanceSuite", ""]
    for backend in backends:
        lines += [
            "",
            f"class {class_name(backend)}(ConformanceSuite):",
            f"    backend_name = {backend!r}",
            "",
        ]
    (workdir / f"{MODULE}.py").write_text("\n".join(lines))
    order = {class_name(backend): list(names) for backend, names in first.items() if backend in backends}
    (workdir / "conftest.py").write_text(f"{CONFTEST}\nFIRST = {order!r}\n{EARLY_STOP}")
    report = workdir / "report.xml"
    # deterministic order (no pytest-randomly), and no tracebacks: the report keeps each message
    command = [sys.executable, "-m", "pytest", f"{MODULE}.py", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "no:randomly", "--tb=no", f"--hypothesis-profile={PROFILE}", f"--junitxml={report}"]
    command += ["-W", "ignore::RuntimeWarning"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
    if result.returncode not in (0, 1) or not report.exists():
        raise RuntimeError(
            f"pytest exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    by_class = {class_name(backend): backend for backend in backends}
    outcomes = {backend: Outcome() for backend in backends}
    for case in ET.parse(report).getroot().iter("testcase"):
        backend = by_class[str(case.get("classname")).rpartition(".")[2]]
        name = str(case.get("name"))
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[backend].failed.add(name)
        elif (skip := case.find("skipped")) is not None:
            stopped = STOPPED in str(skip.get("message"))
            (outcomes[backend].stopped if stopped else outcomes[backend].skipped).add(name)
        else:
            outcomes[backend].passed.add(name)
    return outcomes


def caught_by(backend: str) -> tuple[str, ...]:
    """The tests that must catch the mutant ``backend`` (its class's ``caught_by``; none for the control)."""
    return tuple(getattr(DESCRIPTORS[backend]().load(), "caught_by", ()))


def table(outcomes: dict[str, Outcome]) -> str:
    """The kill table: each mutant, killed or not, whether its named tests caught it, the test
    functions that failed, and the kill ratio."""
    rows, killed = [], 0
    for name, outcome in outcomes.items():
        if name == CONTROL:
            continue
        named = all(outcome.caught_at(test) for test in caught_by(name))
        killed += bool(outcome.failed)
        status = ("killed" if named else "killed elsewhere") if outcome.failed else "SURVIVES"
        functions = sorted({test.split("[")[0] for test in outcome.failed})
        rows.append(f"{name:45} {status:16} {len(outcome.failed):3} failed  {' '.join(functions)}")
    rows.append(f"kill ratio: {killed}/{len(MUTANTS)} = {killed / len(MUTANTS):.0%}")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the kill table of the suite installed here on every installed mutant."""
    parser = argparse.ArgumentParser(prog="python -m unidrop_mutants.runner", description=main.__doc__)
    parser.add_argument(
        "--whole-suite",
        action="store_true",
        help="run every test on every mutant (default: a mutant stops at its first failure, "
        "after its caught_by tests)",
    )
    whole = parser.parse_args(argv).whole_suite
    first = {} if whole else {backend: caught_by(backend) for backend in DESCRIPTORS if backend != CONTROL}
    with tempfile.TemporaryDirectory() as workdir:
        outcomes = run_suite(list(DESCRIPTORS), Path(workdir), first)
    control = outcomes[CONTROL]
    if control.failed:
        print(f"the unmutated control fails: {sorted(control.failed)}")
    print(table(outcomes))


if __name__ == "__main__":
    main()
