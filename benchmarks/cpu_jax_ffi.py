"""JAX on the CPU: the FFI path (unidrop-numpy's compiled kernel as an XLA custom call) against the XLA path.

Times, in one run on the same machine (p = 0.1, medians of interleaved repetitions), for every even
power of two from 2^4 to 2^24 elements, float32 and bfloat16:

* ``copy``: a jitted ``x + 0`` (the memory limit as XLA sees it; fwd+bwd: ``value_and_grad`` of its sum);
* ``xla``: the JAX backend's jitted dropout on its XLA path (``unidrop_jax.cpu_ffi`` off);
* ``ffi``: the same on the FFI path (``unidrop_jax.cpu_ffi`` at every size).

Forward is ``jax.jit(dropout)``; fwd+bwd is ``jax.jit(jax.value_and_grad(sum of dropout))``
(``value_and_grad`` rather than ``grad``, so that XLA cannot drop the forward). Each variant is
compiled ahead of time with the path chosen at its trace, and checked bit for bit against the other.

    python benchmarks/cpu_jax_ffi.py [--sizes 4 6 ... 24] [--reps 7] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp
import numpy as np
from unidrop_jax import cpu_ffi

import unidrop
from unidrop.bench.timing import Timed, median_seconds

P = 0.1
DTYPES = ("float32", "bfloat16")


def programs(path: str) -> dict[str, Callable[[Any], Any]]:
    """The two timed programs (not yet compiled): forward and forward+backward."""

    def drop(a: Any) -> Any:
        return unidrop.dropout(a, P, seed=1)

    def loss(a: Any) -> Any:
        return jnp.sum(drop(a).astype(jnp.float32))

    return {"fwd": drop, "fwd+bwd": jax.value_and_grad(loss)}


def copies() -> dict[str, Callable[[Any], Any]]:
    """The copy's forward and forward+backward."""
    return {"fwd": lambda a: a + 0, "fwd+bwd": jax.value_and_grad(lambda a: jnp.sum((a + 0).astype(jnp.float32)))}


def compiled(x: Any, path: str) -> dict[str, Any]:
    """``programs`` compiled for ``x`` with the FFI path at every size (``path="ffi"``) or off."""
    cpu_ffi.MIN_ELEMENTS = 0 if path == "ffi" else None
    jax.clear_caches()
    made = {name: jax.jit(fn).lower(x).compile() for name, fn in programs(path).items()}
    if path == "ffi":  # the path really taken
        assert "unidrop_dropout_v1" in jax.jit(programs(path)["fwd"]).lower(x).as_text()
    return made


def ready(result: Any) -> None:
    jax.block_until_ready(result)


def bits(result: Any) -> list[np.ndarray]:
    return [np.asarray(leaf).view(np.uint8) for leaf in jax.tree_util.tree_leaves(result)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(range(4, 25, 2)))
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    if not cpu_ffi.BUILT:
        raise SystemExit(f"the FFI handler is not built: {cpu_ffi.describe()}")
    print(f"jax {jax.__version__} on {jax.devices()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"p = {P}; medians of {args.reps} interleaved repetitions; ffi/xla < 1: the FFI path is faster")
    rows = []
    print(f"{'dtype':9} {'n':>5} {'pass':8} {'copy':>10} {'xla':>10} {'ffi':>10} {'ffi/xla':>8}")
    for dtype in DTYPES:
        for k in args.sizes:
            x = jnp.asarray(np.random.default_rng(k).standard_normal(2**k), dtype)
            variants = {"xla": compiled(x, "xla"), "ffi": compiled(x, "ffi")}
            copy = {name: jax.jit(fn).lower(x).compile() for name, fn in copies().items()}
            for name in ("fwd", "fwd+bwd"):
                same = all(
                    np.array_equal(a, b)
                    for a, b in zip(bits(variants["xla"][name](x)), bits(variants["ffi"][name](x)), strict=True)
                )
                assert same, f"{dtype} 2^{k} {name}: the FFI and XLA paths differ"
                timed = {
                    "copy": Timed(lambda c=copy[name]: c(x), ready),
                    "xla": Timed(lambda c=variants["xla"][name]: c(x), ready),
                    "ffi": Timed(lambda c=variants["ffi"][name]: c(x), ready),
                }
                found = median_seconds(timed, args.reps)
                ratio = found["ffi"] / found["xla"]
                cells = " ".join(f"{found[c] * 1e6:8.1f}us" for c in ("copy", "xla", "ffi"))
                print(f"{dtype:9} 2^{k:<3} {name:8} {cells} {ratio:8.2f}", flush=True)
                rows.append({"dtype": dtype, "log2_n": k, "pass": name, **{c: found[c] for c in found}})
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"jax": jax.__version__, "p": P, "rows": rows}, out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
