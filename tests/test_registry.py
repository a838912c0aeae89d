"""Discovery, dispatch and error messages of the backend registry."""

from __future__ import annotations

import array
import re
import warnings
from decimal import Decimal
from fractions import Fraction
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest

import unidrop
from unidrop import hints, registry

ROOT = Path(__file__).resolve().parents[1]


def fake_entry_points(*specs: tuple[str, str]):
    points = [EntryPoint(name, value, registry.ENTRY_POINT_GROUP) for name, value in specs]
    return lambda group: points if group == registry.ENTRY_POINT_GROUP else []


def test_numpy_backend_is_discovered_through_its_entry_point():
    names = {info.name: info for info in unidrop.list_backends()}
    assert names["numpy"].distribution == "unidrop-numpy"
    assert names["numpy"].framework == "numpy"


def test_broken_plugin_warns_by_name_and_others_keep_working(fresh_registry, monkeypatch):
    monkeypatch.setattr(
        registry,
        "entry_points",
        fake_entry_points(
            ("broken", "unidrop_no_such_module:Backend"),
            ("numpy", "unidrop_numpy.backend:NumpyBackend"),
        ),
    )
    with pytest.warns(RuntimeWarning, match=r"'broken'.*failed to load.*ModuleNotFoundError"):
        found = registry.backends()
    assert list(found) == ["numpy"]
    y = unidrop.dropout(np.ones(8, np.float32), 0.5, seed=0)
    assert y.shape == (8,)


def test_warnings_as_errors_do_not_let_a_broken_plugin_break_the_others(fresh_registry, monkeypatch):
    """Under ``-W error`` (or pytest's ``filterwarnings = error``) the warning is dropped, not
    raised out of discovery (which runs at ``import unidrop``); the fault stays on record."""
    monkeypatch.setattr(
        registry,
        "entry_points",
        fake_entry_points(
            ("broken", "unidrop_no_such_module:Backend"),
            ("numpy", "unidrop_numpy.backend:NumpyBackend"),
            ("numpy", "unidrop_numpy.backend:NumpyBackend"),  # a second claim of the name: warned too
        ),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(registry.backends()) == ["numpy"]
        assert unidrop.dropout(np.ones(8, np.float32), 0.5, seed=0).shape == (8,)
    assert [failure.name for failure in registry.failures()] == ["broken"]


def test_plugin_that_is_not_a_backend_warns(fresh_registry, monkeypatch):
    monkeypatch.setattr(registry, "entry_points", fake_entry_points(("odd", "math:pi")))
    with pytest.warns(RuntimeWarning, match="'odd'.*not a unidrop.Backend"):
        assert registry.backends() == {}


def test_two_plugins_claiming_one_name_warn_and_the_first_is_kept(fresh_registry, monkeypatch):
    monkeypatch.setattr(
        registry,
        "entry_points",
        fake_entry_points(
            ("numpy", "unidrop_numpy.backend:NumpyBackend"),
            ("numpy", "unidrop_numpy.backend:NumpyBackend"),  # another entry point, the same name
        ),
    )
    with pytest.warns(RuntimeWarning, match="two unidrop backends claim the name 'numpy'"):
        found = registry.backends()
    assert list(found) == ["numpy"]


def test_discovery_runs_once(fresh_registry, monkeypatch):
    calls = []

    def counting(group):
        calls.append(group)
        return []

    monkeypatch.setattr(registry, "entry_points", counting)
    registry.backends()
    registry.backends()
    registry.list_backends()
    assert calls == [registry.ENTRY_POINT_GROUP]


def test_unknown_type_names_the_type_the_installed_backends_and_the_fix():
    class Opaque:
        pass

    with pytest.raises(TypeError) as info:
        unidrop.dropout(Opaque(), 0.5, seed=0)
    message = str(info.value)
    assert "Opaque" in message
    assert "numpy" in message  # installed backends are listed
    assert "write a backend" in message


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ([1.0, 2.0], "Python list"),
        ((1.0, 2.0), "Python tuple"),
        (1.5, "Python scalar"),
        (3, "Python scalar"),
        (range(3), "Python range"),
        (Fraction(1, 2), "Python scalar"),
        (Decimal("1.5"), "Python scalar"),
        (array.array("f", [1.0, 2.0]), "Python array.array"),
        (memoryview(bytearray(8)).cast("f"), "Python memoryview"),
    ],
    ids=["list", "tuple", "float", "int", "range", "fraction", "decimal", "array.array", "memoryview"],
)
def test_python_lists_and_scalars_are_told_to_convert_with_numpy_asarray(value, what):
    with pytest.raises(TypeError) as info:
        unidrop.dropout(value, 0.5, seed=0)
    message = str(info.value)
    assert f"{what} is not an array" in message and "numpy.asarray(x)" in message, message
    assert "write a backend" not in message


