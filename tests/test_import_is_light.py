"""Importing unidrop, and discovering backends, imports no array framework."""

from __future__ import annotations

import subprocess
import sys

FRAMEWORKS = ("numpy", "torch", "jax", "jaxlib", "cupy", "triton", "hypothesis", "pytest")


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(out.split())


def test_import_unidrop_imports_no_framework():
    loaded = modules_after("import unidrop")
    assert not loaded & set(FRAMEWORKS), loaded & set(FRAMEWORKS)


def test_listing_backends_imports_no_framework():
    loaded = modules_after("import unidrop\nassert unidrop.list_backends()")
    assert not loaded & set(FRAMEWORKS), loaded & set(FRAMEWORKS)


def test_dispatching_a_plain_object_imports_no_framework():
    code = "import unidrop\ntry:\n    unidrop.dropout(object(), 0.5, seed=1)\nexcept TypeError:\n    pass"
    loaded = modules_after(code)
    assert not loaded & set(FRAMEWORKS), loaded & set(FRAMEWORKS)


def test_the_pytest_plugin_imports_neither_unidrop_nor_hypothesis():
    """Loaded by pytest in every project where unidrop is installed, the plugin must stay inert."""
    loaded = modules_after("import _unidrop_pytestplugin")
    assert not loaded & {"unidrop", "hypothesis", "numpy"}, loaded & {"unidrop", "hypothesis", "numpy"}


def test_import_discovers_backends_without_importing_frameworks():
    loaded = modules_after("import unidrop\nassert unidrop.registry._state is not None")
    assert not loaded & set(FRAMEWORKS), loaded & set(FRAMEWORKS)


def test_the_pytest_plugin_imports_nothing_while_no_suite_class_is_collected(tmp_path):
    """Tests of a plain class, even with fixtures named like the suite's, leave unidrop unimported."""
    (tmp_path / "test_plain.py").write_text(
        "import sys\n\nimport pytest\n\n\n"
        "@pytest.fixture\ndef unidrop_device():\n    return 'mine'\n\n\n"
        "@pytest.fixture\ndef unidrop_dtype():\n    return 'float32'\n\n\n"
        "class TestPlain:\n"
        "    def test_uses_the_names(self, unidrop_device, unidrop_dtype):\n"
        "        assert (unidrop_device, unidrop_dtype) == ('mine', 'float32')\n\n\n"
        "def test_zz_nothing_of_unidrop_was_imported():\n"
        "    loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'unidrop')\n"
        "    assert not loaded, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "test_plain.py", "-p", "no:cacheprovider", "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout
