"""The public API's validation, as users meet it (backend-independent rules)."""

from __future__ import annotations

import numpy as np
import pytest

import unidrop


def test_eval_and_p_zero_still_refuse_out_of_range_integer_seeds():
    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="seed must be an integer in"):
        unidrop.dropout(x, 0.0, seed=-1)
    with pytest.raises(ValueError, match="stream must be an integer in"):
        unidrop.dropout(x, 0.5, training=False, stream=1 << 64)


@pytest.mark.parametrize("training", [1, "yes", None])
def test_training_must_be_a_bool(training):
    with pytest.raises(TypeError, match=f"training must be True or False, got {training!r}"):
        unidrop.dropout(np.ones(3), 0.5, seed=0, training=training)


def test_return_mask_must_be_a_bool():
    with pytest.raises(TypeError, match="return_mask must be True or False"):
        unidrop.dropout(np.ones(3), 0.5, seed=0, return_mask=1)


def test_complex_input_is_refused_naming_its_dtype():
    with pytest.raises(TypeError, match=r"dtype complex64, allowed: float16, float32, float64"):
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