def test_an_object_numpy_can_convert_is_told_to_convert_it():
    """A type of no installed framework that offers __array__ (a table column, say) can be converted."""

    class Column:
        def __array__(self, dtype=None, copy=None):
            return np.ones(3, np.float32)

    with pytest.raises(TypeError) as info:
        unidrop.dropout(Column(), 0.5, seed=0)
    message = str(info.value)
    assert "converts with numpy.asarray" in message and "numpy.asarray(x)" in message, message
    assert "write a backend" in message  # its other way in


def test_without_numpy_backend_a_list_is_also_told_how_to_install_it(fresh_registry, monkeypatch):
    monkeypatch.setattr(registry, "entry_points", fake_entry_points())
    with pytest.raises(TypeError, match=r"numpy\.asarray\(x\).*pip install \./backends/numpy"):
        unidrop.dropout([1.0], 0.5, seed=0)


def test_a_numpy_scalar_without_numpy_backend_is_told_to_install_it(fresh_registry, monkeypatch):
    """np.float64 subclasses Python's float: its framework's hint comes first."""
    monkeypatch.setattr(registry, "entry_points", fake_entry_points())
    with pytest.raises(TypeError) as info:
        unidrop.dropout(np.float64(1.0), 0.5, seed=0)
    assert "pip install ./backends/numpy" in str(info.value)
    assert "not an array" not in str(info.value)


def test_known_framework_without_backend_says_how_to_install_it_now_and_later(fresh_registry, monkeypatch):
    monkeypatch.setattr(registry, "entry_points", fake_entry_points())

    class FakeTensor:
        __module__ = "torch"

    with pytest.raises(TypeError) as info:
        unidrop.dropout(FakeTensor(), 0.5, seed=0)
    message = str(info.value)
    # unidrop-torch requires unidrop-numpy, which no index has either: the checkout command names it
    assert "`pip install ./backends/numpy ./backends/torch` from a checkout of unidrop" in message, message
    assert "`pip install unidrop-torch` once it is published" in message, message


@pytest.mark.parametrize("name", sorted(hints.PROJECT_BACKENDS))
def test_a_checkout_install_command_names_every_project_distribution_it_needs(name):
    """Each backend's unidrop-* requirements (besides the core) are in its checkout command."""
    tomllib = pytest.importorskip("tomllib")
    pyproject = ROOT / "backends" / name / "pyproject.toml"
    requires = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    needed = [re.match(r"[A-Za-z0-9_.-]+", text).group(0) for text in requires if text.startswith("unidrop-")]
    command = hints.install_command(name).split("`")[1]
    for distribution in needed:
        folder = distribution.removeprefix("unidrop-")
        assert f"./backends/{folder}" in command.split(), (name, command)
    assert command.split()[-1] == f"./backends/{name}"


def test_jax_arrays_from_jaxlib_get_the_jax_install_hint(fresh_registry, monkeypatch):
    monkeypatch.setattr(registry, "entry_points", fake_entry_points())

    class ArrayImpl:
        __module__ = "jaxlib._jax"

    with pytest.raises(TypeError, match=r"pip install \./backends/jax"):
        unidrop.dropout(ArrayImpl(), 0.5, seed=0)


def test_an_unknown_backend_name_of_the_project_says_how_to_install_it(fresh_registry, monkeypatch):
    monkeypatch.setattr(registry, "entry_points", fake_entry_points())
    with pytest.raises(ValueError, match=r"no unidrop backend named 'cupy'.*pip install \./backends/cupy"):
        unidrop.get_backend("cupy")


@pytest.mark.parametrize("bad", [123, 1.5, b"numpy", ["numpy"], True, np.str_])
def test_backend_must_be_a_name_or_a_backend(bad):
    with pytest.raises(TypeError) as info:
        unidrop.dropout(np.ones(2, np.float32), 0.5, seed=0, backend=bad)
    message = str(info.value)
    assert repr(bad) in message, message
    assert "backend name" in message and "unidrop.Backend instance" in message, message


