"""The ``unidrop`` command line."""

from __future__ import annotations

from unidrop.cli import main


def test_backends_lists_numpy_with_versions_and_devices(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "mask stream v1" in out
    assert "numpy" in out and "unidrop-numpy" in out and "devices: cpu" in out


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
