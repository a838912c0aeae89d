"""The JAX backend's internal formulations against Flax-style bernoulli dropout, under jit.

    python benchmarks/jax_variants.py --out /tmp/jax_variants.json   # on the default JAX device

A tool for choosing how the JAX backend computes (issue 15 runs it on the GPU through
benchmarks/gpu_jax.py); `unidrop bench` is the benchmark of the backend as users call it.

Prints the machine, versions, size, the median time of each variant and its ratio to
bernoulli dropout, all from one run; writes the JSON and a .txt copy of the table.
Variants: a copy (the memory bound), jax.random.bernoulli + select (flax.nnx.Dropout's
formulation, threefry keys), unidrop with each mulhi formulation (wide, split, native) and
each way of materializing the packed keep bits (idiv, fdiv, bf16div, barrier, none;
see unidrop_jax.mask),
and forward+backward for both dropouts.

Every variant is compiled ahead of time (``jit(...).lower(...).compile()``), so that the module
switches read at trace time (the mulhi formulation, the materialization) stay fixed per
variant; the variants are then timed by ``unidrop bench``'s timing (interleaved repetitions
after a warm-up), so that a change in machine load during the run touches all of them alike.
Reported: the median of the repetitions, in milliseconds.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from unidrop_jax import mask as unidrop_mask
from unidrop_jax import pallas_gpu as unidrop_pallas
from unidrop_jax import philox_lax as unidrop_philox

import unidrop
from unidrop.bench.timing import Timed, median_seconds

P = 0.5


def bernoulli_dropout(x: Any, key: Any) -> Any:
    """Flax-style dropout (flax.nnx.Dropout's formulation): bernoulli mask and a select."""
    keep_prob = 1.0 - P
    keep = jax.random.bernoulli(key, p=keep_prob, shape=x.shape)
    return lax.select(keep, x / keep_prob, jnp.zeros_like(x))


def unidrop_dropout(x: Any, key: Any) -> Any:
    return unidrop.dropout(x, P, seed=key)


def copy_like(x: Any, key: Any) -> Any:
    """The memory bound: read x once, write y once (x * 2 in one fused pass)."""
    return x * jnp.asarray(2, x.dtype)


def forward_backward(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any, Any], Any]:
    """Forward and backward pass: y and the cotangent pulled back through dropout."""

    def run(x: Any, key: Any, g: Any) -> Any:
        y, pullback = jax.vjp(lambda a: fn(a, key), x)
        return y, pullback(g)[0]

    return run


def compile_variant(fn: Callable[..., Any], args: tuple[Any, ...], mulhi: str, materialize: str) -> Any:
    """``fn`` compiled for ``args`` with the given unidrop switches (restored afterwards).

    ``materialize == "pallas"`` switches on the opt-in Pallas GPU kernel instead.
    """
    saved = unidrop_philox.MULHI, unidrop_mask.MATERIALIZE, unidrop_pallas.ENABLED
    unidrop_philox.MULHI = mulhi
    unidrop_pallas.ENABLED = materialize == "pallas"
    unidrop_mask.MATERIALIZE = "idiv" if materialize == "pallas" else materialize
    jax.clear_caches()
    try:
        return jax.jit(fn).lower(*args).compile()
    finally:
        unidrop_philox.MULHI, unidrop_mask.MATERIALIZE, unidrop_pallas.ENABLED = saved
        jax.clear_caches()


def median_ms(variants: dict[str, tuple[Any, tuple[Any, ...]]], repeats: int) -> dict[str, float]:
    """Median milliseconds per call of each compiled variant, repetitions interleaved."""
    timed = {
        name: Timed(lambda compiled=compiled, args=args: compiled(*args), wait=jax.block_until_ready)
        for name, (compiled, args) in variants.items()
    }
    return {name: round(seconds * 1e3, 4) for name, seconds in median_seconds(timed, repeats).items()}


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "jax": jax.__version__,
        "jaxlib": importlib.metadata.version("jaxlib"),
        "numpy": np.__version__,
        "devices": [str(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "cpu_count": os.cpu_count(),
        "x64": bool(jax.config.jax_enable_x64),
    }
    try:
        info["cpu"] = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        info["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, StopIteration):
        pass
    return info


def check_exact(x: Any, key: Any) -> bool:
    """unidrop's JAX output equals the NumPy backend's, bit for bit, on the first 2**16 elements."""
    head = x.reshape(-1)[: 1 << 16]
    got = np.asarray(unidrop.dropout(head, P, seed=key).astype(jnp.float32))
    data = [int(w) for w in np.asarray(jax.random.key_data(key))]
    seed = data[0] * 2**32 + data[1]
    host = np.asarray(head.astype(jnp.float32)).astype(np.float32)
    if x.dtype == jnp.bfloat16:  # NumPy has no bfloat16: compare against the reference instead
        from unidrop import reference

        want = np.array(reference.dropout(host[:4096].tolist(), (4096,), "bfloat16", P, seed)[0], np.float32)
        return bool(np.array_equal(got[:4096], want))
    want = unidrop.dropout(host.astype(x.dtype.name), P, seed=seed)
    return bool(np.array_equal(got, want.astype(np.float32)))


def report(
    title: str, results: dict[str, dict[str, float]], baseline: str, info: dict[str, Any], out: Path | None
) -> str:
    """A text table (median ms, ratio to ``baseline``) and, with ``out``, a JSON file beside it."""
    lines = [title, json.dumps(info, indent=1), ""]
    for case, medians in results.items():
        lines.append(f"{case}:")
        base = medians.get(baseline)
        for name, ms in medians.items():
            ratio = f"{base / ms:6.2f}x faster than {baseline}" if base else ""
            lines.append(f"  {name:<40} {ms:9.3f} ms  {ratio}")
        lines.append("")
    text = "\n".join(lines)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"title": title, "machine": info, "median_ms": results}, indent=1) + "\n")
        out.with_suffix(".txt").write_text(text + "\n")
    return text


