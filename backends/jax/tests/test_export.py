"""``jax.export``: programs that call unidrop export, hold no custom call, and give the reference's
bits when called, for concrete shapes and for a symbolic (shape-polymorphic) first axis.

An exported program may only hold custom calls on JAX's list of stable targets, so the CPU's FFI
path (taken at every size in the nox session, ``UNIDROP_JAX_FFI=always``) must lower to XLA's loops
there. Expected values come from unidrop.reference.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import as_float64, expected, same_bits, values_for
from jax import export
from unidrop_jax import cpu_ffi

import unidrop

SEED, STREAM = 2**40 + 3, 7


def exported(fn, *specs, **options):
    """``fn`` jitted and exported for the given argument shapes (``jax.ShapeDtypeStruct``)."""
    return export.export(jax.jit(fn), **options)(*specs)


def spec(shape, dtype=jnp.float32):
    shape = export.symbolic_shape(shape) if isinstance(shape, str) else shape
    return jax.ShapeDtypeStruct(shape, dtype)


@pytest.mark.parametrize("shape", [(3, 4), (2048,), (40, 700)])
def test_concrete_shapes_export_without_a_custom_call(shape):
    program = exported(lambda x: unidrop.dropout(x, 0.3, seed=SEED, stream=STREAM), spec(shape))
    assert cpu_ffi.TARGET not in program.mlir_module()
    values = values_for(shape, "float32", 1)
    want, _ = expected(values, "float32", 0.3, SEED, STREAM)
    assert same_bits(as_float64(program.call(jnp.asarray(values, jnp.float32))), want)


@pytest.mark.parametrize(
    ("symbolic", "concrete", "dims"),
    [
        ("b, 4", [(1, 4), (3, 4), (1000, 4)], ()),
        ("b, 700", [(5, 700)], ()),
        ("b, 3, 5", [(7, 3, 5)], (1,)),
        ("b", [(3,), (1025,), (70_000,)], ()),
        ("b, 6", [(4, 6)], (0,)),
    ],
)
def test_a_symbolic_first_axis_gives_the_reference_bits_at_every_size(symbolic, concrete, dims):
    def fn(x, seed):
        return unidrop.dropout(x, 0.3, seed=seed, stream=STREAM, broadcast_dims=dims)

    program = exported(fn, spec(symbolic), jax.ShapeDtypeStruct((), jnp.uint32))
    for shape in concrete:
        values = values_for(shape, "float32", 2)
        want, _ = expected(values, "float32", 0.3, 11, STREAM, dims)
        got = program.call(jnp.asarray(values, jnp.float32), np.uint32(11))
        assert same_bits(as_float64(got), want), (symbolic, shape)


@pytest.mark.parametrize("family", ["gaussian_dropout", "alpha_dropout"])
def test_the_family_exports_with_a_symbolic_batch(family):
    """Gaussian dropout's stream words once read the batch size (a C-order stride of no use)."""
    fn = getattr(unidrop, family)
    program = exported(lambda x: fn(x, 0.3, seed=SEED, stream=STREAM), spec("b, 6"))
    x = jnp.asarray(values_for((5, 6), "float32", 3), jnp.float32)
    want = np.asarray(
        jax.jit(lambda a: fn(a, 0.3, seed=SEED, stream=STREAM))(x)
    )  # jit may fuse a multiply-add
    assert np.array_equal(np.asarray(program.call(x)), want, equal_nan=True)


def test_the_gradient_exports_with_a_symbolic_batch():
    grad = jax.grad(lambda x: (unidrop.dropout(x, 0.3, seed=SEED) * 2.0).sum())
    program = exported(grad, spec("b, 600"))
    assert cpu_ffi.TARGET not in program.mlir_module()
    x = jnp.ones((5, 600), jnp.float32)
    want, _ = expected(np.full((5, 600), 2.0), "float32", 0.3, SEED)
    assert same_bits(as_float64(program.call(x)), want)


def test_a_symbolic_axis_after_the_first_is_refused_naming_the_mask_shape():
    with pytest.raises(NotImplementedError, match=r"symbolic first axis only.*mask shape \(2, b\)"):
        exported(lambda x: unidrop.dropout(x, 0.3, seed=1), spec("2, b"))
