"""``unidrop bench``: what it writes, and its errors. Speed is never asserted here."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

import unidrop
from unidrop import bench as bench_package
from unidrop import cli
from unidrop.bench import Options, gpus, parse_backends, report, targets


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


def test_quick_records_the_options_of_the_run(quick):
    out, _ = quick
    options = json.loads((out / "bench.json").read_text())["meta"]["options"]
    assert options == {
        "out": str(out),
        "max_log2": 10,
        "quick": True,
        "reps": 3,
        "p": 0.5,
        "backends": ["numpy"],
        "devices": "all",
    }


def test_quick_markdown_prints_the_meta_as_readable_lines(quick):
    out, _ = quick
    text = (out / "bench.md").read_text()
    assert "{" not in text and "[" not in text  # no Python dict or list reprs
    lines = text.splitlines()
    assert "- machine:" in lines and "- versions:" in lines and "- options:" in lines
    assert f"  - numpy: {np_version()}" in lines
    assert "- sizes: 16, 1024" in lines


def np_version() -> str:
    import numpy

    return numpy.__version__


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
        (["--p", "1.5"], "--p must be in (0, 1), not 1.5"),
        (["--p", "1"], "--p must be in (0, 1), not 1: at p = 1 every element is dropped"),
        (["--p", "nan"], "--p must be in (0, 1), not nan"),
        (["--p", "0"], "--p must be in (0, 1), not 0: at p = 0 dropout returns x itself and draws no mask"),
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


def test_a_repeated_backend_counts_once(tmp_path):
    assert parse_backends(["numpy", "numpy"]) == ("numpy",)
    chosen = targets(Options(out=tmp_path, quick=True, backends=("numpy", "numpy")))
    assert chosen == [("numpy", "cpu", "float32")]


def test_an_empty_out_is_refused_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        cli.main(["bench", "--quick", "--backend", "numpy", "--out", ""])
    assert stop.value.code == 2
    assert "unidrop bench: error: --out '': name a folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


#: What the fake timing below reports for every case (not measured: fixed here).
FAKE_SECONDS = {"copy": 1e-6, "naive": 2e-6, "unidrop": 3e-6}


def fake_timing(monkeypatch: pytest.MonkeyPatch, cases_before_ctrl_c: int | None = None) -> None:
    """Replace the timing by fixed seconds; raise KeyboardInterrupt (as Ctrl-C does) after some cases."""
    done = [0]

    def median_seconds(calls, reps, number=None):
        if cases_before_ctrl_c is not None and done[0] == cases_before_ctrl_c:
            raise KeyboardInterrupt
        done[0] += 1
        return dict(FAKE_SECONDS)

    monkeypatch.setattr(bench_package, "median_seconds", median_seconds)


def test_ctrl_c_writes_what_was_measured_and_exits_130(tmp_path, monkeypatch, capsys):
    fake_timing(monkeypatch, cases_before_ctrl_c=2)
    out = tmp_path / "out"
    status = cli.main(["bench", "--quick", "--backend", "numpy", "--max-log2", "20", "--out", str(out)])
    assert status == 130
    captured = capsys.readouterr()
    assert f"unidrop bench: interrupted: partial results written to {out}" in captured.err
    assert f"wrote {out / 'bench.json'}" in captured.out
    result = json.loads((out / "bench.json").read_text())
    assert result["meta"]["interrupted"] is True
    assert [(row["log2_size"], row["seconds"]) for row in result["rows"]] == [
        (4, FAKE_SECONDS),
        (10, FAKE_SECONDS),
    ]
    text = (out / "bench.md").read_text()
    assert "**Interrupted: partial results, 2 rows measured before it.**" in text
    assert text.count("| 2^") == 2


def test_an_error_mid_run_writes_what_was_measured_then_raises(tmp_path, monkeypatch):
    """Out of memory at the third size (a GPU's, say): the two sizes measured are written, marked
    stopped by the error, and the error still reaches the caller."""
    done = [0]

    def median_seconds(calls, reps, number=None):
        if done[0] == 2:
            raise MemoryError("out of memory at the third size")
        done[0] += 1
        return dict(FAKE_SECONDS)

    monkeypatch.setattr(bench_package, "median_seconds", median_seconds)
    out = tmp_path / "out"
    with pytest.raises(MemoryError, match="third size"):
        cli.main(["bench", "--quick", "--backend", "numpy", "--max-log2", "20", "--out", str(out)])
    meta = json.loads((out / "bench.json").read_text())["meta"]
    assert (
        meta["interrupted"] is True and meta["stopped by"] == "MemoryError: out of memory at the third size"
    )
    assert (
        "**Interrupted (stopped by MemoryError: out of memory at the third size)"
        in (out / "bench.md").read_text()
    )


def test_a_run_records_the_kernels_the_settings_and_when_and_prints_its_report(tmp_path, monkeypatch, capsys):
    """Which kernel ran (the compiled one or pure NumPy: 11-17x apart) and the settings that choose
    it are in the results; the report itself is printed, not only written."""
    fake_timing(monkeypatch)
    monkeypatch.setenv("UNIDROP_NUM_THREADS", "1")
    out = tmp_path / "out"
    assert cli.main(["bench", "--quick", "--backend", "numpy", "--max-log2", "10", "--out", str(out)]) == 0
    meta = json.loads((out / "bench.json").read_text())["meta"]
    kernel = unidrop.get_backend("numpy").implementation().describe()
    assert meta["kernels"] == {"numpy": kernel}
    assert meta["settings"]["UNIDROP_NUM_THREADS"] == "1"
    assert meta["started (UTC)"].endswith("+00:00")
    assert meta["versions"]["numpy backend"].startswith(f"unidrop-numpy {unidrop_numpy_version()}, numpy ")
    printed = capsys.readouterr().out
    assert (
        "# unidrop bench" in printed and "| 2^10 |" in printed and "below 1.00x unidrop is faster" in printed
    )


def test_ctrl_c_while_drawing_the_plots_keeps_the_results_and_exits_130(tmp_path, monkeypatch, capsys):
    fake_timing(monkeypatch)

    def interrupted_plot(result, out):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "plot", interrupted_plot)
    out = tmp_path / "out"
    assert cli.main(["bench", "--quick", "--backend", "numpy", "--max-log2", "10", "--out", str(out)]) == 130
    result = json.loads((out / "bench.json").read_text())
    assert result["meta"]["interrupted"] is True and len(result["rows"]) == 2
    assert result["meta"]["files"] == ["bench.json", "bench.md"]
    assert "interrupted while drawing the plots" in capsys.readouterr().out


def test_installed_backends_the_bench_cannot_time_are_named(monkeypatch, capsys):
    from unidrop.bench.cases import OWN

    untimed = [info.name for info in unidrop.list_backends() if info.name not in OWN]
    targets(Options(out=Path("unused"), max_log2=10, quick=True, reps=1, p=0.5, backends=(), devices="cpu"))
    printed = capsys.readouterr().out
    if untimed:
        assert f"not timed (unidrop bench times {', '.join(OWN)}): {', '.join(untimed)}" in printed
    else:
        assert "not timed" not in printed


def unidrop_numpy_version() -> str:
    return next(info.version for info in unidrop.list_backends() if info.name == "numpy")


def test_a_complete_run_is_not_marked_interrupted(tmp_path, monkeypatch):
    fake_timing(monkeypatch)
    out = tmp_path / "out"
    assert cli.main(["bench", "--quick", "--backend", "numpy", "--max-log2", "10", "--out", str(out)]) == 0
    assert json.loads((out / "bench.json").read_text())["meta"]["interrupted"] is False
    assert "Interrupted" not in (out / "bench.md").read_text()


def write_earlier_run(out: Path, files: list[str]) -> None:
    out.mkdir()
    (out / "bench.json").write_text(json.dumps({"meta": {"files": files}, "rows": []}))


def test_a_rerun_removes_only_the_files_an_earlier_run_wrote_and_this_one_did_not(tmp_path, monkeypatch):
    fake_timing(monkeypatch)
    out = tmp_path / "out"
    listed = ["bench.json", "bench.md", "bench-torch-cuda0.png", "notes.txt", "../bench-outside.png"]
    write_earlier_run(out, listed)
    for name in ["bench.md", "bench-torch-cuda0.png", "bench-jax-cpu0.png", "notes.txt"]:
        (out / name).write_text("earlier")
    (tmp_path / "bench-outside.png").write_text("not in the folder")
    monkeypatch.setattr(report, "plot", raise_import_error)  # as without matplotlib: no plots
    assert cli.main(["bench", "--quick", "--backend", "numpy", "--max-log2", "10", "--out", str(out)]) == 0
    # the earlier run's plot is gone; a plot it did not list, and a file not named as bench names
    # its files, are kept although listed, and so is a file outside the folder
    assert sorted(path.name for path in out.iterdir()) == [
        "bench-jax-cpu0.png",
        "bench.json",
        "bench.md",
        "notes.txt",
    ]
    assert (tmp_path / "bench-outside.png").exists()
    assert json.loads((out / "bench.json").read_text())["meta"]["files"] == ["bench.json", "bench.md"]


def raise_import_error(*args: object) -> list[Path]:
    raise ImportError("no matplotlib here")


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib not installed")
def test_a_run_lists_its_plots_and_the_next_run_without_them_removes_them(tmp_path, monkeypatch, capsys):
    fake_timing(monkeypatch)
    out = tmp_path / "out"
    args = ["bench", "--quick", "--backend", "numpy", "--max-log2", "10", "--out", str(out)]
    assert cli.main(args) == 0
    files = ["bench.json", "bench.md", "bench-numpy-cpu.png"]
    assert json.loads((out / "bench.json").read_text())["meta"]["files"] == files
    monkeypatch.setattr(report, "plot", raise_import_error)
    capsys.readouterr()
    assert cli.main(args) == 0
    assert sorted(path.name for path in out.iterdir()) == ["bench.json", "bench.md"]
    assert f"removed {out / 'bench-numpy-cpu.png'}" in capsys.readouterr().out


def test_an_earlier_bench_json_without_a_file_list_removes_nothing(tmp_path, monkeypatch):
    fake_timing(monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    (out / "bench.json").write_text("not json")
    (out / "bench-torch-cpu.png").write_text("earlier")
    monkeypatch.setattr(report, "plot", raise_import_error)
    assert cli.main(["bench", "--quick", "--backend", "numpy", "--max-log2", "10", "--out", str(out)]) == 0
    assert (out / "bench-torch-cpu.png").read_text() == "earlier"


def fake_torch(name: str = "Fake GPU") -> types.SimpleNamespace:
    def get_device_name(index: int) -> str:
        if name == "raises":
            raise RuntimeError("no CUDA driver")
        return f"{name} {index}"

    return types.SimpleNamespace(
        cuda=types.SimpleNamespace(get_device_name=get_device_name),
        version=types.SimpleNamespace(cuda="12.4", hip=None),
    )


DRIVER_FILE = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"


def test_gpus_are_read_through_the_imported_framework(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", fake_torch())
    (tmp_path / "version").write_text(DRIVER_FILE)
    monkeypatch.setattr(gpus, "NVIDIA_DRIVER_FILE", tmp_path / "version")
    chosen = [("torch", "cpu", "float32"), ("torch", "cuda:1", "float32"), ("torch", "cuda:1", "float16")]
    assert gpus.describe(chosen) == [
        {"backend": "torch", "device": "cuda:1", "model": "Fake GPU 1", "cuda": "12.4", "driver": "550.54.15"}
    ]


def test_cupy_and_jax_gpus(tmp_path, monkeypatch):
    runtime = types.SimpleNamespace(
        getDeviceProperties=lambda index: {"name": f"Fake CuPy GPU {index}".encode()},
        runtimeGetVersion=lambda: 12040,
        driverGetVersion=lambda: 12080,
    )
    monkeypatch.setitem(
        sys.modules, "cupy", types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime))
    )
    devices = [types.SimpleNamespace(platform="gpu", id=i, device_kind=f"Fake JAX GPU {i}") for i in (0, 1)]
    monkeypatch.setitem(sys.modules, "jax", types.SimpleNamespace(devices=lambda: devices))
    monkeypatch.setattr(gpus, "NVIDIA_DRIVER_FILE", tmp_path / "absent")
    assert gpus.describe([("cupy", "cuda:0", "float32"), ("jax", "gpu:1", "float32")]) == [
        {
            "backend": "cupy",
            "device": "cuda:0",
            "model": "Fake CuPy GPU 0",
            "cuda": "12.4",
            "driver supports cuda": "12.8",
        },
        {"backend": "jax", "device": "gpu:1", "model": "Fake JAX GPU 1"},
    ]


def test_a_framework_that_cannot_say_costs_only_its_entry(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", fake_torch("raises"))
    monkeypatch.setattr(gpus, "NVIDIA_DRIVER_FILE", tmp_path / "absent")
    assert gpus.describe([("torch", "cuda:0", "float32")]) == [
        {"backend": "torch", "device": "cuda:0", "error": "RuntimeError: no CUDA driver"}
    ]


def test_no_gpu_no_gpu_entry_and_no_framework_imported(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert gpus.describe([("numpy", "cpu", "float32")]) == []
    assert "gpus" not in report.machine(gpus.describe([("numpy", "cpu", "float32")]))
    # a GPU of a framework that is not imported is named by its device alone, and nothing is imported
    assert gpus.describe([("torch", "cuda:0", "float32")])[0].keys() <= {"backend", "device", "driver"}
    assert "torch" not in sys.modules


def gpu_result() -> dict:
    gpu = {"backend": "torch", "device": "cuda:0", "model": "Fake GPU 0", "cuda": "12.4"}
    machine = {"cpu": "Fake CPU", "cpus": 2, "system": "Linux", "python": "3", "gpus": [gpu]}
    rows = [
        {
            "backend": "torch",
            "device": device,
            "dtype": "float32",
            "mode": mode,
            "framework": "F.dropout",
            "log2_size": 4,
            "seconds": {copy: 1e-6, "F.dropout": 2e-6, "unidrop": 3e-6},
        }
        for device in ("cpu", "cuda:0")
        for mode, copy in (("forward", "copy"), ("fwd+bwd", "copy (forward only)"))
    ]
    return {"meta": {"p": 0.5, "machine": machine, "interrupted": False}, "rows": rows}


def test_the_markdown_prints_the_gpus_and_gives_no_ratio_over_a_forward_copy():
    text = report.markdown(gpu_result())
    assert "    - backend torch, device cuda:0, model Fake GPU 0, cuda 12.4" in text.splitlines()
    assert "| elements | copy | F.dropout | unidrop | unidrop / F.dropout | unidrop / copy |" in text
    assert "| elements | copy (forward only) | F.dropout | unidrop | unidrop / F.dropout |" in text
    assert "| 2^4 | 1.0 µs | 2.0 µs | 3.0 µs | 1.50x |" in text  # fwd+bwd: no unidrop / copy
    assert "| 2^4 | 1.0 µs | 2.0 µs | 3.0 µs | 1.50x | 3.00x |" in text  # forward


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib not installed")
def test_each_plot_is_titled_by_its_own_device(tmp_path, monkeypatch):
    import matplotlib.figure

    titles = []
    real = matplotlib.figure.Figure.suptitle

    def suptitle(self, text, **kwargs):
        titles.append(text)
        return real(self, text, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "suptitle", suptitle)
    paths = report.plot(gpu_result(), tmp_path)
    assert [path.name for path in paths] == ["bench-torch-cpu.png", "bench-torch-cuda0.png"]
    assert titles == [
        "unidrop bench, p = 0.5: Fake CPU",
        "unidrop bench, p = 0.5: Fake GPU 0 (cuda:0)",
    ]


def test_torch_labels_the_fwd_bwd_copy_as_forward_only():
    torch = pytest.importorskip("torch")
    from unidrop.bench.cases import calls_for

    modes = calls_for("torch", torch.ones(4), 0.5, "cpu")
    assert list(modes["forward"]) == ["copy", "F.dropout", "unidrop"]
    assert list(modes["fwd+bwd"]) == ["copy (forward only)", "F.dropout", "unidrop"]


def test_the_naive_baseline_is_quiet_where_one_minus_p_underflows_in_float16():
    import numpy as np

    from unidrop.bench.cases import calls_for

    x = np.ones(16, dtype=np.float16)
    naive = calls_for("numpy", x, 0.999999999999, "cpu")["forward"]["naive"]
    with np.errstate(all="raise"):  # a 0 / 0 not silenced by the baseline itself raises here
        naive.call()
