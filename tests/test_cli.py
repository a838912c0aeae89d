"""The ``unidrop`` command line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from unidrop.cli import main


def test_backends_lists_numpy_with_versions_and_devices(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "mask stream v1" in out
    numpy_row = next(line.split() for line in out.splitlines() if line.split()[:1] == ["numpy"])
    assert numpy_row[1] == "unidrop-numpy" and numpy_row[3] == "numpy" and numpy_row[-1] == "cpu"


def test_check_runs_the_suite_on_one_backend():
    assert main(["check", "numpy", "-q", "-k", "known_answers"]) == 0


def test_check_fails_on_a_wrong_backend():
    assert main(["check", "wrong-threshold", "-q", "-k", "threshold_boundary"]) == 1


def test_unknown_backend_is_one_line_and_exit_status_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["check", "bogus"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("unidrop check: error: no unidrop backend named 'bogus'")
    assert "Traceback" not in err


@pytest.mark.parametrize(("flag", "value"), [("--p", "1.5"), ("--seed", "-1")])
def test_demo_refuses_bad_arguments_before_running(flag, value, capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", flag, value])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert value in captured.err


def test_check_prints_no_assert_rewrite_warning():
    command = [sys.executable, "-m", "unidrop", "check", "numpy", "-q", "-k", "threshold_boundary"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert "PytestAssertRewriteWarning" not in done.stdout + done.stderr
    assert "already imported" not in done.stdout + done.stderr


def test_check_without_a_name_asks_for_one_and_lists_the_installed(capsys):
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("unidrop check: error: name the backend to check (installed: ")
    assert "numpy" in err and "pytest_args" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("extra", [["--unidrop-backend", "example"], ["-q", "--unidrop-backend=example"]])
def test_check_refuses_a_second_backend_among_the_pytest_arguments(extra, capsys):
    """pytest would take the last --unidrop-backend: the suite would run on another backend than NAME."""
    assert main(["check", "numpy", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("unidrop check: error: '--unidrop-backend") and "'numpy'" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("missing", ["pytest", "hypothesis"])
def test_check_without_the_test_tools_names_the_extra_in_one_line(missing):
    code = (
        f"import sys; sys.modules[{missing!r}] = None\n"  # as if not installed
        "from unidrop.cli import main; sys.exit(main(['check', 'numpy']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"unidrop check: error: the conformance suite needs {missing}")
    # the command that works today (from a checkout) comes first, the future index name after it
    assert (
        0
        <= done.stderr.index("pip install './[conformance]'")
        < done.stderr.index("pip install 'unidrop[conformance]'")
    )


@pytest.mark.parametrize("device", ["bogus", "cuda:0"])
def test_check_refuses_a_device_the_backend_does_not_have(device, capfd):
    assert main(["check", "numpy", "--unidrop-device", device]) == pytest.ExitCode.USAGE_ERROR
    captured = capfd.readouterr()
    assert f"--unidrop-device '{device}': not a device of the unidrop backend 'numpy'" in captured.err
    assert "its devices: cpu" in captured.err
    assert "passed" not in captured.out


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--unidrop-backend", "numpy", "--unidrop-device", "cpu", "--unidrop-device", "gpu"], "'gpu'"),
        (["--unidrop-backend", "bogus"], "no unidrop backend named 'bogus'"),
        ([], "ERROR: the unidrop conformance suite needs --unidrop-backend NAME"),
    ],
    ids=["device", "backend", "no-backend"],
)
def test_pytest_refuses_an_unknown_device_or_backend_as_a_usage_error(options, expected):
    command = [sys.executable, "-m", "pytest", "--pyargs", "unidrop.conformance", "-p", "no:cacheprovider"]
    done = subprocess.run(command + options, capture_output=True, text=True, timeout=120)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert "ERROR test_conformance.py" not in done.stdout  # not a collection error


def test_a_backend_that_reports_no_device_is_a_usage_error():
    """A GPU backend on a machine without one: a usage error naming it, not an IndexError in
    every test."""
    from types import SimpleNamespace

    from unidrop.conformance.plugin import check_devices

    with pytest.raises(pytest.UsageError, match=r"backend 'gpu-only' reports no device here"):
        check_devices(SimpleNamespace(name="gpu-only", devices=lambda: []))
    check_devices(SimpleNamespace(name="numpy", devices=lambda: ["cpu"]))  # fine


def test_a_subclassed_suite_refuses_an_unknown_device(tmp_path):
    (tmp_path / "test_sub.py").write_text(
        "from unidrop.conformance.suite import ConformanceSuite\n\n\n"
        "class TestNumpy(ConformanceSuite):\n    backend_name = 'numpy'\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path), "-p", "no:cacheprovider", "--unidrop-device=tpu:0"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "--unidrop-device 'tpu:0': not a device of the unidrop backend 'numpy'" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert " passed" not in done.stdout


PROFILE_CHECK = (
    "from hypothesis import settings\n\n\n"
    "def test_profile():\n"
    # by name: with CI set in the environment, Hypothesis's own 'ci' profile has no deadline either
    "    assert settings.get_current_profile_name() == 'unidrop-ci'\n"
)


@pytest.mark.parametrize(
    ("options", "loaded"),
    [
        (["--unidrop-backend", "numpy"], True),
        ([], False),  # the plugin stays inert unless asked
        (["--unidrop-backend", "numpy", "--hypothesis-profile", "default"], False),  # the user's choice
    ],
    ids=["backend-given", "not-asked", "other-profile-chosen"],
)
def test_unidrop_backend_loads_the_deterministic_profile_unless_another_is_chosen(tmp_path, options, loaded):
    """The README's `pytest --pyargs unidrop.conformance --unidrop-backend NAME` ran under Hypothesis's
    default profile: its 200 ms deadline failed the first, slower example (a JAX compile, a cold cache)."""
    (tmp_path / "test_profile.py").write_text(PROFILE_CHECK)
    command = [sys.executable, "-m", "pytest", str(tmp_path), "-p", "no:cacheprovider", "-q", *options]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    expected = pytest.ExitCode.OK if loaded else pytest.ExitCode.TESTS_FAILED
    assert done.returncode == expected, done.stdout + done.stderr


def test_the_readme_pytest_command_passes_on_numpy():
    command = [sys.executable, "-m", "pytest", "--pyargs", "unidrop.conformance", "-p", "no:cacheprovider"]
    options = ["--unidrop-backend", "numpy", "-q", "-k", "test_matches_reference"]
    done = subprocess.run(command + options, capture_output=True, text=True, timeout=300)
    assert done.returncode == pytest.ExitCode.OK, done.stdout[-3000:] + done.stderr


NO_ADAPTER = """
import sys

