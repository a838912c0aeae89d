"""The PyTorch backend object registered with unidrop (imports torch only when used)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from unidrop import Backend, DropoutPlan, arguments


def _ops() -> ModuleType:
    """:mod:`unidrop_torch.ops` (imports torch), imported on the first dropout.

    A plain import, not a cached function: ``torch.compile`` traces this call, and Dynamo warns
    about every ``functools.lru_cache``-wrapped function it traces.
    """
    from . import ops

    return ops


class TorchBackend(Backend):
    """Mask stream v1 for ``torch.Tensor`` on CPU and CUDA, differentiable and compilable.

    ``seed=None`` draws the seed from torch's default generator for the tensor's device
    (``torch.manual_seed`` and ``torch.random.fork_rng`` govern it); on CUDA the drawn seed
    stays on the device, so nothing waits for the GPU. unidrop's own global seed source is
    not used.
    """

    name = "torch"
    framework = "torch"
    distribution = "unidrop-torch"
    dtypes = frozenset({"float16", "bfloat16", "float32", "float64"})
    features = frozenset({"autograd", "jit"})

    def accepts(self, x: Any) -> bool:
        return isinstance(x, sys.modules["torch"].Tensor)

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        """Shape and dtype name of ``x``; a TypeError for nested, sparse, mkldnn and quantized tensors."""
        from .support import check_tensor

        check_tensor(x)
        return tuple(x.shape), str(x.dtype).removeprefix("torch.")

    def resolve_randomness(self, seed: Any, stream: Any, x: Any) -> tuple[Any, Any]:
        stream = arguments.check_uint64(stream, "stream")
        if seed is None:
            from .keys import draw_seed_words

            return draw_seed_words(x.device), stream
        return arguments.check_uint64(seed, "seed"), stream

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        mask_shape = list(plan.mask_shape) if plan.return_mask else None
        return _ops().run(x, plan.seed, plan.stream, plan.p, list(plan.broadcast_dims), mask_shape)

    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        import torch

        return torch.ones(shape, dtype=torch.bool, device=x.device)

    def devices(self) -> list[str]:
        import torch

        found = ["cpu"]
        if torch.cuda.is_available():
            found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return found

    def device_of(self, x: Any) -> str:
        return str(x.device)

    def from_numpy(self, array: Any, dtype: str, device: str | None = None) -> Any:
        import numpy as np
        import torch

        tensor = torch.from_numpy(np.array(array, copy=True))
        return tensor.to(device=device or "cpu", dtype=getattr(torch, dtype))

    def to_numpy(self, x: Any) -> Any:
        import torch

        host = x.detach().to("cpu")
        if host.dtype == torch.bfloat16:
            host = host.to(torch.float32)  # exact: every bfloat16 is a float32
        return host.numpy().copy()

    def manual_seed(self, seed: int) -> None:
        """``torch.manual_seed``: ``seed=None`` draws from torch's default generators."""
        import torch

        torch.manual_seed(arguments.check_uint64(seed, "seed"))

    def global_rng_state(self) -> Any:
        """The bytes of torch's default CPU generator, then each initialised CUDA generator's."""
        import numpy as np
        import torch

        states = [torch.get_rng_state()]
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            states += list(torch.cuda.get_rng_state_all())
        return np.concatenate([state.numpy() for state in states])

    def vjp(self, fn: Callable[[Any], Any], x: Any, cotangent: Any) -> tuple[Any, Any]:
        import torch

        leaf = x.detach().requires_grad_(True)
        y = fn(leaf)
        (grad,) = torch.autograd.grad(y, leaf, cotangent)
        return y.detach(), grad

    def jit(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``torch.compile(fn, fullgraph=True)``: unidrop.dropout compiles with no graph break."""
        import torch

        return torch.compile(fn, fullgraph=True)
