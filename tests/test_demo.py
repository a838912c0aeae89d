"""``unidrop demo``: one screen, every backend against the reference, the contrast, what is missing.

Expected digests come from the pure-Python reference (``unidrop.reference``) and from NumPy's own
generator, hashed here, never from the demo's own computation.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from unidrop import Backend, hints, reference, registry
from unidrop.cli import main

ROOT = Path(__file__).resolve().parents[1]
README_MARKER = "<!-- the output of `unidrop demo` with the NumPy backend: tests/test_demo.py checks it -->"


def sha12(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:12]


def reference_digests(seed: int, p: float) -> tuple[str, str]:
    """The mask and output digests of the reference on the demo's input x = 1..64, shape (4, 16)."""
    values = np.arange(1, 65, dtype=np.float32)
    expected, keep = reference.dropout(values.tolist(), (4, 16), "float32", p, seed)
    return sha12(np.array(keep, dtype=np.uint8)), sha12(np.array(expected, dtype=np.float32))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = main(["demo", *args])
    return status, capsys.readouterr().out


def column_of(out: str, label: str) -> list[str]:
    """The cells under ``label`` in the demo's side-by-side layout (label row, 4 mask rows, mask,
    out or verdict, ...), read by the label's column position; a label's further lines are skipped."""
    lines = out.splitlines()
    row = next(i for i, line in enumerate(lines) if label in line)
    start = lines[row].index(label)
    masks = next(i for i in range(row + 1, len(lines)) if {"█", "·"} & set(lines[i]))
    return [line[start : start + 17].strip() for line in [lines[row], *lines[masks : masks + 7]]]


@pytest.mark.parametrize(("seed", "p"), [(42, 0.5), (2**64 - 1, 0.25)])
def test_numpy_agrees_with_the_reference_and_exits_0(capsys, seed, p):
    status, out = run(capsys, "--backend", "numpy", "--seed", str(seed), "--p", str(p))
    mask, output = reference_digests(seed, p)
    assert status == 0
    for label in ("reference", "numpy (cpu)"):
        cells = column_of(out, label)
        assert cells[5] == mask and cells[6] == output, (label, cells)
    assert column_of(out, "numpy (cpu)")[7] == "identical"
    assert "the same mask and output, bit for bit" in out


@pytest.mark.parametrize(
    ("p", "legend"), [(0.5, "kept (x2)"), (0.25, "kept (x1.33333)"), (1.0, "kept (none at p = 1)")]
)
def test_the_legend_says_how_kept_elements_are_scaled(capsys, p, legend):
    _, out = run(capsys, "--backend", "numpy", "--p", str(p))
    assert legend in out


def test_the_grid_is_the_reference_mask(capsys):
    _, out = run(capsys, "--backend", "numpy")
    _, keep = reference.dropout([1.0] * 64, (4, 16), "float32", 0.5, 42)
    rows = ["".join("█" if kept else "·" for kept in keep[16 * r : 16 * (r + 1)]) for r in range(4)]
    assert column_of(out, "numpy (cpu)")[1:5] == rows


def test_the_contrast_shows_numpys_own_generator_giving_another_mask(capsys):
    _, out = run(capsys, "--backend", "numpy", "--seed", "7")
    own = np.random.default_rng(7).random((4, 16)) >= 0.5
    cells = column_of(out, "numpy rng")
    assert cells[5] == sha12(own.astype(np.uint8))
    assert cells[5] != reference_digests(7, 0.5)[0]
    assert cells[6] == "different"
    assert "numpy: default_rng(seed).random(shape) >= p" in out


def test_missing_project_backends_are_listed_with_their_install_command(capsys):
    _, out = run(capsys, "--backend", "numpy")
    installed = {info.name for info in registry.list_backends()}
    missing = [name for name in hints.PROJECT_BACKENDS if name not in installed]
    assert missing, "this session installs only the NumPy backend of the project's own"
    flat = " ".join(out.split())
    for name in missing:
        assert f" {name} {' '.join(hints.install_command(name).split())}" in flat
    for name in installed & set(hints.PROJECT_BACKENDS):
        assert f"`pip install ./backends/{name}`" not in flat


