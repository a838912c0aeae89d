"""The shared conformance suite on the JAX backend (default device; x64 off)."""

import os
import subprocess
import sys

from unidrop.conformance.suite import ConformanceSuite


class TestJaxConformance(ConformanceSuite):
    backend_name = "jax"


def test_the_suite_with_x64_on_covers_float64():
    """float64 JAX arrays exist only with jax_enable_x64: run the whole suite again in such a process."""
    env = {**os.environ, "JAX_ENABLE_X64": "1"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
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
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert (
        "float64"
        in subprocess.run(
            [*command, "--collect-only"], env=env, capture_output=True, text=True, timeout=600
        ).stdout
    )
