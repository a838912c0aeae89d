"""CPU benchmark: unidrop's NumPy backend beside NumPy, PyTorch and Keras 3 dropout.

Times, in one run with interleaved repetitions (the order rotates every repetition), the
forward dropout of one float32 vector of 2^24 elements (by default) with p = 0.5:

* unidrop's NumPy backend (``unidrop.dropout``), with its default thread count and with one;
* the naive NumPy expression ``x * (rng.random(n, dtype=float32) >= p) / (1 - p)``;
* ``torch.nn.functional.dropout`` on the CPU, if torch is importable;
* Keras 3 ``keras.random.dropout`` on its NumPy backend, if keras is importable.

It prints the machine, the versions, the size and each median (and minimum) in ms with its
ratio to the naive expression and to torch, checks the two targets (unidrop within 2.5x of
the naive expression; unidrop faster than torch), and writes the same to
``benchmarks/results/cpu_numpy.txt`` and ``.json`` together with the command that made it.

    python benchmarks/cpu_numpy.py [--log2-size 24] [--reps 21] [--p 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "numpy")  # before keras can be imported

import numpy as np

import unidrop
from unidrop.bench.report import cpu_model

RESULTS = Path(__file__).resolve().parent / "results"
#: unidrop must take at most this many times the naive NumPy expression's median.
NAIVE_FACTOR = 2.5


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def candidates(x: np.ndarray, p: float, notes: list[str]) -> dict[str, Callable[[], object]]:
    """name -> a call doing one forward dropout of ``x``."""
    import unidrop_numpy

    threads = unidrop_numpy.get_num_threads()

    def unidrop_default() -> object:
        return unidrop.dropout(x, p, seed=3)

    def unidrop_one_thread() -> object:
        unidrop_numpy.set_num_threads(1)
        try:
            return unidrop.dropout(x, p, seed=3)
        finally:
            unidrop_numpy.set_num_threads(threads)

    rng = np.random.default_rng(0)

    def naive() -> object:
        return x * (rng.random(x.size, dtype=np.float32) >= p) / (1 - p)

    calls: dict[str, Callable[[], object]] = {
        f"unidrop numpy backend ({threads} threads)": unidrop_default,
        "unidrop numpy backend (1 thread)": unidrop_one_thread,
        "naive numpy expression": naive,
    }
    try:
        import torch
    except ImportError as error:
        notes.append(f"torch not importable ({error}): torch row skipped")
    else:
        xt = torch.from_numpy(x)
        torch.manual_seed(0)
        calls[f"torch F.dropout cpu ({torch.get_num_threads()} threads)"] = lambda: (
            torch.nn.functional.dropout(xt, p, training=True)
        )
    if os.environ.get("KERAS_BACKEND") != "numpy":
        notes.append(f"KERAS_BACKEND={os.environ.get('KERAS_BACKEND')}, not numpy: keras row skipped")
    else:
        try:
            import keras
        except ImportError as error:
            notes.append(f"keras not importable ({error}): keras row skipped")
        else:
            generator = keras.random.SeedGenerator(0)
            calls["keras 3 random.dropout (numpy backend)"] = lambda: keras.random.dropout(
                x, p, seed=generator
            )
    return calls


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "numpy": np.__version__, "unidrop": unidrop.__version__}
    for module in ("torch", "keras"):
        if module in sys.modules:
            found[module] = str(getattr(sys.modules[module], "__version__", "unknown"))
    return found


def measure(
    calls: dict[str, Callable[[], object]], reps: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and process-CPU seconds per call of each candidate: one warm-up each, then ``reps``
    interleaved rounds (the starting candidate rotates from round to round)."""
    for call in calls.values():
        call()
    names = list(calls)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            cpu_start, start = time.process_time(), time.perf_counter()
            calls[name]()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu_start)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log2-size", type=int, default=24, help="elements = 2**N (default 24)")
    parser.add_argument("--reps", type=int, default=21, help="interleaved repetitions (default 21)")
    parser.add_argument("--p", type=float, default=0.5, help="drop probability (default 0.5)")
    parser.add_argument("--out", type=Path, default=RESULTS / "cpu_numpy", help="results path, no suffix")
    args = parser.parse_args(argv)

    n = 1 << args.log2_size
    x = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    notes: list[str] = []
    calls = candidates(x, args.p, notes)
    load_before = os.getloadavg()
    times, cpu_times = measure(calls, args.reps)
    load_after = os.getloadavg()

    medians = {name: statistics.median(ts) * 1e3 for name, ts in times.items()}
    unidrop_name, naive_name = next(iter(calls)), "naive numpy expression"
    torch_name = next((name for name in calls if name.startswith("torch")), None)
    rows = []
    for name, ts in times.items():
        rows.append(
            {
                "name": name,
                "median_ms": medians[name],
                "min_ms": min(ts) * 1e3,
                "cpu_median_ms": statistics.median(cpu_times[name]) * 1e3,
                "vs_naive": medians[name] / medians[naive_name],
                "vs_torch": medians[name] / medians[torch_name] if torch_name else None,
            }
        )
    targets = {
        f"unidrop <= {NAIVE_FACTOR}x naive numpy": medians[unidrop_name]
        <= NAIVE_FACTOR * medians[naive_name],
        "unidrop faster than torch F.dropout": (medians[unidrop_name] < medians[torch_name])
        if torch_name
        else None,
    }
    command = " ".join(shlex.quote(a) for a in ["python", "benchmarks/cpu_numpy.py", *sys.argv[1:]])
    env = {
        k: os.environ[k]
        for k in ("KERAS_BACKEND", "UNIDROP_NUM_THREADS", "OMP_NUM_THREADS")
        if k in os.environ
    }
    report = {
        "command": command,
        "environment": env,
        "machine": {
            "cpu": cpu_model(),
            "cpus": os.cpu_count(),
            "usable_cpus": usable_cpus(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "versions": versions(),
        "elements": n,
        "dtype": "float32",
        "p": args.p,
        "reps": args.reps,
        "results": rows,
        "targets": targets,
        "notes": notes,
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    text = render(report)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".txt").write_text(text + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


def render(report: dict) -> str:
    machine = report["machine"]
    lines = [
        f"command: {report['command']}"
        + (f"  (environment: {report['environment']})" if report["environment"] else ""),
        f"when: {report['when_utc']}",
        f"machine: {machine['cpu']}, {machine['cpus']} CPUs ({machine['usable_cpus']} usable), "
        f"{machine['platform']}",
        "load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}, after: {:.2f} {:.2f} {:.2f}".format(
            *machine["load_average_before"], *machine["load_average_after"]
        ),
        "versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
        f"size: {report['elements']} {report['dtype']} elements (2^{report['elements'].bit_length() - 1}), "
        f"p = {report['p']}, {report['reps']} interleaved repetitions, forward only",
        "",
        f"{'':46} {'median ms':>10} {'min ms':>8} {'vs naive':>9} {'vs torch':>9} {'cpu ms':>8}",
    ]
    for row in report["results"]:
        vs_torch = f"{row['vs_torch']:9.2f}" if row["vs_torch"] is not None else f"{'-':>9}"
        numbers = f"{row['median_ms']:10.1f} {row['min_ms']:8.1f} {row['vs_naive']:9.2f} {vs_torch}"
        numbers += f" {row['cpu_median_ms']:8.1f}"
        lines.append(f"{row['name']:46} {numbers}")
    lines.append("")
    lines.append(
        "median/min: wall-clock ms per call; vs naive, vs torch: ratios of medians; "
        "cpu ms: median process CPU time per call (all threads)"
    )
    for target, ok in report["targets"].items():
        lines.append(f"target {target}: {'n/a' if ok is None else 'PASS' if ok else 'FAIL'}")
    lines.extend(f"note: {note}" for note in report["notes"])
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
