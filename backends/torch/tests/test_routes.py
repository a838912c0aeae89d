"""``unidrop_torch.routes.route_for``: each situation a call can be in, and the route it must take.

The route is read from inside the situation (a transform, a mode, a tracer, a compiled
function), as a dropout call made there would read it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from unidrop_torch.routes import Route, route_for

CPU_KERNEL, OPERATOR, AUTOGRAD_FUNCTION = Route.CPU_KERNEL, Route.OPERATOR, Route.AUTOGRAD_FUNCTION
CPU_AUTOGRAD = Route.CPU_AUTOGRAD


def _plain() -> torch.Tensor:
    return torch.linspace(-1.0, 1.0, 6).reshape(2, 3)


class _Subclass(torch.Tensor):
    pass


class _FunctionMode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        return func(*args, **(kwargs or {}))


class _DispatchMode(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        return func(*args, **(kwargs or {}))


def _direct(x: torch.Tensor, seed: int | torch.Tensor = 1) -> Route:
    return route_for(x, seed)


def _inside(context: Callable[[], AbstractContextManager[object]], x: torch.Tensor | None = None) -> Route:
    """The route of a call on ``x`` (default: a plain CPU tensor) inside ``context()``."""
    with context():
        return route_for(_plain() if x is None else x, 1)


def _under_transform(transform: Callable[..., Callable[..., object]], **kwargs: object) -> Route:
    """The route seen by a call inside ``transform`` (torch.func.grad, vmap, jvp, ...)."""
    seen: list[Route] = []

    def fn(a: torch.Tensor) -> torch.Tensor:
        seen.append(route_for(a, 1))
        return a.sum()

    x = torch.linspace(0.5, 1.5, 3)
    if transform is torch.func.jvp:
        torch.func.jvp(fn, (x,), (torch.ones_like(x),))
    elif transform is torch.func.vmap:
        torch.func.vmap(fn, **kwargs)(x.reshape(3, 1))
    else:
        transform(fn)(x)
    assert len(set(seen)) == 1, seen
    return seen[0]


def _forward_ad_dual() -> Route:
    with torch.autograd.forward_ad.dual_level():
        dual = torch.autograd.forward_ad.make_dual(_plain(), torch.ones(2, 3))
        return route_for(dual, 1)


def _jit_traced() -> Route:
    seen: list[Route] = []

    def fn(a: torch.Tensor) -> torch.Tensor:
        seen.append(route_for(a, 1))
        return a * 2

    torch.jit.trace(fn, (_plain(),))
    return seen[0]


def _compiled(x: torch.Tensor) -> Route:
    """The route a call traced by Dynamo takes (backend 'eager': Dynamo traces, nothing compiles)."""
    codes = {route: float(i) for i, route in enumerate(Route)}

    def fn(a: torch.Tensor) -> torch.Tensor:
        return a * 0 + codes[route_for(a, 1)]

    torch._dynamo.reset()
    out = torch.compile(fn, backend="eager", fullgraph=True)(x)
    return list(Route)[int(out.flatten()[0].item())]


def _profiled(x: torch.Tensor | None = None) -> Route:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]):
        return route_for(_plain() if x is None else x, 1)


CASES: dict[str, tuple[Callable[[], Route], Route]] = {
    # nothing but the CPU kernel could run: it is called directly
    "plain CPU tensor, integer seed": (lambda: _direct(_plain()), CPU_KERNEL),
    "plain CPU tensor, seed words on the CPU": (
        lambda: _direct(_plain(), torch.tensor([7, 0], dtype=torch.int32)),
        CPU_KERNEL,
    ),
    "plain CPU tensor under no_grad": (lambda: _inside(torch.no_grad), CPU_KERNEL),
    "requires grad, under no_grad": (
        lambda: _inside(torch.no_grad, _plain().requires_grad_()),
        CPU_KERNEL,
    ),
    "float64 CPU tensor": (lambda: _direct(_plain().double()), CPU_KERNEL),
    "non-contiguous CPU tensor": (lambda: _direct(_plain().t()), CPU_KERNEL),
    # eager autograd alone: the CPU kernel in an autograd Function, forward and backward
    "requires grad": (lambda: _direct(_plain().requires_grad_()), CPU_AUTOGRAD),
    "non-leaf that requires grad": (lambda: _direct(_plain().requires_grad_() * 2), CPU_AUTOGRAD),
    # something else could see or need the operator
    "Parameter that requires grad": (lambda: _direct(torch.nn.Parameter(_plain())), OPERATOR),
    "requires grad, profiler": (lambda: _profiled(_plain().requires_grad_()), OPERATOR),
    "meta tensor": (lambda: _direct(_plain().to("meta")), OPERATOR),
    "seed words on another device": (
        lambda: _direct(_plain(), torch.zeros(2, dtype=torch.int32, device="meta")),
        OPERATOR,
    ),
    "Tensor subclass": (lambda: _direct(_plain().as_subclass(_Subclass)), OPERATOR),
    "Parameter without grad": (
        lambda: _direct(torch.nn.Parameter(_plain(), requires_grad=False)),
        OPERATOR,
    ),
    "TorchFunctionMode": (lambda: _inside(_FunctionMode), OPERATOR),
    "TorchDispatchMode": (lambda: _inside(_DispatchMode), OPERATOR),
    "FakeTensorMode": (lambda: _inside(torch._subclasses.fake_tensor.FakeTensorMode), OPERATOR),
    "profiler": (_profiled, OPERATOR),
    "torch.jit.trace": (_jit_traced, OPERATOR),
    "torch.compile, plain CPU tensor": (lambda: _compiled(_plain()), OPERATOR),
    # torch.func transforms and forward AD need the autograd Function
    "torch.func.grad": (lambda: _under_transform(torch.func.grad), AUTOGRAD_FUNCTION),
    "torch.func.vjp": (
        lambda: _under_transform(lambda fn: lambda x: torch.func.vjp(fn, x)),
        AUTOGRAD_FUNCTION,
    ),
    "torch.func.jvp": (lambda: _under_transform(torch.func.jvp), AUTOGRAD_FUNCTION),
    "torch.func.vmap": (lambda: _under_transform(torch.func.vmap), AUTOGRAD_FUNCTION),
    "torch.func.jacrev": (lambda: _under_transform(torch.func.jacrev), AUTOGRAD_FUNCTION),
    "forward-AD dual tensor": (_forward_ad_dual, AUTOGRAD_FUNCTION),
}


@pytest.mark.parametrize("situation", list(CASES))
def test_each_situation_takes_its_route(situation: str) -> None:
    observe, expected = CASES[situation]
    assert observe() is expected, situation


def test_forward_ad_level_without_a_tangent_keeps_the_cpu_kernel() -> None:
    """Only a tensor that carries a tangent needs the Function, not every call inside a level."""
    with torch.autograd.forward_ad.dual_level():
        assert route_for(_plain(), 1) is CPU_KERNEL
