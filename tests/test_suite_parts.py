"""The conformance suite in parts: composing some parts, the heavy-statistics flag, the adapter.

Runs against the NumPy backend (installed by the nox ``tests`` session). The pytest runs
are subprocesses, so that the plugin sees a fresh collection, as in a backend's own tests.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from unidrop_numpy.backend import NumpyBackend
from unidrop_numpy.implementation import NumpyImplementation
from unidrop_numpy.suite_adapter import NumpySuiteAdapter

import unidrop
from unidrop import seeding
from unidrop.conformance import abilities, exactness, rules, statistics
from unidrop.conformance.adapter import SuiteAdapter
from unidrop.conformance.suite import ConformanceSuite

CONFORMANCE = Path(unidrop.__file__).parent / "conformance"
#: The modules of the suite's parts: they reach the backend through the adapter alone.
PARTS = [exactness, statistics, rules, abilities]


def run_pytest(tmp_path: Path, source: str, *options: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run pytest on a test file holding ``source``; the outcome of each test by its node name."""
    (tmp_path / "test_composed.py").write_text(source)
    report = tmp_path / "report.xml"
    command = [sys.executable, "-m", "pytest", "test_composed.py", "-p", "no:cacheprovider", "-rs"]
    done = subprocess.run(
        [*command, f"--junitxml={report}", *options],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[name] = "failed"
        elif case.find("skipped") is not None:
            outcomes[name] = "skipped: " + (case.find("skipped").get("message") or "")
        else:
            outcomes[name] = "passed"
    return done, outcomes


def test_a_class_of_some_parts_collects_only_their_tests_and_they_pass_on_numpy(tmp_path):
    source = (
        "from unidrop.conformance.abilities import AbilitiesChecks\n"
        "from unidrop.conformance.rules import RulesChecks\n\n\n"
        "class TestMine(RulesChecks, AbilitiesChecks):\n"
        "    backend_name = 'numpy'\n"
    )
    done, outcomes = run_pytest(tmp_path, source)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    functions = {name.split("::")[1].split("[")[0] for name in outcomes}
    wanted = {
        n for part in (rules.RulesChecks, abilities.AbilitiesChecks) for n in dir(part) if n[:5] == "test_"
    }
    assert functions == wanted
    # none of the other parts' tests, which the whole suite has
    assert "test_known_answers" not in functions and "test_keep_rate_within_5_sigma" not in functions
    # the plugin parametrized the part's device and dtype fixtures (NumPy: cpu; float16 ... float64)
    assert outcomes["TestMine::test_type_shape_dtype_and_device_are_preserved[cpu-float32]"] == "passed"
    assert outcomes["TestMine::test_p_one_drops_everything_to_positive_zero[bfloat16]"] == "passed"
    assert not [name for name, outcome in outcomes.items() if outcome == "failed"]


def test_heavy_statistics_skip_with_a_reason_when_switched_off_and_run_by_default(tmp_path):
    source = (
        "from unidrop.conformance.statistics import StatisticsChecks\n\n\n"
        "class TestLight(StatisticsChecks):\n"
        "    backend_name = 'numpy'\n"
        "    run_heavy_statistics = False\n\n\n"
        "class TestDefault(StatisticsChecks):\n"
        "    backend_name = 'numpy'\n"
    )
    done, outcomes = run_pytest(tmp_path, source, "-k", "5_sigma or seeds_and_streams")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    heavy = [
        "test_keep_rate_within_5_sigma[0.1]",
        "test_keep_rate_within_5_sigma[0.5]",
        "test_keep_rate_within_5_sigma[0.9]",
        "test_mean_within_5_sigma[0.2]",
        "test_mean_within_5_sigma[0.7]",
    ]
    reason = "TestLight.run_heavy_statistics is False: the 1048576-element statistics are not run"
    for name in heavy:
        assert outcomes[f"TestLight::{name}"] == f"skipped: {reason}", name
        assert outcomes[f"TestDefault::{name}"] == "passed", name
    assert reason in done.stdout  # shown in the short summary (-rs)
    # the light statistics still run with the flag off
    assert outcomes["TestLight::test_different_seeds_and_streams_give_different_masks[seed]"] == "passed"


def test_the_whole_suite_is_all_the_parts():
    for part in (exactness.ExactnessChecks, statistics.StatisticsChecks, rules.RulesChecks):
        assert issubclass(ConformanceSuite, part)
    assert issubclass(ConformanceSuite, abilities.AbilitiesChecks)
    assert ConformanceSuite.run_heavy_statistics is True


class RecordingAdapter(NumpySuiteAdapter):
    """NumPy's suite adapter, recording which of its members the suite used."""

    def __init__(self, backend: unidrop.Backend, used: list[str]) -> None:
        super().__init__(backend)
        self.used = used

    def from_numpy(self, array, dtype, device=None):
        self.used.append("from_numpy")
        return super().from_numpy(array, dtype, device)

    def to_numpy(self, x):
        self.used.append("to_numpy")
        return super().to_numpy(x)

    def device_of(self, x):
        self.used.append("device_of")
        return super().device_of(x)

    def global_rng_state(self):
        self.used.append("global_rng_state")
        return super().global_rng_state()

    def manual_seed(self, seed):
        self.used.append("manual_seed")
        super().manual_seed(seed)


def test_the_suite_makes_reads_and_inspects_arrays_through_its_adapter():
    used: list[str] = []

    class Checks(ConformanceSuite):
        backend_name = "numpy"

        @property
        def adapter(self) -> SuiteAdapter:
            return RecordingAdapter(unidrop.get_backend("numpy"), used)

    checks = Checks()
    assert isinstance(checks.adapter, SuiteAdapter)
    checks.test_type_shape_dtype_and_device_are_preserved("cpu", "float32")
    checks.test_explicit_seed_leaves_global_random_state_untouched()
    checks.test_seed_none_follows_the_backend_convention()
    assert {"from_numpy", "to_numpy", "device_of", "global_rng_state", "manual_seed"} <= set(used)


def attributes_read(path: Path) -> list[tuple[int, str]]:
    """``(line, dotted text)`` of every attribute read in the module at ``path``."""
    return [
        (node.lineno, ast.unparse(node))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
    ]


def test_the_suite_reads_no_private_state():
    """No ``obj._name`` anywhere in the suite: unidrop's and the backend's internals stay theirs."""
    private = [
        f"{path.name}:{line}: {text}"
        for path in sorted(CONFORMANCE.glob("*.py"))
        for line, text in attributes_read(path)
        if text.rsplit(".", 1)[1].startswith("_") and not text.rsplit(".", 1)[1].startswith("__")
    ]
    assert not private


def test_the_parts_reach_the_backend_only_through_the_adapter():
    direct = [
        f"{module.__name__}:{line}: {text}"
        for module in PARTS
        for line, text in attributes_read(Path(module.__file__))
        if text.startswith("self.backend")
    ]
    assert not direct


class DrawsAnywayImplementation(NumpyImplementation):
    """NumPy's implementation, wrongly drawing from unidrop's seed source even when given a seed."""

    def resolve_randomness(self, seed, stream, x):
        seeding.draw_seed()
        return super().resolve_randomness(seed, stream, x)


class DrawsAnyway(NumpyBackend):
    name = "draws-anyway"

    def load(self):
        return DrawsAnywayImplementation()


def test_the_global_state_check_catches_a_draw_from_unidrops_source(fresh_registry):
    fresh_registry.register(DrawsAnyway())

    class Wrong(rules.RulesChecks):
        backend_name = "draws-anyway"

    class Right(rules.RulesChecks):
        backend_name = "numpy"

    with pytest.raises(AssertionError, match="drew from unidrop's source"):
        Wrong().test_explicit_seed_leaves_global_random_state_untouched()
    Right().test_explicit_seed_leaves_global_random_state_untouched()


def test_the_global_state_check_leaves_unidrops_source_unseeded():
    """After the check, seed=None draws differ between runs: it does not leave a shared seed."""

    class Right(rules.RulesChecks):
        backend_name = "numpy"

    draws = []
    for _ in range(2):
        Right().test_explicit_seed_leaves_global_random_state_untouched()
        draws.append(seeding.draw_seed())
    assert draws[0] != draws[1]


CLAIMS_ABILITIES = """
import unidrop
from unidrop_numpy.backend import NumpyBackend

from unidrop.conformance.abilities import AbilitiesChecks


class ClaimsAutograd(NumpyBackend):
    name = "claims-autograd"
    abilities = unidrop.Abilities(autograd=True)


class ClaimsJit(NumpyBackend):
    name = "claims-jit"
    abilities = unidrop.Abilities(jit=True)


unidrop.registry.register(ClaimsAutograd())
unidrop.registry.register(ClaimsJit())


class TestClaimsAutograd(AbilitiesChecks):
    backend_name = "claims-autograd"


class TestClaimsJit(AbilitiesChecks):
    backend_name = "claims-jit"


class TestNumpy(AbilitiesChecks):
    backend_name = "numpy"
"""


def test_a_declared_ability_whose_adapter_lacks_it_fails_and_an_undeclared_one_skips(tmp_path):
    """Abilities(autograd=True) with NumPy's adapter (no vjp), or jit=True with no jit: failures,
    not skips; NumPy, declaring neither, skips both saying why."""
    done, outcomes = run_pytest(tmp_path, CLAIMS_ABILITIES)
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout[-3000:] + done.stderr[-2000:]
    autograd = "test_autograd_gradient_is_cotangent_times_keep_times_scale"
    jit = "test_jit_gives_the_reference_result_and_mask"
    twice = "test_autograd_of_two_dropout_calls_uses_each_calls_mask"
    by_function: dict[str, set[str]] = {}  # each function's cases (parametrized: seeds, streams, dims)
    for test, outcome in outcomes.items():
        by_function.setdefault(test.split("[")[0], set()).add(outcome)
    assert by_function == {
        f"TestClaimsAutograd::{autograd}": {"failed"},
        f"TestClaimsAutograd::{twice}": {"failed"},
        f"TestClaimsAutograd::{jit}": {"skipped: backend 'claims-autograd' does not declare jit"},
        f"TestClaimsJit::{autograd}": {"skipped: backend 'claims-jit' does not declare autograd"},
        f"TestClaimsJit::{twice}": {"skipped: backend 'claims-jit' does not declare autograd"},
        f"TestClaimsJit::{jit}": {"failed"},
        f"TestNumpy::{autograd}": {"skipped: backend 'numpy' does not declare autograd"},
        f"TestNumpy::{twice}": {"skipped: backend 'numpy' does not declare autograd"},
        f"TestNumpy::{jit}": {"skipped: backend 'numpy' does not declare jit"},
    }
    assert "the suite adapter of 'claims-autograd' does not implement vjp" in done.stdout
    assert "the suite adapter of 'claims-jit' does not implement jit" in done.stdout


class Subclass(np.ndarray):
    """An ndarray subclass whose library functions give plain ndarrays back."""


def test_the_default_views_of_an_array_subclass_are_none_not_a_base_class_array():
    """A view of another type would reach another backend, or none, and fail the backend under test
    for the adapter's doing: the default gives None, and the layout checks skip saying so."""
    adapter = NumpySuiteAdapter(unidrop.get_backend("numpy"))
    x = np.arange(12.0).reshape(3, 4).view(Subclass)
    assert adapter.broadcast_view(x[:1], (3, 4)) is None
    assert adapter.permuted(x, (1, 0)) is not None  # ndarray.transpose keeps the subclass
    plain = np.arange(12.0).reshape(3, 4)
    assert type(adapter.broadcast_view(plain[:1], (3, 4))) is np.ndarray
