"""A fault of any plugin costs that plugin alone: a RuntimeWarning naming it and its distribution."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from _fake_entry_points import NUMPY, FakeDistribution, assert_reference_dropout, entry_point, install

import unidrop
from unidrop import registry

DIST = "faulty-dist"


def _numpy_still_works() -> None:
    x = np.linspace(-2.0, 2.0, 16, dtype=np.float32)
    assert_reference_dropout(unidrop.dropout(x, 0.5, seed=9), x, 0.5, 9)
    assert registry.backend_for(x) is registry.backends()["numpy"]


LOAD_FAULTS = [
    ("no-name", "_faulty_plugins:NoName", "AttributeError|name"),
    (
        "unhashable-name",
        "_faulty_plugins:UnhashableName",
        r"name must be a non-empty str, got \['unhashable'\]",
    ),
    ("integer-name", "_faulty_plugins:IntegerName", "name must be a non-empty str, got 123"),
    ("name-raises", "_faulty_plugins:NameRaises", "RuntimeError: no name today"),
    ("framework-raises", "_faulty_plugins:FrameworkRaises", "KeyError"),
    ("no-framework", "_faulty_plugins:NoFramework", "framework"),
    ("constructor-raises", "_faulty_plugins:ConstructorRaises", "OSError: cannot start"),
    ("not-a-backend", "_faulty_plugins:not_a_backend", "not a unidrop.Backend"),
    (
        "string-abilities",
        "_faulty_plugins:StringAbilities",
        r"abilities must be a unidrop.Abilities, got frozenset\(\{'autograd'\}\)",
    ),
    (
        "dict-abilities",
        "_faulty_plugins:DictAbilities",
        r"abilities must be a unidrop.Abilities, got \{'autograd': True\}",
    ),
    (
        "abilities-raises",
        "_faulty_plugins:AbilitiesRaises",
        "abilities raised LookupError: no abilities today",
    ),
    ("missing-attribute", "_faulty_plugins:NoSuchThing", "AttributeError"),
    ("missing-module", "unidrop_no_such_module:Backend", "ModuleNotFoundError"),
    ("import-raises", "_plugin_that_raises:Backend", "RuntimeError: boom at import"),
    ("import-exits", "_plugin_that_exits:Backend", "SystemExit: this plugin needs CUDA"),
    (
        "fmal",  # an entry point named otherwise than the backend it loads ('clumsy')
        "_faulty_plugins:Clumsy",
        "its entry point is named 'fmal' but its Backend.name is 'clumsy': they must be the same",
    ),
]


@pytest.mark.parametrize("first", [True, False], ids=["faulty-first", "faulty-last"])
@pytest.mark.parametrize(("name", "value", "error"), LOAD_FAULTS, ids=[f[0] for f in LOAD_FAULTS])
def test_a_plugin_that_fails_to_load_warns_naming_it_and_its_distribution(
    fresh_registry, monkeypatch, name, value, error, first
):
    faulty = (name, value, DIST)
    install(monkeypatch, *((faulty, NUMPY) if first else (NUMPY, faulty)))
    with pytest.warns(RuntimeWarning) as caught:
        found = registry.backends()  # what ``import unidrop`` does
    messages = [str(w.message) for w in caught]
    assert any(f"{name!r} ({DIST} 1.0) failed to load" in m and re.search(error, m) for m in messages), (
        messages
    )
    assert list(found) == ["numpy"]
    _numpy_still_works()


def test_import_unidrop_survives_a_plugin_without_a_name(fresh_registry, monkeypatch):
    """The name was read outside the try: ``import unidrop`` itself raised."""
    install(monkeypatch, ("no-name", "_faulty_plugins:NoName", DIST), NUMPY)
    with pytest.warns(RuntimeWarning, match=f"'no-name' \\({DIST} 1.0\\) failed to load"):
        assert [info.name for info in unidrop.list_backends()] == ["numpy"]


@pytest.mark.parametrize("first", [True, False], ids=["faulty-first", "faulty-last"])
def test_accepts_that_raises_costs_only_that_plugin(fresh_registry, monkeypatch, first):
    angry = ("angry", "_faulty_plugins:AcceptsRaises", "angry-dist")
    install(monkeypatch, *((angry, NUMPY) if first else (NUMPY, angry)))
    with pytest.warns(
        RuntimeWarning, match=r"'angry' \(angry-dist 1.0\) failed in accepts\(\).*accepts exploded"
    ):
        _numpy_still_works()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not on every call
        _numpy_still_works()


def test_accepts_that_raises_costs_only_that_plugin_with_warnings_as_errors(fresh_registry, monkeypatch):
    """``-W error`` turns the warning into an exception: it is dropped, not raised into the call."""
    install(monkeypatch, ("angry", "_faulty_plugins:AcceptsRaises", "angry-dist"), NUMPY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _numpy_still_works()


def test_accepts_that_raises_for_its_own_type_gives_the_no_backend_error(fresh_registry, monkeypatch):
    install(monkeypatch, ("angry", "_faulty_plugins:AcceptsRaises", "angry-dist"), NUMPY)
    with pytest.warns(RuntimeWarning, match="'angry'"), pytest.raises(TypeError, match="no backend for"):
        unidrop.dropout(object(), 0.5, seed=0)


def test_shape_and_dtype_that_raises_falls_back_to_the_next_backend(fresh_registry, monkeypatch):
    from _faulty_plugins import ClumsyArray

    install(
        monkeypatch,
        ("rescuer", "_faulty_plugins:Rescuer", "rescuer-dist"),
        ("clumsy", "_faulty_plugins:Clumsy", "clumsy-dist"),
        NUMPY,
    )
    values = np.linspace(-1.0, 1.0, 12, dtype=np.float32)
    with pytest.warns(RuntimeWarning) as caught:
        y = unidrop.dropout(ClumsyArray(values), 0.5, seed=3)
    assert_reference_dropout(y, values, 0.5, 3)
    assert any("'clumsy' (clumsy-dist 1.0) failed" in str(w.message) for w in caught)
    assert any("ZeroDivisionError: shape exploded" in str(w.message) for w in caught)
    _numpy_still_works()


def test_shape_and_dtype_that_raises_with_no_other_backend_names_the_plugin(fresh_registry, monkeypatch):
    from _faulty_plugins import ClumsyArray

    install(monkeypatch, ("clumsy", "_faulty_plugins:Clumsy", "clumsy-dist"), NUMPY)
    with pytest.raises(RuntimeError, match=r"'clumsy' \(clumsy-dist 1.0\) failed.*ZeroDivisionError") as info:
        unidrop.dropout(ClumsyArray([1.0, 2.0]), 0.5, seed=3)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    _numpy_still_works()


CLUMSY_ANSWERS = ["clumsy-answer", "clumsy-shape", "clumsy-triple", "clumsy-dtypes", "clumsy-dtype-objects"]


@pytest.mark.parametrize("name", CLUMSY_ANSWERS)
def test_a_malformed_shape_and_dtype_answer_is_a_fault_of_that_plugin(fresh_registry, monkeypatch, name):
    """Not a (shape, dtype) pair, a shape that is no tuple of ints, dtypes that are no names:
    the plugin's fault, named, not a bare TypeError or ValueError from unpacking its answer."""
    from _faulty_plugins import ClumsyArray

    value = "_faulty_plugins:" + "".join(part.title() for part in name.split("-"))
    install(monkeypatch, (name, value, "clumsy-dist"), NUMPY)
    with pytest.raises(RuntimeError, match=rf"{name!r} \(clumsy-dist 1.0\) failed on _faulty_plugins"):
        unidrop.dropout(ClumsyArray([1.0, 2.0]), 0.5, seed=3)
    with pytest.raises(RuntimeError, match=rf"{name!r} \(clumsy-dist 1.0\) failed"):
        unidrop.dropout(ClumsyArray([1.0, 2.0]), 0.5, seed=3, backend=name)
    _numpy_still_works()


