"""The dropout family (unidrop.family): its rules, its reference, its contract defaults, and that the
suite's family checks fail on backends wrong in one place."""

from __future__ import annotations

import doctest
import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from unidrop_numpy.backend import NumpyBackend
from unidrop_numpy.implementation import NumpyImplementation
from unidrop_numpy.suite_adapter import NumpySuiteAdapter

import unidrop
from unidrop import Implementation, arguments, family, reference, registry
from unidrop.arguments import DropoutPlan
from unidrop.conformance.suite import ConformanceSuite
from unidrop.philox import element_word
from unidrop.philox_int64 import flat_indices, words_at

# --- the rules and the reference ----------------------------------------------------------------


@pytest.mark.parametrize("p", [0.05, 0.1, 0.3, 0.5, 0.9])
def test_alpha_affine_keeps_mean_zero_and_variance_one_for_standard_normal_input(p):
    """For x ~ N(0, 1) kept with probability 1 - p: E[y] = 0 and E[y^2] = 1 (PyTorch's correction)."""
    a, c, d = reference.alpha_affine(p)
    q = 1.0 - p
    assert math.isclose(q * c + p * d, 0.0, abs_tol=1e-15)
    assert math.isclose(q * (a * a + c * c) + p * d * d, 1.0, rel_tol=1e-14)
    assert d == pytest.approx(-reference.SELU_ALPHA * a * (1 - p))


def test_the_family_constants_agree_with_the_reference():
    for p in (0.0, 0.2, 0.7, 1.0):
        assert family.alpha_constants(p) == pytest.approx(reference.alpha_affine(p), rel=1e-15)
    assert family.gaussian_stddev(0.2) == pytest.approx(0.5)


def test_spacing_covers_normal_and_subnormal_values():
    assert reference.spacing(1.0, "float16") == 2.0**-10
    assert reference.spacing(1.5, "bfloat16") == 2.0**-7
    assert reference.spacing(1e-6, "float16") == 2.0**-24  # a float16 subnormal
    assert reference.spacing(0.0, "float32") == 2.0**-149


def test_gaussian_normal_of_element_zero_is_box_muller_of_words_zero_and_one():
    w1, w2 = element_word(9, 4, 0), element_word(9, 4, 1)
    r = math.sqrt(-2.0 * math.log(((w1 >> 8) + 1) / 2**24))
    z, radius = reference.gaussian_normals(9, 4, (1,))
    assert radius == [r]
    assert z == [r * math.cos(2 * math.pi * (w2 >> 8) / 2**24)]


@pytest.mark.parametrize(
    ("seed", "stream"), [(0, 0), ((1 << 64) - 1, (1 << 63) + 5), ((1 << 32) + 3, 1 << 32)]
)
def test_operator_philox_gives_the_reference_words_at_any_index(seed, stream):
    """Indices past 2**34 (a block counter with its high word set) and every lane."""
    indices = np.array([0, 1, 2, 3, 5, 1 << 34, (1 << 34) + 3, (1 << 62) + 2, 12345678901], dtype=np.int64)
    got = words_at(indices, seed, stream, np.where)
    assert got.tolist() == [element_word(seed, stream, int(i)) for i in indices]


def test_flat_indices_of_a_block_are_its_global_indices():
    plan = DropoutPlan.build((2, 3), "float32", 0.5, 1, 2, global_shape=(5, 7), offset=(1, 4))
    got = flat_indices(lambda n: np.arange(n, dtype=np.int64), plan.mask_shape, plan.block)
    assert got.reshape(-1).tolist() == [11, 12, 13, 18, 19, 20]


