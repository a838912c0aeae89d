"""How the conformance suite makes, reads and differentiates tensors for the torch backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from unidrop import arguments
from unidrop.conformance.adapter import SuiteAdapter


class TorchSuiteAdapter(SuiteAdapter):
    """Tensors on the CPU and CUDA; torch's default generators are the global random state."""

    def from_numpy(self, array: Any, dtype: str, device: str | None = None) -> Any:
        tensor = torch.from_numpy(np.array(array, copy=True))
        return tensor.to(device=device or "cpu", dtype=getattr(torch, dtype))

    def to_numpy(self, x: Any) -> Any:
        host = x.detach().to("cpu")
        if host.dtype == torch.bfloat16:
            host = host.to(torch.float32)  # exact: every bfloat16 is a float32
        return host.numpy().copy()

    def device_of(self, x: Any) -> str:
        return str(x.device)

    def manual_seed(self, seed: int) -> None:
        """``torch.manual_seed``: ``seed=None`` draws from torch's default generators."""
        torch.manual_seed(arguments.check_uint64(seed, "seed"))

    def global_rng_state(self) -> Any:
        """The bytes of torch's default CPU generator, then each initialised CUDA generator's."""
        states = [torch.get_rng_state()]
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            states += list(torch.cuda.get_rng_state_all())
        return np.concatenate([state.numpy() for state in states])

    def vjp(self, fn: Callable[[Any], Any], x: Any, cotangent: Any) -> tuple[Any, Any]:
        leaf = x.detach().requires_grad_(True)
        y = fn(leaf)
        (grad,) = torch.autograd.grad(y, leaf, cotangent)
        return y.detach(), grad

    def jit(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``torch.compile(fn, fullgraph=True, dynamic=False)``: no graph break, values as constants.

        The suite compiles one function per case with its seed, stream and axes as constants, all
        64 bits of them. (Without ``dynamic=False`` torch would make them symbolic from the second
        case on, and it hands symbolic integers to compiled code as int64: a seed of 2**63 or more
        would fail in torch. Changing seeds as arguments are tested by the backend's own tests.)
        """
        return torch.compile(fn, fullgraph=True, dynamic=False)
