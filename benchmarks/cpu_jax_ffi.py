"""JAX on the CPU: the FFI path (unidrop-numpy's compiled kernel as an XLA custom call) against the XLA path.

Times, in one run on the same machine (p = 0.1, medians of interleaved repetitions), for every even
power of two from 2^4 to 2^24 elements, float32, bfloat16 and float16 (``--dtypes``):

* ``copy``: a jitted ``x + 0`` (the memory limit as XLA sees it; fwd+bwd: ``value_and_grad`` of its sum);
* ``xla``: the JAX backend's jitted dropout on its XLA path (``unidrop_jax.cpu_ffi`` off);
* ``ffi``: the same on the FFI path (``unidrop_jax.cpu_ffi`` at every size), forward and backward;
* ``ffi fwd``: the FFI path for the forward only, the backward by XLA;
* ``auto``: the backend's default (``UNIDROP_JAX_FFI=auto``: each way by the FFI at the sizes
  ``unidrop_jax.cpu_ffi.AUTO_FORWARD``, ``AUTO_TANGENT`` and ``AUTO_TANGENT_BY_DTYPE``, chosen from
  this benchmark).

Passes: ``fwd`` is ``jax.jit(dropout)``; ``fwd+bwd`` is ``jax.jit(jax.value_and_grad(sum of
dropout))`` (``value_and_grad`` rather than ``grad``, so that XLA cannot drop the forward), whose
cotangent is a constant XLA fuses; ``fwd+bwd w`` the same for ``sum(dropout(x) * w)``, ``w`` a
second input, so that the cotangent is an array in memory, as in a model. Each variant is
compiled ahead of time with the path chosen at its trace, and checked bit for bit against the other
(outputs and gradients; the loss, a sum XLA may reduce in another order, to float32 rounding).

    python benchmarks/cpu_jax_ffi.py [--sizes 4 6 ... 24] [--reps 7] [--dtypes ...] [--json FILE]
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
DTYPES = ("float32", "bfloat16", "float16")
PATHS = ("xla", "ffi", "ffi fwd", "auto")


PASSES = ("fwd", "fwd+bwd", "fwd+bwd w")


def passes(op: Callable[[Any], Any]) -> dict[str, Callable[[Any, Any], Any]]:
    """The timed programs of ``op`` (dropout, or the copy), each taking ``(x, w)``."""

    def loss(a: Any) -> Any:
        return jnp.sum(op(a).astype(jnp.float32))

    def weighted(a: Any, w: Any) -> Any:
        return jnp.sum((op(a) * w).astype(jnp.float32))

    return {
        "fwd": lambda a, w: op(a),
        "fwd+bwd": lambda a, w: jax.value_and_grad(loss)(a),
        "fwd+bwd w": jax.value_and_grad(weighted),
    }


def programs(path: str) -> dict[str, Callable[[Any, Any], Any]]:
    """The timed programs of dropout (not yet compiled)."""
    return passes(lambda a: unidrop.dropout(a, P, seed=1))


def copies() -> dict[str, Callable[[Any, Any], Any]]:
    """The copy's."""
    return passes(lambda a: a + 0)


def compiled(x: Any, w: Any, path: str) -> dict[str, Any]:
    """``programs`` compiled for ``(x, w)`` on one of :data:`PATHS`."""
    every = (cpu_ffi.EVERY,)
    cpu_ffi.FORWARD, cpu_ffi.TANGENT, cpu_ffi.TANGENT_BY_DTYPE = {
        "xla": ((), (), {}),
        "ffi": (every, every, {}),
        "ffi fwd": (every, (), {}),
        "auto": (cpu_ffi.AUTO_FORWARD, cpu_ffi.AUTO_TANGENT, dict(cpu_ffi.AUTO_TANGENT_BY_DTYPE)),
    }[path]
    jax.clear_caches()
    made = {name: jax.jit(fn).lower(x, w).compile() for name, fn in programs(path).items()}
    if path in ("ffi", "ffi fwd"):  # the path really taken
        assert "unidrop_dropout_v1" in jax.jit(programs(path)["fwd"]).lower(x, w).as_text()
    return made


def ready(result: Any) -> None:
    jax.block_until_ready(result)


def same(a: Any, b: Any) -> bool:
    """The same dropout output or gradient, bit for bit; a loss (a sum, which XLA may reduce in
    another order when dropout is fused into it) within float32 rounding."""
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        u, v = np.asarray(u), np.asarray(v)
        if u.ndim == 0 and not np.allclose(u, v, rtol=1e-5):
            return False
        if u.ndim and not np.array_equal(u.view(np.uint8), v.view(np.uint8)):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(range(4, 25, 2)))
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    if not cpu_ffi.BUILT:
        raise SystemExit(f"the FFI handler is not built: {cpu_ffi.describe()}")
    load = os.getloadavg()[0]
    print(f"jax {jax.__version__} on {jax.devices()[0]}, {os.cpu_count()} CPUs, load {load:.1f}")
    print(f"p = {P}; medians of {args.reps} interleaved repetitions")
    rows = []
    print("microseconds per call; the last columns are each FFI variant's time / xla's (< 1: faster)")
    heads = " ".join(f"{c:>9}" for c in ("copy", *PATHS)) + " " + " ".join(f"{c:>7}" for c in PATHS[1:])
    print(f"{'dtype':9} {'n':5} {'pass':9} {heads}")
    for dtype in args.dtypes:
        for k in args.sizes:
            x, w = (jnp.asarray(np.random.default_rng(k + i).standard_normal(2**k), dtype) for i in (0, 99))
            variants = {path: compiled(x, w, path) for path in PATHS}
            copy = {name: jax.jit(fn).lower(x, w).compile() for name, fn in copies().items()}
            for name in PASSES:
                for path in PATHS[1:]:
                    got = variants[path][name](x, w)
                    assert same(variants["xla"][name](x, w), got), f"{dtype} 2^{k} {name} {path} differ"
                timed = {"copy": Timed(lambda c=copy[name], x=x, w=w: c(x, w), ready)}
                timed |= {
                    path: Timed(lambda c=variants[path][name], x=x, w=w: c(x, w), ready) for path in PATHS
                }
                found = median_seconds(timed, args.reps)
                cells = " ".join(f"{found[c] * 1e6:9.1f}" for c in ("copy", *PATHS))
                ratios = " ".join(f"{found[path] / found['xla']:7.2f}" for path in PATHS[1:])
                print(f"{dtype:9} 2^{k:<3} {name:9} {cells} {ratios}", flush=True)
                rows.append({"dtype": dtype, "log2_n": k, "pass": name, **{c: found[c] for c in found}})
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"jax": jax.__version__, "p": P, "rows": rows}, out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
