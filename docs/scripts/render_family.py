"""Draw docs/images/family.png: each variant of the dropout family on one small image.

Every panel comes from the real implementation (``unidrop.dropout``, ``alpha_dropout``,
``gaussian_dropout`` and ``drop_path`` on the NumPy backend), with the same seed: the top row is
what each variant multiplies or replaces the image by (its mask, or its noise), the bottom row
its output. ``nox -s docs`` runs this before building the site:
``python docs/scripts/render_family.py [OUTPUT]``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

import unidrop

SIZE = 24
SEED, P = 7, 0.3
#: Samples in the batch that drop path draws one value for each.
BATCH = 4
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "images" / "family.png"


def image() -> np.ndarray:
    """A small float32 picture in [0, 1]: a bright disc on a diagonal gradient."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    disc = ((rows - SIZE / 2) ** 2 + (cols - SIZE / 2) ** 2 < (SIZE / 3) ** 2).astype(np.float32)
    return (0.25 * (rows + cols) / (2 * SIZE) + 0.75 * disc).astype(np.float32)


def side_by_side(batch: np.ndarray) -> np.ndarray:
    """A batch of images (N, H, W) as one strip (H, N * (W + 1) - 1), a blank column between."""
    gap = np.full((batch.shape[1], 1), np.nan, dtype=np.float32)
    pieces: list[np.ndarray] = []
    for picture in batch:
        pieces += [picture, gap]
    return np.concatenate(pieces[:-1], axis=1)


def panels() -> list[tuple[str, np.ndarray, np.ndarray, str]]:
    """Each variant's title, the mask or noise it applies, its output, and how to read the mask."""
    x = image()
    options: dict[str, Any] = {"seed": SEED, "backend": "numpy"}
    drawn = []
    y, keep = unidrop.dropout(x, P, return_mask=True, **options)
    drawn.append((f"dropout, p={P}", keep.astype(np.float32), y, "kept"))
    y, keep = unidrop.dropout(x, P, broadcast_dims=(0,), return_mask=True, **options)
    columns = np.broadcast_to(keep, x.shape).astype(np.float32)
    drawn.append(("dropout, broadcast_dims=(0,)", columns, y, "kept"))
    standard = (x - x.mean()) / x.std()  # alpha dropout keeps a standardized input's mean and variance
    y, keep = unidrop.alpha_dropout(standard, P, return_mask=True, **options)
    drawn.append((f"alpha_dropout, p={P}\n(standardized input)", keep.astype(np.float32), y, "kept"))
    y = unidrop.gaussian_dropout(x, P, **options)
    noise = unidrop.gaussian_dropout(np.ones_like(x), P, **options)  # the same noise, alone
    drawn.append((f"gaussian_dropout, p={P}", noise, y, "noise"))
    batch = np.broadcast_to(x, (BATCH, SIZE, SIZE)).copy()
    y, keep = unidrop.drop_path(batch, 0.5, return_mask=True, **options)
    mask = np.broadcast_to(keep, batch.shape).astype(np.float32)
    drawn.append((f"drop_path, p=0.5, a batch of {BATCH}", side_by_side(mask), side_by_side(y), "kept"))
    return drawn


def render(path: Path) -> None:
    """Draw the panels (mask or noise on top, output below) into a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = panels()
    greys, noise = plt.get_cmap("Greys").copy(), plt.get_cmap("viridis").copy()
    magma = plt.get_cmap("magma").copy()
    for cmap in (greys, noise, magma):
        cmap.set_bad("#9ecae1")  # the gap between the samples of a batch
    widths = [mask.shape[1] for _, mask, _, _ in drawn]
    figure, axes = plt.subplots(
        2, len(drawn), figsize=(13, 4.4), layout="constrained", gridspec_kw={"width_ratios": widths}
    )
    for column, (title, mask, y, meaning) in enumerate(drawn):
        top, bottom = axes[0, column], axes[1, column]
        top.imshow(mask, cmap=noise if meaning == "noise" else greys, interpolation="nearest")
        top.set_title(f"{title}\n{'multiplier' if meaning == 'noise' else 'mask: dark = kept'}", fontsize=8)
        bottom.imshow(y, cmap=magma, interpolation="nearest")
        bottom.set_title("output", fontsize=8)
        for axis in (top, bottom):
            axis.set_xticks([])
            axis.set_yticks([])
    title = f"The dropout family on one {SIZE}x{SIZE} image, seed={SEED} (NumPy backend)"
    figure.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, metadata={"Software": None})  # no version stamp: same bytes each build
    plt.close(figure)


if __name__ == "__main__":
    render(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT)
