"""CPU benchmark of unidrop-torch against torch's own dropout, side by side in one run.

    python benchmarks/cpu_torch.py                 # 2**24 elements, float32 and bfloat16
    python benchmarks/cpu_torch.py --out r.json    # where the JSON goes (a .txt goes beside it)

Wall-clock medians of copy, torch F.dropout forward and forward+backward, and unidrop forward
and forward+backward, with the ratios (target: unidrop no slower than F.dropout). Checks first
that unidrop's output is exact at sampled indices against the pure-Python reference.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import unidrop_torch

from unidrop import arguments, reference
from unidrop.philox import element_word

P = 0.5
SEED, STREAM = 1234, 5


def interleaved_medians(calls: dict[str, Callable[[], object]], warmup: int, repeat: int) -> dict[str, float]:
    """Median ms per call of each entry, timed round-robin in a shuffled order each round."""
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls)
    shuffler = random.Random(0)
    for _ in range(repeat):
        shuffler.shuffle(order)
        for name in order:
            begin = time.perf_counter()
            calls[name]()
            times[name].append((time.perf_counter() - begin) * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


def exact_at_samples(x: torch.Tensor) -> bool:
    y = unidrop_torch.dropout(x, P, seed=SEED, stream=STREAM)
    n = x.numel()
    rng = random.Random(0)
    indices = sorted({*range(n - 8, n), *(rng.randrange(n) for _ in range(2000))})
    name = str(x.dtype).removeprefix("torch.")
    t = arguments.threshold(P)
    got = y.reshape(-1)[indices].double()
    values = x.reshape(-1)[indices].double().tolist()
    want = [
        reference.scaled(v, name, P) if element_word(SEED, STREAM, i) >= t else 0.0
        for i, v in zip(indices, values, strict=True)
    ]
    return bool(torch.equal(got, torch.tensor(want, dtype=torch.float64)))


def measure(dtype: torch.dtype, n: int, warmup: int, repeat: int) -> dict[str, float]:
    x = torch.randn(n, dtype=dtype)
    grad = torch.randn(n, dtype=dtype)
    out = torch.empty_like(x)
    leaf = x.detach().requires_grad_(True)

    def torch_dropout(a: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.dropout(a, P, training=True)

    def unidrop_dropout(a: torch.Tensor) -> torch.Tensor:
        return unidrop_torch.dropout(a, P, seed=SEED, stream=STREAM)

    def fwd_bwd(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], object]:
        return lambda: torch.autograd.grad(fn(leaf), leaf, grad)

    calls: dict[str, Callable[[], object]] = {
        "copy": lambda: out.copy_(x),
        "torch_forward": lambda: torch_dropout(x),
        "unidrop_forward": lambda: unidrop_dropout(x),
        "unidrop_forward_seed_none": lambda: unidrop_torch.dropout(x, P),
        "torch_forward_backward": fwd_bwd(torch_dropout),
        "unidrop_forward_backward": fwd_bwd(unidrop_dropout),
    }
    return interleaved_medians(calls, warmup, repeat)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1 << 24)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    command = " ".join([Path(sys.executable).name, *sys.argv])
    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "torch_threads": str(torch.get_num_threads()),
        "load_average_at_start": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }
    lines = [f"command: {command}", *(f"{k}: {v}" for k, v in info.items())]
    dtypes = [getattr(torch, name) for name in args.dtypes.split(",")]
    exact = {str(d).removeprefix("torch."): exact_at_samples(torch.randn(args.size, dtype=d)) for d in dtypes}
    lines.append(f"exact at 2000 sampled indices vs the reference: {exact}")
    results = {str(d).removeprefix("torch."): measure(d, args.size, args.warmup, args.repeat) for d in dtypes}
    names = list(results)
    lines.append(f"{'ms (median), ' + str(args.size) + ' elements':40}" + "".join(f"{d:>12}" for d in names))
    for key in results[names[0]]:
        lines.append(f"{key:40}" + "".join(f"{results[d][key]:12.1f}" for d in names))
    lines.append("ratios (torch ms / unidrop ms; > 1 means unidrop is faster):")
    for d in names:
        r = results[d]
        lines.append(
            f"  {d}: forward {r['torch_forward'] / r['unidrop_forward']:.2f}x, "
            f"forward+backward {r['torch_forward_backward'] / r['unidrop_forward_backward']:.2f}x"
        )
    print("\n".join(lines))
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or Path(__file__).parent / "results" / f"cpu_torch-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"command": command, "utc": stamp, "machine": info, "size": args.size, "p": P,
               "exact": exact, "ms": results}  # fmt: skip
    out.write_text(json.dumps(payload, indent=2) + "\n")
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print(f"results: {out} and {out.with_suffix('.txt')}")
    return 0 if all(exact.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
