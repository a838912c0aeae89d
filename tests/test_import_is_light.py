"""Importing unidrop, and discovering backends, imports no array framework and no backend's work.

A backend's Implementation (its module imports the framework) is built by its ``load()`` when the
first array of its framework arrives, not before.
"""

from __future__ import annotations

import json
import subprocess
import sys

FRAMEWORKS = ("numpy", "torch", "jax", "jaxlib", "cupy", "triton", "xarray", "pandas", "hypothesis", "pytest")


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


def test_import_unidrop_leaves_the_numpy_implementation_unimported_until_an_array_arrives():
    code = (
        "import unidrop\nimport sys\nassert unidrop.list_backends()\n"
        "print('before', 'unidrop_numpy.implementation' in sys.modules, 'numpy' in sys.modules)\n"
        "import numpy\nunidrop.dropout(numpy.ones(4, numpy.float32), 0.5, seed=1)\n"
        "print('after', 'unidrop_numpy.implementation' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.split() == ["before", "False", "False", "after", "True"], out


#: For each installed backend, whether its framework and its implementation's module were imported
#: after ``import unidrop``, listing the backends and refusing a plain object; then it is loaded.
LOADS_LATE = """
import json, sys
import unidrop
assert unidrop.list_backends()
try:
    unidrop.dropout(object(), 0.5, seed=1)
except TypeError:
    pass
before = set(sys.modules)
report = {}
for name, backend in unidrop.registry.backends().items():
    try:
        module = type(backend.implementation()).__module__
    except Exception as error:  # not this test's subject (a GPU-only backend here, say)
        report[name] = {"load failed": repr(error)}
        continue
    report[name] = {
        "implementation": module,
        "implementation imported early": module in before,
        "framework imported early": backend.framework in before,
    }
print(json.dumps(report))
"""


def test_no_installed_backend_imports_its_implementation_before_an_array_arrives():
    out = subprocess.run([sys.executable, "-c", LOADS_LATE], check=True, capture_output=True, text=True)
    report = json.loads(out.stdout)
    loaded = {name: facts for name, facts in report.items() if "implementation" in facts}
    assert "numpy" in loaded, report
    assert loaded["numpy"]["implementation"] == "unidrop_numpy.implementation", report
    early = {
        name: facts
        for name, facts in loaded.items()
        if facts["implementation imported early"] or facts["framework imported early"]
    }
    assert not early, early


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
