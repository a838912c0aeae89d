"""The dropout family through JAX autodiff: alpha's gradient is cot * a where kept, Gaussian's cot * noise."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import unidrop
from unidrop import reference

SEED, STREAM, P = (1 << 63) + 11, (1 << 40) + 3, 0.3


def _inputs(shape):
    rng = np.random.default_rng(5)
    return rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)


def test_alpha_dropout_gradient_is_cotangent_times_a_where_kept():
    values, cot = _inputs((6, 20))
    _, pullback = jax.vjp(
        lambda a: unidrop.alpha_dropout(a, P, seed=SEED, stream=STREAM), jnp.asarray(values)
    )
    (grad,) = pullback(jnp.asarray(cot))
    a32 = reference.round_to(reference.alpha_affine(P)[0], "float32")
    _, keep = reference.dropout(cot.reshape(-1).tolist(), cot.shape, "float32", P, SEED, STREAM)
    want = [
        reference.round_to(v * a32, "float32") if k else 0.0
        for v, k in zip(cot.reshape(-1).tolist(), keep, strict=True)
    ]
    assert np.asarray(grad).reshape(-1).tolist() == want


def test_gaussian_dropout_gradient_is_cotangent_times_the_noise_within_the_bound():
    values, cot = _inputs((6, 20))
    _, pullback = jax.vjp(
        lambda a: unidrop.gaussian_dropout(a, P, seed=SEED, stream=STREAM), jnp.asarray(values)
    )
    (grad,) = pullback(jnp.asarray(cot))
    want, bounds = reference.gaussian_dropout(cot.reshape(-1).tolist(), cot.shape, "float32", P, SEED, STREAM)
    error = np.abs(np.asarray(grad).reshape(-1).astype(np.float64) - np.array(want))
    assert np.all(error <= np.array(bounds))


def test_inplace_is_refused_for_immutable_arrays():
    with pytest.raises(TypeError, match="inplace=True needs a mutable array"):
        unidrop.dropout(jnp.ones(4), 0.5, seed=1, inplace=True)
