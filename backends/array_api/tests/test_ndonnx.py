"""The Array API backend on ndonnx, an Array API library (ONNX-backed) with no unidrop backend of its own.

ndonnx evaluates each operation eagerly through ONNX Runtime, about 3 s for one dropout call of
this backend whatever the size: the whole conformance suite (run on array-api-strict in the
conformance session) would take hours here, so these few calls check what ndonnx adds: float16
(array-api-strict has none), a library whose ``where`` loses the sign of -0, and dispatch.
Expected values come from ``unidrop.reference``.
"""

from __future__ import annotations

import warnings

import ndonnx as ndx
import numpy as np

import unidrop
from unidrop import reference
from unidrop.conformance.family import same_or_either, within_bound

SEED, STREAM = 2**40 + 9, 2**33 + 5


def expected(values: np.ndarray, p: float, **options: object) -> tuple[np.ndarray, np.ndarray]:
    flat = values.astype(np.float64).reshape(-1).tolist()
    shape = options.pop("global_shape", values.shape)
    want, keep = reference.dropout(flat, shape, values.dtype.name, p, SEED, STREAM, **options)
    return np.asarray(want, dtype=np.float64).reshape(shape), np.asarray(keep)


def test_float16_with_specials_matches_the_reference_and_keeps_signed_zeros():
    """float16 rounded once from float32 (ties, overflow to inf), -0 kept, NaN/Inf zeroed when dropped."""
    values = np.array(
        [-0.0, 0.0, np.nan, np.inf, -np.inf, 65504.0, 2.0**-24, -(2.0**-14), 1.0009765625, 0.1] * 6,
        dtype=np.float16,
    ).reshape(6, 10)
    x = ndx.asarray(values)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert unidrop.registry.backend_for(x).name == "array_api"
    y, keep = unidrop.dropout(x, 0.3, seed=SEED, stream=STREAM, return_mask=True, broadcast_dims=(1,))
    assert isinstance(y, ndx.Array) and y.dtype == ndx.float16 and y.shape == (6, 10)
    want, want_keep = expected(values, 0.3, broadcast_dims=(1,))
    got = y.unwrap_numpy()
    np.testing.assert_array_equal(got.astype(np.float64), want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_array_equal(keep.unwrap_numpy(), want_keep.reshape(6, 1))
    assert not keep.unwrap_numpy().all() and keep.unwrap_numpy().any()


def test_a_float32_block_gets_its_slice_of_the_global_mask():
    values = np.linspace(-3.0, 3.0, 6 * 10, dtype=np.float32).reshape(6, 10)
    block = ndx.asarray(np.ascontiguousarray(values[2:5, 3:9]))
    y, keep = unidrop.dropout(
        block, 0.4, seed=SEED, stream=STREAM, global_shape=(6, 10), offset=(2, 3), return_mask=True
    )
    want, want_keep = expected(values, 0.4)
    np.testing.assert_array_equal(y.unwrap_numpy().astype(np.float64), want[2:5, 3:9])
    np.testing.assert_array_equal(keep.unwrap_numpy(), want_keep.reshape(6, 10)[2:5, 3:9])


def test_float64_matches_the_reference():
    values = np.linspace(-1.0, 1.0, 3 * 7 * 5).reshape(3, 7, 5)
    y = unidrop.dropout(ndx.asarray(values), 0.25, seed=SEED, stream=STREAM)
    np.testing.assert_array_equal(y.unwrap_numpy(), expected(values, 0.25)[0])


# --- the dropout family (unidrop.family) on ndonnx --------------------------------------------


def test_the_backward_from_a_mask_keeps_the_sign_of_kept_zeros():
    """``where`` of onnxruntime drops the sign of a selected -0 unless it broadcasts: the family's
    selections go through this backend's namespace, which restores it (kept -0 stays -0)."""
    grad = np.full((4, 8), -0.0, dtype=np.float32)
    _, keep = unidrop.dropout(ndx.asarray(np.ones((4, 8), np.float32)), 0.3, seed=SEED, return_mask=True)
    got = unidrop.dropout_backward_from_mask(ndx.asarray(grad), keep, 0.3).unwrap_numpy()
    kept = keep.unwrap_numpy()
    assert kept.any() and not kept.all()
    np.testing.assert_array_equal(np.signbit(got), kept)  # kept: -0 * s = -0; dropped: +0
    np.testing.assert_array_equal(got, np.zeros((4, 8)))


def test_the_family_on_float16_matches_the_reference():
    """alpha_dropout, unscaled drop_path (-0, NaN, Inf kept as they are) and gaussian_dropout on
    float16, which array-api-strict lacks: computed in float32, rounded once to float16."""
    values = np.array(
        [-0.0, 0.0, np.nan, np.inf, -np.inf, 2.0**-24, -(2.0**-14), 1.0009765625, 0.1, -3.5] * 6,
        dtype=np.float16,
    ).reshape(6, 10)
    x = ndx.asarray(values)
    flat = values.astype(np.float64).reshape(-1).tolist()
    y = unidrop.drop_path(x, 0.3, seed=SEED, stream=STREAM, scale_by_keep=False)
    want, _ = reference.drop_path(flat, values.shape, "float16", 0.3, SEED, STREAM, scale_by_keep=False)
    got = y.unwrap_numpy()
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got.reshape(-1).astype(np.float64), np.array(want))
    np.testing.assert_array_equal(np.signbit(got.reshape(-1)), np.signbit(np.array(want)))
    y = unidrop.alpha_dropout(x, 0.3, seed=SEED, stream=STREAM, broadcast_dims=(1,))
    pairs, _ = reference.alpha_dropout(flat, values.shape, "float16", 0.3, SEED, STREAM, (1,))
    same_or_either(y.unwrap_numpy(), pairs, "alpha_dropout float16 on ndonnx")
    y = unidrop.gaussian_dropout(x, 0.3, seed=SEED, stream=STREAM)
    want, bounds = reference.gaussian_dropout(flat, values.shape, "float16", 0.3, SEED, STREAM)
    within_bound(y.unwrap_numpy(), want, bounds, "gaussian_dropout float16 on ndonnx")


def test_inplace_writes_into_an_ndonnx_array():
    """``x[...] = y`` (the standard's __setitem__): x holds dropout's values and is returned."""
    values = np.linspace(-2.0, 2.0, 24, dtype=np.float32).reshape(4, 6)
    x = ndx.asarray(values)
    assert unidrop.dropout(x, 0.5, seed=SEED, stream=STREAM, inplace=True) is x
    np.testing.assert_array_equal(x.unwrap_numpy().astype(np.float64), expected(values, 0.5)[0])
