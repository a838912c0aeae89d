"""Plot the committed CPU benchmark results (benchmarks/results/cpu_*.json) as docs/benchmarks-cpu.png.

    python benchmarks/plot_cpu.py

Reads only committed results; measures nothing. Needs matplotlib.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).parent / "results"
OUT = Path(__file__).parent.parent / "docs" / "benchmarks-cpu.png"


def numpy_panel() -> dict[str, float]:
    rows = json.loads((RESULTS / "cpu_numpy.json").read_text())["results"]
    return {row["name"].replace(" (numpy backend)", ""): row["median_ms"] for row in rows}


def torch_panel() -> dict[str, float]:
    ms = json.loads((RESULTS / "cpu_torch.json").read_text())["ms"]["float32"]
    keep = ["copy", "torch_forward", "unidrop_forward", "torch_forward_backward", "unidrop_forward_backward"]
    return {name.replace("_", " "): ms[name] for name in keep}


def jax_panel() -> dict[str, float]:
    data = json.loads((RESULTS / "cpu_jax.json").read_text())["median_ms"]
    ms = next(iter(data.values()))
    keep = [
        "copy (x * 2, the memory bound)",
        "bernoulli dropout (flax-style, threefry)",
        "unidrop (wide mulhi, idiv)",
        "bernoulli dropout fwd+bwd",
        "unidrop fwd+bwd (mask regenerated)",
    ]
    return {name.split(" (")[0] if "unidrop" not in name else name: ms[name] for name in keep}


def main() -> None:
    panels = {
        "NumPy (2^24 float32, forward)": numpy_panel(),
        "PyTorch CPU (2^24 float32)": torch_panel(),
        "JAX CPU under jit (2^24 float32)": jax_panel(),
    }
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for ax, (title, values) in zip(axes, panels.items(), strict=True):
        names = list(values)
        colors = ["tab:blue" if "unidrop" in n else "tab:gray" for n in names]
        ax.barh(names, [values[n] for n in names], color=colors)
        ax.invert_yaxis()
        ax.set_title(title)
        ax.set_xlabel("median ms (lower is better)")
        for i, n in enumerate(names):
            ax.text(values[n], i, f" {values[n]:.0f}", va="center")
    fig.suptitle("unidrop (blue) against each framework's own dropout, 2-core AMD EPYC")
    fig.tight_layout()
    fig.savefig(OUT, dpi=90)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
