"""The JAX backend's work: mask stream v1 on ``jax.Array`` (tracers included), through :mod:`.dropout`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from unidrop import DropoutPlan, Implementation

from . import cpu_ffi, family, pallas_gpu
from .blocks import block_origin
from .dropout import ORIGIN, Config, forward, rate_of
from .explicit import mask_axes
from .keys import words

_BASE_DTYPES = frozenset({"float16", "bfloat16", "float32"})


def device_name(device: Any) -> str:
    """A JAX device as unidrop names devices: ``"<platform>:<id>"`` (``"cpu:0"``, ``"gpu:1"``)."""
    return f"{device.platform}:{device.id}"


class JaxImplementation(Implementation):
    """Dropout of ``jax.Array`` under jit, vmap, grad and sharding; randomness is explicit.

    Blocks of a global mask (``global_shape=``, ``offset=``) are supported, with offsets that
    may be traced integers (``lax.axis_index`` inside ``shard_map``; see :mod:`.shards`).
    """

    supports_blocks = True

    def describe(self) -> str:
        """Where the CPU's compiled kernel (through XLA's FFI) computes dropout, or why it does not."""
        return cpu_ffi.describe()

    def dtypes(self) -> frozenset[str]:
        """float16, bfloat16, float32, and float64 while ``jax_enable_x64`` is on (read at each call).

        ``jax_enable_x64`` may be switched on at any time, even after the first dropout: float64
        arrays exist only while it is on, and are taken from then on.
        """
        return _BASE_DTYPES | {"float64"} if jax.config.jax_enable_x64 else _BASE_DTYPES

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        return tuple(x.shape), x.dtype.name

    def resolve_randomness(self, seed: Any, stream: Any, x: Any) -> tuple[Any, Any]:
        """The seed and stream as (low, high) uint32 words; ``seed=None`` raises ValueError.

        A seed is a JAX key (typed or raw ``uint32[2]``), an integer in [0, 2**64) or a scalar
        integer array, possibly traced; nothing is drawn: JAX's randomness is explicit.
        """
        return words(seed, "seed"), words(stream, "stream")

    def check_randomness(self, seed: Any, stream: Any, x: Any) -> None:
        """Validate ``seed`` and ``stream`` as :meth:`resolve_randomness` does, for the identity path.

        ``seed=None`` raises the same ValueError as a drawing call (JAX's randomness is
        explicit, whatever ``p`` and ``training`` are); nothing is drawn, nothing is returned.
        """
        self.resolve_randomness(seed, stream, x)

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        # p travels as run-time words (exact, computed here), so a new p does not recompile;
        # only the opt-in Pallas kernel bakes it into the program. It computes whole arrays
        # only: a block (its start, possibly traced, travels as words) takes the jnp path.
        kernel = (
            plan.block is None and not plan.drops_all and pallas_gpu.applicable(plan.shape, plan.mask_shape)
        )
        layout, origin = (None, ORIGIN) if plan.block is None else block_origin(plan.block)
        cfg = Config(
            mask_shape=plan.mask_shape,
            drops_all=plan.drops_all,
            return_mask=plan.return_mask,
            kernel_rate=(plan.threshold, plan.scale) if kernel else None,
            block=layout,
        )
        rate = rate_of(plan.threshold, plan.scale, plan.compute_dtype)
        return forward(cfg, x, words(plan.seed, "seed"), words(plan.stream, "stream"), rate, origin)

    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        return jnp.ones(shape, bool)

    def stream_words(self, x: Any, plan: DropoutPlan) -> Any:
        # the words' shape is x's mask shape and a trailing pair axis: x's explicit axes, then none
        axes = mask_axes(x, plan.mask_shape[: x.ndim])
        if axes is not None:
            axes = axes.first(x.ndim, *(None,) * (len(plan.mask_shape) - x.ndim))
        return family.stream_words(plan, axes)

    def namespace(self, x: Any) -> Any:
        return jnp

    def devices(self) -> list[str]:
        """Every device of JAX's default backend, as ``"<platform>:<id>"``."""
        return [device_name(d) for d in jax.devices()]
