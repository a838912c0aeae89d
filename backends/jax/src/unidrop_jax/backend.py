"""The JAX backend object registered with unidrop (imports JAX only when used)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from unidrop import Backend, DropoutPlan

_BASE_DTYPES = frozenset({"float16", "bfloat16", "float32"})


def _x64_enabled() -> bool:
    jax = sys.modules.get("jax")
    if jax is not None:
        return bool(jax.config.jax_enable_x64)
    return os.environ.get("JAX_ENABLE_X64", "").lower() in {"1", "true", "yes", "on"}


class JaxBackend(Backend):
    """Mask stream v1 for ``jax.Array`` (tracers included): jit, vmap, grad and sharding.

    Randomness is explicit, as everywhere in JAX: ``seed`` is a JAX key (typed or raw
    ``uint32[2]``), an integer, or a scalar integer array, possibly traced; ``seed=None``
    raises ValueError. A key with data ``(a, b)`` is the seed ``a * 2**32 + b``, so
    ``jax.random.key(n)`` and ``seed=n`` give the same mask. See docs/jax.md.
    """

    name = "jax"
    framework = "jax"
    distribution = "unidrop-jax"
    features = frozenset({"autograd", "jit", "vmap", "explicit-seed"})

    @property  # type: ignore[override]
    def dtypes(self) -> frozenset[str]:
        """float16, bfloat16, float32, and float64 when ``jax_enable_x64`` makes float64 arrays exist."""
        return _BASE_DTYPES | {"float64"} if _x64_enabled() else _BASE_DTYPES

    def accepts(self, x: Any) -> bool:
        jax = sys.modules["jax"]
        return isinstance(x, jax.Array)

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        return tuple(x.shape), x.dtype.name

    def resolve_randomness(self, seed: Any, stream: Any, x: Any) -> tuple[Any, Any]:
        from .keys import words

        return words(seed, "seed"), words(stream, "stream")

    def check_randomness(self, seed: Any, stream: Any, x: Any) -> None:
        """Validate ``seed`` and ``stream`` as :meth:`resolve_randomness` does, for the identity path.

        ``seed=None`` raises the same ValueError as a drawing call (JAX's randomness is
        explicit, whatever ``p`` and ``training`` are); nothing is drawn, nothing is returned.
        """
        self.resolve_randomness(seed, stream, x)

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        from . import pallas_gpu
        from .dropout import Config, forward, rate_of
        from .keys import words

        # p travels as run-time words (exact, computed here), so a new p does not recompile;
        # only the opt-in Pallas kernel bakes it into the program.
        kernel = not plan.drops_all and pallas_gpu.applicable(plan.shape, plan.mask_shape)
        cfg = Config(
            mask_shape=plan.mask_shape,
            drops_all=plan.drops_all,
            return_mask=plan.return_mask,
            kernel_rate=(plan.threshold, plan.scale) if kernel else None,
        )
        rate = rate_of(plan.threshold, plan.scale, plan.compute_dtype)
        return forward(cfg, x, words(plan.seed, "seed"), words(plan.stream, "stream"), rate)

    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        import jax.numpy as jnp

        return jnp.ones(shape, bool)

    # -- description and conformance adapters ------------------------------------------
    def devices(self) -> list[str]:
        import jax

        return [f"{d.platform}:{d.id}" for d in jax.devices()]

    def device_of(self, x: Any) -> str:
        placed = sorted(x.devices(), key=lambda d: d.id)
        return ",".join(f"{d.platform}:{d.id}" for d in placed)

    def from_numpy(self, array: Any, dtype: str, device: str | None = None) -> Any:
        import jax
        import jax.numpy as jnp
        import numpy as np

        if dtype == "float64" and not _x64_enabled():
            raise TypeError("float64 JAX arrays need jax_enable_x64 (JAX_ENABLE_X64=1)")
        target = None
        if device is not None:
            target = next((d for d in jax.devices() if f"{d.platform}:{d.id}" == device), None)
            if target is None:
                raise ValueError(f"no JAX device {device!r}; available: {self.devices()}")
        values = np.asarray(array).astype(jnp.dtype(dtype))
        return jax.device_put(values, target)

    def to_numpy(self, x: Any) -> Any:
        import numpy as np

        values = np.asarray(x)
        return values.astype(np.float32) if values.dtype.name == "bfloat16" else values.copy()

    def vjp(self, fn: Callable[[Any], Any], x: Any, cotangent: Any) -> tuple[Any, Any]:
        import jax

        y, pullback = jax.vjp(fn, x)
        return y, pullback(cotangent)[0]

    def jit(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        import jax

        return jax.jit(fn)
