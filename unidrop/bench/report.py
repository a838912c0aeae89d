"""What ``unidrop bench`` writes: the machine it ran on, ``bench.json``, ``bench.md`` and the plots."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

#: What to install for the plots (the ``bench`` extra brings matplotlib and rich).
PLOT_INSTALL = "pip install matplotlib (or, from a checkout of unidrop, pip install './[bench]')"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> float | None:
    """The 1-minute load average (other users of the machine), None where the OS has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def machine() -> dict[str, Any]:
    """The machine and Python the run is on."""
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
    }


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


def markdown(result: dict[str, Any]) -> str:
    """The run's tables: a median per call of each implementation, unidrop / framework and / copy."""
    meta = result["meta"]
    lines = ["# unidrop bench", ""]
    lines += [f"- {key}: {value}" for key, value in meta.items()]
    for title, group in groups(result["rows"]).items():
        own = group[0]["framework"]
        names = list(group[0]["seconds"])
        lines += ["", f"## {title}, p = {meta['p']} (median per call)", ""]
        lines += ["| elements | " + " | ".join(names) + f" | unidrop / {own} | unidrop / copy |"]
        lines += ["|---" * (len(names) + 3) + "|"]
        for row in group:
            s = row["seconds"]
            ratios = [f"{s['unidrop'] / s[own]:.2f}x", f"{s['unidrop'] / s['copy']:.2f}x"]
            cells = [fmt(s[name]) for name in names] + ratios
            lines += [f"| 2^{row['log2_size']} | " + " | ".join(cells) + " |"]
    return "\n".join(lines) + "\n"


def prepare(out: Path) -> None:
    """Make the output folder ``out`` (and its parents) if needed, before anything is timed;
    ValueError naming it where it cannot be made or written (a file there, no permission)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise ValueError(f"--out {str(out)!r} is not a folder ({error.strerror}): name a folder") from error
    except OSError as error:
        raise ValueError(f"--out {str(out)!r}: cannot make the folder ({error.strerror})") from error
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out {str(out)!r}: the folder is not writable")


def write(result: dict[str, Any], out: Path) -> list[Path]:
    """Write ``bench.json`` and ``bench.md`` under ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "bench.json", out / "bench.md"]
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
                if name == "copy":
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
        meta = result["meta"]
        fig.suptitle(f"unidrop bench, p = {meta['p']}: {meta['machine']['cpu']}")
        fig.tight_layout()
        path = out / f"bench-{target}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
