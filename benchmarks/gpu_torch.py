"""GPU benchmark of unidrop-torch against torch's own dropout, side by side in one run.

    python benchmarks/gpu_torch.py                      # 2**28 elements, float32 and bfloat16
    python benchmarks/gpu_torch.py --sweep              # also time the kernel's block/warp configs
    python benchmarks/gpu_torch.py --out results.json   # where the JSON goes (a .txt goes beside it)

For each dtype it times, with CUDA events (medians of --repeat interleaved repetitions after a
warm-up, by ``unidrop bench``'s timing):
device copy (read x, write y: the memory limit), torch F.dropout forward, forward+backward,
torch.compile'd F.dropout forward, and unidrop forward, forward+backward (integer seed and
seed=None), and reports the bytes per element each saves for backward. It first checks, on the
GPU, that unidrop's output is exact (against the pure-Python reference) and that seed=None
never synchronises with the host, so a fast wrong kernel cannot pass. Then it prints every
target with its measured ratio:

* forward >= 85% of copy bandwidth           (copy ms / unidrop forward ms)
* forward+backward >= 1.5x torch's           (torch fwd+bwd ms / unidrop fwd+bwd ms)
* 0 bytes per element saved for backward     (torch saves 1)

Needs a CUDA build of torch, triton, and `pip install -e . -e backends/numpy -e backends/torch`.
``--device cpu --size N`` runs the same code on the CPU with wall-clock timing (a smoke test).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import random
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import unidrop_torch
from unidrop_torch import cuda as unidrop_cuda

import unidrop
from unidrop import arguments, reference
from unidrop.bench.timing import median_seconds, torch_timed
from unidrop.philox import element_word

P = 0.1  # the usual dropout rate of a transformer
SEED, STREAM = 1234, 5
TARGET_FORWARD_OF_COPY = 0.85
TARGET_FWD_BWD_SPEEDUP = 1.5


# -- timing --------------------------------------------------------------------------
def median_ms(calls: dict[str, Callable[[], object]], device: torch.device, reps: int) -> dict[str, float]:
    """Median milliseconds per call of each (``unidrop bench``'s timing: interleaved repetitions
    after a warm-up, CUDA events on a GPU, the CPU clock elsewhere)."""
    timed = {name: torch_timed(call, str(device)) for name, call in calls.items()}
    return {name: seconds * 1e3 for name, seconds in median_seconds(timed, reps).items()}


def saved_bytes_per_element(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> float:
    """Bytes autograd saves for backward while ``fn(x)`` runs, per element of ``x``."""
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    leaf = x.detach().requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn(leaf)
    return total / x.numel()


# -- correctness first ------------------------------------------------------------------
def check_exact(device: torch.device, big: dict[torch.dtype, torch.Tensor]) -> list[str]:
    """Exactness on the device against the pure-Python reference; returns failure messages."""
    failures = []
    generator = torch.Generator().manual_seed(0)
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        host = (torch.randn(3, 5, 7, 11, generator=generator, dtype=torch.float64) * 3).to(dtype)
        host.view(-1)[:4] = torch.tensor([math.nan, math.inf, -math.inf, -0.0], dtype=torch.float64).to(dtype)
        name = str(dtype).removeprefix("torch.")
        for dims, layout in [((), "contiguous"), ((), "channels_last"), ((1, 3), "contiguous")]:
            x = host.to(device)
            if layout == "channels_last":
                x = x.to(memory_format=torch.channels_last)
            for seed, stream, p in [(SEED, STREAM, P), ((1 << 64) - 1, 1 << 40, 0.7)]:
                y = unidrop.dropout(x, p, seed=seed, stream=stream, broadcast_dims=dims)
                expected, _ = reference.dropout(
                    host.double().reshape(-1).tolist(), tuple(host.shape), name, p, seed, stream, dims
                )
                if not _same(y.double().cpu().reshape(-1), torch.tensor(expected, dtype=torch.float64)):
                    failures.append(f"{name} {layout} dims={dims} seed={seed}: differs from the reference")
    # The benchmark-size outputs at sampled indices (and the last elements) against the reference.
    for dtype, x in big.items():
        y = unidrop.dropout(x, P, seed=SEED, stream=STREAM)
        n = x.numel()
        rng = random.Random(1)
        indices = sorted({*range(n - 8, n), *(rng.randrange(n) for _ in range(2000))})
        got = y.reshape(-1)[torch.tensor(indices, device=device)].double().cpu()
        values = x.reshape(-1)[torch.tensor(indices, device=device)].double().cpu().tolist()
        t = arguments.threshold(P)
        name = str(dtype).removeprefix("torch.")
        want = [
            reference.scaled(v, name, P) if element_word(SEED, STREAM, i) >= t else 0.0
            for i, v in zip(indices, values, strict=True)
        ]
        if not _same(got, torch.tensor(want, dtype=torch.float64)):
            failures.append(
                f"{name} 2**{int(math.log2(n))} elements: sampled outputs differ from the reference"
            )
    failures += check_past_two_pow_32(device)
    return failures


def check_past_two_pow_32(device: torch.device) -> list[str]:
    """A bfloat16 tensor of 2**32 + 4096 elements (8 GiB in, 8 GiB out): the elements around
    2**31 and 2**32 and the last ones against the reference (64-bit element offsets on the GPU;
    counters past 2**32 blocks are checked by the Triton interpreter test)."""
    if device.type != "cuda":
        return []
    n = (1 << 32) + 4096
    free, _ = torch.cuda.mem_get_info(device)
    if free < 3 * 2 * n:
        print(f"skipped the 2**32-element check: {free / 2**30:.0f} GiB free, it needs {6 * n / 2**30:.0f}")
        return []
    x = torch.ones(n, device=device, dtype=torch.bfloat16)
    y = unidrop.dropout(x, P, seed=SEED, stream=STREAM)
    del x
    indices = [*range((1 << 32) - 8, (1 << 32) + 8), *range(n - 8, n), *range((1 << 31) - 4, (1 << 31) + 4)]
    got = y[torch.tensor(indices, device=device)].double().cpu()
    del y
    t = arguments.threshold(P)
    kept = reference.scaled(1.0, "bfloat16", P)
    want = torch.tensor([kept if element_word(SEED, STREAM, i) >= t else 0.0 for i in indices])
    return (
        [] if torch.equal(got, want.double()) else ["2**32 + 4096 elements: outputs past 2**31/2**32 differ"]
    )


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    equal = (a == b) | (torch.isnan(a) & torch.isnan(b))
    equal &= (torch.signbit(a) == torch.signbit(b)) | torch.isnan(b)
    return bool(equal.all())


def check_no_sync_and_graph_capture(device: torch.device) -> list[str]:
    """seed=None must not synchronise; an explicit seed and seed=None work under CUDA graph capture."""
    if device.type != "cuda":
        return []
    failures = []
    x = torch.randn(1 << 20, device=device)
    torch.cuda.synchronize(device)
    torch.cuda.set_sync_debug_mode("error")
    try:
        unidrop.dropout(x, P)
        unidrop.dropout(x, P, seed=SEED)
    except RuntimeError as error:
        failures.append(f"a dropout call synchronised with the host: {error}")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    try:
        static_x = x.clone()
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            unidrop.dropout(static_x, P, seed=SEED)  # warm up (compiles the kernel) outside capture
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_y = unidrop.dropout(static_x, P, seed=SEED)
        graph.replay()
        torch.cuda.synchronize(device)
        if not torch.equal(static_y, unidrop.dropout(static_x, P, seed=SEED)):
            failures.append("CUDA graph replay differs from eager")
        graph_none = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph_none):
            unidrop.dropout(static_x, P)
        graph_none.replay()
        torch.cuda.synchronize(device)
    except Exception as error:  # report, do not hide the timings
        failures.append(f"CUDA graph capture failed: {type(error).__name__}: {error}")
    return failures


# -- the measurements -----------------------------------------------------------------
def measure(dtype: torch.dtype, n: int, device: torch.device, repeat: int) -> dict[str, float]:
    x = torch.randn(n, device=device, dtype=dtype)
    grad = torch.randn(n, device=device, dtype=dtype)
    out = torch.empty_like(x)
    leaf = x.detach().requires_grad_(True)

    def fwd_bwd(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], object]:
        return lambda: torch.autograd.grad(fn(leaf), leaf, grad)

    def torch_dropout(a: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.dropout(a, P, training=True)

    def unidrop_seeded(a: torch.Tensor) -> torch.Tensor:
        return unidrop_torch.dropout(a, P, seed=SEED, stream=STREAM)

    def unidrop_drawn(a: torch.Tensor) -> torch.Tensor:
        return unidrop_torch.dropout(a, P)

    compiled_torch = torch.compile(torch_dropout)
    compiled_unidrop = torch.compile(unidrop_seeded, fullgraph=True)
    calls = {
        "copy": lambda: out.copy_(x),
        "torch_forward": lambda: torch_dropout(x),
        "torch_compile_forward": lambda: compiled_torch(x),
        "unidrop_forward": lambda: unidrop_seeded(x),
        "unidrop_forward_seed_none": lambda: unidrop_drawn(x),
        "unidrop_compile_forward": lambda: compiled_unidrop(x),
        "torch_forward_backward": fwd_bwd(torch_dropout),
        "unidrop_forward_backward": fwd_bwd(unidrop_seeded),
        "unidrop_forward_backward_seed_none": fwd_bwd(unidrop_drawn),
    }
    ms: dict[str, float] = {
        **median_ms(calls, device, repeat),
        "torch_saved_bytes_per_element": saved_bytes_per_element(torch_dropout, x),
        "unidrop_saved_bytes_per_element": saved_bytes_per_element(unidrop_seeded, x),
    }
    return ms


def sweep(dtype: torch.dtype, n: int, device: torch.device, repeat: int) -> dict[str, float]:
    """Forward ms for each (elements per program, warps, Philox calls per row) config of the kernel.

    Every config must give the default config's output bit for bit (a config is speed only)."""
    x = torch.randn(n, device=device, dtype=dtype)
    size = x.element_size()
    default = unidrop_cuda.CONFIG[size]
    expected = unidrop_torch.dropout(x, P, seed=SEED)
    found = {}
    try:
        for block in (1024, 2048, 4096, 8192):
            for warps in (4, 8):
                for calls in (1, 2):
                    unidrop_cuda.CONFIG[size] = (block, warps, calls)
                    if not torch.equal(unidrop_torch.dropout(x, P, seed=SEED), expected):
                        raise AssertionError(f"config {(block, warps, calls)} changed the output")
                    one = {"config": lambda: unidrop_torch.dropout(x, P, seed=SEED)}
                    found[f"({block}, {warps}, {calls})"] = median_ms(one, device, repeat)["config"]
    finally:
        unidrop_cuda.CONFIG[size] = default
    return found