def test_explicit_backend_override_by_name_and_by_object():
    x = np.ones(16, np.float32)
    by_type = unidrop.dropout(x, 0.5, seed=4)
    np.testing.assert_array_equal(unidrop.dropout(x, 0.5, seed=4, backend="numpy"), by_type)
    backend = unidrop.get_backend("numpy")
    np.testing.assert_array_equal(unidrop.dropout(x, 0.5, seed=4, backend=backend), by_type)


def test_an_explicit_backend_is_asked_once_per_type_and_a_refusal_each_time(fresh_registry):
    from unidrop_numpy import NumpyBackend

    asked = []

    class Counting(NumpyBackend):
        name = "counting"

        def accepts(self, x):  # type: ignore[no-untyped-def]
            asked.append(type(x))
            return type(x) is np.ndarray

    x = np.arange(1, 9, dtype=np.float32)
    expected = unidrop.dropout(x, 0.5, seed=4)
    counting = Counting()
    registry.register(counting)
    for backend in ("counting", counting, "counting", counting):
        np.testing.assert_array_equal(unidrop.dropout(x, 0.5, seed=4, backend=backend), expected)
    assert asked == [np.ndarray, np.ndarray]  # once by name, once by the instance
    for _ in range(2):  # a refusal is never remembered: asked, and refused, each time
        with pytest.raises(TypeError, match="backend 'counting' does not take arrays of type"):
            unidrop.dropout(np.float32(1), 0.5, seed=4, backend="counting")
    assert asked[2:] == [np.float32, np.float32]
    passing = Counting()  # an instance the registry does not hold: asked on every call
    del asked[:]
    for _ in range(2):
        np.testing.assert_array_equal(unidrop.dropout(x, 0.5, seed=4, backend=passing), expected)
    assert asked == [np.ndarray, np.ndarray]


def test_unknown_backend_name_lists_the_installed_ones():
    with pytest.raises(ValueError, match=r"no unidrop backend named 'nope'; installed: .*numpy"):
        unidrop.dropout(np.ones(2), 0.5, seed=0, backend="nope")


def test_backend_that_does_not_take_the_array_says_so():
    class NotNumpy:
        pass

    with pytest.raises(TypeError, match="backend 'numpy' does not take arrays of type"):
        unidrop.dropout(NotNumpy(), 0.5, seed=0, backend="numpy")


def test_register_by_hand(fresh_registry):
    from unidrop_numpy import NumpyBackend

    class Renamed(NumpyBackend):
        name = "handmade"

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        registry.register(Renamed(), version="1.2")
    assert any(i.name == "handmade" and i.version == "1.2" for i in unidrop.list_backends())
    with pytest.raises(TypeError, match=r"needs a unidrop\.Backend instance"):
        registry.register(object())  # type: ignore[arg-type]


def test_a_plugin_imported_before_unidrop_is_still_discovered():
    """Importing a plugin first imports unidrop midway through the plugin's own import."""
    import subprocess
    import sys

    code = (
        "import warnings\nwarnings.simplefilter('error')\n"
        "from unidrop_numpy import chunked\nimport unidrop\n"
        "print(' '.join(info.name for info in unidrop.list_backends()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "numpy" in out.split()


def test_unidrop_backends_shows_which_backend_serves_which_array_type(fresh_registry, monkeypatch, capsys):
    from _fake_entry_points import NUMPY, install

    from unidrop.cli import main

    install(
        monkeypatch,
        ("hoarder", "_faulty_plugins:Hoarder", "hoarder-dist"),
        ("broken", "unidrop_no_such_module:Backend", "broken-dist"),
        NUMPY,
    )
    with pytest.warns(RuntimeWarning, match="'broken'") as caught:
        assert main(["backends"]) == 0
    assert not [w for w in caught if "several" in str(w.message)]  # the table says it instead
    out = capsys.readouterr().out
    assert "installed but failed to load: 'broken' (broken-dist 1.0): ModuleNotFoundError" in out, out
    assert ["numpy.ndarray", "numpy", "hoarder"] in [line.split() for line in out.splitlines()], out


def test_unidrop_backends_with_none_installed_says_how_to_install_one(fresh_registry, monkeypatch, capsys):
    from unidrop.cli import main

    monkeypatch.setattr(registry, "entry_points", fake_entry_points())
    assert main(["backends"]) == 1
    assert "`pip install ./backends/numpy` from a checkout" in capsys.readouterr().out
