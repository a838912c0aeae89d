"""The CuPy backend's packaging, registration, plugin contract and launch arithmetic: no GPU needed."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from _gpu import gpu_unavailable_reason
from unidrop_cupy import layout, source
from unidrop_cupy.backend import CupyBackend

import unidrop
from unidrop import registry

SOURCES = Path(sys.modules["unidrop_cupy"].__file__).parent
FRAMEWORKS = {"cupy", "cupyx", "cupy_backends", "numpy", "ml_dtypes"}


def test_importing_the_backend_does_not_import_cupy() -> None:
    code = "import unidrop, unidrop_cupy, sys; unidrop.list_backends(); print('cupy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_registered_under_the_entry_point_group() -> None:
    registry.reset()
    backend = unidrop.get_backend("cupy")
    assert (backend.name, backend.framework, backend.distribution) == ("cupy", "cupy", "unidrop-cupy")
    assert isinstance(backend, CupyBackend)


def test_abilities_declare_no_autograd_no_jit_and_an_optional_seed() -> None:
    """CuPy has no autograd and no compiler of Python functions; ``seed=None`` draws from unidrop."""
    abilities = unidrop.get_backend("cupy").abilities
    assert isinstance(abilities, unidrop.Abilities)
    assert (abilities.autograd, abilities.jit, abilities.explicit_seed) == (False, False, False)


def _imports(node: ast.AST) -> list[str]:
    """The top-level module names that the import statements under ``node`` name."""
    names = []
    for child in ast.walk(node):
        if isinstance(child, ast.Import):
            names += [alias.name.split(".")[0] for alias in child.names]
        elif isinstance(child, ast.ImportFrom):
            names.append("." if child.level else (child.module or "").split(".")[0])
    return names


def _functions_with_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.name}:{fn.lineno} {fn.name}"
        for fn in ast.walk(tree)
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and _imports(fn)
    ]


def test_the_descriptor_module_imports_no_framework() -> None:
    tree = ast.parse((SOURCES / "backend.py").read_text(encoding="utf-8"))
    assert not FRAMEWORKS & set(_imports(tree))


def test_only_load_and_suite_adapter_import_inside_a_function() -> None:
    """Every other module imports what it needs at the top (the framework too, where it is needed)."""
    found = [f for path in sorted(SOURCES.glob("*.py")) for f in _functions_with_imports(path)]
    assert sorted(f.split(" ")[1] for f in found) == ["load", "suite_adapter"], found
    assert all(f.startswith("backend.py:") for f in found), found


def test_cuda_sources_ship_with_the_package() -> None:
    text = source.kernel_source()
    assert "ud_philox_block" in text and "unidrop_contig_##NAME" in text
    assert (source.cuda_dir() / source.CORE_HEADER).is_file()


def test_devices_is_empty_without_a_gpu() -> None:
    reason = gpu_unavailable_reason()
    if reason is None:
        pytest.skip("this machine has a GPU")
    if reason.startswith("CuPy is not importable"):
        pytest.skip(reason)
    assert unidrop.get_backend("cupy").implementation().devices() == []


def test_collapse_merges_contiguous_axes_and_keeps_broadcast_ones() -> None:
    c = layout.collapse((2, 3, 4), (12, 4, 1), (12, 4, 1), layout.mask_strides((2, 3, 4)))
    assert c.is_contiguous_unbroadcast and c.shape == (24,)
    f = layout.collapse((2, 3, 4), (1, 2, 6), (12, 4, 1), layout.mask_strides((2, 3, 4)))
    assert f.shape == (2, 3, 4) and not f.is_contiguous_unbroadcast
    b = layout.collapse((5, 6, 7), (42, 7, 1), (42, 7, 1), layout.mask_strides((5, 1, 1)))
    assert b.shape == (5, 42) and b.mstride == (1, 0)
    u = layout.collapse((1, 1), (1, 1), (1, 1), (0, 0))
    assert u.ndim == 0 and u.is_contiguous_unbroadcast


def test_mask_strides_are_c_order_with_zero_on_broadcast_axes() -> None:
    assert layout.mask_strides((3, 1, 4, 5)) == (20, 0, 5, 1)
    assert layout.mask_strides(()) == ()


def test_rng_words_split_seed_and_stream() -> None:
    assert layout.rng_words((7 << 32) | 5, (9 << 32) | 3, 11) == (5, 7, 3, 9, 11)
    with pytest.raises(ValueError, match="4294967296"):
        layout.rng_words(0, 0, 1 << 32)


def test_fast_path_threads_and_alignment() -> None:
    assert layout.vector_alignment("float32") == 16
    assert layout.vector_alignment("float16") == 16 if source.BLOCKS_PER_THREAD["float16"] == 2 else 8
    assert layout.contiguous_groups(9, "float32") == 3
    assert layout.grid_for(1) == 1 and layout.grid_for(257) == 2
