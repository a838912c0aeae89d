"""Build of unidrop-numpy's optional compiled kernel, ``unidrop_numpy._kernel`` (the rest is pyproject.toml).

setuptools stays the build backend: the kernel is one C file with no dependency but the Python
headers and the core's ``unidrop/mask_stream_v1.h``, which setuptools' ``Extension`` builds on
Linux, macOS and Windows and cibuildwheel drives as it is; a CMake or Meson project would add a
second build description and a build-time dependency for one file.

The extension is optional: where no C compiler is found (or it fails), the install still
succeeds and the backend runs its pure-NumPy kernel.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
HEADER = Path("unidrop") / "mask_stream_v1.h"
#: Every core header the kernel includes (cpu_kernel_api.h: the C entry point it exports).
HEADERS = [HEADER, Path("unidrop") / "cpu_kernel_api.h"]


#: Where an sdist carries its own copy of the header (see :class:`SdistWithHeader`).
SDIST_INCLUDE = "include"


def checkout_include() -> Path:
    """The core's include folder in the checkout this backend sits in."""
    return HERE.parent.parent / "unidrop" / "include"


def core_include() -> str:
    """The folder holding ``unidrop/mask_stream_v1.h``: ``UNIDROP_INCLUDE``, else the copy an sdist
    carries (``include/``), else the checkout this backend sits in (``../../unidrop/include``), else
    an importable ``unidrop``'s ``get_include()``."""
    candidates = [os.environ.get("UNIDROP_INCLUDE"), str(HERE / SDIST_INCLUDE), str(checkout_include())]
    try:
        import unidrop

        candidates.append(unidrop.get_include())
    except (ImportError, AttributeError):
        pass
    for folder in filter(None, candidates):
        if (Path(folder) / HEADER).is_file():
            return folder
    raise RuntimeError(f"{HEADER} not found in {candidates}: set UNIDROP_INCLUDE to unidrop.get_include()")


class SdistWithHeader(sdist):
    """An sdist that builds anywhere: it carries the core's headers under ``include/unidrop/``, so a
    build from it needs neither the checkout nor an installed ``unidrop``."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        for header in HEADERS:
            target = Path(base_dir) / SDIST_INCLUDE / header
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(core_include()) / header, target)


class BuildExt(build_ext):
    """Compiler flags by compiler family: full optimisation, and no fused multiply-adds (exactness)."""

    def build_extensions(self) -> None:
        if self.compiler.compiler_type == "msvc":
            flags = ["/O2", "/fp:precise"]
        else:
            flags = ["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-math-errno"]
        for extension in self.extensions:
            extension.extra_compile_args = flags
        super().build_extensions()


setup(
    ext_modules=[
        Extension(
            "unidrop_numpy._kernel",
            sources=["src/unidrop_numpy/_kernel.c"],
            include_dirs=[core_include()],
            optional=True,
        )
    ],
    cmdclass={"build_ext": BuildExt, "sdist": SdistWithHeader},
)