@pytest.mark.parametrize("name", CLUMSY_ANSWERS)
def test_a_malformed_answer_falls_back_to_the_next_backend(fresh_registry, monkeypatch, name):
    from _faulty_plugins import ClumsyArray

    value = "_faulty_plugins:" + "".join(part.title() for part in name.split("-"))
    install(monkeypatch, ("rescuer", "_faulty_plugins:Rescuer", "rescuer-dist"), (name, value, "clumsy-dist"))
    values = np.linspace(-1.0, 1.0, 12, dtype=np.float32)
    with pytest.warns(RuntimeWarning, match=rf"{name!r} \(clumsy-dist 1.0\) failed"):
        y = unidrop.dropout(ClumsyArray(values), 0.5, seed=3)
    assert_reference_dropout(y, values, 0.5, 3)


MALFORMED_VALUES = [
    "!!! not an entry point",
    "module.with space:Attr",
    "mod:attr [extra",
    "fault_malformed:::B c",
    "",
    "1bad-module:B",
    "unidrop_numpy.backend",  # a module alone is a valid entry point, but never a Backend
]


@pytest.mark.parametrize("value", MALFORMED_VALUES)
@pytest.mark.parametrize("first", [True, False], ids=["faulty-first", "faulty-last"])
def test_a_malformed_entry_point_value_costs_only_that_plugin(fresh_registry, monkeypatch, value, first):
    """EntryPoint.module raised AttributeError outside the try: ``import unidrop`` itself failed.
    The warning quotes the value and the form expected (it said "'NoneType' object has no
    attribute 'group'", from inside importlib.metadata)."""
    faulty = ("malformed", value, DIST)
    install(monkeypatch, *((faulty, NUMPY) if first else (NUMPY, faulty)))
    with pytest.warns(RuntimeWarning, match=f"'malformed' \\({DIST} 1.0\\) failed to load") as caught:
        assert list(registry.backends()) == ["numpy"]
    message = next(str(w.message) for w in caught if "'malformed'" in str(w.message))
    assert f"its entry point's value {value!r} is malformed: expected 'module:Class'" in message, message
    assert "NoneType" not in message
    _numpy_still_works()


