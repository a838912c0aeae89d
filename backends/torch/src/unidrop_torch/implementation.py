"""The PyTorch backend's work: mask stream v1 on tensors, through :mod:`.ops` (imports torch)."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

import torch

from unidrop import DropoutPlan, Implementation, arguments

from . import cpu, cpu_node, family, keys, ops
from .support import check_tensor

_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
#: The names of the supported dtypes, looked up rather than formatted on every call.
_NAMES = {getattr(torch, name): name for name in _DTYPES}


class TorchImplementation(Implementation):
    """Dropout of dense ``torch.Tensor`` on the CPU and CUDA; ``seed=None`` follows torch's generators.

    Blocks of a global mask (``global_shape=``, ``offset=``) work on every route.
    """

    supports_blocks = True

    def describe(self) -> str:
        """Which kernel computes dropout of CPU tensors (compiled, or pure NumPy), which path records
        eager autograd of small ones (the C++ node, or the Python Function), and why."""
        return f"{cpu.describe()}; {cpu_node.describe()}"

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
        """Dropout of a tensor, or of a DTensor shard by shard (see :mod:`unidrop_torch.dtensor`)."""
        distributed = _dtensor_support(x)
        if distributed is not None:
            return distributed.run(x, plan, ops.run)
        return ops.run(x, plan)

    def keep_mask(self, x: Any, plan: DropoutPlan) -> Any:
        """Dropout's keep mask alone (no output is computed); for a DTensor, the default's."""
        if _dtensor_support(x) is not None:
            return super().keep_mask(x, plan)
        keep = ops.keep_mask_of(x, plan)
        if keep.shape != x.shape or x.is_contiguous() or torch.compiler.is_compiling():
            return keep
        # x's layout (channels_last, say): the family's where() takes its layout from the mask,
        # and torch's own alpha_dropout keeps the input's
        laid_out = torch.empty_like(x, dtype=torch.bool)
        return keep if laid_out.stride() == keep.stride() else laid_out.copy_(keep)

    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        distributed = _dtensor_support(x)
        if distributed is not None:
            dims = tuple(axis for axis, size in enumerate(shape) if size == 1 and x.shape[axis] != 1)
            return distributed.full_mask(x, shape, dims)
        return torch.ones(shape, dtype=torch.bool, device=x.device)

    mutable_arrays = True

    def stream_words(self, x: Any, plan: DropoutPlan) -> Any:
        """The words of ``plan`` on ``x``'s device; for a DTensor, a DTensor sharded as ``x``."""
        distributed = _dtensor_support(x)
        if distributed is not None:
            return distributed.stream_words(x, plan, family.stream_words)
        return family.stream_words(x, plan)

    def namespace(self, x: Any) -> Any:
        """``torch`` itself: it has ``where``, ``log``, ``cos``, ``sqrt`` and the float dtypes."""
        return torch

    def astype(self, x: Any, dtype: Any) -> Any:
        return x.to(dtype)

    def check_writable(self, x: Any) -> None:
        family.check_writable(x)

    def copy_into(self, x: Any, y: Any) -> None:
        family.copy_into(x, y)

    def devices(self) -> list[str]:
        """``"cpu"``, then every CUDA device torch sees."""
        found = ["cpu"]
        if torch.cuda.is_available():
            found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return found


def _dtensor_support(x: Any) -> ModuleType | None:
    """:mod:`unidrop_torch.dtensor` if ``x`` is a DTensor, else None.

    Imported here, not at the top: ``torch.distributed.tensor`` is slow to import and absent from
    some torch builds, and ``x`` can only be a DTensor once something else has imported it.
    """
    if type(x) is torch.Tensor or "torch.distributed.tensor" not in sys.modules:
        return None
    support = importlib.import_module(".dtensor", __package__)
    return support if support.is_dtensor(x) else None
