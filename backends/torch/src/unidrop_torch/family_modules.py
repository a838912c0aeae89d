"""``AlphaDropout``, ``FeatureAlphaDropout`` and ``DropPath`` on mask stream v1.

``AlphaDropout`` and ``FeatureAlphaDropout`` subclass torch's classes of the same name (as
:class:`unidrop_torch.Dropout` subclasses ``torch.nn.Dropout``) and take the same arguments as
:class:`unidrop_torch.Dropout` (``p``, ``inplace``, ``seed``, ``stream``, ``layer``,
``mask_stream``); their values are :func:`unidrop.alpha_dropout`'s. ``DropPath`` is timm's
``DropPath(drop_prob, scale_by_keep)`` on :func:`unidrop.drop_path`. None saves anything
input-sized for backward: the alpha forms regenerate the mask from (seed, stream), and drop
path's mask has one value per sample.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import unidrop
from unidrop import DropoutPlan, Implementation, arguments, layer_seeds
from unidrop.family import alpha_constants, alpha_of_mask

from . import cpu, fx, keys
from .modules import _MaskStreamDropout, refuse_broadcast_dims
from .ops import MaskLayout
from .support import refuse_scripting


class _AlphaDropoutFunction(torch.autograd.Function):
    """Alpha dropout whose backward regenerates the mask: only (p, seed, stream, axes) are saved.

    ``seed`` is an int or, for ``seed=None``, the two seed words drawn on the input's device (a
    tensor, never read on the host: no sync, and ``torch.compile(fullgraph=True)`` traces it).
    Written for torch.func too (``setup_context``, ``jvp`` and a generated vmap rule): ``grad``,
    ``vmap``, ``jvp``, ``hessian`` and forward-mode dual tensors differentiate it. The axes come as
    a :class:`~unidrop_torch.ops.MaskLayout`, which the vmap rule passes through whole.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, p: float, seed: int | torch.Tensor, stream: int, layout: MaskLayout) -> Any:
        implementation, plan = _plan_for(x, p, seed, stream, layout.broadcast_dims)
        return alpha_of_mask(implementation, x, implementation.keep_mask(x, plan), plan)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        _, p, seed, stream, layout = inputs
        if isinstance(seed, torch.Tensor):
            ctx.save_for_backward(seed)  # 8 bytes: the mask is regenerated, never saved
            ctx.save_for_forward(seed)
            seed = None
        ctx.randomness = (p, seed, stream, layout.broadcast_dims)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        return _alpha_slope(grad, *_randomness(ctx)), None, None, None, None

    @staticmethod
    def jvp(ctx: Any, tangent: torch.Tensor, *_: Any) -> torch.Tensor:
        return _alpha_slope(tangent, *_randomness(ctx))


class _TracedAlphaDropoutFunction(_AlphaDropoutFunction):
    """:class:`_AlphaDropoutFunction` without its ``jvp``, for ``torch.compile``: Dynamo cannot trace
    an autograd Function that defines one (it differentiates the traced forward's operations)."""

    jvp = torch.autograd.Function.jvp


def _randomness(ctx: Any) -> tuple[Any, ...]:
    """(p, seed, stream, axes) of a call, the drawn seed words taken back from where they were saved."""
    p, seed, stream, dims = ctx.randomness
    if seed is None:
        (seed,) = ctx.saved_tensors
    return p, seed, stream, dims


def _plan_for(
    t: torch.Tensor, p: float, seed: int | torch.Tensor, stream: int, dims: list[int]
) -> tuple[Implementation, DropoutPlan]:
    """The torch implementation and the plan of alpha dropout's mask for ``t``'s shape."""
    implementation = unidrop.get_backend("torch").implementation()
    # the dtype's name without shape_and_dtype's checks of the tensor: t is the checked input or its
    # gradient, and a compiled backward may not read a tensor's layout (Dynamo's strict mode)
    dtype = cpu.dtype_name(t.dtype)
    return implementation, DropoutPlan.build(tuple(t.shape), dtype, p, seed, stream, dims)


def _alpha_slope(
    t: torch.Tensor, p: float, seed: int | torch.Tensor, stream: int, dims: list[int]
) -> torch.Tensor:
    """``t`` times alpha dropout's derivative: ``t a`` where kept, +0 where dropped, rounded as the
    forward's products (a cotangent in the backward, a tangent in forward mode)."""
    implementation, plan = _plan_for(t, p, seed, stream, dims)
    keep = implementation.keep_mask(t, plan)
    compute = getattr(torch, plan.compute_dtype)
    # d(x a + c)/dx, rounded as the forward's; a 0-d CPU tensor multiplies a CUDA one with no copy
    a = torch.tensor(alpha_constants(p)[0], dtype=compute, device="cpu")
    zero = torch.zeros((), dtype=compute, device=t.device)
    return torch.where(keep, t.to(compute) * a, zero).to(t.dtype)


