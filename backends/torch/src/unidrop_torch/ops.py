"""The torch operators ``unidrop::dropout`` and ``unidrop::keep_mask`` (torch.library custom ops).

``unidrop::dropout(x, key, p, broadcast_dims)`` is mask stream v1 dropout. It has

* a fake (meta) implementation, so ``torch.compile(fullgraph=True)`` traces it without a
  graph break and ``torch.export`` sees it;
* an autograd formula whose backward is the same operator on the incoming gradient
  (``grad * keep * scale``, in the same compute dtype and rounding): the mask is regenerated
  from the key, and the key (16 bytes) is the only tensor saved for backward. Because the
  backward is itself this differentiable operator, double backward works;
* a vmap rule: every example of the batch gets the mask an unbatched call gets (the batch
  axis is broadcast), exactly as calling it on each example would.

``key`` is the int32 tensor of shape (4,) described in :mod:`unidrop_torch.keys`;
``broadcast_dims`` are non-negative axes of ``x``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.autograd import forward_ad as _forward_ad

from unidrop import DropoutPlan, arguments
from unidrop.blocks import MaskBlock

from . import blocks, cpu, cpu_node, cuda, keys
from .routes import Route, route_for
from .support import check_tensor


def _check(x: Tensor, key: Tensor, p: float, broadcast_dims: Sequence[int]) -> None:
    keys.check_key(key)
    _check_plain(x, p, broadcast_dims)


def _check_plain(x: Tensor, p: float, broadcast_dims: Sequence[int]) -> None:
    check_tensor(x)
    arguments.check_p(p)
    if x.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise TypeError(
            f"unidrop::dropout needs a floating-point tensor; got dtype {x.dtype}, allowed: "
            "float16, bfloat16, float32, float64"
        )
    for axis in broadcast_dims:
        if not 0 <= axis < x.dim():
            raise ValueError(
                f"unidrop::dropout broadcast_dims axis {axis} is out of range for a tensor of "
                f"{x.dim()} dimensions (allowed: 0 .. {x.dim() - 1}; normalise negative axes first)"
            )


@torch.library.custom_op("unidrop::dropout", mutates_args=())
def dropout(x: Tensor, key: Tensor, p: float, broadcast_dims: list[int]) -> Tensor:
    """Mask stream v1 dropout of ``x`` with the (seed, stream) in ``key``; a new tensor like ``x``."""
    _check(x, key, p, broadcast_dims)
    if x.device.type == "cpu":
        if key.device.type != "cpu":
            raise ValueError(f"the key is on {key.device}, the input on the CPU: put them on one device")
        seed, stream = keys.ints_of(key)
        return cpu.dropout(x, seed, stream, p, broadcast_dims)
    if x.device.type == "cuda":
        return cuda.dropout(x, key, p, broadcast_dims)
    raise NotImplementedError(
        f"unidrop-torch runs on CPU and CUDA tensors; got a tensor on {x.device}. "
        "Move it to the CPU or a CUDA device."
    )


@dropout.register_fake
def _dropout_fake(x: Tensor, key: Tensor, p: float, broadcast_dims: list[int]) -> Tensor:
    _check(x, key, p, broadcast_dims)
    _refuse_forward_mode_while_tracing()
    return torch.empty_like(x)


def _refuse_forward_mode_while_tracing() -> None:
    """NotImplementedError where ``torch.compile`` traces a call inside a forward-mode AD level
    (``torch.func.jvp``, ``jacfwd``, ``torch.autograd.forward_ad``): with ``fullgraph=True`` the
    compile fails naming it; without, Dynamo falls back to eager code around the call.

    Eager calls there take the autograd Function, whose ``jvp`` gives the tangent; a traced call
    reaches the operator, which has no forward-mode formula (``torch.library`` has none to
    register), and its tangent would silently be lost. ``_current_level`` is private, the module
    global ``forward_ad`` itself reads: torch has no public "is a dual level open" query.
    """
    if _forward_ad._current_level >= 0 and torch.compiler.is_compiling():  # eager meta/fake: the Function
        raise NotImplementedError(
            "unidrop dropout has no forward-mode derivative inside torch.compile (or another "
            "tracer): torch.func.jvp, jacfwd, hessian and torch.autograd.forward_ad work on it in "
            "eager mode only; call them outside torch.compile (docs/torch.md)"
        )


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    _, key, p, broadcast_dims = inputs
    ctx.save_for_backward(key)  # 16 bytes: the mask is regenerated, never saved
    ctx.p = p
    ctx.broadcast_dims = broadcast_dims


def _backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None, None]:
    (key,) = ctx.saved_tensors
    grad_x = dropout(grad, key, ctx.p, ctx.broadcast_dims) if ctx.needs_input_grad[0] else None
    return grad_x, None, None, None


dropout.register_autograd(_backward, setup_context=_setup_context)


@dropout.register_vmap
def _dropout_vmap(
    info: Any, in_dims: tuple[Any, ...], x: Tensor, key: Tensor, p: float, broadcast_dims: list[int]
) -> tuple[Tensor, int | None]:
    x_dim = in_dims[0]
    _refuse_a_batched_key(in_dims[1])
    if x_dim is None:
        return dropout(x, key, p, broadcast_dims), None
    batched = x.movedim(x_dim, 0)
    return dropout(batched, key, p, [0, *(axis + 1 for axis in broadcast_dims)]), 0


def _refuse_a_batched_key(key_dim: int | None) -> None:
    """The vmap rules' NotImplementedError for a key with a batch axis."""
    if key_dim is not None:
        raise NotImplementedError(
            "unidrop: vmap over the key (a batched seed, e.g. seed=None under "
            "vmap(randomness='different')) is not supported; pass an integer seed, use "
            "randomness='same', or draw different streams outside vmap"
        )


