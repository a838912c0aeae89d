"""Runs the cases under tests/multidevice/ in subprocesses with forced host devices.

XLA_FLAGS must be set before JAX is imported, which this process has already done:
``sharded_cases.py`` (jit on sharded inputs) gets 8 host devices, ``shard_map_cases.py`` 4.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CASES = Path(__file__).parent / "multidevice"


@pytest.mark.parametrize(("cases", "devices"), [("sharded_cases.py", 8), ("shard_map_cases.py", 4)])
def test_cases_on_forced_host_devices(cases: str, devices: int) -> None:
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
    env = {**os.environ, "XLA_FLAGS": flags.strip(), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CASES / cases)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=CASES,
    )
    tail = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    assert " passed" in done.stdout and "skipped" not in done.stdout, tail