def test_flat_indices_refuse_a_block_past_int64_rather_than_wrap():
    """A gaussian_dropout block at global index 2**62 has pair indices past 2**63: an int64 would
    wrap (NaN noise, no error), so it is refused naming the index; one below is exact."""
    ones = np.ones(4, np.float32)
    with pytest.raises(ValueError, match=r"below 2\*\*63.*reaches index 9223372036854775819"):
        unidrop.gaussian_dropout(ones, 0.5, seed=1, global_shape=(2**62 + 10,), offset=(2**62 + 2,))
    got = unidrop.gaussian_dropout(ones, 0.5, seed=1, global_shape=(2**61 + 10,), offset=(2**61 + 2,))
    want, bounds = reference.gaussian_dropout(
        [1.0] * 4, (4,), "float32", 0.5, 1, 0, (), (2**61 + 10,), (2**61 + 2,)
    )
    assert np.all(np.abs(got.astype(np.float64) - np.array(want)) <= np.array(bounds))


def test_gaussian_dropout_equals_the_reference_within_its_bound_on_numpy():
    values = np.random.default_rng(1).standard_normal((9, 31)).astype(np.float32)
    y = unidrop.gaussian_dropout(values, 0.4, seed=3, stream=7, backend="numpy")
    want, bounds = reference.gaussian_dropout(values.reshape(-1).tolist(), values.shape, "float32", 0.4, 3, 7)
    assert np.all(np.abs(y.reshape(-1).astype(np.float64) - np.array(want)) <= np.array(bounds))


def test_the_gaussian_bound_is_tight_enough_to_catch_the_neighbouring_word():
    """Using u_{2i+2} for u_{2i} (words one pair off) is far outside the bound."""
    values = np.ones(64)
    want, bounds = reference.gaussian_dropout(values.tolist(), (64,), "float32", 0.4, 3, 7)
    shifted, _ = reference.gaussian_dropout([1.0] * 65, (65,), "float32", 0.4, 3, 7)
    outside = np.abs(np.array(shifted[1:]) - np.array(want)) > np.array(bounds)
    assert outside.mean() > 0.9


# --- the public functions on NumPy --------------------------------------------------------------


def test_drop_path_scaled_is_dropout_with_every_axis_but_the_first_broadcast():
    x = np.random.default_rng(2).standard_normal((10, 3, 4)).astype(np.float32)
    y = unidrop.drop_path(x, 0.3, seed=11, backend="numpy")
    assert np.array_equal(y, unidrop.dropout(x, 0.3, seed=11, broadcast_dims=(1, 2), backend="numpy"))


def test_inplace_writes_into_the_input_and_returns_it():
    x = np.random.default_rng(3).standard_normal((4, 5)).astype(np.float32)
    want = unidrop.dropout(x, 0.5, seed=8, backend="numpy")
    y, keep = unidrop.dropout(x, 0.5, seed=8, inplace=True, return_mask=True, backend="numpy")
    assert y is x and np.array_equal(x, want) and keep.shape == (4, 5)


def test_inplace_refuses_a_read_only_array_and_a_scalar_naming_them():
    x = np.ones(4, np.float32)
    x.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        unidrop.dropout(x, 0.5, seed=1, inplace=True, backend="numpy")
    with pytest.raises(TypeError, match="scalar"):
        unidrop.dropout(np.float32(1.0), 0.5, seed=1, inplace=True, backend="numpy")
    with pytest.raises(TypeError, match="inplace must be True or False, got 1"):
        unidrop.dropout(np.ones(2, np.float32), 0.5, seed=1, inplace=1, backend="numpy")


def _refused_writes() -> list[tuple[object, type[Exception], str]]:
    read_only = np.ones(4, np.float32)
    read_only.flags.writeable = False
    ones = np.ones(8, np.float32)
    repeated = np.lib.stride_tricks.as_strided(ones, shape=(3, 4), strides=(4, 4))  # rows overlap
    return [
        (read_only, ValueError, "read-only"),
        (np.float32(1.0), TypeError, "scalar"),
        (repeated, ValueError, r"strides \(4, 4\): some of its elements share memory"),
    ]


@pytest.mark.parametrize("case", range(3))
def test_a_refused_inplace_write_draws_no_seed_and_changes_nothing(case):
    x, error, message = _refused_writes()[case]
    before = np.array(x, copy=True)
    unidrop.manual_seed(5)
    with pytest.raises(error, match=message):
        unidrop.dropout(x, 0.5, inplace=True, backend="numpy")
    after_refusal = unidrop.dropout(np.ones(64, np.float32), 0.5, backend="numpy")
    unidrop.manual_seed(5)
    assert np.array_equal(after_refusal, unidrop.dropout(np.ones(64, np.float32), 0.5, backend="numpy"))
    assert np.array_equal(np.asarray(x), before)


