"""``unidrop demo``: one seed gives one mask on every installed backend and device, while each
framework's own dropout gives its own.

The demo computes a list of :class:`Panel` (one 4x16 mask each, with digests and a verdict) and
then draws them: as text (:func:`render_text`, coloured by ``rich`` where it is installed and the
output is a terminal) or as a picture (:func:`save_png`, with matplotlib).
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import re
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import arguments, hints, reference, registry
from .api import dropout

SHAPE = (4, 16)
#: Width of one mask column (16 cells and a gap) and of the row labels at its left.
COLUMN, LEFT, COLUMNS_PER_ROW = 18, 8, 5
KEPT, DROPPED = "█", "·"
#: What to install for ``--png`` (the ``demo`` extra brings it, and ``rich``).
PNG_INSTALL = "pip install matplotlib (or, from a checkout of unidrop, pip install './[demo]')"


@dataclass(frozen=True)
class Panel:
    """One mask to show: who made it, the mask (a nested list of bools), its digests, a verdict.

    ``agrees`` is True or False for a unidrop backend (compared with the reference), None for the
    reference itself and for a framework's own dropout. ``keep`` is None when computing failed;
    ``note`` then says why.
    """

    label: str
    keep: list[list[bool]] | None
    mask_digest: str = ""
    output_digest: str = ""
    verdict: str = ""
    agrees: bool | None = None
    note: str = ""


@dataclass(frozen=True)
class Demo:
    """Everything the demo shows: the request, the three sections and the exit status."""

    seed: int
    p: float
    backends: list[Panel]  # the reference first, then each backend and device
    own: list[Panel]  # each framework's own dropout, same seed
    missing: list[str]  # the project's backends that are not installed

    @property
    def ok(self) -> bool:
        """True iff at least one backend ran and every backend and device agrees with the reference."""
        judged = [panel.agrees for panel in self.backends if panel.agrees is not None]
        return bool(judged) and all(judged)


def digest(data: bytes) -> str:
    """The first 12 hex digits of the SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()[:12]


def _inputs() -> Any:
    import numpy as np

    return np.arange(1, SHAPE[0] * SHAPE[1] + 1, dtype=np.float32).reshape(SHAPE)


def _mask_bytes(keep: Any) -> bytes:
    import numpy as np

    return np.asarray(keep, dtype=np.uint8).reshape(SHAPE).tobytes()


def _rows(keep: Any) -> list[list[bool]]:
    import numpy as np

    return np.asarray(keep, dtype=bool).reshape(SHAPE).tolist()  # type: ignore[no-any-return]


def reference_panel(seed: int, p: float) -> Panel:
    """The pure-Python reference of mask stream v1 on the demo's input."""
    import numpy as np

    values = _inputs()
    expected, keep = reference.dropout(values.reshape(-1).tolist(), SHAPE, "float32", p, seed)
    output = np.array(expected, dtype=np.float32).tobytes()
    return Panel("reference", _rows(keep), digest(_mask_bytes(keep)), digest(output))


def backend_panels(seed: int, p: float, names: Sequence[str] | None, ref: Panel) -> list[Panel]:
    """Each installed backend (or those in ``names``) on each of its devices, against ``ref``."""
    import numpy as np

    chosen = names if names is not None else [info.name for info in registry.list_backends()]
    panels = [
        Panel(failure.name, None, verdict="failed", agrees=False, note=f"failed to load: {failure.error}")
        for failure in registry.failures()
        if names is None or failure.name in names
    ]
    for name in chosen:
        backend = registry.get_backend(name)
        try:
            adapter = backend.suite_adapter()  # makes and reads the backend's arrays
            devices = adapter.devices()
        except NotImplementedError as error:
            panels.append(Panel(name, None, verdict="skipped", note=str(error)))
            continue
        except Exception as error:  # a framework that fails to import costs its backend alone
            panels.append(Panel(name, None, verdict="failed", agrees=False, note=_why(error)))
            continue
        for device in devices:
            label = f"{name} ({device})"
            try:
                x = adapter.from_numpy(_inputs(), "float32", device)
                y, keep = dropout(x, p, seed=seed, backend=backend, return_mask=True)
                y = np.asarray(adapter.to_numpy(y), dtype=np.float32)
                keep = np.asarray(adapter.to_numpy(keep), dtype=bool)
                mask_digest, output_digest = digest(_mask_bytes(keep)), digest(y.tobytes())
            except Exception as error:
                panels.append(Panel(label, None, verdict="failed", agrees=False, note=_why(error)))
                continue
            same = (mask_digest, output_digest) == (ref.mask_digest, ref.output_digest)
            verdict = "identical" if same else "DIFFERENT"
            panels.append(Panel(label, _rows(keep), mask_digest, output_digest, verdict, same))
    return panels


