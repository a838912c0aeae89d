"""``unidrop bench``: unidrop beside each framework's own dropout and a copy, on this machine.

For every installed backend this benchmark knows (numpy, torch, jax, cupy) and its devices (the
CPU ones and the first GPU), for float32 and the 16-bit types the backend declares, and for sizes
2^4 .. 2^N elements, it times a copy, the framework's own dropout and ``unidrop.dropout`` on the
same array (forward, and forward and backward where the framework has autograd): medians over
interleaved repetitions after a warm-up, GPU timings by device events. It writes ``bench.json``,
``bench.md`` and, with matplotlib, one PNG per backend and device (see :mod:`.report`).

This package is imported by ``unidrop bench`` only; each framework only when its backend runs.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import __version__, registry
from ..arguments import STREAM_VERSION
from . import gpus, report
from .cases import OWN, calls_for
from .timing import median_seconds

#: The sizes ``--quick`` runs (log2 of the element count), at most ``--max-log2``.
QUICK_SIZES = (4, 10, 16, 20)
SMALLEST, LARGEST = 4, 30
HALVES = ("float16", "bfloat16")
#: Which devices ``--devices`` may pick: the CPU ones, the first GPU, or both.
DEVICE_CHOICES = ("all", "cpu", "gpu")
#: A bound on the bytes one element costs during a measurement (the float32 input from NumPy, the
#: framework's array, its output, mask, gradient and temporaries): a size must fit in half the memory.
BYTES_PER_ELEMENT = 64


def physical_memory() -> int | None:
    """The machine's memory in bytes, None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class Options:
    """What to run: ``max_log2`` in 4..30, ``reps`` >= 1, ``p`` in (0, 1), backend names (all if empty;
    a repeated name counts once), ``devices`` one of :data:`DEVICE_CHOICES` (the CPU, the first GPU, or
    both). ``p`` = 0 is refused: dropout then returns ``x`` itself and draws nothing, so nothing is timed."""

    out: Path
    max_log2: int = 24
    quick: bool = False
    reps: int = 7
    p: float = 0.5
    backends: tuple[str, ...] = ()
    devices: str = "all"

    def __post_init__(self) -> None:
        if self.devices not in DEVICE_CHOICES:
            raise ValueError(f"--devices must be one of {', '.join(DEVICE_CHOICES)}, not {self.devices!r}")
        if not SMALLEST <= self.max_log2 <= LARGEST:
            raise ValueError(f"--max-log2 must be in {SMALLEST}..{LARGEST}, not {self.max_log2}")
        if self.reps < 1:
            raise ValueError(f"--reps must be at least 1, not {self.reps}")
        if self.p == 0:
            raise ValueError(
                "--p must be in (0, 1), not 0: at p = 0 dropout returns x itself and draws no mask, "
                "so there is no dropout to time"
            )
        if self.p == 1:
            raise ValueError(
                "--p must be in (0, 1), not 1: at p = 1 every element is dropped (dropout writes "
                "zeros and draws no word), so there is no mask to time"
            )
        if not 0 < self.p < 1:  # NaN fails too
            raise ValueError(f"--p must be in (0, 1), not {self.p!r}")

    def recorded(self) -> dict[str, Any]:
        """The options as ``bench.json`` records them (defaults resolved; ``out`` as text)."""
        return {
            "out": str(self.out),
            "max_log2": self.max_log2,
            "quick": self.quick,
            "reps": self.reps,
            "p": self.p,
            "backends": list(self.backends) or "all installed",
            "devices": self.devices,
        }

    def sizes(self, memory: int | None = None) -> list[int]:
        """The log2 sizes to time: those asked for that fit in half of ``memory`` bytes (if given)."""
        asked = QUICK_SIZES if self.quick else range(SMALLEST, self.max_log2 + 1)
        return [
            k
            for k in asked
            if k <= self.max_log2 and (memory is None or 2**k * BYTES_PER_ELEMENT <= memory // 2)
        ]


def targets(options: Options) -> list[tuple[str, str, str]]:
    """(backend, device, dtype) for every installed backend this benchmark knows, or those named."""
    installed = [info.name for info in registry.list_backends()]
    names = list(dict.fromkeys(options.backends)) or [name for name in installed if name in OWN]
    untimed = [name for name in installed if name not in OWN]
    if untimed and not options.backends:
        print(f"not timed (unidrop bench times {', '.join(OWN)}): {', '.join(untimed)}")
    found = []
    for name in names:
        if name not in OWN:
            raise ValueError(f"unidrop bench knows the backends {', '.join(OWN)}, not {name!r}")
        implementation = registry.get_backend(name).implementation()
        devices = implementation.devices()
        gpus = [device for device in devices if not device.startswith("cpu")]
        cpus = [device for device in devices if device.startswith("cpu")]
        chosen = (cpus if options.devices != "gpu" else []) + (gpus[:1] if options.devices != "cpu" else [])
        declared = implementation.dtypes()
        dtypes = ["float32"] + ([] if options.quick else [d for d in HALVES if d in declared])
        found += [(name, device, dtype) for device in chosen for dtype in dtypes]
    if not found and options.devices == "gpu":
        raise ValueError(f"--devices gpu: no GPU here for the backends {', '.join(names) or 'installed'}")
    return found


@contextmanager
def progress(total: int) -> Iterator[Any]:
    """A function ``advance(label)`` that shows progress: a ``rich`` bar where installed, else lines."""
    if importlib.util.find_spec("rich") is not None:
        from rich.progress import Progress

        with Progress() as bar:
            task = bar.add_task("unidrop bench", total=total)
            yield lambda label: bar.update(task, advance=1, description=label)
        return
    done = [0]

    def advance(label: str) -> None:
        done[0] += 1
        print(f"[{done[0]}/{total}] {label}", flush=True)

    yield advance


def run(options: Options) -> dict[str, Any]:
    """Time everything ``options`` asks for; write the results under ``options.out``; return them.

    A KeyboardInterrupt (Ctrl-C) stops the timing: what was measured before it is written all the
    same, with ``meta["interrupted"]`` True (the caller decides the exit status). Files an earlier run
    wrote in the folder that this run does not write again are removed (see :func:`report.remove_stale`).
    """
    import numpy

    chosen = targets(options)
    earlier = report.prepare(options.out)  # before the run: a bad --out must not cost the whole run
    sizes = options.sizes(physical_memory())
    left_out = [k for k in options.sizes() if k not in sizes]
    if left_out:
        print(f"sizes left out, too large for this machine's memory: {', '.join(f'2^{k}' for k in left_out)}")
    meta: dict[str, Any] = {
        "unidrop": __version__,
        "mask stream": STREAM_VERSION,
        "options": options.recorded(),
        "machine": report.machine(gpus.describe(chosen)),
        "versions": {"numpy": numpy.__version__},
        "load average at start": report.load_average(),
        "p": options.p,
        "sizes": [2**k for k in sizes],
        "sizes left out (memory)": [2**k for k in left_out],
        "reps": options.reps,
        "timing": "median seconds per call over interleaved repetitions after a warm-up; "
        "GPU: device events (torch, CuPy), block_until_ready (JAX)",
        "interrupted": False,
        "started (UTC)": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": report.settings(),
        "kernels": {},
    }
    distributions = {info.name: info for info in registry.list_backends()}
    for name in dict.fromkeys(name for name, _, _ in chosen):
        backend = registry.get_backend(name)
        own = distributions[name].version if name in distributions else "n/a"
        meta["versions"][f"{name} backend"] = (
            f"{backend.distribution} {own}, {backend.framework} {backend.version()}"
        )
        meta["kernels"][name] = backend.implementation().describe() or "n/a"
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    stopped: BaseException | None = None
    try:
        measure(options, chosen, sizes, rows)
    except KeyboardInterrupt:
        meta["interrupted"] = True
        print(f"interrupted: writing the {len(rows)} results measured before it")
    except Exception as error:  # out of memory, a backend's fault: keep what was measured, then raise
        meta["interrupted"] = True
        meta["stopped by"] = f"{type(error).__name__}: {error}"
        print(f"stopped by {type(error).__name__}: writing the {len(rows)} results measured before it")
        stopped = error
    meta["load average at end"] = report.load_average()
    meta["wall seconds"] = round(time.perf_counter() - started, 1)
    result = {"meta": meta, "rows": rows}
    meta["files"] = list(report.RESULT_FILES)
    written = report.write(result, options.out)
    try:
        plots = report.plot(result, options.out)
    except ImportError:
        plots = []
        print(f"matplotlib is not installed: no plots ({report.PLOT_INSTALL})")
    except KeyboardInterrupt:  # while drawing: the results are written; the plots are not
        plots = []
        meta["interrupted"] = True
        report.write(result, options.out)
        print("interrupted while drawing the plots: the results are written, the plots are not")
    if plots:  # bench.json lists every file this run wrote, so that the next run knows its own
        meta["files"] += [path.name for path in plots]
        report.write(result, options.out)
    written += plots
    print(report.markdown(result), end="")  # the report itself: machine, versions, sizes, medians, ratios
    for path in written:
        print(f"wrote {path}")
    for path in report.remove_stale(options.out, earlier, written):
        print(f"removed {path} (an earlier run's, not written by this one)")
    if stopped is not None:
        raise stopped
    return result


def measure(
    options: Options, chosen: Sequence[tuple[str, str, str]], sizes: Sequence[int], rows: list[dict[str, Any]]
) -> None:
    """Time each (backend, device, dtype) of ``chosen`` at each log2 size, appending a row per mode to
    ``rows`` as it is measured (so that an interruption keeps those already done)."""
    import numpy

    with progress(len(chosen) * len(sizes)) as advance:
        for name, device, dtype in chosen:
            adapter = registry.get_backend(name).suite_adapter()
            for k in sizes:
                advance(f"{name} {device} {dtype} 2^{k}")
                values = numpy.random.default_rng(k).standard_normal(2**k).astype(numpy.float32)
                x = adapter.from_numpy(values, dtype, device)
                for mode, calls in calls_for(name, x, options.p, device).items():
                    seconds = median_seconds(calls, options.reps)
                    rows.append(
                        {
                            "backend": name,
                            "device": device,
                            "dtype": dtype,
                            "mode": mode,
                            "framework": OWN[name],
                            "log2_size": k,
                            "seconds": seconds,
                        }
                    )


def parse_backends(names: Sequence[str] | None) -> tuple[str, ...]:
    """The ``--backend`` names, each checked to be installed (a clear error otherwise), each once, in
    the order first given."""
    for name in names or ():
        registry.get_backend(name)
    return tuple(dict.fromkeys(names or ()))


__all__ = ["Options", "run"]
