"""The shared conformance suite on the JAX backend (default device; x64 off)."""

import os
import subprocess
import sys

from unidrop.conformance.suite import ConformanceSuite


class TestJaxConformance(ConformanceSuite):
    backend_name = "jax"


def test_the_suite_with_x64_on_covers_float64():
    """float64 JAX arrays exist only with jax_enable_x64: run the whole suite again in such a process.

    One process (JAX imported and the suite collected once): ``-rA`` lists every passed test, and
    the float64 ones must be among them, so a suite that skipped or lost them fails here.
    """
    env = {**os.environ, "JAX_ENABLE_X64": "1"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-rA",
        "-p",
        "no:cacheprovider",
        "--pyargs",
        "unidrop.conformance",
    ]
    command += [
        "--unidrop-backend=jax",
        "--hypothesis-profile=unidrop-ci",
        "-k",
        "float64 or matches_reference",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    tail = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    passed = [line for line in done.stdout.splitlines() if line.startswith("PASSED ")]
    assert any("float64" in line for line in passed), tail