def _why(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _numpy_own(seed: int, p: float) -> list[tuple[str, Any]]:
    import numpy as np

    return [("numpy rng", np.random.default_rng(seed).random(SHAPE) >= p)]


def _torch_own(seed: int, p: float) -> list[tuple[str, Any]]:
    import torch

    devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    masks = []
    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):
        for device in devices:
            torch.manual_seed(seed)
            y = torch.nn.functional.dropout(torch.ones(SHAPE, device=device), p, training=True)
            masks.append((f"torch ({device})", (y != 0).cpu().numpy()))
    return masks


def _jax_own(seed: int, p: float) -> list[tuple[str, Any]]:
    import jax
    import numpy as np

    keep = jax.random.bernoulli(jax.random.PRNGKey(seed), 1 - p, SHAPE)
    return [("jax bernoulli", np.asarray(keep))]


def _cupy_own(seed: int, p: float) -> list[tuple[str, Any]]:
    import cupy

    if cupy.cuda.runtime.getDeviceCount() == 0:
        return []
    return [("cupy rng", cupy.asnumpy(cupy.random.default_rng(seed).random(SHAPE) >= p))]


#: Keras' backends, each with the modules it imports (Keras 3's NumPy backend borrows from SciPy
#: and JAX); Keras picks one per process (KERAS_BACKEND).
KERAS_BACKENDS = {
    "numpy": ("numpy", "scipy", "jax"),
    "jax": ("jax",),
    "torch": ("torch",),
    "tensorflow": ("tensorflow",),
}
#: Run in a fresh process with KERAS_BACKEND set: prints Keras' own dropout mask as 0s and 1s.
_KERAS_MASK = """
import sys
import keras
import numpy
seed, p, shape = int(sys.argv[1]), float(sys.argv[2]), tuple(map(int, sys.argv[3:]))
y = keras.ops.convert_to_numpy(keras.random.dropout(keras.ops.ones(shape), p, seed=seed))
print("".join("1" if kept else "0" for kept in (numpy.asarray(y) != 0).ravel()))
"""
#: Seconds a Keras backend may take to start and draw its mask.
KERAS_TIMEOUT = 120


def _keras_own(seed: int, p: float) -> list[tuple[str, Any]]:
    """Keras' own dropout for ``seed`` on each of its backends installed here (one process each)."""
    import numpy as np

    masks = []
    for backend, modules in KERAS_BACKENDS.items():
        if any(importlib.util.find_spec(module) is None for module in modules):
            continue
        args = [sys.executable, "-c", _KERAS_MASK, str(seed), repr(p), *map(str, SHAPE)]
        env = {**os.environ, "KERAS_BACKEND": backend}
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=KERAS_TIMEOUT)
        lines = done.stdout.split()
        if done.returncode != 0 or not lines or len(lines[-1]) != np.prod(SHAPE):
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"Keras on {backend} did not draw a mask: {last}")
        keep = np.array([bit == "1" for bit in lines[-1]]).reshape(SHAPE)
        masks.append((f"keras ({backend})", keep))
    return masks


#: Each framework's own dropout mask for a seed, and how it is drawn (the demo's footnote).
OWN_DROPOUT: dict[str, tuple[Callable[[int, float], list[tuple[str, Any]]], str]] = {
    "numpy": (_numpy_own, "numpy: default_rng(seed).random(shape) >= p"),
    "torch": (_torch_own, "torch: manual_seed(seed); F.dropout"),
    "jax": (_jax_own, "jax: random.bernoulli(PRNGKey(seed), 1 - p, shape)"),
    "cupy": (_cupy_own, "cupy: default_rng(seed).random(shape) >= p"),
    "keras": (_keras_own, "keras: random.dropout(ones, p, seed=seed), one process per Keras backend"),
}


