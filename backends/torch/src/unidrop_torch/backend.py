"""The PyTorch backend's descriptor, what the entry point loads (imports torch only when used)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from unidrop import Abilities, Backend, Implementation

if TYPE_CHECKING:
    from unidrop.conformance.adapter import SuiteAdapter


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
    abilities = Abilities(autograd=True, jit=True)

    def accepts(self, x: Any) -> bool:
        torch = sys.modules["torch"]  # a torch.fx Proxy too: to be refused with what to do instead
        return isinstance(x, (torch.Tensor, torch.fx.Proxy))

    def load(self) -> Implementation:
        # A plain import, not a cached function: torch.compile traces this on a cold first call,
        # and Dynamo warns about every functools.lru_cache-wrapped function it traces.
        from .implementation import TorchImplementation

        return TorchImplementation()

    def suite_adapter(self) -> SuiteAdapter:
        from .suite_adapter import TorchSuiteAdapter

        return TorchSuiteAdapter(self)
