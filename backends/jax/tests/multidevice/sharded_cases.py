"""Sharding checks on 8 host devices. Run in a process whose XLA_FLAGS were set before JAX loaded:

    XLA_FLAGS=--xla_force_host_platform_device_count=8 JAX_PLATFORMS=cpu \
        pytest backends/jax/tests/multidevice/sharded_cases.py

(``tests/test_multidevice.py`` does exactly that in a subprocess.) The file name keeps the
normal collection, where JAX has one device, from picking it up.
"""

from __future__ import annotations

import contextlib
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import unidrop
from unidrop import reference

COLLECTIVE = re.compile(r"\b(all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter)", re.I)

pytestmark = pytest.mark.skipif(
    jax.device_count() < 8, reason="needs XLA_FLAGS=--xla_force_host_platform_device_count=8 before JAX loads"
)


@pytest.fixture(params=["auto", "explicit"])
def mesh(request):
    """A mesh factory for both sharding modes: Auto axes, and Explicit axes under ``jax.set_mesh``."""
    kind = AxisType.Auto if request.param == "auto" else AxisType.Explicit
    made = []

    def make(shape, names):
        made.append(jax.make_mesh(shape, names, axis_types=(kind,) * len(shape)))
        return made[-1]

    if request.param == "auto":
        yield make
        return
    with contextlib.ExitStack() as stack:

        def make_and_enter(shape, names):
            m = make(shape, names)
            stack.enter_context(jax.set_mesh(m))
            return m

        yield make_and_enter


CASES = [
    ((64, 32), (8,), ("d",), P("d", None), ()),
    ((64, 32), (8,), ("d",), P(None, "d"), ()),
    ((16, 64), (2, 4), ("a", "b"), P("a", "b"), ()),
    ((8, 24, 33), (8,), ("d",), P("d", None, None), ()),
    ((8, 6, 5), (8,), ("d",), P("d", None, None), ()),
    ((16, 8, 32), (2, 4), ("a", "b"), P("a", None, "b"), (1,)),
    ((8, 8, 32), (8,), ("d",), P("d", None, None), (2,)),
    ((4, 16, 12), (2, 4), ("a", "b"), P("b", "a", None), (0,)),
    ((1024,), (8,), ("d",), P("d"), ()),
]


def reference_output(values: np.ndarray, p: float, seed: int, stream: int, dims) -> np.ndarray:
    out, _ = reference.dropout(list(values.reshape(-1)), values.shape, "float32", p, seed, stream, dims)
    return np.array(out, np.float32).reshape(values.shape)


@pytest.mark.parametrize(("shape", "mshape", "names", "spec", "dims"), CASES, ids=lambda v: str(v))
def test_sharded_dropout_is_the_unsharded_one_keeps_sharding_and_communicates_nothing(
    shape, mshape, names, spec, dims, mesh
):
    sharding = NamedSharding(mesh(mshape, names), spec)
    values = np.random.default_rng(math.prod(shape)).standard_normal(shape).astype(np.float32)
    x = jnp.asarray(values)
    xs = jax.device_put(x, sharding)
    key = jax.random.key(2**31 + 7)
    f = jax.jit(lambda x, k: unidrop.dropout(x, 0.4, seed=k, stream=3, broadcast_dims=dims))
    y = f(xs, key)
    want = reference_output(values, 0.4, 2**31 + 7, 3, dims)
    assert np.array_equal(np.asarray(y), want)
    assert np.array_equal(
        np.asarray(y), np.asarray(unidrop.dropout(x, 0.4, seed=key, stream=3, broadcast_dims=dims))
    )
    assert y.sharding.is_equivalent_to(xs.sharding, len(shape)), (y.sharding, xs.sharding)
    hlo = f.lower(xs, key).compile().as_text()
    assert not COLLECTIVE.findall(hlo), COLLECTIVE.findall(hlo)[:5]
    eager = unidrop.dropout(xs, 0.4, seed=key, stream=3, broadcast_dims=dims)
    assert np.array_equal(np.asarray(eager), want)
    assert eager.sharding.is_equivalent_to(xs.sharding, len(shape))


def test_sharded_gradient_regenerates_the_mask_locally(mesh):
    sharding = NamedSharding(mesh((2, 4), ("a", "b")), P("a", "b"))
    values = np.random.default_rng(0).standard_normal((16, 64)).astype(np.float32)
    xs = jax.device_put(jnp.asarray(values), sharding)
    key = jax.random.key(5)
    # d/dx sum(x * D(x)) = 2 D(x) for the linear map D; the x factor keeps the result sharded.
    grad = jax.jit(jax.grad(lambda x, k: jnp.sum(x * unidrop.dropout(x, 0.5, seed=k))))
    g = grad(xs, key)
    want = 2 * reference_output(values, 0.5, 5, 0, ())
    assert np.array_equal(np.asarray(g), want)
    assert g.sharding.is_equivalent_to(xs.sharding, 2)
    hlo = grad.lower(xs, key).compile().as_text()
    assert not COLLECTIVE.findall(hlo)


def test_sharded_bfloat16_and_wide_seed(mesh):
    sharding = NamedSharding(mesh((8,), ("d",)), P("d", None))
    values = np.random.default_rng(1).standard_normal((32, 40)).astype(np.float32)
    x = jnp.asarray(values, jnp.bfloat16)
    xs = jax.device_put(x, sharding)
    f = jax.jit(lambda x: unidrop.dropout(x, 0.3, seed=2**63 + 11, stream=2**40))
    y = f(xs)
    assert y.dtype == jnp.bfloat16
    assert np.array_equal(np.asarray(y), np.asarray(unidrop.dropout(x, 0.3, seed=2**63 + 11, stream=2**40)))
    assert not COLLECTIVE.findall(f.lower(xs).compile().as_text())


def test_each_device_computes_the_philox_words_of_its_own_rows_only(mesh):
    """With the rows sharded, no device makes the words of the whole mask (Explicit axes: the
    iotas are made sharded, since an array made from nothing is replicated there). With Explicit
    axes a returned mask is sharded as the input; with Auto axes jit leaves its sharding to the
    partitioner, which replicates an output that nothing ties to the input."""
    made = mesh((8,), ("d",))
    explicit = made.axis_types[0] == AxisType.Explicit
    xs = jax.device_put(jnp.ones((256, 64)), NamedSharding(made, P("d", None)))
    for return_mask in (False, True) if explicit else (False,):
        f = jax.jit(lambda x: unidrop.dropout(x, 0.3, seed=4, return_mask=return_mask))  # noqa: B023
        hlo = f.lower(xs).compile().as_text()
        block_arrays = set(re.findall(r"u32\[(\d+),16\]", hlo))  # rows x 16 Philox blocks per row
        assert block_arrays == {"32"}, (return_mask, block_arrays)  # 256 rows over 8 devices
        assert not COLLECTIVE.findall(hlo)
        if return_mask:
            _, keep = f(xs)
            assert keep.sharding.is_equivalent_to(xs.sharding, 2), keep.sharding
    gaussian = jax.jit(lambda x: unidrop.gaussian_dropout(x, 0.3, seed=4))
    hlo = gaussian.lower(xs).compile().as_text()
    word_pairs = set(re.findall(r"u32\[(\d+),64,2\]", hlo))  # rows x 64 elements x 2 words each
    assert word_pairs == {"32"}, word_pairs