def own_panels(seed: int, p: float, frameworks: Iterable[str], ref: Panel) -> tuple[list[Panel], list[str]]:
    """Each framework's own dropout for ``seed`` (those installed among ``frameworks``), and how each
    was drawn; a framework that fails here is left out, with a note."""
    panels: list[Panel] = []
    how: list[str] = []
    for framework in frameworks:
        if framework not in OWN_DROPOUT or importlib.util.find_spec(framework) is None:
            continue
        draw, description = OWN_DROPOUT[framework]
        try:
            masks = draw(seed, p)
        except Exception as error:  # no GPU, a seed the framework refuses: say so, show the rest
            panels.append(Panel(framework, None, verdict="failed", note=_why(error)))
            continue
        how.append(description)
        for label, keep in masks:
            mask_digest = digest(_mask_bytes(keep))
            verdict = "same as ref" if mask_digest == ref.mask_digest else "different"
            panels.append(Panel(label, _rows(keep), mask_digest, verdict=verdict))
    return panels, how


def collect(seed: int = 42, p: float = 0.5, names: Sequence[str] | None = None) -> tuple[Demo, list[str]]:
    """Compute the demo: every backend (or those in ``names``) against the reference, each
    framework's own dropout (of those backends' frameworks when ``names`` is given), the missing
    project backends; and the footnote saying how each framework's own mask was drawn."""
    seed, p = arguments.check_uint64(seed, "seed"), arguments.check_p(p)
    ref = reference_panel(seed, p)
    with warnings.catch_warnings():  # a backend built on another's arrays may meet the same conflict
        warnings.filterwarnings("ignore", message="several unidrop backends accept")
        backends = backend_panels(seed, p, names, ref)
    if names is None:
        frameworks = list(OWN_DROPOUT)
    else:
        frameworks = list(dict.fromkeys(registry.get_backend(name).framework for name in names))
    own, how = own_panels(seed, p, frameworks, ref)
    installed = {info.name for info in registry.list_backends()}
    missing = [name for name in hints.PROJECT_BACKENDS if name not in installed]
    return Demo(seed, p, [ref, *backends], own, missing), how


# --- text --------------------------------------------------------------------------------------

#: A line of text as (text, style) pieces; the style is a ``rich`` style name or "".
Line = list[tuple[str, str]]


def _cell(text: str) -> str:
    return text[: COLUMN - 1].ljust(COLUMN)


def label_lines(label: str) -> list[str]:
    """``label`` in lines that fit a column (COLUMN - 1 characters), broken after a hyphen or at a
    space, never inside a word (a single word longer than a column alone is broken)."""
    width, lines, current = COLUMN - 1, [], ""
    for piece in re.findall(r"[^\s-]*-+|[^\s-]+|\s+", label):  # "word-", "word", spaces
        if current and len(current + piece.rstrip()) > width:
            lines.append(current.rstrip())
            current = piece.lstrip()
        else:
            current += piece
        while len(current) > width:  # one word longer than a column
            lines.append(current[:width])
            current = current[width:]
    return [*lines, current.rstrip()] if current.strip() or not lines else lines


def note_lines(text: str) -> list[str]:
    """A note (why a mask could not be drawn) in lines of at most 100 characters, the later ones
    indented; broken at spaces only, so that no number or name is cut."""
    return textwrap.wrap(text, 100, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)


