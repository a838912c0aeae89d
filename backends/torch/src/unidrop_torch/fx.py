"""torch.fx symbolic tracing: unidrop's modules are leaves of the graph, as torch.nn's dropout is."""

from __future__ import annotations

from typing import Any

import torch
from torch.fx import Proxy


def leaf_call(module: torch.nn.Module, x: Any) -> Proxy | None:
    """A ``call_module`` node for ``module`` if ``x`` is a torch.fx Proxy (symbolic tracing), else None.

    torch.fx traces into every module outside ``torch.nn`` but keeps ``torch.nn``'s own as leaves;
    unidrop's are made leaves too, so a traced model still follows ``train()``/``eval()``, and the
    input's rank, dtype and device are read from real tensors when the graph runs.
    """
    if not isinstance(x, Proxy):
        return None
    return x.tracer.create_proxy("call_module", x.tracer.path_of_module(module), (x,), {})


def recorded_call(function: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
    """``function(x, *args, **kwargs)`` recorded as one ``call_function`` node where ``x`` is a
    torch.fx Proxy (torch's own protocol, ``__torch_function__``, as ``F.dropout`` is recorded);
    NotImplemented for anything else."""
    if isinstance(x, torch.Tensor) or not torch.overrides.has_torch_function((x,)):
        return NotImplemented
    return torch.overrides.handle_torch_function(function, (x,), x, *args, **kwargs)
