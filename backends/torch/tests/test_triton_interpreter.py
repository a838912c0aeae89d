"""The CUDA path's Triton kernels, checked for exactness on the CPU with TRITON_INTERPRET=1."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.skipif(
    importlib.util.find_spec("triton") is None,
    reason="triton is not installed (pip install triton==3.7.1, the version torch 2.13.0 pairs with)",
)
def test_triton_kernels_are_exact_under_the_interpreter() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    result = subprocess.run(
        [sys.executable, str(HERE / "triton_interpret_check.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}"
    assert "triton interpreter checks passed" in result.stdout


def test_missing_triton_gives_a_clear_error() -> None:
    code = (
        "import sys\n"
        "sys.modules['triton'] = None  # as if triton were not installed\n"
        "from unidrop_torch import cuda\n"
        "try:\n"
        "    cuda._kernels()\n"
        "except ImportError as error:\n"
        "    assert 'pip install triton' in str(error), error\n"
        "else:\n"
        "    raise AssertionError('no ImportError')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_launch_pieces_are_exact_past_2_32_and_2_34() -> None:
    """The host side of a launch: pieces and grid sizes in Python integers, for huge tensors.

    Together with the interpreter's counters near 2**32 and 2**34 (a launch at such a start) and
    test_triton_compile's 64-bit offsets, this covers tensors of those sizes without making one.
    """
    from unidrop_torch import cuda

    assert cuda._pieces((1 << 34) + 16, 1024) == [(0, 1 << 34, False, 1 << 24), (1 << 34, 16, True, 1)]
    assert cuda._pieces((1 << 32) + 4096, 4096) == [(0, (1 << 32) + 4096, False, (1 << 20) + 1)]
    assert cuda._pieces(100, 1024) == [(0, 100, True, 1)]