@torch.library.custom_op("unidrop::keep_mask", mutates_args=())
def keep_mask(key: Tensor, mask_shape: list[int], p: float, device: torch.device) -> Tensor:
    """The boolean keep mask (True = kept) of ``mask_shape`` for the (seed, stream) in ``key``."""
    keys.check_key(key)
    device = torch.device(device)
    shape = tuple(mask_shape)
    if device.type == "meta":  # a mask for a meta tensor (the key may be a real CPU one): no values
        return torch.empty(shape, dtype=torch.bool, device=device)
    if device.type == "cuda":
        return cuda.keep_mask(key, shape, p, device)
    if device.type == "cpu":
        seed, stream = keys.ints_of(key)
        return cpu.keep_mask(seed, stream, shape, p)
    raise NotImplementedError(f"unidrop-torch runs on CPU and CUDA; got device {device}")


@keep_mask.register_fake
def _keep_mask_fake(key: Tensor, mask_shape: list[int], p: float, device: torch.device) -> Tensor:
    return torch.empty(mask_shape, dtype=torch.bool, device=device)


@torch.library.custom_op("unidrop::dropout_block", mutates_args=())
def dropout_block(
    x: Tensor,
    key: Tensor,
    p: float,
    broadcast_dims: list[int],
    global_mask_shape: list[int],
    mask_offset: list[int],
) -> Tensor:
    """``unidrop::dropout`` of a block of a larger array: ``x`` gets its slice of the global mask.

    The block's mask lies at ``mask_offset`` in the global mask of shape ``global_mask_shape``
    (see :mod:`unidrop_torch.blocks`); the backward regenerates the block's mask, not the global one.
    """
    _check_block(x, key, p, broadcast_dims, global_mask_shape, mask_offset)
    if x.device.type == "cpu":
        if key.device.type != "cpu":
            raise ValueError(f"the key is on {key.device}, the input on the CPU: put them on one device")
        return cpu.run(x, _cpu_block_plan(x, key, p, broadcast_dims, global_mask_shape, mask_offset))[0]
    if x.device.type == "cuda":
        return blocks.dropout(x, key, p, broadcast_dims, global_mask_shape, mask_offset)
    raise NotImplementedError(
        f"unidrop-torch runs on CPU and CUDA tensors; got a tensor on {x.device}. "
        "Move it to the CPU or a CUDA device."
    )


def _cpu_block_plan(
    x: Tensor,
    key: Tensor,
    p: float,
    broadcast_dims: list[int],
    global_mask_shape: list[int],
    mask_offset: list[int],
) -> DropoutPlan:
    """The plan of a block on the CPU, for the compiled kernel (:func:`unidrop_torch.cpu.run`)."""
    seed, stream = keys.ints_of(key)
    plan = DropoutPlan.build(tuple(x.shape), cpu.dtype_name(x.dtype), p, seed, stream, broadcast_dims)
    return dataclasses.replace(plan, block=MaskBlock(tuple(global_mask_shape), tuple(mask_offset)))


def _check_block(
    x: Tensor,
    key: Tensor,
    p: float,
    broadcast_dims: list[int],
    global_mask_shape: list[int],
    mask_offset: list[int],
) -> None:
    _check(x, key, p, broadcast_dims)
    if len(global_mask_shape) != x.dim() or len(mask_offset) != x.dim():
        raise ValueError(
            f"unidrop::dropout_block needs one global_mask_shape and one mask_offset entry per axis of "
            f"the input ({x.dim()}), got {global_mask_shape} and {mask_offset}"
        )