def test_an_entry_point_named_otherwise_than_its_backend_does_not_displace_the_real_one(
    fresh_registry, monkeypatch
):
    """Registered under its Backend.name, 'fmal' (from a distribution first by name) used to beat the
    real 'clumsy' and be credited with clumsy-dist's name. It is a fault of its own plugin now."""
    from _faulty_plugins import ClumsyArray

    install(
        monkeypatch,
        ("fmal", "_faulty_plugins:Clumsy", "aaa-dist"),
        ("clumsy", "_faulty_plugins:Clumsy", "clumsy-dist"),
    )
    with pytest.warns(RuntimeWarning) as caught:
        plugins = {info.name: info.distribution for info in unidrop.list_backends()}
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "claim the name" in m], messages
    assert any(
        "'fmal' (aaa-dist 1.0) failed to load" in m and "Backend.name is 'clumsy'" in m for m in messages
    ), messages
    assert plugins == {"clumsy": "clumsy-dist"}
    assert registry.backend_for(ClumsyArray([1.0])).name == "clumsy"


def test_a_backend_refusing_an_array_is_its_verdict_not_a_fault(fresh_registry, monkeypatch):
    """TypeError/ValueError from shape_and_dtype reach the caller unchanged (e.g. a sparse tensor)."""
    install(monkeypatch, NUMPY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match=r"got the subclass numpy\.ma\.MaskedArray"):
            unidrop.dropout(np.ma.masked_array(np.ones(4)), 0.5, seed=0)


def test_a_plugin_that_failed_to_load_is_named_for_arrays_of_its_framework(fresh_registry, monkeypatch):
    install(monkeypatch, ("torch", "unidrop_no_such_module:TorchBackend", "unidrop-torch"), NUMPY)

    class FakeTensor:
        pass

    FakeTensor.__module__ = "torch"
    with pytest.warns(RuntimeWarning, match="'torch'"):
        registry.backends()
    with pytest.raises(TypeError) as info:
        unidrop.dropout(FakeTensor(), 0.5, seed=0)
    message = str(info.value)
    assert "installed but failed to load: ModuleNotFoundError" in message, message
    assert "'torch' (unidrop-torch 1.0)" in message
    assert "pip install" not in message
    with pytest.raises(ValueError, match=r"'torch' \(unidrop-torch 1.0\) is installed but failed to load"):
        unidrop.dropout(np.ones(2), 0.5, seed=0, backend="torch")


