"""The ``unidrop`` command: ``backends``, ``check NAME``, ``demo`` and ``bench``."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__, hints, registry
from .arguments import STREAM_VERSION, check_p, check_uint64, type_name
from .backend import Backend

#: What ``unidrop --help`` says the command is.
DESCRIPTION = (
    "unidrop: dropout defined once and exactly, the same mask for the same seed on every backend. "
    "Commands: backends, check NAME, demo, bench; 'unidrop COMMAND --help' for each."
)


def _backends(_: argparse.Namespace) -> int:
    """Print what is installed (backend, distribution, versions, devices) and which backend serves what."""
    infos = registry.list_backends()
    for failure in registry.failures():
        print(f"installed but failed to load: {failure.label}: {failure.error}")
    for entry in registry.ignored():
        print(f"installed but ignored: {entry.plugin.label}: {entry.reason}")
    if not infos:
        print(f"no unidrop backend is installed; try {hints.install_command('numpy')}")
        return 1
    print(f"unidrop {__version__}, mask stream v{STREAM_VERSION}")
    rows = [("backend", "distribution", "framework", "devices")]
    samples = []
    notes: list[str] = []
    for info in infos:
        backend = registry.get_backend(info.name)
        # a framework that fails to import, or a backend that fails to load, is reported, not fatal
        note = ""
        try:
            framework = f"{info.framework} {backend.version()}"
        except Exception as error:
            framework, devices = f"{info.framework} (unavailable: {_named(error)})", "-"
        else:
            try:
                devices = ", ".join(backend.implementation().devices())
            except Exception as error:
                devices = f"- (the backend failed to load: {_named(error)})"
            else:
                note = _describe(backend)
            with contextlib.suppress(Exception):  # an adapter's fault only leaves its type out below
                samples.append(_sample_array(backend))
        rows.append((info.name, f"{info.distribution} {info.version}", framework, devices))
        notes.append(note)
    _print_table(rows)
    for info, note in zip(infos, notes, strict=True):
        if note:
            print(f"  {info.name}: {note}")
    print("which backend serves which array type (docs/backend-guide.md):")
    served = [("array type", "served by", "also accepted by")]
    for sample in samples:
        kind = type_name(sample)
        if sample is not None and kind not in [row[0] for row in served]:
            served.append((kind, *_served(sample)))
    _print_table(served)
    return 0


def _served(sample: Any) -> tuple[str, str]:
    """Which backend really serves ``sample`` (the one dispatch uses: the first accepting it that loads
    and reads it), and the others accepting it, those that failed on it marked so."""
    found = registry.accepting(sample)
    with warnings.catch_warnings():  # the table says it: no warning about the same conflict or fault
        warnings.filterwarnings("ignore", message="several unidrop backends accept")
        warnings.filterwarnings("ignore", message=".*; trying the next backend")
        try:
            server: Any = registry.server(sample)
        except Exception:  # every backend accepting it failed on it
            server = None
    if server is None or server not in found:
        return "none", ", ".join(f"{plugin.name} (failed on it)" for plugin in found) or "-"
    index = found.index(server)
    others = [f"{plugin.name} (failed on it)" for plugin in found[:index]]
    others += [plugin.name for plugin in found[index + 1 :]]
    return server.name, ", ".join(others) or "-"


def _named(error: BaseException) -> str:
    """``Type: message``, or the type alone for an exception without a message."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _describe(backend: Backend) -> str:
    """The implementation's own line on how it computes here ("" if it has none or fails)."""
    try:
        return str(backend.implementation().describe())
    except Exception as error:  # a plugin's fault is reported, not fatal
        return f"describe() failed: {type(error).__name__}: {error}"


def _sample_array(backend: Backend) -> Any:
    """A small array of the backend's own type (None without NumPy or a suite adapter to make it)."""
    try:
        import numpy

        adapter = backend.suite_adapter()
    except (ImportError, NotImplementedError):
        return None
    return adapter.from_numpy(numpy.zeros(2, numpy.float32), "float32")


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print(
            "  "
            + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
        )


#: The modules the conformance suite imports; the ``conformance`` extra installs them.
SUITE_MODULES = ("pytest", "hypothesis", "numpy")
#: How to install them, from an index and from a checkout of the project.
SUITE_INSTALL = (
    "from a checkout of unidrop: pip install './[conformance]' "
    "(once unidrop is on an index: pip install 'unidrop[conformance]')"
)


def _check(args: argparse.Namespace) -> int:
    """Run the conformance suite on one backend; the exit status is pytest's.

    pytest runs in a fresh interpreter, so that unidrop is imported under its assertion
    rewriting (in this process unidrop is already imported). A missing name, an unknown
    backend or a missing test tool is one line on stderr and exit status 2.
    """
    if args.name is None:
        names = ", ".join(info.name for info in registry.list_backends()) or "none"
        return _usage_error("check", f"name the backend to check (installed: {names})")
    registry.get_backend(args.name)  # a clear error for an unknown name before pytest starts
    for extra in args.pytest_args:  # pytest would take the last one given: another backend than NAME
        if extra == "--unidrop-backend" or extra.startswith("--unidrop-backend="):
            return _usage_error(
                "check", f"{extra!r}: the backend is the NAME argument ({args.name!r}); pass it once, as NAME"
            )
    missing = [name for name in SUITE_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        needs = f"the conformance suite needs {', '.join(missing)}"
        return _usage_error("check", f"{needs}; install its extra: {SUITE_INSTALL}")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--pyargs",
        "unidrop.conformance",
        f"--unidrop-backend={args.name}",
        "--hypothesis-profile=unidrop-ci",
        "-p",
        "no:cacheprovider",
        *args.pytest_args,
    ]
    return subprocess.call(command)


