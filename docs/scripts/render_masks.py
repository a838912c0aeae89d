"""Draw docs/images/masks.png: what a mask, a stream and ``broadcast_dims`` do.

Every mask in the picture comes from ``unidrop.dropout(..., return_mask=True)`` on the NumPy
backend, so the picture shows the real implementation. ``nox -s docs`` runs this before building
the site: ``python docs/scripts/render_masks.py [OUTPUT]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import unidrop

SHAPE = (4, 16)
SEED, P = 42, 0.5
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "images" / "masks.png"

#: Each panel: its title and the keyword arguments of its call.
CALLS: list[tuple[str, dict[str, object]]] = [
    ("stream=0", {"stream": 0}),
    ("stream=1: an independent mask", {"stream": 1}),
    ("broadcast_dims=(0,): one value per column", {"broadcast_dims": (0,)}),
    ("broadcast_dims=(1,): one value per row", {"broadcast_dims": (1,)}),
]


def panels() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Each panel's title, the mask ``unidrop.dropout`` returns, and its output on ``ones(SHAPE)``."""
    x = np.ones(SHAPE, dtype=np.float32)
    drawn = []
    for title, kwargs in CALLS:
        y, keep = unidrop.dropout(x, P, seed=SEED, return_mask=True, backend="numpy", **kwargs)
        drawn.append((f"{title}\nmask shape {keep.shape}", keep, y))
    return drawn


def render(path: Path) -> None:
    """Draw the panels (the output, dark where kept) into a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(9, 3.6), layout="constrained")
    for axis, (title, _, y) in zip(axes.flat, panels(), strict=True):
        axis.imshow(y != 0, cmap="Greys", vmin=-0.4, vmax=1, interpolation="nearest")
        axis.set_title(title, fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(f"y = unidrop.dropout(ones{SHAPE}, p={P}, seed={SEED}, ...): dark = kept", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, metadata={"Software": None})  # no version stamp: same bytes each build
    plt.close(figure)


if __name__ == "__main__":
    render(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT)