def test_inplace_takes_an_interleaved_layout_whose_elements_do_not_overlap():
    # strides (12, 8) over 4-byte elements: starts 0, 8, 16, 12, 20, 28, none shared, but the axes
    # interleave (each element's start must be compared)
    base = np.arange(8, dtype=np.float32)
    x = np.lib.stride_tricks.as_strided(base, shape=(2, 3), strides=(12, 8))
    want = unidrop.dropout(np.array(x), 0.5, seed=8, backend="numpy")
    assert unidrop.dropout(x, 0.5, seed=8, inplace=True, backend="numpy") is x
    assert np.array_equal(x, want)


def test_family_functions_refuse_an_unknown_type_listing_the_backends():
    for fn in (unidrop.alpha_dropout, unidrop.drop_path, unidrop.gaussian_dropout):
        with pytest.raises(TypeError, match="installed"):
            fn([1.0, 2.0], 0.5, seed=1)


def test_dropout_backward_needs_the_seed():
    with pytest.raises(TypeError, match="seed"):
        unidrop.dropout_backward(np.ones(3, np.float32), 0.5, seed=None, backend="numpy")


def test_dropout_backward_from_mask_refuses_a_mask_of_another_shape():
    with pytest.raises(ValueError, match=r"keep of shape \(3,\)"):
        unidrop.dropout_backward_from_mask(
            np.ones((2, 4), np.float32), np.ones(3, bool), 0.5, backend="numpy"
        )
    with pytest.raises(TypeError, match=r"keep must be the boolean mask .* got list"):
        unidrop.dropout_backward_from_mask(np.ones(4, np.float32), [True, False, True, True], 0.5)


@pytest.mark.parametrize("dtype", [np.float64, np.uint8, np.int32])
def test_dropout_backward_from_mask_refuses_a_mask_that_is_not_boolean(dtype: type) -> None:
    """A float mask of 0.5 would read as "kept" everywhere: only dropout's bool mask is taken."""
    grad = np.ones((3, 4), np.float32)
    with pytest.raises(TypeError, match=rf"boolean mask .* dtype {np.dtype(dtype).name}"):
        unidrop.dropout_backward_from_mask(grad, np.full((3, 4), 0.5).astype(dtype), 0.5, backend="numpy")


def test_gaussian_dropout_refuses_p_one_before_drawing_a_seed() -> None:
    """A refused call changes nothing: unidrop's seed source is where it was."""
    x = np.ones((4, 5), np.float32)
    unidrop.manual_seed(3)
    want = unidrop.dropout(x, 0.5, backend="numpy")
    unidrop.manual_seed(3)
    with pytest.raises(ValueError, match="p < 1"):
        unidrop.gaussian_dropout(x, 1.0, backend="numpy")
    np.testing.assert_array_equal(unidrop.dropout(x, 0.5, backend="numpy"), want)


def test_family_functions_validate_like_dropout():
    x = np.ones(4, np.float32)
    for fn in (unidrop.alpha_dropout, unidrop.drop_path, unidrop.gaussian_dropout):
        with pytest.raises(ValueError, match="p must be a real number in"):
            fn(x, 1.5, seed=1, backend="numpy")
        with pytest.raises(TypeError, match="dtype int32"):
            fn(np.ones(4, np.int32), 0.5, seed=1, backend="numpy")
        with pytest.raises(ValueError, match="seed must be an integer"):
            fn(x, 0.5, seed=-1, backend="numpy")
        with pytest.raises(ValueError, match="seed must be an integer"):
            fn(x, 0.5, seed=-1, training=False, backend="numpy")


# --- the docstring examples ---------------------------------------------------------------------


