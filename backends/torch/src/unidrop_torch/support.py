"""Which tensors unidrop-torch can run on, and the TypeError for those it cannot."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

SUPPORTED = "strided (dense) tensors, not nested or quantized, of float16, bfloat16, float32 or float64"


def check_tensor(x: Any) -> None:
    """Raise a TypeError naming what ``x`` is unless it is a dense tensor the kernels can run on.

    Refused: nested tensors (jagged or strided layout), every non-strided layout (sparse COO, CSR,
    CSC, BSR, BSC, mkldnn) and quantized tensors. Each error says how to convert. Checks only
    properties, never the data, so it is safe on meta and fake tensors.
    """
    torch = sys.modules["torch"]
    if isinstance(x, torch.fx.Proxy):
        raise TypeError(
            "torch.fx.symbolic_trace cannot trace into unidrop's functions (they read the tensor's shape "
            "and dtype): call them inside a unidrop_torch module, which torch.fx keeps as one node as it "
            "keeps torch.nn's, or call unidrop_torch.dropout, which it records as one call"
        )
    if x.is_nested:
        raise TypeError(
            f"unidrop-torch got a nested tensor (layout {x.layout}); it supports only {SUPPORTED}: "
            "apply dropout to each component (x.unbind()) or to x.to_padded_tensor(0.0)"
        )
    if x.layout is not torch.strided:
        raise TypeError(
            f"unidrop-torch got a tensor with layout {x.layout}; it supports only {SUPPORTED}: "
            "convert with x.to_dense() first"
        )
    if x.is_quantized:
        raise TypeError(
            f"unidrop-torch got a quantized tensor (dtype {x.dtype}); it supports only {SUPPORTED}: "
            "convert with x.dequantize() first"
        )


def refuse_scripting(what: str) -> NoReturn:
    """Raise the RuntimeError ``torch.jit.script`` gives for ``what``, naming export and compile.

    Called from ``__prepare_scriptable__``, which TorchScript calls on every module and on
    every function it is about to compile, before parsing it.
    """
    raise RuntimeError(
        f"{what} cannot be compiled by torch.jit.script (TorchScript is deprecated since torch "
        "2.13). Use torch.export.export(model, args) to export the model, or torch.compile(model) "
        "to compile it: both keep unidrop's operator (torch.ops.unidrop.dropout) and its mask. "
        "See docs/torch.md."
    )


def check_inplace(inplace: object) -> bool:
    """``inplace`` as a bool: True, False, or the 1 and 0 that torch's dropout takes too; a
    TypeError naming anything else."""
    if type(inplace) is int and inplace in (0, 1):
        return bool(inplace)
    if not isinstance(inplace, bool):
        raise TypeError(f"inplace must be True or False (or 1 or 0), got {inplace!r}")
    return inplace