def _array_of(module: str) -> object:
    """An instance of a class whose module is ``module`` (an array type of that framework)."""
    return type("FakeArray", (), {"__module__": module})()


@pytest.mark.parametrize(
    ("module", "requires"),
    [
        ("faultarr", "faultarr>=1.0"),
        ("faultarr.core", "FaultArr; python_version >= '3'"),
        ("_pytest", "pytest"),
    ],
    ids=["same-name", "normalized-with-a-marker", "module-of-another-distribution"],
)
def test_a_failed_plugin_whose_distribution_requires_the_framework_is_named(
    fresh_registry, monkeypatch, module, requires
):
    """Its entry point is not named after the framework ('fimp' for faultarr) and its import failed,
    so its framework is unknown: its distribution's Requires-Dist tells (``_pytest`` is installed by
    the distribution ``pytest``, which the installed metadata says)."""
    dist = FakeDistribution("fault-imp", requires=(requires, "numpy"))
    points = [entry_point("fimp", "_plugin_that_raises:Backend", dist)]
    monkeypatch.setattr(registry, "entry_points", lambda group: points)
    with pytest.warns(RuntimeWarning, match="'fimp' .* failed to load"):
        registry.backends()
    with pytest.raises(TypeError) as info:
        unidrop.dropout(_array_of(module), 0.5, seed=0)
    message = str(info.value)
    assert "its backend 'fimp' (fault-imp 1.0) is installed but failed to load: RuntimeError: boom" in message
    assert "write a backend" not in message


def test_a_failed_plugin_is_not_named_for_a_framework_it_requires_only_in_an_extra(
    fresh_registry, monkeypatch
):
    dist = FakeDistribution("fault-imp", requires=("faultarr; extra == 'test'",))
    points = [entry_point("fimp", "_plugin_that_raises:Backend", dist)]
    monkeypatch.setattr(registry, "entry_points", lambda group: points)
    with pytest.warns(RuntimeWarning, match="'fimp'"):
        registry.backends()
    with pytest.raises(TypeError, match="write a backend for it") as info:
        unidrop.dropout(_array_of("faultarr"), 0.5, seed=0)
    assert "fimp" not in str(info.value)


#: Plugins taking ClumsyArray whose ``load()`` fails: name -> (entry point value, what the error says)
LOAD_CALL_FAULTS = {
    "load-raises": ("LoadRaises", "OSError: libframework.so: cannot open shared object file"),
    "load-exits": ("LoadExits", "SystemExit: this framework needs CUDA"),
    "load-returns-none": ("LoadReturnsNone", "must return a unidrop Implementation, got None"),
    "load-returns-a-class": ("LoadReturnsAClass", "must return a unidrop Implementation, got <class"),
    "load-returns-a-lookalike": ("LoadReturnsALookalike", "must return a unidrop Implementation"),
    "load-returns-its-backend": ("LoadReturnsItsBackend", "must return a unidrop Implementation"),
}


@pytest.mark.parametrize("name", sorted(LOAD_CALL_FAULTS))
def test_a_load_that_fails_is_a_fault_of_that_plugin_naming_it(fresh_registry, monkeypatch, name):
    """load() raising, or answering something that is not an Implementation: a RuntimeError naming
    the plugin (with the cause), on every call, and the NumPy backend is untouched."""
    from _faulty_plugins import ClumsyArray

    value, error = LOAD_CALL_FAULTS[name]
    install(monkeypatch, (name, f"_faulty_plugins:{value}", "clumsy-dist"), NUMPY)
    for backend in (None, name):  # chosen by the array's type, and by name
        with pytest.raises(
            RuntimeError, match=rf"{name!r} \(clumsy-dist 1.0\) failed on _faulty_plugins"
        ) as info:
            unidrop.dropout(ClumsyArray([1.0, 2.0]), 0.5, seed=3, backend=backend)
        assert error in str(info.value), str(info.value)
        assert info.value.__cause__ is not None
    _numpy_still_works()


