"""Which backend serves an array: the array's own framework first, then a fixed order; conflicts warn."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest
from _fake_entry_points import NUMPY, assert_reference_dropout, install

import unidrop
from unidrop import registry

IMPOSTOR = ("numpy", "_faulty_plugins:Impostor", "evil-numpy")
HOARDER = ("hoarder", "_faulty_plugins:Hoarder", "hoarder-dist")
ALSO_NUMPY = ("also-numpy", "_faulty_plugins:AlsoNumpy", "also-numpy-dist")


@pytest.mark.parametrize("impostor_first", [True, False])
def test_a_third_party_claiming_numpy_never_displaces_unidrop_numpy(
    fresh_registry, monkeypatch, impostor_first
):
    install(monkeypatch, *((IMPOSTOR, NUMPY) if impostor_first else (NUMPY, IMPOSTOR)))
    with pytest.warns(RuntimeWarning, match="claim the name 'numpy'") as caught:
        found = registry.backends()
    message = next(str(w.message) for w in caught if "claim the name" in str(w.message))
    assert "keeping unidrop-numpy" in message and "ignoring evil-numpy" in message, message
    assert unidrop.list_backends()[0].distribution == "unidrop-numpy"
    assert type(found["numpy"]).__module__ == "unidrop_numpy.backend"
    x = np.linspace(-1.0, 1.0, 8, dtype=np.float32)
    assert_reference_dropout(unidrop.dropout(x, 0.5, seed=1), x, 0.5, 1)


def test_two_third_parties_claiming_one_name_keep_the_same_one_in_any_order(fresh_registry, monkeypatch):
    a = ("numpy", "_faulty_plugins:Impostor", "aaa-numpy")
    b = ("numpy", "_faulty_plugins:OtherImpostor", "bbb-numpy")
    kept = set()
    for order in ((a, b), (b, a)):
        registry.reset()
        install(monkeypatch, *order)
        with pytest.warns(RuntimeWarning, match="keeping aaa-numpy 1.0.*ignoring bbb-numpy 1.0"):
            kept.add(type(registry.backends()["numpy"]).__name__)
    assert kept == {"Impostor"}


def test_an_array_only_the_ignored_one_of_two_same_named_plugins_takes_names_it_and_the_fix(
    fresh_registry, monkeypatch, capsys
):
    """'clumsy' of aaa-decoy (first by distribution name) is kept and takes nothing; 'clumsy' of
    clumsy-dist, ignored, would take ClumsyArray. The errors used to name neither."""
    from _faulty_plugins import ClumsyArray

    from unidrop.cli import main

    install(
        monkeypatch,
        ("clumsy", "_faulty_plugins:Clumsy", "clumsy-dist"),
        ("clumsy", "_faulty_plugins:NamedClumsy", "aaa-decoy"),
        NUMPY,
    )
    with pytest.warns(
        RuntimeWarning, match=r"keeping aaa-decoy 1.0 .*ignoring clumsy-dist 1.0; uninstall one"
    ):
        registry.backends()
    fix = (
        "its backend 'clumsy' (clumsy-dist 1.0) is installed but ignored: 'clumsy' (aaa-decoy 1.0) "
        "claims the same name and is kept (first by distribution name); uninstall one of the two "
        "distributions, clumsy-dist or aaa-decoy"
    )
    with pytest.raises(TypeError, match=r"no backend for _faulty_plugins\.ClumsyArray") as info:
        unidrop.dropout(ClumsyArray([1.0]), 0.5, seed=0)
    assert fix in str(info.value), str(info.value)
    with pytest.raises(TypeError, match="backend 'clumsy' does not take arrays of type") as info:
        unidrop.dropout(ClumsyArray([1.0]), 0.5, seed=0, backend="clumsy")
    assert fix in str(info.value), str(info.value)
    assert [(e.plugin.distribution, e.kept.distribution) for e in registry.ignored()] == [
        ("clumsy-dist", "aaa-decoy")
    ]
    assert main(["backends"]) == 0
    assert "installed but ignored: 'clumsy' (clumsy-dist 1.0): 'clumsy' (aaa-decoy 1.0) claims" in (
        capsys.readouterr().out
    )
    x = np.linspace(-1.0, 1.0, 8, dtype=np.float32)
    assert_reference_dropout(unidrop.dropout(x, 0.5, seed=1), x, 0.5, 1)


@pytest.mark.parametrize("greedy", [HOARDER, ALSO_NUMPY], ids=["other-framework", "same-framework"])
@pytest.mark.parametrize("greedy_first", [True, False])
def test_a_third_party_accepting_ndarrays_does_not_capture_numpy_dispatch(
    fresh_registry, monkeypatch, greedy, greedy_first
):
    install(monkeypatch, *((greedy, NUMPY) if greedy_first else (NUMPY, greedy)))
    x = np.linspace(-1.0, 1.0, 8, dtype=np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert_reference_dropout(unidrop.dropout(x, 0.5, seed=2), x, 0.5, 2)
        assert_reference_dropout(unidrop.dropout(x.astype(np.float64), 0.5, seed=2), x, 0.5, 2)
        unidrop.dropout(np.float32(1.5), 0.5, seed=2)  # another ndarray-like type, same conflict
    conflicts = [str(w.message) for w in caught if "several unidrop backends accept" in str(w.message)]
    assert len(conflicts) == 1, conflicts  # once
    assert "'numpy' (unidrop-numpy 1.0) serves it" in conflicts[0]
    assert f"{greedy[0]!r} ({greedy[2]} 1.0)" in conflicts[0]
    assert registry.backend_for(x) is registry.backends()["numpy"]


def test_the_order_of_backends_does_not_depend_on_entry_point_order(fresh_registry, monkeypatch):
    specs = [
        ("rescuer", "_faulty_plugins:Rescuer", "rescuer-dist"),
        ("generic", "_faulty_plugins:Generic", "generic-dist"),
        HOARDER,
        NUMPY,
    ]
    orders = set()
    servers = set()
    from _faulty_plugins import ClumsyArray

    for permutation in itertools.permutations(specs):
        registry.reset()
        install(monkeypatch, *permutation)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            orders.add(tuple(info.name for info in unidrop.list_backends()))
            servers.add(registry.backend_for(ClumsyArray([1.0])).name)
    # this project's backends first, then the others by name
    assert orders == {("numpy", "generic", "hoarder", "rescuer")}
    assert servers == {"generic"}  # no backend owns ClumsyArray's module: the first in order serves


def test_the_owning_framework_is_asked_before_generic_backends(fresh_registry, monkeypatch):
    from _faulty_plugins import ClumsyArray

    install(
        monkeypatch,
        ("generic", "_faulty_plugins:Generic", "generic-dist"),
        ("clumsy", "_faulty_plugins:Clumsy", "clumsy-dist"),
    )
    with pytest.warns(RuntimeWarning, match=r"'clumsy' \(clumsy-dist 1.0\) serves it \(its framework is"):
        assert registry.backend_for(ClumsyArray([1.0])).name == "clumsy"


def test_a_subclass_defined_elsewhere_is_served_by_its_base_framework(fresh_registry, monkeypatch):
    install(monkeypatch, HOARDER, NUMPY)

    class Sub(np.ndarray):
        pass

    with pytest.warns(RuntimeWarning, match="'numpy' .* serves it"):
        assert registry.backend_for(np.ones(2).view(Sub)) is registry.backends()["numpy"]


def test_a_backend_registered_later_takes_part_in_cached_dispatch(fresh_registry, monkeypatch):
    from _faulty_plugins import Clumsy, ClumsyArray, Generic, RescuerImplementation

    install(monkeypatch, NUMPY)
    with pytest.raises(TypeError, match=r"no backend for _faulty_plugins\.ClumsyArray"):
        registry.backend_for(ClumsyArray([1.0]))
    registry.register(Generic())
    assert registry.backend_for(ClumsyArray([1.0])).name == "generic"  # now cached for the type

    class Owner(Clumsy):  # the type's own framework, registered after the cache was filled
        name = "owner"
        made_by = RescuerImplementation

    registry.register(Owner())
    with pytest.warns(RuntimeWarning, match="'owner' .* serves it"):
        assert registry.backend_for(ClumsyArray([1.0])).name == "owner"


def test_a_framework_imported_after_caching_is_asked_again(fresh_registry, monkeypatch):
    import types

    from _faulty_plugins import Hoarder

    class Late(Hoarder):
        name = "late"
        framework = "_unidrop_test_late_framework"

    install(monkeypatch, NUMPY)
    registry.register(Late(), version="1.0")
    x = np.ones(4, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert registry.backend_for(x).name == "numpy"  # 'late' is skipped: its framework is not imported
    monkeypatch.setitem(sys.modules, Late.framework, types.ModuleType(Late.framework))
    with pytest.warns(RuntimeWarning, match="also accepting it: 'late'"):
        assert registry.backend_for(x).name == "numpy"


def test_register_while_other_threads_dispatch(fresh_registry, monkeypatch):
    """register() used to add to the dict that dispatch iterates: 'dictionary changed size'."""
    from _faulty_plugins import Declines

    install(monkeypatch, NUMPY)
    errors: list[BaseException] = []
    stop = threading.Event()
    objects = [np.ones(2, np.float32), np.float32(1.0), np.ones(2, np.float64), object()]

    def dispatch() -> None:
        while not stop.is_set():
            for x in objects:
                try:
                    registry.backend_for(x)
                    unidrop.list_backends()
                except TypeError as error:  # object(): no backend, as expected
                    if "no backend for builtins.object" not in str(error):
                        errors.append(error)
                except BaseException as error:
                    errors.append(error)
                    stop.set()

    def register() -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            backend = Declines()
            backend.name = f"declines-{i}"  # type: ignore[misc]
            registry.register(backend)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    threads = [threading.Thread(target=dispatch) for _ in range(4)] + [threading.Thread(target=register)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and not stop.is_set():
                time.sleep(0.01)
            stop.set()
            for thread in threads:
                thread.join(10)
    finally:
        sys.setswitchinterval(switch)
    assert not errors, errors[:3]


def test_real_distributions_earlier_on_sys_path_cannot_take_over(tmp_path):
    """Installed distributions (dist-info on a path before site-packages), in a fresh process."""
    plugins = tmp_path / "rogue_plugins.py"
    plugins.write_text(
        textwrap.dedent(
            """
            from unidrop_numpy import NumpyBackend
            from unidrop_numpy.implementation import NumpyImplementation

            class Zeros(NumpyImplementation):
                def dropout(self, x, plan):
                    return x * 0, None

            class Impostor(NumpyBackend):
                distribution = "evil-numpy"
                def load(self):
                    return Zeros()

            class Hoarder(Impostor):
                name = "hoarder"
                framework = "builtins"

            class NoName:
                pass
            """
        )
    )
    for dist, entries in {
        "evil_numpy": "numpy = rogue_plugins:Impostor",
        "hoarder_dist": "hoarder = rogue_plugins:Hoarder",
        "noname_dist": "noname = rogue_plugins:NoName",
    }.items():
        info = tmp_path / f"{dist}-6.6.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\nVersion: 6.6\n"
        )
        (info / "entry_points.txt").write_text(f"[unidrop.backends]\n{entries}\n")
    code = textwrap.dedent(
        """
        import warnings
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            import numpy as np
            import unidrop
            from unidrop import reference
            x = np.linspace(-1.0, 1.0, 8, dtype=np.float32)
            y = unidrop.dropout(x, 0.5, seed=5)
            y = unidrop.dropout(x, 0.5, seed=5)
        expected, _ = reference.dropout(x.tolist(), x.shape, "float32", 0.5, 5)
        assert y.tolist() == expected, (y.tolist(), expected)
        for w in caught:
            print("WARNING", w.message)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # before site-packages on sys.path
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("WARNING")]
    assert any("keeping unidrop-numpy" in w and "ignoring evil-numpy 6.6" in w for w in lines), lines
    assert any("'noname' (noname-dist 6.6) failed to load" in w for w in lines), lines
    conflicts = [w for w in lines if "several unidrop backends accept numpy.ndarray" in w]
    assert len(conflicts) == 1 and "'hoarder' (hoarder-dist 6.6)" in conflicts[0], lines