def test_numpy_alone_fits_one_screen(capsys):
    _, out = run(capsys, "--backend", "numpy")
    lines = out.splitlines()
    assert len(lines) <= 30
    assert max(len(line) for line in lines) <= 100


def test_a_wrong_backend_makes_it_exit_1_and_say_so(capsys):
    status, out = run(capsys, "--backend", "numpy", "--backend", "wrong-counter")
    assert status == 1
    assert column_of(out, "wrong-counter")[7] == "DIFFERENT"
    assert column_of(out, "numpy (cpu)")[7] == "identical"
    assert "MISMATCH" in out and "bit for bit" not in out


def test_every_installed_backend_is_shown_and_a_wrong_one_fails_the_run(capsys):
    status, out = run(capsys)
    assert status == 1  # this session installs the deliberately wrong backends
    labels = grid_labels(out)
    for info in registry.list_backends():
        assert f"{info.name} (cpu)" in labels, info.name  # whole: no name is cut


#: The verdicts under the masks (a line of these ends a group of masks).
VERDICTS = {"", "identical", "DIFFERENT", "failed", "skipped", "same as ref", "different"}


def grid_labels(out: str) -> list[str]:
    """The labels above the masks in the demo's layout (8 columns of row labels, then columns of
    18), each joined from its lines: directly after a hyphen, else with a space."""
    found: list[str] = []
    block: list[list[str]] = []
    for line in out.splitlines():
        if not line.startswith(" " * 8) or not line.strip():
            block = []
            continue
        cells = [line[8 + 18 * i : 8 + 18 * (i + 1)].strip() for i in range(-(-(len(line) - 8) // 18))]
        if any(cell and set(cell) <= {"█", "·"} for cell in cells):  # a mask row: the labels are above
            for pieces in itertools.zip_longest(*block, fillvalue=""):
                label = ""
                for piece in filter(None, pieces):
                    label += ("" if not label or label.endswith("-") else " ") + piece
                found.append(label)
            block = []
        elif set(cells) <= VERDICTS:
            block = []
        else:
            block.append(cells)
    return found


def test_a_repeated_backend_is_shown_once(capsys):
    _, out = run(capsys, "--backend", "numpy", "--backend", "numpy")
    assert grid_labels(out) == ["reference", "numpy (cpu)", "numpy rng"]


class Broken(Backend):
    """A backend whose framework fails to load: the demo reports it, the others still run."""

    name: ClassVar[str] = "broken-demo"
    framework: ClassVar[str] = "numpy"
    distribution: ClassVar[str] = "unidrop-broken-demo"

    def accepts(self, x: object) -> bool:
        return False

    def load(self):
        raise RuntimeError("no such accelerator")

    def suite_adapter(self):
        from unidrop_numpy.suite_adapter import NumpySuiteAdapter

        return NumpySuiteAdapter(self)


def test_a_backend_that_fails_is_reported_and_fails_the_run(capsys, fresh_registry):
    fresh_registry.register(Broken())
    status, out = run(capsys, "--backend", "numpy", "--backend", "broken-demo")
    assert status == 1
    assert column_of(out, "broken-demo")[7] == "failed"
    assert "broken-demo: RuntimeError: no such accelerator" in out
    assert column_of(out, "numpy (cpu)")[7] == "identical"


def test_an_unknown_backend_is_refused_before_running(capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--backend", "nonesuch"])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "'nonesuch'" in captured.err


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib is not installed")
def test_png_writes_a_picture(capsys, tmp_path):
    path = tmp_path / "demo.png"
    status, out = run(capsys, "--backend", "numpy", "--png", str(path))
    assert status == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"saved {path}" in out


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "--png '': name a file ending in .png"),
        ("afile", "--png 'afile': the name must end in .png"),
        ("x.jpg", "--png 'x.jpg': the name must end in .png"),
        ("a-folder", "--png 'a-folder' is a folder: name a file ending in .png"),
        ("a-folder.png", "--png 'a-folder.png' is a folder: name a file ending in .png"),
        ("a-file/x.png", "--png 'a-file/x.png': cannot make its folder"),
    ],
)
def test_png_refuses_a_name_it_cannot_write_before_running(name, says, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-folder.png").mkdir()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(SystemExit) as info:
        main(["demo", "--backend", "numpy", "--png", name])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing ran
    assert captured.err.startswith(f"unidrop demo: error: {says}"), captured.err
    assert captured.err.count("\n") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file", "a-folder", "a-folder.png"]


def test_png_refuses_a_folder_it_cannot_write_in(capsys, tmp_path):
    if os.geteuid() == 0:  # root writes in a read-only folder: use one no user can write in
        target = Path("/proc/unidrop-demo.png")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "x.png"
    with pytest.raises(SystemExit) as info:
        main(["demo", "--backend", "numpy", "--png", str(target)])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"unidrop demo: error: --png {str(target)!r}: cannot write the file (")
    assert not target.exists()


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib is not installed")
def test_png_makes_missing_folders_and_says_the_path_it_wrote(capsys, tmp_path):
    path = tmp_path / "nested" / "dir" / "demo.PNG"
    status, out = run(capsys, "--backend", "numpy", "--png", str(path))
    assert status == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.splitlines()[-1] == f"saved {path}"
    assert sorted(p.name for p in path.parent.iterdir()) == ["demo.PNG"]


def test_png_without_matplotlib_names_what_to_install(capsys, monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a)
    )
    assert main(["demo", "--png", str(tmp_path / "x.png")]) == 2
    captured = capsys.readouterr()
    assert "--png needs matplotlib" in captured.err and "[demo]" in captured.err
    assert captured.out == "" and not (tmp_path / "x.png").exists()