@dropout_block.register_fake
def _dropout_block_fake(
    x: Tensor,
    key: Tensor,
    p: float,
    broadcast_dims: list[int],
    global_mask_shape: list[int],
    mask_offset: list[int],
) -> Tensor:
    _check_block(x, key, p, broadcast_dims, global_mask_shape, mask_offset)
    _refuse_forward_mode_while_tracing()
    return torch.empty_like(x)


def _setup_block_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    _setup_context(ctx, inputs[:4], output)
    ctx.block = (inputs[4], inputs[5])


def _block_backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None, None, None, None]:
    (key,) = ctx.saved_tensors
    if not ctx.needs_input_grad[0]:
        return None, None, None, None, None, None
    return dropout_block(grad, key, ctx.p, ctx.broadcast_dims, *ctx.block), None, None, None, None, None


dropout_block.register_autograd(_block_backward, setup_context=_setup_block_context)


@dropout_block.register_vmap
def _dropout_block_vmap(
    info: Any,
    in_dims: tuple[Any, ...],
    x: Tensor,
    key: Tensor,
    p: float,
    broadcast_dims: list[int],
    global_mask_shape: list[int],
    mask_offset: list[int],
) -> tuple[Tensor, int | None]:
    _refuse_a_batched_key(in_dims[1])
    if in_dims[0] is None:
        return dropout_block(x, key, p, broadcast_dims, global_mask_shape, mask_offset), None
    batched = x.movedim(in_dims[0], 0)  # every example gets the block's mask: the batch axis is broadcast
    dims = [0, *(axis + 1 for axis in broadcast_dims)]
    return dropout_block(batched, key, p, dims, [1, *global_mask_shape], [0, *mask_offset]), 0


@torch.library.custom_op("unidrop::keep_mask_block", mutates_args=())
def keep_mask_block(
    key: Tensor,
    mask_shape: list[int],
    p: float,
    global_mask_shape: list[int],
    mask_offset: list[int],
    device: torch.device,
) -> Tensor:
    """The boolean keep mask of a block of mask shape ``mask_shape`` at ``mask_offset`` in the global mask."""
    keys.check_key(key)
    device = torch.device(device)
    if device.type == "meta":  # a mask for a meta tensor: no values
        return torch.empty(tuple(mask_shape), dtype=torch.bool, device=device)
    if device.type == "cpu" and key.device.type == "cpu":
        seed, stream = keys.ints_of(key)
        block = MaskBlock(tuple(global_mask_shape), tuple(mask_offset))
        shape = tuple(mask_shape)
        return cpu.block_keep_mask(DropoutPlan(p, seed, stream, shape, "float32", shape, (), True, block))
    return blocks.keep_mask(key, mask_shape, p, global_mask_shape, mask_offset, device)


@keep_mask.register_vmap
def _keep_mask_vmap(info: Any, in_dims: tuple[Any, ...], key: Tensor, *rest: Any) -> tuple[Tensor, None]:
    """One mask for the whole batch (it reads no batched tensor); a batched key is refused."""
    _refuse_a_batched_key(in_dims[0])
    return keep_mask(key, *rest), None


@keep_mask_block.register_vmap
def _keep_mask_block_vmap(
    info: Any, in_dims: tuple[Any, ...], key: Tensor, *rest: Any
) -> tuple[Tensor, None]:
    """As :func:`_keep_mask_vmap`, for a block's mask."""
    _refuse_a_batched_key(in_dims[0])
    return keep_mask_block(key, *rest), None


@keep_mask_block.register_fake
def _keep_mask_block_fake(
    key: Tensor,
    mask_shape: list[int],
    p: float,
    global_mask_shape: list[int],
    mask_offset: list[int],
    device: torch.device,
) -> Tensor:
    return torch.empty(mask_shape, dtype=torch.bool, device=device)


def _apply(
    x: Tensor, key: Tensor, p: float, broadcast_dims: list[int], block: tuple[list[int], list[int]] | None
) -> Tensor:
    """The operator for a whole array (``block`` None) or for a block (global mask shape, mask offset)."""
    if block is None:
        return dropout(x, key, p, broadcast_dims)
    return dropout_block(x, key, p, broadcast_dims, *block)


