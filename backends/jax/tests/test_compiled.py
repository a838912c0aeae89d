"""The compiled program computes each Philox block once: the packed keep bits are materialized.

Without that, XLA fuses the Philox computation into the per-element consumer and evaluates
every block four times. The check reads the optimized HLO of the backend's default device, with
the CPU's FFI path (unidrop_jax.cpu_ffi) off: these are the XLA path's checks.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import pytest
from unidrop_jax import mask

import unidrop

SIZE = 1 << 16

pytestmark = pytest.mark.usefixtures("xla_path")


def fusion_outputs(materialize: str, shape: tuple[int, ...]) -> list[str]:
    old = mask.MATERIALIZE
    mask.MATERIALIZE = materialize
    jax.clear_caches()
    try:
        x = jnp.ones(shape, jnp.float32)
        compiled = jax.jit(lambda x, k: unidrop.dropout(x, 0.5, seed=k)).lower(x, jax.random.key(0)).compile()
    finally:
        mask.MATERIALIZE = old
        jax.clear_caches()
    entry = compiled.as_text().split("ENTRY", 1)[1]
    return re.findall(r"= (\w+\[[\d,]*\])\S* fusion\(", entry)


@pytest.mark.parametrize("materialize", ["idiv", "fdiv", "bf16div"])
def test_packed_bits_are_a_separate_array_of_one_entry_per_block(materialize):
    outputs = fusion_outputs(materialize, (SIZE,))
    assert any(re.fullmatch(rf"\w+\[{SIZE // 4}\]", o) for o in outputs), outputs


def test_two_dimensional_inputs_too():
    outputs = fusion_outputs("idiv", (64, 256))
    assert any(re.fullmatch(r"\w+\[64,64\]", o) for o in outputs), outputs


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="documents XLA:CPU's fusion choice")
def test_without_materialization_xla_fuses_everything_into_one_loop():
    """The reason for the division: with nothing in between, one fusion recomputes Philox per element."""
    assert len(fusion_outputs("none", (SIZE,))) == 1
