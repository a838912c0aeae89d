"""How the conformance suite makes, reads, differentiates and compiles JAX arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from unidrop.conformance.adapter import SuiteAdapter

from .implementation import device_name


class JaxSuiteAdapter(SuiteAdapter):
    """``jax.Array`` on JAX's devices; JAX has no global random state (the default None holds).

    ``manual_seed`` keeps the default: the JAX backend declares ``explicit_seed``, so the suite
    checks that ``seed=None`` is refused instead of reproducible.
    """

    def from_numpy(self, array: Any, dtype: str, device: str | None = None) -> Any:
        if dtype == "float64" and not jax.config.jax_enable_x64:
            raise TypeError("float64 JAX arrays need jax_enable_x64 (JAX_ENABLE_X64=1)")
        target = None
        if device is not None:
            target = next((d for d in jax.devices() if device_name(d) == device), None)
            if target is None:
                raise ValueError(f"no JAX device {device!r}; available: {self.devices()}")
        values = np.asarray(array).astype(jnp.dtype(dtype))
        return jax.device_put(values, target)

    def to_numpy(self, x: Any) -> Any:
        values = np.asarray(x)
        return values.astype(np.float32) if values.dtype.name == "bfloat16" else values.copy()

    def device_of(self, x: Any) -> str:
        """The devices holding ``x``, by id, joined with commas (one name unless ``x`` is sharded)."""
        return ",".join(device_name(d) for d in sorted(x.devices(), key=lambda d: d.id))

    def vjp(self, fn: Callable[[Any], Any], x: Any, cotangent: Any) -> tuple[Any, Any]:
        y, pullback = jax.vjp(fn, x)
        return y, pullback(cotangent)[0]

    def jit(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return jax.jit(fn)
