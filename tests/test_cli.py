"""The ``unidrop`` command line."""

from __future__ import annotations

import pytest

from unidrop.cli import main


def test_backends_lists_numpy_with_versions_and_devices(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "mask stream v1" in out
    numpy_row = next(line.split() for line in out.splitlines() if line.split()[:1] == ["numpy"])
    assert numpy_row[1] == "unidrop-numpy" and numpy_row[3] == "numpy" and numpy_row[-1] == "cpu"


def test_demo_shows_the_reference_mask_and_every_backend(capsys):
    main(["demo", "--seed", "42"])
    out = capsys.readouterr().out
    reference_line = next(line for line in out.splitlines() if "reference" in line)
    numpy_line = next(line for line in out.splitlines() if line.strip().startswith("numpy (cpu)"))
    assert reference_line.split()[-1] == numpy_line.split()[-2]
    assert numpy_line.endswith("identical")


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
