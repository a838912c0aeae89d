"""Meta-tests: the conformance suite catches each mutant of tests/mutants at its named test.

tests/mutants (distribution ``unidrop-mutants``, installed by the nox ``tests`` session) holds
mask stream v1 with one subtle defect per backend (issue 10). The whole suite runs once, in one
pytest subprocess, on every mutant and on the unmutated control ``mutant-none``; then each
mutant must fail it, at every test its ``caught_by`` names. A mutant today's suite lets through
is an explicit ``xfail(strict=True)`` saying which check it needs: when the suite grows to catch
it, the xfail fails and must be removed. ``python -m unidrop_mutants.runner`` prints the table.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

import unidrop

mutants = pytest.importorskip("unidrop_mutants", reason="install tests/mutants (nox -s tests does)")
from unidrop_mutants import CONTROL, DESCRIPTORS, MUTANTS  # noqa: E402
from unidrop_mutants.runner import Outcome, run_suite  # noqa: E402
from unidrop_mutants.stream import StreamV1  # noqa: E402

#: The main commit whose suite the survivors below were measured on.
MEASURED_ON = "f146994"

#: mutant slug -> the check the suite needs to catch it (today's suite lets it through).
SURVIVORS = {
    "threshold-rounded": "a p with a fractional p*2**32 just above a word u (t = floor: u kept)",
    "threshold-ceiling": "a p with a fractional p*2**32 just above a word u (t = floor: u kept)",
    "threshold-saturates-at-uint32": "p = 1 on an element whose word is 2**32 - 1 (a precomputed seed)",
    "chunk-starts-one-block-early": "exact results at sampled indices past 2**20 elements",
    "chunk-restarts-lanes": "exact results at sampled indices of a mask of millions of elements",
    "tiny-p-unscaled": "float64 with p < 2**-32: nothing dropped, kept elements scaled by 1/(1-p) > 1",
    "half-via-float64": "every 16-bit bit pattern at several p (double rounding through float32)",
    "half-saturates": "every 16-bit bit pattern at several p (overflow gives inf)",
    "flushes-float32-subnormals": "subnormal float32 inputs and results (kept subnormals exact)",
    "flushes-float64-subnormals": "subnormal float64 inputs and results (kept subnormals exact)",
    "overflow-clamped": "float32/float64 products that overflow give inf",
    "fortran-3d-in-memory-order": "3-D Fortran-ordered inputs",
    "negative-strides-in-memory-order": "negative-stride views (x[::-1], x[:, ::-2])",
    "zero-strides-share-mask": "zero-stride views (np.broadcast_to)",
    "identity-mask-uint8": "the identity mask's dtype is bool (p = 0 and eval)",
    "draws-from-numpy-global-rng": "the whole global RNG state (NumPy's position, not only its key)",
    "draws-from-numpy-global-rng-when-large": "the whole global RNG state after a call on a large array",
    "seed-none-low-entropy": "the entropy of seed=None (many draws, all distinct masks)",
    "jit-drops-stream-high-word": "jit with a stream >= 2**32",
    "gradient-drops-seed-high-word": "the gradient with a seed >= 2**32",
    "gradient-ignores-broadcast-dims": "the gradient with broadcast_dims",
    "gradient-uses-stale-mask": "the gradient of a function calling dropout twice",
}


def implementation_of(backend: str) -> StreamV1:
    made = unidrop.get_backend(backend).implementation()
    assert isinstance(made, StreamV1)
    return made


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """The whole suite on the control and every mutant: one pytest run (about a minute on 2 cores)."""
    return run_suite(list(DESCRIPTORS), tmp_path_factory.mktemp("mutants"))


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
    assert control.skipped == set(), "autograd and jit are declared, so nothing is skipped"
    assert len(control.passed) > 80


def _cases() -> list[Any]:
    cases = []
    for slug in MUTANTS:
        marks = []
        if slug in SURVIVORS:
            reason = f"survives the suite as of {MEASURED_ON}: needs {SURVIVORS[slug]}"
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        cases.append(pytest.param(slug, marks=marks, id=slug))
    return cases


@pytest.mark.parametrize("slug", _cases())
def test_the_suite_kills_the_mutant_at_its_named_test(slug: str, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[f"mutant-{slug}"]
    caught_by = type(implementation_of(f"mutant-{slug}")).caught_by
    assert outcome.failed, f"mutant-{slug} passed the whole suite ({len(outcome.passed)} tests)"
    missed = [test for test in caught_by if not outcome.caught_at(test)]
    assert not missed, f"mutant-{slug}: {missed} did not fail; what failed: {sorted(outcome.failed)}"
