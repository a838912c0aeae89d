"""Fixtures for unidrop-cupy's tests: the host build of the kernels, and the GPU check."""

from __future__ import annotations

import ctypes

import _host
import pytest


@pytest.fixture(scope="session")
def host_lib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    """The kernels' per-thread code compiled for this machine's CPU (skips without a compiler)."""
    if _host.compiler() is None:
        pytest.skip(
            "no C++ compiler (g++, c++ or clang++) on PATH: the host build of the CUDA kernels is skipped"
        )
    return _host.build(tmp_path_factory.mktemp("unidrop_host_kernels"))
