"""Every ```python block of README.md, docs/*.md and backends/*/README.md runs as written.

Each block runs on its own, in a fresh namespace, in a temporary directory. A block that is
deliberately not runnable (a signature, a piece of a larger program) is marked with the line
``<!-- fragment -->`` just before its opening fence, and is not run. A block that
imports a framework not installed in this session is skipped, naming it: each backend's nox
session runs this file with its framework installed, so every block runs somewhere in CI, and
a block for a GPU-only backend runs where that backend reports a device.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "backends").glob("*/README.md")),  # each backend distribution's own page
]
FRAGMENT = "<!-- fragment -->"
OPENING = ("```python", "```py")


@dataclass(frozen=True)
class Block:
    """One fenced Python block: where it starts (the fence's line) and its code."""

    path: Path
    line: int
    code: str
    fragment: bool

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of a Markdown file, each marked a fragment if the marker precedes it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        if lines[index].strip() not in OPENING:
            index += 1
            continue
        start = index
        index += 1
        while index < len(lines) and lines[index].strip() != "```":
            index += 1
        if index == len(lines):
            raise AssertionError(f"{path.relative_to(ROOT)}:{start + 1}: a ```python block is never closed")
        previous = next((line.strip() for line in reversed(lines[:start]) if line.strip()), "")
        code = textwrap.dedent("\n".join(lines[start + 1 : index]))
        blocks.append(Block(path, start + 1, code, previous == FRAGMENT))
        index += 1
    return blocks


BLOCKS = [block for path in DOCUMENTS for block in python_blocks(path)]


def imported_modules(code: str) -> list[str]:
    """The top-level modules a block imports, in order of first appearance."""
    names: list[str] = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found = [node.module]
        else:
            continue
        for name in found:
            if name.partition(".")[0] not in names:
                names.append(name.partition(".")[0])
    return names


def skip_reason(block: Block) -> str | None:
    """Why a block cannot run in this session (a module not installed, no device), or None."""
    modules = imported_modules(block.code)
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        return f"{block.name} needs {', '.join(missing)}, not installed in this session"
    import unidrop

    for info in unidrop.list_backends():
        if info.framework in modules and not unidrop.get_backend(info.name).implementation().devices():
            return f"{block.name} needs a device of the {info.name} backend; it reports none here"
    return None


def test_the_documents_have_python_blocks_to_run():
    """The parser finds the README's example, so the tests below are not vacuous."""
    readme = [block for block in BLOCKS if block.path.name == "README.md"]
    assert readme and not readme[0].fragment
    assert "unidrop.dropout" in readme[0].code


def test_every_markdown_file_with_python_blocks_is_run():
    """A user-facing Markdown page with a ```python block is one of the documents run here."""
    pages = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]  # .nox, .git, .venv
        for name in files:
            path = Path(folder) / name
            lines = path.read_text(encoding="utf-8").splitlines() if name.endswith(".md") else []
            if any(line.strip() in OPENING for line in lines):
                pages.append(path)
    assert pages
    assert sorted(set(pages) - set(DOCUMENTS)) == []


@pytest.mark.parametrize("block", [b for b in BLOCKS if not b.fragment], ids=lambda b: b.name)
def test_python_block_runs_as_written(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    code = compile(block.code, block.name, "exec")
    reason = skip_reason(block)
    if reason:
        pytest.skip(reason)
    monkeypatch.chdir(tmp_path)
    exec(code, {"__name__": "__docs__"})
