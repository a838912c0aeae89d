"""What ``unidrop bench`` writes: the machine it ran on, ``bench.json``, ``bench.md`` and the plots."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from .cases import FORWARD_COPY
from .gpus import model_of

#: What to install for the plots (the ``bench`` extra brings matplotlib and rich).
PLOT_INSTALL = "pip install matplotlib (or, from a checkout of unidrop, pip install './[bench]')"
#: The files ``unidrop bench`` writes in its folder: these two, and ``bench-*.png``.
RESULT_FILES = ("bench.json", "bench.md")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


#: Environment variables that change what a benchmark measures (threads, kernels, devices).
SETTING_PREFIXES = ("UNIDROP_", "OMP_", "MKL_", "XLA_", "JAX_", "CUDA_VISIBLE_DEVICES", "TRITON_")


def settings() -> dict[str, str]:
    """The environment variables set for this run that change what is measured, by name."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(SETTING_PREFIXES)}


def load_average() -> float | None:
    """The 1-minute load average (other users of the machine), None where the OS has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def machine(gpus: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The machine and Python the run is on, with ``gpus`` (see :func:`.gpus.describe`) where given."""
    found: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
    }
    if gpus:
        found["gpus"] = gpus
    return found


def device_title(meta: dict[str, Any], backend: str, device: str) -> str:
    """What ``backend``'s ``device`` is, for a title: the CPU's model on a CPU, the GPU's model (or the
    device's name where it is unknown) on another device."""
    if device.startswith("cpu"):
        return str(meta["machine"]["cpu"])
    model = model_of(meta["machine"].get("gpus", ()), backend, device)
    return f"{model} ({device})" if model else device


def fmt(seconds: float) -> str:
    """A duration in µs or ms."""
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def _title(row: dict[str, Any]) -> str:
    return f"{row['backend']} on {row['device']}, {row['dtype']}, {row['mode']}"