@dataclasses.dataclass(frozen=True)
class MaskLayout:
    """``broadcast_dims`` and ``block`` of a :class:`DropoutFunction` call, passed as one argument.

    torch.func's generated vmap rule treats list and tuple arguments as trees of inputs and cannot
    pair them with batch dimensions when a vmap runs inside a jvp (``jacfwd(jacrev(f))``,
    ``hessian``); an object it does not flatten passes through like a float.
    """

    broadcast_dims: list[int]
    block: tuple[list[int], list[int]] | None = None


class DropoutFunction(torch.autograd.Function):
    """``unidrop::dropout`` as an autograd.Function, so that torch.func transforms (grad, jacrev,
    jvp, jacfwd, vmap of grad) can differentiate it too; ``torch.library`` autograd formulas do
    not support them. Same saved state (the key alone) and the same backward as the operator's;
    forward mode sends the tangent through the same mask and scale. :mod:`unidrop_torch.routes`
    says when a call takes it."""

    generate_vmap_rule = True  # the forward is the operator, which has a vmap rule

    @staticmethod
    def forward(x: Tensor, key: Tensor, p: float, layout: MaskLayout) -> Tensor:
        return _apply(x, key, p, layout.broadcast_dims, layout.block)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        _, key, ctx.p, ctx.layout = inputs
        ctx.save_for_backward(key)  # 16 bytes: the mask is regenerated, never saved
        ctx.save_for_forward(key)

    @staticmethod
    def jvp(ctx: Any, x_tangent: Tensor, *_: Any) -> Tensor:
        """Forward mode (torch.func.jvp): the tangent goes through the same mask and scale."""
        (key,) = ctx.saved_tensors
        return DropoutFunction.apply(x_tangent, key, ctx.p, ctx.layout)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None, None]:
        (key,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        return DropoutFunction.apply(grad, key, ctx.p, ctx.layout), None, None, None


class CpuDropoutFunction(torch.autograd.Function):
    """Eager autograd on a plain CPU tensor with the CPU kernel called directly (no operator
    dispatch): :attr:`unidrop_torch.routes.Route.CPU_AUTOGRAD`. The saved state is the plan (Python
    numbers, no tensor); the backward regenerates the mask and applies it to the incoming gradient,
    through this Function again when a graph of the backward is recorded (double backward).
    ``plan.return_mask`` is not read: the forward makes ``y`` alone."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, plan: DropoutPlan) -> Tensor:
        ctx.plan = plan
        return cpu.output(x, plan)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None
        if _is_legacy_batched(grad):  # autograd.grad(is_grads_batched=True), jacobian(vectorize=True)
            return _through_operator(grad, ctx.plan), None  # its batching; the kernel reads memory
        if torch.is_grad_enabled():  # create_graph=True: the backward must be differentiable too
            if route_for(grad, ctx.plan.seed) is Route.CPU_AUTOGRAD:
                return _apply_cpu_function(grad, ctx.plan), None
            # a dual gradient (forward over reverse) needs the route with a jvp
            return run(grad, dataclasses.replace(ctx.plan, return_mask=False))[0], None
        return cpu.output(grad, ctx.plan), None


#: True for a tensor of torch's legacy batching (BatchedTensorImpl, which has no storage): the
#: gradients that ``autograd.grad(is_grads_batched=True)`` feeds a backward. Private: torch has no
#: public query (a transform of torch.func is not active there, so route_for cannot see it).
_is_legacy_batched = getattr(torch._C._functorch, "is_legacy_batchedtensor", lambda t: False)


def keep_mask_of(x: Tensor, plan: DropoutPlan) -> Tensor:
    """The keep mask of ``plan`` (bool, ``plan.mask_shape``) on ``x``'s device; ``x`` is read for its
    device and route only, never its values (it may be a batched gradient)."""
    if route_for(x, plan.seed) in (Route.CPU_KERNEL, Route.CPU_AUTOGRAD):
        return cpu.keep_mask_of(_with_int_seed(plan))
    return _operator_keep_mask(keys.make_key(plan.seed, plan.stream), plan, x.device)


def _through_operator(x: Tensor, plan: DropoutPlan) -> Tensor:
    """Dropout of ``x`` by the operator (an integer seed in ``plan``), whatever its route would be."""
    key = keys.make_key(plan.seed, plan.stream)
    return _apply(x, key, plan.p, list(plan.broadcast_dims), _block_lists(plan))


def _with_int_seed(plan: DropoutPlan) -> DropoutPlan:
    """``plan`` with drawn seed words (a CPU tensor) read back as the integer seed they hold."""
    if isinstance(plan.seed, Tensor):
        return dataclasses.replace(plan, seed=keys.int_of_seed_words(plan.seed))
    return plan


def _block_lists(plan: DropoutPlan) -> tuple[list[int], list[int]] | None:
    """``plan``'s block as the operators take it (global mask shape, mask offset), or None."""
    if plan.block is None:
        return None
    return list(plan.block.global_mask_shape), list(plan.block.mask_offset)


def _operator_keep_mask(key: Tensor, plan: DropoutPlan, device: torch.device) -> Tensor:
    """The keep mask of ``plan`` by the operators, on ``device``: a whole array's or a block's."""
    block = _block_lists(plan)
    if torch.jit.is_tracing():  # the tracer cannot record the keep_mask operators' device argument
        return _apply(torch.ones(plan.mask_shape, device=device), key, plan.p, [], block) != 0
    if block is None:
        return keep_mask(key, list(plan.mask_shape), plan.p, device)
    return keep_mask_block(key, list(plan.mask_shape), plan.p, *block, device)


#: ``CpuDropoutFunction.apply`` without the Python layer of ``torch.autograd.Function.apply`` (the
#: C++ ``_FunctionBase.apply``, bound to the class). That layer binds default arguments (for a
#: ``setup_context``, which this Function has not) and hands off to functorch when a transform is
#: active (never on this route: :func:`unidrop_torch.routes.route_for` checks), and costs a few
#: microseconds per call. None where torch has no such method: the public ``apply`` runs.
_RAW_APPLY = getattr(super(torch.autograd.Function, CpuDropoutFunction), "apply", None)
_UNWRAP_IF_DEAD = getattr(torch._C._functorch, "unwrap_if_dead", None)


def _apply_cpu_function(x: Tensor, plan: DropoutPlan) -> Tensor:
    """Eager autograd dropout of a plain CPU tensor: the C++ node where it applies
    (:mod:`unidrop_torch.cpu_node`), else ``CpuDropoutFunction.apply(x, plan)``, outside every
    functorch transform, through the Function's C++ entry.

    What the Function's Python layer would still do there is done here: a tensor left over from a
    finished transform (a "dead" functorch wrapper) is unwrapped first.
    """
    if cpu_node.ACTIVE and not x.is_neg():  # the node reads memory as it lies
        y = cpu_node.dropout(x, plan)
        if y is not None:
            return y
    if _RAW_APPLY is None or _UNWRAP_IF_DEAD is None:  # pragma: no cover - another torch
        return CpuDropoutFunction.apply(x, plan)
    return _RAW_APPLY(_UNWRAP_IF_DEAD(x), plan)


def _node_gradient_elsewhere(grad: Tensor, p: float, seed: int, stream: int, broadcast: int) -> Tensor:
    """What the C++ node's backward does with a gradient that is not plain memory (a batched, dual,
    negated or wrapped tensor): the same dropout, by the route :func:`run` takes for it (legacy
    batched gradients through the operator, as :class:`CpuDropoutFunction` sends them)."""
    dims = tuple(axis for axis in range(grad.dim()) if broadcast >> axis & 1)
    plan = DropoutPlan.build(tuple(grad.shape), cpu.dtype_name(grad.dtype), p, seed, stream, dims)
    if _is_legacy_batched(grad):
        return _through_operator(grad, plan)
    return run(grad, plan)[0]


cpu_node.set_fallback(_node_gradient_elsewhere)


def run(x: Tensor, plan: DropoutPlan) -> tuple[Tensor, Tensor | None]:
    """Dropout of ``x`` for a validated plan, and the keep mask if ``plan.return_mask``.

    ``plan.seed`` is an integer or the drawn seed words (see :mod:`unidrop_torch.keys`). The route
    (the CPU kernel directly, the operator, or the autograd Function) is
    :func:`unidrop_torch.routes.route_for`'s; every route gives the same bits.
    """
    seed = plan.seed
    route = route_for(x, seed)
    if route is Route.CPU_KERNEL or route is Route.CPU_AUTOGRAD:  # validated by unidrop.dropout
        plan = _with_int_seed(plan)
        if route is Route.CPU_KERNEL:
            return cpu.run(x, plan)
        y = _apply_cpu_function(x, plan)  # the mask, if asked for, is made once, below
        keep = cpu.keep_mask_of(plan) if plan.return_mask else None
        return y, keep
    key = keys.make_key(seed, plan.stream)
    broadcast_dims = list(plan.broadcast_dims)
    block = _block_lists(plan)
    if route is Route.AUTOGRAD_FUNCTION:
        y = DropoutFunction.apply(x, key, plan.p, MaskLayout(broadcast_dims, block))
    else:
        y = _apply(x, key, plan.p, broadcast_dims, block)
    return y, (_operator_keep_mask(key, plan, x.device) if plan.return_mask else None)
