"""Build of unidrop-jax's optional XLA FFI handler, ``unidrop_jax._cpu_ffi`` (the rest is pyproject.toml).

The handler (``_cpu_ffi.cc``, C++17) needs two header folders at build time:

* XLA's FFI headers, ``jax.ffi.include_dir()``: ``UNIDROP_JAX_FFI_INCLUDE`` names the folder, else an
  importable ``jax`` in the build environment gives it (pip's isolated build environment has none:
  ``noxfile.py`` passes the variable);
* the core's ``unidrop/cpu_kernel_api.h``: ``UNIDROP_INCLUDE``, else the copy an sdist carries
  (``include/``), else the checkout this backend sits in, else an importable ``unidrop``'s
  ``get_include()``.

Without either, or without a C++ compiler, the extension is left out and the install still succeeds:
the backend then runs its XLA path everywhere (``unidrop_jax.cpu_ffi.BUILT`` is False).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
API_HEADER = Path("unidrop") / "cpu_kernel_api.h"


def existing(candidates: list[str | None], relative: str) -> str | None:
    """The first folder among ``candidates`` that holds ``relative``, else None."""
    for folder in filter(None, candidates):
        if (Path(folder) / relative).is_file():
            return folder
    return None


def ffi_include() -> str | None:
    """The folder holding ``xla/ffi/api/ffi.h``, or None."""
    candidates = [os.environ.get("UNIDROP_JAX_FFI_INCLUDE")]
    try:
        import jax.ffi

        candidates.append(jax.ffi.include_dir())
    except (ImportError, AttributeError):
        pass
    return existing(candidates, "xla/ffi/api/ffi.h")


def core_include() -> str | None:
    """The folder holding ``unidrop/cpu_kernel_api.h``, or None."""
    candidates = [
        os.environ.get("UNIDROP_INCLUDE"),
        str(HERE / "include"),
        str(HERE.parent.parent / "unidrop" / "include"),
    ]
    try:
        import unidrop

        candidates.append(unidrop.get_include())
    except (ImportError, AttributeError):
        pass
    return existing(candidates, str(API_HEADER))


class SdistWithHeader(sdist):
    """An sdist that carries the core's ``unidrop/cpu_kernel_api.h`` under ``include/``."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        folder = core_include()
        if folder is not None:
            target = Path(base_dir) / "include" / API_HEADER
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(folder) / API_HEADER, target)


class BuildExt(build_ext):
    """C++17 flags by compiler family."""

    def build_extensions(self) -> None:
        if self.compiler.compiler_type == "msvc":
            flags = ["/O2", "/std:c++17"]
        else:
            flags = ["-O2", "-std=c++17", "-fvisibility=hidden"]
        for extension in self.extensions:
            extension.extra_compile_args = flags
        super().build_extensions()


folders = [ffi_include(), core_include()]
extensions = []
if all(folders):
    extensions.append(
        Extension(
            "unidrop_jax._cpu_ffi",
            sources=["src/unidrop_jax/_cpu_ffi.cc"],
            include_dirs=folders,
            language="c++",
            optional=True,
        )
    )
else:
    print(f"unidrop-jax: XLA FFI handler not built (headers: ffi {folders[0]}, unidrop {folders[1]})")

setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt, "sdist": SdistWithHeader})