def groups(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The rows by (backend, device, dtype, mode), in the order they were measured."""
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(_title(row), []).append(row)
    return found


def _plain(value: Any) -> str:
    """A value of the results' meta as readable text: lists joined by commas, a mapping as
    ``key value`` pairs, no Python reprs."""
    if isinstance(value, dict):
        return ", ".join(f"{key} {_plain(item)}" for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(item) for item in value) or "none"
    return "n/a" if value is None else str(value)


def meta_lines(meta: dict[str, Any]) -> list[str]:
    """The meta of a run as a Markdown list; a mapping (machine, versions, options) as a nested list,
    a list of mappings (the GPUs) as one nested line each."""
    lines = []
    for key, value in meta.items():
        if isinstance(value, dict):
            lines.append(f"- {key}:")
            for inner, item in value.items():
                if isinstance(item, list) and item and all(isinstance(entry, dict) for entry in item):
                    lines += [f"  - {inner}:"] + [f"    - {_plain(entry)}" for entry in item]
                else:
                    lines.append(f"  - {inner}: {_plain(item)}")
        else:
            lines.append(f"- {key}: {_plain(value)}")
    return lines


def markdown(result: dict[str, Any]) -> str:
    """The run's tables: a median per call of each implementation, unidrop / framework and, where the
    table has a copy of the same mode, unidrop / copy (never over :data:`FORWARD_COPY`)."""
    meta = result["meta"]
    lines = ["# unidrop bench", ""]
    if meta.get("interrupted"):
        why = f" (stopped by {meta['stopped by']})" if meta.get("stopped by") else ""
        lines += [
            f"**Interrupted{why}: partial results, {len(result['rows'])} rows measured before it.**",
            "",
        ]
    lines += meta_lines(meta)
    lines += [
        "",
        "Ratios are unidrop's time over the other's: below 1.00x unidrop is faster. `naive` is the array "
        "library's own expression of dropout (a uniform draw compared with p, a multiply).",
    ]
    for title, group in groups(result["rows"]).items():
        own = group[0]["framework"]
        names = list(group[0]["seconds"])
        ratios = [own] + (["copy"] if "copy" in names else [])
        lines += ["", f"## {title}, p = {meta['p']} (median per call)", ""]
        lines += ["| elements | " + " | ".join(names + [f"unidrop / {name}" for name in ratios]) + " |"]
        lines += ["|---" * (len(names) + len(ratios) + 1) + "|"]
        for row in group:
            s = row["seconds"]
            cells = [fmt(s[name]) for name in names] + [f"{s['unidrop'] / s[name]:.2f}x" for name in ratios]
            lines += [f"| 2^{row['log2_size']} | " + " | ".join(cells) + " |"]
        if FORWARD_COPY in names:
            lines += [
                "",
                f"{FORWARD_COPY}: the forward copy alone, for scale (no ratio: the others run backward too).",
            ]
    return "\n".join(lines) + "\n"


def prepare(out: Path) -> list[str]:
    """Make the output folder ``out`` (and its parents) if needed, before anything is timed;
    ValueError naming it where it cannot be made or written (a file there, no permission).

    Returns the files an earlier run recorded writing there (see :func:`earlier_files`).
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise ValueError(f"--out {str(out)!r} is not a folder ({error.strerror}): name a folder") from error
    except OSError as error:
        raise ValueError(f"--out {str(out)!r}: cannot make the folder ({error.strerror})") from error
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out {str(out)!r}: the folder is not writable")
    return earlier_files(out)


def is_result_file(name: str) -> bool:
    """True for a name bench writes in its folder: ``bench.json``, ``bench.md``, ``bench-*.png``."""
    plain = name == Path(name).name and name not in ("", ".", "..")
    return plain and (name in RESULT_FILES or (name.startswith("bench-") and name.endswith(".png")))


def earlier_files(out: Path) -> list[str]:
    """The files an earlier run wrote in ``out``, as its ``bench.json`` lists them (``meta.files``),
    bench's own names only; none where there is no such list."""
    try:
        files = json.loads((out / "bench.json").read_text())["meta"]["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if not isinstance(files, list):
        return []
    return [name for name in files if isinstance(name, str) and is_result_file(name)]


def remove_stale(out: Path, earlier: list[str], written: list[Path]) -> list[Path]:
    """Remove from ``out`` the files of ``earlier`` (an earlier run's) that this run did not write
    again; return their paths. Nothing else is touched."""
    rewritten = {path.name for path in written}
    removed = []
    for name in earlier:
        path = out / name
        if name not in rewritten and is_result_file(name) and path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def write(result: dict[str, Any], out: Path) -> list[Path]:
    """Write ``bench.json`` and ``bench.md`` under ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in RESULT_FILES]
    paths[0].write_text(json.dumps(result, indent=1) + "\n")
    paths[1].write_text(markdown(result))
    return paths


def plot(result: dict[str, Any], out: Path) -> list[Path]:
    """One PNG per backend and device under ``out``: ns per element against elements, a panel per
    dtype and mode, a line per implementation with the copy drawn thick and grey.

    Raises ImportError without matplotlib.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_target: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for title, group in groups(result["rows"]).items():
        target = f"{group[0]['backend']}-{group[0]['device']}".replace(":", "")
        by_target.setdefault(target, {})[title] = group
    paths = []
    for target, panels in by_target.items():
        columns = min(2, len(panels))
        count = -(-len(panels) // columns)
        fig, axes = plt.subplots(count, columns, figsize=(6 * columns, 4.2 * count), squeeze=False)
        for ax, (title, group) in zip(axes.flat, panels.items(), strict=False):
            sizes = [2 ** row["log2_size"] for row in group]
            for name in group[0]["seconds"]:
                ns = [row["seconds"][name] * 1e9 / n for row, n in zip(group, sizes, strict=True)]
                style: dict[str, Any] = {"linewidth": 2}
                if name in ("copy", FORWARD_COPY):
                    style = {"color": "0.55", "linewidth": 3}
                elif name != "unidrop":
                    style = {"linestyle": "--"}
                ax.plot(sizes, ns, marker="o", markersize=3, label=name, **style)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set(title=title, xlabel="elements", ylabel="ns per element")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        for ax in list(axes.flat)[len(panels) :]:
            ax.remove()
        meta, first = result["meta"], next(iter(panels.values()))[0]
        fig.suptitle(
            f"unidrop bench, p = {meta['p']}: {device_title(meta, first['backend'], first['device'])}"
        )
        fig.tight_layout()
        path = out / f"bench-{target}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
