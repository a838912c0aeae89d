"""GPU benchmark of unidrop's CuPy backend, side by side with a device copy and naive CuPy dropout.

    python benchmarks/gpu_cupy.py [--log2n 28] [--repeats 20] [--out benchmarks/results/gpu_cupy.json]

For fp32 and fp16 arrays of 2^28 elements it times, in one run on one GPU (CUDA events,
medians of ``--repeats`` interleaved repetitions after a warm-up, by ``unidrop bench``'s timing):

* ``copy``      a device-to-device memcpy of x (the memory limit: read x, write y);
* ``naive``     ``x * (cupy.random.random(n) >= p) / (1 - p)``;
* ``unidrop``   ``unidrop.dropout(x, p, seed=..)`` (allocation included, as users call it);
* ``unidrop+mask``  the same with ``return_mask=True`` (one more byte written per element);
* ``kernel Uk`` the fast kernel alone into a preallocated y, with k Philox blocks per thread.

It prints the machine, versions, sizes, medians, effective bandwidth and the ratio to the copy,
then each target (unidrop >= 85% of copy bandwidth) with its measured ratio, and writes the
same to ``--out`` (JSON) and a .txt beside it. Exits 1 if a target is missed, 2 without a GPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unidrop.bench.timing import cupy_timed, median_seconds

TARGET = 0.85
P = 0.5


def gpu_or_exit() -> Any:
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device")
    except Exception as error:
        print(f"gpu_cupy.py needs CuPy and a CUDA GPU: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(2)
    return cupy


def measure(cupy: Any, dtype: str, n: int, repeats: int) -> tuple[dict[str, float], dict[str, int]]:
    """Median ms of every case for one dtype, and the bytes each moves."""
    from unidrop_cupy import kernels, layout

    import unidrop
    from unidrop import arguments

    x = cupy.random.standard_normal(n, dtype=cupy.float32).astype(dtype)
    y = cupy.empty_like(x)
    rng = layout.rng_words(1234, 0, arguments.threshold(P))
    nbytes = 2 * x.nbytes  # read x, write y

    def kernel(blocks: int) -> Callable[[], None]:
        options = {dtype: blocks}
        return lambda: kernels.launch_contiguous(
            x, y, None, dtype, rng, arguments.scale(P), blocks_per_thread=options
        )

    cases: dict[str, tuple[Callable[[], Any], int]] = {
        "copy": (lambda: y.data.copy_from_device_async(x.data, x.nbytes), nbytes),
        "naive": (lambda: x * (cupy.random.random(n) >= P) / (1 - P), nbytes),
        "unidrop": (lambda: unidrop.dropout(x, P, seed=1234), nbytes),
        "unidrop+mask": (lambda: unidrop.dropout(x, P, seed=1234, return_mask=True), nbytes + n),
    }
    for blocks in (1, 2, 4):
        cases[f"kernel U{blocks}"] = (kernel(blocks), nbytes)
    timed = {name: cupy_timed(fn) for name, (fn, _) in cases.items()}
    medians = {name: seconds * 1e3 for name, seconds in median_seconds(timed, repeats).items()}
    return medians, {name: moved for name, (_, moved) in cases.items()}


def machine(cupy: Any) -> dict[str, Any]:
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return {
        "gpu": name,
        "sm_count": props.get("multiProcessorCount"),
        "memory_gib": round(props.get("totalGlobalMem", 0) / 2**30, 1),
        "driver": cupy.cuda.runtime.driverGetVersion(),
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "cupy": cupy.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log2n", type=int, default=28)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu_cupy.json"))
    args = parser.parse_args()
    cupy = gpu_or_exit()

    import numpy

    import unidrop

    n = 1 << args.log2n
    info = machine(cupy)
    lines = [
        f"unidrop CuPy benchmark: n = 2^{args.log2n} = {n} elements, p = {P}, "
        f"medians of {args.repeats} interleaved repetitions",
        "machine: " + ", ".join(f"{k}={v}" for k, v in info.items()),
        f"numpy {numpy.__version__}, unidrop {unidrop.__version__}",
        "",
        f"{'dtype':8} {'what':16} {'median ms':>10} {'GB/s':>8} {'copy/this':>10}",
    ]
    print("\n".join(lines))
    rows: list[dict[str, Any]] = []
    targets: list[dict[str, Any]] = []
    for dtype in ("float32", "float16"):
        medians, moved = measure(cupy, dtype, n, args.repeats)
        for name, ms in medians.items():
            row = {
                "dtype": dtype,
                "what": name,
                "median_ms": round(ms, 4),
                "gb_per_s": round(moved[name] / ms / 1e6, 1),
                "copy_over_this": round(medians["copy"] / ms, 3),
            }
            rows.append(row)
            print(f"{dtype:8} {name:16} {ms:10.4f} {row['gb_per_s']:8.1f} {row['copy_over_this']:10.3f}")
        ratio = medians["copy"] / medians["unidrop"]
        targets.append(
            {
                "target": f"{dtype}: unidrop >= {TARGET:.0%} of copy bandwidth",
                "copy_ms": round(medians["copy"], 4),
                "unidrop_ms": round(medians["unidrop"], 4),
                "ratio": round(ratio, 3),
                "met": ratio >= TARGET,
            }
        )
        cupy.get_default_memory_pool().free_all_blocks()
    print()
    for t in targets:
        verdict = "MET" if t["met"] else "MISSED"
        print(
            f"TARGET {t['target']}: copy {t['copy_ms']} ms, unidrop {t['unidrop_ms']} ms, "
            f"ratio {t['ratio']:.1%} -> {verdict}"
        )
    report = {
        "command": " ".join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
        "n": n,
        "p": P,
        "repeats": args.repeats,
        "machine": info,
        "results": rows,
        "targets": targets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    text = [*lines, *(json.dumps(r) for r in rows), *(json.dumps(t) for t in targets)]
    args.out.with_suffix(".txt").write_text("\n".join([f"$ {report['command']}", *text]) + "\n")
    print(f"\nwrote {args.out} and {args.out.with_suffix('.txt')}")
    return 0 if all(t["met"] for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