def run(
    title: str, size_log2: int, dtypes: list[str], repeats: int, out: Path | None, variants: list[str]
) -> str:
    """Time every variant for each dtype on the default JAX device; return the report text."""
    n = 1 << size_log2
    key = jax.random.key(1234)
    info = machine() | {"elements": n, "p": P, "repeats": repeats}
    results: dict[str, dict[str, float]] = {}
    exact: dict[str, bool] = {}
    for dtype in dtypes:
        x = jax.random.normal(jax.random.key(0), (n,), jnp.float32).astype(dtype)
        g = jax.random.normal(jax.random.key(1), (n,), jnp.float32).astype(dtype)
        exact[dtype] = check_exact(x, key)
        table: dict[str, tuple[Any, tuple[Any, ...]]] = {}
        fwd_args, bwd_args = (x, key), (x, key, g)
        default = ("wide", "idiv")
        table["copy (x * 2, the memory bound)"] = (compile_variant(copy_like, fwd_args, *default), fwd_args)
        table["bernoulli dropout (flax-style, threefry)"] = (
            compile_variant(bernoulli_dropout, fwd_args, *default),
            fwd_args,
        )
        for variant in variants:  # "MULHI+MATERIALIZE", e.g. "wide+idiv"
            mulhi, _, materialize = variant.partition("+")
            materialize = materialize or "idiv"
            label = f"unidrop ({mulhi} mulhi, {materialize})"
            try:
                table[label] = (compile_variant(unidrop_dropout, fwd_args, mulhi, materialize), fwd_args)
                if materialize == "pallas":
                    info.setdefault("pallas_equals_default", {})[dtype] = bool(
                        np.array_equal(
                            np.asarray(table[label][0](*fwd_args).astype(jnp.float32)),
                            np.asarray(unidrop_dropout(*fwd_args).astype(jnp.float32)),
                        )
                    )
            except Exception as error:  # a variant that does not compile here is reported, not fatal
                info.setdefault("failed_variants", {})[f"{dtype} {label}"] = (
                    f"{type(error).__name__}: {error}"[:500]
                )
        table["bernoulli dropout fwd+bwd"] = (
            compile_variant(forward_backward(bernoulli_dropout), bwd_args, *default),
            bwd_args,
        )
        table["unidrop fwd+bwd (mask regenerated)"] = (
            compile_variant(forward_backward(unidrop_dropout), bwd_args, *default),
            bwd_args,
        )
        results[f"{dtype}, 2**{size_log2} elements"] = median_ms(table, repeats)
    info["unidrop_equals_reference"] = exact
    baseline = "bernoulli dropout (flax-style, threefry)"
    text = report(title, results, baseline, info, out)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-log2", type=int, default=24)
    parser.add_argument("--dtypes", default="float32")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--variants",
        default="wide+idiv,split+idiv,native+idiv,wide+fdiv,wide+bf16div,wide+barrier,wide+none",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    text = run(
        f"unidrop JAX backend vs bernoulli dropout, {jax.default_backend()}, jit (median ms)",
        args.size_log2,
        args.dtypes.split(","),
        args.repeats,
        args.out,
        args.variants.split(","),
    )
    print(text)
    if args.out is not None:
        command = "python benchmarks/jax_variants.py " + " ".join(sys.argv[1:])
        args.out.with_suffix(".command").write_text(command + "\n")


if __name__ == "__main__":
    main()
