"""``shard_map`` checks on 4 host devices: each shard gets its slice of the global mask.

Run in a process whose XLA_FLAGS were set before JAX loaded:

    XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_PLATFORMS=cpu \
        pytest backends/jax/tests/multidevice/shard_map_cases.py

(``tests/test_multidevice.py`` does exactly that in a subprocess.) Expected values come from
``unidrop.reference`` for the unsharded array.
"""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from unidrop_jax.shards import shard_block, shard_dropout

import unidrop
from unidrop import reference

COLLECTIVE = re.compile(r"\b(all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter)", re.I)
SEED, STREAM, RATE = 2**31 + 5, 7, 0.4

pytestmark = pytest.mark.skipif(
    jax.device_count() < 4, reason="needs XLA_FLAGS=--xla_force_host_platform_device_count=4 before JAX loads"
)


def reference_output(values: np.ndarray, dims=()) -> tuple[np.ndarray, np.ndarray]:
    """The unsharded array's reference output and keep mask."""
    out, keep = reference.dropout(list(values.reshape(-1)), values.shape, "float32", RATE, SEED, STREAM, dims)
    mshape = tuple(1 if a in dims else n for a, n in enumerate(values.shape))
    return np.array(out, np.float32).reshape(values.shape), np.array(keep, bool).reshape(mshape)


def mesh_of(shape, names):
    return jax.make_mesh(shape, names, axis_types=(jax.sharding.AxisType.Explicit,) * len(shape))


# (global shape, mesh shape, mesh axis names, spec, broadcast_dims): 1-D and 2-D meshes, a
# dimension split over two mesh axes (both orders), replication over a mesh axis, shards whose
# rows are not multiples of 4, broadcast axes.
CASES = [
    ((16, 10), (4,), ("d",), P("d", None), ()),
    ((6, 12), (4,), ("d",), P(None, "d"), ()),
    ((8, 12), (2, 2), ("a", "b"), P("a", "b"), ()),
    ((8, 6), (2, 2), ("a", "b"), P("b", "a"), ()),
    ((5, 16), (2, 2), ("a", "b"), P(None, ("a", "b")), ()),
    ((5, 16), (2, 2), ("a", "b"), P(None, ("b", "a")), ()),
    ((8, 6), (2, 2), ("a", "b"), P("a"), ()),
    ((4, 6, 8), (2, 2), ("a", "b"), P("a", None, "b"), (1,)),
    ((8, 4, 12), (2, 2), ("a", "b"), P(("a", "b"), None, None), (0,)),
    ((4, 2, 6), (4,), ("d",), P("d"), (2,)),
]


@pytest.mark.parametrize(("shape", "mshape", "names", "spec", "dims"), CASES, ids=str)
def test_shard_map_dropout_is_the_unsharded_dropout(shape, mshape, names, spec, dims):
    mesh = mesh_of(mshape, names)
    values = np.random.default_rng(math.prod(shape)).standard_normal(shape).astype(np.float32)
    x = jax.device_put(jnp.asarray(values), NamedSharding(mesh, spec))
    out, keep = reference_output(values, dims)
    entries = tuple(spec) + (None,) * (len(shape) - len(spec))
    mask_spec = P(*(None if a in dims else e for a, e in enumerate(entries)))  # the mask: size 1 there

    def local(x, key):
        return shard_dropout(x, RATE, spec, seed=key, stream=STREAM, broadcast_dims=dims, return_mask=True)

    f = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(spec, P()), out_specs=(spec, mask_spec)))
    key = jax.random.key(SEED)
    y, k = f(x, key)
    assert np.array_equal(np.asarray(y), out)
    assert np.array_equal(np.asarray(k), keep)
    whole = unidrop.dropout(jnp.asarray(values), RATE, seed=key, stream=STREAM, broadcast_dims=dims)
    assert np.array_equal(np.asarray(y), np.asarray(whole))
    assert not COLLECTIVE.findall(f.lower(x, key).compile().as_text())


def test_shard_block_gives_global_shape_and_each_shards_offset():
    mesh = mesh_of((2, 2), ("a", "b"))

    def local(x):
        gshape, offset = shard_block(x.shape, P("a", ("b",)))
        assert gshape == (4, 10)
        return jnp.stack([jnp.asarray(o, jnp.int32) for o in offset])[None, None, :]

    f = jax.shard_map(local, mesh=mesh, in_specs=P("a", "b"), out_specs=P("a", "b"))
    offsets = np.asarray(f(jax.device_put(jnp.zeros((4, 10), jnp.float32), NamedSharding(mesh, P("a", "b")))))
    assert offsets.reshape(2, 2, 2).tolist() == [[[0, 0], [0, 5]], [[2, 0], [2, 5]]]


def test_gradient_inside_shard_map_regenerates_the_global_mask():
    mesh = mesh_of((4,), ("d",))
    values = np.random.default_rng(3).standard_normal((8, 12)).astype(np.float32)
    x = jax.device_put(jnp.asarray(values), NamedSharding(mesh, P(None, "d")))

    def loss(x, key):
        local = jax.shard_map(
            lambda x, k: shard_dropout(x, RATE, P(None, "d"), seed=k, stream=STREAM),
            mesh=mesh,
            in_specs=(P(None, "d"), P()),
            out_specs=P(None, "d"),
        )
        return jnp.sum(local(x, key))

    g = jax.jit(jax.grad(loss))(x, jax.random.key(SEED))
    _, keep = reference_output(values)
    assert np.array_equal(np.asarray(g), np.where(keep, np.float32(1 / (1 - RATE)), np.float32(0)))


@pytest.mark.parametrize("kind", [jax.sharding.AxisType.Explicit, jax.sharding.AxisType.Auto])
def test_plain_jit_with_named_shardings_gives_the_same_global_mask(kind):
    mesh = jax.make_mesh((2, 2), ("a", "b"), axis_types=(kind, kind))
    values = np.random.default_rng(4).standard_normal((8, 12)).astype(np.float32)
    x = jax.device_put(jnp.asarray(values), NamedSharding(mesh, P("a", "b")))
    key = jax.random.key(SEED)
    jitted = jax.jit(lambda x, k: unidrop.dropout(x, RATE, seed=k, stream=STREAM))(x, key)
    mapped = jax.jit(
        jax.shard_map(
            lambda x, k: shard_dropout(x, RATE, P("a", "b"), seed=k, stream=STREAM),
            mesh=mesh,
            in_specs=(P("a", "b"), P()),
            out_specs=P("a", "b"),
        )
    )(x, key)
    assert np.array_equal(np.asarray(jitted), reference_output(values)[0])
    assert np.array_equal(np.asarray(mapped), np.asarray(jitted))


def test_bad_specs_are_refused_naming_them():
    mesh = mesh_of((4,), ("d",))
    x = jax.device_put(jnp.zeros((8, 4), jnp.float32), NamedSharding(mesh, P("d")))

    def run(spec, local_spec):
        f = jax.shard_map(
            lambda x: shard_dropout(x, RATE, local_spec, seed=1), mesh=mesh, in_specs=spec, out_specs=spec
        )
        return f(x)

    with pytest.raises(ValueError, match=r"3 entries, more than the 2 axes"):
        run(P("d"), P("d", None, None))
    with pytest.raises(ValueError, match=r"mesh axis 'e'"):
        run(P("d"), P("e"))
    with pytest.raises(TypeError, match=r"spec entry 3 for axis 0"):
        run(P("d"), (3,))
