"""torch.export is the supported way to export a model holding unidrop's modules.

A program exported in train mode keeps ``torch.ops.unidrop.dropout``; saved with
``torch.export.save`` and loaded in a fresh process (after ``import unidrop_torch.ops``, which
registers the operator), it gives the same masks: an integer seed is a constant of the graph,
``seed=None`` draws from torch's default generator inside the graph (``torch.manual_seed``
governs it, as in eager mode). An eval-mode export is the identity. ``torch.jit.script`` is
refused with an error that names torch.export and torch.compile.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import unidrop_torch
from torch_helpers import assert_same, expected_output, sample

import unidrop


class Net(torch.nn.Module):
    """unidrop's modules, with an integer seed and with ``seed=None``."""

    def __init__(self) -> None:
        super().__init__()
        self.fixed = unidrop_torch.Dropout(0.25, seed=5, stream=2)
        self.channels = unidrop_torch.Dropout1d(0.5, seed=6)
        self.drawn = unidrop_torch.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fixed = self.channels(self.fixed(x))
        return fixed, self.drawn(x)


def _run_loaded(path: Path, x: torch.Tensor, seed: int) -> list[list[float]]:
    """Load ``path`` in a fresh interpreter, run it on ``x`` after ``torch.manual_seed(seed)``."""
    code = (
        "import sys, torch\n"
        "import unidrop_torch.ops  # registers torch.ops.unidrop.*\n"
        f"program = torch.export.load({str(path)!r})\n"
        f"x = torch.tensor({x.tolist()!r})\n"
        f"torch.manual_seed({seed})\n"
        "print(repr([t.tolist() for t in program.module()(x)]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


def test_train_mode_export_saves_loads_and_keeps_the_masks(tmp_path: Path) -> None:
    model = Net().train()
    x = sample((2, 4, 6), torch.float32, seed=1, specials=False)
    program = torch.export.export(model, (x,))
    targets = [str(node.target) for node in program.graph.nodes if node.op == "call_function"]
    assert targets.count("unidrop.dropout.default") == 3, targets
    path = tmp_path / "net.pt2"
    torch.export.save(program, path)
    fixed, drawn = (torch.tensor(t) for t in _run_loaded(path, x, seed=11))
    after_fixed = expected_output(x, 0.25, 5, 2).to(torch.float32)
    assert_same(fixed, expected_output(after_fixed, 0.5, 6, 0, (2,)), "integer seeds: the reference")
    torch.manual_seed(11)
    eager_fixed, eager_drawn = model(x)
    assert_same(drawn, eager_drawn, "seed=None: torch.manual_seed governs it as in eager mode")
    assert_same(eager_fixed, fixed, "eager")
    torch.manual_seed(12)
    assert not torch.equal(model(x)[1], drawn), "another manual_seed, another mask"


def test_eval_mode_export_is_the_identity(tmp_path: Path) -> None:
    model = Net().eval()
    x = sample((2, 4, 6), torch.float32, seed=2, specials=False)
    program = torch.export.export(model, (x,))
    assert not any("unidrop" in str(node.target) for node in program.graph.nodes)
    path = tmp_path / "net_eval.pt2"
    torch.export.save(program, path)
    for output in _run_loaded(path, x, seed=0):
        assert_same(torch.tensor(output), x, "eval")


def test_scripting_is_refused_pointing_to_export_and_compile() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Sequential(unidrop_torch.Dropout2d(0.5)))
    with pytest.raises(RuntimeError, match=r"torch\.jit\.script.*torch\.export.*torch\.compile"):
        torch.jit.script(model)


class CallsTorchFunctional(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unidrop_torch.dropout(x, 0.5, self.training, seed=1)


class CallsCoreDropout(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unidrop.dropout(x, 0.5, training=self.training, seed=1)


@pytest.mark.parametrize(
    "target",
    [CallsTorchFunctional(), CallsCoreDropout(), unidrop_torch.dropout, unidrop.dropout],
    ids=["module-calling-unidrop_torch.dropout", "module-calling-unidrop.dropout", "function", "core"],
)
def test_scripting_the_functions_is_refused_pointing_to_export_and_compile(target: object) -> None:
    """Not TorchScript's parse error about keyword-only arguments: an error naming what to use."""
    with pytest.raises(RuntimeError, match=r"torch\.jit\.script.*torch\.export.*torch\.compile"):
        torch.jit.script(target)