def _grid_lines(panels: Sequence[Panel], with_output: bool) -> list[Line]:
    """Masks side by side, in rows of at most COLUMNS_PER_ROW, with their digests and verdicts."""
    lines: list[Line] = []
    for start in range(0, len(panels), COLUMNS_PER_ROW):
        group = panels[start : start + COLUMNS_PER_ROW]
        labels = [label_lines(panel.label) for panel in group]
        for i in range(max(len(label) for label in labels)):
            lines.append(
                [(" " * LEFT, "")] + [(_cell(label[i] if i < len(label) else ""), "bold") for label in labels]
            )
        for row in range(SHAPE[0]):
            line: Line = [(" " * LEFT, "")]
            for panel in group:
                cells = "".join(KEPT if kept else DROPPED for kept in panel.keep[row]) if panel.keep else ""
                line.append((_cell(cells), _style(panel)))
            lines.append(line)
        lines.append([("  mask".ljust(LEFT), "")] + [(_cell(panel.mask_digest), "") for panel in group])
        if with_output:
            lines.append([("  out".ljust(LEFT), "")] + [(_cell(panel.output_digest), "") for panel in group])
        lines.append([(" " * LEFT, "")] + [(_cell(panel.verdict), _style(panel)) for panel in group])
    return [
        [(text.rstrip() if i == len(line) - 1 else text, style) for i, (text, style) in enumerate(line)]
        for line in lines
    ]


def _style(panel: Panel) -> str:
    if panel.agrees is None:
        return "yellow" if panel.verdict else ""
    return "green" if panel.agrees else "bold red"


def _notes(panels: Sequence[Panel]) -> list[Line]:
    return [
        [(text, "")]
        for panel in panels
        if panel.note
        for text in note_lines(f"  {panel.label}: {panel.note}")
    ]


def text_lines(demo: Demo, how: Sequence[str]) -> list[Line]:
    """The demo as lines of styled text, at most 100 columns wide."""
    scale = reference.round_to(arguments.scale(demo.p), "float32")
    lines: list[Line] = [
        [
            (
                f"unidrop.dropout(x, p={demo.p}, seed={demo.seed}, return_mask=True) on "
                f"x = 1..{SHAPE[0] * SHAPE[1]}, float32, shape {SHAPE}",
                "bold",
            )
        ],
        [],
        [
            ("One seed, one mask, on every backend and device: ", "bold"),
            (f"{KEPT} kept ({_scaled_by(scale)}), {DROPPED} dropped; mask, out: sha256[:12]", ""),
        ],
        *_grid_lines(demo.backends, with_output=True),
    ]
    lines += _notes(demo.backends)
    if demo.ok:
        lines.append([("Every backend and device: the same mask and output, bit for bit.", "bold green")])
    else:
        lines.append([("MISMATCH: not every backend and device agrees with the reference.", "bold red")])
    if demo.own:
        lines += [[], [(f"Each framework's own dropout, same seed {demo.seed}: each its own mask", "bold")]]
        lines += _grid_lines(demo.own, with_output=False)
        lines += _notes(demo.own)
        lines += [[(f"  {text}", "")] for text in how]
    if demo.missing:
        lines += [[], [("Not installed: add a backend with the command after its name", "bold")]]
        for name in demo.missing:
            wrapped = textwrap.wrap(hints.install_command(name), 100 - LEFT)
            lines.append([(f"  {name}".ljust(LEFT) + wrapped[0], "")])
            lines += [[(" " * LEFT + more, "")] for more in wrapped[1:]]
    return lines


#: The ASCII the mask is drawn in where standard output cannot encode KEPT and DROPPED (cp1252, ascii).
ASCII_CELLS = str.maketrans({KEPT: "#", DROPPED: "."})


def printable(lines: Sequence[Line], encoding: str | None) -> list[Line]:
    """``lines`` as text that ``encoding`` (standard output's) can write: the mask drawn in ASCII
    (``#`` kept, ``.`` dropped) where it cannot encode the two block characters, and any other
    character it lacks written as ``?``."""
    encoding = encoding or "utf-8"
    try:
        (KEPT + DROPPED).encode(encoding)
        return list(lines)
    except (UnicodeEncodeError, LookupError):
        pass

    def ascii_text(text: str) -> str:
        return text.translate(ASCII_CELLS).encode(encoding, "replace").decode(encoding)

    return [[(ascii_text(text), style) for text, style in line] for line in lines]


def render_text(lines: Sequence[Line], styled: bool) -> None:
    """Print ``lines``: coloured by ``rich`` when ``styled`` and rich is installed, plain otherwise;
    in ASCII where standard output cannot encode the mask's block characters."""
    lines = printable(lines, getattr(sys.stdout, "encoding", None))
    if styled and importlib.util.find_spec("rich") is not None:
        from rich.console import Console
        from rich.text import Text

        console = Console(highlight=False, soft_wrap=True)  # the grid is never re-wrapped
        for line in lines:
            console.print(Text.assemble(*[(text, style) for text, style in line]))
        return
    for line in lines:
        print("".join(text for text, _ in line))


