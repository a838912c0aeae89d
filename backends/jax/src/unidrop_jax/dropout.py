"""Dropout by mask stream v1 as a jitted JAX function with a mask-regenerating custom JVP.

Forward mode (``jax.jvp``, ``jax.jacfwd``): the tangent is dropped out with the same mask,
``select(keep, t * s, +0)`` with the primal's rounding. The tangent rule is wrapped in
``jax.checkpoint`` with nothing saveable, so when reverse mode linearizes and transposes it
the only residuals are scalars (the seed and stream words, p's threshold and scale, where they
are not constants), never the mask: the backward pass regenerates the mask and the gradient
is ``g * keep * s``, bit for bit.

``p`` reaches the compiled function as run-time words (:class:`Rate`), computed exactly on
the host, so eager calls with a new ``p`` reuse the compiled program.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from unidrop.arguments import HALF_DTYPES as HALF

from . import cpu_ffi, pallas_gpu
from .explicit import MeshAxes, mask_axes
from .keys import Words64
from .mask import BlockLayout, keep_bits
from .scaling import kept_values


class Rate(NamedTuple):
    """The run-time part of ``p``, computed exactly on the host: a new ``p`` does not recompile.

    ``threshold`` is ``floor(p * 2**32)`` as a uint32 scalar (``p < 1``; ``p == 1`` is
    :attr:`Config.drops_all`), ``scale`` is ``1/(1-p)`` in float64 rounded to the compute dtype.
    """

    threshold: Any
    scale: Any


def rate_of(threshold: int, scale: float, compute_dtype: str) -> Rate:
    """The exact run-time words of a plan's threshold (a Python int < 2**32) and float64 scale."""
    return Rate(np.uint32(threshold & 0xFFFFFFFF), np.asarray(scale, dtype=compute_dtype)[()])


#: The origin of a whole array (unused without ``Config.block``).
ORIGIN = Words64(np.uint32(0), np.uint32(0))


@dataclass(frozen=True)
class Config:
    """The static (compile-time) part of one dropout request; hashable, so it keys jit's cache.

    ``p`` is not part of it (see :class:`Rate`), except through ``drops_all`` (p == 1) and
    ``kernel_rate``: the threshold and scale baked into the program for the opt-in Pallas
    kernel, which takes them as constants; None for the default path. ``block``: for a block of
    a global mask, its static layout (the start travels at run time as the ``origin`` words);
    None for a whole array.
    """

    mask_shape: tuple[int, ...]
    drops_all: bool
    return_mask: bool = False
    kernel_rate: tuple[int, float] | None = None
    block: BlockLayout | None = None


def mask_of(
    cfg: Config, seed: Words64, stream: Words64, threshold: Any, origin: Words64, axes: MeshAxes | None
) -> Any:
    """The keep mask (bool, ``cfg.mask_shape``) of the request, a block's slice for a block, computed
    over ``axes``, the input's explicit mesh axes (:func:`.explicit.mask_axes`)."""
    return keep_bits(cfg.mask_shape, seed, stream, threshold, block=cfg.block, origin=origin, axes=axes)


def apply_mask(
    cfg: Config,
    x: Any,
    seed: Words64,
    stream: Words64,
    rate: Rate,
    origin: Words64 = ORIGIN,
    kernel: bool = True,
    linear: bool = False,
) -> Any:
    """``select(keep, x * s, +0)`` with ``x * s`` in the compute dtype, rounded back to ``x.dtype``
    (exactly, subnormals included: :func:`.scaling.scaled`).

    ``kernel=False`` never uses the (opt-in, non-differentiable) Pallas kernel; the result is the same.
    ``linear=True`` (tangents) uses :func:`.scaling.linear_scaled`, which JAX can transpose: the same
    bits, except that a device flushing subnormals (XLA:CPU) flushes subnormal tangents.
    """
    if cfg.drops_all:
        return jnp.zeros_like(x)
    if kernel and cfg.kernel_rate is not None:  # opt-in GPU kernel
        threshold, scale = cfg.kernel_rate
        compute = jnp.float32 if x.dtype.name in HALF else x.dtype
        return pallas_gpu.dropout_pallas(x, seed, stream, threshold, np.asarray(scale, dtype=compute))
    if cpu_ffi.applicable(x.shape, x.dtype, cfg.block is None, linear):  # the compiled kernel, on the CPU
        return cpu_ffi.dropout(x, (*seed, *stream, rate.threshold, rate.scale), cfg.mask_shape, linear)
    keep = jnp.broadcast_to(
        mask_of(cfg, seed, stream, rate.threshold, origin, mask_axes(x, cfg.mask_shape)), x.shape
    )
    kept = kept_values(x, rate.scale, linear)
    return jnp.where(keep, kept, jnp.zeros((), x.dtype))


def xla_dropout(x: Any, words: tuple[Any, ...], mask_shape: tuple[int, ...], linear: bool) -> Any:
    """What :func:`apply_mask` computes for a whole array by XLA's own operations: the lowering of
    :data:`.cpu_ffi.dropout_p` off the CPU, and under ``vmap``. ``words``: the seed's and stream's
    (low, high) words, the threshold and the scale."""
    seed_lo, seed_hi, stream_lo, stream_hi, threshold, scale = words
    axes = mask_axes(x, mask_shape)
    keep = keep_bits(mask_shape, (seed_lo, seed_hi), (stream_lo, stream_hi), threshold, axes=axes)
    keep = jnp.broadcast_to(keep, x.shape)
    kept = kept_values(x, scale, linear)
    return jnp.where(keep, kept, jnp.zeros((), x.dtype))


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def masked(cfg: Config, x: Any, seed: Words64, stream: Words64, rate: Rate, origin: Words64) -> Any:
    """Differentiable dropout of ``x`` (in ``x`` only; seed, stream, rate and origin are constants)."""
    return apply_mask(cfg, x, seed, stream, rate, origin)


def _tangent(cfg: Config, t: Any, seed: Words64, stream: Words64, rate: Rate, origin: Words64) -> Any:
    """The tangent map: linear in ``t``; XLA ops only, so that reverse mode can transpose it."""
    return apply_mask(cfg, t, seed, stream, rate, origin, kernel=False, linear=True)


@masked.defjvp
def _masked_jvp(cfg: Config, primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
    x, seed, stream, rate, origin = primals
    # nothing_saveable: under linearization the mask is recomputed in the backward pass from
    # the seed and stream words instead of being stored as a residual.
    tangent = jax.checkpoint(partial(_tangent, cfg), policy=jax.checkpoint_policies.nothing_saveable)
    return apply_mask(cfg, x, seed, stream, rate, origin), tangent(tangents[0], seed, stream, rate, origin)


@partial(jax.jit, static_argnums=(0,))
def forward(
    cfg: Config, x: Any, seed: Words64, stream: Words64, rate: Rate, origin: Words64 = ORIGIN
) -> tuple[Any, Any]:
    """``(y, keep)``; ``keep`` (bool, the mask shape) is None unless ``cfg.return_mask``.

    ``origin``: for a block (``cfg.block``), the global flat index of its first mask element.
    """
    y = masked(cfg, x, seed, stream, rate, origin)
    if not cfg.return_mask:
        return y, None
    if cfg.drops_all:
        return y, jnp.zeros(cfg.mask_shape, bool)
    return y, mask_of(cfg, seed, stream, rate.threshold, origin, mask_axes(x, cfg.mask_shape))