def test_png_without_matplotlib_names_a_wrong_file_name_first(capsys, monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a)
    )
    monkeypatch.chdir(tmp_path)  # a relative name: the test's folder is named after matplotlib
    with pytest.raises(SystemExit) as info:
        main(["demo", "--png", "out.txt"])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert "the name must end in .png" in captured.err and "matplotlib" not in captured.err


def readme_sample() -> str:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(README_MARKER) + 2  # the marker, then the opening fence
    end = lines.index("```", start)
    return "\n".join(lines[start:end]) + "\n"


def test_the_readme_shows_what_the_demo_prints(capsys):
    installed = {info.name for info in registry.list_backends()} & set(hints.PROJECT_BACKENDS)
    if installed != {"numpy"}:
        pytest.skip(f"the README shows a machine with only the NumPy backend; here: {sorted(installed)}")
    _, out = run(capsys, "--backend", "numpy")
    assert readme_sample() == out


#: Stands in for Keras in the demo's child process: prints NumPy's own mask for (seed, p, shape).
FAKE_KERAS = """
import os, sys, numpy
seed, p, shape = int(sys.argv[1]), float(sys.argv[2]), tuple(map(int, sys.argv[3:]))
assert os.environ["KERAS_BACKEND"] == "numpy"
print("ignored line")
print("".join("1" if k else "0" for k in (numpy.random.default_rng(seed).random(shape) >= p).ravel()))
"""


def test_keras_masks_come_from_one_process_per_keras_backend(monkeypatch):
    """The child's last line is the mask, read in C order, labelled with its Keras backend."""
    from unidrop import demo

    monkeypatch.setattr(demo, "_KERAS_MASK", FAKE_KERAS)
    backends = {"numpy": ("numpy",), "absent": ("numpy", "no_such_module_here")}
    monkeypatch.setattr(demo, "KERAS_BACKENDS", backends)
    masks = demo._keras_own(7, 0.5)
    assert [label for label, _ in masks] == ["keras (numpy)"]
    np.testing.assert_array_equal(masks[0][1], np.random.default_rng(7).random((4, 16)) >= 0.5)


