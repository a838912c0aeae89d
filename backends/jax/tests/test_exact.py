"""Bit-exactness against the pure-Python reference and the shared known answers."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import DTYPES, as_float64, expected, same_bits, values_for
from unidrop_jax import keys, philox_lax
from unidrop_jax.mask import keep_bits, split_rows

import unidrop
from unidrop import arguments, reference
from unidrop import philox as ref_philox

KNOWN = json.loads(resources.files("unidrop.conformance").joinpath("known_answers.json").read_text())


@pytest.mark.parametrize("case", KNOWN["philox4x32_10"], ids=lambda c: c["counter"][0])
def test_philox_known_answers(case, mulhi):
    counter = [np.uint32(int(w, 16)) for w in case["counter"]]
    key = [np.uint32(int(w, 16)) for w in case["key"]]
    words = jax.jit(lambda c, k: philox_lax.philox4x32(c, k))(counter, key)
    assert [f"{int(w):08x}" for w in words] == case["out"]


def test_philox_matches_reference_on_many_counters(mulhi):
    rng = np.random.default_rng(5)
    counters = rng.integers(0, 2**32, size=(4, 64), dtype=np.uint64).astype(np.uint32)
    key = (np.uint32(0xDEADBEEF), np.uint32(0xFFFFFFFF))
    words = np.stack([np.asarray(w) for w in jax.jit(philox_lax.philox4x32)(tuple(counters), key)])
    for i in range(counters.shape[1]):
        assert tuple(words[:, i]) == ref_philox.philox4x32(counters[:, i], key)


@pytest.mark.parametrize("case", KNOWN["stream_v1"], ids=lambda c: f"seed{c['seed']}-{c['mask_shape']}")
def test_stream_v1_known_answers(case):
    seed, stream, p = int(case["seed"]), int(case["stream"]), case["p"]
    shape = tuple(case["mask_shape"])
    assert arguments.threshold(p) == int(case["threshold"])
    keep = keep_bits(shape, keys.from_int(seed), keys.from_int(stream), arguments.threshold(p))
    assert "".join("1" if k else "0" for k in np.asarray(keep).reshape(-1)) == case["keep"]
    _, mask = unidrop.dropout(jnp.ones(shape), p, seed=seed, stream=stream, return_mask=True)
    assert "".join("1" if k else "0" for k in np.asarray(mask).reshape(-1)) == case["keep"]


SHAPES = [(), (1,), (3,), (7,), (64,), (4, 5), (3, 7, 5), (2, 3, 4), (5, 70), (2, 1, 9), (9, 129), (0, 3)]


@pytest.mark.parametrize("wide", [False, True], ids=["narrow-index", "wide-index"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_keep_bits_match_reference_for_every_layout(shape, wide):
    """Aligned and unaligned rows, merged trailing axes, 0-d and empty masks, both index widths."""
    check_keep_bits(shape, wide)


@pytest.mark.parametrize("shape", [(5, 70), (3, 7, 5)], ids=str)
def test_keep_bits_match_reference_with_every_mulhi(shape, mulhi):
    check_keep_bits(shape, wide=True)


def check_keep_bits(shape, wide):
    for seed, stream in [(0, 0), (2**40 + 5, 2**33 + 7), (2**64 - 1, 2**64 - 1)]:
        t = arguments.threshold(0.37)
        keep = jax.jit(lambda s, st, t=t, shape=shape, wide=wide: keep_bits(shape, s, st, t, wide=wide))(
            keys.from_int(seed), keys.from_int(stream)
        )
        assert list(np.asarray(keep).reshape(-1)) == reference.keep_bits(seed, stream, shape, 0.37)


def test_split_rows_keeps_aligned_rows_and_merges_short_unaligned_ones():
    assert split_rows((8, 32)) == ((8,), 32)
    assert split_rows((8, 6, 5)) == ((), 240)
    assert split_rows((100, 70)) == ((100,), 70)
    assert split_rows((4, 3, 3, 3)) == ((), 108)
    assert split_rows(()) == ((), 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("shape", "dims"), [((6, 10), ()), ((4, 3, 8), (1,)), ((5, 7), (0,)), ((3, 4, 5), (0, 2)), ((17,), ())]
)
def test_outputs_match_reference_bit_for_bit(dtype, shape, dims):
    values = values_for(shape, dtype, seed=len(shape))
    for p, seed, stream in [(0.5, 1, 0), (0.1, 2**32 + 17, 3), (0.9, 2**63 + 1, 2**40)]:
        want, want_keep = expected(values, dtype, p, seed, stream, dims)
        x = jnp.asarray(values, dtype=dtype)
        y, keep = unidrop.dropout(x, p, seed=seed, stream=stream, broadcast_dims=dims, return_mask=True)
        assert y.dtype == x.dtype and y.shape == x.shape
        assert same_bits(as_float64(y), want)
        assert np.array_equal(np.asarray(keep), want_keep)


def test_float64_with_x64_in_a_subprocess():
    """float64 arrays exist only with jax_enable_x64: check them in a process that enables it."""
    code = (
        "import jax, jax.numpy as jnp, numpy as np, unidrop\n"
        "from unidrop import reference\n"
        "v = np.random.default_rng(1).standard_normal(37) * 3\n"
        "x = jnp.asarray(v, jnp.float64)\n"
        "assert x.dtype == jnp.float64\n"
        "for seed in (3, 2**64 - 5):\n"
        "    y = unidrop.dropout(x, 0.3, seed=seed, stream=9)\n"
        "    want, _ = reference.dropout(list(v), (37,), 'float64', 0.3, seed, 9)\n"
        "    assert np.array_equal(np.asarray(y), np.array(want)), seed\n"
        "k = jax.random.key(2**40 + 3)\n"
        "assert np.array_equal(unidrop.dropout(x, 0.3, seed=k), unidrop.dropout(x, 0.3, seed=2**40 + 3))\n"
        "f = jax.jit(lambda x, s, st: unidrop.dropout(x, 0.3, seed=s, stream=st))\n"
        "y = f(x, jnp.uint64(2**64 - 5), jnp.int64(9))\n"
        "want = unidrop.dropout(x, 0.3, seed=2**64 - 5, stream=9)\n"
        "assert np.array_equal(np.asarray(y), np.asarray(want))\n"
        "print('ok')\n"
    )
    env = {**__import__("os").environ, "JAX_ENABLE_X64": "1", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_inf_are_zeroed_when_dropped_and_kept_otherwise(dtype):
    values = np.array([np.nan, np.inf, -np.inf, -0.0, 1.5, np.nan, np.inf, -2.0] * 4)
    x = jnp.asarray(values, dtype=dtype)
    y, keep = unidrop.dropout(x, 0.5, seed=11, return_mask=True)
    want, want_keep = expected(values, dtype, 0.5, 11)
    got = as_float64(y)
    assert np.array_equal(np.asarray(keep), want_keep)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    finite = ~np.isnan(want)
    assert same_bits(got[finite], want[finite])
    assert not np.signbit(got[~np.asarray(keep)]).any()


def test_p_one_drops_everything_and_tiny_p_keeps_everything():
    x = jnp.asarray([1.0, np.nan, -np.inf, 3.0], jnp.float32)
    y, keep = unidrop.dropout(x, 1.0, seed=4, return_mask=True)
    assert same_bits(np.asarray(y, np.float64), np.zeros(4)) and not np.asarray(keep).any()
    y, keep = unidrop.dropout(x[2:], 2.0**-40, seed=4, return_mask=True)  # threshold 0: nothing dropped
    assert np.asarray(keep).all()


def test_input_is_not_modified_and_eval_returns_it():
    x = jnp.arange(12.0, dtype=jnp.float32)
    before = np.asarray(x).copy()
    unidrop.dropout(x, 0.5, seed=1)
    assert np.array_equal(np.asarray(x), before)
    assert unidrop.dropout(x, 0.5, seed=1, training=False) is x
    assert unidrop.dropout(x, 0.0, seed=1) is x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(24, 40), (3, 700)])
def test_an_input_made_by_a_multiply_under_jit_is_rounded_then_scaled(dtype, shape, xla_path):
    """``jit(dropout(x * 3))``, a tangent ``x * 3`` and the cotangent of ``sum(dropout(x) * 3)``:
    XLA's simplifier would fold the 3 into the scale (``x * (3 * s)``, one rounding where the spec
    has two) if the kept values' multiply could see its input's producer."""
    x = jnp.asarray(values_for(shape, dtype, seed=5), dtype)
    want = expected(as_float64(x * 3), dtype, 0.25, 9)[0]
    forward = jax.jit(lambda x: unidrop.dropout(x * 3, 0.25, seed=9))(x)
    assert same_bits(as_float64(forward), want), "forward"
    jvp = jax.jit(lambda x: jax.jvp(lambda x: unidrop.dropout(x, 0.25, seed=9), (x,), (x * 3,))[1])
    assert same_bits(as_float64(jvp(x)), want), "tangent"
    grad = jax.jit(jax.grad(lambda x: jnp.sum(unidrop.dropout(x, 0.25, seed=9) * 3).astype(jnp.float32)))
    want_grad = expected(np.full(shape, 3.0), dtype, 0.25, 9)[0]
    assert same_bits(as_float64(grad(x)), want_grad), "cotangent"


def test_strict_dtype_promotion_changes_no_result(mulhi):
    """jax_numpy_dtype_promotion="strict" refuses implicit promotions: unidrop makes none, on the
    XLA path (here, with each mulhi formulation) the mask and the family are those of the default."""
    values = values_for((2, 500), "float32", seed=3)
    x = jnp.asarray(values, jnp.float32)
    want, want_keep = expected(values, "float32", 0.3, 9, 4)
    seeds = jax.random.split(jax.random.key(1))
    calls = {
        "alpha": lambda: unidrop.alpha_dropout(x, 0.3, seed=9, stream=4),
        "gaussian": lambda: unidrop.gaussian_dropout(x, 0.3, seed=9, stream=4),
        "block": lambda: unidrop.dropout(x, 0.5, seed=7, global_shape=(6, 500), offset=(4, 0)),
        "vmap": lambda: jax.vmap(lambda k: unidrop.dropout(x, 0.3, seed=k))(seeds),
    }
    default = {name: np.asarray(call()) for name, call in calls.items()}
    jax.clear_caches()
    with jax.numpy_dtype_promotion("strict"):
        y, keep = unidrop.dropout(x, 0.3, seed=9, stream=4, return_mask=True)
        assert same_bits(as_float64(y), want) and np.array_equal(np.asarray(keep), want_keep)
        for name, call in calls.items():
            assert np.array_equal(np.asarray(call()), default[name], equal_nan=True), name
