"""The PyTorch backend's work: mask stream v1 on tensors, through :mod:`.ops` (imports torch)."""

from __future__ import annotations

from typing import Any

import torch

from unidrop import DropoutPlan, Implementation, arguments

from . import cpu, family, keys, ops
from .support import check_tensor

_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
#: The names of the supported dtypes, looked up rather than formatted on every call.
_NAMES = {getattr(torch, name): name for name in _DTYPES}


class TorchImplementation(Implementation):
    """Dropout of dense ``torch.Tensor`` on the CPU and CUDA; ``seed=None`` follows torch's generators."""

    def describe(self) -> str:
        """Which kernel computes dropout of CPU tensors (compiled, or pure NumPy) and why."""
        return cpu.describe()

    def dtypes(self) -> frozenset[str]:
        """float16, bfloat16, float32 and float64, on every device."""
        return _DTYPES

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        """Shape and dtype name of ``x``; a TypeError for nested, sparse, mkldnn and quantized tensors."""
        check_tensor(x)
        return tuple(x.shape), _NAMES.get(x.dtype) or str(x.dtype).removeprefix("torch.")

    def resolve_randomness(self, seed: Any, stream: Any, x: Any) -> tuple[Any, Any]:
        """``seed=None`` draws two seed words from torch's default generator of ``x``'s device.

        The words stay on that device (a tensor), so on CUDA nothing waits for the GPU.
        """
        stream = arguments.check_uint64(stream, "stream")
        if seed is None:
            return keys.draw_seed_words(x.device), stream
        return arguments.check_uint64(seed, "seed"), stream

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        return ops.run(x, plan)

    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        return torch.ones(shape, dtype=torch.bool, device=x.device)

    mutable_arrays = True

    def stream_words(self, x: Any, plan: DropoutPlan) -> Any:
        return family.stream_words(x, plan)

    def namespace(self, x: Any) -> Any:
        """``torch`` itself: it has ``where``, ``log``, ``cos``, ``sqrt`` and the float dtypes."""
        return torch

    def astype(self, x: Any, dtype: Any) -> Any:
        return x.to(dtype)

    def copy_into(self, x: Any, y: Any) -> None:
        family.copy_into(x, y)

    def devices(self) -> list[str]:
        """``"cpu"``, then every CUDA device torch sees."""
        found = ["cpu"]
        if torch.cuda.is_available():
            found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return found
