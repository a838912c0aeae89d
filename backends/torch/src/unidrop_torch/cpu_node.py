"""The C++ autograd node for eager dropout of small CPU tensors, where it was built at install.

``unidrop_torch._autograd_node`` (``_autograd_node.cpp``) records dropout of a tensor that needs a
gradient as one C++ node, as torch's own dropout is, instead of a Python autograd Function, whose
machinery alone costs more than torch's whole dropout backward on small tensors
(benchmarks/results/cpu_sizes.md). Forward and backward call unidrop-numpy's compiled kernel on the
calling thread; the node keeps Python numbers only (the mask is regenerated).

:func:`dropout` serves a whole array (no block), ``0 < p < 1``, fewer than
:data:`unidrop_torch.cpu.ONE_CALL` elements (larger ones are split over threads by the Function's
path); it gives None where it does not apply, and the caller takes the Function.

``UNIDROP_TORCH_NODE`` (read once, at import) chooses: ``auto`` (the default: the node where it was
built), ``always`` (ImportError if it is not built or cannot load: CI's setting) or ``off`` (the
Function only).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor
from unidrop_numpy import compiled

from unidrop import DropoutPlan

from . import cpu

ENV = "UNIDROP_TORCH_NODE"
CHOICES = ("auto", "always", "off")


def _load() -> tuple[ModuleType | None, str]:
    """The node's module (or None) and, when None, why."""
    choice = os.environ.get(ENV, "auto")
    if choice not in CHOICES:
        raise ValueError(f"{ENV}={choice!r} is not a choice; allowed: {', '.join(CHOICES)}")
    if choice == "off":
        return None, f"{ENV}=off"
    try:
        if not cpu.COMPILED:
            raise ImportError("unidrop-numpy's compiled kernel is not in use (UNIDROP_NUMPY_KERNEL)")
        from . import _autograd_node

        stale = stale_build(_autograd_node)
        if stale:
            raise ImportError(stale)
    except ImportError as error:
        if choice == "always":
            raise
        if importlib.util.find_spec(f"{__package__}._autograd_node") is None:
            return (
                None,
                "not built at install (reinstall unidrop-torch with --no-build-isolation: docs/torch.md)",
            )
        cause = error.__cause__  # pybind11 says "initialization failed"; the cause says why
        return None, f"{type(error).__name__}: {error}" + (f" ({cause})" if cause is not None else "")
    torch.autograd.graph.Node.register(_autograd_node.UnidropDropoutBackward)
    return _autograd_node, ""


#: The C++ source beside this module: in a checkout (an editable install), not in a wheel.
SOURCE = Path(__file__).with_name("_autograd_node.cpp")


def source_digest(source: Path) -> str:
    """The digest setup.py compiles into the module (``SOURCE_DIGEST``) of the source it built."""
    return hashlib.sha256(source.read_bytes()).hexdigest()[:16]


def stale_build(module: ModuleType) -> str:
    """Why ``module`` is not the build of the C++ source beside it (a failed rebuild of an editable
    checkout leaves the previous one in place, silently: the extension is optional), else ``""``."""
    if not SOURCE.is_file() or source_digest(SOURCE) == getattr(module, "SOURCE_DIGEST", None):
        return ""
    return (
        f"{module.__file__} was built from another {SOURCE.name} than the one beside it: "
        "rebuild it (pip install --no-build-isolation -e backends/torch) and read the compiler's errors"
    )


_NODE, MISSING = _load()
#: Whether eager autograd on small CPU tensors records the C++ node (else the Python Function).
ACTIVE = _NODE is not None


def set_fallback(function: Callable[[Tensor, float, int, int, int], Tensor]) -> None:
    """Give the node the dropout ``function(grad, p, seed, stream, broadcast)`` its backward calls for a
    gradient the kernel cannot read as plain memory (``broadcast``: bit ``d`` for axis ``d``)."""
    if _NODE is not None:
        _NODE.set_fallback(function)


def dropout(x: Tensor, plan: DropoutPlan) -> Tensor | None:
    """Dropout of ``x`` (a plain CPU tensor that needs a gradient, grad mode on) recorded as the C++
    node, or None where the node does not apply (see the module docstring)."""
    if _NODE is None or plan.block is not None or plan.drops_all or x.numel() >= cpu.ONE_CALL:
        return None
    if _compiled_autograd_configured():
        return None
    broadcast = compiled.broadcast_bits(plan.broadcast_dims)
    if broadcast >= _AXIS_64:  # a broadcast axis past the kernel's 64: the Function refuses it, naming it
        return None
    kind = compiled.KINDS[plan.dtype]
    result: Tensor | None = _NODE.dropout(
        x, kind, broadcast, plan.seed, plan.stream, plan.threshold, plan.scale, plan.p
    )
    return result


_AXIS_64 = 1 << 64


def _compiled_autograd_configured() -> bool:
    """True where ``torch._dynamo.config.compiled_autograd`` is set: compiled autograd cannot capture
    the node (it has no ``compiled_args``), while it can capture the Function. Read only if Dynamo
    was imported already: a plain eager program never imports it."""
    dynamo = sys.modules.get("torch._dynamo")
    return dynamo is not None and bool(getattr(dynamo.config, "compiled_autograd", False))


def describe() -> str:
    """Which path records eager autograd of small CPU tensors, for ``unidrop backends``."""
    if _NODE is not None:
        return f"CPU autograd: C++ node (built for torch {_NODE.BUILT_FOR})"
    return f"CPU autograd: Python Function (C++ node: {MISSING})"
