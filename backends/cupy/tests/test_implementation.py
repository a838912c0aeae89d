"""The CuPy backend's Implementation and SuiteAdapter where no GPU is needed: what they declare
(dtypes, devices, abilities) and what they refuse before touching a device.

These import CuPy (a CuPy wheel imports without a GPU); they skip where it is not installed.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

pytest.importorskip("cupy", reason="the Implementation imports CuPy; install cupy-cuda12x or cupy-cuda13x")

import cupy
from unidrop_cupy import bfloat16, functional
from unidrop_cupy.implementation import CupyImplementation
from unidrop_cupy.suite_adapter import CupySuiteAdapter

import unidrop
from unidrop.conformance.adapter import SuiteAdapter

BASE = {"float16", "float32", "float64"}


@pytest.fixture
def backend() -> unidrop.Backend:
    return unidrop.get_backend("cupy")


def test_load_builds_the_implementation_once(backend: unidrop.Backend) -> None:
    implementation = backend.implementation()
    assert isinstance(implementation, CupyImplementation)
    assert backend.implementation() is implementation


def test_suite_adapter_is_the_backends_and_delegates_to_it(backend: unidrop.Backend) -> None:
    adapter = backend.suite_adapter()
    assert isinstance(adapter, CupySuiteAdapter) and isinstance(adapter, SuiteAdapter)
    assert adapter.backend is backend and adapter.name == "cupy"
    assert adapter.abilities == backend.abilities
    assert adapter.dtypes() == backend.implementation().dtypes()


def test_adapter_has_no_vjp_or_jit_as_the_abilities_say(backend: unidrop.Backend) -> None:
    adapter = backend.suite_adapter()
    with pytest.raises(NotImplementedError, match="vjp"):
        adapter.vjp(lambda x: x, None, None)
    with pytest.raises(NotImplementedError, match="jit"):
        adapter.jit(lambda x: x)


def test_bfloat16_needs_cupy_14_and_ml_dtypes(monkeypatch: pytest.MonkeyPatch) -> None:
    implementation = CupyImplementation()
    monkeypatch.setattr(bfloat16, "ml_dtypes", types.SimpleNamespace(bfloat16=np.float32))
    with_bfloat16 = BASE | {"bfloat16"}
    for version, want in [("13.6.0", BASE), ("14.0.0", with_bfloat16), ("15.0.0rc1", with_bfloat16)]:
        monkeypatch.setattr(cupy, "__version__", version)
        assert implementation.dtypes() == want, version
    monkeypatch.setattr(bfloat16, "ml_dtypes", None)
    assert implementation.dtypes() == BASE


def test_an_unparseable_cupy_version_is_taken_to_support_bfloat16() -> None:
    assert bfloat16.cupy_takes_bfloat16("14.2.0") and not bfloat16.cupy_takes_bfloat16("13.6.0")
    assert bfloat16.cupy_takes_bfloat16("main") and bfloat16.cupy_takes_bfloat16("")


def test_from_numpy_refuses_bfloat16_where_cupy_cannot_hold_it(monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = unidrop.get_backend("cupy").suite_adapter()
    monkeypatch.setattr(bfloat16, "ml_dtypes", types.SimpleNamespace(bfloat16=np.float32))
    monkeypatch.setattr(cupy, "__version__", "13.6.0")
    with pytest.raises(TypeError, match=r"CuPy >= 14 and ml_dtypes \(this is CuPy 13\.6\.0\)$"):
        adapter.from_numpy(np.zeros(3), "bfloat16")
    monkeypatch.setattr(bfloat16, "ml_dtypes", None)
    with pytest.raises(TypeError, match=r"\(this is CuPy 13\.6\.0; ml_dtypes is not installed\)$"):
        adapter.from_numpy(np.zeros(3), "bfloat16")
    monkeypatch.setattr(cupy, "__version__", "14.2.0")
    with pytest.raises(TypeError, match=r"\(ml_dtypes is not installed\)$"):
        adapter.from_numpy(np.zeros(3), "bfloat16")


@pytest.mark.parametrize(("count", "want"), [(0, []), (1, ["cuda:0"]), (3, ["cuda:0", "cuda:1", "cuda:2"])])
def test_devices_are_the_visible_gpus(monkeypatch: pytest.MonkeyPatch, count: int, want: list[str]) -> None:
    monkeypatch.setattr(cupy.cuda.runtime, "getDeviceCount", lambda: count)
    assert CupyImplementation().devices() == want


def test_devices_is_empty_where_the_cuda_runtime_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_driver() -> int:
        raise cupy.cuda.runtime.CUDARuntimeError(35)  # cudaErrorInsufficientDriver

    monkeypatch.setattr(cupy.cuda.runtime, "getDeviceCount", no_driver)
    assert CupyImplementation().devices() == []


def test_device_of_names_the_cuda_device() -> None:
    adapter = unidrop.get_backend("cupy").suite_adapter()
    assert adapter.device_of(types.SimpleNamespace(device=types.SimpleNamespace(id=3))) == "cuda:3"


# apply_mask's checks, with NumPy standing in for CuPy's array type (they run before any launch)
@pytest.fixture
def numpy_as_cupy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(functional, "cupy", types.SimpleNamespace(ndarray=np.ndarray))


def test_apply_mask_refuses_a_dtype_the_implementation_lacks(numpy_as_cupy: None) -> None:
    keep = np.ones((2, 3), bool)
    with pytest.raises(TypeError, match=r"got dtype int32, allowed: .*float32, float64"):
        functional.apply_mask(np.ones((2, 3), np.int32), keep, 0.5)
    with pytest.raises(TypeError, match=r"float128|longdouble"):
        functional.apply_mask(np.ones((2, 3), np.longdouble), keep, 0.5)


def test_apply_mask_reads_the_dtypes_from_the_implementation(
    numpy_as_cupy: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CupyImplementation, "dtypes", lambda self: frozenset({"float64"}))
    with pytest.raises(TypeError, match=r"dtype float32; the supported floating dtypes: float64$"):
        functional.apply_mask(np.ones((2, 3), np.float32), np.ones((2, 3), bool), 0.5)


def test_apply_mask_refuses_other_arrays_and_masks(numpy_as_cupy: None) -> None:
    g = np.ones((4, 5), np.float32)
    with pytest.raises(TypeError, match="CuPy arrays, got list"):
        functional.apply_mask([1.0], np.ones(1, bool), 0.5)
    with pytest.raises(TypeError, match="boolean mask, got dtype uint8"):
        functional.apply_mask(g, np.ones((4, 5), np.uint8), 0.5)
    with pytest.raises(ValueError, match=r"\(4, 3\)"):
        functional.apply_mask(g, np.ones((4, 3), bool), 0.5)


def test_inplace_refuses_an_array_whose_elements_share_memory_before_drawing() -> None:
    """Read from shape, strides and item size alone (a stand-in: no GPU needed): a zero stride and
    an ``as_strided`` interleaving are refused, a transposed array is accepted."""
    implementation = CupyImplementation()

    def stand_in(shape: tuple[int, ...], strides: tuple[int, ...]) -> types.SimpleNamespace:
        return types.SimpleNamespace(shape=shape, strides=strides, itemsize=4, dtype="float32")

    for shape, strides in [((3, 4), (0, 4)), ((4, 4), (8, 4))]:
        with pytest.raises(ValueError, match="share memory"):
            implementation.check_writable(stand_in(shape, strides))
    implementation.check_writable(stand_in((3, 4), (4, 12)))