def machine(device: torch.device) -> dict[str, str]:
    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": str(torch.get_num_threads()),
    }
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = "not installed"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = props.name
        info["gpu_memory_gib"] = f"{props.total_memory / 2**30:.0f}"
        info["cuda"] = str(torch.version.cuda)
    return info


def report(results: dict[str, dict[str, float]], n: int) -> tuple[list[str], bool]:
    lines = []
    ok = True
    order = [
        ("copy", "device copy (read x + write y)"),
        ("torch_forward", "torch F.dropout forward"),
        ("torch_compile_forward", "torch.compile(F.dropout) forward"),
        ("unidrop_forward", "unidrop forward (int seed)"),
        ("unidrop_forward_seed_none", "unidrop forward (seed=None)"),
        ("unidrop_compile_forward", "torch.compile(unidrop) forward"),
        ("torch_forward_backward", "torch F.dropout forward+backward"),
        ("unidrop_forward_backward", "unidrop forward+backward (int seed)"),
        ("unidrop_forward_backward_seed_none", "unidrop forward+backward (seed=None)"),
    ]
    dtypes = list(results)
    lines.append(
        f"{'ms (median), 2**' + str(int(math.log2(n))) + ' elements':44}"
        + "".join(f"{d:>12}" for d in dtypes)
    )
    for key, label in order:
        lines.append(f"{label:44}" + "".join(f"{results[d][key]:12.3f}" for d in dtypes))
    for key, label in [
        ("torch_saved_bytes_per_element", "torch bytes/element saved for backward"),
        ("unidrop_saved_bytes_per_element", "unidrop bytes/element saved for backward"),
    ]:
        lines.append(f"{label:44}" + "".join(f"{results[d][key]:12.4f}" for d in dtypes))
    lines.append("")
    lines.append("targets:")
    for d in dtypes:
        r = results[d]
        of_copy = r["copy"] / r["unidrop_forward"]
        speedup = r["torch_forward_backward"] / r["unidrop_forward_backward"]
        speedup_none = r["torch_forward_backward"] / r["unidrop_forward_backward_seed_none"]
        fwd_vs_torch = r["torch_forward"] / r["unidrop_forward"]
        saved = r["unidrop_saved_bytes_per_element"]
        saved_total = saved * n
        checks = [
            (
                f"{d}: forward at >= {TARGET_FORWARD_OF_COPY:.0%} of copy bandwidth",
                of_copy >= TARGET_FORWARD_OF_COPY,
                f"{of_copy:.1%} of copy",
            ),
            (
                f"{d}: forward+backward >= {TARGET_FWD_BWD_SPEEDUP}x torch's",
                speedup >= TARGET_FWD_BWD_SPEEDUP,
                f"{speedup:.2f}x (seed=None {speedup_none:.2f}x)",
            ),
            (
                f"{d}: 0 bytes/element saved for backward",
                saved_total <= 16,
                f"{saved:.2g} B/element = {saved_total:.0f} B in all, the key "
                f"(torch {r['torch_saved_bytes_per_element']:.2g} B/element)",
            ),
            (f"{d}: forward faster than torch's", fwd_vs_torch > 1.0, f"{fwd_vs_torch:.2f}x"),
        ]
        for label, passed, measured in checks:
            ok &= passed
            lines.append(f"  [{'PASS' if passed else 'MISS'}] {label:52} measured {measured}")
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1 << 28, help="elements (default 2**28)")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--sweep", action="store_true", help="also time the kernel's block/warp configs")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON results file (a .txt is written beside it)"
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            "no CUDA device: torch.cuda.is_available() is False (use --device cpu --size N for a smoke test)"
        )
        return 2
    dtypes = [getattr(torch, name) for name in args.dtypes.split(",")]
    info = machine(device)
    command = " ".join([Path(sys.executable).name, *sys.argv])
    print(f"command: {command}")
    for key, value in info.items():
        print(f"{key}: {value}")

    big = {dtype: torch.randn(args.size, device=device, dtype=dtype) for dtype in dtypes}
    failures = check_exact(device, big) + check_no_sync_and_graph_capture(device)
    del big
    print("exactness and no-sync checks:", "passed" if not failures else "FAILED")
    for failure in failures:
        print("  ", failure)

    results = {str(d).removeprefix("torch."): measure(d, args.size, device, args.repeat) for d in dtypes}
    lines, ok = report(results, args.size)
    sweeps = {}
    if args.sweep:
        sweeps = {str(d).removeprefix("torch."): sweep(d, args.size, device, args.repeat) for d in dtypes}
        lines.append("")
        lines.append("kernel config sweep (forward ms; (elements per program, warps, Philox calls per row)):")
        for d, found in sweeps.items():
            best = min(found, key=found.__getitem__)
            lines.append(f"  {d}: " + ", ".join(f"{k} {v:.3f}" for k, v in found.items()))
            lines.append(f"  {d}: best {best} at {found[best]:.3f} ms (set in unidrop_torch.cuda.CONFIG)")
    print("\n".join(lines))

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or Path(__file__).parent / "results" / f"gpu_torch-{device.type}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": command,
        "utc": stamp,
        "machine": info,
        "size": args.size,
        "p": P,
        "repeat": args.repeat,
        "checks_failed": failures,
        "ms_and_bytes": results,
        "sweep": sweeps,
        "all_targets_met": ok and not failures,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    text = [f"command: {command}", *(f"{k}: {v}" for k, v in info.items()), *failures, *lines]
    out.with_suffix(".txt").write_text("\n".join(text) + "\n")
    print(f"results: {out} and {out.with_suffix('.txt')}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
