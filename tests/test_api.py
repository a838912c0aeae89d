"""The public API's validation, as users meet it (backend-independent rules)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

import unidrop


def test_eval_and_p_zero_still_refuse_out_of_range_integer_seeds():
    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="seed must be an integer in"):
        unidrop.dropout(x, 0.0, seed=-1)
    with pytest.raises(ValueError, match="stream must be an integer in"):
        unidrop.dropout(x, 0.5, training=False, stream=1 << 64)


@pytest.mark.parametrize("training", ["yes", None, 2, 0.5])
def test_training_must_be_a_bool(training):
    with pytest.raises(TypeError, match=f"training must be True or False, got {training!r}"):
        unidrop.dropout(np.ones(3), 0.5, seed=0, training=training)


@pytest.mark.parametrize(
    ("training", "is_identity"), [(np.False_, True), (0, True), (np.True_, False), (1, False)]
)
def test_numpy_bools_and_0_1_are_taken_as_training_flags(training, is_identity):
    x = np.ones(64, np.float32)
    assert (unidrop.dropout(x, 0.5, seed=0, training=training) is x) == is_identity


@pytest.mark.parametrize("p", [np.float32(0.25), np.array(0.25), Fraction(1, 4), Decimal("0.25")])
def test_p_may_be_any_real_scalar(p):
    x = np.ones(64, np.float32)
    np.testing.assert_array_equal(unidrop.dropout(x, p, seed=3), unidrop.dropout(x, 0.25, seed=3))


@pytest.mark.parametrize("p", [np.complex64(0.5), np.array([0.5]), "0.5", b"0.5", True])
def test_p_that_is_not_one_real_number_is_refused(p):
    with pytest.raises(TypeError, match="p must be a real number in"):
        unidrop.dropout(np.ones(3), p, seed=0)


def test_p_that_cannot_be_read_says_how_to_pass_it_under_jit():
    class Traced:
        def __float__(self):
            raise RuntimeError("abstract value")

    with pytest.raises(TypeError, match="static Python value"):
        unidrop.dropout(np.ones(3), Traced(), seed=0)


def test_return_mask_must_be_a_bool():
    with pytest.raises(TypeError, match="return_mask must be True or False"):
        unidrop.dropout(np.ones(3), 0.5, seed=0, return_mask=1)


def test_complex_input_is_refused_naming_its_dtype():
    # bfloat16 is allowed too where ml_dtypes is installed (the nox numpy pins include it)
    with pytest.raises(TypeError, match=r"dtype complex64, allowed: float16, (bfloat16, )?float32, float64"):
        unidrop.dropout(np.ones(3, np.complex64), 0.5, seed=0)


def test_bad_p_is_refused_before_anything_else_happens():
    x = np.ones(3, np.float32)
    before = x.copy()
    with pytest.raises(ValueError, match=r"got 1\.01"):
        unidrop.dropout(x, 1.01, seed=0)
    np.testing.assert_array_equal(x, before)


def test_a_single_int_is_accepted_as_broadcast_dims():
    x = np.ones((3, 4), np.float32)
    y = unidrop.dropout(x, 0.5, seed=1, broadcast_dims=0)
    np.testing.assert_array_equal(y, unidrop.dropout(x, 0.5, seed=1, broadcast_dims=(0,)))
    assert (y == y[0]).all()


def test_manual_seed_makes_seed_none_reproducible_and_validates():
    x = np.ones(256, np.float32)
    unidrop.manual_seed(7)
    first = unidrop.dropout(x, 0.5)
    unidrop.manual_seed(7)
    np.testing.assert_array_equal(unidrop.dropout(x, 0.5), first)
    with pytest.raises(ValueError, match="seed must be an integer"):
        unidrop.manual_seed(-3)
