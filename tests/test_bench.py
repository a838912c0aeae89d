"""``unidrop bench``: what it writes, and its errors. Speed is never asserted here."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

import unidrop
from unidrop import cli
from unidrop.bench import Options, targets


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "unidrop", "bench", "--backend", "numpy", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("bench")
    done = bench("--quick", "--max-log2", "10", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out, done


def test_quick_writes_json_with_machine_versions_sizes_and_medians(quick):
    out, _ = quick
    result = json.loads((out / "bench.json").read_text())
    meta = result["meta"]
    assert meta["machine"]["cpus"] >= 1 and meta["machine"]["python"]
    assert "numpy" in meta["versions"] and "numpy backend" in meta["versions"]
    assert "load average at start" in meta
    assert meta["sizes"] == [2**4, 2**10]
    rows = result["rows"]
    assert [(row["backend"], row["dtype"], row["mode"], row["log2_size"]) for row in rows] == [
        ("numpy", "float32", "forward", 4),
        ("numpy", "float32", "forward", 10),
    ]
    for row in rows:
        assert set(row["seconds"]) == {"copy", "naive", "unidrop"}
        assert all(seconds > 0 for seconds in row["seconds"].values())


def test_quick_writes_a_markdown_table_with_the_ratios(quick):
    out, _ = quick
    text = (out / "bench.md").read_text()
    assert "## numpy on cpu, float32, forward" in text
    assert "| elements | copy | naive | unidrop | unidrop / naive | unidrop / copy |" in text
    assert text.count("| 2^4 |") == 1 and text.count("| 2^10 |") == 1


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib not installed")
def test_quick_writes_a_png_plot(quick):
    out, done = quick
    png = out / "bench-numpy-cpu.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in done.stdout


def test_sizes_that_do_not_fit_in_half_the_memory_are_left_out(tmp_path):
    options = Options(out=tmp_path, max_log2=30)
    # 64 bytes per element at most, in half of 2^30 bytes: 2^23 elements fit, 2^24 do not
    assert options.sizes(memory=2**30) == list(range(4, 24))
    assert options.sizes() == list(range(4, 31))
    assert Options(out=tmp_path, quick=True).sizes(memory=2**30) == [4, 10, 16, 20]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--max-log2", "3"], "--max-log2 must be in 4..30, not 3"),
        (["--max-log2", "31"], "--max-log2 must be in 4..30, not 31"),
        (["--reps", "0"], "--reps must be at least 1, not 0"),
        (["--p", "1.5"], "1.5"),
        (["--backend", "no-such-backend"], "no-such-backend"),
        (["--max-log2", "ten"], "invalid int value: 'ten'"),
        (["--devices", "tpu"], "--devices must be one of all, cpu, gpu, not 'tpu'"),
    ],
)
def test_a_bad_option_is_one_clear_error_and_exit_2(args, says, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["bench", "--out", str(tmp_path / "out"), *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "error" in err and says in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(
    "mutant-none" not in [info.name for info in unidrop.list_backends()],
    reason="needs an installed backend that the bench does not know (tests/mutants)",
)
def test_a_backend_the_bench_does_not_know_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["bench", "--backend", "mutant-none", "--out", str(tmp_path / "out")])
    assert stop.value.code == 2
    assert (
        "unidrop bench knows the backends numpy, cupy, torch, jax, not 'mutant-none'"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "out").exists()


def test_devices_choose_the_cpu_or_the_first_gpu(tmp_path):
    """numpy has only the CPU: ``cpu`` and ``all`` keep it; ``gpu`` leaves nothing to time, which
    is an error naming the backends, not an empty report."""
    for devices, expected in (("cpu", ["cpu"]), ("all", ["cpu"])):
        chosen = targets(Options(out=tmp_path, quick=True, backends=("numpy",), devices=devices))
        assert [device for _, device, _ in chosen] == expected, devices
    with pytest.raises(ValueError, match="--devices gpu: no GPU here for the backends numpy"):
        targets(Options(out=tmp_path, quick=True, backends=("numpy",), devices="gpu"))


@pytest.mark.parametrize("where", ["a-file", "a-file/below"])
def test_an_out_that_cannot_be_written_is_refused_before_anything_runs(where, tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(SystemExit) as stop:
        cli.main(["bench", "--quick", "--backend", "numpy", "--out", str(tmp_path / where)])
    assert stop.value.code == 2
    captured = capsys.readouterr()
    assert f"unidrop bench: error: --out {str(tmp_path / where)!r}" in captured.err, captured.err
    assert "2^4" not in captured.out + captured.err  # nothing was timed