class _AlphaForm(_MaskStreamDropout):
    """Alpha dropout by mask stream v1: kept elements ``x a + c``, dropped ones ``-ALPHA a (1 - p)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        traced = fx.leaf_call(self, x)
        if traced is not None:
            return traced
        if self.mask_stream == "torch":
            return self._torch_stream(x)
        p = arguments.check_p(self.p)
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} needs a torch.Tensor, got {type(x).__qualname__}")
        implementation = unidrop.get_backend("torch").implementation()
        # the spec's refusal of integer, bool, complex and float8 tensors, in evaluation too
        arguments.check_dtype(implementation.shape_and_dtype(x)[1], implementation.dtypes())
        dims = self._broadcast_dims_for(x)
        # the settings may have been changed since construction: checked at every call, as Dropout's
        stream = arguments.check_uint64(self.stream, "stream")
        fixed_seed = None if self.seed is None else arguments.check_uint64(self.seed, "seed")
        if not self.training or p == 0.0:
            return x
        # seed=None: two words from torch's generator of x's device, left there (no host read)
        seed = keys.draw_seed_words(x.device) if fixed_seed is None else fixed_seed
        layout = MaskLayout(list(dims))
        # ``inplace`` is accepted and ignored, as by torch's AlphaDropout and FeatureAlphaDropout
        # (their forward never passes it on): a converted SELU network keeps working
        if torch.jit.is_tracing():  # a trace records operators only: the Function's forward, called
            return _AlphaDropoutFunction.forward(x, p, seed, stream, layout)  # type: ignore[no-any-return]
        function = _TracedAlphaDropoutFunction if torch.compiler.is_compiling() else _AlphaDropoutFunction
        return function.apply(x, p, seed, stream, layout)  # type: ignore[no-any-return]

    def __prepare_scriptable__(self) -> nn.Module:
        refuse_scripting(f"unidrop_torch.{type(self).__name__}")


class AlphaDropout(_AlphaForm, nn.AlphaDropout):
    """A ``torch.nn.AlphaDropout`` by mask stream v1 (for SELU networks).

    ``AlphaDropout(p, inplace, *, broadcast_dims=(), seed=None, stream=0, layer=None,
    mask_stream="unidrop")``, as :class:`unidrop_torch.Dropout`; its mask is dropout's for the
    same seed and stream. ``mask_stream="torch"`` delegates to ``torch.nn.functional.alpha_dropout``.
    As torch's class, it never writes into its input: ``inplace`` is accepted and ignored.
    """

    def _torch_stream(self, x: torch.Tensor) -> torch.Tensor:
        if arguments.normalize_broadcast_dims(self.broadcast_dims, x.dim()):
            raise ValueError(
                f"mask_stream='torch' has no alpha dropout stream for broadcast_dims={self.broadcast_dims}"
            )
        return nn.functional.alpha_dropout(x, self.p, self.training)  # inplace ignored, as torch's


class FeatureAlphaDropout(_AlphaForm, nn.FeatureAlphaDropout):
    """A ``torch.nn.FeatureAlphaDropout``: alpha dropout of whole channels of (N, C, ...) inputs.

    As in torch, the mask has one value per (n, c), shared over every axis after the first two;
    an input of fewer than 2 dimensions raises torch's RuntimeError in training.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, **kwargs: Any) -> None:
        refuse_broadcast_dims(kwargs, "FeatureAlphaDropout", "every axis after the first two")
        super().__init__(p, inplace, **kwargs)

    def _broadcast_dims_for(self, x: torch.Tensor) -> tuple[int, ...]:
        if x.dim() < 2 and self.training and 0.0 < self.p < 1.0 and x.numel() > 0:  # as torch
            raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
        return tuple(range(2, x.dim()))

    def _torch_stream(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.feature_alpha_dropout(x, self.p, self.training)  # inplace ignored, as torch's


class DropPath(nn.Module):
    """timm's ``DropPath`` (stochastic depth) on mask stream v1: each sample kept or dropped whole.

    ``DropPath(drop_prob=0.0, scale_by_keep=True, *, seed=None, stream=0, layer=None)``; in
    training each sample (index of the first axis) is dropped with probability ``drop_prob``
    and, with ``scale_by_keep``, kept samples are scaled by ``1 / (1 - drop_prob)``: the result
    is :func:`unidrop.drop_path`'s. In evaluation the input is returned as is. ``seed``,
    ``stream`` and ``layer`` are :class:`unidrop_torch.Dropout`'s (``layer`` numbers it for
    :mod:`unidrop.layer_seeds`; :func:`unidrop_torch.convert` and ``set_step`` count it).
    """

    def __init__(
        self,
        drop_prob: float = 0.0,
        scale_by_keep: bool = True,
        *,
        seed: int | None = None,
        stream: int = 0,
        layer: int | None = None,
    ) -> None:
        super().__init__()
        self.drop_prob = arguments.check_p(drop_prob)
        if scale_by_keep is not True and scale_by_keep is not False:
            raise TypeError(f"scale_by_keep must be True or False, got {scale_by_keep!r}")
        self.scale_by_keep = scale_by_keep
        self.seed = None if seed is None else arguments.check_uint64(seed, "seed")
        self.stream = arguments.check_uint64(stream, "stream")
        self.layer = None if layer is None else layer_seeds.check_uint32(layer, "layer")
        if self.layer is not None:
            if self.seed is None or self.stream:
                raise ValueError(
                    f"layer={self.layer} numbers the layer for the layer-seed convention: it needs a "
                    f"seed (the run's base seed) and no stream (got seed={self.seed}, stream={self.stream})"
                )
            self.stream = layer_seeds.layer_stream(0, self.layer)

    mask_stream = "unidrop"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        traced = fx.leaf_call(self, x)
        if traced is not None:
            return traced
        return unidrop.drop_path(  # type: ignore[no-any-return]
            x,
            self.drop_prob,
            training=self.training,
            seed=self.seed,
            stream=self.stream,
            scale_by_keep=self.scale_by_keep,
            backend="torch",
        )

    def __prepare_scriptable__(self) -> nn.Module:
        refuse_scripting("unidrop_torch.DropPath")

    def extra_repr(self) -> str:
        """timm's ``drop_prob=0.100``, then the unidrop settings that differ from the defaults."""
        parts = [f"drop_prob={round(self.drop_prob, 3):0.3f}"]
        if not self.scale_by_keep:
            parts.append("scale_by_keep=False")
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        if self.layer is not None:
            parts.append(f"layer={self.layer}, step={self.stream >> 32}")
        elif self.stream:
            parts.append(f"stream={self.stream}")
        return ", ".join(parts)
