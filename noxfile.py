"""Sessions: lint, typecheck, the core's tests, one conformance session per backend, the NumPy
backend on its fallback kernel, the lowest supported versions, and the documentation site.

``nox`` runs them all (the README's test command); ``nox -s "conformance(backend='torch')"``
runs one. Test tools and frameworks are pinned here, for CI, not for users.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nox
import tomllib
from packaging.requirements import Requirement

nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
XDIST = "pytest-xdist==3.8.0"
TEST_TOOLS = ["pytest==9.2.0", "hypothesis==6.170.17", XDIST]
#: pytest-xdist for the long runs: their tests are CPU-bound in one process (jit compiles, subprocesses
#: that import a framework), and CI's machine has 2 cores; each worker imports the framework once.
#: ``nox -s NAME -- -n 0`` runs in one process (a later -n wins).
PARALLEL = ["--numprocesses=auto", "--maxprocesses=4"]
#: Backends whose suite and own tests run under PARALLEL (checked there: minutes of CPU-bound tests;
#: JAX's suite, 89 s in one process, takes 69 s in two). The others' take seconds, or start process
#: pools of their own (dask's LocalCluster).
PARALLEL_BACKENDS = {"jax", "torch"}


def session(func: Callable[..., None]) -> Callable[..., None]:
    """``nox.session(func)``; where CI=true (CI's runs on a fresh clone), the session's virtual
    environment is removed when it ends, whatever the outcome.

    CI runs on a machine whose disk is shared with everything else on it: the sixteen environments
    kept to the end took 8.2 GB, one at a time they take at most 2.2 GB (porting: torch and JAX).
    """

    @functools.wraps(func)
    def run_then_discard(nox_session: nox.Session, **params: Any) -> None:
        try:
            func(nox_session, **params)
        finally:
            location = getattr(nox_session.virtualenv, "location", None)
            if os.environ.get("CI") == "true" and location:
                nox_session.log(f"CI: removing {location}")
                shutil.rmtree(location, ignore_errors=True)

    return nox.session(run_then_discard)


def parallel_for(backend: str) -> list[str]:
    """PARALLEL for the backends in PARALLEL_BACKENDS, else nothing."""
    return PARALLEL if backend in PARALLEL_BACKENDS else []


SUITE = ["--pyargs", "unidrop.conformance", "--hypothesis-profile=unidrop-ci", "-p", "no:cacheprovider"]
#: A backend's own tests subclass the suite (so that ``pytest backends/NAME/tests`` alone checks it);
#: a session that has just run SUITE leaves those subclasses out rather than run the suite twice.
NOT_THE_SUITE_AGAIN = [
    "-k",
    "not (TestNumpyConformance or TestTorchConformance or TestJaxConformance or TestCupyConformance)",
]

#: What each backend's session installs besides the backend itself: pinned, CPU builds.
BACKEND_PINS: dict[str, list[str]] = {
    "numpy": ["numpy==2.4.6", "ml_dtypes==0.7.0"],
    "torch": ["numpy==2.4.6", "torch==2.13.0", "triton==3.7.1"],
    "jax": ["numpy==2.4.6", "jax==0.10.2", "jaxlib==0.10.2", "flax==0.12.8"],
    # the generic backend: the suite on array-api-strict, its own tests on ndonnx (ONNX Runtime, CPU)
    "array_api": [
        "numpy==2.4.6",
        "array-api-compat==1.16.0",
        "array-api-strict==2.6.1",
        "ndonnx==0.23.0",
        "onnxruntime==1.32.0",
    ],
    # nvrtc lets the kernel compile checks run without a GPU (and CuPy compile without a CUDA toolkit)
    "cupy": ["numpy==2.4.6", "cupy-cuda12x==14.2.0", "nvidia-cuda-nvrtc-cu12==12.9.86"],
    # distributed: the backend's tests run a LocalCluster of worker processes
    "dask": ["numpy==2.4.6", "ml_dtypes==0.7.0", "dask==2026.8.0", "distributed==2026.8.0"],
}
#: The example backend's framework (examples/xarray, the guide's model): pure Python but pandas.
EXAMPLE_PINS = ["xarray==2026.9.0", "pandas==3.1.1"]
#: ``unidrop demo --png`` and the docs' mask picture draw with it.
MATPLOTLIB = "matplotlib==3.11.2"
#: The documentation site: MkDocs (the pages are Markdown already, and --strict checks their links),
#: with mkdocstrings reading docstrings from the source statically (no framework is imported).
DOCS_PINS = [
    "mkdocs==1.6.1",
    "mkdocs-material==9.8.1",
    "mkdocstrings==1.0.8",
    "mkdocstrings-python==2.0.11",
    MATPLOTLIB,
]
#: Backends whose arrays exist only on a GPU: without one, the suite is skipped (saying why) and
#: only the backend's own tests run (host-compiled kernel checks; their GPU tests skip).
GPU_ONLY = {"cupy"}

#: Distributions under backends/ that are layers for a framework, not unidrop backends (no conformance run).
LAYER_PACKAGES = {"keras"}
BACKENDS = sorted(
    p.parent.name for p in (ROOT / "backends").glob("*/pyproject.toml") if p.parent.name not in LAYER_PACKAGES
)


def install(session: nox.Session, *args: str, **kwargs: Any) -> None:
    """``session.install(*args)`` without compiling every installed module to bytecode.

    pip compiles all of a package's modules at install: 30 of torch's 49 s here, 18 of JAX's 34 s,
    mostly modules no test imports. Python compiles a module when it is first imported instead and
    writes its bytecode then, also where the environment says not to (``PYTHONDONTWRITEBYTECODE``,
    set on this project's machines), so that each module is compiled once per session.
    """
    session.env["PYTHONDONTWRITEBYTECODE"] = ""
    session.install("--no-compile", *args, **kwargs)


#: The build backend of every distribution in this checkout (each declares ``setuptools>=77``).
SETUPTOOLS = "setuptools==84.2.1"


def install_checkout(session: nox.Session, *paths: str, options: tuple[str, ...] = (), **kwargs: Any) -> None:
    """Editable installs of this checkout's distributions at ``paths``, with pip ``options``.

    They build in the session's environment, with :data:`SETUPTOOLS` installed there once, rather
    than in a new isolated environment each (5-7 s apiece here, sixteen sessions over).
    """
    install(session, SETUPTOOLS)
    editable = [arg for path in paths for arg in ("-e", path)]
    install(session, "--no-build-isolation", *options, *editable, **kwargs)


@session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    install(session, "ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the core package."""
    install(session, "mypy==2.4.1", *TEST_TOOLS, *BACKEND_PINS["numpy"])
    install_checkout(session, ".")
    session.run("mypy")


@session
def tests(session: nox.Session) -> None:
    """The core's tests, with the NumPy backend, the wrong backends, the mutants and the example one."""
    install(session, *TEST_TOOLS, *BACKEND_PINS["numpy"])
    # matplotlib for `unidrop demo --png`
    install(session, *EXAMPLE_PINS, MATPLOTLIB)
    distributions = [".", "backends/numpy", "tests/wrong_backend", "tests/mutants", "examples/xarray"]
    install_checkout(session, *distributions)
    # arguments after -- replace the test selection: nox -s tests -- tests/test_mutants.py -rxX
    named = any(arg.startswith("tests") for arg in session.posargs)
    selection = [] if named else ["tests", "--ignore=tests/porting"]  # porting needs torch and JAX
    session.run("pytest", *selection, "-p", "no:cacheprovider", *PARALLEL, *session.posargs)


@session
def porting(session: nox.Session) -> None:
    """A model ported from torch to Flax NNX draws the same masks (tests/porting, docs/porting.md)."""
    pins = dict.fromkeys([*TEST_TOOLS, *BACKEND_PINS["torch"], *BACKEND_PINS["jax"]])
    install(session, *pins)
    install_checkout(session, ".", "backends/numpy", "backends/torch", "backends/jax")
    session.run("pytest", "tests/porting", "-p", "no:cacheprovider", *session.posargs)
    docs = ["tests/test_docs_examples.py", "-k", "porting"]  # docs/porting.md's example, as written
    session.run("pytest", *docs, "-p", "no:cacheprovider", "-q", "-rs")


@session
def example(session: nox.Session) -> None:
    """The guide's example plugin (examples/xarray), installed as a third party would, checked by
    ``unidrop check xarray``: the whole conformance suite."""
    install(session, *TEST_TOOLS, *BACKEND_PINS["numpy"])
    install(session, *EXAMPLE_PINS)
    install_checkout(session, ".", "backends/numpy")
    install(session, "examples/xarray")  # built as a third party's, in its own environment
    session.run("unidrop", "check", "xarray", *session.posargs)


@session
def docs(session: nox.Session) -> None:
    """The documentation site, into site/: the pictures drawn by the real NumPy backend, then
    ``mkdocs build --strict`` (any warning fails). Its Python blocks run in tests/test_docs_examples.py."""
    install(session, *DOCS_PINS, *BACKEND_PINS["numpy"])
    install_checkout(session, ".", "backends/numpy")
    session.run("python", "docs/scripts/render_masks.py", "docs/images/masks.png")
    session.run("python", "docs/scripts/render_family.py", "docs/images/family.png")
    session.env["NO_MKDOCS_2_WARNING"] = "1"  # Material's notice about its successor, on every build
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", *session.posargs)


@session
@nox.parametrize("backend", BACKENDS)
def conformance(session: nox.Session, backend: str) -> None:
    """The conformance suite, then the backend's own tests, on one backend."""
    install(session, *TEST_TOOLS, *BACKEND_PINS.get(backend, []))
    env = {}
    if backend == "jax":  # its CPU FFI handler builds against the installed jaxlib's headers
        code = "import jax.ffi; print(jax.ffi.include_dir())"
        # run_install, not run: it runs under ``nox --install-only`` too, where run returns None
        env["UNIDROP_JAX_FFI_INCLUDE"] = session.run_install("python", "-c", code, silent=True).strip()
    # backends/numpy too: other backends may build on it (torch's CPU path does), and it is not on PyPI
    install_checkout(session, ".", "backends/numpy", f"backends/{backend}", env=env)
    if backend == "numpy":  # the compiled kernel, and a failed build fails here instead of falling back
        session.env["UNIDROP_NUMPY_KERNEL"] = "compiled"
    if backend == "jax":  # the FFI path at every size (a missing handler fails); tests pin XLA where needed
        session.env["UNIDROP_JAX_FFI"] = "always"
    if backend == "torch":  # the C++ autograd node (built against the pinned torch): a failed build fails
        session.env["UNIDROP_TORCH_NODE"] = "always"
    if backend in GPU_ONLY and shutil.which("nvidia-smi") is None:
        session.warn(f"conformance suite skipped: the {backend} backend needs an NVIDIA GPU (no nvidia-smi)")
    else:
        session.run(
            "pytest", *SUITE, f"--unidrop-backend={backend}", *parallel_for(backend), *session.posargs
        )
    # with this backend installed, importing unidrop must still import no framework
    session.run("pytest", "tests/test_import_is_light.py", "-p", "no:cacheprovider", "-q")
    # the Python blocks of README.md, docs/ and backends/*/README.md needing this framework run here
    session.run("pytest", "tests/test_docs_examples.py", "-p", "no:cacheprovider", "-q", "-rs")
    own_tests = ROOT / "backends" / backend / "tests"
    if own_tests.is_dir():
        own = [str(own_tests), "-p", "no:cacheprovider", *NOT_THE_SUITE_AGAIN, *parallel_for(backend)]
        session.run("pytest", *own, *session.posargs)


@session
def numpy_fallback(session: nox.Session) -> None:
    """The conformance suite and the NumPy backend's tests on its pure-NumPy kernel (no compiler)."""
    install(session, *TEST_TOOLS, *BACKEND_PINS["numpy"])
    install_checkout(session, ".", "backends/numpy")
    session.env["UNIDROP_NUMPY_KERNEL"] = "numpy"
    session.run("pytest", *SUITE, "--unidrop-backend=numpy", *session.posargs)
    own_tests = ["backends/numpy/tests", "-p", "no:cacheprovider", *NOT_THE_SUITE_AGAIN]
    session.run("pytest", *own_tests, *session.posargs)


#: unidrop-keras's session: Keras and what it needs, pinned; its layers run on these Keras backends.
KERAS_PINS = [
    "keras==3.15.1",
    "absl-py==2.5.1",
    "h5py==3.16.0",
    "namex==0.1.0",
    "optree==0.20.0",
    "rich==15.0.0",
]
KERAS_BACKENDS = {"numpy": [], "jax": ["jax==0.10.2", "jaxlib==0.10.2"], "torch": ["torch==2.13.0"]}


@session
def keras(session: nox.Session) -> None:
    """unidrop-keras's tests once per Keras backend (KERAS_BACKEND), in one environment holding all three."""
    frameworks = [pin for pins in KERAS_BACKENDS.values() for pin in pins]
    install(session, *TEST_TOOLS, *BACKEND_PINS["numpy"], *KERAS_PINS, *frameworks)
    install_checkout(session, ".", "backends/numpy", "backends/jax", "backends/torch", "backends/keras")
    tests = str(ROOT / "backends" / "keras" / "tests")
    for backend in KERAS_BACKENDS:
        session.log(f"KERAS_BACKEND={backend}")
        session.run(
            "pytest", tests, "-p", "no:cacheprovider", *session.posargs, env={"KERAS_BACKEND": backend}
        )
    # the pages' Python blocks that import keras run here (they pick the JAX backend themselves)
    session.run("pytest", "tests/test_docs_examples.py", "-p", "no:cacheprovider", "-q", "-rs")


#: Backends whose declared lower bounds the ``lowest`` sessions install and test. torch and CuPy
#: are left out: no CPU build of an older torch, nor a CuPy that runs without a GPU, can be
#: installed here without downloading gigabytes of CUDA libraries.
LOWEST = ["numpy", "jax"]


def declared_floors(*projects: tuple[Path, list[str]]) -> tuple[str, list[str]]:
    """The oldest Python and the ``name==floor`` pins that ``projects`` declare.

    Each project is a ``pyproject.toml`` with the extras whose requirements count; every
    ``>=`` bound of a requirement outside unidrop's own distributions becomes an exact pin,
    and the oldest Python is the highest ``requires-python`` floor among them.
    """
    python, pins = (3, 0), {}
    for path, extras in projects:
        project = tomllib.loads(path.read_text())["project"]
        floor = project["requires-python"].removeprefix(">=")
        python = max(python, tuple(int(part) for part in floor.split(".")))
        wanted = list(project.get("dependencies", []))
        for extra in extras:
            wanted += project["optional-dependencies"][extra]
        for text in wanted:
            requirement = Requirement(text)
            if requirement.name.startswith("unidrop"):
                continue
            lows = [spec.version for spec in requirement.specifier if spec.operator == ">="]
            if lows:  # the highest floor wins when two projects bound one package
                pins[requirement.name] = max([*lows, pins.get(requirement.name, "0")], key=_version)
    return ".".join(map(str, python)), [f"{name}=={version}" for name, version in sorted(pins.items())]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def python_named(version: str) -> str:
    """A working interpreter for ``version`` (``"3.10"``): on PATH or in pyenv's versions, else the
    bare version, which nox reports as a missing interpreter."""
    home = os.path.expanduser("~/.pyenv/versions")
    candidates = [
        shutil.which(f"python{version}"),
        *sorted(glob.glob(f"{home}/{version}.*/bin/python{version}")),
    ]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return version


def _lowest_python(backend: str) -> str:
    version, _ = declared_floors(
        (ROOT / "pyproject.toml", []), (ROOT / "backends" / backend / "pyproject.toml", [])
    )
    return python_named(version)


@session
@nox.parametrize(
    ("python", "backend"), [(_lowest_python(backend), backend) for backend in LOWEST], ids=LOWEST
)
def lowest(session: nox.Session, backend: str) -> None:
    """The suite and the backend's own tests at the oldest versions the distributions declare."""
    extras = {"jax": ["flax"]}.get(backend, [])
    python, pins = declared_floors(
        (ROOT / "pyproject.toml", ["conformance"]), (ROOT / "backends" / backend / "pyproject.toml", extras)
    )
    session.log(f"declared floors: Python {python}, {' '.join(pins)}")
    install(session, *pins, XDIST)  # for PARALLEL; pytest-xdist 3.8 works with the pytest floor (7)
    checkout = dict.fromkeys([".", f"backends/{backend}", "backends/numpy"])
    install_checkout(session, *checkout, options=("--no-deps",))
    session.run("python", "-m", "pip", "check")
    session.run("pytest", *SUITE, f"--unidrop-backend={backend}", *parallel_for(backend), *session.posargs)
    own_tests = ROOT / "backends" / backend / "tests"
    own = [str(own_tests), "-p", "no:cacheprovider", *NOT_THE_SUITE_AGAIN, *PARALLEL]
    session.run("pytest", *own, *_framework_only_left_out(backend, pins, session), *session.posargs)


#: A backend's own tests that exercise its framework alone (NumPy only builds their inputs and
#: compares): where the framework's declared floor is the very version the backend's conformance
#: session pins, that session has run them on it already, so the lowest session leaves them out.
#: Once the floor and the pin differ, they run here too. What the lowest session still runs of
#: JAX's: the suite with float64 (x64), the CPU FFI handler (built on unidrop-numpy's kernel, at
#: NumPy's floor), the Flax NNX modules (at Flax's floor) and the package's metadata.
FRAMEWORK_ONLY = {
    "jax": (
        "jax",
        [
            "test_blocks.py",
            "test_compiled.py",
            "test_exact.py",
            "test_family.py",
            "test_huge.py",
            "test_identity_seed.py",
            "test_keys.py",
            "test_multidevice.py",
            "test_pallas.py",
            "test_subnormals.py",
            "test_transforms.py",
        ],
    )
}


def _framework_only_left_out(backend: str, pins: list[str], session: nox.Session) -> list[str]:
    """``--ignore`` options for FRAMEWORK_ONLY[backend] when ``pins`` hold the framework's pinned version."""
    if backend not in FRAMEWORK_ONLY:
        return []
    framework, files = FRAMEWORK_ONLY[backend]
    pinned = [pin for pin in BACKEND_PINS[backend] if Requirement(pin).name == framework]
    if not pinned or pinned[0] not in pins:
        return []
    paths = [ROOT / "backends" / backend / "tests" / name for name in files]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:  # a renamed file would otherwise run here again, unnoticed
        session.error(f"FRAMEWORK_ONLY names test files that do not exist: {', '.join(missing)}")
    session.log(f"{', '.join(files)}: run by conformance(backend={backend!r}) on {pinned[0]}, the floor")
    return [f"--ignore={path}" for path in paths]
