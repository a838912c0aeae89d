"""CPU size sweep: unidrop's NumPy backend (compiled and pure-NumPy kernels) beside NumPy and torch.

For each dtype (float32, float16, bfloat16), p (0.1, 0.5) and size (2^4 .. 2^24 elements, a 1-D
array) it times, with interleaved repetitions (in a new, seeded order every repetition) and medians:

* ``copy``: ``x.copy()``, the memory limit (read x, write y);
* ``naive``: ``x * (rng.random(x.shape, float32) >= p).astype(x.dtype) / x.dtype.type(1 - p)``;
* ``unidrop``: ``unidrop.dropout(x, p, seed=1)`` with the compiled kernel (default threads);
* ``unidrop-numpy``: the same call through the pure-NumPy kernel (``UNIDROP_NUMPY_KERNEL=numpy``);
* for float16 and bfloat16, ``unidrop-float32``: ``unidrop`` on a float32 array of the same size,
  timed in the same interleaved run (the 16-bit-over-float32 targets are judged on it, so that a
  change of load between the dtypes' runs does not decide them);
* where torch is importable: ``torch`` (``F.dropout``), ``torch-fwdbwd`` (forward and backward),
  and ``unidrop-torch`` / ``unidrop-torch-fwdbwd`` (``unidrop.dropout`` on the tensor).

With ``--runs K`` the whole sweep runs K times in a row and each cell is the median of the runs'
medians; each target's figure is then the median of the runs' ratios (a ratio is taken within one
run, from two medians measured side by side). On a shared machine one run's cell can be off by
tens of per cent for a few seconds of a neighbour's load; runs minutes apart do not share that.

It prints the machine, versions and every median, and writes ``benchmarks/results/cpu_sizes.json``
and ``cpu_sizes.md`` (a table per dtype and p, and issue 11's targets with the figures that judge
them), and, where matplotlib is installed (it is optional: not a dependency of anything here), the
plot ``docs/benchmarks-cpu-sizes.png``: time per element against size, one line per
implementation, the copy drawn in, one panel per dtype and p.

    python benchmarks/cpu_sizes.py [--sizes 4 10 16 20 24] [--reps 7] [--runs 1] [--dtypes float32 ...]
    python benchmarks/cpu_sizes.py --replot     # the .md and the plot again, from the .json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

import unidrop
from unidrop.bench.report import cpu_model
from unidrop.bench.timing import Timed, median_seconds

RESULTS = Path(__file__).resolve().parent / "results"
PLOT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks-cpu-sizes.png"
#: Each timed repetition runs the call this long at least (small sizes repeat it many times).


def numpy_backends() -> tuple[unidrop.Backend, unidrop.Backend]:
    """The registered NumPy backend (compiled kernel) and a second instance on the pure-NumPy kernel."""
    from unidrop_numpy.backend import NumpyBackend

    compiled = unidrop.get_backend("numpy")
    saved = os.environ.get("UNIDROP_NUMPY_KERNEL")
    os.environ["UNIDROP_NUMPY_KERNEL"] = "numpy"
    try:
        fallback = NumpyBackend()
        fallback.implementation()  # reads the setting now
    finally:
        if saved is None:
            del os.environ["UNIDROP_NUMPY_KERNEL"]
        else:
            os.environ["UNIDROP_NUMPY_KERNEL"] = saved
    return compiled, fallback


def numpy_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def candidates(x: np.ndarray, p: float, torch_mod) -> dict[str, Callable[[], object]]:
    compiled, fallback = numpy_backends()
    rng = np.random.default_rng(0)
    scale = x.dtype.type(1 - p)
    calls: dict[str, Callable[[], object]] = {
        "copy": x.copy,
        "naive": lambda: x * (rng.random(x.shape, np.float32) >= p).astype(x.dtype) / scale,
        "unidrop": lambda: unidrop.dropout(x, p, seed=1, backend=compiled),
        "unidrop-numpy": lambda: unidrop.dropout(x, p, seed=1, backend=fallback),
    }
    if x.dtype != np.float32:  # the same call on float32, in the same interleaved run: the dtype ratio
        x32 = x.astype(np.float32)
        calls["unidrop-float32"] = lambda: unidrop.dropout(x32, p, seed=1, backend=compiled)
    if torch_mod is not None:
        torch = torch_mod
        t = torch.from_numpy(x.view(np.uint16)).view(torch.bfloat16) if x.dtype.name == "bfloat16" else None
        t = torch.from_numpy(x) if t is None else t
        tg = t.clone().requires_grad_(True)
        F = torch.nn.functional

        def fwdbwd(fn: Callable[[object], object]) -> Callable[[], object]:
            def run() -> object:
                y = fn(tg)
                y.sum().backward()
                tg.grad = None
                return y

            return run

        calls["torch"] = lambda: F.dropout(t, p, training=True)
        calls["torch-fwdbwd"] = fwdbwd(lambda a: F.dropout(a, p, training=True))
        try:
            unidrop.dropout(t, p, seed=1)
        except Exception as error:  # no torch backend installed: the torch columns are F.dropout alone
            _say_once(f"unidrop on torch unavailable: {type(error).__name__}: {error}")
        else:
            calls["unidrop-torch"] = lambda: unidrop.dropout(t, p, seed=1)
            calls["unidrop-torch-fwdbwd"] = fwdbwd(lambda a: unidrop.dropout(a, p, seed=1))
    return calls


_said: set[str] = set()


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        print(f"({message})")


def time_calls(calls: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Median seconds per call of each, with interleaved repetitions (``unidrop.bench``'s timing)."""
    return median_seconds({name: Timed(call) for name, call in calls.items()}, reps)


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 10, 16, 20, 24], help="log2 sizes")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument(
        "--runs", type=int, default=1, help="sweeps in a row; each cell is the median of the runs' medians"
    )
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float16", "bfloat16"])
    parser.add_argument("--ps", type=float, nargs="+", default=[0.1, 0.5])
    parser.add_argument("--no-torch", action="store_true", help="leave torch out even if importable")
    parser.add_argument("--out", default="cpu_sizes", help="file stem under benchmarks/results/")
    parser.add_argument("--plot", type=Path, default=PLOT, help="where the PNG goes (needs matplotlib)")
    parser.add_argument("--replot", action="store_true", help="measure nothing: redraw from the .json")
    args = parser.parse_args(argv)
    # refused before anything is timed (a late failure would lose the whole sweep)
    if args.reps < 1 or args.runs < 1:
        parser.error(f"--reps and --runs must be at least 1, got {args.reps} and {args.runs}")
    if not all(0 <= k <= 30 for k in args.sizes):
        parser.error(f"--sizes are log2 sizes in 0..30, got {args.sizes}")
    if not all(0 < p < 1 for p in args.ps):
        parser.error(f"--ps must be in (0, 1) (at 0 nothing is drawn, so nothing is timed), got {args.ps}")
    unknown = [d for d in args.dtypes if d not in ("float32", "float16", "bfloat16")]
    if unknown:
        parser.error(f"--dtypes are float32, float16 and bfloat16, got {unknown}")
    if "bfloat16" in args.dtypes and importlib.util.find_spec("ml_dtypes") is None:
        parser.error("bfloat16 needs ml_dtypes (pip install ml_dtypes), or leave it out of --dtypes")
    if args.replot:
        saved = json.loads((RESULTS / f"{args.out}.json").read_text())
        (RESULTS / f"{args.out}.md").write_text(markdown(saved["meta"], saved["rows"]))
        draw(saved["meta"], saved["rows"], args.plot)
        return 0
    torch_mod = None
    if not args.no_torch:
        try:
            import torch as torch_mod
        except ImportError:
            torch_mod = None
    from unidrop_numpy import get_num_threads

    meta = {
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": getattr(torch_mod, "__version__", None),
        "unidrop": unidrop.__version__,
        "kernel": unidrop.get_backend("numpy").implementation().describe(),
        "threads": get_num_threads(),
        "load average at start (other users of the machine)": os.getloadavg()[0],
        "sizes": [2**k for k in args.sizes],
        "reps": args.reps,
        "runs": args.runs,
    }
    for key, value in meta.items():
        print(f"{key}: {value}")
    runs: list[list[dict]] = []
    for run in range(args.runs):
        rows = []
        for dtype in args.dtypes:
            for p in args.ps:
                for k in args.sizes:
                    x = (
                        np.random.default_rng(k)
                        .standard_normal(2**k)
                        .astype(np.float32)
                        .astype(numpy_dtype(dtype))
                    )
                    medians = time_calls(candidates(x, p, torch_mod), args.reps)
                    rows.append({"dtype": dtype, "p": p, "log2_size": k, "seconds": medians})
                    cells = ", ".join(f"{n} {fmt(s)}" for n, s in medians.items())
                    print(f"run {run + 1}/{args.runs} {dtype} p={p} 2^{k}: {cells}")
        runs.append(rows)
    rows = combine(runs)
    meta["load average at end"] = os.getloadavg()[0]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    (RESULTS / f"{args.out}.md").write_text(markdown(meta, rows))
    print(f"wrote {RESULTS / args.out}.json and .md")
    draw(meta, rows, args.plot)
    return 0


