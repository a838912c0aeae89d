"""Build of unidrop-torch's optional C++ autograd node, ``unidrop_torch._autograd_node`` (the rest is
pyproject.toml).

The node (``_autograd_node.cpp``) is compiled against the torch it will run with, so it builds only
where ``torch`` is importable in the build environment: install with ``--no-build-isolation`` after
torch (pip's isolated build environment has no torch; ``noxfile.py`` installs this way). It also
needs the core's ``unidrop/cpu_kernel_api.h``: ``UNIDROP_INCLUDE``, else the copy an sdist carries
(``include/``), else the checkout this backend sits in.

Without torch, the header or a C++ compiler, the node is left out and the install still succeeds:
eager autograd on the CPU then runs through a Python autograd Function (``unidrop backends`` says
which). The module refuses to load under another torch version than it was built for.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
API_HEADER = Path("unidrop") / "cpu_kernel_api.h"
NODE_SOURCE = HERE / "src" / "unidrop_torch" / "_autograd_node.cpp"


def core_include() -> str | None:
    """The folder holding ``unidrop/cpu_kernel_api.h``, or None."""
    checkout = HERE.parent.parent / "unidrop" / "include"
    for folder in filter(None, [os.environ.get("UNIDROP_INCLUDE"), HERE / "include", checkout]):
        if (Path(folder) / API_HEADER).is_file():
            return str(folder)
    return None


class SdistWithHeader(sdist):
    """An sdist that carries the core's ``unidrop/cpu_kernel_api.h`` under ``include/``."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        folder = core_include()
        if folder is not None:
            target = Path(base_dir) / "include" / API_HEADER
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(folder) / API_HEADER, target)


commands: dict[str, type] = {"sdist": SdistWithHeader}
extensions = []
include = core_include()
try:
    import torch
    from torch.utils.cpp_extension import BuildExtension, CppExtension
except ImportError:
    torch = None
if torch is not None and include is not None:
    extensions.append(
        CppExtension(
            "unidrop_torch._autograd_node",
            sources=["src/unidrop_torch/_autograd_node.cpp"],
            include_dirs=[include],
            define_macros=[
                ("UNIDROP_TORCH_BUILT_FOR", f'"{torch.__version__}"'),
                # unidrop_torch.cpu_node.source_digest's: an editable checkout refuses a stale build
                (
                    "UNIDROP_NODE_SOURCE_DIGEST",
                    f'"{hashlib.sha256(NODE_SOURCE.read_bytes()).hexdigest()[:16]}"',
                ),
            ],
            extra_compile_args=["-O2", "-fvisibility=hidden"] if os.name != "nt" else ["/O2"],
            optional=True,  # a failed compile leaves the node out; the install succeeds
        )
    )
    # without ninja: a compile error is then one setuptools reports and skips for an optional module
    commands["build_ext"] = BuildExtension.with_options(use_ninja=False)
else:
    why = "no cpu_kernel_api.h" if torch is not None else "torch is not importable (use --no-build-isolation)"
    print(f"unidrop-torch: C++ autograd node not built: {why}")

setup(ext_modules=extensions, cmdclass=commands)
