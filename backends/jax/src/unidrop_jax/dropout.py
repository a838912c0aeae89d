"""Dropout by mask stream v1 as a jitted JAX function with a mask-regenerating custom JVP.

Forward mode (``jax.jvp``, ``jax.jacfwd``): the tangent is dropped out with the same mask,
``select(keep, t * s, +0)`` with the primal's rounding. The tangent rule is wrapped in
``jax.checkpoint`` with nothing saveable, so when reverse mode linearizes and transposes it
the only residuals are the seed and stream words (four uint32 scalars), never the mask: the
backward pass regenerates the mask and the gradient is ``g * keep * s``, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import pallas_gpu
from .keys import Words64
from .mask import keep_bits

HALF = frozenset({"float16", "bfloat16"})


@dataclass(frozen=True)
class Config:
    """The static (compile-time) part of one dropout request; hashable, so it keys jit's cache."""

    threshold: int
    scale: float
    mask_shape: tuple[int, ...]
    drops_all: bool
    return_mask: bool = False


def apply_mask(cfg: Config, x: Any, seed: Words64, stream: Words64, kernel: bool = True) -> Any:
    """``select(keep, x * s, +0)`` with ``x * s`` in the compute dtype, rounded back to ``x.dtype``.

    ``kernel=False`` never uses the (opt-in, non-differentiable) Pallas kernel; the result is the same.
    """
    if cfg.drops_all:
        return jnp.zeros_like(x)
    compute = jnp.float32 if x.dtype.name in HALF else x.dtype
    s = np.asarray(cfg.scale, dtype=compute)  # float64 s rounded to the compute dtype
    if kernel and pallas_gpu.applicable(x.shape, cfg.mask_shape):  # opt-in GPU kernel
        return pallas_gpu.dropout_pallas(x, seed, stream, cfg.threshold, s)
    keep = jnp.broadcast_to(keep_bits(cfg.mask_shape, seed, stream, cfg.threshold), x.shape)
    kept = (x.astype(compute) * s).astype(x.dtype)
    return jnp.where(keep, kept, jnp.zeros((), x.dtype))


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def masked(cfg: Config, x: Any, seed: Words64, stream: Words64) -> Any:
    """Differentiable dropout of ``x`` (in ``x`` only; seed and stream are integers)."""
    return apply_mask(cfg, x, seed, stream)


def _tangent(cfg: Config, t: Any, seed: Words64, stream: Words64) -> Any:
    """The tangent map: linear in ``t``; XLA ops only, so that reverse mode can transpose it."""
    return apply_mask(cfg, t, seed, stream, kernel=False)


@masked.defjvp
def _masked_jvp(cfg: Config, primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
    x, seed, stream = primals
    # nothing_saveable: under linearization the mask is recomputed in the backward pass from
    # the seed and stream words instead of being stored as a residual.
    tangent = jax.checkpoint(partial(_tangent, cfg), policy=jax.checkpoint_policies.nothing_saveable)
    return apply_mask(cfg, x, seed, stream), tangent(tangents[0], seed, stream)


@partial(jax.jit, static_argnums=(0,))
def forward(cfg: Config, x: Any, seed: Words64, stream: Words64) -> tuple[Any, Any]:
    """``(y, keep)``; ``keep`` (bool, the mask shape) is None unless ``cfg.return_mask``."""
    y = masked(cfg, x, seed, stream)
    if not cfg.return_mask:
        return y, None
    if cfg.drops_all:
        return y, jnp.zeros(cfg.mask_shape, bool)
    return y, keep_bits(cfg.mask_shape, seed, stream, cfg.threshold)
