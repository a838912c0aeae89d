"""The example backend (tests/example_backend, xarray.DataArray): small, shown verbatim, conformant.

docs/backend-guide.md tells authors to copy it; these tests keep that promise: its Python source
stays under 40 lines, the guide's listings of it are its files byte for byte, it passes the whole
conformance suite, and the DataArray's labels survive dropout.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import unidrop
from unidrop import reference
from unidrop.conformance.blocks import BlockChecks
from unidrop.conformance.suite import ConformanceSuite

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "tests" / "example_backend"
PACKAGE = EXAMPLE / "src" / "unidrop_example_xarray"
GUIDE = ROOT / "docs" / "backend-guide.md"
#: How the guide names the file a listing shows: this line, then the fenced block.
LISTING = re.compile(r"^<!-- file: (\S+) -->\n```[a-z]*\n(.*?)^```$", re.MULTILINE | re.DOTALL)
MAX_LINES = 39


def source_files() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


def test_the_example_is_under_40_lines():
    """Every non-blank line of the package's .py files counts: code, docstrings and comments."""
    files = source_files()
    assert {path.name for path in files} >= {"backend.py", "implementation.py", "suite_adapter.py"}
    counted = sum(1 for path in files for line in path.read_text().splitlines() if line.strip())
    assert counted <= MAX_LINES, f"the example backend has {counted} non-blank lines, at most {MAX_LINES}"


def test_the_guide_shows_every_file_of_the_example_byte_for_byte():
    """Each file with code (the .py files with a line, pyproject.toml) is listed once, as it is."""
    listings = {name: text for name, text in LISTING.findall(GUIDE.read_text(encoding="utf-8"))}
    wanted = [path for path in [*source_files(), EXAMPLE / "pyproject.toml"] if path.read_text().strip()]
    for path in wanted:
        name = str(path.relative_to(ROOT))
        assert name in listings, f"docs/backend-guide.md does not list {name}"
        assert listings[name] == path.read_text(encoding="utf-8"), f"the guide's {name} differs from the file"
    assert sorted(listings) == sorted(str(path.relative_to(ROOT)) for path in wanted)


def test_importing_unidrop_does_not_import_xarray():
    """The example's descriptor is loaded by ``import unidrop``; xarray waits for its first array."""
    code = "import sys, unidrop\nassert 'xarray' in unidrop.registry.backends()\nprint(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "'xarray'" not in loaded and "'pandas'" not in loaded


def labelled(values: np.ndarray) -> xr.DataArray:
    return xr.DataArray(
        values,
        dims=("time", "channel"),
        coords={"time": np.arange(values.shape[0]) * 10, "channel": ["a", "b", "c"][: values.shape[1]]},
        name="signal",
        attrs={"units": "mV"},
    )


def test_a_dataarray_keeps_its_labels_and_gets_the_reference_values():
    values = np.arange(1.0, 13.0, dtype=np.float32).reshape(4, 3)
    x = labelled(values)
    y, keep = unidrop.dropout(x, 0.5, seed=42, stream=3, return_mask=True, broadcast_dims=(1,))
    assert isinstance(y, xr.DataArray) and unidrop.registry.backend_for(x).name == "xarray"
    assert (y.dims, y.name, y.attrs) == (("time", "channel"), "signal", {"units": "mV"})
    assert y.coords.to_dataset().identical(x.coords.to_dataset())
    assert type(y.data) is np.ndarray and y.dtype == np.float32
    flat = values.reshape(-1).tolist()
    expected, expected_keep = reference.dropout(flat, (4, 3), "float32", 0.5, 42, 3, (1,))
    np.testing.assert_array_equal(y.data, np.array(expected, dtype=np.float32).reshape(4, 3))
    np.testing.assert_array_equal(np.asarray(keep), np.array(expected_keep).reshape(4, 1))
    assert x.attrs == {"units": "mV"} and x.data[0, 0] == 1.0  # the input is untouched
    y.attrs["changed"] = True
    assert "changed" not in x.attrs  # the result's attrs are its own


def test_p_zero_returns_the_dataarray_itself_and_a_labelled_all_true_mask():
    x = labelled(np.ones((4, 3), dtype=np.float64))
    y, keep = unidrop.dropout(x, 0.0, return_mask=True, broadcast_dims=(0,))
    assert y is x
    assert isinstance(keep, xr.DataArray) and keep.dims == x.dims
    assert keep.shape == (1, 3) and keep.dtype == bool and bool(keep.all())


def test_an_integer_dataarray_is_refused_naming_its_dtype():
    with pytest.raises(TypeError, match=r"dtype int64"):
        unidrop.dropout(xr.DataArray(np.arange(4)), 0.5, seed=0)


class TestExampleConformance(ConformanceSuite):
    """The whole conformance suite, on NumPy-backed DataArrays made by the example's adapter."""

    backend_name = "xarray"


# The example does not implement blocks of a global mask yet (the guide's listing is kept as it
# is): every block check must fail on it, saying so, and none may pass or skip.
for _name in dir(BlockChecks):
    if _name.startswith("test_"):
        setattr(TestExampleConformance, _name, None)  # not collected here: TestExampleBlocks runs them


class TestExampleBlocks(BlockChecks):
    """Blocks on the example backend: each check fails, naming the missing supports_blocks."""

    backend_name = "xarray"
    pytestmark = pytest.mark.xfail(
        strict=True, raises=AssertionError, reason="the example backend does not implement blocks"
    )