import unidrop


class NoAdapter(unidrop.Backend):
    name = "no-adapter"
    framework = "numpy"
    distribution = "no-adapter-dist"

    def accepts(self, x):
        return isinstance(x, sys.modules["numpy"].ndarray)

    def load(self):
        from unidrop_numpy.implementation import NumpyImplementation

        return NumpyImplementation()
"""


@pytest.fixture
def no_adapter_installed(tmp_path) -> dict[str, str]:
    """The environment of a process where the backend 'no-adapter' (no suite_adapter()) is installed."""
    (tmp_path / "no_adapter_plugin.py").write_text(NO_ADAPTER)
    info = tmp_path / "no_adapter_dist-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: no-adapter-dist\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[unidrop.backends]\nno-adapter = no_adapter_plugin:NoAdapter\n")
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


@pytest.mark.parametrize(
    "command",
    [["-m", "unidrop", "check", "no-adapter"], ["-m", "pytest", "--pyargs", "unidrop.conformance"]],
    ids=["unidrop-check", "pytest"],
)
def test_a_backend_without_a_suite_adapter_is_a_usage_error_naming_it(
    no_adapter_installed, tmp_path, command
):
    if command[1] == "pytest":
        command = [*command, "--unidrop-backend", "no-adapter", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        timeout=120,
        env=no_adapter_installed,
        cwd=tmp_path,
    )
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-3000:] + done.stderr[-2000:]
    assert "'no-adapter'" in done.stderr and "suite_adapter()" in done.stderr, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert " passed" not in done.stdout and " failed" not in done.stdout
    # the backend itself works: only the suite has no way to make and read its arrays
    code = "import numpy, unidrop; print(unidrop.dropout(numpy.ones(2), 0.0, backend='no-adapter'))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=no_adapter_installed
    )
    assert done.returncode == 0 and done.stdout.split() == ["[1.", "1.]"], done.stdout + done.stderr


@pytest.mark.parametrize("command", ["backends", "demo"])
def test_a_reader_that_closes_the_pipe_stops_the_command_quietly(command):
    """``unidrop backends | head -1``: the reader is gone before the output is written. No
    traceback (BrokenPipeError at a print, or at the flush when the interpreter exits)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "unidrop", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()  # before the child writes: every write of its output fails
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert b"Traceback" not in stderr and b"BrokenPipeError" not in stderr, stderr.decode()


@pytest.mark.parametrize("command", ["backends", "demo"])
def test_a_closed_standard_output_is_one_line_of_error(command):
    """``unidrop backends >&-``: Python starts with ``sys.stdout`` None. One line, exit 1."""
    process = subprocess.run(
        ["sh", "-c", f'exec "$0" -m unidrop {command} >&-', sys.executable], capture_output=True, timeout=120
    )
    assert process.returncode == 1
    assert process.stderr.decode().strip() == f"unidrop {command}: error: standard output is closed"


@pytest.mark.skipif(
    not os.path.exists("/dev/full"), reason="needs /dev/full (Linux), a device that is always full"
)
def test_a_full_standard_output_is_one_line_of_error():
    """``unidrop backends > /dev/full``: every write fails (ENOSPC). One line, exit 1, nothing at exit."""
    with open("/dev/full", "wb") as full:
        process = subprocess.run(
            [sys.executable, "-m", "unidrop", "backends"], stdout=full, stderr=subprocess.PIPE, timeout=120
        )
    assert process.returncode == 1
    lines = process.stderr.decode().strip().splitlines()
    assert lines == ["unidrop backends: error: [Errno 28] No space left on device"], lines


def test_an_unknown_option_is_named_with_its_commands_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--bogus"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("usage: unidrop demo ")
        and "unidrop demo: error: unrecognized arguments: --bogus" in err
    )


def test_the_top_level_help_is_plain_text_naming_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out and all(name in out for name in ("backends", "check", "demo", "bench"))
