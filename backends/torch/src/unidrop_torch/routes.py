"""Which of three routes a torch dropout call takes: :func:`route_for`, the one place that decides.

Every route gives the same bits (the same kernels run in the end); they differ in what can see,
trace or differentiate the call:

* :attr:`Route.CPU_KERNEL`: the CPU kernel is called directly, skipping the custom operator's
  dispatch, whose fixed cost dominates a call on a small tensor (figures: docs/benchmarks.md).
  Only when nothing but that kernel could run anyway: no gradient, no tracer, no transform, no
  mode, no profiler.
* :attr:`Route.CPU_AUTOGRAD`: the same, for a plain CPU tensor that needs a gradient (eager
  autograd and nothing else watching): :class:`unidrop_torch.ops.CpuDropoutFunction`, an autograd
  Function whose forward and backward call the CPU kernel directly, skipping the operator's
  dispatch twice (forward and backward).
* :attr:`Route.OPERATOR`: the custom operator ``unidrop::dropout`` with its own autograd formula,
  fake implementation and vmap rule. The default: eager autograd, ``torch.compile`` (Dynamo
  traces custom operators), ``torch.export``, ``torch.jit.trace``, dispatch and function modes
  (FakeTensorMode and the like) and the profiler all see the operator.
* :attr:`Route.AUTOGRAD_FUNCTION`: :class:`unidrop_torch.ops.DropoutFunction`, the operator wrapped in a
  ``torch.autograd.Function`` with a ``jvp``. torch.func transforms (grad, jacrev, jvp, jacfwd,
  vmap of grad) and ``torch.autograd.forward_ad`` dual tensors need it: ``torch.library``
  autograd formulas support neither. Dynamo cannot trace it (a custom ``jvp``), so it is never
  chosen while compiling.
"""

from __future__ import annotations

import enum

import torch
from torch import Tensor
from torch.autograd import forward_ad as _forward_ad

# The queries below, looked up once (each is a few attribute lookups per call otherwise).
_functorch_transforms_active = torch._C._are_functorch_transforms_active
_len_torch_dispatch_stack = torch._C._len_torch_dispatch_stack
_profiler_enabled = torch.autograd._profiler_enabled
_has_torch_function = torch.overrides.has_torch_function
_is_tracing = torch.jit.is_tracing


class Route(enum.Enum):
    """The three ways a dropout call can reach the kernels (see the module docstring)."""

    CPU_KERNEL = "cpu kernel"
    CPU_AUTOGRAD = "cpu autograd"
    OPERATOR = "operator"
    AUTOGRAD_FUNCTION = "autograd function"


def route_for(x: Tensor, seed: int | Tensor) -> Route:
    """The route for dropout of ``x`` with ``seed`` (an integer or the drawn seed words) now.

    Reads only ``x``, ``seed`` and torch's thread-local state (compilation, transforms, modes,
    profiler), so the same call in the same context always takes the same route.

    torch has no public API for three of the checks below, which use private ones (each says so);
    the others are public.
    """
    # While Dynamo traces (torch.compile, torch.export), only the operator can be traced: the
    # autograd Function's custom jvp cannot, and the private checks below are not traceable.
    # So this check comes first, and decides alone.
    if torch.compiler.is_compiling():
        return Route.OPERATOR
    # torch.func transforms differentiate and batch only autograd Functions, not torch.library
    # autograd formulas. Private: torch has no public "is a functorch transform active" query.
    if _functorch_transforms_active():
        return Route.AUTOGRAD_FUNCTION
    # A forward-mode dual tensor's tangent must go through the same mask: only the Function
    # has a jvp. Tangents exist only inside a dual level: outside one (``_current_level`` is -1,
    # private, the module global unpack_dual itself reads) unpack_dual's answer is known.
    if _forward_ad._current_level >= 0 and _forward_ad.unpack_dual(x).tangent is not None:
        return Route.AUTOGRAD_FUNCTION
    cpu_kernel_alone_would_run = (
        # A subclass (or a Parameter) may override __torch_function__ or __torch_dispatch__.
        type(x) is Tensor
        # Only the CPU kernel can be called directly, and only with a key it can read.
        and x.is_cpu
        and (not isinstance(seed, Tensor) or seed.is_cpu)
        # torch.jit.trace records only operators.
        and not _is_tracing()
        # A TorchFunctionMode sees only calls into torch (public: with a plain tensor, true
        # exactly when such a mode is active).
        and not _has_torch_function((x,))
        # A TorchDispatchMode (FakeTensorMode, FunctionalTensorMode, a user's) sees only
        # dispatched operators. Private: torch.utils._python_dispatch's query is private too.
        and _len_torch_dispatch_stack() == 0
        # The profiler records only dispatched operators. Private: torch has no public query.
        and not _profiler_enabled()
    )
    if not cpu_kernel_alone_would_run:
        return Route.OPERATOR
    # A gradient is recorded only if x needs one and grad mode is on (not under no_grad).
    return Route.CPU_AUTOGRAD if x.requires_grad and torch.is_grad_enabled() else Route.CPU_KERNEL
