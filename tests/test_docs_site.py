"""The documentation site (mkdocs.yml, built by ``nox -s docs``): every page is on it, and its mask
picture is drawn from the real implementation.

Building the site itself is the ``docs`` session's job (``mkdocs build --strict``); the Python
blocks of its pages run in tests/test_docs_examples.py.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from unidrop import reference

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def nav_pages() -> list[str]:
    """The Markdown files named in mkdocs.yml's nav (``- Title: page.md`` lines)."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text[text.index("\nnav:") : text.index("\nmarkdown_extensions:")]
    return re.findall(r"^\s+- [^:]+: (\S+\.md)$", nav, flags=re.MULTILINE)


def test_every_page_is_on_the_site_and_every_nav_entry_exists():
    pages = nav_pages()
    assert "index.md" in pages and "quickstart.md" in pages and "reference.md" in pages
    assert sorted(pages) == sorted(path.name for path in DOCS.glob("*.md"))


def test_the_pictures_the_pages_show_exist():
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text(encoding="utf-8")):
            assert (DOCS / target).is_file(), f"{page.name} shows {target}, which is missing"


def load_render_masks():
    spec = importlib.util.spec_from_file_location("render_masks", DOCS / "scripts" / "render_masks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_mask_picture_shows_the_reference_masks():
    render_masks = load_render_masks()
    drawn = render_masks.panels()
    assert len(drawn) == len(render_masks.CALLS) == 4
    for (_, kwargs), (title, keep, y) in zip(render_masks.CALLS, drawn, strict=True):
        ones = [1.0] * 64
        expected, bits = reference.dropout(ones, (4, 16), "float32", 0.5, 42, **kwargs)
        assert keep.ravel().tolist() == bits, title
        assert y.ravel().tolist() == expected, title
        assert f"mask shape {keep.shape}" in title
    assert drawn[2][1].shape == (1, 16) and drawn[3][1].shape == (4, 1)


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib is not installed")
def test_the_picture_script_writes_a_png(tmp_path):
    path = tmp_path / "masks.png"
    load_render_masks().render(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.frombuffer(path.read_bytes(), np.uint8).size > 1000
