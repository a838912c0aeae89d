"""Discovery while a plugin imports: nothing registered or installed is lost, whatever the order.

A plugin's module imports unidrop, and may call it (``register``, ``list_backends``) while its
own import is still running, before or after defining the class its entry point names. Each
test writes such a plugin module to a temporary directory and points a faked entry point at it.
"""

from __future__ import annotations

import sys
import textwrap
import warnings

import pytest
from _fake_entry_points import NUMPY, install

from unidrop import registry

#: A Backend descriptor with every abstract method, named by the class attribute ``name``.
MINIMAL = """
from typing import Any

from unidrop import Backend, registry


class Minimal(Backend):
    framework = "builtins"

    def accepts(self, x: Any) -> bool:
        return False

    def load(self) -> Any:
        raise NotImplementedError


class Handmade(Minimal):
    name = "handmade"
"""

ENTRY_CLASS = """
class Entry(Minimal):
    name = "entry"
"""


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A directory on sys.path for plugin modules; the modules written there are forgotten after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write_plugin(directory, module: str, *parts: str) -> None:
    (directory / f"{module}.py").write_text("\n".join(textwrap.dedent(part) for part in parts))


def names() -> set[str]:
    return {info.name for info in registry.list_backends()}


CALLS_AT_IMPORT = {
    "register": "registry.register(Handmade())\n",
    "list_backends_then_register": "registry.list_backends()\nregistry.register(Handmade())\n",
    "register_then_list_backends": "registry.register(Handmade())\nassert 'handmade' in "
    "{i.name for i in registry.list_backends()}\n",
}


@pytest.mark.parametrize("call", sorted(CALLS_AT_IMPORT))
@pytest.mark.parametrize("entry_class", ["before", "after"])
def test_a_plugin_imported_first_that_calls_unidrop_while_importing_loses_nothing(
    fresh_registry, monkeypatch, plugin_dir, call, entry_class
):
    """The user imports the plugin before anything asked the registry; its import asks it."""
    body = [MINIMAL, ENTRY_CLASS, CALLS_AT_IMPORT[call]]
    if entry_class == "after":  # its entry point's class does not exist yet while it calls unidrop
        body = [MINIMAL, CALLS_AT_IMPORT[call], ENTRY_CLASS]
    write_plugin(plugin_dir, "early_plugin", *body)
    install(monkeypatch, NUMPY, ("entry", "early_plugin:Entry", "early-dist"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is reported as failed
        import early_plugin  # noqa: F401

        assert names() == {"numpy", "entry", "handmade"}
        assert registry.failures() == []


@pytest.mark.parametrize("call", sorted(CALLS_AT_IMPORT))
@pytest.mark.parametrize("entry_class", ["before", "after"])
def test_a_plugin_loaded_by_discovery_that_registers_while_importing_loses_nothing(
    fresh_registry, monkeypatch, plugin_dir, call, entry_class
):
    """Discovery imports the plugin; the plugin's import registers another backend by hand."""
    body = [MINIMAL, ENTRY_CLASS, CALLS_AT_IMPORT[call]]
    if entry_class == "after":
        body = [MINIMAL, CALLS_AT_IMPORT[call], ENTRY_CLASS]
    write_plugin(plugin_dir, "loaded_plugin", *body)
    install(monkeypatch, NUMPY, ("entry", "loaded_plugin:Entry", "loaded-dist"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert names() == {"numpy", "entry", "handmade"}
        assert registry.failures() == []


def test_a_registration_made_during_discovery_still_replaces_a_discovered_backend(
    fresh_registry, monkeypatch, plugin_dir
):
    """Registering a name that discovery also finds keeps the registered one, as after discovery."""
    write_plugin(
        plugin_dir,
        "replacing_plugin",
        MINIMAL,
        "class Mine(Minimal):\n    name = 'numpy'\n\nregistry.register(Mine())\n",
        ENTRY_CLASS,
    )
    install(monkeypatch, NUMPY, ("entry", "replacing_plugin:Entry", "replacing-dist"))
    with pytest.warns(RuntimeWarning, match=r"register\(\) replaces unidrop backend 'numpy'"):
        backends = registry.backends()
    assert type(backends["numpy"]).__name__ == "Mine"
    assert set(backends) == {"numpy", "entry"}


def test_a_plugin_with_its_own_circular_import_fails_once_and_is_not_retried(
    fresh_registry, monkeypatch, plugin_dir
):
    """Its import fails on its own (no import of it is in progress): a failure, reported once."""
    package = plugin_dir / "selfcircular"
    package.mkdir()
    (package / "__init__.py").write_text("from .sub import helper\n\nclass Entry:\n    pass\n")
    (package / "sub.py").write_text("from selfcircular import Entry\n\ndef helper():\n    pass\n")
    install(monkeypatch, NUMPY, ("broken", "selfcircular:Entry", "broken-dist"))
    with pytest.warns(RuntimeWarning, match=r"'broken' \(broken-dist 1.0\) failed to load"):
        assert names() == {"numpy"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # discovery is not run again: no second warning
        assert names() == {"numpy"}
    assert [failure.name for failure in registry.failures()] == ["broken"]


def test_an_imported_plugin_module_without_the_named_class_is_a_failure(
    fresh_registry, monkeypatch, plugin_dir
):
    """A module fully imported before discovery, missing its entry point's attribute, has failed."""
    write_plugin(plugin_dir, "finished_plugin", MINIMAL)
    import finished_plugin  # noqa: F401

    install(monkeypatch, NUMPY, ("missing", "finished_plugin:NoSuchClass", "missing-dist"))
    with pytest.warns(RuntimeWarning, match=r"'missing' \(missing-dist 1.0\) failed to load.*NoSuchClass"):
        assert names() == {"numpy"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert names() == {"numpy"}


def test_a_plugin_that_drops_out_while_discovery_imports_it_is_told_why(
    fresh_registry, monkeypatch, plugin_dir
):
    """Its import calls unidrop.dropout before discovery has finished: the failure says so, not that
    no NumPy backend is installed (one is)."""
    write_plugin(
        plugin_dir,
        "eager_plugin",
        MINIMAL,
        ENTRY_CLASS,
        "import numpy\nimport unidrop\n\nunidrop.dropout(numpy.ones(4), 0.5, seed=1)\n",
    )
    install(monkeypatch, NUMPY, ("entry", "eager_plugin:Entry", "eager-dist"))
    with pytest.warns(RuntimeWarning, match=r"'entry' \(eager-dist 1.0\) failed to load") as caught:
        assert names() == {"numpy"}
    message = " ".join(str(w.message) for w in caught)
    assert "it is still discovering its backends, and a plugin's import called it" in message
    assert "pip install ./backends/numpy" not in message