@pytest.mark.parametrize("name", sorted(LOAD_CALL_FAULTS))
def test_a_load_that_fails_falls_back_to_the_next_accepting_backend(fresh_registry, monkeypatch, name):
    from _faulty_plugins import ClumsyArray

    value, error = LOAD_CALL_FAULTS[name]
    install(
        monkeypatch,
        ("rescuer", "_faulty_plugins:Rescuer", "rescuer-dist"),
        (name, f"_faulty_plugins:{value}", "clumsy-dist"),
        NUMPY,
    )
    values = np.linspace(-1.0, 1.0, 12, dtype=np.float32)
    with pytest.warns(RuntimeWarning) as caught:
        y = unidrop.dropout(ClumsyArray(values), 0.5, seed=3)
    assert_reference_dropout(y, values, 0.5, 3)
    faults = [str(w.message) for w in caught if f"{name!r} (clumsy-dist 1.0) failed" in str(w.message)]
    assert faults and error in faults[0] and "trying the next backend" in faults[0], faults
    # the conflict warning names the backend that really served it, not the one that failed
    conflicts = [str(w.message) for w in caught if "several unidrop backends accept" in str(w.message)]
    assert len(conflicts) == 1, conflicts
    assert "'rescuer' (rescuer-dist 1.0) serves it (those before it failed on it)" in conflicts[0]
    assert f"{name!r} (clumsy-dist 1.0), which failed on it" in conflicts[0]
    assert registry.server(ClumsyArray(values)).name == "rescuer"
    assert registry.backend_for(ClumsyArray(values)).name == name  # by accepts() alone: its type's owner
    _numpy_still_works()


def test_a_load_that_fails_does_not_break_the_same_frameworks_other_backend(fresh_registry, monkeypatch):
    """A backend of NumPy's own framework whose load() fails costs NumPy's backend nothing."""
    from _faulty_plugins import LoadRaises

    install(monkeypatch, NUMPY)

    class BrokenNumpyTaker(LoadRaises):
        name = "broken-numpy-taker"
        framework = "numpy"

        def accepts(self, x: object) -> bool:
            return isinstance(x, np.ndarray)

    registry.register(BrokenNumpyTaker(), version="1.0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'several backends accept numpy.ndarray'
        _numpy_still_works()
    with pytest.raises(RuntimeError, match=r"'broken-numpy-taker' \(clumsy-dist 1.0\) failed.*OSError"):
        unidrop.dropout(np.ones(4, np.float32), 0.5, seed=0, backend="broken-numpy-taker")


def test_unidrop_backends_names_a_load_failure_and_still_lists_the_others(
    fresh_registry, monkeypatch, capsys
):
    """``unidrop backends``: a backend whose load() raises (here a bare NotImplementedError, which
    has no message) is listed with the exception's type; the other backends and their array types
    are listed as usual."""
    from unidrop.cli import main

    install(monkeypatch, ("bare-load", "_faulty_plugins:LoadRaisesBare", DIST), NUMPY)
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"bare-load .*\(the backend failed to load: NotImplementedError\)$", out, re.MULTILINE
    ), out
    assert re.search(r"^  numpy .* cpu$", out, re.MULTILINE), out
    assert re.search(r"^  numpy\.ndarray +numpy ", out, re.MULTILINE), out


def test_unidrop_backends_names_the_backend_that_really_serves_a_type(fresh_registry, monkeypatch, capsys):
    """A rival accepting ClumsyArray first whose load() raises: the table names the backend that
    serves it (it named the one that failed), and marks the other as failed on it."""
    from _faulty_plugins import ClumsyArray, Rescuer

    from unidrop.cli import main
    from unidrop.conformance.adapter import SuiteAdapter

    class ClumsyAdapter(SuiteAdapter):
        def from_numpy(self, array: np.ndarray, dtype: str, device: str | None = None) -> ClumsyArray:
            return ClumsyArray(array.astype(dtype))

        def to_numpy(self, x: ClumsyArray) -> np.ndarray:
            return np.asarray(x)

    class AdaptedRescuer(Rescuer):
        def suite_adapter(self) -> SuiteAdapter:
            return ClumsyAdapter(self)

    install(monkeypatch, ("load-raises", "_faulty_plugins:LoadRaises", "clumsy-dist"), NUMPY)
    registry.register(AdaptedRescuer(), version="1.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["backends"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    assert ["_faulty_plugins.ClumsyArray", "rescuer", "load-raises", "(failed", "on", "it)"] in rows, out
    assert not [w for w in caught if "several" in str(w.message) or "next backend" in str(w.message)]
