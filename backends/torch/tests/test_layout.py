"""The contract v2 layout: a descriptor without torch, an Implementation, a SuiteAdapter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import torch
import unidrop_torch
from unidrop_torch import ops
from unidrop_torch.implementation import TorchImplementation
from unidrop_torch.suite_adapter import TorchSuiteAdapter

import unidrop
from unidrop.conformance.adapter import SuiteAdapter

PACKAGE = Path(unidrop_torch.__file__).parent

#: The functions allowed an import inside: the descriptor's two loaders, the CUDA path's Triton
#: kernels (triton is an optional extra, and the CPU path must not import it) and the loader of the
#: optional compiled autograd node (UNIDROP_TORCH_NODE=off must not load it).
LAZY_IMPORTS = {
    ("backend.py", "load"),
    ("backend.py", "suite_adapter"),
    ("cuda.py", "_kernels"),
    ("cpu_node.py", "_load"),
}


def _imports_inside_functions(path: Path) -> set[tuple[str, str]]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    found.add((path.name, node.name))
    return found


def test_only_the_loaders_import_inside_a_function() -> None:
    found = set().union(*(_imports_inside_functions(path) for path in PACKAGE.glob("*.py")))
    assert found == LAZY_IMPORTS


def test_the_descriptor_module_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "from unidrop_torch.backend import TorchBackend\n"
        "backend = TorchBackend()\n"
        "assert backend.abilities.autograd and backend.abilities.jit\n"
        "assert 'torch' not in sys.modules, 'the descriptor imported torch'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_registered_backend_builds_its_implementation_and_suite_adapter() -> None:
    backend = unidrop.get_backend("torch")
    implementation = backend.implementation()
    assert isinstance(implementation, TorchImplementation)
    assert backend.implementation() is implementation  # built once
    assert implementation.dtypes() == {"float16", "bfloat16", "float32", "float64"}
    adapter = backend.suite_adapter()
    assert isinstance(adapter, TorchSuiteAdapter) and isinstance(adapter, SuiteAdapter)
    assert adapter.name == "torch" and adapter.dtypes() == implementation.dtypes()


def test_the_autograd_function_has_one_name() -> None:
    """``Dropout`` is the nn.Module alone; the autograd Function is ``DropoutFunction``."""
    assert issubclass(ops.DropoutFunction, torch.autograd.Function)
    assert not hasattr(ops, "Dropout")
    assert issubclass(unidrop_torch.Dropout, torch.nn.Module)