def test_a_keras_backend_that_fails_is_named_with_its_last_error_line(monkeypatch):
    from unidrop import demo

    monkeypatch.setattr(demo, "_KERAS_MASK", "raise SystemExit('no Keras here')")
    monkeypatch.setattr(demo, "KERAS_BACKENDS", {"numpy": ("numpy",)})
    with pytest.raises(RuntimeError, match="Keras on numpy did not draw a mask: no Keras here"):
        demo._keras_own(7, 0.5)


@pytest.mark.parametrize(
    ("label", "lines"),
    [
        ("numpy (cpu)", ["numpy (cpu)"]),
        ("mutant-threshold-off-by-one (cpu)", ["mutant-threshold-", "off-by-one (cpu)"]),
        ("mutant-bfloat16-ties-away (cpu)", ["mutant-bfloat16-", "ties-away (cpu)"]),
        (
            "mutant-block-is-one-run-from-its-start (cpu)",
            ["mutant-block-is-", "one-run-from-its-", "start (cpu)"],
        ),
        ("keras (tensorflow)", ["keras", "(tensorflow)"]),
        ("x" * 20, ["x" * 17, "xxx"]),  # one word wider than a column: the only cut
    ],
)
def test_a_long_label_is_broken_after_a_hyphen_or_at_a_space(label, lines):
    from unidrop.demo import label_lines

    assert label_lines(label) == lines


def test_the_masks_stay_in_their_columns_under_a_long_label():
    from unidrop.demo import Demo, Panel, text_lines

    keep = [[True] * 16 for _ in range(4)]
    panels = [Panel("reference", keep, "a" * 12, "b" * 12), Panel("mutant-threshold-off-by-one (cpu)", keep)]
    lines = ["".join(text for text, _ in line) for line in text_lines(Demo(7, 0.5, panels, [], []), [])]
    start = lines.index("        reference         mutant-threshold-")
    assert lines[start + 1] == "                          off-by-one (cpu)"
    assert lines[start + 2] == "        " + "█" * 16 + "  " + "█" * 16


def test_why_a_mask_was_not_drawn_is_wrapped_never_cut():
    from unidrop.demo import Demo, Panel, text_lines

    reason = (
        "RuntimeError: Keras on numpy did not draw a mask: OverflowError: Python integer "
        "18446744073709551615 out of bounds for uint32"
    )
    demo = Demo(2**64 - 1, 0.5, [Panel("reference", None)], [Panel("keras", None, "failed", note=reason)], [])
    lines = ["".join(text for text, _ in line) for line in text_lines(demo, [])]
    start = next(i for i, line in enumerate(lines) if line.startswith("  keras: "))
    assert lines[start : start + 2] == [
        "  keras: RuntimeError: Keras on numpy did not draw a mask: OverflowError: Python integer",
        "    18446744073709551615 out of bounds for uint32",
    ]


@pytest.mark.parametrize("encoding", ["ascii", "cp1252"])
def test_a_standard_output_without_the_block_characters_gets_the_mask_in_ascii(encoding):
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    command = [sys.executable, "-m", "unidrop", "demo", "--backend", "numpy"]
    done = subprocess.run(command, capture_output=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode(encoding)
    assert "# kept (x2), . dropped" in out
    rows = [
        line.split()
        for line in out.splitlines()
        if line.startswith(" " * 8) and set(line.strip()) <= set("#. ")
    ]
    unidrop_grid = rows[:4]  # the reference beside the NumPy backend (the framework's own follows)
    assert all(len(cells) == 2 and cells[0] == cells[1] and len(cells[0]) == 16 for cells in unidrop_grid)
