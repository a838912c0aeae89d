"""Run the conformance suite on many backends in one pytest process, and the kill-ratio table.

:func:`run_suite` writes a module with one :class:`~unidrop.conformance.suite.ConformanceSuite`
subclass per backend, runs it in a pytest subprocess with ``--junitxml``, and returns each
backend's failed and passed test names. ``python -m unidrop_mutants.runner`` prints, for every
mutant, whether the suite kills it and at which tests, then the kill ratio.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from .backend import CONTROL, DESCRIPTORS

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


@dataclass
class Outcome:
    """One backend's result: the names (with parameters) of its failed, passed and skipped tests."""

    failed: set[str] = field(default_factory=set)
    passed: set[str] = field(default_factory=set)
    skipped: set[str] = field(default_factory=set)

    def caught_at(self, test: str) -> bool:
        """True if ``test`` failed: a full name with parameters, or a function name (any parameters)."""
        if "[" in test:
            return test in self.failed
        return any(name.split("[")[0] == test for name in self.failed)


def class_name(backend: str) -> str:
    """The generated suite class of ``backend``."""
    return "Test_" + backend.replace("-", "_")


def run_suite(backends: list[str], workdir: Path) -> dict[str, Outcome]:
    """The whole conformance suite on each of ``backends``, in one pytest subprocess run in ``workdir``.

    Raises RuntimeError (with pytest's output) if pytest itself did not run the tests.
    """
    lines = ["from unidrop.conformance.suite import ConformanceSuite", ""]
    for backend in backends:
        lines += [
            "",
            f"class {class_name(backend)}(ConformanceSuite):",
            f"    backend_name = {backend!r}",
            "",
        ]
    (workdir / f"{MODULE}.py").write_text("\n".join(lines))
    (workdir / "conftest.py").write_text(CONFTEST)
    report = workdir / "report.xml"
    command = [sys.executable, "-m", "pytest", f"{MODULE}.py", "-q", "-p", "no:cacheprovider"]
    command += [f"--hypothesis-profile={PROFILE}", f"--junitxml={report}", "-W", "ignore::RuntimeWarning"]
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
        elif case.find("skipped") is not None:
            outcomes[backend].skipped.add(name)
        else:
            outcomes[backend].passed.add(name)
    return outcomes


def table(outcomes: dict[str, Outcome]) -> str:
    """The kill table: each mutant, killed or not, whether its named test caught it, and the ratio."""
    from . import backend as descriptors

    rows, killed = [], 0
    for name, outcome in outcomes.items():
        if name == CONTROL:
            continue
        implementation = DESCRIPTORS[name]().load()
        caught_by = getattr(implementation, "caught_by", ())
        named = all(outcome.caught_at(test) for test in caught_by)
        killed += bool(outcome.failed)
        status = ("killed" if named else "killed elsewhere") if outcome.failed else "SURVIVES"
        doc = (type(implementation).__doc__ or "").strip().splitlines()[0]
        rows.append(f"{name:45} {status:16} {len(outcome.failed):3} failed  {doc}")
    mutants = len(descriptors.MUTANTS)
    rows.append(f"kill ratio: {killed}/{mutants} = {killed / mutants:.0%}")
    return "\n".join(rows)


def main() -> None:
    """Print the kill table of the suite installed here on every installed mutant."""
    with tempfile.TemporaryDirectory() as workdir:
        outcomes = run_suite(list(DESCRIPTORS), Path(workdir))
    control = outcomes[CONTROL]
    if control.failed:
        print(f"the unmutated control fails: {sorted(control.failed)}")
    print(table(outcomes))


if __name__ == "__main__":
    main()