def combine(runs: list[list[dict]]) -> list[dict]:
    """One row per cell: ``seconds`` the median over the runs of each implementation's median, and
    (for more than one run) ``runs``, each run's medians, from which :func:`targets` takes ratios."""
    if len(runs) == 1:
        return runs[0]
    combined = []
    for cells in zip(*runs, strict=True):
        names = cells[0]["seconds"]
        seconds = {name: statistics.median(cell["seconds"][name] for cell in cells) for name in names}
        combined.append({**cells[0], "seconds": seconds, "runs": [cell["seconds"] for cell in cells]})
    return combined


def ratio(row: dict, name: str, base: str) -> float:
    """``name``'s time over ``base``'s in ``row``: the median of the runs' ratios where the row has
    several runs (each ratio from one run, whose two medians were measured side by side)."""
    if "runs" not in row:
        return row["seconds"][name] / row["seconds"][base]
    return statistics.median(run[name] / run[base] for run in row["runs"])


#: How each implementation is drawn: (label, line style); the copy is the thick grey floor.
STYLES = {
    "copy": ("copy (read x, write y)", {"color": "0.55", "linewidth": 3, "linestyle": "-"}),
    "naive": ("naive NumPy expression", {"color": "tab:orange", "linestyle": "--"}),
    "unidrop": ("unidrop NumPy, compiled kernel", {"color": "tab:blue", "linewidth": 2}),
    "unidrop-numpy": ("unidrop NumPy, pure-NumPy kernel", {"color": "tab:blue", "linestyle": ":"}),
    "unidrop-float32": ("unidrop NumPy on float32 (same size)", {"color": "tab:cyan", "linestyle": ":"}),
    "torch": ("torch F.dropout", {"color": "tab:red", "linestyle": "--"}),
    "unidrop-torch": ("unidrop torch", {"color": "tab:green", "linewidth": 2}),
    "torch-fwdbwd": ("torch F.dropout fwd+bwd", {"color": "tab:red", "linestyle": "-."}),
    "unidrop-torch-fwdbwd": ("unidrop torch fwd+bwd", {"color": "tab:green", "linestyle": "-."}),
}


