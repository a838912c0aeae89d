"""Each shared constant is defined once, in the core, and imported wherever else it is used.

The test reads the source of unidrop and of every backend (no framework is imported): a
module-level assignment of one of these values anywhere but its home is a second definition
that could drift from the first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*(ROOT / "unidrop").rglob("*.py"), *ROOT.glob("backends/*/src/**/*.py")])

#: A constant -> the one module that may define it. A constant is told by its value's source
#: text (as ast.unparse writes it, integers as decimal) or, for a power of two that other limits
#: share by coincidence, by its name.
HOMES = {
    "value 4294967295": "unidrop/philox.py",  # MASK32 = 0xFFFFFFFF, under any name
    "name TWO_POW_32": "unidrop/arguments.py",
    "value frozenset({'float16', 'bfloat16'})": "unidrop/arguments.py",  # HALF_DTYPES
    # NumPy's unsigned type per itemsize: NumPy's backend alone uses it (the core imports no NumPy)
    "value {2: np.uint16, 4: np.uint32, 8: np.uint64}": "backends/numpy/src/unidrop_numpy/philox_arrays.py",
}


def definitions() -> dict[str, list[str]]:
    """Each constant of HOMES -> the modules that assign it at module level."""
    found: dict[str, list[str]] = {constant: [] for constant in HOMES}
    for path in SOURCES:
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            else:
                continue
            text = ast.unparse(value)
            if isinstance(value, ast.Constant) and isinstance(value.value, int):
                text = str(value.value)  # 0xFFFFFFFF and 4294967295 alike
            keys = [f"value {text}"] + [f"name {t.id}" for t in targets if isinstance(t, ast.Name)]
            for key in keys:
                if key in found:
                    found[key].append(path.relative_to(ROOT).as_posix())
    return found


@pytest.mark.parametrize("constant", sorted(HOMES))
def test_a_shared_constant_is_defined_once_in_its_home(constant):
    assert definitions()[constant] == [HOMES[constant]]
