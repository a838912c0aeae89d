"""Should JAX on the CPU call the compiled NumPy kernel through XLA's FFI? The measurement behind it.

Times, on the same machine and in one run (float32, p = 0.1, medians of interleaved repetitions):

* ``jax jit``: the JAX backend's dropout under ``jax.jit`` (XLA's fused Philox), output ready;
* ``jax copy``: a jitted copy of the input (``x + 0``): the memory limit as XLA sees it;
* ``compiled kernel``: unidrop-numpy's compiled kernel on a NumPy array (the work an FFI custom
  call would do; the FFI adds its own call cost on top), at the NumPy backend's thread count;
* ``numpy copy``: ``x.copy()``.

XLA's CPU client uses every core for its thunks; the kernel runs ``unidrop_numpy.get_num_threads()``
threads (both are printed). A custom call can only beat the fused path if ``compiled kernel`` is
clearly below ``jax jit``.

    python benchmarks/cpu_jax_vs_kernel.py [--sizes 20 24] [--reps 9]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp
import numpy as np
from unidrop_numpy import get_num_threads

import unidrop
from unidrop.bench.timing import Timed, median_seconds

P = 0.1


def calls(x: np.ndarray, jitted: Callable, copy: Callable) -> dict[str, Callable[[], object]]:
    """The four timed calls on ``x`` (and its JAX copy)."""
    xj = jnp.asarray(x)
    return {
        "jax jit": lambda: jitted(xj).block_until_ready(),
        "jax copy": lambda: copy(xj).block_until_ready(),
        "compiled kernel": lambda: unidrop.dropout(x, P, seed=1),
        "numpy copy": x.copy,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 24])
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args(argv)
    print(
        f"jax {jax.__version__} on {jax.devices()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    kernel = unidrop.get_backend("numpy").implementation().describe()
    print(f"numpy kernel: {kernel}, threads {get_num_threads()}")
    jitted = jax.jit(lambda a: unidrop.dropout(a, P, seed=1))
    copy = jax.jit(lambda a: a + 0)
    for k in args.sizes:
        x = np.random.default_rng(k).standard_normal(2**k).astype(np.float32)
        found = median_seconds(
            {name: Timed(call) for name, call in calls(x, jitted, copy).items()}, args.reps
        )
        assert np.array_equal(np.asarray(jitted(jnp.asarray(x))), unidrop.dropout(x, P, seed=1))  # same bits
        cells = ", ".join(f"{name} {seconds * 1e3:.2f} ms" for name, seconds in found.items())
        print(f"2^{k}: {cells}; kernel / jax jit = {found['compiled kernel'] / found['jax jit']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