def draw(meta: dict, rows: list[dict], path: Path) -> None:
    """Nanoseconds per element against elements (log-log), a panel per (dtype, p); needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot; pip install matplotlib, then --replot)")
        return
    groups = _groups(rows)
    columns = len({p for _, p in groups})
    count = -(-len(groups) // columns)
    fig, axes = plt.subplots(count, columns, figsize=(6 * columns, 4.2 * count), squeeze=False, sharex=True)
    for ax, ((dtype, p), group) in zip(axes.flat, groups.items(), strict=False):
        sizes = [2 ** row["log2_size"] for row in group]
        for name in group[0]["seconds"]:
            label, style = STYLES.get(name, (name, {}))
            ns = [row["seconds"][name] * 1e9 / n for row, n in zip(group, sizes, strict=True)]
            ax.plot(sizes, ns, marker="o", markersize=3, label=label, **style)
        ax.set(
            xscale="log", yscale="log", title=f"{dtype}, p = {p}", xlabel="elements", ylabel="ns per element"
        )
        ax.set_xscale("log", base=2)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(groups) :]:
        ax.remove()
    axes.flat[0].legend(fontsize=7)
    load = meta["load average at start (other users of the machine)"]
    fig.suptitle(
        f"unidrop CPU size sweep: {meta['machine']}, {meta['threads']} threads, load {load:.1f} at start"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def _groups(rows: list[dict]) -> dict[tuple[str, float], list[dict]]:
    groups: dict[tuple[str, float], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["dtype"], row["p"]), []).append(row)
    return groups


def targets(rows: list[dict]) -> list[str]:
    """Issue 11's targets, each with the figures of this run that judge it (float32 unless said)."""

    def at(dtype: str, p: float, k: int) -> dict | None:
        for row in rows:
            if (row["dtype"], row["p"], row["log2_size"]) == (dtype, p, k):
                return row
        return None

    several = any("runs" in row for row in rows)
    how = "each figure the median of the runs' ratios" if several else "judged on this run"
    lines = ["", f"## Issue 11's targets, {how}", ""]
    lines += ["| target | figure | met |", "|---|---|---|"]

    def add(target: str, value: float | None, limit: float) -> None:
        if value is not None:
            lines.append(f"| {target} | {value:.2f}x | {'yes' if value <= limit else 'no'} |")

    for p in sorted({row["p"] for row in rows}):
        r = at("float32", p, 24)
        if r:
            add(f"2^24 float32 p={p}: unidrop NumPy <= 2x a copy", ratio(r, "unidrop", "copy"), 2)
        for k in sorted({row["log2_size"] for row in rows if row["log2_size"] >= 10}):
            r = at("float32", p, k)
            if not r:
                continue
            add(f"2^{k} p={p}: unidrop NumPy <= naive NumPy", ratio(r, "unidrop", "naive"), 1)
            if "unidrop-torch" in r["seconds"]:
                add(f"2^{k} p={p}: unidrop torch <= F.dropout", ratio(r, "unidrop-torch", "torch"), 1)
                add(
                    f"2^{k} p={p}: unidrop torch fwd+bwd <= torch's",
                    ratio(r, "unidrop-torch-fwdbwd", "torch-fwdbwd"),
                    1,
                )
        r = at("float32", p, 4)
        if r:
            add(f"16 elements p={p}: unidrop NumPy <= 6x naive NumPy", ratio(r, "unidrop", "naive"), 6)
            if "unidrop-torch" in r["seconds"]:
                torch_ratio = ratio(r, "unidrop-torch", "torch")
                add(f"16 elements p={p}: unidrop torch <= 3x F.dropout", torch_ratio, 3)
        for half in ("float16", "bfloat16"):
            for k in sorted({row["log2_size"] for row in rows if row["log2_size"] >= 10}):
                r = at(half, p, k)
                if r and "unidrop-float32" in r["seconds"]:  # float32 timed beside it, in the same run
                    add(
                        f"2^{k} p={p}: {half} <= float32 (unidrop NumPy)",
                        ratio(r, "unidrop", "unidrop-float32"),
                        1,
                    )
    return lines


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = ["# CPU size sweep (benchmarks/cpu_sizes.py)", ""]
    # the load at the start is other users'; at the end it counts this run's own threads too
    load = meta["load average at start (other users of the machine)"]
    if load > 0.5 * (os.cpu_count() or 1):
        lines += [
            f"**The machine was busy (load average {load:.1f} at the start, on {os.cpu_count()} CPUs): the "
            "medians are inflated and noisy, and threaded runs wait for preempted helpers. Do not "
            "judge the targets on this run; rerun on a quiet machine.**",
            "",
        ]
    lines += [f"- {key}: {value}" for key, value in meta.items()]
    for (dtype, p), group in _groups(rows).items():
        names = list(group[0]["seconds"])
        per_call = "median per call" + (", median of the runs" if "runs" in group[0] else "")
        lines += ["", f"## {dtype}, p = {p} ({per_call})", ""]
        lines += ["| elements | " + " | ".join(names) + " | unidrop / copy | unidrop / naive |"]
        lines += ["|---" * (len(names) + 3) + "|"]
        for row in group:
            s = row["seconds"]
            cells = [fmt(s[n]) for n in names]
            ratios = [f"{ratio(row, 'unidrop', 'copy'):.1f}x", f"{ratio(row, 'unidrop', 'naive'):.2f}x"]
            lines += [f"| 2^{row['log2_size']} | " + " | ".join(cells + ratios) + " |"]
    lines += targets(rows)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
