"""Cost of the JAX backend's exact subnormal product: dropout with it against a plain ``x * s``.

    JAX_PLATFORMS=cpu python benchmarks/jax_subnormal_cost.py

float32, under ``jax.jit``, p = 0.1, 2**20 and 2**24 elements, the jnp path
(``unidrop_jax.dropout.apply_mask``) traced once with ``scaling.scaled`` (exact) and once with
``scaling.linear_scaled`` (one multiply, which XLA:CPU flushes); prints the median of
interleaved rounds and the ratio.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from unidrop_jax import dropout, keys, scaling

from unidrop import arguments


def build(n: int, exact: bool):
    """A jitted dropout over ``n`` float32 elements, compiled, and its input."""
    cfg = dropout.Config(mask_shape=(n,), drops_all=False)
    rate = dropout.rate_of(arguments.threshold(0.1), arguments.scale(0.1), "float32")
    seed, stream = keys.from_int(7), keys.from_int(0)
    saved = dropout.scaled
    dropout.scaled = scaling.scaled if exact else scaling.linear_scaled
    try:
        fn = jax.jit(lambda x: dropout.apply_mask(cfg, x, seed, stream, rate))
        x = jnp.asarray(np.random.default_rng(0).standard_normal(n).astype(np.float32))
        fn(x).block_until_ready()  # traced and compiled with the chosen product
    finally:
        dropout.scaled = saved
    return fn, x


def main() -> None:
    for n, rounds in ((1 << 20, 101), (1 << 24, 31)):
        variants = {"plain": build(n, False), "exact": build(n, True)}
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(rounds):
            for name, (fn, x) in variants.items():
                start = time.perf_counter()
                fn(x).block_until_ready()
                times[name].append(time.perf_counter() - start)
        plain, exact = (statistics.median(times[name]) for name in ("plain", "exact"))
        size = f"2**{n.bit_length() - 1}"
        print(f"{size}: plain {plain * 1e3:.2f} ms, exact {exact * 1e3:.2f} ms, {exact / plain:.3f}x")


if __name__ == "__main__":
    main()
