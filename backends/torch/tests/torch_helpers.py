"""Helpers for the torch backend's own tests: expected values come from unidrop.reference."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from unidrop import arguments, reference
from unidrop.philox import element_word

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def expected_output(
    x: torch.Tensor, p: float, seed: int, stream: int = 0, broadcast_dims: tuple[int, ...] = ()
) -> torch.Tensor:
    """The reference output for ``x`` (any layout, any device) as a float64 CPU tensor."""
    values = x.detach().to("cpu", torch.float64).reshape(-1).tolist()
    out, _ = reference.dropout(values, tuple(x.shape), dtype_name(x.dtype), p, seed, stream, broadcast_dims)
    return torch.tensor(out, dtype=torch.float64).reshape(x.shape)


def expected_at(
    x: torch.Tensor,
    flat_indices: list[int],
    p: float,
    seed: int,
    stream: int,
    broadcast_dims: tuple[int, ...],
) -> list[float]:
    """Reference outputs of the elements at ``flat_indices`` (C order) only: cheap for big tensors."""
    shape = tuple(x.shape)
    dims = arguments.normalize_broadcast_dims(broadcast_dims, len(shape))
    mshape = arguments.mask_shape(shape, dims)
    t = arguments.threshold(p)
    flat = x.detach().reshape(-1)
    out = []
    for i in flat_indices:
        u = element_word(seed, stream, reference.flat_mask_index(i, shape, mshape))
        value = float(flat[i].to(torch.float64))
        out.append(reference.scaled(value, dtype_name(x.dtype), p) if u >= t else 0.0)
    return out


def assert_same(actual: torch.Tensor, expected: torch.Tensor, context: str = "") -> None:
    """Bitwise-equal values: NaN matches NaN, and the sign of zero must match."""
    a = actual.detach().to("cpu", torch.float64).reshape(-1)
    e = expected.to(torch.float64).reshape(-1)
    assert a.shape == e.shape, f"{context}: shape {tuple(a.shape)} != {tuple(e.shape)}"
    same = (a == e) | (torch.isnan(a) & torch.isnan(e))
    same &= (torch.signbit(a) == torch.signbit(e)) | torch.isnan(e)
    if not bool(same.all()):
        bad = (~same).nonzero().reshape(-1)[:5].tolist()
        raise AssertionError(
            f"{context}: {int((~same).sum())} of {a.numel()} differ, first at {bad}: "
            f"got {a[bad].tolist()}, expected {e[bad].tolist()}"
        )


def sample(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0, specials: bool = True) -> torch.Tensor:
    """Deterministic inputs exact in ``dtype`` with NaN, +-Inf and -0 mixed in."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(shape, generator=generator, dtype=torch.float64) * 3
    flat = values.reshape(-1)
    if specials and flat.numel() >= 8:
        flat[1], flat[3], flat[5], flat[7] = math.nan, math.inf, -math.inf, -0.0
    return values.to(dtype)


def cuda_devices() -> list[str]:
    return [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


requires_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA GPU (torch.cuda.is_available() is False); the CUDA path is also checked on "
    "the CPU by test_triton_interpreter.py under TRITON_INTERPRET=1",
)


class RecordOps(TorchDispatchMode):
    """Records the name of every operator dispatched while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.names.append(str(func))
        return func(*args, **(kwargs or {}))