# --- picture -----------------------------------------------------------------------------------


def check_png_name(path: str) -> Path:
    """``path`` as a Path if it names a PNG file (a name ending in ``.png``, any case, not a folder);
    raises ValueError naming it and why otherwise. Touches nothing on disk."""
    shown = f"--png {path!r}"
    if not path.strip():
        raise ValueError(f"{shown}: name a file ending in .png")
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{shown} is a folder: name a file ending in .png")
    if target.suffix.lower() != ".png":
        raise ValueError(f"{shown}: the name must end in .png (the demo saves PNG pictures only)")
    return target


def check_png(path: str) -> Path:
    """The ``--png`` file, checked before the demo runs: a name ending in ``.png`` (any case) that is
    not a folder, in a folder that exists (missing parents are made, as ``bench --out`` makes its
    folder) and takes a new file. Raises ValueError naming ``path`` and why otherwise."""
    shown = f"--png {path!r}"
    target = check_png_name(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"{shown}: cannot make its folder ({error.strerror})") from error
    existed = target.exists()
    try:  # the one sure test that the file can be written: open it, and take back a new one
        with target.open("ab"):
            pass
    except OSError as error:
        raise ValueError(f"{shown}: cannot write the file ({error.strerror})") from error
    if not existed:
        target.unlink()
    return target


def save_png(demo: Demo, path: str | Path) -> None:
    """Draw the two sections of the demo (masks, digests, verdicts) as a PNG at exactly ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections = [("unidrop: one seed, one mask, on every backend and device", demo.backends)]
    if demo.own:
        sections.append((f"each framework's own dropout, same seed {demo.seed}", demo.own))
    width = max(len(panels) for _, panels in sections)
    figure = plt.figure(figsize=(2.6 * width, 2.2 * len(sections) + 0.4), layout="constrained")
    for subfigure, (title, panels) in zip(figure.subfigures(len(sections), 1), sections, strict=True):
        subfigure.suptitle(title, fontsize=10)
        axes = subfigure.subplots(1, width, squeeze=False)[0]
        for axis, panel in zip(axes, [*panels, *[None] * (width - len(panels))], strict=True):
            axis.set_xticks([])
            axis.set_yticks([])
            if panel is None:
                axis.axis("off")
                continue
            if panel.keep is not None:
                axis.imshow(panel.keep, cmap="Greys", vmin=-0.4, vmax=1, interpolation="nearest")
            colour = {True: "tab:green", False: "tab:red", None: "black"}[panel.agrees]
            if panel.agrees is None and panel.verdict:
                colour = "tab:orange"
            axis.set_title(panel.label, fontsize=9)
            axis.set_xlabel(
                f"mask {panel.mask_digest}\n{panel.verdict or 'mask stream v1'}", fontsize=8, color=colour
            )
    figure.suptitle(f"dropout(x, p={demo.p}, seed={demo.seed}): dark = kept", fontsize=10)
    figure.savefig(path, format="png", dpi=110, metadata={"Software": None})
    plt.close(figure)


def run_demo(
    seed: int = 42, p: float = 0.5, names: Sequence[str] | None = None, png: str | None = None
) -> int:
    """Print the demo (and save it as a PNG at ``png``); 0 iff every backend agrees with the reference.

    ``names`` limits it to those backends (and their frameworks' own dropout). A ``png`` that
    :func:`check_png` refuses raises its ValueError before anything runs.
    """
    target = check_png(png) if png is not None else None
    demo, how = collect(seed, p, names)
    render_text(text_lines(demo, how), styled=sys.stdout.isatty())
    if target is not None:
        save_png(demo, target)
        print(f"saved {target}")
    return 0 if demo.ok else 1


def _scaled_by(scale: float) -> str:
    """How kept elements are scaled, for the legend: ``x2``; at p = 1 none is kept."""
    return f"x{scale:g}" if math.isfinite(scale) else "none at p = 1"