def _usage_error(command: str, message: str) -> int:
    """Print ``unidrop COMMAND: error: MESSAGE`` to stderr; return exit status 2."""
    print(f"unidrop {command}: error: {message}", file=sys.stderr)
    return 2


def _demo(args: argparse.Namespace) -> int:
    """Show one seed giving one mask (and one output) on every installed backend and device."""
    from .demo import PNG_INSTALL, check_png_name, run_demo

    seed, p = check_uint64(args.seed, "seed"), check_p(args.p)
    for name in args.backend or ():
        registry.get_backend(name)  # a clear error for an unknown name before anything runs
    if args.png is not None:
        check_png_name(args.png)  # a wrong name is named before a missing matplotlib
        if importlib.util.find_spec("matplotlib") is None:
            return _usage_error("demo", f"--png needs matplotlib: {PNG_INSTALL}")
    names = list(dict.fromkeys(args.backend)) if args.backend else None  # a repeated name shows once
    return run_demo(seed=seed, p=p, names=names, png=args.png)


#: The exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130


def _bench(args: argparse.Namespace) -> int:
    """Time unidrop beside each framework's own dropout and a copy; write JSON, Markdown and plots.

    Ctrl-C writes what was measured so far (marked interrupted) and exits with status 130.
    """
    if importlib.util.find_spec("numpy") is None:
        return _usage_error("bench", "unidrop bench needs numpy (pip install numpy)")
    from .bench import Options, parse_backends, run

    if not args.out.strip():
        raise ValueError(f"--out {args.out!r}: name a folder (the default is ./unidrop-bench/)")
    max_log2 = args.max_log2 if args.max_log2 is not None else (20 if args.quick else 24)
    options = Options(
        out=Path(args.out),
        max_log2=max_log2,
        quick=args.quick,
        reps=args.reps if args.reps is not None else (3 if args.quick else 7),
        p=args.p,
        backends=parse_backends(args.backend),
        devices=args.devices,
    )
    result = run(options)
    if result["meta"]["interrupted"]:
        print(f"unidrop bench: interrupted: partial results written to {options.out}", file=sys.stderr)
        return INTERRUPTED
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unidrop", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"unidrop {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("backends", help="list installed backends, versions and devices").set_defaults(
        run=_backends
    )
    check = commands.add_parser("check", help="run the conformance suite on one backend")
    check.add_argument("name", nargs="?", help="backend name, as `unidrop backends` lists it")
    check.add_argument("pytest_args", nargs=argparse.REMAINDER, help="further pytest arguments")
    check.set_defaults(run=_check)
    demo = commands.add_parser("demo", help="one seed, one mask, on every installed backend")
    demo.add_argument("--seed", type=int, default=42, help="the seed, an integer in [0, 2**64) (default 42)")
    demo.add_argument("--p", type=float, default=0.5, help="dropout probability in [0, 1] (default 0.5)")
    demo.add_argument("--backend", action="append", metavar="NAME", help="only this backend (repeatable)")
    demo.add_argument(
        "--png",
        metavar="FILE",
        help="also save it as a PNG picture in FILE, a name ending in .png (needs matplotlib)",
    )
    demo.set_defaults(run=_demo)
    bench = commands.add_parser("bench", help="time unidrop beside each framework's dropout and a copy")
    bench.add_argument("--quick", action="store_true", help="sizes 2^4, 2^10, 2^16, 2^20, float32, 3 reps")
    bench.add_argument("--max-log2", type=int, help="largest size, log2 (4..30; default 24, quick 20)")
    bench.add_argument("--reps", type=int, help="interleaved repetitions per median (default 7, quick 3)")
    bench.add_argument("--p", type=float, default=0.5, help="dropout probability (default 0.5)")
    bench.add_argument("--backend", action="append", metavar="NAME", help="only this backend (repeatable)")
    bench.add_argument("--devices", default="all", help="cpu, gpu (the first one) or all (the default: both)")
    bench.add_argument("--out", default="unidrop-bench", help="output folder (default ./unidrop-bench/)")
    bench.set_defaults(run=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``unidrop`` console script; a bad argument exits 2 with one line."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # named by the command's own parser, with its usage line (not the top-level one)
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    if sys.stdout is None:  # started with its standard output closed (``>&-``)
        parser.exit(1, f"unidrop {args.command}: error: standard output is closed\n")
    try:
        status = int(args.run(args))
        sys.stdout.flush()  # here, not at exit: a reader gone (``| head -1``) is handled below
        return status
    except (ValueError, TypeError) as error:
        parser.exit(2, f"unidrop {args.command}: error: {error}\n")
    except BrokenPipeError:  # the reader closed the pipe: stop quietly, as other command-line tools do
        _discard_stdout()
        return 1
    except OSError as error:  # a full disk, a folder that cannot be written: one line, not a traceback
        try:
            sys.stdout.flush()
        except OSError:  # it was the standard output that failed (``> /dev/full``)
            _discard_stdout()
        parser.exit(1, f"unidrop {args.command}: error: {error}\n")


def _discard_stdout() -> None:
    """Point the standard output at the null device: what is left in its buffer raises no second
    error at exit."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
