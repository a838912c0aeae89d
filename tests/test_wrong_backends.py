"""Meta-tests: each deliberately wrong backend fails the conformance suite at its named test.

The wrong backends live in tests/wrong_backend (distribution ``unidrop-wrong-backends``),
installed by the nox ``tests`` session exactly as a third-party plugin would be.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import unidrop
from unidrop.conformance.blocks import BlockChecks

#: backend -> tests that must fail for it (each named test must catch the defect).
EXPECTED_FAILURES = {
    "wrong-threshold": ["test_threshold_boundary"],
    "wrong-scale": ["test_mean_within_5_sigma[0.2]", "test_matches_reference"],
    "wrong-counter": ["test_known_answers[cpu-seed0-stream0]", "test_matches_reference"],
    "wrong-select": [
        "test_nan_and_inf_are_zeroed_when_dropped",
        "test_p_one_drops_everything_to_positive_zero[float32]",
    ],
    "wrong-stream": ["test_different_seeds_and_streams_give_different_masks[stream]"],
    "wrong-inplace": ["test_input_is_not_modified[float32]"],
    "wrong-mask-type": ["test_type_shape_dtype_and_device_are_preserved[cpu-float32]"],
}

#: backend -> exactly the test functions (any parameters) that fail for it: no more, no fewer.
#: Checks comparing whole outputs with the reference's: any wrong mask bit or value fails them.
AGAINST_REFERENCE = {
    "test_every_16bit_pattern",
    "test_large_array_at_chunk_edges",
    "test_large_arrays_of_several_axes_at_chunk_edges",
    "test_matches_reference",
    "test_matches_reference_on_every_device",
    "test_overflow_signed_zeros_and_specials",
    "test_p_one_drops_the_largest_word",
    "test_subnormals_are_scaled_exactly",
    "test_tiny_p_and_p_near_one",
}
#: The block checks: the wrong backends compute whole arrays only, and each fails them all, saying so.
BLOCK_CHECKS = {name for name in dir(BlockChecks) if name.startswith("test_")}
#: The dropout family's checks comparing with the reference (their masks are dropout's).
FAMILY = {
    "test_backwards_are_the_gradient_of_dropout",
    "test_drop_path_matches_the_reference",
    "test_inplace_returns_the_input_holding_dropouts_values",
}
FAILING_FUNCTIONS = {
    "wrong-threshold": {
        "test_p_one_drops_the_largest_word",
        "test_threshold_boundary",
        "test_threshold_of_a_fractional_product_is_its_floor",
        "test_tiny_p_and_p_near_one",
    },
    "wrong-scale": AGAINST_REFERENCE | FAMILY | {"test_known_answers", "test_mean_within_5_sigma"},
    "wrong-counter": AGAINST_REFERENCE
    | FAMILY
    | {
        "test_byte_order_does_not_change_the_result",
        "test_alpha_dropout_matches_the_reference",
        "test_known_answers",
        "test_layouts_give_the_logical_result",
        "test_results_and_masks_survive_later_calls",
        "test_threshold_boundary",
        "test_threshold_of_a_fractional_product_is_its_floor",
    },
    "wrong-select": AGAINST_REFERENCE
    | FAMILY
    | {
        "test_byte_order_does_not_change_the_result",
        "test_layouts_give_the_logical_result",
        "test_nan_and_inf_are_zeroed_when_dropped",
        "test_p_one_drops_everything_to_positive_zero",
        "test_results_and_masks_survive_later_calls",
    },
    "wrong-stream": AGAINST_REFERENCE
    | FAMILY
    | {
        "test_byte_order_does_not_change_the_result",
        "test_alpha_dropout_matches_the_reference",
        "test_different_seeds_and_streams_give_different_masks",
        "test_known_answers",
        "test_layouts_give_the_logical_result",
        "test_results_and_masks_survive_later_calls",
        "test_threshold_of_a_fractional_product_is_its_floor",
    },
    "wrong-inplace": {  # a modified input also spoils the checks that reuse it
        "test_byte_order_does_not_change_the_result",
        "test_alpha_dropout_keeps_mean_zero_and_variance_one",
        "test_alpha_dropout_matches_the_reference",
        "test_backwards_are_the_gradient_of_dropout",
        "test_drop_path_matches_the_reference",
        "test_input_is_not_modified",
        "test_layout_does_not_change_the_result",
        "test_layouts_give_the_logical_result",
        "test_p_zero_consumes_no_randomness",
        "test_seed_none_follows_the_backend_convention",
        "test_the_result_shares_no_memory_with_the_input",  # the result is the input itself
    },
    "wrong-mask-type": {  # every check that asks for the mask
        "test_a_large_call_leaves_global_random_state_untouched",
        "test_alpha_dropout_matches_the_reference",
        "test_backwards_are_the_gradient_of_dropout",
        "test_byte_order_does_not_change_the_result",
        "test_different_seeds_and_streams_give_different_masks",
        "test_keep_rate_within_5_sigma",
        "test_known_answers",
        "test_large_array_at_chunk_edges",
        "test_large_arrays_of_several_axes_at_chunk_edges",
        "test_layouts_give_the_logical_result",
        "test_matches_reference",
        "test_matches_reference_on_every_device",
        "test_nan_and_inf_are_zeroed_when_dropped",
        "test_p_one_drops_everything_to_positive_zero",
        "test_p_one_drops_the_largest_word",
        "test_results_and_masks_survive_later_calls",
        "test_seed_none_masks_have_entropy",
        "test_tiny_p_and_p_near_one",
        "test_type_shape_dtype_and_device_are_preserved",
    },
}


def run_suite(backend: str, tmp_path) -> tuple[int, set[str], set[str]]:
    report = tmp_path / f"{backend}.xml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "unidrop.conformance",
            f"--unidrop-backend={backend}",
            "--hypothesis-profile=unidrop-ci",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--junitxml={report}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    failed, passed = set(), set()
    for case in ET.parse(report).getroot().iter("testcase"):
        bad = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        (failed if bad else passed if not skipped else set()).add(case.get("name"))
    return result.returncode, failed, passed


@pytest.fixture(scope="module", autouse=True)
def wrong_backends_installed():
    names = {info.name for info in unidrop.list_backends()}
    missing = set(EXPECTED_FAILURES) - names
    if missing:
        pytest.fail(f"install tests/wrong_backend first (missing: {sorted(missing)}); nox -s tests does")


def test_every_installed_wrong_backend_has_its_expected_failures():
    """A wrong backend added to tests/wrong_backend is checked here too, once its tests are named."""
    installed = {i.name for i in unidrop.list_backends() if i.distribution == "unidrop-wrong-backends"}
    assert installed == set(EXPECTED_FAILURES) == set(FAILING_FUNCTIONS)


@pytest.mark.parametrize("backend", sorted(EXPECTED_FAILURES))
def test_a_wrong_backend_is_a_descriptor_loading_its_own_defect_with_numpys_adapter(backend):
    from unidrop_numpy.suite_adapter import NumpySuiteAdapter
    from unidrop_wrong.implementation import WrongImplementation

    descriptor = unidrop.get_backend(backend)
    implementation = descriptor.implementation()
    assert isinstance(implementation, WrongImplementation)
    assert type(implementation) is not WrongImplementation, "no defect: the base is correct"
    assert type(implementation).__name__ == descriptor.defect
    assert type(descriptor.suite_adapter()) is NumpySuiteAdapter


def test_the_wrong_backends_have_distinct_defects():
    defects = [type(unidrop.get_backend(name).implementation()) for name in sorted(EXPECTED_FAILURES)]
    assert len(set(defects)) == len(defects)


@pytest.mark.parametrize("backend", sorted(EXPECTED_FAILURES))
def test_wrong_backend_fails_exactly_its_named_tests(backend, tmp_path):
    code, failed, passed = run_suite(backend, tmp_path)
    assert code == 1, f"the suite passed {backend}"
    for name in EXPECTED_FAILURES[backend]:
        assert name in failed, f"{name} did not catch {backend}; failed: {sorted(failed)}"
    assert {name.split("[")[0] for name in failed} == FAILING_FUNCTIONS[backend] | BLOCK_CHECKS, sorted(
        failed
    )
    assert passed, "the wrong backend passed nothing at all: the suite did not really run"


def test_the_correct_backend_passes_the_same_suite(tmp_path):
    code, failed, passed = run_suite("numpy", tmp_path)
    assert (code, failed) == (0, set())
    assert len(passed) > 50