def test_the_family_examples_run():
    tests = [t for t in doctest.DocTestFinder().find(family, "unidrop.family") if t.examples]
    assert {t.name.rsplit(".", 1)[1] for t in tests} == {
        "alpha_dropout",
        "drop_path",
        "gaussian_dropout",
        "dropout_backward",
        "dropout_backward_from_mask",
    }
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "several unidrop backends accept", RuntimeWarning)
        for test in tests:
            runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_the_shown_examples_are_the_references():
    """The arrays the examples print, recomputed by the reference."""
    pairs, _ = reference.alpha_dropout([0.0] * 8, (8,), "float32", 0.5, 42)
    shown = [
        0.77919394,
        -0.77919394,
        -0.77919394,
        -0.77919394,
        0.77919394,
        -0.77919394,
        0.77919394,
        -0.77919394,
    ]
    assert [float(np.float32(v)) for v in shown] == [pair[0] for pair in pairs]
    path, _ = reference.drop_path([1.0] * 8, (4, 2), "float32", 0.5, 42)
    assert path == [2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    back, _ = reference.dropout([1.0] * 8, (8,), "float32", 0.5, 42)
    assert back == [2.0, 0.0, 0.0, 0.0, 2.0, 0.0, 2.0, 0.0]
    gauss, _ = reference.gaussian_dropout([1.0] * 4, (4,), "float32", 0.5, 42)
    assert np.round(np.array(gauss, np.float32), 3).tolist() == pytest.approx([0.03, -0.236, 0.927, -0.107])


# --- the contract's defaults, and mutants the suite's family checks must fail ---------------------


class OnlyDropout(NumpyImplementation):
    """A backend implementing only what the contract requires: the family's defaults apply."""

    mutable_arrays = False
    stream_words = Implementation.stream_words
    namespace = Implementation.namespace
    copy_into = Implementation.copy_into


class WordsOnePairOff(NumpyImplementation):
    """Gaussian words taken one pair later (u_{2i+2}, u_{2i+3})."""

    def stream_words(self, x: Any, plan: DropoutPlan) -> Any:
        wider = DropoutPlan.build(
            (*plan.mask_shape[:-1], plan.mask_shape[-1] + 1), "float32", 0.5, plan.seed, plan.stream
        )
        return super().stream_words(x, wider)[..., 1:]


class WordsStreamLowWordOnly(NumpyImplementation):
    """The stream's high word dropped from the words."""

    def stream_words(self, x: Any, plan: DropoutPlan) -> Any:
        return super().stream_words(
            x, DropoutPlan.build(plan.mask_shape, "float32", 0.5, plan.seed, plan.stream & 0xFFFF_FFFF)
        )


class KeepMaskOfStreamZero(NumpyImplementation):
    """A keep mask (for alpha dropout and drop path) that ignores the stream."""

    def keep_mask(self, x: Any, plan: DropoutPlan) -> Any:
        _, keep = self.dropout(
            x, DropoutPlan.build(plan.shape, plan.dtype, plan.p, plan.seed, 0, plan.broadcast_dims, True)
        )
        return keep


class CopyIntoDoesNothing(NumpyImplementation):
    """Claims in-place writes but leaves the input as it was."""

    def copy_into(self, x: Any, y: Any) -> None:
        pass


MUTANTS = {
    "family-only-dropout": OnlyDropout,
    "family-words-one-pair-off": WordsOnePairOff,
    "family-words-stream-low-word": WordsStreamLowWordOnly,
    "family-keep-mask-stream-zero": KeepMaskOfStreamZero,
    "family-copy-into-does-nothing": CopyIntoDoesNothing,
}


@pytest.fixture(scope="module", autouse=True)
def registered() -> Iterator[None]:
    for name, implementation in MUTANTS.items():
        attributes = {
            "name": name,
            "distribution": "unidrop-tests-family",
            "load": lambda self, implementation=implementation: implementation(),
            "suite_adapter": lambda self: NumpySuiteAdapter(self),
        }
        registry.register(type(f"Backend_{name}", (NumpyBackend,), attributes)())
    yield
    registry.reset()


def run_check(backend: str, check: str, **arguments: Any) -> None:
    suite = type("Probe", (ConformanceSuite,), {"backend_name": backend})()
    getattr(suite, check)(**arguments)


GAUSSIAN = "test_gaussian_dropout_is_within_the_documented_bound"
GAUSSIAN_ARGS = {"shape": (7, 13), "dims": (), "p": 0.6, "unidrop_dtype": "float32", "unidrop_device": "cpu"}
ALPHA = "test_alpha_dropout_matches_the_reference"
ALPHA_ARGS = {"shape": (4, 6, 5), "dims": (2,), "p": 0.5, "unidrop_dtype": "float32", "unidrop_device": "cpu"}
KILLS = [
    ("family-words-one-pair-off", GAUSSIAN, GAUSSIAN_ARGS, "outside the documented bound"),
    ("family-words-stream-low-word", GAUSSIAN, GAUSSIAN_ARGS, "outside the documented bound"),
    ("family-keep-mask-stream-zero", ALPHA, ALPHA_ARGS, "alpha_dropout"),
    (
        "family-keep-mask-stream-zero",
        "test_drop_path_matches_the_reference",
        {"scale_by_keep": False, "unidrop_dtype": "float32", "unidrop_device": "cpu"},
        "drop_path",
    ),
    (
        "family-copy-into-does-nothing",
        "test_inplace_returns_the_input_holding_dropouts_values",
        {"unidrop_dtype": "float32"},
        "inplace",
    ),
]


@pytest.mark.parametrize("kill", KILLS, ids=lambda k: f"{k[0]}-{k[1]}")
def test_the_family_check_fails_on_its_mutant(kill):
    backend, check, arguments, says = kill
    with pytest.raises(AssertionError, match=says):
        run_check(backend, check, **arguments)


@pytest.mark.parametrize("kill", KILLS, ids=lambda k: f"numpy-{k[1]}")
def test_the_family_check_passes_on_numpy(kill):
    _, check, arguments, _ = kill
    run_check("numpy", check, **arguments)


def test_a_backend_with_only_dropout_gets_alpha_and_drop_path_and_clear_errors_for_the_rest():
    x = np.random.default_rng(4).standard_normal((6, 5)).astype(np.float32)
    name = "family-only-dropout"
    run_check(name, ALPHA, **ALPHA_ARGS)
    run_check(
        name,
        "test_drop_path_matches_the_reference",
        scale_by_keep=False,
        unidrop_dtype="float32",
        unidrop_device="cpu",
    )
    with pytest.raises(TypeError, match="stream_words"):
        unidrop.gaussian_dropout(x, 0.5, seed=1, backend=name)
    with pytest.raises(TypeError, match="inplace=True needs a mutable array"):
        unidrop.dropout(x, 0.5, seed=1, inplace=True, backend=name)
    run_check(name, "test_inplace_returns_the_input_holding_dropouts_values", unidrop_dtype="float32")
    assert arguments.threshold(0.5) == 1 << 31  # the mask rule the mutants above are judged by


def test_gaussian_reference_overflows_to_inf_as_the_dtype_does():
    """float16's largest value times a noise multiplier near 2 (seed 0: z = 0.99, p = 0.5) lies far
    past 65520, where float16 rounds to inf: the reference expects a signed inf, matched exactly."""
    z, _ = reference.gaussian_normals(0, 0, (1,))
    assert 65504.0 * (1.0 + z[0]) > 65520.0 * 1.5
    for sign in (1.0, -1.0):
        want, bounds = reference.gaussian_dropout([sign * 65504.0], (1,), "float16", 0.5, 0)
        assert want == [sign * math.inf] and bounds == [0.0]
        x = np.array([sign * 65504.0], dtype=np.float16)
        with np.errstate(over="ignore"):
            got = unidrop.gaussian_dropout(x, 0.5, seed=0, backend="numpy")
        assert got.tolist() == [sign * math.inf]
    want, bounds = reference.gaussian_dropout([1.0], (1,), "float16", 0.5, 0)
    assert math.isfinite(want[0]) and 0.0 < bounds[0] < 0.1  # in range: an ordinary bound
